#!/usr/bin/env bash
# The daemon SIGKILLed at named kill points of issuance and revocation
# (VC_TEST_CRASH_AT), restarted, and what the restart finds: no certificate
# valid that no VM row holds, every revocation that was due on the CRL.
# Regression for the crash storm's first finding: a certificate committed
# VALID before the VM's row, then a crash, stayed valid for ever.
if [[ ${VC_TEST_SEAMS:-} != 1 ]]; then
	echo "SKIP: no crash points in this build (-Dtest_seams=false)"
	exit 77
fi
source "$VC_SOURCE_ROOT/tests/lib/common.sh"

start_libvirtd
keep_test_driver
vc_write_config "libvirt-uri=$TEST_URI" reconcile-interval=3600 "${VC_CONF_CA_URLS[@]}"
printf '[ec]\nmatch-name=ec-*\nnames={name}.vms.example.com\n' >"$T/policy.d/ec.conf"
check "ca init" vc ca init --permit vms.example.com

# start_armed POINT: virtcertd that dies the first time it reaches POINT
start_armed() {
	VC_TEST_CRASH_AT=$1 "$VIRTCERTD" --config "$CONF" >>"$T/virtcertd.log" 2>&1 &
	DAEMON_PID=$!
	cleanup_hooks+=("kill -9 $DAEMON_PID 2>/dev/null")
	wait_for 10 vc status
}
# killed_at POINT: the armed daemon died by SIGKILL at POINT
killed_at() {
	local rc=0
	wait_for 10 bash -c "! kill -0 $DAEMON_PID" || return 1
	wait "$DAEMON_PID" || rc=$?
	[[ $rc -eq 137 ]] && grep -q "crash point $1 (hit 1): SIGKILL" "$T/virtcertd.log"
}
restart() {
	start_daemon && wait_for 10 queue_empty
}
pkill_daemon() { kill -9 "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; }
uuid_of() { lv domuuid "$1"; }
certs_of() { # certs_of UUID STATUS...: the serials of the VM's certificates with those statuses
	local u=$1 s="" st
	shift
	for st in "$@"; do s+="${s:+,}'$st'"; done
	sqlite3 "$STATE/virtcert.db" "SELECT serial FROM certificates WHERE vm_uuid='$u' AND status IN ($s)"
}
on_crl() { vc crl --pem | openssl crl -noout -text | contains -i "Serial Number: ${1^^}"; }

# 1. killed between the issuer's signing and the commit of the VM rows,
#    the VM stopped while the daemon is down: nothing may stay valid
check "virtcertd armed at issue-rows-before-commit" start_armed issue-rows-before-commit
lv define <(test_domain ec-1) >/dev/null
u1=$(uuid_of ec-1)
lv start ec-1 >/dev/null
killed_at issue-rows-before-commit && ok "killed at issue-rows-before-commit" || not_ok "not killed at issue-rows-before-commit"
lv destroy ec-1 >/dev/null
check "virtcertd restarts" restart
valid=$(certs_of "$u1" VALID PENDING)
[[ -z "$valid" ]] && ok "no certificate of the stopped VM is valid or pending" || not_ok "left valid: $valid"
lost=$(certs_of "$u1" ABANDONED)
[[ -n "$lost" ]] && on_crl "$lost" && ok "the serial signed before the crash is abandoned and on the CRL" ||
	not_ok "abandoned serial on the CRL: '$lost'"
lv start ec-1 >/dev/null
wait_for 10 has_cert ec-1 && ok "started again: a certificate" || not_ok "no certificate after the start"
pkill_daemon

# 2. killed after that commit: the VM's row holds the certificate
check "virtcertd armed at issue-rows-after-commit" start_armed issue-rows-after-commit
lv define <(test_domain ec-2) >/dev/null
lv start ec-2 >/dev/null
killed_at issue-rows-after-commit && ok "killed at issue-rows-after-commit" || not_ok "not killed at issue-rows-after-commit"
check "virtcertd restarts" restart
s2=$(certs_of "$(uuid_of ec-2)" VALID)
cur=$(vc show ec-2 --json | jq -r .domain.current_serial)
[[ -n "$s2" && "$s2" == "$cur" ]] && ok "the one valid certificate is the row's current one" || not_ok "valid '$s2', current '$cur'"

# 2b. a renewal, killed after its commit: the certificate it supersedes is
#     revoked in that same commit (it stayed valid beside the new one)
wait_for 10 queue_empty
pkill_daemon
check "virtcertd armed at issue-rows-after-commit" start_armed issue-rows-after-commit
vc renew ec-2 >/dev/null 2>&1 || true
killed_at issue-rows-after-commit && ok "renewal killed at issue-rows-after-commit" || not_ok "renewal not killed"
check "virtcertd restarts" restart
valid=$(certs_of "$(uuid_of ec-2)" VALID)
cur=$(vc show ec-2 --json | jq -r .domain.current_serial)
st=$(sqlite3 "$STATE/virtcert.db" "SELECT status || ' ' || reason FROM certificates WHERE serial='$s2'")
[[ "$valid" == "$cur" && $cur != "$s2" ]] && ok "one valid certificate after the renewal, the new one" ||
	not_ok "valid: $valid; current $cur; the old $s2"
[[ $st == "REVOKED 4" ]] && on_crl "$s2" && ok "the superseded one is revoked (superseded) and on the CRL" ||
	not_ok "the superseded one: $st"

# 3. undefined, killed before the revocation's commit: revoked at the restart
for point in revoke-before-commit revoke-after-commit; do
	vm=ec-$point
	lv define <(test_domain "$vm") >/dev/null
	lv start "$vm" >/dev/null
	wait_for 10 has_cert "$vm" || not_ok "$vm: no certificate"
	s=$(cert_of "$vm")
	u=$(uuid_of "$vm")
	wait_for 10 queue_empty
	pkill_daemon
	check "virtcertd armed at $point" start_armed "$point"
	lv destroy "$vm" >/dev/null
	lv undefine "$vm" >/dev/null
	killed_at "$point" && ok "killed at $point" || not_ok "not killed at $point"
	check "virtcertd restarts" restart
	st=$(sqlite3 "$STATE/virtcert.db" "SELECT status FROM certificates WHERE serial='$s'")
	row=$(sqlite3 "$STATE/virtcert.db" "SELECT state FROM domains WHERE uuid='$u'")
	[[ $st == REVOKED && $row == REVOKED ]] && ok "$point: revoked after the restart (row $row)" ||
		not_ok "$point: certificate $st, row $row"
	on_crl "$s" && ok "$point: on the CRL" || not_ok "$point: not on the CRL"
done

# 4. `virtcert revoke` killed after its commit, before the reply
lv define <(test_domain ec-man) >/dev/null
lv start ec-man >/dev/null
wait_for 10 has_cert ec-man || not_ok "ec-man: no certificate"
s=$(cert_of ec-man)
wait_for 10 queue_empty
pkill_daemon
check "virtcertd armed at revoke-manual-committed" start_armed revoke-manual-committed
check_fails "the revoke's client sees the daemon die" vc revoke ec-man
killed_at revoke-manual-committed && ok "killed at revoke-manual-committed" || not_ok "not killed at revoke-manual-committed"
check "virtcertd restarts" restart
st=$(sqlite3 "$STATE/virtcert.db" "SELECT status FROM certificates WHERE serial='$s'")
[[ $st == REVOKED ]] && on_crl "$s" && ok "the manual revocation holds and is on the CRL" || not_ok "manual revocation: $st"
wait_for 10 has_cert ec-man && [[ $(cert_of ec-man) != "$s" ]] && ok "a new certificate for the running VM" ||
	not_ok "no new certificate after the manual revocation"
finish
