/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-engine-private.h"

#include "vc-placement.h"

/* The issuer's side of a migration. libvirt does not tell the source where
 * a VM went, so the destination says so itself: its hook's check announces
 * the incoming migration here (before memory moves), and we record which
 * host certificate did. The VM then leaves (STOPPED MIGRATED moves it to
 * MIGRATING_OUT, vc-engine-decide.c); its certificate stays valid for the
 * grace period, and the destination claims it once its own certificate is
 * in the guest. Only the announced host certificate's claim, naming our
 * serial, for a VM that did migrate away, inside the placement the
 * certificate was issued under, ends ours as superseded. Anything else is
 * refused and changes nothing: no claim within the grace ends ours as
 * privilegeWithdrawn (the timer). */

/* The placement VM's current certificate was issued under, as the store
 * recorded it; certificates from before that record (schema < 3) fall back
 * to the placement last resolved. NULL with RET_REASON when neither is
 * known. */
static VcPolicy *
vc_engine_handover_placement(VcEngine *engine, VcEngineVm *vm, char **ret_reason)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcCertRecord) rec =
	    vc_store_cert_get(engine->store, vm->row->current_serial, &error);
	VcPolicy *placement;

	if (rec == NULL) {
		*ret_reason =
		    g_strdup_printf("cannot read the certificate's record: %s", error->message);
		return NULL;
	}
	if (rec->placement != NULL) {
		placement = vc_placement_from_canonical(rec->placement, &error);
		if (placement == NULL)
			*ret_reason = g_strdup_printf(
			    "the placement recorded with certificate %s is unreadable: %s",
			    rec->serial, error->message);
		return placement;
	}
	if (!vm->placement_known) {
		*ret_reason = g_strdup("this host no longer knows the VM's placement policy");
		return NULL;
	}
	return vm->placement != NULL ? vc_policy_copy_placement(vm->placement)
				     : g_new0(VcPolicy, 1);
}

/* The checks announce and claim share: this host holds SERIAL for the VM,
 * and PEER is inside the placement it was issued under. */
static VcEngineVm *
vc_engine_handover_check(VcEngine *engine, const char *what, const char *vm_uuid,
			 const char *serial, const VcEnginePeer *peer, char **ret_reason)
{
	VcEngineVm *vm = vc_engine_vm_lookup(engine, vm_uuid);
	g_autoptr(VcPolicy) placement = NULL;
	g_autofree char *reason = NULL;

	if (vm == NULL || vm->row == NULL || vm->row->current_serial == NULL ||
	    vm->state == VC_DOMAIN_STATE_REVOKED || vm->state == VC_DOMAIN_STATE_REVOKING ||
	    vm->state == VC_DOMAIN_STATE_HANDED_OVER) {
		*ret_reason = g_strdup("this host holds no certificate for that VM");
		return NULL;
	}
	if (g_ascii_strcasecmp(serial, vm->row->current_serial) != 0) {
		*ret_reason =
		    g_strdup_printf("the %s names certificate %s; this host's certificate "
				    "for the VM is another",
				    what, serial);
		return NULL;
	}
	placement = vc_engine_handover_placement(engine, vm, ret_reason);
	if (placement == NULL)
		return NULL;
	if (vc_placement_is_restricted(placement) &&
	    !vc_placement_allows(placement, peer->identity, &reason)) {
		*ret_reason =
		    g_strdup_printf("%s is outside the placement the VM's certificate was "
				    "issued under: %s",
				    peer->fqdn, reason);
		return NULL;
	}
	return vm;
}

gboolean
vc_engine_handle_announce(VcEngine *engine, const char *vm_uuid, const char *serial,
			  const VcEnginePeer *peer, char **ret_reason)
{
	g_autoptr(VcVirtDomain) dom = NULL;
	VcEngineVm *vm;

	g_return_val_if_fail(vm_uuid != NULL && serial != NULL && peer != NULL, FALSE);
	vm = vc_engine_handover_check(engine, "announcement", vm_uuid, serial, peer, ret_reason);
	if (vm == NULL)
		return FALSE;
	/* a migration begins while the VM still runs here; once it left, an
	 * announcement would only let a late comer take over its claim */
	if (vm->state == VC_DOMAIN_STATE_MIGRATING_OUT) {
		*ret_reason = g_strdup("the VM has already migrated away from this host");
		return FALSE;
	}
	if (engine->virt != NULL &&
	    ((dom = vc_virt_get_domain(engine->virt, vm_uuid, FALSE, NULL)) == NULL ||
	     !dom->active)) {
		*ret_reason = g_strdup("the VM does not run on this host: no migration of it "
				       "can begin here");
		return FALSE;
	}
	g_free(vm->announced_fingerprint);
	vm->announced_fingerprint = g_ascii_strdown(peer->fingerprint, -1);
	g_free(vm->announced_fqdn);
	vm->announced_fqdn = g_strdup(peer->fqdn);
	g_free(vm->announced_serial);
	vm->announced_serial = g_ascii_strdown(serial, -1);
	vm->announced_at = vc_engine_now();
	vc_crash_point("handover-announce-recorded");
	vc_engine_log(G_LOG_LEVEL_MESSAGE, "migration-announced", vm->uuid, vm->row->name,
		      vm->row->current_serial, "VM %s: %s announced an incoming migration",
		      vm->row->name, peer->fqdn);
	vc_engine_emit(engine, "migration-announced", vm->uuid, vm->row->name,
		       vm->row->current_serial, peer->fqdn);
	*ret_reason = g_strdup_printf("migration to %s recorded; claim within %" G_GINT64_FORMAT
				      " s after it completes",
				      peer->fqdn, engine->config->handover_grace_s);
	return TRUE;
}

gboolean
vc_engine_handle_claim(VcEngine *engine, const char *vm_uuid, const char *serial,
		       const VcEnginePeer *peer, gboolean *ret_not_yet, char **ret_reason)
{
	VcEngineVm *vm;
	g_autoptr(VcVirtDomain) dom = NULL;
	g_autofree char *why = NULL;
	gint64 grace = engine->config->handover_grace_s;

	g_return_val_if_fail(vm_uuid != NULL && serial != NULL && peer != NULL, FALSE);
	if (ret_not_yet != NULL)
		*ret_not_yet = FALSE;
	vm = vc_engine_handover_check(engine, "claim", vm_uuid, serial, peer, ret_reason);
	if (vm == NULL)
		return FALSE;
	if (vm->announced_at == 0) {
		*ret_reason =
		    g_strdup_printf("no migration of the VM to %s was announced here", peer->fqdn);
		return FALSE;
	}
	if (g_ascii_strcasecmp(vm->announced_fingerprint, peer->fingerprint) != 0) {
		*ret_reason = g_strdup_printf("the VM's migration was announced by another host "
					      "certificate (%s), not by this one (%s)",
					      vm->announced_fqdn, peer->fqdn);
		return FALSE;
	}
	/* the announced destination may claim before libvirt's STOPPED
	 * MIGRATED reached us: the caller may ask again a little later */
	if (engine->virt != NULL &&
	    (dom = vc_virt_get_domain(engine->virt, vm_uuid, FALSE, NULL)) != NULL && dom->active) {
		*ret_reason = g_strdup("the VM still runs on this host");
		if (ret_not_yet != NULL)
			*ret_not_yet = TRUE;
		return FALSE;
	}
	if (vm->state != VC_DOMAIN_STATE_MIGRATING_OUT) {
		*ret_reason = g_strdup_printf("the VM has not migrated away from this host (%s)",
					      vc_domain_state_to_string(vm->state));
		if (ret_not_yet != NULL)
			*ret_not_yet = TRUE;
		return FALSE;
	}
	if (g_strcmp0(vm->announced_serial, vm->row->current_serial) != 0 ||
	    vm->stopped_migrated_at < vm->announced_at ||
	    vm->stopped_migrated_at - vm->announced_at > grace) {
		*ret_reason = g_strdup_printf(
		    "the announcement (%" G_GINT64_FORMAT " s before the VM left) does not match "
		    "this migration (handover-grace %" G_GINT64_FORMAT " s)",
		    vm->stopped_migrated_at - vm->announced_at, grace);
		return FALSE;
	}
	why = g_strdup_printf("handed over to %s", peer->fqdn);
	vc_engine_vm_retire(engine, vm, NULL, VC_REASON_SUPERSEDED, why);
	vc_engine_vm_move(engine, vm, VC_DOMAIN_STATE_HANDED_OVER, NULL);
	vc_crash_point("handover-claim-accepted");
	g_clear_pointer(&vm->announced_fingerprint, g_free);
	g_clear_pointer(&vm->announced_fqdn, g_free);
	g_clear_pointer(&vm->announced_serial, g_free);
	vm->announced_at = 0;
	vc_engine_log(G_LOG_LEVEL_MESSAGE, "handed-over", vm->uuid, vm->row->name, NULL,
		      "VM %s %s; its certificate here is superseded", vm->row->name, why);
	vc_engine_emit(engine, "handed-over", vm->uuid, vm->row->name, NULL, why);
	*ret_reason = g_strdup_printf("%s: the certificate here is superseded", why);
	return TRUE;
}
