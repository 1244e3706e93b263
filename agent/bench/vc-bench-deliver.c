/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcert-bench deliver: deliveries into a real VM through its guest agent,
 * beside the guest-ping round trip of the same agent (the reference). */
#include "vc-bench.h"

#include <stdlib.h>

#include "vc-error.h"
#include "vc-guest.h"

/* Microsecond durations (gint64) as milliseconds (double), sorted. */
static GArray *
vc_bench_sorted_ms(GArray *us)
{
	GArray *ms = g_array_sized_new(FALSE, FALSE, sizeof(double), us->len);
	for (guint i = 0; i < us->len; i++) {
		double v = g_array_index(us, gint64, i) / 1000.0;
		g_array_append_val(ms, v);
	}
	g_array_sort(ms, vc_bench_cmp_double);
	return ms;
}

gboolean
vc_bench_deliver(int argc, char **argv, GError **error)
{
	g_autofree char *uri = NULL;
	g_autofree char *vm = NULL;
	g_autofree char *dir = g_strdup("/run/virtcert-bench");
	gint count = 20;
	g_autoptr(VcBenchState) st = NULL;
	g_autoptr(VcIssued) issued = NULL;
	g_autoptr(VcGuestChannel) channel = NULL;
	g_autoptr(GArray) times_us = NULL;
	g_autoptr(GArray) file_only_us = NULL;
	g_autoptr(GArray) pings_us = g_array_new(FALSE, FALSE, sizeof(gint64));
	g_autoptr(GArray) times = NULL;
	g_autoptr(GArray) file_only = NULL;
	g_autoptr(GArray) pings = NULL;
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autofree char *cert = NULL, *chain = NULL, *key = NULL;
	g_autofree char *cert_path = NULL, *chain_path = NULL, *key_path = NULL;
	const char *const names[] = {"vm.bench.virtcert.example", NULL};
	VcIssueRequest req = {
	    .vm_name = "bench", .dns_names = names, .key_type = VC_KEY_TYPE_EC_P256};
	virConnectPtr conn = NULL;
	virDomainPtr dom = NULL;
	char uuid[VIR_UUID_STRING_BUFLEN];
	gboolean ok = FALSE;
	const GOptionEntry entries[] = {
	    {"uri", 0, 0, G_OPTION_ARG_STRING, &uri, "libvirt URI of the VM's host", "URI"},
	    {"vm", 0, 0, G_OPTION_ARG_STRING, &vm, "A running VM with a guest agent", "NAME"},
	    {"count", 0, 0, G_OPTION_ARG_INT, &count, "Deliveries (default 20)", "N"},
	    {"dir", 0, 0, G_OPTION_ARG_STRING, &dir,
	     "Directory in the guest (default /run/virtcert-bench)", "PATH"},
	    {NULL}};

	if (!vc_bench_parse("deliver", "--uri URI --vm NAME", entries, &argc, &argv, error))
		return FALSE;
	if (uri == NULL || vm == NULL || count < 1) {
		g_set_error_literal(
		    error, VC_ERROR, VC_ERROR_USAGE,
		    "--uri URI and --vm NAME (a running VM with qemu-ga) are required");
		return FALSE;
	}
	conn = virConnectOpen(uri);
	if (conn == NULL || (dom = virDomainLookupByName(conn, vm)) == NULL ||
	    virDomainGetUUIDString(dom, uuid) < 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_LIBVIRT, "cannot find VM %s at %s", vm, uri);
		goto out;
	}
	channel = vc_guest_channel_new_libvirt(conn, uuid, error);
	if (channel == NULL)
		goto out;

	/* a throwaway CA issues the certificate that is delivered */
	st = vc_bench_state_new(VC_KEY_TYPE_EC_P256, error);
	if (st == NULL)
		goto out;
	req.vm_uuid = uuid;
	issued = vc_issuer_issue(st->issuer, &req, error);
	if (issued == NULL || (cert = vc_cert_to_pem(issued->cert, error)) == NULL ||
	    (key = vc_key_to_pem(issued->key, error)) == NULL)
		goto out;
	{
		GPtrArray *issuers = vc_ca_get_chain(st->ca);
		g_autoptr(GString) c = g_string_new(cert);
		for (guint i = 0; i < issuers->len; i++) {
			g_autofree char *p = vc_cert_to_pem(g_ptr_array_index(issuers, i), error);
			if (p == NULL)
				goto out;
			g_string_append(c, p);
		}
		chain = g_string_free(g_steal_pointer(&c), FALSE);
	}
	cert_path = g_build_filename(dir, "cert.pem", NULL);
	chain_path = g_build_filename(dir, "chain.pem", NULL);
	key_path = g_build_filename(dir, "key.pem", NULL);

	/* the reference: the agent's own round trip */
	for (gint i = 0; i < count; i++) {
		gint64 t0 = g_get_monotonic_time(), dt;
		if (!vc_guest_ping(channel, 10, error))
			goto out;
		dt = g_get_monotonic_time() - t0;
		g_array_append_val(pings_us, dt);
	}
	{
		VcGuestDelivery d = {.cert_pem = cert,
				     .chain_pem = chain,
				     .key_pem = key,
				     .cert_path = cert_path,
				     .chain_path = chain_path,
				     .key_path = key_path};
		times_us = vc_guest_bench_deliver(channel, &d, (guint)count, error);
		if (times_us == NULL)
			goto out;
		/* the way for agents that block guest-exec, over the files just
		 * delivered (it writes only over existing files) */
		d.method = VC_GUEST_METHOD_FILE_ONLY;
		file_only_us = vc_guest_bench_deliver(channel, &d, (guint)count, error);
		if (file_only_us == NULL)
			goto out;
	}
	times = vc_bench_sorted_ms(times_us);
	file_only = vc_bench_sorted_ms(file_only_us);
	pings = vc_bench_sorted_ms(pings_us);

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "benchmark");
	json_builder_add_string_value(b, "deliver");
	json_builder_set_member_name(b, "vm");
	json_builder_add_string_value(b, vm);
	json_builder_set_member_name(b, "deliveries");
	json_builder_add_int_value(b, times->len);
	json_builder_set_member_name(b, "deliver_p50_ms");
	json_builder_add_double_value(b, vc_bench_percentile(times, 50));
	json_builder_set_member_name(b, "deliver_p95_ms");
	json_builder_add_double_value(b, vc_bench_percentile(times, 95));
	json_builder_set_member_name(b, "deliver_file_only_p50_ms");
	json_builder_add_double_value(b, vc_bench_percentile(file_only, 50));
	json_builder_set_member_name(b, "deliver_file_only_p95_ms");
	json_builder_add_double_value(b, vc_bench_percentile(file_only, 95));
	json_builder_set_member_name(b, "deliver_p99_ms");
	json_builder_add_double_value(b, vc_bench_percentile(times, 99));
	json_builder_set_member_name(b, "deliver_file_only_p99_ms");
	json_builder_add_double_value(b, vc_bench_percentile(file_only, 99));
	/* every duration, sorted, so that runs can be pooled */
	json_builder_set_member_name(b, "deliver_ms");
	json_builder_begin_array(b);
	for (guint i = 0; i < times->len; i++)
		json_builder_add_double_value(b, g_array_index(times, double, i));
	json_builder_end_array(b);
	json_builder_set_member_name(b, "deliver_file_only_ms");
	json_builder_begin_array(b);
	for (guint i = 0; i < file_only->len; i++)
		json_builder_add_double_value(b, g_array_index(file_only, double, i));
	json_builder_end_array(b);
	json_builder_set_member_name(b, "load_1min");
	{
		double load[1] = {0};
		json_builder_add_double_value(b, getloadavg(load, 1) == 1 ? load[0] : -1.0);
	}
	json_builder_set_member_name(b, "ping_p50_ms");
	json_builder_add_double_value(b, vc_bench_percentile(pings, 50));
	json_builder_set_member_name(b, "target_p50_ms");
	json_builder_add_double_value(b, 50.0);
	json_builder_set_member_name(b, "what");
	json_builder_add_string_value(b, "cert+chain+key checked whole, written with their modes, "
					 "renamed into place; file-only: written in place, "
					 "SHA-256 read back and compared");
	json_builder_end_object(b);
	if (arg_json)
		vc_bench_print_json(json_builder_get_root(b));
	else
		g_print(
		    "%u deliveries into %s: p50 %.1f ms, p95 %.1f ms, p99 %.1f ms; file-only p50 "
		    "%.1f ms, p95 %.1f ms, p99 %.1f ms (guest-ping p50 %.1f ms)\n",
		    times->len, vm, vc_bench_percentile(times, 50), vc_bench_percentile(times, 95),
		    vc_bench_percentile(times, 99), vc_bench_percentile(file_only, 50),
		    vc_bench_percentile(file_only, 95), vc_bench_percentile(file_only, 99),
		    vc_bench_percentile(pings, 50));
	ok = TRUE;
out:
	g_clear_pointer(&channel, vc_guest_channel_free);
	if (dom != NULL)
		virDomainFree(dom);
	if (conn != NULL)
		virConnectClose(conn);
	g_clear_pointer(&st, vc_bench_state_free);
	return ok;
}
