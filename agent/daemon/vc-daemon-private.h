/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* virtcertd's state, shared by its main file and its control socket
 * methods (vc-daemon-methods.c, also linked into the fuzz target
 * fuzz-ipc-methods). */

#include <glib.h>

#include "vc-config.h"
#include "vc-crl-publisher.h"
#include "vc-daemon-fds.h"
#include "vc-daemon-publish.h"
#include "vc-engine.h"
#include "vc-http-server.h"
#include "vc-ipc-server.h"
#include "vc-ocsp.h"
#include "vc-placement-sig.h"
#include "vc-store.h"

G_BEGIN_DECLS

typedef struct {
	VcConfig *config;
	VcStore *store;
	VcCa *ca;
	VcEngine *engine;
	VcIpcServer *ipc;
	VcHttpServer *http;
	VcOcspResponder *ocsp;
	guint ocsp_presign_id;
	guint ocsp_refresh_id;
	VcDaemonFds fds;	    /* the connection caps that fit the descriptor limit */
	GThreadPool *announce_pool; /* announcements of migrations here */
	GList *peer_waiting;	    /* of VcDaemonPeerRequest: claims waiting to be judged */
	GMainLoop *loop;
	/* the CRL served over HTTP, rebuilt after revocations and as it ages */
	VcCrlPublisher *crl;
	VcDaemonHostCrl *host_crl;
	VcDaemonHostCache *host_cache; /* the hook's questions */
	/* [placement] owner-ca for the hook's question, read again when its
	 * files change; NULL until first needed or when none is configured */
	VcOwnerTrust *owner_trust;
} VcDaemon;

/* policy.d as the configuration names it; its warnings are logged. */
VcPolicySet *vc_daemon_load_policy(VcDaemon *daemon, GError **error);
/* Reads policy.d again and gives it to the engine; a refusal (logged) keeps
 * the previous policy in force. */
gboolean vc_daemon_reload(VcDaemon *daemon, GError **error);
/* Registers the control socket's methods (status, list, show, issue, renew,
 * revoke, reload, doctor, placement-check) on DAEMON->ipc. */
void vc_daemon_add_methods(VcDaemon *daemon);

G_END_DECLS
