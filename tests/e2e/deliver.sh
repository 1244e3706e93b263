#!/usr/bin/env bash
# End to end on a real VM: virtcertd on a private QEMU libvirtd, the tiny TCG
# guest with the real qemu-ga. define with policy metadata -> start ->
# certificate, chain and key at the policy paths in the guest, the key matches,
# the chain verifies on the host -> guest reboot -> files correct again ->
# undefine -> revoked in the CRL. Host keygen and guest keygen; a VM whose
# agent answers garbage does not disturb the others.
source "$VC_SOURCE_ROOT/tests/e2e/lib.sh"
e2e_require
e2e_build_guest normal garbage
e2e_start_host a --no-ns

vc_write_config "libvirt-uri=$URI"
check "ca init" vc ca init --permit vms.example.com
check "virtcertd starts" start_daemon

dir=/etc/virtcert/tls
meta_host="<vc:vm xmlns:vc='urn:virtcert:domain:1'><vc:name>{name}.vms.example.com</vc:name><vc:delivery cert='$dir/cert.pem' chain='$dir/chain.pem' key='$dir/key.pem' owner='web:ssl-cert' reload='echo reloaded &gt; /run/reloaded'/></vc:vm>"
meta_guest="<vc:vm xmlns:vc='urn:virtcert:domain:1'><vc:name>{name}.vms.example.com</vc:name><vc:key type='ec-p256' mode='guest'/></vc:vm>"
e2e_define_vm bad --variant garbage --metadata "$meta_host" --start >/dev/null
e2e_define_vm web --metadata "$meta_host" --start >/dev/null
e2e_define_vm gk --metadata "$meta_guest" --start >/dev/null

delivered() { [[ $(vc show "$1" --json | jq -r .domain.state) == DELIVERED ]]; }
serial_of() { vc show "$1" --json | jq -r .domain.current_serial; }

# guest_files VM PREFIX: copies the guest's certificate, chain and key out
guest_files() {
	guest_exec "$1" cat "$dir/cert.pem" >"$T/$2.cert" &&
		guest_exec "$1" cat "$dir/chain.pem" >"$T/$2.chain" &&
		guest_exec "$1" cat "$dir/key.pem" >"$T/$2.key"
}
verify_guest_files() { # VM PREFIX SERIAL
	local vm=$1 p=$2 serial=$3
	guest_files "$vm" "$p" && ok "$vm: files readable in the guest" || { not_ok "$vm: files in the guest"; return; }
	vc show "$serial" --pem >"$T/$p.expected"
	cmp -s "$T/$p.cert" "$T/$p.expected" && ok "$vm: the guest has certificate $serial" || not_ok "$vm: the guest's certificate is not $serial"
	[[ $(openssl x509 -in "$T/$p.cert" -noout -pubkey) == $(openssl pkey -in "$T/$p.key" -pubout) ]] &&
		ok "$vm: the key matches the certificate" || not_ok "$vm: key and certificate differ"
	openssl verify -x509_strict -CAfile "$STATE/ca/root.pem" -untrusted "$T/$p.chain" "$T/$p.cert" >/dev/null &&
		ok "$vm: the chain verifies on the host" || not_ok "$vm: the chain does not verify"
}

wait_for 120 delivered web && ok "web: delivered after start" || { not_ok "web: not delivered"; vc show web; }
s1=$(serial_of web)
verify_guest_files web web1 "$s1"
[[ $(guest_sh web "stat -c '%a %U %G' $dir/key.pem") == "600 web ssl-cert" ]] && ok "web: key 0600 web:ssl-cert" || not_ok "web: key mode/owner: $(guest_sh web "stat -c '%a %U %G' $dir/key.pem")"
[[ $(guest_sh web "stat -c '%a' $dir/cert.pem") == 644 ]] && ok "web: certificate 0644" || not_ok "web: certificate mode"
[[ $(guest_sh web "cat /run/reloaded") == reloaded ]] && ok "web: the reload command ran" || not_ok "web: reload did not run"

wait_for 120 delivered gk && ok "gk (guest keygen): delivered" || { not_ok "gk: not delivered"; vc show gk; }
g1=$(serial_of gk)
verify_guest_files gk gk1 "$g1"

# the garbage agent: refused with a reason, the others were served meanwhile
st=$(vc show bad --json | jq -r .domain.state)
[[ $st != DELIVERED ]] && ok "bad (garbage agent): not delivered ($st)" || not_ok "bad was delivered?"
vc show bad --json | jq -e '.domain.last_error != null' >/dev/null && ok "bad: the reason is recorded: $(vc show bad --json | jq -r .domain.last_error | head -c 120)" || not_ok "bad: no reason recorded"

# a reboot loses the files (tmpfs): they come back, with a new certificate;
# `virtcert watch` timestamps agent-connected -> delivered
"$VIRTCERT" --config "$CONF" watch 2>/dev/null | while IFS= read -r line; do echo "$(date +%s.%N) $line"; done >"$T/watch.log" &
watcher=$!
cleanup_hooks+=("kill $watcher")
sleep 0.5
vm_reboot web
wait_for 120 bash -c "s=\$(\"$VIRTCERT\" --config '$CONF' show web --json | jq -r '.domain | select(.state == \"DELIVERED\") | .current_serial'); [[ -n \$s && \$s != $s1 ]]" &&
	ok "web: delivered again after the reboot" || { not_ok "web: not delivered after reboot"; vc show web; }
s2=$(serial_of web)
verify_guest_files web web2 "$s2"
t_agent=$(grep '"vm_name":"web"' "$T/watch.log" | grep -m1 'agent-connected' | cut -d' ' -f1)
t_done=$(grep '"vm_name":"web"' "$T/watch.log" | grep '"event":"delivered"' | tail -1 | cut -d' ' -f1)
if [[ -n $t_agent && -n $t_done ]]; then
	ok "web: agent connected -> new certificate verified in the guest: $(python3 -c "print(round(($t_done - $t_agent) * 1000))") ms (check, issue, deliver)"
else
	not_ok "web: no agent-connected/delivered events in the watch stream"; cat "$T/watch.log"
fi
wait_for 10 bash -c "[[ \$(\"$VIRTCERT\" --config '$CONF' show $s1 --json | jq -r .reason) == superseded ]]" &&
	ok "web: the lost certificate is revoked as superseded" || not_ok "web: old certificate not superseded"

# a reload command that fails: the new certificate is not counted as
# delivered and the old one stays valid; once the reload works, the retry
# (with backoff) delivers and only then supersedes the old certificate
state_is() { [[ $(vc show "$1" --json | jq -r .domain.state) == "$2" ]]; }
# virsh metadata --set takes the element without the namespace prefix
meta_plain() { echo "<vm><name>{name}.vms.example.com</name><delivery cert='$dir/cert.pem' chain='$dir/chain.pem' key='$dir/key.pem' owner='web:ssl-cert' reload='$1'/></vm>"; }
qv metadata web urn:virtcert:domain:1 --key vc --live --config --set "$(meta_plain 'exit 3')" >/dev/null
vc renew web >/dev/null
wait_for 60 state_is web DELIVERY_FAILED &&
	ok "web: a failing reload leaves it DELIVERY_FAILED: $(vc show web --json | jq -r .domain.last_error)" ||
	{ not_ok "web: a failing reload was not reported"; vc show web; }
[[ $(vc show "$s2" --json | jq -r .status) == valid ]] && ok "web: the old certificate stays valid while the reload fails" || not_ok "web: the old certificate was revoked before the reload worked"
qv metadata web urn:virtcert:domain:1 --key vc --live --config --set "$(meta_plain 'echo reloaded &gt; /run/reloaded')" >/dev/null
wait_for 120 state_is web DELIVERED && ok "web: delivered once the reload works" || { not_ok "web: not delivered after the reload was fixed"; vc show web; }
wait_for 10 bash -c "[[ \$(\"$VIRTCERT\" --config '$CONF' show $s2 --json | jq -r .reason) == superseded ]]" &&
	ok "web: only then is the old certificate superseded" || not_ok "web: old certificate not superseded after the retry"
s2=$(serial_of web)

# the benchmark against the real VM
if [[ -n $VIRTCERT_BENCH ]]; then
	"$VIRTCERT_BENCH" deliver --uri "$URI" --vm web --count 20 --json >"$T/bench.json" 2>&1 && cp "$T/bench.json" "${VC_BENCH_OUT:-/dev/null}" &&
		ok "bench deliver: $(jq -c "{deliver_p50_ms, deliver_p95_ms, deliver_file_only_p50_ms, deliver_file_only_p95_ms, ping_p50_ms}" "$T/bench.json")" || { not_ok "bench deliver"; cat "$T/bench.json"; }
else
	echo "# skip bench deliver: virtcert-bench is not built (-Dtest_seams=false)"
fi

# undefine: revoked, and the CRL says so
qv destroy web >/dev/null
qv undefine web >/dev/null
wait_for 10 bash -c "[[ \$(\"$VIRTCERT\" --config '$CONF' show $s2 --json | jq -r .reason) == cessationOfOperation ]]" &&
	ok "web: undefine revokes (cessationOfOperation)" || not_ok "web: undefine did not revoke"
vc crl --pem | openssl crl -noout -text | contains -i "Serial Number: ${s2^^}" && ok "the CRL lists it" || not_ok "the CRL does not list it"
finish
