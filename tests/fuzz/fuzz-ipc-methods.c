/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The control socket's methods, each with hostile parameters: virtcertd's
 * own handlers (vc-daemon-methods.c: status, list, show, issue, renew,
 * revoke, reload, doctor, placement-check) registered by
 * vc_daemon_add_methods() on a real VcIpcServer, in front of a real engine
 * with a temporary store, a real CA and libvirt's test driver
 * (test:///default, in this process: its running domain "test" has a
 * policy, so it holds a certificate before the first request).
 *
 * An input is up to FUZZ_MAX_REQUESTS lines "METHOD PARAMS": METHOD picks
 * one of the daemon's methods (a name not in the list picks one by its
 * bytes, so a mutated name is still a method), PARAMS is a JSON object (an
 * input whose PARAMS does not parse as one is no request, so the fuzzer
 * spends its time behind the envelope, which fuzz-ipc-frame covers). Each
 * request goes over the socket and waits for its answer, which must be one
 * well-formed reply line for its id; a refused request must name what was
 * wrong and leave the store as it was (certificates, their states, VMs and
 * the audit log), and so must any answer to a question (status, list, show,
 * doctor, placement-check); a parameter missing or of the wrong type must be
 * refused. Each input starts from a fresh store and engine, so a
 * finding replays alone.
 *
 * Not reached: a host certificate (placement-check answers without one:
 * with one, an allowed migration would announce to a URL the input names),
 * guest agents (the test driver's domains have none: certificates are
 * issued, never delivered) and the daemon's HTTP side. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <sys/socket.h>

#include "vc-daemon-private.h"
#include "vc-error.h"
#include "vc-json-text.h"
#include "vc-test-ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT 16384
#define FUZZ_MAX_REQUESTS 8
/* a request not answered by then is a hang: a finding */
#define FUZZ_DEADLINE_MS 10000

static const char *const methods[] = {"status", "list",	  "show",   "issue",	      "renew",
				      "revoke", "reload", "doctor", "placement-check"};

/* The parameters each method reads, as its clients send them: a request
 * whose parameter is missing (when required) or of another type must be
 * refused, never answered as if it were absent. */
typedef enum { PARAM_STRING, PARAM_INT, PARAM_ARRAY } ParamKind;
static const struct {
	const char *method;
	const char *name;
	ParamKind kind;
	gboolean required;
} typed_params[] = {
    {"show", "vm", PARAM_STRING, TRUE},
    {"renew", "vm", PARAM_STRING, TRUE},
    {"revoke", "vm", PARAM_STRING, TRUE},
    {"revoke", "reason", PARAM_STRING, FALSE},
    {"issue", "vm_uuid", PARAM_STRING, TRUE},
    {"issue", "vm_name", PARAM_STRING, FALSE},
    {"issue", "key", PARAM_STRING, FALSE},
    {"issue", "lifetime", PARAM_INT, FALSE},
    {"issue", "dns_names", PARAM_ARRAY, TRUE},
    {"placement-check", "xml", PARAM_STRING, TRUE},
    {"placement-check", "operation", PARAM_STRING, FALSE},
};

static const char policy_data[] = "[t]\nmatch-name=test*\nnames={name}.vms.example.com\n";

static VcTestCa *tca;
static VcDaemon vd; /* the daemon's state the methods use */
static char *socket_path;
static char *db_path;
static guint n_connected;

static void
on_notify(JsonNode *data, gpointer user_data)
{
	JsonObject *o = json_node_get_object(data);

	if (g_strcmp0(json_object_get_string_member_with_default(o, "event", ""),
		      "libvirt-connected") == 0)
		n_connected++;
}

/* the daemon's messages and warnings (a refusal logs one) would only slow
 * the fuzzer; criticals and errors are findings and are shown */
static GLogWriterOutput
log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	if ((level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) == 0)
		return G_LOG_WRITER_HANDLED;
	return g_log_writer_default(level, fields, n_fields, user_data);
}

static void
fuzz_teardown(void)
{
	g_clear_pointer(&vd.ipc, vc_ipc_server_free);
	g_clear_pointer(&vd.host_cache, vc_daemon_host_cache_free);
	g_clear_pointer(&vd.owner_trust, vc_owner_trust_free);
	g_clear_pointer(&vd.config, vc_config_free);
	g_clear_pointer(&tca, vc_test_ca_free);
}

static void
fuzz_setup(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *policy_dir = NULL;
	g_autofree char *policy_file = NULL;

	/* the daemon's log lines would only slow the fuzzer */
	g_log_set_writer_func(log_writer, NULL, NULL);
	tca = vc_test_ca_new("vc-fuzz-methods", VC_KEY_TYPE_EC_P256);
	policy_dir = g_build_filename(tca->dir, "policy.d", NULL);
	policy_file = g_build_filename(policy_dir, "10-test.conf", NULL);
	g_assert(g_mkdir(policy_dir, 0700) == 0);
	g_assert(g_file_set_contents(policy_file, policy_data, -1, NULL));
	vd.config = vc_config_new_default();
	vc_config_set_state_dir(vd.config, tca->dir);
	g_free(vd.config->policy_dir);
	vd.config->policy_dir = g_strdup(policy_dir);
	g_free(vd.config->libvirt_uri);
	vd.config->libvirt_uri = g_strdup("test:///default");
	db_path = g_build_filename(tca->dir, "virtcert.db", NULL);
	socket_path = g_build_filename(tca->dir, "control", NULL);
	vd.ipc = vc_ipc_server_new(socket_path, NULL, &error);
	g_assert_no_error(error);
	vc_daemon_add_methods(&vd);
	atexit(fuzz_teardown);
}

static gboolean
cond_connected(gpointer fixture, gconstpointer data)
{
	return n_connected >= GPOINTER_TO_UINT(data);
}

/* Until the engine has no issuance queued and the main loop has handled
 * what was ready (a worker's result is applied there): the store is still
 * then. */
static void
settle(const char *after)
{
	gint64 deadline = g_get_monotonic_time() + FUZZ_DEADLINE_MS * 1000;

	for (;;) {
		for (guint i = 0; i < 1000 && g_main_context_iteration(NULL, FALSE); i++)
			;
		if (vc_engine_get_queue_length(vd.engine) == 0)
			return;
		if (g_get_monotonic_time() > deadline)
			g_error("fuzz-ipc-methods: %u VM(s) still queued %d s after %s",
				vc_engine_get_queue_length(vd.engine), FUZZ_DEADLINE_MS / 1000,
				after);
		g_usleep(1000);
	}
}

/* A starting daemon: store, policy, engine, recovery, libvirt. */
static void
engine_start(void)
{
	g_autoptr(GError) error = NULL;
	guint connected = n_connected;

	vd.store = vc_store_open(db_path, &error);
	g_assert_no_error(error);
	vd.engine = vc_engine_new(vd.config, vd.store, tca->ca, vc_daemon_load_policy(&vd, &error));
	g_assert_no_error(error);
	vc_engine_set_notify(vd.engine, on_notify, NULL);
	g_assert(vc_engine_recover(vd.engine, &error));
	vc_engine_connect_libvirt(vd.engine, vd.config->libvirt_uri);
	g_assert(vc_test_wait_until(cond_connected, NULL, GUINT_TO_POINTER(connected + 1),
				    FUZZ_DEADLINE_MS));
	settle("the engine's start");
}

/* The engine's last connection goes with it: test:///default starts over
 * with the next one, as the store does. */
static void
engine_stop(void)
{
	const char *suffixes[] = {"", "-wal", "-shm", "-journal"};

	g_clear_pointer(&vd.engine, vc_engine_free);
	g_clear_pointer(&vd.store, vc_store_free);
	for (guint i = 0; i < G_N_ELEMENTS(suffixes); i++) {
		g_autofree char *path = g_strconcat(db_path, suffixes[i], NULL);
		g_assert(g_unlink(path) == 0 || errno == ENOENT);
	}
}

/* What a refused request must not change: every certificate and its state,
 * every VM the store knows, the audit log. */
static char *
store_fingerprint(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) certs = vc_store_cert_list(vd.store, NULL, &error);
	g_autoptr(GPtrArray) doms = NULL;
	g_autoptr(GPtrArray) audit = NULL;
	GString *out = g_string_new(NULL);

	g_assert_no_error(error);
	for (guint i = 0; i < certs->len; i++) {
		VcCertRecord *rec = g_ptr_array_index(certs, i);
		g_string_append_printf(out, "cert %s %s %s %d\n", rec->serial, rec->vm_uuid,
				       vc_cert_status_to_string(rec->status), rec->reason);
	}
	doms = vc_store_domain_list(vd.store, &error);
	g_assert_no_error(error);
	for (guint i = 0; i < doms->len; i++) {
		VcDomainRecord *rec = g_ptr_array_index(doms, i);
		g_string_append_printf(out, "vm %s %s %s %s %d\n", rec->uuid, rec->name, rec->state,
				       rec->current_serial, rec->renew_pending);
	}
	audit = vc_store_audit_list(vd.store, 1000, &error);
	g_assert_no_error(error);
	g_string_append_printf(out, "audit %u\n", audit->len);
	return g_string_free(out, FALSE);
}

static gboolean
readable_cb(GSocket *socket, GIOCondition cond, gpointer data)
{
	return G_SOURCE_CONTINUE; /* only wakes the loop */
}

/* Sends LINE and returns the one reply line it gets. */
static GByteArray *
exchange(GSocket *client, const char *line)
{
	g_autoptr(GByteArray) in = g_byte_array_new();
	g_autoptr(GSource) source = g_socket_create_source(client, G_IO_IN | G_IO_HUP, NULL);
	gint64 deadline = g_get_monotonic_time() + FUZZ_DEADLINE_MS * 1000;
	gsize len = strlen(line), sent = 0;

	g_source_set_callback(source, (GSourceFunc)(void (*)(void))readable_cb, NULL, NULL);
	g_source_attach(source, NULL);
	while (sent < len) {
		g_autoptr(GError) error = NULL;
		gssize n = g_socket_send(client, line + sent, len - sent, NULL, &error);
		if (n > 0)
			sent += (gsize)n;
		else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
			g_main_context_iteration(NULL, FALSE);
		else
			g_error("fuzz-ipc-methods: cannot send a request: %s", error->message);
	}
	while (in->len == 0 || memchr(in->data, '\n', in->len) == NULL) {
		static guint8 buf[16384];
		g_autoptr(GError) error = NULL;
		gssize n = g_socket_receive(client, (char *)buf, sizeof(buf), NULL, &error);

		if (n > 0) {
			g_byte_array_append(in, buf, (guint)n);
			continue;
		}
		if (n == 0)
			g_error("fuzz-ipc-methods: the server closed without answering %s", line);
		if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
			g_error("fuzz-ipc-methods: %s", error->message);
		if (g_get_monotonic_time() > deadline)
			g_error("fuzz-ipc-methods: no answer within %d s to %s",
				FUZZ_DEADLINE_MS / 1000, line);
		g_main_context_iteration(NULL, TRUE);
	}
	g_source_destroy(source);
	return g_steal_pointer(&in);
}

/* The method a line's first word names: itself if the daemon has it, else
 * one picked by its bytes. */
static const char *
pick_method(const char *word, gsize len)
{
	guint sum = 0;

	for (guint i = 0; i < G_N_ELEMENTS(methods); i++)
		if (strlen(methods[i]) == len && memcmp(methods[i], word, len) == 0)
			return methods[i];
	for (gsize i = 0; i < len; i++)
		sum = sum * 31 + (guchar)word[i];
	return methods[sum % G_N_ELEMENTS(methods)];
}

/* The methods that only answer: whatever their parameters, the store stays
 * as it was. */
static gboolean
is_question(const char *method)
{
	const char *const questions[] = {"status", "list", "show", "doctor", "placement-check"};

	for (guint i = 0; i < G_N_ELEMENTS(questions); i++)
		if (strcmp(questions[i], method) == 0)
			return TRUE;
	return FALSE;
}

/* The first parameter of PARAMS that METHOD must refuse, or NULL. */
static const char *
bad_param(const char *method, JsonObject *params)
{
	for (guint i = 0; i < G_N_ELEMENTS(typed_params); i++) {
		JsonNode *node;
		gboolean ok;

		if (strcmp(typed_params[i].method, method) != 0)
			continue;
		node = json_object_get_member(params, typed_params[i].name);
		if (node == NULL) {
			ok = !typed_params[i].required;
		} else if (typed_params[i].kind == PARAM_ARRAY) {
			ok = JSON_NODE_HOLDS_ARRAY(node);
		} else {
			GType want =
			    typed_params[i].kind == PARAM_STRING ? G_TYPE_STRING : G_TYPE_INT64;
			ok = JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == want;
		}
		if (!ok)
			return typed_params[i].name;
	}
	return NULL;
}

/* One request: its answer is a reply to it, and a refusal names the cause
 * and leaves the store alone. */
static void
request(GSocket *client, gint64 id, const char *method, JsonNode *params)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonNode) root = NULL;
	g_autofree char *text = NULL;
	g_autofree char *line = NULL;
	g_autofree char *before = NULL;
	g_autoptr(GByteArray) in = NULL;
	g_autoptr(JsonNode) reply = NULL;
	g_autoptr(JsonNode) result = NULL;
	g_autoptr(GError) error = NULL;
	const char *nl;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "id");
	json_builder_add_int_value(b, id);
	json_builder_set_member_name(b, "method");
	json_builder_add_string_value(b, method);
	json_builder_set_member_name(b, "params");
	json_builder_add_value(b, json_node_copy(params));
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	text = json_to_string(root, FALSE);
	line = g_strconcat(text, "\n", NULL);

	before = store_fingerprint();
	in = exchange(client, line);
	nl = memchr(in->data, '\n', in->len);
	/* one request, one answer: nothing after it */
	g_assert((const guint8 *)nl == in->data + in->len - 1);
	reply = vc_ipc_proto_parse_line((const char *)in->data, in->len - 1, &error);
	g_assert_no_error(error);
	result = vc_ipc_proto_parse_reply(json_node_get_object(reply), id, &error);
	if (g_getenv("VC_FUZZ_SHOW") != NULL)
		g_printerr("> %s< %.*s\n", line, (int)in->len - 1, (const char *)in->data);
	if (result != NULL && bad_param(method, json_node_get_object(params)) != NULL)
		g_error("fuzz-ipc-methods: %s was answered although its parameter '%s' is "
			"missing or not of its type",
			text, bad_param(method, json_node_get_object(params)));
	if (result == NULL) {
		g_assert(error != NULL);
		g_assert(error->message != NULL && *error->message != '\0');
	}
	/* what was refused changed nothing, nor did a question; the engine's
	 * own work (none is queued) does not run in between */
	if (result == NULL || is_question(method)) {
		g_autofree char *after = NULL;

		settle(text);
		after = store_fingerprint();
		if (g_strcmp0(before, after) != 0)
			g_error("fuzz-ipc-methods: %s %s (%s) changed the store:\n%s---\n%s",
				result == NULL ? "refused" : "answered", text,
				result == NULL ? error->message : "a question", before, after);
	}
	settle(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocket) client = NULL;
	g_autoptr(GSocketAddress) address = NULL;
	g_autoptr(GPtrArray) names = g_ptr_array_new();
	g_autoptr(GPtrArray) params =
	    g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);
	const char *p = (const char *)data;
	const char *end = p + size;

	if (vd.ipc == NULL)
		fuzz_setup();
	if (size > FUZZ_MAX_INPUT)
		return -1;
	/* the requests first: an input without one is not worth an engine */
	while (p < end && names->len < FUZZ_MAX_REQUESTS) {
		const char *nl = memchr(p, '\n', (gsize)(end - p));
		const char *eol = nl != NULL ? nl : end;
		const char *sp = memchr(p, ' ', (gsize)(eol - p));
		const char *word_end = sp != NULL ? sp : eol;
		g_autoptr(JsonParser) parser = json_parser_new();
		JsonNode *node;

		/* as the server reads a line: json-glib leaks what follows a
		 * first value, the check refuses it first */
		if (sp != NULL &&
		    vc_json_text_check(sp + 1, (gsize)(eol - sp - 1), VC_IPC_MAX_DEPTH, NULL) &&
		    json_parser_load_from_data(parser, sp + 1, eol - sp - 1, NULL) &&
		    (node = json_parser_get_root(parser)) != NULL && JSON_NODE_HOLDS_OBJECT(node)) {
			g_ptr_array_add(names, (gpointer)pick_method(p, (gsize)(word_end - p)));
			g_ptr_array_add(params, json_node_copy(node));
		} else if (sp == NULL && word_end > p) {
			/* a bare method: no parameters */
			g_ptr_array_add(names, (gpointer)pick_method(p, (gsize)(word_end - p)));
			JsonNode *empty = json_node_new(JSON_NODE_OBJECT);
			json_node_take_object(empty, json_object_new());
			g_ptr_array_add(params, empty);
		}
		p = eol + 1;
	}
	if (names->len == 0)
		return -1;

	engine_start();
	client = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
			      &error);
	g_assert_no_error(error);
	address = g_unix_socket_address_new(socket_path);
	g_assert(g_socket_connect(client, address, NULL, &error));
	g_socket_set_blocking(client, FALSE);
	for (guint i = 0; i < names->len; i++)
		request(client, (gint64)i + 1, g_ptr_array_index(names, i),
			g_ptr_array_index(params, i));
	g_socket_close(client, NULL);
	/* let the server see the close */
	while (vc_ipc_server_get_n_connections(vd.ipc) > 0)
		g_main_context_iteration(NULL, TRUE);
	engine_stop();
	return 0;
}
