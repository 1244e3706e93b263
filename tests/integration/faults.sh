#!/usr/bin/env bash
# Faults around the daemon (issue 18): libvirtd SIGKILLed and restarted in
# the middle of a storm; the state directory full (a small tmpfs) during
# issuance and during revocation; the state directory read-only. Each time:
# a clear error, retries, nothing half-written, no revocation lost, the
# control socket answers throughout, and once the fault is gone everything
# completes. (The peer host unreachable or answering garbage during a
# handover is in tests/unit/test-vc-engine.c, /engine/claim-faults: the
# test driver cannot migrate.)
source "$VC_SOURCE_ROOT/tests/lib/common.sh"
[[ $(id -u) -eq 0 ]] || { echo "SKIP: mounting a tmpfs needs root"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 not installed"; exit 77; }

# ---- the state directory on a small tmpfs ---------------------------------
# (8 MiB: the CA, the store, its WAL; the daemon checkpoints the WAL at 4,000
# pages, so a filler takes the rest of the space when a test wants it full)
mount -t tmpfs -o size=8m,mode=0700 vc-faults "$STATE"
cleanup_hooks+=("umount -l '$STATE'")
fill_disk() { dd if=/dev/zero of="$STATE/filler" bs=64k status=none 2>/dev/null || true; sync; }
free_disk() { rm -f "$STATE/filler"; }

# ---- (a) libvirtd SIGKILLed and restarted mid-storm -------------------------
# qemu:///session keeps its persistent domains on disk, so a restarted
# libvirtd has them again (the test driver would start empty); the domains
# are only defined, never started: policy issues on define.
start_libvirtd
URI="qemu+unix:///session?socket=$LVSOCK"
q() { virsh -q -c "$URI" "$@"; }
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
vc_write_config "libvirt-uri=$URI" reconcile-interval=3600 "http-address=127.0.0.1:$PORT" "[ca]" "public-url=$BASE"
printf '[f]\nmatch-name=f-*\nnames={name}.faults.example.com\nissue-on=define\n' >"$T/policy.d/f.conf"
check "ca init" vc ca init --permit faults.example.com
ID=$(vc ca show --json | jq -r .id)
# served_crl_lists SERIAL: the CRL the daemon serves lists SERIAL
served_crl_lists() {
	curl -sfS -o "$T/served.crl" "$BASE/crl/$ID.crl" &&
		openssl crl -inform DER -in "$T/served.crl" -noout -text | tr -d ': ' | contains -i "SerialNumber$1"
}
check "virtcertd starts" start_daemon
qemu_domain() {
	cat <<EOD
<domain type='qemu'>
  <name>$1</name>
  <memory unit='KiB'>65536</memory>
  <os><type arch='x86_64'>hvm</type></os>
</domain>
EOD
}
vc watch >"$T/watch.log" 2>/dev/null &
cleanup_hooks+=("kill $!")
mkdir -p "$T/doms"
for i in $(seq 1 40); do qemu_domain "f-$i" >"$T/doms/f-$i.xml"; done
# first half defined; each gets its certificate
for i in $(seq 1 20); do echo "define $T/doms/f-$i.xml"; done >"$T/a1.virsh"
q <"$T/a1.virsh" >/dev/null
all_issued() { # FROM TO
	local i
	vc list --json >"$T/list.json" || return 1
	for i in $(seq "$1" "$2"); do
		jq -e --arg vm "f-$i" '[.[] | select(.vm_name == $vm and .status == "valid")] | length == 1' "$T/list.json" >/dev/null || return 1
	done
}
wait_for 30 all_issued 1 20 && ok "f-1..f-20 defined, each with a certificate" || not_ok "f-1..f-20 not all issued"
kept=$(cert_of f-1)

# the storm: defines of f-21..f-40 and undefines of f-1..f-10, with libvirtd
# SIGKILLed after a few of them
: >"$T/a2.virsh"
for i in $(seq 21 40); do
	echo "define $T/doms/f-$i.xml" >>"$T/a2.virsh"
	((i <= 30)) && echo "undefine f-$((i - 20))" >>"$T/a2.virsh"
done
q <"$T/a2.virsh" >"$T/a2.out" 2>&1 &
storm=$!
sleep 0.3
check "libvirtd SIGKILLed mid-storm" bash "$VC_SOURCE_ROOT/tests/lib/libvirtd-session.sh" kill "$LVDIR"
wait "$storm" || true
grep -q '"vm_name":"f-20"' "$T/watch.log" && ok "the watch is live" || not_ok "the watch saw no f-20"
disconnected() { grep -q '"event":"libvirt-disconnected"' "$T/watch.log"; }
wait_for 30 disconnected && ok "the daemon saw libvirtd go" || not_ok "no libvirt-disconnected event"
# while libvirtd is down the daemon serves: status, list, and a manual revocation
check "control socket answers while libvirtd is down" vc status
s5=$(cert_of f-15)
check "a manual revocation while libvirtd is down" vc revoke "$s5" --reason keyCompromise
[[ $(status_of "$s5") == revoked ]] && ok "... it is durable at once" || not_ok "$s5 is $(status_of "$s5")"

# libvirtd back: the rest of the storm runs before and while the daemon reconnects
LVSOCK=$(bash "$VC_SOURCE_ROOT/tests/lib/libvirtd-session.sh" start "$LVDIR") && ok "libvirtd restarted" || not_ok "libvirtd does not restart"
# whatever the killed storm did not do, again (defines of existing domains
# and undefines of missing ones fail harmlessly)
q <"$T/a2.virsh" >"$T/a2b.out" 2>&1 || true
reconnected() { [[ $(grep -c '"event":"libvirt-connected"' "$T/watch.log") -ge 1 ]]; }
wait_for 60 reconnected && ok "the daemon reconnected" || not_ok "no libvirt-connected event after the restart"
# ground truth: what libvirt has now
settled_a() {
	local defined n
	queue_empty || return 1
	vc list --json >"$T/list.json" || return 1
	defined=$(q list --all --name | grep '^f-' | sort)
	for n in $defined; do
		jq -e --arg vm "$n" '[.[] | select(.vm_name == $vm and .status == "valid")] | length == 1' "$T/list.json" >/dev/null || return 1
	done
	# no valid certificate for a domain libvirt does not have
	jq -r '.[] | select(.status == "valid") | .vm_name' "$T/list.json" | sort -u >"$T/valid-names"
	[[ -z $(comm -23 "$T/valid-names" <(echo "$defined")) ]]
}
wait_for 60 settled_a && ok "after the reconnect: every defined VM has exactly one valid certificate, no undefined VM has one" ||
	{ not_ok "not settled after the reconnect"; q list --all --name | head -50; jq -c '.[] | [.vm_name, .status]' "$T/list.json" | head -80; }
n_defined=$(q list --all --name | grep -c '^f-')
((n_defined == 30)) && ok "libvirt has the 30 domains the storm leaves" || not_ok "libvirt has $n_defined f- domains"
[[ $(cert_of f-15) != "$s5" && -n $(cert_of f-15) ]] && ok "f-15, revoked by hand while libvirtd was down, has a new certificate" ||
	not_ok "f-15: $(cert_of f-15)"
[[ $(status_of "$kept") == revoked ]] && ok "f-1 (undefined in the storm) is revoked" || not_ok "f-1's $kept is $(status_of "$kept")"
p=$(jq '[.[] | select(.status == "pending")] | length' "$T/list.json")
[[ $p -eq 0 ]] && ok "nothing pending" || not_ok "$p certificates pending"
wait_for 30 served_crl_lists "$kept" && ok "the served CRL lists f-1's certificate" || not_ok "f-1's $kept not on the served CRL"

# ---- (c) the disk full during issuance and revocation -----------------------
# A running daemon; the state directory fills up. An issuance (define) and
# a revocation (undefine) while it is full: a clear error, retried, the
# control socket answers, nothing half-written; space back: both complete.
r1=$(cert_of f-20)
fill_disk
df -k "$STATE" | tail -1 | awk '{print "    state dir: " $4 " KiB free"}'
mark=$(wc -l <"$T/watch.log")
q define "$T/doms/f-1.xml" >/dev/null
q undefine f-20 >/dev/null
store_errors() { grep -Eq 'database or disk is full|No space left on device' "$T/virtcertd.log"; }
wait_for 30 store_errors && ok "disk full: the daemon says the store cannot be written ($(grep -Eo '(cannot commit revocations|issuance batch failed)[^:]*: [^;]*(full|device)' "$T/virtcertd.log" | head -1))" ||
	{ not_ok "disk full: no clear error in the log"; tail -20 "$T/virtcertd.log"; }
check "disk full: the control socket answers" vc status
vc status --json | jq -e '.store_error | test("full")' >/dev/null &&
	ok "disk full: status says so ($(vc status --json | jq -r .store_error))" || not_ok "disk full: status: $(vc status --json | jq -c .store_error)"
check "disk full: list answers" vc list
# nothing reported that is not durable: f-20's certificate is still valid,
# f-1 has none yet
[[ $(status_of "$r1") == valid ]] && ok "disk full: the revocation is not reported before it is durable" || not_ok "$r1 is $(status_of "$r1") while the disk is full"
[[ -z $(cert_of f-1) ]] && ok "disk full: no certificate handed out for f-1" || not_ok "f-1 has $(cert_of f-1) with the disk full"
free_disk
revoked_r1() { [[ $(status_of "$r1") == revoked ]]; }
wait_for 30 revoked_r1 && ok "space back: the revocation completes" || not_ok "space back: $r1 is $(status_of "$r1")"
wait_for 30 served_crl_lists "$r1" && ok "space back: the served CRL lists it" || not_ok "the served CRL lacks $r1"
wait_for 30 has_cert f-1 && ok "space back: f-1 gets its certificate" || not_ok "space back: f-1 has none"
wait_for 30 settled_a && ok "space back: every defined VM has exactly one valid certificate" || not_ok "not settled after the disk was full"
vc status --json | jq -e '.store_error == null' >/dev/null && ok "space back: status has no store error" || not_ok "space back: status: $(vc status --json | jq -c .store_error)"
grep -q 'the store accepts writes again' "$T/virtcertd.log" && ok "space back: the log says the store accepts writes again" || not_ok "no recovery message in the log"
# no half-written state: every row the store holds is what the daemon holds
# in memory (a restart would find what the daemon shows)...
rows_match() {
	local uuid state serial shown
	while IFS='|' read -r uuid state serial; do
		shown=$(vc show "$uuid" --json | jq -r '[.domain.state, (.domain.current_serial // "")] | join("|")')
		[[ $shown == "$state|$serial" ]] || { echo "$uuid: store $state|$serial, daemon $shown"; return 1; }
	done < <(sqlite3 "$STATE/virtcert.db" "SELECT uuid, state, coalesce(current_serial, '') FROM domains")
}
wait_for 10 rows_match && ok "space back: the store's rows are the daemon's" || { not_ok "space back: rows differ"; rows_match; }
# ... nothing left pending by a batch the store refused
# (before any restart, which would resolve it), the store whole
vc list --json >"$T/list.json"
p=$(jq '[.[] | select(.status == "pending")] | length' "$T/list.json")
[[ $p -eq 0 ]] && ok "space back: nothing left pending" || not_ok "space back: $p certificates pending"
check "the store passes integrity_check" bash -c "[[ \$(sqlite3 '$STATE/virtcert.db' 'PRAGMA integrity_check') == ok ]]"
kill -TERM "$DAEMON_PID" && wait "$DAEMON_PID" 2>/dev/null || true
check "virtcertd restarts on the store" start_daemon
wait_for 30 settled_a && ok "after the restart: settled" || not_ok "after the restart: not settled"
vc list --json >"$T/list.json"
p=$(jq '[.[] | select(.status == "pending")] | length' "$T/list.json")
[[ $p -eq 0 ]] && ok "nothing pending after the disk was full" || not_ok "$p certificates pending"
grep -o 'issued [0-9a-f]\{32\}' "$T/virtcertd.log" | awk '{print $2}' | sort -u >"$T/logged"
jq -r '.[] | select(.status == "valid" or .status == "revoked") | .serial' "$T/list.json" | sort -u >"$T/stored"
missing=$(comm -23 "$T/logged" "$T/stored")
[[ -z "$missing" ]] && ok "every logged issuance has a store row" || not_ok "issued but unknown: $missing"

# ---- (d) the state directory read-only --------------------------------------
# While the daemon runs: a read-only bind mount over the state directory.
# Files it has open (the store, its WAL) stay writable through their old
# mount; what it opens anew (the CRL number beside the CA, the CRL) is not:
# a revocation is durable and reported, the CRL that lists it waits for
# the directory and is published once it is writable again.
ro_on() { mount --bind "$STATE" "$STATE" && mount -o remount,bind,ro "$STATE"; }
r2=$(cert_of f-19)
check "the state directory made read-only under the running daemon" ro_on
q undefine f-19 >/dev/null
revoked_r2() { [[ $(status_of "$r2") == revoked ]]; }
wait_for 30 revoked_r2 && ok "read-only: f-19's revocation is durable (the store's files were open)" || not_ok "read-only: $r2 is $(status_of "$r2")"
crl_errors() { grep -q 'cannot rebuild the CRL.*Read-only file system' "$T/virtcertd.log"; }
wait_for 30 crl_errors && ok "read-only: the CRL cannot be saved, and the log says why" ||
	{ not_ok "read-only: no CRL error in the log"; tail -5 "$T/virtcertd.log"; }
check "read-only: the control socket answers" vc status
umount "$STATE"
wait_for 30 served_crl_lists "$r2" && ok "writable again: the served CRL lists f-19's certificate" || not_ok "the served CRL lacks $r2"
wait_for 30 settled_a && ok "writable again: settled" || not_ok "writable again: not settled"

# Started on a read-only state directory: virtcertd refuses, saying what is
# wrong (not that the store is damaged: it is not)
kill -TERM "$DAEMON_PID" && wait "$DAEMON_PID" 2>/dev/null || true
check "the state directory read-only again" ro_on
rc=0
timeout 20 "$VIRTCERTD" --config "$CONF" >"$T/ro.out" 2>&1 || rc=$?
((rc != 0 && rc != 124)) && grep -q 'on a read-only file system' "$T/ro.out" && ! grep -q 'restore the store' "$T/ro.out" &&
	ok "a read-only state directory: virtcertd refuses to start ($(head -c 200 "$T/ro.out"))" ||
	{ not_ok "read-only state directory: exit $rc"; cat "$T/ro.out"; }
expect_status 3 "read-only: an offline command says the same" vc list
grep -q 'on a read-only file system' "$T/check.out" && ok "... naming the read-only file system" || { not_ok "offline: $(cat "$T/check.out")"; }
umount "$STATE"
check "writable again: virtcertd starts" start_daemon
wait_for 30 settled_a && ok "writable again: settled" || not_ok "writable again: not settled"
finish
