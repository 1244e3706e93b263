/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The production guest agent channel: virDomainQemuAgentCommand (libvirt-qemu).
 * libvirt owns the agent socket, sends guest-sync before each command and
 * serializes commands per domain; we add the reply cap and error mapping. */
#include "vc-guest-channel.h"

#include <json-glib/json-glib.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>

#include "vc-error.h"

typedef struct {
	VcGuestChannel parent;
	virConnectPtr conn;
	virDomainPtr dom;
	char *uuid;
} VcGuestChannelLibvirt;

/* The prefix libvirt's qemuAgentCheckError() puts before the agent's own
 * "desc" when the agent answered with an error object. */
#define LIBVIRT_AGENT_ERROR_PREFIX "unable to execute QEMU agent command '"

static char *
vc_guest_channel_libvirt_agent_error_reply(const char *desc)
{
	g_autoptr(JsonBuilder) b = json_builder_new_immutable();
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autoptr(JsonNode) root = NULL;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "error");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "class");
	json_builder_add_string_value(b, "GenericError");
	json_builder_set_member_name(b, "desc");
	json_builder_add_string_value(b, desc);
	json_builder_end_object(b);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	json_generator_set_root(gen, root);
	return json_generator_to_data(gen, NULL);
}

static char *
vc_guest_channel_libvirt_exec(VcGuestChannel *channel, const char *json_command, int timeout_s,
			      gsize max_reply, GError **error)
{
	VcGuestChannelLibvirt *self = (VcGuestChannelLibvirt *)channel;
	char *reply;
	g_autofree char *copy = NULL;
	virErrorPtr err;
	const char *msg;

	reply = virDomainQemuAgentCommand(self->dom, json_command, timeout_s, 0);
	if (reply != NULL) {
		gsize len = strlen(reply);
		if (len > max_reply) {
			free(reply);
			g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
				    "guest agent reply of %" G_GSIZE_FORMAT
				    " bytes is larger than %" G_GSIZE_FORMAT " bytes, refused",
				    len, max_reply);
			return NULL;
		}
		copy = g_strdup(reply);
		free(reply);
		return g_steal_pointer(&copy);
	}

	err = virGetLastError();
	msg = err != NULL && err->message != NULL ? err->message : "unknown libvirt error";
	if (err != NULL && err->code == VIR_ERR_INTERNAL_ERROR) {
		const char *p = strstr(msg, LIBVIRT_AGENT_ERROR_PREFIX);
		if (p != NULL &&
		    (p = strstr(p + strlen(LIBVIRT_AGENT_ERROR_PREFIX), "': ")) != NULL)
			return vc_guest_channel_libvirt_agent_error_reply(p + 3);
	}
	switch (err != NULL ? err->code : VIR_ERR_INTERNAL_ERROR) {
	case VIR_ERR_AGENT_UNRESPONSIVE:
	case VIR_ERR_OPERATION_INVALID:
	case VIR_ERR_NO_DOMAIN:
		g_set_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE, "guest agent of %s: %s",
			    self->uuid, msg);
		break;
	case VIR_ERR_AGENT_UNSYNCED:
	case VIR_ERR_OPERATION_TIMEOUT:
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST, "guest agent of %s: %s", self->uuid,
			    msg);
		break;
	default:
		g_set_error(error, VC_ERROR, VC_ERROR_LIBVIRT, "guest agent command on %s: %s",
			    self->uuid, msg);
		break;
	}
	virResetLastError();
	return NULL;
}

static void
vc_guest_channel_libvirt_finalize(VcGuestChannel *channel)
{
	VcGuestChannelLibvirt *self = (VcGuestChannelLibvirt *)channel;

	if (self->dom != NULL)
		virDomainFree(self->dom);
	if (self->conn != NULL)
		virConnectClose(self->conn);
	g_free(self->uuid);
}

static const VcGuestChannelClass libvirt_class = {
    .exec = vc_guest_channel_libvirt_exec,
    .finalize = vc_guest_channel_libvirt_finalize,
};

VcGuestChannel *
vc_guest_channel_new_libvirt(virConnectPtr conn, const char *uuid, GError **error)
{
	g_autoptr(VcGuestChannel) channel = NULL;
	VcGuestChannelLibvirt *self;

	g_return_val_if_fail(conn != NULL, NULL);
	g_return_val_if_fail(uuid != NULL, NULL);
	channel = vc_guest_channel_alloc(&libvirt_class, sizeof(VcGuestChannelLibvirt));
	self = (VcGuestChannelLibvirt *)channel;
	self->uuid = g_strdup(uuid);
	if (virConnectRef(conn) < 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_LIBVIRT, "virConnectRef failed");
		return NULL;
	}
	self->conn = conn;
	self->dom = virDomainLookupByUUIDString(conn, uuid);
	if (self->dom == NULL) {
		virErrorPtr err = virGetLastError();
		gboolean missing = err == NULL || err->code == VIR_ERR_NO_DOMAIN ||
				   err->code == VIR_ERR_INVALID_ARG;
		g_set_error(error, VC_ERROR, missing ? VC_ERROR_NOT_FOUND : VC_ERROR_LIBVIRT,
			    "no domain %s: %s", uuid,
			    err != NULL && err->message != NULL ? err->message : "lookup failed");
		virResetLastError();
		return NULL;
	}
	return g_steal_pointer(&channel);
}
