/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtcert ocsp SERIAL|VM: asks the OCSP responder a relying party would
 * ask (the URL in the certificate's AIA, or --url) and prints its answer,
 * checked as a relying party checks it (signature up to the CA, nonce).
 * HTTP/1.1 by hand over GIO: one POST, Connection: close, a capped answer;
 * the tool links no HTTP library. */
#include <string.h>
#include <time.h>

#include <gio/gio.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "vc-cli.h"
#include "vc-error.h"

/* an OCSP response with the responder's certificate is about 1 KiB */
#define VC_CLI_OCSP_MAX_RESPONSE (64 * 1024)
#define VC_CLI_OCSP_MAX_HEADERS (16 * 1024)
#define VC_CLI_OCSP_TIMEOUT_S 10

#define VC_CLI_OCSP_EXIT_REVOKED 4
#define VC_CLI_OCSP_EXIT_UNKNOWN 5

G_DEFINE_AUTOPTR_CLEANUP_FUNC(OCSP_CERTID, OCSP_CERTID_free)

static char *
vc_cli_ocsp_time(const ASN1_GENERALIZEDTIME *t)
{
	struct tm tm;
	char buf[32];

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return NULL;
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return g_strdup(buf);
}

/* The status line, the headers, then the body of at most
 * VC_CLI_OCSP_MAX_RESPONSE octets: Content-Length only (no chunks). */
static GBytes *
vc_cli_ocsp_parse_http(const guint8 *data, gsize len, const char *url, GError **error)
{
	const char *end =
	    g_strstr_len((const char *)data, (gssize)MIN(len, VC_CLI_OCSP_MAX_HEADERS), "\r\n\r\n");
	g_autofree char *head = NULL;
	g_auto(GStrv) lines = NULL;
	g_autofree char *code_s = NULL;
	gint64 length = -1;
	guint64 code = 0;
	const guint8 *body;
	gsize body_len;

	if (end == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "%s: no complete HTTP header in the answer", url);
		return NULL;
	}
	head = g_strndup((const char *)data, (gsize)(end - (const char *)data));
	lines = g_strsplit(head, "\r\n", -1);
	if (g_str_has_prefix(lines[0], "HTTP/1.") && strlen(lines[0]) >= 12)
		code_s = g_strndup(lines[0] + 9, 3);
	if (code_s == NULL || !g_ascii_string_to_unsigned(code_s, 10, 100, 599, &code, NULL)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "%s: not an HTTP/1.x answer",
			    url);
		return NULL;
	}
	if (code != 200) {
		g_set_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE, "%s answered \"%s\"", url,
			    lines[0] + 9);
		return NULL;
	}
	for (gsize i = 1; lines[i] != NULL; i++) {
		char *colon = strchr(lines[i], ':');
		g_autofree char *value = NULL;
		if (colon == NULL)
			continue;
		*colon = '\0';
		value = g_strstrip(g_strdup(colon + 1));
		if (g_ascii_strcasecmp(lines[i], "Content-Length") == 0) {
			guint64 v = 0;
			if (!g_ascii_string_to_unsigned(value, 10, 0, VC_CLI_OCSP_MAX_RESPONSE, &v,
							NULL)) {
				g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
					    "%s: Content-Length \"%s\" is not 0 to %d", url, value,
					    VC_CLI_OCSP_MAX_RESPONSE);
				return NULL;
			}
			length = (gint64)v;
		} else if (g_ascii_strcasecmp(lines[i], "Transfer-Encoding") == 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "%s: Transfer-Encoding \"%s\" (an OCSP answer has a length)",
				    url, value);
			return NULL;
		} else if (g_ascii_strcasecmp(lines[i], "Content-Type") == 0 &&
			   g_ascii_strncasecmp(value, "application/ocsp-response", 25) != 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "%s: Content-Type \"%s\", not application/ocsp-response", url,
				    value);
			return NULL;
		}
	}
	body = (const guint8 *)end + 4;
	body_len = len - (gsize)(body - data);
	if (length >= 0 && body_len != (gsize)length) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "%s: %" G_GSIZE_FORMAT " octets of a %" G_GINT64_FORMAT
			    "-octet answer arrived",
			    url, body_len, length);
		return NULL;
	}
	return g_bytes_new(body, body_len);
}

/* POST REQUEST to URL (http:// only), the answer's body back. */
static GBytes *
vc_cli_ocsp_post(const char *url, GBytes *request, GError **error)
{
	g_autoptr(GUri) uri = NULL;
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GSocketConnection) conn = NULL;
	g_autoptr(GString) req = g_string_new(NULL);
	g_autoptr(GByteArray) answer = g_byte_array_new();
	g_autoptr(GError) local = NULL;
	const char *host, *path, *query;
	GInputStream *in;
	GOutputStream *out;
	g_autofree guint8 *buf = g_malloc(8192);
	int port;

	uri = g_uri_parse(url, G_URI_FLAGS_NONE, &local);
	if (uri == NULL || g_strcmp0(g_uri_get_scheme(uri), "http") != 0 ||
	    g_uri_get_host(uri) == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
			    "\"%s\" is not an http:// URL (OCSP is served over plain HTTP, "
			    "RFC 6960 A.1)",
			    url);
		return NULL;
	}
	host = g_uri_get_host(uri);
	port = g_uri_get_port(uri) > 0 ? g_uri_get_port(uri) : 80;
	path = *g_uri_get_path(uri) != '\0' ? g_uri_get_path(uri) : "/";
	query = g_uri_get_query(uri);
	g_socket_client_set_timeout(client, VC_CLI_OCSP_TIMEOUT_S);
	conn = g_socket_client_connect_to_host(client, host, (guint16)port, NULL, &local);
	if (conn == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_UNAVAILABLE, "cannot reach %s: %s", url,
			    local->message);
		return NULL;
	}
	g_string_append_printf(req,
			       "POST %s%s%s HTTP/1.1\r\n"
			       "Host: %s%s%s:%d\r\n"
			       "Content-Type: application/ocsp-request\r\n"
			       "Accept: application/ocsp-response\r\n"
			       "Content-Length: %" G_GSIZE_FORMAT "\r\n"
			       "Connection: close\r\n\r\n",
			       path, query ? "?" : "", query ? query : "",
			       strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
			       port, g_bytes_get_size(request));
	g_string_append_len(req, g_bytes_get_data(request, NULL),
			    (gssize)g_bytes_get_size(request));
	out = g_io_stream_get_output_stream(G_IO_STREAM(conn));
	in = g_io_stream_get_input_stream(G_IO_STREAM(conn));
	if (!g_output_stream_write_all(out, req->str, req->len, NULL, NULL, &local)) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "sending to %s: %s", url, local->message);
		return NULL;
	}
	for (;;) {
		gssize n = g_input_stream_read(in, buf, 8192, NULL, &local);
		if (n < 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_IO, "reading from %s: %s", url,
				    local->message);
			return NULL;
		}
		if (n == 0)
			break;
		if (answer->len + (gsize)n > VC_CLI_OCSP_MAX_HEADERS + VC_CLI_OCSP_MAX_RESPONSE) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "%s: the answer is larger than %d octets", url,
				    VC_CLI_OCSP_MAX_HEADERS + VC_CLI_OCSP_MAX_RESPONSE);
			return NULL;
		}
		g_byte_array_append(answer, buf, (guint)n);
	}
	return vc_cli_ocsp_parse_http(answer->data, answer->len, url, error);
}

/* The certificate ARG names: a serial in the store, or the VM's newest
 * valid certificate (else its newest). */
static VcCertRecord *
vc_cli_ocsp_find(VcCli *cli, const char *arg, GError **error)
{
	g_autoptr(GPtrArray) recs = NULL;

	if (vc_cli_get_store(cli, error) == NULL)
		return NULL;
	if (vc_cli_is_serial(arg)) {
		g_autofree char *serial = g_ascii_strdown(arg, -1);
		VcCertRecord *rec = vc_store_cert_get(cli->store, serial, NULL);
		if (rec != NULL)
			return rec;
	}
	recs = vc_cli_certs_of_vm(cli, arg, error);
	if (recs == NULL)
		return NULL;
	if (recs->len == 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND,
			    "no certificate with serial or VM '%s'", arg);
		return NULL;
	}
	for (guint i = 0; i < recs->len; i++) {
		VcCertRecord *rec = g_ptr_array_index(recs, i);
		if (rec->status == VC_CERT_STATUS_VALID)
			return g_ptr_array_steal_index(recs, i);
	}
	return g_ptr_array_steal_index(recs, 0);
}

/* The responder URL: --url, else the certificate's AIA, else the
 * configuration's (for an abandoned serial, which has no certificate). */
static char *
vc_cli_ocsp_url(VcCli *cli, X509 *leaf, const char *arg_url)
{
	STACK_OF(OPENSSL_STRING) * urls;
	char *url = NULL;

	if (arg_url != NULL)
		return g_strdup(arg_url);
	if (leaf != NULL && (urls = X509_get1_ocsp(leaf)) != NULL) {
		if (sk_OPENSSL_STRING_num(urls) > 0)
			url = g_strdup(sk_OPENSSL_STRING_value(urls, 0));
		X509_email_free(urls);
		if (url != NULL)
			return url;
	}
	if (cli->config->ocsp_url != NULL) {
		g_autoptr(GString) s = g_string_new(cli->config->ocsp_url);
		g_string_replace(s, "{ca}", vc_ca_get_id(cli->ca), 0);
		return g_string_free(g_steal_pointer(&s), FALSE);
	}
	return NULL;
}

/* Signature up to the CA's root (or the intermediate itself when it was
 * imported without one), and the signer's authority (OCSP_basic_verify:
 * the CA, or a certificate it issued with id-kp-OCSPSigning). */
static gboolean
vc_cli_ocsp_verify(VcCa *ca, OCSP_BASICRESP *bs, GError **error)
{
	g_autoptr(X509_STORE) store = X509_STORE_new();
	g_autoptr(VcX509Stack) untrusted = sk_X509_new_null();
	GPtrArray *chain = vc_ca_get_chain(ca);

	for (guint i = 0; i < chain->len; i++)
		sk_X509_push(untrusted, g_ptr_array_index(chain, i));
	if (vc_ca_get_root(ca) != NULL) {
		X509_STORE_add_cert(store, vc_ca_get_root(ca));
	} else {
		X509_STORE_add_cert(store, vc_ca_get_cert(ca));
		X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
	}
	if (OCSP_basic_verify(bs, untrusted, store, 0) != 1) {
		unsigned long e = ERR_peek_last_error();
		char buf[256] = "";
		ERR_error_string_n(e, buf, sizeof(buf));
		ERR_clear_error();
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO,
			    "the OCSP response does not verify against the CA: %s", buf);
		return FALSE;
	}
	return TRUE;
}

static void
vc_cli_ocsp_member(JsonBuilder *b, const char *name, const char *value)
{
	json_builder_set_member_name(b, name);
	if (value != NULL)
		json_builder_add_string_value(b, value);
	else
		json_builder_add_null_value(b);
}

gboolean
vc_cli_ocsp(VcCli *cli, int argc, char **argv, GError **error)
{
	g_autofree char *arg_url = NULL;
	gboolean no_nonce = FALSE;
	const GOptionEntry entries[] = {{"url", 0, 0, G_OPTION_ARG_STRING, &arg_url,
					 "Responder URL (default: the certificate's OCSP URL)",
					 "URL"},
					{"no-nonce", 0, 0, G_OPTION_ARG_NONE, &no_nonce,
					 "Send no nonce (the answer a cache would serve)", NULL},
					{NULL}};
	g_autoptr(VcCertRecord) rec = NULL;
	g_autoptr(X509) leaf = NULL;
	g_autoptr(OCSP_REQUEST) req = OCSP_REQUEST_new();
	g_autoptr(OCSP_RESPONSE) resp = NULL;
	g_autoptr(OCSP_BASICRESP) bs = NULL;
	g_autoptr(OCSP_CERTID) id = NULL;
	g_autoptr(BIGNUM) bn = NULL;
	g_autoptr(ASN1_INTEGER) sn = NULL;
	g_autoptr(GBytes) request = NULL;
	g_autoptr(GBytes) answer = NULL;
	g_autofree char *url = NULL;
	g_autofree char *t_this = NULL, *t_next = NULL, *t_rev = NULL, *t_prod = NULL;
	g_autofree char *responder = NULL, *responder_until = NULL;
	ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
	X509 *signer = NULL;
	X509 *ca_cert;
	unsigned char *der = NULL;
	const unsigned char *p;
	gsize len = 0;
	int der_len, status = -1, reason = -1, rstatus, nonce;
	const char *status_s;
	VcCa *ca;

	if (!vc_cli_parse("ocsp", "SERIAL|VM", entries, &argc, &argv, error))
		return FALSE;
	if (argc != 2) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "usage: virtcert ocsp SERIAL|VM [--url URL] [--no-nonce]");
		return FALSE;
	}
	ca = vc_cli_get_ca(cli, error);
	if (ca == NULL || (rec = vc_cli_ocsp_find(cli, argv[1], error)) == NULL)
		return FALSE;
	ca_cert = vc_ca_get_cert(ca);
	if (rec->der != NULL) {
		const guint8 *d = g_bytes_get_data(rec->der, &len);
		leaf = vc_cert_from_der(d, len, error);
		if (leaf == NULL)
			return FALSE;
	}
	url = vc_cli_ocsp_url(cli, leaf, arg_url);
	if (url == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
			    "certificate %s names no OCSP responder and none is configured: give "
			    "--url",
			    rec->serial);
		return FALSE;
	}

	/* RFC 5019 2.1.1: one SHA-1 CertID */
	if (!BN_hex2bn(&bn, rec->serial) || (sn = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    (id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(ca_cert),
				   X509_get0_pubkey_bitstr(ca_cert), sn)) == NULL ||
	    OCSP_request_add0_id(req, OCSP_CERTID_dup(id)) == NULL ||
	    (!no_nonce && OCSP_request_add1_nonce(req, NULL, 16) != 1) ||
	    (der_len = i2d_OCSP_REQUEST(req, &der)) <= 0) {
		ERR_clear_error();
		g_set_error_literal(error, VC_ERROR, VC_ERROR_CRYPTO,
				    "cannot build the OCSP request");
		return FALSE;
	}
	request = g_bytes_new(der, (gsize)der_len);
	OPENSSL_free(der);
	answer = vc_cli_ocsp_post(url, request, error);
	if (answer == NULL)
		return FALSE;

	p = g_bytes_get_data(answer, &len);
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	if (resp == NULL) {
		ERR_clear_error();
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "%s: the answer is not an OCSP response", url);
		return FALSE;
	}
	rstatus = OCSP_response_status(resp);
	if (rstatus != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		g_set_error(error, VC_ERROR, VC_ERROR_FAILED, "%s answered %s", url,
			    OCSP_response_status_str(rstatus));
		return FALSE;
	}
	bs = OCSP_response_get1_basic(resp);
	if (bs == NULL || !vc_cli_ocsp_verify(ca, bs, error)) {
		if (bs == NULL)
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "%s: no basic OCSP response", url);
		return FALSE;
	}
	nonce = OCSP_check_nonce(req, bs);
	if (!no_nonce && nonce != 1) {
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO,
			    "%s did not echo the nonce (a replayed answer?)", url);
		return FALSE;
	}
	if (OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd, &nextupd) != 1) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "%s: the answer is not about serial %s", url, rec->serial);
		return FALSE;
	}
	if (OCSP_check_validity(thisupd, nextupd, 300, -1) != 1) {
		ERR_clear_error();
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO,
			    "%s: the answer is outside its validity (thisUpdate/nextUpdate)", url);
		return FALSE;
	}
	t_this = vc_cli_ocsp_time(thisupd);
	t_next = vc_cli_ocsp_time(nextupd);
	t_rev = vc_cli_ocsp_time(rev);
	t_prod = vc_cli_ocsp_time(OCSP_resp_get0_produced_at(bs));
	if (OCSP_resp_get0_signer(bs, &signer, NULL) == 1 && signer != NULL &&
	    X509_cmp(signer, ca_cert) != 0) {
		char name[256];
		X509_NAME_oneline(X509_get_subject_name(signer), name, sizeof(name));
		responder = g_strdup(name);
		responder_until = vc_cli_ocsp_time(X509_get0_notAfter(signer));
	} else {
		responder = g_strdup("the CA");
	}
	status_s = OCSP_cert_status_str(status);
	cli->exit_status = status == V_OCSP_CERTSTATUS_GOOD	 ? 0
			   : status == V_OCSP_CERTSTATUS_REVOKED ? VC_CLI_OCSP_EXIT_REVOKED
								 : VC_CLI_OCSP_EXIT_UNKNOWN;
	if (arg_json) {
		g_autoptr(JsonBuilder) b = json_builder_new();
		json_builder_begin_object(b);
		vc_cli_ocsp_member(b, "serial", rec->serial);
		vc_cli_ocsp_member(b, "url", url);
		vc_cli_ocsp_member(b, "status", status_s);
		vc_cli_ocsp_member(b, "reason",
				   status == V_OCSP_CERTSTATUS_REVOKED
				       ? (reason >= 0 ? vc_reason_to_string(reason) : "unspecified")
				       : NULL);
		vc_cli_ocsp_member(b, "revoked_at", t_rev);
		vc_cli_ocsp_member(b, "this_update", t_this);
		vc_cli_ocsp_member(b, "next_update", t_next);
		vc_cli_ocsp_member(b, "produced_at", t_prod);
		vc_cli_ocsp_member(b, "responder", responder);
		vc_cli_ocsp_member(b, "responder_not_after", responder_until);
		json_builder_set_member_name(b, "nonce");
		json_builder_add_boolean_value(b, nonce == 1);
		json_builder_end_object(b);
		vc_cli_print_json(json_builder_get_root(b));
		return TRUE;
	}
	g_print("Serial:      %s\nResponder:   %s\nStatus:      %s\n", rec->serial, url, status_s);
	if (status == V_OCSP_CERTSTATUS_REVOKED)
		g_print("Revoked:     %s (%s)\n", t_rev ? t_rev : "?",
			reason >= 0 ? vc_reason_to_string(reason) : "unspecified");
	g_print("This update: %s\nNext update: %s\nProduced:    %s\n", t_this ? t_this : "?",
		t_next ? t_next : "(none: not to be cached)", t_prod ? t_prod : "?");
	g_print("Signed by:   %s%s%s%s\n", responder, responder_until ? " (delegated, until " : "",
		responder_until ? responder_until : "", responder_until ? ")" : "");
	g_print("Verified:    signature up to the CA%s\n", nonce == 1 ? ", nonce echoed" : "");
	return TRUE;
}
