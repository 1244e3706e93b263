/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The glue between the issuer's OCSP responder and the HTTP server, which
 * know nothing of each other. */
#include "vc-ocsp-http.h"

void
vc_ocsp_http_reply(VcOcspResponder *ocsp, GBytes *request, VcHttpOcspReply *ret_reply)
{
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(request, &len);
	g_autoptr(VcOcspAnswer) answer = vc_ocsp_responder_answer(ocsp, data, len);

	ret_reply->der = g_bytes_ref(answer->der);
	ret_reply->last_modified = answer->produced_at;
	ret_reply->expires = answer->next_update;
	ret_reply->etag = g_strdup(answer->etag);
}
