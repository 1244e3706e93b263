/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The OCSP responder: requests parsed with OpenSSL's OCSP_* API, statuses
 * from the store, answers signed by a delegated responder certificate (or
 * the CA key) and kept so that the hot path is a hash lookup. */
#include "vc-ocsp.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "vc-crash-point.h"
#include "vc-error.h"

/* how many cached answers one vc_ocsp_responder_refresh() re-signs at most,
 * so that a big cache never blocks the main loop for long */
#define VC_OCSP_REFRESH_BATCH 4096
#define VC_OCSP_DEFAULT_VALIDITY_S 3600
#define VC_OCSP_DEFAULT_RESPONDER_LIFETIME_S (2 * 24 * 3600)
/* the responder certificate starts this far in the past (clock skew) */
#define VC_OCSP_RESPONDER_BACKDATE_S (10 * 60)
/* serials are 1..20 octets (RFC 5280 4.1.2.2); anything longer is not ours */
#define VC_OCSP_SERIAL_MAX 20

/* A CertID hash algorithm we answer for, with our issuer's hashes in it. */
typedef struct {
	int nid;
	const EVP_MD *md;
	OCSP_CERTID *issuer_id; /* serial = the CA's own; only the issuer part is compared */
} VcOcspHash;

struct _VcOcspResponder {
	VcCa *ca;
	VcStore *store;
	gboolean sign_with_ca;
	gint64 validity_s;
	gint64 responder_lifetime_s;
	char *dir;
	EVP_PKEY *key;		/* the delegated responder's key */
	X509 *signer;		/* its certificate */
	gint64 signer_renew_at; /* half its life */
	VcOcspHash hashes[4];
	GHashTable *cache; /* "NID:serial" -> VcOcspAnswer */
	/* the DER of a request answered from the cache -> its cache key, so
	 * that a client asking the same again is answered without parsing */
	GHashTable *seen;
	GPtrArray *presign_queue;
	guint presign_pos;
	VcOcspAnswer *errors[VC_OCSP_ANSWER_LAST]; /* the unsigned error answers */
	guint64 counts[VC_OCSP_ANSWER_LAST];
	gboolean cache_full_logged;
};

G_DEFINE_AUTOPTR_CLEANUP_FUNC(OCSP_CERTID, OCSP_CERTID_free)

const char *
vc_ocsp_answer_kind_to_string(VcOcspAnswerKind kind)
{
	switch (kind) {
	case VC_OCSP_ANSWER_GOOD:
		return "good";
	case VC_OCSP_ANSWER_REVOKED:
		return "revoked";
	case VC_OCSP_ANSWER_UNKNOWN:
		return "unknown";
	case VC_OCSP_ANSWER_MALFORMED:
		return "malformedRequest";
	case VC_OCSP_ANSWER_UNAUTHORIZED:
		return "unauthorized";
	case VC_OCSP_ANSWER_INTERNAL:
		return "internalError";
	case VC_OCSP_ANSWER_LAST:
	default:
		return "?";
	}
}

/* ---- answers ----------------------------------------------------------- */

static void
vc_ocsp_answer_clear(VcOcspAnswer *answer)
{
	g_bytes_unref(answer->der);
	g_free(answer->etag);
}

VcOcspAnswer *
vc_ocsp_answer_ref(VcOcspAnswer *answer)
{
	return g_rc_box_acquire(answer);
}

void
vc_ocsp_answer_unref(VcOcspAnswer *answer)
{
	if (answer != NULL)
		g_rc_box_release_full(answer, (GDestroyNotify)vc_ocsp_answer_clear);
}

static VcOcspAnswer *
vc_ocsp_answer_new(OCSP_RESPONSE *resp, VcOcspAnswerKind kind, gint64 produced_at,
		   gint64 next_update, GError **error)
{
	VcOcspAnswer *answer;
	unsigned char *der = NULL;
	int len = i2d_OCSP_RESPONSE(resp, &der);

	if (len <= 0) {
		ERR_clear_error();
		g_set_error_literal(error, VC_ERROR, VC_ERROR_CRYPTO,
				    "cannot encode the OCSP response");
		return NULL;
	}
	answer = g_rc_box_new0(VcOcspAnswer);
	answer->der = g_bytes_new(der, (gsize)len);
	OPENSSL_free(der);
	answer->kind = kind;
	answer->produced_at = produced_at;
	answer->next_update = next_update;
	if (next_update != 0) {
		g_autofree char *sum = g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, answer->der);
		/* RFC 9110 8.8.3: a strong tag, the content's hash */
		answer->etag = g_strdup_printf("\"%.32s\"", sum);
	}
	return answer;
}

/* The error answers carry no responseBytes (RFC 6960 4.2.1) and are not
 * signed: made once. */
static VcOcspAnswer *
vc_ocsp_answer_new_error(int status, VcOcspAnswerKind kind)
{
	g_autoptr(OCSP_RESPONSE) resp = OCSP_response_create(status, NULL);
	g_autoptr(GError) error = NULL;
	VcOcspAnswer *answer = resp != NULL ? vc_ocsp_answer_new(resp, kind, 0, 0, &error) : NULL;

	g_assert(answer != NULL);
	return answer;
}

/* ---- the delegated responder certificate -------------------------------- */

static char *
vc_ocsp_path(VcOcspResponder *self, const char *file)
{
	return g_build_filename(self->dir, file, NULL);
}

/* The saved key and certificate, if they are ours, match, and are not past
 * half their life; else NULL (a new pair is made). */
static gboolean
vc_ocsp_signer_load(VcOcspResponder *self, gint64 now)
{
	g_autofree char *key_path = vc_ocsp_path(self, "responder.key");
	g_autofree char *cert_path = vc_ocsp_path(self, "responder.pem");
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) key = NULL;
	g_autoptr(X509) cert = NULL;
	g_autofree char *pem = NULL;
	gsize len = 0;
	X509 *ca_cert = vc_ca_get_cert(self->ca);
	const ASN1_TIME *nb, *na;
	int days = 0, secs = 0;
	gint64 not_before, not_after;

	if (!g_file_test(key_path, G_FILE_TEST_EXISTS))
		return FALSE;
	key = vc_key_load(key_path, &error);
	pem = key != NULL ? vc_file_read(cert_path, 64 * 1024, &len, &error) : NULL;
	cert = pem != NULL ? vc_cert_from_pem(pem, len, &error) : NULL;
	if (cert == NULL) {
		g_message("OCSP: making a new responder certificate: %s", error->message);
		return FALSE;
	}
	if (X509_check_private_key(cert, key) != 1 ||
	    X509_check_issued(ca_cert, cert) != X509_V_OK ||
	    X509_verify(cert, X509_get0_pubkey(ca_cert)) != 1) {
		ERR_clear_error();
		g_message("OCSP: %s is not this CA's or does not match its key: making a new one",
			  cert_path);
		return FALSE;
	}
	nb = X509_get0_notBefore(cert);
	na = X509_get0_notAfter(cert);
	if (!ASN1_TIME_diff(&days, &secs, NULL, nb))
		return FALSE;
	not_before = now + (gint64)days * 86400 + secs;
	if (!ASN1_TIME_diff(&days, &secs, NULL, na))
		return FALSE;
	not_after = now + (gint64)days * 86400 + secs;
	/* past half its life, or longer-lived than the configuration now says */
	if (now >= not_before + (not_after - not_before) / 2 ||
	    not_after - now > self->responder_lifetime_s)
		return FALSE;
	self->key = g_steal_pointer(&key);
	self->signer = g_steal_pointer(&cert);
	self->signer_renew_at = not_before + (not_after - not_before) / 2;
	return TRUE;
}

static gboolean
vc_ocsp_signer_make(VcOcspResponder *self, gint64 now, GError **error)
{
	g_autoptr(EVP_PKEY) key = vc_key_generate(VC_KEY_TYPE_EC_P256, error);
	g_autoptr(X509) cert = NULL;
	gint64 not_before = now - VC_OCSP_RESPONDER_BACKDATE_S;
	gint64 not_after = now + self->responder_lifetime_s;

	if (key == NULL)
		return FALSE;
	cert = vc_ca_issue_ocsp_responder(self->ca, key, not_before, not_after, error);
	if (cert == NULL)
		return FALSE;
	if (self->dir != NULL) {
		g_autofree char *key_path = vc_ocsp_path(self, "responder.key");
		g_autofree char *cert_path = vc_ocsp_path(self, "responder.pem");
		g_autofree char *pem = NULL;

		if (g_mkdir_with_parents(self->dir, 0700) < 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot create %s: %s", self->dir,
				    g_strerror(errno));
			return FALSE;
		}
		pem = vc_cert_to_pem(cert, error);
		if (pem == NULL || !vc_key_save(key, key_path, error) ||
		    !vc_file_write_atomic(cert_path, pem, strlen(pem), 0644, error))
			return FALSE;
	}
	EVP_PKEY_free(self->key);
	X509_free(self->signer);
	self->key = g_steal_pointer(&key);
	self->signer = g_steal_pointer(&cert);
	self->signer_renew_at = not_before + (not_after - not_before) / 2;
	g_message("OCSP: new responder certificate, valid until %" G_GINT64_FORMAT
		  " (renewed from %" G_GINT64_FORMAT ")",
		  not_after, self->signer_renew_at);
	return TRUE;
}

/* ---- setup ---------------------------------------------------------------- */

VcOcspResponder *
vc_ocsp_responder_new(VcCa *ca, VcStore *store, const VcOcspOptions *opts, GError **error)
{
	g_autoptr(VcOcspResponder) self = g_new0(VcOcspResponder, 1);
	X509 *ca_cert = vc_ca_get_cert(ca);
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	const struct {
		int nid;
		const EVP_MD *md;
	} hashes[] = {
	    {NID_sha1, EVP_sha1()},
	    {NID_sha256, EVP_sha256()},
	    {NID_sha384, EVP_sha384()},
	    {NID_sha512, EVP_sha512()},
	};

	G_STATIC_ASSERT(G_N_ELEMENTS(hashes) == G_N_ELEMENTS(self->hashes));
	self->ca = ca;
	self->store = store;
	self->sign_with_ca = opts->sign_with_ca;
	self->validity_s = opts->validity_s > 0 ? opts->validity_s : VC_OCSP_DEFAULT_VALIDITY_S;
	self->responder_lifetime_s = opts->responder_lifetime_s > 0
					 ? opts->responder_lifetime_s
					 : VC_OCSP_DEFAULT_RESPONDER_LIFETIME_S;
	self->dir = g_strdup(opts->dir);
	self->cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					    (GDestroyNotify)vc_ocsp_answer_unref);
	self->seen = g_hash_table_new_full(g_bytes_hash, g_bytes_equal,
					   (GDestroyNotify)g_bytes_unref, g_free);
	self->errors[VC_OCSP_ANSWER_MALFORMED] = vc_ocsp_answer_new_error(
	    OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, VC_OCSP_ANSWER_MALFORMED);
	self->errors[VC_OCSP_ANSWER_UNAUTHORIZED] = vc_ocsp_answer_new_error(
	    OCSP_RESPONSE_STATUS_UNAUTHORIZED, VC_OCSP_ANSWER_UNAUTHORIZED);
	self->errors[VC_OCSP_ANSWER_INTERNAL] =
	    vc_ocsp_answer_new_error(OCSP_RESPONSE_STATUS_INTERNALERROR, VC_OCSP_ANSWER_INTERNAL);
	for (gsize i = 0; i < G_N_ELEMENTS(hashes); i++) {
		self->hashes[i].nid = hashes[i].nid;
		self->hashes[i].md = hashes[i].md;
		self->hashes[i].issuer_id = OCSP_cert_to_id(hashes[i].md, NULL, ca_cert);
		if (self->hashes[i].issuer_id == NULL) {
			ERR_clear_error();
			g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO,
				    "cannot hash the CA's name and key with %s",
				    OBJ_nid2sn(hashes[i].nid));
			return NULL;
		}
	}
	if (!self->sign_with_ca && (self->dir == NULL || !vc_ocsp_signer_load(self, now)) &&
	    !vc_ocsp_signer_make(self, now, error)) {
		g_prefix_error(error, "OCSP responder certificate: ");
		return NULL;
	}
	return g_steal_pointer(&self);
}

void
vc_ocsp_responder_free(VcOcspResponder *self)
{
	if (self == NULL)
		return;
	for (gsize i = 0; i < G_N_ELEMENTS(self->hashes); i++)
		OCSP_CERTID_free(self->hashes[i].issuer_id);
	for (gsize i = 0; i < G_N_ELEMENTS(self->errors); i++)
		vc_ocsp_answer_unref(self->errors[i]);
	g_clear_pointer(&self->cache, g_hash_table_unref);
	g_clear_pointer(&self->seen, g_hash_table_unref);
	g_clear_pointer(&self->presign_queue, g_ptr_array_unref);
	EVP_PKEY_free(self->key);
	X509_free(self->signer);
	g_free(self->dir);
	g_free(self);
}

X509 *
vc_ocsp_responder_get_signer(VcOcspResponder *self)
{
	return self->signer;
}

guint
vc_ocsp_responder_get_cache_size(VcOcspResponder *self)
{
	return g_hash_table_size(self->cache);
}

guint64
vc_ocsp_responder_get_count(VcOcspResponder *self, VcOcspAnswerKind kind)
{
	g_return_val_if_fail(kind < VC_OCSP_ANSWER_LAST, 0);
	return self->counts[kind];
}

/* ---- statuses and signing --------------------------------------------------- */

typedef struct {
	int status; /* V_OCSP_CERTSTATUS_* */
	int reason; /* CRLReason, -1: none */
	gint64 revoked_at;
} VcOcspStatus;

static gboolean
vc_ocsp_lookup(VcOcspResponder *self, const char *serial, VcOcspStatus *ret, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_autoptr(VcCertRecord) rec = vc_store_cert_get_brief(self->store, serial, &local);

	ret->status = V_OCSP_CERTSTATUS_UNKNOWN;
	ret->reason = -1;
	ret->revoked_at = 0;
	if (rec == NULL) {
		if (g_error_matches(local, VC_ERROR, VC_ERROR_NOT_FOUND))
			return TRUE; /* never issued here */
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	/* another CA's serial (the store may hold several over time) */
	if (g_strcmp0(rec->ca_id, vc_ca_get_id(self->ca)) != 0)
		return TRUE;
	switch (rec->status) {
	case VC_CERT_STATUS_VALID:
		ret->status = V_OCSP_CERTSTATUS_GOOD;
		break;
	case VC_CERT_STATUS_REVOKED:
	case VC_CERT_STATUS_ABANDONED:
		/* an abandoned serial is on the CRL (it may have been signed
		 * before a crash): the same answer here */
		ret->status = V_OCSP_CERTSTATUS_REVOKED;
		ret->revoked_at = rec->revoked_at;
		/* as in the CRL (RFC 5280 5.3.1; CA/B BR 7.3): unspecified is
		 * left out */
		ret->reason = rec->reason > 0 ? rec->reason : -1;
		break;
	case VC_CERT_STATUS_PENDING:
	default:
		/* not handed out to anyone yet */
		break;
	}
	return TRUE;
}

static VcOcspAnswerKind
vc_ocsp_kind_of(int status)
{
	switch (status) {
	case V_OCSP_CERTSTATUS_GOOD:
		return VC_OCSP_ANSWER_GOOD;
	case V_OCSP_CERTSTATUS_REVOKED:
		return VC_OCSP_ANSWER_REVOKED;
	default:
		return VC_OCSP_ANSWER_UNKNOWN;
	}
}

/* A signed successful answer for N_IDS CertIDs with their statuses; the
 * nonce of REQ copied when REQ is not NULL (RFC 8954). */
static VcOcspAnswer *
vc_ocsp_sign(VcOcspResponder *self, OCSP_CERTID **ids, const VcOcspStatus *st, guint n_ids,
	     OCSP_REQUEST *req, GError **error)
{
	g_autoptr(OCSP_BASICRESP) bs = OCSP_BASICRESP_new();
	g_autoptr(OCSP_RESPONSE) resp = NULL;
	g_autoptr(ASN1_TIME) this_update = NULL;
	g_autoptr(ASN1_TIME) next_update = NULL;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	gboolean cacheable = req == NULL;

	this_update = ASN1_TIME_set(NULL, (time_t)now);
	next_update = ASN1_TIME_set(NULL, (time_t)(now + self->validity_s));
	if (bs == NULL || this_update == NULL || next_update == NULL)
		goto fail;
	for (guint i = 0; i < n_ids; i++) {
		g_autoptr(ASN1_TIME) rev = NULL;
		gboolean unknown = st[i].status == V_OCSP_CERTSTATUS_UNKNOWN;
		if (st[i].status == V_OCSP_CERTSTATUS_REVOKED) {
			rev = ASN1_TIME_set(NULL, (time_t)st[i].revoked_at);
			if (rev == NULL)
				goto fail;
		}
		/* unknown carries no nextUpdate: the serial may yet be issued
		 * (PENDING) and nobody should keep the answer (RFC 6960 4.4) */
		if (OCSP_basic_add1_status(bs, ids[i], st[i].status, st[i].reason, rev, this_update,
					   unknown ? NULL : next_update) == NULL)
			goto fail;
		if (unknown)
			cacheable = FALSE;
	}
	if (req != NULL && OCSP_copy_nonce(bs, req) <= 0)
		goto fail;
	if (self->sign_with_ca) {
		if (!vc_ca_sign_ocsp(self->ca, bs, error))
			return NULL;
	} else if (OCSP_basic_sign(bs, self->signer, self->key, EVP_sha256(), NULL,
				   OCSP_RESPID_KEY) != 1) {
		goto fail;
	}
	resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
	if (resp == NULL)
		goto fail;
	return vc_ocsp_answer_new(resp, vc_ocsp_kind_of(st[0].status), now,
				  cacheable ? now + self->validity_s : 0, error);
fail:
	ERR_clear_error();
	g_set_error_literal(error, VC_ERROR, VC_ERROR_CRYPTO, "cannot make the OCSP response");
	return NULL;
}

static void
vc_ocsp_cache_key(char *buf, gsize size, int nid, const char *serial)
{
	g_snprintf(buf, size, "%d:%s", nid, serial);
}

static void
vc_ocsp_cache_put(VcOcspResponder *self, const char *key, VcOcspAnswer *answer)
{
	if (g_hash_table_size(self->cache) >= VC_OCSP_CACHE_MAX &&
	    !g_hash_table_contains(self->cache, key)) {
		if (!self->cache_full_logged)
			g_message("OCSP: %u answers cached, signing further ones per request",
				  VC_OCSP_CACHE_MAX);
		self->cache_full_logged = TRUE;
		return;
	}
	g_hash_table_replace(self->cache, g_strdup(key), vc_ocsp_answer_ref(answer));
}

/* Lower-case hex of a serial's content octets, as the store keys it; NULL
 * for what cannot be a serial of ours (negative, empty, too long). */
static gboolean
vc_ocsp_serial_to_hex(const ASN1_INTEGER *serial, char *buf, gsize size)
{
	const unsigned char *p = ASN1_STRING_get0_data(serial);
	int len = ASN1_STRING_length(serial);
	static const char digits[] = "0123456789abcdef";

	if (ASN1_STRING_type(serial) != V_ASN1_INTEGER || len <= 0 || len > VC_OCSP_SERIAL_MAX ||
	    (gsize)len * 2 + 1 > size)
		return FALSE;
	for (int i = 0; i < len; i++) {
		buf[2 * i] = digits[p[i] >> 4];
		buf[2 * i + 1] = digits[p[i] & 0xf];
	}
	buf[2 * len] = '\0';
	return TRUE;
}

/* Signs (from the store) and caches the answer for SERIAL under hash H,
 * with our own CertID; NULL answer and TRUE for a serial that is unknown. */
static gboolean
vc_ocsp_presign_with(VcOcspResponder *self, const VcOcspHash *h, const char *serial, GError **error)
{
	g_autoptr(BIGNUM) bn = NULL;
	g_autoptr(ASN1_INTEGER) integer = NULL;
	g_autoptr(OCSP_CERTID) id = NULL;
	g_autoptr(VcOcspAnswer) answer = NULL;
	X509 *ca_cert = vc_ca_get_cert(self->ca);
	VcOcspStatus st;
	char key[64];

	if (!vc_ocsp_lookup(self, serial, &st, error))
		return FALSE;
	if (st.status == V_OCSP_CERTSTATUS_UNKNOWN)
		return TRUE;
	if (!BN_hex2bn(&bn, serial) || (integer = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    (id = OCSP_cert_id_new(h->md, X509_get_subject_name(ca_cert),
				   X509_get0_pubkey_bitstr(ca_cert), integer)) == NULL) {
		ERR_clear_error();
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO, "cannot make a CertID for %s",
			    serial);
		return FALSE;
	}
	vc_crash_point("ocsp-presign");
	answer = vc_ocsp_sign(self, &id, &st, 1, NULL, error);
	if (answer == NULL)
		return FALSE;
	vc_ocsp_cache_key(key, sizeof(key), h->nid, serial);
	vc_ocsp_cache_put(self, key, answer);
	vc_crash_point("ocsp-published");
	return TRUE;
}

gboolean
vc_ocsp_responder_presign(VcOcspResponder *self, const char *serial, GError **error)
{
	g_autofree char *lower = g_ascii_strdown(serial, -1);
	/* SHA-1 CertIDs are what RFC 5019 clients send (and OpenSSL, GnuTLS,
	 * NSS by default); other hashes are cached on first use */
	return vc_ocsp_presign_with(self, &self->hashes[0], lower, error);
}

void
vc_ocsp_responder_forget(VcOcspResponder *self, const char *serial)
{
	g_autofree char *lower = g_ascii_strdown(serial, -1);
	g_autoptr(GError) error = NULL;
	char key[64];

	for (gsize i = 0; i < G_N_ELEMENTS(self->hashes); i++) {
		vc_ocsp_cache_key(key, sizeof(key), self->hashes[i].nid, lower);
		g_hash_table_remove(self->cache, key);
	}
	vc_crash_point("ocsp-forgotten");
	/* the new answer at once, so the next client finds it signed */
	if (!vc_ocsp_presign_with(self, &self->hashes[0], lower, &error))
		g_warning("OCSP: cannot sign the new answer for %s: %s", lower, error->message);
}

gboolean
vc_ocsp_responder_presign_step(VcOcspResponder *self, guint max, GError **error)
{
	char key[64];

	if (self->presign_queue == NULL) {
		self->presign_queue =
		    vc_store_cert_list_valid_serials(self->store, vc_ca_get_id(self->ca), error);
		if (self->presign_queue == NULL)
			return FALSE;
		self->presign_pos = 0;
	}
	for (guint n = 0; n < max && self->presign_pos < self->presign_queue->len; n++) {
		const char *serial = g_ptr_array_index(self->presign_queue, self->presign_pos++);
		vc_ocsp_cache_key(key, sizeof(key), self->hashes[0].nid, serial);
		if (g_hash_table_contains(self->cache, key))
			continue;
		if (g_hash_table_size(self->cache) >= VC_OCSP_CACHE_MAX)
			break;
		if (!vc_ocsp_presign_with(self, &self->hashes[0], serial, error))
			return FALSE;
	}
	if (self->presign_pos >= self->presign_queue->len ||
	    g_hash_table_size(self->cache) >= VC_OCSP_CACHE_MAX) {
		g_clear_pointer(&self->presign_queue, g_ptr_array_unref);
		return FALSE;
	}
	return TRUE;
}

gboolean
vc_ocsp_responder_refresh(VcOcspResponder *self, GError **error)
{
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	g_autoptr(GPtrArray) due = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter iter;
	const char *key;
	VcOcspAnswer *answer;

	if (!self->sign_with_ca && now >= self->signer_renew_at &&
	    !vc_ocsp_signer_make(self, now, error)) {
		g_prefix_error(error, "renewing the OCSP responder certificate: ");
		return FALSE;
	}
	g_hash_table_iter_init(&iter, self->cache);
	while (due->len < VC_OCSP_REFRESH_BATCH &&
	       g_hash_table_iter_next(&iter, (gpointer *)&key, (gpointer *)&answer)) {
		if (answer->next_update - now < self->validity_s / 2)
			g_ptr_array_add(due, g_strdup(key));
	}
	for (guint i = 0; i < due->len; i++) {
		const char *k = g_ptr_array_index(due, i);
		const char *colon = strchr(k, ':');
		int nid = atoi(k);
		g_hash_table_remove(self->cache, k);
		for (gsize j = 0; j < G_N_ELEMENTS(self->hashes); j++)
			if (self->hashes[j].nid == nid &&
			    !vc_ocsp_presign_with(self, &self->hashes[j], colon + 1, error))
				return FALSE;
	}
	return TRUE;
}

/* ---- requests ---------------------------------------------------------------- */

/* RFC 8954 2.1: the nonce is an OCTET STRING in extnValue; some clients
 * put the bare octets there. NULL when REQ has none; FALSE when it is too
 * long. */
static gboolean
vc_ocsp_nonce_ok(OCSP_REQUEST *req, gboolean *ret_has_nonce)
{
	int idx = OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, -1);
	ASN1_OCTET_STRING *value;
	const unsigned char *p;
	g_autoptr(ASN1_OCTET_STRING) inner = NULL;
	int len;

	*ret_has_nonce = idx >= 0;
	if (idx < 0)
		return TRUE;
	/* a second nonce makes the request ambiguous */
	if (OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, idx) >= 0)
		return FALSE;
	value = X509_EXTENSION_get_data(OCSP_REQUEST_get_ext(req, idx));
	p = ASN1_STRING_get0_data(value);
	len = ASN1_STRING_length(value);
	inner = d2i_ASN1_OCTET_STRING(NULL, &p, len);
	if (inner != NULL && p == ASN1_STRING_get0_data(value) + len)
		len = ASN1_STRING_length(inner);
	ERR_clear_error();
	return len >= 1 && len <= VC_OCSP_MAX_NONCE;
}

static VcOcspAnswer *
vc_ocsp_error(VcOcspResponder *self, VcOcspAnswerKind kind, const char *why)
{
	g_debug("OCSP: %s: %s", vc_ocsp_answer_kind_to_string(kind), why);
	return vc_ocsp_answer_ref(self->errors[kind]);
}

static void
vc_ocsp_remember(VcOcspResponder *self, const guint8 *data, gsize len, const char *key)
{
	if (g_hash_table_size(self->seen) >= VC_OCSP_CACHE_MAX)
		g_hash_table_remove_all(self->seen);
	g_hash_table_replace(self->seen, g_bytes_new(data, len), g_strdup(key));
}

/* A request seen before, octet for octet, whose cached answer is still
 * fresh: no parsing. Only single-certificate requests without a nonce are
 * remembered, after they were parsed and checked once. */
static VcOcspAnswer *
vc_ocsp_answer_seen(VcOcspResponder *self, const guint8 *data, gsize len, gint64 now)
{
	const char *key;
	VcOcspAnswer *cached;
	g_autoptr(GBytes) bytes = NULL;

	if (len == 0 || len > 512)
		return NULL;
	bytes = g_bytes_new_static(data, len);
	key = g_hash_table_lookup(self->seen, bytes);
	if (key == NULL)
		return NULL;
	cached = g_hash_table_lookup(self->cache, key);
	if (cached == NULL || cached->next_update - now <= self->validity_s / 4)
		return NULL;
	return vc_ocsp_answer_ref(cached);
}

static VcOcspAnswer *
vc_ocsp_answer_request(VcOcspResponder *self, const guint8 *data, gsize len)
{
	g_autoptr(OCSP_REQUEST) req = NULL;
	g_autoptr(GError) error = NULL;
	const unsigned char *p = data;
	OCSP_CERTID *ids[VC_OCSP_MAX_CERTS];
	VcOcspStatus st[VC_OCSP_MAX_CERTS];
	const VcOcspHash *first_hash = NULL;
	char serial[2 * VC_OCSP_SERIAL_MAX + 1];
	char first_serial[2 * VC_OCSP_SERIAL_MAX + 1] = "";
	gboolean has_nonce = FALSE;
	gboolean first_known = FALSE;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	VcOcspAnswer *answer;
	int n;

	if (data == NULL || len == 0)
		return vc_ocsp_error(self, VC_OCSP_ANSWER_MALFORMED, "empty request");
	answer = vc_ocsp_answer_seen(self, data, len, now);
	if (answer != NULL)
		return answer;
	if (len > VC_OCSP_MAX_REQUEST_SIZE)
		return vc_ocsp_error(self, VC_OCSP_ANSWER_MALFORMED, "request too large");
	req = d2i_OCSP_REQUEST(NULL, &p, (long)len);
	if (req == NULL || p != data + len) {
		ERR_clear_error();
		return vc_ocsp_error(self, VC_OCSP_ANSWER_MALFORMED,
				     req == NULL ? "not a DER OCSPRequest" : "trailing data");
	}
	n = OCSP_request_onereq_count(req);
	if (n <= 0 || n > VC_OCSP_MAX_CERTS)
		return vc_ocsp_error(self, VC_OCSP_ANSWER_MALFORMED,
				     n <= 0 ? "no certificate asked about"
					    : "too many certificates in one request");
	if (!vc_ocsp_nonce_ok(req, &has_nonce))
		return vc_ocsp_error(self, VC_OCSP_ANSWER_MALFORMED,
				     "nonce longer than 32 octets (RFC 8954) or repeated");
	for (int i = 0; i < n; i++) {
		OCSP_CERTID *id = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i));
		ASN1_OBJECT *md_oid = NULL;
		ASN1_INTEGER *sn = NULL;
		const VcOcspHash *h = NULL;
		int nid;

		if (id == NULL || !OCSP_id_get0_info(NULL, &md_oid, NULL, &sn, id))
			return vc_ocsp_error(self, VC_OCSP_ANSWER_MALFORMED, "no CertID");
		nid = OBJ_obj2nid(md_oid);
		for (gsize j = 0; j < G_N_ELEMENTS(self->hashes); j++)
			if (self->hashes[j].nid == nid)
				h = &self->hashes[j];
		/* RFC 5019 2.2.3: unauthorized when the responder cannot answer
		 * for the CertID: a hash we cannot match, or another issuer */
		if (h == NULL)
			return vc_ocsp_error(self, VC_OCSP_ANSWER_UNAUTHORIZED,
					     "unsupported CertID hash algorithm");
		if (OCSP_id_issuer_cmp(h->issuer_id, id) != 0)
			return vc_ocsp_error(self, VC_OCSP_ANSWER_UNAUTHORIZED,
					     "not a certificate of this CA");
		ids[i] = id;
		if (!vc_ocsp_serial_to_hex(sn, serial, sizeof(serial))) {
			st[i].status = V_OCSP_CERTSTATUS_UNKNOWN;
			st[i].reason = -1;
			st[i].revoked_at = 0;
			continue;
		}
		if (i == 0) {
			first_hash = h;
			first_known = TRUE;
			memcpy(first_serial, serial, sizeof(serial));
		}
		/* the hot path: one certificate, no nonce, signed before */
		if (n == 1 && !has_nonce) {
			char key[64];
			VcOcspAnswer *cached;
			vc_ocsp_cache_key(key, sizeof(key), nid, serial);
			cached = g_hash_table_lookup(self->cache, key);
			/* refresh() re-signs at half the validity; this is the
			 * fallback when it has not come round yet */
			if (cached != NULL && cached->next_update - now > self->validity_s / 4) {
				vc_ocsp_remember(self, data, len, key);
				return vc_ocsp_answer_ref(cached);
			}
		}
		if (!vc_ocsp_lookup(self, serial, &st[i], &error)) {
			g_warning("OCSP: cannot read the status of %s: %s", serial, error->message);
			return vc_ocsp_answer_ref(self->errors[VC_OCSP_ANSWER_INTERNAL]);
		}
	}
	answer = vc_ocsp_sign(self, ids, st, (guint)n, has_nonce ? req : NULL, &error);
	if (answer == NULL) {
		g_warning("OCSP: %s", error->message);
		return vc_ocsp_answer_ref(self->errors[VC_OCSP_ANSWER_INTERNAL]);
	}
	if (n == 1 && !has_nonce && first_known && answer->next_update != 0) {
		char key[64];
		vc_ocsp_cache_key(key, sizeof(key), first_hash->nid, first_serial);
		vc_ocsp_cache_put(self, key, answer);
		vc_ocsp_remember(self, data, len, key);
	}
	return answer;
}

VcOcspAnswer *
vc_ocsp_responder_answer(VcOcspResponder *self, const guint8 *data, gsize len)
{
	VcOcspAnswer *answer = vc_ocsp_answer_request(self, data, len);

	self->counts[answer->kind]++;
	return answer;
}
