/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The claimant's side of the peer API, and the OpenSSL verification of a
 * peer's host certificate that both sides share. */
#include <string.h>

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "vc-ca.h"
#include "vc-error.h"
#include "vc-http-private.h"
#include "vc-json-text.h"
#include "vc-peer-client.h"

#define VC_PEER_DEFAULT_TIMEOUT_S 10
/* a reply is a short JSON object or a line of text */
#define VC_PEER_REPLY_MAX (64 * 1024)
/* how many issuers a peer may send with its certificate */
#define VC_PEER_CHAIN_MAX 8
/* how much of a refusal's text goes into our error message */
#define VC_PEER_REASON_MAX 512

/* ---- verification ------------------------------------------------------ */

static GPtrArray *
vc_peer_client_tls_chain_to_x509(GTlsCertificate *cert, GError **error)
{
	g_autoptr(GPtrArray) certs = g_ptr_array_new_with_free_func((GDestroyNotify)X509_free);

	for (GTlsCertificate *c = cert; c != NULL; c = g_tls_certificate_get_issuer(c)) {
		g_autoptr(GByteArray) der = NULL;
		g_autoptr(GError) local = NULL;
		X509 *x;

		if (certs->len > VC_PEER_CHAIN_MAX) {
			g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO,
				    "the peer sent more than %d issuer certificates",
				    VC_PEER_CHAIN_MAX);
			return NULL;
		}
		g_object_get(c, "certificate", &der, NULL);
		if (der == NULL) {
			g_set_error_literal(error, VC_ERROR, VC_ERROR_CRYPTO,
					    "the peer's certificate cannot be read");
			return NULL;
		}
		x = vc_cert_from_der(der->data, der->len, &local);
		if (x == NULL) {
			/* the peer's doing: a credential failure, like any other */
			g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO, "the peer's certificate: %s",
				    local->message);
			return NULL;
		}
		g_ptr_array_add(certs, x);
	}
	if (certs->len == 0) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_CRYPTO,
				    "the peer sent no certificate");
		return NULL;
	}
	return g_steal_pointer(&certs);
}

VcHost *
vc_peer_verify_certificate(GTlsCertificate *cert, const char *ca_path, const char *crl_path,
			   gboolean server, const char *name, GError **error)
{
	g_autoptr(GPtrArray) certs = NULL;
	g_autoptr(VcHost) host = NULL;
	X509 *leaf;

	g_return_val_if_fail(G_IS_TLS_CERTIFICATE(cert), NULL);
	g_return_val_if_fail(ca_path != NULL, NULL);
	certs = vc_peer_client_tls_chain_to_x509(cert, error);
	if (certs == NULL)
		return NULL;
	host = vc_host_new_from_certs(certs, ca_path, crl_path, error);
	if (host == NULL)
		return NULL;
	/* chain to the host CA (the only anchor), dates, CRL */
	if (!vc_host_check(host, error)) {
		g_prefix_error(error, "the peer's host certificate is not trusted: ");
		return NULL;
	}
	leaf = vc_host_get_cert(host);
	/* RFC 5280 4.2.1.12: a certificate for the other role is no
	 * credential here */
	if (X509_check_purpose(leaf, server ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT,
			       0) != 1) {
		ERR_clear_error();
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO,
			    "the peer's host certificate is not for TLS %s authentication "
			    "(extendedKeyUsage)",
			    server ? "server" : "client");
		return NULL;
	}
	ERR_clear_error();
	/* a CA, a wildcard or a certificate without EKU is no host identity */
	if (!vc_host_check_profile(host, server ? VC_HOST_ROLE_SERVER : VC_HOST_ROLE_CLIENT,
				   error)) {
		g_prefix_error(error, "the peer's certificate: ");
		return NULL;
	}
	/* RFC 6125 6.4: the reference identity against the dNSNames only;
	 * host certificates never have wildcards, so none is honoured */
	if (name != NULL &&
	    X509_check_host(leaf, name, strlen(name),
			    X509_CHECK_FLAG_NO_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
			    NULL) != 1) {
		ERR_clear_error();
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO,
			    "the peer's host certificate is for \"%s\", not \"%s\"",
			    vc_host_get_fqdn(host), name);
		return NULL;
	}
	return g_steal_pointer(&host);
}

/* ---- the claim --------------------------------------------------------- */

typedef struct {
	const char *host;
	const char *ca_path;
	const char *crl_path;
	GError *error; /* why the server's certificate was refused */
} ServerCheck;

/* Called for every server certificate, since the session has no GIO
 * trust database: the host CA bundle is the only trust, checked by
 * OpenSSL. */
static gboolean
vc_peer_client_on_accept_certificate(SoupMessage *msg, GTlsCertificate *cert,
				     GTlsCertificateFlags errors, gpointer user_data)
{
	ServerCheck *check = user_data;
	g_autoptr(VcHost) host = NULL;

	g_clear_error(&check->error);
	host = vc_peer_verify_certificate(cert, check->ca_path, check->crl_path, TRUE, check->host,
					  &check->error);
	return host != NULL;
}

/* Printable, bounded text of a peer's answer, for our error messages. */
static char *
vc_peer_client_reply_text(const char *data, gsize len)
{
	g_autofree char *valid = g_utf8_make_valid(data, (gssize)MIN(len, VC_PEER_REASON_MAX));

	for (char *p = valid; *p != '\0'; p++)
		if ((guchar)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return g_strstrip(g_steal_pointer(&valid));
}

gboolean
vc_peer_client_parse_reply(const char *peer, const char *data, gsize len, gboolean *ret_accepted,
			   char **ret_reason, GError **error)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) local = NULL;
	JsonNode *root;
	JsonNode *accepted;
	JsonNode *reason;
	JsonObject *o;

	if (!vc_json_text_check(data, len, VC_JSON_MAX_DEPTH, &local) ||
	    !json_parser_load_from_data(parser, data, (gssize)len, &local)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "peer %s: the reply is not JSON: %s", peer, local->message);
		return FALSE;
	}
	root = json_parser_get_root(parser);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "peer %s: the reply is not a JSON object", peer);
		return FALSE;
	}
	o = json_node_get_object(root);
	accepted = json_object_get_member(o, "accepted");
	reason = json_object_get_member(o, "reason");
	if (accepted == NULL || !JSON_NODE_HOLDS_VALUE(accepted) ||
	    json_node_get_value_type(accepted) != G_TYPE_BOOLEAN || reason == NULL ||
	    !JSON_NODE_HOLDS_VALUE(reason) || json_node_get_value_type(reason) != G_TYPE_STRING) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "peer %s: the reply needs \"accepted\" (a boolean) and \"reason\" (a "
			    "string)",
			    peer);
		return FALSE;
	}
	*ret_accepted = json_node_get_boolean(accepted);
	if (ret_reason != NULL)
		*ret_reason = g_strdup(json_node_get_string(reason));
	return TRUE;
}

static void
vc_peer_client_set_transport_error(GError **error, const char *peer, const GError *e,
				   ServerCheck *check)
{
	if (check->error != NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO, "peer %s: %s", peer,
			    check->error->message);
	} else if (e->domain == G_TLS_ERROR) {
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO, "peer %s: TLS failed: %s", peer,
			    e->message);
	} else {
		/* connect, resolve, timeout, reset: the peer may be back later */
		g_set_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE, "peer %s: %s", peer, e->message);
	}
}

static gboolean
vc_peer_client_status_error(const char *peer, guint status, const char *data, gsize len,
			    GError **error)
{
	g_autofree char *text = vc_peer_client_reply_text(data, len);
	const char *what = text[0] != '\0' ? text : soup_status_get_phrase(status);

	if (status == SOUP_STATUS_FORBIDDEN)
		/* our certificate, or what we asked for: the reason says which */
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO, "peer %s refused: %s", peer, what);
	else if (status == SOUP_STATUS_NOT_FOUND || status >= 500)
		g_set_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE, "peer %s answered %u: %s", peer,
			    status, what);
	else
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "peer %s answered %u: %s", peer,
			    status, what);
	return FALSE;
}

static GBytes *
vc_peer_client_claim_body(const char *vm_uuid, const char *vm_name, const char *serial,
			  const char *fqdn)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonNode) root = NULL;
	char *text;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "vm_uuid");
	json_builder_add_string_value(b, vm_uuid);
	json_builder_set_member_name(b, "vm_name");
	json_builder_add_string_value(b, vm_name != NULL ? vm_name : "");
	json_builder_set_member_name(b, "serial");
	json_builder_add_string_value(b, serial);
	json_builder_set_member_name(b, "fqdn");
	json_builder_add_string_value(b, fqdn);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	text = json_to_string(root, FALSE);
	return g_bytes_new_take(text, strlen(text));
}

/* One request, driven to its end on the calling thread's own context. */
typedef struct {
	GCancellable *cancel;
	GInputStream *in;
	char *data;
	gsize len;
	gboolean done;
	gboolean timed_out;
	GError *error;
} Exchange;

static void
vc_peer_client_exchange_read_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Exchange *x = user_data;

	g_input_stream_read_all_finish(G_INPUT_STREAM(source), res, &x->len, &x->error);
	x->done = TRUE;
}

static void
vc_peer_client_exchange_sent(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Exchange *x = user_data;

	x->in = soup_session_send_finish(SOUP_SESSION(source), res, &x->error);
	if (x->in == NULL) {
		x->done = TRUE;
		return;
	}
	/* one octet more than allowed tells an oversized reply */
	g_input_stream_read_all_async(x->in, x->data, VC_PEER_REPLY_MAX + 1, G_PRIORITY_DEFAULT,
				      x->cancel, vc_peer_client_exchange_read_done, x);
}

static gboolean
vc_peer_client_exchange_timeout(gpointer user_data)
{
	Exchange *x = user_data;

	x->timed_out = TRUE;
	g_cancellable_cancel(x->cancel);
	return G_SOURCE_REMOVE;
}

/* The request itself. Asynchronous on a context of our own, iterated here
 * until done: libsoup's synchronous send deadlocks when the server asks for
 * a client certificate (glib-networking's sync handshake iterates a context
 * of its own, libsoup's TLS interaction waits on ours). */
static gboolean
vc_peer_client_claim_send(GUri *target, const char *peer, const VcPeerClientOptions *opts,
			  GTlsCertificate *client_cert, GBytes *body, gboolean *ret_accepted,
			  char **ret_reason, GError **error)
{
	guint timeout = opts->timeout_s > 0 ? opts->timeout_s : VC_PEER_DEFAULT_TIMEOUT_S;
	g_autoptr(GMainContext) ctx = g_main_context_new();
	g_autoptr(SoupSession) session = NULL;
	g_autoptr(SoupMessage) msg = NULL;
	g_autoptr(GCancellable) cancel = g_cancellable_new();
	g_autoptr(GSource) timer = NULL;
	g_autofree char *data = g_malloc(VC_PEER_REPLY_MAX + 1);
	Exchange x = {.cancel = cancel, .data = data};
	ServerCheck check = {
	    .host = g_uri_get_host(target),
	    .ca_path = opts->host_ca_path,
	    .crl_path = opts->host_crl_path,
	};
	guint status;
	const char *ctype;
	gboolean ok = FALSE;

	g_main_context_push_thread_default(ctx);
	/* hosts of one cluster talk directly: no proxy from the environment
	 * sits between the two ends of a handover */
	session =
	    soup_session_new_with_options("timeout", timeout, "idle-timeout", timeout, "user-agent",
					  "virtcert-peer", "proxy-resolver", NULL, NULL);
	/* no GIO trust at all: every server certificate goes through
	 * vc_peer_client_on_accept_certificate, i.e. OpenSSL and the host CA bundle */
	soup_session_set_tls_database(session, NULL);
	msg = soup_message_new_from_uri(SOUP_METHOD_POST, target);
	soup_message_set_request_body_from_bytes(msg, "application/json", body);
	soup_message_set_tls_client_certificate(msg, client_cert);
	g_signal_connect(msg, "accept-certificate",
			 G_CALLBACK(vc_peer_client_on_accept_certificate), &check);

	/* the whole exchange, connect to last octet, within TIMEOUT */
	timer = g_timeout_source_new_seconds(timeout);
	g_source_set_callback(timer, vc_peer_client_exchange_timeout, &x, NULL);
	g_source_attach(timer, ctx);
	soup_session_send_async(session, msg, G_PRIORITY_DEFAULT, cancel,
				vc_peer_client_exchange_sent, &x);
	while (!x.done)
		g_main_context_iteration(ctx, TRUE);
	g_source_destroy(timer);

	if (x.error != NULL && x.in == NULL) {
		if (x.timed_out)
			g_set_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE,
				    "peer %s: no answer within %u s", peer, timeout);
		else
			vc_peer_client_set_transport_error(error, peer, x.error, &check);
	} else if (x.error != NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE, "peer %s: reading the reply: %s",
			    peer, x.timed_out ? "timed out" : x.error->message);
	} else if (x.len > VC_PEER_REPLY_MAX) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "peer %s: the reply is larger than %d octets", peer, VC_PEER_REPLY_MAX);
	} else {
		data[x.len] = '\0';
		status = soup_message_get_status(msg);
		ctype = soup_message_headers_get_content_type(
		    soup_message_get_response_headers(msg), NULL);
		if (status != SOUP_STATUS_OK)
			vc_peer_client_status_error(peer, status, data, x.len, error);
		else if (ctype == NULL || g_ascii_strcasecmp(ctype, "application/json") != 0)
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "peer %s: the reply is %s, not application/json", peer,
				    ctype != NULL ? ctype : "untyped");
		else
			ok = vc_peer_client_parse_reply(peer, data, x.len, ret_accepted, ret_reason,
							error);
	}
	if (x.in != NULL) {
		g_input_stream_close(x.in, NULL, NULL);
		g_object_unref(x.in);
	}
	g_clear_error(&x.error);
	g_clear_error(&check.error);
	g_clear_object(&msg);
	g_clear_object(&session);
	/* let the connection's last callbacks run where they were queued */
	while (g_main_context_iteration(ctx, FALSE))
		;
	g_main_context_pop_thread_default(ctx);
	return ok;
}

/* POSTs {"vm_uuid", "vm_name", "serial", "fqdn"} to PATH at PEER_URL and
 * reads {"accepted", "reason"}. */
static gboolean
vc_peer_client_post(const char *peer_url, const char *path, const VcPeerClientOptions *opts,
		    const char *vm_uuid, const char *vm_name, const char *serial,
		    gboolean *ret_accepted, char **ret_reason, GError **error)
{
	g_autoptr(GUri) uri = NULL;
	g_autoptr(GUri) target = NULL;
	g_autoptr(GError) local = NULL;
	g_autoptr(VcHost) own = NULL;
	g_autoptr(GTlsCertificate) client_cert = NULL;
	g_autoptr(GBytes) body = NULL;
	gboolean accepted = FALSE;
	g_autofree char *reason = NULL;

	g_return_val_if_fail(peer_url != NULL && opts != NULL, FALSE);
	g_return_val_if_fail(vm_uuid != NULL && serial != NULL && ret_accepted != NULL, FALSE);
	if (opts->host_cert_path == NULL || opts->host_key_path == NULL ||
	    opts->host_ca_path == NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "the peer API needs this host's certificate, key and the "
				    "trusted host CA bundle");
		return FALSE;
	}
	uri = g_uri_parse(peer_url, SOUP_HTTP_URI_FLAGS, &local);
	if (uri == NULL || g_ascii_strcasecmp(g_uri_get_scheme(uri), "https") != 0 ||
	    g_uri_get_host(uri) == NULL || g_uri_get_host(uri)[0] == '\0') {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
			    "peer URL \"%s\" is not https://FQDN[:PORT]%s%s", peer_url,
			    local != NULL ? ": " : "", local != NULL ? local->message : "");
		return FALSE;
	}
	target = g_uri_build(SOUP_HTTP_URI_FLAGS, "https", NULL, g_uri_get_host(uri),
			     g_uri_get_port(uri), path, NULL, NULL);

	own = vc_host_load_files(opts->host_cert_path, opts->host_key_path, NULL, NULL, error);
	if (own == NULL)
		return FALSE;
	if (vc_host_get_fqdn(own) == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO, "%s names no host (no dNSName)",
			    opts->host_cert_path);
		return FALSE;
	}
	client_cert =
	    g_tls_certificate_new_from_files(opts->host_cert_path, opts->host_key_path, &local);
	if (client_cert == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO, "%s: %s", opts->host_cert_path,
			    local->message);
		return FALSE;
	}
	body = vc_peer_client_claim_body(vm_uuid, vm_name, serial, vc_host_get_fqdn(own));

	if (!vc_peer_client_claim_send(target, peer_url, opts, client_cert, body, &accepted,
				       &reason, error))
		return FALSE;
	*ret_accepted = accepted;
	if (ret_reason != NULL)
		*ret_reason = g_steal_pointer(&reason);
	return TRUE;
}

gboolean
vc_peer_claim(const char *peer_url, const VcPeerClientOptions *opts, const char *vm_uuid,
	      const char *vm_name, const char *serial, gboolean *ret_accepted, char **ret_reason,
	      GError **error)
{
	return vc_peer_client_post(peer_url, "/peer/v1/handover", opts, vm_uuid, vm_name, serial,
				   ret_accepted, ret_reason, error);
}

gboolean
vc_peer_announce(const char *peer_url, const VcPeerClientOptions *opts, const char *vm_uuid,
		 const char *vm_name, const char *serial, char **ret_reason, GError **error)
{
	gboolean accepted = FALSE;
	g_autofree char *reason = NULL;

	if (!vc_peer_client_post(peer_url, "/peer/v1/announce", opts, vm_uuid, vm_name, serial,
				 &accepted, &reason, error))
		return FALSE;
	if (!accepted) {
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "peer %s refused the announcement: %s", peer_url,
			    reason != NULL ? reason : "");
		return FALSE;
	}
	if (ret_reason != NULL)
		*ret_reason = g_steal_pointer(&reason);
	return TRUE;
}
