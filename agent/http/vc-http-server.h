/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The daemon's HTTP side (libsoup 3, on the GLib main loop, no threads):
 *
 *  - the plain listener (loopback by default) for relying parties:
 *      GET /crl/<ca-id>.crl   DER CRL, application/pkix-crl, with ETag and
 *                             Last-Modified; 304 on If-None-Match or
 *                             If-Modified-Since (RFC 9110 13.1)
 *      GET /crl/host-ca.crl   the host CA's CRL (also under its own id)
 *      GET /ca/<ca-id>.crt    the CA certificate, DER, application/pkix-cert
 *                             (the leaves' AIA caIssuers, RFC 5280 4.2.2.1)
 *      GET /cert/<vm-uuid>    PEM chain of the VM's current certificate,
 *                             application/pem-certificate-chain (RFC 8555 9.1)
 *      GET /metrics           Prometheus text format 0.0.4
 *      POST /ocsp             OCSP (RFC 6960 A.1), application/ocsp-request
 *      GET /ocsp/<base64>     the same request in the path (RFC 5019 5)
 *    HEAD as GET; any other method on these paths 405, other paths 404, a
 *    malformed CA id or UUID 400 with a text body saying why.
 *
 *  - the peer listener (HTTPS, client certificate required) for other hosts:
 *      POST /peer/v1/announce {"vm_uuid", "vm_name", "serial", "fqdn"}
 *      POST /peer/v1/handover {"vm_uuid", "vm_name", "serial", "fqdn"}
 *    Every client certificate is verified with OpenSSL against this host's
 *    trusted host CA bundle and the host CA's CRL (read at every request,
 *    so a new CRL counts at once) before the body is even read; a client
 *    that does not verify gets 403 with the reason and never reaches the
 *    callback. The claim's peer identity and FQDN come from that verified
 *    certificate, never from the JSON. See docs/peer-api.md.
 */

#include <gio/gio.h>

#include "vc-http-listener.h"
#include "vc-peer-claim.h"

G_BEGIN_DECLS

typedef struct _VcHttpServer VcHttpServer;

/* A document with its validators (RFC 9110 8.8), for conditional GETs. */
typedef struct {
	GBytes *body;
	char *etag;	      /* a quoted entity tag, or NULL */
	gint64 last_modified; /* unix s, or 0 */
} VcHttpDocument;

/* Takes BODY and ETAG. */
VcHttpDocument *vc_http_document_new(GBytes *body, char *etag, gint64 last_modified);
void vc_http_document_free(VcHttpDocument *doc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcHttpDocument, vc_http_document_free)
/* An OCSP request larger than this is answered malformedRequest before
 * its body is read (the responder's VC_OCSP_MAX_REQUEST_SIZE). */
#define VC_HTTP_OCSP_MAX_REQUEST 16384

/* What the OCSP callback answers: the DER OCSPResponse and how long HTTP
 * caches may keep it (RFC 5019 6.2). */
typedef struct {
	GBytes *der;
	gint64 last_modified; /* producedAt, unix seconds; 0: no Last-Modified */
	gint64 expires;	      /* nextUpdate; 0: not to be cached */
	char *etag;	      /* quoted entity tag; NULL: none */
} VcHttpOcspReply;

void vc_http_ocsp_reply_clear(VcHttpOcspReply *reply);
typedef void (*VcHttpOcspFunc)(GBytes *request, VcHttpOcspReply *ret_reply, gpointer user_data);

typedef struct {
	/* plain listener "HOST:PORT" ("[V6]:PORT"); NULL or "" disables. HOST
	 * is an IP address or "localhost" (127.0.0.1); port 0 picks a free one
	 * (tests; see vc_http_server_get_plain_port()). */
	const char *address;
	/* peer listener, same syntax; NULL or "" disables. It needs the four
	 * paths below (the CRL is optional: a missing file means no CRL). */
	const char *peer_address;
	const char *host_cert_path; /* this host's certificate (+ intermediates), PEM */
	const char *host_key_path;  /* its key */
	const char *host_ca_path;   /* trusted host CA bundle: who may claim */
	const char *host_crl_path;  /* the host CA's CRL (PEM or DER), nullable */
	/* the plain listener's cap and every connection's deadlines (zeros:
	 * none), and the peer listener's cap (same deadlines); see
	 * vc-http-listener.h */
	VcHttpLimits limits;
	guint peer_max_connections;
} VcHttpServerOptions;

/* Every callback runs on the main loop and may be NULL (the route then
 * answers 404). Strings and identities passed in are borrowed. */
typedef struct {
	/* DER CRL of the CA with id CA_ID (lower-case hex, as vc_ca_get_id(),
	 * or "host-ca"); NULL with VC_ERROR_NOT_FOUND answers 404, any other
	 * error 500. */
	VcHttpDocument *(*get_crl)(const char *ca_id, gpointer user_data, GError **error);
	/* DER certificate of the CA with id CA_ID; errors as for get_crl. */
	GBytes *(*get_ca_cert)(const char *ca_id, gpointer user_data, GError **error);
	/* PEM chain (leaf first) of the current certificate of VM_UUID
	 * (lower-case); NULL with VC_ERROR_NOT_FOUND answers 404. */
	char *(*get_cert_chain)(const char *vm_uuid, gpointer user_data, GError **error);
	/* The metrics text (Prometheus exposition format 0.0.4). */
	char *(*get_metrics)(gpointer user_data);
	/* A verified handover claim. The callee owns CLAIM and must answer it
	 * exactly once with vc_peer_claim_reply(), now or later from the main
	 * loop; the HTTP request waits (paused, the main loop runs on). */
	void (*handover)(VcPeerClaim *claim, gpointer user_data);
	/* The answer to the DER OCSP REQUEST (at most VC_HTTP_OCSP_MAX_REQUEST
	 * octets, from a POST body or a GET path): always a DER OCSPResponse in
	 * RET_REPLY, error responses included. */
	VcHttpOcspFunc ocsp;
	/* A verified announcement of an incoming migration (POST
	 * /peer/v1/announce, same members and checks as a claim); answered
	 * the same way. */
	void (*announce)(VcPeerClaim *claim, gpointer user_data);
} VcHttpCallbacks;

/* Starts the listeners OPTS enables. CB is copied. Errors: VC_ERROR_USAGE
 * for a malformed address or missing peer paths, VC_ERROR_CRYPTO for an
 * unusable host certificate or key, VC_ERROR_IO when a port cannot be
 * bound. */
VcHttpServer *vc_http_server_new(const VcHttpServerOptions *opts, const VcHttpCallbacks *cb,
				 gpointer user_data, GError **error);
/* Stops listening and drops open connections. Claims still held by the
 * callee stay valid; their replies then go nowhere. */
void vc_http_server_free(VcHttpServer *server);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcHttpServer, vc_http_server_free)

/* The bound ports (0 when the listener is disabled). */
guint16 vc_http_server_get_plain_port(VcHttpServer *server);
guint16 vc_http_server_get_peer_port(VcHttpServer *server);

/* Connection counts of the plain (PEER FALSE) or peer listener, all zero
 * when it is disabled: for /metrics (virtcert_http_connections_refused_total
 * and friends) and tests. */
void vc_http_server_get_stats(VcHttpServer *server, gboolean peer, VcHttpListenerStats *ret_stats);

G_END_DECLS
