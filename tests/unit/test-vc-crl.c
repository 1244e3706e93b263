/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include <glib/gstdio.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "vc-ca.h"
#include "vc-error.h"
#include "vc-test-ca.h"

static X509_REVOKED *
find_revoked(X509_CRL *crl, const char *serial_hex)
{
	STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED(crl);

	for (int i = 0; i < sk_X509_REVOKED_num(revs); i++) {
		X509_REVOKED *r = sk_X509_REVOKED_value(revs, i);
		const ASN1_INTEGER *sn = X509_REVOKED_get0_serialNumber(r);
		g_autoptr(BIGNUM) bn = ASN1_INTEGER_to_BN(sn, NULL);
		g_autoptr(BIGNUM) want = NULL;
		g_assert_cmpint(BN_hex2bn(&want, serial_hex), >, 0);
		if (BN_cmp(bn, want) == 0)
			return r;
	}
	return NULL;
}

static int
time_cmp_unix(const ASN1_TIME *t, gint64 unix_time)
{
	g_autoptr(ASN1_TIME) want = ASN1_TIME_set(NULL, (time_t)unix_time);

	return ASN1_TIME_compare(t, want);
}

static void
test_crl_contents(void)
{
	static const VcKeyType types[] = {VC_KEY_TYPE_EC_P256, VC_KEY_TYPE_ED25519,
					  VC_KEY_TYPE_RSA_3072};

	for (gsize t = 0; t < G_N_ELEMENTS(types); t++) {
		g_autoptr(VcTestCa) fx = vc_test_ca_new("vc-crl", types[t]);
		VcCa *ca = fx->ca;
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) entries = g_ptr_array_new();
		g_autoptr(X509_CRL) crl = NULL;
		g_autoptr(AUTHORITY_KEYID) aki = NULL;
		g_autoptr(ASN1_INTEGER) number = NULL;
		g_autoptr(EVP_PKEY) other = vc_key_generate(types[t], NULL);
		gint64 now = 1750000000;
		VcCrlEntry e1 = {"7a0b1c2d3e4f5061728394a5b6c7d8e9", now - 100,
				 VC_REASON_KEY_COMPROMISE};
		VcCrlEntry e2 = {"11", now - 50, VC_REASON_UNSPECIFIED};
		VcCrlEntry e3 = {"0ABCDEF0123456789abcdef012345678", now - 10,
				 VC_REASON_CESSATION_OF_OPERATION};
		VcCrlEntry e4 = {"22", now - 5, VC_REASON_PRIVILEGE_WITHDRAWN};
		const VcCrlEntry *all[] = {&e1, &e2, &e3, &e4};
		int crit = -1;
		guint64 n = 0;

		for (gsize i = 0; i < G_N_ELEMENTS(all); i++)
			g_ptr_array_add(entries, (gpointer)all[i]);
		crl = vc_ca_sign_crl(ca, entries, G_GUINT64_CONSTANT(5000000000), now, now + 3600,
				     &error);
		g_assert_no_error(error);
		g_assert_nonnull(crl);

		/* v2, issuer = the intermediate, times */
		g_assert_cmpint(X509_CRL_get_version(crl), ==, X509_CRL_VERSION_2);
		g_assert_cmpint(X509_NAME_cmp(X509_CRL_get_issuer(crl),
					      X509_get_subject_name(vc_ca_get_cert(ca))),
				==, 0);
		g_assert_cmpint(time_cmp_unix(X509_CRL_get0_lastUpdate(crl), now), ==, 0);
		g_assert_cmpint(time_cmp_unix(X509_CRL_get0_nextUpdate(crl), now + 3600), ==, 0);

		/* AKI = the intermediate's SKI; CRL number, both non-critical */
		aki = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, &crit, NULL);
		g_assert_nonnull(aki);
		g_assert_cmpint(crit, ==, 0);
		g_assert_cmpint(
		    ASN1_OCTET_STRING_cmp(aki->keyid, X509_get0_subject_key_id(vc_ca_get_cert(ca))),
		    ==, 0);
		number = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
		g_assert_nonnull(number);
		g_assert_cmpint(crit, ==, 0);
		g_assert_true(ASN1_INTEGER_get_uint64(&n, number));
		g_assert_cmpuint(n, ==, G_GUINT64_CONSTANT(5000000000));

		/* entries with reason codes; none for unspecified */
		g_assert_cmpint(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), ==, 4);
		for (gsize i = 0; i < G_N_ELEMENTS(all); i++) {
			X509_REVOKED *r = find_revoked(crl, all[i]->serial_hex);
			g_autoptr(ASN1_ENUMERATED) reason = NULL;

			g_assert_nonnull(r);
			g_assert_cmpint(
			    time_cmp_unix(X509_REVOKED_get0_revocationDate(r), all[i]->revoked_at),
			    ==, 0);
			reason = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, &crit, NULL);
			if (all[i]->reason == VC_REASON_UNSPECIFIED) {
				g_assert_null(reason);
				g_assert_cmpint(X509_REVOKED_get_ext_count(r), ==, 0);
			} else {
				g_assert_nonnull(reason);
				g_assert_cmpint(crit, ==, 0);
				g_assert_cmpint(ASN1_ENUMERATED_get(reason), ==, all[i]->reason);
			}
		}
		g_assert_null(find_revoked(crl, "12"));

		/* signed by the intermediate key, and only by it */
		g_assert_cmpint(X509_CRL_verify(crl, X509_get0_pubkey(vc_ca_get_cert(ca))), ==, 1);
		g_assert_cmpint(X509_CRL_verify(crl, other), !=, 1);
		g_assert_cmpint(X509_CRL_get_signature_nid(crl), ==,
				X509_get_signature_nid(vc_ca_get_cert(ca)));
	}
}

/* The publishing path (encoded once, signature put together by hand) makes
 * the same CRL as the X509_CRL path: same entries, reasons, times, number,
 * extensions, and a signature that verifies, for every key type. */
static void
test_crl_der_matches(void)
{
	static const VcKeyType types[] = {VC_KEY_TYPE_EC_P256, VC_KEY_TYPE_ED25519,
					  VC_KEY_TYPE_RSA_3072};

	for (gsize t = 0; t < G_N_ELEMENTS(types); t++) {
		g_autoptr(VcTestCa) fx = vc_test_ca_new("vc-crl-der", types[t]);
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func(g_free);
		g_autoptr(GPtrArray) serials = g_ptr_array_new_with_free_func(g_free);
		g_autoptr(X509_CRL) ref = NULL;
		g_autoptr(X509_CRL) got = NULL;
		g_autoptr(GBytes) der = NULL;
		g_autoptr(GBytes) ref_der = NULL;
		const unsigned char *p;
		gint64 now = 1750000000;
		static const int reasons[] = {VC_REASON_KEY_COMPROMISE, VC_REASON_UNSPECIFIED,
					      VC_REASON_SUPERSEDED,
					      VC_REASON_CESSATION_OF_OPERATION};

		for (int i = 0; i < 300; i++) {
			VcCrlEntry *e = g_new0(VcCrlEntry, 1);
			/* the entries borrow their serials */
			g_ptr_array_add(serials, g_strdup_printf("%x%04x", 0xabc, i * 7919));
			e->serial_hex = g_ptr_array_index(serials, i);
			e->revoked_at = now - 1000 + i;
			e->reason = reasons[i % 4];
			g_ptr_array_add(entries, e);
		}
		/* none at all as well */
		for (int empty = 0; empty < 2; empty++) {
			GPtrArray *use = empty ? NULL : entries;
			der = vc_ca_sign_crl_der(fx->ca, use, 42, now, now + 3600, &error);
			g_assert_no_error(error);
			ref = vc_ca_sign_crl(fx->ca, use, 42, now, now + 3600, &error);
			g_assert_no_error(error);
			p = g_bytes_get_data(der, NULL);
			got = d2i_X509_CRL(NULL, &p, (long)g_bytes_get_size(der));
			g_assert_nonnull(got);
			/* every octet consumed: nothing trails the SEQUENCE */
			g_assert_true(p == (const unsigned char *)g_bytes_get_data(der, NULL) +
					       g_bytes_get_size(der));
			g_assert_cmpint(
			    X509_CRL_verify(got, X509_get0_pubkey(vc_ca_get_cert(fx->ca))), ==, 1);
			/* the signed part is identical, octet for octet */
			{
				unsigned char *a = NULL, *b = NULL;
				int la = i2d_re_X509_CRL_tbs(got, &a);
				int lb = i2d_re_X509_CRL_tbs(ref, &b);
				g_assert_cmpmem(a, la, b, lb);
				OPENSSL_free(a);
				OPENSSL_free(b);
			}
			g_assert_cmpint(X509_CRL_get_signature_nid(got), ==,
					X509_CRL_get_signature_nid(ref));
			ref_der = vc_crl_to_der(ref, &error);
			g_assert_no_error(error);
			/* ECDSA signatures differ run to run; Ed25519 and RSA PKCS#1 do not */
			if (types[t] != VC_KEY_TYPE_EC_P256)
				g_assert_true(g_bytes_equal(der, ref_der));
			g_clear_pointer(&der, g_bytes_unref);
			g_clear_pointer(&ref_der, g_bytes_unref);
			g_clear_pointer(&ref, X509_CRL_free);
			g_clear_pointer(&got, X509_CRL_free);
		}
	}
}

static void
test_crl_empty_and_encodings(void)
{
	g_autoptr(VcTestCa) fx = vc_test_ca_new("vc-crl", VC_KEY_TYPE_EC_P256);
	VcCa *ca = fx->ca;
	g_autoptr(GError) error = NULL;
	gint64 now = vc_test_now_s();
	g_autoptr(X509_CRL) crl = vc_ca_sign_crl(ca, NULL, 1, now, now + 600, &error);
	g_autofree char *pem = NULL;
	g_autoptr(GBytes) der = NULL;
	g_autoptr(BIO) bio = NULL;
	g_autoptr(X509_CRL) back = NULL;
	const unsigned char *p;
	gsize len = 0;

	g_assert_no_error(error);
	/* no revokedCertificates at all (RFC 5280 5.1.2.6: absent when empty) */
	g_assert_cmpint(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), <=, 0);
	pem = vc_crl_to_pem(crl, &error);
	g_assert_no_error(error);
	g_assert_true(g_str_has_prefix(pem, "-----BEGIN X509 CRL-----\n"));
	bio = BIO_new_mem_buf(pem, -1);
	back = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
	g_assert_nonnull(back);
	g_assert_cmpint(X509_CRL_verify(back, X509_get0_pubkey(vc_ca_get_cert(ca))), ==, 1);
	g_clear_pointer(&back, X509_CRL_free);

	der = vc_crl_to_der(crl, &error);
	g_assert_no_error(error);
	p = g_bytes_get_data(der, &len);
	back = d2i_X509_CRL(NULL, &p, (long)len);
	g_assert_nonnull(back);
	g_assert_cmpint(X509_CRL_cmp(back, crl), ==, 0);
	g_assert_cmpint(X509_CRL_verify(back, X509_get0_pubkey(vc_ca_get_cert(ca))), ==, 1);
}

/* vc_crl_load() reads what vc_crl_to_pem() and vc_crl_to_der() write (a
 * CRL file, or what a distribution point serves) and names what it cannot. */
static void
test_crl_load(void)
{
	g_autoptr(VcTestCa) fx = vc_test_ca_new("vc-crl", VC_KEY_TYPE_EC_P256);
	VcCa *ca = fx->ca;
	const char *tmp = fx->dir;
	g_autoptr(GError) error = NULL;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	g_autoptr(X509_CRL) crl = vc_ca_sign_crl(ca, NULL, 7, now, now + 600, &error);
	g_autofree char *pem = vc_crl_to_pem(crl, &error);
	g_autoptr(GBytes) der = vc_crl_to_der(crl, &error);
	g_autofree char *pem_path = g_build_filename(tmp, "crl.pem", NULL);
	g_autofree char *der_path = g_build_filename(tmp, "crl.der", NULL);
	g_autofree char *bad_path = g_build_filename(tmp, "crl.txt", NULL);
	g_autofree char *none_path = g_build_filename(tmp, "absent.crl", NULL);
	g_autoptr(X509_CRL) back = NULL;
	gsize len = 0;
	const void *data = g_bytes_get_data(der, &len);

	g_assert_no_error(error);
	g_assert_true(g_file_set_contents(pem_path, pem, -1, NULL));
	g_assert_true(g_file_set_contents(der_path, data, (gssize)len, NULL));
	g_assert_true(g_file_set_contents(bad_path, "not a CRL\n", -1, NULL));

	back = vc_crl_load(pem_path, &error);
	g_assert_no_error(error);
	g_assert_cmpint(X509_CRL_cmp(back, crl), ==, 0);
	g_clear_pointer(&back, X509_CRL_free);
	back = vc_crl_load(der_path, &error);
	g_assert_no_error(error);
	g_assert_cmpint(X509_CRL_cmp(back, crl), ==, 0);
	g_assert_cmpint(X509_CRL_verify(back, X509_get0_pubkey(vc_ca_get_cert(ca))), ==, 1);

	/* two PEM CRLs: the first is the one */
	{
		g_autoptr(X509_CRL) other = vc_ca_sign_crl(ca, NULL, 8, now, now + 600, &error);
		g_autofree char *other_pem = vc_crl_to_pem(other, &error);
		g_autofree char *both = g_strconcat(pem, other_pem, NULL);
		g_autofree char *both_path = g_build_filename(tmp, "both.pem", NULL);
		g_autoptr(GBytes) back_der = NULL;

		g_assert_no_error(error);
		g_assert_true(g_file_set_contents(both_path, both, -1, NULL));
		g_clear_pointer(&back, X509_CRL_free);
		back = vc_crl_load(both_path, &error);
		g_assert_no_error(error);
		back_der = vc_crl_to_der(back, &error);
		g_assert_no_error(error);
		g_assert_true(g_bytes_equal(back_der, der));
	}

	g_assert_null(vc_crl_load(bad_path, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	{
		g_autofree char *want = g_strdup_printf("%s: not a CRL (PEM or DER)", bad_path);
		g_assert_cmpstr(error->message, ==, want);
	}
	g_clear_error(&error);
	g_assert_null(vc_crl_load(none_path, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
}

static void
test_crl_refusals(void)
{
	g_autoptr(VcTestCa) fx = vc_test_ca_new("vc-crl", VC_KEY_TYPE_EC_P256);
	VcCa *ca = fx->ca;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) entries = g_ptr_array_new();
	VcCrlEntry bad_reason = {"01", 1000, 7};
	VcCrlEntry bad_serial = {"zz", 1000, VC_REASON_SUPERSEDED};

	g_assert_null(vc_ca_sign_crl(ca, NULL, 1, 2000, 2000, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_USAGE);
	g_clear_error(&error);

	g_ptr_array_add(entries, &bad_reason);
	g_assert_null(vc_ca_sign_crl(ca, entries, 1, 2000, 3000, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_USAGE);
	g_clear_error(&error);

	g_ptr_array_index(entries, 0) = &bad_serial;
	g_assert_null(vc_ca_sign_crl(ca, entries, 1, 2000, 3000, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_USAGE);
}

static void
test_reason_strings(void)
{
	static const struct {
		int reason;
		const char *name;
	} rfc[] = {
	    {0, "unspecified"},	       {1, "keyCompromise"},	  {2, "cACompromise"},
	    {3, "affiliationChanged"}, {4, "superseded"},	  {5, "cessationOfOperation"},
	    {6, "certificateHold"},    {9, "privilegeWithdrawn"},
	};
	g_autoptr(GError) error = NULL;
	int r = -1;

	for (gsize i = 0; i < G_N_ELEMENTS(rfc); i++) {
		g_autofree char *upper = g_ascii_strup(rfc[i].name, -1);
		g_assert_cmpstr(vc_reason_to_string(rfc[i].reason), ==, rfc[i].name);
		g_assert_true(vc_reason_from_string(rfc[i].name, &r, &error));
		g_assert_no_error(error);
		g_assert_cmpint(r, ==, rfc[i].reason);
		/* case-insensitive on input */
		r = -1;
		g_assert_true(vc_reason_from_string(upper, &r, &error));
		g_assert_cmpint(r, ==, rfc[i].reason);
	}
	g_assert_true(vc_reason_from_string("caCompromise", &r, NULL));
	g_assert_cmpint(r, ==, VC_REASON_CA_COMPROMISE);
	g_assert_null(vc_reason_to_string(7));
	g_assert_null(vc_reason_to_string(-1));
	r = 42;
	g_assert_false(vc_reason_from_string("lost", &r, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_USAGE);
	g_assert_cmpint(r, ==, 42);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/crl/contents", test_crl_contents);
	g_test_add_func("/crl/empty-and-encodings", test_crl_empty_and_encodings);
	g_test_add_func("/crl/der-matches", test_crl_der_matches);
	g_test_add_func("/crl/refusals", test_crl_refusals);
	g_test_add_func("/crl/load", test_crl_load);
	g_test_add_func("/crl/reason-strings", test_reason_strings);
	return g_test_run();
}
