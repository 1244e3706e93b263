/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * One listening socket of the daemon's HTTP side, accepted in our own code
 * and handed to libsoup (soup_server_accept_iostream()), so that a flood
 * cannot take it down:
 *
 *  - at most max_connections connections are open at once; one beyond the
 *    cap is closed at once and counted ("refused"), with a warning in the
 *    journal at most every 10 s;
 *  - a failed accept (EMFILE, ENFILE, ENOBUFS...) pauses accepting for a
 *    moment (100 ms, doubling up to 1 s) and then accepting goes on: the
 *    listener never stops for good (libsoup 3.2's own listener drops its
 *    accept source after one failed accept);
 *  - every connection has a deadline: the request's headers within
 *    header_timeout_ms of the accept (the TLS handshake included) or of the
 *    first byte of a request on a kept-alive connection, the next request
 *    within idle_timeout_ms of the previous response, and the response
 *    written within request_timeout_ms of the headers. A connection past
 *    its deadline is closed and counted ("timed out"); a slow client holds
 *    only its own connection.
 *
 * With a TLS certificate, the listener does the handshake itself (client
 * certificate per AUTH_MODE, every certificate accepted by GIO: the caller
 * verifies it) and hands libsoup the TLS connection.
 */

#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _VcHttpListener VcHttpListener;

typedef struct {
	guint max_connections;	  /* 0: no cap */
	guint header_timeout_ms;  /* 0: none */
	guint idle_timeout_ms;	  /* 0: none */
	guint request_timeout_ms; /* 0: none */
} VcHttpLimits;

/* What a listener has seen, for metrics and tests. */
typedef struct {
	guint open;	       /* connections open now */
	guint max;	       /* the cap (0: none) */
	guint64 accepted;      /* handed to libsoup */
	guint64 refused;       /* closed at once: the cap was reached */
	guint64 timed_out;     /* closed at a deadline */
	guint64 accept_errors; /* failed accept() calls (each pauses accepting) */
} VcHttpListenerStats;

/* Binds ADDRESS and serves what it accepts with SERVER (which must not
 * listen on anything else). NAME says which listener in log messages
 * ("HTTP", "peer API"). TLS_CERT (nullable) makes it HTTPS with client
 * certificates per AUTH_MODE; TLS_DB (nullable) lists the acceptable CAs in
 * the CertificateRequest. Errors: VC_ERROR_IO when ADDRESS cannot be bound. */
VcHttpListener *vc_http_listener_new(SoupServer *server, const char *name, GSocketAddress *address,
				     GTlsCertificate *tls_cert, GTlsDatabase *tls_db,
				     GTlsAuthenticationMode auth_mode, const VcHttpLimits *limits,
				     GError **error);
/* Stops accepting and forgets its connections (libsoup's
 * soup_server_disconnect() closes those it holds). */
void vc_http_listener_free(VcHttpListener *listener);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcHttpListener, vc_http_listener_free)

guint16 vc_http_listener_get_port(VcHttpListener *listener);
/* The client certificate of the TLS connection MSG came on (libsoup does
 * not know it: the handshake was ours), or NULL. */
GTlsCertificate *vc_http_listener_get_peer_certificate(SoupServerMessage *msg);
void vc_http_listener_get_stats(VcHttpListener *listener, VcHttpListenerStats *ret_stats);

G_END_DECLS
