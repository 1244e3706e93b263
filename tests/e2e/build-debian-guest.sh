#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds the real Debian 12 guest of tests/e2e/debian-nginx.sh: debootstrap
# (minbase plus systemd, udev, the stock qemu-guest-agent, openssl, nginx-light
# and Debian's kernel) into an ext4 image that boots directly (the kernel and
# initrd are copied out: no bootloader, no partition table).
#
#   build-debian-guest.sh OUTDIR
#
# Writes OUTDIR/debian12/{base.raw,vmlinuz,initrd.img}, world-readable (the
# session libvirtd runs QEMU as another user; each VM gets a qcow2 overlay of
# base.raw). Cached: rebuilt only when this script changed or an output is
# missing. The network access is debootstrap from the mirror apt uses
# ($VC_DEBIAN_MIRROR overrides it); about 2 minutes on a quiet 2-core machine.
#
# In the image:
#   - nginx serves TLS on 127.0.0.1:443 with ssl_certificate
#     /etc/virtcert/tls/chain.pem (leaf + intermediate, as virtcert delivers
#     it) and ssl_certificate_key /etc/virtcert/tls/key.pem; a throwaway
#     self-signed pair sits at those paths (and at cert.pem) so that nginx
#     starts before the first delivery (docs/guest-agent.md, "Real services");
#   - qemu-guest-agent as Debian ships it (udev starts it when its port
#     appears), blocking nothing.
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
OUT=$1
for t in debootstrap mkfs.ext4 qemu-img openssl; do
	command -v "$t" >/dev/null 2>&1 || [[ -x /usr/sbin/$t ]] ||
		{ echo "build-debian-guest: $t missing (scripts/deps test installs it)" >&2; exit 77; }
done
PATH=$PATH:/usr/sbin:/sbin

mkdir -p "$OUT/debian12"
OUT=$(cd "$OUT" && pwd)
chmod 0755 "$OUT" "$OUT/debian12"
DIR=$OUT/debian12
exec 9>"$DIR/.lock"
flock 9

log() { echo "build-debian-guest: $*" >&2; }

stamp=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
if [[ -s $DIR/base.raw && -s $DIR/vmlinuz && -s $DIR/initrd.img && -s $DIR/stamp &&
	$(cat "$DIR/stamp") == "$stamp" ]]; then
	log "$DIR/base.raw is up to date"
	exit 0
fi

# the Debian mirror apt is configured with (deb822 or one-line sources)
mirror=${VC_DEBIAN_MIRROR:-}
if [[ -z $mirror ]]; then
	mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk '/^URIs:/{for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}')
fi
if [[ -z $mirror ]]; then
	mirror=$(awk '/^deb /{if ($2 !~ /security/) {print $2; exit}}' /etc/apt/sources.list 2>/dev/null || true)
fi
: "${mirror:=http://deb.debian.org/debian}"

start=$SECONDS
work=$(mktemp -d "$DIR/build-XXXXXX")
cleanup() {
	# a failed debootstrap may leave its mounts behind
	local m
	for m in $(awk -v w="$work" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
root=$work/root
log "debootstrap bookworm from $mirror (about 2 minutes)"
debootstrap --variant=minbase \
	--include=systemd-sysv,udev,qemu-guest-agent,openssl,nginx-light,linux-image-amd64,kmod,iproute2,ca-certificates \
	bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
	{ tail -n 30 "$work/debootstrap.log" >&2; log "debootstrap failed"; exit 1; }

echo "/dev/vda / ext4 defaults 0 1" >"$root/etc/fstab"
echo debian-guest >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 debian-guest\n' >"$root/etc/hosts"
# nothing of these is needed in a test guest; each costs seconds under TCG
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
	fstrim.timer man-db.timer dpkg-db-backup.timer systemd-timesyncd.service; do
	ln -sf /dev/null "$root/etc/systemd/system/$u"
done
# a page cache flush of the kernel's modules is not needed: drop what a VM
# without sound, graphics or wireless never loads (smaller image, faster mkfs)
for d in "$root"/lib/modules/*/kernel; do
	rm -rf "$d"/drivers/{gpu,media,net/wireless,infiniband,staging,isdn,bluetooth} "$d"/sound
done
rm -rf "$root"/usr/share/{doc,man,locale}/* "$root"/var/cache/apt/archives/*.deb

# the placeholder pair nginx starts with
tls=$root/etc/virtcert/tls
mkdir -p "$tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
	-subj /CN=placeholder.invalid -keyout "$tls/key.pem" -out "$tls/cert.pem" 2>/dev/null
cp "$tls/cert.pem" "$tls/chain.pem"
chmod 0600 "$tls/key.pem"
chmod 0644 "$tls/cert.pem" "$tls/chain.pem"
rm -f "$root/etc/nginx/sites-enabled/default"
cat >"$root/etc/nginx/sites-enabled/virtcert" <<'EOF'
# the certificate virtcert delivers: chain.pem is the leaf and the
# intermediate, what ssl_certificate wants
server {
	listen 443 ssl default_server;
	server_name _;
	ssl_certificate /etc/virtcert/tls/chain.pem;
	ssl_certificate_key /etc/virtcert/tls/key.pem;
	location / {
		return 200 "ok\n";
	}
}
EOF

cp "$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n 1)" "$work/vmlinuz"
cp "$(ls "$root"/boot/initrd.img-* | sort -V | tail -n 1)" "$work/initrd.img"
truncate -s 3G "$work/base.raw"
mkfs.ext4 -q -L debian12 -d "$root" "$work/base.raw"
chmod 0644 "$work/base.raw" "$work/vmlinuz" "$work/initrd.img"
mv -f "$work/base.raw" "$work/vmlinuz" "$work/initrd.img" "$DIR/"
echo "$stamp" >"$DIR/stamp"
log "built $DIR/base.raw in $((SECONDS - start)) s ($(du -m "$DIR/base.raw" | cut -f1) MiB used)"
