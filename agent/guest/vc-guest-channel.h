/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <libvirt/libvirt.h>

G_BEGIN_DECLS

/* A channel to one guest's QEMU guest agent: it sends one command and returns
 * the agent's raw reply. Two implementations: libvirt (production,
 * virDomainQemuAgentCommand) and a direct unix socket to a qemu-ga started
 * with `-m unix-listen` (tests, benchmarks).
 *
 * Every reply is hostile input; the channel caps its size and the time spent
 * waiting for it, and does nothing else: the caller (vc-guest.c) parses it
 * with strict type checks.
 *
 * A channel is used by one thread at a time (the engine runs one delivery per
 * VM at a time on its thread pool); channels of different VMs are
 * independent, there is no global state. */

typedef struct _VcGuestChannel VcGuestChannel;

/* Default cap on one reply (bytes, the JSON text). */
#define VC_GUEST_CHANNEL_MAX_REPLY_DEFAULT (64 * 1024)

/* Sends json_command (one JSON object, no trailing newline needed) and
 * returns the agent's reply, one JSON text, e.g. {"return": {}} or
 * {"error": {"class": "...", "desc": "..."}}. Waits at most timeout_s seconds
 * (>= 1). Errors: VC_ERROR_GUEST (no reply in time, reply larger than the
 * cap, agent gone or out of sync), VC_ERROR_UNAVAILABLE (the domain does not
 * run or has no agent connected), VC_ERROR_LIBVIRT (other libvirt failure). */
char *vc_guest_channel_exec(VcGuestChannel *channel, const char *json_command, int timeout_s,
			    GError **error);

/* The cap on one reply, VC_GUEST_CHANNEL_MAX_REPLY_DEFAULT unless changed;
 * a larger reply is refused with VC_ERROR_GUEST, never buffered whole. */
void vc_guest_channel_set_max_reply(VcGuestChannel *channel, gsize max_reply);
gsize vc_guest_channel_get_max_reply(VcGuestChannel *channel);

void vc_guest_channel_free(VcGuestChannel *channel);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcGuestChannel, vc_guest_channel_free)

/* The production channel: the agent of the domain with this UUID on conn
 * (a new reference to conn is taken). The domain is looked up here
 * (VC_ERROR_NOT_FOUND when there is none). libvirt itself sends guest-sync
 * before every command. An agent error reply that libvirt turns into a libvirt
 * error ("unable to execute QEMU agent command 'X': DESC") is handed back as
 * the reply {"error": {"class": "GenericError", "desc": DESC}}, so callers
 * see the agent's own words on both channels. */
VcGuestChannel *vc_guest_channel_new_libvirt(virConnectPtr conn, const char *uuid, GError **error);

/* A channel over a unix socket where a qemu-ga listens (`qemu-ga -m
 * unix-listen -p PATH`). Before every command it resynchronizes with
 * guest-sync-delimited (a 0xFF byte, then the sync with a random id; bytes up
 * to the agent's 0xFF and replies with another id are discarded), as libvirt
 * does, so a stray or late reply is never taken for the answer. Connects
 * here: VC_ERROR_UNAVAILABLE when nobody listens. */
VcGuestChannel *vc_guest_channel_new_socket(const char *path, GError **error);

/* ---- for implementations ---------------------------------------------- */

typedef struct {
	/* returns the reply of at most max_reply bytes, or NULL and error */
	char *(*exec)(VcGuestChannel *channel, const char *json_command, int timeout_s,
		      gsize max_reply, GError **error);
	void (*finalize)(VcGuestChannel *channel);
} VcGuestChannelClass;

struct _VcGuestChannel {
	const VcGuestChannelClass *klass;
	gsize max_reply;
};

/* Allocates size bytes (a struct whose first member is VcGuestChannel). */
VcGuestChannel *vc_guest_channel_alloc(const VcGuestChannelClass *klass, gsize size);

G_END_DECLS
