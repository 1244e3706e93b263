/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "vc-ca.h"
#include "vc-config.h"
#include "vc-domain-xml.h"
#include "vc-issuer.h"
#include "vc-store.h"

G_BEGIN_DECLS

/* Global options, parsed once in vc-cli.c (systemd's arg_ habit). */
extern char *arg_config;
extern char *arg_state_dir;
extern gboolean arg_json;

/* What every command gets: the configuration, and lazily the store and CA. */
typedef struct {
	VcConfig *config;
	VcStore *store;
	VcCa *ca;
	VcIssuer *issuer;
	int exit_status; /* a command's status when it succeeds (virtcert ocsp); 0 default */
	/* why the daemon's socket could not be reached when it exists
	 * (permission), for the offline fallback's error; NULL otherwise */
	char *daemon_error;
	/* the store may be created (ca init); every other command needs one */
	gboolean may_create_store;
} VcCli;

typedef gboolean (*VcCliCommandFunc)(VcCli *cli, int argc, char **argv, GError **error);

typedef struct {
	const char *name; /* "ca init", "issue", ... */
	const char *args; /* argument synopsis for help */
	const char *summary;
	VcCliCommandFunc func;
} VcCliCommand;

/* Parses ARGV with ENTRIES plus the global options; leaves positional
 * arguments in ARGV. Errors are VC_ERROR_USAGE. */
gboolean vc_cli_parse(const char *command, const char *args, const GOptionEntry *entries, int *argc,
		      char ***argv, GError **error);

VcConfig *vc_cli_get_config(VcCli *cli, GError **error);
char *vc_cli_get_ca_dir(VcCli *cli, GError **error);
VcStore *vc_cli_get_store(VcCli *cli, GError **error);
VcCa *vc_cli_get_ca(VcCli *cli, GError **error);
VcIssuer *vc_cli_get_issuer(VcCli *cli, GError **error);

/* Prints NODE as pretty JSON on stdout, consuming it. */
void vc_cli_print_json(JsonNode *node);
/* Writes DATA to PATH ("-" or NULL: stdout) with MODE. */
gboolean vc_cli_write_output(const char *path, const char *data, gsize len, int mode,
			     GError **error);

/* UUID given as is (lower-cased) when it is one; else a name-based UUID
 * (SHA-1, RFC 4122 4.3 style) so that a name maps to the same VM every time. */
char *vc_cli_vm_uuid_from_arg(const char *arg);
gboolean vc_cli_is_uuid(const char *s);

/* The daemon: running means its control socket accepts a connection. */
gboolean vc_cli_daemon_running(VcCli *cli);
JsonNode *vc_cli_daemon_call(VcCli *cli, const char *method, JsonObject *params, GError **error);

/* A domain XML from PATH ("-": stdin), parsed with the safe parser. */
VcDomainInfo *vc_cli_load_domain_xml(const char *path, GError **error);
/* The configuration, the domain XML at XML_PATH and the policy.d files
 * (into SET): what every offline policy command starts from. */
VcDomainInfo *vc_cli_load_domain_and_policies(VcCli *cli, const char *xml_path, VcPolicySet *set,
					      GError **error);

/* commands */
/* Certificates of the VM named ARG (UUID, or name as recorded), newest
 * first; the store must be open. */
GPtrArray *vc_cli_certs_of_vm(VcCli *cli, const char *arg, GError **error);
/* 2 to 40 hexadecimal digits. */
gboolean vc_cli_is_serial(const char *s);
gboolean vc_cli_ocsp(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_ca_init(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_ca_import(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_ca_show(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_issue(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_list(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_show(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_revoke(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_crl(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_status(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_renew(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_reload(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_watch(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_policy_show(VcCli *cli, int argc, char **argv, GError **error);
/* host trust (vc-cli-host.c) */
gboolean vc_cli_host_ca_init(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_host_ca_sign(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_host_ca_revoke(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_host_ca_crl(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_host_enroll(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_host_import(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_host_renew(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_host_show(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_host_install_libvirt_tls(VcCli *cli, int argc, char **argv, GError **error);
/* as virtcertd decides: FALSE (the reason in ERROR) while this host's
 * certificate is installed but fails its self-check, when nothing is issued
 * here; TRUE without one */
gboolean vc_cli_host_may_issue(VcCli *cli, GError **error);
gboolean vc_cli_policy_check(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_hook_install(VcCli *cli, int argc, char **argv, GError **error);
/* hook uninstall | status (vc-cli-hook.c) */
gboolean vc_cli_hook_uninstall(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_hook_status(VcCli *cli, int argc, char **argv, GError **error);
/* The installed hook below ROOT (NULL: /): /etc/libvirt/hooks/qemu.d/virtcert. */
char *vc_cli_hook_path(const char *root);
/* Runs HOOK --self-test (the daemon asked over the control socket, as
 * libvirt's call would); its answer line in RET_OUTPUT. */
gboolean vc_cli_hook_self_test(const char *hook, char **ret_output, GError **error);
/* virtcert doctor (vc-cli-doctor.c) */
gboolean vc_cli_doctor(VcCli *cli, int argc, char **argv, GError **error);
/* signed placement (vc-cli-placement.c) */
gboolean vc_cli_placement_sign(VcCli *cli, int argc, char **argv, GError **error);
gboolean vc_cli_placement_verify(VcCli *cli, int argc, char **argv, GError **error);

G_END_DECLS
