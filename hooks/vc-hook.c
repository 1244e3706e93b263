/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcert-hook: libvirt's QEMU hook (/etc/libvirt/hooks/qemu.d/virtcert).
 *
 * libvirt runs it as `virtcert-hook VM OP SUBOP EXTRA` with the domain XML on
 * stdin, synchronously, and a non-zero exit of "migrate begin" (on the
 * destination, before any memory moves) or "prepare begin" refuses the
 * operation with our stderr as the error message. So:
 *   - never call libvirt (it holds its locks while we run: deadlock);
 *   - never write to stdout: for "migrate" libvirt would take it as a
 *     rewritten domain XML;
 *   - with [placement] require-signed, every VM a policy selects is asked
 *     about (migration and start): the owner's signature is checked by the
 *     daemon (agent/ca/vc-placement-sig.h), never here;
 *   - fail closed: if the daemon cannot answer in time the migration is
 *     refused, unless the administrator chose [hook] fail-open=true;
 *   - libvirt gives hooks only LC_ALL, PATH, HOME, USER and LOGNAME, so the
 *     daemon's socket comes from the configuration file
 *     ($VIRTCERT_HOOK_CONFIG overrides its path, for tests only). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vc-build-config.h"
#include "vc-config.h"
#include "vc-domain-xml.h"
#include "vc-error.h"
#include "vc-ipc-client.h"
#include "vc-placement.h"
#include "vc-qemu-conf.h"

/* What we read of stdin at most. libvirt domain XML is rarely above a few
 * hundred KiB; vc_domain_info_parse() has its own, smaller cap. */
#define VC_HOOK_STDIN_MAX (10 * 1024 * 1024)

typedef enum {
	HOOK_PASS,  /* not ours: exit 0 silently */
	HOOK_CHECK, /* ask the daemon */
} HookAction;

static int
vc_hook_refuse(const char *op, const char *vm, const char *reason)
{
	g_printerr("virtcert: refusing to %s VM %s on this host: %s\n", op, vm, reason);
	return 1;
}

/* Reads all of stdin up to VC_HOOK_STDIN_MAX; more is an error. */
static char *
vc_hook_read_stdin(gsize *ret_len, GError **error)
{
	g_autoptr(GString) buf = g_string_sized_new(64 * 1024);
	g_autofree char *chunk = g_malloc(64 * 1024);

	for (;;) {
		ssize_t n = read(STDIN_FILENO, chunk, 64 * 1024);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot read the domain XML: %s",
				    g_strerror(errno));
			return NULL;
		}
		if (n == 0)
			break;
		if (buf->len + (gsize)n > VC_HOOK_STDIN_MAX) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "the domain XML on stdin is larger than %d MiB",
				    VC_HOOK_STDIN_MAX / (1024 * 1024));
			return NULL;
		}
		g_string_append_len(buf, chunk, n);
	}
	*ret_len = buf->len;
	return g_string_free(g_steal_pointer(&buf), FALSE);
}

/* The reply must be exactly {"allow": bool, "reason": string, ...}: anything
 * else is a refusal, never a guess. */
static gboolean
vc_hook_parse_answer(JsonNode *result, gboolean *ret_allow, const char **ret_reason)
{
	JsonObject *o;
	JsonNode *allow, *reason;

	if (result == NULL || !JSON_NODE_HOLDS_OBJECT(result))
		return FALSE;
	o = json_node_get_object(result);
	allow = json_object_get_member(o, "allow");
	reason = json_object_get_member(o, "reason");
	if (allow == NULL || !JSON_NODE_HOLDS_VALUE(allow) ||
	    json_node_get_value_type(allow) != G_TYPE_BOOLEAN)
		return FALSE;
	if (reason != NULL &&
	    (!JSON_NODE_HOLDS_VALUE(reason) || json_node_get_value_type(reason) != G_TYPE_STRING))
		return FALSE;
	*ret_allow = json_node_get_boolean(allow);
	*ret_reason = reason != NULL ? json_node_get_string(reason) : "";
	return TRUE;
}

/* For a domain XML that cannot be read: could the VM have asked for this
 * check? Yes if the XML holds a virtcert element (its namespace) or if some
 * policy.d group could ask it for the VM (we cannot tell which group would
 * select it), or if policy.d could not be read. */
static gboolean
vc_hook_may_be_checked(const VcConfig *config, const char *xml, gsize len, VcPolicySet *set,
		       gboolean policy_loaded, gboolean is_migrate)
{
	if (g_strstr_len(xml, (gssize)len, VC_DOMAIN_NS) != NULL || !policy_loaded)
		return TRUE;
	/* a host that requires a signed placement checks every VM a group
	 * selects, and we cannot tell which */
	if (config->require_signed && vc_policy_set_get_size(set) > 0)
		return TRUE;
	if (is_migrate)
		return vc_policy_set_any_group_sets(set, "require", FALSE) ||
		       vc_policy_set_any_group_sets(set, "trust-host-ca", FALSE);
	return vc_policy_set_any_group_sets(set, "check-on-start", TRUE);
}

/* Must the daemon see a VM a policy selects even when its placement does
 * not restrict anything? Yes when this host requires a signed placement
 * ([placement] require-signed: an unsigned or weakened placement is refused
 * there), or checks the signatures it is given (owner-ca) and this one has
 * one. */
static gboolean
vc_hook_signature_matters(const VcConfig *config, const VcDomainInfo *info, const VcPolicy *policy)
{
	if (policy == NULL)
		return FALSE;
	if (config->require_signed)
		return TRUE;
	return config->owner_ca != NULL && info->placement != NULL &&
	       info->placement->sig_der != NULL;
}

/* `virtcert-hook --self-test` (virtcert doctor, an administrator): reads
 * the configuration as libvirt's run would and asks the daemon over the
 * control socket, within the hook's own timeout. Not run by libvirt. */
static int
vc_hook_self_test(const char *config_path)
{
	g_autoptr(VcConfig) config = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) result = NULL;

	config = vc_config_load(config_path != NULL ? config_path : VC_SYSCONFDIR "/virtcert.conf",
				FALSE, &error);
	if (config == NULL) {
		g_printerr("virtcert-hook: cannot read the configuration: %s\n", error->message);
		return 1;
	}
	result = vc_ipc_client_call(config->control_socket, "status", NULL,
				    (guint)config->hook_timeout_ms, &error);
	if (result == NULL) {
		g_printerr("virtcert-hook: the daemon does not answer on %s: %s\n",
			   config->control_socket, error->message);
		return 1;
	}
	g_print("virtcert-hook: the daemon answers on %s\n", config->control_socket);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *vm, *op, *subop, *what;
	const char *config_path = g_getenv("VIRTCERT_HOOK_CONFIG");
	g_autoptr(VcConfig) config = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *xml = NULL;
	gsize len = 0;
	g_autoptr(VcDomainInfo) info = NULL;
	g_autoptr(VcPolicySet) set = vc_policy_set_new();
	g_autoptr(VcPolicy) policy = NULL;
	g_autoptr(GError) policy_error = NULL;
	g_autoptr(JsonObject) params = NULL;
	g_autoptr(JsonNode) result = NULL;
	g_autofree char *reduced = NULL;
	gboolean is_migrate, allow = FALSE, policy_loaded, signature_matters = FALSE;
	gboolean announce = FALSE, unrestricted = FALSE;
	const char *reason = NULL;

	if (argc == 2 && strcmp(argv[1], "--self-test") == 0)
		return vc_hook_self_test(config_path);
	if (argc < 3) {
		g_printerr("usage: %s VM OPERATION SUB-OPERATION [EXTRA] (run by libvirt, "
			   "with the domain XML on stdin)\n",
			   argv[0]);
		return 1;
	}
	vm = argv[1];
	op = argv[2];
	subop = argc > 3 ? argv[3] : "-";

	/* Only two checks. Everything else (start, started, stopped, release,
	 * restore, reconnect, attach, and the end sub-operations) passes
	 * silently without reading stdin: libvirt copes with a hook that does
	 * not read its input. */
	if (strcmp(op, "migrate") == 0 && strcmp(subop, "begin") == 0)
		is_migrate = TRUE;
	else if (strcmp(op, "prepare") == 0 && strcmp(subop, "begin") == 0)
		is_migrate = FALSE;
	else
		return 0;
	what = is_migrate ? "migrate" : "start";

	config = vc_config_load(config_path != NULL ? config_path : VC_SYSCONFDIR "/virtcert.conf",
				FALSE, &error);
	if (config == NULL) {
		g_autofree char *r =
		    g_strdup_printf("cannot read the configuration: %s", error->message);
		return is_migrate ? vc_hook_refuse(what, vm, r) : 0;
	}
	/* libvirt shows the hook nothing of the migration's parameters: TLS
	 * is made sure of by this host's libvirt settings, every VM alike */
	if (is_migrate && config->require_tls) {
		g_autofree char *tls_why = NULL;
		if (!vc_qemu_conf_check_tls(config->qemu_conf, &tls_why)) {
			g_autofree char *r = g_strdup_printf(
			    "this host accepts migrations only over TLS ([placement] "
			    "require-tls=yes), but %s",
			    tls_why);
			return vc_hook_refuse(what, vm, r);
		}
	}

	xml = vc_hook_read_stdin(&len, &error);
	if (xml == NULL)
		/* libvirt's domain XML always fits: we cannot tell whether the
		 * VM asked for a check, so it is not let through */
		return vc_hook_refuse(what, vm, error->message);
	policy_loaded = vc_policy_set_load_dir(set, config->policy_dir, &policy_error);
	if (!policy_loaded)
		g_clear_error(&policy_error); /* unreadable: let the daemon judge */
	info = vc_domain_info_parse(xml, (gssize)len, &error);
	if (info == NULL) {
		g_autofree char *r = NULL;
		/* Outside the virtcert element the XML is read as libvirt writes
		 * it, so this is broken virtcert metadata or not libvirt's XML.
		 * A VM that may have asked for a check is never let through
		 * because its XML could not be read; one that cannot have asked
		 * (no virtcert element, no policy.d group that could restrict it)
		 * does not depend on us. */
		if (!vc_hook_may_be_checked(config, xml, len, set, policy_loaded, is_migrate))
			return 0;
		r = g_strdup_printf("cannot read the domain XML on stdin (%s), and the VM may "
				    "have asked for a placement check",
				    error->message);
		return vc_hook_refuse(what, vm, r);
	}

	/* A VM without any virtcert policy, or whose policy does not restrict
	 * placement, may run anywhere: no question to the daemon, no dependency
	 * on it running; except that a migration of a VM another host issued
	 * for is announced to that host by the daemon (the issuer accepts the
	 * handover claim only from the host that announced it), so the daemon
	 * hears of it, and a daemon that does not answer refuses nothing then.
	 * The daemon decides everything else, from the same policy.d; a policy
	 * we cannot resolve goes to the daemon too, which refuses it with the
	 * reason. */
	announce = is_migrate && info->issuer_peer != NULL && info->issued_serial != NULL;
	if (policy_loaded) {
		policy = vc_placement_resolve_policy(info, set, config->issue_all,
						     config->default_lifetime_s, &policy_error);
		signature_matters = vc_hook_signature_matters(config, info, policy);
		unrestricted = policy_error == NULL && !vc_placement_is_restricted(policy) &&
			       !signature_matters;
		if (unrestricted && !announce)
			return 0;
	}
	/* "prepare begin" runs for every start; only a VM whose policy says
	 * check-on-start is checked there, or every VM a policy selects when
	 * the owner's signature counts (check-on-start itself is one of the
	 * rules it covers) */
	if (!is_migrate && (policy == NULL || !policy->check_on_start) && !signature_matters)
		return 0;

	/* only what the decision reads: a domain XML of any size fits the
	 * control socket's request cap */
	reduced = vc_domain_xml_reduce(xml, (gssize)len, &error);
	if (reduced == NULL) {
		g_autofree char *r =
		    g_strdup_printf("cannot read the domain XML on stdin: %s", error->message);
		return vc_hook_refuse(what, vm, r);
	}
	params = json_object_new();
	json_object_set_string_member(params, "xml", reduced);
	json_object_set_string_member(params, "operation", what);
	result = vc_ipc_client_call(config->control_socket, "placement-check", params,
				    (guint)config->hook_timeout_ms, &error);
	if (result == NULL && unrestricted) {
		g_printerr(
		    "virtcert: could not announce the migration of VM %s to its issuer (%s); "
		    "its certificate there will not be handed over\n",
		    vm, error->message);
		return 0;
	}
	if (result == NULL) {
		g_autofree char *r = NULL;
		if (g_error_matches(error, VC_ERROR, VC_ERROR_UNAVAILABLE)) {
			if (config->hook_fail_open) {
				g_printerr("virtcert: the virtcert daemon did not answer (%s); "
					   "allowing VM %s to %s because [hook] fail-open is set\n",
					   error->message, vm, what);
				return 0;
			}
			r = g_strdup_printf("the virtcert daemon did not answer (%s); refusing "
					    "rather than guessing ([hook] fail-open=true changes "
					    "this)",
					    error->message);
		} else {
			r = g_strdup_printf("the virtcert daemon refused the request: %s",
					    error->message);
		}
		return vc_hook_refuse(what, vm, r);
	}
	if (!vc_hook_parse_answer(result, &allow, &reason))
		return vc_hook_refuse(what, vm, "the virtcert daemon gave a malformed answer");
	if (!allow)
		return vc_hook_refuse(what, vm, reason);
	return 0;
}
