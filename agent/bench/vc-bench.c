/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcert-bench: the benchmarks, apart from virtcert so that the
 * administrator's tool links no engine, libvirt, guest or HTTP code. Every
 * benchmark works in a throwaway state directory of its own. */
#include "vc-bench.h"

#include <glib/gstdio.h>

#include "vc-cmdline.h"
#include <locale.h>
#include <stdio.h>

#include "vc-build-config.h"
#include "vc-error.h"

gboolean arg_json;

static const GOptionEntry global_entries[] = {
    {"json", 0, 0, G_OPTION_ARG_NONE, &arg_json, "Print machine-readable JSON", NULL}, {NULL}};

static const VcBenchCommand commands[] = {
    {"issue", "--count N [--key TYPE] [--batch N]",
     "The full issuance path beside the raw signing rate of the same key type", vc_bench_issue},
    {"lifecycle", "--uri URI --domains N [--reconcile]",
     "The daemon's engine against a libvirt test driver served by a libvirtd", vc_bench_lifecycle},
    {"deliver", "--uri URI --vm NAME [--count N] [--dir PATH]",
     "Deliveries into a running VM through its guest agent, beside guest-ping", vc_bench_deliver},
    {"crl", "[--entries N] [--rounds N]",
     "A CRL rebuilt from a store of N revoked certificates: build time and size", vc_bench_crl},
    {"ocsp", "[--count N] [--requests N] [--revocations N]",
     "OCSP over HTTP against a store of N certificates, revocation to visible, raw signing",
     vc_bench_ocsp},
    {"placement-sig", "--xml FILE --owner-ca FILE [--count N]",
     "An owner's placement signature checked in the daemon, beside parsing its domain XML",
     vc_bench_placement_sig},
    {NULL}};

static void
vc_bench_print_usage(FILE *out)
{
	fprintf(out, "Usage: virtcert-bench [--json] COMMAND …\n\nCommands:\n");
	for (guint i = 0; commands[i].name != NULL; i++)
		fprintf(out, "  %-10s %s\n      %s\n", commands[i].name, commands[i].args,
			commands[i].summary);
	fprintf(out, "\nExit status: 0 success, 1 usage error, 3 failure.\n"
		     "'virtcert-bench COMMAND --help' describes a command's options.\n");
}

gboolean
vc_bench_parse(const char *command, const char *args, const GOptionEntry *entries, int *argc,
	       char ***argv, GError **error)
{
	return vc_cmdline_parse("virtcert-bench", command, args, global_entries, entries, argc,
				argv, error);
}

void
vc_bench_print_json(JsonNode *node)
{
	g_autofree char *text = json_to_string(node, TRUE);

	g_print("%s\n", text);
	json_node_unref(node);
}

void
vc_bench_rm_rf(const char *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const char *name;

	if (dir != NULL) {
		while ((name = g_dir_read_name(dir)) != NULL) {
			g_autofree char *child = g_build_filename(path, name, NULL);
			vc_bench_rm_rf(child);
		}
	}
	g_remove(path);
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rest = g_ptr_array_new();
	const VcBenchCommand *cmd = NULL;
	const char *word = NULL;
	int status;

	setlocale(LC_ALL, "");
	if (argc < 2 || g_strcmp0(argv[1], "--help") == 0 || g_strcmp0(argv[1], "-h") == 0 ||
	    g_strcmp0(argv[1], "help") == 0) {
		vc_bench_print_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 1 : 0;
	}
	if (g_strcmp0(argv[1], "--version") == 0) {
		g_print("virtcert-bench %s\n", VC_VERSION);
		return 0;
	}
	/* the command is the first word that is not an option (--json may come first) */
	g_ptr_array_add(rest, argv[0]);
	for (int i = 1; i < argc; i++) {
		if (word == NULL && argv[i][0] != '-') {
			word = argv[i];
			continue;
		}
		g_ptr_array_add(rest, argv[i]);
	}
	g_ptr_array_add(rest, NULL);
	for (guint i = 0; word != NULL && commands[i].name != NULL; i++) {
		if (g_strcmp0(commands[i].name, word) == 0)
			cmd = &commands[i];
	}
	if (cmd == NULL) {
		g_printerr("virtcert-bench: unknown command '%s'\n", word != NULL ? word : "");
		vc_bench_print_usage(stderr);
		return 1;
	}

	cmd->func((int)rest->len - 1, (char **)rest->pdata, &error);
	status = vc_error_exit_status(error);
	if (error != NULL)
		g_printerr("virtcert-bench %s: %s\n", cmd->name, error->message);
	return status;
}

VcBenchState *
vc_bench_state_new(VcKeyType type, GError **error)
{
	const char *const permit[] = {"bench.virtcert.example", NULL};
	VcCaInitOptions opts = {.permit = permit, .key_type = type};
	g_autoptr(VcBenchState) st = g_new0(VcBenchState, 1);
	g_autofree char *ca_dir = NULL;
	g_autofree char *db = NULL;

	st->dir = g_dir_make_tmp("virtcert-bench-XXXXXX", error);
	if (st->dir == NULL)
		return NULL;
	st->config = vc_config_new_default();
	vc_config_set_state_dir(st->config, st->dir);
	ca_dir = g_build_filename(st->dir, "ca", NULL);
	db = g_build_filename(st->dir, "virtcert.db", NULL);
	if (!vc_ca_init_self_signed(ca_dir, &opts, error) ||
	    (st->ca = vc_ca_load(ca_dir, error)) == NULL ||
	    (st->store = vc_store_open(db, error)) == NULL)
		return NULL;
	st->issuer = vc_issuer_new(st->config, st->ca, st->store);
	return g_steal_pointer(&st);
}

VcBenchState *
vc_bench_state_new_for_key(const char *key, VcKeyType *type, GError **error)
{
	if (key != NULL && !vc_key_type_from_string(key, type, error))
		return NULL;
	return vc_bench_state_new(*type, error);
}

GPtrArray *
vc_bench_issue_batch(VcIssuer *issuer, gint first, guint n, VcKeyType type, EVP_PKEY *public_key,
		     GError **error)
{
	g_autofree VcIssueRequest *reqs = g_new0(VcIssueRequest, n);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
	g_autoptr(GPtrArray) uuids = g_ptr_array_new_with_free_func(g_free);

	for (guint i = 0; i < n; i++) {
		GStrv v = g_new0(char *, 2);
		v[0] = g_strdup_printf("vm-%d.bench.virtcert.example", first + (int)i);
		g_ptr_array_add(names, v);
		g_ptr_array_add(uuids, g_uuid_string_random());
		reqs[i].vm_uuid = g_ptr_array_index(uuids, i);
		reqs[i].vm_name = v[0];
		reqs[i].dns_names = (const char *const *)v;
		reqs[i].key_type = type;
		reqs[i].public_key = public_key;
	}
	return vc_issuer_issue_batch(issuer, reqs, n, error);
}

int
vc_bench_cmp_double(gconstpointer a, gconstpointer b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y ? 1 : 0;
}

double
vc_bench_percentile(GArray *sorted, double p)
{
	guint i;
	if (sorted->len == 0)
		return 0;
	i = (guint)MIN((double)sorted->len - 1, p / 100.0 * sorted->len);
	return g_array_index(sorted, double, i);
}

void
vc_bench_state_free(VcBenchState *st)
{
	if (st == NULL)
		return;
	g_clear_pointer(&st->issuer, vc_issuer_free);
	g_clear_pointer(&st->store, vc_store_free);
	g_clear_pointer(&st->ca, vc_ca_free);
	g_clear_pointer(&st->config, vc_config_free);
	if (st->dir != NULL)
		vc_bench_rm_rf(st->dir);
	g_free(st->dir);
	g_free(st);
}
