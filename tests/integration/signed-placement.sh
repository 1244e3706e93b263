#!/usr/bin/env bash
# Signed placement on a host with [placement] require-signed=yes, through
# the real virtcert-hook and virtcertd: a valid owner signature passes; an
# unsigned placement, one signed by an owner no trusted owner CA issued, one
# bound to another VM, an expired one, one with a flipped byte in the
# signature or an altered rule, and one whose owner certificate the owner CA
# revoked are refused at "migrate begin" and "prepare begin", with the
# reason on stderr. Then a running VM (libvirt test driver) whose placement
# is weakened with `virsh metadata --live --config` loses its certificate
# (privilegeWithdrawn) within 1 s, measured by polling.
source "$VC_SOURCE_ROOT/tests/lib/common.sh"

HOOK=${VIRTCERT_HOOK:-$VC_BUILD_ROOT/hooks/virtcert-hook}
[[ -x $HOOK ]] || { echo "virtcert-hook not built ($HOOK)"; exit 77; }
command -v openssl >/dev/null || { echo "openssl not installed"; exit 77; }

# ---- the owner's side: an owner CA, an owner, and a stranger ---------------
# `virtcert host-ca` serves as a lab CA for owners too: it signs any CSR
# with a dNSName, and revokes and makes CRLs.
owner_cert() { # owner_cert CA_DIR NAME: $T/NAME.key, $T/NAME.pem
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$2.key" \
		-out "$T/$2.csr" -subj "/CN=$2" -addext "subjectAltName=DNS:$2.owners.example.com" 2>/dev/null
	vc host-ca sign "$T/$2.csr" --dir "$1" --out "$T/$2.pem" >/dev/null
}
vc host-ca init --dir "$T/owner-ca" --cn "Example owner CA" >/dev/null
vc host-ca init --dir "$T/other-ca" --cn "Someone else's CA" >/dev/null
owner_cert "$T/owner-ca" alice
owner_cert "$T/owner-ca" bob
owner_cert "$T/other-ca" mallory
vc host-ca crl --dir "$T/owner-ca" --out "$T/owner.crl" >/dev/null

# ---- this host: host certificate site=eu-west, signed placement required --
vc host-ca init --dir "$T/hostca" >/dev/null
vc host enroll --ca "$T/hostca/ca.pem" --attr site=eu-west --fqdn dest.example.com >/dev/null
vc host-ca sign "$STATE/host/host.csr" --dir "$T/hostca" --out "$T/host.pem" >/dev/null
vc host import "$T/host.pem" >/dev/null
CA_FP=$(openssl x509 -in "$T/hostca/ca.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d :)
PLACEMENT_LINES=("[placement]" "owner-ca=$T/owner-ca/ca.pem" "owner-crl=$T/owner.crl" "require-signed=yes")
write_conf() { # write_conf [EXTRA DAEMON LINES]
	vc_write_config "$@" "${VC_CONF_CA_URLS[@]}" "[hook]" timeout=2000 "${PLACEMENT_LINES[@]}"
}
write_conf libvirt-uri=test:///default

hook() { # hook VM OP SUBOP < XML; stdout -> $T/hook.out, stderr -> $T/hook.err
	env -i LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root USER=root LOGNAME=root \
		VIRTCERT_HOOK_CONFIG="$CONF" "$HOOK" "$1" "$2" "$3" - >"$T/hook.out" 2>"$T/hook.err"
}
expect_hook() { # expect_hook STATUS DESCRIPTION REASON-PATTERN VM OP SUBOP < XML
	local want=$1 d=$2 pat=$3 got=0
	shift 3
	hook "$@" || got=$?
	if [[ $got -ne $want ]]; then
		not_ok "$d: exit $got, wanted $want"; sed 's/^/    /' "$T/hook.err"
	elif [[ -s $T/hook.out ]]; then
		not_ok "$d: wrote to stdout"
	elif [[ -n $pat ]] && ! grep -q -- "$pat" "$T/hook.err"; then
		not_ok "$d: stderr lacks \"$pat\""; sed 's/^/    /' "$T/hook.err"
	else
		ok "$d (exit $got)"
	fi
}

RULES="<vc:trust-ca>$CA_FP</vc:trust-ca><vc:require attr='site'>eu-west|eu-central</vc:require>"
echo "<vc:placement xmlns:vc='urn:virtcert:domain:1' check-on-start='yes'>$RULES</vc:placement>" >"$T/placement.xml"
sign() { # sign OWNER VM-UUID [--not-after T]: the signed <placement> element, without namespace
	local who=$1 uuid=$2
	shift 2
	vc placement sign --key "$T/$who.key" --cert "$T/$who.pem" --vm "$uuid" "$@" "$T/placement.xml" |
		sed 's/ xmlns:virtcert="urn:virtcert:domain:1"//; s/virtcert:/vc:/g'
}
dom() { # dom NAME UUID PLACEMENT-ELEMENT: a domain as libvirt hands it to a hook
	test_domain "$1" "<vc:vm xmlns:vc='urn:virtcert:domain:1'><vc:name>{name}.vms.example.com</vc:name>$3</vc:vm>" "$2"
}
uuid() { cat /proc/sys/kernel/random/uuid; }

U_OK=$(uuid) U_OTHER=$(uuid)
dom valid "$U_OK" "$(sign alice "$U_OK")" >"$T/valid.xml"
dom unsigned "$U_OK" "<vc:placement check-on-start='yes'>$RULES</vc:placement>" >"$T/unsigned.xml"
dom stranger "$U_OK" "$(sign mallory "$U_OK")" >"$T/stranger.xml"
dom rebound "$U_OK" "$(sign alice "$U_OTHER")" >"$T/rebound.xml"
dom expired "$U_OK" "$(sign alice "$U_OK" --not-after 2020-01-01T00:00:00Z)" >"$T/expired.xml"
# a flipped byte in the signature: one base64 character in its middle
sig=$(sed -nE 's#.*<vc:signature[^>]*>([^<]*)</vc:signature>.*#\1#p' "$T/valid.xml")
c=${sig:300:1}
bad="${sig:0:300}$([[ $c == A ]] && echo B || echo A)${sig:301}"
sed "s#$sig#$bad#" "$T/valid.xml" >"$T/tampered-sig.xml"
sed 's/eu-central|eu-west/eu-central|eu-west|us-east/' "$T/valid.xml" >"$T/tampered-rule.xml"
dom revoked "$U_OK" "$(sign bob "$U_OK")" >"$T/revoked.xml"
cmp -s "$T/valid.xml" "$T/tampered-sig.xml" && not_ok "the tampered copy differs from the signed one"

# offline, as the owner checks before handing the XML over
check "virtcert placement verify: valid" vc placement verify --owner-ca "$T/owner-ca/ca.pem" "$T/valid.xml"
expect_status 2 "virtcert placement verify: altered rule refused" \
	vc placement verify --owner-ca "$T/owner-ca/ca.pem" "$T/tampered-rule.xml"

vc ca init --permit vms.example.com >/dev/null
check "virtcertd starts" start_daemon

for op in "migrate begin" "prepare begin"; do
	set -- $op
	what=$([[ $1 == migrate ]] && echo migrate || echo start)
	expect_hook 0 "$op: validly signed placement allowed" "" valid $1 $2 <"$T/valid.xml"
	expect_hook 1 "$op: unsigned placement refused" \
		"refusing to $what VM unsigned on this host: the VM's placement is not signed by its owner" unsigned $1 $2 <"$T/unsigned.xml"
	expect_hook 1 "$op: signed by an owner no trusted owner CA issued" \
		"which no trusted owner CA issued" stranger $1 $2 <"$T/stranger.xml"
	expect_hook 1 "$op: signed for another VM" \
		"the placement is signed for VM $U_OTHER, not for this VM ($U_OK)" rebound $1 $2 <"$T/rebound.xml"
	expect_hook 1 "$op: expired signature" \
		"the placement signature expired on 2020-01-01T00:00:00Z" expired $1 $2 <"$T/expired.xml"
	expect_hook 1 "$op: a flipped byte in the signature" "signed placement refused" \
		tampered-sig $1 $2 <"$T/tampered-sig.xml"
	expect_hook 1 "$op: a rule widened after signing" \
		"the placement does not match its signature (altered after signing)" tampered-rule $1 $2 <"$T/tampered-rule.xml"
	expect_hook 0 "$op: bob, not yet revoked, allowed" "" revoked $1 $2 <"$T/revoked.xml"
done

# the owner CA revokes bob: the next check refuses, no restart or reload
vc host-ca revoke "$T/bob.pem" --dir "$T/owner-ca" >/dev/null
vc host-ca crl --dir "$T/owner-ca" --out "$T/owner.crl" >/dev/null
expect_hook 1 "revoked owner certificate: migrate refused at the next check" \
	"is revoked by its owner CA" revoked migrate begin <"$T/revoked.xml"
expect_hook 1 "... and the start" "is revoked by its owner CA" revoked prepare begin <"$T/revoked.xml"
expect_hook 0 "alice, not revoked, still allowed" "" valid migrate begin <"$T/valid.xml"
# a VM no policy selects is none of this host's business
test_domain plain "" "$(uuid)" >"$T/plain.xml"
expect_hook 0 "a VM without virtcert policy passes" "" plain migrate begin <"$T/plain.xml"
kill "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true

# ---- a running VM whose placement is weakened ------------------------------
start_libvirtd
keep_test_driver
write_conf "libvirt-uri=$TEST_URI" reconcile-interval=3600
check "virtcertd starts on the private libvirtd" start_daemon

U_RUN=$(uuid) U_RUN2=$(uuid)
dom run-1 "$U_RUN" "$(sign alice "$U_RUN")" >"$T/run-1.xml"
dom run-2 "$U_RUN2" "$(sign alice "$U_RUN2")" >"$T/run-2.xml"
lv define "$T/run-1.xml" >/dev/null && lv start run-1 >/dev/null
lv define "$T/run-2.xml" >/dev/null && lv start run-2 >/dev/null
wait_for 10 has_cert run-1 && ok "a VM with a valid signed placement is issued a certificate" ||
	{ not_ok "run-1 issued"; vc show run-1 --json || true; }
wait_for 10 has_cert run-2 || not_ok "run-2 issued"
s1=$(cert_of run-1) s2=$(cert_of run-2)

revoked_as() { # revoked_as SERIAL REASON
	[[ $(vc show "$1" --json | jq -r '.status + " " + (.reason // "")') == "revoked $2" ]]
}
# poll_revoked SERIAL T0: polls (no fixed sleep) until SERIAL is revoked as
# privilegeWithdrawn or 3 s passed since T0 (ns); sets ms to the time taken
poll_revoked() {
	local now
	while :; do
		if revoked_as "$1" privilegeWithdrawn; then
			now=$(date +%s%N); ms=$(((now - $2) / 1000000)); return 0
		fi
		now=$(date +%s%N)
		(((now - $2) / 1000000 > 3000)) && { ms=$(((now - $2) / 1000000)); return 1; }
	done
}
# weakened: the placement dropped, the certificate must go within 1 s
t0=$(date +%s%N)
lv metadata run-1 urn:virtcert:domain:1 --live --config --key vc \
	--set "<vm><name>{name}.vms.example.com</name></vm>" >/dev/null
if poll_revoked "$s1" "$t0" && ((ms <= 1000)); then
	ok "placement removed from a running VM: certificate revoked (privilegeWithdrawn) in ${ms} ms"
else
	not_ok "placement removed: not revoked within 1 s (${ms} ms)"; vc show "$s1" --json
fi
vc show run-1 --json | jq -e '.domain.last_error | test("not signed by its owner")' >/dev/null &&
	ok "... the reason is recorded" || { not_ok "reason of run-1"; vc show run-1 --json; }
grep -q "VM run-1: placement signature refused: the VM's placement is not signed" "$T/virtcertd.log" &&
	ok "... and logged" || { not_ok "run-1 reason logged"; tail -5 "$T/virtcertd.log"; }
has_cert run-1 && not_ok "run-1 was issued a new certificate" || ok "... and no new certificate is issued"

# weakened: the rule widened, the old signature left in place
weak=$(sign alice "$U_RUN2" | sed 's/eu-central|eu-west/eu-central|eu-west|us-east/; s/vc://g')
t0=$(date +%s%N)
lv metadata run-2 urn:virtcert:domain:1 --live --config --key vc \
	--set "<vm><name>{name}.vms.example.com</name>$weak</vm>" >/dev/null
if poll_revoked "$s2" "$t0" && ((ms <= 1000)); then
	ok "rule widened under the old signature: certificate revoked (privilegeWithdrawn) in ${ms} ms"
else
	not_ok "rule widened: not revoked within 1 s (${ms} ms)"; vc show "$s2" --json
fi
vc show run-2 --json | jq -e '.domain.last_error | test("altered after signing")' >/dev/null &&
	ok "... saying the placement was altered" || { not_ok "reason of run-2"; vc show run-2 --json; }

# the owner signs the placement again: the VM is served again
lv metadata run-1 urn:virtcert:domain:1 --live --config --key vc \
	--set "<vm><name>{name}.vms.example.com</name>$(sign alice "$U_RUN" | sed 's/vc://g')</vm>" >/dev/null
wait_for 10 has_cert run-1 && ok "signed again by its owner: a new certificate" ||
	{ not_ok "run-1 re-issued"; vc show run-1 --json; }
finish
