/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The client side of the peer API (docs/peer-api.md): the destination of a
 * migration presents its handover claim to the host that issued the VM's
 * certificate. Blocking: call it from a worker thread, never the main loop.
 *
 * Both ends authenticate with host certificates: ours is sent as the TLS
 * client certificate; the server's must chain (OpenSSL, not GIO's default
 * trust) to the trusted host CA bundle, not be on the host CA's CRL when
 * one is configured, carry serverAuth, and name the peer URL's host as a
 * dNSName.
 */

#include <gio/gio.h>

#include "vc-host.h"

G_BEGIN_DECLS

typedef struct {
	const char *host_cert_path; /* this host's certificate (+ intermediates) */
	const char *host_key_path;  /* its key */
	const char *host_ca_path;   /* trusted host CA bundle */
	const char *host_crl_path;  /* the host CA's CRL, nullable; a missing file: none */
	guint timeout_s;	    /* the whole exchange, connect to reply; 0: 10 s */
} VcPeerClientOptions;

/* POSTs the claim {"vm_uuid", "vm_name", "serial" (the issuer's
 * certificate, as the VM's metadata names it), "fqdn" (ours, from our
 * certificate)} to PEER_URL ("https://FQDN[:PORT]", as the issuing host
 * recorded it in the VM's metadata; any path is replaced). On an answer,
 * RET_ACCEPTED gets the issuer's decision and RET_REASON (nullable) its
 * reason. Errors:
 *   VC_ERROR_USAGE         PEER_URL is not an https URL, or bad arguments
 *   VC_ERROR_UNAVAILABLE   cannot connect, timeout, or the peer answered
 *                          503 / 5xx / 404 (no peer API there): retry later
 *   VC_ERROR_CRYPTO        TLS failed, the server's certificate does not
 *                          verify or name the host, or the peer refused
 *                          our certificate or the claim (403, its reason
 *                          in the message)
 *   VC_ERROR_INVALID_DATA  any other answer, or a malformed reply */
gboolean vc_peer_claim(const char *peer_url, const VcPeerClientOptions *opts, const char *vm_uuid,
		       const char *vm_name, const char *serial, gboolean *ret_accepted,
		       char **ret_reason, GError **error);

/* POSTs the announcement of an incoming migration (same body as a claim;
 * SERIAL is the issuer's certificate, from the VM's metadata) to
 * PEER_URL's /peer/v1/announce, before memory moves. TRUE when the issuer
 * recorded it (RET_REASON, nullable, its answer); errors as vc_peer_claim(),
 * a refusal (403) being VC_ERROR_CRYPTO with the issuer's reason. */
gboolean vc_peer_announce(const char *peer_url, const VcPeerClientOptions *opts,
			  const char *vm_uuid, const char *vm_name, const char *serial,
			  char **ret_reason, GError **error);

/* Verifies a peer's TLS certificate as GIO presents it (the leaf linked to
 * the issuers the peer sent, which are untrusted) with OpenSSL: it must
 * chain to the host CA bundle CA_PATH, not be revoked by the CRL at
 * CRL_PATH (nullable; a missing file: none), be within its validity, carry
 * the extended key usage of its role (SERVER: serverAuth, else
 * clientAuth), have a dNSName, and when NAME is not NULL, hold NAME as a
 * dNSName (RFC 6125 6.4, no wildcards). Returns it as a VcHost without key;
 * VC_ERROR_CRYPTO says why not. Shared by the peer listener and
 * vc_peer_claim(). */
VcHost *vc_peer_verify_certificate(GTlsCertificate *cert, const char *ca_path, const char *crl_path,
				   gboolean server, const char *name, GError **error);

G_END_DECLS
