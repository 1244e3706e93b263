/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Synchronous client of the control socket, for virtcert (CLI) and
 * virtcert-hook. Depends on GLib/GIO, json-glib and policy/vc-error only:
 * the hook must never link libvirt. No main loop is needed or iterated.
 */

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "vc-ipc-proto.h"

G_BEGIN_DECLS

/* Sends one request and waits for its reply, all within @timeout_ms (connect,
 * send and receive together; 0 means wait forever). Returns the "result"
 * (a JSON null node when the daemon returned none; free with json_node_unref)
 * or NULL with @error set:
 *  - the daemon's error, its code mapped back with vc_error_code_from_string();
 *  - VC_ERROR_UNAVAILABLE naming @socket_path when nothing listens there or it
 *    may not be opened, or "no answer within N ms" on timeout;
 *  - VC_ERROR_INVALID_DATA when the reply is not a valid reply line.
 * @params may be NULL (no params). */
JsonNode *vc_ipc_client_call(const char *socket_path, const char *method, JsonObject *params,
			     guint timeout_ms, GError **error);

/* Called for each event of a watch stream with the inner "event" value.
 * Return FALSE to stop watching. */
typedef gboolean (*VcIpcWatchFunc)(JsonNode *event, gpointer user_data);

/* Sends a "watch" request with @params (nullable) and calls @func for every
 * event line until @func returns FALSE or @cancellable is cancelled (both
 * return TRUE), or the daemon ends the stream (FALSE, VC_ERROR_UNAVAILABLE:
 * it stopped, or dropped us for reading too slowly). Connecting and the
 * daemon's acceptance of the watch must take less than 5 s. */
gboolean vc_ipc_client_watch(const char *socket_path, JsonObject *params, VcIpcWatchFunc func,
			     gpointer user_data, GCancellable *cancellable, GError **error);

G_END_DECLS
