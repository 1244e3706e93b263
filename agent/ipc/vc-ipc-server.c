/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-ipc-server.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gio/gunixsocketaddress.h>

#include "vc-error.h"

/* Bytes read per receive call. */
#define VC_IPC_READ_CHUNK 16384
/* At most one warning about the connection cap this often. */
#define VC_IPC_WARN_INTERVAL_US (10 * G_USEC_PER_SEC)

typedef struct {
	VcIpcHandler handler;
	gpointer user_data;
} VcIpcMethod;

typedef struct _VcIpcConn VcIpcConn;

struct _VcIpcServer {
	GMainContext *context;
	char *path;
	char *group;
	GSocket *listener;
	GSource *accept_source;
	dev_t dev;
	ino_t ino;
	uid_t self;
	gsize max_queue;
	GHashTable *methods; /* name -> VcIpcMethod */
	GList *connections;  /* VcIpcConn, one reference each */
	guint n_connections;
	guint max_connections;	  /* 0: no cap */
	guint request_timeout_ms; /* 0: none */
	guint64 n_refused;
	guint64 n_timed_out;
	gint64 cap_warned_at;
	guint64 refused_unreported;
};

struct _VcIpcConn {
	gint ref;
	VcIpcServer *server; /* NULL once closed */
	GSocket *socket;
	GSource *source;
	GIOCondition source_cond;
	GSource *resume;
	GSource *deadline; /* for the next complete request */
	uid_t uid;
	GByteArray *inbuf;
	GQueue outq;	  /* GBytes, unsent lines */
	gsize out_offset; /* bytes of the head already sent */
	gsize out_queued; /* unsent bytes in outq */
	gboolean busy;	  /* a request awaits its answer */
	gboolean in_dispatch;
	gboolean watcher;
	gboolean eof;
	gboolean close_after_flush;
	gboolean closed;
};

struct _VcIpcRequest {
	VcIpcConn *conn;       /* a reference */
	GMainContext *context; /* the server's, where the answer is sent */
	char *text;	       /* the answer, while it travels to that context */
	gsize text_len;
	JsonNode *root; /* owns method and params */
	gint64 id;
	const char *method;
	JsonObject *params;
	uid_t uid;
};

static void vc_ipc_conn_update(VcIpcConn *conn);
static void vc_ipc_conn_process(VcIpcConn *conn);

static VcIpcConn *
vc_ipc_conn_ref(VcIpcConn *conn)
{
	g_atomic_int_inc(&conn->ref);
	return conn;
}

static void
vc_ipc_conn_unref(VcIpcConn *conn)
{
	if (!g_atomic_int_dec_and_test(&conn->ref))
		return;
	g_queue_clear_full(&conn->outq, (GDestroyNotify)g_bytes_unref);
	g_clear_pointer(&conn->inbuf, g_byte_array_unref);
	g_clear_object(&conn->socket);
	g_free(conn);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcIpcConn, vc_ipc_conn_unref)

static void
vc_ipc_conn_close(VcIpcConn *conn)
{
	VcIpcServer *server = conn->server;

	if (conn->closed)
		return;
	conn->closed = TRUE;
	conn->server = NULL;
	if (conn->source != NULL) {
		g_source_destroy(conn->source);
		g_clear_pointer(&conn->source, g_source_unref);
	}
	if (conn->resume != NULL) {
		g_source_destroy(conn->resume);
		g_clear_pointer(&conn->resume, g_source_unref);
	}
	if (conn->deadline != NULL) {
		g_source_destroy(conn->deadline);
		g_clear_pointer(&conn->deadline, g_source_unref);
	}
	g_socket_close(conn->socket, NULL);
	g_queue_clear_full(&conn->outq, (GDestroyNotify)g_bytes_unref);
	conn->out_queued = 0;
	if (server != NULL) {
		server->connections = g_list_remove(server->connections, conn);
		server->n_connections--;
		vc_ipc_conn_unref(conn);
	}
}

/* After a failed send or receive: TRUE when it would only have blocked,
 * FALSE (logged) when the peer is gone. */
static gboolean
vc_ipc_conn_io_error(VcIpcConn *conn, const GError *error)
{
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
		return TRUE;
	g_debug("control connection of uid %u: %s", (guint)conn->uid, error->message);
	return FALSE;
}

/* Writes what the socket takes now. FALSE when the peer is gone. */
static gboolean
vc_ipc_conn_flush(VcIpcConn *conn)
{
	while (!g_queue_is_empty(&conn->outq)) {
		g_autoptr(GError) error = NULL;
		GBytes *head = g_queue_peek_head(&conn->outq);
		gsize size = 0;
		const char *data = g_bytes_get_data(head, &size);
		gssize n = g_socket_send(conn->socket, data + conn->out_offset,
					 size - conn->out_offset, NULL, &error);

		if (n < 0)
			return vc_ipc_conn_io_error(conn, error);
		conn->out_offset += (gsize)n;
		conn->out_queued -= (gsize)n;
		if (conn->out_offset == size) {
			g_bytes_unref(g_queue_pop_head(&conn->outq));
			conn->out_offset = 0;
		}
	}
	return TRUE;
}

/* Queues one line and sends as much as possible. Events respect the queue
 * bound: a watcher that does not read must not make the daemon buffer without
 * limit, and it must never make it wait either. */
static void
vc_ipc_conn_send(VcIpcConn *conn, GBytes *line, gboolean is_event)
{
	gsize size = g_bytes_get_size(line);

	if (conn->closed)
		return;
	if (is_event && conn->server != NULL && conn->out_queued > 0 &&
	    conn->out_queued + size > conn->server->max_queue) {
		g_warning("dropping control socket watcher of uid %u: it does not read its events "
			  "(%" G_GSIZE_FORMAT " bytes queued)",
			  (guint)conn->uid, conn->out_queued);
		vc_ipc_conn_close(conn);
		return;
	}
	g_queue_push_tail(&conn->outq, g_bytes_ref(line));
	conn->out_queued += size;
	if (!vc_ipc_conn_flush(conn)) {
		vc_ipc_conn_close(conn);
		return;
	}
	if (conn->out_queued == 0 && conn->close_after_flush)
		vc_ipc_conn_close(conn);
}

static void
vc_ipc_conn_send_text(VcIpcConn *conn, char *text, gsize len)
{
	g_autoptr(GBytes) bytes = g_bytes_new_take(text, len);

	vc_ipc_conn_send(conn, bytes, FALSE);
}

/* Answers a line that could not be taken as a request. @fatal: the stream
 * itself is broken (we cannot trust where the next line starts, or the peer
 * is not allowed), so close once the error line is written. */
static void
vc_ipc_conn_send_error(VcIpcConn *conn, const gint64 *id, const GError *error, gboolean fatal)
{
	gsize len = 0;
	char *text = vc_ipc_proto_build_error(id, error, &len);

	if (fatal)
		conn->close_after_flush = TRUE;
	vc_ipc_conn_send_text(conn, text, len);
}

static gboolean
vc_ipc_conn_resume_cb(gpointer user_data)
{
	g_autoptr(VcIpcConn) conn = vc_ipc_conn_ref(user_data);

	g_clear_pointer(&conn->resume, g_source_unref);
	vc_ipc_conn_process(conn);
	vc_ipc_conn_update(conn);
	return G_SOURCE_REMOVE;
}

/* Continues with the next request from the main loop rather than from
 * inside a handler's callback, so handlers are never re-entered. */
static void
vc_ipc_conn_schedule_resume(VcIpcConn *conn)
{
	if (conn->closed || conn->resume != NULL || conn->server == NULL)
		return;
	conn->resume = g_idle_source_new();
	g_source_set_callback(conn->resume, vc_ipc_conn_resume_cb, vc_ipc_conn_ref(conn),
			      (GDestroyNotify)vc_ipc_conn_unref);
	g_source_attach(conn->resume, conn->server->context);
}

static void
vc_ipc_conn_dispatch(VcIpcConn *conn, const char *line, gsize len)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) root = NULL;
	VcIpcServer *server = conn->server;
	VcIpcMethod *entry;
	VcIpcRequest *request;
	const char *method = NULL;
	JsonObject *params = NULL;
	gboolean has_id = FALSE;
	gint64 id = 0;

	root = vc_ipc_proto_parse_line(line, len, &error);
	if (root == NULL) {
		vc_ipc_conn_send_error(conn, NULL, error, TRUE);
		return;
	}
	if (!vc_ipc_proto_parse_request(json_node_get_object(root), &id, &has_id, &method, &params,
					&error)) {
		vc_ipc_conn_send_error(conn, has_id ? &id : NULL, error, FALSE);
		return;
	}
	if (g_str_equal(method, VC_IPC_METHOD_WATCH)) {
		g_autoptr(JsonObject) result = json_object_new();
		g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
		gsize rlen = 0;
		char *text;

		json_object_set_boolean_member(result, "watching", TRUE);
		json_node_set_object(node, result);
		text = vc_ipc_proto_build_reply(id, node, &rlen);
		conn->watcher = TRUE;
		vc_ipc_conn_send_text(conn, text, rlen);
		return;
	}
	entry = g_hash_table_lookup(server->methods, method);
	if (entry == NULL) {
		g_set_error(&error, VC_ERROR, VC_ERROR_USAGE, "unknown method \"%s\"", method);
		vc_ipc_conn_send_error(conn, &id, error, FALSE);
		return;
	}

	request = g_new0(VcIpcRequest, 1);
	request->conn = vc_ipc_conn_ref(conn);
	request->context = g_main_context_ref(server->context);
	request->root = g_steal_pointer(&root);
	request->id = id;
	request->method = method;
	request->params = params;
	request->uid = conn->uid;
	conn->busy = TRUE;
	entry->handler(request, entry->user_data);
}

/* Finds the end of the first line in the input, or -1; -2 when the line
 * (complete or not) is already longer than the limit. */
static gssize
vc_ipc_conn_find_line(VcIpcConn *conn)
{
	gsize scan = MIN(conn->inbuf->len, (gsize)VC_IPC_MAX_REQUEST_LINE + 1);
	const guint8 *nl = scan > 0 ? memchr(conn->inbuf->data, '\n', scan) : NULL;

	if (nl != NULL)
		return nl - conn->inbuf->data;
	if (conn->inbuf->len > VC_IPC_MAX_REQUEST_LINE)
		return -2;
	return -1;
}

/* Dispatches buffered lines while the connection may take the next one:
 * one request at a time, and only once the previous reply is written. */
static void
vc_ipc_conn_process(VcIpcConn *conn)
{
	g_autoptr(VcIpcConn) hold = vc_ipc_conn_ref(conn);

	if (conn->in_dispatch)
		return;
	conn->in_dispatch = TRUE;
	while (!conn->closed && !conn->busy && !conn->watcher && !conn->close_after_flush &&
	       conn->out_queued == 0) {
		gssize end = vc_ipc_conn_find_line(conn);
		g_autofree char *line = NULL;
		gsize len;

		if (end == -2) {
			g_autoptr(GError) error = NULL;
			g_set_error(&error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "request line longer than %d bytes", VC_IPC_MAX_REQUEST_LINE);
			vc_ipc_conn_send_error(conn, NULL, error, TRUE);
			break;
		}
		if (end == -1)
			break;
		len = (gsize)end;
		line = g_strndup((const char *)conn->inbuf->data, len);
		g_byte_array_remove_range(conn->inbuf, 0, (guint)len + 1);
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len == 0)
			continue;
		vc_ipc_conn_dispatch(conn, line, len);
	}
	conn->in_dispatch = FALSE;

	if (conn->watcher)
		g_byte_array_set_size(conn->inbuf, 0); /* a watcher has nothing more to say */
	/* A peer that closed its sending side gets the answers to what it sent,
	 * then the connection ends. */
	if (conn->eof && !conn->closed && !conn->busy && conn->out_queued == 0 &&
	    (conn->watcher || vc_ipc_conn_find_line(conn) == -1))
		vc_ipc_conn_close(conn);
}

/* Reads what is available, up to one line's worth beyond the limit so an
 * overlong line is noticed without buffering it whole. FALSE on errors. */
static gboolean
vc_ipc_conn_read(VcIpcConn *conn)
{
	while (conn->inbuf->len <= VC_IPC_MAX_REQUEST_LINE) {
		g_autoptr(GError) error = NULL;
		guint old = conn->inbuf->len;
		gssize n;

		g_byte_array_set_size(conn->inbuf, old + VC_IPC_READ_CHUNK);
		n = g_socket_receive(conn->socket, (gchar *)conn->inbuf->data + old,
				     VC_IPC_READ_CHUNK, NULL, &error);
		g_byte_array_set_size(conn->inbuf, old + (n > 0 ? (guint)n : 0));
		if (n == 0) {
			conn->eof = TRUE;
			return TRUE;
		}
		if (n < 0)
			return vc_ipc_conn_io_error(conn, error);
		if (conn->watcher)
			g_byte_array_set_size(conn->inbuf, 0);
	}
	return TRUE;
}

static gboolean
vc_ipc_conn_wants_input(VcIpcConn *conn)
{
	if (conn->eof || conn->close_after_flush)
		return FALSE;
	return conn->watcher || (!conn->busy && conn->out_queued == 0);
}

static gboolean
vc_ipc_conn_io_cb(GSocket *socket, GIOCondition cond, gpointer user_data)
{
	g_autoptr(VcIpcConn) conn = vc_ipc_conn_ref(user_data);

	if (cond & (G_IO_ERR | G_IO_NVAL)) {
		vc_ipc_conn_close(conn);
		return G_SOURCE_REMOVE;
	}
	if ((cond & G_IO_OUT) && !vc_ipc_conn_flush(conn)) {
		vc_ipc_conn_close(conn);
		return G_SOURCE_REMOVE;
	}
	if (conn->out_queued == 0 && conn->close_after_flush) {
		vc_ipc_conn_close(conn);
		return G_SOURCE_REMOVE;
	}
	if (vc_ipc_conn_wants_input(conn) && (cond & (G_IO_IN | G_IO_HUP))) {
		if (!vc_ipc_conn_read(conn)) {
			vc_ipc_conn_close(conn);
			return G_SOURCE_REMOVE;
		}
	} else if (cond & G_IO_HUP) {
		/* Gone while we were not reading: a pending answer is dropped. */
		vc_ipc_conn_close(conn);
		return G_SOURCE_REMOVE;
	}
	vc_ipc_conn_process(conn);
	vc_ipc_conn_update(conn);
	return G_SOURCE_CONTINUE;
}

static gboolean
vc_ipc_conn_deadline_cb(gpointer user_data)
{
	VcIpcConn *conn = user_data;

	g_clear_pointer(&conn->deadline, g_source_unref);
	if (conn->server == NULL)
		return G_SOURCE_REMOVE;
	conn->server->n_timed_out++;
	g_debug("closing the control connection of uid %u: no complete request within %u ms "
		"(%u bytes of one)",
		(guint)conn->uid, conn->server->request_timeout_ms, conn->inbuf->len);
	vc_ipc_conn_close(conn);
	return G_SOURCE_REMOVE;
}

/* A connection that neither awaits an answer nor watches owes us its next
 * complete request within the timeout, counted from its accept or from
 * its last answer: a client that holds half a line (or nothing) holds a
 * descriptor only that long. */
static void
vc_ipc_conn_update_deadline(VcIpcConn *conn)
{
	gboolean owes = !conn->busy && !conn->watcher;

	if (!owes || conn->server->request_timeout_ms == 0) {
		if (conn->deadline != NULL) {
			g_source_destroy(conn->deadline);
			g_clear_pointer(&conn->deadline, g_source_unref);
		}
		return;
	}
	if (conn->deadline != NULL)
		return;
	conn->deadline = g_timeout_source_new(conn->server->request_timeout_ms);
	/* the connection closes (and destroys this source) before it is freed */
	g_source_set_callback(conn->deadline, vc_ipc_conn_deadline_cb, conn, NULL);
	g_source_attach(conn->deadline, conn->server->context);
}

/* (Re)creates the socket source for what the connection waits for now;
 * HUP and ERR are always watched by GSocket sources. */
static void
vc_ipc_conn_update(VcIpcConn *conn)
{
	GIOCondition cond = 0;

	if (conn->closed || conn->server == NULL)
		return;
	vc_ipc_conn_update_deadline(conn);
	if (vc_ipc_conn_wants_input(conn))
		cond |= G_IO_IN;
	if (conn->out_queued > 0)
		cond |= G_IO_OUT;
	if (conn->source != NULL && conn->source_cond == cond)
		return;
	if (conn->source != NULL) {
		g_source_destroy(conn->source);
		g_clear_pointer(&conn->source, g_source_unref);
	}
	conn->source_cond = cond;
	conn->source = g_socket_create_source(conn->socket, cond, NULL);
	g_source_set_callback(conn->source, G_SOURCE_FUNC(vc_ipc_conn_io_cb), conn, NULL);
	g_source_attach(conn->source, conn->server->context);
}

/* Group GROUP_NAME into *GRP when it is not NULL, else account UID into
 * *PW, with the strings in *BUF (grown until they fit, up to 1 MiB). FALSE
 * when there is no such entry or the lookup failed. */
static gboolean
vc_ipc_lookup_entry(const char *group_name, struct group *grp, uid_t uid, struct passwd *pw,
		    char **buf)
{
	gsize size = 1024;
	struct group *grp_result = NULL;
	struct passwd *pw_result = NULL;
	int r;

	for (;;) {
		*buf = g_realloc(*buf, size);
		if (group_name != NULL)
			r = getgrnam_r(group_name, grp, *buf, size, &grp_result);
		else
			r = getpwuid_r(uid, pw, *buf, size, &pw_result);
		if (r != ERANGE || size > 1024 * 1024)
			break;
		size *= 2;
	}
	return r == 0 && (grp_result != NULL || pw_result != NULL);
}

static gboolean
vc_ipc_lookup_group(const char *name, gid_t *ret_gid)
{
	g_autofree char *buf = NULL;
	struct group grp;

	if (!vc_ipc_lookup_entry(name, &grp, 0, NULL, &buf))
		return FALSE;
	*ret_gid = grp.gr_gid;
	return TRUE;
}

/* Whether the account @uid belongs to @gid by its passwd entry or /etc/group
 * (getgrouplist: primary plus supplementary). */
static gboolean
vc_ipc_uid_in_group(uid_t uid, gid_t gid)
{
	g_autofree char *buf = NULL;
	g_autofree gid_t *groups = NULL;
	struct passwd pw;
	int ngroups = 64;

	if (!vc_ipc_lookup_entry(NULL, NULL, uid, &pw, &buf))
		return FALSE;
	if (pw.pw_gid == gid)
		return TRUE;
	for (int tries = 0; tries < 8; tries++) {
		int n = ngroups;

		groups = g_renew(gid_t, groups, (gsize)n);
		if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) >= 0) {
			for (int i = 0; i < n; i++) {
				if (groups[i] == gid)
					return TRUE;
			}
			return FALSE;
		}
		/* Too small: n now holds the number needed. */
		ngroups = MAX(n, ngroups * 2);
	}
	return FALSE;
}

gboolean
vc_ipc_peer_allowed(uid_t uid, gid_t gid, uid_t self, const char *group, GError **error)
{
	gid_t allowed_gid;

	if (uid == 0 || uid == self)
		return TRUE;
	if (group != NULL && vc_ipc_lookup_group(group, &allowed_gid) &&
	    (gid == allowed_gid || vc_ipc_uid_in_group(uid, allowed_gid)))
		return TRUE;
	g_set_error(error, VC_ERROR, VC_ERROR_POLICY, "peer uid %u not allowed", (guint)uid);
	return FALSE;
}

static void
vc_ipc_server_accept_one(VcIpcServer *server, GSocket *socket)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GCredentials) creds = NULL;
	g_autoptr(VcIpcConn) hold = NULL;
	VcIpcConn *conn;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	gboolean allowed = FALSE;

	g_socket_set_blocking(socket, FALSE);
	conn = g_new0(VcIpcConn, 1);
	conn->ref = 1;
	conn->server = server;
	conn->socket = g_object_ref(socket);
	conn->inbuf = g_byte_array_new();
	g_queue_init(&conn->outq);
	server->connections = g_list_prepend(server->connections, conn);
	server->n_connections++;
	hold = vc_ipc_conn_ref(conn);

	/* SO_PEERCRED: the kernel's word on who connected, not the peer's. */
	creds = g_socket_get_credentials(socket, &error);
	if (creds != NULL) {
		const struct ucred *ucred =
		    g_credentials_get_native(creds, G_CREDENTIALS_TYPE_LINUX_UCRED);
		if (ucred != NULL) {
			uid = ucred->uid;
			gid = ucred->gid;
			allowed =
			    vc_ipc_peer_allowed(uid, gid, server->self, server->group, &error);
		} else {
			g_set_error_literal(&error, VC_ERROR, VC_ERROR_POLICY,
					    "peer credentials unavailable");
		}
	} else {
		g_autoptr(GError) cred_error = g_steal_pointer(&error);
		g_set_error(&error, VC_ERROR, VC_ERROR_POLICY, "peer credentials unavailable: %s",
			    cred_error->message);
	}
	conn->uid = uid;
	if (!allowed) {
		g_message("refused control connection: %s", error->message);
		vc_ipc_conn_send_error(conn, NULL, error, TRUE);
	}
	vc_ipc_conn_update(conn);
}

/* One beyond the cap: told so in one line (best effort, never waiting for
 * the peer) and closed at once. */
static void
vc_ipc_server_refuse(VcIpcServer *server, GSocket *socket)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *line = NULL;
	gint64 now = g_get_monotonic_time();
	gsize len = 0;

	g_set_error(&error, VC_ERROR, VC_ERROR_UNAVAILABLE,
		    "the daemon has %u control connections open, the most it takes; try again",
		    server->n_connections);
	line = vc_ipc_proto_build_error(NULL, error, &len);
	g_socket_set_blocking(socket, FALSE);
	(void)g_socket_send(socket, line, len, NULL, NULL);
	g_socket_close(socket, NULL);
	server->n_refused++;
	server->refused_unreported++;
	if (server->cap_warned_at != 0 && now - server->cap_warned_at < VC_IPC_WARN_INTERVAL_US)
		return;
	g_warning("control socket %s: %u connections open, the most allowed "
		  "(control-max-connections): refused %" G_GUINT64_FORMAT
		  " connection(s) since the last warning",
		  server->path, server->n_connections, server->refused_unreported);
	server->cap_warned_at = now;
	server->refused_unreported = 0;
}

static gboolean vc_ipc_server_accept_cb(GSocket *listener, GIOCondition cond, gpointer user_data);

static void
vc_ipc_server_start_accepting(VcIpcServer *server)
{
	server->accept_source = g_socket_create_source(server->listener, G_IO_IN, NULL);
	g_source_set_callback(server->accept_source, G_SOURCE_FUNC(vc_ipc_server_accept_cb), server,
			      NULL);
	g_source_attach(server->accept_source, server->context);
}

static gboolean
vc_ipc_server_resume_accepting_cb(gpointer user_data)
{
	VcIpcServer *server = user_data;

	g_clear_pointer(&server->accept_source, g_source_unref);
	vc_ipc_server_start_accepting(server);
	return G_SOURCE_REMOVE;
}

static gboolean
vc_ipc_server_accept_cb(GSocket *listener, GIOCondition cond, gpointer user_data)
{
	VcIpcServer *server = user_data;

	for (;;) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GSocket) socket = g_socket_accept(listener, NULL, &error);

		if (socket != NULL) {
			if (server->max_connections > 0 &&
			    server->n_connections >= server->max_connections)
				vc_ipc_server_refuse(server, socket);
			else
				vc_ipc_server_accept_one(server, socket);
			continue;
		}
		if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
			break;
		/* Out of descriptors: the listener stays readable, so back off
		 * instead of spinning; the pending peers wait in the backlog. */
		g_warning("cannot accept on %s: %s; pausing for 1 s", server->path, error->message);
		g_source_destroy(server->accept_source);
		g_source_unref(server->accept_source);
		server->accept_source = g_timeout_source_new_seconds(1);
		g_source_set_callback(server->accept_source, vc_ipc_server_resume_accepting_cb,
				      server, NULL);
		g_source_attach(server->accept_source, server->context);
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

/* Removes a socket file left by a daemon that died, but never one somebody
 * listens on, nor anything that is not a socket. */
static gboolean
vc_ipc_server_clear_stale(const char *path, GError **error)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;
	int r;
	int errsv;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return TRUE;
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot inspect %s: %s", path,
			    g_strerror(errno));
		return FALSE;
	}
	if (!S_ISSOCK(st.st_mode)) {
		g_set_error(error, VC_ERROR, VC_ERROR_EXISTS,
			    "%s exists and is not a socket; remove it if it is not needed", path);
		return FALSE;
	}
	g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot create a socket: %s",
			    g_strerror(errno));
		return FALSE;
	}
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	errsv = errno;
	close(fd);
	if (r == 0 || errsv == EAGAIN) {
		g_set_error(error, VC_ERROR, VC_ERROR_EXISTS,
			    "another process already listens on %s; is virtcertd running?", path);
		return FALSE;
	}
	if (errsv != ECONNREFUSED) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot probe %s: %s", path,
			    g_strerror(errsv));
		return FALSE;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot remove stale socket %s: %s", path,
			    g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

static gboolean
vc_ipc_server_listen(VcIpcServer *server, GError **error)
{
	g_autoptr(GSocketAddress) addr = NULL;
	g_autoptr(GError) local_error = NULL;
	struct stat st;
	gid_t gid;

	server->listener = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
					G_SOCKET_PROTOCOL_DEFAULT, &local_error);
	if (server->listener == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot create a socket: %s",
			    local_error->message);
		return FALSE;
	}
	/* Linux gives the socket file the mode of the socket inode (minus the
	 * umask) at bind(): set it first so there is no moment at which the
	 * file is more open than 0660. */
	(void)fchmod(g_socket_get_fd(server->listener), 0660);
	addr = g_unix_socket_address_new(server->path);
	if (!g_socket_bind(server->listener, addr, FALSE, &local_error)) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot bind %s: %s", server->path,
			    local_error->message);
		return FALSE;
	}
	if (chmod(server->path, 0660) < 0 || stat(server->path, &st) < 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot set the mode of %s: %s",
			    server->path, g_strerror(errno));
		(void)unlink(server->path);
		return FALSE;
	}
	server->dev = st.st_dev;
	server->ino = st.st_ino;
	if (server->group != NULL && vc_ipc_lookup_group(server->group, &gid) &&
	    chown(server->path, (uid_t)-1, gid) < 0)
		g_warning("cannot give %s to group %s: %s; only root can use it", server->path,
			  server->group, g_strerror(errno));
	g_socket_set_listen_backlog(server->listener, 64);
	if (!g_socket_listen(server->listener, &local_error)) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot listen on %s: %s", server->path,
			    local_error->message);
		(void)unlink(server->path);
		return FALSE;
	}
	g_socket_set_blocking(server->listener, FALSE);
	return TRUE;
}

VcIpcServer *
vc_ipc_server_new(const char *socket_path, const char *allowed_group_name, GError **error)
{
	g_autoptr(VcIpcServer) server = NULL;
	g_autofree char *dir = NULL;
	struct sockaddr_un sun;

	g_return_val_if_fail(socket_path != NULL, NULL);

	if (strlen(socket_path) >= sizeof(sun.sun_path)) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "socket path %s is too long",
			    socket_path);
		return NULL;
	}
	dir = g_path_get_dirname(socket_path);
	if (!g_file_test(dir, G_FILE_TEST_IS_DIR) && g_mkdir_with_parents(dir, 0750) < 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot create %s: %s", dir,
			    g_strerror(errno));
		return NULL;
	}
	if (!vc_ipc_server_clear_stale(socket_path, error))
		return NULL;

	server = g_new0(VcIpcServer, 1);
	server->context = g_main_context_ref_thread_default();
	server->path = g_strdup(socket_path);
	server->group = g_strdup(allowed_group_name);
	server->self = geteuid();
	server->max_queue = VC_IPC_DEFAULT_MAX_QUEUE;
	server->methods = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	if (!vc_ipc_server_listen(server, error))
		return NULL;
	vc_ipc_server_start_accepting(server);
	return g_steal_pointer(&server);
}

void
vc_ipc_server_free(VcIpcServer *server)
{
	struct stat st;

	if (server == NULL)
		return;
	while (server->connections != NULL)
		vc_ipc_conn_close(server->connections->data);
	if (server->accept_source != NULL) {
		g_source_destroy(server->accept_source);
		g_source_unref(server->accept_source);
	}
	if (server->listener != NULL) {
		g_socket_close(server->listener, NULL);
		/* Only our own socket: a successor may already have replaced it. */
		if (server->ino != 0 && stat(server->path, &st) == 0 && st.st_dev == server->dev &&
		    st.st_ino == server->ino)
			(void)unlink(server->path);
		g_object_unref(server->listener);
	}
	g_clear_pointer(&server->methods, g_hash_table_unref);
	g_clear_pointer(&server->context, g_main_context_unref);
	g_free(server->path);
	g_free(server->group);
	g_free(server);
}

void
vc_ipc_server_add_method(VcIpcServer *server, const char *method, VcIpcHandler handler,
			 gpointer user_data)
{
	VcIpcMethod *entry;

	g_return_if_fail(server != NULL);
	g_return_if_fail(method != NULL && handler != NULL);
	g_return_if_fail(!g_str_equal(method, VC_IPC_METHOD_WATCH));

	entry = g_new0(VcIpcMethod, 1);
	entry->handler = handler;
	entry->user_data = user_data;
	g_hash_table_replace(server->methods, g_strdup(method), entry);
}

void
vc_ipc_server_broadcast(VcIpcServer *server, JsonNode *event)
{
	g_autoptr(GBytes) bytes = NULL;
	GList *watchers = NULL;
	gsize len = 0;
	char *text;

	g_return_if_fail(server != NULL);
	g_return_if_fail(event != NULL);

	for (GList *l = server->connections; l != NULL; l = l->next) {
		VcIpcConn *conn = l->data;
		if (conn->watcher && !conn->closed)
			watchers = g_list_prepend(watchers, vc_ipc_conn_ref(conn));
	}
	if (watchers == NULL)
		return;
	text = vc_ipc_proto_build_event(event, &len);
	bytes = g_bytes_new_take(text, len);
	/* Sending may drop a watcher, which edits server->connections. */
	for (GList *l = watchers; l != NULL; l = l->next) {
		VcIpcConn *conn = l->data;
		vc_ipc_conn_send(conn, bytes, TRUE);
		vc_ipc_conn_update(conn);
	}
	g_list_free_full(watchers, (GDestroyNotify)vc_ipc_conn_unref);
}

void
vc_ipc_server_set_max_queue(VcIpcServer *server, gsize max_bytes)
{
	g_return_if_fail(server != NULL);
	server->max_queue = max_bytes;
}

void
vc_ipc_server_set_limits(VcIpcServer *server, guint max_connections, guint request_timeout_ms)
{
	g_return_if_fail(server != NULL);
	server->max_connections = max_connections;
	server->request_timeout_ms = request_timeout_ms;
	for (GList *l = server->connections; l != NULL; l = l->next)
		vc_ipc_conn_update(l->data);
}

guint
vc_ipc_server_get_n_connections(VcIpcServer *server)
{
	g_return_val_if_fail(server != NULL, 0);
	return server->n_connections;
}

guint64
vc_ipc_server_get_n_refused(VcIpcServer *server)
{
	g_return_val_if_fail(server != NULL, 0);
	return server->n_refused;
}

guint64
vc_ipc_server_get_n_timed_out(VcIpcServer *server)
{
	g_return_val_if_fail(server != NULL, 0);
	return server->n_timed_out;
}

guint
vc_ipc_server_get_n_watchers(VcIpcServer *server)
{
	guint n = 0;

	g_return_val_if_fail(server != NULL, 0);
	for (GList *l = server->connections; l != NULL; l = l->next) {
		VcIpcConn *conn = l->data;
		if (conn->watcher)
			n++;
	}
	return n;
}

const char *
vc_ipc_request_get_method(VcIpcRequest *request)
{
	g_return_val_if_fail(request != NULL, NULL);
	return request->method;
}

JsonObject *
vc_ipc_request_get_params(VcIpcRequest *request)
{
	g_return_val_if_fail(request != NULL, NULL);
	return request->params;
}

uid_t
vc_ipc_request_get_peer_uid(VcIpcRequest *request)
{
	g_return_val_if_fail(request != NULL, (uid_t)-1);
	return request->uid;
}

/* Sends the answer of @request, frees @request, and lets the connection go
 * on with its next line. Runs in the server's context. */
static gboolean
vc_ipc_request_finish_cb(gpointer user_data)
{
	VcIpcRequest *request = user_data;
	VcIpcConn *conn = request->conn;

	conn->busy = FALSE;
	if (conn->closed) {
		g_free(request->text); /* the client went away: nobody to tell */
	} else {
		vc_ipc_conn_send_text(conn, request->text, request->text_len);
		if (!conn->in_dispatch) {
			vc_ipc_conn_update(conn);
			vc_ipc_conn_schedule_resume(conn);
		}
	}
	json_node_unref(request->root);
	g_main_context_unref(request->context);
	vc_ipc_conn_unref(conn);
	g_free(request);
	return G_SOURCE_REMOVE;
}

/* Answers may come from a worker thread: the connection is only ever
 * touched by the thread that owns the server's context (invoke runs the
 * callback at once when the caller owns it or can acquire it). */
static void
vc_ipc_request_finish(VcIpcRequest *request, char *text, gsize len)
{
	request->text = text;
	request->text_len = len;
	g_main_context_invoke(request->context, vc_ipc_request_finish_cb, request);
}

void
vc_ipc_request_reply(VcIpcRequest *request, JsonNode *result)
{
	gsize len = 0;
	char *text;

	g_return_if_fail(request != NULL);
	text = vc_ipc_proto_build_reply(request->id, result, &len);
	vc_ipc_request_finish(request, text, len);
}

void
vc_ipc_request_reply_error(VcIpcRequest *request, const GError *error)
{
	gsize len = 0;
	char *text;

	g_return_if_fail(request != NULL);
	text = vc_ipc_proto_build_error(&request->id, error, &len);
	vc_ipc_request_finish(request, text, len);
}
