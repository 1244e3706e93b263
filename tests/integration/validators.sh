#!/usr/bin/env bash
# Every intermediate, leaf and CRL virtcert makes passes four independent
# validators (OpenSSL -x509_strict, GnuTLS certtool, NSS vfychain, Go's
# crypto/x509), a revoked leaf is refused with the CRL, and a leaf built
# outside the name constraints (signed with the CA's own key) is refused by
# all of them.
source "$VC_SOURCE_ROOT/tests/lib/common.sh"

# the Go verifier: stdlib only, built offline
GOV="$T/x509verify"
(cd "$VC_SOURCE_ROOT/tests/tools/x509verify" &&
	GOFLAGS=-mod=mod GOCACHE="${VC_GOCACHE:-$T/gocache}" GOPATH="$T/gopath" go build -o "$GOV" .) ||
	{ echo "cannot build the Go verifier"; exit 1; }

nss_trust() { # nss_trust DB ROOT
	mkdir -p "$1" && certutil -N -d "sql:$1" --empty-password &&
		certutil -A -d "sql:$1" -n virtcert-root -t "CT,C,C" -a -i "$2"
}

for key in ec-p256 rsa-3072 ed25519; do
	S="$T/$key"
	mkdir -p "$S"
	vcs() { "$VIRTCERT" --config "$CONF" --state-dir "$S" "$@"; }
	check "[$key] ca init" vcs ca init --permit vms.example.com --key "$key"
	CA="$S/ca"
	name=web1.vms.example.com
	check "[$key] issue" vcs issue --vm web1 --dns "$name" --key "$key" --cert-out "$T/$key.pem" --key-out "$T/$key.key" --json
	cat "$T/$key.pem" "$CA/chain.pem" >"$T/$key-chain.pem"
	nss=yes
	[[ $key == ed25519 ]] && nss=no # Debian 12's NSS 3.87 cannot load Ed25519 certificates

	# the intermediate
	check "[$key] openssl: intermediate" openssl verify -x509_strict -CAfile "$CA/root.pem" "$CA/ca.pem"
	check "[$key] certtool: intermediate" certtool --verify --load-ca-certificate "$CA/root.pem" --infile "$CA/chain.pem"
	if [[ $nss == yes ]]; then
		nss_trust "$T/nss-$key" "$CA/root.pem" >/dev/null
		check "[$key] NSS: intermediate (usage SSL CA)" vfychain -d "sql:$T/nss-$key" -u 3 -a "$CA/ca.pem"
	fi

	# a valid leaf
	check "[$key] openssl: leaf" openssl verify -x509_strict -verify_hostname "$name" -CAfile "$CA/root.pem" -untrusted "$CA/chain.pem" "$T/$key.pem"
	check "[$key] certtool: leaf" certtool --verify --load-ca-certificate "$CA/root.pem" --verify-hostname "$name" --infile "$T/$key-chain.pem"
	[[ $nss == yes ]] && check "[$key] NSS: leaf" vfychain -d "sql:$T/nss-$key" -u 1 -a "$T/$key.pem" -a "$CA/chain.pem"
	check "[$key] Go crypto/x509: leaf" "$GOV" -roots "$CA/root.pem" -intermediates "$CA/chain.pem" -dns "$name" "$T/$key.pem"

	# red-team finding 2: a first name over 64 octets cannot be a CN; the
	# profile's empty subject with a critical SAN is accepted by all four
	long=a-label-of-sixty-three-octets-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.vms.example.com
	check "[$key] issue with a ${#long}-octet first name" vcs issue --vm longvm --dns "$long" --dns longvm.vms.example.com --key "$key" --cert-out "$T/$key-long.pem" --json
	openssl x509 -in "$T/$key-long.pem" -noout -subject -ext subjectAltName >"$T/$key-long.txt"
	grep -qx "subject=" "$T/$key-long.txt" && grep -q "X509v3 Subject Alternative Name: critical" "$T/$key-long.txt" &&
		ok "[$key] ... with an empty subject and a critical SAN" || { not_ok "[$key] long-name profile"; cat "$T/$key-long.txt"; }
	cat "$T/$key-long.pem" "$CA/chain.pem" >"$T/$key-long-chain.pem"
	check "[$key] openssl: long-name leaf" openssl verify -x509_strict -verify_hostname "$long" -CAfile "$CA/root.pem" -untrusted "$CA/chain.pem" "$T/$key-long.pem"
	check "[$key] certtool: long-name leaf" certtool --verify --load-ca-certificate "$CA/root.pem" --verify-hostname "$long" --infile "$T/$key-long-chain.pem"
	[[ $nss == yes ]] && check "[$key] NSS: long-name leaf" vfychain -d "sql:$T/nss-$key" -u 1 -a "$T/$key-long.pem" -a "$CA/chain.pem"
	check "[$key] Go crypto/x509: long-name leaf" "$GOV" -roots "$CA/root.pem" -intermediates "$CA/chain.pem" -dns "$long" "$T/$key-long.pem"

	# the CRL: a revoked leaf
	s2=$(vcs issue --vm web2 --dns web2.vms.example.com --key "$key" --cert-out "$T/$key-r.pem" --json | jq -r .serial)
	check "[$key] revoke" vcs revoke "$s2" --reason keyCompromise
	vcs crl --pem --out "$T/$key.crl"
	check "[$key] openssl: CRL signature" openssl crl -in "$T/$key.crl" -noout -CAfile "$CA/ca.pem"
	check "[$key] certtool: CRL" certtool --verify-crl --load-ca-certificate "$CA/ca.pem" --infile "$T/$key.crl"
	check "[$key] openssl: valid leaf with CRL" openssl verify -x509_strict -crl_check -CAfile "$CA/root.pem" -untrusted "$CA/chain.pem" -CRLfile "$T/$key.crl" "$T/$key.pem"
	check_fails "[$key] openssl: revoked leaf refused" openssl verify -x509_strict -crl_check -CAfile "$CA/root.pem" -untrusted "$CA/chain.pem" -CRLfile "$T/$key.crl" "$T/$key-r.pem"
	cat "$T/$key-r.pem" "$CA/chain.pem" >"$T/$key-r-chain.pem"
	check_fails "[$key] certtool: revoked leaf refused" certtool --verify --load-ca-certificate "$CA/root.pem" --load-crl "$T/$key.crl" --infile "$T/$key-r-chain.pem"
	check "[$key] Go: valid leaf with CRL" "$GOV" -roots "$CA/root.pem" -intermediates "$CA/chain.pem" -dns "$name" -crl "$T/$key.crl" "$T/$key.pem"
	check_fails "[$key] Go: revoked leaf refused" "$GOV" -roots "$CA/root.pem" -intermediates "$CA/chain.pem" -dns web2.vms.example.com -crl "$T/$key.crl" "$T/$key-r.pem"
	if [[ $nss == yes ]]; then
		openssl crl -in "$T/$key.crl" -outform DER -out "$T/$key.crl.der"
		certutil -A -d "sql:$T/nss-$key" -n virtcert-ca -t ",," -a -i "$CA/ca.pem"
		check "[$key] NSS: CRL imports (signature checked)" crlutil -I -d "sql:$T/nss-$key" -i "$T/$key.crl.der"
	fi

	# a rogue leaf outside the name constraints, signed with the CA's own key
	openssl req -new -key "$T/$key.key" -subj "/CN=www.other.example.org" -out "$T/rogue.csr" 2>/dev/null
	printf 'subjectAltName=DNS:www.other.example.org\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n' >"$T/rogue.ext"
	if openssl x509 -req -in "$T/rogue.csr" -CA "$CA/ca.pem" -CAkey "$CA/ca.key" -CAcreateserial -days 1 -extfile "$T/rogue.ext" -out "$T/$key-rogue.pem" 2>/dev/null; then
		cat "$T/$key-rogue.pem" "$CA/chain.pem" >"$T/$key-rogue-chain.pem"
		check_fails "[$key] openssl: rogue leaf refused" openssl verify -x509_strict -CAfile "$CA/root.pem" -untrusted "$CA/chain.pem" "$T/$key-rogue.pem"
		check_fails "[$key] certtool: rogue leaf refused" certtool --verify --load-ca-certificate "$CA/root.pem" --infile "$T/$key-rogue-chain.pem"
		[[ $nss == yes ]] && check_fails "[$key] NSS: rogue leaf refused" vfychain -d "sql:$T/nss-$key" -u 1 -a "$T/$key-rogue.pem" -a "$CA/chain.pem"
		check_fails "[$key] Go: rogue leaf refused" "$GOV" -roots "$CA/root.pem" -intermediates "$CA/chain.pem" -dns www.other.example.org "$T/$key-rogue.pem"
	else
		not_ok "[$key] could not build the rogue leaf"
	fi
done
finish
