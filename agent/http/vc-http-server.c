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
#include "vc-http-server.h"
#include "vc-peer-client.h"
#include "vc-text.h"

#define VC_HTTP_PEER_PATH "/peer/v1/handover"
/* ids are hex of SKI octets (vc_ca_get_id(): 8 octets); allow up to a
 * SHA-256 worth so another CA's id scheme still fits */
#define VC_HTTP_CA_ID_MAX 64
/* a certificate serial is at most 20 octets (RFC 5280 4.1.2.2) */
#define VC_HTTP_SERIAL_HEX_MAX 40
#define VC_HTTP_VM_NAME_MAX 1024

#define VC_HTTP_PEER_AUTH_KEY "vc-peer-auth"

struct _VcHttpServer {
	SoupServer *plain;
	SoupServer *peer;
	VcHttpCallbacks cb;
	gpointer user_data;
	char *host_ca_path;
	char *host_crl_path;
	guint16 plain_port;
	guint16 peer_port;
};

struct _VcPeerClaim {
	SoupServerMessage *msg;
	gulong disconnected_id;
	gulong finished_id;
	gboolean gone;
	char *vm_uuid;
	char *vm_name;
	char *serial;
	char *peer_fqdn;
	char *peer_fingerprint;
	char *peer_serial;
	char *remote_address;
	VcHostIdentity *identity;
};

static void claim_free(VcPeerClaim *claim);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcPeerClaim, claim_free)

/* What the early handler learned about the client, for the main handler. */
typedef struct {
	VcHost *host;
	VcHostIdentity *identity;
} PeerAuth;

static void
peer_auth_free(PeerAuth *auth)
{
	vc_host_free(auth->host);
	vc_host_identity_free(auth->identity);
	g_free(auth);
}

/* ---- responses ------------------------------------------------------------ */

static void
respond_text(SoupServerMessage *msg, guint status, const char *text)
{
	g_autofree char *body = g_strconcat(text, "\n", NULL);

	soup_server_message_set_status(msg, status, NULL);
	soup_server_message_set_response(msg, "text/plain; charset=utf-8", SOUP_MEMORY_COPY, body,
					 strlen(body));
}

static void respond_error(SoupServerMessage *msg, guint status, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static void
respond_error(SoupServerMessage *msg, guint status, const char *fmt, ...)
{
	g_autofree char *text = NULL;
	va_list ap;

	va_start(ap, fmt);
	text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	respond_text(msg, status, text);
}

static void
respond_data(SoupServerMessage *msg, const char *content_type, const void *data, gsize len)
{
	soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
	soup_server_message_set_response(msg, content_type, SOUP_MEMORY_COPY, data, len);
}

/* A callback's failure: NOT_FOUND is the client's 404, anything else is
 * ours (500); the text goes to the client either way, since the plain
 * listener only says what a relying party may know anyway. */
static void
respond_gerror(SoupServerMessage *msg, const char *what, const GError *error)
{
	if (error != NULL && g_error_matches(error, VC_ERROR, VC_ERROR_NOT_FOUND))
		respond_error(msg, SOUP_STATUS_NOT_FOUND, "%s", error->message);
	else
		respond_error(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "cannot produce %s: %s", what,
			      error != NULL ? error->message : "no answer");
}

static gboolean
method_is_get(SoupServerMessage *msg)
{
	const char *method = soup_server_message_get_method(msg);
	return method == SOUP_METHOD_GET || method == SOUP_METHOD_HEAD;
}

static void
respond_method_not_allowed(SoupServerMessage *msg, const char *allow)
{
	soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow", allow);
	respond_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
		      "method %s not allowed here (allowed: %s)",
		      soup_server_message_get_method(msg), allow);
}

/* ---- the plain listener ----------------------------------------------------- */

static gboolean
is_hex(const char *s, gsize min, gsize max)
{
	gsize len = strlen(s);

	if (len < min || len > max)
		return FALSE;
	for (gsize i = 0; i < len; i++)
		if (!g_ascii_isxdigit(s[i]))
			return FALSE;
	return TRUE;
}

static void
serve_crl(VcHttpServer *self, SoupServerMessage *msg, const char *rest)
{
	g_autofree char *id = NULL;
	g_autoptr(GBytes) crl = NULL;
	g_autoptr(GError) error = NULL;
	gsize len = 0;
	const void *data;

	if (!g_str_has_suffix(rest, ".crl")) {
		respond_text(msg, SOUP_STATUS_BAD_REQUEST, "expected /crl/<ca-id>.crl");
		return;
	}
	id = g_ascii_strdown(rest, (gssize)(strlen(rest) - strlen(".crl")));
	if (!is_hex(id, 1, VC_HTTP_CA_ID_MAX)) {
		respond_error(msg, SOUP_STATUS_BAD_REQUEST,
			      "the CA id must be 1 to %d hexadecimal digits (/crl/<ca-id>.crl)",
			      VC_HTTP_CA_ID_MAX);
		return;
	}
	if (self->cb.get_crl == NULL) {
		respond_text(msg, SOUP_STATUS_NOT_FOUND, "no CRLs are served here");
		return;
	}
	crl = self->cb.get_crl(id, self->user_data, &error);
	if (crl == NULL) {
		respond_gerror(msg, "the CRL", error);
		return;
	}
	data = g_bytes_get_data(crl, &len);
	/* RFC 5280 4.2.1.13 and RFC 2585 4.2: DER, application/pkix-crl */
	respond_data(msg, "application/pkix-crl", data, len);
}

static void
serve_cert(VcHttpServer *self, SoupServerMessage *msg, const char *rest)
{
	g_autofree char *uuid = NULL;
	g_autofree char *pem = NULL;
	g_autoptr(GError) error = NULL;

	if (!g_uuid_string_is_valid(rest)) {
		respond_text(msg, SOUP_STATUS_BAD_REQUEST,
			     "not a VM UUID (expected /cert/xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
		return;
	}
	uuid = g_ascii_strdown(rest, -1);
	if (self->cb.get_cert_chain == NULL) {
		respond_text(msg, SOUP_STATUS_NOT_FOUND, "no certificates are served here");
		return;
	}
	pem = self->cb.get_cert_chain(uuid, self->user_data, &error);
	if (pem == NULL) {
		respond_gerror(msg, "the certificate", error);
		return;
	}
	/* RFC 8555 9.1: the chain as concatenated PEM */
	respond_data(msg, "application/pem-certificate-chain", pem, strlen(pem));
}

static void
serve_metrics(VcHttpServer *self, SoupServerMessage *msg)
{
	g_autofree char *text = NULL;

	if (self->cb.get_metrics == NULL) {
		respond_text(msg, SOUP_STATUS_NOT_FOUND, "no metrics are served here");
		return;
	}
	text = self->cb.get_metrics(self->user_data);
	if (text == NULL) {
		respond_gerror(msg, "the metrics", NULL);
		return;
	}
	/* Prometheus text exposition format, version 0.0.4 */
	respond_data(msg, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
}

static void
plain_handler(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
	      gpointer user_data)
{
	VcHttpServer *self = user_data;
	enum { ROUTE_NONE, ROUTE_CRL, ROUTE_CERT, ROUTE_METRICS } route = ROUTE_NONE;
	const char *rest = NULL;

	if (g_str_has_prefix(path, "/crl/")) {
		route = ROUTE_CRL;
		rest = path + strlen("/crl/");
	} else if (g_str_has_prefix(path, "/cert/")) {
		route = ROUTE_CERT;
		rest = path + strlen("/cert/");
	} else if (strcmp(path, "/metrics") == 0) {
		route = ROUTE_METRICS;
	}
	if (route == ROUTE_NONE) {
		respond_error(msg, SOUP_STATUS_NOT_FOUND,
			      "no such resource (served: /crl/<ca-id>.crl, /cert/<vm-uuid>, "
			      "/metrics)");
		return;
	}
	/* RFC 9110 15.5.6: 405 only for a resource that exists */
	if (!method_is_get(msg)) {
		respond_method_not_allowed(msg, "GET, HEAD");
		return;
	}
	switch (route) {
	case ROUTE_CRL:
		serve_crl(self, msg, rest);
		break;
	case ROUTE_CERT:
		serve_cert(self, msg, rest);
		break;
	case ROUTE_METRICS:
		serve_metrics(self, msg);
		break;
	case ROUTE_NONE:
	default:
		g_assert_not_reached();
	}
}

/* ---- the peer listener ------------------------------------------------------ */

/* GIO's verdict is not ours: accept whatever the client presents during
 * the handshake, then verify it with OpenSSL against the host CA bundle
 * and CRL in the early handler (so the reason reaches the client as 403). */
static gboolean
peer_accept_certificate(SoupServerMessage *msg, GTlsCertificate *cert, GTlsCertificateFlags errors,
			gpointer user_data)
{
	return TRUE;
}

static void
peer_request_started(SoupServer *server, SoupServerMessage *msg, gpointer user_data)
{
	g_signal_connect(msg, "accept-certificate", G_CALLBACK(peer_accept_certificate), NULL);
}

/* Sends the answer (it carries no body we want) without keeping what the
 * client still sends, and closes the connection after it. */
static void
peer_refuse(SoupServerMessage *msg)
{
	soup_message_body_set_accumulate(soup_server_message_get_request_body(msg), FALSE);
}

static PeerAuth *
peer_authenticate(VcHttpServer *self, SoupServerMessage *msg, GError **error)
{
	GTlsCertificate *tls = soup_server_message_get_tls_peer_certificate(msg);
	g_autoptr(VcHost) host = NULL;
	g_autoptr(VcHostIdentity) id = NULL;
	PeerAuth *auth;

	/* a second request on a kept-alive connection has no handshake of its
	 * own; every answer closes the connection, so this is a client that
	 * ignored it */
	if (tls == NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_CRYPTO,
				    "no client certificate: present this host's host certificate");
		return NULL;
	}
	host = vc_peer_verify_certificate(tls, self->host_ca_path, self->host_crl_path, FALSE, NULL,
					  error);
	if (host == NULL)
		return NULL;
	id = vc_host_get_identity(host, error);
	if (id == NULL)
		return NULL;
	auth = g_new0(PeerAuth, 1);
	auth->host = g_steal_pointer(&host);
	auth->identity = g_steal_pointer(&id);
	return auth;
}

/* After the headers, before the body: who is asking, for what, and how
 * much will they send. Anything refused here never has its body kept. */
static void
peer_early_handler(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
		   gpointer user_data)
{
	VcHttpServer *self = user_data;
	SoupMessageHeaders *req = soup_server_message_get_request_headers(msg);
	g_autoptr(GError) error = NULL;
	PeerAuth *auth;
	const char *ctype;
	goffset len;

	soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection",
				     "close");
	auth = peer_authenticate(self, msg, &error);
	if (auth == NULL && !g_error_matches(error, VC_ERROR, VC_ERROR_CRYPTO)) {
		/* our CA bundle or CRL file is unreadable: nobody gets in, and
		 * it is not the client's fault */
		g_warning("peer API: cannot verify clients: %s", error->message);
		peer_refuse(msg);
		respond_text(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR,
			     "this host cannot verify host certificates now (see its log)");
		return;
	}
	if (auth == NULL) {
		g_message("peer %s refused: %s", soup_server_message_get_remote_host(msg),
			  error->message);
		peer_refuse(msg);
		respond_error(msg, SOUP_STATUS_FORBIDDEN, "%s", error->message);
		return;
	}
	g_object_set_data_full(G_OBJECT(msg), VC_HTTP_PEER_AUTH_KEY, auth,
			       (GDestroyNotify)peer_auth_free);

	if (strcmp(path, VC_HTTP_PEER_PATH) != 0 || self->cb.handover == NULL) {
		peer_refuse(msg);
		respond_error(msg, SOUP_STATUS_NOT_FOUND, "no such resource (served: POST %s)",
			      VC_HTTP_PEER_PATH);
		return;
	}
	if (soup_server_message_get_method(msg) != SOUP_METHOD_POST) {
		peer_refuse(msg);
		respond_method_not_allowed(msg, "POST");
		return;
	}
	/* a known size only, so that the cap holds before anything is read */
	if (soup_message_headers_get_encoding(req) != SOUP_ENCODING_CONTENT_LENGTH) {
		peer_refuse(msg);
		respond_text(msg, SOUP_STATUS_LENGTH_REQUIRED, "a Content-Length is required");
		return;
	}
	len = soup_message_headers_get_content_length(req);
	if (len > VC_PEER_CLAIM_MAX_SIZE) {
		peer_refuse(msg);
		respond_error(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
			      "a claim is at most %d octets, this one has %" G_GINT64_FORMAT,
			      VC_PEER_CLAIM_MAX_SIZE, (gint64)len);
		return;
	}
	ctype = soup_message_headers_get_content_type(req, NULL);
	if (ctype == NULL || g_ascii_strcasecmp(ctype, "application/json") != 0) {
		peer_refuse(msg);
		respond_text(msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE,
			     "the claim must be application/json");
		return;
	}
}

/* A string member of O: required or not, checked for type. */
static gboolean
json_get_string(JsonObject *o, const char *name, gboolean required, const char **ret,
		GError **error)
{
	JsonNode *node = json_object_get_member(o, name);

	if (node == NULL) {
		if (required) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "member \"%s\" (a string) is required", name);
			return FALSE;
		}
		*ret = NULL;
		return TRUE;
	}
	if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "member \"%s\" must be a string", name);
		return FALSE;
	}
	*ret = json_node_get_string(node);
	return TRUE;
}

static void
claim_gone(VcPeerClaim *claim)
{
	claim->gone = TRUE;
}

/* Parses and checks the claim body; the peer's identity is AUTH's. */
static VcPeerClaim *
claim_parse(SoupServerMessage *msg, PeerAuth *auth, GError **error)
{
	SoupMessageBody *body = soup_server_message_get_request_body(msg);
	g_autoptr(GBytes) bytes = soup_message_body_flatten(body);
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) local = NULL;
	g_autoptr(VcPeerClaim) claim = NULL;
	const char *uuid = NULL;
	const char *name = NULL;
	const char *serial = NULL;
	const char *fqdn = NULL;
	JsonNode *root;
	JsonObject *o;
	X509 *cert = vc_host_get_cert(auth->host);
	gsize len = 0;
	const char *data = g_bytes_get_data(bytes, &len);

	if (len > VC_PEER_CLAIM_MAX_SIZE) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "a claim is at most %d octets",
			    VC_PEER_CLAIM_MAX_SIZE);
		return NULL;
	}
	if (!json_parser_load_from_data(parser, data != NULL ? data : "", (gssize)len, &local)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "the claim is not JSON: %s",
			    local->message);
		return NULL;
	}
	root = json_parser_get_root(parser);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "the claim must be a JSON object");
		return NULL;
	}
	o = json_node_get_object(root);
	/* members this version does not know are ignored: a newer peer may
	 * say more */
	if (!json_get_string(o, "vm_uuid", TRUE, &uuid, error) ||
	    !json_get_string(o, "serial", TRUE, &serial, error) ||
	    !json_get_string(o, "vm_name", FALSE, &name, error) ||
	    !json_get_string(o, "fqdn", FALSE, &fqdn, error))
		return NULL;
	if (!g_uuid_string_is_valid(uuid)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "vm_uuid \"%s\" is not a UUID",
			    uuid);
		return NULL;
	}
	if (!is_hex(serial, 1, VC_HTTP_SERIAL_HEX_MAX)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "serial must be 1 to %d hexadecimal digits", VC_HTTP_SERIAL_HEX_MAX);
		return NULL;
	}
	if (name != NULL &&
	    (strlen(name) > VC_HTTP_VM_NAME_MAX || vc_text_has_control_chars(name))) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "vm_name must be at most %d characters without control characters",
			    VC_HTTP_VM_NAME_MAX);
		return NULL;
	}
	/* the name that counts is the certificate's; one that disagrees is a
	 * confused (or lying) peer, not a claim to act on */
	if (fqdn != NULL &&
	    X509_check_host(cert, fqdn, strlen(fqdn),
			    X509_CHECK_FLAG_NO_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
			    NULL) != 1) {
		ERR_clear_error();
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "fqdn \"%s\" is not a name of the client's host certificate (\"%s\")",
			    fqdn, vc_host_get_fqdn(auth->host));
		return NULL;
	}
	claim = g_new0(VcPeerClaim, 1);
	claim->vm_uuid = g_ascii_strdown(uuid, -1);
	claim->vm_name = g_strdup(name != NULL ? name : "");
	claim->serial = g_ascii_strdown(serial, -1);
	claim->peer_fqdn = g_strdup(vc_host_get_fqdn(auth->host));
	claim->peer_fingerprint = vc_cert_get_fingerprint_sha256(cert);
	claim->peer_serial = vc_cert_get_serial_hex(cert);
	claim->remote_address = g_strdup(soup_server_message_get_remote_host(msg));
	claim->identity = g_steal_pointer(&auth->identity);
	return g_steal_pointer(&claim);
}

static void
peer_handler(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
	     gpointer user_data)
{
	VcHttpServer *self = user_data;
	PeerAuth *auth = g_object_get_data(G_OBJECT(msg), VC_HTTP_PEER_AUTH_KEY);
	g_autoptr(GError) error = NULL;
	VcPeerClaim *claim;

	/* the early handler answered everything but an authenticated POST to
	 * the handover path; libsoup does not call us for those */
	if (auth == NULL || auth->identity == NULL) {
		respond_text(msg, SOUP_STATUS_FORBIDDEN, "not authenticated");
		return;
	}
	claim = claim_parse(msg, auth, &error);
	if (claim == NULL) {
		respond_error(msg, SOUP_STATUS_BAD_REQUEST, "%s", error->message);
		return;
	}
	g_debug("handover claim for VM %s (serial %s) from %s (%s)", claim->vm_uuid, claim->serial,
		claim->peer_fqdn, claim->remote_address);
	claim->msg = g_object_ref(msg);
	claim->disconnected_id =
	    g_signal_connect_swapped(msg, "disconnected", G_CALLBACK(claim_gone), claim);
	claim->finished_id =
	    g_signal_connect_swapped(msg, "finished", G_CALLBACK(claim_gone), claim);
	/* the engine may answer later; the main loop goes on meanwhile */
	soup_server_message_pause(msg);
	self->cb.handover(claim, self->user_data);
}

/* ---- the claim -------------------------------------------------------------- */

static void
claim_free(VcPeerClaim *claim)
{
	if (claim == NULL)
		return;
	if (claim->msg != NULL) {
		g_signal_handler_disconnect(claim->msg, claim->disconnected_id);
		g_signal_handler_disconnect(claim->msg, claim->finished_id);
		g_object_unref(claim->msg);
	}
	g_free(claim->vm_uuid);
	g_free(claim->vm_name);
	g_free(claim->serial);
	g_free(claim->peer_fqdn);
	g_free(claim->peer_fingerprint);
	g_free(claim->peer_serial);
	g_free(claim->remote_address);
	vc_host_identity_free(claim->identity);
	g_free(claim);
}

const char *
vc_peer_claim_get_vm_uuid(VcPeerClaim *claim)
{
	return claim->vm_uuid;
}

const char *
vc_peer_claim_get_vm_name(VcPeerClaim *claim)
{
	return claim->vm_name;
}

const char *
vc_peer_claim_get_serial(VcPeerClaim *claim)
{
	return claim->serial;
}

const char *
vc_peer_claim_get_peer_fqdn(VcPeerClaim *claim)
{
	return claim->peer_fqdn;
}

const VcHostIdentity *
vc_peer_claim_get_peer_identity(VcPeerClaim *claim)
{
	return claim->identity;
}

const char *
vc_peer_claim_get_peer_fingerprint(VcPeerClaim *claim)
{
	return claim->peer_fingerprint;
}

const char *
vc_peer_claim_get_peer_serial(VcPeerClaim *claim)
{
	return claim->peer_serial;
}

const char *
vc_peer_claim_get_remote_address(VcPeerClaim *claim)
{
	return claim->remote_address;
}

static void
claim_finish(VcPeerClaim *claim)
{
	if (!claim->gone)
		soup_server_message_unpause(claim->msg);
	claim_free(claim);
}

void
vc_peer_claim_reply(VcPeerClaim *claim, gboolean accepted, const char *reason)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonNode) root = NULL;
	g_autofree char *body = NULL;

	g_return_if_fail(claim != NULL);
	if (!claim->gone) {
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "accepted");
		json_builder_add_boolean_value(b, accepted);
		json_builder_set_member_name(b, "reason");
		json_builder_add_string_value(b, reason != NULL ? reason : "");
		json_builder_end_object(b);
		root = json_builder_get_root(b);
		body = json_to_string(root, FALSE);
		respond_data(claim->msg, "application/json", body, strlen(body));
	}
	claim_finish(claim);
}

void
vc_peer_claim_reply_unavailable(VcPeerClaim *claim, const char *reason)
{
	g_return_if_fail(claim != NULL);
	if (!claim->gone) {
		/* RFC 9110 10.2.3: when to come back; the claimant has its own
		 * schedule, this is a hint */
		soup_message_headers_replace(soup_server_message_get_response_headers(claim->msg),
					     "Retry-After", "5");
		respond_text(claim->msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
			     reason != NULL ? reason : "try again later");
	}
	claim_finish(claim);
}

/* ---- setup ------------------------------------------------------------------ */

/* "HOST:PORT" or "[V6]:PORT"; HOST an IP address or "localhost". */
static GSocketAddress *
parse_listen_address(const char *s, GError **error)
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

static gboolean
listen_on(SoupServer *server, const char *address, SoupServerListenOptions options,
	  guint16 *ret_port, GError **error)
{
	g_autoptr(GSocketAddress) addr = parse_listen_address(address, error);
	g_autoptr(GError) local = NULL;
	GSList *uris;

	if (addr == NULL)
		return FALSE;
	if (!soup_server_listen(server, addr, options, &local)) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot listen on %s: %s", address,
			    local->message);
		return FALSE;
	}
	uris = soup_server_get_uris(server);
	*ret_port = uris != NULL ? (guint16)g_uri_get_port(uris->data) : 0;
	g_slist_free_full(uris, (GDestroyNotify)g_uri_unref);
	return TRUE;
}

static gboolean
peer_setup(VcHttpServer *self, const VcHttpServerOptions *opts, GError **error)
{
	g_autoptr(VcHost) own = NULL;
	g_autoptr(GTlsCertificate) cert = NULL;
	g_autoptr(GTlsDatabase) db = NULL;
	g_autoptr(GError) local = NULL;

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
	self->peer = soup_server_new("server-header", "virtcert ", NULL);
	soup_server_set_tls_certificate(self->peer, cert);
	soup_server_set_tls_database(self->peer, db);
	soup_server_set_tls_auth_mode(self->peer, G_TLS_AUTHENTICATION_REQUIRED);
	g_signal_connect(self->peer, "request-started", G_CALLBACK(peer_request_started), self);
	soup_server_add_early_handler(self->peer, NULL, peer_early_handler, self, NULL);
	soup_server_add_handler(self->peer, NULL, peer_handler, self, NULL);
	return listen_on(self->peer, opts->peer_address, SOUP_SERVER_LISTEN_HTTPS, &self->peer_port,
			 error);
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
		soup_server_add_handler(self->plain, NULL, plain_handler, self, NULL);
		if (!listen_on(self->plain, opts->address, 0, &self->plain_port, error))
			return NULL;
	}
	if (opts->peer_address != NULL && opts->peer_address[0] != '\0' &&
	    !peer_setup(self, opts, error))
		return NULL;
	return g_steal_pointer(&self);
}

void
vc_http_server_free(VcHttpServer *server)
{
	if (server == NULL)
		return;
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
	return server->plain_port;
}

guint16
vc_http_server_get_peer_port(VcHttpServer *server)
{
	return server->peer_port;
}
