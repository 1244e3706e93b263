#!/usr/bin/env python3
"""The reference man pages name exactly what the parsers accept.

    man-keys.py SOURCE_ROOT virtcert.conf.5 virtcert-policy.5

The accepted lists come from the parsers' own tables, read from the source:
  policy/vc-config.c      keys[]: {"GROUP", "KEY", KEY_...}
  policy/vc-policy.c      policy_keys[] ([PK_...] = {"KEY", ...}) and
                          match_keys[] (the selectors)
  policy/vc-domain-xml.c  the elements vc_domain_xml_parse_vm/_placement
                          accept (vc_domain_xml_name_is(c, "NAME")) and their
                          attribute tables (static const char *const *_attrs[])
The documented lists come from the rendered pages (man -l): in
virtcert.conf(5) a "KEY=" term under a "[GROUP]" heading; in
virtcert-policy(5) a "KEY=" term, and a "<virtcert:NAME>" term with its
attributes written as ATTR= in that term's paragraph. Both directions are
checked: a key the parser accepts and the page omits, and a key the page
documents that the parser refuses (a stale page)."""
import os
import re
import subprocess
import sys

root, conf_page, policy_page = sys.argv[1:4]
fails = 0


def fail(msg):
    global fails
    print("not ok - " + msg)
    fails += 1


def ok(msg):
    print("ok - " + msg)


def read(rel):
    with open(os.path.join(root, rel), encoding="utf-8") as f:
        return f.read()


def render(page):
    env = dict(os.environ, MANWIDTH="100", MAN_KEEP_FORMATTING="")
    out = subprocess.run(["man", "-l", page], env=env, check=True,
                         capture_output=True, text=True).stdout
    # no overstrike, whatever man's pager settings
    return re.sub(r".\x08", "", out).splitlines()


def function_body(src, name):
    m = re.search(r"^" + re.escape(name) + r"\(.*?^\}", src, re.S | re.M)
    if m is None:
        raise SystemExit(f"policy/vc-domain-xml.c: function {name} not found: update this test")
    return m.group(0)


# ---- what the parsers accept -------------------------------------------
config_src = read("policy/vc-config.c")
table = re.search(r"static const KeyDesc keys\[\] = \{(.*?)\n\};", config_src, re.S)
conf_keys = set(re.findall(r'\{"([a-z]+)", "([a-z][a-z-]*)", KEY_', table.group(1))) if table else set()

policy_src = read("policy/vc-policy.c")
pk = re.search(r"policy_keys\[PK_N\] = \{(.*?)\n\};", policy_src, re.S)
policy_keys = set(re.findall(r'\[PK_[A-Z_]+\] = \{"([a-z][a-z-]*)"', pk.group(1))) if pk else set()
mk = re.search(r"match_keys\[\d+\] = \{([^}]*)\}", policy_src)
match_keys = set(re.findall(r'"([a-z][a-z-]*)"', mk.group(1))) if mk else set()

xml_src = read("policy/vc-domain-xml.c")
elements = {"vm": set()}
for fn in ("vc_domain_xml_parse_vm", "vc_domain_xml_parse_placement",
           "vc_domain_xml_parse_signature"):
    body = function_body(xml_src, fn)
    for name in re.findall(r'vc_domain_xml_name_is\(c, "([a-z-]+)"\)', body):
        elements.setdefault(name, set())
    for var, attrs in re.findall(r"static const char \*const (\w+)\[\] = \{([^}]*)\}", body):
        names = re.findall(r'"([a-z-]+)"', attrs)
        if var == "single":
            continue
        # key_attrs -> <key>, issue_attrs -> <issue>, sig_attrs -> <signature>,
        # attrs -> the function's own element (<placement>)
        owner = {"sig": "signature", "attrs": "placement"}.get(var.replace("_attrs", ""),
                                                               var.replace("_attrs", ""))
        if var == "attrs" and fn.endswith("_signature"):
            owner = "signature"
        if owner != "no":
            elements.setdefault(owner, set()).update(names)

for what, got, least in (("virtcert.conf keys", conf_keys, 30), ("policy keys", policy_keys, 10),
                         ("policy selectors", match_keys, 3), ("metadata elements", elements, 10)):
    if len(got) < least:
        fail(f"read only {len(got)} {what} from the source (expected at least {least}): "
             "the table's form changed, update this test")
if fails:
    sys.exit(1)

# ---- what the pages document -------------------------------------------
TERM = re.compile(r"^ {7}([a-z][a-z-]*)=")
HEADING = re.compile(r"^ {3}\[([a-z]+)\]\s*$")
doc_conf = set()
group = None
for line in render(conf_page):
    h = HEADING.match(line)
    if h:
        group = h.group(1)
        continue
    if re.match(r"^[A-Z]", line):  # a new top-level section
        group = None
    t = TERM.match(line)
    if t and group:
        doc_conf.add((group, t.group(1)))

for g, k in sorted(conf_keys - doc_conf):
    fail(f"virtcert.conf(5) does not document [{g}] {k}")
for g, k in sorted(doc_conf - conf_keys):
    fail(f"virtcert.conf(5) documents [{g}] {k}, which vc-config.c does not accept")
if conf_keys == doc_conf:
    ok(f"virtcert.conf(5) documents the {len(conf_keys)} keys vc-config.c accepts, and no other")

policy_lines = render(policy_page)
doc_policy = set()
section = None
doc_elements = {}
current = None
for line in policy_lines:
    if re.match(r"^[A-Z]", line):
        section = line.strip()
        current = None
        continue
    if section in ("SELECTING VMS", "KEYS"):
        t = TERM.match(line)
        if t:
            doc_policy.add(t.group(1))
    elif section == "DOMAIN METADATA":
        e = re.match(r"^ {7}<virtcert:([a-z-]+)>", line)
        if e:
            current = e.group(1)
            doc_elements[current] = set()
        elif current and re.match(r"^ {14}", line):
            doc_elements[current].update(re.findall(r"([a-z][a-z-]*)=", line))
        else:
            current = None

accepted = policy_keys | match_keys
for k in sorted(accepted - doc_policy):
    fail(f"virtcert-policy(5) does not document the policy.d key {k}")
for k in sorted(doc_policy - accepted):
    fail(f"virtcert-policy(5) documents the policy.d key {k}, which vc-policy.c does not accept")
if accepted == doc_policy:
    ok(f"virtcert-policy(5) documents the {len(accepted)} policy.d keys vc-policy.c accepts, and no other")

for name in sorted(set(elements) - set(doc_elements)):
    fail(f"virtcert-policy(5) does not document <virtcert:{name}>")
for name in sorted(set(doc_elements) - set(elements)):
    fail(f"virtcert-policy(5) documents <virtcert:{name}>, which vc-domain-xml.c does not accept")
for name in sorted(set(elements) & set(doc_elements)):
    for a in sorted(elements[name] - doc_elements[name]):
        fail(f"virtcert-policy(5) does not document the attribute {a}= of <virtcert:{name}>")
    for a in sorted(doc_elements[name] - elements[name]):
        fail(f"virtcert-policy(5) documents {a}= on <virtcert:{name}>, which vc-domain-xml.c does not accept")
if fails == 0:
    ok(f"virtcert-policy(5) documents the {len(elements)} metadata elements and their attributes")
sys.exit(1 if fails else 0)
