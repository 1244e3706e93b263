#!/usr/bin/env bash
# Record before sign: a process killed between recording a serial and signing
# (or between signing and storing the DER) leaves a row that the next start
# resolves; no valid certificate exists that the store does not know.
if [[ ${VC_TEST_SEAMS:-} != 1 ]]; then
	echo "SKIP: no crash points in this build (-Dtest_seams=false)"
	exit 77
fi
source "$VC_SOURCE_ROOT/tests/lib/common.sh"

check "ca init" vc ca init --permit vms.example.com
for point in issue-after-record issue-after-sign; do
	rc=0
	VC_TEST_CRASH_AT=$point "$VIRTCERT" --config "$CONF" issue --vm crash-$point \
		--dns crash-$point.vms.example.com --cert-out "$T/$point.pem" >/dev/null 2>&1 || rc=$?
	[[ $rc -eq 137 ]] && ok "killed at $point (SIGKILL)" || not_ok "killed at $point: exit $rc"
	[[ ! -e "$T/$point.pem" ]] && ok "no certificate handed out at $point" || not_ok "a certificate escaped at $point"
	# the raw row before recovery: PENDING, no DER
	row=$(sqlite3 "$STATE/virtcert.db" "SELECT status, der IS NULL FROM certificates WHERE vm_name='crash-$point'")
	[[ -n "$row" ]] && ok "serial recorded before signing at $point ($row)" || not_ok "no row recorded at $point"
	vc list --json >"$T/list.json"
	jq -e --arg vm crash-$point '[.[] | select(.vm_name == $vm)] | length == 1 and .[0].status == "abandoned"' "$T/list.json" >/dev/null &&
		ok "next start resolves the row to abandoned" || { not_ok "row resolved at $point"; cat "$T/list.json"; }
	s=$(jq -r --arg vm crash-$point '.[] | select(.vm_name == $vm) | .serial' "$T/list.json")
	vc crl --pem | openssl crl -noout -text | contains -i "Serial Number: ${s^^}" &&
		ok "abandoned serial is on the CRL" || not_ok "abandoned serial is on the CRL"
done
check "the same VM can be issued again afterwards" vc issue --vm crash-issue-after-sign --dns crash-issue-after-sign.vms.example.com
finish
