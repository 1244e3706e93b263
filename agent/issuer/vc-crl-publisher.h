/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "vc-issuer.h"
#include "vc-metrics.h"

G_BEGIN_DECLS

/*
 * The CRL the daemon serves, kept ready so that a GET is a lookup:
 *  - rebuilt from the store VC_CRL_PUBLISHER_DELAY_MS after a revocation is
 *    durable, all the revocations of that window in one rebuild (coalesced);
 *  - rebuilt every refresh interval (half the CRL's validity, at most an
 *    hour), so nextUpdate is never near;
 *  - with its validators: a strong ETag (the SHA-256 of the DER) and
 *    thisUpdate as Last-Modified.
 * Runs on the thread-default main context it was made on.
 */

#define VC_CRL_PUBLISHER_DELAY_MS 200

typedef struct _VcCrlPublisher VcCrlPublisher;

/* ISSUER is borrowed. METRICS (nullable, borrowed) gets
 * virtcert_revocation_visible_seconds (revocation durable → CRL rebuilt),
 * virtcert_crl_builds_total, virtcert_crl_build_failures_total and the CRL's
 * size, entries and nextUpdate. The first CRL is built here: an error is
 * logged and retried at the next revocation, refresh or GET. */
VcCrlPublisher *vc_crl_publisher_new(VcIssuer *issuer, gint64 validity_s, VcMetrics *metrics);
void vc_crl_publisher_free(VcCrlPublisher *pub);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcCrlPublisher, vc_crl_publisher_free)

/* A revocation became durable just now: the CRL is rebuilt within
 * VC_CRL_PUBLISHER_DELAY_MS, together with any others meanwhile. */
void vc_crl_publisher_revoked(VcCrlPublisher *pub);
/* Rebuilds at once (tests, and a GET finding no CRL). */
gboolean vc_crl_publisher_rebuild(VcCrlPublisher *pub, GError **error);

/* The current CRL: DER, ETag (quoted), thisUpdate and nextUpdate (unix s).
 * Built now if there is none. Outputs are written only on success. */
gboolean vc_crl_publisher_get(VcCrlPublisher *pub, GBytes **ret_der, char **ret_etag,
			      gint64 *ret_this_update, gint64 *ret_next_update, GError **error);
/* How many rebuilds succeeded so far. */
guint64 vc_crl_publisher_get_builds(VcCrlPublisher *pub);

G_END_DECLS
