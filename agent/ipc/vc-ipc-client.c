/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-ipc-client.h"

#include <string.h>
#include <sys/un.h>

#include <gio/gunixsocketaddress.h>

#include "vc-error.h"

/* How long vc_ipc_client_watch() waits for the daemon to accept the watch. */
#define VC_IPC_WATCH_SETUP_MS 5000
/* Bytes read per receive call. */
#define VC_IPC_CLIENT_READ_CHUNK 65536

typedef struct {
	GSocket *socket;
	const char *path;
	gint64 deadline; /* g_get_monotonic_time() limit, 0 for none */
	guint timeout_ms;
	GByteArray *inbuf;
} VcIpcClientConn;

static void
vc_ipc_client_conn_clear(VcIpcClientConn *conn)
{
	if (conn->socket != NULL)
		g_socket_close(conn->socket, NULL);
	g_clear_object(&conn->socket);
	g_clear_pointer(&conn->inbuf, g_byte_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(VcIpcClientConn, vc_ipc_client_conn_clear)

/* Waits for @cond until the connection's deadline; a timeout becomes the
 * VC_ERROR_UNAVAILABLE the hook turns into a refusal (fail closed). */
static gboolean
vc_ipc_client_wait(VcIpcClientConn *conn, GIOCondition cond, GCancellable *cancellable,
		   GError **error)
{
	g_autoptr(GError) local_error = NULL;
	gboolean ok;

	if (conn->deadline == 0) {
		ok = g_socket_condition_wait(conn->socket, cond, cancellable, &local_error);
	} else {
		gint64 remaining = conn->deadline - g_get_monotonic_time();
		if (remaining <= 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE,
				    "virtcertd at %s: no answer within %u ms", conn->path,
				    conn->timeout_ms);
			return FALSE;
		}
		ok = g_socket_condition_timed_wait(conn->socket, cond, remaining, cancellable,
						   &local_error);
	}
	if (ok)
		return TRUE;
	if (g_error_matches(local_error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
		g_set_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE,
			    "virtcertd at %s: no answer within %u ms", conn->path,
			    conn->timeout_ms);
		return FALSE;
	}
	g_propagate_error(error, g_steal_pointer(&local_error));
	return FALSE;
}

static gboolean
vc_ipc_client_connect(VcIpcClientConn *conn, const char *path, guint timeout_ms,
		      GCancellable *cancellable, GError **error)
{
	g_autoptr(GSocketAddress) addr = NULL;
	g_autoptr(GError) local_error = NULL;
	struct sockaddr_un sun;

	conn->path = path;
	conn->timeout_ms = timeout_ms;
	conn->deadline = timeout_ms > 0 ? g_get_monotonic_time() + (gint64)timeout_ms * 1000 : 0;
	conn->inbuf = g_byte_array_new();

	/* GUnixSocketAddress would silently truncate a long path. */
	if (strlen(path) >= sizeof(sun.sun_path)) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "socket path %s is too long", path);
		return FALSE;
	}
	conn->socket = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
				    G_SOCKET_PROTOCOL_DEFAULT, &local_error);
	if (conn->socket == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot create a socket: %s",
			    local_error->message);
		return FALSE;
	}
	g_socket_set_blocking(conn->socket, FALSE);
	addr = g_unix_socket_address_new(path);

	for (;;) {
		g_clear_error(&local_error);
		if (g_socket_connect(conn->socket, addr, cancellable, &local_error))
			return TRUE;
		if (g_error_matches(local_error, G_IO_ERROR, G_IO_ERROR_PENDING)) {
			g_clear_error(&local_error);
			if (!vc_ipc_client_wait(conn, G_IO_OUT, cancellable, error))
				return FALSE;
			if (g_socket_check_connect_result(conn->socket, &local_error))
				return TRUE;
			break;
		}
		/* A Unix socket whose listen backlog is full answers EAGAIN
		 * rather than EINPROGRESS: retry until the deadline. */
		if (g_error_matches(local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK) &&
		    (conn->deadline == 0 || g_get_monotonic_time() < conn->deadline)) {
			g_usleep(5000);
			continue;
		}
		break;
	}
	if (g_error_matches(local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		g_propagate_error(error, g_steal_pointer(&local_error));
		return FALSE;
	}
	if (g_error_matches(local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
		g_set_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE,
			    "virtcertd at %s: no answer within %u ms", path, timeout_ms);
		return FALSE;
	}
	g_set_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE,
		    "cannot connect to virtcertd at %s: %s%s", path, local_error->message,
		    g_error_matches(local_error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED)
			? " (is the user in the daemon's group?)"
			: "");
	return FALSE;
}

static gboolean
vc_ipc_client_send_all(VcIpcClientConn *conn, const char *buf, gsize len, GCancellable *cancellable,
		       GError **error)
{
	while (len > 0) {
		g_autoptr(GError) local_error = NULL;
		gssize n = g_socket_send(conn->socket, buf, len, cancellable, &local_error);

		if (n > 0) {
			buf += n;
			len -= (gsize)n;
			continue;
		}
		if (g_error_matches(local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
			if (!vc_ipc_client_wait(conn, G_IO_OUT, cancellable, error))
				return FALSE;
			continue;
		}
		if (g_error_matches(local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
			g_propagate_error(error, g_steal_pointer(&local_error));
			return FALSE;
		}
		g_set_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE,
			    "cannot send to virtcertd at %s: %s", conn->path,
			    local_error != NULL ? local_error->message : "short write");
		return FALSE;
	}
	return TRUE;
}

/* Reads one line of at most @max bytes (without '\n'). Returns NULL with
 * @error set on EOF, timeout, cancel or an overlong line. */
static char *
vc_ipc_client_read_line(VcIpcClientConn *conn, gsize max, gsize *ret_len, GCancellable *cancellable,
			GError **error)
{
	gsize scanned = 0;

	for (;;) {
		g_autoptr(GError) local_error = NULL;
		guint8 *nl = conn->inbuf->len > scanned ? memchr(conn->inbuf->data + scanned, '\n',
								 conn->inbuf->len - scanned)
							: NULL;
		gssize n;

		if (nl != NULL) {
			gsize len = (gsize)(nl - conn->inbuf->data);
			char *line;

			if (len > max)
				break;
			line = g_strndup((const char *)conn->inbuf->data, len);
			g_byte_array_remove_range(conn->inbuf, 0, (guint)len + 1);
			*ret_len = len;
			return line;
		}
		scanned = conn->inbuf->len;
		if (conn->inbuf->len > max)
			break;

		{
			guint old = conn->inbuf->len;

			/* Receive straight into the buffer's tail. */
			g_byte_array_set_size(conn->inbuf, old + VC_IPC_CLIENT_READ_CHUNK);
			n = g_socket_receive(conn->socket, (gchar *)conn->inbuf->data + old,
					     VC_IPC_CLIENT_READ_CHUNK, cancellable, &local_error);
			g_byte_array_set_size(conn->inbuf, old + (n > 0 ? (guint)n : 0));
		}
		if (n > 0)
			continue;
		if (n == 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE,
				    "virtcertd at %s closed the connection", conn->path);
			return NULL;
		}
		if (g_error_matches(local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
			if (!vc_ipc_client_wait(conn, G_IO_IN, cancellable, error))
				return NULL;
			continue;
		}
		if (g_error_matches(local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
			g_propagate_error(error, g_steal_pointer(&local_error));
			return NULL;
		}
		g_set_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE,
			    "cannot read from virtcertd at %s: %s", conn->path,
			    local_error->message);
		return NULL;
	}
	g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
		    "line from virtcertd at %s is longer than %" G_GSIZE_FORMAT " bytes",
		    conn->path, max);
	return NULL;
}

/* Reads a line and parses it as a JSON object. */
static JsonNode *
vc_ipc_client_read_object(VcIpcClientConn *conn, GCancellable *cancellable, GError **error)
{
	g_autofree char *line = NULL;
	gsize len = 0;
	JsonNode *node;

	line = vc_ipc_client_read_line(conn, VC_IPC_MAX_REPLY_LINE, &len, cancellable, error);
	if (line == NULL)
		return NULL;
	node = vc_ipc_proto_parse_line(line, len, error);
	if (node == NULL)
		g_prefix_error(error, "reply of virtcertd at %s: ", conn->path);
	return node;
}

/* Sends a request and returns the result of its reply. */
static JsonNode *
vc_ipc_client_exchange(VcIpcClientConn *conn, gint64 id, const char *method, JsonObject *params,
		       GCancellable *cancellable, GError **error)
{
	g_autoptr(GError) send_error = NULL;
	g_autoptr(JsonNode) reply = NULL;
	g_autofree char *line = NULL;
	gsize len = 0;

	line = vc_ipc_proto_build_request(id, method, params, &len);
	if (!vc_ipc_client_send_all(conn, line, len, cancellable, &send_error)) {
		if (g_error_matches(send_error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
		    g_error_matches(send_error, VC_ERROR, VC_ERROR_UNAVAILABLE) == FALSE) {
			g_propagate_error(error, g_steal_pointer(&send_error));
			return NULL;
		}
		/* The daemon may have refused us with an error line and closed
		 * before we finished sending: that line is the better answer. */
		reply = vc_ipc_client_read_object(conn, cancellable, NULL);
		if (reply == NULL) {
			g_propagate_error(error, g_steal_pointer(&send_error));
			return NULL;
		}
	} else {
		reply = vc_ipc_client_read_object(conn, cancellable, error);
		if (reply == NULL)
			return NULL;
	}
	return vc_ipc_proto_parse_reply(json_node_get_object(reply), id, error);
}

JsonNode *
vc_ipc_client_call(const char *socket_path, const char *method, JsonObject *params,
		   guint timeout_ms, GError **error)
{
	g_auto(VcIpcClientConn) conn = {0};

	g_return_val_if_fail(socket_path != NULL, NULL);
	g_return_val_if_fail(method != NULL, NULL);

	if (!vc_ipc_client_connect(&conn, socket_path, timeout_ms, NULL, error))
		return NULL;
	return vc_ipc_client_exchange(&conn, 1, method, params, NULL, error);
}

/* The watch loop; any end but @func's wish is an error, cancel included. */
static gboolean
vc_ipc_client_watch_run(VcIpcClientConn *conn, JsonObject *params, VcIpcWatchFunc func,
			gpointer user_data, GCancellable *cancellable, GError **error)
{
	g_autoptr(JsonNode) accepted = NULL;

	accepted = vc_ipc_client_exchange(conn, 1, VC_IPC_METHOD_WATCH, params, cancellable, error);
	if (accepted == NULL)
		return FALSE;

	/* From here on the stream lasts as long as the daemon and we want. */
	conn->deadline = 0;
	for (;;) {
		g_autoptr(JsonNode) node = vc_ipc_client_read_object(conn, cancellable, error);
		g_autoptr(JsonNode) ignored = NULL;
		JsonObject *obj;
		JsonNode *event;

		if (node == NULL)
			return FALSE;
		obj = json_node_get_object(node);
		event = json_object_get_member(obj, "event");
		if (event != NULL) {
			if (!func(event, user_data))
				return TRUE;
			continue;
		}
		/* Not an event: the daemon ends the stream with an error line. */
		ignored = vc_ipc_proto_parse_reply(obj, 1, error);
		if (ignored != NULL)
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "virtcertd at %s sent a line that is not an event", conn->path);
		return FALSE;
	}
}

gboolean
vc_ipc_client_watch(const char *socket_path, JsonObject *params, VcIpcWatchFunc func,
		    gpointer user_data, GCancellable *cancellable, GError **error)
{
	g_auto(VcIpcClientConn) conn = {0};
	g_autoptr(GError) local_error = NULL;

	g_return_val_if_fail(socket_path != NULL, FALSE);
	g_return_val_if_fail(func != NULL, FALSE);

	if (vc_ipc_client_connect(&conn, socket_path, VC_IPC_WATCH_SETUP_MS, cancellable,
				  &local_error) &&
	    vc_ipc_client_watch_run(&conn, params, func, user_data, cancellable, &local_error))
		return TRUE;
	if (g_error_matches(local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return TRUE;
	g_propagate_error(error, g_steal_pointer(&local_error));
	return FALSE;
}
