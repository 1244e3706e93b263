/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The owner's placement rules and the canonical form its signature covers
 * (the format is described in vc-signed-placement.h and docs/host-trust.md). */
#include <stdio.h>
#include <string.h>

#include "vc-error.h"
#include "vc-text.h"
#include "vc-host-attr.h"
#include "vc-signed-placement.h"

VcSignedPlacement *
vc_signed_placement_new(void)
{
	VcSignedPlacement *sp = g_new0(VcSignedPlacement, 1);

	sp->trust_cas = g_ptr_array_new_with_free_func(g_free);
	sp->requires = g_ptr_array_new_with_free_func(g_free);
	return sp;
}

void
vc_signed_placement_free(VcSignedPlacement *sp)
{
	if (sp == NULL)
		return;
	g_free(sp->check_on_start);
	g_ptr_array_unref(sp->trust_cas);
	g_ptr_array_unref(sp->requires);
	g_free(sp->sig_vm);
	g_free(sp->sig_not_after);
	if (sp->sig_der != NULL)
		g_bytes_unref(sp->sig_der);
	g_free(sp);
}

gboolean
vc_signed_placement_parse_time(const char *s, gint64 *ret_unix, GError **error)
{
	int y, mo, d, h, mi, se;
	char z = 0;
	int n = 0;
	g_autoptr(GDateTime) dt = NULL;

	/* exactly YYYY-MM-DDTHH:MM:SSZ: one spelling, so the canonical form
	 * and what the owner wrote cannot disagree */
	if (s == NULL || strlen(s) != 20 ||
	    sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c%n", &y, &mo, &d, &h, &mi, &se, &z, &n) != 7 ||
	    n != 20 || z != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':' || strspn(s, "0123456789-T:Z") != 20 ||
	    (dt = g_date_time_new_utc(y, mo, d, h, mi, se)) == NULL || y < 1970) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "\"%s\" is not a UTC time YYYY-MM-DDTHH:MM:SSZ", s != NULL ? s : "");
		return FALSE;
	}
	*ret_unix = g_date_time_to_unix(dt);
	return TRUE;
}

char *
vc_signed_placement_format_time(gint64 t)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);

	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("?");
}

gboolean
vc_signed_placement_set_signature(VcSignedPlacement *sp, const char *vm, const char *not_after,
				  const char *base64, GError **error)
{
	g_autoptr(GString) clean = g_string_new(NULL);
	g_autofree char *uuid = NULL;
	g_autofree guchar *der = NULL;
	gsize der_len = 0;
	gint64 t = 0;
	const char *pad;

	g_return_val_if_fail(sp != NULL, FALSE);
	if (sp->sig_der != NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "a second <virtcert:signature>");
		return FALSE;
	}
	if (vm == NULL || (uuid = vc_text_normalize_uuid(vm)) == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "<virtcert:signature> needs vm=UUID (the VM it is bound to)%s%s%s",
			    vm != NULL ? ", not \"" : "", vm != NULL ? vm : "",
			    vm != NULL ? "\"" : "");
		return FALSE;
	}
	if (not_after != NULL && !vc_signed_placement_parse_time(not_after, &t, error)) {
		g_prefix_error(error, "<virtcert:signature> not-after=: ");
		return FALSE;
	}
	/* g_base64_decode() skips what is not base64: check first, strictly */
	for (const char *p = base64 != NULL ? base64 : ""; *p != '\0'; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			continue;
		if (!(g_ascii_isalnum(*p) || *p == '+' || *p == '/' || *p == '=')) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "<virtcert:signature> is not base64 (character 0x%02x)",
				    (guchar)*p);
			return FALSE;
		}
		g_string_append_c(clean, *p);
	}
	pad = strchr(clean->str, '=');
	/* padding only at the end, at most two */
	if (clean->len == 0 || clean->len % 4 != 0 || clean->len > VC_SIGNED_PLACEMENT_SIG_MAX ||
	    (pad != NULL && (strspn(pad, "=") != strlen(pad) || strlen(pad) > 2))) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "<virtcert:signature> is %s (base64 of a DER CMS SignedData, at "
			    "most %d characters)",
			    clean->len == 0 ? "empty" : "not well-formed base64",
			    VC_SIGNED_PLACEMENT_SIG_MAX);
		return FALSE;
	}
	der = g_base64_decode(clean->str, &der_len);
	if (der_len == 0) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "<virtcert:signature> decodes to nothing");
		return FALSE;
	}
	g_free(sp->sig_vm);
	sp->sig_vm = g_strdup(vm);
	g_free(sp->sig_not_after);
	sp->sig_not_after = g_strdup(not_after);
	sp->sig_der = g_bytes_new_take(g_steal_pointer(&der), der_len);
	return TRUE;
}

static gint
vc_signed_placement_cmp(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts A and drops repeats. */
static void
vc_signed_placement_sort_unique(GPtrArray *a)
{
	g_ptr_array_sort(a, vc_signed_placement_cmp);
	for (guint i = 1; i < a->len;) {
		if (strcmp(g_ptr_array_index(a, i - 1), g_ptr_array_index(a, i)) == 0)
			g_ptr_array_remove_index(a, i);
		else
			i++;
	}
}

/* "ATTR=V1|V2" -> "ATTR=" + sorted distinct values joined by "|" */
static char *
vc_signed_placement_normalize_rule(const char *rule, GError **error)
{
	const char *eq = strchr(rule, '=');
	g_autofree char *attr = NULL;
	g_auto(GStrv) values = NULL;
	g_autoptr(GPtrArray) v = g_ptr_array_new();
	g_autoptr(GString) out = NULL;

	if (eq == NULL || eq == rule) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "placement rule \"%s\" is not ATTR=VALUE[|VALUE...]", rule);
		return NULL;
	}
	attr = g_strndup(rule, (gsize)(eq - rule));
	if (!vc_host_attr_key_is_valid(attr)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "placement rule \"%s\": attribute \"%s\" is not [a-z0-9-]+", rule,
			    attr);
		return NULL;
	}
	values = g_strsplit(eq + 1, "|", -1);
	for (gsize i = 0; values[i] != NULL; i++) {
		if (!vc_host_attr_value_is_valid(values[i])) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "placement rule \"%s\": value \"%s\" is empty or not "
				    "[A-Za-z0-9._:-]+",
				    rule, values[i]);
			return NULL;
		}
		g_ptr_array_add(v, values[i]);
	}
	if (v->len == 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "placement rule \"%s\": no value", rule);
		return NULL;
	}
	vc_signed_placement_sort_unique(v);
	out = g_string_new(attr);
	for (guint i = 0; i < v->len; i++) {
		g_string_append_c(out, i == 0 ? '=' : '|');
		g_string_append(out, g_ptr_array_index(v, i));
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

/* The normalized check-on-start, trust-ca and require values of SP. */
static gboolean
vc_signed_placement_normalize(const VcSignedPlacement *sp, const char **ret_cos,
			      GPtrArray **ret_cas, GPtrArray **ret_rules, GError **error)
{
	g_autoptr(GPtrArray) cas = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) rules = g_ptr_array_new_with_free_func(g_free);
	const char *cos = "unset";
	const char *c = sp->check_on_start;

	if (c != NULL) {
		if (g_ascii_strcasecmp(c, "yes") == 0 || g_ascii_strcasecmp(c, "true") == 0 ||
		    strcmp(c, "1") == 0)
			cos = "yes";
		else if (g_ascii_strcasecmp(c, "no") == 0 || g_ascii_strcasecmp(c, "false") == 0 ||
			 strcmp(c, "0") == 0)
			cos = "no";
		else {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "check-on-start \"%s\" is not yes or no", c);
			return FALSE;
		}
	}
	for (guint i = 0; i < sp->trust_cas->len; i++) {
		char *fp =
		    vc_host_attr_fingerprint_normalize(g_ptr_array_index(sp->trust_cas, i), error);
		if (fp == NULL) {
			g_prefix_error(error, "trust-ca: ");
			return FALSE;
		}
		g_ptr_array_add(cas, fp);
	}
	for (guint i = 0; i < sp->requires->len; i++) {
		char *r =
		    vc_signed_placement_normalize_rule(g_ptr_array_index(sp->requires, i), error);
		if (r == NULL)
			return FALSE;
		g_ptr_array_add(rules, r);
	}
	vc_signed_placement_sort_unique(cas);
	vc_signed_placement_sort_unique(rules);
	*ret_cos = cos;
	*ret_cas = g_steal_pointer(&cas);
	*ret_rules = g_steal_pointer(&rules);
	return TRUE;
}

GBytes *
vc_signed_placement_canonical(const VcSignedPlacement *sp, const char *vm_uuid, gint64 not_after,
			      GError **error)
{
	g_autoptr(GPtrArray) cas = NULL;
	g_autoptr(GPtrArray) rules = NULL;
	g_autofree char *uuid = NULL;
	g_autoptr(GString) out =
	    g_string_new("virtcert-placement=" VC_SIGNED_PLACEMENT_VERSION "\n");
	const char *cos = NULL;

	g_return_val_if_fail(sp != NULL, NULL);
	uuid = vm_uuid != NULL ? vc_text_normalize_uuid(vm_uuid) : NULL;
	if (uuid == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "\"%s\" is not a VM UUID",
			    vm_uuid != NULL ? vm_uuid : "");
		return NULL;
	}
	if (!vc_signed_placement_normalize(sp, &cos, &cas, &rules, error))
		return NULL;
	g_string_append_printf(out, "check-on-start=%s\n", cos);
	for (guint i = 0; i < cas->len; i++)
		g_string_append_printf(out, "trust-ca=%s\n",
				       (const char *)g_ptr_array_index(cas, i));
	for (guint i = 0; i < rules->len; i++)
		g_string_append_printf(out, "require=%s\n",
				       (const char *)g_ptr_array_index(rules, i));
	g_string_append_printf(out, "vm=%s\n", uuid);
	if (not_after != 0) {
		g_autofree char *t = vc_signed_placement_format_time(not_after);
		g_string_append_printf(out, "not-after=%s\n", t);
	} else {
		g_string_append(out, "not-after=none\n");
	}
	return g_string_free_to_bytes(g_steal_pointer(&out));
}

GBytes *
vc_signed_placement_canonical_signed(const VcSignedPlacement *sp, GError **error)
{
	gint64 t = 0;

	if (sp->sig_der == NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "the placement is not signed");
		return NULL;
	}
	if (sp->sig_not_after != NULL &&
	    !vc_signed_placement_parse_time(sp->sig_not_after, &t, error))
		return NULL;
	return vc_signed_placement_canonical(sp, sp->sig_vm, t, error);
}

char *
vc_signed_placement_to_xml(const VcSignedPlacement *sp, const char *vm_uuid, gint64 not_after,
			   GBytes *der)
{
	g_autoptr(GString) out = g_string_new(NULL);
	g_autoptr(GPtrArray) cas = NULL;
	g_autoptr(GPtrArray) rules = NULL;
	g_autofree char *uuid = vc_text_normalize_uuid(vm_uuid);
	g_autofree char *b64 = NULL;
	const char *cos = NULL;
	gsize len = 0;
	const guchar *data;

	g_return_val_if_fail(uuid != NULL && der != NULL, NULL);
	if (!vc_signed_placement_normalize(sp, &cos, &cas, &rules, NULL))
		return NULL;
	data = g_bytes_get_data(der, &len);
	b64 = g_base64_encode(data, len);
	g_string_append(out, "<virtcert:placement xmlns:virtcert=\"urn:virtcert:domain:1\"");
	if (strcmp(cos, "unset") != 0)
		g_string_append_printf(out, " check-on-start=\"%s\"", cos);
	g_string_append(out, ">\n");
	for (guint i = 0; i < cas->len; i++)
		g_string_append_printf(out, "  <virtcert:trust-ca>%s</virtcert:trust-ca>\n",
				       (const char *)g_ptr_array_index(cas, i));
	for (guint i = 0; i < rules->len; i++) {
		const char *r = g_ptr_array_index(rules, i);
		const char *eq = strchr(r, '=');
		g_string_append_printf(out,
				       "  <virtcert:require attr=\"%.*s\">%s</virtcert:require>\n",
				       (int)(eq - r), r, eq + 1);
	}
	g_string_append_printf(out, "  <virtcert:signature vm=\"%s\"", uuid);
	if (not_after != 0) {
		g_autofree char *t = vc_signed_placement_format_time(not_after);
		g_string_append_printf(out, " not-after=\"%s\"", t);
	}
	g_string_append_printf(out, ">%s</virtcert:signature>\n</virtcert:placement>\n", b64);
	return g_string_free(g_steal_pointer(&out), FALSE);
}
