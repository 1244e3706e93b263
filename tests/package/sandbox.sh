#!/usr/bin/env bash
# virtcertd.service's sandbox: systemd-analyze rates it <= 2.0, and the daemon
# works under the same restrictions, applied without systemd as PID 1:
#   sandbox.sh UNIT STATEDIR RUNSTATEDIR
# (the generated build/packaging/virtcertd.service and the build's state
# and runtime directories, /var/lib/virtcert and /run/virtcert for the
# Debian package)
#
# Exercised, each read from the unit (not written here): ProtectSystem=strict
# (every mount read-only in a private mount namespace but ReadWritePaths),
# ReadWritePaths, PrivateTmp (fresh /tmp and /var/tmp), ProtectHome (empty,
# inaccessible /home, /root, /run/user), NoNewPrivileges and
# CapabilityBoundingSet (setpriv), Group= (as the real group id), UMask=,
# SystemCallFilter, SystemCallErrorNumber and RestrictAddressFamilies
# (seccomp, tests/package/seccomp-exec.py, groups expanded by
# systemd-analyze), Type=notify (READY=1 on a NOTIFY_SOCKET).
# Not exercised: PrivateDevices, ProtectKernel*, ProtectProc, ProcSubset,
# ProtectClock, RestrictNamespaces, MemoryDenyWriteExecute, LockPersonality,
# RestrictRealtime/SUIDSGID, LimitNOFILE, RuntimeDirectory/StateDirectory
# (systemd makes the directories; tmpfiles.d does here).
# The unit's paths are mapped to the test's own directories: STATEDIR
# -> $T/state, RUNSTATEDIR -> $T/run; its group virtcert to nogroup, so the
# test creates no user or group on the machine.
set -euo pipefail
UNIT=${1:?usage: sandbox.sh UNIT STATEDIR RUNSTATEDIR}
UNIT_STATEDIR=${2:?}
UNIT_RUNSTATEDIR=${3:?}
PY=/usr/bin/python3 # Debian's, with python3-seccomp
for tool in systemd-analyze unshare setpriv "$PY"; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing (scripts/deps test installs it)"; exit 77; }
done
"$PY" -c 'import seccomp' 2>/dev/null || { echo "SKIP: python3-seccomp missing (scripts/deps test)"; exit 77; }
[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root (mount namespace, setpriv)"; exit 77; }

# The test's directories must be outside what the sandbox hides (/tmp,
# /var/tmp, /home, /root): under /var/lib, removed at exit.
TMPDIR=$(mktemp -d /var/lib/virtcert-sandbox-test.XXXXXX)
chmod 0711 "$TMPDIR" # the private libvirtd runs as vctest below it
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
source "$VC_SOURCE_ROOT/tests/lib/common.sh"
trap 'vc_cleanup; rm -rf "$TMPDIR"' EXIT
# The programs run from the test's directory: the checkout and the build may
# lie where the sandbox hides (/tmp, /home, /root), the daemon does not.
mkdir -p "$T/bin"
cp "$VC_SOURCE_ROOT/tests/package/seccomp-exec.py" "$VIRTCERTD" "$T/bin/"
HERE=$T/bin
VIRTCERTD=$T/bin/virtcertd

# ---- the score -----------------------------------------------------------
out=$(systemd-analyze security --offline=yes "$UNIT" 2>&1) || true
score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out")
if [[ -z "$score" ]]; then
	not_ok "systemd-analyze security gave no score"; sed 's/^/    /' <<<"$out"
elif awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'; then
	ok "systemd-analyze security --offline=yes rates the unit $score (<= 2.0)"
else
	not_ok "systemd-analyze security rates the unit $score (> 2.0)"; grep '✗' <<<"$out" | sed 's/^/    /'
fi

# ---- the unit's restrictions -----------------------------------------------
# unit_values KEY: every value of KEY= in the unit, one a line
unit_values() { sed -n "s/^$1=//p" "$UNIT"; }
unit_value() { unit_values "$1" | tail -1; }

declare -A map=(["$UNIT_STATEDIR"]="$T/state" ["$UNIT_RUNSTATEDIR"]="$T/run")
rw=()
for p in $(unit_values ReadWritePaths); do
	p=${p#-}
	[[ -n "${map[$p]:-}" ]] || { not_ok "ReadWritePaths names $p, which this test cannot map"; finish; }
	rw+=("${map[$p]}")
done
group=$(unit_value Group)
[[ "$group" == virtcert ]] || not_ok "the unit's Group= is '$group', not virtcert"
sandbox_group=nogroup
umask_value=$(unit_value UMask)
[[ $(unit_value ProtectSystem) == strict ]] || not_ok "ProtectSystem= is not strict"
[[ $(unit_value NoNewPrivileges) == yes ]] || not_ok "NoNewPrivileges= is not yes"
[[ $(unit_value PrivateTmp) == yes ]] || not_ok "PrivateTmp= is not yes"
[[ $(unit_value ProtectHome) == yes ]] || not_ok "ProtectHome= is not yes"
caps=$(unit_value CapabilityBoundingSet)
if [[ -z "$caps" ]]; then
	bounding=-all
else
	bounding=-all,$(tr ' ' '\n' <<<"$caps" | sed 's/^CAP_/+/' | tr 'A-Z' 'a-z' | paste -sd,)
fi
seccomp_args=()
while IFS= read -r f; do seccomp_args+=(--filter "$f"); done < <(unit_values SystemCallFilter)
((${#seccomp_args[@]} > 0)) || not_ok "the unit has no SystemCallFilter="
errno_name=$(unit_value SystemCallErrorNumber)
[[ -n "$errno_name" ]] && seccomp_args+=(--error-number "$errno_name")
families=$(unit_value RestrictAddressFamilies)
[[ -n "$families" ]] && seccomp_args+=(--families "$families")

mkdir -p "$T/state" "$T/run"
chmod 0700 "$T/state"
chgrp "$sandbox_group" "$T/run"
chmod 0750 "$T/run"

# sandbox CMD...: runs CMD as the unit would run ExecStart (with
# SANDBOX_EXEC=1 in place of the calling shell, so that $! of a background
# `SANDBOX_EXEC=1 sandbox … &` is CMD's own process)
sandbox() {
	local run=()
	[[ -n "${SANDBOX_EXEC:-}" ]] && run=(exec)
	"${run[@]}" unshare --mount --propagation private -- bash -c '
		set -e
		rw=$1 umask_value=$2 group=$3 bounding=$4
		shift 4
		# ReadWritePaths: bound onto themselves first, so that they stay
		# writable when everything else becomes read-only
		for p in $rw; do mount --bind "$p" "$p"; done
		# ProtectSystem=strict: every mount read-only but the API file
		# systems (/dev, /proc, /sys) and the ReadWritePaths
		mount -o remount,bind,ro /
		while read -r mp; do
			case "$mp" in /|/dev|/dev/*|/proc|/proc/*|/sys|/sys/*) continue ;; esac
			case " $rw " in *" $mp "*) continue ;; esac
			mount -o remount,bind,ro "$mp" 2>/dev/null || true
		done < <(awk "{ print \$5 }" /proc/self/mountinfo | sort -u)
		# PrivateTmp=yes
		mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
		mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp
		# ProtectHome=yes
		for d in /home /root /run/user; do
			[ -d "$d" ] && mount -t tmpfs -o ro,mode=000 tmpfs "$d"
		done
		umask "$umask_value"
		exec setpriv --no-new-privs --bounding-set="$bounding" --inh-caps=-all \
			--regid="$group" --clear-groups -- "$@"
	' sandbox "${rw[*]}" "$umask_value" "$sandbox_group" "$bounding" \
		"$PY" "$HERE/seccomp-exec.py" "${seccomp_args[@]}" -- "$@"
}

# ---- the sandbox holds -------------------------------------------------------
probe=/usr/.virtcert-sandbox-probe.$$
if sandbox sh -c "touch $probe" 2>/dev/null; then
	not_ok "the sandbox could write $probe (ProtectSystem=strict)"; rm -f "$probe"
else
	ok "the sandbox cannot write /usr (ProtectSystem=strict)"
fi
sandbox sh -c "touch '$T/state/probe' && touch '$T/run/probe'" &&
	ok "the sandbox writes its ReadWritePaths" || not_ok "the sandbox cannot write its ReadWritePaths"
[[ -z "$(sandbox ls -A /root 2>/dev/null)" && -n "$(ls -A /root)" ]] &&
	ok "the sandbox sees an empty /root (ProtectHome)" || not_ok "the sandbox sees /root"
capeff=$(sandbox sed -n 's/^CapEff:\t//p' /proc/self/status)
capbnd=$(sandbox sed -n 's/^CapBnd:\t//p' /proc/self/status)
[[ "$capeff" == 0000000000000000 && "$capbnd" == 0000000000000000 ]] &&
	ok "no capabilities in the sandbox (CapEff $capeff, CapBnd $capbnd)" ||
	not_ok "capabilities in the sandbox: CapEff $capeff CapBnd $capbnd"
[[ $(sandbox sed -n 's/^NoNewPrivs:\t//p' /proc/self/status) == 1 ]] &&
	ok "NoNewPrivs is set" || not_ok "NoNewPrivs is not set"
ptrace_probe='import ctypes; libc = ctypes.CDLL(None, use_errno=True); r = libc.ptrace(0, 0, 0, 0); print(r, ctypes.get_errno())'
outside=$("$PY" -c "$ptrace_probe")
inside=$(sandbox "$PY" -c "$ptrace_probe")
[[ "$outside" == "0 0" && "$inside" == "-1 1" ]] &&
	ok "ptrace, outside @system-service, fails EPERM in the sandbox only (outside: $outside, inside: $inside)" ||
	not_ok "the system call filter: ptrace outside '$outside', inside '$inside'"
nl_probe='import socket
try:
    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW); print("allowed")
except OSError as e: print(e.errno)'
[[ $(sandbox "$PY" -c "$nl_probe") == 97 ]] &&
	ok "an AF_NETLINK socket fails EAFNOSUPPORT (RestrictAddressFamilies)" ||
	not_ok "an AF_NETLINK socket is not refused"

# ---- the daemon works there ------------------------------------------------
start_libvirtd
keep_test_driver
# root without CAP_DAC_OVERRIDE reaches only sockets it may write: the
# private libvirtd's are vctest's (the system libvirtd's are root's own)
chmod 0711 "$LVDIR" "$LVDIR/run" "$LVDIR/run/libvirt"
chmod 0666 "$LVSOCK"
PORT=$(free_port)
vc_write_config --control-socket "$T/run/control.sock" "libvirt-uri=$TEST_URI" \
	"control-group=$sandbox_group" "http-address=127.0.0.1:$PORT" "${VC_CONF_CA_URLS[@]}"
cat >"$T/policy.d/50-vms.conf" <<'EOP'
[vms]
match-name=vm-*
names={name}.vms.example.com
EOP
# the administrator's setup, as root outside the sandbox
check "ca init" vc ca init --permit vms.example.com

# Type=notify: the daemon says READY=1 on $NOTIFY_SOCKET
"$PY" - "$T/run/notify" "$T/notify.log" <<'EOP' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        log.write(s.recv(4096).decode() + "\n")
EOP
NOTIFY_PID=$!
cleanup_hooks+=("kill $NOTIFY_PID")
wait_for 5 test -S "$T/run/notify" || not_ok "no notify socket"
chmod 0777 "$T/run/notify"

NOTIFY_SOCKET=$T/run/notify SANDBOX_EXEC=1 sandbox "$VIRTCERTD" --config "$CONF" >>"$T/virtcertd.log" 2>&1 &
DAEMON_PID=$!
cleanup_hooks+=("kill -TERM $DAEMON_PID 2>/dev/null; wait $DAEMON_PID 2>/dev/null")
wait_for 15 grep -qx READY=1 "$T/notify.log" &&
	ok "the sandboxed daemon reports READY=1 (Type=notify)" ||
	{ not_ok "the sandboxed daemon never reported READY=1"; sed 's/^/    /' "$T/virtcertd.log"; }
check "virtcert status answers through the sandboxed daemon's socket" vc status
[[ $(stat -c %G "$T/run/control.sock") == "$sandbox_group" ]] &&
	ok "the control socket belongs to the unit's group without CAP_CHOWN" ||
	not_ok "the control socket's group is $(stat -c %G "$T/run/control.sock")"

lv define <(test_domain vm-1) >/dev/null
lv start vm-1 >/dev/null
if wait_for 15 has_cert vm-1; then
	ok "the sandboxed daemon issued vm-1's certificate"
	vc show "$(cert_of vm-1)" --json | jq -e '.dns_names == ["vm-1.vms.example.com"]' >/dev/null &&
		ok "with the policy's name" || not_ok "vm-1's certificate has the wrong names"
else
	not_ok "the sandboxed daemon issued no certificate for vm-1"
	sed 's/^/    /' "$T/virtcertd.log"
fi
# into a file first: grep -q stops reading at its first match, and curl's
# write error on the closed pipe would fail the check under pipefail
curl -sf "http://127.0.0.1:$PORT/metrics" >"$T/metrics.txt" || true
grep -q '^virtcert_certificates_issued_total' "$T/metrics.txt" &&
	ok "the sandboxed daemon serves HTTP (AF_INET)" || not_ok "no HTTP from the sandboxed daemon"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" && ok "the sandboxed daemon stops cleanly on SIGTERM" ||
	{ not_ok "the sandboxed daemon exited $? on SIGTERM"; sed 's/^/    /' "$T/virtcertd.log"; }
grep -q "Operation not permitted\|Bad system call" "$T/virtcertd.log" &&
	{ not_ok "the daemon's log names a refused call"; grep "Operation not permitted" "$T/virtcertd.log" | sed 's/^/    /'; }
finish
