/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcert policy show --xml DOMAIN.xml: the daemon's decision, offline. */
#include "vc-cli.h"

#include "vc-domain-xml.h"
#include <gio/gunixinputstream.h>

#include "vc-ca.h"
#include "vc-error.h"

VcDomainInfo *
vc_cli_load_domain_xml(const char *path, GError **error)
{
	g_autofree char *xml = NULL;
	gsize len = 0;
	VcDomainInfo *info;

	if (g_strcmp0(path, "-") == 0) {
		g_autoptr(GInputStream) in = g_unix_input_stream_new(0, FALSE);
		/* one byte over the cap, so that the parser sees it is too large */
		g_autoptr(GBytes) bytes =
		    g_input_stream_read_bytes(in, VC_DOMAIN_XML_MAX_SIZE + 1, NULL, error);
		if (bytes == NULL)
			return NULL;
		len = g_bytes_get_size(bytes);
		xml = g_strndup(g_bytes_get_data(bytes, NULL), len);
	} else {
		/* the parser names its own size limit */
		xml = vc_file_read(path, G_MAXINT, &len, error);
		if (xml == NULL)
			return NULL;
	}
	info = vc_domain_info_parse(xml, (gssize)len, error);
	if (info == NULL)
		g_prefix_error(error, "%s: ", path);
	return info;
}

VcDomainInfo *
vc_cli_load_domain_and_policies(VcCli *cli, const char *xml_path, VcPolicySet *set, GError **error)
{
	g_autoptr(VcDomainInfo) info = NULL;

	if (vc_cli_get_config(cli, error) == NULL)
		return NULL;
	info = vc_cli_load_domain_xml(xml_path, error);
	if (info == NULL)
		return NULL;
	if (!vc_policy_set_load_dir(set, cli->config->policy_dir, error))
		return NULL;
	return g_steal_pointer(&info);
}

gboolean
vc_cli_policy_show(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *xml_path = NULL;
	g_autoptr(VcDomainInfo) info = NULL;
	g_autoptr(VcPolicySet) set = vc_policy_set_new();
	g_autoptr(VcPolicy) policy = NULL;
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autofree char *policy_json = NULL;
	g_auto(GStrv) names = NULL;
	g_autoptr(GError) names_error = NULL;
	GPtrArray *warnings;
	VcNameVars vars;
	const GOptionEntry entries[] = {
	    {"xml", 0, 0, G_OPTION_ARG_FILENAME, &xml_path,
	     "Domain XML (as virsh dumpxml prints it, or as you will define it); - for stdin",
	     "FILE"},
	    {NULL}};

	if (!vc_cli_parse("policy show", "--xml DOMAIN.xml", entries, &argc, &argv, error))
		return FALSE;
	if (xml_path == NULL || argc > 1) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "usage: virtcert policy show --xml DOMAIN.xml [--json]");
		return FALSE;
	}
	info = vc_cli_load_domain_and_policies(cli, xml_path, set, error);
	if (info == NULL)
		return FALSE;
	warnings = vc_policy_set_get_warnings(set);
	policy = vc_domain_info_resolve_policy(info, set, cli->config->issue_all, NULL,
					       cli->config->default_lifetime_s, error);
	if (policy == NULL && error != NULL && *error != NULL)
		return FALSE;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "vm_name");
	json_builder_add_string_value(b, info->name);
	json_builder_set_member_name(b, "vm_uuid");
	json_builder_add_string_value(b, info->uuid);
	json_builder_set_member_name(b, "selected");
	json_builder_add_boolean_value(b, policy != NULL);
	if (policy != NULL) {
		JsonNode *pnode;
		policy_json = vc_policy_to_string(policy);
		if (!json_parser_load_from_data(parser, policy_json, -1, error))
			return FALSE;
		pnode = json_node_copy(json_parser_get_root(parser));
		json_builder_set_member_name(b, "policy");
		json_builder_add_value(b, pnode);
		vc_domain_info_get_name_vars(info, &vars);
		names = vc_name_expand_all((const char *const *)policy->names, &vars, &names_error);
		if (names != NULL) {
			/* the CA's constraints, when there is a CA to ask */
			g_autoptr(GError) ca_error = NULL;
			VcCa *ca = vc_cli_get_ca(cli, &ca_error);
			if (ca != NULL)
				vc_ca_check_names(ca, (const char *const *)names, &names_error);
		}
		json_builder_set_member_name(b, "dns_names");
		json_builder_begin_array(b);
		for (guint i = 0; names != NULL && names[i] != NULL; i++)
			json_builder_add_string_value(b, names[i]);
		json_builder_end_array(b);
		json_builder_set_member_name(b, "error");
		if (names_error != NULL)
			json_builder_add_string_value(b, names_error->message);
		else
			json_builder_add_null_value(b);
	}
	json_builder_set_member_name(b, "policy_warnings");
	json_builder_begin_array(b);
	for (guint i = 0; i < warnings->len; i++)
		json_builder_add_string_value(b, g_ptr_array_index(warnings, i));
	json_builder_end_array(b);
	json_builder_end_object(b);

	if (arg_json) {
		vc_cli_print_json(json_builder_get_root(b));
	} else {
		for (guint i = 0; i < warnings->len; i++)
			g_printerr("warning: %s\n", (const char *)g_ptr_array_index(warnings, i));
		g_print("VM:        %s (%s)\n", info->name, info->uuid);
		if (policy == NULL) {
			g_print("Decision:  no certificate (no policy selects this VM)\n");
			return TRUE;
		}
		g_print("Policy:    %s\n", policy->source);
		for (guint i = 0; names != NULL && names[i] != NULL; i++)
			g_print("DNS name:  %s\n", names[i]);
		g_print("Key:       %s (%s keygen)\n", vc_key_type_to_string(policy->key_type),
			vc_key_mode_to_string(policy->key_mode));
		g_print("Lifetime:  %" G_GINT64_FORMAT " s\n", policy->lifetime_s);
		g_print("Issue on:  %s; on stop: %s\n", vc_issue_on_to_string(policy->issue_on),
			policy->revoke_on_stop ? "revoke" : "keep");
		g_print("Delivery:  cert %s, chain %s, key %s, owner %s%s%s\n", policy->cert_path,
			policy->chain_path, policy->key_path,
			policy->owner ? policy->owner : "root", policy->reload ? ", reload: " : "",
			policy->reload ? policy->reload : "");
		for (guint i = 0; policy->trust_host_cas != NULL && policy->trust_host_cas[i]; i++)
			g_print("Trusts:    host CA %s\n", policy->trust_host_cas[i]);
		for (guint i = 0; policy->placement != NULL && i < policy->placement->len; i++) {
			VcPlacementRule *r = g_ptr_array_index(policy->placement, i);
			g_autofree char *v = g_strjoinv(" | ", r->values);
			g_print("Requires:  host %s in { %s }\n", r->key, v);
		}
		if (policy->sources != NULL) {
			/* which source set each value: metadata only narrows */
			g_autoptr(GList) keys = g_hash_table_get_keys(policy->sources);
			keys = g_list_sort(keys, (GCompareFunc)g_strcmp0);
			for (GList *l = keys; l != NULL; l = l->next)
				g_print(
				    "Set by:    %-14s %s\n", (const char *)l->data,
				    (const char *)g_hash_table_lookup(policy->sources, l->data));
		}
	}
	if (names_error != NULL) {
		g_propagate_error(error, g_steal_pointer(&names_error));
		(*error)->code = VC_ERROR_POLICY;
		return FALSE;
	}
	return TRUE;
}
