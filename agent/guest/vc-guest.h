/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <openssl/evp.h>

#include "vc-guest-channel.h"
#include "vc-policy.h"

G_BEGIN_DECLS

/* Delivery of a certificate into a guest through its QEMU guest agent, and
 * guest keygen (the guest makes the key and a CSR). Every function here
 * blocks (the engine runs them on its thread pool), keeps no global state and
 * treats every reply of the guest as hostile: strict JSON types, size caps,
 * a time cap per command and per operation.
 *
 * Needs these agent commands: guest-ping, guest-info, guest-file-open,
 * guest-file-write, guest-file-close, guest-exec, guest-exec-status. When the
 * agent blocks one (qemu-ga --block-rpcs / --allow-rpcs, the RHEL default for
 * guest-exec and guest-file-*), the error is VC_ERROR_GUEST with a message
 * naming the command and docs/guest-agent.md; vc_guest_error_is_blocked()
 * tells that case apart. */

#define VC_GUEST_DELIVERY_TIMEOUT_DEFAULT 60 /* seconds, whole delivery */
#define VC_GUEST_COMMAND_TIMEOUT_DEFAULT 10  /* seconds, one agent command */
#define VC_GUEST_KEYGEN_TIMEOUT 60	     /* seconds, vc_guest_make_csr() */
#define VC_GUEST_CSR_MAX 8192		     /* bytes of CSR PEM read back */
#define VC_GUEST_INLINE_MAX (64 * 1024)	     /* bytes of contents sent inline */
#define VC_GUEST_TMP_SUFFIX ".virtcert-tmp"
#define VC_GUEST_STAGED_KEY_SUFFIX ".virtcert-new"
/* A directory of the agent's user (0700) beside each target, where a delivery
 * writes the new files before it moves them into place; it stays, empty. */
#define VC_GUEST_STAGING_DIR ".virtcert-staging"

/* How vc_guest_deliver() reaches the guest. */
typedef enum {
	/* guest-exec for owner, mode, rename, read-back and reload; a guest
	 * whose agent blocks guest-exec is refused with the fix (the default) */
	VC_GUEST_METHOD_EXEC = 0,
	/* as EXEC; when the agent blocks guest-exec or guest-exec-status but
	 * allows the guest-file-* commands, as FILE_ONLY */
	VC_GUEST_METHOD_AUTO,
	/* guest-file-open/write/seek/read/close only, no process in the guest:
	 * every file must exist already (qemu-ga would make a new one 0666), is
	 * written in place, keeping the owner and mode the guest's administrator
	 * gave it (not atomically: a reader may see it half written), read back
	 * and its SHA-256 compared; owner is not applied, a staged guest key
	 * stays staged, no reload runs (reload_error says so). See
	 * docs/guest-agent.md. */
	VC_GUEST_METHOD_FILE_ONLY,
} VcGuestMethod;

typedef struct {
	/* Contents (PEM). cert_pem is required; chain_pem may be NULL (no chain
	 * file); key_pem is NULL in guest-keygen mode (the key is in the guest). */
	const char *cert_pem;
	const char *chain_pem;
	const char *key_pem;
	/* Absolute paths in the guest, from host policy. chain_path is required
	 * with chain_pem. key_path is required with key_pem; without key_pem
	 * (guest keygen) it may name the key so that a key staged by
	 * vc_guest_make_csr() at vc_guest_staged_key_path(key_path) is moved
	 * into place together with the certificate. */
	const char *cert_path;
	const char *chain_path;
	const char *key_path;
	/* "user" or "user:group" owning the files (chown syntax); NULL: the
	 * agent's user (root in a guest). */
	const char *owner;
	/* Run with /bin/sh -c in the guest after the files are in place; NULL:
	 * none. Its exit status is recorded; a failing reload does not fail the
	 * delivery. */
	const char *reload_command;
	int timeout_s;	       /* whole delivery; 0: VC_GUEST_DELIVERY_TIMEOUT_DEFAULT */
	int command_timeout_s; /* one agent command; 0: VC_GUEST_COMMAND_TIMEOUT_DEFAULT */
	VcGuestMethod method;  /* 0: VC_GUEST_METHOD_EXEC */
} VcGuestDelivery;

typedef enum {
	VC_GUEST_FILE_CERT,
	VC_GUEST_FILE_CHAIN,
	VC_GUEST_FILE_KEY,
	VC_GUEST_N_FILES,
} VcGuestFile;

/* What a delivery did, filled as far as it got, also when it failed (so the
 * caller can log it); release with vc_guest_result_clear(). */
typedef struct {
	/* renamed into place (for the key in guest-keygen mode: a staged key
	 * was installed) */
	gboolean delivered[VC_GUEST_N_FILES];
	/* its content checked in the guest (never set for a guest-made key:
	 * the host does not know it): in the one-exec way, it arrived whole
	 * and the shell wrote every byte (its length, printf's status); in
	 * the others, read back with a SHA-256 equal to what was sent */
	gboolean verified[VC_GUEST_N_FILES];
	gboolean reload_ran;  /* a reload command was started */
	int reload_exit_code; /* its exit status, 128+N if killed by signal N,
			       * -1 if it did not run or finish */
	char *reload_error;   /* why it did not run or finish, or NULL */
	/* what the agent lacks, from guest-info: "guest-exec is disabled", ... */
	GPtrArray *capability_problems;
	gint64 duration_us; /* wall time of the delivery */
	gboolean file_only; /* delivered with guest-file-* alone (VcGuestMethod) */
} VcGuestResult;

void vc_guest_result_clear(VcGuestResult *result);

/* guest-ping: the agent answers. */
gboolean vc_guest_ping(VcGuestChannel *channel, int timeout_s, GError **error);

/* guest-info, as a delivery asks it first (`virtcert doctor`): adds to
 * PROBLEMS what the agent lacks for the guest-exec way ("guest-exec is
 * disabled", "guest-file-open is not supported"); RET_FILES_OK (nullable)
 * says whether the file-only way has all it needs. FALSE with ERROR when
 * the agent does not answer or answers nonsense. */
gboolean vc_guest_check_agent(VcGuestChannel *channel, int timeout_s, GPtrArray *problems,
			      gboolean *ret_files_ok, GError **error);

/* Delivers d: checks the agent (guest-info), writes each file to
 * PATH.virtcert-tmp (created 0600 before any byte is written), sets owner and
 * mode (key 0600, certificate and chain 0644) and renames it over PATH, all
 * before anything else can read it; then reads back every file's SHA-256 and
 * runs the reload command. Up to VC_GUEST_INLINE_MAX bytes of contents all
 * this is one guest-exec (the contents in its environment); larger contents
 * go through guest-file-write (base64 chunks of at most 48 KiB) between two
 * guest-execs. d->method chooses the file-only way instead. result is
 * initialized here. Errors: VC_ERROR_USAGE (bad d), VC_ERROR_GUEST (agent
 * failure, blocked command, hostile reply, digest mismatch, time cap),
 * VC_ERROR_UNAVAILABLE (no agent), VC_ERROR_LIBVIRT. */
gboolean vc_guest_deliver(VcGuestChannel *channel, const VcGuestDelivery *d, VcGuestResult *result,
			  GError **error);

/* Does the guest still have what was delivered: the certificate at
 * CERT_PATH with the SHA-256 of CERT_PEM, and a non-empty key at KEY_PATH?
 * A missing or different file is RET_MATCH FALSE, not an error (a guest on
 * tmpfs that rebooted, a restored snapshot). Errors as vc_guest_deliver(). */
gboolean vc_guest_check_files(VcGuestChannel *channel, const char *cert_path, const char *cert_pem,
			      const char *key_path, gboolean *ret_match, GError **error);

/* TRUE when error says the agent blocks a command virtcert needs. */
gboolean vc_guest_error_is_blocked(const GError *error);

/* Where vc_guest_make_csr() should put a new key so that a later
 * vc_guest_deliver() with key_pem == NULL installs it with the certificate:
 * key_path + VC_GUEST_STAGED_KEY_SUFFIX. */
char *vc_guest_staged_key_path(const char *key_path);

/* Guest keygen: runs `openssl req -new -newkey <type> -nodes -keyout
 * key_path -subj /CN=virtcert` in the guest (umask 077, so the key is 0600
 * from its first byte; parent directories created), reads the CSR from its
 * standard output (at most VC_GUEST_CSR_MAX bytes), checks its self-signature
 * and that its key is of the requested type, and returns the CSR's public
 * key; nothing else of the CSR is used. ret_csr_pem (optional) gets the CSR
 * text. */
EVP_PKEY *vc_guest_make_csr(VcGuestChannel *channel, const char *key_path, VcKeyType type,
			    char **ret_csr_pem, GError **error);

/* The public key of a PEM CSR (at most VC_GUEST_CSR_MAX bytes) whose
 * self-signature verifies and whose key is EC P-256, Ed25519 or RSA of at
 * least 2048 bits. VC_ERROR_INVALID_DATA (not a CSR, too large, other key),
 * VC_ERROR_CRYPTO (signature). */
EVP_PKEY *vc_guest_csr_public_key(const char *pem, gsize len, GError **error);

#ifdef VC_TEST_SEAMS
/* For `virtcert-bench deliver`: n deliveries of d in a row; returns their
 * durations in microseconds (gint64), or NULL at the first failure. */
GArray *vc_guest_bench_deliver(VcGuestChannel *channel, const VcGuestDelivery *d, guint n,
			       GError **error);
#endif

G_END_DECLS
