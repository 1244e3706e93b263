/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-metrics.h"

#include <math.h>
#include <string.h>

typedef enum {
	VC_METRIC_COUNTER,
	VC_METRIC_GAUGE,
	VC_METRIC_HISTOGRAM,
} VcMetricType;

typedef struct {
	char *label_value; /* NULL for the family's only series */
	double value;
} VcMetricSeries;

struct _VcMetric {
	VcMetrics *metrics;
	VcMetricType type;
	char *name;
	char *help;
	char *label;
	GPtrArray *series; /* of VcMetricSeries, in order of first use */
	/* histograms */
	double *bounds;
	guint n_bounds;
	guint64 *counts; /* per bucket, not cumulative; [n_bounds] is +Inf */
	double sum;
	guint64 count;
};

typedef struct {
	VcMetricsCollectFunc func;
	gpointer user_data;
} VcMetricsCollector;

struct _VcMetrics {
	GMutex lock;
	GPtrArray *families; /* of VcMetric */
	GArray *collectors;  /* of VcMetricsCollector */
};

static void
vc_metric_series_free(VcMetricSeries *s)
{
	g_free(s->label_value);
	g_free(s);
}

static void
vc_metric_free(VcMetric *m)
{
	g_free(m->name);
	g_free(m->help);
	g_free(m->label);
	g_ptr_array_unref(m->series);
	g_free(m->bounds);
	g_free(m->counts);
	g_free(m);
}

VcMetrics *
vc_metrics_new(void)
{
	VcMetrics *metrics = g_new0(VcMetrics, 1);
	g_mutex_init(&metrics->lock);
	metrics->families = g_ptr_array_new_with_free_func((GDestroyNotify)vc_metric_free);
	metrics->collectors = g_array_new(FALSE, FALSE, sizeof(VcMetricsCollector));
	return metrics;
}

void
vc_metrics_free(VcMetrics *metrics)
{
	if (metrics == NULL)
		return;
	g_ptr_array_unref(metrics->families);
	g_array_unref(metrics->collectors);
	g_mutex_clear(&metrics->lock);
	g_free(metrics);
}

/* Prometheus metric and label names: [a-zA-Z_:][a-zA-Z0-9_:]* */
static gboolean
vc_metrics_name_ok(const char *name)
{
	if (name == NULL || !(g_ascii_isalpha(name[0]) || name[0] == '_' || name[0] == ':'))
		return FALSE;
	for (const char *p = name; *p != '\0'; p++)
		if (!(g_ascii_isalnum(*p) || *p == '_' || *p == ':'))
			return FALSE;
	return TRUE;
}

static VcMetric *
vc_metrics_add(VcMetrics *metrics, VcMetricType type, const char *name, const char *help,
	       const char *label)
{
	VcMetric *m;

	g_return_val_if_fail(metrics != NULL, NULL);
	g_return_val_if_fail(vc_metrics_name_ok(name), NULL);
	g_return_val_if_fail(label == NULL || vc_metrics_name_ok(label), NULL);
	g_return_val_if_fail(type != VC_METRIC_COUNTER || g_str_has_suffix(name, "_total"), NULL);

	g_mutex_lock(&metrics->lock);
	for (guint i = 0; i < metrics->families->len; i++) {
		m = g_ptr_array_index(metrics->families, i);
		if (strcmp(m->name, name) == 0) {
			g_mutex_unlock(&metrics->lock);
			g_return_val_if_fail(m->type == type && g_strcmp0(m->label, label) == 0,
					     NULL);
			return m;
		}
	}
	m = g_new0(VcMetric, 1);
	m->metrics = metrics;
	m->type = type;
	m->name = g_strdup(name);
	m->help = g_strdup(help);
	m->label = g_strdup(label);
	m->series = g_ptr_array_new_with_free_func((GDestroyNotify)vc_metric_series_free);
	g_ptr_array_add(metrics->families, m);
	g_mutex_unlock(&metrics->lock);
	return m;
}

VcMetric *
vc_metrics_add_counter(VcMetrics *metrics, const char *name, const char *help, const char *label)
{
	VcMetric *m = vc_metrics_add(metrics, VC_METRIC_COUNTER, name, help, label);
	if (m != NULL && label == NULL)
		vc_metric_declare(m, NULL);
	return m;
}

VcMetric *
vc_metrics_add_gauge(VcMetrics *metrics, const char *name, const char *help, const char *label)
{
	return vc_metrics_add(metrics, VC_METRIC_GAUGE, name, help, label);
}

VcMetric *
vc_metrics_add_histogram(VcMetrics *metrics, const char *name, const char *help,
			 const double *bounds, guint n_bounds)
{
	VcMetric *m;

	for (guint i = 1; i < n_bounds; i++)
		g_return_val_if_fail(bounds[i] > bounds[i - 1], NULL);
	m = vc_metrics_add(metrics, VC_METRIC_HISTOGRAM, name, help, NULL);
	if (m == NULL || m->bounds != NULL)
		return m;
	g_mutex_lock(&metrics->lock);
	m->bounds = g_memdup2(bounds, sizeof(double) * n_bounds);
	m->n_bounds = n_bounds;
	m->counts = g_new0(guint64, n_bounds + 1);
	g_mutex_unlock(&metrics->lock);
	return m;
}

/* The series LABEL_VALUE, made if needed; with the lock held. */
static VcMetricSeries *
vc_metric_series_locked(VcMetric *m, const char *label_value)
{
	VcMetricSeries *s;

	for (guint i = 0; i < m->series->len; i++) {
		s = g_ptr_array_index(m->series, i);
		if (g_strcmp0(s->label_value, label_value) == 0)
			return s;
	}
	s = g_new0(VcMetricSeries, 1);
	s->label_value = g_strdup(label_value);
	g_ptr_array_add(m->series, s);
	return s;
}

void
vc_metric_declare(VcMetric *metric, const char *label_value)
{
	g_return_if_fail(metric != NULL && metric->type != VC_METRIC_HISTOGRAM);
	g_return_if_fail((label_value == NULL) == (metric->label == NULL));
	g_mutex_lock(&metric->metrics->lock);
	vc_metric_series_locked(metric, label_value);
	g_mutex_unlock(&metric->metrics->lock);
}

void
vc_metric_add(VcMetric *metric, const char *label_value, double delta)
{
	g_return_if_fail(metric != NULL && metric->type == VC_METRIC_COUNTER);
	g_return_if_fail((label_value == NULL) == (metric->label == NULL));
	g_return_if_fail(delta >= 0);
	g_mutex_lock(&metric->metrics->lock);
	vc_metric_series_locked(metric, label_value)->value += delta;
	g_mutex_unlock(&metric->metrics->lock);
}

void
vc_metric_set(VcMetric *metric, const char *label_value, double value)
{
	g_return_if_fail(metric != NULL && metric->type != VC_METRIC_HISTOGRAM);
	g_return_if_fail((label_value == NULL) == (metric->label == NULL));
	g_mutex_lock(&metric->metrics->lock);
	vc_metric_series_locked(metric, label_value)->value = value;
	g_mutex_unlock(&metric->metrics->lock);
}

void
vc_metric_clear(VcMetric *metric)
{
	g_return_if_fail(metric != NULL && metric->type == VC_METRIC_GAUGE);
	g_mutex_lock(&metric->metrics->lock);
	g_ptr_array_set_size(metric->series, 0);
	g_mutex_unlock(&metric->metrics->lock);
}

void
vc_metric_observe(VcMetric *metric, double value)
{
	guint i;

	g_return_if_fail(metric != NULL && metric->type == VC_METRIC_HISTOGRAM);
	g_mutex_lock(&metric->metrics->lock);
	for (i = 0; i < metric->n_bounds && value > metric->bounds[i]; i++)
		;
	metric->counts[i]++;
	metric->count++;
	metric->sum += value;
	g_mutex_unlock(&metric->metrics->lock);
}

double
vc_metric_get(VcMetric *metric, const char *label_value)
{
	double v = 0;

	g_return_val_if_fail(metric != NULL, 0);
	g_mutex_lock(&metric->metrics->lock);
	if (metric->type == VC_METRIC_HISTOGRAM) {
		v = (double)metric->count;
	} else {
		for (guint i = 0; i < metric->series->len; i++) {
			VcMetricSeries *s = g_ptr_array_index(metric->series, i);
			if (g_strcmp0(s->label_value, label_value) == 0)
				v = s->value;
		}
	}
	g_mutex_unlock(&metric->metrics->lock);
	return v;
}

void
vc_metrics_add_collector(VcMetrics *metrics, VcMetricsCollectFunc func, gpointer user_data)
{
	VcMetricsCollector c = {func, user_data};
	g_return_if_fail(metrics != NULL && func != NULL);
	g_mutex_lock(&metrics->lock);
	g_array_append_val(metrics->collectors, c);
	g_mutex_unlock(&metrics->lock);
}

void
vc_metrics_remove_collectors(VcMetrics *metrics, gpointer user_data)
{
	g_return_if_fail(metrics != NULL);
	g_mutex_lock(&metrics->lock);
	for (guint i = metrics->collectors->len; i > 0; i--) {
		if (g_array_index(metrics->collectors, VcMetricsCollector, i - 1).user_data ==
		    user_data)
			g_array_remove_index(metrics->collectors, i - 1);
	}
	g_mutex_unlock(&metrics->lock);
}

/* A sample value: integers without a fraction, NaN and infinities as the
 * format spells them, the rest with 15 significant digits, C locale. */
static void
vc_metrics_append_value(GString *s, double v)
{
	char buf[G_ASCII_DTOSTR_BUF_SIZE];

	if (isnan(v))
		g_string_append(s, "NaN");
	else if (isinf(v))
		g_string_append(s, v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 1e15)
		g_string_append_printf(s, "%" G_GINT64_FORMAT, (gint64)v);
	else
		g_string_append(s, g_ascii_formatd(buf, sizeof(buf), "%.15g", v));
}

/* HELP text escapes backslash and newline; label values also the quote. */
static void
vc_metrics_append_escaped(GString *s, const char *text, gboolean quote)
{
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '\\')
			g_string_append(s, "\\\\");
		else if (*p == '\n')
			g_string_append(s, "\\n");
		else if (quote && *p == '"')
			g_string_append(s, "\\\"");
		else
			g_string_append_c(s, *p);
	}
}

static void
vc_metrics_append_family(GString *s, VcMetric *m)
{
	static const char *const type_names[] = {"counter", "gauge", "histogram"};

	if (m->type != VC_METRIC_HISTOGRAM && m->series->len == 0)
		return;
	g_string_append_printf(s, "# HELP %s ", m->name);
	vc_metrics_append_escaped(s, m->help != NULL ? m->help : "", FALSE);
	g_string_append_printf(s, "\n# TYPE %s %s\n", m->name, type_names[m->type]);
	if (m->type == VC_METRIC_HISTOGRAM) {
		guint64 cumulative = 0;
		for (guint i = 0; i <= m->n_bounds; i++) {
			cumulative += m->counts[i];
			g_string_append_printf(s, "%s_bucket{le=\"", m->name);
			vc_metrics_append_value(s, i < m->n_bounds ? m->bounds[i] : INFINITY);
			g_string_append_printf(s, "\"} %" G_GUINT64_FORMAT "\n", cumulative);
		}
		g_string_append_printf(s, "%s_sum ", m->name);
		vc_metrics_append_value(s, m->sum);
		g_string_append_printf(s, "\n%s_count %" G_GUINT64_FORMAT "\n", m->name, m->count);
		return;
	}
	for (guint i = 0; i < m->series->len; i++) {
		VcMetricSeries *series = g_ptr_array_index(m->series, i);
		g_string_append(s, m->name);
		if (m->label != NULL) {
			g_string_append_printf(s, "{%s=\"", m->label);
			vc_metrics_append_escaped(s, series->label_value, TRUE);
			g_string_append(s, "\"}");
		}
		g_string_append_c(s, ' ');
		vc_metrics_append_value(s, series->value);
		g_string_append_c(s, '\n');
	}
}

char *
vc_metrics_to_text(VcMetrics *metrics)
{
	g_autoptr(GString) s = g_string_new(NULL);
	g_autoptr(GArray) collectors = NULL;

	g_return_val_if_fail(metrics != NULL, NULL);
	/* collectors set gauges, which takes the lock: call them without it */
	g_mutex_lock(&metrics->lock);
	collectors = g_array_copy(metrics->collectors);
	g_mutex_unlock(&metrics->lock);
	for (guint i = 0; i < collectors->len; i++) {
		VcMetricsCollector *c = &g_array_index(collectors, VcMetricsCollector, i);
		c->func(metrics, c->user_data);
	}
	g_mutex_lock(&metrics->lock);
	for (guint i = 0; i < metrics->families->len; i++)
		vc_metrics_append_family(s, g_ptr_array_index(metrics->families, i));
	g_mutex_unlock(&metrics->lock);
	return g_string_free(g_steal_pointer(&s), FALSE);
}
