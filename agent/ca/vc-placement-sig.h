/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Signed placement: the VM's owner signs the canonical form of its
 * placement rules (policy/vc-signed-placement.h) with an owner key whose
 * certificate chains to an owner CA the hosts trust ([placement] owner-ca),
 * so that whoever can edit the domain's metadata cannot weaken the
 * placement unnoticed. The signature is a detached CMS SignedData (RFC 5652)
 * with signed attributes (content type, message digest, signing time), the
 * signer's certificate inside, over the canonical bytes as they are
 * (CMS_BINARY).
 *
 * The one place a signature is checked: the daemon's placement-check (the
 * hook's question), the engine before it issues or keeps a certificate, and
 * `virtcert placement verify` all call vc_placement_sig_verify().
 */

#include <glib.h>
#include <json-glib/json-glib.h>
#include <openssl/x509.h>

#include "vc-autoptr.h"
#include "vc-domain-xml.h"
#include "vc-policy.h"
#include "vc-signed-placement.h"

G_BEGIN_DECLS

/* The owner CAs this host trusts, and their CRLs: read from CA_PATH (PEM,
 * one or more CA certificates) and CRL_PATH (nullable: none; PEM with one
 * or more CRLs, or one DER CRL), and read again whenever either file
 * changes, so that a new CRL counts at the next check. */
typedef struct _VcOwnerTrust VcOwnerTrust;

VcOwnerTrust *vc_owner_trust_new(const char *ca_path, const char *crl_path);
void vc_owner_trust_free(VcOwnerTrust *trust);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcOwnerTrust, vc_owner_trust_free)
/* Reads the files again if they changed since the last call (first call:
 * reads them). VC_ERROR_NOT_FOUND / VC_ERROR_INVALID_DATA naming the file
 * when the owner CA bundle is missing or holds no CA certificate, or the
 * CRL file is unreadable. */
gboolean vc_owner_trust_refresh(VcOwnerTrust *trust, GError **error);

/* Signs CONTENT (the canonical form) with KEY and CERT; EXTRA (nullable, of
 * X509*) are intermediates to carry along. Returns the DER of a detached
 * CMS SignedData. VC_ERROR_CRYPTO when KEY does not match CERT. */
GBytes *vc_placement_sig_sign(EVP_PKEY *key, X509 *cert, GPtrArray *extra, GBytes *content,
			      GError **error);

/* Checks SP's signature for the VM VM_UUID at NOW (unix seconds; 0: now).
 * On success RET_SIGNER (nullable) receives the signer's subject (RFC 2253).
 * Fails with VC_ERROR_POLICY and one of these messages:
 *   "the placement is not signed"
 *   "the placement signature is not a CMS SignedData: ..."
 *   "the placement does not match its signature (altered after signing)"
 *   "the placement was signed by \"SUBJECT\", which no trusted owner CA
 *    issued: ..."
 *   "the owner certificate that signed the placement (\"SUBJECT\", serial
 *    S) is revoked by its owner CA"
 *   "the owner certificate that signed the placement (\"SUBJECT\") expired
 *    on T" (or is not valid before T)
 *   "the placement is signed for VM U1, not for this VM (U2)"
 *   "the placement signature expired on T (not-after)"
 * and VC_ERROR_INVALID_DATA / VC_ERROR_NOT_FOUND when the trust files are
 * unusable (vc_owner_trust_refresh()). */
gboolean vc_placement_sig_verify(VcOwnerTrust *trust, const VcSignedPlacement *sp,
				 const char *vm_uuid, gint64 now, char **ret_signer,
				 GError **error);

/* The host's rule for a VM a policy selects, INFO as parsed from its domain
 * XML: a signed placement must verify (TRUST NULL: no owner CA configured,
 * a signature cannot be checked and is not); an unsigned one is refused
 * when REQUIRE_SIGNED. TRUE when allowed; RET_REASON (nullable) receives one
 * line for humans either way. */
gboolean vc_placement_sig_check(VcOwnerTrust *trust, gboolean require_signed,
				const VcDomainInfo *info, gint64 now, char **ret_reason);

/* The daemon's placement-check before the placement itself is judged: a
 * refusal answer {"allow": false, "reason": "...", "vm": NAME,
 * "restricted": bool, "signature": "refused"} when a policy selects the VM
 * of XML and vc_placement_sig_check() refuses it, else NULL (no refusal,
 * or an XML or policy error vc_host_placement_answer() reports). */
JsonNode *vc_placement_sig_answer(VcOwnerTrust *trust, gboolean require_signed, VcPolicySet *set,
				  const char *xml, gboolean issue_all, gint64 default_lifetime,
				  gint64 now);

G_END_DECLS
