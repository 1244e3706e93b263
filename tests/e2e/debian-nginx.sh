#!/usr/bin/env bash
# End to end with a real Debian 12 guest (systemd, the stock qemu-guest-agent,
# nginx; tests/e2e/build-debian-guest.sh, cached) under TCG: the daemon
# delivers cert.pem, chain.pem (leaf + intermediate) and key.pem to the
# policy's default paths with reload=systemctl reload-or-restart nginx, and
# nginx, whose ssl_certificate is chain.pem, serves the current certificate:
# checked inside the guest with openssl s_client through the agent, after the
# first delivery and after `virtcert renew`. Then the agent is locked down
# (block-rpcs=guest-exec,guest-exec-status in /etc/qemu/qemu-ga.conf): a
# renewal reaches the files by the file-only way and the state says that the
# reload could not run.
source "$VC_SOURCE_ROOT/tests/e2e/lib.sh"
e2e_require
t_start=$SECONDS
rc=0
bash "$E2E_LIB_DIR/build-debian-guest.sh" "$E2E_GUEST_DIR" || rc=$?
((rc == 0)) || { ((rc == 77)) && exit 77; echo "not ok - the Debian guest image cannot be built"; exit 1; }
DEB_DIR=$E2E_GUEST_DIR/debian12
ok "Debian 12 guest image ready ($((SECONDS - t_start)) s)"

e2e_start_host a --no-ns
vc_write_config "libvirt-uri=$URI"
cat >"$T/policy.d/50-nginx.conf" <<'EOP'
[nginx]
match-name=deb-*
names={name}.vms.example.com
reload=systemctl reload-or-restart nginx
EOP
check "ca init" vc ca init --permit vms.example.com
check "virtcertd starts" start_daemon

# the VM's disk: a qcow2 overlay of the cached image, the session libvirtd's
# QEMU runs as $E2E_USER
vmdir="$T/deb"
mkdir -p "$vmdir"
qemu-img create -q -f qcow2 -F raw -b "$DEB_DIR/base.raw" "$vmdir/disk.qcow2"
chown -R "$E2E_USER": "$vmdir"
console=$(e2e_console_dir)/deb-1.log
cat >"$T/deb-1.xml" <<EOD
<domain type='qemu'>
  <name>deb-1</name>
  <memory unit='MiB'>1024</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$DEB_DIR/vmlinuz</kernel>
    <initrd>$DEB_DIR/initrd.img</initrd>
    <cmdline>root=/dev/vda rw console=ttyS0 quiet</cmdline>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$vmdir/disk.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='file'>
      <source path='$console' append='on'/>
      <target port='0'/>
    </serial>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <memballoon model='none'/>
  </devices>
</domain>
EOD
qv define "$T/deb-1.xml" >/dev/null
t_boot=$SECONDS
qv start deb-1 >/dev/null
wait_guest_ping deb-1 600 && ok "deb-1: the stock qemu-guest-agent answers $((SECONDS - t_boot)) s after start" ||
	{ not_ok "deb-1: no guest agent"; tail -n 30 "$console"; finish; }

state_of() { vc show "$1" --json | jq -r .domain.state; }
serial_of() { vc show "$1" --json | jq -r .domain.current_serial; }
delivered_serial() { # VM: the serial once DELIVERED
	vc show "$1" --json | jq -r '.domain | select(.state == "DELIVERED") | .current_serial'
}
norm() { local s=${1#serial=}; s=${s^^}; sed 's/^0*//' <<<"$s"; }
# served VM: the serial nginx serves on 127.0.0.1:443, asked inside the guest
served() {
	guest_sh "$1" "openssl s_client -connect 127.0.0.1:443 -servername $1.vms.example.com </dev/null 2>/dev/null | openssl x509 -noout -serial"
}
serves() { [[ $(norm "$(served "$1" 2>/dev/null)") == "$(norm "$2")" ]]; }

wait_for 300 bash -c "[[ \$(\"$VIRTCERT\" --config '$CONF' show deb-1 --json | jq -r .domain.state) == DELIVERED ]]" &&
	ok "deb-1: delivered $((SECONDS - t_boot)) s after start" || { not_ok "deb-1: not delivered"; vc show deb-1; }
s1=$(serial_of deb-1)
# nginx was reloaded by the delivery's reload command; give a worker a moment
wait_for 30 serves deb-1 "$s1" && ok "deb-1: nginx serves certificate $s1 (openssl s_client in the guest)" ||
	not_ok "deb-1: nginx serves $(served deb-1), not $s1"
n=$(guest_sh deb-1 "openssl s_client -showcerts -connect 127.0.0.1:443 </dev/null 2>/dev/null | grep -c 'BEGIN CERTIFICATE'" || true)
[[ $n == 2 ]] && ok "deb-1: nginx sends the leaf and the intermediate (chain.pem)" || not_ok "deb-1: nginx sends $n certificates"
guest_sh deb-1 "openssl s_client -connect 127.0.0.1:443 </dev/null 2>/dev/null | openssl x509 >/tmp/served.pem" >/dev/null
guest_exec deb-1 cat /tmp/served.pem >"$T/served.pem"
vc show "$s1" --pem >"$T/s1.pem"
cmp -s "$T/served.pem" "$T/s1.pem" && ok "deb-1: the served certificate is the issued one, byte for byte" || not_ok "deb-1: served certificate differs"
[[ $(guest_sh deb-1 "stat -c '%a %U' /etc/virtcert/tls/key.pem /etc/virtcert/tls/cert.pem /etc/virtcert/tls/chain.pem" | tr '\n' ' ') == "600 root 644 root 644 root " ]] &&
	ok "deb-1: key 0600, certificate and chain 0644" || not_ok "deb-1: modes: $(guest_sh deb-1 "stat -c '%a %U %n' /etc/virtcert/tls/*")"

vc renew deb-1 >/dev/null
wait_for 120 bash -c "s=\$(\"$VIRTCERT\" --config '$CONF' show deb-1 --json | jq -r '.domain | select(.state == \"DELIVERED\") | .current_serial'); [[ -n \$s && \$s != $s1 ]]" &&
	ok "deb-1: renewed and delivered" || { not_ok "deb-1: renewal not delivered"; vc show deb-1; }
s2=$(serial_of deb-1)
wait_for 30 serves deb-1 "$s2" && ok "deb-1: after renew nginx serves $s2" || not_ok "deb-1: after renew nginx serves $(served deb-1), not $s2"

# --- the locked-down agent: block-rpcs=guest-exec,guest-exec-status ----------
printf '[general]\nblock-rpcs=guest-exec,guest-exec-status\n' | guest_file_write deb-1 /etc/qemu/qemu-ga.conf
# systemd restarts the agent after this guest-exec has returned
guest_exec deb-1 /bin/systemctl --no-block restart qemu-guest-agent >/dev/null || true
exec_blocked() {
	guest_agent deb-1 '{"execute":"guest-info"}' 2>/dev/null |
		jq -e '.return.supported_commands[] | select(.name == "guest-exec") | .enabled == false' >/dev/null
}
wait_for 60 exec_blocked && ok "deb-1: the agent now blocks guest-exec" || not_ok "deb-1: the agent still allows guest-exec"

vc renew deb-1 >/dev/null
reload_not_run() {
	local j
	j=$(vc show deb-1 --json)
	[[ $(jq -r .domain.current_serial <<<"$j") != "$s2" && $(jq -r .domain.state <<<"$j") == DELIVERY_FAILED ]] &&
		jq -r .domain.last_error <<<"$j" | contains "reload could not run"
}
wait_for 120 reload_not_run &&
	ok "deb-1 (locked down): the state says the reload could not run: $(vc show deb-1 --json | jq -r .domain.last_error | head -c 160)" ||
	{ not_ok "deb-1 (locked down): no such state"; vc show deb-1; }
s3=$(serial_of deb-1)
guest_file_read deb-1 /etc/virtcert/tls/cert.pem >"$T/s3.guest"
vc show "$s3" --pem >"$T/s3.pem"
cmp -s "$T/s3.guest" "$T/s3.pem" && ok "deb-1 (locked down): certificate $s3 delivered with guest-file-* alone" ||
	not_ok "deb-1 (locked down): the guest's certificate is not $s3"
guest_file_read deb-1 /etc/virtcert/tls/chain.pem >"$T/s3.chain"
[[ $(grep -c 'BEGIN CERTIFICATE' "$T/s3.chain") == 2 ]] && cmp -s <(head -c "$(wc -c <"$T/s3.pem")" "$T/s3.chain") "$T/s3.pem" &&
	ok "deb-1 (locked down): chain.pem is the new leaf and the intermediate" || not_ok "deb-1 (locked down): chain.pem not updated"
[[ $(vc show "$s2" --json | jq -r .status) == valid ]] &&
	ok "deb-1 (locked down): the certificate nginx still serves ($s2) stays valid" || not_ok "deb-1 (locked down): $s2 was revoked"

qv destroy deb-1 >/dev/null
qv undefine deb-1 >/dev/null
echo "# the whole Debian guest test: $((SECONDS - t_start)) s"
finish
