#!/usr/bin/env bash
# virtcert-hook against the real virtcertd (libvirt test driver): every
# operation passes silently for a VM without policy; "migrate begin" and
# "prepare begin" (check-on-start) ask the daemon and refuse with the reason
# on stderr, never writing to stdout; hostile stdin; fail closed when the
# daemon does not answer, fail open only when configured.
source "$VC_SOURCE_ROOT/tests/lib/common.sh"

HOOK=${VIRTCERT_HOOK:-$VC_BUILD_ROOT/hooks/virtcert-hook}
[[ -x $HOOK ]] || { echo "virtcert-hook not built ($HOOK)"; exit 77; }

write_conf() { # write_conf [EXTRA HOOK LINES]
	vc_write_config libvirt-uri=test:///default "${VC_CONF_CA_URLS[@]}" "[hook]" timeout=2000 "$@"
}
write_conf

# the environment libvirt gives a hook: LC_ALL PATH HOME USER LOGNAME (plus
# the test-only config override)
hook() { # hook VM OP SUBOP < XML; stdout -> $T/hook.out, stderr -> $T/hook.err
	env -i LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root USER=root LOGNAME=root \
		VIRTCERT_HOOK_CONFIG="$CONF" "$HOOK" "$1" "$2" "$3" - >"$T/hook.out" 2>"$T/hook.err"
}
expect_hook() { # expect_hook STATUS DESCRIPTION VM OP SUBOP < XML
	local want=$1 d=$2 got=0
	shift 2
	hook "$@" || got=$?
	if [[ $got -ne $want ]]; then
		not_ok "$d: exit $got, wanted $want"; sed 's/^/    /' "$T/hook.err"
	elif [[ -s $T/hook.out ]]; then
		not_ok "$d: wrote to stdout"; sed 's/^/    /' "$T/hook.out"
	else
		ok "$d (exit $got)"
	fi
}

dom() { # dom NAME [VIRTCERT METADATA BODY]: a domain as libvirt hands it to a hook
	test_domain "$1" "${2:+<vc:vm xmlns:vc='urn:virtcert:domain:1'>$2</vc:vm>}" "$(cat /proc/sys/kernel/random/uuid)"
}
dom plain >"$T/plain.xml"

# 1. a VM without policy: every libvirt operation passes silently, with no
#    daemon running at all
all_silent=1
for op in prepare start started stopped release migrate restore reconnect attach; do
	for sub in begin end -; do
		rc=0
		hook plain "$op" "$sub" <"$T/plain.xml" || rc=$?
		if [[ $rc -ne 0 || -s $T/hook.out || -s $T/hook.err ]]; then
			all_silent=0
			echo "    $op $sub: exit $rc, stdout $(wc -c <"$T/hook.out"), stderr: $(cat "$T/hook.err")"
		fi
	done
done
((all_silent)) && ok "every operation/sub-operation exits 0 silently for a VM without policy (daemon down)" ||
	not_ok "silent pass for a VM without policy"

# 2. host certificate: site=eu-west, tier=confidential
vc host-ca init --dir "$T/hostca" >/dev/null
vc host enroll --ca "$T/hostca/ca.pem" --attr site=eu-west --attr tier=confidential --fqdn dest.example.com >/dev/null
vc host-ca sign "$STATE/host/host.csr" --dir "$T/hostca" --out "$T/host.pem" >/dev/null
check "host certificate imported" vc host import "$T/host.pem"
CA_FP=$(openssl x509 -in "$T/hostca/ca.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d :)

dom eu "<vc:name>{name}.vms.example.com</vc:name><vc:placement><vc:trust-ca>$CA_FP</vc:trust-ca><vc:require attr='site'>eu-west|eu-central</vc:require></vc:placement>" >"$T/eu.xml"
dom us "<vc:name>{name}.vms.example.com</vc:name><vc:placement><vc:require attr='site'>us-east</vc:require></vc:placement>" >"$T/us.xml"
dom otherca "<vc:placement><vc:trust-ca>$(printf '%064d' 0)</vc:trust-ca></vc:placement>" >"$T/otherca.xml"
dom gold "<vc:placement check-on-start='yes'><vc:require attr='tier'>gold</vc:require></vc:placement>" >"$T/gold.xml"
dom gold-nocheck "<vc:placement><vc:require attr='tier'>gold</vc:require></vc:placement>" >"$T/gold-nocheck.xml"
dom nameonly "<vc:name>{name}.vms.example.com</vc:name>" >"$T/nameonly.xml"

# 3. the daemon down: restricted VMs are refused (fail closed), fast
t0=$(date +%s%N)
expect_hook 1 "daemon down: migrate refused (fail closed)" eu migrate begin <"$T/eu.xml"
t1=$(date +%s%N)
grep -q "virtcert: refusing to migrate VM eu on this host: the virtcert daemon did not answer" "$T/hook.err" &&
	ok "... saying the daemon did not answer" || { not_ok "daemon down message"; cat "$T/hook.err"; }
(((t1 - t0) / 1000000 < 2500)) && ok "... within the timeout ($(((t1 - t0) / 1000000)) ms)" || not_ok "daemon down took $(((t1 - t0) / 1000000)) ms"
expect_hook 0 "a VM whose policy does not restrict placement never needs the daemon" nameonly migrate begin <"$T/nameonly.xml"

vc ca init --permit vms.example.com >/dev/null
check "virtcertd starts" start_daemon

# 4. placement through the daemon
expect_hook 0 "migrate begin: satisfying host allowed" eu migrate begin <"$T/eu.xml"
expect_hook 1 "migrate begin: unsatisfied rule refused" us migrate begin <"$T/us.xml"
grep -qx "virtcert: refusing to migrate VM us on this host: host attribute site=eu-west not in {us-east}" "$T/hook.err" &&
	ok "... with the reason on stderr" || { not_ok "refusal message"; cat "$T/hook.err"; }
expect_hook 1 "migrate begin: untrusted host CA refused" otherca migrate begin <"$T/otherca.xml"
grep -q "not trusted by the VM" "$T/hook.err" && ok "... naming the CA" || not_ok "CA refusal message"
expect_hook 0 "migrate end is not checked" us migrate end <"$T/us.xml"
expect_hook 0 "start begin is not checked" us start begin <"$T/us.xml"

# policy from policy.d, not metadata
cat >"$T/policy.d/10-pd.conf" <<'EOP'
[pd]
match-name=pd-*
names={name}.vms.example.com
require=site=us-west
EOP
dom pd-1 >"$T/pd.xml"
expect_hook 1 "policy.d placement rules are checked too" pd-1 migrate begin <"$T/pd.xml"

# check-on-start
expect_hook 1 "prepare begin with check-on-start: refused outside placement" gold prepare begin <"$T/gold.xml"
grep -q "refusing to start VM gold on this host: host attribute tier=confidential not in {gold}" "$T/hook.err" &&
	ok "... as a start" || { not_ok "start refusal message"; cat "$T/hook.err"; }
expect_hook 0 "prepare begin without check-on-start: not checked" gold-nocheck prepare begin <"$T/gold-nocheck.xml"
expect_hook 1 "... but its migration is" gold-nocheck migrate begin <"$T/gold-nocheck.xml"

# 4b. red-team finding 3: XML libvirt accepts is read (a text node over
#     4,096 octets, CDATA holding "<!DOCTYPE", a domain XML larger than a
#     control-socket request); strict only inside the virtcert element; a VM
#     that asked for a check is never let through unread
bigdom() { # bigdom NAME [VIRTCERT METADATA BODY]: a domain with 100 KiB of description and CDATA
	local desc
	desc=$(head -c 102400 /dev/zero | tr '\0' 'd')
	cat <<EOD
<domain type='test'>
  <name>$1</name>
  <uuid>$(cat /proc/sys/kernel/random/uuid)</uuid>
  <description>$desc</description>
  <metadata><app:cfg xmlns:app='urn:example:app'><![CDATA[<!DOCTYPE html><!ENTITY x 'y'>]]></app:cfg>${2:+<vc:vm xmlns:vc='urn:virtcert:domain:1'>$2</vc:vm>}</metadata>
  <memory unit='KiB'>65536</memory>
  <os><type arch='x86_64'>hvm</type></os>
</domain>
EOD
}
bigdom big-plain >"$T/big-plain.xml"
expect_hook 0 "no policy, 100 KiB description and CDATA with <!DOCTYPE: migrate allowed" big-plain migrate begin <"$T/big-plain.xml"
expect_hook 0 "... and started" big-plain prepare begin <"$T/big-plain.xml"
bigdom big-gold "<vc:placement check-on-start='yes'><vc:require attr='tier'>gold</vc:require></vc:placement>" >"$T/big-gold.xml"
expect_hook 1 "check-on-start with such XML: the daemon is asked and refuses the start" big-gold prepare begin <"$T/big-gold.xml"
grep -q "refusing to start VM big-gold on this host: host attribute tier=confidential not in {gold}" "$T/hook.err" &&
	ok "... with the placement reason (the XML was read)" || { not_ok "big-gold reason"; cat "$T/hook.err"; }
bigdom big-conf "<vc:placement check-on-start='yes'><vc:require attr='tier'>confidential</vc:require></vc:placement>" >"$T/big-conf.xml"
expect_hook 0 "check-on-start with such XML inside the placement: start allowed" big-conf prepare begin <"$T/big-conf.xml"
expect_hook 0 "... and its migration too" big-conf migrate begin <"$T/big-conf.xml"
bigdom big-broken "<vc:placement check-on-start='yes'><vc:require attr='tier'>gold</vc:require></vc:placement><vc:bogus/>" >"$T/big-broken.xml"
expect_hook 1 "unreadable virtcert metadata: the start is refused, never let through" big-broken prepare begin <"$T/big-broken.xml"
grep -q "may have asked for a placement check" "$T/hook.err" && grep -q "bogus" "$T/hook.err" &&
	ok "... saying why" || { not_ok "broken metadata message"; cat "$T/hook.err"; }

# 5. hostile stdin
head -c 4096 /dev/urandom >"$T/garbage"
expect_hook 1 "garbage stdin: migrate refused" eu migrate begin <"$T/garbage"
grep -q "cannot read the domain XML on stdin" "$T/hook.err" && ok "... with a clear message" || { not_ok "garbage message"; cat "$T/hook.err"; }
expect_hook 0 "garbage stdin: prepare passes (no virtcert element, no policy.d check-on-start)" eu prepare begin <"$T/garbage"
expect_hook 0 "garbage stdin: started passes" eu started begin <"$T/garbage"
cat >"$T/policy.d/20-cos.conf" <<'EOP'
[cos]
match-name=cos-*
check-on-start=yes
require=tier=gold
EOP
expect_hook 1 "garbage stdin with a policy.d check-on-start group: prepare refused" cos-1 prepare begin <"$T/garbage"
rm -f "$T/policy.d/20-cos.conf"
head -c $((10 * 1024 * 1024 + 1)) /dev/zero | tr '\0' ' ' >"$T/big"
expect_hook 1 "more than 10 MiB on stdin: refused" eu migrate begin <"$T/big"
grep -q "larger than 10 MiB" "$T/hook.err" && ok "... saying so" || { not_ok "big message"; cat "$T/hook.err"; }
expect_hook 1 "a DOCTYPE (entity tricks) is refused" eu migrate begin <<'EOX'
<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><domain><name>&x;</name></domain>
EOX

# 6. a daemon that hangs: refused after the hook timeout, not before, not never
kill -STOP "$DAEMON_PID"
t0=$(date +%s%N)
expect_hook 1 "hung daemon: migrate refused" eu migrate begin <"$T/eu.xml"
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
((ms >= 1800 && ms < 3500)) && ok "... after the 2 s timeout (${ms} ms)" || not_ok "hung daemon took ${ms} ms"
write_conf "fail-open=true"
expect_hook 0 "hung daemon with fail-open=true: allowed" eu migrate begin <"$T/eu.xml"
grep -q "fail-open" "$T/hook.err" && ok "... with a warning" || not_ok "fail-open warning"
write_conf
kill -CONT "$DAEMON_PID"
expect_hook 0 "daemon back: allowed again" eu migrate begin <"$T/eu.xml"

# 7. the host certificate revoked: the next migration is refused
vc host-ca revoke "$T/host.pem" --dir "$T/hostca" >/dev/null
vc host-ca crl --dir "$T/hostca" --out "$STATE/host/hostca.crl" >/dev/null
expect_hook 1 "revoked host certificate: migrate refused" eu migrate begin <"$T/eu.xml"
grep -q "revoked" "$T/hook.err" && ok "... saying revoked" || { not_ok "revoked message"; cat "$T/hook.err"; }
rm -f "$STATE/host/hostca.crl" "$STATE/host/host.pem"
expect_hook 1 "no host certificate: restricted VM refused" eu migrate begin <"$T/eu.xml"
grep -q "this host has no host certificate" "$T/hook.err" && ok "... saying so" || { not_ok "no host cert message"; cat "$T/hook.err"; }
expect_hook 0 "no host certificate: unrestricted VM allowed" nameonly migrate begin <"$T/nameonly.xml"

# 8. daemon stopped: socket gone, fail-open honoured
kill "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true
expect_hook 1 "daemon stopped: refused" eu migrate begin <"$T/eu.xml"
write_conf "fail-open=true"
expect_hook 0 "daemon stopped, fail-open=true: allowed" eu migrate begin <"$T/eu.xml"
finish
