/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcert-bench placement-sig: what checking an owner's signature costs
 * in the daemon, beside parsing the domain XML it comes in (the work every
 * check does anyway): the first check of a signature (CMS and chain), and a
 * check answered from what the same owner trust verified before. */
#include <stdio.h>

#include "vc-bench.h"
#include "vc-error.h"
#include "vc-placement-sig.h"

static gint
vc_bench_placement_sig_cmp(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
	return x < y ? -1 : x > y;
}

/* p50 and p99 of N samples (µs), sorted in place */
static void
vc_bench_placement_sig_pct(gint64 *v, guint n, double *ret_p50, double *ret_p99)
{
	qsort(v, n, sizeof(*v), vc_bench_placement_sig_cmp);
	*ret_p50 = (double)v[MIN(n - 1, n / 2)];
	*ret_p99 = (double)v[MIN(n - 1, (guint)(n * 0.99))];
}

gboolean
vc_bench_placement_sig(int argc, char **argv, GError **error)
{
	g_autofree char *xml_path = NULL;
	g_autofree char *owner_ca = NULL;
	gint count = 1000;
	g_autofree char *xml = NULL;
	g_autofree gint64 *parse_us = NULL;
	g_autofree gint64 *first_us = NULL;
	g_autofree gint64 *again_us = NULL;
	g_autoptr(VcOwnerTrust) trust = NULL;
	double p[6];
	const GOptionEntry entries[] = {
	    {"xml", 0, 0, G_OPTION_ARG_FILENAME, &xml_path, "A domain XML with a signed placement",
	     "FILE"},
	    {"owner-ca", 0, 0, G_OPTION_ARG_FILENAME, &owner_ca, "The owner CA that signed it",
	     "FILE"},
	    {"count", 0, 0, G_OPTION_ARG_INT, &count, "Checks of each kind (default 1000)", "N"},
	    {NULL}};

	if (!vc_bench_parse("placement-sig", "--xml FILE --owner-ca FILE [--count N]", entries,
			    &argc, &argv, error))
		return FALSE;
	if (xml_path == NULL || owner_ca == NULL || count < 1) {
		g_set_error_literal(
		    error, VC_ERROR, VC_ERROR_USAGE,
		    "usage: virtcert-bench placement-sig --xml FILE --owner-ca FILE "
		    "[--count N]");
		return FALSE;
	}
	if (!g_file_get_contents(xml_path, &xml, NULL, error))
		return FALSE;
	parse_us = g_new0(gint64, count);
	first_us = g_new0(gint64, count);
	again_us = g_new0(gint64, count);
	trust = vc_owner_trust_new(owner_ca, NULL);
	if (!vc_owner_trust_refresh(trust, error))
		return FALSE;
	for (gint i = 0; i < count; i++) {
		g_autoptr(VcOwnerTrust) fresh = vc_owner_trust_new(owner_ca, NULL);
		g_autoptr(VcDomainInfo) info = NULL;
		g_autofree char *reason = NULL;
		gint64 t0, t1, t2, t3;

		if (!vc_owner_trust_refresh(fresh, error))
			return FALSE;
		t0 = g_get_monotonic_time();
		info = vc_domain_info_parse(xml, -1, error);
		t1 = g_get_monotonic_time();
		if (info == NULL)
			return FALSE;
		if (!vc_placement_sig_check(fresh, TRUE, info, 0, &reason)) {
			g_set_error(error, VC_ERROR, VC_ERROR_POLICY, "%s: %s", xml_path, reason);
			return FALSE;
		}
		t2 = g_get_monotonic_time();
		g_assert_true(vc_placement_sig_check(trust, TRUE, info, 0, NULL));
		t3 = g_get_monotonic_time();
		parse_us[i] = t1 - t0;
		first_us[i] = t2 - t1;
		again_us[i] = t3 - t2;
	}
	vc_bench_placement_sig_pct(parse_us, (guint)count, &p[0], &p[1]);
	vc_bench_placement_sig_pct(first_us, (guint)count, &p[2], &p[3]);
	vc_bench_placement_sig_pct(again_us, (guint)count, &p[4], &p[5]);
	if (arg_json) {
		g_autoptr(JsonBuilder) b = json_builder_new();
		const char *names[] = {"parse_xml", "check_first", "check_again"};
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "bench");
		json_builder_add_string_value(b, "placement-sig");
		json_builder_set_member_name(b, "count");
		json_builder_add_int_value(b, count);
		for (guint k = 0; k < 3; k++) {
			json_builder_set_member_name(b, names[k]);
			json_builder_begin_object(b);
			json_builder_set_member_name(b, "p50_us");
			json_builder_add_double_value(b, p[2 * k]);
			json_builder_set_member_name(b, "p99_us");
			json_builder_add_double_value(b, p[2 * k + 1]);
			json_builder_end_object(b);
		}
		json_builder_end_object(b);
		vc_bench_print_json(json_builder_get_root(b));
	} else {
		printf(
		    "placement-sig over %d checks: parse the domain XML p50 %.0f µs p99 %.0f µs; "
		    "first check of the signature p50 %.0f µs p99 %.0f µs; again p50 %.0f µs "
		    "p99 %.0f µs\n",
		    count, p[0], p[1], p[2], p[3], p[4], p[5]);
	}
	return TRUE;
}
