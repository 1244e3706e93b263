/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-guest-channel.h"

#include "vc-error.h"

VcGuestChannel *
vc_guest_channel_alloc(const VcGuestChannelClass *klass, gsize size)
{
	VcGuestChannel *channel;

	g_return_val_if_fail(size >= sizeof(VcGuestChannel), NULL);
	channel = g_malloc0(size);
	channel->klass = klass;
	channel->max_reply = VC_GUEST_CHANNEL_MAX_REPLY_DEFAULT;
	return channel;
}

char *
vc_guest_channel_exec(VcGuestChannel *channel, const char *json_command, int timeout_s,
		      GError **error)
{
	g_return_val_if_fail(channel != NULL, NULL);
	g_return_val_if_fail(json_command != NULL, NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	if (timeout_s < 1)
		timeout_s = 1;
	return channel->klass->exec(channel, json_command, timeout_s, channel->max_reply, error);
}

void
vc_guest_channel_set_max_reply(VcGuestChannel *channel, gsize max_reply)
{
	g_return_if_fail(channel != NULL);
	g_return_if_fail(max_reply >= 64);
	channel->max_reply = max_reply;
}

gsize
vc_guest_channel_get_max_reply(VcGuestChannel *channel)
{
	g_return_val_if_fail(channel != NULL, 0);
	return channel->max_reply;
}

void
vc_guest_channel_free(VcGuestChannel *channel)
{
	if (channel == NULL)
		return;
	if (channel->klass->finalize != NULL)
		channel->klass->finalize(channel);
	g_free(channel);
}
