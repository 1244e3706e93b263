/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Signed placement: the owner CAs a host trusts, signing the canonical form
 * of a placement (CMS, RFC 5652) and the one check of such a signature. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "vc-ca-private.h"
#include "vc-ca.h"
#include "vc-error.h"
#include "vc-placement-sig.h"
#include "vc-placement.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CMS_ContentInfo, CMS_ContentInfo_free)

/* What identifies a version of a file: a change of any means read again. */
typedef struct {
	gboolean exists;
	dev_t dev;
	ino_t ino;
	off_t size;
	gint64 mtime_ns;
} VcPlacementSigFileStamp;

struct _VcOwnerTrust {
	char *ca_path;
	char *crl_path;
	VcPlacementSigFileStamp ca_stamp;
	VcPlacementSigFileStamp crl_stamp;
	gboolean loaded;
	GPtrArray *anchors; /* of X509* */
	GPtrArray *crls;    /* of X509_CRL* */
	/* signatures verified with these files: SHA-256 of the DER and of the
	 * signed bytes -> VcPlacementSigVerified; emptied when a file changes */
	GHashTable *verified;
};

/* How long a verified signature is taken as verified without redoing the
 * CMS and chain checks (the engine evaluates every VM at each reconcile):
 * never past the owner certificate's notAfter, and short enough that a
 * CRL's nextUpdate passing is noticed soon. A changed file counts at once. */
#define VC_PLACEMENT_SIG_CACHE_S 60
#define VC_PLACEMENT_SIG_CACHE_MAX 65536

typedef struct {
	char *signer;
	gint64 valid_until;
} VcPlacementSigVerified;

static void
vc_placement_sig_verified_free(VcPlacementSigVerified *v)
{
	g_free(v->signer);
	g_free(v);
}

VcOwnerTrust *
vc_owner_trust_new(const char *ca_path, const char *crl_path)
{
	VcOwnerTrust *trust = g_new0(VcOwnerTrust, 1);

	g_return_val_if_fail(ca_path != NULL, NULL);
	trust->ca_path = g_strdup(ca_path);
	trust->crl_path = g_strdup(crl_path);
	trust->anchors = g_ptr_array_new_with_free_func((GDestroyNotify)X509_free);
	trust->crls = g_ptr_array_new_with_free_func((GDestroyNotify)X509_CRL_free);
	trust->verified = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
						(GDestroyNotify)vc_placement_sig_verified_free);
	return trust;
}

void
vc_owner_trust_free(VcOwnerTrust *trust)
{
	if (trust == NULL)
		return;
	g_free(trust->ca_path);
	g_free(trust->crl_path);
	g_ptr_array_unref(trust->anchors);
	g_ptr_array_unref(trust->crls);
	g_hash_table_unref(trust->verified);
	g_free(trust);
}

static void
vc_placement_sig_stamp(const char *path, VcPlacementSigFileStamp *ret)
{
	struct stat st;

	memset(ret, 0, sizeof(*ret));
	if (path == NULL || stat(path, &st) < 0)
		return;
	ret->exists = TRUE;
	ret->dev = st.st_dev;
	ret->ino = st.st_ino;
	ret->size = st.st_size;
	ret->mtime_ns = (gint64)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

static gboolean
vc_placement_sig_stamp_equal(const VcPlacementSigFileStamp *a, const VcPlacementSigFileStamp *b)
{
	return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime_ns == b->mtime_ns;
}

gboolean
vc_owner_trust_refresh(VcOwnerTrust *trust, GError **error)
{
	VcPlacementSigFileStamp ca_stamp, crl_stamp;
	g_autoptr(GPtrArray) anchors = NULL;
	g_autoptr(GPtrArray) crls = g_ptr_array_new_with_free_func((GDestroyNotify)X509_CRL_free);

	g_return_val_if_fail(trust != NULL, FALSE);
	vc_placement_sig_stamp(trust->ca_path, &ca_stamp);
	vc_placement_sig_stamp(trust->crl_path, &crl_stamp);
	if (trust->loaded && vc_placement_sig_stamp_equal(&ca_stamp, &trust->ca_stamp) &&
	    vc_placement_sig_stamp_equal(&crl_stamp, &trust->crl_stamp))
		return TRUE;
	trust->loaded = FALSE;
	g_hash_table_remove_all(trust->verified);
	anchors = vc_cert_load_pem_file(trust->ca_path, error);
	if (anchors == NULL) {
		g_prefix_error(error, "[placement] owner-ca: ");
		return FALSE;
	}
	for (guint i = 0; i < anchors->len; i++) {
		if (X509_check_ca(g_ptr_array_index(anchors, i)) == 0) {
			g_autofree char *subject = vc_x509_name_to_string(
			    X509_get_subject_name(g_ptr_array_index(anchors, i)));
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "[placement] owner-ca: %s holds \"%s\", which is not a CA "
				    "certificate",
				    trust->ca_path, subject);
			return FALSE;
		}
	}
	/* a configured CRL that is missing fails closed: revocations must not
	 * be lost by deleting a file */
	if (trust->crl_path != NULL &&
	    !vc_crl_load_all(trust->crl_path, "owner CRL", crls, error)) {
		g_prefix_error(error, "[placement] owner-crl: ");
		return FALSE;
	}
	g_ptr_array_unref(trust->anchors);
	trust->anchors = g_steal_pointer(&anchors);
	g_ptr_array_unref(trust->crls);
	trust->crls = g_steal_pointer(&crls);
	trust->ca_stamp = ca_stamp;
	trust->crl_stamp = crl_stamp;
	trust->loaded = TRUE;
	return TRUE;
}

GBytes *
vc_placement_sig_sign(EVP_PKEY *key, X509 *cert, GPtrArray *extra, GBytes *content, GError **error)
{
	g_autoptr(VcX509Stack) certs = sk_X509_new_null();
	g_autoptr(CMS_ContentInfo) cms = NULL;
	g_autoptr(BIO) in = NULL;
	gsize len = 0;
	const void *data = g_bytes_get_data(content, &len);
	unsigned char *der = NULL;
	int der_len;
	GBytes *out;

	g_return_val_if_fail(key != NULL && cert != NULL && content != NULL, NULL);
	if (X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		g_set_error_literal(error, VC_ERROR, VC_ERROR_CRYPTO,
				    "the owner key does not belong to the owner certificate");
		return NULL;
	}
	if (X509_check_ca(cert) != 0) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_POLICY,
				    "the owner certificate is a CA certificate: sign with an owner "
				    "(end-entity) certificate the owner CA issued");
		return NULL;
	}
	for (guint i = 0; extra != NULL && i < extra->len; i++) {
		X509 *c = g_ptr_array_index(extra, i);
		if (X509_up_ref(c) != 1 || sk_X509_push(certs, c) <= 0) {
			vc_crypto_set_error(error, "out of memory");
			return NULL;
		}
	}
	in = BIO_new_mem_buf(data, (int)len);
	/* RFC 5652 5.3: signed attributes (content type, message digest and,
	 * from OpenSSL, signing time) over the content as given */
	cms = in != NULL
		  ? CMS_sign(cert, key, certs, in, CMS_DETACHED | CMS_BINARY | CMS_NOSMIMECAP)
		  : NULL;
	if (cms == NULL) {
		vc_crypto_set_error(error, "cannot make the CMS signature");
		return NULL;
	}
	der_len = i2d_CMS_ContentInfo(cms, &der);
	if (der_len <= 0) {
		vc_crypto_set_error(error, "cannot encode the CMS signature");
		return NULL;
	}
	out = g_bytes_new(der, (gsize)der_len);
	OPENSSL_free(der);
	return out;
}

static char *
vc_placement_sig_time_string(const ASN1_TIME *t)
{
	struct tm tm = {0};
	g_autoptr(GDateTime) dt = NULL;

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return g_strdup("?");
	dt = g_date_time_new_utc(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
				 tm.tm_min, tm.tm_sec);
	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("?");
}

/* The signer's certificate against the owner CAs and their CRLs at NOW. */
static gboolean
vc_placement_sig_verify_signer(VcOwnerTrust *trust, X509 *signer, VcX509Stack *untrusted,
			       gint64 now, GError **error)
{
	g_autoptr(X509_STORE) store = X509_STORE_new();
	g_autoptr(X509_STORE_CTX) ctx = X509_STORE_CTX_new();
	g_autofree char *subject = vc_x509_name_to_string(X509_get_subject_name(signer));
	unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_X509_STRICT;
	int err;

	if (store == NULL || ctx == NULL) {
		vc_crypto_set_error(error, "out of memory");
		return FALSE;
	}
	if (X509_check_ca(signer) != 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "the placement was signed by \"%s\", a CA certificate: owners sign "
			    "with an end-entity certificate",
			    subject);
		return FALSE;
	}
	if ((X509_get_key_usage(signer) & KU_DIGITAL_SIGNATURE) == 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "the placement was signed by \"%s\", whose key usage does not allow "
			    "digital signatures",
			    subject);
		return FALSE;
	}
	for (guint i = 0; i < trust->anchors->len; i++)
		X509_STORE_add_cert(store, g_ptr_array_index(trust->anchors, i));
	for (guint i = 0; i < trust->crls->len; i++)
		X509_STORE_add_crl(store, g_ptr_array_index(trust->crls, i));
	/* RFC 5280 6.3: the owner certificate against its CA's CRL */
	if (trust->crl_path != NULL)
		flags |= X509_V_FLAG_CRL_CHECK;
	X509_STORE_set_flags(store, flags);
	if (!X509_STORE_CTX_init(ctx, store, signer, untrusted)) {
		vc_crypto_set_error(error, "cannot set up verification");
		return FALSE;
	}
	X509_STORE_CTX_set_time(ctx, 0, (time_t)now);
	if (X509_verify_cert(ctx) == 1) {
		ERR_clear_error();
		return TRUE;
	}
	ERR_clear_error();
	err = X509_STORE_CTX_get_error(ctx);
	switch (err) {
	case X509_V_ERR_CERT_REVOKED: {
		g_autofree char *serial = vc_cert_get_serial_hex(signer);
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "the owner certificate that signed the placement (\"%s\", serial %s) "
			    "is revoked by its owner CA",
			    subject, serial);
		break;
	}
	case X509_V_ERR_CERT_HAS_EXPIRED: {
		X509 *bad = X509_STORE_CTX_get_current_cert(ctx);
		g_autofree char *when =
		    vc_placement_sig_time_string(bad != NULL ? X509_get0_notAfter(bad) : NULL);
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "the %s that signed the placement (\"%s\") expired on %s",
			    X509_STORE_CTX_get_error_depth(ctx) == 0
				? "owner certificate"
				: "owner CA of the certificate",
			    subject, when);
		break;
	}
	case X509_V_ERR_CERT_NOT_YET_VALID: {
		g_autofree char *when = vc_placement_sig_time_string(X509_get0_notBefore(signer));
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "the owner certificate that signed the placement (\"%s\") is not "
			    "valid before %s",
			    subject, when);
		break;
	}
	case X509_V_ERR_UNABLE_TO_GET_CRL:
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "[placement] owner-crl holds no CRL of the owner CA that issued \"%s\" "
			    "(with owner-crl set, every owner CA needs its CRL there)",
			    subject);
		break;
	case X509_V_ERR_CRL_HAS_EXPIRED:
		g_set_error_literal(error, VC_ERROR, VC_ERROR_POLICY,
				    "the owner CA's CRL ([placement] owner-crl) has expired "
				    "(nextUpdate passed): install a current one");
		break;
	default: {
		g_autofree char *issuer = vc_x509_name_to_string(X509_get_issuer_name(signer));
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "the placement was signed by \"%s\" (issuer \"%s\"), which no trusted "
			    "owner CA issued: %s",
			    subject, issuer, X509_verify_cert_error_string(err));
		break;
	}
	}
	return FALSE;
}

/* One DER TLV at *P (before END): its tag, constructed or not, and content;
 * *P moves past it. */
static gboolean
vc_placement_sig_der_next(const unsigned char **p, const unsigned char *end, int want_tag,
			  const unsigned char **ret_content, long *ret_len,
			  const unsigned char **ret_tlv)
{
	const unsigned char *start = *p;
	long len = 0;
	int tag = 0, xclass = 0;
	int r = ASN1_get_object(p, &len, &tag, &xclass, end - *p);

	if ((r & 0x80) != 0 || tag != want_tag || len < 0 || len > end - *p)
		return FALSE;
	if (ret_content != NULL)
		*ret_content = *p;
	if (ret_len != NULL)
		*ret_len = len;
	if (ret_tlv != NULL)
		*ret_tlv = start;
	*p += len;
	return TRUE;
}

/* What OpenSSL parses but never judges, which a signature does not cover
 * (RFC 5652 5.1, 5.3): SignedData and SignerInfo versions must be 1 (id-data
 * content, issuerAndSerialNumber), and the SignedData's digestAlgorithms
 * must be exactly the signer's. So that no byte of a signature can change
 * without the check noticing. */
static gboolean
vc_placement_sig_check_structure(const unsigned char *der, long der_len)
{
	const unsigned char *p = der, *end = der + der_len, *c, *sd, *sd_end, *set, *si, *si_end;
	const unsigned char *dig_set, *dig_tlv, *dig_end;
	long len = 0, dig_set_len = 0;

	/* ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT SignedData } */
	if (!vc_placement_sig_der_next(&p, end, V_ASN1_SEQUENCE, &c, &len, NULL))
		return FALSE;
	p = c;
	end = c + len;
	if (!vc_placement_sig_der_next(&p, end, V_ASN1_OBJECT, NULL, NULL, NULL) ||
	    !vc_placement_sig_der_next(&p, end, 0, &c, &len, NULL))
		return FALSE;
	p = c;
	if (!vc_placement_sig_der_next(&p, c + len, V_ASN1_SEQUENCE, &sd, &len, NULL))
		return FALSE;
	p = sd;
	sd_end = sd + len;
	/* version 1, digestAlgorithms, encapContentInfo */
	if (!vc_placement_sig_der_next(&p, sd_end, V_ASN1_INTEGER, &c, &len, NULL) || len != 1 ||
	    c[0] != 1 ||
	    !vc_placement_sig_der_next(&p, sd_end, V_ASN1_SET, &dig_set, &dig_set_len, NULL) ||
	    !vc_placement_sig_der_next(&p, sd_end, V_ASN1_SEQUENCE, NULL, NULL, NULL))
		return FALSE;
	/* [0] certificates, [1] crls (optional, context tags), then signerInfos */
	while (p < sd_end && (*p & 0xc0) == 0x80) {
		long l = 0;
		int tag = 0, xclass = 0;
		if ((ASN1_get_object(&p, &l, &tag, &xclass, sd_end - p) & 0x80) != 0 ||
		    l > sd_end - p)
			return FALSE;
		p += l;
	}
	if (!vc_placement_sig_der_next(&p, sd_end, V_ASN1_SET, &set, &len, NULL) || p != sd_end)
		return FALSE;
	p = set;
	if (!vc_placement_sig_der_next(&p, set + len, V_ASN1_SEQUENCE, &si, &len, NULL))
		return FALSE;
	si_end = si + len;
	p = si;
	/* SignerInfo: version 1, sid, digestAlgorithm */
	if (!vc_placement_sig_der_next(&p, si_end, V_ASN1_INTEGER, &c, &len, NULL) || len != 1 ||
	    c[0] != 1 || !vc_placement_sig_der_next(&p, si_end, V_ASN1_SEQUENCE, NULL, NULL, NULL))
		return FALSE;
	dig_tlv = p;
	if (!vc_placement_sig_der_next(&p, si_end, V_ASN1_SEQUENCE, NULL, NULL, NULL))
		return FALSE;
	dig_end = p;
	return dig_set_len == dig_end - dig_tlv &&
	       memcmp(dig_set, dig_tlv, (gsize)dig_set_len) == 0;
}

/* RFC 5652 5.3 signatureAlgorithm: OpenSSL picks the algorithm from the
 * signer's key and does not look at this field, so a changed one would go
 * unnoticed; it must name the key's algorithm, alone (RFC 5753 allows
 * id-ecPublicKey, RFC 3370 rsaEncryption) or with a digest. */
static gboolean
vc_placement_sig_algorithm_fits(const X509_ALGOR *alg, const X509_ALGOR *digest, X509 *signer)
{
	EVP_PKEY *pub = X509_get0_pubkey(signer);
	int nid = alg != NULL ? OBJ_obj2nid(alg->algorithm) : NID_undef;
	int dnid = digest != NULL ? OBJ_obj2nid(digest->algorithm) : NID_undef;
	int pknid = NID_undef, mdnid = NID_undef;

	if (pub == NULL || nid == NID_undef)
		return FALSE;
	if (OBJ_find_sigid_algs(nid, &mdnid, &pknid))
		/* with a digest in the name, the SignerInfo's digest (what
		 * OpenSSL uses) must be that one (Ed25519 names none) */
		return pknid == EVP_PKEY_get_base_id(pub) && (mdnid == NID_undef || mdnid == dnid);
	return nid == EVP_PKEY_get_base_id(pub);
}

static char *
vc_placement_sig_normalize_uuid(const char *s)
{
	GString *out = g_string_new(NULL);

	for (const char *p = s != NULL ? s : ""; *p != '\0'; p++)
		if (*p != '-')
			g_string_append_c(out, g_ascii_tolower(*p));
	return g_string_free(out, FALSE);
}

static gboolean vc_placement_sig_check_binding(const VcSignedPlacement *sp, const char *vm_uuid,
					       gint64 now, const char *signer_name,
					       char **ret_signer, GError **error);

static gint64
vc_placement_sig_time_to_unix(const ASN1_TIME *t)
{
	struct tm tm = {0};
	g_autoptr(GDateTime) dt = NULL;

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	dt = g_date_time_new_utc(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
				 tm.tm_min, tm.tm_sec);
	return dt != NULL ? g_date_time_to_unix(dt) : 0;
}

static char *
vc_placement_sig_cache_key(GBytes *der, GBytes *canonical)
{
	g_autoptr(GChecksum) a = g_checksum_new(G_CHECKSUM_SHA256);
	g_autoptr(GChecksum) b = g_checksum_new(G_CHECKSUM_SHA256);
	gsize n = 0;
	const guchar *p = g_bytes_get_data(der, &n);

	g_checksum_update(a, p, (gssize)n);
	p = g_bytes_get_data(canonical, &n);
	g_checksum_update(b, p, (gssize)n);
	return g_strconcat(g_checksum_get_string(a), ":", g_checksum_get_string(b), NULL);
}

gboolean
vc_placement_sig_verify(VcOwnerTrust *trust, const VcSignedPlacement *sp, const char *vm_uuid,
			gint64 now, char **ret_signer, GError **error)
{
	g_autoptr(CMS_ContentInfo) cms = NULL;
	g_autoptr(GError) local = NULL;
	g_autoptr(GBytes) canonical = NULL;
	g_autoptr(BIO) content = NULL;
	g_autoptr(VcX509Stack) certs = NULL;
	g_autofree char *cache_key = NULL;
	g_autofree char *signer_name = NULL;
	VcPlacementSigVerified *cached;
	STACK_OF(CMS_SignerInfo) * infos;
	CMS_SignerInfo *si;
	X509 *signer = NULL;
	X509_ALGOR *sig_alg = NULL, *dig_alg = NULL;
	const unsigned char *der, *p;
	gsize der_len = 0, canon_len = 0;
	const void *canon;

	g_return_val_if_fail(trust != NULL && sp != NULL, FALSE);
	if (now == 0)
		now = g_get_real_time() / G_USEC_PER_SEC;
	if (sp->sig_der == NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_POLICY,
				    "the placement is not signed");
		return FALSE;
	}
	if (!vc_owner_trust_refresh(trust, error))
		return FALSE;
	canonical = vc_signed_placement_canonical_signed(sp, &local);
	if (canonical == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "the signed placement is malformed: %s", local->message);
		return FALSE;
	}
	cache_key = vc_placement_sig_cache_key(sp->sig_der, canonical);
	cached = g_hash_table_lookup(trust->verified, cache_key);
	if (cached != NULL && now <= cached->valid_until)
		return vc_placement_sig_check_binding(sp, vm_uuid, now, cached->signer, ret_signer,
						      error);
	der = g_bytes_get_data(sp->sig_der, &der_len);
	p = der;
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)der_len);
	if (cms == NULL || p != der + der_len ||
	    OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed || CMS_is_detached(cms) != 1 ||
	    /* RFC 5652 5.2: id-data, as signed (OpenSSL does not compare the
	     * content-type attribute with it) */
	    OBJ_obj2nid(CMS_get0_eContentType(cms)) != NID_pkcs7_data) {
		ERR_clear_error();
		g_set_error_literal(error, VC_ERROR, VC_ERROR_POLICY,
				    "the placement signature is not a CMS SignedData (RFC 5652) "
				    "with detached content");
		return FALSE;
	}
	if (!vc_placement_sig_check_structure(der, (long)der_len)) {
		g_set_error_literal(
		    error, VC_ERROR, VC_ERROR_POLICY,
		    "the placement signature is not a CMS SignedData as owners make "
		    "it (version 1, one signer, its digest algorithm): altered after "
		    "signing");
		return FALSE;
	}
	infos = CMS_get0_SignerInfos(cms);
	if (infos == NULL || sk_CMS_SignerInfo_num(infos) != 1) {
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "the placement signature has %d signers, one is expected",
			    infos != NULL ? sk_CMS_SignerInfo_num(infos) : 0);
		return FALSE;
	}
	si = sk_CMS_SignerInfo_value(infos, 0);
	if (CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1) < 0) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_POLICY,
				    "the placement signature has no signed signing time");
		return FALSE;
	}
	certs = CMS_get1_certs(cms);
	if (CMS_set1_signers_certs(cms, NULL, 0) < 0) {
		ERR_clear_error();
		vc_crypto_set_error(error, "cannot read the placement signature's certificates");
		return FALSE;
	}
	CMS_SignerInfo_get0_algs(si, NULL, &signer, &dig_alg, &sig_alg);
	if (signer == NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_POLICY,
				    "the placement signature does not carry the owner's "
				    "certificate");
		return FALSE;
	}
	if (!vc_placement_sig_algorithm_fits(sig_alg, dig_alg, signer)) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_POLICY,
				    "the placement signature's algorithm does not fit the owner's "
				    "key (altered after signing)");
		return FALSE;
	}
	canon = g_bytes_get_data(canonical, &canon_len);
	content = BIO_new_mem_buf(canon, (int)canon_len);
	/* the signature over these exact bytes first (who signed is judged
	 * next, so that the message says which went wrong) */
	if (content == NULL || CMS_verify(cms, NULL, NULL, content, NULL,
					  CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1) {
		ERR_clear_error();
		g_set_error_literal(error, VC_ERROR, VC_ERROR_POLICY,
				    "the placement does not match its signature (altered after "
				    "signing)");
		return FALSE;
	}
	ERR_clear_error();
	if (!vc_placement_sig_verify_signer(trust, signer, certs, now, error))
		return FALSE;
	signer_name = vc_x509_name_to_string(X509_get_subject_name(signer));
	{
		VcPlacementSigVerified *v = g_new0(VcPlacementSigVerified, 1);
		gint64 cert_end = vc_placement_sig_time_to_unix(X509_get0_notAfter(signer));
		v->signer = g_strdup(signer_name);
		v->valid_until = MIN(now + VC_PLACEMENT_SIG_CACHE_S, cert_end);
		if (g_hash_table_size(trust->verified) >= VC_PLACEMENT_SIG_CACHE_MAX)
			g_hash_table_remove_all(trust->verified);
		g_hash_table_replace(trust->verified, g_steal_pointer(&cache_key), v);
	}
	return vc_placement_sig_check_binding(sp, vm_uuid, now, signer_name, ret_signer, error);
}

/* The checks the signature itself cannot make: the VM it is bound to, and
 * its expiry, at NOW. */
static gboolean
vc_placement_sig_check_binding(const VcSignedPlacement *sp, const char *vm_uuid, gint64 now,
			       const char *signer_name, char **ret_signer, GError **error)
{
	g_autofree char *want = NULL;
	g_autofree char *have = NULL;
	gint64 not_after = 0;

	want = vc_placement_sig_normalize_uuid(vm_uuid);
	have = vc_placement_sig_normalize_uuid(sp->sig_vm);
	if (vm_uuid != NULL && strcmp(want, have) != 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "the placement is signed for VM %s, not for this VM (%s)", sp->sig_vm,
			    vm_uuid);
		return FALSE;
	}
	if (sp->sig_not_after != NULL &&
	    vc_signed_placement_parse_time(sp->sig_not_after, &not_after, NULL) &&
	    now > not_after) {
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "the placement signature expired on %s (not-after)", sp->sig_not_after);
		return FALSE;
	}
	if (ret_signer != NULL)
		*ret_signer = g_strdup(signer_name);
	return TRUE;
}

gboolean
vc_placement_sig_check(VcOwnerTrust *trust, gboolean require_signed, const VcDomainInfo *info,
		       gint64 now, char **ret_reason)
{
	const VcSignedPlacement *sp = info->placement;
	g_autoptr(GError) error = NULL;
	g_autofree char *signer = NULL;
	char *reason;
	gboolean allow;

	if (sp == NULL || sp->sig_der == NULL) {
		allow = !require_signed;
		reason = g_strdup(
		    allow ? "the placement is not signed (this host does not require it)"
			  : "the VM's placement is not signed by its owner, and this host requires "
			    "a signed placement ([placement] require-signed=yes)");
	} else if (trust == NULL) {
		allow = !require_signed;
		reason = g_strdup(allow ? "the placement signature is not checked (no [placement] "
					  "owner-ca on this host)"
					: "no owner CA is configured ([placement] owner-ca)");
	} else if (vc_placement_sig_verify(trust, sp, info->uuid, now, &signer, &error)) {
		allow = TRUE;
		reason = g_strdup_printf("the placement is signed by \"%s\"", signer);
	} else {
		allow = FALSE;
		reason = g_strdup_printf("signed placement refused: %s", error->message);
	}
	if (ret_reason != NULL)
		*ret_reason = reason;
	else
		g_free(reason);
	return allow;
}

JsonNode *
vc_placement_sig_answer(VcOwnerTrust *trust, gboolean require_signed, VcPolicySet *set,
			const char *xml, gboolean issue_all, gint64 default_lifetime, gint64 now)
{
	g_autoptr(VcDomainInfo) info = NULL;
	g_autoptr(VcPolicy) policy = NULL;
	g_autoptr(JsonBuilder) b = NULL;
	g_autofree char *reason = NULL;

	if (!require_signed && trust == NULL)
		return NULL;
	info = vc_domain_info_parse(xml, -1, NULL);
	if (info == NULL)
		return NULL;
	policy = vc_placement_resolve_policy(info, set, issue_all, default_lifetime, NULL);
	if (policy == NULL)
		return NULL;
	if (vc_placement_sig_check(trust, require_signed, info, now, &reason))
		return NULL;
	b = json_builder_new();
	vc_host_placement_answer_begin(b, FALSE, reason, info->name, policy);
	json_builder_set_member_name(b, "signature");
	json_builder_add_string_value(b, "refused");
	json_builder_end_object(b);
	return json_builder_get_root(b);
}
