/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A guest agent channel over a unix socket: the qemu-ga wire protocol spoken
 * directly (docs/interop/qemu-ga-ref in QEMU: one JSON object per line in
 * each direction, guest-sync-delimited to resynchronize). Used by tests and
 * benchmarks against a qemu-ga started with `-m unix-listen`. */
#include "vc-guest-channel.h"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <poll.h>
#include <sys/socket.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "vc-error.h"
#include "vc-json-text.h"

#define VC_SOCKET_BUF_SIZE 16384

typedef struct {
	VcGuestChannel parent;
	char *path;
	int fd;	   /* -1 when not connected */
	char *buf; /* bytes received and not consumed yet: buf[pos..len) */
	gsize pos, len;
	GMutex lock; /* one command at a time, whoever calls */
} VcGuestChannelSocket;

static void
vc_guest_channel_socket_disconnect(VcGuestChannelSocket *self)
{
	if (self->fd >= 0)
		close(self->fd);
	self->fd = -1;
	self->pos = self->len = 0;
}

static gboolean
vc_guest_channel_socket_connect(VcGuestChannelSocket *self, GError **error)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(self->path) >= sizeof(addr.sun_path)) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "guest agent socket path too long: %s",
			    self->path);
		return FALSE;
	}
	strcpy(addr.sun_path, self->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "socket: %s", g_strerror(errno));
		return FALSE;
	}
	/* a unix socket connect completes or fails at once */
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int saved = errno;
		close(fd);
		g_set_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE,
			    "cannot connect to the guest agent at %s: %s", self->path,
			    g_strerror(saved));
		return FALSE;
	}
	self->fd = fd;
	self->pos = self->len = 0;
	return TRUE;
}

/* Waits until fd is ready for events or the monotonic deadline passes. */
static gboolean
vc_guest_channel_socket_wait(VcGuestChannelSocket *self, short events, gint64 deadline,
			     GError **error)
{
	for (;;) {
		struct pollfd pfd = {.fd = self->fd, .events = events};
		gint64 now = g_get_monotonic_time();
		int ms, r;

		if (now >= deadline) {
			g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
				    "guest agent did not answer in time");
			return FALSE;
		}
		ms = (int)MIN((deadline - now + 999) / 1000, G_MAXINT);
		r = poll(&pfd, 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_IO, "poll: %s", g_strerror(errno));
			return FALSE;
		}
		if (r > 0)
			return TRUE;
	}
}

static gboolean
vc_guest_channel_socket_write_all(VcGuestChannelSocket *self, const char *data, gsize len,
				  gint64 deadline, GError **error)
{
	while (len > 0) {
		ssize_t n = send(self->fd, data, len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (!vc_guest_channel_socket_wait(self, POLLOUT, deadline, error))
				return FALSE;
			continue;
		}
		if (n < 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
				    "cannot send to the guest agent: %s", g_strerror(errno));
			return FALSE;
		}
		data += n;
		len -= (gsize)n;
	}
	return TRUE;
}

/* The next byte from the agent (0..255), or -1 and error. */
static int
vc_guest_channel_socket_getc(VcGuestChannelSocket *self, gint64 deadline, GError **error)
{
	while (self->pos == self->len) {
		ssize_t n = recv(self->fd, self->buf, VC_SOCKET_BUF_SIZE, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (!vc_guest_channel_socket_wait(self, POLLIN, deadline, error))
				return -1;
			continue;
		}
		if (n < 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
				    "cannot read from the guest agent: %s", g_strerror(errno));
			return -1;
		}
		if (n == 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
				    "the guest agent closed the connection");
			return -1;
		}
		self->pos = 0;
		self->len = (gsize)n;
	}
	return (unsigned char)self->buf[self->pos++];
}

/* One line (without its newline; blank lines skipped) of at most max bytes. */
static char *
vc_guest_channel_socket_read_line(VcGuestChannelSocket *self, gint64 deadline, gsize max,
				  GError **error)
{
	g_autoptr(GString) line = g_string_new(NULL);

	for (;;) {
		int c = vc_guest_channel_socket_getc(self, deadline, error);
		if (c < 0)
			return NULL;
		if (c == '\n') {
			if (line->len == 0)
				continue;
			return g_string_free(g_steal_pointer(&line), FALSE);
		}
		if (c == '\r' && line->len == 0)
			continue;
		if (line->len >= max) {
			g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
				    "guest agent reply larger than %" G_GSIZE_FORMAT
				    " bytes, refused",
				    max);
			return NULL;
		}
		g_string_append_c(line, (char)c);
	}
}

/* The integer "return" of a reply line, if it is one. */
static gboolean
vc_guest_channel_socket_reply_return_int(const char *line, gint64 *ret_value)
{
	g_autoptr(JsonParser) parser = json_parser_new_immutable();
	JsonNode *root, *ret;
	JsonObject *obj;

	if (!vc_json_text_check(line, strlen(line), VC_JSON_MAX_DEPTH, NULL) ||
	    !json_parser_load_from_data(parser, line, -1, NULL))
		return FALSE;
	root = json_parser_get_root(parser);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root))
		return FALSE;
	obj = json_node_get_object(root);
	ret = json_object_get_member(obj, "return");
	if (ret == NULL || !JSON_NODE_HOLDS_VALUE(ret) ||
	    json_node_get_value_type(ret) != G_TYPE_INT64)
		return FALSE;
	*ret_value = json_node_get_int(ret);
	return TRUE;
}

/* guest-sync-delimited (QEMU's qga/qapi-schema.json): send 0xFF so the agent
 * drops any partial input, then the sync; the agent answers with 0xFF followed
 * by {"return": id}. Everything before the 0xFF, and replies with another id
 * (late answers to earlier commands), is discarded, within max bytes. */
static gboolean
vc_guest_channel_socket_sync(VcGuestChannelSocket *self, gint64 deadline, gsize max, GError **error)
{
	gint64 id = g_random_int_range(1, G_MAXINT32);
	g_autofree char *cmd = g_strdup_printf(
	    "\xff{\"execute\": \"guest-sync-delimited\", \"arguments\": {\"id\": %" G_GINT64_FORMAT
	    "}}\n",
	    id);
	gsize discarded = 0;
	guint other_ids = 0;

	self->pos = self->len = 0;
	if (!vc_guest_channel_socket_write_all(self, cmd, strlen(cmd), deadline, error))
		return FALSE;
	for (;;) {
		int c = vc_guest_channel_socket_getc(self, deadline, error);
		if (c < 0)
			return FALSE;
		if (c == 0xff)
			break;
		if (++discarded > max) {
			g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
				    "guest agent sent more than %" G_GSIZE_FORMAT
				    " bytes without answering guest-sync-delimited",
				    max);
			return FALSE;
		}
	}
	for (;;) {
		gint64 got;
		g_autofree char *line = vc_guest_channel_socket_read_line(
		    self, deadline, max - MIN(discarded, max), error);
		if (line == NULL) {
			/* a guest answering with earlier ids only: say so */
			if (other_ids > 0)
				g_prefix_error(error,
					       "guest-sync-delimited answered %u time(s) with "
					       "another id, never with its own: ",
					       other_ids);
			return FALSE;
		}
		discarded += strlen(line) + 1;
		if (vc_guest_channel_socket_reply_return_int(line, &got)) {
			if (got == id)
				return TRUE;
			other_ids++;
		}
		if (discarded > max) {
			g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
				    "guest agent did not answer guest-sync-delimited");
			return FALSE;
		}
	}
}

static char *
vc_guest_channel_socket_exec(VcGuestChannel *channel, const char *json_command, int timeout_s,
			     gsize max_reply, GError **error)
{
	VcGuestChannelSocket *self = (VcGuestChannelSocket *)channel;
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&self->lock);
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
	g_autofree char *line = NULL;
	g_autofree char *cmd = NULL;

	if (strchr(json_command, '\n') != NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
			    "a guest agent command is one line of JSON");
		return NULL;
	}
	if (self->fd < 0 && !vc_guest_channel_socket_connect(self, error))
		return NULL;
	cmd = g_strconcat(json_command, "\n", NULL);
	if (!vc_guest_channel_socket_sync(self, deadline, max_reply, error) ||
	    !vc_guest_channel_socket_write_all(self, cmd, strlen(cmd), deadline, error) ||
	    (line = vc_guest_channel_socket_read_line(self, deadline, max_reply, error)) == NULL) {
		/* whatever the agent still sends belongs to this failed command:
		 * start the next one on a fresh connection */
		vc_guest_channel_socket_disconnect(self);
		return NULL;
	}
	return g_steal_pointer(&line);
}

static void
vc_guest_channel_socket_finalize(VcGuestChannel *channel)
{
	VcGuestChannelSocket *self = (VcGuestChannelSocket *)channel;

	vc_guest_channel_socket_disconnect(self);
	g_free(self->buf);
	g_free(self->path);
	g_mutex_clear(&self->lock);
}

static const VcGuestChannelClass socket_class = {
    .exec = vc_guest_channel_socket_exec,
    .finalize = vc_guest_channel_socket_finalize,
};

VcGuestChannel *
vc_guest_channel_new_socket(const char *path, GError **error)
{
	g_autoptr(VcGuestChannel) channel = NULL;
	VcGuestChannelSocket *self;

	g_return_val_if_fail(path != NULL, NULL);
	channel = vc_guest_channel_alloc(&socket_class, sizeof(VcGuestChannelSocket));
	self = (VcGuestChannelSocket *)channel;
	self->path = g_strdup(path);
	self->fd = -1;
	self->buf = g_malloc(VC_SOCKET_BUF_SIZE);
	g_mutex_init(&self->lock);
	if (!vc_guest_channel_socket_connect(self, error))
		return NULL;
	return g_steal_pointer(&channel);
}
