#!/usr/bin/env bash
# Delivery into the tiny TCG guest (tests/e2e), this build beside a reference
# build, alternated in the same run so that both see the same machine:
#   tests/bench/deliver.sh [BUILD_DIR] [REFERENCE_BENCH]
# BUILD_DIR default build/ (built with -Dtest_seams=true); REFERENCE_BENCH a
# virtcert-bench of another commit (e.g. main built in a second directory,
# with this commit's agent/bench/vc-bench-deliver.c, which prints every duration);
# without it only this build runs. VC_BENCH_ROUNDS rounds (default 6) of
# VC_BENCH_COUNT deliveries each (default 20) per binary and way.
# Prints one JSON object per binary: the pooled p50/p99 of the guest-exec way
# and of the file-only way, guest-ping p50, and the load averages seen (the
# machine is shared: a loaded host distorts every figure). Root (a private
# libvirtd as $VC_LIBVIRTD_USER, as the e2e tests).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
ref=${2:-}
export VC_SOURCE_ROOT=$root VC_BUILD_ROOT=$build
export VIRTCERT=${VIRTCERT:-$build/agent/cli/virtcert}
bench=$build/agent/bench/virtcert-bench
rounds=${VC_BENCH_ROUNDS:-6}
count=${VC_BENCH_COUNT:-20}
source "$root/tests/e2e/lib.sh"
e2e_require
[[ -x $bench ]] || { echo "no $bench (-Dtest_seams=true)" >&2; exit 77; }
e2e_build_guest normal
e2e_start_host a --no-ns
e2e_define_vm bench --start >/dev/null
wait_guest_ping bench

names=(new)
bins=("$bench")
if [[ -n $ref ]]; then
	names+=(reference)
	bins+=("$ref")
fi
for ((r = 1; r <= rounds; r++)); do
	for i in "${!bins[@]}"; do
		"${bins[$i]}" --json deliver --uri "$URI" --vm bench --count "$count" >"$T/${names[$i]}.$r.json"
		echo "# round $r ${names[$i]}: $(jq -c '{deliver_p50_ms, deliver_file_only_p50_ms, ping_p50_ms, load_1min}' "$T/${names[$i]}.$r.json")" >&2
	done
done
for name in "${names[@]}"; do
	jq -s --arg name "$name" '
		def pct(p): sort | .[([(length * p | floor), length - 1] | min)];
		{binary: $name, deliveries: ([.[].deliver_ms[]] | length),
		 deliver_p50_ms: ([.[].deliver_ms[]] | pct(0.5)),
		 deliver_p99_ms: ([.[].deliver_ms[]] | pct(0.99)),
		 deliver_file_only_p50_ms: ([.[].deliver_file_only_ms[]] | pct(0.5)),
		 deliver_file_only_p99_ms: ([.[].deliver_file_only_ms[]] | pct(0.99)),
		 ping_p50_ms: ([.[].ping_p50_ms] | pct(0.5)),
		 load_1min: [.[].load_1min]}' "$T/$name".*.json
done
