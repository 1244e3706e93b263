/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-daemon-publish.h"

#include <string.h>
#include <sys/stat.h>

#include <openssl/x509v3.h>

#include "vc-error.h"
#include "vc-qemu-conf.h"

/* ---- this host's certificate, for the hook's questions --------------------- */

#define VC_DAEMON_HOST_FILES 3

struct _VcDaemonHostCache {
	VcHost *host;
	char *paths[VC_DAEMON_HOST_FILES];
	struct stat st[VC_DAEMON_HOST_FILES]; /* st_ino 0: the file did not exist */
};

VcDaemonHostCache *
vc_daemon_host_cache_new(void)
{
	return g_new0(VcDaemonHostCache, 1);
}

void
vc_daemon_host_cache_free(VcDaemonHostCache *cache)
{
	if (cache == NULL)
		return;
	vc_host_free(cache->host);
	for (guint i = 0; i < VC_DAEMON_HOST_FILES; i++)
		g_free(cache->paths[i]);
	g_free(cache);
}

static gboolean
vc_daemon_host_cache_same(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

VcHost *
vc_daemon_host_cache_get(VcDaemonHostCache *cache, const VcConfig *config, GError **error)
{
	static const char *const which[VC_DAEMON_HOST_FILES] = {"cert", "ca", "crl"};
	struct stat now[VC_DAEMON_HOST_FILES];
	gboolean same = cache->host != NULL;

	for (guint i = 0; i < VC_DAEMON_HOST_FILES; i++) {
		g_autofree char *path = vc_config_get_host_path(config, which[i]);
		memset(&now[i], 0, sizeof(now[i]));
		if (stat(path, &now[i]) < 0)
			memset(&now[i], 0, sizeof(now[i]));
		if (g_strcmp0(path, cache->paths[i]) != 0 ||
		    !vc_daemon_host_cache_same(&now[i], &cache->st[i]))
			same = FALSE;
		g_free(cache->paths[i]);
		cache->paths[i] = g_steal_pointer(&path);
	}
	if (same)
		return cache->host;
	g_clear_pointer(&cache->host, vc_host_free);
	cache->host = vc_host_load_public(config, error);
	if (cache->host != NULL)
		memcpy(cache->st, now, sizeof(now));
	return cache->host;
}

/* ---- the host CA's CRL ------------------------------------------------------ */

struct _VcDaemonHostCrl {
	char *path;
	/* what was read, and the file it came from */
	guint64 mtime_us;
	goffset size;
	guint64 ino;
	VcHttpDocument *doc;
	char *id;
};

VcDaemonHostCrl *
vc_daemon_host_crl_new(const char *path)
{
	VcDaemonHostCrl *hc = g_new0(VcDaemonHostCrl, 1);
	hc->path = g_strdup(path);
	return hc;
}

void
vc_daemon_host_crl_free(VcDaemonHostCrl *hc)
{
	if (hc == NULL)
		return;
	g_free(hc->path);
	vc_http_document_free(hc->doc);
	g_free(hc->id);
	g_free(hc);
}

/* Hex of the first 8 octets of the CRL's authorityKeyIdentifier: the same
 * id vc_ca_get_id() gives a CA from its subjectKeyIdentifier. */
static char *
vc_daemon_host_crl_issuer_id(X509_CRL *crl)
{
	g_autoptr(AUTHORITY_KEYID) aki =
	    X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
	GString *s;

	if (aki == NULL || aki->keyid == NULL)
		return NULL;
	s = g_string_new(NULL);
	for (int i = 0; i < MIN(8, ASN1_STRING_length(aki->keyid)); i++)
		g_string_append_printf(s, "%02x", ASN1_STRING_get0_data(aki->keyid)[i]);
	return g_string_free(s, FALSE);
}

static gint64
vc_daemon_asn1_to_unix(const ASN1_TIME *t)
{
	struct tm tm = {0};
	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return (gint64)timegm(&tm);
}

/* (Re)reads the file when it changed since the last read. */
static gboolean
vc_daemon_host_crl_refresh(VcDaemonHostCrl *hc, GError **error)
{
	g_autoptr(GFile) file = g_file_new_for_path(hc->path);
	g_autoptr(GFileInfo) info = NULL;
	g_autoptr(GError) local = NULL;
	g_autoptr(X509_CRL) crl = NULL;
	g_autoptr(GBytes) der = NULL;
	g_autofree char *digest = NULL;
	guint64 mtime_us;

	info = g_file_query_info(file,
				 G_FILE_ATTRIBUTE_TIME_MODIFIED
				 "," G_FILE_ATTRIBUTE_TIME_MODIFIED_USEC
				 "," G_FILE_ATTRIBUTE_STANDARD_SIZE "," G_FILE_ATTRIBUTE_UNIX_INODE,
				 G_FILE_QUERY_INFO_NONE, NULL, &local);
	if (info == NULL) {
		g_clear_pointer(&hc->doc, vc_http_document_free);
		g_clear_pointer(&hc->id, g_free);
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "no host CA CRL (%s): %s",
			    hc->path, local->message);
		return FALSE;
	}
	mtime_us = g_file_info_get_attribute_uint64(info, G_FILE_ATTRIBUTE_TIME_MODIFIED) *
		       G_USEC_PER_SEC +
		   g_file_info_get_attribute_uint32(info, G_FILE_ATTRIBUTE_TIME_MODIFIED_USEC);
	if (hc->doc != NULL && mtime_us == hc->mtime_us && g_file_info_get_size(info) == hc->size &&
	    g_file_info_get_attribute_uint64(info, G_FILE_ATTRIBUTE_UNIX_INODE) == hc->ino)
		return TRUE;
	crl = vc_crl_load(hc->path, error);
	der = crl != NULL ? vc_crl_to_der(crl, error) : NULL;
	if (der == NULL)
		return FALSE;
	digest = g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, der);
	vc_http_document_free(hc->doc);
	hc->doc = vc_http_document_new(g_bytes_ref(der), g_strdup_printf("\"%.32s\"", digest),
				       vc_daemon_asn1_to_unix(X509_CRL_get0_lastUpdate(crl)));
	g_free(hc->id);
	hc->id = vc_daemon_host_crl_issuer_id(crl);
	hc->mtime_us = mtime_us;
	hc->size = g_file_info_get_size(info);
	hc->ino = g_file_info_get_attribute_uint64(info, G_FILE_ATTRIBUTE_UNIX_INODE);
	return TRUE;
}

VcHttpDocument *
vc_daemon_host_crl_get(VcDaemonHostCrl *hc, const char *name, GError **error)
{
	if (hc == NULL || hc->path == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "no CA %s here", name);
		return NULL;
	}
	g_autoptr(GError) local = NULL;

	if (!vc_daemon_host_crl_refresh(hc, &local)) {
		/* the file's path is ours to know, not the client's */
		if (!g_error_matches(local, VC_ERROR, VC_ERROR_NOT_FOUND))
			g_warning("cannot serve the host CA's CRL: %s", local->message);
		g_set_error(error, VC_ERROR,
			    g_error_matches(local, VC_ERROR, VC_ERROR_NOT_FOUND)
				? VC_ERROR_NOT_FOUND
				: VC_ERROR_FAILED,
			    "no CRL for CA %s here", name);
		return NULL;
	}
	if (g_strcmp0(name, "host-ca") != 0 && g_strcmp0(name, hc->id) != 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "no CA %s here", name);
		return NULL;
	}
	return vc_http_document_new(g_bytes_ref(hc->doc->body), g_strdup(hc->doc->etag),
				    hc->doc->last_modified);
}

/* ---- the CA certificate ---------------------------------------------------- */

GBytes *
vc_daemon_ca_cert_der(VcCa *ca, const char *ca_id, GError **error)
{
	if (g_strcmp0(ca_id, vc_ca_get_id(ca)) != 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "no CA %s here", ca_id);
		return NULL;
	}
	return vc_cert_to_der(vc_ca_get_cert(ca), error);
}

/* ---- expiry gauges --------------------------------------------------------- */

typedef struct {
	const VcConfig *config;
	VcCa *ca;
} VcDaemonExpiry;

static double
vc_daemon_seconds_until(const ASN1_TIME *t)
{
	return (double)(vc_daemon_asn1_to_unix(t) - g_get_real_time() / G_USEC_PER_SEC);
}

static void
vc_daemon_metrics_collect(VcMetrics *metrics, gpointer user_data)
{
	VcDaemonExpiry *e = user_data;
	VcMetric *host =
	    vc_metrics_add_gauge(metrics, "virtcert_host_certificate_expiry_seconds",
				 "Seconds until this host's certificate expires.", NULL);
	g_autofree char *path = vc_config_get_host_path(e->config, "cert");
	g_autoptr(GPtrArray) certs = NULL;

	vc_metric_set(vc_metrics_add_gauge(metrics, "virtcert_ca_expiry_seconds",
					   "Seconds until the issuing CA's certificate expires.",
					   NULL),
		      NULL, vc_daemon_seconds_until(X509_get0_notAfter(vc_ca_get_cert(e->ca))));
	if (g_file_test(path, G_FILE_TEST_EXISTS))
		certs = vc_cert_load_pem_file(path, NULL);
	if (certs != NULL && certs->len > 0)
		vc_metric_set(
		    host, NULL,
		    vc_daemon_seconds_until(X509_get0_notAfter(g_ptr_array_index(certs, 0))));
	else
		vc_metric_clear(host);
}

void
vc_daemon_metrics_register(VcMetrics *metrics, const VcConfig *config, VcCa *ca)
{
	/* lives as long as the daemon (the metrics go with the engine first) */
	static VcDaemonExpiry expiry;

	expiry.config = config;
	expiry.ca = ca;
	vc_metrics_add_collector(metrics, vc_daemon_metrics_collect, &expiry);
}

/* ---- the URLs in leaves ---------------------------------------------------- */

static gboolean
vc_daemon_url_is_loopback(const char *url)
{
	g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
	g_autoptr(GInetAddress) addr = NULL;
	const char *host = uri != NULL ? g_uri_get_host(uri) : NULL;

	if (host == NULL)
		return FALSE;
	if (g_ascii_strcasecmp(host, "localhost") == 0 || g_str_has_suffix(host, ".localhost"))
		return TRUE;
	addr = g_inet_address_new_from_string(host);
	return addr != NULL && g_inet_address_get_is_loopback(addr);
}

void
vc_daemon_check_urls(const VcConfig *config, VcCa *ca)
{
	static const struct {
		VcCaUrlKind kind;
		const char *what;
		const char *key;
	} urls[] = {
	    {VC_CA_URL_CRL, "CRL distribution point", "crl-url"},
	    {VC_CA_URL_OCSP, "OCSP responder", "ocsp-url"},
	    {VC_CA_URL_CA_ISSUERS, "CA issuers", "ca-issuers-url"},
	};
	const char *file = config->path != NULL ? config->path : "the configuration file";
	guint n = 0;

	for (gsize i = 0; i < G_N_ELEMENTS(urls); i++) {
		g_autofree char *url = vc_config_get_ca_url(config, urls[i].kind, vc_ca_get_id(ca));
		if (url == NULL)
			continue;
		n++;
		g_message("leaves carry the %s %s", urls[i].what, url);
		if (vc_daemon_url_is_loopback(url))
			g_message("the %s %s is a loopback URL: only this host can reach it "
				  "([ca] %s or public-url in %s)",
				  urls[i].what, url, urls[i].key, file);
	}
	if (n == 0)
		g_warning("no [ca] public-url in %s: certificates carry no CRL distribution "
			  "point, OCSP responder or CA issuers URL, so relying parties cannot "
			  "check revocation. Set public-url to the URL other machines reach this "
			  "daemon's HTTP side at (e.g. public-url=http://ca.example.com:8458, "
			  "with [daemon] http-address listening there) before the first VM "
			  "starts: certificates already issued keep what they carry until they "
			  "are renewed",
			  file);
}

/* ---- migration TLS ---------------------------------------------------------- */

void
vc_daemon_check_tls(const VcConfig *config)
{
	g_autofree char *why = NULL;

	if (!config->require_tls)
		return;
	if (vc_qemu_conf_check_tls(config->qemu_conf, &why))
		g_message("migrations only over TLS ([placement] require-tls): %s sets "
			  "migrate_tls_force = 1 and peer verification",
			  config->qemu_conf);
	else
		g_warning("[placement] require-tls=yes, but %s: the hook refuses every incoming "
			  "migration until this is fixed (then restart libvirtd)",
			  why);
}
