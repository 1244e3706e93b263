/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The host CA: a small CA that signs host certificates (lab and small
 * sites; an organization may use its own), revokes them and publishes its
 * CRL through agent/ca/vc-crl.c. */
#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "vc-ca-private.h"
#include "vc-ca.h"
#include "vc-error.h"
#include "vc-host-ca.h"
#include "vc-name.h"
#include "vc-placement.h"

#define VC_HOST_CA_DEFAULT_LIFETIME_S (10 * 365 * 86400LL)
/* as for the VM CA: a peer whose clock is a little behind still accepts */
#define VC_HOST_BACKDATE_S (5 * 60)

static gboolean
vc_host_ca_set_validity(X509 *cert, gint64 not_before, gint64 not_after, GError **error)
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
vc_host_ca_add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value, GError **error)
{
	g_autoptr(X509_EXTENSION) ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);

	if (ext == NULL || !X509_add_ext(cert, ext, -1)) {
		vc_crypto_set_error(error, "cannot add extension");
		return FALSE;
	}
	return TRUE;
}

struct _VcHostCa {
	char *dir;
	EVP_PKEY *key;
	X509 *cert;
};

static char *
vc_host_ca_path(const char *dir, const char *file)
{
	return g_build_filename(dir, file, NULL);
}

gboolean
vc_host_ca_init(const char *dir, const VcHostCaInitOptions *opts, GError **error)
{
	g_autofree char *key_path = vc_host_ca_path(dir, "ca.key");
	g_autofree char *cert_path = vc_host_ca_path(dir, "ca.pem");
	g_autofree char *index_path = vc_host_ca_path(dir, "index");
	g_autoptr(EVP_PKEY) key = NULL;
	g_autoptr(X509) cert = X509_new();
	g_autoptr(X509_NAME) name = NULL;
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
	serial = vc_serial_generate_integer(error);
	if (serial == NULL)
		return FALSE;
	name = vc_x509_name_from_cn(cn, error);
	if (name == NULL)
		return FALSE;
	if (!X509_set_version(cert, X509_VERSION_3) || !X509_set_serialNumber(cert, serial) ||
	    !X509_set_subject_name(cert, name) || !X509_set_issuer_name(cert, name) ||
	    !X509_set_pubkey(cert, key)) {
		vc_crypto_set_error(error, "cannot build host CA certificate");
		return FALSE;
	}
	if (!vc_host_ca_set_validity(cert, now - VC_HOST_BACKDATE_S, now + lifetime, error))
		return FALSE;
	X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
	/* RFC 5280 4.2.1.9 and 4.2.1.3: a CA that signs host certificates and
	 * their CRLs and nothing below them (pathlen 0) */
	if (!vc_host_ca_add_ext(cert, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0",
				error) ||
	    !vc_host_ca_add_ext(cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign", error) ||
	    !vc_host_ca_add_ext(cert, &ctx, NID_subject_key_identifier, "hash", error) ||
	    !vc_host_ca_add_ext(cert, &ctx, NID_authority_key_identifier, "keyid:always", error))
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
	g_autofree char *key_path = vc_host_ca_path(dir, "ca.key");
	g_autofree char *cert_path = vc_host_ca_path(dir, "ca.pem");
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

gboolean
vc_host_ca_check_name(const char *name, GError **error)
{
	return strcmp(name, "localhost") == 0 || vc_name_check_dns(name, error);
}

/* The CSR's subjectAltName, checked: dNSName (valid DNS names) and host
 * attribute URIs only. RET_DNS/RET_URIS get the values in order. */
static gboolean
vc_host_ca_csr_get_sans(X509_REQ *csr, GPtrArray *ret_dns, GPtrArray *ret_uris, GError **error)
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
		v = vc_general_name_get_ia5(s);
		if (v == NULL) {
			g_set_error_literal(error, VC_ERROR, VC_ERROR_POLICY,
					    "the CSR has a subjectAltName with a NUL character");
			return FALSE;
		}
		if (type == GEN_DNS) {
			g_autofree char *lower = g_ascii_strdown(v, -1);
			if (!vc_host_ca_check_name(lower, error)) {
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

X509_REQ *
vc_host_ca_load_csr(const char *path, GError **error)
{
	g_autofree char *data = NULL;
	g_autoptr(BIO) bio = vc_file_read_bio(path, G_MAXINT, &data, NULL, error);
	X509_REQ *req;

	if (bio == NULL)
		return NULL;
	req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	ERR_clear_error();
	if (req == NULL)
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "%s: not a PEM CSR", path);
	return req;
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
	if (!vc_host_ca_csr_get_sans(csr, dns, uris, error))
		return NULL;
	if (not_after < not_before) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "notAfter is before notBefore");
		return NULL;
	}
	serial = vc_serial_generate_integer(error);
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
	if (!vc_host_ca_set_validity(cert, not_before, not_after, error))
		return NULL;
	X509V3_set_ctx(&ctx, ca->cert, cert, NULL, NULL, 0);
	/* a leaf; EKU both ways since libvirt/QEMU migration TLS uses the
	 * same certificate as server (destination) and client (source). An EC
	 * key's keyUsage is not critical: RFC 8813 forbids keyEncipherment
	 * for it, and libvirt's TLS transport up to 9.x (Debian 12) refuses a
	 * certificate whose critical keyUsage lacks keyEncipherment, as its
	 * own (libvirtd does not start) and as a peer's; non-critical, it only
	 * warns */
	if (!vc_host_ca_add_ext(cert, &ctx, NID_basic_constraints, "critical,CA:FALSE", error) ||
	    !vc_host_ca_add_ext(cert, &ctx, NID_key_usage,
				EVP_PKEY_is_a(pub, "RSA")
				    ? "critical,digitalSignature,keyEncipherment"
				    : "digitalSignature",
				error) ||
	    !vc_host_ca_add_ext(cert, &ctx, NID_ext_key_usage, "serverAuth,clientAuth", error) ||
	    !vc_host_ca_add_ext(cert, &ctx, NID_subject_key_identifier, "hash", error) ||
	    !vc_host_ca_add_ext(cert, &ctx, NID_authority_key_identifier, "keyid:always", error))
		return NULL;
	/* the SAN is rebuilt from the checked values, never copied raw */
	for (guint i = 0; i < dns->len; i++)
		sk_GENERAL_NAME_push(gens,
				     vc_general_name_new_ia5(GEN_DNS, g_ptr_array_index(dns, i)));
	for (guint i = 0; i < uris->len; i++)
		sk_GENERAL_NAME_push(gens,
				     vc_general_name_new_ia5(GEN_URI, g_ptr_array_index(uris, i)));
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
vc_host_ca_index_load(VcHostCa *ca, GError **error)
{
	g_autofree char *path = vc_host_ca_path(ca->dir, "index");
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
vc_host_ca_index_save(VcHostCa *ca, GKeyFile *kf, GError **error)
{
	g_autofree char *path = vc_host_ca_path(ca->dir, "index");
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
		g_autofree char *issuer = vc_x509_name_to_string(X509_get_issuer_name(cert));
		ERR_clear_error();
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
			    "this host CA did not issue the certificate (its issuer is \"%s\")",
			    issuer);
		return FALSE;
	}
	kf = vc_host_ca_index_load(ca, error);
	if (kf == NULL)
		return FALSE;
	serial = vc_cert_get_serial_hex(cert);
	if (!g_key_file_has_key(kf, "revoked", serial, NULL))
		g_key_file_set_int64(kf, "revoked", serial, g_get_real_time() / G_USEC_PER_SEC);
	return vc_host_ca_index_save(ca, kf, error);
}

X509_CRL *
vc_host_ca_make_crl(VcHostCa *ca, gint64 validity_s, GError **error)
{
	g_autoptr(GKeyFile) kf = vc_host_ca_index_load(ca, error);
	g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(X509_CRL) crl = NULL;
	g_auto(GStrv) serials = NULL;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	guint64 n;

	if (kf == NULL)
		return NULL;
	if (validity_s <= 0) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "the CRL validity must be positive");
		return NULL;
	}
	n = (guint64)g_key_file_get_uint64(kf, "crl", "number", NULL) + 1;
	serials = g_key_file_get_keys(kf, "revoked", NULL, NULL);
	for (gsize i = 0; serials != NULL && serials[i] != NULL; i++) {
		VcCrlEntry *entry = g_new0(VcCrlEntry, 1);

		/* the host CA records no reason: unspecified, which RFC 5280
		 * 5.3.1 leaves out of the entry */
		entry->serial_hex = serials[i];
		entry->revoked_at = g_key_file_get_int64(kf, "revoked", serials[i], NULL);
		entry->reason = VC_REASON_UNSPECIFIED;
		g_ptr_array_add(entries, entry);
	}
	crl = vc_crl_sign_with_key(ca->cert, ca->key, entries, n, now, now + validity_s, error);
	if (crl == NULL)
		return NULL;
	g_key_file_set_uint64(kf, "crl", "number", n);
	if (!vc_host_ca_index_save(ca, kf, error))
		return NULL;
	return g_steal_pointer(&crl);
}
