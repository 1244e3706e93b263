/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Parses the options of COMMAND of PROGRAM ("virtcert", "virtcert-bench"):
 * ENTRIES as the command's own, GLOBAL_ENTRIES as a "global" group. A parse
 * error is VC_ERROR_USAGE. ARGS is the synopsis after the command. */
gboolean vc_cmdline_parse(const char *program, const char *command, const char *args,
			  const GOptionEntry *global_entries, const GOptionEntry *entries,
			  int *argc, char ***argv, GError **error);

G_END_DECLS
