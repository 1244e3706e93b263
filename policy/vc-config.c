/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "vc-config.h"
#include "vc-error.h"
#include "vc-text.h"

/* Durations above this are certainly a typo (and would overflow later
 * arithmetic in microseconds): 100 years. */
#define VC_DURATION_MAX_S (G_GINT64_CONSTANT(100) * 366 * 86400)

/* the build's directories (policy/meson.build) */
#ifndef VC_DEFAULT_STATE_DIR
#define VC_DEFAULT_STATE_DIR "/var/lib/virtcert"
#endif
#ifndef VC_DEFAULT_POLICY_DIR
#define VC_DEFAULT_POLICY_DIR "/etc/virtcert/policy.d"
#endif
#ifndef VC_DEFAULT_CONTROL_SOCKET
#define VC_DEFAULT_CONTROL_SOCKET "/run/virtcert/control.sock"
#endif

VcConfig *
vc_config_new_default(void)
{
	VcConfig *c = g_new0(VcConfig, 1);
	c->state_dir = g_strdup(VC_DEFAULT_STATE_DIR);
	c->policy_dir = g_strdup(VC_DEFAULT_POLICY_DIR);
	c->libvirt_uri = g_strdup("qemu:///system");
	c->control_socket = g_strdup(VC_DEFAULT_CONTROL_SOCKET);
	c->control_group = g_strdup("virtcert");
	c->http_address = g_strdup("127.0.0.1:8458");
	c->issue_all = FALSE;
	c->reconcile_interval_s = 300;
	/* no public-url, crl-url, ocsp-url: a default here would put a URL
	 * into certificates that no other machine can reach */
	c->crl_validity_s = 24 * 3600;
	c->default_lifetime_s = 24 * 3600;
	c->backdate_s = 5 * 60;
	c->ocsp_sign_with_ca = FALSE;
	c->ocsp_validity_s = 3600;
	c->ocsp_responder_lifetime_s = 2 * 24 * 3600;
	c->hook_timeout_ms = 2000;
	c->hook_fail_open = FALSE;
	c->peer_address = g_strdup("");
	c->handover_grace_s = 60;
	c->http_max_connections = 256;
	c->http_header_timeout_ms = 10 * 1000;
	c->http_idle_timeout_ms = 30 * 1000;
	c->http_request_timeout_ms = 30 * 1000;
	c->peer_max_connections = 64;
	c->control_max_connections = 64;
	c->control_timeout_ms = 10 * 1000;
	c->guest_timeout_s = 60;
	c->guest_command_timeout_s = 10;
	c->host_crl_refresh_s = 3600;
	c->qemu_conf = g_strdup("/etc/libvirt/qemu.conf");
	return c;
}

void
vc_config_free(VcConfig *config)
{
	if (config == NULL)
		return;
	g_free(config->path);
	g_free(config->state_dir);
	g_free(config->policy_dir);
	g_free(config->libvirt_uri);
	g_free(config->control_socket);
	g_free(config->control_group);
	g_free(config->http_address);
	g_free(config->public_url);
	g_free(config->crl_url);
	g_free(config->ocsp_url);
	g_free(config->ca_issuers_url);
	g_free(config->host_cert);
	g_free(config->host_key);
	g_free(config->host_ca);
	g_free(config->host_crl);
	g_free(config->host_fqdn);
	g_free(config->owner_ca);
	g_free(config->owner_crl);
	g_free(config->qemu_conf);
	g_free(config->host_crl_url);
	g_free(config->peer_address);
	g_free(config->peer_url);
	g_free(config);
}

void
vc_config_set_state_dir(VcConfig *config, const char *state_dir)
{
	g_return_if_fail(config != NULL);
	g_return_if_fail(state_dir != NULL);
	g_free(config->state_dir);
	config->state_dir = g_strdup(state_dir);
}

char *
vc_config_get_host_path(const VcConfig *config, const char *which)
{
	static const struct {
		const char *which;
		gsize offset;
		const char *file;
	} files[] = {
	    {"cert", G_STRUCT_OFFSET(VcConfig, host_cert), "host.pem"},
	    {"key", G_STRUCT_OFFSET(VcConfig, host_key), "host.key"},
	    {"ca", G_STRUCT_OFFSET(VcConfig, host_ca), "hostca.pem"},
	    {"crl", G_STRUCT_OFFSET(VcConfig, host_crl), "hostca.crl"},
	};

	g_return_val_if_fail(config != NULL && which != NULL, NULL);
	for (gsize i = 0; i < G_N_ELEMENTS(files); i++) {
		const char *set;
		if (strcmp(files[i].which, which) != 0)
			continue;
		set = G_STRUCT_MEMBER(const char *, config, files[i].offset);
		if (set != NULL)
			return g_strdup(set);
		return g_build_filename(config->state_dir, "host", files[i].file, NULL);
	}
	g_return_val_if_reached(NULL);
}

char *
vc_config_get_ca_url(const VcConfig *config, VcCaUrlKind kind, const char *ca_id)
{
	const char *set = NULL;
	g_autoptr(GString) s = NULL;

	g_return_val_if_fail(config != NULL && ca_id != NULL, NULL);
	switch (kind) {
	case VC_CA_URL_CRL:
		set = config->crl_url;
		break;
	case VC_CA_URL_OCSP:
		set = config->ocsp_url;
		break;
	case VC_CA_URL_CA_ISSUERS:
		set = config->ca_issuers_url;
		break;
	default:
		g_return_val_if_reached(NULL);
	}
	if (set != NULL && *set == '\0')
		return NULL;
	if (set != NULL) {
		s = g_string_new(set);
		g_string_replace(s, "{ca}", ca_id, 0);
		return g_string_free(g_steal_pointer(&s), FALSE);
	}
	if (config->public_url == NULL)
		return NULL;
	switch (kind) {
	case VC_CA_URL_CRL:
		return g_strdup_printf("%s/crl/%s.crl", config->public_url, ca_id);
	case VC_CA_URL_OCSP:
		return g_strdup_printf("%s/ocsp", config->public_url);
	case VC_CA_URL_CA_ISSUERS:
		return g_strdup_printf("%s/ca/%s.crt", config->public_url, ca_id);
	default:
		g_return_val_if_reached(NULL);
	}
}

/* Parses "<digits><unit>" with the given units; the unit multiplies. */
static gboolean
vc_config_parse_number_unit(const char *s, gint64 *ret_value, const char **ret_unit)
{
	guint64 v = 0;
	const char *p = s;
	if (s == NULL || !g_ascii_isdigit(*s))
		return FALSE;
	for (; g_ascii_isdigit(*p); p++) {
		if (v > (G_MAXINT64 - 9) / 10)
			return FALSE;
		v = v * 10 + (guint64)(*p - '0');
	}
	*ret_value = (gint64)v;
	*ret_unit = p;
	return TRUE;
}

gboolean
vc_duration_parse(const char *s, gint64 *ret_seconds, GError **error)
{
	gint64 v = 0;
	gint64 mult = 0;
	const char *unit = NULL;

	if (!vc_config_parse_number_unit(s, &v, &unit)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "invalid duration \"%s\": expected a number with an optional unit "
			    "s, m, h or d (\"90\", \"15m\", \"24h\", \"7d\")",
			    s != NULL ? s : "");
		return FALSE;
	}
	if (g_strcmp0(unit, "") == 0 || g_strcmp0(unit, "s") == 0)
		mult = 1;
	else if (g_strcmp0(unit, "m") == 0)
		mult = 60;
	else if (g_strcmp0(unit, "h") == 0)
		mult = 3600;
	else if (g_strcmp0(unit, "d") == 0)
		mult = 86400;
	if (mult == 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "invalid duration \"%s\": unknown unit \"%s\" (use s, m, h or d)", s,
			    unit);
		return FALSE;
	}
	if (v > VC_DURATION_MAX_S / mult) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "invalid duration \"%s\": too long", s);
		return FALSE;
	}
	if (ret_seconds != NULL)
		*ret_seconds = v * mult;
	return TRUE;
}

/* "2000", "2000ms", "2s": the hook timeout is in milliseconds. */
static gboolean
vc_config_parse_milliseconds(const char *s, gint64 *ret_ms, GError **error)
{
	gint64 v = 0;
	const char *unit = NULL;
	if (vc_config_parse_number_unit(s, &v, &unit)) {
		if ((*unit == '\0' || strcmp(unit, "ms") == 0) && v <= 3600 * 1000) {
			*ret_ms = v;
			return TRUE;
		}
		if (strcmp(unit, "s") == 0 && v <= 3600) {
			*ret_ms = v * 1000;
			return TRUE;
		}
	}
	g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
		    "invalid timeout \"%s\": expected milliseconds (\"2000\", \"2000ms\") or "
		    "seconds (\"2s\"), at most one hour",
		    s != NULL ? s : "");
	return FALSE;
}

typedef enum {
	KEY_PATH,	  /* string, relative to the file's directory */
	KEY_STRING,	  /* non-empty string */
	KEY_ADDRESS,	  /* host:port or "" */
	KEY_URL,	  /* http:// or https://; "" none (NULL) */
	KEY_URL_TEMPLATE, /* http:// or https://; "" kept: explicitly none */
	KEY_BASE_URL,	  /* http(s)://HOST[:PORT][/PATH], no query; "" none (NULL) */
	KEY_BOOL,
	KEY_DURATION,  /* positive */
	KEY_MS,	       /* positive milliseconds */
	KEY_COUNT,     /* 1 to VC_CONFIG_COUNT_MAX */
	KEY_SIGN_WITH, /* "ca" (TRUE) or "responder" (FALSE) */
} KeyKind;

/* more connections than any descriptor limit allows */
#define VC_CONFIG_COUNT_MAX 1000000

typedef struct {
	const char *group;
	const char *key;
	KeyKind kind;
	gsize offset;
} KeyDesc;

static const KeyDesc keys[] = {
    {"daemon", "state-dir", KEY_PATH, G_STRUCT_OFFSET(VcConfig, state_dir)},
    {"daemon", "policy-dir", KEY_PATH, G_STRUCT_OFFSET(VcConfig, policy_dir)},
    {"daemon", "libvirt-uri", KEY_STRING, G_STRUCT_OFFSET(VcConfig, libvirt_uri)},
    {"daemon", "control-socket", KEY_PATH, G_STRUCT_OFFSET(VcConfig, control_socket)},
    {"daemon", "control-group", KEY_STRING, G_STRUCT_OFFSET(VcConfig, control_group)},
    {"daemon", "http-address", KEY_ADDRESS, G_STRUCT_OFFSET(VcConfig, http_address)},
    {"daemon", "issue-all", KEY_BOOL, G_STRUCT_OFFSET(VcConfig, issue_all)},
    {"daemon", "reconcile-interval", KEY_DURATION, G_STRUCT_OFFSET(VcConfig, reconcile_interval_s)},
    {"ca", "public-url", KEY_BASE_URL, G_STRUCT_OFFSET(VcConfig, public_url)},
    {"ca", "crl-url", KEY_URL_TEMPLATE, G_STRUCT_OFFSET(VcConfig, crl_url)},
    {"ca", "ocsp-url", KEY_URL_TEMPLATE, G_STRUCT_OFFSET(VcConfig, ocsp_url)},
    {"ca", "ca-issuers-url", KEY_URL_TEMPLATE, G_STRUCT_OFFSET(VcConfig, ca_issuers_url)},
    {"ca", "crl-validity", KEY_DURATION, G_STRUCT_OFFSET(VcConfig, crl_validity_s)},
    {"ca", "default-lifetime", KEY_DURATION, G_STRUCT_OFFSET(VcConfig, default_lifetime_s)},
    {"ca", "backdate", KEY_DURATION, G_STRUCT_OFFSET(VcConfig, backdate_s)},
    {"ocsp", "sign-with", KEY_SIGN_WITH, G_STRUCT_OFFSET(VcConfig, ocsp_sign_with_ca)},
    {"ocsp", "validity", KEY_DURATION, G_STRUCT_OFFSET(VcConfig, ocsp_validity_s)},
    {"ocsp", "responder-lifetime", KEY_DURATION,
     G_STRUCT_OFFSET(VcConfig, ocsp_responder_lifetime_s)},
    {"hook", "timeout", KEY_MS, G_STRUCT_OFFSET(VcConfig, hook_timeout_ms)},
    {"hook", "fail-open", KEY_BOOL, G_STRUCT_OFFSET(VcConfig, hook_fail_open)},
    {"host", "cert", KEY_PATH, G_STRUCT_OFFSET(VcConfig, host_cert)},
    {"host", "key", KEY_PATH, G_STRUCT_OFFSET(VcConfig, host_key)},
    {"host", "ca", KEY_PATH, G_STRUCT_OFFSET(VcConfig, host_ca)},
    {"host", "crl", KEY_PATH, G_STRUCT_OFFSET(VcConfig, host_crl)},
    {"host", "fqdn", KEY_STRING, G_STRUCT_OFFSET(VcConfig, host_fqdn)},
    {"host", "crl-refresh", KEY_DURATION, G_STRUCT_OFFSET(VcConfig, host_crl_refresh_s)},
    {"host", "crl-url", KEY_URL, G_STRUCT_OFFSET(VcConfig, host_crl_url)},
    {"peer", "address", KEY_ADDRESS, G_STRUCT_OFFSET(VcConfig, peer_address)},
    {"peer", "url", KEY_URL, G_STRUCT_OFFSET(VcConfig, peer_url)},
    {"peer", "handover-grace", KEY_DURATION, G_STRUCT_OFFSET(VcConfig, handover_grace_s)},
    {"peer", "max-connections", KEY_COUNT, G_STRUCT_OFFSET(VcConfig, peer_max_connections)},
    {"http", "max-connections", KEY_COUNT, G_STRUCT_OFFSET(VcConfig, http_max_connections)},
    {"http", "header-timeout", KEY_MS, G_STRUCT_OFFSET(VcConfig, http_header_timeout_ms)},
    {"http", "idle-timeout", KEY_MS, G_STRUCT_OFFSET(VcConfig, http_idle_timeout_ms)},
    {"http", "request-timeout", KEY_MS, G_STRUCT_OFFSET(VcConfig, http_request_timeout_ms)},
    {"daemon", "control-max-connections", KEY_COUNT,
     G_STRUCT_OFFSET(VcConfig, control_max_connections)},
    {"daemon", "control-timeout", KEY_MS, G_STRUCT_OFFSET(VcConfig, control_timeout_ms)},
    {"guest", "timeout", KEY_DURATION, G_STRUCT_OFFSET(VcConfig, guest_timeout_s)},
    {"guest", "command-timeout", KEY_DURATION, G_STRUCT_OFFSET(VcConfig, guest_command_timeout_s)},
    {"placement", "owner-ca", KEY_PATH, G_STRUCT_OFFSET(VcConfig, owner_ca)},
    {"placement", "owner-crl", KEY_PATH, G_STRUCT_OFFSET(VcConfig, owner_crl)},
    {"placement", "require-signed", KEY_BOOL, G_STRUCT_OFFSET(VcConfig, require_signed)},
    {"placement", "require-tls", KEY_BOOL, G_STRUCT_OFFSET(VcConfig, require_tls)},
    {"placement", "qemu-conf", KEY_PATH, G_STRUCT_OFFSET(VcConfig, qemu_conf)},
};

static const KeyDesc *
vc_config_key_find(const char *group, const char *key)
{
	for (gsize i = 0; i < G_N_ELEMENTS(keys); i++)
		if (strcmp(keys[i].group, group) == 0 && strcmp(keys[i].key, key) == 0)
			return &keys[i];
	return NULL;
}

static gboolean
vc_config_group_known(const char *group)
{
	for (gsize i = 0; i < G_N_ELEMENTS(keys); i++)
		if (strcmp(keys[i].group, group) == 0)
			return TRUE;
	return FALSE;
}

/* "host:port", "[v6]:port" with port 1..65535. */
static gboolean
vc_config_address_ok(const char *s)
{
	const char *colon;
	gint64 port = 0;
	const char *end = NULL;
	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close == s + 1 || close[1] != ':')
			return FALSE;
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || colon == s || memchr(s, ':', (gsize)(colon - s)) != NULL)
			return FALSE;
	}
	if (!vc_config_parse_number_unit(colon + 1, &port, &end) || *end != '\0')
		return FALSE;
	return port >= 1 && port <= 65535;
}

/* A base URL relying parties can resolve: http or https, a host, no user
 * info, query or fragment (paths are appended to it). */
static gboolean
vc_config_base_url_ok(const char *value, GError **error)
{
	g_autoptr(GUri) uri = g_uri_parse(value, G_URI_FLAGS_NONE, NULL);
	const char *scheme = uri != NULL ? g_uri_get_scheme(uri) : NULL;

	if (uri == NULL || (g_strcmp0(scheme, "http") != 0 && g_strcmp0(scheme, "https") != 0) ||
	    g_uri_get_host(uri) == NULL || *g_uri_get_host(uri) == '\0') {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "\"%s\" is not an http:// or https:// URL with a host name "
			    "(e.g. http://ca.example.com:8458)",
			    value);
		return FALSE;
	}
	if (g_uri_get_userinfo(uri) != NULL || g_uri_get_query(uri) != NULL ||
	    g_uri_get_fragment(uri) != NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "\"%s\": a base URL has no user, query or fragment", value);
		return FALSE;
	}
	return TRUE;
}

static gboolean
vc_config_set_value(VcConfig *c, const KeyDesc *d, const char *value, const char *base_dir,
		    GError **error)
{
	char **str_field = (char **)G_STRUCT_MEMBER_P(c, d->offset);
	gint64 *int_field = (gint64 *)G_STRUCT_MEMBER_P(c, d->offset);
	gboolean *bool_field = (gboolean *)G_STRUCT_MEMBER_P(c, d->offset);

	if (vc_text_has_control_chars(value)) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "control characters are not allowed");
		return FALSE;
	}
	switch (d->kind) {
	case KEY_PATH:
		if (*value == '\0') {
			g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA, "empty path");
			return FALSE;
		}
		g_free(*str_field);
		/* relative to the configuration file, so a test can keep a
		 * whole setup in one temporary directory */
		*str_field = g_path_is_absolute(value) || base_dir == NULL
				 ? g_strdup(value)
				 : g_canonicalize_filename(value, base_dir);
		return TRUE;
	case KEY_STRING:
		if (*value == '\0') {
			g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA, "empty value");
			return FALSE;
		}
		g_free(*str_field);
		*str_field = g_strdup(value);
		return TRUE;
	case KEY_ADDRESS:
		if (*value != '\0' && !vc_config_address_ok(value)) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "\"%s\" is not HOST:PORT ([V6]:PORT for IPv6; empty "
				    "disables HTTP)",
				    value);
			return FALSE;
		}
		g_free(*str_field);
		*str_field = g_strdup(value);
		return TRUE;
	case KEY_BASE_URL:
		if (*value == '\0') {
			g_clear_pointer(str_field, g_free);
			return TRUE;
		}
		if (!vc_config_base_url_ok(value, error))
			return FALSE;
		g_free(*str_field);
		/* one form, so that "<base>/crl/..." has one slash */
		*str_field = g_strdup(value);
		while (g_str_has_suffix(*str_field, "/"))
			(*str_field)[strlen(*str_field) - 1] = '\0';
		return TRUE;
	case KEY_URL:
	case KEY_URL_TEMPLATE:
		/* empty: none (no CRL distribution point, no OCSP URL, no peer);
		 * a template keeps "" so that it overrides public-url */
		if (*value == '\0') {
			g_free(*str_field);
			*str_field = d->kind == KEY_URL_TEMPLATE ? g_strdup("") : NULL;
			return TRUE;
		}
		if (!g_str_has_prefix(value, "http://") && !g_str_has_prefix(value, "https://")) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "\"%s\" is not an http:// or https:// URL", value);
			return FALSE;
		}
		g_free(*str_field);
		*str_field = g_strdup(value);
		return TRUE;
	case KEY_BOOL:
		if (g_ascii_strcasecmp(value, "true") == 0 ||
		    g_ascii_strcasecmp(value, "yes") == 0 || strcmp(value, "1") == 0) {
			*bool_field = TRUE;
			return TRUE;
		}
		if (g_ascii_strcasecmp(value, "false") == 0 ||
		    g_ascii_strcasecmp(value, "no") == 0 || strcmp(value, "0") == 0) {
			*bool_field = FALSE;
			return TRUE;
		}
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "\"%s\" is not true or false",
			    value);
		return FALSE;
	case KEY_DURATION: {
		gint64 v = 0;
		if (!vc_duration_parse(value, &v, error))
			return FALSE;
		/* backdate may be zero; every interval must be positive */
		if (v == 0 && strcmp(d->key, "backdate") != 0) {
			g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "must be greater than zero");
			return FALSE;
		}
		*int_field = v;
		return TRUE;
	}
	case KEY_MS: {
		gint64 v = 0;
		if (!vc_config_parse_milliseconds(value, &v, error))
			return FALSE;
		if (v == 0) {
			g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "must be greater than zero");
			return FALSE;
		}
		*int_field = v;
		return TRUE;
	}
	case KEY_SIGN_WITH:
		if (strcmp(value, "ca") != 0 && strcmp(value, "responder") != 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "\"%s\" is neither \"responder\" (a delegated responder "
				    "certificate) nor \"ca\" (the CA key)",
				    value);
			return FALSE;
		}
		*bool_field = strcmp(value, "ca") == 0;
		return TRUE;
	case KEY_COUNT: {
		guint64 v = 0;
		if (!g_ascii_string_to_unsigned(value, 10, 1, VC_CONFIG_COUNT_MAX, &v, NULL)) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "\"%s\" is not a whole number from 1 to %d", value,
				    VC_CONFIG_COUNT_MAX);
			return FALSE;
		}
		*int_field = (gint64)v;
		return TRUE;
	}
	default:
		g_assert_not_reached();
	}
}

VcConfig *
vc_config_load(const char *path, gboolean required, GError **error)
{
	g_autoptr(VcConfig) c = vc_config_new_default();
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) local = NULL;
	g_auto(GStrv) groups = NULL;
	g_autofree char *abs = NULL;
	g_autofree char *base_dir = NULL;

	g_return_val_if_fail(path != NULL, NULL);

	if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &local)) {
		if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
			if (!required)
				return g_steal_pointer(&c);
			g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND,
				    "configuration file %s does not exist", path);
			return NULL;
		}
		g_set_error(error, VC_ERROR,
			    local->domain == G_FILE_ERROR ? VC_ERROR_IO : VC_ERROR_INVALID_DATA,
			    "%s: %s", path, local->message);
		return NULL;
	}
	abs = g_canonicalize_filename(path, NULL);
	base_dir = g_path_get_dirname(abs);
	c->path = g_strdup(path);

	groups = g_key_file_get_groups(kf, NULL);
	for (gsize i = 0; groups[i] != NULL; i++) {
		g_auto(GStrv) names = NULL;
		if (!vc_config_group_known(groups[i])) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "%s: unknown group [%s] (known: [daemon] [ca] [ocsp] [hook] "
				    "[host] [peer] [http] [placement])",
				    path, groups[i]);
			return NULL;
		}
		names = g_key_file_get_keys(kf, groups[i], NULL, NULL);
		for (gsize j = 0; names != NULL && names[j] != NULL; j++) {
			const KeyDesc *d = vc_config_key_find(groups[i], names[j]);
			g_autofree char *value = NULL;
			if (d == NULL) {
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "%s: [%s] unknown key \"%s\"", path, groups[i],
					    names[j]);
				return NULL;
			}
			value = g_key_file_get_string(kf, groups[i], names[j], &local);
			if (value == NULL || !vc_config_set_value(c, d, value, base_dir, &local)) {
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "%s: [%s] %s: %s", path, groups[i], names[j],
					    local->message);
				return NULL;
			}
		}
	}
	if (c->require_signed && c->owner_ca == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "%s: [placement] require-signed=yes needs owner-ca=FILE (the owner CA "
			    "whose signatures this host accepts)",
			    path);
		return NULL;
	}
	return g_steal_pointer(&c);
}
