#!/usr/bin/env bash
# Host trust from the command line: a lab host CA, enrollment, signing,
# import, show, revocation, `policy check` exit codes, and the libvirt/QEMU
# TLS files under a temporary root.
source "$VC_SOURCE_ROOT/tests/lib/common.sh"

HCA="$T/hostca"
check "host-ca init" vc host-ca init --dir "$HCA" --cn "Test Host CA"
[[ $(stat -c %a "$HCA/ca.key") == 600 ]] && ok "host CA key is 0600" || not_ok "host CA key mode"
openssl x509 -in "$HCA/ca.pem" -noout -text >"$T/ca.txt"
grep -q "CA:TRUE" "$T/ca.txt" && grep -q "Certificate Sign, CRL Sign" "$T/ca.txt" &&
	ok "host CA is CA:TRUE with keyCertSign+cRLSign" || not_ok "host CA extensions"
check_fails "host-ca init refuses to overwrite" vc host-ca init --dir "$HCA"
CA_FP=$(openssl x509 -in "$HCA/ca.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)

check "host enroll" vc host enroll --ca "$HCA/ca.pem" --attr site=eu-west --attr tier=confidential --fqdn h1.example.com
[[ $(stat -c %a "$STATE/host/host.key") == 600 ]] && ok "host key is 0600" || not_ok "host key mode"
openssl req -in "$STATE/host/host.csr" -noout -text | contains "URI:urn:virtcert:host:site=eu-west" &&
	ok "the CSR carries the attributes as SAN URIs" || not_ok "CSR attributes"
expect_status 1 "a malformed attribute is a usage error" \
	vc host enroll --ca "$HCA/ca.pem" --attr "site eu" --fqdn h1.example.com --force

check "host-ca sign" vc host-ca sign "$STATE/host/host.csr" --dir "$HCA" --out "$T/h1.pem"
openssl x509 -in "$T/h1.pem" -noout -text >"$T/h1.txt"
grep -q "TLS Web Server Authentication, TLS Web Client Authentication" "$T/h1.txt" &&
	ok "host certificate EKU serverAuth+clientAuth" || not_ok "host EKU"
grep -q "DNS:h1.example.com, URI:urn:virtcert:host:site=eu-west, URI:urn:virtcert:host:tier=confidential" "$T/h1.txt" &&
	ok "SANs copied from the CSR" || not_ok "SANs copied"
# QEMU and libvirt use GnuTLS: it must accept the chain for both roles
if command -v certtool >/dev/null; then
	certtool --verify --load-ca-certificate "$HCA/ca.pem" --infile "$T/h1.pem" \
		--verify-hostname h1.example.com --verify-purpose 1.3.6.1.5.5.7.3.1 >"$T/certtool.out" 2>&1 &&
		ok "GnuTLS verifies the host certificate (serverAuth, hostname)" ||
		{ not_ok "GnuTLS verification"; cat "$T/certtool.out"; }
fi

# import refuses what does not fit
mkdir -p "$T/other"
"$VIRTCERT" --state-dir "$T/other" host enroll --ca "$HCA/ca.pem" --fqdn h2.example.com >/dev/null
vc host-ca sign "$T/other/host/host.csr" --dir "$HCA" --out "$T/h2.pem" >/dev/null
expect_status 3 "import refuses a certificate for another key" vc host import "$T/h2.pem"
grep -q "does not match" "$T/check.out" && ok "... saying the key does not match" || not_ok "key mismatch message"
vc host-ca init --dir "$T/rogue" >/dev/null
vc host-ca sign "$STATE/host/host.csr" --dir "$T/rogue" --out "$T/rogue.pem" >/dev/null
expect_status 3 "import refuses a certificate of another CA" vc host import "$T/rogue.pem"
grep -q "not issued by the trusted host CA" "$T/check.out" && ok "... naming the CA problem" || not_ok "wrong CA message"

check "host import" vc host import "$T/h1.pem"
check "host show" vc host show
grep -q "Self-check:  ok" "$T/check.out" && ok "self-check ok" || not_ok "self-check ok"
vc host show --json >"$T/show.json"
jq -e --arg fp "$CA_FP" '.fqdn == "h1.example.com" and .attributes.site == ["eu-west"] and .ca_fingerprint == $fp and .valid' "$T/show.json" >/dev/null &&
	ok "host show --json: FQDN, attributes, CA fingerprint, valid" || { not_ok "host show --json"; cat "$T/show.json"; }

# policy check: offline placement answers with exit codes 0 / 2
dom() { # dom NAME PLACEMENT_XML
	cat <<EOD
<domain type='kvm'><name>$1</name><uuid>$(cat /proc/sys/kernel/random/uuid)</uuid>
<metadata><vc:vm xmlns:vc="urn:virtcert:domain:1"><vc:name>{name}.vms.example.com</vc:name>$2</vc:vm></metadata>
<memory>65536</memory><os><type>hvm</type></os></domain>
EOD
}
dom eu "<vc:placement><vc:trust-ca>$CA_FP</vc:trust-ca><vc:require attr='site'>eu-west|eu-central</vc:require><vc:require attr='tier'>confidential</vc:require></vc:placement>" >"$T/eu.xml"
dom us "<vc:placement><vc:require attr='site'>us-east</vc:require></vc:placement>" >"$T/us.xml"
dom ca "<vc:placement><vc:trust-ca>$(printf '%064d' 0)</vc:trust-ca></vc:placement>" >"$T/ca.xml"
dom free "" >"$T/free.xml"
expect_status 0 "policy check allows a satisfying host" vc policy check --xml "$T/eu.xml" --host "$T/h1.pem"
expect_status 2 "policy check denies an unsatisfied rule" vc policy check --xml "$T/us.xml" --host "$T/h1.pem"
grep -q "host attribute site=eu-west not in {us-east}" "$T/check.out" && ok "... with the reason" || not_ok "deny reason"
expect_status 2 "policy check takes the domain XML as its argument too" vc policy check "$T/us.xml" --host "$T/h1.pem"
expect_status 0 "... also from stdin" bash -c "\"$VIRTCERT\" --config '$CONF' policy check - --host '$T/h1.pem' <'$T/eu.xml'"
expect_status 2 "policy check denies an untrusted host CA" vc policy check --xml "$T/ca.xml" --host "$T/h1.pem"
grep -q "not trusted by the VM" "$T/check.out" && ok "... naming the CA" || not_ok "CA reason"
expect_status 0 "policy check allows a VM without placement" vc policy check --xml "$T/free.xml" --host "$T/h1.pem"
vc policy check --xml "$T/us.xml" --host "$T/h1.pem" --json >"$T/pc.json" 2>/dev/null || true
jq -e '.allow == false and (.reason | test("us-east"))' "$T/pc.json" >/dev/null && ok "policy check --json" || not_ok "policy check --json"
# the rogue host's certificate does not chain to the trusted host CA
expect_status 2 "policy check denies a host of another CA" vc policy check --xml "$T/eu.xml" --host "$T/rogue.pem"

# revocation: revoke + CRL makes the self-check and policy check fail
check "host-ca revoke" vc host-ca revoke "$T/h1.pem" --dir "$HCA"
check "host-ca crl" vc host-ca crl --dir "$HCA" --out "$STATE/host/hostca.crl"
openssl crl -in "$STATE/host/hostca.crl" -noout -text | contains -i "Serial Number: $(openssl x509 -in "$T/h1.pem" -noout -serial | cut -d= -f2)" &&
	ok "the CRL lists the host certificate" || not_ok "CRL lists it"
expect_status 3 "host show fails its self-check for a revoked certificate" vc host show
grep -q "revoked" "$T/check.out" && ok "... saying revoked" || not_ok "revoked message"
expect_status 2 "policy check denies a revoked host" vc policy check --xml "$T/eu.xml" --host "$T/h1.pem"
rm "$STATE/host/hostca.crl"

# an expired certificate (--days 0)
vc host-ca sign "$STATE/host/host.csr" --dir "$HCA" --days 0 --out "$T/expired.pem" >/dev/null
expect_status 2 "policy check denies an expired host certificate" vc policy check --xml "$T/eu.xml" --host "$T/expired.pem"
grep -q "expired" "$T/check.out" && ok "... saying expired" || not_ok "expired message"

# libvirt/QEMU TLS files under a temporary root
vc host-ca sign "$STATE/host/host.csr" --dir "$HCA" --out "$T/h1b.pem" >/dev/null
vc host import "$T/h1b.pem" >/dev/null
check "install-libvirt-tls" vc host install-libvirt-tls --root "$T/root" --qemu-group root
modes_ok=1
for f in etc/pki/CA/cacert.pem:644 etc/pki/libvirt/servercert.pem:644 etc/pki/libvirt/clientcert.pem:644 \
	etc/pki/libvirt/private/serverkey.pem:600 etc/pki/libvirt/private/clientkey.pem:600 \
	etc/pki/qemu/ca-cert.pem:644 etc/pki/qemu/server-cert.pem:644 etc/pki/qemu/client-cert.pem:644 \
	etc/pki/qemu/server-key.pem:640 etc/pki/qemu/client-key.pem:640; do
	m=$(stat -c %a "$T/root/${f%%:*}" 2>/dev/null || echo missing)
	[[ $m == "${f##*:}" ]] || { echo "    ${f%%:*}: $m"; modes_ok=0; }
done
((modes_ok)) && ok "TLS files at libvirt's and QEMU's paths with their modes" || not_ok "TLS file modes"
cmp -s "$T/root/etc/pki/qemu/server-cert.pem" "$STATE/host/host.pem" && ok "QEMU's server cert is the host cert" || not_ok "server cert content"
[[ "$(openssl pkey -in "$T/root/etc/pki/libvirt/private/clientkey.pem" -pubout)" == "$(openssl x509 -in "$T/h1b.pem" -noout -pubkey)" ]] &&
	ok "the installed key matches the host certificate" || not_ok "installed key"
echo other >"$T/root/etc/pki/CA/cacert.pem"
expect_status 3 "install-libvirt-tls does not replace other files without --force" vc host install-libvirt-tls --root "$T/root" --qemu-group root
check "install-libvirt-tls --force" vc host install-libvirt-tls --root "$T/root" --qemu-group root --force

# doctor: libvirt's CRL (its qemu+tls:// connections, peer-to-peer
# migration, are the only barrier against a revoked destination without a
# hook), and a keyUsage libvirt 9.0 would refuse
doctor_says() { vc doctor --root "$T/root" >"$T/doctor.out" 2>&1 || true; grep -q -- "$1" "$T/doctor.out"; }
vc host-ca crl --dir "$HCA" --out "$STATE/host/hostca.crl" >/dev/null
doctor_says "libvirt TLS: $T/root/etc/pki/CA/cacrl.pem is missing although the host CA has a CRL" &&
	ok "doctor: libvirt's CRL missing" || { not_ok "doctor said nothing of the missing cacrl.pem"; grep -i "libvirt\|TLS" "$T/doctor.out"; }
check "install-libvirt-tls writes the CRL" vc host install-libvirt-tls --root "$T/root" --qemu-group root
doctor_says "libvirt TLS: $T/root/etc/pki/CA/cacrl.pem is the host CA's CRL" &&
	ok "doctor: libvirt's CRL in place" || { not_ok "doctor: CRL in place"; grep -i "libvirt\|TLS" "$T/doctor.out"; }
vc host-ca crl --dir "$HCA" --out "$STATE/host/hostca.crl" >/dev/null
doctor_says "cacrl.pem is not the host CA's CRL in place" &&
	ok "doctor: libvirt's CRL older than the one in place" || { not_ok "doctor: stale cacrl.pem"; grep -i "libvirt\|TLS" "$T/doctor.out"; }
doctor_says "keyUsage is critical" && not_ok "doctor: host-ca sign's keyUsage called critical" || ok "doctor: host-ca sign's certificate has a keyUsage libvirt accepts"
openssl req -new -key "$STATE/host/host.key" -subj /CN=h1.example.com -out "$T/crit.csr" 2>/dev/null
openssl x509 -req -in "$T/crit.csr" -CA "$HCA/ca.pem" -CAkey "$HCA/ca.key" -set_serial 77 -days 2 -out "$T/crit.pem" \
	-extfile <(printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:h1.example.com,URI:urn:virtcert:host:site=eu-west\n') 2>/dev/null
vc host import "$T/crit.pem" >/dev/null
doctor_says "keyUsage is critical without keyEncipherment" &&
	ok "doctor: a critical keyUsage without keyEncipherment (libvirt 9.0 refuses it)" || { not_ok "doctor: critical keyUsage"; grep -i "libvirt\|TLS" "$T/doctor.out"; }
vc host import "$T/h1b.pem" >/dev/null

# hook install
HOOK_BIN=${VIRTCERT_HOOK:-$VC_BUILD_ROOT/hooks/virtcert-hook}
check "hook install" vc hook install --root "$T/root" --hook "$HOOK_BIN"
[[ $(stat -c %a "$T/root/etc/libvirt/hooks/qemu.d/virtcert") == 755 ]] && ok "hook installed 0755" || not_ok "hook mode"
finish
