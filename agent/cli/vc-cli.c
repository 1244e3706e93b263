/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcert: the administrator's command line tool. */
#include "vc-cli.h"

#include <locale.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "vc-build-config.h"
#include "vc-cmdline.h"
#include "vc-error.h"

char *arg_config;
char *arg_state_dir;
gboolean arg_json;

static const GOptionEntry global_entries[] = {
    {"config", 0, 0, G_OPTION_ARG_FILENAME, &arg_config,
     "Configuration file (default " VC_SYSCONFDIR "/virtcert.conf)", "FILE"},
    {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &arg_state_dir,
     "State directory, overriding the configuration's", "DIR"},
    {"json", 0, 0, G_OPTION_ARG_NONE, &arg_json, "Print machine-readable JSON", NULL},
    {NULL}};

static const VcCliCommand commands[] = {
    {"ca init", "--permit DOMAIN [--permit DOMAIN…] [--key TYPE] [--csr FILE]",
     "Create the restricted intermediate CA (self-signed root, or a CSR for your root)",
     vc_cli_ca_init},
    {"ca import", "CERT [--root ROOT]", "Install the signed intermediate certificate",
     vc_cli_ca_import},
    {"ca show", "[--pem] [--chain]", "Show the local CA", vc_cli_ca_show},
    {"issue", "--vm NAME|UUID [--dns NAME…]", "Issue a certificate for a VM by hand", vc_cli_issue},
    {"list", "[--vm NAME|UUID] [--status STATUS]", "List certificates", vc_cli_list},
    {"show", "SERIAL|VM [--pem]", "Show a certificate, or the certificates of a VM", vc_cli_show},
    {"revoke", "SERIAL|VM [--reason REASON]", "Revoke a certificate, or all of a VM's",
     vc_cli_revoke},
    {"ocsp", "SERIAL|VM [--url URL]",
     "Ask the OCSP responder about a certificate (0 good, 4 "
     "revoked, 5 unknown)",
     vc_cli_ocsp},
    {"crl", "[--out FILE] [--pem]", "Build and print a new CRL from the store", vc_cli_crl},
    {"status", "", "Show the daemon's state (needs virtcertd)", vc_cli_status},
    {"renew", "VM", "Renew a VM's certificate now (needs virtcertd)", vc_cli_renew},
    {"reload", "", "Reload policy.d (needs virtcertd)", vc_cli_reload},
    {"watch", "", "Stream the daemon's events and decisions (needs virtcertd)", vc_cli_watch},
    {"policy show", "--xml DOMAIN.xml", "What the daemon would decide for a domain XML",
     vc_cli_policy_show},
    {"policy check", "[--xml] DOMAIN.xml --host HOSTCERT.pem",
     "May this VM run on that host? (exit 0 allow, 2 deny)", vc_cli_policy_check},
    {"host-ca init", "--dir DIR [--cn CN]", "Create a lab host CA", vc_cli_host_ca_init},
    {"host-ca sign", "CSR --dir DIR [--days N] [--backdate N] --out CERT",
     "Sign a host's CSR (FQDN and urn:virtcert:host: attributes)", vc_cli_host_ca_sign},
    {"host-ca revoke", "CERT --dir DIR", "Revoke a host certificate", vc_cli_host_ca_revoke},
    {"host-ca crl", "--dir DIR --out CRL", "Write the host CA's CRL", vc_cli_host_ca_crl},
    {"host enroll", "--ca HOSTCA.pem [--attr KEY=VALUE…] [--fqdn NAME]",
     "Make this host's key and CSR, trust the host CA", vc_cli_host_enroll},
    {"host import", "CERT", "Install this host's signed certificate", vc_cli_host_import},
    {"host renew", "[--dir HOSTCA-DIR [--days N]]",
     "Renew this host's certificate: a CSR for the same key, or signed with --dir",
     vc_cli_host_renew},
    {"host show", "", "Show this host's certificate and its self-check", vc_cli_host_show},
    {"host install-libvirt-tls", "[--root DIR] [--pkipath DIR [--owner USER]]",
     "Install the host certificate as libvirt's and QEMU's TLS certificate",
     vc_cli_host_install_libvirt_tls},
    {"placement sign", "--key K --cert C --vm UUID [--not-after T] PLACEMENT.xml",
     "Sign a VM's placement as its owner (prints the signed <virtcert:placement>)",
     vc_cli_placement_sign},
    {"placement verify", "[--owner-ca F] [--vm UUID] DOMAIN.xml|PLACEMENT.xml",
     "Check a signed placement offline (exit 0 valid, 2 refused)", vc_cli_placement_verify},
    {"hook install", "[--root DIR] [--hook PATH] [--symlink]",
     "Install virtcert-hook as libvirt's QEMU hook", vc_cli_hook_install},
    {"hook uninstall", "[--root DIR]", "Remove the installed hook", vc_cli_hook_uninstall},
    {"hook status", "[--root DIR]",
     "Is the hook installed and executable, and does the daemon answer it?", vc_cli_hook_status},
    {"doctor", "[--root DIR]",
     "Check the whole setup; each finding says how to fix it (exit 0 healthy, 1 "
     "warnings, 2 errors)",
     vc_cli_doctor},
    {NULL}};

/* Usage of every command, or of those whose first word is GROUP. */
static void
vc_cli_print_usage_of(FILE *out, const char *group)
{
	gsize glen = group != NULL ? strlen(group) : 0;

	fprintf(out,
		"Usage: virtcert [--config FILE] [--state-dir DIR] [--json] %s%sCOMMAND …\n\n"
		"Commands:\n",
		group != NULL ? group : "", group != NULL ? " " : "");
	for (guint i = 0; commands[i].name != NULL; i++) {
		if (group != NULL &&
		    (strncmp(commands[i].name, group, glen) != 0 || commands[i].name[glen] != ' '))
			continue;
		fprintf(out, "  %-12s %s\n      %s\n", commands[i].name, commands[i].args,
			commands[i].summary);
	}
}

/* Is WORD the first word of several commands ("hook", "host", "ca")? */
static gboolean
vc_cli_is_group(const char *word)
{
	gsize len = strlen(word);
	for (guint i = 0; commands[i].name != NULL; i++)
		if (strncmp(commands[i].name, word, len) == 0 && commands[i].name[len] == ' ')
			return TRUE;
	return FALSE;
}

static void
vc_cli_print_usage(FILE *out)
{
	vc_cli_print_usage_of(out, NULL);
	fprintf(out, "\nExit status: 0 success, 1 usage error, 2 refused by policy, 3 failure.\n"
		     "'virtcert COMMAND --help' describes a command's options.\n");
}

gboolean
vc_cli_parse(const char *command, const char *args, const GOptionEntry *entries, int *argc,
	     char ***argv, GError **error)
{
	return vc_cmdline_parse("virtcert", command, args, global_entries, entries, argc, argv,
				error);
}

/* Loaded on first use, after the command parsed --config and --state-dir. */
VcConfig *
vc_cli_get_config(VcCli *cli, GError **error)
{
	const char *path = arg_config != NULL ? arg_config : VC_SYSCONFDIR "/virtcert.conf";

	if (cli->config != NULL)
		return cli->config;
	cli->config = vc_config_load(path, arg_config != NULL, error);
	if (cli->config == NULL)
		return NULL;
	if (arg_state_dir != NULL)
		vc_config_set_state_dir(cli->config, arg_state_dir);
	return cli->config;
}

char *
vc_cli_get_ca_dir(VcCli *cli, GError **error)
{
	if (vc_cli_get_config(cli, error) == NULL)
		return NULL;
	return g_build_filename(cli->config->state_dir, "ca", NULL);
}

/* Before the store is opened: a state directory or store that is not there
 * is an error (a typo in --state-dir must not become a new, empty store:
 * only `ca init` creates them), and one this user may not open says so,
 * with the daemon's socket problem if that is why we are here. */
static gboolean
vc_cli_check_store_access(VcCli *cli, GError **error)
{
	const char *dir = cli->config->state_dir;
	g_autofree char *db = g_build_filename(dir, VC_STORE_FILE, NULL);
	g_autofree char *marker = g_build_filename(dir, VC_STORE_MARKER, NULL);
	const char *also = cli->daemon_error;
	int saved;

	if (cli->may_create_store) {
		if (g_mkdir_with_parents(dir, 0700) < 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_IO,
				    "cannot create state directory %s: %s", dir, g_strerror(errno));
			return FALSE;
		}
		return TRUE;
	}
	if (access(db, R_OK | W_OK) == 0)
		return TRUE;
	saved = errno;
	/* a store that was there and is lost, or on a read-only file system:
	 * the store's own refusal says so */
	if ((saved == ENOENT && g_file_test(marker, G_FILE_TEST_EXISTS)) || saved == EROFS)
		return TRUE;
	if (saved == ENOENT && access(dir, X_OK) < 0 && errno == ENOENT) {
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND,
			    "state directory %s does not exist (check --state-dir or state-dir= "
			    "in the configuration; 'virtcert ca init' creates it)",
			    dir);
		return FALSE;
	}
	if (saved == ENOENT && access(dir, X_OK) == 0) {
		g_autofree char *ca_dir = g_build_filename(dir, "ca", NULL);
		if (g_file_test(ca_dir, G_FILE_TEST_IS_DIR))
			g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND,
				    "no store %s yet: nothing was issued here (virtcertd creates "
				    "it when it starts)",
				    db);
		else
			g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND,
				    "no store %s: nothing was set up in %s yet (run 'virtcert ca "
				    "init' first, or check --state-dir)",
				    db, dir);
		return FALSE;
	}
	g_set_error(error, VC_ERROR, saved == EACCES ? VC_ERROR_UNAVAILABLE : VC_ERROR_IO,
		    "%s%scannot open the store %s: %s%s", also ? also : "", also ? "; and " : "",
		    db, g_strerror(saved == ENOENT ? EACCES : saved),
		    saved == EACCES || saved == ENOENT
			? " (the state directory is the daemon's: run as root, or through the "
			  "running daemon)"
			: "");
	return FALSE;
}

VcStore *
vc_cli_get_store(VcCli *cli, GError **error)
{
	if (cli->store != NULL)
		return cli->store;
	if (vc_cli_get_config(cli, error) == NULL)
		return NULL;
	if (!vc_cli_check_store_access(cli, error))
		return NULL;
	cli->store = vc_store_open_state_dir(cli->config->state_dir, error);
	if (cli->store != NULL) {
		guint n = 0;
		/* a PENDING row left by a crash is resolved before anything else */
		if (!vc_store_recover(cli->store, &n, error))
			return NULL;
		if (n > 0)
			g_printerr(
			    "virtcert: %u certificate(s) left pending by an interrupted issuance "
			    "were abandoned and are listed on the CRL\n",
			    n);
	}
	return cli->store;
}

VcCa *
vc_cli_get_ca(VcCli *cli, GError **error)
{
	g_autofree char *dir = NULL;

	if (cli->ca != NULL)
		return cli->ca;
	dir = vc_cli_get_ca_dir(cli, error);
	if (dir == NULL)
		return NULL;
	cli->ca = vc_ca_load(dir, error);
	if (cli->ca == NULL)
		g_prefix_error(error, "no usable CA (run 'virtcert ca init' first): ");
	return cli->ca;
}

VcIssuer *
vc_cli_get_issuer(VcCli *cli, GError **error)
{
	if (cli->issuer != NULL)
		return cli->issuer;
	if (vc_cli_get_ca(cli, error) == NULL)
		return NULL;
	/* a CA there means the state directory is no typo: issuing may make
	 * the store (as the daemon's first start would) */
	cli->may_create_store = TRUE;
	if (vc_cli_get_store(cli, error) == NULL)
		return NULL;
	cli->issuer = vc_issuer_new(cli->config, cli->ca, cli->store);
	return cli->issuer;
}

void
vc_cli_print_json(JsonNode *node)
{
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autofree char *text = NULL;

	json_generator_set_pretty(gen, TRUE);
	json_generator_set_root(gen, node);
	text = json_generator_to_data(gen, NULL);
	g_print("%s\n", text);
	json_node_unref(node);
}

gboolean
vc_cli_write_output(const char *path, const char *data, gsize len, int mode, GError **error)
{
	if (path == NULL || g_strcmp0(path, "-") == 0) {
		if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot write to stdout: %s",
				    g_strerror(errno));
			return FALSE;
		}
		return TRUE;
	}
	return vc_file_write_atomic(path, data, len, mode, error);
}

gboolean
vc_cli_is_uuid(const char *s)
{
	return g_uuid_string_is_valid(s);
}

char *
vc_cli_vm_uuid_from_arg(const char *arg)
{
	/* a fixed namespace for names given on the command line */
	static const guint8 ns[16] = {0x6f, 0x1c, 0x3a, 0x52, 0x9d, 0x41, 0x4e, 0x07,
				      0x8b, 0x2e, 0x51, 0x7a, 0xc0, 0x93, 0x11, 0xe4};
	g_autoptr(GChecksum) sha1 = NULL;
	guint8 digest[20];
	gsize len = sizeof(digest);

	if (vc_cli_is_uuid(arg))
		return g_ascii_strdown(arg, -1);
	sha1 = g_checksum_new(G_CHECKSUM_SHA1);
	g_checksum_update(sha1, ns, sizeof(ns));
	g_checksum_update(sha1, (const guchar *)arg, strlen(arg));
	g_checksum_get_digest(sha1, digest, &len);
	digest[6] = (digest[6] & 0x0f) | 0x50; /* version 5 */
	digest[8] = (digest[8] & 0x3f) | 0x80; /* RFC 4122 variant */
	return g_strdup_printf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
			       "%02x%02x%02x%02x%02x%02x",
			       digest[0], digest[1], digest[2], digest[3], digest[4], digest[5],
			       digest[6], digest[7], digest[8], digest[9], digest[10], digest[11],
			       digest[12], digest[13], digest[14], digest[15]);
}

/* Index of the next argument after the option at K: global options that take
 * a separate value consume two. */
static int
vc_cli_skip_option(int argc, char **argv, int k)
{
	if ((g_strcmp0(argv[k], "--config") == 0 || g_strcmp0(argv[k], "--state-dir") == 0) &&
	    k + 1 < argc)
		return k + 2;
	return k + 1;
}

/* Finds the command named by the leading words of ARGV (after the program). */
static const VcCliCommand *
vc_cli_find_command(int argc, char **argv, int *ret_words)
{
	const VcCliCommand *best = NULL;
	int best_words = 0;

	for (guint i = 0; commands[i].name != NULL; i++) {
		g_auto(GStrv) words = g_strsplit(commands[i].name, " ", -1);
		int n = (int)g_strv_length(words);
		int j, k = 1;
		/* words may be interleaved with global options: skip those */
		for (j = 0; j < n; j++) {
			while (k < argc && argv[k][0] == '-')
				k = vc_cli_skip_option(argc, argv, k);
			if (k >= argc || g_strcmp0(argv[k], words[j]) != 0)
				break;
			k++;
		}
		if (j == n && n > best_words) {
			best = &commands[i];
			best_words = n;
		}
	}
	*ret_words = best_words;
	return best;
}

static void
vc_cli_clear(VcCli *cli)
{
	g_clear_pointer(&cli->issuer, vc_issuer_free);
	g_clear_pointer(&cli->ca, vc_ca_free);
	g_clear_pointer(&cli->store, vc_store_free);
	g_clear_pointer(&cli->config, vc_config_free);
	g_clear_pointer(&cli->daemon_error, g_free);
}

int
main(int argc, char **argv)
{
	VcCli cli = {0};
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rest = g_ptr_array_new();
	const VcCliCommand *cmd;
	int words = 0, removed = 0, status;

	setlocale(LC_ALL, "");
	if (argc < 2 || g_strcmp0(argv[1], "--help") == 0 || g_strcmp0(argv[1], "-h") == 0 ||
	    g_strcmp0(argv[1], "help") == 0) {
		vc_cli_print_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 1 : 0;
	}
	if (g_strcmp0(argv[1], "--version") == 0) {
		g_print("virtcert %s\n", VC_VERSION);
		return 0;
	}
	cmd = vc_cli_find_command(argc, argv, &words);
	/* "virtcert hook --help", "virtcert host": the group's commands */
	if (cmd == NULL) {
		int k = 1;
		while (k < argc && argv[k][0] == '-')
			k = vc_cli_skip_option(argc, argv, k);
		if (k < argc && vc_cli_is_group(argv[k])) {
			gboolean help = FALSE;
			const char *next = NULL;
			for (int j = 1; j < argc; j++)
				help |= g_strcmp0(argv[j], "--help") == 0 ||
					g_strcmp0(argv[j], "-h") == 0;
			for (int j = k + 1; j < argc && next == NULL; j++)
				if (argv[j][0] != '-')
					next = argv[j];
			if (next != NULL)
				g_printerr("virtcert: unknown command '%s %s'\n", argv[k], next);
			vc_cli_print_usage_of(help && next == NULL ? stdout : stderr, argv[k]);
			return help && next == NULL ? 0 : 1;
		}
	}
	if (cmd == NULL) {
		g_printerr("virtcert: unknown command '%s'\n", argv[1]);
		if (g_strcmp0(argv[1], "bench") == 0)
			g_printerr(
			    "virtcert: the benchmarks are virtcert-bench's (libexec/virtcert/, "
			    "built with -Dtest_seams=true): virtcert-bench "
			    "issue|lifecycle|deliver\n");
		vc_cli_print_usage(stderr);
		return 1;
	}
	/* argv for the command: program name + everything but the command words */
	g_ptr_array_add(rest, argv[0]);
	for (int i = 1; i < argc;) {
		if (removed < words && argv[i][0] != '-') {
			removed++;
			i++;
			continue;
		}
		if (removed < words) {
			int next = vc_cli_skip_option(argc, argv, i);
			for (; i < next; i++)
				g_ptr_array_add(rest, argv[i]);
			continue;
		}
		g_ptr_array_add(rest, argv[i++]);
	}
	g_ptr_array_add(rest, NULL);

	cmd->func(&cli, (int)rest->len - 1, (char **)rest->pdata, &error);
	status = error != NULL ? vc_error_exit_status(error) : cli.exit_status;
	if (error != NULL)
		g_printerr("virtcert %s: %s\n", cmd->name, error->message);
	vc_cli_clear(&cli);
	return status;
}
