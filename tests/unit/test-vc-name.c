/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "vc-error.h"
#include "vc-name.h"

static char *
label(const char *s)
{
	g_autoptr(GError) error = NULL;
	char *l = vc_name_label_from_string(s, &error);
	g_assert_no_error(error);
	g_assert_nonnull(l);
	/* every label is usable: "LABEL.example.com" passes the dNSName check */
	{
		g_autofree char *fqdn = g_strconcat(l, ".example.com", NULL);
		g_autoptr(GError) e2 = NULL;
		g_assert_true(vc_name_check_dns(fqdn, &e2));
		g_assert_no_error(e2);
	}
	return l;
}

static void
assert_label(const char *in, const char *expected)
{
	g_autofree char *l = label(in);
	g_assert_cmpstr(l, ==, expected);
}

static void
assert_label_fails(const char *in)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *l = vc_name_label_from_string(in, &error);
	g_assert_null(l);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_NAME);
}

static void
test_label_ascii(void)
{
	assert_label("web-1", "web-1");
	assert_label("Web-1", "web-1");
	assert_label("web 1", "web-1");
	assert_label("web_1", "web-1");
	assert_label("  web   server  ", "web-server");
	assert_label("-web-", "web");
	assert_label("---a---b---", "a-b");
	assert_label("web.example.com", "web-example-com");
	assert_label("db(primary)!", "db-primary");
	/* fullwidth forms are folded by NFKC */
	assert_label("ＷＥＢ１", "web1");
}

static void
test_label_injection_real(void)
{
	assert_label(",CN=evil", "cn-evil");
	assert_label("*.example.com", "example-com");
	assert_label("a\nb", "a-b");
	assert_label("a\r\nCN=x", "a-cn-x");
	assert_label("x\x01y\x1fz\x7f", "x-y-z");
	assert_label("a/../b", "a-b");
	assert_label_fails("..");
	assert_label_fails("*.");
	assert_label_fails("");
	assert_label_fails("---");
	assert_label_fails("\x01\x02");
	assert_label_fails("\xff\xfe invalid utf8");
	assert_label_fails(NULL);
}

static void
test_label_unicode(void)
{
	assert_label("bücher", "xn--bcher-kva");
	assert_label("Bücher", "xn--bcher-kva");
	/* a valid A-label stays itself */
	assert_label("xn--bcher-kva", "xn--bcher-kva");
	/* RTL: a pure Hebrew label is a valid IDN */
	assert_label("שלום", "xn--9dbne9b");
	/* emoji are symbols, not letters */
	assert_label("web🚀1", "web-1");
	assert_label_fails("🚀🚀");
}

static void
test_label_bidi_mixed(void)
{
	/* LTR letters and RTL letters in one label break the RFC 5893 bidi
	 * rule: the ASCII part is kept, with a hash for the lost part */
	g_autofree char *a = label("web-שלום");
	g_autofree char *b = label("web-עולם");
	g_assert_true(g_str_has_prefix(a, "web-"));
	g_assert_cmpuint(strlen(a), ==, strlen("web-") + 8);
	g_assert_cmpstr(a, !=, b);
	g_assert_false(g_str_has_prefix(a, "xn--"));
}

static void
test_label_xn_prefix(void)
{
	/* a fake or broken A-label is rewritten, never passed through */
	g_autofree char *a = label("xn--zz");
	g_autofree char *b = label("xn--");
	g_autofree char *c = label("ab--cd");
	g_assert_cmpstr(a, ==, "xn-zz");
	g_assert_cmpstr(b, ==, "xn");
	g_assert_cmpstr(c, ==, "ab-cd");
}

static void
test_label_long(void)
{
	g_autofree char *base = g_strnfill(200, 'a');
	g_autofree char *s1 = g_strconcat(base, "-one", NULL);
	g_autofree char *s2 = g_strconcat(base, "-two", NULL);
	g_autofree char *l1 = label(s1);
	g_autofree char *l2 = label(s2);
	g_autofree char *again = label(s1);
	g_autofree char *exact = g_strnfill(63, 'b');
	g_autofree char *l63 = label(exact);
	g_autofree char *u = NULL;
	GString *longu = g_string_new(NULL);

	g_assert_cmpuint(strlen(l1), ==, 63);
	g_assert_cmpuint(strlen(l2), ==, 63);
	g_assert_cmpstr(l1, !=, l2);
	g_assert_cmpstr(l1, ==, again);
	g_assert_true(g_str_has_prefix(l1, "aaaa"));
	/* 63 fits: no suffix */
	g_assert_cmpstr(l63, ==, exact);

	/* a long Unicode label is cut before encoding: still a valid A-label */
	for (int i = 0; i < 80; i++)
		g_string_append(longu, "ü");
	u = label(longu->str);
	g_string_free(longu, TRUE);
	g_assert_true(g_str_has_prefix(u, "xn--"));
	g_assert_cmpuint(strlen(u), <=, 63);

	/* a long right-to-left name keeps its script: the digit suffix is
	 * allowed at the end of an RTL label (RFC 5893 rule 3) */
	{
		g_autoptr(GString) rtl = g_string_new(NULL);
		g_autofree char *r = NULL;
		g_autofree char *back = NULL;
		for (int i = 0; i < 80; i++)
			g_string_append(rtl, "ש");
		r = label(rtl->str);
		g_assert_true(g_str_has_prefix(r, "xn--"));
		g_assert_cmpuint(strlen(r), <=, 63);
		back = g_hostname_to_unicode(r);
		g_assert_nonnull(back);
		g_assert_true(g_str_has_prefix(back, "שששש"));
	}
}

static void
test_label_lossy_documented(void)
{
	/* conversion is lossy by design; the store detects the collision */
	g_autofree char *a = label("web 1");
	g_autofree char *b = label("web-1");
	g_autofree char *c = label("WEB_1");
	g_assert_cmpstr(a, ==, b);
	g_assert_cmpstr(b, ==, c);
}

static void
test_check_dns(void)
{
	const char *good[] = {
	    "a.b",
	    "web-1.vms.example.com",
	    "xn--bcher-kva.example.com",
	    "1a.example.com",
	    "123.example.com",
	};
	const char *bad[] = {
	    "",
	    "com",
	    "a..b",
	    ".a.b",
	    "a.b.",
	    "*.example.com",
	    "Web.example.com",
	    "-a.example.com",
	    "a-.example.com",
	    "a_b.example.com",
	    "a b.example.com",
	    "xn--zz.example.com",
	    "ab--cd.example.com",
	    "1.2.3.4",
	    "a.example.123",
	};
	g_autofree char *l64 = g_strnfill(64, 'a');
	g_autofree char *long_label = g_strconcat(l64, ".example.com", NULL);
	GString *too_long = g_string_new(NULL);

	for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
		g_autoptr(GError) error = NULL;
		g_assert_true(vc_name_check_dns(good[i], &error));
		g_assert_no_error(error);
	}
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		g_assert_false(vc_name_check_dns(bad[i], &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_NAME);
	}
	g_assert_false(vc_name_check_dns(long_label, NULL));
	while (too_long->len < 260)
		g_string_append(too_long, "abcdefghi.");
	g_string_append(too_long, "com");
	g_assert_false(vc_name_check_dns(too_long->str, NULL));
	g_string_free(too_long, TRUE);
}

static void
test_subtree(void)
{
	g_assert_true(vc_name_in_subtree("example.com", "example.com"));
	g_assert_true(vc_name_in_subtree("a.example.com", "example.com"));
	g_assert_true(vc_name_in_subtree("a.b.EXAMPLE.com", "example.COM"));
	g_assert_false(vc_name_in_subtree("fooexample.com", "example.com"));
	g_assert_false(vc_name_in_subtree("example.org", "example.com"));
	g_assert_false(vc_name_in_subtree("com", "example.com"));
	g_assert_true(vc_name_in_subtree("a.example.com", ".example.com"));
	g_assert_false(vc_name_in_subtree("example.com", ".example.com"));
	g_assert_true(vc_name_in_subtree("anything.net", ""));
}

static void
test_expand(void)
{
	VcNameVars vars = {
	    .name = "Web Server 1",
	    .uuid = "6f1d3c6a-3b1e-4c57-9f2a-2c1d5e9b7a10",
	    .project = "Payments",
	    .project_id = "2d1d6c8084544f09a3e78b0a5f5ab323",
	    .user = NULL,
	    .instance = "web.evil.com",
	};
	struct {
		const char *tmpl;
		const char *expected;
	} ok[] = {
	    {"{name}.vms.example.com", "web-server-1.vms.example.com"},
	    {"{uuid}.vms.example.com", "6f1d3c6a-3b1e-4c57-9f2a-2c1d5e9b7a10.vms.example.com"},
	    {"{name}.{project}.Example.COM", "web-server-1.payments.example.com"},
	    {"{project-id}.example.com", "2d1d6c8084544f09a3e78b0a5f5ab323.example.com"},
	    /* a value cannot add a label */
	    {"{instance}.example.com", "web-evil-com.example.com"},
	    {"{name}.bücher.example", "web-server-1.xn--bcher-kva.example"},
	};
	const char *bad[] = {
	    "{name",  "name}.example.com",    "{nope}.example.com",  "{user}.example.com",
	    "{name}", "*.{name}.example.com", "{name}..example.com", "{{name}}.example.com",
	    "",	      "{name}.example.com.",
	};
	for (gsize i = 0; i < G_N_ELEMENTS(ok); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *s = vc_name_expand(ok[i].tmpl, &vars, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(s, ==, ok[i].expected);
	}
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *s = vc_name_expand(bad[i], &vars, &error);
		g_assert_null(s);
		g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_NAME);
		/* errors name the template */
		g_assert_nonnull(strstr(error->message, "template"));
	}
	g_assert_true(vc_name_template_check("{user}.example.com", NULL));
	g_assert_false(vc_name_template_check("{name}", NULL));
}

static void
test_expand_all(void)
{
	VcNameVars vars = {.name = "web 1", .uuid = "u1"};
	const char *tmpls[] = {"{name}.example.com", "web-1.example.com", "{uuid}.example.com",
			       NULL};
	const char *bad[] = {"{name}.example.com", "{project}.example.com", NULL};
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) names = vc_name_expand_all(tmpls, &vars, &error);
	g_auto(GStrv) none = NULL;
	g_assert_no_error(error);
	g_assert_cmpuint(g_strv_length(names), ==, 2);
	g_assert_cmpstr(names[0], ==, "web-1.example.com");
	g_assert_cmpstr(names[1], ==, "u1.example.com");
	none = vc_name_expand_all(bad, &vars, &error);
	g_assert_null(none);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_NAME);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/name/label/ascii", test_label_ascii);
	g_test_add_func("/name/label/injection", test_label_injection_real);
	g_test_add_func("/name/label/unicode", test_label_unicode);
	g_test_add_func("/name/label/bidi-mixed", test_label_bidi_mixed);
	g_test_add_func("/name/label/xn-prefix", test_label_xn_prefix);
	g_test_add_func("/name/label/long", test_label_long);
	g_test_add_func("/name/label/lossy", test_label_lossy_documented);
	g_test_add_func("/name/check-dns", test_check_dns);
	g_test_add_func("/name/subtree", test_subtree);
	g_test_add_func("/name/expand", test_expand);
	g_test_add_func("/name/expand-all", test_expand_all);
	return g_test_run();
}
