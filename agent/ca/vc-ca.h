/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "vc-autoptr.h"
#include "vc-policy.h"
#include "vc-reason.h"

G_BEGIN_DECLS

/* ---- keys and encoding helpers -------------------------------------- */

EVP_PKEY *vc_key_generate(VcKeyType type, GError **error);
/* The VcKeyType of a key (for a guest CSR's public key): EC P-256, Ed25519,
 * or RSA of at least 2048 bits (reported as VC_KEY_TYPE_RSA_3072); any other
 * key is VC_ERROR_INVALID_DATA. */
gboolean vc_key_get_type(EVP_PKEY *key, VcKeyType *ret_type, GError **error);
/* Does KEY have the type and size WANT names (EC P-256, Ed25519, RSA of
 * exactly 3072 bits)? VC_ERROR_POLICY naming both when not. */
gboolean vc_key_check_type(EVP_PKEY *key, VcKeyType want, GError **error);
/* PEM (PKCS#8, unencrypted) of a private key; the caller wipes it with
 * vc_secret_free(). */
char *vc_key_to_pem(EVP_PKEY *key, GError **error);
EVP_PKEY *vc_key_from_pem(const char *pem, gsize len, GError **error);
/* Writes a private key PEM with mode 0600 atomically (temp + fsync + rename). */
gboolean vc_key_save(EVP_PKEY *key, const char *path, GError **error);
EVP_PKEY *vc_key_load(const char *path, GError **error);
/* Wipes then frees a NUL-terminated secret string. */
void vc_secret_free(char *secret);

char *vc_cert_to_pem(X509 *cert, GError **error);
X509 *vc_cert_from_pem(const char *pem, gsize len, GError **error);
X509 *vc_cert_from_der(const guint8 *der, gsize len, GError **error);
GBytes *vc_cert_to_der(X509 *cert, GError **error);
/* Every certificate in a PEM file, in file order; at least one. */
GPtrArray *vc_cert_load_pem_file(const char *path,
				 GError **error); /* of X509*, freed with X509_free */
/* Lower-case hex of the serial, without leading zero octets removed. */
char *vc_cert_get_serial_hex(X509 *cert);
char *vc_cert_get_fingerprint_sha256(X509 *cert); /* lower-case hex, no colons */
/* The contents of PATH (NUL-terminated; RET_LEN, nullable, excludes the
 * NUL): VC_ERROR_NOT_FOUND when it does not exist, VC_ERROR_IO when it
 * cannot be read, VC_ERROR_INVALID_DATA when it is larger than MAX octets
 * (the octets read are wiped first: PATH may hold a key). */
char *vc_file_read(const char *path, gsize max, gsize *ret_len, GError **error);
/* Writes DATA to PATH atomically with MODE (temp file, fsync, rename, fsync dir). */
gboolean vc_file_write_atomic(const char *path, const char *data, gsize len, int mode,
			      GError **error);

/* 16 random octets (CSPRNG), top bit cleared so the INTEGER is positive
 * (CA/B BR 7.1: at least 64 bits of entropy), not all zero. Lower-case hex. */
char *vc_serial_generate(GError **error);

/* ---- the restricted intermediate CA --------------------------------- */

/* Files under CA_DIR (created 0700):
 *   ca.key     intermediate private key, 0600
 *   ca.pem     intermediate certificate (after init or import)
 *   chain.pem  intermediate followed by its issuers up to the root
 *   root.pem   the root (self-signed mode, or from import)
 *   ca.csr     the intermediate's CSR (CSR mode)
 * In self-signed mode the root key signs the intermediate and is wiped: it
 * never touches the disk. */
typedef struct {
	const char *const *permit; /* dNSName subtrees, at least one */
	VcKeyType key_type;	   /* intermediate key (and root in self-signed mode) */
	const char *common_name;   /* subject CN of the intermediate; NULL: default */
	gint64 lifetime_s;	   /* intermediate lifetime; 0: 5 years */
	gboolean force;		   /* overwrite an existing CA */
} VcCaInitOptions;

gboolean vc_ca_init_self_signed(const char *ca_dir, const VcCaInitOptions *opts, GError **error);
/* Makes the key and writes the CSR (carrying the requested extensions) to
 * CA_DIR/ca.csr and, if CSR_OUT is not NULL, there too. */
gboolean vc_ca_init_csr(const char *ca_dir, const VcCaInitOptions *opts, const char *csr_out,
			GError **error);
/* Installs a signed intermediate (PEM: intermediate first, then optionally
 * its issuers). Checks that it matches ca.key, is a CA with pathlen 0,
 * critical name constraints with permitted dNSNames, keyCertSign. With
 * ROOT_PATH (or a self-signed root last in the file) the chain is verified
 * up to that root, and so is a probe leaf signed by the CA: a root whose
 * path length or name constraints forbid the CA's leaves is refused
 * (VC_ERROR_CRYPTO) before anything is written. vc_ca_load() repeats the
 * probe on every load. */
gboolean vc_ca_import(const char *ca_dir, const char *cert_path, const char *root_path,
		      GError **error);

typedef struct _VcCa VcCa;

VcCa *vc_ca_load(const char *ca_dir, GError **error);
void vc_ca_free(VcCa *ca);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcCa, vc_ca_free)

X509 *vc_ca_get_cert(VcCa *ca); /* borrowed */
X509 *vc_ca_get_root(VcCa *ca); /* borrowed; NULL if imported without a root */
/* Intermediate then issuers (no root), borrowed. */
GPtrArray *vc_ca_get_chain(VcCa *ca);
/* Permitted dNSName subtrees read from the certificate (borrowed, NULL-terminated). */
const char *const *vc_ca_get_permitted(VcCa *ca);
/* A short stable id: hex of the first 8 octets of the SKI. Used in CRL URLs. */
const char *vc_ca_get_id(VcCa *ca);
/* Unix time at which the chain stops being valid: the earliest notAfter of
 * the intermediate, its issuers and the root. No leaf is issued beyond it. */
gint64 vc_ca_get_not_after(VcCa *ca);

/* Refuses (VC_ERROR_POLICY) any name that is not a valid DNS name or lies
 * outside the permitted subtrees, naming it. */
gboolean vc_ca_check_names(VcCa *ca, const char *const *names, GError **error);

typedef struct {
	const char *serial_hex;	      /* chosen and recorded by the caller */
	const char *vm_uuid;	      /* SAN URI urn:uuid:<uuid> */
	const char *const *dns_names; /* at least one */
	EVP_PKEY *public_key;	      /* subject public key */
	gint64 not_before;	      /* unix seconds */
	gint64 not_after;
	const char *crl_url;	    /* NULL: no CDP */
	const char *ocsp_url;	    /* NULL: no OCSP in the AIA */
	const char *ca_issuers_url; /* NULL: no caIssuers in the AIA */
	gboolean empty_subject;	    /* empty subject, SAN critical; else CN = first name when it
				       fits in 64 octets (else the subject is empty too) */
} VcLeafRequest;

/* Checks the names, signs, then verifies the result against the chain with
 * X509_V_FLAG_X509_STRICT. A leaf that fails verification is never returned.
 * A request that can never be signed (a name outside the constraints, a
 * notAfter beyond vc_ca_get_not_after()) fails with VC_ERROR_POLICY. */
X509 *vc_ca_issue_leaf(VcCa *ca, const VcLeafRequest *req, GError **error);
/* Verification of any leaf against this CA's chain at time NOW (0: now). */
gboolean vc_ca_verify_leaf(VcCa *ca, X509 *leaf, gint64 now, GError **error);

typedef struct {
	const char *serial_hex;
	gint64 revoked_at;
	int reason; /* VcRevocationReason */
} VcCrlEntry;

/* CRL v2 (RFC 5280 5): issuer = intermediate, AKI, CRL number, reason codes
 * (omitted for unspecified, 5.3.1). ENTRIES is of VcCrlEntry*. */
X509_CRL *vc_ca_sign_crl(VcCa *ca, GPtrArray *entries, guint64 crl_number, gint64 this_update,
			 gint64 next_update, GError **error);
/* The last CRL number this CA handed out, as recorded in CA_DIR/crl-number
 * (0 when none is recorded for this CA). Kept apart from the store so that a
 * store restored from an older backup cannot make the number go back: the
 * next number is above both (RFC 5280 5.2.3). Saved, synced, before the CRL
 * carrying it is handed out. */
gboolean vc_ca_crl_number_load(VcCa *ca, guint64 *ret_number, GError **error);
gboolean vc_ca_crl_number_save(VcCa *ca, guint64 number, GError **error);
/* The same CRL, DER-encoded, for publishing: the entries are encoded once
 * (vc_ca_sign_crl() then vc_crl_to_der() encodes them twice more). */
GBytes *vc_ca_sign_crl_der(VcCa *ca, GPtrArray *entries, guint64 crl_number, gint64 this_update,
			   gint64 next_update, GError **error);
char *vc_crl_to_pem(X509_CRL *crl, GError **error);
/* A CRL file, PEM or DER (as a CRL distribution point serves it), of at most
 * 1 MiB. VC_ERROR_NOT_FOUND when PATH does not exist. */
X509_CRL *vc_crl_load(const char *path, GError **error);
GBytes *vc_crl_to_der(X509_CRL *crl, GError **error);

/* ---- OCSP (agent/ca/vc-ca-ocsp.c) ------------------------------------ */

/* A delegated OCSP responder certificate for PUBLIC_KEY (RFC 6960 4.2.2.2):
 * issued by this CA, CA:FALSE, digitalSignature, EKU id-kp-OCSPSigning,
 * id-pkix-ocsp-nocheck, valid [NOT_BEFORE, NOT_AFTER], verified against the
 * chain before it is returned. */
X509 *vc_ca_issue_ocsp_responder(VcCa *ca, EVP_PKEY *public_key, gint64 not_before,
				 gint64 not_after, GError **error);
/* Signs BS with the CA key itself (responderID byKey, no certificates). */
gboolean vc_ca_sign_ocsp(VcCa *ca, OCSP_BASICRESP *bs, GError **error);

#ifdef VC_TEST_SEAMS
/* Raw signing speed of the key type (EVP_DigestSign over 256 octets), for
 * benchmarks: signatures per second over about SECONDS. */
double vc_bench_raw_sign_per_s(VcKeyType type, double seconds, GError **error);
#endif

G_END_DECLS
