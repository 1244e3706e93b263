/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-reason.h"

#include "vc-error.h"

/* RFC 5280 5.3.1 CRLReason, spelled as in its ASN.1 module. */
static const struct {
	int reason;
	const char *name;
} reason_names[] = {
    {VC_REASON_UNSPECIFIED, "unspecified"},
    {VC_REASON_KEY_COMPROMISE, "keyCompromise"},
    {VC_REASON_CA_COMPROMISE, "cACompromise"},
    {VC_REASON_AFFILIATION_CHANGED, "affiliationChanged"},
    {VC_REASON_SUPERSEDED, "superseded"},
    {VC_REASON_CESSATION_OF_OPERATION, "cessationOfOperation"},
    {VC_REASON_CERTIFICATE_HOLD, "certificateHold"},
    {VC_REASON_PRIVILEGE_WITHDRAWN, "privilegeWithdrawn"},
    {VC_REASON_AA_COMPROMISE, "aACompromise"},
};

const char *
vc_reason_to_string(int reason)
{
	for (gsize i = 0; i < G_N_ELEMENTS(reason_names); i++) {
		if (reason_names[i].reason == reason)
			return reason_names[i].name;
	}
	return NULL;
}

gboolean
vc_reason_from_string(const char *s, int *ret_reason, GError **error)
{
	for (gsize i = 0; s != NULL && i < G_N_ELEMENTS(reason_names); i++) {
		if (g_ascii_strcasecmp(s, reason_names[i].name) == 0) {
			if (ret_reason != NULL)
				*ret_reason = reason_names[i].reason;
			return TRUE;
		}
	}
	g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
		    "unknown revocation reason '%s' (one of unspecified, keyCompromise, "
		    "cACompromise, affiliationChanged, superseded, cessationOfOperation, "
		    "certificateHold, privilegeWithdrawn, aACompromise)",
		    s != NULL ? s : "");
	return FALSE;
}
