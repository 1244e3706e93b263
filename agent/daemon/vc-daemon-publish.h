/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What virtcertd publishes besides the engine's own: the host CA's CRL file
 * (for peers), the CA certificate (the leaves' caIssuers), the expiry gauges,
 * and the start-up warning about the URLs leaves carry. */

#include <glib.h>

#include "vc-ca.h"
#include "vc-config.h"
#include "vc-host.h"
#include "vc-http-server.h"
#include "vc-metrics.h"

G_BEGIN_DECLS

/* The host CA's CRL as a file ([host] crl), re-read when the file changes. */
/* This host's certificate for the hook's questions, without its key, read
 * again only when its certificate, CA bundle or CRL file changed (path,
 * inode, size, modification time), so an import or a new CRL counts at the
 * next question. Borrowed: valid until the next call. */
typedef struct _VcDaemonHostCache VcDaemonHostCache;
VcDaemonHostCache *vc_daemon_host_cache_new(void);
void vc_daemon_host_cache_free(VcDaemonHostCache *cache);
VcHost *vc_daemon_host_cache_get(VcDaemonHostCache *cache, const VcConfig *config, GError **error);

typedef struct _VcDaemonHostCrl VcDaemonHostCrl;

VcDaemonHostCrl *vc_daemon_host_crl_new(const char *path);
void vc_daemon_host_crl_free(VcDaemonHostCrl *hc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcDaemonHostCrl, vc_daemon_host_crl_free)
/* The CRL if NAME is "host-ca" or the id of its issuer (hex of the first 8
 * octets of the AKI); VC_ERROR_NOT_FOUND when NAME is something else or
 * there is no CRL file. */
VcHttpDocument *vc_daemon_host_crl_get(VcDaemonHostCrl *hc, const char *name, GError **error);

/* The DER of the CA certificate whose id is CA_ID; VC_ERROR_NOT_FOUND for
 * another id. */
GBytes *vc_daemon_ca_cert_der(VcCa *ca, const char *ca_id, GError **error);

/* Registers virtcert_ca_expiry_seconds and
 * virtcert_host_certificate_expiry_seconds (the host certificate is read at
 * each scrape; absent, the gauge is too). CONFIG and CA are borrowed and
 * must outlive METRICS' use of them (vc_metrics_remove_collectors(CA)). */
void vc_daemon_metrics_register(VcMetrics *metrics, const VcConfig *config, VcCa *ca);

/* Says once, at start, what URLs leaves will carry, and warns when they
 * carry none (naming [ca] public-url) or a loopback one. */
void vc_daemon_check_urls(const VcConfig *config, VcCa *ca);
/* With [placement] require-tls: warns when libvirt's qemu.conf (readable to
 * the daemon) does not make this host migrate over verified TLS; the hook
 * refuses incoming migrations then. */
void vc_daemon_check_tls(const VcConfig *config);

G_END_DECLS
