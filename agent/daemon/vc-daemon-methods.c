/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcertd's control socket methods: each request's parameters checked,
 * then handed to the engine (or, for placement-check, to the host's
 * placement answer). */
#include "vc-daemon-private.h"
#include "vc-domain-xml.h"
#include "vc-error.h"
#include "vc-host.h"
#include "vc-peer-client.h"

VcPolicySet *
vc_daemon_load_policy(VcDaemon *daemon, GError **error)
{
	g_autoptr(VcPolicySet) set = vc_policy_set_new();
	GPtrArray *warnings;

	if (!vc_policy_set_load_dir(set, daemon->config->policy_dir, error))
		return NULL;
	warnings = vc_policy_set_get_warnings(set);
	for (guint i = 0; i < warnings->len; i++)
		g_warning("policy: %s", (const char *)g_ptr_array_index(warnings, i));
	g_message("loaded %u policy group(s) from %s", vc_policy_set_get_size(set),
		  daemon->config->policy_dir);
	return g_steal_pointer(&set);
}

/* ---- control socket methods ---------------------------------------------- */

static void
vc_daemon_reply(VcIpcRequest *request, JsonNode *result, GError *error)
{
	if (result == NULL) {
		vc_ipc_request_reply_error(request, error);
		g_clear_error(&error);
		return;
	}
	vc_ipc_request_reply(request, result);
	json_node_unref(result);
}

static const char *
vc_daemon_param_string(VcIpcRequest *request, const char *key, GError **error)
{
	JsonObject *params = vc_ipc_request_get_params(request);
	JsonNode *node = json_object_get_member(params, key);

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_STRING) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
			    "parameter '%s' (a string) is required", key);
		return NULL;
	}
	return json_node_get_string(node);
}

/* An optional string parameter: DEFAULT_VALUE when absent; anything else
 * than a string (null too) is refused, never taken for the default. */
static gboolean
vc_daemon_param_string_opt(VcIpcRequest *request, const char *key, const char *default_value,
			   const char **ret_value, GError **error)
{
	JsonNode *node = json_object_get_member(vc_ipc_request_get_params(request), key);

	if (node == NULL) {
		*ret_value = default_value;
		return TRUE;
	}
	if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "parameter '%s' must be a string",
			    key);
		return FALSE;
	}
	*ret_value = json_node_get_string(node);
	return TRUE;
}

/* An optional integer parameter, as the string one: a fraction, a string or
 * a boolean is refused. */
static gboolean
vc_daemon_param_int_opt(VcIpcRequest *request, const char *key, gint64 default_value,
			gint64 *ret_value, GError **error)
{
	JsonNode *node = json_object_get_member(vc_ipc_request_get_params(request), key);

	if (node == NULL) {
		*ret_value = default_value;
		return TRUE;
	}
	if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_INT64) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "parameter '%s' must be an integer",
			    key);
		return FALSE;
	}
	*ret_value = json_node_get_int(node);
	return TRUE;
}

static void
vc_daemon_method_status(VcIpcRequest *request, gpointer user_data)
{
	VcDaemon *daemon = user_data;
	vc_daemon_reply(request, vc_engine_get_status(daemon->engine), NULL);
}

static void
vc_daemon_method_list(VcIpcRequest *request, gpointer user_data)
{
	VcDaemon *daemon = user_data;
	GError *error = NULL;
	JsonNode *result = vc_engine_list(daemon->engine, &error);
	vc_daemon_reply(request, result, error);
}

static void
vc_daemon_method_show(VcIpcRequest *request, gpointer user_data)
{
	VcDaemon *daemon = user_data;
	GError *error = NULL;
	const char *what = vc_daemon_param_string(request, "vm", &error);
	JsonNode *result = what ? vc_engine_show(daemon->engine, what, &error) : NULL;
	vc_daemon_reply(request, result, error);
}

static void
vc_daemon_doctor_done(JsonNode *result, gpointer user_data)
{
	vc_ipc_request_reply(user_data, result);
}

/* `virtcert doctor`: libvirt and the guest agents, as the daemon sees them */
static void
vc_daemon_method_doctor(VcIpcRequest *request, gpointer user_data)
{
	VcDaemon *daemon = user_data;
	vc_engine_doctor(daemon->engine, vc_daemon_doctor_done, request);
}

static void
vc_daemon_method_renew(VcIpcRequest *request, gpointer user_data)
{
	VcDaemon *daemon = user_data;
	GError *error = NULL;
	const char *vm = vc_daemon_param_string(request, "vm", &error);
	JsonNode *result = vm ? vc_engine_renew(daemon->engine, vm, &error) : NULL;
	vc_daemon_reply(request, result, error);
}

static void
vc_daemon_method_revoke(VcIpcRequest *request, gpointer user_data)
{
	VcDaemon *daemon = user_data;
	GError *error = NULL;
	const char *vm = vc_daemon_param_string(request, "vm", &error);
	const char *reason_s = NULL;
	int reason = VC_REASON_UNSPECIFIED;
	JsonNode *result = NULL;

	/* a reason that is not a reason's name is refused: revoking for
	 * another reason than the one asked cannot be undone */
	if (vm != NULL && vc_daemon_param_string_opt(request, "reason", NULL, &reason_s, &error) &&
	    (reason_s == NULL || vc_reason_from_string(reason_s, &reason, &error)))
		result = vc_engine_revoke(daemon->engine, vm, reason, &error);
	vc_daemon_reply(request, result, error);
}

static void
vc_daemon_method_issue(VcIpcRequest *request, gpointer user_data)
{
	VcDaemon *daemon = user_data;
	GError *error = NULL;
	JsonObject *params = vc_ipc_request_get_params(request);
	const char *uuid = vc_daemon_param_string(request, "vm_uuid", &error);
	const char *name = NULL;
	const char *key = NULL;
	gint64 lifetime = 0;
	JsonNode *names_node = json_object_get_member(params, "dns_names");
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	VcIssueRequest req = {0};
	JsonNode *result = NULL;

	if (uuid != NULL && !g_uuid_string_is_valid(uuid))
		g_set_error(&error, VC_ERROR, VC_ERROR_USAGE, "vm_uuid '%s' is not a UUID", uuid);
	/* each optional parameter is what it says or the request is refused:
	 * a lifetime of "1y" is not the default one */
	if (error == NULL && vc_daemon_param_string_opt(request, "vm_name", NULL, &name, &error) &&
	    name != NULL && *name == '\0')
		g_set_error_literal(&error, VC_ERROR, VC_ERROR_USAGE,
				    "parameter 'vm_name' must not be empty");
	if (error == NULL)
		vc_daemon_param_string_opt(request, "key", "ec-p256", &key, &error);
	if (error == NULL)
		vc_daemon_param_int_opt(request, "lifetime", 0, &lifetime, &error);
	if (error == NULL && (names_node == NULL || !JSON_NODE_HOLDS_ARRAY(names_node)))
		g_set_error_literal(&error, VC_ERROR, VC_ERROR_USAGE,
				    "parameter 'dns_names' (an array of strings) is required");
	if (error == NULL) {
		JsonArray *a = json_node_get_array(names_node);
		for (guint i = 0; i < json_array_get_length(a) && error == NULL; i++) {
			JsonNode *n = json_array_get_element(a, i);
			if (!JSON_NODE_HOLDS_VALUE(n) ||
			    json_node_get_value_type(n) != G_TYPE_STRING)
				g_set_error_literal(&error, VC_ERROR, VC_ERROR_USAGE,
						    "dns_names must hold strings only");
			else
				g_ptr_array_add(names,
						g_ascii_strdown(json_node_get_string(n), -1));
		}
		g_ptr_array_add(names, NULL);
	}
	if (error == NULL && vc_key_type_from_string(key, &req.key_type, &error)) {
		req.vm_uuid = uuid;
		req.vm_name = name != NULL ? name : uuid;
		req.dns_names = (const char *const *)names->pdata;
		req.lifetime_s = lifetime;
		result = vc_engine_issue_manual(daemon->engine, &req, &error);
	}
	vc_daemon_reply(request, result, error);
}

/* A migration the hook allowed here, announced to the VM's issuer (the
 * peer URL and serial its metadata names) before memory moves, on a worker
 * thread; the hook's answer waits for it, within the hook's own timeout. */
typedef struct {
	VcIpcRequest *request;
	JsonNode *result; /* the placement answer, "announced" added */
	char *peer_url;
	char *vm_uuid;
	char *vm_name;
	char *serial;
	char *cert, *key, *ca, *crl;
	guint timeout_s;
} VcDaemonAnnounce;

static void
vc_daemon_announce_thread(gpointer data, gpointer unused)
{
	VcDaemonAnnounce *a = data;
	VcPeerClientOptions opts = {.host_cert_path = a->cert,
				    .host_key_path = a->key,
				    .host_ca_path = a->ca,
				    .host_crl_path = a->crl,
				    .timeout_s = a->timeout_s};
	g_autoptr(GError) error = NULL;
	g_autofree char *reason = NULL;
	JsonObject *o = json_node_get_object(a->result);
	gboolean ok = vc_peer_announce(a->peer_url, &opts, a->vm_uuid, a->vm_name, a->serial,
				       &reason, &error);

	/* the destination's own placement decision stands either way: without
	 * an announcement the issuer refuses the claim, and its certificate
	 * ends with the grace period (privilegeWithdrawn) */
	if (ok)
		g_message("placement-check: announced the migration of VM %s to its issuer %s",
			  a->vm_name, a->peer_url);
	else
		g_warning("placement-check: cannot announce the migration of VM %s to its issuer "
			  "%s (its handover will be refused): %s",
			  a->vm_name, a->peer_url, error->message);
	json_object_set_boolean_member(o, "announced", ok);
	json_object_set_string_member(o, "announce", ok ? reason : error->message);
	vc_ipc_request_reply(a->request, a->result);
	json_node_unref(a->result);
	g_free(a->peer_url);
	g_free(a->vm_uuid);
	g_free(a->vm_name);
	g_free(a->serial);
	g_free(a->cert);
	g_free(a->key);
	g_free(a->ca);
	g_free(a->crl);
	g_free(a);
}

/* TRUE when the answer was taken over by an announcement. */
static gboolean
vc_daemon_placement_announce(VcDaemon *daemon, VcIpcRequest *request, const char *xml,
			     JsonNode *result)
{
	JsonObject *params = vc_ipc_request_get_params(request);
	g_autoptr(VcDomainInfo) info = NULL;
	VcDaemonAnnounce *a;

	if (g_strcmp0(json_object_get_string_member_with_default(params, "operation", ""),
		      "migrate") != 0 ||
	    !json_object_get_boolean_member(json_node_get_object(result), "allow"))
		return FALSE;
	info = vc_domain_info_parse(xml, -1, NULL);
	if (info == NULL || info->issuer_peer == NULL || info->issued_serial == NULL ||
	    g_strcmp0(info->issuer_peer, daemon->config->peer_url) == 0)
		return FALSE;
	if (daemon->announce_pool == NULL)
		daemon->announce_pool =
		    g_thread_pool_new(vc_daemon_announce_thread, NULL, 4, FALSE, NULL);
	a = g_new0(VcDaemonAnnounce, 1);
	a->request = request;
	a->result = result;
	a->peer_url = g_strdup(info->issuer_peer);
	a->vm_uuid = g_strdup(info->uuid);
	a->vm_name = g_strdup(info->name);
	a->serial = g_strdup(info->issued_serial);
	a->cert = vc_config_get_host_path(daemon->config, "cert");
	a->key = vc_config_get_host_path(daemon->config, "key");
	a->ca = vc_config_get_host_path(daemon->config, "ca");
	a->crl = vc_config_get_host_path(daemon->config, "crl");
	/* half the hook's patience: its answer must still arrive in time */
	a->timeout_s = (guint)MAX(1, daemon->config->hook_timeout_ms / 2000);
	g_thread_pool_push(daemon->announce_pool, a, NULL);
	return TRUE;
}

/* virtcert-hook's question before a migration (or a start with
 * check-on-start): may this VM run on this host? Host certificate and
 * policy.d are read afresh when they changed, so an imported certificate or
 * a new CRL counts at once. An allowed migration of a VM another host issued for is
 * announced to that host first (docs/peer-api.md). */
static void
vc_daemon_method_placement_check(VcIpcRequest *request, gpointer user_data)
{
	VcDaemon *daemon = user_data;
	GError *error = NULL;
	const char *xml = vc_daemon_param_string(request, "xml", &error);
	const char *operation = NULL;
	VcHost *host = NULL;
	g_autoptr(VcPolicySet) set = vc_policy_set_new();
	g_autoptr(GError) host_error = NULL;
	JsonNode *result = NULL;

	/* the operation decides whether an allowed migration is announced */
	if (xml != NULL &&
	    vc_daemon_param_string_opt(request, "operation", "", &operation, &error)) {
		/* no private key (the decision does not use it), and read again
		 * only when a file changed */
		if (daemon->host_cache == NULL)
			daemon->host_cache = vc_daemon_host_cache_new();
		host = vc_daemon_host_cache_get(daemon->host_cache, daemon->config, &host_error);
		if (host == NULL && !g_error_matches(host_error, VC_ERROR, VC_ERROR_NOT_FOUND))
			g_propagate_error(&error, g_steal_pointer(&host_error));
		else if (vc_policy_set_load_dir(set, daemon->config->policy_dir, &error)) {
			/* the owner's signature first: rules it does not cover
			 * are not worth judging */
			if (daemon->owner_trust == NULL && daemon->config->owner_ca != NULL)
				daemon->owner_trust = vc_owner_trust_new(daemon->config->owner_ca,
									 daemon->config->owner_crl);
			result = vc_placement_sig_answer(
			    daemon->owner_trust, daemon->config->require_signed, set, xml,
			    daemon->config->issue_all, daemon->config->default_lifetime_s, 0);
			if (result == NULL)
				result = vc_host_placement_answer(
				    host, set, xml, daemon->config->issue_all,
				    daemon->config->default_lifetime_s, &error);
		}
	}
	if (result != NULL &&
	    !json_object_get_boolean_member(json_node_get_object(result), "allow"))
		g_message("placement-check: refused VM %s: %s",
			  json_object_get_string_member(json_node_get_object(result), "vm"),
			  json_object_get_string_member(json_node_get_object(result), "reason"));
	if (result != NULL && host != NULL &&
	    vc_daemon_placement_announce(daemon, request, xml, result))
		return;
	vc_daemon_reply(request, result, error);
}

gboolean
vc_daemon_reload(VcDaemon *daemon, GError **error)
{
	VcPolicySet *set = vc_daemon_load_policy(daemon, error);
	if (set == NULL) {
		/* every refused file is named, one a line */
		g_warning("reload refused, the previous policy stays in force: %s",
			  (*error)->message);
		return FALSE;
	}
	vc_engine_set_policy(daemon->engine, set);
	return TRUE;
}

static void
vc_daemon_method_reload(VcIpcRequest *request, gpointer user_data)
{
	VcDaemon *daemon = user_data;
	GError *error = NULL;
	JsonNode *result = NULL;

	if (vc_daemon_reload(daemon, &error))
		result = vc_engine_get_status(daemon->engine);
	vc_daemon_reply(request, result, error);
}

void
vc_daemon_add_methods(VcDaemon *daemon)
{
	vc_ipc_server_add_method(daemon->ipc, "status", vc_daemon_method_status, daemon);
	vc_ipc_server_add_method(daemon->ipc, "list", vc_daemon_method_list, daemon);
	vc_ipc_server_add_method(daemon->ipc, "show", vc_daemon_method_show, daemon);
	vc_ipc_server_add_method(daemon->ipc, "issue", vc_daemon_method_issue, daemon);
	vc_ipc_server_add_method(daemon->ipc, "renew", vc_daemon_method_renew, daemon);
	vc_ipc_server_add_method(daemon->ipc, "revoke", vc_daemon_method_revoke, daemon);
	vc_ipc_server_add_method(daemon->ipc, "reload", vc_daemon_method_reload, daemon);
	vc_ipc_server_add_method(daemon->ipc, "doctor", vc_daemon_method_doctor, daemon);
	vc_ipc_server_add_method(daemon->ipc, "placement-check", vc_daemon_method_placement_check,
				 daemon);
}
