/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define VC_NAME_LABEL_MAX 63
#define VC_NAME_DNS_MAX 253

/* Turns arbitrary UTF-8 (a VM name, a nova project name) into one valid DNS
 * label (RFC 1035 2.3.1 LDH, RFC 5890 A-label through g_hostname_to_ascii):
 * lower case, [a-z0-9-] only, no leading/trailing hyphen, at most 63 octets.
 * Characters that cannot be part of a label (spaces, punctuation, dots, control
 * characters) become '-', runs of '-' collapse. A label that would be too long
 * is cut and given a short hash suffix of the original so that two long names
 * sharing a prefix stay distinct. Fails with VC_ERROR_INVALID_NAME when
 * nothing usable remains (empty, only punctuation, invalid UTF-8). */
char *vc_name_label_from_string(const char *s, GError **error);

/* Checks a complete host name for a certificate dNSName: ASCII LDH labels
 * (A-labels allowed), each 1..63 octets, no leading/trailing hyphen, total
 * at most 253 octets, at least two labels, no wildcard, no trailing dot, no
 * empty label. Upper case is refused (names are stored lower case). */
gboolean vc_name_check_dns(const char *name, GError **error);

/* RFC 5280 4.2.1.10 dNSName constraint: name equals subtree or ends with
 * "." subtree (case-insensitive). A subtree beginning with "." matches only
 * proper subdomains. */
gboolean vc_name_in_subtree(const char *name, const char *subtree);

/* Variables a name template may use. Each value is converted to one DNS
 * label with vc_name_label_from_string() before substitution, so no value
 * can introduce a dot or another character. NULL means unknown: a template
 * that uses an unknown variable fails with VC_ERROR_INVALID_NAME. */
typedef struct {
	const char *name;	/* {name}: the libvirt domain name */
	const char *uuid;	/* {uuid}: the libvirt domain UUID (lower case) */
	const char *project;	/* {project}: nova project name */
	const char *project_id; /* {project-id}: nova project id */
	const char *user;	/* {user}: nova user name */
	const char *instance;	/* {instance}: nova instance display name */
} VcNameVars;

/* Expands a template such as "{name}.{project}.vms.example.com" and checks the
 * result with vc_name_check_dns(). Unknown variables, unbalanced braces and an
 * invalid result are errors naming the template. */
char *vc_name_expand(const char *tmpl, const VcNameVars *vars, GError **error);

/* Checks a template's syntax and literal text (every variable replaced by a
 * plain label): what vc_name_expand() would refuse whatever the VM. */
gboolean vc_name_template_check(const char *tmpl, GError **error);

/* Expands every template, drops exact duplicates (keeping order), and returns a
 * NULL-terminated list. */
GStrv vc_name_expand_all(const char *const *templates, const VcNameVars *vars, GError **error);

G_END_DECLS
