/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib/gstdio.h>
#include <signal.h>

#include "vc-error.h"
#include "vc-virt-private.h"
#include "vc-test-util.h"
#include "vc-virt.h"

/* Two groups of tests:
 *  /virt/test-driver/...  libvirt's test driver in this process
 *                         (test:///default is shared by all connections of
 *                         one process, so a second connection drives it);
 *  /virt/libvirtd/...     a real private libvirtd (tests/lib/libvirtd-session.sh)
 *                         serving its test driver to this process and to
 *                         virsh subprocesses; killed and restarted. */

#define NS_URI "urn:virtcert:domain:1"

typedef struct {
	char *uuid;
	char *name;
	VcVirtEventKind kind;
	int detail;
	char *detail_str;
	gboolean is_migration, is_rename, is_restore;
	char *ns_uri;
} RecordedEvent;

static void
recorded_event_free(RecordedEvent *ev)
{
	g_free(ev->uuid);
	g_free(ev->name);
	g_free(ev->detail_str);
	g_free(ev->ns_uri);
	g_free(ev);
}

typedef struct {
	guint n_connected;
	guint n_disconnected;
	gint64 connected_at;	/* monotonic, of the last connected() */
	gint64 disconnected_at; /* of the last disconnected() */
	gboolean connected_seen_by_callback;
	GPtrArray *events; /* RecordedEvent */
	VcVirt *virt;
} Fixture;

static void
on_connected(gpointer user_data)
{
	Fixture *f = user_data;
	f->n_connected++;
	f->connected_at = g_get_monotonic_time();
	/* the engine reconciles from here: the connection must be usable */
	f->connected_seen_by_callback = vc_virt_is_connected(f->virt);
}

static void
on_disconnected(gpointer user_data)
{
	Fixture *f = user_data;
	f->n_disconnected++;
	f->disconnected_at = g_get_monotonic_time();
}

static void
on_event(const VcVirtEvent *event, gpointer user_data)
{
	Fixture *f = user_data;
	RecordedEvent *ev = g_new0(RecordedEvent, 1);

	g_assert_nonnull(event->uuid);
	g_assert_nonnull(event->name);
	g_assert_nonnull(event->detail_str);
	ev->uuid = g_strdup(event->uuid);
	ev->name = g_strdup(event->name);
	ev->kind = event->kind;
	ev->detail = event->detail;
	ev->detail_str = g_strdup(event->detail_str);
	ev->is_migration = event->is_migration;
	ev->is_rename = event->is_rename;
	ev->is_restore = event->is_restore;
	ev->ns_uri = g_strdup(event->metadata_ns_uri);
	g_ptr_array_add(f->events, ev);
}

static const VcVirtCallbacks fixture_callbacks = {
    .connected = on_connected,
    .disconnected = on_disconnected,
    .event = on_event,
};

static void
fixture_init(Fixture *f, const char *uri)
{
	memset(f, 0, sizeof(*f));
	f->events = g_ptr_array_new_with_free_func((GDestroyNotify)recorded_event_free);
	f->virt = vc_virt_new(uri, &fixture_callbacks, f);
}

static gboolean
cond_connected(gpointer fixture, gconstpointer data)
{
	Fixture *f = fixture;
	return f->n_connected >= GPOINTER_TO_UINT(data);
}

static gboolean
cond_disconnected(gpointer fixture, gconstpointer data)
{
	Fixture *f = fixture;
	return f->n_disconnected >= GPOINTER_TO_UINT(data);
}

static gboolean
cond_n_events(gpointer fixture, gconstpointer data)
{
	Fixture *f = fixture;
	return f->events->len >= GPOINTER_TO_UINT(data);
}

static void
fixture_clear(Fixture *f)
{
	g_clear_pointer(&f->virt, vc_virt_free);
	g_clear_pointer(&f->events, g_ptr_array_unref);
}

static RecordedEvent *
event_at(Fixture *f, guint i)
{
	g_assert_cmpuint(i, <, f->events->len);
	return g_ptr_array_index(f->events, i);
}

static void
assert_event(Fixture *f, guint i, const char *uuid, VcVirtEventKind kind, const char *detail)
{
	RecordedEvent *ev = event_at(f, i);
	g_assert_cmpstr(ev->uuid, ==, uuid);
	g_assert_cmpstr(vc_virt_event_kind_to_string(ev->kind), ==,
			vc_virt_event_kind_to_string(kind));
	g_assert_cmpstr(ev->detail_str, ==, detail);
}

static char *
domain_xml(const char *name, const char *uuid)
{
	return g_strdup_printf("<domain type='test'><name>%s</name><uuid>%s</uuid>"
			       "<memory>8192</memory><os><type>hvm</type></os></domain>",
			       name, uuid);
}

static void
define_domain(virConnectPtr conn, const char *name, const char *uuid)
{
	g_autofree char *xml = domain_xml(name, uuid);
	virDomainPtr dom = virDomainDefineXML(conn, xml);
	g_assert_nonnull(dom);
	virDomainFree(dom);
}

static virDomainPtr
lookup(virConnectPtr conn, const char *uuid)
{
	virDomainPtr dom = virDomainLookupByUUIDString(conn, uuid);
	g_assert_nonnull(dom);
	return dom;
}

/* ---- mapping (no libvirt needed) ------------------------------------- */

static void
test_mapping_lifecycle(void)
{
	VcVirtEvent ev = {0};

	g_assert_true(vc_virt_event_init_lifecycle(&ev, VIR_DOMAIN_EVENT_STOPPED,
						   VIR_DOMAIN_EVENT_STOPPED_MIGRATED));
	g_assert_cmpint(ev.kind, ==, VC_VIRT_EVENT_STOPPED);
	g_assert_cmpstr(ev.detail_str, ==, "migrated");
	g_assert_true(ev.is_migration);
	g_assert_false(ev.is_restore);

	g_assert_true(vc_virt_event_init_lifecycle(&ev, VIR_DOMAIN_EVENT_STOPPED,
						   VIR_DOMAIN_EVENT_STOPPED_DESTROYED));
	g_assert_cmpstr(ev.detail_str, ==, "destroyed");
	g_assert_false(ev.is_migration);

	g_assert_true(vc_virt_event_init_lifecycle(&ev, VIR_DOMAIN_EVENT_STOPPED,
						   VIR_DOMAIN_EVENT_STOPPED_FAILED));
	g_assert_cmpstr(ev.detail_str, ==, "failed");

	/* the source of a migration is paused first, the destination starts
	 * and resumes: all of them migration */
	g_assert_true(vc_virt_event_init_lifecycle(&ev, VIR_DOMAIN_EVENT_SUSPENDED,
						   VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED));
	g_assert_cmpint(ev.kind, ==, VC_VIRT_EVENT_SUSPENDED);
	g_assert_true(ev.is_migration);
	g_assert_true(vc_virt_event_init_lifecycle(&ev, VIR_DOMAIN_EVENT_SUSPENDED,
						   VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY));
	g_assert_true(ev.is_migration);
	g_assert_true(vc_virt_event_init_lifecycle(&ev, VIR_DOMAIN_EVENT_SUSPENDED,
						   VIR_DOMAIN_EVENT_SUSPENDED_PAUSED));
	g_assert_false(ev.is_migration);
	g_assert_true(vc_virt_event_init_lifecycle(&ev, VIR_DOMAIN_EVENT_STARTED,
						   VIR_DOMAIN_EVENT_STARTED_MIGRATED));
	g_assert_true(ev.is_migration);
	g_assert_false(ev.is_restore);
	g_assert_true(vc_virt_event_init_lifecycle(&ev, VIR_DOMAIN_EVENT_RESUMED,
						   VIR_DOMAIN_EVENT_RESUMED_MIGRATED));
	g_assert_cmpint(ev.kind, ==, VC_VIRT_EVENT_RESUMED);
	g_assert_true(ev.is_migration);

	g_assert_true(vc_virt_event_init_lifecycle(&ev, VIR_DOMAIN_EVENT_STARTED,
						   VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT));
	g_assert_cmpstr(ev.detail_str, ==, "from-snapshot");
	g_assert_true(ev.is_restore);
	g_assert_false(ev.is_migration);
	g_assert_true(vc_virt_event_init_lifecycle(&ev, VIR_DOMAIN_EVENT_STARTED,
						   VIR_DOMAIN_EVENT_STARTED_BOOTED));
	g_assert_false(ev.is_restore);

	g_assert_true(vc_virt_event_init_lifecycle(&ev, VIR_DOMAIN_EVENT_UNDEFINED,
						   VIR_DOMAIN_EVENT_UNDEFINED_RENAMED));
	g_assert_cmpint(ev.kind, ==, VC_VIRT_EVENT_UNDEFINED);
	g_assert_true(ev.is_rename);
	g_assert_true(vc_virt_event_init_lifecycle(&ev, VIR_DOMAIN_EVENT_UNDEFINED,
						   VIR_DOMAIN_EVENT_UNDEFINED_REMOVED));
	g_assert_false(ev.is_rename);

	g_assert_true(vc_virt_event_init_lifecycle(&ev, VIR_DOMAIN_EVENT_CRASHED,
						   VIR_DOMAIN_EVENT_CRASHED_PANICKED));
	g_assert_cmpint(ev.kind, ==, VC_VIRT_EVENT_CRASHED);
	g_assert_true(vc_virt_event_init_lifecycle(&ev, VIR_DOMAIN_EVENT_PMSUSPENDED,
						   VIR_DOMAIN_EVENT_PMSUSPENDED_MEMORY));
	g_assert_cmpint(ev.kind, ==, VC_VIRT_EVENT_PMSUSPENDED);
	g_assert_true(vc_virt_event_init_lifecycle(&ev, VIR_DOMAIN_EVENT_SHUTDOWN,
						   VIR_DOMAIN_EVENT_SHUTDOWN_GUEST));
	g_assert_cmpint(ev.kind, ==, VC_VIRT_EVENT_SHUTDOWN);
	g_assert_cmpstr(ev.detail_str, ==, "guest");

	/* details and events of a newer libvirt do not crash or mislead */
	g_assert_true(vc_virt_event_init_lifecycle(&ev, VIR_DOMAIN_EVENT_STOPPED, 99));
	g_assert_cmpstr(ev.detail_str, ==, "unknown");
	g_assert_cmpint(ev.detail, ==, 99);
	g_assert_false(ev.is_migration);
	g_assert_true(vc_virt_event_init_lifecycle(&ev, VIR_DOMAIN_EVENT_STOPPED, -1));
	g_assert_cmpstr(ev.detail_str, ==, "unknown");
	g_assert_false(vc_virt_event_init_lifecycle(&ev, 1000, 0));
}

static void
test_mapping_agent(void)
{
	VcVirtEvent ev = {0};

	g_assert_true(
	    vc_virt_event_init_agent(&ev, VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_CONNECTED,
				     VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_REASON_CHANNEL));
	g_assert_cmpint(ev.kind, ==, VC_VIRT_EVENT_AGENT_CONNECTED);
	g_assert_cmpstr(ev.detail_str, ==, "channel");
	g_assert_true(vc_virt_event_init_agent(
	    &ev, VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_DISCONNECTED,
	    VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_REASON_DOMAIN_STARTED));
	g_assert_cmpint(ev.kind, ==, VC_VIRT_EVENT_AGENT_DISCONNECTED);
	g_assert_cmpstr(ev.detail_str, ==, "domain-started");
	g_assert_false(vc_virt_event_init_agent(&ev, 0, 0));

	vc_virt_event_init_metadata(&ev, VIR_DOMAIN_METADATA_ELEMENT, NS_URI);
	g_assert_cmpint(ev.kind, ==, VC_VIRT_EVENT_METADATA_CHANGED);
	g_assert_cmpstr(ev.metadata_ns_uri, ==, NS_URI);
	vc_virt_event_init_metadata(&ev, VIR_DOMAIN_METADATA_TITLE, NULL);
	g_assert_cmpstr(ev.detail_str, ==, "title");
	g_assert_null(ev.metadata_ns_uri);
}

/* ---- in-process test driver ------------------------------------------ */

typedef struct {
	Fixture f;
	virConnectPtr conn; /* the test's own connection to the same driver */
} TestDriver;

static void
test_driver_setup(TestDriver *t, gconstpointer data)
{
	/* keeps test:///default's state alive and lets the test act on it */
	t->conn = virConnectOpen("test:///default");
	g_assert_nonnull(t->conn);
	fixture_init(&t->f, "test:///default");
	vc_virt_start(t->f.virt);
	g_assert_true(vc_test_wait_until(cond_connected, &t->f, GUINT_TO_POINTER(1), 5000));
	g_assert_true(t->f.connected_seen_by_callback);
}

static void
test_driver_teardown(TestDriver *t, gconstpointer data)
{
	fixture_clear(&t->f);
	/* the default domain "test" is the only one left between tests */
	virDomainPtr *doms = NULL;
	int n = virConnectListAllDomains(t->conn, &doms, 0);
	for (int i = 0; i < n; i++) {
		if (g_strcmp0(virDomainGetName(doms[i]), "test") != 0) {
			if (virDomainIsActive(doms[i]) == 1)
				virDomainDestroy(doms[i]);
			if (virDomainIsPersistent(doms[i]) == 1)
				virDomainUndefine(doms[i]);
		}
		virDomainFree(doms[i]);
	}
	free(doms);
	virConnectClose(t->conn);
}

static void
test_driver_lifecycle(TestDriver *t, gconstpointer data)
{
	Fixture *f = &t->f;
	const char *uuid = "6f0e3f2c-5b3e-4a5c-9a51-0d3c1e7a2b01";
	g_autofree char *save_path = NULL;
	virDomainPtr dom;
	g_autofree char *tmpdir = vc_test_dir_make("vc-virt-XXXXXX");

	save_path = g_build_filename(tmpdir, "save.img", NULL);

	define_domain(t->conn, "vc-life", uuid);
	dom = lookup(t->conn, uuid);
	g_assert_cmpint(virDomainCreate(dom), ==, 0);
	g_assert_cmpint(virDomainSuspend(dom), ==, 0);
	g_assert_cmpint(virDomainResume(dom), ==, 0);
	g_assert_cmpint(virDomainSave(dom, save_path), ==, 0);
	g_assert_cmpint(virDomainRestore(t->conn, save_path), ==, 0);
	g_assert_cmpint(virDomainDestroy(dom), ==, 0);
	g_assert_cmpint(virDomainRename(dom, "vc-life-2", 0), ==, 0);
	virDomainFree(dom);
	/* a rename keeps the UUID; undefine the domain under its new name */
	dom = lookup(t->conn, uuid);
	g_assert_cmpstr(virDomainGetName(dom), ==, "vc-life-2");
	g_assert_cmpint(virDomainUndefine(dom), ==, 0);
	virDomainFree(dom);

	g_assert_true(vc_test_wait_until(cond_n_events, f, GUINT_TO_POINTER(10), 5000));
	vc_test_spin(100); /* nothing more may come */
	for (guint i = 0; i < f->events->len; i++) {
		RecordedEvent *ev = event_at(f, i);
		g_test_message("event %u: %s %s %s", i, ev->name,
			       vc_virt_event_kind_to_string(ev->kind), ev->detail_str);
	}
	g_assert_cmpuint(f->events->len, ==, 10);
	assert_event(f, 0, uuid, VC_VIRT_EVENT_DEFINED, "added");
	g_assert_cmpstr(event_at(f, 0)->name, ==, "vc-life");
	g_assert_false(event_at(f, 0)->is_rename);
	assert_event(f, 1, uuid, VC_VIRT_EVENT_STARTED, "booted");
	g_assert_false(event_at(f, 1)->is_restore);
	assert_event(f, 2, uuid, VC_VIRT_EVENT_SUSPENDED, "paused");
	assert_event(f, 3, uuid, VC_VIRT_EVENT_RESUMED, "unpaused");
	assert_event(f, 4, uuid, VC_VIRT_EVENT_STOPPED, "saved");
	g_assert_false(event_at(f, 4)->is_migration);
	assert_event(f, 5, uuid, VC_VIRT_EVENT_STARTED, "restored");
	g_assert_true(event_at(f, 5)->is_restore);
	assert_event(f, 6, uuid, VC_VIRT_EVENT_STOPPED, "destroyed");
	/* libvirt announces a rename as undefine of the old name, define of
	 * the new one */
	assert_event(f, 7, uuid, VC_VIRT_EVENT_UNDEFINED, "renamed");
	g_assert_cmpstr(event_at(f, 7)->name, ==, "vc-life");
	g_assert_true(event_at(f, 7)->is_rename);
	assert_event(f, 8, uuid, VC_VIRT_EVENT_DEFINED, "renamed");
	g_assert_cmpstr(event_at(f, 8)->name, ==, "vc-life-2");
	g_assert_true(event_at(f, 8)->is_rename);
	assert_event(f, 9, uuid, VC_VIRT_EVENT_UNDEFINED, "removed");
	g_assert_false(event_at(f, 9)->is_rename);

	vc_test_dir_remove(tmpdir);
}

static void
test_driver_transient(TestDriver *t, gconstpointer data)
{
	Fixture *f = &t->f;
	const char *uuid = "6f0e3f2c-5b3e-4a5c-9a51-0d3c1e7a2b02";
	g_autofree char *xml = domain_xml("vc-transient", uuid);
	g_autoptr(GError) error = NULL;
	g_autoptr(VcVirtDomain) domain = NULL;
	virDomainPtr dom = virDomainCreateXML(t->conn, xml, 0);

	g_assert_nonnull(dom);
	domain = vc_virt_get_domain(f->virt, uuid, FALSE, &error);
	g_assert_no_error(error);
	g_assert_true(domain->active);
	g_assert_false(domain->persistent);
	g_assert_null(domain->xml);

	/* metadata of a transient domain lives in its live definition only */
	g_assert_true(
	    vc_virt_set_metadata(f->virt, uuid, "<vm serial='1'/>", NS_URI, "virtcert", &error));
	g_assert_no_error(error);
	g_autofree char *md = vc_virt_get_metadata(f->virt, uuid, NS_URI, &error);
	g_assert_no_error(error);
	g_assert_nonnull(strstr(md, "serial=\"1\""));

	g_assert_cmpint(virDomainDestroy(dom), ==, 0);
	virDomainFree(dom);
	/* no DEFINED/UNDEFINED for a transient domain: STOPPED ends its life */
	g_assert_true(vc_test_wait_until(cond_n_events, f, GUINT_TO_POINTER(3), 5000));
	vc_test_spin(100);
	g_assert_cmpuint(f->events->len, ==, 3);
	assert_event(f, 0, uuid, VC_VIRT_EVENT_STARTED, "booted");
	assert_event(f, 1, uuid, VC_VIRT_EVENT_METADATA_CHANGED, "element");
	assert_event(f, 2, uuid, VC_VIRT_EVENT_STOPPED, "destroyed");

	g_assert_null(vc_virt_get_domain(f->virt, uuid, FALSE, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
}

static void
test_driver_metadata(TestDriver *t, gconstpointer data)
{
	Fixture *f = &t->f;
	const char *uuid = "6f0e3f2c-5b3e-4a5c-9a51-0d3c1e7a2b03";
	g_autoptr(GError) error = NULL;
	g_autofree char *md = NULL;
	g_autofree char *cfg = NULL;
	g_autofree char *xml = NULL;
	virDomainPtr dom;

	define_domain(t->conn, "vc-meta", uuid);

	/* absent element: NOT_FOUND */
	g_assert_null(vc_virt_get_metadata(f->virt, uuid, NS_URI, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	g_clear_error(&error);

	/* inactive persistent domain: config */
	g_assert_true(vc_virt_set_metadata(f->virt, uuid,
					   "<vm><issuer>https://ca.example/</issuer></vm>", NS_URI,
					   "virtcert", &error));
	g_assert_no_error(error);
	md = vc_virt_get_metadata(f->virt, uuid, NS_URI, &error);
	g_assert_no_error(error);
	g_assert_nonnull(strstr(md, "<issuer>https://ca.example/</issuer>"));
	g_clear_pointer(&md, g_free);
	/* written with the prefix into the domain XML */
	xml = vc_virt_get_domain_xml(f->virt, uuid, &error);
	g_assert_no_error(error);
	g_assert_nonnull(strstr(xml, "<virtcert:vm xmlns:virtcert=\"" NS_URI "\">"));

	/* running persistent domain: both live and config */
	dom = lookup(t->conn, uuid);
	g_assert_cmpint(virDomainCreate(dom), ==, 0);
	g_assert_true(vc_virt_set_metadata(f->virt, uuid, "<vm><serial>02ab</serial></vm>", NS_URI,
					   "virtcert", &error));
	g_assert_no_error(error);
	md = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, NS_URI, VIR_DOMAIN_AFFECT_LIVE);
	g_assert_nonnull(md);
	g_assert_nonnull(strstr(md, "<serial>02ab</serial>"));
	cfg = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, NS_URI,
				   VIR_DOMAIN_AFFECT_CONFIG);
	g_assert_nonnull(cfg);
	g_assert_nonnull(strstr(cfg, "<serial>02ab</serial>"));
	g_clear_pointer(&md, g_free);

	/* removal */
	g_assert_true(vc_virt_set_metadata(f->virt, uuid, NULL, NS_URI, NULL, &error));
	g_assert_no_error(error);
	g_assert_null(vc_virt_get_metadata(f->virt, uuid, NS_URI, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	g_clear_error(&error);

	/* each write is announced with the namespace */
	g_assert_true(vc_test_wait_until(cond_n_events, f, GUINT_TO_POINTER(5), 5000));
	vc_test_spin(100);
	g_assert_cmpuint(f->events->len, ==, 5);
	assert_event(f, 0, uuid, VC_VIRT_EVENT_DEFINED, "added");
	assert_event(f, 1, uuid, VC_VIRT_EVENT_METADATA_CHANGED, "element");
	g_assert_cmpstr(event_at(f, 1)->ns_uri, ==, NS_URI);
	g_assert_cmpint(event_at(f, 1)->detail, ==, VIR_DOMAIN_METADATA_ELEMENT);
	assert_event(f, 2, uuid, VC_VIRT_EVENT_STARTED, "booted");
	assert_event(f, 3, uuid, VC_VIRT_EVENT_METADATA_CHANGED, "element");
	assert_event(f, 4, uuid, VC_VIRT_EVENT_METADATA_CHANGED, "element");
	g_assert_cmpstr(event_at(f, 4)->ns_uri, ==, NS_URI);

	virDomainDestroy(dom);
	virDomainFree(dom);

	/* unknown domain */
	g_assert_false(vc_virt_set_metadata(f->virt, "00000000-0000-4000-8000-00000000dead",
					    "<vm/>", NS_URI, "virtcert", &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	g_clear_error(&error);
	/* not a UUID at all */
	g_assert_null(vc_virt_get_metadata(f->virt, "vc-meta", NS_URI, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
}

static void
test_driver_list(TestDriver *t, gconstpointer data)
{
	Fixture *f = &t->f;
	guint n = g_test_slow() ? 10000 : GPOINTER_TO_UINT(data);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) without = NULL;
	g_autoptr(GPtrArray) with = NULL;
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	g_autofree char *xml = NULL;
	const char *transient_uuid = "6f0e3f2c-5b3e-4a5c-9a51-0d3c1e7a2bff";
	g_autofree char *transient_xml = domain_xml("vc-list-transient", transient_uuid);
	gint64 t0;
	virDomainPtr dom;

	t0 = g_get_monotonic_time();
	for (guint i = 0; i < n; i++) {
		g_autofree char *name = g_strdup_printf("vc-list-%05u", i);
		g_autofree char *uuid =
		    g_strdup_printf("6f0e3f2c-5b3e-4a5c-9a51-%012x", 0xa00000u + i);
		define_domain(t->conn, name, uuid);
		if (i % 3 == 0) {
			dom = lookup(t->conn, uuid);
			g_assert_cmpint(virDomainCreate(dom), ==, 0);
			virDomainFree(dom);
		}
	}
	dom = virDomainCreateXML(t->conn, transient_xml, 0);
	g_assert_nonnull(dom);
	virDomainFree(dom);
	g_test_message("defined %u domains in %.3f s", n, (g_get_monotonic_time() - t0) / 1e6);

	t0 = g_get_monotonic_time();
	without = vc_virt_list_domains(f->virt, FALSE, &error);
	g_assert_no_error(error);
	g_test_message("listed %u domains without XML in %.3f s", without->len,
		       (g_get_monotonic_time() - t0) / 1e6);
	/* n + the transient one + the driver's own "test" */
	g_assert_cmpuint(without->len, ==, n + 2);
	for (guint i = 0; i < without->len; i++) {
		VcVirtDomain *d = g_ptr_array_index(without, i);
		g_assert_null(d->xml);
		g_assert_true(g_uuid_string_is_valid(d->uuid));
		g_assert_false(g_hash_table_contains(seen, d->uuid));
		g_hash_table_add(seen, d->uuid);
		if (g_str_has_prefix(d->name, "vc-list-0")) {
			guint idx = (guint)g_ascii_strtoull(d->name + strlen("vc-list-"), NULL, 10);
			g_autofree char *uuid =
			    g_strdup_printf("6f0e3f2c-5b3e-4a5c-9a51-%012x", 0xa00000u + idx);
			g_assert_cmpstr(d->uuid, ==, uuid);
			g_assert_cmpint(d->active, ==, idx % 3 == 0);
			g_assert_true(d->persistent);
		} else if (g_str_equal(d->name, "vc-list-transient")) {
			g_assert_cmpstr(d->uuid, ==, transient_uuid);
			g_assert_true(d->active);
			g_assert_false(d->persistent);
		} else {
			g_assert_cmpstr(d->name, ==, "test");
			g_assert_true(d->active);
			g_assert_true(d->persistent);
		}
	}

	t0 = g_get_monotonic_time();
	with = vc_virt_list_domains(f->virt, TRUE, &error);
	g_assert_no_error(error);
	g_test_message("listed %u domains with XML in %.3f s", with->len,
		       (g_get_monotonic_time() - t0) / 1e6);
	g_assert_cmpuint(with->len, ==, n + 2);
	for (guint i = 0; i < with->len; i++) {
		VcVirtDomain *d = g_ptr_array_index(with, i);
		g_autofree char *uuid_elem = g_strdup_printf("<uuid>%s</uuid>", d->uuid);
		g_autofree char *name_elem = g_strdup_printf("<name>%s</name>", d->name);
		g_assert_nonnull(d->xml);
		g_assert_nonnull(strstr(d->xml, uuid_elem));
		g_assert_nonnull(strstr(d->xml, name_elem));
	}

	/* one domain's XML, and NOT_FOUND once it is gone */
	xml = vc_virt_get_domain_xml(f->virt, transient_uuid, &error);
	g_assert_no_error(error);
	g_assert_nonnull(strstr(xml, "vc-list-transient"));
	dom = lookup(t->conn, transient_uuid);
	g_assert_cmpint(virDomainDestroy(dom), ==, 0);
	virDomainFree(dom);
	g_clear_pointer(&xml, g_free);
	xml = vc_virt_get_domain_xml(f->virt, transient_uuid, &error);
	g_assert_null(xml);
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
}

static void
test_not_connected(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcVirt) virt = vc_virt_new("test:///default", NULL, NULL);

	g_assert_false(vc_virt_is_connected(virt));
	g_assert_cmpstr(vc_virt_get_uri(virt), ==, "test:///default");
	g_assert_null(vc_virt_list_domains(virt, FALSE, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE);
	g_clear_error(&error);
	g_assert_null(vc_virt_ref_connection(virt, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE);
}

/* A URI that can never connect keeps retrying, never claims to be
 * connected, and frees cleanly while a retry is pending. */
static void
test_connect_failure(void)
{
	Fixture f;

	fixture_init(&f, "test+unix:///default?socket=/nonexistent/vc-virt-test.sock");
	vc_virt_start(f.virt);
	vc_test_spin(700); /* first attempt, then 250 and 500 ms backoff */
	g_assert_cmpuint(f.n_connected, ==, 0);
	g_assert_cmpuint(f.n_disconnected, ==, 0);
	g_assert_false(vc_virt_is_connected(f.virt));
	fixture_clear(&f);
	vc_test_spin(50);
}

/* ---- a real private libvirtd ----------------------------------------- */

typedef struct {
	Fixture f;
	char *dir;
	char *script;
	char *socket;
	char *uri;
	char *virsh;
	char *domxml_path;
} Daemon;

static gboolean
run_helper(Daemon *d, const char *verb, char **ret_stdout, GError **error)
{
	const char *argv[] = {"bash", d->script, verb, d->dir, NULL};
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	int status = 0;

	if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
			  &status, error))
		return FALSE;
	if (!g_spawn_check_wait_status(status, error)) {
		g_prefix_error(error, "libvirtd-session.sh %s: %s: ", verb, err);
		return FALSE;
	}
	if (ret_stdout != NULL)
		*ret_stdout = g_strstrip(g_steal_pointer(&out));
	return TRUE;
}

static void
virsh(Daemon *d, const char *arg1, const char *arg2)
{
	const char *argv[] = {d->virsh, "-q", "-c", d->uri, arg1, arg2, NULL};
	g_autoptr(GError) error = NULL;
	g_autofree char *err = NULL;
	int status = 0;

	g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
				   NULL, NULL, &err, &status, &error));
	g_assert_no_error(error);
	if (!g_spawn_check_wait_status(status, &error))
		g_error("virsh %s %s: %s", arg1, arg2, err);
}

static void
daemon_setup(Daemon *d, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *libvirtd = g_find_program_in_path("libvirtd");

	memset(d, 0, sizeof(*d));
	d->virsh = g_find_program_in_path("virsh");
	if (libvirtd == NULL && !g_file_test("/usr/sbin/libvirtd", G_FILE_TEST_IS_EXECUTABLE)) {
		g_test_skip("libvirtd is not installed");
		return;
	}
	if (d->virsh == NULL) {
		g_test_skip("virsh is not installed");
		return;
	}
	d->script = g_test_build_filename(G_TEST_DIST, "lib", "libvirtd-session.sh", NULL);
	d->dir = vc_test_dir_make("vc-virt-libvirtd-XXXXXX");
	g_assert_true(run_helper(d, "socket", &d->socket, &error));
	g_assert_no_error(error);
	d->uri = g_strdup_printf("test+unix:///default?socket=%s", d->socket);
	d->domxml_path = g_build_filename(d->dir, "dom.xml", NULL);
	fixture_init(&d->f, d->uri);
}

static void
daemon_teardown(Daemon *d, gconstpointer data)
{
	if (d->dir != NULL) {
		g_autoptr(GError) error = NULL;
		gboolean stopped;
		fixture_clear(&d->f);
		stopped = run_helper(d, "stop", NULL, &error);
		vc_test_dir_remove(d->dir);
		g_assert_no_error(error);
		g_assert_true(stopped);
	}
	g_free(d->dir);
	g_free(d->script);
	g_free(d->socket);
	g_free(d->uri);
	g_free(d->virsh);
	g_free(d->domxml_path);
}

/* The domain lifecycle driven by another process arrives as events. */
static void
daemon_lifecycle_round(Daemon *d, const char *name, const char *uuid)
{
	Fixture *f = &d->f;
	g_autofree char *xml = domain_xml(name, uuid);
	g_autoptr(GError) error = NULL;
	guint base = f->events->len;

	g_assert_true(g_file_set_contents(d->domxml_path, xml, -1, &error));
	g_assert_no_error(error);
	/* virsh runs as root like this test: 0700 on the daemon's runtime
	 * directory does not stop root */
	virsh(d, "define", d->domxml_path);
	virsh(d, "start", name);
	virsh(d, "destroy", name);
	virsh(d, "undefine", name);
	g_assert_true(vc_test_wait_until(cond_n_events, f, GUINT_TO_POINTER(base + 4), 5000));
	assert_event(f, base + 0, uuid, VC_VIRT_EVENT_DEFINED, "added");
	g_assert_cmpstr(event_at(f, base)->name, ==, name);
	assert_event(f, base + 1, uuid, VC_VIRT_EVENT_STARTED, "booted");
	assert_event(f, base + 2, uuid, VC_VIRT_EVENT_STOPPED, "destroyed");
	assert_event(f, base + 3, uuid, VC_VIRT_EVENT_UNDEFINED, "removed");
}

static void
test_daemon_reconnect(Daemon *d, gconstpointer data)
{
	Fixture *f = &d->f;
	g_autoptr(GError) error = NULL;
	g_autofree char *sock = NULL;
	g_autoptr(GPtrArray) domains = NULL;
	gint64 t0;

	if (d->dir == NULL)
		return;

	/* started before the daemon: retries until it appears */
	vc_virt_start(f->virt);
	vc_test_spin(400);
	g_assert_cmpuint(f->n_connected, ==, 0);
	g_assert_false(vc_virt_is_connected(f->virt));

	t0 = g_get_monotonic_time();
	g_assert_true(run_helper(d, "start", &sock, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(sock, ==, d->socket);
	g_assert_true(vc_test_wait_until(cond_connected, f, GUINT_TO_POINTER(1), 5000));
	g_test_message("first connect %.3f s after starting libvirtd",
		       (f->connected_at - t0) / 1e6);
	g_assert_true(f->connected_seen_by_callback);

	daemon_lifecycle_round(d, "vc-remote-1", "7f0e3f2c-5b3e-4a5c-9a51-0d3c1e7a2b01");
	domains = vc_virt_list_domains(f->virt, TRUE, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(domains->len, ==, 1); /* the driver's own "test" */

	/* a crash of libvirtd */
	t0 = g_get_monotonic_time();
	g_assert_true(run_helper(d, "kill", NULL, &error));
	g_assert_no_error(error);
	g_assert_true(vc_test_wait_until(cond_disconnected, f, GUINT_TO_POINTER(1), 5000));
	g_test_message("disconnected %.3f s after SIGKILL", (f->disconnected_at - t0) / 1e6);
	g_assert_false(vc_virt_is_connected(f->virt));
	g_clear_pointer(&domains, g_ptr_array_unref);
	g_assert_null(vc_virt_list_domains(f->virt, FALSE, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE);
	g_clear_error(&error);

	/* down long enough for the backoff to reach its cap */
	vc_test_spin(2500);
	g_assert_cmpuint(f->n_connected, ==, 1);

	t0 = g_get_monotonic_time();
	g_assert_true(run_helper(d, "start", NULL, &error));
	g_assert_no_error(error);
	g_assert_true(vc_test_wait_until(cond_connected, f, GUINT_TO_POINTER(2), 5000));
	g_test_message("reconnected %.3f s after restarting libvirtd",
		       (f->connected_at - t0) / 1e6);
	g_assert_cmpint(f->connected_at - t0, <, 5 * G_USEC_PER_SEC);
	g_assert_true(f->connected_seen_by_callback);
	g_assert_cmpuint(f->n_disconnected, ==, 1);

	/* events are registered again on the new connection */
	daemon_lifecycle_round(d, "vc-remote-2", "7f0e3f2c-5b3e-4a5c-9a51-0d3c1e7a2b02");

	/* an orderly stop is a loss too */
	g_assert_true(run_helper(d, "stop", NULL, &error));
	g_assert_no_error(error);
	g_assert_true(vc_test_wait_until(cond_disconnected, f, GUINT_TO_POINTER(2), 5000));
	g_assert_true(run_helper(d, "start", NULL, &error));
	g_assert_no_error(error);
	g_assert_true(vc_test_wait_until(cond_connected, f, GUINT_TO_POINTER(3), 5000));
	g_assert_cmpuint(f->n_disconnected, ==, 2);
}

/* Listing over a real RPC connection: the cost without XML does not grow
 * with a call per domain. */
static void
test_daemon_list(Daemon *d, gconstpointer data)
{
	Fixture *f = &d->f;
	guint n = g_test_slow() ? 10000 : 1000;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) without = NULL;
	g_autoptr(GPtrArray) with = NULL;
	virConnectPtr conn;
	gint64 t0;

	if (d->dir == NULL)
		return;
	g_assert_true(run_helper(d, "start", NULL, &error));
	g_assert_no_error(error);
	vc_virt_start(f->virt);
	g_assert_true(vc_test_wait_until(cond_connected, f, GUINT_TO_POINTER(1), 5000));

	conn = vc_virt_ref_connection(f->virt, &error);
	g_assert_no_error(error);
	t0 = g_get_monotonic_time();
	for (guint i = 0; i < n; i++) {
		g_autofree char *name = g_strdup_printf("vc-bulk-%05u", i);
		g_autofree char *uuid =
		    g_strdup_printf("7f0e3f2c-5b3e-4a5c-9a51-%012x", 0xb00000u + i);
		define_domain(conn, name, uuid);
	}
	g_test_message("defined %u domains over RPC in %.3f s", n,
		       (g_get_monotonic_time() - t0) / 1e6);
	virConnectClose(conn);

	t0 = g_get_monotonic_time();
	without = vc_virt_list_domains(f->virt, FALSE, &error);
	g_assert_no_error(error);
	g_test_message("listed %u domains without XML in %.3f s", without->len,
		       (g_get_monotonic_time() - t0) / 1e6);
	g_assert_cmpuint(without->len, ==, n + 1);

	t0 = g_get_monotonic_time();
	with = vc_virt_list_domains(f->virt, TRUE, &error);
	g_assert_no_error(error);
	g_test_message("listed %u domains with XML in %.3f s", with->len,
		       (g_get_monotonic_time() - t0) / 1e6);
	g_assert_cmpuint(with->len, ==, n + 1);

	/* every define was announced */
	g_assert_true(vc_test_wait_until(cond_n_events, f, GUINT_TO_POINTER(n), 20000));
}

/* A daemon that hangs (SIGSTOP) keeps its socket open: only keepalive
 * (5 s x 3) notices. Reconnecting must not block the main loop meanwhile,
 * and succeeds once the daemon runs again. Slow: about 20 s. */
static void
test_daemon_hung(Daemon *d, gconstpointer data)
{
	Fixture *f = &d->f;
	g_autoptr(GError) error = NULL;
	g_autofree char *pidfile = NULL;
	g_autofree char *pidstr = NULL;
	gint64 t0;
	pid_t pid;

	if (d->dir == NULL)
		return;
	if (!g_test_slow()) {
		g_test_skip("takes 20 s; run with -m slow");
		return;
	}
	g_assert_true(run_helper(d, "start", NULL, &error));
	g_assert_no_error(error);
	vc_virt_start(f->virt);
	g_assert_true(vc_test_wait_until(cond_connected, f, GUINT_TO_POINTER(1), 5000));

	pidfile = g_build_filename(d->dir, "libvirtd.pid", NULL);
	g_assert_true(g_file_get_contents(pidfile, &pidstr, NULL, &error));
	g_assert_no_error(error);
	pid = (pid_t)g_ascii_strtoll(pidstr, NULL, 10);
	g_assert_cmpint(pid, >, 1);

	t0 = g_get_monotonic_time();
	g_assert_cmpint(kill(pid, SIGSTOP), ==, 0);
	g_assert_true(vc_test_wait_until(cond_disconnected, f, GUINT_TO_POINTER(1), 30000));
	g_test_message("hung daemon noticed after %.3f s", (f->disconnected_at - t0) / 1e6);
	/* the main loop kept running: a timer of ours fires on time */
	t0 = g_get_monotonic_time();
	vc_test_spin(1000);
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 1500 * 1000);
	g_assert_cmpuint(f->n_connected, ==, 1);

	t0 = g_get_monotonic_time();
	g_assert_cmpint(kill(pid, SIGCONT), ==, 0);
	g_assert_true(vc_test_wait_until(cond_connected, f, GUINT_TO_POINTER(2), 5000));
	g_test_message("reconnected %.3f s after SIGCONT", (f->connected_at - t0) / 1e6);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

	g_test_add_func("/virt/mapping/lifecycle", test_mapping_lifecycle);
	g_test_add_func("/virt/mapping/agent-metadata", test_mapping_agent);
	g_test_add_func("/virt/not-connected", test_not_connected);
	g_test_add_func("/virt/connect-failure", test_connect_failure);
	g_test_add("/virt/test-driver/lifecycle", TestDriver, NULL, test_driver_setup,
		   test_driver_lifecycle, test_driver_teardown);
	g_test_add("/virt/test-driver/transient", TestDriver, NULL, test_driver_setup,
		   test_driver_transient, test_driver_teardown);
	g_test_add("/virt/test-driver/metadata", TestDriver, NULL, test_driver_setup,
		   test_driver_metadata, test_driver_teardown);
	g_test_add("/virt/test-driver/list", TestDriver, GUINT_TO_POINTER(2000), test_driver_setup,
		   test_driver_list, test_driver_teardown);
	g_test_add("/virt/libvirtd/reconnect", Daemon, NULL, daemon_setup, test_daemon_reconnect,
		   daemon_teardown);
	g_test_add("/virt/libvirtd/list", Daemon, NULL, daemon_setup, test_daemon_list,
		   daemon_teardown);
	g_test_add("/virt/libvirtd/hung", Daemon, NULL, daemon_setup, test_daemon_hung,
		   daemon_teardown);
	return g_test_run();
}
