/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-text.h"

gboolean
vc_text_has_control_chars(const char *s)
{
	for (; *s != '\0'; s++)
		if ((guchar)*s < 0x20 || *s == 0x7f)
			return TRUE;
	return FALSE;
}

char *
vc_text_normalize_uuid(const char *s)
{
	char hex[33];
	gsize n = 0;

	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '-')
			continue;
		if (!g_ascii_isxdigit(*p) || n >= 32)
			return NULL;
		hex[n++] = g_ascii_tolower(*p);
	}
	if (n != 32)
		return NULL;
	hex[32] = '\0';
	return g_strdup_printf("%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
			       hex + 20);
}
