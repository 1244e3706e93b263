/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A handover claim (or, with the same members, the announcement of an
 * incoming migration) as the issuer's peer API receives it (after the
 * source saw STARTED/RESUMED MIGRATED): what the claimant's JSON body says,
 * who the claimant is (from its verified host certificate, never from the
 * JSON), and the HTTP request waiting for the answer. See docs/peer-api.md.
 */

#include <libsoup/soup.h>

#include "vc-host.h"
#include "vc-placement.h"

G_BEGIN_DECLS

typedef struct _VcPeerClaim VcPeerClaim;

/* The largest handover claim body accepted (413 above it). */
#define VC_PEER_CLAIM_MAX_SIZE (16 * 1024)

/* Parses and checks the claim body DATA (LEN octets) {"vm_uuid", "serial",
 * "vm_name", "fqdn"} from the client PEER, whose verified host certificate
 * gave IDENTITY (taken). VC_ERROR_INVALID_DATA naming the fault: a body that
 * is not a JSON object, a missing or mistyped member, a malformed UUID or
 * serial, or an "fqdn" that is not a name of PEER's certificate. REMOTE_ADDRESS
 * (nullable) is for logs only. */
VcPeerClaim *vc_peer_claim_new_from_data(const char *data, gsize len, VcHost *peer,
					 VcHostIdentity *identity, const char *remote_address,
					 GError **error);
/* Ties CLAIM to the request MSG that carried it and pauses MSG until the
 * reply; a client that goes away meanwhile is noticed. */
void vc_peer_claim_attach(VcPeerClaim *claim, SoupServerMessage *msg);
/* Frees a claim that was never replied to (an attached one through a
 * reply). */
void vc_peer_claim_free(VcPeerClaim *claim);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcPeerClaim, vc_peer_claim_free)

/* All getters return borrowed values valid until the reply. */

/* From the JSON body: the VM's UUID (lower-case), its name ("" when not
 * sent), and the serial (lower-case hex) of the certificate the
 * destination installed. */
const char *vc_peer_claim_get_vm_uuid(VcPeerClaim *claim);
const char *vc_peer_claim_get_vm_name(VcPeerClaim *claim);
const char *vc_peer_claim_get_serial(VcPeerClaim *claim);
/* From the peer's verified host certificate: its first dNSName, the
 * identity placement is evaluated against (CA fingerprints, attributes),
 * the certificate's SHA-256 fingerprint and serial (for the audit log). */
const char *vc_peer_claim_get_peer_fqdn(VcPeerClaim *claim);
const VcHostIdentity *vc_peer_claim_get_peer_identity(VcPeerClaim *claim);
const char *vc_peer_claim_get_peer_fingerprint(VcPeerClaim *claim);
const char *vc_peer_claim_get_peer_serial(VcPeerClaim *claim);
/* The TCP peer ("192.0.2.7"), for logs only. */
const char *vc_peer_claim_get_remote_address(VcPeerClaim *claim);

/* Answers 200 {"accepted": ACCEPTED, "reason": REASON} (REASON nullable:
 * "") and frees CLAIM. Safe when the client has gone or the server was
 * freed meanwhile (nothing is sent then). */
void vc_peer_claim_reply(VcPeerClaim *claim, gboolean accepted, const char *reason);
/* Answers 403 with REASON (text): the issuer refuses the claim or the
 * announcement, and nothing changed there. Frees CLAIM. */
void vc_peer_claim_reply_refused(VcPeerClaim *claim, const char *reason);
/* Answers 503 with REASON (the claimant retries later: e.g. this host has
 * not yet seen the VM's STOPPED MIGRATED, or is shutting down) and frees
 * CLAIM. */
void vc_peer_claim_reply_unavailable(VcPeerClaim *claim, const char *reason);

G_END_DECLS
