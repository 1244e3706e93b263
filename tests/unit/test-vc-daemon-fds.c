/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The descriptor budget: how the connection caps are cut to fit
 * RLIMIT_NOFILE, with the control socket served first. */
#include <string.h>
#include <sys/resource.h>

#include "vc-daemon-fds.h"
#include "vc-error.h"

static void
test_split(void)
{
	struct {
		guint64 limit;
		guint in_use;
		guint want_control, want_http, want_peer;
		guint control, http, peer;
	} cases[] = {
	    /* room for everything wanted: the caps as configured */
	    {1024, 20, 64, 256, 64, 64, 256, 64},
	    {524288, 20, 64, 256, 0, 64, 256, 0},
	    /* systemd's old default, no peer API */
	    {1024, 12, 64, 2000, 0, 64, 884, 0},
	    /* the flood test: 256 descriptors, 8 open */
	    {256, 8, 64, 256, 0, 46, 138, 0},
	    /* with the peer API, a quarter of what the control socket left */
	    {256, 8, 64, 256, 64, 46, 104, 34},
	    /* HTTP off: nothing for it */
	    {256, 8, 64, 0, 0, 46, 0, 0},
	    /* barely enough: one connection each */
	    {8 + 64 + 3, 8, 64, 256, 64, 1, 1, 1},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		VcDaemonFds plan = {0};

		g_assert_true(vc_daemon_fds_split(cases[i].limit, cases[i].in_use,
						  cases[i].want_control, cases[i].want_http,
						  cases[i].want_peer, &plan, &error));
		g_assert_no_error(error);
		g_assert_cmpuint(plan.control, ==, cases[i].control);
		g_assert_cmpuint(plan.http, ==, cases[i].http);
		g_assert_cmpuint(plan.peer, ==, cases[i].peer);
		/* never more than the limit, with the work reserve intact */
		g_assert_cmpuint(plan.in_use + VC_DAEMON_FDS_WORK + plan.control + plan.http +
				     plan.peer,
				 <=, cases[i].limit);
	}
}

static void
test_too_low(void)
{
	g_autoptr(GError) error = NULL;
	VcDaemonFds plan = {.http = 7};

	g_assert_false(vc_daemon_fds_split(70, 8, 64, 256, 0, &plan, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_USAGE);
	g_assert_nonnull(strstr(error->message, "RLIMIT_NOFILE) is 70"));
	g_assert_nonnull(strstr(error->message, "LimitNOFILE"));
	/* untouched on failure */
	g_assert_cmpuint(plan.http, ==, 7);
}

/* The plan raises the soft limit to the hard one. */
static void
test_plan_raises(void)
{
	g_autoptr(GError) error = NULL;
	struct rlimit saved;
	struct rlimit low;
	struct rlimit now;
	VcDaemonFds plan = {0};

	g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &saved), ==, 0);
	if (saved.rlim_max < 512) {
		g_test_skip("the hard descriptor limit is below 512");
		return;
	}
	low = saved;
	low.rlim_cur = 256;
	g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &low), ==, 0);
	g_assert_true(vc_daemon_fds_plan(64, 256, 0, &plan, &error));
	g_assert_no_error(error);
	g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &now), ==, 0);
	g_assert_cmpuint(now.rlim_cur, ==, saved.rlim_max);
	g_assert_cmpuint(plan.limit, ==, saved.rlim_max);
	g_assert_cmpuint(plan.in_use, >, 2); /* stdin, stdout, stderr at least */
	g_assert_cmpuint(plan.http, ==, 256);
	g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &saved), ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/daemon-fds/split", test_split);
	g_test_add_func("/daemon-fds/too-low", test_too_low);
	g_test_add_func("/daemon-fds/plan-raises", test_plan_raises);
	return g_test_run();
}
