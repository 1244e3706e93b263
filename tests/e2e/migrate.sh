#!/usr/bin/env bash
# Placement enforcement and handover across real live migrations between
# private libvirtds ("hosts"), each in its own mount namespace with its own
# /etc/libvirt/hooks (virtcert-hook installed) and /etc/virtcert, each with
# its own virtcertd, local CA and host certificate from one lab host CA:
#   a: site=eu-west      b: site=eu-central      c: site=us-east (outside the
#   VM's placement)      d: no virtcert at all
# The VM trusts the host CA and requires site in {eu-west, eu-central}.
# Migration memory moves over QEMU's TLS with the host certificates where it
# can (a, b, d: the files `virtcert host install-libvirt-tls` writes, in each
# host's own directory named by its qemu.conf, peers verified): b requires it
# (migrate_tls_force, [placement] require-tls=yes); d, without any hook, is
# the TLS barrier alone (a certificate from another host CA, expired, or a
# source its CRL revokes: QEMU's handshake fails; d itself revoked: the
# source libvirt's qemu+tls:// handshake of a peer-to-peer migration fails). The same guest is timed over TLS and over
# plain tcp:// between a and d.
source "$VC_SOURCE_ROOT/tests/e2e/lib.sh"
e2e_require
HOOK_BIN=${VIRTCERT_HOOK:-$VC_BUILD_ROOT/hooks/virtcert-hook}
[[ -x $HOOK_BIN ]] || { echo "SKIP: $HOOK_BIN not built"; exit 77; }
check "the guest builds" e2e_build_guest normal

# longer than the slowest migration here (TLS at load 24 took 17.9 s): the
# announcement, made before memory moves, must be younger than the grace
# when the VM leaves (docs/peer-api.md)
GRACE=30
"$VIRTCERT" host-ca init --dir "$T/hostca" --cn "virtcert test host CA" >/dev/null
HOSTCA="$T/hostca/ca.pem"
[[ -f $HOSTCA ]] || HOSTCA=$(ls "$T"/hostca/*.pem | head -1)
FP=$(openssl x509 -in "$HOSTCA" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr 'A-F' 'a-f')

declare -A SITE=([a]=eu-west [b]=eu-central [c]=us-east) PORT=() CONFH=() PIDH=()
hc() { local h=$1; shift; "$VIRTCERT" --config "${CONFH[$h]}" "$@"; }

# write_host_conf H [LINE...]: H's configuration, readable by its hook; the
# control socket in a directory E2E_USER can reach
write_host_conf() {
	local h=$1 tls=()
	shift
	[[ $h == b ]] && tls=("[placement]" "require-tls=yes" "qemu-conf=${E2E_HOST_DIR[b]}/config/libvirt/qemu.conf")
	vc_write_config --file "${CONFH[$h]}" --dir "$T/$h" --control-socket "$T/$h-run/control.sock" \
		"control-group=$E2E_USER" "$@" "${tls[@]}" \
		"[peer]" "address=127.0.0.1:${PORT[$h]}" "url=https://localhost:${PORT[$h]}" "handover-grace=${GRACE}s"
	chmod 0644 "${CONFH[$h]}"
}

# setup_tls H CONF [QEMU.CONF LINE]: H's migration TLS files as `virtcert host
# install-libvirt-tls` writes them (below H's own directory, the QEMU keys
# given to the group QEMU runs as) and the qemu.conf naming them; before
# H's libvirtd starts (it reads qemu.conf then; QEMU reads the files at
# every migration)
QGROUP=$(id -gn "$E2E_USER" 2>/dev/null || echo "$E2E_USER")
tls_dir() { echo "${E2E_HOST_DIR[$1]}/tls/etc/pki/qemu"; }
install_tls() { # H CONF
	"$VIRTCERT" --config "$2" host install-libvirt-tls --root "${E2E_HOST_DIR[$1]}/tls" --qemu-group "$QGROUP" --force >/dev/null
}
setup_tls() {
	local h=$1
	install_tls "$h" "$2" || return 1
	cat >"${E2E_HOST_DIR[$h]}/config/libvirt/qemu.conf" <<EOC
default_tls_x509_cert_dir = "$(tls_dir "$h")"
default_tls_x509_verify = 1
migrate_tls_x509_cert_dir = "$(tls_dir "$h")"
migrate_tls_x509_verify = 1
${3:-}
EOC
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
# d: a host certificate (its own key, from the same host CA) for QEMU's TLS,
# no virtcertd, no hook: its configuration is not in its /etc/virtcert
CONFD="$T/d.conf"
hd() { "$VIRTCERT" --config "$CONFD" "$@"; }
mkdir -p "$T/d/policy.d"
vc_write_config --file "$CONFD" --dir "$T/d"
# d's name: libvirt refuses a peer-to-peer migration to a URI whose host
# begins with "localhost" ("Attempt to migrate guest to the same host"), so
# d is d.e2e.test, which a's namespace resolves to 127.0.0.1 (its own
# /etc/hosts); QEMU's TLS to d checks that name (--tls-destination)
D_NAME=d.e2e.test
TLS_D=(--tls --tls-destination "$D_NAME")
{ cat /etc/hosts; echo "127.0.0.1 $D_NAME"; } >"$T/hosts-a"
chmod 0644 "$T/hosts-a"
E2E_ETC_HOSTS[a]="$T/hosts-a"
d_cert() { # CA-DIR [SIGN OPTIONS]: d's new key, and a certificate for it in $T/d/host.pem
	local dir=$1
	shift
	hd host enroll --force --ca "$dir/ca.pem" --attr site=eu-west --fqdn "$D_NAME" >/dev/null &&
		"$VIRTCERT" host-ca sign "$T/d/state/host/host.csr" --dir "$dir" "$@" --out "$T/d/host.pem" >/dev/null
}
d_cert "$T/hostca" && hd host import "$T/d/host.pem" >/dev/null
check "host a: migration TLS files and qemu.conf" setup_tls a "${CONFH[a]}"
check "host b: migration TLS files and qemu.conf (migrate_tls_force)" setup_tls b "${CONFH[b]}" "migrate_tls_force = 1"
check "host d: migration TLS files and qemu.conf" setup_tls d "$CONFD"
# d's libvirtd also listens for libvirt's own TLS connections (qemu+tls://,
# which a peer-to-peer migration uses between the libvirtds): an
# unprivileged libvirtd accepts --listen; its libvirtd.conf names the files
# install-libvirt-tls writes in the pkipath layout, given to its user
D_PKI="${E2E_HOST_DIR[d]}/libvirt-pki"
D_TLS_PORT=$(e2e_free_port)
d_listener() { # d's libvirtd's TLS files from d's current host certificate
	hd host install-libvirt-tls --root "${E2E_HOST_DIR[d]}/tls" --qemu-group "$QGROUP" \
		--pkipath "$D_PKI" --owner "$E2E_USER" --force >/dev/null &&
		cp "$T/d/host.pem" "$T/d/listener.pem"
}
check "host d: libvirt's TLS files (install-libvirt-tls --pkipath)" d_listener
cat >>"${E2E_HOST_DIR[d]}/config/libvirt/libvirtd.conf" <<EOC
listen_tls = 1
listen_tcp = 0
listen_addr = "127.0.0.1"
tls_port = "$D_TLS_PORT"
auth_tls = "none"
ca_file = "$D_PKI/cacert.pem"
cert_file = "$D_PKI/servercert.pem"
key_file = "$D_PKI/serverkey.pem"
crl_file = "$D_PKI/cacrl.pem"
EOC
E2E_LISTEN[d]=1
[[ -f $(tls_dir a)/ca-crl.pem ]] && not_ok "a: a CRL file without a host CA CRL" || true
for h in a b c d; do check "host $h starts" e2e_start_host "$h"; done
for h in a b c; do check "host $h: virtcertd starts" start_virtcertd "$h"; done
grep -q "migrations only over TLS (\[placement\] require-tls): .* sets migrate_tls_force = 1" "$T/virtcertd-b.log" &&
	ok "b: virtcertd found its qemu.conf forcing TLS" || not_ok "b: virtcertd did not check qemu.conf"

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

# 1. a -> b over TLS: trusted; b issues and delivers, then claims; a's is superseded
migrate() { e2e_migrate mig "$@" >"$T/mig.out" 2>&1; }
TLS=(--tls --tls-destination localhost) # the name in the destination's host certificate
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
t0=$(date +%s%N)
migrate a b "${TLS[@]}" && ok "migration a -> b (eu-central, trusted) over TLS with the host certificates: $(ms_since "$t0") ms" ||
	{ not_ok "migration a -> b over TLS"; cat "$T/mig.out"; }
wait_for 120 delivered_on b && ok "b: a new certificate from b's CA is delivered" || { not_ok "b: not delivered"; hc b show mig; }
b1=$(serial_on b)
wait_for 20 revoked_as a "$a1" superseded &&
	ok "a: its certificate is revoked as superseded after b's claim" || { not_ok "a: not superseded: $(status_of_serial a "$a1")"; tail -5 "$T/virtcertd-a.log"; }
guest_has b b && ok "the guest holds b's certificate" || not_ok "the guest does not hold b's certificate"
[[ $(state_on a) == HANDED_OVER ]] && ok "a: HANDED_OVER" || not_ok "a: state $(state_on a)"
grep -q "migration announcement for VM .* (serial $a1) from localhost .*: accepted" "$T/virtcertd-a.log" &&
	ok "b's hook check announced the migration to a before memory moved" || not_ok "a saw no announcement from b"

# 2. b -> a: the chain back; b (migrate_tls_force) refuses to send without TLS
if migrate b a; then
	not_ok "b sent the VM over plain tcp:// despite migrate_tls_force"
else
	grep -q "only with VIR_MIGRATE_TLS" "$T/mig.out" && ok "b -> a over plain tcp:// refused by b's libvirt (migrate_tls_force)" ||
		{ not_ok "b -> a plain refused, but not for TLS"; cat "$T/mig.out"; }
fi
migrate b a "${TLS[@]}" && ok "migration b -> a over TLS" || { not_ok "migration b -> a over TLS"; cat "$T/mig.out"; }
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

# 5. d has no hook: QEMU's TLS is the only barrier. A destination whose host
# certificate is expired or from another host CA fails the handshake, and so
# does a source whose certificate the destination's CRL lists
tls_refused() { # WHAT
	if migrate a d "${TLS_D[@]}"; then
		not_ok "migration a -> d over TLS with $1 was not refused"
	elif grep -qiE "certificate|TLS|handshake" "$T/mig.out"; then
		ok "migration a -> d refused by the TLS handshake, $1: $(grep -oiE '[^:]*(certificate|TLS|handshake)[^:]*' "$T/mig.out" | head -1 | cut -c1-110)"
	else
		not_ok "migration a -> d with $1 failed, but not in TLS"; cat "$T/mig.out"
	fi
	[[ $(on_host a vm_state mig) == running ]] || not_ok "the VM no longer runs on a after the refusal ($1)"
}
# expired: a new key, a certificate expired at once (no virtcert command
# installs that: copied into d's QEMU directory by hand)
if d_cert "$T/hostca" --days 0; then
	for f in server client; do
		install -m 0644 "$T/d/host.pem" "$(tls_dir d)/$f-cert.pem"
		install -m 0640 -g "$QGROUP" "$T/d/state/host/host.key" "$(tls_dir d)/$f-key.pem"
	done
	tls_refused "an expired host certificate"
else
	not_ok "d: expired host certificate"
fi
# revoked: QEMU checks revocation on its server side only (it loads
# ca-crl.pem for its server endpoint, not for the client that sends the
# memory), so the barrier is the destination refusing a source its CRL lists
# (a revoked destination is refused by its own hook, case 4, and by the
# source's libvirt connection over qemu+tls://, which reads cacrl.pem). d gets
# a CRL of the host CA that lists a's host certificate, made from a copy of
# the host CA, so that a's own daemon keeps a valid one
if d_cert "$T/hostca" && hd host import "$T/d/host.pem" >/dev/null && install_tls d "$CONFD"; then
	cp -a "$T/hostca" "$T/hostca-later"
	"$VIRTCERT" host-ca revoke "$T/a/host.pem" --dir "$T/hostca-later" >/dev/null
	"$VIRTCERT" host-ca crl --dir "$T/hostca-later" --out "$T/d/state/host/hostca.crl" >/dev/null
	hd host install-libvirt-tls --root "${E2E_HOST_DIR[d]}/tls" --qemu-group "$QGROUP" >/dev/null &&
		cmp -s <(openssl crl -in "$(tls_dir d)/ca-crl.pem" -outform DER) <(openssl crl -in "$T/d/state/host/hostca.crl" -outform DER) &&
		ok "d: install-libvirt-tls put the host CA's CRL beside QEMU's CA (ca-crl.pem), no --force needed" ||
		not_ok "d: ca-crl.pem not written"
	tls_refused "a source (a) whose host certificate the destination's CRL lists"
	rm -f "$T/d/state/host/hostca.crl" "$(tls_dir d)/ca-crl.pem" "${E2E_HOST_DIR[d]}/tls/etc/pki/CA/cacrl.pem"
else
	not_ok "d: a valid host certificate for the revocation case"
fi
# another host CA (d trusts that one; a does not)
if d_cert "$T/otherca" && hd host import "$T/d/host.pem" >/dev/null && install_tls d "$CONFD"; then
	tls_refused "a host certificate from another host CA"
else
	not_ok "d: host certificate from another host CA"
fi
[[ $(status_of_serial a "$a2") == "valid null" ]] && ok "a: its certificate stays valid through the refusals" || not_ok "a: $(status_of_serial a "$a2")"

# 5b. a revoked destination without a hook: QEMU does not check it (above);
# libvirt's own TLS connection does. In a peer-to-peer migration over
# qemu+tls:// a's libvirtd connects to d's libvirtd TLS listener, and
# libvirt's GnuTLS client checks d's server certificate against a's
# cacrl.pem (virnettlscontext.c loads the CRL on the client side too). The
# host CA revokes the certificate d's listener presents; a installs the CRL
# and writes its libvirt client files (pkipath) with it
A_PKI="${E2E_HOST_DIR[a]}/libvirt-pki"
p2p_to_d() { # a -> d peer-to-peer, over qemu+tls:// (a's pkipath) and QEMU's TLS
	local port
	port=$(e2e_free_port) || return 1
	virsh -q -c "${E2E_URI[a]}" migrate --live --p2p --persistent --undefinesource "${TLS_D[@]}" mig \
		"qemu+tls://$D_NAME:$D_TLS_PORT/session?pkipath=$A_PKI" \
		--migrateuri "tcp://127.0.0.1:$port" >"$T/mig.out" 2>&1
}
a_libvirtd_log="${E2E_HOST_DIR[a]}/cache/libvirt/libvirtd.log"
t_case=$(date +%s%N)
d_serial=$(openssl x509 -in "$T/d/listener.pem" -noout -serial | cut -d= -f2)
"$VIRTCERT" host-ca revoke "$T/d/listener.pem" --dir "$T/hostca" >/dev/null &&
	"$VIRTCERT" host-ca crl --dir "$T/hostca" --out "$T/a/state/host/hostca.crl" >/dev/null &&
	hc a host install-libvirt-tls --root "${E2E_HOST_DIR[a]}/tls" --qemu-group "$QGROUP" \
		--pkipath "$A_PKI" --owner "$E2E_USER" >/dev/null &&
	openssl crl -in "$A_PKI/cacrl.pem" -noout -text | contains -i "Serial Number: $d_serial" &&
	ok "a: its libvirt client files (pkipath) hold the host CA's CRL listing d's certificate ($d_serial)" ||
	not_ok "a: no CRL listing d in its libvirt client files"
log_mark=$(wc -l <"$a_libvirtd_log" 2>/dev/null || echo 0)
if p2p_to_d; then
	not_ok "p2p migration a -> d with d's certificate revoked was not refused"
elif grep -q "Failed to verify peer's certificate" "$T/mig.out" &&
	tail -n +"$((log_mark + 1))" "$a_libvirtd_log" | grep -q "Certificate failed validation: The certificate has been revoked"; then
	ok "p2p migration a -> d refused by a's libvirt TLS handshake, d's certificate ($d_serial) revoked: $(grep -o 'error: .*' "$T/mig.out" | head -1 | cut -c1-90); a's libvirtd: $(tail -n +"$((log_mark + 1))" "$a_libvirtd_log" | grep -o 'Certificate failed validation: .*' | head -1)"
else
	not_ok "p2p migration a -> d failed, but not for d's revoked certificate"; cat "$T/mig.out"; tail -5 "$a_libvirtd_log"
fi
[[ $(on_host a vm_state mig) == running ]] && ok "the VM still runs on a" || not_ok "the VM no longer runs on a"
[[ $(status_of_serial a "$a2") == "valid null" ]] && ok "a: the VM's certificate stays valid" || not_ok "a: $(status_of_serial a "$a2")"
hc a host show >/dev/null && ok "a: its own host certificate passes its self-check with the new CRL" || not_ok "a: host self-check fails"

# then a valid one: a new certificate for d (its QEMU and its libvirtd
# listener, which reads it when it starts; no VM runs on d) and the same
# p2p migration, a's CRL still in place: it succeeds, so the refusal above
# was the CRL. Nobody claims; a revokes after the grace period
d_cert "$T/hostca" && hd host import "$T/d/host.pem" >/dev/null && install_tls d "$CONFD" && d_listener &&
	e2e_restart_host d || not_ok "d: a valid host certificate again"
echo "# the revoked-destination case (5b) took $(ms_since "$t_case") ms"
t0=$(date +%s%N)
p2p_to_d && ok "migration a -> d (no virtcert) peer-to-peer over qemu+tls:// and QEMU's TLS, a's CRL in place: $(ms_since "$t0") ms" ||
	{ not_ok "p2p migration a -> d over TLS"; cat "$T/mig.out"; }
wait_for $((GRACE + 20)) revoked_as a "$a2" privilegeWithdrawn &&
	ok "a: revoked (privilegeWithdrawn) when no claim came within ${GRACE}s" || not_ok "a: $(status_of_serial a "$a2")"
hc a crl --pem | openssl crl -noout -text | contains -i "Serial Number: ${a2^^}" && ok "a's CRL lists it" || not_ok "a's CRL does not list it"

# 6. the cost of TLS: the same guest between the same hosts, each direction
# over plain tcp:// and over TLS, one after the other
declare -A MS=()
for leg in "d a plain" "a d plain" "d a tls" "a d tls"; do
	read -r from to how <<<"$leg"
	opts=()
	[[ $how == tls && $to == d ]] && opts=("${TLS_D[@]}")
	[[ $how == tls && $to != d ]] && opts=("${TLS[@]}")
	t0=$(date +%s%N)
	if migrate "$from" "$to" "${opts[@]}"; then
		MS[$from$to$how]=$(ms_since "$t0")
	else
		not_ok "timed migration $from -> $to ($how)"; cat "$T/mig.out"; MS[$from$to$how]=null
	fi
done
ok "migration time of the same guest: d -> a plain ${MS[daplain]} ms, TLS ${MS[datls]} ms; a -> d plain ${MS[adplain]} ms, TLS ${MS[adtls]} ms"
echo "# {\"bench\":\"migration-tls\",\"guest_mib\":192,\"d_to_a_plain_ms\":${MS[daplain]},\"d_to_a_tls_ms\":${MS[datls]},\"a_to_d_plain_ms\":${MS[adplain]},\"a_to_d_tls_ms\":${MS[adtls]},\"loadavg_1m\":$(cut -d' ' -f1 /proc/loadavg)}"
finish
