/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "vc-config.h"
#include "vc-error.h"
#include "vc-host-attr.h"
#include "vc-name.h"
#include "vc-policy.h"
#include "vc-text.h"

#define VC_POLICY_PATH_MAX 4096
#define VC_POLICY_RELOAD_MAX 1024
#define VC_POLICY_OWNER_PART_MAX 32
#define VC_POLICY_VALUE_MAX 255
#define VC_POLICY_LIST_MAX 64
/* policy.d files are written by administrators; anything this large is a
 * mistake */
#define VC_POLICY_FILE_MAX (1024 * 1024)

#define DEFAULT_CERT_PATH "/etc/virtcert/tls/cert.pem"
#define DEFAULT_CHAIN_PATH "/etc/virtcert/tls/chain.pem"
#define DEFAULT_KEY_PATH "/etc/virtcert/tls/key.pem"

static const char *const key_type_names[] = {
    [VC_KEY_TYPE_EC_P256] = "ec-p256",
    [VC_KEY_TYPE_ED25519] = "ed25519",
    [VC_KEY_TYPE_RSA_3072] = "rsa-3072",
};

const char *
vc_key_type_to_string(VcKeyType type)
{
	if ((gsize)type >= G_N_ELEMENTS(key_type_names))
		return "unknown";
	return key_type_names[type];
}

gboolean
vc_key_type_from_string(const char *s, VcKeyType *ret_type, GError **error)
{
	for (gsize i = 0; i < G_N_ELEMENTS(key_type_names); i++) {
		if (g_strcmp0(s, key_type_names[i]) == 0) {
			if (ret_type != NULL)
				*ret_type = (VcKeyType)i;
			return TRUE;
		}
	}
	g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
		    "unknown key type \"%s\" (use ec-p256, ed25519 or rsa-3072)",
		    s != NULL ? s : "");
	return FALSE;
}

const char *
vc_key_mode_to_string(VcKeyMode mode)
{
	return mode == VC_KEY_MODE_GUEST ? "guest" : "host";
}

const char *
vc_issue_on_to_string(VcIssueOn on)
{
	return on == VC_ISSUE_ON_DEFINE ? "define" : "start";
}

static void
vc_policy_placement_rule_free(VcPlacementRule *rule)
{
	if (rule == NULL)
		return;
	g_free(rule->key);
	g_strfreev(rule->values);
	g_free(rule);
}

void
vc_policy_free(VcPolicy *policy)
{
	if (policy == NULL)
		return;
	g_free(policy->source);
	g_strfreev(policy->names);
	g_free(policy->cert_path);
	g_free(policy->chain_path);
	g_free(policy->key_path);
	g_free(policy->owner);
	g_free(policy->reload);
	g_strfreev(policy->trust_host_cas);
	if (policy->placement != NULL)
		g_ptr_array_unref(policy->placement);
	if (policy->sources != NULL)
		g_hash_table_unref(policy->sources);
	g_free(policy);
}

VcPolicy *
vc_policy_copy_placement(const VcPolicy *policy)
{
	VcPolicy *copy = g_new0(VcPolicy, 1);

	copy->source = g_strdup(policy->source);
	copy->trust_host_cas = g_strdupv(policy->trust_host_cas);
	copy->placement =
	    g_ptr_array_new_with_free_func((GDestroyNotify)vc_policy_placement_rule_free);
	for (guint i = 0; policy->placement != NULL && i < policy->placement->len; i++) {
		const VcPlacementRule *r = g_ptr_array_index(policy->placement, i);
		VcPlacementRule *c = g_new0(VcPlacementRule, 1);
		c->key = g_strdup(r->key);
		c->values = g_strdupv(r->values);
		g_ptr_array_add(copy->placement, c);
	}
	copy->check_on_start = policy->check_on_start;
	return copy;
}

GHashTable *
vc_policy_map_new(void)
{
	return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_strfreev);
}

void
vc_policy_map_merge(GHashTable *dst, GHashTable *src)
{
	GHashTableIter it;
	gpointer k, v;
	g_return_if_fail(dst != NULL);
	if (src == NULL)
		return;
	g_hash_table_iter_init(&it, src);
	while (g_hash_table_iter_next(&it, &k, &v))
		g_hash_table_insert(dst, g_strdup(k), g_strdupv(v));
}

static GHashTable *
vc_policy_map_copy(GHashTable *src)
{
	GHashTable *dst = vc_policy_map_new();
	vc_policy_map_merge(dst, src);
	return dst;
}

/* ---- value checks ---------------------------------------------------- */

static gboolean
vc_policy_check_text(const char *v, gsize max, GError **error)
{
	if (!g_utf8_validate(v, -1, NULL)) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA, "not valid UTF-8");
		return FALSE;
	}
	if (vc_text_has_control_chars(v)) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "control characters (newline, tab, ...) are not allowed");
		return FALSE;
	}
	if (strlen(v) > max) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "longer than %" G_GSIZE_FORMAT " octets", max);
		return FALSE;
	}
	return TRUE;
}

/* A path in the guest: absolute, no ".." component (delivery writes there as
 * root), and naming a file, not a directory. */
static gboolean
vc_policy_check_guest_path(const char *v, GError **error)
{
	g_auto(GStrv) parts = NULL;
	if (!vc_policy_check_text(v, VC_POLICY_PATH_MAX, error))
		return FALSE;
	if (v[0] != '/') {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "\"%s\" is not an absolute path", v);
		return FALSE;
	}
	if (g_str_has_suffix(v, "/")) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "\"%s\" names a directory, not a file", v);
		return FALSE;
	}
	parts = g_strsplit(v, "/", -1);
	for (gsize i = 0; parts[i] != NULL; i++) {
		if (strcmp(parts[i], "..") == 0 || strcmp(parts[i], ".") == 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "\"%s\" has a \".\" or \"..\" component", v);
			return FALSE;
		}
	}
	return TRUE;
}

static gboolean
vc_policy_owner_part_ok(const char *s, gsize len)
{
	if (len == 0 || len > VC_POLICY_OWNER_PART_MAX)
		return FALSE;
	if (!(g_ascii_islower(s[0]) || s[0] == '_'))
		return FALSE;
	for (gsize i = 1; i < len; i++)
		if (!(g_ascii_islower(s[i]) || g_ascii_isdigit(s[i]) || s[i] == '_' || s[i] == '-'))
			return FALSE;
	return TRUE;
}

static gboolean
vc_policy_check_owner(const char *v, GError **error)
{
	const char *colon = strchr(v, ':');
	gsize ulen = colon != NULL ? (gsize)(colon - v) : strlen(v);
	if (!vc_policy_owner_part_ok(v, ulen) ||
	    (colon != NULL && !vc_policy_owner_part_ok(colon + 1, strlen(colon + 1)))) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "\"%s\" is not USER or USER:GROUP (each [a-z_][a-z0-9_-]*, at most "
			    "%d characters)",
			    v, VC_POLICY_OWNER_PART_MAX);
		return FALSE;
	}
	return TRUE;
}

/* "attr=v1|v2": host attribute ATTR must be one of the values. */
static VcPlacementRule *
vc_policy_parse_require(const char *v, GError **error)
{
	const char *eq = strchr(v, '=');
	g_autofree char *attr = NULL;
	g_auto(GStrv) values = NULL;
	VcPlacementRule *rule;

	if (eq == NULL || eq == v) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "\"%s\" is not ATTR=VALUE[|VALUE...]", v);
		return NULL;
	}
	attr = g_strndup(v, (gsize)(eq - v));
	if (!vc_host_attr_key_is_valid(attr)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "\"%s\": attribute \"%s\" is not [a-z0-9-]+", v, attr);
		return NULL;
	}
	values = g_strsplit(eq + 1, "|", -1);
	if (values[0] == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "\"%s\": no value", v);
		return NULL;
	}
	for (gsize i = 0; values[i] != NULL; i++) {
		if (!vc_host_attr_value_is_valid(values[i])) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "\"%s\": value \"%s\" is empty or not [A-Za-z0-9._:-]+", v,
				    values[i]);
			return NULL;
		}
	}
	rule = g_new0(VcPlacementRule, 1);
	rule->key = g_steal_pointer(&attr);
	rule->values = g_steal_pointer(&values);
	return rule;
}

static gboolean
vc_policy_parse_bool(const char *v, gboolean *ret, GError **error)
{
	if (g_ascii_strcasecmp(v, "true") == 0 || g_ascii_strcasecmp(v, "yes") == 0 ||
	    strcmp(v, "1") == 0) {
		*ret = TRUE;
		return TRUE;
	}
	if (g_ascii_strcasecmp(v, "false") == 0 || g_ascii_strcasecmp(v, "no") == 0 ||
	    strcmp(v, "0") == 0) {
		*ret = FALSE;
		return TRUE;
	}
	g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "\"%s\" is not true or false", v);
	return FALSE;
}

/* ---- the key table ---------------------------------------------------- */

typedef enum {
	PK_NAMES,
	PK_KEY,
	PK_KEY_MODE,
	PK_LIFETIME,
	PK_ISSUE_ON,
	PK_ON_STOP,
	PK_CERT_PATH,
	PK_CHAIN_PATH,
	PK_KEY_PATH,
	PK_OWNER,
	PK_RELOAD,
	PK_TRUST_HOST_CA,
	PK_REQUIRE,
	PK_CHECK_ON_START,
	PK_N,
} PolicyKey;

static const struct {
	const char *name;
	gboolean list;
} policy_keys[PK_N] = {
    [PK_NAMES] = {"names", TRUE},	   [PK_KEY] = {"key", FALSE},
    [PK_KEY_MODE] = {"key-mode", FALSE},   [PK_LIFETIME] = {"lifetime", FALSE},
    [PK_ISSUE_ON] = {"issue-on", FALSE},   [PK_ON_STOP] = {"on-stop", FALSE},
    [PK_CERT_PATH] = {"cert-path", FALSE}, [PK_CHAIN_PATH] = {"chain-path", FALSE},
    [PK_KEY_PATH] = {"key-path", FALSE},   [PK_OWNER] = {"owner", FALSE},
    [PK_RELOAD] = {"reload", FALSE},	   [PK_TRUST_HOST_CA] = {"trust-host-ca", TRUE},
    [PK_REQUIRE] = {"require", TRUE},	   [PK_CHECK_ON_START] = {"check-on-start", FALSE},
};

static int
vc_policy_key_find(const char *name)
{
	for (int i = 0; i < PK_N; i++)
		if (strcmp(policy_keys[i].name, name) == 0)
			return i;
	return -1;
}

gboolean
vc_policy_key_is_list(const char *key)
{
	int k = vc_policy_key_find(key);
	return k >= 0 && policy_keys[k].list;
}

/* ---- metadata narrows host policy ------------------------------------- */

char *
vc_policy_name_subtree(const char *name)
{
	const char *brace = strrchr(name, '}');
	const char *rest = brace != NULL ? brace + 1 : name;
	const char *dot = strchr(rest, '.');

	/* after the last placeholder, and never the first label itself */
	rest = dot != NULL ? dot + 1 : "";
	return *rest != '\0' ? g_ascii_strdown(rest, -1) : NULL;
}

static void
vc_policy_set_source(GHashTable *sources, const char *key, const char *source)
{
	if (sources != NULL)
		g_hash_table_insert(sources, g_strdup(key), g_strdup(source));
}

static gboolean
vc_policy_narrow_names(GHashTable *host, const char *const *meta, const char *host_source,
		       const char *const *bounds_in, GHashTable *sources, GError **error)
{
	g_autoptr(GPtrArray) bounds = g_ptr_array_new_with_free_func(g_free);
	const char *const *host_names = g_hash_table_lookup(host, "names");
	g_autofree char *shown = NULL;
	g_autofree char *src = NULL;

	for (gsize i = 0; bounds_in != NULL && bounds_in[i] != NULL; i++)
		g_ptr_array_add(bounds, g_strdup(bounds_in[i]));
	if (bounds_in == NULL)
		for (gsize i = 0; host_names != NULL && host_names[i] != NULL; i++) {
			char *sub = vc_policy_name_subtree(host_names[i]);
			if (sub != NULL)
				g_ptr_array_add(bounds, sub);
		}
	if (bounds->len == 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "names: %s sets neither names nor metadata-names, so the domain "
			    "metadata may not name the certificate",
			    host_source);
		return FALSE;
	}
	g_ptr_array_add(bounds, NULL);
	shown = g_strjoinv(", ", (GStrv)bounds->pdata);
	for (gsize i = 0; meta[i] != NULL; i++) {
		/* the literal end of the template decides where every expansion
		 * lands: placeholders only fill labels in front of it */
		const char *brace = strrchr(meta[i], '}');
		const char *tail = brace != NULL ? brace + 1 : meta[i];
		gboolean inside = FALSE;
		for (guint b = 0; b + 1 < bounds->len && !inside; b++) {
			const char *sub = g_ptr_array_index(bounds, b);
			const char *bare = sub[0] == '.' ? sub + 1 : sub;
			gsize tl = strlen(tail), bl = strlen(bare);
			inside = (brace == NULL && sub[0] != '.' &&
				  g_ascii_strcasecmp(tail, bare) == 0) ||
				 (tl > bl && tail[tl - bl - 1] == '.' &&
				  g_ascii_strcasecmp(tail + tl - bl, bare) == 0);
		}
		if (!inside) {
			g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
				    "names: \"%s\" (domain metadata) is outside what %s lets "
				    "metadata name: %s",
				    meta[i], host_source, shown);
			return FALSE;
		}
	}
	g_hash_table_insert(host, g_strdup("names"), g_strdupv((GStrv)meta));
	src = g_strdup_printf("domain metadata (within %s)", shown);
	vc_policy_set_source(sources, "names", src);
	return TRUE;
}

static gboolean
vc_policy_narrow_trust(GHashTable *host, const char *const *meta, const char *host_source,
		       GHashTable *sources, GError **error)
{
	const char *const *have = g_hash_table_lookup(host, "trust-host-ca");
	g_autoptr(GStrvBuilder) out = g_strv_builder_new();
	g_auto(GStrv) both = NULL;
	g_autofree char *src = NULL;

	if (have == NULL || have[0] == NULL) {
		g_hash_table_insert(host, g_strdup("trust-host-ca"), g_strdupv((GStrv)meta));
		vc_policy_set_source(sources, "trust-host-ca", "domain metadata");
		return TRUE;
	}
	for (gsize i = 0; meta[i] != NULL; i++) {
		g_autofree char *m = vc_host_attr_fingerprint_normalize(meta[i], NULL);
		for (gsize j = 0; m != NULL && have[j] != NULL; j++) {
			g_autofree char *h = vc_host_attr_fingerprint_normalize(have[j], NULL);
			if (g_strcmp0(h, m) == 0) {
				g_strv_builder_add(out, m);
				break;
			}
		}
	}
	both = g_strv_builder_end(out);
	if (both[0] == NULL) {
		/* an empty list would trust every host CA: never */
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "trust-host-ca: the domain metadata trusts none of the host CAs %s "
			    "trusts",
			    host_source);
		return FALSE;
	}
	g_hash_table_insert(host, g_strdup("trust-host-ca"), g_steal_pointer(&both));
	src = g_strdup_printf("%s narrowed by domain metadata", host_source);
	vc_policy_set_source(sources, "trust-host-ca", src);
	return TRUE;
}

static gboolean
vc_policy_narrow_require(GHashTable *host, const char *const *meta, const char *host_source,
			 GHashTable *sources, GError **error)
{
	const char *const *have = g_hash_table_lookup(host, "require");
	/* HAVE is freed when the narrowed rules replace it below */
	gboolean had_floor = have != NULL && have[0] != NULL;
	g_autoptr(GPtrArray) rules =
	    g_ptr_array_new_with_free_func((GDestroyNotify)vc_policy_placement_rule_free);
	g_autoptr(GStrvBuilder) out = g_strv_builder_new();
	gboolean narrowed = FALSE;
	g_autofree char *src = NULL;

	for (gsize i = 0; have != NULL && have[i] != NULL; i++) {
		VcPlacementRule *r = vc_policy_parse_require(have[i], error);
		if (r == NULL)
			return FALSE;
		g_ptr_array_add(rules, r);
	}
	for (gsize i = 0; meta[i] != NULL; i++) {
		g_autoptr(GError) local = NULL;
		VcPlacementRule *m = vc_policy_parse_require(meta[i], &local);
		VcPlacementRule *same = NULL;

		if (m == NULL) {
			g_set_error(error, VC_ERROR, VC_ERROR_POLICY, "require: %s",
				    local->message);
			return FALSE;
		}
		for (guint r = 0; r < rules->len && same == NULL; r++)
			if (strcmp(((VcPlacementRule *)g_ptr_array_index(rules, r))->key, m->key) ==
			    0)
				same = g_ptr_array_index(rules, r);
		if (same == NULL) {
			g_ptr_array_add(rules, m);
			narrowed = TRUE;
			continue;
		}
		{
			/* the floor stays: only values both allow */
			g_autoptr(GStrvBuilder) keep = g_strv_builder_new();
			g_auto(GStrv) kept = NULL;
			for (gsize v = 0; same->values[v] != NULL; v++)
				if (g_strv_contains((const char *const *)m->values,
						    same->values[v]))
					g_strv_builder_add(keep, same->values[v]);
			kept = g_strv_builder_end(keep);
			if (kept[0] == NULL) {
				g_autofree char *a = g_strjoinv("|", same->values);
				g_autofree char *b = g_strjoinv("|", m->values);
				g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
					    "require: %s=%s (domain metadata) leaves nothing of "
					    "%s=%s (%s): no host could run the VM",
					    m->key, b, same->key, a, host_source);
				vc_policy_placement_rule_free(m);
				return FALSE;
			}
			if (g_strv_length(kept) < g_strv_length(same->values))
				narrowed = TRUE;
			g_strfreev(same->values);
			same->values = g_steal_pointer(&kept);
			vc_policy_placement_rule_free(m);
		}
	}
	for (guint r = 0; r < rules->len; r++) {
		const VcPlacementRule *rule = g_ptr_array_index(rules, r);
		g_autofree char *vals = g_strjoinv("|", rule->values);
		g_autofree char *line = g_strdup_printf("%s=%s", rule->key, vals);
		g_strv_builder_add(out, line);
	}
	g_hash_table_insert(host, g_strdup("require"), g_strv_builder_end(out));
	have = NULL;
	if (!had_floor)
		src = g_strdup("domain metadata");
	else if (narrowed)
		src = g_strdup_printf("%s narrowed by domain metadata", host_source);
	else
		src = g_strdup(host_source);
	vc_policy_set_source(sources, "require", src);
	return TRUE;
}

gboolean
vc_policy_map_narrow(GHashTable *host, GHashTable *meta, const char *host_source,
		     const char *const *bounds, GHashTable *sources, GError **error)
{
	GHashTableIter it;
	gpointer k, v;

	g_return_val_if_fail(host != NULL && meta != NULL, FALSE);
	if (sources != NULL) {
		g_hash_table_iter_init(&it, host);
		while (g_hash_table_iter_next(&it, &k, NULL))
			vc_policy_set_source(sources, k, host_source);
	}
	/* key-table order: the first error is the same on every run */
	for (int i = 0; i < PK_N; i++) {
		const char *key = policy_keys[i].name;
		const char *const *mv = g_hash_table_lookup(meta, key);
		const char *const *hv = g_hash_table_lookup(host, key);
		gboolean ok = TRUE;

		if (mv == NULL)
			continue;
		switch ((PolicyKey)i) {
		case PK_NAMES:
			ok = vc_policy_narrow_names(host, mv, host_source, bounds, sources, error);
			break;
		case PK_TRUST_HOST_CA:
			ok = vc_policy_narrow_trust(host, mv, host_source, sources, error);
			break;
		case PK_REQUIRE:
			ok = vc_policy_narrow_require(host, mv, host_source, sources, error);
			break;
		case PK_CHECK_ON_START:
		case PK_ON_STOP:
		case PK_LIFETIME: {
			/* the stricter of the two; a value that does not parse is
			 * the metadata's, and its error comes when the policy is
			 * built */
			gboolean take_meta = TRUE;
			if (hv != NULL && hv[0] != NULL && mv[0] != NULL) {
				gboolean hb = FALSE, mb = FALSE;
				gint64 hs = 0, ms = 0;
				if (i == PK_CHECK_ON_START &&
				    vc_policy_parse_bool(hv[0], &hb, NULL) &&
				    vc_policy_parse_bool(mv[0], &mb, NULL))
					take_meta = mb || !hb;
				else if (i == PK_ON_STOP)
					take_meta = g_ascii_strcasecmp(hv[0], "revoke") != 0;
				else if (i == PK_LIFETIME && vc_duration_parse(hv[0], &hs, NULL) &&
					 vc_duration_parse(mv[0], &ms, NULL))
					take_meta = ms <= hs;
			}
			if (take_meta) {
				g_hash_table_insert(host, g_strdup(key), g_strdupv((GStrv)mv));
				vc_policy_set_source(sources, key, "domain metadata");
			}
			break;
		}
		case PK_KEY:
		case PK_KEY_MODE:
		case PK_ISSUE_ON:
		case PK_CERT_PATH:
		case PK_CHAIN_PATH:
		case PK_KEY_PATH:
		case PK_OWNER:
		case PK_RELOAD:
		case PK_N:
		default:
			/* how the certificate is made and delivered: the owner's */
			g_hash_table_insert(host, g_strdup(key), g_strdupv((GStrv)mv));
			vc_policy_set_source(sources, key, "domain metadata");
			break;
		}
		if (!ok)
			return FALSE;
	}
	g_hash_table_iter_init(&it, meta);
	while (g_hash_table_iter_next(&it, &k, &v))
		if (vc_policy_key_find(k) < 0) /* caught when the policy is built */
			g_hash_table_insert(host, g_strdup(k), g_strdupv(v));
	return TRUE;
}

/* Applies one map entry to POLICY; the error message is prefixed with the
 * key by the caller. */
static gboolean
vc_policy_apply_key(VcPolicy *p, PolicyKey k, const char *const *values, GError **error)
{
	guint n = values != NULL ? g_strv_length((GStrv)values) : 0;
	const char *v = n > 0 ? values[0] : NULL;

	if (!policy_keys[k].list && n != 1) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "expects exactly one value, got %u", n);
		return FALSE;
	}
	if (n > VC_POLICY_LIST_MAX) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "more than %d values",
			    VC_POLICY_LIST_MAX);
		return FALSE;
	}
	for (guint i = 0; i < n; i++)
		if (!vc_policy_check_text(values[i], VC_POLICY_PATH_MAX, error))
			return FALSE;

	switch (k) {
	case PK_NAMES:
		if (n == 0) {
			g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "needs at least one name template");
			return FALSE;
		}
		for (guint i = 0; i < n; i++)
			if (!vc_name_template_check(values[i], error))
				return FALSE;
		g_strfreev(p->names);
		p->names = g_strdupv((GStrv)values);
		return TRUE;
	case PK_KEY:
		return vc_key_type_from_string(v, &p->key_type, error);
	case PK_KEY_MODE:
		if (strcmp(v, "host") == 0)
			p->key_mode = VC_KEY_MODE_HOST;
		else if (strcmp(v, "guest") == 0)
			p->key_mode = VC_KEY_MODE_GUEST;
		else {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "\"%s\" is not host or guest", v);
			return FALSE;
		}
		return TRUE;
	case PK_LIFETIME: {
		gint64 s = 0;
		if (!vc_duration_parse(v, &s, error))
			return FALSE;
		if (s < VC_POLICY_LIFETIME_MIN_S || s > VC_POLICY_LIFETIME_MAX_S) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "\"%s\" is outside 1m..397d", v);
			return FALSE;
		}
		p->lifetime_s = s;
		return TRUE;
	}
	case PK_ISSUE_ON:
		if (strcmp(v, "start") == 0)
			p->issue_on = VC_ISSUE_ON_START;
		else if (strcmp(v, "define") == 0)
			p->issue_on = VC_ISSUE_ON_DEFINE;
		else {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "\"%s\" is not start or define", v);
			return FALSE;
		}
		return TRUE;
	case PK_ON_STOP:
		if (strcmp(v, "keep") == 0)
			p->revoke_on_stop = FALSE;
		else if (strcmp(v, "revoke") == 0)
			p->revoke_on_stop = TRUE;
		else {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "\"%s\" is not keep or revoke", v);
			return FALSE;
		}
		return TRUE;
	case PK_CERT_PATH:
	case PK_CHAIN_PATH:
	case PK_KEY_PATH: {
		char **field = k == PK_CERT_PATH    ? &p->cert_path
			       : k == PK_CHAIN_PATH ? &p->chain_path
						    : &p->key_path;
		if (!vc_policy_check_guest_path(v, error))
			return FALSE;
		g_free(*field);
		*field = g_strdup(v);
		return TRUE;
	}
	case PK_OWNER:
		if (!vc_policy_check_owner(v, error))
			return FALSE;
		g_free(p->owner);
		p->owner = g_strdup(v);
		return TRUE;
	case PK_RELOAD:
		if (!vc_policy_check_text(v, VC_POLICY_RELOAD_MAX, error))
			return FALSE;
		g_free(p->reload);
		/* an empty command switches an inherited reload off */
		p->reload = *v != '\0' ? g_strdup(v) : NULL;
		return TRUE;
	case PK_TRUST_HOST_CA: {
		g_autoptr(GPtrArray) fps = g_ptr_array_new_with_free_func(g_free);
		for (guint i = 0; i < n; i++) {
			char *fp = vc_host_attr_fingerprint_normalize(values[i], error);
			if (fp == NULL)
				return FALSE;
			g_ptr_array_add(fps, fp);
		}
		g_ptr_array_add(fps, NULL);
		g_strfreev(p->trust_host_cas);
		p->trust_host_cas = (GStrv)g_ptr_array_free(g_steal_pointer(&fps), FALSE);
		return TRUE;
	}
	case PK_REQUIRE: {
		g_autoptr(GPtrArray) rules =
		    g_ptr_array_new_with_free_func((GDestroyNotify)vc_policy_placement_rule_free);
		for (guint i = 0; i < n; i++) {
			VcPlacementRule *rule = vc_policy_parse_require(values[i], error);
			if (rule == NULL)
				return FALSE;
			g_ptr_array_add(rules, rule);
		}
		g_ptr_array_unref(p->placement);
		p->placement = g_steal_pointer(&rules);
		return TRUE;
	}
	case PK_CHECK_ON_START:
		return vc_policy_parse_bool(v, &p->check_on_start, error);
	case PK_N:
	default:
		g_assert_not_reached();
	}
}

static VcPolicy *
vc_policy_new_defaults(const char *source, gint64 default_lifetime_s)
{
	VcPolicy *p = g_new0(VcPolicy, 1);
	p->source = g_strdup(source != NULL ? source : "defaults");
	p->key_type = VC_KEY_TYPE_EC_P256;
	p->key_mode = VC_KEY_MODE_HOST;
	p->lifetime_s = default_lifetime_s;
	p->issue_on = VC_ISSUE_ON_START;
	p->revoke_on_stop = FALSE;
	p->cert_path = g_strdup(DEFAULT_CERT_PATH);
	p->chain_path = g_strdup(DEFAULT_CHAIN_PATH);
	p->key_path = g_strdup(DEFAULT_KEY_PATH);
	p->trust_host_cas = g_new0(char *, 1);
	p->placement =
	    g_ptr_array_new_with_free_func((GDestroyNotify)vc_policy_placement_rule_free);
	p->check_on_start = FALSE;
	return p;
}

/* Applies every entry of MAP in key-table order (so the first error is the
 * same on every run, whatever the hash order). */
static gboolean
vc_policy_apply_map(VcPolicy *p, GHashTable *map, GError **error)
{
	GHashTableIter it;
	gpointer k;
	g_autoptr(GError) local = NULL;

	g_hash_table_iter_init(&it, map);
	while (g_hash_table_iter_next(&it, &k, NULL)) {
		if (vc_policy_key_find(k) < 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "unknown policy key \"%s\"", (const char *)k);
			return FALSE;
		}
	}
	for (int i = 0; i < PK_N; i++) {
		const char *const *values;
		if (!g_hash_table_contains(map, policy_keys[i].name))
			continue;
		values = g_hash_table_lookup(map, policy_keys[i].name);
		if (!vc_policy_apply_key(p, (PolicyKey)i, values, &local)) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "%s: %s",
				    policy_keys[i].name, local->message);
			return FALSE;
		}
	}
	if (g_strcmp0(p->key_path, p->cert_path) == 0 ||
	    g_strcmp0(p->key_path, p->chain_path) == 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "key-path: \"%s\" is also the certificate or chain path", p->key_path);
		return FALSE;
	}
	return TRUE;
}

gboolean
vc_policy_map_validate(GHashTable *map, GError **error)
{
	g_autoptr(VcPolicy) p = vc_policy_new_defaults(NULL, 24 * 3600);
	g_return_val_if_fail(map != NULL, FALSE);
	return vc_policy_apply_map(p, map, error);
}

VcPolicy *
vc_policy_new_from_map(GHashTable *map, const char *source, gint64 default_lifetime_s,
		       GError **error)
{
	g_autoptr(VcPolicy) p = vc_policy_new_defaults(source, default_lifetime_s);
	g_autoptr(GError) local = NULL;

	g_return_val_if_fail(map != NULL, NULL);
	if (!vc_policy_apply_map(p, map, &local)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "%s: %s", p->source,
			    local->message);
		return NULL;
	}
	if (p->names == NULL || p->names[0] == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "%s: names: no name templates (set names= in policy.d or "
			    "<virtcert:name> in the domain metadata)",
			    p->source);
		return NULL;
	}
	return g_steal_pointer(&p);
}

/* ---- JSON ------------------------------------------------------------- */

/* RFC 8259 section 7 string escaping; the input is valid UTF-8 (checked on
 * the way in), so only quotes, backslash and controls need escapes. */
static void
vc_policy_json_append_string(GString *out, const char *s)
{
	if (s == NULL) {
		g_string_append(out, "null");
		return;
	}
	g_string_append_c(out, '"');
	for (const char *p = s; *p != '\0'; p++) {
		guchar c = (guchar)*p;
		if (c == '"' || c == '\\')
			g_string_append_printf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			g_string_append_printf(out, "\\u%04x", c);
		else
			g_string_append_c(out, (char)c);
	}
	g_string_append_c(out, '"');
}

static void
vc_policy_json_append_strv(GString *out, const char *const *v)
{
	g_string_append_c(out, '[');
	for (gsize i = 0; v != NULL && v[i] != NULL; i++) {
		if (i > 0)
			g_string_append_c(out, ',');
		vc_policy_json_append_string(out, v[i]);
	}
	g_string_append_c(out, ']');
}

/* One JSON object, keys named like the policy keys; lifetime in seconds,
 * require as [{"attr": A, "values": [...]}]. Written by hand because
 * policy/ does not depend on json-glib. */
char *
vc_policy_to_string(const VcPolicy *policy)
{
	GString *out = g_string_new("{");
	g_return_val_if_fail(policy != NULL, NULL);

	g_string_append(out, "\"source\":");
	vc_policy_json_append_string(out, policy->source);
	g_string_append(out, ",\"names\":");
	vc_policy_json_append_strv(out, (const char *const *)policy->names);
	g_string_append(out, ",\"key\":");
	vc_policy_json_append_string(out, vc_key_type_to_string(policy->key_type));
	g_string_append(out, ",\"key-mode\":");
	vc_policy_json_append_string(out, vc_key_mode_to_string(policy->key_mode));
	g_string_append_printf(out, ",\"lifetime\":%" G_GINT64_FORMAT, policy->lifetime_s);
	g_string_append(out, ",\"issue-on\":");
	vc_policy_json_append_string(out, vc_issue_on_to_string(policy->issue_on));
	g_string_append(out, ",\"on-stop\":");
	vc_policy_json_append_string(out, policy->revoke_on_stop ? "revoke" : "keep");
	g_string_append(out, ",\"cert-path\":");
	vc_policy_json_append_string(out, policy->cert_path);
	g_string_append(out, ",\"chain-path\":");
	vc_policy_json_append_string(out, policy->chain_path);
	g_string_append(out, ",\"key-path\":");
	vc_policy_json_append_string(out, policy->key_path);
	g_string_append(out, ",\"owner\":");
	vc_policy_json_append_string(out, policy->owner);
	g_string_append(out, ",\"reload\":");
	vc_policy_json_append_string(out, policy->reload);
	g_string_append(out, ",\"trust-host-ca\":");
	vc_policy_json_append_strv(out, (const char *const *)policy->trust_host_cas);
	g_string_append(out, ",\"require\":[");
	for (guint i = 0; policy->placement != NULL && i < policy->placement->len; i++) {
		const VcPlacementRule *r = g_ptr_array_index(policy->placement, i);
		if (i > 0)
			g_string_append_c(out, ',');
		g_string_append(out, "{\"attr\":");
		vc_policy_json_append_string(out, r->key);
		g_string_append(out, ",\"values\":");
		vc_policy_json_append_strv(out, (const char *const *)r->values);
		g_string_append_c(out, '}');
	}
	g_string_append_printf(out, "],\"check-on-start\":%s",
			       policy->check_on_start ? "true" : "false");
	if (policy->sources != NULL) {
		/* which source set each value, in key-table order */
		gboolean first = TRUE;
		g_string_append(out, ",\"sources\":{");
		for (int i = 0; i < PK_N; i++) {
			const char *src = g_hash_table_lookup(policy->sources, policy_keys[i].name);
			if (src == NULL)
				continue;
			if (!first)
				g_string_append_c(out, ',');
			first = FALSE;
			vc_policy_json_append_string(out, policy_keys[i].name);
			g_string_append_c(out, ':');
			vc_policy_json_append_string(out, src);
		}
		g_string_append_c(out, '}');
	}
	g_string_append_c(out, '}');
	return g_string_free(out, FALSE);
}

/* ---- policy.d ----------------------------------------------------------- */

typedef struct {
	char *file;
	char *group;
	guint line;
	GStrv match_name;
	GStrv match_uuid;
	GStrv match_project;
	GStrv metadata_names; /* metadata-names: where metadata may name the VM */
	GHashTable *map;
} PolicyGroup;

static void
vc_policy_group_free(PolicyGroup *g)
{
	if (g == NULL)
		return;
	g_free(g->file);
	g_free(g->group);
	g_strfreev(g->match_name);
	g_strfreev(g->match_uuid);
	g_strfreev(g->match_project);
	g_strfreev(g->metadata_names);
	if (g->map != NULL)
		g_hash_table_unref(g->map);
	g_free(g);
}

struct _VcPolicySet {
	GPtrArray *groups;   /* of PolicyGroup* */
	GPtrArray *warnings; /* of char* */
};

VcPolicySet *
vc_policy_set_new(void)
{
	VcPolicySet *set = g_new0(VcPolicySet, 1);
	set->groups = g_ptr_array_new_with_free_func((GDestroyNotify)vc_policy_group_free);
	set->warnings = g_ptr_array_new_with_free_func(g_free);
	return set;
}

void
vc_policy_set_free(VcPolicySet *set)
{
	if (set == NULL)
		return;
	g_ptr_array_unref(set->groups);
	g_ptr_array_unref(set->warnings);
	g_free(set);
}

GPtrArray *
vc_policy_set_get_warnings(VcPolicySet *set)
{
	return set->warnings;
}

guint
vc_policy_set_get_size(VcPolicySet *set)
{
	return set->groups->len;
}

/* Splits DATA into lines (not copied: each entry points into LINES' copy). */
static GStrv
vc_policy_split_lines(const char *data, gsize len)
{
	g_autofree char *copy = g_strndup(data, len);
	return g_strsplit(copy, "\n", -1);
}

/* Line (1-based) of "[GROUP]", 0 if not found. */
static guint
vc_policy_find_group_line(const GStrv lines, const char *group)
{
	for (guint i = 0; lines[i] != NULL; i++) {
		const char *l = lines[i];
		gsize glen = strlen(group);
		while (g_ascii_isspace(*l))
			l++;
		if (l[0] == '[' && strncmp(l + 1, group, glen) == 0 && l[glen + 1] == ']')
			return i + 1;
	}
	return 0;
}

/* Line of "KEY =" inside the group that starts at GROUP_LINE; GROUP_LINE if
 * not found. */
static guint
vc_policy_find_key_line(const GStrv lines, guint group_line, const char *key)
{
	gsize klen = strlen(key);
	if (group_line == 0)
		return 0;
	for (guint i = group_line; lines[i] != NULL; i++) {
		const char *l = lines[i];
		while (g_ascii_isspace(*l))
			l++;
		if (l[0] == '[')
			break;
		if (strncmp(l, key, klen) == 0) {
			const char *r = l + klen;
			while (*r == ' ' || *r == '\t')
				r++;
			if (*r == '=' || *r == '[')
				return i + 1;
		}
	}
	return group_line;
}

/* The first line GKeyFile would refuse (its syntax, roughly: comments,
 * "[group]", "key=value", blank), 0 if none. Used only to put a line number on
 * GKeyFile's own error, which has none. */
static guint
vc_policy_find_syntax_error_line(const GStrv lines)
{
	gboolean in_group = FALSE;
	for (guint i = 0; lines[i] != NULL; i++) {
		const char *l = lines[i];
		gsize n;
		if (!g_utf8_validate(l, -1, NULL))
			return i + 1;
		while (g_ascii_isspace(*l))
			l++;
		n = strlen(l);
		while (n > 0 && g_ascii_isspace(l[n - 1]))
			n--;
		if (n == 0 || l[0] == '#')
			continue;
		if (l[0] == '[') {
			if (l[n - 1] != ']' || n < 3)
				return i + 1;
			for (gsize j = 1; j + 1 < n; j++)
				if (l[j] == '[' || l[j] == ']' || (guchar)l[j] < 0x20)
					return i + 1;
			in_group = TRUE;
			continue;
		}
		if (!in_group || strchr(l, '=') == NULL || l[0] == '=')
			return i + 1;
	}
	return 0;
}

static gboolean
vc_policy_is_match_key(const char *key)
{
	return strcmp(key, "match-name") == 0 || strcmp(key, "match-uuid") == 0 ||
	       strcmp(key, "match-project") == 0 || strcmp(key, "metadata-names") == 0;
}

/* The number of single-character edits (insert, delete, replace, swap of
 * neighbours) from A to B, capped at 3. */
static guint
vc_policy_edit_distance(const char *a, const char *b)
{
	gsize la = strlen(a), lb = strlen(b);
	guint rows[3][40]; /* row K of the table in rows[K % 3] */

	if (la >= 40 || lb >= 40)
		return 3;
	for (gsize j = 0; j <= lb; j++)
		rows[0][j] = (guint)j;
	for (gsize i = 1; i <= la; i++) {
		guint *pp = rows[(i + 1) % 3], *p = rows[(i + 2) % 3], *d = rows[i % 3];
		d[0] = (guint)i;
		for (gsize j = 1; j <= lb; j++) {
			guint cost = a[i - 1] == b[j - 1] ? 0 : 1;
			guint v = MIN(p[j] + 1, d[j - 1] + 1);
			v = MIN(v, p[j - 1] + cost);
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
				v = MIN(v, pp[j - 2] + 1);
			d[j] = v;
		}
	}
	return MIN(rows[la % 3][lb], 3);
}

/* The known policy.d key KEY is likeliest a typo of, or NULL. */
static const char *
vc_policy_key_suggest(const char *key)
{
	static const char *const extra[] = {"match-name", "match-uuid", "match-project",
					    "metadata-names"};
	g_autofree char *lower = g_ascii_strdown(key, -1);
	const char *best = NULL;
	guint best_d = 3;

	g_strdelimit(lower, "_", '-');
	for (int i = 0; i < PK_N + (int)G_N_ELEMENTS(extra); i++) {
		const char *k = i < PK_N ? policy_keys[i].name : extra[i - PK_N];
		guint dist = vc_policy_edit_distance(lower, k);
		if (dist < best_d) {
			best = k;
			best_d = dist;
		}
	}
	return best;
}

/* Reads one group into a PolicyGroup; on error names the offending key in
 * RET_KEY. */
static PolicyGroup *
vc_policy_load_group(GKeyFile *kf, const char *file, const char *group, char **ret_key,
		     GError **error)
{
	g_autoptr(GHashTable) map = vc_policy_map_new();
	g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);
	g_autoptr(GError) local = NULL;
	PolicyGroup *g;
	g_auto(GStrv) match_name = NULL;
	g_auto(GStrv) match_uuid = NULL;
	g_auto(GStrv) match_project = NULL;
	g_auto(GStrv) metadata_names = NULL;
	GStrv *matches[4] = {&match_name, &match_uuid, &match_project, &metadata_names};
	static const char *const match_keys[4] = {"match-name", "match-uuid", "match-project",
						  "metadata-names"};

	for (gsize i = 0; keys != NULL && keys[i] != NULL; i++) {
		const char *key = keys[i];
		g_auto(GStrv) values = NULL;
		if (vc_policy_is_match_key(key) || vc_policy_key_is_list(key)) {
			values = g_key_file_get_string_list(kf, group, key, NULL, &local);
		} else if (vc_policy_key_find(key) >= 0) {
			char *v = g_key_file_get_string(kf, group, key, &local);
			if (v != NULL) {
				values = g_new0(char *, 2);
				values[0] = v;
			}
		} else {
			const char *near = vc_policy_key_suggest(key);
			*ret_key = g_strdup(key);
			if (near != NULL)
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "unknown key (did you mean %s?)", near);
			else
				g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
						    "unknown key (see virtcert-policy(5))");
			return NULL;
		}
		if (values == NULL) {
			*ret_key = g_strdup(key);
			g_propagate_error(error, g_steal_pointer(&local));
			return NULL;
		}
		if (vc_policy_is_match_key(key)) {
			for (gsize m = 0; m < G_N_ELEMENTS(match_keys); m++) {
				if (strcmp(key, match_keys[m]) == 0) {
					g_strfreev(*matches[m]);
					*matches[m] = g_steal_pointer(&values);
				}
			}
		} else {
			GHashTable *one = vc_policy_map_new();
			g_hash_table_insert(one, g_strdup(key), g_strdupv(values));
			/* validate key by key so the warning names the key */
			if (!vc_policy_map_validate(one, &local)) {
				const char *msg = local->message;
				gsize klen = strlen(key);
				g_hash_table_unref(one);
				/* drop the "key: " prefix: the warning names it */
				if (strncmp(msg, key, klen) == 0 &&
				    strncmp(msg + klen, ": ", 2) == 0)
					msg += klen + 2;
				*ret_key = g_strdup(key);
				g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA, msg);
				return NULL;
			}
			g_hash_table_unref(one);
			g_hash_table_insert(map, g_strdup(key), g_steal_pointer(&values));
		}
	}
	for (gsize i = 0; metadata_names != NULL && metadata_names[i] != NULL; i++) {
		/* a DNS subtree: what the CA's name constraints would say */
		const char *sub =
		    metadata_names[i][0] == '.' ? metadata_names[i] + 1 : metadata_names[i];
		if (!vc_name_check_dns(sub, &local)) {
			*ret_key = g_strdup("metadata-names");
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "\"%s\" is not a DNS subtree: %s", metadata_names[i],
				    local->message);
			return NULL;
		}
	}
	for (gsize m = 0; m < G_N_ELEMENTS(match_keys); m++) {
		GStrv list = *matches[m];
		for (gsize i = 0; list != NULL && list[i] != NULL; i++) {
			if (!vc_policy_check_text(list[i], VC_POLICY_VALUE_MAX, &local) ||
			    list[i][0] == '\0') {
				*ret_key = g_strdup(match_keys[m]);
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "\"%s\": %s",
					    list[i],
					    local != NULL ? local->message : "empty pattern");
				return NULL;
			}
		}
	}
	/* the combination (key-path vs cert-path) */
	if (!vc_policy_map_validate(map, &local)) {
		*ret_key = NULL;
		g_propagate_error(error, g_steal_pointer(&local));
		return NULL;
	}
	g = g_new0(PolicyGroup, 1);
	g->file = g_strdup(file);
	g->group = g_strdup(group);
	g->match_name = g_steal_pointer(&match_name);
	g->match_uuid = g_steal_pointer(&match_uuid);
	g->match_project = g_steal_pointer(&match_project);
	g->metadata_names = g_steal_pointer(&metadata_names);
	g->map = g_steal_pointer(&map);
	return g;
}

gboolean
vc_policy_set_load_data(VcPolicySet *set, const char *filename, const char *data, gsize len,
			GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) local = NULL;
	g_auto(GStrv) lines = NULL;
	g_auto(GStrv) groups = NULL;
	g_autoptr(GPtrArray) loaded = NULL;

	g_return_val_if_fail(set != NULL, FALSE);
	g_return_val_if_fail(filename != NULL, FALSE);
	g_return_val_if_fail(data != NULL || len == 0, FALSE);

	if (len > VC_POLICY_FILE_MAX) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "%s: larger than %d octets",
			    filename, VC_POLICY_FILE_MAX);
		return FALSE;
	}
	{
		const char *nul = memchr(data, '\0', len);
		if (nul != NULL) {
			guint line = 1;
			for (const char *p = data; p < nul; p++)
				if (*p == '\n')
					line++;
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "%s:%u: NUL byte in file", filename, line);
			return FALSE;
		}
	}
	lines = vc_policy_split_lines(data, len);
	if (!g_utf8_validate(data, (gssize)len, NULL)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "%s:%u: not valid UTF-8",
			    filename, vc_policy_find_syntax_error_line(lines));
		return FALSE;
	}
	if (!g_key_file_load_from_data(kf, data, len, G_KEY_FILE_NONE, &local)) {
		guint line = vc_policy_find_syntax_error_line(lines);
		if (line > 0)
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "%s:%u: %s", filename,
				    line, local->message);
		else
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "%s: %s", filename,
				    local->message);
		return FALSE;
	}
	/* a group with a typo or a bad value refuses the whole file: half a
	 * file in force would silently change what VMs get (a dropped group
	 * lets another one, or none, select its VMs) */
	groups = g_key_file_get_groups(kf, NULL);
	loaded = g_ptr_array_new_with_free_func((GDestroyNotify)vc_policy_group_free);
	for (gsize i = 0; groups[i] != NULL; i++) {
		g_autofree char *key = NULL;
		guint gline = vc_policy_find_group_line(lines, groups[i]);
		PolicyGroup *g = vc_policy_load_group(kf, filename, groups[i], &key, &local);
		if (g == NULL) {
			guint line =
			    key != NULL ? vc_policy_find_key_line(lines, gline, key) : gline;
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "%s:%u: [%s]%s%s: %s",
				    filename, line, groups[i], key != NULL ? " " : "",
				    key != NULL ? key : "", local->message);
			return FALSE;
		}
		g->line = gline;
		g_ptr_array_add(loaded, g);
	}
	for (guint i = 0; i < loaded->len; i++)
		g_ptr_array_add(set->groups, g_ptr_array_steal_index(loaded, i--));
	return TRUE;
}

static gint
vc_policy_compare_strings(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

gboolean
vc_policy_set_load_dir(VcPolicySet *set, const char *dir, GError **error)
{
	g_autoptr(GDir) d = NULL;
	g_autoptr(GError) local = NULL;
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GString) refused = g_string_new(NULL);
	const char *entry;

	g_return_val_if_fail(set != NULL, FALSE);
	g_return_val_if_fail(dir != NULL, FALSE);

	d = g_dir_open(dir, 0, &local);
	if (d == NULL) {
		if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return TRUE;
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot read policy directory %s: %s",
			    dir, local->message);
		return FALSE;
	}
	while ((entry = g_dir_read_name(d)) != NULL) {
		/* editor backups, dpkg leftovers and hidden files are not policy */
		if (entry[0] == '.' || !g_str_has_suffix(entry, ".conf"))
			continue;
		g_ptr_array_add(names, g_strdup(entry));
	}
	g_ptr_array_sort(names, vc_policy_compare_strings);
	for (guint i = 0; i < names->len; i++) {
		g_autofree char *path = g_build_filename(dir, g_ptr_array_index(names, i), NULL);
		g_autofree char *data = NULL;
		gsize len = 0;
		if (!g_file_test(path, G_FILE_TEST_IS_REGULAR))
			continue;
		if (!g_file_get_contents(path, &data, &len, &local)) {
			g_string_append_printf(refused, "%s%s: %s", refused->len > 0 ? "\n" : "",
					       path, local->message);
			g_clear_error(&local);
			continue;
		}
		if (!vc_policy_set_load_data(set, path, data, len, &local)) {
			g_string_append_printf(refused, "%s%s", refused->len > 0 ? "\n" : "",
					       local->message);
			g_clear_error(&local);
		}
	}
	/* every refused file named, so that one fix-and-reload round does */
	if (refused->len > 0) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA, refused->str);
		return FALSE;
	}
	return TRUE;
}

static gboolean
vc_policy_match_glob_any(const GStrv patterns, const char *s)
{
	if (s == NULL)
		return FALSE;
	for (gsize i = 0; patterns[i] != NULL; i++) {
		g_autoptr(GPatternSpec) spec = g_pattern_spec_new(patterns[i]);
		if (g_pattern_spec_match_string(spec, s))
			return TRUE;
	}
	return FALSE;
}

/* Every match-* key present must match (AND); within a key any pattern may
 * (OR). match-uuid compares case-insensitively, the others are globs. */
static gboolean
vc_policy_group_matches(const PolicyGroup *g, const VcPolicySubject *subject)
{
	if (g->match_name != NULL && !vc_policy_match_glob_any(g->match_name, subject->name))
		return FALSE;
	if (g->match_uuid != NULL) {
		gboolean any = FALSE;
		for (gsize i = 0; g->match_uuid[i] != NULL && subject->uuid != NULL; i++)
			if (g_ascii_strcasecmp(g->match_uuid[i], subject->uuid) == 0)
				any = TRUE;
		if (!any)
			return FALSE;
	}
	if (g->match_project != NULL &&
	    !vc_policy_match_glob_any(g->match_project, subject->project) &&
	    !vc_policy_match_glob_any(g->match_project, subject->project_id))
		return FALSE;
	return TRUE;
}

gboolean
vc_policy_set_any_group_sets(VcPolicySet *set, const char *key, gboolean truthy)
{
	g_return_val_if_fail(set != NULL, FALSE);
	g_return_val_if_fail(key != NULL, FALSE);
	for (guint i = 0; i < set->groups->len; i++) {
		const PolicyGroup *g = g_ptr_array_index(set->groups, i);
		GStrv v = g_hash_table_lookup(g->map, key);
		gboolean b = FALSE;
		if (v == NULL || v[0] == NULL)
			continue;
		if (!truthy || !vc_policy_parse_bool(v[0], &b, NULL) || b)
			return TRUE;
	}
	return FALSE;
}

GStrv
vc_policy_set_lookup_bounds(VcPolicySet *set, const VcPolicySubject *subject)
{
	g_return_val_if_fail(set != NULL && subject != NULL, NULL);
	for (guint i = 0; i < set->groups->len; i++) {
		const PolicyGroup *g = g_ptr_array_index(set->groups, i);
		if (vc_policy_group_matches(g, subject))
			return g_strdupv(g->metadata_names);
	}
	return NULL;
}

GHashTable *
vc_policy_set_lookup(VcPolicySet *set, const VcPolicySubject *subject, char **ret_source)
{
	g_return_val_if_fail(set != NULL, NULL);
	g_return_val_if_fail(subject != NULL, NULL);
	for (guint i = 0; i < set->groups->len; i++) {
		const PolicyGroup *g = g_ptr_array_index(set->groups, i);
		if (!vc_policy_group_matches(g, subject))
			continue;
		if (ret_source != NULL)
			*ret_source = g_strdup_printf("%s [%s]", g->file, g->group);
		return vc_policy_map_copy(g->map);
	}
	return NULL;
}
