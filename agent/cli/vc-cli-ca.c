/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcert ca init | import | show */
#include "vc-cli.h"

#include "vc-error.h"

gboolean
vc_cli_ca_init(VcCli *cli, int argc, char **argv, GError **error)
{
	g_auto(GStrv) permit = NULL;
	g_autofree char *key = NULL;
	g_autofree char *csr = NULL;
	g_autofree char *cn = NULL;
	g_autofree char *lifetime = NULL;
	g_autofree char *dir = NULL;
	gboolean force = FALSE;
	VcCaInitOptions opts = {0};
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
	    {NULL}};

	if (!vc_cli_parse("ca init", "--permit DOMAIN…", entries, &argc, &argv, error))
		return FALSE;
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
	if (arg_json) {
		g_autoptr(JsonBuilder) b = json_builder_new();
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "ca_dir");
		json_builder_add_string_value(b, dir);
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
		}
	}
	return TRUE;
}
