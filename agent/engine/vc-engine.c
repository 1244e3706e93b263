/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-engine-private.h"

#include <stdarg.h>

#include "vc-error.h"
#include "vc-store-json.h"

/* The engine: the one place where libvirt events, reconcile results, renewal
 * timers and control requests become decisions (see vc-engine-private.h for
 * the map of its files, and docs/state-machine.md for the states). */

/* journald fields VM_UUID, VM_NAME, SERIAL, EVENT beside the message */
void
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

void
vc_engine_emit(VcEngine *engine, const char *event, const char *uuid, const char *name,
	       const char *serial, const char *detail)
{
	g_autoptr(JsonBuilder) b = NULL;
	g_autoptr(JsonNode) node = NULL;
	g_autofree char *now = NULL;

	if (engine->notify == NULL)
		return;
	b = json_builder_new();
	now = vc_time_to_string(vc_engine_now());
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

#ifdef VC_TEST_SEAMS
static gint64 vc_engine_test_clock_offset_s;

void
vc_engine_test_set_clock(gint64 offset_s)
{
	vc_engine_test_clock_offset_s = offset_s;
}
#endif

gint64
vc_engine_now(void)
{
#ifdef VC_TEST_SEAMS
	return g_get_real_time() / G_USEC_PER_SEC + vc_engine_test_clock_offset_s;
#else
	return g_get_real_time() / G_USEC_PER_SEC;
#endif
}

/* ---- the VM table ------------------------------------------------------ */

static void
vc_engine_vm_free(VcEngineVm *vm)
{
	g_free(vm->uuid);
	g_clear_pointer(&vm->row, vc_domain_record_free);
	g_free(vm->cert_path);
	g_free(vm->chain_path);
	g_free(vm->key_path);
	g_free(vm->owner);
	g_free(vm->reload);
	g_clear_pointer(&vm->placement, vc_policy_free);
	g_free(vm->claim_peer);
	g_free(vm->refused_profile);
	g_free(vm->claim_serial);
	g_clear_handle_id(&vm->claim_retry_source, g_source_remove);
	g_free(vm->announced_fingerprint);
	g_free(vm->announced_fqdn);
	g_free(vm->announced_serial);
	g_free(vm);
}

VcEngineVm *
vc_engine_vm_lookup(VcEngine *engine, const char *uuid)
{
	return g_hash_table_lookup(engine->vms, uuid);
}

/* The VM UUID, remembered from now on. */
VcEngineVm *
vc_engine_vm(VcEngine *engine, const char *uuid)
{
	VcEngineVm *vm = g_hash_table_lookup(engine->vms, uuid);
	if (vm == NULL) {
		vm = g_new0(VcEngineVm, 1);
		vm->uuid = g_strdup(uuid);
		g_hash_table_insert(engine->vms, vm->uuid, vm);
	}
	return vm;
}

void
vc_engine_vm_mark_dirty(VcEngine *engine, VcEngineVm *vm)
{
	if (vm->row == NULL)
		return;
	vm->row->updated_at = vc_engine_now();
	g_hash_table_add(engine->dirty, g_strdup(vm->uuid));
	vc_engine_schedule_flush(engine);
}

void
vc_engine_vm_set_name(VcEngine *engine, VcEngineVm *vm, const char *name)
{
	if (vm->row == NULL || name == NULL || g_strcmp0(vm->row->name, name) == 0)
		return;
	g_free(vm->row->name);
	vm->row->name = g_strdup(name);
	vc_engine_vm_mark_dirty(engine, vm);
}

/* The VM's row, created in state NEW (generation 1) if it has none. */
VcDomainRecord *
vc_engine_vm_ensure_row(VcEngine *engine, VcEngineVm *vm, const char *name)
{
	if (vm->row == NULL) {
		vm->row = g_new0(VcDomainRecord, 1);
		vm->row->uuid = g_strdup(vm->uuid);
		vm->row->generation = 1;
		vm->state = VC_DOMAIN_STATE_NEW;
		vm->row->state = g_strdup(vc_domain_state_to_string(vm->state));
		vc_engine_vm_mark_dirty(engine, vm);
	}
	vc_engine_vm_set_name(engine, vm, name);
	return vm->row;
}

/* The one place a VM's state changes: checked against the table in
 * vc-engine-state.c, written to the row, and persisted by the next flush
 * before any effect of the move runs (vc_engine_run_effects()). ERROR_MSG
 * becomes last_error. The failure count is not touched: a retry is not a
 * success (vc_engine_vm_succeeded() clears it), so backoff grows. */
gboolean
vc_engine_vm_move(VcEngine *engine, VcEngineVm *vm, VcDomainState to, const char *error_msg)
{
	VcDomainRecord *row = vm->row;
	gboolean changed = FALSE;

	g_return_val_if_fail(row != NULL, FALSE);
	if (!vc_domain_state_can_move(vm->state, to)) {
		g_critical("VM %s: no move from %s to %s", vm->uuid,
			   vc_domain_state_to_string(vm->state), vc_domain_state_to_string(to));
		return FALSE;
	}
	if (vm->state != to) {
		vm->state = to;
		g_free(row->state);
		row->state = g_strdup(vc_domain_state_to_string(to));
		changed = TRUE;
	}
	if (g_strcmp0(row->last_error, error_msg) != 0) {
		g_free(row->last_error);
		row->last_error = g_strdup(error_msg);
		changed = TRUE;
	}
	if (changed)
		vc_engine_vm_mark_dirty(engine, vm);
	return TRUE;
}

/* Queues the revocation of SERIAL (once), committed by the next flush. */
gboolean
vc_engine_queue_revoke(VcEngine *engine, const char *serial, const char *uuid, const char *name,
		       int reason, const char *why)
{
	VcQueuedRevoke *q;

	if (g_hash_table_contains(engine->revoke_set, serial))
		return FALSE;
	q = g_new0(VcQueuedRevoke, 1);
	q->serial = g_strdup(serial);
	q->uuid = g_strdup(uuid);
	q->name = g_strdup(name);
	q->reason = reason;
	q->why = g_strdup(why);
	g_ptr_array_add(engine->revoke_queue, q);
	g_hash_table_add(engine->revoke_set, q->serial);
	vc_engine_schedule_flush(engine);
	vc_crash_point("revoke-queued");
	return TRUE;
}

/* Queues the revocation of every live certificate of VM except KEEP; with
 * no KEEP, the VM holds no certificate any more (serial and names cleared,
 * nothing scheduled). The caller moves the state. */
guint
vc_engine_vm_retire(VcEngine *engine, VcEngineVm *vm, const char *keep, int reason, const char *why)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) certs = NULL;
	const char *name = vm->row != NULL ? vm->row->name : NULL;
	guint n = 0;

	if (vm->row == NULL)
		return 0;
	certs = vc_store_cert_list(engine->store, vm->uuid, &error);
	if (certs == NULL) {
		vc_engine_log(G_LOG_LEVEL_WARNING, "revoke", vm->uuid, name, NULL,
			      "cannot list certificates of VM %s: %s", name, error->message);
		return 0;
	}
	for (guint i = 0; i < certs->len; i++) {
		VcCertRecord *rec = g_ptr_array_index(certs, i);
		if (rec->status != VC_CERT_STATUS_VALID && rec->status != VC_CERT_STATUS_PENDING)
			continue;
		if (g_strcmp0(rec->serial, keep) != 0 &&
		    vc_engine_queue_revoke(engine, rec->serial, vm->uuid, name, reason, why))
			n++;
	}
	if (keep == NULL) {
		g_clear_pointer(&vm->row->current_serial, g_free);
		g_clear_pointer(&vm->row->names_key, g_free);
		vm->row->next_action_at = 0;
		vm->row->renew_pending = FALSE;
		vc_engine_vm_mark_dirty(engine, vm);
	}
	if (n > 0)
		vc_engine_schedule_flush(engine);
	return n;
}

/* What was tried worked (issued, delivered, checked): backoff starts over. */
void
vc_engine_vm_succeeded(VcEngine *engine, VcEngineVm *vm)
{
	if (vm->row == NULL || vm->row->failures == 0)
		return;
	vm->row->failures = 0;
	vc_engine_vm_mark_dirty(engine, vm);
}

/* FAILED, said once per distinct message, retried with backoff (a host
 * certificate or policy may be fixed meanwhile). RETRY_AT 0: by the count. */
void
vc_engine_vm_fail(VcEngine *engine, VcEngineVm *vm, const char *what, const char *why,
		  gint64 retry_at)
{
	g_autofree char *msg = g_strdup_printf("%s: %s", what, why);
	VcDomainRecord *row = vm->row;
	gboolean repeated =
	    vm->state == VC_DOMAIN_STATE_FAILED && g_strcmp0(row->last_error, msg) == 0;

	engine->n_failed++;
	row->failures++;
	if (retry_at == 0)
		retry_at = vc_engine_now() +
			   MIN((gint64)1 << MIN(row->failures, 16), VC_ENGINE_RETRY_MAX_S);
	row->next_action_at = retry_at;
	vc_engine_vm_move(engine, vm, VC_DOMAIN_STATE_FAILED, msg);
	vc_engine_vm_mark_dirty(engine, vm);
	vc_engine_schedule_tick(engine);
	if (repeated)
		return; /* said once is enough */
	vc_engine_log(G_LOG_LEVEL_WARNING, "failed", row->uuid, row->name, NULL, "VM %s: %s",
		      row->name ? row->name : row->uuid, msg);
	vc_engine_emit(engine, "failed", row->uuid, row->name, NULL, msg);
}

/* The VM with row, by UUID (any case) or name. */
VcEngineVm *
vc_engine_find_vm(VcEngine *engine, const char *vm_or_name)
{
	GHashTableIter iter;
	VcEngineVm *vm = g_hash_table_lookup(engine->vms, vm_or_name);

	if (vm != NULL && vm->row != NULL)
		return vm;
	g_hash_table_iter_init(&iter, engine->vms);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&vm))
		if (vm->row != NULL && (g_strcmp0(vm->row->name, vm_or_name) == 0 ||
					g_ascii_strcasecmp(vm->uuid, vm_or_name) == 0))
			return vm;
	return NULL;
}

/* ---- the object -------------------------------------------------------- */

VcEngine *
vc_engine_new(const VcConfig *config, VcStore *store, VcCa *ca, VcPolicySet *policy)
{
	VcEngine *engine = g_new0(VcEngine, 1);

	engine->config = config;
	engine->store = store;
	engine->ca = ca;
	engine->issuer = vc_issuer_new(config, ca, store);
	engine->policy = policy != NULL ? policy : vc_policy_set_new();
	engine->vms =
	    g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)vc_engine_vm_free);
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
	engine->revoke_set = g_hash_table_new(g_str_hash, g_str_equal);
	engine->effects = g_ptr_array_new_with_free_func((GDestroyNotify)vc_engine_work_free);
	engine->unstored = g_ptr_array_new_with_free_func((GDestroyNotify)vc_engine_unstored_free);
	vc_engine_metrics_init(engine);
	return engine;
}

void
vc_engine_free(VcEngine *engine)
{
	if (engine == NULL)
		return;
#ifdef VC_TEST_SEAMS
	if (engine->test_agent_monitor != NULL) {
		g_signal_handlers_disconnect_by_data(engine->test_agent_monitor, engine);
		g_clear_object(&engine->test_agent_monitor);
	}
#endif
	if (engine->owns_virt)
		g_clear_pointer(&engine->virt, vc_virt_free);
	g_clear_handle_id(&engine->flush_source, g_source_remove);
	g_clear_handle_id(&engine->tick_source, g_source_remove);
	g_clear_handle_id(&engine->reconcile_source, g_source_remove);
	g_queue_clear_full(&engine->issue_order, g_free);
	g_hash_table_unref(engine->issue_queue);
	g_hash_table_unref(engine->revoke_set);
	g_ptr_array_unref(engine->revoke_queue);
	g_hash_table_unref(engine->dirty);
	g_ptr_array_unref(engine->effects);
	g_ptr_array_unref(engine->unstored);
	if (engine->pool != NULL)
		g_thread_pool_free(engine->pool, TRUE, TRUE);
	if (engine->suspect_pool != NULL)
		g_thread_pool_free(engine->suspect_pool, TRUE, TRUE);
	/* completions still queued on the main loop find no engine */
	*engine->self = NULL;
	g_atomic_rc_box_release(engine->self);
	g_hash_table_unref(engine->vms);
	g_hash_table_unref(engine->keys);
	vc_policy_set_free(engine->policy);
	vc_issuer_free(engine->issuer);
	vc_engine_host_clear(engine);
	g_clear_pointer(&engine->owner_trust, vc_owner_trust_free);
	g_free(engine->store_error);
	vc_metrics_free(engine->metrics);
	g_free(engine);
}

void
vc_engine_set_virt(VcEngine *engine, VcVirt *virt)
{
	if (engine->owns_virt)
		g_clear_pointer(&engine->virt, vc_virt_free);
	engine->owns_virt = FALSE;
	engine->virt = virt;
}

static void
vc_engine_virt_connected_cb(gpointer user_data)
{
	vc_engine_handle_connected(user_data);
}

static void
vc_engine_virt_disconnected_cb(gpointer user_data)
{
	vc_engine_handle_disconnected(user_data);
}

static void
vc_engine_virt_event_cb(const VcVirtEvent *event, gpointer user_data)
{
	vc_engine_handle_event(user_data, event);
}

void
vc_engine_connect_libvirt(VcEngine *engine, const char *uri)
{
	const VcVirtCallbacks cb = {
	    .connected = vc_engine_virt_connected_cb,
	    .disconnected = vc_engine_virt_disconnected_cb,
	    .event = vc_engine_virt_event_cb,
	};
	vc_engine_set_virt(engine, vc_virt_new(uri, &cb, engine));
	engine->owns_virt = TRUE;
	vc_virt_start(engine->virt);
}

VcVirt *
vc_engine_get_virt(VcEngine *engine)
{
	return engine->virt;
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

/* ---- inputs ------------------------------------------------------------ */

gboolean
vc_engine_recover(VcEngine *engine, GError **error)
{
	g_autoptr(GPtrArray) rows = NULL;
	guint abandoned = 0;

	vc_crash_point("recover-begin");
	if (!vc_store_recover(engine->store, &abandoned, error))
		return FALSE;
	vc_crash_point("recover-after-abandon");
	if (abandoned > 0)
		vc_engine_log(G_LOG_LEVEL_MESSAGE, "recover", NULL, NULL, NULL,
			      "%u serial(s) recorded but not known to be signed were abandoned "
			      "(listed on the CRL)",
			      abandoned);
	rows = vc_store_domain_list(engine->store, error);
	if (rows == NULL)
		return FALSE;
	for (guint i = 0; i < rows->len; i++) {
		VcDomainRecord *row = g_ptr_array_index(rows, i);
		VcEngineVm *vm;
		VcDomainState state;
		if (!vc_domain_state_from_string(row->state, &state)) {
			g_set_error(error, VC_ERROR, VC_ERROR_STORE,
				    "VM %s: the store holds the unknown state '%s'", row->uuid,
				    row->state);
			return FALSE;
		}
		vm = vc_engine_vm(engine, row->uuid);
		g_clear_pointer(&vm->row, vc_domain_record_free);
		vm->row = g_ptr_array_steal_index_fast(rows, i--);
		vm->state = state;
		/* certmonger style: one rule per state (vc-engine-state.c) */
		switch (vc_domain_state_get_recovery(state)) {
		case VC_DOMAIN_RECOVERY_RESET_TO_ISSUED:
			vc_engine_vm_move(engine, vm, VC_DOMAIN_STATE_ISSUED, NULL);
			break;
		case VC_DOMAIN_RECOVERY_FINISH_REVOCATION:
			vc_engine_vm_retire(engine, vm, NULL, VC_REASON_CESSATION_OF_OPERATION,
					    "revocation interrupted by a restart");
			break;
		case VC_DOMAIN_RECOVERY_REEVALUATE:  /* the reconcile after connecting */
		case VC_DOMAIN_RECOVERY_AWAIT_CLAIM: /* the timer keeps the deadline */
		case VC_DOMAIN_RECOVERY_NONE:
		default:
			break;
		}
	}
	vc_engine_schedule_flush(engine);
	vc_engine_schedule_tick(engine);
	return TRUE;
}

static VcEngineInputKind
vc_engine_input_kind_from_event(VcVirtEventKind kind)
{
	switch (kind) {
	case VC_VIRT_EVENT_DEFINED:
		return VC_ENGINE_INPUT_DEFINED;
	case VC_VIRT_EVENT_UNDEFINED:
		return VC_ENGINE_INPUT_UNDEFINED;
	case VC_VIRT_EVENT_STARTED:
		return VC_ENGINE_INPUT_STARTED;
	case VC_VIRT_EVENT_STOPPED:
		return VC_ENGINE_INPUT_STOPPED;
	case VC_VIRT_EVENT_RESUMED:
		return VC_ENGINE_INPUT_RESUMED;
	case VC_VIRT_EVENT_AGENT_CONNECTED:
		return VC_ENGINE_INPUT_AGENT_CONNECTED;
	case VC_VIRT_EVENT_METADATA_CHANGED:
		return VC_ENGINE_INPUT_METADATA_CHANGED;
	case VC_VIRT_EVENT_SUSPENDED:
	case VC_VIRT_EVENT_SHUTDOWN:
	case VC_VIRT_EVENT_PMSUSPENDED:
	case VC_VIRT_EVENT_CRASHED:
	case VC_VIRT_EVENT_AGENT_DISCONNECTED:
	default:
		return VC_ENGINE_INPUT_OTHER_EVENT;
	}
}

void
vc_engine_handle_event(VcEngine *engine, const VcVirtEvent *event)
{
	VcEngineVm *vm = vc_engine_vm(engine, event->uuid);
	g_autofree char *why =
	    g_strdup_printf("%s %s", vc_virt_event_kind_to_string(event->kind), event->detail_str);
	VcEngineInput input = {
	    .kind = vc_engine_input_kind_from_event(event->kind),
	    .migration = event->is_migration,
	    .restore = event->is_restore,
	    .rename = event->is_rename,
	};

	engine->n_events++;
	vm->last_event_seq = ++engine->seq;
	vc_engine_log(G_LOG_LEVEL_DEBUG, why, event->uuid, event->name, NULL, "VM %s: event %s",
		      event->name, why);
	vc_engine_emit(engine, "libvirt", event->uuid, event->name, NULL, why);
	vc_engine_evaluate(engine, event->uuid, &input, why);
	vc_engine_flush_if_due(engine);
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
#ifdef VC_TEST_SEAMS
	vc_engine_test_agent_watch(engine);
#endif
	/* the first look at the host certificate also starts its watch */
	if (engine->host_state == VC_ENGINE_HOST_UNKNOWN)
		vc_engine_host_refresh(engine, TRUE);
	if (!vc_engine_reconcile(engine, &error))
		vc_engine_log(G_LOG_LEVEL_WARNING, "reconcile", NULL, NULL, NULL,
			      "reconcile failed: %s", error->message);
	/* after the reconcile: whoever waits for it sees its decisions made */
	vc_engine_emit(engine, "libvirt-connected", NULL, NULL, NULL,
		       engine->virt != NULL ? vc_virt_get_uri(engine->virt) : NULL);
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
	vc_engine_emit(engine, "libvirt-disconnected", NULL, NULL, NULL,
		       engine->virt != NULL ? vc_virt_get_uri(engine->virt) : NULL);
}

gboolean
vc_engine_reconcile(VcEngine *engine, GError **error)
{
	const VcEngineInput input = {.kind = VC_ENGINE_INPUT_RECONCILE};
	g_autoptr(GPtrArray) domains = NULL;
	g_autoptr(GHashTable) present = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GPtrArray) vanished = g_ptr_array_new_with_free_func(g_free);
	guint64 snapshot_seq = engine->seq;
	GHashTableIter iter;
	VcEngineVm *vm;
	guint n_rows = 0;

	if (engine->virt == NULL)
		return TRUE;
	domains = vc_virt_list_domains(engine->virt, FALSE, error);
	if (domains == NULL)
		return FALSE;
	for (guint i = 0; i < domains->len; i++) {
		VcVirtDomain *dom = g_ptr_array_index(domains, i);
		g_hash_table_add(present, dom->uuid);
		vm = vc_engine_vm_lookup(engine, dom->uuid);
		/* an event newer than the snapshot has already decided */
		if (vm != NULL && vm->last_event_seq > snapshot_seq)
			continue;
		vc_engine_evaluate(engine, dom->uuid, &input, "reconcile");
	}
	g_hash_table_iter_init(&iter, engine->vms);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&vm)) {
		if (vm->row == NULL)
			continue;
		n_rows++;
		if (g_hash_table_contains(present, vm->uuid) ||
		    vm->state == VC_DOMAIN_STATE_REVOKED ||
		    vm->state == VC_DOMAIN_STATE_HANDED_OVER ||
		    vm->state == VC_DOMAIN_STATE_MIGRATING_OUT)
			continue; /* the handover decides for a VM that migrated away */
		if (vm->last_event_seq > snapshot_seq)
			continue;
		g_ptr_array_add(vanished, g_strdup(vm->uuid));
	}
	vc_crash_point("reconcile-listed");
	for (guint i = 0; i < vanished->len; i++)
		vc_engine_evaluate(engine, g_ptr_array_index(vanished, i), &input, "reconcile");
	engine->n_reconciles++;
	engine->last_reconcile_at = vc_engine_now();
	vc_engine_log(G_LOG_LEVEL_MESSAGE, "reconcile", NULL, NULL, NULL,
		      "reconciled %u domain(s) with %u row(s); %u vanished", domains->len, n_rows,
		      vanished->len);
	return TRUE;
}

void
vc_engine_set_policy(VcEngine *engine, VcPolicySet *policy)
{
	g_autoptr(GError) error = NULL;

	vc_policy_set_free(engine->policy);
	engine->policy = policy;
	/* a reload reads the host certificate and its CRL again too; the
	 * reconcile below judges every VM with them */
	vc_engine_host_refresh(engine, TRUE);
	/* and the host CA's CRL fetched again, when it has a URL: a second
	 * look follows the fetch */
	vc_engine_host_crl_fetch(engine);
	if (engine->virt == NULL || !engine->connected)
		return;
	/* everything libvirt has may be selected now, not only known rows */
	if (!vc_engine_reconcile(engine, &error))
		vc_engine_log(G_LOG_LEVEL_WARNING, "reload", NULL, NULL, NULL,
			      "re-evaluation after reload failed: %s", error->message);
}

/* ---- the timer: renewals, retries, the end of a handover's grace ------- */

static gboolean
vc_engine_vm_is_due(const VcEngineVm *vm, gint64 now)
{
	return vm->row != NULL && vm->row->next_action_at > 0 && vm->row->next_action_at <= now &&
	       vc_domain_state_is_scheduled(vm->state);
}

static gboolean
vc_engine_tick_cb(gpointer user_data)
{
	const VcEngineInput input = {.kind = VC_ENGINE_INPUT_TIMER};
	VcEngine *engine = user_data;
	gint64 now = vc_engine_now();
	g_autoptr(GPtrArray) due = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter iter;
	VcEngineVm *vm;

	engine->tick_source = 0;
	g_hash_table_iter_init(&iter, engine->vms);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&vm))
		if (vc_engine_vm_is_due(vm, now))
			g_ptr_array_add(due, g_strdup(vm->uuid));
	for (guint i = 0; i < due->len; i++) {
		vc_crash_point("timer-due");
		vc_engine_evaluate(engine, g_ptr_array_index(due, i), &input, "renewal");
	}
	vc_engine_schedule_tick(engine);
	return G_SOURCE_REMOVE;
}

void
vc_engine_schedule_tick(VcEngine *engine)
{
	gint64 now = vc_engine_now();
	gint64 next = now + VC_ENGINE_TICK_MAX_S;
	GHashTableIter iter;
	VcEngineVm *vm;

	g_hash_table_iter_init(&iter, engine->vms);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&vm))
		if (vm->row != NULL && vm->row->next_action_at > 0 &&
		    vc_domain_state_is_scheduled(vm->state))
			next = MIN(next, vm->row->next_action_at);
	g_clear_handle_id(&engine->tick_source, g_source_remove);
	engine->tick_source = g_timeout_add_seconds(
	    (guint)CLAMP(next - now, 1, VC_ENGINE_TICK_MAX_S), vc_engine_tick_cb, engine);
}
