/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "vc-name.h"

G_BEGIN_DECLS

typedef enum {
	VC_KEY_TYPE_EC_P256,
	VC_KEY_TYPE_ED25519,
	VC_KEY_TYPE_RSA_3072,
} VcKeyType;

typedef enum {
	VC_KEY_MODE_HOST,  /* key made on the host, sent once, never stored */
	VC_KEY_MODE_GUEST, /* guest makes key + CSR; host uses only the public key */
} VcKeyMode;

typedef enum {
	VC_ISSUE_ON_START,
	VC_ISSUE_ON_DEFINE,
} VcIssueOn;

/* The bounds of a leaf's lifetime, on every path (policy, --lifetime, the
 * control socket): VMs may live minutes (seed 000), so may their
 * certificates; 397 days is the CA/Browser Forum ceiling for TLS server
 * certificates. */
#define VC_POLICY_LIFETIME_MIN_S 60
#define VC_POLICY_LIFETIME_MAX_S (397 * 86400)

const char *vc_key_type_to_string(VcKeyType type);
gboolean vc_key_type_from_string(const char *s, VcKeyType *ret_type, GError **error);
const char *vc_key_mode_to_string(VcKeyMode mode);
const char *vc_issue_on_to_string(VcIssueOn on);

/* One placement rule: host attribute KEY must have one of VALUES. */
typedef struct {
	char *key;
	GStrv values;
} VcPlacementRule;

/* The effective policy of one VM. Every policy key has the same name in
 * policy.d files and (as a map entry) in domain metadata:
 *
 *   names          list of templates        ({name}.vms.example.com)
 *   key            ec-p256 | ed25519 | rsa-3072
 *   key-mode       host | guest
 *   lifetime       duration                 (24h)
 *   issue-on       start | define
 *   on-stop        keep | revoke
 *   cert-path, chain-path, key-path         guest paths (absolute)
 *   owner          user[:group] in the guest
 *   reload         command run in the guest after delivery
 *   trust-host-ca  list of SHA-256 fingerprints (hex) of host CAs
 *   require        list of "attr=v1|v2" placement rules
 *   check-on-start true | false (hook refuses a start outside placement)
 */
typedef struct {
	char *source; /* "policy.d/10-web.conf [web]" + " + domain metadata" */
	GStrv names;  /* templates, at least one */
	VcKeyType key_type;
	VcKeyMode key_mode;
	gint64 lifetime_s;
	VcIssueOn issue_on;
	gboolean revoke_on_stop;
	char *cert_path;
	char *chain_path;
	char *key_path;
	char *owner;	      /* NULL: root */
	char *reload;	      /* NULL: none */
	GStrv trust_host_cas; /* may be empty */
	GPtrArray *placement; /* of VcPlacementRule* */
	gboolean check_on_start;
	/* policy key -> which source set its value ("policy.d/50-web.conf
	 * [web]", "domain metadata", "... narrowed by domain metadata"); NULL
	 * when not tracked. Keys absent: the default. */
	GHashTable *sources;
} VcPolicy;

void vc_policy_free(VcPolicy *policy);
/* Only what placement decisions need (trusted host CAs, rules): small enough
 * to keep for every VM. */
VcPolicy *vc_policy_copy_placement(const VcPolicy *policy);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcPolicy, vc_policy_free)

/* Builds a policy from key -> GStrv map (see the key list above). Defaults
 * fill what the map lacks (names: "{uuid}.vms.invalid" is NOT a default: a
 * policy without names is an error). Unknown keys and bad values are errors
 * naming the key. */
VcPolicy *vc_policy_new_from_map(GHashTable *map, const char *source, gint64 default_lifetime_s,
				 GError **error);

/* Domain metadata META narrows the policy.d group's map HOST (merged into
 * HOST; NULL: no group selected the VM, then META is taken as it is), it
 * never widens it:
 *   names          META's templates must lie under BOUNDS (the group's
 *                  metadata-names suffixes; NULL: the subtrees of the group's
 *                  own name templates, see vc_policy_name_subtree()); a
 *                  group with neither gives metadata no names at all
 *   trust-host-ca  the intersection (META alone when HOST has none)
 *   require        HOST's rules are a floor: a rule on the same attribute
 *                  keeps the values both allow; others are added
 *   check-on-start, on-stop   the stricter (yes, revoke) wins
 *   lifetime       the shorter wins
 *   anything else  META's value
 * SOURCES (nullable) gets key -> who set it, HOST_SOURCE naming the group.
 * VC_ERROR_POLICY naming the key when META asks for more than HOST allows,
 * or an intersection is empty (a VM no host could run). */
gboolean vc_policy_map_narrow(GHashTable *host, GHashTable *meta, const char *host_source,
			      const char *const *bounds, GHashTable *sources, GError **error);
/* The subtree a name template NAME stands for, the domain every name it
 * expands to lies under: NAME without its first label and without every
 * label up to the last one holding a placeholder ("{name}.vms.example.com"
 * and "www.vms.example.com" -> "vms.example.com"). NULL when nothing is
 * left. */
char *vc_policy_name_subtree(const char *name);

/* Checks every entry of MAP (unknown keys, bad values) without requiring
 * names: what a policy.d group or domain metadata may hold on its own. */
gboolean vc_policy_map_validate(GHashTable *map, GError **error);
/* TRUE for the keys whose value is a list (names, trust-host-ca, require). */
gboolean vc_policy_key_is_list(const char *key);

/* A JSON object (one line, UTF-8), for `virtcert policy show`: keys as in
 * the list above, "lifetime" in seconds, "require" as
 * [{"attr": A, "values": [..]}], "owner"/"reload" null when unset. */
char *vc_policy_to_string(const VcPolicy *policy);

/* What a selector is matched against. */
typedef struct {
	const char *name;
	const char *uuid;
	const char *project;	/* nova project name, or NULL */
	const char *project_id; /* nova project id, or NULL */
} VcPolicySubject;

/* The loaded policy.d: an ordered list of groups. Files are read in name order
 * (*.conf only); in each file, groups in file order. A group selects VMs with
 * match-name (glob list), match-uuid (list), match-project (glob list of nova
 * project names or ids); a group with no match-* key matches every VM. The
 * first group that matches wins. A malformed file, or a group in it with an
 * unknown key (a typo) or a bad value, refuses the whole file with the error
 * "FILE:LINE: [GROUP] KEY: what is wrong": never half a file in force. */
typedef struct _VcPolicySet VcPolicySet;

VcPolicySet *vc_policy_set_new(void);
/* The metadata-names bounds (policy.d key metadata-names=SUFFIX;...) of
 * the group that selects SUBJECT, NULL when it sets none or no group
 * selects it. Free with g_strfreev(). */
GStrv vc_policy_set_lookup_bounds(VcPolicySet *set, const VcPolicySubject *subject);
void vc_policy_set_free(VcPolicySet *set);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcPolicySet, vc_policy_set_free)

/* A missing directory is an empty policy set, not an error. Returns FALSE
 * when the directory exists and cannot be read, or when any file in it is
 * refused (the error names every refused file, one a line): the caller
 * keeps the policy it had. */
gboolean vc_policy_set_load_dir(VcPolicySet *set, const char *dir, GError **error);
/* FILENAME is used in errors only. Returns FALSE, adding none of its
 * groups, if the file is refused (syntax error, unknown key, bad value),
 * with the error naming file, line, group and key. */
gboolean vc_policy_set_load_data(VcPolicySet *set, const char *filename, const char *data,
				 gsize len, GError **error);
/* Warnings collected while loading (never NULL; empty today: every problem
 * refuses its file instead, see vc_policy_set_load_data()). */
GPtrArray *vc_policy_set_get_warnings(VcPolicySet *set);
guint vc_policy_set_get_size(VcPolicySet *set);

/* The map of the first group matching SUBJECT, with its source in
 * ret_source; NULL (no error) when nothing matches. The returned map is a
 * new reference the caller may modify (e.g. merge metadata into it). */
GHashTable *vc_policy_set_lookup(VcPolicySet *set, const VcPolicySubject *subject,
				 char **ret_source);

/* Does any group set KEY (with TRUTHY: to a value that is not false, an
 * unparsable one counting as set)? For a caller that cannot tell which
 * group would select a VM (virtcert-hook with a domain XML it cannot read)
 * and must assume the worst. */
gboolean vc_policy_set_any_group_sets(VcPolicySet *set, const char *key, gboolean truthy);

/* A new empty map of key -> GStrv, the type the functions above use. */
GHashTable *vc_policy_map_new(void);
/* Copies every entry of SRC over DST (SRC wins). */
void vc_policy_map_merge(GHashTable *dst, GHashTable *src);

G_END_DECLS
