/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-engine-private.h"

#include "vc-error.h"

/* The store writes and the CA work, batched: decisions that arrive together
 * share one commit (group commit). The order is structural: rows and
 * revocations are committed first, then the effects of the moves decided
 * before the commit run (vc_engine_run_effects()): no guest job, claim or
 * metadata write starts for a state the store does not hold yet. */

void
vc_queued_issue_free(VcQueuedIssue *q)
{
	if (q == NULL)
		return; /* stolen (vc_engine_keep_unstored()) */
	g_free(q->uuid);
	g_free(q->name);
	g_strfreev(q->names);
	g_free(q->profile_key);
	g_free(q->placement);
	EVP_PKEY_free(q->public_key);
	g_free(q->why);
	g_free(q);
}

void
vc_queued_revoke_free(VcQueuedRevoke *q)
{
	g_free(q->serial);
	g_free(q->uuid);
	g_free(q->name);
	g_free(q->why);
	g_free(q);
}

void
vc_engine_cancel_issue(VcEngine *engine, const char *uuid)
{
	GList *link;

	if (!g_hash_table_contains(engine->issue_queue, uuid))
		return;
	link = g_queue_find_custom(&engine->issue_order, uuid, (GCompareFunc)g_strcmp0);
	if (link != NULL) {
		g_free(link->data);
		g_queue_delete_link(&engine->issue_order, link);
	}
	g_hash_table_remove(engine->issue_queue, uuid);
}

/* The queued issuance of UUID, queued now if there is none. */
VcQueuedIssue *
vc_engine_queue_issue(VcEngine *engine, const char *uuid)
{
	VcQueuedIssue *q = g_hash_table_lookup(engine->issue_queue, uuid);
	if (q == NULL) {
		q = g_new0(VcQueuedIssue, 1);
		q->uuid = g_strdup(uuid);
		q->queued_us = g_get_monotonic_time();
		g_hash_table_insert(engine->issue_queue, q->uuid, q);
		g_queue_push_tail(&engine->issue_order, g_strdup(uuid));
	}
	return q;
}

/* Pushes the work decided before the last commit. */
void
vc_engine_run_effects(VcEngine *engine)
{
	g_autoptr(GPtrArray) effects = NULL;

	if (engine->effects->len == 0)
		return;
	vc_crash_point("effects-before-run");
	effects = g_steal_pointer(&engine->effects);
	engine->effects = g_ptr_array_new_with_free_func((GDestroyNotify)vc_engine_work_free);
	for (guint i = 0; i < effects->len; i++)
		vc_engine_work_push(engine, g_ptr_array_steal_index(effects, i--));
}

/* Writes the dirty rows into the open transaction. They stay dirty until
 * the caller's commit succeeded (vc_engine_rows_committed()): a commit that
 * fails (disk full, read-only) leaves them to the next flush, never only in
 * memory. */
static gboolean
vc_engine_flush_rows(VcEngine *engine, GError **error)
{
	GHashTableIter iter;
	const char *uuid;

	g_hash_table_iter_init(&iter, engine->dirty);
	while (g_hash_table_iter_next(&iter, (gpointer *)&uuid, NULL)) {
		VcEngineVm *vm = vc_engine_vm_lookup(engine, uuid);
		if (vm != NULL && vm->row != NULL &&
		    !vc_store_domain_put(engine->store, vm->row, error))
			return FALSE;
	}
	return TRUE;
}

void
vc_engine_unstored_free(VcEngineUnstored *u)
{
	vc_issued_free(u->issued);
	vc_queued_issue_free(u->q);
	g_free(u);
}

/* An issuance once it is durable: counted, timed, logged and announced. */
static void
vc_engine_report_issued(VcEngine *engine, const VcQueuedIssue *q, const VcIssued *issued,
			gboolean renewal)
{
	g_autofree char *joined = g_strjoinv(", ", q->names);

	engine->n_issued++;
	vc_metric_add(engine->m_issued, NULL, 1);
	if (renewal)
		vc_metric_add(engine->m_renewed, NULL, 1);
	vc_metric_observe(engine->m_issue_seconds,
			  (double)(g_get_monotonic_time() - q->queued_us) / G_USEC_PER_SEC);
	vc_engine_log(G_LOG_LEVEL_MESSAGE, "issued", q->uuid, q->name, issued->serial,
		      "VM %s: issued %s for %s (%s)", q->name, issued->serial, joined, q->why);
	vc_engine_emit(engine, "issued", q->uuid, q->name, issued->serial, joined);
}

/* After the commit: the rows and the certificates a failed commit left in
 * memory (engine->unstored) are durable; those are reported now, as their
 * own batch's would have been. */
static void
vc_engine_rows_committed(VcEngine *engine)
{
	g_autoptr(GPtrArray) late = g_steal_pointer(&engine->unstored);

	engine->unstored = g_ptr_array_new_with_free_func((GDestroyNotify)vc_engine_unstored_free);
	g_hash_table_remove_all(engine->dirty);
	for (guint i = 0; i < late->len; i++) {
		VcEngineUnstored *u = g_ptr_array_index(late, i);
		vc_engine_report_issued(engine, u->q, u->issued, u->renewal);
	}
}

/* Certificates signed and applied to the VMs whose commit failed: written
 * again in every transaction until one commits, first, so that no row that
 * names them and no revocation of them is committed without them. */
static gboolean
vc_engine_write_unstored(VcEngine *engine, GError **error)
{
	g_autoptr(GPtrArray) issued = NULL;

	if (engine->unstored->len == 0)
		return TRUE;
	issued = g_ptr_array_sized_new(engine->unstored->len);
	for (guint i = 0; i < engine->unstored->len; i++)
		g_ptr_array_add(
		    issued, ((VcEngineUnstored *)g_ptr_array_index(engine->unstored, i))->issued);
	return vc_issuer_write_issued(engine->issuer, issued, error);
}

/* Rows left REVOKING (each is dirty: the move marked it) reach REVOKED in
 * the commit that holds their revocations: both commits (the revocations'
 * and the issuance batch's) write every revocation queued. A VM with nothing
 * left to revoke (it vanished holding no certificate) flushed with another's
 * issuance stayed REVOKING until the next restart when only the first did
 * (crash storm). */
static void
vc_engine_end_revoking(VcEngine *engine)
{
	g_autoptr(GPtrArray) ending = g_ptr_array_new();
	GHashTableIter iter;
	const char *uuid;

	g_hash_table_iter_init(&iter, engine->dirty);
	while (g_hash_table_iter_next(&iter, (gpointer *)&uuid, NULL)) {
		VcEngineVm *vm = vc_engine_vm_lookup(engine, uuid);
		if (vm != NULL && vm->row != NULL && vm->state == VC_DOMAIN_STATE_REVOKING)
			g_ptr_array_add(ending, vm);
	}
	for (guint i = 0; i < ending->len; i++)
		vc_engine_vm_move(engine, g_ptr_array_index(ending, i), VC_DOMAIN_STATE_REVOKED,
				  NULL);
}

/* Every queued revocation into the open transaction. */
static gboolean
vc_engine_write_revocations(VcEngine *engine, GError **error)
{
	for (guint i = 0; i < engine->revoke_queue->len; i++) {
		VcQueuedRevoke *q = g_ptr_array_index(engine->revoke_queue, i);
		if (!vc_store_cert_revoke(engine->store, q->serial, q->reason, 0, error))
			return FALSE;
	}
	return TRUE;
}

/* Once committed: the queue emptied, each revocation counted and reported. */
static void
vc_engine_report_revocations(VcEngine *engine)
{
	g_autoptr(GPtrArray) done = g_steal_pointer(&engine->revoke_queue);

	engine->revoke_queue =
	    g_ptr_array_new_with_free_func((GDestroyNotify)vc_queued_revoke_free);
	g_hash_table_remove_all(engine->revoke_set);
	for (guint i = 0; i < done->len; i++) {
		VcQueuedRevoke *q = g_ptr_array_index(done, i);
		engine->n_revoked++;
		vc_metric_add(engine->m_revoked, vc_reason_to_string(q->reason), 1);
		vc_engine_log(G_LOG_LEVEL_MESSAGE, "revoked", q->uuid, q->name, q->serial,
			      "VM %s: revoked %s (%s): %s", q->name ? q->name : q->uuid, q->serial,
			      vc_reason_to_string(q->reason), q->why);
		vc_engine_emit(engine, "revoked", q->uuid, q->name, q->serial, q->why);
	}
}

/* Revocations and row changes in one durable commit, then reported. */
gboolean
vc_engine_flush_revocations(VcEngine *engine, GError **error)
{
	if (engine->revoke_queue->len == 0 && g_hash_table_size(engine->dirty) == 0 &&
	    engine->unstored->len == 0)
		return TRUE;
	if (!vc_store_begin(engine->store, error))
		return FALSE;
	if (!vc_engine_write_unstored(engine, error) || !vc_engine_write_revocations(engine, error))
		goto fail;
	vc_engine_end_revoking(engine);
	if (!vc_engine_flush_rows(engine, error))
		goto fail;
	vc_crash_point(engine->revoke_queue->len > 0 ? "revoke-before-commit"
						     : "rows-before-commit");
	if (!vc_store_commit(engine->store, error))
		goto fail;
	vc_engine_rows_committed(engine);
	vc_crash_point(engine->revoke_queue->len > 0 ? "revoke-after-commit" : "rows-after-commit");
	vc_engine_report_revocations(engine);
	return TRUE;
fail:
	vc_store_rollback(engine->store);
	return FALSE;
}

/* What follows an issuance, run once it is durable: into the guest, into
 * the domain's metadata, and the claim of a VM that migrated here without
 * an agent. */
static void
vc_engine_after_issue(VcEngine *engine, VcEngineVm *vm)
{
	if (vm->deliverable) {
		vm->retry_at = 0;
		vc_engine_start_work(engine, vm, VC_ENGINE_WORK_DELIVER);
	}
	/* the issuer and its peer URL travel with the VM's definition */
	if (engine->config->peer_url != NULL)
		vc_engine_start_work(engine, vm, VC_ENGINE_WORK_METADATA);
	/* nothing to deliver: claim at once after a migration here */
	if (!vm->has_agent && vm->claim_wanted && vm->claim_peer != NULL) {
		vm->claim_wanted = FALSE;
		vc_engine_start_work(engine, vm, VC_ENGINE_WORK_CLAIM);
	}
}

/* The commit of an applied batch failed (disk full, read-only): its VMs
 * already hold the new certificates in memory, with their deliveries waiting
 * for a commit (effects), so the certificates are kept and written again by
 * the next transaction, which commits them with the rows that name them
 * (vc_engine_write_unstored()) and reports them as issued then
 * (vc_engine_rows_committed()). A restart before that finds them PENDING and
 * abandons them (on the CRL); the rows it finds name the old ones. */
static void
vc_engine_keep_unstored(VcEngine *engine, GPtrArray *batch, GPtrArray *results,
			const gboolean *renewal)
{
	for (guint i = 0; i < results->len; i++) {
		VcIssued *issued = g_ptr_array_index(results, i);
		VcEngineUnstored *u;
		if (issued->error != NULL || issued->cert == NULL)
			continue;
		u = g_new0(VcEngineUnstored, 1);
		u->issued = g_steal_pointer(&results->pdata[i]);
		u->q = g_steal_pointer(&batch->pdata[i]);
		u->renewal = renewal[i];
		g_ptr_array_add(engine->unstored, u);
	}
}

static gboolean
vc_engine_flush_issues(VcEngine *engine, GError **error)
{
	g_autoptr(GPtrArray) batch =
	    g_ptr_array_new_with_free_func((GDestroyNotify)vc_queued_issue_free);
	g_autofree VcIssueRequest *reqs = NULL;
	g_autoptr(GPtrArray) results = NULL;
	g_autofree gboolean *renewal = NULL;
	g_autoptr(GError) refused = NULL;

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
	/* decided before this host's certificate stopped being usable: not
	 * issued now; the decisions after the next look say what happens */
	if (!vc_engine_host_may_issue(engine, &refused)) {
		for (guint i = 0; i < batch->len; i++) {
			VcQueuedIssue *q = g_ptr_array_index(batch, i);
			VcEngineVm *vm = vc_engine_vm(engine, q->uuid);
			vc_engine_vm_ensure_row(engine, vm, q->name);
			vc_engine_vm_fail(engine, vm, "issuance refused", refused->message, 0);
		}
		return TRUE;
	}
	reqs = g_new0(VcIssueRequest, batch->len);
	for (guint i = 0; i < batch->len; i++) {
		VcQueuedIssue *q = g_ptr_array_index(batch, i);
		reqs[i].vm_uuid = q->uuid;
		reqs[i].vm_name = q->name;
		reqs[i].dns_names = (const char *const *)q->names;
		reqs[i].key_type = q->key_type;
		reqs[i].public_key = q->public_key;
		reqs[i].lifetime_s = q->lifetime_s;
		reqs[i].placement = q->placement;
	}
	/* the DER and the rows that refer to it in one commit (below) */
	results = vc_issuer_issue_batch_open(engine->issuer, reqs, batch->len, error);
	if (results == NULL) {
		/* the store failed: retry the batch at the next flush. Serials it
		 * recorded stay PENDING (abandoned and listed on the CRL at the next
		 * start); none was stored VALID, since the DER is committed only
		 * with the rows below */
		for (guint i = batch->len; i > 0; i--) {
			VcQueuedIssue *q = g_ptr_array_steal_index(batch, i - 1);
			g_hash_table_insert(engine->issue_queue, q->uuid, q);
			g_queue_push_head(&engine->issue_order, g_strdup(q->uuid));
		}
		return FALSE;
	}
	renewal = g_new0(gboolean, batch->len);
	for (guint i = 0; i < batch->len; i++) {
		VcQueuedIssue *q = g_ptr_array_index(batch, i);
		VcIssued *issued = g_ptr_array_index(results, i);
		VcEngineVm *vm = vc_engine_vm(engine, q->uuid);
		VcDomainRecord *row = vc_engine_vm_ensure_row(engine, vm, q->name);
		VcCertRecord rec = {.serial = issued->serial,
				    .not_before = issued->not_before,
				    .not_after = issued->not_after};
		if (issued->error != NULL) {
			/* a refusal a retry cannot change waits for policy or
			 * metadata to change; anything else is retried with backoff */
			if (g_error_matches(issued->error, VC_ERROR, VC_ERROR_POLICY) ||
			    g_error_matches(issued->error, VC_ERROR, VC_ERROR_INVALID_NAME)) {
				g_free(vm->refused_profile);
				vm->refused_profile = g_strdup(q->profile_key);
			}
			vc_engine_vm_fail(engine, vm, "issuance failed", issued->error->message, 0);
			continue;
		}
		g_clear_pointer(&vm->refused_profile, g_free);
		/* a renewal replaces a certificate the VM holds */
		renewal[i] = row->current_serial != NULL;
		g_free(row->current_serial);
		row->current_serial = g_strdup(issued->serial);
		g_free(row->names_key);
		row->names_key = g_strdup(q->profile_key);
		row->next_action_at = vc_engine_renew_at(engine, &rec);
		row->renew_pending = FALSE;
		vc_engine_vm_succeeded(engine, vm);
		vc_engine_vm_move(engine, vm, VC_DOMAIN_STATE_ISSUED, NULL);
		vc_engine_vm_mark_dirty(engine, vm);
		if (issued->key != NULL && vm->has_agent) {
			/* kept in memory only, until it is in the guest */
			char *pem = vc_key_to_pem(issued->key, NULL);
			if (pem != NULL)
				g_hash_table_replace(engine->keys, g_strdup(issued->serial), pem);
		}
		if (!vm->has_agent) {
			/* nothing to deliver: the new certificate supersedes the others now */
			vc_engine_vm_retire(engine, vm, issued->serial, VC_REASON_SUPERSEDED,
					    "superseded by a new certificate");
		}
		/* DELIVERING is committed with ISSUED; the work runs after the commit */
		vc_engine_after_issue(engine, vm);
	}
	/* the certificates the new ones supersede (VMs without an agent) are
	 * revoked in the same commit: a crash between two commits left them
	 * valid beside the new one for good (crash storm) */
	if (!vc_engine_write_unstored(engine, error) ||
	    !vc_engine_write_revocations(engine, error)) {
		vc_store_rollback(engine->store);
		vc_engine_keep_unstored(engine, batch, results, renewal);
		return FALSE;
	}
	vc_engine_end_revoking(engine);
	if (!vc_engine_flush_rows(engine, error)) {
		vc_store_rollback(engine->store);
		vc_engine_keep_unstored(engine, batch, results, renewal);
		return FALSE;
	}
	vc_crash_point("issue-rows-before-commit");
	if (!vc_store_commit(engine->store, error)) {
		vc_store_rollback(engine->store);
		vc_engine_keep_unstored(engine, batch, results, renewal);
		return FALSE;
	}
	vc_engine_rows_committed(engine);
	vc_crash_point("issue-rows-after-commit");
	for (guint i = 0; i < batch->len; i++) {
		VcIssued *issued = g_ptr_array_index(results, i);
		if (issued->error == NULL)
			vc_engine_report_issued(engine, g_ptr_array_index(batch, i), issued,
						renewal[i]);
	}
	vc_engine_report_revocations(engine);
	vc_engine_run_effects(engine);
	return TRUE;
}

/* Is an issuance queued that does not wait for a guest's CSR? */
static gboolean
vc_engine_has_ready_issues(VcEngine *engine)
{
	for (GList *l = engine->issue_order.head; l != NULL; l = l->next) {
		const VcQueuedIssue *q = g_hash_table_lookup(engine->issue_queue, l->data);
		if (q != NULL && (!q->awaits_csr || q->public_key != NULL))
			return TRUE;
	}
	return FALSE;
}

/* The store refused a commit (disk full, read-only, I/O error): nothing
 * was reported, everything stays queued, and the flush is retried after 1,
 * 2, 4, 8 s (then every 8 s). Said once per distinct error; `virtcert
 * status` shows it as store_error until a flush succeeds. */
static gboolean vc_engine_flush_cb(gpointer user_data);

static void
vc_engine_flush_failed(VcEngine *engine, const char *what, const GError *error)
{
	g_autofree char *msg = g_strdup_printf("%s: %s", what, error->message);
	guint delay = 1u << MIN(engine->flush_failures, 3);

	engine->flush_failures++;
	if (g_strcmp0(engine->store_error, msg) != 0)
		vc_engine_log(G_LOG_LEVEL_WARNING, "store", NULL, NULL, NULL,
			      "%s; nothing of it is reported, retrying in %u s (then every "
			      "8 s while it fails)",
			      msg, delay);
	g_free(engine->store_error);
	engine->store_error = g_steal_pointer(&msg);
	/* the moves of an applied batch scheduled a flush of their own: the
	 * backoff replaces it (it was overwritten, and so ran 5 ms later and
	 * again on an engine freed in the meantime), and is not late before
	 * its delay (vc_engine_flush_if_due()) */
	g_clear_handle_id(&engine->flush_source, g_source_remove);
	engine->flush_due_us = g_get_monotonic_time() + (gint64)delay * G_USEC_PER_SEC;
	engine->flush_source = g_timeout_add_seconds(delay, vc_engine_flush_cb, engine);
}

static void
vc_engine_flush_succeeded(VcEngine *engine)
{
	if (engine->store_error == NULL)
		return;
	vc_engine_log(G_LOG_LEVEL_MESSAGE, "store", NULL, NULL, NULL,
		      "the store accepts writes again after %u failed flushes",
		      engine->flush_failures);
	g_clear_pointer(&engine->store_error, g_free);
	engine->flush_failures = 0;
}

const char *
vc_engine_get_store_error(VcEngine *engine)
{
	return engine->store_error;
}

static gboolean
vc_engine_flush_cb(gpointer user_data)
{
	VcEngine *engine = user_data;
	g_autoptr(GError) error = NULL;
	gboolean rows_first;

	engine->flush_source = 0;
	/* with nothing to revoke, the rows decided so far go in the issuance
	 * batch's commit (one commit less per flush in a storm), and their
	 * effects run after that commit, at the end of vc_engine_flush_issues() */
	rows_first = engine->revoke_queue->len > 0 || !vc_engine_has_ready_issues(engine);
	if (rows_first) {
		if (!vc_engine_flush_revocations(engine, &error)) {
			vc_engine_flush_failed(
			    engine, "cannot commit revocations and state changes", error);
			return G_SOURCE_REMOVE;
		}
		/* what was decided so far is durable: its effects may run */
		vc_engine_run_effects(engine);
	}
	if (!vc_engine_flush_issues(engine, &error)) {
		vc_engine_flush_failed(engine, "issuance batch failed", error);
		return G_SOURCE_REMOVE;
	}
	vc_engine_flush_succeeded(engine);
	/* superseded certificates found while issuing, moves to DELIVERING and
	 * their jobs, and more queued work: the next round */
	if (engine->revoke_queue->len > 0 || g_hash_table_size(engine->dirty) > 0 ||
	    engine->effects->len > 0 || !g_queue_is_empty(&engine->issue_order))
		vc_engine_schedule_flush(engine);
	vc_engine_schedule_tick(engine);
	return G_SOURCE_REMOVE;
}

void
vc_engine_schedule_flush(VcEngine *engine)
{
	/* a short window at normal priority: decisions that arrive together share
	 * one commit (group commit) */
	if (engine->flush_source == 0) {
		engine->flush_due_us = g_get_monotonic_time() + VC_ENGINE_FLUSH_WINDOW_MS * 1000;
		engine->flush_source =
		    g_timeout_add_full(G_PRIORITY_DEFAULT, VC_ENGINE_FLUSH_WINDOW_MS,
				       vc_engine_flush_cb, engine, NULL);
	}
}

/* A storm of events can keep the main loop from coming round to the flush
 * timer (libvirt dispatches the events it queued during one call in one
 * go): flushes now once the timer is VC_ENGINE_FLUSH_LATE_MS late, so that a
 * certificate waits for a short window, not for the storm to end. Not at
 * once: every flush costs three commits, and in a storm, batches of a few
 * milliseconds' worth of events take CPU from libvirtd (a 1,000-domain storm
 * ran 40% longer with inline flushes at 0 ms late, as long as without them at
 * 20-40 ms, with p99 latency 45-68 ms instead of 430-550 ms). */
void
vc_engine_flush_if_due(VcEngine *engine)
{
	if (engine->flush_source == 0 ||
	    g_get_monotonic_time() < engine->flush_due_us + VC_ENGINE_FLUSH_LATE_MS * 1000)
		return;
	g_clear_handle_id(&engine->flush_source, g_source_remove);
	vc_engine_flush_cb(engine);
}
