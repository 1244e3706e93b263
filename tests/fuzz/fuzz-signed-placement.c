/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A signed placement is written by whoever can edit a domain's metadata:
 * hostile input for the parser, the canonical form and the CMS check. */
#include <stdint.h>

#include "vc-domain-xml.h"
#include "vc-placement-sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(VcSignedPlacement) sp = NULL;
	g_autofree char *uuid = NULL;
	g_autoptr(GBytes) canonical = NULL;

	if (size > VC_DOMAIN_XML_MAX_SIZE + 1)
		return 0;
	sp = vc_domain_placement_parse_document((const char *)data, (gssize)size, &uuid, NULL);
	if (sp == NULL)
		return 0;
	canonical = vc_signed_placement_canonical(
	    sp, uuid != NULL ? uuid : "6f1c3a52-9d41-4e07-8b2e-517ac09311e4", 0, NULL);
	if (sp->sig_der != NULL) {
		/* the whole check, against the fixture owner CA (what signed
		 * the seeds): valid or refused, never a crash */
		static VcOwnerTrust *trust;
		const char *ca = g_getenv("VC_FUZZ_OWNER_CA");
		g_autoptr(GBytes) signed_form = vc_signed_placement_canonical_signed(sp, NULL);
		if (trust == NULL && ca != NULL)
			trust = vc_owner_trust_new(ca, NULL);
		if (trust != NULL)
			(void)vc_placement_sig_verify(trust, sp, uuid, 0, NULL, NULL);
	}
	return 0;
}
