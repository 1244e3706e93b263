/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "vc-ca.h"
#include "vc-config.h"
#include "vc-error.h"
#include "vc-test-ca.h"

#define UUID "6F1C2E0A-1B2C-4D5E-8F90-0123456789AB"

static const VcKeyType all_types[] = {VC_KEY_TYPE_EC_P256, VC_KEY_TYPE_ED25519,
				      VC_KEY_TYPE_RSA_3072};
static const char *const permit[] = {"vms.example.com", "lab.example.net", NULL};

typedef struct {
	char *tmp;
	char *dir; /* CA dir, not yet created */
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	f->tmp = vc_test_dir_make("vc-ca-XXXXXX");
	f->dir = g_build_filename(f->tmp, "ca", NULL);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	vc_test_dir_remove(f->tmp);
	g_free(f->tmp);
	g_free(f->dir);
}

static X509 *
load_one(const char *dir, const char *file)
{
	g_autofree char *p = g_build_filename(dir, file, NULL);
	g_autoptr(GPtrArray) certs = vc_cert_load_pem_file(p, NULL);

	g_assert_nonnull(certs);
	return X509_dup(g_ptr_array_index(certs, 0));
}

static int
expected_sig_nid(VcKeyType type)
{
	switch (type) {
	case VC_KEY_TYPE_EC_P256:
		return NID_ecdsa_with_SHA256;
	case VC_KEY_TYPE_ED25519:
		return NID_ED25519;
	case VC_KEY_TYPE_RSA_3072:
		return NID_sha256WithRSAEncryption;
	default:
		g_assert_not_reached();
	}
}

static gboolean
ext_is_critical(X509 *cert, int nid)
{
	int idx = X509_get_ext_by_NID(cert, nid, -1);

	g_assert_cmpint(idx, >=, 0);
	return X509_EXTENSION_get_critical(X509_get_ext(cert, idx)) == 1;
}

/* Independent verification with a fresh store: ROOT trusted, CHAIN untrusted. */
static int
verify_independently(X509 *leaf, X509 *root, X509 *intermediate)
{
	g_autoptr(X509_STORE) store = X509_STORE_new();
	g_autoptr(X509_STORE_CTX) ctx = X509_STORE_CTX_new();
	g_autoptr(VcX509Stack) untrusted = sk_X509_new_null();

	X509_STORE_add_cert(store, root);
	sk_X509_push(untrusted, intermediate);
	X509_up_ref(intermediate);
	g_assert_true(X509_STORE_CTX_init(ctx, store, leaf, untrusted));
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT);
	if (X509_verify_cert(ctx) == 1)
		return X509_V_OK;
	return X509_STORE_CTX_get_error(ctx);
}

static void
assert_intermediate_extensions(X509 *cert, X509 *root)
{
	int crit = -1;
	g_autoptr(BASIC_CONSTRAINTS) bc =
	    X509_get_ext_d2i(cert, NID_basic_constraints, &crit, NULL);
	g_autoptr(ASN1_BIT_STRING) ku = NULL;
	g_autoptr(NAME_CONSTRAINTS) nc = NULL;
	g_autoptr(AUTHORITY_KEYID) aki = NULL;
	const ASN1_OCTET_STRING *root_ski = X509_get0_subject_key_id(root);

	/* critical basicConstraints CA:TRUE pathlen:0 */
	g_assert_nonnull(bc);
	g_assert_cmpint(crit, ==, 1);
	g_assert_true(bc->ca);
	g_assert_nonnull(bc->pathlen);
	g_assert_cmpint(ASN1_INTEGER_get(bc->pathlen), ==, 0);

	/* critical keyUsage: exactly keyCertSign + cRLSign */
	ku = X509_get_ext_d2i(cert, NID_key_usage, &crit, NULL);
	g_assert_nonnull(ku);
	g_assert_cmpint(crit, ==, 1);
	g_assert_cmpuint(X509_get_key_usage(cert), ==, KU_KEY_CERT_SIGN | KU_CRL_SIGN);

	/* critical nameConstraints */
	nc = X509_get_ext_d2i(cert, NID_name_constraints, &crit, NULL);
	g_assert_nonnull(nc);
	g_assert_cmpint(crit, ==, 1);
	g_assert_cmpint(sk_GENERAL_SUBTREE_num(nc->permittedSubtrees), ==, 2);
	for (int i = 0; i < 2; i++) {
		GENERAL_SUBTREE *st = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i);
		g_assert_cmpint(st->base->type, ==, GEN_DNS);
		g_assert_cmpstr((const char *)ASN1_STRING_get0_data(st->base->d.dNSName), ==,
				permit[i]);
		g_assert_null(st->minimum);
		g_assert_null(st->maximum);
	}
	/* excluded: iPAddress 0.0.0.0/0 as 8 zero octets and ::/0 as 32 */
	g_assert_cmpint(sk_GENERAL_SUBTREE_num(nc->excludedSubtrees), ==, 2);
	for (int i = 0; i < 2; i++) {
		GENERAL_SUBTREE *st = sk_GENERAL_SUBTREE_value(nc->excludedSubtrees, i);
		const ASN1_OCTET_STRING *ip;
		static const guint8 zeros[32] = {0};
		g_assert_cmpint(st->base->type, ==, GEN_IPADD);
		ip = st->base->d.iPAddress;
		g_assert_cmpint(ASN1_STRING_length(ip), ==, i == 0 ? 8 : 32);
		g_assert_cmpmem(ASN1_STRING_get0_data(ip), ASN1_STRING_length(ip), zeros,
				ASN1_STRING_length(ip));
	}
	/* no URI subtree anywhere (urn:uuid: SANs have no host) */
	for (int i = 0; i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees); i++)
		g_assert_cmpint(sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i)->base->type, !=,
				GEN_URI);
	for (int i = 0; i < sk_GENERAL_SUBTREE_num(nc->excludedSubtrees); i++)
		g_assert_cmpint(sk_GENERAL_SUBTREE_value(nc->excludedSubtrees, i)->base->type, !=,
				GEN_URI);

	/* SKI, and AKI = the root's SKI */
	g_assert_nonnull(X509_get0_subject_key_id(cert));
	g_assert_false(ext_is_critical(cert, NID_subject_key_identifier));
	aki = X509_get_ext_d2i(cert, NID_authority_key_identifier, &crit, NULL);
	g_assert_nonnull(aki);
	g_assert_cmpint(crit, ==, 0);
	g_assert_nonnull(root_ski);
	g_assert_cmpint(ASN1_OCTET_STRING_cmp(aki->keyid, root_ski), ==, 0);
}

static void
test_init_self_signed(Fixture *f, gconstpointer data)
{
	for (gsize t = 0; t < G_N_ELEMENTS(all_types); t++) {
		g_autofree char *dir = g_strdup_printf("%s-%zu", f->dir, t);
		g_autofree char *key_path = g_build_filename(dir, "ca.key", NULL);
		g_autoptr(X509) cert = NULL;
		g_autoptr(X509) root = NULL;
		g_autoptr(X509) chain0 = NULL;
		g_autoptr(GDir) d = NULL;
		g_autoptr(EVP_PKEY) key = NULL;
		g_autoptr(BASIC_CONSTRAINTS) root_bc = NULL;
		const char *n;
		GStatBuf st;
		int crit = -1;

		vc_test_ca_init(dir, all_types[t], permit);
		g_assert_cmpint(g_stat(dir, &st), ==, 0);
		g_assert_cmpint(st.st_mode & 07777, ==, 0700);
		g_assert_cmpint(g_stat(key_path, &st), ==, 0);
		g_assert_cmpint(st.st_mode & 07777, ==, 0600);

		/* the root key never touches the disk: ca.key is the only key */
		d = g_dir_open(dir, 0, NULL);
		while ((n = g_dir_read_name(d)) != NULL) {
			g_autofree char *p = g_build_filename(dir, n, NULL);
			g_autofree char *c = NULL;
			g_assert_true(g_file_get_contents(p, &c, NULL, NULL));
			g_assert_cmpint(strstr(c, "PRIVATE KEY") != NULL, ==,
					g_str_equal(n, "ca.key"));
		}

		cert = load_one(dir, "ca.pem");
		root = load_one(dir, "root.pem");
		chain0 = load_one(dir, "chain.pem");
		g_assert_cmpint(X509_cmp(cert, chain0), ==, 0);
		key = vc_key_load(key_path, NULL);
		g_assert_cmpint(X509_check_private_key(cert, key), ==, 1);

		g_assert_cmpint(X509_get_signature_nid(cert), ==, expected_sig_nid(all_types[t]));
		g_assert_cmpint(X509_get_signature_nid(root), ==, expected_sig_nid(all_types[t]));
		g_assert_cmpint(
		    X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(root)), ==, 0);

		/* root: self-signed CA, critical keyCertSign + cRLSign, SKI */
		g_assert_cmpint(X509_self_signed(root, 1), ==, 1);
		root_bc = X509_get_ext_d2i(root, NID_basic_constraints, &crit, NULL);
		g_assert_nonnull(root_bc);
		g_assert_true(root_bc->ca);
		g_assert_cmpint(crit, ==, 1);
		g_assert_true(ext_is_critical(root, NID_key_usage));
		g_assert_cmpuint(X509_get_key_usage(root), ==, KU_KEY_CERT_SIGN | KU_CRL_SIGN);
		g_assert_nonnull(X509_get0_subject_key_id(root));

		assert_intermediate_extensions(cert, root);
		/* and the intermediate verifies under the root, strictly */
		g_assert_cmpint(verify_independently(cert, root, cert), ==, X509_V_OK);
		vc_test_dir_remove(dir);
	}
}

static void
test_init_refusals(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	const char *const none[] = {NULL};
	const char *const bad[] = {"not a name", NULL};
	VcCaInitOptions opts = {.permit = none};
	g_autofree char *key_path = g_build_filename(f->dir, "ca.key", NULL);
	g_autoptr(EVP_PKEY) k1 = NULL;
	g_autoptr(EVP_PKEY) k2 = NULL;

	g_assert_false(vc_ca_init_self_signed(f->dir, &opts, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_USAGE);
	g_clear_error(&error);
	opts.permit = bad;
	g_assert_false(vc_ca_init_self_signed(f->dir, &opts, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_USAGE);
	g_clear_error(&error);

	vc_test_ca_init(f->dir, VC_KEY_TYPE_EC_P256, permit);
	k1 = vc_key_load(key_path, NULL);
	opts.permit = permit;
	g_assert_false(vc_ca_init_self_signed(f->dir, &opts, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_EXISTS);
	g_clear_error(&error);
	g_assert_false(vc_ca_init_csr(f->dir, &opts, NULL, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_EXISTS);
	g_clear_error(&error);

	opts.force = TRUE;
	g_assert_true(vc_ca_init_self_signed(f->dir, &opts, &error));
	g_assert_no_error(error);
	k2 = vc_key_load(key_path, NULL);
	g_assert_cmpint(EVP_PKEY_eq(k1, k2), !=, 1);
}

static void
test_load_getters(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcCa) ca = NULL;
	const ASN1_OCTET_STRING *ski;
	g_autofree char *ski_hex = NULL;
	const char *const *p;

	vc_test_ca_init(f->dir, VC_KEY_TYPE_EC_P256, permit);
	ca = vc_ca_load(f->dir, &error);
	g_assert_no_error(error);
	g_assert_nonnull(ca);
	g_assert_nonnull(vc_ca_get_root(ca));
	g_assert_cmpuint(vc_ca_get_chain(ca)->len, ==, 1);
	g_assert_cmpint(X509_cmp(g_ptr_array_index(vc_ca_get_chain(ca), 0), vc_ca_get_cert(ca)), ==,
			0);
	p = vc_ca_get_permitted(ca);
	g_assert_cmpstr(p[0], ==, "vms.example.com");
	g_assert_cmpstr(p[1], ==, "lab.example.net");
	g_assert_null(p[2]);
	ski = X509_get0_subject_key_id(vc_ca_get_cert(ca));
	ski_hex = g_strdup_printf("%02x%02x%02x%02x%02x%02x%02x%02x", ASN1_STRING_get0_data(ski)[0],
				  ASN1_STRING_get0_data(ski)[1], ASN1_STRING_get0_data(ski)[2],
				  ASN1_STRING_get0_data(ski)[3], ASN1_STRING_get0_data(ski)[4],
				  ASN1_STRING_get0_data(ski)[5], ASN1_STRING_get0_data(ski)[6],
				  ASN1_STRING_get0_data(ski)[7]);
	g_assert_cmpstr(vc_ca_get_id(ca), ==, ski_hex);
}

static void
test_load_missing(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	g_assert_null(vc_ca_load(f->dir, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
}

static X509 *
issue(VcCa *ca, const char *const *names, EVP_PKEY *pub, gboolean empty_subject, gboolean urls,
      char **ret_serial, GError **error)
{
	g_autofree char *serial = vc_serial_generate(NULL);
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	VcLeafRequest req = {
	    .serial_hex = serial,
	    .vm_uuid = UUID,
	    .dns_names = names,
	    .public_key = pub,
	    .not_before = now - 300,
	    .not_after = now + 86400,
	    .crl_url = urls ? "http://127.0.0.1:8453/crl/x.crl" : NULL,
	    .ocsp_url = urls ? "http://127.0.0.1:8453/ocsp" : NULL,
	    .ca_issuers_url = urls ? "http://127.0.0.1:8453/ca/x.crt" : NULL,
	    .empty_subject = empty_subject,
	};
	X509 *cert = vc_ca_issue_leaf(ca, &req, error);

	if (cert != NULL && ret_serial != NULL)
		*ret_serial = g_steal_pointer(&serial);
	return cert;
}

static void
assert_leaf(VcCa *ca, X509 *leaf, const char *const *names, EVP_PKEY *pub, gboolean empty_subject,
	    gboolean urls, const char *serial)
{
	int crit = -1;
	g_autoptr(GENERAL_NAMES) san = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
	g_autoptr(EXTENDED_KEY_USAGE) eku = NULL;
	g_autoptr(BASIC_CONSTRAINTS) bc = NULL;
	g_autoptr(AUTHORITY_KEYID) aki = NULL;
	g_autoptr(CRL_DIST_POINTS) cdp = NULL;
	g_autoptr(AUTHORITY_INFO_ACCESS) aia = NULL;
	g_autofree char *hex = vc_cert_get_serial_hex(leaf);
	const ASN1_INTEGER *sn = X509_get0_serialNumber(leaf);
	X509_NAME *subject = X509_get_subject_name(leaf);
	guint n_names = g_strv_length((char **)names);
	guint32 want_ku = KU_DIGITAL_SIGNATURE;

	g_assert_cmpint(X509_get_version(leaf), ==, X509_VERSION_3);
	/* serial: the requested one, positive, 16 octets */
	g_assert_cmpstr(hex, ==, serial);
	g_assert_cmpint(ASN1_STRING_type(sn), ==, V_ASN1_INTEGER);
	g_assert_cmpint(ASN1_STRING_length(sn), ==, 16);
	g_assert_cmpint(
	    X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(vc_ca_get_cert(ca))),
	    ==, 0);
	g_assert_cmpint(EVP_PKEY_eq(X509_get0_pubkey(leaf), pub), ==, 1);

	if (empty_subject) {
		g_assert_cmpint(X509_NAME_entry_count(subject), ==, 0);
	} else {
		char cn[256];
		g_assert_cmpint(X509_NAME_entry_count(subject), ==, 1);
		g_assert_cmpint(X509_NAME_get_text_by_NID(subject, NID_commonName, cn, sizeof(cn)),
				>, 0);
		g_assert_cmpstr(cn, ==, names[0]);
	}

	/* SAN: the DNS names in order, then urn:uuid:<lower-case uuid> */
	g_assert_nonnull(san);
	g_assert_cmpint(crit, ==, empty_subject ? 1 : 0);
	g_assert_cmpint(sk_GENERAL_NAME_num(san), ==, (int)n_names + 1);
	for (guint i = 0; i < n_names; i++) {
		GENERAL_NAME *gn = sk_GENERAL_NAME_value(san, (int)i);
		g_assert_cmpint(gn->type, ==, GEN_DNS);
		g_assert_cmpstr((const char *)ASN1_STRING_get0_data(gn->d.dNSName), ==, names[i]);
	}
	{
		GENERAL_NAME *gn = sk_GENERAL_NAME_value(san, (int)n_names);
		g_autofree char *want = g_ascii_strdown("urn:uuid:" UUID, -1);
		g_assert_cmpint(gn->type, ==, GEN_URI);
		g_assert_cmpstr(
		    (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier), ==, want);
	}

	eku = X509_get_ext_d2i(leaf, NID_ext_key_usage, &crit, NULL);
	g_assert_nonnull(eku);
	g_assert_cmpint(sk_ASN1_OBJECT_num(eku), ==, 2);
	g_assert_cmpint(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), ==, NID_server_auth);
	g_assert_cmpint(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 1)), ==, NID_client_auth);

	if (EVP_PKEY_is_a(pub, "RSA"))
		want_ku |= KU_KEY_ENCIPHERMENT;
	g_assert_true(ext_is_critical(leaf, NID_key_usage));
	g_assert_cmpuint(X509_get_key_usage(leaf), ==, want_ku);

	bc = X509_get_ext_d2i(leaf, NID_basic_constraints, &crit, NULL);
	g_assert_nonnull(bc);
	g_assert_cmpint(crit, ==, 1);
	g_assert_false(bc->ca);
	g_assert_null(bc->pathlen);

	/* the SubjectPublicKeyInfo is exactly the key's own encoding, and the
	 * SKI is the SHA-1 of its subjectPublicKey (RFC 5280 4.2.1.2 (1)) */
	{
		unsigned char *want = NULL;
		unsigned char *got = NULL;
		int want_len = i2d_PUBKEY(pub, &want);
		int got_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(leaf), &got);
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int md_len = 0;
		const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(leaf);

		g_assert_cmpmem(got, got_len, want, want_len);
		OPENSSL_free(want);
		OPENSSL_free(got);
		g_assert_true(X509_pubkey_digest(leaf, EVP_sha1(), md, &md_len));
		g_assert_nonnull(ski);
		g_assert_cmpmem(ASN1_STRING_get0_data(ski), ASN1_STRING_length(ski), md, md_len);
	}
	aki = X509_get_ext_d2i(leaf, NID_authority_key_identifier, &crit, NULL);
	g_assert_nonnull(aki);
	g_assert_cmpint(
	    ASN1_OCTET_STRING_cmp(aki->keyid, X509_get0_subject_key_id(vc_ca_get_cert(ca))), ==, 0);

	cdp = X509_get_ext_d2i(leaf, NID_crl_distribution_points, &crit, NULL);
	aia = X509_get_ext_d2i(leaf, NID_info_access, &crit, NULL);
	if (urls) {
		DIST_POINT *dp;
		GENERAL_NAME *gn;
		ACCESS_DESCRIPTION *ad;
		g_assert_nonnull(cdp);
		g_assert_cmpint(sk_DIST_POINT_num(cdp), ==, 1);
		dp = sk_DIST_POINT_value(cdp, 0);
		g_assert_cmpint(dp->distpoint->type, ==, 0);
		gn = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0);
		g_assert_cmpint(gn->type, ==, GEN_URI);
		g_assert_cmpstr(
		    (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier), ==,
		    "http://127.0.0.1:8453/crl/x.crl");
		g_assert_nonnull(aia);
		g_assert_false(ext_is_critical(leaf, NID_info_access));
		g_assert_cmpint(sk_ACCESS_DESCRIPTION_num(aia), ==, 2);
		ad = sk_ACCESS_DESCRIPTION_value(aia, 0);
		g_assert_cmpint(OBJ_obj2nid(ad->method), ==, NID_ad_OCSP);
		g_assert_cmpstr(
		    (const char *)ASN1_STRING_get0_data(ad->location->d.uniformResourceIdentifier),
		    ==, "http://127.0.0.1:8453/ocsp");
		ad = sk_ACCESS_DESCRIPTION_value(aia, 1);
		g_assert_cmpint(OBJ_obj2nid(ad->method), ==, NID_ad_ca_issuers);
		g_assert_cmpstr(
		    (const char *)ASN1_STRING_get0_data(ad->location->d.uniformResourceIdentifier),
		    ==, "http://127.0.0.1:8453/ca/x.crt");
	} else {
		g_assert_null(cdp);
		g_assert_null(aia);
	}
	g_assert_cmpint(verify_independently(leaf, vc_ca_get_root(ca), vc_ca_get_cert(ca)), ==,
			X509_V_OK);
}

/* The URI of the AIA entry with METHOD, or NULL. */
static const char *
aia_uri(AUTHORITY_INFO_ACCESS *aia, int method)
{
	for (int i = 0; aia != NULL && i < sk_ACCESS_DESCRIPTION_num(aia); i++) {
		ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, i);
		if (OBJ_obj2nid(ad->method) == method && ad->location->type == GEN_URI)
			return (const char *)ASN1_STRING_get0_data(
			    ad->location->d.uniformResourceIdentifier);
	}
	return NULL;
}

/* Which revocation and issuer URLs a leaf carries for each configuration:
 * none without public-url (no loopback default), all three from
 * public-url, per-endpoint keys overriding it, "" switching one off. */
static void
test_issue_urls_from_config(Fixture *f, gconstpointer data)
{
	const char *const names[] = {"web1.vms.example.com", NULL};
	struct {
		const char *conf;
		const char *crl; /* with "ID" for the CA id; NULL: absent */
		const char *ocsp;
		const char *ca_issuers;
	} cases[] = {
	    {"", NULL, NULL, NULL},
	    {"[daemon]\nhttp-address = 0.0.0.0:8458\n", NULL, NULL, NULL},
	    {"[ca]\npublic-url = http://ca.example.com:8458\n",
	     "http://ca.example.com:8458/crl/ID.crl", "http://ca.example.com:8458/ocsp",
	     "http://ca.example.com:8458/ca/ID.crt"},
	    {"[ca]\npublic-url = https://pki.example.com/virtcert/\n",
	     "https://pki.example.com/virtcert/crl/ID.crl", "https://pki.example.com/virtcert/ocsp",
	     "https://pki.example.com/virtcert/ca/ID.crt"},
	    {"[ca]\npublic-url = http://ca.example.com\nocsp-url =\n"
	     "crl-url = http://crl.example.com/{ca}.crl\n",
	     "http://crl.example.com/ID.crl", NULL, "http://ca.example.com/ca/ID.crt"},
	    /* loopback only because the administrator wrote it */
	    {"[ca]\ncrl-url = http://127.0.0.1:8458/crl/{ca}.crl\n",
	     "http://127.0.0.1:8458/crl/ID.crl", NULL, NULL},
	};
	g_autoptr(VcCa) ca = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) key = vc_key_generate(VC_KEY_TYPE_EC_P256, NULL);
	g_autofree char *conf_path = g_build_filename(f->dir, "virtcert.conf", NULL);

	vc_test_ca_init(f->dir, VC_KEY_TYPE_EC_P256, permit);
	ca = vc_ca_load(f->dir, &error);
	g_assert_no_error(error);
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(VcConfig) config = NULL;
		g_autofree char *crl = NULL;
		g_autofree char *ocsp = NULL;
		g_autofree char *ca_issuers = NULL;
		g_autofree char *serial = vc_serial_generate(NULL);
		g_autoptr(X509) leaf = NULL;
		g_autoptr(CRL_DIST_POINTS) cdp = NULL;
		g_autoptr(AUTHORITY_INFO_ACCESS) aia = NULL;
		const char *want[3] = {cases[i].crl, cases[i].ocsp, cases[i].ca_issuers};
		const char *got[3] = {NULL, NULL, NULL};
		gint64 now = g_get_real_time() / G_USEC_PER_SEC;
		VcLeafRequest req = {
		    .serial_hex = serial,
		    .vm_uuid = UUID,
		    .dns_names = names,
		    .public_key = key,
		    .not_before = now - 300,
		    .not_after = now + 86400,
		};

		g_assert_true(g_file_set_contents(conf_path, cases[i].conf, -1, NULL));
		config = vc_config_load(conf_path, TRUE, &error);
		g_assert_no_error(error);
		crl = vc_config_get_ca_url(config, VC_CA_URL_CRL, vc_ca_get_id(ca));
		ocsp = vc_config_get_ca_url(config, VC_CA_URL_OCSP, vc_ca_get_id(ca));
		ca_issuers = vc_config_get_ca_url(config, VC_CA_URL_CA_ISSUERS, vc_ca_get_id(ca));
		req.crl_url = crl;
		req.ocsp_url = ocsp;
		req.ca_issuers_url = ca_issuers;
		leaf = vc_ca_issue_leaf(ca, &req, &error);
		g_assert_no_error(error);

		cdp = X509_get_ext_d2i(leaf, NID_crl_distribution_points, NULL, NULL);
		aia = X509_get_ext_d2i(leaf, NID_info_access, NULL, NULL);
		if (cdp != NULL) {
			DIST_POINT *dp = sk_DIST_POINT_value(cdp, 0);
			GENERAL_NAME *gn = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0);
			got[0] =
			    (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
		}
		got[1] = aia_uri(aia, NID_ad_OCSP);
		got[2] = aia_uri(aia, NID_ad_ca_issuers);
		for (int k = 0; k < 3; k++) {
			g_autoptr(GString) w = NULL;
			if (want[k] == NULL) {
				g_assert_null(got[k]);
				continue;
			}
			w = g_string_new(want[k]);
			g_string_replace(w, "ID", vc_ca_get_id(ca), 0);
			g_assert_cmpstr(got[k], ==, w->str);
		}
		/* no URL at all: no empty extension either */
		if (want[0] == NULL)
			g_assert_null(cdp);
		if (want[1] == NULL && want[2] == NULL)
			g_assert_null(aia);
	}
}

static void
test_issue_leaf(Fixture *f, gconstpointer data)
{
	const char *const names[] = {"web1.vms.example.com", "web1.lab.example.net", NULL};

	for (gsize t = 0; t < G_N_ELEMENTS(all_types); t++) {
		g_autofree char *dir = g_strdup_printf("%s-%zu", f->dir, t);
		g_autoptr(VcCa) ca = NULL;
		g_autoptr(GError) error = NULL;

		vc_test_ca_init(dir, all_types[t], permit);
		ca = vc_ca_load(dir, &error);
		g_assert_no_error(error);
		for (gsize k = 0; k < G_N_ELEMENTS(all_types); k++) {
			g_autoptr(EVP_PKEY) leaf_key = vc_key_generate(all_types[k], NULL);
			for (int variant = 0; variant < 2; variant++) {
				g_autofree char *serial = NULL;
				g_autoptr(X509) leaf = issue(ca, names, leaf_key, variant == 1,
							     variant == 0, &serial, &error);
				g_assert_no_error(error);
				g_assert_nonnull(leaf);
				g_assert_cmpint(X509_get_signature_nid(leaf), ==,
						expected_sig_nid(all_types[t]));
				assert_leaf(ca, leaf, names, leaf_key, variant == 1, variant == 0,
					    serial);
				g_assert_true(vc_ca_verify_leaf(ca, leaf, 0, &error));
				g_assert_no_error(error);
			}
		}
		vc_test_dir_remove(dir);
	}
}

static void
test_issue_validity_and_serials(Fixture *f, gconstpointer data)
{
	const char *const names[] = {"a.vms.example.com", NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(VcCa) ca = NULL;
	g_autoptr(EVP_PKEY) key = vc_key_generate(VC_KEY_TYPE_EC_P256, NULL);
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	VcLeafRequest req = {
	    .vm_uuid = UUID,
	    .dns_names = names,
	    .public_key = key,
	    .not_before = now - 120,
	    .not_after = now + 3600,
	};

	vc_test_ca_init(f->dir, VC_KEY_TYPE_EC_P256, permit);
	ca = vc_ca_load(f->dir, &error);
	g_assert_no_error(error);
	for (int i = 0; i < 50; i++) {
		g_autofree char *serial = vc_serial_generate(NULL);
		g_autoptr(X509) leaf = NULL;
		g_autofree char *hex = NULL;
		int day = -1;
		int sec = -1;
		g_autoptr(ASN1_TIME) nb = ASN1_TIME_set(NULL, (time_t)req.not_before);
		g_autoptr(ASN1_TIME) na = ASN1_TIME_set(NULL, (time_t)req.not_after);

		req.serial_hex = serial;
		leaf = vc_ca_issue_leaf(ca, &req, &error);
		g_assert_no_error(error);
		hex = vc_cert_get_serial_hex(leaf);
		g_assert_cmpstr(hex, ==, serial);
		g_assert_cmpint(ASN1_STRING_length(X509_get0_serialNumber(leaf)), ==, 16);
		g_assert_false(g_hash_table_contains(seen, hex));
		g_hash_table_add(seen, g_steal_pointer(&hex));
		g_assert_true(ASN1_TIME_diff(&day, &sec, X509_get0_notBefore(leaf), nb));
		g_assert_cmpint(day, ==, 0);
		g_assert_cmpint(sec, ==, 0);
		g_assert_true(ASN1_TIME_diff(&day, &sec, X509_get0_notAfter(leaf), na));
		g_assert_cmpint(day, ==, 0);
		g_assert_cmpint(sec, ==, 0);
		/* and the validity is enforced by verification */
		g_assert_true(vc_ca_verify_leaf(ca, leaf, now + 3500, NULL));
		g_assert_false(vc_ca_verify_leaf(ca, leaf, now + 3700, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_CRYPTO);
		g_clear_error(&error);
	}

	/* a serial that is not a positive non-zero integer of at most 20 octets */
	{
		const char *bad[] = {"00", "-01", "xyz", "",
				     "0102030405060708090a0b0c0d0e0f101112131415"};
		for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
			req.serial_hex = bad[i];
			g_assert_null(vc_ca_issue_leaf(ca, &req, &error));
			g_assert_error(error, VC_ERROR, VC_ERROR_USAGE);
			g_clear_error(&error);
		}
	}
	req.serial_hex = "01";
	req.vm_uuid = "not-a-uuid";
	g_assert_null(vc_ca_issue_leaf(ca, &req, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_USAGE);
}

static void
test_check_names(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcCa) ca = NULL;
	g_autoptr(EVP_PKEY) key = vc_key_generate(VC_KEY_TYPE_EC_P256, NULL);
	const char *refused[] = {
	    "web.other.example.org", /* outside */
	    "evilvms.example.com",   /* suffix, not a subdomain */
	    "example.com",	     /* parent of the subtree */
	    "*.x.vms.example.com",   /* wildcard */
	    "a..vms.example.com",    /* empty label */
	    "-a.vms.example.com",    /* leading hyphen */
	    "Web.vms.example.com",   /* upper case */
	    "web.vms.example.com.",  /* trailing dot */
	    "10.0.0.1",		     /* not a DNS name, and IPs are excluded */
	};

	vc_test_ca_init(f->dir, VC_KEY_TYPE_EC_P256, permit);
	ca = vc_ca_load(f->dir, &error);
	g_assert_no_error(error);
	{
		const char *const ok[] = {"vms.example.com", "a.b.vms.example.com",
					  "xn--bcher-kva.lab.example.net", NULL};
		g_assert_true(vc_ca_check_names(ca, ok, &error));
		g_assert_no_error(error);
	}
	for (gsize i = 0; i < G_N_ELEMENTS(refused); i++) {
		const char *const names[] = {"fine.vms.example.com", refused[i], NULL};
		g_autoptr(X509) leaf = NULL;

		g_assert_false(vc_ca_check_names(ca, names, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_POLICY);
		/* the message names the offending name */
		g_assert_nonnull(strstr(error->message, refused[i]));
		g_clear_error(&error);
		leaf = issue(ca, names, key, FALSE, FALSE, NULL, &error);
		g_assert_null(leaf);
		g_assert_error(error, VC_ERROR, VC_ERROR_POLICY);
		g_clear_error(&error);
	}
	{
		const char *const empty[] = {NULL};
		g_assert_false(vc_ca_check_names(ca, empty, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_POLICY);
	}
}

/* Builds and signs a leaf with the CA key directly, bypassing the name check,
 * the way a compromised or buggy issuer would. */
static X509 *
rogue_leaf(const char *dir, X509 *ca_cert, GENERAL_NAME *gn)
{
	g_autofree char *key_path = g_build_filename(dir, "ca.key", NULL);
	g_autoptr(EVP_PKEY) ca_key = vc_key_load(key_path, NULL);
	g_autoptr(EVP_PKEY) key = vc_key_generate(VC_KEY_TYPE_EC_P256, NULL);
	g_autoptr(GENERAL_NAMES) san = sk_GENERAL_NAME_new_null();
	X509 *cert = X509_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509_set_version(cert, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 4242);
	X509_set_issuer_name(cert, X509_get_subject_name(ca_cert));
	X509_gmtime_adj(X509_getm_notBefore(cert), -300);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	X509_set_pubkey(cert, key);
	sk_GENERAL_NAME_push(san, gn);
	X509_add1_ext_i2d(cert, NID_subject_alt_name, san, 1, 0);
	X509V3_set_ctx(&v3, ca_cert, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_key_identifier, "hash");
	X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier, "keyid");
	X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	g_assert_cmpint(X509_sign(cert, ca_key, EVP_sha256()), >, 0);
	return cert;
}

static void
test_constraints_enforced(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcCa) ca = NULL;
	GENERAL_NAME *dns = GENERAL_NAME_new();
	GENERAL_NAME *ip = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();
	ASN1_OCTET_STRING *addr = ASN1_OCTET_STRING_new();
	static const guint8 v4[4] = {192, 0, 2, 1};
	g_autoptr(X509) outside = NULL;
	g_autoptr(X509) with_ip = NULL;

	vc_test_ca_init(f->dir, VC_KEY_TYPE_EC_P256, permit);
	ca = vc_ca_load(f->dir, &error);
	g_assert_no_error(error);

	ASN1_STRING_set(s, "web.other.example.org", -1);
	GENERAL_NAME_set0_value(dns, GEN_DNS, s);
	outside = rogue_leaf(f->dir, vc_ca_get_cert(ca), dns);
	g_assert_false(vc_ca_verify_leaf(ca, outside, 0, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_CRYPTO);
	g_clear_error(&error);
	g_assert_cmpint(verify_independently(outside, vc_ca_get_root(ca), vc_ca_get_cert(ca)), ==,
			X509_V_ERR_PERMITTED_VIOLATION);

	ASN1_OCTET_STRING_set(addr, v4, sizeof(v4));
	GENERAL_NAME_set0_value(ip, GEN_IPADD, addr);
	with_ip = rogue_leaf(f->dir, vc_ca_get_cert(ca), ip);
	g_assert_false(vc_ca_verify_leaf(ca, with_ip, 0, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_CRYPTO);
	g_assert_cmpint(verify_independently(with_ip, vc_ca_get_root(ca), vc_ca_get_cert(ca)), ==,
			X509_V_ERR_EXCLUDED_VIOLATION);
}

static void
test_post_sign_verification(Fixture *f, gconstpointer data)
{
	const char *const names[] = {"a.vms.example.com", NULL};
	g_autofree char *other_dir = g_build_filename(f->tmp, "other", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(VcCa) ca = NULL;
	g_autoptr(VcCa) other = NULL;
	g_autoptr(EVP_PKEY) key = vc_key_generate(VC_KEY_TYPE_EC_P256, NULL);
	g_autoptr(X509) foreign = NULL;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	VcLeafRequest req = {
	    .serial_hex = "0123",
	    .vm_uuid = UUID,
	    .dns_names = names,
	    .public_key = key,
	    /* not yet valid now: verification after signing must fail */
	    .not_before = now + 3600,
	    .not_after = now + 7200,
	};

	vc_test_ca_init(f->dir, VC_KEY_TYPE_EC_P256, permit);
	vc_test_ca_init(other_dir, VC_KEY_TYPE_EC_P256, permit);
	ca = vc_ca_load(f->dir, &error);
	g_assert_no_error(error);
	other = vc_ca_load(other_dir, &error);
	g_assert_no_error(error);

	g_assert_null(vc_ca_issue_leaf(ca, &req, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_CRYPTO);
	g_assert_nonnull(strstr(error->message, "0123"));
	g_clear_error(&error);

	/* a leaf of another CA with the same permitted names does not verify */
	foreign = issue(other, names, key, FALSE, FALSE, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(vc_ca_verify_leaf(other, foreign, 0, NULL));
	g_assert_false(vc_ca_verify_leaf(ca, foreign, 0, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_CRYPTO);
}

/* ---- CSR mode -------------------------------------------------------- */

typedef struct {
	EVP_PKEY *key;
	X509 *cert;
} TestRoot;

static void
test_root_clear(TestRoot *r)
{
	EVP_PKEY_free(r->key);
	X509_free(r->cert);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(TestRoot, test_root_clear)

static void
add_conf_ext(X509 *cert, X509 *issuer, int nid, const char *value, gboolean critical)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	g_assert_nonnull(ext);
	X509_EXTENSION_set_critical(ext, critical);
	X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
}

/* An "organization root" made with plain OpenSSL, not with the code under test. */
static void
test_root_make(TestRoot *r, const char *cn)
{
	r->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	r->cert = X509_new();
	X509_set_version(r->cert, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(r->cert), 1);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(r->cert), "CN", MBSTRING_UTF8,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(r->cert, X509_get_subject_name(r->cert));
	X509_gmtime_adj(X509_getm_notBefore(r->cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(r->cert), 86400 * 30);
	X509_set_pubkey(r->cert, r->key);
	add_conf_ext(r->cert, r->cert, NID_basic_constraints, "CA:TRUE", TRUE);
	add_conf_ext(r->cert, r->cert, NID_key_usage, "keyCertSign,cRLSign", TRUE);
	add_conf_ext(r->cert, r->cert, NID_subject_key_identifier, "hash", FALSE);
	g_assert_cmpint(X509_sign(r->cert, r->key, EVP_sha256()), >, 0);
}

/* Signs REQ with ROOT; with COPY_EXTS the CSR's requested extensions are
 * copied (what an organization's CA would do), else a bare CA certificate. */
static X509 *
test_root_sign(TestRoot *r, X509_REQ *req, gboolean copy_exts)
{
	X509 *cert = X509_new();
	g_autoptr(EVP_PKEY) pub = X509_REQ_get_pubkey(req);

	X509_set_version(cert, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), g_random_int_range(2, G_MAXINT32));
	X509_set_subject_name(cert, X509_REQ_get_subject_name(req));
	X509_set_issuer_name(cert, X509_get_subject_name(r->cert));
	X509_gmtime_adj(X509_getm_notBefore(cert), -600);
	X509_gmtime_adj(X509_getm_notAfter(cert), 86400 * 7);
	X509_set_pubkey(cert, pub);
	if (copy_exts) {
		g_autoptr(VcX509ExtStack) exts = X509_REQ_get_extensions(req);
		for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++)
			X509_add_ext(cert, sk_X509_EXTENSION_value(exts, i), -1);
	} else {
		add_conf_ext(cert, r->cert, NID_basic_constraints, "CA:TRUE,pathlen:0", TRUE);
		add_conf_ext(cert, r->cert, NID_key_usage, "keyCertSign,cRLSign", TRUE);
		add_conf_ext(cert, r->cert, NID_subject_key_identifier, "hash", FALSE);
	}
	add_conf_ext(cert, r->cert, NID_authority_key_identifier, "keyid", FALSE);
	g_assert_cmpint(X509_sign(cert, r->key, EVP_sha256()), >, 0);
	return cert;
}

static void
write_pem(const char *path, X509 *a, X509 *b)
{
	g_autofree char *pa = vc_cert_to_pem(a, NULL);
	g_autofree char *pb = b != NULL ? vc_cert_to_pem(b, NULL) : g_strdup("");
	g_autofree char *all = g_strconcat(pa, pb, NULL);

	g_assert_true(g_file_set_contents(path, all, -1, NULL));
}

static void
test_csr_and_import(Fixture *f, gconstpointer data)
{
	g_autofree char *out = g_build_filename(f->tmp, "out.csr", NULL);
	g_autofree char *csr_path = g_build_filename(f->dir, "ca.csr", NULL);
	g_autofree char *key_path = g_build_filename(f->dir, "ca.key", NULL);
	g_autofree char *cert_path = g_build_filename(f->tmp, "signed.pem", NULL);
	g_autofree char *root_path = g_build_filename(f->tmp, "root.pem", NULL);
	g_autofree char *a = NULL;
	g_autofree char *b = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(X509_REQ) req = NULL;
	g_autoptr(EVP_PKEY) key = NULL;
	g_autoptr(X509) signed_cert = NULL;
	g_autoptr(VcCa) ca = NULL;
	g_autoptr(X509) leaf = NULL;
	g_autoptr(EVP_PKEY) leaf_key = vc_key_generate(VC_KEY_TYPE_EC_P256, NULL);
	g_autoptr(VcX509ExtStack) exts = NULL;
	g_auto(TestRoot) root = {0};
	const char *const names[] = {"db.vms.example.com", NULL};
	VcCaInitOptions opts = {.permit = permit,
				.key_type = VC_KEY_TYPE_EC_P256,
				.common_name = "virtcert test intermediate"};
	char cn[128];

	g_assert_true(vc_ca_init_csr(f->dir, &opts, out, &error));
	g_assert_no_error(error);
	g_assert_true(g_file_get_contents(out, &a, NULL, NULL));
	g_assert_true(g_file_get_contents(csr_path, &b, NULL, NULL));
	g_assert_cmpstr(a, ==, b);

	/* the CSR is signed by ca.key and requests the restricted extensions */
	req = vc_test_csr_load(csr_path);
	g_assert_nonnull(req);
	key = vc_key_load(key_path, &error);
	g_assert_no_error(error);
	g_assert_cmpint(X509_REQ_verify(req, key), ==, 1);
	g_assert_cmpint(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName,
						  cn, sizeof(cn)),
			>, 0);
	g_assert_cmpstr(cn, ==, "virtcert test intermediate");
	exts = X509_REQ_get_extensions(req);
	g_assert_cmpint(X509v3_get_ext_by_NID(exts, NID_basic_constraints, -1), >=, 0);
	g_assert_cmpint(X509v3_get_ext_by_NID(exts, NID_key_usage, -1), >=, 0);
	g_assert_cmpint(X509v3_get_ext_by_NID(exts, NID_name_constraints, -1), >=, 0);
	g_assert_cmpint(X509v3_get_ext_by_NID(exts, NID_subject_key_identifier, -1), >=, 0);

	/* no certificate yet: the CA cannot be loaded */
	g_assert_null(vc_ca_load(f->dir, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	g_clear_error(&error);

	/* the organization's root signs it, copying the requested extensions */
	test_root_make(&root, "Example Org Root");
	signed_cert = test_root_sign(&root, req, TRUE);
	write_pem(cert_path, signed_cert, NULL);
	write_pem(root_path, root.cert, NULL);
	g_assert_true(vc_ca_import(f->dir, cert_path, root_path, &error));
	g_assert_no_error(error);
	assert_intermediate_extensions(signed_cert, root.cert);

	ca = vc_ca_load(f->dir, &error);
	g_assert_no_error(error);
	g_assert_cmpint(X509_cmp(vc_ca_get_root(ca), root.cert), ==, 0);
	g_assert_cmpint(X509_cmp(vc_ca_get_cert(ca), signed_cert), ==, 0);
	leaf = issue(ca, names, leaf_key, FALSE, TRUE, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpint(verify_independently(leaf, root.cert, signed_cert), ==, X509_V_OK);
}

static void
test_import_refusals(Fixture *f, gconstpointer data)
{
	g_autofree char *csr_path = g_build_filename(f->dir, "ca.csr", NULL);
	g_autofree char *cert_path = g_build_filename(f->tmp, "signed.pem", NULL);
	g_autofree char *root_path = g_build_filename(f->tmp, "root.pem", NULL);
	g_autofree char *other_dir = g_build_filename(f->tmp, "other", NULL);
	g_autofree char *other_csr = g_build_filename(other_dir, "ca.csr", NULL);
	g_autofree char *ca_pem = g_build_filename(f->dir, "ca.pem", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(X509_REQ) req = NULL;
	g_autoptr(X509_REQ) other_req = NULL;
	g_auto(TestRoot) root = {0};
	g_auto(TestRoot) wrong_root = {0};
	VcCaInitOptions opts = {.permit = permit, .key_type = VC_KEY_TYPE_EC_P256};

	g_assert_true(vc_ca_init_csr(f->dir, &opts, NULL, &error));
	g_assert_true(vc_ca_init_csr(other_dir, &opts, NULL, &error));
	g_assert_no_error(error);
	req = vc_test_csr_load(csr_path);
	other_req = vc_test_csr_load(other_csr);
	test_root_make(&root, "Example Org Root");
	test_root_make(&wrong_root, "Someone Else's Root");
	write_pem(root_path, root.cert, NULL);

	/* a CA certificate without name constraints */
	{
		g_autoptr(X509) bare = test_root_sign(&root, req, FALSE);
		write_pem(cert_path, bare, NULL);
		g_assert_false(vc_ca_import(f->dir, cert_path, root_path, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_POLICY);
		g_assert_nonnull(strstr(error->message, "name constraints"));
		g_clear_error(&error);
	}
	/* a certificate for another key */
	{
		g_autoptr(X509) wrong_key = test_root_sign(&root, other_req, TRUE);
		write_pem(cert_path, wrong_key, NULL);
		g_assert_false(vc_ca_import(f->dir, cert_path, root_path, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_CRYPTO);
		g_assert_nonnull(strstr(error->message, "ca.key"));
		g_clear_error(&error);
	}
	/* signed by another root than the one given */
	{
		g_autoptr(X509) elsewhere = test_root_sign(&wrong_root, req, TRUE);
		write_pem(cert_path, elsewhere, NULL);
		g_assert_false(vc_ca_import(f->dir, cert_path, root_path, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_CRYPTO);
		g_clear_error(&error);
	}
	/* nothing was installed by the refused imports */
	g_assert_false(g_file_test(ca_pem, G_FILE_TEST_EXISTS));
	/* with the root appended to the file and no root path, it is found */
	{
		g_autoptr(X509) good = test_root_sign(&root, req, TRUE);
		g_autoptr(VcCa) ca = NULL;
		write_pem(cert_path, good, root.cert);
		g_assert_true(vc_ca_import(f->dir, cert_path, NULL, &error));
		g_assert_no_error(error);
		ca = vc_ca_load(f->dir, &error);
		g_assert_no_error(error);
		g_assert_cmpint(X509_cmp(vc_ca_get_root(ca), root.cert), ==, 0);
		g_assert_cmpuint(vc_ca_get_chain(ca)->len, ==, 1);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
	ADD("/ca/init/self-signed", test_init_self_signed);
	ADD("/ca/init/refusals", test_init_refusals);
	ADD("/ca/load/getters", test_load_getters);
	ADD("/ca/load/missing", test_load_missing);
	ADD("/ca/issue/leaf", test_issue_leaf);
	ADD("/ca/issue/urls-from-config", test_issue_urls_from_config);
	ADD("/ca/issue/validity-and-serials", test_issue_validity_and_serials);
	ADD("/ca/issue/check-names", test_check_names);
	ADD("/ca/issue/constraints-enforced", test_constraints_enforced);
	ADD("/ca/issue/post-sign-verification", test_post_sign_verification);
	ADD("/ca/csr/import", test_csr_and_import);
	ADD("/ca/csr/import-refusals", test_import_refusals);
#undef ADD
	return g_test_run();
}
