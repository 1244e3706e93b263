#!/usr/bin/env bash
# This host's certificate over its life, with the real virtcertd, CLI and
# hook (libvirt test driver, no QEMU):
# - [placement] require-tls: the hook refuses every incoming migration while
#   libvirt's qemu.conf does not make this host migrate over verified TLS;
# - the host certificate revoked on the host CA's CRL, then `reload`: the
#   certificate of the VM whose placement relied on it is revoked
#   (privilegeWithdrawn, reason in `show` and the log), the unrestricted VM
#   keeps its own, nothing is issued (renew and issue by hand refused too,
#   naming the reason); a fresh host certificate and issuing resumes;
# - expiry noticed by the [host] crl-refresh schedule, without reload;
# - the warning at 2/3 of the life (log, /metrics), `virtcert host renew`
#   (a CSR for the same key and attributes; signed and installed with --dir);
# - [host] crl-url: the CRL fetched at reload, garbage and a stranger's CRL
#   refused (the CRL in place stays), a revocation there counts;
# - a host CA rotation: both CAs trusted during the overlap, a peer from the
#   new one accepted while the old one still is.
source "$VC_SOURCE_ROOT/tests/lib/common.sh"

HOOK=${VIRTCERT_HOOK:-$VC_BUILD_ROOT/hooks/virtcert-hook}
[[ -x $HOOK ]] || { echo "virtcert-hook not built ($HOOK)"; exit 77; }

# ---- [placement] require-tls -----------------------------------------------
hook() { # hook VM OP SUBOP < XML: stderr in $T/hook.err
	env -i LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin VIRTCERT_HOOK_CONFIG="$CONF" \
		"$HOOK" "$1" "$2" "$3" - >"$T/hook.out" 2>"$T/hook.err"
}
expect_hook() { # STATUS DESCRIPTION PATTERN OP SUBOP
	local want=$1 d=$2 pat=$3 got=0
	hook plain "$4" "$5" <"$T/plain.xml" || got=$?
	if [[ $got -ne $want ]]; then
		not_ok "$d: exit $got, wanted $want"; sed 's/^/    /' "$T/hook.err"
	elif [[ -n $pat ]] && ! grep -qF -- "$pat" "$T/hook.err"; then
		not_ok "$d: stderr lacks \"$pat\""; sed 's/^/    /' "$T/hook.err"
	else
		ok "$d (exit $got)"
	fi
}
test_domain plain "" >"$T/plain.xml"
QC="$T/qemu.conf"
vc_write_config "[placement]" require-tls=yes "qemu-conf=$QC"
expect_hook 1 "require-tls, no qemu.conf: migration refused" "cannot read libvirt's qemu.conf" migrate begin
expect_hook 0 "require-tls does not concern a start" "" prepare begin
mkdir -p "$T/pki"
cat >"$QC" <<EOC
# as shipped, with the certificate directory set
migrate_tls_x509_cert_dir = "$T/pki"
cgroup_device_acl = [
    "/dev/null", "/dev/full",
]
EOC
expect_hook 1 "require-tls, qemu.conf without migrate_tls_force: refused" "does not set migrate_tls_force = 1" migrate begin
echo "migrate_tls_force = 1" >>"$QC"
expect_hook 1 "require-tls, no certificates in the TLS directory: refused" "has no ca-cert.pem, server-cert.pem, client-cert.pem" migrate begin
touch "$T/pki/ca-cert.pem" "$T/pki/server-cert.pem" "$T/pki/client-cert.pem"
echo "migrate_tls_x509_verify = 0" >>"$QC"
expect_hook 1 "require-tls, peer verification off: refused" "turns off migrate_tls_x509_verify" migrate begin
sed -i 's/migrate_tls_x509_verify = 0/migrate_tls_x509_verify = 1/' "$QC"
expect_hook 0 "require-tls with migrate_tls_force = 1, verification and the files: allowed" "" migrate begin
echo 'migrate_tls_force = "yes' >>"$QC"
expect_hook 1 "a qemu.conf that does not parse: refused, naming the line" "qemu.conf, line 8: a string is not closed" migrate begin

# ---- a host certificate and two VMs ----------------------------------------
vc host-ca init --dir "$T/hostca" --cn "old host CA" >/dev/null
vc host enroll --ca "$T/hostca/ca.pem" --attr site=eu-west --fqdn h1.example.com >/dev/null
vc host-ca sign "$STATE/host/host.csr" --dir "$T/hostca" --out "$T/h1.pem" >/dev/null
vc host import "$T/h1.pem" >/dev/null
vc host-ca crl --dir "$T/hostca" --out "$STATE/host/hostca.crl" >/dev/null
FP=$(openssl x509 -in "$T/hostca/ca.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d :)
vc ca init --permit vms.example.com >/dev/null

start_libvirtd
keep_test_driver
PORT=$(free_port)
conf() { # conf CRL-REFRESH [HOST LINE...]
	vc_write_config "libvirt-uri=$TEST_URI" reconcile-interval=3600 "http-address=127.0.0.1:$PORT" \
		"${VC_CONF_CA_URLS[@]}" "[host]" "crl-refresh=$1" "${@:2}"
}
conf 1h
check "virtcertd starts" start_daemon
check "virtcert watch is live" start_watch

meta_placed="<vc:vm xmlns:vc='urn:virtcert:domain:1'><vc:name>{name}.vms.example.com</vc:name><vc:placement><vc:trust-ca>$FP</vc:trust-ca><vc:require attr='site'>eu-west</vc:require></vc:placement></vc:vm>"
meta_free="<vc:vm xmlns:vc='urn:virtcert:domain:1'><vc:name>{name}.vms.example.com</vc:name></vc:vm>"
test_domain placed "$meta_placed" >"$T/placed.xml"
test_domain free "$meta_free" >"$T/free.xml"
test_domain late "$meta_free" >"$T/late.xml"
for vm in placed free; do lv define "$T/$vm.xml" >/dev/null && lv start "$vm" >/dev/null; done
wait_for 10 has_cert placed && ok "placed (site=eu-west): issued" || { not_ok "placed issued"; vc show placed --json || true; }
wait_for 10 has_cert free && ok "free (no placement): issued" || not_ok "free issued"
p1=$(cert_of placed) f1=$(cert_of free)
host_state() { vc status --json | jq -r '.host_certificate.state + " " + (.host_certificate.issuing | tostring)'; }
[[ $(host_state) == "usable true" ]] && ok "status: host certificate usable, issuing" || not_ok "status: $(host_state)"

# ---- revoked on the host CA's CRL, then reload -----------------------------
watch_said() { tail -n +"$(($1 + 1))" "$T/watch.log" | jq -n -e --arg d "$2" '[inputs | select(.event == "host-certificate" and ((.detail // "") | startswith($d)))] | length > 0' >/dev/null; }
mark=$(watch_mark)
vc host-ca revoke "$T/h1.pem" --dir "$T/hostca" >/dev/null
vc host-ca crl --dir "$T/hostca" --out "$STATE/host/hostca.crl" >/dev/null
t0=$(date +%s%N)
check "virtcert reload" vc reload
revoked_as() { [[ $(vc show "$1" --json | jq -r '.status + " " + (.reason // "")') == "revoked $2" ]]; }
if wait_for 10 revoked_as "$p1" privilegeWithdrawn; then
	ok "host certificate revoked + reload: placed's certificate revoked (privilegeWithdrawn) in $((($(date +%s%N) - t0) / 1000000)) ms"
else
	not_ok "placed not revoked: $(vc show "$p1" --json | jq -c '{status, reason}')"
fi
wait_for 10 watch_said "$mark" unusable && ok "virtcert watch: host-certificate unusable" || { not_ok "no host-certificate event"; tail -n +"$((mark + 1))" "$T/watch.log" | cut -c1-200; }
wait_for 10 queue_empty || true
[[ $(status_of "$f1") == valid ]] && ok "free (its placement did not rely on the host certificate) keeps its certificate" || not_ok "free: $(status_of "$f1")"
vc show placed --json | jq -e '.domain.last_error | test("certificate is not usable.*revoked")' >/dev/null &&
	ok "show placed: $(vc show placed --json | jq -r .domain.last_error | cut -c1-100)" || { not_ok "placed's reason"; vc show placed --json; }
grep -q "this host's certificate is not usable (.*revoked.*): the certificates of VMs whose placement relies on it are revoked, and no VM is issued a certificate here" "$T/virtcertd.log" &&
	ok "the daemon says so in its log" || { not_ok "no log line"; tail -5 "$T/virtcertd.log"; }
[[ $(host_state) == "unusable false" ]] && ok "status: host certificate unusable, not issuing" || not_ok "status: $(host_state)"
curl -sS "http://127.0.0.1:$PORT/metrics" >"$T/metrics.txt"
grep -qx "virtcert_host_certificate_usable 0" "$T/metrics.txt" && ok "metrics: virtcert_host_certificate_usable 0" || not_ok "metrics: $(grep host_certificate "$T/metrics.txt")"
# nor by hand: renewals and manual issuance, through the daemon or not,
# for the VM whose placement relied on the host certificate and for the
# unrestricted one alike (the decisions' rule), each naming the reason
n_certs() { vc show "$1" --json | jq '.certificates | length'; }
refused_by_hand() { # WHAT COMMAND...: fails, saying why
	local what=$1
	shift
	if "$@" >"$T/hand.out" 2>&1; then
		not_ok "$what was accepted with a revoked host certificate: $(head -c 200 "$T/hand.out")"
	elif grep -q "nothing is issued on this host while its host certificate is not usable (.*revoked.*): install a valid one" "$T/hand.out"; then
		ok "$what refused: $(grep -o 'nothing is issued.*' "$T/hand.out" | cut -c1-120)…"
	else
		not_ok "$what failed, but not naming the host certificate: $(cat "$T/hand.out")"
	fi
}
nf=$(n_certs free) np=$(n_certs placed)
refused_by_hand "virtcert renew free" vc renew free
refused_by_hand "virtcert renew placed" vc renew placed
refused_by_hand "virtcert issue (through the daemon)" vc issue --vm byhand --dns byhand.vms.example.com
refused_by_hand "virtcert issue --cert-out (without the daemon)" vc issue --vm byhand --dns byhand.vms.example.com --cert-out "$T/hand.pem"
[[ ! -e $T/hand.pem && $(n_certs free) == "$nf" && $(n_certs placed) == "$np" && $(cert_of free) == "$f1" && -z $(cert_of byhand) ]] &&
	ok "no certificate was issued by hand" || not_ok "issued by hand: free $(n_certs free) (was $nf), placed $(n_certs placed) (was $np), byhand $(cert_of byhand)"
# a VM started now is not issued a certificate
mark=$(watch_mark)
lv define "$T/late.xml" >/dev/null && lv start late >/dev/null
wait_handled "$mark" late started || not_ok "late's start was not handled"
has_cert late && not_ok "late was issued a certificate with an unusable host certificate" ||
	ok "late (started meanwhile): no certificate ($(vc show late --json | jq -r .domain.state))"

# ---- a fresh host certificate: issuing resumes -----------------------------
mark=$(watch_mark)
vc host-ca sign "$STATE/host/host.csr" --dir "$T/hostca" --out "$T/h2.pem" >/dev/null
check "a fresh host certificate is installed" vc host import "$T/h2.pem"
check "virtcert reload" vc reload
wait_for 10 watch_said "$mark" usable && ok "virtcert watch: host-certificate usable" || not_ok "no usable event"
wait_for 10 has_cert placed && ok "placed: a new certificate" || not_ok "placed not issued again"
wait_for 10 has_cert late && ok "late: issued" || not_ok "late not issued"
[[ $(cert_of free) == "$f1" ]] && ok "free: still the same certificate" || not_ok "free: $(cert_of free) != $f1"
grep -q "this host's certificate is usable again (h1.example.com, valid until .*): issuing resumes" "$T/virtcertd.log" &&
	ok "logged: issuing resumes" || not_ok "no 'issuing resumes' line"

# ---- expiry, noticed by the crl-refresh schedule (no reload) ---------------
kill "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true
conf 2s
check "virtcertd restarts with crl-refresh=2s" start_daemon
kill "$WATCH_PID" 2>/dev/null || true
check "virtcert watch is live" start_watch
wait_for 10 has_cert placed || not_ok "placed has no certificate after the restart"
p2=$(cert_of placed)
vc host-ca sign "$STATE/host/host.csr" --dir "$T/hostca" --days 0 --out "$T/h-expired.pem" >/dev/null
cp "$T/h-expired.pem" "$STATE/host/host.pem" # import refuses an expired one: as if time had passed
t0=$(date +%s%N)
if wait_for 10 revoked_as "$p2" privilegeWithdrawn; then
	ok "expired host certificate noticed by the schedule: placed revoked in $((($(date +%s%N) - t0) / 1000000)) ms (crl-refresh=2s)"
else
	not_ok "expiry not noticed: $(vc show "$p2" --json | jq -c '{status, reason}')"
fi
vc show placed --json | jq -e '.domain.last_error | test("expired")' >/dev/null && ok "... the reason says expired" || not_ok "reason: $(vc show placed --json | jq -r .domain.last_error)"

# ---- 2/3 of the life, renew ----------------------------------------------
mark=$(watch_mark)
vc host-ca sign "$STATE/host/host.csr" --dir "$T/hostca" --days 1 --backdate 3 --out "$T/h-old.pem" >/dev/null
check "a host certificate at 3/4 of its life is installed" vc host import "$T/h-old.pem"
check "virtcert reload" vc reload
wait_for 10 watch_said "$mark" renewal-due && ok "virtcert watch: host-certificate renewal-due" || not_ok "no renewal-due event"
grep -q "this host's certificate has passed 2/3 of its life and expires .*: renew it (virtcert host renew)" "$T/virtcertd.log" &&
	ok "logged: renew the host certificate" || not_ok "no renewal warning"
curl -sS "http://127.0.0.1:$PORT/metrics" >"$T/metrics.txt"
grep -qx "virtcert_host_certificate_renewal_due 1" "$T/metrics.txt" && ok "metrics: virtcert_host_certificate_renewal_due 1" || not_ok "metrics: $(grep host_certificate "$T/metrics.txt")"
left=$(awk '$1 == "virtcert_host_certificate_expiry_seconds" {printf "%d", $2}' "$T/metrics.txt")
((left > 0 && left <= 86400)) && ok "metrics: virtcert_host_certificate_expiry_seconds $left" || not_ok "expiry gauge: $left"
wait_for 10 has_cert placed && ok "placed is issued again (the certificate is still valid)" || not_ok "placed not issued"

rm -f "$STATE/host/host.csr"
check "virtcert host renew (no host CA here): a CSR" vc host renew
openssl req -in "$STATE/host/host.csr" -noout -text >"$T/csr.txt" 2>&1
grep -q "URI:urn:virtcert:host:site=eu-west" "$T/csr.txt" && grep -q "DNS:h1.example.com" "$T/csr.txt" &&
	ok "the renewal CSR carries the name and attributes" || { not_ok "renewal CSR"; cat "$T/csr.txt"; }
[[ $(openssl req -in "$STATE/host/host.csr" -noout -pubkey) == $(openssl pkey -in "$STATE/host/host.key" -pubout) ]] &&
	ok "... for the same key" || not_ok "renewal CSR: another key"
old_serial=$(openssl x509 -in "$STATE/host/host.pem" -noout -serial)
check "virtcert host renew --dir (this host holds the host CA)" vc host renew --dir "$T/hostca" --days 90
[[ $(openssl x509 -in "$STATE/host/host.pem" -noout -serial) != "$old_serial" ]] && ok "a new host certificate is installed" || not_ok "host.pem unchanged"
check "virtcert reload" vc reload
curl -sS "http://127.0.0.1:$PORT/metrics" >"$T/metrics.txt"
grep -qx "virtcert_host_certificate_renewal_due 0" "$T/metrics.txt" && ok "metrics: renewal_due 0 after the renewal" || not_ok "metrics after renewal: $(grep host_certificate "$T/metrics.txt")"
check_fails "virtcert host renew --days 0 is refused" vc host renew --dir "$T/hostca" --days 0

# ---- [host] crl-url: the CRL fetched at reload --------------------------------
mkdir -p "$T/www"
WPORT=$(free_port)
(cd "$T/www" && exec python3 -m http.server --bind 127.0.0.1 "$WPORT" >/dev/null 2>&1) &
cleanup_hooks+=("kill $!")
wait_for 10 curl -sf -o /dev/null "http://127.0.0.1:$WPORT/"
kill "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true
conf 1h "crl-url=http://127.0.0.1:$WPORT/hostca.crl"
check "virtcertd restarts with crl-url" start_daemon
wait_for 10 has_cert placed || not_ok "placed has no certificate"
p3=$(cert_of placed)
cp "$STATE/host/hostca.crl" "$T/crl-before"
logged() { grep -q -- "$1" "$T/virtcertd.log"; }
echo "not a CRL" >"$T/www/hostca.crl"
check "virtcert reload" vc reload
wait_for 10 logged "cannot fetch the host CA's CRL from http://127.0.0.1:$WPORT/hostca.crl: .*not a CRL" &&
	ok "garbage at crl-url: refused, logged" || not_ok "garbage CRL not refused"
vc host-ca init --dir "$T/strangerca" >/dev/null
vc host-ca crl --dir "$T/strangerca" --out "$T/www/hostca.crl" >/dev/null
check "virtcert reload" vc reload
wait_for 10 logged "hostca.crl: not a CRL signed by a trusted host CA" &&
	ok "a CRL of another CA at crl-url: refused, logged" || not_ok "stranger CRL not refused"
cmp -s "$T/crl-before" "$STATE/host/hostca.crl" && ok "... the CRL in place stays" || not_ok "the CRL in place was replaced"
[[ $(status_of "$p3") == valid ]] && ok "... and placed keeps its certificate" || not_ok "placed: $(status_of "$p3")"
vc host-ca revoke "$STATE/host/host.pem" --dir "$T/hostca" >/dev/null
vc host-ca crl --dir "$T/hostca" --out "$T/www/hostca.crl" >/dev/null
t0=$(date +%s%N)
check "virtcert reload" vc reload
if wait_for 10 revoked_as "$p3" privilegeWithdrawn; then
	ok "host certificate revoked on the CRL at crl-url, reload: placed revoked in $((($(date +%s%N) - t0) / 1000000)) ms"
else
	not_ok "crl-url: placed not revoked: $(vc show "$p3" --json | jq -c '{status, reason}')"
fi
logged "the host CA's CRL from http://127.0.0.1:$WPORT/hostca.crl: installed as $STATE/host/hostca.crl" &&
	ok "logged: the fetched CRL installed" || not_ok "no 'installed' line"
kill "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true
conf 1h
rm -f "$STATE/host/hostca.crl"
check "virtcertd restarts without crl-url" start_daemon

# ---- a host CA rotation with an overlap -------------------------------------
vc host-ca init --dir "$T/newca" --cn "new host CA" >/dev/null
NFP=$(openssl x509 -in "$T/newca/ca.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d :)
peer_cert() { # CA-DIR NAME: a peer host's certificate in $T/NAME.pem
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$2.key" -out "$T/$2.csr" \
		-subj "/CN=$2.example.com" -addext "subjectAltName=DNS:$2.example.com,URI:urn:virtcert:host:site=eu-west" 2>/dev/null
	vc host-ca sign "$T/$2.csr" --dir "$1" --out "$T/$2.pem" >/dev/null
}
peer_cert "$T/hostca" oldpeer
peer_cert "$T/newca" newpeer
# the VM's owner lists both CAs for the overlap
test_domain rot "<vc:vm xmlns:vc='urn:virtcert:domain:1'><vc:name>{name}.vms.example.com</vc:name><vc:placement><vc:trust-ca>$FP</vc:trust-ca><vc:trust-ca>$NFP</vc:trust-ca><vc:require attr='site'>eu-west</vc:require></vc:placement></vc:vm>" "$(cat /proc/sys/kernel/random/uuid)" >"$T/rot.xml"
vc host-ca crl --dir "$T/newca" --out "$T/newca.crl" >/dev/null
expect_status 2 "before the overlap: a peer from the new host CA is refused" vc policy check --xml "$T/rot.xml" --host "$T/newpeer.pem"
rm -f "$STATE/host/hostca.crl" # the CRLs of both CAs are published separately
cat "$T/hostca/ca.pem" "$T/newca/ca.pem" >"$STATE/host/hostca.pem"
check "overlap: a peer from the new host CA is accepted" vc policy check --xml "$T/rot.xml" --host "$T/newpeer.pem"
check "overlap: a peer from the old host CA still is" vc policy check --xml "$T/rot.xml" --host "$T/oldpeer.pem"
check "overlap: this host moves to the new CA (renew --dir)" vc host renew --dir "$T/newca"
check "virtcert reload" vc reload
[[ $(host_state) == "usable true" ]] && ok "this host's certificate from the new CA is usable" || not_ok "status: $(host_state)"
# placed trusts only the old CA: its owner had not listed the new one
vc_placed_refused() { vc show placed --json | jq -e '.domain.last_error | test("not trusted by the VM")' >/dev/null; }
wait_for 10 vc_placed_refused && ok "placed, whose owner lists only the old CA, is refused here now" || not_ok "placed: $(vc show placed --json | jq -r .domain.last_error)"
cp "$T/newca/ca.pem" "$STATE/host/hostca.pem"
expect_status 2 "after the overlap: a peer from the old host CA is refused" vc policy check --xml "$T/rot.xml" --host "$T/oldpeer.pem"
check "after the overlap: a peer from the new host CA is accepted" vc policy check --xml "$T/rot.xml" --host "$T/newpeer.pem"
finish
