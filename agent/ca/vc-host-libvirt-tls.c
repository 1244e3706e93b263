/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* This host's certificate, key and trusted host CA as libvirt's and QEMU's
 * TLS files, for migration. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <openssl/crypto.h>

#include "vc-ca.h"
#include "vc-error.h"
#include "vc-host-libvirt-tls.h"
#include "vc-host-private.h"

typedef enum {
	VC_HOST_TLS_CA,
	VC_HOST_TLS_CERT,
	VC_HOST_TLS_KEY,
	VC_HOST_TLS_CRL, /* written only when a host CA CRL is installed */
} VcHostTlsKind;

typedef struct {
	const char *path;
	VcHostTlsKind kind;
	int mode;
	gboolean qemu_group;
	/* libvirt's own files: their name in a pkipath= directory (NULL: QEMU's) */
	const char *pki_name;
} VcHostTlsFile;

/* libvirt's default pki paths (docs/kbase/tlscerts.rst) and QEMU's default
 * default_tls_x509_cert_dir /etc/pki/qemu (qemu.conf) */
static const VcHostTlsFile vc_host_libvirt_tls_files[] = {
    {"etc/pki/CA/cacert.pem", VC_HOST_TLS_CA, 0644, FALSE, "cacert.pem"},
    /* libvirt's revocation checks read cacrl.pem on both sides of its own
     * connections (virnettlscontext.c loads the CRL into the server's and
     * the client's credentials); QEMU's tls-creds-x509 loads ca-crl.pem
     * for its server side only */
    {"etc/pki/CA/cacrl.pem", VC_HOST_TLS_CRL, 0644, FALSE, "cacrl.pem"},
    {"etc/pki/qemu/ca-crl.pem", VC_HOST_TLS_CRL, 0644, FALSE, NULL},
    {"etc/pki/libvirt/servercert.pem", VC_HOST_TLS_CERT, 0644, FALSE, "servercert.pem"},
    {"etc/pki/libvirt/clientcert.pem", VC_HOST_TLS_CERT, 0644, FALSE, "clientcert.pem"},
    {"etc/pki/libvirt/private/serverkey.pem", VC_HOST_TLS_KEY, 0600, FALSE, "serverkey.pem"},
    {"etc/pki/libvirt/private/clientkey.pem", VC_HOST_TLS_KEY, 0600, FALSE, "clientkey.pem"},
    {"etc/pki/qemu/ca-cert.pem", VC_HOST_TLS_CA, 0644, FALSE, NULL},
    {"etc/pki/qemu/server-cert.pem", VC_HOST_TLS_CERT, 0644, FALSE, NULL},
    {"etc/pki/qemu/client-cert.pem", VC_HOST_TLS_CERT, 0644, FALSE, NULL},
    /* QEMU runs as an unprivileged user and reads its keys itself */
    {"etc/pki/qemu/server-key.pem", VC_HOST_TLS_KEY, 0640, TRUE, NULL},
    {"etc/pki/qemu/client-key.pem", VC_HOST_TLS_KEY, 0640, TRUE, NULL},
};

static gboolean
vc_host_libvirt_tls_same_contents(const char *path, const char *data, gsize len)
{
	g_autofree char *old = NULL;
	gsize old_len = 0;
	gboolean same;

	if (!g_file_get_contents(path, &old, &old_len, NULL))
		return FALSE;
	same = old_len == len && memcmp(old, data, len) == 0;
	OPENSSL_cleanse(old, old_len);
	return same;
}

static const char *
vc_host_libvirt_tls_data(VcHost *host, VcHostTlsKind kind, const char *key_pem, const char *crl_pem)
{
	switch (kind) {
	case VC_HOST_TLS_CA:
		return host->ca_pem;
	case VC_HOST_TLS_CERT:
		return host->cert_pem;
	case VC_HOST_TLS_KEY:
		return key_pem;
	case VC_HOST_TLS_CRL:
	default:
		return crl_pem;
	}
}

/* where F goes: below the root, or libvirt's files flat in the pkipath */
static char *
vc_host_libvirt_tls_path(const VcHostTlsFile *f, const VcHostTlsOptions *opts)
{
	if (opts->pkipath != NULL && f->pki_name != NULL)
		return g_build_filename(opts->pkipath, f->pki_name, NULL);
	return g_build_filename(opts->root != NULL ? opts->root : "/", f->path, NULL);
}

gboolean
vc_host_install_libvirt_tls_full(VcHost *host, const VcHostTlsOptions *opts,
				 GPtrArray **ret_written, GError **error)
{
	g_autoptr(GPtrArray) written = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) conflicts = g_ptr_array_new_with_free_func(g_free);
	char *key_pem = NULL;
	g_autofree char *crl_pem = NULL;
	gid_t gid = 0;
	uid_t owner_uid = (uid_t)-1;
	gid_t owner_gid = (gid_t)-1;
	gboolean ok = TRUE;

	g_return_val_if_fail(host != NULL && opts != NULL, FALSE);
	if (host->key == NULL || host->ca_pem == NULL) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "the host certificate needs its key and the trusted host CA");
		return FALSE;
	}
	if (opts->qemu_group != NULL) {
		struct group *gr = getgrnam(opts->qemu_group);
		if (gr == NULL) {
			g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "no group \"%s\"",
				    opts->qemu_group);
			return FALSE;
		}
		gid = gr->gr_gid;
	}
	if (opts->owner != NULL) {
		struct passwd *pw = getpwnam(opts->owner);
		if (pw == NULL) {
			g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "no user \"%s\"",
				    opts->owner);
			return FALSE;
		}
		owner_uid = pw->pw_uid;
		owner_gid = pw->pw_gid;
	}
	if (host->crl != NULL && (crl_pem = vc_crl_to_pem(host->crl, error)) == NULL)
		return FALSE;
	key_pem = vc_key_to_pem(host->key, error);
	if (key_pem == NULL)
		return FALSE;

	/* all or nothing: look for conflicts before writing anything */
	for (gsize i = 0; i < G_N_ELEMENTS(vc_host_libvirt_tls_files); i++) {
		const VcHostTlsFile *f = &vc_host_libvirt_tls_files[i];
		g_autofree char *path = vc_host_libvirt_tls_path(f, opts);
		const char *data = vc_host_libvirt_tls_data(host, f->kind, key_pem, crl_pem);
		/* a CRL is replaced by a newer one of the same host CA: no
		 * --force needed to refresh it */
		if (data == NULL || f->kind == VC_HOST_TLS_CRL)
			continue;
		if (!opts->force && g_file_test(path, G_FILE_TEST_EXISTS) &&
		    !vc_host_libvirt_tls_same_contents(path, data, strlen(data)))
			g_ptr_array_add(conflicts, g_steal_pointer(&path));
	}
	if (conflicts->len > 0) {
		g_autoptr(GString) s = g_string_new(NULL);
		for (guint i = 0; i < conflicts->len; i++)
			g_string_append_printf(s, "%s%s", i > 0 ? ", " : "",
					       (const char *)g_ptr_array_index(conflicts, i));
		g_set_error(error, VC_ERROR, VC_ERROR_EXISTS,
			    "other TLS files are installed (%s): --force replaces them", s->str);
		vc_secret_free(key_pem);
		return FALSE;
	}

	for (gsize i = 0; ok && i < G_N_ELEMENTS(vc_host_libvirt_tls_files); i++) {
		const VcHostTlsFile *f = &vc_host_libvirt_tls_files[i];
		g_autofree char *path = vc_host_libvirt_tls_path(f, opts);
		g_autofree char *dir = g_path_get_dirname(path);
		const char *data = vc_host_libvirt_tls_data(host, f->kind, key_pem, crl_pem);
		gboolean libvirts = f->pki_name != NULL;
		/* libvirt's private/ holds keys only: not listable by others */
		int dir_mode = g_str_has_suffix(dir, "/private") ? 0700 : 0755;

		if (data == NULL)
			continue;
		if (g_mkdir_with_parents(dir, dir_mode) < 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot create %s: %s", dir,
				    g_strerror(errno));
			ok = FALSE;
			break;
		}
		/* written with the final mode, then given to the group (or the
		 * owner): the key is never readable by more than intended */
		ok = vc_file_write_atomic(path, data, strlen(data), f->mode, error);
		if (ok && f->qemu_group && opts->qemu_group != NULL &&
		    chown(path, (uid_t)-1, gid) < 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot give %s to group %s: %s",
				    path, opts->qemu_group, g_strerror(errno));
			ok = FALSE;
		}
		if (ok && libvirts && opts->owner != NULL &&
		    chown(path, owner_uid, owner_gid) < 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot give %s to user %s: %s",
				    path, opts->owner, g_strerror(errno));
			ok = FALSE;
		}
		if (ok)
			g_ptr_array_add(written, g_steal_pointer(&path));
	}
	vc_secret_free(key_pem);
	if (!ok)
		return FALSE;
	if (ret_written != NULL)
		*ret_written = g_steal_pointer(&written);
	return TRUE;
}

gboolean
vc_host_install_libvirt_tls(VcHost *host, const char *root, const char *qemu_group, gboolean force,
			    GPtrArray **ret_written, GError **error)
{
	const VcHostTlsOptions opts = {.root = root, .qemu_group = qemu_group, .force = force};
	return vc_host_install_libvirt_tls_full(host, &opts, ret_written, error);
}
