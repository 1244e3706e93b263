#!/usr/bin/env bash
# The peer API as an attacker with nothing but a host certificate from the
# trusted host CA and curl would use it (issue 17): every handover claim that
# is not bound to an announced migration is refused with 403 and changes
# nothing; the announcement of a migration of a running VM is accepted;
# certificates that are no host identity are refused with 403.
source "$VC_SOURCE_ROOT/tests/lib/common.sh"
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }

start_libvirtd
keep_test_driver
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
vc_write_config "libvirt-uri=$TEST_URI" "${VC_CONF_CA_URLS[@]}" \
	"[peer]" "address=127.0.0.1:$PORT" "url=https://localhost:$PORT" "handover-grace=60s"
HCA="$T/hostca"
vc host-ca init --dir "$HCA" --cn "Test Host CA" >/dev/null
FP=$(openssl x509 -in "$HCA/ca.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)
# this host (the issuer): site=eu-west
vc host enroll --ca "$HCA/ca.pem" --attr site=eu-west --fqdn localhost >/dev/null
vc host-ca sign "$STATE/host/host.csr" --dir "$HCA" --out "$T/a.pem" >/dev/null
vc host import "$T/a.pem" >/dev/null
# other hosts' certificates from the same host CA
other_host() { # NAME SITE
	"$VIRTCERT" --state-dir "$T/$1" host enroll --ca "$HCA/ca.pem" --attr "site=$2" --fqdn "$1.example.com" >/dev/null &&
		vc host-ca sign "$T/$1/host/host.csr" --dir "$HCA" --out "$T/$1.pem" >/dev/null
}
check "a host certificate for b (eu-central)" other_host b eu-central
check "a host certificate for c (us-east)" other_host c us-east
cat >"$T/policy.d/50-vms.conf" <<EOP
[vms]
match-name=vm-*
names={name}.vms.example.com
trust-host-ca=$FP
require=site=eu-west|eu-central
EOP
check "ca init" vc ca init --permit vms.example.com
check "virtcertd starts with the peer listener" start_daemon

lv define <(test_domain vm-1) >/dev/null
lv start vm-1 >/dev/null
wait_for 10 has_cert vm-1 && ok "vm-1 has a certificate" || not_ok "vm-1 has no certificate"
s1=$(cert_of vm-1)
uuid=$(lv domuuid vm-1)
[[ $(vc show "$s1" --json | jq -r .placement) == "trust-host-ca=$FP
require=site=eu-central|eu-west" ]] && ok "the placement it was issued under is recorded with it" ||
	not_ok "placement record: $(vc show "$s1" --json | jq .placement)"

# post AS PATH SERIAL: the HTTP status; the body in $T/post.out
post() {
	curl -sS -o "$T/post.out" -w '%{http_code}' --cacert "$HCA/ca.pem" \
		--cert "$T/$1.pem" --key "$T/$1/host/host.key" -H 'Content-Type: application/json' \
		--data "{\"vm_uuid\": \"$uuid\", \"serial\": \"$3\"}" "https://localhost:$PORT/peer/v1/$2"
}
refused() { # WHAT AS PATH SERIAL WANT-IN-REASON
	local code
	code=$(post "$2" "$3" "$4")
	if [[ $code == 403 ]] && grep -q "$5" "$T/post.out"; then
		ok "$1: 403 ($(head -c 100 "$T/post.out"))"
	else
		not_ok "$1: $code $(cat "$T/post.out")"
	fi
}
still_valid() { [[ $(status_of "$s1") == valid ]] && ok "... and $s1 stays valid" || not_ok "$s1 is $(status_of "$s1")"; }

refused "a claim while the VM runs here, without an announcement" b handover "$s1" "was announced"
refused "a claim naming serial 00" b handover 00 "names certificate 00"
refused "an announcement from outside the placement" c announce "$s1" "site=us-east not in"
refused "an announcement naming another serial" b announce 00 "names certificate 00"
still_valid

# the original report: the VM stopped (not migrated), a claim with curl
lv destroy vm-1 >/dev/null
wait_for 10 bash -c "'$VIRTCERT' --config '$CONF' show vm-1 --json | jq -e '.domain.state == \"STOPPED\"'" || not_ok "vm-1 not STOPPED"
refused "a claim for a stopped VM" b handover "$s1" "was announced"
refused "a claim for a stopped VM from outside the placement" c handover "$s1" "outside the placement"
refused "an announcement for a stopped VM" b announce "$s1" "does not run on this host"
still_valid

# a running VM: the destination's announcement is accepted; the claim still
# waits for the migration
lv start vm-1 >/dev/null
wait_for 10 bash -c "'$VIRTCERT' --config '$CONF' show vm-1 --json | jq -e '.domain.state != \"STOPPED\"'" || true
code=$(post b announce "$s1")
[[ $code == 200 ]] && jq -e '.accepted == true' "$T/post.out" >/dev/null &&
	ok "b announces a migration of the running VM: 200" || not_ok "announce: $code $(cat "$T/post.out")"
# the announced host's early claim waits (up to 5 s) for the VM to leave,
# then is refused
start=$(date +%s%N)
refused "b's claim before the VM left" b handover "$s1" "still runs"
waited=$((($(date +%s%N) - start) / 1000000))
((waited >= 4500)) && ok "... after waiting ${waited} ms for the VM to leave" || not_ok "answered after ${waited} ms"
refused "c's claim meanwhile (not announced)" c handover "$s1" "outside the placement"
still_valid

# certificates from the trusted host CA that are no host identity
bad_cert() { # NAME EXTFILE-LINES...
	local n=$1
	shift
	mkdir -p "$T/$n/host"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$n.example.com" \
		-keyout "$T/$n/host/host.key" -out "$T/$n.csr" 2>/dev/null
	printf '%s\n' "$@" >"$T/$n.ext"
	openssl x509 -req -in "$T/$n.csr" -CA "$HCA/ca.pem" -CAkey "$HCA/ca.key" -CAcreateserial \
		-days 1 -extfile "$T/$n.ext" -out "$T/$n.pem" 2>/dev/null
}
bad_cert ca "basicConstraints=critical,CA:TRUE" "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=DNS:ca.example.com"
bad_cert noeku "basicConstraints=critical,CA:FALSE" "subjectAltName=DNS:noeku.example.com"
bad_cert wild "basicConstraints=critical,CA:FALSE" "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=DNS:*.example.com"
bad_cert attr "basicConstraints=critical,CA:FALSE" "extendedKeyUsage=serverAuth,clientAuth" \
	"subjectAltName=DNS:attr.example.com,URI:urn:virtcert:host:Site=eu west"
refused "a CA certificate as the client" ca announce "$s1" "CA:TRUE"
refused "a client certificate without EKU" noeku announce "$s1" "no extendedKeyUsage"
refused "a wildcard client certificate" wild announce "$s1" "wildcard"
refused "a malformed urn:virtcert:host: attribute" attr announce "$s1" "not a host identity"
still_valid
# metadata narrows the host's policy, never widens it; policy show says who set what
meta='<vc:vm xmlns:vc="urn:virtcert:domain:1"><vc:placement><vc:require attr="site">us-east|eu-west</vc:require></vc:placement></vc:vm>'
test_domain vm-2 "$meta" "$(cat /proc/sys/kernel/random/uuid)" >"$T/vm-2.xml"
vc policy show --xml "$T/vm-2.xml" --json >"$T/show2.json" 2>&1 || true
jq -e '.policy.require == [{"attr": "site", "values": ["eu-west"]}] and (.policy.sources.require | endswith("narrowed by domain metadata"))' "$T/show2.json" >/dev/null &&
	ok "policy show: metadata site=us-east|eu-west over policy.d eu-west|eu-central is eu-west, and says so" ||
	{ not_ok "policy show narrowing"; cat "$T/show2.json"; }
# into a file first: grep -q ends the pipe at its first match, and under
# pipefail the writer's SIGPIPE would fail the check
vc policy show --xml "$T/vm-2.xml" >"$T/show2.txt" 2>&1 || true
grep -q "^Set by:    require .*narrowed by domain metadata" "$T/show2.txt" &&
	ok "policy show: a Set by: line per key" || not_ok "policy show: no Set by: lines"
meta='<vc:vm xmlns:vc="urn:virtcert:domain:1"><vc:name>www.example.com</vc:name></vc:vm>'
test_domain vm-3 "$meta" "$(cat /proc/sys/kernel/random/uuid)" >"$T/vm-3.xml"
check_fails "policy show: a metadata name outside the group's subtrees is refused" vc policy show --xml "$T/vm-3.xml"
grep -q "outside what" "$T/check.out" && ok "... naming the bound" || { not_ok "no reason"; cat "$T/check.out"; }

grep -q "migration announcement for VM $uuid (serial $s1) from b.example.com" "$T/virtcertd.log" &&
	ok "the daemon logs who announced what" || not_ok "no announcement in the daemon's log"
finish
