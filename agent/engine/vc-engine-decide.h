/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "vc-engine-state.h"
#include "vc-policy.h"

G_BEGIN_DECLS

/* What the engine decides for one VM is a pure function of three things:
 * what happened (VcEngineInput), what libvirt and policy say now
 * (VcEngineFacts, gathered from one domain fetch) and what the engine
 * remembers of the VM (VcEngineVmView). No libvirt, store, clock or I/O
 * happens in vc_engine_decide(); the engine applies the decision afterwards
 * (agent/engine/vc-engine.c), and tests/unit/test-vc-engine-decide.c checks
 * it by table. */

typedef enum {
	VC_ENGINE_INPUT_DEFINED,
	VC_ENGINE_INPUT_UNDEFINED,
	VC_ENGINE_INPUT_STARTED,
	VC_ENGINE_INPUT_STOPPED,
	VC_ENGINE_INPUT_RESUMED,
	VC_ENGINE_INPUT_AGENT_CONNECTED,
	VC_ENGINE_INPUT_METADATA_CHANGED,
	VC_ENGINE_INPUT_OTHER_EVENT, /* suspended, shutdown, crashed, agent gone: nothing */
	VC_ENGINE_INPUT_RECONCILE, /* a listing found the VM, or the store has it and libvirt not */
	VC_ENGINE_INPUT_TIMER,	   /* next_action_at is due: renewal, retry, end of grace */
	VC_ENGINE_INPUT_POLICY_RELOAD,
	VC_ENGINE_INPUT_RENEW,	    /* `virtcert renew` */
	VC_ENGINE_INPUT_FILES_LOST, /* the guest no longer holds the current certificate */
	VC_ENGINE_INPUT_NEWER_CERT, /* a guest job finished for a certificate since replaced */
	VC_ENGINE_INPUT_LAST
} VcEngineInputKind;

typedef struct {
	VcEngineInputKind kind;
	gboolean migration; /* STARTED/STOPPED MIGRATED */
	gboolean restore;   /* the guest's state was rolled back */
	gboolean rename;    /* UNDEFINED RENAMED: DEFINED RENAMED carries the new name */
} VcEngineInput;

/* What libvirt and policy say about the VM now. Pointers are borrowed. */
typedef struct {
	gboolean fetched;	 /* FALSE: the input needed no fetch (the rest is unset) */
	const char *fetch_error; /* libvirt failed (other than "no such domain") */
	gboolean exists;
	gboolean active;
	gboolean persistent;
	gboolean has_agent;	  /* a guest agent channel */
	gboolean agent_connected; /* the agent in the guest answers */
	/* the first refusal, in the order XML, policy, names, placement */
	const char *refused_what; /* "domain XML refused", ... */
	const char *refused_why;
	gboolean refused_by_host; /* the host may not hold a certificate for the VM */
	const VcPolicy *policy;	  /* NULL: no policy selects the VM */
	const char *names_key;	  /* vc_engine_profile_key() of what policy gives now */
	/* the current certificate (the row's serial), from the store */
	gboolean cur_valid; /* VALID and not expired */
	gint64 cur_renew_at;
	gboolean have_key; /* host keygen: its key is still in memory */
} VcEngineFacts;

/* What the engine remembers of the VM (its row and memo), by value. */
typedef struct {
	gboolean has_row;
	VcDomainState state;
	gboolean has_serial;
	const char *names_key;
	gint64 next_action_at;
	gboolean renew_pending;	   /* a renewal was asked for, nothing issued since */
	gboolean stopped_migrated; /* a STOPPED MIGRATED was seen and nothing since */
	gboolean check_wanted;	   /* the guest's files should be checked */
	gboolean job_running;
	gint64 retry_at;	 /* no guest job before this */
	gint64 agent_reset_at;	 /* no agent-connected retry-now before this */
	gboolean issue_queued;	 /* an issuance is queued */
	gboolean csr_ready;	 /* guest keygen: the queued issuance has its key */
	gboolean issue_refused;	 /* the CA refused this very profile; a retry cannot pass */
	gint failures;		 /* consecutive failures, for backoff */
	gint64 handover_grace_s; /* configuration */
} VcEngineVmView;

typedef enum {
	VC_ENGINE_JOB_NONE,
	VC_ENGINE_JOB_DELIVER, /* certificate (and host-made key) into the guest */
	VC_ENGINE_JOB_CHECK,   /* does the guest hold the current certificate? */
	VC_ENGINE_JOB_CSR,     /* guest keygen: the guest makes a key and a CSR */
} VcEngineJobKind;

/* Why a decision was taken, for the log; each has one message. */
typedef enum {
	VC_ENGINE_WHY_NOTHING,		  /* nothing to do */
	VC_ENGINE_WHY_RENAMED,		  /* undefined as part of a rename */
	VC_ENGINE_WHY_UNDEFINED_MIGRATED, /* --undefinesource after migrating away */
	VC_ENGINE_WHY_FETCH_FAILED,	  /* libvirt could not tell: the next reconcile retries */
	VC_ENGINE_WHY_GONE,		  /* the domain no longer exists */
	VC_ENGINE_WHY_VANISHED,		  /* gone while nobody watched (reconcile) */
	VC_ENGINE_WHY_UNDEFINED,	  /* undefined */
	VC_ENGINE_WHY_RUNS_ELSEWHERE,	  /* migrated away: the handover decides */
	VC_ENGINE_WHY_MIGRATED_AWAY,	  /* STOPPED MIGRATED: the handover begins */
	VC_ENGINE_WHY_INCOMING,		  /* STARTED MIGRATED: wait for the migration to complete */
	VC_ENGINE_WHY_GRACE_ENDED,	  /* no trusted claim within the grace */
	VC_ENGINE_WHY_REFUSED,		  /* XML, policy, names or placement refused */
	VC_ENGINE_WHY_UNSELECTED,	  /* no policy selects the VM any more */
	VC_ENGINE_WHY_STOPPED_REVOKE,	  /* stopped, and policy says on-stop=revoke */
	VC_ENGINE_WHY_STOPPED,		  /* stopped (or defined, not running) */
	VC_ENGINE_WHY_NAMES_CHANGED_STOPPED, /* names changed while stopped */
	VC_ENGINE_WHY_HOLD,		     /* valid, nothing to deliver to now */
	VC_ENGINE_WHY_IN_GUEST,		     /* delivered already */
	VC_ENGINE_WHY_DELIVER,		     /* into the guest */
	VC_ENGINE_WHY_CHECK,		     /* check the guest's files */
	VC_ENGINE_WHY_JOB_BUSY,		     /* a guest job runs, or its retry is not due */
	VC_ENGINE_WHY_AWAIT_GUEST,	     /* guest keygen waits for a running VM with an agent */
	VC_ENGINE_WHY_ISSUE,		     /* a first certificate */
	VC_ENGINE_WHY_RENEW,		     /* renewal */
	VC_ENGINE_WHY_NAMES_CHANGED,	     /* the names changed */
	VC_ENGINE_WHY_ISSUE_REFUSED,	     /* the CA refused this profile: wait for a change */
	VC_ENGINE_WHY_LAST
} VcEngineWhy;

typedef struct {
	VcEngineWhy why;
	/* ---- in the order the engine applies them ---- */
	/* bookkeeping of the input */
	gboolean set_stopped_migrated;
	gboolean clear_stopped_migrated;
	gboolean want_claim;	    /* migrated here: claim from the issuer once ours is in */
	gboolean want_check;	    /* check the guest's files at the next chance */
	gboolean reset_retry;	    /* a guest job may run at once */
	gboolean set_renew_pending; /* kept in the row until a certificate is issued */
	/* the old life ends first (undefined, then defined again) */
	gboolean end_life;
	/* a new life: generation + 1, state NEW */
	gboolean new_generation;
	/* revoke every live certificate, clear the serial, zero next_action */
	gboolean retire;
	int retire_reason;
	const char *retire_why; /* borrowed from the facts; NULL: the message of WHY */
	gboolean cancel_issue;
	gboolean queue_issue;	/* with the policy's names, key and lifetime */
	gboolean remember_plan; /* keep policy's delivery plan and placement */
	/* the row: created if missing, then moved to STATE */
	gboolean move;
	VcDomainState state;
	gboolean fail;	     /* FAILED with the refusal, failures + 1, retried with backoff */
	const char *waiting; /* last_error while waiting (guest keygen), else NULL */
	gboolean set_next_action;
	gint64 next_action_at;
	VcEngineJobKind job;
} VcEngineDecision;

/* What a certificate is issued as, in one string the row keeps (its
 * names_key column): the DNS names joined with ',', then ";key=TYPE/MODE;
 * life=SECONDS". A change of any of them re-issues. */
char *vc_engine_profile_key(const char *const *names, const VcPolicy *policy);
/* Does the certificate recorded as ROW_KEY match what policy gives now
 * (FACTS_KEY)? A row written before the profile was recorded holds only the
 * names, and matches on them. */
gboolean vc_engine_profile_matches(const char *row_key, const char *facts_key);

void vc_engine_decide(const VcEngineInput *input, const VcEngineFacts *facts,
		      const VcEngineVmView *vm, gint64 now, VcEngineDecision *ret_decision);
/* Does INPUT need the domain fetched (VcEngineFacts) before deciding? */
gboolean vc_engine_input_needs_facts(const VcEngineInput *input, const VcEngineVmView *vm);
const char *vc_engine_why_to_string(VcEngineWhy why);
const char *vc_engine_input_kind_to_string(VcEngineInputKind kind);

G_END_DECLS
