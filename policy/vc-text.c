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
