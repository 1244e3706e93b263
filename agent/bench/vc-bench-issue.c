/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcert-bench issue: the full issuance path against a reference measured
 * in the same run (raw EVP_DigestSign of the same key type). */
#include "vc-bench.h"

#include <sys/resource.h>

#include "vc-error.h"

gboolean
vc_bench_issue(int argc, char **argv, GError **error)
{
	gint count = 1000, batch = 256;
	g_autofree char *key = NULL;
	g_autoptr(VcBenchState) st = NULL;
	VcIssuer *issuer;
	g_autoptr(JsonBuilder) b = json_builder_new();
	VcKeyType type = VC_KEY_TYPE_EC_P256;
	double raw, seconds;
	gint64 start;
	guint issued = 0;
	struct rusage ru;
	gboolean ok = FALSE;
	const GOptionEntry entries[] = {
	    {"count", 0, 0, G_OPTION_ARG_INT, &count, "Certificates to issue (default 1000)", "N"},
	    {"key", 0, 0, G_OPTION_ARG_STRING, &key, "Key type (default ec-p256)", "TYPE"},
	    {"batch", 0, 0, G_OPTION_ARG_INT, &batch, "Certificates per group commit (default 256)",
	     "N"},
	    {NULL}};

	if (!vc_bench_parse("issue", "--count N", entries, &argc, &argv, error))
		return FALSE;
	if (count < 1 || batch < 1) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "--count and --batch must be >= 1");
		return FALSE;
	}
	st = vc_bench_state_new_for_key(key, &type, error);
	if (st == NULL)
		return FALSE;
	issuer = st->issuer;

	raw = vc_bench_raw_sign_per_s(type, 1.0, error);
	if (raw <= 0)
		goto out;

	start = g_get_monotonic_time();
	for (gint done = 0; done < count;) {
		guint n = (guint)MIN(batch, count - done);
		g_autoptr(GPtrArray) results =
		    vc_bench_issue_batch(issuer, done, n, type, NULL, error);
		if (results == NULL)
			goto out;
		for (guint i = 0; i < n; i++) {
			VcIssued *r = g_ptr_array_index(results, i);
			if (r->error != NULL) {
				g_set_error(error, VC_ERROR, VC_ERROR_FAILED,
					    "issuance %d failed: %s", done + (int)i,
					    r->error->message);
				goto out;
			}
			issued++;
		}
		done += (gint)n;
	}
	seconds = (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
	getrusage(RUSAGE_SELF, &ru);

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "benchmark");
	json_builder_add_string_value(b, "issue");
	json_builder_set_member_name(b, "key");
	json_builder_add_string_value(b, vc_key_type_to_string(type));
	json_builder_set_member_name(b, "count");
	json_builder_add_int_value(b, issued);
	json_builder_set_member_name(b, "batch");
	json_builder_add_int_value(b, batch);
	json_builder_set_member_name(b, "seconds");
	json_builder_add_double_value(b, seconds);
	json_builder_set_member_name(b, "certs_per_s");
	json_builder_add_double_value(b, issued / seconds);
	json_builder_set_member_name(b, "raw_sign_per_s");
	json_builder_add_double_value(b, raw);
	json_builder_set_member_name(b, "ratio");
	json_builder_add_double_value(b, (issued / seconds) / raw);
	json_builder_set_member_name(b, "target_ratio");
	json_builder_add_double_value(b, 0.15);
	json_builder_set_member_name(b, "peak_rss_mib");
	json_builder_add_double_value(b, ru.ru_maxrss / 1024.0);
	json_builder_set_member_name(b, "path");
	json_builder_add_string_value(b, "keygen+name checks+record intent+sign+verify+store DER, "
					 "synchronous=FULL group commit");
	json_builder_end_object(b);
	if (arg_json) {
		vc_bench_print_json(json_builder_get_root(b));
	} else {
		g_print("%u %s certificates in %.3f s: %.0f certs/s; raw sign %.0f/s; ratio %.3f "
			"(target 0.15)\n",
			issued, vc_key_type_to_string(type), seconds, issued / seconds, raw,
			(issued / seconds) / raw);
	}
	ok = TRUE;
out:
	return ok;
}
