/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The canonical form a placement signature covers, and the strict parser of
 * <virtcert:signature> (policy/vc-signed-placement.c, vc-domain-xml.c). */
#include <string.h>

#include "vc-domain-xml.h"
#include "vc-error.h"
#include "vc-signed-placement.h"

#define VM_UUID "6f1c3a52-9d41-4e07-8b2e-517ac09311e4"
#define FP "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
#define FP2 "0000000000000000000000000000000000000000000000000000000000000001"
/* base64 of "AB" */
#define SIG "QUI="

static char *
canonical(const VcSignedPlacement *sp, const char *vm, gint64 not_after)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) b = vc_signed_placement_canonical(sp, vm, not_after, &error);

	g_assert_no_error(error);
	return g_strndup(g_bytes_get_data(b, NULL), g_bytes_get_size(b));
}

static VcSignedPlacement *
parse(const char *xml, GError **error)
{
	return vc_domain_placement_parse_document(xml, -1, NULL, error);
}

static void
test_canonical_form(void)
{
	g_autoptr(VcSignedPlacement) sp = vc_signed_placement_new();
	g_autofree char *c = NULL;

	g_ptr_array_add(sp->trust_cas, g_strdup(FP));
	g_ptr_array_add(sp->trust_cas, g_strdup(FP2));
	g_ptr_array_add(sp->requires, g_strdup("tier=gold"));
	g_ptr_array_add(sp->requires, g_strdup("site=eu-west|eu-central"));
	sp->check_on_start = g_strdup("true");
	c = canonical(sp, "6F1C3A529D414E078B2E517AC09311E4", 1798761600);
	g_assert_cmpstr(c, ==,
			"virtcert-placement=1\n"
			"check-on-start=yes\n"
			"trust-ca=" FP2 "\n"
			"trust-ca=" FP "\n"
			"require=site=eu-central|eu-west\n"
			"require=tier=gold\n"
			"vm=" VM_UUID "\n"
			"not-after=2027-01-01T00:00:00Z\n");
	g_clear_pointer(&sp->check_on_start, g_free);
	g_clear_pointer(&c, g_free);
	c = canonical(sp, VM_UUID, 0);
	g_assert_nonnull(strstr(c, "check-on-start=unset\n"));
	g_assert_true(g_str_has_suffix(c, "not-after=none\n"));
}

/* What does not change the meaning does not change the bytes. */
static void
test_canonical_invariance(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcSignedPlacement) a =
	    parse("<placement check-on-start='yes'><trust-ca>" FP "</trust-ca><require "
		  "attr='site'>eu-west|eu-central</require></placement>",
		  &error);
	g_autoptr(VcSignedPlacement) b = parse(
	    "<virtcert:placement xmlns:virtcert='urn:virtcert:domain:1' check-on-start='YES'>\n"
	    "  <virtcert:require attr='site'> eu-central|eu-west|eu-central </virtcert:require>\n"
	    "  "
	    "<virtcert:trust-ca>AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:"
	    "67:89:AB:CD:EF:01:23:45:67:89</virtcert:trust-ca>\n"
	    "  <virtcert:trust-ca>" FP "</virtcert:trust-ca>\n"
	    "</virtcert:placement>",
	    &error);
	g_autofree char *ca = NULL;
	g_autofree char *cb = NULL;

	g_assert_no_error(error);
	ca = canonical(a, VM_UUID, 0);
	cb = canonical(b, VM_UUID, 0);
	g_assert_cmpstr(ca, ==, cb);
}

/* Every change of meaning changes the bytes. */
static void
test_canonical_sensitivity(void)
{
	const char *variants[] = {
	    "<placement><require attr='site'>eu-west</require></placement>",
	    "<placement><require attr='site'>eu-west|us-east</require></placement>",
	    "<placement><require attr='zone'>eu-west</require></placement>",
	    "<placement check-on-start='yes'><require attr='site'>eu-west</require></placement>",
	    "<placement check-on-start='no'><require attr='site'>eu-west</require></placement>",
	    "<placement><trust-ca>" FP
	    "</trust-ca><require attr='site'>eu-west</require></placement>",
	    "<placement/>",
	};
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	for (gsize i = 0; i < G_N_ELEMENTS(variants); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(VcSignedPlacement) sp = parse(variants[i], &error);
		char *c;
		g_assert_no_error(error);
		c = canonical(sp, VM_UUID, 0);
		g_assert_false(g_hash_table_contains(seen, c));
		g_hash_table_add(seen, c);
		/* and the VM and the expiry are part of it */
		c = canonical(sp, "11111111-2222-4333-8444-555555555555", 0);
		g_assert_false(g_hash_table_contains(seen, c));
		g_hash_table_add(seen, c);
		c = canonical(sp, VM_UUID, 1798761600);
		g_assert_false(g_hash_table_contains(seen, c));
		g_hash_table_add(seen, c);
	}
}

static void
test_canonical_refuses(void)
{
	g_autoptr(VcSignedPlacement) sp = vc_signed_placement_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) b = NULL;

	b = vc_signed_placement_canonical(sp, "not-a-uuid", 0, &error);
	g_assert_null(b);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_clear_error(&error);
	g_ptr_array_add(sp->requires, g_strdup("site=eu west"));
	b = vc_signed_placement_canonical(sp, VM_UUID, 0, &error);
	g_assert_null(b);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_assert_nonnull(strstr(error->message, "eu west"));
}

static void
test_signature_parse(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcSignedPlacement) sp =
	    parse("<placement><require attr='site'>eu-west</require><signature vm='" VM_UUID
		  "' not-after='2027-01-01T00:00:00Z'>\n  QU\n  I=\n</signature></placement>",
		  &error);

	g_assert_no_error(error);
	g_assert_cmpstr(sp->sig_vm, ==, VM_UUID);
	g_assert_cmpstr(sp->sig_not_after, ==, "2027-01-01T00:00:00Z");
	g_assert_cmpmem(g_bytes_get_data(sp->sig_der, NULL), g_bytes_get_size(sp->sig_der), "AB",
			2);
}

static void
test_signature_refused(void)
{
	struct {
		const char *xml;
		const char *msg;
	} bad[] = {
	    {"<placement><signature>" SIG "</signature></placement>", "needs vm=UUID"},
	    {"<placement><signature vm='x'>" SIG "</signature></placement>", "needs vm=UUID"},
	    {"<placement><signature vm='" VM_UUID "' not-after='2027-01-01'>" SIG
	     "</signature></placement>",
	     "not-after"},
	    {"<placement><signature vm='" VM_UUID "' not-after='2027-01-01T00:00:00+01:00'>" SIG
	     "</signature></placement>",
	     "not-after"},
	    {"<placement><signature vm='" VM_UUID "'>QU*I=</signature></placement>", "not base64"},
	    {"<placement><signature vm='" VM_UUID "'>QUI</signature></placement>",
	     "not well-formed base64"},
	    {"<placement><signature vm='" VM_UUID "'>Q=UI</signature></placement>",
	     "not well-formed base64"},
	    {"<placement><signature vm='" VM_UUID "'></signature></placement>", "empty"},
	    {"<placement><signature vm='" VM_UUID "' by='me'>" SIG "</signature></placement>",
	     "unknown attribute"},
	    {"<placement><signature vm='" VM_UUID "'>" SIG "</signature><signature vm='" VM_UUID
	     "'>" SIG "</signature></placement>",
	     "appears twice"},
	    {"<placement><signature vm='" VM_UUID "'><x/></signature></placement>",
	     "must hold only text"},
	    {"<placement><sig vm='" VM_UUID "'>" SIG "</sig></placement>", "unknown element"},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(VcSignedPlacement) sp = parse(bad[i].xml, &error);
		g_assert_null(sp);
		g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
		if (strstr(error->message, bad[i].msg) == NULL)
			g_error("%s: \"%s\" lacks \"%s\"", bad[i].xml, error->message, bad[i].msg);
	}
}

/* The domain XML parser keeps the placement as written for the checks, and
 * the daemon's metadata rewrite keeps the signature. */
static void
test_domain_xml(void)
{
	const char *xml =
	    "<domain><name>web-1</name><uuid>" VM_UUID "</uuid><metadata>"
	    "<vc:vm xmlns:vc='urn:virtcert:domain:1'><vc:name>{name}.vms.example.com</vc:name>"
	    "<vc:placement><vc:require attr='site'>eu-west</vc:require>"
	    "<vc:signature vm='" VM_UUID "'>" SIG "</vc:signature></vc:placement>"
	    "</vc:vm></metadata></domain>";
	g_autoptr(GError) error = NULL;
	g_autoptr(VcDomainInfo) info = vc_domain_info_parse(xml, -1, &error);
	g_autofree char *uuid = NULL;
	g_autoptr(VcSignedPlacement) sp = NULL;
	g_autofree char *md = NULL;
	g_autoptr(VcSignedPlacement) back = NULL;

	g_assert_no_error(error);
	g_assert_nonnull(info->placement);
	g_assert_true(info->placement->present);
	g_assert_cmpuint(info->placement->requires->len, ==, 1);
	g_assert_nonnull(info->placement->sig_der);
	sp = vc_domain_placement_parse_document(xml, -1, &uuid, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(uuid, ==, VM_UUID);
	g_assert_nonnull(sp->sig_der);

	md = vc_domain_metadata_set_issued("<vm><placement><require attr='site'>eu-west</require>"
					   "<signature vm='" VM_UUID "'>" SIG
					   "</signature></placement></vm>",
					   "01ab", NULL, &error);
	g_assert_no_error(error);
	back = vc_domain_placement_parse_document(md, -1, NULL, &error);
	g_assert_no_error(error);
	g_assert_nonnull(back->sig_der);

	/* no placement: none kept */
	{
		g_autoptr(VcDomainInfo) plain = vc_domain_info_parse(
		    "<domain><name>a</name><uuid>" VM_UUID "</uuid></domain>", -1, &error);
		g_assert_no_error(error);
		g_assert_null(plain->placement);
	}
}

static void
test_time(void)
{
	gint64 t = 0;
	g_autofree char *s = NULL;
	g_autoptr(GError) error = NULL;

	g_assert_true(vc_signed_placement_parse_time("2027-01-01T00:00:00Z", &t, &error));
	g_assert_cmpint(t, ==, 1798761600);
	s = vc_signed_placement_format_time(t);
	g_assert_cmpstr(s, ==, "2027-01-01T00:00:00Z");
	g_assert_false(vc_signed_placement_parse_time("2027-13-01T00:00:00Z", &t, NULL));
	g_assert_false(vc_signed_placement_parse_time("2027-01-01T00:00:00Z ", &t, NULL));
	g_assert_false(vc_signed_placement_parse_time("+027-01-01T00:00:00Z", &t, NULL));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/signed-placement/canonical-form", test_canonical_form);
	g_test_add_func("/signed-placement/canonical-invariance", test_canonical_invariance);
	g_test_add_func("/signed-placement/canonical-sensitivity", test_canonical_sensitivity);
	g_test_add_func("/signed-placement/canonical-refuses", test_canonical_refuses);
	g_test_add_func("/signed-placement/signature-parse", test_signature_parse);
	g_test_add_func("/signed-placement/signature-refused", test_signature_refused);
	g_test_add_func("/signed-placement/domain-xml", test_domain_xml);
	g_test_add_func("/signed-placement/time", test_time);
	return g_test_run();
}
