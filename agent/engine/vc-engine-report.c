/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-engine-private.h"

#include "vc-domain-xml.h"
#include "vc-error.h"
#include "vc-guest.h"
#include "vc-store-json.h"

/* Control requests (the daemon's control socket), status and metrics. */

/* the number of VMs in each state */
static void
vc_engine_count_states(VcEngine *engine, guint counts[VC_DOMAIN_STATE_LAST], guint *ret_rows)
{
	GHashTableIter iter;
	VcEngineVm *vm;

	memset(counts, 0, sizeof(guint) * VC_DOMAIN_STATE_LAST);
	*ret_rows = 0;
	g_hash_table_iter_init(&iter, engine->vms);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&vm)) {
		if (vm->row == NULL)
			continue;
		counts[vm->state]++;
		(*ret_rows)++;
	}
}

JsonNode *
vc_engine_get_status(VcEngine *engine)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	guint counts[VC_DOMAIN_STATE_LAST];
	guint n_rows;

	vc_engine_count_states(engine, counts, &n_rows);
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "libvirt_connected");
	json_builder_add_boolean_value(b, engine->connected);
	json_builder_set_member_name(b, "libvirt_uri");
	json_builder_add_string_value(b, engine->virt ? vc_virt_get_uri(engine->virt) : NULL);
	json_builder_set_member_name(b, "ca_id");
	json_builder_add_string_value(b, vc_ca_get_id(engine->ca));
	json_builder_set_member_name(b, "domains");
	json_builder_add_int_value(b, n_rows);
	json_builder_set_member_name(b, "states");
	json_builder_begin_object(b);
	for (guint i = 0; i < VC_DOMAIN_STATE_LAST; i++) {
		if (counts[i] == 0)
			continue;
		json_builder_set_member_name(b, vc_domain_state_to_string(i));
		json_builder_add_int_value(b, counts[i]);
	}
	json_builder_end_object(b);
	json_builder_set_member_name(b, "queued");
	json_builder_add_int_value(b, vc_engine_get_queue_length(engine));
	/* the store refuses commits (disk full, read-only): null when it does not */
	json_builder_set_member_name(b, "store_error");
	json_builder_add_string_value(b, vc_engine_get_store_error(engine));
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
	json_builder_set_member_name(b, "host_certificate");
	vc_engine_host_status(engine, b);
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

/* A domain libvirt knows by NAME_OR_UUID that the engine holds no row for:
 * why it has no certificate (no policy selects it, or its policy is
 * refused), as `show` answers it. NULL when libvirt knows no such domain. */
static JsonNode *
vc_engine_show_unmanaged(VcEngine *engine, const char *name_or_uuid)
{
	g_autoptr(GPtrArray) doms = NULL;
	g_autoptr(VcDomainInfo) info = NULL;
	g_autoptr(VcPolicy) policy = NULL;
	g_autoptr(GError) local = NULL;
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autofree char *why = NULL;
	g_autofree char *xml = NULL;
	VcVirtDomain *dom = NULL;

	if (engine->virt == NULL || !engine->connected)
		return NULL;
	/* two libvirt calls, then the one domain's XML */
	doms = vc_virt_list_domains(engine->virt, FALSE, NULL);
	for (guint i = 0; doms != NULL && i < doms->len && dom == NULL; i++) {
		VcVirtDomain *d = g_ptr_array_index(doms, i);
		if (g_strcmp0(d->name, name_or_uuid) == 0 ||
		    g_ascii_strcasecmp(d->uuid, name_or_uuid) == 0)
			dom = d;
	}
	if (dom == NULL)
		return NULL;
	xml = vc_virt_get_domain_xml(engine->virt, dom->uuid, &local);
	if (xml != NULL)
		info = vc_domain_info_parse(xml, -1, &local);
	if (info != NULL)
		policy =
		    vc_domain_info_resolve_policy(info, engine->policy, engine->config->issue_all,
						  NULL, engine->config->default_lifetime_s, &local);
	if (local != NULL)
		why = g_strdup_printf("its policy is refused: %s", local->message);
	else if (policy == NULL)
		why = g_strdup_printf("no policy selects it: no group in %s matches its name, "
				      "UUID or project, and it has no <virtcert:vm> metadata "
				      "(see `virtcert policy show --xml`)",
				      engine->config->policy_dir);
	else
		why = g_strdup_printf("policy %s selects it; the daemon has not taken it up "
				      "yet (it will at the next event or reconcile)",
				      policy->source);
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "domain");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "uuid");
	json_builder_add_string_value(b, dom->uuid);
	json_builder_set_member_name(b, "name");
	json_builder_add_string_value(b, dom->name);
	json_builder_set_member_name(b, "state");
	json_builder_add_string_value(b, "unmanaged");
	json_builder_end_object(b);
	json_builder_set_member_name(b, "certificates");
	json_builder_begin_array(b);
	json_builder_end_array(b);
	json_builder_set_member_name(b, "why");
	json_builder_add_string_value(b, why);
	json_builder_end_object(b);
	return json_builder_get_root(b);
}

/* Why a VM the engine manages has no current certificate, or NULL. */
static char *
vc_engine_show_why(const VcEngineVm *vm)
{
	const VcDomainRecord *row = vm->row;

	if (row->current_serial != NULL)
		return NULL;
	if (row->last_error != NULL && *row->last_error != '\0')
		return g_strdup_printf("%s: %s", vc_domain_state_to_string(vm->state),
				       row->last_error);
	if (vm->state == VC_DOMAIN_STATE_NEW || vm->state == VC_DOMAIN_STATE_STOPPED)
		return g_strdup("the VM does not run: its policy issues when it starts "
				"(issue-on=start)");
	if (vm->state == VC_DOMAIN_STATE_WANTED || vm->state == VC_DOMAIN_STATE_RENEWING)
		return g_strdup("pending: an issuance is queued");
	if (vm->state == VC_DOMAIN_STATE_REVOKING || vm->state == VC_DOMAIN_STATE_REVOKED)
		return g_strdup("its certificate was revoked (see `virtcert list --vm`)");
	return g_strdup_printf("no current certificate in state %s",
			       vc_domain_state_to_string(vm->state));
}

JsonNode *
vc_engine_show(VcEngine *engine, const char *vm_or_serial, GError **error)
{
	VcEngineVm *vm = vc_engine_find_vm(engine, vm_or_serial);
	g_autoptr(JsonBuilder) b = NULL;
	g_autoptr(GPtrArray) certs = NULL;
	g_autofree char *why = NULL;

	if (vm == NULL) {
		g_autofree char *serial = g_ascii_strdown(vm_or_serial, -1);
		g_autoptr(VcCertRecord) rec = vc_store_cert_get(engine->store, serial, NULL);
		JsonNode *unmanaged;
		if (rec != NULL)
			return vc_cert_record_to_json(rec);
		unmanaged = vc_engine_show_unmanaged(engine, vm_or_serial);
		if (unmanaged != NULL)
			return unmanaged;
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND,
			    "no VM or serial '%s' known to the daemon or to libvirt", vm_or_serial);
		return NULL;
	}
	certs = vc_store_cert_list(engine->store, vm->uuid, error);
	if (certs == NULL)
		return NULL;
	b = json_builder_new();
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "domain");
	json_builder_add_value(b, vc_domain_record_to_json(vm->row));
	for (guint i = 0; i < certs->len; i++) {
		VcCertRecord *rec = g_ptr_array_index(certs, i);
		g_autofree char *at = NULL;
		if (g_strcmp0(rec->serial, vm->row->current_serial) != 0 ||
		    rec->status != VC_CERT_STATUS_VALID)
			continue;
		at = vc_time_to_string(vc_engine_renew_at(engine, rec));
		json_builder_set_member_name(b, "renew_at");
		json_builder_add_string_value(b, at);
	}
	why = vc_engine_show_why(vm);
	if (why != NULL) {
		json_builder_set_member_name(b, "why");
		json_builder_add_string_value(b, why);
	}
	json_builder_set_member_name(b, "certificates");
	json_builder_begin_array(b);
	for (guint i = 0; i < certs->len; i++)
		json_builder_add_value(b, vc_cert_record_to_json(g_ptr_array_index(certs, i)));
	json_builder_end_array(b);
	json_builder_end_object(b);
	return json_builder_get_root(b);
}

JsonNode *
vc_engine_renew(VcEngine *engine, const char *vm_or_name, GError **error)
{
	const VcEngineInput input = {.kind = VC_ENGINE_INPUT_RENEW};
	VcEngineVm *vm = vc_engine_find_vm(engine, vm_or_name);
	g_autoptr(JsonBuilder) b = json_builder_new();

	if (vm == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "no VM '%s' managed by the daemon",
			    vm_or_name);
		return NULL;
	}
	if (!vc_engine_host_may_issue(engine, error)) {
		g_prefix_error(error, "VM %s is not renewed: ", vm_or_name);
		return NULL;
	}
	vc_engine_evaluate(engine, vm->uuid, &input, "manual renewal");
	vc_crash_point("renew-manual-decided");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "vm_uuid");
	json_builder_add_string_value(b, vm->uuid);
	json_builder_set_member_name(b, "state");
	json_builder_add_string_value(b, vc_domain_state_to_string(vm->state));
	json_builder_end_object(b);
	return json_builder_get_root(b);
}

JsonNode *
vc_engine_revoke(VcEngine *engine, const char *vm_or_serial, int reason, GError **error)
{
	const char *why = "revoked by the administrator";
	VcEngineVm *vm = vc_engine_find_vm(engine, vm_or_serial);
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(GPtrArray) serials = g_ptr_array_new_with_free_func(g_free);

	if (vm != NULL) {
		/* every certificate of the VM; it keeps running without one until
		 * policy changes or an administrator renews it */
		guint n = engine->revoke_queue->len;
		vc_engine_cancel_issue(engine, vm->uuid);
		vc_engine_vm_retire(engine, vm, NULL, reason, why);
		for (guint i = n; i < engine->revoke_queue->len; i++) {
			VcQueuedRevoke *q = g_ptr_array_index(engine->revoke_queue, i);
			g_ptr_array_add(serials, g_strdup(q->serial));
		}
		if (vm->state != VC_DOMAIN_STATE_REVOKED)
			vc_engine_vm_move(engine, vm, VC_DOMAIN_STATE_REVOKING, NULL);
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
		vm = vc_engine_vm_lookup(engine, rec->vm_uuid);
		if (vm == NULL || vm->row == NULL ||
		    g_strcmp0(vm->row->current_serial, serial) != 0)
			vm = NULL; /* not the VM's current certificate: only this one goes */
		vc_engine_queue_revoke(engine, serial, rec->vm_uuid, rec->vm_name, reason, why);
		g_ptr_array_add(serials, g_strdup(serial));
		if (vm != NULL) {
			g_clear_pointer(&vm->row->current_serial, g_free);
			g_clear_pointer(&vm->row->names_key, g_free);
			vm->row->next_action_at = 0;
			vc_engine_vm_move(engine, vm, VC_DOMAIN_STATE_REVOKING, NULL);
		}
	}
	/* durable before the reply: flush now rather than at idle */
	g_clear_handle_id(&engine->flush_source, g_source_remove);
	if (!vc_engine_flush_revocations(engine, error)) {
		vc_engine_schedule_flush(engine);
		return NULL;
	}
	vc_crash_point("revoke-manual-committed");
	vc_engine_run_effects(engine);
	/* a manual revocation is not the end of the VM's life: if policy still
	 * asks for a certificate, a new one (with a new key) is issued */
	if (vm != NULL && vm->state == VC_DOMAIN_STATE_REVOKED) {
		const VcEngineInput input = {.kind = VC_ENGINE_INPUT_RECONCILE};
		vc_engine_vm_move(engine, vm, VC_DOMAIN_STATE_NEW, NULL);
		vc_engine_evaluate(engine, vm->uuid, &input, "re-issue after a manual revocation");
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

	if (!vc_engine_host_may_issue(engine, error)) {
		g_prefix_error(error, "no certificate for VM %s: ", req->vm_name);
		return NULL;
	}
	issued = vc_issuer_issue(engine->issuer, req, error);
	if (issued == NULL)
		return NULL;
	rec = vc_store_cert_get(engine->store, issued->serial, error);
	if (rec == NULL)
		return NULL;
	engine->n_issued++;
	vc_metric_add(engine->m_issued, NULL, 1);
	vc_engine_log(G_LOG_LEVEL_MESSAGE, "issued", req->vm_uuid, req->vm_name, issued->serial,
		      "VM %s: issued %s by hand", req->vm_name, issued->serial);
	vc_engine_emit(engine, "issued", req->vm_uuid, req->vm_name, issued->serial,
		       "manual issuance");
	return vc_cert_record_to_json(rec);
}

char *
vc_engine_get_cert_chain(VcEngine *engine, const char *vm_uuid, GError **error)
{
	VcEngineVm *vm = vc_engine_vm_lookup(engine, vm_uuid);
	g_autofree char *cert = NULL;
	char *chain = NULL;

	if (vm == NULL || vm->row == NULL || vm->row->current_serial == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "no current certificate for VM %s",
			    vm_uuid);
		return NULL;
	}
	if (!vc_engine_cert_pems(engine, vm->row->current_serial, &cert, &chain, error))
		return NULL;
	return chain;
}

guint64
vc_engine_get_revocation_count(VcEngine *engine)
{
	return engine->n_revoked;
}

/* ---- metrics ------------------------------------------------------------- */

/* Latencies from milliseconds (a delivery, an issuance in a quiet moment)
 * to minutes (an issuance behind a storm, a delivery to a slow guest). */
static const double vc_engine_latency_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
						   1,	  2.5,	5,     10,   30,  60,	300};

static const int vc_engine_reasons[] = {
    VC_REASON_UNSPECIFIED,	   VC_REASON_KEY_COMPROMISE,	  VC_REASON_CA_COMPROMISE,
    VC_REASON_AFFILIATION_CHANGED, VC_REASON_SUPERSEDED,	  VC_REASON_CESSATION_OF_OPERATION,
    VC_REASON_CERTIFICATE_HOLD,	   VC_REASON_PRIVILEGE_WITHDRAWN, VC_REASON_AA_COMPROMISE,
};

/* The gauges computed at each scrape: states (every one, zero included, so
 * that a dashboard sees a state empty), queue, connection, and the soonest
 * expiry among the VMs' current certificates. */
static void
vc_engine_metrics_collect(VcMetrics *metrics, gpointer user_data)
{
	VcEngine *engine = user_data;
	VcMetric *domains = vc_metrics_add_gauge(metrics, "virtcert_domains",
						 "VMs known to virtcertd, by state.", "state");
	VcMetric *expiry = vc_metrics_add_gauge(
	    metrics, "virtcert_vm_certificate_expiry_seconds",
	    "Seconds until the first of the VMs' current certificates expires.", NULL);
	g_autoptr(GError) error = NULL;
	guint counts[VC_DOMAIN_STATE_LAST];
	guint n_rows;
	gint64 not_after = 0;

	vc_engine_count_states(engine, counts, &n_rows);
	for (guint i = 0; i < VC_DOMAIN_STATE_LAST; i++)
		vc_metric_set(domains, vc_domain_state_to_string(i), counts[i]);
	vc_metric_set(vc_metrics_add_gauge(metrics, "virtcert_queue_length",
					   "Issuances and revocations waiting.", NULL),
		      NULL, vc_engine_get_queue_length(engine));
	/* counted by the engine for its status too: copied */
	vc_metric_set(vc_metrics_add_counter(metrics, "virtcert_failures_total",
					     "Decisions that failed.", NULL),
		      NULL, (double)engine->n_failed);
	vc_metric_set(vc_metrics_add_counter(metrics, "virtcert_reload_failures_total",
					     "Deliveries whose reload command failed (retried with "
					     "backoff).",
					     NULL),
		      NULL, (double)engine->n_reload_failed);
	vc_metric_set(vc_metrics_add_counter(metrics, "virtcert_libvirt_events_total",
					     "libvirt events handled.", NULL),
		      NULL, (double)engine->n_events);
	vc_metric_set(vc_metrics_add_gauge(metrics, "virtcert_libvirt_connected",
					   "1 while connected to libvirt.", NULL),
		      NULL, engine->connected ? 1 : 0);
	if (!vc_store_cert_get_soonest_expiry(engine->store, &not_after, &error))
		g_debug("metrics: %s", error->message);
	if (not_after > 0)
		vc_metric_set(expiry, NULL,
			      (double)(not_after - g_get_real_time() / G_USEC_PER_SEC));
	else
		vc_metric_clear(expiry);
}

void
vc_engine_metrics_init(VcEngine *engine)
{
	VcMetrics *m = vc_metrics_new();

	engine->metrics = m;
	/* the states first, as before; the collector fills them in */
	vc_metrics_add_gauge(m, "virtcert_domains", "VMs known to virtcertd, by state.", "state");
	engine->m_issued = vc_metrics_add_counter(m, "virtcert_certificates_issued_total",
						  "Certificates issued (renewals included).", NULL);
	engine->m_renewed = vc_metrics_add_counter(
	    m, "virtcert_certificates_renewed_total",
	    "Certificates issued to replace a VM's current certificate.", NULL);
	engine->m_revoked =
	    vc_metrics_add_counter(m, "virtcert_certificates_revoked_total",
				   "Certificates revoked, by RFC 5280 reason.", "reason");
	for (gsize i = 0; i < G_N_ELEMENTS(vc_engine_reasons); i++)
		vc_metric_declare(engine->m_revoked, vc_reason_to_string(vc_engine_reasons[i]));
	engine->m_deliveries = vc_metrics_add_counter(m, "virtcert_deliveries_total",
						      "Certificates delivered into guests.", NULL);
	engine->m_delivery_failures =
	    vc_metrics_add_counter(m, "virtcert_delivery_failures_total",
				   "Deliveries into guests that failed (each is retried).", NULL);
	engine->m_delivery_seconds = vc_metrics_add_histogram(
	    m, "virtcert_delivery_duration_seconds",
	    "Time a successful delivery took in the guest agent.", vc_engine_latency_buckets,
	    G_N_ELEMENTS(vc_engine_latency_buckets));
	engine->m_issue_seconds = vc_metrics_add_histogram(
	    m, "virtcert_issue_latency_seconds",
	    "From the event that asked for a certificate to the certificate durable.",
	    vc_engine_latency_buckets, G_N_ELEMENTS(vc_engine_latency_buckets));
	vc_metrics_add_collector(m, vc_engine_metrics_collect, engine);
	vc_engine_host_metrics_init(engine);
}

char *
vc_engine_get_metrics(VcEngine *engine)
{
	return vc_metrics_to_text(engine->metrics);
}

VcMetrics *
vc_engine_get_metrics_registry(VcEngine *engine)
{
	return engine->metrics;
}
