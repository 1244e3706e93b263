/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A listening socket that a flood cannot take down: our own accept loop,
 * a cap on connections, a deadline on every connection; what it accepts is
 * served by libsoup. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vc-error.h"
#include "vc-http-listener.h"

/* accepts per main loop iteration, so that a flood shares the loop */
#define VC_HTTP_ACCEPT_BATCH 32
#define VC_HTTP_BACKOFF_MIN_MS 100
#define VC_HTTP_BACKOFF_MAX_MS 1000
/* at most one warning of each kind this often */
#define VC_HTTP_WARN_INTERVAL_US (10 * G_USEC_PER_SEC)

typedef enum {
	VC_HTTP_CONN_HANDSHAKE, /* TLS handshake, ours */
	VC_HTTP_CONN_HEADERS,	/* libsoup reads a request's headers */
	VC_HTTP_CONN_REQUEST,	/* body, handler, response */
	VC_HTTP_CONN_IDLE,	/* kept alive between requests */
} VcHttpConnPhase;

typedef struct {
	VcHttpListener *listener; /* NULL once the listener is gone */
	GSocket *socket;
	GIOStream *stream; /* a GSocketConnection or the GTlsServerConnection over it */
	GSocketAddress *local;
	GSocketAddress *remote; /* carries the qdata that leads a message here */
	GCancellable *handshake;
	GSource *deadline;
	VcHttpConnPhase phase;
} VcHttpConn;

struct _VcHttpListener {
	SoupServer *server;
	char *name;
	char *where; /* the bound address, for messages */
	GSocket *socket;
	GSource *accept_source;
	guint backoff_ms;
	GTlsCertificate *tls_cert;
	GTlsDatabase *tls_db;
	GTlsAuthenticationMode auth_mode;
	VcHttpLimits limits;
	guint16 port;
	GHashTable *conns; /* VcHttpConn set */
	gulong request_started_id;
	/* see vc_http_listener_keep_alive() */
	GSocket *placeholder[2];
	VcHttpListenerStats stats;
	gint64 cap_warned_at;
	guint64 refused_unreported;
	gint64 error_warned_at;
};

static GQuark vc_http_conn_quark(void);
G_DEFINE_QUARK(vc_http_conn, vc_http_conn)

static void
vc_http_conn_free(VcHttpConn *conn)
{
	if (conn->deadline != NULL) {
		g_source_destroy(conn->deadline);
		g_source_unref(conn->deadline);
	}
	g_clear_object(&conn->handshake);
	g_clear_object(&conn->stream);
	g_clear_object(&conn->socket);
	g_clear_object(&conn->local);
	g_clear_object(&conn->remote);
	g_free(conn);
}

/* The connection leaves our books: its descriptor is closed (by us when
 * CLOSE, else libsoup already did). */
static void
vc_http_conn_release(VcHttpConn *conn, gboolean close)
{
	VcHttpListener *self = conn->listener;

	if (close)
		g_socket_close(conn->socket, NULL);
	if (conn->remote != NULL)
		g_object_set_qdata(G_OBJECT(conn->remote), vc_http_conn_quark(), NULL);
	if (self != NULL) {
		g_hash_table_remove(self->conns, conn);
		self->stats.open = g_hash_table_size(self->conns);
	}
	vc_http_conn_free(conn);
}

static VcHttpConn *
vc_http_conn_of_message(SoupServerMessage *msg)
{
	GSocketAddress *remote = soup_server_message_get_remote_address(msg);

	return remote != NULL ? g_object_get_qdata(G_OBJECT(remote), vc_http_conn_quark()) : NULL;
}

static const char *
vc_http_conn_phase_to_string(VcHttpConnPhase phase)
{
	switch (phase) {
	case VC_HTTP_CONN_HANDSHAKE:
		return "no TLS handshake";
	case VC_HTTP_CONN_HEADERS:
		return "no complete request headers";
	case VC_HTTP_CONN_REQUEST:
		return "the request and its response not done";
	case VC_HTTP_CONN_IDLE:
		return "no new request";
	default:
		g_assert_not_reached();
	}
}

static gboolean
vc_http_conn_deadline_cb(gpointer user_data)
{
	VcHttpConn *conn = user_data;
	VcHttpListener *self = conn->listener;
	g_autofree char *peer = NULL;

	g_clear_pointer(&conn->deadline, g_source_unref);
	if (g_socket_is_closed(conn->socket)) {
		/* libsoup closed it without telling a message: only our books */
		vc_http_conn_release(conn, FALSE);
		return G_SOURCE_REMOVE;
	}
	self->stats.timed_out++;
	if (G_IS_INET_SOCKET_ADDRESS(conn->remote))
		peer = g_inet_address_to_string(
		    g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(conn->remote)));
	g_debug("%s: closing the connection from %s: %s in time", self->name,
		peer != NULL ? peer : "?", vc_http_conn_phase_to_string(conn->phase));
	if (conn->phase == VC_HTTP_CONN_HANDSHAKE) {
		/* the handshake runs in a GIO worker: it ends, and the
		 * descriptor is closed, in vc_http_listener_handshake_cb() */
		g_cancellable_cancel(conn->handshake);
		return G_SOURCE_REMOVE;
	}
	/* GSocket refuses every later call on a closed socket, so libsoup's
	 * pending read ends with an error and it lets the connection go */
	vc_http_conn_release(conn, TRUE);
	return G_SOURCE_REMOVE;
}

/* Enters PHASE with a deadline of TIMEOUT_MS from now (0: none). */
static void
vc_http_conn_enter(VcHttpConn *conn, VcHttpConnPhase phase, guint timeout_ms)
{
	conn->phase = phase;
	if (conn->deadline != NULL) {
		g_source_destroy(conn->deadline);
		g_clear_pointer(&conn->deadline, g_source_unref);
	}
	if (timeout_ms == 0)
		return;
	conn->deadline = g_timeout_source_new(timeout_ms);
	g_source_set_callback(conn->deadline, vc_http_conn_deadline_cb, conn, NULL);
	g_source_attach(conn->deadline, g_main_context_get_thread_default());
}

/* ---- what libsoup does with a connection ---------------------------------- */

static void
vc_http_listener_got_headers(SoupServerMessage *msg, gpointer user_data)
{
	VcHttpConn *conn = vc_http_conn_of_message(msg);

	if (conn != NULL && conn->listener != NULL)
		vc_http_conn_enter(conn, VC_HTTP_CONN_REQUEST,
				   conn->listener->limits.request_timeout_ms);
}

static void
vc_http_listener_finished(SoupServerMessage *msg, gpointer user_data)
{
	VcHttpConn *conn = vc_http_conn_of_message(msg);

	if (conn != NULL && conn->listener != NULL)
		vc_http_conn_enter(conn, VC_HTTP_CONN_IDLE, conn->listener->limits.idle_timeout_ms);
}

static void
vc_http_listener_disconnected(SoupServerMessage *msg, gpointer user_data)
{
	VcHttpConn *conn = vc_http_conn_of_message(msg);

	if (conn != NULL)
		vc_http_conn_release(conn, FALSE);
}

/* For a connection's first request at once; on a kept-alive connection
 * when the next request's first byte arrives. */
static void
vc_http_listener_request_started(SoupServer *server, SoupServerMessage *msg, gpointer user_data)
{
	VcHttpListener *self = user_data;
	VcHttpConn *conn = vc_http_conn_of_message(msg);

	if (conn == NULL || conn->listener != self)
		return;
	g_signal_connect(msg, "got-headers", G_CALLBACK(vc_http_listener_got_headers), NULL);
	g_signal_connect(msg, "finished", G_CALLBACK(vc_http_listener_finished), NULL);
	g_signal_connect(msg, "disconnected", G_CALLBACK(vc_http_listener_disconnected), NULL);
	if (conn->phase == VC_HTTP_CONN_IDLE)
		vc_http_conn_enter(conn, VC_HTTP_CONN_HEADERS, self->limits.header_timeout_ms);
}

static void
vc_http_listener_hand_over(VcHttpListener *self, VcHttpConn *conn)
{
	g_autoptr(GError) error = NULL;

	/* the header deadline runs on from the accept */
	conn->phase = VC_HTTP_CONN_HEADERS;
	g_object_set_qdata(G_OBJECT(conn->remote), vc_http_conn_quark(), conn);
	if (!soup_server_accept_iostream(self->server, conn->stream, conn->local, conn->remote,
					 &error)) {
		g_debug("%s: libsoup refused a connection: %s", self->name, error->message);
		vc_http_conn_release(conn, TRUE);
		return;
	}
	self->stats.accepted++;
}

/* GIO's verdict on a client certificate is not ours: the caller verifies
 * it with OpenSSL against its own CA bundle and CRL. */
static gboolean
vc_http_listener_accept_certificate(GTlsConnection *tls, GTlsCertificate *cert,
				    GTlsCertificateFlags errors, gpointer user_data)
{
	return TRUE;
}

static void
vc_http_listener_handshake_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	VcHttpConn *conn = user_data;
	g_autoptr(GError) error = NULL;

	if (!g_tls_connection_handshake_finish(G_TLS_CONNECTION(source), result, &error)) {
		if (conn->listener != NULL)
			g_debug("%s: TLS handshake failed: %s", conn->listener->name,
				error->message);
		vc_http_conn_release(conn, TRUE);
		return;
	}
	if (conn->listener == NULL) {
		vc_http_conn_release(conn, TRUE);
		return;
	}
	g_clear_object(&conn->handshake);
	vc_http_listener_hand_over(conn->listener, conn);
}

static void
vc_http_listener_start_tls(VcHttpListener *self, VcHttpConn *conn)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GIOStream) tls = NULL;

	tls = g_tls_server_connection_new(conn->stream, self->tls_cert, &error);
	if (tls == NULL) {
		g_warning("%s: cannot start TLS: %s", self->name, error->message);
		vc_http_conn_release(conn, TRUE);
		return;
	}
	g_object_set(tls, "authentication-mode", self->auth_mode, "require-close-notify", FALSE,
		     NULL);
	if (self->tls_db != NULL)
		g_tls_connection_set_database(G_TLS_CONNECTION(tls), self->tls_db);
	g_signal_connect(tls, "accept-certificate", G_CALLBACK(vc_http_listener_accept_certificate),
			 NULL);
	g_object_unref(conn->stream);
	conn->stream = g_steal_pointer(&tls);
	conn->handshake = g_cancellable_new();
	conn->phase = VC_HTTP_CONN_HANDSHAKE;
	g_tls_connection_handshake_async(G_TLS_CONNECTION(conn->stream), G_PRIORITY_DEFAULT,
					 conn->handshake, vc_http_listener_handshake_cb, conn);
}

/* ---- accepting ------------------------------------------------------------ */

static void
vc_http_listener_refuse(VcHttpListener *self, GSocket *client)
{
	gint64 now = g_get_monotonic_time();

	g_socket_close(client, NULL);
	self->stats.refused++;
	self->refused_unreported++;
	if (self->cap_warned_at != 0 && now - self->cap_warned_at < VC_HTTP_WARN_INTERVAL_US)
		return;
	g_warning("%s on %s: %u connections open, the most allowed (max-connections): refused "
		  "%" G_GUINT64_FORMAT " connection(s) since the last warning, %" G_GUINT64_FORMAT
		  " in all",
		  self->name, self->where, self->limits.max_connections, self->refused_unreported,
		  self->stats.refused);
	self->cap_warned_at = now;
	self->refused_unreported = 0;
}

static void
vc_http_listener_take(VcHttpListener *self, GSocket *client)
{
	g_autoptr(GError) error = NULL;
	VcHttpConn *conn;

	if (self->limits.max_connections > 0 &&
	    g_hash_table_size(self->conns) >= self->limits.max_connections) {
		vc_http_listener_refuse(self, client);
		return;
	}
	conn = g_new0(VcHttpConn, 1);
	conn->listener = self;
	conn->socket = g_object_ref(client);
	g_hash_table_add(self->conns, conn);
	self->stats.open = g_hash_table_size(self->conns);
	conn->local = g_socket_get_local_address(client, &error);
	if (conn->local != NULL)
		conn->remote = g_socket_get_remote_address(client, &error);
	if (conn->remote == NULL) {
		/* gone before we got to it */
		g_debug("%s: %s", self->name, error->message);
		vc_http_conn_release(conn, TRUE);
		return;
	}
	g_socket_set_option(client, IPPROTO_TCP, TCP_NODELAY, TRUE, NULL);
	conn->stream = G_IO_STREAM(g_socket_connection_factory_create_connection(client));
	vc_http_conn_enter(conn, VC_HTTP_CONN_HEADERS, self->limits.header_timeout_ms);
	if (self->tls_cert != NULL)
		vc_http_listener_start_tls(self, conn);
	else
		vc_http_listener_hand_over(self, conn);
}

static gboolean vc_http_listener_accept_cb(GSocket *socket, GIOCondition cond, gpointer user_data);

static void
vc_http_listener_start_accepting(VcHttpListener *self)
{
	self->accept_source = g_socket_create_source(self->socket, G_IO_IN, NULL);
	g_source_set_callback(self->accept_source, G_SOURCE_FUNC(vc_http_listener_accept_cb), self,
			      NULL);
	g_source_attach(self->accept_source, g_main_context_get_thread_default());
}

static gboolean
vc_http_listener_resume_cb(gpointer user_data)
{
	VcHttpListener *self = user_data;

	g_clear_pointer(&self->accept_source, g_source_unref);
	vc_http_listener_start_accepting(self);
	return G_SOURCE_REMOVE;
}

/* Out of descriptors (or buffers): the listener stays readable, so pause
 * instead of spinning; the waiting clients stay in the backlog meanwhile. */
static void
vc_http_listener_pause(VcHttpListener *self, const GError *error)
{
	gint64 now = g_get_monotonic_time();

	self->stats.accept_errors++;
	self->backoff_ms = self->backoff_ms == 0
			       ? VC_HTTP_BACKOFF_MIN_MS
			       : MIN(self->backoff_ms * 2, VC_HTTP_BACKOFF_MAX_MS);
	if (self->error_warned_at == 0 || now - self->error_warned_at >= VC_HTTP_WARN_INTERVAL_US) {
		g_warning("%s on %s: cannot accept a connection: %s (%u open); pausing for %u ms",
			  self->name, self->where, error->message, g_hash_table_size(self->conns),
			  self->backoff_ms);
		self->error_warned_at = now;
	}
	g_source_destroy(self->accept_source);
	g_source_unref(self->accept_source);
	self->accept_source = g_timeout_source_new(self->backoff_ms);
	g_source_set_callback(self->accept_source, vc_http_listener_resume_cb, self, NULL);
	g_source_attach(self->accept_source, g_main_context_get_thread_default());
}

static gboolean
vc_http_listener_accept_cb(GSocket *socket, GIOCondition cond, gpointer user_data)
{
	VcHttpListener *self = user_data;

	for (guint i = 0; i < VC_HTTP_ACCEPT_BATCH; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GSocket) client = g_socket_accept(socket, NULL, &error);

		if (client == NULL) {
			if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
				break;
			vc_http_listener_pause(self, error);
			return G_SOURCE_REMOVE;
		}
		self->backoff_ms = 0;
		vc_http_listener_take(self, client);
	}
	return G_SOURCE_CONTINUE;
}

/* libsoup keeps a connection alive after a response only while its server
 * has a listener of its own (soup-server.c, request_finished()); ours is
 * not libsoup's. So the server gets a placeholder listener that never
 * fires: one end of a socket pair whose other end we hold and never write
 * to. Without it every response would end its connection, which is
 * correct HTTP too, so a failure here only costs keep-alive. */
static void
vc_http_listener_keep_alive(VcHttpListener *self)
{
	g_autoptr(GError) error = NULL;
	int fds[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) {
		g_debug("%s: no keep-alive: socketpair: %s", self->name, g_strerror(errno));
		return;
	}
	for (int i = 0; i < 2; i++) {
		self->placeholder[i] = g_socket_new_from_fd(fds[i], &error);
		if (self->placeholder[i] == NULL) {
			g_debug("%s: no keep-alive: %s", self->name, error->message);
			close(fds[i]);
			if (i == 0)
				close(fds[1]);
			g_clear_object(&self->placeholder[0]);
			return;
		}
	}
	if (!soup_server_listen_socket(self->server, self->placeholder[0], 0, &error))
		g_debug("%s: no keep-alive: %s", self->name, error->message);
}

static gboolean
vc_http_listener_bind(VcHttpListener *self, GSocketAddress *address, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_autoptr(GSocketAddress) bound = NULL;
	GSocketFamily family = g_socket_address_get_family(address);

	self->where = g_socket_connectable_to_string(G_SOCKET_CONNECTABLE(address));
	self->socket =
	    g_socket_new(family, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, &local);
	if (self->socket != NULL && family == G_SOCKET_FAMILY_IPV6)
		g_socket_set_option(self->socket, IPPROTO_IPV6, IPV6_V6ONLY, TRUE, NULL);
	if (self->socket != NULL)
		g_socket_set_listen_backlog(self->socket, SOMAXCONN);
	if (self->socket == NULL || !g_socket_bind(self->socket, address, TRUE, &local) ||
	    !g_socket_listen(self->socket, &local)) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot listen on %s: %s", self->where,
			    local->message);
		return FALSE;
	}
	bound = g_socket_get_local_address(self->socket, &local);
	if (bound == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot listen on %s: %s", self->where,
			    local->message);
		return FALSE;
	}
	self->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
	g_free(self->where);
	self->where = g_socket_connectable_to_string(G_SOCKET_CONNECTABLE(bound));
	g_socket_set_blocking(self->socket, FALSE);
	return TRUE;
}

VcHttpListener *
vc_http_listener_new(SoupServer *server, const char *name, GSocketAddress *address,
		     GTlsCertificate *tls_cert, GTlsDatabase *tls_db,
		     GTlsAuthenticationMode auth_mode, const VcHttpLimits *limits, GError **error)
{
	g_autoptr(VcHttpListener) self = g_new0(VcHttpListener, 1);

	g_return_val_if_fail(SOUP_IS_SERVER(server) && name != NULL && address != NULL, NULL);
	self->server = g_object_ref(server);
	self->name = g_strdup(name);
	self->tls_cert = tls_cert != NULL ? g_object_ref(tls_cert) : NULL;
	self->tls_db = tls_db != NULL ? g_object_ref(tls_db) : NULL;
	self->auth_mode = auth_mode;
	if (limits != NULL)
		self->limits = *limits;
	self->stats.max = self->limits.max_connections;
	self->conns = g_hash_table_new(NULL, NULL);
	if (!vc_http_listener_bind(self, address, error))
		return NULL;
	vc_http_listener_keep_alive(self);
	self->request_started_id = g_signal_connect(
	    server, "request-started", G_CALLBACK(vc_http_listener_request_started), self);
	vc_http_listener_start_accepting(self);
	return g_steal_pointer(&self);
}

void
vc_http_listener_free(VcHttpListener *self)
{
	GHashTableIter iter;
	gpointer key;

	if (self == NULL)
		return;
	if (self->request_started_id != 0)
		g_signal_handler_disconnect(self->server, self->request_started_id);
	if (self->accept_source != NULL) {
		g_source_destroy(self->accept_source);
		g_source_unref(self->accept_source);
	}
	if (self->socket != NULL)
		g_socket_close(self->socket, NULL);
	g_clear_object(&self->socket);
	g_hash_table_iter_init(&iter, self->conns);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		VcHttpConn *conn = key;

		g_hash_table_iter_remove(&iter);
		conn->listener = NULL;
		if (conn->handshake != NULL) {
			/* freed by the handshake's callback */
			if (conn->deadline != NULL) {
				g_source_destroy(conn->deadline);
				g_clear_pointer(&conn->deadline, g_source_unref);
			}
			g_cancellable_cancel(conn->handshake);
			continue;
		}
		/* libsoup holds the connection; soup_server_disconnect() ends it */
		vc_http_conn_release(conn, FALSE);
	}
	g_hash_table_unref(self->conns);
	for (int i = 0; i < 2; i++) {
		if (self->placeholder[i] != NULL)
			g_socket_close(self->placeholder[i], NULL);
		g_clear_object(&self->placeholder[i]);
	}
	g_clear_object(&self->tls_cert);
	g_clear_object(&self->tls_db);
	g_clear_object(&self->server);
	g_free(self->name);
	g_free(self->where);
	g_free(self);
}

guint16
vc_http_listener_get_port(VcHttpListener *listener)
{
	return listener->port;
}

GTlsCertificate *
vc_http_listener_get_peer_certificate(SoupServerMessage *msg)
{
	VcHttpConn *conn = vc_http_conn_of_message(msg);

	if (conn == NULL || !G_IS_TLS_CONNECTION(conn->stream))
		return NULL;
	return g_tls_connection_get_peer_certificate(G_TLS_CONNECTION(conn->stream));
}

void
vc_http_listener_get_stats(VcHttpListener *listener, VcHttpListenerStats *ret_stats)
{
	*ret_stats = listener->stats;
	ret_stats->open = g_hash_table_size(listener->conns);
}
