/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcert ca init | import | show */
#include "vc-cli.h"

#include <errno.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "vc-build-config.h"
#include "vc-error.h"

/* Sets [ca] public-url in the configuration file PATH (made if missing),
 * keeping its other keys and comments; the result must load as a
 * configuration, else the file is left as it was. */
static gboolean
vc_cli_ca_save_public_url(const char *path, const char *url, GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) local = NULL;
	g_autoptr(VcConfig) check = NULL;
	g_autofree char *data = NULL;
	g_autofree char *tmp = g_strconcat(path, ".new", NULL);
	gsize len = 0;

	if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_KEEP_COMMENTS, &local) &&
	    !g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "%s: %s", path, local->message);
		return FALSE;
	}
	g_clear_error(&local);
	g_key_file_set_string(kf, "ca", "public-url", url);
	data = g_key_file_to_data(kf, &len, NULL);
	if (!g_file_set_contents_full(tmp, data, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT, 0644,
				      &local)) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot write %s: %s", tmp,
			    local->message);
		return FALSE;
	}
	check = vc_config_load(tmp, TRUE, error);
	if (check == NULL) {
		g_unlink(tmp);
		g_prefix_error(error, "--public-url %s: ", url);
		return FALSE;
	}
	if (g_rename(tmp, path) < 0) {
		int saved = errno;
		g_unlink(tmp);
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot replace %s: %s", path,
			    g_strerror(saved));
		return FALSE;
	}
	return TRUE;
}

gboolean
vc_cli_ca_init(VcCli *cli, int argc, char **argv, GError **error)
{
	g_auto(GStrv) permit = NULL;
	g_autofree char *key = NULL;
	g_autofree char *csr = NULL;
	g_autofree char *cn = NULL;
	g_autofree char *lifetime = NULL;
	g_autofree char *dir = NULL;
	g_autofree char *public_url = NULL;
	gboolean force = FALSE;
	VcCaInitOptions opts = {0};
	const char *conf_path = NULL;
	const GOptionEntry entries[] = {
	    {"permit", 0, 0, G_OPTION_ARG_STRING_ARRAY, &permit,
	     "DNS subtree the CA may issue for (repeatable)", "DOMAIN"},
	    {"key", 0, 0, G_OPTION_ARG_STRING, &key, "ec-p256 (default), ed25519, rsa-3072",
	     "TYPE"},
	    {"csr", 0, 0, G_OPTION_ARG_FILENAME, &csr,
	     "Write a CSR for your organization's root instead of self-signing", "FILE"},
	    {"cn", 0, 0, G_OPTION_ARG_STRING, &cn, "Subject CN of the intermediate", "CN"},
	    {"lifetime", 0, 0, G_OPTION_ARG_STRING, &lifetime,
	     "Lifetime of the intermediate (default 5 years)", "DURATION"},
	    {"force", 0, 0, G_OPTION_ARG_NONE, &force, "Replace an existing CA", NULL},
	    {"public-url", 0, 0, G_OPTION_ARG_STRING, &public_url,
	     "Base URL relying parties reach the daemon's HTTP side at (written to [ca] "
	     "public-url in the configuration file)",
	     "URL"},
	    {NULL}};

	if (!vc_cli_parse("ca init", "--permit DOMAIN…", entries, &argc, &argv, error))
		return FALSE;
	/* after the parse: --config may follow the command */
	conf_path = arg_config != NULL ? arg_config : VC_SYSCONFDIR "/virtcert.conf";
	if (argc > 1) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "unexpected argument '%s'", argv[1]);
		return FALSE;
	}
	if (permit == NULL || permit[0] == NULL) {
		g_set_error_literal(
		    error, VC_ERROR, VC_ERROR_USAGE,
		    "at least one --permit DOMAIN is required: the CA is restricted "
		    "to the DNS names it manages");
		return FALSE;
	}
	opts.key_type = VC_KEY_TYPE_EC_P256;
	if (key != NULL && !vc_key_type_from_string(key, &opts.key_type, error))
		return FALSE;
	if (lifetime != NULL && !vc_duration_parse(lifetime, &opts.lifetime_s, error))
		return FALSE;
	for (guint i = 0; permit[i] != NULL; i++) {
		/* normalise: the subtree is stored lower case, without a trailing dot */
		g_autofree char *p = g_ascii_strdown(permit[i], -1);
		if (g_str_has_suffix(p, "."))
			p[strlen(p) - 1] = '\0';
		if (!vc_name_check_dns(p[0] == '.' ? p + 1 : p, error)) {
			g_prefix_error(error, "--permit %s: ", permit[i]);
			return FALSE;
		}
		g_free(permit[i]);
		permit[i] = g_steal_pointer(&p);
	}
	opts.permit = (const char *const *)permit;
	opts.common_name = cn;
	opts.force = force;

	dir = vc_cli_get_ca_dir(cli, error);
	if (dir == NULL)
		return FALSE;
	/* checked before the CA is made, so a typo costs nothing: the same
	 * parser as the daemon's, on a configuration of that one line */
	if (public_url != NULL) {
		g_autofree char *text = g_strdup_printf("[ca]\npublic-url=%s\n", public_url);
		g_autofree char *tmp = NULL;
		g_autoptr(VcConfig) probe = NULL;
		g_autoptr(GError) local = NULL;
		int fd = g_file_open_tmp("virtcert-XXXXXX.conf", &tmp, &local);
		if (fd < 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_IO, "%s", local->message);
			return FALSE;
		}
		close(fd);
		if (strchr(public_url, '\n') == NULL && g_file_set_contents(tmp, text, -1, &local))
			probe = vc_config_load(tmp, TRUE, &local);
		g_unlink(tmp);
		if (probe == NULL || probe->public_url == NULL) {
			g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "--public-url %s: %s",
				    public_url, local != NULL ? local->message : "not a URL");
			return FALSE;
		}
		/* the form the daemon uses (no trailing slash) */
		g_free(public_url);
		public_url = g_strdup(probe->public_url);
	}
	if (csr != NULL) {
		if (!vc_ca_init_csr(dir, &opts, csr, error))
			return FALSE;
		if (!arg_json)
			g_print("CA key created in %s; CSR written to %s.\n"
				"Have your root sign it (CA:TRUE, pathlen:0, the name constraints "
				"as requested), then run 'virtcert ca import CERT'.\n",
				dir, csr);
	} else {
		if (!vc_ca_init_self_signed(dir, &opts, error))
			return FALSE;
		if (!arg_json)
			g_print("Restricted intermediate CA created in %s (self-signed root).\n",
				dir);
	}
	/* the store beside the CA: every other command needs it there */
	cli->may_create_store = TRUE;
	if (vc_cli_get_store(cli, error) == NULL)
		return FALSE;
	cli->may_create_store = FALSE;
	if (public_url != NULL) {
		g_autoptr(VcCa) ca = NULL;
		g_autoptr(VcConfig) config = NULL;
		if (!vc_cli_ca_save_public_url(conf_path, public_url, error))
			return FALSE;
		config = vc_config_load(conf_path, TRUE, error);
		if (config == NULL)
			return FALSE;
		g_free(public_url);
		public_url = g_strdup(config->public_url);
		/* the URLs only follow once the CA is signed (CSR mode: after import) */
		ca = csr == NULL ? vc_ca_load(dir, NULL) : NULL;
		if (!arg_json) {
			g_print("[ca] public-url=%s written to %s; restart virtcertd to use it.\n",
				public_url, conf_path);
			if (ca != NULL) {
				g_autofree char *crl =
				    vc_config_get_ca_url(config, VC_CA_URL_CRL, vc_ca_get_id(ca));
				g_autofree char *ocsp =
				    vc_config_get_ca_url(config, VC_CA_URL_OCSP, vc_ca_get_id(ca));
				g_autofree char *aia = vc_config_get_ca_url(
				    config, VC_CA_URL_CA_ISSUERS, vc_ca_get_id(ca));
				g_print(
				    "Certificates will carry:\n  CRL distribution point  %s\n"
				    "  OCSP responder          %s\n  CA issuers              %s\n",
				    crl != NULL ? crl : "(none)", ocsp != NULL ? ocsp : "(none)",
				    aia != NULL ? aia : "(none)");
			}
		}
	} else if (!arg_json) {
		g_autoptr(VcConfig) config = vc_config_load(conf_path, FALSE, NULL);
		if (config == NULL || (config->public_url == NULL && config->crl_url == NULL &&
				       config->ocsp_url == NULL))
			g_print("No [ca] public-url in %s: certificates will carry no CRL or OCSP "
				"URL. Set it before the first VM starts (virtcert ca init "
				"--public-url URL, or edit the file).\n",
				conf_path);
	}
	if (arg_json) {
		g_autoptr(JsonBuilder) b = json_builder_new();
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "ca_dir");
		json_builder_add_string_value(b, dir);
		if (public_url != NULL) {
			json_builder_set_member_name(b, "public_url");
			json_builder_add_string_value(b, public_url);
			json_builder_set_member_name(b, "config");
			json_builder_add_string_value(b, conf_path);
		}
		json_builder_set_member_name(b, "mode");
		json_builder_add_string_value(b, csr != NULL ? "csr" : "self-signed");
		if (csr != NULL) {
			json_builder_set_member_name(b, "csr");
			json_builder_add_string_value(b, csr);
		}
		json_builder_end_object(b);
		vc_cli_print_json(json_builder_get_root(b));
	}
	return TRUE;
}

gboolean
vc_cli_ca_import(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *root = NULL;
	g_autofree char *dir = NULL;
	const GOptionEntry entries[] = {{"root", 0, 0, G_OPTION_ARG_FILENAME, &root,
					 "Verify the intermediate up to this root (PEM)", "ROOT"},
					{NULL}};

	if (!vc_cli_parse("ca import", "CERT", entries, &argc, &argv, error))
		return FALSE;
	if (argc != 2) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "usage: virtcert ca import CERT [--root ROOT]");
		return FALSE;
	}
	dir = vc_cli_get_ca_dir(cli, error);
	if (dir == NULL)
		return FALSE;
	if (!vc_ca_import(dir, argv[1], root, error))
		return FALSE;
	if (!arg_json)
		g_print("Intermediate certificate imported into %s.\n", dir);
	return TRUE;
}

static JsonNode *
vc_cli_cert_summary_json(X509 *cert)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autofree char *fp = vc_cert_get_fingerprint_sha256(cert);
	g_autofree char *serial = vc_cert_get_serial_hex(cert);
	char *subject = X509_NAME_oneline(X509_get_subject_name(cert), NULL, 0);
	char *issuer = X509_NAME_oneline(X509_get_issuer_name(cert), NULL, 0);
	int pday = 0, psec = 0;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "subject");
	json_builder_add_string_value(b, subject);
	json_builder_set_member_name(b, "issuer");
	json_builder_add_string_value(b, issuer);
	json_builder_set_member_name(b, "serial");
	json_builder_add_string_value(b, serial);
	json_builder_set_member_name(b, "sha256");
	json_builder_add_string_value(b, fp);
	if (ASN1_TIME_diff(&pday, &psec, NULL, X509_get0_notAfter(cert))) {
		json_builder_set_member_name(b, "expires_in_days");
		json_builder_add_int_value(b, pday);
	}
	json_builder_end_object(b);
	OPENSSL_free(subject);
	OPENSSL_free(issuer);
	return json_builder_get_root(b);
}

gboolean
vc_cli_ca_show(VcCli *cli, int argc, char **argv, GError **error)
{
	gboolean pem = FALSE, chain = FALSE;
	const GOptionEntry entries[] = {{"pem", 0, 0, G_OPTION_ARG_NONE, &pem,
					 "Print the intermediate certificate as PEM", NULL},
					{"chain", 0, 0, G_OPTION_ARG_NONE, &chain,
					 "With --pem: also its issuers up to the root", NULL},
					{NULL}};
	VcCa *ca;

	if (!vc_cli_parse("ca show", "", entries, &argc, &argv, error))
		return FALSE;
	ca = vc_cli_get_ca(cli, error);
	if (ca == NULL)
		return FALSE;
	if (pem) {
		GPtrArray *certs = vc_ca_get_chain(ca);
		for (guint i = 0; i < certs->len && (chain || i == 0); i++) {
			g_autofree char *text = vc_cert_to_pem(g_ptr_array_index(certs, i), error);
			if (text == NULL)
				return FALSE;
			g_print("%s", text);
		}
		if (chain && vc_ca_get_root(ca) != NULL) {
			g_autofree char *text = vc_cert_to_pem(vc_ca_get_root(ca), error);
			if (text == NULL)
				return FALSE;
			g_print("%s", text);
		}
		return TRUE;
	}
	{
		g_autoptr(JsonBuilder) b = json_builder_new();
		const char *const *permitted = vc_ca_get_permitted(ca);
		g_autoptr(JsonNode) node = NULL;
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "id");
		json_builder_add_string_value(b, vc_ca_get_id(ca));
		json_builder_set_member_name(b, "permitted");
		json_builder_begin_array(b);
		for (guint i = 0; permitted != NULL && permitted[i] != NULL; i++)
			json_builder_add_string_value(b, permitted[i]);
		json_builder_end_array(b);
		json_builder_set_member_name(b, "intermediate");
		json_builder_add_value(b, vc_cli_cert_summary_json(vc_ca_get_cert(ca)));
		if (vc_ca_get_root(ca) != NULL) {
			json_builder_set_member_name(b, "root");
			json_builder_add_value(b, vc_cli_cert_summary_json(vc_ca_get_root(ca)));
		}
		/* what leaves issued now carry (null: none) */
		json_builder_set_member_name(b, "urls");
		json_builder_begin_object(b);
		for (int k = VC_CA_URL_CRL; k <= VC_CA_URL_CA_ISSUERS; k++) {
			g_autofree char *url =
			    vc_config_get_ca_url(cli->config, (VcCaUrlKind)k, vc_ca_get_id(ca));
			json_builder_set_member_name(b, k == VC_CA_URL_CRL    ? "crl"
							: k == VC_CA_URL_OCSP ? "ocsp"
									      : "ca_issuers");
			if (url != NULL)
				json_builder_add_string_value(b, url);
			else
				json_builder_add_null_value(b);
		}
		json_builder_end_object(b);
		json_builder_end_object(b);
		node = json_builder_get_root(b);
		if (arg_json) {
			vc_cli_print_json(g_steal_pointer(&node));
			return TRUE;
		}
		{
			JsonObject *o = json_node_get_object(node);
			JsonObject *inter = json_object_get_object_member(o, "intermediate");
			g_print("CA id:        %s\n", vc_ca_get_id(ca));
			g_print("Subject:      %s\n",
				json_object_get_string_member(inter, "subject"));
			g_print("Issuer:       %s\n",
				json_object_get_string_member(inter, "issuer"));
			g_print("SHA-256:      %s\n",
				json_object_get_string_member(inter, "sha256"));
			if (json_object_has_member(inter, "expires_in_days"))
				g_print("Expires in:   %" G_GINT64_FORMAT " days\n",
					json_object_get_int_member(inter, "expires_in_days"));
			for (guint i = 0; permitted != NULL && permitted[i] != NULL; i++)
				g_print("Permitted:    DNS:%s\n", permitted[i]);
			{
				static const char *const keys[] = {"crl", "ocsp", "ca_issuers"};
				static const char *const labels[] = {
				    "CRL:         ", "OCSP:        ", "CA issuers:  "};
				JsonObject *urls = json_object_get_object_member(o, "urls");
				guint n = 0;
				for (guint k = 0; k < G_N_ELEMENTS(keys); k++) {
					const char *url =
					    json_object_get_string_member(urls, keys[k]);
					if (url == NULL)
						continue;
					g_print("%s %s\n", labels[k], url);
					n++;
				}
				if (n == 0)
					g_print("Leaf URLs:    none (set [ca] public-url)\n");
			}
		}
	}
	return TRUE;
}
