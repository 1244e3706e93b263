/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib/gstdio.h>

#include "vc-test-util.h"

char *
vc_test_dir_make(const char *tmpl)
{
	g_autoptr(GError) error = NULL;
	char *dir = g_dir_make_tmp(tmpl, &error);

	g_assert_no_error(error);
	g_assert_nonnull(dir);
	return dir;
}

void
vc_test_dir_remove(const char *path)
{
	g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
	const char *name;

	if (d == NULL && !g_file_test(path, G_FILE_TEST_EXISTS))
		return;
	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *p = g_build_filename(path, name, NULL);
		if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
			vc_test_dir_remove(p);
		else
			g_assert_cmpint(g_unlink(p), ==, 0);
	}
	g_assert_cmpint(g_rmdir(path), ==, 0);
}

static gboolean
vc_test_timeout_cb(gpointer data)
{
	gboolean *expired = data;

	*expired = TRUE;
	return G_SOURCE_REMOVE;
}

gboolean
vc_test_wait_until(VcTestCond cond, gpointer fixture, gconstpointer data, guint timeout_ms)
{
	gboolean expired = FALSE;
	guint id = g_timeout_add(timeout_ms, vc_test_timeout_cb, &expired);

	while (!cond(fixture, data) && !expired)
		g_main_context_iteration(NULL, TRUE);
	if (!expired)
		g_source_remove(id);
	return cond(fixture, data);
}

void
vc_test_spin(guint ms)
{
	gboolean expired = FALSE;

	g_timeout_add(ms, vc_test_timeout_cb, &expired);
	while (!expired)
		g_main_context_iteration(NULL, TRUE);
}

gint64
vc_test_now_s(void)
{
	return g_get_real_time() / G_USEC_PER_SEC;
}
