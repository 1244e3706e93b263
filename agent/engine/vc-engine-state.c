/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-engine-state.h"

#define B(s) (1u << VC_DOMAIN_STATE_##s)
/* the states of a life that goes on: from each of them, any other of them */
#define LIVE                                                                                       \
	(B(WANTED) | B(RENEWING) | B(ISSUED) | B(DELIVERING) | B(DELIVERED) | B(DELIVERY_FAILED) | \
	 B(STOPPED) | B(FAILED))
/* and from a live state, the ways out: migrated away (then, or even without
 * the event, claimed by the destination), or the end of the life */
#define OUT (B(MIGRATING_OUT) | B(HANDED_OVER) | B(REVOKING))

/* One row per state, in enum order: its stored string, where it may move,
 * what a restart does with it. docs/state-machine.md shows this table, and
 * test-vc-engine-state checks that the two agree. */
static const struct {
	const char *name;
	guint32 moves;
	VcDomainRecovery recovery;
	gboolean scheduled;
} vc_domain_states[VC_DOMAIN_STATE_LAST] = {
    [VC_DOMAIN_STATE_NEW] = {"NEW", B(WANTED) | B(STOPPED) | B(FAILED) | B(REVOKING),
			     VC_DOMAIN_RECOVERY_REEVALUATE, FALSE},
    [VC_DOMAIN_STATE_WANTED] = {"WANTED", LIVE | OUT, VC_DOMAIN_RECOVERY_REEVALUATE, FALSE},
    [VC_DOMAIN_STATE_RENEWING] = {"RENEWING", LIVE | OUT, VC_DOMAIN_RECOVERY_REEVALUATE, FALSE},
    [VC_DOMAIN_STATE_ISSUED] = {"ISSUED", LIVE | OUT, VC_DOMAIN_RECOVERY_REEVALUATE, TRUE},
    [VC_DOMAIN_STATE_DELIVERING] = {"DELIVERING", LIVE | OUT, VC_DOMAIN_RECOVERY_RESET_TO_ISSUED,
				    FALSE},
    [VC_DOMAIN_STATE_DELIVERED] = {"DELIVERED", LIVE | OUT, VC_DOMAIN_RECOVERY_REEVALUATE, TRUE},
    [VC_DOMAIN_STATE_DELIVERY_FAILED] = {"DELIVERY_FAILED", LIVE | OUT,
					 VC_DOMAIN_RECOVERY_REEVALUATE, TRUE},
    [VC_DOMAIN_STATE_STOPPED] = {"STOPPED", LIVE | OUT, VC_DOMAIN_RECOVERY_REEVALUATE, FALSE},
    [VC_DOMAIN_STATE_FAILED] = {"FAILED", LIVE | OUT, VC_DOMAIN_RECOVERY_REEVALUATE, TRUE},
    [VC_DOMAIN_STATE_MIGRATING_OUT] = {"MIGRATING_OUT", LIVE | B(HANDED_OVER) | B(REVOKING),
				       VC_DOMAIN_RECOVERY_AWAIT_CLAIM, TRUE},
    [VC_DOMAIN_STATE_HANDED_OVER] = {"HANDED_OVER",
				     B(WANTED) | B(STOPPED) | B(FAILED) | B(REVOKING),
				     VC_DOMAIN_RECOVERY_NONE, FALSE},
    [VC_DOMAIN_STATE_REVOKING] = {"REVOKING", B(REVOKED) | B(NEW),
				  VC_DOMAIN_RECOVERY_FINISH_REVOCATION, FALSE},
    [VC_DOMAIN_STATE_REVOKED] = {"REVOKED", B(NEW), VC_DOMAIN_RECOVERY_NONE, FALSE},
};

#undef LIVE
#undef OUT
#undef B

const char *
vc_domain_state_to_string(VcDomainState state)
{
	g_return_val_if_fail(state < VC_DOMAIN_STATE_LAST, NULL);
	return vc_domain_states[state].name;
}

gboolean
vc_domain_state_from_string(const char *str, VcDomainState *ret_state)
{
	for (guint i = 0; i < VC_DOMAIN_STATE_LAST; i++) {
		if (g_strcmp0(vc_domain_states[i].name, str) == 0) {
			*ret_state = (VcDomainState)i;
			return TRUE;
		}
	}
	return FALSE;
}

gboolean
vc_domain_state_can_move(VcDomainState from, VcDomainState to)
{
	g_return_val_if_fail(from < VC_DOMAIN_STATE_LAST && to < VC_DOMAIN_STATE_LAST, FALSE);
	return from == to || (vc_domain_states[from].moves & (1u << to)) != 0;
}

VcDomainRecovery
vc_domain_state_get_recovery(VcDomainState state)
{
	g_return_val_if_fail(state < VC_DOMAIN_STATE_LAST, VC_DOMAIN_RECOVERY_NONE);
	return vc_domain_states[state].recovery;
}

const char *
vc_domain_recovery_to_string(VcDomainRecovery recovery)
{
	switch (recovery) {
	case VC_DOMAIN_RECOVERY_REEVALUATE:
		return "re-evaluate";
	case VC_DOMAIN_RECOVERY_RESET_TO_ISSUED:
		return "reset to ISSUED";
	case VC_DOMAIN_RECOVERY_AWAIT_CLAIM:
		return "await the claim";
	case VC_DOMAIN_RECOVERY_FINISH_REVOCATION:
		return "finish the revocation";
	case VC_DOMAIN_RECOVERY_NONE:
	default:
		return "none";
	}
}

gboolean
vc_domain_state_is_scheduled(VcDomainState state)
{
	g_return_val_if_fail(state < VC_DOMAIN_STATE_LAST, FALSE);
	return vc_domain_states[state].scheduled;
}

gboolean
vc_domain_state_is_live(VcDomainState state)
{
	switch (state) {
	case VC_DOMAIN_STATE_WANTED:
	case VC_DOMAIN_STATE_RENEWING:
	case VC_DOMAIN_STATE_ISSUED:
	case VC_DOMAIN_STATE_DELIVERING:
	case VC_DOMAIN_STATE_DELIVERED:
	case VC_DOMAIN_STATE_DELIVERY_FAILED:
	case VC_DOMAIN_STATE_STOPPED:
	case VC_DOMAIN_STATE_FAILED:
		return TRUE;
	case VC_DOMAIN_STATE_NEW:
	case VC_DOMAIN_STATE_MIGRATING_OUT:
	case VC_DOMAIN_STATE_HANDED_OVER:
	case VC_DOMAIN_STATE_REVOKING:
	case VC_DOMAIN_STATE_REVOKED:
	case VC_DOMAIN_STATE_LAST:
	default:
		return FALSE;
	}
}
