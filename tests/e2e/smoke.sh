#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Proves the e2e harness: the tiny guest builds, a private libvirtd boots it
# under TCG, its real qemu-guest-agent answers, guest-exec and the file calls
# work, a reboot loses the guest's files, and a hostile agent (the garbage
# guest) does not answer properly while a normal guest next to it still does.
source "$VC_SOURCE_ROOT/tests/e2e/lib.sh"
e2e_require
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

t0=$(date +%s.%N)
check "the normal and garbage guests build" e2e_build_guest normal garbage
t1=$(date +%s.%N)
check "a second build is a cache hit" e2e_build_guest normal garbage
t2=$(date +%s.%N)
e2e_log "guest build: $(elapsed "$t0" "$t1") s, cached: $(elapsed "$t1" "$t2") s"
for f in "$E2E_KERNEL" "$(e2e_initrd normal)" "$(e2e_initrd garbage)"; do
	check "$(basename "$f") is readable by $E2E_USER" setpriv --reuid="$E2E_USER" --regid="$E2E_USER" --init-groups test -r "$f"
done

check "a private libvirtd starts" e2e_start_host a
check "the VM is defined" e2e_define_vm smoke-1
b0=$(date +%s.%N)
check "the VM starts" qv start smoke-1
if wait_guest_ping smoke-1; then
	b1=$(date +%s.%N)
	ok "guest-ping answers"
	e2e_log "boot to guest-ping: $(elapsed "$b0" "$b1") s"
else
	not_ok "guest-ping answers"
	finish
fi

kver=$(guest_exec smoke-1 /bin/uname -r 2>/dev/null || true)
[[ $kver == "$(cat "$E2E_GUEST_DIR/kernel/release")" ]] &&
	ok "guest-exec uname -r: $kver" || not_ok "guest-exec uname -r gave '$kver'"
sslver=$(guest_exec smoke-1 /usr/bin/openssl version 2>/dev/null || true)
[[ $sslver == OpenSSL\ 3* ]] && ok "guest-exec openssl version: $sslver" || not_ok "guest-exec openssl version gave '$sslver'"

status=0
out=$(guest_sh smoke-1 'echo out; echo err >&2; exit 3' 2>"$T/err") || status=$?
[[ $out == out && $(cat "$T/err") == err && $status == 3 ]] &&
	ok "guest_exec passes stdout, stderr and the exit status" || not_ok "guest_exec: out='$out' err='$(cat "$T/err")' status=$status"
out=$(GUEST_STDIN=$'line one\nline two\n' guest_exec smoke-1 /usr/bin/wc -l || true)
[[ ${out// /} == 2 ]] && ok "guest_exec feeds stdin" || not_ok "guest_exec stdin: wc -l gave '$out'"

# a CSR made in the guest (guest keygen)
csr=$(guest_exec smoke-1 /usr/bin/openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
	-nodes -keyout /run/k.pem -subj /CN=smoke 2>/dev/null || true)
grep -q 'BEGIN CERTIFICATE REQUEST' <<<"$csr" && openssl req -noout -verify <<<"$csr" >/dev/null 2>&1 &&
	ok "the guest makes a key and a valid CSR" || not_ok "guest keygen"

# users and groups the delivery tests rely on
check "user web and group ssl-cert exist in the guest" guest_sh smoke-1 \
	'touch /run/o && chown web:ssl-cert /run/o && [ "$(stat -c %u:%g /run/o)" = 1000:110 ]'

# files through guest-file-open/write/close, read back both ways
head -c 3000 /dev/urandom | base64 >"$T/payload"
check "guest_file_write writes a file" guest_file_write smoke-1 /run/payload <"$T/payload"
guest_file_read smoke-1 /run/payload >"$T/back" 2>/dev/null || true
cmp -s "$T/payload" "$T/back" && ok "guest_file_read reads it back" || not_ok "guest_file_read differs"
sum=$(guest_exec smoke-1 /usr/bin/sha256sum /run/payload 2>/dev/null | cut -d' ' -f1 || true)
[[ $sum == "$(sha256sum <"$T/payload" | cut -d' ' -f1)" ]] && ok "the guest's sha256sum matches" || not_ok "guest sha256sum '$sum'"

# the hostile guest boots while the normal one reboots (2 cores, one each)
check "the garbage VM is defined and starts" e2e_define_vm smoke-garbage --variant garbage --start

# reboot: the tmpfs root forgets the file
r0=$SECONDS
check "the VM reboots and its agent answers again" vm_reboot smoke-1
e2e_log "reset to guest-ping: $((SECONDS - r0)) s"
check_fails "the file is gone after the reboot" guest_exec smoke-1 /bin/cat /run/payload

# a hostile agent next to a normal one
wait_for 90 grep -q 'starting the garbage agent' "$(vm_console smoke-garbage)" &&
	ok "the garbage guest boots" || not_ok "the garbage guest boots"
sleep 1
bad=0
for _ in 1 2 3; do
	g0=$SECONDS
	rep=$(timeout 20 virsh -q -c "$URI" qemu-agent-command --timeout 5 smoke-garbage '{"execute":"guest-ping"}' 2>"$T/gerr") &&
		{ echo "reply: $rep"; bad=1; }
	((SECONDS - g0 <= 12)) || { echo "guest-ping took $((SECONDS - g0)) s"; bad=1; }
	echo "    after $((SECONDS - g0)) s: $(head -c 120 "$T/gerr")"
done
((bad == 0)) && ok "the garbage agent's guest-ping fails within a few seconds" || not_ok "the garbage agent answered or hung"
check "the normal VM still answers" guest_ping smoke-1 5
check "and still runs commands" guest_exec smoke-1 /bin/true
check "libvirtd survived the hostile agent" qv list

finish
