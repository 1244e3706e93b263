#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds the tiny guest of the end-to-end tests: Debian's kernel and an
# initramfs whose /init starts the real qemu-guest-agent (no disk, no network,
# a tmpfs root: whatever the guest writes is lost at reboot).
#
#   build-guest.sh OUTDIR [--variant normal|openssl|minimal|garbage|flood]
#
#   normal   busybox, qemu-ga, openssl (guest keygen), users root/web, group ssl-cert
#   openssl  the same image as normal, under its own name, for tests that
#            depend on the guest's openssl (normal may lose it one day)
#   minimal  normal without openssl: guest keygen must fail cleanly
#   garbage  no qemu-ga: a busybox sh loop on the agent's port answers every
#            line with garbage, a 1 MiB line or broken JSON (a hostile agent)
#   flood    no qemu-ga: answers the first line on the agent's port with
#            bytes and no newline, without end (a hostile agent)
#
# Writes OUTDIR/vmlinuz and OUTDIR/initrd-VARIANT.img, world-readable (the
# session libvirtd runs QEMU as another user). Idempotent: the kernel .deb is
# cached in OUTDIR and an image is rebuilt only when its inputs changed (this
# script, the host's qemu-ga/busybox/openssl, the kernel). The only network
# access is `apt-get download` of the kernel, once.
set -euo pipefail

usage() { echo "usage: $0 OUTDIR [--variant normal|openssl|minimal|garbage|flood]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
OUT=$1
shift
VARIANT=normal
while [[ $# -gt 0 ]]; do
	case "$1" in
	--variant) [[ $# -ge 2 ]] || usage; VARIANT=$2; shift 2 ;;
	--variant=*) VARIANT=${1#--variant=}; shift ;;
	*) usage ;;
	esac
done
case "$VARIANT" in normal | openssl | minimal | garbage | flood) ;; *) usage ;; esac

QEMU_GA=/usr/sbin/qemu-ga
BUSYBOX=/bin/busybox
OPENSSL=/usr/bin/openssl
for f in "$BUSYBOX" "$QEMU_GA" "$OPENSSL"; do
	[[ -x $f ]] || { echo "build-guest: $f missing (scripts/deps test installs it)" >&2; exit 77; }
done
for t in cpio gzip dpkg-deb apt-get; do
	command -v "$t" >/dev/null || { echo "build-guest: $t missing" >&2; exit 77; }
done

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# the session libvirtd's QEMU (another user) must traverse OUTDIR
chmod 0755 "$OUT"
# Tests of several suites may build at once into the same cache.
exec 9>"$OUT/.lock"
flock 9

log() { echo "build-guest: $*" >&2; }

# --- kernel and modules ------------------------------------------------------
# Debian's kernel, the one linux-image-amd64 depends on now; any cached .deb is
# reused as is, so a later kernel update costs no download and no rebuild.
kernel_deb() {
	local deb
	deb=$(ls "$OUT"/linux-image-6*-amd64_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
	if [[ -n $deb ]]; then
		echo "$deb"
		return 0
	fi
	local pkg
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-6/{print $2; exit}')
	if [[ -z $pkg ]]; then
		log "apt-cache knows no linux-image-amd64; running apt-get update"
		apt-get update -q >/dev/null
		pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6/{print $2; exit}')
	fi
	[[ -n $pkg ]] || { log "cannot resolve linux-image-amd64"; return 1; }
	log "downloading $pkg"
	# apt's sandbox user cannot write into OUTDIR: download in a world-writable
	# scratch directory, then move.
	local dl
	dl=$(mktemp -d "${TMPDIR:-/tmp}/vc-kernel-XXXXXX")
	chmod 0777 "$dl"
	(cd "$dl" && apt-get download -q "$pkg" >/dev/null 2>&1) || { rm -rf "$dl"; log "apt-get download $pkg failed"; return 1; }
	mv "$dl"/*.deb "$OUT"/
	rmdir "$dl"
	ls "$OUT"/linux-image-6*-amd64_*.deb | sort -V | tail -n 1
}

MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_console)

DEB=$(kernel_deb)
KDIR="$OUT/kernel"
if [[ ! -s $KDIR/stamp || $(cat "$KDIR/stamp") != "$(basename "$DEB")" ]]; then
	log "extracting kernel and virtio modules from $(basename "$DEB")"
	rm -rf "$KDIR"
	mkdir -p "$KDIR/x" "$KDIR/modules"
	# only the kernel and the few modules: the whole package is 400 MB unpacked
	dpkg-deb --fsys-tarfile "$DEB" |
		tar -x -C "$KDIR/x" --wildcards './boot/vmlinuz-*' \
			'./lib/modules/*/kernel/drivers/virtio/*' \
			'./lib/modules/*/kernel/drivers/char/virtio_console.ko*'
	for m in "${MODULES[@]}"; do
		src=$(find "$KDIR/x/lib/modules" -name "$m.ko*" | head -n 1)
		[[ -n $src ]] || { log "module $m not in $(basename "$DEB")"; exit 1; }
		case "$src" in
		*.ko.xz) xz -dc "$src" >"$KDIR/modules/$m.ko" ;;
		*.ko.zst) zstd -qdc "$src" >"$KDIR/modules/$m.ko" ;;
		*.ko.gz) gzip -dc "$src" >"$KDIR/modules/$m.ko" ;;
		*) cp "$src" "$KDIR/modules/$m.ko" ;;
		esac
	done
	cp "$(ls "$KDIR"/x/boot/vmlinuz-* | head -n 1)" "$KDIR/vmlinuz"
	basename "$(ls -d "$KDIR"/x/lib/modules/* | head -n 1)" >"$KDIR/release"
	rm -rf "$KDIR/x"
	basename "$DEB" >"$KDIR/stamp"
fi
if ! cmp -s "$KDIR/vmlinuz" "$OUT/vmlinuz"; then
	cp "$KDIR/vmlinuz" "$OUT/vmlinuz.tmp"
	chmod 0644 "$OUT/vmlinuz.tmp"
	mv -f "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
fi

# --- initramfs -----------------------------------------------------------------
IMG="$OUT/initrd-$VARIANT.img"
with_openssl=1
with_qga=1
case "$VARIANT" in
minimal) with_openssl=0 ;;
garbage | flood) with_openssl=0; with_qga=0 ;;
esac

# Inputs of the image: rebuilt when any changes.
stamp=$({
	echo "variant=$VARIANT"
	sha256sum "${BASH_SOURCE[0]}" "$BUSYBOX" "$KDIR/stamp"
	((with_qga)) && sha256sum "$QEMU_GA"
	((with_openssl)) && sha256sum "$OPENSSL" /usr/lib/ssl/openssl.cnf
	true
} | sha256sum | cut -d' ' -f1)
if [[ -s $IMG && -s $IMG.stamp && $(cat "$IMG.stamp") == "$stamp" ]]; then
	log "$IMG is up to date"
	exit 0
fi
log "building $IMG"

ROOT=$(mktemp -d "$OUT/root-XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,root,home/web,lib/modules}
mkdir -p "$ROOT/var"
ln -s ../run "$ROOT/var/run"
chmod 1777 "$ROOT/tmp"

cp "$BUSYBOX" "$ROOT/bin/busybox"
# applet links where a Debian system has the tool, so guest-exec paths such as
# /bin/sh, /usr/bin/sha256sum or /bin/mv resolve
"$BUSYBOX" --list-full | while read -r applet; do
	[[ -e $ROOT/$applet || -L $ROOT/$applet ]] && continue
	mkdir -p "$ROOT/$(dirname "$applet")"
	ln -s /bin/busybox "$ROOT/$applet"
done

# copy_bin BIN: the binary and every library ldd lists, at the same paths
copy_bin() {
	local bin=$1 lib
	mkdir -p "$ROOT/$(dirname "$bin")"
	rm -f "$ROOT/$bin" # may be a busybox applet link
	cp -L "$bin" "$ROOT/$bin"
	for lib in $(ldd "$bin" | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}'); do
		[[ -e $ROOT/$lib ]] && continue
		mkdir -p "$ROOT/$(dirname "$lib")"
		cp -L "$lib" "$ROOT/$lib"
	done
}
((with_qga)) && copy_bin "$QEMU_GA"
if ((with_openssl)); then
	copy_bin "$OPENSSL"
	mkdir -p "$ROOT/usr/lib/ssl"
	cp -L /usr/lib/ssl/openssl.cnf "$ROOT/usr/lib/ssl/openssl.cnf"
fi
cp "$KDIR"/modules/*.ko "$ROOT/lib/modules/"

# /init: common part
cat >"$ROOT/init" <<'EOI'
#!/bin/busybox sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /run /tmp
chmod 1777 /tmp
cat >/etc/passwd <<EOF
root:x:0:0:root:/root:/bin/sh
web:x:1000:1000:web:/home/web:/bin/sh
EOF
cat >/etc/group <<EOF
root:x:0:
ssl-cert:x:110:web
web:x:1000:
EOF
chown 1000:1000 /home/web
h=$(sed -n 's/.*vc.hostname=\([^ ]*\).*/\1/p' /proc/cmdline)
[ -n "$h" ] && hostname "$h"
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_console; do
	insmod /lib/modules/$m.ko || echo "vc-guest: insmod $m failed"
done
# the ports appear asynchronously after virtio_console binds
mkdir -p /dev/virtio-ports
i=0
while [ $i -lt 100 ]; do
	for p in /sys/class/virtio-ports/*; do
		[ -r "$p/name" ] || continue
		n=$(cat "$p/name")
		[ -n "$n" ] && ln -sf "../${p##*/}" "/dev/virtio-ports/$n"
	done
	[ -e /dev/virtio-ports/org.qemu.guest_agent.0 ] && break
	i=$((i + 1))
	sleep 0.1
done
PORT=/dev/virtio-ports/org.qemu.guest_agent.0
[ -e $PORT ] || echo "vc-guest: no agent port"
EOI

if ((with_qga)); then
	cat >>"$ROOT/init" <<'EOI'
echo "vc-guest: starting qemu-ga ($(uname -r))"
# pid 1 must never exit: should qemu-ga die, restart it
while :; do
	/usr/sbin/qemu-ga -m virtio-serial -p $PORT -t /run
	echo "vc-guest: qemu-ga exited ($?)"
	sleep 1
done
EOI
elif [[ $VARIANT == flood ]]; then
	cat >>"$ROOT/init" <<'EOI'
echo "vc-guest: starting the flood agent ($(uname -r))"
# A hostile agent: the first request line gets an answer that never ends
# (64 KiB chunks of A, no newline), until the host hangs up; then again.
head -c 65536 /dev/zero | tr '\0' A >/run/chunk
while :; do
	(IFS= read -r line && while cat /run/chunk; do :; done) <>$PORT >&0
	sleep 0.2
done
EOI
else
	cat >>"$ROOT/init" <<'EOI'
echo "vc-guest: starting the garbage agent ($(uname -r))"
# A hostile agent: every request line gets one of: garbage text, a 1 MiB line,
# broken JSON, a reply with the wrong types. A virtio port opens only once:
# one read-write descriptor for both directions. When the host side closes,
# the read ends; open the port again.
head -c 1048576 /dev/zero | tr '\0' A >/run/huge
echo >>/run/huge
while :; do
	n=0
	while IFS= read -r line; do
		n=$((n + 1))
		case $((n % 4)) in
		1) echo 'garbage garbage garbage' ;;
		2) cat /run/huge ;;
		3) echo '{"return": {"id": ' ;;
		0) echo '{"return": "pong", "id": [1, {"x":' ;;
		esac
	done <>$PORT >&0
	sleep 0.2
done
EOI
fi
chmod 0755 "$ROOT/init"

tmp="$IMG.tmp.$$"
(cd "$ROOT" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) | gzip -6 >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$IMG"
echo "$stamp" >"$IMG.stamp"
log "built $IMG ($(du -k "$IMG" | cut -f1) KiB)"
