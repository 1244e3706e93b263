/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcert hook uninstall | status (hook install is in vc-cli-host.c) */
#include "vc-cli.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "vc-error.h"

char *
vc_cli_hook_path(const char *root)
{
	return g_build_filename(root != NULL ? root : "/", "etc", "libvirt", "hooks", "qemu.d",
				"virtcert", NULL);
}

gboolean
vc_cli_hook_self_test(const char *hook, char **ret_output, GError **error)
{
	const char *argv[] = {hook, "--self-test", NULL};
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	g_autoptr(GError) local = NULL;
	int status = 0;

	/* the environment is passed on: VIRTCERT_HOOK_CONFIG (tests) counts */
	if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
			  &status, &local)) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot run %s: %s", hook,
			    local->message);
		return FALSE;
	}
	if (!g_spawn_check_wait_status(status, NULL)) {
		g_set_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE, "%s --self-test: %s", hook,
			    g_strstrip(*err != '\0' ? err : out));
		return FALSE;
	}
	*ret_output = g_strdup(g_strstrip(out));
	return TRUE;
}

gboolean
vc_cli_hook_uninstall(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *root = NULL;
	g_autofree char *path = NULL;
	const GOptionEntry entries[] = {
	    {"root", 0, 0, G_OPTION_ARG_FILENAME, &root, "Installed below DIR (default /)", "DIR"},
	    {NULL}};

	if (!vc_cli_parse("hook uninstall", "[--root DIR]", entries, &argc, &argv, error))
		return FALSE;
	if (argc != 1) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "usage: virtcert hook uninstall [--root DIR]");
		return FALSE;
	}
	path = vc_cli_hook_path(root);
	if (g_unlink(path) < 0) {
		if (errno != ENOENT) {
			g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot remove %s: %s", path,
				    g_strerror(errno));
			return FALSE;
		}
		if (!arg_json)
			g_print("No hook installed at %s: nothing to do\n", path);
		return TRUE;
	}
	if (!arg_json)
		g_print("Removed %s\nlibvirtd reads its hooks when it starts: restart it "
			"(systemctl restart libvirtd, or virtqemud) so it stops calling it.\n",
			path);
	return TRUE;
}

gboolean
vc_cli_hook_status(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *root = NULL;
	g_autofree char *path = NULL;
	g_autofree char *answer = NULL;
	g_autoptr(GError) local = NULL;
	gboolean installed, executable, answers = FALSE;
	const GOptionEntry entries[] = {
	    {"root", 0, 0, G_OPTION_ARG_FILENAME, &root, "Installed below DIR (default /)", "DIR"},
	    {NULL}};

	if (!vc_cli_parse("hook status", "[--root DIR]", entries, &argc, &argv, error))
		return FALSE;
	if (argc != 1) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "usage: virtcert hook status [--root DIR]");
		return FALSE;
	}
	path = vc_cli_hook_path(root);
	installed = g_file_test(path, G_FILE_TEST_EXISTS);
	executable = installed && access(path, X_OK) == 0;
	if (executable)
		answers = vc_cli_hook_self_test(path, &answer, &local);
	if (arg_json) {
		g_autoptr(JsonBuilder) b = json_builder_new();
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "path");
		json_builder_add_string_value(b, path);
		json_builder_set_member_name(b, "installed");
		json_builder_add_boolean_value(b, installed);
		json_builder_set_member_name(b, "executable");
		json_builder_add_boolean_value(b, executable);
		json_builder_set_member_name(b, "daemon_answers");
		json_builder_add_boolean_value(b, answers);
		json_builder_set_member_name(b, "error");
		json_builder_add_string_value(b, local != NULL ? local->message : NULL);
		json_builder_end_object(b);
		vc_cli_print_json(json_builder_get_root(b));
	} else {
		g_print("Hook:        %s: %s\n", path,
			!installed    ? "not installed (virtcert hook install)"
			: !executable ? "installed but not executable (chmod 0755)"
				      : "installed");
		if (executable)
			g_print("Daemon:      %s\n", answers ? answer : local->message);
	}
	/* exit 0 only when libvirt's call would reach the daemon */
	if (!installed || !executable || !answers)
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "the hook %s",
			    !installed	  ? "is not installed"
			    : !executable ? "is not executable"
					  : "cannot reach the daemon");
	return installed && executable && answers;
}
