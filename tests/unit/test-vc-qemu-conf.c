/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libvirt's qemu.conf as read for [placement] require-tls
 * (policy/vc-qemu-conf.c). */
#include <string.h>

#include <glib/gstdio.h>

#include "vc-error.h"
#include "vc-qemu-conf.h"

static VcQemuConf *
parse(const char *text, GError **error)
{
	return vc_qemu_conf_parse(text, "qemu.conf", error);
}

static void
test_defaults(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcQemuConf) c = parse("# nothing set\n\n", &error);

	g_assert_no_error(error);
	g_assert_false(c->tls_force);
	/* libvirt's default_tls_x509_verify is 1 */
	g_assert_true(c->tls_verify);
	g_assert_cmpstr(c->cert_dir, ==, "/etc/pki/qemu");
}

static void
test_settings(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcQemuConf) c = NULL;
	g_autoptr(VcQemuConf) d = NULL;
	g_autoptr(VcQemuConf) e = NULL;

	c = parse("default_tls_x509_cert_dir = \"/d\"\n"
		  "migrate_tls_x509_cert_dir = '/m'   # the migration's own\n"
		  "migrate_tls_force = 1\n"
		  "security_driver = [ \"selinux\",\n  \"dac\" ]\n"
		  "cgroup_device_acl = [\n    \"/dev/null\", \"/dev/full\",\n]\n"
		  "max_files = 32768;\n",
		  &error);
	g_assert_no_error(error);
	g_assert_true(c->tls_force);
	g_assert_true(c->tls_verify);
	g_assert_cmpstr(c->cert_dir, ==, "/m");
	/* migrate_tls_x509_verify falls back on default_tls_x509_verify */
	d = parse("default_tls_x509_verify = 0\ndefault_tls_x509_cert_dir = \"/d\"\n", &error);
	g_assert_no_error(error);
	g_assert_false(d->tls_verify);
	g_assert_cmpstr(d->cert_dir, ==, "/d");
	e = parse("default_tls_x509_verify = 0\nmigrate_tls_x509_verify = 1\n"
		  "migrate_tls_force = 0\n",
		  &error);
	g_assert_no_error(error);
	g_assert_true(e->tls_verify);
	g_assert_false(e->tls_force);
}

static void
test_refused(void)
{
	static const struct {
		const char *text;
		const char *msg;
	} cases[] = {
	    {"migrate_tls_force 1\n", "line 1: expected '='"},
	    {"a = 1\nmigrate_tls_force = \"1\n", "line 2: a string is not closed"},
	    {"x = [1, 2\n", "a list is not closed"},
	    {"x = \n", "line 1: a value is missing"},
	    {"= 1\n", "expected a setting name"},
	    {"x = 1 2\n", "more than one value on a line"},
	    {"x = yes\n", "expected a number"},
	    {"x = [[[[[[1]]]]]]\n", "nested too deep"},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(VcQemuConf) c = parse(cases[i].text, &error);
		g_assert_null(c);
		g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
		if (strstr(error->message, cases[i].msg) == NULL)
			g_error("\"%s\": \"%s\" lacks \"%s\"", cases[i].text, error->message,
				cases[i].msg);
	}
}

static void
test_check_tls(void)
{
	g_autofree char *dir = g_dir_make_tmp("vc-qemu-conf-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "qemu.conf", NULL);
	g_autofree char *pki = g_build_filename(dir, "pki", NULL);
	g_autofree char *conf = NULL;
	g_autofree char *why = NULL;
	static const char *const files[] = {"ca-cert.pem", "server-cert.pem", "client-cert.pem"};

	g_assert_false(vc_qemu_conf_check_tls(path, &why));
	g_assert_nonnull(strstr(why, "cannot read libvirt's qemu.conf"));
	g_clear_pointer(&why, g_free);
	g_assert_cmpint(g_mkdir(pki, 0755), ==, 0);
	conf = g_strdup_printf("migrate_tls_x509_cert_dir = \"%s\"\nmigrate_tls_force = 1\n", pki);
	g_assert_true(g_file_set_contents(path, conf, -1, NULL));
	g_assert_false(vc_qemu_conf_check_tls(path, &why));
	g_assert_nonnull(strstr(why, "has no ca-cert.pem, server-cert.pem, client-cert.pem"));
	g_clear_pointer(&why, g_free);
	for (gsize i = 0; i < G_N_ELEMENTS(files); i++) {
		g_autofree char *f = g_build_filename(pki, files[i], NULL);
		g_assert_true(g_file_set_contents(f, "", 0, NULL));
	}
	g_assert_true(vc_qemu_conf_check_tls(path, &why));
	g_assert_null(why);
	for (gsize i = 0; i < G_N_ELEMENTS(files); i++) {
		g_autofree char *f = g_build_filename(pki, files[i], NULL);
		g_unlink(f);
	}
	g_rmdir(pki);
	g_unlink(path);
	g_rmdir(dir);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qemu-conf/defaults", test_defaults);
	g_test_add_func("/qemu-conf/settings", test_settings);
	g_test_add_func("/qemu-conf/refused", test_refused);
	g_test_add_func("/qemu-conf/check-tls", test_check_tls);
	return g_test_run();
}
