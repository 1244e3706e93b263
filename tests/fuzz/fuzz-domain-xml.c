/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Domain XML is written by whoever can define a VM: hostile input. */
#include <stdint.h>

#include "vc-domain-xml.h"

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
	}
	md = vc_domain_metadata_parse((const char *)data, (gssize)size, NULL);
	return 0;
}
