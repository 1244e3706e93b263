/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The deepest nesting any hostile JSON text may have (virtcert's own
 * objects are at most a few levels deep). */
#define VC_JSON_MAX_DEPTH 64

/* Checks hostile JSON text (a guest agent's reply, a control-socket line, a
 * peer's claim or answer) before json-glib parses it. json-glib 1.6 is more
 * lenient than JSON (RFC 8259): it takes single-quoted strings and C
 * comments, and text after the first value, every further value of which it
 * then leaks (a guest could grow the daemon with each reply). Accepted here:
 * whitespace, one object or array (the caller refuses an array in its own
 * words), whitespace; outside strings only the characters of JSON's numbers,
 * literals and punctuation; nesting at most MAX_DEPTH (json-glib recurses).
 * VC_ERROR_INVALID_DATA naming the fault otherwise; whether the text is valid
 * JSON is still json-glib's to say. */
gboolean vc_json_text_check(const char *text, gsize len, guint max_depth, GError **error);

G_END_DECLS
