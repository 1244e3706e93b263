#!/usr/bin/env bash
# What virtcertd publishes for relying parties, checked with their own
# tools: the URLs in leaves (none without [ca] public-url, and a warning
# naming the key), the CA certificate at the caIssuers URL, the CRL at the
# distribution point (openssl, GnuTLS certtool, NSS crlutil and vfychain
# fetching it from the URL itself), ETag / Last-Modified / 304 with curl, a
# revocation on the served CRL within a second (measured), the host CA's
# CRL, and /metrics parsed by promtool.
source "$VC_SOURCE_ROOT/tests/lib/common.sh"

PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
cat >"$T/policy.d/50-none.conf" <<'EOP'
[none]
match-name=no-such-vm-*
names={name}.vms.example.com
EOP
check "ca init" vc ca init --permit vms.example.com
CA="$STATE/ca"

# ---- no public URL: no URLs in leaves, and the daemon says what to set
vc_write_config "libvirt-uri=test:///default" "http-address=127.0.0.1:$PORT"
check "virtcertd starts without a public URL" start_daemon
grep -q "no \[ca\] public-url in $CONF" "$T/virtcertd.log" &&
	ok "the daemon warns that leaves carry no revocation URL, naming [ca] public-url" ||
	{ not_ok "no warning about public-url"; cat "$T/virtcertd.log"; }
[[ $(grep -c "public-url" "$T/virtcertd.log") == 1 ]] && ok "... once" || not_ok "warned $(grep -c public-url "$T/virtcertd.log") times"
check "issue without a public URL" vc issue --vm plain --dns plain.vms.example.com --cert-out "$T/plain.pem" --key-out "$T/plain.key"
openssl x509 -in "$T/plain.pem" -noout -text >"$T/plain.txt"
! grep -q "CRL Distribution Points\|Authority Information Access\|127.0.0.1" "$T/plain.txt" &&
	ok "a leaf without public-url carries no CRL, OCSP or caIssuers URL" || { not_ok "URLs without public-url"; cat "$T/plain.txt"; }
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true

# ---- virtcert ca init --public-url records it in the configuration
check_fails "ca init --public-url refuses a URL without a scheme" vc ca init --permit vms.example.com --force --public-url "127.0.0.1:$PORT"
grep -q "public-url" "$T/check.out" && ok "... naming the option" || not_ok "error text: $(cat "$T/check.out")"
vc ca init --permit vms.example.com --force --public-url "$BASE/" >"$T/init.out"
grep -q "public-url=$BASE written to $CONF" "$T/init.out" && ok "ca init --public-url writes the configuration" || { not_ok "ca init --public-url"; cat "$T/init.out"; }
grep -qx "public-url=$BASE" "$CONF" && grep -q "^state-dir=" "$CONF" && ok "... keeping the other keys" || { not_ok "configuration after ca init"; cat "$CONF"; }
ID=$(openssl x509 -in "$CA/ca.pem" -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' :\n' | tr 'A-F' 'a-f' | cut -c1-16)
grep -q "$BASE/crl/$ID.crl" "$T/init.out" && ok "... and prints the URLs leaves will carry" || { not_ok "URLs printed"; cat "$T/init.out"; }

[[ $(vc ca show --json | jq -r .urls.crl) == "$BASE/crl/$ID.crl" ]] && ok "ca show prints the leaves' URLs" || { not_ok "ca show URLs"; vc ca show --json; }
check "virtcertd starts with a public URL" start_daemon
check "issue a leaf" vc issue --vm web1 --dns web1.vms.example.com --cert-out "$T/web1.pem" --key-out "$T/web1.key"
check "issue a second leaf" vc issue --vm web2 --dns web2.vms.example.com --cert-out "$T/web2.pem" --key-out "$T/web2.key"
openssl x509 -in "$T/web1.pem" -noout -ext crlDistributionPoints,authorityInfoAccess >"$T/urls.txt"
grep -q "URI:$BASE/crl/$ID.crl" "$T/urls.txt" && ok "CRL distribution point from public-url" || { not_ok "CDP"; cat "$T/urls.txt"; }
grep -q "OCSP - URI:$BASE/ocsp" "$T/urls.txt" && ok "OCSP URL from public-url" || { not_ok "OCSP AIA"; cat "$T/urls.txt"; }
grep -q "CA Issuers - URI:$BASE/ca/$ID.crt" "$T/urls.txt" && ok "caIssuers URL from public-url" || { not_ok "caIssuers AIA"; cat "$T/urls.txt"; }

# ---- the caIssuers URL serves the intermediate
curl -sS -D "$T/ca.h" -o "$T/ca.der" "$BASE/ca/$ID.crt"
grep -qi "^content-type: application/pkix-cert" "$T/ca.h" && ok "caIssuers: application/pkix-cert" || { not_ok "caIssuers content type"; cat "$T/ca.h"; }
cmp -s <(openssl x509 -inform DER -in "$T/ca.der" -outform PEM) <(openssl x509 -in "$CA/ca.pem") &&
	ok "caIssuers: the intermediate, DER" || not_ok "caIssuers body"
# a relying party that has only the root and the leaf builds the chain from the URL
check "openssl: leaf verifies with the chain fetched from caIssuers" openssl verify -x509_strict -CAfile "$CA/root.pem" -untrusted <(openssl x509 -inform DER -in "$T/ca.der") "$T/web1.pem"

# ---- the CRL at its distribution point
crl_get() { curl -sS -D "$T/crl.h" -o "$T/crl.der" "$@" "$BASE/crl/$ID.crl"; }
header() { grep -i "^$1:" "$T/crl.h" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
crl_get
grep -qi "^content-type: application/pkix-crl" "$T/crl.h" && ok "CRL: application/pkix-crl" || { not_ok "CRL content type"; cat "$T/crl.h"; }
etag=$(header ETag)
lastmod=$(header Last-Modified)
[[ $etag == \"*\" && -n $lastmod ]] && ok "CRL: ETag $etag, Last-Modified $lastmod" || { not_ok "CRL validators"; cat "$T/crl.h"; }
check "openssl crl: signature verifies against the CA" openssl crl -inform DER -in "$T/crl.der" -noout -CAfile "$CA/ca.pem"
certtool_crl() { openssl crl -inform DER -in "$T/crl.der" -out "$T/crl.pem" && certtool --verify-crl --load-ca-certificate "$CA/ca.pem" --infile "$T/crl.pem"; }
check "certtool --verify-crl" certtool_crl
code=$(curl -sS -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$BASE/crl/$ID.crl")
[[ $code == 304 ]] && ok "If-None-Match with the current ETag: 304" || not_ok "If-None-Match: $code"
code=$(curl -sS -o /dev/null -w '%{http_code}' -H "If-Modified-Since: $lastmod" "$BASE/crl/$ID.crl")
[[ $code == 304 ]] && ok "If-Modified-Since Last-Modified: 304" || not_ok "If-Modified-Since: $code"
code=$(curl -sS -o /dev/null -w '%{http_code}' -H 'If-None-Match: "other"' "$BASE/crl/$ID.crl")
[[ $code == 200 ]] && ok "another ETag: 200" || not_ok "other ETag: $code"

# ---- a revocation is on the served CRL within a second (measured, not slept)
s2=$(openssl x509 -in "$T/web2.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')
listed() { curl -sS "$BASE/crl/$ID.crl" | openssl crl -inform DER -noout -text | contains -i "serial number: $s2"; }
t0=$(date +%s%N)
check "revoke through the daemon" vc revoke "$s2" --reason keyCompromise
t1=$(date +%s%N)
for ((i = 0; i < 300; i++)); do listed && break; sleep 0.01; done
t2=$(date +%s%N)
ms=$(((t2 - t1) / 1000000))
listed && ((ms < 1000)) && ok "the revocation is on the served CRL $ms ms after it was durable (revoke took $(((t1 - t0) / 1000000)) ms)" ||
	not_ok "revocation visible after $ms ms"
crl_get -H "If-None-Match: $etag"
[[ $(header ETag) != "$etag" && -s $T/crl.der ]] && grep -q "^HTTP/1.1 200" "$T/crl.h" && ok "the old ETag now gets the new CRL (200)" || { not_ok "new CRL"; cat "$T/crl.h"; }
this_update=$(openssl crl -inform DER -in "$T/crl.der" -noout -lastupdate | cut -d= -f2)
revoked_at=$(openssl crl -inform DER -in "$T/crl.der" -noout -text | grep -A1 -i "serial number: ${s2^^}" | sed -n 's/.*Revocation Date: //p')
(($(date -d "$revoked_at" +%s) <= $(date -d "$this_update" +%s))) && ok "no entry dated after thisUpdate ($revoked_at <= $this_update)" || not_ok "entry $revoked_at after thisUpdate $this_update"
check "certtool --verify-crl (after the revocation)" certtool_crl

# ---- NSS: crlutil, and vfychain fetching the CRL from the leaf's own URL
db="$T/nss"
mkdir -p "$db" && certutil -N -d "sql:$db" --empty-password >/dev/null
certutil -A -d "sql:$db" -n virtcert-root -t "CT,C,C" -a -i "$CA/root.pem" >/dev/null
certutil -A -d "sql:$db" -n virtcert-ca -t ",," -a -i "$CA/ca.pem" >/dev/null
check "NSS crlutil: the served CRL imports (signature checked)" crlutil -I -d "sql:$db" -i "$T/crl.der"
nss_pkix() { # leaf: NSS libpkix, revocation by CRL required, fetched from the CDP
	vfychain -d "sql:$1" -pp -u 1 -g leaf -m crl -s requireFreshInfo -s failIfNoInfo -a "$2" -a "$CA/ca.pem"
}
db2="$T/nss-fetch"
mkdir -p "$db2" && certutil -N -d "sql:$db2" --empty-password >/dev/null
certutil -A -d "sql:$db2" -n virtcert-root -t "CT,C,C" -a -i "$CA/root.pem" >/dev/null
check "NSS vfychain -pp: a valid leaf passes, its CRL fetched from the distribution point" nss_pkix "$db2" "$T/web1.pem"
check_fails "NSS vfychain -pp: the revoked leaf is refused" nss_pkix "$db2" "$T/web2.pem"
grep -q "ERROR -8180: Peer.s Certificate has been revoked" "$T/check.out" && ok "... as revoked" || { not_ok "NSS refusal reason"; cat "$T/check.out"; }

# ---- the host CA's CRL, for peers
check "host-ca init" vc host-ca init --dir "$T/hostca"
mkdir -p "$STATE/host"
code=$(curl -sS -o /dev/null -w '%{http_code}' "$BASE/crl/host-ca.crl")
[[ $code == 404 ]] && ok "no host CA CRL file: 404" || not_ok "host CA CRL without a file: $code"
check "host-ca crl" vc host-ca crl --dir "$T/hostca" --out "$STATE/host/hostca.crl"
hid=$(openssl x509 -in "$T/hostca/ca.pem" -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' :\n' | tr 'A-F' 'a-f' | cut -c1-16)
curl -sS -o "$T/hostca.der" "$BASE/crl/host-ca.crl"
check "the host CA's CRL at /crl/host-ca.crl verifies" openssl crl -inform DER -in "$T/hostca.der" -noout -CAfile "$T/hostca/ca.pem"
curl -sS -o "$T/hostca2.der" "$BASE/crl/$hid.crl"
cmp -s "$T/hostca.der" "$T/hostca2.der" && ok "... and at its own id /crl/$hid.crl" || not_ok "host CA CRL by id"

# ---- /metrics, parsed by promtool
curl -sS "$BASE/metrics" >"$T/metrics.txt"
check "promtool check metrics" bash -c "promtool check metrics <'$T/metrics.txt'"
for line in 'virtcert_domains{state="NEW"} 0' 'virtcert_domains{state="REVOKED"} 0' \
	'virtcert_certificates_revoked_total{reason="keyCompromise"} 1' \
	'virtcert_certificates_revoked_total{reason="superseded"} 0' \
	'virtcert_revocation_visible_seconds_count 1' 'virtcert_revocation_visible_seconds_bucket{le="1"} 1' \
	'virtcert_deliveries_total 0' 'virtcert_delivery_failures_total 0' 'virtcert_crl_entries 1' \
	'virtcert_issue_latency_seconds_bucket{le="+Inf"} 0'; do
	grep -qxF "$line" "$T/metrics.txt" && ok "metrics: $line" || not_ok "metrics: no line $line"
done
for g in virtcert_ca_expiry_seconds virtcert_crl_next_update_seconds; do
	v=$(awk -v n="$g" '$1 == n {print $2}' "$T/metrics.txt")
	[[ -n $v ]] && awk -v v="$v" 'BEGIN {exit !(v > 0)}' && ok "metrics: $g $v" || not_ok "metrics: $g '$v'"
done
! grep -q "^virtcert_host_certificate_expiry_seconds" "$T/metrics.txt" && ok "metrics: no host certificate, no host expiry gauge" || not_ok "host expiry without a host certificate"

kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" && ok "SIGTERM stops the daemon cleanly" || not_ok "SIGTERM exit status"
finish
