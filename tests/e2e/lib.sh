# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared helpers for the end-to-end tests (sourced): real QEMU guests under TCG
# with the real qemu-guest-agent inside, run by private session libvirtds
# ("hosts") as the unprivileged user vctest. Builds on tests/lib/common.sh
# (T, ok/not_ok/check/finish, wait_for, cleanup_hooks, vc, start_daemon...).
#
# Hosts:  e2e_start_host NAME [--no-ns]   a private libvirtd with its own
#             host_uuid, started in its own mount namespace where
#             /etc/libvirt/hooks and /etc/virtcert are bind mounts of
#             E2E_HOOKS[NAME] and E2E_ETC[NAME]; sets E2E_URI[NAME] and, for
#             the first host, URI (the "current" host of every helper below)
#         on_host NAME CMD...           runs CMD (a helper) against host NAME
#         e2e_in_host NAME CMD...       runs CMD inside NAME's mount namespace
#                                       (e.g. its virtcertd, which must read
#                                       the same /etc/virtcert as its hook)
# VMs:    e2e_define_vm NAME [--variant V] [--metadata XML] [--uuid U] [--start]
#         wait_guest_ping VM [SECONDS]  guest_agent VM JSON [TIMEOUT]
#         guest_exec VM PATH ARGS...    (stdout, stderr, exit status of the
#                                       guest command; stdin from $GUEST_STDIN)
#         guest_sh VM 'SCRIPT'          guest_file_write VM PATH <DATA
#         guest_file_read VM PATH       vm_reboot VM [--hard]
#         e2e_migrate VM FROM TO [virsh migrate options]
#
# common.sh sets -e: a helper expected to fail goes behind `||`, check_fails
# or an if. Helpers print diagnostics on stderr, results on stdout.
#
# The guest images are cached in $VC_E2E_GUEST_DIR (default
# /var/tmp/virtcert-e2e-guest: every directory above it must be traversable
# by vctest, which rules out /root and most build directories).

# common.sh insists on the CLI; the smoke tests do not use it.
: "${VC_SOURCE_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${VC_BUILD_ROOT:=$VC_SOURCE_ROOT/build}"
: "${VIRTCERT:=$VC_BUILD_ROOT/agent/cli/virtcert}"
# empty (meson sets it so) when built with -Dtest_seams=false: no benchmarks
: "${VIRTCERT_BENCH=$VC_BUILD_ROOT/agent/bench/virtcert-bench}"
export VC_SOURCE_ROOT VC_BUILD_ROOT VIRTCERT VIRTCERT_BENCH
# shellcheck source=../lib/common.sh
source "$VC_SOURCE_ROOT/tests/lib/common.sh"

E2E_LIB_DIR="$VC_SOURCE_ROOT/tests/e2e"
E2E_SESSION="$VC_SOURCE_ROOT/tests/lib/libvirtd-session.sh"
E2E_GUEST_DIR=${VC_E2E_GUEST_DIR:-/var/tmp/virtcert-e2e-guest}
E2E_USER=${VC_LIBVIRTD_USER:-vctest}
export VC_LIBVIRTD_USER=$E2E_USER

declare -gA E2E_URI=() E2E_SOCK=() E2E_HOST_DIR=() E2E_HOOKS=() E2E_ETC=() E2E_NS=() E2E_HOST_UUID=()
# E2E_LISTEN[NAME]=1 before e2e_start_host: its libvirtd starts with --listen
# (the TLS listener its libvirtd.conf describes), restarts included.
# E2E_ETC_HOSTS[NAME]=FILE: its namespace sees FILE as /etc/hosts (names for
# the other hosts' listeners: libvirt refuses a peer-to-peer migration to a
# URI whose host begins with "localhost")
declare -gA E2E_LISTEN=() E2E_ETC_HOSTS=()
URI=

e2e_log() { echo "# $*"; }

e2e_require() {
	local t
	for t in virsh libvirtd qemu-system-x86_64 jq base64 setpriv unshare nsenter; do
		command -v "$t" >/dev/null 2>&1 || [[ -x /usr/sbin/$t ]] ||
			{ echo "SKIP: $t missing (scripts/deps test)"; exit 77; }
	done
	[[ $(id -u) -eq 0 ]] || { echo "SKIP: the e2e tests run as root"; exit 77; }
}

# e2e_build_guest [VARIANT...]: builds (or finds cached) images; sets
# E2E_KERNEL and prints nothing. Default variant: normal.
e2e_build_guest() {
	local v
	(($# > 0)) || set -- normal
	for v in "$@"; do
		bash "$E2E_LIB_DIR/build-guest.sh" "$E2E_GUEST_DIR" --variant "$v" >&2 || return 1
	done
	E2E_KERNEL="$E2E_GUEST_DIR/vmlinuz"
}
e2e_initrd() { echo "$E2E_GUEST_DIR/initrd-${1:-normal}.img"; }

# --- hosts -----------------------------------------------------------------

# e2e_prepare_host NAME: the host's directories (idempotent); fill
# E2E_HOOKS[NAME] (its /etc/libvirt/hooks) before e2e_start_host, since
# libvirtd looks for hooks only when it starts.
e2e_prepare_host() {
	local name=$1 dir
	[[ -n ${E2E_HOST_DIR[$name]:-} ]] && return 0
	# Not under $T: libvirt puts the agent's socket at
	# $XDG_CONFIG_HOME/libvirt/qemu/channel/target/domain-N-NAME/org.qemu.guest_agent.0
	# and a UNIX socket path has at most 107 bytes.
	dir=$(mktemp -d /tmp/vcXXXXXX) || return 1
	# every QEMU of this host goes before its daemon, the daemon before its files
	cleanup_hooks+=("e2e_stop_host $name; rm -rf '$dir'")
	mkdir -p "$dir/hooks" "$dir/etc" "$dir/config/libvirt"
	chmod 0755 "$dir/hooks" "$dir/etc"
	E2E_HOST_DIR[$name]=$dir
	E2E_HOOKS[$name]="$dir/hooks"
	E2E_ETC[$name]="$dir/etc"
	# libvirt refuses to migrate between daemons with the same host UUID
	E2E_HOST_UUID[$name]=$(cat /proc/sys/kernel/random/uuid)
	echo "host_uuid = \"${E2E_HOST_UUID[$name]}\"" >"$dir/config/libvirt/libvirtd.conf"
}

# e2e_start_host NAME [--no-ns]
e2e_start_host() {
	local name=$1 ns=1
	[[ ${2:-} == --no-ns ]] && ns=0
	e2e_prepare_host "$name"
	local dir=${E2E_HOST_DIR[$name]} sock
	if ((ns)); then
		# the mount points must exist on the real system; they stay empty there
		mkdir -p /etc/libvirt/hooks /etc/virtcert
		sock=$(VC_LIBVIRTD_LISTEN=${E2E_LISTEN[$name]:-0} unshare -m --propagation private bash -c '
			mount --bind "$1" /etc/libvirt/hooks &&
			mount --bind "$2" /etc/virtcert &&
			{ [ -z "$5" ] || mount --bind "$5" /etc/hosts; } &&
			exec bash "$3" start "$4"' _ \
			"${E2E_HOOKS[$name]}" "${E2E_ETC[$name]}" "$E2E_SESSION" "$dir" "${E2E_ETC_HOSTS[$name]:-}") || return 1
	else
		sock=$(VC_LIBVIRTD_LISTEN=${E2E_LISTEN[$name]:-0} bash "$E2E_SESSION" start "$dir") || return 1
	fi
	E2E_NS[$name]=$ns
	E2E_SOCK[$name]=$sock
	E2E_URI[$name]="qemu+unix:///session?socket=$sock"
	[[ -n $URI ]] || URI=${E2E_URI[$name]}
}

# e2e_stop_host NAME: destroys its VMs (a session libvirtd leaves them
# running when it stops), then stops the daemon.
e2e_stop_host() {
	local name=$1 dir=${E2E_HOST_DIR[$1]} vm
	[[ -n ${E2E_SOCK[$name]:-} ]] || return 0
	if [[ -S ${E2E_SOCK[$name]} ]]; then
		for vm in $(virsh -q -c "${E2E_URI[$name]}" list --name 2>/dev/null); do
			virsh -q -c "${E2E_URI[$name]}" destroy "$vm" >/dev/null 2>&1
		done
	fi
	bash "$E2E_SESSION" stop "$dir"
	# QEMUs of a daemon that was killed: theirs are the only processes of
	# this user whose command line names this host's directory
	local pids
	pids=$(pgrep -u "$E2E_USER" -f -- "$dir/" || true)
	[[ -n $pids ]] && kill -9 $pids 2>/dev/null
	return 0
}

# e2e_restart_host NAME: stop and start its libvirtd (same dirs, same
# namespace setup); running VMs survive, as with a real libvirtd restart.
e2e_restart_host() {
	local name=$1 ns_opt=
	((${E2E_NS[$name]:-1})) || ns_opt=--no-ns
	bash "$E2E_SESSION" stop "${E2E_HOST_DIR[$name]}"
	e2e_start_host "$name" $ns_opt
}

e2e_host_pid() { bash -c 'source "$1"; vc_libvirtd_pid "$2"' _ "$E2E_SESSION" "${E2E_HOST_DIR[$1]}"; }

# e2e_in_host NAME CMD...: CMD sees the host's /etc/libvirt/hooks and /etc/virtcert
e2e_in_host() {
	local name=$1 pid
	shift
	if ((${E2E_NS[$name]:-0})); then
		pid=$(e2e_host_pid "$name") || return 1
		nsenter -t "$pid" -m -- "$@"
	else
		"$@"
	fi
}

# on_host NAME CMD...: the helpers below use $URI
on_host() {
	local URI=${E2E_URI[$1]:?no host $1}
	shift
	"$@"
}

qv() { virsh -q -c "$URI" "$@"; }

# --- VMs ---------------------------------------------------------------------

e2e_console_dir() {
	local d="$T/console"
	if [[ ! -d $d ]]; then
		mkdir -p "$d"
		chown "$E2E_USER": "$d"
		chmod 0711 "$T"
		chmod 0755 "$d"
	fi
	echo "$d"
}
vm_console() { echo "$T/console/$1.log"; }

# e2e_domain_xml NAME UUID VARIANT [METADATA_XML]
e2e_domain_xml() {
	local name=$1 uuid=$2 variant=$3 meta=${4:-}
	cat <<EOD
<domain type='qemu'>
  <name>$name</name>
  <uuid>$uuid</uuid>
  ${meta:+<metadata>$meta</metadata>}
  <memory unit='MiB'>192</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$E2E_KERNEL</kernel>
    <initrd>$(e2e_initrd "$variant")</initrd>
    <cmdline>console=ttyS0 quiet vc.hostname=$name</cmdline>
  </os>
  <on_reboot>restart</on_reboot>
  <devices>
    <serial type='file'>
      <source path='$(e2e_console_dir)/$name.log' append='on'/>
      <target port='0'/>
    </serial>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <memballoon model='none'/>
  </devices>
</domain>
EOD
}

# e2e_define_vm NAME [--variant V] [--metadata XML] [--uuid U] [--start]:
# defines on the current host and prints the VM's UUID.
e2e_define_vm() {
	local name=$1 variant=normal meta='' uuid='' start=0
	shift
	while (($# > 0)); do
		case "$1" in
		--variant) variant=$2; shift 2 ;;
		--metadata) meta=$2; shift 2 ;;
		--uuid) uuid=$2; shift 2 ;;
		--start) start=1; shift ;;
		*) echo "e2e_define_vm: unknown option $1" >&2; return 2 ;;
		esac
	done
	[[ -n ${E2E_KERNEL:-} ]] || e2e_build_guest "$variant" || return 1
	[[ -s $(e2e_initrd "$variant") ]] || e2e_build_guest "$variant" || return 1
	[[ -n $uuid ]] || uuid=$(cat /proc/sys/kernel/random/uuid)
	local xml="$T/$name.xml"
	e2e_domain_xml "$name" "$uuid" "$variant" "$meta" >"$xml"
	qv define "$xml" >/dev/null || return 1
	((start)) && { qv start "$name" >/dev/null || return 1; }
	echo "$uuid"
}

# guest_agent VM JSON [TIMEOUT_S]: the agent's reply (the whole JSON object)
guest_agent() {
	qv qemu-agent-command --timeout "${3:-10}" "$1" "$2"
}

guest_ping() { guest_agent "$1" '{"execute":"guest-ping"}' "${2:-2}" >/dev/null 2>&1; }

# wait_guest_ping VM [SECONDS]: until the agent answers (default 90 s: a
# loaded CI machine under TCG)
wait_guest_ping() {
	local vm=$1 limit=${2:-90} start=$SECONDS
	while ((SECONDS - start < limit)); do
		guest_ping "$vm" 2 && return 0
		[[ $(vm_state "$vm") == running ]] || { echo "$vm is not running" >&2; return 1; }
		sleep 0.3
	done
	echo "guest agent of $vm did not answer within ${limit}s; console:" >&2
	tail -n 20 "$(vm_console "$vm")" >&2 2>/dev/null
	return 1
}

# guest_exec VM PATH ARGS...: runs PATH in the guest; its stdout on stdout,
# its stderr on stderr, its exit status as ours (128+N for signal N, 124 for
# a command still running after $GUEST_EXEC_TIMEOUT s, default 60). The
# guest command's stdin is $GUEST_STDIN when set.
guest_exec() {
	local vm=$1 path=$2 req rep pid
	shift 2
	# one jq per argument: jq would take an argument such as -r for its own option
	local a args=()
	for a in "$@"; do args+=("$(jq -cn --arg a "$a" '$a')"); done
	req=$(jq -cn --arg p "$path" --arg in "${GUEST_STDIN:-}" --argjson hasin "$([[ -n ${GUEST_STDIN+x} ]] && echo true || echo false)" \
		--argjson args "[$(IFS=,; echo "${args[*]}")]" \
		'{execute:"guest-exec", arguments:({path:$p, arg:$args, "capture-output":true}
		 + (if $hasin then {"input-data":($in|@base64)} else {} end))}') || return 1
	rep=$(guest_agent "$vm" "$req") || return 1
	pid=$(jq -er '.return.pid' <<<"$rep") || return 1
	local limit=${GUEST_EXEC_TIMEOUT:-60} start=$SECONDS st
	while :; do
		st=$(guest_agent "$vm" "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":$pid}}") || return 1
		[[ $(jq -r '.return.exited' <<<"$st") == true ]] && break
		((SECONDS - start < limit)) || return 124
		sleep 0.05
	done
	jq -r '.return["out-data"] // empty' <<<"$st" | base64 -d
	jq -r '.return["err-data"] // empty' <<<"$st" | base64 -d >&2
	local code sig
	code=$(jq -r '.return.exitcode // empty' <<<"$st")
	sig=$(jq -r '.return.signal // empty' <<<"$st")
	[[ -n $sig ]] && return $((128 + sig))
	return "${code:-1}"
}

guest_sh() { guest_exec "$1" /bin/sh -c "$2"; }

# guest_file_write VM PATH: stdin into PATH (created/truncated) through
# guest-file-open/write/close, as the daemon delivers
guest_file_write() {
	local vm=$1 path=$2 h rep chunk rc=0
	rep=$(guest_agent "$vm" "$(jq -cn --arg p "$path" '{execute:"guest-file-open",arguments:{path:$p,mode:"w"}}')") || return 1
	h=$(jq -er .return <<<"$rep") || return 1
	# 48 KiB per write: the request is one command-line argument of virsh,
	# at most 128 KiB; 65536 base64 characters decode on their own
	while IFS= read -r chunk; do
		guest_agent "$vm" "{\"execute\":\"guest-file-write\",\"arguments\":{\"handle\":$h,\"buf-b64\":\"$chunk\"}}" >/dev/null ||
			{ rc=1; break; }
	done < <(base64 -w 65536)
	guest_agent "$vm" "{\"execute\":\"guest-file-close\",\"arguments\":{\"handle\":$h}}" >/dev/null || rc=1
	return $rc
}

# guest_file_read VM PATH: the file's bytes on stdout (guest-file-read chunks)
guest_file_read() {
	local vm=$1 path=$2 h rep rc=0
	rep=$(guest_agent "$vm" "$(jq -cn --arg p "$path" '{execute:"guest-file-open",arguments:{path:$p,mode:"r"}}')") || return 1
	h=$(jq -er .return <<<"$rep") || return 1
	while :; do
		rep=$(guest_agent "$vm" "{\"execute\":\"guest-file-read\",\"arguments\":{\"handle\":$h,\"count\":65536}}") || { rc=1; break; }
		jq -r '.return["buf-b64"]' <<<"$rep" | base64 -d
		[[ $(jq -r '.return.eof' <<<"$rep") == true || $(jq -r '.return.count' <<<"$rep") == 0 ]] && break
	done
	guest_agent "$vm" "{\"execute\":\"guest-file-close\",\"arguments\":{\"handle\":$h}}" >/dev/null
	return $rc
}

# boots seen on the console so far (/init prints one line per boot)
vm_boots() { grep -c '^vc-guest: starting' "$(vm_console "$1")" 2>/dev/null || true; }
vm_booted_since() { (($(vm_boots "$1") > $2)); }

# vm_reboot VM [--hard]: a reset of the machine (--hard: destroy + start, a
# new QEMU process), then waits for the new boot's agent. The tmpfs root is
# gone: files written before are lost.
vm_reboot() {
	local vm=$1 before
	before=$(vm_boots "$vm")
	if [[ ${2:-} == --hard ]]; then
		qv destroy "$vm" >/dev/null && qv start "$vm" >/dev/null || return 1
	else
		qv reset "$vm" >/dev/null || return 1
	fi
	# the old boot's agent is gone at once, but wait for the new /init so that
	# nothing of the old boot can answer
	wait_for 90 vm_booted_since "$vm" "$before" || return 1
	wait_guest_ping "$vm"
}

# --- migration ---------------------------------------------------------------

e2e_free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((49152 + RANDOM % 16000))
		# a connection that succeeds means somebody listens there
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
	done
	return 1
}

# e2e_migrate VM FROM TO [OPTIONS...]: live migration (client-driven, as
# `virsh migrate` does by default) of VM from host FROM to host TO; the
# source's definition moves too. virsh's output and errors on stdout/stderr.
e2e_migrate() {
	local vm=$1 from=$2 to=$3 port
	shift 3
	port=$(e2e_free_port) || return 1
	virsh -q -c "${E2E_URI[$from]}" migrate --live --persistent --undefinesource "$@" \
		"$vm" "${E2E_URI[$to]}" --migrateuri "tcp://127.0.0.1:$port"
}

# vm_state VM: virsh domstate of VM on the current host ("" when unknown)
vm_state() { qv domstate "$1" 2>/dev/null | head -n 1; }
