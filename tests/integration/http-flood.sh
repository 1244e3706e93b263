#!/usr/bin/env bash
# A flood cannot take the daemon down. virtcertd runs with a descriptor
# limit of 256 while a local client keeps 400 idle TCP connections to its
# HTTP port open (reconnecting each one the daemon closes): the control
# socket (`virtcert status`) and the hook's placement check still answer,
# and once the flood ends HTTP answers again. A slow-loris client (headers
# that never end) is dropped at the header timeout while others are served;
# a control-socket client holding half a request line is dropped at the
# control timeout. Prints the time `virtcert status` took during the flood
# and the time HTTP needed to answer after it.
source "$VC_SOURCE_ROOT/tests/lib/common.sh"

HOOK=${VIRTCERT_HOOK:-$VC_BUILD_ROOT/hooks/virtcert-hook}
[[ -x $HOOK ]] || { echo "virtcert-hook not built ($HOOK)"; exit 77; }
for tool in curl python3 prlimit; do
	command -v $tool >/dev/null || { echo "$tool missing (scripts/deps test)"; exit 77; }
done

NOFILE=256
FLOOD=400
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
vc_write_config libvirt-uri=test:///default control-timeout=2s "${VC_CONF_CA_URLS[@]}" \
	"[http]" header-timeout=3s idle-timeout=3s request-timeout=10s "[hook]" timeout=2000
sed -i "s|^http-address=\$|http-address=127.0.0.1:$PORT|" "$CONF"

# the clients: flood HOST PORT N STATUS_FILE | slowloris HOST PORT | halfline SOCKET
cat >"$T/clients.py" <<'EOP'
import os, resource, selectors, socket, sys, time

def flood(host, port, n, status):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sel = selectors.DefaultSelector()
    def open_one():
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((host, port))
        sel.register(s, selectors.EVENT_READ)
    for _ in range(n):
        open_one()
    closed = 0
    last = 0
    while True:
        for key, _ in sel.select(timeout=0.1):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:  # the daemon closed it (refused or timed out): again
                sel.unregister(s)
                s.close()
                closed += 1
                open_one()
        if time.monotonic() - last > 0.2:
            last = time.monotonic()
            with open(status + ".tmp", "w") as f:
                f.write(f"{len(sel.get_map())} {closed}\n")
            os.replace(status + ".tmp", status)

def slowloris(host, port):
    s = socket.create_connection((host, port))
    s.settimeout(0.5)
    start = time.monotonic()
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    while time.monotonic() - start < 60:
        try:
            if s.recv(4096) == b"":
                break
        except socket.timeout:
            try:
                s.sendall(b"a")  # one more byte of a header that never ends
            except OSError:
                break
        except OSError:
            break
    print(f"{time.monotonic() - start:.2f}")

def halfline(path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    start = time.monotonic()
    s.sendall(b'{"id":1,"method":"status"')
    s.settimeout(60)
    data = s.recv(4096)
    print(f"{time.monotonic() - start:.2f} {len(data)}")

{"flood": lambda a: flood(a[0], int(a[1]), int(a[2]), a[3]),
 "slowloris": lambda a: slowloris(a[0], int(a[1])),
 "halfline": lambda a: halfline(a[0])}[sys.argv[1]](sys.argv[2:])
EOP
clients() { python3 "$T/clients.py" "$@"; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
metric() { # metric NAME_WITH_LABELS: its value in /metrics (empty if none)
	{ curl -sf --max-time 2 "$URL/metrics" || true; } | awk -v m="$1" '$1 == m { print $2 }'
}

# a host certificate, and a VM whose placement this host satisfies: the
# hook must allow its migration (as in hook.sh)
vc host-ca init --dir "$T/hostca" >/dev/null
vc host enroll --ca "$T/hostca/ca.pem" --attr site=eu-west --fqdn dest.example.com >/dev/null
vc host-ca sign "$STATE/host/host.csr" --dir "$T/hostca" --out "$T/host.pem" >/dev/null
vc host import "$T/host.pem" >/dev/null
CA_FP=$(openssl x509 -in "$T/hostca/ca.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d :)
test_domain eu "<vc:vm xmlns:vc='urn:virtcert:domain:1'><vc:name>{name}.vms.example.com</vc:name><vc:placement><vc:trust-ca>$CA_FP</vc:trust-ca><vc:require attr='site'>eu-west</vc:require></vc:placement></vc:vm>" \
	"$(cat /proc/sys/kernel/random/uuid)" >"$T/eu.xml"
hook_migrate() {
	env -i LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin VIRTCERT_HOOK_CONFIG="$CONF" \
		"$HOOK" eu migrate begin - <"$T/eu.xml" >"$T/hook.out" 2>"$T/hook.err"
}

vc ca init --permit vms.example.com >/dev/null
CA_ID=$(vc ca show --json | jq -r .id)

# the daemon with a low descriptor limit (soft and hard: it cannot raise it)
prlimit --nofile=$NOFILE:$NOFILE "$VIRTCERTD" --config "$CONF" >>"$T/virtcertd.log" 2>&1 &
DAEMON_PID=$!
cleanup_hooks+=("kill -TERM $DAEMON_PID 2>/dev/null; wait $DAEMON_PID 2>/dev/null")
check "virtcertd starts with RLIMIT_NOFILE $NOFILE" wait_for 10 vc status
check "HTTP answers before the flood" wait_for 10 curl -sf --max-time 2 "$URL/metrics" -o /dev/null
CAP=$(metric 'virtcert_http_max_connections{listener="http"}')
if [[ -n $CAP ]] && ((CAP > 0 && CAP < NOFILE && CAP < FLOOD)); then
	ok "the HTTP cap ($CAP) fits in the descriptor limit ($NOFILE), below the flood ($FLOOD)"
else
	not_ok "HTTP cap '$CAP' with RLIMIT_NOFILE $NOFILE"
fi
grep -q "connections capped at" "$T/virtcertd.log" && ok "... and the daemon said it lowered its caps" ||
	not_ok "no message about the lowered caps"

# the same questions without a flood, for comparison
t0=$(date +%s%N)
vc status >/dev/null
IDLE_STATUS_MS=$(ms_since "$t0")
t0=$(date +%s%N)
if hook_migrate; then ok "the hook allows the migration (no flood)"; else not_ok "hook: $(cat "$T/hook.err")"; fi
IDLE_HOOK_MS=$(ms_since "$t0")

# 1. the flood
# python3 itself in the background (not a shell function's subshell), so
# that killing $FLOODER ends the flood
python3 "$T/clients.py" flood 127.0.0.1 "$PORT" "$FLOOD" "$T/flood.status" &
FLOODER=$!
cleanup_hooks+=("kill $FLOODER")
flooding() { [[ -s $T/flood.status ]] && read -r open closed <"$T/flood.status" && ((open == FLOOD && closed > FLOOD - CAP)); }
# the positive signal: the daemon has refused what is beyond its cap
check "the flood is on: $FLOOD connections held, those beyond the cap closed by the daemon" wait_for 20 flooding
read -r _ closed_at_start <"$T/flood.status"

t0=$(date +%s%N)
check "virtcert status answers during the flood" vc status
STATUS_MS=$(ms_since "$t0")
((STATUS_MS < 2000)) && ok "... in $STATUS_MS ms" || not_ok "virtcert status took $STATUS_MS ms during the flood"
t0=$(date +%s%N)
if hook_migrate; then ok "the hook allows the migration during the flood"; else not_ok "hook during the flood: $(cat "$T/hook.err")"; fi
HOOK_MS=$(ms_since "$t0")
((HOOK_MS < 2000)) && ok "... in $HOOK_MS ms (its timeout: 2000)" || not_ok "the hook took $HOOK_MS ms during the flood"
# still flooding: the daemon keeps refusing and timing out what is over
sleep 4
read -r open closed <"$T/flood.status"
((open == FLOOD && closed > closed_at_start)) && ok "the flood went on ($closed connections closed by the daemon and reopened)" ||
	not_ok "flood status: $open open, $closed closed (at start $closed_at_start)"
t0=$(date +%s%N)
check "virtcert status still answers after $((4 + STATUS_MS / 1000)) s of flood" vc status
STATUS2_MS=$(ms_since "$t0")
kill -0 "$DAEMON_PID" && ok "the daemon is alive" || not_ok "the daemon died"

# 2. the flood ends: HTTP answers again, at once
kill "$FLOODER"
wait "$FLOODER" 2>/dev/null || true
t0=$(date +%s%N)
check "HTTP answers again after the flood" wait_for 10 curl -sf --max-time 1 "$URL/metrics" -o /dev/null
RECOVERY_MS=$(ms_since "$t0")
((RECOVERY_MS < 2000)) && ok "... within $RECOVERY_MS ms" || not_ok "HTTP needed $RECOVERY_MS ms to answer after the flood"
if curl -sf --max-time 2 "$URL/crl/$CA_ID.crl" -o "$T/crl.der" && openssl crl -inform DER -in "$T/crl.der" -noout; then
	ok "/crl/$CA_ID.crl serves a CRL"
else
	not_ok "no CRL after the flood"
fi
REFUSED=$(metric 'virtcert_http_connections_refused_total{listener="http"}')
((${REFUSED:-0} > 0)) && ok "/metrics counts the refused connections ($REFUSED)" || not_ok "refused counter: '$REFUSED'"
grep -q "the most allowed (max-connections)" "$T/virtcertd.log" && ok "the journal has a warning about the cap" ||
	not_ok "no warning about the cap in the log"
WARNINGS=$(grep -c "the most allowed (max-connections)" "$T/virtcertd.log")
((WARNINGS <= 3)) && ok "... rate-limited ($WARNINGS warning(s) for $REFUSED refusals)" || not_ok "$WARNINGS cap warnings"

# 3. a slow loris is dropped at the header timeout (3 s); others are served meanwhile
python3 "$T/clients.py" slowloris 127.0.0.1 "$PORT" >"$T/slowloris.out" &
LORIS=$!
sleep 0.5
t0=$(date +%s%N)
check "HTTP serves others while a slow loris drips its headers" curl -sf --max-time 1 "$URL/metrics" -o /dev/null
SERVED_MS=$(ms_since "$t0")
wait "$LORIS" || true
LORIS_S=$(cat "$T/slowloris.out")
if awk -v s="$LORIS_S" 'BEGIN { exit !(s >= 2.5 && s < 8) }'; then
	ok "the slow loris was dropped after $LORIS_S s (header timeout 3 s)"
else
	not_ok "slow loris: dropped after '$LORIS_S' s, wanted about 3"
fi
TIMED_OUT=$(metric 'virtcert_http_connections_timed_out_total{listener="http"}')
((${TIMED_OUT:-0} > 0)) && ok "/metrics counts the timed-out connections ($TIMED_OUT)" || not_ok "timed-out counter: '$TIMED_OUT'"

# 4. half a control request is dropped at the control timeout (2 s)
read -r HALF_S HALF_BYTES < <(clients halfline "$T/control.sock")
if awk -v s="$HALF_S" 'BEGIN { exit !(s >= 1.5 && s < 6) }' && [[ $HALF_BYTES == 0 ]]; then
	ok "half a control request line was dropped after $HALF_S s (control-timeout 2 s)"
else
	not_ok "half line: dropped after '$HALF_S' s with '$HALF_BYTES' bytes of answer"
fi
[[ $(metric virtcert_control_connections_timed_out_total) -ge 1 ]] &&
	ok "/metrics counts it" || not_ok "control timed-out counter"
check "virtcert status answers after all that" vc status

echo "# measured: virtcert status during the flood ${STATUS_MS} ms (again after 4 s: ${STATUS2_MS} ms;" \
	"${IDLE_STATUS_MS} ms without a flood), hook ${HOOK_MS} ms (${IDLE_HOOK_MS} ms without);" \
	"HTTP answered ${RECOVERY_MS} ms after the flood ended;" \
	"cap $CAP of RLIMIT_NOFILE $NOFILE, $REFUSED refused; /metrics during a slow loris ${SERVED_MS} ms"
finish
