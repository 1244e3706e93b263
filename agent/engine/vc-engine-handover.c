/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-engine-private.h"

#include "vc-placement.h"

/* The issuer's side of a migration: the VM left (STOPPED MIGRATED moved it
 * to MIGRATING_OUT, vc-engine-decide.c), its certificate stays valid for the
 * grace period, and the destination claims it here once its own certificate
 * is in the guest. A claim from a host inside the VM's placement ends ours
 * as superseded; one from outside, or none within the grace, as
 * privilegeWithdrawn. */

gboolean
vc_engine_handle_claim(VcEngine *engine, const char *vm_uuid, const char *peer_fqdn,
		       const VcHostIdentity *peer, char **ret_reason)
{
	VcEngineVm *vm = vc_engine_vm_lookup(engine, vm_uuid);
	g_autoptr(VcVirtDomain) dom = NULL;
	g_autofree char *reason = NULL;
	g_autofree char *why = NULL;

	if (vm == NULL || vm->row == NULL || vm->row->current_serial == NULL ||
	    vm->state == VC_DOMAIN_STATE_REVOKED) {
		*ret_reason = g_strdup("this host holds no certificate for that VM");
		return FALSE;
	}
	if (engine->virt != NULL &&
	    (dom = vc_virt_get_domain(engine->virt, vm_uuid, FALSE, NULL)) != NULL && dom->active) {
		*ret_reason = g_strdup("the VM still runs on this host");
		return FALSE;
	}
	if (!vm->placement_known) {
		*ret_reason = g_strdup("this host no longer knows the VM's placement policy");
		return FALSE;
	}
	if (vm->placement != NULL && !vc_placement_allows(vm->placement, peer, &reason)) {
		/* the VM runs on a host its owner does not trust: its identity ends */
		why =
		    g_strdup_printf("migrated to %s, outside its placement: %s", peer_fqdn, reason);
		vc_engine_vm_retire(engine, vm, NULL, VC_REASON_PRIVILEGE_WITHDRAWN, why);
		vc_engine_vm_move(engine, vm, VC_DOMAIN_STATE_REVOKING, why);
		vc_engine_log(G_LOG_LEVEL_WARNING, "handover-refused", vm->uuid, vm->row->name,
			      NULL, "VM %s %s: revoking (privilegeWithdrawn)", vm->row->name, why);
		*ret_reason = g_strdup(reason);
		return FALSE;
	}
	if (reason == NULL)
		reason = g_strdup("the VM does not restrict its placement");
	why = g_strdup_printf("handed over to %s", peer_fqdn);
	vc_engine_vm_retire(engine, vm, NULL, VC_REASON_SUPERSEDED, why);
	vc_engine_vm_move(engine, vm, VC_DOMAIN_STATE_HANDED_OVER, NULL);
	vc_engine_log(G_LOG_LEVEL_MESSAGE, "handed-over", vm->uuid, vm->row->name, NULL,
		      "VM %s %s; its certificate here is superseded", vm->row->name, why);
	vc_engine_emit(engine, "handed-over", vm->uuid, vm->row->name, NULL, why);
	*ret_reason = g_strdup(reason);
	return TRUE;
}
