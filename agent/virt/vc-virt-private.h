/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Internal to agent/virt and its tests: how raw libvirt events become
 * VcVirtEvent. Exposed so the mapping of events that need a real hypervisor
 * to happen (migration, guest agent) can be tested without one. */

#include "vc-virt.h"

/* Fills kind, detail, detail_str and the flags of event from a lifecycle
 * event; FALSE if the event type is unknown (a newer libvirt). */
gboolean vc_virt_event_init_lifecycle(VcVirtEvent *event, int type, int detail);
/* Same for VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE; FALSE for an unknown state. */
gboolean vc_virt_event_init_agent(VcVirtEvent *event, int state, int reason);
/* Same for VIR_DOMAIN_EVENT_ID_METADATA_CHANGE. */
void vc_virt_event_init_metadata(VcVirtEvent *event, int type, const char *ns_uri);
