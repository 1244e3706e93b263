/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A VM's placement as its owner wrote and signed it: the rules of the
 * <virtcert:placement> element in the domain metadata, the signature the
 * owner put beside them, and the canonical form the signature covers.
 * OpenSSL-free (policy/ links no crypto): the CMS signature is made and
 * checked by agent/ca/vc-placement-sig.c over the bytes built here.
 *
 *   <virtcert:placement check-on-start="yes">
 *     <virtcert:trust-ca>SHA-256 HEX</virtcert:trust-ca>
 *     <virtcert:require attr="site">eu-west|eu-central</virtcert:require>
 *     <virtcert:signature vm="UUID" not-after="2027-01-01T00:00:00Z">BASE64 DER
 * CMS</virtcert:signature>
 *   </virtcert:placement>
 *
 * The canonical form (version 1) is ASCII, one "key=value" line each ended
 * by "\n", in this order:
 *
 *   virtcert-placement=1
 *   check-on-start=yes|no|unset
 *   trust-ca=HEX            one per distinct fingerprint, 64 lower-case hex
 *                           digits without colons, sorted (strcmp)
 *   require=ATTR=V1|V2      one per rule; values sorted and distinct; the
 *                           lines sorted (strcmp)
 *   vm=UUID                 lower-case 8-4-4-4-12
 *   not-after=YYYY-MM-DDTHH:MM:SSZ | none
 *
 * so that whitespace, order, case and colons in fingerprints, and repeated
 * values do not change what is signed, while every change of meaning does.
 */

#include <glib.h>

G_BEGIN_DECLS

#define VC_SIGNED_PLACEMENT_VERSION "1"
/* The base64 text of a signature, at most (the parser's value cap is the
 * same: a longer one never reaches here). */
#define VC_SIGNED_PLACEMENT_SIG_MAX 4096

typedef struct {
	gboolean present;     /* the metadata has a <virtcert:placement> element */
	char *check_on_start; /* as written, NULL: not given */
	GPtrArray *trust_cas; /* of char*, as written */
	GPtrArray *requires;  /* of "ATTR=V1|V2", as written */
	/* <virtcert:signature>: NULL sig_der means unsigned */
	char *sig_vm;	     /* vm= as written */
	char *sig_not_after; /* not-after= as written, NULL: none */
	GBytes *sig_der;     /* the decoded CMS SignedData */
} VcSignedPlacement;

VcSignedPlacement *vc_signed_placement_new(void);
void vc_signed_placement_free(VcSignedPlacement *sp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcSignedPlacement, vc_signed_placement_free)

/* Sets the signature from the element's attributes and text (base64, white
 * space allowed between the characters). VC_ERROR_INVALID_DATA naming what
 * is wrong: a second signature, vm= missing or not a UUID, not-after= not
 * "YYYY-MM-DDTHH:MM:SSZ", text empty, not base64 or too long. */
gboolean vc_signed_placement_set_signature(VcSignedPlacement *sp, const char *vm,
					   const char *not_after, const char *base64,
					   GError **error);

/* "2027-01-01T00:00:00Z" -> unix seconds; VC_ERROR_INVALID_DATA otherwise. */
gboolean vc_signed_placement_parse_time(const char *s, gint64 *ret_unix, GError **error);
/* unix seconds -> "2027-01-01T00:00:00Z" */
char *vc_signed_placement_format_time(gint64 t);

/* The canonical form of SP's rules bound to VM_UUID and NOT_AFTER (unix
 * seconds, 0: none), as described above. VC_ERROR_INVALID_DATA when a rule
 * or the UUID is malformed (a signature over them means nothing). */
GBytes *vc_signed_placement_canonical(const VcSignedPlacement *sp, const char *vm_uuid,
				      gint64 not_after, GError **error);
/* The canonical form the signature in SP claims to cover (its vm= and
 * not-after=). VC_ERROR_INVALID_DATA when SP is unsigned. */
GBytes *vc_signed_placement_canonical_signed(const VcSignedPlacement *sp, GError **error);

/* The <virtcert:placement> element for SP with a signature (BASE64 of DER)
 * bound to VM_UUID and NOT_AFTER (0: none), in the urn:virtcert:domain:1
 * namespace with prefix "virtcert": what `virtcert placement sign` prints
 * and an owner puts into the domain's metadata. */
char *vc_signed_placement_to_xml(const VcSignedPlacement *sp, const char *vm_uuid, gint64 not_after,
				 GBytes *der);

G_END_DECLS
