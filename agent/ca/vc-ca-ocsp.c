/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the OCSP responder needs from the CA: a delegated responder
 * certificate (RFC 6960 4.2.2.2) and, when configured, signatures with the
 * CA key itself. The responder (agent/issuer/vc-ocsp.c) does the rest. */
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "vc-ca-private.h"
#include "vc-ca.h"
#include "vc-error.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ASN1_NULL, ASN1_NULL_free)

X509 *
vc_ca_issue_ocsp_responder(VcCa *ca, EVP_PKEY *public_key, gint64 not_before, gint64 not_after,
			   GError **error)
{
	g_autoptr(X509) cert = X509_new();
	g_autoptr(ASN1_INTEGER) serial = vc_serial_generate_integer(error);
	g_autoptr(ASN1_TIME) nb = NULL;
	g_autoptr(ASN1_TIME) na = NULL;
	g_autoptr(X509_NAME) subject = NULL;
	g_autoptr(EXTENDED_KEY_USAGE) eku = sk_ASN1_OBJECT_new_null();
	g_autoptr(ASN1_NULL) nocheck = ASN1_NULL_new();
	g_autoptr(ASN1_OCTET_STRING) ski = NULL;
	g_autofree char *cn = g_strdup_printf("virtcert OCSP responder %s", ca->id);

	if (serial == NULL)
		return NULL;
	if (not_after <= not_before) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "notAfter is not after notBefore");
		return NULL;
	}
	nb = vc_asn1_time_from_unix(not_before, error);
	na = nb != NULL ? vc_asn1_time_from_unix(not_after, error) : NULL;
	subject = na != NULL ? vc_x509_name_from_cn(cn, error) : NULL;
	if (subject == NULL)
		return NULL;
	if (!X509_set_version(cert, X509_VERSION_3) || !X509_set_serialNumber(cert, serial) ||
	    !X509_set_subject_name(cert, subject) ||
	    !X509_set_issuer_name(cert, X509_get_subject_name(ca->cert)) ||
	    !X509_set1_notBefore(cert, nb) || !X509_set1_notAfter(cert, na) ||
	    !X509_set_pubkey(cert, public_key)) {
		vc_crypto_set_error(error, "cannot build the OCSP responder certificate");
		return NULL;
	}
	ski = vc_ca_ski_from_pubkey(X509_get_X509_PUBKEY(cert), error);
	if (ski == NULL)
		return NULL;
	/* RFC 6960 4.2.2.2: id-kp-OCSPSigning in the EKU of a delegated
	 * responder; 4.2.2.2.1: id-pkix-ocsp-nocheck, so that clients do not
	 * ask about the responder's own status (its short life is the
	 * revocation). Not a CA, digitalSignature only. */
	sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_OCSP_sign));
	if (!X509_add_ext(cert, ca->ext_bc, -1) || !X509_add_ext(cert, ca->ext_ku, -1) ||
	    !vc_ca_add_ext_i2d(cert, NID_ext_key_usage, FALSE, eku, error) ||
	    !vc_ca_add_ext_i2d(cert, NID_id_pkix_OCSP_noCheck, FALSE, nocheck, error) ||
	    !vc_ca_add_ext_i2d(cert, NID_subject_key_identifier, FALSE, ski, error) ||
	    !X509_add_ext(cert, ca->ext_aki, -1)) {
		if (error != NULL && *error == NULL)
			vc_crypto_set_error(error, "cannot add extension");
		return NULL;
	}
	if (!vc_ca_sign_item(ca, cert, NULL, error))
		return NULL;
	if (!vc_ca_verify_leaf(ca, cert, 0, error)) {
		g_prefix_error(error, "the new OCSP responder certificate failed verification: ");
		return NULL;
	}
	return g_steal_pointer(&cert);
}

gboolean
vc_ca_sign_ocsp(VcCa *ca, OCSP_BASICRESP *bs, GError **error)
{
	/* RFC 5019 2.2.3: responderID byKey; the CA's own certificate is what
	 * the client already has, so none is included */
	if (OCSP_basic_sign(bs, ca->cert, ca->key, ca->md, NULL, OCSP_NOCERTS | OCSP_RESPID_KEY) !=
	    1) {
		vc_crypto_set_error(error, "cannot sign the OCSP response with the CA key");
		return FALSE;
	}
	return TRUE;
}
