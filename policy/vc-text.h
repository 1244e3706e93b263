/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* TRUE when S holds a C0 control character or DEL: what no configuration
 * value, path, URL or request field may carry (log and shell injection). */
gboolean vc_text_has_control_chars(const char *s);

G_END_DECLS
