/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include <openssl/x509.h>

#include "vc-crl-publisher.h"
#include "vc-error.h"
#include "vc-issuer.h"
#include "vc-metrics.h"
#include "vc-test-ca.h"

/* The served CRL against a real CA and store: ready before anyone asks,
 * rebuilt once for a burst of revocations, within a second of the first. */

#define UUID_A "1b4e28ba-2fa1-11d2-883f-0016d3cca42"

typedef struct {
	VcTestCa *tca;
	VcConfig *config;
	VcStore *store;
	VcIssuer *issuer;
	VcMetrics *metrics;
	VcCrlPublisher *pub;
} Fixture;

static void
fx_setup(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *db = NULL;

	fx->tca = vc_test_ca_new("vc-crl-publisher", VC_KEY_TYPE_EC_P256);
	db = g_build_filename(fx->tca->dir, "virtcert.db", NULL);
	fx->store = vc_store_open(db, &error);
	g_assert_no_error(error);
	fx->config = vc_config_new_default();
	fx->config->crl_validity_s = 7200;
	fx->issuer = vc_issuer_new(fx->config, fx->tca->ca, fx->store);
	fx->metrics = vc_metrics_new();
	fx->pub = vc_crl_publisher_new(fx->issuer, fx->config->crl_validity_s, fx->metrics);
}

static void
fx_teardown(Fixture *fx, gconstpointer data)
{
	g_clear_pointer(&fx->pub, vc_crl_publisher_free);
	g_clear_pointer(&fx->metrics, vc_metrics_free);
	g_clear_pointer(&fx->issuer, vc_issuer_free);
	g_clear_pointer(&fx->store, vc_store_free);
	g_clear_pointer(&fx->config, vc_config_free);
	g_clear_pointer(&fx->tca, vc_test_ca_free);
}

static char *
issue(Fixture *fx, int i)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *uuid = g_strdup_printf(UUID_A "%d", i);
	g_autofree char *dns = g_strdup_printf("vm%d.vms.example.com", i);
	const char *names[] = {dns, NULL};
	VcIssueRequest req = {
	    .vm_uuid = uuid,
	    .vm_name = dns,
	    .dns_names = names,
	    .key_type = VC_KEY_TYPE_EC_P256,
	};
	g_autoptr(VcIssued) issued = vc_issuer_issue(fx->issuer, &req, &error);

	g_assert_no_error(error);
	return g_strdup(issued->serial);
}

static X509_CRL *
current_crl(Fixture *fx, char **ret_etag, gint64 *ret_this_update, gint64 *ret_next_update)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) der = NULL;
	const unsigned char *p;

	g_assert_true(vc_crl_publisher_get(fx->pub, &der, ret_etag, ret_this_update,
					   ret_next_update, &error));
	g_assert_no_error(error);
	p = g_bytes_get_data(der, NULL);
	return d2i_X509_CRL(NULL, &p, (long)g_bytes_get_size(der));
}

static gboolean
builds_reached(gpointer fixture, gconstpointer data)
{
	Fixture *fx = fixture;
	return vc_crl_publisher_get_builds(fx->pub) >= GPOINTER_TO_UINT(data);
}

static void
test_ready_at_start(Fixture *fx, gconstpointer data)
{
	g_autofree char *etag = NULL;
	g_autofree char *text = NULL;
	gint64 this_update = 0, next_update = 0;
	g_autoptr(X509_CRL) crl = NULL;

	/* built when made: a GET is a lookup */
	g_assert_cmpuint(vc_crl_publisher_get_builds(fx->pub), ==, 1);
	crl = current_crl(fx, &etag, &this_update, &next_update);
	g_assert_nonnull(crl);
	g_assert_cmpuint(vc_crl_publisher_get_builds(fx->pub), ==, 1);
	g_assert_null(X509_CRL_get_REVOKED(crl));
	/* a strong ETag: quoted, not W/ */
	g_assert_true(etag[0] == '"' && etag[strlen(etag) - 1] == '"');
	/* nextUpdate from the configuration */
	g_assert_cmpint(next_update - this_update, ==, 7200);
	g_assert_cmpint(this_update, <=, vc_test_now_s());
	text = vc_metrics_to_text(fx->metrics);
	g_assert_nonnull(strstr(text, "\nvirtcert_crl_entries 0\n"));
}

static void
test_coalesced(Fixture *fx, gconstpointer data)
{
	g_autofree char *etag0 = NULL;
	g_autofree char *etag1 = NULL;
	g_autofree char *text = NULL;
	g_autoptr(X509_CRL) before = NULL;
	g_autoptr(X509_CRL) after = NULL;
	g_autoptr(GError) error = NULL;
	gint64 this_update = 0;
	gint64 start;
	gdouble elapsed;

	before = current_crl(fx, &etag0, NULL, NULL);
	/* a burst of revocations, each durable, each reported */
	start = g_get_monotonic_time();
	for (int i = 0; i < 5; i++) {
		g_autofree char *serial = issue(fx, i);
		g_assert_true(
		    vc_issuer_revoke(fx->issuer, serial, VC_REASON_CESSATION_OF_OPERATION, &error));
		g_assert_no_error(error);
		vc_crl_publisher_revoked(fx->pub);
	}
	/* not rebuilt on the spot: the window collects them */
	g_assert_cmpuint(vc_crl_publisher_get_builds(fx->pub), ==, 1);
	g_assert_true(vc_test_wait_until(builds_reached, fx, GUINT_TO_POINTER(2), 3000));
	elapsed = (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
	g_test_message("5 revocations visible after %.3f s", elapsed);
	g_assert_cmpfloat(elapsed, <, 1.0);
	/* one rebuild for the five */
	g_assert_cmpuint(vc_crl_publisher_get_builds(fx->pub), ==, 2);

	after = current_crl(fx, &etag1, &this_update, NULL);
	g_assert_cmpint(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(after)), ==, 5);
	g_assert_cmpstr(etag0, !=, etag1);
	for (int i = 0; i < 5; i++) {
		X509_REVOKED *r = sk_X509_REVOKED_value(X509_CRL_get_REVOKED(after), i);
		g_assert_cmpint(
		    ASN1_TIME_cmp_time_t(X509_REVOKED_get0_revocationDate(r), (time_t)this_update),
		    <=, 0);
	}

	/* what the metrics say about it */
	text = vc_metrics_to_text(fx->metrics);
	g_assert_nonnull(strstr(text, "\nvirtcert_revocation_visible_seconds_count 5\n"));
	g_assert_nonnull(
	    strstr(text, "\nvirtcert_revocation_visible_seconds_bucket{le=\"1\"} 5\n"));
	g_assert_nonnull(strstr(text, "\nvirtcert_crl_builds_total 2\n"));
	g_assert_nonnull(strstr(text, "\nvirtcert_crl_entries 5\n"));
	g_assert_nonnull(strstr(text, "\nvirtcert_crl_next_update_seconds "));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fx_setup, fn, fx_teardown)
	ADD("/crl-publisher/ready-at-start", test_ready_at_start);
	ADD("/crl-publisher/coalesced", test_coalesced);
	return g_test_run();
}
