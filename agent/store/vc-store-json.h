/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

#include "vc-store.h"

G_BEGIN_DECLS

/* The JSON shape of store records, shared by the CLI (offline) and the
 * daemon's control socket so both print the same thing. Times are RFC 3339 UTC. */
JsonNode *vc_cert_record_to_json(const VcCertRecord *rec);
JsonNode *vc_domain_record_to_json(const VcDomainRecord *rec);
char *vc_time_to_string(gint64 unix_seconds);

G_END_DECLS
