/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "vc-policy.h"
#include "vc-signed-placement.h"

G_BEGIN_DECLS

#define VC_DOMAIN_NS "urn:virtcert:domain:1"
#define VC_NOVA_NS "http://openstack.org/xmlns/libvirt/nova/1.1"

/* Caps on hostile domain XML (depth and value: inside <virtcert:vm> only). */
#define VC_DOMAIN_XML_MAX_SIZE (4 * 1024 * 1024)
#define VC_DOMAIN_XML_MAX_DEPTH 64
#define VC_DOMAIN_XML_MAX_VALUE 4096

/* What virtcert needs from a libvirt domain XML. */
typedef struct {
	char *name;
	char *uuid;			/* lower case */
	gboolean has_metadata;		/* a <virtcert:vm> element is present */
	gboolean has_guest_agent;	/* a virtio channel org.qemu.guest_agent.0 exists */
	gboolean guest_agent_connected; /* live XML: the agent in the guest is connected */
	GHashTable *metadata;		/* policy keys from <virtcert:vm> (key -> GStrv) */
	/* facts the daemon wrote into its own metadata */
	char *issued_serial;
	char *issuer_peer;
	/* OpenStack nova metadata (read only) */
	char *nova_instance;
	char *nova_project;
	char *nova_project_id;
	char *nova_user;
	char *nova_user_id;
	char *nova_flavor;
	/* the <virtcert:placement> element as written, with its signature
	 * (vc-signed-placement.h); NULL when the metadata has none */
	VcSignedPlacement *placement;
} VcDomainInfo;

void vc_domain_info_free(VcDomainInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcDomainInfo, vc_domain_info_free)

/* Parses a domain XML safely: no network, no DTD, no entities (a document
 * with a DOCTYPE declaration is refused; "<!DOCTYPE" inside CDATA or a
 * comment is text), a size cap (VC_DOMAIN_XML_MAX_SIZE, libvirt's remote
 * string limit), control characters in the domain's name refused. The rest
 * of the document is read as libvirt accepts it (libxml2's own limits):
 * the depth and value-length caps apply only inside the virtcert element,
 * and nova's metadata is taken as written. The <virtcert:vm> element (namespace
 * urn:virtcert:domain:1, any prefix) is read as:
 *
 *   <virtcert:vm xmlns:virtcert="urn:virtcert:domain:1">
 *     <virtcert:name>{name}.vms.example.com</virtcert:name>      (repeatable)
 *     <virtcert:key type="ec-p256" mode="host"/>
 *     <virtcert:lifetime>24h</virtcert:lifetime>
 *     <virtcert:issue on="start"/>
 *     <virtcert:stop action="keep"/>
 *     <virtcert:delivery cert="/etc/..." chain="..." key="..." owner="root" reload="..."/>
 *     <virtcert:placement check-on-start="no">
 *       <virtcert:trust-ca>SHA256 HEX</virtcert:trust-ca>        (repeatable)
 *       <virtcert:require attr="site">eu-west|eu-central</virtcert:require>
 *       <virtcert:signature vm="UUID" not-after="T">BASE64</virtcert:signature>
 *     </virtcert:placement>
 *     <virtcert:issued serial="..." peer="https://host:port"/>  (written by the daemon)
 *   </virtcert:vm>
 *
 * Unknown elements or attributes in the virtcert namespace are errors naming
 * them, as is a second copy of any element but <name>; elements in foreign
 * namespaces inside <virtcert:vm> are ignored. Values (durations, paths, ...)
 * are checked by vc_domain_info_resolve_policy(), which names the policy key.
 * nova metadata is read in both the 1.1 and the older 1.0 namespace.
 * Errors use VC_ERROR_INVALID_DATA. */
VcDomainInfo *vc_domain_info_parse(const char *xml, gssize len, GError **error);

/* What a placement decision reads of a domain XML, and nothing else: a
 * <domain> with its <name>, <uuid> and, in <metadata>, the <virtcert:vm>
 * and nova <instance> elements. vc_domain_info_parse() of the result gives
 * the same name, UUID, policy and nova facts; it is small enough for a
 * control-socket request however large the domain XML (descriptions, other
 * applications' metadata, hundreds of devices). Fails as
 * vc_domain_info_parse() does. */
char *vc_domain_xml_reduce(const char *xml, gssize len, GError **error);

/* Parses just a <virtcert:vm> element (what virDomainGetMetadata returns). */
GHashTable *vc_domain_metadata_parse(const char *xml, gssize len, GError **error);

/* A VM's placement from a stand-alone document, for the offline tools and
 * the fuzz target: a <virtcert:placement> element, a <virtcert:vm>
 * metadata element (with or without namespace, as `virsh metadata` prints
 * it) or a whole domain XML, read by the same strict parser. RET_UUID
 * (nullable) receives the domain's UUID for a domain XML, else NULL. A
 * document without a placement gives one with present FALSE. */
VcSignedPlacement *vc_domain_placement_parse_document(const char *xml, gssize len, char **ret_uuid,
						      GError **error);

/* The daemon's facts in its own element: VM_XML (the <vm> element as
 * virDomainGetMetadata returns it, without namespace, or with one; NULL or ""
 * for none) with its <issued> child set to SERIAL and PEER (NULL: attribute
 * removed). Everything else in the element is kept. The result is in the form
 * virDomainSetMetadata takes (no namespace: libvirt adds its own). An element
 * that is not valid virtcert metadata is refused, never rewritten. */
char *vc_domain_metadata_set_issued(const char *vm_xml, const char *serial, const char *peer,
				    GError **error);

/* The effective policy: the first policy.d group that matches, with the
 * domain's metadata merged over it. NULL without error when neither selects
 * the VM (and ISSUE_ALL is FALSE); with ISSUE_ALL an empty map is used and
 * DEFAULT_NAMES fill "names" when nothing else does. */
VcPolicy *vc_domain_info_resolve_policy(const VcDomainInfo *info, VcPolicySet *set,
					gboolean issue_all, const char *const *default_names,
					gint64 default_lifetime_s, GError **error);

/* Template variables for this domain. The strings belong to INFO. */
void vc_domain_info_get_name_vars(const VcDomainInfo *info, VcNameVars *ret_vars);

G_END_DECLS
