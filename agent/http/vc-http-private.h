/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by the files of agent/http only: answers in the style every route
 * uses. */

#include <libsoup/soup.h>

#include "vc-http-server.h"

G_BEGIN_DECLS

/* TEXT and a newline as text/plain. */
void vc_http_respond_text(SoupServerMessage *msg, guint status, const char *text);
/* 200 with DATA (copied) as CONTENT_TYPE. */
void vc_http_respond_data(SoupServerMessage *msg, const char *content_type, const void *data,
			  gsize len);
/* TRUE when S is MIN to MAX hexadecimal digits. */
gboolean vc_http_is_hex(const char *s, gsize min, gsize max);

/* Routes /ocsp on SERVER to FUNC (agent/http/vc-http-ocsp.c). */
void vc_http_ocsp_install(SoupServer *server, VcHttpOcspFunc func, gpointer user_data);

/* A peer's answer to a claim or an announcement (hostile input: parsed
 * strictly): {"accepted": BOOL, "reason": STRING}. PEER names it in errors.
 * VC_ERROR_INVALID_DATA otherwise. Exposed for tests/fuzz. */
gboolean vc_peer_client_parse_reply(const char *peer, const char *data, gsize len,
				    gboolean *ret_accepted, char **ret_reason, GError **error);

G_END_DECLS
