/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Another host's claim or announcement (POST /peer/v1/handover and
 * /peer/v1/announce) is hostile input twice: the client certificate its TLS
 * handshake presented and the JSON body. This target runs what the peer
 * listener runs on both (vc-http-server.c): the certificate chain as GnuTLS
 * parsed it, through vc_peer_verify_certificate() (chain to the host CA,
 * dates, clientAuth, the host profile) and vc_host_get_identity() (CA
 * fingerprints and the urn:virtcert:host: attributes); then the body through
 * vc_peer_claim_new_from_data() (members, UUID, serial, name, the fqdn
 * against the certificate); then the identity against restricted placements
 * (vc_placement_allows(), what vc-engine-handover.c asks). The identity of
 * an unverified certificate is extracted too (its parser must survive any
 * certificate), and the body is also parsed as a peer's reply
 * (vc_peer_client_parse_reply(): a peer may answer anything).
 *
 * Input: a 2-octet big-endian length N, N octets of DER certificates (the
 * client's leaf, then any intermediates it sent), then the body. Trust: the
 * host CA of tests/fuzz/fixtures/host (VC_FUZZ_HOST_CA, which signed the
 * seeds' certificates). */
#include <stdint.h>
#include <string.h>

#include <gio/gio.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "vc-ca.h"
#include "vc-http-private.h"
#include "vc-peer-claim.h"
#include "vc-peer-client.h"
#include "vc-placement.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_CERTS 8

static char *ca_path;
static VcHost *fallback; /* a host for the body when no certificate parses */
static VcPolicy *placements[3];

static void
fuzz_setup(void)
{
	g_autoptr(GError) error = NULL;
	const char *env = g_getenv("VC_FUZZ_HOST_CA");
	g_autofree char *dir = NULL;
	g_autofree char *leaf = NULL;
	g_autofree char *fp = NULL;
	g_autoptr(GPtrArray) cas = NULL;
	const char *canonical[3] = {"require=site=eu-west|eu-central\n", NULL,
				    "require=site=eu-west\nrequire=tier=gold|silver\n"};

	if (env == NULL)
		g_error("fuzz-peer-claim: set VC_FUZZ_HOST_CA to tests/fuzz/fixtures/host/ca.pem");
	ca_path = g_strdup(env);
	dir = g_path_get_dirname(ca_path);
	leaf = g_build_filename(dir, "host-b.pem", NULL);
	fallback = vc_host_load_files(leaf, NULL, ca_path, NULL, &error);
	g_assert_no_error(error);
	cas = vc_cert_load_pem_file(ca_path, &error);
	g_assert_no_error(error);
	fp = vc_cert_get_fingerprint_sha256(g_ptr_array_index(cas, 0));
	canonical[1] = g_strdup_printf("trust-host-ca=%s\nrequire=tier=gold\n", fp);
	for (guint i = 0; i < G_N_ELEMENTS(placements); i++) {
		placements[i] = vc_placement_from_canonical(canonical[i], &error);
		g_assert_no_error(error);
		g_assert(vc_placement_is_restricted(placements[i]));
	}
	g_free((char *)canonical[1]);
}

/* The DER certificates at the start of the input, as X509 (for OpenSSL)
 * and their octets as they are (DERS, of GBytes). */
static void
split_certs(const uint8_t *der, gsize len, GPtrArray *ders, GPtrArray *x509s)
{
	const unsigned char *p = der;
	const unsigned char *end = der + len;

	while (p < end && x509s->len < FUZZ_MAX_CERTS) {
		const unsigned char *start = p;
		X509 *x = d2i_X509(NULL, &p, (long)(end - p));

		if (x == NULL)
			break;
		g_ptr_array_add(x509s, x);
		g_ptr_array_add(ders, g_bytes_new(start, (gsize)(p - start)));
	}
	ERR_clear_error();
}

/* The chain as a TLS handshake hands it over: the GIO backend makes one
 * GTlsCertificate per DER certificate the client sent, each with the next
 * as its "issuer" (g_tls_certificate_new_from_pem() would also check that
 * they form a chain, and leaks when they do not: GLib's, not ours). */
static GTlsCertificate *
tls_chain(GPtrArray *ders, GError **error)
{
	GType type = g_tls_backend_get_certificate_type(g_tls_backend_get_default());
	g_autoptr(GTlsCertificate) issuer = NULL;

	for (guint i = ders->len; i > 0; i--) {
		g_autoptr(GByteArray) der = g_bytes_unref_to_array(g_bytes_ref(ders->pdata[i - 1]));
		GTlsCertificate *cert =
		    g_initable_new(type, NULL, error, "certificate", der, "issuer", issuer, NULL);
		if (cert == NULL)
			return NULL;
		g_set_object(&issuer, cert);
		g_object_unref(cert);
	}
	return g_steal_pointer(&issuer);
}

/* VC_FUZZ_VERBOSE=1: what became of an input (to check that seeds go deep) */
static void
report(const char *what, const GError *error)
{
	if (g_getenv("VC_FUZZ_VERBOSE") != NULL)
		g_printerr("%s: %s\n", what, error != NULL ? error->message : "ok");
}

static void
check_claim(const char *body, gsize len, VcHost *host, VcHostIdentity *identity)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcPeerClaim) claim =
	    vc_peer_claim_new_from_data(body, len, host, identity, "192.0.2.7", &error);

	report("claim", error);
	if (claim == NULL) {
		g_assert(error != NULL);
		return;
	}
	/* what the engine reads */
	g_assert(g_uuid_string_is_valid(vc_peer_claim_get_vm_uuid(claim)));
	g_assert(vc_peer_claim_get_serial(claim)[0] != '\0');
	g_assert(vc_peer_claim_get_vm_name(claim) != NULL);
	g_assert(vc_peer_claim_get_peer_fingerprint(claim) != NULL);
	for (guint i = 0; i < G_N_ELEMENTS(placements); i++) {
		g_autofree char *reason = NULL;
		(void)vc_placement_allows(placements[i], vc_peer_claim_get_peer_identity(claim),
					  &reason);
		g_assert(reason != NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GPtrArray) x509s = g_ptr_array_new_with_free_func((GDestroyNotify)X509_free);
	g_autoptr(GPtrArray) ders = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	g_autoptr(VcHost) verified = NULL;
	g_autoptr(VcHost) unverified = NULL;
	g_autoptr(VcHostIdentity) identity = NULL;
	g_autoptr(GError) error = NULL;
	const char *body;
	gsize n, body_len;

	if (ca_path == NULL)
		fuzz_setup();
	if (size < 2)
		return 0;
	n = ((gsize)data[0] << 8) | data[1];
	if (n > size - 2)
		n = size - 2;
	body = (const char *)data + 2 + n;
	body_len = size - 2 - n;
	if (body_len > VC_PEER_CLAIM_MAX_SIZE)
		return 0;
	split_certs(data + 2, n, ders, x509s);

	/* the listener's path: only a chain GnuTLS accepted reaches it */
	if (x509s->len > 0) {
		g_autoptr(GTlsCertificate) tls = tls_chain(ders, &error);
		report("client certificate (GnuTLS)", error);
		g_clear_error(&error);
		if (tls != NULL) {
			verified =
			    vc_peer_verify_certificate(tls, ca_path, NULL, FALSE, NULL, &error);
			report("client certificate", error);
			if (verified != NULL) {
				identity = vc_host_get_identity(verified, &error);
				report("identity", error);
				g_assert(identity != NULL || error != NULL);
			}
			g_clear_error(&error);
		}
		/* the same parsers on a certificate nobody vouched for */
		unverified = vc_host_new_from_certs(x509s, ca_path, NULL, &error);
		if (unverified != NULL) {
			g_autoptr(VcHostIdentity) id = NULL;
			(void)vc_host_check_profile(unverified, VC_HOST_ROLE_CLIENT, NULL);
			(void)vc_host_get_fqdn(unverified);
			id = vc_host_get_identity(unverified, NULL);
			if (identity == NULL && id != NULL)
				identity = g_steal_pointer(&id);
		}
		g_clear_error(&error);
	}
	if (identity == NULL)
		identity = vc_host_identity_new();
	check_claim(body, body_len,
		    verified != NULL	 ? verified
		    : unverified != NULL ? unverified
					 : fallback,
		    g_steal_pointer(&identity));

	/* a peer's answer */
	{
		gboolean accepted = FALSE;
		g_autofree char *reason = NULL;
		if (!vc_peer_client_parse_reply("https://host-b.example.com:8443", body, body_len,
						&accepted, &reason, &error))
			g_assert(error != NULL);
		else
			g_assert(reason != NULL);
	}
	return 0;
}
