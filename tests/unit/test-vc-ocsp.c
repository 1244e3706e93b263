/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>
#include <sys/stat.h>

#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "vc-ca.h"
#include "vc-error.h"
#include "vc-issuer.h"
#include "vc-ocsp.h"
#include "vc-store.h"
#include "vc-test-ca.h"

/* The OCSP responder against a real CA and store: requests made and
 * answers checked with OpenSSL's client side (OCSP_basic_verify with the
 * root as the only anchor, OCSP_resp_find_status, OCSP_check_nonce). */

#define UUID_A "1b4e28ba-2fa1-11d2-883f-0016d3cca427"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(OCSP_CERTID, OCSP_CERTID_free)

typedef struct {
	VcTestCa *tca;
	VcConfig *config;
	VcStore *store;
	VcIssuer *issuer;
	VcOcspResponder *ocsp;
	char *ocsp_dir;
} Fixture;

static VcOcspResponder *
fx_responder(Fixture *fx, gboolean with_ca, gint64 lifetime)
{
	g_autoptr(GError) error = NULL;
	VcOcspOptions opts = {
	    .sign_with_ca = with_ca,
	    .validity_s = 3600,
	    .responder_lifetime_s = lifetime,
	    .dir = fx->ocsp_dir,
	};
	VcOcspResponder *r = vc_ocsp_responder_new(fx->tca->ca, fx->store, &opts, &error);

	g_assert_no_error(error);
	g_assert_nonnull(r);
	return r;
}

static void
fx_setup(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *db = NULL;

	fx->tca = vc_test_ca_new("vc-ocsp", VC_KEY_TYPE_EC_P256);
	db = g_build_filename(fx->tca->dir, "virtcert.db", NULL);
	fx->store = vc_store_open(db, &error);
	g_assert_no_error(error);
	fx->config = vc_config_new_default();
	vc_config_set_state_dir(fx->config, fx->tca->dir);
	fx->issuer = vc_issuer_new(fx->config, fx->tca->ca, fx->store);
	fx->ocsp_dir = g_build_filename(fx->tca->dir, "ocsp", NULL);
	fx->ocsp = fx_responder(fx, data != NULL, 0);
}

static void
fx_teardown(Fixture *fx, gconstpointer data)
{
	g_clear_pointer(&fx->ocsp, vc_ocsp_responder_free);
	g_clear_pointer(&fx->issuer, vc_issuer_free);
	g_clear_pointer(&fx->store, vc_store_free);
	g_clear_pointer(&fx->config, vc_config_free);
	g_clear_pointer(&fx->tca, vc_test_ca_free);
	g_free(fx->ocsp_dir);
}

static VcIssued *
issue(Fixture *fx, const char *dns)
{
	g_autoptr(GError) error = NULL;
	const char *names[] = {dns, NULL};
	VcIssueRequest req = {
	    .vm_uuid = UUID_A,
	    .vm_name = "vm",
	    .dns_names = names,
	    .key_type = VC_KEY_TYPE_EC_P256,
	};
	VcIssued *issued = vc_issuer_issue(fx->issuer, &req, &error);

	g_assert_no_error(error);
	return issued;
}

static OCSP_CERTID *
cert_id(Fixture *fx, X509 *leaf, const EVP_MD *md)
{
	OCSP_CERTID *id = OCSP_cert_to_id(md, leaf, vc_ca_get_cert(fx->tca->ca));
	g_assert_nonnull(id);
	return id;
}

static OCSP_CERTID *
cert_id_serial(Fixture *fx, const char *hex)
{
	g_autoptr(BIGNUM) bn = NULL;
	g_autoptr(ASN1_INTEGER) sn = NULL;
	X509 *ca = vc_ca_get_cert(fx->tca->ca);
	OCSP_CERTID *id;

	g_assert_true(BN_hex2bn(&bn, hex) > 0);
	sn = BN_to_ASN1_INTEGER(bn, NULL);
	id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(ca), X509_get0_pubkey_bitstr(ca),
			      sn);
	g_assert_nonnull(id);
	return id;
}

/* DER of a request for IDS (each copied), with a nonce of NONCE_LEN octets
 * when NONCE_LEN > 0. */
static GBytes *
request_der(OCSP_CERTID **ids, guint n, int nonce_len, OCSP_REQUEST **ret_req)
{
	g_autoptr(OCSP_REQUEST) req = OCSP_REQUEST_new();
	unsigned char *der = NULL;
	int len;

	for (guint i = 0; i < n; i++)
		g_assert_nonnull(OCSP_request_add0_id(req, OCSP_CERTID_dup(ids[i])));
	if (nonce_len > 0)
		g_assert_cmpint(OCSP_request_add1_nonce(req, NULL, nonce_len), ==, 1);
	len = i2d_OCSP_REQUEST(req, &der);
	g_assert_cmpint(len, >, 0);
	if (ret_req != NULL)
		*ret_req = g_steal_pointer(&req);
	return g_bytes_new_take(der, (gsize)len);
}

static VcOcspAnswer *
ask(Fixture *fx, GBytes *req)
{
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(req, &len);
	VcOcspAnswer *answer = vc_ocsp_responder_answer(fx->ocsp, data, len);

	g_assert_nonnull(answer);
	g_assert_nonnull(answer->der);
	return answer;
}

/* The response status of ANSWER, and its basic response when successful,
 * verified against the root (the only trust anchor). */
static OCSP_BASICRESP *
parse_verified(Fixture *fx, VcOcspAnswer *answer, int *ret_status)
{
	gsize len = 0;
	const unsigned char *p = g_bytes_get_data(answer->der, &len);
	g_autoptr(OCSP_RESPONSE) resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	g_autoptr(X509_STORE) store = X509_STORE_new();
	g_autoptr(VcX509Stack) chain = sk_X509_new_null();
	OCSP_BASICRESP *bs;

	g_assert_nonnull(resp);
	*ret_status = OCSP_response_status(resp);
	if (*ret_status != OCSP_RESPONSE_STATUS_SUCCESSFUL)
		return NULL;
	bs = OCSP_response_get1_basic(resp);
	g_assert_nonnull(bs);
	X509_STORE_add_cert(store, vc_ca_get_root(fx->tca->ca));
	sk_X509_push(chain, vc_ca_get_cert(fx->tca->ca));
	/* the delegated certificate comes in the response; the intermediate
	 * is what the client knows as the issuer */
	g_assert_cmpint(OCSP_basic_verify(bs, chain, store, 0), ==, 1);
	return bs;
}

static int
find_status(OCSP_BASICRESP *bs, OCSP_CERTID *id, int *ret_reason, gint64 *ret_revoked)
{
	int status = -1, reason = -1;
	ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;

	g_assert_cmpint(OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd, &nextupd),
			==, 1);
	g_assert_cmpint(OCSP_check_validity(thisupd, nextupd, 60, -1), ==, 1);
	if (ret_reason != NULL)
		*ret_reason = reason;
	if (ret_revoked != NULL && rev != NULL) {
		int days = 0, secs = 0;
		g_assert_true(ASN1_TIME_diff(&days, &secs, NULL, rev));
		*ret_revoked = vc_test_now_s() + (gint64)days * 86400 + secs;
	}
	return status;
}

static void
test_good(Fixture *fx, gconstpointer data)
{
	g_autoptr(VcIssued) leaf = issue(fx, "a.vms.example.com");
	g_autoptr(OCSP_CERTID) id = cert_id(fx, leaf->cert, EVP_sha1());
	g_autoptr(GBytes) req = request_der(&id, 1, 0, NULL);
	g_autoptr(VcOcspAnswer) answer = ask(fx, req);
	g_autoptr(OCSP_BASICRESP) bs = NULL;
	int rstatus = -1;

	bs = parse_verified(fx, answer, &rstatus);
	g_assert_cmpint(rstatus, ==, OCSP_RESPONSE_STATUS_SUCCESSFUL);
	g_assert_cmpint(find_status(bs, id, NULL, NULL), ==, V_OCSP_CERTSTATUS_GOOD);
	g_assert_cmpint(answer->kind, ==, VC_OCSP_ANSWER_GOOD);
	/* cacheable: nextUpdate an hour ahead, a strong ETag */
	g_assert_cmpint(answer->next_update - vc_test_now_s(), >, 3500);
	g_assert_nonnull(answer->etag);
	g_assert_true(answer->etag[0] == '"');
	/* without a nonce asked, none is sent (RFC 5019 pre-signed answers) */
	{
		g_autoptr(OCSP_REQUEST) r = OCSP_REQUEST_new();
		g_assert_cmpint(OCSP_check_nonce(r, bs), ==, 2);
	}
	/* a SHA-256 CertID is answered as well, for the same certificate */
	{
		g_autoptr(OCSP_CERTID) id256 = cert_id(fx, leaf->cert, EVP_sha256());
		g_autoptr(GBytes) req256 = request_der(&id256, 1, 0, NULL);
		g_autoptr(VcOcspAnswer) a256 = ask(fx, req256);
		g_autoptr(OCSP_BASICRESP) bs256 = parse_verified(fx, a256, &rstatus);
		g_assert_cmpint(find_status(bs256, id256, NULL, NULL), ==, V_OCSP_CERTSTATUS_GOOD);
	}
	g_assert_cmpuint(vc_ocsp_responder_get_count(fx->ocsp, VC_OCSP_ANSWER_GOOD), ==, 2);
}

static void
test_revoked(Fixture *fx, gconstpointer data)
{
	g_autoptr(VcIssued) leaf = issue(fx, "r.vms.example.com");
	g_autoptr(OCSP_CERTID) id = cert_id(fx, leaf->cert, EVP_sha1());
	g_autoptr(GBytes) req = request_der(&id, 1, 0, NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(VcOcspAnswer) before = ask(fx, req);
	g_autoptr(VcOcspAnswer) again = ask(fx, req);
	g_autoptr(VcOcspAnswer) after = NULL;
	g_autoptr(OCSP_BASICRESP) bs = NULL;
	gint64 t0 = vc_test_now_s();
	gint64 revoked_at = 0;
	int rstatus = -1, reason = -1;

	g_assert_cmpint(before->kind, ==, VC_OCSP_ANSWER_GOOD);
	/* the second request is the cached answer, not a new signature */
	g_assert_true(before->der == again->der);

	g_assert_true(vc_issuer_revoke(fx->issuer, leaf->serial, VC_REASON_KEY_COMPROMISE, &error));
	g_assert_no_error(error);
	vc_ocsp_responder_forget(fx->ocsp, leaf->serial);
	after = ask(fx, req);
	g_assert_cmpint(after->kind, ==, VC_OCSP_ANSWER_REVOKED);
	bs = parse_verified(fx, after, &rstatus);
	g_assert_cmpint(find_status(bs, id, &reason, &revoked_at), ==, V_OCSP_CERTSTATUS_REVOKED);
	g_assert_cmpint(reason, ==, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
	g_assert_cmpint(revoked_at, >=, t0 - 2);
	g_assert_cmpint(revoked_at, <=, vc_test_now_s() + 2);
}

static void
test_unknown_and_abandoned(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(OCSP_CERTID) never = cert_id_serial(fx, "7f0102030405060708090a0b0c0d0e0f");
	g_autoptr(GBytes) req = request_der(&never, 1, 0, NULL);
	g_autoptr(VcOcspAnswer) answer = ask(fx, req);
	g_autoptr(OCSP_BASICRESP) bs = NULL;
	g_autofree char *pending = vc_serial_generate(&error);
	const char *names[] = {"p.vms.example.com", NULL};
	VcCertRecord rec = {
	    .ca_id = (char *)vc_ca_get_id(fx->tca->ca),
	    .vm_uuid = (char *)UUID_A,
	    .vm_name = (char *)"vm",
	    .dns_names = (GStrv)names,
	    .not_before = vc_test_now_s(),
	    .not_after = vc_test_now_s() + 3600,
	};
	int rstatus = -1, reason = 0;

	bs = parse_verified(fx, answer, &rstatus);
	g_assert_cmpint(find_status(bs, never, NULL, NULL), ==, V_OCSP_CERTSTATUS_UNKNOWN);
	g_assert_cmpint(answer->kind, ==, VC_OCSP_ANSWER_UNKNOWN);
	/* unknown is never cached, by us or HTTP caches */
	g_assert_cmpint(answer->next_update, ==, 0);
	g_assert_null(answer->etag);

	/* a PENDING serial is unknown; once abandoned it is revoked, as on the CRL */
	rec.serial = pending;
	g_assert_true(vc_store_cert_record_intent(fx->store, &rec, &error));
	g_assert_no_error(error);
	{
		g_autoptr(OCSP_CERTID) id = cert_id_serial(fx, pending);
		g_autoptr(GBytes) r = request_der(&id, 1, 0, NULL);
		g_autoptr(VcOcspAnswer) a = ask(fx, r);
		g_assert_cmpint(a->kind, ==, VC_OCSP_ANSWER_UNKNOWN);
	}
	g_assert_true(vc_store_cert_abandon(fx->store, pending, "test", &error));
	{
		g_autoptr(OCSP_CERTID) id = cert_id_serial(fx, pending);
		g_autoptr(GBytes) r = request_der(&id, 1, 0, NULL);
		g_autoptr(VcOcspAnswer) a = ask(fx, r);
		g_autoptr(OCSP_BASICRESP) b = parse_verified(fx, a, &rstatus);
		g_assert_cmpint(find_status(b, id, &reason, NULL), ==, V_OCSP_CERTSTATUS_REVOKED);
		/* unspecified is left out, as in the CRL */
		g_assert_cmpint(reason, ==, -1);
	}
}

static void
test_nonce(Fixture *fx, gconstpointer data)
{
	g_autoptr(VcIssued) leaf = issue(fx, "n.vms.example.com");
	g_autoptr(OCSP_CERTID) id = cert_id(fx, leaf->cert, EVP_sha1());
	g_autoptr(OCSP_REQUEST) r1 = NULL;
	g_autoptr(OCSP_REQUEST) r2 = NULL;
	g_autoptr(GBytes) req1 = request_der(&id, 1, 16, &r1);
	g_autoptr(GBytes) req2 = request_der(&id, 1, 32, &r2);
	g_autoptr(VcOcspAnswer) a1 = ask(fx, req1);
	g_autoptr(VcOcspAnswer) a2 = ask(fx, req2);
	g_autoptr(OCSP_BASICRESP) b1 = NULL;
	g_autoptr(OCSP_BASICRESP) b2 = NULL;
	int rstatus = -1;

	b1 = parse_verified(fx, a1, &rstatus);
	b2 = parse_verified(fx, a2, &rstatus);
	/* each answer echoes its own request's nonce (RFC 8954) */
	g_assert_cmpint(OCSP_check_nonce(r1, b1), ==, 1);
	g_assert_cmpint(OCSP_check_nonce(r2, b2), ==, 1);
	g_assert_cmpint(OCSP_check_nonce(r1, b2), <=, 0);
	g_assert_cmpint(find_status(b1, id, NULL, NULL), ==, V_OCSP_CERTSTATUS_GOOD);
	/* an answer with a nonce is for one client: not cacheable */
	g_assert_cmpint(a1->next_update, ==, 0);
	g_assert_null(a1->etag);
	/* RFC 8954 2.1: longer than 32 octets is malformedRequest */
	{
		g_autoptr(GBytes) big = request_der(&id, 1, 33, NULL);
		g_autoptr(VcOcspAnswer) a = ask(fx, big);
		g_assert_cmpint(a->kind, ==, VC_OCSP_ANSWER_MALFORMED);
	}
}

static void
test_multi(Fixture *fx, gconstpointer data)
{
	g_autoptr(VcIssued) l1 = issue(fx, "m1.vms.example.com");
	g_autoptr(VcIssued) l2 = issue(fx, "m2.vms.example.com");
	g_autoptr(GError) error = NULL;
	OCSP_CERTID *ids[2] = {cert_id(fx, l1->cert, EVP_sha1()),
			       cert_id(fx, l2->cert, EVP_sha1())};
	g_autoptr(GBytes) req = NULL;
	g_autoptr(VcOcspAnswer) answer = NULL;
	g_autoptr(OCSP_BASICRESP) bs = NULL;
	int rstatus = -1;

	g_assert_true(vc_issuer_revoke(fx->issuer, l2->serial, VC_REASON_SUPERSEDED, &error));
	req = request_der(ids, 2, 0, NULL);
	answer = ask(fx, req);
	bs = parse_verified(fx, answer, &rstatus);
	g_assert_cmpint(find_status(bs, ids[0], NULL, NULL), ==, V_OCSP_CERTSTATUS_GOOD);
	g_assert_cmpint(find_status(bs, ids[1], NULL, NULL), ==, V_OCSP_CERTSTATUS_REVOKED);
	OCSP_CERTID_free(ids[0]);
	OCSP_CERTID_free(ids[1]);
}

static void
assert_refused(Fixture *fx, const guint8 *data, gsize len, VcOcspAnswerKind kind, int status)
{
	g_autoptr(VcOcspAnswer) answer = vc_ocsp_responder_answer(fx->ocsp, data, len);
	const unsigned char *p;
	g_autoptr(OCSP_RESPONSE) resp = NULL;
	gsize n = 0;

	g_assert_cmpint(answer->kind, ==, kind);
	p = g_bytes_get_data(answer->der, &n);
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)n);
	g_assert_nonnull(resp);
	g_assert_cmpint(OCSP_response_status(resp), ==, status);
	g_assert_null(OCSP_response_get1_basic(resp));
	g_assert_cmpint(answer->next_update, ==, 0);
}

static void
test_malformed(Fixture *fx, gconstpointer data)
{
	g_autoptr(VcIssued) leaf = issue(fx, "x.vms.example.com");
	g_autoptr(OCSP_CERTID) id = cert_id(fx, leaf->cert, EVP_sha1());
	g_autoptr(GBytes) req = request_der(&id, 1, 0, NULL);
	gsize len = 0;
	const guint8 *der = g_bytes_get_data(req, &len);
	g_autofree guint8 *big = g_malloc0(1024 * 1024);
	g_autofree guint8 *trailing = g_malloc(len + 1);
	const guint8 garbage[] = "GET / HTTP/1.1\r\n\r\n";
	const int malformed = OCSP_RESPONSE_STATUS_MALFORMEDREQUEST;
	const int unauthorized = OCSP_RESPONSE_STATUS_UNAUTHORIZED;

	assert_refused(fx, NULL, 0, VC_OCSP_ANSWER_MALFORMED, malformed);
	for (gsize cut = 1; cut < len; cut += 7)
		assert_refused(fx, der, len - cut, VC_OCSP_ANSWER_MALFORMED, malformed);
	assert_refused(fx, garbage, sizeof(garbage) - 1, VC_OCSP_ANSWER_MALFORMED, malformed);
	memcpy(trailing, der, len);
	trailing[len] = 0;
	assert_refused(fx, trailing, len + 1, VC_OCSP_ANSWER_MALFORMED, malformed);
	/* 1 MiB: refused on its size, before parsing */
	memcpy(big, der, len);
	assert_refused(fx, big, 1024 * 1024, VC_OCSP_ANSWER_MALFORMED, malformed);
	/* a request for 1,000 certificates */
	{
		g_autoptr(GPtrArray) ids =
		    g_ptr_array_new_with_free_func((GDestroyNotify)OCSP_CERTID_free);
		g_autoptr(GBytes) many = NULL;
		gint64 t0 = g_get_monotonic_time();
		for (int i = 0; i < 1000; i++)
			g_ptr_array_add(ids, OCSP_CERTID_dup(id));
		/* about 70 kB: refused on its size before it is parsed (the
		 * count is checked just below, under the size cap) */
		many = request_der((OCSP_CERTID **)ids->pdata, 1000, 0, NULL);
		assert_refused(fx, g_bytes_get_data(many, NULL), g_bytes_get_size(many),
			       VC_OCSP_ANSWER_MALFORMED, malformed);
		g_assert_cmpint(g_get_monotonic_time() - t0, <, G_USEC_PER_SEC);
	}
	{
		OCSP_CERTID *ids[VC_OCSP_MAX_CERTS + 1];
		g_autoptr(GBytes) r = NULL;
		for (int i = 0; i <= VC_OCSP_MAX_CERTS; i++)
			ids[i] = id;
		r = request_der(ids, VC_OCSP_MAX_CERTS + 1, 0, NULL);
		assert_refused(fx, g_bytes_get_data(r, NULL), g_bytes_get_size(r),
			       VC_OCSP_ANSWER_MALFORMED, malformed);
	}
	/* a hash algorithm we do not answer for */
	{
		g_autoptr(OCSP_CERTID) id224 = cert_id(fx, leaf->cert, EVP_sha224());
		g_autoptr(GBytes) r = request_der(&id224, 1, 0, NULL);
		assert_refused(fx, g_bytes_get_data(r, NULL), g_bytes_get_size(r),
			       VC_OCSP_ANSWER_UNAUTHORIZED, unauthorized);
	}
	/* another CA's certificate */
	{
		g_autoptr(VcTestCa) other = vc_test_ca_new("vc-ocsp-other", VC_KEY_TYPE_EC_P256);
		g_autoptr(OCSP_CERTID) oid =
		    OCSP_cert_to_id(EVP_sha1(), leaf->cert, vc_ca_get_cert(other->ca));
		g_autoptr(GBytes) r = request_der(&oid, 1, 0, NULL);
		assert_refused(fx, g_bytes_get_data(r, NULL), g_bytes_get_size(r),
			       VC_OCSP_ANSWER_UNAUTHORIZED, unauthorized);
	}
	/* the real request still works after all that */
	{
		g_autoptr(VcOcspAnswer) a = ask(fx, req);
		g_assert_cmpint(a->kind, ==, VC_OCSP_ANSWER_GOOD);
	}
}

static void
test_responder_cert(Fixture *fx, gconstpointer data)
{
	X509 *signer = vc_ocsp_responder_get_signer(fx->ocsp);
	X509 *ca = vc_ca_get_cert(fx->tca->ca);
	g_autofree char *key_path = g_build_filename(fx->ocsp_dir, "responder.key", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(VcOcspResponder) again = NULL;
	g_autoptr(VcOcspResponder) short_lived = NULL;
	g_autofree char *serial = NULL;
	struct stat st;
	int days = 0, secs = 0;

	g_assert_nonnull(signer);
	serial = vc_cert_get_serial_hex(signer);
	/* RFC 6960 4.2.2.2: id-kp-OCSPSigning; 4.2.2.2.1: nocheck */
	g_assert_true(X509_get_extension_flags(signer) & EXFLAG_XKUSAGE);
	g_assert_true(X509_get_extended_key_usage(signer) & XKU_OCSP_SIGN);
	g_assert_false(X509_get_extended_key_usage(signer) & XKU_SSL_SERVER);
	g_assert_cmpint(X509_get_ext_by_NID(signer, NID_id_pkix_OCSP_noCheck, -1), >=, 0);
	/* issued by the CA, not a CA */
	g_assert_cmpint(X509_check_issued(ca, signer), ==, X509_V_OK);
	g_assert_cmpint(X509_verify(signer, X509_get0_pubkey(ca)), ==, 1);
	g_assert_cmpint(X509_check_ca(signer), ==, 0);
	g_assert_true(vc_ca_verify_leaf(fx->tca->ca, signer, 0, &error));
	g_assert_no_error(error);
	/* short-lived: two days by default */
	g_assert_true(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(signer)));
	g_assert_cmpint((gint64)days * 86400 + secs, >, 2 * 86400 - 60);
	g_assert_cmpint((gint64)days * 86400 + secs, <=, 2 * 86400);
	/* the key kept 0600 */
	g_assert_cmpint(stat(key_path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);

	/* a restart keeps the same certificate */
	again = fx_responder(fx, FALSE, 0);
	{
		g_autofree char *s2 = vc_cert_get_serial_hex(vc_ocsp_responder_get_signer(again));
		g_assert_cmpstr(s2, ==, serial);
	}
	/* past half its life it is renewed: by refresh(), and at start */
	short_lived = fx_responder(fx, FALSE, 2);
	{
		g_autofree char *s3 = NULL;
		g_autofree char *s4 = NULL;
		s3 = vc_cert_get_serial_hex(vc_ocsp_responder_get_signer(short_lived));
		g_assert_cmpstr(s3, !=, serial);
		g_assert_true(vc_ocsp_responder_refresh(short_lived, &error));
		g_assert_no_error(error);
		s4 = vc_cert_get_serial_hex(vc_ocsp_responder_get_signer(short_lived));
		g_assert_cmpstr(s4, !=, s3);
	}
}

static void
test_sign_with_ca(Fixture *fx, gconstpointer data)
{
	g_autoptr(VcIssued) leaf = issue(fx, "c.vms.example.com");
	g_autoptr(OCSP_CERTID) id = cert_id(fx, leaf->cert, EVP_sha1());
	g_autoptr(GBytes) req = request_der(&id, 1, 0, NULL);
	g_autoptr(VcOcspAnswer) answer = ask(fx, req);
	g_autoptr(OCSP_BASICRESP) bs = NULL;
	int rstatus = -1;

	g_assert_null(vc_ocsp_responder_get_signer(fx->ocsp));
	bs = parse_verified(fx, answer, &rstatus);
	g_assert_cmpint(find_status(bs, id, NULL, NULL), ==, V_OCSP_CERTSTATUS_GOOD);
	/* signed by the intermediate itself: no certificate inside */
	g_assert_cmpint(sk_X509_num(OCSP_resp_get0_certs(bs)), <=, 0);
	{
		X509 *signer = NULL;
		g_assert_cmpint(OCSP_resp_get0_signer(bs, &signer, NULL), ==, 0);
	}
}

static void
test_presign(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) leaves =
	    g_ptr_array_new_with_free_func((GDestroyNotify)vc_issued_free);
	guint steps = 0;

	for (int i = 0; i < 5; i++) {
		g_autofree char *dns = g_strdup_printf("p%d.vms.example.com", i);
		g_ptr_array_add(leaves, issue(fx, dns));
	}
	g_assert_true(vc_issuer_revoke(fx->issuer, ((VcIssued *)leaves->pdata[4])->serial,
				       VC_REASON_SUPERSEDED, &error));
	g_assert_cmpuint(vc_ocsp_responder_get_cache_size(fx->ocsp), ==, 0);
	while (vc_ocsp_responder_presign_step(fx->ocsp, 2, &error))
		steps++;
	g_assert_no_error(error);
	g_assert_cmpuint(steps, ==, 1);
	/* the four VALID ones */
	g_assert_cmpuint(vc_ocsp_responder_get_cache_size(fx->ocsp), ==, 4);
	/* a presigned answer is what a request gets: no new signature */
	{
		VcIssued *l0 = leaves->pdata[0];
		g_autoptr(OCSP_CERTID) id = cert_id(fx, l0->cert, EVP_sha1());
		g_autoptr(GBytes) req = request_der(&id, 1, 0, NULL);
		g_autoptr(VcOcspAnswer) a1 = ask(fx, req);
		g_autoptr(VcOcspAnswer) a2 = ask(fx, req);
		g_autoptr(OCSP_BASICRESP) bs = NULL;
		int rstatus = -1;
		g_assert_true(a1->der == a2->der);
		bs = parse_verified(fx, a1, &rstatus);
		g_assert_cmpint(find_status(bs, id, NULL, NULL), ==, V_OCSP_CERTSTATUS_GOOD);
	}
	/* refresh leaves fresh answers alone */
	g_assert_true(vc_ocsp_responder_refresh(fx->ocsp, &error));
	g_assert_cmpuint(vc_ocsp_responder_get_cache_size(fx->ocsp), ==, 4);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn, data) g_test_add("/ocsp/" path, Fixture, data, fx_setup, fn, fx_teardown)
	ADD("good", test_good, NULL);
	ADD("revoked", test_revoked, NULL);
	ADD("unknown-and-abandoned", test_unknown_and_abandoned, NULL);
	ADD("nonce", test_nonce, NULL);
	ADD("multi", test_multi, NULL);
	ADD("malformed", test_malformed, NULL);
	ADD("responder-cert", test_responder_cert, NULL);
	ADD("sign-with-ca", test_sign_with_ca, "ca");
	ADD("presign", test_presign, NULL);
	return g_test_run();
}
