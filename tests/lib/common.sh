# Shared helpers for integration tests (sourced). Each test gets its own
# temporary state directory and config, removed on exit.
set -euo pipefail

: "${VIRTCERT:?VIRTCERT must point at the built virtcert}"
: "${VC_SOURCE_ROOT:?}"

T=$(mktemp -d "${TMPDIR:-/tmp}/vc-test-XXXXXX")
cleanup_hooks=()
vc_cleanup() {
	local h
	for h in "${cleanup_hooks[@]}"; do eval "$h" || true; done
	rm -rf "$T"
}
trap vc_cleanup EXIT

STATE="$T/state"
CONF="$T/virtcert.conf"
mkdir -p "$STATE" "$T/policy.d"
cat >"$CONF" <<EOC
[daemon]
state-dir=$STATE
policy-dir=$T/policy.d
[ca]
crl-url=http://127.0.0.1:8458/crl/{ca}.crl
ocsp-url=http://127.0.0.1:8458/ocsp
EOC

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
