/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-qemu-conf.h"

#include <string.h>

#include "vc-error.h"

#define VC_QEMU_CONF_MAX (1024 * 1024)

typedef struct {
	const char *p;
	const char *end;
	guint line;
	const char *what;
} VcQemuConfLexer;

/* whitespace, line ends and comments */
static void
vc_qemu_conf_skip(VcQemuConfLexer *lx, gboolean newlines)
{
	while (lx->p < lx->end) {
		if (*lx->p == '#') {
			while (lx->p < lx->end && *lx->p != '\n')
				lx->p++;
		} else if (*lx->p == '\n' && newlines) {
			lx->line++;
			lx->p++;
		} else if (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\r') {
			lx->p++;
		} else {
			return;
		}
	}
}

static gboolean
vc_qemu_conf_fail(VcQemuConfLexer *lx, const char *msg, GError **error)
{
	g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "%s, line %u: %s", lx->what, lx->line,
		    msg);
	return FALSE;
}

/* One value: an integer (RET_INT), a string (RET_STR) or a list (skipped). */
static gboolean
vc_qemu_conf_value(VcQemuConfLexer *lx, gint64 *ret_int, gboolean *ret_is_int, char **ret_str,
		   guint depth, GError **error)
{
	vc_qemu_conf_skip(lx, depth > 0);
	if (lx->p >= lx->end || *lx->p == '\n')
		return vc_qemu_conf_fail(lx, "a value is missing", error);
	if (*lx->p == '"' || *lx->p == '\'') {
		char quote = *lx->p++;
		const char *start = lx->p;
		while (lx->p < lx->end && *lx->p != quote && *lx->p != '\n')
			lx->p++;
		if (lx->p >= lx->end || *lx->p != quote)
			return vc_qemu_conf_fail(lx, "a string is not closed", error);
		if (ret_str != NULL)
			*ret_str = g_strndup(start, (gsize)(lx->p - start));
		lx->p++;
		return TRUE;
	}
	if (*lx->p == '[') {
		if (depth > 4)
			return vc_qemu_conf_fail(lx, "lists nested too deep", error);
		lx->p++;
		for (;;) {
			vc_qemu_conf_skip(lx, TRUE);
			if (lx->p < lx->end && *lx->p == ']') {
				lx->p++;
				return TRUE;
			}
			if (!vc_qemu_conf_value(lx, NULL, NULL, NULL, depth + 1, error))
				return FALSE;
			vc_qemu_conf_skip(lx, TRUE);
			if (lx->p < lx->end && *lx->p == ',')
				lx->p++;
			else if (lx->p >= lx->end || *lx->p != ']')
				return vc_qemu_conf_fail(lx, "a list is not closed", error);
		}
	}
	if (*lx->p == '-' || g_ascii_isdigit(*lx->p)) {
		const char *start = lx->p;
		g_autofree char *num = NULL;
		gint64 v = 0;
		lx->p++;
		while (lx->p < lx->end && g_ascii_isdigit(*lx->p))
			lx->p++;
		num = g_strndup(start, (gsize)(lx->p - start));
		if (!g_ascii_string_to_signed(num, 10, G_MININT64, G_MAXINT64, &v, NULL))
			return vc_qemu_conf_fail(lx, "a number is malformed", error);
		if (ret_int != NULL)
			*ret_int = v;
		if (ret_is_int != NULL)
			*ret_is_int = TRUE;
		return TRUE;
	}
	return vc_qemu_conf_fail(lx, "expected a number, a \"string\" or a [list]", error);
}

static void
vc_qemu_conf_take(char **field, char **value)
{
	g_free(*field);
	*field = g_steal_pointer(value);
}

VcQemuConf *
vc_qemu_conf_parse(const char *text, const char *what, GError **error)
{
	VcQemuConfLexer lx = {text, text + strlen(text), 1, what};
	g_autoptr(VcQemuConf) conf = g_new0(VcQemuConf, 1);
	gint64 force = 0, verify = -1, default_verify = -1;
	g_autofree char *migrate_dir = NULL;
	g_autofree char *default_dir = NULL;

	for (;;) {
		const char *start;
		g_autofree char *key = NULL;
		g_autofree char *str = NULL;
		gint64 num = 0;
		gboolean is_int = FALSE;

		vc_qemu_conf_skip(&lx, TRUE);
		if (lx.p >= lx.end)
			break;
		start = lx.p;
		while (lx.p < lx.end && (g_ascii_isalnum(*lx.p) || *lx.p == '_' || *lx.p == '.'))
			lx.p++;
		if (lx.p == start) {
			vc_qemu_conf_fail(&lx, "expected a setting name", error);
			return NULL;
		}
		key = g_strndup(start, (gsize)(lx.p - start));
		vc_qemu_conf_skip(&lx, FALSE);
		if (lx.p >= lx.end || *lx.p != '=') {
			vc_qemu_conf_fail(&lx, "expected '=' after the setting name", error);
			return NULL;
		}
		lx.p++;
		if (!vc_qemu_conf_value(&lx, &num, &is_int, &str, 0, error))
			return NULL;
		vc_qemu_conf_skip(&lx, FALSE);
		if (lx.p < lx.end && *lx.p == ';')
			lx.p++;
		vc_qemu_conf_skip(&lx, FALSE);
		if (lx.p < lx.end && *lx.p != '\n') {
			vc_qemu_conf_fail(&lx, "more than one value on a line", error);
			return NULL;
		}
		if (g_str_equal(key, "migrate_tls_force") && is_int)
			force = num;
		else if (g_str_equal(key, "migrate_tls_x509_verify") && is_int)
			verify = num;
		else if (g_str_equal(key, "default_tls_x509_verify") && is_int)
			default_verify = num;
		else if (g_str_equal(key, "migrate_tls_x509_cert_dir") && str != NULL)
			vc_qemu_conf_take(&migrate_dir, &str);
		else if (g_str_equal(key, "default_tls_x509_cert_dir") && str != NULL)
			vc_qemu_conf_take(&default_dir, &str);
	}
	conf->tls_force = force != 0;
	/* libvirt: migrate_tls_x509_verify defaults to default_tls_x509_verify,
	 * which defaults to 1 */
	conf->tls_verify = verify >= 0 ? verify != 0 : default_verify != 0;
	conf->cert_dir = g_strdup(migrate_dir != NULL	? migrate_dir
				  : default_dir != NULL ? default_dir
							: "/etc/pki/qemu");
	return g_steal_pointer(&conf);
}

VcQemuConf *
vc_qemu_conf_load(const char *path, GError **error)
{
	g_autofree char *text = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &text, &len, error))
		return NULL;
	if (len > VC_QEMU_CONF_MAX || memchr(text, '\0', len) != NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "%s is not a qemu.conf (binary, or over 1 MiB)", path);
		return NULL;
	}
	return vc_qemu_conf_parse(text, path, error);
}

void
vc_qemu_conf_free(VcQemuConf *conf)
{
	if (conf == NULL)
		return;
	g_free(conf->cert_dir);
	g_free(conf);
}

gboolean
vc_qemu_conf_check_tls(const char *path, char **ret_reason)
{
	static const char *const files[] = {"ca-cert.pem", "server-cert.pem", "client-cert.pem"};
	g_autoptr(GError) error = NULL;
	g_autoptr(VcQemuConf) conf = vc_qemu_conf_load(path, &error);
	g_autoptr(GString) missing = g_string_new(NULL);

	if (conf == NULL) {
		*ret_reason =
		    g_strdup_printf("cannot read libvirt's qemu.conf: %s", error->message);
		return FALSE;
	}
	if (!conf->tls_force) {
		*ret_reason = g_strdup_printf("%s does not set migrate_tls_force = 1, so libvirt "
					      "here migrates without TLS when asked to",
					      path);
		return FALSE;
	}
	if (!conf->tls_verify) {
		*ret_reason = g_strdup_printf("%s turns off migrate_tls_x509_verify (or "
					      "default_tls_x509_verify): QEMU would accept a "
					      "peer without a host certificate",
					      path);
		return FALSE;
	}
	for (gsize i = 0; i < G_N_ELEMENTS(files); i++) {
		g_autofree char *f = g_build_filename(conf->cert_dir, files[i], NULL);
		if (!g_file_test(f, G_FILE_TEST_IS_REGULAR))
			g_string_append_printf(missing, "%s%s", missing->len > 0 ? ", " : "",
					       files[i]);
	}
	if (missing->len > 0) {
		*ret_reason = g_strdup_printf("the migration TLS directory %s (%s) has no %s: run "
					      "virtcert host install-libvirt-tls",
					      conf->cert_dir, path, missing->str);
		return FALSE;
	}
	return TRUE;
}
