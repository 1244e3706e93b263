/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>
#include <openssl/x509v3.h>

#include "vc-ca.h"
#include "vc-error.h"
#include "vc-test-util.h"

static const VcKeyType all_types[] = {VC_KEY_TYPE_EC_P256, VC_KEY_TYPE_ED25519,
				      VC_KEY_TYPE_RSA_3072};

/* A minimal self-signed certificate built without the code under test. */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, long serial)
{
	X509 *cert = X509_new();

	X509_set_version(cert, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_UTF8,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(cert, X509_get_subject_name(cert));
	X509_gmtime_adj(X509_getm_notBefore(cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	X509_set_pubkey(cert, key);
	g_assert_cmpint(X509_sign(cert, key, EVP_sha256()), >, 0);
	return cert;
}

static void
test_key_generate(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(all_types); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(EVP_PKEY) key = vc_key_generate(all_types[i], &error);
		VcKeyType t = (VcKeyType)-1;

		g_assert_no_error(error);
		g_assert_nonnull(key);
		switch (all_types[i]) {
		case VC_KEY_TYPE_EC_P256:
			g_assert_true(EVP_PKEY_is_a(key, "EC"));
			g_assert_cmpint(EVP_PKEY_get_bits(key), ==, 256);
			break;
		case VC_KEY_TYPE_ED25519:
			g_assert_true(EVP_PKEY_is_a(key, "ED25519"));
			break;
		case VC_KEY_TYPE_RSA_3072:
			g_assert_true(EVP_PKEY_is_a(key, "RSA"));
			g_assert_cmpint(EVP_PKEY_get_bits(key), ==, 3072);
			break;
		default:
			g_assert_not_reached();
		}
		g_assert_true(vc_key_get_type(key, &t, &error));
		g_assert_no_error(error);
		g_assert_cmpint(t, ==, all_types[i]);
	}
}

static void
test_key_generate_distinct(void)
{
	g_autoptr(EVP_PKEY) a = vc_key_generate(VC_KEY_TYPE_EC_P256, NULL);
	g_autoptr(EVP_PKEY) b = vc_key_generate(VC_KEY_TYPE_EC_P256, NULL);

	g_assert_nonnull(a);
	g_assert_nonnull(b);
	g_assert_cmpint(EVP_PKEY_eq(a, b), !=, 1);
}

static void
test_key_type_refused(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	VcKeyType t = VC_KEY_TYPE_ED25519;

	g_assert_nonnull(p384);
	g_assert_false(vc_key_get_type(p384, &t, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_assert_cmpint(t, ==, VC_KEY_TYPE_ED25519);
	g_clear_error(&error);
	g_assert_null(vc_key_generate((VcKeyType)42, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_USAGE);
}

static void
test_key_pem_roundtrip(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(all_types); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(EVP_PKEY) key = vc_key_generate(all_types[i], &error);
		char *pem = vc_key_to_pem(key, &error);
		g_autoptr(EVP_PKEY) back = NULL;

		g_assert_no_error(error);
		/* PKCS#8, unencrypted */
		g_assert_true(g_str_has_prefix(pem, "-----BEGIN PRIVATE KEY-----\n"));
		back = vc_key_from_pem(pem, strlen(pem), &error);
		g_assert_no_error(error);
		g_assert_cmpint(EVP_PKEY_eq(key, back), ==, 1);
		vc_secret_free(pem);
	}
	vc_secret_free(NULL);
}

static void
test_key_from_pem_garbage(void)
{
	g_autoptr(GError) error = NULL;
	const char *junk = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";

	g_assert_null(vc_key_from_pem(junk, strlen(junk), &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
}

static void
test_key_save_load(void)
{
	g_autofree char *dir = vc_test_dir_make("vc-crypto-XXXXXX");
	g_autofree char *path = g_build_filename(dir, "k.pem", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) key = vc_key_generate(VC_KEY_TYPE_EC_P256, NULL);
	g_autoptr(EVP_PKEY) back = NULL;
	GStatBuf st;
	mode_t old = umask(0);

	g_assert_true(vc_key_save(key, path, &error));
	umask(old);
	g_assert_no_error(error);
	g_assert_cmpint(g_stat(path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 07777, ==, 0600);
	back = vc_key_load(path, &error);
	g_assert_no_error(error);
	g_assert_cmpint(EVP_PKEY_eq(key, back), ==, 1);

	g_unlink(path);
	g_assert_null(vc_key_load(path, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	vc_test_dir_remove(dir);
}

static void
test_cert_encodings(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) key = vc_key_generate(VC_KEY_TYPE_EC_P256, NULL);
	g_autoptr(X509) cert = make_cert(key, "one", 0x0102);
	g_autofree char *pem = vc_cert_to_pem(cert, &error);
	g_autoptr(X509) from_pem = NULL;
	g_autoptr(GBytes) der = NULL;
	g_autoptr(X509) from_der = NULL;
	g_autofree char *serial = NULL;
	g_autofree char *fp = NULL;
	g_autofree char *expected_fp = NULL;
	gsize len = 0;
	const guint8 *d;

	g_assert_no_error(error);
	g_assert_true(g_str_has_prefix(pem, "-----BEGIN CERTIFICATE-----\n"));
	from_pem = vc_cert_from_pem(pem, strlen(pem), &error);
	g_assert_no_error(error);
	g_assert_cmpint(X509_cmp(cert, from_pem), ==, 0);

	der = vc_cert_to_der(cert, &error);
	g_assert_no_error(error);
	d = g_bytes_get_data(der, &len);
	g_assert_cmpuint(d[0], ==, 0x30);
	from_der = vc_cert_from_der(d, len, &error);
	g_assert_no_error(error);
	g_assert_cmpint(X509_cmp(cert, from_der), ==, 0);
	/* trailing garbage is refused */
	{
		g_autofree guint8 *more = g_malloc(len + 1);
		memcpy(more, d, len);
		more[len] = 0;
		g_assert_null(vc_cert_from_der(more, len + 1, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
		g_clear_error(&error);
	}
	g_assert_null(vc_cert_from_pem("nope", 4, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_clear_error(&error);

	serial = vc_cert_get_serial_hex(cert);
	g_assert_cmpstr(serial, ==, "0102");

	/* SHA-256 of the DER, computed independently */
	expected_fp = g_compute_checksum_for_data(G_CHECKSUM_SHA256, d, len);
	fp = vc_cert_get_fingerprint_sha256(cert);
	g_assert_cmpstr(fp, ==, expected_fp);
}

static void
test_cert_load_pem_file(void)
{
	g_autofree char *dir = vc_test_dir_make("vc-crypto-XXXXXX");
	g_autofree char *path = g_build_filename(dir, "certs.pem", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) key = vc_key_generate(VC_KEY_TYPE_EC_P256, NULL);
	g_autoptr(X509) a = make_cert(key, "a", 1);
	g_autoptr(X509) b = make_cert(key, "b", 2);
	g_autofree char *pa = vc_cert_to_pem(a, NULL);
	g_autofree char *pb = vc_cert_to_pem(b, NULL);
	g_autofree char *both = g_strconcat(pa, pb, NULL);
	g_autoptr(GPtrArray) certs = NULL;

	g_assert_true(g_file_set_contents(path, both, -1, NULL));
	certs = vc_cert_load_pem_file(path, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(certs->len, ==, 2);
	g_assert_cmpint(X509_cmp(g_ptr_array_index(certs, 0), a), ==, 0);
	g_assert_cmpint(X509_cmp(g_ptr_array_index(certs, 1), b), ==, 0);
	g_clear_pointer(&certs, g_ptr_array_unref);

	g_assert_true(g_file_set_contents(path, "no certificate here\n", -1, NULL));
	g_assert_null(vc_cert_load_pem_file(path, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_clear_error(&error);
	g_unlink(path);
	g_assert_null(vc_cert_load_pem_file(path, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	vc_test_dir_remove(dir);
}

static void
test_file_write_atomic(void)
{
	g_autofree char *dir = vc_test_dir_make("vc-crypto-XXXXXX");
	g_autofree char *path = g_build_filename(dir, "f.txt", NULL);
	g_autofree char *bad = g_build_filename(dir, "missing", "f.txt", NULL);
	g_autoptr(GError) error = NULL;
	g_autofree char *contents = NULL;
	g_autoptr(GDir) d = NULL;
	GStatBuf st;
	mode_t old = umask(077);
	guint n = 0;

	g_assert_true(vc_file_write_atomic(path, "first", 5, 0644, &error));
	g_assert_no_error(error);
	/* the mode is exact whatever the umask */
	g_assert_cmpint(g_stat(path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 07777, ==, 0644);
	g_assert_true(vc_file_write_atomic(path, "second\0x", 8, 0640, &error));
	umask(old);
	g_assert_no_error(error);
	g_assert_cmpint(g_stat(path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 07777, ==, 0640);
	g_assert_cmpint(st.st_size, ==, 8);
	g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
	g_assert_cmpstr(contents, ==, "second");

	/* no temporary file left behind */
	d = g_dir_open(dir, 0, NULL);
	while (g_dir_read_name(d) != NULL)
		n++;
	g_assert_cmpuint(n, ==, 1);

	g_assert_false(vc_file_write_atomic(bad, "x", 1, 0600, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_IO);
	vc_test_dir_remove(dir);
}

static void
test_serial_generate(void)
{
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	for (int i = 0; i < 2000; i++) {
		g_autoptr(GError) error = NULL;
		char *s = vc_serial_generate(&error);
		guint first;

		g_assert_no_error(error);
		/* 16 octets */
		g_assert_cmpuint(strlen(s), ==, 32);
		for (const char *p = s; *p != '\0'; p++)
			g_assert_true(g_ascii_isxdigit(*p) && !g_ascii_isupper(*p));
		/* positive, with no leading zero octet */
		first = (guint)g_ascii_strtoull((char[]){s[0], s[1], 0}, NULL, 16);
		g_assert_cmpuint(first, >=, 0x01);
		g_assert_cmpuint(first, <=, 0x7f);
		g_assert_false(g_hash_table_contains(seen, s));
		g_hash_table_add(seen, s);
	}
}

static void
test_bench_raw_sign(void)
{
#ifdef VC_TEST_SEAMS
	g_autoptr(GError) error = NULL;
	double rate = vc_bench_raw_sign_per_s(VC_KEY_TYPE_ED25519, 0.05, &error);

	g_assert_no_error(error);
	/* at least one batch of signatures happened within the window */
	g_assert_cmpfloat(rate, >, 16.0);
	g_assert_cmpfloat(rate, <, 1e8);
#else
	g_test_skip("a bench helper: built with -Dtest_seams=false");
#endif
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/crypto/key/generate", test_key_generate);
	g_test_add_func("/crypto/key/distinct", test_key_generate_distinct);
	g_test_add_func("/crypto/key/type-refused", test_key_type_refused);
	g_test_add_func("/crypto/key/pem-roundtrip", test_key_pem_roundtrip);
	g_test_add_func("/crypto/key/pem-garbage", test_key_from_pem_garbage);
	g_test_add_func("/crypto/key/save-load", test_key_save_load);
	g_test_add_func("/crypto/cert/encodings", test_cert_encodings);
	g_test_add_func("/crypto/cert/load-pem-file", test_cert_load_pem_file);
	g_test_add_func("/crypto/file-write-atomic", test_file_write_atomic);
	g_test_add_func("/crypto/serial-generate", test_serial_generate);
	g_test_add_func("/crypto/bench-raw-sign", test_bench_raw_sign);
	return g_test_run();
}
