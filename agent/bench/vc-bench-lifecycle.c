/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcert-bench lifecycle: the daemon's engine against a libvirt test driver
 * served by a libvirtd (events cross processes as in production). A storm of
 * N domains defined and started back to back by virsh, or (--reconcile) N
 * domains already defined when the engine starts. */
#include "vc-bench.h"

#include <sys/resource.h>

#include "vc-engine.h"
#include "vc-error.h"

typedef struct {
	GMainLoop *loop;
	GHashTable *started;  /* uuid -> gint64* monotonic µs of the STARTED event */
	GArray *latencies_ms; /* of double */
	guint target;
	guint issued;
	gboolean connected;
	gint64 first_event;
	gint64 last_issued;
	VcEngine *engine;
} VcBench;

static void
vc_bench_notify(JsonNode *data, gpointer user_data)
{
	VcBench *bench = user_data;
	JsonObject *o = json_node_get_object(data);
	const char *event = json_object_get_string_member_with_default(o, "event", "");
	const char *uuid = json_object_get_string_member_with_default(o, "vm_uuid", "");
	const char *detail = json_object_get_string_member_with_default(o, "detail", "");
	gint64 now = g_get_monotonic_time();

	if (g_str_equal(event, "libvirt-connected")) {
		/* the reconcile that follows the connection ran */
		bench->connected = TRUE;
		g_main_loop_quit(bench->loop);
	} else if (g_str_equal(event, "libvirt") && g_str_has_prefix(detail, "started")) {
		gint64 *t = g_new(gint64, 1);
		*t = now;
		if (bench->first_event == 0)
			bench->first_event = now;
		g_hash_table_insert(bench->started, g_strdup(uuid), t);
	} else if (g_str_equal(event, "issued")) {
		gint64 *t = g_hash_table_lookup(bench->started, uuid);
		double ms = t != NULL ? (double)(now - *t) / 1000.0 : 0.0;
		if (t != NULL)
			g_array_append_val(bench->latencies_ms, ms);
		bench->issued++;
		bench->last_issued = now;
		if (bench->issued >= bench->target)
			g_main_loop_quit(bench->loop);
	}
}

/* Per-VM decisions are logged as messages; a benchmark keeps only warnings. */
static GLogWriterOutput
vc_bench_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
		    gpointer user_data)
{
	if (level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG))
		return G_LOG_WRITER_HANDLED;
	return g_log_writer_default(level, fields, n_fields, user_data);
}

/* Writes a virsh script that defines and starts N test-driver domains. */
static char *
vc_bench_write_script(const char *dir, guint n, GError **error)
{
	g_autoptr(GString) script = g_string_new(NULL);
	g_autofree char *path = g_build_filename(dir, "storm.virsh", NULL);

	for (guint i = 0; i < n; i++) {
		g_autofree char *xml_path = g_strdup_printf("%s/bench-%u.xml", dir, i);
		g_autofree char *xml = g_strdup_printf(
		    "<domain type='test'><name>bench-%u</name><memory>65536</memory>"
		    "<os><type arch='x86_64'>hvm</type></os></domain>\n",
		    i);
		if (!g_file_set_contents(xml_path, xml, -1, error))
			return NULL;
		g_string_append_printf(script, "define %s; start bench-%u\n", xml_path, i);
	}
	if (!g_file_set_contents(path, script->str, (gssize)script->len, error))
		return NULL;
	return g_steal_pointer(&path);
}

static GSubprocess *
vc_bench_spawn_virsh(const char *uri, const char *script, GError **error)
{
	g_autoptr(GSubprocessLauncher) l =
	    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
	g_subprocess_launcher_set_stdin_file_path(l, script);
	return g_subprocess_launcher_spawn(l, error, "virsh", "-q", "-c", uri, NULL);
}

gboolean
vc_bench_lifecycle(int argc, char **argv, GError **error)
{
	gint domains = 1000;
	gboolean reconcile = FALSE;
	g_autofree char *uri = NULL;
	g_autofree char *tmp = NULL;
	g_autofree char *ca_dir = NULL;
	g_autofree char *db = NULL;
	g_autofree char *script = NULL;
	g_autoptr(VcConfig) config = NULL;
	g_autoptr(VcStore) store = NULL;
	g_autoptr(VcCa) ca = NULL;
	g_autoptr(VcPolicySet) set = vc_policy_set_new();
	g_autoptr(GSubprocess) virsh = NULL;
	g_autoptr(JsonBuilder) b = json_builder_new();
	const char *const permit[] = {"bench.virtcert.example", NULL};
	const char policy[] = "[bench]\nmatch-name=bench-*\nnames={name}.bench.virtcert.example\n";
	VcCaInitOptions opts = {.permit = permit, .key_type = VC_KEY_TYPE_EC_P256};
	VcBench bench = {0};
	virConnectPtr keeper = NULL;
	gint64 t0, storm_done = 0;
	double all_s;
	struct rusage ru;
	gboolean ok = FALSE;
	const GOptionEntry entries[] = {
	    {"domains", 0, 0, G_OPTION_ARG_INT, &domains, "Number of domains (default 1000)", "N"},
	    {"reconcile", 0, 0, G_OPTION_ARG_NONE, &reconcile,
	     "Domains exist before the engine starts: measure the startup reconcile", NULL},
	    {"uri", 0, 0, G_OPTION_ARG_STRING, &uri,
	     "libvirt test driver served by a libvirtd: test+unix:///default?socket=PATH", "URI"},
	    {NULL}};

	if (!vc_bench_parse("lifecycle", "--uri URI --domains N", entries, &argc, &argv, error))
		return FALSE;
	if (uri == NULL || domains < 1) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "--uri (a test driver served by a libvirtd, see "
				    "tests/bench/lifecycle.sh) and --domains >= 1 are required");
		return FALSE;
	}
	tmp = g_dir_make_tmp("virtcert-bench-XXXXXX", error);
	if (tmp == NULL)
		return FALSE;
	g_log_set_writer_func(vc_bench_log_writer, NULL, NULL);
	config = vc_config_new_default();
	vc_config_set_state_dir(config, tmp);
	config->reconcile_interval_s = 0;
	ca_dir = g_build_filename(tmp, "ca", NULL);
	db = g_build_filename(tmp, "virtcert.db", NULL);
	if (!vc_ca_init_self_signed(ca_dir, &opts, error) ||
	    (ca = vc_ca_load(ca_dir, error)) == NULL ||
	    (store = vc_store_open(db, error)) == NULL ||
	    !vc_policy_set_load_data(set, "bench.conf", policy, sizeof(policy) - 1, error))
		goto out;
	script = vc_bench_write_script(tmp, (guint)domains, error);
	if (script == NULL)
		goto out;

	/* the test driver keeps its domains while one client is connected */
	keeper = virConnectOpen(uri);
	if (keeper == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_LIBVIRT, "cannot connect to %s", uri);
		goto out;
	}
	bench.loop = g_main_loop_new(NULL, FALSE);
	bench.started = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	bench.latencies_ms = g_array_new(FALSE, FALSE, sizeof(double));
	bench.target = (guint)domains;
	bench.engine = vc_engine_new(config, store, ca, g_steal_pointer(&set));
	vc_engine_set_notify(bench.engine, vc_bench_notify, &bench);

	if (reconcile) {
		virsh = vc_bench_spawn_virsh(uri, script, error);
		if (virsh == NULL || !g_subprocess_wait_check(virsh, NULL, error))
			goto out;
		t0 = g_get_monotonic_time();
		vc_engine_connect_libvirt(bench.engine, uri);
		g_main_loop_run(bench.loop); /* connected: the reconcile ran */
		if (bench.issued < bench.target)
			g_main_loop_run(bench.loop);
	} else {
		vc_engine_connect_libvirt(bench.engine, uri);
		g_main_loop_run(bench.loop);
		t0 = g_get_monotonic_time();
		virsh = vc_bench_spawn_virsh(uri, script, error);
		if (virsh == NULL)
			goto out;
		g_main_loop_run(bench.loop);
		if (!g_subprocess_wait_check(virsh, NULL, error))
			goto out;
		storm_done = g_get_monotonic_time();
	}
	all_s = (double)(bench.last_issued - t0) / G_USEC_PER_SEC;
	getrusage(RUSAGE_SELF, &ru);
	g_array_sort(bench.latencies_ms, vc_bench_cmp_double);

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "benchmark");
	json_builder_add_string_value(b, reconcile ? "lifecycle-reconcile" : "lifecycle-storm");
	json_builder_set_member_name(b, "domains");
	json_builder_add_int_value(b, domains);
	json_builder_set_member_name(b, "issued");
	json_builder_add_int_value(b, bench.issued);
	json_builder_set_member_name(b, "all_issued_s");
	json_builder_add_double_value(b, all_s);
	if (!reconcile) {
		/* the reference: how long virsh itself needed to make the storm */
		json_builder_set_member_name(b, "virsh_storm_s");
		json_builder_add_double_value(b, (double)(storm_done - t0) / G_USEC_PER_SEC);
	}
	/* latency: STARTED event received -> certificate stored (storm only;
	 * in a reconcile every domain was started before the engine ran) */
	json_builder_set_member_name(b, "latency_p50_ms");
	if (reconcile)
		json_builder_add_null_value(b);
	else
		json_builder_add_double_value(b, vc_bench_percentile(bench.latencies_ms, 50));
	json_builder_set_member_name(b, "latency_p99_ms");
	if (reconcile)
		json_builder_add_null_value(b);
	else
		json_builder_add_double_value(b, vc_bench_percentile(bench.latencies_ms, 99));
	json_builder_set_member_name(b, "peak_rss_mib");
	json_builder_add_double_value(b, ru.ru_maxrss / 1024.0);
	json_builder_set_member_name(b, "target_s");
	json_builder_add_double_value(b, reconcile ? 10.0 : 2.0);
	json_builder_end_object(b);
	if (arg_json)
		vc_bench_print_json(json_builder_get_root(b));
	else
		g_print(
		    "%d domains: all issued in %.2f s, latency p50 %.1f ms p99 %.1f ms, peak RSS "
		    "%.1f MiB\n",
		    domains, all_s, vc_bench_percentile(bench.latencies_ms, 50),
		    vc_bench_percentile(bench.latencies_ms, 99), ru.ru_maxrss / 1024.0);
	ok = TRUE;
out:
	g_clear_pointer(&bench.engine, vc_engine_free);
	if (keeper != NULL)
		virConnectClose(keeper);
	g_clear_pointer(&bench.loop, g_main_loop_unref);
	g_clear_pointer(&bench.started, g_hash_table_unref);
	if (bench.latencies_ms != NULL)
		g_array_unref(bench.latencies_ms);
	g_clear_pointer(&store, vc_store_free);
	vc_bench_rm_rf(tmp);
	return ok;
}
