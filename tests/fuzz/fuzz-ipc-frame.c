/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The control socket takes bytes from any local user of the allowed group:
 * hostile input for the server's frame reader (line splitting, the line
 * cap, '\r', a watcher's input, the one-request-at-a-time pacing), the line
 * parser (UTF-8, NUL, nesting depth, JSON) and the request checks (id,
 * method, params). The input is written by a real client to a real
 * VcIpcServer on a Unix socket, then the client shuts down its sending side
 * and reads every answer until the server closes; each answer must be one
 * well-formed reply line. The same lines are also parsed as replies, as the
 * client (virtcert, virtcert-hook) parses what comes back.
 *
 * Methods registered: "echo" (replies its params at once), "later" (replies
 * from the main loop, after other input may have arrived), "fail" (an error
 * reply); any other is an unknown method, "watch" makes a watcher. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <sys/socket.h>

#include "vc-error.h"
#include "vc-ipc-server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* input beyond two line caps adds nothing but time */
#define FUZZ_MAX_INPUT (2 * VC_IPC_MAX_REQUEST_LINE + 1024)
/* a connection that is not finished by then is a hang: a finding */
#define FUZZ_DEADLINE_US (10 * G_USEC_PER_SEC)

static VcIpcServer *server;
static char *socket_path;

static void
method_echo(VcIpcRequest *request, gpointer user_data)
{
	g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);

	json_node_set_object(node, vc_ipc_request_get_params(request));
	vc_ipc_request_reply(request, node);
}

static gboolean
later_cb(gpointer data)
{
	vc_ipc_request_reply(data, NULL);
	return G_SOURCE_REMOVE;
}

static void
method_later(VcIpcRequest *request, gpointer user_data)
{
	g_idle_add(later_cb, request);
}

static void
method_fail(VcIpcRequest *request, gpointer user_data)
{
	g_autoptr(GError) error = g_error_new(VC_ERROR, VC_ERROR_NOT_FOUND, "no VM \"%s\"",
					      json_object_get_string_member_with_default(
						  vc_ipc_request_get_params(request), "vm", ""));
	vc_ipc_request_reply_error(request, error);
}

/* the server removes its socket; the directory goes too */
static void
fuzz_teardown(void)
{
	g_autofree char *dir = g_path_get_dirname(socket_path);

	g_clear_pointer(&server, vc_ipc_server_free);
	g_rmdir(dir);
}

static void
fuzz_setup(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_dir_make_tmp("vc-fuzz-ipc-XXXXXX", &error);

	g_assert_no_error(error);
	socket_path = g_build_filename(dir, "control", NULL);
	server = vc_ipc_server_new(socket_path, NULL, &error);
	g_assert_no_error(error);
	vc_ipc_server_add_method(server, "echo", method_echo, NULL);
	vc_ipc_server_add_method(server, "later", method_later, NULL);
	vc_ipc_server_add_method(server, "fail", method_fail, NULL);
	atexit(fuzz_teardown);
}

static gboolean
readable_cb(GSocket *socket, GIOCondition cond, gpointer data)
{
	return G_SOURCE_CONTINUE; /* only wakes the loop */
}

/* Every line the server wrote is a reply (or, for a watcher, an event):
 * what a client can parse. */
static void
check_output(GByteArray *out)
{
	const char *p = (const char *)out->data;
	const char *end = p != NULL ? p + out->len : NULL;

	while (p < end) {
		const char *nl = memchr(p, '\n', (gsize)(end - p));
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonNode) line = NULL;
		JsonObject *o;

		/* the server's last line is complete too */
		g_assert(nl != NULL);
		line = vc_ipc_proto_parse_line(p, (gsize)(nl - p), &error);
		g_assert_no_error(error);
		o = json_node_get_object(line);
		g_assert(json_object_has_member(o, "ok") || json_object_has_member(o, "event"));
		p = nl + 1;
	}
}

/* The client's side: each input line parsed as a reply. */
static void
parse_as_replies(const char *data, gsize size)
{
	const char *p = data;
	const char *end = data != NULL ? data + size : NULL;

	while (p < end) {
		const char *nl = memchr(p, '\n', (gsize)(end - p));
		gsize len = nl != NULL ? (gsize)(nl - p) : (gsize)(end - p);
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonNode) root = vc_ipc_proto_parse_line(p, len, &error);

		if (root != NULL) {
			g_autoptr(JsonNode) result =
			    vc_ipc_proto_parse_reply(json_node_get_object(root), 1, &error);
			gint64 id = 0;
			gboolean has_id = FALSE;
			const char *method = NULL;
			JsonObject *params = NULL;
			g_autoptr(GError) req_error = NULL;

			g_assert(result != NULL || error != NULL);
			if (vc_ipc_proto_parse_request(json_node_get_object(root), &id, &has_id,
						       &method, &params, &req_error))
				g_assert(method != NULL && params != NULL);
		}
		p += len + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocket) client = NULL;
	g_autoptr(GSocketAddress) address = NULL;
	g_autoptr(GByteArray) out = g_byte_array_new();
	g_autoptr(GSource) source = NULL;
	gsize sent = 0;
	gboolean shut = FALSE;
	gint64 deadline;

	if (server == NULL)
		fuzz_setup();
	if (size > FUZZ_MAX_INPUT)
		return 0;
	parse_as_replies((const char *)data, size);

	client = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
			      &error);
	g_assert_no_error(error);
	address = g_unix_socket_address_new(socket_path);
	g_assert(g_socket_connect(client, address, NULL, &error));
	g_socket_set_blocking(client, FALSE);
	source = g_socket_create_source(client, G_IO_IN | G_IO_OUT | G_IO_HUP, NULL);
	g_source_set_callback(source, (GSourceFunc)(void (*)(void))readable_cb, NULL, NULL);
	g_source_attach(source, NULL);

	deadline = g_get_monotonic_time() + FUZZ_DEADLINE_US;
	for (;;) {
		static guint8 buf[16384];
		gssize n;

		if (sent < size) {
			g_autoptr(GError) send_error = NULL;
			n = g_socket_send(client, (const char *)data + sent, size - sent, NULL,
					  &send_error);
			if (n > 0)
				sent += (gsize)n;
			else if (!g_error_matches(send_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
				sent = size; /* the server closed: nothing more to say */
		}
		if (sent == size && !shut) {
			/* like a client that sent its requests and waits */
			g_assert(shutdown(g_socket_get_fd(client), SHUT_WR) == 0 ||
				 errno == ENOTCONN);
			shut = TRUE;
			g_source_destroy(source);
			g_source_unref(source);
			source = g_socket_create_source(client, G_IO_IN | G_IO_HUP, NULL);
			g_source_set_callback(source, (GSourceFunc)(void (*)(void))readable_cb,
					      NULL, NULL);
			g_source_attach(source, NULL);
		}
		{
			g_autoptr(GError) recv_error = NULL;
			n = g_socket_receive(client, (char *)buf, sizeof(buf), NULL, &recv_error);
			if (n == 0 || (n < 0 && !g_error_matches(recv_error, G_IO_ERROR,
								 G_IO_ERROR_WOULD_BLOCK)))
				break;
			if (n > 0) {
				g_byte_array_append(out, buf, (guint)n);
				continue;
			}
		}
		if (g_get_monotonic_time() > deadline)
			g_error("fuzz-ipc-frame: the server neither answered nor closed within "
				"%d s",
				(int)(FUZZ_DEADLINE_US / G_USEC_PER_SEC));
		g_main_context_iteration(NULL, TRUE);
	}
	g_source_destroy(source);
	/* let the server finish closing its side */
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_socket_close(client, NULL);
	check_output(out);
	g_assert(vc_ipc_server_get_n_connections(server) == 0);
	return 0;
}
