/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* This host's identity: enrollment and import of its certificate, its
 * self-check against the trusted host CA and its CRL, the identity placement
 * is evaluated against, and the placement decision. */
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>

#include <glib/gstdio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "vc-ca-private.h"
#include "vc-ca.h"
#include "vc-domain-xml.h"
#include "vc-error.h"
#include "vc-host-private.h"
#include "vc-host.h"

/* host CA bundles are small; anything bigger is not what the administrator
 * meant to give us */
#define VC_HOST_FILE_MAX (1024 * 1024)

/* NULL when T is NULL or cannot be read. */
static GDateTime *
vc_host_asn1_time_to_datetime(const ASN1_TIME *t)
{
	struct tm tm = {0};

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return NULL;
	return g_date_time_new_utc(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
				   tm.tm_min, tm.tm_sec);
}

static char *
vc_host_time_to_string(const ASN1_TIME *t)
{
	g_autoptr(GDateTime) dt = vc_host_asn1_time_to_datetime(t);

	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S UTC") : g_strdup("?");
}

static gint64
vc_host_asn1_time_to_unix(const ASN1_TIME *t)
{
	g_autoptr(GDateTime) dt = vc_host_asn1_time_to_datetime(t);

	return dt != NULL ? g_date_time_to_unix(dt) : 0;
}

static gboolean
vc_host_write_pem_certs(const char *path, GPtrArray *certs, int mode, GError **error)
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

/* ---- verification ------------------------------------------------------- */

/* Verifies CERT against ANCHORS (the trusted host CA bundle; an intermediate
 * there is trusted on its own, X509_V_FLAG_PARTIAL_CHAIN) with UNTRUSTED
 * intermediates, CRL (nullable) for the issuing CA, at NOW. CHECK_TIME FALSE
 * ignores validity periods (to read an identity whatever the date). */
static gboolean
vc_host_verify(X509 *cert, GPtrArray *anchors, GPtrArray *untrusted, X509_CRL *crl, gint64 now,
	       gboolean check_time, VcX509Stack **ret_chain, GError **error)
{
	g_autoptr(X509_STORE) store = X509_STORE_new();
	g_autoptr(X509_STORE_CTX) ctx = X509_STORE_CTX_new();
	g_autoptr(VcX509Stack) chain_in = sk_X509_new_null();
	unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN;
	int err, depth;
	X509 *bad;
	g_autofree char *issuer = vc_x509_name_to_string(X509_get_issuer_name(cert));

	if (store == NULL || ctx == NULL || chain_in == NULL) {
		vc_crypto_set_error(error, "out of memory");
		return FALSE;
	}
	for (guint i = 0; i < anchors->len; i++)
		X509_STORE_add_cert(store, g_ptr_array_index(anchors, i));
	/* the stack frees what it holds: each certificate goes in with a
	 * reference of its own (UNTRUSTED keeps its own) */
	for (guint i = 0; untrusted != NULL && i < untrusted->len; i++) {
		X509 *c = g_ptr_array_index(untrusted, i);
		if (!X509_up_ref(c)) {
			vc_crypto_set_error(error, "out of memory");
			return FALSE;
		}
		if (!sk_X509_push(chain_in, c)) {
			X509_free(c);
			vc_crypto_set_error(error, "out of memory");
			return FALSE;
		}
	}
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
		g_autofree char *when =
		    vc_host_time_to_string(bad ? X509_get0_notAfter(bad) : NULL);
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO, "%s expired on %s",
			    depth == 0 ? "the host certificate" : "the host CA certificate", when);
		break;
	}
	case X509_V_ERR_CERT_NOT_YET_VALID: {
		g_autofree char *when =
		    vc_host_time_to_string(bad ? X509_get0_notBefore(bad) : NULL);
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
		    anchors->len > 0 ? vc_x509_name_to_string(
					   X509_get_subject_name(g_ptr_array_index(anchors, 0)))
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
vc_host_check_bundle_is_ca(GPtrArray *anchors, const char *path, GError **error)
{
	for (guint i = 0; i < anchors->len; i++) {
		X509 *c = g_ptr_array_index(anchors, i);
		if (X509_check_ca(c) == 0) {
			g_autofree char *subject = vc_x509_name_to_string(X509_get_subject_name(c));
			ERR_clear_error();
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "%s: \"%s\" is not a CA certificate", path, subject);
			return FALSE;
		}
	}
	ERR_clear_error();
	return TRUE;
}

/* ---- enrollment and import --------------------------------------------- */

static gboolean vc_host_check_profile_x509(X509 *cert, VcHostRole role, GError **error);

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

/* A CSR signed by KEY: subject CN = FQDN, SAN dNSName FQDN and one
 * urn:virtcert:host: URI per "KEY=VALUE" of ATTRS (already checked). */
static char *
vc_host_make_csr(EVP_PKEY *key, const char *fqdn, const char *const *attrs, GError **error)
{
	g_autoptr(X509_REQ) req = X509_REQ_new();
	g_autoptr(X509_NAME) subject = X509_NAME_new();
	g_autoptr(GENERAL_NAMES) gens = sk_GENERAL_NAME_new_null();
	g_autoptr(VcX509ExtStack) exts = sk_X509_EXTENSION_new_null();
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
	X509_EXTENSION *san;
	char *csr_pem = NULL;
	long csr_len;

	sk_GENERAL_NAME_push(gens, vc_general_name_new_ia5(GEN_DNS, fqdn));
	for (gsize i = 0; attrs != NULL && attrs[i] != NULL; i++) {
		g_autofree char *k = NULL;
		g_autofree char *v = NULL;
		g_autofree char *uri = NULL;
		vc_host_attribute_parse(attrs[i], &k, &v, NULL);
		uri = vc_host_attribute_uri_build(k, v);
		sk_GENERAL_NAME_push(gens, vc_general_name_new_ia5(GEN_URI, uri));
	}
	san = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
	if (san == NULL) {
		vc_crypto_set_error(error, "cannot encode subjectAltName");
		return NULL;
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
		return NULL;
	}
	csr_len = BIO_get_mem_data(bio, &csr_pem);
	return g_strndup(csr_pem, (gsize)csr_len);
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
	g_autoptr(VcHostIdentity) check = vc_host_identity_new();
	g_autofree char *csr_pem = NULL;

	fqdn = g_ascii_strdown(fqdn_in != NULL ? fqdn_in : "", -1);
	if (!vc_host_ca_check_name(fqdn, error)) {
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
	if (anchors == NULL || !vc_host_check_bundle_is_ca(anchors, hostca_path, error))
		return FALSE;
	ca_data = vc_file_read(hostca_path, VC_HOST_FILE_MAX, &ca_len, error);
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
	csr_pem = vc_host_make_csr(key, fqdn, attrs, error);
	if (csr_pem == NULL)
		return FALSE;
	return vc_key_save(key, key_path, error) &&
	       vc_file_write_atomic(csr_path, csr_pem, strlen(csr_pem), 0644, error) &&
	       vc_file_write_atomic(ca_out, ca_data, ca_len, 0644, error);
}

gboolean
vc_host_write_renewal_csr(VcHost *host, const char *csr_path, GError **error)
{
	g_autoptr(VcHostIdentity) id = NULL;
	g_autoptr(GPtrArray) attrs = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GList) keys = NULL;
	g_autofree char *csr_pem = NULL;

	g_return_val_if_fail(host != NULL, FALSE);
	if (host->key == NULL || host->fqdn == NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "renewing needs the host key and a host certificate with a "
				    "dNSName");
		return FALSE;
	}
	id = vc_host_get_identity(host, error);
	if (id == NULL)
		return FALSE;
	keys = g_list_sort(g_hash_table_get_keys(id->attributes), (GCompareFunc)g_strcmp0);
	for (GList *l = keys; l != NULL; l = l->next) {
		GPtrArray *values = vc_host_identity_get_values(id, l->data);
		for (guint i = 0; values != NULL && i < values->len; i++)
			g_ptr_array_add(
			    attrs, g_strdup_printf("%s=%s", (const char *)l->data,
						   (const char *)g_ptr_array_index(values, i)));
	}
	g_ptr_array_add(attrs, NULL);
	csr_pem = vc_host_make_csr(host->key, host->fqdn, (const char *const *)attrs->pdata, error);
	return csr_pem != NULL &&
	       vc_file_write_atomic(csr_path, csr_pem, strlen(csr_pem), 0644, error);
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
	if (!vc_host_verify(leaf, anchors, extra, NULL, 0, TRUE, NULL, error) ||
	    !vc_host_check_profile_x509(leaf, VC_HOST_ROLE_BOTH, error))
		return FALSE;
	return vc_host_write_pem_certs(cert_out, certs, 0644, error);
}

/* ---- this host ---------------------------------------------------------- */

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
vc_host_first_dns_name(X509 *cert)
{
	g_autoptr(GENERAL_NAMES) gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);

	for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		int type = 0;
		const ASN1_IA5STRING *s =
		    GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, i), &type);
		if (type == GEN_DNS)
			return vc_general_name_get_ia5(s);
	}
	return NULL;
}

static X509 *
vc_host_find_issuer(VcHost *host, X509 *cert)
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
vc_host_new(GPtrArray *certs, const char *cert_path, const char *key_path, const char *ca_path,
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
		if (!vc_host_check_bundle_is_ca(host->anchors, ca_path, error))
			return NULL;
		host->ca_pem = vc_file_read(ca_path, VC_HOST_FILE_MAX, NULL, error);
		if (host->ca_pem == NULL)
			return NULL;
	}
	if (crl_path != NULL && g_file_test(crl_path, G_FILE_TEST_EXISTS)) {
		host->crl = vc_crl_load(crl_path, error);
		if (host->crl == NULL)
			return NULL;
	}
	host->fqdn = vc_host_first_dns_name(host->cert);
	issuer = vc_host_find_issuer(host, host->cert);
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
	return vc_host_new(certs, cert_path, key_path, ca_path, crl_path, error);
}

VcHost *
vc_host_new_from_certs(GPtrArray *certs, const char *ca_path, const char *crl_path, GError **error)
{
	g_return_val_if_fail(certs != NULL && certs->len > 0, NULL);
	return vc_host_new(certs, "the peer's certificate", NULL, ca_path, crl_path, error);
}

static VcHost *
vc_host_load_config(const VcConfig *config, gboolean with_key, GError **error)
{
	g_autofree char *cert = vc_config_get_host_path(config, "cert");
	g_autofree char *key = with_key ? vc_config_get_host_path(config, "key") : NULL;
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

VcHost *
vc_host_load(const VcConfig *config, GError **error)
{
	return vc_host_load_config(config, TRUE, error);
}

VcHost *
vc_host_load_public(const VcConfig *config, GError **error)
{
	return vc_host_load_config(config, FALSE, error);
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
	return vc_host_asn1_time_to_unix(X509_get0_notBefore(host->cert));
}

gint64
vc_host_get_not_after(VcHost *host)
{
	return vc_host_asn1_time_to_unix(X509_get0_notAfter(host->cert));
}

char *
vc_host_get_issuer(VcHost *host)
{
	return vc_x509_name_to_string(X509_get_issuer_name(host->cert));
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
	return vc_host_verify(host->cert, host->anchors, host->extra, host->crl, now, TRUE, NULL,
			      error);
}

gboolean
vc_host_check(VcHost *host, GError **error)
{
	return vc_host_check_at(host, 0, error);
}

static gboolean
vc_host_check_profile_x509(X509 *cert, VcHostRole role, GError **error)
{
	g_autoptr(GENERAL_NAMES) gens = NULL;
	uint32_t flags, xku;
	gboolean dns = FALSE;

	flags = X509_get_extension_flags(cert);
	if (flags & EXFLAG_CA) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_CRYPTO,
				    "the host certificate is a CA certificate (basicConstraints "
				    "CA:TRUE), not a host identity");
		return FALSE;
	}
	if (!(flags & EXFLAG_XKUSAGE)) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_CRYPTO,
				    "the host certificate has no extendedKeyUsage: a host "
				    "identity names TLS server and client authentication");
		return FALSE;
	}
	xku = X509_get_extended_key_usage(cert);
	if (((role & VC_HOST_ROLE_SERVER) && !(xku & XKU_SSL_SERVER)) ||
	    ((role & VC_HOST_ROLE_CLIENT) && !(xku & XKU_SSL_CLIENT))) {
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO,
			    "the host certificate's extendedKeyUsage lacks %s",
			    (role & VC_HOST_ROLE_SERVER) && !(xku & XKU_SSL_SERVER)
				? "serverAuth (TLS server authentication)"
				: "clientAuth (TLS client authentication)");
		return FALSE;
	}
	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		int type = 0;
		const ASN1_IA5STRING *v =
		    GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, i), &type);
		g_autofree char *name = NULL;

		if (type != GEN_DNS)
			continue;
		name = vc_general_name_get_ia5(v);
		if (name == NULL || strchr(name, '*') != NULL) {
			g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO,
				    "the host certificate names \"%s\": a host identity names "
				    "one host, never a wildcard",
				    name != NULL ? name : "(unreadable)");
			return FALSE;
		}
		dns = TRUE;
	}
	ERR_clear_error();
	if (!dns) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_CRYPTO,
				    "the host certificate names no host (no dNSName)");
		return FALSE;
	}
	return TRUE;
}

gboolean
vc_host_check_profile(VcHost *host, VcHostRole role, GError **error)
{
	g_return_val_if_fail(host != NULL, FALSE);
	return vc_host_check_profile_x509(host->cert, role, error);
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
		if (!vc_host_verify(host->cert, host->anchors, host->extra, NULL, 0, FALSE, &chain,
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
			X509 *issuer = vc_host_find_issuer(host, c);
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
		uri = vc_general_name_get_ia5(s);
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
	if (!vc_host_check(host, &error) ||
	    !vc_host_check_profile(host, VC_HOST_ROLE_BOTH, &error) ||
	    (id = vc_host_get_identity(host, &error)) == NULL) {
		if (ret_reason != NULL)
			*ret_reason = g_strdup_printf("this host's certificate is not usable: %s",
						      error->message);
		return FALSE;
	}
	return vc_placement_allows(policy, id, ret_reason);
}

void
vc_host_placement_answer_begin(JsonBuilder *b, gboolean allow, const char *reason,
			       const char *vm_name, const VcPolicy *policy)
{
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "allow");
	json_builder_add_boolean_value(b, allow);
	json_builder_set_member_name(b, "reason");
	json_builder_add_string_value(b, reason);
	json_builder_set_member_name(b, "vm");
	json_builder_add_string_value(b, vm_name);
	json_builder_set_member_name(b, "restricted");
	json_builder_add_boolean_value(b, vc_placement_is_restricted(policy));
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
	vc_host_placement_answer_begin(b, allow, reason, info->name, policy);
	json_builder_end_object(b);
	return json_builder_get_root(b);
}
