/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-error.h"

G_DEFINE_QUARK(virtcert - error - quark, vc_error)

int
vc_error_exit_status(const GError *error)
{
	if (error == NULL)
		return 0;
	if (error->domain != VC_ERROR)
		return 3;
	switch ((VcErrorCode)error->code) {
	case VC_ERROR_USAGE:
		return 1;
	case VC_ERROR_POLICY:
	case VC_ERROR_INVALID_NAME:
	case VC_ERROR_NAME_COLLISION:
		return 2;
	case VC_ERROR_FAILED:
	case VC_ERROR_INVALID_DATA:
	case VC_ERROR_NOT_FOUND:
	case VC_ERROR_EXISTS:
	case VC_ERROR_CRYPTO:
	case VC_ERROR_STORE:
	case VC_ERROR_IO:
	case VC_ERROR_LIBVIRT:
	case VC_ERROR_GUEST:
	case VC_ERROR_UNAVAILABLE:
	default:
		return 3;
	}
}

/* Stable names, used in JSON replies of the control socket. */
static const char *const vc_error_names[] = {
    [VC_ERROR_FAILED] = "failed",
    [VC_ERROR_USAGE] = "usage",
    [VC_ERROR_POLICY] = "policy",
    [VC_ERROR_INVALID_NAME] = "invalid-name",
    [VC_ERROR_NAME_COLLISION] = "name-collision",
    [VC_ERROR_INVALID_DATA] = "invalid-data",
    [VC_ERROR_NOT_FOUND] = "not-found",
    [VC_ERROR_EXISTS] = "exists",
    [VC_ERROR_CRYPTO] = "crypto",
    [VC_ERROR_STORE] = "store",
    [VC_ERROR_IO] = "io",
    [VC_ERROR_LIBVIRT] = "libvirt",
    [VC_ERROR_GUEST] = "guest",
    [VC_ERROR_UNAVAILABLE] = "unavailable",
};

const char *
vc_error_code_to_string(int code)
{
	if (code < 0 || (gsize)code >= G_N_ELEMENTS(vc_error_names) || vc_error_names[code] == NULL)
		return "failed";
	return vc_error_names[code];
}

VcErrorCode
vc_error_code_from_string(const char *name)
{
	if (name == NULL)
		return VC_ERROR_FAILED;
	for (gsize i = 0; i < G_N_ELEMENTS(vc_error_names); i++) {
		if (vc_error_names[i] != NULL && g_str_equal(vc_error_names[i], name))
			return (VcErrorCode)i;
	}
	return VC_ERROR_FAILED;
}
