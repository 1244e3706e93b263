/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "vc-ca.h"
#include "vc-store.h"

G_BEGIN_DECLS

/* The OCSP responder (RFC 6960, RFC 5019 profile): answers for the
 * certificates of one CA from the store. Not bound to any transport: the
 * daemon's HTTP server hands it the DER request and serves the DER answer.
 *
 * Signer: a delegated responder certificate the CA issues to itself
 * (vc_ca_issue_ocsp_responder(): id-kp-OCSPSigning, id-pkix-ocsp-nocheck,
 * short life), renewed by vc_ocsp_responder_refresh() when half of its life
 * is gone; or the CA key itself (sign_with_ca).
 *
 * The hot path is a lookup: single-certificate answers without a nonce
 * (what RFC 5019 clients send) for VALID and revoked serials are signed
 * once and kept until half their validity is gone; vc_ocsp_responder_forget()
 * drops a serial's answers when it is revoked. Used from one thread (the
 * main loop), like the store. */

/* Requests larger than this are refused before they are parsed. RFC 5019
 * requests are about 100 octets; a signed request with a certificate chain
 * still fits. */
#define VC_OCSP_MAX_REQUEST_SIZE 16384
/* More certificates in one request than this: malformedRequest (RFC 5019
 * clients ask for one). */
#define VC_OCSP_MAX_CERTS 16
/* RFC 8954 2.1: a nonce of 1 to 32 octets. */
#define VC_OCSP_MAX_NONCE 32
/* Presigned answers kept at most (about 1 KiB each with the responder
 * certificate); past it answers are signed per request. */
#define VC_OCSP_CACHE_MAX 262144

typedef enum {
	VC_OCSP_ANSWER_GOOD,
	VC_OCSP_ANSWER_REVOKED,
	VC_OCSP_ANSWER_UNKNOWN,
	VC_OCSP_ANSWER_MALFORMED,    /* malformedRequest */
	VC_OCSP_ANSWER_UNAUTHORIZED, /* unauthorized: not our CA, unsupported hash */
	VC_OCSP_ANSWER_INTERNAL,     /* internalError: the store or signing failed */
	VC_OCSP_ANSWER_LAST,
} VcOcspAnswerKind;

/* "good", "revoked", "unknown", "malformedRequest", "unauthorized", "internalError" */
const char *vc_ocsp_answer_kind_to_string(VcOcspAnswerKind kind);

/* An answer, reference counted (cached answers are shared). */
typedef struct {
	GBytes *der; /* the DER OCSPResponse */
	VcOcspAnswerKind kind;
	gint64 produced_at; /* producedAt (Last-Modified); 0 for error answers */
	gint64 next_update; /* nextUpdate of the (first) answer; 0: must not be cached */
	char *etag;	    /* quoted entity tag for HTTP, NULL when not cacheable */
} VcOcspAnswer;

VcOcspAnswer *vc_ocsp_answer_ref(VcOcspAnswer *answer);
void vc_ocsp_answer_unref(VcOcspAnswer *answer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcOcspAnswer, vc_ocsp_answer_unref)

typedef struct {
	gboolean sign_with_ca;	     /* sign with the CA key, not a delegated certificate */
	gint64 validity_s;	     /* nextUpdate - thisUpdate; 0: one hour */
	gint64 responder_lifetime_s; /* of the delegated certificate; 0: two days */
	/* where the delegated key (0600) and certificate live across restarts;
	 * NULL: in memory only */
	const char *dir;
} VcOcspOptions;

typedef struct _VcOcspResponder VcOcspResponder;

/* CA and STORE are borrowed and must outlive the responder. Makes (or
 * loads from OPTS->dir) the delegated responder certificate. */
VcOcspResponder *vc_ocsp_responder_new(VcCa *ca, VcStore *store, const VcOcspOptions *opts,
				       GError **error);
void vc_ocsp_responder_free(VcOcspResponder *responder);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcOcspResponder, vc_ocsp_responder_free)

/* The answer to the DER request DATA (LEN octets), never NULL: a request
 * that cannot be answered gets an OCSP error response (malformedRequest,
 * unauthorized, internalError), the reason logged at debug level. */
VcOcspAnswer *vc_ocsp_responder_answer(VcOcspResponder *responder, const guint8 *data, gsize len);

/* Drops the cached answers for SERIAL (hex, any case) and signs its new
 * one from the store: call it once a revocation is durable. */
void vc_ocsp_responder_forget(VcOcspResponder *responder, const char *serial);
/* Signs and caches the answer for SERIAL (a new issuance). */
gboolean vc_ocsp_responder_presign(VcOcspResponder *responder, const char *serial, GError **error);
/* Presigns up to MAX of the store's VALID serials not cached yet, starting
 * with a fresh listing when the previous pass ended; returns TRUE while
 * there is more to do (run it from an idle source at startup). */
gboolean vc_ocsp_responder_presign_step(VcOcspResponder *responder, guint max, GError **error);
/* Renews the responder certificate when half its life is gone, and re-signs
 * cached answers whose nextUpdate is less than half the validity away.
 * Call it now and then (the daemon: every minute). */
gboolean vc_ocsp_responder_refresh(VcOcspResponder *responder, GError **error);

/* The delegated responder certificate (borrowed), NULL with sign_with_ca. */
X509 *vc_ocsp_responder_get_signer(VcOcspResponder *responder);
guint vc_ocsp_responder_get_cache_size(VcOcspResponder *responder);
/* Answers given since start, by kind. */
guint64 vc_ocsp_responder_get_count(VcOcspResponder *responder, VcOcspAnswerKind kind);

G_END_DECLS
