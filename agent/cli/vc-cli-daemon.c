/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Commands that go through the daemon's control socket when it runs. */
#include "vc-cli.h"

#include <errno.h>
#include <gio/gunixsocketaddress.h>
#include <stdio.h>
#include <string.h>

#include "vc-error.h"
#include "vc-ipc-client.h"

#define VC_CLI_CALL_TIMEOUT_MS 30000

gboolean
vc_cli_daemon_running(VcCli *cli)
{
	g_autoptr(GSocket) sock = NULL;
	g_autoptr(GSocketAddress) addr = NULL;
	g_autoptr(GError) local = NULL;
	const char *path;

	if (vc_cli_get_config(cli, NULL) == NULL)
		return FALSE;
	path = cli->config->control_socket;
	g_clear_pointer(&cli->daemon_error, g_free);
	if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
		/* a socket in a directory we may not enter exists all the same */
		if (errno == EACCES)
			cli->daemon_error = g_strdup_printf(
			    "cannot reach the daemon's control socket %s: Permission denied "
			    "(its directory is closed to this user)",
			    path);
		return FALSE;
	}
	sock = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
			    NULL);
	if (sock == NULL)
		return FALSE;
	addr = g_unix_socket_address_new(path);
	if (g_socket_connect(sock, addr, NULL, &local))
		return TRUE;
	/* remembered: an offline fallback that fails too says both */
	if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED))
		cli->daemon_error = g_strdup_printf(
		    "cannot reach the daemon's control socket %s: Permission denied (the "
		    "user must be in its control-group '%s': usermod -aG %s USER, then log in "
		    "again)",
		    path, cli->config->control_group ? cli->config->control_group : "(none set)",
		    cli->config->control_group ? cli->config->control_group : "GROUP");
	return FALSE;
}

JsonNode *
vc_cli_daemon_call(VcCli *cli, const char *method, JsonObject *params, GError **error)
{
	JsonNode *node;

	if (vc_cli_get_config(cli, error) == NULL)
		return NULL;
	node = vc_ipc_client_call(cli->config->control_socket, method, params,
				  VC_CLI_CALL_TIMEOUT_MS, error);
	/* a permission problem: name the group and the way in */
	if (node == NULL && error != NULL && *error != NULL &&
	    strstr((*error)->message, "Permission denied") != NULL && !vc_cli_daemon_running(cli) &&
	    cli->daemon_error != NULL) {
		g_free((*error)->message);
		(*error)->message = g_strdup(cli->daemon_error);
	}
	return node;
}

/* The string member KEY of O, "-" when absent or not a string. */
static const char *
vc_cli_member_str(JsonObject *o, const char *key)
{
	JsonNode *n = json_object_get_member(o, key);
	if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
		return "-";
	return json_node_get_string(n);
}

/* The daemon's status (also reload's answer), for a person. */
static void
vc_cli_print_status(JsonObject *o)
{
	const char *uri = vc_cli_member_str(o, "libvirt_uri");
	JsonNode *states = json_object_get_member(o, "states");
	JsonNode *warnings = json_object_get_member(o, "policy_warnings");

	g_print("libvirt:     %s (%s)\n", uri,
		json_object_get_boolean_member_with_default(o, "libvirt_connected", FALSE)
		    ? "connected"
		    : "NOT connected: reconnecting");
	g_print("CA:          %s\n", vc_cli_member_str(o, "ca_id"));
	g_print("VMs:         %" G_GINT64_FORMAT,
		json_object_get_int_member_with_default(o, "domains", 0));
	if (states != NULL && JSON_NODE_HOLDS_OBJECT(states)) {
		JsonObject *so = json_node_get_object(states);
		g_autoptr(GList) names = json_object_get_members(so);
		gboolean first = TRUE;
		for (GList *l = names; l != NULL; l = l->next, first = FALSE)
			g_print("%s%s %" G_GINT64_FORMAT, first ? " (" : ", ",
				(const char *)l->data,
				json_object_get_int_member_with_default(so, l->data, 0));
		if (!first)
			g_print(")");
	}
	g_print("\nQueued:      %" G_GINT64_FORMAT "\n",
		json_object_get_int_member_with_default(o, "queued", 0));
	g_print("Since start: %" G_GINT64_FORMAT " events, %" G_GINT64_FORMAT
		" issued, %" G_GINT64_FORMAT " revoked, %" G_GINT64_FORMAT
		" failed, %" G_GINT64_FORMAT " reconciles\n",
		json_object_get_int_member_with_default(o, "events", 0),
		json_object_get_int_member_with_default(o, "issued", 0),
		json_object_get_int_member_with_default(o, "revoked", 0),
		json_object_get_int_member_with_default(o, "failed", 0),
		json_object_get_int_member_with_default(o, "reconciles", 0));
	g_print("Policy:      %" G_GINT64_FORMAT " group(s)\n",
		json_object_get_int_member_with_default(o, "policy_groups", 0));
	if (warnings != NULL && JSON_NODE_HOLDS_ARRAY(warnings)) {
		JsonArray *a = json_node_get_array(warnings);
		for (guint i = 0; i < json_array_get_length(a); i++)
			g_print("Warning:     %s\n", json_array_get_string_element(a, i));
	}
}

static void
vc_cli_print_daemon_answer(const char *name, const char *arg, JsonNode *result)
{
	JsonObject *o = JSON_NODE_HOLDS_OBJECT(result) ? json_node_get_object(result) : NULL;

	if (o == NULL) {
		vc_cli_print_json(json_node_ref(result));
		return;
	}
	if (g_strcmp0(name, "renew") == 0) {
		g_print("Renewal of VM %s (%s) asked; it is now %s\n"
			"('virtcert watch' shows the new certificate coming)\n",
			arg, vc_cli_member_str(o, "vm_uuid"), vc_cli_member_str(o, "state"));
		return;
	}
	if (g_strcmp0(name, "reload") == 0)
		g_print("Policy reloaded: %" G_GINT64_FORMAT " group(s) in force\n",
			json_object_get_int_member_with_default(o, "policy_groups", 0));
	else
		vc_cli_print_status(o);
}

static gboolean
vc_cli_simple_daemon_command(VcCli *cli, const char *name, const char *args, int argc, char **argv,
			     gboolean want_vm, GError **error)
{
	g_autoptr(JsonObject) params = json_object_new();
	g_autoptr(JsonNode) result = NULL;

	if (!vc_cli_parse(name, args, NULL, &argc, &argv, error))
		return FALSE;
	if ((want_vm && argc != 2) || (!want_vm && argc != 1)) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "usage: virtcert %s %s", name, args);
		return FALSE;
	}
	if (want_vm)
		json_object_set_string_member(params, "vm", argv[1]);
	result = vc_cli_daemon_call(cli, name, params, error);
	if (result == NULL)
		return FALSE;
	if (arg_json)
		vc_cli_print_json(g_steal_pointer(&result));
	else
		vc_cli_print_daemon_answer(name, want_vm ? argv[1] : NULL, result);
	return TRUE;
}

gboolean
vc_cli_status(VcCli *cli, int argc, char **argv, GError **error)
{
	return vc_cli_simple_daemon_command(cli, "status", "", argc, argv, FALSE, error);
}

gboolean
vc_cli_renew(VcCli *cli, int argc, char **argv, GError **error)
{
	return vc_cli_simple_daemon_command(cli, "renew", "VM", argc, argv, TRUE, error);
}

gboolean
vc_cli_reload(VcCli *cli, int argc, char **argv, GError **error)
{
	return vc_cli_simple_daemon_command(cli, "reload", "", argc, argv, FALSE, error);
}

static gboolean
vc_cli_watch_cb(JsonNode *event, gpointer user_data)
{
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autofree char *text = NULL;

	json_generator_set_root(gen, event);
	text = json_generator_to_data(gen, NULL);
	g_print("%s\n", text);
	fflush(stdout);
	return TRUE;
}

/* How often a watch whose daemon went away tries again. */
#define VC_CLI_WATCH_RETRY_MS 500

gboolean
vc_cli_watch(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autoptr(GError) local = NULL;
	gboolean lost = FALSE;

	if (!vc_cli_parse("watch", "", NULL, &argc, &argv, error))
		return FALSE;
	if (vc_cli_get_config(cli, error) == NULL)
		return FALSE;
	/* the first connection must work; after that a daemon that stops or
	 * restarts is waited for (the notices go to stderr: stdout stays one
	 * JSON event a line) */
	if (!vc_ipc_client_watch(cli->config->control_socket, NULL, vc_cli_watch_cb, NULL, NULL,
				 &local)) {
		if (!g_error_matches(local, VC_ERROR, VC_ERROR_UNAVAILABLE) ||
		    g_str_has_prefix(local->message, "cannot connect")) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
		for (;;) {
			if (!lost)
				g_printerr("virtcert watch: the daemon went away (%s); "
					   "reconnecting…\n",
					   local->message);
			lost = TRUE;
			g_clear_error(&local);
			g_usleep(VC_CLI_WATCH_RETRY_MS * 1000);
			/* connected when the daemon accepts the watch: say so
			 * before the first event */
			if (vc_cli_daemon_running(cli)) {
				g_printerr("virtcert watch: reconnected to %s\n",
					   cli->config->control_socket);
				lost = FALSE;
			}
			if (!vc_ipc_client_watch(cli->config->control_socket, NULL, vc_cli_watch_cb,
						 NULL, NULL, &local) &&
			    !g_error_matches(local, VC_ERROR, VC_ERROR_UNAVAILABLE)) {
				g_propagate_error(error, g_steal_pointer(&local));
				return FALSE;
			}
			if (local == NULL)
				return TRUE;
		}
	}
	return TRUE;
}
