/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcert-bench ocsp: the daemon's OCSP path (libsoup server on the main
 * loop, the responder with its presigned answers) against a store of COUNT
 * real certificates, asked over HTTP/1.1 keep-alive by one client thread;
 * then revocations, each timed from the revocation call to the first
 * revoked answer the client reads; beside the raw signing rate of the same
 * key type. */
#include "vc-bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ocsp.h>

#include "vc-error.h"
#include "vc-http-server.h"
#include "vc-ocsp.h"
#include "vc-ocsp-http.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(OCSP_CERTID, OCSP_CERTID_free)

typedef struct {
	VcOcspResponder *ocsp;
	VcIssuer *issuer;
	guint16 port;
	GPtrArray *requests; /* GBytes: one no-nonce request per sampled certificate */
	GPtrArray *serials;  /* their serials, same order */
	guint n_requests;
	guint n_revocations;
	/* results, written by the client thread */
	double responses_per_s;
	GArray *revoke_ms; /* double */
	guint64 bad_answers;
	char *error;
	GMainLoop *loop;
} VcBenchOcsp;

static void
vc_bench_ocsp_http(GBytes *request, VcHttpOcspReply *ret_reply, gpointer user_data)
{
	VcBenchOcsp *b = user_data;
	vc_ocsp_http_reply(b->ocsp, request, ret_reply);
}

/* One POST on the kept-alive connection FD; the body into BODY. */
static gboolean
vc_bench_ocsp_post(int fd, GBytes *request, GByteArray *body, GString *scratch)
{
	char head[256];
	int n = g_snprintf(head, sizeof(head),
			   "POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			   "Content-Type: application/ocsp-request\r\n"
			   "Content-Length: %" G_GSIZE_FORMAT "\r\n\r\n",
			   g_bytes_get_size(request));
	gsize have = 0, want = 0;
	const char *end = NULL;
	guint8 buf[1024]; /* small: ASan builds pad every array on the stack */

	g_string_truncate(scratch, 0);
	g_string_append_len(scratch, head, n);
	g_string_append_len(scratch, g_bytes_get_data(request, NULL),
			    (gssize)g_bytes_get_size(request));
	if (send(fd, scratch->str, scratch->len, MSG_NOSIGNAL) != (gssize)scratch->len)
		return FALSE;
	g_string_truncate(scratch, 0);
	for (;;) {
		gssize r = recv(fd, buf, sizeof(buf), 0);
		if (r <= 0)
			return FALSE;
		g_string_append_len(scratch, (const char *)buf, r);
		if (end == NULL && (end = strstr(scratch->str, "\r\n\r\n")) != NULL) {
			const char *cl = strcasestr(scratch->str, "\r\nContent-Length:");
			if (cl == NULL || cl > end)
				return FALSE;
			want = (gsize)g_ascii_strtoull(cl + 17, NULL, 10);
			have = (gsize)(end + 4 - scratch->str);
		}
		if (end != NULL && scratch->len >= have + want)
			break;
	}
	g_byte_array_set_size(body, 0);
	g_byte_array_append(body, (const guint8 *)scratch->str + have, (guint)want);
	return TRUE;
}

static int
vc_bench_ocsp_status(GByteArray *body)
{
	const unsigned char *p = body->data;
	g_autoptr(OCSP_RESPONSE) resp = d2i_OCSP_RESPONSE(NULL, &p, body->len);
	g_autoptr(OCSP_BASICRESP) bs = resp != NULL ? OCSP_response_get1_basic(resp) : NULL;
	OCSP_SINGLERESP *single;
	int reason = -1;

	if (bs == NULL || (single = OCSP_resp_get0(bs, 0)) == NULL)
		return -1;
	return OCSP_single_get0_status(single, &reason, NULL, NULL, NULL);
}

typedef struct {
	VcBenchOcsp *b;
	const char *serial;
} VcBenchRevoke;

/* On the main loop, where the daemon revokes: durable in the store, then
 * the responder told (the daemon's "revoked" notify). */
static gboolean
vc_bench_ocsp_revoke_cb(gpointer data)
{
	VcBenchRevoke *rv = data;
	g_autoptr(GError) error = NULL;

	if (!vc_issuer_revoke(rv->b->issuer, rv->serial, VC_REASON_KEY_COMPROMISE, &error))
		g_warning("revoke %s: %s", rv->serial, error->message);
	vc_ocsp_responder_forget(rv->b->ocsp, rv->serial);
	g_free(rv);
	return G_SOURCE_REMOVE;
}

static gboolean
vc_bench_ocsp_quit_cb(gpointer data)
{
	g_main_loop_quit(data);
	return G_SOURCE_REMOVE;
}

static gpointer
vc_bench_ocsp_client(gpointer data)
{
	VcBenchOcsp *b = data;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(b->port)};
	g_autoptr(GByteArray) body = g_byte_array_new();
	g_autoptr(GString) scratch = g_string_sized_new(8192);
	g_autoptr(GPtrArray) seen = NULL;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	gint64 start;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		b->error = g_strdup_printf("connect: %s", g_strerror(errno));
		goto out;
	}
	/* throughput: cached answers, round-robin over the sampled certificates.
	 * Each answer is parsed in full the first time; after that an answer
	 * octet-identical to the checked one needs no parsing (a client that
	 * parsed everything would measure its own ASN.1 decoder, not the
	 * server), a different one (re-signed) is parsed again. */
	seen = g_ptr_array_new_full(b->requests->len, (GDestroyNotify)g_bytes_unref);
	for (guint i = 0; i < b->requests->len; i++)
		g_ptr_array_add(seen, NULL);
	start = g_get_monotonic_time();
	for (guint i = 0; i < b->n_requests; i++) {
		guint k = i % b->requests->len;
		GBytes *req = g_ptr_array_index(b->requests, k);
		GBytes *known = g_ptr_array_index(seen, k);
		if (!vc_bench_ocsp_post(fd, req, body, scratch)) {
			b->error = g_strdup("the connection broke during the throughput run");
			goto out;
		}
		if (known != NULL && g_bytes_get_size(known) == body->len &&
		    memcmp(g_bytes_get_data(known, NULL), body->data, body->len) == 0)
			continue;
		if (vc_bench_ocsp_status(body) != V_OCSP_CERTSTATUS_GOOD) {
			b->bad_answers++;
			continue;
		}
		g_ptr_array_index(seen, k) = g_bytes_new(body->data, body->len);
		if (known != NULL)
			g_bytes_unref(known);
	}
	b->responses_per_s =
	    b->n_requests / ((double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC);

	/* revocation to the first revoked answer, polled as fast as one client can */
	for (guint k = 0; k < b->n_revocations && k < b->serials->len; k++) {
		VcBenchRevoke *rv = g_new0(VcBenchRevoke, 1);
		GBytes *req = g_ptr_array_index(b->requests, k);
		gint64 t0 = g_get_monotonic_time();
		double ms;
		rv->b = b;
		rv->serial = g_ptr_array_index(b->serials, k);
		g_main_context_invoke(NULL, vc_bench_ocsp_revoke_cb, rv);
		for (;;) {
			if (!vc_bench_ocsp_post(fd, req, body, scratch)) {
				b->error = g_strdup("the connection broke during revocations");
				goto out;
			}
			if (vc_bench_ocsp_status(body) == V_OCSP_CERTSTATUS_REVOKED)
				break;
			if (g_get_monotonic_time() - t0 > 10 * G_USEC_PER_SEC) {
				b->error =
				    g_strdup_printf("serial %s not revoked after 10 s", rv->serial);
				goto out;
			}
		}
		ms = (double)(g_get_monotonic_time() - t0) / 1000.0;
		g_array_append_val(b->revoke_ms, ms);
	}
out:
	if (fd >= 0)
		close(fd);
	g_idle_add(vc_bench_ocsp_quit_cb, b->loop);
	return NULL;
}

static gboolean
vc_bench_ocsp_issue(VcIssuer *issuer, VcCa *ca, gint count, guint sample, VcBenchOcsp *b,
		    GError **error)
{
	g_autoptr(EVP_PKEY) key = vc_key_generate(VC_KEY_TYPE_EC_P256, error);
	X509 *ca_cert = vc_ca_get_cert(ca);
	guint stride = MAX(1, (guint)count / sample);

	if (key == NULL)
		return FALSE;
	for (gint done = 0; done < count;) {
		guint n = (guint)MIN(1000, count - done);
		/* guest keygen's path: one public key for all, so the setup is
		 * signing and storing, not 100,000 key generations */
		g_autoptr(GPtrArray) results =
		    vc_bench_issue_batch(issuer, done, n, VC_KEY_TYPE_EC_P256, key, error);
		if (results == NULL)
			return FALSE;
		for (guint i = 0; i < n; i++) {
			VcIssued *r = g_ptr_array_index(results, i);
			g_autoptr(OCSP_CERTID) id = NULL;
			g_autoptr(OCSP_REQUEST) req = NULL;
			unsigned char *der = NULL;
			int len;
			if (r->error != NULL) {
				g_set_error(error, VC_ERROR, VC_ERROR_FAILED, "issuance failed: %s",
					    r->error->message);
				return FALSE;
			}
			if ((done + (gint)i) % stride != 0 || b->requests->len >= sample)
				continue;
			id = OCSP_cert_to_id(EVP_sha1(), r->cert, ca_cert);
			req = OCSP_REQUEST_new();
			OCSP_request_add0_id(req, g_steal_pointer(&id));
			len = i2d_OCSP_REQUEST(req, &der);
			g_ptr_array_add(b->requests, g_bytes_new(der, (gsize)len));
			OPENSSL_free(der);
			g_ptr_array_add(b->serials, g_strdup(r->serial));
		}
		done += (gint)n;
	}
	return TRUE;
}

gboolean
vc_bench_ocsp(int argc, char **argv, GError **error)
{
	gint count = 100000, requests = 50000, revocations = 200;
	g_autoptr(VcBenchState) st = NULL;
	VcStore *store;
	VcCa *ca;
	VcIssuer *issuer;
	g_autoptr(VcOcspResponder) ocsp = NULL;
	g_autoptr(VcHttpServer) http = NULL;
	g_autoptr(JsonBuilder) jb = json_builder_new();
	VcOcspOptions ocsp_opts = {0};
	VcHttpServerOptions http_opts = {.address = "127.0.0.1:0"};
	VcHttpCallbacks cb = {.ocsp = vc_bench_ocsp_http};
	VcBenchOcsp b = {0};
	GThread *client;
	double raw, issue_s, presign_s, p50, p99, max, in_process;
	gint64 t;
	struct rusage ru;
	gboolean ok = FALSE;
	const GOptionEntry entries[] = {{"count", 0, 0, G_OPTION_ARG_INT, &count,
					 "Certificates in the store (default 100000)", "N"},
					{"requests", 0, 0, G_OPTION_ARG_INT, &requests,
					 "OCSP requests over HTTP (default 50000)", "N"},
					{"revocations", 0, 0, G_OPTION_ARG_INT, &revocations,
					 "Revocations timed (default 200)", "N"},
					{NULL}};

	if (!vc_bench_parse("ocsp", "[--count N] [--requests N] [--revocations N]", entries, &argc,
			    &argv, error))
		return FALSE;
	if (count < 1 || requests < 1 || revocations < 1 || revocations > count) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "--count, --requests and --revocations must be >= 1, and "
				    "--revocations at most --count");
		return FALSE;
	}
	st = vc_bench_state_new(VC_KEY_TYPE_EC_P256, error);
	if (st == NULL)
		return FALSE;
	ca = st->ca;
	store = st->store;
	issuer = st->issuer;
	b.requests = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	b.serials = g_ptr_array_new_with_free_func(g_free);
	b.revoke_ms = g_array_new(FALSE, FALSE, sizeof(double));
	b.n_requests = (guint)requests;
	b.n_revocations = (guint)revocations;
	raw = vc_bench_raw_sign_per_s(VC_KEY_TYPE_EC_P256, 1.0, error);
	if (raw <= 0)
		goto out;

	t = g_get_monotonic_time();
	if (!vc_bench_ocsp_issue(issuer, ca, count, MAX((guint)revocations, 1000), &b, error))
		goto out;
	issue_s = (double)(g_get_monotonic_time() - t) / G_USEC_PER_SEC;

	/* the daemon's startup: every VALID certificate's answer signed ahead */
	ocsp = vc_ocsp_responder_new(ca, store, &ocsp_opts, error);
	if (ocsp == NULL)
		goto out;
	t = g_get_monotonic_time();
	while (vc_ocsp_responder_presign_step(ocsp, 256, error))
		;
	if (error != NULL && *error != NULL)
		goto out;
	presign_s = (double)(g_get_monotonic_time() - t) / G_USEC_PER_SEC;

	/* the hot path alone, in process: what HTTP adds is the rest */
	t = g_get_monotonic_time();
	for (gint i = 0; i < requests; i++) {
		GBytes *req = g_ptr_array_index(b.requests, (guint)i % b.requests->len);
		g_autoptr(VcOcspAnswer) answer = vc_ocsp_responder_answer(
		    ocsp, g_bytes_get_data(req, NULL), g_bytes_get_size(req));
		if (answer->kind != VC_OCSP_ANSWER_GOOD) {
			g_set_error(error, VC_ERROR, VC_ERROR_FAILED, "in-process answer %d: %s", i,
				    vc_ocsp_answer_kind_to_string(answer->kind));
			goto out;
		}
	}
	in_process = requests / ((double)(g_get_monotonic_time() - t) / G_USEC_PER_SEC);

	b.ocsp = ocsp;
	b.issuer = issuer;
	http = vc_http_server_new(&http_opts, &cb, &b, error);
	if (http == NULL)
		goto out;
	b.port = vc_http_server_get_plain_port(http);
	b.loop = g_main_loop_new(NULL, FALSE);
	client = g_thread_new("ocsp-client", vc_bench_ocsp_client, &b);
	g_main_loop_run(b.loop);
	g_thread_join(client);
	if (b.error != NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_FAILED, "%s", b.error);
		goto out;
	}
	if (b.bad_answers > 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_FAILED,
			    "%" G_GUINT64_FORMAT " answers were not \"good\"", b.bad_answers);
		goto out;
	}
	g_array_sort(b.revoke_ms, vc_bench_cmp_double);
	p50 = g_array_index(b.revoke_ms, double, b.revoke_ms->len / 2);
	p99 = g_array_index(b.revoke_ms, double, (b.revoke_ms->len * 99) / 100);
	max = g_array_index(b.revoke_ms, double, b.revoke_ms->len - 1);
	getrusage(RUSAGE_SELF, &ru);

	json_builder_begin_object(jb);
#define MEMBER_D(name, v)                                                                          \
	do {                                                                                       \
		json_builder_set_member_name(jb, name);                                            \
		json_builder_add_double_value(jb, v);                                              \
	} while (0)
	json_builder_set_member_name(jb, "benchmark");
	json_builder_add_string_value(jb, "ocsp");
	json_builder_set_member_name(jb, "certificates");
	json_builder_add_int_value(jb, count);
	json_builder_set_member_name(jb, "requests");
	json_builder_add_int_value(jb, requests);
	MEMBER_D("responses_per_s", b.responses_per_s);
	MEMBER_D("target_responses_per_s", 5000);
	MEMBER_D("in_process_answers_per_s", in_process);
	json_builder_set_member_name(jb, "revocations");
	json_builder_add_int_value(jb, b.revoke_ms->len);
	MEMBER_D("revoke_to_visible_p50_ms", p50);
	MEMBER_D("revoke_to_visible_p99_ms", p99);
	MEMBER_D("revoke_to_visible_max_ms", max);
	MEMBER_D("target_revoke_to_visible_p99_ms", 1000);
	MEMBER_D("raw_sign_per_s", raw);
	MEMBER_D("presign_s", presign_s);
	MEMBER_D("presigned_per_s", count / presign_s);
	MEMBER_D("setup_issue_s", issue_s);
	{
		double load[3] = {0, 0, 0};
		if (getloadavg(load, 1) == 1)
			MEMBER_D("load_average_1min", load[0]);
	}
	json_builder_set_member_name(jb, "cached_answers");
	json_builder_add_int_value(jb, vc_ocsp_responder_get_cache_size(ocsp));
	MEMBER_D("peak_rss_mib", ru.ru_maxrss / 1024.0);
	json_builder_set_member_name(jb, "path");
	json_builder_add_string_value(
	    jb, "one client thread, HTTP/1.1 keep-alive POST /ocsp (libsoup on the main loop) -> "
		"responder lookup; revocation: store commit (synchronous=FULL) + forget, to the "
		"first revoked answer the client reads");
#undef MEMBER_D
	json_builder_end_object(jb);
	if (arg_json)
		vc_bench_print_json(json_builder_get_root(jb));
	else
		g_print("%d certificates; %.0f OCSP responses/s over HTTP (target 5000); revoke to "
			"visible p50 %.1f ms, p99 %.1f ms (target 1000); raw sign %.0f/s; presign "
			"%.0f/s\n",
			count, b.responses_per_s, p50, p99, raw, count / presign_s);
	ok = TRUE;
out:
	g_clear_pointer(&http, vc_http_server_free);
	g_clear_pointer(&ocsp, vc_ocsp_responder_free);
	g_clear_pointer(&b.loop, g_main_loop_unref);
	g_clear_pointer(&b.requests, g_ptr_array_unref);
	g_clear_pointer(&b.serials, g_ptr_array_unref);
	g_clear_pointer(&b.revoke_ms, g_array_unref);
	g_free(b.error);
	return ok;
}
