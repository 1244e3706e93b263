/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "vc-domain-xml.h"
#include "vc-error.h"

static char *
fixture(const char *name, gsize *ret_len)
{
	g_autofree char *path =
	    g_test_build_filename(G_TEST_DIST, "fixtures", "domains", name, NULL);
	char *data = NULL;
	g_autoptr(GError) error = NULL;
	g_assert_true(g_file_get_contents(path, &data, ret_len, &error));
	g_assert_no_error(error);
	return data;
}

static const char *
map_first(GHashTable *map, const char *key)
{
	GStrv v = g_hash_table_lookup(map, key);
	return v != NULL ? v[0] : NULL;
}

static void
test_plain(void)
{
	gsize len = 0;
	g_autofree char *xml = fixture("plain.xml", &len);
	g_autoptr(GError) error = NULL;
	g_autoptr(VcDomainInfo) info = vc_domain_info_parse(xml, (gssize)len, &error);
	g_autoptr(VcPolicy) p = NULL;
	VcNameVars vars;
	const char *tmpl[] = {"{name}.vms.example.com", NULL};

	g_assert_no_error(error);
	g_assert_cmpstr(info->name, ==, "web-1");
	/* lower-cased */
	g_assert_cmpstr(info->uuid, ==, "6f1d3c6a-3b1e-4c57-9f2a-2c1d5e9b7a10");
	g_assert_false(info->has_metadata);
	g_assert_null(info->nova_project);
	g_assert_null(info->issued_serial);
	/* delivery is possible only through the guest agent channel */
	g_assert_true(info->has_guest_agent);
	g_assert_false(info->guest_agent_connected); /* an inactive definition says nothing */

	/* nothing selects it */
	p = vc_domain_info_resolve_policy(info, NULL, FALSE, tmpl, 86400, &error);
	g_assert_no_error(error);
	g_assert_null(p);
	/* issue-all does */
	p = vc_domain_info_resolve_policy(info, NULL, TRUE, tmpl, 86400, &error);
	g_assert_no_error(error);
	g_assert_nonnull(p);
	g_assert_cmpstr(p->names[0], ==, "{name}.vms.example.com");
	vc_domain_info_get_name_vars(info, &vars);
	g_assert_cmpstr(vars.name, ==, "web-1");
	g_assert_null(vars.project);
}

static void
test_virtcert(void)
{
	gsize len = 0;
	g_autofree char *xml = fixture("virtcert.xml", &len);
	g_autoptr(GError) error = NULL;
	g_autoptr(VcDomainInfo) info = vc_domain_info_parse(xml, (gssize)len, &error);
	g_autoptr(VcPolicy) p = NULL;
	GStrv names, req;

	g_assert_no_error(error);
	g_assert_true(info->has_guest_agent);
	g_assert_true(info->guest_agent_connected); /* live XML of a running VM */
	g_assert_cmpstr(info->name, ==, "db-primary");
	g_assert_true(info->has_metadata);
	names = g_hash_table_lookup(info->metadata, "names");
	g_assert_cmpuint(g_strv_length(names), ==, 2);
	g_assert_cmpstr(names[1], ==, "db.example.com");
	g_assert_cmpstr(map_first(info->metadata, "key"), ==, "ed25519");
	g_assert_cmpstr(map_first(info->metadata, "key-mode"), ==, "guest");
	g_assert_cmpstr(map_first(info->metadata, "lifetime"), ==, "12h");
	g_assert_cmpstr(map_first(info->metadata, "issue-on"), ==, "define");
	g_assert_cmpstr(map_first(info->metadata, "on-stop"), ==, "revoke");
	g_assert_cmpstr(map_first(info->metadata, "cert-path"), ==, "/etc/pki/tls/db.crt");
	g_assert_cmpstr(map_first(info->metadata, "owner"), ==, "postgres:ssl-cert");
	g_assert_cmpstr(map_first(info->metadata, "check-on-start"), ==, "yes");
	req = g_hash_table_lookup(info->metadata, "require");
	g_assert_cmpuint(g_strv_length(req), ==, 2);
	g_assert_cmpstr(req[0], ==, "site=eu-west|eu-central");
	g_assert_cmpstr(info->issued_serial, ==, "5f3a9c01d2e4b6a8");
	g_assert_cmpstr(info->issuer_peer, ==, "https://host-b.example.com:8459");

	/* metadata alone selects the VM */
	p = vc_domain_info_resolve_policy(info, NULL, FALSE, NULL, 86400, &error);
	g_assert_no_error(error);
	g_assert_nonnull(p);
	g_assert_cmpstr(p->source, ==, "domain metadata");
	g_assert_cmpint(p->key_type, ==, VC_KEY_TYPE_ED25519);
	g_assert_cmpint(p->key_mode, ==, VC_KEY_MODE_GUEST);
	g_assert_cmpint(p->lifetime_s, ==, 12 * 3600);
	g_assert_true(p->revoke_on_stop);
	g_assert_true(p->check_on_start);
	g_assert_cmpstr(p->reload, ==, "systemctl reload postgresql");
	g_assert_cmpuint(g_strv_length(p->trust_host_cas), ==, 1);
	g_assert_cmpuint(p->placement->len, ==, 2);
}

static void
test_nova(void)
{
	gsize len = 0;
	g_autofree char *xml = fixture("nova.xml", &len);
	g_autoptr(GError) error = NULL;
	g_autoptr(VcDomainInfo) info = vc_domain_info_parse(xml, (gssize)len, &error);
	g_autoptr(VcPolicySet) set = vc_policy_set_new();
	g_autoptr(VcPolicy) p = NULL;
	const char *pol = "[other]\nmatch-project = billing\nnames = x.example.com\n"
			  "[pay]\nmatch-project = payments;Payments\n"
			  "names = {instance}.{project}.cloud.example.com\nlifetime = 6h\n";
	VcNameVars vars;
	g_auto(GStrv) names = NULL;

	g_assert_no_error(error);
	g_assert_false(info->has_guest_agent); /* nova.xml has no agent channel */
	g_assert_cmpstr(info->name, ==, "instance-0000002a");
	g_assert_cmpstr(info->nova_instance, ==, "Web Frontend #2");
	g_assert_cmpstr(info->nova_project, ==, "Payments");
	g_assert_cmpstr(info->nova_project_id, ==, "2d1d6c8084544f09a3e78b0a5f5ab323");
	g_assert_cmpstr(info->nova_user, ==, "alice");
	g_assert_cmpstr(info->nova_user_id, ==, "2a925cf044ec4d8daace6d716c114e2b");
	g_assert_cmpstr(info->nova_flavor, ==, "m1.small");
	g_assert_false(info->has_metadata);

	g_assert_true(vc_policy_set_load_data(set, "nova.conf", pol, strlen(pol), NULL));
	p = vc_domain_info_resolve_policy(info, set, FALSE, NULL, 86400, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(p->source, ==, "nova.conf [pay]");
	g_assert_cmpint(p->lifetime_s, ==, 6 * 3600);
	vc_domain_info_get_name_vars(info, &vars);
	names = vc_name_expand_all((const char *const *)p->names, &vars, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(names[0], ==, "web-frontend-2.payments.cloud.example.com");
}

static void
test_nova_1_0(void)
{
	const char *xml = "<domain type='kvm'><name>instance-1</name>"
			  "<uuid>30ad89ac59064 9ca8d523c6343c598f6</uuid></domain>";
	const char *xml10 =
	    "<domain type='kvm'><name>instance-1</name>"
	    "<uuid>30ad89ac590649ca8d523c6343c598f6</uuid><metadata>"
	    "<n:instance xmlns:n='http://openstack.org/xmlns/libvirt/nova/1.0'>"
	    "<n:name>vm_normal</n:name><n:owner><n:project uuid='995b'>test</n:project>"
	    "</n:owner></n:instance></metadata></domain>";
	g_autoptr(GError) error = NULL;
	g_autoptr(VcDomainInfo) bad = vc_domain_info_parse(xml, -1, &error);
	g_autoptr(VcDomainInfo) info = NULL;
	g_assert_null(bad);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_clear_error(&error);
	info = vc_domain_info_parse(xml10, -1, &error);
	g_assert_no_error(error);
	/* UUID without dashes normalised */
	g_assert_cmpstr(info->uuid, ==, "30ad89ac-5906-49ca-8d52-3c6343c598f6");
	g_assert_cmpstr(info->nova_instance, ==, "vm_normal");
	g_assert_cmpstr(info->nova_project, ==, "test");
	g_assert_cmpstr(info->nova_project_id, ==, "995b");
}

static void
test_merge_over_policy(void)
{
	const char *xml =
	    "<domain><name>web-7</name><uuid>6f1d3c6a-3b1e-4c57-9f2a-2c1d5e9b7a10</uuid>"
	    "<metadata><virtcert:vm xmlns:virtcert='urn:virtcert:domain:1'>"
	    "<virtcert:lifetime>1h</virtcert:lifetime></virtcert:vm></metadata></domain>";
	const char *pol = "[web]\nmatch-name = web-*\nnames = {name}.example.com\nlifetime = 2d\n"
			  "key = rsa-3072\n";
	g_autoptr(VcPolicySet) set = vc_policy_set_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(VcDomainInfo) info = vc_domain_info_parse(xml, -1, &error);
	g_autoptr(VcPolicy) p = NULL;
	g_assert_no_error(error);
	g_assert_true(vc_policy_set_load_data(set, "p.conf", pol, strlen(pol), NULL));
	p = vc_domain_info_resolve_policy(info, set, FALSE, NULL, 86400, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(p->source, ==, "p.conf [web] + domain metadata");
	g_assert_cmpint(p->lifetime_s, ==, 3600);
	g_assert_cmpint(p->key_type, ==, VC_KEY_TYPE_RSA_3072);
	g_assert_cmpstr(p->names[0], ==, "{name}.example.com");
}

/* Resolves VM web-7 with METADATA (inner XML of <virtcert:vm>) over the
 * policy.d text POL; NULL with ERROR set when refused. */
static VcPolicy *
resolve_with(const char *pol, const char *metadata, GError **error)
{
	g_autofree char *xml = g_strdup_printf(
	    "<domain><name>web-7</name><uuid>6f1d3c6a-3b1e-4c57-9f2a-2c1d5e9b7a10</uuid>"
	    "<metadata><vc:vm xmlns:vc='urn:virtcert:domain:1'>%s</vc:vm></metadata></domain>",
	    metadata);
	g_autoptr(VcPolicySet) set = vc_policy_set_new();
	g_autoptr(VcDomainInfo) info = vc_domain_info_parse(xml, -1, NULL);

	g_assert_nonnull(info);
	g_assert_true(vc_policy_set_load_data(set, "p.conf", pol, strlen(pol), NULL));
	g_assert_cmpuint(vc_policy_set_get_warnings(set)->len, ==, 0);
	return vc_domain_info_resolve_policy(info, set, FALSE, NULL, 86400, error);
}

#define FP_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define FP_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static const char *
source_of(const VcPolicy *p, const char *key)
{
	g_assert_nonnull(p->sources);
	return g_hash_table_lookup(p->sources, key);
}

/* Issue 17: metadata narrows host policy, never widens it. */
static void
test_metadata_narrows(void)
{
	const char *pol = "[web]\nmatch-name = web-*\nnames = {name}.vms.example.com\n"
			  "require = site=eu-west\ntrust-host-ca = " FP_A ";" FP_B "\n"
			  "lifetime = 2d\ncheck-on-start = yes\non-stop = revoke\n";
	g_autoptr(GError) error = NULL;
	g_autoptr(VcPolicy) p = NULL;

	/* the report's case: a wider rule over the floor keeps the floor */
	p = resolve_with(pol,
			 "<vc:placement><vc:require attr='site'>us-east|eu-west</vc:require>"
			 "</vc:placement>",
			 &error);
	g_assert_no_error(error);
	g_assert_cmpuint(p->placement->len, ==, 1);
	{
		const VcPlacementRule *r = g_ptr_array_index(p->placement, 0);
		g_assert_cmpstr(r->key, ==, "site");
		g_assert_cmpuint(g_strv_length(r->values), ==, 1);
		g_assert_cmpstr(r->values[0], ==, "eu-west");
	}
	g_assert_cmpstr(source_of(p, "require"), ==, "p.conf [web]");
	g_assert_cmpstr(source_of(p, "names"), ==, "p.conf [web]");
	g_clear_pointer(&p, vc_policy_free);

	/* a rule with nothing in common: refused, not widened nor emptied */
	p = resolve_with(pol,
			 "<vc:placement><vc:require attr='site'>us-east</vc:require>"
			 "</vc:placement>",
			 &error);
	g_assert_null(p);
	g_assert_error(error, VC_ERROR, VC_ERROR_POLICY);
	g_assert_nonnull(strstr(error->message, "site=us-east"));
	g_clear_error(&error);

	/* a new attribute, one trusted CA of two, a shorter life: narrowed */
	p = resolve_with(pol,
			 "<vc:lifetime>1h</vc:lifetime><vc:placement check-on-start='no'>"
			 "<vc:trust-ca>" FP_B "</vc:trust-ca>"
			 "<vc:require attr='tier'>gold</vc:require></vc:placement>",
			 &error);
	g_assert_no_error(error);
	g_assert_cmpuint(p->placement->len, ==, 2);
	g_assert_cmpuint(g_strv_length(p->trust_host_cas), ==, 1);
	g_assert_cmpstr(p->trust_host_cas[0], ==, FP_B);
	g_assert_cmpint(p->lifetime_s, ==, 3600);
	g_assert_true(p->check_on_start); /* "no" does not switch it off */
	g_assert_cmpstr(source_of(p, "trust-host-ca"), ==,
			"p.conf [web] narrowed by domain metadata");
	g_assert_cmpstr(source_of(p, "require"), ==, "p.conf [web] narrowed by domain metadata");
	g_assert_cmpstr(source_of(p, "lifetime"), ==, "domain metadata");
	g_assert_cmpstr(source_of(p, "check-on-start"), ==, "p.conf [web]");
	{
		g_autofree char *json = vc_policy_to_string(p);
		g_assert_nonnull(strstr(json, "\"sources\":{"));
		g_assert_nonnull(strstr(json, "\"lifetime\":\"domain metadata\""));
	}
	g_clear_pointer(&p, vc_policy_free);

	/* a longer life and keep-on-stop: the host's stricter values stay */
	p = resolve_with(pol, "<vc:lifetime>30d</vc:lifetime><vc:stop action='keep'/>", &error);
	g_assert_no_error(error);
	g_assert_cmpint(p->lifetime_s, ==, 2 * 86400);
	g_assert_true(p->revoke_on_stop);
	g_assert_cmpstr(source_of(p, "lifetime"), ==, "p.conf [web]");
	g_clear_pointer(&p, vc_policy_free);

	/* a trusted CA the host does not trust: refused (an empty list would
	 * trust every CA) */
	p = resolve_with(pol,
			 "<vc:placement><vc:trust-ca>"
			 "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
			 "</vc:trust-ca></vc:placement>",
			 &error);
	g_assert_null(p);
	g_assert_error(error, VC_ERROR, VC_ERROR_POLICY);
	g_assert_nonnull(strstr(error->message, "trust-host-ca"));
	g_clear_error(&error);
}

/* Names: metadata may choose within the subtrees host policy allows. */
static void
test_metadata_names_bounded(void)
{
	const char *pol = "[web]\nmatch-name = web-*\nnames = {name}.vms.example.com\n";
	const char *pol_bounds = "[web]\nmatch-name = web-*\nnames = {name}.vms.example.com\n"
				 "metadata-names = apps.example.com;.shop.example.org\n";
	const char *pol_none = "[web]\nmatch-name = web-*\nlifetime = 2d\n";
	g_autoptr(GError) error = NULL;
	g_autoptr(VcPolicy) p = NULL;

	/* default bounds: the subtree of the group's own templates */
	p = resolve_with(pol, "<vc:name>api.vms.example.com</vc:name>", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(p->names[0], ==, "api.vms.example.com");
	g_assert_nonnull(strstr(source_of(p, "names"), "domain metadata (within vms.example.com)"));
	g_clear_pointer(&p, vc_policy_free);
	p = resolve_with(pol, "<vc:name>{name}.x.vms.example.com</vc:name>", &error);
	g_assert_no_error(error);
	g_clear_pointer(&p, vc_policy_free);
	/* any other name under the CA: refused, naming the bound */
	p = resolve_with(pol, "<vc:name>www.example.com</vc:name>", &error);
	g_assert_null(p);
	g_assert_error(error, VC_ERROR, VC_ERROR_POLICY);
	g_assert_nonnull(strstr(error->message, "\"www.example.com\""));
	g_assert_nonnull(strstr(error->message, "vms.example.com"));
	g_clear_error(&error);
	/* a placeholder in the last labels does not smuggle a name out */
	p = resolve_with(pol, "<vc:name>vms.example.{name}</vc:name>", &error);
	g_assert_null(p);
	g_assert_error(error, VC_ERROR, VC_ERROR_POLICY);
	g_clear_error(&error);
	p = resolve_with(pol, "<vc:name>evilvms.example.com</vc:name>", &error);
	g_assert_null(p);
	g_clear_error(&error);

	/* metadata-names states the bounds */
	p = resolve_with(pol_bounds, "<vc:name>{name}.apps.example.com</vc:name>", &error);
	g_assert_no_error(error);
	g_clear_pointer(&p, vc_policy_free);
	p = resolve_with(pol_bounds, "<vc:name>apps.example.com</vc:name>", &error);
	g_assert_no_error(error);
	g_clear_pointer(&p, vc_policy_free);
	/* ".shop.example.org": proper subdomains only */
	p = resolve_with(pol_bounds, "<vc:name>shop.example.org</vc:name>", &error);
	g_assert_null(p);
	g_clear_error(&error);
	p = resolve_with(pol_bounds, "<vc:name>a.shop.example.org</vc:name>", &error);
	g_assert_no_error(error);
	g_clear_pointer(&p, vc_policy_free);
	/* the group's own names are no longer a bound once it states them */
	p = resolve_with(pol_bounds, "<vc:name>x.vms.example.com</vc:name>", &error);
	g_assert_null(p);
	g_clear_error(&error);

	/* a group without names nor bounds gives metadata no names */
	p = resolve_with(pol_none, "<vc:name>x.vms.example.com</vc:name>", &error);
	g_assert_null(p);
	g_assert_error(error, VC_ERROR, VC_ERROR_POLICY);
	g_assert_nonnull(strstr(error->message, "metadata-names"));
	g_clear_error(&error);
}

static void
test_metadata_errors(void)
{
	struct {
		const char *body;
		const char *needle;
	} cases[] = {
	    {"<v:colour>red</v:colour>", "colour"},
	    {"<v:key type='ed25519' size='256'/>", "size"},
	    {"<v:key type='ed25519'/><v:key mode='host'/>", "twice"},
	    {"<name>x.example.com</name>", "unknown element <name>"},
	    {"<v:placement><v:require>eu</v:require></v:placement>", "attr="},
	    {"<v:name><v:x/></v:name>", "only text"},
	    {"stray text", "unexpected text"},
	    {"<v:issued serial='1'/><v:issued serial='2'/>", "twice"},
	};
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *xml = g_strdup_printf(
		    "<domain><name>a</name><uuid>6f1d3c6a-3b1e-4c57-9f2a-2c1d5e9b7a10</uuid>"
		    "<metadata><v:vm xmlns:v='urn:virtcert:domain:1'>%s</v:vm></metadata>"
		    "</domain>",
		    cases[i].body);
		g_autoptr(GError) error = NULL;
		g_autoptr(VcDomainInfo) info = vc_domain_info_parse(xml, -1, &error);
		if (info != NULL)
			g_error("case %" G_GSIZE_FORMAT " accepted", i);
		g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
		if (strstr(error->message, cases[i].needle) == NULL)
			g_error("case %" G_GSIZE_FORMAT ": \"%s\" not in \"%s\"", i,
				cases[i].needle, error->message);
	}
	/* bad values surface when the policy is resolved, naming the key */
	{
		const char *xml =
		    "<domain><name>a</name><uuid>6f1d3c6a-3b1e-4c57-9f2a-2c1d5e9b7a10</uuid>"
		    "<metadata><v:vm xmlns:v='urn:virtcert:domain:1'><v:name>a.example.com</v:name>"
		    "<v:delivery cert='../etc/passwd'/></v:vm></metadata></domain>";
		g_autoptr(GError) error = NULL;
		g_autoptr(VcDomainInfo) info = vc_domain_info_parse(xml, -1, &error);
		g_autoptr(VcPolicy) p = NULL;
		g_assert_no_error(error);
		p = vc_domain_info_resolve_policy(info, NULL, FALSE, NULL, 86400, &error);
		g_assert_null(p);
		g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
		g_assert_nonnull(strstr(error->message, "cert-path"));
		g_assert_nonnull(strstr(error->message, "VM a "));
	}
}

static void
test_metadata_parse(void)
{
	const char *md =
	    "<x:vm xmlns:x=\"urn:virtcert:domain:1\"><x:name>{uuid}.example.com</x:name>"
	    "<x:stop action=\"revoke\"/><other:thing xmlns:other='urn:x'/></x:vm>";
	const char *wrong_ns = "<vm xmlns=\"urn:virtcert:domain:2\"/>";
	g_autoptr(GError) error = NULL;
	g_autoptr(GHashTable) map = vc_domain_metadata_parse(md, -1, &error);
	g_autoptr(GHashTable) none = NULL;
	g_assert_no_error(error);
	g_assert_cmpstr(map_first(map, "names"), ==, "{uuid}.example.com");
	g_assert_cmpstr(map_first(map, "on-stop"), ==, "revoke");
	g_assert_cmpuint(g_hash_table_size(map), ==, 2);
	none = vc_domain_metadata_parse(wrong_ns, -1, &error);
	g_assert_null(none);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
}

static void
assert_refused(const char *xml, gssize len, const char *needle)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcDomainInfo) info = vc_domain_info_parse(xml, len, &error);
	g_assert_null(info);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	if (needle != NULL && strstr(error->message, needle) == NULL)
		g_error("\"%s\" not in \"%s\"", needle, error->message);
}

static void
test_hostile(void)
{
	const char *xxe =
	    "<?xml version=\"1.0\"?>\n"
	    "<!DOCTYPE domain [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n"
	    "<domain><name>&xxe;</name><uuid>6f1d3c6a-3b1e-4c57-9f2a-2c1d5e9b7a10</uuid></domain>";
	const char *laughs =
	    "<?xml version=\"1.0\"?>\n"
	    "<!DOCTYPE lolz [\n"
	    " <!ENTITY lol \"lol\">\n"
	    " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
	    " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
	    " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
	    "]>\n<domain><name>&lol3;</name></domain>";
	const char *doctype_lower = "<!doctype domain><domain/>";
	const char *ext_dtd = "<!DOCTYPE domain SYSTEM \"http://evil.example/x.dtd\"><domain/>";
	const char *ctrl_name = "<domain><name>web&#x1;evil</"
				"name><uuid>6f1d3c6a-3b1e-4c57-9f2a-2c1d5e9b7a10</uuid></domain>";
	const char *nl_name = "<domain><name>web&#10;CN=evil</"
			      "name><uuid>6f1d3c6a-3b1e-4c57-9f2a-2c1d5e9b7a10</uuid></domain>";
	const char *c1_name = "<domain><name>web&#x85;x</"
			      "name><uuid>6f1d3c6a-3b1e-4c57-9f2a-2c1d5e9b7a10</uuid></domain>";
	const char *utf16 = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><domain/>";
	g_autoptr(GString) deep = g_string_new(NULL);
	g_autoptr(GString) deep65 =
	    g_string_new("<domain><name>a</name><uuid>6f1d3c6a-3b1e-4c57-9f2a-2c1d5e9b7a10</uuid>"
			 "<metadata><vc:vm xmlns:vc='urn:virtcert:domain:1'>");
	g_autoptr(GString) big_attr =
	    g_string_new("<domain><name>a</name><uuid>6f1d3c6a-3b1e-4c57-9f2a-2c1d5e9b7a10</uuid>"
			 "<metadata><vc:vm xmlns:vc='urn:virtcert:domain:1'><x a=\"");
	g_autoptr(GString) big_doc = g_string_new("<domain>");

	assert_refused(xxe, -1, "DOCTYPE");
	assert_refused(laughs, -1, "DOCTYPE");
	/* not a DOCTYPE at all, just not XML */
	assert_refused(doctype_lower, -1, NULL);
	assert_refused(ext_dtd, -1, "DOCTYPE");
	assert_refused(ctrl_name, -1, NULL);
	assert_refused(nl_name, -1, "control characters");
	assert_refused(c1_name, -1, "control characters");
	assert_refused("", -1, "empty");
	assert_refused("<domain>", -1, "line 1");
	assert_refused("<domain><name>a</name></domain>", -1, "uuid");
	assert_refused("<network><name>a</name></network>", -1, "<domain>");
	assert_refused("<domain><name>a</name>\0<uuid/></domain>", 36, "NUL");
	assert_refused(utf16, -1, NULL);

	for (int i = 0; i < 10000; i++)
		g_string_append(deep, "<a>");
	for (int i = 0; i < 10000; i++)
		g_string_append(deep, "</a>");
	assert_refused(deep->str, (gssize)deep->len, NULL);
	/* within libxml2's own limit but over ours */
	for (int i = 0; i < 70; i++)
		g_string_append(deep65, "<a>");
	for (int i = 0; i < 70; i++)
		g_string_append(deep65, "</a>");
	g_string_append(deep65, "</vc:vm></metadata></domain>");
	assert_refused(deep65->str, (gssize)deep65->len, "nested deeper");

	for (int i = 0; i < 1024 * 1024; i++)
		g_string_append_c(big_attr, 'A');
	g_string_append(big_attr, "\"/></vc:vm></metadata></domain>");
	assert_refused(big_attr->str, (gssize)big_attr->len, "longer than");

	while (big_doc->len <= VC_DOMAIN_XML_MAX_SIZE)
		g_string_append(big_doc, "<!-- padding padding padding padding padding -->");
	g_string_append(big_doc, "</domain>");
	assert_refused(big_doc->str, (gssize)big_doc->len, "octets");
}

/* Red-team finding 3: what libvirt accepts outside the virtcert element
 * is read, not refused: a text node over 4,096 octets, CDATA holding
 * "<!DOCTYPE", foreign metadata nested deeper than 64, nova values with
 * control characters. Strictness stays inside <virtcert:vm>. */
static void
test_libvirt_accepts(void)
{
	g_autoptr(GString) xml =
	    g_string_new("<domain type='kvm'><name>web-1</name>"
			 "<uuid>6f1d3c6a-3b1e-4c57-9f2a-2c1d5e9b7a10</uuid><description>");
	g_autoptr(GError) error = NULL;
	g_autoptr(VcDomainInfo) info = NULL;
	GStrv names;

	for (int i = 0; i < 100 * 1024; i++)
		g_string_append_c(xml, "abcdefgh"[i % 8]);
	g_string_append(xml, "</description><metadata>"
			     "<app:cfg xmlns:app='urn:example:app'><![CDATA[<!DOCTYPE html><html>"
			     "<!ENTITY x 'y'>]]></app:cfg><app:deep xmlns:app='urn:example:app'>");
	for (int i = 0; i < 100; i++)
		g_string_append(xml, "<app:d>");
	for (int i = 0; i < 100; i++)
		g_string_append(xml, "</app:d>");
	g_string_append(xml,
			"</app:deep>"
			"<nova:instance xmlns:nova='http://openstack.org/xmlns/libvirt/nova/1.1'>"
			"<nova:name>tab&#9;name</nova:name><nova:owner>"
			"<nova:project uuid='p&#9;1'>proj</nova:project></nova:owner>"
			"</nova:instance>"
			"<vc:vm xmlns:vc='urn:virtcert:domain:1'><vc:name>{name}.vms.example.com"
			"</vc:name><vc:placement check-on-start='yes'><vc:require attr='site'>"
			"eu</vc:require></vc:placement></vc:vm></metadata>"
			"<devices><channel type='unix'><target type='virtio' "
			"name='org.qemu.guest_agent.0'/></channel></devices></domain>");
	info = vc_domain_info_parse(xml->str, (gssize)xml->len, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(info->name, ==, "web-1");
	g_assert_true(info->has_metadata);
	g_assert_true(info->has_guest_agent);
	g_assert_cmpstr(info->nova_instance, ==, "tab\tname");
	g_assert_cmpstr(info->nova_project_id, ==, "p\t1");
	names = g_hash_table_lookup(info->metadata, "names");
	g_assert_cmpstr(names[0], ==, "{name}.vms.example.com");

	/* what the hook sends the daemon: small, and read the same */
	{
		g_autofree char *reduced = vc_domain_xml_reduce(xml->str, (gssize)xml->len, &error);
		g_autoptr(VcDomainInfo) again = NULL;
		GStrv req;
		g_assert_no_error(error);
		g_assert_cmpuint(strlen(reduced), <, 4096);
		again = vc_domain_info_parse(reduced, -1, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(again->name, ==, info->name);
		g_assert_cmpstr(again->uuid, ==, info->uuid);
		g_assert_cmpstr(again->nova_project_id, ==, "p\t1");
		req = g_hash_table_lookup(again->metadata, "require");
		g_assert_cmpstr(req[0], ==, "site=eu");
	}
	g_clear_pointer(&info, vc_domain_info_free);

	/* the same long text inside the virtcert element is still refused */
	{
		g_autoptr(GString) bad = g_string_new(
		    "<domain><name>a</name><uuid>6f1d3c6a-3b1e-4c57-9f2a-2c1d5e9b7a10</uuid>"
		    "<metadata><vc:vm xmlns:vc='urn:virtcert:domain:1'><vc:name>");
		for (int i = 0; i < 5000; i++)
			g_string_append_c(bad, 'a');
		g_string_append(bad, "</vc:name></vc:vm></metadata></domain>");
		assert_refused(bad->str, (gssize)bad->len, "longer than 4096");
	}
	/* a real DOCTYPE after all that is still refused */
	assert_refused("<!DOCTYPE domain [<!ENTITY a 'b'>]><domain><name>&a;</name></domain>", -1,
		       "DOCTYPE");
}

/* The daemon writes its facts into its own element and keeps the rest. */
static void
test_set_issued(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *fresh = NULL, *updated = NULL, *again = NULL;
	g_autoptr(GHashTable) map = NULL;
	g_autofree char *dom = NULL;
	g_autoptr(VcDomainInfo) info = NULL;
	const char *owner = "<vc:vm xmlns:vc=\"urn:virtcert:domain:1\"><vc:name>{name}.example.com"
			    "</vc:name><vc:issued serial=\"01\" peer=\"https://old:1\"/></vc:vm>";

	/* no element yet: one with only the facts, which selects nothing */
	fresh = vc_domain_metadata_set_issued(NULL, "0a0b", "https://a.example:8459", &error);
	g_assert_no_error(error);
	g_assert_null(strstr(fresh, "xmlns"));
	/* as libvirt stores it in the domain: with its namespace and prefix */
	{
		g_autoptr(GString) el = g_string_new(fresh);
		g_assert_true(g_str_has_prefix(fresh, "<vm>"));
		g_string_replace(el, "<vm>",
				 "<virtcert:vm xmlns:virtcert=\"urn:virtcert:domain:1\">", 1);
		g_string_replace(el, "<issued", "<virtcert:issued", 1);
		g_string_replace(el, "</vm>", "</virtcert:vm>", 1);
		dom = g_strdup_printf("<domain><name>x</name><uuid>"
				      "6f1d3c6a-3b1e-4c57-9f2a-2c1d5e9b7a10</uuid><metadata>%s"
				      "</metadata></domain>",
				      el->str);
	}
	info = vc_domain_info_parse(dom, -1, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(info->issued_serial, ==, "0a0b");
	g_assert_cmpstr(info->issuer_peer, ==, "https://a.example:8459");
	g_assert_false(info->has_metadata);

	/* the owner's policy stays, the facts are replaced */
	updated = vc_domain_metadata_set_issued(owner, "ff", "https://b&c:2", &error);
	g_assert_no_error(error);
	map = vc_domain_metadata_parse(updated, -1, &error);
	g_assert_no_error(error);
	g_assert_nonnull(g_hash_table_lookup(map, "names"));
	g_assert_nonnull(strstr(updated, "serial=\"ff\""));
	g_assert_nonnull(strstr(updated, "https://b&amp;c:2")); /* escaped */
	g_assert_null(strstr(updated, "https://old:1"));

	/* the form virDomainGetMetadata returns: no namespace */
	g_clear_pointer(&again, g_free);
	again = vc_domain_metadata_set_issued("<vm>\n  <name>{name}.example.com</name>\n</vm>",
					      "0c", NULL, &error);
	g_assert_no_error(error);
	g_clear_pointer(&map, g_hash_table_unref);
	map = vc_domain_metadata_parse(again, -1, &error);
	g_assert_no_error(error);
	g_assert_nonnull(g_hash_table_lookup(map, "names"));
	/* virDomainSetMetadata adds the namespace itself and refuses a second one */
	g_assert_null(strstr(again, "urn:virtcert:domain:1"));
	g_clear_pointer(&again, g_free);

	/* garbage is refused, never rewritten */
	again =
	    vc_domain_metadata_set_issued("<vc:vm xmlns:vc=\"urn:virtcert:domain:1\"><vc:bogus/>"
					  "</vc:vm>",
					  "01", NULL, &error);
	g_assert_null(again);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/domain-xml/plain", test_plain);
	g_test_add_func("/domain-xml/virtcert", test_virtcert);
	g_test_add_func("/domain-xml/nova", test_nova);
	g_test_add_func("/domain-xml/libvirt-accepts", test_libvirt_accepts);
	g_test_add_func("/domain-xml/nova-1.0", test_nova_1_0);
	g_test_add_func("/domain-xml/merge-over-policy", test_merge_over_policy);
	g_test_add_func("/domain-xml/metadata-narrows", test_metadata_narrows);
	g_test_add_func("/domain-xml/metadata-names-bounded", test_metadata_names_bounded);
	g_test_add_func("/domain-xml/metadata-errors", test_metadata_errors);
	g_test_add_func("/domain-xml/metadata-parse", test_metadata_parse);
	g_test_add_func("/domain-xml/hostile", test_hostile);
	g_test_add_func("/domain-xml/set-issued", test_set_issued);
	return g_test_run();
}
