/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Domain XML is written by whoever can define a VM: hostile input. */
#include <stdint.h>
#include <string.h>

#include "vc-domain-xml.h"

/* a host policy every VM falls under: metadata may only narrow it */
static const char host_policy[] =
    "[all]\nnames = {name}.vms.example.com\nmetadata-names = vms.example.com\n"
    "require = site=eu-west|eu-central\n"
    "trust-host-ca = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
    "lifetime = 2d\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(VcDomainInfo) info = NULL;
	g_autoptr(GHashTable) md = NULL;

	if (size > VC_DOMAIN_XML_MAX_SIZE + 1)
		return 0;
	info = vc_domain_info_parse((const char *)data, (gssize)size, NULL);
	if (info != NULL) {
		/* what the hook sends the daemon reads the same */
		g_autofree char *reduced =
		    vc_domain_xml_reduce((const char *)data, (gssize)size, NULL);
		g_autoptr(VcDomainInfo) again = NULL;
		g_assert(reduced != NULL);
		again = vc_domain_info_parse(reduced, -1, NULL);
		g_assert(again != NULL);
		g_assert(g_str_equal(again->name, info->name) &&
			 g_str_equal(again->uuid, info->uuid));
		g_assert(again->has_metadata == info->has_metadata);
		g_assert(g_hash_table_size(again->metadata) == g_hash_table_size(info->metadata));
		g_assert(g_strcmp0(again->nova_project, info->nova_project) == 0);
		/* the whole path a VM's XML takes: policy and names */
		g_autoptr(VcPolicy) p = NULL;
		const char *defaults[] = {"{name}.vms.example.com", NULL};
		p = vc_domain_info_resolve_policy(info, NULL, TRUE, defaults, 86400, NULL);
		if (p != NULL) {
			VcNameVars vars;
			g_auto(GStrv) names = NULL;
			g_autofree char *json = vc_policy_to_string(p);
			g_assert(json != NULL);
			vc_domain_info_get_name_vars(info, &vars);
			names = vc_name_expand_all((const char *const *)p->names, &vars, NULL);
			for (gsize i = 0; names != NULL && names[i] != NULL; i++)
				g_assert(vc_name_check_dns(names[i], NULL));
		}
		/* under host policy: whatever the metadata says, never wider */
		{
			g_autoptr(VcPolicySet) set = vc_policy_set_new();
			g_autoptr(VcPolicy) n = NULL;
			g_assert(vc_policy_set_load_data(set, "fuzz.conf", host_policy,
							 strlen(host_policy), NULL));
			n = vc_domain_info_resolve_policy(info, set, FALSE, NULL, 86400, NULL);
			if (n != NULL) {
				g_assert(n->lifetime_s <= 2 * 86400);
				g_assert(g_strv_length(n->trust_host_cas) == 1);
				for (guint i = 0; i < n->placement->len; i++) {
					const VcPlacementRule *r =
					    g_ptr_array_index(n->placement, i);
					if (strcmp(r->key, "site") != 0)
						continue;
					for (gsize v = 0; r->values[v] != NULL; v++)
						g_assert(strcmp(r->values[v], "eu-west") == 0 ||
							 strcmp(r->values[v], "eu-central") == 0);
				}
				for (gsize i = 0; n->names[i] != NULL; i++) {
					g_autofree char *l = g_ascii_strdown(n->names[i], -1);
					g_assert(g_str_has_suffix(l, ".vms.example.com") ||
						 strcmp(l, "vms.example.com") == 0);
				}
			}
		}
	}
	md = vc_domain_metadata_parse((const char *)data, (gssize)size, NULL);
	return 0;
}
