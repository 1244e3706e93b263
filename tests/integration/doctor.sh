#!/usr/bin/env bash
# virtcert doctor against a real setup (a private libvirtd serving the test
# driver, virtcertd, the hook below a --root): healthy → exit 0; then each
# breakage is named with its fix and the exit status says so (1 warnings
# only, 2 errors): a VM without a guest agent channel, the hook missing, a
# revocation URL nothing answers at, an expired CA, a policy.d typo.
source "$VC_SOURCE_ROOT/tests/lib/common.sh"

start_libvirtd
keep_test_driver
PORT=$(free_port)
CONF_LINES=("libvirt-uri=$TEST_URI" "http-address=127.0.0.1:$PORT" "control-group=root"
	"[ca]" "public-url=http://127.0.0.1:$PORT")
vc_write_config "${CONF_LINES[@]}"
printf '[web]\nmatch-name=web-*\nnames={name}.vms.example.com\n' >"$T/policy.d/50-web.conf"
check "ca init" vc ca init --permit vms.example.com
ROOT="$T/root"
HOOK="$VC_BUILD_ROOT/hooks/virtcert-hook"
check "hook install --root" vc hook install --root "$ROOT" --hook "$HOOK" --symlink
# the hook reads this configuration, as libvirt's call of it would
export VIRTCERT_HOOK_CONFIG=$CONF
check "virtcertd starts" start_daemon
wait_for 10 bash -c "\"$VIRTCERT\" --config '$CONF' status --json | jq -e .libvirt_connected" || not_ok "libvirt connection"

# finding FINDINGS_JSON CHECK_PREFIX STATUS MESSAGE_PART: is there such a finding?
finding() {
	jq -e --arg c "$2" --arg s "$3" --arg m "$4" \
		'[.findings[] | select((.check | startswith($c)) and .status == $s and (.message | contains($m)))] | length > 0' \
		"$1" >/dev/null
}

expect_status 0 "doctor: a healthy setup" vc doctor --root "$ROOT"
grep -q "0 error(s), 0 warning(s)" "$T/check.out" && ok "... says so" || not_ok "doctor summary: $(cat "$T/check.out")"
vc doctor --root "$ROOT" --json >"$T/d.json" || true
jq -e '.healthy and .errors == 0 and .warnings == 0' "$T/d.json" >/dev/null && ok "doctor --json: healthy" || not_ok "doctor --json: $(cat "$T/d.json")"
finding "$T/d.json" "hook" ok "the daemon answers" && ok "... the hook answers through the daemon" || not_ok "hook finding: $(cat "$T/d.json")"
finding "$T/d.json" "store" ok "integrity_check" && ok "... the store passes integrity_check" || not_ok "store finding"
finding "$T/d.json" "CRL URL" ok "HTTP 200" && ok "... the CRL URL answers" || not_ok "CRL URL finding"
finding "$T/d.json" "libvirt" ok "connected" && ok "... libvirt is reachable" || not_ok "libvirt finding"
finding "$T/d.json" "CA" ok "expires in" && ok "... days until the CA expires" || not_ok "CA finding"

# a running VM a policy selects, without a guest agent channel
lv define <(test_domain web-1) >/dev/null && lv start web-1 >/dev/null
expect_status 2 "doctor: a VM without a guest agent channel is an error" vc doctor --root "$ROOT"
grep -q "VM web-1: no guest agent channel" "$T/check.out" && grep -q "org.qemu.guest_agent.0" "$T/check.out" &&
	ok "... named, with the fix" || not_ok "agent channel finding: $(cat "$T/check.out")"
lv destroy web-1 >/dev/null
expect_status 0 "doctor: healthy again once it stops" vc doctor --root "$ROOT"

# a channel, but no agent answers in it (the test driver runs no guest)
chan="<devices><channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel></devices>"
test_domain web-2 | sed "s|</domain>|$chan</domain>|" >"$T/web-2.xml"
lv define "$T/web-2.xml" >/dev/null && lv start web-2 >/dev/null
vc doctor --root "$ROOT" --json >"$T/d.json" && rc=0 || rc=$?
[[ $rc -eq 2 ]] && finding "$T/d.json" "VM web-2" error "the guest agent does not answer" &&
	jq -e '[.findings[] | select(.check == "VM web-2") | .fix | contains("qemu-guest-agent")] | any' "$T/d.json" >/dev/null &&
	ok "doctor: a VM whose agent does not answer is an error, with the fix" || not_ok "agent finding (exit $rc): $(cat "$T/d.json")"
lv destroy web-2 >/dev/null

# the hook missing
check "hook uninstall" vc hook uninstall --root "$ROOT"
expect_status 3 "hook status: not installed" vc hook status --root "$ROOT"
expect_status 2 "doctor: a missing hook is an error" vc doctor --root "$ROOT"
grep -q "hook: not installed" "$T/check.out" && grep -q "fix: virtcert hook install" "$T/check.out" &&
	ok "... named, with the fix" || not_ok "hook finding: $(cat "$T/check.out")"
check "hook install again" vc hook install --root "$ROOT" --hook "$HOOK" --symlink
check "hook status: installed, the daemon answers" vc hook status --root "$ROOT"

# a revocation URL nothing answers at
DEAD=$(free_port)
vc_write_config "libvirt-uri=$TEST_URI" "http-address=127.0.0.1:$PORT" "control-group=root" "[ca]" "public-url=http://127.0.0.1:$DEAD"
vc doctor --root "$ROOT" --json >"$T/d.json" && rc=0 || rc=$?
[[ $rc -eq 2 ]] && finding "$T/d.json" "CRL URL" error "not reachable" && finding "$T/d.json" "OCSP URL" error "not reachable" &&
	ok "doctor: unreachable revocation URLs are errors (exit $rc)" || not_ok "URL findings (exit $rc): $(cat "$T/d.json")"
vc_write_config "${CONF_LINES[@]}"

# a control group that does not exist
vc_write_config "libvirt-uri=$TEST_URI" "http-address=127.0.0.1:$PORT" "control-group=vc-no-such-group" "[ca]" "public-url=http://127.0.0.1:$PORT"
vc doctor --root "$ROOT" --json >"$T/d.json" && rc=0 || rc=$?
[[ $rc -eq 2 ]] && finding "$T/d.json" "control group" error "does not exist" &&
	ok "doctor: a missing control group is an error" || not_ok "group finding (exit $rc): $(cat "$T/d.json")"
vc_write_config "${CONF_LINES[@]}"

# a control group created after the daemon started: a warning only (exit 1)
vc_write_config "libvirt-uri=$TEST_URI" "http-address=127.0.0.1:$PORT" "control-group=daemon" "[ca]" "public-url=http://127.0.0.1:$PORT"
vc doctor --root "$ROOT" --json >"$T/d.json" && rc=0 || rc=$?
[[ $rc -eq 1 ]] && finding "$T/d.json" "control socket" warning "is not group 'daemon'" &&
	jq -e '.errors == 0 and .warnings == 1' "$T/d.json" >/dev/null &&
	ok "doctor: a socket outside the control group is a warning, exit 1" || not_ok "socket group finding (exit $rc): $(cat "$T/d.json")"
vc_write_config "${CONF_LINES[@]}"

# a policy.d typo
printf '[db]\nmatch-name=db-*\nnames={name}.vms.example.com\nrelaod=systemctl reload pg\n' >"$T/policy.d/60-db.conf"
vc doctor --root "$ROOT" --json >"$T/d.json" && rc=0 || rc=$?
[[ $rc -eq 2 ]] && finding "$T/d.json" "policy.d" error "60-db.conf:4: [db] relaod: unknown key (did you mean reload?)" &&
	ok "doctor: a policy.d typo is an error naming file, line and key" || not_ok "policy finding (exit $rc): $(cat "$T/d.json")"
rm "$T/policy.d/60-db.conf"

# an expired CA (a second state directory whose CA lived 2 s)
OLD="$T/old"
check "ca init --lifetime 2s (a CA about to expire)" "$VIRTCERT" --config "$CONF" --state-dir "$OLD" ca init --permit vms.example.com --lifetime 2s
expired() {
	"$VIRTCERT" --config "$CONF" --state-dir "$OLD" doctor --root "$ROOT" --json >"$T/d.json" || true
	finding "$T/d.json" "CA" error "expired"
}
wait_for 10 expired && ok "doctor: an expired CA is an error" || not_ok "expired CA finding: $(cat "$T/d.json")"
expect_status 2 "... exit 2" "$VIRTCERT" --config "$CONF" --state-dir "$OLD" doctor --root "$ROOT"

# the daemon stopped
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true
vc doctor --root "$ROOT" --json >"$T/d.json" && rc=0 || rc=$?
[[ $rc -eq 2 ]] && finding "$T/d.json" "daemon" error "" && finding "$T/d.json" "hook" error "cannot reach the daemon" &&
	ok "doctor: a stopped daemon is an error, and the hook cannot reach it" || not_ok "daemon stopped (exit $rc): $(cat "$T/d.json")"

# a policy.d typo at start: the daemon refuses to start, naming it
printf '[db]\nmatch-name=db-*\nnames={name}.vms.example.com\nrelaod=x\n' >"$T/policy.d/60-db.conf"
timeout 20 "$VIRTCERTD" --config "$CONF" >"$T/start.out" 2>&1 && rc=0 || rc=$?
[[ $rc -ne 0 && $rc -ne 124 ]] && grep -q "60-db.conf:4: \[db\] relaod: unknown key" "$T/start.out" &&
	ok "virtcertd does not start with a policy.d typo, naming it (exit $rc)" || not_ok "start with a typo (exit $rc): $(cat "$T/start.out")"
finish
