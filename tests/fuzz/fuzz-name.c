/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Input: "VALUE\nTEMPLATE"; VALUE is used for every template variable. */
#include <stdint.h>
#include <string.h>

#include "vc-name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autofree char *s = g_strndup((const char *)data, size);
	char *nl = strchr(s, '\n');
	const char *tmpl = nl != NULL ? nl + 1 : "{name}.{project}.example.com";
	g_autofree char *label = NULL;

	if (nl != NULL)
		*nl = '\0';
	label = vc_name_label_from_string(s, NULL);
	if (label != NULL) {
		/* the contract: a label is always usable in a dNSName */
		g_autofree char *fqdn = g_strconcat(label, ".example.com", NULL);
		g_autofree char *again = vc_name_label_from_string(s, NULL);
		g_assert(strlen(label) <= VC_NAME_LABEL_MAX);
		g_assert(vc_name_check_dns(fqdn, NULL));
		g_assert(g_strcmp0(label, again) == 0);
	}
	{
		VcNameVars vars = {s, s, s, s, s, s};
		const char *tmpls[] = {tmpl, "{uuid}.example.com", NULL};
		g_auto(GStrv) names = vc_name_expand_all(tmpls, &vars, NULL);
		for (gsize i = 0; names != NULL && names[i] != NULL; i++)
			g_assert(vc_name_check_dns(names[i], NULL));
		(void)vc_name_in_subtree(s, tmpl);
	}
	return 0;
}
