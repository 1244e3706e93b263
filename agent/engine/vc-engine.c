/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-engine.h"

#include <stdarg.h>

#include "vc-domain-xml.h"
#include "vc-error.h"
#include "vc-guest.h"
#include "vc-host.h"
#include "vc-peer-client.h"
#include "vc-placement.h"
#include "vc-store-json.h"

#define VC_ENGINE_BATCH 256
#define VC_ENGINE_TICK_MAX_S 60
#define VC_ENGINE_FLUSH_WINDOW_MS 5
#define VC_ENGINE_GUEST_THREADS 8
#define VC_ENGINE_RETRY_MAX_S 300
/* next_action_at meaning "renew at the next evaluation" */
#define VC_ENGINE_RENEW_NOW 1

/* A certificate decision waiting for the next flush. */
typedef struct {
	char *uuid;
	char *name;
	GStrv names;
	VcKeyType key_type;
	EVP_PKEY *public_key; /* guest keygen: the key of the guest's CSR */
	gboolean awaits_csr;  /* guest keygen: not ready before public_key is set */
	gint64 lifetime_s;
	char *why;
} VcQueuedIssue;

typedef struct {
	char *serial;
	char *uuid;
	char *name;
	int reason;
	char *why;
} VcQueuedRevoke;

/* What the engine remembers per VM besides its store row. */
typedef struct {
	guint64 last_event_seq;
	gint64 stopped_migrated_at; /* a STOPPED MIGRATED was seen (unix s), else 0 */
	/* the delivery plan, from the last evaluation */
	gboolean deliverable; /* running, with a guest agent channel */
	gboolean has_agent;   /* the domain has a guest agent channel */
	VcKeyMode key_mode;
	VcKeyType key_type;
	char *cert_path;
	char *chain_path;
	char *key_path;
	char *owner;
	char *reload;
	VcPolicy *policy;      /* placement as last resolved (NULL: unrestricted) */
	gboolean policy_known; /* the issuer judges claims with it */
	char *claim_peer;      /* the issuer to claim the VM from, after a migration here */
	gboolean claim_wanted;
	/* delivery state (not persisted: a restart re-checks) */
	gboolean job_running;
	gboolean check_wanted; /* agent (re)connected or guest restored: verify the files */
	gint64 retry_at;       /* no guest job before this (unix s) */
} VcVmMemo;

typedef enum {
	VC_GUEST_JOB_DELIVER,
	VC_GUEST_JOB_CHECK,
	VC_GUEST_JOB_CSR,
	VC_GUEST_JOB_METADATA, /* record serial and peer URL in the domain's metadata */
	VC_GUEST_JOB_CLAIM,    /* after a migration: claim the VM from its issuer */
} VcGuestJobKind;

static void vc_engine_start_guest_job(VcEngine *engine, VcDomainRecord *row, VcVmMemo *memo,
				      VcGuestJobKind kind);
static void vc_engine_remember_policy(VcEngine *engine, const char *uuid, VcPolicy *policy);
static void vc_engine_begin_handover(VcEngine *engine, const char *uuid, const char *name);
static void vc_engine_expire_handover(VcEngine *engine, VcDomainRecord *row);

static void
vc_vm_memo_free(VcVmMemo *memo)
{
	g_free(memo->cert_path);
	g_free(memo->chain_path);
	g_free(memo->key_path);
	g_free(memo->owner);
	g_free(memo->reload);
	g_clear_pointer(&memo->policy, vc_policy_free);
	g_free(memo->claim_peer);
	g_free(memo);
}

struct _VcEngine {
	const VcConfig *config;
	VcStore *store;
	VcCa *ca;
	VcIssuer *issuer;
	VcPolicySet *policy;
	VcVirt *virt;

	GHashTable *rows;	 /* uuid -> VcDomainRecord (the store's rows, cached) */
	GHashTable *memos;	 /* uuid -> VcVmMemo */
	GHashTable *dirty;	 /* uuid set: rows to write at the next flush */
	GHashTable *issue_queue; /* uuid -> VcQueuedIssue */
	GQueue issue_order;	 /* of uuid (owned by issue_queue's keys) */
	GPtrArray *revoke_queue; /* of VcQueuedRevoke */
	GHashTable *keys;	 /* serial -> private key PEM made on the host, until delivered */
	GThreadPool *guest_pool; /* guest agent jobs: they block, the main loop never does */
	VcEngine **self;	 /* refcounted box jobs use to find the engine (NULL once freed) */
	VcHost *host;		 /* this host's certificate, NULL if none is installed */
	GError *host_error;	 /* why the host certificate is not usable, if it is not */
	gint64 host_loaded_at;
	guint flush_source;
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
	guint64 n_reconciles;
	gint64 last_reconcile_at;
	gboolean connected;
};

static void vc_engine_schedule_flush(VcEngine *engine);
static void vc_engine_schedule_tick(VcEngine *engine);

static void
vc_queued_issue_free(VcQueuedIssue *q)
{
	g_free(q->uuid);
	g_free(q->name);
	g_strfreev(q->names);
	EVP_PKEY_free(q->public_key);
	g_free(q->why);
	g_free(q);
}

static void
vc_queued_revoke_free(VcQueuedRevoke *q)
{
	g_free(q->serial);
	g_free(q->uuid);
	g_free(q->name);
	g_free(q->why);
	g_free(q);
}

/* journald fields VM_UUID, VM_NAME, SERIAL, EVENT beside the message */
G_GNUC_PRINTF(6, 7)
static void
vc_engine_log(GLogLevelFlags level, const char *event, const char *uuid, const char *name,
	      const char *serial, const char *fmt, ...)
{
	g_autofree char *msg = NULL;
	const char *priority = level & G_LOG_LEVEL_WARNING   ? "4"
			       : level & G_LOG_LEVEL_MESSAGE ? "5"
			       : level & G_LOG_LEVEL_INFO    ? "6"
							     : "7";
	va_list ap;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	{
		const GLogField fields[] = {
		    {"MESSAGE", msg, -1},
		    {"PRIORITY", priority, -1},
		    {"GLIB_DOMAIN", G_LOG_DOMAIN, -1},
		    {"EVENT", event != NULL ? event : "", -1},
		    {"VM_UUID", uuid != NULL ? uuid : "", -1},
		    {"VM_NAME", name != NULL ? name : "", -1},
		    {"SERIAL", serial != NULL ? serial : "", -1},
		};
		g_log_structured_array(level, fields, G_N_ELEMENTS(fields));
	}
}

static void
vc_engine_emit(VcEngine *engine, const char *event, const char *uuid, const char *name,
	       const char *serial, const char *detail)
{
	g_autoptr(JsonBuilder) b = NULL;
	g_autoptr(JsonNode) node = NULL;
	g_autofree char *now = NULL;

	if (engine->notify == NULL)
		return;
	b = json_builder_new();
	now = vc_time_to_string(g_get_real_time() / G_USEC_PER_SEC);
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "time");
	json_builder_add_string_value(b, now);
	json_builder_set_member_name(b, "event");
	json_builder_add_string_value(b, event);
	json_builder_set_member_name(b, "vm_uuid");
	json_builder_add_string_value(b, uuid);
	json_builder_set_member_name(b, "vm_name");
	json_builder_add_string_value(b, name);
	json_builder_set_member_name(b, "serial");
	json_builder_add_string_value(b, serial);
	json_builder_set_member_name(b, "detail");
	json_builder_add_string_value(b, detail);
	json_builder_end_object(b);
	node = json_builder_get_root(b);
	engine->notify(node, engine->notify_data);
}

VcEngine *
vc_engine_new(const VcConfig *config, VcStore *store, VcCa *ca, VcPolicySet *policy)
{
	VcEngine *engine = g_new0(VcEngine, 1);

	engine->config = config;
	engine->store = store;
	engine->ca = ca;
	engine->issuer = vc_issuer_new(config, ca, store);
	engine->policy = policy != NULL ? policy : vc_policy_set_new();
	engine->rows = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					     (GDestroyNotify)vc_domain_record_free);
	engine->memos =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)vc_vm_memo_free);
	engine->self = g_atomic_rc_box_new(VcEngine *);
	*engine->self = engine;
	engine->keys =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)vc_secret_free);
	engine->dirty = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	engine->issue_queue = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
						    (GDestroyNotify)vc_queued_issue_free);
	g_queue_init(&engine->issue_order);
	engine->revoke_queue =
	    g_ptr_array_new_with_free_func((GDestroyNotify)vc_queued_revoke_free);
	return engine;
}

void
vc_engine_free(VcEngine *engine)
{
	if (engine == NULL)
		return;
	g_clear_handle_id(&engine->flush_source, g_source_remove);
	g_clear_handle_id(&engine->tick_source, g_source_remove);
	g_clear_handle_id(&engine->reconcile_source, g_source_remove);
	g_queue_clear_full(&engine->issue_order, g_free);
	g_hash_table_unref(engine->issue_queue);
	g_ptr_array_unref(engine->revoke_queue);
	g_hash_table_unref(engine->dirty);
	if (engine->guest_pool != NULL)
		g_thread_pool_free(engine->guest_pool, TRUE, TRUE);
	/* completions still queued on the main loop find no engine */
	*engine->self = NULL;
	g_atomic_rc_box_release(engine->self);
	g_hash_table_unref(engine->memos);
	g_hash_table_unref(engine->keys);
	g_hash_table_unref(engine->rows);
	vc_policy_set_free(engine->policy);
	vc_issuer_free(engine->issuer);
	g_clear_pointer(&engine->host, vc_host_free);
	g_clear_error(&engine->host_error);
	g_free(engine);
}

void
vc_engine_set_virt(VcEngine *engine, VcVirt *virt)
{
	engine->virt = virt;
}

void
vc_engine_set_notify(VcEngine *engine, VcEngineNotifyFunc func, gpointer user_data)
{
	engine->notify = func;
	engine->notify_data = user_data;
}

VcIssuer *
vc_engine_get_issuer(VcEngine *engine)
{
	return engine->issuer;
}

guint
vc_engine_get_queue_length(VcEngine *engine)
{
	return g_hash_table_size(engine->issue_queue) + engine->revoke_queue->len;
}

static VcVmMemo *
vc_engine_memo(VcEngine *engine, const char *uuid)
{
	VcVmMemo *memo = g_hash_table_lookup(engine->memos, uuid);
	if (memo == NULL) {
		memo = g_new0(VcVmMemo, 1);
		g_hash_table_insert(engine->memos, g_strdup(uuid), memo);
	}
	return memo;
}

/* The cached row of UUID, created (state "NEW") when CREATE. */
static VcDomainRecord *
vc_engine_row(VcEngine *engine, const char *uuid, const char *name, gboolean create)
{
	VcDomainRecord *row = g_hash_table_lookup(engine->rows, uuid);
	if (row == NULL && create) {
		row = g_new0(VcDomainRecord, 1);
		row->uuid = g_strdup(uuid);
		row->generation = 1;
		row->state = g_strdup("NEW");
		g_hash_table_insert(engine->rows, row->uuid, row);
	}
	if (row != NULL && name != NULL && g_strcmp0(row->name, name) != 0) {
		g_free(row->name);
		row->name = g_strdup(name);
		g_hash_table_add(engine->dirty, g_strdup(uuid));
	}
	return row;
}

static void
vc_engine_row_set(VcEngine *engine, VcDomainRecord *row, const char *state, const char *error_msg)
{
	gboolean changed = FALSE;

	if (g_strcmp0(row->state, state) != 0) {
		g_free(row->state);
		row->state = g_strdup(state);
		changed = TRUE;
	}
	if (g_strcmp0(row->last_error, error_msg) != 0) {
		g_free(row->last_error);
		row->last_error = g_strdup(error_msg);
		changed = TRUE;
	}
	if (error_msg == NULL && row->failures != 0) {
		row->failures = 0;
		changed = TRUE;
	}
	if (changed) {
		row->updated_at = g_get_real_time() / G_USEC_PER_SEC;
		g_hash_table_add(engine->dirty, g_strdup(row->uuid));
		vc_engine_schedule_flush(engine);
	}
}

static void
vc_engine_cancel_issue(VcEngine *engine, const char *uuid)
{
	GList *link = g_queue_find_custom(&engine->issue_order, uuid, (GCompareFunc)g_strcmp0);
	if (link != NULL) {
		g_free(link->data);
		g_queue_delete_link(&engine->issue_order, link);
	}
	g_hash_table_remove(engine->issue_queue, uuid);
}

/* Queues the revocation of every live certificate of ROW's VM (except KEEP). */
static guint
vc_engine_queue_revoke_all(VcEngine *engine, VcDomainRecord *row, const char *keep, int reason,
			   const char *why)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) certs = vc_store_cert_list(engine->store, row->uuid, &error);
	guint n = 0;

	if (certs == NULL) {
		vc_engine_log(G_LOG_LEVEL_WARNING, "revoke", row->uuid, row->name, NULL,
			      "cannot list certificates of VM %s: %s", row->name, error->message);
		return 0;
	}
	for (guint i = 0; i < certs->len; i++) {
		VcCertRecord *rec = g_ptr_array_index(certs, i);
		VcQueuedRevoke *q;
		gboolean queued = FALSE;
		if (rec->status != VC_CERT_STATUS_VALID && rec->status != VC_CERT_STATUS_PENDING)
			continue;
		if (g_strcmp0(rec->serial, keep) == 0)
			continue;
		for (guint j = 0; j < engine->revoke_queue->len && !queued; j++) {
			VcQueuedRevoke *other = g_ptr_array_index(engine->revoke_queue, j);
			queued = g_strcmp0(other->serial, rec->serial) == 0;
		}
		if (queued)
			continue;
		q = g_new0(VcQueuedRevoke, 1);
		q->serial = g_strdup(rec->serial);
		q->uuid = g_strdup(row->uuid);
		q->name = g_strdup(row->name);
		q->reason = reason;
		q->why = g_strdup(why);
		g_ptr_array_add(engine->revoke_queue, q);
		n++;
	}
	if (n > 0)
		vc_engine_schedule_flush(engine);
	return n;
}

/* The end of a VM's life: revoke, and the next definition is a new generation. */
static void
vc_engine_end_life(VcEngine *engine, const char *uuid, int reason, const char *why)
{
	VcDomainRecord *row = vc_engine_row(engine, uuid, NULL, FALSE);

	vc_engine_cancel_issue(engine, uuid);
	if (row == NULL || g_strcmp0(row->state, "REVOKED") == 0)
		return;
	vc_engine_row_set(engine, row, "REVOKING", NULL);
	vc_engine_queue_revoke_all(engine, row, NULL, reason, why);
	g_clear_pointer(&row->current_serial, g_free);
	g_clear_pointer(&row->names_key, g_free);
	row->next_action_at = 0;
	vc_engine_log(G_LOG_LEVEL_MESSAGE, "end-of-life", uuid, row->name, NULL,
		      "VM %s: %s; revoking its certificates (%s)", row->name ? row->name : uuid,
		      why, vc_reason_to_string(reason));
}

static void
vc_engine_fail(VcEngine *engine, VcDomainRecord *row, const char *what, const GError *error)
{
	g_autofree char *msg = g_strdup_printf("%s: %s", what, error->message);
	gboolean repeated =
	    g_strcmp0(row->state, "FAILED") == 0 && g_strcmp0(row->last_error, msg) == 0;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;

	engine->n_failed++;
	row->failures++;
	/* retried with backoff (a host certificate or policy may be fixed meanwhile) */
	row->next_action_at = now + MIN((gint64)1 << MIN(row->failures, 16), VC_ENGINE_RETRY_MAX_S);
	vc_engine_row_set(engine, row, "FAILED", msg);
	g_hash_table_add(engine->dirty, g_strdup(row->uuid));
	vc_engine_schedule_flush(engine);
	if (repeated)
		return; /* said once is enough */
	vc_engine_log(G_LOG_LEVEL_WARNING, "failed", row->uuid, row->name, NULL, "VM %s: %s",
		      row->name ? row->name : row->uuid, msg);
	vc_engine_emit(engine, "failed", row->uuid, row->name, NULL, msg);
}

/* Renewal at 2/3 of the life (counted from issuance, not from the
 * backdated notBefore), with jitter of up to 1/30 of the life either side,
 * derived from the serial so that it is stable across restarts. */
static gint64
vc_engine_renew_at(const VcEngine *engine, const VcCertRecord *rec)
{
	gint64 start =
	    rec->created_at > 0 ? rec->created_at : rec->not_before + engine->config->backdate_s;
	gint64 life = MAX(rec->not_after - start, 1);
	gint64 span = MAX(life / 15, 1);
	guint h = g_str_hash(rec->serial);
	return start + life * 2 / 3 + (gint64)(h % (guint)span) - span / 2;
}

/* This host's certificate, reloaded and re-checked at most once a minute so
 * that a new certificate or CRL counts without a restart. */
#define VC_ENGINE_HOST_RECHECK_S 60

static void
vc_engine_refresh_host(VcEngine *engine)
{
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	g_autoptr(GError) error = NULL;

	if (engine->host_loaded_at != 0 && now - engine->host_loaded_at < VC_ENGINE_HOST_RECHECK_S)
		return;
	engine->host_loaded_at = now;
	g_clear_pointer(&engine->host, vc_host_free);
	g_clear_error(&engine->host_error);
	engine->host = vc_host_load(engine->config, &error);
	if (engine->host == NULL) {
		/* none installed: only VMs that restrict placement are refused */
		if (!g_error_matches(error, VC_ERROR, VC_ERROR_NOT_FOUND))
			engine->host_error = g_steal_pointer(&error);
		return;
	}
	if (!vc_host_check(engine->host, &error)) {
		engine->host_error = g_steal_pointer(&error);
		vc_engine_log(
		    G_LOG_LEVEL_WARNING, "host-certificate", NULL, NULL, NULL,
		    "this host's certificate is not usable, no VM is issued a certificate: %s",
		    engine->host_error->message);
	}
}

/* May this host hold a certificate for a VM with POLICY? */
static gboolean
vc_engine_host_allows(VcEngine *engine, const VcPolicy *policy, GError **error)
{
	g_autofree char *reason = NULL;

	vc_engine_refresh_host(engine);
	if (engine->host_error != NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "this host's certificate is not usable: %s",
			    engine->host_error->message);
		return FALSE;
	}
	if (!vc_host_placement_decide(engine->host, policy, &reason)) {
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY, "placement: %s", reason);
		return FALSE;
	}
	return TRUE;
}

/* Level-triggered: compares what libvirt and policy say now for UUID with
 * the row and queues what is needed. KNOWN may carry the domain (with or
 * without XML) from a listing. */
static void
vc_engine_evaluate(VcEngine *engine, const char *uuid, const VcVirtDomain *known, const char *why)
{
	g_autoptr(VcVirtDomain) fetched = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(VcDomainInfo) info = NULL;
	g_autoptr(VcPolicy) policy = NULL;
	g_autoptr(VcCertRecord) cur = NULL;
	g_auto(GStrv) names = NULL;
	g_autofree char *names_key = NULL;
	const VcVirtDomain *dom = known;
	VcDomainRecord *row;
	VcNameVars vars;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	const VcPolicy *pol;
	gboolean need, cur_ok, renew_due;

	if (engine->virt == NULL)
		return;
	if (dom == NULL || dom->xml == NULL) {
		fetched = vc_virt_get_domain(engine->virt, uuid, TRUE, &error);
		if (fetched == NULL) {
			if (g_error_matches(error, VC_ERROR, VC_ERROR_NOT_FOUND))
				vc_engine_end_life(engine, uuid, VC_REASON_CESSATION_OF_OPERATION,
						   "the domain no longer exists");
			else
				vc_engine_log(G_LOG_LEVEL_WARNING, "evaluate", uuid, NULL, NULL,
					      "VM %s: cannot read its definition (%s); the next "
					      "reconcile retries",
					      uuid, error->message);
			return;
		}
		dom = fetched;
	}
	row = vc_engine_row(engine, uuid, NULL, FALSE);
	if (row != NULL && !dom->active &&
	    (g_strcmp0(row->state, "MIGRATING_OUT") == 0 ||
	     g_strcmp0(row->state, "HANDED_OVER") == 0))
		return; /* it runs elsewhere now: the handover decides */

	info = vc_domain_info_parse(dom->xml, -1, &error);
	if (info == NULL) {
		row = vc_engine_row(engine, uuid, dom->name, TRUE);
		vc_engine_fail(engine, row, "domain XML refused", error);
		return;
	}
	policy = vc_domain_info_resolve_policy(info, engine->policy, engine->config->issue_all,
					       NULL, engine->config->default_lifetime_s, &error);
	row = vc_engine_row(engine, uuid, dom->name, policy != NULL || error != NULL);
	if (error != NULL) {
		vc_engine_fail(engine, row, "policy refused", error);
		return;
	}
	if (policy == NULL) {
		/* not (or no longer) selected by any policy */
		if (row != NULL && row->current_serial != NULL)
			vc_engine_end_life(engine, uuid, VC_REASON_PRIVILEGE_WITHDRAWN,
					   "no policy selects the VM any more");
		return;
	}
	{
		VcVmMemo *memo = vc_engine_memo(engine, uuid);
		/* the issuer of a VM that migrated here, to claim it from */
		if (info->issuer_peer != NULL &&
		    g_strcmp0(info->issuer_peer, engine->config->peer_url) != 0) {
			g_free(memo->claim_peer);
			memo->claim_peer = g_strdup(info->issuer_peer);
		}
	}
	vc_domain_info_get_name_vars(info, &vars);
	names = vc_name_expand_all((const char *const *)policy->names, &vars, &error);
	if (names == NULL) {
		vc_engine_fail(engine, row, "names refused", error);
		return;
	}
	if (!vc_ca_check_names(engine->ca, (const char *const *)names, &error)) {
		vc_engine_fail(engine, row, "names refused", error);
		return;
	}
	names_key = g_strjoinv(",", names);
	if (!vc_engine_host_allows(engine, policy, &error)) {
		/* a VM outside its owner's placement holds no certificate here */
		if (row->current_serial != NULL) {
			vc_engine_queue_revoke_all(engine, row, NULL, VC_REASON_PRIVILEGE_WITHDRAWN,
						   error->message);
			g_clear_pointer(&row->current_serial, g_free);
			row->next_action_at = 0;
		}
		vc_engine_cancel_issue(engine, uuid);
		vc_engine_fail(engine, row, "refused on this host", error);
		return;
	}

	if (g_strcmp0(row->state, "REVOKED") == 0) {
		/* the same UUID again after the end of a life: a new generation */
		row->generation++;
		vc_engine_row_set(engine, row, "NEW", NULL);
		g_hash_table_add(engine->dirty, g_strdup(uuid));
	}
	if (row->current_serial != NULL) {
		cur = vc_store_cert_get(engine->store, row->current_serial, NULL);
		if (cur != NULL && (cur->status != VC_CERT_STATUS_VALID || cur->not_after <= now))
			g_clear_pointer(&cur, vc_cert_record_free);
	}
	cur_ok = cur != NULL && g_strcmp0(row->names_key, names_key) == 0;

	/* the delivery plan: where and how, as policy says now */
	{
		VcVmMemo *memo = vc_engine_memo(engine, uuid);
		/* deliver once the agent in the guest answers (the live XML says so;
		 * AGENT_CONNECTED re-evaluates) */
		memo->deliverable =
		    dom->active && info->has_guest_agent && info->guest_agent_connected;
		memo->has_agent = info->has_guest_agent;
		memo->key_mode = policy->key_mode;
		memo->key_type = policy->key_type;
		/* paths only where a delivery can happen: thousands of VMs
		 * without an agent channel need none of them */
		g_free(memo->cert_path);
		memo->cert_path = memo->has_agent ? g_strdup(policy->cert_path) : NULL;
		g_free(memo->chain_path);
		memo->chain_path = memo->has_agent ? g_strdup(policy->chain_path) : NULL;
		g_free(memo->key_path);
		memo->key_path = memo->has_agent ? g_strdup(policy->key_path) : NULL;
		g_free(memo->owner);
		memo->owner = memo->has_agent ? g_strdup(policy->owner) : NULL;
		g_free(memo->reload);
		memo->reload = memo->has_agent ? g_strdup(policy->reload) : NULL;
	}
	/* kept: the placement rules judge a claim after the VM migrated away */
	vc_engine_remember_policy(
	    engine, uuid,
	    vc_placement_is_restricted(policy) ? vc_policy_copy_placement(policy) : NULL);
	pol = policy;

	if (!dom->active && pol->revoke_on_stop) {
		vc_engine_cancel_issue(engine, uuid);
		if (row->current_serial != NULL) {
			vc_engine_queue_revoke_all(engine, row, NULL,
						   VC_REASON_CESSATION_OF_OPERATION,
						   "VM stopped and its policy says on-stop=revoke");
			g_clear_pointer(&row->current_serial, g_free);
			row->next_action_at = 0;
		}
		vc_engine_row_set(engine, row, "STOPPED", NULL);
		return;
	}
	need = dom->active || pol->issue_on == VC_ISSUE_ON_DEFINE;
	/* due by the certificate's own clock, or forced (VC_ENGINE_RENEW_NOW:
	 * `virtcert renew`, or a guest that lost its files) */
	renew_due = row->next_action_at == VC_ENGINE_RENEW_NOW ||
		    (cur != NULL && now >= vc_engine_renew_at(engine, cur));
	if (cur_ok && !renew_due) {
		VcVmMemo *memo = vc_engine_memo(engine, uuid);
		gboolean have_key = pol->key_mode == VC_KEY_MODE_GUEST ||
				    g_hash_table_contains(engine->keys, row->current_serial);
		vc_engine_cancel_issue(engine, uuid);
		if (!need) {
			vc_engine_row_set(engine, row, "STOPPED", NULL);
			return;
		}
		if (!memo->deliverable) {
			/* nothing to deliver to now: no agent channel, or not running */
			if (!info->has_guest_agent || g_strcmp0(row->state, "DELIVERED") != 0)
				vc_engine_row_set(engine, row, "ISSUED", NULL);
			return;
		}
		if (memo->check_wanted && g_strcmp0(row->state, "DELIVERED") == 0) {
			vc_engine_start_guest_job(engine, row, memo, VC_GUEST_JOB_CHECK);
			return;
		}
		if (g_strcmp0(row->state, "DELIVERED") == 0)
			return;
		if (have_key) {
			vc_engine_start_guest_job(engine, row, memo, VC_GUEST_JOB_DELIVER);
			return;
		}
		/* host keygen and the key is gone (delivered before a stop, or a
		 * restart): the guest may have it; the check issues anew if not */
		vc_engine_start_guest_job(engine, row, memo, VC_GUEST_JOB_CHECK);
		return;
	}
	if (!need) {
		vc_engine_cancel_issue(engine, uuid);
		if (cur != NULL && !cur_ok) {
			/* names changed while stopped (rename, policy): the old names go */
			vc_engine_queue_revoke_all(engine, row, NULL, VC_REASON_SUPERSEDED,
						   "names changed while the VM was stopped");
			g_clear_pointer(&row->current_serial, g_free);
		}
		vc_engine_row_set(engine, row, "STOPPED", NULL);
		return;
	}

	/* issue: new, renewal, new names, or a key that is gone */
	{
		VcVmMemo *memo = vc_engine_memo(engine, uuid);
		VcQueuedIssue *q = g_hash_table_lookup(engine->issue_queue, uuid);
		if (pol->key_mode == VC_KEY_MODE_GUEST && !memo->deliverable) {
			vc_engine_cancel_issue(engine, uuid);
			vc_engine_row_set(
			    engine, row, cur != NULL ? "RENEWING" : "WANTED",
			    "guest keygen waits for the VM to run with a guest agent");
			return;
		}
		if (q == NULL) {
			q = g_new0(VcQueuedIssue, 1);
			q->uuid = g_strdup(uuid);
			g_hash_table_insert(engine->issue_queue, q->uuid, q);
			g_queue_push_tail(&engine->issue_order, g_strdup(uuid));
		}
		g_free(q->name);
		q->name = g_strdup(dom->name);
		g_strfreev(q->names);
		q->names = g_steal_pointer(&names);
		q->key_type = pol->key_type;
		q->lifetime_s = pol->lifetime_s;
		q->awaits_csr = pol->key_mode == VC_KEY_MODE_GUEST;
		g_free(q->why);
		q->why = g_strdup(cur == NULL ? why
				  : renew_due ? "renewal"
				  : cur_ok    ? "renewal"
					      : "names changed");
		vc_engine_row_set(engine, row, cur != NULL ? "RENEWING" : "WANTED", NULL);
		if (q->awaits_csr && q->public_key == NULL) {
			/* the guest makes the key; the certificate follows its CSR */
			vc_engine_start_guest_job(engine, row, memo, VC_GUEST_JOB_CSR);
			return;
		}
	}
	vc_engine_schedule_flush(engine);
}

/* Remembers POLICY (taken) as UUID's last resolved policy. */
static void
vc_engine_remember_policy(VcEngine *engine, const char *uuid, VcPolicy *policy)
{
	VcVmMemo *memo = vc_engine_memo(engine, uuid);
	g_clear_pointer(&memo->policy, vc_policy_free);
	memo->policy = policy;
	memo->policy_known = TRUE;
}

/* ---- guest jobs: delivery, file check, guest keygen ---------------------- */

typedef struct {
	VcEngine **self;
	VcGuestJobKind kind;
	VcVirt *virt;
	char *uuid;
	char *name;
	gint64 generation;
	char *serial; /* the certificate delivered or checked */
	char *cert_pem;
	char *chain_pem; /* certificate + issuers */
	char *key_pem;	 /* host keygen, secret; NULL in guest keygen */
	char *cert_path;
	char *chain_path;
	char *key_path;
	char *owner;
	char *reload;
	VcKeyType key_type;
	char *peer_url; /* CLAIM */
	const VcConfig *config;
	/* results */
	gboolean ok;
	gboolean files_match;
	gboolean accepted; /* CLAIM */
	char *reason;	   /* CLAIM */
	EVP_PKEY *public_key;
	VcGuestResult result;
	GError *error;
} VcGuestJob;

static void
vc_guest_job_free(VcGuestJob *job)
{
	g_atomic_rc_box_release(job->self);
	g_free(job->uuid);
	g_free(job->name);
	g_free(job->serial);
	g_free(job->cert_pem);
	g_free(job->chain_pem);
	if (job->key_pem != NULL)
		vc_secret_free(job->key_pem);
	g_free(job->cert_path);
	g_free(job->chain_path);
	g_free(job->key_path);
	g_free(job->owner);
	g_free(job->reload);
	g_free(job->peer_url);
	g_free(job->reason);
	EVP_PKEY_free(job->public_key);
	vc_guest_result_clear(&job->result);
	g_clear_error(&job->error);
	g_free(job);
}

static gboolean vc_engine_guest_job_done(gpointer data);

/* On a worker thread: everything here may block on the guest. */
static void
vc_engine_guest_job_run(gpointer data, gpointer user_data)
{
	VcGuestJob *job = data;
	virConnectPtr conn = NULL;
	g_autoptr(VcGuestChannel) channel = NULL;

	if (job->kind == VC_GUEST_JOB_METADATA) {
		g_autoptr(GError) local = NULL;
		g_autofree char *cur =
		    vc_virt_get_metadata(job->virt, job->uuid, VC_DOMAIN_NS, &local);
		g_autofree char *xml = NULL;
		if (cur == NULL && !g_error_matches(local, VC_ERROR, VC_ERROR_NOT_FOUND)) {
			job->error = g_steal_pointer(&local);
		} else {
			xml = vc_domain_metadata_set_issued(cur, job->serial, job->config->peer_url,
							    &job->error);
			job->ok = xml != NULL &&
				  vc_virt_set_metadata(job->virt, job->uuid, xml, VC_DOMAIN_NS,
						       "virtcert", &job->error);
		}
		g_idle_add(vc_engine_guest_job_done, job);
		return;
	}
	if (job->kind == VC_GUEST_JOB_CLAIM) {
		g_autofree char *cert = vc_config_get_host_path(job->config, "cert");
		g_autofree char *key = vc_config_get_host_path(job->config, "key");
		g_autofree char *ca = vc_config_get_host_path(job->config, "ca");
		g_autofree char *crl = vc_config_get_host_path(job->config, "crl");
		VcPeerClientOptions opts = {.host_cert_path = cert,
					    .host_key_path = key,
					    .host_ca_path = ca,
					    .host_crl_path = crl};
		job->ok = vc_peer_claim(job->peer_url, &opts, job->uuid, job->name, job->serial,
					&job->accepted, &job->reason, &job->error);
		g_idle_add(vc_engine_guest_job_done, job);
		return;
	}
	conn = vc_virt_ref_connection(job->virt, &job->error);
	if (conn != NULL)
		channel = vc_guest_channel_new_libvirt(conn, job->uuid, &job->error);
	if (channel != NULL) {
		switch (job->kind) {
		case VC_GUEST_JOB_DELIVER: {
			VcGuestDelivery d = {
			    .cert_pem = job->cert_pem,
			    .chain_pem = job->chain_pem,
			    .key_pem = job->key_pem,
			    .cert_path = job->cert_path,
			    .chain_path = job->chain_path,
			    .key_path = job->key_path,
			    .owner = job->owner,
			    .reload_command = job->reload,
			};
			job->ok = vc_guest_deliver(channel, &d, &job->result, &job->error);
			break;
		}
		case VC_GUEST_JOB_CHECK:
			job->ok =
			    vc_guest_check_files(channel, job->cert_path, job->cert_pem,
						 job->key_path, &job->files_match, &job->error);
			break;
		case VC_GUEST_JOB_CSR: {
			g_autofree char *staged = vc_guest_staged_key_path(job->key_path);
			job->public_key =
			    vc_guest_make_csr(channel, staged, job->key_type, NULL, &job->error);
			job->ok = job->public_key != NULL;
			break;
		}
		case VC_GUEST_JOB_METADATA:
		case VC_GUEST_JOB_CLAIM:
		default:
			g_assert_not_reached();
		}
	}
	g_clear_pointer(&channel, vc_guest_channel_free);
	if (conn != NULL)
		virConnectClose(conn);
	g_idle_add(vc_engine_guest_job_done, job);
}

/* The PEM of the certificate SERIAL and of the chain (certificate + issuers). */
static gboolean
vc_engine_cert_pems(VcEngine *engine, const char *serial, char **ret_cert, char **ret_chain,
		    GError **error)
{
	g_autoptr(VcCertRecord) rec = vc_store_cert_get(engine->store, serial, error);
	g_autoptr(X509) cert = NULL;
	g_autofree char *pem = NULL;
	g_autoptr(GString) chain = NULL;
	GPtrArray *issuers = vc_ca_get_chain(engine->ca);
	const guint8 *der;
	gsize len = 0;

	if (rec == NULL)
		return FALSE;
	if (rec->der == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "certificate %s has no DER yet",
			    serial);
		return FALSE;
	}
	der = g_bytes_get_data(rec->der, &len);
	cert = vc_cert_from_der(der, len, error);
	if (cert == NULL || (pem = vc_cert_to_pem(cert, error)) == NULL)
		return FALSE;
	chain = g_string_new(pem);
	for (guint i = 0; i < issuers->len; i++) {
		g_autofree char *c = vc_cert_to_pem(g_ptr_array_index(issuers, i), error);
		if (c == NULL)
			return FALSE;
		g_string_append(chain, c);
	}
	*ret_cert = g_steal_pointer(&pem);
	*ret_chain = g_string_free(g_steal_pointer(&chain), FALSE);
	return TRUE;
}

/* Starts a guest job for ROW unless one runs or a retry is not due. */
static void
vc_engine_start_guest_job(VcEngine *engine, VcDomainRecord *row, VcVmMemo *memo,
			  VcGuestJobKind kind)
{
	g_autoptr(GError) error = NULL;
	VcGuestJob *job;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;

	if (engine->virt == NULL)
		return;
	if ((kind != VC_GUEST_JOB_METADATA && kind != VC_GUEST_JOB_CLAIM) &&
	    (memo->job_running || now < memo->retry_at))
		return;
	job = g_new0(VcGuestJob, 1);
	job->config = engine->config;
	job->peer_url = g_strdup(memo->claim_peer);
	job->self = g_atomic_rc_box_acquire(engine->self);
	job->kind = kind;
	job->virt = engine->virt;
	job->uuid = g_strdup(row->uuid);
	job->name = g_strdup(row->name);
	job->generation = row->generation;
	job->serial = g_strdup(row->current_serial);
	job->cert_path = g_strdup(memo->cert_path);
	job->chain_path = g_strdup(memo->chain_path);
	job->key_path = g_strdup(memo->key_path);
	job->owner = g_strdup(memo->owner);
	job->reload = g_strdup(memo->reload);
	job->key_type = memo->key_type;
	if (kind == VC_GUEST_JOB_DELIVER || kind == VC_GUEST_JOB_CHECK) {
		if (!vc_engine_cert_pems(engine, row->current_serial, &job->cert_pem,
					 &job->chain_pem, &error)) {
			vc_engine_fail(engine, row, "cannot read the certificate to deliver",
				       error);
			vc_guest_job_free(job);
			return;
		}
		if (kind == VC_GUEST_JOB_DELIVER && memo->key_mode == VC_KEY_MODE_HOST)
			job->key_pem =
			    g_strdup(g_hash_table_lookup(engine->keys, row->current_serial));
	}
	if (engine->guest_pool == NULL)
		engine->guest_pool = g_thread_pool_new(vc_engine_guest_job_run, NULL,
						       VC_ENGINE_GUEST_THREADS, FALSE, NULL);
	if (kind != VC_GUEST_JOB_METADATA && kind != VC_GUEST_JOB_CLAIM)
		memo->job_running = TRUE;
	if (kind == VC_GUEST_JOB_DELIVER)
		vc_engine_row_set(engine, row, "DELIVERING", NULL);
	g_thread_pool_push(engine->guest_pool, job, NULL);
}

static void
vc_engine_guest_retry_later(VcEngine *engine, VcDomainRecord *row, VcVmMemo *memo, const char *what,
			    const GError *error)
{
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	g_autofree char *msg = g_strdup_printf("%s: %s", what, error->message);
	gint64 delay;

	/* no agent yet (booting, rebooting): the agent-connected event retries */
	row->failures++;
	delay = MIN((gint64)1 << MIN(row->failures, 16), VC_ENGINE_RETRY_MAX_S);
	memo->retry_at = now + delay;
	row->next_action_at = memo->retry_at;
	vc_engine_row_set(engine, row, "DELIVERY_FAILED", msg);
	g_hash_table_add(engine->dirty, g_strdup(row->uuid));
	vc_engine_log(G_LOG_LEVEL_WARNING, "delivery-failed", row->uuid, row->name,
		      row->current_serial, "VM %s: %s; retrying in %" G_GINT64_FORMAT " s",
		      row->name, msg, delay);
	vc_engine_emit(engine, "delivery-failed", row->uuid, row->name, row->current_serial, msg);
	vc_engine_schedule_tick(engine);
}

/* On the main loop: apply a job's result, if it still concerns the VM's life. */
static gboolean
vc_engine_guest_job_done(gpointer data)
{
	g_autoptr(GError) error = NULL;
	VcGuestJob *job = data;
	VcEngine *engine = *job->self;
	VcDomainRecord *row;
	VcVmMemo *memo;

	if (engine == NULL)
		goto out;
	memo = vc_engine_memo(engine, job->uuid);
	if (job->kind == VC_GUEST_JOB_METADATA) {
		if (!job->ok)
			vc_engine_log(G_LOG_LEVEL_WARNING, "metadata", job->uuid, job->name,
				      job->serial,
				      "VM %s: cannot record the issuer in its metadata: %s",
				      job->name, job->error->message);
		goto out;
	}
	if (job->kind == VC_GUEST_JOB_CLAIM) {
		if (!job->ok)
			vc_engine_log(G_LOG_LEVEL_WARNING, "claim", job->uuid, job->name,
				      job->serial, "VM %s: the claim to %s failed: %s", job->name,
				      job->peer_url, job->error->message);
		else
			vc_engine_log(job->accepted ? G_LOG_LEVEL_MESSAGE : G_LOG_LEVEL_WARNING,
				      "claim", job->uuid, job->name, job->serial,
				      "VM %s: the issuer %s %s the handover: %s", job->name,
				      job->peer_url, job->accepted ? "accepted" : "refused",
				      job->reason ? job->reason : "");
		vc_engine_emit(
		    engine, job->ok && job->accepted ? "handover-accepted" : "handover-refused",
		    job->uuid, job->name, job->serial, job->ok ? job->reason : job->error->message);
		goto out;
	}
	memo->job_running = FALSE;
	row = g_hash_table_lookup(engine->rows, job->uuid);
	if (row == NULL || row->generation != job->generation ||
	    g_strcmp0(row->state, "REVOKED") == 0 || g_strcmp0(row->state, "REVOKING") == 0)
		goto out;
	if (job->kind != VC_GUEST_JOB_CSR && g_strcmp0(row->current_serial, job->serial) != 0) {
		/* superseded meanwhile: the evaluation below delivers the new one */
		vc_engine_evaluate(engine, job->uuid, NULL, "newer certificate");
		goto out;
	}

	switch (job->kind) {
	case VC_GUEST_JOB_DELIVER:
		if (!job->ok) {
			vc_engine_guest_retry_later(engine, row, memo, "delivery failed",
						    job->error);
			break;
		}
		g_hash_table_remove(engine->keys, job->serial);
		memo->check_wanted = FALSE;
		memo->retry_at = 0;
		row->next_action_at = 0;
		{
			g_autoptr(VcCertRecord) cur =
			    vc_store_cert_get(engine->store, job->serial, NULL);
			if (cur != NULL)
				row->next_action_at = vc_engine_renew_at(engine, cur);
		}
		vc_engine_row_set(engine, row, "DELIVERED", NULL);
		g_hash_table_add(engine->dirty, g_strdup(row->uuid));
		/* only now, with the new certificate in the guest, do the old ones go */
		vc_engine_queue_revoke_all(engine, row, job->serial, VC_REASON_SUPERSEDED,
					   "superseded by a certificate delivered into the guest");
		vc_engine_schedule_flush(engine);
		/* migrated here: the new certificate is in place, now the issuer
		 * may revoke its own (no moment without a valid certificate) */
		if (memo->claim_wanted && memo->claim_peer != NULL) {
			memo->claim_wanted = FALSE;
			vc_engine_start_guest_job(engine, row, memo, VC_GUEST_JOB_CLAIM);
		}
		{
			g_autofree char *detail = NULL;
			if (job->result.reload_ran)
				detail = g_strdup_printf(
				    "delivered in %" G_GINT64_FORMAT " ms; reload exited %d",
				    job->result.duration_us / 1000, job->result.reload_exit_code);
			else
				detail = g_strdup_printf("delivered in %" G_GINT64_FORMAT " ms",
							 job->result.duration_us / 1000);
			vc_engine_log(G_LOG_LEVEL_MESSAGE, "delivered", row->uuid, row->name,
				      job->serial, "VM %s: %s %s to %s", row->name, detail,
				      job->serial, job->cert_path);
			vc_engine_emit(engine, "delivered", row->uuid, row->name, job->serial,
				       detail);
			if (job->result.reload_ran && job->result.reload_exit_code != 0)
				vc_engine_log(G_LOG_LEVEL_WARNING, "reload-failed", row->uuid,
					      row->name, job->serial,
					      "VM %s: the reload command exited %d", row->name,
					      job->result.reload_exit_code);
		}
		break;
	case VC_GUEST_JOB_CHECK:
		if (!job->ok) {
			vc_engine_guest_retry_later(
			    engine, row, memo, "checking the guest's files failed", job->error);
			break;
		}
		memo->check_wanted = FALSE;
		if (job->files_match) {
			vc_engine_row_set(engine, row, "DELIVERED", NULL);
			break;
		}
		/* the guest lost or changed its files (reboot on tmpfs, restore):
		 * the key is not on the host any more, so a new certificate */
		vc_engine_log(G_LOG_LEVEL_MESSAGE, "files-lost", row->uuid, row->name, job->serial,
			      "VM %s: the guest no longer has certificate %s at %s; issuing anew",
			      row->name, job->serial, job->cert_path);
		row->next_action_at = VC_ENGINE_RENEW_NOW;
		vc_engine_evaluate(engine, row->uuid, NULL, "the guest lost its files");
		break;
	case VC_GUEST_JOB_METADATA:
	case VC_GUEST_JOB_CLAIM:
		break;
	case VC_GUEST_JOB_CSR:
		if (!job->ok) {
			vc_engine_guest_retry_later(engine, row, memo, "guest keygen failed",
						    job->error);
			break;
		}
		{
			VcQueuedIssue *q = g_hash_table_lookup(engine->issue_queue, job->uuid);
			if (q == NULL) {
				/* nothing asks for a certificate any more */
				break;
			}
			EVP_PKEY_free(q->public_key);
			q->public_key = g_steal_pointer(&job->public_key);
			vc_engine_schedule_flush(engine);
		}
		break;
	default:
		g_assert_not_reached();
	}
out:
	vc_guest_job_free(job);
	return G_SOURCE_REMOVE;
}

/* ---- flush: the store writes and the CA work, batched ------------------- */

static gboolean
vc_engine_flush_rows(VcEngine *engine, GError **error)
{
	GHashTableIter iter;
	const char *uuid;

	g_hash_table_iter_init(&iter, engine->dirty);
	while (g_hash_table_iter_next(&iter, (gpointer *)&uuid, NULL)) {
		VcDomainRecord *row = g_hash_table_lookup(engine->rows, uuid);
		if (row != NULL && !vc_store_domain_put(engine->store, row, error))
			return FALSE;
	}
	g_hash_table_remove_all(engine->dirty);
	return TRUE;
}

/* Revocations and row changes in one durable commit, then reported. */
static gboolean
vc_engine_flush_revocations(VcEngine *engine, GError **error)
{
	g_autoptr(GPtrArray) done = NULL;

	if (engine->revoke_queue->len == 0 && g_hash_table_size(engine->dirty) == 0)
		return TRUE;
	if (!vc_store_begin(engine->store, error))
		return FALSE;
	for (guint i = 0; i < engine->revoke_queue->len; i++) {
		VcQueuedRevoke *q = g_ptr_array_index(engine->revoke_queue, i);
		if (!vc_store_cert_revoke(engine->store, q->serial, q->reason, 0, error))
			goto fail;
	}
	/* rows left REVOKING reach REVOKED in the same commit as their revocations */
	for (guint i = 0; i < engine->revoke_queue->len; i++) {
		VcQueuedRevoke *q = g_ptr_array_index(engine->revoke_queue, i);
		VcDomainRecord *row = g_hash_table_lookup(engine->rows, q->uuid);
		if (row != NULL && g_strcmp0(row->state, "REVOKING") == 0)
			vc_engine_row_set(engine, row, "REVOKED", NULL);
	}
	{
		GHashTableIter iter;
		VcDomainRecord *row;
		g_hash_table_iter_init(&iter, engine->rows);
		while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&row))
			if (g_strcmp0(row->state, "REVOKING") == 0)
				vc_engine_row_set(engine, row, "REVOKED", NULL);
	}
	if (!vc_engine_flush_rows(engine, error))
		goto fail;
	if (!vc_store_commit(engine->store, error))
		goto fail;
	done = g_steal_pointer(&engine->revoke_queue);
	engine->revoke_queue =
	    g_ptr_array_new_with_free_func((GDestroyNotify)vc_queued_revoke_free);
	for (guint i = 0; i < done->len; i++) {
		VcQueuedRevoke *q = g_ptr_array_index(done, i);
		engine->n_revoked++;
		vc_engine_log(G_LOG_LEVEL_MESSAGE, "revoked", q->uuid, q->name, q->serial,
			      "VM %s: revoked %s (%s): %s", q->name ? q->name : q->uuid, q->serial,
			      vc_reason_to_string(q->reason), q->why);
		vc_engine_emit(engine, "revoked", q->uuid, q->name, q->serial, q->why);
	}
	return TRUE;
fail:
	vc_store_rollback(engine->store);
	return FALSE;
}

static gboolean
vc_engine_flush_issues(VcEngine *engine, GError **error)
{
	g_autoptr(GPtrArray) batch =
	    g_ptr_array_new_with_free_func((GDestroyNotify)vc_queued_issue_free);
	g_autofree VcIssueRequest *reqs = NULL;
	g_autoptr(GPtrArray) results = NULL;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;

	for (GList *l = engine->issue_order.head; l != NULL && batch->len < VC_ENGINE_BATCH;) {
		GList *next = l->next;
		VcQueuedIssue *q = g_hash_table_lookup(engine->issue_queue, l->data);
		gpointer key, value;
		/* guest keygen: waits in the queue for the guest's CSR */
		if (q != NULL && q->awaits_csr && q->public_key == NULL) {
			l = next;
			continue;
		}
		if (g_hash_table_steal_extended(engine->issue_queue, l->data, &key, &value))
			g_ptr_array_add(batch, value);
		g_free(l->data);
		g_queue_delete_link(&engine->issue_order, l);
		l = next;
	}
	if (batch->len == 0)
		return TRUE;
	reqs = g_new0(VcIssueRequest, batch->len);
	for (guint i = 0; i < batch->len; i++) {
		VcQueuedIssue *q = g_ptr_array_index(batch, i);
		reqs[i].vm_uuid = q->uuid;
		reqs[i].vm_name = q->name;
		reqs[i].dns_names = (const char *const *)q->names;
		reqs[i].key_type = q->key_type;
		reqs[i].public_key = q->public_key;
		reqs[i].lifetime_s = q->lifetime_s;
	}
	results = vc_issuer_issue_batch(engine->issuer, reqs, batch->len, error);
	if (results == NULL) {
		/* the store failed: retry the batch at the next flush. Serials it
		 * recorded stay PENDING (abandoned and listed on the CRL at the next
		 * start); a certificate stored VALID meanwhile is superseded by the
		 * retry's, so none stays valid unknown to the rows */
		for (guint i = batch->len; i > 0; i--) {
			VcQueuedIssue *q = g_ptr_array_steal_index(batch, i - 1);
			g_hash_table_insert(engine->issue_queue, q->uuid, q);
			g_queue_push_head(&engine->issue_order, g_strdup(q->uuid));
		}
		return FALSE;
	}
	if (!vc_store_begin(engine->store, error))
		return FALSE;
	for (guint i = 0; i < batch->len; i++) {
		VcQueuedIssue *q = g_ptr_array_index(batch, i);
		VcIssued *issued = g_ptr_array_index(results, i);
		VcDomainRecord *row = vc_engine_row(engine, q->uuid, q->name, TRUE);
		VcVmMemo *memo;
		VcCertRecord rec = {.serial = issued->serial,
				    .not_before = issued->not_before,
				    .not_after = issued->not_after};
		if (issued->error != NULL) {
			vc_engine_fail(engine, row, "issuance failed", issued->error);
			continue;
		}
		g_free(row->current_serial);
		row->current_serial = g_strdup(issued->serial);
		g_free(row->names_key);
		row->names_key = g_strjoinv(",", q->names);
		row->next_action_at = vc_engine_renew_at(engine, &rec);
		vc_engine_row_set(engine, row, "ISSUED", NULL);
		g_hash_table_add(engine->dirty, g_strdup(row->uuid));
		memo = vc_engine_memo(engine, row->uuid);
		if (issued->key != NULL && memo->has_agent) {
			/* kept in memory only, until it is in the guest */
			char *pem = vc_key_to_pem(issued->key, NULL);
			if (pem != NULL)
				g_hash_table_replace(engine->keys, g_strdup(issued->serial), pem);
		}
		if (!memo->has_agent) {
			/* nothing to deliver: the new certificate supersedes the others now */
			vc_engine_queue_revoke_all(engine, row, issued->serial,
						   VC_REASON_SUPERSEDED,
						   "superseded by a new certificate");
		}
	}
	if (!vc_engine_flush_rows(engine, error)) {
		vc_store_rollback(engine->store);
		return FALSE;
	}
	if (!vc_store_commit(engine->store, error))
		return FALSE;
	for (guint i = 0; i < batch->len; i++) {
		VcQueuedIssue *q = g_ptr_array_index(batch, i);
		VcIssued *issued = g_ptr_array_index(results, i);
		g_autofree char *joined = NULL;
		if (issued->error != NULL)
			continue;
		engine->n_issued++;
		joined = g_strjoinv(", ", q->names);
		vc_engine_log(G_LOG_LEVEL_MESSAGE, "issued", q->uuid, q->name, issued->serial,
			      "VM %s: issued %s for %s (%s)", q->name, issued->serial, joined,
			      q->why);
		vc_engine_emit(engine, "issued", q->uuid, q->name, issued->serial, joined);
		{
			VcDomainRecord *row = g_hash_table_lookup(engine->rows, q->uuid);
			VcVmMemo *m = vc_engine_memo(engine, q->uuid);
			if (row != NULL && m->deliverable &&
			    g_strcmp0(row->current_serial, issued->serial) == 0) {
				m->retry_at = 0;
				vc_engine_start_guest_job(engine, row, m, VC_GUEST_JOB_DELIVER);
			}
			/* the issuer and its peer URL travel with the VM's definition */
			if (row != NULL && engine->config->peer_url != NULL)
				vc_engine_start_guest_job(engine, row, m, VC_GUEST_JOB_METADATA);
			/* nothing to deliver: claim at once after a migration here */
			if (row != NULL && !m->has_agent && m->claim_wanted &&
			    m->claim_peer != NULL) {
				m->claim_wanted = FALSE;
				vc_engine_start_guest_job(engine, row, m, VC_GUEST_JOB_CLAIM);
			}
		}
	}
	(void)now;
	return TRUE;
}

static gboolean
vc_engine_flush_cb(gpointer user_data)
{
	VcEngine *engine = user_data;
	g_autoptr(GError) error = NULL;

	engine->flush_source = 0;
	if (!vc_engine_flush_revocations(engine, &error)) {
		vc_engine_log(G_LOG_LEVEL_WARNING, "store", NULL, NULL, NULL,
			      "cannot commit revocations, retrying in 1 s: %s", error->message);
		engine->flush_source = g_timeout_add_seconds(1, vc_engine_flush_cb, engine);
		return G_SOURCE_REMOVE;
	}
	if (!vc_engine_flush_issues(engine, &error)) {
		vc_engine_log(G_LOG_LEVEL_WARNING, "issue", NULL, NULL, NULL,
			      "issuance batch failed, retrying in 1 s: %s", error->message);
		engine->flush_source = g_timeout_add_seconds(1, vc_engine_flush_cb, engine);
		return G_SOURCE_REMOVE;
	}
	/* superseded certificates found while issuing, and more queued work */
	if (engine->revoke_queue->len > 0 || g_hash_table_size(engine->dirty) > 0 ||
	    !g_queue_is_empty(&engine->issue_order))
		vc_engine_schedule_flush(engine);
	vc_engine_schedule_tick(engine);
	return G_SOURCE_REMOVE;
}

static void
vc_engine_schedule_flush(VcEngine *engine)
{
	/* a short window at normal priority: decisions that arrive together share
	 * one commit (group commit) without waiting for a storm of events to end */
	if (engine->flush_source == 0)
		engine->flush_source =
		    g_timeout_add_full(G_PRIORITY_DEFAULT, VC_ENGINE_FLUSH_WINDOW_MS,
				       vc_engine_flush_cb, engine, NULL);
}

/* ---- renewal timer ----------------------------------------------------- */

/* Rows whose next_action_at means something: a renewal or a retry. */
static gboolean
vc_engine_row_is_scheduled(const VcDomainRecord *row)
{
	static const char *const states[] = {"ISSUED", "DELIVERED",	"DELIVERY_FAILED",
					     "FAILED", "MIGRATING_OUT", NULL};
	return g_strv_contains(states, row->state);
}

static gboolean
vc_engine_tick_cb(gpointer user_data)
{
	VcEngine *engine = user_data;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	g_autoptr(GPtrArray) due = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter iter;
	VcDomainRecord *row;

	engine->tick_source = 0;
	g_hash_table_iter_init(&iter, engine->rows);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&row))
		if (row->next_action_at > 0 && row->next_action_at <= now &&
		    vc_engine_row_is_scheduled(row))
			g_ptr_array_add(due, g_strdup(row->uuid));
	for (guint i = 0; i < due->len; i++) {
		row = g_hash_table_lookup(engine->rows, g_ptr_array_index(due, i));
		if (row != NULL && g_strcmp0(row->state, "MIGRATING_OUT") == 0)
			vc_engine_expire_handover(engine, row);
		else
			vc_engine_evaluate(engine, g_ptr_array_index(due, i), NULL, "renewal");
	}
	vc_engine_schedule_tick(engine);
	return G_SOURCE_REMOVE;
}

static void
vc_engine_schedule_tick(VcEngine *engine)
{
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	gint64 next = now + VC_ENGINE_TICK_MAX_S;
	GHashTableIter iter;
	VcDomainRecord *row;

	g_hash_table_iter_init(&iter, engine->rows);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&row))
		if (row->next_action_at > 0 && vc_engine_row_is_scheduled(row))
			next = MIN(next, row->next_action_at);
	g_clear_handle_id(&engine->tick_source, g_source_remove);
	engine->tick_source = g_timeout_add_seconds(
	    (guint)CLAMP(next - now, 1, VC_ENGINE_TICK_MAX_S), vc_engine_tick_cb, engine);
}

/* ---- migration: handover between issuers ------------------------------- */

/* The VM migrated away (STOPPED MIGRATED). Its certificate stays valid for
 * the grace period; a trusted claim from the destination ends it as
 * superseded, no claim ends it as privilegeWithdrawn. */
static void
vc_engine_begin_handover(VcEngine *engine, const char *uuid, const char *name)
{
	VcDomainRecord *row = vc_engine_row(engine, uuid, NULL, FALSE);
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;

	vc_engine_cancel_issue(engine, uuid);
	if (row == NULL || row->current_serial == NULL || g_strcmp0(row->state, "REVOKED") == 0 ||
	    g_strcmp0(row->state, "HANDED_OVER") == 0)
		return;
	row->next_action_at = now + engine->config->handover_grace_s;
	vc_engine_row_set(engine, row, "MIGRATING_OUT", NULL);
	g_hash_table_add(engine->dirty, g_strdup(uuid));
	vc_engine_log(G_LOG_LEVEL_MESSAGE, "migrated-away", uuid, name, row->current_serial,
		      "VM %s migrated away; its certificate is revoked unless the destination "
		      "claims it within %" G_GINT64_FORMAT " s",
		      name, engine->config->handover_grace_s);
	vc_engine_schedule_tick(engine);
}

static void
vc_engine_expire_handover(VcEngine *engine, VcDomainRecord *row)
{
	g_autofree char *why = g_strdup_printf("migrated to a host that presented no trusted claim "
					       "within %" G_GINT64_FORMAT " s",
					       engine->config->handover_grace_s);
	vc_engine_queue_revoke_all(engine, row, NULL, VC_REASON_PRIVILEGE_WITHDRAWN, why);
	g_clear_pointer(&row->current_serial, g_free);
	row->next_action_at = 0;
	vc_engine_row_set(engine, row, "REVOKING", why);
	vc_engine_log(G_LOG_LEVEL_WARNING, "handover-expired", row->uuid, row->name, NULL,
		      "VM %s %s: revoking (privilegeWithdrawn)", row->name, why);
}

gboolean
vc_engine_handle_claim(VcEngine *engine, const char *vm_uuid, const char *peer_fqdn,
		       const VcHostIdentity *peer, char **ret_reason)
{
	VcDomainRecord *row = g_hash_table_lookup(engine->rows, vm_uuid);
	VcVmMemo *memo = g_hash_table_lookup(engine->memos, vm_uuid);
	g_autoptr(VcVirtDomain) dom = NULL;
	g_autofree char *reason = NULL;
	g_autofree char *why = NULL;

	if (row == NULL || row->current_serial == NULL || g_strcmp0(row->state, "REVOKED") == 0) {
		*ret_reason = g_strdup("this host holds no certificate for that VM");
		return FALSE;
	}
	if (engine->virt != NULL &&
	    (dom = vc_virt_get_domain(engine->virt, vm_uuid, FALSE, NULL)) != NULL && dom->active) {
		*ret_reason = g_strdup("the VM still runs on this host");
		return FALSE;
	}
	if (memo == NULL || !memo->policy_known) {
		*ret_reason = g_strdup("this host no longer knows the VM's placement policy");
		return FALSE;
	}
	if (memo->policy != NULL && !vc_placement_allows(memo->policy, peer, &reason)) {
		/* the VM runs on a host its owner does not trust: its identity ends */
		why =
		    g_strdup_printf("migrated to %s, outside its placement: %s", peer_fqdn, reason);
		vc_engine_queue_revoke_all(engine, row, NULL, VC_REASON_PRIVILEGE_WITHDRAWN, why);
		g_clear_pointer(&row->current_serial, g_free);
		row->next_action_at = 0;
		vc_engine_row_set(engine, row, "REVOKING", why);
		vc_engine_log(G_LOG_LEVEL_WARNING, "handover-refused", row->uuid, row->name, NULL,
			      "VM %s %s: revoking (privilegeWithdrawn)", row->name, why);
		*ret_reason = g_strdup(reason);
		return FALSE;
	}
	if (reason == NULL)
		reason = g_strdup("the VM does not restrict its placement");
	why = g_strdup_printf("handed over to %s", peer_fqdn);
	vc_engine_queue_revoke_all(engine, row, NULL, VC_REASON_SUPERSEDED, why);
	g_clear_pointer(&row->current_serial, g_free);
	row->next_action_at = 0;
	vc_engine_row_set(engine, row, "HANDED_OVER", NULL);
	g_hash_table_add(engine->dirty, g_strdup(row->uuid));
	vc_engine_log(G_LOG_LEVEL_MESSAGE, "handed-over", row->uuid, row->name, NULL,
		      "VM %s %s; its certificate here is superseded", row->name, why);
	vc_engine_emit(engine, "handed-over", row->uuid, row->name, NULL, why);
	*ret_reason = g_strdup(reason);
	return TRUE;
}

/* ---- inputs ------------------------------------------------------------- */

gboolean
vc_engine_recover(VcEngine *engine, GError **error)
{
	g_autoptr(GPtrArray) rows = NULL;
	guint abandoned = 0;

	if (!vc_store_recover(engine->store, &abandoned, error))
		return FALSE;
	if (abandoned > 0)
		vc_engine_log(G_LOG_LEVEL_MESSAGE, "recover", NULL, NULL, NULL,
			      "%u serial(s) recorded but not known to be signed were abandoned "
			      "(listed on the CRL)",
			      abandoned);
	rows = vc_store_domain_list(engine->store, error);
	if (rows == NULL)
		return FALSE;
	for (guint i = 0; i < rows->len; i++) {
		VcDomainRecord *row = g_ptr_array_steal_index_fast(rows, i--);
		g_hash_table_replace(engine->rows, row->uuid, row);
		/* REVOKING: the revocation was decided; finish it */
		if (g_strcmp0(row->state, "REVOKING") == 0)
			vc_engine_queue_revoke_all(engine, row, NULL,
						   VC_REASON_CESSATION_OF_OPERATION,
						   "revocation interrupted by a restart");
	}
	vc_engine_schedule_flush(engine);
	vc_engine_schedule_tick(engine);
	return TRUE;
}

void
vc_engine_handle_event(VcEngine *engine, const VcVirtEvent *event)
{
	VcVmMemo *memo = vc_engine_memo(engine, event->uuid);
	g_autofree char *why =
	    g_strdup_printf("%s %s", vc_virt_event_kind_to_string(event->kind), event->detail_str);

	engine->n_events++;
	memo->last_event_seq = ++engine->seq;
	vc_engine_log(G_LOG_LEVEL_DEBUG, why, event->uuid, event->name, NULL, "VM %s: event %s",
		      event->name, why);
	vc_engine_emit(engine, "libvirt", event->uuid, event->name, NULL, why);

	switch (event->kind) {
	case VC_VIRT_EVENT_UNDEFINED:
		if (event->is_rename)
			return; /* DEFINED RENAMED carries the new name */
		if (memo->stopped_migrated_at > 0) {
			/* part of a migration (--undefinesource), not a deletion:
			 * the handover rules decide (see the migration issue) */
			vc_engine_log(G_LOG_LEVEL_MESSAGE, "migrated", event->uuid, event->name,
				      NULL, "VM %s: undefined after migrating away; not a deletion",
				      event->name);
			return;
		}
		{
			/* undefining a running VM leaves it running as a transient
			 * domain: its life ends when it stops, not now */
			g_autoptr(VcVirtDomain) dom =
			    engine->virt != NULL
				? vc_virt_get_domain(engine->virt, event->uuid, FALSE, NULL)
				: NULL;
			if (dom != NULL && dom->active && !dom->persistent) {
				vc_engine_evaluate(engine, event->uuid, NULL, why);
				return;
			}
		}
		vc_engine_end_life(engine, event->uuid, VC_REASON_CESSATION_OF_OPERATION,
				   "undefined");
		/* a definition made since (same UUID) is a new life */
		vc_engine_evaluate(engine, event->uuid, NULL, why);
		return;
	case VC_VIRT_EVENT_STOPPED:
		if (event->is_migration) {
			memo->stopped_migrated_at = g_get_real_time() / G_USEC_PER_SEC;
			vc_engine_begin_handover(engine, event->uuid, event->name);
			return;
		}
		vc_engine_evaluate(engine, event->uuid, NULL, why);
		return;
	case VC_VIRT_EVENT_STARTED:
		memo->stopped_migrated_at = 0;
		/* migrated here: claim it from its issuer once our certificate is in */
		if (event->is_migration)
			memo->claim_wanted = TRUE;
		/* a restore can bring back old files: check what the guest has */
		if (event->is_restore)
			memo->check_wanted = TRUE;
		vc_engine_evaluate(engine, event->uuid, NULL, why);
		return;
	case VC_VIRT_EVENT_AGENT_CONNECTED:
		/* the guest (re)booted or its agent restarted: check its files, retry now */
		memo->check_wanted = TRUE;
		memo->retry_at = 0;
		vc_engine_evaluate(engine, event->uuid, NULL, why);
		return;
	case VC_VIRT_EVENT_RESUMED:
		/* it runs here (also after a failed migration away) */
		memo->stopped_migrated_at = 0;
		vc_engine_evaluate(engine, event->uuid, NULL, why);
		return;
	case VC_VIRT_EVENT_DEFINED:
	case VC_VIRT_EVENT_METADATA_CHANGED:
		vc_engine_evaluate(engine, event->uuid, NULL, why);
		return;
	case VC_VIRT_EVENT_SUSPENDED:
	case VC_VIRT_EVENT_SHUTDOWN:
	case VC_VIRT_EVENT_PMSUSPENDED:
	case VC_VIRT_EVENT_CRASHED:
	case VC_VIRT_EVENT_AGENT_DISCONNECTED:
	default:
		return;
	}
}

static gboolean
vc_engine_reconcile_cb(gpointer user_data)
{
	VcEngine *engine = user_data;
	g_autoptr(GError) error = NULL;

	if (!vc_engine_reconcile(engine, &error))
		vc_engine_log(G_LOG_LEVEL_WARNING, "reconcile", NULL, NULL, NULL,
			      "reconcile failed: %s", error->message);
	return G_SOURCE_CONTINUE;
}

void
vc_engine_handle_connected(VcEngine *engine)
{
	g_autoptr(GError) error = NULL;

	engine->connected = TRUE;
	vc_engine_log(G_LOG_LEVEL_MESSAGE, "connected", NULL, NULL, NULL,
		      "connected to libvirt; reconciling");
	if (!vc_engine_reconcile(engine, &error))
		vc_engine_log(G_LOG_LEVEL_WARNING, "reconcile", NULL, NULL, NULL,
			      "reconcile failed: %s", error->message);
	if (engine->reconcile_source == 0 && engine->config->reconcile_interval_s > 0)
		engine->reconcile_source = g_timeout_add_seconds(
		    (guint)engine->config->reconcile_interval_s, vc_engine_reconcile_cb, engine);
}

void
vc_engine_handle_disconnected(VcEngine *engine)
{
	engine->connected = FALSE;
	vc_engine_log(G_LOG_LEVEL_WARNING, "disconnected", NULL, NULL, NULL,
		      "lost the libvirt connection; events may be missed until the reconnect");
}

gboolean
vc_engine_reconcile(VcEngine *engine, GError **error)
{
	g_autoptr(GPtrArray) domains = NULL;
	g_autoptr(GHashTable) present = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GPtrArray) vanished = g_ptr_array_new_with_free_func(g_free);
	guint64 snapshot_seq = engine->seq;
	GHashTableIter iter;
	VcDomainRecord *row;

	if (engine->virt == NULL)
		return TRUE;
	domains = vc_virt_list_domains(engine->virt, FALSE, error);
	if (domains == NULL)
		return FALSE;
	for (guint i = 0; i < domains->len; i++) {
		VcVirtDomain *dom = g_ptr_array_index(domains, i);
		VcVmMemo *memo = g_hash_table_lookup(engine->memos, dom->uuid);
		g_hash_table_add(present, dom->uuid);
		/* an event newer than the snapshot has already decided */
		if (memo != NULL && memo->last_event_seq > snapshot_seq)
			continue;
		vc_engine_evaluate(engine, dom->uuid, NULL, "reconcile");
	}
	g_hash_table_iter_init(&iter, engine->rows);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&row)) {
		VcVmMemo *memo = g_hash_table_lookup(engine->memos, row->uuid);
		if (g_hash_table_contains(present, row->uuid) ||
		    g_strcmp0(row->state, "REVOKED") == 0 ||
		    g_strcmp0(row->state, "HANDED_OVER") == 0 ||
		    g_strcmp0(row->state, "MIGRATING_OUT") == 0)
			continue; /* the handover decides for a VM that migrated away */
		if (memo != NULL && memo->last_event_seq > snapshot_seq)
			continue;
		g_ptr_array_add(vanished, g_strdup(row->uuid));
	}
	for (guint i = 0; i < vanished->len; i++)
		vc_engine_end_life(engine, g_ptr_array_index(vanished, i),
				   VC_REASON_CESSATION_OF_OPERATION,
				   "the domain vanished while nobody watched");
	engine->n_reconciles++;
	engine->last_reconcile_at = g_get_real_time() / G_USEC_PER_SEC;
	vc_engine_log(G_LOG_LEVEL_MESSAGE, "reconcile", NULL, NULL, NULL,
		      "reconciled %u domain(s) with %u row(s); %u vanished", domains->len,
		      g_hash_table_size(engine->rows), vanished->len);
	return TRUE;
}

void
vc_engine_set_policy(VcEngine *engine, VcPolicySet *policy)
{
	vc_policy_set_free(engine->policy);
	engine->policy = policy;
	if (engine->virt == NULL || !engine->connected)
		return;
	/* everything libvirt has may be selected now, not only known rows */
	{
		g_autoptr(GError) error = NULL;
		if (!vc_engine_reconcile(engine, &error))
			vc_engine_log(G_LOG_LEVEL_WARNING, "reload", NULL, NULL, NULL,
				      "re-evaluation after reload failed: %s", error->message);
	}
}

/* ---- control requests --------------------------------------------------- */

/* state -> number of VMs in it (keys borrowed from the rows) */
static GHashTable *
vc_engine_count_states(VcEngine *engine)
{
	GHashTable *states = g_hash_table_new(g_str_hash, g_str_equal);
	GHashTableIter iter;
	VcDomainRecord *row;
	gpointer count;

	g_hash_table_iter_init(&iter, engine->rows);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&row)) {
		count = g_hash_table_lookup(states, row->state);
		g_hash_table_insert(states, row->state,
				    GUINT_TO_POINTER(GPOINTER_TO_UINT(count) + 1));
	}
	return states;
}

JsonNode *
vc_engine_get_status(VcEngine *engine)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(GHashTable) states = vc_engine_count_states(engine);
	GHashTableIter iter;
	const char *state;
	gpointer count;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "libvirt_connected");
	json_builder_add_boolean_value(b, engine->connected);
	json_builder_set_member_name(b, "libvirt_uri");
	json_builder_add_string_value(b, engine->virt ? vc_virt_get_uri(engine->virt) : NULL);
	json_builder_set_member_name(b, "ca_id");
	json_builder_add_string_value(b, vc_ca_get_id(engine->ca));
	json_builder_set_member_name(b, "domains");
	json_builder_add_int_value(b, g_hash_table_size(engine->rows));
	json_builder_set_member_name(b, "states");
	json_builder_begin_object(b);
	g_hash_table_iter_init(&iter, states);
	while (g_hash_table_iter_next(&iter, (gpointer *)&state, &count)) {
		json_builder_set_member_name(b, state);
		json_builder_add_int_value(b, GPOINTER_TO_UINT(count));
	}
	json_builder_end_object(b);
	json_builder_set_member_name(b, "queued");
	json_builder_add_int_value(b, vc_engine_get_queue_length(engine));
	json_builder_set_member_name(b, "events");
	json_builder_add_int_value(b, (gint64)engine->n_events);
	json_builder_set_member_name(b, "issued");
	json_builder_add_int_value(b, (gint64)engine->n_issued);
	json_builder_set_member_name(b, "revoked");
	json_builder_add_int_value(b, (gint64)engine->n_revoked);
	json_builder_set_member_name(b, "failed");
	json_builder_add_int_value(b, (gint64)engine->n_failed);
	json_builder_set_member_name(b, "reconciles");
	json_builder_add_int_value(b, (gint64)engine->n_reconciles);
	json_builder_set_member_name(b, "policy_groups");
	json_builder_add_int_value(b, vc_policy_set_get_size(engine->policy));
	json_builder_set_member_name(b, "policy_warnings");
	json_builder_begin_array(b);
	{
		GPtrArray *w = vc_policy_set_get_warnings(engine->policy);
		for (guint i = 0; i < w->len; i++)
			json_builder_add_string_value(b, g_ptr_array_index(w, i));
	}
	json_builder_end_array(b);
	json_builder_end_object(b);
	return json_builder_get_root(b);
}

JsonNode *
vc_engine_list(VcEngine *engine, GError **error)
{
	g_autoptr(GPtrArray) certs = vc_store_cert_list(engine->store, NULL, error);
	JsonArray *array;
	JsonNode *node;

	if (certs == NULL)
		return NULL;
	array = json_array_sized_new(certs->len);
	for (guint i = 0; i < certs->len; i++)
		json_array_add_element(array, vc_cert_record_to_json(g_ptr_array_index(certs, i)));
	node = json_node_new(JSON_NODE_ARRAY);
	json_node_take_array(node, array);
	return node;
}

/* The row of VM (UUID or name). */
static VcDomainRecord *
vc_engine_find_row(VcEngine *engine, const char *vm)
{
	GHashTableIter iter;
	VcDomainRecord *row = g_hash_table_lookup(engine->rows, vm);

	if (row != NULL)
		return row;
	g_hash_table_iter_init(&iter, engine->rows);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&row))
		if (g_strcmp0(row->name, vm) == 0 || g_ascii_strcasecmp(row->uuid, vm) == 0)
			return row;
	return NULL;
}

JsonNode *
vc_engine_show(VcEngine *engine, const char *vm_or_serial, GError **error)
{
	VcDomainRecord *row = vc_engine_find_row(engine, vm_or_serial);
	g_autoptr(JsonBuilder) b = NULL;
	g_autoptr(GPtrArray) certs = NULL;

	if (row == NULL) {
		g_autofree char *serial = g_ascii_strdown(vm_or_serial, -1);
		g_autoptr(VcCertRecord) rec = vc_store_cert_get(engine->store, serial, NULL);
		if (rec != NULL)
			return vc_cert_record_to_json(rec);
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND,
			    "no VM or serial '%s' known to the daemon", vm_or_serial);
		return NULL;
	}
	certs = vc_store_cert_list(engine->store, row->uuid, error);
	if (certs == NULL)
		return NULL;
	b = json_builder_new();
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "domain");
	json_builder_add_value(b, vc_domain_record_to_json(row));
	json_builder_set_member_name(b, "certificates");
	json_builder_begin_array(b);
	for (guint i = 0; i < certs->len; i++)
		json_builder_add_value(b, vc_cert_record_to_json(g_ptr_array_index(certs, i)));
	json_builder_end_array(b);
	json_builder_end_object(b);
	return json_builder_get_root(b);
}

JsonNode *
vc_engine_renew(VcEngine *engine, const char *vm, GError **error)
{
	VcDomainRecord *row = vc_engine_find_row(engine, vm);
	g_autoptr(JsonBuilder) b = json_builder_new();

	if (row == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "no VM '%s' managed by the daemon",
			    vm);
		return NULL;
	}
	row->next_action_at = VC_ENGINE_RENEW_NOW;
	vc_engine_evaluate(engine, row->uuid, NULL, "manual renewal");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "vm_uuid");
	json_builder_add_string_value(b, row->uuid);
	json_builder_set_member_name(b, "state");
	json_builder_add_string_value(b, row->state);
	json_builder_end_object(b);
	return json_builder_get_root(b);
}

JsonNode *
vc_engine_revoke(VcEngine *engine, const char *vm_or_serial, int reason, GError **error)
{
	VcDomainRecord *row = vc_engine_find_row(engine, vm_or_serial);
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(GPtrArray) serials = g_ptr_array_new_with_free_func(g_free);

	if (row != NULL) {
		/* the VM keeps running without a certificate until policy changes or
		 * an administrator renews it */
		guint n;
		vc_engine_cancel_issue(engine, row->uuid);
		n = engine->revoke_queue->len;
		vc_engine_queue_revoke_all(engine, row, NULL, reason,
					   "revoked by the administrator");
		for (guint i = n; i < engine->revoke_queue->len; i++) {
			VcQueuedRevoke *q = g_ptr_array_index(engine->revoke_queue, i);
			g_ptr_array_add(serials, g_strdup(q->serial));
		}
		g_clear_pointer(&row->current_serial, g_free);
		row->next_action_at = 0;
		vc_engine_row_set(engine, row, "REVOKING", NULL);
	} else {
		g_autofree char *serial = g_ascii_strdown(vm_or_serial, -1);
		g_autoptr(VcCertRecord) rec = NULL;
		g_autoptr(GError) local = NULL;
		rec = vc_store_cert_get(engine->store, serial, &local);
		if (rec == NULL) {
			if (g_error_matches(local, VC_ERROR, VC_ERROR_STORE))
				g_propagate_error(error, g_steal_pointer(&local));
			else
				g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND,
					    "no VM or certificate '%s' known to the daemon",
					    vm_or_serial);
			return NULL;
		}
		if (!vc_store_cert_revoke(engine->store, serial, reason, 0, error))
			return NULL;
		engine->n_revoked++;
		g_ptr_array_add(serials, g_strdup(serial));
		row = g_hash_table_lookup(engine->rows, rec->vm_uuid);
		if (row != NULL && g_strcmp0(row->current_serial, serial) == 0) {
			g_clear_pointer(&row->current_serial, g_free);
			row->next_action_at = 0;
			vc_engine_row_set(engine, row, "REVOKED", NULL);
		}
		vc_engine_emit(engine, "revoked", rec->vm_uuid, rec->vm_name, serial,
			       "revoked by the administrator");
	}
	/* durable before the reply: flush now rather than at idle */
	g_clear_handle_id(&engine->flush_source, g_source_remove);
	if (!vc_engine_flush_revocations(engine, error)) {
		vc_engine_schedule_flush(engine);
		return NULL;
	}
	/* a manual revocation is not the end of the VM's life: if policy still
	 * asks for a certificate, a new one (with a new key) is issued */
	if (row != NULL && g_strcmp0(row->state, "REVOKED") == 0) {
		vc_engine_row_set(engine, row, "NEW", NULL);
		vc_engine_evaluate(engine, row->uuid, NULL, "re-issue after a manual revocation");
	}
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "revoked");
	json_builder_begin_array(b);
	for (guint i = 0; i < serials->len; i++)
		json_builder_add_string_value(b, g_ptr_array_index(serials, i));
	json_builder_end_array(b);
	json_builder_end_object(b);
	vc_engine_schedule_flush(engine);
	return json_builder_get_root(b);
}

JsonNode *
vc_engine_issue_manual(VcEngine *engine, const VcIssueRequest *req, GError **error)
{
	g_autoptr(VcIssued) issued = NULL;
	g_autoptr(VcCertRecord) rec = NULL;

	issued = vc_issuer_issue(engine->issuer, req, error);
	if (issued == NULL)
		return NULL;
	rec = vc_store_cert_get(engine->store, issued->serial, error);
	if (rec == NULL)
		return NULL;
	engine->n_issued++;
	vc_engine_log(G_LOG_LEVEL_MESSAGE, "issued", req->vm_uuid, req->vm_name, issued->serial,
		      "VM %s: issued %s by hand", req->vm_name, issued->serial);
	vc_engine_emit(engine, "issued", req->vm_uuid, req->vm_name, issued->serial,
		       "manual issuance");
	return vc_cert_record_to_json(rec);
}

char *
vc_engine_get_cert_chain(VcEngine *engine, const char *vm_uuid, GError **error)
{
	VcDomainRecord *row = g_hash_table_lookup(engine->rows, vm_uuid);
	g_autofree char *cert = NULL;
	char *chain = NULL;

	if (row == NULL || row->current_serial == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "no current certificate for VM %s",
			    vm_uuid);
		return NULL;
	}
	if (!vc_engine_cert_pems(engine, row->current_serial, &cert, &chain, error))
		return NULL;
	return chain;
}

char *
vc_engine_get_metrics(VcEngine *engine)
{
	g_autoptr(GString) s = g_string_new(NULL);
	g_autoptr(GHashTable) states = vc_engine_count_states(engine);
	GHashTableIter iter;
	const char *state;
	gpointer count;

	g_string_append(s, "# HELP virtcert_domains VMs known to virtcertd, by state.\n"
			   "# TYPE virtcert_domains gauge\n");
	g_hash_table_iter_init(&iter, states);
	while (g_hash_table_iter_next(&iter, (gpointer *)&state, &count))
		g_string_append_printf(s, "virtcert_domains{state=\"%s\"} %u\n", state,
				       GPOINTER_TO_UINT(count));
	g_string_append_printf(s,
			       "# HELP virtcert_certificates_issued_total Certificates issued.\n"
			       "# TYPE virtcert_certificates_issued_total counter\n"
			       "virtcert_certificates_issued_total %" G_GUINT64_FORMAT "\n"
			       "# HELP virtcert_certificates_revoked_total Certificates revoked.\n"
			       "# TYPE virtcert_certificates_revoked_total counter\n"
			       "virtcert_certificates_revoked_total %" G_GUINT64_FORMAT "\n"
			       "# HELP virtcert_failures_total Decisions that failed.\n"
			       "# TYPE virtcert_failures_total counter\n"
			       "virtcert_failures_total %" G_GUINT64_FORMAT "\n"
			       "# HELP virtcert_libvirt_events_total libvirt events handled.\n"
			       "# TYPE virtcert_libvirt_events_total counter\n"
			       "virtcert_libvirt_events_total %" G_GUINT64_FORMAT "\n"
			       "# HELP virtcert_queue_length Issuances and revocations waiting.\n"
			       "# TYPE virtcert_queue_length gauge\n"
			       "virtcert_queue_length %u\n"
			       "# HELP virtcert_libvirt_connected 1 while connected to libvirt.\n"
			       "# TYPE virtcert_libvirt_connected gauge\n"
			       "virtcert_libvirt_connected %d\n",
			       engine->n_issued, engine->n_revoked, engine->n_failed,
			       engine->n_events, vc_engine_get_queue_length(engine),
			       engine->connected ? 1 : 0);
	return g_string_free(g_steal_pointer(&s), FALSE);
}

guint64
vc_engine_get_revocation_count(VcEngine *engine)
{
	return engine->n_revoked;
}
