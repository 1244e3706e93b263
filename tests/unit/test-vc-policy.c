/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib/gstdio.h>
#include <string.h>

#include "vc-error.h"
#include "vc-policy.h"

#define FP "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"

static void
map_put(GHashTable *map, const char *key, const char *value)
{
	g_auto(GStrv) v = g_strsplit(value, ";", -1);
	g_hash_table_insert(map, g_strdup(key), g_steal_pointer(&v));
}

static void
test_defaults(void)
{
	g_autoptr(GHashTable) map = vc_policy_map_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(VcPolicy) p = NULL;

	map_put(map, "names", "{name}.vms.example.com");
	p = vc_policy_new_from_map(map, "test", 3600, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(p->source, ==, "test");
	g_assert_cmpuint(g_strv_length(p->names), ==, 1);
	g_assert_cmpint(p->key_type, ==, VC_KEY_TYPE_EC_P256);
	g_assert_cmpint(p->key_mode, ==, VC_KEY_MODE_HOST);
	g_assert_cmpint(p->lifetime_s, ==, 3600);
	g_assert_cmpint(p->issue_on, ==, VC_ISSUE_ON_START);
	g_assert_false(p->revoke_on_stop);
	g_assert_cmpstr(p->cert_path, ==, "/etc/virtcert/tls/cert.pem");
	g_assert_cmpstr(p->chain_path, ==, "/etc/virtcert/tls/chain.pem");
	g_assert_cmpstr(p->key_path, ==, "/etc/virtcert/tls/key.pem");
	g_assert_null(p->owner);
	g_assert_null(p->reload);
	g_assert_nonnull(p->trust_host_cas);
	g_assert_cmpuint(g_strv_length(p->trust_host_cas), ==, 0);
	g_assert_cmpuint(p->placement->len, ==, 0);
	g_assert_false(p->check_on_start);
}

static void
test_all_keys(void)
{
	g_autoptr(GHashTable) map = vc_policy_map_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(VcPolicy) p = NULL;
	const VcPlacementRule *r;

	map_put(map, "names", "{name}.vms.example.com;{uuid}.vms.example.com");
	map_put(map, "key", "rsa-3072");
	map_put(map, "key-mode", "guest");
	map_put(map, "lifetime", "397d");
	map_put(map, "issue-on", "define");
	map_put(map, "on-stop", "revoke");
	map_put(map, "cert-path", "/etc/ssl/a.pem");
	map_put(map, "chain-path", "/etc/ssl/chain.pem");
	map_put(map, "key-path", "/etc/ssl/private/a.key");
	map_put(map, "owner", "_www-data:ssl-cert");
	map_put(map, "reload", "systemctl reload nginx && echo \"done\"");
	map_put(map, "trust-host-ca",
		"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:"
		"01:23:45:67:89;" FP);
	map_put(map, "require", "site=eu-west|eu-central;tier=gold");
	map_put(map, "check-on-start", "yes");
	p = vc_policy_new_from_map(map, "src", 86400, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_strv_length(p->names), ==, 2);
	g_assert_cmpint(p->key_type, ==, VC_KEY_TYPE_RSA_3072);
	g_assert_cmpint(p->key_mode, ==, VC_KEY_MODE_GUEST);
	g_assert_cmpint(p->lifetime_s, ==, 397 * 86400);
	g_assert_cmpint(p->issue_on, ==, VC_ISSUE_ON_DEFINE);
	g_assert_true(p->revoke_on_stop);
	g_assert_cmpstr(p->key_path, ==, "/etc/ssl/private/a.key");
	g_assert_cmpstr(p->owner, ==, "_www-data:ssl-cert");
	g_assert_cmpstr(p->reload, ==, "systemctl reload nginx && echo \"done\"");
	g_assert_cmpuint(g_strv_length(p->trust_host_cas), ==, 2);
	/* normalised: lower case, no colons */
	g_assert_cmpstr(p->trust_host_cas[0], ==,
			"abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
	g_assert_cmpuint(p->placement->len, ==, 2);
	r = g_ptr_array_index(p->placement, 0);
	g_assert_cmpstr(r->key, ==, "site");
	g_assert_cmpuint(g_strv_length(r->values), ==, 2);
	g_assert_cmpstr(r->values[1], ==, "eu-central");
	g_assert_true(p->check_on_start);

	{
		g_autofree char *json = vc_policy_to_string(p);
		g_assert_nonnull(strstr(json, "\"key\":\"rsa-3072\""));
		g_assert_nonnull(strstr(json, "\"lifetime\":34300800"));
		g_assert_nonnull(
		    strstr(json, "\"reload\":\"systemctl reload nginx && echo \\\"done\\\"\""));
		g_assert_nonnull(
		    strstr(json, "{\"attr\":\"site\",\"values\":[\"eu-west\",\"eu-central\"]}"));
		g_assert_nonnull(strstr(json, "\"check-on-start\":true}"));
		g_assert_true(json[0] == '{');
	}
}

static void
test_bad_values(void)
{
	struct {
		const char *key;
		const char *value;
	} bad[] = {
	    {"names", ""},
	    {"names", "{name}"},
	    {"names", "{bogus}.example.com"},
	    {"names", "*.example.com"},
	    {"key", "rsa-1024"},
	    {"key", "ec-p256;ed25519"},
	    {"key-mode", "both"},
	    {"lifetime", "59s"},
	    {"lifetime", "398d"},
	    {"lifetime", "forever"},
	    {"issue-on", "boot"},
	    {"on-stop", "delete"},
	    {"cert-path", "relative/cert.pem"},
	    {"cert-path", "/etc/../shadow"},
	    {"cert-path", "/etc/ssl/"},
	    {"key-path", "/etc/ssl/a\nb"},
	    {"chain-path", "/etc/\x01x"},
	    {"key-path", "/etc/virtcert/tls/cert.pem"},
	    {"owner", "Root"},
	    {"owner", "root:"},
	    {"owner", "1user"},
	    {"owner", "user:group:x"},
	    {"owner", "a b"},
	    {"reload", "systemctl reload x\nrm -rf /"},
	    {"trust-host-ca", "abcd"},
	    {"trust-host-ca", FP "00"},
	    {"trust-host-ca", "zz" FP},
	    {"require", "site"},
	    {"require", "Site=eu"},
	    {"require", "site="},
	    {"require", "site=eu||us"},
	    {"require", "=eu"},
	    {"require", "site=e u"},
	    {"check-on-start", "perhaps"},
	    {"colour", "blue"},
	};
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GHashTable) map = vc_policy_map_new();
		g_autoptr(GError) error = NULL;
		g_autoptr(VcPolicy) p = NULL;
		if (strcmp(bad[i].key, "names") != 0)
			map_put(map, "names", "{name}.example.com");
		map_put(map, bad[i].key, bad[i].value);
		p = vc_policy_new_from_map(map, "src", 86400, &error);
		if (p != NULL)
			g_error("case %" G_GSIZE_FORMAT " %s=%s accepted", i, bad[i].key,
				bad[i].value);
		g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
		/* errors name the key */
		if (strstr(error->message, bad[i].key) == NULL)
			g_error("case %" G_GSIZE_FORMAT ": \"%s\" not named in \"%s\"", i,
				bad[i].key, error->message);
	}
	{
		g_autofree char *huge = g_strnfill(2000, 'x');
		g_autoptr(GHashTable) map = vc_policy_map_new();
		map_put(map, "names", "{name}.example.com");
		map_put(map, "reload", huge);
		g_assert_null(vc_policy_new_from_map(map, "src", 86400, NULL));
	}
}

static void
test_no_names(void)
{
	g_autoptr(GHashTable) map = vc_policy_map_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(VcPolicy) p = NULL;
	map_put(map, "key", "ed25519");
	/* a map without names is fine as a fragment ... */
	g_assert_true(vc_policy_map_validate(map, NULL));
	/* ... but not as a policy */
	p = vc_policy_new_from_map(map, "src", 86400, &error);
	g_assert_null(p);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_assert_nonnull(strstr(error->message, "names"));
}

static void
test_enum_strings(void)
{
	VcKeyType t = VC_KEY_TYPE_EC_P256;
	g_assert_true(vc_key_type_from_string("ed25519", &t, NULL));
	g_assert_cmpint(t, ==, VC_KEY_TYPE_ED25519);
	g_assert_cmpstr(vc_key_type_to_string(VC_KEY_TYPE_RSA_3072), ==, "rsa-3072");
	g_assert_false(vc_key_type_from_string("dsa", &t, NULL));
	g_assert_cmpint(t, ==, VC_KEY_TYPE_ED25519);
	g_assert_cmpstr(vc_key_mode_to_string(VC_KEY_MODE_GUEST), ==, "guest");
	g_assert_cmpstr(vc_issue_on_to_string(VC_ISSUE_ON_DEFINE), ==, "define");
}

static void
test_merge(void)
{
	g_autoptr(GHashTable) a = vc_policy_map_new();
	g_autoptr(GHashTable) b = vc_policy_map_new();
	map_put(a, "key", "ed25519");
	map_put(a, "lifetime", "1h");
	map_put(b, "lifetime", "2h");
	vc_policy_map_merge(a, b);
	g_assert_cmpstr(((GStrv)g_hash_table_lookup(a, "lifetime"))[0], ==, "2h");
	g_assert_cmpstr(((GStrv)g_hash_table_lookup(a, "key"))[0], ==, "ed25519");
}

static const char policy_file[] = "# web servers\n"
				  "[web]\n"
				  "match-name = web-*;www*\n"
				  "names = {name}.web.example.com;www.example.com\n"
				  "lifetime = 12h\n"
				  "\n"
				  "[payments]\n"
				  "match-project = payments;2d1d6c80*\n"
				  "names = {name}.{project}.example.com\n"
				  "key = ed25519\n"
				  "\n"
				  "[pinned]\n"
				  "match-uuid = 6F1D3C6A-3B1E-4C57-9F2A-2C1D5E9B7A10\n"
				  "names = pinned.example.com\n"
				  "\n"
				  "[rest]\n"
				  "names = {uuid}.vms.example.com\n";

static void
test_set_load(void)
{
	g_autoptr(VcPolicySet) set = vc_policy_set_new();
	g_autoptr(GError) error = NULL;
	g_assert_true(
	    vc_policy_set_load_data(set, "10-test.conf", policy_file, strlen(policy_file), &error));
	g_assert_no_error(error);
	g_assert_cmpuint(vc_policy_set_get_size(set), ==, 4);
	g_assert_cmpuint(vc_policy_set_get_warnings(set)->len, ==, 0);
}

/* A typo or a bad value in one group refuses the whole file, naming file,
 * line, group and key; nothing of the file is added. */
static void
test_set_load_refused(void)
{
	static const struct {
		const char *data;
		const char *message;
	} cases[] = {
	    {"[web]\nmatch-name = web-*\nnames = {name}.example.com\n\n[db]\nnames = "
	     "{name}.db.example.com\nrelaod = systemctl reload pg\n",
	     "20-t.conf:7: [db] relaod: unknown key (did you mean reload?)"},
	    {"[db]\nmatch-name = db-*\nnames = {name}.db.example.com\nlifetime = 1000d\n",
	     "20-t.conf:4: [db] lifetime: \"1000d\" is outside 1m..397d"},
	    {"[typo]\nnames = {name}.example.com\nkey_mode = guest\n",
	     "20-t.conf:3: [typo] key_mode: unknown key (did you mean key-mode?)"},
	    {"[x]\nnames = a.example.com\nfrobnicate = 1\n",
	     "20-t.conf:3: [x] frobnicate: unknown key (see virtcert-policy(5))"},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(VcPolicySet) set = vc_policy_set_new();
		g_autoptr(GError) error = NULL;
		g_assert_false(vc_policy_set_load_data(set, "20-t.conf", cases[i].data,
						       strlen(cases[i].data), &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
		g_assert_cmpstr(error->message, ==, cases[i].message);
		g_assert_cmpuint(vc_policy_set_get_size(set), ==, 0);
	}
}

static void
test_set_lookup(void)
{
	g_autoptr(VcPolicySet) set = vc_policy_set_new();
	struct {
		VcPolicySubject subject;
		const char *group;
	} cases[] = {
	    {{"web-1", "u-1", NULL, NULL}, "[web]"},
	    {{"www", "u-1", "payments", NULL}, "[web]"},
	    {{"db-1", "u-1", NULL, NULL}, "[rest]"},
	    {{"x", "u-1", "payments", NULL}, "[payments]"},
	    {{"x", "u-1", "Other", "2d1d6c8084544f09"}, "[payments]"},
	    {{"x", "6f1d3c6a-3b1e-4c57-9f2a-2c1d5e9b7a10", NULL, NULL}, "[pinned]"},
	    {{"x", "u-2", "paymentsX", NULL}, "[rest]"},
	};
	g_assert_true(
	    vc_policy_set_load_data(set, "10-test.conf", policy_file, strlen(policy_file), NULL));
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *source = NULL;
		g_autoptr(GHashTable) map = vc_policy_set_lookup(set, &cases[i].subject, &source);
		g_assert_nonnull(map);
		if (!g_str_has_suffix(source, cases[i].group))
			g_error("case %" G_GSIZE_FORMAT ": got %s, want %s", i, source,
				cases[i].group);
		g_assert_true(g_str_has_prefix(source, "10-test.conf "));
	}
	{
		VcPolicySubject s = {"web-9", "u", NULL, NULL};
		g_autoptr(GHashTable) map = vc_policy_set_lookup(set, &s, NULL);
		g_autoptr(VcPolicy) p = NULL;
		g_autoptr(GError) error = NULL;
		/* the returned map is the caller's */
		g_hash_table_remove(map, "lifetime");
		p = vc_policy_new_from_map(map, "x", 100 * 60, &error);
		g_assert_no_error(error);
		g_assert_cmpint(p->lifetime_s, ==, 100 * 60);
	}
	{
		VcPolicySubject s = {"web-9", "u", NULL, NULL};
		g_autoptr(GHashTable) map = vc_policy_set_lookup(set, &s, NULL);
		g_assert_true(g_hash_table_contains(map, "lifetime"));
	}
}

static void
test_set_no_match(void)
{
	g_autoptr(VcPolicySet) set = vc_policy_set_new();
	const char *text = "[only-web]\nmatch-name = web-*\nnames = {name}.example.com\n";
	VcPolicySubject s = {"db", "u", NULL, NULL};
	g_autofree char *source = NULL;
	g_assert_true(vc_policy_set_load_data(set, "a.conf", text, strlen(text), NULL));
	g_assert_null(vc_policy_set_lookup(set, &s, &source));
	g_assert_null(source);
}

static void
test_set_syntax_error(void)
{
	g_autoptr(VcPolicySet) set = vc_policy_set_new();
	g_autoptr(GError) error = NULL;
	const char *text = "[a]\nnames = a.example.com\n\nthis line is wrong\n";
	const char *text2 = "[a\nnames = x.example.com\n";
	g_assert_false(vc_policy_set_load_data(set, "bad.conf", text, strlen(text), &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_assert_true(g_str_has_prefix(error->message, "bad.conf:4: "));
	g_clear_error(&error);
	g_assert_false(vc_policy_set_load_data(set, "bad.conf", text2, strlen(text2), &error));
	g_assert_true(g_str_has_prefix(error->message, "bad.conf:1: "));
	g_assert_cmpuint(vc_policy_set_get_size(set), ==, 0);
}

static void
write_file(const char *dir, const char *name, const char *text)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void
test_set_load_dir(void)
{
	g_autofree char *dir = g_dir_make_tmp("vc-policy-XXXXXX", NULL);
	g_autoptr(VcPolicySet) set = vc_policy_set_new();
	g_autoptr(GError) error = NULL;
	VcPolicySubject s = {"web-1", "u", NULL, NULL};
	g_autofree char *source = NULL;
	g_autoptr(GHashTable) map = NULL;
	const char *files[] = {"20-b.conf", "10-a.conf", "15-broken.conf", "30-c.conf.dpkg-old",
			       ".hidden.conf"};

	write_file(dir, files[0], "[b]\nnames = b.example.com\n");
	write_file(dir, files[1], "[a]\nmatch-name = web-*\nnames = a.example.com\n");
	write_file(dir, files[2], "[x]\nnames = x.example.com\ngarbage\n");
	write_file(dir, files[3], "[c]\nnames = c.example.com\n");
	write_file(dir, files[4], "[h]\nnames = h.example.com\n");
	/* a refused file fails the whole load, naming the file and line */
	g_assert_false(vc_policy_set_load_dir(set, dir, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_assert_nonnull(strstr(error->message, "15-broken.conf:3: "));
	g_clear_error(&error);
	{
		g_autofree char *broken = g_build_filename(dir, files[2], NULL);
		g_unlink(broken);
	}
	g_clear_pointer(&set, vc_policy_set_free);
	set = vc_policy_set_new();
	g_assert_true(vc_policy_set_load_dir(set, dir, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(vc_policy_set_get_size(set), ==, 2);
	map = vc_policy_set_lookup(set, &s, &source);
	g_assert_nonnull(map);
	g_assert_true(g_str_has_suffix(source, "10-a.conf [a]"));
	s.name = "db";
	g_clear_pointer(&map, g_hash_table_unref);
	g_clear_pointer(&source, g_free);
	map = vc_policy_set_lookup(set, &s, &source);
	g_assert_true(g_str_has_suffix(source, "20-b.conf [b]"));

	for (gsize i = 0; i < G_N_ELEMENTS(files); i++) {
		g_autofree char *path = g_build_filename(dir, files[i], NULL);
		g_unlink(path);
	}
	g_rmdir(dir);

	/* a missing directory is an empty set */
	{
		g_autoptr(VcPolicySet) empty = vc_policy_set_new();
		g_assert_true(vc_policy_set_load_dir(empty, dir, &error));
		g_assert_no_error(error);
		g_assert_cmpuint(vc_policy_set_get_size(empty), ==, 0);
	}
}

static void
test_name_subtree(void)
{
	static const struct {
		const char *tmpl;
		const char *subtree;
	} cases[] = {
	    {"{name}.vms.example.com", "vms.example.com"},
	    {"{uuid}.VMS.example.com", "vms.example.com"},
	    {"www.vms.example.com", "vms.example.com"},
	    {"{name}.{project}.cloud.example.com", "cloud.example.com"},
	    {"{name}-web.vms.example.com", "vms.example.com"},
	    {"{name}", NULL},
	    {"localhost", NULL},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *got = vc_policy_name_subtree(cases[i].tmpl);
		g_assert_cmpstr(got, ==, cases[i].subtree);
	}
}

/* metadata-names is a group key: DNS subtrees, a bad one is a warning
 * naming the key, and it is no policy key of its own */
static void
test_set_metadata_names(void)
{
	const char *data =
	    "[ok]\nmatch-name = a-*\nmetadata-names = apps.example.com;.b.example.org\n"
	    "[bad]\nmatch-name = b-*\nmetadata-names = *.example.com\n"
	    "[none]\nmatch-name = c-*\nnames = {name}.example.com\n";
	const char *data_ok =
	    "[ok]\nmatch-name = a-*\nmetadata-names = apps.example.com;.b.example.org\n"
	    "[none]\nmatch-name = c-*\nnames = {name}.example.com\n";
	g_autoptr(VcPolicySet) set = vc_policy_set_new();
	VcPolicySubject a = {.name = "a-1", .uuid = "u"};
	VcPolicySubject b = {.name = "b-1", .uuid = "u"};
	VcPolicySubject c = {.name = "c-1", .uuid = "u"};
	g_auto(GStrv) bounds = NULL;
	g_auto(GStrv) none = NULL;
	g_autoptr(GHashTable) map = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(VcPolicySet) refused = vc_policy_set_new();

	g_assert_false(vc_policy_set_load_data(refused, "m.conf", data, strlen(data), &error));
	g_assert_nonnull(strstr(error->message, "m.conf:6: [bad] metadata-names"));
	g_assert_true(vc_policy_set_load_data(set, "m.conf", data_ok, strlen(data_ok), NULL));
	bounds = vc_policy_set_lookup_bounds(set, &a);
	g_assert_cmpuint(g_strv_length(bounds), ==, 2);
	g_assert_cmpstr(bounds[1], ==, ".b.example.org");
	map = vc_policy_set_lookup(set, &a, NULL);
	g_assert_false(g_hash_table_contains(map, "metadata-names"));
	g_assert_null(vc_policy_set_lookup_bounds(set, &b)); /* no group selects b-1 */
	none = vc_policy_set_lookup_bounds(set, &c);
	g_assert_null(none);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/policy/defaults", test_defaults);
	g_test_add_func("/policy/all-keys", test_all_keys);
	g_test_add_func("/policy/bad-values", test_bad_values);
	g_test_add_func("/policy/no-names", test_no_names);
	g_test_add_func("/policy/enum-strings", test_enum_strings);
	g_test_add_func("/policy/merge", test_merge);
	g_test_add_func("/policy/set/load", test_set_load);
	g_test_add_func("/policy/set/load-refused", test_set_load_refused);
	g_test_add_func("/policy/set/lookup", test_set_lookup);
	g_test_add_func("/policy/set/no-match", test_set_no_match);
	g_test_add_func("/policy/set/syntax-error", test_set_syntax_error);
	g_test_add_func("/policy/set/load-dir", test_set_load_dir);
	g_test_add_func("/policy/name-subtree", test_name_subtree);
	g_test_add_func("/policy/set/metadata-names", test_set_metadata_names);
	return g_test_run();
}
