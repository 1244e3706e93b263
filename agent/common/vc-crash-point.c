/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-crash-point.h"

#ifdef VC_TEST_SEAMS

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Points are reached from the main loop and from worker threads (guest
 * jobs): one lock. When nothing is selected the cost of a point is one
 * atomic read. */
static GMutex vc_crash_lock;
static gint vc_crash_state; /* 0: environment not read; 1: nothing selected; 2: armed */
static char *vc_crash_at;   /* the named point, or NULL */
static guint64 vc_crash_at_hit = 1;
static double vc_crash_random; /* probability per point reached, 0: none */
static GRand *vc_crash_rand;
static char *vc_crash_trace;	  /* file the names of the points reached go to */
static GHashTable *vc_crash_hits; /* name -> hits (GUINT_TO_POINTER), this process */

static void
vc_crash_point_read_env_locked(void)
{
	const char *at = g_getenv("VC_TEST_CRASH_AT");
	const char *random = g_getenv("VC_TEST_CRASH_RANDOM");
	const char *seed = g_getenv("VC_TEST_CRASH_SEED");
	const char *trace = g_getenv("VC_TEST_CRASH_TRACE");

	g_clear_pointer(&vc_crash_at, g_free);
	g_clear_pointer(&vc_crash_trace, g_free);
	g_clear_pointer(&vc_crash_rand, g_rand_free);
	g_clear_pointer(&vc_crash_hits, g_hash_table_unref);
	vc_crash_at_hit = 1;
	vc_crash_random = 0;
	if (at != NULL && *at != '\0') {
		const char *colon = strrchr(at, ':');
		vc_crash_at = colon != NULL ? g_strndup(at, colon - at) : g_strdup(at);
		if (colon != NULL) {
			guint64 n = g_ascii_strtoull(colon + 1, NULL, 10);
			vc_crash_at_hit = MAX(n, 1);
		}
	}
	if (random != NULL && *random != '\0') {
		vc_crash_random = CLAMP(g_ascii_strtod(random, NULL), 0.0, 1.0);
		vc_crash_rand = g_rand_new_with_seed(
		    seed != NULL ? (guint32)g_ascii_strtoull(seed, NULL, 10) : (guint32)getpid());
	}
	if (trace != NULL && *trace != '\0')
		vc_crash_trace = g_strdup(trace);
	vc_crash_hits = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_atomic_int_set(&vc_crash_state,
			 vc_crash_at != NULL || vc_crash_random > 0 || vc_crash_trace != NULL ? 2
											      : 1);
}

void
vc_crash_point_reload(void)
{
	g_mutex_lock(&vc_crash_lock);
	vc_crash_point_read_env_locked();
	g_mutex_unlock(&vc_crash_lock);
}

/* write(2) only: no stdio buffer, no allocation between here and the kill */
static void
vc_crash_point_say(int fd, const char *text)
{
	gsize len = strlen(text);

	while (len > 0) {
		ssize_t n = write(fd, text, len);
		if (n <= 0)
			return;
		text += n;
		len -= (gsize)n;
	}
}

static void
vc_crash_point_die(const char *name, guint64 hit)
{
	char line[256];

	g_snprintf(line, sizeof(line), "crash point %s (hit %" G_GUINT64_FORMAT "): SIGKILL\n",
		   name, hit);
	vc_crash_point_say(STDERR_FILENO, line);
	raise(SIGKILL);
	/* not reached: SIGKILL cannot be caught */
	_exit(137);
}

void
vc_crash_point(const char *name)
{
	guint64 hit;
	gboolean die;

	if (g_atomic_int_get(&vc_crash_state) == 1)
		return;
	g_mutex_lock(&vc_crash_lock);
	if (vc_crash_state == 0)
		vc_crash_point_read_env_locked();
	if (vc_crash_state == 1) {
		g_mutex_unlock(&vc_crash_lock);
		return;
	}
	hit = GPOINTER_TO_SIZE(g_hash_table_lookup(vc_crash_hits, name)) + 1;
	g_hash_table_replace(vc_crash_hits, g_strdup(name), GSIZE_TO_POINTER(hit));
	if (hit == 1 && vc_crash_trace != NULL) {
		int fd = open(vc_crash_trace, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0) {
			g_autofree char *line = g_strconcat(name, "\n", NULL);
			vc_crash_point_say(fd, line);
			close(fd);
		}
	}
	die =
	    (vc_crash_at != NULL && g_strcmp0(vc_crash_at, name) == 0 && hit == vc_crash_at_hit) ||
	    (vc_crash_rand != NULL && g_rand_double(vc_crash_rand) < vc_crash_random);
	if (die)
		vc_crash_point_die(name, hit);
	g_mutex_unlock(&vc_crash_lock);
}

#endif /* VC_TEST_SEAMS */
