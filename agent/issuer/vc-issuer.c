/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-issuer.h"

#include "vc-crash-point.h"
#include "vc-error.h"

struct _VcIssuer {
	const VcConfig *config;
	VcCa *ca;
	VcStore *store;
	char *crl_url;
	char *ocsp_url;
	char *ca_issuers_url;
	/* serials recorded PENDING whose batch could not end (the store refused
	 * a later write: disk full, read-only): abandoned by the next batch that
	 * can write, not left to the next start */
	GPtrArray *orphans;
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

VcIssuer *
vc_issuer_new(const VcConfig *config, VcCa *ca, VcStore *store)
{
	VcIssuer *issuer = g_new0(VcIssuer, 1);
	issuer->config = config;
	issuer->ca = ca;
	issuer->store = store;
	issuer->orphans = g_ptr_array_new_with_free_func(g_free);
	issuer->crl_url = vc_config_get_ca_url(config, VC_CA_URL_CRL, vc_ca_get_id(ca));
	issuer->ocsp_url = vc_config_get_ca_url(config, VC_CA_URL_OCSP, vc_ca_get_id(ca));
	issuer->ca_issuers_url =
	    vc_config_get_ca_url(config, VC_CA_URL_CA_ISSUERS, vc_ca_get_id(ca));
	return issuer;
}

void
vc_issuer_free(VcIssuer *issuer)
{
	if (issuer == NULL)
		return;
	g_free(issuer->crl_url);
	g_free(issuer->ocsp_url);
	g_free(issuer->ca_issuers_url);
	g_ptr_array_unref(issuer->orphans);
	g_free(issuer);
}

char *
vc_issuer_get_crl_url(VcIssuer *issuer)
{
	return g_strdup(issuer->crl_url);
}

static char *
vc_issuer_format_time(gint64 t)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);

	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("?");
}

/* The validity of a new leaf: the lifetime asked for (0: the configured
 * default) within VC_POLICY_LIFETIME_MIN_S..MAX_S on every path, and never
 * beyond the CA chain's own expiry (clamped to it). VC_ERROR_POLICY when no
 * valid certificate can be made. */
static gboolean
vc_issuer_validity(VcIssuer *issuer, const VcIssueRequest *req, gint64 now, gint64 *ret_not_before,
		   gint64 *ret_not_after, GError **error)
{
	gint64 lifetime =
	    req->lifetime_s != 0 ? req->lifetime_s : issuer->config->default_lifetime_s;
	gint64 ca_end = vc_ca_get_not_after(issuer->ca);

	if (lifetime < VC_POLICY_LIFETIME_MIN_S || lifetime > VC_POLICY_LIFETIME_MAX_S) {
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "a lifetime of %" G_GINT64_FORMAT
			    " s is outside 1m..397d (%d..%d s): ask for a lifetime within "
			    "the bounds (policy lifetime=, --lifetime, [ca] default-lifetime)",
			    lifetime, VC_POLICY_LIFETIME_MIN_S, VC_POLICY_LIFETIME_MAX_S);
		return FALSE;
	}
	if (ca_end - now < VC_POLICY_LIFETIME_MIN_S) {
		g_autofree char *when = vc_issuer_format_time(ca_end);
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "the CA chain expires at %s, too soon for any certificate: renew "
			    "the CA ('virtcert ca init' or 'virtcert ca import')",
			    when);
		return FALSE;
	}
	*ret_not_before = now - issuer->config->backdate_s;
	*ret_not_after = MIN(now + lifetime, ca_end);
	return TRUE;
}

/* Step one, inside the caller's transaction: checks, key, serial, intent. */
static VcIssued *
vc_issuer_prepare(VcIssuer *issuer, const VcIssueRequest *req, gint64 now, GError **error)
{
	g_autoptr(VcIssued) issued = g_new0(VcIssued, 1);
	VcCertRecord rec = {0};
	const char *vm = req->vm_name ? req->vm_name : req->vm_uuid;

	if (req->vm_uuid == NULL || req->dns_names == NULL || req->dns_names[0] == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
			    "an issuance needs a VM UUID and at least one DNS name");
		return NULL;
	}
	if (!vc_ca_check_names(issuer->ca, req->dns_names, error) ||
	    !vc_issuer_validity(issuer, req, now, &issued->not_before, &issued->not_after, error)) {
		g_prefix_error(error, "VM %s: ", vm);
		return NULL;
	}
	/* guest keygen: the guest chose the key, the policy says what it must be */
	if (req->public_key != NULL && !vc_key_check_type(req->public_key, req->key_type, error)) {
		g_prefix_error(error, "VM %s: ", vm);
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
	    .ca_issuers_url = issuer->ca_issuers_url,
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

static gboolean vc_issuer_abandon_orphans(VcIssuer *issuer, GError **error);
static void vc_issuer_orphan_all(VcIssuer *issuer, GPtrArray *results);

/* Steps 1-3 of a batch; with COMMIT FALSE the DER writes are left in an
 * open transaction for the caller to commit with its own rows. */
static GPtrArray *
vc_issuer_issue_batch_full(VcIssuer *issuer, const VcIssueRequest *reqs, guint n_reqs,
			   gboolean commit, GError **error)
{
	g_autoptr(GPtrArray) results = g_ptr_array_new_full(n_reqs, (GDestroyNotify)vc_issued_free);
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;

	/* 1. every intent durable in one commit, with the end of earlier
	 * batches' orphans */
	if (!vc_store_begin(issuer->store, error))
		return NULL;
	if (!vc_issuer_abandon_orphans(issuer, error)) {
		vc_store_rollback(issuer->store);
		return NULL;
	}
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
	g_ptr_array_set_size(issuer->orphans, 0);
	vc_crash_point("issue-after-record");

	/* 2. sign; a failure is recorded so the serial is never left PENDING */
	for (guint i = 0; i < n_reqs; i++) {
		VcIssued *issued = g_ptr_array_index(results, i);
		if (issued->error != NULL)
			continue;
		if (!vc_issuer_sign(issuer, &reqs[i], issued, &issued->error)) {
			g_autoptr(GError) local = NULL;
			if (!vc_store_cert_abandon(issuer->store, issued->serial,
						   issued->error->message, &local)) {
				g_warning("serial %s stays PENDING until the next batch: %s",
					  issued->serial, local->message);
				g_ptr_array_add(issuer->orphans, g_strdup(issued->serial));
			}
		}
	}
	vc_crash_point("issue-after-sign");

	/* 3. every DER durable in one commit; only then are certificates handed out */
	if (!vc_store_begin(issuer->store, error)) {
		vc_issuer_orphan_all(issuer, results);
		return NULL;
	}
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
	vc_crash_point("issue-before-store");
	if (!commit)
		return g_steal_pointer(&results);
	if (!vc_store_commit(issuer->store, error)) {
		vc_store_rollback(issuer->store);
		/* signed, never handed out, and PENDING in the store: the batch
		 * is retried under new serials, these are abandoned */
		vc_issuer_orphan_all(issuer, results);
		return NULL;
	}
	vc_crash_point("issue-after-store");
	return g_steal_pointer(&results);
}

GPtrArray *
vc_issuer_issue_batch(VcIssuer *issuer, const VcIssueRequest *reqs, guint n_reqs, GError **error)
{
	return vc_issuer_issue_batch_full(issuer, reqs, n_reqs, TRUE, error);
}

GPtrArray *
vc_issuer_issue_batch_open(VcIssuer *issuer, const VcIssueRequest *reqs, guint n_reqs,
			   GError **error)
{
	return vc_issuer_issue_batch_full(issuer, reqs, n_reqs, FALSE, error);
}

/* The DER of every certificate in RESULTS into the open transaction again:
 * for a caller of vc_issuer_issue_batch_open() whose commit failed, and who
 * keeps the certificates to commit with its next transaction. */
gboolean
vc_issuer_write_issued(VcIssuer *issuer, GPtrArray *results, GError **error)
{
	for (guint i = 0; i < results->len; i++) {
		VcIssued *issued = g_ptr_array_index(results, i);
		g_autoptr(GBytes) der = NULL;
		if (issued->error != NULL || issued->cert == NULL)
			continue;
		der = vc_cert_to_der(issued->cert, error);
		if (der == NULL ||
		    !vc_store_cert_mark_issued(issuer->store, issued->serial, der, error))
			return FALSE;
	}
	return TRUE;
}

/* Every serial of RESULTS PENDING for good: abandoned by the next batch. */
static void
vc_issuer_orphan_all(VcIssuer *issuer, GPtrArray *results)
{
	for (guint i = 0; i < results->len; i++) {
		VcIssued *issued = g_ptr_array_index(results, i);
		if (issued->serial != NULL)
			g_ptr_array_add(issuer->orphans, g_strdup(issued->serial));
	}
}

/* In the open transaction: every orphan ABANDONED (listed on the CRL like
 * any abandoned serial). One no longer PENDING (a restart resolved it) is
 * skipped. */
static gboolean
vc_issuer_abandon_orphans(VcIssuer *issuer, GError **error)
{
	for (guint i = 0; i < issuer->orphans->len; i++) {
		const char *serial = g_ptr_array_index(issuer->orphans, i);
		g_autoptr(VcCertRecord) rec = vc_store_cert_get(issuer->store, serial, NULL);
		if (rec == NULL || rec->status != VC_CERT_STATUS_PENDING)
			continue;
		if (!vc_store_cert_abandon(issuer->store, serial,
					   "its issuance batch could not be completed (the store "
					   "refused a write)",
					   error))
			return FALSE;
		g_message("serial %s abandoned: its issuance batch could not be completed", serial);
	}
	return TRUE;
}

gboolean
vc_issuer_revoke(VcIssuer *issuer, const char *serial, int reason, GError **error)
{
	vc_crash_point("offline-revoke-before-store");
	return vc_store_cert_revoke(issuer->store, serial, reason,
				    g_get_real_time() / G_USEC_PER_SEC, error);
}

/* How far thisUpdate goes back for relying parties with skewed clocks. */
#define VC_ISSUER_CRL_BACKDATE_S 60

/* The entries of the next CRL (pointing into RET_STORAGE and ROWS), its
 * thisUpdate and its number. */
static GPtrArray *
vc_issuer_crl_entries(VcIssuer *issuer, GArray **ret_rows, VcCrlEntry **ret_storage,
		      gint64 *ret_this_update, guint64 *ret_number, GError **error)
{
	const char *ca_id = vc_ca_get_id(issuer->ca);
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	gint64 this_update = now - VC_ISSUER_CRL_BACKDATE_S;
	guint64 recorded = 0;
	g_autoptr(GArray) rows = NULL;
	g_autoptr(GPtrArray) entries = NULL;
	g_autofree VcCrlEntry *storage = NULL;

	rows = vc_store_crl_list(issuer->store, ca_id, error);
	if (rows == NULL)
		return NULL;
	/* RFC 5280 5.1.2.4: thisUpdate is when this information was current,
	 * so no entry may be dated after it: thisUpdate moves up to the newest
	 * revocation (up to now) */
	for (guint i = 0; i < rows->len; i++) {
		VcStoreCrlRow *rec = &g_array_index(rows, VcStoreCrlRow, i);
		this_update = MAX(this_update, MIN(rec->revoked_at, now));
	}
	/* one allocation for all entries: the array holds pointers into it */
	storage = g_new0(VcCrlEntry, MAX(rows->len, 1));
	entries = g_ptr_array_sized_new(rows->len);
	for (guint i = 0; i < rows->len; i++) {
		VcStoreCrlRow *rec = &g_array_index(rows, VcStoreCrlRow, i);
		VcCrlEntry *entry = &storage[i];
		entry->serial_hex = rec->serial;
		/* a revocation recorded in the future (the clock stepped back
		 * since) is listed as of now */
		entry->revoked_at = MIN(rec->revoked_at, this_update);
		entry->reason = rec->reason < 0 ? VC_REASON_UNSPECIFIED : rec->reason;
		g_ptr_array_add(entries, entry);
	}
	/* RFC 5280 5.2.3: the number never goes back, not even when the store
	 * was restored from an older backup: above both the store's count and
	 * the one recorded beside the CA, recorded there before it is used */
	if (!vc_ca_crl_number_load(issuer->ca, &recorded, error) ||
	    !vc_store_crl_next_number_above(issuer->store, ca_id, recorded, ret_number, error))
		return NULL;
	vc_crash_point("crl-number-taken");
	if (!vc_ca_crl_number_save(issuer->ca, *ret_number, error))
		return NULL;
	vc_crash_point("crl-number-written");
	*ret_rows = g_steal_pointer(&rows);
	*ret_storage = g_steal_pointer(&storage);
	*ret_this_update = this_update;
	return g_steal_pointer(&entries);
}

X509_CRL *
vc_issuer_make_crl(VcIssuer *issuer, GError **error)
{
	g_autoptr(GArray) rows = NULL;
	g_autofree VcCrlEntry *storage = NULL;
	g_autoptr(GPtrArray) entries = NULL;
	gint64 this_update = 0;
	guint64 number = 0;

	entries = vc_issuer_crl_entries(issuer, &rows, &storage, &this_update, &number, error);
	if (entries == NULL)
		return NULL;
	/* nextUpdate as configured (crl-validity), counted from thisUpdate */
	return vc_ca_sign_crl(issuer->ca, entries, number, this_update,
			      this_update + issuer->config->crl_validity_s, error);
}

GBytes *
vc_issuer_make_crl_der(VcIssuer *issuer, gint64 *ret_this_update, gint64 *ret_next_update,
		       guint *ret_entries, GError **error)
{
	g_autoptr(GArray) rows = NULL;
	g_autofree VcCrlEntry *storage = NULL;
	g_autoptr(GPtrArray) entries = NULL;
	gint64 this_update = 0;
	guint64 number = 0;
	GBytes *der;

	entries = vc_issuer_crl_entries(issuer, &rows, &storage, &this_update, &number, error);
	if (entries == NULL)
		return NULL;
	der = vc_ca_sign_crl_der(issuer->ca, entries, number, this_update,
				 this_update + issuer->config->crl_validity_s, error);
	if (der == NULL)
		return NULL;
	if (ret_this_update != NULL)
		*ret_this_update = this_update;
	if (ret_next_update != NULL)
		*ret_next_update = this_update + issuer->config->crl_validity_s;
	if (ret_entries != NULL)
		*ret_entries = entries->len;
	return der;
}
