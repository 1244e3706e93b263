/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CRL v2 (RFC 5280 5): signing for the VM CA and the host CA, and loading. */
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "vc-ca.h"
#include "vc-ca-private.h"
#include "vc-error.h"

/* The reasonCode extensions (RFC 5280 5.3.1) of one CRL, each encoded once
 * and copied into the entries that carry it: with 100,000 entries, encoding
 * each anew is a good part of a rebuild. */
#define VC_CRL_REASON_MAX 10
typedef struct {
	X509_EXTENSION *ext[VC_CRL_REASON_MAX + 1];
} VcCrlReasonExts;

static void
vc_crl_reason_exts_clear(VcCrlReasonExts *r)
{
	for (int i = 0; i <= VC_CRL_REASON_MAX; i++)
		X509_EXTENSION_free(r->ext[i]);
}

static X509_EXTENSION *
vc_crl_reason_ext(VcCrlReasonExts *r, int reason)
{
	g_autoptr(ASN1_ENUMERATED) code = NULL;

	if (reason < 0 || reason > VC_CRL_REASON_MAX)
		return NULL;
	if (r->ext[reason] != NULL)
		return r->ext[reason];
	code = ASN1_ENUMERATED_new();
	if (code == NULL || !ASN1_ENUMERATED_set(code, reason))
		return NULL;
	r->ext[reason] = X509V3_EXT_i2d(NID_crl_reason, 0, code);
	return r->ext[reason];
}

static gboolean
vc_crl_add_revoked(X509_CRL *crl, const VcCrlEntry *entry, VcCrlReasonExts *reasons, GError **error)
{
	g_autoptr(X509_REVOKED) rev = X509_REVOKED_new();
	g_autoptr(ASN1_INTEGER) serial = vc_serial_from_hex(entry->serial_hex, error);
	g_autoptr(ASN1_TIME) when = NULL;

	if (serial == NULL)
		return FALSE;
	if (vc_reason_to_string(entry->reason) == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "invalid revocation reason %d for %s",
			    entry->reason, entry->serial_hex);
		return FALSE;
	}
	when = vc_asn1_time_from_unix(entry->revoked_at, error);
	if (when == NULL)
		return FALSE;
	if (!X509_REVOKED_set_serialNumber(rev, serial) ||
	    !X509_REVOKED_set_revocationDate(rev, when)) {
		vc_crypto_set_error(error, "cannot build CRL entry");
		return FALSE;
	}
	/* RFC 5280 5.3.1: the reasonCode extension SHOULD be absent rather
	 * than carry unspecified */
	if (entry->reason != VC_REASON_UNSPECIFIED) {
		X509_EXTENSION *ext = vc_crl_reason_ext(reasons, entry->reason);
		if (ext == NULL || !X509_REVOKED_add_ext(rev, ext, -1)) {
			vc_crypto_set_error(error, "cannot encode CRL reason");
			return FALSE;
		}
	}
	if (!X509_CRL_add0_revoked(crl, rev)) {
		vc_crypto_set_error(error, "cannot add CRL entry");
		return FALSE;
	}
	rev = NULL; /* owned by the CRL now */
	return TRUE;
}

static gboolean vc_crl_add_entries(X509_CRL *crl, GPtrArray *entries, GError **error);

/* Everything but the signature: RFC 5280 5.1 with the AKI and CRL number
 * extensions (5.2.1, 5.2.3, both non-critical). */
static X509_CRL *
vc_crl_new_unsigned(X509 *issuer, X509_EXTENSION *aki, GPtrArray *entries, guint64 crl_number,
		    gint64 this_update, gint64 next_update, GError **error)
{
	g_autoptr(X509_CRL) crl = X509_CRL_new();
	g_autoptr(ASN1_TIME) tu = NULL;
	g_autoptr(ASN1_TIME) nu = NULL;
	g_autoptr(ASN1_INTEGER) number = ASN1_INTEGER_new();

	if (next_update <= this_update) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "nextUpdate is not after thisUpdate");
		return NULL;
	}
	tu = vc_asn1_time_from_unix(this_update, error);
	if (tu == NULL)
		return NULL;
	nu = vc_asn1_time_from_unix(next_update, error);
	if (nu == NULL)
		return NULL;
	/* version 2 (value 1) because of the extensions, RFC 5280 5.1.2.1 */
	if (!X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) ||
	    !X509_CRL_set1_lastUpdate(crl, tu) || !X509_CRL_set1_nextUpdate(crl, nu)) {
		vc_crypto_set_error(error, "cannot build CRL");
		return NULL;
	}
	if (!vc_crl_add_entries(crl, entries, error))
		return NULL;
	if (!X509_CRL_add_ext(crl, aki, -1) || !ASN1_INTEGER_set_uint64(number, crl_number) ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0) != 1) {
		vc_crypto_set_error(error, "cannot build CRL extensions");
		return NULL;
	}
	return g_steal_pointer(&crl);
}

X509_CRL *
vc_ca_sign_crl(VcCa *ca, GPtrArray *entries, guint64 crl_number, gint64 this_update,
	       gint64 next_update, GError **error)
{
	g_autoptr(X509_CRL) crl = vc_crl_new_unsigned(ca->cert, ca->ext_aki, entries, crl_number,
						      this_update, next_update, error);

	if (crl == NULL || !vc_ca_sign_item(ca, NULL, crl, error))
		return NULL;
	return g_steal_pointer(&crl);
}

/* Adds ENTRIES to CRL and sorts them (RFC 5280 does not ask for an order;
 * relying parties search faster in a sorted list). */
static gboolean
vc_crl_add_entries(X509_CRL *crl, GPtrArray *entries, GError **error)
{
	VcCrlReasonExts reasons = {0};
	gboolean ok = TRUE;

	for (guint i = 0; ok && entries != NULL && i < entries->len; i++)
		ok = vc_crl_add_revoked(crl, g_ptr_array_index(entries, i), &reasons, error);
	vc_crl_reason_exts_clear(&reasons);
	if (ok && !X509_CRL_sort(crl)) {
		vc_crypto_set_error(error, "cannot sort the CRL");
		return FALSE;
	}
	return ok;
}

/* SEQUENCE { TBS, ALG, BIT STRING SIG } (RFC 5280 5.1) from its parts. */
static GBytes *
vc_crl_assemble_der(const unsigned char *tbs, int tbs_len, const X509_ALGOR *alg,
		    const unsigned char *sig, size_t sig_len, GError **error)
{
	g_autoptr(ASN1_BIT_STRING) bits = ASN1_BIT_STRING_new();
	unsigned char *alg_der = NULL;
	unsigned char *bits_der = NULL;
	int alg_len, bits_len, content, total;
	guint8 *out, *p;

	if (bits == NULL || !ASN1_BIT_STRING_set(bits, (unsigned char *)sig, (int)sig_len)) {
		vc_crypto_set_error(error, "cannot encode the CRL signature");
		return NULL;
	}
	/* no unused bits: a signature is whole octets */
	bits->flags &= ~0x07;
	bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	alg_len = i2d_X509_ALGOR(alg, &alg_der);
	bits_len = i2d_ASN1_BIT_STRING(bits, &bits_der);
	if (alg_len <= 0 || bits_len <= 0) {
		OPENSSL_free(alg_der);
		OPENSSL_free(bits_der);
		vc_crypto_set_error(error, "cannot encode the CRL signature");
		return NULL;
	}
	content = tbs_len + alg_len + bits_len;
	total = ASN1_object_size(1, content, V_ASN1_SEQUENCE);
	out = g_malloc((gsize)total);
	p = out;
	ASN1_put_object(&p, 1, content, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
	memcpy(p, tbs, (size_t)tbs_len);
	p += tbs_len;
	memcpy(p, alg_der, (size_t)alg_len);
	p += alg_len;
	memcpy(p, bits_der, (size_t)bits_len);
	OPENSSL_free(alg_der);
	OPENSSL_free(bits_der);
	return g_bytes_new_take(out, (gsize)total);
}

/* The same CRL as vc_ca_sign_crl(), as DER, encoded once: X509_CRL_sign()
 * encodes the tbsCertList to sign it and i2d_X509_CRL() encodes it again,
 * each pass over every entry. Here the (empty) CRL is signed first, which
 * sets the signature algorithm inside and outside the tbsCertList; then the
 * entries go in, the tbsCertList is encoded once, signed, and the DER put
 * together around it. */
GBytes *
vc_ca_sign_crl_der(VcCa *ca, GPtrArray *entries, guint64 crl_number, gint64 this_update,
		   gint64 next_update, GError **error)
{
	g_autoptr(X509_CRL) crl = vc_crl_new_unsigned(ca->cert, ca->ext_aki, NULL, crl_number,
						      this_update, next_update, error);
	g_autoptr(EVP_MD_CTX) ctx = NULL;
	const X509_ALGOR *alg = NULL;
	unsigned char *tbs = NULL;
	g_autofree unsigned char *sig = NULL;
	size_t sig_len = 0;
	int tbs_len;
	GBytes *der = NULL;

	if (crl == NULL || !vc_ca_sign_item(ca, NULL, crl, error) ||
	    !vc_crl_add_entries(crl, entries, error))
		return NULL;
	tbs_len = i2d_re_X509_CRL_tbs(crl, &tbs);
	if (tbs_len <= 0) {
		vc_crypto_set_error(error, "cannot encode the CRL");
		return NULL;
	}
	ctx = vc_ca_sign_ctx_new(ca);
	if (ctx == NULL)
		goto fail;
	if (EVP_DigestSign(ctx, NULL, &sig_len, tbs, (size_t)tbs_len) != 1)
		goto fail;
	sig = g_malloc(sig_len);
	if (EVP_DigestSign(ctx, sig, &sig_len, tbs, (size_t)tbs_len) != 1)
		goto fail;
	X509_CRL_get0_signature(crl, NULL, &alg);
	der = vc_crl_assemble_der(tbs, tbs_len, alg, sig, sig_len, error);
	OPENSSL_free(tbs);
	return der;
fail:
	OPENSSL_free(tbs);
	vc_crypto_set_error(error, "cannot sign the CRL");
	return NULL;
}

X509_CRL *
vc_crl_sign_with_key(X509 *issuer, EVP_PKEY *key, GPtrArray *entries, guint64 crl_number,
		     gint64 this_update, gint64 next_update, GError **error)
{
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(issuer);
	g_autoptr(X509_EXTENSION) aki = NULL;
	g_autoptr(X509_CRL) crl = NULL;

	if (ski == NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_CRYPTO,
				    "the CA certificate has no subjectKeyIdentifier");
		return NULL;
	}
	aki = vc_ext_aki_from_ski(ski, error);
	if (aki == NULL)
		return NULL;
	crl =
	    vc_crl_new_unsigned(issuer, aki, entries, crl_number, this_update, next_update, error);
	if (crl == NULL)
		return NULL;
	if (X509_CRL_sign(crl, key, vc_key_get_md(key)) <= 0) {
		vc_crypto_set_error(error, "cannot sign CRL");
		return NULL;
	}
	return g_steal_pointer(&crl);
}

char *
vc_crl_to_pem(X509_CRL *crl, GError **error)
{
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	long len;

	if (bio == NULL || !PEM_write_bio_X509_CRL(bio, crl)) {
		vc_crypto_set_error(error, "cannot encode CRL");
		return NULL;
	}
	len = BIO_get_mem_data(bio, &data);
	return g_strndup(data, (gsize)len);
}

GBytes *
vc_crl_to_der(X509_CRL *crl, GError **error)
{
	unsigned char *der = NULL;
	int len = i2d_X509_CRL(crl, &der);
	GBytes *bytes;

	if (len <= 0) {
		vc_crypto_set_error(error, "cannot encode CRL");
		return NULL;
	}
	bytes = g_bytes_new(der, (gsize)len);
	OPENSSL_free(der);
	return bytes;
}

/* host CA CRLs are small; anything bigger is not what the administrator
 * meant to give us */
#define VC_CRL_FILE_MAX (1024 * 1024)

gboolean
vc_crl_load_all(const char *path, const char *what, GPtrArray *out, GError **error)
{
	gsize len = 0;
	g_autofree char *data = NULL;
	g_autoptr(BIO) bio = vc_file_read_bio(path, VC_CRL_FILE_MAX, &data, &len, error);
	guint before = out->len;
	X509_CRL *crl;

	if (bio == NULL)
		return FALSE;
	while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL)
		g_ptr_array_add(out, crl);
	ERR_clear_error();
	if (out->len == before) {
		/* DER, as a CRL distribution point serves it */
		const unsigned char *p = (const unsigned char *)data;
		crl = d2i_X509_CRL(NULL, &p, (long)len);
		ERR_clear_error();
		if (crl == NULL) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "%s%s%s: not a CRL (PEM or DER)", what != NULL ? what : "",
				    what != NULL ? " " : "", path);
			return FALSE;
		}
		g_ptr_array_add(out, crl);
	}
	return TRUE;
}

X509_CRL *
vc_crl_load(const char *path, GError **error)
{
	g_autoptr(GPtrArray) crls = g_ptr_array_new_with_free_func((GDestroyNotify)X509_CRL_free);

	if (!vc_crl_load_all(path, NULL, crls, error))
		return NULL;
	return g_ptr_array_steal_index(crls, 0);
}

/* ---- the last CRL number, kept beside the CA -------------------------- */

#define VC_CRL_NUMBER_FILE "crl-number"
#define VC_CRL_NUMBER_MAX_SIZE 256

gboolean
vc_ca_crl_number_load(VcCa *ca, guint64 *ret_number, GError **error)
{
	g_autofree char *path = g_build_filename(ca->dir, VC_CRL_NUMBER_FILE, NULL);
	g_autoptr(GError) local = NULL;
	g_autofree char *data = vc_file_read(path, VC_CRL_NUMBER_MAX_SIZE, NULL, &local);
	g_auto(GStrv) fields = NULL;
	guint64 number = 0;

	if (data == NULL) {
		if (g_error_matches(local, VC_ERROR, VC_ERROR_NOT_FOUND)) {
			*ret_number = 0;
			return TRUE;
		}
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	fields = g_strsplit_set(g_strstrip(data), " \t", -1);
	if (g_strv_length(fields) != 2 ||
	    !g_ascii_string_to_unsigned(fields[1], 10, 1, G_MAXINT64, &number, NULL)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "%s is not \"CA-ID NUMBER\": it records the last CRL number so that "
			    "numbers never go back; put the last number served there, or remove "
			    "it if the store's own count can be trusted",
			    path);
		return FALSE;
	}
	/* another CA's (the directory was re-initialised): not ours to follow */
	*ret_number = g_strcmp0(fields[0], ca->id) == 0 ? number : 0;
	return TRUE;
}

gboolean
vc_ca_crl_number_save(VcCa *ca, guint64 number, GError **error)
{
	g_autofree char *path = g_build_filename(ca->dir, VC_CRL_NUMBER_FILE, NULL);
	g_autofree char *text = g_strdup_printf("%s %" G_GUINT64_FORMAT "\n", ca->id, number);

	return vc_file_write_atomic(path, text, strlen(text), 0644, error);
}
