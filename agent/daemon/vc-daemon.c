/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcertd: follows libvirt domain lifecycle events and keeps every VM's
 * certificate in step with its life. */
#include <glib-unix.h>
#include <locale.h>
#include <signal.h>
#include <systemd/sd-daemon.h>

#include "vc-build-config.h"
#include "vc-crl-publisher.h"
#include "vc-daemon-private.h"
#include "vc-daemon-fds.h"
#include "vc-daemon-publish.h"
#include "vc-engine.h"
#include "vc-error.h"
#include "vc-domain-xml.h"
#include "vc-http-server.h"
#include "vc-peer-client.h"
#include "vc-ipc-server.h"
#include "vc-host.h"
#include "vc-ocsp.h"
#include "vc-ocsp-http.h"
#include "vc-placement-sig.h"

static char *arg_config;
static char *arg_state_dir;

static void
vc_daemon_notify_cb(JsonNode *data, gpointer user_data)
{
	VcDaemon *daemon = user_data;
	JsonObject *o = json_node_get_object(data);
	const char *event = json_object_get_string_member_with_default(o, "event", "");

	if (g_strcmp0(event, "libvirt-connected") == 0)
		sd_notifyf(0, "STATUS=connected to %s", daemon->config->libvirt_uri);
	else if (g_strcmp0(event, "libvirt-disconnected") == 0)
		sd_notifyf(0, "STATUS=reconnecting to %s", daemon->config->libvirt_uri);
	else if (g_strcmp0(event, "revoked") == 0 && daemon->crl != NULL)
		vc_crl_publisher_revoked(daemon->crl);
	/* OCSP: the revoked serial's new answer is signed before the next
	 * client asks; a new certificate's answer is signed ahead */
	if (daemon->ocsp != NULL && json_object_has_member(o, "serial")) {
		const char *serial = json_object_get_string_member_with_default(o, "serial", NULL);
		g_autoptr(GError) error = NULL;
		if (serial != NULL && *serial != '\0' && g_strcmp0(event, "revoked") == 0)
			vc_ocsp_responder_forget(daemon->ocsp, serial);
		else if (serial != NULL && *serial != '\0' && g_strcmp0(event, "issued") == 0 &&
			 !vc_ocsp_responder_presign(daemon->ocsp, serial, &error))
			g_warning("OCSP: cannot presign %s: %s", serial, error->message);
	}
	if (daemon->ipc != NULL)
		vc_ipc_server_broadcast(daemon->ipc, data);
}

/* ---- HTTP: CRL, certificate URLs, metrics, peer handover ---------------- */

static VcHttpDocument *
vc_daemon_http_get_crl(const char *ca_id, gpointer user_data, GError **error)
{
	VcDaemon *daemon = user_data;
	GBytes *der = NULL;
	char *etag = NULL;
	gint64 this_update = 0;

	/* the host CA's CRL, for peers, under "host-ca" and its own id */
	if (g_strcmp0(ca_id, vc_ca_get_id(daemon->ca)) != 0)
		return vc_daemon_host_crl_get(daemon->host_crl, ca_id, error);
	/* built when a revocation became durable: a lookup */
	if (!vc_crl_publisher_get(daemon->crl, &der, &etag, &this_update, NULL, error))
		return NULL;
	return vc_http_document_new(der, etag, this_update);
}

static GBytes *
vc_daemon_http_get_ca_cert(const char *ca_id, gpointer user_data, GError **error)
{
	VcDaemon *daemon = user_data;
	return vc_daemon_ca_cert_der(daemon->ca, ca_id, error);
}

static char *
vc_daemon_http_get_cert_chain(const char *vm_uuid, gpointer user_data, GError **error)
{
	VcDaemon *daemon = user_data;
	return vc_engine_get_cert_chain(daemon->engine, vm_uuid, error);
}

/* One metric of both HTTP listeners, labelled by listener. */
static void
vc_daemon_append_listener_metric(GString *out, const char *name, const char *type, const char *help,
				 guint64 http, guint64 peer)
{
	g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	g_string_append_printf(out, "%s{listener=\"http\"} %" G_GUINT64_FORMAT "\n", name, http);
	g_string_append_printf(out, "%s{listener=\"peer\"} %" G_GUINT64_FORMAT "\n", name, peer);
}

/* The listeners' connection counters, after the engine's metrics. */
static void
vc_daemon_append_connection_metrics(VcDaemon *daemon, GString *out)
{
	VcHttpListenerStats st[2] = {{0}};

	for (guint i = 0; i < 2 && daemon->http != NULL; i++)
		vc_http_server_get_stats(daemon->http, i == 1, &st[i]);
	vc_daemon_append_listener_metric(
	    out, "virtcert_http_connections_refused_total", "counter",
	    "HTTP connections closed at once because the listener had its most allowed open.",
	    st[0].refused, st[1].refused);
	vc_daemon_append_listener_metric(
	    out, "virtcert_http_connections_timed_out_total", "counter",
	    "HTTP connections closed at a header, idle or request deadline.", st[0].timed_out,
	    st[1].timed_out);
	vc_daemon_append_listener_metric(out, "virtcert_http_accept_errors_total", "counter",
					 "Failed accepts (each pauses the listener briefly), such "
					 "as running out of descriptors.",
					 st[0].accept_errors, st[1].accept_errors);
	vc_daemon_append_listener_metric(out, "virtcert_http_connections", "gauge",
					 "HTTP connections open now.", st[0].open, st[1].open);
	vc_daemon_append_listener_metric(
	    out, "virtcert_http_max_connections", "gauge",
	    "The most HTTP connections open at once (0: the listener is off).", st[0].max,
	    st[1].max);
	if (daemon->ipc == NULL)
		return;
	g_string_append_printf(
	    out,
	    "# HELP virtcert_control_connections_refused_total Control socket connections "
	    "refused because the most allowed were open.\n"
	    "# TYPE virtcert_control_connections_refused_total counter\n"
	    "virtcert_control_connections_refused_total %" G_GUINT64_FORMAT "\n"
	    "# HELP virtcert_control_connections_timed_out_total Control socket connections "
	    "closed because no complete request came in time.\n"
	    "# TYPE virtcert_control_connections_timed_out_total counter\n"
	    "virtcert_control_connections_timed_out_total %" G_GUINT64_FORMAT "\n",
	    vc_ipc_server_get_n_refused(daemon->ipc), vc_ipc_server_get_n_timed_out(daemon->ipc));
}

/* OCSP answers by kind, as counters */
static void
vc_daemon_append_ocsp_metrics(VcDaemon *daemon, GString *out)
{
	if (daemon->ocsp == NULL)
		return;
	g_string_append(out, "# HELP virtcert_ocsp_responses_total OCSP answers given, by answer.\n"
			     "# TYPE virtcert_ocsp_responses_total counter\n");
	for (int k = 0; k < VC_OCSP_ANSWER_LAST; k++)
		g_string_append_printf(
		    out, "virtcert_ocsp_responses_total{answer=\"%s\"} %" G_GUINT64_FORMAT "\n",
		    vc_ocsp_answer_kind_to_string(k), vc_ocsp_responder_get_count(daemon->ocsp, k));
}

static char *
vc_daemon_http_get_metrics(gpointer user_data)
{
	VcDaemon *daemon = user_data;
	g_autofree char *engine = vc_engine_get_metrics(daemon->engine);
	GString *out;

	if (engine == NULL)
		return NULL;
	out = g_string_new(engine);
	vc_daemon_append_connection_metrics(daemon, out);
	vc_daemon_append_ocsp_metrics(daemon, out);
	return g_string_free(out, FALSE);
}

static void
vc_daemon_http_ocsp(GBytes *request, VcHttpOcspReply *ret_reply, gpointer user_data)
{
	VcDaemon *daemon = user_data;
	vc_ocsp_http_reply(daemon->ocsp, request, ret_reply);
}

/* Startup: every VALID certificate's answer signed ahead, a slice per idle
 * turn so that requests are served meanwhile. */
static gboolean
vc_daemon_ocsp_presign_cb(gpointer user_data)
{
	VcDaemon *daemon = user_data;
	g_autoptr(GError) error = NULL;

	if (vc_ocsp_responder_presign_step(daemon->ocsp, 256, &error))
		return G_SOURCE_CONTINUE;
	if (error != NULL)
		g_warning("OCSP: presigning stopped: %s", error->message);
	else
		g_message("OCSP: %u answers presigned",
			  vc_ocsp_responder_get_cache_size(daemon->ocsp));
	daemon->ocsp_presign_id = 0;
	return G_SOURCE_REMOVE;
}

static gboolean
vc_daemon_ocsp_refresh_cb(gpointer user_data)
{
	VcDaemon *daemon = user_data;
	g_autoptr(GError) error = NULL;

	if (!vc_ocsp_responder_refresh(daemon->ocsp, &error))
		g_warning("OCSP: %s", error->message);
	return G_SOURCE_CONTINUE;
}

static gboolean
vc_daemon_start_ocsp(VcDaemon *daemon, GError **error)
{
	const VcConfig *c = daemon->config;
	g_autofree char *dir = g_build_filename(c->state_dir, "ocsp", NULL);
	VcOcspOptions opts = {
	    .sign_with_ca = c->ocsp_sign_with_ca,
	    .validity_s = c->ocsp_validity_s,
	    .responder_lifetime_s = c->ocsp_responder_lifetime_s,
	    .dir = dir,
	};

	daemon->ocsp = vc_ocsp_responder_new(daemon->ca, daemon->store, &opts, error);
	if (daemon->ocsp == NULL)
		return FALSE;
	daemon->ocsp_presign_id = g_idle_add(vc_daemon_ocsp_presign_cb, daemon);
	daemon->ocsp_refresh_id = g_timeout_add_seconds(10, vc_daemon_ocsp_refresh_cb, daemon);
	return TRUE;
}

/* How long an announced destination's claim may wait for this host to see
 * the VM leave (libvirt's STOPPED MIGRATED and the claim race), within the
 * claimant's own 10 s. */
#define VC_DAEMON_CLAIM_WAIT_MS 5000
#define VC_DAEMON_CLAIM_POLL_MS 100

typedef struct {
	VcDaemon *daemon;
	VcPeerClaim *claim;
	gboolean announce;
	gint64 deadline_us; /* monotonic */
	guint source;
} VcDaemonPeerRequest;

static gboolean vc_daemon_http_peer_judge(gpointer data);

/* A claim or an announcement: judged by the engine; a refusal is a 403
 * and changed nothing. */
static gboolean
vc_daemon_http_peer_judge(gpointer data)
{
	VcDaemonPeerRequest *r = data;
	VcDaemon *daemon = r->daemon;
	VcPeerClaim *claim = r->claim;
	g_autofree char *reason = NULL;
	VcEnginePeer peer = {
	    .fqdn = vc_peer_claim_get_peer_fqdn(claim),
	    .fingerprint = vc_peer_claim_get_peer_fingerprint(claim),
	    .identity = vc_peer_claim_get_peer_identity(claim),
	};
	gboolean accepted, not_yet = FALSE;

	r->source = 0;
	if (r->announce)
		accepted =
		    vc_engine_handle_announce(daemon->engine, vc_peer_claim_get_vm_uuid(claim),
					      vc_peer_claim_get_serial(claim), &peer, &reason);
	else
		accepted = vc_engine_handle_claim(daemon->engine, vc_peer_claim_get_vm_uuid(claim),
						  vc_peer_claim_get_serial(claim), &peer, &not_yet,
						  &reason);
	if (not_yet && g_get_monotonic_time() < r->deadline_us) {
		r->source = g_timeout_add(VC_DAEMON_CLAIM_POLL_MS, vc_daemon_http_peer_judge, r);
		return G_SOURCE_REMOVE;
	}
	g_message("%s for VM %s (serial %s) from %s (%s, certificate %.16s…): %s: %s",
		  r->announce ? "migration announcement" : "handover claim",
		  vc_peer_claim_get_vm_uuid(claim), vc_peer_claim_get_serial(claim), peer.fqdn,
		  vc_peer_claim_get_remote_address(claim), peer.fingerprint,
		  accepted ? "accepted" : "refused", reason);
	if (accepted)
		vc_peer_claim_reply(claim, TRUE, reason);
	else
		vc_peer_claim_reply_refused(claim, reason);
	daemon->peer_waiting = g_list_remove(daemon->peer_waiting, r);
	g_free(r);
	return G_SOURCE_REMOVE;
}

static void
vc_daemon_http_peer_request(VcDaemon *daemon, VcPeerClaim *claim, gboolean announce)
{
	VcDaemonPeerRequest *r = g_new0(VcDaemonPeerRequest, 1);

	r->daemon = daemon;
	r->claim = claim;
	r->announce = announce;
	r->deadline_us = g_get_monotonic_time() + VC_DAEMON_CLAIM_WAIT_MS * 1000;
	daemon->peer_waiting = g_list_prepend(daemon->peer_waiting, r);
	vc_daemon_http_peer_judge(r);
}

static void
vc_daemon_http_handover(VcPeerClaim *claim, gpointer user_data)
{
	vc_daemon_http_peer_request(user_data, claim, FALSE);
}

static void
vc_daemon_http_announce(VcPeerClaim *claim, gpointer user_data)
{
	vc_daemon_http_peer_request(user_data, claim, TRUE);
}

static gboolean
vc_daemon_start_http(VcDaemon *daemon, GError **error)
{
	const VcConfig *c = daemon->config;
	gboolean peer = c->peer_address != NULL && *c->peer_address != '\0';
	g_autofree char *cert = vc_config_get_host_path(c, "cert");
	g_autofree char *key = vc_config_get_host_path(c, "key");
	g_autofree char *ca = vc_config_get_host_path(c, "ca");
	g_autofree char *crl = vc_config_get_host_path(c, "crl");
	VcHttpServerOptions opts = {
	    .address = c->http_address,
	    .peer_address = peer ? c->peer_address : NULL,
	    .host_cert_path = cert,
	    .host_key_path = key,
	    .host_ca_path = ca,
	    .host_crl_path = crl,
	    .limits =
		{
		    .max_connections = daemon->fds.http,
		    .header_timeout_ms = (guint)c->http_header_timeout_ms,
		    .idle_timeout_ms = (guint)c->http_idle_timeout_ms,
		    .request_timeout_ms = (guint)c->http_request_timeout_ms,
		},
	    .peer_max_connections = daemon->fds.peer,
	};
	VcHttpCallbacks cb = {
	    .get_crl = vc_daemon_http_get_crl,
	    .get_ca_cert = vc_daemon_http_get_ca_cert,
	    .get_cert_chain = vc_daemon_http_get_cert_chain,
	    .get_metrics = vc_daemon_http_get_metrics,
	    .handover = vc_daemon_http_handover,
	    .ocsp = vc_daemon_http_ocsp,
	    .announce = vc_daemon_http_announce,
	};

	G_STATIC_ASSERT(VC_HTTP_OCSP_MAX_REQUEST == VC_OCSP_MAX_REQUEST_SIZE);
	if ((c->http_address == NULL || *c->http_address == '\0') && !peer)
		return TRUE;
	if (c->http_address != NULL && *c->http_address != '\0' &&
	    !vc_daemon_start_ocsp(daemon, error))
		return FALSE;
	if (daemon->ocsp == NULL)
		cb.ocsp = NULL;
	daemon->http = vc_http_server_new(&opts, &cb, daemon, error);
	if (daemon->http == NULL) {
		g_prefix_error(error, "HTTP: ");
		return FALSE;
	}
	return TRUE;
}

static gboolean
vc_daemon_on_sighup(gpointer user_data)
{
	VcDaemon *daemon = user_data;
	g_autoptr(GError) error = NULL;

	sd_notify(0, "RELOADING=1");
	vc_daemon_reload(daemon, &error); /* a refusal is logged there */
	sd_notify(0, "READY=1");
	return G_SOURCE_CONTINUE;
}

static gboolean
vc_daemon_on_term(gpointer user_data)
{
	VcDaemon *daemon = user_data;
	g_message("stopping");
	sd_notify(0, "STOPPING=1");
	g_main_loop_quit(daemon->loop);
	return G_SOURCE_CONTINUE;
}

static gboolean
vc_daemon_start(VcDaemon *daemon, GError **error)
{
	const char *path = arg_config != NULL ? arg_config : VC_SYSCONFDIR "/virtcert.conf";
	g_autofree char *ca_dir = NULL;
	VcPolicySet *policy;

	daemon->config = vc_config_load(path, arg_config != NULL, error);
	if (daemon->config == NULL)
		return FALSE;
	if (arg_state_dir != NULL)
		vc_config_set_state_dir(daemon->config, arg_state_dir);
	if (g_mkdir_with_parents(daemon->config->state_dir, 0700) < 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot create %s: %s",
			    daemon->config->state_dir, g_strerror(errno));
		return FALSE;
	}
	/* a lost store is refused, never silently replaced by an empty one */
	daemon->store = vc_store_open_state_dir(daemon->config->state_dir, error);
	if (daemon->store == NULL)
		return FALSE;
	ca_dir = g_build_filename(daemon->config->state_dir, "ca", NULL);
	daemon->ca = vc_ca_load(ca_dir, error);
	if (daemon->ca == NULL) {
		g_prefix_error(error, "no usable CA (run 'virtcert ca init' first): ");
		return FALSE;
	}
	policy = vc_daemon_load_policy(daemon, error);
	if (policy == NULL)
		return FALSE;
	vc_daemon_check_urls(daemon->config, daemon->ca);
	vc_daemon_check_tls(daemon->config);
	daemon->engine = vc_engine_new(daemon->config, daemon->store, daemon->ca, policy);
	vc_engine_set_notify(daemon->engine, vc_daemon_notify_cb, daemon);
	if (!vc_engine_recover(daemon->engine, error))
		return FALSE;
	{
		g_autofree char *host_crl = vc_config_get_host_path(daemon->config, "crl");
		VcMetrics *metrics = vc_engine_get_metrics_registry(daemon->engine);
		daemon->crl = vc_crl_publisher_new(vc_engine_get_issuer(daemon->engine),
						   daemon->config->crl_validity_s, metrics);
		daemon->host_crl = vc_daemon_host_crl_new(host_crl);
		vc_daemon_metrics_register(metrics, daemon->config, daemon->ca);
	}

	/* the caps that fit the descriptors left, before any listener opens */
	if (!vc_daemon_fds_plan(
		(guint)daemon->config->control_max_connections,
		daemon->config->http_address != NULL && *daemon->config->http_address != '\0'
		    ? (guint)daemon->config->http_max_connections
		    : 0,
		daemon->config->peer_address != NULL && *daemon->config->peer_address != '\0'
		    ? (guint)daemon->config->peer_max_connections
		    : 0,
		&daemon->fds, error))
		return FALSE;

	daemon->ipc =
	    vc_ipc_server_new(daemon->config->control_socket, daemon->config->control_group, error);
	if (daemon->ipc == NULL)
		return FALSE;
	vc_ipc_server_set_limits(daemon->ipc, daemon->fds.control,
				 (guint)daemon->config->control_timeout_ms);
	vc_daemon_add_methods(daemon);

	if (!vc_daemon_start_http(daemon, error))
		return FALSE;

	vc_engine_connect_libvirt(daemon->engine, daemon->config->libvirt_uri);
	return TRUE;
}

static void
vc_daemon_stop(VcDaemon *daemon)
{
	/* claims still waiting for their VM to leave: not now */
	for (GList *l = daemon->peer_waiting; l != NULL; l = l->next) {
		VcDaemonPeerRequest *r = l->data;
		g_clear_handle_id(&r->source, g_source_remove);
		vc_peer_claim_reply_unavailable(r->claim, "this host is shutting down");
		g_free(r);
	}
	g_clear_pointer(&daemon->peer_waiting, g_list_free);
	g_clear_pointer(&daemon->http, vc_http_server_free);
	g_clear_handle_id(&daemon->ocsp_presign_id, g_source_remove);
	g_clear_handle_id(&daemon->ocsp_refresh_id, g_source_remove);
	g_clear_pointer(&daemon->ocsp, vc_ocsp_responder_free);
	/* announcements in flight answer their hooks first */
	if (daemon->announce_pool != NULL)
		g_thread_pool_free(g_steal_pointer(&daemon->announce_pool), FALSE, TRUE);
	g_clear_pointer(&daemon->ipc, vc_ipc_server_free);
	g_clear_pointer(&daemon->crl, vc_crl_publisher_free);
	g_clear_pointer(&daemon->host_crl, vc_daemon_host_crl_free);
	g_clear_pointer(&daemon->host_cache, vc_daemon_host_cache_free);
	g_clear_pointer(&daemon->owner_trust, vc_owner_trust_free);
	g_clear_pointer(&daemon->engine, vc_engine_free);
	g_clear_pointer(&daemon->ca, vc_ca_free);
	g_clear_pointer(&daemon->store, vc_store_free);
	g_clear_pointer(&daemon->config, vc_config_free);
	g_clear_pointer(&daemon->loop, g_main_loop_unref);
}

int
main(int argc, char **argv)
{
	VcDaemon daemon = {0};
	g_autoptr(GError) error = NULL;
	g_autoptr(GOptionContext) ctx = g_option_context_new("— the virtcert daemon");
	gboolean version = FALSE;
	const GOptionEntry entries[] = {
	    {"config", 0, 0, G_OPTION_ARG_FILENAME, &arg_config,
	     "Configuration file (default " VC_SYSCONFDIR "/virtcert.conf)", "FILE"},
	    {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &arg_state_dir,
	     "State directory, overriding the configuration's", "DIR"},
	    {"version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version", NULL},
	    {NULL}};
	int status = 0;

	setlocale(LC_ALL, "");
	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
		g_printerr("virtcertd: %s\n", error->message);
		return 1;
	}
	if (version) {
		g_print("virtcertd %s\n", VC_VERSION);
		return 0;
	}
	daemon.loop = g_main_loop_new(NULL, FALSE);
	g_unix_signal_add(SIGTERM, vc_daemon_on_term, &daemon);
	g_unix_signal_add(SIGINT, vc_daemon_on_term, &daemon);
	g_unix_signal_add(SIGHUP, vc_daemon_on_sighup, &daemon);
	signal(SIGPIPE, SIG_IGN);

	if (!vc_daemon_start(&daemon, &error)) {
		g_printerr("virtcertd: %s\n", error->message);
		status = vc_error_exit_status(error);
	} else {
		g_message("virtcertd %s ready: control socket %s, libvirt %s", VC_VERSION,
			  daemon.config->control_socket, daemon.config->libvirt_uri);
		sd_notify(0, "READY=1");
		g_main_loop_run(daemon.loop);
	}
	vc_daemon_stop(&daemon);
	return status;
}
