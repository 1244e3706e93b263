/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-engine-decide.h"
#include "vc-reason.h"

/* The engine's decisions by table: for each input (every libvirt event the
 * engine acts on, and every other trigger), in each state that matters,
 * with the facts one domain fetch gives, what must be decided. Then every
 * input in every state with several sets of facts: no decision may ask for
 * a move the state table forbids. */

/* a case starts from a preset (RUNNING, ROW(...)) and overrides a field */
#pragma GCC diagnostic ignored "-Woverride-init"

#define NOW 1000000
#define GRACE 120

static const VcPolicy pol_host = {.key_mode = VC_KEY_MODE_HOST, .issue_on = VC_ISSUE_ON_START};
static const VcPolicy pol_define = {.key_mode = VC_KEY_MODE_HOST, .issue_on = VC_ISSUE_ON_DEFINE};
static const VcPolicy pol_guest = {.key_mode = VC_KEY_MODE_GUEST, .issue_on = VC_ISSUE_ON_START};
static const VcPolicy pol_guest_define = {.key_mode = VC_KEY_MODE_GUEST,
					  .issue_on = VC_ISSUE_ON_DEFINE};
static const VcPolicy pol_revoke = {
    .key_mode = VC_KEY_MODE_HOST, .issue_on = VC_ISSUE_ON_START, .revoke_on_stop = TRUE};

/* facts */
#define FETCHED .fetched = TRUE, .exists = TRUE, .persistent = TRUE
#define RUNNING FETCHED, .active = TRUE, .has_agent = TRUE, .agent_connected = TRUE
#define STOPPED_VM FETCHED, .has_agent = TRUE
#define SELECTED(p) .policy = &(p), .names_key = "a.vms.example.com"
#define VALID .cur_valid = TRUE, .cur_renew_at = NOW + 1000, .have_key = TRUE
#define VALID_NO_KEY .cur_valid = TRUE, .cur_renew_at = NOW + 1000
#define RENEW_DUE .cur_valid = TRUE, .cur_renew_at = NOW - 1, .have_key = TRUE
#define GONE .fetched = TRUE, .exists = FALSE
/* the VM as the engine has it */
#define ROW(s)                                                                                     \
	.has_row = TRUE, .state = VC_DOMAIN_STATE_##s, .has_serial = TRUE,                         \
	.names_key = "a.vms.example.com", .handover_grace_s = GRACE
#define ROW_NO_SERIAL(s) .has_row = TRUE, .state = VC_DOMAIN_STATE_##s, .handover_grace_s = GRACE
#define NO_ROW .has_row = FALSE, .handover_grace_s = GRACE
#define IN(k)                                                                                      \
	{                                                                                          \
		.kind = VC_ENGINE_INPUT_##k                                                        \
	}
#define TO(s) .move = TRUE, .state = VC_DOMAIN_STATE_##s
#define WHY(w) .why = VC_ENGINE_WHY_##w
#define JOB(j) .job = VC_ENGINE_JOB_##j
#define RETIRE(r) .retire = TRUE, .reason = VC_REASON_##r

typedef struct {
	const char *name;
	VcEngineInput input;
	VcEngineFacts facts;
	VcEngineVmView vm;
	/* expected */
	gboolean move;
	VcDomainState state;
	gboolean retire;
	int reason;
	gboolean queue_issue;
	VcEngineJobKind job;
	gboolean end_life;
	gboolean new_generation;
	gboolean fail;
	VcEngineWhy why;
	gboolean check_next; /* next_action_at must be NEXT */
	gint64 next;
	gboolean want_claim;
	gboolean want_check;
	gboolean set_stopped_migrated;
	gboolean clear_stopped_migrated;
	gboolean renew_pending; /* the decision records a pending renewal */
} DecideCase;

static const DecideCase cases[] = {
    /* ---- DEFINED ---- */
    {"defined, issue on start: stopped",
     IN(DEFINED),
     {STOPPED_VM, SELECTED(pol_host)},
     {NO_ROW},
     TO(STOPPED),
     WHY(STOPPED)},
    {"defined, issue on define: wanted",
     IN(DEFINED),
     {STOPPED_VM, SELECTED(pol_define)},
     {NO_ROW},
     TO(WANTED),
     .queue_issue = TRUE,
     WHY(ISSUE)},
    {"defined, guest keygen on define: waits for the guest",
     IN(DEFINED),
     {STOPPED_VM, SELECTED(pol_guest_define)},
     {NO_ROW},
     TO(WANTED),
     WHY(AWAIT_GUEST)},
    {"defined, no policy, no row: nothing", IN(DEFINED), {STOPPED_VM}, {NO_ROW}, WHY(NOTHING)},
    {"defined, no policy any more: revoke",
     IN(DEFINED),
     {STOPPED_VM},
     {ROW(STOPPED)},
     TO(REVOKING),
     RETIRE(PRIVILEGE_WITHDRAWN),
     WHY(UNSELECTED)},
    {"defined, XML refused: failed",
     IN(DEFINED),
     {STOPPED_VM, .refused_what = "domain XML refused", .refused_why = "x"},
     {NO_ROW},
     TO(FAILED),
     .fail = TRUE,
     WHY(REFUSED),
     .check_next = TRUE,
     .next = NOW + 2},
    {"defined, policy refused: failed, certificate kept",
     IN(DEFINED),
     {RUNNING, .refused_what = "policy refused", .refused_why = "x"},
     {ROW(ISSUED)},
     TO(FAILED),
     .fail = TRUE,
     WHY(REFUSED)},
    {"defined, names refused: failed",
     IN(DEFINED),
     {RUNNING, SELECTED(pol_host), .refused_what = "names refused", .refused_why = "x"},
     {ROW(DELIVERED)},
     TO(FAILED),
     .fail = TRUE,
     WHY(REFUSED)},
    {"defined, host outside the placement: revoke and fail",
     IN(DEFINED),
     {RUNNING, SELECTED(pol_host), .refused_what = "refused on this host", .refused_why = "x",
      .refused_by_host = TRUE},
     {ROW(DELIVERED)},
     TO(FAILED),
     RETIRE(PRIVILEGE_WITHDRAWN),
     .fail = TRUE,
     WHY(REFUSED)},
    {"defined again after the end of a life: new generation",
     IN(DEFINED),
     {STOPPED_VM, SELECTED(pol_host)},
     {ROW_NO_SERIAL(REVOKED)},
     TO(STOPPED),
     .new_generation = TRUE,
     WHY(STOPPED)},
    {"defined again, issue on define: new generation, wanted",
     IN(DEFINED),
     {STOPPED_VM, SELECTED(pol_define)},
     {ROW_NO_SERIAL(REVOKED)},
     TO(WANTED),
     .new_generation = TRUE,
     .queue_issue = TRUE,
     WHY(ISSUE)},
    {"renamed while stopped: the old names go",
     IN(DEFINED),
     {STOPPED_VM, .policy = &pol_host, .names_key = "b.vms.example.com", VALID},
     {ROW(STOPPED)},
     TO(STOPPED),
     RETIRE(SUPERSEDED),
     WHY(NAMES_CHANGED_STOPPED)},
    {"defined while stopped, certificate valid: kept",
     IN(DEFINED),
     {STOPPED_VM, SELECTED(pol_host), VALID},
     {ROW(STOPPED)},
     TO(STOPPED),
     WHY(STOPPED)},

    /* ---- STARTED ---- */
    {"started, new VM: issue",
     IN(STARTED),
     {RUNNING, SELECTED(pol_host)},
     {NO_ROW},
     TO(WANTED),
     .queue_issue = TRUE,
     WHY(ISSUE),
     .clear_stopped_migrated = TRUE},
    {"started, no agent channel: issue all the same",
     IN(STARTED),
     {FETCHED, .active = TRUE, SELECTED(pol_host)},
     {NO_ROW},
     TO(WANTED),
     .queue_issue = TRUE,
     WHY(ISSUE),
     .clear_stopped_migrated = TRUE},
    {"started, guest keygen: CSR from the guest",
     IN(STARTED),
     {RUNNING, SELECTED(pol_guest)},
     {NO_ROW},
     TO(WANTED),
     .queue_issue = TRUE,
     JOB(CSR),
     WHY(ISSUE),
     .clear_stopped_migrated = TRUE},
    {"started, guest keygen, agent not up yet: waits",
     IN(STARTED),
     {FETCHED, .active = TRUE, .has_agent = TRUE, SELECTED(pol_guest)},
     {NO_ROW},
     TO(WANTED),
     WHY(AWAIT_GUEST),
     .clear_stopped_migrated = TRUE},
    {"started, guest keygen, CSR in: issue without a job",
     IN(STARTED),
     {RUNNING, SELECTED(pol_guest)},
     {ROW_NO_SERIAL(WANTED), .csr_ready = TRUE},
     TO(WANTED),
     .queue_issue = TRUE,
     WHY(ISSUE),
     .clear_stopped_migrated = TRUE},
    {"started, guest keygen, a job runs: queued, no second job",
     IN(STARTED),
     {RUNNING, SELECTED(pol_guest)},
     {ROW_NO_SERIAL(WANTED), .job_running = TRUE},
     TO(WANTED),
     .queue_issue = TRUE,
     WHY(ISSUE),
     .clear_stopped_migrated = TRUE},
    {"started, valid certificate with its key: deliver",
     IN(STARTED),
     {RUNNING, SELECTED(pol_host), VALID},
     {ROW(STOPPED)},
     TO(DELIVERING),
     JOB(DELIVER),
     WHY(DELIVER),
     .clear_stopped_migrated = TRUE},
    {"started, valid certificate, key gone: check the guest",
     IN(STARTED),
     {RUNNING, SELECTED(pol_host), VALID_NO_KEY},
     {ROW(STOPPED)},
     JOB(CHECK),
     WHY(CHECK),
     .clear_stopped_migrated = TRUE},
    {"started, agent not connected yet: issued, waiting",
     IN(STARTED),
     {FETCHED, .active = TRUE, .has_agent = TRUE, SELECTED(pol_host), VALID},
     {ROW(STOPPED)},
     TO(ISSUED),
     WHY(HOLD),
     .clear_stopped_migrated = TRUE},
    {"started migrated: nothing before the migration completes, then claim",
     {.kind = VC_ENGINE_INPUT_STARTED, .migration = TRUE},
     {0},
     {NO_ROW},
     WHY(INCOMING),
     .want_claim = TRUE,
     .clear_stopped_migrated = TRUE},
    {"resumed: the incoming migration completed, issue",
     IN(RESUMED),
     {RUNNING, SELECTED(pol_host)},
     {NO_ROW},
     TO(WANTED),
     .queue_issue = TRUE,
     WHY(ISSUE),
     .clear_stopped_migrated = TRUE},
    {"migrated back: nothing until resumed",
     {.kind = VC_ENGINE_INPUT_STARTED, .migration = TRUE},
     {0},
     {ROW_NO_SERIAL(HANDED_OVER)},
     WHY(INCOMING),
     .want_claim = TRUE,
     .clear_stopped_migrated = TRUE},
    {"started restored: check the guest's files",
     {.kind = VC_ENGINE_INPUT_STARTED, .restore = TRUE},
     {RUNNING, SELECTED(pol_host), VALID},
     {ROW(DELIVERED)},
     JOB(CHECK),
     WHY(CHECK),
     .want_check = TRUE,
     .clear_stopped_migrated = TRUE},
    {"started, renewal due: renewing",
     IN(STARTED),
     {RUNNING, SELECTED(pol_host), RENEW_DUE},
     {ROW(DELIVERED)},
     TO(RENEWING),
     .queue_issue = TRUE,
     WHY(RENEW),
     .clear_stopped_migrated = TRUE},
    {"started, certificate revoked or expired: a new one",
     IN(STARTED),
     {RUNNING, SELECTED(pol_host)},
     {ROW(STOPPED)},
     TO(WANTED),
     .queue_issue = TRUE,
     WHY(ISSUE),
     .clear_stopped_migrated = TRUE},
    {"started while the last life's revocation is pending: new generation",
     IN(STARTED),
     {RUNNING, SELECTED(pol_host)},
     {ROW_NO_SERIAL(REVOKING)},
     TO(WANTED),
     .new_generation = TRUE,
     .queue_issue = TRUE,
     WHY(ISSUE),
     .clear_stopped_migrated = TRUE},
    {"migrated back after a handover: issue anew",
     IN(STARTED),
     {RUNNING, SELECTED(pol_host)},
     {ROW_NO_SERIAL(HANDED_OVER)},
     TO(WANTED),
     .queue_issue = TRUE,
     WHY(ISSUE),
     .clear_stopped_migrated = TRUE},
    {"started while migrating out: check what the guest holds",
     IN(STARTED),
     {RUNNING, SELECTED(pol_host), VALID_NO_KEY},
     {ROW(MIGRATING_OUT)},
     JOB(CHECK),
     WHY(CHECK),
     .clear_stopped_migrated = TRUE},

    /* ---- STOPPED ---- */
    {"stopped: certificate kept",
     IN(STOPPED),
     {STOPPED_VM, SELECTED(pol_host), VALID},
     {ROW(DELIVERED)},
     TO(STOPPED),
     WHY(STOPPED)},
    {"stopped, on-stop=revoke: revoke",
     IN(STOPPED),
     {STOPPED_VM, SELECTED(pol_revoke), VALID},
     {ROW(DELIVERED)},
     TO(STOPPED),
     RETIRE(CESSATION_OF_OPERATION),
     WHY(STOPPED_REVOKE)},
    {"stopped, issue on define: held, nothing to deliver",
     IN(STOPPED),
     {STOPPED_VM, SELECTED(pol_define), VALID},
     {ROW(DELIVERED)},
     WHY(HOLD)},
    {"stopped migrated: the handover begins",
     {.kind = VC_ENGINE_INPUT_STOPPED, .migration = TRUE},
     {0},
     {ROW(DELIVERED)},
     TO(MIGRATING_OUT),
     WHY(MIGRATED_AWAY),
     .check_next = TRUE,
     .next = NOW + GRACE,
     .set_stopped_migrated = TRUE},
    {"stopped migrated, unknown VM: only noted",
     {.kind = VC_ENGINE_INPUT_STOPPED, .migration = TRUE},
     {0},
     {NO_ROW},
     WHY(NOTHING),
     .set_stopped_migrated = TRUE},
    {"stopped migrated after a handover: nothing",
     {.kind = VC_ENGINE_INPUT_STOPPED, .migration = TRUE},
     {0},
     {ROW_NO_SERIAL(HANDED_OVER)},
     WHY(NOTHING),
     .set_stopped_migrated = TRUE},
    {"transient VM stopped (gone): end of life",
     IN(STOPPED),
     {GONE},
     {ROW(ISSUED)},
     TO(REVOKING),
     RETIRE(CESSATION_OF_OPERATION),
     WHY(GONE)},
    {"stopped while migrating out: the handover decides",
     IN(STOPPED),
     {STOPPED_VM, SELECTED(pol_host), VALID},
     {ROW(MIGRATING_OUT)},
     WHY(RUNS_ELSEWHERE)},

    /* ---- UNDEFINED ---- */
    {"undefined: end of life",
     IN(UNDEFINED),
     {GONE},
     {ROW(STOPPED)},
     .end_life = TRUE,
     .state = VC_DOMAIN_STATE_REVOKING,
     WHY(UNDEFINED)},
    {"undefined as part of a rename: nothing",
     {.kind = VC_ENGINE_INPUT_UNDEFINED, .rename = TRUE},
     {0},
     {ROW(DELIVERED)},
     WHY(RENAMED)},
    {"undefined after migrating away (--undefinesource): nothing",
     IN(UNDEFINED),
     {0},
     {ROW(MIGRATING_OUT), .stopped_migrated = TRUE},
     WHY(UNDEFINED_MIGRATED)},
    {"undefined while running: lives on as a transient domain",
     IN(UNDEFINED),
     {RUNNING, .persistent = FALSE, SELECTED(pol_host), VALID},
     {ROW(DELIVERED)},
     WHY(IN_GUEST)},
    {"undefined and defined again: a new life",
     IN(UNDEFINED),
     {STOPPED_VM, SELECTED(pol_host)},
     {ROW(STOPPED)},
     .end_life = TRUE,
     .new_generation = TRUE,
     TO(STOPPED),
     WHY(STOPPED)},
    {"undefined, never selected: nothing", IN(UNDEFINED), {GONE}, {NO_ROW}, WHY(UNDEFINED)},
    {"undefined after the end of a life: nothing",
     IN(UNDEFINED),
     {GONE},
     {ROW_NO_SERIAL(REVOKED)},
     .state = VC_DOMAIN_STATE_REVOKED,
     WHY(UNDEFINED)},
    {"undefined, libvirt cannot tell: nothing yet",
     IN(UNDEFINED),
     {.fetched = TRUE, .fetch_error = "connection lost"},
     {ROW(STOPPED)},
     WHY(FETCH_FAILED)},

    /* ---- RESUMED ---- */
    {"resumed after a failed migration: check the guest",
     IN(RESUMED),
     {RUNNING, SELECTED(pol_host), VALID_NO_KEY},
     {ROW(MIGRATING_OUT), .stopped_migrated = TRUE},
     JOB(CHECK),
     WHY(CHECK),
     .clear_stopped_migrated = TRUE},
    {"resumed, delivered: nothing",
     IN(RESUMED),
     {RUNNING, SELECTED(pol_host), VALID},
     {ROW(DELIVERED)},
     WHY(IN_GUEST),
     .clear_stopped_migrated = TRUE},

    /* ---- AGENT_CONNECTED ---- */
    {"agent connected, issued with key: deliver",
     IN(AGENT_CONNECTED),
     {RUNNING, SELECTED(pol_host), VALID},
     {ROW(ISSUED)},
     TO(DELIVERING),
     JOB(DELIVER),
     WHY(DELIVER),
     .want_check = TRUE},
    {"agent connected, delivered: check the files",
     IN(AGENT_CONNECTED),
     {RUNNING, SELECTED(pol_host), VALID},
     {ROW(DELIVERED)},
     JOB(CHECK),
     WHY(CHECK),
     .want_check = TRUE},
    {"agent connected, retry pending: retried now",
     IN(AGENT_CONNECTED),
     {RUNNING, SELECTED(pol_host), VALID},
     {ROW(DELIVERY_FAILED), .retry_at = NOW + 60},
     TO(DELIVERING),
     JOB(DELIVER),
     WHY(DELIVER),
     .want_check = TRUE},
    /* #18: an agent flapping on and off gets one retry-now per backoff
     * interval, not one per connect */
    {"agent connected again within the backoff: the retry waits",
     IN(AGENT_CONNECTED),
     {RUNNING, SELECTED(pol_host), VALID},
     {ROW(DELIVERY_FAILED), .failures = 3, .retry_at = NOW + 8, .agent_reset_at = NOW + 4},
     WHY(DELIVER),
     .want_check = TRUE},
    {"agent connected after the backoff interval: retried now",
     IN(AGENT_CONNECTED),
     {RUNNING, SELECTED(pol_host), VALID},
     {ROW(DELIVERY_FAILED), .failures = 3, .retry_at = NOW + 8, .agent_reset_at = NOW},
     TO(DELIVERING),
     JOB(DELIVER),
     WHY(DELIVER),
     .want_check = TRUE},
    {"agent connected, a job runs: nothing started",
     IN(AGENT_CONNECTED),
     {RUNNING, SELECTED(pol_host), VALID},
     {ROW(ISSUED), .job_running = TRUE},
     WHY(DELIVER),
     .want_check = TRUE},

    /* ---- METADATA_CHANGED ---- */
    {"metadata: names changed while running",
     IN(METADATA_CHANGED),
     {RUNNING, .policy = &pol_host, .names_key = "b.vms.example.com", VALID},
     {ROW(DELIVERED)},
     TO(RENEWING),
     .queue_issue = TRUE,
     WHY(NAMES_CHANGED)},
    {"metadata: policy removed",
     IN(METADATA_CHANGED),
     {RUNNING, VALID},
     {ROW(DELIVERED)},
     TO(REVOKING),
     RETIRE(PRIVILEGE_WITHDRAWN),
     WHY(UNSELECTED)},
    {"metadata: placement now excludes this host",
     IN(METADATA_CHANGED),
     {RUNNING, SELECTED(pol_host), .refused_what = "refused on this host", .refused_why = "x",
      .refused_by_host = TRUE},
     {ROW(DELIVERED)},
     TO(FAILED),
     RETIRE(PRIVILEGE_WITHDRAWN),
     .fail = TRUE,
     WHY(REFUSED)},
    {"metadata: nothing that matters changed",
     IN(METADATA_CHANGED),
     {RUNNING, SELECTED(pol_host), VALID},
     {ROW(DELIVERED)},
     WHY(IN_GUEST)},

    {"reload: the key type changed, re-issue",
     IN(POLICY_RELOAD),
     {RUNNING, .policy = &pol_host, .names_key = "a.vms.example.com;key=rsa-3072/host;life=86400",
      VALID},
     {ROW(DELIVERED), .names_key = "a.vms.example.com;key=ec-p256/host;life=86400"},
     TO(RENEWING),
     .queue_issue = TRUE,
     WHY(NAMES_CHANGED)},
    {"reload: nothing changed for a row from before profiles",
     IN(POLICY_RELOAD),
     {RUNNING, .policy = &pol_host, .names_key = "a.vms.example.com;key=ec-p256/host;life=86400",
      VALID},
     {ROW(DELIVERED)},
     WHY(IN_GUEST)},
    {"the CA refused this profile: not retried until it changes",
     IN(TIMER),
     {RUNNING, SELECTED(pol_host)},
     {ROW_NO_SERIAL(FAILED), .failures = 2, .issue_refused = TRUE},
     WHY(ISSUE_REFUSED)},
    /* ---- events the engine does not act on ---- */
    {"suspended: nothing", IN(OTHER_EVENT), {0}, {ROW(DELIVERED)}, WHY(NOTHING)},
    {"crashed: nothing", IN(OTHER_EVENT), {0}, {ROW(ISSUED)}, WHY(NOTHING)},

    /* ---- RECONCILE ---- */
    {"reconcile: vanished while nobody watched",
     IN(RECONCILE),
     {GONE},
     {ROW(DELIVERED)},
     TO(REVOKING),
     RETIRE(CESSATION_OF_OPERATION),
     WHY(VANISHED)},
    {"reconcile: failed VM fixed meanwhile",
     IN(RECONCILE),
     {RUNNING, SELECTED(pol_host)},
     {ROW_NO_SERIAL(FAILED), .failures = 3},
     TO(WANTED),
     .queue_issue = TRUE,
     WHY(ISSUE)},
    {"reconcile: in order",
     IN(RECONCILE),
     {RUNNING, SELECTED(pol_host), VALID},
     {ROW(DELIVERED)},
     WHY(IN_GUEST)},
    {"reconcile: gone after the end of a life",
     IN(RECONCILE),
     {GONE},
     {ROW_NO_SERIAL(REVOKED)},
     WHY(NOTHING)},

    /* ---- TIMER ---- */
    {"timer: no claim within the grace",
     IN(TIMER),
     {0},
     {ROW(MIGRATING_OUT)},
     TO(REVOKING),
     RETIRE(PRIVILEGE_WITHDRAWN),
     WHY(GRACE_ENDED)},
    {"timer: renewal due",
     IN(TIMER),
     {RUNNING, SELECTED(pol_host), RENEW_DUE},
     {ROW(DELIVERED)},
     TO(RENEWING),
     .queue_issue = TRUE,
     WHY(RENEW)},
    {"timer: delivery retry due",
     IN(TIMER),
     {RUNNING, SELECTED(pol_host), VALID},
     {ROW(DELIVERY_FAILED), .retry_at = NOW - 1},
     TO(DELIVERING),
     JOB(DELIVER),
     WHY(DELIVER)},
    {"timer: still refused, backoff grows",
     IN(TIMER),
     {RUNNING, SELECTED(pol_host), .refused_what = "refused on this host", .refused_why = "x",
      .refused_by_host = TRUE},
     {ROW_NO_SERIAL(FAILED), .failures = 3},
     TO(FAILED),
     .fail = TRUE,
     WHY(REFUSED),
     .check_next = TRUE,
     .next = NOW + 16},

    /* ---- POLICY_RELOAD ---- */
    {"reload: a policy selects the VM now",
     IN(POLICY_RELOAD),
     {RUNNING, SELECTED(pol_host)},
     {NO_ROW},
     TO(WANTED),
     .queue_issue = TRUE,
     WHY(ISSUE)},
    {"reload: no policy selects it any more",
     IN(POLICY_RELOAD),
     {RUNNING, VALID},
     {ROW(DELIVERED)},
     TO(REVOKING),
     RETIRE(PRIVILEGE_WITHDRAWN),
     WHY(UNSELECTED)},
    {"reload: on-stop=revoke for a stopped VM",
     IN(POLICY_RELOAD),
     {STOPPED_VM, SELECTED(pol_revoke), VALID},
     {ROW(STOPPED)},
     TO(STOPPED),
     RETIRE(CESSATION_OF_OPERATION),
     WHY(STOPPED_REVOKE)},

    /* ---- RENEW (`virtcert renew`) ---- */
    {"renew: a new certificate now",
     IN(RENEW),
     {RUNNING, SELECTED(pol_host), VALID},
     {ROW(DELIVERED)},
     TO(RENEWING),
     .queue_issue = TRUE,
     WHY(RENEW),
     .renew_pending = TRUE},
    {"a renewal asked for earlier is still due",
     IN(TIMER),
     {RUNNING, SELECTED(pol_host), VALID},
     {ROW(DELIVERY_FAILED), .renew_pending = TRUE},
     TO(RENEWING),
     .queue_issue = TRUE,
     WHY(RENEW)},
    {"a renewal asked for earlier survives a stop and start",
     IN(STARTED),
     {RUNNING, SELECTED(pol_guest), VALID},
     {ROW(STOPPED), .renew_pending = TRUE},
     TO(RENEWING),
     .queue_issue = TRUE,
     JOB(CSR),
     WHY(RENEW),
     .clear_stopped_migrated = TRUE},
    {"renew while migrating out: the handover decides",
     IN(RENEW),
     {STOPPED_VM, SELECTED(pol_host), VALID},
     {ROW(MIGRATING_OUT), .next_action_at = NOW + 50},
     WHY(RUNS_ELSEWHERE)},
    {"renew, guest keygen, agent away: kept for later",
     IN(RENEW),
     {FETCHED, .active = TRUE, .has_agent = TRUE, SELECTED(pol_guest), VALID},
     {ROW(DELIVERED)},
     TO(RENEWING),
     WHY(AWAIT_GUEST),
     .renew_pending = TRUE},

    /* ---- results of guest work ---- */
    {"files lost: issue anew",
     IN(FILES_LOST),
     {RUNNING, SELECTED(pol_host), VALID_NO_KEY},
     {ROW(DELIVERED)},
     TO(RENEWING),
     .queue_issue = TRUE,
     WHY(RENEW),
     .renew_pending = TRUE},
    {"newer certificate: deliver it",
     IN(NEWER_CERT),
     {RUNNING, SELECTED(pol_host), VALID},
     {ROW(ISSUED)},
     TO(DELIVERING),
     JOB(DELIVER),
     WHY(DELIVER)},
};

static void
test_decide_profile_key(void)
{
	const char *const names[] = {"a.vms.example.com", "b.vms.example.com", NULL};
	VcPolicy pol = {
	    .key_type = VC_KEY_TYPE_EC_P256, .key_mode = VC_KEY_MODE_HOST, .lifetime_s = 86400};
	g_autofree char *k1 = vc_engine_profile_key(names, &pol);
	g_autofree char *k2 = NULL;
	g_autofree char *k3 = NULL;

	g_assert_cmpstr(k1, ==, "a.vms.example.com,b.vms.example.com;key=ec-p256/host;life=86400");
	g_assert_true(vc_engine_profile_matches(k1, k1));
	/* a row from before the profile was recorded matches on its names */
	g_assert_true(vc_engine_profile_matches("a.vms.example.com,b.vms.example.com", k1));
	g_assert_false(vc_engine_profile_matches("a.vms.example.com", k1));
	g_assert_false(vc_engine_profile_matches(NULL, k1));
	pol.key_type = VC_KEY_TYPE_RSA_3072;
	k2 = vc_engine_profile_key(names, &pol);
	g_assert_false(vc_engine_profile_matches(k1, k2));
	pol.key_type = VC_KEY_TYPE_EC_P256;
	pol.lifetime_s = 3600;
	k3 = vc_engine_profile_key(names, &pol);
	g_assert_false(vc_engine_profile_matches(k1, k3));
}

static void
test_decide_case(gconstpointer data)
{
	const DecideCase *c = data;
	VcEngineDecision d;

	vc_engine_decide(&c->input, &c->facts, &c->vm, NOW, &d);
	g_assert_cmpstr(vc_engine_why_to_string(d.why), ==, vc_engine_why_to_string(c->why));
	g_assert_cmpint(d.move, ==, c->move);
	if (c->move || c->end_life)
		g_assert_cmpstr(vc_domain_state_to_string(d.state), ==,
				vc_domain_state_to_string(c->state));
	g_assert_cmpint(d.retire, ==, c->retire);
	if (c->retire)
		g_assert_cmpint(d.retire_reason, ==, c->reason);
	g_assert_cmpint(d.queue_issue, ==, c->queue_issue);
	g_assert_cmpint(d.job, ==, c->job);
	g_assert_cmpint(d.end_life, ==, c->end_life);
	g_assert_cmpint(d.new_generation, ==, c->new_generation);
	g_assert_cmpint(d.fail, ==, c->fail);
	g_assert_cmpint(d.want_claim, ==, c->want_claim);
	g_assert_cmpint(d.want_check, ==, c->want_check);
	g_assert_cmpint(d.set_stopped_migrated, ==, c->set_stopped_migrated);
	g_assert_cmpint(d.clear_stopped_migrated, ==, c->clear_stopped_migrated);
	g_assert_cmpint(d.set_renew_pending, ==, c->renew_pending);
	if (c->check_next) {
		g_assert_true(d.set_next_action);
		g_assert_cmpint(d.next_action_at, ==, c->next);
	}
	/* a renewal asked for while the handover decides keeps the deadline */
	if (c->why == VC_ENGINE_WHY_RUNS_ELSEWHERE)
		g_assert_false(d.set_next_action || d.set_renew_pending);
	/* what decide needs to know is what it was given */
	g_assert_cmpint(vc_engine_input_needs_facts(&c->input, &c->vm), ==, c->facts.fetched);
}

/* ---- every input in every state ------------------------------------------ */

static const VcEngineFacts fact_sets[] = {
    {RUNNING, SELECTED(pol_host), VALID},
    {RUNNING, SELECTED(pol_host), RENEW_DUE},
    {RUNNING, SELECTED(pol_host)},
    {RUNNING, SELECTED(pol_guest), VALID},
    {RUNNING, .policy = &pol_host, .names_key = "b.vms.example.com", VALID},
    {STOPPED_VM, SELECTED(pol_host), VALID},
    {STOPPED_VM, SELECTED(pol_revoke), VALID},
    {STOPPED_VM, SELECTED(pol_guest_define)},
    {RUNNING, .persistent = FALSE, SELECTED(pol_host), VALID},
    {RUNNING, VALID},
    {RUNNING, SELECTED(pol_host), .refused_what = "refused on this host", .refused_why = "x",
     .refused_by_host = TRUE},
    {STOPPED_VM, .refused_what = "domain XML refused", .refused_why = "x"},
    {GONE},
    {.fetched = TRUE, .fetch_error = "x"},
};

static void
test_decide_moves_allowed(void)
{
	guint n = 0;

	for (guint s = 0; s < VC_DOMAIN_STATE_LAST; s++) {
		for (guint k = 0; k < VC_ENGINE_INPUT_LAST; k++) {
			for (guint fi = 0; fi < G_N_ELEMENTS(fact_sets); fi++) {
				for (guint flags = 0; flags < 8; flags++) {
					VcEngineInput in = {.kind = k,
							    .migration = (flags & 1) != 0,
							    .restore = (flags & 2) != 0,
							    .rename = (flags & 4) != 0};
					VcEngineVmView vm = {.has_row = TRUE,
							     .state = s,
							     .has_serial =
								 s != VC_DOMAIN_STATE_REVOKED &&
								 s != VC_DOMAIN_STATE_REVOKING &&
								 s != VC_DOMAIN_STATE_HANDED_OVER &&
								 s != VC_DOMAIN_STATE_NEW,
							     .names_key = "a.vms.example.com",
							     .handover_grace_s = GRACE};
					VcEngineFacts f = fact_sets[fi];
					VcEngineDecision d;
					VcDomainState at = s;
					if (!vc_engine_input_needs_facts(&in, &vm))
						f = (VcEngineFacts){0};
					vc_engine_decide(&in, &f, &vm, NOW, &d);
					if (d.end_life) {
						g_assert_true(vc_domain_state_can_move(
						    at, VC_DOMAIN_STATE_REVOKING));
						at = VC_DOMAIN_STATE_REVOKING;
					}
					if (d.new_generation) {
						g_assert_true(vc_domain_state_can_move(
						    at, VC_DOMAIN_STATE_NEW));
						at = VC_DOMAIN_STATE_NEW;
					}
					if (d.move && !vc_domain_state_can_move(at, d.state))
						g_error("%s in %s with facts #%u: %s -> %s refused",
							vc_engine_input_kind_to_string(k),
							vc_domain_state_to_string(s), fi,
							vc_domain_state_to_string(at),
							vc_domain_state_to_string(d.state));
					/* what the decision asks for is consistent */
					if (d.queue_issue || d.job != VC_ENGINE_JOB_NONE)
						g_assert_nonnull(f.policy);
					if (d.job == VC_ENGINE_JOB_DELIVER)
						g_assert_cmpint(d.state, ==,
								VC_DOMAIN_STATE_DELIVERING);
					if (d.fail)
						g_assert_cmpint(d.state, ==,
								VC_DOMAIN_STATE_FAILED);
					n++;
				}
			}
		}
	}
	g_assert_cmpuint(n, ==,
			 VC_DOMAIN_STATE_LAST * VC_ENGINE_INPUT_LAST * G_N_ELEMENTS(fact_sets) * 8);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_assert_cmpuint(G_N_ELEMENTS(cases), >=, 60);
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *path = g_strdup_printf(
		    "/engine-decide/%s/%s", vc_engine_input_kind_to_string(cases[i].input.kind),
		    cases[i].name);
		g_test_add_data_func(path, &cases[i], test_decide_case);
	}
	g_test_add_func("/engine-decide/moves-allowed", test_decide_moves_allowed);
	g_test_add_func("/engine-decide/profile-key", test_decide_profile_key);
	return g_test_run();
}
