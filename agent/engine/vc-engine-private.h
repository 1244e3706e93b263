/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The engine's insides, shared by its files (fwupd style):
 *   vc-engine.c           the object, the VM table, transitions, inputs
 *   vc-engine-evaluate.c  facts from one domain fetch, then decide and apply
 *   vc-engine-decide.c    the pure decision (no I/O)
 *   vc-engine-state.c     the states, their moves and recovery rules
 *   vc-engine-flush.c     issuance and revocation queues, group commit, effects
 *   vc-engine-jobs.c      blocking work on a thread pool (guest, metadata, claims)
 *   vc-engine-handover.c  claims from a migration's destination
 *   vc-engine-report.c    control requests, status and metrics */

#include "vc-crash-point.h"
#include "vc-engine-decide.h"
#include "vc-engine-state.h"
#include "vc-engine.h"
#include "vc-host.h"
#include "vc-placement-sig.h"

#define VC_ENGINE_BATCH 256
#define VC_ENGINE_TICK_MAX_S 60
#define VC_ENGINE_FLUSH_WINDOW_MS 5
#define VC_ENGINE_FLUSH_LATE_MS 30
/* Fairness between guests: one guest job per VM at a time (job_running),
 * each with a time budget (vc-guest.c's deadlines), and VMs whose last guest
 * work failed served by a pool of their own, so that hostile or broken
 * guests never hold the threads honest ones need. The main pool is large
 * enough that even a burst of new hostile guests, each holding a thread for
 * its budget, leaves threads free (threads here mostly wait on I/O). */
#define VC_ENGINE_JOB_THREADS 32
#define VC_ENGINE_SUSPECT_JOB_THREADS 4
#define VC_ENGINE_RETRY_MAX_S 300
/* a claim the issuer did not answer (unreachable, garbage, a timeout, a
 * refusal that may pass) is tried again after 1, 2, 4 ... 128 s (255 s in
 * all, past the issuer's default 60 s handover grace), then given up */
#define VC_ENGINE_CLAIM_RETRIES 8

/* A certificate decision waiting for the next flush. */
typedef struct {
	char *uuid;
	char *name;
	GStrv names;
	char *profile_key; /* vc_engine_profile_key(): what the row records once issued */
	VcKeyType key_type;
	EVP_PKEY *public_key; /* guest keygen: the key of the guest's CSR */
	gboolean awaits_csr;  /* guest keygen: not ready before public_key is set */
	gint64 lifetime_s;
	char *placement; /* canonical placement it is issued under (vc-placement.h) */
	char *why;
	gint64 queued_us; /* monotonic: when it was asked for (event-to-issued latency) */
} VcQueuedIssue;

typedef struct {
	char *serial;
	char *uuid;
	char *name;
	int reason;
	char *why;
} VcQueuedRevoke;

/* A certificate signed and applied to its VM whose commit failed: written
 * again by every transaction until one commits, then reported as issued
 * (vc-engine-flush.c) */
typedef struct {
	VcIssued *issued;
	VcQueuedIssue *q; /* what was asked for: the report once it is durable */
	gboolean renewal; /* it replaced a certificate the VM held */
} VcEngineUnstored;

/* One VM the engine has seen: its store row (once a policy selected it) and
 * what is remembered in memory only (a restart re-checks all of it). */
typedef struct {
	char *uuid;
	VcDomainRecord *row; /* NULL: never selected by a policy */
	VcDomainState state; /* row->state as an enum; written by vc_engine_vm_move() only */
	guint64 last_event_seq;
	gint64 stopped_migrated_at; /* a STOPPED MIGRATED was seen (unix s), else 0 */
	/* the delivery plan, from the last evaluation */
	gboolean deliverable; /* running, with a connected guest agent */
	gboolean has_agent;   /* the domain has a guest agent channel */
	VcKeyMode key_mode;
	VcKeyType key_type;
	char *cert_path;
	char *chain_path;
	char *key_path;
	char *owner;
	char *reload;
	VcPolicy *placement;	  /* placement as last resolved (NULL: unrestricted) */
	gboolean placement_known; /* the issuer judges claims with it */
	char *claim_peer;	  /* the issuer to claim the VM from, after a migration here */
	char *claim_serial;	  /* the issuer's certificate, named in the claim */
	gboolean claim_wanted;
	guint claim_failures;	  /* claims that got no answer (vc_engine_claim_retry()) */
	guint claim_retry_source; /* the next try, 0: none */
	/* the profile (vc_engine_profile_key()) the CA refused to issue as, for a
	 * reason that cannot pass on a retry (policy, names): not tried again
	 * until what policy gives changes */
	char *refused_profile;
	/* the issuer's side: the destination that announced a migration
	 * (vc-engine-handover.c) */
	char *announced_fingerprint; /* its host certificate's SHA-256 */
	char *announced_fqdn;
	char *announced_serial;
	gint64 announced_at; /* unix s, 0: none */
	/* guest work */
	gboolean job_running;
	gboolean check_wanted; /* agent (re)connected or guest restored: verify the files */
	gint64 retry_at;       /* no guest job before this (unix s) */
	/* no agent-connected event brings a retry forward before this (unix
	 * s): an agent that connects and disconnects on and on is backed off
	 * like one that fails */
	gint64 agent_reset_at;
} VcEngineVm;

/* Blocking work, run on the engine's thread pool, its result applied on the
 * main loop. */
typedef enum {
	VC_ENGINE_WORK_DELIVER,	 /* certificate, chain (and host-made key) into the guest */
	VC_ENGINE_WORK_CHECK,	 /* does the guest hold the current certificate? */
	VC_ENGINE_WORK_CSR,	 /* guest keygen: key and CSR made in the guest */
	VC_ENGINE_WORK_METADATA, /* record serial and peer URL in the domain's metadata */
	VC_ENGINE_WORK_CLAIM,	 /* after a migration here: claim the VM from its issuer */
} VcEngineWorkKind;

typedef struct _VcEngineWork VcEngineWork;

/* this host's certificate as last checked (vc-engine-host.c) */
typedef enum {
	VC_ENGINE_HOST_UNKNOWN, /* not looked at yet */
	VC_ENGINE_HOST_NONE,	/* none installed */
	VC_ENGINE_HOST_USABLE,
	VC_ENGINE_HOST_UNUSABLE, /* host_error says why: nothing is issued here */
} VcEngineHostState;

struct _VcEngine {
	const VcConfig *config;
#ifdef VC_TEST_SEAMS
	GFileMonitor *test_agent_monitor; /* vc_engine_test_agent_watch() */
#endif
	VcStore *store;
	VcCa *ca;
	VcIssuer *issuer;
	VcPolicySet *policy;
	VcVirt *virt;
	gboolean owns_virt;

	GHashTable *vms;	   /* uuid -> VcEngineVm */
	GHashTable *dirty;	   /* uuid set: rows to write at the next flush */
	GHashTable *issue_queue;   /* uuid -> VcQueuedIssue */
	GQueue issue_order;	   /* of uuid (owned by issue_queue's keys) */
	GPtrArray *revoke_queue;   /* of VcQueuedRevoke */
	GHashTable *revoke_set;	   /* serials in revoke_queue (borrowed) */
	GPtrArray *effects;	   /* of VcEngineWork: pushed once what decided them is durable */
	GHashTable *keys;	   /* serial -> private key PEM made on the host, until delivered */
	GThreadPool *pool;	   /* blocking work: the main loop never waits */
	GThreadPool *suspect_pool; /* guest work of VMs whose last guest work failed */
	VcEngine **self;    /* refcounted box work uses to find the engine (NULL once freed) */
	VcHost *host;	    /* this host's certificate, NULL if none is installed */
	GError *host_error; /* why the host certificate is not usable, if it is not */
	gint64 host_loaded_at;
	VcEngineHostState host_state;
	char *host_fp;		     /* SHA-256 of the host certificate last loaded */
	char *host_warned_fp;	     /* the one the 2/3-life warning was given for */
	guint host_source;	     /* the next look: crl-refresh, expiry, 2/3 of the life */
	guint host_reconcile_source; /* everything evaluated again after a change */
	gboolean host_crl_fetching;  /* [host] crl-url: a fetch is under way */
	VcOwnerTrust *owner_trust;   /* [placement] owner-ca, NULL: none configured */
	guint flush_source;
	gint64 flush_due_us;  /* monotonic: when the pending flush's window ends */
	guint flush_failures; /* flushes in a row the store refused (backoff) */
	char *store_error;    /* why the last flush failed, NULL once one succeeds */
	GPtrArray
	    *unstored; /* of VcEngineUnstored: applied, their commit failed (vc-engine-flush.c) */
	guint tick_source;
	guint reconcile_source;
	guint64 seq;

	VcEngineNotifyFunc notify;
	gpointer notify_data;

	/* counters for status and metrics */
	guint64 n_events;
	guint64 n_issued;
	guint64 n_revoked;
	guint64 n_failed;
	guint64 n_reload_failed;
	guint64 n_reconciles;
	gint64 last_reconcile_at;
	gboolean connected;

	/* the metrics registry (vc-engine-report.c) and the engine's families */
	VcMetrics *metrics;
	VcMetric *m_issued;	       /* virtcert_certificates_issued_total */
	VcMetric *m_renewed;	       /* virtcert_certificates_renewed_total */
	VcMetric *m_revoked;	       /* virtcert_certificates_revoked_total{reason} */
	VcMetric *m_deliveries;	       /* virtcert_deliveries_total */
	VcMetric *m_delivery_failures; /* virtcert_delivery_failures_total */
	VcMetric *m_delivery_seconds;  /* virtcert_delivery_duration_seconds */
	VcMetric *m_issue_seconds;     /* virtcert_issue_latency_seconds */
};

/* vc-engine.c */
G_GNUC_PRINTF(6, 7)
void vc_engine_log(GLogLevelFlags level, const char *event, const char *uuid, const char *name,
		   const char *serial, const char *fmt, ...);
void vc_engine_emit(VcEngine *engine, const char *event, const char *uuid, const char *name,
		    const char *serial, const char *detail);
gint64 vc_engine_now(void);
VcEngineVm *vc_engine_vm(VcEngine *engine, const char *uuid);
VcEngineVm *vc_engine_vm_lookup(VcEngine *engine, const char *uuid);
VcDomainRecord *vc_engine_vm_ensure_row(VcEngine *engine, VcEngineVm *vm, const char *name);
void vc_engine_vm_set_name(VcEngine *engine, VcEngineVm *vm, const char *name);
void vc_engine_vm_mark_dirty(VcEngine *engine, VcEngineVm *vm);
gboolean vc_engine_vm_move(VcEngine *engine, VcEngineVm *vm, VcDomainState to,
			   const char *error_msg);
gboolean vc_engine_queue_revoke(VcEngine *engine, const char *serial, const char *uuid,
				const char *name, int reason, const char *why);
guint vc_engine_vm_retire(VcEngine *engine, VcEngineVm *vm, const char *keep, int reason,
			  const char *why);
void vc_engine_vm_succeeded(VcEngine *engine, VcEngineVm *vm);
const char *vc_engine_get_store_error(VcEngine *engine);
void vc_engine_vm_fail(VcEngine *engine, VcEngineVm *vm, const char *what, const char *why,
		       gint64 retry_at);
VcEngineVm *vc_engine_find_vm(VcEngine *engine, const char *vm_or_name);
void vc_engine_schedule_tick(VcEngine *engine);

/* vc-engine-evaluate.c */
void vc_engine_evaluate(VcEngine *engine, const char *uuid, const VcEngineInput *input,
			const char *why);
gint64 vc_engine_renew_at(const VcEngine *engine, const VcCertRecord *rec);
gboolean vc_engine_cert_pems(VcEngine *engine, const char *serial, char **ret_cert,
			     char **ret_chain, GError **error);

/* vc-engine-host.c */
void vc_engine_host_refresh(VcEngine *engine, gboolean force);
gboolean vc_engine_host_allows(VcEngine *engine, const VcPolicy *policy, gboolean *ret_withdraw,
			       GError **error);
/* FALSE (the reason in ERROR) while this host's certificate is installed
 * but not usable: then nothing is issued here, whatever the VM's placement,
 * by decision, renewal, hand or queue */
gboolean vc_engine_host_may_issue(VcEngine *engine, GError **error);
void vc_engine_host_status(VcEngine *engine, JsonBuilder *b);
void vc_engine_host_metrics_init(VcEngine *engine);
void vc_engine_host_clear(VcEngine *engine);
/* vc-engine-host-crl.c: FALSE when no [host] crl-url is set; else the fetch
 * runs (or already ran) and checks the host certificate again when done */
gboolean vc_engine_host_crl_fetch(VcEngine *engine);

/* vc-engine-flush.c */
void vc_engine_schedule_flush(VcEngine *engine);
void vc_engine_flush_if_due(VcEngine *engine);
void vc_engine_cancel_issue(VcEngine *engine, const char *uuid);
VcQueuedIssue *vc_engine_queue_issue(VcEngine *engine, const char *uuid);
gboolean vc_engine_flush_revocations(VcEngine *engine, GError **error);
void vc_engine_run_effects(VcEngine *engine);
void vc_queued_issue_free(VcQueuedIssue *q);
void vc_engine_unstored_free(VcEngineUnstored *u);
void vc_queued_revoke_free(VcQueuedRevoke *q);

/* vc-engine-report.c */
void vc_engine_metrics_init(VcEngine *engine);

/* vc-engine-jobs.c */
void vc_engine_start_work(VcEngine *engine, VcEngineVm *vm, VcEngineWorkKind kind);
void vc_engine_work_push(VcEngine *engine, VcEngineWork *work);
void vc_engine_work_free(VcEngineWork *work);
#ifdef VC_TEST_SEAMS
/* DIR/NAME.sock with VC_TEST_GUEST_AGENT_DIR=DIR set, else NULL */
char *vc_engine_test_agent_socket(const char *name);
/* agent-connected and -disconnected events as sockets appear and vanish in
 * VC_TEST_GUEST_AGENT_DIR (what libvirt reports of a real guest's agent) */
void vc_engine_test_agent_watch(VcEngine *engine);
#endif
