/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-virt.h"

#include <libvirt-glib/libvirt-glib.h>
#include <libvirt/virterror.h>

#include "vc-error.h"
#include "vc-virt-private.h"

/* virConnectClose and virDomainFree drop one reference; they return int, so
 * wrap them for g_autoptr. */
static void
vc_virt_conn_unref(virConnectPtr conn)
{
	virConnectClose(conn);
}

typedef virConnect VcVirtConn;
typedef virDomain VcVirtDom;
static void
vc_virt_dom_unref(VcVirtDom *dom)
{
	virDomainFree(dom);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcVirtConn, vc_virt_conn_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcVirtDom, vc_virt_dom_unref)

#define VC_VIRT_KEEPALIVE_INTERVAL 5 /* seconds */
#define VC_VIRT_KEEPALIVE_COUNT 3
#define VC_VIRT_BACKOFF_MIN_MS 250
#define VC_VIRT_BACKOFF_MAX_MS 2000

enum {
	VC_VIRT_CB_LIFECYCLE,
	VC_VIRT_CB_AGENT,
	VC_VIRT_CB_METADATA,
	VC_VIRT_CB_N,
};

struct _VcVirt {
	gatomicrefcount ref; /* the owner's, plus one per pending async step */
	char *uri;
	VcVirtCallbacks cb;
	gpointer user_data;

	/* conn and teardown_id are read from worker threads (queries, and the
	 * close callback, which libvirt may run on whichever thread notices the
	 * EOF); everything else is main-thread only. */
	GMutex lock;
	virConnectPtr conn;
	guint teardown_id;

	int cb_ids[VC_VIRT_CB_N];
	gboolean close_cb_registered;
	gboolean connected;
	gboolean started;
	gboolean connecting;
	gboolean disposed;
	guint retry_id;
	guint backoff_ms;
};

/* ---- errors ---------------------------------------------------------- */

static void
vc_virt_error_func(void *user_data, virErrorPtr err)
{
	/* libvirt prints every error to stderr by default; we report them
	 * through GError instead. */
}

static gpointer
vc_virt_init_once(gpointer data)
{
	virInitialize();
	virSetErrorFunc(NULL, vc_virt_error_func);
	/* libvirt events are dispatched from the GLib default main context. */
	gvir_event_register();
	return NULL;
}

static void
vc_virt_init(void)
{
	static GOnce once = G_ONCE_INIT;
	g_once(&once, vc_virt_init_once, NULL);
}

/* The error of the last failed libvirt call on this thread, with context. */
G_GNUC_PRINTF(3, 4)
static void
vc_virt_set_error(GError **error, virConnectPtr conn, const char *fmt, ...)
{
	va_list ap;
	g_autofree char *prefix = NULL;
	virErrorPtr err = virGetLastError();
	int code = VC_ERROR_LIBVIRT;

	va_start(ap, fmt);
	prefix = g_strdup_vprintf(fmt, ap);
	va_end(ap);

	if (err != NULL &&
	    (err->code == VIR_ERR_NO_DOMAIN || err->code == VIR_ERR_NO_DOMAIN_METADATA))
		code = VC_ERROR_NOT_FOUND;
	else if (conn != NULL && virConnectIsAlive(conn) != 1)
		code = VC_ERROR_UNAVAILABLE;
	g_set_error(error, VC_ERROR, code, "%s: %s", prefix,
		    err != NULL && err->message != NULL ? err->message : "unknown libvirt error");
	virResetLastError();
}

static gboolean
vc_virt_last_error_is(int code)
{
	virErrorPtr err = virGetLastError();
	return err != NULL && err->code == code;
}

/* ---- event mapping --------------------------------------------------- */

static const char *
vc_virt_word(const char *const *words, gsize n_words, int i)
{
	if (i < 0 || (gsize)i >= n_words || words[i] == NULL)
		return "unknown";
	return words[i];
}

#define VC_VIRT_WORD(words, i) vc_virt_word(words, G_N_ELEMENTS(words), i)

static const char *const vc_virt_defined_words[] = {
    [VIR_DOMAIN_EVENT_DEFINED_ADDED] = "added",
    [VIR_DOMAIN_EVENT_DEFINED_UPDATED] = "updated",
    [VIR_DOMAIN_EVENT_DEFINED_RENAMED] = "renamed",
    [VIR_DOMAIN_EVENT_DEFINED_FROM_SNAPSHOT] = "from-snapshot",
};
static const char *const vc_virt_undefined_words[] = {
    [VIR_DOMAIN_EVENT_UNDEFINED_REMOVED] = "removed",
    [VIR_DOMAIN_EVENT_UNDEFINED_RENAMED] = "renamed",
};
static const char *const vc_virt_started_words[] = {
    [VIR_DOMAIN_EVENT_STARTED_BOOTED] = "booted",
    [VIR_DOMAIN_EVENT_STARTED_MIGRATED] = "migrated",
    [VIR_DOMAIN_EVENT_STARTED_RESTORED] = "restored",
    [VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT] = "from-snapshot",
    [VIR_DOMAIN_EVENT_STARTED_WAKEUP] = "wakeup",
};
static const char *const vc_virt_suspended_words[] = {
    [VIR_DOMAIN_EVENT_SUSPENDED_PAUSED] = "paused",
    [VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED] = "migrated",
    [VIR_DOMAIN_EVENT_SUSPENDED_IOERROR] = "ioerror",
    [VIR_DOMAIN_EVENT_SUSPENDED_WATCHDOG] = "watchdog",
    [VIR_DOMAIN_EVENT_SUSPENDED_RESTORED] = "restored",
    [VIR_DOMAIN_EVENT_SUSPENDED_FROM_SNAPSHOT] = "from-snapshot",
    [VIR_DOMAIN_EVENT_SUSPENDED_API_ERROR] = "api-error",
    [VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY] = "postcopy",
    [VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED] = "postcopy-failed",
};
static const char *const vc_virt_resumed_words[] = {
    [VIR_DOMAIN_EVENT_RESUMED_UNPAUSED] = "unpaused",
    [VIR_DOMAIN_EVENT_RESUMED_MIGRATED] = "migrated",
    [VIR_DOMAIN_EVENT_RESUMED_FROM_SNAPSHOT] = "from-snapshot",
    [VIR_DOMAIN_EVENT_RESUMED_POSTCOPY] = "postcopy",
    [VIR_DOMAIN_EVENT_RESUMED_POSTCOPY_FAILED] = "postcopy-failed",
};
static const char *const vc_virt_stopped_words[] = {
    [VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN] = "shutdown",
    [VIR_DOMAIN_EVENT_STOPPED_DESTROYED] = "destroyed",
    [VIR_DOMAIN_EVENT_STOPPED_CRASHED] = "crashed",
    [VIR_DOMAIN_EVENT_STOPPED_MIGRATED] = "migrated",
    [VIR_DOMAIN_EVENT_STOPPED_SAVED] = "saved",
    [VIR_DOMAIN_EVENT_STOPPED_FAILED] = "failed",
    [VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT] = "from-snapshot",
};
static const char *const vc_virt_shutdown_words[] = {
    [VIR_DOMAIN_EVENT_SHUTDOWN_FINISHED] = "finished",
    [VIR_DOMAIN_EVENT_SHUTDOWN_GUEST] = "guest",
    [VIR_DOMAIN_EVENT_SHUTDOWN_HOST] = "host",
};
static const char *const vc_virt_pmsuspended_words[] = {
    [VIR_DOMAIN_EVENT_PMSUSPENDED_MEMORY] = "memory",
    [VIR_DOMAIN_EVENT_PMSUSPENDED_DISK] = "disk",
};
static const char *const vc_virt_crashed_words[] = {
    [VIR_DOMAIN_EVENT_CRASHED_PANICKED] = "panicked",
    [VIR_DOMAIN_EVENT_CRASHED_CRASHLOADED] = "crashloaded",
};
static const char *const vc_virt_agent_words[] = {
    [VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_REASON_UNKNOWN] = "unknown",
    [VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_REASON_DOMAIN_STARTED] = "domain-started",
    [VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_REASON_CHANNEL] = "channel",
};
static const char *const vc_virt_metadata_words[] = {
    [VIR_DOMAIN_METADATA_DESCRIPTION] = "description",
    [VIR_DOMAIN_METADATA_TITLE] = "title",
    [VIR_DOMAIN_METADATA_ELEMENT] = "element",
};

/* DETAIL and its word; the flags cleared. */
static void
vc_virt_event_init_detail(VcVirtEvent *event, int detail, const char *detail_str)
{
	event->detail = detail;
	event->detail_str = detail_str;
	event->is_migration = FALSE;
	event->is_rename = FALSE;
	event->is_restore = FALSE;
	event->metadata_ns_uri = NULL;
}

gboolean
vc_virt_event_init_lifecycle(VcVirtEvent *event, int type, int detail)
{
	vc_virt_event_init_detail(event, detail, NULL);

	switch ((virDomainEventType)type) {
	case VIR_DOMAIN_EVENT_DEFINED:
		event->kind = VC_VIRT_EVENT_DEFINED;
		event->detail_str = VC_VIRT_WORD(vc_virt_defined_words, detail);
		event->is_rename = detail == VIR_DOMAIN_EVENT_DEFINED_RENAMED;
		break;
	case VIR_DOMAIN_EVENT_UNDEFINED:
		event->kind = VC_VIRT_EVENT_UNDEFINED;
		event->detail_str = VC_VIRT_WORD(vc_virt_undefined_words, detail);
		event->is_rename = detail == VIR_DOMAIN_EVENT_UNDEFINED_RENAMED;
		break;
	case VIR_DOMAIN_EVENT_STARTED:
		event->kind = VC_VIRT_EVENT_STARTED;
		event->detail_str = VC_VIRT_WORD(vc_virt_started_words, detail);
		event->is_migration = detail == VIR_DOMAIN_EVENT_STARTED_MIGRATED;
		event->is_restore = detail == VIR_DOMAIN_EVENT_STARTED_RESTORED ||
				    detail == VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT;
		break;
	case VIR_DOMAIN_EVENT_SUSPENDED:
		event->kind = VC_VIRT_EVENT_SUSPENDED;
		event->detail_str = VC_VIRT_WORD(vc_virt_suspended_words, detail);
		event->is_migration = detail == VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED ||
				      detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY ||
				      detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED;
		event->is_restore = detail == VIR_DOMAIN_EVENT_SUSPENDED_FROM_SNAPSHOT;
		break;
	case VIR_DOMAIN_EVENT_RESUMED:
		event->kind = VC_VIRT_EVENT_RESUMED;
		event->detail_str = VC_VIRT_WORD(vc_virt_resumed_words, detail);
		event->is_migration = detail == VIR_DOMAIN_EVENT_RESUMED_MIGRATED ||
				      detail == VIR_DOMAIN_EVENT_RESUMED_POSTCOPY ||
				      detail == VIR_DOMAIN_EVENT_RESUMED_POSTCOPY_FAILED;
		event->is_restore = detail == VIR_DOMAIN_EVENT_RESUMED_FROM_SNAPSHOT;
		break;
	case VIR_DOMAIN_EVENT_STOPPED:
		event->kind = VC_VIRT_EVENT_STOPPED;
		event->detail_str = VC_VIRT_WORD(vc_virt_stopped_words, detail);
		event->is_migration = detail == VIR_DOMAIN_EVENT_STOPPED_MIGRATED;
		event->is_restore = detail == VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT;
		break;
	case VIR_DOMAIN_EVENT_SHUTDOWN:
		event->kind = VC_VIRT_EVENT_SHUTDOWN;
		event->detail_str = VC_VIRT_WORD(vc_virt_shutdown_words, detail);
		break;
	case VIR_DOMAIN_EVENT_PMSUSPENDED:
		event->kind = VC_VIRT_EVENT_PMSUSPENDED;
		event->detail_str = VC_VIRT_WORD(vc_virt_pmsuspended_words, detail);
		break;
	case VIR_DOMAIN_EVENT_CRASHED:
		event->kind = VC_VIRT_EVENT_CRASHED;
		event->detail_str = VC_VIRT_WORD(vc_virt_crashed_words, detail);
		break;
#ifdef VIR_ENUM_SENTINELS
	case VIR_DOMAIN_EVENT_LAST:
#endif
	default:
		return FALSE;
	}
	return TRUE;
}

gboolean
vc_virt_event_init_agent(VcVirtEvent *event, int state, int reason)
{
	vc_virt_event_init_detail(event, reason, VC_VIRT_WORD(vc_virt_agent_words, reason));
	switch ((virConnectDomainEventAgentLifecycleState)state) {
	case VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_CONNECTED:
		event->kind = VC_VIRT_EVENT_AGENT_CONNECTED;
		return TRUE;
	case VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_DISCONNECTED:
		event->kind = VC_VIRT_EVENT_AGENT_DISCONNECTED;
		return TRUE;
#ifdef VIR_ENUM_SENTINELS
	case VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_LAST:
#endif
	default:
		return FALSE;
	}
}

void
vc_virt_event_init_metadata(VcVirtEvent *event, int type, const char *ns_uri)
{
	vc_virt_event_init_detail(event, type, VC_VIRT_WORD(vc_virt_metadata_words, type));
	event->kind = VC_VIRT_EVENT_METADATA_CHANGED;
	event->metadata_ns_uri = type == VIR_DOMAIN_METADATA_ELEMENT ? ns_uri : NULL;
}

const char *
vc_virt_event_kind_to_string(VcVirtEventKind kind)
{
	switch (kind) {
	case VC_VIRT_EVENT_DEFINED:
		return "defined";
	case VC_VIRT_EVENT_UNDEFINED:
		return "undefined";
	case VC_VIRT_EVENT_STARTED:
		return "started";
	case VC_VIRT_EVENT_STOPPED:
		return "stopped";
	case VC_VIRT_EVENT_SUSPENDED:
		return "suspended";
	case VC_VIRT_EVENT_RESUMED:
		return "resumed";
	case VC_VIRT_EVENT_SHUTDOWN:
		return "shutdown";
	case VC_VIRT_EVENT_PMSUSPENDED:
		return "pmsuspended";
	case VC_VIRT_EVENT_CRASHED:
		return "crashed";
	case VC_VIRT_EVENT_AGENT_CONNECTED:
		return "agent-connected";
	case VC_VIRT_EVENT_AGENT_DISCONNECTED:
		return "agent-disconnected";
	case VC_VIRT_EVENT_METADATA_CHANGED:
		return "metadata-changed";
	default:
		return "unknown";
	}
}

/* ---- event dispatch (main thread, from libvirt-glib's event loop) ----- */

static void
vc_virt_emit(VcVirt *virt, virDomainPtr dom, VcVirtEvent *event)
{
	char uuid[VIR_UUID_STRING_BUFLEN] = "";

	if (virt->disposed || !virt->connected || virt->cb.event == NULL)
		return;
	if (virDomainGetUUIDString(dom, uuid) < 0) {
		virResetLastError();
		return;
	}
	/* libvirt formats with %02x already; lower-case it anyway since the
	 * store keys on this string. */
	for (char *p = uuid; *p != '\0'; p++)
		*p = g_ascii_tolower(*p);
	event->uuid = uuid;
	event->name = virDomainGetName(dom);
	g_debug("domain %s (%s): %s %s", event->uuid, event->name,
		vc_virt_event_kind_to_string(event->kind), event->detail_str);
	virt->cb.event(event, virt->user_data);
}

static int
vc_virt_on_lifecycle(virConnectPtr conn, virDomainPtr dom, int type, int detail, void *opaque)
{
	VcVirtEvent event = {0};
	if (vc_virt_event_init_lifecycle(&event, type, detail))
		vc_virt_emit(opaque, dom, &event);
	return 0;
}

static void
vc_virt_on_agent(virConnectPtr conn, virDomainPtr dom, int state, int reason, void *opaque)
{
	VcVirtEvent event = {0};
	if (vc_virt_event_init_agent(&event, state, reason))
		vc_virt_emit(opaque, dom, &event);
}

static void
vc_virt_on_metadata(virConnectPtr conn, virDomainPtr dom, int type, const char *nsuri, void *opaque)
{
	VcVirtEvent event = {0};
	vc_virt_event_init_metadata(&event, type, nsuri);
	vc_virt_emit(opaque, dom, &event);
}

/* ---- connection life ------------------------------------------------- */

static VcVirt *
vc_virt_ref(VcVirt *virt)
{
	g_atomic_ref_count_inc(&virt->ref);
	return virt;
}

static void
vc_virt_unref(gpointer data)
{
	VcVirt *virt = data;
	if (!g_atomic_ref_count_dec(&virt->ref))
		return;
	g_mutex_clear(&virt->lock);
	g_free(virt->uri);
	g_free(virt);
}

static void vc_virt_connect(VcVirt *virt);

/* Deregisters everything and drops our reference to the connection. Never
 * called from the close callback: libvirt forbids closing there. */
static void
vc_virt_detach(VcVirt *virt, virConnectPtr conn)
{
	for (guint i = 0; i < VC_VIRT_CB_N; i++) {
		/* on a dead connection this fails after removing the callback
		 * locally, which is all we need */
		if (virt->cb_ids[i] >= 0)
			virConnectDomainEventDeregisterAny(conn, virt->cb_ids[i]);
		virt->cb_ids[i] = -1;
	}
	virResetLastError();
	virConnectClose(conn);
}

static void vc_virt_on_close(virConnectPtr conn, int reason, void *opaque);

static void
vc_virt_drop_connection(VcVirt *virt)
{
	virConnectPtr conn;

	g_mutex_lock(&virt->lock);
	conn = g_steal_pointer(&virt->conn);
	g_mutex_unlock(&virt->lock);
	if (conn == NULL)
		return;
	/* After this returns the close callback is not running and never will
	 * (libvirt holds its lock while calling it). */
	if (virt->close_cb_registered)
		virConnectUnregisterCloseCallback(conn, vc_virt_on_close);
	virt->close_cb_registered = FALSE;
	vc_virt_detach(virt, conn);
}

static gboolean
vc_virt_retry_cb(gpointer data)
{
	VcVirt *virt = data;
	virt->retry_id = 0;
	vc_virt_connect(virt);
	return G_SOURCE_REMOVE;
}

static void
vc_virt_schedule_retry(VcVirt *virt)
{
	if (virt->disposed || virt->retry_id != 0)
		return;
	g_debug("reconnecting to %s in %u ms", virt->uri, virt->backoff_ms);
	virt->retry_id = g_timeout_add(virt->backoff_ms, vc_virt_retry_cb, virt);
	virt->backoff_ms = MIN(virt->backoff_ms * 2, VC_VIRT_BACKOFF_MAX_MS);
}

static gboolean
vc_virt_teardown_cb(gpointer data)
{
	VcVirt *virt = data;
	gboolean was_connected = virt->connected;

	g_mutex_lock(&virt->lock);
	virt->teardown_id = 0;
	g_mutex_unlock(&virt->lock);
	if (virt->disposed)
		return G_SOURCE_REMOVE;

	vc_virt_drop_connection(virt);
	virt->connected = FALSE;
	virt->backoff_ms = VC_VIRT_BACKOFF_MIN_MS;
	if (was_connected) {
		g_info("lost the connection to %s, reconnecting", virt->uri);
		if (virt->cb.disconnected != NULL)
			virt->cb.disconnected(virt->user_data);
	}
	vc_virt_schedule_retry(virt);
	return G_SOURCE_REMOVE;
}

/* May run on any thread: whichever one libvirt's RPC client noticed the EOF
 * or keepalive timeout on. The connection must not be closed in here. */
static void
vc_virt_on_close(virConnectPtr conn, int reason, void *opaque)
{
	VcVirt *virt = opaque;

	g_mutex_lock(&virt->lock);
	if (conn == virt->conn && virt->teardown_id == 0)
		virt->teardown_id = g_idle_add_full(G_PRIORITY_DEFAULT, vc_virt_teardown_cb,
						    vc_virt_ref(virt), vc_virt_unref);
	g_mutex_unlock(&virt->lock);
}

/* Main thread: hook our callbacks into a freshly opened connection, which
 * becomes virt->conn whether this succeeds or not. */
static gboolean
vc_virt_attach(VcVirt *virt, virConnectPtr conn, GError **error)
{
	/* published first: the close callback compares against it, and on
	 * failure vc_virt_drop_connection() releases it */
	g_mutex_lock(&virt->lock);
	virt->conn = conn;
	g_mutex_unlock(&virt->lock);
	if (virConnectRegisterCloseCallback(conn, vc_virt_on_close, virt, NULL) < 0) {
		vc_virt_set_error(error, conn, "cannot register close callback on %s", virt->uri);
		return FALSE;
	}
	virt->close_cb_registered = TRUE;

	virt->cb_ids[VC_VIRT_CB_LIFECYCLE] = virConnectDomainEventRegisterAny(
	    conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
	    VIR_DOMAIN_EVENT_CALLBACK(vc_virt_on_lifecycle), virt, NULL);
	if (virt->cb_ids[VC_VIRT_CB_LIFECYCLE] >= 0)
		virt->cb_ids[VC_VIRT_CB_AGENT] = virConnectDomainEventRegisterAny(
		    conn, NULL, VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE,
		    VIR_DOMAIN_EVENT_CALLBACK(vc_virt_on_agent), virt, NULL);
	if (virt->cb_ids[VC_VIRT_CB_AGENT] >= 0)
		virt->cb_ids[VC_VIRT_CB_METADATA] = virConnectDomainEventRegisterAny(
		    conn, NULL, VIR_DOMAIN_EVENT_ID_METADATA_CHANGE,
		    VIR_DOMAIN_EVENT_CALLBACK(vc_virt_on_metadata), virt, NULL);
	if (virt->cb_ids[VC_VIRT_CB_METADATA] < 0) {
		vc_virt_set_error(error, conn, "cannot register domain events on %s", virt->uri);
		return FALSE;
	}
	return TRUE;
}

static void
vc_virt_open_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
	const char *uri = task_data;
	g_autoptr(GError) error = NULL;
	virConnectPtr conn;

	/* virConnectOpen blocks (a remote daemon may be slow to answer), so it
	 * runs here and not on the main loop. */
	conn = virConnectOpen(uri);
	if (conn == NULL) {
		vc_virt_set_error(&error, NULL, "cannot connect to %s", uri);
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	/* Detects a hung daemon in 5 s x 3; drivers without keepalive (the
	 * in-process ones) cannot lose their connection anyway. */
	if (virConnectSetKeepAlive(conn, VC_VIRT_KEEPALIVE_INTERVAL, VC_VIRT_KEEPALIVE_COUNT) < 0)
		virResetLastError();
	g_task_return_pointer(task, conn, (GDestroyNotify)vc_virt_conn_unref);
}

static void
vc_virt_open_done(GObject *source, GAsyncResult *result, gpointer data)
{
	VcVirt *virt = data;
	g_autoptr(GError) error = NULL;
	virConnectPtr conn = g_task_propagate_pointer(G_TASK(result), &error);

	virt->connecting = FALSE;
	if (virt->disposed) {
		if (conn != NULL)
			virConnectClose(conn);
		vc_virt_unref(virt);
		return;
	}
	if (conn == NULL) {
		g_debug("%s", error->message);
		vc_virt_schedule_retry(virt);
		vc_virt_unref(virt);
		return;
	}
	if (!vc_virt_attach(virt, conn, &error)) {
		g_debug("%s", error->message);
		vc_virt_drop_connection(virt);
		vc_virt_schedule_retry(virt);
		vc_virt_unref(virt);
		return;
	}
	virt->connected = TRUE;
	virt->backoff_ms = VC_VIRT_BACKOFF_MIN_MS;
	g_info("connected to %s", virt->uri);
	if (virt->cb.connected != NULL)
		virt->cb.connected(virt->user_data);
	vc_virt_unref(virt);
}

static void
vc_virt_connect(VcVirt *virt)
{
	g_autoptr(GTask) task = NULL;

	if (virt->disposed || virt->connecting || virt->conn != NULL)
		return;
	virt->connecting = TRUE;
	task = g_task_new(NULL, NULL, vc_virt_open_done, vc_virt_ref(virt));
	g_task_set_source_tag(task, vc_virt_connect);
	g_task_set_task_data(task, g_strdup(virt->uri), g_free);
	g_task_run_in_thread(task, vc_virt_open_thread);
}

VcVirt *
vc_virt_new(const char *uri, const VcVirtCallbacks *callbacks, gpointer user_data)
{
	VcVirt *virt;

	g_return_val_if_fail(uri != NULL, NULL);
	vc_virt_init();
	virt = g_new0(VcVirt, 1);
	g_atomic_ref_count_init(&virt->ref);
	g_mutex_init(&virt->lock);
	virt->uri = g_strdup(uri);
	if (callbacks != NULL)
		virt->cb = *callbacks;
	virt->user_data = user_data;
	for (guint i = 0; i < VC_VIRT_CB_N; i++)
		virt->cb_ids[i] = -1;
	virt->backoff_ms = VC_VIRT_BACKOFF_MIN_MS;
	return virt;
}

void
vc_virt_start(VcVirt *virt)
{
	g_return_if_fail(virt != NULL);
	if (virt->started)
		return;
	virt->started = TRUE;
	vc_virt_connect(virt);
}

void
vc_virt_free(VcVirt *virt)
{
	if (virt == NULL)
		return;
	virt->disposed = TRUE;
	if (virt->retry_id != 0)
		g_source_remove(virt->retry_id);
	virt->retry_id = 0;
	vc_virt_drop_connection(virt);
	virt->connected = FALSE;
	g_mutex_lock(&virt->lock);
	if (virt->teardown_id != 0)
		g_source_remove(virt->teardown_id); /* drops its reference */
	virt->teardown_id = 0;
	g_mutex_unlock(&virt->lock);
	/* a connect still running in its thread keeps a reference and closes
	 * what it opened when it finishes */
	vc_virt_unref(virt);
}

gboolean
vc_virt_is_connected(VcVirt *virt)
{
	g_return_val_if_fail(virt != NULL, FALSE);
	return virt->connected;
}

const char *
vc_virt_get_uri(VcVirt *virt)
{
	g_return_val_if_fail(virt != NULL, NULL);
	return virt->uri;
}

virConnectPtr
vc_virt_ref_connection(VcVirt *virt, GError **error)
{
	virConnectPtr conn = NULL;

	g_return_val_if_fail(virt != NULL, NULL);
	g_mutex_lock(&virt->lock);
	if (virt->conn != NULL && virConnectRef(virt->conn) == 0)
		conn = virt->conn;
	g_mutex_unlock(&virt->lock);
	if (conn == NULL)
		g_set_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE, "not connected to %s",
			    virt->uri);
	return conn;
}

/* ---- queries --------------------------------------------------------- */

void
vc_virt_domain_free(VcVirtDomain *domain)
{
	if (domain == NULL)
		return;
	g_free(domain->uuid);
	g_free(domain->name);
	g_free(domain->xml);
	g_free(domain);
}

/* Domain UUID on a reference to the connection, which is returned in
 * *RET_CONN (also on failure, when there is one). */
static virDomainPtr
vc_virt_lookup(VcVirt *virt, const char *uuid, virConnectPtr *ret_conn, GError **error)
{
	virConnectPtr conn;
	virDomainPtr dom;

	conn = *ret_conn = vc_virt_ref_connection(virt, error);
	if (conn == NULL)
		return NULL;
	if (uuid == NULL || !g_uuid_string_is_valid(uuid)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "invalid domain UUID '%s'",
			    uuid != NULL ? uuid : "(null)");
		return NULL;
	}
	dom = virDomainLookupByUUIDString(conn, uuid);
	if (dom == NULL)
		vc_virt_set_error(error, conn, "domain %s", uuid);
	return dom;
}

static char *
vc_virt_dom_get_xml(virConnectPtr conn, virDomainPtr dom, const char *uuid, GError **error)
{
	char *xml = virDomainGetXMLDesc(dom, 0);

	if (xml == NULL)
		vc_virt_set_error(error, conn, "cannot read the XML of domain %s", uuid);
	return xml;
}

/* xml is taken over: libvirt allocates with malloc, which g_free matches. */
static VcVirtDomain *
vc_virt_domain_new(virDomainPtr dom, gboolean persistent, char *xml)
{
	VcVirtDomain *domain = g_new0(VcVirtDomain, 1);
	char uuid[VIR_UUID_STRING_BUFLEN] = "";

	if (virDomainGetUUIDString(dom, uuid) < 0)
		virResetLastError();
	domain->uuid = g_ascii_strdown(uuid, -1);
	domain->name = g_strdup(virDomainGetName(dom));
	/* the ID comes with the listing: -1 for inactive domains, so no call
	 * per domain is needed to learn which ones run */
	domain->active = virDomainGetID(dom) != (unsigned int)-1;
	domain->persistent = persistent;
	domain->xml = xml;
	return domain;
}

static void
vc_virt_free_domain_list(virDomainPtr *doms, int n)
{
	if (doms == NULL)
		return;
	for (int i = 0; i < n; i++)
		virDomainFree(doms[i]);
	free(doms);
}

GPtrArray *
vc_virt_list_domains(VcVirt *virt, gboolean with_xml, GError **error)
{
	g_autoptr(VcVirtConn) conn = NULL;
	g_autoptr(GPtrArray) result = NULL;
	g_autoptr(GHashTable) transient = NULL;
	virDomainPtr *doms = NULL;
	virDomainPtr *tdoms = NULL;
	int n, nt;

	g_return_val_if_fail(virt != NULL, NULL);
	conn = vc_virt_ref_connection(virt, error);
	if (conn == NULL)
		return NULL;

	n = virConnectListAllDomains(conn, &doms, 0);
	if (n < 0) {
		vc_virt_set_error(error, conn, "cannot list the domains of %s", virt->uri);
		return NULL;
	}
	/* Persistence is not in the listing; asking the transient ones (few,
	 * usually none) costs one call instead of one per domain. Listed after
	 * the full list, so a domain made transient meanwhile shows its newer
	 * state; either answer is one libvirt really had. */
	nt = virConnectListAllDomains(conn, &tdoms, VIR_CONNECT_LIST_DOMAINS_TRANSIENT);
	if (nt < 0) {
		vc_virt_set_error(error, conn, "cannot list the transient domains of %s",
				  virt->uri);
		vc_virt_free_domain_list(doms, n);
		return NULL;
	}
	transient = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	for (int i = 0; i < nt; i++) {
		char uuid[VIR_UUID_STRING_BUFLEN];
		if (virDomainGetUUIDString(tdoms[i], uuid) == 0)
			g_hash_table_add(transient, g_ascii_strdown(uuid, -1));
	}
	vc_virt_free_domain_list(tdoms, nt);

	result = g_ptr_array_new_full(n, (GDestroyNotify)vc_virt_domain_free);
	for (int i = 0; i < n; i++) {
		g_autoptr(VcVirtDomain) domain = vc_virt_domain_new(doms[i], TRUE, NULL);
		domain->persistent = !g_hash_table_contains(transient, domain->uuid);
		if (with_xml) {
			domain->xml = virDomainGetXMLDesc(doms[i], 0);
			if (domain->xml == NULL) {
				if (vc_virt_last_error_is(VIR_ERR_NO_DOMAIN)) {
					/* undefined since the listing: it is gone */
					virResetLastError();
					continue;
				}
				vc_virt_set_error(error, conn, "cannot read the XML of domain %s",
						  domain->uuid);
				vc_virt_free_domain_list(doms, n);
				return NULL;
			}
		}
		g_ptr_array_add(result, g_steal_pointer(&domain));
	}
	vc_virt_free_domain_list(doms, n);
	return g_steal_pointer(&result);
}

VcVirtDomain *
vc_virt_get_domain(VcVirt *virt, const char *uuid, gboolean with_xml, GError **error)
{
	g_autoptr(VcVirtConn) conn = NULL;
	g_autoptr(VcVirtDom) dom = NULL;
	g_autofree char *xml = NULL;
	int persistent;

	g_return_val_if_fail(virt != NULL, NULL);
	dom = vc_virt_lookup(virt, uuid, &conn, error);
	if (dom == NULL)
		return NULL;
	persistent = virDomainIsPersistent(dom);
	if (persistent < 0) {
		vc_virt_set_error(error, conn, "domain %s", uuid);
		return NULL;
	}
	if (with_xml) {
		xml = vc_virt_dom_get_xml(conn, dom, uuid, error);
		if (xml == NULL)
			return NULL;
	}
	return vc_virt_domain_new(dom, persistent == 1, g_steal_pointer(&xml));
}

char *
vc_virt_get_domain_xml(VcVirt *virt, const char *uuid, GError **error)
{
	g_autoptr(VcVirtConn) conn = NULL;
	g_autoptr(VcVirtDom) dom = NULL;

	g_return_val_if_fail(virt != NULL, NULL);
	dom = vc_virt_lookup(virt, uuid, &conn, error);
	if (dom == NULL)
		return NULL;
	return vc_virt_dom_get_xml(conn, dom, uuid, error);
}

gboolean
vc_virt_set_metadata(VcVirt *virt, const char *uuid, const char *xml_element, const char *ns_uri,
		     const char *prefix, GError **error)
{
	g_autoptr(VcVirtConn) conn = NULL;
	g_autoptr(VcVirtDom) dom = NULL;

	g_return_val_if_fail(virt != NULL, FALSE);
	g_return_val_if_fail(ns_uri != NULL, FALSE);
	g_return_val_if_fail(xml_element == NULL || prefix != NULL, FALSE);
	dom = vc_virt_lookup(virt, uuid, &conn, error);
	if (dom == NULL)
		return FALSE;

	/* The domain may start, stop or become transient between reading its
	 * state and writing: libvirt then refuses the flags (operation invalid)
	 * and a second try with fresh state succeeds. */
	for (guint attempt = 0;; attempt++) {
		int active = virDomainIsActive(dom);
		int persistent = virDomainIsPersistent(dom);
		unsigned int flags = 0;

		if (active < 0 || persistent < 0) {
			vc_virt_set_error(error, conn, "domain %s", uuid);
			return FALSE;
		}
		if (persistent == 1)
			flags |= VIR_DOMAIN_AFFECT_CONFIG;
		if (active == 1)
			flags |= VIR_DOMAIN_AFFECT_LIVE;
		if (flags == 0) {
			/* transient and not running: it no longer exists */
			g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND,
				    "domain %s: no longer exists", uuid);
			return FALSE;
		}
		if (virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, xml_element,
					 xml_element != NULL ? prefix : NULL, ns_uri, flags) == 0)
			return TRUE;
		if (attempt == 0 && vc_virt_last_error_is(VIR_ERR_OPERATION_INVALID)) {
			virResetLastError();
			continue;
		}
		vc_virt_set_error(error, conn, "cannot write metadata %s of domain %s", ns_uri,
				  uuid);
		return FALSE;
	}
}

char *
vc_virt_get_metadata(VcVirt *virt, const char *uuid, const char *ns_uri, GError **error)
{
	g_autoptr(VcVirtConn) conn = NULL;
	g_autoptr(VcVirtDom) dom = NULL;
	char *xml;

	g_return_val_if_fail(virt != NULL, NULL);
	g_return_val_if_fail(ns_uri != NULL, NULL);
	dom = vc_virt_lookup(virt, uuid, &conn, error);
	if (dom == NULL)
		return NULL;
	xml = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, ns_uri,
				   VIR_DOMAIN_AFFECT_CURRENT);
	if (xml == NULL)
		vc_virt_set_error(error, conn, "metadata %s of domain %s", ns_uri, uuid);
	return xml;
}
