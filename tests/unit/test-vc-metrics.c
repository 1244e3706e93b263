/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "vc-metrics.h"
#include "vc-test-util.h"

/* The exposition text, line by line, as Prometheus reads it. */

static void
assert_has_line(const char *text, const char *line)
{
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++)
		if (strcmp(lines[i], line) == 0)
			return;
	g_error("line \"%s\" not in:\n%s", line, text);
}

static void
test_counters_and_gauges(void)
{
	g_autoptr(VcMetrics) m = vc_metrics_new();
	VcMetric *issued = vc_metrics_add_counter(m, "vc_issued_total", "Issued.", NULL);
	VcMetric *revoked = vc_metrics_add_counter(m, "vc_revoked_total", "Revoked.", "reason");
	VcMetric *temp = vc_metrics_add_gauge(m, "vc_seconds", "Seconds \\ left\nnow.", "what");
	g_autofree char *text = NULL;

	/* the same name twice is the same family */
	g_assert_true(vc_metrics_add_counter(m, "vc_issued_total", "Issued.", NULL) == issued);
	vc_metric_declare(revoked, "superseded");
	vc_metric_declare(revoked, "keyCompromise");
	vc_metric_add(issued, NULL, 2);
	vc_metric_add(revoked, "keyCompromise", 1);
	vc_metric_set(temp, "a\"b", -1.5);
	vc_metric_set(temp, "ca", 1e20);
	text = vc_metrics_to_text(m);
	assert_has_line(text, "# TYPE vc_issued_total counter");
	assert_has_line(text, "vc_issued_total 2");
	/* declared series are there at zero */
	assert_has_line(text, "vc_revoked_total{reason=\"superseded\"} 0");
	assert_has_line(text, "vc_revoked_total{reason=\"keyCompromise\"} 1");
	assert_has_line(text, "# HELP vc_seconds Seconds \\\\ left\\nnow.");
	assert_has_line(text, "vc_seconds{what=\"a\\\"b\"} -1.5");
	assert_has_line(text, "vc_seconds{what=\"ca\"} 1e+20");
	g_assert_cmpfloat(vc_metric_get(revoked, "keyCompromise"), ==, 1);

	/* a cleared gauge disappears, HELP and TYPE included */
	vc_metric_clear(temp);
	g_free(text);
	text = vc_metrics_to_text(m);
	g_assert_null(strstr(text, "vc_seconds"));
}

static void
test_histogram(void)
{
	g_autoptr(VcMetrics) m = vc_metrics_new();
	const double bounds[] = {0.01, 0.1, 1};
	VcMetric *h = vc_metrics_add_histogram(m, "vc_latency_seconds", "Latency.", bounds, 3);
	g_autofree char *text = NULL;

	vc_metric_observe(h, 0.005);
	vc_metric_observe(h, 0.01); /* le is inclusive */
	vc_metric_observe(h, 0.5);
	vc_metric_observe(h, 7);
	text = vc_metrics_to_text(m);
	assert_has_line(text, "# TYPE vc_latency_seconds histogram");
	assert_has_line(text, "vc_latency_seconds_bucket{le=\"0.01\"} 2");
	assert_has_line(text, "vc_latency_seconds_bucket{le=\"0.1\"} 2");
	assert_has_line(text, "vc_latency_seconds_bucket{le=\"1\"} 3");
	assert_has_line(text, "vc_latency_seconds_bucket{le=\"+Inf\"} 4");
	assert_has_line(text, "vc_latency_seconds_sum 7.515");
	assert_has_line(text, "vc_latency_seconds_count 4");
}

static void
collect(VcMetrics *m, gpointer user_data)
{
	guint *calls = user_data;
	(*calls)++;
	vc_metric_set(vc_metrics_add_gauge(m, "vc_calls", "Collector calls.", NULL), NULL, *calls);
}

static void
test_collector(void)
{
	g_autoptr(VcMetrics) m = vc_metrics_new();
	guint calls = 0;
	g_autofree char *a = NULL;
	g_autofree char *b = NULL;

	vc_metrics_add_collector(m, collect, &calls);
	a = vc_metrics_to_text(m);
	assert_has_line(a, "vc_calls 1");
	vc_metrics_remove_collectors(m, &calls);
	b = vc_metrics_to_text(m);
	assert_has_line(b, "vc_calls 1");
	g_assert_cmpuint(calls, ==, 1);
}

static gpointer
observe_many(gpointer data)
{
	VcMetric *c = data;
	for (int i = 0; i < 10000; i++)
		vc_metric_add(c, NULL, 1);
	return NULL;
}

static void
test_threads(void)
{
	g_autoptr(VcMetrics) m = vc_metrics_new();
	VcMetric *c = vc_metrics_add_counter(m, "vc_n_total", "N.", NULL);
	GThread *t[4];

	for (int i = 0; i < 4; i++)
		t[i] = g_thread_new("observe", observe_many, c);
	for (int i = 0; i < 4; i++)
		g_thread_join(t[i]);
	g_assert_cmpfloat(vc_metric_get(c, NULL), ==, 40000);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/metrics/counters-and-gauges", test_counters_and_gauges);
	g_test_add_func("/metrics/histogram", test_histogram);
	g_test_add_func("/metrics/collector", test_collector);
	g_test_add_func("/metrics/threads", test_threads);
	return g_test_run();
}
