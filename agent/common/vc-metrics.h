/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * A registry of metrics in the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/): counters
 * (names ending in _total), gauges and histograms (_bucket{le}, _sum,
 * _count), values in base units (seconds, bytes). Any part registers its
 * own families (the engine its issuance and delivery counters, the daemon
 * its CRL and expiry gauges, the OCSP responder its request counters) and
 * updates them from any thread; /metrics prints them all.
 *
 * Where a part gets the registry: the engine owns it
 * (vc_engine_get_metrics_registry()); the daemon hands it to whatever it
 * wires up. An OCSP responder, for instance, registers
 *   ocsp = vc_metrics_add_counter(m, "virtcert_ocsp_requests_total",
 *                                 "OCSP requests, by answer.", "answer");
 * declares "good", "revoked", "unknown", "malformed" with vc_metric_declare()
 * and counts each answer with vc_metric_add(ocsp, "good", 1).
 *
 * A family has at most one label. Every label value a family should show
 * at zero is declared up front with vc_metric_declare(), so that a
 * dashboard sees "0" rather than no series.
 */

typedef struct _VcMetrics VcMetrics;
typedef struct _VcMetric VcMetric;

VcMetrics *vc_metrics_new(void);
void vc_metrics_free(VcMetrics *metrics);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcMetrics, vc_metrics_free)

/* Registers a family, or returns the one already registered under NAME
 * (which must have the same type and label). LABEL is the label's name, or
 * NULL for a family of one series. The returned family lives as long as
 * METRICS. */
VcMetric *vc_metrics_add_counter(VcMetrics *metrics, const char *name, const char *help,
				 const char *label);
VcMetric *vc_metrics_add_gauge(VcMetrics *metrics, const char *name, const char *help,
			       const char *label);
/* BOUNDS: the buckets' upper bounds, increasing (+Inf is added). */
VcMetric *vc_metrics_add_histogram(VcMetrics *metrics, const char *name, const char *help,
				   const double *bounds, guint n_bounds);

/* Makes the series LABEL_VALUE (NULL for a family without label) exist at 0. */
void vc_metric_declare(VcMetric *metric, const char *label_value);
/* Counter: adds DELTA (>= 0). */
void vc_metric_add(VcMetric *metric, const char *label_value, double delta);
/* Gauge: sets the value. Counter: copies a count kept elsewhere (from a
 * collector), which must only grow. */
void vc_metric_set(VcMetric *metric, const char *label_value, double value);
/* Gauge: removes every series (a gauge with nothing to report). */
void vc_metric_clear(VcMetric *metric);
/* Histogram: counts one observation. */
void vc_metric_observe(VcMetric *metric, double value);
/* The value of a counter or gauge series (0 if it does not exist), or a
 * histogram's count. */
double vc_metric_get(VcMetric *metric, const char *label_value);

/* Called at every exposition, before the text is made, to set gauges that
 * are computed rather than counted (states, expiry times). Runs on the
 * thread that asked for the text; must not call vc_metrics_to_text(). */
typedef void (*VcMetricsCollectFunc)(VcMetrics *metrics, gpointer user_data);
void vc_metrics_add_collector(VcMetrics *metrics, VcMetricsCollectFunc func, gpointer user_data);
/* Removes every collector registered with USER_DATA (its owner goes away). */
void vc_metrics_remove_collectors(VcMetrics *metrics, gpointer user_data);

/* The exposition text, families in registration order. */
char *vc_metrics_to_text(VcMetrics *metrics);

G_END_DECLS
