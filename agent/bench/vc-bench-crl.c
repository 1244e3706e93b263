/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcert-bench crl: the CRL the daemon publishes, from a store holding
 * N revoked certificates: read them, sign, encode (what a rebuild after a
 * revocation costs), and the size relying parties download. */
#include "vc-bench.h"

#include <sys/resource.h>
#include <time.h>

#include "vc-error.h"

/* N revoked rows (reasons as the engine uses them: superseded and
 * cessationOfOperation) in one transaction. */
static gboolean
vc_bench_crl_fill(VcStore *store, VcCa *ca, gint entries, GError **error)
{
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;

	if (!vc_store_begin(store, error))
		return FALSE;
	for (gint i = 0; i < entries; i++) {
		g_autofree char *serial = vc_serial_generate(error);
		g_autofree char *uuid = g_uuid_string_random();
		g_autofree char *name = g_strdup_printf("vm-%d.bench.virtcert.example", i);
		char *names[] = {name, NULL};
		VcCertRecord rec = {
		    .serial = serial,
		    .ca_id = (char *)vc_ca_get_id(ca),
		    .vm_uuid = uuid,
		    .vm_name = name,
		    .dns_names = names,
		    .not_before = now - 300,
		    .not_after = now + 86400,
		};
		if (serial == NULL || !vc_store_cert_record_intent(store, &rec, error) ||
		    !vc_store_cert_revoke(store, serial,
					  i % 2 ? VC_REASON_SUPERSEDED
						: VC_REASON_CESSATION_OF_OPERATION,
					  now - (entries - i) % 3600, error)) {
			vc_store_rollback(store);
			return FALSE;
		}
	}
	return vc_store_commit(store, error);
}

/* CPU seconds of this thread: on a loaded machine, what the work costs
 * whatever else runs. */
static double
vc_bench_crl_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

gboolean
vc_bench_crl(int argc, char **argv, GError **error)
{
	gint entries = 100000, rounds = 5;
	g_autofree char *key = NULL;
	g_autoptr(VcBenchState) st = NULL;
	VcStore *store;
	VcCa *ca;
	VcIssuer *issuer;
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(GArray) times = g_array_new(FALSE, FALSE, sizeof(double));
	g_autoptr(GArray) cpu = g_array_new(FALSE, FALSE, sizeof(double));
	g_autoptr(GBytes) der = NULL;
	VcKeyType type = VC_KEY_TYPE_EC_P256;
	double fill_s, build_s, max_s, build_cpu_s;
	gint64 start;
	int listed = 0;
	struct rusage ru;
	gboolean ok = FALSE;
	const GOptionEntry entries_opt[] = {
	    {"entries", 0, 0, G_OPTION_ARG_INT, &entries,
	     "Revoked certificates on the CRL (default 100000)", "N"},
	    {"rounds", 0, 0, G_OPTION_ARG_INT, &rounds, "Builds to time (default 5; the median)",
	     "N"},
	    {"key", 0, 0, G_OPTION_ARG_STRING, &key, "CA key type (default ec-p256)", "TYPE"},
	    {NULL}};

	if (!vc_bench_parse("crl", "--entries N", entries_opt, &argc, &argv, error))
		return FALSE;
	if (entries < 0 || rounds < 1) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "--entries must be >= 0 and --rounds >= 1");
		return FALSE;
	}
	st = vc_bench_state_new_for_key(key, &type, error);
	if (st == NULL)
		return FALSE;
	ca = st->ca;
	store = st->store;
	issuer = st->issuer;

	start = g_get_monotonic_time();
	if (!vc_bench_crl_fill(store, ca, entries, error))
		goto out;
	fill_s = (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;

	/* what vc_crl_publisher_rebuild() does: store → signed CRL → DER */
	for (gint r = 0; r < rounds; r++) {
		g_autoptr(X509_CRL) crl = NULL;
		const unsigned char *p;
		guint n = 0;
		double s, c0 = vc_bench_crl_cpu_s();
		start = g_get_monotonic_time();
		g_clear_pointer(&der, g_bytes_unref);
		der = vc_issuer_make_crl_der(issuer, NULL, NULL, &n, error);
		if (der == NULL)
			goto out;
		s = (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
		g_array_append_val(times, s);
		c0 = vc_bench_crl_cpu_s() - c0;
		g_array_append_val(cpu, c0);
		/* what relying parties get: parsed back, counted, and (once) checked */
		p = g_bytes_get_data(der, NULL);
		crl = d2i_X509_CRL(NULL, &p, (long)g_bytes_get_size(der));
		listed = crl != NULL ? MAX(0, sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl))) : -1;
		if (listed != entries || n != (guint)entries) {
			g_set_error(error, VC_ERROR, VC_ERROR_FAILED,
				    "the CRL lists %d certificates, the store %d", listed, entries);
			goto out;
		}
		/* checked once, outside the timing: a rebuild does not verify */
		if (r == rounds - 1 &&
		    X509_CRL_verify(crl, X509_get0_pubkey(vc_ca_get_cert(ca))) != 1) {
			g_set_error_literal(error, VC_ERROR, VC_ERROR_FAILED,
					    "the CRL's signature does not verify");
			goto out;
		}
	}
	g_array_sort(times, vc_bench_cmp_double);
	build_s = g_array_index(times, double, times->len / 2);
	max_s = g_array_index(times, double, times->len - 1);
	g_array_sort(cpu, vc_bench_cmp_double);
	build_cpu_s = g_array_index(cpu, double, cpu->len / 2);
	getrusage(RUSAGE_SELF, &ru);

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "benchmark");
	json_builder_add_string_value(b, "crl");
	json_builder_set_member_name(b, "key");
	json_builder_add_string_value(b, vc_key_type_to_string(type));
	json_builder_set_member_name(b, "entries");
	json_builder_add_int_value(b, listed);
	json_builder_set_member_name(b, "rounds");
	json_builder_add_int_value(b, rounds);
	json_builder_set_member_name(b, "build_s");
	json_builder_add_double_value(b, build_s);
	json_builder_set_member_name(b, "build_max_s");
	json_builder_add_double_value(b, max_s);
	json_builder_set_member_name(b, "build_cpu_s");
	json_builder_add_double_value(b, build_cpu_s);
	json_builder_set_member_name(b, "target_build_s");
	json_builder_add_double_value(b, 1.0);
	json_builder_set_member_name(b, "crl_bytes");
	json_builder_add_int_value(b, (gint64)g_bytes_get_size(der));
	json_builder_set_member_name(b, "bytes_per_entry");
	json_builder_add_double_value(b, listed > 0 ? (double)g_bytes_get_size(der) / listed : 0);
	json_builder_set_member_name(b, "fill_s");
	json_builder_add_double_value(b, fill_s);
	json_builder_set_member_name(b, "peak_rss_mib");
	json_builder_add_double_value(b, ru.ru_maxrss / 1024.0);
	json_builder_set_member_name(b, "path");
	json_builder_add_string_value(b, "store read of the revoked rows + build + sort + sign + "
					 "DER (median of the rounds); signature checked");
	json_builder_end_object(b);
	if (arg_json) {
		vc_bench_print_json(json_builder_get_root(b));
	} else {
		g_print("CRL of %d entries: built in %.3f s (median of %d, max %.3f; target 1 s), "
			"%" G_GSIZE_FORMAT " octets\n",
			listed, build_s, rounds, max_s, g_bytes_get_size(der));
	}
	ok = TRUE;
out:
	return ok;
}
