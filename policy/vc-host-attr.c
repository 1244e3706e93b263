/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host attribute and host CA fingerprint syntax, shared by the policy parser
 * and the host identity. */
#include <string.h>

#include "vc-error.h"
#include "vc-host-attr.h"

/* SHA-256 in hex */
#define VC_HOST_ATTR_FINGERPRINT_LEN 64

gboolean
vc_host_attr_key_is_valid(const char *key)
{
	gsize len = strlen(key);

	return len > 0 && len <= VC_HOST_ATTR_MAX &&
	       strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789-") == len;
}

gboolean
vc_host_attr_value_is_valid(const char *value)
{
	gsize len = strlen(value);

	if (len == 0 || len > VC_HOST_ATTR_MAX)
		return FALSE;
	for (const char *p = value; *p != '\0'; p++)
		if (!(g_ascii_isalnum(*p) || strchr("._:-", *p) != NULL))
			return FALSE;
	return TRUE;
}

char *
vc_host_attr_fingerprint_normalize(const char *fingerprint, GError **error)
{
	g_autoptr(GString) out = g_string_new(NULL);
	gboolean ok = fingerprint != NULL;

	for (const char *p = fingerprint; ok && *p != '\0'; p++) {
		if (*p == ':')
			continue;
		ok = g_ascii_isxdigit(*p) && out->len < VC_HOST_ATTR_FINGERPRINT_LEN;
		g_string_append_c(out, g_ascii_tolower(*p));
	}
	if (!ok || out->len != VC_HOST_ATTR_FINGERPRINT_LEN) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "\"%s\" is not a SHA-256 fingerprint (64 hex digits)",
			    fingerprint != NULL ? fingerprint : "");
		return NULL;
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}
