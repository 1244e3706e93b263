/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* [host] crl-url: the host CA's CRL fetched on the host certificate's
 * schedule (crl-refresh, reload) and installed as [host] crl when it is a
 * CRL of a trusted host CA, correctly signed, and not older than the one in
 * place; then the host certificate is checked again. A failed fetch keeps
 * the CRL in place (whose nextUpdate still bounds how long it counts). */
#include "vc-engine-private.h"

#include <errno.h>

#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <openssl/err.h>

#include "vc-error.h"

#define VC_ENGINE_HOST_CRL_MAX (8 * 1024 * 1024)
#define VC_ENGINE_HOST_CRL_TIMEOUT_S 10

typedef struct {
	VcEngine **self;
	char *url;
	char *crl_path;
	char *ca_path;
	gboolean installed; /* a newer CRL was written */
	char *what;	    /* what happened, for the log */
	GError *error;
} VcEngineHostCrlFetch;

static void
vc_engine_host_crl_fetch_free(VcEngineHostCrlFetch *f)
{
	g_atomic_rc_box_release(f->self);
	g_free(f->url);
	g_free(f->crl_path);
	g_free(f->ca_path);
	g_free(f->what);
	g_clear_error(&f->error);
	g_free(f);
}

static gint64
vc_engine_host_crl_time(const ASN1_TIME *t)
{
	struct tm tm = {0};
	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return (gint64)timegm(&tm);
}

/* Is CRL signed by a CA of the bundle at CA_PATH? */
static gboolean
vc_engine_host_crl_verify(X509_CRL *crl, const char *ca_path, GError **error)
{
	g_autoptr(GPtrArray) anchors = vc_cert_load_pem_file(ca_path, error);

	if (anchors == NULL)
		return FALSE;
	for (guint i = 0; i < anchors->len; i++) {
		X509 *ca = g_ptr_array_index(anchors, i);
		if (X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)) == 0 &&
		    X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1)
			return TRUE;
	}
	ERR_clear_error();
	g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO, "not a CRL signed by a trusted host CA (%s)",
		    ca_path);
	return FALSE;
}

static void
vc_engine_host_crl_fetch_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
	VcEngineHostCrlFetch *f = data;
	g_autoptr(SoupSession) session = soup_session_new_with_options(
	    "timeout", VC_ENGINE_HOST_CRL_TIMEOUT_S, "user-agent", "virtcertd", NULL);
	g_autoptr(SoupMessage) msg = soup_message_new("GET", f->url);
	g_autoptr(GBytes) body = NULL;
	g_autofree char *tmp = g_strconcat(f->crl_path, ".fetched", NULL);
	g_autoptr(X509_CRL) crl = NULL;
	g_autoptr(X509_CRL) old = NULL;
	const char *data_p;
	gsize len = 0;

	(void)source;
	(void)cancel;
	if (msg == NULL) {
		g_set_error(&f->error, VC_ERROR, VC_ERROR_INVALID_DATA, "not a URL");
		goto out;
	}
	body = soup_session_send_and_read(session, msg, NULL, &f->error);
	if (body == NULL)
		goto out;
	if (soup_message_get_status(msg) != SOUP_STATUS_OK) {
		g_set_error(&f->error, VC_ERROR, VC_ERROR_UNAVAILABLE, "HTTP %u %s",
			    soup_message_get_status(msg), soup_message_get_reason_phrase(msg));
		goto out;
	}
	data_p = g_bytes_get_data(body, &len);
	if (len == 0 || len > VC_ENGINE_HOST_CRL_MAX) {
		g_set_error(&f->error, VC_ERROR, VC_ERROR_INVALID_DATA, "%zu bytes: not a CRL",
			    len);
		goto out;
	}
	/* through a file beside the CRL: vc_crl_load() reads PEM or DER, and
	 * the rename below is atomic */
	if (!vc_file_write_atomic(tmp, data_p, len, 0644, &f->error))
		goto out;
	crl = vc_crl_load(tmp, &f->error);
	if (crl == NULL || !vc_engine_host_crl_verify(crl, f->ca_path, &f->error)) {
		g_unlink(tmp);
		goto out;
	}
	if (g_file_test(f->crl_path, G_FILE_TEST_EXISTS) &&
	    (old = vc_crl_load(f->crl_path, NULL)) != NULL &&
	    X509_NAME_cmp(X509_CRL_get_issuer(old), X509_CRL_get_issuer(crl)) == 0 &&
	    vc_engine_host_crl_time(X509_CRL_get0_lastUpdate(old)) >=
		vc_engine_host_crl_time(X509_CRL_get0_lastUpdate(crl))) {
		g_unlink(tmp);
		f->what = g_strdup("no newer CRL");
		goto out;
	}
	if (g_rename(tmp, f->crl_path) < 0) {
		g_set_error(&f->error, VC_ERROR, VC_ERROR_IO, "cannot install %s: %s", f->crl_path,
			    g_strerror(errno));
		g_unlink(tmp);
		goto out;
	}
	f->installed = TRUE;
	f->what = g_strdup_printf("installed as %s", f->crl_path);
out:
	g_task_return_boolean(task, TRUE);
}

static void
vc_engine_host_crl_fetch_done(GObject *source, GAsyncResult *res, gpointer data)
{
	VcEngineHostCrlFetch *f = g_task_get_task_data(G_TASK(res));
	VcEngine *engine = *f->self;

	(void)source;
	(void)data;
	if (engine == NULL)
		return;
	engine->host_crl_fetching = FALSE;
	if (f->error != NULL)
		vc_engine_log(G_LOG_LEVEL_WARNING, "host-crl", NULL, NULL, NULL,
			      "cannot fetch the host CA's CRL from %s: %s (the CRL in place "
			      "stays)",
			      f->url, f->error->message);
	else
		vc_engine_log(f->installed ? G_LOG_LEVEL_MESSAGE : G_LOG_LEVEL_DEBUG, "host-crl",
			      NULL, NULL, NULL, "the host CA's CRL from %s: %s", f->url, f->what);
	vc_engine_host_refresh(engine, TRUE);
}

gboolean
vc_engine_host_crl_fetch(VcEngine *engine)
{
	VcEngineHostCrlFetch *f;
	g_autoptr(GTask) task = NULL;

	if (engine->config->host_crl_url == NULL)
		return FALSE;
	if (engine->host_crl_fetching)
		return TRUE;
	engine->host_crl_fetching = TRUE;
	f = g_new0(VcEngineHostCrlFetch, 1);
	f->self = g_atomic_rc_box_acquire(engine->self);
	f->url = g_strdup(engine->config->host_crl_url);
	f->crl_path = vc_config_get_host_path(engine->config, "crl");
	f->ca_path = vc_config_get_host_path(engine->config, "ca");
	task = g_task_new(NULL, NULL, vc_engine_host_crl_fetch_done, NULL);
	g_task_set_task_data(task, f, (GDestroyNotify)vc_engine_host_crl_fetch_free);
	g_task_run_in_thread(task, vc_engine_host_crl_fetch_thread);
	return TRUE;
}
