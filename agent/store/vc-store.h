/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The SQLite store: one database file, WAL, foreign keys, synchronous=FULL
 * (every commit is durable before it returns; throughput comes from group
 * commit, not from weaker syncs). Schema migrations are numbered in code and
 * applied at open inside one transaction each. A VcStore is used from one
 * thread at a time. */

typedef enum {
	VC_CERT_STATUS_PENDING,	  /* serial recorded, not (known to be) signed */
	VC_CERT_STATUS_VALID,	  /* signed, DER stored, not revoked */
	VC_CERT_STATUS_REVOKED,	  /* in the CRL */
	VC_CERT_STATUS_ABANDONED, /* PENDING resolved at startup: revoked, may never have been
				     signed */
} VcCertStatus;

const char *vc_cert_status_to_string(VcCertStatus status);
/* Parses "PENDING", "VALID", ... (as stored and as printed). */
gboolean vc_cert_status_from_string(const char *str, VcCertStatus *ret_status);

typedef struct {
	char *serial; /* lower-case hex, primary key */
	char *ca_id;
	char *vm_uuid;
	char *vm_name;
	GStrv dns_names;
	gint64 not_before; /* unix seconds */
	gint64 not_after;
	gint64 created_at;
	VcCertStatus status;
	gint64 revoked_at;	 /* 0 if not revoked */
	int reason;		 /* RFC 5280 reason code, -1 if not revoked */
	GBytes *der;		 /* NULL while PENDING */
	char *revocation_detail; /* why it was revoked/abandoned, NULL if unknown */
	/* the placement it was issued under, canonical text
	 * (vc_placement_to_canonical(): "" unrestricted); NULL: not recorded
	 * (issued before schema 3, or by hand) */
	char *placement;
} VcCertRecord;

void vc_cert_record_free(VcCertRecord *rec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcCertRecord, vc_cert_record_free)

/* Per-VM state row (the engine owns the meaning of STATE). */
typedef struct {
	char *uuid;	   /* primary key */
	gint64 generation; /* bumped when a UUID starts a new life */
	char *name;
	char *state;	       /* "WANTED", "ISSUED", ... */
	char *current_serial;  /* NULL if none */
	char *names_key;       /* what the current cert was issued as: its DNS names joined
				* with ',', then the engine's ";key=...;life=..." profile */
	gint64 next_action_at; /* renewal / retry time, unix seconds, 0 none */
	gint failures;	       /* consecutive failures, for backoff */
	char *last_error;
	gint64 updated_at;
	gboolean renew_pending; /* a renewal was asked for and no certificate issued since */
} VcDomainRecord;

void vc_domain_record_free(VcDomainRecord *rec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcDomainRecord, vc_domain_record_free)

typedef struct _VcStore VcStore;

#define VC_STORE_SCHEMA_VERSION 4

/* How long a revoked certificate stays on the CRL after it expired. RFC 5280
 * 5.1.2.6 allows dropping it at expiry; a week covers clock skew and relying
 * parties that still hold an older CRL. */
#define VC_STORE_CRL_KEEP_EXPIRED_S (7 * 24 * 3600)

/* Opens (creating if needed, mode 0600) and migrates to the latest schema.
 * A database written by a newer virtcert (schema version above
 * VC_STORE_SCHEMA_VERSION) is refused with VC_ERROR_STORE. */
VcStore *vc_store_open(const char *path, GError **error);

/* The store of a state directory: STATE_DIR/virtcert.db. Once it has been
 * created, the marker STATE_DIR/virtcert.db.created says so, and from then on
 * a store that is missing, empty (0 bytes), without virtcert's schema, or
 * that fails PRAGMA quick_check is refused with VC_ERROR_STORE and the way
 * to restore it, never replaced by a fresh one (which would forget every
 * revocation). Without the marker the store is created (or, made by an
 * older virtcert, adopted) and the marker written. Every open of an
 * existing file, through either function, runs PRAGMA quick_check before
 * anything is written. */
#define VC_STORE_FILE "virtcert.db"
#define VC_STORE_MARKER "virtcert.db.created"
VcStore *vc_store_open_state_dir(const char *state_dir, GError **error);
void vc_store_free(VcStore *store);
/* PRAGMA integrity_check, the full one (`virtcert doctor`): VC_ERROR_STORE
 * naming the first problems and the way back. */
gboolean vc_store_integrity_check(VcStore *store, GError **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcStore, vc_store_free)
int vc_store_get_schema_version(VcStore *store);
const char *vc_store_get_path(VcStore *store);

/* Explicit transactions for group commit: calls between begin and commit
 * share one fsync. Calls outside a transaction commit on their own. Nested
 * begin is an error. Inside a transaction each call is still atomic (a call
 * that fails leaves no partial change and the transaction usable), but
 * nothing is durable before vc_store_commit() returns TRUE. A failed commit
 * rolls the whole transaction back. */
gboolean vc_store_begin(VcStore *store, GError **error);
gboolean vc_store_commit(VcStore *store, GError **error);
void vc_store_rollback(VcStore *store);

#ifdef VC_TEST_SEAMS
/* Injected store faults (test seam, -Dtest_seams=true only), for the paths
 * that handle a refused begin or commit. SPEC is OP:N[:COUNT]: the Nth
 * vc_store_begin() (OP "begin") or vc_store_commit() ("commit") from now on
 * (1: the next) and the COUNT-1 (default 1) after it fail as the real fault
 * would: a begin as when another process holds the write lock (SQLITE_BUSY),
 * a commit as on a full disk (SQLITE_FULL, the transaction rolled back); the
 * error says it was injected. VC_TEST_STORE_FAIL=SPEC in the environment arms
 * every store opened, counting from the end of vc_store_open(). A bad SPEC
 * fails with VC_ERROR_USAGE (and so does vc_store_open()). */
gboolean vc_store_test_fail(VcStore *store, const char *spec, GError **error);
#endif

/* Record before sign: stores a PENDING row with serial, CA, VM, names and
 * validity. Fails with VC_ERROR_NAME_COLLISION if a name is held by another
 * VM's PENDING or VALID, unexpired certificate, and with VC_ERROR_EXISTS if
 * the serial exists. REC->status, revoked_at, reason and der are ignored;
 * created_at 0 means now. Serials are hex, stored lower-case (every function
 * taking a serial accepts either case). DNS names compare case-insensitively. */
gboolean vc_store_cert_record_intent(VcStore *store, const VcCertRecord *rec, GError **error);
/* PENDING -> VALID with the signed DER. Any other status: VC_ERROR_FAILED;
 * unknown serial: VC_ERROR_NOT_FOUND (same for abandon and revoke). */
gboolean vc_store_cert_mark_issued(VcStore *store, const char *serial, GBytes *der, GError **error);
/* PENDING -> ABANDONED (signing failed, or recovery at startup). An abandoned
 * serial is listed on the CRL: it may have been signed before a crash. It gets
 * reason 0 (unspecified), revoked_at = now and WHY as revocation_detail. */
gboolean vc_store_cert_abandon(VcStore *store, const char *serial, const char *why, GError **error);
/* VALID|PENDING -> REVOKED, durable when it returns (inside an explicit
 * transaction: durable when vc_store_commit() returns). Revoking a revoked or
 * abandoned certificate is a no-op returning TRUE (the first reason and time
 * stay; an abandoned serial is already on the CRL). REASON is an RFC 5280
 * 5.3.1 CRLReason other than 7 (unused) and 8 (removeFromCRL, delta CRLs
 * only), else VC_ERROR_INVALID_DATA. WHEN 0 means now. */
gboolean vc_store_cert_revoke(VcStore *store, const char *serial, int reason, gint64 when,
			      GError **error);
/* VC_ERROR_NOT_FOUND if there is no such serial. */
VcCertRecord *vc_store_cert_get(VcStore *store, const char *serial, GError **error);
/* All certificates, or one VM's (VM_UUID not NULL), newest first. */
GPtrArray *vc_store_cert_list(VcStore *store, const char *vm_uuid, GError **error);
/* PENDING rows (startup recovery). */
GPtrArray *vc_store_cert_list_pending(VcStore *store, GError **error);
/* REVOKED and ABANDONED rows of CA_ID that have not expired before
 * NOW - VC_STORE_CRL_KEEP_EXPIRED_S, oldest revocation first. For size, der
 * and dns_names are left NULL: a CRL needs neither (vc_store_cert_get has
 * them). */
GPtrArray *vc_store_cert_list_revoked(VcStore *store, const char *ca_id, GError **error);
/* What a CRL entry needs of a revoked or abandoned certificate. */
typedef struct {
	char *serial; /* lower-case hex */
	gint64 revoked_at;
	int reason; /* -1: none recorded */
} VcStoreCrlRow;

void vc_store_crl_row_clear(VcStoreCrlRow *row);
/* The rows vc_store_cert_list_revoked() lists, in its order, with only what
 * a CRL needs: an array of VcStoreCrlRow (cleared when it is freed). For a
 * CRL of 100,000 entries, the full records cost a good part of a rebuild. */
GArray *vc_store_crl_list(VcStore *store, const char *ca_id, GError **error);
/* The notAfter (unix s) of the VM certificate that expires first among the
 * VMs' current certificates that are VALID; 0 when there is none. */
gboolean vc_store_cert_get_soonest_expiry(VcStore *store, gint64 *ret_not_after, GError **error);
/* vc_store_cert_get() without the DER and the names: status, times and
 * reason only (the OCSP responder's question). */
VcCertRecord *vc_store_cert_get_brief(VcStore *store, const char *serial, GError **error);
/* Serials (char*) of the VALID, unexpired certificates of CA_ID. */
GPtrArray *vc_store_cert_list_valid_serials(VcStore *store, const char *ca_id, GError **error);
/* Resolves every PENDING row to ABANDONED (as vc_store_cert_abandon, one
 * audit row each); returns how many. */
gboolean vc_store_recover(VcStore *store, guint *ret_count, GError **error);

/* Next CRL number for CA_ID: strictly greater than every number handed out
 * before, durable before it returns (RFC 5280 5.2.3). Refused (VC_ERROR_FAILED)
 * inside an explicit transaction, where a rollback could reuse it. */
gboolean vc_store_crl_next_number(VcStore *store, const char *ca_id, guint64 *ret_number,
				  GError **error);
/* The same, and also greater than ABOVE (a number recorded outside the
 * store: a store restored from an older backup must not hand out a number
 * again). */
gboolean vc_store_crl_next_number_above(VcStore *store, const char *ca_id, guint64 above,
					guint64 *ret_number, GError **error);

/* Domains. put inserts or replaces the row (updated_at 0 means now) and
 * appends an audit row when the state or generation changes; get and delete
 * fail with VC_ERROR_NOT_FOUND for an unknown UUID; list is ordered by UUID. */
gboolean vc_store_domain_put(VcStore *store, const VcDomainRecord *rec, GError **error);
VcDomainRecord *vc_store_domain_get(VcStore *store, const char *uuid, GError **error);
GPtrArray *vc_store_domain_list(VcStore *store, GError **error);
gboolean vc_store_domain_delete(VcStore *store, const char *uuid, GError **error);

/* Append-only audit log (UPDATE and DELETE are refused by triggers). The
 * store itself appends "cert.intent", "cert.issued", "cert.abandoned",
 * "cert.revoked", "domain.state" and "domain.deleted" in the transaction of
 * the change they record. */
gboolean vc_store_audit(VcStore *store, const char *event, const char *vm_uuid, const char *serial,
			const char *detail, GError **error);
/* Newest first, at most LIMIT rows (0: all); each a GStrv {time, event, vm_uuid,
 * serial, detail}, time as ISO 8601 UTC ("2024-05-01T12:00:00Z"), absent
 * values as "" (a GStrv cannot hold NULL). */
GPtrArray *vc_store_audit_list(VcStore *store, guint limit, GError **error);

G_END_DECLS
