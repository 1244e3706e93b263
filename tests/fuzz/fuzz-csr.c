/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A CSR is written by a guest (guest keygen: `openssl req` in the guest,
 * read back over the agent) or by a host's administrator (`virtcert host
 * enroll`, signed by the host CA): hostile input for the checks the issuer
 * applies before it signs: the PEM and DER parser, the self-signature (proof
 * of possession), the key type and size against the policy's (issue #18:
 * an RSA-2048 key for an rsa-3072 policy), and for a host CSR the names of
 * its subjectAltName.
 *
 * Input: a CSR, DER (the seeds: a mutation then hits the ASN.1, not the
 * base64) or PEM. DER input is armoured as PEM the way a guest would send
 * it; the raw bytes are also given to the PEM reader as they are. Each
 * accepted key is then checked against every policy key type and signed
 * into a leaf by a real CA, and the CSR by a real host CA (both made once in
 * a temporary directory, EC P-256 to keep the signing cheap). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "vc-ca.h"
#include "vc-guest.h"
#include "vc-host-ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static VcCa *ca;
static VcHostCa *host_ca;

static void
fuzz_setup(void)
{
	static const char *const permit[] = {"example.com", NULL};
	VcCaInitOptions opts = {.permit = permit, .key_type = VC_KEY_TYPE_EC_P256};
	VcHostCaInitOptions host_opts = {.key_type = VC_KEY_TYPE_EC_P256};
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_dir_make_tmp("vc-fuzz-csr-XXXXXX", &error);
	g_autofree char *ca_dir = NULL;
	g_autofree char *host_dir = NULL;

	g_assert_no_error(error);
	ca_dir = g_build_filename(dir, "ca", NULL);
	host_dir = g_build_filename(dir, "host-ca", NULL);
	if (!vc_ca_init_self_signed(ca_dir, &opts, &error) ||
	    (ca = vc_ca_load(ca_dir, &error)) == NULL ||
	    !vc_host_ca_init(host_dir, &host_opts, &error) ||
	    (host_ca = vc_host_ca_load(host_dir, &error)) == NULL)
		g_error("fuzz-csr: cannot make its CAs in %s: %s", dir, error->message);
	/* the keys stay in memory; nothing of the run is left behind */
	{
		g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
		g_assert(system(cmd) == 0);
	}
}

/* VC_FUZZ_VERBOSE=1: what became of an input (to check that seeds go deep) */
static void
report(const char *what, const GError *error)
{
	if (g_getenv("VC_FUZZ_VERBOSE") != NULL)
		g_printerr("%s: %s\n", what, error != NULL ? error->message : "ok");
}

/* The checks of guest keygen and the issuer on one CSR text. */
static void
fuzz_guest_csr(const char *pem, gsize len)
{
	static const char *const names[] = {"web-1.example.com", NULL};
	static const VcKeyType types[] = {VC_KEY_TYPE_EC_P256, VC_KEY_TYPE_ED25519,
					  VC_KEY_TYPE_RSA_3072};
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) key = vc_guest_csr_public_key(pem, len, &error);
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	guint matches = 0;

	report("guest CSR", error);
	if (key == NULL) {
		g_assert(error != NULL);
		return;
	}
	for (gsize i = 0; i < G_N_ELEMENTS(types); i++) {
		g_autoptr(GError) local = NULL;
		if (vc_key_check_type(key, types[i], &local)) {
			VcLeafRequest leaf = {
			    .serial_hex = "1f2e3d4c5b6a79880102030405060708",
			    .vm_uuid = "6f1d3c6a-3b1e-4c57-9f2a-2c1d5e9b7a10",
			    .dns_names = names,
			    .public_key = key,
			    .not_before = now - 60,
			    .not_after = now + 3600,
			};
			g_autoptr(X509) cert = NULL;
			matches++;
			cert = vc_ca_issue_leaf(ca, &leaf, &local);
			if (cert == NULL)
				g_error(
				    "fuzz-csr: a key that passed the checks cannot be signed: %s",
				    local->message);
		} else {
			g_assert(local != NULL);
		}
	}
	/* guest keygen accepts only what some policy can ask for */
	g_assert(matches == 1);
}

/* The host CA's checks: signature, key, SAN names. */
static void
fuzz_host_csr(const uint8_t *der, gsize len)
{
	const unsigned char *p = der;
	g_autoptr(X509_REQ) req = d2i_X509_REQ(NULL, &p, (long)len);
	g_autoptr(GError) error = NULL;
	g_autoptr(X509) cert = NULL;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;

	ERR_clear_error();
	if (req == NULL)
		return;
	cert = vc_host_ca_sign(host_ca, req, now - 60, now + 86400, &error);
	report("host CSR", error);
	g_assert(cert != NULL || error != NULL);
	if (cert != NULL) {
		g_autoptr(GError) name_error = NULL;
		GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
		/* every dNSName signed is one vc_host_ca_check_name() accepts */
		g_assert(gens != NULL);
		for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
			GENERAL_NAME *gen = sk_GENERAL_NAME_value(gens, i);
			if (gen->type == GEN_DNS) {
				g_autofree char *name =
				    g_strndup((const char *)ASN1_STRING_get0_data(gen->d.dNSName),
					      (gsize)ASN1_STRING_length(gen->d.dNSName));
				g_assert(vc_host_ca_check_name(name, &name_error));
			}
		}
		GENERAL_NAMES_free(gens);
	}
	ERR_clear_error();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (ca == NULL)
		fuzz_setup();
	if (size > 2 * VC_GUEST_CSR_MAX)
		return 0;
	/* as text, as the guest's openssl printed it */
	fuzz_guest_csr((const char *)data, size);
	/* as DER: armoured for the guest path, raw for the host CA */
	if (size > 0 && data[0] == 0x30) {
		g_autofree char *b64 = g_base64_encode(data, size);
		g_autoptr(GString) pem = g_string_new("-----BEGIN CERTIFICATE REQUEST-----\n");
		for (gsize i = 0, n64 = strlen(b64); i < n64; i += 64)
			g_string_append_printf(pem, "%.64s\n", b64 + i);
		g_string_append(pem, "-----END CERTIFICATE REQUEST-----\n");
		fuzz_guest_csr(pem->str, pem->len);
		fuzz_host_csr(data, size);
	}
	return 0;
}
