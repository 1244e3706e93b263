/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcert doctor: is this host set up right? Each finding says what to run
 * to fix it. Offline checks here (configuration, store, CA, host
 * certificate, URLs, clock, group, hook, policy.d); what only a libvirt
 * connection can tell (libvirt itself, each running VM's guest agent) is
 * asked of the daemon ("doctor" on the control socket): this program never
 * links libvirt. Exit 0 healthy, 1 warnings only, 2 errors. */
#include "vc-cli.h"

#include <grp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vc-ca.h"
#include "vc-error.h"
#include "vc-host.h"
#include "vc-qemu-conf.h"
#include "vc-store-json.h"

/* a CA that expires within this many days is a warning */
#define VC_DOCTOR_CA_WARN_DAYS 30
/* each revocation URL answers within this */
#define VC_DOCTOR_HTTP_TIMEOUT_S 3
/* how far ahead of the clock the store's newest record may be */
#define VC_DOCTOR_CLOCK_SLACK_S 300

typedef enum {
	VC_DOCTOR_OK,
	VC_DOCTOR_WARNING,
	VC_DOCTOR_ERROR,
} VcDoctorLevel;

typedef struct {
	JsonBuilder *findings;
	guint n_warnings;
	guint n_errors;
} VcDoctor;

static const char *const vc_doctor_level_names[] = {"ok", "warning", "error"};

/* One finding: CHECK names it; FIX (nullable) is what to run. */
G_GNUC_PRINTF(4, 5)
static void
vc_doctor_add(VcDoctor *d, VcDoctorLevel level, const char *fix, const char *check_and_fmt, ...)
{
	va_list ap;
	g_autofree char *text = NULL;
	g_auto(GStrv) parts = NULL;

	va_start(ap, check_and_fmt);
	text = g_strdup_vprintf(check_and_fmt, ap);
	va_end(ap);
	/* "check: message" */
	parts = g_strsplit(text, ": ", 2);
	if (level == VC_DOCTOR_WARNING)
		d->n_warnings++;
	else if (level == VC_DOCTOR_ERROR)
		d->n_errors++;
	json_builder_begin_object(d->findings);
	json_builder_set_member_name(d->findings, "check");
	json_builder_add_string_value(d->findings, parts[0]);
	json_builder_set_member_name(d->findings, "status");
	json_builder_add_string_value(d->findings, vc_doctor_level_names[level]);
	json_builder_set_member_name(d->findings, "message");
	json_builder_add_string_value(d->findings, parts[1] != NULL ? parts[1] : "");
	json_builder_set_member_name(d->findings, "fix");
	json_builder_add_string_value(d->findings, fix);
	json_builder_end_object(d->findings);
	if (!arg_json) {
		g_print("%-7s %s: %s\n",
			level == VC_DOCTOR_OK	     ? "ok"
			: level == VC_DOCTOR_WARNING ? "WARNING"
						     : "ERROR",
			parts[0], parts[1] != NULL ? parts[1] : "");
		if (fix != NULL && level != VC_DOCTOR_OK)
			g_print("        fix: %s\n", fix);
	}
}

static gint64
vc_doctor_asn1_to_unix(const ASN1_TIME *t)
{
	struct tm tm;
	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return (gint64)timegm(&tm);
}

/* GET URL (http:// only) within the timeout: the status code, or 0 with
 * ERROR. Only the status line is read. */
static guint
vc_doctor_http_get(const char *url, GError **error)
{
	g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GSocketConnection) conn = NULL;
	g_autoptr(GDataInputStream) in = NULL;
	g_autofree char *req = NULL;
	g_autofree char *line = NULL;
	g_autoptr(GError) local = NULL;
	g_autofree char *code_s = NULL;
	const char *host;
	guint64 code = 0;

	if (uri == NULL || g_strcmp0(g_uri_get_scheme(uri), "http") != 0 ||
	    g_uri_get_host(uri) == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "not an http:// URL");
		return 0;
	}
	host = g_uri_get_host(uri);
	g_socket_client_set_timeout(client, VC_DOCTOR_HTTP_TIMEOUT_S);
	conn = g_socket_client_connect_to_host(
	    client, host, (guint16)(g_uri_get_port(uri) > 0 ? g_uri_get_port(uri) : 80), NULL,
	    &local);
	if (conn == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE, "%s", local->message);
		return 0;
	}
	req = g_strdup_printf("GET %s HTTP/1.1\r\nHost: %s%s%s\r\nConnection: close\r\n\r\n",
			      *g_uri_get_path(uri) != '\0' ? g_uri_get_path(uri) : "/",
			      strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "");
	if (!g_output_stream_write_all(g_io_stream_get_output_stream(G_IO_STREAM(conn)), req,
				       strlen(req), NULL, NULL, &local)) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "%s", local->message);
		return 0;
	}
	in = g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(conn)));
	line = g_data_input_stream_read_line(in, NULL, NULL, &local);
	if (line != NULL && g_str_has_prefix(line, "HTTP/1.") && strlen(line) >= 12)
		code_s = g_strndup(line + 9, 3);
	if (code_s == NULL || !g_ascii_string_to_unsigned(code_s, 10, 100, 599, &code, NULL)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "no HTTP answer%s%s",
			    local ? ": " : "", local ? local->message : "");
		return 0;
	}
	return (guint)code;
}

static void
vc_doctor_check_urls(VcDoctor *d, const VcConfig *config, VcCa *ca)
{
	static const struct {
		VcCaUrlKind kind;
		const char *name;
		gboolean must_be_200;
	} urls[] = {
	    {VC_CA_URL_CRL, "CRL URL", TRUE},
	    {VC_CA_URL_OCSP, "OCSP URL", FALSE},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(urls); i++) {
		g_autofree char *url = vc_config_get_ca_url(config, urls[i].kind, vc_ca_get_id(ca));
		g_autoptr(GError) local = NULL;
		guint code;
		if (url == NULL) {
			vc_doctor_add(d, VC_DOCTOR_WARNING,
				      "set [ca] public-url=http://HOST:8458 in the configuration "
				      "(and [daemon] http-address), then restart virtcertd",
				      "%s: not set: leaves carry no revocation pointer, relying "
				      "parties cannot learn of a revocation",
				      urls[i].name);
			continue;
		}
		code = vc_doctor_http_get(url, &local);
		if (code == 0)
			vc_doctor_add(d, VC_DOCTOR_ERROR,
				      "check [daemon] http-address, the firewall and the proxy in "
				      "front of virtcertd; curl -sI URL from this host",
				      "%s: %s is not reachable from this host: %s", urls[i].name,
				      url, local->message);
		else if (urls[i].must_be_200 && code != 200)
			vc_doctor_add(d, VC_DOCTOR_ERROR,
				      "check that public-url names this daemon (curl -sI URL)",
				      "%s: %s answers HTTP %u, not the CRL", urls[i].name, url,
				      code);
		else
			vc_doctor_add(d, VC_DOCTOR_OK, NULL, "%s: %s answers (HTTP %u)",
				      urls[i].name, url, code);
	}
}

/* The CA, its expiry, its URLs, the clock against it, and the store. */
static void
vc_doctor_check_ca_and_store(VcDoctor *d, VcCli *cli)
{
	g_autoptr(GError) local = NULL;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	VcCa *ca;
	VcStore *store;

	ca = vc_cli_get_ca(cli, &local);
	if (ca == NULL) {
		vc_doctor_add(d, VC_DOCTOR_ERROR,
			      "virtcert ca init --permit DOMAIN --public-url http://HOST:8458",
			      "CA: %s", local->message);
		g_clear_error(&local);
	} else {
		gint64 not_after = vc_ca_get_not_after(ca);
		gint64 not_before = vc_doctor_asn1_to_unix(X509_get0_notBefore(vc_ca_get_cert(ca)));
		gint64 days = (not_after - now) / 86400;
		if (now < not_before)
			vc_doctor_add(d, VC_DOCTOR_ERROR,
				      "set the clock right (timedatectl, chrony), then check again",
				      "clock: this host's clock is before the CA's notBefore: "
				      "every certificate would look not yet valid");
		if (not_after <= now)
			vc_doctor_add(d, VC_DOCTOR_ERROR,
				      "rotate the CA: see 'CA rotation' in docs/admin-guide.md",
				      "CA: %s expired %" G_GINT64_FORMAT " day(s) ago",
				      vc_ca_get_id(ca), (now - not_after) / 86400);
		else if (days < VC_DOCTOR_CA_WARN_DAYS)
			vc_doctor_add(d, VC_DOCTOR_WARNING,
				      "rotate the CA before it expires: see 'CA rotation' in "
				      "docs/admin-guide.md",
				      "CA: %s expires in %" G_GINT64_FORMAT " day(s)",
				      vc_ca_get_id(ca), days);
		else
			vc_doctor_add(d, VC_DOCTOR_OK, NULL,
				      "CA: %s valid, expires in %" G_GINT64_FORMAT " day(s)",
				      vc_ca_get_id(ca), days);
		vc_doctor_check_urls(d, cli->config, ca);
	}

	store = vc_cli_get_store(cli, &local);
	if (store == NULL) {
		vc_doctor_add(d, VC_DOCTOR_ERROR,
			      "see docs/backup-restore.md (a lost store is never started afresh)",
			      "store: %s", local->message);
		return;
	}
	if (!vc_store_integrity_check(store, &local)) {
		vc_doctor_add(d, VC_DOCTOR_ERROR,
			      "stop virtcertd and restore the store from a backup", "store: %s",
			      local->message);
		g_clear_error(&local);
	} else {
		vc_doctor_add(d, VC_DOCTOR_OK, NULL, "store: %s passes PRAGMA integrity_check",
			      vc_store_get_path(store));
	}
	{
		g_autoptr(GPtrArray) recs = vc_store_cert_list(store, NULL, &local);
		gint64 newest = 0;
		for (guint i = 0; recs != NULL && i < recs->len; i++) {
			VcCertRecord *rec = g_ptr_array_index(recs, i);
			newest = MAX(newest, rec->created_at);
		}
		if (newest > now + VC_DOCTOR_CLOCK_SLACK_S) {
			g_autofree char *at = vc_time_to_string(newest);
			vc_doctor_add(
			    d, VC_DOCTOR_ERROR,
			    "set the clock right (timedatectl, chrony) before issuing more",
			    "clock: the store holds a certificate made at %s, after this "
			    "host's time: the clock went back",
			    at);
		} else if (ca != NULL &&
			   now >= vc_doctor_asn1_to_unix(X509_get0_notBefore(vc_ca_get_cert(ca)))) {
			vc_doctor_add(
			    d, VC_DOCTOR_OK, NULL,
			    "clock: after the CA's notBefore and the store's newest record");
		}
	}
}

/* libvirt's own TLS (qemu+tls://, the connection a peer-to-peer migration
 * makes between the libvirtds) checks the peer against /etc/pki/CA/cacrl.pem,
 * on both sides: the barrier against a revoked destination that QEMU does not
 * make. Looked at only where install-libvirt-tls put libvirt's files. */
static void
vc_doctor_check_libvirt_tls(VcDoctor *d, VcCli *cli, VcHost *host, const char *root)
{
	g_autofree char *cacert = g_build_filename(root, "etc/pki/CA/cacert.pem", NULL);
	g_autofree char *cacrl = g_build_filename(root, "etc/pki/CA/cacrl.pem", NULL);
	g_autofree char *host_crl = vc_config_get_host_path(cli->config, "crl");
	g_autoptr(X509_CRL) want = NULL;
	g_autoptr(X509_CRL) have = NULL;
	X509 *cert = vc_host_get_cert(host);
	int critical = -1;
	ASN1_BIT_STRING *ku = X509_get_ext_d2i(cert, NID_key_usage, &critical, NULL);

	/* libvirt up to 9.x refuses a certificate whose critical keyUsage
	 * lacks keyEncipherment, its own and a peer's (RFC 8813 forbids that
	 * bit for EC keys; `virtcert host-ca sign` makes it non-critical) */
	if (ku != NULL && critical == 1 && (X509_get_key_usage(cert) & KU_KEY_ENCIPHERMENT) == 0)
		vc_doctor_add(d, VC_DOCTOR_WARNING,
			      "have the host CA sign it with a non-critical keyUsage "
			      "(virtcert host-ca sign does)",
			      "libvirt TLS: the host certificate's keyUsage is critical without "
			      "keyEncipherment: libvirt before the RFC 8813 change (Debian 12's "
			      "9.0) refuses it for qemu+tls:// (QEMU's migration TLS accepts it)");
	ASN1_BIT_STRING_free(ku);
	if (!g_file_test(cacert, G_FILE_TEST_EXISTS) || host_crl == NULL ||
	    !g_file_test(host_crl, G_FILE_TEST_EXISTS))
		return;
	want = vc_crl_load(host_crl, NULL);
	if (want == NULL)
		return; /* the host certificate's own check says what is wrong */
	if (!g_file_test(cacrl, G_FILE_TEST_EXISTS))
		vc_doctor_add(d, VC_DOCTOR_WARNING, "virtcert host install-libvirt-tls",
			      "libvirt TLS: %s is missing although the host CA has a CRL (%s): "
			      "libvirt's qemu+tls:// connections (peer-to-peer migration) accept "
			      "revoked hosts",
			      cacrl, host_crl);
	else if ((have = vc_crl_load(cacrl, NULL)) == NULL || X509_CRL_match(want, have) != 0)
		vc_doctor_add(d, VC_DOCTOR_WARNING,
			      "virtcert host install-libvirt-tls (after every new CRL)",
			      "libvirt TLS: %s is not the host CA's CRL in place (%s): libvirt "
			      "judges peers by an older list",
			      cacrl, host_crl);
	else
		vc_doctor_add(d, VC_DOCTOR_OK, NULL, "libvirt TLS: %s is the host CA's CRL", cacrl);
}

static void
vc_doctor_check_host(VcDoctor *d, VcCli *cli, const char *root)
{
	g_autoptr(GError) local = NULL;
	g_autoptr(VcHost) host = vc_host_load(cli->config, &local);
	g_autofree char *qemu_conf = NULL;
	g_autofree char *reason = NULL;

	if (host == NULL && g_error_matches(local, VC_ERROR, VC_ERROR_NOT_FOUND))
		return; /* no host trust configured: nothing to check */
	if (host == NULL) {
		vc_doctor_add(d, VC_DOCTOR_ERROR, "virtcert host show; see docs/host-trust.md",
			      "host certificate: %s", local->message);
		return;
	}
	if (!vc_host_check(host, &local))
		vc_doctor_add(d, VC_DOCTOR_ERROR,
			      "have the host CA sign a new one: virtcert host enroll, then "
			      "virtcert host import CERT",
			      "host certificate: %s: %s", vc_host_get_fqdn(host), local->message);
	else
		vc_doctor_add(d, VC_DOCTOR_OK, NULL,
			      "host certificate: %s valid, chained to the host CA, not revoked",
			      vc_host_get_fqdn(host));
	/* migration over TLS: QEMU must be told to use and verify it
	 * (the check [placement] require-tls makes in the hook) */
	qemu_conf = g_build_filename(root, "etc", "libvirt", "qemu.conf", NULL);
	if (!g_file_test(qemu_conf, G_FILE_TEST_EXISTS))
		vc_doctor_add(
		    d, VC_DOCTOR_WARNING,
		    "install libvirt-daemon-system; then virtcert host install-libvirt-tls",
		    "migration TLS: cannot read %s", qemu_conf);
	else if (!vc_qemu_conf_check_tls(qemu_conf, &reason))
		vc_doctor_add(d, VC_DOCTOR_WARNING,
			      "virtcert host install-libvirt-tls; set migrate_tls_force = 1 "
			      "in qemu.conf, restart libvirtd",
			      "migration TLS: %s: a migration may go unencrypted or "
			      "unauthenticated",
			      reason);
	else
		vc_doctor_add(d, VC_DOCTOR_OK, NULL, "migration TLS: %s forces verified TLS",
			      qemu_conf);
	vc_doctor_check_libvirt_tls(d, cli, host, root);
}

static void
vc_doctor_check_group_and_hook(VcDoctor *d, VcCli *cli, const char *root)
{
	const char *group = cli->config->control_group;
	g_autofree char *hook = vc_cli_hook_path(root);
	g_autofree char *answer = NULL;
	g_autoptr(GError) local = NULL;

	if (group == NULL || *group == '\0')
		vc_doctor_add(d, VC_DOCTOR_WARNING,
			      "set [daemon] control-group=virtcert (and add the hook's user, "
			      "libvirt's, to it when libvirtd does not run as root)",
			      "control group: none set: only root may use the control socket");
	else if (getgrnam(group) == NULL) {
		g_autofree char *fix =
		    g_strdup_printf("groupadd --system %s, then restart virtcertd", group);
		vc_doctor_add(d, VC_DOCTOR_ERROR, fix,
			      "control group: '%s' does not exist: the socket stays root's", group);
	} else {
		const struct group *gr = getgrnam(group);
		struct stat st;
		vc_doctor_add(d, VC_DOCTOR_OK, NULL, "control group: '%s' exists", group);
		/* the running daemon's socket: the group must have been there
		 * when it started (it gives the socket to the group then) */
		if (gr != NULL && stat(cli->config->control_socket, &st) == 0 &&
		    st.st_gid != gr->gr_gid) {
			g_autofree char *fix = g_strdup_printf(
			    "systemctl restart virtcertd (it gives the socket to '%s' at start)",
			    group);
			vc_doctor_add(d, VC_DOCTOR_WARNING, fix,
				      "control socket: %s is not group '%s': its members cannot "
				      "reach the daemon",
				      cli->config->control_socket, group);
		}
	}

	if (!g_file_test(hook, G_FILE_TEST_EXISTS)) {
		vc_doctor_add(d, VC_DOCTOR_ERROR,
			      "virtcert hook install, then restart libvirtd (or virtqemud)",
			      "hook: not installed at %s: migrations are not checked", hook);
		return;
	}
	if (access(hook, X_OK) < 0) {
		vc_doctor_add(d, VC_DOCTOR_ERROR, "chmod 0755 HOOK (or virtcert hook install)",
			      "hook: %s is not executable", hook);
		return;
	}
	if (!vc_cli_hook_self_test(hook, &answer, &local))
		vc_doctor_add(d, VC_DOCTOR_ERROR,
			      "start virtcertd; the hook's user must reach the control socket "
			      "(control-group)",
			      "hook: %s cannot reach the daemon: %s", hook, local->message);
	else
		vc_doctor_add(d, VC_DOCTOR_OK, NULL, "hook: %s installed; %s", hook, answer);
}

static void
vc_doctor_check_policy(VcDoctor *d, VcCli *cli)
{
	g_autoptr(VcPolicySet) set = vc_policy_set_new();
	g_autoptr(GError) local = NULL;

	if (!vc_policy_set_load_dir(set, cli->config->policy_dir, &local))
		vc_doctor_add(d, VC_DOCTOR_ERROR,
			      "fix the file named, then virtcert reload (the daemon keeps its "
			      "previous policy meanwhile)",
			      "policy.d: refused: %s", local->message);
	else if (vc_policy_set_get_size(set) == 0)
		vc_doctor_add(d, VC_DOCTOR_WARNING,
			      "add a group to policy.d (see packaging/policy.d-example.conf)",
			      "policy.d: %s selects no VM (no group)", cli->config->policy_dir);
	else
		vc_doctor_add(d, VC_DOCTOR_OK, NULL, "policy.d: %u group(s) in %s",
			      vc_policy_set_get_size(set), cli->config->policy_dir);
}

/* What the daemon tells: libvirt and the guest agents. */
static void
vc_doctor_check_daemon(VcDoctor *d, VcCli *cli)
{
	g_autoptr(GError) local = NULL;
	g_autoptr(JsonNode) node = vc_cli_daemon_call(cli, "doctor", NULL, &local);
	JsonObject *o;
	JsonArray *vms;

	if (node == NULL) {
		vc_doctor_add(d, VC_DOCTOR_ERROR,
			      "systemctl start virtcertd (journalctl -u virtcertd says why it "
			      "stopped)",
			      "daemon: %s", local->message);
		return;
	}
	if (!JSON_NODE_HOLDS_OBJECT(node)) {
		vc_doctor_add(d, VC_DOCTOR_ERROR, NULL, "daemon: a malformed doctor answer");
		return;
	}
	o = json_node_get_object(node);
	if (!json_object_get_boolean_member_with_default(o, "libvirt_connected", FALSE)) {
		vc_doctor_add(d, VC_DOCTOR_ERROR,
			      "check libvirt-uri= in the configuration; systemctl status libvirtd "
			      "(or virtqemud); virsh -c URI list",
			      "libvirt: %s is not reachable: %s",
			      json_object_get_string_member_with_default(o, "libvirt_uri", "?"),
			      json_object_get_string_member_with_default(o, "libvirt_error", "?"));
		return;
	}
	vc_doctor_add(d, VC_DOCTOR_OK, NULL, "libvirt: connected to %s",
		      json_object_get_string_member_with_default(o, "libvirt_uri", "?"));
	vms = json_object_get_array_member(o, "vms");
	for (guint i = 0; vms != NULL && i < json_array_get_length(vms); i++) {
		JsonObject *v = json_array_get_object_element(vms, i);
		const char *name = json_object_get_string_member_with_default(v, "name", "?");
		JsonArray *problems = json_object_get_array_member(v, "agent_problems");
		if (!json_object_get_boolean_member_with_default(v, "agent_channel", FALSE)) {
			vc_doctor_add(
			    d, VC_DOCTOR_ERROR,
			    "add <channel type='unix'><target type='virtio' "
			    "name='org.qemu.guest_agent.0'/></channel> to its XML (virsh "
			    "edit), then restart the VM",
			    "VM %s: no guest agent channel in its domain XML: nothing can "
			    "be delivered",
			    name);
		} else if (!json_object_get_boolean_member_with_default(v, "agent_answered",
									FALSE)) {
			vc_doctor_add(
			    d, VC_DOCTOR_ERROR, "install and start qemu-guest-agent in the guest",
			    "VM %s: the guest agent does not answer: %s", name,
			    json_object_get_string_member_with_default(v, "agent_error", "?"));
		} else if (problems != NULL && json_array_get_length(problems) > 0) {
			g_autoptr(GString) p = g_string_new(NULL);
			for (guint j = 0; j < json_array_get_length(problems); j++)
				g_string_append_printf(p, "%s%s", j > 0 ? ", " : "",
						       json_array_get_string_element(problems, j));
			vc_doctor_add(d,
				      json_object_get_boolean_member_with_default(
					  v, "file_only_possible", FALSE)
					  ? VC_DOCTOR_WARNING
					  : VC_DOCTOR_ERROR,
				      "allow those commands in the guest's qemu-guest-agent (see "
				      "docs/guest-agent.md), or deliver file-only",
				      "VM %s: the guest agent blocks what delivery needs: %s", name,
				      p->str);
		} else {
			vc_doctor_add(d, VC_DOCTOR_OK, NULL,
				      "VM %s: guest agent answers and allows delivery", name);
		}
	}
}

gboolean
vc_cli_doctor(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *root = NULL;
	g_autoptr(JsonBuilder) b = json_builder_new();
	VcDoctor d = {.findings = b};
	const GOptionEntry entries[] = {
	    {"root", 0, 0, G_OPTION_ARG_FILENAME, &root,
	     "Look for libvirt's hook and qemu.conf below DIR (default /)", "DIR"},
	    {NULL}};

	if (!vc_cli_parse("doctor", "[--root DIR]", entries, &argc, &argv, error))
		return FALSE;
	if (argc != 1) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "usage: virtcert doctor [--root DIR] [--json]");
		return FALSE;
	}
	if (vc_cli_get_config(cli, error) == NULL)
		return FALSE;
	if (root == NULL)
		root = g_strdup("/");
	json_builder_begin_array(b);
	vc_doctor_check_ca_and_store(&d, cli);
	vc_doctor_check_policy(&d, cli);
	vc_doctor_check_group_and_hook(&d, cli, root);
	vc_doctor_check_host(&d, cli, root);
	vc_doctor_check_daemon(&d, cli);
	json_builder_end_array(b);
	if (arg_json) {
		g_autoptr(JsonBuilder) top = json_builder_new();
		json_builder_begin_object(top);
		json_builder_set_member_name(top, "healthy");
		json_builder_add_boolean_value(top, d.n_errors == 0 && d.n_warnings == 0);
		json_builder_set_member_name(top, "errors");
		json_builder_add_int_value(top, d.n_errors);
		json_builder_set_member_name(top, "warnings");
		json_builder_add_int_value(top, d.n_warnings);
		json_builder_set_member_name(top, "findings");
		json_builder_add_value(top, json_builder_get_root(b));
		json_builder_end_object(top);
		vc_cli_print_json(json_builder_get_root(top));
	} else {
		g_print("\n%u error(s), %u warning(s)\n", d.n_errors, d.n_warnings);
	}
	cli->exit_status = d.n_errors > 0 ? 2 : d.n_warnings > 0 ? 1 : 0;
	return TRUE;
}
