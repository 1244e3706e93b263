/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "vc-ca.h"
#include "vc-error.h"
#include "vc-host-ca.h"
#include "vc-host-libvirt-tls.h"
#include "vc-host.h"
#include "vc-test-ca.h"

typedef struct {
	char *dir;
	char *ca_dir;
	char *key;
	char *csr;
	char *hostca;
	char *cert;
	char *crl;
} Fixture;

static char *
fx_path(Fixture *fx, const char *name)
{
	return g_build_filename(fx->dir, name, NULL);
}

/* host CA + enrolled host with site=eu-west, tier=confidential */
static void
fx_setup(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	const char *attrs[] = {"site=eu-west", "tier=confidential", NULL};

	fx->dir = vc_test_dir_make("vc-host-XXXXXX");
	fx->ca_dir = fx_path(fx, "hostca");
	fx->key = fx_path(fx, "host/host.key");
	fx->csr = fx_path(fx, "host/host.csr");
	fx->hostca = fx_path(fx, "host/hostca.pem");
	fx->cert = fx_path(fx, "host/host.pem");
	fx->crl = fx_path(fx, "host/hostca.crl");
	vc_test_host_ca_init(fx->ca_dir, "test host CA");
	{
		g_autofree char *ca_pem = g_build_filename(fx->ca_dir, "ca.pem", NULL);
		g_assert_true(vc_host_enroll(fx->key, fx->csr, "H1.Example.COM", attrs, ca_pem,
					     fx->hostca, FALSE, &error));
		g_assert_no_error(error);
	}
}

static void
fx_teardown(Fixture *fx, gconstpointer data)
{
	vc_test_dir_remove(fx->dir);
	g_free(fx->dir);
	g_free(fx->ca_dir);
	g_free(fx->key);
	g_free(fx->csr);
	g_free(fx->hostca);
	g_free(fx->cert);
	g_free(fx->crl);
}

static void
test_enroll_sign_import_check(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *signed_path = fx_path(fx, "signed.pem");
	g_autofree char *ca_pem = g_build_filename(fx->ca_dir, "ca.pem", NULL);
	g_autoptr(GPtrArray) ca_certs = vc_cert_load_pem_file(ca_pem, &error);
	g_autofree char *ca_fp = vc_cert_get_fingerprint_sha256(g_ptr_array_index(ca_certs, 0));
	g_autoptr(VcHost) host = NULL;
	g_autoptr(VcHostIdentity) id = NULL;
	g_autoptr(X509) cert = NULL;
	GStatBuf st;

	/* the key is private, the CSR carries the FQDN in lower case */
	g_assert_cmpint(g_stat(fx->key, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);

	vc_test_host_ca_sign(fx->ca_dir, fx->csr, vc_test_now_s() - 60, vc_test_now_s() + 86400,
			     signed_path);
	g_assert_true(vc_host_import(signed_path, fx->key, fx->hostca, fx->cert, &error));
	g_assert_no_error(error);

	host = vc_host_load_files(fx->cert, fx->key, fx->hostca, fx->crl, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(vc_host_get_fqdn(host), ==, "h1.example.com");
	g_assert_cmpstr(vc_host_get_ca_fingerprint(host), ==, ca_fp);
	g_assert_true(vc_host_check(host, &error));
	g_assert_no_error(error);

	id = vc_host_get_identity(host, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(id->ca_fingerprints->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(id->ca_fingerprints, 0), ==, ca_fp);
	g_assert_cmpstr(g_ptr_array_index(vc_host_identity_get_values(id, "site"), 0), ==,
			"eu-west");
	g_assert_cmpstr(g_ptr_array_index(vc_host_identity_get_values(id, "tier"), 0), ==,
			"confidential");

	/* what libvirt's migration TLS needs of it */
	cert = X509_dup(vc_host_get_cert(host));
	g_assert_cmpint(X509_check_purpose(cert, X509_PURPOSE_SSL_SERVER, 0), ==, 1);
	g_assert_cmpint(X509_check_purpose(cert, X509_PURPOSE_SSL_CLIENT, 0), ==, 1);
	g_assert_cmpint(X509_check_host(cert, "h1.example.com", 0, 0, NULL), ==, 1);
	g_assert_cmpint(X509_check_ca(cert), ==, 0);
	/* an EC key: digitalSignature, not critical (libvirt up to 9.x refuses
	 * a critical keyUsage without keyEncipherment, which RFC 8813 forbids
	 * for EC keys) */
	{
		int crit = -1;
		ASN1_BIT_STRING *ku = X509_get_ext_d2i(cert, NID_key_usage, &crit, NULL);
		g_assert_nonnull(ku);
		g_assert_cmpint(crit, ==, 0);
		g_assert_cmpuint(X509_get_key_usage(cert), ==, KU_DIGITAL_SIGNATURE);
		ASN1_BIT_STRING_free(ku);
	}

	/* a host certificate far in the future is not yet valid */
	g_assert_false(vc_host_check_at(host, vc_test_now_s() - 7 * 86400, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_CRYPTO);
	g_assert_nonnull(strstr(error->message, "not valid before"));
}

static void
test_expired(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcHost) host = NULL;
	g_autoptr(VcHostIdentity) id = NULL;

	vc_test_host_ca_sign(fx->ca_dir, fx->csr, vc_test_now_s() - 2 * 86400,
			     vc_test_now_s() - 86400, fx->cert);
	host = vc_host_load_files(fx->cert, fx->key, fx->hostca, NULL, &error);
	g_assert_no_error(error);
	g_assert_false(vc_host_check(host, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_CRYPTO);
	g_assert_nonnull(strstr(error->message, "host certificate expired on"));
	g_clear_error(&error);
	/* the identity is still readable (for `host show`) */
	id = vc_host_get_identity(host, &error);
	g_assert_no_error(error);
	g_assert_nonnull(vc_host_identity_get_values(id, "site"));
}

static void
test_revoked(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcHostCa) ca = NULL;
	g_autoptr(X509_CRL) crl = NULL;
	g_autoptr(X509_CRL) crl2 = NULL;
	g_autoptr(VcHost) before = NULL;
	g_autoptr(VcHost) after = NULL;
	g_autofree char *pem = NULL;
	g_autoptr(ASN1_INTEGER) n1 = NULL;
	g_autoptr(ASN1_INTEGER) n2 = NULL;

	vc_test_host_ca_sign(fx->ca_dir, fx->csr, vc_test_now_s() - 60, vc_test_now_s() + 86400,
			     fx->cert);
	ca = vc_host_ca_load(fx->ca_dir, &error);
	g_assert_no_error(error);

	/* a CRL that does not list it changes nothing */
	crl = vc_host_ca_make_crl(ca, 86400, &error);
	g_assert_no_error(error);
	pem = vc_crl_to_pem(crl, &error);
	g_assert_true(vc_file_write_atomic(fx->crl, pem, strlen(pem), 0644, &error));
	before = vc_host_load_files(fx->cert, fx->key, fx->hostca, fx->crl, &error);
	g_assert_no_error(error);
	g_assert_true(vc_host_check(before, &error));
	g_assert_no_error(error);

	g_assert_true(vc_host_ca_revoke(ca, vc_host_get_cert(before), &error));
	g_assert_no_error(error);
	crl2 = vc_host_ca_make_crl(ca, 86400, &error);
	g_assert_no_error(error);
	/* RFC 5280 5.2.3: the CRL number only goes up */
	n1 = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	n2 = X509_CRL_get_ext_d2i(crl2, NID_crl_number, NULL, NULL);
	g_assert_cmpint(ASN1_INTEGER_cmp(n1, n2), <, 0);
	g_free(pem);
	pem = vc_crl_to_pem(crl2, &error);
	g_assert_true(vc_file_write_atomic(fx->crl, pem, strlen(pem), 0644, &error));

	after = vc_host_load_files(fx->cert, fx->key, fx->hostca, fx->crl, &error);
	g_assert_no_error(error);
	g_assert_false(vc_host_check(after, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_CRYPTO);
	g_assert_nonnull(strstr(error->message, "revoked"));
}

static void
test_wrong_ca(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *other_dir = fx_path(fx, "otherca");
	g_autofree char *signed_path = fx_path(fx, "other-signed.pem");
	g_autofree char *other_crl = fx_path(fx, "other.crl");
	g_autoptr(VcHost) host = NULL;
	g_autoptr(VcHost) good = NULL;
	g_autoptr(VcHostCa) other = NULL;
	g_autoptr(X509_CRL) crl = NULL;
	g_autofree char *pem = NULL;

	vc_test_host_ca_init(other_dir, "rogue host CA");
	vc_test_host_ca_sign(other_dir, fx->csr, vc_test_now_s() - 60, vc_test_now_s() + 86400,
			     signed_path);

	g_assert_false(vc_host_import(signed_path, fx->key, fx->hostca, fx->cert, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_CRYPTO);
	g_assert_nonnull(strstr(error->message, "not issued by the trusted host CA"));
	g_assert_false(g_file_test(fx->cert, G_FILE_TEST_EXISTS));
	g_clear_error(&error);

	host = vc_host_load_files(signed_path, fx->key, fx->hostca, NULL, &error);
	g_assert_no_error(error);
	g_assert_false(vc_host_check(host, &error));
	g_assert_nonnull(strstr(error->message, "rogue host CA"));
	g_clear_error(&error);

	/* a CRL of another CA is no CRL for this certificate: refused, not
	 * silently ignored */
	vc_test_host_ca_sign(fx->ca_dir, fx->csr, vc_test_now_s() - 60, vc_test_now_s() + 86400,
			     fx->cert);
	other = vc_host_ca_load(other_dir, &error);
	crl = vc_host_ca_make_crl(other, 86400, &error);
	pem = vc_crl_to_pem(crl, &error);
	g_assert_true(vc_file_write_atomic(other_crl, pem, strlen(pem), 0644, &error));
	good = vc_host_load_files(fx->cert, fx->key, fx->hostca, other_crl, &error);
	g_assert_no_error(error);
	g_assert_false(vc_host_check(good, &error));
	g_assert_nonnull(strstr(error->message, "CRL"));
	g_clear_error(&error);

	/* revoking needs the issuing CA */
	g_assert_false(vc_host_ca_revoke(other, vc_host_get_cert(good), &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_USAGE);
}

static void
test_key_mismatch(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *signed_path = fx_path(fx, "signed.pem");
	g_autofree char *key2 = fx_path(fx, "host2/host.key");
	g_autofree char *csr2 = fx_path(fx, "host2/host.csr");
	g_autofree char *ca2 = fx_path(fx, "host2/hostca.pem");
	const char *attrs[] = {"site=eu-west", NULL};

	/* another host's CSR, signed by the right CA */
	g_assert_true(
	    vc_host_enroll(key2, csr2, "h2.example.com", attrs, fx->hostca, ca2, FALSE, &error));
	g_assert_no_error(error);
	vc_test_host_ca_sign(fx->ca_dir, csr2, vc_test_now_s() - 60, vc_test_now_s() + 86400,
			     signed_path);
	g_assert_false(vc_host_import(signed_path, fx->key, fx->hostca, fx->cert, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_CRYPTO);
	g_assert_nonnull(strstr(error->message, "does not match"));
	g_clear_error(&error);
	g_assert_null(vc_host_load_files(signed_path, fx->key, fx->hostca, NULL, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_CRYPTO);
	g_clear_error(&error);

	/* enrolling again without --force keeps the key */
	g_assert_false(vc_host_enroll(fx->key, fx->csr, "h1.example.com", attrs, fx->hostca,
				      fx->hostca, FALSE, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_EXISTS);
}

/* A CSR with an IP address SAN: the host CA signs only names and host
 * attributes. */
static void
test_sign_refuses_other_sans(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcHostCa) ca = vc_host_ca_load(fx->ca_dir, &error);
	g_autoptr(EVP_PKEY) key = vc_key_generate(VC_KEY_TYPE_EC_P256, &error);
	g_autoptr(X509_REQ) req = X509_REQ_new();
	g_autoptr(VcX509ExtStack) exts = sk_X509_EXTENSION_new_null();
	X509V3_CTX ctx;
	X509_EXTENSION *san;
	g_autoptr(X509) cert = NULL;
	g_autoptr(X509_REQ) bad_uri = X509_REQ_new();
	g_autoptr(VcX509ExtStack) exts2 = sk_X509_EXTENSION_new_null();

	X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
	san = X509V3_EXT_nconf_nid(NULL, &ctx, NID_subject_alt_name,
				   "DNS:h3.example.com,IP:192.0.2.1");
	g_assert_nonnull(san);
	sk_X509_EXTENSION_push(exts, san);
	g_assert_true(X509_REQ_set_pubkey(req, key));
	g_assert_true(X509_REQ_add_extensions(req, exts));
	g_assert_cmpint(X509_REQ_sign(req, key, EVP_sha256()), >, 0);
	cert = vc_host_ca_sign(ca, req, vc_test_now_s(), vc_test_now_s() + 3600, &error);
	g_assert_null(cert);
	g_assert_error(error, VC_ERROR, VC_ERROR_POLICY);
	g_clear_error(&error);

	san = X509V3_EXT_nconf_nid(NULL, &ctx, NID_subject_alt_name,
				   "DNS:h3.example.com,URI:https://evil.example/");
	sk_X509_EXTENSION_push(exts2, san);
	g_assert_true(X509_REQ_set_pubkey(bad_uri, key));
	g_assert_true(X509_REQ_add_extensions(bad_uri, exts2));
	g_assert_cmpint(X509_REQ_sign(bad_uri, key, EVP_sha256()), >, 0);
	g_assert_null(
	    vc_host_ca_sign(ca, bad_uri, vc_test_now_s(), vc_test_now_s() + 3600, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_POLICY);
}

#define XML_HEAD                                                                                   \
	"<domain type='kvm'><name>vm1</name><uuid>0b3e8f6e-2d0a-4c1b-9a5e-7c2f4d8e1a33</uuid>"
#define XML_META(x) "<metadata><vc:vm xmlns:vc='urn:virtcert:domain:1'>" x "</vc:vm></metadata>"

static gboolean
answer_allow(JsonNode *n, const char **ret_reason)
{
	JsonObject *o = json_node_get_object(n);
	*ret_reason = json_object_get_string_member(o, "reason");
	return json_object_get_boolean_member(o, "allow");
}

static void
test_placement_answer(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcHost) host = NULL;
	g_autoptr(VcPolicySet) set = vc_policy_set_new();
	g_autoptr(JsonNode) a1 = NULL;
	g_autoptr(JsonNode) a2 = NULL;
	g_autoptr(JsonNode) a3 = NULL;
	g_autoptr(JsonNode) a4 = NULL;
	g_autoptr(JsonNode) a5 = NULL;
	g_autofree char *ok_xml = NULL;
	const char *reason = NULL;
	static const char us_xml[] =
	    XML_HEAD XML_META("<vc:name>{name}.vms.example.com</vc:name><vc:placement>"
			      "<vc:require attr='site'>us-east|us-west</vc:require>"
			      "</vc:placement>") "</domain>";
	static const char plain_xml[] = XML_HEAD "</domain>";

	vc_test_host_ca_sign(fx->ca_dir, fx->csr, vc_test_now_s() - 60, vc_test_now_s() + 86400,
			     fx->cert);
	host = vc_host_load_files(fx->cert, fx->key, fx->hostca, fx->crl, &error);
	g_assert_no_error(error);
	ok_xml = g_strdup_printf(XML_HEAD XML_META("<vc:placement><vc:trust-ca>%s</vc:trust-ca>"
						   "<vc:require attr='site'>eu-west</vc:require>"
						   "</vc:placement>") "</domain>",
				 vc_host_get_ca_fingerprint(host));

	a1 = vc_host_placement_answer(host, set, ok_xml, FALSE, 3600, &error);
	g_assert_no_error(error);
	g_assert_true(answer_allow(a1, &reason));

	a2 = vc_host_placement_answer(host, set, us_xml, FALSE, 3600, &error);
	g_assert_no_error(error);
	g_assert_false(answer_allow(a2, &reason));
	g_assert_cmpstr(reason, ==, "host attribute site=eu-west not in {us-east, us-west}");

	/* no host certificate at all */
	a3 = vc_host_placement_answer(NULL, set, ok_xml, FALSE, 3600, &error);
	g_assert_no_error(error);
	g_assert_false(answer_allow(a3, &reason));
	g_assert_cmpstr(reason, ==, "this host has no host certificate");

	/* a VM nobody set a policy for goes anywhere */
	a4 = vc_host_placement_answer(NULL, set, plain_xml, FALSE, 3600, &error);
	g_assert_no_error(error);
	g_assert_true(answer_allow(a4, &reason));

	/* garbage is an error, never an answer */
	g_assert_null(vc_host_placement_answer(host, set, "<domain><nope", FALSE, 3600, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_clear_error(&error);

	/* an expired host certificate fails a restricted VM */
	g_clear_pointer(&host, vc_host_free);
	vc_test_host_ca_sign(fx->ca_dir, fx->csr, vc_test_now_s() - 2 * 86400,
			     vc_test_now_s() - 86400, fx->cert);
	host = vc_host_load_files(fx->cert, fx->key, fx->hostca, NULL, &error);
	a5 = vc_host_placement_answer(host, set, ok_xml, FALSE, 3600, &error);
	g_assert_no_error(error);
	g_assert_false(answer_allow(a5, &reason));
	g_assert_nonnull(strstr(reason, "expired"));
}

static void
assert_mode(const char *root, const char *rel, guint mode)
{
	g_autofree char *p = g_build_filename(root, rel, NULL);
	GStatBuf st;

	g_assert_cmpint(g_stat(p, &st), ==, 0);
	g_assert_cmpuint(st.st_mode & 0777, ==, mode);
}

static void
test_install_libvirt_tls(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcHost) host = NULL;
	g_autoptr(GPtrArray) written = NULL;
	g_autofree char *root = fx_path(fx, "root");
	g_autofree char *server_key = g_build_filename(root, "etc/pki/qemu/server-key.pem", NULL);
	g_autofree char *key_pem = NULL;
	g_autoptr(EVP_PKEY) installed = NULL;

	vc_test_host_ca_sign(fx->ca_dir, fx->csr, vc_test_now_s() - 60, vc_test_now_s() + 86400,
			     fx->cert);
	host = vc_host_load_files(fx->cert, fx->key, fx->hostca, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(vc_host_install_libvirt_tls(host, root, NULL, FALSE, &written, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(written->len, ==, 10);
	assert_mode(root, "etc/pki/CA/cacert.pem", 0644);
	assert_mode(root, "etc/pki/libvirt/servercert.pem", 0644);
	assert_mode(root, "etc/pki/libvirt/clientcert.pem", 0644);
	assert_mode(root, "etc/pki/libvirt/private/serverkey.pem", 0600);
	assert_mode(root, "etc/pki/libvirt/private/clientkey.pem", 0600);
	assert_mode(root, "etc/pki/qemu/ca-cert.pem", 0644);
	assert_mode(root, "etc/pki/qemu/server-cert.pem", 0644);
	assert_mode(root, "etc/pki/qemu/client-cert.pem", 0644);
	assert_mode(root, "etc/pki/qemu/server-key.pem", 0640);
	assert_mode(root, "etc/pki/qemu/client-key.pem", 0640);
	/* the installed key is the host key */
	installed = vc_key_load(server_key, &error);
	g_assert_no_error(error);
	g_assert_cmpint(X509_check_private_key(vc_host_get_cert(host), installed), ==, 1);

	/* again: same contents, nothing to refuse */
	g_clear_pointer(&written, g_ptr_array_unref);
	g_assert_true(vc_host_install_libvirt_tls(host, root, NULL, FALSE, &written, &error));
	g_assert_no_error(error);
	/* someone else's files are not replaced without force */
	g_assert_true(g_file_set_contents(server_key, "other\n", -1, NULL));
	g_assert_false(vc_host_install_libvirt_tls(host, root, NULL, FALSE, NULL, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_EXISTS);
	g_assert_true(g_file_get_contents(server_key, &key_pem, NULL, NULL));
	g_assert_cmpstr(key_pem, ==, "other\n");
	g_clear_error(&error);
	g_assert_true(vc_host_install_libvirt_tls(host, root, NULL, TRUE, NULL, &error));
	g_assert_no_error(error);
}

/* libvirt's files flat in a pkipath= directory, QEMU's below the root */
static void
test_install_libvirt_pkipath(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcHost) host = NULL;
	g_autoptr(GPtrArray) written = NULL;
	g_autofree char *root = fx_path(fx, "root");
	g_autofree char *pki = fx_path(fx, "pki");
	g_autofree char *client_key = g_build_filename(pki, "clientkey.pem", NULL);
	g_autofree char *system_ca = g_build_filename(root, "etc/pki/CA/cacert.pem", NULL);
	g_autoptr(EVP_PKEY) installed = NULL;
	g_autoptr(VcHostCa) ca = NULL;
	g_autoptr(X509_CRL) crl = NULL;
	g_autofree char *crl_pem = NULL;
	VcHostTlsOptions opts = {.root = root, .pkipath = pki};

	vc_test_host_ca_sign(fx->ca_dir, fx->csr, vc_test_now_s() - 60, vc_test_now_s() + 86400,
			     fx->cert);
	ca = vc_host_ca_load(fx->ca_dir, &error);
	g_assert_no_error(error);
	crl = vc_host_ca_make_crl(ca, 86400, &error);
	g_assert_no_error(error);
	crl_pem = vc_crl_to_pem(crl, &error);
	g_assert_true(vc_file_write_atomic(fx->crl, crl_pem, strlen(crl_pem), 0644, &error));
	host = vc_host_load_files(fx->cert, fx->key, fx->hostca, fx->crl, &error);
	g_assert_no_error(error);
	g_assert_true(vc_host_install_libvirt_tls_full(host, &opts, &written, &error));
	g_assert_no_error(error);
	/* 6 of libvirt's (the CRL included), 6 of QEMU's */
	g_assert_cmpuint(written->len, ==, 12);
	assert_mode(pki, "cacert.pem", 0644);
	assert_mode(pki, "cacrl.pem", 0644);
	assert_mode(pki, "servercert.pem", 0644);
	assert_mode(pki, "clientcert.pem", 0644);
	assert_mode(pki, "serverkey.pem", 0600);
	assert_mode(pki, "clientkey.pem", 0600);
	assert_mode(root, "etc/pki/qemu/ca-crl.pem", 0644);
	assert_mode(root, "etc/pki/qemu/client-key.pem", 0640);
	g_assert_false(g_file_test(system_ca, G_FILE_TEST_EXISTS));
	installed = vc_key_load(client_key, &error);
	g_assert_no_error(error);
	g_assert_cmpint(X509_check_private_key(vc_host_get_cert(host), installed), ==, 1);

	/* an owner that does not exist: nothing written */
	opts.owner = "no-such-user-virtcert";
	g_assert_false(vc_host_install_libvirt_tls_full(host, &opts, NULL, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
}

/* A peer's certificate as a handshake presents it: no key, this host's
 * trust settings; revocation and a foreign CA are caught as for a file. */
static void
test_new_from_certs(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *other_dir = fx_path(fx, "otherca");
	g_autofree char *other_signed = fx_path(fx, "other-signed.pem");
	g_autoptr(GPtrArray) certs = NULL;
	g_autoptr(GPtrArray) other_certs = NULL;
	g_autoptr(VcHost) peer = NULL;
	g_autoptr(VcHost) rogue = NULL;
	g_autoptr(VcHost) revoked = NULL;
	g_autoptr(VcHostIdentity) id = NULL;
	g_autoptr(VcHostCa) ca = NULL;
	g_autoptr(X509_CRL) crl = NULL;
	g_autofree char *pem = NULL;
	GPtrArray *site;

	vc_test_host_ca_sign(fx->ca_dir, fx->csr, vc_test_now_s() - 60, vc_test_now_s() + 86400,
			     fx->cert);
	certs = vc_cert_load_pem_file(fx->cert, &error);
	g_assert_no_error(error);
	peer = vc_host_new_from_certs(certs, fx->hostca, fx->crl, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(vc_host_get_fqdn(peer), ==, "h1.example.com");
	g_assert_true(vc_host_check(peer, &error));
	g_assert_no_error(error);
	id = vc_host_get_identity(peer, &error);
	g_assert_no_error(error);
	site = vc_host_identity_get_values(id, "site");
	g_assert_nonnull(site);
	g_assert_cmpstr(g_ptr_array_index(site, 0), ==, "eu-west");
	g_assert_cmpuint(id->ca_fingerprints->len, ==, 1);
	/* a client that sends its chain (leaf, then its CA): the extra
	 * certificates are the host's, lent to each verification, never freed
	 * by it (a use after free memcheck found under the peer API) */
	{
		g_autoptr(GPtrArray) chain = vc_cert_load_pem_file(fx->cert, &error);
		g_autoptr(GPtrArray) ca_certs = vc_cert_load_pem_file(fx->hostca, &error);
		g_autoptr(VcHost) chained = NULL;
		g_assert_no_error(error);
		g_ptr_array_add(chain, X509_dup(g_ptr_array_index(ca_certs, 0)));
		chained = vc_host_new_from_certs(chain, fx->hostca, fx->crl, &error);
		g_assert_no_error(error);
		for (int i = 0; i < 3; i++) {
			g_autoptr(VcHostIdentity) cid = NULL;
			g_assert_true(vc_host_check(chained, &error));
			g_assert_no_error(error);
			cid = vc_host_get_identity(chained, &error);
			g_assert_no_error(error);
		}
	}
	/* no key: it cannot become this host's TLS identity */
	g_assert_false(vc_host_install_libvirt_tls(peer, fx->dir, NULL, TRUE, NULL, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_USAGE);
	g_clear_error(&error);

	vc_test_host_ca_init(other_dir, "rogue host CA");
	vc_test_host_ca_sign(other_dir, fx->csr, vc_test_now_s() - 60, vc_test_now_s() + 86400,
			     other_signed);
	other_certs = vc_cert_load_pem_file(other_signed, &error);
	g_assert_no_error(error);
	rogue = vc_host_new_from_certs(other_certs, fx->hostca, NULL, &error);
	g_assert_no_error(error);
	g_assert_false(vc_host_check(rogue, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_CRYPTO);
	g_assert_nonnull(strstr(error->message, "rogue host CA"));
	g_clear_error(&error);

	ca = vc_host_ca_load(fx->ca_dir, &error);
	g_assert_no_error(error);
	g_assert_true(vc_host_ca_revoke(ca, g_ptr_array_index(certs, 0), &error));
	crl = vc_host_ca_make_crl(ca, 86400, &error);
	g_assert_no_error(error);
	pem = vc_crl_to_pem(crl, &error);
	g_assert_true(vc_file_write_atomic(fx->crl, pem, strlen(pem), 0644, &error));
	revoked = vc_host_new_from_certs(certs, fx->hostca, fx->crl, &error);
	g_assert_no_error(error);
	g_assert_false(vc_host_check(revoked, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_CRYPTO);
	g_assert_nonnull(strstr(error->message, "revoked"));
}

/* A host identity is a host certificate: not a CA, an EKU for its role,
 * one named host, well-formed attributes. Each refusal names the fault. */
static void
test_profile(Fixture *fx, gconstpointer data)
{
	static const struct {
		const char *what;
		const char *exts[9];
		VcHostRole role;
		const char *error; /* NULL: accepted */
	} cases[] = {
	    {"a proper host certificate",
	     {"basicConstraints", "critical,CA:FALSE", "extendedKeyUsage", "serverAuth,clientAuth",
	      "subjectAltName", "DNS:h1.example.com,URI:urn:virtcert:host:site=eu-west"},
	     VC_HOST_ROLE_BOTH,
	     NULL},
	    {"CA:TRUE",
	     {"basicConstraints", "critical,CA:TRUE", "extendedKeyUsage", "serverAuth,clientAuth",
	      "subjectAltName", "DNS:h1.example.com"},
	     VC_HOST_ROLE_CLIENT,
	     "CA:TRUE"},
	    {"no EKU",
	     {"basicConstraints", "critical,CA:FALSE", "subjectAltName", "DNS:h1.example.com"},
	     VC_HOST_ROLE_CLIENT,
	     "no extendedKeyUsage"},
	    {"server only, used as a client",
	     {"basicConstraints", "critical,CA:FALSE", "extendedKeyUsage", "serverAuth",
	      "subjectAltName", "DNS:h1.example.com"},
	     VC_HOST_ROLE_CLIENT,
	     "lacks clientAuth"},
	    {"client only, used as a server",
	     {"basicConstraints", "critical,CA:FALSE", "extendedKeyUsage", "clientAuth",
	      "subjectAltName", "DNS:h1.example.com"},
	     VC_HOST_ROLE_SERVER,
	     "lacks serverAuth"},
	    {"a wildcard",
	     {"basicConstraints", "critical,CA:FALSE", "extendedKeyUsage", "serverAuth,clientAuth",
	      "subjectAltName", "DNS:h1.example.com,DNS:*.example.com"},
	     VC_HOST_ROLE_CLIENT,
	     "never a wildcard"},
	    {"no dNSName",
	     {"basicConstraints", "critical,CA:FALSE", "extendedKeyUsage", "serverAuth,clientAuth",
	      "subjectAltName", "URI:urn:virtcert:host:site=eu-west"},
	     VC_HOST_ROLE_CLIENT,
	     "no dNSName"},
	};
	g_autofree char *out = fx_path(fx, "custom.pem");

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) certs = NULL;
		g_autoptr(VcHost) peer = NULL;

		g_test_message("%s", cases[i].what);
		vc_test_host_ca_sign_custom(fx->ca_dir, fx->csr, cases[i].exts, out);
		certs = vc_cert_load_pem_file(out, &error);
		g_assert_no_error(error);
		peer = vc_host_new_from_certs(certs, fx->hostca, NULL, &error);
		g_assert_no_error(error);
		/* it chains to the trusted host CA all the same */
		g_assert_true(vc_host_check(peer, &error));
		g_assert_no_error(error);
		if (cases[i].error == NULL) {
			g_assert_true(vc_host_check_profile(peer, cases[i].role, &error));
			g_assert_no_error(error);
			continue;
		}
		g_assert_false(vc_host_check_profile(peer, cases[i].role, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_CRYPTO);
		if (strstr(error->message, cases[i].error) == NULL)
			g_error("%s: \"%s\" lacks \"%s\"", cases[i].what, error->message,
				cases[i].error);
		/* nor would it be imported as this host's certificate */
		g_clear_error(&error);
		g_assert_false(vc_host_import(out, fx->key, fx->hostca, fx->cert, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_CRYPTO);
	}

	/* a malformed attribute is refused when the identity is read */
	{
		const char *exts[] = {"basicConstraints",
				      "critical,CA:FALSE",
				      "extendedKeyUsage",
				      "serverAuth,clientAuth",
				      "subjectAltName",
				      "DNS:h1.example.com,URI:urn:virtcert:host:Site=eu west",
				      NULL};
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) certs = NULL;
		g_autoptr(VcHost) peer = NULL;

		vc_test_host_ca_sign_custom(fx->ca_dir, fx->csr, exts, out);
		certs = vc_cert_load_pem_file(out, &error);
		g_assert_no_error(error);
		peer = vc_host_new_from_certs(certs, fx->hostca, NULL, &error);
		g_assert_no_error(error);
		g_assert_null(vc_host_get_identity(peer, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	}
}

/* Two "hosts" on one machine name themselves localhost; any other single
 * label is still no host name. */
static void
test_enroll_localhost(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *key = fx_path(fx, "lo/host.key");
	g_autofree char *csr = fx_path(fx, "lo/host.csr");
	g_autofree char *ca_out = fx_path(fx, "lo/hostca.pem");
	g_autofree char *cert = fx_path(fx, "lo/host.pem");
	g_autofree char *ca_pem = g_build_filename(fx->ca_dir, "ca.pem", NULL);
	g_autoptr(VcHost) host = NULL;

	g_assert_true(vc_host_enroll(key, csr, "localhost", NULL, ca_pem, ca_out, FALSE, &error));
	g_assert_no_error(error);
	vc_test_host_ca_sign(fx->ca_dir, csr, vc_test_now_s() - 60, vc_test_now_s() + 86400, cert);
	host = vc_host_load_files(cert, key, ca_out, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(vc_host_get_fqdn(host), ==, "localhost");
	g_assert_true(vc_host_check(host, &error));
	g_assert_no_error(error);

	g_assert_false(vc_host_enroll(key, csr, "myhost", NULL, ca_pem, ca_out, TRUE, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_NAME);
}

/* vc_file_read() as the host uses it: the CA bundle comes back whole, a
 * missing file is NOT_FOUND, and a bundle over the host's 1 MiB limit is
 * refused naming the file. */
static void
test_file_read(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *want = NULL;
	g_autofree char *got = NULL;
	g_autofree char *missing = fx_path(fx, "host/absent.pem");
	g_autofree char *big_path = fx_path(fx, "host/big-bundle.pem");
	g_autoptr(GString) big = NULL;
	g_autoptr(VcHost) host = NULL;
	gsize want_len = 0;
	gsize len = 0;

	g_assert_true(g_file_get_contents(fx->hostca, &want, &want_len, NULL));
	got = vc_file_read(fx->hostca, want_len, &len, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(len, ==, want_len);
	g_assert_cmpstr(got, ==, want);

	g_assert_null(vc_file_read(fx->hostca, want_len - 1, NULL, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_assert_nonnull(strstr(error->message, "larger than"));
	g_clear_error(&error);
	g_assert_null(vc_file_read(missing, G_MAXSIZE, NULL, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	g_clear_error(&error);

	vc_test_host_ca_sign(fx->ca_dir, fx->csr, vc_test_now_s() - 60, vc_test_now_s() + 3600,
			     fx->cert);
	big = g_string_new(want);
	while (big->len <= 1024 * 1024)
		g_string_append_c(big, '\n');
	g_assert_true(g_file_set_contents(big_path, big->str, (gssize)big->len, NULL));
	host = vc_host_load_files(fx->cert, fx->key, big_path, NULL, &error);
	g_assert_null(host);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_assert_nonnull(strstr(error->message, big_path));
	g_clear_error(&error);
	host = vc_host_load_files(fx->cert, fx->key, fx->hostca, NULL, &error);
	g_assert_no_error(error);
	g_assert_nonnull(host);
}

/* vc_host_ca_load_csr(): the enrolled host's request, and what is not one
 * named */
static void
test_load_csr(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(X509_REQ) req = vc_host_ca_load_csr(fx->csr, &error);
	g_autofree char *bad = fx_path(fx, "host/bad.csr");
	g_autofree char *want = g_strdup_printf("%s: not a PEM CSR", bad);
	g_autoptr(EVP_PKEY) pub = NULL;

	g_assert_no_error(error);
	g_assert_nonnull(req);
	pub = X509_REQ_get_pubkey(req);
	g_assert_cmpint(X509_REQ_verify(req, pub), ==, 1);

	g_assert_true(g_file_set_contents(bad, "not a CSR\n", -1, NULL));
	g_assert_null(vc_host_ca_load_csr(bad, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_assert_cmpstr(error->message, ==, want);
	g_clear_error(&error);
	g_assert_cmpint(g_unlink(bad), ==, 0);
	g_assert_null(vc_host_ca_load_csr(bad, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fx_setup, fn, fx_teardown)
	ADD("/host/enroll-sign-import-check", test_enroll_sign_import_check);
	ADD("/host/expired", test_expired);
	ADD("/host/revoked", test_revoked);
	ADD("/host/wrong-ca", test_wrong_ca);
	ADD("/host/key-mismatch", test_key_mismatch);
	ADD("/host/sign-refuses-other-sans", test_sign_refuses_other_sans);
	ADD("/host/placement-answer", test_placement_answer);
	ADD("/host/install-libvirt-tls", test_install_libvirt_tls);
	ADD("/host/install-libvirt-tls/pkipath", test_install_libvirt_pkipath);
	ADD("/host/new-from-certs", test_new_from_certs);
	ADD("/host/profile", test_profile);
	ADD("/host/enroll-localhost", test_enroll_localhost);
	ADD("/host/file-read", test_file_read);
	ADD("/host/load-csr", test_load_csr);
	return g_test_run();
}
