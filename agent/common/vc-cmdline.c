/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-cmdline.h"

#include "vc-error.h"

gboolean
vc_cmdline_parse(const char *program, const char *command, const char *args,
		 const GOptionEntry *global_entries, const GOptionEntry *entries, int *argc,
		 char ***argv, GError **error)
{
	g_autofree char *param = g_strdup_printf("— %s %s %s", program, command, args ? args : "");
	g_autoptr(GOptionContext) ctx = g_option_context_new(param);
	GOptionGroup *global =
	    g_option_group_new("global", "Global options:", "Show global options", NULL, NULL);

	g_option_group_add_entries(global, global_entries);
	g_option_context_add_group(ctx, global);
	if (entries != NULL)
		g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, argc, argv, error)) {
		if (error != NULL && *error != NULL) {
			(*error)->domain = VC_ERROR;
			(*error)->code = VC_ERROR_USAGE;
		}
		return FALSE;
	}
	return TRUE;
}
