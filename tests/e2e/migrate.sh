#!/usr/bin/env bash
# Placement enforcement and handover across real live migrations between
# private libvirtds ("hosts"), each in its own mount namespace with its own
# /etc/libvirt/hooks (virtcert-hook installed) and /etc/virtcert, each with
# its own virtcertd, local CA and host certificate from one lab host CA:
#   a: site=eu-west      b: site=eu-central      c: site=us-east (outside the
#   VM's placement)      d: no virtcert at all
# The VM trusts the host CA and requires site in {eu-west, eu-central}.
source "$VC_SOURCE_ROOT/tests/e2e/lib.sh"
e2e_require
HOOK_BIN=${VIRTCERT_HOOK:-$VC_BUILD_ROOT/hooks/virtcert-hook}
[[ -x $HOOK_BIN ]] || { echo "SKIP: $HOOK_BIN not built"; exit 77; }
check "the guest builds" e2e_build_guest normal

GRACE=8
"$VIRTCERT" host-ca init --dir "$T/hostca" --cn "virtcert test host CA" >/dev/null
HOSTCA="$T/hostca/ca.pem"
[[ -f $HOSTCA ]] || HOSTCA=$(ls "$T"/hostca/*.pem | head -1)
FP=$(openssl x509 -in "$HOSTCA" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr 'A-F' 'a-f')

declare -A SITE=([a]=eu-west [b]=eu-central [c]=us-east) PORT=() CONFH=() PIDH=()
hc() { local h=$1; shift; "$VIRTCERT" --config "${CONFH[$h]}" "$@"; }

# write_host_conf H [LINE...]: H's configuration, readable by its hook; the
# control socket in a directory E2E_USER can reach
write_host_conf() {
	local h=$1
	shift
	vc_write_config --file "${CONFH[$h]}" --dir "$T/$h" --control-socket "$T/$h-run/control.sock" \
		"control-group=$E2E_USER" "$@" \
		"[peer]" "address=127.0.0.1:${PORT[$h]}" "url=https://localhost:${PORT[$h]}" "handover-grace=${GRACE}s"
	chmod 0644 "${CONFH[$h]}"
}

# prepare_host H: its state, CA, host certificate, config and hook (before
# its libvirtd starts: libvirtd looks for hooks only when it starts)
prepare_host() {
	local h=$1 st="$T/$h"
	e2e_prepare_host "$h"
	mkdir -p "$st/policy.d" "$T/$h-run"
	chmod 0755 "$T/$h-run"
	PORT[$h]=$(e2e_free_port)
	CONFH[$h]="${E2E_ETC[$h]}/virtcert.conf"
	write_host_conf "$h"
	hc "$h" ca init --permit vms.example.com >/dev/null
	hc "$h" host enroll --ca "$HOSTCA" --attr "site=${SITE[$h]}" --fqdn localhost >/dev/null
	"$VIRTCERT" host-ca sign "$st/state/host/host.csr" --dir "$T/hostca" --out "$st/host.pem" >/dev/null
	hc "$h" host import "$st/host.pem" >/dev/null
	mkdir -p "${E2E_HOOKS[$h]}/qemu.d"
	install -m 0755 "$HOOK_BIN" "${E2E_HOOKS[$h]}/qemu.d/virtcert"
}
# start_virtcertd H: after its libvirtd, which gives the URI
start_virtcertd() {
	local h=$1
	write_host_conf "$h" "libvirt-uri=${E2E_URI[$h]}"
	"$VIRTCERTD" --config "${CONFH[$h]}" >>"$T/virtcertd-$h.log" 2>&1 &
	PIDH[$h]=$!
	cleanup_hooks+=("kill -TERM ${PIDH[$h]} 2>/dev/null")
	wait_for 10 hc "$h" status
}

for h in a b c; do check "host $h: CA, host certificate, hook" prepare_host "$h"; done
e2e_prepare_host d
for h in a b c d; do check "host $h starts" e2e_start_host "$h"; done
for h in a b c; do check "host $h: virtcertd starts" start_virtcertd "$h"; done

meta="<vc:vm xmlns:vc='urn:virtcert:domain:1'><vc:name>{name}.vms.example.com</vc:name><vc:placement><vc:trust-ca>$FP</vc:trust-ca><vc:require attr='site'>eu-west|eu-central</vc:require></vc:placement></vc:vm>"
on_host a e2e_define_vm mig --metadata "$meta" --start >/dev/null
state_on() { hc "$1" show mig --json 2>/dev/null | jq -r '.domain.state // empty'; }
serial_on() { hc "$1" show mig --json 2>/dev/null | jq -r '.domain.current_serial // empty'; }
status_of_serial() { hc "$1" show "$2" --json | jq -r '"\(.status) \(.reason)"'; }
delivered_on() { [[ $(state_on "$1") == DELIVERED ]]; }
revoked_as() { [[ $(hc "$1" show "$2" --json | jq -r .reason) == "$3" ]]; } # HOST SERIAL REASON
guest_has() { # HOST-OF-VM ISSUER-HOST: the guest's certificate is ISSUER's current one
	on_host "$1" guest_exec mig cat /etc/virtcert/tls/cert.pem >"$T/g.pem" 2>/dev/null &&
		hc "$2" show "$(serial_on "$2")" --pem | cmp -s - "$T/g.pem"
}

wait_for 120 delivered_on a && ok "a: the VM's certificate is delivered" || { not_ok "a: not delivered"; hc a show mig; }
a1=$(serial_on a)

# 1. a -> b: trusted; b issues and delivers, then claims; a's is superseded
migrate() { e2e_migrate mig "$1" "$2" >"$T/mig.out" 2>&1; }
migrate a b && ok "migration a -> b (eu-central, trusted)" || { not_ok "migration a -> b"; cat "$T/mig.out"; }
wait_for 120 delivered_on b && ok "b: a new certificate from b's CA is delivered" || { not_ok "b: not delivered"; hc b show mig; }
b1=$(serial_on b)
wait_for 20 revoked_as a "$a1" superseded &&
	ok "a: its certificate is revoked as superseded after b's claim" || { not_ok "a: not superseded: $(status_of_serial a "$a1")"; tail -5 "$T/virtcertd-a.log"; }
guest_has b b && ok "the guest holds b's certificate" || not_ok "the guest does not hold b's certificate"
[[ $(state_on a) == HANDED_OVER ]] && ok "a: HANDED_OVER" || not_ok "a: state $(state_on a)"
grep -q "migration announcement for VM .* (serial $a1) from localhost .*: accepted" "$T/virtcertd-a.log" &&
	ok "b's hook check announced the migration to a before memory moved" || not_ok "a saw no announcement from b"

# 2. b -> a: the chain back
migrate b a && ok "migration b -> a" || { not_ok "migration b -> a"; cat "$T/mig.out"; }
wait_for 120 delivered_on a &&
	ok "a: a new certificate is delivered again" || { not_ok "a: not delivered after b -> a"; hc a show mig; }
a2=$(serial_on a)
[[ -n $a2 && $a2 != "$a1" ]] && ok "a: a new serial ($a2)" || not_ok "a: same serial"
wait_for 20 revoked_as b "$b1" superseded &&
	ok "b: its certificate is superseded after a's claim" || not_ok "b: $(status_of_serial b "$b1")"

# a claim with nothing but a trusted host certificate and curl (c's): 403,
# and a's certificate stays valid
uuid=$(hc a show mig --json | jq -r .domain.uuid)
code=$(curl -sS -o "$T/forge.out" -w '%{http_code}' --cacert "$HOSTCA" --cert "$T/c/state/host/host.pem" \
	--key "$T/c/state/host/host.key" -H 'Content-Type: application/json' \
	--data "{\"vm_uuid\": \"$uuid\", \"serial\": \"$a2\"}" "https://localhost:${PORT[a]}/peer/v1/handover")
[[ $code == 403 ]] && ok "a forged claim from c is refused: 403 ($(head -c 80 "$T/forge.out"))" || not_ok "forged claim: $code $(cat "$T/forge.out")"
[[ $(status_of_serial a "$a2") == "valid null" ]] && ok "a: its certificate stays valid" || not_ok "a: $(status_of_serial a "$a2")"

# 3. a -> c: outside the placement: the hook on c refuses before anything moves
if migrate a c; then
	not_ok "migration a -> c was not refused"
else
	grep -q "site" "$T/mig.out" && ok "migration a -> c refused by c's hook: $(grep -o 'virtcert:.*' "$T/mig.out" | head -1 | cut -c1-150)" || { not_ok "refused, but without the reason"; cat "$T/mig.out"; }
fi
[[ $(on_host a vm_state mig) == running ]] && ok "the VM still runs on a" || not_ok "the VM is not running on a"
[[ $(status_of_serial a "$a2") == "valid null" ]] && ok "a: its certificate stays valid" || not_ok "a: $(status_of_serial a "$a2")"

# c's host certificate without the attribute, expired, or from a host CA the
# VM does not trust: refused each time, before anything moves
refuse_to_c() { # WHAT
	if migrate a c; then
		not_ok "migration a -> c ($1) was not refused"
	else
		ok "migration a -> c refused, $1: $(grep -o 'refusing to migrate VM mig on this host: .*' "$T/mig.out" | head -1 | cut -d: -f2- | cut -c1-110)"
	fi
}
reissue_c() { # HOSTCA-DIR SIGN-OPTIONS... (then the enroll attributes after --)
	local dir=$1
	shift
	local sign=() attrs=()
	while (($# > 0)) && [[ $1 != -- ]]; do sign+=("$1"); shift; done
	(($# > 0)) && shift
	attrs=("$@")
	hc c host enroll --force --ca "$dir/ca.pem" "${attrs[@]}" --fqdn localhost >/dev/null &&
		"$VIRTCERT" host-ca sign "$T/c/state/host/host.csr" --dir "$dir" "${sign[@]}" --out "$T/c/host.pem" >/dev/null &&
		cp "$T/c/host.pem" "$T/c/state/host/host.pem"
}
if reissue_c "$T/hostca" --; then refuse_to_c "no site attribute"; else not_ok "c: new host certificate without attributes"; fi
if reissue_c "$T/hostca" --days 0 -- --attr site=eu-west; then refuse_to_c "expired host certificate"; else not_ok "c: expired host certificate"; fi
"$VIRTCERT" host-ca init --dir "$T/otherca" --cn "another host CA" >/dev/null
if reissue_c "$T/otherca" -- --attr site=eu-west; then refuse_to_c "host CA the VM does not trust"; else not_ok "c: host certificate from another CA"; fi
[[ $(on_host a vm_state mig) == running ]] && ok "the VM still runs on a" || not_ok "the VM is not running on a"

# 4. b's host certificate revoked: b refuses too
"$VIRTCERT" host-ca revoke "$T/b/host.pem" --dir "$T/hostca" >/dev/null
"$VIRTCERT" host-ca crl --dir "$T/hostca" --out "$T/b/state/host/hostca.crl" >/dev/null
if migrate a b; then
	not_ok "migration to b with a revoked host certificate was not refused"
else
	ok "migration a -> b refused: b's host certificate is revoked ($(grep -o 'virtcert:.*' "$T/mig.out" | head -1 | cut -c1-120))"
fi

# 5. a -> d (no virtcert): nobody claims; a revokes after the grace period
migrate a d && ok "migration a -> d (no virtcert)" || { not_ok "migration a -> d"; cat "$T/mig.out"; }
wait_for $((GRACE + 20)) revoked_as a "$a2" privilegeWithdrawn &&
	ok "a: revoked (privilegeWithdrawn) when no claim came within ${GRACE}s" || not_ok "a: $(status_of_serial a "$a2")"
hc a crl --pem | openssl crl -noout -text | grep -qi "Serial Number: ${a2^^}" && ok "a's CRL lists it" || not_ok "a's CRL does not list it"
finish
