/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "vc-crash-point.h"
#include "vc-test-util.h"

/* The kill points' selection (agent/common/vc-crash-point.c), each case in a
 * child process: which point reached, at which hit, kills it. */

typedef struct {
	const char *at;	    /* VC_TEST_CRASH_AT, or NULL */
	const char *random; /* VC_TEST_CRASH_RANDOM, or NULL */
	const char *seed;
	const char *trace; /* VC_TEST_CRASH_TRACE, or NULL */
} Arm;

/* Runs POINTS in a child armed with ARM; the number of points it passed
 * before it died (-1: it passed them all and exited). */
static int
run_points(const Arm *arm, const char *const *points)
{
	int status = 0;
	int fds[2];
	pid_t pid;
	int passed = 0;
	char c;

	g_assert_cmpint(pipe(fds), ==, 0);
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		close(fds[0]);
		g_unsetenv("VC_TEST_CRASH_AT");
		g_unsetenv("VC_TEST_CRASH_RANDOM");
		g_unsetenv("VC_TEST_CRASH_SEED");
		g_unsetenv("VC_TEST_CRASH_TRACE");
		if (arm->at != NULL)
			g_setenv("VC_TEST_CRASH_AT", arm->at, TRUE);
		if (arm->random != NULL)
			g_setenv("VC_TEST_CRASH_RANDOM", arm->random, TRUE);
		if (arm->seed != NULL)
			g_setenv("VC_TEST_CRASH_SEED", arm->seed, TRUE);
		if (arm->trace != NULL)
			g_setenv("VC_TEST_CRASH_TRACE", arm->trace, TRUE);
		vc_crash_point_reload();
		for (guint i = 0; points[i] != NULL; i++) {
			vc_crash_point(points[i]);
			/* one octet per point passed */
			if (write(fds[1], "p", 1) != 1)
				_exit(2);
		}
		_exit(0);
	}
	close(fds[1]);
	while (read(fds[0], &c, 1) == 1)
		passed++;
	close(fds[0]);
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	if (WIFEXITED(status)) {
		g_assert_cmpint(WEXITSTATUS(status), ==, 0);
		return -1;
	}
	g_assert_true(WIFSIGNALED(status));
	g_assert_cmpint(WTERMSIG(status), ==, SIGKILL);
	return passed;
}

static const char *const storm[] = {"a", "b", "a", "c", "a", "b", NULL};

static void
test_named(void)
{
#ifndef VC_TEST_SEAMS
	g_test_skip("no kill points: built with -Dtest_seams=false");
	return;
#endif
	/* the first hit of a name, its Nth, a name never reached */
	g_assert_cmpint(run_points(&(Arm){.at = "b"}, storm), ==, 1);
	g_assert_cmpint(run_points(&(Arm){.at = "a:3"}, storm), ==, 4);
	g_assert_cmpint(run_points(&(Arm){.at = "b:2"}, storm), ==, 5);
	g_assert_cmpint(run_points(&(Arm){.at = "a:4"}, storm), ==, -1);
	g_assert_cmpint(run_points(&(Arm){.at = "nowhere"}, storm), ==, -1);
	/* nothing chosen: every point passes */
	g_assert_cmpint(run_points(&(Arm){0}, storm), ==, -1);
}

static void
test_random(void)
{
	int first, again;

#ifndef VC_TEST_SEAMS
	g_test_skip("no kill points: built with -Dtest_seams=false");
	return;
#endif
	g_assert_cmpint(run_points(&(Arm){.random = "1"}, storm), ==, 0);
	g_assert_cmpint(run_points(&(Arm){.random = "0"}, storm), ==, -1);
	/* a seed makes the random mode repeat itself */
	first = run_points(&(Arm){.random = "0.3", .seed = "42"}, storm);
	again = run_points(&(Arm){.random = "0.3", .seed = "42"}, storm);
	g_assert_cmpint(first, ==, again);
}

static void
test_trace(void)
{
	g_autofree char *dir = vc_test_dir_make("vc-crash-point-XXXXXX");
	g_autofree char *path = g_build_filename(dir, "trace", NULL);
	g_autofree char *text = NULL;

#ifndef VC_TEST_SEAMS
	g_test_skip("no kill points: built with -Dtest_seams=false");
	vc_test_dir_remove(dir);
	return;
#endif
	/* each name once, in the order first reached, up to the point that killed */
	g_assert_cmpint(run_points(&(Arm){.at = "a:3", .trace = path}, storm), ==, 4);
	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	g_assert_cmpstr(text, ==, "a\nb\nc\n");
	vc_test_dir_remove(dir);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/crash-point/named", test_named);
	g_test_add_func("/crash-point/random", test_random);
	g_test_add_func("/crash-point/trace", test_trace);
	return g_test_run();
}
