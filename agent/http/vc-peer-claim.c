/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A handover claim: parsed and checked from the claimant's JSON, tied to
 * the paused request until the engine answers it. */
#include <string.h>

#include <json-glib/json-glib.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "vc-ca.h"
#include "vc-error.h"
#include "vc-http-private.h"
#include "vc-json-text.h"
#include "vc-peer-claim.h"
#include "vc-text.h"

/* a certificate serial is at most 20 octets (RFC 5280 4.1.2.2) */
#define VC_PEER_CLAIM_SERIAL_HEX_MAX 40
#define VC_PEER_CLAIM_VM_NAME_MAX 1024

struct _VcPeerClaim {
	SoupServerMessage *msg;
	gulong disconnected_id;
	gulong finished_id;
	gboolean gone;
	char *vm_uuid;
	char *vm_name;
	char *serial;
	char *peer_fqdn;
	char *peer_fingerprint;
	char *peer_serial;
	char *remote_address;
	VcHostIdentity *identity;
};

/* A string member of O: required or not, checked for type. */
static gboolean
vc_peer_claim_json_get_string(JsonObject *o, const char *name, gboolean required, const char **ret,
			      GError **error)
{
	JsonNode *node = json_object_get_member(o, name);

	if (node == NULL) {
		if (required) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "member \"%s\" (a string) is required", name);
			return FALSE;
		}
		*ret = NULL;
		return TRUE;
	}
	if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "member \"%s\" must be a string", name);
		return FALSE;
	}
	*ret = json_node_get_string(node);
	return TRUE;
}

VcPeerClaim *
vc_peer_claim_new_from_data(const char *data, gsize len, VcHost *peer, VcHostIdentity *identity,
			    const char *remote_address, GError **error)
{
	g_autoptr(VcHostIdentity) id = identity;
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) local = NULL;
	g_autoptr(VcPeerClaim) claim = NULL;
	const char *uuid = NULL;
	const char *name = NULL;
	const char *serial = NULL;
	const char *fqdn = NULL;
	JsonNode *root;
	JsonObject *o;
	X509 *cert = vc_host_get_cert(peer);

	if (len > VC_PEER_CLAIM_MAX_SIZE) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "a claim is at most %d octets",
			    VC_PEER_CLAIM_MAX_SIZE);
		return NULL;
	}
	if (!vc_json_text_check(data != NULL ? data : "", len, VC_JSON_MAX_DEPTH, &local) ||
	    !json_parser_load_from_data(parser, data != NULL ? data : "", (gssize)len, &local)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "the claim is not JSON: %s",
			    local->message);
		return NULL;
	}
	root = json_parser_get_root(parser);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "the claim must be a JSON object");
		return NULL;
	}
	o = json_node_get_object(root);
	/* members this version does not know are ignored: a newer peer may
	 * say more */
	if (!vc_peer_claim_json_get_string(o, "vm_uuid", TRUE, &uuid, error) ||
	    !vc_peer_claim_json_get_string(o, "serial", TRUE, &serial, error) ||
	    !vc_peer_claim_json_get_string(o, "vm_name", FALSE, &name, error) ||
	    !vc_peer_claim_json_get_string(o, "fqdn", FALSE, &fqdn, error))
		return NULL;
	if (!g_uuid_string_is_valid(uuid)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "vm_uuid \"%s\" is not a UUID",
			    uuid);
		return NULL;
	}
	if (!vc_http_is_hex(serial, 1, VC_PEER_CLAIM_SERIAL_HEX_MAX)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "serial must be 1 to %d hexadecimal digits",
			    VC_PEER_CLAIM_SERIAL_HEX_MAX);
		return NULL;
	}
	if (name != NULL &&
	    (strlen(name) > VC_PEER_CLAIM_VM_NAME_MAX || vc_text_has_control_chars(name))) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "vm_name must be at most %d characters without control characters",
			    VC_PEER_CLAIM_VM_NAME_MAX);
		return NULL;
	}
	/* the name that counts is the certificate's; one that disagrees is a
	 * confused (or lying) peer, not a claim to act on */
	if (fqdn != NULL &&
	    X509_check_host(cert, fqdn, strlen(fqdn),
			    X509_CHECK_FLAG_NO_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
			    NULL) != 1) {
		ERR_clear_error();
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "fqdn \"%s\" is not a name of the client's host certificate (\"%s\")",
			    fqdn, vc_host_get_fqdn(peer));
		return NULL;
	}
	claim = g_new0(VcPeerClaim, 1);
	claim->vm_uuid = g_ascii_strdown(uuid, -1);
	claim->vm_name = g_strdup(name != NULL ? name : "");
	claim->serial = g_ascii_strdown(serial, -1);
	claim->peer_fqdn = g_strdup(vc_host_get_fqdn(peer));
	claim->peer_fingerprint = vc_cert_get_fingerprint_sha256(cert);
	claim->peer_serial = vc_cert_get_serial_hex(cert);
	claim->remote_address = g_strdup(remote_address != NULL ? remote_address : "");
	claim->identity = g_steal_pointer(&id);
	return g_steal_pointer(&claim);
}

static void
vc_peer_claim_gone(VcPeerClaim *claim)
{
	claim->gone = TRUE;
}

void
vc_peer_claim_attach(VcPeerClaim *claim, SoupServerMessage *msg)
{
	g_return_if_fail(claim != NULL && claim->msg == NULL);
	claim->msg = g_object_ref(msg);
	claim->disconnected_id =
	    g_signal_connect_swapped(msg, "disconnected", G_CALLBACK(vc_peer_claim_gone), claim);
	claim->finished_id =
	    g_signal_connect_swapped(msg, "finished", G_CALLBACK(vc_peer_claim_gone), claim);
	soup_server_message_pause(msg);
}

void
vc_peer_claim_free(VcPeerClaim *claim)
{
	if (claim == NULL)
		return;
	if (claim->msg != NULL) {
		g_signal_handler_disconnect(claim->msg, claim->disconnected_id);
		g_signal_handler_disconnect(claim->msg, claim->finished_id);
		g_object_unref(claim->msg);
	}
	g_free(claim->vm_uuid);
	g_free(claim->vm_name);
	g_free(claim->serial);
	g_free(claim->peer_fqdn);
	g_free(claim->peer_fingerprint);
	g_free(claim->peer_serial);
	g_free(claim->remote_address);
	vc_host_identity_free(claim->identity);
	g_free(claim);
}

const char *
vc_peer_claim_get_vm_uuid(VcPeerClaim *claim)
{
	return claim->vm_uuid;
}

const char *
vc_peer_claim_get_vm_name(VcPeerClaim *claim)
{
	return claim->vm_name;
}

const char *
vc_peer_claim_get_serial(VcPeerClaim *claim)
{
	return claim->serial;
}

const char *
vc_peer_claim_get_peer_fqdn(VcPeerClaim *claim)
{
	return claim->peer_fqdn;
}

const VcHostIdentity *
vc_peer_claim_get_peer_identity(VcPeerClaim *claim)
{
	return claim->identity;
}

const char *
vc_peer_claim_get_peer_fingerprint(VcPeerClaim *claim)
{
	return claim->peer_fingerprint;
}

const char *
vc_peer_claim_get_peer_serial(VcPeerClaim *claim)
{
	return claim->peer_serial;
}

const char *
vc_peer_claim_get_remote_address(VcPeerClaim *claim)
{
	return claim->remote_address;
}

static void
vc_peer_claim_finish(VcPeerClaim *claim)
{
	if (!claim->gone)
		soup_server_message_unpause(claim->msg);
	vc_peer_claim_free(claim);
}

void
vc_peer_claim_reply(VcPeerClaim *claim, gboolean accepted, const char *reason)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonNode) root = NULL;
	g_autofree char *body = NULL;

	g_return_if_fail(claim != NULL);
	if (!claim->gone) {
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "accepted");
		json_builder_add_boolean_value(b, accepted);
		json_builder_set_member_name(b, "reason");
		json_builder_add_string_value(b, reason != NULL ? reason : "");
		json_builder_end_object(b);
		root = json_builder_get_root(b);
		body = json_to_string(root, FALSE);
		vc_http_respond_data(claim->msg, "application/json", body, strlen(body));
	}
	vc_peer_claim_finish(claim);
}

void
vc_peer_claim_reply_refused(VcPeerClaim *claim, const char *reason)
{
	g_return_if_fail(claim != NULL);
	if (!claim->gone)
		vc_http_respond_text(claim->msg, SOUP_STATUS_FORBIDDEN,
				     reason != NULL ? reason : "refused");
	vc_peer_claim_finish(claim);
}

void
vc_peer_claim_reply_unavailable(VcPeerClaim *claim, const char *reason)
{
	g_return_if_fail(claim != NULL);
	if (!claim->gone) {
		/* RFC 9110 10.2.3: when to come back; the claimant has its own
		 * schedule, this is a hint */
		soup_message_headers_replace(soup_server_message_get_response_headers(claim->msg),
					     "Retry-After", "5");
		vc_http_respond_text(claim->msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
				     reason != NULL ? reason : "try again later");
	}
	vc_peer_claim_finish(claim);
}
