/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "vc-test-ca.h"

void
vc_test_ca_init(const char *ca_dir, VcKeyType type, const char *const *permit)
{
	static const char *const default_permit[] = {VC_TEST_CA_PERMIT, NULL};
	g_autoptr(GError) error = NULL;
	VcCaInitOptions opts = {
	    .permit = permit != NULL ? permit : default_permit,
	    .key_type = type,
	};

	g_assert_true(vc_ca_init_self_signed(ca_dir, &opts, &error));
	g_assert_no_error(error);
}

VcTestCa *
vc_test_ca_new(const char *prefix, VcKeyType type)
{
	g_autofree char *tmpl = g_strdup_printf("%s-XXXXXX", prefix);
	g_autoptr(GError) error = NULL;
	VcTestCa *t = g_new0(VcTestCa, 1);

	t->dir = vc_test_dir_make(tmpl);
	t->ca_dir = g_build_filename(t->dir, "ca", NULL);
	vc_test_ca_init(t->ca_dir, type, NULL);
	t->ca = vc_ca_load(t->ca_dir, &error);
	g_assert_no_error(error);
	g_assert_nonnull(t->ca);
	return t;
}

void
vc_test_ca_free(VcTestCa *t)
{
	if (t == NULL)
		return;
	g_clear_pointer(&t->ca, vc_ca_free);
	vc_test_dir_remove(t->dir);
	g_free(t->dir);
	g_free(t->ca_dir);
	g_free(t);
}

void
vc_test_host_ca_init(const char *dir, const char *common_name)
{
	g_autoptr(GError) error = NULL;
	VcHostCaInitOptions opts = {.common_name = common_name};

	g_assert_true(vc_host_ca_init(dir, &opts, &error));
	g_assert_no_error(error);
}

X509_REQ *
vc_test_csr_load(const char *path)
{
	g_autofree char *data = NULL;
	gsize len = 0;
	g_autoptr(BIO) bio = NULL;

	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	bio = BIO_new_mem_buf(data, (int)len);
	return PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
}

void
vc_test_host_ca_sign(const char *ca_dir, const char *csr_path, gint64 not_before, gint64 not_after,
		     const char *out)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcHostCa) ca = vc_host_ca_load(ca_dir, &error);
	g_autoptr(X509_REQ) csr = vc_test_csr_load(csr_path);
	g_autoptr(X509) cert = NULL;
	g_autofree char *pem = NULL;

	g_assert_no_error(error);
	g_assert_nonnull(csr);
	cert = vc_host_ca_sign(ca, csr, not_before, not_after, &error);
	g_assert_no_error(error);
	pem = vc_cert_to_pem(cert, &error);
	g_assert_no_error(error);
	g_assert_true(vc_file_write_atomic(out, pem, strlen(pem), 0644, &error));
	g_assert_no_error(error);
}

void
vc_test_host_ca_sign_custom(const char *ca_dir, const char *csr_path, const char *const *exts,
			    const char *out)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *ca_key_path = g_build_filename(ca_dir, "ca.key", NULL);
	g_autofree char *ca_cert_path = g_build_filename(ca_dir, "ca.pem", NULL);
	g_autoptr(EVP_PKEY) ca_key = vc_key_load(ca_key_path, &error);
	g_autoptr(GPtrArray) ca_certs = vc_cert_load_pem_file(ca_cert_path, &error);
	g_autoptr(X509_REQ) csr = vc_test_csr_load(csr_path);
	g_autoptr(X509) cert = X509_new();
	g_autofree char *pem = NULL;
	X509 *ca_cert;
	X509V3_CTX ctx;

	g_assert_no_error(error);
	g_assert_nonnull(csr);
	ca_cert = g_ptr_array_index(ca_certs, 0);
	g_assert_true(X509_set_version(cert, X509_VERSION_3));
	g_assert_true(ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert),
					      (uint64_t)g_random_int() << 16 | 1));
	g_assert_true(X509_set_subject_name(cert, X509_REQ_get_subject_name(csr)));
	g_assert_true(X509_set_issuer_name(cert, X509_get_subject_name(ca_cert)));
	g_assert_nonnull(X509_time_adj_ex(X509_getm_notBefore(cert), 0, -60, NULL));
	g_assert_nonnull(X509_time_adj_ex(X509_getm_notAfter(cert), 1, 0, NULL));
	g_assert_true(X509_set_pubkey(cert, X509_REQ_get0_pubkey(csr)));
	X509V3_set_ctx(&ctx, ca_cert, cert, NULL, NULL, 0);
	for (gsize i = 0; exts != NULL && exts[i] != NULL; i += 2) {
		X509_EXTENSION *ext =
		    X509V3_EXT_conf_nid(NULL, &ctx, OBJ_sn2nid(exts[i]), exts[i + 1]);
		g_assert_nonnull(ext);
		g_assert_true(X509_add_ext(cert, ext, -1));
		X509_EXTENSION_free(ext);
	}
	g_assert_cmpint(X509_sign(cert, ca_key, EVP_sha256()), >, 0);
	pem = vc_cert_to_pem(cert, &error);
	g_assert_no_error(error);
	g_assert_true(vc_file_write_atomic(out, pem, strlen(pem), 0644, &error));
	g_assert_no_error(error);
}
