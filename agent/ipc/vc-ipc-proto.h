/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Framing of the control socket, shared by the server (virtcertd) and the
 * client (virtcert, virtcert-hook).
 *
 * A Unix stream socket carries one JSON object per line (UTF-8, '\n'
 * terminated, no raw newline inside since JSON escapes it):
 *
 *   request  {"id": <int>, "method": "<name>", "params": {...}}   params optional
 *   reply    {"id": <same>, "ok": true, "result": <any JSON>}
 *            {"id": <same|null>, "ok": false,
 *             "error": {"code": "<vc_error_code_to_string()>", "message": "..."}}
 *   event    {"event": {...}}             only on a connection that called "watch"
 *
 * Requests on one connection are answered in order. A reply whose id is null
 * (or absent) concerns the connection itself (peer refused, unreadable line).
 */

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Longest request line the server accepts, without its '\n'. */
#define VC_IPC_MAX_REQUEST_LINE (64 * 1024)
/* Longest reply or event line a client accepts ("list" of many VMs is big). */
#define VC_IPC_MAX_REPLY_LINE (16 * 1024 * 1024)
/* Deepest nesting of arrays/objects accepted in any line: the JSON parser
 * recurses, hostile input must not be able to exhaust the stack. */
#define VC_IPC_MAX_DEPTH 64

/* The method that turns a connection into an event stream. */
#define VC_IPC_METHOD_WATCH "watch"

/* Parses one line (without its '\n') into a JSON object node. Rejects invalid
 * UTF-8, NUL bytes, nesting deeper than VC_IPC_MAX_DEPTH, invalid JSON and
 * anything but an object, with VC_ERROR_INVALID_DATA. */
JsonNode *vc_ipc_proto_parse_line(const char *line, gsize len, GError **error);

/* Serializes @node compactly and appends '\n'. @ret_len (nullable) receives
 * the length including the '\n'. */
char *vc_ipc_proto_to_line(JsonNode *node, gsize *ret_len);

/* Builders for the four kinds of lines; @params, @result may be NULL
 * (absent params, JSON null result). @id NULL writes "id": null. */
char *vc_ipc_proto_build_request(gint64 id, const char *method, JsonObject *params, gsize *ret_len);
char *vc_ipc_proto_build_reply(gint64 id, JsonNode *result, gsize *ret_len);
char *vc_ipc_proto_build_error(const gint64 *id, const GError *error, gsize *ret_len);
char *vc_ipc_proto_build_event(JsonNode *event, gsize *ret_len);

/* Validates the members of a request object. On success writes the id, the
 * method (borrowed from @request) and the params (borrowed; an empty object
 * owned by @request when absent). On failure *ret_has_id tells whether the id
 * could still be read (so the error reply can carry it); the error is
 * VC_ERROR_INVALID_DATA naming the wrong member. */
gboolean vc_ipc_proto_parse_request(JsonObject *request, gint64 *ret_id, gboolean *ret_has_id,
				    const char **ret_method, JsonObject **ret_params,
				    GError **error);

/* Interprets a reply object to the request @expected_id: returns a copy of
 * "result" (a JSON null node when absent), or sets the error carried by the
 * reply, its code mapped back with vc_error_code_from_string(). A reply with a
 * different, non-null id is VC_ERROR_INVALID_DATA. */
JsonNode *vc_ipc_proto_parse_reply(JsonObject *reply, gint64 expected_id, GError **error);

G_END_DECLS
