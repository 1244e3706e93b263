/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "vc-ca.h"
#include "vc-config.h"
#include "vc-issuer.h"
#include "vc-store.h"

G_BEGIN_DECLS

/* The global option, parsed with each command's own (vc-bench.c). */
extern gboolean arg_json;

typedef gboolean (*VcBenchCommandFunc)(int argc, char **argv, GError **error);

typedef struct {
	const char *name; /* "issue", "lifecycle", ... */
	const char *args; /* argument synopsis for help */
	const char *summary;
	VcBenchCommandFunc func;
} VcBenchCommand;

/* Parses ARGV with ENTRIES plus --json; errors are VC_ERROR_USAGE. */
gboolean vc_bench_parse(const char *command, const char *args, const GOptionEntry *entries,
			int *argc, char ***argv, GError **error);
/* Prints NODE as pretty JSON on stdout, consuming it. */
void vc_bench_print_json(JsonNode *node);
/* Removes PATH and everything below it (a benchmark's throwaway state). */
void vc_bench_rm_rf(const char *path);

/* A throwaway CA (of TYPE, permitting bench.virtcert.example), store and
 * issuer in a temporary directory: a benchmark never touches real state.
 * Freeing it removes the directory. */
typedef struct {
	char *dir;
	VcConfig *config;
	VcCa *ca;
	VcStore *store;
	VcIssuer *issuer;
} VcBenchState;

VcBenchState *vc_bench_state_new(VcKeyType type, GError **error);
void vc_bench_state_free(VcBenchState *st);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcBenchState, vc_bench_state_free)

/* commands */
gboolean vc_bench_issue(int argc, char **argv, GError **error);
gboolean vc_bench_lifecycle(int argc, char **argv, GError **error);
gboolean vc_bench_deliver(int argc, char **argv, GError **error);
gboolean vc_bench_crl(int argc, char **argv, GError **error);
gboolean vc_bench_ocsp(int argc, char **argv, GError **error);
gboolean vc_bench_placement_sig(int argc, char **argv, GError **error);

G_END_DECLS
