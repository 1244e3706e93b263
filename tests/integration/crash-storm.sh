#!/usr/bin/env bash
# The short form of scripts/crash-storm: 300 operations, the daemon SIGKILLed
# 10 times at kill points and restarted; the store, the served CRL and OCSP
# must agree at the end (lost revocations, unknown valid certificates and
# inconsistent rows all 0). VC_CRASH_STORM_OPS / _KILLS / _SEED change it.
if [[ ${VC_TEST_SEAMS:-} != 1 ]]; then
	echo "SKIP: no kill points in this build (-Dtest_seams=false)"
	exit 77
fi
set -uo pipefail
seed=${VC_CRASH_STORM_SEED:-$RANDOM$RANDOM}
echo "# scripts/crash-storm --ops ${VC_CRASH_STORM_OPS:-300} --kills ${VC_CRASH_STORM_KILLS:-10} --seed $seed"
out=$(python3 "$VC_SOURCE_ROOT/scripts/crash-storm" --ops "${VC_CRASH_STORM_OPS:-300}" \
	--kills "${VC_CRASH_STORM_KILLS:-10}" --seed "$seed" --build "$VC_BUILD_ROOT")
rc=$?
echo "$out"
line=$(tail -1 <<<"$out")
if [[ $rc -eq 0 ]] && jq -e '.kills > 0 and .lost_revocations == 0 and
	.unknown_valid_certificates == 0 and .inconsistent_rows == 0' <<<"$line" >/dev/null; then
	echo "ok - crash storm (seed $seed): $line"
	exit 0
fi
echo "not ok - crash storm (seed $seed, exit $rc): $line"
exit 1
