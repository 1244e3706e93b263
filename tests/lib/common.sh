# Shared helpers for integration tests (sourced). Each test gets its own
# temporary state directory and config, removed on exit.
set -euo pipefail

: "${VIRTCERT:?VIRTCERT must point at the built virtcert}"
: "${VC_SOURCE_ROOT:?}"

T=$(mktemp -d "${TMPDIR:-/tmp}/vc-test-XXXXXX")

# `CMD | contains [GREP_OPTIONS] PATTERN`: grep -q on CMD's whole output.
# grep -q ends at its first match, and a writer still writing then dies of
# SIGPIPE, which pipefail turns into a failed check now and then.
contains() {
	local text
	text=$(cat)
	grep -q "$@" <<<"$text"
}
chmod 0711 "$T" # a private libvirtd runs as another user below it
cleanup_hooks=()
vc_cleanup() {
	local h
	for h in "${cleanup_hooks[@]}"; do eval "$h" 2>/dev/null || true; done
	rm -rf "$T"
}
trap vc_cleanup EXIT
[[ -n "${VC_KEEP_TMP:-}" ]] && trap - EXIT

# vc_write_config [--file FILE] [--dir DIR] [--control-socket PATH] [LINE...]:
# (re)writes FILE (default $CONF), the configuration of a virtcertd whose
# state is in DIR/state, policies in DIR/policy.d (DIR default $T) and
# control socket at PATH (default DIR/control.sock), with no HTTP listener.
# The LINEs follow in order: key=value lines belong to [daemon] until the
# first "[section]" line; "${VC_CONF_CA_URLS[@]}" adds the tests' public URL
# (CRL, OCSP and CA issuers URLs in every leaf; a loopback URL, written
# explicitly: there is no default). Example:
#   vc_write_config "libvirt-uri=$TEST_URI" reconcile-interval=2 "${VC_CONF_CA_URLS[@]}"
VC_CONF_CA_URLS=("[ca]" "public-url=http://127.0.0.1:8458")
vc_write_config() {
	local file=$CONF dir=$T sock=
	while (($# > 0)); do
		case "$1" in
		--file) file=$2; shift 2 ;;
		--dir) dir=$2; shift 2 ;;
		--control-socket) sock=$2; shift 2 ;;
		*) break ;;
		esac
	done
	{
		echo "[daemon]"
		echo "state-dir=$dir/state"
		echo "policy-dir=$dir/policy.d"
		echo "control-socket=${sock:-$dir/control.sock}"
		echo "http-address="
		(($# == 0)) || printf '%s\n' "$@"
		# a daemon VC_WAIT_SCALE times slower (scripts/valgrind) takes as much
		# longer over a TLS handshake or a request: the deadlines scale too
		if ((${VC_WAIT_SCALE:-1} > 1)); then
			echo "[http]"
			echo "header-timeout=$((10 * VC_WAIT_SCALE))s"
			echo "request-timeout=$((30 * VC_WAIT_SCALE))s"
			echo "[hook]"
			echo "timeout=$((2000 * VC_WAIT_SCALE))"
		fi
	} >"$file"
}

STATE="$T/state"
CONF="$T/virtcert.conf"
mkdir -p "$STATE" "$T/policy.d"
vc_write_config "${VC_CONF_CA_URLS[@]}"

vc() { "$VIRTCERT" --config "$CONF" "$@"; }

fails=0
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; fails=$((fails + 1)); }
check() { # check DESCRIPTION CMD...
	local d=$1
	shift
	if "$@" >"$T/check.out" 2>&1; then ok "$d"; else not_ok "$d"; sed 's/^/    /' "$T/check.out"; fi
}
check_fails() { # check_fails DESCRIPTION CMD... (the command must fail)
	local d=$1
	shift
	if "$@" >"$T/check.out" 2>&1; then not_ok "$d (unexpectedly succeeded)"; sed 's/^/    /' "$T/check.out"; else ok "$d"; fi
}
expect_status() { # expect_status N DESCRIPTION CMD...
	local want=$1 d=$2 got=0
	shift 2
	"$@" >"$T/check.out" 2>&1 || got=$?
	if [[ $got -eq $want ]]; then ok "$d (exit $got)"; else not_ok "$d: exit $got, wanted $want"; sed 's/^/    /' "$T/check.out"; fi
}
finish() {
	if ((fails > 0)); then echo "$fails check(s) failed"; exit 1; fi
	echo "all checks passed"
}

# free_port: a TCP port nothing listens on now, for a test's HTTP listener
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds; the limit
# is multiplied by VC_WAIT_SCALE (default 1: scripts/valgrind runs the daemon
# some 20 times slower and sets it).
wait_for() {
	local limit=$(($1 * ${VC_WAIT_SCALE:-1})) i
	shift
	for ((i = 0; i < limit * 10; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# A private libvirtd (as the unprivileged user vctest) serving the shared
# test driver; a `virsh event --loop` client keeps its state alive.
start_libvirtd() {
	LVDIR="$T/libvirtd"
	LVSOCK=$(bash "$VC_SOURCE_ROOT/tests/lib/libvirtd-session.sh" start "$LVDIR")
	TEST_URI="test+unix:///default?socket=$LVSOCK"
	cleanup_hooks+=("bash '$VC_SOURCE_ROOT/tests/lib/libvirtd-session.sh' stop '$LVDIR'")
}
keep_test_driver() {
	virsh -q -c "$TEST_URI" event --loop --all >"$T/events.log" 2>&1 &
	KEEPER=$!
	cleanup_hooks+=("kill $KEEPER")
	sleep 0.3
}
lv() { virsh -q -c "$TEST_URI" "$@"; }

# A test-driver domain: test_domain NAME [METADATA_XML [UUID]]
test_domain() {
	cat <<EOD
<domain type='test'>
  <name>$1</name>
  ${3:+<uuid>$3</uuid>}
  ${2:+<metadata>$2</metadata>}
  <memory unit='KiB'>65536</memory>
  <os><type arch='x86_64'>hvm</type></os>
</domain>
EOD
}

VIRTCERTD=${VIRTCERTD:-$VC_BUILD_ROOT/agent/daemon/virtcertd}
# VC_DAEMON_WRAPPER: a command line that runs every virtcertd the helpers
# start (scripts/valgrind: valgrind --tool=memcheck ...); split on spaces.
read -ra VC_DAEMON_WRAP <<<"${VC_DAEMON_WRAPPER:-}"
start_daemon() {
	"${VC_DAEMON_WRAP[@]}" "$VIRTCERTD" --config "$CONF" >>"$T/virtcertd.log" 2>&1 &
	DAEMON_PID=$!
	cleanup_hooks+=("kill -TERM $DAEMON_PID 2>/dev/null; wait $DAEMON_PID 2>/dev/null")
	wait_for 10 vc status
}

# start_watch: `virtcert watch` into $T/watch.log (after start_libvirtd and
# start_daemon); returns once the watch is live, that is once the event of a
# probe domain, defined again until it does, has come through.
start_watch() {
	local i
	vc watch >"$T/watch.log" 2>"$T/watch.err" &
	WATCH_PID=$!
	cleanup_hooks+=("kill $WATCH_PID")
	# with a UUID, so that defining it again (when the first event came before
	# the watch was live) is an update, not a refusal
	test_domain vc-watch-probe "" 5c0ffee0-0000-4000-8000-00000000beef >"$T/watch-probe.xml"
	for ((i = 0; i < 20; i++)); do
		lv define "$T/watch-probe.xml" >/dev/null
		if wait_for 1 grep -q '"vm_name":"vc-watch-probe"' "$T/watch.log"; then
			lv undefine vc-watch-probe >/dev/null
			return 0
		fi
	done
	return 1
}
# watch_mark: how many lines the watch has written so far (for wait_handled)
watch_mark() { wc -l <"$T/watch.log"; }
# handled MARK VM WHAT: after line MARK the watch shows the daemon taking
# VM's libvirt event WHAT (how its detail starts: "defined", "started"...)
handled() {
	tail -n +"$(($1 + 1))" "$T/watch.log" |
		jq -e --arg vm "$2" --arg what "$3" \
			'select(.event == "libvirt" and .vm_name == $vm and (.detail | startswith($what)))' >/dev/null
}
# queue_empty: nothing waits in the daemon's issue and revoke queues
queue_empty() { vc status --json | jq -e '.queued == 0' >/dev/null; }
# wait_handled MARK VM WHAT: waits until the daemon has taken that event and
# carried out what it decided (its queues are empty). A test asserts that
# something did not happen only after this positive signal, never after a
# sleep, which a slow daemon would pass too.
wait_handled() { wait_for 10 handled "$@" && wait_for 10 queue_empty; }

# cert_of VM: the serial of the VM's valid certificate (empty if none)
cert_of() {
	vc list --json | jq -r --arg vm "$1" '[.[] | select(.vm_name == $vm and .status == "valid")] | .[0].serial // empty'
}
has_cert() { [[ -n "$(cert_of "$1")" ]]; }
status_of() { vc show "$1" --json | jq -r .status; }
