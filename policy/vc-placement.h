/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "vc-domain-xml.h"
#include "vc-policy.h"

G_BEGIN_DECLS

/* Host attributes are SAN URIs of the host certificate:
 *   urn:virtcert:host:KEY=VALUE
 * KEY is [a-z0-9-]+ and VALUE [A-Za-z0-9._:-]+ (the syntax of a placement
 * rule's attribute and values, see vc-policy.h); values compare exactly. */
#define VC_HOST_ATTR_URI_PREFIX "urn:virtcert:host:"

/* What the VM's placement policy is evaluated against: the host CA chain
 * that issued the host certificate and the host's attributes. Built from a
 * verified certificate by agent/ca/vc-host.c; pure data here. */
typedef struct {
	/* SHA-256 fingerprints (64 lower-case hex digits) of the CA
	 * certificates above the host certificate: the issuing CA first, the
	 * trust anchor last. */
	GPtrArray *ca_fingerprints;
	/* KEY -> GPtrArray of VALUE (char *), in certificate order */
	GHashTable *attributes;
} VcHostIdentity;

VcHostIdentity *vc_host_identity_new(void);
void vc_host_identity_free(VcHostIdentity *host);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcHostIdentity, vc_host_identity_free)

/* Appends a CA fingerprint (hex, colons and case ignored). Fails with
 * VC_ERROR_INVALID_DATA when it is not 64 hex digits. */
gboolean vc_host_identity_add_ca(VcHostIdentity *host, const char *fingerprint, GError **error);
/* Adds VALUE to KEY (a value given twice is kept once); both are checked. */
gboolean vc_host_identity_add_attribute(VcHostIdentity *host, const char *key, const char *value,
					GError **error);
/* Values of KEY in order, or NULL when the host has none. Borrowed. */
GPtrArray *vc_host_identity_get_values(const VcHostIdentity *host, const char *key);
/* Attribute keys, sorted (free the container only). */
GPtrArray *vc_host_identity_get_keys(const VcHostIdentity *host);

/* "KEY=VALUE" (as given to `virtcert host enroll --attr`) split and checked.
 * VC_ERROR_INVALID_DATA naming the problem. */
gboolean vc_host_attribute_parse(const char *kv, char **ret_key, char **ret_value, GError **error);
/* TRUE when URI starts with VC_HOST_ATTR_URI_PREFIX. */
gboolean vc_host_attribute_uri_is_host(const char *uri);
/* Parses urn:virtcert:host:KEY=VALUE. */
gboolean vc_host_attribute_uri_parse(const char *uri, char **ret_key, char **ret_value,
				     GError **error);
/* Builds urn:virtcert:host:KEY=VALUE (KEY and VALUE must be valid). */
char *vc_host_attribute_uri_build(const char *key, const char *value);

/* Decides whether the VM with POLICY may run on HOST: TRUE iff (the policy
 * lists no trusted host CA, or one of HOST's CA fingerprints is listed) and
 * every placement rule's attribute has a host value in the rule's set. A
 * policy with neither allows any host. RET_REASON (nullable) receives, in
 * either case, one line for humans: on refusal every failed condition
 * ("host attribute site=us-east not in {eu-west, eu-central}", "host CA
 * ab12cd34ef56… not trusted by the VM", "host has no attribute tier")
 * joined with "; "; on success what was satisfied. */
gboolean vc_placement_allows(const VcPolicy *policy, const VcHostIdentity *host, char **ret_reason);

/* The VM's effective policy for a placement decision: as
 * vc_domain_info_resolve_policy(), except that a policy that names no
 * certificate names is not an error here (names play no part in placement,
 * and a VM whose owner only restricts placement must still be checked).
 * NULL without error when nothing selects the VM. */
VcPolicy *vc_placement_resolve_policy(const VcDomainInfo *info, VcPolicySet *set,
				      gboolean issue_all, gint64 default_lifetime_s,
				      GError **error);

/* TRUE when POLICY restricts placement at all (trusted CAs or rules). */
gboolean vc_placement_is_restricted(const VcPolicy *policy);

/* The canonical text of POLICY's placement (nullable: none), what the
 * store records with a certificate (certs.placement) and a handover is
 * judged by: one line per trusted host CA "trust-host-ca=FP" (64 lower-case
 * hex digits) in sorted order, then one line per rule
 * "require=KEY=V1|V2" (values sorted, duplicates dropped; rules sorted),
 * each ending in "\n". "" for an unrestricted placement. check-on-start is
 * not part of it. Equal placements give equal texts. */
char *vc_placement_to_canonical(const VcPolicy *policy);
/* Parses the canonical text back into a placement-only policy (names and
 * delivery unset). "" gives an unrestricted one. VC_ERROR_INVALID_DATA
 * naming the line for anything else than what vc_placement_to_canonical()
 * writes (order is not checked). */
VcPolicy *vc_placement_from_canonical(const char *text, GError **error);

G_END_DECLS
