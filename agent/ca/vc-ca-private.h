/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by the files of agent/ca only. */

#include <json-glib/json-glib.h>
#include <openssl/x509v3.h>

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
	gint64 not_after;	    /* the earliest notAfter of the chain, root included */
	const EVP_MD *md;	    /* NULL for Ed25519 */
	X509_STORE *store;	    /* the root as the only trust anchor */
	STACK_OF(X509) * untrusted; /* the chain, for path building */
	/* Post-issuance check: the intermediate as the (partial-chain) anchor.
	 * Its own path to the root, and a probe leaf's through it (path
	 * length and name constraints above the CA), are verified once in
	 * vc_ca_load(); repeating
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
/* vc_serial_generate() as an ASN1_INTEGER: the serial of every certificate
 * a CA here makes for itself or a host. */
ASN1_INTEGER *vc_serial_generate_integer(GError **error);
/* RFC 2253 text of NAME, "?" when it cannot be printed. */
char *vc_x509_name_to_string(const X509_NAME *name);
/* O=virtcert, CN=CN */
X509_NAME *vc_x509_name_from_cn(const char *cn, GError **error);
/* A dNSName or URI GENERAL_NAME holding VALUE. */
GENERAL_NAME *vc_general_name_new_ia5(int type, const char *value);
/* The IA5String of a GENERAL_NAME as C string; NULL when it holds a NUL
 * (a classic way to smuggle "good.example\0.evil" past a check). */
char *vc_general_name_get_ia5(const ASN1_IA5STRING *s);
ASN1_TIME *vc_asn1_time_from_unix(gint64 t, GError **error);
/* RFC 5280 4.2.1.1 authorityKeyIdentifier (keyid = SKI), not critical. */
X509_EXTENSION *vc_ext_aki_from_ski(const ASN1_OCTET_STRING *ski, GError **error);
/* A CRL v2 as vc_ca_sign_crl() makes it, for an ISSUER whose KEY is at hand
 * (the host CA): the issuer must carry a subjectKeyIdentifier. */
X509_CRL *vc_crl_sign_with_key(X509 *issuer, EVP_PKEY *key, GPtrArray *entries, guint64 crl_number,
			       gint64 this_update, gint64 next_update, GError **error);
/* A DigestSign context with the CA key: a copy of the one prepared at load
 * time, or a fresh one; NULL on failure (the OpenSSL error queue says why). */
EVP_MD_CTX *vc_ca_sign_ctx_new(VcCa *ca);
/* PATH (vc_file_read(), at most MAX octets) as a memory BIO over its
 * contents, which are returned in *RET_DATA (and *RET_LEN, nullable) and
 * must outlive the BIO. */
BIO *vc_file_read_bio(const char *path, gsize max, char **ret_data, gsize *ret_len, GError **error);
/* Appends every CRL in PATH to OUT (of X509_CRL*): PEM (one or more) or one
 * DER CRL. WHAT ("owner CRL") names the file in the error; NULL: its path
 * alone. */
gboolean vc_crl_load_all(const char *path, const char *what, GPtrArray *out, GError **error);
/* Signs with the CA key, reusing the prepared DigestSign context. */
gboolean vc_ca_sign_item(VcCa *ca, X509 *cert, X509_CRL *crl, GError **error);
/* RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING. */
ASN1_OCTET_STRING *vc_ca_ski_from_pubkey(X509_PUBKEY *pub, GError **error);

/* Opens the hook's answer object (vc_host_placement_answer()) with its
 * allow, reason, vm and restricted members; the caller may add members and
 * ends the object. */
void vc_host_placement_answer_begin(JsonBuilder *b, gboolean allow, const char *reason,
				    const char *vm_name, const VcPolicy *policy);

/* Encodes VALUE (of NID's type) straight into CERT's extension list. */
gboolean vc_ca_add_ext_i2d(X509 *cert, int nid, gboolean critical, void *value, GError **error);

G_END_DECLS
