/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-engine-private.h"

#include "vc-domain-xml.h"
#include "vc-error.h"
#include "vc-guest.h"
#include "vc-peer-client.h"

/* Work that blocks (the guest agent, libvirt's metadata calls, a peer's
 * HTTPS) runs on a thread pool; its result is applied on the main loop, if
 * it still concerns the VM's life. */

struct _VcEngineWork {
	VcEngine **self;
	VcEngineWorkKind kind;
	VcVirt *virt;
	const VcConfig *config;
	char *uuid;
	char *name;
	gint64 generation;
	char *serial; /* the certificate delivered, checked, recorded or claimed for */
	char *cert_pem;
	char *chain_pem; /* certificate + issuers */
	char *key_pem;	 /* host keygen, secret; NULL in guest keygen */
	char *cert_path;
	char *chain_path;
	char *key_path;
	char *owner;
	char *reload;
	VcKeyType key_type;
	char *peer_url;	  /* CLAIM */
	gboolean suspect; /* the VM's last guest work failed: the suspect pool */
	gint64 run_us;	  /* how long the blocking part took (delivery latency) */
	/* results */
	gboolean ok;
	gboolean files_match;
	gboolean accepted; /* CLAIM */
	char *reason;	   /* CLAIM */
	EVP_PKEY *public_key;
	VcGuestResult result;
	GError *error;
};

void
vc_engine_work_free(VcEngineWork *work)
{
	g_atomic_rc_box_release(work->self);
	g_free(work->uuid);
	g_free(work->name);
	g_free(work->serial);
	g_free(work->cert_pem);
	g_free(work->chain_pem);
	if (work->key_pem != NULL)
		vc_secret_free(work->key_pem);
	g_free(work->cert_path);
	g_free(work->chain_path);
	g_free(work->key_path);
	g_free(work->owner);
	g_free(work->reload);
	g_free(work->peer_url);
	g_free(work->reason);
	EVP_PKEY_free(work->public_key);
	vc_guest_result_clear(&work->result);
	g_clear_error(&work->error);
	g_free(work);
}

static gboolean
vc_engine_work_is_guest(VcEngineWorkKind kind)
{
	return kind == VC_ENGINE_WORK_DELIVER || kind == VC_ENGINE_WORK_CHECK ||
	       kind == VC_ENGINE_WORK_CSR;
}

static gboolean vc_engine_work_done_cb(gpointer data);

static void
vc_engine_work_record_metadata(VcEngineWork *work)
{
	g_autoptr(GError) local = NULL;
	g_autofree char *cur = vc_virt_get_metadata(work->virt, work->uuid, VC_DOMAIN_NS, &local);
	g_autofree char *xml = NULL;

	if (cur == NULL && !g_error_matches(local, VC_ERROR, VC_ERROR_NOT_FOUND)) {
		work->error = g_steal_pointer(&local);
		return;
	}
	xml =
	    vc_domain_metadata_set_issued(cur, work->serial, work->config->peer_url, &work->error);
	vc_crash_point("metadata-before-write");
	work->ok = xml != NULL && vc_virt_set_metadata(work->virt, work->uuid, xml, VC_DOMAIN_NS,
						       "virtcert", &work->error);
}

static void
vc_engine_work_claim(VcEngineWork *work)
{
	g_autofree char *cert = vc_config_get_host_path(work->config, "cert");
	g_autofree char *key = vc_config_get_host_path(work->config, "key");
	g_autofree char *ca = vc_config_get_host_path(work->config, "ca");
	g_autofree char *crl = vc_config_get_host_path(work->config, "crl");
	VcPeerClientOptions opts = {
	    .host_cert_path = cert, .host_key_path = key, .host_ca_path = ca, .host_crl_path = crl};

	if (work->serial == NULL) {
		g_set_error_literal(&work->error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "the VM's metadata names no issued serial to claim");
		work->ok = FALSE;
		return;
	}
	vc_crash_point("handover-claim-before-send");
	work->ok = vc_peer_claim(work->peer_url, &opts, work->uuid, work->name, work->serial,
				 &work->accepted, &work->reason, &work->error);
	vc_crash_point("handover-claim-answered");
}

#ifdef VC_TEST_SEAMS
/* Test seam (-Dtest_seams=true): with VC_TEST_GUEST_AGENT_DIR set, the guest
 * agent of the VM named NAME is whatever listens on DIR/NAME.sock (a real
 * qemu-ga with `-m unix-listen`, or the hostile agent of
 * tests/integration/hostile-guest.sh), reached through the socket channel,
 * and the VM's agent counts as connected while that socket exists. The
 * libvirt test driver has no guest agent; this puts the daemon's whole
 * delivery path in front of one. A release build has no such variable. */
char *
vc_engine_test_agent_socket(const char *name)
{
	const char *dir = g_getenv("VC_TEST_GUEST_AGENT_DIR");
	g_autofree char *file = NULL;

	if (dir == NULL || *dir == '\0' || name == NULL || strchr(name, '/') != NULL)
		return NULL;
	file = g_strconcat(name, ".sock", NULL);
	return g_build_filename(dir, file, NULL);
}

static void
vc_engine_test_agent_changed_cb(GFileMonitor *monitor, GFile *file, GFile *other,
				GFileMonitorEvent what, gpointer user_data)
{
	VcEngine *engine = user_data;
	g_autofree char *base = g_file_get_basename(file);
	g_autofree char *name = NULL;
	GHashTableIter iter;
	VcEngineVm *vm;

	if ((what != G_FILE_MONITOR_EVENT_CREATED && what != G_FILE_MONITOR_EVENT_DELETED) ||
	    !g_str_has_suffix(base, ".sock"))
		return;
	name = g_strndup(base, strlen(base) - strlen(".sock"));
	g_hash_table_iter_init(&iter, engine->vms);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&vm)) {
		VcVirtEvent event = {
		    .uuid = vm->uuid,
		    .name = name,
		    .kind = what == G_FILE_MONITOR_EVENT_CREATED ? VC_VIRT_EVENT_AGENT_CONNECTED
								 : VC_VIRT_EVENT_AGENT_DISCONNECTED,
		    .detail_str = "channel",
		};
		if (vm->row == NULL || g_strcmp0(vm->row->name, name) != 0)
			continue;
		vc_engine_handle_event(engine, &event);
		return;
	}
}

void
vc_engine_test_agent_watch(VcEngine *engine)
{
	const char *dir = g_getenv("VC_TEST_GUEST_AGENT_DIR");
	g_autoptr(GFile) file = NULL;
	g_autoptr(GError) error = NULL;

	if (dir == NULL || *dir == '\0' || engine->test_agent_monitor != NULL)
		return;
	file = g_file_new_for_path(dir);
	engine->test_agent_monitor =
	    g_file_monitor_directory(file, G_FILE_MONITOR_NONE, NULL, &error);
	if (engine->test_agent_monitor == NULL) {
		g_warning("VC_TEST_GUEST_AGENT_DIR %s: %s", dir, error->message);
		return;
	}
	/* every event as it comes: a flapping agent is the point */
	g_file_monitor_set_rate_limit(engine->test_agent_monitor, 0);
	g_signal_connect(engine->test_agent_monitor, "changed",
			 G_CALLBACK(vc_engine_test_agent_changed_cb), engine);
}
#endif

static void
vc_engine_work_guest(VcEngineWork *work)
{
	virConnectPtr conn = vc_virt_ref_connection(work->virt, &work->error);
	g_autoptr(VcGuestChannel) channel = NULL;

	if (conn == NULL)
		return;
#ifdef VC_TEST_SEAMS
	{
		g_autofree char *sock = vc_engine_test_agent_socket(work->name);
		if (sock != NULL)
			channel = vc_guest_channel_new_socket(sock, &work->error);
		else
			channel = vc_guest_channel_new_libvirt(conn, work->uuid, &work->error);
	}
#else
	channel = vc_guest_channel_new_libvirt(conn, work->uuid, &work->error);
#endif
	if (channel != NULL) {
		switch (work->kind) {
		case VC_ENGINE_WORK_DELIVER: {
			VcGuestDelivery d = {
			    .cert_pem = work->cert_pem,
			    .chain_pem = work->chain_pem,
			    .key_pem = work->key_pem,
			    .cert_path = work->cert_path,
			    .chain_path = work->chain_path,
			    .key_path = work->key_path,
			    .owner = work->owner,
			    .reload_command = work->reload,
			    /* the job's time budget: a guest that never finishes
			     * holds a thread this long at most */
			    .timeout_s = (int)CLAMP(work->config->guest_timeout_s, 1, 3600),
			    .command_timeout_s =
				(int)CLAMP(work->config->guest_command_timeout_s, 1, 3600),
			    /* an agent that blocks guest-exec but allows the
			     * guest-file-* commands gets the files in place
			     * (docs/guest-agent.md, "the file-only way") */
			    .method = VC_GUEST_METHOD_AUTO,
			};
			vc_crash_point("deliver-before-write");
			work->ok = vc_guest_deliver(channel, &d, &work->result, &work->error);
			vc_crash_point("deliver-after-write");
			break;
		}
		case VC_ENGINE_WORK_CHECK:
			work->ok =
			    vc_guest_check_files(channel, work->cert_path, work->cert_pem,
						 work->key_path, &work->files_match, &work->error);
			vc_crash_point("check-done");
			break;
		case VC_ENGINE_WORK_CSR: {
			g_autofree char *staged = vc_guest_staged_key_path(work->key_path);
			work->public_key =
			    vc_guest_make_csr(channel, staged, work->key_type, NULL, &work->error);
			vc_crash_point("csr-made");
			work->ok = work->public_key != NULL;
			break;
		}
		case VC_ENGINE_WORK_METADATA:
		case VC_ENGINE_WORK_CLAIM:
		default:
			g_assert_not_reached();
		}
	}
	g_clear_pointer(&channel, vc_guest_channel_free);
	virConnectClose(conn);
}

/* On a worker thread: everything here may block. */
static void
vc_engine_work_run(gpointer data, gpointer user_data)
{
	VcEngineWork *work = data;
	gint64 start = g_get_monotonic_time();

	switch (work->kind) {
	case VC_ENGINE_WORK_METADATA:
		vc_engine_work_record_metadata(work);
		break;
	case VC_ENGINE_WORK_CLAIM:
		vc_engine_work_claim(work);
		break;
	case VC_ENGINE_WORK_DELIVER:
	case VC_ENGINE_WORK_CHECK:
	case VC_ENGINE_WORK_CSR:
	default:
		vc_engine_work_guest(work);
		break;
	}
	work->run_us = g_get_monotonic_time() - start;
	g_idle_add(vc_engine_work_done_cb, work);
}

/* Prepares work for VM, queued to run once what decided it is durable.
 * Guest work waits while another runs for the VM or a retry is not due;
 * DELIVER moves the VM to DELIVERING. */
void
vc_engine_start_work(VcEngine *engine, VcEngineVm *vm, VcEngineWorkKind kind)
{
	g_autoptr(GError) error = NULL;
	VcDomainRecord *row = vm->row;
	VcEngineWork *work;

	if (engine->virt == NULL || row == NULL)
		return;
	if (vc_engine_work_is_guest(kind) && (vm->job_running || vc_engine_now() < vm->retry_at))
		return;
	work = g_new0(VcEngineWork, 1);
	work->config = engine->config;
	work->peer_url = g_strdup(vm->claim_peer);
	work->self = g_atomic_rc_box_acquire(engine->self);
	work->kind = kind;
	work->virt = engine->virt;
	work->uuid = g_strdup(vm->uuid);
	work->name = g_strdup(row->name);
	work->generation = row->generation;
	/* a claim names the certificate the issuer holds, not ours */
	work->serial =
	    g_strdup(kind == VC_ENGINE_WORK_CLAIM ? vm->claim_serial : row->current_serial);
	work->cert_path = g_strdup(vm->cert_path);
	work->chain_path = g_strdup(vm->chain_path);
	work->key_path = g_strdup(vm->key_path);
	work->owner = g_strdup(vm->owner);
	work->reload = g_strdup(vm->reload);
	work->key_type = vm->key_type;
	if (kind == VC_ENGINE_WORK_DELIVER || kind == VC_ENGINE_WORK_CHECK) {
		if (!vc_engine_cert_pems(engine, row->current_serial, &work->cert_pem,
					 &work->chain_pem, &error)) {
			vc_engine_work_free(work);
			vc_engine_vm_fail(engine, vm, "cannot read the certificate to deliver",
					  error->message, 0);
			return;
		}
		if (kind == VC_ENGINE_WORK_DELIVER && vm->key_mode == VC_KEY_MODE_HOST)
			work->key_pem =
			    g_strdup(g_hash_table_lookup(engine->keys, row->current_serial));
	}
	if (vc_engine_work_is_guest(kind)) {
		vm->job_running = TRUE;
		work->suspect = row->failures > 0;
	}
	if (kind == VC_ENGINE_WORK_DELIVER)
		vc_engine_vm_move(engine, vm, VC_DOMAIN_STATE_DELIVERING, NULL);
	g_ptr_array_add(engine->effects, work);
	vc_engine_schedule_flush(engine);
}

void
vc_engine_work_push(VcEngine *engine, VcEngineWork *work)
{
	GThreadPool **pool = work->suspect ? &engine->suspect_pool : &engine->pool;

	if (*pool == NULL)
		*pool = g_thread_pool_new(vc_engine_work_run, NULL,
					  work->suspect ? VC_ENGINE_SUSPECT_JOB_THREADS
							: VC_ENGINE_JOB_THREADS,
					  FALSE, NULL);
	g_thread_pool_push(*pool, work, NULL);
}

/* ---- results, on the main loop ----------------------------------------- */

static void vc_engine_retry_later(VcEngine *engine, VcEngineVm *vm, const char *what,
				  const GError *error);

static void
vc_engine_retry_later(VcEngine *engine, VcEngineVm *vm, const char *what, const GError *error)
{
	VcDomainRecord *row = vm->row;
	g_autofree char *msg = g_strdup_printf("%s: %s", what, error->message);
	gint64 delay;

	/* no agent yet (booting, rebooting): the agent-connected event retries */
	row->failures++;
	delay = MIN((gint64)1 << MIN(row->failures, 16), VC_ENGINE_RETRY_MAX_S);
	vm->retry_at = vc_engine_now() + delay;
	row->next_action_at = vm->retry_at;
	vc_engine_vm_move(engine, vm, VC_DOMAIN_STATE_DELIVERY_FAILED, msg);
	vc_engine_vm_mark_dirty(engine, vm);
	vc_engine_log(G_LOG_LEVEL_WARNING, "delivery-failed", row->uuid, row->name,
		      row->current_serial, "VM %s: %s; retrying in %" G_GINT64_FORMAT " s",
		      row->name, msg, delay);
	vc_engine_emit(engine, "delivery-failed", row->uuid, row->name, row->current_serial, msg);
	vc_engine_schedule_tick(engine);
}

static void
vc_engine_work_delivered(VcEngine *engine, VcEngineVm *vm, VcEngineWork *work)
{
	VcDomainRecord *row = vm->row;
	g_autoptr(VcCertRecord) cur = NULL;
	g_autofree char *detail = NULL;

	if (work->result.reload_ran && work->result.reload_exit_code != 0) {
		/* the files are in place but the service still serves the old
		 * certificate: not delivered. The old certificate stays valid,
		 * the key stays in memory, and the whole delivery (files and
		 * reload) is retried with backoff. */
		g_autoptr(GError) reload_error =
		    g_error_new(VC_ERROR, VC_ERROR_GUEST, "the reload command (%s) exited %d",
				work->reload, work->result.reload_exit_code);
		engine->n_reload_failed++;
		vc_engine_retry_later(engine, vm, "delivered, but the reload failed", reload_error);
		return;
	}
	if (work->reload != NULL && !work->result.reload_ran) {
		/* the file-only way (the agent blocks guest-exec): the files
		 * are in place, but the reload command could not run, so the
		 * service may still serve the old certificate: as a failed
		 * reload, not delivered, retried */
		g_autoptr(GError) reload_error = g_error_new(
		    VC_ERROR, VC_ERROR_GUEST,
		    "the guest agent blocks guest-exec, so the files were written in place with "
		    "guest-file-* and the reload command (%s) could not run; allow guest-exec "
		    "and guest-exec-status (docs/guest-agent.md)",
		    work->reload);
		engine->n_reload_failed++;
		vc_engine_retry_later(engine, vm, "files delivered, but the reload could not run",
				      reload_error);
		return;
	}
	vc_crash_point("deliver-before-state");
	g_hash_table_remove(engine->keys, work->serial);
	vm->check_wanted = FALSE;
	vm->retry_at = 0;
	cur = vc_store_cert_get(engine->store, work->serial, NULL);
	row->next_action_at = cur != NULL ? vc_engine_renew_at(engine, cur) : 0;
	vc_engine_vm_succeeded(engine, vm);
	vc_engine_vm_move(engine, vm, VC_DOMAIN_STATE_DELIVERED, NULL);
	vc_engine_vm_mark_dirty(engine, vm);
	/* only now, with the new certificate in the guest, do the old ones go */
	vc_engine_vm_retire(engine, vm, work->serial, VC_REASON_SUPERSEDED,
			    "superseded by a certificate delivered into the guest");
	/* migrated here: the new certificate is in place, now the issuer may
	 * revoke its own (no moment without a valid certificate) */
	if (vm->claim_wanted && vm->claim_peer != NULL) {
		vm->claim_wanted = FALSE;
		vc_engine_start_work(engine, vm, VC_ENGINE_WORK_CLAIM);
	}
	detail = g_strdup_printf("delivered in %" G_GINT64_FORMAT " ms",
				 work->result.duration_us / 1000);
	vc_engine_log(G_LOG_LEVEL_MESSAGE, "delivered", row->uuid, row->name, work->serial,
		      "VM %s: certificate %s delivered to %s in %" G_GINT64_FORMAT " ms", row->name,
		      work->serial, work->cert_path, work->result.duration_us / 1000);
	if (work->result.reload_ran) {
		g_autofree char *with_reload = g_strdup_printf("%s; reloaded", detail);
		g_free(g_steal_pointer(&detail));
		detail = g_steal_pointer(&with_reload);
	}
	vc_engine_emit(engine, "delivered", row->uuid, row->name, work->serial, detail);
}

static void
vc_engine_work_checked(VcEngine *engine, VcEngineVm *vm, VcEngineWork *work)
{
	const VcEngineInput lost = {.kind = VC_ENGINE_INPUT_FILES_LOST};

	vm->check_wanted = FALSE;
	if (work->files_match) {
		vc_engine_vm_succeeded(engine, vm);
		vc_engine_vm_move(engine, vm, VC_DOMAIN_STATE_DELIVERED, NULL);
		return;
	}
	/* the guest lost or changed its files (reboot on tmpfs, restore): the
	 * key is not on the host any more, so a new certificate */
	vc_engine_log(G_LOG_LEVEL_MESSAGE, "files-lost", vm->uuid, vm->row->name, work->serial,
		      "VM %s: the guest no longer has certificate %s at %s; issuing anew",
		      vm->row->name, work->serial, work->cert_path);
	vc_engine_evaluate(engine, vm->uuid, &lost, "the guest lost its files");
}

static void
vc_engine_work_csr_made(VcEngine *engine, VcEngineWork *work)
{
	VcQueuedIssue *q = g_hash_table_lookup(engine->issue_queue, work->uuid);

	if (q == NULL)
		return; /* nothing asks for a certificate any more */
	EVP_PKEY_free(q->public_key);
	q->public_key = g_steal_pointer(&work->public_key);
	vc_engine_schedule_flush(engine);
}

typedef struct {
	VcEngine *engine; /* the source dies with the VM, the VM with the engine */
	char *uuid;
	gint64 generation;
} VcEngineClaimRetry;

static void
vc_engine_claim_retry_free(gpointer data)
{
	VcEngineClaimRetry *r = data;
	g_free(r->uuid);
	g_free(r);
}

static gboolean
vc_engine_claim_retry_cb(gpointer data)
{
	VcEngineClaimRetry *r = data;
	VcEngineVm *vm = vc_engine_vm_lookup(r->engine, r->uuid);

	if (vm == NULL)
		return G_SOURCE_REMOVE;
	vm->claim_retry_source = 0;
	/* the same life of the VM, still here and still to be claimed */
	if (vm->row != NULL && vm->row->generation == r->generation && vm->claim_peer != NULL &&
	    vm->state != VC_DOMAIN_STATE_REVOKED && vm->state != VC_DOMAIN_STATE_REVOKING)
		vc_engine_start_work(r->engine, vm, VC_ENGINE_WORK_CLAIM);
	return G_SOURCE_REMOVE;
}

/* A claim that got no answer (the issuer unreachable, hung, answering
 * garbage, or refusing what may pass, such as a claim that came before the
 * VM left it): tried again with backoff, and the VM's row says why. Nothing
 * is revoked here; the issuer's own certificate stays valid until an
 * accepted claim or its handover grace ends it. */
static void
vc_engine_claim_retry(VcEngine *engine, VcEngineWork *work)
{
	VcEngineVm *vm = vc_engine_vm_lookup(engine, work->uuid);
	g_autofree char *msg = NULL;
	VcEngineClaimRetry *r;
	guint delay;

	if (vm == NULL || vm->row == NULL || vm->row->generation != work->generation ||
	    vm->claim_peer == NULL)
		return;
	vm->claim_failures++;
	if (vm->claim_failures > VC_ENGINE_CLAIM_RETRIES) {
		msg = g_strdup_printf("the handover claim to %s failed %u times, given up: %s",
				      work->peer_url, vm->claim_failures, work->error->message);
		vc_engine_vm_move(engine, vm, vm->state, msg);
		return;
	}
	delay = 1u << (vm->claim_failures - 1);
	msg = g_strdup_printf("the handover claim to %s failed (try %u): %s; retrying in %u s",
			      work->peer_url, vm->claim_failures, work->error->message, delay);
	vc_engine_vm_move(engine, vm, vm->state, msg);
	vc_engine_schedule_flush(engine);
	r = g_new0(VcEngineClaimRetry, 1);
	r->engine = engine;
	r->uuid = g_strdup(vm->uuid);
	r->generation = vm->row->generation;
	g_clear_handle_id(&vm->claim_retry_source, g_source_remove);
	/* in milliseconds: a seconds timer may fire up to a second early */
	vm->claim_retry_source =
	    g_timeout_add_full(G_PRIORITY_DEFAULT, delay * 1000, vc_engine_claim_retry_cb, r,
			       vc_engine_claim_retry_free);
}

/* An answer: the handover is over either way; an earlier failure's
 * message goes from the row. */
static void
vc_engine_claim_answered(VcEngine *engine, VcEngineWork *work)
{
	VcEngineVm *vm = vc_engine_vm_lookup(engine, work->uuid);
	g_autofree char *msg = NULL;

	if (vm == NULL || vm->row == NULL || vm->row->generation != work->generation)
		return;
	if (!work->accepted)
		msg = g_strdup_printf("the issuer %s refused the handover: %s", work->peer_url,
				      work->reason != NULL ? work->reason : "");
	if (vm->claim_failures > 0 || msg != NULL) {
		vm->claim_failures = 0;
		vc_engine_vm_move(engine, vm, vm->state, msg);
		vc_engine_schedule_flush(engine);
	}
}

static void
vc_engine_work_claimed(VcEngine *engine, VcEngineWork *work)
{
	if (!work->ok) {
		vc_engine_log(G_LOG_LEVEL_WARNING, "claim", work->uuid, work->name, work->serial,
			      "VM %s: the claim to %s failed: %s", work->name, work->peer_url,
			      work->error->message);
		vc_engine_claim_retry(engine, work);
	} else {
		vc_engine_claim_answered(engine, work);
	}
	if (work->ok)
		vc_engine_log(work->accepted ? G_LOG_LEVEL_MESSAGE : G_LOG_LEVEL_WARNING, "claim",
			      work->uuid, work->name, work->serial,
			      "VM %s: the issuer %s %s the handover: %s", work->name,
			      work->peer_url, work->accepted ? "accepted" : "refused",
			      work->reason ? work->reason : "");
	vc_engine_emit(
	    engine, work->ok && work->accepted ? "handover-accepted" : "handover-refused",
	    work->uuid, work->name, work->serial, work->ok ? work->reason : work->error->message);
}

static gboolean
vc_engine_work_done_cb(gpointer data)
{
	const VcEngineInput newer = {.kind = VC_ENGINE_INPUT_NEWER_CERT};
	VcEngineWork *work = data;
	VcEngine *engine = *work->self;
	VcEngineVm *vm;

	if (engine == NULL)
		goto out;
	if (work->kind == VC_ENGINE_WORK_METADATA) {
		if (!work->ok)
			vc_engine_log(G_LOG_LEVEL_WARNING, "metadata", work->uuid, work->name,
				      work->serial,
				      "VM %s: cannot record the issuer in its metadata: %s",
				      work->name, work->error->message);
		goto out;
	}
	if (work->kind == VC_ENGINE_WORK_CLAIM) {
		vc_engine_work_claimed(engine, work);
		goto out;
	}
	vm = vc_engine_vm(engine, work->uuid);
	vm->job_running = FALSE;
	if (vm->row == NULL || vm->row->generation != work->generation ||
	    vm->state == VC_DOMAIN_STATE_REVOKED || vm->state == VC_DOMAIN_STATE_REVOKING)
		goto out;
	if (work->kind != VC_ENGINE_WORK_CSR &&
	    g_strcmp0(vm->row->current_serial, work->serial) != 0) {
		/* superseded meanwhile: the evaluation delivers the new one */
		vc_engine_evaluate(engine, work->uuid, &newer, "newer certificate");
		goto out;
	}
	if (work->kind == VC_ENGINE_WORK_DELIVER) {
		vc_metric_add(work->ok ? engine->m_deliveries : engine->m_delivery_failures, NULL,
			      1);
		if (work->ok)
			vc_metric_observe(engine->m_delivery_seconds,
					  (double)work->run_us / G_USEC_PER_SEC);
	}
	if (!work->ok) {
		vc_engine_retry_later(engine, vm,
				      work->kind == VC_ENGINE_WORK_DELIVER ? "delivery failed"
				      : work->kind == VC_ENGINE_WORK_CHECK
					  ? "checking the guest's files failed"
					  : "guest keygen failed",
				      work->error);
		goto out;
	}
	switch (work->kind) {
	case VC_ENGINE_WORK_DELIVER:
		vc_engine_work_delivered(engine, vm, work);
		break;
	case VC_ENGINE_WORK_CHECK:
		vc_engine_work_checked(engine, vm, work);
		break;
	case VC_ENGINE_WORK_CSR:
		vc_engine_work_csr_made(engine, work);
		break;
	case VC_ENGINE_WORK_METADATA:
	case VC_ENGINE_WORK_CLAIM:
	default:
		g_assert_not_reached();
	}
out:
	vc_engine_work_free(work);
	return G_SOURCE_REMOVE;
}
