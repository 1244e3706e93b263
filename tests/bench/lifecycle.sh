#!/usr/bin/env bash
# virtcert-bench lifecycle against a private libvirtd serving the test driver.
#   tests/bench/lifecycle.sh [BUILD_DIR]   (default build/)
# Prints one JSON object per run: the storm of 1,000 domains, then the
# startup reconcile of 10,000.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
bench=${VIRTCERT_BENCH:-$build/agent/bench/virtcert-bench}
[[ -x $bench ]] || { echo "$bench: not built (meson setup -Dtest_seams=true)" >&2; exit 1; }
dir=$(mktemp -d /tmp/vc-bench-XXXXXX)
chmod 0711 "$dir"
trap 'bash "$root/tests/lib/libvirtd-session.sh" stop "$dir/lv"; rm -rf "$dir"' EXIT
sock=$(bash "$root/tests/lib/libvirtd-session.sh" start "$dir/lv")
uri="test+unix:///default?socket=$sock"
"$bench" lifecycle --uri "$uri" --domains "${VC_BENCH_STORM:-1000}" --json
bash "$root/tests/lib/libvirtd-session.sh" stop "$dir/lv"
sock=$(bash "$root/tests/lib/libvirtd-session.sh" start "$dir/lv")
"$bench" lifecycle --uri "$uri" --domains "${VC_BENCH_RECONCILE:-10000}" --reconcile --json
