#!/usr/bin/env bash
# A storm of define/start/destroy/undefine against virtcertd, with the daemon
# SIGKILLed in the middle and restarted: every VM ends in the right state and
# no certificate is valid without a live VM and a row in the store.
source "$VC_SOURCE_ROOT/tests/lib/common.sh"
N=${VC_STORM_DOMAINS:-300}

start_libvirtd
keep_test_driver
vc_write_config "libvirt-uri=$TEST_URI" reconcile-interval=60
printf '[storm]\nmatch-name=s-*\nnames={name}.storm.example.com\n' >"$T/policy.d/storm.conf"
check "ca init" vc ca init --permit storm.example.com
check "virtcertd starts" start_daemon

# the storm, in one virsh session: define+start all; every third VM is
# destroyed and undefined again, every fifth is only stopped
mkdir -p "$T/doms"
script="$T/storm.virsh"
: >"$script"
for i in $(seq 1 "$N"); do
	test_domain "s-$i" >"$T/doms/s-$i.xml"
	echo "define $T/doms/s-$i.xml; start s-$i" >>"$script"
	if ((i % 3 == 0)); then echo "destroy s-$i; undefine s-$i" >>"$script"; fi
	if ((i % 5 == 0 && i % 3 != 0)); then echo "destroy s-$i" >>"$script"; fi
done
virsh -q -c "$TEST_URI" <"$script" >"$T/storm.out" 2>&1 &
storm=$!
sleep 0.4
kill -9 "$DAEMON_PID" && ok "daemon SIGKILLed during the storm"
wait "$storm" && ok "storm of $N domains done" || not_ok "storm failed: $(tail -3 "$T/storm.out")"
check "virtcertd restarts after the storm" start_daemon

# quiescent: nothing queued and every running or kept VM has its certificate
settled() {
	[[ $(vc status --json | jq .queued) -eq 0 ]] || return 1
	vc list --json >"$T/list.json"
	for i in $(seq 1 "$N"); do
		((i % 3 == 0 || i % 5 == 0)) && continue
		jq -e --arg vm "s-$i" '[.[] | select(.vm_name == $vm and .status == "valid")] | length == 1' "$T/list.json" >/dev/null || return 1
	done
}
wait_for 60 settled && ok "every running VM has exactly one valid certificate" || not_ok "running VMs without a certificate"
vc list --json >"$T/list.json"
live=$(lv list --all --name | sort)
bad=$(jq -r '.[] | select(.status == "valid") | .vm_name' "$T/list.json" | sort | uniq -d)
[[ -z "$bad" ]] && ok "no VM has two valid certificates" || not_ok "VMs with two valid certificates: $bad"
gone=$(jq -r '.[] | select(.status == "valid") | .vm_name' "$T/list.json" | while read -r n; do grep -qx "$n" <<<"$live" || echo "$n"; done)
[[ -z "$gone" ]] && ok "no valid certificate for an undefined VM" || not_ok "valid certificates for undefined VMs: $gone"
p=$(jq '[.[] | select(.status == "pending")] | length' "$T/list.json")
[[ $p -eq 0 ]] && ok "no certificate left pending" || not_ok "$p certificates pending"
# every serial the daemon ever logged as issued is in the store
grep -o 'issued [0-9a-f]\{32\}' "$T/virtcertd.log" | awk '{print $2}' | sort -u >"$T/logged"
jq -r '.[].serial' "$T/list.json" | sort -u >"$T/stored"
missing=$(comm -23 "$T/logged" "$T/stored")
[[ -z "$missing" ]] && ok "every logged issuance has a store row ($(wc -l <"$T/logged") issued)" || not_ok "issued but unknown: $missing"
finish
