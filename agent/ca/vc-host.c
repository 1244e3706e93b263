/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host trust: the lab host CA, enrollment and import of this host's
 * certificate, its self-check, the placement decision and the libvirt/QEMU
 * TLS files. */
#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "vc-ca.h"
#include "vc-domain-xml.h"
#include "vc-error.h"
#include "vc-host.h"
#include "vc-ca-private.h"
#include "vc-name.h"

#define VC_HOST_CA_DEFAULT_LIFETIME_S (10 * 365 * 86400LL)
/* as for the VM CA: a peer whose clock is a little behind still accepts */
#define VC_HOST_BACKDATE_S (5 * 60)
/* host CA bundles, certificates, CRLs and CSRs are small; anything bigger
 * is not what the administrator meant to give us */
#define VC_HOST_FILE_MAX (1024 * 1024)

/* ---- small helpers ------------------------------------------------------ */

static char *
read_small_file(const char *path, gsize *ret_len, GError **error)
{
	g_autofree char *data = NULL;
	gsize len = 0;
	g_autoptr(GError) local = NULL;

	if (!g_file_get_contents(path, &data, &len, &local)) {
		g_set_error(error, VC_ERROR,
			    g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)
				? VC_ERROR_NOT_FOUND
				: VC_ERROR_IO,
			    "%s", local->message);
		return NULL;
	}
	if (len > VC_HOST_FILE_MAX) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "%s: larger than %d octets",
			    path, VC_HOST_FILE_MAX);
		return NULL;
	}
	if (ret_len != NULL)
		*ret_len = len;
	return g_steal_pointer(&data);
}

static char *
time_to_string(const ASN1_TIME *t)
{
	struct tm tm = {0};
	g_autoptr(GDateTime) dt = NULL;

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return g_strdup("?");
	dt = g_date_time_new_utc(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
				 tm.tm_min, tm.tm_sec);
	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S UTC") : g_strdup("?");
}

static gint64
asn1_time_to_unix(const ASN1_TIME *t)
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
name_to_string(const X509_NAME *name)
{
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	long len;

	if (bio == NULL || X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0) {
		ERR_clear_error();
		return g_strdup("?");
	}
	len = BIO_get_mem_data(bio, &data);
	return g_strndup(data, (gsize)MAX(len, 0));
}

static ASN1_INTEGER *
random_serial(GError **error)
{
	g_autofree char *hex = vc_serial_generate(error);
	g_autoptr(BIGNUM) bn = NULL;
	ASN1_INTEGER *serial;

	if (hex == NULL)
		return NULL;
	if (!BN_hex2bn(&bn, hex) || (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL) {
		vc_crypto_set_error(error, "cannot encode serial");
		return NULL;
	}
	return serial;
}

static gboolean
set_validity(X509 *cert, gint64 not_before, gint64 not_after, GError **error)
{
	g_autoptr(ASN1_TIME) nb = ASN1_TIME_set(NULL, (time_t)not_before);
	g_autoptr(ASN1_TIME) na = ASN1_TIME_set(NULL, (time_t)not_after);

	/* RFC 5280 4.1.2.5: ASN1_TIME_set picks UTCTime or GeneralizedTime */
	if (nb == NULL || na == NULL || !X509_set1_notBefore(cert, nb) ||
	    !X509_set1_notAfter(cert, na)) {
		vc_crypto_set_error(error, "cannot encode validity");
		return FALSE;
	}
	return TRUE;
}

/* An extension from its OpenSSL config string (X509V3_EXT_nconf_nid): the
 * simplest correct encoder for the fixed extensions of this file. */
static gboolean
add_ext_conf(X509 *cert, X509V3_CTX *ctx, int nid, const char *value, GError **error)
{
	g_autoptr(X509_EXTENSION) ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);

	if (ext == NULL || !X509_add_ext(cert, ext, -1)) {
		vc_crypto_set_error(error, "cannot add extension");
		return FALSE;
	}
	return TRUE;
}

static GENERAL_NAME *
gn_ia5(int type, const char *value)
{
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();

	ASN1_STRING_set(s, value, -1);
	GENERAL_NAME_set0_value(gn, type, s);
	return gn;
}

/* The IA5String of a GENERAL_NAME as C string; NULL when it holds a NUL
 * (a classic way to smuggle "good.example\0.evil" past a check). */
static char *
gn_ia5_string(const ASN1_IA5STRING *s)
{
	int len = ASN1_STRING_length(s);
	const unsigned char *data = ASN1_STRING_get0_data(s);

	if (len < 0 || memchr(data, '\0', (gsize)len) != NULL)
		return NULL;
	return g_strndup((const char *)data, (gsize)len);
}

static gboolean
write_pem_certs(const char *path, GPtrArray *certs, int mode, GError **error)
{
	g_autoptr(GString) out = g_string_new(NULL);

	for (guint i = 0; i < certs->len; i++) {
		g_autofree char *pem = vc_cert_to_pem(g_ptr_array_index(certs, i), error);
		if (pem == NULL)
			return FALSE;
		g_string_append(out, pem);
	}
	return vc_file_write_atomic(path, out->str, out->len, mode, error);
}

static X509_CRL *
crl_load(const char *path, GError **error)
{
	g_autofree char *data = NULL;
	gsize len = 0;
	g_autoptr(BIO) bio = NULL;
	X509_CRL *crl;

	data = read_small_file(path, &len, error);
	if (data == NULL)
		return NULL;
	bio = BIO_new_mem_buf(data, (int)len);
	crl = bio != NULL ? PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL) : NULL;
	if (crl == NULL) {
		/* DER, as a CRL distribution point serves it */
		const unsigned char *p = (const unsigned char *)data;
		ERR_clear_error();
		crl = d2i_X509_CRL(NULL, &p, (long)len);
	}
	ERR_clear_error();
	if (crl == NULL)
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "%s: not a CRL (PEM or DER)",
			    path);
	return crl;
}

/* ---- verification ------------------------------------------------------- */

/* Verifies CERT against ANCHORS (the trusted host CA bundle; an intermediate
 * there is trusted on its own, X509_V_FLAG_PARTIAL_CHAIN) with UNTRUSTED
 * intermediates, CRL (nullable) for the issuing CA, at NOW. CHECK_TIME FALSE
 * ignores validity periods (to read an identity whatever the date). */
static gboolean
host_verify(X509 *cert, GPtrArray *anchors, GPtrArray *untrusted, X509_CRL *crl, gint64 now,
	    gboolean check_time, VcX509Stack **ret_chain, GError **error)
{
	g_autoptr(X509_STORE) store = X509_STORE_new();
	g_autoptr(X509_STORE_CTX) ctx = X509_STORE_CTX_new();
	g_autoptr(VcX509Stack) chain_in = sk_X509_new_null();
	unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN;
	int err, depth;
	X509 *bad;
	g_autofree char *issuer = name_to_string(X509_get_issuer_name(cert));

	if (store == NULL || ctx == NULL || chain_in == NULL) {
		vc_crypto_set_error(error, "out of memory");
		return FALSE;
	}
	for (guint i = 0; i < anchors->len; i++)
		X509_STORE_add_cert(store, g_ptr_array_index(anchors, i));
	for (guint i = 0; untrusted != NULL && i < untrusted->len; i++)
		sk_X509_push(chain_in, g_ptr_array_index(untrusted, i));
	if (crl != NULL) {
		X509_STORE_add_crl(store, crl);
		/* RFC 5280 6.3: the leaf against its issuer's CRL */
		flags |= X509_V_FLAG_CRL_CHECK;
	}
	if (!check_time)
		flags |= X509_V_FLAG_NO_CHECK_TIME;
	X509_STORE_set_flags(store, flags);
	if (!X509_STORE_CTX_init(ctx, store, cert, chain_in)) {
		vc_crypto_set_error(error, "cannot set up verification");
		return FALSE;
	}
	if (check_time)
		X509_STORE_CTX_set_time(
		    ctx, 0, (time_t)(now != 0 ? now : g_get_real_time() / G_USEC_PER_SEC));
	if (X509_verify_cert(ctx) == 1) {
		ERR_clear_error();
		if (ret_chain != NULL)
			*ret_chain = X509_STORE_CTX_get1_chain(ctx);
		return TRUE;
	}
	ERR_clear_error();
	err = X509_STORE_CTX_get_error(ctx);
	depth = X509_STORE_CTX_get_error_depth(ctx);
	bad = X509_STORE_CTX_get_current_cert(ctx);
	switch (err) {
	case X509_V_ERR_CERT_HAS_EXPIRED: {
		g_autofree char *when = time_to_string(bad ? X509_get0_notAfter(bad) : NULL);
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO, "%s expired on %s",
			    depth == 0 ? "the host certificate" : "the host CA certificate", when);
		break;
	}
	case X509_V_ERR_CERT_NOT_YET_VALID: {
		g_autofree char *when = time_to_string(bad ? X509_get0_notBefore(bad) : NULL);
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO, "%s is not valid before %s",
			    depth == 0 ? "the host certificate" : "the host CA certificate", when);
		break;
	}
	case X509_V_ERR_CERT_REVOKED: {
		g_autofree char *serial = vc_cert_get_serial_hex(cert);
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO,
			    "the host certificate (serial %s) is revoked by its host CA", serial);
		break;
	}
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: {
		g_autofree char *anchor =
		    anchors->len > 0
			? name_to_string(X509_get_subject_name(g_ptr_array_index(anchors, 0)))
			: g_strdup("none");
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO,
			    "the host certificate (issuer \"%s\") was not issued by the trusted "
			    "host CA (\"%s\"): %s",
			    issuer, anchor, X509_verify_cert_error_string(err));
		break;
	}
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO,
			    "the configured host CA CRL is not from the CA that issued the host "
			    "certificate (\"%s\"): %s",
			    issuer, X509_verify_cert_error_string(err));
		break;
	case X509_V_ERR_CRL_HAS_EXPIRED:
		g_set_error_literal(error, VC_ERROR, VC_ERROR_CRYPTO,
				    "the host CA's CRL has expired (nextUpdate passed): install a "
				    "current one");
		break;
	default:
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO,
			    "the host certificate does not verify (depth %d): %s", depth,
			    X509_verify_cert_error_string(err));
		break;
	}
	return FALSE;
}

static gboolean
check_bundle_is_ca(GPtrArray *anchors, const char *path, GError **error)
{
	for (guint i = 0; i < anchors->len; i++) {
		X509 *c = g_ptr_array_index(anchors, i);
		if (X509_check_ca(c) == 0) {
			g_autofree char *subject = name_to_string(X509_get_subject_name(c));
			ERR_clear_error();
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "%s: \"%s\" is not a CA certificate", path, subject);
			return FALSE;
		}
	}
	ERR_clear_error();
	return TRUE;
}

/* ---- host CA ------------------------------------------------------------ */

struct _VcHostCa {
	char *dir;
	EVP_PKEY *key;
	X509 *cert;
};

static char *
hca_path(const char *dir, const char *file)
{
	return g_build_filename(dir, file, NULL);
}

gboolean
vc_host_ca_init(const char *dir, const VcHostCaInitOptions *opts, GError **error)
{
	g_autofree char *key_path = hca_path(dir, "ca.key");
	g_autofree char *cert_path = hca_path(dir, "ca.pem");
	g_autofree char *index_path = hca_path(dir, "index");
	g_autoptr(EVP_PKEY) key = NULL;
	g_autoptr(X509) cert = X509_new();
	g_autoptr(X509_NAME) name = X509_NAME_new();
	g_autoptr(ASN1_INTEGER) serial = NULL;
	g_autofree char *pem = NULL;
	const char *cn =
	    opts != NULL && opts->common_name != NULL ? opts->common_name : "virtcert host CA";
	gint64 lifetime =
	    opts != NULL && opts->lifetime_s > 0 ? opts->lifetime_s : VC_HOST_CA_DEFAULT_LIFETIME_S;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	static const char index_data[] = "[crl]\nnumber=0\n\n[revoked]\n";
	X509V3_CTX ctx;

	if (g_mkdir_with_parents(dir, 0700) < 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot create %s: %s", dir,
			    g_strerror(errno));
		return FALSE;
	}
	if (g_file_test(key_path, G_FILE_TEST_EXISTS) && (opts == NULL || !opts->force)) {
		g_set_error(error, VC_ERROR, VC_ERROR_EXISTS,
			    "a host CA already exists in %s (use --force to replace it)", dir);
		return FALSE;
	}
	key = vc_key_generate(opts != NULL ? opts->key_type : VC_KEY_TYPE_EC_P256, error);
	if (key == NULL)
		return FALSE;
	serial = random_serial(error);
	if (serial == NULL)
		return FALSE;
	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"virtcert",
					-1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					-1, 0)) {
		vc_crypto_set_error(error, "invalid common name");
		return FALSE;
	}
	if (!X509_set_version(cert, X509_VERSION_3) || !X509_set_serialNumber(cert, serial) ||
	    !X509_set_subject_name(cert, name) || !X509_set_issuer_name(cert, name) ||
	    !X509_set_pubkey(cert, key)) {
		vc_crypto_set_error(error, "cannot build host CA certificate");
		return FALSE;
	}
	if (!set_validity(cert, now - VC_HOST_BACKDATE_S, now + lifetime, error))
		return FALSE;
	X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
	/* RFC 5280 4.2.1.9 and 4.2.1.3: a CA that signs host certificates and
	 * their CRLs and nothing below them (pathlen 0) */
	if (!add_ext_conf(cert, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0", error) ||
	    !add_ext_conf(cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign", error) ||
	    !add_ext_conf(cert, &ctx, NID_subject_key_identifier, "hash", error) ||
	    !add_ext_conf(cert, &ctx, NID_authority_key_identifier, "keyid:always", error))
		return FALSE;
	if (X509_sign(cert, key, vc_key_get_md(key)) <= 0) {
		vc_crypto_set_error(error, "cannot sign host CA certificate");
		return FALSE;
	}
	pem = vc_cert_to_pem(cert, error);
	if (pem == NULL)
		return FALSE;
	return vc_key_save(key, key_path, error) &&
	       vc_file_write_atomic(cert_path, pem, strlen(pem), 0644, error) &&
	       vc_file_write_atomic(index_path, index_data, strlen(index_data), 0600, error);
}

void
vc_host_ca_free(VcHostCa *ca)
{
	if (ca == NULL)
		return;
	g_free(ca->dir);
	EVP_PKEY_free(ca->key);
	X509_free(ca->cert);
	g_free(ca);
}

VcHostCa *
vc_host_ca_load(const char *dir, GError **error)
{
	g_autoptr(VcHostCa) ca = g_new0(VcHostCa, 1);
	g_autofree char *key_path = hca_path(dir, "ca.key");
	g_autofree char *cert_path = hca_path(dir, "ca.pem");
	g_autoptr(GPtrArray) certs = NULL;

	ca->dir = g_strdup(dir);
	ca->key = vc_key_load(key_path, error);
	if (ca->key == NULL) {
		g_prefix_error(error, "no host CA in %s (run 'virtcert host-ca init'): ", dir);
		return NULL;
	}
	certs = vc_cert_load_pem_file(cert_path, error);
	if (certs == NULL)
		return NULL;
	ca->cert = X509_dup(g_ptr_array_index(certs, 0));
	if (X509_check_private_key(ca->cert, ca->key) != 1) {
		ERR_clear_error();
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO, "%s does not match %s", cert_path,
			    key_path);
		return NULL;
	}
	return g_steal_pointer(&ca);
}

X509 *
vc_host_ca_get_cert(VcHostCa *ca)
{
	return ca->cert;
}

/* A host's dNSName: a valid DNS name, or "localhost" (RFC 6761 6.3: always
 * the loopback), which lets two "hosts" on one machine authenticate each
 * other in labs and tests; a peer reached as localhost is this machine. */
static gboolean
host_name_check(const char *name, GError **error)
{
	return strcmp(name, "localhost") == 0 || vc_name_check_dns(name, error);
}

/* The CSR's subjectAltName, checked: dNSName (valid DNS names) and host
 * attribute URIs only. RET_DNS/RET_URIS get the values in order. */
static gboolean
csr_get_sans(X509_REQ *csr, GPtrArray *ret_dns, GPtrArray *ret_uris, GError **error)
{
	g_autoptr(VcX509ExtStack) exts = X509_REQ_get_extensions(csr);
	g_autoptr(GENERAL_NAMES) gens = NULL;
	int idx;

	idx = exts != NULL ? X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1) : -1;
	if (idx >= 0)
		gens = X509V3_EXT_d2i(sk_X509_EXTENSION_value(exts, idx));
	ERR_clear_error();
	if (gens == NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "the CSR has no subjectAltName: enroll with 'virtcert host "
				    "enroll', which puts the FQDN and attributes there");
		return FALSE;
	}
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
		int type = 0;
		const ASN1_IA5STRING *s = GENERAL_NAME_get0_value(gn, &type);
		g_autofree char *v = NULL;

		if (type != GEN_DNS && type != GEN_URI) {
			g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
				    "the CSR asks for a subjectAltName of type %d: only dNSName "
				    "and " VC_HOST_ATTR_URI_PREFIX "KEY=VALUE URIs are signed",
				    type);
			return FALSE;
		}
		v = gn_ia5_string(s);
		if (v == NULL) {
			g_set_error_literal(error, VC_ERROR, VC_ERROR_POLICY,
					    "the CSR has a subjectAltName with a NUL character");
			return FALSE;
		}
		if (type == GEN_DNS) {
			g_autofree char *lower = g_ascii_strdown(v, -1);
			if (!host_name_check(lower, error)) {
				g_prefix_error(error, "CSR dNSName \"%s\": ", v);
				(*error)->code = VC_ERROR_POLICY;
				return FALSE;
			}
			g_ptr_array_add(ret_dns, g_steal_pointer(&lower));
		} else {
			if (!vc_host_attribute_uri_parse(v, NULL, NULL, error)) {
				g_prefix_error(error, "CSR URI: ");
				(*error)->code = VC_ERROR_POLICY;
				return FALSE;
			}
			g_ptr_array_add(ret_uris, g_steal_pointer(&v));
		}
	}
	if (ret_dns->len == 0) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_POLICY,
				    "the CSR names no dNSName: a host certificate needs the host's "
				    "FQDN for libvirt's TLS");
		return FALSE;
	}
	return TRUE;
}

X509 *
vc_host_ca_sign(VcHostCa *ca, X509_REQ *csr, gint64 not_before, gint64 not_after, GError **error)
{
	g_autoptr(EVP_PKEY) pub = NULL;
	g_autoptr(GPtrArray) dns = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) uris = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(X509) cert = X509_new();
	g_autoptr(X509_NAME) subject = X509_NAME_new();
	g_autoptr(ASN1_INTEGER) serial = NULL;
	g_autoptr(GENERAL_NAMES) gens = sk_GENERAL_NAME_new_null();
	g_autoptr(X509_EXTENSION) san = NULL;
	X509V3_CTX ctx;

	pub = X509_REQ_get_pubkey(csr);
	if (pub == NULL || X509_REQ_verify(csr, pub) != 1) {
		ERR_clear_error();
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "the CSR's signature does not verify");
		return NULL;
	}
	if (!vc_key_get_type(pub, NULL, error))
		return NULL;
	if (!csr_get_sans(csr, dns, uris, error))
		return NULL;
	if (not_after < not_before) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "notAfter is before notBefore");
		return NULL;
	}
	serial = random_serial(error);
	if (serial == NULL)
		return NULL;
	if (!X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
					(const unsigned char *)g_ptr_array_index(dns, 0), -1, -1,
					0) ||
	    !X509_set_version(cert, X509_VERSION_3) || !X509_set_serialNumber(cert, serial) ||
	    !X509_set_subject_name(cert, subject) ||
	    !X509_set_issuer_name(cert, X509_get_subject_name(ca->cert)) ||
	    !X509_set_pubkey(cert, pub)) {
		vc_crypto_set_error(error, "cannot build host certificate");
		return NULL;
	}
	if (!set_validity(cert, not_before, not_after, error))
		return NULL;
	X509V3_set_ctx(&ctx, ca->cert, cert, NULL, NULL, 0);
	/* a leaf; EKU both ways since libvirt/QEMU migration TLS uses the
	 * same certificate as server (destination) and client (source) */
	if (!add_ext_conf(cert, &ctx, NID_basic_constraints, "critical,CA:FALSE", error) ||
	    !add_ext_conf(cert, &ctx, NID_key_usage,
			  EVP_PKEY_is_a(pub, "RSA") ? "critical,digitalSignature,keyEncipherment"
						    : "critical,digitalSignature",
			  error) ||
	    !add_ext_conf(cert, &ctx, NID_ext_key_usage, "serverAuth,clientAuth", error) ||
	    !add_ext_conf(cert, &ctx, NID_subject_key_identifier, "hash", error) ||
	    !add_ext_conf(cert, &ctx, NID_authority_key_identifier, "keyid:always", error))
		return NULL;
	/* the SAN is rebuilt from the checked values, never copied raw */
	for (guint i = 0; i < dns->len; i++)
		sk_GENERAL_NAME_push(gens, gn_ia5(GEN_DNS, g_ptr_array_index(dns, i)));
	for (guint i = 0; i < uris->len; i++)
		sk_GENERAL_NAME_push(gens, gn_ia5(GEN_URI, g_ptr_array_index(uris, i)));
	san = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
	if (san == NULL || !X509_add_ext(cert, san, -1)) {
		vc_crypto_set_error(error, "cannot encode subjectAltName");
		return NULL;
	}
	if (X509_sign(cert, ca->key, vc_key_get_md(ca->key)) <= 0) {
		vc_crypto_set_error(error, "cannot sign host certificate");
		return NULL;
	}
	return g_steal_pointer(&cert);
}

static GKeyFile *
hca_index_load(VcHostCa *ca, GError **error)
{
	g_autofree char *path = hca_path(ca->dir, "index");
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) local = NULL;

	if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &local) &&
	    !g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "%s: %s", path, local->message);
		return NULL;
	}
	return g_steal_pointer(&kf);
}

static gboolean
hca_index_save(VcHostCa *ca, GKeyFile *kf, GError **error)
{
	g_autofree char *path = hca_path(ca->dir, "index");
	gsize len = 0;
	g_autofree char *data = g_key_file_to_data(kf, &len, NULL);

	return vc_file_write_atomic(path, data, len, 0600, error);
}

gboolean
vc_host_ca_revoke(VcHostCa *ca, X509 *cert, GError **error)
{
	g_autoptr(GKeyFile) kf = NULL;
	g_autofree char *serial = NULL;
	EVP_PKEY *ca_pub = X509_get0_pubkey(ca->cert);

	if (X509_check_issued(ca->cert, cert) != X509_V_OK || ca_pub == NULL ||
	    X509_verify(cert, ca_pub) != 1) {
		g_autofree char *issuer = name_to_string(X509_get_issuer_name(cert));
		ERR_clear_error();
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
			    "this host CA did not issue the certificate (its issuer is \"%s\")",
			    issuer);
		return FALSE;
	}
	kf = hca_index_load(ca, error);
	if (kf == NULL)
		return FALSE;
	serial = vc_cert_get_serial_hex(cert);
	if (!g_key_file_has_key(kf, "revoked", serial, NULL))
		g_key_file_set_int64(kf, "revoked", serial, g_get_real_time() / G_USEC_PER_SEC);
	return hca_index_save(ca, kf, error);
}

X509_CRL *
vc_host_ca_make_crl(VcHostCa *ca, gint64 validity_s, GError **error)
{
	g_autoptr(GKeyFile) kf = hca_index_load(ca, error);
	g_autoptr(X509_CRL) crl = X509_CRL_new();
	g_autoptr(ASN1_TIME) tu = NULL;
	g_autoptr(ASN1_TIME) nu = NULL;
	g_autoptr(ASN1_INTEGER) number = ASN1_INTEGER_new();
	g_auto(GStrv) serials = NULL;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	guint64 n;
	X509V3_CTX ctx;

	if (kf == NULL)
		return NULL;
	if (validity_s <= 0) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "the CRL validity must be positive");
		return NULL;
	}
	n = (guint64)g_key_file_get_uint64(kf, "crl", "number", NULL) + 1;
	tu = ASN1_TIME_set(NULL, (time_t)now);
	nu = ASN1_TIME_set(NULL, (time_t)(now + validity_s));
	/* version 2 for the extensions, RFC 5280 5.1.2.1 */
	if (tu == NULL || nu == NULL || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) ||
	    !X509_CRL_set1_lastUpdate(crl, tu) || !X509_CRL_set1_nextUpdate(crl, nu)) {
		vc_crypto_set_error(error, "cannot build CRL");
		return NULL;
	}
	serials = g_key_file_get_keys(kf, "revoked", NULL, NULL);
	for (gsize i = 0; serials != NULL && serials[i] != NULL; i++) {
		g_autoptr(X509_REVOKED) rev = X509_REVOKED_new();
		g_autoptr(BIGNUM) bn = NULL;
		g_autoptr(ASN1_INTEGER) serial = NULL;
		g_autoptr(ASN1_TIME) when = ASN1_TIME_set(
		    NULL, (time_t)g_key_file_get_int64(kf, "revoked", serials[i], NULL));

		if (!BN_hex2bn(&bn, serials[i]) ||
		    (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL || when == NULL ||
		    !X509_REVOKED_set_serialNumber(rev, serial) ||
		    !X509_REVOKED_set_revocationDate(rev, when) ||
		    !X509_CRL_add0_revoked(crl, rev)) {
			vc_crypto_set_error(error, "cannot add CRL entry");
			return NULL;
		}
		rev = NULL; /* owned by the CRL */
	}
	X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, crl, 0);
	/* RFC 5280 5.2.1 AKI and 5.2.3 CRL number, both non-critical */
	{
		g_autoptr(X509_EXTENSION) aki =
		    X509V3_EXT_nconf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
		if (aki == NULL || !X509_CRL_add_ext(crl, aki, -1) ||
		    !ASN1_INTEGER_set_uint64(number, n) ||
		    X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0) != 1 ||
		    !X509_CRL_sort(crl) ||
		    X509_CRL_sign(crl, ca->key, vc_key_get_md(ca->key)) <= 0) {
			vc_crypto_set_error(error, "cannot sign CRL");
			return NULL;
		}
	}
	g_key_file_set_uint64(kf, "crl", "number", n);
	if (!hca_index_save(ca, kf, error))
		return NULL;
	return g_steal_pointer(&crl);
}

/* ---- enrollment and import --------------------------------------------- */

char *
vc_host_default_fqdn(void)
{
	const char *name = g_get_host_name();
	struct addrinfo hints = {0};
	struct addrinfo *res = NULL;
	char *fqdn = NULL;

	if (strchr(name, '.') != NULL)
		return g_ascii_strdown(name, -1);
	/* the resolver's canonical name, as `hostname -f` does */
	hints.ai_family = AF_UNSPEC;
	hints.ai_flags = AI_CANONNAME;
	if (getaddrinfo(name, NULL, &hints, &res) == 0 && res != NULL &&
	    res->ai_canonname != NULL && strchr(res->ai_canonname, '.') != NULL)
		fqdn = g_ascii_strdown(res->ai_canonname, -1);
	if (res != NULL)
		freeaddrinfo(res);
	return fqdn != NULL ? fqdn : g_ascii_strdown(name, -1);
}

gboolean
vc_host_enroll(const char *key_path, const char *csr_path, const char *fqdn_in,
	       const char *const *attrs, const char *hostca_path, const char *ca_out,
	       gboolean force, GError **error)
{
	g_autofree char *host_dir = g_path_get_dirname(key_path);
	g_autofree char *csr_dir = g_path_get_dirname(csr_path);
	g_autofree char *ca_dir = g_path_get_dirname(ca_out);
	g_autofree char *fqdn = NULL;
	g_autoptr(GPtrArray) anchors = NULL;
	g_autofree char *ca_data = NULL;
	gsize ca_len = 0;
	g_autoptr(EVP_PKEY) key = NULL;
	g_autoptr(X509_REQ) req = X509_REQ_new();
	g_autoptr(X509_NAME) subject = X509_NAME_new();
	g_autoptr(GENERAL_NAMES) gens = sk_GENERAL_NAME_new_null();
	g_autoptr(VcX509ExtStack) exts = sk_X509_EXTENSION_new_null();
	g_autoptr(VcHostIdentity) check = vc_host_identity_new();
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
	X509_EXTENSION *san;
	char *csr_pem = NULL;
	long csr_len;

	fqdn = g_ascii_strdown(fqdn_in != NULL ? fqdn_in : "", -1);
	if (!host_name_check(fqdn, error)) {
		g_prefix_error(error, "host name \"%s\": ", fqdn);
		return FALSE;
	}
	for (gsize i = 0; attrs != NULL && attrs[i] != NULL; i++) {
		g_autofree char *k = NULL;
		g_autofree char *v = NULL;
		if (!vc_host_attribute_parse(attrs[i], &k, &v, error) ||
		    !vc_host_identity_add_attribute(check, k, v, error))
			return FALSE;
	}
	anchors = vc_cert_load_pem_file(hostca_path, error);
	if (anchors == NULL || !check_bundle_is_ca(anchors, hostca_path, error))
		return FALSE;
	ca_data = read_small_file(hostca_path, &ca_len, error);
	if (ca_data == NULL)
		return FALSE;
	if (g_mkdir_with_parents(host_dir, 0700) < 0 || g_mkdir_with_parents(csr_dir, 0700) < 0 ||
	    g_mkdir_with_parents(ca_dir, 0755) < 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot create %s: %s", host_dir,
			    g_strerror(errno));
		return FALSE;
	}
	if (g_file_test(key_path, G_FILE_TEST_EXISTS) && !force) {
		g_set_error(error, VC_ERROR, VC_ERROR_EXISTS,
			    "%s exists: this host is already enrolled (--force makes a new key)",
			    key_path);
		return FALSE;
	}
	key = vc_key_generate(VC_KEY_TYPE_EC_P256, error);
	if (key == NULL)
		return FALSE;
	sk_GENERAL_NAME_push(gens, gn_ia5(GEN_DNS, fqdn));
	for (gsize i = 0; attrs != NULL && attrs[i] != NULL; i++) {
		g_autofree char *k = NULL;
		g_autofree char *v = NULL;
		g_autofree char *uri = NULL;
		vc_host_attribute_parse(attrs[i], &k, &v, NULL);
		uri = vc_host_attribute_uri_build(k, v);
		sk_GENERAL_NAME_push(gens, gn_ia5(GEN_URI, uri));
	}
	san = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
	if (san == NULL) {
		vc_crypto_set_error(error, "cannot encode subjectAltName");
		return FALSE;
	}
	sk_X509_EXTENSION_push(exts, san);
	if (!X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, (const unsigned char *)fqdn,
					-1, -1, 0) ||
	    !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_subject_name(req, subject) || !X509_REQ_set_pubkey(req, key) ||
	    !X509_REQ_add_extensions(req, exts) ||
	    X509_REQ_sign(req, key, vc_key_get_md(key)) <= 0 || bio == NULL ||
	    !PEM_write_bio_X509_REQ(bio, req)) {
		vc_crypto_set_error(error, "cannot make the CSR");
		return FALSE;
	}
	csr_len = BIO_get_mem_data(bio, &csr_pem);
	return vc_key_save(key, key_path, error) &&
	       vc_file_write_atomic(csr_path, csr_pem, (gsize)csr_len, 0644, error) &&
	       vc_file_write_atomic(ca_out, ca_data, ca_len, 0644, error);
}

gboolean
vc_host_import(const char *cert_path, const char *key_path, const char *ca_path,
	       const char *cert_out, GError **error)
{
	g_autoptr(GPtrArray) certs = vc_cert_load_pem_file(cert_path, error);
	g_autoptr(GPtrArray) anchors = NULL;
	g_autoptr(GPtrArray) extra = g_ptr_array_new();
	g_autoptr(EVP_PKEY) key = NULL;
	X509 *leaf;

	if (certs == NULL)
		return FALSE;
	leaf = g_ptr_array_index(certs, 0);
	key = vc_key_load(key_path, error);
	if (key == NULL) {
		g_prefix_error(error, "no host key (run 'virtcert host enroll' first): ");
		return FALSE;
	}
	if (X509_check_private_key(leaf, key) != 1) {
		ERR_clear_error();
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO,
			    "%s does not match this host's key %s (was it signed from this host's "
			    "CSR?)",
			    cert_path, key_path);
		return FALSE;
	}
	anchors = vc_cert_load_pem_file(ca_path, error);
	if (anchors == NULL) {
		g_prefix_error(error, "no trusted host CA: ");
		return FALSE;
	}
	for (guint i = 1; i < certs->len; i++)
		g_ptr_array_add(extra, g_ptr_array_index(certs, i));
	if (!host_verify(leaf, anchors, extra, NULL, 0, TRUE, NULL, error))
		return FALSE;
	return write_pem_certs(cert_out, certs, 0644, error);
}

/* ---- this host ---------------------------------------------------------- */

struct _VcHost {
	X509 *cert;
	GPtrArray *extra;   /* X509*: what followed the leaf in its file */
	EVP_PKEY *key;	    /* nullable */
	GPtrArray *anchors; /* X509*: trusted host CA bundle; nullable */
	X509_CRL *crl;	    /* nullable */
	char *cert_pem;	    /* the file's certificates, re-encoded */
	char *ca_pem;	    /* nullable */
	char *fqdn;
	char *ca_fp;
};

void
vc_host_free(VcHost *host)
{
	if (host == NULL)
		return;
	X509_free(host->cert);
	g_ptr_array_unref(host->extra);
	EVP_PKEY_free(host->key);
	if (host->anchors != NULL)
		g_ptr_array_unref(host->anchors);
	X509_CRL_free(host->crl);
	g_free(host->cert_pem);
	g_free(host->ca_pem);
	g_free(host->fqdn);
	g_free(host->ca_fp);
	g_free(host);
}

static char *
first_dns_name(X509 *cert)
{
	g_autoptr(GENERAL_NAMES) gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);

	for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		int type = 0;
		const ASN1_IA5STRING *s =
		    GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, i), &type);
		if (type == GEN_DNS)
			return gn_ia5_string(s);
	}
	return NULL;
}

static X509 *
find_issuer(VcHost *host, X509 *cert)
{
	GPtrArray *lists[] = {host->extra, host->anchors};

	for (gsize l = 0; l < G_N_ELEMENTS(lists); l++)
		for (guint i = 0; lists[l] != NULL && i < lists[l]->len; i++) {
			X509 *c = g_ptr_array_index(lists[l], i);
			if (c != cert && X509_check_issued(c, cert) == X509_V_OK)
				return c;
		}
	ERR_clear_error();
	return NULL;
}

/* CERTS (leaf first) are copied; CERT_PATH names them in messages only. */
static VcHost *
host_new(GPtrArray *certs, const char *cert_path, const char *key_path, const char *ca_path,
	 const char *crl_path, GError **error)
{
	g_autoptr(VcHost) host = g_new0(VcHost, 1);
	g_autoptr(GString) pem = g_string_new(NULL);
	X509 *issuer;

	host->cert = X509_dup(g_ptr_array_index(certs, 0));
	host->extra = g_ptr_array_new_with_free_func((GDestroyNotify)X509_free);
	for (guint i = 0; i < certs->len; i++) {
		g_autofree char *p = vc_cert_to_pem(g_ptr_array_index(certs, i), error);
		if (p == NULL)
			return NULL;
		g_string_append(pem, p);
		if (i > 0)
			g_ptr_array_add(host->extra, X509_dup(g_ptr_array_index(certs, i)));
	}
	host->cert_pem = g_string_free(g_steal_pointer(&pem), FALSE);
	if (key_path != NULL) {
		host->key = vc_key_load(key_path, error);
		if (host->key == NULL)
			return NULL;
		if (X509_check_private_key(host->cert, host->key) != 1) {
			ERR_clear_error();
			g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO,
				    "the host certificate %s does not match the host key %s",
				    cert_path, key_path);
			return NULL;
		}
	}
	if (ca_path != NULL) {
		host->anchors = vc_cert_load_pem_file(ca_path, error);
		if (host->anchors == NULL)
			return NULL;
		if (!check_bundle_is_ca(host->anchors, ca_path, error))
			return NULL;
		host->ca_pem = read_small_file(ca_path, NULL, error);
		if (host->ca_pem == NULL)
			return NULL;
	}
	if (crl_path != NULL && g_file_test(crl_path, G_FILE_TEST_EXISTS)) {
		host->crl = crl_load(crl_path, error);
		if (host->crl == NULL)
			return NULL;
	}
	host->fqdn = first_dns_name(host->cert);
	issuer = find_issuer(host, host->cert);
	if (issuer != NULL)
		host->ca_fp = vc_cert_get_fingerprint_sha256(issuer);
	return g_steal_pointer(&host);
}

VcHost *
vc_host_load_files(const char *cert_path, const char *key_path, const char *ca_path,
		   const char *crl_path, GError **error)
{
	g_autoptr(GPtrArray) certs = NULL;

	g_return_val_if_fail(cert_path != NULL, NULL);
	certs = vc_cert_load_pem_file(cert_path, error);
	if (certs == NULL)
		return NULL;
	return host_new(certs, cert_path, key_path, ca_path, crl_path, error);
}

VcHost *
vc_host_new_from_certs(GPtrArray *certs, const char *ca_path, const char *crl_path, GError **error)
{
	g_return_val_if_fail(certs != NULL && certs->len > 0, NULL);
	return host_new(certs, "the peer's certificate", NULL, ca_path, crl_path, error);
}

VcHost *
vc_host_load(const VcConfig *config, GError **error)
{
	g_autofree char *cert = vc_config_get_host_path(config, "cert");
	g_autofree char *key = vc_config_get_host_path(config, "key");
	g_autofree char *ca = vc_config_get_host_path(config, "ca");
	g_autofree char *crl = vc_config_get_host_path(config, "crl");

	if (!g_file_test(cert, G_FILE_TEST_EXISTS)) {
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND,
			    "this host has no host certificate (%s; run 'virtcert host enroll' "
			    "and 'virtcert host import')",
			    cert);
		return NULL;
	}
	if (!g_file_test(ca, G_FILE_TEST_EXISTS)) {
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND,
			    "no trusted host CA bundle %s ([host] ca)", ca);
		return NULL;
	}
	return vc_host_load_files(cert, key, ca, crl, error);
}

X509 *
vc_host_get_cert(VcHost *host)
{
	return host->cert;
}

const char *
vc_host_get_fqdn(VcHost *host)
{
	return host->fqdn;
}

const char *
vc_host_get_ca_fingerprint(VcHost *host)
{
	return host->ca_fp;
}

gint64
vc_host_get_not_before(VcHost *host)
{
	return asn1_time_to_unix(X509_get0_notBefore(host->cert));
}

gint64
vc_host_get_not_after(VcHost *host)
{
	return asn1_time_to_unix(X509_get0_notAfter(host->cert));
}

char *
vc_host_get_issuer(VcHost *host)
{
	return name_to_string(X509_get_issuer_name(host->cert));
}

gboolean
vc_host_check_at(VcHost *host, gint64 now, GError **error)
{
	g_return_val_if_fail(host != NULL, FALSE);
	if (host->anchors == NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_NOT_FOUND,
				    "no trusted host CA configured ([host] ca)");
		return FALSE;
	}
	return host_verify(host->cert, host->anchors, host->extra, host->crl, now, TRUE, NULL,
			   error);
}

gboolean
vc_host_check(VcHost *host, GError **error)
{
	return vc_host_check_at(host, 0, error);
}

VcHostIdentity *
vc_host_get_identity(VcHost *host, GError **error)
{
	g_autoptr(VcHostIdentity) id = vc_host_identity_new();
	g_autoptr(GENERAL_NAMES) gens = NULL;

	g_return_val_if_fail(host != NULL, NULL);
	if (host->anchors != NULL) {
		g_autoptr(VcX509Stack) chain = NULL;
		/* the identity is the chain's; dates and revocation are the
		 * self-check's business */
		if (!host_verify(host->cert, host->anchors, host->extra, NULL, 0, FALSE, &chain,
				 error))
			return NULL;
		for (int i = 1; i < sk_X509_num(chain); i++) {
			g_autofree char *fp =
			    vc_cert_get_fingerprint_sha256(sk_X509_value(chain, i));
			if (fp == NULL || !vc_host_identity_add_ca(id, fp, error))
				return NULL;
		}
	} else {
		/* unverified: walk up through the certificates that came along */
		X509 *c = host->cert;
		for (guint depth = 0; depth < 8; depth++) {
			X509 *issuer = find_issuer(host, c);
			g_autofree char *fp = NULL;
			if (issuer == NULL)
				break;
			fp = vc_cert_get_fingerprint_sha256(issuer);
			if (fp == NULL || !vc_host_identity_add_ca(id, fp, error))
				return NULL;
			if (X509_check_issued(issuer, issuer) == X509_V_OK)
				break;
			c = issuer;
		}
		ERR_clear_error();
	}
	gens = X509_get_ext_d2i(host->cert, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		int type = 0;
		const ASN1_IA5STRING *s =
		    GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, i), &type);
		g_autofree char *uri = NULL;
		g_autofree char *k = NULL;
		g_autofree char *v = NULL;

		if (type != GEN_URI)
			continue;
		uri = gn_ia5_string(s);
		if (uri == NULL || !vc_host_attribute_uri_is_host(uri))
			continue;
		if (!vc_host_attribute_uri_parse(uri, &k, &v, error) ||
		    !vc_host_identity_add_attribute(id, k, v, error)) {
			g_prefix_error(error, "host certificate: ");
			return NULL;
		}
	}
	ERR_clear_error();
	return g_steal_pointer(&id);
}

gboolean
vc_host_placement_decide(VcHost *host, const VcPolicy *policy, char **ret_reason)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcHostIdentity) id = NULL;

	if (!vc_placement_is_restricted(policy)) {
		if (ret_reason != NULL)
			*ret_reason = g_strdup("the VM's policy does not restrict placement");
		return TRUE;
	}
	if (host == NULL) {
		if (ret_reason != NULL)
			*ret_reason = g_strdup("this host has no host certificate");
		return FALSE;
	}
	if (!vc_host_check(host, &error) || (id = vc_host_get_identity(host, &error)) == NULL) {
		if (ret_reason != NULL)
			*ret_reason = g_strdup_printf("this host's certificate is not usable: %s",
						      error->message);
		return FALSE;
	}
	return vc_placement_allows(policy, id, ret_reason);
}

JsonNode *
vc_host_placement_answer(VcHost *host, VcPolicySet *set, const char *xml, gboolean issue_all,
			 gint64 default_lifetime, GError **error)
{
	g_autoptr(VcDomainInfo) info = NULL;
	g_autoptr(VcPolicy) policy = NULL;
	g_autoptr(GError) local = NULL;
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autofree char *reason = NULL;
	gboolean allow;

	g_return_val_if_fail(xml != NULL, NULL);
	info = vc_domain_info_parse(xml, -1, error);
	if (info == NULL) {
		g_prefix_error(error, "domain XML: ");
		return NULL;
	}
	policy = vc_placement_resolve_policy(info, set, issue_all, default_lifetime, &local);
	if (local != NULL) {
		g_propagate_prefixed_error(error, g_steal_pointer(&local), "VM %s: ", info->name);
		return NULL;
	}
	if (policy == NULL) {
		allow = TRUE;
		reason = g_strdup("no virtcert policy selects this VM");
	} else {
		allow = vc_host_placement_decide(host, policy, &reason);
	}
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "allow");
	json_builder_add_boolean_value(b, allow);
	json_builder_set_member_name(b, "reason");
	json_builder_add_string_value(b, reason);
	json_builder_set_member_name(b, "vm");
	json_builder_add_string_value(b, info->name);
	json_builder_set_member_name(b, "restricted");
	json_builder_add_boolean_value(b, vc_placement_is_restricted(policy));
	json_builder_end_object(b);
	return json_builder_get_root(b);
}

/* ---- libvirt / QEMU TLS files ------------------------------------------ */

typedef enum {
	TLS_CA,
	TLS_CERT,
	TLS_KEY,
} TlsKind;

typedef struct {
	const char *path;
	TlsKind kind;
	int mode;
	gboolean qemu_group;
} TlsFile;

/* libvirt's default pki paths (docs/kbase/tlscerts.rst) and QEMU's default
 * default_tls_x509_cert_dir /etc/pki/qemu (qemu.conf) */
static const TlsFile tls_files[] = {
    {"etc/pki/CA/cacert.pem", TLS_CA, 0644, FALSE},
    {"etc/pki/libvirt/servercert.pem", TLS_CERT, 0644, FALSE},
    {"etc/pki/libvirt/clientcert.pem", TLS_CERT, 0644, FALSE},
    {"etc/pki/libvirt/private/serverkey.pem", TLS_KEY, 0600, FALSE},
    {"etc/pki/libvirt/private/clientkey.pem", TLS_KEY, 0600, FALSE},
    {"etc/pki/qemu/ca-cert.pem", TLS_CA, 0644, FALSE},
    {"etc/pki/qemu/server-cert.pem", TLS_CERT, 0644, FALSE},
    {"etc/pki/qemu/client-cert.pem", TLS_CERT, 0644, FALSE},
    /* QEMU runs as an unprivileged user and reads its keys itself */
    {"etc/pki/qemu/server-key.pem", TLS_KEY, 0640, TRUE},
    {"etc/pki/qemu/client-key.pem", TLS_KEY, 0640, TRUE},
};

static gboolean
same_contents(const char *path, const char *data, gsize len)
{
	g_autofree char *old = NULL;
	gsize old_len = 0;
	gboolean same;

	if (!g_file_get_contents(path, &old, &old_len, NULL))
		return FALSE;
	same = old_len == len && memcmp(old, data, len) == 0;
	OPENSSL_cleanse(old, old_len);
	return same;
}

gboolean
vc_host_install_libvirt_tls(VcHost *host, const char *root, const char *qemu_group, gboolean force,
			    GPtrArray **ret_written, GError **error)
{
	g_autoptr(GPtrArray) written = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) conflicts = g_ptr_array_new_with_free_func(g_free);
	char *key_pem = NULL;
	gid_t gid = 0;
	gboolean ok = TRUE;

	g_return_val_if_fail(host != NULL, FALSE);
	if (host->key == NULL || host->ca_pem == NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "the host certificate needs its key and the trusted host CA");
		return FALSE;
	}
	if (qemu_group != NULL) {
		struct group *gr = getgrnam(qemu_group);
		if (gr == NULL) {
			g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "no group \"%s\"",
				    qemu_group);
			return FALSE;
		}
		gid = gr->gr_gid;
	}
	if (root == NULL)
		root = "/";
	key_pem = vc_key_to_pem(host->key, error);
	if (key_pem == NULL)
		return FALSE;

	/* all or nothing: look for conflicts before writing anything */
	for (gsize i = 0; i < G_N_ELEMENTS(tls_files); i++) {
		g_autofree char *path = g_build_filename(root, tls_files[i].path, NULL);
		const char *data = tls_files[i].kind == TLS_CA	   ? host->ca_pem
				   : tls_files[i].kind == TLS_CERT ? host->cert_pem
								   : key_pem;
		if (!force && g_file_test(path, G_FILE_TEST_EXISTS) &&
		    !same_contents(path, data, strlen(data)))
			g_ptr_array_add(conflicts, g_steal_pointer(&path));
	}
	if (conflicts->len > 0) {
		g_autoptr(GString) s = g_string_new(NULL);
		for (guint i = 0; i < conflicts->len; i++)
			g_string_append_printf(s, "%s%s", i > 0 ? ", " : "",
					       (const char *)g_ptr_array_index(conflicts, i));
		g_set_error(error, VC_ERROR, VC_ERROR_EXISTS,
			    "other TLS files are installed (%s): --force replaces them", s->str);
		vc_secret_free(key_pem);
		return FALSE;
	}

	for (gsize i = 0; ok && i < G_N_ELEMENTS(tls_files); i++) {
		const TlsFile *f = &tls_files[i];
		g_autofree char *path = g_build_filename(root, f->path, NULL);
		g_autofree char *dir = g_path_get_dirname(path);
		const char *data = f->kind == TLS_CA	 ? host->ca_pem
				   : f->kind == TLS_CERT ? host->cert_pem
							 : key_pem;
		/* libvirt's private/ holds keys only: not listable by others */
		int dir_mode = g_str_has_suffix(dir, "/private") ? 0700 : 0755;

		if (g_mkdir_with_parents(dir, dir_mode) < 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot create %s: %s", dir,
				    g_strerror(errno));
			ok = FALSE;
			break;
		}
		/* written with the final mode, then given to the group: the key
		 * is never readable by more than intended */
		ok = vc_file_write_atomic(path, data, strlen(data), f->mode, error);
		if (ok && f->qemu_group && qemu_group != NULL && chown(path, (uid_t)-1, gid) < 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot give %s to group %s: %s",
				    path, qemu_group, g_strerror(errno));
			ok = FALSE;
		}
		if (ok)
			g_ptr_array_add(written, g_steal_pointer(&path));
	}
	vc_secret_free(key_pem);
	if (!ok)
		return FALSE;
	if (ret_written != NULL)
		*ret_written = g_steal_pointer(&written);
	return TRUE;
}
