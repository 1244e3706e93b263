/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>

#include "vc-policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(VcPolicySet) set = vc_policy_set_new();
	VcPolicySubject subject = {"web-1", "6f1d3c6a-3b1e-4c57-9f2a-2c1d5e9b7a10", "payments",
				   "2d1d6c80"};
	g_autoptr(GHashTable) map = NULL;

	if (!vc_policy_set_load_data(set, "fuzz.conf", (const char *)data, size, NULL))
		return 0;
	map = vc_policy_set_lookup(set, &subject, NULL);
	if (map != NULL) {
		g_autoptr(VcPolicy) p = vc_policy_new_from_map(map, "fuzz", 86400, NULL);
		if (p != NULL) {
			g_autofree char *json = vc_policy_to_string(p);
			g_assert(json != NULL && json[0] == '{');
		}
	}
	return 0;
}
