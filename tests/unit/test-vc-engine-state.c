/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "vc-engine-state.h"

/* The state table in the code and the one in docs/state-machine.md must be
 * the same table: every state once, the same moves, the same restart rule. */

static char *
vc_test_expected_row(VcDomainState s)
{
	g_autoptr(GString) moves = g_string_new(NULL);

	for (guint to = 0; to < VC_DOMAIN_STATE_LAST; to++) {
		if (to == s || !vc_domain_state_can_move(s, to))
			continue;
		g_string_append_printf(moves, "%s`%s`", moves->len > 0 ? ", " : "",
				       vc_domain_state_to_string(to));
	}
	return g_strdup_printf("| `%s` | %s | %s |", vc_domain_state_to_string(s), moves->str,
			       vc_domain_recovery_to_string(vc_domain_state_get_recovery(s)));
}

static void
test_state_strings(void)
{
	for (guint s = 0; s < VC_DOMAIN_STATE_LAST; s++) {
		VcDomainState back;
		g_assert_true(vc_domain_state_from_string(vc_domain_state_to_string(s), &back));
		g_assert_cmpint(back, ==, s);
		/* staying is always allowed */
		g_assert_true(vc_domain_state_can_move(s, s));
	}
	{
		VcDomainState back = VC_DOMAIN_STATE_LAST;
		g_assert_false(vc_domain_state_from_string("ISSUING", &back));
		g_assert_false(vc_domain_state_from_string(NULL, &back));
		g_assert_cmpint(back, ==, VC_DOMAIN_STATE_LAST);
	}
	/* the end of a life is final but for a new one */
	for (guint to = 0; to < VC_DOMAIN_STATE_LAST; to++)
		if (to != VC_DOMAIN_STATE_REVOKED)
			g_assert_cmpint(vc_domain_state_can_move(VC_DOMAIN_STATE_REVOKED, to), ==,
					to == VC_DOMAIN_STATE_NEW);
}

static void
test_state_table_documented(void)
{
	const char *root = g_getenv("VC_SOURCE_ROOT");
	g_autofree char *path = NULL;
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	g_autoptr(GError) error = NULL;
	guint seen[VC_DOMAIN_STATE_LAST] = {0};

	g_assert_nonnull(root);
	path = g_build_filename(root, "docs", "state-machine.md", NULL);
	g_assert_true(g_file_get_contents(path, &text, NULL, &error));
	g_assert_no_error(error);
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		g_auto(GStrv) cols = NULL;
		g_autofree char *name = NULL;
		g_autofree char *want = NULL;
		VcDomainState s;
		if (!g_str_has_prefix(lines[i], "| `"))
			continue;
		cols = g_strsplit(lines[i], "|", -1);
		g_assert_cmpuint(g_strv_length(cols), ==, 5);
		name = g_strstrip(g_strdelimit(g_strdup(cols[1]), "`", ' '));
		if (!vc_domain_state_from_string(name, &s))
			g_error("docs/state-machine.md names the unknown state '%s'", name);
		seen[s]++;
		want = vc_test_expected_row(s);
		if (g_strcmp0(g_strstrip(lines[i]), want) != 0)
			g_error("docs/state-machine.md and vc-engine-state.c differ for %s:\n"
				"  docs: %s\n  code: %s",
				name, lines[i], want);
	}
	for (guint s = 0; s < VC_DOMAIN_STATE_LAST; s++)
		if (seen[s] != 1)
			g_error("docs/state-machine.md has %s %u times", vc_domain_state_to_string(s),
				seen[s]);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/engine-state/strings", test_state_strings);
	g_test_add_func("/engine-state/documented", test_state_table_documented);
	return g_test_run();
}
