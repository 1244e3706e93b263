/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcert.conf is read by the daemon, the CLI and virtcert-hook (which
 * libvirtd runs as root): a mistyped or hostile file must give a clear
 * error, never a crash. The config parser reads a path, so each input is
 * written to a file in a private temporary directory first; what a file
 * that loads yields is then used as the daemon uses it (URLs, host paths,
 * the durations). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>

#include "vc-config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dir;
static char *path;

static void
cleanup(void)
{
	g_unlink(path);
	g_rmdir(dir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcConfig) config = NULL;

	if (dir == NULL) {
		dir = g_dir_make_tmp("vc-fuzz-config-XXXXXX", &error);
		g_assert_no_error(error);
		path = g_build_filename(dir, "virtcert.conf", NULL);
		atexit(cleanup);
	}
	if (size > 64 * 1024)
		return 0;
	/* no fsync: the file is only read back at once */
	if (!g_file_set_contents_full(path, (const char *)data, (gssize)size,
				      G_FILE_SET_CONTENTS_NONE, 0600, &error))
		g_error("fuzz-config: %s", error->message);
	config = vc_config_load(path, TRUE, &error);
	if (config == NULL) {
		g_assert(error != NULL && error->message != NULL);
		return 0;
	}
	g_assert(config->state_dir != NULL && config->policy_dir != NULL);
	vc_config_set_state_dir(config, "/var/lib/virtcert-fuzz");
	g_free(vc_config_get_ca_url(config, VC_CA_URL_CRL, "0123456789abcdef"));
	g_free(vc_config_get_ca_url(config, VC_CA_URL_OCSP, "0123456789abcdef"));
	g_free(vc_config_get_ca_url(config, VC_CA_URL_CA_ISSUERS, "0123456789abcdef"));
	{
		const char *which[] = {"cert", "key", "ca", "crl"};
		for (gsize i = 0; i < G_N_ELEMENTS(which); i++) {
			g_autofree char *p = vc_config_get_host_path(config, which[i]);
			g_assert(p != NULL);
		}
	}
	return 0;
}
