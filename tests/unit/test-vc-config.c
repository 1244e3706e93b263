/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib/gstdio.h>
#include <string.h>

#include "vc-config.h"
#include "vc-error.h"
#include "vc-test-util.h"

typedef struct {
	char *dir;
	char *path;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	f->dir = vc_test_dir_make("vc-config-XXXXXX");
	f->path = g_build_filename(f->dir, "virtcert.conf", NULL);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	vc_test_dir_remove(f->dir);
	g_free(f->path);
	g_free(f->dir);
}

static VcConfig *
load_text(Fixture *f, const char *text, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_assert_true(g_file_set_contents(f->path, text, -1, &local));
	return vc_config_load(f->path, TRUE, error);
}

static void
assert_defaults(const VcConfig *c)
{
	/* the build's directories (policy/meson.build): /var/lib/virtcert and
	 * /etc/virtcert/policy.d with --localstatedir=/var --sysconfdir=/etc */
	g_assert_cmpstr(c->state_dir, ==, VC_DEFAULT_STATE_DIR);
	g_assert_cmpstr(c->policy_dir, ==, VC_DEFAULT_POLICY_DIR);
	g_assert_cmpstr(c->libvirt_uri, ==, "qemu:///system");
	g_assert_cmpstr(c->control_socket, ==, VC_DEFAULT_CONTROL_SOCKET);
	g_assert_cmpstr(c->control_group, ==, "virtcert");
	g_assert_cmpstr(c->http_address, ==, "127.0.0.1:8458");
	g_assert_false(c->issue_all);
	g_assert_cmpint(c->reconcile_interval_s, ==, 300);
	/* no URL for certificates unless the administrator sets one */
	g_assert_null(c->public_url);
	g_assert_null(c->crl_url);
	g_assert_null(c->ocsp_url);
	g_assert_null(c->ca_issuers_url);
	for (int k = VC_CA_URL_CRL; k <= VC_CA_URL_CA_ISSUERS; k++)
		g_assert_null(vc_config_get_ca_url(c, k, "0123abcd"));
	g_assert_cmpint(c->crl_validity_s, ==, 86400);
	g_assert_cmpint(c->default_lifetime_s, ==, 86400);
	g_assert_cmpint(c->backdate_s, ==, 300);
	g_assert_cmpint(c->hook_timeout_ms, ==, 2000);
	g_assert_false(c->hook_fail_open);
	g_assert_cmpint(c->http_max_connections, ==, 256);
	g_assert_cmpint(c->http_header_timeout_ms, ==, 10000);
	g_assert_cmpint(c->http_idle_timeout_ms, ==, 30000);
	g_assert_cmpint(c->http_request_timeout_ms, ==, 30000);
	g_assert_cmpint(c->peer_max_connections, ==, 64);
	g_assert_cmpint(c->control_max_connections, ==, 64);
	g_assert_cmpint(c->control_timeout_ms, ==, 10000);
}

static void
test_defaults(void)
{
	g_autoptr(VcConfig) c = vc_config_new_default();
	g_assert_null(c->path);
	assert_defaults(c);
	vc_config_set_state_dir(c, "/tmp/x");
	g_assert_cmpstr(c->state_dir, ==, "/tmp/x");
}

static void
test_missing(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcConfig) c = vc_config_load(f->path, FALSE, &error);
	g_autoptr(VcConfig) c2 = NULL;
	g_assert_no_error(error);
	g_assert_nonnull(c);
	g_assert_null(c->path);
	assert_defaults(c);
	c2 = vc_config_load(f->path, TRUE, &error);
	g_assert_null(c2);
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
}

static void
test_full(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcConfig) c = load_text(f,
					  "# comment\n"
					  "[daemon]\n"
					  "state-dir = state\n"
					  "policy-dir = /srv/policy.d\n"
					  "libvirt-uri = qemu:///session\n"
					  "control-socket = run/control.sock\n"
					  "control-group = wheel\n"
					  "http-address = [::1]:9000\n"
					  "issue-all = true\n"
					  "reconcile-interval = 15m\n"
					  "[ca]\n"
					  "crl-url = https://pki.example.com/{ca}.crl\n"
					  "ocsp-url = https://pki.example.com/ocsp\n"
					  "crl-validity = 7d\n"
					  "default-lifetime = 12h\n"
					  "backdate = 0\n"
					  "[hook]\n"
					  "timeout = 500\n"
					  "fail-open = yes\n",
					  &error);
	g_autofree char *state = g_build_filename(f->dir, "state", NULL);
	g_autofree char *sock = g_build_filename(f->dir, "run", "control.sock", NULL);
	g_assert_no_error(error);
	g_assert_cmpstr(c->path, ==, f->path);
	/* relative paths are relative to the configuration file */
	g_assert_cmpstr(c->state_dir, ==, state);
	g_assert_cmpstr(c->control_socket, ==, sock);
	g_assert_cmpstr(c->policy_dir, ==, "/srv/policy.d");
	g_assert_cmpstr(c->libvirt_uri, ==, "qemu:///session");
	g_assert_cmpstr(c->control_group, ==, "wheel");
	g_assert_cmpstr(c->http_address, ==, "[::1]:9000");
	g_assert_true(c->issue_all);
	g_assert_cmpint(c->reconcile_interval_s, ==, 900);
	g_assert_cmpstr(c->crl_url, ==, "https://pki.example.com/{ca}.crl");
	g_assert_cmpint(c->crl_validity_s, ==, 7 * 86400);
	g_assert_cmpint(c->default_lifetime_s, ==, 12 * 3600);
	g_assert_cmpint(c->backdate_s, ==, 0);
	g_assert_cmpint(c->hook_timeout_ms, ==, 500);
	g_assert_true(c->hook_fail_open);
}

static void
test_partial(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcConfig) c =
	    load_text(f,
		      "[hook]\ntimeout = 3s\n[daemon]\nhttp-address =\n"
		      "[ca]\nocsp-url =\n"
		      "[peer]\naddress = 0.0.0.0:8459\nurl = https://a.example:8459\n"
		      "handover-grace = 2m\nmax-connections = 8\n"
		      "[http]\nmax-connections = 1000\nheader-timeout = 2s\n"
		      "idle-timeout = 500\nrequest-timeout = 45s\n"
		      "[daemon]\ncontrol-max-connections = 16\ncontrol-timeout = 1500ms\n",
		      &error);
	g_assert_no_error(error);
	g_assert_cmpint(c->hook_timeout_ms, ==, 3000);
	g_assert_cmpstr(c->http_address, ==, "");
	/* an empty URL means none: no OCSP URL in certificates */
	g_assert_cmpstr(c->ocsp_url, ==, "");
	g_assert_null(vc_config_get_ca_url(c, VC_CA_URL_OCSP, "0123abcd"));
	g_assert_cmpstr(c->peer_address, ==, "0.0.0.0:8459");
	g_assert_cmpstr(c->peer_url, ==, "https://a.example:8459");
	g_assert_cmpint(c->handover_grace_s, ==, 120);
	g_assert_cmpint(c->peer_max_connections, ==, 8);
	g_assert_cmpint(c->http_max_connections, ==, 1000);
	g_assert_cmpint(c->http_header_timeout_ms, ==, 2000);
	g_assert_cmpint(c->http_idle_timeout_ms, ==, 500);
	g_assert_cmpint(c->http_request_timeout_ms, ==, 45000);
	g_assert_cmpint(c->control_max_connections, ==, 16);
	g_assert_cmpint(c->control_timeout_ms, ==, 1500);
	g_assert_cmpstr(c->libvirt_uri, ==, "qemu:///system");
	/* [ocsp] untouched: the responder signs, answers live an hour */
	g_assert_false(c->ocsp_sign_with_ca);
	g_assert_cmpint(c->ocsp_validity_s, ==, 3600);
	g_assert_cmpint(c->ocsp_responder_lifetime_s, ==, 2 * 86400);
}

static void
test_ocsp(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcConfig) c = load_text(
	    f, "[ocsp]\nsign-with = ca\nvalidity = 10m\nresponder-lifetime = 1d\n", &error);

	g_assert_no_error(error);
	g_assert_true(c->ocsp_sign_with_ca);
	g_assert_cmpint(c->ocsp_validity_s, ==, 600);
	g_assert_cmpint(c->ocsp_responder_lifetime_s, ==, 86400);
}

static void
test_errors(Fixture *f, gconstpointer data)
{
	struct {
		const char *text;
		const char *needle[3];
	} cases[] = {
	    {"[daemon]\nstate_dir = /x\n", {"[daemon]", "state_dir", "virtcert.conf"}},
	    {"[deamon]\nstate-dir = /x\n", {"[deamon]", "virtcert.conf", NULL}},
	    {"[hook]\nfail-closed = true\n", {"[hook]", "fail-closed", NULL}},
	    {"[daemon]\nissue-all = maybe\n", {"issue-all", "maybe", NULL}},
	    {"[daemon]\nreconcile-interval = 5 minutes\n", {"reconcile-interval", NULL, NULL}},
	    {"[daemon]\nreconcile-interval = 0\n", {"reconcile-interval", NULL, NULL}},
	    {"[daemon]\nhttp-address = localhost\n", {"http-address", NULL, NULL}},
	    {"[daemon]\nhttp-address = 1.2.3.4:99999\n", {"http-address", NULL, NULL}},
	    {"[ca]\ncrl-url = ftp://x/\n", {"crl-url", NULL, NULL}},
	    {"[ca]\npublic-url = ca.example.com:8458\n", {"public-url", "http://", NULL}},
	    {"[ca]\npublic-url = http://\n", {"public-url", NULL, NULL}},
	    {"[ca]\npublic-url = http://ca.example.com/?x=1\n", {"public-url", "query", NULL}},
	    {"[ca]\nca-issuers-url = ldap://x/\n", {"ca-issuers-url", NULL, NULL}},
	    {"[ca]\ndefault-lifetime = 10y\n", {"default-lifetime", "10y", NULL}},
	    {"[hook]\ntimeout = 0\n", {"timeout", NULL, NULL}},
	    {"[daemon]\nlibvirt-uri =\n", {"libvirt-uri", NULL, NULL}},
	    {"[http]\nmax-connections = 0\n", {"max-connections", "1 to 1000000", NULL}},
	    {"[http]\nmax-connections = lots\n", {"[http]", "max-connections", "lots"}},
	    {"[peer]\nmax-connections = -1\n", {"[peer]", "max-connections", NULL}},
	    {"[http]\nheader-timeout = 0\n", {"header-timeout", NULL, NULL}},
	    {"[daemon]\ncontrol-max-connections = 1000001\n",
	     {"control-max-connections", NULL, NULL}},
	    {"[http]\nmax-conns = 5\n", {"[http]", "max-conns", NULL}},
	    {"[daemon]\ncontrol-group = a\\nb\n", {"control-group", "control", NULL}},
	    {"not a key file\n", {"virtcert.conf", NULL, NULL}},
	    {"[ocsp]\nsign-with = root\n", {"[ocsp]", "sign-with", "root"}},
	    {"[ocsp]\nvalidity = 0\n", {"validity", NULL, NULL}},
	};
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(VcConfig) c = load_text(f, cases[i].text, &error);
		g_assert_null(c);
		g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
		for (gsize j = 0; j < 3 && cases[i].needle[j] != NULL; j++) {
			if (strstr(error->message, cases[i].needle[j]) == NULL)
				g_error("case %" G_GSIZE_FORMAT ": \"%s\" not in \"%s\"", i,
					cases[i].needle[j], error->message);
		}
	}
}

/* public-url is the base of every URL; per-endpoint keys override it */
static void
test_ca_urls(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcConfig) c = load_text(f,
					  "[ca]\npublic-url = http://ca.example.com:8458//\n"
					  "ca-issuers-url = https://aia.example.com/{ca}.der\n",
					  &error);
	g_autofree char *crl = NULL;
	g_autofree char *ocsp = NULL;
	g_autofree char *aia = NULL;

	g_assert_no_error(error);
	g_assert_cmpstr(c->public_url, ==, "http://ca.example.com:8458");
	crl = vc_config_get_ca_url(c, VC_CA_URL_CRL, "00ff");
	ocsp = vc_config_get_ca_url(c, VC_CA_URL_OCSP, "00ff");
	aia = vc_config_get_ca_url(c, VC_CA_URL_CA_ISSUERS, "00ff");
	g_assert_cmpstr(crl, ==, "http://ca.example.com:8458/crl/00ff.crl");
	g_assert_cmpstr(ocsp, ==, "http://ca.example.com:8458/ocsp");
	g_assert_cmpstr(aia, ==, "https://aia.example.com/00ff.der");
}

static void
test_duration(void)
{
	struct {
		const char *s;
		gint64 v;
	} ok[] = {
	    {"0", 0},	    {"90", 90},	    {"90s", 90},	   {"15m", 900},
	    {"24h", 86400}, {"7d", 604800}, {"397d", 397 * 86400},
	};
	const char *bad[] = {
	    "", "h", "-5", "5x", "1.5h", " 5m", "5m ", "5mm", "99999999999999999999", "36600000d"};
	for (gsize i = 0; i < G_N_ELEMENTS(ok); i++) {
		gint64 v = -1;
		g_autoptr(GError) error = NULL;
		g_assert_true(vc_duration_parse(ok[i].s, &v, &error));
		g_assert_no_error(error);
		g_assert_cmpint(v, ==, ok[i].v);
	}
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		gint64 v = -1;
		g_autoptr(GError) error = NULL;
		g_assert_false(vc_duration_parse(bad[i], &v, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
		/* ret_ written only on success */
		g_assert_cmpint(v, ==, -1);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/config/defaults", test_defaults);
	g_test_add_func("/config/duration", test_duration);
	g_test_add("/config/missing", Fixture, NULL, fixture_setup, test_missing, fixture_teardown);
	g_test_add("/config/full", Fixture, NULL, fixture_setup, test_full, fixture_teardown);
	g_test_add("/config/partial", Fixture, NULL, fixture_setup, test_partial, fixture_teardown);
	g_test_add("/config/ca-urls", Fixture, NULL, fixture_setup, test_ca_urls, fixture_teardown);
	g_test_add("/config/ocsp", Fixture, NULL, fixture_setup, test_ocsp, fixture_teardown);
	g_test_add("/config/errors", Fixture, NULL, fixture_setup, test_errors, fixture_teardown);
	return g_test_run();
}
