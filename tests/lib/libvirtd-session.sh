#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A private libvirtd for tests: an unprivileged session daemon with its own
# XDG directories under DIR, so nothing of the host's libvirt is touched.
#
#   libvirtd-session.sh start DIR   start (or find running) daemon, print its socket path
#   libvirtd-session.sh stop DIR    stop it (SIGTERM, then SIGKILL after 5 s)
#   libvirtd-session.sh kill DIR    SIGKILL it (a crash, for reconnect tests)
#   libvirtd-session.sh socket DIR  print the socket path without starting anything
#
# It can also be sourced; the functions are vc_libvirtd_start/stop/kill/socket.
#
# Run as root, the daemon runs as the user $VC_LIBVIRTD_USER (default vctest,
# created with useradd -m when missing), since a session daemon must not run as
# root. Root clients reach its socket anyway (root overrides the 0700 mode of
# the runtime directory); clients of another unprivileged user cannot.
# Run as anyone else, the daemon runs as that user.
#
# With VC_LIBVIRTD_LISTEN=1 it starts with --listen: the TCP/TLS listeners
# its DIR/config/libvirt/libvirtd.conf asks for (listen_tls, tls_port,
# ca_file, cert_file, key_file, crl_file). libvirtd allows that unprivileged;
# the files must be readable by its user.
#
# Clients use   test+unix:///default?socket=<path>   (the daemon's shared test
# driver: no QEMU needed; its state resets when its last client disconnects) or
# qemu+unix:///session?socket=<path>.

vc_libvirtd_user() {
	if [ "$(id -u)" = 0 ]; then
		echo "${VC_LIBVIRTD_USER:-vctest}"
	else
		id -un
	fi
}

vc_libvirtd_socket() {
	echo "$1/run/libvirt/libvirt-sock"
}

vc_libvirtd_pid() {
	local pidfile="$1/libvirtd.pid"
	[ -s "$pidfile" ] || return 1
	local pid
	pid=$(cat "$pidfile") || return 1
	vc_libvirtd_alive "$pid" || return 1
	echo "$pid"
}

# A killed daemon may stay a zombie for a while (a slow reaper as pid 1):
# that is dead for us.
vc_libvirtd_alive() {
	local state
	state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	case "$state" in Z*|"") return 1 ;; esac
	return 0
}

# useradd is idempotent here: another test may be creating the same user now.
vc_libvirtd_ensure_user() {
	local user="$1"
	id -u "$user" >/dev/null 2>&1 && return 0
	useradd -m "$user" >/dev/null 2>&1
	id -u "$user" >/dev/null 2>&1
}

vc_libvirtd_start() {
	local dir="$1"
	[ -n "$dir" ] || { echo "usage: start DIR" >&2; return 2; }
	local bin
	bin=$(command -v libvirtd || echo /usr/sbin/libvirtd)
	[ -x "$bin" ] || { echo "libvirtd not found" >&2; return 77; }
	local user sock
	user=$(vc_libvirtd_user)
	sock=$(vc_libvirtd_socket "$dir")
	if vc_libvirtd_pid "$dir" >/dev/null && [ -S "$sock" ]; then
		echo "$sock"
		return 0
	fi
	if [ "$(id -u)" = 0 ]; then
		vc_libvirtd_ensure_user "$user" || { echo "cannot create user $user" >&2; return 1; }
	fi
	mkdir -p "$dir"/run "$dir"/config "$dir"/data "$dir"/cache "$dir"/home || return 1
	chmod 0700 "$dir"/run
	# A SIGKILLed daemon leaves its socket; libvirtd replaces it, but we must not
	# report the stale one as ready.
	rm -f "$sock" "$dir/libvirtd.pid"
	if [ "$(id -u)" = 0 ]; then
		# the directories must belong to the daemon's user; DIR itself only
		# needs to be traversable
		chmod 0711 "$dir"
		chown -R "$user": "$dir"/run "$dir"/config "$dir"/data "$dir"/cache "$dir"/home
		touch "$dir/libvirtd.log" && chown "$user": "$dir/libvirtd.log"
		chown "$user": "$dir"
	fi
	local envs=(HOME="$dir/home" XDG_RUNTIME_DIR="$dir/run" XDG_CONFIG_HOME="$dir/config"
		XDG_DATA_HOME="$dir/data" XDG_CACHE_HOME="$dir/cache"
		PATH=/usr/sbin:/usr/bin:/sbin:/bin)
	local cmd=("$bin" --daemon --pid-file="$dir/libvirtd.pid")
	[ "${VC_LIBVIRTD_LISTEN:-0}" = 1 ] && cmd+=(--listen)
	if [ "$(id -u)" = 0 ]; then
		setpriv --reuid="$user" --regid="$user" --init-groups \
			env -i "${envs[@]}" "${cmd[@]}" >>"$dir/libvirtd.log" 2>&1 </dev/null
	else
		env -i "${envs[@]}" "${cmd[@]}" >>"$dir/libvirtd.log" 2>&1 </dev/null
	fi || { echo "libvirtd failed to start, see $dir/libvirtd.log" >&2; return 1; }
	# --daemon returns once the pid file is written; the socket follows shortly.
	for _ in $(seq 1 200); do
		if [ -S "$sock" ] && vc_libvirtd_pid "$dir" >/dev/null; then
			echo "$sock"
			return 0
		fi
		sleep 0.05
	done
	echo "libvirtd did not create $sock within 10 s, see $dir/libvirtd.log" >&2
	return 1
}

# vc_libvirtd_gone DIR PID: waits up to 5 s for PID to end, then forgets it
vc_libvirtd_gone() {
	for _ in $(seq 1 100); do
		vc_libvirtd_alive "$2" || { rm -f "$1/libvirtd.pid"; return 0; }
		sleep 0.05
	done
	return 1
}

vc_libvirtd_signal() {
	local dir="$1" sig="$2" pid
	pid=$(vc_libvirtd_pid "$dir") || return 0
	kill "-$sig" "$pid" 2>/dev/null
	vc_libvirtd_gone "$dir" "$pid" && return 0
	[ "$sig" = KILL ] && return 1
	kill -KILL "$pid" 2>/dev/null
	vc_libvirtd_gone "$dir" "$pid"
}

vc_libvirtd_stop() { vc_libvirtd_signal "$1" TERM; }
vc_libvirtd_kill() { vc_libvirtd_signal "$1" KILL; }

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	case "$1" in
	start) vc_libvirtd_start "$2" ;;
	stop) vc_libvirtd_stop "$2" ;;
	kill) vc_libvirtd_kill "$2" ;;
	socket) vc_libvirtd_socket "$2" ;;
	*) echo "usage: $0 start|stop|kill|socket DIR" >&2; exit 2 ;;
	esac
fi
