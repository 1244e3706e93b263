/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* VcVirt: one libvirt connection that stays up.
 *
 * It opens the connection, keeps it alive (keepalive 5 s x 3), delivers domain
 * lifecycle, guest agent and metadata events as VcVirtEvent, and when the
 * connection is lost (libvirtd restarted or killed) or cannot be opened it
 * reconnects with backoff (250 ms doubling to a 2 s cap).
 *
 * Threading: create, start and free a VcVirt on the thread that runs the GLib
 * default main context; all callbacks run there, from the main loop, never
 * from inside a vc_virt_*() call. Do not free the VcVirt from inside one of
 * its callbacks. The query and metadata functions are thread-safe and may be
 * called from worker threads (they are blocking libvirt calls).
 *
 * Order: connected(), then events, then disconnected(), then (after a
 * reconnect) connected() again. Events are delivered only while connected;
 * whatever happened while disconnected must be found by reconciling. */

#include <gio/gio.h>
#include <libvirt/libvirt.h>

G_BEGIN_DECLS

typedef enum {
	VC_VIRT_EVENT_DEFINED,
	VC_VIRT_EVENT_UNDEFINED,
	VC_VIRT_EVENT_STARTED,
	VC_VIRT_EVENT_STOPPED,
	VC_VIRT_EVENT_SUSPENDED,
	VC_VIRT_EVENT_RESUMED,
	VC_VIRT_EVENT_SHUTDOWN,
	VC_VIRT_EVENT_PMSUSPENDED,
	VC_VIRT_EVENT_CRASHED,
	VC_VIRT_EVENT_AGENT_CONNECTED,
	VC_VIRT_EVENT_AGENT_DISCONNECTED,
	VC_VIRT_EVENT_METADATA_CHANGED,
} VcVirtEventKind;

/* One event; valid only during the event callback (copy what you keep). */
typedef struct {
	const char *uuid; /* lower-case canonical UUID string */
	const char *name; /* domain name (the new name for DEFINED RENAMED) */
	VcVirtEventKind kind;
	/* The raw libvirt detail: virDomainEvent<Kind>DetailType for lifecycle
	 * kinds, virConnectDomainEventAgentLifecycleReason for AGENT_*,
	 * virDomainMetadataType for METADATA_CHANGED. */
	int detail;
	/* detail as a word, e.g. "booted", "migrated", "restored",
	 * "from-snapshot", "destroyed", "shutdown", "failed", "added", "updated",
	 * "removed", "renamed", "channel", "element"; "unknown" if unknown. */
	const char *detail_str;
	/* STARTED/STOPPED/SUSPENDED/RESUMED caused by a migration (detail
	 * MIGRATED, or the post-copy details). A STOPPED migrated means the VM
	 * now runs elsewhere; an UNDEFINED that follows it is not a deletion. */
	gboolean is_migration;
	/* DEFINED RENAMED (new name) or UNDEFINED RENAMED (old name): the UUID
	 * lives on, only the name changed. */
	gboolean is_rename;
	/* The guest's state was rolled back, files in it may be old: STARTED
	 * RESTORED, or FROM_SNAPSHOT on STARTED, STOPPED, SUSPENDED or RESUMED. */
	gboolean is_restore;
	/* METADATA_CHANGED only: the namespace URI of the changed element (NULL
	 * for <title>/<description> changes). */
	const char *metadata_ns_uri;
} VcVirtEvent;

typedef struct {
	/* After every successful (re)connect: reconcile now. */
	void (*connected)(gpointer user_data);
	/* The connection was lost; called only after a connected(). Events may
	 * have been missed until the next connected(). */
	void (*disconnected)(gpointer user_data);
	void (*event)(const VcVirtEvent *event, gpointer user_data);
} VcVirtCallbacks;

typedef struct {
	char *uuid; /* lower-case */
	char *name;
	gboolean active;
	gboolean persistent;
	char *xml; /* virDomainGetXMLDesc(flags 0); NULL when not asked for */
} VcVirtDomain;

typedef struct _VcVirt VcVirt;

/* The callbacks struct is copied; any member may be NULL. Nothing happens
 * before vc_virt_start(). */
VcVirt *vc_virt_new(const char *uri, const VcVirtCallbacks *callbacks, gpointer user_data);
/* Begins connecting (asynchronously, never blocks); a failed attempt is
 * retried with backoff forever. */
void vc_virt_start(VcVirt *virt);
/* Closes the connection; no callback runs after this returns. */
void vc_virt_free(VcVirt *virt);

gboolean vc_virt_is_connected(VcVirt *virt);
const char *vc_virt_get_uri(VcVirt *virt);
/* A new reference to the current connection (release it with
 * virConnectClose), for parts that call libvirt themselves, e.g. the guest
 * agent; VC_ERROR_UNAVAILABLE when not connected. */
virConnectPtr vc_virt_ref_connection(VcVirt *virt, GError **error);

/* A snapshot of all domains (active and inactive, persistent and transient),
 * as VcVirtDomain elements. with_xml = FALSE costs two libvirt calls whatever
 * the number of domains; with_xml = TRUE adds one per domain. A domain that
 * disappears while its XML is read is left out (it is gone). */
GPtrArray *vc_virt_list_domains(VcVirt *virt, gboolean with_xml, GError **error);
/* One domain by UUID; VC_ERROR_NOT_FOUND when there is no such domain. */
VcVirtDomain *vc_virt_get_domain(VcVirt *virt, const char *uuid, gboolean with_xml, GError **error);
char *vc_virt_get_domain_xml(VcVirt *virt, const char *uuid, GError **error);

/* Writes (xml_element non-NULL) or removes (NULL) the metadata element of
 * namespace ns_uri, serialized with prefix, in the persistent definition and,
 * when the domain runs, in the live one too (a transient domain has only the
 * live one). */
gboolean vc_virt_set_metadata(VcVirt *virt, const char *uuid, const char *xml_element,
			      const char *ns_uri, const char *prefix, GError **error);
/* The metadata element of namespace ns_uri (of the live definition when the
 * domain runs). VC_ERROR_NOT_FOUND when the domain or the element is absent
 * (the message says which; vc_virt_get_domain() tells for sure). */
char *vc_virt_get_metadata(VcVirt *virt, const char *uuid, const char *ns_uri, GError **error);

void vc_virt_domain_free(VcVirtDomain *domain);
const char *vc_virt_event_kind_to_string(VcVirtEventKind kind);

/* Errors of the functions above: VC_ERROR_NOT_FOUND (no such domain or
 * metadata), VC_ERROR_UNAVAILABLE (not connected, or the connection died
 * during the call: retry after the next connected()), VC_ERROR_LIBVIRT
 * (anything else, with libvirt's message). */

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcVirtDomain, vc_virt_domain_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcVirt, vc_virt_free)

G_END_DECLS
