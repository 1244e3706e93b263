/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Signed placement (agent/ca/vc-placement-sig.c): what an owner signs
 * verifies, and every way it can go wrong is refused with its own reason. */
#include <string.h>

#include <glib/gstdio.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "vc-error.h"
#include "vc-placement-sig.h"
#include "vc-test-ca.h"

#define VM_UUID "6f1c3a52-9d41-4e07-8b2e-517ac09311e4"
#define OTHER_UUID "11111111-2222-4333-8444-555555555555"
#define FP "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"

typedef struct {
	char *dir;
	char *owner_ca_dir; /* the owner CA the hosts trust */
	char *other_ca_dir; /* an owner CA nobody trusts */
	char *owner_ca_pem;
	char *owner_key;
	char *owner_cert;
	char *stranger_key; /* an owner under the other CA */
	char *stranger_cert;
	char *expired_cert; /* owner_key, certificate expired */
} Fixture;

/* A key and a certificate for NAME from the CA in CA_DIR, valid [NB, NA]. */
static void
make_owner(Fixture *f, const char *ca_dir, const char *name, gint64 nb, gint64 na, char **ret_key,
	   char **ret_cert, const char *reuse_key)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *csr = g_strdup_printf("%s/%s.csr", f->dir, name);
	g_autofree char *ca_out = g_strdup_printf("%s/%s-ca.pem", f->dir, name);
	g_autofree char *fqdn = g_strdup_printf("%s.owners.example.com", name);
	g_autofree char *ca_pem = g_build_filename(ca_dir, "ca.pem", NULL);
	char *key =
	    reuse_key != NULL ? g_strdup(reuse_key) : g_strdup_printf("%s/%s.key", f->dir, name);

	if (reuse_key == NULL) {
		g_assert_true(vc_host_enroll(key, csr, fqdn, NULL, ca_pem, ca_out, FALSE, &error));
		g_assert_no_error(error);
	} else {
		/* a second certificate for the same key: a CSR from it */
		g_autoptr(EVP_PKEY) k = vc_key_load(key, &error);
		g_autoptr(X509_REQ) req = X509_REQ_new();
		g_autoptr(BIO) bio = BIO_new_file(csr, "w");
		GENERAL_NAMES *gens = GENERAL_NAMES_new();
		STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
		X509_EXTENSION *san;
		g_assert_nonnull(k);
		X509_REQ_set_pubkey(req, k);
		sk_GENERAL_NAME_push(gens, GENERAL_NAME_new());
		GENERAL_NAME_set0_value(sk_GENERAL_NAME_value(gens, 0), GEN_DNS,
					ASN1_IA5STRING_new());
		ASN1_STRING_set(sk_GENERAL_NAME_value(gens, 0)->d.dNSName, fqdn, -1);
		san = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
		sk_X509_EXTENSION_push(exts, san);
		X509_REQ_add_extensions(req, exts);
		X509_REQ_sign(req, k, EVP_sha256());
		PEM_write_bio_X509_REQ(bio, req);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
		GENERAL_NAMES_free(gens);
	}
	*ret_cert = g_strdup_printf("%s/%s.pem", f->dir, name);
	vc_test_host_ca_sign(ca_dir, csr, nb, na, *ret_cert);
	*ret_key = key;
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	gint64 now = vc_test_now_s();
	g_autofree char *unused = NULL;

	f->dir = vc_test_dir_make("vc-placement-sig-XXXXXX");
	f->owner_ca_dir = g_build_filename(f->dir, "owner-ca", NULL);
	f->other_ca_dir = g_build_filename(f->dir, "other-ca", NULL);
	vc_test_host_ca_init(f->owner_ca_dir, "Example owner CA");
	vc_test_host_ca_init(f->other_ca_dir, "Someone else's CA");
	f->owner_ca_pem = g_build_filename(f->owner_ca_dir, "ca.pem", NULL);
	make_owner(f, f->owner_ca_dir, "alice", now - 60, now + 86400, &f->owner_key,
		   &f->owner_cert, NULL);
	make_owner(f, f->other_ca_dir, "mallory", now - 60, now + 86400, &f->stranger_key,
		   &f->stranger_cert, NULL);
	make_owner(f, f->owner_ca_dir, "alice-old", now - 86400, now - 3600, &unused,
		   &f->expired_cert, f->owner_key);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	vc_test_dir_remove(f->dir);
	g_free(f->dir);
	g_free(f->owner_ca_dir);
	g_free(f->other_ca_dir);
	g_free(f->owner_ca_pem);
	g_free(f->owner_key);
	g_free(f->owner_cert);
	g_free(f->stranger_key);
	g_free(f->stranger_cert);
	g_free(f->expired_cert);
}

/* The placement of the tests: one CA, one rule. */
static VcSignedPlacement *
placement_new(void)
{
	VcSignedPlacement *sp = vc_signed_placement_new();

	sp->present = TRUE;
	sp->check_on_start = g_strdup("yes");
	g_ptr_array_add(sp->trust_cas, g_strdup(FP));
	g_ptr_array_add(sp->requires, g_strdup("site=eu-west|eu-central"));
	return sp;
}

/* Signs SP as the owner with KEY and CERT for VM, valid until NOT_AFTER,
 * and reads the element back through the domain XML parser, as a host
 * would see it in the metadata. */
static VcSignedPlacement *
sign_and_reparse(VcSignedPlacement *sp, const char *key_path, const char *cert_path, const char *vm,
		 gint64 not_after)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) key = vc_key_load(key_path, &error);
	g_autoptr(GPtrArray) certs = vc_cert_load_pem_file(cert_path, &error);
	g_autoptr(GBytes) canonical = NULL;
	g_autoptr(GBytes) der = NULL;
	g_autofree char *xml = NULL;
	VcSignedPlacement *back;

	g_assert_no_error(error);
	canonical = vc_signed_placement_canonical(sp, vm, not_after, &error);
	g_assert_no_error(error);
	der = vc_placement_sig_sign(key, g_ptr_array_index(certs, 0), NULL, canonical, &error);
	g_assert_no_error(error);
	xml = vc_signed_placement_to_xml(sp, vm, not_after, der);
	g_assert_nonnull(xml);
	back = vc_domain_placement_parse_document(xml, -1, NULL, &error);
	g_assert_no_error(error);
	g_assert_nonnull(back->sig_der);
	return back;
}

/* Verifies SP for VM with the owner CA (and CRL) and returns the error
 * message, or NULL when it verifies. */
static char *
verify(Fixture *f, const VcSignedPlacement *sp, const char *vm, const char *crl)
{
	g_autoptr(VcOwnerTrust) trust = vc_owner_trust_new(f->owner_ca_pem, crl);
	g_autoptr(GError) error = NULL;
	g_autofree char *signer = NULL;

	if (vc_placement_sig_verify(trust, sp, vm, 0, &signer, &error)) {
		g_assert_no_error(error);
		g_assert_nonnull(signer);
		return NULL;
	}
	g_assert_error(error, VC_ERROR, VC_ERROR_POLICY);
	return g_strdup(error->message);
}

static void
test_valid(Fixture *f, gconstpointer data)
{
	g_autoptr(VcSignedPlacement) sp = placement_new();
	g_autoptr(VcSignedPlacement) s =
	    sign_and_reparse(sp, f->owner_key, f->owner_cert, VM_UUID, vc_test_now_s() + 3600);
	g_autoptr(VcOwnerTrust) trust = vc_owner_trust_new(f->owner_ca_pem, NULL);
	g_autoptr(GError) error = NULL;
	g_autofree char *signer = NULL;

	g_assert_true(vc_placement_sig_verify(trust, s, VM_UUID, 0, &signer, &error));
	g_assert_no_error(error);
	g_assert_nonnull(strstr(signer, "alice.owners.example.com"));
	/* the UUID as libvirt may spell it: upper case */
	{
		g_autofree char *upper = g_ascii_strup(VM_UUID, -1);
		g_assert_null(verify(f, s, upper, NULL));
	}
	/* a second check with the same trust (answered from what was verified)
	 * still binds the VM and the expiry */
	g_assert_true(vc_placement_sig_verify(trust, s, VM_UUID, 0, NULL, &error));
	g_assert_false(vc_placement_sig_verify(trust, s, OTHER_UUID, 0, NULL, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_POLICY);
	g_clear_error(&error);
	g_assert_false(
	    vc_placement_sig_verify(trust, s, VM_UUID, vc_test_now_s() + 7200, NULL, &error));
	g_assert_nonnull(strstr(error->message, "expired"));
	g_clear_error(&error);
	/* without an expiry */
	{
		g_autoptr(VcSignedPlacement) s2 =
		    sign_and_reparse(sp, f->owner_key, f->owner_cert, VM_UUID, 0);
		g_assert_null(s2->sig_not_after);
		g_assert_null(verify(f, s2, VM_UUID, NULL));
	}
}

static void
test_unsigned(Fixture *f, gconstpointer data)
{
	g_autoptr(VcSignedPlacement) sp = placement_new();
	g_autofree char *msg = verify(f, sp, VM_UUID, NULL);

	g_assert_cmpstr(msg, ==, "the placement is not signed");
}

static void
test_wrong_owner_ca(Fixture *f, gconstpointer data)
{
	g_autoptr(VcSignedPlacement) sp = placement_new();
	g_autoptr(VcSignedPlacement) s =
	    sign_and_reparse(sp, f->stranger_key, f->stranger_cert, VM_UUID, 0);
	g_autofree char *msg = verify(f, s, VM_UUID, NULL);

	g_assert_nonnull(msg);
	g_assert_nonnull(strstr(msg, "mallory.owners.example.com"));
	g_assert_nonnull(strstr(msg, "which no trusted owner CA issued"));
}

static void
test_wrong_uuid(Fixture *f, gconstpointer data)
{
	g_autoptr(VcSignedPlacement) sp = placement_new();
	g_autoptr(VcSignedPlacement) s =
	    sign_and_reparse(sp, f->owner_key, f->owner_cert, OTHER_UUID, 0);
	g_autofree char *msg = verify(f, s, VM_UUID, NULL);

	g_assert_cmpstr(msg, ==,
			"the placement is signed for VM " OTHER_UUID ", not for this VM (" VM_UUID
			")");
	/* and rewriting vm= to this VM breaks the signature */
	g_free(s->sig_vm);
	s->sig_vm = g_strdup(VM_UUID);
	g_free(msg);
	msg = verify(f, s, VM_UUID, NULL);
	g_assert_cmpstr(msg, ==,
			"the placement does not match its signature (altered after signing)");
}

static void
test_expired(Fixture *f, gconstpointer data)
{
	gint64 now = vc_test_now_s();
	g_autoptr(VcSignedPlacement) sp = placement_new();
	g_autoptr(VcSignedPlacement) s =
	    sign_and_reparse(sp, f->owner_key, f->owner_cert, VM_UUID, now - 10);
	g_autoptr(VcSignedPlacement) old =
	    sign_and_reparse(sp, f->owner_key, f->expired_cert, VM_UUID, 0);
	g_autofree char *msg = verify(f, s, VM_UUID, NULL);
	g_autofree char *msg2 = NULL;

	g_assert_nonnull(msg);
	g_assert_true(g_str_has_prefix(msg, "the placement signature expired on "));
	g_assert_nonnull(strstr(msg, s->sig_not_after));
	/* the owner certificate itself expired */
	msg2 = verify(f, old, VM_UUID, NULL);
	g_assert_nonnull(msg2);
	g_assert_nonnull(strstr(msg2, "owner certificate that signed the placement"));
	g_assert_nonnull(strstr(msg2, "expired on"));
}

static void
test_tampered_signature(Fixture *f, gconstpointer data)
{
	g_autoptr(VcSignedPlacement) sp = placement_new();
	g_autoptr(VcSignedPlacement) s =
	    sign_and_reparse(sp, f->owner_key, f->owner_cert, VM_UUID, 0);
	gsize len = 0;
	const guint8 *der = g_bytes_get_data(s->sig_der, &len);
	guint refused = 0;

	/* every byte, one bit at a time: none verifies (what OpenSSL does not
	 * judge itself, vc-placement-sig.c checks) */
	for (gsize i = 0; i < len; i++) {
		g_autofree guint8 *copy = g_memdup2(der, len);
		g_autoptr(VcSignedPlacement) t = placement_new();
		g_autofree char *msg = NULL;
		copy[i] ^= 0x01;
		t->sig_vm = g_strdup(s->sig_vm);
		t->sig_der = g_bytes_new(copy, len);
		msg = verify(f, t, VM_UUID, NULL);
		if (msg == NULL)
			g_error("flipping byte %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT
				" (0x%02x) still verifies",
				i, len, der[i]);
		refused++;
	}
	g_assert_cmpuint(refused, ==, len);
}

static void
test_tampered_rule(Fixture *f, gconstpointer data)
{
	g_autoptr(VcSignedPlacement) sp = placement_new();
	g_autoptr(VcSignedPlacement) s =
	    sign_and_reparse(sp, f->owner_key, f->owner_cert, VM_UUID, 0);
	const char *alter[] = {"site=eu-west|us-east", "site=eu-west|eu-centrab", "tier=gold"};

	for (gsize i = 0; i < G_N_ELEMENTS(alter); i++) {
		g_autofree char *msg = NULL;
		g_free(g_ptr_array_index(s->requires, 0));
		g_ptr_array_index(s->requires, 0) = g_strdup(alter[i]);
		msg = verify(f, s, VM_UUID, NULL);
		g_assert_cmpstr(
		    msg, ==, "the placement does not match its signature (altered after signing)");
	}
	/* a rule removed, a trusted CA removed, check-on-start turned off */
	g_free(g_ptr_array_index(s->requires, 0));
	g_ptr_array_index(s->requires, 0) = g_strdup("site=eu-west|eu-central");
	g_assert_null(verify(f, s, VM_UUID, NULL));
	g_free(s->check_on_start);
	s->check_on_start = g_strdup("no");
	{
		g_autofree char *msg = verify(f, s, VM_UUID, NULL);
		g_assert_nonnull(msg);
	}
	g_free(s->check_on_start);
	s->check_on_start = g_strdup("yes");
	g_ptr_array_set_size(s->trust_cas, 0);
	{
		g_autofree char *msg = verify(f, s, VM_UUID, NULL);
		g_assert_nonnull(msg);
	}
}

static void
test_revoked_owner(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcSignedPlacement) sp = placement_new();
	g_autoptr(VcSignedPlacement) s =
	    sign_and_reparse(sp, f->owner_key, f->owner_cert, VM_UUID, 0);
	g_autofree char *crl_path = g_build_filename(f->dir, "owner.crl", NULL);
	g_autoptr(VcHostCa) ca = vc_host_ca_load(f->owner_ca_dir, &error);
	g_autoptr(GPtrArray) certs = vc_cert_load_pem_file(f->owner_cert, &error);
	g_autoptr(VcOwnerTrust) trust = vc_owner_trust_new(f->owner_ca_pem, crl_path);
	g_autofree char *msg = NULL;
	X509_CRL *crl;
	char *pem;

	g_assert_no_error(error);
	/* a CRL that revokes nothing yet: valid */
	crl = vc_host_ca_make_crl(ca, 86400, &error);
	g_assert_no_error(error);
	pem = vc_crl_to_pem(crl, &error);
	g_assert_true(vc_file_write_atomic(crl_path, pem, strlen(pem), 0644, &error));
	g_free(pem);
	X509_CRL_free(crl);
	g_assert_true(vc_placement_sig_verify(trust, s, VM_UUID, 0, NULL, &error));
	g_assert_no_error(error);

	/* revoked: the same VcOwnerTrust sees the new CRL at its next check */
	g_assert_true(vc_host_ca_revoke(ca, g_ptr_array_index(certs, 0), &error));
	crl = vc_host_ca_make_crl(ca, 86400, &error);
	g_assert_no_error(error);
	pem = vc_crl_to_pem(crl, &error);
	g_assert_true(vc_file_write_atomic(crl_path, pem, strlen(pem), 0644, &error));
	g_free(pem);
	X509_CRL_free(crl);
	g_assert_false(vc_placement_sig_verify(trust, s, VM_UUID, 0, NULL, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_POLICY);
	g_assert_nonnull(strstr(error->message, "is revoked by its owner CA"));
	g_clear_error(&error);

	/* one that is not a CRL (PEM or DER) fails closed, named */
	g_assert_true(vc_file_write_atomic(crl_path, "not a CRL\n", 10, 0644, &error));
	g_assert_false(vc_placement_sig_verify(trust, s, VM_UUID, 0, NULL, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	msg = g_strdup_printf("[placement] owner-crl: owner CRL %s: not a CRL (PEM or DER)",
			      crl_path);
	g_assert_cmpstr(error->message, ==, msg);
	g_clear_error(&error);

	/* a configured CRL that goes missing fails closed */
	g_assert_cmpint(g_unlink(crl_path), ==, 0);
	g_assert_false(vc_placement_sig_verify(trust, s, VM_UUID, 0, NULL, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	g_assert_nonnull(strstr(error->message, "owner-crl"));
}

static void
test_check(Fixture *f, gconstpointer data)
{
	g_autoptr(VcSignedPlacement) sp = placement_new();
	g_autoptr(VcOwnerTrust) trust = vc_owner_trust_new(f->owner_ca_pem, NULL);
	VcDomainInfo info = {.name = (char *)"web-1", .uuid = (char *)VM_UUID};
	char *reason = NULL;

	/* no placement at all, unsigned placement: refused only when required */
	g_assert_true(vc_placement_sig_check(trust, FALSE, &info, 0, &reason));
	g_free(reason);
	g_assert_false(vc_placement_sig_check(trust, TRUE, &info, 0, &reason));
	g_assert_nonnull(strstr(reason, "require-signed=yes"));
	g_free(reason);
	info.placement = sp;
	g_assert_false(vc_placement_sig_check(trust, TRUE, &info, 0, NULL));
	/* signed: allowed either way; altered: refused either way */
	info.placement = sign_and_reparse(sp, f->owner_key, f->owner_cert, VM_UUID, 0);
	g_assert_true(vc_placement_sig_check(trust, TRUE, &info, 0, &reason));
	g_assert_nonnull(strstr(reason, "signed by"));
	g_free(reason);
	g_ptr_array_set_size(info.placement->requires, 0);
	g_assert_false(vc_placement_sig_check(trust, FALSE, &info, 0, &reason));
	g_assert_true(g_str_has_prefix(reason, "signed placement refused: "));
	g_free(reason);
	vc_signed_placement_free(info.placement);
}

static void
test_sign_refuses(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) key = vc_key_load(f->stranger_key, &error);
	g_autoptr(GPtrArray) certs = vc_cert_load_pem_file(f->owner_cert, &error);
	g_autoptr(GPtrArray) ca = vc_cert_load_pem_file(f->owner_ca_pem, &error);
	g_autoptr(GBytes) content = g_bytes_new_static("x\n", 2);
	g_autoptr(GBytes) der = NULL;

	/* another's key */
	der = vc_placement_sig_sign(key, g_ptr_array_index(certs, 0), NULL, content, &error);
	g_assert_null(der);
	g_assert_error(error, VC_ERROR, VC_ERROR_CRYPTO);
	g_clear_error(&error);
	/* the owner CA as owner: its certificate is not an owner's */
	{
		g_autofree char *ca_key = g_build_filename(f->owner_ca_dir, "ca.key", NULL);
		g_autoptr(EVP_PKEY) k = vc_key_load(ca_key, &error);
		g_assert_no_error(error);
		der = vc_placement_sig_sign(k, g_ptr_array_index(ca, 0), NULL, content, &error);
		g_assert_null(der);
		g_assert_error(error, VC_ERROR, VC_ERROR_POLICY);
	}
}

static void
test_owner_ca_file(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcOwnerTrust) leaf = vc_owner_trust_new(f->owner_cert, NULL);
	g_autofree char *missing = g_build_filename(f->dir, "nope.pem", NULL);
	g_autoptr(VcOwnerTrust) none = vc_owner_trust_new(missing, NULL);

	g_assert_false(vc_owner_trust_refresh(leaf, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_assert_nonnull(strstr(error->message, "not a CA certificate"));
	g_clear_error(&error);
	g_assert_false(vc_owner_trust_refresh(none, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
	ADD("/placement-sig/valid", test_valid);
	ADD("/placement-sig/unsigned", test_unsigned);
	ADD("/placement-sig/wrong-owner-ca", test_wrong_owner_ca);
	ADD("/placement-sig/wrong-uuid", test_wrong_uuid);
	ADD("/placement-sig/expired", test_expired);
	ADD("/placement-sig/tampered-signature", test_tampered_signature);
	ADD("/placement-sig/tampered-rule", test_tampered_rule);
	ADD("/placement-sig/revoked-owner", test_revoked_owner);
	ADD("/placement-sig/check", test_check);
	ADD("/placement-sig/sign-refuses", test_sign_refuses);
	ADD("/placement-sig/owner-ca-file", test_owner_ca_file);
	return g_test_run();
}
