/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Input: a DER OCSPRequest, as a stranger sends it to /ocsp. Answered by a
 * real responder (a CA and a store made once in a temporary directory,
 * with one valid and one revoked certificate); the input is answered as it
 * is, and again with every CertID's issuer hashes made this CA's, so that
 * the fuzzer's serials, hash algorithms, nonces and extensions reach the
 * lookup and signing paths, not only the "not our CA" refusal (serials 1
 * and 2 stand for the valid and the revoked certificate). */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>

#include "vc-issuer.h"
#include "vc-ocsp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *fuzz_dir;
static VcCa *fuzz_ca;
static VcStore *fuzz_store;
static VcOcspResponder *fuzz_ocsp;
/* serials 1 and 2 in an input stand for these two */
static ASN1_INTEGER *fuzz_good;
static ASN1_INTEGER *fuzz_revoked;

static void
fuzz_ocsp_cleanup(void)
{
	g_clear_pointer(&fuzz_ocsp, vc_ocsp_responder_free);
	g_clear_pointer(&fuzz_store, vc_store_free);
	g_clear_pointer(&fuzz_ca, vc_ca_free);
	g_clear_pointer(&fuzz_good, ASN1_INTEGER_free);
	g_clear_pointer(&fuzz_revoked, ASN1_INTEGER_free);
	if (fuzz_dir != NULL) {
		const char *argv[] = {"rm", "-rf", fuzz_dir, NULL};
		g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
			     NULL, NULL);
	}
	g_free(fuzz_dir);
}

static void
fuzz_ocsp_setup(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *ca_dir = NULL;
	g_autofree char *db = NULL;
	g_autoptr(VcConfig) config = vc_config_new_default();
	g_autoptr(VcIssuer) issuer = NULL;
	const char *permit[] = {"vms.example.com", NULL};
	const char *names[] = {"a.vms.example.com", NULL};
	const char *names2[] = {"b.vms.example.com", NULL};
	VcCaInitOptions ca_opts = {.permit = permit, .key_type = VC_KEY_TYPE_EC_P256};
	VcOcspOptions opts = {0};
	VcIssueRequest req = {.vm_uuid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
			      .vm_name = "a",
			      .dns_names = names,
			      .key_type = VC_KEY_TYPE_EC_P256};
	g_autoptr(VcIssued) good = NULL;
	g_autoptr(VcIssued) revoked = NULL;

	fuzz_dir = g_dir_make_tmp("vc-fuzz-ocsp-XXXXXX", &error);
	g_assert_no_error(error);
	atexit(fuzz_ocsp_cleanup);
	ca_dir = g_build_filename(fuzz_dir, "ca", NULL);
	db = g_build_filename(fuzz_dir, "virtcert.db", NULL);
	g_assert_true(vc_ca_init_self_signed(ca_dir, &ca_opts, &error));
	fuzz_ca = vc_ca_load(ca_dir, &error);
	g_assert_no_error(error);
	fuzz_store = vc_store_open(db, &error);
	g_assert_no_error(error);
	issuer = vc_issuer_new(config, fuzz_ca, fuzz_store);
	good = vc_issuer_issue(issuer, &req, &error);
	g_assert_no_error(error);
	req.dns_names = names2;
	revoked = vc_issuer_issue(issuer, &req, &error);
	g_assert_no_error(error);
	g_assert_true(vc_issuer_revoke(issuer, revoked->serial, 1, &error));
	fuzz_good = ASN1_INTEGER_dup(X509_get0_serialNumber(good->cert));
	fuzz_revoked = ASN1_INTEGER_dup(X509_get0_serialNumber(revoked->cert));
	fuzz_ocsp = vc_ocsp_responder_new(fuzz_ca, fuzz_store, &opts, &error);
	g_assert_no_error(error);
}

/* The contract: always a DER OCSPResponse; a successful one only for the
 * three statuses, an error one (no body) otherwise. */
static void
fuzz_ocsp_check(const guint8 *data, gsize len)
{
	g_autoptr(VcOcspAnswer) answer = vc_ocsp_responder_answer(fuzz_ocsp, data, len);
	gsize n = 0;
	const unsigned char *p = g_bytes_get_data(answer->der, &n);
	g_autoptr(OCSP_RESPONSE) resp = d2i_OCSP_RESPONSE(NULL, &p, (long)n);
	int status;

	g_assert_nonnull(resp);
	status = OCSP_response_status(resp);
	if (answer->kind == VC_OCSP_ANSWER_GOOD || answer->kind == VC_OCSP_ANSWER_REVOKED ||
	    answer->kind == VC_OCSP_ANSWER_UNKNOWN)
		g_assert_cmpint(status, ==, OCSP_RESPONSE_STATUS_SUCCESSFUL);
	else
		g_assert_cmpint(status, !=, OCSP_RESPONSE_STATUS_SUCCESSFUL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *p = data;
	g_autoptr(OCSP_REQUEST) req = NULL;
	X509 *ca_cert;
	unsigned char *der = NULL;
	int len;

	if (fuzz_ocsp == NULL)
		fuzz_ocsp_setup();
	fuzz_ocsp_check(data, size);

	req = size <= VC_OCSP_MAX_REQUEST_SIZE ? d2i_OCSP_REQUEST(NULL, &p, (long)size) : NULL;
	if (req == NULL) {
		ERR_clear_error();
		return 0;
	}
	/* the same request about this CA: each CertID rebuilt with our hashes
	 * (SHA-1 for algorithms we do not know), the fuzzer's serial kept */
	ca_cert = vc_ca_get_cert(fuzz_ca);
	for (int i = 0; i < OCSP_request_onereq_count(req) && i < 64; i++) {
		OCSP_CERTID *id = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i));
		ASN1_OBJECT *md_oid = NULL;
		ASN1_INTEGER *sn = NULL;
		const EVP_MD *md;
		OCSP_CERTID *mine;

		if (!OCSP_id_get0_info(NULL, &md_oid, NULL, &sn, id) || sn == NULL)
			continue;
		if (ASN1_INTEGER_get(sn) == 1)
			sn = fuzz_good;
		else if (ASN1_INTEGER_get(sn) == 2)
			sn = fuzz_revoked;
		md = EVP_get_digestbyobj(md_oid);
		if (md == NULL || EVP_MD_get_size(md) <= 0)
			md = EVP_sha1();
		mine = OCSP_cert_id_new(md, X509_get_subject_name(ca_cert),
					X509_get0_pubkey_bitstr(ca_cert), sn);
		if (mine == NULL)
			continue;
		/* a request of ours for the fuzzer's serial */
		{
			OCSP_REQUEST *fresh = OCSP_REQUEST_new();
			OCSP_request_add0_id(fresh, mine);
			/* the fuzzer's request extensions (nonce) come along */
			for (int e = 0; e < OCSP_REQUEST_get_ext_count(req) && e < 16; e++)
				OCSP_REQUEST_add_ext(fresh, OCSP_REQUEST_get_ext(req, e), -1);
			len = i2d_OCSP_REQUEST(fresh, &der);
			if (len > 0)
				fuzz_ocsp_check(der, (gsize)len);
			OPENSSL_free(der);
			der = NULL;
			OCSP_REQUEST_free(fresh);
		}
	}
	ERR_clear_error();
	return 0;
}
