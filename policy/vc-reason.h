/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* RFC 5280 5.3.1 reason codes used by virtcert. */
typedef enum {
	VC_REASON_UNSPECIFIED = 0,
	VC_REASON_KEY_COMPROMISE = 1,
	VC_REASON_CA_COMPROMISE = 2,
	VC_REASON_AFFILIATION_CHANGED = 3,
	VC_REASON_SUPERSEDED = 4,
	VC_REASON_CESSATION_OF_OPERATION = 5,
	VC_REASON_CERTIFICATE_HOLD = 6,
	VC_REASON_PRIVILEGE_WITHDRAWN = 9,
	VC_REASON_AA_COMPROMISE = 10,
} VcRevocationReason;

/* "keyCompromise" <-> 1 ... (RFC 5280 names, case-insensitive on input). */
const char *vc_reason_to_string(int reason);
gboolean vc_reason_from_string(const char *s, int *ret_reason, GError **error);

G_END_DECLS
