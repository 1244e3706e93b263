/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Placement: may this VM run on this host? Pure evaluation of a VM's policy
 * (trusted host CAs, attribute rules) against a host identity. */
#include <string.h>

#include "vc-error.h"
#include "vc-host-attr.h"
#include "vc-placement.h"

#define VC_HOST_ATTRS_MAX 64
/* How much of a fingerprint a reason shows: enough to tell CAs apart. */
#define VC_FP_SHORT 12

VcHostIdentity *
vc_host_identity_new(void)
{
	VcHostIdentity *host = g_new0(VcHostIdentity, 1);

	host->ca_fingerprints = g_ptr_array_new_with_free_func(g_free);
	host->attributes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
						 (GDestroyNotify)g_ptr_array_unref);
	return host;
}

void
vc_host_identity_free(VcHostIdentity *host)
{
	if (host == NULL)
		return;
	g_ptr_array_unref(host->ca_fingerprints);
	g_hash_table_unref(host->attributes);
	g_free(host);
}

gboolean
vc_host_identity_add_ca(VcHostIdentity *host, const char *fingerprint, GError **error)
{
	char *fp;

	g_return_val_if_fail(host != NULL, FALSE);
	fp = vc_host_attr_fingerprint_normalize(fingerprint, error);
	if (fp == NULL)
		return FALSE;
	g_ptr_array_add(host->ca_fingerprints, fp);
	return TRUE;
}

static gboolean
vc_placement_check_attribute(const char *key, const char *value, GError **error)
{
	if (!vc_host_attr_key_is_valid(key)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "host attribute name \"%s\" is not [a-z0-9-]+", key);
		return FALSE;
	}
	if (!vc_host_attr_value_is_valid(value)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "host attribute %s: value \"%s\" is empty or not [A-Za-z0-9._:-]+", key,
			    value);
		return FALSE;
	}
	return TRUE;
}

gboolean
vc_host_identity_add_attribute(VcHostIdentity *host, const char *key, const char *value,
			       GError **error)
{
	GPtrArray *values;

	g_return_val_if_fail(host != NULL && key != NULL && value != NULL, FALSE);
	if (!vc_placement_check_attribute(key, value, error))
		return FALSE;
	values = g_hash_table_lookup(host->attributes, key);
	if (values == NULL) {
		if (g_hash_table_size(host->attributes) >= VC_HOST_ATTRS_MAX) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "more than %d host attributes", VC_HOST_ATTRS_MAX);
			return FALSE;
		}
		values = g_ptr_array_new_with_free_func(g_free);
		g_hash_table_insert(host->attributes, g_strdup(key), values);
	}
	for (guint i = 0; i < values->len; i++)
		if (strcmp(g_ptr_array_index(values, i), value) == 0)
			return TRUE;
	if (values->len >= VC_HOST_ATTRS_MAX) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "host attribute %s has more than %d values", key, VC_HOST_ATTRS_MAX);
		return FALSE;
	}
	g_ptr_array_add(values, g_strdup(value));
	return TRUE;
}

GPtrArray *
vc_host_identity_get_values(const VcHostIdentity *host, const char *key)
{
	g_return_val_if_fail(host != NULL && key != NULL, NULL);
	return g_hash_table_lookup(host->attributes, key);
}

static gint
vc_placement_cmp_strptr(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

GPtrArray *
vc_host_identity_get_keys(const VcHostIdentity *host)
{
	GPtrArray *keys = g_ptr_array_new();
	GHashTableIter it;
	gpointer k;

	g_hash_table_iter_init(&it, host->attributes);
	while (g_hash_table_iter_next(&it, &k, NULL))
		g_ptr_array_add(keys, k);
	g_ptr_array_sort(keys, vc_placement_cmp_strptr);
	return keys;
}

gboolean
vc_host_attribute_parse(const char *kv, char **ret_key, char **ret_value, GError **error)
{
	const char *eq = kv != NULL ? strchr(kv, '=') : NULL;
	g_autofree char *key = NULL;

	if (eq == NULL || eq == kv) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "host attribute \"%s\" is not KEY=VALUE", kv != NULL ? kv : "");
		return FALSE;
	}
	key = g_strndup(kv, (gsize)(eq - kv));
	if (!vc_placement_check_attribute(key, eq + 1, error))
		return FALSE;
	if (ret_key != NULL)
		*ret_key = g_steal_pointer(&key);
	if (ret_value != NULL)
		*ret_value = g_strdup(eq + 1);
	return TRUE;
}

gboolean
vc_host_attribute_uri_is_host(const char *uri)
{
	return uri != NULL && g_str_has_prefix(uri, VC_HOST_ATTR_URI_PREFIX);
}

gboolean
vc_host_attribute_uri_parse(const char *uri, char **ret_key, char **ret_value, GError **error)
{
	if (!vc_host_attribute_uri_is_host(uri)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "\"%s\" is not a " VC_HOST_ATTR_URI_PREFIX "KEY=VALUE URI",
			    uri != NULL ? uri : "");
		return FALSE;
	}
	return vc_host_attribute_parse(uri + strlen(VC_HOST_ATTR_URI_PREFIX), ret_key, ret_value,
				       error);
}

char *
vc_host_attribute_uri_build(const char *key, const char *value)
{
	return g_strconcat(VC_HOST_ATTR_URI_PREFIX, key, "=", value, NULL);
}

VcPolicy *
vc_placement_resolve_policy(const VcDomainInfo *info, VcPolicySet *set, gboolean issue_all,
			    gint64 default_lifetime_s, GError **error)
{
	/* a stand-in that only fills a missing "names"; never issued for */
	static const char *const placeholder[] = {"{uuid}.placement.invalid", NULL};

	return vc_domain_info_resolve_policy(info, set, issue_all, placeholder, default_lifetime_s,
					     error);
}

gboolean
vc_placement_is_restricted(const VcPolicy *policy)
{
	return policy != NULL &&
	       ((policy->trust_host_cas != NULL && policy->trust_host_cas[0] != NULL) ||
		(policy->placement != NULL && policy->placement->len > 0));
}

static gboolean
vc_placement_strv_contains_ptr(const char *const *strv, GPtrArray *values, const char **ret_match)
{
	for (guint i = 0; values != NULL && i < values->len; i++) {
		const char *v = g_ptr_array_index(values, i);
		if (g_strv_contains(strv, v)) {
			*ret_match = v;
			return TRUE;
		}
	}
	return FALSE;
}

static void
vc_placement_append_reason(GString *s, const char *text)
{
	if (s->len > 0)
		g_string_append(s, "; ");
	g_string_append(s, text);
}

static char *
vc_placement_join_ptr(GPtrArray *values, const char *sep)
{
	GString *s = g_string_new(NULL);
	for (guint i = 0; i < values->len; i++) {
		if (i > 0)
			g_string_append(s, sep);
		g_string_append(s, g_ptr_array_index(values, i));
	}
	return g_string_free(s, FALSE);
}

gboolean
vc_placement_allows(const VcPolicy *policy, const VcHostIdentity *host, char **ret_reason)
{
	g_autoptr(GString) failed = g_string_new(NULL);
	g_autoptr(GString) passed = g_string_new(NULL);

	g_return_val_if_fail(policy != NULL && host != NULL, FALSE);

	if (!vc_placement_is_restricted(policy)) {
		if (ret_reason != NULL)
			*ret_reason = g_strdup("the VM's policy does not restrict placement");
		return TRUE;
	}

	if (policy->trust_host_cas != NULL && policy->trust_host_cas[0] != NULL) {
		const char *match = NULL;
		if (vc_placement_strv_contains_ptr((const char *const *)policy->trust_host_cas,
						   host->ca_fingerprints, &match)) {
			g_autofree char *t =
			    g_strdup_printf("host CA %.*s… trusted", VC_FP_SHORT, match);
			vc_placement_append_reason(passed, t);
		} else if (host->ca_fingerprints->len == 0) {
			vc_placement_append_reason(
			    failed, "host CA unknown, the VM trusts only listed host CAs");
		} else {
			/* the issuing CA is the one an administrator recognises */
			g_autofree char *t = g_strdup_printf(
			    "host CA %.*s… not trusted by the VM", VC_FP_SHORT,
			    (const char *)g_ptr_array_index(host->ca_fingerprints, 0));
			vc_placement_append_reason(failed, t);
		}
	}

	for (guint i = 0; policy->placement != NULL && i < policy->placement->len; i++) {
		const VcPlacementRule *rule = g_ptr_array_index(policy->placement, i);
		GPtrArray *values = vc_host_identity_get_values(host, rule->key);
		g_autofree char *set = g_strjoinv(", ", rule->values);
		const char *match = NULL;

		if (values == NULL || values->len == 0) {
			g_autofree char *t = g_strdup_printf("host has no attribute %s", rule->key);
			vc_placement_append_reason(failed, t);
		} else if (vc_placement_strv_contains_ptr((const char *const *)rule->values, values,
							  &match)) {
			g_autofree char *t = g_strdup_printf("%s=%s", rule->key, match);
			vc_placement_append_reason(passed, t);
		} else {
			g_autofree char *have = vc_placement_join_ptr(values, ",");
			g_autofree char *t = g_strdup_printf("host attribute %s=%s not in {%s}",
							     rule->key, have, set);
			vc_placement_append_reason(failed, t);
		}
	}

	if (failed->len > 0) {
		if (ret_reason != NULL)
			*ret_reason = g_strdup(failed->str);
		return FALSE;
	}
	if (ret_reason != NULL)
		*ret_reason =
		    g_strdup_printf("host satisfies the VM's placement policy (%s)", passed->str);
	return TRUE;
}

/* ---- the canonical record ------------------------------------------------ */

static gint
vc_placement_cmp_rule_text(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *
vc_placement_to_canonical(const VcPolicy *policy)
{
	g_autoptr(GPtrArray) cas = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) rules = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GString) out = g_string_new(NULL);

	if (!vc_placement_is_restricted(policy))
		return g_strdup("");
	for (gsize i = 0; policy->trust_host_cas != NULL && policy->trust_host_cas[i] != NULL;
	     i++) {
		char *fp = vc_host_attr_fingerprint_normalize(policy->trust_host_cas[i], NULL);
		if (fp == NULL) /* the policy parser let it in: keep it as it is */
			fp = g_ascii_strdown(policy->trust_host_cas[i], -1);
		g_ptr_array_add(cas, fp);
	}
	g_ptr_array_sort(cas, vc_placement_cmp_strptr);
	for (guint i = 0; i < cas->len; i++)
		if (i == 0 || strcmp(g_ptr_array_index(cas, i), g_ptr_array_index(cas, i - 1)) != 0)
			g_string_append_printf(out, "trust-host-ca=%s\n",
					       (const char *)g_ptr_array_index(cas, i));
	for (guint i = 0; policy->placement != NULL && i < policy->placement->len; i++) {
		const VcPlacementRule *rule = g_ptr_array_index(policy->placement, i);
		g_autoptr(GPtrArray) values = g_ptr_array_new();
		g_autoptr(GString) line = g_string_new(NULL);

		for (gsize j = 0; rule->values != NULL && rule->values[j] != NULL; j++)
			g_ptr_array_add(values, rule->values[j]);
		g_ptr_array_sort(values, vc_placement_cmp_strptr);
		g_string_append_printf(line, "require=%s=", rule->key);
		for (guint j = 0; j < values->len; j++) {
			if (j > 0 && strcmp(g_ptr_array_index(values, j),
					    g_ptr_array_index(values, j - 1)) == 0)
				continue;
			if (j > 0)
				g_string_append_c(line, '|');
			g_string_append(line, g_ptr_array_index(values, j));
		}
		g_ptr_array_add(rules, g_string_free(g_steal_pointer(&line), FALSE));
	}
	g_ptr_array_sort(rules, vc_placement_cmp_rule_text);
	for (guint i = 0; i < rules->len; i++)
		if (i == 0 ||
		    strcmp(g_ptr_array_index(rules, i), g_ptr_array_index(rules, i - 1)) != 0)
			g_string_append_printf(out, "%s\n",
					       (const char *)g_ptr_array_index(rules, i));
	return g_string_free(g_steal_pointer(&out), FALSE);
}

static void
vc_placement_rule_free(VcPlacementRule *rule)
{
	g_free(rule->key);
	g_strfreev(rule->values);
	g_free(rule);
}

VcPolicy *
vc_placement_from_canonical(const char *text, GError **error)
{
	g_autoptr(VcPolicy) policy = g_new0(VcPolicy, 1);
	g_autoptr(GStrvBuilder) cas = g_strv_builder_new();
	g_auto(GStrv) lines = NULL;

	g_return_val_if_fail(text != NULL, NULL);
	policy->source = g_strdup("the placement recorded with the certificate");
	policy->placement = g_ptr_array_new_with_free_func((GDestroyNotify)vc_placement_rule_free);
	lines = g_strsplit(text, "\n", -1);
	for (gsize i = 0; lines[i] != NULL; i++) {
		const char *l = lines[i];

		if (l[0] == '\0' && lines[i + 1] == NULL)
			break; /* after the last line's "\n" */
		if (g_str_has_prefix(l, "trust-host-ca=")) {
			g_autofree char *fp =
			    vc_host_attr_fingerprint_normalize(l + strlen("trust-host-ca="), error);
			if (fp == NULL) {
				g_prefix_error(error, "placement record line %zu: ", i + 1);
				return NULL;
			}
			g_strv_builder_add(cas, fp);
		} else if (g_str_has_prefix(l, "require=")) {
			const char *kv = l + strlen("require=");
			const char *eq = strchr(kv, '=');
			g_autofree char *key = eq != NULL ? g_strndup(kv, (gsize)(eq - kv)) : NULL;
			g_auto(GStrv) values = eq != NULL ? g_strsplit(eq + 1, "|", -1) : NULL;
			VcPlacementRule *rule;

			if (key == NULL || !vc_host_attr_key_is_valid(key) || values[0] == NULL) {
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "placement record line %zu: \"%s\" is not "
					    "require=KEY=V1|V2",
					    i + 1, l);
				return NULL;
			}
			for (gsize j = 0; values[j] != NULL; j++)
				if (!vc_host_attr_value_is_valid(values[j])) {
					g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
						    "placement record line %zu: value \"%s\" of "
						    "%s is empty or not [A-Za-z0-9._:-]+",
						    i + 1, values[j], key);
					return NULL;
				}
			rule = g_new0(VcPlacementRule, 1);
			rule->key = g_steal_pointer(&key);
			rule->values = g_steal_pointer(&values);
			g_ptr_array_add(policy->placement, rule);
		} else {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "placement record line %zu: \"%s\" is neither trust-host-ca= "
				    "nor require=",
				    i + 1, l);
			return NULL;
		}
	}
	policy->trust_host_cas = g_strv_builder_end(cas);
	return g_steal_pointer(&policy);
}
