/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* /ocsp on the plain listener: the HTTP binding of OCSP (RFC 6960 A.1,
 * RFC 5019 5 and 6). The answer itself is the callback's (the responder,
 * agent/issuer/vc-ocsp.c); this file caps, decodes and sets headers. */
#include <string.h>

#include "vc-http-private.h"
#include "vc-http-server.h"

#define VC_HTTP_OCSP_PATH "/ocsp"

typedef struct {
	VcHttpOcspFunc func;
	gpointer user_data;
} VcHttpOcsp;

/* OCSPResponse { responseStatus malformedRequest(1) } (RFC 6960 4.2.1):
 * the answer to a request refused before it was read. */
static const guint8 vc_http_ocsp_malformed[] = {0x30, 0x03, 0x0a, 0x01, 0x01};

void
vc_http_ocsp_reply_clear(VcHttpOcspReply *reply)
{
	g_clear_pointer(&reply->der, g_bytes_unref);
	g_clear_pointer(&reply->etag, g_free);
}

static void
vc_http_ocsp_respond_malformed(SoupServerMessage *msg)
{
	SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);

	soup_message_headers_replace(h, "Cache-Control", "no-store");
	vc_http_respond_data(msg, "application/ocsp-response", vc_http_ocsp_malformed,
			     sizeof(vc_http_ocsp_malformed));
}

/* After the headers, before the body: a POST says how much it sends, and
 * no more than a request can need, or it is answered without being read. */
static void
vc_http_ocsp_early_handler(SoupServer *server, SoupServerMessage *msg, const char *path,
			   GHashTable *query, gpointer user_data)
{
	SoupMessageHeaders *req = soup_server_message_get_request_headers(msg);
	const char *ctype;

	if (soup_server_message_get_method(msg) != SOUP_METHOD_POST)
		return;
	if (soup_message_headers_get_encoding(req) != SOUP_ENCODING_CONTENT_LENGTH) {
		soup_message_body_set_accumulate(soup_server_message_get_request_body(msg), FALSE);
		soup_message_headers_replace(soup_server_message_get_response_headers(msg),
					     "Connection", "close");
		vc_http_respond_text(msg, SOUP_STATUS_LENGTH_REQUIRED,
				     "an OCSP request needs a Content-Length");
		return;
	}
	if (soup_message_headers_get_content_length(req) > VC_HTTP_OCSP_MAX_REQUEST) {
		soup_message_body_set_accumulate(soup_server_message_get_request_body(msg), FALSE);
		soup_message_headers_replace(soup_server_message_get_response_headers(msg),
					     "Connection", "close");
		g_debug("OCSP: a %" G_GINT64_FORMAT "-octet request refused unread",
			(gint64)soup_message_headers_get_content_length(req));
		vc_http_ocsp_respond_malformed(msg);
		return;
	}
	ctype = soup_message_headers_get_content_type(req, NULL);
	if (ctype == NULL || g_ascii_strcasecmp(ctype, "application/ocsp-request") != 0) {
		soup_message_body_set_accumulate(soup_server_message_get_request_body(msg), FALSE);
		soup_message_headers_replace(soup_server_message_get_response_headers(msg),
					     "Connection", "close");
		vc_http_respond_text(msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE,
				     "an OCSP request is application/ocsp-request (RFC 6960 A.1)");
	}
}

/* RFC 5019 5: base64 (RFC 4648 4, the standard alphabet with padding),
 * then URL-encoded. Strict: g_base64_decode() skips what it does not know. */
static GBytes *
vc_http_ocsp_decode_path(const char *encoded)
{
	g_autofree char *b64 = g_uri_unescape_string(encoded, NULL);
	gsize len, pad = 0, out_len = 0;
	guchar *out;

	if (b64 == NULL)
		return NULL;
	len = strlen(b64);
	if (len == 0 || len % 4 != 0 || len > (VC_HTTP_OCSP_MAX_REQUEST + 2) / 3 * 4)
		return NULL;
	for (gsize i = 0; i < len; i++) {
		char c = b64[i];
		if (c == '=') {
			if (i < len - 2)
				return NULL;
			pad++;
		} else if (pad > 0 || !(g_ascii_isalnum(c) || c == '+' || c == '/')) {
			return NULL;
		}
	}
	out = g_base64_decode(b64, &out_len);
	return g_bytes_new_take(out, out_len);
}

static void
vc_http_ocsp_set_date(SoupMessageHeaders *h, const char *name, gint64 t)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
	g_autofree char *s = dt != NULL ? soup_date_time_to_string(dt, SOUP_DATE_HTTP) : NULL;

	if (s != NULL)
		soup_message_headers_replace(h, name, s);
}

static void
vc_http_ocsp_handler(SoupServer *server, SoupServerMessage *msg, const char *path,
		     GHashTable *query, gpointer user_data)
{
	VcHttpOcsp *self = user_data;
	const char *method = soup_server_message_get_method(msg);
	SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
	g_autoptr(GBytes) request = NULL;
	VcHttpOcspReply reply = {0};
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	gboolean get = method == SOUP_METHOD_GET || method == SOUP_METHOD_HEAD;
	const char *if_none_match;
	gsize len = 0;
	const void *data;

	if (method == SOUP_METHOD_POST) {
		if (strcmp(path, VC_HTTP_OCSP_PATH) != 0 &&
		    strcmp(path, VC_HTTP_OCSP_PATH "/") != 0) {
			vc_http_respond_text(msg, SOUP_STATUS_NOT_FOUND,
					     "POST OCSP requests to " VC_HTTP_OCSP_PATH);
			return;
		}
		request = soup_message_body_flatten(soup_server_message_get_request_body(msg));
	} else if (get) {
		if (!g_str_has_prefix(path, VC_HTTP_OCSP_PATH "/") ||
		    (request = vc_http_ocsp_decode_path(path + strlen(VC_HTTP_OCSP_PATH "/"))) ==
			NULL) {
			g_debug("OCSP: GET %s: not a base64 request", path);
			vc_http_ocsp_respond_malformed(msg);
			return;
		}
	} else {
		soup_message_headers_replace(h, "Allow", "GET, HEAD, POST");
		vc_http_respond_text(msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
				     "OCSP is GET " VC_HTTP_OCSP_PATH
				     "/<base64> or POST " VC_HTTP_OCSP_PATH);
		return;
	}
	/* the early handler capped a POST's Content-Length already */
	if (g_bytes_get_size(request) > VC_HTTP_OCSP_MAX_REQUEST) {
		vc_http_ocsp_respond_malformed(msg);
		return;
	}
	self->func(request, &reply, self->user_data);
	if (reply.der == NULL) {
		vc_http_respond_text(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "no OCSP answer");
		return;
	}
	/* RFC 5019 6.2: caches may keep the answer until nextUpdate */
	if (reply.expires > now) {
		g_autofree char *cc = g_strdup_printf("max-age=%" G_GINT64_FORMAT
						      ", public, no-transform, must-revalidate",
						      reply.expires - now);
		soup_message_headers_replace(h, "Cache-Control", cc);
		vc_http_ocsp_set_date(h, "Expires", reply.expires);
		if (reply.last_modified != 0)
			vc_http_ocsp_set_date(h, "Last-Modified", reply.last_modified);
		if (reply.etag != NULL)
			soup_message_headers_replace(h, "ETag", reply.etag);
	} else {
		soup_message_headers_replace(h, "Cache-Control", "no-store");
	}
	if_none_match = soup_message_headers_get_one(soup_server_message_get_request_headers(msg),
						     "If-None-Match");
	if (get && reply.etag != NULL && reply.expires > now && if_none_match != NULL &&
	    strstr(if_none_match, reply.etag) != NULL) {
		soup_server_message_set_status(msg, SOUP_STATUS_NOT_MODIFIED, NULL);
		vc_http_ocsp_reply_clear(&reply);
		return;
	}
	data = g_bytes_get_data(reply.der, &len);
	vc_http_respond_data(msg, "application/ocsp-response", data, len);
	vc_http_ocsp_reply_clear(&reply);
}

void
vc_http_ocsp_install(SoupServer *server, VcHttpOcspFunc func, gpointer user_data)
{
	VcHttpOcsp *self = g_new0(VcHttpOcsp, 1);

	self->func = func;
	self->user_data = user_data;
	soup_server_add_early_handler(server, VC_HTTP_OCSP_PATH, vc_http_ocsp_early_handler, self,
				      NULL);
	soup_server_add_handler(server, VC_HTTP_OCSP_PATH, vc_http_ocsp_handler, self, g_free);
}
