/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by the files of agent/ca only. */

#include "vc-ca.h"

G_BEGIN_DECLS

struct _VcCa {
	char *dir;
	EVP_PKEY *key;	  /* intermediate private key */
	X509 *cert;	  /* intermediate */
	X509 *root;	  /* trust anchor; NULL if imported without one */
	GPtrArray *chain; /* of X509*: intermediate then issuers, no root */
	GStrv permitted;  /* dNSName subtrees from the certificate */
	char *id;
	const EVP_MD *md;	    /* NULL for Ed25519 */
	X509_STORE *store;	    /* the root as the only trust anchor */
	STACK_OF(X509) * untrusted; /* the chain, for path building */
	/* Post-issuance check: the intermediate as the (partial-chain) anchor.
	 * Its own path to the root is verified once in vc_ca_load(); repeating
	 * the root's signature over the same immutable intermediate for every
	 * leaf would double the cost of issuance and prove nothing new. */
	X509_STORE *issue_store;
	/* Extensions identical in every leaf, encoded once (X509_add_ext copies). */
	X509_EXTENSION *ext_bc;	    /* CA:FALSE, critical */
	X509_EXTENSION *ext_ku;	    /* digitalSignature, critical */
	X509_EXTENSION *ext_ku_rsa; /* digitalSignature + keyEncipherment, critical */
	X509_EXTENSION *ext_eku;    /* serverAuth + clientAuth */
	X509_EXTENSION *ext_aki;    /* keyid = the intermediate's SKI */
	EVP_MD_CTX *sign_template;  /* DigestSign initialised with the CA key */
};

void vc_crypto_set_error(GError **error, const char *what);
const EVP_MD *vc_key_get_md(EVP_PKEY *key);
char *vc_hex_encode(const guint8 *data, gsize len);
ASN1_INTEGER *vc_serial_from_hex(const char *hex, GError **error);
ASN1_TIME *vc_asn1_time_from_unix(gint64 t, GError **error);
/* Signs with the CA key, reusing the prepared DigestSign context. */
gboolean vc_ca_sign_item(VcCa *ca, X509 *cert, X509_CRL *crl, GError **error);

G_END_DECLS
