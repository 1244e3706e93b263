/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-issuer.h"

#include <signal.h>

#include "vc-error.h"

struct _VcIssuer {
	const VcConfig *config;
	VcCa *ca;
	VcStore *store;
	char *crl_url;
	char *ocsp_url;
#ifdef VC_TEST_SEAMS
	/* Test seam (-Dtest_seams=true): VC_TEST_CRASH_AT=after-record|after-sign
	 * kills the process there, so tests can prove the recovery rules on the
	 * real binary. A release build has no such environment variable. */
	char *crash_at;
#endif
};

void
vc_issued_free(VcIssued *issued)
{
	if (issued == NULL)
		return;
	g_free(issued->serial);
	X509_free(issued->cert);
	EVP_PKEY_free(issued->key);
	g_clear_error(&issued->error);
	g_free(issued);
}

static char *
vc_issuer_expand_url(const char *tmpl, const char *ca_id)
{
	g_autoptr(GString) s = NULL;
	if (tmpl == NULL || *tmpl == '\0')
		return NULL;
	s = g_string_new(tmpl);
	g_string_replace(s, "{ca}", ca_id, 0);
	return g_string_free(g_steal_pointer(&s), FALSE);
}

VcIssuer *
vc_issuer_new(const VcConfig *config, VcCa *ca, VcStore *store)
{
	VcIssuer *issuer = g_new0(VcIssuer, 1);
	issuer->config = config;
	issuer->ca = ca;
	issuer->store = store;
	issuer->crl_url = vc_issuer_expand_url(config->crl_url, vc_ca_get_id(ca));
	issuer->ocsp_url = vc_issuer_expand_url(config->ocsp_url, vc_ca_get_id(ca));
#ifdef VC_TEST_SEAMS
	issuer->crash_at = g_strdup(g_getenv("VC_TEST_CRASH_AT"));
#endif
	return issuer;
}

void
vc_issuer_free(VcIssuer *issuer)
{
	if (issuer == NULL)
		return;
	g_free(issuer->crl_url);
	g_free(issuer->ocsp_url);
#ifdef VC_TEST_SEAMS
	g_free(issuer->crash_at);
#endif
	g_free(issuer);
}

char *
vc_issuer_get_crl_url(VcIssuer *issuer)
{
	return g_strdup(issuer->crl_url);
}

static void
vc_issuer_crash_point(VcIssuer *issuer, const char *point)
{
#ifdef VC_TEST_SEAMS
	if (issuer->crash_at != NULL && g_strcmp0(issuer->crash_at, point) == 0)
		raise(SIGKILL);
#endif
}

/* Step one, inside the caller's transaction: checks, key, serial, intent. */
static VcIssued *
vc_issuer_prepare(VcIssuer *issuer, const VcIssueRequest *req, gint64 now, GError **error)
{
	g_autoptr(VcIssued) issued = g_new0(VcIssued, 1);
	gint64 lifetime =
	    req->lifetime_s > 0 ? req->lifetime_s : issuer->config->default_lifetime_s;
	VcCertRecord rec = {0};

	if (req->vm_uuid == NULL || req->dns_names == NULL || req->dns_names[0] == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
			    "an issuance needs a VM UUID and at least one DNS name");
		return NULL;
	}
	if (!vc_ca_check_names(issuer->ca, req->dns_names, error)) {
		g_prefix_error(error, "VM %s: ", req->vm_name ? req->vm_name : req->vm_uuid);
		return NULL;
	}
	if (req->public_key == NULL) {
		issued->key = vc_key_generate(req->key_type, error);
		if (issued->key == NULL)
			return NULL;
	}
	issued->serial = vc_serial_generate(error);
	if (issued->serial == NULL)
		return NULL;
	issued->not_before = now - issuer->config->backdate_s;
	issued->not_after = now + lifetime;

	rec.serial = issued->serial;
	rec.ca_id = (char *)vc_ca_get_id(issuer->ca);
	rec.vm_uuid = (char *)req->vm_uuid;
	rec.vm_name = (char *)req->vm_name;
	rec.dns_names = (GStrv)req->dns_names;
	rec.not_before = issued->not_before;
	rec.not_after = issued->not_after;
	rec.created_at = now;
	rec.status = VC_CERT_STATUS_PENDING;
	rec.reason = -1;
	rec.placement = (char *)req->placement;
	if (!vc_store_cert_record_intent(issuer->store, &rec, error))
		return NULL;
	return g_steal_pointer(&issued);
}

/* Step two, outside any transaction: sign and verify. */
static gboolean
vc_issuer_sign(VcIssuer *issuer, const VcIssueRequest *req, VcIssued *issued, GError **error)
{
	VcLeafRequest leaf = {
	    .serial_hex = issued->serial,
	    .vm_uuid = req->vm_uuid,
	    .dns_names = req->dns_names,
	    .public_key = req->public_key != NULL ? req->public_key : issued->key,
	    .not_before = issued->not_before,
	    .not_after = issued->not_after,
	    .crl_url = issuer->crl_url,
	    .ocsp_url = issuer->ocsp_url,
	    .empty_subject = FALSE,
	};
	issued->cert = vc_ca_issue_leaf(issuer->ca, &leaf, error);
	return issued->cert != NULL;
}

VcIssued *
vc_issuer_issue(VcIssuer *issuer, const VcIssueRequest *req, GError **error)
{
	g_autoptr(GPtrArray) results = vc_issuer_issue_batch(issuer, req, 1, error);
	VcIssued *issued;

	if (results == NULL)
		return NULL;
	issued = g_ptr_array_steal_index(results, 0);
	if (issued->error != NULL) {
		g_propagate_error(error, g_steal_pointer(&issued->error));
		vc_issued_free(issued);
		return NULL;
	}
	return issued;
}

GPtrArray *
vc_issuer_issue_batch(VcIssuer *issuer, const VcIssueRequest *reqs, guint n_reqs, GError **error)
{
	g_autoptr(GPtrArray) results = g_ptr_array_new_full(n_reqs, (GDestroyNotify)vc_issued_free);
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;

	/* 1. every intent durable in one commit */
	if (!vc_store_begin(issuer->store, error))
		return NULL;
	for (guint i = 0; i < n_reqs; i++) {
		GError *local = NULL;
		VcIssued *issued = vc_issuer_prepare(issuer, &reqs[i], now, &local);
		if (issued == NULL) {
			issued = g_new0(VcIssued, 1);
			issued->error = local;
		}
		g_ptr_array_add(results, issued);
	}
	if (!vc_store_commit(issuer->store, error)) {
		vc_store_rollback(issuer->store);
		return NULL;
	}
	vc_issuer_crash_point(issuer, "after-record");

	/* 2. sign; a failure is recorded so the serial is never left PENDING */
	for (guint i = 0; i < n_reqs; i++) {
		VcIssued *issued = g_ptr_array_index(results, i);
		if (issued->error != NULL)
			continue;
		if (!vc_issuer_sign(issuer, &reqs[i], issued, &issued->error)) {
			g_autoptr(GError) local = NULL;
			if (!vc_store_cert_abandon(issuer->store, issued->serial,
						   issued->error->message, &local))
				g_warning("serial %s stays PENDING until restart: %s",
					  issued->serial, local->message);
		}
	}
	vc_issuer_crash_point(issuer, "after-sign");

	/* 3. every DER durable in one commit; only then are certificates handed out */
	if (!vc_store_begin(issuer->store, error))
		return NULL;
	for (guint i = 0; i < n_reqs; i++) {
		VcIssued *issued = g_ptr_array_index(results, i);
		g_autoptr(GBytes) der = NULL;
		if (issued->error != NULL)
			continue;
		der = vc_cert_to_der(issued->cert, &issued->error);
		if (der == NULL || !vc_store_cert_mark_issued(issuer->store, issued->serial, der,
							      &issued->error)) {
			g_clear_pointer(&issued->cert, X509_free);
			g_clear_pointer(&issued->key, EVP_PKEY_free);
		}
	}
	if (!vc_store_commit(issuer->store, error)) {
		vc_store_rollback(issuer->store);
		return NULL;
	}
	return g_steal_pointer(&results);
}

gboolean
vc_issuer_revoke(VcIssuer *issuer, const char *serial, int reason, GError **error)
{
	return vc_store_cert_revoke(issuer->store, serial, reason,
				    g_get_real_time() / G_USEC_PER_SEC, error);
}

X509_CRL *
vc_issuer_make_crl(VcIssuer *issuer, GError **error)
{
	const char *ca_id = vc_ca_get_id(issuer->ca);
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	guint64 number = 0;
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func(g_free);

	rows = vc_store_cert_list_revoked(issuer->store, ca_id, error);
	if (rows == NULL)
		return NULL;
	for (guint i = 0; i < rows->len; i++) {
		VcCertRecord *rec = g_ptr_array_index(rows, i);
		VcCrlEntry *entry = g_new0(VcCrlEntry, 1);
		entry->serial_hex = rec->serial;
		entry->revoked_at = rec->revoked_at;
		entry->reason = rec->reason < 0 ? VC_REASON_UNSPECIFIED : rec->reason;
		g_ptr_array_add(entries, entry);
	}
	if (!vc_store_crl_next_number(issuer->store, ca_id, &number, error))
		return NULL;
	/* thisUpdate a little in the past for relying parties with skewed clocks */
	return vc_ca_sign_crl(issuer->ca, entries, number, now - 60,
			      now + issuer->config->crl_validity_s, error);
}
