/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-engine-private.h"

#include "vc-domain-xml.h"
#include "vc-error.h"
#include "vc-placement.h"

/* Evaluation in three steps: the facts (one domain fetch, the policy, the
 * names, this host's certificate, the current certificate), the decision
 * (vc_engine_decide(), pure), and its application here. */

/* Renewal at 2/3 of the life (counted from issuance, not from the
 * backdated notBefore), with jitter of up to 1/30 of the life either side,
 * derived from the serial so that it is stable across restarts. */
gint64
vc_engine_renew_at(const VcEngine *engine, const VcCertRecord *rec)
{
	gint64 start =
	    rec->created_at > 0 ? rec->created_at : rec->not_before + engine->config->backdate_s;
	gint64 life = MAX(rec->not_after - start, 1);
	gint64 span = MAX(life / 15, 1);
	guint h = g_str_hash(rec->serial);
	return start + life * 2 / 3 + (gint64)(h % (guint)span) - span / 2;
}

/* The PEM of the certificate SERIAL and of the chain (certificate + issuers). */
gboolean
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

/* Does the owner's signature hold the VM's placement ([placement]
 * require-signed, owner-ca)? Checked on every evaluation, so a placement
 * edited without a valid signature while the VM runs is refused at its
 * METADATA_CHANGE, and a new owner CRL counts at the next one. */
static gboolean
vc_engine_owner_allows(VcEngine *engine, const VcDomainInfo *info, GError **error)
{
	g_autofree char *reason = NULL;

	if (engine->config->owner_ca == NULL && !engine->config->require_signed)
		return TRUE;
	if (engine->owner_trust == NULL && engine->config->owner_ca != NULL)
		engine->owner_trust =
		    vc_owner_trust_new(engine->config->owner_ca, engine->config->owner_crl);
	if (vc_placement_sig_check(engine->owner_trust, engine->config->require_signed, info,
				   vc_engine_now(), &reason))
		return TRUE;
	g_set_error_literal(error, VC_ERROR, VC_ERROR_POLICY, reason);
	return FALSE;
}

/* ---- facts ------------------------------------------------------------- */

/* Everything the facts point into, owned for the length of one evaluation. */
typedef struct {
	VcVirtDomain *dom;
	VcDomainInfo *info;
	VcPolicy *policy;
	GStrv names;
	char *names_key;
	GError *error;
} VcEngineFactsStore;

static void
vc_engine_facts_store_clear(VcEngineFactsStore *s)
{
	g_clear_pointer(&s->dom, vc_virt_domain_free);
	g_clear_pointer(&s->info, vc_domain_info_free);
	g_clear_pointer(&s->policy, vc_policy_free);
	g_clear_pointer(&s->names, g_strfreev);
	g_clear_pointer(&s->names_key, g_free);
	g_clear_error(&s->error);
}

static void
vc_engine_gather_facts(VcEngine *engine, VcEngineVm *vm, gint64 now, VcEngineFactsStore *s,
		       VcEngineFacts *f)
{
	VcNameVars vars;
	gboolean withdraw = TRUE;

	f->fetched = TRUE;
	s->dom = vc_virt_get_domain(engine->virt, vm->uuid, TRUE, &s->error);
	if (s->dom == NULL) {
		if (!g_error_matches(s->error, VC_ERROR, VC_ERROR_NOT_FOUND))
			f->fetch_error = s->error->message;
		return;
	}
	f->exists = TRUE;
	f->active = s->dom->active;
	f->persistent = s->dom->persistent;
	s->info = vc_domain_info_parse(s->dom->xml, -1, &s->error);
	if (s->info == NULL) {
		f->refused_what = "domain XML refused";
		f->refused_why = s->error->message;
		return;
	}
	f->has_agent = s->info->has_guest_agent;
	f->agent_connected = s->info->guest_agent_connected;
#ifdef VC_TEST_SEAMS
	{
		g_autofree char *sock = vc_engine_test_agent_socket(s->info->name);
		if (sock != NULL && f->has_agent && f->active)
			f->agent_connected = g_file_test(sock, G_FILE_TEST_EXISTS);
	}
#endif
	s->policy =
	    vc_domain_info_resolve_policy(s->info, engine->policy, engine->config->issue_all, NULL,
					  engine->config->default_lifetime_s, &s->error);
	if (s->error != NULL) {
		f->refused_what = "policy refused";
		f->refused_why = s->error->message;
		return;
	}
	if (s->policy == NULL)
		return;
	f->policy = s->policy;
	/* before the names: a placement weakened without its owner's
	 * signature withdraws the certificate whatever else is wrong */
	if (!vc_engine_owner_allows(engine, s->info, &s->error)) {
		f->refused_what = "placement signature refused";
		f->refused_why = s->error->message;
		f->refused_by_host = TRUE;
		return;
	}
	vc_domain_info_get_name_vars(s->info, &vars);
	s->names = vc_name_expand_all((const char *const *)s->policy->names, &vars, &s->error);
	if (s->names == NULL ||
	    !vc_ca_check_names(engine->ca, (const char *const *)s->names, &s->error)) {
		f->refused_what = "names refused";
		f->refused_why = s->error->message;
		return;
	}
	s->names_key = vc_engine_profile_key((const char *const *)s->names, s->policy);
	f->names_key = s->names_key;
	if (!vc_engine_host_allows(engine, s->policy, &withdraw, &s->error)) {
		f->refused_what = "refused on this host";
		f->refused_why = s->error->message;
		f->refused_by_host = withdraw;
		return;
	}
	if (vm->row != NULL && vm->row->current_serial != NULL) {
		g_autoptr(VcCertRecord) cur =
		    vc_store_cert_get(engine->store, vm->row->current_serial, NULL);
		if (cur != NULL && cur->status == VC_CERT_STATUS_VALID && cur->not_after > now) {
			f->cur_valid = TRUE;
			f->cur_renew_at = vc_engine_renew_at(engine, cur);
		}
		f->have_key = s->policy->key_mode == VC_KEY_MODE_GUEST ||
			      g_hash_table_contains(engine->keys, vm->row->current_serial);
	}
}

static void
vc_engine_vm_view(VcEngine *engine, const VcEngineVm *vm, VcEngineVmView *v)
{
	const VcQueuedIssue *q = g_hash_table_lookup(engine->issue_queue, vm->uuid);

	memset(v, 0, sizeof(*v));
	v->has_row = vm->row != NULL;
	v->state = vm->row != NULL ? vm->state : VC_DOMAIN_STATE_NEW;
	if (vm->row != NULL) {
		v->has_serial = vm->row->current_serial != NULL;
		v->names_key = vm->row->names_key;
		v->next_action_at = vm->row->next_action_at;
		v->renew_pending = vm->row->renew_pending;
		v->failures = vm->row->failures;
	}
	v->stopped_migrated = vm->stopped_migrated_at > 0;
	v->check_wanted = vm->check_wanted;
	v->job_running = vm->job_running;
	v->retry_at = vm->retry_at;
	v->agent_reset_at = vm->agent_reset_at;
	v->issue_queued = q != NULL;
	v->csr_ready = q != NULL && q->public_key != NULL;
	v->handover_grace_s = engine->config->handover_grace_s;
}

/* ---- apply ------------------------------------------------------------- */

/* The delivery plan (where and how, as policy says now) and the placement
 * the issuer judges a claim by after the VM migrated away. */
static void
vc_engine_vm_remember_plan(VcEngineVm *vm, const VcEngineFacts *f, const VcPolicy *policy)
{
	vm->deliverable = f->active && f->has_agent && f->agent_connected;
	vm->has_agent = f->has_agent;
	vm->key_mode = policy->key_mode;
	vm->key_type = policy->key_type;
	/* paths only where a delivery can happen: thousands of VMs without an
	 * agent channel need none of them */
	g_free(vm->cert_path);
	vm->cert_path = vm->has_agent ? g_strdup(policy->cert_path) : NULL;
	g_free(vm->chain_path);
	vm->chain_path = vm->has_agent ? g_strdup(policy->chain_path) : NULL;
	g_free(vm->key_path);
	vm->key_path = vm->has_agent ? g_strdup(policy->key_path) : NULL;
	g_free(vm->owner);
	vm->owner = vm->has_agent ? g_strdup(policy->owner) : NULL;
	g_free(vm->reload);
	vm->reload = vm->has_agent ? g_strdup(policy->reload) : NULL;
	g_clear_pointer(&vm->placement, vc_policy_free);
	vm->placement =
	    vc_placement_is_restricted(policy) ? vc_policy_copy_placement(policy) : NULL;
	vm->placement_known = TRUE;
}

static void
vc_engine_apply(VcEngine *engine, VcEngineVm *vm, const VcEngineDecision *d, const VcEngineFacts *f,
		VcEngineFactsStore *s, const char *input_why, gint64 now)
{
	const char *name = s->dom != NULL ? s->dom->name : vm->row != NULL ? vm->row->name : NULL;
	g_autofree char *retire_why = NULL;

	/* what the input tells about the VM */
	if (d->set_stopped_migrated)
		vm->stopped_migrated_at = now;
	if (d->clear_stopped_migrated)
		vm->stopped_migrated_at = 0;
	if (d->want_claim)
		vm->claim_wanted = TRUE;
	if (d->want_check)
		vm->check_wanted = TRUE;
	if (d->reset_retry) {
		gint failures = vm->row != NULL ? vm->row->failures : 0;
		vm->retry_at = 0;
		/* the next agent-connected retry-now waits as long as a failure's
		 * backoff would */
		vm->agent_reset_at =
		    failures > 0 ? now + MIN((gint64)1 << MIN(failures, 16), VC_ENGINE_RETRY_MAX_S)
				 : 0;
	}
	vc_engine_vm_set_name(engine, vm, name);
	if (s->info != NULL && f->policy != NULL && s->info->issuer_peer != NULL &&
	    g_strcmp0(s->info->issuer_peer, engine->config->peer_url) != 0) {
		/* the issuer of a VM that migrated here, to claim it from */
		g_free(vm->claim_peer);
		vm->claim_peer = g_strdup(s->info->issuer_peer);
		g_free(vm->claim_serial);
		vm->claim_serial = g_strdup(s->info->issued_serial);
	}

	if (d->why == VC_ENGINE_WHY_FETCH_FAILED)
		vc_engine_log(G_LOG_LEVEL_WARNING, "evaluate", vm->uuid, name, NULL,
			      "VM %s: cannot read its definition (%s); the next reconcile retries",
			      name != NULL ? name : vm->uuid, f->fetch_error);
	else if (d->why == VC_ENGINE_WHY_UNDEFINED_MIGRATED)
		vc_engine_log(G_LOG_LEVEL_MESSAGE, "migrated", vm->uuid, name, NULL,
			      "VM %s: undefined after migrating away; not a deletion", name);

	if (d->end_life && vm->row != NULL) {
		vc_engine_vm_retire(engine, vm, NULL, VC_REASON_CESSATION_OF_OPERATION,
				    "undefined");
		vc_engine_vm_move(engine, vm, VC_DOMAIN_STATE_REVOKING, NULL);
		vc_engine_log(G_LOG_LEVEL_MESSAGE, "end-of-life", vm->uuid, name, NULL,
			      "VM %s: undefined; revoking its certificates (%s)",
			      name != NULL ? name : vm->uuid,
			      vc_reason_to_string(VC_REASON_CESSATION_OF_OPERATION));
	}
	if (d->new_generation && vm->row != NULL) {
		g_clear_pointer(&vm->refused_profile, g_free);
		vm->row->generation++;
		vm->row->renew_pending = FALSE;
		vm->row->failures = 0;
		vc_engine_vm_move(engine, vm, VC_DOMAIN_STATE_NEW, NULL);
		vc_engine_vm_mark_dirty(engine, vm);
	}
	if (d->cancel_issue)
		vc_engine_cancel_issue(engine, vm->uuid);
	if (d->set_renew_pending && vm->row != NULL && !vm->row->renew_pending) {
		vm->row->renew_pending = TRUE;
		vc_engine_vm_mark_dirty(engine, vm);
	}
	if (d->remember_plan)
		vc_engine_vm_remember_plan(vm, f, f->policy);
	if (d->retire) {
		if (d->retire_why != NULL)
			retire_why = g_strdup(d->retire_why);
		else if (d->why == VC_ENGINE_WHY_GRACE_ENDED)
			retire_why = g_strdup_printf("migrated to a host that presented no "
						     "trusted claim within %" G_GINT64_FORMAT " s",
						     engine->config->handover_grace_s);
		else
			retire_why = g_strdup(vc_engine_why_to_string(d->why));
		vc_engine_vm_retire(engine, vm, NULL, d->retire_reason, retire_why);
	}
	if (d->queue_issue) {
		VcQueuedIssue *q;
		vc_crash_point(vm->row != NULL && vm->row->current_serial != NULL ? "renew-queued"
										  : "issue-queued");
		q = vc_engine_queue_issue(engine, vm->uuid);
		g_free(q->name);
		q->name = g_strdup(name);
		g_strfreev(q->names);
		q->names = g_steal_pointer(&s->names);
		g_free(q->profile_key);
		q->profile_key = g_strdup(f->names_key);
		q->key_type = f->policy->key_type;
		q->lifetime_s = f->policy->lifetime_s;
		g_free(q->placement);
		q->placement = vc_placement_to_canonical(f->policy);
		q->awaits_csr = f->policy->key_mode == VC_KEY_MODE_GUEST;
		g_free(q->why);
		q->why = g_strdup(d->why == VC_ENGINE_WHY_ISSUE ? input_why
								: vc_engine_why_to_string(d->why));
	}
	if (d->move) {
		vc_engine_vm_ensure_row(engine, vm, name);
		if (d->fail)
			vc_engine_vm_fail(engine, vm, f->refused_what, f->refused_why,
					  d->next_action_at);
		else
			vc_engine_vm_move(engine, vm, d->state,
					  d->why == VC_ENGINE_WHY_GRACE_ENDED ? retire_why
									      : d->waiting);
	}
	if (d->set_next_action && !d->fail && vm->row != NULL &&
	    vm->row->next_action_at != d->next_action_at) {
		vm->row->next_action_at = d->next_action_at;
		vc_engine_vm_mark_dirty(engine, vm);
	}

	if (d->retire && (d->why == VC_ENGINE_WHY_GONE || d->why == VC_ENGINE_WHY_VANISHED ||
			  d->why == VC_ENGINE_WHY_UNSELECTED)) {
		vc_engine_log(G_LOG_LEVEL_MESSAGE, "end-of-life", vm->uuid, name, NULL,
			      "VM %s: %s; revoking its certificates (%s)",
			      name != NULL ? name : vm->uuid, vc_engine_why_to_string(d->why),
			      vc_reason_to_string(d->retire_reason));
	} else if (d->why == VC_ENGINE_WHY_MIGRATED_AWAY) {
		vc_engine_log(G_LOG_LEVEL_MESSAGE, "migrated-away", vm->uuid, name,
			      vm->row->current_serial,
			      "VM %s migrated away; its certificate is revoked unless the "
			      "destination claims it within %" G_GINT64_FORMAT " s",
			      name, engine->config->handover_grace_s);
		vc_engine_schedule_tick(engine);
	} else if (d->why == VC_ENGINE_WHY_GRACE_ENDED) {
		vc_engine_log(G_LOG_LEVEL_WARNING, "handover-expired", vm->uuid, name, NULL,
			      "VM %s %s: revoking (privilegeWithdrawn)", name, retire_why);
	}

	switch (d->job) {
	case VC_ENGINE_JOB_DELIVER:
		vc_engine_start_work(engine, vm, VC_ENGINE_WORK_DELIVER);
		break;
	case VC_ENGINE_JOB_CHECK:
		vc_engine_start_work(engine, vm, VC_ENGINE_WORK_CHECK);
		break;
	case VC_ENGINE_JOB_CSR:
		vc_engine_start_work(engine, vm, VC_ENGINE_WORK_CSR);
		break;
	case VC_ENGINE_JOB_NONE:
	default:
		if (d->queue_issue)
			vc_engine_schedule_flush(engine);
		break;
	}
}

/* Level-triggered: compares what libvirt and policy say now for UUID with
 * what the engine has, and acts on the difference. WHY says what asked. */
void
vc_engine_evaluate(VcEngine *engine, const char *uuid, const VcEngineInput *input, const char *why)
{
	VcEngineVm *vm = vc_engine_vm(engine, uuid);
	VcEngineFactsStore s = {0};
	VcEngineFacts facts = {0};
	VcEngineVmView view;
	VcEngineDecision d;
	gint64 now = vc_engine_now();

	if (engine->virt == NULL)
		return;
	vc_engine_vm_view(engine, vm, &view);
	if (vc_engine_input_needs_facts(input, &view)) {
		vc_engine_gather_facts(engine, vm, now, &s, &facts);
		view.issue_refused = vm->refused_profile != NULL &&
				     g_strcmp0(vm->refused_profile, facts.names_key) == 0;
	}
	vc_engine_decide(input, &facts, &view, now, &d);
	vc_engine_apply(engine, vm, &d, &facts, &s, why, now);
	vc_engine_facts_store_clear(&s);
}
