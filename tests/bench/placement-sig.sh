#!/usr/bin/env bash
# The hook's decision time for a signed placement, beside the same decision
# for an unsigned one: virtcert-hook run as libvirt runs it ("migrate
# begin", the domain XML on stdin), against a real virtcertd, RUNS times
# each (default 1,000); the time is the whole process, from fork to exit.
#   tests/bench/placement-sig.sh [BUILD_DIR]   (default build/)
# Prints one JSON object: p50/p99/max in ms for "signed" (require-signed=yes,
# a valid owner signature checked by the daemon) and "unsigned" (the same
# placement, no signature, a host that does not require one), and
# "hook_alone" (a VM without policy: the hook's own process, no daemon); then
# virtcert-bench placement-sig's in-process figures. Target: signed p99 <=
# 50 ms. Beside the wall times, the CPU each decision cost (hook_cpu_ms: the
# hook process; daemon_cpu_ms: virtcertd's share), which a loaded machine
# does not inflate the way it does the wall times.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
export VC_SOURCE_ROOT=$root VC_BUILD_ROOT=$build
export VIRTCERT=${VIRTCERT:-$build/agent/cli/virtcert}
HOOK=${VIRTCERT_HOOK:-$build/hooks/virtcert-hook}
RUNS=${VC_BENCH_RUNS:-1000}
source "$root/tests/lib/common.sh"

vc host-ca init --dir "$T/owner-ca" --cn "owner CA" >/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/alice.key" \
	-out "$T/alice.csr" -subj "/CN=alice" -addext "subjectAltName=DNS:alice.owners.example.com" 2>/dev/null
vc host-ca sign "$T/alice.csr" --dir "$T/owner-ca" --out "$T/alice.pem" >/dev/null
vc host-ca crl --dir "$T/owner-ca" --out "$T/owner.crl" >/dev/null
vc host-ca init --dir "$T/hostca" >/dev/null
vc host enroll --ca "$T/hostca/ca.pem" --attr site=eu-west --fqdn dest.example.com >/dev/null
vc host-ca sign "$STATE/host/host.csr" --dir "$T/hostca" --out "$T/host.pem" >/dev/null
vc host import "$T/host.pem" >/dev/null
vc ca init --permit vms.example.com >/dev/null
CA_FP=$(openssl x509 -in "$T/hostca/ca.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d :)
U=$(cat /proc/sys/kernel/random/uuid)
RULES="<vc:trust-ca>$CA_FP</vc:trust-ca><vc:require attr='site'>eu-west|eu-central</vc:require>"
echo "<vc:placement xmlns:vc='urn:virtcert:domain:1'>$RULES</vc:placement>" >"$T/placement.xml"
signed=$(vc placement sign --key "$T/alice.key" --cert "$T/alice.pem" --vm "$U" "$T/placement.xml" |
	sed 's/ xmlns:virtcert="urn:virtcert:domain:1"//; s/virtcert:/vc:/g')
meta() { echo "<vc:vm xmlns:vc='urn:virtcert:domain:1'><vc:name>{name}.vms.example.com</vc:name>$1</vc:vm>"; }
test_domain web-1 "$(meta "$signed")" "$U" >"$T/signed.xml"
test_domain web-1 "$(meta "<vc:placement>$RULES</vc:placement>")" "$U" >"$T/unsigned.xml"
test_domain web-1 "" "$U" >"$T/plain.xml"

# children_cpu_ms: user+sys CPU of this shell's finished children so far (ms)
children_cpu_ms() {
	times >"$T/cpu.txt" # the builtin, in this shell (in a pipe it would count a subshell's)
	tail -1 "$T/cpu.txt" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%d", t * 1000 }'
}
# proc_cpu_ms PID: user+sys CPU of a running process (ms)
proc_cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($14 + $15) * 1000 / hz }' "/proc/$1/stat"; }

# run_hook XML: RUNS runs; prints "p50 p99 max cpu" in ms (cpu: the hook
# process's own user+sys per run, the env(1) that starts it included)
run_hook() {
	local i t0 t1 c0 c1
	: >"$T/times"
	children_cpu_ms >"$T/c0"
	c0=$(cat "$T/c0")
	for ((i = 0; i < RUNS; i++)); do
		t0=$EPOCHREALTIME
		env -i LC_ALL=C PATH=/usr/bin:/bin VIRTCERT_HOOK_CONFIG="$CONF" \
			"$HOOK" web-1 migrate begin - <"$1" >/dev/null 2>"$T/hook.err" ||
			{ echo "the hook refused: $(cat "$T/hook.err")" >&2; exit 1; }
		t1=$EPOCHREALTIME
		echo "$(((${t1/./} - ${t0/./})))" >>"$T/times"
	done
	children_cpu_ms >"$T/c1"
	c1=$(cat "$T/c1")
	sort -n "$T/times" | awk -v cpu="$((c1 - c0))" -v n="$RUNS" '{a[NR]=$1} END {
		printf "%.2f %.2f %.2f %.2f\n", a[int(NR*0.50+0.5)]/1000, a[int(NR*0.99+0.5)]/1000, a[NR]/1000, cpu/n}'
}

bench() { # bench NAME XML [PLACEMENT LINES]: a daemon with those settings, then the runs
	local name=$1 xml=$2
	shift 2
	vc_write_config libvirt-uri=test:///default "${VC_CONF_CA_URLS[@]}" "[hook]" timeout=2000 "$@"
	start_daemon >/dev/null
	d0=$(proc_cpu_ms "$DAEMON_PID")
	read -r p50 p99 max cpu < <(run_hook "$xml")
	d1=$(proc_cpu_ms "$DAEMON_PID")
	kill "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true
	printf '"%s":{"runs":%d,"p50_ms":%s,"p99_ms":%s,"max_ms":%s,"hook_cpu_ms":%s,"daemon_cpu_ms":%s}' \
		"$name" "$RUNS" "$p50" "$p99" "$max" "$cpu" "$(awk -v d=$((d1 - d0)) -v n="$RUNS" 'BEGIN { printf "%.2f", d / n }')"
}
s=$(bench signed "$T/signed.xml" "[placement]" "owner-ca=$T/owner-ca/ca.pem" \
	"owner-crl=$T/owner.crl" require-signed=yes)
u=$(bench unsigned "$T/unsigned.xml")
# the reference: the same process for a VM without policy, which the hook
# answers alone (configuration, XML, policy.d; no daemon)
read -r p50 p99 max cpu < <(run_hook "$T/plain.xml")
r=$(printf '"hook_alone":{"runs":%d,"p50_ms":%s,"p99_ms":%s,"max_ms":%s,"hook_cpu_ms":%s}' "$RUNS" "$p50" "$p99" "$max" "$cpu")
load=$(cut -d' ' -f1 /proc/loadavg)
echo "{\"bench\":\"hook-placement-signature\",$s,$u,$r,\"loadavg_1m\":$load,\"target_p99_ms\":50}"
# and in the daemon alone: the signature check beside parsing the XML
bench_exe=${VIRTCERT_BENCH:-$build/agent/bench/virtcert-bench}
if [[ -x $bench_exe ]]; then
	"$bench_exe" --json placement-sig --xml "$T/signed.xml" --owner-ca "$T/owner-ca/ca.pem" \
		--count "$RUNS" | tr -d '\n '
	echo
fi
