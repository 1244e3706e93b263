/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The restricted intermediate CA: creation (self-signed root or CSR),
 * import, loading, name checks, leaf issuance and verification. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <glib/gstdio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "vc-ca.h"
#include "vc-ca-private.h"
#include "vc-error.h"
#include "vc-name.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_PUBKEY, X509_PUBKEY_free)

#define VC_CA_DEFAULT_LIFETIME_S (5 * 365 * 24 * 3600LL)
/* CA certificates start a little in the past so that a peer whose clock is
 * behind still accepts them. */
#define VC_CA_BACKDATE_S (10 * 60)
/* ub-common-name (RFC 5280 A.1) */
#define VC_CA_CN_MAX 64

/* ---- small encoders --------------------------------------------------- */

ASN1_TIME *
vc_asn1_time_from_unix(gint64 t, GError **error)
{
	/* RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime after;
	 * ASN1_TIME_set picks the form. */
	ASN1_TIME *tm = ASN1_TIME_set(NULL, (time_t)t);

	if (tm == NULL)
		vc_crypto_set_error(error, "cannot encode time");
	return tm;
}

static X509_EXTENSION *
vc_ca_ext_from_i2d(int nid, gboolean critical, void *value, GError **error)
{
	X509_EXTENSION *ext = X509V3_EXT_i2d(nid, critical ? 1 : 0, value);

	if (ext == NULL)
		vc_crypto_set_error(error, "cannot encode extension");
	return ext;
}

static X509_EXTENSION *
vc_ca_ext_basic_constraints(gboolean ca, int pathlen, GError **error)
{
	g_autoptr(BASIC_CONSTRAINTS) bc = BASIC_CONSTRAINTS_new();

	bc->ca = ca ? 0xff : 0;
	if (pathlen >= 0) {
		bc->pathlen = ASN1_INTEGER_new();
		ASN1_INTEGER_set(bc->pathlen, pathlen);
	}
	/* RFC 5280 4.2.1.9: critical in CA certificates; critical in leaves
	 * as well so that no relying party can mistake a leaf for a CA. */
	return vc_ca_ext_from_i2d(NID_basic_constraints, TRUE, bc, error);
}

/* RFC 5280 4.2.1.3 bit numbers */
#define KU_BIT_DIGITAL_SIGNATURE 0
#define KU_BIT_KEY_ENCIPHERMENT 2
#define KU_BIT_KEY_CERT_SIGN 5
#define KU_BIT_CRL_SIGN 6

static X509_EXTENSION *
vc_ca_ext_key_usage(const int *bits, gsize n_bits, GError **error)
{
	g_autoptr(ASN1_BIT_STRING) bs = ASN1_BIT_STRING_new();

	for (gsize i = 0; i < n_bits; i++)
		ASN1_BIT_STRING_set_bit(bs, bits[i], 1);
	return vc_ca_ext_from_i2d(NID_key_usage, TRUE, bs, error);
}

ASN1_OCTET_STRING *
vc_ca_ski_from_pubkey(X509_PUBKEY *pub, GError **error)
{
	const unsigned char *pk = NULL;
	int pklen = 0;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	ASN1_OCTET_STRING *ski;

	if (!X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL, pub) ||
	    !EVP_Digest(pk, (size_t)pklen, md, &mdlen, EVP_sha1(), NULL)) {
		vc_crypto_set_error(error, "cannot compute subject key identifier");
		return NULL;
	}
	ski = ASN1_OCTET_STRING_new();
	ASN1_OCTET_STRING_set(ski, md, (int)mdlen);
	return ski;
}

static ASN1_OCTET_STRING *
vc_ca_ski_from_key(EVP_PKEY *key, GError **error)
{
	g_autoptr(X509_PUBKEY) pub = NULL;

	if (!X509_PUBKEY_set(&pub, key)) {
		vc_crypto_set_error(error, "cannot encode public key");
		return NULL;
	}
	return vc_ca_ski_from_pubkey(pub, error);
}

/* A public-key-only EVP_PKEY for a P-256 key, made through the classic
 * ASN.1 methods. Why: OpenSSL 3.0 sets a certificate's public key from a
 * provider key by running the encoder and then the decoder, about 180 us,
 * more than keygen, signing and verification together; for a key built here
 * X509_set_pubkey() encodes the point directly (about 6 us). Same SPKI octets
 * either way. NULL when KEY is not P-256 or anything fails: the caller then
 * takes the general path. */
static gpointer
vc_ca_p256_legacy_params_new(gpointer data)
{
	/* ECParameters namedCurve prime256v1 (RFC 5480 2.1.1) */
	static const unsigned char params[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
					       0xce, 0x3d, 0x03, 0x01, 0x07};
	const unsigned char *p = params;

	return d2i_KeyParams(EVP_PKEY_EC, NULL, &p, sizeof(params));
}

static EVP_PKEY *
vc_ca_p256_public_for_x509(EVP_PKEY *key)
{
	static GOnce once = G_ONCE_INIT;
	EVP_PKEY *tmpl = g_once(&once, vc_ca_p256_legacy_params_new, NULL);
	unsigned char point[65];
	const unsigned char *q = point;
	size_t len = 0;
	char curve[32] = "";
	EVP_PKEY *pub;

	if (!EVP_PKEY_is_a(key, "EC") ||
	    !EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve),
					    NULL) ||
	    g_strcmp0(curve, "prime256v1") != 0 ||
	    !EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
					     sizeof(point), &len) ||
	    len != sizeof(point) || point[0] != 0x04) {
		ERR_clear_error();
		return NULL;
	}
	if (tmpl == NULL)
		return NULL;
	pub = EVP_PKEY_new();
	if (pub == NULL || EVP_PKEY_copy_parameters(pub, tmpl) != 1 ||
	    d2i_PublicKey(EVP_PKEY_EC, &pub, &q, (long)len) == NULL) {
		EVP_PKEY_free(pub);
		ERR_clear_error();
		return NULL;
	}
	return pub;
}

static gboolean
vc_ca_leaf_set_pubkey(X509 *cert, EVP_PKEY *key, GError **error)
{
	g_autoptr(EVP_PKEY) fast = vc_ca_p256_public_for_x509(key);

	if (!X509_set_pubkey(cert, fast != NULL ? fast : key)) {
		vc_crypto_set_error(error, "cannot set the public key");
		return FALSE;
	}
	return TRUE;
}

X509_EXTENSION *
vc_ext_aki_from_ski(const ASN1_OCTET_STRING *ski, GError **error)
{
	g_autoptr(AUTHORITY_KEYID) aki = AUTHORITY_KEYID_new();

	aki->keyid = ASN1_OCTET_STRING_dup(ski);
	/* RFC 5280 4.2.1.1: MUST NOT be critical */
	return vc_ca_ext_from_i2d(NID_authority_key_identifier, FALSE, aki, error);
}

static GENERAL_SUBTREE *
vc_ca_subtree_new(GENERAL_NAME *base)
{
	GENERAL_SUBTREE *st = GENERAL_SUBTREE_new();

	GENERAL_NAME_free(st->base);
	st->base = base;
	return st;
}

static GENERAL_NAME *
vc_ca_general_name_new_ip_zero(int len)
{
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	static const guint8 zeros[32] = {0};

	ASN1_OCTET_STRING_set(os, zeros, len);
	GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
	return gn;
}

/* RFC 5280 4.2.1.10, critical: the permitted dNSName subtrees, and every IP
 * address excluded (CA/B Forum BR 7.1.2.10.8): iPAddress is address + mask,
 * so 0.0.0.0/0 is 8 zero octets and ::/0 is 32; a zero-length iPAddress is
 * malformed and some verifiers reject the whole certificate for it. No URI
 * subtree: a urn:uuid: SAN has no host part and OpenSSL and Go refuse such a
 * name under any URI constraint. */
static X509_EXTENSION *
vc_ca_ext_name_constraints(const char *const *permit, GError **error)
{
	g_autoptr(NAME_CONSTRAINTS) nc = NAME_CONSTRAINTS_new();

	nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null();
	nc->excludedSubtrees = sk_GENERAL_SUBTREE_new_null();
	for (gsize i = 0; permit[i] != NULL; i++)
		sk_GENERAL_SUBTREE_push(
		    nc->permittedSubtrees,
		    vc_ca_subtree_new(vc_general_name_new_ia5(GEN_DNS, permit[i])));
	sk_GENERAL_SUBTREE_push(nc->excludedSubtrees,
				vc_ca_subtree_new(vc_ca_general_name_new_ip_zero(8)));
	sk_GENERAL_SUBTREE_push(nc->excludedSubtrees,
				vc_ca_subtree_new(vc_ca_general_name_new_ip_zero(32)));
	return vc_ca_ext_from_i2d(NID_name_constraints, TRUE, nc, error);
}

static gboolean
vc_ca_add_ext_owned(VcX509ExtStack *exts, X509_EXTENSION *ext)
{
	if (ext == NULL)
		return FALSE;
	sk_X509_EXTENSION_push(exts, ext);
	return TRUE;
}

/* The extensions of the restricted intermediate, shared by the self-signed
 * mode (copied into the certificate) and the CSR mode (extensionRequest). */
static VcX509ExtStack *
vc_ca_intermediate_extensions(const char *const *permit, EVP_PKEY *key, GError **error)
{
	g_autoptr(VcX509ExtStack) exts = sk_X509_EXTENSION_new_null();
	static const int ku_bits[] = {KU_BIT_KEY_CERT_SIGN, KU_BIT_CRL_SIGN};
	g_autoptr(ASN1_OCTET_STRING) ski = vc_ca_ski_from_key(key, error);

	if (ski == NULL)
		return NULL;
	if (!vc_ca_add_ext_owned(exts, vc_ca_ext_basic_constraints(TRUE, 0, error)) ||
	    !vc_ca_add_ext_owned(exts,
				 vc_ca_ext_key_usage(ku_bits, G_N_ELEMENTS(ku_bits), error)) ||
	    !vc_ca_add_ext_owned(exts, vc_ca_ext_name_constraints(permit, error)) ||
	    !vc_ca_add_ext_owned(exts,
				 vc_ca_ext_from_i2d(NID_subject_key_identifier, FALSE, ski, error)))
		return NULL;
	return g_steal_pointer(&exts);
}

static gboolean
vc_ca_sign_with(X509 *cert, EVP_PKEY *key, GError **error)
{
	if (X509_sign(cert, key, vc_key_get_md(key)) <= 0) {
		vc_crypto_set_error(error, "cannot sign certificate");
		return FALSE;
	}
	return TRUE;
}

/* A CA certificate (root or intermediate) with fresh serial and EXTS. */
static X509 *
vc_ca_cert_new(X509_NAME *subject, X509_NAME *issuer, EVP_PKEY *pub, gint64 lifetime_s,
	       VcX509ExtStack *exts, GError **error)
{
	g_autoptr(X509) cert = X509_new();
	g_autoptr(ASN1_INTEGER) serial = vc_serial_generate_integer(error);
	g_autoptr(ASN1_TIME) nb = NULL;
	g_autoptr(ASN1_TIME) na = NULL;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;

	if (serial == NULL)
		return NULL;
	nb = vc_asn1_time_from_unix(now - VC_CA_BACKDATE_S, error);
	na = nb != NULL ? vc_asn1_time_from_unix(now + lifetime_s, error) : NULL;
	if (na == NULL)
		return NULL;
	if (!X509_set_version(cert, X509_VERSION_3) || !X509_set_serialNumber(cert, serial) ||
	    !X509_set_subject_name(cert, subject) || !X509_set_issuer_name(cert, issuer) ||
	    !X509_set1_notBefore(cert, nb) || !X509_set1_notAfter(cert, na) ||
	    !X509_set_pubkey(cert, pub)) {
		vc_crypto_set_error(error, "cannot build CA certificate");
		return NULL;
	}
	for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
		if (!X509_add_ext(cert, sk_X509_EXTENSION_value(exts, i), -1)) {
			vc_crypto_set_error(error, "cannot add extension");
			return NULL;
		}
	}
	return g_steal_pointer(&cert);
}

/* ---- CA directory ------------------------------------------------------ */

static gboolean
vc_ca_check_init_options(const VcCaInitOptions *opts, GError **error)
{
	if (opts == NULL || opts->permit == NULL || opts->permit[0] == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
			    "at least one permitted DNS subtree (--permit) is required");
		return FALSE;
	}
	for (gsize i = 0; opts->permit[i] != NULL; i++) {
		const char *p = opts->permit[i];
		g_autoptr(GError) local = NULL;
		/* a leading "." (proper subdomains only) is allowed by RFC 5280
		 * 4.2.1.10 practice; the rest must be a valid host name */
		if (!vc_name_check_dns(p[0] == '.' ? p + 1 : p, &local)) {
			g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
				    "permitted subtree '%s' is not a valid DNS name: %s", p,
				    local->message);
			return FALSE;
		}
	}
	if (opts->lifetime_s < 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "negative CA lifetime");
		return FALSE;
	}
	return TRUE;
}

static char *
vc_ca_path(const char *dir, const char *file)
{
	return g_build_filename(dir, file, NULL);
}

/* Creates CA_DIR with mode 0700 and refuses to overwrite an existing CA
 * unless FORCE; with FORCE removes the files a new key would not match. */
static gboolean
vc_ca_prepare_ca_dir(const char *dir, gboolean force, GError **error)
{
	static const char *const files[] = {"ca.key",	"ca.pem", "chain.pem",
					    "root.pem", "ca.csr", "crl-number"};

	if (g_mkdir_with_parents(dir, 0700) < 0 || g_chmod(dir, 0700) < 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot create %s: %s", dir,
			    g_strerror(errno));
		return FALSE;
	}
	for (gsize i = 0; i < G_N_ELEMENTS(files); i++) {
		g_autofree char *p = vc_ca_path(dir, files[i]);
		if (!g_file_test(p, G_FILE_TEST_EXISTS))
			continue;
		if (!force &&
		    (g_str_equal(files[i], "ca.key") || g_str_equal(files[i], "ca.pem"))) {
			g_set_error(error, VC_ERROR, VC_ERROR_EXISTS,
				    "a CA already exists in %s (use --force to replace it)", dir);
			return FALSE;
		}
	}
	if (force) {
		for (gsize i = 0; i < G_N_ELEMENTS(files); i++) {
			g_autofree char *p = vc_ca_path(dir, files[i]);
			if (g_unlink(p) < 0 && errno != ENOENT) {
				g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot remove %s: %s", p,
					    g_strerror(errno));
				return FALSE;
			}
		}
	}
	return TRUE;
}

static gboolean
vc_ca_write_cert_file(const char *dir, const char *file, GPtrArray *certs, GError **error)
{
	g_autoptr(GString) s = g_string_new(NULL);
	g_autofree char *p = vc_ca_path(dir, file);

	for (guint i = 0; i < certs->len; i++) {
		g_autofree char *pem = vc_cert_to_pem(g_ptr_array_index(certs, i), error);
		if (pem == NULL)
			return FALSE;
		g_string_append(s, pem);
	}
	return vc_file_write_atomic(p, s->str, s->len, 0644, error);
}

static gboolean
vc_ca_write_one_cert(const char *dir, const char *file, X509 *cert, GError **error)
{
	g_autoptr(GPtrArray) one = g_ptr_array_new();

	g_ptr_array_add(one, cert);
	return vc_ca_write_cert_file(dir, file, one, error);
}

static char *
vc_ca_default_cn(const char *what)
{
	g_autofree char *host = g_strndup(g_get_host_name(), 32);

	return g_strdup_printf("virtcert %s %s", what, host);
}

gboolean
vc_ca_init_self_signed(const char *ca_dir, const VcCaInitOptions *opts, GError **error)
{
	g_autoptr(EVP_PKEY) root_key = NULL;
	g_autoptr(EVP_PKEY) key = NULL;
	g_autoptr(X509_NAME) root_name = NULL;
	g_autoptr(X509_NAME) name = NULL;
	g_autoptr(VcX509ExtStack) root_exts = sk_X509_EXTENSION_new_null();
	g_autoptr(VcX509ExtStack) exts = NULL;
	g_autoptr(ASN1_OCTET_STRING) root_ski = NULL;
	g_autoptr(X509) root = NULL;
	g_autoptr(X509) cert = NULL;
	g_autofree char *cn = NULL;
	g_autofree char *root_cn = NULL;
	g_autofree char *tag = NULL;
	g_autofree char *key_path = NULL;
	static const int ku_bits[] = {KU_BIT_KEY_CERT_SIGN, KU_BIT_CRL_SIGN};
	gint64 lifetime;

	if (!vc_ca_check_init_options(opts, error) ||
	    !vc_ca_prepare_ca_dir(ca_dir, opts->force, error))
		return FALSE;
	lifetime = opts->lifetime_s > 0 ? opts->lifetime_s : VC_CA_DEFAULT_LIFETIME_S;
	cn = opts->common_name != NULL ? g_strdup(opts->common_name) : vc_ca_default_cn("CA");
	/* a random tag keeps the subjects of two roots made on one host apart
	 * (NSS and GnuTLS look issuers up by subject) */
	tag = vc_serial_generate(error);
	if (tag == NULL)
		return FALSE;
	tag[8] = '\0';
	root_cn = g_strdup_printf("virtcert root %s", tag);

	root_key = vc_key_generate(opts->key_type, error);
	if (root_key == NULL)
		return FALSE;
	key = vc_key_generate(opts->key_type, error);
	if (key == NULL)
		return FALSE;

	/* the root: CA without path length limit, keyCertSign + cRLSign, SKI */
	root_ski = vc_ca_ski_from_key(root_key, error);
	if (root_ski == NULL)
		return FALSE;
	if (!vc_ca_add_ext_owned(root_exts, vc_ca_ext_basic_constraints(TRUE, -1, error)) ||
	    !vc_ca_add_ext_owned(root_exts,
				 vc_ca_ext_key_usage(ku_bits, G_N_ELEMENTS(ku_bits), error)) ||
	    !vc_ca_add_ext_owned(
		root_exts, vc_ca_ext_from_i2d(NID_subject_key_identifier, FALSE, root_ski, error)))
		return FALSE;
	root_name = vc_x509_name_from_cn(root_cn, error);
	if (root_name == NULL)
		return FALSE;
	/* the root outlives the intermediate it signs */
	root =
	    vc_ca_cert_new(root_name, root_name, root_key, lifetime + 24 * 3600, root_exts, error);
	if (root == NULL || !vc_ca_sign_with(root, root_key, error))
		return FALSE;

	name = vc_x509_name_from_cn(cn, error);
	if (name == NULL)
		return FALSE;
	exts = vc_ca_intermediate_extensions(opts->permit, key, error);
	if (exts == NULL || !vc_ca_add_ext_owned(exts, vc_ext_aki_from_ski(root_ski, error)))
		return FALSE;
	cert = vc_ca_cert_new(name, root_name, key, lifetime, exts, error);
	if (cert == NULL || !vc_ca_sign_with(cert, root_key, error))
		return FALSE;
	/* the root key has done its only job; EVP_PKEY_free clears it */
	g_clear_pointer(&root_key, EVP_PKEY_free);

	key_path = vc_ca_path(ca_dir, "ca.key");
	if (!vc_key_save(key, key_path, error) ||
	    !vc_ca_write_one_cert(ca_dir, "ca.pem", cert, error) ||
	    !vc_ca_write_one_cert(ca_dir, "chain.pem", cert, error) ||
	    !vc_ca_write_one_cert(ca_dir, "root.pem", root, error))
		return FALSE;
	return TRUE;
}

gboolean
vc_ca_init_csr(const char *ca_dir, const VcCaInitOptions *opts, const char *csr_out, GError **error)
{
	g_autoptr(EVP_PKEY) key = NULL;
	g_autoptr(X509_REQ) req = X509_REQ_new();
	g_autoptr(X509_NAME) name = NULL;
	g_autoptr(VcX509ExtStack) exts = NULL;
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
	g_autofree char *cn = NULL;
	g_autofree char *key_path = NULL;
	g_autofree char *csr_path = NULL;
	g_autofree char *pem = NULL;

	if (!vc_ca_check_init_options(opts, error) ||
	    !vc_ca_prepare_ca_dir(ca_dir, opts->force, error))
		return FALSE;
	cn = opts->common_name != NULL ? g_strdup(opts->common_name) : vc_ca_default_cn("CA");
	key = vc_key_generate(opts->key_type, error);
	name = vc_x509_name_from_cn(cn, error);
	if (key == NULL || name == NULL)
		return FALSE;
	exts = vc_ca_intermediate_extensions(opts->permit, key, error);
	if (exts == NULL)
		return FALSE;
	/* PKCS#10 (RFC 2986 4.1) with the extensions as extensionRequest
	 * (RFC 2985 5.4.2), so the organization's root can copy them */
	if (!X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, key) ||
	    !X509_REQ_add_extensions(req, exts) ||
	    X509_REQ_sign(req, key, vc_key_get_md(key)) <= 0 || !PEM_write_bio_X509_REQ(bio, req)) {
		vc_crypto_set_error(error, "cannot build the CA certificate request");
		return FALSE;
	}
	{
		char *data = NULL;
		long len = BIO_get_mem_data(bio, &data);
		pem = g_strndup(data, (gsize)len);
	}
	key_path = vc_ca_path(ca_dir, "ca.key");
	csr_path = vc_ca_path(ca_dir, "ca.csr");
	if (!vc_key_save(key, key_path, error) ||
	    !vc_file_write_atomic(csr_path, pem, strlen(pem), 0644, error))
		return FALSE;
	if (csr_out != NULL && !vc_file_write_atomic(csr_out, pem, strlen(pem), 0644, error))
		return FALSE;
	return TRUE;
}

/* ---- checks on a CA certificate --------------------------------------- */

/* The permitted dNSName subtrees of CERT's name constraints, which must be
 * present and critical. */
static GStrv
vc_ca_get_permitted_dns(X509 *cert, GError **error)
{
	int crit = -1;
	int idx = -1;
	g_autoptr(NAME_CONSTRAINTS) nc = X509_get_ext_d2i(cert, NID_name_constraints, &crit, &idx);
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();
	guint n = 0;

	if (nc == NULL) {
		ERR_clear_error();
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "the CA certificate has no name constraints");
		return NULL;
	}
	if (crit != 1) {
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "the CA certificate's name constraints are not critical");
		return NULL;
	}
	for (int i = 0; i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees); i++) {
		GENERAL_SUBTREE *st = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i);
		const ASN1_IA5STRING *s;
		if (st->base->type != GEN_DNS)
			continue;
		s = st->base->d.dNSName;
		/* an embedded NUL would make the C string lie about the subtree */
		if (memchr(ASN1_STRING_get0_data(s), '\0', (size_t)ASN1_STRING_length(s)) != NULL)
			continue;
		g_strv_builder_add(b, (const char *)ASN1_STRING_get0_data(s));
		n++;
	}
	if (n == 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "the CA certificate's name constraints permit no DNS subtree");
		return NULL;
	}
	return g_strv_builder_end(b);
}

static gboolean
vc_ca_check_restricted_ca(X509 *cert, EVP_PKEY *key, GError **error)
{
	g_auto(GStrv) permitted = NULL;
	uint32_t flags = X509_get_extension_flags(cert);

	if (key != NULL && X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO,
			    "the CA certificate does not match ca.key");
		return FALSE;
	}
	if ((flags & EXFLAG_INVALID) != 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "the CA certificate has invalid extensions");
		return FALSE;
	}
	if ((flags & EXFLAG_CA) == 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY, "the certificate is not a CA");
		return FALSE;
	}
	if (X509_get_pathlen(cert) != 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "the CA certificate must have path length 0");
		return FALSE;
	}
	if ((flags & EXFLAG_KUSAGE) == 0 || (X509_get_key_usage(cert) & KU_KEY_CERT_SIGN) == 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "the CA certificate's key usage lacks keyCertSign");
		return FALSE;
	}
	permitted = vc_ca_get_permitted_dns(cert, error);
	return permitted != NULL;
}

static gboolean
vc_ca_is_self_signed(X509 *cert)
{
	return X509_self_signed(cert, 0) == 1;
}

/* Verifies CERT against the trust anchor ROOT (or, without one, checks only
 * that the chain is well formed up to its top). */
static gboolean
vc_ca_verify_with(X509 *cert, X509 *root, GPtrArray *issuers, unsigned long flags, gint64 at,
		  GError **error)
{
	g_autoptr(X509_STORE) store = X509_STORE_new();
	g_autoptr(X509_STORE_CTX) ctx = X509_STORE_CTX_new();
	g_autoptr(VcX509Stack) untrusted = sk_X509_new_null();

	for (guint i = 0; issuers != NULL && i < issuers->len; i++) {
		X509 *c = g_ptr_array_index(issuers, i);
		X509_up_ref(c);
		sk_X509_push(untrusted, c);
	}
	if (!X509_STORE_add_cert(store, root) ||
	    !X509_STORE_CTX_init(ctx, store, cert, untrusted)) {
		vc_crypto_set_error(error, "cannot set up verification");
		return FALSE;
	}
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT | flags);
	if (at != 0)
		X509_STORE_CTX_set_time(ctx, 0, (time_t)at);
	if (X509_verify_cert(ctx) != 1) {
		int err = X509_STORE_CTX_get_error(ctx);
		X509 *at_cert = X509_STORE_CTX_get_current_cert(ctx);
		g_autofree char *who =
		    at_cert != NULL ? vc_x509_name_to_string(X509_get_subject_name(at_cert)) : NULL;
		ERR_clear_error();
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO, "verification failed: %s%s%s%s",
			    X509_verify_cert_error_string(err), who != NULL ? " (at \"" : "",
			    who != NULL ? who : "", who != NULL ? "\")" : "");
		return FALSE;
	}
	return TRUE;
}

/* A throw-away leaf as this CA would issue it: one name in each permitted
 * subtree, signed with KEY. */
static X509 *
vc_ca_probe_leaf_new(X509 *cert, EVP_PKEY *key, GError **error)
{
	g_auto(GStrv) permitted = vc_ca_get_permitted_dns(cert, error);
	g_autoptr(EVP_PKEY) leaf_key = NULL;
	g_autoptr(X509) leaf = X509_new();
	g_autoptr(X509_NAME) name = NULL;
	g_autoptr(ASN1_INTEGER) serial = NULL;
	g_autoptr(GENERAL_NAMES) gens = sk_GENERAL_NAME_new_null();
	g_autoptr(ASN1_OCTET_STRING) ski = NULL;
	g_autoptr(X509_EXTENSION) aki = NULL;
	g_autoptr(X509_EXTENSION) bc = NULL;

	if (permitted == NULL)
		return NULL;
	leaf_key = vc_key_generate(VC_KEY_TYPE_EC_P256, error);
	serial = leaf_key != NULL ? vc_serial_generate_integer(error) : NULL;
	name = serial != NULL ? vc_x509_name_from_cn("virtcert chain probe", error) : NULL;
	ski = name != NULL ? vc_ca_ski_from_key(key, error) : NULL;
	aki = ski != NULL ? vc_ext_aki_from_ski(ski, error) : NULL;
	bc = aki != NULL ? vc_ca_ext_basic_constraints(FALSE, -1, error) : NULL;
	if (bc == NULL)
		return NULL;
	for (gsize i = 0; permitted[i] != NULL; i++) {
		const char *p = permitted[i];
		g_autofree char *dns = g_strconcat("probe.", p[0] == '.' ? p + 1 : p, NULL);
		sk_GENERAL_NAME_push(gens, vc_general_name_new_ia5(GEN_DNS, dns));
	}
	if (!X509_set_version(leaf, X509_VERSION_3) || !X509_set_serialNumber(leaf, serial) ||
	    !X509_set_subject_name(leaf, name) ||
	    !X509_set_issuer_name(leaf, X509_get_subject_name(cert)) ||
	    !X509_set1_notBefore(leaf, X509_get0_notBefore(cert)) ||
	    !X509_set1_notAfter(leaf, X509_get0_notAfter(cert)) ||
	    !X509_set_pubkey(leaf, leaf_key) || !X509_add_ext(leaf, bc, -1) ||
	    !X509_add_ext(leaf, aki, -1) ||
	    X509_add1_ext_i2d(leaf, NID_subject_alt_name, gens, 0, X509V3_ADD_APPEND) != 1) {
		vc_crypto_set_error(error, "cannot build the chain probe");
		return NULL;
	}
	if (!vc_ca_sign_with(leaf, key, error))
		return NULL;
	return g_steal_pointer(&leaf);
}

/* Would a leaf of this CA validate from the root? Checking the intermediate
 * alone is not enough: a root whose pathLenConstraint is 0 (RFC 5280
 * 4.2.1.9) or whose name constraints exclude the CA's subtrees accepts the
 * intermediate and refuses every leaf under it. So a probe leaf is verified
 * through the whole chain (CERT, then ISSUERS) to ANCHOR, times ignored;
 * without a root (PARTIAL) to the top of the chain. */
static gboolean
vc_ca_verify_probe(X509 *cert, EVP_PKEY *key, X509 *anchor, GPtrArray *issuers, gboolean partial,
		   GError **error)
{
	g_autoptr(X509) probe = vc_ca_probe_leaf_new(cert, key, error);
	g_autoptr(GPtrArray) path = g_ptr_array_new();
	g_autofree char *root = NULL;

	if (probe == NULL)
		return FALSE;
	g_ptr_array_add(path, cert);
	for (guint i = 0; issuers != NULL && i < issuers->len; i++)
		g_ptr_array_add(path, g_ptr_array_index(issuers, i));
	if (!vc_ca_verify_with(
		probe, anchor, path,
		X509_V_FLAG_NO_CHECK_TIME | (partial ? X509_V_FLAG_PARTIAL_CHAIN : 0), 0, error)) {
		root = vc_x509_name_to_string(X509_get_subject_name(anchor));
		g_prefix_error(error,
			       "a certificate issued by this CA would not validate from \"%s\" "
			       "(a path length or name constraint above the CA forbids it; have "
			       "the CA signed by a root or intermediate that allows a CA below "
			       "it): ",
			       root);
		return FALSE;
	}
	return TRUE;
}

gboolean
vc_ca_import(const char *ca_dir, const char *cert_path, const char *root_path, GError **error)
{
	g_autofree char *key_path = vc_ca_path(ca_dir, "ca.key");
	g_autoptr(EVP_PKEY) key = vc_key_load(key_path, error);
	g_autoptr(GPtrArray) certs = NULL;
	g_autoptr(GPtrArray) roots = NULL;
	g_autoptr(GPtrArray) chain = g_ptr_array_new();
	X509 *cert;
	X509 *root = NULL;

	if (key == NULL) {
		g_prefix_error(error, "no CA key (run ca init --csr first): ");
		return FALSE;
	}
	certs = vc_cert_load_pem_file(cert_path, error);
	if (certs == NULL)
		return FALSE;
	cert = g_ptr_array_index(certs, 0);
	if (!vc_ca_check_restricted_ca(cert, key, error)) {
		g_prefix_error(error, "%s: ", cert_path);
		return FALSE;
	}
	for (guint i = 0; i < certs->len; i++) {
		X509 *c = g_ptr_array_index(certs, i);
		/* a self-signed certificate at the end of the file is the root */
		if (i > 0 && i == certs->len - 1 && vc_ca_is_self_signed(c) && root_path == NULL)
			root = c;
		else
			g_ptr_array_add(chain, c);
	}
	if (root_path != NULL) {
		roots = vc_cert_load_pem_file(root_path, error);
		if (roots == NULL)
			return FALSE;
		root = g_ptr_array_index(roots, 0);
	}
	if (root != NULL) {
		g_autoptr(GPtrArray) issuers = g_ptr_array_new();
		for (guint i = 1; i < chain->len; i++)
			g_ptr_array_add(issuers, g_ptr_array_index(chain, i));
		if (!vc_ca_verify_with(cert, root, issuers, X509_V_FLAG_NO_CHECK_TIME, 0, error)) {
			g_prefix_error(error, "%s does not chain to %s: ", cert_path,
				       root_path != NULL ? root_path : "the root in it");
			return FALSE;
		}
	}
	{
		g_autoptr(GPtrArray) issuers = g_ptr_array_new();
		for (guint i = 1; i < chain->len; i++)
			g_ptr_array_add(issuers, g_ptr_array_index(chain, i));
		if (!vc_ca_verify_probe(
			cert, key, root != NULL ? root : g_ptr_array_index(chain, chain->len - 1),
			issuers, root == NULL, error)) {
			g_prefix_error(error, "%s: ", cert_path);
			return FALSE;
		}
	}
	if (!vc_ca_write_one_cert(ca_dir, "ca.pem", cert, error) ||
	    !vc_ca_write_cert_file(ca_dir, "chain.pem", chain, error))
		return FALSE;
	if (root != NULL && !vc_ca_write_one_cert(ca_dir, "root.pem", root, error))
		return FALSE;
	return TRUE;
}

/* ---- the loaded CA ------------------------------------------------------ */

void
vc_ca_free(VcCa *ca)
{
	if (ca == NULL)
		return;
	g_free(ca->dir);
	EVP_PKEY_free(ca->key);
	X509_free(ca->cert);
	X509_free(ca->root);
	g_clear_pointer(&ca->chain, g_ptr_array_unref);
	g_strfreev(ca->permitted);
	g_free(ca->id);
	X509_STORE_free(ca->store);
	X509_STORE_free(ca->issue_store);
	sk_X509_pop_free(ca->untrusted, X509_free);
	X509_EXTENSION_free(ca->ext_bc);
	X509_EXTENSION_free(ca->ext_ku);
	X509_EXTENSION_free(ca->ext_ku_rsa);
	X509_EXTENSION_free(ca->ext_eku);
	X509_EXTENSION_free(ca->ext_aki);
	EVP_MD_CTX_free(ca->sign_template);
	g_free(ca);
}

static gboolean
vc_ca_prepare_leaf_extensions(VcCa *ca, GError **error)
{
	static const int ku_sig[] = {KU_BIT_DIGITAL_SIGNATURE};
	static const int ku_rsa[] = {KU_BIT_DIGITAL_SIGNATURE, KU_BIT_KEY_ENCIPHERMENT};
	g_autoptr(EXTENDED_KEY_USAGE) eku = sk_ASN1_OBJECT_new_null();
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca->cert);
	g_autoptr(ASN1_OCTET_STRING) computed = NULL;

	if (ski == NULL) {
		computed = vc_ca_ski_from_key(ca->key, error);
		if (computed == NULL)
			return FALSE;
		ski = computed;
	}
	sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth));
	sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth));
	ca->ext_bc = vc_ca_ext_basic_constraints(FALSE, -1, error);
	if (ca->ext_bc == NULL)
		return FALSE;
	ca->ext_ku = vc_ca_ext_key_usage(ku_sig, G_N_ELEMENTS(ku_sig), error);
	if (ca->ext_ku == NULL)
		return FALSE;
	ca->ext_ku_rsa = vc_ca_ext_key_usage(ku_rsa, G_N_ELEMENTS(ku_rsa), error);
	if (ca->ext_ku_rsa == NULL)
		return FALSE;
	/* RFC 5280 4.2.1.12: not critical, so relying parties that do not
	 * know the purposes still accept the certificate */
	ca->ext_eku = vc_ca_ext_from_i2d(NID_ext_key_usage, FALSE, eku, error);
	if (ca->ext_eku == NULL)
		return FALSE;
	ca->ext_aki = vc_ext_aki_from_ski(ski, error);
	if (ca->ext_aki == NULL)
		return FALSE;
	ca->id = vc_hex_encode(ASN1_STRING_get0_data(ski), MIN(8, (gsize)ASN1_STRING_length(ski)));
	return TRUE;
}

static gboolean
vc_ca_cert_get_not_after(X509 *cert, gint64 *ret_t, GError **error)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) {
		vc_crypto_set_error(error, "cannot read a CA certificate's notAfter");
		return FALSE;
	}
	*ret_t = (gint64)timegm(&tm);
	return TRUE;
}

/* The end of the chain's validity: the earliest notAfter of the
 * intermediate, its issuers and the root. */
static gboolean
vc_ca_compute_not_after(VcCa *ca, GError **error)
{
	gint64 t = 0;

	if (!vc_ca_cert_get_not_after(ca->cert, &ca->not_after, error))
		return FALSE;
	for (guint i = 0; i < ca->chain->len; i++) {
		if (!vc_ca_cert_get_not_after(g_ptr_array_index(ca->chain, i), &t, error))
			return FALSE;
		ca->not_after = MIN(ca->not_after, t);
	}
	if (ca->root != NULL) {
		if (!vc_ca_cert_get_not_after(ca->root, &t, error))
			return FALSE;
		ca->not_after = MIN(ca->not_after, t);
	}
	return TRUE;
}

VcCa *
vc_ca_load(const char *ca_dir, GError **error)
{
	g_autoptr(VcCa) ca = g_new0(VcCa, 1);
	g_autofree char *key_path = vc_ca_path(ca_dir, "ca.key");
	g_autofree char *chain_path = vc_ca_path(ca_dir, "chain.pem");
	g_autofree char *cert_path = vc_ca_path(ca_dir, "ca.pem");
	g_autofree char *root_path = vc_ca_path(ca_dir, "root.pem");
	g_autoptr(GError) local = NULL;
	g_autoptr(GPtrArray) issuers = g_ptr_array_new();
	X509 *anchor;

	ca->dir = g_strdup(ca_dir);
	ca->key = vc_key_load(key_path, error);
	if (ca->key == NULL)
		return NULL;
	ca->chain = vc_cert_load_pem_file(chain_path, &local);
	if (ca->chain == NULL) {
		g_clear_error(&local);
		ca->chain = vc_cert_load_pem_file(cert_path, error);
		if (ca->chain == NULL) {
			g_prefix_error(error,
				       "no CA certificate (import one after ca init --csr): ");
			return NULL;
		}
	}
	ca->cert = X509_dup(g_ptr_array_index(ca->chain, 0));
	if (!vc_ca_check_restricted_ca(ca->cert, ca->key, error)) {
		g_prefix_error(error, "%s: ", ca_dir);
		return NULL;
	}
	ca->permitted = vc_ca_get_permitted_dns(ca->cert, error);
	if (ca->permitted == NULL)
		return NULL;
	if (g_file_test(root_path, G_FILE_TEST_EXISTS)) {
		g_autoptr(GPtrArray) roots = vc_cert_load_pem_file(root_path, error);
		if (roots == NULL)
			return NULL;
		ca->root = X509_dup(g_ptr_array_index(roots, 0));
	}
	ca->md = vc_key_get_md(ca->key);
	if (!vc_ca_compute_not_after(ca, error))
		return NULL;

	/* The trust anchor is the root. Imported without a root, the top of
	 * the chain is the anchor and the chain may be partial. */
	ca->untrusted = sk_X509_new_null();
	for (guint i = 0; i < ca->chain->len; i++) {
		X509 *c = g_ptr_array_index(ca->chain, i);
		X509_up_ref(c);
		sk_X509_push(ca->untrusted, c);
		if (i > 0)
			g_ptr_array_add(issuers, c);
	}
	anchor = ca->root != NULL ? ca->root : g_ptr_array_index(ca->chain, ca->chain->len - 1);
	ca->store = X509_STORE_new();
	if (!X509_STORE_add_cert(ca->store, anchor)) {
		vc_crypto_set_error(error, "cannot set up the trust store");
		return NULL;
	}
	X509_STORE_set_flags(ca->store, X509_V_FLAG_X509_STRICT |
					    (ca->root == NULL ? X509_V_FLAG_PARTIAL_CHAIN : 0));
	/* Check the CA itself once here: leaf verification repeats it, but a
	 * broken chain is better reported on load than on every issuance.
	 * Time is not checked: an expired CA may still sign its last CRL. */
	if (ca->root != NULL &&
	    !vc_ca_verify_with(ca->cert, ca->root, issuers, X509_V_FLAG_NO_CHECK_TIME, 0, error)) {
		g_prefix_error(error, "%s: the CA does not chain to root.pem: ", ca_dir);
		return NULL;
	}
	if (!vc_ca_verify_probe(ca->cert, ca->key, anchor, issuers, ca->root == NULL, error)) {
		g_prefix_error(error, "%s: ", ca_dir);
		return NULL;
	}
	ca->issue_store = X509_STORE_new();
	if (!X509_STORE_add_cert(ca->issue_store, ca->cert)) {
		vc_crypto_set_error(error, "cannot set up the trust store");
		return NULL;
	}
	X509_STORE_set_flags(ca->issue_store, X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN);
	if (!vc_ca_prepare_leaf_extensions(ca, error))
		return NULL;

	ca->sign_template = EVP_MD_CTX_new();
	if (ca->sign_template == NULL ||
	    EVP_DigestSignInit_ex(ca->sign_template, NULL, ca->md != NULL ? "SHA256" : NULL, NULL,
				  NULL, ca->key, NULL) != 1) {
		vc_crypto_set_error(error, "cannot prepare signing");
		return NULL;
	}
	return g_steal_pointer(&ca);
}

X509 *
vc_ca_get_cert(VcCa *ca)
{
	return ca->cert;
}

X509 *
vc_ca_get_root(VcCa *ca)
{
	return ca->root;
}

GPtrArray *
vc_ca_get_chain(VcCa *ca)
{
	return ca->chain;
}

const char *const *
vc_ca_get_permitted(VcCa *ca)
{
	return (const char *const *)ca->permitted;
}

const char *
vc_ca_get_id(VcCa *ca)
{
	return ca->id;
}

gint64
vc_ca_get_not_after(VcCa *ca)
{
	return ca->not_after;
}

gboolean
vc_ca_check_names(VcCa *ca, const char *const *names, GError **error)
{
	if (names == NULL || names[0] == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY, "no DNS name to certify");
		return FALSE;
	}
	for (gsize i = 0; names[i] != NULL; i++) {
		g_autoptr(GError) local = NULL;
		gboolean inside = FALSE;

		if (!vc_name_check_dns(names[i], &local)) {
			g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
				    "'%s' is not a valid DNS name: %s", names[i], local->message);
			return FALSE;
		}
		for (gsize j = 0; ca->permitted[j] != NULL && !inside; j++)
			inside = vc_name_in_subtree(names[i], ca->permitted[j]);
		if (!inside) {
			g_autofree char *list = g_strjoinv(", ", ca->permitted);
			g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
				    "'%s' is outside the CA's permitted names (%s)", names[i],
				    list);
			return FALSE;
		}
	}
	return TRUE;
}

EVP_MD_CTX *
vc_ca_sign_ctx_new(VcCa *ca)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx == NULL || !EVP_MD_CTX_copy_ex(ctx, ca->sign_template)) {
		/* not every provider can duplicate a context: start afresh */
		ERR_clear_error();
		EVP_MD_CTX_free(ctx);
		ctx = EVP_MD_CTX_new();
		if (ctx == NULL ||
		    EVP_DigestSignInit_ex(ctx, NULL, ca->md != NULL ? "SHA256" : NULL, NULL, NULL,
					  ca->key, NULL) != 1) {
			EVP_MD_CTX_free(ctx);
			return NULL;
		}
	}
	return ctx;
}

/* X509_sign_ctx on a copy of the context initialised at load time: saves
 * the algorithm fetch and key set-up on every signature. */
gboolean
vc_ca_sign_item(VcCa *ca, X509 *cert, X509_CRL *crl, GError **error)
{
	g_autoptr(EVP_MD_CTX) ctx = vc_ca_sign_ctx_new(ca);
	int r;

	if (ctx == NULL) {
		vc_crypto_set_error(error, "cannot prepare signing");
		return FALSE;
	}
	r = cert != NULL ? X509_sign_ctx(cert, ctx) : X509_CRL_sign_ctx(crl, ctx);
	if (r <= 0) {
		vc_crypto_set_error(error, "signing failed");
		return FALSE;
	}
	return TRUE;
}

static gboolean vc_ca_verify_in(VcCa *ca, X509_STORE *store, X509 *leaf, gint64 now,
				GError **error);

/* Encodes VALUE straight into CERT's extension list. Why not X509_add_ext():
 * it copies the encoded extension it is given, a decode and a re-encode per
 * extension, and a leaf has four made for it alone. */
gboolean
vc_ca_add_ext_i2d(X509 *cert, int nid, gboolean critical, void *value, GError **error)
{
	if (X509_add1_ext_i2d(cert, nid, value, critical ? 1 : 0, X509V3_ADD_APPEND) != 1) {
		vc_crypto_set_error(error, "cannot add extension");
		return FALSE;
	}
	return TRUE;
}

static gboolean
vc_ca_add_san(X509 *cert, const char *const *dns_names, gboolean empty_subject,
	      const char *uuid_lower, GError **error)
{
	g_autoptr(GENERAL_NAMES) gens = sk_GENERAL_NAME_new_null();
	g_autofree char *urn = g_strconcat("urn:uuid:", uuid_lower, NULL);

	for (gsize i = 0; dns_names[i] != NULL; i++)
		sk_GENERAL_NAME_push(gens, vc_general_name_new_ia5(GEN_DNS, dns_names[i]));
	/* RFC 4122 3: the UUID URN names the VM whatever its DNS names */
	sk_GENERAL_NAME_push(gens, vc_general_name_new_ia5(GEN_URI, urn));
	/* RFC 5280 4.2.1.6: critical when the subject is empty */
	return vc_ca_add_ext_i2d(cert, NID_subject_alt_name, empty_subject, gens, error);
}

static gboolean
vc_ca_add_crl_dp(X509 *cert, const char *url, GError **error)
{
	g_autoptr(CRL_DIST_POINTS) cdp = sk_DIST_POINT_new_null();
	DIST_POINT *dp = DIST_POINT_new();

	dp->distpoint = DIST_POINT_NAME_new();
	dp->distpoint->type = 0; /* fullName */
	dp->distpoint->name.fullname = sk_GENERAL_NAME_new_null();
	sk_GENERAL_NAME_push(dp->distpoint->name.fullname, vc_general_name_new_ia5(GEN_URI, url));
	sk_DIST_POINT_push(cdp, dp);
	return vc_ca_add_ext_i2d(cert, NID_crl_distribution_points, FALSE, cdp, error);
}

static void
vc_ca_aia_push(AUTHORITY_INFO_ACCESS *aia, int method_nid, const char *url)
{
	ACCESS_DESCRIPTION *ad = ACCESS_DESCRIPTION_new();

	ASN1_OBJECT_free(ad->method);
	ad->method = OBJ_nid2obj(method_nid);
	GENERAL_NAME_free(ad->location);
	ad->location = vc_general_name_new_ia5(GEN_URI, url);
	sk_ACCESS_DESCRIPTION_push(aia, ad);
}

/* RFC 5280 4.2.2.1: the OCSP responder and the issuer's certificate (DER
 * over HTTP, "application/pkix-cert"), whichever are configured. */
static gboolean
vc_ca_add_aia(X509 *cert, const char *ocsp_url, const char *ca_issuers_url, GError **error)
{
	g_autoptr(AUTHORITY_INFO_ACCESS) aia = sk_ACCESS_DESCRIPTION_new_null();

	if (ocsp_url != NULL)
		vc_ca_aia_push(aia, NID_ad_OCSP, ocsp_url);
	if (ca_issuers_url != NULL)
		vc_ca_aia_push(aia, NID_ad_ca_issuers, ca_issuers_url);
	/* RFC 5280 4.2.2.1: MUST NOT be critical */
	return vc_ca_add_ext_i2d(cert, NID_info_access, FALSE, aia, error);
}

/* The extensions every leaf shares, encoded once at load: copied as they are. */
static gboolean
vc_ca_add_ext(X509 *cert, X509_EXTENSION *ext, GError **error)
{
	if (!X509_add_ext(cert, ext, -1)) {
		vc_crypto_set_error(error, "cannot add extension");
		return FALSE;
	}
	return TRUE;
}

static char *
vc_ca_format_time(gint64 t)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);

	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("?");
}

static gboolean
vc_ca_check_leaf_request(VcCa *ca, const VcLeafRequest *req, GError **error)
{
	if (req == NULL || req->public_key == NULL || req->serial_hex == NULL ||
	    req->dns_names == NULL || req->dns_names[0] == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
			    "a leaf needs a serial, a public key and at least one DNS name");
		return FALSE;
	}
	if (req->vm_uuid == NULL || !g_uuid_string_is_valid(req->vm_uuid)) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "invalid VM UUID '%s'",
			    req->vm_uuid != NULL ? req->vm_uuid : "(none)");
		return FALSE;
	}
	if (req->not_after <= req->not_before) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "notAfter is not after notBefore");
		return FALSE;
	}
	/* RFC 5280 6.1.3 does not stop a leaf from outliving its issuer, but
	 * relying parties reject it once the CA has expired: never promise a
	 * validity the chain cannot give */
	if (req->not_after > ca->not_after) {
		g_autofree char *want = vc_ca_format_time(req->not_after);
		g_autofree char *limit = vc_ca_format_time(ca->not_after);
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "a certificate valid until %s would outlive the CA chain, which "
			    "expires at %s: ask for a shorter lifetime or renew the CA",
			    want, limit);
		return FALSE;
	}
	return TRUE;
}

/* The unsigned leaf: everything but the signature. */
static X509 *
vc_ca_leaf_build(VcCa *ca, const VcLeafRequest *req, GError **error)
{
	g_autoptr(X509) cert = NULL;
	g_autoptr(ASN1_INTEGER) serial = NULL;
	g_autoptr(ASN1_TIME) nb = NULL;
	g_autoptr(ASN1_TIME) na = NULL;
	g_autoptr(ASN1_OCTET_STRING) ski = NULL;
	g_autofree char *uuid = NULL;
	X509_NAME *subject;
	gboolean empty_subject;

	if (!vc_ca_check_leaf_request(ca, req, error) ||
	    !vc_ca_check_names(ca, req->dns_names, error))
		return NULL;
	/* The profile: CN = the first name when it fits ub-common-name (64
	 * octets, RFC 5280 A.1), else an empty subject with the SAN critical
	 * (RFC 5280 4.2.1.6): a longer first name is a valid DNS name that
	 * X.509 cannot carry in a CN. */
	empty_subject = req->empty_subject || strlen(req->dns_names[0]) > VC_CA_CN_MAX;
	serial = vc_serial_from_hex(req->serial_hex, error);
	if (serial == NULL)
		return NULL;
	nb = vc_asn1_time_from_unix(req->not_before, error);
	if (nb == NULL)
		return NULL;
	na = vc_asn1_time_from_unix(req->not_after, error);
	if (na == NULL)
		return NULL;
	uuid = g_ascii_strdown(req->vm_uuid, -1);

	cert = X509_new();
	subject = X509_get_subject_name(cert);
	if (!X509_set_version(cert, X509_VERSION_3) || !X509_set_serialNumber(cert, serial) ||
	    !X509_set_issuer_name(cert, X509_get_subject_name(ca->cert)) ||
	    !X509_set1_notBefore(cert, nb) || !X509_set1_notAfter(cert, na) ||
	    (!empty_subject &&
	     !X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
					 (const unsigned char *)req->dns_names[0], -1, -1, 0))) {
		vc_crypto_set_error(error, "cannot build certificate");
		return NULL;
	}
	if (!vc_ca_leaf_set_pubkey(cert, req->public_key, error))
		return NULL;
	ski = vc_ca_ski_from_pubkey(X509_get_X509_PUBKEY(cert), error);
	if (ski == NULL)
		return NULL;
	if (!vc_ca_add_ext(cert, ca->ext_bc, error) ||
	    !vc_ca_add_ext(
		cert, EVP_PKEY_is_a(req->public_key, "RSA") ? ca->ext_ku_rsa : ca->ext_ku, error) ||
	    !vc_ca_add_ext(cert, ca->ext_eku, error) ||
	    !vc_ca_add_ext_i2d(cert, NID_subject_key_identifier, FALSE, ski, error) ||
	    !vc_ca_add_ext(cert, ca->ext_aki, error) ||
	    !vc_ca_add_san(cert, req->dns_names, empty_subject, uuid, error))
		return NULL;
	if (req->crl_url != NULL && !vc_ca_add_crl_dp(cert, req->crl_url, error))
		return NULL;
	if ((req->ocsp_url != NULL || req->ca_issuers_url != NULL) &&
	    !vc_ca_add_aia(cert, req->ocsp_url, req->ca_issuers_url, error))
		return NULL;
	return g_steal_pointer(&cert);
}

X509 *
vc_ca_issue_leaf(VcCa *ca, const VcLeafRequest *req, GError **error)
{
	g_autoptr(X509) cert = vc_ca_leaf_build(ca, req, error);

	if (cert == NULL || !vc_ca_sign_item(ca, cert, NULL, error))
		return NULL;
	if (!vc_ca_verify_in(ca, ca->issue_store, cert, 0, error)) {
		g_prefix_error(error,
			       "the new certificate %s failed verification: ", req->serial_hex);
		return NULL;
	}
	return g_steal_pointer(&cert);
}

static gboolean
vc_ca_verify_in(VcCa *ca, X509_STORE *store, X509 *leaf, gint64 now, GError **error)
{
	g_autoptr(X509_STORE_CTX) ctx = X509_STORE_CTX_new();

	/* the anchor's validity is checked like any other certificate's, but
	 * with the partial chain the root is not in the path: check it here */
	if (store == ca->issue_store && ca->root != NULL &&
	    X509_cmp_time(X509_get0_notAfter(ca->root), NULL) <= 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO, "the root certificate has expired");
		return FALSE;
	}
	if (ctx == NULL || !X509_STORE_CTX_init(ctx, store, leaf, ca->untrusted)) {
		vc_crypto_set_error(error, "cannot set up verification");
		return FALSE;
	}
	if (now != 0)
		X509_STORE_CTX_set_time(ctx, 0, (time_t)now);
	if (X509_verify_cert(ctx) != 1) {
		int err = X509_STORE_CTX_get_error(ctx);
		ERR_clear_error();
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO, "%s",
			    X509_verify_cert_error_string(err));
		return FALSE;
	}
	return TRUE;
}

/* The full check, from the root. */
gboolean
vc_ca_verify_leaf(VcCa *ca, X509 *leaf, gint64 now, GError **error)
{
	return vc_ca_verify_in(ca, ca->store, leaf, now, error);
}
