/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "vc-domain-xml.h"
#include "vc-error.h"
#include "vc-host-attr.h"
#include "vc-placement.h"

#define FP_A "aa11223344556677889900aabbccddeeff00112233445566778899aabbccddee"
#define FP_B "bb11223344556677889900aabbccddeeff00112233445566778899aabbccddee"
#define FP_ROOT "cc11223344556677889900aabbccddeeff00112233445566778899aabbccddee"

/* policy from "key=v1;v2" pairs, NULL-terminated */
static VcPolicy *
policy_new(const char *first, ...)
{
	g_autoptr(GHashTable) map = vc_policy_map_new();
	g_autoptr(GError) error = NULL;
	VcPolicy *p;
	va_list ap;

	g_hash_table_insert(map, g_strdup("names"), g_strsplit("{name}.vms.example.com", ";", -1));
	va_start(ap, first);
	for (const char *kv = first; kv != NULL; kv = va_arg(ap, const char *)) {
		const char *eq = strchr(kv, '=');
		g_hash_table_insert(map, g_strndup(kv, (gsize)(eq - kv)),
				    g_strsplit(eq + 1, ";", -1));
	}
	va_end(ap);
	p = vc_policy_new_from_map(map, "test", 3600, &error);
	g_assert_no_error(error);
	return p;
}

static VcHostIdentity *
host_new(const char *ca, ...)
{
	VcHostIdentity *h = vc_host_identity_new();
	g_autoptr(GError) error = NULL;
	va_list ap;

	if (ca != NULL) {
		g_assert_true(vc_host_identity_add_ca(h, ca, &error));
		g_assert_no_error(error);
	}
	va_start(ap, ca);
	for (const char *kv = va_arg(ap, const char *); kv != NULL; kv = va_arg(ap, const char *)) {
		g_autofree char *k = NULL;
		g_autofree char *v = NULL;
		g_assert_true(vc_host_attribute_parse(kv, &k, &v, &error));
		g_assert_true(vc_host_identity_add_attribute(h, k, v, &error));
		g_assert_no_error(error);
	}
	va_end(ap);
	return h;
}

static void
test_unrestricted(void)
{
	g_autoptr(VcPolicy) p = policy_new(NULL);
	g_autoptr(VcHostIdentity) h = vc_host_identity_new();
	g_autofree char *reason = NULL;

	g_assert_false(vc_placement_is_restricted(p));
	g_assert_true(vc_placement_allows(p, h, &reason));
	g_assert_nonnull(reason);
}

static void
test_rule_allow(void)
{
	g_autoptr(VcPolicy) p =
	    policy_new("require=site=eu-west|eu-central;tier=confidential", NULL);
	g_autoptr(VcHostIdentity) h1 = host_new(FP_A, "site=eu-central", "tier=confidential", NULL);
	/* a host with several values for one attribute: one in the set is enough */
	g_autoptr(VcHostIdentity) h2 =
	    host_new(FP_A, "site=us-east", "site=eu-west", "tier=confidential", NULL);
	g_autofree char *r1 = NULL;
	g_autofree char *r2 = NULL;

	g_assert_true(vc_placement_is_restricted(p));
	g_assert_true(vc_placement_allows(p, h1, &r1));
	g_assert_nonnull(strstr(r1, "site=eu-central"));
	g_assert_true(vc_placement_allows(p, h2, &r2));
	g_assert_nonnull(strstr(r2, "site=eu-west"));
}

static void
test_rule_deny(void)
{
	g_autoptr(VcPolicy) p = policy_new("require=site=eu-west|eu-central", NULL);
	g_autoptr(VcHostIdentity) h = host_new(FP_A, "site=us-east", NULL);
	g_autoptr(VcHostIdentity) h_case = host_new(FP_A, "site=EU-WEST", NULL);
	g_autofree char *reason = NULL;
	g_autofree char *r2 = NULL;

	g_assert_false(vc_placement_allows(p, h, &reason));
	g_assert_cmpstr(reason, ==, "host attribute site=us-east not in {eu-west, eu-central}");
	/* values compare exactly: no surprises from case folding */
	g_assert_false(vc_placement_allows(p, h_case, &r2));
}

static void
test_missing_attribute(void)
{
	g_autoptr(VcPolicy) p = policy_new("require=site=eu-west;tier=confidential|gold", NULL);
	g_autoptr(VcHostIdentity) h = host_new(FP_A, "site=eu-west", NULL);
	g_autoptr(VcHostIdentity) empty = vc_host_identity_new();
	g_autofree char *reason = NULL;
	g_autofree char *r2 = NULL;

	g_assert_false(vc_placement_allows(p, h, &reason));
	g_assert_cmpstr(reason, ==, "host has no attribute tier");
	/* every failure is named */
	g_assert_false(vc_placement_allows(p, empty, &r2));
	g_assert_cmpstr(r2, ==, "host has no attribute site; host has no attribute tier");
}

static void
test_ca_fingerprint(void)
{
	/* the policy may spell fingerprints with colons and capitals */
	g_autoptr(VcPolicy) p = policy_new(
	    "trust-host-ca=AA:11:22:33:44:55:66:77:88:99:00:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:"
	    "66:77:88:99:AA:BB:CC:DD:EE",
	    NULL);
	g_autoptr(VcPolicy) p_root = policy_new("trust-host-ca=" FP_ROOT ";" FP_B, NULL);
	g_autoptr(VcHostIdentity) good = host_new(FP_A, NULL);
	g_autoptr(VcHostIdentity) bad = host_new(FP_B, NULL);
	g_autoptr(VcHostIdentity) chain = host_new(FP_A, NULL);
	g_autoptr(VcHostIdentity) none = vc_host_identity_new();
	g_autoptr(GError) error = NULL;
	g_autofree char *r1 = NULL;
	g_autofree char *r2 = NULL;
	g_autofree char *r3 = NULL;
	g_autofree char *r4 = NULL;

	g_assert_true(vc_placement_allows(p, good, &r1));
	g_assert_false(vc_placement_allows(p, bad, &r2));
	g_assert_cmpstr(r2, ==, "host CA bb1122334455… not trusted by the VM");
	/* a trusted root above the issuing intermediate is enough */
	g_assert_true(vc_host_identity_add_ca(chain, FP_ROOT, &error));
	g_assert_true(vc_placement_allows(p_root, chain, &r3));
	g_assert_false(vc_placement_allows(p, none, &r4));
	g_assert_nonnull(strstr(r4, "host CA unknown"));
}

static void
test_ca_and_rules(void)
{
	g_autoptr(VcPolicy) p = policy_new("trust-host-ca=" FP_A, "require=site=eu-west", NULL);
	g_autoptr(VcHostIdentity) both_bad = host_new(FP_B, "site=us-east", NULL);
	g_autoptr(VcHostIdentity) ca_bad = host_new(FP_B, "site=eu-west", NULL);
	g_autoptr(VcHostIdentity) ok = host_new(FP_A, "site=eu-west", NULL);
	g_autofree char *r1 = NULL;
	g_autofree char *r2 = NULL;
	g_autofree char *r3 = NULL;

	g_assert_false(vc_placement_allows(p, both_bad, &r1));
	g_assert_cmpstr(r1, ==,
			"host CA bb1122334455… not trusted by the VM; host attribute "
			"site=us-east not in {eu-west}");
	/* the attributes are right but the CA is not: still refused */
	g_assert_false(vc_placement_allows(p, ca_bad, &r2));
	g_assert_true(vc_placement_allows(p, ok, &r3));
	/* the reason is optional */
	g_assert_true(vc_placement_allows(p, ok, NULL));
}

static void
test_attribute_syntax(void)
{
	g_autoptr(VcHostIdentity) h = vc_host_identity_new();
	g_autoptr(GError) error = NULL;
	g_autofree char *k = NULL;
	g_autofree char *v = NULL;
	g_autofree char *uri = vc_host_attribute_uri_build("site", "eu-west");

	g_assert_cmpstr(uri, ==, "urn:virtcert:host:site=eu-west");
	g_assert_true(vc_host_attribute_uri_parse(uri, &k, &v, &error));
	g_assert_cmpstr(k, ==, "site");
	g_assert_cmpstr(v, ==, "eu-west");
	g_assert_false(vc_host_attribute_uri_is_host("urn:uuid:1234"));

	g_assert_false(vc_host_attribute_uri_parse("urn:virtcert:host:site", NULL, NULL, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_clear_error(&error);
	g_assert_false(vc_host_attribute_parse("Site=x", NULL, NULL, &error));
	g_clear_error(&error);
	g_assert_false(vc_host_attribute_parse("site=eu west", NULL, NULL, &error));
	g_clear_error(&error);
	g_assert_false(vc_host_attribute_parse("site=", NULL, NULL, &error));
	g_clear_error(&error);
	g_assert_false(vc_host_identity_add_ca(h, "abc", &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_clear_error(&error);

	/* a value given twice counts once */
	g_assert_true(vc_host_identity_add_attribute(h, "site", "a", &error));
	g_assert_true(vc_host_identity_add_attribute(h, "site", "a", &error));
	g_assert_cmpuint(vc_host_identity_get_values(h, "site")->len, ==, 1);
	g_assert_null(vc_host_identity_get_values(h, "tier"));
}

static void
test_resolve_without_names(void)
{
	/* an owner who only restricts placement still gets checked */
	static const char xml[] =
	    "<domain type='kvm'><name>p1</name><uuid>0b3e8f6e-2d0a-4c1b-9a5e-7c2f4d8e1a33</uuid>"
	    "<metadata><vc:vm xmlns:vc='urn:virtcert:domain:1'><vc:placement>"
	    "<vc:require attr='site'>eu-west</vc:require></vc:placement></vc:vm></metadata>"
	    "</domain>";
	static const char plain[] =
	    "<domain type='kvm'><name>p2</name><uuid>1b3e8f6e-2d0a-4c1b-9a5e-7c2f4d8e1a33</uuid>"
	    "</domain>";
	g_autoptr(GError) error = NULL;
	g_autoptr(VcDomainInfo) info = vc_domain_info_parse(xml, -1, &error);
	g_autoptr(VcDomainInfo) info2 = vc_domain_info_parse(plain, -1, &error);
	g_autoptr(VcPolicy) p = NULL;
	g_autoptr(VcPolicy) p2 = NULL;

	g_assert_no_error(error);
	p = vc_placement_resolve_policy(info, NULL, FALSE, 3600, &error);
	g_assert_no_error(error);
	g_assert_nonnull(p);
	g_assert_true(vc_placement_is_restricted(p));
	p2 = vc_placement_resolve_policy(info2, NULL, FALSE, 3600, &error);
	g_assert_no_error(error);
	g_assert_null(p2);
}

/* One syntax for a rule's attribute and a host certificate's: the limit is
 * VC_HOST_ATTR_MAX for both names and values. */
static void
test_host_attr_syntax(void)
{
	g_autofree char *longest = g_strnfill(VC_HOST_ATTR_MAX, 'a');
	g_autofree char *too_long = g_strnfill(VC_HOST_ATTR_MAX + 1, 'a');
	g_autofree char *fp = NULL;
	g_autoptr(GError) error = NULL;
	const char *hex64 = "AB:CD:ef0123456789abcdef0123456789abcdef0123456789abcdef0123456789";

	g_assert_true(vc_host_attr_key_is_valid("site"));
	g_assert_true(vc_host_attr_key_is_valid("tier-2"));
	g_assert_true(vc_host_attr_key_is_valid(longest));
	g_assert_false(vc_host_attr_key_is_valid(too_long));
	g_assert_false(vc_host_attr_key_is_valid(""));
	g_assert_false(vc_host_attr_key_is_valid("Site"));
	g_assert_false(vc_host_attr_key_is_valid("site=x"));
	g_assert_true(vc_host_attr_value_is_valid("eu-west.1:a_b"));
	g_assert_true(vc_host_attr_value_is_valid(longest));
	g_assert_false(vc_host_attr_value_is_valid(too_long));
	g_assert_false(vc_host_attr_value_is_valid(""));
	g_assert_false(vc_host_attr_value_is_valid("a b"));
	g_assert_false(vc_host_attr_value_is_valid("a|b"));

	fp = vc_host_attr_fingerprint_normalize(hex64, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(fp, ==, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
	/* 63 and 65 digits, a non-hex digit, nothing */
	g_assert_null(vc_host_attr_fingerprint_normalize(fp + 1, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_clear_error(&error);
	{
		g_autofree char *longer = g_strconcat(fp, "0", NULL);
		g_autofree char *bad = g_strdup(fp);
		bad[10] = 'g';
		g_assert_null(vc_host_attr_fingerprint_normalize(longer, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
		g_clear_error(&error);
		g_assert_null(vc_host_attr_fingerprint_normalize(bad, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
		g_clear_error(&error);
	}
	g_assert_null(vc_host_attr_fingerprint_normalize(NULL, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
}

/* The placement recorded with a certificate: one text per placement,
 * whatever the order it was written in, and back. */
static void
test_canonical(void)
{
	const char *pol_a = "[a]\nnames = x.example.com\n"
			    "trust-host-ca = BB:"
			    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb;"
			    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
			    "require = tier=gold;site=eu-west|eu-central|eu-west\n";
	const char *pol_b =
	    "[b]\nnames = x.example.com\n"
	    "trust-host-ca = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n"
	    "require = site=eu-central|eu-west;tier=gold\n";
	const char *want =
	    "trust-host-ca=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
	    "trust-host-ca=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n"
	    "require=site=eu-central|eu-west\n"
	    "require=tier=gold\n";
	const char *const pols[] = {pol_a, pol_b};
	g_autoptr(GError) error = NULL;

	for (gsize i = 0; i < G_N_ELEMENTS(pols); i++) {
		g_autoptr(VcPolicySet) set = vc_policy_set_new();
		g_autoptr(GHashTable) map = NULL;
		g_autoptr(VcPolicy) p = NULL;
		g_autoptr(VcPolicy) back = NULL;
		g_autofree char *text = NULL;
		g_autofree char *again = NULL;
		VcPolicySubject subject = {.name = "vm", .uuid = "u"};
		g_autoptr(VcHostIdentity) eu = vc_host_identity_new();
		g_autoptr(VcHostIdentity) us = vc_host_identity_new();

		g_assert_true(
		    vc_policy_set_load_data(set, "p.conf", pols[i], strlen(pols[i]), NULL));
		g_assert_cmpuint(vc_policy_set_get_warnings(set)->len, ==, 0);
		map = vc_policy_set_lookup(set, &subject, NULL);
		p = vc_policy_new_from_map(map, "p", 3600, &error);
		g_assert_no_error(error);
		text = vc_placement_to_canonical(p);
		g_assert_cmpstr(text, ==, want);
		back = vc_placement_from_canonical(text, &error);
		g_assert_no_error(error);
		again = vc_placement_to_canonical(back);
		g_assert_cmpstr(again, ==, want);
		/* and it decides as the policy it came from */
		g_assert_true(vc_host_identity_add_ca(
		    eu,
		    "aa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		    NULL));
		g_assert_true(vc_host_identity_add_attribute(eu, "site", "eu-west", NULL));
		g_assert_true(vc_host_identity_add_attribute(eu, "tier", "gold", NULL));
		g_assert_true(vc_host_identity_add_ca(
		    us,
		    "aa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		    NULL));
		g_assert_true(vc_host_identity_add_attribute(us, "site", "us-east", NULL));
		g_assert_true(vc_host_identity_add_attribute(us, "tier", "gold", NULL));
		g_assert_true(vc_placement_allows(back, eu, NULL));
		g_assert_false(vc_placement_allows(back, us, NULL));
	}

	/* unrestricted is the empty text, and back */
	{
		g_autoptr(VcPolicy) none = NULL;
		g_autofree char *empty = vc_placement_to_canonical(NULL);
		g_assert_cmpstr(empty, ==, "");
		none = vc_placement_from_canonical("", &error);
		g_assert_no_error(error);
		g_assert_false(vc_placement_is_restricted(none));
	}
	/* anything else is refused, naming the line */
	{
		static const char *const bad[] = {"require=site\n",	    "require=Site=eu\n",
						  "require=site=eu west\n", "trust-host-ca=xyz\n",
						  "site=eu-west\n",	    "require=site=\n"};
		for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
			g_assert_null(vc_placement_from_canonical(bad[i], &error));
			g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
			g_assert_nonnull(strstr(error->message, "line 1"));
			g_clear_error(&error);
		}
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/placement/unrestricted", test_unrestricted);
	g_test_add_func("/placement/rule-allow", test_rule_allow);
	g_test_add_func("/placement/rule-deny", test_rule_deny);
	g_test_add_func("/placement/missing-attribute", test_missing_attribute);
	g_test_add_func("/placement/ca-fingerprint", test_ca_fingerprint);
	g_test_add_func("/placement/ca-and-rules", test_ca_and_rules);
	g_test_add_func("/placement/attribute-syntax", test_attribute_syntax);
	g_test_add_func("/placement/host-attr-syntax", test_host_attr_syntax);
	g_test_add_func("/placement/resolve-without-names", test_resolve_without_names);
	g_test_add_func("/placement/canonical", test_canonical);
	return g_test_run();
}
