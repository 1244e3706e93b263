#!/usr/bin/env bash
# The virtcert command line, offline (no daemon): CA, issue, list, show,
# revoke, CRL, exit statuses, --json.
source "$VC_SOURCE_ROOT/tests/lib/common.sh"

expect_status 1 "no command is a usage error" vc
expect_status 1 "unknown command is a usage error" vc frobnicate
expect_status 1 "ca init without --permit is a usage error" vc ca init
check "ca init --permit" vc ca init --permit vms.example.com --permit lab.example.org
check_fails "ca init refuses to overwrite an existing CA" vc ca init --permit vms.example.com
check "ca show --json" vc ca show --json
jq -e '.permitted == ["vms.example.com","lab.example.org"]' <(vc ca show --json) >/dev/null &&
	ok "ca show lists the permitted subtrees" || not_ok "ca show lists the permitted subtrees"
vc ca show --pem >"$T/ca.pem"
check "ca show --pem prints a CA certificate" openssl x509 -in "$T/ca.pem" -noout

# issue by hand with explicit names
out=$(vc issue --vm web-1 --dns web-1.vms.example.com --json --cert-out "$T/leaf.pem" --key-out "$T/leaf.key")
serial=$(jq -r .serial <<<"$out")
[[ "$serial" =~ ^[0-9a-f]{30,34}$ ]] && ok "issue --json gives a hex serial" || not_ok "issue --json gives a hex serial ($serial)"
[[ $(stat -c %a "$T/leaf.key") == 600 ]] && ok "key written 0600" || not_ok "key written 0600"
check "key matches certificate" bash -c "[[ \$(openssl x509 -in '$T/leaf.pem' -noout -pubkey) == \$(openssl pkey -in '$T/leaf.key' -pubout) ]]"
expect_status 2 "a name outside the permitted subtrees is refused by policy" vc issue --vm evil --dns www.google.com
expect_status 2 "a wildcard is refused" vc issue --vm w --dns '*.vms.example.com'
expect_status 2 "an injection attempt is refused" vc issue --vm w --dns 'a,CN=evil.vms.example.com'
expect_status 2 "another VM cannot take a name a VM holds" vc issue --vm web-2 --dns web-1.vms.example.com
check "the same VM may be issued again for its own name" vc issue --vm web-1 --dns web-1.vms.example.com

# issue from policy: names from a template
cat >"$T/policy.d/10-web.conf" <<'EOP'
[web]
match-name=web-*;db*
names={name}.vms.example.com;{uuid}.vms.example.com
lifetime=12h
EOP
out=$(vc issue --vm "db 7" --json)
jq -e '.dns_names[0] == "db-7.vms.example.com" and (.dns_names[1] | endswith(".vms.example.com"))' <<<"$out" >/dev/null &&
	ok "policy templates give the names" || not_ok "policy templates give the names: $out"
expect_status 2 "a VM no policy selects is refused" vc issue --vm mail-1

# policy show: the daemon's decision for a domain XML, offline
cat >"$T/web-9.xml" <<'EOX'
<domain type='kvm'>
  <name>web-9</name>
  <uuid>4f3a2c1b-0000-4000-8000-0000000000a9</uuid>
  <metadata>
    <virtcert:vm xmlns:virtcert="urn:virtcert:domain:1">
      <virtcert:key type="ed25519" mode="guest"/>
      <virtcert:delivery cert="/etc/nginx/tls/cert.pem" key="/etc/nginx/tls/key.pem" reload="systemctl reload nginx"/>
    </virtcert:vm>
  </metadata>
  <memory>65536</memory><os><type>hvm</type></os>
</domain>
EOX
out=$(vc policy show --xml "$T/web-9.xml" --json)
jq -e '.selected and .dns_names[0] == "web-9.vms.example.com" and .policy.key == "ed25519" and .policy["key-mode"] == "guest" and .policy["cert-path"] == "/etc/nginx/tls/cert.pem" and .policy.lifetime == 43200' <<<"$out" >/dev/null &&
	ok "policy show: policy.d merged with the domain's metadata" || not_ok "policy show: $out"
sed 's/web-9/mail-9/' "$T/web-9.xml" | grep -v virtcert >"$T/mail-9.xml"
vc policy show --xml "$T/mail-9.xml" --json | jq -e '.selected == false' >/dev/null &&
	ok "policy show: a VM no policy selects" || not_ok "policy show: unselected VM"
sed 's/<virtcert:key/<virtcert:bogus\/><virtcert:key/' "$T/web-9.xml" >"$T/bad-9.xml"
expect_status 3 "policy show: bad metadata is an error naming it" vc policy show --xml "$T/bad-9.xml"
grep -q bogus "$T/check.out" && ok "policy show: the error names the element" || not_ok "policy show: error text: $(cat "$T/check.out")"
sed 's/web-9/www-9/; s/<virtcert:key[^>]*>/<virtcert:name>www.google.com<\/virtcert:name>/' "$T/web-9.xml" >"$T/out-9.xml"
printf '[www]\nmatch-name=www-*\n' >"$T/policy.d/20-www.conf"
expect_status 2 "policy show: a name outside the CA's constraints is refused" vc policy show --xml "$T/out-9.xml"

# red-team finding 4: manual issuance keeps to 1m..397d (exit 2: refused
# by policy, so nothing retries it) and records nothing
expect_status 2 "issue --lifetime 36500d is refused" vc issue --vm lt-1 --dns lt-1.vms.example.com --lifetime 36500d
grep -q "outside 1m..397d" "$T/check.out" && ok "... naming the bounds" || not_ok "lifetime message: $(cat "$T/check.out")"
expect_status 2 "issue --lifetime 30s is refused" vc issue --vm lt-1 --dns lt-1.vms.example.com --lifetime 30s

# list / show
n=$(vc list --json | jq length)
[[ $n -eq 3 ]] && ok "list shows 3 certificates" || not_ok "list shows 3 certificates (got $n)"
check "show SERIAL --json" bash -c "vc() { \"$VIRTCERT\" --config '$CONF' \"\$@\"; }; vc show $serial --json | jq -e '.status == \"valid\"'"
vc show "$serial" --pem >"$T/shown.pem"
cmp -s <(openssl x509 -in "$T/shown.pem" -outform DER) <(openssl x509 -in "$T/leaf.pem" -outform DER) &&
	ok "show --pem gives the issued certificate" || not_ok "show --pem gives the issued certificate"
check "show VM" vc show web-1
expect_status 3 "show of an unknown serial fails" vc show 0123456789abcdef
expect_status 3 "show of a VM no policy selects fails" vc show mail-1
grep -q "no policy in .* selects a VM of that name" "$T/check.out" && ok "... saying why" || not_ok "show mail-1: $(cat "$T/check.out")"

# a typo in a path is an error, never a new, empty store (only ca init creates)
expect_status 3 "list with a --state-dir that does not exist fails" vc --state-dir "$T/nonexistent/x" list
grep -q "state directory $T/nonexistent/x does not exist" "$T/check.out" && ok "... naming it" || not_ok "state-dir message: $(cat "$T/check.out")"
[[ ! -e "$T/nonexistent" ]] && ok "... and creates nothing" || not_ok "list created $T/nonexistent"
mkdir "$T/empty"
expect_status 3 "list in a state directory without a store fails" vc --state-dir "$T/empty" list
[[ ! -e "$T/empty/virtcert.db" ]] && ok "... and creates no database" || not_ok "list created a database in $T/empty"

# a CA made before ca init made the store too: list says so, issue makes it
check "ca init in another state directory" vc --state-dir "$T/legacy" ca init --permit vms.example.com
rm -f "$T/legacy"/virtcert.db*
expect_status 3 "list with a CA but no store yet fails" vc --state-dir "$T/legacy" list
grep -q "nothing was issued here" "$T/check.out" && ok "... saying why" || not_ok "legacy list: $(cat "$T/check.out")"
check "issue there makes the store" vc --state-dir "$T/legacy" issue --vm l-1 --dns l-1.vms.example.com
check "... and list reads it" vc --state-dir "$T/legacy" list

# a non-root user: the store is root's, the message says so (not "cannot create")
if id nobody >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
	chmod 0711 "$T"
	cp "$CONF" "$T/nobody.conf" && chmod 0644 "$T/nobody.conf"
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$VIRTCERT" --config "$T/nobody.conf" list >"$T/nobody.out" 2>&1 && rc=0 || rc=$?
	[[ $rc -ne 0 ]] && grep -q "cannot open the store .*Permission denied" "$T/nobody.out" && ! grep -q "cannot create" "$T/nobody.out" &&
		ok "non-root list: the store's permission problem, said precisely" || not_ok "non-root list (exit $rc): $(cat "$T/nobody.out")"
fi

# help for every command group
for g in hook host host-ca ca policy placement; do
	expect_status 0 "virtcert $g --help lists its commands" vc "$g" --help
	grep -q "^  $g " "$T/check.out" || not_ok "$g --help: $(cat "$T/check.out")"
done
expect_status 1 "virtcert hook (no subcommand) is a usage error" vc hook
expect_status 1 "virtcert hook frob is a usage error" vc hook frob
grep -q "unknown command 'hook frob'" "$T/check.out" && ok "... naming it" || not_ok "hook frob: $(cat "$T/check.out")"

# hook install | status | uninstall below a root
HOOK="$VC_BUILD_ROOT/hooks/virtcert-hook"
check "hook install --root" vc hook install --root "$T/root" --hook "$HOOK"
[[ -x "$T/root/etc/libvirt/hooks/qemu.d/virtcert" ]] && ok "... an executable hook in qemu.d" || not_ok "hook not installed"
VIRTCERT_HOOK_CONFIG=$CONF expect_status 3 "hook status: installed, but no daemon answers" vc hook status --root "$T/root"
grep -q "cannot reach the daemon\|does not answer" "$T/check.out" && ok "... saying so" || not_ok "hook status: $(cat "$T/check.out")"
check "hook uninstall" vc hook uninstall --root "$T/root"
[[ ! -e "$T/root/etc/libvirt/hooks/qemu.d/virtcert" ]] && ok "... removes it" || not_ok "hook still there"
check "hook uninstall again: nothing to do" vc hook uninstall --root "$T/root"

# a policy.d typo: an error naming file, line and key; the whole file refused
printf '[db]\nmatch-name=db*\nnames={name}.vms.example.com\nrelaod=systemctl reload pg\n' >"$T/policy.d/30-typo.conf"
expect_status 3 "policy show: a typo in policy.d is an error" vc policy show --xml "$T/web-9.xml"
grep -q "30-typo.conf:4: \[db\] relaod: unknown key (did you mean reload?)" "$T/check.out" &&
	ok "... naming file, line, group and key" || not_ok "typo message: $(cat "$T/check.out")"
rm "$T/policy.d/30-typo.conf"

# revoke and the CRL
check "revoke by serial with a reason" vc revoke "$serial" --reason keyCompromise
expect_status 1 "an unknown reason is a usage error" vc revoke "$serial" --reason bogus
check "revoke again is idempotent" vc revoke "$serial"
vc show "$serial" --json | jq -e '.status == "revoked" and .reason == "keyCompromise"' >/dev/null &&
	ok "the first reason stays" || not_ok "the first reason stays"
check "revoke a VM by name" vc revoke "db 7" --reason cessationOfOperation
vc crl --pem --out "$T/crl1.pem"
vc crl --out "$T/crl2.der"
openssl crl -in "$T/crl1.pem" -noout -text >"$T/crl1.txt"
grep -qi "Serial Number: ${serial^^}" "$T/crl1.txt" && ok "CRL lists the revoked serial" || not_ok "CRL lists the revoked serial"
grep -q "Key Compromise" "$T/crl1.txt" && ok "CRL carries the reason code" || not_ok "CRL carries the reason code"
n1=$(openssl crl -in "$T/crl1.pem" -noout -crlnumber | cut -d= -f2 | sed 's/^0x//')
n2=$(openssl crl -inform DER -in "$T/crl2.der" -noout -crlnumber | cut -d= -f2 | sed 's/^0x//')
((16#$n2 > 16#$n1)) && ok "CRL number increases across runs ($n1 < $n2)" || not_ok "CRL number increases ($n1, $n2)"
check "CRL signature verifies with the CA" openssl crl -in "$T/crl1.pem" -noout -CAfile <(vc ca show --pem --chain)
finish
