/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <signal.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>

#include "vc-error.h"
#include "vc-ipc-client.h"
#include "vc-ipc-proto.h"
#include "vc-ipc-server.h"

/* The server runs on the default main context of the test's main thread;
 * clients run in threads while the main thread iterates that context. */

typedef struct {
	char *tmpdir;
	char *path;
	VcIpcServer *server;
	GPtrArray *never; /* requests of "never", answered at teardown */
} Fixture;

static gboolean
reply_later_cb(gpointer user_data)
{
	VcIpcRequest *request = user_data;
	g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);

	json_node_set_object(node, vc_ipc_request_get_params(request));
	vc_ipc_request_reply(request, node);
	return G_SOURCE_REMOVE;
}

static void
handle_echo(VcIpcRequest *request, gpointer user_data)
{
	g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);

	json_node_set_object(node, vc_ipc_request_get_params(request));
	vc_ipc_request_reply(request, node);
}

static void
handle_later(VcIpcRequest *request, gpointer user_data)
{
	g_timeout_add(30, reply_later_cb, request);
}

static void
handle_fail(VcIpcRequest *request, gpointer user_data)
{
	g_autoptr(GError) error = g_error_new_literal(VC_ERROR, VC_ERROR_NOT_FOUND, "no such VM");

	vc_ipc_request_reply_error(request, error);
}

static void
handle_whoami(VcIpcRequest *request, gpointer user_data)
{
	g_autoptr(JsonNode) node = json_node_new(JSON_NODE_VALUE);

	json_node_set_int(node, vc_ipc_request_get_peer_uid(request));
	vc_ipc_request_reply(request, node);
}

static void
handle_never(VcIpcRequest *request, gpointer user_data)
{
	Fixture *fx = user_data;

	g_ptr_array_add(fx->never, request);
}

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	fx->tmpdir = g_dir_make_tmp("vc-ipc-XXXXXX", &error);
	g_assert_no_error(error);
	/* A parent directory that does not exist yet: the server creates it. */
	fx->path = g_build_filename(fx->tmpdir, "run", "control.sock", NULL);
	fx->never = g_ptr_array_new();
	fx->server = vc_ipc_server_new(fx->path, "vc-test-no-such-group", &error);
	g_assert_no_error(error);
	g_assert_nonnull(fx->server);
	vc_ipc_server_add_method(fx->server, "echo", handle_echo, fx);
	vc_ipc_server_add_method(fx->server, "later", handle_later, fx);
	vc_ipc_server_add_method(fx->server, "fail", handle_fail, fx);
	vc_ipc_server_add_method(fx->server, "whoami", handle_whoami, fx);
	vc_ipc_server_add_method(fx->server, "never", handle_never, fx);
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
	g_autofree char *rundir = g_path_get_dirname(fx->path);

	/* Answer what was never answered: the clients are gone, so these
	 * replies must be dropped without harm. */
	for (guint i = 0; i < fx->never->len; i++)
		vc_ipc_request_reply(g_ptr_array_index(fx->never, i), NULL);
	g_ptr_array_unref(fx->never);
	g_clear_pointer(&fx->server, vc_ipc_server_free);
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_assert_false(g_file_test(fx->path, G_FILE_TEST_EXISTS));
	g_assert_cmpint(g_rmdir(rundir), ==, 0);
	g_assert_cmpint(g_rmdir(fx->tmpdir), ==, 0);
	g_free(fx->path);
	g_free(fx->tmpdir);
}

/* Thread helpers */

typedef struct {
	GThreadFunc func;
	gpointer data;
	gint done;
} Job;

static gpointer
job_run(gpointer user_data)
{
	Job *job = user_data;
	gpointer result = job->func(job->data);

	g_atomic_int_set(&job->done, 1);
	g_main_context_wakeup(NULL);
	return result;
}

static GThread *
job_start(Job *job, GThreadFunc func, gpointer data)
{
	job->func = func;
	job->data = data;
	job->done = 0;
	return g_thread_new("client", job_run, job);
}

static void
jobs_wait(Job *jobs, guint n)
{
	for (;;) {
		guint done = 0;
		for (guint i = 0; i < n; i++)
			done += (guint)g_atomic_int_get(&jobs[i].done);
		if (done == n)
			return;
		g_main_context_iteration(NULL, TRUE);
	}
}

/* Runs @func in a thread while the server's main loop runs here. */
static gpointer
run_client(GThreadFunc func, gpointer data)
{
	Job job;
	GThread *thread = job_start(&job, func, data);

	jobs_wait(&job, 1);
	return g_thread_join(thread);
}

/* Iterates the main context until @cond(@data) or 10 s passed. */
static gboolean
iterate_until(gboolean (*cond)(gpointer), gpointer data)
{
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	while (!cond(data)) {
		if (g_get_monotonic_time() > deadline)
			return FALSE;
		g_main_context_iteration(NULL, FALSE);
		g_usleep(1000);
	}
	return TRUE;
}

/* A raw, blocking client for what the real client never sends. */

typedef struct {
	GSocket *socket;
	GByteArray *buf;
} Raw;

static void
raw_connect(Raw *raw, const char *path)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);

	raw->socket = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
				   G_SOCKET_PROTOCOL_DEFAULT, &error);
	g_assert_no_error(error);
	g_socket_set_timeout(raw->socket, 10);
	g_socket_connect(raw->socket, addr, NULL, &error);
	g_assert_no_error(error);
	raw->buf = g_byte_array_new();
}

static void
raw_close(Raw *raw)
{
	g_clear_object(&raw->socket);
	g_clear_pointer(&raw->buf, g_byte_array_unref);
}

static void
raw_send(Raw *raw, const char *data, gsize len)
{
	while (len > 0) {
		g_autoptr(GError) error = NULL;
		gssize n = g_socket_send(raw->socket, data, len, NULL, &error);
		g_assert_no_error(error);
		data += n;
		len -= (gsize)n;
	}
}

/* Next line without its '\n', or NULL at EOF. */
static char *
raw_read_line(Raw *raw)
{
	for (;;) {
		g_autoptr(GError) error = NULL;
		char chunk[1024];
		guint8 *nl = raw->buf->len > 0 ? memchr(raw->buf->data, '\n', raw->buf->len) : NULL;
		gssize n;

		if (nl != NULL) {
			gsize len = (gsize)(nl - raw->buf->data);
			char *line = g_strndup((const char *)raw->buf->data, len);
			g_byte_array_remove_range(raw->buf, 0, (guint)len + 1);
			return line;
		}
		n = g_socket_receive(raw->socket, chunk, sizeof(chunk), NULL, &error);
		if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
			return NULL;
		g_assert_no_error(error);
		if (n == 0)
			return NULL;
		g_byte_array_append(raw->buf, (const guint8 *)chunk, (guint)n);
	}
}

static JsonObject *
raw_read_object(Raw *raw)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *line = raw_read_line(raw);
	g_autoptr(JsonNode) node = NULL;

	g_assert_nonnull(line);
	node = vc_ipc_proto_parse_line(line, strlen(line), &error);
	g_assert_no_error(error);
	return json_object_ref(json_node_get_object(node));
}

static void
assert_error_reply(JsonObject *reply, const char *code, const char *message_part)
{
	JsonObject *err;

	g_assert_false(json_object_get_boolean_member(reply, "ok"));
	err = json_object_get_object_member(reply, "error");
	g_assert_nonnull(err);
	g_assert_cmpstr(json_object_get_string_member(err, "code"), ==, code);
	g_assert_nonnull(strstr(json_object_get_string_member(err, "message"), message_part));
}

/* Tests */

typedef struct {
	const char *path;
	const char *method;
	JsonObject *params;
	guint timeout_ms;
	JsonNode *result;
	GError *error;
} Call;

static gpointer
call_thread(gpointer user_data)
{
	Call *call = user_data;

	call->result = vc_ipc_client_call(call->path, call->method, call->params, call->timeout_ms,
					  &call->error);
	return NULL;
}

static void
call_clear(Call *call)
{
	g_clear_pointer(&call->result, json_node_unref);
	g_clear_error(&call->error);
	g_clear_pointer(&call->params, json_object_unref);
}

static void
test_request_reply(Fixture *fx, gconstpointer data)
{
	Call call = {.path = fx->path, .method = "echo", .timeout_ms = 2000};
	JsonObject *result;

	call.params = json_object_new();
	json_object_set_string_member(call.params, "vm", "web-1");
	json_object_set_int_member(call.params, "n", 42);
	run_client(call_thread, &call);
	g_assert_no_error(call.error);
	g_assert_true(JSON_NODE_HOLDS_OBJECT(call.result));
	result = json_node_get_object(call.result);
	g_assert_cmpstr(json_object_get_string_member(result, "vm"), ==, "web-1");
	g_assert_cmpint(json_object_get_int_member(result, "n"), ==, 42);
	call_clear(&call);

	/* No params: the handler still gets an (empty) object. */
	run_client(call_thread, &call);
	g_assert_no_error(call.error);
	g_assert_cmpuint(json_object_get_size(json_node_get_object(call.result)), ==, 0);
	call_clear(&call);

	/* The handler's error comes back with its code and message. */
	call.method = "fail";
	run_client(call_thread, &call);
	g_assert_error(call.error, VC_ERROR, VC_ERROR_NOT_FOUND);
	g_assert_cmpstr(call.error->message, ==, "no such VM");
	g_assert_null(call.result);
	call_clear(&call);

	/* The peer is us: same euid is allowed and reported to handlers. */
	call.method = "whoami";
	run_client(call_thread, &call);
	g_assert_no_error(call.error);
	g_assert_cmpint(json_node_get_int(call.result), ==, (gint64)geteuid());
	call_clear(&call);
}

static void
test_async_reply(Fixture *fx, gconstpointer data)
{
	Call call = {.path = fx->path, .method = "later", .timeout_ms = 2000};

	call.params = json_object_new();
	json_object_set_string_member(call.params, "uuid", "6f1c");
	run_client(call_thread, &call);
	g_assert_no_error(call.error);
	g_assert_cmpstr(json_object_get_string_member(json_node_get_object(call.result), "uuid"),
			==, "6f1c");
	call_clear(&call);
}

static gpointer
pipeline_thread(gpointer user_data)
{
	Fixture *fx = user_data;
	Raw raw = {0};
	/* An async request first: the quick ones after it must wait their turn. */
	const char *lines = "{\"id\":1,\"method\":\"later\",\"params\":{\"k\":\"a\"}}\n"
			    "{\"id\":2,\"method\":\"echo\",\"params\":{\"k\":\"b\"}}\r\n"
			    "\n"
			    "{\"id\":3,\"method\":\"fail\"}\n"
			    "{\"id\":4,\"method\":\"echo\",\"params\":{\"k\":\"d\"}}\n";

	raw_connect(&raw, fx->path);
	raw_send(&raw, lines, strlen(lines));
	/* Half-close: the answers to what was sent must still arrive. */
	g_assert_true(g_socket_shutdown(raw.socket, FALSE, TRUE, NULL));
	for (gint64 id = 1; id <= 4; id++) {
		g_autoptr(JsonObject) reply = raw_read_object(&raw);

		g_assert_cmpint(json_object_get_int_member(reply, "id"), ==, id);
		if (id == 3) {
			assert_error_reply(reply, "not-found", "no such VM");
		} else {
			JsonObject *result = json_object_get_object_member(reply, "result");
			const char *want = id == 1 ? "a" : id == 2 ? "b" : "d";
			g_assert_true(json_object_get_boolean_member(reply, "ok"));
			g_assert_cmpstr(json_object_get_string_member(result, "k"), ==, want);
		}
	}
	g_assert_null(raw_read_line(&raw));
	raw_close(&raw);
	return NULL;
}

static void
test_many_requests(Fixture *fx, gconstpointer data)
{
	run_client(pipeline_thread, fx);
}

typedef struct {
	const char *path;
	guint index;
	gint failures;
} Worker;

static gpointer
worker_thread(gpointer user_data)
{
	Worker *w = user_data;

	for (guint i = 0; i < 20; i++) {
		g_autoptr(JsonObject) params = json_object_new();
		g_autoptr(GError) error = NULL;
		g_autoptr(JsonNode) result = NULL;

		json_object_set_int_member(params, "worker", w->index);
		json_object_set_int_member(params, "i", i);
		result = vc_ipc_client_call(w->path, i % 3 == 0 ? "later" : "echo", params, 5000,
					    &error);
		if (result == NULL ||
		    json_object_get_int_member(json_node_get_object(result), "worker") !=
			w->index ||
		    json_object_get_int_member(json_node_get_object(result), "i") != i)
			w->failures++;
	}
	return NULL;
}

static void
test_concurrent_clients(Fixture *fx, gconstpointer data)
{
	Worker workers[8];
	Job jobs[G_N_ELEMENTS(workers)];
	GThread *threads[G_N_ELEMENTS(workers)];

	for (guint i = 0; i < G_N_ELEMENTS(workers); i++) {
		workers[i] = (Worker){.path = fx->path, .index = i};
		threads[i] = job_start(&jobs[i], worker_thread, &workers[i]);
	}
	jobs_wait(jobs, G_N_ELEMENTS(jobs));
	for (guint i = 0; i < G_N_ELEMENTS(workers); i++) {
		g_thread_join(threads[i]);
		g_assert_cmpint(workers[i].failures, ==, 0);
	}
}

static gpointer
overlong_thread(gpointer user_data)
{
	Fixture *fx = user_data;
	Raw raw = {0};
	gsize len = VC_IPC_MAX_REQUEST_LINE + 100;
	g_autofree char *big = g_malloc(len);
	g_autoptr(JsonObject) reply = NULL;

	memset(big, 'a', len);
	raw_connect(&raw, fx->path);
	raw_send(&raw, big, len);
	reply = raw_read_object(&raw);
	g_assert_true(json_object_get_null_member(reply, "id"));
	assert_error_reply(reply, "invalid-data", "longer than 65536");
	/* A framing error ends the connection. */
	g_assert_null(raw_read_line(&raw));
	raw_close(&raw);
	return NULL;
}

static void
test_overlong_line(Fixture *fx, gconstpointer data)
{
	run_client(overlong_thread, fx);
	g_assert_cmpuint(vc_ipc_server_get_n_connections(fx->server), ==, 0);
}

typedef struct {
	Fixture *fx;
	const char *line;
	const char *message_part;
} BadFrame;

static gpointer
bad_frame_thread(gpointer user_data)
{
	BadFrame *bf = user_data;
	Raw raw = {0};
	g_autoptr(JsonObject) reply = NULL;

	raw_connect(&raw, bf->fx->path);
	raw_send(&raw, bf->line, strlen(bf->line));
	reply = raw_read_object(&raw);
	g_assert_true(json_object_get_null_member(reply, "id"));
	assert_error_reply(reply, "invalid-data", bf->message_part);
	g_assert_null(raw_read_line(&raw));
	raw_close(&raw);
	return NULL;
}

static void
test_invalid_json(Fixture *fx, gconstpointer data)
{
	g_autoptr(GString) deep = g_string_new("{\"id\":1,\"method\":\"echo\",\"params\":{\"a\":");
	BadFrame cases[] = {
	    {fx, "{\"id\":1,\"method\":\"echo\",\n", "invalid JSON"},
	    {fx, "not json at all\n", "invalid JSON"},
	    {fx, "[1,2,3]\n", "not a JSON object"},
	    {fx, "{\"id\":1,\"method\":\"echo\xff\"}\n", "UTF-8"},
	    {fx, NULL, "nested deeper"},
	};

	for (guint i = 0; i < 1000; i++)
		g_string_append(deep, "[");
	g_string_append(deep, "\n");
	cases[G_N_ELEMENTS(cases) - 1].line = deep->str;
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++)
		run_client(bad_frame_thread, &cases[i]);
	g_assert_cmpuint(vc_ipc_server_get_n_connections(fx->server), ==, 0);
}

static gpointer
wrong_types_thread(gpointer user_data)
{
	Fixture *fx = user_data;
	Raw raw = {0};
	const char *lines = "{\"id\":\"7\",\"method\":\"echo\"}\n"
			    "{\"id\":1.5,\"method\":\"echo\"}\n"
			    "{\"method\":\"echo\"}\n"
			    "{\"id\":2,\"method\":5}\n"
			    "{\"id\":3}\n"
			    "{\"id\":4,\"method\":\"echo\",\"params\":[1]}\n"
			    "{\"id\":5,\"method\":\"echo\",\"params\":null}\n"
			    "{\"id\":6,\"method\":\"no-such-method\"}\n"
			    "{\"id\":7,\"method\":\"echo\",\"params\":{\"still\":true}}\n";
	struct {
		gint64 id; /* -1: null id */
		const char *code;
		const char *part;
	} want[] = {
	    {-1, "invalid-data", "\"id\" is not an integer"},
	    {-1, "invalid-data", "\"id\" is not an integer"},
	    {-1, "invalid-data", "no \"id\""},
	    {2, "invalid-data", "\"method\" is not a string"},
	    {3, "invalid-data", "no \"method\""},
	    {4, "invalid-data", "\"params\" is not an object"},
	    {5, "invalid-data", "\"params\" is not an object"},
	    {6, "usage", "unknown method \"no-such-method\""},
	};

	raw_connect(&raw, fx->path);
	raw_send(&raw, lines, strlen(lines));
	for (guint i = 0; i < G_N_ELEMENTS(want); i++) {
		g_autoptr(JsonObject) reply = raw_read_object(&raw);

		if (want[i].id < 0)
			g_assert_true(json_object_get_null_member(reply, "id"));
		else
			g_assert_cmpint(json_object_get_int_member(reply, "id"), ==, want[i].id);
		assert_error_reply(reply, want[i].code, want[i].part);
	}
	/* Type errors are answered, not fatal: the connection still works. */
	{
		g_autoptr(JsonObject) reply = raw_read_object(&raw);
		g_assert_cmpint(json_object_get_int_member(reply, "id"), ==, 7);
		g_assert_true(json_object_get_boolean_member(reply, "ok"));
		g_assert_true(json_object_get_boolean_member(
		    json_object_get_object_member(reply, "result"), "still"));
	}
	raw_close(&raw);
	return NULL;
}

static void
test_wrong_types(Fixture *fx, gconstpointer data)
{
	run_client(wrong_types_thread, fx);
}

static void
test_unknown_method(Fixture *fx, gconstpointer data)
{
	Call call = {.path = fx->path, .method = "frobnicate", .timeout_ms = 2000};

	run_client(call_thread, &call);
	g_assert_error(call.error, VC_ERROR, VC_ERROR_USAGE);
	g_assert_nonnull(strstr(call.error->message, "frobnicate"));
	call_clear(&call);

	/* "watch" is the server's own; a handler cannot take it over. */
	g_test_expect_message("virtcert-ipc", G_LOG_LEVEL_CRITICAL, "*METHOD_WATCH*");
	vc_ipc_server_add_method(fx->server, VC_IPC_METHOD_WATCH, handle_echo, fx);
	g_test_assert_expected_messages();
}

static void
test_client_timeout(Fixture *fx, gconstpointer data)
{
	Call call = {.path = fx->path, .method = "never", .timeout_ms = 200};
	gint64 start = g_get_monotonic_time();
	gint64 elapsed;

	run_client(call_thread, &call);
	elapsed = g_get_monotonic_time() - start;
	g_assert_error(call.error, VC_ERROR, VC_ERROR_UNAVAILABLE);
	g_assert_nonnull(strstr(call.error->message, "no answer within 200 ms"));
	g_assert_nonnull(strstr(call.error->message, fx->path));
	g_assert_cmpint(elapsed, >=, 190 * 1000);
	g_assert_cmpint(elapsed, <, 2 * G_USEC_PER_SEC);
	call_clear(&call);
	g_assert_cmpuint(fx->never->len, ==, 1);

	/* Answering after the client left is dropped silently; the server goes on. */
	while (vc_ipc_server_get_n_connections(fx->server) > 0)
		g_main_context_iteration(NULL, TRUE);
	vc_ipc_request_reply(g_ptr_array_steal_index(fx->never, 0), NULL);
	call.method = "echo";
	call.timeout_ms = 2000;
	run_client(call_thread, &call);
	g_assert_no_error(call.error);
	call_clear(&call);
}

static void
test_unreachable(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) result = NULL;
	g_autofree char *missing = g_build_filename(fx->tmpdir, "missing.sock", NULL);
	g_autofree char *stale = g_build_filename(fx->tmpdir, "stale.sock", NULL);
	g_autoptr(GSocket) sock = NULL;
	g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(stale);

	/* No main loop needed: nothing can answer. */
	result = vc_ipc_client_call(missing, "echo", NULL, 1000, &error);
	g_assert_null(result);
	g_assert_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE);
	g_assert_nonnull(strstr(error->message, missing));
	g_clear_error(&error);

	/* A socket file nobody listens on (a daemon that died). */
	sock = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
			    &error);
	g_assert_no_error(error);
	g_assert_true(g_socket_bind(sock, addr, FALSE, &error));
	g_socket_close(sock, NULL);
	result = vc_ipc_client_call(stale, "echo", NULL, 1000, &error);
	g_assert_null(result);
	g_assert_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE);
	g_assert_nonnull(strstr(error->message, stale));
	g_assert_cmpint(g_unlink(stale), ==, 0);
}

typedef struct {
	const char *path;
	GCancellable *cancellable;
	guint stop_after; /* 0: never stop by itself */
	GPtrArray *events;
	gboolean ok;
	GError *error;
} Watch;

static gboolean
watch_collect(JsonNode *event, gpointer user_data)
{
	Watch *w = user_data;

	g_ptr_array_add(w->events, json_node_copy(event));
	return w->stop_after == 0 || w->events->len < w->stop_after;
}

static gpointer
watch_thread(gpointer user_data)
{
	Watch *w = user_data;

	w->ok = vc_ipc_client_watch(w->path, NULL, watch_collect, w, w->cancellable, &w->error);
	return NULL;
}

static gboolean
has_watchers(gpointer data)
{
	return vc_ipc_server_get_n_watchers(data) > 0;
}

static gboolean
no_watchers(gpointer data)
{
	return vc_ipc_server_get_n_watchers(data) == 0;
}

static void
broadcast_seq(VcIpcServer *server, gint64 seq, gsize padding)
{
	g_autoptr(JsonObject) obj = json_object_new();
	g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
	g_autofree char *pad = g_strnfill(padding, 'x');

	json_object_set_string_member(obj, "type", "state");
	json_object_set_int_member(obj, "seq", seq);
	json_object_set_string_member(obj, "pad", pad);
	json_node_set_object(node, obj);
	vc_ipc_server_broadcast(server, node);
}

static gint64
event_seq(Watch *w, guint i)
{
	return json_object_get_int_member(json_node_get_object(g_ptr_array_index(w->events, i)),
					  "seq");
}

static void
test_watch(Fixture *fx, gconstpointer data)
{
	Watch w = {.path = fx->path, .stop_after = 3};
	Job job;
	GThread *thread;

	w.events = g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);
	/* Without watchers a broadcast goes nowhere and costs nothing. */
	broadcast_seq(fx->server, 0, 0);
	thread = job_start(&job, watch_thread, &w);
	g_assert_true(iterate_until(has_watchers, fx->server));
	for (gint64 i = 1; i <= 3; i++)
		broadcast_seq(fx->server, i, 10);
	jobs_wait(&job, 1);
	g_thread_join(thread);
	g_assert_no_error(w.error);
	g_assert_true(w.ok);
	g_assert_cmpuint(w.events->len, ==, 3);
	for (guint i = 0; i < 3; i++)
		g_assert_cmpint(event_seq(&w, i), ==, i + 1);
	g_assert_true(iterate_until(no_watchers, fx->server));
	g_ptr_array_set_size(w.events, 0);

	/* Cancelled from outside: ends quietly. */
	w.stop_after = 0;
	w.cancellable = g_cancellable_new();
	thread = job_start(&job, watch_thread, &w);
	g_assert_true(iterate_until(has_watchers, fx->server));
	broadcast_seq(fx->server, 7, 0);
	g_cancellable_cancel(w.cancellable);
	jobs_wait(&job, 1);
	g_thread_join(thread);
	g_assert_no_error(w.error);
	g_assert_true(w.ok);
	g_clear_object(&w.cancellable);
	g_assert_true(iterate_until(no_watchers, fx->server));
	g_ptr_array_set_size(w.events, 0);

	/* The daemon going away ends the stream with an error. */
	thread = job_start(&job, watch_thread, &w);
	g_assert_true(iterate_until(has_watchers, fx->server));
	broadcast_seq(fx->server, 8, 0);
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_clear_pointer(&fx->server, vc_ipc_server_free);
	jobs_wait(&job, 1);
	g_thread_join(thread);
	g_assert_false(w.ok);
	g_assert_error(w.error, VC_ERROR, VC_ERROR_UNAVAILABLE);
	g_clear_error(&w.error);
	g_ptr_array_unref(w.events);
}

typedef struct {
	const char *path;
	gint ready;
	gint release;
	gsize bytes_after;
} Slow;

static gpointer
slow_thread(gpointer user_data)
{
	Slow *s = user_data;
	Raw raw = {0};
	const char *line = "{\"id\":1,\"method\":\"watch\"}\n";
	g_autoptr(JsonObject) reply = NULL;
	char *l;

	raw_connect(&raw, s->path);
	raw_send(&raw, line, strlen(line));
	reply = raw_read_object(&raw);
	g_assert_true(json_object_get_boolean_member(reply, "ok"));
	g_atomic_int_set(&s->ready, 1);
	/* Now read nothing until told: a stuck `virtcert watch | less`. */
	while (!g_atomic_int_get(&s->release))
		g_usleep(1000);
	/* The daemon dropped us: what was queued ends, then EOF. */
	while ((l = raw_read_line(&raw)) != NULL) {
		s->bytes_after += strlen(l) + 1;
		g_free(l);
	}
	raw_close(&raw);
	return NULL;
}

static gboolean
slow_ready(gpointer data)
{
	return g_atomic_int_get(&((Slow *)data)->ready) != 0;
}

static gboolean
watchers_at_most_one(gpointer data)
{
	return vc_ipc_server_get_n_watchers(data) <= 1;
}

static void
test_slow_watcher(Fixture *fx, gconstpointer data)
{
	Slow slow = {.path = fx->path};
	Watch fast = {.path = fx->path, .stop_after = 400};
	Job jobs[2];
	GThread *threads[2];
	gint64 start;
	gint64 elapsed;
	gint64 seq = 0;

	fast.events = g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);
	vc_ipc_server_set_max_queue(fx->server, 32 * 1024);
	threads[0] = job_start(&jobs[0], slow_thread, &slow);
	g_assert_true(iterate_until(slow_ready, &slow));
	threads[1] = job_start(&jobs[1], watch_thread, &fast);
	g_assert_true(iterate_until(has_watchers, fx->server));
	while (vc_ipc_server_get_n_watchers(fx->server) < 2)
		g_main_context_iteration(NULL, TRUE);

	/* 400 events of 1 KiB: far more than the socket buffer plus the queue
	 * bound of the watcher that does not read. */
	g_test_expect_message("virtcert-ipc", G_LOG_LEVEL_WARNING, "dropping*does not read*");
	start = g_get_monotonic_time();
	for (seq = 1; seq <= 400; seq++) {
		broadcast_seq(fx->server, seq, 1024);
		/* Give the fast reader its share of the loop, as a daemon would. */
		while (g_main_context_iteration(NULL, FALSE))
			;
		g_usleep(200);
	}
	elapsed = g_get_monotonic_time() - start;
	g_assert_true(iterate_until(watchers_at_most_one, fx->server));
	g_test_assert_expected_messages();
	/* Broadcasting never waited on the stuck reader. */
	g_assert_cmpint(elapsed, <, 5 * G_USEC_PER_SEC);

	g_atomic_int_set(&slow.release, 1);
	jobs_wait(jobs, 2);
	g_thread_join(threads[0]);
	g_thread_join(threads[1]);
	/* The stuck reader got no more than the kernel buffer and our bound
	 * held; it did not get all 400 KiB. */
	g_assert_cmpuint(slow.bytes_after, <, 400 * 1024);
	/* The reader that kept up got every event, in order. */
	g_assert_no_error(fast.error);
	g_assert_cmpuint(fast.events->len, ==, 400);
	for (guint i = 0; i < fast.events->len; i++)
		g_assert_cmpint(event_seq(&fast, i), ==, i + 1);
	g_ptr_array_unref(fast.events);
}

/* Waits for a child that connects as a refused uid, serving it meanwhile. */
static void
wait_child(pid_t pid)
{
	int status = 0;
	gint64 deadline = g_get_monotonic_time() + 15 * G_USEC_PER_SEC;

	g_test_expect_message("virtcert-ipc", G_LOG_LEVEL_MESSAGE, "*peer uid 65534 not allowed*");
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (g_get_monotonic_time() > deadline) {
			/* Accepted and left waiting: the check let it in. */
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			g_error("child as uid 65534 did not finish: was it allowed in?");
		}
		g_main_context_iteration(NULL, FALSE);
		g_usleep(1000);
	}
	g_test_assert_expected_messages();
	g_assert_true(WIFEXITED(status));
	g_assert_cmpint(WEXITSTATUS(status), ==, 0);
}

/* Runs as uid 65534 against the parent's server. */
static int
refused_client_main(const char *path)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) result = vc_ipc_client_call(path, "echo", NULL, 2000, &error);
	g_autofree char *want = g_strdup_printf("peer uid %u not allowed", (guint)getuid());

	if (result != NULL || !g_error_matches(error, VC_ERROR, VC_ERROR_POLICY) ||
	    g_strcmp0(error->message, want) != 0) {
		g_printerr("refused client: %s\n", error != NULL ? error->message : "accepted");
		return 1;
	}
	return 0;
}

static void
test_peer_refused(Fixture *fx, gconstpointer data)
{
	g_autofree char *rundir = g_path_get_dirname(fx->path);
	g_autofree char *self_exe = g_file_read_link("/proc/self/exe", NULL);
	pid_t pid;

	g_assert_nonnull(self_exe);
	if (geteuid() != 0) {
		g_test_skip("needs root to connect as another uid");
		return;
	}
	/* Let the other uid reach the socket so that SO_PEERCRED decides. */
	g_assert_cmpint(chmod(fx->tmpdir, 0755), ==, 0);
	g_assert_cmpint(chmod(rundir, 0755), ==, 0);
	g_assert_cmpint(chmod(fx->path, 0666), ==, 0);

	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		/* Child: async-signal-safe calls only. */
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		char buf[512];
		size_t len = 0;
		ssize_t n;
		int fd;

		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(10);
		strncpy(sun.sun_path, fx->path, sizeof(sun.sun_path) - 1);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
			_exit(11);
		while (len < sizeof(buf) - 1 &&
		       (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
			len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\"code\":\"policy\"") == NULL)
			_exit(12);
		if (strstr(buf, "peer uid 65534 not allowed") == NULL)
			_exit(13);
		/* One line, then the connection is closed (read returned 0). */
		if (strchr(buf, '\n') != buf + len - 1)
			_exit(14);
		_exit(0);
	}
	wait_child(pid);

	/* The real client, as another uid, turns that line into VC_ERROR_POLICY
	 * (exec of this binary: see refused_client_main()). A copy in the
	 * temporary directory: the build tree may sit under a directory that
	 * uid 65534 cannot enter (a checkout in mktemp -d is 0700). */
	{
		g_autofree char *copy = g_build_filename(fx->tmpdir, "refused-client", NULL);
		g_autofree char *bytes = NULL;
		gsize len = 0;
		g_assert_true(g_file_get_contents(self_exe, &bytes, &len, NULL));
		g_assert_true(g_file_set_contents(copy, bytes, (gssize)len, NULL));
		g_assert_cmpint(chmod(copy, 0755), ==, 0);
		g_free(self_exe);
		self_exe = g_steal_pointer(&copy);
	}
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(10);
		execl(self_exe, self_exe, "--refused-client", fx->path, (char *)NULL);
		_exit(20);
	}
	wait_child(pid);
	g_assert_cmpint(g_unlink(self_exe), ==, 0);
}

static void
test_peer_allowed(void)
{
	g_autoptr(GError) error = NULL;
	const uid_t self = 4242;
	const uid_t stranger = 4000123;
	struct passwd *pw;
	gboolean found_supplementary = FALSE;

	g_assert_true(vc_ipc_peer_allowed(0, 0, self, NULL, &error));
	g_assert_no_error(error);
	g_assert_true(vc_ipc_peer_allowed(self, 4242, self, NULL, &error));
	g_assert_no_error(error);

	/* A uid that is nobody we know, with no group given or with a group it
	 * is not in, or with a group that does not exist. */
	g_assert_false(vc_ipc_peer_allowed(stranger, stranger, self, NULL, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_POLICY);
	g_assert_cmpstr(error->message, ==, "peer uid 4000123 not allowed");
	g_clear_error(&error);
	g_assert_false(vc_ipc_peer_allowed(stranger, stranger, self, "root", &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_POLICY);
	g_clear_error(&error);
	g_assert_false(vc_ipc_peer_allowed(stranger, stranger, self, "vc-no-such-group", &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_POLICY);
	g_clear_error(&error);

	/* The peer process runs with the group as its primary gid. */
	g_assert_true(vc_ipc_peer_allowed(stranger, 0, self, "root", &error));
	g_assert_no_error(error);

	/* An account whose passwd primary group is the group, while the
	 * process runs with another gid. */
	setpwent();
	while ((pw = getpwent()) != NULL) {
		struct group *gr;
		if (pw->pw_uid == 0 || pw->pw_uid == self)
			continue;
		gr = getgrgid(pw->pw_gid);
		if (gr == NULL)
			continue;
		g_assert_true(vc_ipc_peer_allowed(pw->pw_uid, stranger, self, gr->gr_name, &error));
		g_assert_no_error(error);
		break;
	}
	endpwent();

	/* Supplementary membership from /etc/group, when this system has any. */
	{
		struct group *gr;
		g_autofree char *group_name = NULL;
		g_autofree char *member = NULL;

		setgrent();
		while ((gr = getgrent()) != NULL && group_name == NULL) {
			for (char **m = gr->gr_mem; m != NULL && *m != NULL; m++) {
				struct passwd *mp = getpwnam(*m);
				if (mp != NULL && mp->pw_uid != 0 && mp->pw_gid != gr->gr_gid) {
					group_name = g_strdup(gr->gr_name);
					member = g_strdup(*m);
					break;
				}
			}
		}
		endgrent();
		if (group_name != NULL) {
			struct passwd *mp = getpwnam(member);
			g_assert_nonnull(mp);
			g_assert_true(
			    vc_ipc_peer_allowed(mp->pw_uid, stranger, self, group_name, &error));
			g_assert_no_error(error);
			found_supplementary = TRUE;
		}
	}
	if (!found_supplementary)
		g_test_message("no supplementary group member on this system; case not covered");
}

static void
test_socket_file(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *tmpdir = g_dir_make_tmp("vc-ipc-XXXXXX", &error);
	g_autofree char *rundir = g_build_filename(tmpdir, "run", NULL);
	g_autofree char *path = g_build_filename(rundir, "control.sock", NULL);
	g_autofree char *plain = g_build_filename(tmpdir, "plain", NULL);
	g_autoptr(GSocket) sock = NULL;
	g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);
	VcIpcServer *a;
	VcIpcServer *b;
	struct stat st;
	const char *group = NULL;

	g_assert_no_error(error);
	/* A group we can hand the socket to whether or not we are root. */
	{
		struct group *gr = getgrgid(getegid());
		if (gr != NULL)
			group = gr->gr_name;
	}
	a = vc_ipc_server_new(path, group, &error);
	g_assert_no_error(error);
	g_assert_cmpint(stat(rundir, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 07777, ==, 0750);
	g_assert_cmpint(lstat(path, &st), ==, 0);
	g_assert_true(S_ISSOCK(st.st_mode));
	g_assert_cmpint(st.st_mode & 07777, ==, 0660);
	g_assert_cmpint(st.st_gid, ==, getegid());

	/* A second daemon must not steal the socket of a live one. */
	b = vc_ipc_server_new(path, NULL, &error);
	g_assert_null(b);
	g_assert_error(error, VC_ERROR, VC_ERROR_EXISTS);
	g_clear_error(&error);
	vc_ipc_server_free(a);
	g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));

	/* A stale socket (its daemon died) is replaced. */
	sock = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
			    &error);
	g_assert_no_error(error);
	g_assert_true(g_socket_bind(sock, addr, FALSE, &error));
	g_socket_close(sock, NULL);
	a = vc_ipc_server_new(path, NULL, &error);
	g_assert_no_error(error);
	vc_ipc_server_free(a);

	/* Something that is not a socket is never removed. */
	g_assert_true(g_file_set_contents(plain, "keep", -1, &error));
	b = vc_ipc_server_new(plain, NULL, &error);
	g_assert_null(b);
	g_assert_error(error, VC_ERROR, VC_ERROR_EXISTS);
	g_clear_error(&error);
	g_assert_true(g_file_test(plain, G_FILE_TEST_IS_REGULAR));

	g_assert_cmpint(g_unlink(plain), ==, 0);
	g_assert_cmpint(g_rmdir(rundir), ==, 0);
	g_assert_cmpint(g_rmdir(tmpdir), ==, 0);
	while (g_main_context_iteration(NULL, FALSE))
		;
}

/* An object nested @depth levels deep, with brackets and an escaped quote
 * in a string that a naive counter would take for more nesting. */
static char *
deep_json(int depth)
{
	GString *s = g_string_new("{\"s\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
				  "[[[[[[[[[[[\\\"[\",\"a\":");

	for (int i = 1; i < depth; i++)
		g_string_append_c(s, '[');
	g_string_append(s, "1");
	for (int i = 1; i < depth; i++)
		g_string_append_c(s, ']');
	g_string_append_c(s, '}');
	return g_string_free(s, FALSE);
}

static void
test_proto(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node = NULL;
	g_autoptr(JsonNode) result = NULL;
	g_autofree char *line = NULL;
	gsize len = 0;

	/* Every code name maps back to its code; unknown names are "failed". */
	for (int code = VC_ERROR_FAILED; code <= VC_ERROR_UNAVAILABLE; code++)
		g_assert_cmpint(vc_error_code_from_string(vc_error_code_to_string(code)), ==, code);
	g_assert_cmpint(vc_error_code_from_string("from-the-future"), ==, VC_ERROR_FAILED);
	g_assert_cmpint(vc_error_code_from_string(NULL), ==, VC_ERROR_FAILED);

	/* An error reply carries code and message back into a GError. */
	error = g_error_new_literal(VC_ERROR, VC_ERROR_NAME_COLLISION, "web.example held by vm 2");
	{
		gint64 id = 9;
		line = vc_ipc_proto_build_error(&id, error, &len);
	}
	g_clear_error(&error);
	g_assert_cmpint(line[len - 1], ==, '\n');
	g_assert_null(memchr(line, '\n', len - 1));
	node = vc_ipc_proto_parse_line(line, len - 1, &error);
	g_assert_no_error(error);
	result = vc_ipc_proto_parse_reply(json_node_get_object(node), 9, &error);
	g_assert_null(result);
	g_assert_error(error, VC_ERROR, VC_ERROR_NAME_COLLISION);
	g_assert_cmpstr(error->message, ==, "web.example held by vm 2");
	g_clear_error(&error);
	/* A reply to another request is not ours. */
	result = vc_ipc_proto_parse_reply(json_node_get_object(node), 10, &error);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_clear_error(&error);
	g_clear_pointer(&node, json_node_unref);
	g_clear_pointer(&line, g_free);

	/* Strings with newlines stay on one line. */
	{
		g_autoptr(JsonNode) s = json_node_new(JSON_NODE_VALUE);
		json_node_set_string(s, "two\nlines");
		line = vc_ipc_proto_build_reply(3, s, &len);
		g_assert_null(memchr(line, '\n', len - 1));
		node = vc_ipc_proto_parse_line(line, len - 1, &error);
		g_assert_no_error(error);
		result = vc_ipc_proto_parse_reply(json_node_get_object(node), 3, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(json_node_get_string(result), ==, "two\nlines");
		g_clear_pointer(&result, json_node_unref);
		g_clear_pointer(&node, json_node_unref);
	}

	/* Depth: at the limit is fine, one deeper is not; brackets inside
	 * strings do not count. */
	g_clear_pointer(&line, g_free);
	line = deep_json(VC_IPC_MAX_DEPTH);
	node = vc_ipc_proto_parse_line(line, strlen(line), &error);
	g_assert_no_error(error);
	g_clear_pointer(&node, json_node_unref);
	g_clear_pointer(&line, g_free);
	line = deep_json(VC_IPC_MAX_DEPTH + 1);
	node = vc_ipc_proto_parse_line(line, strlen(line), &error);
	g_assert_null(node);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_clear_error(&error);

	/* json-glib takes single-quoted strings and comments: a '"' in them
	 * hid the brackets after it from the depth count (found with
	 * tests/fuzz/fuzz-ipc-frame), so neither is accepted. */
	{
		/* before and after the too deep array */
		const char *hiding[][2] = {
		    {"{\"q\":'\"',\"a\":", "}"}, {"{/* \" */\"a\":", "}"}, {"{\"a\":1} // \"", ""}};
		g_autofree char *open = g_strnfill(VC_IPC_MAX_DEPTH + 1, '[');
		g_autofree char *close = g_strnfill(VC_IPC_MAX_DEPTH + 1, ']');
		for (gsize i = 0; i < G_N_ELEMENTS(hiding); i++) {
			g_clear_pointer(&line, g_free);
			line = g_strconcat(hiding[i][0], open, "1", close, hiding[i][1], NULL);
			node = vc_ipc_proto_parse_line(line, strlen(line), &error);
			g_assert_null(node);
			g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
			g_clear_error(&error);
		}
		/* in a double-quoted string both are only characters */
		const char *fine = "{\"a\":\"it's /* fine */\"}";
		node = vc_ipc_proto_parse_line(fine, strlen(fine), &error);
		g_assert_no_error(error);
		g_clear_pointer(&node, json_node_unref);
	}

	/* NUL bytes are not JSON text. */
	node = vc_ipc_proto_parse_line("{\"a\":\0}", 7, &error);
	g_assert_null(node);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
}

/* Limits: a half line is dropped at the request timeout while complete
 * requests, watchers and requests awaiting an answer are not; one
 * connection beyond the cap is told so and closed. */

static gboolean
connections_are(gpointer data)
{
	gpointer *args = data;
	return vc_ipc_server_get_n_connections(args[0]) == GPOINTER_TO_UINT(args[1]);
}

typedef struct {
	Fixture *fx;
	gint64 dropped_after_us;
	gboolean echo_served;
} HalfLine;

static gpointer
half_line_thread(gpointer user_data)
{
	HalfLine *hl = user_data;
	Raw half = {0};
	Raw good = {0};
	g_autoptr(JsonObject) reply = NULL;
	const char *partial = "{\"id\":1,\"method\":\"echo\"";
	const char *full = "{\"id\":2,\"method\":\"echo\",\"params\":{\"a\":1}}\n";
	gint64 start;
	char *line;

	raw_connect(&half, hl->fx->path);
	start = g_get_monotonic_time();
	raw_send(&half, partial, strlen(partial));
	/* others are served meanwhile */
	raw_connect(&good, hl->fx->path);
	raw_send(&good, full, strlen(full));
	reply = raw_read_object(&good);
	hl->echo_served = json_object_get_boolean_member(reply, "ok");
	raw_close(&good);
	line = raw_read_line(&half);
	hl->dropped_after_us = g_get_monotonic_time() - start;
	g_assert_null(line);
	raw_close(&half);
	return NULL;
}

static void
test_request_timeout(Fixture *fx, gconstpointer data)
{
	HalfLine hl = {.fx = fx};
	Raw watcher = {0};
	Raw waiting = {0};
	g_autoptr(JsonObject) reply = NULL;
	const char *watch = "{\"id\":1,\"method\":\"watch\"}\n";
	const char *never = "{\"id\":1,\"method\":\"never\"}\n";
	gpointer two[] = {fx->server, GUINT_TO_POINTER(2)};

	vc_ipc_server_set_limits(fx->server, 0, 300);
	/* a watcher and a request awaiting its answer, both older than the
	 * half line below: they owe no request */
	raw_connect(&watcher, fx->path);
	raw_send(&watcher, watch, strlen(watch));
	raw_connect(&waiting, fx->path);
	raw_send(&waiting, never, strlen(never));
	g_assert_true(iterate_until(connections_are, two));
	while (fx->never->len == 0 || vc_ipc_server_get_n_watchers(fx->server) == 0)
		g_main_context_iteration(NULL, TRUE);

	run_client(half_line_thread, &hl);
	g_assert_true(hl.echo_served);
	g_assert_cmpint(hl.dropped_after_us, >=, 250 * 1000);
	g_assert_cmpint(hl.dropped_after_us, <, 5 * G_USEC_PER_SEC);
	g_assert_cmpuint(vc_ipc_server_get_n_timed_out(fx->server), ==, 1);
	/* the half line was dropped after the watcher's and the waiting
	 * request's deadlines would have passed: both are still here */
	g_assert_cmpuint(vc_ipc_server_get_n_connections(fx->server), ==, 2);
	g_assert_cmpuint(vc_ipc_server_get_n_watchers(fx->server), ==, 1);
	reply = raw_read_object(&watcher);
	g_assert_true(json_object_get_boolean_member(reply, "ok"));
	raw_close(&watcher);
	raw_close(&waiting);
}

static gpointer
cap_thread(gpointer user_data)
{
	Fixture *fx = user_data;
	Raw held[2] = {{0}};
	Raw over = {0};
	g_autoptr(JsonObject) refused = NULL;
	const char *echo = "{\"id\":3,\"method\":\"echo\"}\n";
	gboolean served = FALSE;

	for (guint i = 0; i < G_N_ELEMENTS(held); i++) {
		g_autoptr(JsonObject) reply = NULL;

		raw_connect(&held[i], fx->path);
		raw_send(&held[i], echo, strlen(echo));
		reply = raw_read_object(&held[i]);
		g_assert_true(json_object_get_boolean_member(reply, "ok"));
	}
	raw_connect(&over, fx->path);
	refused = raw_read_object(&over);
	assert_error_reply(refused, "unavailable", "2 control connections open");
	g_assert_null(raw_read_line(&over));
	raw_close(&over);

	/* a slot is free again once one of the two leaves */
	raw_close(&held[0]);
	for (guint tries = 0; tries < 500 && !served; tries++) {
		g_autoptr(JsonObject) reply = NULL;

		raw_connect(&over, fx->path);
		raw_send(&over, echo, strlen(echo));
		reply = raw_read_object(&over);
		served = json_object_get_boolean_member(reply, "ok");
		raw_close(&over);
		if (!served)
			g_usleep(10 * 1000);
	}
	g_assert_true(served);
	raw_close(&held[1]);
	return NULL;
}

static void
test_connection_cap(Fixture *fx, gconstpointer data)
{
	vc_ipc_server_set_limits(fx->server, 2, 0);
	g_test_expect_message("virtcert-ipc", G_LOG_LEVEL_WARNING,
			      "*2 connections open, the most allowed (control-max-connections)*");
	run_client(cap_thread, fx);
	g_test_assert_expected_messages();
	g_assert_cmpuint(vc_ipc_server_get_n_refused(fx->server), >=, 1);
}

int
main(int argc, char **argv)
{
	if (argc == 3 && g_str_equal(argv[1], "--refused-client"))
		return refused_client_main(argv[2]);
	g_test_init(&argc, &argv, NULL);

	g_test_add_func("/ipc/proto", test_proto);
	g_test_add_func("/ipc/peer-allowed", test_peer_allowed);
	g_test_add_func("/ipc/socket-file", test_socket_file);
#define ADD(name, func)                                                                            \
	g_test_add("/ipc/" name, Fixture, NULL, fixture_setup, func, fixture_teardown)
	ADD("request-reply", test_request_reply);
	ADD("async-reply", test_async_reply);
	ADD("many-requests", test_many_requests);
	ADD("concurrent-clients", test_concurrent_clients);
	ADD("overlong-line", test_overlong_line);
	ADD("invalid-json", test_invalid_json);
	ADD("wrong-types", test_wrong_types);
	ADD("unknown-method", test_unknown_method);
	ADD("client-timeout", test_client_timeout);
	ADD("unreachable", test_unreachable);
	ADD("watch", test_watch);
	ADD("slow-watcher", test_slow_watcher);
	ADD("peer-refused", test_peer_refused);
	ADD("request-timeout", test_request_timeout);
	ADD("connection-cap", test_connection_cap);
#undef ADD
	return g_test_run();
}
