/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "vc-http-server.h"
#include "vc-ocsp.h"

G_BEGIN_DECLS

/* The OCSP responder's answer to the DER REQUEST, as the HTTP server's
 * ocsp callback returns it (the daemon's and virtcert-bench ocsp's). */
void vc_ocsp_http_reply(VcOcspResponder *ocsp, GBytes *request, VcHttpOcspReply *ret_reply);

G_END_DECLS
