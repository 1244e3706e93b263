/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "vc-ca.h"
#include "vc-config.h"
#include "vc-store.h"

G_BEGIN_DECLS

/* The issuance path shared by the daemon and the offline CLI: name checks,
 * key generation, record before sign (the serial and intent are durable in
 * the store before the CA signs), signing with post-issuance verification,
 * then the DER stored. A crash at any point leaves either nothing, a PENDING
 * row (resolved to ABANDONED and listed on the CRL by vc_store_recover()), or
 * a VALID row: never a valid certificate the store does not know. */

typedef struct {
	const char *vm_uuid;
	const char *vm_name;
	const char *const *dns_names;
	VcKeyType key_type;   /* used when PUBLIC_KEY is NULL */
	EVP_PKEY *public_key; /* guest keygen: the guest's key, of KEY_TYPE; NULL: host keygen */
	gint64 lifetime_s;    /* 0: the configured default; else 1m..397d */
	/* the placement it is issued under (vc_placement_to_canonical()),
	 * recorded with the intent; NULL: not recorded (manual issuance) */
	const char *placement;
} VcIssueRequest;

/* A request that can never succeed as it stands (a name invalid or outside
 * the CA's constraints, a lifetime outside 1m..397d, a CA chain that expires
 * within a minute, a public key other than KEY_TYPE asks for) fails with
 * VC_ERROR_POLICY: retrying it unchanged is pointless. The notAfter is
 * clamped to vc_ca_get_not_after(). */

typedef struct {
	char *serial; /* lower-case hex */
	X509 *cert;
	EVP_PKEY *key; /* host keygen only; never stored by virtcert */
	gint64 not_before;
	gint64 not_after;
	GError *error; /* set instead of the above in batch results */
} VcIssued;

void vc_issued_free(VcIssued *issued);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcIssued, vc_issued_free)

typedef struct _VcIssuer VcIssuer;

/* CONFIG, CA and STORE are borrowed and must outlive the issuer. */
VcIssuer *vc_issuer_new(const VcConfig *config, VcCa *ca, VcStore *store);
void vc_issuer_free(VcIssuer *issuer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcIssuer, vc_issuer_free)

VcIssued *vc_issuer_issue(VcIssuer *issuer, const VcIssueRequest *req, GError **error);
/* Group commit: all intents of the batch in one transaction, then all signed
 * certificates in another. Returns one VcIssued per request, in order; a
 * request that failed has ->error set and does not stop the others. */
GPtrArray *vc_issuer_issue_batch(VcIssuer *issuer, const VcIssueRequest *reqs, guint n_reqs,
				 GError **error);
/* The same, but the signed certificates are stored in a transaction left
 * open: the caller writes what refers to them (the VMs' rows) and commits
 * (vc_store_commit()) or rolls back, so a crash leaves either both or
 * neither, never a VALID certificate that no row knows (a rollback or a
 * crash leaves the serials PENDING: abandoned and on the CRL at the next
 * start). On NULL no transaction is open. */
GPtrArray *vc_issuer_issue_batch_open(VcIssuer *issuer, const VcIssueRequest *reqs, guint n_reqs,
				      GError **error);
/* The certificates of RESULTS (from vc_issuer_issue_batch_open()) written
 * into the open transaction again, after the caller's commit of them failed
 * (disk full, read-only): the caller keeps them and commits them with its
 * next transaction. */
gboolean vc_issuer_write_issued(VcIssuer *issuer, GPtrArray *results, GError **error);
/* Durable revocation (synchronous=FULL commit) before it returns. */
gboolean vc_issuer_revoke(VcIssuer *issuer, const char *serial, int reason, GError **error);
/* A new CRL from the store, with the next CRL number. thisUpdate is a
 * minute back, or the newest revocation if that is later (no entry is
 * dated after thisUpdate); nextUpdate is thisUpdate + crl-validity. */
X509_CRL *vc_issuer_make_crl(VcIssuer *issuer, GError **error);
/* The same, DER-encoded for publishing, faster (vc_ca_sign_crl_der()); the
 * outputs (nullable) are written on success. */
GBytes *vc_issuer_make_crl_der(VcIssuer *issuer, gint64 *ret_this_update, gint64 *ret_next_update,
			       guint *ret_entries, GError **error);

/* The CRL and OCSP URLs the configuration gives for this CA ("{ca}" replaced). */
char *vc_issuer_get_crl_url(VcIssuer *issuer);

G_END_DECLS
