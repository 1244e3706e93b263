/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The syntax shared by a VM's placement policy (trust-host-ca, require) and a
 * host certificate's identity (policy/vc-placement.h): one place, so that
 * every value a rule can name can also be carried by a host certificate.
 */

#include <glib.h>

G_BEGIN_DECLS

/* Longest host attribute name or value, in octets. */
#define VC_HOST_ATTR_MAX 255

/* TRUE when KEY is a host attribute name: [a-z0-9-]+, at most
 * VC_HOST_ATTR_MAX octets. */
gboolean vc_host_attr_key_is_valid(const char *key);
/* TRUE when VALUE is a host attribute value: [A-Za-z0-9._:-]+, at most
 * VC_HOST_ATTR_MAX octets. */
gboolean vc_host_attr_value_is_valid(const char *value);

/* A SHA-256 fingerprint: 64 hex digits, colons allowed as printed by
 * `openssl x509 -fingerprint -sha256`. Returns it in lower case without
 * colons; VC_ERROR_INVALID_DATA otherwise. */
char *vc_host_attr_fingerprint_normalize(const char *fingerprint, GError **error);

G_END_DECLS
