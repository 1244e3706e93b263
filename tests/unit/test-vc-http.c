/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The HTTP listeners and the peer API over real TLS on loopback: the
 * server on this thread's main loop, every client in a thread of its own. */
#include <string.h>
#include <sys/resource.h>

#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "vc-ca.h"
#include "vc-error.h"
#include "vc-host.h"
#include "vc-http-server.h"
#include "vc-peer-client.h"
#include "vc-test-ca.h"

#define VM_UUID "6f1e8a40-3c4b-4d2a-9b7e-0c1d2e3f4a5b"
#define CA_ID "00112233aabbccdd"

typedef struct {
	char *dir;
	char *cert;
	char *key;
	char *ca; /* the trusted host CA bundle it was enrolled with */
} Host;

typedef struct {
	char *dir;
	char *ca_dir;
	char *rogue_dir;
	char *crl; /* the server's host CA CRL path (absent at first) */
	Host a;	   /* the server: issuer of the VM's certificate */
	Host b;	   /* the claimant */
	Host c;	   /* signed by the rogue CA */
	VcHttpServer *server;
	VcHttpServerOptions opts;
	GBytes *crl_der;

	/* what the handover callback does */
	gboolean decide_accept;
	const char *decide_reason;
	gboolean decide_async;
	gboolean decide_unavailable;
	gboolean decide_hold;	/* keep the claim in held_claim, answer nothing */
	gboolean decide_refuse; /* answer 403 with decide_reason */
	VcPeerClaim *held_claim;

	/* what it saw */
	guint claims;
	guint announces;
	char *seen_uuid;
	char *seen_name;
	char *seen_serial;
	char *seen_fqdn;
	char *seen_fingerprint;
	char *seen_site;
	char *seen_tier;
	guint seen_ca_count;
	char *seen_ca0;

	/* what the OCSP callback saw */
	guint ocsp_requests;
	GBytes *ocsp_seen;
} Fixture;

/* Enrolls host NAME (trusting the main host CA) and has SIGNER_DIR's CA
 * sign it, as `virtcert host enroll --fqdn localhost` + `host-ca sign`. */
static void
host_make(Fixture *fx, Host *h, const char *name, const char *signer_dir, const char *const *attrs)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *csr_path = NULL;
	g_autofree char *main_ca = g_build_filename(fx->ca_dir, "ca.pem", NULL);

	h->dir = g_build_filename(fx->dir, name, NULL);
	h->cert = g_build_filename(h->dir, "host.pem", NULL);
	h->key = g_build_filename(h->dir, "host.key", NULL);
	h->ca = g_build_filename(h->dir, "hostca.pem", NULL);
	csr_path = g_build_filename(h->dir, "host.csr", NULL);
	g_assert_true(
	    vc_host_enroll(h->key, csr_path, "localhost", attrs, main_ca, h->ca, FALSE, &error));
	g_assert_no_error(error);
	vc_test_host_ca_sign(signer_dir, csr_path, vc_test_now_s() - 60, vc_test_now_s() + 86400,
			     h->cert);
}

static void
host_clear(Host *h)
{
	g_free(h->dir);
	g_free(h->cert);
	g_free(h->key);
	g_free(h->ca);
}

/* ---- the callbacks ---------------------------------------------------------- */

/* 2026-01-02 03:04:05 UTC, the CRL's Last-Modified */
#define CRL_MODIFIED G_GINT64_CONSTANT(1767323045)

static VcHttpDocument *
cb_get_crl(const char *ca_id, gpointer user_data, GError **error)
{
	Fixture *fx = user_data;

	if (strcmp(ca_id, CA_ID) != 0 && strcmp(ca_id, "host-ca") != 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "no CA %s here", ca_id);
		return NULL;
	}
	return vc_http_document_new(g_bytes_ref(fx->crl_der), g_strdup("\"crl-1\""), CRL_MODIFIED);
}

static GBytes *
cb_get_ca_cert(const char *ca_id, gpointer user_data, GError **error)
{
	if (strcmp(ca_id, CA_ID) != 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "no CA %s here", ca_id);
		return NULL;
	}
	return g_bytes_new_static("\x30\x03\x02\x01\x01", 5);
}

static char *
cb_get_cert_chain(const char *vm_uuid, gpointer user_data, GError **error)
{
	Fixture *fx = user_data;
	char *pem = NULL;

	if (strcmp(vm_uuid, VM_UUID) != 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "no certificate for VM %s",
			    vm_uuid);
		return NULL;
	}
	g_assert_true(g_file_get_contents(fx->a.cert, &pem, NULL, NULL));
	return pem;
}

static char *
cb_get_metrics(gpointer user_data)
{
	return g_strdup("# TYPE virtcert_certificates gauge\nvirtcert_certificates 3\n");
}

static char *
first_value(const VcHostIdentity *id, const char *key)
{
	GPtrArray *v = vc_host_identity_get_values(id, key);
	return v != NULL && v->len > 0 ? g_strdup(g_ptr_array_index(v, 0)) : NULL;
}

typedef struct {
	Fixture *fx;
	VcPeerClaim *claim;
} Pending;

static gboolean
reply_later(gpointer data)
{
	Pending *p = data;
	vc_peer_claim_reply(p->claim, p->fx->decide_accept, p->fx->decide_reason);
	g_free(p);
	return G_SOURCE_REMOVE;
}

static void
cb_handover(VcPeerClaim *claim, gpointer user_data)
{
	Fixture *fx = user_data;
	const VcHostIdentity *id = vc_peer_claim_get_peer_identity(claim);

	fx->claims++;
	g_free(fx->seen_uuid);
	fx->seen_uuid = g_strdup(vc_peer_claim_get_vm_uuid(claim));
	g_free(fx->seen_name);
	fx->seen_name = g_strdup(vc_peer_claim_get_vm_name(claim));
	g_free(fx->seen_serial);
	fx->seen_serial = g_strdup(vc_peer_claim_get_serial(claim));
	g_free(fx->seen_fqdn);
	fx->seen_fqdn = g_strdup(vc_peer_claim_get_peer_fqdn(claim));
	g_free(fx->seen_fingerprint);
	fx->seen_fingerprint = g_strdup(vc_peer_claim_get_peer_fingerprint(claim));
	g_free(fx->seen_site);
	fx->seen_site = first_value(id, "site");
	g_free(fx->seen_tier);
	fx->seen_tier = first_value(id, "tier");
	fx->seen_ca_count = id->ca_fingerprints->len;
	g_free(fx->seen_ca0);
	fx->seen_ca0 = id->ca_fingerprints->len > 0
			   ? g_strdup(g_ptr_array_index(id->ca_fingerprints, 0))
			   : NULL;
	g_assert_nonnull(vc_peer_claim_get_remote_address(claim));
	g_assert_nonnull(vc_peer_claim_get_peer_serial(claim));

	if (fx->decide_hold) {
		fx->held_claim = claim;
	} else if (fx->decide_refuse) {
		vc_peer_claim_reply_refused(claim, fx->decide_reason);
	} else if (fx->decide_unavailable) {
		vc_peer_claim_reply_unavailable(claim, fx->decide_reason);
	} else if (fx->decide_async) {
		Pending *p = g_new0(Pending, 1);
		p->fx = fx;
		p->claim = claim;
		g_timeout_add(50, reply_later, p);
	} else {
		vc_peer_claim_reply(claim, fx->decide_accept, fx->decide_reason);
	}
}

/* The HTTP glue is under test, not the responder: the answer is "OCSP:"
 * and the request's octets, cacheable for ten minutes. */
static void
cb_ocsp(GBytes *request, VcHttpOcspReply *ret_reply, gpointer user_data)
{
	Fixture *fx = user_data;
	g_autoptr(GByteArray) a = g_byte_array_new();

	fx->ocsp_requests++;
	g_clear_pointer(&fx->ocsp_seen, g_bytes_unref);
	fx->ocsp_seen = g_bytes_ref(request);
	g_byte_array_append(a, (const guint8 *)"OCSP:", 5);
	g_byte_array_append(a, g_bytes_get_data(request, NULL), (guint)g_bytes_get_size(request));
	ret_reply->der = g_byte_array_free_to_bytes(g_steal_pointer(&a));
	ret_reply->last_modified = g_get_real_time() / G_USEC_PER_SEC;
	ret_reply->expires = ret_reply->last_modified + 600;
	ret_reply->etag = g_strdup("\"0123abcd\"");
}

/* an announcement has the claim's members and is answered the same way */
static void
cb_announce(VcPeerClaim *claim, gpointer user_data)
{
	Fixture *fx = user_data;

	fx->announces++;
	fx->claims--; /* counted by cb_handover */
	cb_handover(claim, user_data);
}

static const VcHttpCallbacks callbacks = {
    .get_crl = cb_get_crl,
    .get_ca_cert = cb_get_ca_cert,
    .get_cert_chain = cb_get_cert_chain,
    .get_metrics = cb_get_metrics,
    .handover = cb_handover,
    .ocsp = cb_ocsp,
    .announce = cb_announce,
};

/* ---- fixture ---------------------------------------------------------------- */

static void
fx_setup(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	const char *attrs_a[] = {"site=eu-west", NULL};
	const char *attrs_b[] = {"site=eu-central", "tier=confidential", NULL};
	g_autoptr(VcHostCa) ca = NULL;
	g_autoptr(X509_CRL) crl = NULL;

	fx->dir = vc_test_dir_make("vc-http-XXXXXX");
	fx->ca_dir = g_build_filename(fx->dir, "hostca", NULL);
	fx->rogue_dir = g_build_filename(fx->dir, "rogueca", NULL);
	vc_test_host_ca_init(fx->ca_dir, "test host CA");
	vc_test_host_ca_init(fx->rogue_dir, "rogue host CA");
	host_make(fx, &fx->a, "a", fx->ca_dir, attrs_a);
	host_make(fx, &fx->b, "b", fx->ca_dir, attrs_b);
	host_make(fx, &fx->c, "c", fx->rogue_dir, NULL);
	fx->crl = g_build_filename(fx->a.dir, "hostca.crl", NULL);

	ca = vc_host_ca_load(fx->ca_dir, &error);
	g_assert_no_error(error);
	crl = vc_host_ca_make_crl(ca, 3600, &error);
	g_assert_no_error(error);
	fx->crl_der = vc_crl_to_der(crl, &error);
	g_assert_no_error(error);

	fx->opts = (VcHttpServerOptions){
	    .address = "127.0.0.1:0",
	    .peer_address = "127.0.0.1:0",
	    .host_cert_path = fx->a.cert,
	    .host_key_path = fx->a.key,
	    .host_ca_path = fx->a.ca,
	    .host_crl_path = fx->crl,
	};
	fx->server = vc_http_server_new(&fx->opts, &callbacks, fx, &error);
	g_assert_no_error(error);
	g_assert_nonnull(fx->server);
	g_assert_cmpuint(vc_http_server_get_plain_port(fx->server), >, 0);
	g_assert_cmpuint(vc_http_server_get_peer_port(fx->server), >, 0);
	fx->decide_accept = TRUE;
	fx->decide_reason = "placement satisfied";
}

static void
fx_teardown(Fixture *fx, gconstpointer data)
{
	g_clear_pointer(&fx->server, vc_http_server_free);
	/* let the connections' last callbacks run before the files go */
	while (g_main_context_iteration(NULL, FALSE))
		;
	vc_test_dir_remove(fx->dir);
	g_free(fx->dir);
	g_free(fx->ca_dir);
	g_free(fx->rogue_dir);
	g_free(fx->crl);
	host_clear(&fx->a);
	host_clear(&fx->b);
	host_clear(&fx->c);
	g_bytes_unref(fx->crl_der);
	g_free(fx->seen_uuid);
	g_free(fx->seen_name);
	g_free(fx->seen_serial);
	g_free(fx->seen_fqdn);
	g_free(fx->seen_fingerprint);
	g_free(fx->seen_site);
	g_free(fx->seen_tier);
	g_free(fx->seen_ca0);
	g_clear_pointer(&fx->ocsp_seen, g_bytes_unref);
}

/* ---- clients in threads ----------------------------------------------------- */

typedef struct {
	GThreadFunc func;
	gpointer data;
	gint done;
} Runner;

static gpointer
runner_thread(gpointer data)
{
	Runner *r = data;

	r->func(r->data);
	g_atomic_int_set(&r->done, 1);
	g_main_context_wakeup(NULL);
	return NULL;
}

/* Runs FUNC(DATA) on a thread while this thread's main loop serves. */
static void
run_client(GThreadFunc func, gpointer data)
{
	Runner r = {func, data, 0};
	g_autoptr(GThread) t = g_thread_new("client", runner_thread, &r);

	while (!g_atomic_int_get(&r.done))
		g_main_context_iteration(NULL, TRUE);
	g_thread_join(g_steal_pointer(&t));
}

typedef struct {
	char *url;
	VcPeerClientOptions opts;
	const char *vm_name;
	const char *serial;
	gboolean ok;
	gboolean accepted;
	char *reason;
	GError *error;
} ClaimJob;

static gpointer
announce_thread(gpointer data)
{
	ClaimJob *j = data;

	j->ok = vc_peer_announce(j->url, &j->opts, VM_UUID, j->vm_name, j->serial, &j->reason,
				 &j->error);
	return NULL;
}

static gpointer
claim_thread(gpointer data)
{
	ClaimJob *j = data;

	j->ok = vc_peer_claim(j->url, &j->opts, VM_UUID, j->vm_name, j->serial, &j->accepted,
			      &j->reason, &j->error);
	return NULL;
}

static void
claim_job_init(ClaimJob *j, Fixture *fx, const Host *claimant)
{
	*j = (ClaimJob){0};
	j->url = g_strdup_printf("https://localhost:%u", vc_http_server_get_peer_port(fx->server));
	j->opts.host_cert_path = claimant->cert;
	j->opts.host_key_path = claimant->key;
	j->opts.host_ca_path = claimant->ca;
	j->opts.timeout_s = 10;
	j->vm_name = "web-1";
	j->serial = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
}

static void
claim_job_clear(ClaimJob *j)
{
	g_free(j->url);
	g_free(j->reason);
	g_clear_error(&j->error);
}

typedef struct {
	char *url;
	const char *method;
	const char *content_type; /* nullable: no body */
	GBytes *body;
	const char *cert; /* nullable: no client certificate */
	const char *key;
	guint status;
	char *reply;
	char *reply_type;
	char *allow;
	char *etag;
	char *last_modified;
	char *cache_control;
	const char *if_none_match; /* request headers, nullable */
	const char *if_modified_since;
	gboolean done;
	GError *error;
} RawJob;

static gboolean
raw_accept_any(SoupMessage *msg, GTlsCertificate *cert, GTlsCertificateFlags errors, gpointer data)
{
	return TRUE;
}

static void
raw_sent(GObject *source, GAsyncResult *res, gpointer data)
{
	RawJob *j = data;
	GBytes *reply = soup_session_send_and_read_finish(SOUP_SESSION(source), res, &j->error);

	if (reply != NULL) {
		j->reply = g_bytes_get_size(reply) > 0
			       ? g_strndup(g_bytes_get_data(reply, NULL), g_bytes_get_size(reply))
			       : g_strdup("");
		g_bytes_unref(reply);
	}
	j->done = TRUE;
}

/* Asynchronous on the thread's own context: libsoup's sync API deadlocks
 * on a server that asks for a client certificate. */
static gpointer
raw_thread(gpointer data)
{
	RawJob *j = data;
	g_autoptr(GMainContext) ctx = g_main_context_new();
	g_autoptr(SoupSession) session = NULL;
	g_autoptr(SoupMessage) msg = NULL;
	SoupMessageHeaders *h;

	g_main_context_push_thread_default(ctx);
	session = soup_session_new_with_options("timeout", 10, "proxy-resolver", NULL, NULL);
	msg = soup_message_new(j->method, j->url);
	if (j->if_none_match != NULL)
		soup_message_headers_replace(soup_message_get_request_headers(msg), "If-None-Match",
					     j->if_none_match);
	if (j->if_modified_since != NULL)
		soup_message_headers_replace(soup_message_get_request_headers(msg),
					     "If-Modified-Since", j->if_modified_since);
	if (j->body != NULL)
		soup_message_set_request_body_from_bytes(msg, j->content_type, j->body);
	if (j->cert != NULL) {
		g_autoptr(GTlsCertificate) c =
		    g_tls_certificate_new_from_files(j->cert, j->key, &j->error);
		g_assert_no_error(j->error);
		soup_message_set_tls_client_certificate(msg, c);
	}
	g_signal_connect(msg, "accept-certificate", G_CALLBACK(raw_accept_any), NULL);
	soup_session_send_and_read_async(session, msg, G_PRIORITY_DEFAULT, NULL, raw_sent, j);
	while (!j->done)
		g_main_context_iteration(ctx, TRUE);
	if (j->error == NULL) {
		j->status = soup_message_get_status(msg);
		h = soup_message_get_response_headers(msg);
		j->reply_type = g_strdup(soup_message_headers_get_one(h, "Content-Type"));
		j->allow = g_strdup(soup_message_headers_get_one(h, "Allow"));
		j->etag = g_strdup(soup_message_headers_get_one(h, "ETag"));
		j->last_modified = g_strdup(soup_message_headers_get_one(h, "Last-Modified"));
		j->cache_control = g_strdup(soup_message_headers_get_one(h, "Cache-Control"));
	}
	g_clear_object(&msg);
	g_clear_object(&session);
	while (g_main_context_iteration(ctx, FALSE))
		;
	g_main_context_pop_thread_default(ctx);
	return NULL;
}

static void
raw_job_clear(RawJob *j)
{
	g_free(j->url);
	g_clear_pointer(&j->body, g_bytes_unref);
	g_free(j->reply);
	g_free(j->reply_type);
	g_free(j->allow);
	g_free(j->etag);
	g_free(j->last_modified);
	g_free(j->cache_control);
	g_clear_error(&j->error);
}

static void
plain_get_if(Fixture *fx, RawJob *j, const char *path, const char *if_none_match,
	     const char *if_modified_since)
{
	*j = (RawJob){0};
	j->url = g_strdup_printf("http://127.0.0.1:%u%s", vc_http_server_get_plain_port(fx->server),
				 path);
	j->method = "GET";
	j->if_none_match = if_none_match;
	j->if_modified_since = if_modified_since;
	run_client(raw_thread, j);
	g_assert_no_error(j->error);
}

static void
plain_get(Fixture *fx, RawJob *j, const char *method, const char *path)
{
	*j = (RawJob){0};
	j->url = g_strdup_printf("http://127.0.0.1:%u%s", vc_http_server_get_plain_port(fx->server),
				 path);
	j->method = method;
	run_client(raw_thread, j);
	g_assert_no_error(j->error);
}

/* POSTs BODY (a string) to PATH on the peer listener as host B. */
static void
peer_post(Fixture *fx, RawJob *j, const char *path, const char *content_type, GBytes *body)
{
	*j = (RawJob){0};
	j->url = g_strdup_printf("https://localhost:%u%s", vc_http_server_get_peer_port(fx->server),
				 path);
	j->method = "POST";
	j->content_type = content_type;
	j->body = body;
	j->cert = fx->b.cert;
	j->key = fx->b.key;
	run_client(raw_thread, j);
	g_assert_no_error(j->error);
}

/* ---- (a), (b): a trusted claim and the engine's answer ---------------------- */

static void
test_claim_accepted(Fixture *fx, gconstpointer data)
{
	ClaimJob j;
	g_autoptr(GPtrArray) ca = NULL;
	g_autoptr(GPtrArray) b_cert = NULL;
	g_autofree char *ca_pem = g_build_filename(fx->ca_dir, "ca.pem", NULL);
	g_autofree char *ca_fp = NULL;
	g_autofree char *b_fp = NULL;
	g_autoptr(GError) error = NULL;

	claim_job_init(&j, fx, &fx->b);
	fx->decide_async = TRUE; /* answered 50 ms later, from the main loop */
	run_client(claim_thread, &j);
	g_assert_no_error(j.error);
	g_assert_true(j.ok);
	g_assert_true(j.accepted);
	g_assert_cmpstr(j.reason, ==, "placement satisfied");

	/* the callback saw B as B's certificate says, the claim as sent */
	g_assert_cmpuint(fx->claims, ==, 1);
	g_assert_cmpstr(fx->seen_uuid, ==, VM_UUID);
	g_assert_cmpstr(fx->seen_name, ==, "web-1");
	g_assert_cmpstr(fx->seen_serial, ==, "0a1b2c3d4e5f60718293a4b5c6d7e8f9");
	g_assert_cmpstr(fx->seen_fqdn, ==, "localhost");
	g_assert_cmpstr(fx->seen_site, ==, "eu-central");
	g_assert_cmpstr(fx->seen_tier, ==, "confidential");
	ca = vc_cert_load_pem_file(ca_pem, &error);
	g_assert_no_error(error);
	ca_fp = vc_cert_get_fingerprint_sha256(g_ptr_array_index(ca, 0));
	g_assert_cmpuint(fx->seen_ca_count, ==, 1);
	g_assert_cmpstr(fx->seen_ca0, ==, ca_fp);
	b_cert = vc_cert_load_pem_file(fx->b.cert, &error);
	g_assert_no_error(error);
	b_fp = vc_cert_get_fingerprint_sha256(g_ptr_array_index(b_cert, 0));
	g_assert_cmpstr(fx->seen_fingerprint, ==, b_fp);
	claim_job_clear(&j);
}

static void
test_claim_refused(Fixture *fx, gconstpointer data)
{
	ClaimJob j;

	claim_job_init(&j, fx, &fx->b);
	fx->decide_accept = FALSE;
	fx->decide_reason = "host attribute site=eu-central not in {eu-west}";
	run_client(claim_thread, &j);
	g_assert_no_error(j.error);
	g_assert_true(j.ok);
	g_assert_false(j.accepted);
	g_assert_cmpstr(j.reason, ==, "host attribute site=eu-central not in {eu-west}");
	g_assert_cmpuint(fx->claims, ==, 1);
	claim_job_clear(&j);

	/* "not now" is neither: the claimant retries */
	claim_job_init(&j, fx, &fx->b);
	fx->decide_unavailable = TRUE;
	fx->decide_reason = "VM not known yet";
	run_client(claim_thread, &j);
	g_assert_false(j.ok);
	g_assert_error(j.error, VC_ERROR, VC_ERROR_UNAVAILABLE);
	g_assert_nonnull(strstr(j.error->message, "VM not known yet"));
	claim_job_clear(&j);
}

static void expect_peer_status(Fixture *fx, const char *path, const char *ctype, const char *body,
			       guint status, const char *text);

/* The announcement of a migration, and refusals as 403 that the claimant
 * reads as a refusal with the issuer's reason. */
static void
test_announce(Fixture *fx, gconstpointer data)
{
	ClaimJob j;

	claim_job_init(&j, fx, &fx->b);
	fx->decide_reason = "migration to localhost recorded";
	run_client(announce_thread, &j);
	g_assert_no_error(j.error);
	g_assert_true(j.ok);
	g_assert_cmpstr(j.reason, ==, "migration to localhost recorded");
	g_assert_cmpuint(fx->announces, ==, 1);
	g_assert_cmpuint(fx->claims, ==, 0);
	g_assert_cmpstr(fx->seen_uuid, ==, VM_UUID);
	g_assert_cmpstr(fx->seen_serial, ==, "0a1b2c3d4e5f60718293a4b5c6d7e8f9");
	g_assert_cmpstr(fx->seen_site, ==, "eu-central");
	claim_job_clear(&j);

	claim_job_init(&j, fx, &fx->b);
	fx->decide_refuse = TRUE;
	fx->decide_reason = "the VM does not run on this host";
	run_client(announce_thread, &j);
	g_assert_false(j.ok);
	g_assert_error(j.error, VC_ERROR, VC_ERROR_CRYPTO);
	g_assert_nonnull(strstr(j.error->message, "the VM does not run on this host"));
	g_assert_cmpuint(fx->announces, ==, 2);
	claim_job_clear(&j);

	/* a refused claim: 403 with the reason, an error for the claimant */
	claim_job_init(&j, fx, &fx->b);
	fx->decide_reason = "no migration of the VM to localhost was announced here";
	run_client(claim_thread, &j);
	g_assert_false(j.ok);
	g_assert_error(j.error, VC_ERROR, VC_ERROR_CRYPTO);
	g_assert_nonnull(strstr(j.error->message, "was announced here"));
	g_assert_cmpuint(fx->claims, ==, 1);
	claim_job_clear(&j);

	/* over curl's way: the status itself */
	expect_peer_status(fx, "/peer/v1/announce", "application/json",
			   "{\"vm_uuid\": \"" VM_UUID "\", \"serial\": \"00\"}", 403,
			   "was announced here");
	expect_peer_status(fx, "/peer/v1/announce", "application/json",
			   "{\"vm_uuid\": \"" VM_UUID "\"}", 400, "\"serial\"");
}

/* Certificates from the trusted host CA that are no host identity: a CA, no
 * EKU, a wildcard, a malformed host attribute. 403 (the client's fault),
 * and the callback never runs. */
static void
test_not_host_identity(Fixture *fx, gconstpointer data)
{
	static const struct {
		const char *san;
		const char *bc;
		const char *eku; /* NULL: none */
		const char *error;
	} cases[] = {
	    {"DNS:localhost,URI:urn:virtcert:host:site=eu west", "critical,CA:FALSE",
	     "serverAuth,clientAuth", "not a host identity"},
	    {"DNS:localhost", "critical,CA:TRUE", "serverAuth,clientAuth", "CA:TRUE"},
	    {"DNS:localhost", "critical,CA:FALSE", NULL, "no extendedKeyUsage"},
	    {"DNS:localhost,DNS:*.example.com", "critical,CA:FALSE", "serverAuth,clientAuth",
	     "wildcard"},
	};
	g_autofree char *csr = g_build_filename(fx->b.dir, "host.csr", NULL);

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		const char *exts[] = {"basicConstraints",
				      cases[i].bc,
				      "subjectAltName",
				      cases[i].san,
				      cases[i].eku ? "extendedKeyUsage" : NULL,
				      cases[i].eku,
				      NULL};
		RawJob j;

		vc_test_host_ca_sign_custom(fx->ca_dir, csr, exts, fx->b.cert);
		peer_post(fx, &j, "/peer/v1/handover", "application/json",
			  g_bytes_new_static("{}", 2));
		g_assert_cmpuint(j.status, ==, 403);
		if (strstr(j.reply, cases[i].error) == NULL)
			g_error("case %zu: \"%s\" lacks \"%s\"", i, j.reply, cases[i].error);
		raw_job_clear(&j);
	}
	g_assert_cmpuint(fx->claims, ==, 0);
}

/* ---- (c), (d): untrusted claimants never reach the callback ------------------ */

static void
test_claim_other_ca(Fixture *fx, gconstpointer data)
{
	ClaimJob j;

	claim_job_init(&j, fx, &fx->c);
	run_client(claim_thread, &j);
	g_assert_false(j.ok);
	g_assert_error(j.error, VC_ERROR, VC_ERROR_CRYPTO);
	/* the server's reason (403) reaches the claimant */
	g_assert_nonnull(strstr(j.error->message, "refused"));
	g_assert_nonnull(strstr(j.error->message, "rogue host CA"));
	g_assert_cmpuint(fx->claims, ==, 0);
	claim_job_clear(&j);
}

static void
test_claim_revoked(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcHostCa) ca = vc_host_ca_load(fx->ca_dir, &error);
	g_autoptr(GPtrArray) b_cert = vc_cert_load_pem_file(fx->b.cert, &error);
	g_autoptr(X509_CRL) crl = NULL;
	g_autofree char *pem = NULL;
	ClaimJob j;

	/* trusted before */
	claim_job_init(&j, fx, &fx->b);
	run_client(claim_thread, &j);
	g_assert_no_error(j.error);
	g_assert_cmpuint(fx->claims, ==, 1);
	claim_job_clear(&j);

	/* the new CRL counts at the next request, without a restart */
	g_assert_true(vc_host_ca_revoke(ca, g_ptr_array_index(b_cert, 0), &error));
	g_assert_no_error(error);
	crl = vc_host_ca_make_crl(ca, 3600, &error);
	g_assert_no_error(error);
	pem = vc_crl_to_pem(crl, &error);
	g_assert_true(vc_file_write_atomic(fx->crl, pem, strlen(pem), 0644, &error));
	g_assert_no_error(error);

	claim_job_init(&j, fx, &fx->b);
	run_client(claim_thread, &j);
	g_assert_false(j.ok);
	g_assert_error(j.error, VC_ERROR, VC_ERROR_CRYPTO);
	g_assert_nonnull(strstr(j.error->message, "revoked"));
	g_assert_cmpuint(fx->claims, ==, 1);
	claim_job_clear(&j);
}

/* This host's own CRL file is broken: nobody is let in, and the claimant
 * hears it is not its fault (500: try again later). */
static void
test_claim_broken_crl(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	ClaimJob j;

	g_assert_true(g_file_set_contents(fx->crl, "not a CRL", -1, &error));
	g_test_expect_message("virtcert-http", G_LOG_LEVEL_WARNING, "*cannot verify clients*");
	claim_job_init(&j, fx, &fx->b);
	run_client(claim_thread, &j);
	g_test_assert_expected_messages();
	g_assert_false(j.ok);
	g_assert_error(j.error, VC_ERROR, VC_ERROR_UNAVAILABLE);
	g_assert_nonnull(strstr(j.error->message, "500"));
	g_assert_cmpuint(fx->claims, ==, 0);
	claim_job_clear(&j);
}

/* A client without any certificate does not get past the handshake. */
static void
test_claim_no_client_cert(Fixture *fx, gconstpointer data)
{
	RawJob j = {0};

	j.url = g_strdup_printf("https://localhost:%u/peer/v1/handover",
				vc_http_server_get_peer_port(fx->server));
	j.method = "POST";
	j.content_type = "application/json";
	j.body = g_bytes_new_static("{}", 2);
	run_client(raw_thread, &j);
	g_assert_nonnull(j.error);
	g_assert_cmpuint(j.status, ==, 0);
	g_assert_cmpuint(fx->claims, ==, 0);
	raw_job_clear(&j);
}

/* ---- (e): the claimant authenticates the server ------------------------------- */

static void
test_client_refuses_other_ca_server(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcHttpServer) rogue = NULL;
	VcHttpServerOptions opts = {
	    .peer_address = "127.0.0.1:0",
	    .host_cert_path = fx->c.cert,
	    .host_key_path = fx->c.key,
	    .host_ca_path = fx->c.ca,
	};
	ClaimJob j;

	/* a server with a certificate of another CA: it would accept
	 * anything, the claimant must not even send */
	rogue = vc_http_server_new(&opts, &callbacks, fx, &error);
	g_assert_no_error(error);
	claim_job_init(&j, fx, &fx->b);
	g_free(j.url);
	j.url = g_strdup_printf("https://localhost:%u", vc_http_server_get_peer_port(rogue));
	run_client(claim_thread, &j);
	g_assert_false(j.ok);
	g_assert_error(j.error, VC_ERROR, VC_ERROR_CRYPTO);
	g_assert_nonnull(strstr(j.error->message, "rogue host CA"));
	g_assert_cmpuint(fx->claims, ==, 0);
	claim_job_clear(&j);
}

static void
test_client_checks_server_name(Fixture *fx, gconstpointer data)
{
	ClaimJob j;

	/* right CA, but the certificate names "localhost", not 127.0.0.1 */
	claim_job_init(&j, fx, &fx->b);
	g_free(j.url);
	j.url = g_strdup_printf("https://127.0.0.1:%u/ignored/path",
				vc_http_server_get_peer_port(fx->server));
	run_client(claim_thread, &j);
	g_assert_false(j.ok);
	g_assert_error(j.error, VC_ERROR, VC_ERROR_CRYPTO);
	g_assert_nonnull(strstr(j.error->message, "not \"127.0.0.1\""));
	g_assert_cmpuint(fx->claims, ==, 0);
	claim_job_clear(&j);
}

static void
test_client_errors(Fixture *fx, gconstpointer data)
{
	ClaimJob j;
	g_autoptr(GSocket) sock = NULL;
	g_autoptr(GSocketAddress) addr = NULL;
	g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GError) error = NULL;
	guint16 port;

	/* not https */
	claim_job_init(&j, fx, &fx->b);
	g_free(j.url);
	j.url = g_strdup("http://localhost:8459");
	run_client(claim_thread, &j);
	g_assert_error(j.error, VC_ERROR, VC_ERROR_USAGE);
	claim_job_clear(&j);

	/* nobody listening: a port bound, then closed */
	sock =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
	g_assert_no_error(error);
	addr = g_inet_socket_address_new(lo, 0);
	g_assert_true(g_socket_bind(sock, addr, TRUE, &error));
	g_clear_object(&addr);
	addr = g_socket_get_local_address(sock, &error);
	port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(addr));
	g_socket_close(sock, NULL);
	claim_job_init(&j, fx, &fx->b);
	g_free(j.url);
	j.url = g_strdup_printf("https://localhost:%u", port);
	run_client(claim_thread, &j);
	g_assert_false(j.ok);
	g_assert_error(j.error, VC_ERROR, VC_ERROR_UNAVAILABLE);
	claim_job_clear(&j);
}

/* The claimant gives up before the engine answers; the late answer, and
 * one after the server is gone, must be harmless. */
static void
test_claim_late_reply(Fixture *fx, gconstpointer data)
{
	ClaimJob j;

	claim_job_init(&j, fx, &fx->b);
	j.opts.timeout_s = 1;
	fx->decide_hold = TRUE;
	run_client(claim_thread, &j);
	g_assert_false(j.ok);
	g_assert_error(j.error, VC_ERROR, VC_ERROR_UNAVAILABLE);
	g_assert_nonnull(fx->held_claim);
	vc_peer_claim_reply(g_steal_pointer(&fx->held_claim), TRUE, "too late");
	while (g_main_context_iteration(NULL, FALSE))
		;
	claim_job_clear(&j);

	/* held across the server's end */
	claim_job_init(&j, fx, &fx->b);
	j.opts.timeout_s = 1;
	run_client(claim_thread, &j);
	g_assert_nonnull(fx->held_claim);
	g_clear_pointer(&fx->server, vc_http_server_free);
	vc_peer_claim_reply_unavailable(g_steal_pointer(&fx->held_claim), "stopping");
	g_assert_cmpuint(fx->claims, ==, 2);
	claim_job_clear(&j);
}

/* ---- (g): malformed claims ----------------------------------------------------- */

static void
expect_peer_status(Fixture *fx, const char *path, const char *ctype, const char *body, guint status,
		   const char *text)
{
	RawJob j;

	peer_post(fx, &j, path, ctype, g_bytes_new(body, strlen(body)));
	g_assert_cmpuint(j.status, ==, status);
	if (text != NULL && strstr(j.reply, text) == NULL)
		g_error("answer to %s: \"%s\" lacks \"%s\"", body, j.reply, text);
	raw_job_clear(&j);
}

static void
test_claim_malformed(Fixture *fx, gconstpointer data)
{
	g_autofree char *big = NULL;
	RawJob j;

	expect_peer_status(fx, "/peer/v1/handover", "application/json", "{\"vm_uuid\": ", 400,
			   "not JSON");
	expect_peer_status(fx, "/peer/v1/handover", "application/json", "[1, 2]", 400,
			   "JSON object");
	expect_peer_status(fx, "/peer/v1/handover", "application/json",
			   "{\"vm_uuid\": \"" VM_UUID "\"}", 400, "\"serial\"");
	expect_peer_status(fx, "/peer/v1/handover", "application/json",
			   "{\"vm_uuid\": \"" VM_UUID "\", \"serial\": 1234}", 400,
			   "must be a string");
	expect_peer_status(fx, "/peer/v1/handover", "application/json",
			   "{\"vm_uuid\": \"not-a-uuid\", \"serial\": \"ab\"}", 400, "not a UUID");
	expect_peer_status(fx, "/peer/v1/handover", "application/json",
			   "{\"vm_uuid\": \"" VM_UUID "\", \"serial\": \"xyz\"}", 400,
			   "hexadecimal");
	expect_peer_status(fx, "/peer/v1/handover", "application/json",
			   "{\"vm_uuid\": \"" VM_UUID "\", \"serial\": \"ab\", \"vm_name\": [1]}",
			   400, "vm_name");
	/* the FQDN is the certificate's: one that disagrees is refused */
	expect_peer_status(fx, "/peer/v1/handover", "application/json",
			   "{\"vm_uuid\": \"" VM_UUID "\", \"serial\": \"ab\", "
			   "\"fqdn\": \"trusted.example.com\"}",
			   400, "not a name of the client's host certificate");
	expect_peer_status(fx, "/peer/v1/handover", "text/plain",
			   "{\"vm_uuid\": \"" VM_UUID "\", \"serial\": \"ab\"}", 415, NULL);
	expect_peer_status(fx, "/peer/v1/other", "application/json", "{}", 404, NULL);
	g_assert_cmpuint(fx->claims, ==, 0);

	/* over the cap: refused from the headers alone */
	big = g_strnfill(VC_PEER_CLAIM_MAX_SIZE + 1, ' ');
	big[0] = '{';
	big[VC_PEER_CLAIM_MAX_SIZE] = '}';
	peer_post(fx, &j, "/peer/v1/handover", "application/json", g_bytes_new(big, strlen(big)));
	g_assert_cmpuint(j.status, ==, 413);
	raw_job_clear(&j);

	/* a minimal valid claim still goes through (unknown members ignored) */
	expect_peer_status(fx, "/peer/v1/handover", "application/json",
			   "{\"vm_uuid\": \"" VM_UUID "\", \"serial\": \"AB\", \"future\": 1, "
			   "\"fqdn\": \"LOCALHOST\"}",
			   200, "\"accepted\":true");
	g_assert_cmpuint(fx->claims, ==, 1);
	g_assert_cmpstr(fx->seen_serial, ==, "ab");
	g_assert_cmpstr(fx->seen_name, ==, "");

	/* GET on the claim path */
	j = (RawJob){0};
	j.url = g_strdup_printf("https://localhost:%u/peer/v1/handover",
				vc_http_server_get_peer_port(fx->server));
	j.method = "GET";
	j.cert = fx->b.cert;
	j.key = fx->b.key;
	run_client(raw_thread, &j);
	g_assert_no_error(j.error);
	g_assert_cmpuint(j.status, ==, 405);
	g_assert_cmpstr(j.allow, ==, "POST");
	raw_job_clear(&j);
}

/* The claim parser alone, without a request: what a handler gets to see and
 * what it refuses, from the same bytes a claimant sends. */
static void
test_claim_parse(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcHost) peer = vc_host_load_files(fx->b.cert, NULL, fx->b.ca, NULL, &error);
	g_autoptr(VcPeerClaim) claim = NULL;
	g_autofree char *big = NULL;
	const char *ok = "{\"vm_uuid\": \"" VM_UUID "\", \"serial\": \"0A\", "
			 "\"vm_name\": \"web\", \"fqdn\": \"localhost\"}";
	const char *other = "{\"vm_uuid\": \"" VM_UUID "\", \"serial\": \"0a\", "
			    "\"fqdn\": \"other.example.com\"}";

	g_assert_no_error(error);
	claim = vc_peer_claim_new_from_data(ok, strlen(ok), peer, vc_host_get_identity(peer, NULL),
					    "192.0.2.7", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(vc_peer_claim_get_vm_uuid(claim), ==, VM_UUID);
	g_assert_cmpstr(vc_peer_claim_get_vm_name(claim), ==, "web");
	g_assert_cmpstr(vc_peer_claim_get_serial(claim), ==, "0a");
	g_assert_cmpstr(vc_peer_claim_get_peer_fqdn(claim), ==, "localhost");
	g_assert_cmpstr(vc_peer_claim_get_remote_address(claim), ==, "192.0.2.7");
	g_assert_nonnull(vc_peer_claim_get_peer_identity(claim));
	g_assert_cmpuint(strlen(vc_peer_claim_get_peer_fingerprint(claim)), ==, 64);
	g_clear_pointer(&claim, vc_peer_claim_free);

	claim = vc_peer_claim_new_from_data(other, strlen(other), peer,
					    vc_host_get_identity(peer, NULL), NULL, &error);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_assert_nonnull(strstr(error->message, "other.example.com"));
	g_assert_null(claim);
	g_clear_error(&error);

	big = g_strnfill(VC_PEER_CLAIM_MAX_SIZE + 1, ' ');
	claim = vc_peer_claim_new_from_data(big, strlen(big), peer,
					    vc_host_get_identity(peer, NULL), NULL, &error);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_assert_null(claim);
}

/* ---- (f): the plain listener ---------------------------------------------------- */

static void
test_plain(Fixture *fx, gconstpointer data)
{
	RawJob j;
	g_autoptr(GPtrArray) served = NULL;
	g_autoptr(GPtrArray) a_cert = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *tmp = NULL;

	plain_get(fx, &j, "GET", "/crl/" CA_ID ".crl");
	g_assert_cmpuint(j.status, ==, 200);
	g_assert_cmpstr(j.reply_type, ==, "application/pkix-crl");
	raw_job_clear(&j);
	{
		/* the DER arrives intact */
		RawJob k;
		const unsigned char *p;
		g_autoptr(X509_CRL) crl = NULL;
		plain_get(fx, &k, "GET", "/crl/00112233AABBCCDD.crl");
		g_assert_cmpuint(k.status, ==, 200);
		p = g_bytes_get_data(fx->crl_der, NULL);
		crl = d2i_X509_CRL(NULL, &p, (long)g_bytes_get_size(fx->crl_der));
		g_assert_nonnull(crl);
		raw_job_clear(&k);
	}
	plain_get(fx, &j, "GET", "/crl/ffff.crl");
	g_assert_cmpuint(j.status, ==, 404);
	raw_job_clear(&j);
	plain_get(fx, &j, "GET", "/crl/host-ca.crl");
	g_assert_cmpuint(j.status, ==, 200);
	raw_job_clear(&j);

	/* validators, and 304 when the client already has this CRL (RFC 9110
	 * 13.1.2, 13.1.3) */
	plain_get(fx, &j, "GET", "/crl/" CA_ID ".crl");
	g_assert_cmpstr(j.etag, ==, "\"crl-1\"");
	g_assert_cmpstr(j.last_modified, ==, "Fri, 02 Jan 2026 03:04:05 GMT");
	g_assert_cmpstr(j.cache_control, ==, "no-cache");
	raw_job_clear(&j);
	plain_get_if(fx, &j, "/crl/" CA_ID ".crl", "\"crl-0\", \"crl-1\"", NULL);
	g_assert_cmpuint(j.status, ==, 304);
	g_assert_cmpstr(j.reply, ==, "");
	g_assert_cmpstr(j.etag, ==, "\"crl-1\"");
	raw_job_clear(&j);
	plain_get_if(fx, &j, "/crl/" CA_ID ".crl", "W/\"crl-1\"", NULL);
	g_assert_cmpuint(j.status, ==, 304);
	raw_job_clear(&j);
	plain_get_if(fx, &j, "/crl/" CA_ID ".crl", "\"crl-0\"", NULL);
	g_assert_cmpuint(j.status, ==, 200);
	g_assert_cmpuint(strlen(j.reply), >, 0);
	raw_job_clear(&j);
	plain_get_if(fx, &j, "/crl/" CA_ID ".crl", NULL, "Fri, 02 Jan 2026 03:04:05 GMT");
	g_assert_cmpuint(j.status, ==, 304);
	raw_job_clear(&j);
	plain_get_if(fx, &j, "/crl/" CA_ID ".crl", NULL, "Fri, 02 Jan 2026 03:04:04 GMT");
	g_assert_cmpuint(j.status, ==, 200);
	raw_job_clear(&j);
	/* If-None-Match wins over If-Modified-Since; a date that does not parse
	 * is ignored */
	plain_get_if(fx, &j, "/crl/" CA_ID ".crl", "\"crl-0\"", "Fri, 02 Jan 2026 03:04:05 GMT");
	g_assert_cmpuint(j.status, ==, 200);
	raw_job_clear(&j);
	plain_get_if(fx, &j, "/crl/" CA_ID ".crl", NULL, "yesterday");
	g_assert_cmpuint(j.status, ==, 200);
	raw_job_clear(&j);

	/* the CA certificate for the leaves' caIssuers */
	plain_get(fx, &j, "GET", "/ca/" CA_ID ".crt");
	g_assert_cmpuint(j.status, ==, 200);
	g_assert_cmpstr(j.reply_type, ==, "application/pkix-cert");
	raw_job_clear(&j);
	plain_get(fx, &j, "GET", "/ca/ffff.crt");
	g_assert_cmpuint(j.status, ==, 404);
	raw_job_clear(&j);
	plain_get(fx, &j, "GET", "/ca/" CA_ID ".pem");
	g_assert_cmpuint(j.status, ==, 400);
	raw_job_clear(&j);
	plain_get(fx, &j, "GET", "/ca/host-ca.crt");
	g_assert_cmpuint(j.status, ==, 400);
	raw_job_clear(&j);
	plain_get(fx, &j, "GET", "/crl/not-hex.crl");
	g_assert_cmpuint(j.status, ==, 400);
	g_assert_nonnull(strstr(j.reply, "hexadecimal"));
	raw_job_clear(&j);
	plain_get(fx, &j, "GET", "/crl/" CA_ID);
	g_assert_cmpuint(j.status, ==, 400);
	raw_job_clear(&j);

	plain_get(fx, &j, "GET", "/cert/" VM_UUID);
	g_assert_cmpuint(j.status, ==, 200);
	g_assert_cmpstr(j.reply_type, ==, "application/pem-certificate-chain");
	tmp = g_build_filename(fx->dir, "served.pem", NULL);
	g_assert_true(g_file_set_contents(tmp, j.reply, -1, NULL));
	served = vc_cert_load_pem_file(tmp, &error);
	g_assert_no_error(error);
	a_cert = vc_cert_load_pem_file(fx->a.cert, &error);
	g_assert_no_error(error);
	g_assert_cmpint(X509_cmp(g_ptr_array_index(served, 0), g_ptr_array_index(a_cert, 0)), ==,
			0);
	raw_job_clear(&j);
	/* upper case UUIDs are the same VM */
	plain_get(fx, &j, "GET", "/cert/6F1E8A40-3C4B-4D2A-9B7E-0C1D2E3F4A5B");
	g_assert_cmpuint(j.status, ==, 200);
	raw_job_clear(&j);
	plain_get(fx, &j, "GET",
		  "/cert/"
		  "11111111-2222-3333-4444-555555555555");
	g_assert_cmpuint(j.status, ==, 404);
	raw_job_clear(&j);
	plain_get(fx, &j, "GET", "/cert/not-a-uuid");
	g_assert_cmpuint(j.status, ==, 400);
	g_assert_nonnull(strstr(j.reply, "not a VM UUID"));
	raw_job_clear(&j);
	plain_get(fx, &j, "GET", "/cert/" VM_UUID "/x");
	g_assert_cmpuint(j.status, ==, 400);
	raw_job_clear(&j);

	plain_get(fx, &j, "GET", "/metrics");
	g_assert_cmpuint(j.status, ==, 200);
	g_assert_cmpstr(j.reply_type, ==, "text/plain; version=0.0.4; charset=utf-8");
	g_assert_nonnull(strstr(j.reply, "virtcert_certificates 3"));
	raw_job_clear(&j);
	plain_get(fx, &j, "HEAD", "/metrics");
	g_assert_cmpuint(j.status, ==, 200);
	g_assert_cmpstr(j.reply, ==, "");
	raw_job_clear(&j);

	plain_get(fx, &j, "GET", "/");
	g_assert_cmpuint(j.status, ==, 404);
	raw_job_clear(&j);
	plain_get(fx, &j, "GET", "/peer/v1/handover");
	g_assert_cmpuint(j.status, ==, 404);
	raw_job_clear(&j);
	plain_get(fx, &j, "DELETE", "/metrics");
	g_assert_cmpuint(j.status, ==, 405);
	g_assert_cmpstr(j.allow, ==, "GET, HEAD");
	raw_job_clear(&j);
	plain_get(fx, &j, "POST", "/crl/" CA_ID ".crl");
	g_assert_cmpuint(j.status, ==, 405);
	raw_job_clear(&j);
}

static void
plain_post(Fixture *fx, RawJob *j, const char *path, const char *content_type, GBytes *body)
{
	*j = (RawJob){0};
	j->url = g_strdup_printf("http://127.0.0.1:%u%s", vc_http_server_get_plain_port(fx->server),
				 path);
	j->method = "POST";
	j->content_type = content_type;
	j->body = body;
	run_client(raw_thread, j);
	g_assert_no_error(j->error);
}

/* OCSP's HTTP binding: POST and GET reach the callback with the same
 * octets; what is too big, not base64 or not an OCSP request never does. */
static void
test_ocsp(Fixture *fx, gconstpointer data)
{
	static const char malformed[] = "\x30\x03\x0a\x01\x01";
	RawJob j;

	plain_post(fx, &j, "/ocsp", "application/ocsp-request", g_bytes_new_static("a+b/c=d?", 8));
	g_assert_cmpuint(j.status, ==, 200);
	g_assert_cmpstr(j.reply_type, ==, "application/ocsp-response");
	g_assert_cmpstr(j.reply, ==, "OCSP:a+b/c=d?");
	g_assert_nonnull(strstr(j.cache_control, "max-age="));
	g_assert_cmpstr(j.etag, ==, "\"0123abcd\"");
	g_assert_cmpuint(fx->ocsp_requests, ==, 1);
	g_assert_cmpmem(g_bytes_get_data(fx->ocsp_seen, NULL), g_bytes_get_size(fx->ocsp_seen),
			"a+b/c=d?", 8);
	raw_job_clear(&j);

	/* GET: base64 of "a+b/c=d?" (YStiL2M9ZD8=), URL-encoded or not */
	plain_get(fx, &j, "GET", "/ocsp/YStiL2M9ZD8%3D");
	g_assert_cmpuint(j.status, ==, 200);
	g_assert_cmpstr(j.reply, ==, "OCSP:a+b/c=d?");
	raw_job_clear(&j);
	plain_get(fx, &j, "GET", "/ocsp/YStiL2M9ZD8=");
	g_assert_cmpstr(j.reply, ==, "OCSP:a+b/c=d?");
	g_assert_cmpuint(fx->ocsp_requests, ==, 3);
	raw_job_clear(&j);

	/* refused before the callback: an OCSP malformedRequest, not cached */
	plain_get(fx, &j, "GET", "/ocsp/not*base64");
	g_assert_cmpuint(j.status, ==, 200);
	g_assert_cmpstr(j.reply_type, ==, "application/ocsp-response");
	g_assert_cmpstr(j.reply, ==, malformed);
	g_assert_cmpstr(j.cache_control, ==, "no-store");
	raw_job_clear(&j);
	plain_get(fx, &j, "GET", "/ocsp/YStiL2M9ZD8");
	g_assert_cmpstr(j.reply, ==, malformed);
	raw_job_clear(&j);
	plain_get(fx, &j, "GET", "/ocsp");
	g_assert_cmpstr(j.reply, ==, malformed);
	raw_job_clear(&j);
	plain_post(fx, &j, "/ocsp", "application/ocsp-request",
		   g_bytes_new_take(g_malloc0(1024 * 1024), 1024 * 1024));
	g_assert_cmpuint(j.status, ==, 200);
	g_assert_cmpstr(j.reply, ==, malformed);
	raw_job_clear(&j);
	plain_post(fx, &j, "/ocsp", "text/plain", g_bytes_new_static("x", 1));
	g_assert_cmpuint(j.status, ==, 415);
	raw_job_clear(&j);
	plain_get(fx, &j, "PUT", "/ocsp");
	g_assert_cmpuint(j.status, ==, 405);
	g_assert_cmpstr(j.allow, ==, "GET, HEAD, POST");
	raw_job_clear(&j);
	g_assert_cmpuint(fx->ocsp_requests, ==, 3);
}

/* ---- setup errors -------------------------------------------------------------- */

static void
test_options(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcHttpServer) s = NULL;
	const char *bad[] = {"127.0.0.1", "host.example:80", "::1:80",
			     "[::1]",	  "1.2.3.4:99999",   "127.0.0.1:x"};
	VcHttpServerOptions opts = {0};

	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		opts.address = bad[i];
		s = vc_http_server_new(&opts, &callbacks, fx, &error);
		g_assert_null(s);
		g_assert_error(error, VC_ERROR, VC_ERROR_USAGE);
		g_clear_error(&error);
	}
	/* both disabled: nothing listens */
	opts.address = "";
	s = vc_http_server_new(&opts, &callbacks, fx, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(vc_http_server_get_plain_port(s), ==, 0);
	g_assert_cmpuint(vc_http_server_get_peer_port(s), ==, 0);
	g_clear_pointer(&s, vc_http_server_free);

	/* the port is taken */
	opts.address = g_strdup_printf("127.0.0.1:%u", vc_http_server_get_plain_port(fx->server));
	s = vc_http_server_new(&opts, &callbacks, fx, &error);
	g_free((char *)opts.address);
	g_assert_null(s);
	g_assert_error(error, VC_ERROR, VC_ERROR_IO);
	g_clear_error(&error);

	/* a peer listener needs the host files, matching */
	opts = (VcHttpServerOptions){.peer_address = "127.0.0.1:0"};
	s = vc_http_server_new(&opts, &callbacks, fx, &error);
	g_assert_error(error, VC_ERROR, VC_ERROR_USAGE);
	g_clear_error(&error);
	opts.host_cert_path = fx->a.cert;
	opts.host_key_path = fx->b.key;
	opts.host_ca_path = fx->a.ca;
	s = vc_http_server_new(&opts, &callbacks, fx, &error);
	g_assert_null(s);
	g_assert_error(error, VC_ERROR, VC_ERROR_CRYPTO);
	g_assert_nonnull(strstr(error->message, "does not match"));
}

/* ---- the listener: cap, deadlines, keep-alive, EMFILE ----------------------- */

static VcHttpServer *
listener_server_new(Fixture *fx, const VcHttpLimits *limits)
{
	g_autoptr(GError) error = NULL;
	VcHttpServerOptions opts = {.address = "127.0.0.1:0", .limits = *limits};
	VcHttpServer *s = vc_http_server_new(&opts, &callbacks, fx, &error);

	g_assert_no_error(error);
	return s;
}

static VcHttpListenerStats
listener_stats(VcHttpServer *s)
{
	VcHttpListenerStats st;

	vc_http_server_get_stats(s, FALSE, &st);
	return st;
}

/* A blocking TCP client of S's plain port (connected through the backlog,
 * whether or not the server has accepted yet). */
static GSocket *
tcp_connect(VcHttpServer *s)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) addr =
	    g_inet_socket_address_new(lo, vc_http_server_get_plain_port(s));
	GSocket *sock = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
				     G_SOCKET_PROTOCOL_DEFAULT, &error);

	g_assert_no_error(error);
	g_socket_set_timeout(sock, 10);
	g_assert_true(g_socket_connect(sock, addr, NULL, &error));
	g_assert_no_error(error);
	return sock;
}

typedef struct {
	VcHttpServer *server;
	guint limit;
	guint field; /* 0 open, 1 refused, 2 timed out, 3 accepted, 4 accept errors */
} StatWait;

static gboolean
stat_reached(StatWait *w)
{
	VcHttpListenerStats st = listener_stats(w->server);
	guint64 v[] = {st.open, st.refused, st.timed_out, st.accepted, st.accept_errors};

	return v[w->field] >= w->limit;
}

/* Serves until the listener's counter FIELD reaches LIMIT (10 s at most). */
static void
serve_until(VcHttpServer *s, guint field, guint limit)
{
	StatWait w = {s, limit, field};
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	while (!stat_reached(&w)) {
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_main_context_iteration(NULL, FALSE);
		g_usleep(1000);
	}
}

/* EOF (or a reset) on a client socket, in a thread while the server runs. */
typedef struct {
	GSocket *sock;
	const char *send; /* nullable */
	gint64 eof_after_us;
	gsize received;
} EofJob;

static gpointer
eof_thread(gpointer data)
{
	EofJob *j = data;
	gint64 start = g_get_monotonic_time();
	char buf[1024];

	if (j->send != NULL)
		g_assert_cmpint(g_socket_send(j->sock, j->send, strlen(j->send), NULL, NULL), ==,
				(gssize)strlen(j->send));
	for (;;) {
		gssize n = g_socket_receive(j->sock, buf, sizeof(buf), NULL, NULL);
		if (n <= 0)
			break;
		j->received += (gsize)n;
	}
	j->eof_after_us = g_get_monotonic_time() - start;
	return NULL;
}

static void
test_listener_cap(Fixture *fx, gconstpointer data)
{
	VcHttpLimits limits = {.max_connections = 2,
			       .header_timeout_ms = 400,
			       .idle_timeout_ms = 400,
			       .request_timeout_ms = 5000};
	g_autoptr(VcHttpServer) s = listener_server_new(fx, &limits);
	g_autoptr(GSocket) held1 = tcp_connect(s);
	g_autoptr(GSocket) held2 = tcp_connect(s);
	g_autoptr(GSocket) over = NULL;
	EofJob refused = {0};
	EofJob idle = {0};
	EofJob loris = {0};
	RawJob j;

	serve_until(s, 0, 2);
	/* one beyond the cap: closed at once, counted, a warning */
	g_test_expect_message("virtcert-http", G_LOG_LEVEL_WARNING,
			      "HTTP on 127.0.0.1:*: 2 connections open, the most allowed*");
	over = tcp_connect(s);
	serve_until(s, 1, 1);
	g_test_assert_expected_messages();
	refused.sock = over;
	run_client(eof_thread, &refused);
	g_assert_cmpuint(refused.received, ==, 0);
	g_assert_cmpuint(listener_stats(s).open, ==, 2);

	/* the two idle ones: closed at the header deadline, counted */
	idle.sock = held1;
	run_client(eof_thread, &idle);
	g_assert_cmpuint(idle.received, ==, 0);
	serve_until(s, 2, 2);
	g_assert_cmpuint(listener_stats(s).open, ==, 0);

	/* a slow loris: headers begun, never ended; closed at the deadline */
	loris.sock = tcp_connect(s);
	loris.send = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: aaaa";
	run_client(eof_thread, &loris);
	g_object_unref(loris.sock);
	g_assert_cmpint(loris.eof_after_us, >=, 300 * 1000);
	g_assert_cmpint(loris.eof_after_us, <, 5 * G_USEC_PER_SEC);
	g_assert_cmpuint(loris.received, ==, 0);
	g_assert_cmpuint(listener_stats(s).timed_out, ==, 3);

	/* room again: served */
	j = (RawJob){0};
	j.url = g_strdup_printf("http://127.0.0.1:%u/metrics", vc_http_server_get_plain_port(s));
	j.method = "GET";
	run_client(raw_thread, &j);
	g_assert_no_error(j.error);
	g_assert_cmpuint(j.status, ==, 200);
	raw_job_clear(&j);
	g_assert_cmpuint(listener_stats(s).refused, ==, 1);
}

/* Two requests on one connection, then the idle deadline ends it. */
static void
test_listener_keep_alive(Fixture *fx, gconstpointer data)
{
	VcHttpLimits limits = {.max_connections = 4,
			       .header_timeout_ms = 2000,
			       .idle_timeout_ms = 400,
			       .request_timeout_ms = 2000};
	g_autoptr(VcHttpServer) s = listener_server_new(fx, &limits);
	EofJob k = {0};

	k.sock = tcp_connect(s);
	k.send = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
		 "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	run_client(eof_thread, &k);
	g_object_unref(k.sock);
	/* both answered (virtcert_certificates 3 twice), then closed idle */
	g_assert_cmpuint(k.received, >, 2 * strlen("virtcert_certificates 3"));
	g_assert_cmpint(k.eof_after_us, >=, 300 * 1000);
	g_assert_cmpuint(listener_stats(s).accepted, ==, 1);
	g_assert_cmpuint(listener_stats(s).timed_out, ==, 1);
}

static guint
open_descriptors(void)
{
	g_autoptr(GDir) dir = g_dir_open("/proc/self/fd", 0, NULL);
	guint n = 0;

	g_assert_nonnull(dir);
	while (g_dir_read_name(dir) != NULL)
		n++;
	return n - 1;
}

/* Out of descriptors: the listener pauses, and accepts again once there
 * are descriptors (libsoup's own listener stopped for good). */
static void
test_listener_emfile(Fixture *fx, gconstpointer data)
{
	VcHttpLimits limits = {
	    .header_timeout_ms = 10000, .idle_timeout_ms = 10000, .request_timeout_ms = 10000};
	g_autoptr(VcHttpServer) s = listener_server_new(fx, &limits);
	GSocket *clients[8];
	struct rlimit saved;
	struct rlimit low;
	RawJob j = {0};

	for (guint i = 0; i < G_N_ELEMENTS(clients); i++)
		clients[i] = tcp_connect(s);
	g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &saved), ==, 0);
	low = saved;
	low.rlim_cur = open_descriptors() + 2;
	g_test_expect_message(
	    "virtcert-http", G_LOG_LEVEL_WARNING,
	    "HTTP on 127.0.0.1:*: cannot accept a connection: *; pausing for 100 ms");
	g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &low), ==, 0);
	serve_until(s, 4, 1);
	g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &saved), ==, 0);
	g_test_assert_expected_messages();
	g_assert_cmpuint(listener_stats(s).accepted, <, G_N_ELEMENTS(clients));

	/* descriptors again: the backlog is accepted and a request served */
	serve_until(s, 3, G_N_ELEMENTS(clients));
	j.url = g_strdup_printf("http://127.0.0.1:%u/metrics", vc_http_server_get_plain_port(s));
	j.method = "GET";
	run_client(raw_thread, &j);
	g_assert_no_error(j.error);
	g_assert_cmpuint(j.status, ==, 200);
	raw_job_clear(&j);
	for (guint i = 0; i < G_N_ELEMENTS(clients); i++)
		g_object_unref(clients[i]);
}

/* The peer API: a client that never starts its TLS handshake is closed at
 * the header deadline, one beyond the cap at once; a claim still goes
 * through. */
static void
test_listener_peer(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcHttpServer) s = NULL;
	g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) addr = NULL;
	VcHttpServerOptions opts = fx->opts;
	VcHttpListenerStats st;
	EofJob silent = {0};
	EofJob over = {0};
	gint64 connected_at;
	ClaimJob j;

	opts.address = "";
	opts.limits = (VcHttpLimits){
	    .header_timeout_ms = 400, .idle_timeout_ms = 400, .request_timeout_ms = 5000};
	opts.peer_max_connections = 1;
	s = vc_http_server_new(&opts, &callbacks, fx, &error);
	g_assert_no_error(error);
	addr = g_inet_socket_address_new(lo, vc_http_server_get_peer_port(s));
	silent.sock = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
				   G_SOCKET_PROTOCOL_DEFAULT, &error);
	g_assert_no_error(error);
	g_socket_set_timeout(silent.sock, 10);
	g_assert_true(g_socket_connect(silent.sock, addr, NULL, &error));
	connected_at = g_get_monotonic_time();
	for (;;) {
		vc_http_server_get_stats(s, TRUE, &st);
		if (st.open == 1)
			break;
		g_main_context_iteration(NULL, TRUE);
	}
	g_test_expect_message("virtcert-http", G_LOG_LEVEL_WARNING,
			      "peer API on 127.0.0.1:*: 1 connections open, the most allowed*");
	over.sock = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
				 G_SOCKET_PROTOCOL_DEFAULT, &error);
	g_socket_set_timeout(over.sock, 10);
	g_assert_true(g_socket_connect(over.sock, addr, NULL, &error));
	run_client(eof_thread, &over);
	g_test_assert_expected_messages();
	g_assert_cmpint(over.eof_after_us, <, 300 * 1000);
	run_client(eof_thread, &silent);
	/* the deadline runs from the accept, a little after the connect */
	g_assert_cmpint(g_get_monotonic_time() - connected_at, >=, 350 * 1000);
	g_assert_cmpint(g_get_monotonic_time() - connected_at, <, 5 * G_USEC_PER_SEC);
	g_object_unref(silent.sock);
	g_object_unref(over.sock);
	vc_http_server_get_stats(s, TRUE, &st);
	g_assert_cmpuint(st.refused, ==, 1);
	g_assert_cmpuint(st.timed_out, ==, 1);

	claim_job_init(&j, fx, &fx->b);
	g_free(j.url);
	j.url = g_strdup_printf("https://localhost:%u", vc_http_server_get_peer_port(s));
	run_client(claim_thread, &j);
	g_assert_no_error(j.error);
	g_assert_true(j.ok);
	g_assert_true(j.accepted);
	claim_job_clear(&j);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fx_setup, fn, fx_teardown)
	ADD("/http/ocsp", test_ocsp);
	ADD("/http/claim/accepted", test_claim_accepted);
	ADD("/http/claim/refused", test_claim_refused);
	ADD("/http/claim/announce", test_announce);
	ADD("/http/claim/not-host-identity", test_not_host_identity);
	ADD("/http/claim/other-ca", test_claim_other_ca);
	ADD("/http/claim/revoked", test_claim_revoked);
	ADD("/http/claim/broken-crl", test_claim_broken_crl);
	ADD("/http/claim/no-client-cert", test_claim_no_client_cert);
	ADD("/http/claim/malformed", test_claim_malformed);
	ADD("/http/claim/parse", test_claim_parse);
	ADD("/http/claim/late-reply", test_claim_late_reply);
	ADD("/http/client/other-ca-server", test_client_refuses_other_ca_server);
	ADD("/http/client/server-name", test_client_checks_server_name);
	ADD("/http/client/errors", test_client_errors);
	ADD("/http/plain", test_plain);
	ADD("/http/options", test_options);
	ADD("/http/listener/cap", test_listener_cap);
	ADD("/http/listener/keep-alive", test_listener_keep_alive);
	ADD("/http/listener/emfile", test_listener_emfile);
	ADD("/http/listener/peer", test_listener_peer);
	return g_test_run();
}
