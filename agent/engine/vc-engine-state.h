/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The state of one VM's certificate life, as the engine keeps it in the
 * store's domains table (the strings are what the store holds; see
 * docs/state-machine.md for the diagram). Which state may follow which is
 * vc_domain_state_can_move(); what a restart does in each state is
 * vc_domain_state_get_recovery(). */
typedef enum {
	VC_DOMAIN_STATE_NEW,		 /* a life begins: nothing decided yet */
	VC_DOMAIN_STATE_WANTED,		 /* policy asks for a certificate, none valid yet */
	VC_DOMAIN_STATE_RENEWING,	 /* a valid certificate, its successor queued */
	VC_DOMAIN_STATE_ISSUED,		 /* a valid certificate, not (yet) in the guest */
	VC_DOMAIN_STATE_DELIVERING,	 /* the certificate is on its way into the guest */
	VC_DOMAIN_STATE_DELIVERED,	 /* the guest holds the current certificate */
	VC_DOMAIN_STATE_DELIVERY_FAILED, /* the guest did not take it; retried with backoff */
	VC_DOMAIN_STATE_STOPPED,	 /* the VM does not run; the certificate kept while valid */
	VC_DOMAIN_STATE_FAILED,		 /* policy, names or placement refused (last_error) */
	VC_DOMAIN_STATE_MIGRATING_OUT,	 /* migrated away: valid until claimed or the grace ends */
	VC_DOMAIN_STATE_HANDED_OVER,	 /* a trusted destination claimed the VM */
	VC_DOMAIN_STATE_REVOKING,	 /* the end of this life is decided, revocations pending */
	VC_DOMAIN_STATE_REVOKED,	 /* the end of this life; a new definition is a new one */
	VC_DOMAIN_STATE_LAST
} VcDomainState;

/* What a restart does with a row in a state (certmonger's per-state reset). */
typedef enum {
	VC_DOMAIN_RECOVERY_REEVALUATE,	      /* the reconcile after connecting decides anew */
	VC_DOMAIN_RECOVERY_RESET_TO_ISSUED,   /* cut off: back to ISSUED, then re-evaluated */
	VC_DOMAIN_RECOVERY_AWAIT_CLAIM,	      /* the grace deadline (next_action_at) still runs */
	VC_DOMAIN_RECOVERY_FINISH_REVOCATION, /* queue the revocations again, then REVOKED */
	VC_DOMAIN_RECOVERY_NONE,	      /* final on this host: nothing to do */
} VcDomainRecovery;

const char *vc_domain_state_to_string(VcDomainState state);
/* FALSE for a string that names no state. */
gboolean vc_domain_state_from_string(const char *str, VcDomainState *ret_state);
/* May a VM in state FROM move to state TO? Staying is always allowed. */
gboolean vc_domain_state_can_move(VcDomainState from, VcDomainState to);
VcDomainRecovery vc_domain_state_get_recovery(VcDomainState state);
const char *vc_domain_recovery_to_string(VcDomainRecovery recovery);
/* States in which the row's next_action_at is a deadline the timer keeps
 * (a renewal, a retry, the end of a handover's grace). */
gboolean vc_domain_state_is_scheduled(VcDomainState state);
/* A certificate life goes on in STATE (not handed over, not ending). */
gboolean vc_domain_state_is_live(VcDomainState state);

G_END_DECLS
