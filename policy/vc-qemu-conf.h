/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * libvirt's qemu.conf, read for the migration TLS settings only
 * ([placement] require-tls, docs/host-trust.md).
 *
 * libvirt gives the destination's hook the domain XML and nothing of the
 * migration's parameters, so whether a migration uses TLS cannot be seen
 * where virtcert decides. What can be checked is this host's libvirt:
 * migrate_tls_force = 1 makes it refuse every migration it sends without
 * TLS, and migrate_tls_x509_verify (default: default_tls_x509_verify, whose
 * default is 1) makes its QEMU demand a certificate from the peer.
 */

#include <glib.h>

G_BEGIN_DECLS

/* The settings that matter, as read. */
typedef struct {
	gboolean tls_force;  /* migrate_tls_force = 1 */
	gboolean tls_verify; /* migrate_tls_x509_verify, else default_tls_x509_verify, else 1 */
	char *cert_dir;	     /* migrate_tls_x509_cert_dir, else default_..., else /etc/pki/qemu */
} VcQemuConf;

/* Parses qemu.conf syntax (libvirt's virConf: KEY = VALUE, VALUE an integer,
 * a "string" or a [list], '#' comments). Unknown keys are ignored. */
VcQemuConf *vc_qemu_conf_parse(const char *text, const char *what, GError **error);
VcQemuConf *vc_qemu_conf_load(const char *path, GError **error);
void vc_qemu_conf_free(VcQemuConf *conf);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcQemuConf, vc_qemu_conf_free)

/* Does the qemu.conf at PATH make this host migrate only over verified TLS:
 * migrate_tls_force = 1, peer verification on, and a certificate directory
 * holding ca-cert.pem, server-cert.pem and client-cert.pem? FALSE with
 * RET_REASON naming what is missing (and the file). */
gboolean vc_qemu_conf_check_tls(const char *path, char **ret_reason);

G_END_DECLS
