/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "vc-ca.h"
#include "vc-config.h"
#include "vc-issuer.h"
#include "vc-metrics.h"
#include "vc-policy.h"
#include "vc-store.h"
#include "vc-placement.h"
#include "vc-virt.h"

G_BEGIN_DECLS

/* The engine: the one place where libvirt events, reconcile results, renewal
 * timers and control requests become decisions. Everything runs on the main
 * loop, so the decisions for one VM are applied in the order their inputs
 * arrived (one owner per VM). Per-VM state lives in the store's domains
 * table; the states, their moves and what a restart does in each are in
 * vc-engine-state.h and docs/state-machine.md, the decisions in
 * vc-engine-decide.h. */

typedef struct _VcEngine VcEngine;

/* Called for every decision, for `virtcert watch` and logs. DATA is borrowed. */
typedef void (*VcEngineNotifyFunc)(JsonNode *data, gpointer user_data);

/* CONFIG, STORE and CA are borrowed; POLICY is taken. */
VcEngine *vc_engine_new(const VcConfig *config, VcStore *store, VcCa *ca, VcPolicySet *policy);
void vc_engine_free(VcEngine *engine);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcEngine, vc_engine_free)

/* Borrows VIRT: its callbacks must call vc_engine_handle_*(). */
void vc_engine_set_virt(VcEngine *engine, VcVirt *virt);
/* Connects to libvirt at URI (the engine owns the connection and receives
 * its events; reconnects forever). The notify function sees
 * "libvirt-connected" and "libvirt-disconnected". */
void vc_engine_connect_libvirt(VcEngine *engine, const char *uri);
VcVirt *vc_engine_get_virt(VcEngine *engine);
void vc_engine_set_notify(VcEngine *engine, VcEngineNotifyFunc func, gpointer user_data);
/* Takes POLICY and re-evaluates every known VM. */
void vc_engine_set_policy(VcEngine *engine, VcPolicySet *policy);

/* Startup recovery (see above). */
gboolean vc_engine_recover(VcEngine *engine, GError **error);

/* Inputs from VcVirt. */
void vc_engine_handle_event(VcEngine *engine, const VcVirtEvent *event);
void vc_engine_handle_connected(VcEngine *engine);
void vc_engine_handle_disconnected(VcEngine *engine);
/* Compares libvirt's domain list with the store and acts on the difference. */
gboolean vc_engine_reconcile(VcEngine *engine, GError **error);

/* Control requests (the daemon's control socket). VM is a UUID or a name. */
JsonNode *vc_engine_get_status(VcEngine *engine);
JsonNode *vc_engine_list(VcEngine *engine, GError **error);
JsonNode *vc_engine_show(VcEngine *engine, const char *vm_or_serial, GError **error);
JsonNode *vc_engine_renew(VcEngine *engine, const char *vm, GError **error);
JsonNode *vc_engine_revoke(VcEngine *engine, const char *vm_or_serial, int reason, GError **error);
/* Manual issuance (`virtcert issue` while the daemon runs). */
JsonNode *vc_engine_issue_manual(VcEngine *engine, const VcIssueRequest *req, GError **error);
VcIssuer *vc_engine_get_issuer(VcEngine *engine);

/* The PEM chain (certificate + issuers) of VM_UUID's current certificate,
 * for the STAR-style /cert/<uuid> URL; VC_ERROR_NOT_FOUND without one. */
char *vc_engine_get_cert_chain(VcEngine *engine, const char *vm_uuid, GError **error);
/* Revocations so far (changes whenever a CRL would change). */
guint64 vc_engine_get_revocation_count(VcEngine *engine);
/* Prometheus text exposition of the engine's registry (its counters and
 * states, and whatever else registered there). */
char *vc_engine_get_metrics(VcEngine *engine);
/* The metrics registry the engine counts in (borrowed, lives as long as the
 * engine): the daemon and the HTTP side register their own families here. */
VcMetrics *vc_engine_get_metrics_registry(VcEngine *engine);

/* Who a peer API request comes from, all from its verified host
 * certificate (never from the request body). */
typedef struct {
	const char *fqdn;		/* its first dNSName */
	const char *fingerprint;	/* SHA-256 of the host certificate, lower-case hex */
	const VcHostIdentity *identity; /* host CAs and attributes, for placement */
} VcEnginePeer;

/* The destination of a migration announces it (the peer API, from its
 * hook's check, before memory moves): accepted when this host holds
 * certificate SERIAL for VM_UUID, the VM runs here, and PEER satisfies the
 * placement that certificate was issued under (as the store recorded it).
 * The announcement (PEER's certificate fingerprint, the time) replaces any
 * earlier one for the VM and is what a claim is matched against. Nothing
 * else changes. RET_REASON is always set. */
gboolean vc_engine_handle_announce(VcEngine *engine, const char *vm_uuid, const char *serial,
				   const VcEnginePeer *peer, char **ret_reason);
/* A destination's claim for VM_UUID (the peer API): accepted only when this
 * host's certificate for the VM is SERIAL, the VM no longer runs here and
 * migrated away (MIGRATING_OUT), PEER is the host certificate that announced
 * that migration (same fingerprint; the announcement was no older than
 * handover-grace when the VM left), and PEER satisfies the placement the
 * certificate was issued under; then our certificates are revoked as
 * superseded. A refused claim changes nothing (the grace period still ends
 * an unclaimed certificate as privilegeWithdrawn). RET_REASON is always
 * set. */
/* RET_NOT_YET (nullable) is set when the claim came from the announced host
 * but the VM has not left yet as far as this host saw (it still runs, or
 * STOPPED MIGRATED was not handled yet): the caller may judge it again
 * shortly (the claimant's request waits) before answering the refusal. */
gboolean vc_engine_handle_claim(VcEngine *engine, const char *vm_uuid, const char *serial,
				const VcEnginePeer *peer, gboolean *ret_not_yet, char **ret_reason);
/* `virtcert doctor`'s libvirt side: the connection, and for each running
 * VM a policy selects its guest agent channel and what the agent allows
 * (guest-info, asked on a worker thread). DONE runs on the main loop with
 * the result (borrowed): {"libvirt_uri", "libvirt_connected",
 * "libvirt_error", "vms": [{"uuid", "name", "policy", "agent_channel",
 * "agent_connected", "agent_answered", "file_only_possible",
 * "agent_problems": [...], "agent_error"}]}. */
typedef void (*VcEngineDoctorFunc)(JsonNode *result, gpointer user_data);
void vc_engine_doctor(VcEngine *engine, VcEngineDoctorFunc done, gpointer user_data);

/* Number of VMs with a queued issuance (benchmarks wait for zero). */
guint vc_engine_get_queue_length(VcEngine *engine);

#ifdef VC_TEST_SEAMS
/* The engine's clock (renewals, retries, grace deadlines, the host
 * certificate's checks) runs OFFSET_S seconds ahead of the real one (test
 * seam, -Dtest_seams=true only; 0 again ends it). Process-wide. */
void vc_engine_test_set_clock(gint64 offset_s);
#endif

G_END_DECLS
