/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * This host's certificate as libvirt's and QEMU's TLS files: the same
 * certificate (EKU serverAuth + clientAuth) authenticates the migration
 * stream, so the host that passes the placement check is the host the
 * migration stream authenticates.
 */

#include <glib.h>

#include "vc-host.h"

G_BEGIN_DECLS

/* Writes the host certificate, key and CA bundle to the default paths of
 * libvirtd (/etc/pki/CA/cacert.pem, /etc/pki/libvirt/{server,client}cert.pem,
 * /etc/pki/libvirt/private/{server,client}key.pem) and QEMU
 * (/etc/pki/qemu/{ca-cert,server-cert,server-key,client-cert,client-key}.pem)
 * and, when HOST has the host CA's CRL, that CRL as /etc/pki/CA/cacrl.pem and
 * /etc/pki/qemu/ca-crl.pem (replaced without FORCE: run again after every
 * new CRL, so that libvirtd and QEMU refuse revoked peers) below ROOT ("/" or NULL for the real
 * system). Certificates 0644, libvirtd keys 0600, QEMU keys 0640 with group QEMU_GROUP (nullable:
 * root) since QEMU runs unprivileged. Existing files with other contents are replaced only with
 * FORCE. RET_WRITTEN (nullable) gets the paths written. */
gboolean vc_host_install_libvirt_tls(VcHost *host, const char *root, const char *qemu_group,
				     gboolean force, GPtrArray **ret_written, GError **error);

typedef struct {
	const char *root;	/* "/" or NULL: the real system */
	const char *qemu_group; /* nullable: root */
	/* nullable: libvirt's files (not QEMU's) go flat into this directory
	 * instead, as a pkipath= URI parameter, libvirtd.conf's
	 * ca_file/cert_file/key_file/crl_file or an unprivileged user's
	 * ~/.pki/libvirt want them: cacert.pem, cacrl.pem, clientcert.pem,
	 * clientkey.pem, servercert.pem, serverkey.pem */
	const char *pkipath;
	/* nullable: the user libvirt's files (keys 0600) belong to, for a
	 * libvirtd or client that does not run as root */
	const char *owner;
	gboolean force;
} VcHostTlsOptions;

/* vc_host_install_libvirt_tls() with every option */
gboolean vc_host_install_libvirt_tls_full(VcHost *host, const VcHostTlsOptions *opts,
					  GPtrArray **ret_written, GError **error);

G_END_DECLS
