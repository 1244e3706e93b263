/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's HTTP listeners: CRLs, certificate URLs and metrics in the
 * clear, and the host-to-host peer API over mutually authenticated TLS. */
#include <string.h>

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "vc-ca.h"
#include "vc-error.h"
#include "vc-host.h"
#include "vc-http-private.h"
#include "vc-http-server.h"
#include "vc-peer-client.h"
#include "vc-text.h"

#define VC_HTTP_PEER_PATH "/peer/v1/handover"
#define VC_HTTP_PEER_ANNOUNCE_PATH "/peer/v1/announce"
/* ids are hex of SKI octets (vc_ca_get_id(): 8 octets); allow up to a
 * SHA-256 worth so another CA's id scheme still fits */
#define VC_HTTP_CA_ID_MAX 64

#define VC_HTTP_PEER_AUTH_KEY "vc-peer-auth"

struct _VcHttpServer {
	SoupServer *plain;
	SoupServer *peer;
	/* ours, not libsoup's: accept, cap, deadlines (vc-http-listener.h) */
	VcHttpListener *plain_listener;
	VcHttpListener *peer_listener;
	VcHttpCallbacks cb;
	gpointer user_data;
	char *host_ca_path;
	char *host_crl_path;
};

/* What the early handler learned about the client, for the main handler. */
typedef struct {
	VcHost *host;
	VcHostIdentity *identity;
} PeerAuth;

static void
vc_http_server_peer_auth_free(PeerAuth *auth)
{
	vc_host_free(auth->host);
	vc_host_identity_free(auth->identity);
	g_free(auth);
}

/* ---- responses ------------------------------------------------------------ */

void
vc_http_respond_text(SoupServerMessage *msg, guint status, const char *text)
{
	g_autofree char *body = g_strconcat(text, "\n", NULL);

	soup_server_message_set_status(msg, status, NULL);
	soup_server_message_set_response(msg, "text/plain; charset=utf-8", SOUP_MEMORY_COPY, body,
					 strlen(body));
}

static void vc_http_server_respond_error(SoupServerMessage *msg, guint status, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static void
vc_http_server_respond_error(SoupServerMessage *msg, guint status, const char *fmt, ...)
{
	g_autofree char *text = NULL;
	va_list ap;

	va_start(ap, fmt);
	text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	vc_http_respond_text(msg, status, text);
}

void
vc_http_respond_data(SoupServerMessage *msg, const char *content_type, const void *data, gsize len)
{
	soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
	soup_server_message_set_response(msg, content_type, SOUP_MEMORY_COPY, data, len);
}

/* A callback's failure: NOT_FOUND is the client's 404, anything else is
 * ours (500); the text goes to the client either way, since the plain
 * listener only says what a relying party may know anyway. */
static void
vc_http_server_respond_gerror(SoupServerMessage *msg, const char *what, const GError *error)
{
	if (error != NULL && g_error_matches(error, VC_ERROR, VC_ERROR_NOT_FOUND))
		vc_http_server_respond_error(msg, SOUP_STATUS_NOT_FOUND, "%s", error->message);
	else
		vc_http_server_respond_error(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR,
					     "cannot produce %s: %s", what,
					     error != NULL ? error->message : "no answer");
}

static gboolean
vc_http_server_method_is_get(SoupServerMessage *msg)
{
	const char *method = soup_server_message_get_method(msg);
	return method == SOUP_METHOD_GET || method == SOUP_METHOD_HEAD;
}

static void
vc_http_server_respond_method_not_allowed(SoupServerMessage *msg, const char *allow)
{
	soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow", allow);
	vc_http_server_respond_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
				     "method %s not allowed here (allowed: %s)",
				     soup_server_message_get_method(msg), allow);
}

/* ---- the plain listener ----------------------------------------------------- */

gboolean
vc_http_is_hex(const char *s, gsize min, gsize max)
{
	gsize len = strlen(s);

	if (len < min || len > max)
		return FALSE;
	for (gsize i = 0; i < len; i++)
		if (!g_ascii_isxdigit(s[i]))
			return FALSE;
	return TRUE;
}

VcHttpDocument *
vc_http_document_new(GBytes *body, char *etag, gint64 last_modified)
{
	VcHttpDocument *doc = g_new0(VcHttpDocument, 1);
	doc->body = body;
	doc->etag = etag;
	doc->last_modified = last_modified;
	return doc;
}

void
vc_http_document_free(VcHttpDocument *doc)
{
	if (doc == NULL)
		return;
	g_clear_pointer(&doc->body, g_bytes_unref);
	g_free(doc->etag);
	g_free(doc);
}

/* RFC 9110 13.1.2: If-None-Match lists entity tags (or "*"); weak
 * comparison, so W/"x" matches "x". */
static gboolean
vc_http_server_etag_matches(const char *header, const char *etag)
{
	g_auto(GStrv) tags = NULL;

	if (header == NULL || etag == NULL)
		return FALSE;
	tags = g_strsplit(header, ",", -1);
	for (guint i = 0; tags[i] != NULL; i++) {
		const char *t = g_strstrip(tags[i]);
		if (g_str_has_prefix(t, "W/"))
			t += 2;
		if (strcmp(t, "*") == 0 || strcmp(t, etag) == 0)
			return TRUE;
	}
	return FALSE;
}

/* RFC 9110 13.1.3, 13.2.2: If-Modified-Since counts only without
 * If-None-Match, and only when it parses. */
static gboolean
vc_http_server_not_modified(SoupServerMessage *msg, const VcHttpDocument *doc)
{
	SoupMessageHeaders *req = soup_server_message_get_request_headers(msg);
	const char *inm = soup_message_headers_get_one(req, "If-None-Match");
	const char *ims = soup_message_headers_get_one(req, "If-Modified-Since");
	g_autoptr(GDateTime) since = NULL;

	if (inm != NULL)
		return vc_http_server_etag_matches(inm, doc->etag);
	if (ims == NULL || doc->last_modified == 0)
		return FALSE;
	since = soup_date_time_new_from_http_string(ims);
	return since != NULL && doc->last_modified <= g_date_time_to_unix(since);
}

/* 200 with the document and its validators, or 304 without a body. */
static void
vc_http_server_respond_document(SoupServerMessage *msg, const char *content_type,
				const VcHttpDocument *doc)
{
	SoupMessageHeaders *resp = soup_server_message_get_response_headers(msg);
	gsize len = 0;
	const void *data = g_bytes_get_data(doc->body, &len);

	if (doc->etag != NULL)
		soup_message_headers_replace(resp, "ETag", doc->etag);
	if (doc->last_modified != 0) {
		g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(doc->last_modified);
		g_autofree char *date = soup_date_time_to_string(dt, SOUP_DATE_HTTP);
		soup_message_headers_replace(resp, "Last-Modified", date);
	}
	/* a relying party may keep it, but asks again each time: a revocation
	 * must not wait for a cache to expire (the validators make it cheap) */
	soup_message_headers_replace(resp, "Cache-Control", "no-cache");
	if (vc_http_server_not_modified(msg, doc)) {
		soup_server_message_set_status(msg, SOUP_STATUS_NOT_MODIFIED, NULL);
		return;
	}
	vc_http_respond_data(msg, content_type, data, len);
}

/* "<ca-id><SUFFIX>" → the lower-case id, or NULL after answering 400.
 * ALIAS (nullable) is accepted as an id too. */
static char *
vc_http_server_parse_ca_id(SoupServerMessage *msg, const char *rest, const char *suffix,
			   const char *alias, const char *usage)
{
	g_autofree char *id = NULL;

	if (!g_str_has_suffix(rest, suffix)) {
		vc_http_server_respond_error(msg, SOUP_STATUS_BAD_REQUEST, "expected %s", usage);
		return NULL;
	}
	id = g_ascii_strdown(rest, (gssize)(strlen(rest) - strlen(suffix)));
	if (alias != NULL && strcmp(id, alias) == 0)
		return g_steal_pointer(&id);
	if (!vc_http_is_hex(id, 1, VC_HTTP_CA_ID_MAX)) {
		vc_http_server_respond_error(msg, SOUP_STATUS_BAD_REQUEST,
					     "the CA id must be 1 to %d hexadecimal digits (%s)",
					     VC_HTTP_CA_ID_MAX, usage);
		return NULL;
	}
	return g_steal_pointer(&id);
}

static void
vc_http_server_serve_ca_cert(VcHttpServer *self, SoupServerMessage *msg, const char *rest)
{
	g_autofree char *id = NULL;
	g_autoptr(GBytes) der = NULL;
	g_autoptr(GError) error = NULL;
	gsize len = 0;
	const void *data;

	id = vc_http_server_parse_ca_id(msg, rest, ".crt", NULL, "/ca/<ca-id>.crt");
	if (id == NULL)
		return;
	if (self->cb.get_ca_cert == NULL) {
		vc_http_respond_text(msg, SOUP_STATUS_NOT_FOUND,
				     "no CA certificates are served here");
		return;
	}
	der = self->cb.get_ca_cert(id, self->user_data, &error);
	if (der == NULL) {
		vc_http_server_respond_gerror(msg, "the CA certificate", error);
		return;
	}
	data = g_bytes_get_data(der, &len);
	/* RFC 5280 4.2.2.1 and RFC 2585 4.1: one DER certificate, application/pkix-cert */
	vc_http_respond_data(msg, "application/pkix-cert", data, len);
}

static void
vc_http_server_serve_crl(VcHttpServer *self, SoupServerMessage *msg, const char *rest)
{
	g_autofree char *id = NULL;
	g_autoptr(VcHttpDocument) crl = NULL;
	g_autoptr(GError) error = NULL;

	id = vc_http_server_parse_ca_id(msg, rest, ".crl", "host-ca", "/crl/<ca-id>.crl");
	if (id == NULL)
		return;
	if (self->cb.get_crl == NULL) {
		vc_http_respond_text(msg, SOUP_STATUS_NOT_FOUND, "no CRLs are served here");
		return;
	}
	crl = self->cb.get_crl(id, self->user_data, &error);
	if (crl == NULL) {
		vc_http_server_respond_gerror(msg, "the CRL", error);
		return;
	}
	/* RFC 5280 4.2.1.13 and RFC 2585 4.2: DER, application/pkix-crl */
	vc_http_server_respond_document(msg, "application/pkix-crl", crl);
}

static void
vc_http_server_serve_cert(VcHttpServer *self, SoupServerMessage *msg, const char *rest)
{
	g_autofree char *uuid = NULL;
	g_autofree char *pem = NULL;
	g_autoptr(GError) error = NULL;

	if (!g_uuid_string_is_valid(rest)) {
		vc_http_respond_text(
		    msg, SOUP_STATUS_BAD_REQUEST,
		    "not a VM UUID (expected /cert/xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
		return;
	}
	uuid = g_ascii_strdown(rest, -1);
	if (self->cb.get_cert_chain == NULL) {
		vc_http_respond_text(msg, SOUP_STATUS_NOT_FOUND, "no certificates are served here");
		return;
	}
	pem = self->cb.get_cert_chain(uuid, self->user_data, &error);
	if (pem == NULL) {
		vc_http_server_respond_gerror(msg, "the certificate", error);
		return;
	}
	/* RFC 8555 9.1: the chain as concatenated PEM */
	vc_http_respond_data(msg, "application/pem-certificate-chain", pem, strlen(pem));
}

static void
vc_http_server_serve_metrics(VcHttpServer *self, SoupServerMessage *msg)
{
	g_autofree char *text = NULL;

	if (self->cb.get_metrics == NULL) {
		vc_http_respond_text(msg, SOUP_STATUS_NOT_FOUND, "no metrics are served here");
		return;
	}
	text = self->cb.get_metrics(self->user_data);
	if (text == NULL) {
		vc_http_server_respond_gerror(msg, "the metrics", NULL);
		return;
	}
	/* Prometheus text exposition format, version 0.0.4 */
	vc_http_respond_data(msg, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
}

static void
vc_http_server_plain_handler(SoupServer *server, SoupServerMessage *msg, const char *path,
			     GHashTable *query, gpointer user_data)
{
	VcHttpServer *self = user_data;
	enum { ROUTE_NONE, ROUTE_CRL, ROUTE_CERT, ROUTE_METRICS, ROUTE_CA } route = ROUTE_NONE;
	const char *rest = NULL;

	if (g_str_has_prefix(path, "/crl/")) {
		route = ROUTE_CRL;
		rest = path + strlen("/crl/");
	} else if (g_str_has_prefix(path, "/cert/")) {
		route = ROUTE_CERT;
		rest = path + strlen("/cert/");
	} else if (strcmp(path, "/metrics") == 0) {
		route = ROUTE_METRICS;
	} else if (g_str_has_prefix(path, "/ca/")) {
		route = ROUTE_CA;
		rest = path + strlen("/ca/");
	}
	if (route == ROUTE_NONE) {
		vc_http_server_respond_error(
		    msg, SOUP_STATUS_NOT_FOUND,
		    "no such resource (served: /crl/<ca-id>.crl, /ca/<ca-id>.crt, "
		    "/cert/<vm-uuid>, /metrics, /ocsp)");
		return;
	}
	/* RFC 9110 15.5.6: 405 only for a resource that exists */
	if (!vc_http_server_method_is_get(msg)) {
		vc_http_server_respond_method_not_allowed(msg, "GET, HEAD");
		return;
	}
	switch (route) {
	case ROUTE_CRL:
		vc_http_server_serve_crl(self, msg, rest);
		break;
	case ROUTE_CERT:
		vc_http_server_serve_cert(self, msg, rest);
		break;
	case ROUTE_METRICS:
		vc_http_server_serve_metrics(self, msg);
		break;
	case ROUTE_CA:
		vc_http_server_serve_ca_cert(self, msg, rest);
		break;
	case ROUTE_NONE:
	default:
		g_assert_not_reached();
	}
}

/* ---- the peer listener ------------------------------------------------------ */

/* Sends the answer (it carries no body we want) without keeping what the
 * client still sends, and closes the connection after it. */
static void
vc_http_server_peer_refuse(SoupServerMessage *msg)
{
	soup_message_body_set_accumulate(soup_server_message_get_request_body(msg), FALSE);
}

static PeerAuth *
vc_http_server_peer_authenticate(VcHttpServer *self, SoupServerMessage *msg, GError **error)
{
	GTlsCertificate *tls = vc_http_listener_get_peer_certificate(msg);
	g_autoptr(VcHost) host = NULL;
	g_autoptr(VcHostIdentity) id = NULL;
	g_autoptr(GError) local = NULL;
	PeerAuth *auth;

	/* NULL only for a client that sent none (the listener asks for one;
	 * what GIO thought of it does not count) */
	if (tls == NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_CRYPTO,
				    "no client certificate: present this host's host certificate");
		return NULL;
	}
	host = vc_peer_verify_certificate(tls, self->host_ca_path, self->host_crl_path, FALSE, NULL,
					  error);
	if (host == NULL)
		return NULL;
	id = vc_host_get_identity(host, &local);
	if (id == NULL) {
		/* what the client's certificate says is the client's fault: a
		 * malformed urn:virtcert:host: attribute is a 403, not ours */
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO,
			    "the client's host certificate is not a host identity: %s",
			    local->message);
		return NULL;
	}
	auth = g_new0(PeerAuth, 1);
	auth->host = g_steal_pointer(&host);
	auth->identity = g_steal_pointer(&id);
	return auth;
}

/* After the headers, before the body: who is asking, for what, and how
 * much will they send. Anything refused here never has its body kept. */
static void
vc_http_server_peer_early_handler(SoupServer *server, SoupServerMessage *msg, const char *path,
				  GHashTable *query, gpointer user_data)
{
	VcHttpServer *self = user_data;
	SoupMessageHeaders *req = soup_server_message_get_request_headers(msg);
	g_autoptr(GError) error = NULL;
	PeerAuth *auth;
	const char *ctype;
	goffset len;

	soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection",
				     "close");
	auth = vc_http_server_peer_authenticate(self, msg, &error);
	if (auth == NULL && !g_error_matches(error, VC_ERROR, VC_ERROR_CRYPTO)) {
		/* our CA bundle or CRL file is unreadable: nobody gets in, and
		 * it is not the client's fault */
		g_warning("peer API: cannot verify clients: %s", error->message);
		vc_http_server_peer_refuse(msg);
		vc_http_respond_text(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR,
				     "this host cannot verify host certificates now (see its log)");
		return;
	}
	if (auth == NULL) {
		g_message("peer %s refused: %s", soup_server_message_get_remote_host(msg),
			  error->message);
		vc_http_server_peer_refuse(msg);
		vc_http_server_respond_error(msg, SOUP_STATUS_FORBIDDEN, "%s", error->message);
		return;
	}
	g_object_set_data_full(G_OBJECT(msg), VC_HTTP_PEER_AUTH_KEY, auth,
			       (GDestroyNotify)vc_http_server_peer_auth_free);

	if (!(strcmp(path, VC_HTTP_PEER_PATH) == 0 && self->cb.handover != NULL) &&
	    !(strcmp(path, VC_HTTP_PEER_ANNOUNCE_PATH) == 0 && self->cb.announce != NULL)) {
		vc_http_server_peer_refuse(msg);
		vc_http_server_respond_error(msg, SOUP_STATUS_NOT_FOUND,
					     "no such resource (served: POST %s, POST %s)",
					     VC_HTTP_PEER_ANNOUNCE_PATH, VC_HTTP_PEER_PATH);
		return;
	}
	if (soup_server_message_get_method(msg) != SOUP_METHOD_POST) {
		vc_http_server_peer_refuse(msg);
		vc_http_server_respond_method_not_allowed(msg, "POST");
		return;
	}
	/* a known size only, so that the cap holds before anything is read */
	if (soup_message_headers_get_encoding(req) != SOUP_ENCODING_CONTENT_LENGTH) {
		vc_http_server_peer_refuse(msg);
		vc_http_respond_text(msg, SOUP_STATUS_LENGTH_REQUIRED,
				     "a Content-Length is required");
		return;
	}
	len = soup_message_headers_get_content_length(req);
	if (len > VC_PEER_CLAIM_MAX_SIZE) {
		vc_http_server_peer_refuse(msg);
		vc_http_server_respond_error(
		    msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
		    "a claim is at most %d octets, this one has %" G_GINT64_FORMAT,
		    VC_PEER_CLAIM_MAX_SIZE, (gint64)len);
		return;
	}
	ctype = soup_message_headers_get_content_type(req, NULL);
	if (ctype == NULL || g_ascii_strcasecmp(ctype, "application/json") != 0) {
		vc_http_server_peer_refuse(msg);
		vc_http_respond_text(msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE,
				     "the claim must be application/json");
		return;
	}
}

static void
vc_http_server_peer_handler(SoupServer *server, SoupServerMessage *msg, const char *path,
			    GHashTable *query, gpointer user_data)
{
	VcHttpServer *self = user_data;
	PeerAuth *auth = g_object_get_data(G_OBJECT(msg), VC_HTTP_PEER_AUTH_KEY);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) body = NULL;
	const char *data;
	gsize len = 0;
	VcPeerClaim *claim;

	/* the early handler answered everything but an authenticated POST to
	 * the announce or handover path; libsoup does not call us for those */
	if (auth == NULL || auth->identity == NULL) {
		vc_http_respond_text(msg, SOUP_STATUS_FORBIDDEN, "not authenticated");
		return;
	}
	body = soup_message_body_flatten(soup_server_message_get_request_body(msg));
	data = g_bytes_get_data(body, &len);
	claim = vc_peer_claim_new_from_data(data, len, auth->host, g_steal_pointer(&auth->identity),
					    soup_server_message_get_remote_host(msg), &error);
	if (claim == NULL) {
		vc_http_server_respond_error(msg, SOUP_STATUS_BAD_REQUEST, "%s", error->message);
		return;
	}
	g_debug("%s for VM %s (serial %s) from %s (%s)", path, vc_peer_claim_get_vm_uuid(claim),
		vc_peer_claim_get_serial(claim), vc_peer_claim_get_peer_fqdn(claim),
		vc_peer_claim_get_remote_address(claim));
	/* the engine may answer later; the main loop goes on meanwhile */
	vc_peer_claim_attach(claim, msg);
	if (strcmp(path, VC_HTTP_PEER_ANNOUNCE_PATH) == 0)
		self->cb.announce(claim, self->user_data);
	else
		self->cb.handover(claim, self->user_data);
}

/* ---- setup ------------------------------------------------------------------ */

/* "HOST:PORT" or "[V6]:PORT"; HOST an IP address or "localhost". */
static GSocketAddress *
vc_http_server_parse_listen_address(const char *s, GError **error)
{
	g_autofree char *host = NULL;
	g_autoptr(GInetAddress) addr = NULL;
	const char *port_s;
	guint64 port = 0;

	if (s[0] == '[') {
		const char *end = strstr(s, "]:");
		if (end == NULL)
			goto bad;
		host = g_strndup(s + 1, (gsize)(end - s - 1));
		port_s = end + 2;
	} else {
		const char *colon = strrchr(s, ':');
		if (colon == NULL || memchr(s, ':', (gsize)(colon - s)) != NULL)
			goto bad;
		host = g_strndup(s, (gsize)(colon - s));
		port_s = colon + 1;
	}
	if (!g_ascii_string_to_unsigned(port_s, 10, 0, 65535, &port, NULL))
		goto bad;
	if (g_ascii_strcasecmp(host, "localhost") == 0)
		addr = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	else
		addr = g_inet_address_new_from_string(host);
	if (addr == NULL)
		goto bad;
	return g_inet_socket_address_new(addr, (guint16)port);
bad:
	g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
		    "\"%s\" is not a listen address (IP:PORT, [IPv6]:PORT or localhost:PORT)", s);
	return NULL;
}

static VcHttpListener *
vc_http_server_listen_on(SoupServer *server, const char *name, const char *address,
			 GTlsCertificate *cert, GTlsDatabase *db, const VcHttpLimits *limits,
			 GError **error)
{
	g_autoptr(GSocketAddress) addr = vc_http_server_parse_listen_address(address, error);

	if (addr == NULL)
		return NULL;
	/* GIO's verdict on a client certificate is not ours: the listener
	 * accepts whatever the client presents during the handshake, and the
	 * early handler verifies it with OpenSSL against the host CA bundle
	 * and CRL (so the reason reaches the client as 403) */
	return vc_http_listener_new(server, name, addr, cert, db,
				    cert != NULL ? G_TLS_AUTHENTICATION_REQUIRED
						 : G_TLS_AUTHENTICATION_NONE,
				    limits, error);
}

static gboolean
vc_http_server_peer_setup(VcHttpServer *self, const VcHttpServerOptions *opts, GError **error)
{
	g_autoptr(VcHost) own = NULL;
	g_autoptr(GTlsCertificate) cert = NULL;
	g_autoptr(GTlsDatabase) db = NULL;
	g_autoptr(GError) local = NULL;
	VcHttpLimits limits;

	if (opts->host_cert_path == NULL || opts->host_key_path == NULL ||
	    opts->host_ca_path == NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "the peer API needs this host's certificate, key and the "
				    "trusted host CA bundle ([host] cert, key, ca)");
		return FALSE;
	}
	/* our own files, checked with the same code as everywhere else (key
	 * match, CA bundle holds CAs only), for a clear message at startup */
	own = vc_host_load_files(opts->host_cert_path, opts->host_key_path, opts->host_ca_path,
				 opts->host_crl_path, error);
	if (own == NULL) {
		g_prefix_error(error, "peer API: ");
		return FALSE;
	}
	cert = g_tls_certificate_new_from_files(opts->host_cert_path, opts->host_key_path, &local);
	if (cert == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO, "peer API: %s: %s",
			    opts->host_cert_path, local->message);
		return FALSE;
	}
	/* only for the CertificateRequest's list of acceptable CAs (RFC 8446
	 * 4.2.4): what GIO thinks of a client certificate is not used */
	db = g_tls_file_database_new(opts->host_ca_path, &local);
	if (db == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO, "peer API: %s: %s",
			    opts->host_ca_path, local->message);
		return FALSE;
	}
	self->host_ca_path = g_strdup(opts->host_ca_path);
	self->host_crl_path = g_strdup(opts->host_crl_path);
	limits = opts->limits;
	limits.max_connections = opts->peer_max_connections;
	self->peer = soup_server_new("server-header", "virtcert ", NULL);
	soup_server_add_early_handler(self->peer, NULL, vc_http_server_peer_early_handler, self,
				      NULL);
	soup_server_add_handler(self->peer, NULL, vc_http_server_peer_handler, self, NULL);
	/* the listener does the handshake (the certificate and the CA list
	 * for the CertificateRequest) and hands libsoup the TLS connection */
	self->peer_listener = vc_http_server_listen_on(self->peer, "peer API", opts->peer_address,
						       cert, db, &limits, error);
	return self->peer_listener != NULL;
}

VcHttpServer *
vc_http_server_new(const VcHttpServerOptions *opts, const VcHttpCallbacks *cb, gpointer user_data,
		   GError **error)
{
	g_autoptr(VcHttpServer) self = g_new0(VcHttpServer, 1);

	g_return_val_if_fail(opts != NULL && cb != NULL, NULL);
	self->cb = *cb;
	self->user_data = user_data;
	if (opts->address != NULL && opts->address[0] != '\0') {
		self->plain = soup_server_new("server-header", "virtcert ", NULL);
		soup_server_add_handler(self->plain, NULL, vc_http_server_plain_handler, self,
					NULL);
		if (cb->ocsp != NULL)
			vc_http_ocsp_install(self->plain, cb->ocsp, user_data);
		self->plain_listener = vc_http_server_listen_on(self->plain, "HTTP", opts->address,
								NULL, NULL, &opts->limits, error);
		if (self->plain_listener == NULL)
			return NULL;
	}
	if (opts->peer_address != NULL && opts->peer_address[0] != '\0' &&
	    !vc_http_server_peer_setup(self, opts, error))
		return NULL;
	return g_steal_pointer(&self);
}

void
vc_http_server_free(VcHttpServer *server)
{
	if (server == NULL)
		return;
	/* our books first: libsoup then closes the connections it holds */
	g_clear_pointer(&server->plain_listener, vc_http_listener_free);
	g_clear_pointer(&server->peer_listener, vc_http_listener_free);
	if (server->plain != NULL) {
		soup_server_disconnect(server->plain);
		g_object_unref(server->plain);
	}
	if (server->peer != NULL) {
		/* paused claims see "disconnected" and reply into the void */
		soup_server_disconnect(server->peer);
		g_object_unref(server->peer);
	}
	g_free(server->host_ca_path);
	g_free(server->host_crl_path);
	g_free(server);
}

guint16
vc_http_server_get_plain_port(VcHttpServer *server)
{
	return server->plain_listener != NULL ? vc_http_listener_get_port(server->plain_listener)
					      : 0;
}

guint16
vc_http_server_get_peer_port(VcHttpServer *server)
{
	return server->peer_listener != NULL ? vc_http_listener_get_port(server->peer_listener) : 0;
}

void
vc_http_server_get_stats(VcHttpServer *server, gboolean peer, VcHttpListenerStats *ret_stats)
{
	VcHttpListener *listener = peer ? server->peer_listener : server->plain_listener;

	if (listener == NULL)
		*ret_stats = (VcHttpListenerStats){0};
	else
		vc_http_listener_get_stats(listener, ret_stats);
}
