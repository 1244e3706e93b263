#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Proves the migration harness: two private libvirtds ("hosts" A and B, each
# with its own host UUID and its own /etc/libvirt/hooks and /etc/virtcert in a
# private mount namespace) live-migrate the tiny guest A -> B -> A, its agent
# answering on each side and its memory (a tmpfs file) kept; then a hook on B
# that exits 1 for `migrate begin` refuses the migration: virsh reports the
# hook's stderr and the VM keeps running on A.
source "$VC_SOURCE_ROOT/tests/e2e/lib.sh"
e2e_require
check "the guest builds" e2e_build_guest normal

# The same hook on both hosts; what it does depends on its host's own
# /etc/virtcert, which only the mount namespace tells apart (a hook gets no
# useful environment). It logs its arguments, keeps the XML of `migrate`,
# and refuses `migrate begin` while /etc/virtcert/deny-migrate exists.
for h in a b; do
	e2e_prepare_host $h
	cat >"${E2E_HOOKS[$h]}/qemu" <<'EOH'
#!/bin/sh
echo "$1 $2 $3 $4" >>/etc/virtcert/hook.log
if [ "$2" = migrate ]; then
	cat >/etc/virtcert/migrate.xml
	if [ "$3" = begin ] && [ -e /etc/virtcert/deny-migrate ]; then
		echo "virtcert-test: migration of $1 refused by $(cat /etc/virtcert/name)" >&2
		exit 1
	fi
fi
exit 0
EOH
	chmod 0755 "${E2E_HOOKS[$h]}/qemu"
	echo "host-$h" >"${E2E_ETC[$h]}/name"
	touch "${E2E_ETC[$h]}/hook.log" "${E2E_ETC[$h]}/migrate.xml"
	chown "$E2E_USER": "${E2E_ETC[$h]}/hook.log" "${E2E_ETC[$h]}/migrate.xml"
done
check "host A starts" e2e_start_host a
check "host B starts" e2e_start_host b
[[ $(on_host a qv capabilities | grep -o '<uuid>[^<]*' | cut -c7-) == "${E2E_HOST_UUID[a]}" &&
	$(on_host b qv capabilities | grep -o '<uuid>[^<]*' | cut -c7-) == "${E2E_HOST_UUID[b]}" ]] &&
	ok "each host has its own host UUID" || not_ok "host UUIDs"
[[ $(e2e_in_host b cat /etc/virtcert/name) == host-b && $(e2e_in_host a cat /etc/virtcert/name) == host-a ]] &&
	ok "each host sees its own /etc/virtcert" || not_ok "per-host /etc/virtcert"

meta='<vc:vm xmlns:vc="urn:virtcert:domain:1"><vc:name>{name}.example.com</vc:name></vc:vm>'
on_host a e2e_define_vm mig-1 --metadata "$meta" --start >/dev/null
on_host a wait_guest_ping mig-1 && ok "the VM runs on A" || { not_ok "the VM runs on A"; finish; }
echo "memory of the guest" | on_host a guest_file_write mig-1 /run/marker

# migrate_and_check FROM TO
migrate_and_check() {
	local from=$1 to=$2 t0=$SECONDS
	if e2e_migrate mig-1 "$from" "$to" >"$T/mig.out" 2>&1; then
		ok "live migration $from -> $to ($((SECONDS - t0)) s)"
	else
		not_ok "live migration $from -> $to"
		sed 's/^/    /' "$T/mig.out"
		return
	fi
	[[ $(on_host "$to" vm_state mig-1) == running ]] && ok "the VM runs on $to" || not_ok "the VM runs on $to"
	on_host "$to" guest_ping mig-1 5 && ok "its agent answers on $to" || not_ok "its agent answers on $to"
	[[ $(on_host "$to" guest_file_read mig-1 /run/marker 2>/dev/null) == "memory of the guest" ]] &&
		ok "the guest's memory moved (no reboot)" || not_ok "the guest's tmpfs file is lost"
	on_host "$from" qv dominfo mig-1 >/dev/null 2>&1 &&
		not_ok "the source still has a definition" || ok "the source's definition is gone (--undefinesource)"
	on_host "$to" qv dumpxml --inactive mig-1 | contains 'urn:virtcert:domain:1' &&
		ok "the persistent definition on $to keeps the metadata" || not_ok "metadata lost on $to"
}
migrate_and_check a b
grep -q '^mig-1 migrate begin -' "${E2E_ETC[b]}/hook.log" && ok "B's hook saw migrate begin" || not_ok "B's hook saw no migrate begin"
grep -q 'urn:virtcert:domain:1' "${E2E_ETC[b]}/migrate.xml" && ok "B's hook got the domain XML with its metadata" || not_ok "B's hook XML"
grep -q ' migrate ' "${E2E_ETC[a]}/hook.log" && not_ok "A's hook ran for B's migrate" || ok "A's hook did not run for B's migrate"
migrate_and_check b a
grep -q '^mig-1 migrate begin -' "${E2E_ETC[a]}/hook.log" && ok "A's own hook saw migrate begin" || not_ok "A's hook saw no migrate begin"

# B refuses: the hook's stderr reaches virsh, the VM stays on A
touch "${E2E_ETC[b]}/deny-migrate"
if e2e_migrate mig-1 a b >"$T/mig.out" 2>&1; then
	not_ok "a hook exiting 1 on migrate begin refuses the migration"
else
	ok "a hook exiting 1 on migrate begin refuses the migration"
fi
grep -q 'virtcert-test: migration of mig-1 refused by host-b' "$T/mig.out" &&
	ok "virsh's error carries the hook's stderr" || { not_ok "virsh's error carries the hook's stderr"; sed 's/^/    /' "$T/mig.out"; }
[[ $(on_host a vm_state mig-1) == running ]] && ok "the VM still runs on A" || not_ok "the VM still runs on A"
on_host a guest_ping mig-1 5 && ok "its agent still answers on A" || not_ok "its agent answers on A"
on_host b qv dominfo mig-1 >/dev/null 2>&1 && not_ok "B has a leftover VM" || ok "B has no leftover VM"
rm -f "${E2E_ETC[b]}/deny-migrate"

finish
