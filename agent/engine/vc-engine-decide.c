/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-engine-decide.h"

#include <string.h>

#include "vc-reason.h"

#define VC_ENGINE_RETRY_MAX_S 300

static const char *const vc_engine_why_strings[VC_ENGINE_WHY_LAST] = {
    [VC_ENGINE_WHY_NOTHING] = "nothing to do",
    [VC_ENGINE_WHY_RENAMED] = "undefined as part of a rename",
    [VC_ENGINE_WHY_UNDEFINED_MIGRATED] = "undefined after migrating away; not a deletion",
    [VC_ENGINE_WHY_FETCH_FAILED] = "libvirt cannot tell; the next reconcile retries",
    [VC_ENGINE_WHY_GONE] = "the domain no longer exists",
    [VC_ENGINE_WHY_VANISHED] = "the domain vanished while nobody watched",
    [VC_ENGINE_WHY_UNDEFINED] = "undefined",
    [VC_ENGINE_WHY_RUNS_ELSEWHERE] = "it runs elsewhere now: the handover decides",
    [VC_ENGINE_WHY_MIGRATED_AWAY] = "migrated away; the handover begins",
    [VC_ENGINE_WHY_INCOMING] = "an incoming migration: nothing before it completes (RESUMED)",
    [VC_ENGINE_WHY_GRACE_ENDED] = "no trusted claim within the handover grace",
    [VC_ENGINE_WHY_REFUSED] = "refused",
    [VC_ENGINE_WHY_UNSELECTED] = "no policy selects the VM any more",
    [VC_ENGINE_WHY_STOPPED_REVOKE] = "VM stopped and its policy says on-stop=revoke",
    [VC_ENGINE_WHY_STOPPED] = "the VM does not run",
    [VC_ENGINE_WHY_NAMES_CHANGED_STOPPED] =
	"names, key or lifetime changed while the VM was stopped",
    [VC_ENGINE_WHY_HOLD] = "nothing to deliver to now",
    [VC_ENGINE_WHY_IN_GUEST] = "the guest holds the certificate",
    [VC_ENGINE_WHY_DELIVER] = "deliver into the guest",
    [VC_ENGINE_WHY_CHECK] = "check the guest's files",
    [VC_ENGINE_WHY_JOB_BUSY] = "a guest job runs or its retry is not due",
    [VC_ENGINE_WHY_AWAIT_GUEST] = "guest keygen waits for the VM to run with a guest agent",
    [VC_ENGINE_WHY_ISSUE] = "a first certificate",
    [VC_ENGINE_WHY_RENEW] = "renewal",
    [VC_ENGINE_WHY_NAMES_CHANGED] = "names, key or lifetime changed",
    [VC_ENGINE_WHY_ISSUE_REFUSED] = "the CA refused these names or this profile; not retried "
				    "until policy or metadata change",
};

static const char *const vc_engine_input_strings[VC_ENGINE_INPUT_LAST] = {
    [VC_ENGINE_INPUT_DEFINED] = "DEFINED",
    [VC_ENGINE_INPUT_UNDEFINED] = "UNDEFINED",
    [VC_ENGINE_INPUT_STARTED] = "STARTED",
    [VC_ENGINE_INPUT_STOPPED] = "STOPPED",
    [VC_ENGINE_INPUT_RESUMED] = "RESUMED",
    [VC_ENGINE_INPUT_AGENT_CONNECTED] = "AGENT_CONNECTED",
    [VC_ENGINE_INPUT_METADATA_CHANGED] = "METADATA_CHANGED",
    [VC_ENGINE_INPUT_OTHER_EVENT] = "OTHER_EVENT",
    [VC_ENGINE_INPUT_RECONCILE] = "RECONCILE",
    [VC_ENGINE_INPUT_TIMER] = "TIMER",
    [VC_ENGINE_INPUT_POLICY_RELOAD] = "POLICY_RELOAD",
    [VC_ENGINE_INPUT_RENEW] = "RENEW",
    [VC_ENGINE_INPUT_FILES_LOST] = "FILES_LOST",
    [VC_ENGINE_INPUT_NEWER_CERT] = "NEWER_CERT",
};

const char *
vc_engine_why_to_string(VcEngineWhy why)
{
	g_return_val_if_fail(why < VC_ENGINE_WHY_LAST, NULL);
	return vc_engine_why_strings[why];
}

const char *
vc_engine_input_kind_to_string(VcEngineInputKind kind)
{
	g_return_val_if_fail(kind < VC_ENGINE_INPUT_LAST, NULL);
	return vc_engine_input_strings[kind];
}

char *
vc_engine_profile_key(const char *const *names, const VcPolicy *policy)
{
	g_autofree char *joined = g_strjoinv(",", (GStrv)names);
	return g_strdup_printf("%s;key=%s/%s;life=%" G_GINT64_FORMAT, joined,
			       vc_key_type_to_string(policy->key_type),
			       vc_key_mode_to_string(policy->key_mode), policy->lifetime_s);
}

gboolean
vc_engine_profile_matches(const char *row_key, const char *facts_key)
{
	const char *semi;

	if (row_key == NULL || facts_key == NULL)
		return FALSE;
	if (strchr(row_key, ';') != NULL)
		return g_str_equal(row_key, facts_key);
	semi = strchr(facts_key, ';');
	return semi != NULL ? strlen(row_key) == (gsize)(semi - facts_key) &&
				  strncmp(row_key, facts_key, (gsize)(semi - facts_key)) == 0
			    : g_str_equal(row_key, facts_key);
}

gboolean
vc_engine_input_needs_facts(const VcEngineInput *input, const VcEngineVmView *vm)
{
	switch (input->kind) {
	case VC_ENGINE_INPUT_UNDEFINED:
		return !input->rename && !vm->stopped_migrated;
	case VC_ENGINE_INPUT_STOPPED:
	case VC_ENGINE_INPUT_STARTED:
		return !input->migration;
	case VC_ENGINE_INPUT_TIMER:
		return !(vm->has_row && vm->state == VC_DOMAIN_STATE_MIGRATING_OUT);
	case VC_ENGINE_INPUT_OTHER_EVENT:
		return FALSE;
	case VC_ENGINE_INPUT_DEFINED:
	case VC_ENGINE_INPUT_RESUMED:
	case VC_ENGINE_INPUT_AGENT_CONNECTED:
	case VC_ENGINE_INPUT_METADATA_CHANGED:
	case VC_ENGINE_INPUT_RECONCILE:
	case VC_ENGINE_INPUT_POLICY_RELOAD:
	case VC_ENGINE_INPUT_RENEW:
	case VC_ENGINE_INPUT_FILES_LOST:
	case VC_ENGINE_INPUT_NEWER_CERT:
	case VC_ENGINE_INPUT_LAST:
	default:
		return TRUE;
	}
}

static void
vc_engine_decide_move(VcEngineVmView *v, VcEngineDecision *d, VcDomainState state)
{
	d->move = TRUE;
	d->state = state;
	v->state = state;
	v->has_row = TRUE;
}

/* Every live certificate revoked, the serial cleared. */
static void
vc_engine_decide_retire(VcEngineVmView *v, VcEngineDecision *d, int reason, const char *why)
{
	d->retire = TRUE;
	d->retire_reason = reason;
	d->retire_why = why;
	d->set_next_action = TRUE;
	d->next_action_at = 0;
	v->has_serial = FALSE;
	v->names_key = NULL;
}

/* A job for the guest, unless one runs or its retry is not due. */
static void
vc_engine_decide_job(const VcEngineVmView *v, VcEngineDecision *d, VcEngineJobKind job, gint64 now)
{
	if (v->job_running || now < v->retry_at) {
		d->why = d->why == VC_ENGINE_WHY_NOTHING ? VC_ENGINE_WHY_JOB_BUSY : d->why;
		return;
	}
	d->job = job;
}

/* Level-triggered: what libvirt and policy say now against what the VM has. */
static void
vc_engine_decide_level(const VcEngineInput *input, const VcEngineFacts *f, VcEngineVmView *v,
		       gint64 now, VcEngineDecision *d)
{
	const VcPolicy *pol = f->policy;
	gboolean cur, cur_ok, deliverable, need, renew_due;

	if (f->fetch_error != NULL) {
		d->why = VC_ENGINE_WHY_FETCH_FAILED;
		return;
	}
	if (!f->exists) {
		d->cancel_issue = TRUE;
		if (!v->has_row || v->state == VC_DOMAIN_STATE_REVOKED ||
		    v->state == VC_DOMAIN_STATE_REVOKING)
			return;
		d->why = input->kind == VC_ENGINE_INPUT_RECONCILE ? VC_ENGINE_WHY_VANISHED
								  : VC_ENGINE_WHY_GONE;
		vc_engine_decide_retire(v, d, VC_REASON_CESSATION_OF_OPERATION, NULL);
		vc_engine_decide_move(v, d, VC_DOMAIN_STATE_REVOKING);
		return;
	}
	if (v->has_row && !f->active &&
	    (v->state == VC_DOMAIN_STATE_MIGRATING_OUT ||
	     v->state == VC_DOMAIN_STATE_HANDED_OVER)) {
		d->why = VC_ENGINE_WHY_RUNS_ELSEWHERE;
		return;
	}
	if (input->kind == VC_ENGINE_INPUT_RENEW || input->kind == VC_ENGINE_INPUT_FILES_LOST) {
		/* kept in the row, so that a renewal that must wait (guest keygen
		 * with the agent away, a failed CSR, a stop) is not lost */
		d->set_renew_pending = TRUE;
		v->renew_pending = TRUE;
	}
	if (pol == NULL && f->refused_what == NULL) {
		/* not (or no longer) selected by any policy */
		d->cancel_issue = TRUE;
		if (v->has_row && v->has_serial) {
			d->why = VC_ENGINE_WHY_UNSELECTED;
			vc_engine_decide_retire(v, d, VC_REASON_PRIVILEGE_WITHDRAWN, NULL);
			vc_engine_decide_move(v, d, VC_DOMAIN_STATE_REVOKING);
		}
		return;
	}
	if (v->has_row &&
	    (v->state == VC_DOMAIN_STATE_REVOKED || v->state == VC_DOMAIN_STATE_REVOKING)) {
		/* the same UUID again after the end of a life: a new generation */
		d->new_generation = TRUE;
		v->state = VC_DOMAIN_STATE_NEW;
		v->has_serial = FALSE;
		v->names_key = NULL;
	}
	if (f->refused_what != NULL) {
		d->why = VC_ENGINE_WHY_REFUSED;
		d->cancel_issue = TRUE;
		/* a VM outside its owner's placement holds no certificate here */
		if (f->refused_by_host && v->has_serial)
			vc_engine_decide_retire(v, d, VC_REASON_PRIVILEGE_WITHDRAWN,
						f->refused_why);
		d->fail = TRUE;
		vc_engine_decide_move(v, d, VC_DOMAIN_STATE_FAILED);
		d->set_next_action = TRUE;
		d->next_action_at =
		    now + MIN((gint64)1 << MIN(v->failures + 1, 16), VC_ENGINE_RETRY_MAX_S);
		return;
	}

	d->remember_plan = TRUE;
	cur = v->has_serial && f->cur_valid;
	cur_ok = cur && vc_engine_profile_matches(v->names_key, f->names_key);
	deliverable = f->active && f->has_agent && f->agent_connected;

	if (!f->active && pol->revoke_on_stop) {
		d->cancel_issue = TRUE;
		d->why = VC_ENGINE_WHY_STOPPED;
		if (v->has_serial) {
			d->why = VC_ENGINE_WHY_STOPPED_REVOKE;
			vc_engine_decide_retire(v, d, VC_REASON_CESSATION_OF_OPERATION, NULL);
		}
		vc_engine_decide_move(v, d, VC_DOMAIN_STATE_STOPPED);
		return;
	}
	need = f->active || pol->issue_on == VC_ISSUE_ON_DEFINE;
	/* due by the certificate's own clock, or forced (`virtcert renew`, or a
	 * guest that lost its files) */
	renew_due = v->renew_pending || (cur && now >= f->cur_renew_at);

	if (cur_ok && !renew_due) {
		d->cancel_issue = TRUE;
		if (!need) {
			d->why = VC_ENGINE_WHY_STOPPED;
			vc_engine_decide_move(v, d, VC_DOMAIN_STATE_STOPPED);
			return;
		}
		if (!deliverable) {
			/* nothing to deliver to now: no agent channel, or not running */
			d->why = VC_ENGINE_WHY_HOLD;
			if (!f->has_agent || v->state != VC_DOMAIN_STATE_DELIVERED)
				vc_engine_decide_move(v, d, VC_DOMAIN_STATE_ISSUED);
			return;
		}
		if (v->state == VC_DOMAIN_STATE_DELIVERED && !v->check_wanted) {
			d->why = VC_ENGINE_WHY_IN_GUEST;
			return;
		}
		if (v->state != VC_DOMAIN_STATE_DELIVERED && f->have_key) {
			d->why = VC_ENGINE_WHY_DELIVER;
			vc_engine_decide_job(v, d, VC_ENGINE_JOB_DELIVER, now);
			if (d->job == VC_ENGINE_JOB_DELIVER)
				vc_engine_decide_move(v, d, VC_DOMAIN_STATE_DELIVERING);
			return;
		}
		/* asked to, or host keygen and the key is gone (delivered before a
		 * stop, or a restart): the guest may have it; the check issues anew
		 * if not */
		d->why = VC_ENGINE_WHY_CHECK;
		vc_engine_decide_job(v, d, VC_ENGINE_JOB_CHECK, now);
		return;
	}
	if (!need) {
		d->cancel_issue = TRUE;
		d->why = VC_ENGINE_WHY_STOPPED;
		if (cur && !cur_ok) {
			/* names changed while stopped (rename, policy): the old names go */
			d->why = VC_ENGINE_WHY_NAMES_CHANGED_STOPPED;
			vc_engine_decide_retire(v, d, VC_REASON_SUPERSEDED, NULL);
		}
		vc_engine_decide_move(v, d, VC_DOMAIN_STATE_STOPPED);
		return;
	}

	/* issue: new, renewal, new names, or a key that is gone; not what the CA
	 * refused already for a reason a retry cannot change */
	if (v->issue_refused) {
		d->cancel_issue = TRUE;
		d->why = VC_ENGINE_WHY_ISSUE_REFUSED;
		return;
	}
	if (pol->key_mode == VC_KEY_MODE_GUEST && !deliverable) {
		d->cancel_issue = TRUE;
		d->why = VC_ENGINE_WHY_AWAIT_GUEST;
		d->waiting = vc_engine_why_to_string(VC_ENGINE_WHY_AWAIT_GUEST);
		vc_engine_decide_move(v, d,
				      cur ? VC_DOMAIN_STATE_RENEWING : VC_DOMAIN_STATE_WANTED);
		return;
	}
	d->queue_issue = TRUE;
	d->why = !cur		       ? VC_ENGINE_WHY_ISSUE
		 : renew_due || cur_ok ? VC_ENGINE_WHY_RENEW
				       : VC_ENGINE_WHY_NAMES_CHANGED;
	vc_engine_decide_move(v, d, cur ? VC_DOMAIN_STATE_RENEWING : VC_DOMAIN_STATE_WANTED);
	/* guest keygen: the guest makes the key, the certificate follows its CSR */
	if (pol->key_mode == VC_KEY_MODE_GUEST && !v->csr_ready)
		vc_engine_decide_job(v, d, VC_ENGINE_JOB_CSR, now);
}

void
vc_engine_decide(const VcEngineInput *input, const VcEngineFacts *facts, const VcEngineVmView *vm,
		 gint64 now, VcEngineDecision *ret_decision)
{
	VcEngineDecision *d = ret_decision;
	VcEngineVmView v = *vm;

	memset(d, 0, sizeof(*d));
	d->state = vm->state;
	d->why = VC_ENGINE_WHY_NOTHING;

	switch (input->kind) {
	case VC_ENGINE_INPUT_UNDEFINED:
		if (input->rename) {
			d->why = VC_ENGINE_WHY_RENAMED;
			return;
		}
		if (v.stopped_migrated) {
			/* part of a migration (--undefinesource), not a deletion */
			d->why = VC_ENGINE_WHY_UNDEFINED_MIGRATED;
			return;
		}
		if (facts->fetch_error != NULL) {
			d->why = VC_ENGINE_WHY_FETCH_FAILED;
			return;
		}
		/* undefining a running VM leaves it running as a transient
		 * domain: its life ends when it stops, not now */
		if (facts->exists && facts->active && !facts->persistent)
			break;
		d->why = VC_ENGINE_WHY_UNDEFINED;
		d->cancel_issue = TRUE;
		if (!v.has_row || v.state == VC_DOMAIN_STATE_REVOKED)
			return;
		d->end_life = TRUE;
		v.state = VC_DOMAIN_STATE_REVOKING;
		v.has_serial = FALSE;
		v.names_key = NULL;
		v.next_action_at = 0;
		if (!facts->exists) {
			d->state = VC_DOMAIN_STATE_REVOKING;
			return;
		}
		/* defined again since (same UUID): a new life, decided below */
		break;
	case VC_ENGINE_INPUT_STOPPED:
		if (!input->migration)
			break;
		/* migrated away: the certificate stays valid for the grace period;
		 * a trusted claim from the destination ends it as superseded */
		d->set_stopped_migrated = TRUE;
		d->cancel_issue = TRUE;
		if (!v.has_row || !v.has_serial || v.state == VC_DOMAIN_STATE_REVOKED ||
		    v.state == VC_DOMAIN_STATE_HANDED_OVER)
			return;
		d->why = VC_ENGINE_WHY_MIGRATED_AWAY;
		vc_engine_decide_move(&v, d, VC_DOMAIN_STATE_MIGRATING_OUT);
		d->set_next_action = TRUE;
		d->next_action_at = now + vm->handover_grace_s;
		return;
	case VC_ENGINE_INPUT_STARTED:
		d->clear_stopped_migrated = TRUE;
		if (input->migration) {
			/* migrating here: libvirt starts the domain paused before
			 * memory moves, and RESUMED follows when the migration
			 * completes. Only then is a certificate issued (an aborted
			 * migration costs nothing), and claimed from the issuer
			 * once ours is in the guest. */
			d->want_claim = TRUE;
			d->why = VC_ENGINE_WHY_INCOMING;
			return;
		}
		/* a restore can bring back old files: check what the guest has */
		d->want_check = input->restore;
		v.check_wanted = v.check_wanted || input->restore;
		break;
	case VC_ENGINE_INPUT_RESUMED:
		/* it runs here (also after a failed migration away) */
		d->clear_stopped_migrated = TRUE;
		break;
	case VC_ENGINE_INPUT_AGENT_CONNECTED:
		/* the guest (re)booted or its agent restarted: check, retry now;
		 * but once per backoff interval at most, so that an agent
		 * flapping on and off does not undo the backoff of a failing
		 * VM (#18) */
		d->want_check = TRUE;
		v.check_wanted = TRUE;
		if (now >= v.agent_reset_at) {
			d->reset_retry = TRUE;
			v.retry_at = 0;
		}
		break;
	case VC_ENGINE_INPUT_OTHER_EVENT:
		return;
	case VC_ENGINE_INPUT_TIMER:
		if (v.has_row && v.state == VC_DOMAIN_STATE_MIGRATING_OUT) {
			d->why = VC_ENGINE_WHY_GRACE_ENDED;
			vc_engine_decide_retire(&v, d, VC_REASON_PRIVILEGE_WITHDRAWN, NULL);
			vc_engine_decide_move(&v, d, VC_DOMAIN_STATE_REVOKING);
			return;
		}
		break;
	case VC_ENGINE_INPUT_RENEW:
	case VC_ENGINE_INPUT_FILES_LOST:
	case VC_ENGINE_INPUT_DEFINED:
	case VC_ENGINE_INPUT_METADATA_CHANGED:
	case VC_ENGINE_INPUT_RECONCILE:
	case VC_ENGINE_INPUT_POLICY_RELOAD:
	case VC_ENGINE_INPUT_NEWER_CERT:
	case VC_ENGINE_INPUT_LAST:
	default:
		break;
	}
	if (!facts->fetched)
		return;
	vc_engine_decide_level(input, facts, &v, now, d);
}
