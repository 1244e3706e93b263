/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The daemon's descriptors: what it keeps for its own work, and how many
 * connections each listener may hold, so that a flood on one listener
 * never leaves the control socket (and the hook's questions on it), the
 * store or libvirt without a descriptor. */

#include <glib.h>

G_BEGIN_DECLS

/* Kept for everything but connections: libvirt, the store, guest channels,
 * files read per request, a socket accepted only to be refused, GLib's
 * wakeups and worker threads. */
#define VC_DAEMON_FDS_WORK 64

typedef struct {
	guint64 limit; /* RLIMIT_NOFILE (soft) after raising it */
	guint in_use;  /* open when the plan was made */
	guint control; /* connection caps */
	guint http;
	guint peer;
} VcDaemonFds;

/* Raises the soft RLIMIT_NOFILE to the hard limit, counts the descriptors
 * open now and splits what is left, after VC_DAEMON_FDS_WORK, between the
 * wanted caps (a WANT_ of 0: that listener is off): the control socket
 * first (up to a quarter), then the peer API (up to a quarter of the rest)
 * and HTTP. A cap lowered to fit is said once in the log. Fails with
 * VC_ERROR_USAGE when the limit leaves no room for one connection each. */
gboolean vc_daemon_fds_plan(guint want_control, guint want_http, guint want_peer,
			    VcDaemonFds *ret_plan, GError **error);

/* The split alone, for LIMIT descriptors of which IN_USE are open. */
gboolean vc_daemon_fds_split(guint64 limit, guint in_use, guint want_control, guint want_http,
			     guint want_peer, VcDaemonFds *ret_plan, GError **error);

G_END_DECLS
