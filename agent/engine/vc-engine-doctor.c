/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's half of `virtcert doctor`: what only a libvirt connection
 * can tell (the connection, each running VM's guest agent channel and what
 * its agent allows). The CLI checks the rest offline. */
#include "vc-engine-private.h"

#include "vc-domain-xml.h"
#include "vc-error.h"
#include "vc-guest-channel.h"
#include "vc-guest.h"

/* One agent answers guest-info within this, or the doctor says it does not. */
#define VC_ENGINE_DOCTOR_AGENT_TIMEOUT_S 5

typedef struct {
	char *uuid;
	char *name;
	char *policy; /* its source */
	gboolean channel;
	gboolean connected;
	/* filled on the worker thread */
	gboolean answered;
	gboolean files_ok;
	GPtrArray *problems;
	char *error;
} VcDoctorVm;

typedef struct {
	virConnectPtr conn; /* NULL: not connected */
	char *uri;
	char *libvirt_error;
	GPtrArray *vms; /* of VcDoctorVm */
	VcEngineDoctorFunc done;
	gpointer user_data;
} VcDoctorRun;

static void
vc_doctor_vm_free(VcDoctorVm *v)
{
	g_free(v->uuid);
	g_free(v->name);
	g_free(v->policy);
	g_ptr_array_unref(v->problems);
	g_free(v->error);
	g_free(v);
}

static void
vc_doctor_run_free(VcDoctorRun *run)
{
	if (run->conn != NULL)
		virConnectClose(run->conn);
	g_free(run->uri);
	g_free(run->libvirt_error);
	g_ptr_array_unref(run->vms);
	g_free(run);
}

/* worker thread: ask each agent, one after the other */
static void
vc_engine_doctor_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancel)
{
	VcDoctorRun *run = task_data;

	for (guint i = 0; i < run->vms->len; i++) {
		VcDoctorVm *v = g_ptr_array_index(run->vms, i);
		g_autoptr(VcGuestChannel) ch = NULL;
		g_autoptr(GError) error = NULL;
		if (!v->channel || run->conn == NULL)
			continue;
		ch = vc_guest_channel_new_libvirt(run->conn, v->uuid, &error);
		if (ch != NULL && vc_guest_check_agent(ch, VC_ENGINE_DOCTOR_AGENT_TIMEOUT_S,
						       v->problems, &v->files_ok, &error))
			v->answered = TRUE;
		else
			v->error = g_strdup(error->message);
	}
	g_task_return_boolean(task, TRUE);
}

static JsonNode *
vc_engine_doctor_to_json(VcDoctorRun *run)
{
	g_autoptr(JsonBuilder) b = json_builder_new();

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "libvirt_uri");
	json_builder_add_string_value(b, run->uri);
	json_builder_set_member_name(b, "libvirt_connected");
	json_builder_add_boolean_value(b, run->conn != NULL);
	json_builder_set_member_name(b, "libvirt_error");
	json_builder_add_string_value(b, run->libvirt_error);
	json_builder_set_member_name(b, "vms");
	json_builder_begin_array(b);
	for (guint i = 0; i < run->vms->len; i++) {
		VcDoctorVm *v = g_ptr_array_index(run->vms, i);
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "uuid");
		json_builder_add_string_value(b, v->uuid);
		json_builder_set_member_name(b, "name");
		json_builder_add_string_value(b, v->name);
		json_builder_set_member_name(b, "policy");
		json_builder_add_string_value(b, v->policy);
		json_builder_set_member_name(b, "agent_channel");
		json_builder_add_boolean_value(b, v->channel);
		json_builder_set_member_name(b, "agent_connected");
		json_builder_add_boolean_value(b, v->connected);
		json_builder_set_member_name(b, "agent_answered");
		json_builder_add_boolean_value(b, v->answered);
		json_builder_set_member_name(b, "file_only_possible");
		json_builder_add_boolean_value(b, v->files_ok);
		json_builder_set_member_name(b, "agent_problems");
		json_builder_begin_array(b);
		for (guint j = 0; j < v->problems->len; j++)
			json_builder_add_string_value(b, g_ptr_array_index(v->problems, j));
		json_builder_end_array(b);
		json_builder_set_member_name(b, "agent_error");
		json_builder_add_string_value(b, v->error);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	json_builder_end_object(b);
	return json_builder_get_root(b);
}

static void
vc_engine_doctor_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
	VcDoctorRun *run = g_task_get_task_data(G_TASK(result));
	g_autoptr(JsonNode) node = vc_engine_doctor_to_json(run);

	run->done(node, run->user_data);
}

void
vc_engine_doctor(VcEngine *engine, VcEngineDoctorFunc done, gpointer user_data)
{
	VcDoctorRun *run = g_new0(VcDoctorRun, 1);
	g_autoptr(GTask) task = NULL;
	g_autoptr(GPtrArray) doms = NULL;
	g_autoptr(GError) error = NULL;

	run->vms = g_ptr_array_new_with_free_func((GDestroyNotify)vc_doctor_vm_free);
	run->done = done;
	run->user_data = user_data;
	run->uri = g_strdup(engine->virt != NULL ? vc_virt_get_uri(engine->virt)
						 : engine->config->libvirt_uri);
	if (engine->virt != NULL)
		run->conn = vc_virt_ref_connection(engine->virt, &error);
	if (run->conn != NULL)
		doms = vc_virt_list_domains(engine->virt, FALSE, &error);
	if (error != NULL) {
		run->libvirt_error = g_strdup(error->message);
		g_clear_pointer(&run->conn, virConnectClose);
	} else if (engine->virt == NULL) {
		run->libvirt_error = g_strdup("the daemon has no libvirt connection");
	}
	/* the running VMs a policy selects: policy read on the main loop, the
	 * agents asked on a worker */
	for (guint i = 0; doms != NULL && i < doms->len; i++) {
		VcVirtDomain *d = g_ptr_array_index(doms, i);
		g_autoptr(VcDomainInfo) info = NULL;
		g_autoptr(VcPolicy) policy = NULL;
		g_autofree char *xml = NULL;
		VcDoctorVm *v;
		if (!d->active)
			continue;
		/* the XML of the running ones only (one call each) */
		xml = vc_virt_get_domain_xml(engine->virt, d->uuid, NULL);
		if (xml != NULL)
			info = vc_domain_info_parse(xml, -1, NULL);
		if (info != NULL)
			policy = vc_domain_info_resolve_policy(
			    info, engine->policy, engine->config->issue_all, NULL,
			    engine->config->default_lifetime_s, NULL);
		if (policy == NULL)
			continue;
		v = g_new0(VcDoctorVm, 1);
		v->uuid = g_strdup(d->uuid);
		v->name = g_strdup(d->name);
		v->policy = g_strdup(policy->source);
		v->channel = info->has_guest_agent;
		v->connected = info->guest_agent_connected;
		v->problems = g_ptr_array_new_with_free_func(g_free);
		g_ptr_array_add(run->vms, v);
	}
	task = g_task_new(NULL, NULL, vc_engine_doctor_done, NULL);
	g_task_set_task_data(task, run, (GDestroyNotify)vc_doctor_run_free);
	g_task_run_in_thread(task, vc_engine_doctor_thread);
}
