#!/usr/bin/env python3
"""Runs a command under a unit's system call filter, the way systemd would.

    seccomp-exec.py [--filter SPEC]... [--error-number NAME] [--families AF...] -- CMD...

--filter is a SystemCallFilter= value: names and @groups; a value starting
with "~" removes them (a first "~" value makes a deny list). Groups are
expanded with `systemd-analyze syscall-filter`, so they are systemd's own.
--families is RestrictAddressFamilies=: socket() with another family fails.
--error-number is SystemCallErrorNumber= (default: the call kills the
process, as with systemd). Native architecture only (SystemCallArchitectures=
native: a call of another ABI kills the process)."""
import errno
import os
import socket
import subprocess
import sys

import seccomp

args = sys.argv[1:]
filters, families, errname = [], None, None
while args and args[0] != "--":
    opt = args.pop(0)
    if opt == "--filter":
        filters.append(args.pop(0))
    elif opt == "--families":
        families = args.pop(0).split()
    elif opt == "--error-number":
        errname = args.pop(0)
    else:
        sys.exit(f"seccomp-exec: unknown option {opt}")
if not args or len(args) < 2:
    sys.exit("usage: seccomp-exec.py [--filter SPEC]... [--families AF...] -- CMD...")
cmd = args[1:]

groups = {}


def expand(name, seen=None):
    """The system calls of NAME (a call or an @group, recursively)."""
    if not name.startswith("@"):
        return {name}
    if name not in groups:
        out = subprocess.run(["systemd-analyze", "syscall-filter", name], check=True,
                             capture_output=True, text=True).stdout
        members = []
        for line in out.splitlines()[1:]:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            members.append(line.split()[0])
        if not members:
            sys.exit(f"seccomp-exec: systemd-analyze knows no group {name}")
        groups[name] = members
    calls = set()
    for m in groups[name]:
        calls |= expand(m)
    return calls


allow_list = None  # None: a deny list
denied = set()
for spec in filters:
    for word in spec.split():
        neg = word.startswith("~")
        if neg:
            word = word[1:]
        calls = expand(word)
        if allow_list is None and not neg and not denied:
            allow_list = set()
        if neg:
            if allow_list is not None:
                allow_list -= calls
            else:
                denied |= calls
        else:
            allow_list = (allow_list or set()) | calls

if errname is not None:
    fail_action = seccomp.ERRNO(getattr(errno, errname))
else:
    fail_action = seccomp.KILL_PROCESS

if allow_list is not None:
    f = seccomp.SyscallFilter(defaction=fail_action)
    rules = allow_list
    rule_action = seccomp.ALLOW
else:
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    rules = denied
    rule_action = fail_action

if families is not None and (allow_list is None or "socket" in rules):
    # socket() only with the listed families; the rest fail EAFNOSUPPORT
    rules = set(rules) - {"socket"}
    nums = sorted(getattr(socket, fam) for fam in families)
    if allow_list is not None:
        for n in nums:
            f.add_rule(seccomp.ALLOW, "socket", seccomp.Arg(0, seccomp.EQ, n))
        # every other family (below 64; AF_MAX is 46 here) fails EAFNOSUPPORT,
        # as with systemd
        for fam in range(0, 64):
            if fam not in nums:
                f.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket",
                           seccomp.Arg(0, seccomp.EQ, fam))

skipped = []
for name in sorted(rules):
    try:
        f.add_rule(rule_action, name)
    except (RuntimeError, ValueError, OSError):
        skipped.append(name)  # not a call of this architecture
f.load()
os.execvp(cmd[0], cmd)
