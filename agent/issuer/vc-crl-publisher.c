/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-crl-publisher.h"

#include "vc-crash-point.h"
#include "vc-error.h"

/* The longest a CRL is served before it is rebuilt without a revocation. */
#define VC_CRL_PUBLISHER_REFRESH_MAX_S 3600

/* From a rebuild in the same main-loop turn to one behind a busy loop. */
static const double vc_crl_publisher_buckets[] = {0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30};

struct _VcCrlPublisher {
	VcIssuer *issuer;
	gint64 validity_s;
	GBytes *der;
	char *etag;
	gint64 this_update;
	gint64 next_update;
	guint64 builds;
	guint n_entries;
	guint rebuild_source;
	guint refresh_source;
	GArray *pending_us; /* gint64, monotonic: revocations not on the CRL yet */
	VcMetric *m_visible;
	VcMetric *m_builds;
	VcMetric *m_failures;
	VcMetric *m_build_seconds;
	VcMetrics *metrics;
};

static void
vc_crl_publisher_collect(VcMetrics *metrics, gpointer user_data)
{
	VcCrlPublisher *pub = user_data;
	VcMetric *next = vc_metrics_add_gauge(metrics, "virtcert_crl_next_update_seconds",
					      "Seconds until the served CRL's nextUpdate.", NULL);

	if (pub->der == NULL) {
		vc_metric_clear(next);
		return;
	}
	vc_metric_set(next, NULL, (double)(pub->next_update - g_get_real_time() / G_USEC_PER_SEC));
	vc_metric_set(vc_metrics_add_gauge(metrics, "virtcert_crl_size_bytes",
					   "Size of the served CRL (DER).", NULL),
		      NULL, (double)g_bytes_get_size(pub->der));
	vc_metric_set(vc_metrics_add_gauge(metrics, "virtcert_crl_entries",
					   "Certificates listed on the served CRL.", NULL),
		      NULL, pub->n_entries);
}

static gboolean vc_crl_publisher_refresh_cb(gpointer user_data);

static void
vc_crl_publisher_schedule_refresh(VcCrlPublisher *pub)
{
	guint interval = (guint)MAX(1, MIN(pub->validity_s / 2, VC_CRL_PUBLISHER_REFRESH_MAX_S));

	g_clear_handle_id(&pub->refresh_source, g_source_remove);
	pub->refresh_source = g_timeout_add_seconds(interval, vc_crl_publisher_refresh_cb, pub);
}

gboolean
vc_crl_publisher_rebuild(VcCrlPublisher *pub, GError **error)
{
	gint64 start = g_get_monotonic_time();
	g_autoptr(GBytes) der = NULL;
	gint64 this_update = 0, next_update = 0;
	guint n_entries = 0;
	g_autofree char *digest = NULL;
	gint64 done;

	/* revocations durable before this point are in the store the CRL is
	 * read from */
	g_autoptr(GArray) covered = g_steal_pointer(&pub->pending_us);
	pub->pending_us = g_array_new(FALSE, FALSE, sizeof(gint64));

	vc_crash_point("crl-before-build");
	der = vc_issuer_make_crl_der(pub->issuer, &this_update, &next_update, &n_entries, error);
	if (der == NULL) {
		/* still pending: the next rebuild covers them */
		g_array_append_vals(pub->pending_us, covered->data, covered->len);
		if (pub->m_failures != NULL)
			vc_metric_add(pub->m_failures, NULL, 1);
		return FALSE;
	}
	digest = g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, der);
	g_clear_pointer(&pub->der, g_bytes_unref);
	pub->der = g_steal_pointer(&der);
	g_free(pub->etag);
	/* RFC 9110 8.8.3: a strong validator, since equal tags mean equal octets */
	pub->etag = g_strdup_printf("\"%.32s\"", digest);
	pub->this_update = this_update;
	pub->next_update = next_update;
	pub->n_entries = n_entries;
	pub->builds++;
	vc_crash_point("crl-published");
	done = g_get_monotonic_time();
	if (pub->metrics != NULL) {
		vc_metric_add(pub->m_builds, NULL, 1);
		vc_metric_observe(pub->m_build_seconds, (double)(done - start) / G_USEC_PER_SEC);
		for (guint i = 0; i < covered->len; i++)
			vc_metric_observe(pub->m_visible,
					  (double)(done - g_array_index(covered, gint64, i)) /
					      G_USEC_PER_SEC);
	}
	g_debug("CRL %s rebuilt in %" G_GINT64_FORMAT " ms: %u entries, %" G_GSIZE_FORMAT
		" octets, %u revocation(s) newly visible",
		pub->etag, (done - start) / 1000, pub->n_entries, g_bytes_get_size(pub->der),
		covered->len);
	vc_crl_publisher_schedule_refresh(pub);
	return TRUE;
}

static gboolean vc_crl_publisher_rebuild_cb(gpointer user_data);

static void
vc_crl_publisher_rebuild_logged(VcCrlPublisher *pub)
{
	g_autoptr(GError) error = NULL;

	if (!vc_crl_publisher_rebuild(pub, &error)) {
		g_warning("cannot rebuild the CRL, retrying in 1 s: %s", error->message);
		if (pub->rebuild_source == 0)
			pub->rebuild_source =
			    g_timeout_add_seconds(1, vc_crl_publisher_rebuild_cb, pub);
	}
}

static gboolean
vc_crl_publisher_rebuild_cb(gpointer user_data)
{
	VcCrlPublisher *pub = user_data;

	pub->rebuild_source = 0;
	vc_crl_publisher_rebuild_logged(pub);
	return G_SOURCE_REMOVE;
}

static gboolean
vc_crl_publisher_refresh_cb(gpointer user_data)
{
	VcCrlPublisher *pub = user_data;

	pub->refresh_source = 0;
	vc_crl_publisher_rebuild_logged(pub);
	if (pub->refresh_source == 0)
		vc_crl_publisher_schedule_refresh(pub);
	return G_SOURCE_REMOVE;
}

VcCrlPublisher *
vc_crl_publisher_new(VcIssuer *issuer, gint64 validity_s, VcMetrics *metrics)
{
	VcCrlPublisher *pub = g_new0(VcCrlPublisher, 1);
	g_autoptr(GError) error = NULL;

	pub->issuer = issuer;
	pub->validity_s = validity_s;
	pub->pending_us = g_array_new(FALSE, FALSE, sizeof(gint64));
	pub->metrics = metrics;
	if (metrics != NULL) {
		pub->m_visible = vc_metrics_add_histogram(
		    metrics, "virtcert_revocation_visible_seconds",
		    "From a revocation durable in the store to the CRL that lists it.",
		    vc_crl_publisher_buckets, G_N_ELEMENTS(vc_crl_publisher_buckets));
		pub->m_builds = vc_metrics_add_counter(metrics, "virtcert_crl_builds_total",
						       "CRLs built and signed.", NULL);
		pub->m_failures =
		    vc_metrics_add_counter(metrics, "virtcert_crl_build_failures_total",
					   "CRL builds that failed (retried).", NULL);
		pub->m_build_seconds = vc_metrics_add_histogram(
		    metrics, "virtcert_crl_build_duration_seconds",
		    "Time to read the revocations, sign and encode a CRL.",
		    vc_crl_publisher_buckets, G_N_ELEMENTS(vc_crl_publisher_buckets));
		vc_metrics_add_collector(metrics, vc_crl_publisher_collect, pub);
	}
	if (!vc_crl_publisher_rebuild(pub, &error)) {
		g_warning("cannot build the CRL: %s", error->message);
		vc_crl_publisher_schedule_refresh(pub);
	}
	return pub;
}

void
vc_crl_publisher_free(VcCrlPublisher *pub)
{
	if (pub == NULL)
		return;
	if (pub->metrics != NULL)
		vc_metrics_remove_collectors(pub->metrics, pub);
	g_clear_handle_id(&pub->rebuild_source, g_source_remove);
	g_clear_handle_id(&pub->refresh_source, g_source_remove);
	g_clear_pointer(&pub->der, g_bytes_unref);
	g_array_unref(pub->pending_us);
	g_free(pub->etag);
	g_free(pub);
}

void
vc_crl_publisher_revoked(VcCrlPublisher *pub)
{
	gint64 now = g_get_monotonic_time();

	g_array_append_val(pub->pending_us, now);
	/* coalesced: one rebuild for every revocation of the window */
	if (pub->rebuild_source == 0)
		pub->rebuild_source =
		    g_timeout_add(VC_CRL_PUBLISHER_DELAY_MS, vc_crl_publisher_rebuild_cb, pub);
}

gboolean
vc_crl_publisher_get(VcCrlPublisher *pub, GBytes **ret_der, char **ret_etag,
		     gint64 *ret_this_update, gint64 *ret_next_update, GError **error)
{
	if (pub->der == NULL && !vc_crl_publisher_rebuild(pub, error))
		return FALSE;
	if (ret_der != NULL)
		*ret_der = g_bytes_ref(pub->der);
	if (ret_etag != NULL)
		*ret_etag = g_strdup(pub->etag);
	if (ret_this_update != NULL)
		*ret_this_update = pub->this_update;
	if (ret_next_update != NULL)
		*ret_next_update = pub->next_update;
	return TRUE;
}

guint64
vc_crl_publisher_get_builds(VcCrlPublisher *pub)
{
	return pub->builds;
}
