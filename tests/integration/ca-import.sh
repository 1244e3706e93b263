#!/usr/bin/env bash
# Red-team finding 5: an intermediate signed by a root whose path length
# (or name constraints) forbid a CA below it is accepted by a chain check of
# the intermediate alone, yet every leaf it issues fails from that root.
# `ca import` refuses it, and so does every load of a CA directory that
# holds one (the daemon, `virtcert issue`). The roots are made with openssl.
source "$VC_SOURCE_ROOT/tests/lib/common.sh"

mkroot() { # mkroot NAME BASIC_CONSTRAINTS [NAME_CONSTRAINTS]
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
		-subj "/CN=$1" -keyout "$T/$1.key" -out "$T/$1.pem" \
		-addext "basicConstraints=critical,$2" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		-addext "subjectKeyIdentifier=hash" ${3:+-addext "nameConstraints=critical,$3"} 2>/dev/null
}
sign_ca() { # sign_ca ROOT OUT: the root signs the CA's CSR, copying its extensions
	openssl x509 -req -in "$STATE/ca/ca.csr" -CA "$T/$1.pem" -CAkey "$T/$1.key" -CAcreateserial \
		-days 1825 -copy_extensions copy -out "$T/$2" 2>/dev/null
}

check "ca init --csr" vc ca init --permit vms.example.com --csr "$T/ca.csr"
mkroot root-pl0 "CA:TRUE,pathlen:0"
mkroot root-ok "CA:TRUE,pathlen:1"
mkroot root-nc "CA:TRUE" "permitted;DNS:other.example.org"
sign_ca root-pl0 ca-pl0.pem
sign_ca root-ok ca-ok.pem
sign_ca root-nc ca-nc.pem

# the intermediate alone verifies from the pathlen:0 root: that was the trap
check "openssl accepts the intermediate alone under the pathlen:0 root" openssl verify -CAfile "$T/root-pl0.pem" "$T/ca-pl0.pem"

check_fails "ca import under a pathlen:0 root: refused" vc ca import "$T/ca-pl0.pem" --root "$T/root-pl0.pem"
vc ca import "$T/ca-pl0.pem" --root "$T/root-pl0.pem" 2>"$T/err" || true
grep -q "would not validate from \"CN=root-pl0\"" "$T/err" && grep -q "path length constraint exceeded" "$T/err" &&
	ok "... naming the root and the path length" || { not_ok "pathlen message"; cat "$T/err"; }
[[ ! -e $STATE/ca/ca.pem ]] && ok "... and nothing was installed" || not_ok "ca.pem installed after a refused import"

cat "$T/ca-pl0.pem" "$T/root-pl0.pem" >"$T/bundle-pl0.pem"
check_fails "ca import of a bundle ending in a pathlen:0 root: refused" vc ca import "$T/bundle-pl0.pem"

check_fails "ca import under a root whose name constraints exclude the CA's names: refused" \
	vc ca import "$T/ca-nc.pem" --root "$T/root-nc.pem"
vc ca import "$T/ca-nc.pem" --root "$T/root-nc.pem" 2>"$T/err" || true
grep -q "name constraints\|permitted subtree violation" "$T/err" && ok "... saying why" || { not_ok "name constraint message"; cat "$T/err"; }

# the same CA directory written by hand (or by an older virtcert): every
# load refuses it
cp "$T/ca-pl0.pem" "$STATE/ca/ca.pem"
cp "$T/ca-pl0.pem" "$STATE/ca/chain.pem"
cp "$T/root-pl0.pem" "$STATE/ca/root.pem"
check_fails "virtcert issue refuses a CA under a pathlen:0 root" vc issue --vm web1 --dns web1.vms.example.com
vc issue --vm web1 --dns web1.vms.example.com 2>"$T/err" || true
grep -q "path length constraint exceeded" "$T/err" && ok "... saying why" || { not_ok "load message"; cat "$T/err"; }
check_fails "virtcertd refuses to start with it" "$VIRTCERTD" --config "$CONF"
rm -f "$STATE/ca/ca.pem" "$STATE/ca/chain.pem" "$STATE/ca/root.pem"

# a root that allows it: imported, and its leaves validate from that root
check "ca import under a pathlen:1 root" vc ca import "$T/ca-ok.pem" --root "$T/root-ok.pem"
check "issue" vc issue --vm web1 --dns web1.vms.example.com --cert-out "$T/leaf.pem"
check "the leaf validates from the root" openssl verify -x509_strict -CAfile "$T/root-ok.pem" -untrusted "$STATE/ca/chain.pem" "$T/leaf.pem"
finish
