/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "vc-error.h"
#include "vc-name.h"

/* Length of the hash suffix appended to names cut to 63 octets: 8 decimal
 * digits (from SHA-256 of the original string) keep names that share a long
 * prefix apart without eating much of the label. Digits rather than hex so
 * that a right-to-left label may still end with the suffix (RFC 5893 rule 3
 * allows European numbers at the end, not Latin letters). */
#define VC_NAME_HASH_LEN 8

/* The conversion rules, in order (deterministic: the same input always gives
 * the same label, on every host and every version that keeps these rules):
 *
 *  1. The input must be valid UTF-8 and is NFKC-normalised and lower-cased,
 *     so "ＷＥＢ" and "web" are the same label.
 *  2. Letters, digits and combining marks (of any script) are kept; every
 *     other character (space, punctuation, dots, symbols and emoji, control
 *     characters) becomes '-'. Runs of '-' collapse to one and leading and
 *     trailing '-' are dropped. This is lossy: "web 1", "web_1" and "web-1"
 *     all give "web-1"; the store refuses a name already held by another VM.
 *     Collapsing also removes every "--", so an input cannot forge the
 *     reserved "??--" label forms (RFC 5891 4.2.3.1) such as "xn--".
 *  3. An input that already is a valid A-label ("xn--bcher-kva") is kept as
 *     is: it is what its U-label ("bücher") converts to anyway.
 *  4. A label with non-ASCII characters becomes an A-label with
 *     g_hostname_to_ascii() (RFC 5890/5891). A label with right-to-left
 *     letters must satisfy the RFC 5893 bidi rule (approximated by script:
 *     starts with an RTL letter, ends with an RTL letter or a digit, holds no
 *     left-to-right letters); when it does not, or IDNA fails, the non-ASCII
 *     characters are dropped and the hash suffix of rule 5 is always added.
 *  5. A label longer than 63 octets is cut (in characters, before IDNA
 *     encoding, so an A-label is never cut in the middle) and given the suffix
 *     "-" + 8 decimal digits: the first 32 bits of SHA-256 of the ORIGINAL
 *     input, big-endian, modulo 10^8. */

static const GUnicodeScript rtl_scripts[] = {
    G_UNICODE_SCRIPT_HEBREW,  G_UNICODE_SCRIPT_ARABIC, G_UNICODE_SCRIPT_SYRIAC,
    G_UNICODE_SCRIPT_THAANA,  G_UNICODE_SCRIPT_NKO,    G_UNICODE_SCRIPT_SAMARITAN,
    G_UNICODE_SCRIPT_MANDAIC, G_UNICODE_SCRIPT_ADLAM,  G_UNICODE_SCRIPT_HANIFI_ROHINGYA,
};

static gboolean
vc_name_char_is_rtl(gunichar c)
{
	GUnicodeScript script = g_unichar_get_script(c);
	for (gsize i = 0; i < G_N_ELEMENTS(rtl_scripts); i++)
		if (script == rtl_scripts[i])
			return g_unichar_isalpha(c);
	return FALSE;
}

static gboolean
vc_name_char_is_label(gunichar c)
{
	if (c < 0x80)
		return g_ascii_isalnum((char)c);
	/* letters, digits and combining marks of any script */
	return g_unichar_isalnum(c) || g_unichar_ismark(c);
}

/* RFC 5893 section 2, approximated with scripts since GLib has no bidi
 * classes: an RTL label starts with an RTL letter, ends with an RTL letter or
 * a digit (marks may follow), and holds no LTR letter. */
static gboolean
vc_name_bidi_rule_ok(const char *u)
{
	gboolean has_rtl = FALSE;
	gunichar first = 0, last = 0;
	for (const char *p = u; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		if (vc_name_char_is_rtl(c))
			has_rtl = TRUE;
		if (first == 0)
			first = c;
		if (!g_unichar_ismark(c))
			last = c;
	}
	if (!has_rtl)
		return TRUE;
	if (!vc_name_char_is_rtl(first))
		return FALSE;
	if (!vc_name_char_is_rtl(last) && !g_unichar_isdigit(last))
		return FALSE;
	for (const char *p = u; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		if (g_unichar_isalpha(c) && !vc_name_char_is_rtl(c) && !g_unichar_ismark(c))
			return FALSE;
	}
	return TRUE;
}

/* Maps S (valid, normalised UTF-8) by rule 2. */
static char *
vc_name_map_separators(const char *s, gboolean ascii_only)
{
	GString *out = g_string_new(NULL);
	gboolean dash = TRUE; /* drops leading '-' */
	for (const char *p = s; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		if (vc_name_char_is_label(c) && (!ascii_only || c < 0x80)) {
			g_string_append_unichar(out, c);
			dash = FALSE;
		} else if (!dash) {
			g_string_append_c(out, '-');
			dash = TRUE;
		}
	}
	if (out->len > 0 && out->str[out->len - 1] == '-')
		g_string_truncate(out, out->len - 1);
	return g_string_free(out, FALSE);
}

static gboolean
vc_name_is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((guchar)*s >= 0x80)
			return FALSE;
	return TRUE;
}

/* RFC 1035 2.3.1 LDH label, 1..63 octets, lower case, no leading or trailing
 * hyphen. */
static gboolean
vc_name_ldh_label_ok(const char *l, gsize len)
{
	if (len == 0 || len > VC_NAME_LABEL_MAX)
		return FALSE;
	if (l[0] == '-' || l[len - 1] == '-')
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		char c = l[i];
		if (!(g_ascii_islower(c) || g_ascii_isdigit(c) || c == '-'))
			return FALSE;
	}
	return TRUE;
}

/* RFC 5891 4.2.3.1: "??--" labels are reserved; only "xn--" is defined, and
 * such a label must decode and re-encode to itself (RFC 5891 5.4). */
static gboolean
vc_name_reserved_label_ok(const char *l, gsize len)
{
	g_autofree char *label = NULL;
	g_autofree char *u = NULL;
	g_autofree char *back = NULL;
	if (len < 4 || l[2] != '-' || l[3] != '-')
		return TRUE;
	if (g_ascii_strncasecmp(l, "xn", 2) != 0)
		return FALSE;
	label = g_strndup(l, len);
	u = g_hostname_to_unicode(label);
	if (u == NULL || strchr(u, '.') != NULL || vc_name_is_ascii(u))
		return FALSE;
	back = g_hostname_to_ascii(u);
	return back != NULL && g_ascii_strcasecmp(back, label) == 0;
}

/* IDNA-encodes one label (rule 4); NULL when not possible. */
static char *
vc_name_label_to_ascii(const char *u)
{
	g_autofree char *a = NULL;
	if (vc_name_is_ascii(u))
		return g_strdup(u);
	if (!vc_name_bidi_rule_ok(u))
		return NULL;
	a = g_hostname_to_ascii(u);
	if (a == NULL)
		return NULL;
	{
		g_autofree char *lower = g_ascii_strdown(a, -1);
		gsize n = strlen(lower);
		/* length is the caller's business (rule 5) */
		if (n == 0 || lower[0] == '-' || lower[n - 1] == '-' ||
		    strspn(lower, "abcdefghijklmnopqrstuvwxyz0123456789-") != n ||
		    !vc_name_reserved_label_ok(lower, n))
			return NULL;
		return g_steal_pointer(&lower);
	}
}

/* Rule 5: cuts U (in characters) until U + "-" + HASH encodes to at most 63
 * octets; NULL when no prefix of U encodes. */
static char *
vc_name_label_with_suffix(const char *u, const char *hash)
{
	g_autofree char *prefix = NULL;
	/* an A-label is at least as long as its U-label in characters, so
	 * anything past 63 characters cannot fit */
	{
		const char *end = u;
		for (int i = 0; i < VC_NAME_LABEL_MAX && *end != '\0'; i++)
			end = g_utf8_next_char(end);
		prefix = g_strndup(u, (gsize)(end - u));
	}
	for (;;) {
		gsize n;
		g_autofree char *candidate = NULL;
		g_autofree char *a = NULL;
		/* no trailing '-' before the suffix, which would make "--" */
		while ((n = strlen(prefix)) > 0 && prefix[n - 1] == '-')
			prefix[n - 1] = '\0';
		if (*prefix == '\0')
			return NULL;
		candidate = g_strconcat(prefix, "-", hash, NULL);
		a = vc_name_label_to_ascii(candidate);
		if (a != NULL && strlen(a) <= VC_NAME_LABEL_MAX)
			return g_steal_pointer(&a);
		/* drop the last character */
		*g_utf8_prev_char(prefix + n) = '\0';
	}
}

char *
vc_name_label_from_string(const char *s, GError **error)
{
	g_autofree char *norm = NULL;
	g_autofree char *lower = NULL;
	g_autofree char *mapped = NULL;
	g_autofree char *result = NULL;
	g_autofree char *hash = NULL;
	g_autofree char *full = NULL;

	if (s == NULL || !g_utf8_validate(s, -1, NULL)) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_NAME,
				    "name is not valid UTF-8");
		return NULL;
	}
	{
		g_autofree char *hex = g_compute_checksum_for_string(G_CHECKSUM_SHA256, s, -1);
		guint32 v;
		hex[8] = '\0';
		v = (guint32)g_ascii_strtoull(hex, NULL, 16);
		hash = g_strdup_printf("%0*u", VC_NAME_HASH_LEN, v % 100000000u);
	}

	norm = g_utf8_normalize(s, -1, G_NORMALIZE_NFKC);
	if (norm == NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_NAME,
				    "name cannot be normalised");
		return NULL;
	}
	lower = g_utf8_strdown(norm, -1);

	/* rule 3: a valid A-label stays as it is */
	if (vc_name_is_ascii(lower) && vc_name_ldh_label_ok(lower, strlen(lower)) &&
	    g_str_has_prefix(lower, "xn--") && vc_name_reserved_label_ok(lower, strlen(lower)))
		return g_steal_pointer(&lower);

	mapped = vc_name_map_separators(lower, FALSE);
	if (*mapped == '\0') {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_NAME,
			    "name \"%s\" has no letters or digits to make a DNS label from", s);
		return NULL;
	}

	full = vc_name_label_to_ascii(mapped);
	if (full != NULL && strlen(full) <= VC_NAME_LABEL_MAX)
		return g_steal_pointer(&full);
	if (full != NULL || (vc_name_is_ascii(mapped) || vc_name_bidi_rule_ok(mapped)))
		result = vc_name_label_with_suffix(mapped, hash);

	if (result == NULL) {
		/* IDNA or the bidi rule refused it: keep the ASCII part, mark
		 * the loss with the hash */
		g_autofree char *ascii = vc_name_map_separators(lower, TRUE);
		result = vc_name_label_with_suffix(ascii, hash);
		/* nothing ASCII at all (a name in a script IDNA refuses):
		 * the hash alone, behind a letter so it is not all-numeric */
		if (result == NULL)
			result = g_strconcat("x-", hash, NULL);
	}
	if (result == NULL || !vc_name_ldh_label_ok(result, strlen(result))) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_NAME,
			    "name \"%s\" cannot be made a DNS label", s);
		return NULL;
	}
	return g_steal_pointer(&result);
}

gboolean
vc_name_check_dns(const char *name, GError **error)
{
	gsize len;
	guint labels = 0;
	const char *p;
	const char *last = NULL;
	gsize last_len = 0;

	if (name == NULL || *name == '\0') {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_NAME, "empty DNS name");
		return FALSE;
	}
	len = strlen(name);
	if (len > VC_NAME_DNS_MAX) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_NAME,
			    "DNS name is %" G_GSIZE_FORMAT " octets long, at most %d allowed", len,
			    VC_NAME_DNS_MAX);
		return FALSE;
	}
	p = name;
	for (;;) {
		const char *dot = strchr(p, '.');
		gsize l = dot != NULL ? (gsize)(dot - p) : strlen(p);
		g_autofree char *label = g_strndup(p, l);
		if (l == 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_NAME,
				    "DNS name \"%s\" has an empty label%s", name,
				    dot == NULL ? " (trailing dot)" : "");
			return FALSE;
		}
		if (strcmp(label, "*") == 0 || strchr(label, '*') != NULL) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_NAME,
				    "DNS name \"%s\": wildcards are not issued", name);
			return FALSE;
		}
		for (gsize i = 0; i < l; i++) {
			if (g_ascii_isupper(p[i])) {
				g_set_error(
				    error, VC_ERROR, VC_ERROR_INVALID_NAME,
				    "DNS name \"%s\" has upper case letters; use lower case", name);
				return FALSE;
			}
		}
		if (!vc_name_ldh_label_ok(p, l)) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_NAME,
				    "DNS name \"%s\": label \"%s\" is not 1..63 of a-z, 0-9 and "
				    "inner '-' (RFC 1035 2.3.1)",
				    name, label);
			return FALSE;
		}
		if (!vc_name_reserved_label_ok(p, l)) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_NAME,
				    "DNS name \"%s\": label \"%s\" has \"--\" in positions 3-4 "
				    "but is not a valid A-label (RFC 5891 4.2.3.1)",
				    name, label);
			return FALSE;
		}
		labels++;
		last = p;
		last_len = l;
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	if (labels < 2) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_NAME,
			    "DNS name \"%s\" needs at least two labels", name);
		return FALSE;
	}
	/* an all-numeric top label reads as an IP address (RFC 3696 2) */
	{
		gboolean numeric = TRUE;
		for (gsize i = 0; i < last_len; i++)
			if (!g_ascii_isdigit(last[i]))
				numeric = FALSE;
		if (numeric) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_NAME,
				    "DNS name \"%s\" has an all-numeric top-level label", name);
			return FALSE;
		}
	}
	return TRUE;
}

gboolean
vc_name_in_subtree(const char *name, const char *subtree)
{
	gsize nlen, slen;
	if (name == NULL || subtree == NULL)
		return FALSE;
	nlen = strlen(name);
	slen = strlen(subtree);
	/* an empty constraint matches every name, as OpenSSL and Go do */
	if (slen == 0)
		return TRUE;
	if (subtree[0] == '.') {
		/* ".example.com": proper subdomains only */
		return nlen > slen && g_ascii_strcasecmp(name + nlen - slen, subtree) == 0;
	}
	if (nlen == slen)
		return g_ascii_strcasecmp(name, subtree) == 0;
	/* RFC 5280 4.2.1.10: labels added on the left; "fooexample.com" is not
	 * in "example.com" */
	return nlen > slen && name[nlen - slen - 1] == '.' &&
	       g_ascii_strcasecmp(name + nlen - slen, subtree) == 0;
}

static const char *
vc_name_var_lookup(const VcNameVars *vars, const char *var, gboolean *ret_known)
{
	static const char *const names[] = {
	    "name", "uuid", "project", "project-id", "user", "instance",
	};
	const char *values[G_N_ELEMENTS(names)] = {0};
	if (vars != NULL) {
		values[0] = vars->name;
		values[1] = vars->uuid;
		values[2] = vars->project;
		values[3] = vars->project_id;
		values[4] = vars->user;
		values[5] = vars->instance;
	}
	for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
		if (strcmp(names[i], var) == 0) {
			*ret_known = TRUE;
			return values[i];
		}
	}
	*ret_known = FALSE;
	return NULL;
}

char *
vc_name_expand(const char *tmpl, const VcNameVars *vars, GError **error)
{
	g_autoptr(GString) out = g_string_new(NULL);
	g_autofree char *result = NULL;
	g_autoptr(GError) local = NULL;
	const char *p;

	if (tmpl == NULL || *tmpl == '\0' || !g_utf8_validate(tmpl, -1, NULL)) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_NAME,
				    "name template is empty or not UTF-8");
		return NULL;
	}
	for (p = tmpl; *p != '\0';) {
		if (*p == '{') {
			const char *end = strchr(p + 1, '}');
			g_autofree char *var = NULL;
			g_autofree char *label = NULL;
			const char *value;
			gboolean known = FALSE;
			if (end == NULL || memchr(p + 1, '{', (gsize)(end - p - 1)) != NULL) {
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_NAME,
					    "name template \"%s\": unbalanced '{'", tmpl);
				return NULL;
			}
			var = g_strndup(p + 1, (gsize)(end - p - 1));
			value = vc_name_var_lookup(vars, var, &known);
			if (!known) {
				g_set_error(
				    error, VC_ERROR, VC_ERROR_INVALID_NAME,
				    "name template \"%s\": unknown variable {%s} (known: "
				    "{name} {uuid} {project} {project-id} {user} {instance})",
				    tmpl, var);
				return NULL;
			}
			if (value == NULL) {
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_NAME,
					    "name template \"%s\": {%s} is not known for this VM",
					    tmpl, var);
				return NULL;
			}
			label = vc_name_label_from_string(value, &local);
			if (label == NULL) {
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_NAME,
					    "name template \"%s\": {%s}: %s", tmpl, var,
					    local->message);
				return NULL;
			}
			g_string_append(out, label);
			p = end + 1;
		} else if (*p == '}') {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_NAME,
				    "name template \"%s\": unbalanced '}'", tmpl);
			return NULL;
		} else {
			/* literal text is case-folded: DNS is case-insensitive
			 * and names are stored lower case */
			g_string_append_c(out, g_ascii_tolower(*p));
			p++;
		}
	}
	result = g_string_free(g_steal_pointer(&out), FALSE);
	if (!vc_name_is_ascii(result)) {
		/* a non-ASCII literal part ("{name}.bücher.example") */
		g_autofree char *lower = g_utf8_strdown(result, -1);
		g_autofree char *a = g_hostname_to_ascii(lower);
		if (a == NULL) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_NAME,
				    "name template \"%s\": result is not a valid IDN", tmpl);
			return NULL;
		}
		g_free(result);
		result = g_ascii_strdown(a, -1);
	}
	if (!vc_name_check_dns(result, &local)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_NAME, "name template \"%s\": %s",
			    tmpl, local->message);
		return NULL;
	}
	return g_steal_pointer(&result);
}

gboolean
vc_name_template_check(const char *tmpl, GError **error)
{
	/* every variable set to a plain label: what remains to fail is the
	 * template's own syntax and literal text */
	const VcNameVars dummy = {
	    .name = "a",
	    .uuid = "a",
	    .project = "a",
	    .project_id = "a",
	    .user = "a",
	    .instance = "a",
	};
	g_autofree char *s = vc_name_expand(tmpl, &dummy, error);
	return s != NULL;
}

GStrv
vc_name_expand_all(const char *const *templates, const VcNameVars *vars, GError **error)
{
	g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
	for (gsize i = 0; templates != NULL && templates[i] != NULL; i++) {
		g_autofree char *name = vc_name_expand(templates[i], vars, error);
		gboolean dup = FALSE;
		if (name == NULL)
			return NULL;
		for (guint j = 0; j < out->len; j++)
			if (strcmp(g_ptr_array_index(out, j), name) == 0)
				dup = TRUE;
		if (!dup)
			g_ptr_array_add(out, g_steal_pointer(&name));
	}
	g_ptr_array_add(out, NULL);
	return (GStrv)g_ptr_array_free(g_steal_pointer(&out), FALSE);
}
