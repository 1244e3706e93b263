/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <sys/resource.h>

#include "vc-daemon-fds.h"
#include "vc-error.h"

/* open descriptors of this process (the one that reads the list is not
 * counted); a guess when /proc is not there */
static guint
vc_daemon_fds_count_open(void)
{
	g_autoptr(GDir) dir = g_dir_open("/proc/self/fd", 0, NULL);
	guint n = 0;

	if (dir == NULL)
		return 32;
	while (g_dir_read_name(dir) != NULL)
		n++;
	return n > 0 ? n - 1 : 0;
}

gboolean
vc_daemon_fds_split(guint64 limit, guint in_use, guint want_control, guint want_http,
		    guint want_peer, VcDaemonFds *ret_plan, GError **error)
{
	guint needed = (want_control > 0) + (want_http > 0) + (want_peer > 0);
	guint64 reserved = (guint64)in_use + VC_DAEMON_FDS_WORK;
	guint64 left;
	VcDaemonFds plan = {.limit = limit, .in_use = in_use};

	if (limit < reserved + needed) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
			    "the descriptor limit (RLIMIT_NOFILE) is %" G_GUINT64_FORMAT
			    ", too low: %u are open and %d are kept for the daemon's work, which "
			    "leaves no room for connections; raise it (LimitNOFILE= in the unit) "
			    "to at least %" G_GUINT64_FORMAT,
			    limit, in_use, VC_DAEMON_FDS_WORK,
			    reserved + want_control + want_http + want_peer);
		return FALSE;
	}
	left = limit - reserved;
	if (want_control > 0)
		plan.control = (guint)MIN((guint64)want_control, MAX(left / 4, 1));
	left -= plan.control;
	if (want_peer > 0)
		plan.peer = (guint)MIN((guint64)want_peer, MAX(left / 4, 1));
	left -= plan.peer;
	if (want_http > 0)
		plan.http = (guint)MIN((guint64)want_http, left);
	*ret_plan = plan;
	return TRUE;
}

gboolean
vc_daemon_fds_plan(guint want_control, guint want_http, guint want_peer, VcDaemonFds *ret_plan,
		   GError **error)
{
	struct rlimit rl;
	VcDaemonFds plan;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot read RLIMIT_NOFILE: %s",
			    g_strerror(errno));
		return FALSE;
	}
	/* GLib and libvirt poll(), nothing here uses select(): the hard limit
	 * is safe to use in full */
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit raised = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};

		if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
			rl.rlim_cur = rl.rlim_max;
		else
			g_debug("cannot raise RLIMIT_NOFILE to %" G_GUINT64_FORMAT ": %s",
				(guint64)rl.rlim_max, g_strerror(errno));
	}
	if (!vc_daemon_fds_split((guint64)rl.rlim_cur, vc_daemon_fds_count_open(), want_control,
				 want_http, want_peer, &plan, error))
		return FALSE;
	if (plan.control < want_control || plan.http < want_http || plan.peer < want_peer)
		g_message("descriptor limit %" G_GUINT64_FORMAT " (%u open, %d kept for work): "
			  "connections capped at %u control (wanted %u), %u HTTP (wanted %u), "
			  "%u peer (wanted %u); raise LimitNOFILE for more",
			  plan.limit, plan.in_use, VC_DAEMON_FDS_WORK, plan.control, want_control,
			  plan.http, want_http, plan.peer, want_peer);
	else
		g_debug("descriptor limit %" G_GUINT64_FORMAT " (%u open): connections capped at "
			"%u control, %u HTTP, %u peer",
			plan.limit, plan.in_use, plan.control, plan.http, plan.peer);
	*ret_plan = plan;
	return TRUE;
}
