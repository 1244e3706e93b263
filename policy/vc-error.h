/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define VC_ERROR (vc_error_quark())

/* The one error domain of virtcert. The CLI maps codes to exit statuses with
 * vc_error_exit_status(): 1 usage, 2 refused by policy, 3 any other failure. */
typedef enum {
	VC_ERROR_FAILED,	 /* anything else */
	VC_ERROR_USAGE,		 /* bad command line or request */
	VC_ERROR_POLICY,	 /* refused by policy or name constraints */
	VC_ERROR_INVALID_NAME,	 /* a name cannot be made a valid DNS name */
	VC_ERROR_NAME_COLLISION, /* a name is already held by another VM */
	VC_ERROR_INVALID_DATA,	 /* malformed input: XML, policy file, CSR, JSON, certificate */
	VC_ERROR_NOT_FOUND,	 /* no such VM, serial, file */
	VC_ERROR_EXISTS,	 /* would overwrite something that exists */
	VC_ERROR_CRYPTO,	 /* OpenSSL failure, verification failure */
	VC_ERROR_STORE,		 /* SQLite failure */
	VC_ERROR_IO,		 /* file or socket I/O */
	VC_ERROR_LIBVIRT,	 /* libvirt call failed */
	VC_ERROR_GUEST,		 /* guest agent failure or hostile reply */
	VC_ERROR_UNAVAILABLE,	 /* daemon or peer not reachable */
} VcErrorCode;

GQuark vc_error_quark(void);
int vc_error_exit_status(const GError *error);
const char *vc_error_code_to_string(int code);
/* Inverse of vc_error_code_to_string(); unknown or NULL names give
 * VC_ERROR_FAILED, so a newer daemon's codes still map to a failure. */
VcErrorCode vc_error_code_from_string(const char *name);

G_END_DECLS
