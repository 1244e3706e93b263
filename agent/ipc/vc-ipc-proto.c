/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-ipc-proto.h"

#include <string.h>

#include "vc-error.h"
#include "vc-json-text.h"

JsonNode *
vc_ipc_proto_parse_line(const char *line, gsize len, GError **error)
{
	g_autoptr(JsonParser) parser = NULL;
	g_autoptr(GError) local_error = NULL;
	JsonNode *root;

	/* Nothing but valid UTF-8 (RFC 8259 section 8.1); g_utf8_validate() with
	 * an explicit length also refuses NUL bytes. */
	if (!g_utf8_validate(line, (gssize)len, NULL)) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "line is not valid UTF-8 or contains a NUL byte");
		return NULL;
	}
	/* one object, depth bounded, none of json-glib's extensions (a
	 * quote or comment hid nesting from the depth count; a second value
	 * after the first is leaked): vc-json-text.h */
	if (!vc_json_text_check(line, len, VC_IPC_MAX_DEPTH, error))
		return NULL;
	parser = json_parser_new();
	if (!json_parser_load_from_data(parser, line, (gssize)len, &local_error)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "invalid JSON: %s",
			    local_error->message);
		return NULL;
	}
	root = json_parser_get_root(parser);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "line is not a JSON object");
		return NULL;
	}
	return json_node_ref(root);
}

char *
vc_ipc_proto_to_line(JsonNode *node, gsize *ret_len)
{
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autofree char *text = NULL;
	gsize len = 0;
	char *line;

	/* Compact output: strings escape '\n', so the line holds no raw newline. */
	json_generator_set_pretty(gen, FALSE);
	json_generator_set_root(gen, node);
	text = json_generator_to_data(gen, &len);
	line = g_malloc(len + 2);
	memcpy(line, text, len);
	line[len] = '\n';
	line[len + 1] = '\0';
	if (ret_len != NULL)
		*ret_len = len + 1;
	return line;
}

static char *
vc_ipc_proto_object_to_line(JsonObject *obj, gsize *ret_len)
{
	g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);

	json_node_set_object(node, obj);
	return vc_ipc_proto_to_line(node, ret_len);
}

char *
vc_ipc_proto_build_request(gint64 id, const char *method, JsonObject *params, gsize *ret_len)
{
	g_autoptr(JsonObject) obj = json_object_new();

	json_object_set_int_member(obj, "id", id);
	json_object_set_string_member(obj, "method", method);
	if (params != NULL)
		json_object_set_object_member(obj, "params", json_object_ref(params));
	return vc_ipc_proto_object_to_line(obj, ret_len);
}

char *
vc_ipc_proto_build_reply(gint64 id, JsonNode *result, gsize *ret_len)
{
	g_autoptr(JsonObject) obj = json_object_new();

	json_object_set_int_member(obj, "id", id);
	json_object_set_boolean_member(obj, "ok", TRUE);
	if (result != NULL)
		json_object_set_member(obj, "result", json_node_copy(result));
	else
		json_object_set_null_member(obj, "result");
	return vc_ipc_proto_object_to_line(obj, ret_len);
}

char *
vc_ipc_proto_build_error(const gint64 *id, const GError *error, gsize *ret_len)
{
	g_autoptr(JsonObject) obj = json_object_new();
	JsonObject *err = json_object_new();
	int code = VC_ERROR_FAILED;

	/* Errors of other domains (GIO, GLib) have no stable name of ours. */
	if (error != NULL && error->domain == VC_ERROR)
		code = error->code;
	if (id != NULL)
		json_object_set_int_member(obj, "id", *id);
	else
		json_object_set_null_member(obj, "id");
	json_object_set_boolean_member(obj, "ok", FALSE);
	json_object_set_string_member(err, "code", vc_error_code_to_string(code));
	json_object_set_string_member(err, "message",
				      error != NULL ? error->message : "unknown error");
	json_object_set_object_member(obj, "error", err);
	return vc_ipc_proto_object_to_line(obj, ret_len);
}

char *
vc_ipc_proto_build_event(JsonNode *event, gsize *ret_len)
{
	g_autoptr(JsonObject) obj = json_object_new();

	json_object_set_member(obj, "event", json_node_copy(event));
	return vc_ipc_proto_object_to_line(obj, ret_len);
}

gboolean
vc_ipc_proto_parse_request(JsonObject *request, gint64 *ret_id, gboolean *ret_has_id,
			   const char **ret_method, JsonObject **ret_params, GError **error)
{
	JsonNode *id = json_object_get_member(request, "id");
	JsonNode *method = json_object_get_member(request, "method");
	JsonNode *params = json_object_get_member(request, "params");
	gboolean has_id =
	    id != NULL && JSON_NODE_HOLDS_VALUE(id) && json_node_get_value_type(id) == G_TYPE_INT64;

	*ret_has_id = has_id;
	if (has_id)
		*ret_id = json_node_get_int(id);
	if (!has_id) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    id == NULL ? "request has no \"id\""
					       : "request \"id\" is not an integer");
		return FALSE;
	}
	if (method == NULL || !JSON_NODE_HOLDS_VALUE(method) ||
	    json_node_get_value_type(method) != G_TYPE_STRING) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    method == NULL ? "request has no \"method\""
						   : "request \"method\" is not a string");
		return FALSE;
	}
	if (params != NULL && !JSON_NODE_HOLDS_OBJECT(params)) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "request \"params\" is not an object");
		return FALSE;
	}
	if (params == NULL) {
		/* Handlers always get an object; keep it alive with the request. */
		json_object_set_object_member(request, "params", json_object_new());
		params = json_object_get_member(request, "params");
	}
	*ret_method = json_node_get_string(method);
	*ret_params = json_node_get_object(params);
	return TRUE;
}

JsonNode *
vc_ipc_proto_parse_reply(JsonObject *reply, gint64 expected_id, GError **error)
{
	JsonNode *id = json_object_get_member(reply, "id");
	JsonNode *ok = json_object_get_member(reply, "ok");
	JsonNode *result;

	if (id != NULL && !JSON_NODE_HOLDS_NULL(id)) {
		if (!JSON_NODE_HOLDS_VALUE(id) || json_node_get_value_type(id) != G_TYPE_INT64 ||
		    json_node_get_int(id) != expected_id) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "reply does not answer request %" G_GINT64_FORMAT, expected_id);
			return NULL;
		}
	}
	if (ok == NULL || !JSON_NODE_HOLDS_VALUE(ok) ||
	    json_node_get_value_type(ok) != G_TYPE_BOOLEAN) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "reply has no boolean \"ok\"");
		return NULL;
	}
	if (!json_node_get_boolean(ok)) {
		JsonNode *err = json_object_get_member(reply, "error");
		JsonObject *eobj =
		    err != NULL && JSON_NODE_HOLDS_OBJECT(err) ? json_node_get_object(err) : NULL;
		const char *code = NULL;
		const char *message = NULL;

		if (eobj != NULL) {
			JsonNode *c = json_object_get_member(eobj, "code");
			JsonNode *m = json_object_get_member(eobj, "message");
			if (c != NULL && JSON_NODE_HOLDS_VALUE(c) &&
			    json_node_get_value_type(c) == G_TYPE_STRING)
				code = json_node_get_string(c);
			if (m != NULL && JSON_NODE_HOLDS_VALUE(m) &&
			    json_node_get_value_type(m) == G_TYPE_STRING)
				message = json_node_get_string(m);
		}
		g_set_error_literal(
		    error, VC_ERROR, vc_error_code_from_string(code),
		    message != NULL ? message : "virtcertd reported an error without a message");
		return NULL;
	}
	if (id == NULL || JSON_NODE_HOLDS_NULL(id)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "successful reply without an id for request %" G_GINT64_FORMAT,
			    expected_id);
		return NULL;
	}
	result = json_object_get_member(reply, "result");
	if (result == NULL)
		return json_node_new(JSON_NODE_NULL);
	return json_node_copy(result);
}
