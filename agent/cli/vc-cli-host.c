/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcert host-ca …, host …, policy check, hook install: host trust from
 * the command line. */
#include "vc-cli.h"

#include <errno.h>
#include <grp.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "vc-domain-xml.h"
#include "vc-error.h"
#include "vc-host-ca.h"
#include "vc-host-libvirt-tls.h"
#include "vc-host.h"
#include "vc-placement.h"

static gboolean
vc_cli_host_usage_error(GError **error, const char *usage)
{
	g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "usage: %s", usage);
	return FALSE;
}

static char *
vc_cli_host_fmt_time(gint64 t)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S UTC") : g_strdup("?");
}

/* ---- host-ca ------------------------------------------------------------ */

gboolean
vc_cli_host_ca_init(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *dir = NULL;
	g_autofree char *cn = NULL;
	g_autofree char *fp = NULL;
	gboolean force = FALSE;
	g_autoptr(VcHostCa) ca = NULL;
	VcHostCaInitOptions opts = {0};
	const GOptionEntry entries[] = {
	    {"dir", 0, 0, G_OPTION_ARG_FILENAME, &dir, "Host CA directory", "DIR"},
	    {"cn", 0, 0, G_OPTION_ARG_STRING, &cn, "Common name of the host CA", "CN"},
	    {"force", 0, 0, G_OPTION_ARG_NONE, &force, "Replace an existing host CA", NULL},
	    {NULL}};
	const char *usage = "virtcert host-ca init --dir DIR [--cn CN]";

	if (!vc_cli_parse("host-ca init", "--dir DIR [--cn CN]", entries, &argc, &argv, error))
		return FALSE;
	if (dir == NULL || argc > 1)
		return vc_cli_host_usage_error(error, usage);
	opts.common_name = cn;
	opts.key_type = VC_KEY_TYPE_EC_P256;
	opts.force = force;
	if (!vc_host_ca_init(dir, &opts, error))
		return FALSE;
	ca = vc_host_ca_load(dir, error);
	if (ca == NULL)
		return FALSE;
	fp = vc_cert_get_fingerprint_sha256(vc_host_ca_get_cert(ca));
	if (arg_json) {
		g_autoptr(JsonBuilder) b = json_builder_new();
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "dir");
		json_builder_add_string_value(b, dir);
		json_builder_set_member_name(b, "fingerprint");
		json_builder_add_string_value(b, fp);
		json_builder_end_object(b);
		vc_cli_print_json(json_builder_get_root(b));
	} else {
		g_print("Host CA created in %s\n", dir);
		g_print(
		    "Certificate:  %s/ca.pem (give it to every host: virtcert host enroll --ca)\n",
		    dir);
		g_print("Fingerprint:  %s\n", fp);
		g_print("(VM owners list this fingerprint as trust-host-ca)\n");
	}
	return TRUE;
}

gboolean
vc_cli_host_ca_sign(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *dir = NULL;
	g_autofree char *out = NULL;
	gint days = 365;
	gint backdate = 0;
	g_autoptr(VcHostCa) ca = NULL;
	g_autoptr(X509_REQ) csr = NULL;
	g_autoptr(X509) cert = NULL;
	g_autofree char *pem = NULL;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	/* a certificate starts a little in the past for peers whose clock lags */
	gint64 nb = now - 5 * 60;
	const GOptionEntry entries[] = {
	    {"dir", 0, 0, G_OPTION_ARG_FILENAME, &dir, "Host CA directory", "DIR"},
	    {"days", 0, 0, G_OPTION_ARG_INT, &days,
	     "Validity in days (default 365; 0 makes an already expired certificate, for "
	     "tests)",
	     "N"},
	    {"backdate", 0, 0, G_OPTION_ARG_INT, &backdate,
	     "Start the validity N days in the past (default 0: 5 minutes; for tests of "
	     "renewal)",
	     "N"},
	    {"out", 0, 0, G_OPTION_ARG_FILENAME, &out, "Where to write the certificate", "CERT"},
	    {NULL}};
	const char *usage =
	    "virtcert host-ca sign CSR --dir DIR [--days N] [--backdate N] --out CERT";

	if (!vc_cli_parse("host-ca sign", "CSR --dir DIR [--days N] [--backdate N] --out CERT",
			  entries, &argc, &argv, error))
		return FALSE;
	if (dir == NULL || out == NULL || argc != 2)
		return vc_cli_host_usage_error(error, usage);
	if (days < 0 || days > 3650) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE, "--days must be 0..3650");
		return FALSE;
	}
	if (backdate < 0 || backdate > 3650) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE, "--backdate must be 0..3650");
		return FALSE;
	}
	if (backdate > 0)
		nb = now - (gint64)backdate * 86400;
	ca = vc_host_ca_load(dir, error);
	if (ca == NULL)
		return FALSE;
	csr = vc_host_ca_load_csr(argv[1], error);
	if (csr == NULL)
		return FALSE;
	cert = vc_host_ca_sign(ca, csr, nb, days == 0 ? nb : now + (gint64)days * 86400, error);
	if (cert == NULL) {
		g_prefix_error(error, "%s: ", argv[1]);
		return FALSE;
	}
	pem = vc_cert_to_pem(cert, error);
	return pem != NULL && vc_cli_write_output(out, pem, strlen(pem), 0644, error);
}

static X509 *
vc_cli_host_load_first_cert(const char *path, GError **error)
{
	g_autoptr(GPtrArray) certs = vc_cert_load_pem_file(path, error);
	return certs != NULL ? X509_dup(g_ptr_array_index(certs, 0)) : NULL;
}

gboolean
vc_cli_host_ca_revoke(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *dir = NULL;
	g_autoptr(VcHostCa) ca = NULL;
	g_autoptr(X509) cert = NULL;
	g_autofree char *serial = NULL;
	const GOptionEntry entries[] = {
	    {"dir", 0, 0, G_OPTION_ARG_FILENAME, &dir, "Host CA directory", "DIR"}, {NULL}};

	if (!vc_cli_parse("host-ca revoke", "CERT --dir DIR", entries, &argc, &argv, error))
		return FALSE;
	if (dir == NULL || argc != 2)
		return vc_cli_host_usage_error(error, "virtcert host-ca revoke CERT --dir DIR");
	ca = vc_host_ca_load(dir, error);
	cert = ca != NULL ? vc_cli_host_load_first_cert(argv[1], error) : NULL;
	if (cert == NULL || !vc_host_ca_revoke(ca, cert, error))
		return FALSE;
	serial = vc_cert_get_serial_hex(cert);
	if (!arg_json)
		g_print("Revoked host certificate %s; publish a new CRL: virtcert host-ca crl\n",
			serial);
	return TRUE;
}

gboolean
vc_cli_host_ca_crl(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *dir = NULL;
	g_autofree char *out = NULL;
	gint days = 7;
	g_autoptr(VcHostCa) ca = NULL;
	g_autoptr(X509_CRL) crl = NULL;
	g_autofree char *pem = NULL;
	const GOptionEntry entries[] = {
	    {"dir", 0, 0, G_OPTION_ARG_FILENAME, &dir, "Host CA directory", "DIR"},
	    {"out", 0, 0, G_OPTION_ARG_FILENAME, &out, "Where to write the CRL (- stdout)", "CRL"},
	    {"days", 0, 0, G_OPTION_ARG_INT, &days, "Validity of the CRL (default 7)", "N"},
	    {NULL}};

	if (!vc_cli_parse("host-ca crl", "--dir DIR --out CRL", entries, &argc, &argv, error))
		return FALSE;
	if (dir == NULL || argc != 1)
		return vc_cli_host_usage_error(
		    error, "virtcert host-ca crl --dir DIR --out CRL [--days N]");
	if (days < 1 || days > 366) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE, "--days must be 1..366");
		return FALSE;
	}
	ca = vc_host_ca_load(dir, error);
	crl = ca != NULL ? vc_host_ca_make_crl(ca, (gint64)days * 86400, error) : NULL;
	pem = crl != NULL ? vc_crl_to_pem(crl, error) : NULL;
	return pem != NULL && vc_cli_write_output(out, pem, strlen(pem), 0644, error);
}

/* ---- host --------------------------------------------------------------- */

gboolean
vc_cli_host_enroll(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *ca = NULL;
	g_autofree char *fqdn = NULL;
	g_auto(GStrv) attrs = NULL;
	gboolean force = FALSE;
	g_autofree char *key_path = NULL;
	g_autofree char *csr_path = NULL;
	g_autofree char *ca_out = NULL;
	g_autofree char *key_dir = NULL;
	const GOptionEntry entries[] = {
	    {"ca", 0, 0, G_OPTION_ARG_FILENAME, &ca, "The host CA certificate(s) to trust",
	     "HOSTCA.pem"},
	    {"attr", 0, 0, G_OPTION_ARG_STRING_ARRAY, &attrs,
	     "Host attribute, repeatable (site=eu-west, tier=confidential)", "KEY=VALUE"},
	    {"fqdn", 0, 0, G_OPTION_ARG_STRING, &fqdn,
	     "This host's name (default: [host] fqdn, else the system's FQDN)", "NAME"},
	    {"force", 0, 0, G_OPTION_ARG_NONE, &force, "Replace an existing host key", NULL},
	    {NULL}};

	if (!vc_cli_parse("host enroll", "--ca HOSTCA.pem [--attr KEY=VALUE…] [--fqdn NAME]",
			  entries, &argc, &argv, error))
		return FALSE;
	if (ca == NULL || argc != 1)
		return vc_cli_host_usage_error(
		    error, "virtcert host enroll --ca HOSTCA.pem [--attr KEY=VALUE…] "
			   "[--fqdn NAME]");
	/* a bad --attr is a mistake on the command line, not in data */
	for (guint i = 0; attrs != NULL && attrs[i] != NULL; i++) {
		if (!vc_host_attribute_parse(attrs[i], NULL, NULL, error)) {
			(*error)->code = VC_ERROR_USAGE;
			return FALSE;
		}
	}
	if (vc_cli_get_config(cli, error) == NULL)
		return FALSE;
	if (fqdn == NULL)
		fqdn = cli->config->host_fqdn != NULL ? g_strdup(cli->config->host_fqdn)
						      : vc_host_default_fqdn();
	key_path = vc_config_get_host_path(cli->config, "key");
	key_dir = g_path_get_dirname(key_path);
	csr_path = g_build_filename(key_dir, "host.csr", NULL);
	ca_out = vc_config_get_host_path(cli->config, "ca");
	if (!vc_host_enroll(key_path, csr_path, fqdn, (const char *const *)attrs, ca, ca_out, force,
			    error))
		return FALSE;
	if (arg_json) {
		g_autoptr(JsonBuilder) b = json_builder_new();
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "fqdn");
		json_builder_add_string_value(b, fqdn);
		json_builder_set_member_name(b, "csr");
		json_builder_add_string_value(b, csr_path);
		json_builder_set_member_name(b, "key");
		json_builder_add_string_value(b, key_path);
		json_builder_end_object(b);
		vc_cli_print_json(json_builder_get_root(b));
	} else {
		g_print("Host key:  %s\nCSR:       %s (for %s)\nTrusted host CA: %s\n", key_path,
			csr_path, fqdn, ca_out);
		g_print("Next: have the host CA sign the CSR, then: virtcert host import CERT\n");
	}
	return TRUE;
}

gboolean
vc_cli_host_import(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *key_path = NULL;
	g_autofree char *ca_path = NULL;
	g_autofree char *cert_out = NULL;

	if (!vc_cli_parse("host import", "CERT", NULL, &argc, &argv, error))
		return FALSE;
	if (argc != 2)
		return vc_cli_host_usage_error(error, "virtcert host import CERT");
	if (vc_cli_get_config(cli, error) == NULL)
		return FALSE;
	key_path = vc_config_get_host_path(cli->config, "key");
	ca_path = vc_config_get_host_path(cli->config, "ca");
	cert_out = vc_config_get_host_path(cli->config, "cert");
	if (!vc_host_import(argv[1], key_path, ca_path, cert_out, error))
		return FALSE;
	if (!arg_json)
		g_print("Installed the host certificate as %s\n", cert_out);
	return TRUE;
}

/* Renewal before expiry: a CSR for the same key, name and attributes; with
 * --dir (this host holds the host CA's key, a lab) signed and installed at
 * once. virtcertd takes the new certificate at its next look (a minute at
 * most, or `virtcert reload`). */
gboolean
vc_cli_host_renew(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *dir = NULL;
	gint days = 365;
	g_autoptr(VcHost) host = NULL;
	g_autofree char *key_path = NULL;
	g_autofree char *key_dir = NULL;
	g_autofree char *csr_path = NULL;
	g_autofree char *new_path = NULL;
	g_autofree char *ca_path = NULL;
	g_autofree char *cert_out = NULL;
	g_autoptr(VcHostCa) ca = NULL;
	g_autoptr(X509_REQ) csr = NULL;
	g_autoptr(X509) cert = NULL;
	g_autofree char *pem = NULL;
	g_autoptr(GDateTime) until = NULL;
	g_autofree char *until_s = NULL;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	gboolean ok;
	const GOptionEntry entries[] = {
	    {"dir", 0, 0, G_OPTION_ARG_FILENAME, &dir,
	     "The host CA directory, when this host holds it: sign and install at once", "DIR"},
	    {"days", 0, 0, G_OPTION_ARG_INT, &days, "Validity with --dir (default 365)", "N"},
	    {NULL}};
	const char *usage = "virtcert host renew [--dir HOSTCA-DIR [--days N]]";

	if (!vc_cli_parse("host renew", "[--dir HOSTCA-DIR [--days N]]", entries, &argc, &argv,
			  error))
		return FALSE;
	if (argc != 1)
		return vc_cli_host_usage_error(error, usage);
	if (days < 1 || days > 3650) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE, "--days must be 1..3650");
		return FALSE;
	}
	if (vc_cli_get_config(cli, error) == NULL)
		return FALSE;
	host = vc_host_load(cli->config, error);
	if (host == NULL) {
		g_prefix_error(error, "nothing to renew (virtcert host enroll first): ");
		return FALSE;
	}
	key_path = vc_config_get_host_path(cli->config, "key");
	key_dir = g_path_get_dirname(key_path);
	csr_path = g_build_filename(key_dir, "host.csr", NULL);
	if (!vc_host_write_renewal_csr(host, csr_path, error))
		return FALSE;
	if (dir == NULL) {
		if (arg_json) {
			g_autoptr(JsonBuilder) b = json_builder_new();
			json_builder_begin_object(b);
			json_builder_set_member_name(b, "csr");
			json_builder_add_string_value(b, csr_path);
			json_builder_end_object(b);
			vc_cli_print_json(json_builder_get_root(b));
		} else {
			g_print("CSR:  %s (same key, name %s and attributes)\n", csr_path,
				vc_host_get_fqdn(host));
			g_print(
			    "Next: have the host CA sign it, then: virtcert host import CERT\n");
		}
		return TRUE;
	}
	ca = vc_host_ca_load(dir, error);
	if (ca == NULL)
		return FALSE;
	csr = vc_host_ca_load_csr(csr_path, error);
	if (csr == NULL)
		return FALSE;
	cert = vc_host_ca_sign(ca, csr, now - 5 * 60, now + (gint64)days * 86400, error);
	if (cert == NULL || (pem = vc_cert_to_pem(cert, error)) == NULL)
		return FALSE;
	/* through import: it checks the key and the chain like any other */
	new_path = g_build_filename(key_dir, "host.pem.renewed", NULL);
	if (!vc_file_write_atomic(new_path, pem, strlen(pem), 0644, error))
		return FALSE;
	ca_path = vc_config_get_host_path(cli->config, "ca");
	cert_out = vc_config_get_host_path(cli->config, "cert");
	ok = vc_host_import(new_path, key_path, ca_path, cert_out, error);
	g_unlink(new_path);
	if (!ok)
		return FALSE;
	until = g_date_time_new_from_unix_utc(now + (gint64)days * 86400);
	until_s = g_date_time_format_iso8601(until);
	if (!arg_json)
		g_print("Renewed the host certificate %s, valid until %s\n"
			"Run virtcert host install-libvirt-tls --force again for libvirt's and "
			"QEMU's copies\n",
			cert_out, until_s);
	return TRUE;
}

gboolean
vc_cli_host_show(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autoptr(VcHost) host = NULL;
	g_autoptr(VcHostIdentity) id = NULL;
	g_autoptr(GError) check_error = NULL;
	g_autoptr(GPtrArray) keys = NULL;
	g_autofree char *issuer = NULL;
	g_autofree char *nb = NULL;
	g_autofree char *na = NULL;
	const char *fp;

	if (!vc_cli_parse("host show", "[--json]", NULL, &argc, &argv, error))
		return FALSE;
	if (argc != 1)
		return vc_cli_host_usage_error(error, "virtcert host show [--json]");
	if (vc_cli_get_config(cli, error) == NULL)
		return FALSE;
	host = vc_host_load(cli->config, error);
	if (host == NULL)
		return FALSE;
	id = vc_host_get_identity(host, &check_error);
	if (id == NULL)
		id = vc_host_identity_new();
	if (check_error == NULL)
		vc_host_check(host, &check_error);
	keys = vc_host_identity_get_keys(id);
	issuer = vc_host_get_issuer(host);
	fp = vc_host_get_ca_fingerprint(host);
	nb = vc_cli_host_fmt_time(vc_host_get_not_before(host));
	na = vc_cli_host_fmt_time(vc_host_get_not_after(host));

	if (arg_json) {
		g_autoptr(JsonBuilder) b = json_builder_new();
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "fqdn");
		json_builder_add_string_value(b, vc_host_get_fqdn(host));
		json_builder_set_member_name(b, "attributes");
		json_builder_begin_object(b);
		for (guint i = 0; i < keys->len; i++) {
			GPtrArray *v = vc_host_identity_get_values(id, g_ptr_array_index(keys, i));
			json_builder_set_member_name(b, g_ptr_array_index(keys, i));
			json_builder_begin_array(b);
			for (guint j = 0; j < v->len; j++)
				json_builder_add_string_value(b, g_ptr_array_index(v, j));
			json_builder_end_array(b);
		}
		json_builder_end_object(b);
		json_builder_set_member_name(b, "issuer");
		json_builder_add_string_value(b, issuer);
		json_builder_set_member_name(b, "not_before");
		json_builder_add_int_value(b, vc_host_get_not_before(host));
		json_builder_set_member_name(b, "not_after");
		json_builder_add_int_value(b, vc_host_get_not_after(host));
		json_builder_set_member_name(b, "ca_fingerprint");
		json_builder_add_string_value(b, fp);
		json_builder_set_member_name(b, "ca_fingerprints");
		json_builder_begin_array(b);
		for (guint i = 0; i < id->ca_fingerprints->len; i++)
			json_builder_add_string_value(b, g_ptr_array_index(id->ca_fingerprints, i));
		json_builder_end_array(b);
		json_builder_set_member_name(b, "valid");
		json_builder_add_boolean_value(b, check_error == NULL);
		json_builder_set_member_name(b, "error");
		if (check_error != NULL)
			json_builder_add_string_value(b, check_error->message);
		else
			json_builder_add_null_value(b);
		json_builder_end_object(b);
		vc_cli_print_json(json_builder_get_root(b));
	} else {
		g_print("FQDN:        %s\n", vc_host_get_fqdn(host) ? vc_host_get_fqdn(host) : "-");
		for (guint i = 0; i < keys->len; i++) {
			GPtrArray *v = vc_host_identity_get_values(id, g_ptr_array_index(keys, i));
			for (guint j = 0; j < v->len; j++)
				g_print("Attribute:   %s=%s\n",
					(const char *)g_ptr_array_index(keys, i),
					(const char *)g_ptr_array_index(v, j));
		}
		g_print("Issuer:      %s\n", issuer);
		g_print("Valid:       %s .. %s\n", nb, na);
		g_print("CA SHA-256:  %s\n", fp != NULL ? fp : "unknown");
		g_print("Self-check:  %s\n", check_error == NULL ? "ok" : check_error->message);
	}
	if (check_error != NULL) {
		g_propagate_prefixed_error(error, g_steal_pointer(&check_error),
					   "the host certificate fails its self-check: ");
		return FALSE;
	}
	return TRUE;
}

gboolean
vc_cli_host_may_issue(VcCli *cli, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_autoptr(VcHost) host = NULL;

	if (vc_cli_get_config(cli, error) == NULL)
		return FALSE;
	host = vc_host_load(cli->config, &local);
	if (host == NULL && g_error_matches(local, VC_ERROR, VC_ERROR_NOT_FOUND))
		return TRUE;
	if (host != NULL && vc_host_check(host, &local))
		return TRUE;
	g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
		    "nothing is issued on this host while its host certificate is not usable "
		    "(%s): install a valid one (virtcert host import, or a fresh host CA CRL), "
		    "then virtcert reload",
		    local->message);
	return FALSE;
}

static const char *
vc_cli_host_qemu_group_default(void)
{
	/* Debian runs QEMU as libvirt-qemu, Fedora/RHEL as qemu */
	static const char *const names[] = {"libvirt-qemu", "qemu", NULL};
	for (gsize i = 0; names[i] != NULL; i++)
		if (getgrnam(names[i]) != NULL)
			return names[i];
	return NULL;
}

gboolean
vc_cli_host_install_libvirt_tls(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *root = NULL;
	g_autofree char *group = NULL;
	g_autofree char *pkipath = NULL;
	g_autofree char *owner = NULL;
	gboolean force = FALSE;
	g_autoptr(VcHost) host = NULL;
	g_autoptr(GPtrArray) written = NULL;
	const char *usage = "[--root DIR] [--pkipath DIR [--owner USER]]";
	const GOptionEntry entries[] = {
	    {"root", 0, 0, G_OPTION_ARG_FILENAME, &root, "Install below DIR (default /)", "DIR"},
	    {"qemu-group", 0, 0, G_OPTION_ARG_STRING, &group,
	     "Group QEMU runs as (default libvirt-qemu or qemu)", "GROUP"},
	    {"pkipath", 0, 0, G_OPTION_ARG_FILENAME, &pkipath,
	     "libvirt's files flat in DIR (cacert.pem, cacrl.pem, clientcert.pem, clientkey.pem, "
	     "servercert.pem, serverkey.pem), as a qemu+tls://…?pkipath=DIR URI wants them, "
	     "instead of /etc/pki/CA and /etc/pki/libvirt",
	     "DIR"},
	    {"owner", 0, 0, G_OPTION_ARG_STRING, &owner,
	     "User libvirt's files belong to (a libvirtd or virsh not running as root)", "USER"},
	    {"force", 0, 0, G_OPTION_ARG_NONE, &force, "Replace other TLS files", NULL},
	    {NULL}};
	VcHostTlsOptions opts = {0};

	if (!vc_cli_parse("host install-libvirt-tls", usage, entries, &argc, &argv, error))
		return FALSE;
	if (argc != 1)
		return vc_cli_host_usage_error(error,
					       "virtcert host install-libvirt-tls [--root DIR] "
					       "[--pkipath DIR [--owner USER]]");
	if (vc_cli_get_config(cli, error) == NULL)
		return FALSE;
	host = vc_host_load(cli->config, error);
	if (host == NULL)
		return FALSE;
	/* installing a certificate libvirt will reject helps nobody */
	if (!vc_host_check(host, error))
		return FALSE;
	opts.root = root;
	opts.qemu_group = group != NULL ? group : vc_cli_host_qemu_group_default();
	opts.pkipath = pkipath;
	opts.owner = owner;
	opts.force = force;
	if (!vc_host_install_libvirt_tls_full(host, &opts, &written, error))
		return FALSE;
	if (arg_json) {
		g_autoptr(JsonBuilder) b = json_builder_new();
		json_builder_begin_array(b);
		for (guint i = 0; i < written->len; i++)
			json_builder_add_string_value(b, g_ptr_array_index(written, i));
		json_builder_end_array(b);
		vc_cli_print_json(json_builder_get_root(b));
	} else {
		for (guint i = 0; i < written->len; i++)
			g_print("wrote %s\n", (const char *)g_ptr_array_index(written, i));
		g_print("Enable verification in qemu.conf (see docs/host-trust.md): "
			"migrate_tls_x509_verify = 1\n");
	}
	return TRUE;
}

/* ---- policy check --------------------------------------------------------- */

gboolean
vc_cli_policy_check(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *xml_path = NULL;
	g_autofree char *host_path = NULL;
	g_autoptr(VcDomainInfo) info = NULL;
	g_autoptr(VcPolicySet) set = vc_policy_set_new();
	g_autoptr(VcPolicy) policy = NULL;
	g_autoptr(VcHost) host = NULL;
	g_autofree char *ca_path = NULL;
	g_autofree char *crl_path = NULL;
	g_autofree char *reason = NULL;
	gboolean allow, have_ca;
	GPtrArray *warnings;
	const GOptionEntry entries[] = {
	    {"xml", 0, 0, G_OPTION_ARG_FILENAME, &xml_path, "Domain XML", "DOMAIN.xml"},
	    {"host", 0, 0, G_OPTION_ARG_FILENAME, &host_path, "The destination host's certificate",
	     "HOSTCERT.pem"},
	    {NULL}};

	if (!vc_cli_parse("policy check", "--xml DOMAIN.xml --host HOSTCERT.pem", entries, &argc,
			  &argv, error))
		return FALSE;
	/* the VM as its domain XML, given with --xml or as the argument
	 * (`virtcert policy check <(virsh dumpxml VM) --host CERT`) */
	if (xml_path == NULL && argc == 2)
		xml_path = g_strdup(argv[--argc]);
	if (xml_path == NULL || host_path == NULL || argc != 1)
		return vc_cli_host_usage_error(
		    error, "virtcert policy check [--xml] DOMAIN.xml --host HOSTCERT.pem "
			   "[--json]");
	info = vc_cli_load_domain_and_policies(cli, xml_path, set, error);
	if (info == NULL)
		return FALSE;
	warnings = vc_policy_set_get_warnings(set);
	for (guint i = 0; i < warnings->len; i++)
		g_printerr("warning: %s\n", (const char *)g_ptr_array_index(warnings, i));
	policy = vc_placement_resolve_policy(info, set, cli->config->issue_all,
					     cli->config->default_lifetime_s, error);
	if (policy == NULL && *error != NULL)
		return FALSE;

	/* the trusted host CA (and its CRL) of this installation, if any */
	ca_path = vc_config_get_host_path(cli->config, "ca");
	crl_path = vc_config_get_host_path(cli->config, "crl");
	have_ca = g_file_test(ca_path, G_FILE_TEST_EXISTS);
	host = vc_host_load_files(host_path, NULL, have_ca ? ca_path : NULL,
				  have_ca ? crl_path : NULL, error);
	if (host == NULL)
		return FALSE;

	if (policy == NULL) {
		allow = TRUE;
		reason = g_strdup("no virtcert policy selects this VM");
	} else if (have_ca || !vc_placement_is_restricted(policy)) {
		allow = vc_host_placement_decide(host, policy, &reason);
	} else {
		/* no trusted host CA here: judge the certificate as given */
		g_autoptr(VcHostIdentity) id = vc_host_get_identity(host, error);
		if (id == NULL)
			return FALSE;
		allow = vc_placement_allows(policy, id, &reason);
	}

	if (arg_json) {
		g_autoptr(JsonBuilder) b = json_builder_new();
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "vm_name");
		json_builder_add_string_value(b, info->name);
		json_builder_set_member_name(b, "vm_uuid");
		json_builder_add_string_value(b, info->uuid);
		json_builder_set_member_name(b, "host");
		json_builder_add_string_value(b, vc_host_get_fqdn(host));
		json_builder_set_member_name(b, "policy");
		json_builder_add_string_value(b, policy != NULL ? policy->source : NULL);
		json_builder_set_member_name(b, "host_ca_verified");
		json_builder_add_boolean_value(b, have_ca);
		json_builder_set_member_name(b, "allow");
		json_builder_add_boolean_value(b, allow);
		json_builder_set_member_name(b, "reason");
		json_builder_add_string_value(b, reason);
		json_builder_end_object(b);
		vc_cli_print_json(json_builder_get_root(b));
	} else {
		g_print("VM:        %s (%s)\n", info->name, info->uuid);
		g_print("Host:      %s%s\n", vc_host_get_fqdn(host) ? vc_host_get_fqdn(host) : "-",
			have_ca ? "" : " (no trusted host CA configured: chain not verified)");
		g_print("Policy:    %s\n", policy != NULL ? policy->source : "none");
		g_print("Decision:  %s\n", allow ? "allow" : "deny");
		g_print("Reason:    %s\n", reason);
	}
	if (!allow) {
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY, "VM %s may not run on %s: %s",
			    info->name, vc_host_get_fqdn(host) ? vc_host_get_fqdn(host) : host_path,
			    reason);
		return FALSE;
	}
	return TRUE;
}

/* ---- hook install --------------------------------------------------------- */

/* The hook binary: installed beside virtcert in ../libexec/virtcert/, or in
 * the build tree at hooks/ two levels up from agent/cli/. */
static char *
vc_cli_host_find_hook_binary(GError **error)
{
	g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
	g_autofree char *dir = self != NULL ? g_path_get_dirname(self) : NULL;
	g_autoptr(GPtrArray) tried = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GString) list = g_string_new(NULL);

	if (dir != NULL) {
		g_ptr_array_add(tried, g_build_filename(dir, "..", "libexec", "virtcert",
							"virtcert-hook", NULL));
		g_ptr_array_add(tried,
				g_build_filename(dir, "..", "..", "hooks", "virtcert-hook", NULL));
	}
	g_ptr_array_add(tried, g_strdup("/usr/libexec/virtcert/virtcert-hook"));
	for (guint i = 0; i < tried->len; i++) {
		const char *p = g_ptr_array_index(tried, i);
		if (g_file_test(p, G_FILE_TEST_IS_EXECUTABLE))
			return g_canonicalize_filename(p, NULL);
		g_string_append_printf(list, "%s%s", i > 0 ? ", " : "", p);
	}
	g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND,
		    "virtcert-hook not found (tried %s): give it with --hook PATH", list->str);
	return NULL;
}

gboolean
vc_cli_hook_install(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *root = NULL;
	g_autofree char *hook = NULL;
	gboolean symlink_it = FALSE;
	g_autofree char *dir = NULL;
	g_autofree char *dest = NULL;
	const GOptionEntry entries[] = {
	    {"root", 0, 0, G_OPTION_ARG_FILENAME, &root, "Install below DIR (default /)", "DIR"},
	    {"hook", 0, 0, G_OPTION_ARG_FILENAME, &hook, "The virtcert-hook binary", "PATH"},
	    {"symlink", 0, 0, G_OPTION_ARG_NONE, &symlink_it,
	     "Link to the binary instead of copying it", NULL},
	    {NULL}};

	if (!vc_cli_parse("hook install", "[--root DIR]", entries, &argc, &argv, error))
		return FALSE;
	if (argc != 1)
		return vc_cli_host_usage_error(error,
					       "virtcert hook install [--root DIR] [--hook PATH] "
					       "[--symlink]");
	if (hook == NULL && (hook = vc_cli_host_find_hook_binary(error)) == NULL)
		return FALSE;
	if (!g_file_test(hook, G_FILE_TEST_IS_EXECUTABLE)) {
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "%s is not an executable", hook);
		return FALSE;
	}
	dir =
	    g_build_filename(root != NULL ? root : "/", "etc", "libvirt", "hooks", "qemu.d", NULL);
	dest = g_build_filename(dir, "virtcert", NULL);
	if (g_mkdir_with_parents(dir, 0755) < 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot create %s: %s", dir,
			    g_strerror(errno));
		return FALSE;
	}
	if (symlink_it) {
		g_autofree char *abs = g_canonicalize_filename(hook, NULL);
		g_autofree char *tmp = g_strconcat(dest, ".new", NULL);
		g_unlink(tmp);
		if (symlink(abs, tmp) < 0 || rename(tmp, dest) < 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot link %s: %s", dest,
				    g_strerror(errno));
			g_unlink(tmp);
			return FALSE;
		}
	} else {
		g_autofree char *data = NULL;
		gsize len = 0;
		if (!g_file_get_contents(hook, &data, &len, error)) {
			(*error)->domain = VC_ERROR;
			(*error)->code = VC_ERROR_IO;
			return FALSE;
		}
		if (!vc_file_write_atomic(dest, data, len, 0755, error))
			return FALSE;
	}
	if (!arg_json)
		g_print("Installed %s\nlibvirtd looks for hooks when it starts: restart it "
			"(systemctl restart libvirtd) to activate the hook.\n",
			dest);
	return TRUE;
}
