/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Control socket server of virtcertd (protocol: vc-ipc-proto.h). Runs on the
 * thread-default GMainContext of the thread that calls vc_ipc_server_new();
 * no threads, never blocks on a client.
 *
 * Peers are checked with SO_PEERCRED (vc_ipc_peer_allowed()). Requests of one
 * connection are dispatched one at a time, in order: the next line is read
 * only once the previous request was answered and its reply written, so a
 * client that does not read its replies stalls only itself. Lines longer than
 * VC_IPC_MAX_REQUEST_LINE or not JSON get an error reply and the connection
 * is closed; a request with wrong member types or an unknown method gets an
 * error reply and the connection stays usable.
 *
 * The method "watch" is handled here (its params are accepted and not yet
 * interpreted): its reply is {"watching": true} and the connection then receives {"event": ...}
 * lines for every vc_ipc_server_broadcast() until it goes away. A watcher whose unsent output
 * exceeds the queue limit is dropped (with a warning) instead of blocking the
 * daemon.
 */

#include <sys/types.h>

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vc-ipc-proto.h"

G_BEGIN_DECLS

typedef struct _VcIpcServer VcIpcServer;
typedef struct _VcIpcRequest VcIpcRequest;

/* Handles one request. It must answer exactly once, now or later, with
 * vc_ipc_request_reply() or vc_ipc_request_reply_error(); either one frees
 * @request. If the client went away meanwhile the answer is dropped silently. */
typedef void (*VcIpcHandler)(VcIpcRequest *request, gpointer user_data);

/* Default bound of unsent bytes per connection before a watcher is dropped. */
#define VC_IPC_DEFAULT_MAX_QUEUE (1024 * 1024)

/* Listens on @socket_path: creates its parent directory (0750) if missing,
 * replaces a stale socket file only when nothing listens on it (another live
 * daemon is VC_ERROR_EXISTS; a non-socket file is never removed), sets mode
 * 0660 and, if @allowed_group_name (nullable) names an existing group, makes
 * it the socket's group. */
VcIpcServer *vc_ipc_server_new(const char *socket_path, const char *allowed_group_name,
			       GError **error);

/* Closes every connection (pending requests are dropped when answered),
 * stops listening and removes the socket file it created. */
void vc_ipc_server_free(VcIpcServer *server);

/* Routes requests for @method to @handler. Registering a method again replaces
 * the handler. Methods without a handler get a VC_ERROR_USAGE reply. "watch"
 * cannot be registered. */
void vc_ipc_server_add_method(VcIpcServer *server, const char *method, VcIpcHandler handler,
			      gpointer user_data);

/* Queues {"event": @event} to every watcher (borrowed; copied). Never blocks. */
void vc_ipc_server_broadcast(VcIpcServer *server, JsonNode *event);

/* Bound of unsent bytes per watcher (default VC_IPC_DEFAULT_MAX_QUEUE). */
void vc_ipc_server_set_max_queue(VcIpcServer *server, gsize max_bytes);

/* Caps the open connections at MAX_CONNECTIONS (0: no cap; one beyond it
 * gets a VC_ERROR_UNAVAILABLE error line and is closed at once, with a
 * warning at most every 10 s) and closes a connection that owes a complete
 * request REQUEST_TIMEOUT_MS after its accept or its last answer (0: never;
 * watchers and connections awaiting an answer owe nothing). */
void vc_ipc_server_set_limits(VcIpcServer *server, guint max_connections, guint request_timeout_ms);

/* Number of open connections, and of those that are watchers (metrics). */
guint vc_ipc_server_get_n_connections(VcIpcServer *server);
/* Connections refused at the cap, and closed at the request timeout. */
guint64 vc_ipc_server_get_n_refused(VcIpcServer *server);
guint64 vc_ipc_server_get_n_timed_out(VcIpcServer *server);
guint vc_ipc_server_get_n_watchers(VcIpcServer *server);

const char *vc_ipc_request_get_method(VcIpcRequest *request);
/* Never NULL: an absent "params" is an empty object. Owned by @request. */
JsonObject *vc_ipc_request_get_params(VcIpcRequest *request);
uid_t vc_ipc_request_get_peer_uid(VcIpcRequest *request);

/* Answers with @result (borrowed; NULL means JSON null) and frees @request.
 * Both reply functions may be called from any thread: the answer is written
 * from the server's main context. Everything else in this header must be
 * called from the thread that runs that context. */
void vc_ipc_request_reply(VcIpcRequest *request, JsonNode *result);
/* Answers with @error (VC_ERROR codes keep their name, others are "failed")
 * and frees @request. */
void vc_ipc_request_reply_error(VcIpcRequest *request, const GError *error);

/* The access rule for a peer with @uid and primary @gid: root, the daemon's
 * own euid @self, and members (primary or supplementary, getgrouplist()) of
 * @group (nullable: nobody else). Otherwise FALSE with VC_ERROR_POLICY
 * "peer uid N not allowed". */
gboolean vc_ipc_peer_allowed(uid_t uid, gid_t gid, uid_t self, const char *group, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcIpcServer, vc_ipc_server_free)

G_END_DECLS
