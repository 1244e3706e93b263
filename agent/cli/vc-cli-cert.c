/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcert issue | list | show | revoke | crl (offline, on the store) */
#include "vc-cli.h"

#include <stdio.h>

#include "vc-domain-xml.h"
#include "vc-error.h"
#include "vc-store-json.h"

static void vc_cli_print_cert(JsonObject *o);

/* The names and settings host policy gives a VM that libvirt does not know. */
static VcPolicy *
vc_cli_policy_for_vm(VcCli *cli, const char *vm_name, const char *vm_uuid, GError **error)
{
	g_autoptr(VcPolicySet) set = vc_policy_set_new();
	VcDomainInfo info = {.name = (char *)vm_name, .uuid = (char *)vm_uuid};
	GPtrArray *warnings;
	VcPolicy *policy;

	if (!vc_policy_set_load_dir(set, cli->config->policy_dir, error))
		return NULL;
	warnings = vc_policy_set_get_warnings(set);
	for (guint i = 0; i < warnings->len; i++)
		g_printerr("virtcert: policy: %s\n", (const char *)g_ptr_array_index(warnings, i));
	policy = vc_domain_info_resolve_policy(&info, set, FALSE, NULL,
					       cli->config->default_lifetime_s, error);
	if (policy == NULL && (error == NULL || *error == NULL))
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "no policy in %s selects VM '%s'; give --dns NAME or add a policy file",
			    cli->config->policy_dir, vm_name);
	return policy;
}

gboolean
vc_cli_issue(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *vm = NULL;
	g_auto(GStrv) dns = NULL;
	g_autofree char *key = NULL;
	g_autofree char *lifetime = NULL;
	g_autofree char *cert_out = NULL;
	g_autofree char *key_out = NULL;
	g_autofree char *chain_out = NULL;
	g_autofree char *uuid = NULL;
	g_autoptr(VcPolicy) policy = NULL;
	g_autoptr(VcIssued) issued = NULL;
	g_auto(GStrv) names = NULL;
	VcIssueRequest req = {0};
	VcIssuer *issuer;
	const GOptionEntry entries[] = {
	    {"vm", 0, 0, G_OPTION_ARG_STRING, &vm, "VM name or UUID", "NAME|UUID"},
	    {"dns", 0, 0, G_OPTION_ARG_STRING_ARRAY, &dns,
	     "DNS name (repeatable); default: the names policy gives the VM", "NAME"},
	    {"key", 0, 0, G_OPTION_ARG_STRING, &key, "Key type (default from policy)", "TYPE"},
	    {"lifetime", 0, 0, G_OPTION_ARG_STRING, &lifetime, "Lifetime (default from policy)",
	     "DURATION"},
	    {"cert-out", 0, 0, G_OPTION_ARG_FILENAME, &cert_out, "Write the certificate (PEM)",
	     "FILE"},
	    {"chain-out", 0, 0, G_OPTION_ARG_FILENAME, &chain_out,
	     "Write the certificate and its chain (PEM)", "FILE"},
	    {"key-out", 0, 0, G_OPTION_ARG_FILENAME, &key_out,
	     "Write the private key (PEM, mode 0600); without it the key is discarded", "FILE"},
	    {NULL}};

	if (!vc_cli_parse("issue", "--vm NAME|UUID [--dns NAME…]", entries, &argc, &argv, error))
		return FALSE;
	if (vm == NULL || argc > 1) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "usage: virtcert issue --vm NAME|UUID [--dns NAME…]");
		return FALSE;
	}
	if (vc_cli_get_config(cli, error) == NULL)
		return FALSE;
	uuid = vc_cli_vm_uuid_from_arg(vm);
	req.vm_uuid = uuid;
	req.vm_name = vm;
	req.key_type = VC_KEY_TYPE_EC_P256;
	if (dns != NULL && dns[0] != NULL) {
		names = g_new0(char *, g_strv_length(dns) + 1);
		for (guint i = 0; dns[i] != NULL; i++)
			names[i] = g_ascii_strdown(dns[i], -1);
	} else {
		VcNameVars vars = {.name = vm, .uuid = uuid};
		policy = vc_cli_policy_for_vm(cli, vm, uuid, error);
		if (policy == NULL)
			return FALSE;
		names = vc_name_expand_all((const char *const *)policy->names, &vars, error);
		if (names == NULL)
			return FALSE;
		req.key_type = policy->key_type;
		req.lifetime_s = policy->lifetime_s;
	}
	req.dns_names = (const char *const *)names;
	if (key != NULL && !vc_key_type_from_string(key, &req.key_type, error))
		return FALSE;
	if (lifetime != NULL && !vc_duration_parse(lifetime, &req.lifetime_s, error))
		return FALSE;

	/* through the daemon unless the caller wants the key or files: a key made
	 * in the daemon never leaves it */
	if (cert_out == NULL && chain_out == NULL && key_out == NULL &&
	    vc_cli_daemon_running(cli)) {
		g_autoptr(JsonObject) params = json_object_new();
		g_autoptr(JsonArray) a = json_array_new();
		g_autoptr(JsonNode) node = NULL;
		for (guint i = 0; names[i] != NULL; i++)
			json_array_add_string_element(a, names[i]);
		json_object_set_string_member(params, "vm_uuid", uuid);
		json_object_set_string_member(params, "vm_name", vm);
		json_object_set_array_member(params, "dns_names", json_array_ref(a));
		json_object_set_string_member(params, "key", vc_key_type_to_string(req.key_type));
		json_object_set_int_member(params, "lifetime", req.lifetime_s);
		node = vc_cli_daemon_call(cli, "issue", params, error);
		if (node == NULL)
			return FALSE;
		if (arg_json)
			vc_cli_print_json(g_steal_pointer(&node));
		else
			vc_cli_print_cert(json_node_get_object(node));
		return TRUE;
	}
	/* the daemon refuses the same (vc_engine_host_may_issue()) */
	if (!vc_cli_host_may_issue(cli, error)) {
		g_prefix_error(error, "no certificate for VM %s: ", vm);
		return FALSE;
	}
	issuer = vc_cli_get_issuer(cli, error);
	if (issuer == NULL)
		return FALSE;
	issued = vc_issuer_issue(issuer, &req, error);
	if (issued == NULL)
		return FALSE;

	if (cert_out != NULL || chain_out != NULL) {
		g_autofree char *pem = vc_cert_to_pem(issued->cert, error);
		g_autoptr(GString) chain = NULL;
		GPtrArray *cas = vc_ca_get_chain(cli->ca);
		if (pem == NULL)
			return FALSE;
		if (cert_out != NULL &&
		    !vc_cli_write_output(cert_out, pem, strlen(pem), 0644, error))
			return FALSE;
		chain = g_string_new(pem);
		for (guint i = 0; i < cas->len; i++) {
			g_autofree char *c = vc_cert_to_pem(g_ptr_array_index(cas, i), error);
			if (c == NULL)
				return FALSE;
			g_string_append(chain, c);
		}
		if (chain_out != NULL &&
		    !vc_cli_write_output(chain_out, chain->str, chain->len, 0644, error))
			return FALSE;
	}
	if (key_out != NULL && issued->key != NULL) {
		char *pem = vc_key_to_pem(issued->key, error);
		gboolean ok;
		if (pem == NULL)
			return FALSE;
		ok = vc_cli_write_output(key_out, pem, strlen(pem), 0600, error);
		vc_secret_free(pem);
		if (!ok)
			return FALSE;
	}

	if (arg_json) {
		g_autoptr(VcCertRecord) rec = vc_store_cert_get(cli->store, issued->serial, error);
		if (rec == NULL)
			return FALSE;
		vc_cli_print_json(vc_cert_record_to_json(rec));
	} else {
		g_autofree char *until = vc_time_to_string(issued->not_after);
		g_autofree char *joined = g_strjoinv(", ", names);
		g_print("Issued serial %s for VM %s (%s)\n  names: %s\n  valid until %s\n",
			issued->serial, vm, uuid, joined, until);
	}
	return TRUE;
}

GPtrArray *
vc_cli_certs_of_vm(VcCli *cli, const char *arg, GError **error)
{
	g_autoptr(GPtrArray) all = NULL;
	g_autoptr(GPtrArray) out = NULL;
	g_autofree char *uuid = vc_cli_is_uuid(arg) ? g_ascii_strdown(arg, -1) : NULL;

	all = vc_store_cert_list(cli->store, uuid, error);
	if (all == NULL)
		return NULL;
	if (uuid != NULL)
		return g_steal_pointer(&all);
	out = g_ptr_array_new_with_free_func((GDestroyNotify)vc_cert_record_free);
	for (guint i = 0; i < all->len; i++) {
		VcCertRecord *rec = g_ptr_array_index(all, i);
		if (g_strcmp0(rec->vm_name, arg) == 0)
			g_ptr_array_add(out, g_ptr_array_steal_index(all, i--));
	}
	return g_steal_pointer(&out);
}

gboolean
vc_cli_is_serial(const char *s)
{
	gsize n = strlen(s);
	if (n < 2 || n > 40)
		return FALSE;
	for (gsize i = 0; i < n; i++)
		if (!g_ascii_isxdigit(s[i]))
			return FALSE;
	return TRUE;
}

static const char *
vc_cli_json_str(JsonObject *o, const char *key)
{
	JsonNode *n = json_object_get_member(o, key);
	if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
		return "";
	return json_node_get_string(n);
}

static char *
vc_cli_json_names(JsonObject *o, const char *sep)
{
	g_autoptr(GString) s = g_string_new(NULL);
	JsonNode *n = json_object_get_member(o, "dns_names");
	if (n != NULL && JSON_NODE_HOLDS_ARRAY(n)) {
		JsonArray *a = json_node_get_array(n);
		for (guint i = 0; i < json_array_get_length(a); i++) {
			if (i > 0)
				g_string_append(s, sep);
			g_string_append(s, json_array_get_string_element(a, i));
		}
	}
	return g_string_free(g_steal_pointer(&s), FALSE);
}

/* Prints a JSON array of certificate objects as a table. */
static void
vc_cli_print_table(JsonArray *certs)
{
	g_print("%-32s  %-9s  %-20s  %-20s  %s\n", "SERIAL", "STATUS", "NOT AFTER", "VM", "NAMES");
	for (guint i = 0; i < json_array_get_length(certs); i++) {
		JsonObject *o = json_array_get_object_element(certs, i);
		g_autofree char *names = vc_cli_json_names(o, ",");
		const char *vm = vc_cli_json_str(o, "vm_name");
		g_print("%-32s  %-9s  %-20s  %-20s  %s\n", vc_cli_json_str(o, "serial"),
			vc_cli_json_str(o, "status"), vc_cli_json_str(o, "not_after"),
			*vm ? vm : vc_cli_json_str(o, "vm_uuid"), names);
	}
}

static void
vc_cli_print_cert(JsonObject *o)
{
	g_autofree char *names = vc_cli_json_names(o, ", ");
	g_print("Serial:      %s\nStatus:      %s\nVM:          %s (%s)\nNames:       %s\n"
		"Not before:  %s\nNot after:   %s\nCA:          %s\n",
		vc_cli_json_str(o, "serial"), vc_cli_json_str(o, "status"),
		vc_cli_json_str(o, "vm_name"), vc_cli_json_str(o, "vm_uuid"), names,
		vc_cli_json_str(o, "not_before"), vc_cli_json_str(o, "not_after"),
		vc_cli_json_str(o, "ca_id"));
	if (*vc_cli_json_str(o, "revoked_at"))
		g_print("Revoked:     %s (%s)\n", vc_cli_json_str(o, "revoked_at"),
			vc_cli_json_str(o, "reason"));
}

static JsonNode *
vc_cli_records_to_json(GPtrArray *recs)
{
	JsonArray *array = json_array_sized_new(recs->len);
	JsonNode *node = json_node_new(JSON_NODE_ARRAY);
	for (guint i = 0; i < recs->len; i++)
		json_array_add_element(array, vc_cert_record_to_json(g_ptr_array_index(recs, i)));
	json_node_take_array(node, array);
	return node;
}

gboolean
vc_cli_list(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *vm = NULL;
	g_autofree char *status = NULL;
	g_autoptr(JsonNode) node = NULL;
	JsonArray *certs;
	const GOptionEntry entries[] = {
	    {"vm", 0, 0, G_OPTION_ARG_STRING, &vm, "Only this VM (name or UUID)", "VM"},
	    {"status", 0, 0, G_OPTION_ARG_STRING, &status,
	     "Only this status (pending, valid, revoked, abandoned)", "STATUS"},
	    {NULL}};

	if (!vc_cli_parse("list", "", entries, &argc, &argv, error))
		return FALSE;
	if (vc_cli_daemon_running(cli)) {
		node = vc_cli_daemon_call(cli, "list", NULL, error);
	} else {
		g_autoptr(GPtrArray) recs = NULL;
		if (vc_cli_get_store(cli, error) == NULL)
			return FALSE;
		recs = vc_store_cert_list(cli->store, NULL, error);
		if (recs != NULL)
			node = vc_cli_records_to_json(recs);
	}
	if (node == NULL)
		return FALSE;
	if (!JSON_NODE_HOLDS_ARRAY(node)) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "the daemon's list is not an array");
		return FALSE;
	}
	certs = json_node_get_array(node);
	for (guint i = 0; i < json_array_get_length(certs); i++) {
		JsonObject *o = json_array_get_object_element(certs, i);
		gboolean keep = TRUE;
		if (vm != NULL)
			keep = g_strcmp0(vc_cli_json_str(o, "vm_name"), vm) == 0 ||
			       g_ascii_strcasecmp(vc_cli_json_str(o, "vm_uuid"), vm) == 0;
		if (keep && status != NULL)
			keep = g_ascii_strcasecmp(vc_cli_json_str(o, "status"), status) == 0;
		if (!keep)
			json_array_remove_element(certs, i--);
	}
	if (arg_json)
		vc_cli_print_json(g_steal_pointer(&node));
	else
		vc_cli_print_table(certs);
	return TRUE;
}

/* Why the store holds no certificate for the VM named WHAT, as far as
 * policy.d tells by its name alone (offline: no domain XML to read). */
static char *
vc_cli_why_no_cert(VcCli *cli, const char *what)
{
	g_autoptr(GError) local = NULL;
	g_autofree char *uuid = vc_cli_vm_uuid_from_arg(what);
	g_autoptr(VcPolicy) policy = vc_cli_policy_for_vm(cli, what, uuid, &local);

	if (policy != NULL)
		return g_strdup_printf("policy %s selects a VM of that name; the daemon issues "
				       "when the VM starts (is virtcertd running? 'virtcert "
				       "status')",
				       policy->source);
	if (local != NULL && !g_error_matches(local, VC_ERROR, VC_ERROR_POLICY))
		return g_strdup_printf("policy.d is refused: %s", local->message);
	return g_strdup_printf("no policy in %s selects a VM of that name ('virtcert policy "
			       "show --xml <(virsh dumpxml VM)' tells for its domain XML)",
			       cli->config->policy_dir);
}

/* Offline `show`: a certificate object for a serial, or {domain, certificates}
 * for a VM, the same shapes the daemon answers with. */
static JsonNode *
vc_cli_show_offline(VcCli *cli, const char *what, GError **error)
{
	g_autoptr(GPtrArray) recs = NULL;
	g_autoptr(JsonBuilder) b = NULL;
	g_autoptr(VcDomainRecord) row = NULL;

	if (vc_cli_get_store(cli, error) == NULL)
		return NULL;
	if (vc_cli_is_serial(what)) {
		g_autofree char *serial = g_ascii_strdown(what, -1);
		g_autoptr(VcCertRecord) rec = vc_store_cert_get(cli->store, serial, NULL);
		if (rec != NULL)
			return vc_cert_record_to_json(rec);
	}
	recs = vc_cli_certs_of_vm(cli, what, error);
	if (recs == NULL)
		return NULL;
	if (recs->len > 0)
		row = vc_store_domain_get(
		    cli->store, ((VcCertRecord *)g_ptr_array_index(recs, 0))->vm_uuid, NULL);
	if (recs->len == 0) {
		g_autofree char *why = vc_cli_why_no_cert(cli, what);
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND,
			    "no certificate with serial or VM '%s': %s", what, why);
		return NULL;
	}
	b = json_builder_new();
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "domain");
	if (row != NULL)
		json_builder_add_value(b, vc_domain_record_to_json(row));
	else
		json_builder_add_null_value(b);
	json_builder_set_member_name(b, "certificates");
	json_builder_add_value(b, vc_cli_records_to_json(recs));
	json_builder_end_object(b);
	return json_builder_get_root(b);
}

static gboolean
vc_cli_print_pem(VcCli *cli, JsonObject *cert, GError **error)
{
	g_autoptr(VcCertRecord) rec = NULL;
	g_autoptr(X509) x = NULL;
	g_autofree char *text = NULL;
	const guint8 *der;
	gsize len = 0;

	/* the DER is read from the store: PEM needs local access to the state */
	if (vc_cli_get_store(cli, error) == NULL)
		return FALSE;
	rec = vc_store_cert_get(cli->store, vc_cli_json_str(cert, "serial"), error);
	if (rec == NULL)
		return FALSE;
	if (rec->der == NULL)
		return TRUE;
	der = g_bytes_get_data(rec->der, &len);
	x = vc_cert_from_der(der, len, error);
	if (x == NULL)
		return FALSE;
	text = vc_cert_to_pem(x, error);
	if (text == NULL)
		return FALSE;
	g_print("%s", text);
	return TRUE;
}

gboolean
vc_cli_show(VcCli *cli, int argc, char **argv, GError **error)
{
	gboolean pem = FALSE;
	g_autoptr(JsonNode) node = NULL;
	JsonObject *o;
	const GOptionEntry entries[] = {
	    {"pem", 0, 0, G_OPTION_ARG_NONE, &pem, "Print the certificate(s) as PEM", NULL},
	    {NULL}};

	if (!vc_cli_parse("show", "SERIAL|VM", entries, &argc, &argv, error))
		return FALSE;
	if (argc != 2) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "usage: virtcert show SERIAL|VM [--pem]");
		return FALSE;
	}
	if (vc_cli_daemon_running(cli)) {
		g_autoptr(JsonObject) params = json_object_new();
		json_object_set_string_member(params, "vm", argv[1]);
		node = vc_cli_daemon_call(cli, "show", params, error);
		/* the daemon knows only the VMs it manages; manual ones are in the store */
		if (node == NULL && g_error_matches(*error, VC_ERROR, VC_ERROR_NOT_FOUND)) {
			g_clear_error(error);
			node = vc_cli_show_offline(cli, argv[1], error);
			/* neither: libvirt has no such VM (the daemon asked it) */
			if (node == NULL && g_error_matches(*error, VC_ERROR, VC_ERROR_NOT_FOUND)) {
				g_clear_error(error);
				g_set_error(
				    error, VC_ERROR, VC_ERROR_NOT_FOUND,
				    "no certificate with serial or VM '%s' in the store, and "
				    "libvirt (%s) has no VM of that name or UUID",
				    argv[1], cli->config->libvirt_uri);
			}
		}
	} else {
		node = vc_cli_show_offline(cli, argv[1], error);
	}
	if (node == NULL)
		return FALSE;
	if (!JSON_NODE_HOLDS_OBJECT(node)) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "the answer is not a JSON object");
		return FALSE;
	}
	o = json_node_get_object(node);
	if (pem) {
		if (json_object_has_member(o, "certificates")) {
			JsonArray *a = json_object_get_array_member(o, "certificates");
			for (guint i = 0; i < json_array_get_length(a); i++)
				if (!vc_cli_print_pem(cli, json_array_get_object_element(a, i),
						      error))
					return FALSE;
			return TRUE;
		}
		return vc_cli_print_pem(cli, o, error);
	}
	if (arg_json) {
		vc_cli_print_json(g_steal_pointer(&node));
		return TRUE;
	}
	if (json_object_has_member(o, "certificates")) {
		JsonArray *a = json_object_get_array_member(o, "certificates");
		JsonNode *d = json_object_get_member(o, "domain");
		if (d != NULL && JSON_NODE_HOLDS_OBJECT(d)) {
			JsonObject *dom = json_node_get_object(d);
			g_print(
			    "VM:          %s (%s)\nState:       %s (generation %" G_GINT64_FORMAT
			    ")\n",
			    vc_cli_json_str(dom, "name"), vc_cli_json_str(dom, "uuid"),
			    vc_cli_json_str(dom, "state"),
			    json_object_get_int_member_with_default(dom, "generation", 0));
			if (*vc_cli_json_str(dom, "last_error"))
				g_print("Last error:  %s\n", vc_cli_json_str(dom, "last_error"));
		}
		if (*vc_cli_json_str(o, "renew_at"))
			g_print("Renews at:   %s (2/3 of its life, with jitter)\n",
				vc_cli_json_str(o, "renew_at"));
		if (*vc_cli_json_str(o, "why"))
			g_print("No certificate: %s\n", vc_cli_json_str(o, "why"));
		if (d != NULL && JSON_NODE_HOLDS_OBJECT(d))
			g_print("\n");
		for (guint i = 0; i < json_array_get_length(a); i++) {
			if (i > 0)
				g_print("\n");
			vc_cli_print_cert(json_array_get_object_element(a, i));
		}
		return TRUE;
	}
	vc_cli_print_cert(o);
	return TRUE;
}

gboolean
vc_cli_revoke(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *reason_s = NULL;
	g_autoptr(GPtrArray) targets = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(JsonBuilder) b = json_builder_new();
	int reason = VC_REASON_UNSPECIFIED;
	VcIssuer *issuer;
	const GOptionEntry entries[] = {
	    {"reason", 0, 0, G_OPTION_ARG_STRING, &reason_s,
	     "RFC 5280 reason: unspecified, keyCompromise, superseded, cessationOfOperation, "
	     "privilegeWithdrawn, affiliationChanged",
	     "REASON"},
	    {NULL}};

	if (!vc_cli_parse("revoke", "SERIAL|VM", entries, &argc, &argv, error))
		return FALSE;
	if (argc != 2) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "usage: virtcert revoke SERIAL|VM [--reason REASON]");
		return FALSE;
	}
	if (reason_s != NULL && !vc_reason_from_string(reason_s, &reason, error))
		return FALSE;
	if (vc_cli_daemon_running(cli)) {
		g_autoptr(JsonObject) params = json_object_new();
		g_autoptr(JsonNode) node = NULL;
		json_object_set_string_member(params, "vm", argv[1]);
		json_object_set_string_member(params, "reason", vc_reason_to_string(reason));
		node = vc_cli_daemon_call(cli, "revoke", params, error);
		if (node == NULL)
			return FALSE;
		if (arg_json) {
			vc_cli_print_json(g_steal_pointer(&node));
		} else {
			JsonArray *a =
			    json_object_get_array_member(json_node_get_object(node), "revoked");
			for (guint i = 0; a != NULL && i < json_array_get_length(a); i++)
				g_print("Revoked %s (%s)\n", json_array_get_string_element(a, i),
					vc_reason_to_string(reason));
		}
		return TRUE;
	}
	issuer = vc_cli_get_issuer(cli, error);
	if (issuer == NULL)
		return FALSE;
	if (vc_cli_is_serial(argv[1])) {
		g_autofree char *serial = g_ascii_strdown(argv[1], -1);
		g_autoptr(VcCertRecord) rec = vc_store_cert_get(cli->store, serial, NULL);
		if (rec != NULL)
			g_ptr_array_add(targets, g_steal_pointer(&serial));
	}
	if (targets->len == 0) {
		g_autoptr(GPtrArray) recs = vc_cli_certs_of_vm(cli, argv[1], error);
		if (recs == NULL)
			return FALSE;
		for (guint i = 0; i < recs->len; i++) {
			VcCertRecord *rec = g_ptr_array_index(recs, i);
			if (rec->status == VC_CERT_STATUS_VALID ||
			    rec->status == VC_CERT_STATUS_PENDING)
				g_ptr_array_add(targets, g_strdup(rec->serial));
		}
		if (recs->len == 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND,
				    "no certificate with serial or VM '%s'", argv[1]);
			return FALSE;
		}
	}
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "revoked");
	json_builder_begin_array(b);
	for (guint i = 0; i < targets->len; i++) {
		const char *serial = g_ptr_array_index(targets, i);
		if (!vc_issuer_revoke(issuer, serial, reason, error))
			return FALSE;
		json_builder_add_string_value(b, serial);
		if (!arg_json)
			g_print("Revoked %s (%s)\n", serial, vc_reason_to_string(reason));
	}
	json_builder_end_array(b);
	json_builder_end_object(b);
	if (arg_json)
		vc_cli_print_json(json_builder_get_root(b));
	else if (targets->len == 0)
		g_print("Nothing to revoke: VM %s has no valid certificate\n", argv[1]);
	return TRUE;
}

gboolean
vc_cli_crl(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *out = NULL;
	gboolean pem = FALSE;
	g_autoptr(X509_CRL) crl = NULL;
	VcIssuer *issuer;
	const GOptionEntry entries[] = {
	    {"out", 0, 0, G_OPTION_ARG_FILENAME, &out, "Write to FILE instead of stdout", "FILE"},
	    {"pem", 0, 0, G_OPTION_ARG_NONE, &pem, "PEM instead of DER", NULL},
	    {NULL}};

	if (!vc_cli_parse("crl", "", entries, &argc, &argv, error))
		return FALSE;
	issuer = vc_cli_get_issuer(cli, error);
	if (issuer == NULL)
		return FALSE;
	crl = vc_issuer_make_crl(issuer, error);
	if (crl == NULL)
		return FALSE;
	if (pem) {
		g_autofree char *text = vc_crl_to_pem(crl, error);
		return text != NULL && vc_cli_write_output(out, text, strlen(text), 0644, error);
	} else {
		g_autoptr(GBytes) der = vc_crl_to_der(crl, error);
		gsize len = 0;
		const char *data;
		if (der == NULL)
			return FALSE;
		data = g_bytes_get_data(der, &len);
		return vc_cli_write_output(out, data, len, 0644, error);
	}
}
