/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * This host's identity: enrollment and import of its certificate, the
 * certificate's self-check, and the placement decision made with it.
 *
 * A host certificate carries the host's FQDN as dNSName and its attributes
 * (site, jurisdiction, tier, ...) as SAN URIs urn:virtcert:host:KEY=VALUE
 * (policy/vc-placement.h). A VM's placement policy names the host CAs it
 * trusts (SHA-256 fingerprints) and the attributes it needs. The same
 * certificate (EKU serverAuth + clientAuth) serves as libvirt's and QEMU's
 * TLS certificate for migration (vc-host-libvirt-tls.h).
 */

#include <glib.h>
#include <json-glib/json-glib.h>
#include <openssl/x509.h>

#include "vc-autoptr.h"
#include "vc-config.h"
#include "vc-placement.h"
#include "vc-policy.h"
/* the host CA has its own header now; included for the callers that used
 * to find it in this one */
#include "vc-host-ca.h"

G_BEGIN_DECLS

/* ---- this host --------------------------------------------------------- */

/* Enrollment: writes KEY_PATH (0600, EC P-256; its directory is created
 * 0700) and CSR_PATH (subject CN = FQDN; SAN: dNSName FQDN + one URI per
 * attribute "KEY=VALUE"), and copies the trusted host CA bundle HOSTCA_PATH
 * (CA certificates only) to CA_OUT. Refuses to replace an existing key
 * unless FORCE. */
gboolean vc_host_enroll(const char *key_path, const char *csr_path, const char *fqdn,
			const char *const *attrs, const char *hostca_path, const char *ca_out,
			gboolean force, GError **error);
/* Default FQDN: g_get_host_name(), completed through the resolver's
 * canonical name when that has a dot; NULL-free. */
char *vc_host_default_fqdn(void);

/* Installs CERT_PATH (the host certificate, optionally followed by
 * intermediates) as CERT_OUT after checking it matches KEY_PATH and chains
 * to the CA bundle CA_PATH. */
gboolean vc_host_import(const char *cert_path, const char *key_path, const char *ca_path,
			const char *cert_out, GError **error);

typedef struct _VcHost VcHost;

/* Renewal: a CSR for the same key, FQDN and attributes as HOST's current
 * certificate (HOST needs its key), written to CSR_PATH (0644) for the host
 * CA to sign; `virtcert host import` installs the result. */
gboolean vc_host_write_renewal_csr(VcHost *host, const char *csr_path, GError **error);

/* A host certificate with its trust settings. KEY_PATH, CA_PATH and
 * CRL_PATH may be NULL; a CRL_PATH that does not exist is ignored (no CRL
 * configured), an unreadable or malformed one is an error. */
VcHost *vc_host_load_files(const char *cert_path, const char *key_path, const char *ca_path,
			   const char *crl_path, GError **error);
/* A peer's host certificate as its TLS handshake presented it: CERTS (of
 * X509*, copied) holds the leaf first, then the intermediates the peer sent
 * (untrusted); CA_PATH and CRL_PATH are this host's trust settings, as for
 * vc_host_load_files(). No key: vc_host_install_libvirt_tls() refuses it.
 * The agent/http peer API verifies every client this way. */
VcHost *vc_host_new_from_certs(GPtrArray *certs, const char *ca_path, const char *crl_path,
			       GError **error);
/* This host from CONFIG ([host] paths or STATE_DIR/host/...); the key is
 * required. VC_ERROR_NOT_FOUND when no host certificate is installed. */
VcHost *vc_host_load(const VcConfig *config, GError **error);
/* The same without the private key (decoding it is most of what loading
 * costs with OpenSSL 3): enough for the self-check and placement decisions,
 * not for vc_host_install_libvirt_tls() or TLS. */
VcHost *vc_host_load_public(const VcConfig *config, GError **error);
void vc_host_free(VcHost *host);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcHost, vc_host_free)

X509 *vc_host_get_cert(VcHost *host); /* borrowed */
/* First dNSName of the certificate, or NULL. */
const char *vc_host_get_fqdn(VcHost *host);
/* SHA-256 (lower-case hex) of the CA certificate that issued the host
 * certificate, found in the trusted bundle or the certificate file; NULL
 * when neither holds it. Borrowed. */
const char *vc_host_get_ca_fingerprint(VcHost *host);

/* Validity bounds (unix seconds) and issuer DN (RFC 2253, free it). */
gint64 vc_host_get_not_before(VcHost *host);
gint64 vc_host_get_not_after(VcHost *host);
char *vc_host_get_issuer(VcHost *host);

/* Self-check at NOW (unix seconds; 0: now): the certificate is within its
 * validity, chains to the trusted host CA bundle, and is not on that CA's
 * CRL (when one is configured). Errors (VC_ERROR_CRYPTO) say which:
 * "expired on ...", "revoked", "not issued by the trusted host CA ...". */
gboolean vc_host_check_at(VcHost *host, gint64 now, GError **error);
gboolean vc_host_check(VcHost *host, GError **error);

/* What a host certificate must be used for. */
typedef enum {
	VC_HOST_ROLE_SERVER = 1 << 0, /* serverAuth: the peer API server, migration TLS */
	VC_HOST_ROLE_CLIENT = 1 << 1, /* clientAuth: claims, announcements */
	VC_HOST_ROLE_BOTH = VC_HOST_ROLE_SERVER | VC_HOST_ROLE_CLIENT,
} VcHostRole;

/* Is HOST's certificate a host identity at all: not a CA (basicConstraints
 * CA:TRUE), an extendedKeyUsage that is present and holds what ROLE needs
 * (no EKU would mean "any use"), at least one dNSName and none with a
 * wildcard. VC_ERROR_CRYPTO saying which. Dates, chain and CRL are
 * vc_host_check()'s business. */
gboolean vc_host_check_profile(VcHost *host, VcHostRole role, GError **error);

/* The identity placement is evaluated against: CA fingerprints of the
 * verified chain (issuer first; without a trusted CA bundle, those of the
 * extra certificates in the certificate file, unverified) and attributes
 * from the SAN URIs. A malformed urn:virtcert:host: URI is an error. */
VcHostIdentity *vc_host_get_identity(VcHost *host, GError **error);

/* The placement decision for POLICY on HOST (nullable: no host certificate):
 * unrestricted policies allow any host; else the host must pass its
 * self-check and vc_placement_allows(). RET_REASON as there. */
gboolean vc_host_placement_decide(VcHost *host, const VcPolicy *policy, char **ret_reason);

/* The daemon's "placement-check" answer for a domain XML:
 * {"allow": bool, "reason": "...", "vm": NAME, "restricted": bool}.
 * A VM no policy selects is allowed ("no virtcert policy"). A domain XML
 * that cannot be parsed, or whose policy is invalid, is an error. */
JsonNode *vc_host_placement_answer(VcHost *host, VcPolicySet *set, const char *xml,
				   gboolean issue_all, gint64 default_lifetime, GError **error);

G_END_DECLS
