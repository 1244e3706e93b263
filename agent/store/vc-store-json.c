/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-store-json.h"

#include <string.h>

#include "vc-reason.h"

char *
vc_time_to_string(gint64 unix_seconds)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(unix_seconds);
	if (dt == NULL)
		return g_strdup("invalid");
	return g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
}

static void
vc_json_add_time(JsonBuilder *b, const char *key, gint64 t)
{
	g_autofree char *s = NULL;
	json_builder_set_member_name(b, key);
	if (t <= 0) {
		json_builder_add_null_value(b);
		return;
	}
	s = vc_time_to_string(t);
	json_builder_add_string_value(b, s);
}

JsonNode *
vc_cert_record_to_json(const VcCertRecord *rec)
{
	g_autoptr(JsonBuilder) b = json_builder_new();

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "serial");
	json_builder_add_string_value(b, rec->serial);
	json_builder_set_member_name(b, "ca_id");
	json_builder_add_string_value(b, rec->ca_id);
	json_builder_set_member_name(b, "vm_uuid");
	json_builder_add_string_value(b, rec->vm_uuid);
	json_builder_set_member_name(b, "vm_name");
	json_builder_add_string_value(b, rec->vm_name);
	json_builder_set_member_name(b, "dns_names");
	json_builder_begin_array(b);
	for (guint i = 0; rec->dns_names != NULL && rec->dns_names[i] != NULL; i++)
		json_builder_add_string_value(b, rec->dns_names[i]);
	json_builder_end_array(b);
	json_builder_set_member_name(b, "status");
	{
		g_autofree char *status =
		    g_ascii_strdown(vc_cert_status_to_string(rec->status), -1);
		json_builder_add_string_value(b, status);
	}
	vc_json_add_time(b, "not_before", rec->not_before);
	vc_json_add_time(b, "not_after", rec->not_after);
	vc_json_add_time(b, "created_at", rec->created_at);
	vc_json_add_time(b, "revoked_at", rec->revoked_at);
	json_builder_set_member_name(b, "reason");
	if (rec->reason >= 0 && vc_reason_to_string(rec->reason) != NULL)
		json_builder_add_string_value(b, vc_reason_to_string(rec->reason));
	else
		json_builder_add_null_value(b);
	/* the placement it was issued under (canonical text), null: unknown */
	json_builder_set_member_name(b, "placement");
	if (rec->placement != NULL)
		json_builder_add_string_value(b, rec->placement);
	else
		json_builder_add_null_value(b);
	json_builder_end_object(b);
	return json_builder_get_root(b);
}

JsonNode *
vc_domain_record_to_json(const VcDomainRecord *rec)
{
	g_autoptr(JsonBuilder) b = json_builder_new();

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "uuid");
	json_builder_add_string_value(b, rec->uuid);
	json_builder_set_member_name(b, "generation");
	json_builder_add_int_value(b, rec->generation);
	json_builder_set_member_name(b, "name");
	json_builder_add_string_value(b, rec->name);
	json_builder_set_member_name(b, "state");
	json_builder_add_string_value(b, rec->state);
	json_builder_set_member_name(b, "current_serial");
	json_builder_add_string_value(b, rec->current_serial);
	json_builder_set_member_name(b, "names");
	{
		/* the names only; the profile after ';' is the engine's */
		g_autofree char *names =
		    rec->names_key != NULL ? g_strndup(rec->names_key, strcspn(rec->names_key, ";"))
					   : NULL;
		json_builder_add_string_value(b, names);
	}
	vc_json_add_time(b, "next_action_at", rec->next_action_at);
	json_builder_set_member_name(b, "failures");
	json_builder_add_int_value(b, rec->failures);
	json_builder_set_member_name(b, "last_error");
	json_builder_add_string_value(b, rec->last_error);
	json_builder_set_member_name(b, "renew_pending");
	json_builder_add_boolean_value(b, rec->renew_pending);
	vc_json_add_time(b, "updated_at", rec->updated_at);
	json_builder_end_object(b);
	return json_builder_get_root(b);
}
