/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Keys, encodings, serials and atomic files: the small OpenSSL helpers the
 * rest of the CA (and the issuer, store and CLI) build on. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "vc-ca.h"
#include "vc-ca-private.h"
#include "vc-error.h"

/* Sets a VC_ERROR_CRYPTO error with the most recent OpenSSL error, then
 * clears OpenSSL's queue so stale errors never show up in a later message. */
void
vc_crypto_set_error(GError **error, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256] = "";

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

/* P-256 domain parameters made once. Why: a key generated from a name builds
 * the curve group from scratch (Montgomery set-up included), about a third
 * of the cost of the key; generated from this template the group is copied. */
static gpointer
vc_crypto_p256_template_new(gpointer data)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static void
vc_crypto_p256_keygen_ctx_free(gpointer ctx)
{
	EVP_PKEY_CTX_free(ctx);
}

/* The keygen context is made once per thread and reused: creating it looks
 * up the key manager and copies the template, a sixth of the cost of the
 * key itself. An EVP_PKEY_CTX may not be shared between threads, and every
 * EVP_PKEY_generate() on it draws a fresh private key from the DRBG. */
static GPrivate p256_keygen_ctx = G_PRIVATE_INIT(vc_crypto_p256_keygen_ctx_free);

static EVP_PKEY *
vc_crypto_p256_generate(void)
{
	static GOnce once = G_ONCE_INIT;
	EVP_PKEY *tmpl = g_once(&once, vc_crypto_p256_template_new, NULL);
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *key = NULL;

	if (tmpl == NULL)
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ctx = g_private_get(&p256_keygen_ctx);
	if (ctx == NULL) {
		ctx = EVP_PKEY_CTX_new_from_pkey(NULL, tmpl, NULL);
		if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0) {
			EVP_PKEY_CTX_free(ctx);
			return NULL;
		}
		g_private_set(&p256_keygen_ctx, ctx);
	}
	if (EVP_PKEY_generate(ctx, &key) <= 0) {
		EVP_PKEY_free(key);
		return NULL;
	}
	return key;
}

EVP_PKEY *
vc_key_generate(VcKeyType type, GError **error)
{
	EVP_PKEY *key = NULL;

	switch (type) {
	case VC_KEY_TYPE_EC_P256:
		key = vc_crypto_p256_generate();
		break;
	case VC_KEY_TYPE_ED25519:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	case VC_KEY_TYPE_RSA_3072:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
		break;
	default:
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "unknown key type %d", (int)type);
		return NULL;
	}
	if (key == NULL)
		vc_crypto_set_error(error, "cannot generate key");
	return key;
}

gboolean
vc_key_get_type(EVP_PKEY *key, VcKeyType *ret_type, GError **error)
{
	VcKeyType type;

	if (EVP_PKEY_is_a(key, "EC")) {
		char curve[64] = "";
		if (!EVP_PKEY_get_utf8_string_param(key, "group", curve, sizeof(curve), NULL) ||
		    (g_strcmp0(curve, "prime256v1") != 0 && g_strcmp0(curve, "P-256") != 0)) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "unsupported EC curve '%s' (only P-256)", curve);
			return FALSE;
		}
		type = VC_KEY_TYPE_EC_P256;
	} else if (EVP_PKEY_is_a(key, "ED25519")) {
		type = VC_KEY_TYPE_ED25519;
	} else if (EVP_PKEY_is_a(key, "RSA")) {
		if (EVP_PKEY_get_bits(key) < 2048) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "RSA key of %d bits is too small", EVP_PKEY_get_bits(key));
			return FALSE;
		}
		type = VC_KEY_TYPE_RSA_3072;
	} else {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "unsupported key type %s",
			    EVP_PKEY_get0_type_name(key));
		return FALSE;
	}
	if (ret_type != NULL)
		*ret_type = type;
	return TRUE;
}

/* "EC P-256", "RSA-2048", "Ed25519": what a key is, for messages. */
static char *
vc_key_describe(EVP_PKEY *key)
{
	if (EVP_PKEY_is_a(key, "EC")) {
		char curve[64] = "";
		if (!EVP_PKEY_get_utf8_string_param(key, "group", curve, sizeof(curve), NULL))
			g_strlcpy(curve, "?", sizeof(curve));
		return g_strdup_printf("EC %s", curve);
	}
	if (EVP_PKEY_is_a(key, "ED25519"))
		return g_strdup("Ed25519");
	if (EVP_PKEY_is_a(key, "RSA"))
		return g_strdup_printf("RSA-%d", EVP_PKEY_get_bits(key));
	return g_strdup_printf("%s (%d bits)", EVP_PKEY_get0_type_name(key),
			       EVP_PKEY_get_bits(key));
}

gboolean
vc_key_check_type(EVP_PKEY *key, VcKeyType want, GError **error)
{
	gboolean match = FALSE;
	char curve[64] = "";

	switch (want) {
	case VC_KEY_TYPE_EC_P256:
		match = EVP_PKEY_is_a(key, "EC") &&
			EVP_PKEY_get_utf8_string_param(key, "group", curve, sizeof(curve), NULL) &&
			(g_strcmp0(curve, "prime256v1") == 0 || g_strcmp0(curve, "P-256") == 0);
		break;
	case VC_KEY_TYPE_ED25519:
		match = EVP_PKEY_is_a(key, "ED25519");
		break;
	case VC_KEY_TYPE_RSA_3072:
		/* the size asked for, not "at least": a policy that asks for
		 * 3072 bits gets neither a weaker key nor one its relying
		 * parties did not plan for */
		match = EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) == 3072;
		break;
	}
	ERR_clear_error();
	if (!match) {
		g_autofree char *got = vc_key_describe(key);
		g_set_error(error, VC_ERROR, VC_ERROR_POLICY,
			    "the key is %s, but the policy asks for %s: only a key of the "
			    "policy's type and size is certified",
			    got, vc_key_type_to_string(want));
		return FALSE;
	}
	return TRUE;
}

/* The digest that goes with a signing key: none for Ed25519 (RFC 8410 6:
 * PureEdDSA), SHA-256 for ECDSA P-256 and RSA PKCS#1 v1.5. */
const EVP_MD *
vc_key_get_md(EVP_PKEY *key)
{
	if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448"))
		return NULL;
	return EVP_sha256();
}

/* Copies a memory BIO's contents to a NUL-terminated string. */
static char *
vc_crypto_bio_to_string(BIO *bio)
{
	char *data = NULL;
	long len = BIO_get_mem_data(bio, &data);
	char *out;

	if (len < 0)
		return NULL;
	out = g_malloc((gsize)len + 1);
	memcpy(out, data, (gsize)len);
	out[len] = '\0';
	return out;
}

/* A read-only memory BIO over DATA; WHAT names the contents when it is too
 * large for OpenSSL's int length. */
static BIO *
vc_crypto_bio_new_mem(const char *data, gsize len, const char *what, GError **error)
{
	BIO *bio;

	if (len > G_MAXINT) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "%s too large", what);
		return NULL;
	}
	bio = BIO_new_mem_buf(data, (int)len);
	if (bio == NULL)
		vc_crypto_set_error(error, "out of memory");
	return bio;
}

char *
vc_key_to_pem(EVP_PKEY *key, GError **error)
{
	/* secmem BIO: the buffer holding the clear key is wiped when freed */
	g_autoptr(BIO) bio = BIO_new(BIO_s_secmem());

	if (bio == NULL || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
		vc_crypto_set_error(error, "cannot encode private key");
		return NULL;
	}
	return vc_crypto_bio_to_string(bio);
}

EVP_PKEY *
vc_key_from_pem(const char *pem, gsize len, GError **error)
{
	g_autoptr(BIO) bio = vc_crypto_bio_new_mem(pem, len, "private key", error);
	EVP_PKEY *key;

	if (bio == NULL)
		return NULL;
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	if (key == NULL) {
		ERR_clear_error();
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "not a PEM private key");
		return NULL;
	}
	ERR_clear_error();
	return key;
}

void
vc_secret_free(char *secret)
{
	if (secret == NULL)
		return;
	OPENSSL_cleanse(secret, strlen(secret));
	g_free(secret);
}

gboolean
vc_key_save(EVP_PKEY *key, const char *path, GError **error)
{
	char *pem = vc_key_to_pem(key, error);
	gboolean ok;

	if (pem == NULL)
		return FALSE;
	ok = vc_file_write_atomic(path, pem, strlen(pem), 0600, error);
	vc_secret_free(pem);
	return ok;
}

EVP_PKEY *
vc_key_load(const char *path, GError **error)
{
	gsize len = 0;
	char *data = vc_file_read(path, G_MAXINT, &len, error);
	EVP_PKEY *key;

	if (data == NULL)
		return NULL;
	key = vc_key_from_pem(data, len, error);
	OPENSSL_cleanse(data, len);
	g_free(data);
	if (key == NULL)
		g_prefix_error(error, "%s: ", path);
	return key;
}

char *
vc_cert_to_pem(X509 *cert, GError **error)
{
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());

	if (bio == NULL || !PEM_write_bio_X509(bio, cert)) {
		vc_crypto_set_error(error, "cannot encode certificate");
		return NULL;
	}
	return vc_crypto_bio_to_string(bio);
}

X509 *
vc_cert_from_pem(const char *pem, gsize len, GError **error)
{
	g_autoptr(BIO) bio = vc_crypto_bio_new_mem(pem, len, "certificate", error);
	X509 *cert;

	if (bio == NULL)
		return NULL;
	cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	ERR_clear_error();
	if (cert == NULL)
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "not a PEM certificate");
	return cert;
}

X509 *
vc_cert_from_der(const guint8 *der, gsize len, GError **error)
{
	const unsigned char *p = der;
	X509 *cert;

	if (len > G_MAXLONG) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "certificate too large");
		return NULL;
	}
	cert = d2i_X509(NULL, &p, (long)len);
	ERR_clear_error();
	if (cert == NULL || p != der + len) {
		X509_free(cert);
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "not a DER certificate");
		return NULL;
	}
	return cert;
}

GBytes *
vc_cert_to_der(X509 *cert, GError **error)
{
	unsigned char *der = NULL;
	int len = i2d_X509(cert, &der);
	GBytes *bytes;

	if (len <= 0) {
		vc_crypto_set_error(error, "cannot encode certificate");
		return NULL;
	}
	bytes = g_bytes_new(der, (gsize)len);
	OPENSSL_free(der);
	return bytes;
}

BIO *
vc_file_read_bio(const char *path, gsize max, char **ret_data, gsize *ret_len, GError **error)
{
	gsize len = 0;
	g_autofree char *data = vc_file_read(path, max, &len, error);
	BIO *bio;

	if (data == NULL)
		return NULL;
	bio = vc_crypto_bio_new_mem(data, len, path, error);
	if (bio == NULL)
		return NULL;
	*ret_data = g_steal_pointer(&data);
	if (ret_len != NULL)
		*ret_len = len;
	return bio;
}

GPtrArray *
vc_cert_load_pem_file(const char *path, GError **error)
{
	g_autofree char *data = NULL;
	g_autoptr(BIO) bio = vc_file_read_bio(path, G_MAXINT, &data, NULL, error);
	g_autoptr(GPtrArray) certs = g_ptr_array_new_with_free_func((GDestroyNotify)X509_free);

	if (bio == NULL)
		return NULL;
	for (;;) {
		X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		if (cert == NULL)
			break;
		g_ptr_array_add(certs, cert);
	}
	ERR_clear_error();
	if (certs->len == 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA, "%s: no PEM certificate", path);
		return NULL;
	}
	return g_steal_pointer(&certs);
}

char *
vc_hex_encode(const guint8 *data, gsize len)
{
	static const char digits[] = "0123456789abcdef";
	char *out = g_malloc(len * 2 + 1);

	for (gsize i = 0; i < len; i++) {
		out[2 * i] = digits[data[i] >> 4];
		out[2 * i + 1] = digits[data[i] & 0x0f];
	}
	out[len * 2] = '\0';
	return out;
}

char *
vc_cert_get_serial_hex(X509 *cert)
{
	const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);

	return vc_hex_encode(ASN1_STRING_get0_data(serial), (gsize)ASN1_STRING_length(serial));
}

char *
vc_cert_get_fingerprint_sha256(X509 *cert)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (!X509_digest(cert, EVP_sha256(), md, &len)) {
		ERR_clear_error();
		return NULL;
	}
	return vc_hex_encode(md, len);
}

/* A serial in hex as an ASN1_INTEGER: 1..20 octets (RFC 5280 4.1.2.2),
 * positive and non-zero. */
ASN1_INTEGER *
vc_serial_from_hex(const char *hex, GError **error)
{
	g_autoptr(BIGNUM) bn = NULL;
	ASN1_INTEGER *serial;
	gsize len = hex != NULL ? strlen(hex) : 0;

	if (len == 0 || len > 40) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
			    "serial must be 1 to 20 octets of hex");
		return NULL;
	}
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isxdigit(hex[i])) {
			g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "serial '%s' is not hex", hex);
			return NULL;
		}
	}
	if (!BN_hex2bn(&bn, hex) || BN_is_zero(bn) || BN_num_bytes(bn) > 20) {
		ERR_clear_error();
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
			    "serial '%s' must be positive, non-zero and at most 20 octets", hex);
		return NULL;
	}
	serial = BN_to_ASN1_INTEGER(bn, NULL);
	if (serial == NULL)
		vc_crypto_set_error(error, "cannot encode serial");
	return serial;
}

char *
vc_serial_generate(GError **error)
{
	guint8 buf[16];
	char *hex;

	/* The first octet is redrawn until it is 0x01..0x7f: positive (top bit
	 * clear, X.690 8.3.3) and never a leading zero octet, so the DER
	 * INTEGER is always exactly 16 octets and its hex round-trips through
	 * vc_cert_get_serial_hex() unchanged. Entropy stays above 126 bits. */
	do {
		if (RAND_bytes(buf, sizeof(buf)) != 1) {
			vc_crypto_set_error(error, "cannot draw random serial");
			return NULL;
		}
		buf[0] &= 0x7f;
	} while (buf[0] == 0);
	hex = vc_hex_encode(buf, sizeof(buf));
	OPENSSL_cleanse(buf, sizeof(buf));
	return hex;
}

ASN1_INTEGER *
vc_serial_generate_integer(GError **error)
{
	g_autofree char *hex = vc_serial_generate(error);

	return hex != NULL ? vc_serial_from_hex(hex, error) : NULL;
}

char *
vc_file_read(const char *path, gsize max, gsize *ret_len, GError **error)
{
	g_autofree char *data = NULL;
	gsize len = 0;
	g_autoptr(GError) local = NULL;

	if (!g_file_get_contents(path, &data, &len, &local)) {
		g_set_error(error, VC_ERROR,
			    g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)
				? VC_ERROR_NOT_FOUND
				: VC_ERROR_IO,
			    "%s", local->message);
		return NULL;
	}
	if (len > max) {
		/* may be a key: wipe what was read */
		OPENSSL_cleanse(data, len);
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "%s: larger than %" G_GSIZE_FORMAT " octets", path, max);
		return NULL;
	}
	if (ret_len != NULL)
		*ret_len = len;
	return g_steal_pointer(&data);
}

char *
vc_x509_name_to_string(const X509_NAME *name)
{
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	long len;

	if (bio == NULL || X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0) {
		ERR_clear_error();
		return g_strdup("?");
	}
	len = BIO_get_mem_data(bio, &data);
	return g_strndup(data, (gsize)MAX(len, 0));
}

X509_NAME *
vc_x509_name_from_cn(const char *cn, GError **error)
{
	g_autoptr(X509_NAME) name = X509_NAME_new();

	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"virtcert",
					-1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					-1, 0)) {
		vc_crypto_set_error(error, "invalid common name");
		return NULL;
	}
	return g_steal_pointer(&name);
}

GENERAL_NAME *
vc_general_name_new_ia5(int type, const char *value)
{
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();

	ASN1_STRING_set(s, value, -1);
	GENERAL_NAME_set0_value(gn, type, s);
	return gn;
}

char *
vc_general_name_get_ia5(const ASN1_IA5STRING *s)
{
	int len = ASN1_STRING_length(s);
	const unsigned char *data = ASN1_STRING_get0_data(s);

	if (len < 0 || memchr(data, '\0', (gsize)len) != NULL)
		return NULL;
	return g_strndup((const char *)data, (gsize)len);
}

/* Creates the temporary file beside PATH so that rename() stays in one file
 * system, then makes the rename itself durable by syncing the directory. */
gboolean
vc_file_write_atomic(const char *path, const char *data, gsize len, int mode, GError **error)
{
	g_autofree char *dir = g_path_get_dirname(path);
	g_autofree char *base = g_path_get_basename(path);
	g_autofree char *tmp = g_strdup_printf("%s/.%s.XXXXXX", dir, base);
	gsize done = 0;
	int fd;
	int dfd;

	fd = g_mkstemp_full(tmp, O_RDWR | O_CLOEXEC, mode);
	if (fd < 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot create %s: %s", tmp,
			    g_strerror(errno));
		return FALSE;
	}
	/* the umask must not widen or narrow the requested mode */
	if (fchmod(fd, (mode_t)mode) < 0)
		goto fail;
	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		done += (gsize)n;
	}
	if (fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto fail;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		int r = fsync(dfd);
		int saved = errno;
		close(dfd);
		if (r < 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot sync %s: %s", dir,
				    g_strerror(saved));
			return FALSE;
		}
	}
	return TRUE;

fail : {
	int saved = errno;
	if (fd >= 0)
		close(fd);
	g_unlink(tmp);
	g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot write %s: %s", path, g_strerror(saved));
	return FALSE;
}
}

#ifdef VC_TEST_SEAMS
double
vc_bench_raw_sign_per_s(VcKeyType type, double seconds, GError **error)
{
	g_autoptr(EVP_PKEY) key = vc_key_generate(type, error);
	guint8 msg[256];
	guint8 sig[1024];
	gint64 start;
	gint64 deadline;
	gint64 elapsed;
	guint64 count = 0;

	if (key == NULL)
		return -1;
	if (seconds <= 0)
		seconds = 1;
	if (RAND_bytes(msg, sizeof(msg)) != 1) {
		vc_crypto_set_error(error, "cannot draw random message");
		return -1;
	}
	start = g_get_monotonic_time();
	deadline = start + (gint64)(seconds * G_USEC_PER_SEC);
	do {
		/* check the clock every few signatures only: it is not free */
		for (int i = 0; i < 16; i++) {
			g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new();
			size_t siglen = sizeof(sig);
			if (ctx == NULL ||
			    EVP_DigestSignInit_ex(ctx, NULL,
						  vc_key_get_md(key) != NULL ? "SHA256" : NULL,
						  NULL, NULL, key, NULL) != 1 ||
			    EVP_DigestSign(ctx, sig, &siglen, msg, sizeof(msg)) != 1) {
				vc_crypto_set_error(error, "signing failed");
				return -1;
			}
			count++;
		}
	} while (g_get_monotonic_time() < deadline);
	elapsed = g_get_monotonic_time() - start;
	return (double)count * G_USEC_PER_SEC / (double)MAX(elapsed, 1);
}
#endif /* VC_TEST_SEAMS */
