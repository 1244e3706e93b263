/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-json-text.h"

#include <string.h>

#include "vc-error.h"

static gboolean
vc_json_text_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

gboolean
vc_json_text_check(const char *text, gsize len, guint max_depth, GError **error)
{
	guint depth = 0;
	gboolean in_string = FALSE;
	gsize i = 0;

	g_return_val_if_fail(text != NULL || len == 0, FALSE);

	while (i < len && vc_json_text_is_space(text[i]))
		i++;
	/* an array passes, for the caller to refuse in its own words */
	if (i == len || (text[i] != '{' && text[i] != '[')) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "invalid JSON: not an object");
		return FALSE;
	}
	for (; i < len; i++) {
		char c = text[i];
		if (in_string) {
			if (c == '\\')
				i++; /* the escaped character cannot close the string */
			else if (c == '"')
				in_string = FALSE;
			continue;
		}
		if (c == '"') {
			in_string = TRUE;
		} else if (c == '{' || c == '[') {
			if (++depth > max_depth) {
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "JSON nested deeper than %u levels", max_depth);
				return FALSE;
			}
		} else if (c == '}' || c == ']') {
			if (--depth == 0)
				break;
		} else if (!vc_json_text_is_space(c) && !g_ascii_isalnum(c) &&
			   strchr(":,-+.", c) == NULL) {
			/* a quote, a comment, anything JSON has only inside strings */
			if (g_ascii_isprint(c))
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "invalid JSON: '%c' outside a string", c);
			else
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "invalid JSON: octet 0x%02x outside a string",
					    (guchar)c);
			return FALSE;
		}
	}
	if (i >= len) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "invalid JSON: the text ends inside its object");
		return FALSE;
	}
	for (i++; i < len; i++) {
		if (!vc_json_text_is_space(text[i])) {
			g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "invalid JSON: text after the first value");
			return FALSE;
		}
	}
	return TRUE;
}
