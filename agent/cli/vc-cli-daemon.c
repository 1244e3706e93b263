/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Commands that go through the daemon's control socket when it runs. */
#include "vc-cli.h"

#include <gio/gunixsocketaddress.h>
#include <stdio.h>

#include "vc-error.h"
#include "vc-ipc-client.h"

#define VC_CLI_CALL_TIMEOUT_MS 30000

gboolean
vc_cli_daemon_running(VcCli *cli)
{
	g_autoptr(GSocket) sock = NULL;
	g_autoptr(GSocketAddress) addr = NULL;

	if (vc_cli_get_config(cli, NULL) == NULL)
		return FALSE;
	if (!g_file_test(cli->config->control_socket, G_FILE_TEST_EXISTS))
		return FALSE;
	sock = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
			    NULL);
	if (sock == NULL)
		return FALSE;
	addr = g_unix_socket_address_new(cli->config->control_socket);
	return g_socket_connect(sock, addr, NULL, NULL);
}

JsonNode *
vc_cli_daemon_call(VcCli *cli, const char *method, JsonObject *params, GError **error)
{
	if (vc_cli_get_config(cli, error) == NULL)
		return NULL;
	return vc_ipc_client_call(cli->config->control_socket, method, params,
				  VC_CLI_CALL_TIMEOUT_MS, error);
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
	vc_cli_print_json(g_steal_pointer(&result));
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

gboolean
vc_cli_watch(VcCli *cli, int argc, char **argv, GError **error)
{
	if (!vc_cli_parse("watch", "", NULL, &argc, &argv, error))
		return FALSE;
	if (vc_cli_get_config(cli, error) == NULL)
		return FALSE;
	return vc_ipc_client_watch(cli->config->control_socket, NULL, vc_cli_watch_cb, NULL, NULL,
				   error);
}
