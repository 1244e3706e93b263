/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The host CA (lab / small sites; an organization may use its own): signs
 * host certificates whose SAN carries the host's FQDN and its attributes
 * (urn:virtcert:host:KEY=VALUE, policy/vc-placement.h), revokes them and
 * makes its CRL.
 */

#include <glib.h>
#include <openssl/x509.h>

#include "vc-autoptr.h"
#include "vc-policy.h"

G_BEGIN_DECLS

/* Files under DIR (0700):
 *   ca.key     private key, 0600
 *   ca.pem     self-signed CA certificate (CA:TRUE, keyCertSign + cRLSign)
 *   index      GKeyFile: [crl] number, [revoked] SERIAL=UNIX_TIME */
typedef struct {
	const char *common_name; /* NULL: "virtcert host CA" */
	VcKeyType key_type;
	gint64 lifetime_s; /* 0: 10 years */
	gboolean force;	   /* overwrite an existing host CA */
} VcHostCaInitOptions;

gboolean vc_host_ca_init(const char *dir, const VcHostCaInitOptions *opts, GError **error);

typedef struct _VcHostCa VcHostCa;

VcHostCa *vc_host_ca_load(const char *dir, GError **error);
void vc_host_ca_free(VcHostCa *ca);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcHostCa, vc_host_ca_free)
X509 *vc_host_ca_get_cert(VcHostCa *ca); /* borrowed */

/* A name a host certificate may carry as dNSName: a valid DNS name, or
 * "localhost" (RFC 6761 6.3: always the loopback), which lets two "hosts" on
 * one machine authenticate each other in labs and tests; a peer reached as
 * localhost is this machine. VC_ERROR_INVALID_DATA naming the fault. */
gboolean vc_host_ca_check_name(const char *name, GError **error);

/* The PEM certificate signing request in PATH. */
X509_REQ *vc_host_ca_load_csr(const char *path, GError **error);
/* Signs CSR (its signature is checked) for [NOT_BEFORE, NOT_AFTER] (unix
 * seconds). Copies the CSR's subjectAltName, accepting only dNSName (valid
 * DNS names, at least one) and urn:virtcert:host:KEY=VALUE URIs: anything
 * else in the SAN is refused (VC_ERROR_POLICY naming it). Subject CN = the
 * first dNSName; EKU serverAuth + clientAuth (libvirt's migration TLS uses
 * the same certificate in both roles). NOT_AFTER may be in the past (tests). */
X509 *vc_host_ca_sign(VcHostCa *ca, X509_REQ *csr, gint64 not_before, gint64 not_after,
		      GError **error);
/* Records CERT (which this CA must have issued) as revoked now, durably. */
gboolean vc_host_ca_revoke(VcHostCa *ca, X509 *cert, GError **error);
/* A CRL v2 of every revoked serial, valid VALIDITY_S; bumps the CRL number. */
X509_CRL *vc_host_ca_make_crl(VcHostCa *ca, gint64 validity_s, GError **error);

G_END_DECLS
