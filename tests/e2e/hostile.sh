#!/usr/bin/env bash
# A hostile guest through the real channel: a TCG guest whose agent port
# answers with bytes and no newline, without end (the `flood` guest), beside
# an honest guest with the real qemu-ga, both on a private QEMU libvirtd. The
# reply reaches virtcertd through libvirt (virDomainQemuAgentCommand), which
# holds an agent reply whole up to its own 10 MiB limit
# (docs/guest-agent.md, "Hostile guests"): the flood VM's state names the
# fault, the honest VM gets its certificate, virtcertd's VmHWM stays bounded
# and libvirtd lives on. The socket-channel cases are in
# tests/integration/hostile-guest.sh.
source "$VC_SOURCE_ROOT/tests/e2e/lib.sh"
e2e_require
e2e_build_guest normal flood
e2e_start_host a --no-ns

vc_write_config "libvirt-uri=$URI" "[guest]" timeout=30s command-timeout=10s
check "ca init" vc ca init --permit vms.example.com
check "virtcertd starts" start_daemon
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$DAEMON_PID/status"; }
hwm0=$(hwm)

dir=/etc/virtcert/tls
meta="<vc:vm xmlns:vc='urn:virtcert:domain:1'><vc:name>{name}.vms.example.com</vc:name><vc:delivery cert='$dir/cert.pem' chain='$dir/chain.pem' key='$dir/key.pem'/></vc:vm>"
e2e_define_vm flood --variant flood --metadata "$meta" --start >/dev/null
e2e_define_vm honest --metadata "$meta" --start >/dev/null
lvpid=$(cat "${E2E_HOST_DIR[a]}/libvirtd.pid")

state_is() { [[ $(vc show "$1" --json | jq -r .domain.state) == "$2" ]]; }
flood_failed() { vc show flood --json | jq -e '.domain.state == "DELIVERY_FAILED" and (.domain.last_error // "" | length > 0)' >/dev/null; }

wait_for 180 state_is honest DELIVERED && ok "honest: delivered beside the flooding guest" ||
	{ not_ok "honest: not delivered"; vc show honest; }
if wait_for 180 flood_failed; then
	ok "flood: $(vc show flood --json | jq -r .domain.last_error | head -c 200)"
else
	not_ok "flood: $(vc show flood --json | jq -c .domain)"
fi
wait_for 60 grep -q 'starting the flood agent' "$(vm_console flood)" &&
	ok "flood: the guest runs the flood agent" || not_ok "flood: the guest did not start its agent"
hwm1=$(hwm)
# libvirt gives up at 10 MiB; virtcertd holds at most that much at once
(((hwm1 - hwm0) < 24 * 1024)) && ok "virtcertd's VmHWM: $hwm0 -> $hwm1 KiB" || not_ok "virtcertd's VmHWM grew from $hwm0 to $hwm1 KiB"
kill -0 "$lvpid" && ok "libvirtd lives on (VmHWM $(awk '/^VmHWM/ {print $2}' "/proc/$lvpid/status") KiB)" || not_ok "libvirtd died"
kill -0 "$DAEMON_PID" && ok "virtcertd lives on" || not_ok "virtcertd died"
finish
