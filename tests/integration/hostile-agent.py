#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A hostile QEMU guest agent for tests/integration/hostile-guest.sh.

Listens on a unix socket, as `qemu-ga -m unix-listen -p SOCKET` does, speaks
the agent's wire protocol (one JSON object per line each way; 0xFF and
guest-sync-delimited to resynchronize) and misbehaves as MODE says:

  huge          answers guest-info with one line of --size bytes
  endless       answers guest-info with bytes and no newline, until hung up
  utf8          answers guest-info with invalid UTF-8 inside a JSON string
  utf8-escape   refuses guest-exec with an error whose desc holds a lone
                surrogate escape and control characters
  types         answers guest-exec with {"pid": "12"} (a string)
  other-ids     answers every guest-sync-delimited with an earlier id
  extra-reply   after the sync, sends a stray reply carrying an earlier sync
                id before the real answer (so the command reads a reply
                that belongs to another request)
  drip          answers guest-info one byte per second
  disconnect    answers guest-info with half a line, then hangs up
  exec-forever  guest-exec works; guest-exec-status says exited: false forever
  no-sync       answers guest-sync-delimited with junk and never 0xFF
  swap-before   runs guest-exec for real but swaps the certificate it was
                given for another, longer one before writing it
  swap-after    runs guest-exec for real, then replaces --swap-file once the
                delivery reported success (a time-of-check swap)
  csr           answers the keygen guest-exec with the CSR in --csr
  flap          --count times: create the socket, accept and drop one
                connection or wait --flap-ms, remove it; then stay away

Every mode answers guest-ping and (unless it is the mode's target)
guest-info honestly. Counters go to --stats (JSON) on every change:
connections, commands, bytes_sent. Runs until SIGTERM.
"""
import argparse
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

COMMANDS = ["guest-ping", "guest-info", "guest-file-open", "guest-file-write",
            "guest-file-close", "guest-file-seek", "guest-file-read", "guest-exec",
            "guest-exec-status", "guest-sync-delimited"]
INFO = {"return": {"version": "7.2.0", "supported_commands": [
    {"name": c, "enabled": True, "success-response": True} for c in COMMANDS]}}

stats = {"connections": 0, "commands": 0, "bytes_sent": 0, "flaps": 0}
stats_lock = threading.Lock()


def bump(key, n=1):
    with stats_lock:
        stats[key] += n
        if ARGS.stats:
            tmp = ARGS.stats + ".tmp"
            with open(tmp, "w") as f:
                json.dump(stats, f)
            os.replace(tmp, ARGS.stats)


def send(conn, data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    conn.sendall(data)
    bump("bytes_sent", len(data))


def reply(conn, obj):
    send(conn, json.dumps(obj) + "\n")


class Session:
    """One connection: what the daemon sent, and the processes it started."""

    def __init__(self, conn):
        self.conn = conn
        self.procs = {}
        self.last_sync = 1

    def exec_real(self, args):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        for e in args.get("env", []):
            k, _, v = e.partition("=")
            if ARGS.mode == "swap-before" and k.startswith("VC_"):
                v = v.replace("-----BEGIN CERTIFICATE-----\n",
                              "-----BEGIN CERTIFICATE-----\nU1dBUFBFRA==\n", 1)
            env[k] = v
        capture = args.get("capture-output", False)
        p = subprocess.Popen([args["path"]] + args.get("arg", []), env=env,
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                             stderr=subprocess.PIPE if capture else subprocess.DEVNULL)
        self.procs[p.pid] = p
        return {"return": {"pid": p.pid}}

    def exec_status_real(self, pid):
        p = self.procs.get(pid)
        if p is None:
            return {"error": {"class": "GenericError", "desc": "Invalid parameter 'pid'"}}
        out, err = p.communicate()
        del self.procs[pid]
        r = {"exited": True, "exitcode": p.returncode}
        if out is not None:
            r["out-data"] = base64.b64encode(out).decode()
            r["err-data"] = base64.b64encode(err).decode()
        if (ARGS.mode == "swap-after" and ARGS.swap_file and p.returncode == 0
                and os.path.exists(ARGS.swap_file)
                and not os.path.exists(ARGS.swap_file + ".swapped")):
            # the delivery's success is on its way to the host: now the swap
            with open(ARGS.swap_file, "w") as f:
                f.write("-----BEGIN CERTIFICATE-----\nU1dBUFBFRA==\n-----END CERTIFICATE-----\n")
            open(ARGS.swap_file + ".swapped", "w").close()
        return {"return": r}

    def command(self, cmd):
        mode = ARGS.mode
        name = cmd.get("execute", "")
        args = cmd.get("arguments") or {}
        if name == "guest-sync-delimited":
            sid = args.get("id")
            if mode == "no-sync":
                while True:
                    send(self.conn, b"x" * 65536)
            if mode == "other-ids":
                reply_id = self.last_sync
                self.last_sync = sid
                send(self.conn, b"\xff" + (json.dumps({"return": reply_id}) + "\n").encode())
                return
            send(self.conn, b"\xff" + (json.dumps({"return": sid}) + "\n").encode())
            if mode == "extra-reply":
                reply(self.conn, {"return": self.last_sync})
            self.last_sync = sid
            return
        bump("commands")
        if name == "guest-ping":
            return reply(self.conn, {"return": {}})
        if name == "guest-info":
            if mode == "huge":
                send(self.conn, '{"return": {"version": "')
                chunk = b"A" * 65536
                left = ARGS.size
                while left > 0:
                    send(self.conn, chunk[:left])
                    left -= len(chunk)
                return send(self.conn, '"}}\n')
            if mode == "endless":
                while True:
                    send(self.conn, b"A" * 65536)
            if mode == "utf8":
                return send(self.conn, b'{"return": {"version": "\xff\xfe\xc3\x28", '
                            b'"supported_commands": []}}\n')
            if mode == "drip":
                for b in json.dumps(INFO).encode() + b"\n":
                    send(self.conn, bytes([b]))
                    time.sleep(1)
                return
            if mode == "disconnect":
                text = json.dumps(INFO).encode()
                send(self.conn, text[: len(text) // 2])
                raise ConnectionResetError("hung up mid-write")
            return reply(self.conn, INFO)
        if name == "guest-exec":
            if mode == "utf8-escape":
                return send(self.conn, '{"error": {"class": "GenericError", "desc": '
                            '"\\ud800x\\u0007\\u001b[31mred\\u0000"}}\n')
            if mode == "types":
                return reply(self.conn, {"return": {"pid": "12"}})
            if mode == "exec-forever":
                return reply(self.conn, {"return": {"pid": 4242}})
            if mode == "csr":
                return reply(self.conn, {"return": {"pid": 4243}})
            if mode in ("swap-before", "swap-after"):
                return reply(self.conn, self.exec_real(args))
        if name == "guest-exec-status":
            if mode == "exec-forever":
                return reply(self.conn, {"return": {"exited": False}})
            if mode == "csr":
                with open(ARGS.csr, "rb") as f:
                    csr = f.read()
                return reply(self.conn, {"return": {
                    "exited": True, "exitcode": 0,
                    "out-data": base64.b64encode(csr).decode(),
                    "err-data": ""}})
            if mode in ("swap-before", "swap-after"):
                return reply(self.conn, self.exec_status_real(args.get("pid")))
        return reply(self.conn, {"error": {"class": "CommandNotFound",
                                           "desc": "The command %s has not been found" % name}})

    def run(self):
        buf = b""
        try:
            while True:
                data = self.conn.recv(65536)
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    line = line.lstrip(b"\xff")
                    if not line.strip():
                        continue
                    try:
                        cmd = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(cmd, dict):
                        self.command(cmd)
        except OSError:
            return
        finally:
            self.conn.close()


def listen(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(16)
    return s


def serve(path):
    s = listen(path)
    while True:
        conn, _ = s.accept()
        bump("connections")
        threading.Thread(target=Session(conn).run, daemon=True).start()


def flap(path):
    """The agent comes and goes: each round the socket appears (libvirt
    would report agent-connected), takes at most one connection and drops it,
    then vanishes (agent-disconnected)."""
    for _ in range(ARGS.count):
        s = listen(path)
        s.settimeout(ARGS.flap_ms / 1000.0)
        try:
            conn, _ = s.accept()
            bump("connections")
            conn.close()
        except socket.timeout:
            pass
        s.close()
        os.unlink(path)
        bump("flaps")
    with open(ARGS.stats + ".done", "w") as f:
        f.write("done\n")
    while True:
        time.sleep(3600)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("mode")
    ap.add_argument("--size", type=int, default=100 << 20)
    ap.add_argument("--csr")
    ap.add_argument("--swap-file")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--flap-ms", type=int, default=5)
    ap.add_argument("--stats")
    ARGS = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if ARGS.stats:
        bump("connections", 0)
    if ARGS.mode == "flap":
        flap(ARGS.socket)
    else:
        serve(ARGS.socket)


ARGS = None
if __name__ == "__main__":
    sys.exit(main())
