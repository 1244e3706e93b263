#!/usr/bin/env bash
# virtcertd against a real libvirtd (a private session daemon serving the
# shared test driver): lifecycle events, policy from files and metadata,
# renew, revoke, CRL, hostile metadata, daemon SIGKILL and libvirtd restart.
source "$VC_SOURCE_ROOT/tests/lib/common.sh"

start_libvirtd
keep_test_driver
PORT=$(free_port)
vc_write_config "libvirt-uri=$TEST_URI" reconcile-interval=2 "http-address=127.0.0.1:$PORT" "${VC_CONF_CA_URLS[@]}"
cat >"$T/policy.d/50-vms.conf" <<'EOP'
[vms]
match-name=vm-*
names={name}.vms.example.com
lifetime=1h

[stopper]
match-name=stop-*
names={name}.vms.example.com
on-stop=revoke

[short]
match-name=short-*
names={name}.vms.example.com
lifetime=1m

[reload]
match-name=rel-*
names={name}.vms.example.com
EOP
check "ca init" vc ca init --permit vms.example.com --permit meta.example.org
check "virtcertd starts and answers status" start_daemon
check "virtcert watch follows the daemon" start_watch

# a 1-minute certificate, renewed by itself at 2/3 of its life (checked at the end)
lv define <(test_domain short-1) >/dev/null; lv start short-1 >/dev/null
wait_for 5 has_cert short-1 || true
short1=$(cert_of short-1)

# define alone does not issue (default: issue on start), start does
mark=$(watch_mark)
lv define <(test_domain vm-1) >/dev/null
wait_handled "$mark" vm-1 defined || not_ok "the daemon did not take vm-1's define"
! has_cert vm-1 && ok "define alone issues nothing (issue-on=start)" || not_ok "define alone issued"
lv start vm-1 >/dev/null
wait_for 5 has_cert vm-1 && ok "start issues a certificate" || not_ok "start issues a certificate"
s1=$(cert_of vm-1)
vc show "$s1" --json | jq -e '.dns_names == ["vm-1.vms.example.com"]' >/dev/null &&
	ok "names come from policy.d" || not_ok "names come from policy.d"

# stop keeps, start again keeps the same certificate
mark=$(watch_mark)
lv destroy vm-1 >/dev/null
lv start vm-1 >/dev/null
wait_handled "$mark" vm-1 started || not_ok "the daemon did not take vm-1's restart"
[[ $(cert_of vm-1) == "$s1" ]] && ok "stop/start keeps the valid certificate" || not_ok "stop/start keeps the certificate"

# metadata policy: a VM no file selects, names from its own metadata
meta='<vc:vm xmlns:vc="urn:virtcert:domain:1"><vc:name>{name}.meta.example.org</vc:name><vc:issue on="define"/></vc:vm>'
lv define <(test_domain db-1 "$meta") >/dev/null
wait_for 5 has_cert db-1 && ok "metadata selects a VM and issue-on=define issues at define" || not_ok "metadata policy"
vc show "$(cert_of db-1)" --json | jq -e '.dns_names == ["db-1.meta.example.org"]' >/dev/null &&
	ok "names come from metadata" || not_ok "names come from metadata"

# on-stop=revoke
lv define <(test_domain stop-1) >/dev/null
lv start stop-1 >/dev/null
wait_for 5 has_cert stop-1 || true
s_stop=$(cert_of stop-1)
lv destroy stop-1 >/dev/null
wait_for 5 bash -c "[[ \$(\"$VIRTCERT\" --config '$CONF' show $s_stop --json | jq -r .status) == revoked ]]" &&
	ok "on-stop=revoke revokes at stop" || not_ok "on-stop=revoke revokes at stop"

# a user outside the control group: both problems said, the socket first
if id nobody >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
	cp "$CONF" "$T/nobody.conf" && chmod 0644 "$T/nobody.conf"
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$VIRTCERT" --config "$T/nobody.conf" list >"$T/nobody.out" 2>&1 && rc=0 || rc=$?
	[[ $rc -ne 0 ]] && grep -q "cannot reach the daemon's control socket .*Permission denied (the user must be in its control-group" "$T/nobody.out" &&
		grep -q "; and cannot open the store" "$T/nobody.out" &&
		ok "non-root list: the socket's and the store's permission problems" || not_ok "non-root list (exit $rc): $(cat "$T/nobody.out")"
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$VIRTCERT" --config "$T/nobody.conf" status >"$T/nobody.out" 2>&1 && rc=0 || rc=$?
	[[ $rc -ne 0 ]] && grep -q "Permission denied (the user must be in its control-group 'virtcert': usermod -aG virtcert USER" "$T/nobody.out" &&
		ok "non-root status: names the control group" || not_ok "non-root status (exit $rc): $(cat "$T/nobody.out")"
fi

# human output: status, show with the renewal time, a VM without a certificate
check "status: a human answer" vc status
grep -q "^libvirt: .*(connected)" "$T/check.out" && grep -q "^Queued: " "$T/check.out" && ! grep -q "{" "$T/check.out" &&
	ok "... not JSON" || not_ok "status output: $(cat "$T/check.out")"
check "show VM" vc show vm-1
grep -q "^Renews at: " "$T/check.out" && ok "show: the next renewal time" || not_ok "show vm-1: $(cat "$T/check.out")"
lv define <(test_domain mail-1) >/dev/null
expect_status 0 "show of a VM no policy selects" vc show mail-1
grep -q "no policy selects it" "$T/check.out" && ok "... says why it has no certificate" || not_ok "show mail-1: $(cat "$T/check.out")"
lv undefine mail-1 >/dev/null
expect_status 3 "show of a VM nobody knows" vc show no-such-vm
grep -q "libvirt (.*) has no VM of that name" "$T/check.out" && ok "... says libvirt has none" || not_ok "show no-such-vm: $(cat "$T/check.out")"

# renew: a new serial, the old one superseded
check "renew through the daemon" vc renew vm-1
grep -q "^Renewal of VM vm-1" "$T/check.out" && ok "renew: a human answer" || not_ok "renew output: $(cat "$T/check.out")"
wait_for 5 bash -c "[[ -n \"\$(\"$VIRTCERT\" --config '$CONF' list --json | jq -r '.[] | select(.vm_name==\"vm-1\" and .status==\"valid\" and .serial != \"$s1\") | .serial')\" ]]" &&
	ok "renew issues a new certificate" || not_ok "renew issues a new certificate"
wait_for 5 bash -c "[[ \$(\"$VIRTCERT\" --config '$CONF' show $s1 --json | jq -r .reason) == superseded ]]" &&
	ok "the old certificate is revoked as superseded" || not_ok "old certificate superseded"
s1=$(cert_of vm-1)

# undefine revokes with cessationOfOperation and the CRL says so
lv destroy vm-1 >/dev/null
lv undefine vm-1 >/dev/null
wait_for 5 bash -c "[[ \$(\"$VIRTCERT\" --config '$CONF' show $s1 --json | jq -r .reason) == cessationOfOperation ]]" &&
	ok "undefine revokes (cessationOfOperation)" || not_ok "undefine revokes"
vc crl --pem | openssl crl -noout -text | contains -i "Serial Number: ${s1^^}" &&
	ok "the CRL lists it" || not_ok "the CRL lists it"

# undefine of a running VM: it runs on as a transient domain, its life ends at stop
lv define <(test_domain vm-tr) >/dev/null; lv start vm-tr >/dev/null
wait_for 5 has_cert vm-tr || true
t1=$(cert_of vm-tr)
mark=$(watch_mark)
lv undefine vm-tr >/dev/null
wait_handled "$mark" vm-tr undefined || not_ok "the daemon did not take vm-tr's undefine"
[[ $(cert_of vm-tr) == "$t1" && -n $t1 ]] && ok "undefine of a running VM keeps its certificate" || not_ok "undefine of a running VM: $(vc show vm-tr --json | jq -c .domain)"
lv destroy vm-tr >/dev/null
wait_for 5 bash -c "[[ \$(\"$VIRTCERT\" --config '$CONF' show $t1 --json | jq -r .reason) == cessationOfOperation ]]" &&
	ok "... and revokes it when the transient VM stops" || not_ok "transient stop: $(vc show "$t1" --json | jq -c '{status,reason}')"
expect_status 3 "revoke of an unknown VM names it" vc revoke no-such-vm
grep -q "no-such-vm" "$T/check.out" && ok "the error says which VM" || not_ok "error text: $(cat "$T/check.out")"

# the same UUID defined again is a new life with a new certificate
uuid=$(uuidgen 2>/dev/null || cat /proc/sys/kernel/random/uuid)
dom="<domain type='test'><name>vm-again</name><uuid>$uuid</uuid><memory>65536</memory><os><type>hvm</type></os></domain>"
lv define <(echo "$dom") >/dev/null; lv start vm-again >/dev/null
wait_for 5 has_cert vm-again || true
a1=$(cert_of vm-again)
lv destroy vm-again >/dev/null; lv undefine vm-again >/dev/null
lv define <(echo "$dom") >/dev/null; lv start vm-again >/dev/null
wait_for 5 bash -c "s=\$(\"$VIRTCERT\" --config '$CONF' list --json | jq -r '.[] | select(.vm_name==\"vm-again\" and .status==\"valid\") | .serial'); [[ -n \$s && \$s != $a1 ]]" &&
	ok "undefine + define of the same UUID: new certificate" || not_ok "redefine gets a new certificate"
[[ $(vc show "$a1" --json | jq -r .status) == revoked ]] && ok "the first life's certificate stays revoked" || not_ok "first life revoked"
vc show vm-again --json | jq -e '.domain.generation >= 2' >/dev/null &&
	ok "the generation went up" || not_ok "the generation went up"

# manual revoke through the daemon
lv define <(test_domain vm-man) >/dev/null; lv start vm-man >/dev/null
wait_for 5 has_cert vm-man || true
m1=$(cert_of vm-man)
check "revoke VM through the daemon" vc revoke vm-man --reason keyCompromise
[[ $(vc show "$m1" --json | jq -r .reason) == keyCompromise ]] && ok "manual revoke recorded" || not_ok "manual revoke recorded"

# hostile metadata is refused with a reason; other VMs are still served
bad='<vc:vm xmlns:vc="urn:virtcert:domain:1"><vc:name>{name}.meta.example.org</vc:name><vc:frobnicate/></vc:vm>'
lv define <(test_domain vm-bad "$bad") >/dev/null
big=$(head -c 1048576 /dev/zero | tr '\0' 'a')
lv define <(test_domain vm-big "<vc:vm xmlns:vc=\"urn:virtcert:domain:1\"><vc:name>$big.meta.example.org</vc:name></vc:vm>") >/dev/null 2>&1 || true
outside='<vc:vm xmlns:vc="urn:virtcert:domain:1"><vc:name>www.google.com</vc:name><vc:issue on="define"/></vc:vm>'
lv define <(test_domain vm-outside "$outside") >/dev/null
lv start vm-bad >/dev/null
lv define <(test_domain vm-2) >/dev/null; lv start vm-2 >/dev/null
wait_for 5 has_cert vm-2 && ok "a good VM is served after hostile ones" || not_ok "good VM served"
vc show vm-bad --json | jq -e '.domain.state == "FAILED" and (.domain.last_error | test("frobnicate"))' >/dev/null &&
	ok "unknown metadata element refused with a reason" || { not_ok "unknown metadata refused"; vc show vm-bad --json; }
vc show vm-outside --json | jq -e '.domain.state == "FAILED" and (.domain.last_error | test("www.google.com"))' >/dev/null &&
	ok "a name outside the CA's constraints is refused" || { not_ok "outside name refused"; vc show vm-outside --json; }
! has_cert vm-bad && ! has_cert vm-outside && ok "no certificate for refused VMs" || not_ok "refused VMs got certificates"
grep -q "frobnicate" "$T/virtcertd.log" && ok "the refusal is logged" || not_ok "the refusal is logged"

# 100-deep foreign metadata (libvirt keeps it as it is) is read like the
# rest of libvirt's XML; the same depth inside the virtcert element, which
# is ours, is refused with a reason (red-team finding 3)
deep=$(for i in $(seq 1 100); do printf '<x:a xmlns:x="urn:x">'; done; for i in $(seq 1 100); do printf '</x:a>'; done)
if lv define <(test_domain vm-deep "$deep") >/dev/null 2>&1; then
	lv start vm-deep >/dev/null
	wait_for 5 has_cert vm-deep && ok "100-deep foreign metadata: the VM is served" || { not_ok "deep foreign metadata"; vc show vm-deep --json; }
	lv define <(test_domain vm-deep-vc "<vc:vm xmlns:vc=\"urn:virtcert:domain:1\"><vc:name>{name}.meta.example.org</vc:name>$deep</vc:vm>") >/dev/null
	lv start vm-deep-vc >/dev/null
	wait_for 5 bash -c "\"$VIRTCERT\" --config '$CONF' show vm-deep-vc --json | jq -e '.domain.state == \"FAILED\" and (.domain.last_error | test(\"deep\"))'" &&
		ok "100-deep virtcert metadata refused with a reason" || { not_ok "deep virtcert metadata"; vc show vm-deep-vc --json; }
else
	ok "libvirt itself refuses 100-deep metadata"
fi
# entity expansion and control characters: libvirt refuses or expands them before
# virtcert sees the XML; either way nothing is issued for them and the daemon serves on
lol='<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
lv define <(echo "$lol$(test_domain vm-lol '<vc:vm xmlns:vc="urn:virtcert:domain:1"><vc:name>&c;.vms.example.com</vc:name></vc:vm>')") >/dev/null 2>&1 || true
lv define <(test_domain "$(printf 'vm-ctl\x01')") >/dev/null 2>&1 || true
lv define <(test_domain vm-5) >/dev/null; lv start vm-5 >/dev/null
wait_for 5 has_cert vm-5 && ok "the daemon serves on after hostile definitions" || not_ok "daemon after hostile definitions"
! has_cert vm-lol && ok "no certificate with an entity-expanded name" || not_ok "vm-lol got a certificate"
kill -0 "$DAEMON_PID" && ok "virtcertd is alive" || not_ok "virtcertd died"

# rename while stopped: the old names go (superseded), the new ones come at start
lv define <(test_domain vm-ren) >/dev/null; lv start vm-ren >/dev/null
wait_for 5 has_cert vm-ren || true
r1=$(cert_of vm-ren)
lv destroy vm-ren >/dev/null
lv domrename vm-ren vm-ren2 >/dev/null
wait_for 5 bash -c "[[ \$(\"$VIRTCERT\" --config '$CONF' show $r1 --json | jq -r .reason) == superseded ]]" &&
	ok "domrename: the old name's certificate is superseded" || not_ok "domrename: $(vc show "$r1" --json | jq -c '{status,reason}')"
lv start vm-ren2 >/dev/null
wait_for 5 has_cert vm-ren2 && vc show "$(cert_of vm-ren2)" --json | jq -e '.dns_names == ["vm-ren2.vms.example.com"]' >/dev/null &&
	ok "domrename: the new name gets its certificate at start" || not_ok "domrename: new name"

# policy.d changed and reloaded: new names, the old certificate superseded
lv define <(test_domain rel-1) >/dev/null; lv start rel-1 >/dev/null
wait_for 5 has_cert rel-1 || true
l1=$(cert_of rel-1)
sed -i 's/^\[reload\]$/[reload]\nlifetime=2h/; /^\[reload\]/,/^$/ s/^names=.*/names={name}.meta.example.org/' "$T/policy.d/50-vms.conf"
check "virtcert reload" vc reload
grep -q "^Policy reloaded: 4 group(s) in force" "$T/check.out" && ok "reload: a human answer" || not_ok "reload output: $(cat "$T/check.out")"
wait_for 5 bash -c "s=\$(\"$VIRTCERT\" --config '$CONF' list --json | jq -r '.[] | select(.vm_name==\"rel-1\" and .status==\"valid\") | .dns_names[0]'); [[ \$s == rel-1.meta.example.org ]]" &&
	ok "reload: new names from policy.d" || not_ok "reload: names $(vc list --json | jq -c '[.[] | select(.vm_name=="rel-1")]')"
[[ $(vc show "$l1" --json | jq -r .reason) == superseded ]] && ok "reload: the old certificate is superseded" || not_ok "reload: old certificate $(vc show "$l1" --json | jq -c '{status,reason}')"
# a typo in policy.d: reload refused (non-zero), the previous policy stays
# in force, the daemon logs the refused file
cp "$T/policy.d/50-vms.conf" "$T/50-vms.conf.good"
sed -i 's/^on-stop=revoke$/on-stpo=revoke/' "$T/policy.d/50-vms.conf"
expect_status 3 "reload with a policy.d typo fails" vc reload
grep -q "50-vms.conf:[0-9]*: \[stopper\] on-stpo: unknown key (did you mean on-stop?)" "$T/check.out" &&
	ok "... naming file, line, group and key" || not_ok "reload typo message: $(cat "$T/check.out")"
grep -q "reload refused, the previous policy stays in force: .*50-vms.conf:[0-9]*: \[stopper\] on-stpo" "$T/virtcertd.log" &&
	ok "... and the daemon logs what it refused" || not_ok "daemon log: $(tail -3 "$T/virtcertd.log")"
vc status --json | jq -e '.policy_groups == 4' >/dev/null && ok "... the previous policy stays in force (4 groups)" || not_ok "policy after a refused reload: $(vc status --json | jq .policy_groups)"
cp "$T/50-vms.conf.good" "$T/policy.d/50-vms.conf"
kill -HUP "$DAEMON_PID" && wait_for 5 bash -c "\"$VIRTCERT\" --config '$CONF' status" && ok "SIGHUP reloads and the daemon answers" || not_ok "SIGHUP"

# the 1-minute certificate was renewed by itself, the old one superseded
wait_for 60 bash -c "s=\$(\"$VIRTCERT\" --config '$CONF' list --json | jq -r '.[] | select(.vm_name==\"short-1\" and .status==\"valid\") | .serial'); [[ -n \$s && \$s != $short1 ]]" &&
	ok "a 1-minute certificate is renewed at 2/3 of its life" || not_ok "no automatic renewal"
wait_for 5 bash -c "[[ \$(\"$VIRTCERT\" --config '$CONF' show $short1 --json | jq -r .reason) == superseded ]]" &&
	ok "the renewed certificate is superseded" || not_ok "renewal: old certificate $(vc show "$short1" --json | jq -c '{status,reason}')"

# /metrics after all this, as Prometheus reads it
curl -sS "http://127.0.0.1:$PORT/metrics" >"$T/metrics.txt"
check "promtool check metrics" bash -c "promtool check metrics <'$T/metrics.txt'"
metric() { awk -v n="$1" '$1 == n {print $2}' "$T/metrics.txt"; }
at_least() { [[ -n $1 ]] && awk -v v="$1" -v m="$2" 'BEGIN {exit !(v >= m)}'; }
at_least "$(metric virtcert_certificates_issued_total)" 8 && ok "metrics: issued $(metric virtcert_certificates_issued_total)" || not_ok "metrics: issued '$(metric virtcert_certificates_issued_total)'"
at_least "$(metric virtcert_certificates_renewed_total)" 2 && ok "metrics: renewed $(metric virtcert_certificates_renewed_total)" || not_ok "metrics: renewed '$(metric virtcert_certificates_renewed_total)'"
at_least "$(metric 'virtcert_certificates_revoked_total{reason="cessationOfOperation"}')" 2 && ok "metrics: revoked by reason" || not_ok "metrics: revoked cessationOfOperation '$(metric 'virtcert_certificates_revoked_total{reason="cessationOfOperation"}')'"
at_least "$(metric virtcert_issue_latency_seconds_count)" 8 && ok "metrics: event-to-issued latency histogram" || not_ok "metrics: issue latency count '$(metric virtcert_issue_latency_seconds_count)'"
at_least "$(metric virtcert_revocation_visible_seconds_count)" 2 && ok "metrics: revocation-to-visible histogram" || not_ok "metrics: revocation visible count '$(metric virtcert_revocation_visible_seconds_count)'"
at_least "$(metric virtcert_vm_certificate_expiry_seconds)" 1 && ok "metrics: soonest VM certificate expiry $(metric virtcert_vm_certificate_expiry_seconds) s" || not_ok "metrics: VM expiry '$(metric virtcert_vm_certificate_expiry_seconds)'"
[[ $(grep -c '^virtcert_domains{state=' "$T/metrics.txt") == 13 ]] && ok "metrics: all 13 states" || not_ok "metrics: states $(grep '^virtcert_domains' "$T/metrics.txt")"
# the CRL the leaves point at lists what undefine revoked
curl -sS "http://127.0.0.1:$PORT/crl/$(vc status --json | jq -r .ca_id).crl" | openssl crl -inform DER -noout -text | contains -i "Serial Number: $s1" &&
	ok "the served CRL lists the undefined VM's certificate" || not_ok "served CRL"

# SIGKILL the daemon; change things while it is down; restart: reconcile
kill -9 "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true
lv destroy vm-2 >/dev/null; lv undefine vm-2 >/dev/null
lv define <(test_domain vm-3) >/dev/null; lv start vm-3 >/dev/null
s2=$(cert_of vm-2)
check "virtcertd restarts" start_daemon
# the watch started at the beginning outlived the daemon
wait_for 10 grep -q "reconnected" "$T/watch.err" && ok "watch: reconnects after the daemon restarts, with a notice" || not_ok "watch: $(cat "$T/watch.err")"
kill -0 "$WATCH_PID" && ok "... still running" || not_ok "watch exited"
wait_for 10 has_cert vm-3 && ok "a VM started while the daemon was down gets its certificate" || not_ok "VM started while down"
wait_for 10 bash -c "[[ \$(\"$VIRTCERT\" --config '$CONF' show $s2 --json | jq -r .status) == revoked ]]" &&
	ok "a VM undefined while the daemon was down is revoked" || not_ok "VM undefined while down"

# libvirtd killed and restarted: the daemon reconnects within 5 s
s3=$(cert_of vm-3)
bash "$VC_SOURCE_ROOT/tests/lib/libvirtd-session.sh" kill "$LVDIR"
kill "$KEEPER" 2>/dev/null || true
wait_for 10 bash -c "\"$VIRTCERT\" --config '$CONF' status --json | jq -e '.libvirt_connected == false'" || true
bash "$VC_SOURCE_ROOT/tests/lib/libvirtd-session.sh" start "$LVDIR" >/dev/null
t0=$(date +%s.%N)
keep_test_driver
if wait_for 10 bash -c "\"$VIRTCERT\" --config '$CONF' status --json | jq -e '.libvirt_connected == true'"; then
	t1=$(date +%s.%N)
	dt=$(echo "$t1 - $t0" | bc 2>/dev/null || python3 -c "print($t1-$t0)")
	python3 -c "import sys; sys.exit(0 if $t1-$t0 < 5 else 1)" && ok "reconnected in ${dt}s" || not_ok "reconnect took ${dt}s"
else
	not_ok "daemon did not reconnect"
fi
# the test driver forgot every domain: reconcile revokes the vanished ones
wait_for 10 bash -c "[[ \$(\"$VIRTCERT\" --config '$CONF' show $s3 --json | jq -r .status) == revoked ]]" &&
	ok "domains gone across the libvirtd restart are revoked" || not_ok "vanished domains revoked"
lv define <(test_domain vm-4) >/dev/null; lv start vm-4 >/dev/null
wait_for 5 has_cert vm-4 && ok "events flow after the reconnect" || not_ok "events after reconnect"

# invariants: every valid certificate belongs to a domain libvirt has
live=$(lv list --all --name | sort)
bad=$(vc list --json | jq -r '.[] | select(.status=="valid") | .vm_name' | sort -u | while read -r n; do grep -qx "$n" <<<"$live" || echo "$n"; done)
[[ -z "$bad" ]] && ok "no valid certificate for a VM libvirt does not have" || not_ok "valid certificates for gone VMs: $bad"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" && ok "SIGTERM stops the daemon cleanly" || not_ok "SIGTERM exit status"
finish
