#!/usr/bin/env bash
# The OCSP responder of the real daemon (on a private libvirtd with the test
# driver), asked by independent clients: `openssl ocsp` (POST), curl (GET,
# RFC 5019 5), GnuTLS `ocsptool --ask`, `virtcert ocsp`, and a TLS handshake
# with OCSP stapling (`openssl s_server -status` / `s_client -status`).
# Good, revoked with reason and time, unknown, nonce, caching headers, and
# `virsh undefine` -> revoked within a second, measured.
source "$VC_SOURCE_ROOT/tests/lib/common.sh"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
URL="$BASE/ocsp"

start_libvirtd
keep_test_driver
vc_write_config "libvirt-uri=$TEST_URI" reconcile-interval=2 "http-address=127.0.0.1:$PORT" \
	"[ca]" "crl-url=$BASE/crl/{ca}.crl" "ocsp-url=$URL"
cat >"$T/policy.d/50-vms.conf" <<'EOP'
[vms]
match-name=vm-*
names={name}.vms.example.com
lifetime=1h
EOP
check "ca init" vc ca init --permit vms.example.com
check "virtcertd starts" start_daemon
check "virtcert watch follows the daemon" start_watch
wait_for 10 curl -sf "$BASE/metrics" || not_ok "HTTP does not answer on $BASE"

CA=$STATE/ca/ca.pem
ROOT=$STATE/ca/root.pem

lv define <(test_domain vm-1) >/dev/null; lv start vm-1 >/dev/null
lv define <(test_domain vm-2) >/dev/null; lv start vm-2 >/dev/null
wait_for 10 has_cert vm-1 && wait_for 10 has_cert vm-2 || not_ok "certificates for vm-1 and vm-2"
s1=$(cert_of vm-1)
s2=$(cert_of vm-2)
vc show "$s1" --pem >"$T/vm1.pem"
vc show "$s2" --pem >"$T/vm2.pem"
openssl x509 -in "$T/vm1.pem" -noout -ocsp_uri | contains -x "$URL" &&
	ok "the leaf names this responder (AIA OCSP)" || not_ok "AIA OCSP: $(openssl x509 -in "$T/vm1.pem" -noout -ocsp_uri)"

resp_text() { openssl ocsp -respin "$1" -noverify -resp_text 2>&1 || true; }
# ---- openssl ocsp (POST, nonce by default) --------------------------------
ossl_ocsp() { # ossl_ocsp CERT [ARGS...]
	local cert=$1
	shift
	openssl ocsp -issuer "$CA" -cert "$cert" -url "$URL" -CAfile "$ROOT" -verify_other "$CA" "$@"
}
ossl_ocsp "$T/vm1.pem" -resp_text >"$T/o1.txt" 2>&1 || true
grep -q "Response verify OK" "$T/o1.txt" && ok "openssl ocsp: the signature verifies up to the root" || not_ok "openssl verify: $(cat "$T/o1.txt")"
grep -q "$T/vm1.pem: good" "$T/o1.txt" && ok "openssl ocsp: good" || not_ok "openssl good: $(cat "$T/o1.txt")"
grep -q "OCSP Nonce" "$T/o1.txt" && ! grep -qi "nonce verify error\|WARNING: no nonce" "$T/o1.txt" &&
	ok "openssl ocsp: the nonce is echoed" || not_ok "nonce: $(cat "$T/o1.txt")"
grep -q "virtcert OCSP responder" "$T/o1.txt" && grep -q "OCSP Signing" "$T/o1.txt" && grep -q "OCSP No Check" "$T/o1.txt" &&
	ok "openssl ocsp: signed by the delegated responder (OCSPSigning, nocheck)" || not_ok "delegated responder: $(cat "$T/o1.txt")"
ossl_ocsp "$T/vm1.pem" -no_nonce >"$T/o1n.txt" 2>&1 || true
grep -q "$T/vm1.pem: good" "$T/o1n.txt" && grep -q "Response verify OK" "$T/o1n.txt" &&
	ok "openssl ocsp without nonce (the presigned answer)" || not_ok "no nonce: $(cat "$T/o1n.txt")"
ossl_ocsp "$T/vm1.pem" -no_nonce -respout "$T/r-nonce-less.der" >/dev/null 2>&1 || true
resp_text "$T/r-nonce-less.der" >"$T/nn.txt"
grep -q "Response Status: successful" "$T/nn.txt" && ! grep -q "OCSP Nonce" "$T/nn.txt" &&
	ok "no nonce in the answer when none was asked (RFC 5019)" || not_ok "nonce-less answer: $(cat "$T/nn.txt")"

# unknown: a serial this CA never issued
openssl ocsp -issuer "$CA" -serial 0x7f0102030405060708090a0b0c0d0e0f -url "$URL" -CAfile "$ROOT" \
	-verify_other "$CA" >"$T/ou.txt" 2>&1 || true
grep -q ": unknown" "$T/ou.txt" && grep -q "Response verify OK" "$T/ou.txt" &&
	ok "openssl ocsp: unknown for a serial never issued" || not_ok "unknown: $(cat "$T/ou.txt")"

# ---- GET (RFC 5019 5) with curl: headers, ETag, 304 -----------------------
openssl ocsp -issuer "$CA" -cert "$T/vm1.pem" -no_nonce -reqout "$T/req1.der" >/dev/null 2>&1
b64=$(base64 -w0 "$T/req1.der" | sed 's/+/%2B/g; s,/,%2F,g; s/=/%3D/g')
curl -s -D "$T/get.h" -o "$T/get.der" "$URL/$b64"
grep -qi "^content-type: application/ocsp-response" "$T/get.h" && ok "GET: Content-Type application/ocsp-response" || not_ok "GET headers: $(cat "$T/get.h")"
maxage=$(grep -i "^cache-control:" "$T/get.h" | sed -n 's/.*max-age=\([0-9]*\).*/\1/p')
[[ -n $maxage ]] && ((maxage > 1700 && maxage <= 3600)) && ok "GET: Cache-Control max-age=$maxage from nextUpdate" || not_ok "max-age: $(cat "$T/get.h")"
grep -qi "^etag: \"" "$T/get.h" && grep -qi "^last-modified: " "$T/get.h" && grep -qi "^expires: " "$T/get.h" &&
	ok "GET: ETag, Last-Modified, Expires" || not_ok "cache headers: $(cat "$T/get.h")"
openssl ocsp -respin "$T/get.der" -issuer "$CA" -cert "$T/vm1.pem" -CAfile "$ROOT" -verify_other "$CA" >"$T/og.txt" 2>&1 || true
grep -q ": good" "$T/og.txt" && grep -q "Response verify OK" "$T/og.txt" && ok "GET: the answer is good and verifies" || not_ok "GET answer: $(cat "$T/og.txt")"
etag=$(grep -i "^etag:" "$T/get.h" | cut -d' ' -f2- | tr -d '\r')
code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$URL/$b64")
[[ $code == 304 ]] && ok "GET with If-None-Match: 304" || not_ok "If-None-Match: $code"
b64_raw=$(base64 -w0 "$T/req1.der")
curl -s -o "$T/get2.der" "$URL/$b64_raw" && cmp -s "$T/get.der" "$T/get2.der" &&
	ok "GET with an unescaped base64 path: the same presigned answer" || not_ok "unescaped GET differs"

# malformed: truncated DER, a 1 MiB body, a bad GET path: an OCSP error answer, quickly
head -c 20 "$T/req1.der" >"$T/trunc.der"
curl -s --max-time 5 -H 'Content-Type: application/ocsp-request' --data-binary @"$T/trunc.der" -o "$T/bad.der" "$URL"
resp_text "$T/bad.der" | contains "malformedrequest" &&
	ok "truncated request: malformedRequest" || not_ok "truncated: $(resp_text "$T/bad.der" | head -3)"
head -c 1048576 /dev/zero >"$T/big.bin"
t0=$(date +%s%N)
curl -s --max-time 5 -H 'Content-Type: application/ocsp-request' --data-binary @"$T/big.bin" -o "$T/big.der" "$URL" || true
ms=$((($(date +%s%N) - t0) / 1000000))
resp_text "$T/big.der" | contains "malformedrequest" && ((ms < 2000)) &&
	ok "1 MiB body: malformedRequest in ${ms} ms, unread" || not_ok "1 MiB: ${ms} ms $(xxd "$T/big.der" | head -2)"
curl -s -o "$T/badget.der" "$URL/not*base64"
resp_text "$T/badget.der" | contains "malformedrequest" &&
	ok "GET with a path that is not base64: malformedRequest" || not_ok "bad GET"
ossl_ocsp "$T/vm1.pem" >/dev/null 2>&1 && ok "the responder answers on after all that" || not_ok "responder after malformed input"

# ---- GnuTLS ocsptool -------------------------------------------------------
gnutls_ask() { # gnutls_ask CERT OUT
	ocsptool --ask="$URL" --load-cert "$1" --load-issuer "$CA" --load-trust "$CA" --nonce \
		--outfile "$T/$2.der" >"$T/$2.txt" 2>&1
}
gnutls_ask "$T/vm1.pem" g1 || true
grep -q "Certificate Status: good" "$T/g1.txt" && grep -q "Verifying OCSP Response: Success" "$T/g1.txt" &&
	ok "ocsptool: good, the delegated responder's signature accepted" || not_ok "ocsptool good: $(cat "$T/g1.txt")"
ocsptool -j --infile "$T/g1.der" 2>&1 | contains "Nonce" && ok "ocsptool: the nonce is echoed" || not_ok "ocsptool nonce: $(ocsptool -j --infile "$T/g1.der" 2>&1 | head -20)"

# ---- virtcert ocsp -----------------------------------------------------------
expect_status 0 "virtcert ocsp vm-1: good" vc ocsp vm-1
grep -q "Status:      good" "$T/check.out" && grep -q "nonce echoed" "$T/check.out" && grep -q "delegated" "$T/check.out" &&
	ok "virtcert ocsp prints status, nonce and the delegated signer" || not_ok "virtcert ocsp: $(cat "$T/check.out")"
vc ocsp "$s1" --json --no-nonce | jq -e --arg u "$URL" '.status == "good" and .url == $u and .next_update != null' >/dev/null &&
	ok "virtcert ocsp --json" || not_ok "virtcert ocsp --json: $(vc ocsp "$s1" --json 2>&1)"
expect_status 3 "virtcert ocsp against a port with no responder fails" vc ocsp vm-1 --url "http://127.0.0.1:1/ocsp"

# ---- revoked, with reason and time -------------------------------------------
t_before=$(date -u +%s)
check "virtcert revoke vm-2 (keyCompromise)" vc revoke vm-2 --reason keyCompromise
ossl_ocsp "$T/vm2.pem" >"$T/o2.txt" 2>&1 || true
grep -q "$T/vm2.pem: revoked" "$T/o2.txt" && grep -q "Reason: keyCompromise" "$T/o2.txt" &&
	ok "openssl ocsp: revoked, keyCompromise" || not_ok "revoked: $(cat "$T/o2.txt")"
rt=$(sed -n 's/.*Revocation Time: //p' "$T/o2.txt")
rts=$(date -u -d "$rt" +%s 2>/dev/null || echo 0)
((rts >= t_before - 1 && rts <= $(date -u +%s))) && ok "openssl ocsp: the revocation time ($rt) is the revocation's" || not_ok "revocation time '$rt'"
gnutls_ask "$T/vm2.pem" g2 || true
# (ocsptool 3.7 prints no reason code; openssl showed it above)
grep -q "Certificate Status: revoked" "$T/g2.txt" && grep -q "Revocation time: " "$T/g2.txt" &&
	grep -q "Verifying OCSP Response: Success" "$T/g2.txt" &&
	ok "ocsptool: revoked with its time, verified" || not_ok "ocsptool revoked: $(cat "$T/g2.txt")"
expect_status 4 "virtcert ocsp of a revoked certificate exits 4" vc ocsp "$s2"
grep -q "Revoked:     .*(keyCompromise)" "$T/check.out" && ok "virtcert ocsp prints reason and time" || not_ok "virtcert ocsp revoked: $(cat "$T/check.out")"
# the cached GET answer for vm-2 was replaced
openssl ocsp -issuer "$CA" -cert "$T/vm2.pem" -no_nonce -reqout "$T/req2.der" >/dev/null 2>&1
curl -s -o "$T/get-r.der" "$URL/$(base64 -w0 "$T/req2.der" | sed 's/+/%2B/g; s,/,%2F,g; s/=/%3D/g')"
{ openssl ocsp -respin "$T/get-r.der" -issuer "$CA" -cert "$T/vm2.pem" -CAfile "$ROOT" -verify_other "$CA" 2>&1 || true; } | contains ": revoked" &&
	ok "GET after the revocation: revoked (the cache was replaced)" || not_ok "GET after revocation"

# ---- virsh undefine -> revoked within 1 s, measured -----------------------------
lv define <(test_domain vm-3) >/dev/null; lv start vm-3 >/dev/null
wait_for 10 has_cert vm-3 || not_ok "certificate for vm-3"
vc show "$(cert_of vm-3)" --pem >"$T/vm3.pem"
ossl_ocsp "$T/vm3.pem" -no_nonce 2>&1 | contains ": good" && ok "vm-3 good before undefine" || not_ok "vm-3 good"
lv destroy vm-3 >/dev/null
is_revoked() { ossl_ocsp "$T/vm3.pem" -no_nonce 2>/dev/null | contains ": revoked"; }
t0=$(date +%s%N)
lv undefine vm-3 >/dev/null
elapsed=
for ((i = 0; i < 500; i++)); do
	if is_revoked; then
		elapsed=$((($(date +%s%N) - t0) / 1000000))
		break
	fi
done
[[ -n $elapsed ]] && ((elapsed <= 1000)) && ok "virsh undefine -> OCSP revoked in ${elapsed} ms (limit 1000)" ||
	not_ok "virsh undefine -> OCSP revoked: ${elapsed:-never} ms"
echo "# revoke_to_visible_ms=${elapsed:-none} (virsh undefine to the first revoked OCSP answer, openssl ocsp polling)"

# ---- TLS with OCSP stapling: s_server fetches from the responder ------------------
check "issue a certificate with its key for the TLS server" vc issue --vm vm-tls --dns tls.vms.example.com \
	--cert-out "$T/tls.pem" --chain-out "$T/tls-chain.pem" --key-out "$T/tls.key"
SPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
openssl s_server -accept "127.0.0.1:$SPORT" -cert "$T/tls.pem" -key "$T/tls.key" -cert_chain "$CA" \
	-CAfile "$CA" -status -status_verbose -status_url "$URL" -www >"$T/s_server.log" 2>&1 &
SPID=$!
cleanup_hooks+=("kill $SPID")
wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$SPORT" || not_ok "s_server does not listen"
staple() {
	echo Q | openssl s_client -connect "127.0.0.1:$SPORT" -status -CAfile "$ROOT" -servername tls.vms.example.com 2>&1
}
staple >"$T/sc1.txt" || true
grep -q "OCSP Response Status: successful" "$T/sc1.txt" && grep -q "Cert Status: good" "$T/sc1.txt" &&
	grep -q "Verify return code: 0 (ok)" "$T/sc1.txt" &&
	ok "s_client -status: the stapled answer says good" || not_ok "staple good: $(grep -i "ocsp\|status\|verify" "$T/sc1.txt" | head)"
tls_serial=$(openssl x509 -in "$T/tls.pem" -noout -serial | cut -d= -f2)
check "virtcert revoke the TLS server's certificate" vc revoke "$tls_serial" --reason keyCompromise
staple >"$T/sc2.txt" || true
grep -q "Cert Status: revoked" "$T/sc2.txt" && grep -q "Revocation Reason: keyCompromise" "$T/sc2.txt" &&
	ok "s_client -status after virtcert revoke: revoked" || not_ok "staple revoked: $(grep -i "ocsp\|status\|revoc" "$T/sc2.txt" | head)"

# metrics count the answers
curl -s "$BASE/metrics" >"$T/metrics.txt" || true
grep -q '^virtcert_ocsp_responses_total{answer="revoked"} [1-9]' "$T/metrics.txt" &&
	ok "/metrics counts OCSP answers" || not_ok "metrics: $(curl -s "$BASE/metrics" | grep ocsp)"
# the responder's key stays private
[[ $(stat -c %a "$STATE/ocsp/responder.key") == 600 ]] && ok "the responder key is 0600" || not_ok "responder key mode"

# ---- [ocsp] sign-with=ca: the CA key signs, no certificate inside ------------------
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true
vc_write_config "libvirt-uri=$TEST_URI" reconcile-interval=2 "http-address=127.0.0.1:$PORT" \
	"[ca]" "crl-url=$BASE/crl/{ca}.crl" "ocsp-url=$URL" "[ocsp]" "sign-with=ca"
check "virtcertd restarts with sign-with=ca" start_daemon
ossl_ocsp "$T/vm1.pem" -resp_text >"$T/oca.txt" 2>&1 || true
grep -q "$T/vm1.pem: good" "$T/oca.txt" && grep -q "Response verify OK" "$T/oca.txt" &&
	! grep -q "virtcert OCSP responder" "$T/oca.txt" &&
	ok "sign-with=ca: good, signed by the CA itself (no responder certificate)" || not_ok "sign-with=ca: $(cat "$T/oca.txt")"
ossl_ocsp "$T/vm2.pem" -no_nonce 2>&1 | contains ": revoked" && ok "sign-with=ca: the revocation survives the restart" || not_ok "sign-with=ca revoked"
# no certificate inside: GnuTLS checks it against the issuer directly (--load-signer), as
# its TLS client checks a stapled answer
ocsptool --ask="$URL" --load-cert "$T/vm1.pem" --load-issuer "$CA" --load-signer "$CA" --nonce \
	--outfile "$T/g3.der" >"$T/g3.txt" 2>&1 || true
grep -q "Certificate Status: good" "$T/g3.txt" && grep -q "Verifying OCSP Response: Success" "$T/g3.txt" &&
	ok "ocsptool accepts the CA-signed answer" || not_ok "ocsptool sign-with=ca: $(cat "$T/g3.txt")"

finish
