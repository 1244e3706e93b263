/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Helpers every unit test may use; GLib only. Each asserts what it does, so
 * a test that calls one reads as if it had written the steps out. */

#include <glib.h>

G_BEGIN_DECLS

/* A new directory under g_get_tmp_dir() named after TMPL ("vc-thing-XXXXXX");
 * remove it with vc_test_dir_remove(). */
char *vc_test_dir_make(const char *tmpl);
/* Removes PATH and everything below it, like rm -rf, and asserts that all
 * went; follows no symbolic link. A missing PATH is no error. */
void vc_test_dir_remove(const char *path);

/* Whether what a test waits for holds; FIXTURE and DATA as passed to
 * vc_test_wait_until(). */
typedef gboolean (*VcTestCond)(gpointer fixture, gconstpointer data);

/* Runs the default main context until COND holds or TIMEOUT_MS passed;
 * returns whether COND holds. */
gboolean vc_test_wait_until(VcTestCond cond, gpointer fixture, gconstpointer data,
			    guint timeout_ms);
/* Lets the sources of the default main context run for MS milliseconds. */
void vc_test_spin(guint ms);

/* The wall clock in seconds, as certificates and the store count time. */
gint64 vc_test_now_s(void);

G_END_DECLS
