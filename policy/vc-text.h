/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* TRUE when S holds a C0 control character or DEL: what no configuration
 * value, path, URL or request field may carry (log and shell injection). */
gboolean vc_text_has_control_chars(const char *s);
/* libvirt's UUID forms (with or without dashes, any case) as 8-4-4-4-12
 * lower case; NULL when S is not one. */
char *vc_text_normalize_uuid(const char *s);

G_END_DECLS
