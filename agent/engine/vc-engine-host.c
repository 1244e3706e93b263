/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* This host's certificate, watched: loaded and checked again at most once a
 * minute when an evaluation needs it, at every [host] crl-refresh, when it
 * expires and at `reload`. When it becomes unusable (expired, revoked on the
 * host CA's CRL, replaced by one that does not chain) every VM is evaluated
 * again: a VM whose placement relied on the host certificate has its
 * certificate revoked (privilegeWithdrawn), and no VM is issued one until a
 * valid host certificate is installed; then issuing resumes. */
#include "vc-engine-private.h"

#include "vc-error.h"

/* reloaded and re-checked at most this often when evaluations ask, so that
 * a new certificate or CRL counts without a restart */
#define VC_ENGINE_HOST_RECHECK_S 60

static const char *
vc_engine_host_state_to_string(VcEngineHostState state)
{
	switch (state) {
	case VC_ENGINE_HOST_NONE:
		return "none";
	case VC_ENGINE_HOST_USABLE:
		return "usable";
	case VC_ENGINE_HOST_UNUSABLE:
		return "unusable";
	case VC_ENGINE_HOST_UNKNOWN:
	default:
		return "unknown";
	}
}

/* when 2/3 of the host certificate's life have passed (as the daemon's own
 * leaves are renewed), 0 without one */
static gint64
vc_engine_host_renew_at(VcEngine *engine)
{
	gint64 nb, na;

	if (engine->host == NULL)
		return 0;
	nb = vc_host_get_not_before(engine->host);
	na = vc_host_get_not_after(engine->host);
	return nb + (na - nb) * 2 / 3;
}

static gboolean
vc_engine_host_reconcile_cb(gpointer user_data)
{
	VcEngine *engine = user_data;
	g_autoptr(GError) error = NULL;

	engine->host_reconcile_source = 0;
	if (engine->virt == NULL || !engine->connected)
		return G_SOURCE_REMOVE;
	if (!vc_engine_reconcile(engine, &error))
		vc_engine_log(G_LOG_LEVEL_WARNING, "host-certificate", NULL, NULL, NULL,
			      "re-evaluation after the host certificate changed failed: %s",
			      error->message);
	return G_SOURCE_REMOVE;
}

static gboolean vc_engine_host_timer_cb(gpointer user_data);

/* the next look: at crl-refresh, and exactly when the certificate expires
 * or reaches 2/3 of its life */
static void
vc_engine_host_schedule(VcEngine *engine)
{
	gint64 now = vc_engine_now();
	gint64 next = now + MAX(engine->config->host_crl_refresh_s, 1);

	if (engine->host != NULL) {
		gint64 renew_at = vc_engine_host_renew_at(engine);
		gint64 expires = vc_host_get_not_after(engine->host) + 1;
		if (renew_at > now)
			next = MIN(next, renew_at);
		if (expires > now)
			next = MIN(next, expires);
	}
	g_clear_handle_id(&engine->host_source, g_source_remove);
	engine->host_source = g_timeout_add_seconds((guint)CLAMP(next - now, 1, G_MAXINT32),
						    vc_engine_host_timer_cb, engine);
}

static void
vc_engine_host_said(VcEngine *engine, const char *detail)
{
	vc_engine_emit(engine, "host-certificate", NULL, NULL, NULL, detail);
}

void
vc_engine_host_refresh(VcEngine *engine, gboolean force)
{
	gint64 now = vc_engine_now();
	g_autoptr(GError) error = NULL;
	VcEngineHostState was = engine->host_state;
	g_autofree char *was_fp = g_steal_pointer(&engine->host_fp);
	g_autofree char *was_error =
	    engine->host_error != NULL ? g_strdup(engine->host_error->message) : NULL;
	gboolean changed;

	if (!force && engine->host_loaded_at != 0 &&
	    now - engine->host_loaded_at < VC_ENGINE_HOST_RECHECK_S) {
		engine->host_fp = g_steal_pointer(&was_fp);
		return;
	}
	engine->host_loaded_at = now;
	g_clear_pointer(&engine->host, vc_host_free);
	g_clear_error(&engine->host_error);
	engine->host = vc_host_load(engine->config, &error);
	if (engine->host == NULL) {
		/* none installed: only VMs that restrict placement are refused */
		engine->host_state = VC_ENGINE_HOST_NONE;
		if (!g_error_matches(error, VC_ERROR, VC_ERROR_NOT_FOUND)) {
			engine->host_error = g_steal_pointer(&error);
			engine->host_state = VC_ENGINE_HOST_UNUSABLE;
		}
	} else {
		engine->host_fp = vc_cert_get_fingerprint_sha256(vc_host_get_cert(engine->host));
		engine->host_state = VC_ENGINE_HOST_USABLE;
		if (!vc_host_check_at(engine->host, now, &error)) {
			engine->host_error = g_steal_pointer(&error);
			engine->host_state = VC_ENGINE_HOST_UNUSABLE;
		}
	}
	vc_engine_host_schedule(engine);

	if (engine->host_state == VC_ENGINE_HOST_UNUSABLE &&
	    (was != VC_ENGINE_HOST_UNUSABLE ||
	     g_strcmp0(was_error, engine->host_error->message) != 0)) {
		g_autofree char *detail =
		    g_strdup_printf("unusable: %s", engine->host_error->message);
		vc_engine_log(G_LOG_LEVEL_WARNING, "host-certificate", NULL, NULL, NULL,
			      "this host's certificate is not usable (%s): the certificates of "
			      "VMs whose placement relies on it are revoked, and no VM is issued "
			      "a certificate here until a valid host certificate is installed "
			      "(virtcert host import, or a fresh host CA CRL)",
			      engine->host_error->message);
		vc_engine_host_said(engine, detail);
	} else if (engine->host_state == VC_ENGINE_HOST_USABLE && was == VC_ENGINE_HOST_UNUSABLE) {
		g_autoptr(GDateTime) dt =
		    g_date_time_new_from_unix_utc(vc_host_get_not_after(engine->host));
		g_autofree char *until = g_date_time_format_iso8601(dt);
		vc_engine_log(G_LOG_LEVEL_MESSAGE, "host-certificate", NULL, NULL, NULL,
			      "this host's certificate is usable again (%s, valid until %s): "
			      "issuing resumes",
			      vc_host_get_fqdn(engine->host), until);
		vc_engine_host_said(engine, "usable");
	} else if (engine->host_state == VC_ENGINE_HOST_USABLE && was_fp != NULL &&
		   g_strcmp0(was_fp, engine->host_fp) != 0) {
		vc_engine_log(G_LOG_LEVEL_MESSAGE, "host-certificate", NULL, NULL, NULL,
			      "this host's certificate changed (now SHA-256 %.16s…): placements "
			      "are judged again",
			      engine->host_fp);
		vc_engine_host_said(engine, "changed");
	}

	/* the warning at 2/3 of the life, once per certificate */
	if (engine->host_state == VC_ENGINE_HOST_USABLE && now >= vc_engine_host_renew_at(engine) &&
	    g_strcmp0(engine->host_warned_fp, engine->host_fp) != 0) {
		g_autoptr(GDateTime) dt =
		    g_date_time_new_from_unix_utc(vc_host_get_not_after(engine->host));
		g_autofree char *until = g_date_time_format_iso8601(dt);
		g_free(engine->host_warned_fp);
		engine->host_warned_fp = g_strdup(engine->host_fp);
		vc_engine_log(G_LOG_LEVEL_WARNING, "host-certificate", NULL, NULL, NULL,
			      "this host's certificate has passed 2/3 of its life and expires %s: "
			      "renew it (virtcert host renew) before then, or the certificates "
			      "of VMs that restrict their placement are revoked",
			      until);
		vc_engine_host_said(engine, "renewal-due");
	}

	/* the first look (was UNKNOWN) decides nothing new: the reconcile after
	 * connecting evaluates everything anyway */
	changed = was != VC_ENGINE_HOST_UNKNOWN &&
		  (was != engine->host_state || g_strcmp0(was_fp, engine->host_fp) != 0 ||
		   (engine->host_state == VC_ENGINE_HOST_UNUSABLE &&
		    g_strcmp0(was_error, engine->host_error->message) != 0));
	if (changed && engine->host_reconcile_source == 0)
		engine->host_reconcile_source = g_idle_add(vc_engine_host_reconcile_cb, engine);
}

static gboolean
vc_engine_host_timer_cb(gpointer user_data)
{
	VcEngine *engine = user_data;

	engine->host_source = 0;
	/* with crl-url the CRL is fetched first; the look follows it */
	if (!vc_engine_host_crl_fetch(engine))
		vc_engine_host_refresh(engine, TRUE);
	else
		vc_engine_host_schedule(engine);
	return G_SOURCE_REMOVE;
}

gboolean
vc_engine_host_allows(VcEngine *engine, const VcPolicy *policy, gboolean *ret_withdraw,
		      GError **error)
{
	g_autofree char *reason = NULL;

	vc_engine_host_refresh(engine, FALSE);
	*ret_withdraw = TRUE;
	if (engine->host_error != NULL) {
		/* no issuing here at all; but only a VM whose placement relied
		 * on the host certificate loses the certificate it holds */
		*ret_withdraw = vc_placement_is_restricted(policy);
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "this host's certificate is not usable: %s",
			    engine->host_error->message);
		return FALSE;
	}
	if (!vc_host_placement_decide(engine->host, policy, &reason)) {
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY, "placement: %s", reason);
		return FALSE;
	}
	return TRUE;
}

gboolean
vc_engine_host_may_issue(VcEngine *engine, GError **error)
{
	vc_engine_host_refresh(engine, FALSE);
	if (engine->host_error == NULL)
		return TRUE;
	/* the same rule as the decisions (vc_engine_host_allows()): no
	 * issuing at all; a host without a host certificate still issues
	 * for VMs that do not restrict their placement */
	g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
		    "nothing is issued on this host while its host certificate is not usable "
		    "(%s): install a valid one (virtcert host import, or a fresh host CA CRL), "
		    "then virtcert reload",
		    engine->host_error->message);
	return FALSE;
}

void
vc_engine_host_status(VcEngine *engine, JsonBuilder *b)
{
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "state");
	json_builder_add_string_value(b, vc_engine_host_state_to_string(engine->host_state));
	if (engine->host_error != NULL) {
		json_builder_set_member_name(b, "error");
		json_builder_add_string_value(b, engine->host_error->message);
	}
	if (engine->host != NULL) {
		json_builder_set_member_name(b, "fqdn");
		json_builder_add_string_value(b, vc_host_get_fqdn(engine->host));
		json_builder_set_member_name(b, "not_after");
		json_builder_add_int_value(b, vc_host_get_not_after(engine->host));
		json_builder_set_member_name(b, "renew_at");
		json_builder_add_int_value(b, vc_engine_host_renew_at(engine));
	}
	json_builder_set_member_name(b, "issuing");
	json_builder_add_boolean_value(b, engine->host_error == NULL);
	json_builder_end_object(b);
}

static void
vc_engine_host_metrics_collect(VcMetrics *metrics, gpointer user_data)
{
	VcEngine *engine = user_data;
	VcMetric *usable = vc_metrics_add_gauge(
	    metrics, "virtcert_host_certificate_usable",
	    "1 when this host's certificate passes its self-check (valid, chains to the host "
	    "CA, not revoked), 0 when it does not and nothing is issued here.",
	    NULL);
	VcMetric *due = vc_metrics_add_gauge(
	    metrics, "virtcert_host_certificate_renewal_due",
	    "1 once this host's certificate has passed 2/3 of its life (virtcert host renew).",
	    NULL);

	vc_engine_host_refresh(engine, FALSE);
	if (engine->host_state == VC_ENGINE_HOST_USABLE ||
	    engine->host_state == VC_ENGINE_HOST_UNUSABLE)
		vc_metric_set(usable, NULL, engine->host_state == VC_ENGINE_HOST_USABLE);
	else
		vc_metric_clear(usable);
	if (engine->host != NULL)
		vc_metric_set(due, NULL, vc_engine_now() >= vc_engine_host_renew_at(engine));
	else
		vc_metric_clear(due);
}

void
vc_engine_host_metrics_init(VcEngine *engine)
{
	vc_metrics_add_collector(engine->metrics, vc_engine_host_metrics_collect, engine);
}

void
vc_engine_host_clear(VcEngine *engine)
{
	g_clear_handle_id(&engine->host_source, g_source_remove);
	g_clear_handle_id(&engine->host_reconcile_source, g_source_remove);
	g_clear_pointer(&engine->host, vc_host_free);
	g_clear_error(&engine->host_error);
	g_clear_pointer(&engine->host_fp, g_free);
	g_clear_pointer(&engine->host_warned_fp, g_free);
}
