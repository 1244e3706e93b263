/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by vc-host.c and vc-host-libvirt-tls.c only. */

#include "vc-host.h"

G_BEGIN_DECLS

struct _VcHost {
	X509 *cert;
	GPtrArray *extra;   /* X509*: what followed the leaf in its file */
	EVP_PKEY *key;	    /* nullable */
	GPtrArray *anchors; /* X509*: trusted host CA bundle; nullable */
	X509_CRL *crl;	    /* nullable */
	char *cert_pem;	    /* the file's certificates, re-encoded */
	char *ca_pem;	    /* nullable */
	char *fqdn;
	char *ca_fp;
};

G_END_DECLS
