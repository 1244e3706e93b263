/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vc-store.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vc-autoptr.h"
#include "vc-error.h"

/* ---- schema --------------------------------------------------------------
 *
 * Migrations are numbered and append-only: a released migration is never
 * edited, a change is a new migration. Each runs in its own transaction and
 * sets user_version inside it, so a crash leaves the database at the old or
 * the new version, never between. */

typedef struct {
	int version;
	const char *sql;
} VcStoreMigration;

static const VcStoreMigration vc_store_migrations[] = {
    {1, "CREATE TABLE certificates ("
	" serial TEXT PRIMARY KEY NOT NULL,"
	" ca_id TEXT NOT NULL,"
	" vm_uuid TEXT NOT NULL,"
	" vm_name TEXT,"
	" not_before INTEGER NOT NULL,"
	" not_after INTEGER NOT NULL,"
	" created_at INTEGER NOT NULL,"
	" status TEXT NOT NULL"
	"  CHECK (status IN ('PENDING', 'VALID', 'REVOKED', 'ABANDONED')),"
	" revoked_at INTEGER,"
	" reason INTEGER,"
	" der BLOB);"
	/* idx keeps the order of the SAN list: the first name is the CN */
	"CREATE TABLE cert_names ("
	" serial TEXT NOT NULL REFERENCES certificates(serial) ON DELETE CASCADE,"
	" idx INTEGER NOT NULL,"
	" dns_name TEXT NOT NULL COLLATE NOCASE,"
	" PRIMARY KEY (serial, idx));"
	"CREATE INDEX cert_names_dns_name ON cert_names(dns_name);"
	"CREATE TABLE crl_numbers ("
	" ca_id TEXT PRIMARY KEY NOT NULL,"
	" last_number INTEGER NOT NULL);"
	"CREATE TABLE audit ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" time INTEGER NOT NULL,"
	" event TEXT NOT NULL,"
	" vm_uuid TEXT,"
	" serial TEXT,"
	" detail TEXT);"
	"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
	" BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
	"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
	" BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"},
    {2, "CREATE TABLE domains ("
	" uuid TEXT PRIMARY KEY NOT NULL,"
	" generation INTEGER NOT NULL DEFAULT 0,"
	" name TEXT,"
	" state TEXT NOT NULL,"
	" current_serial TEXT,"
	" names_key TEXT,"
	" next_action_at INTEGER NOT NULL DEFAULT 0,"
	" failures INTEGER NOT NULL DEFAULT 0,"
	" last_error TEXT,"
	" updated_at INTEGER NOT NULL);"
	"CREATE INDEX domains_next_action_at ON domains(next_action_at)"
	" WHERE next_action_at > 0;"
	"ALTER TABLE certificates ADD COLUMN revocation_detail TEXT;"
	"CREATE INDEX certificates_vm_uuid ON certificates(vm_uuid, created_at);"
	"CREATE INDEX certificates_pending ON certificates(created_at)"
	" WHERE status = 'PENDING';"
	"CREATE INDEX certificates_revoked ON certificates(ca_id, not_after)"
	" WHERE status IN ('REVOKED', 'ABANDONED');"},
    /* a renewal asked for (`virtcert renew`, lost files) survives failures
     * and restarts until a new certificate is issued */
    {3, "ALTER TABLE domains ADD COLUMN renew_pending INTEGER NOT NULL DEFAULT 0;"},
    /* the placement a certificate was issued under (policy/vc-placement.h
     * canonical text; "" unrestricted, NULL: issued before this column, or
     * outside the engine): a handover is judged by it */
    {4, "ALTER TABLE certificates ADD COLUMN placement TEXT;"},
};

G_STATIC_ASSERT(G_N_ELEMENTS(vc_store_migrations) == VC_STORE_SCHEMA_VERSION);

/* ---- cached statements ---------------------------------------------------- */

typedef enum {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_SAVEPOINT,
	STMT_RELEASE,
	STMT_ROLLBACK_TO,
	STMT_CERT_INSERT,
	STMT_NAME_INSERT,
	STMT_NAME_HOLDER,
	STMT_CERT_STATUS,
	STMT_CERT_MARK_ISSUED,
	STMT_CERT_ABANDON,
	STMT_CERT_REVOKE,
	STMT_CERT_GET,
	STMT_CERT_LIST_ALL,
	STMT_CERT_LIST_VM,
	STMT_CERT_LIST_PENDING,
	STMT_CERT_LIST_REVOKED,
	STMT_CERT_SOONEST_EXPIRY,
	STMT_CERT_LIST_CRL,
	STMT_CERT_NAMES,
	STMT_CRL_NEXT,
	STMT_DOMAIN_STATE,
	STMT_DOMAIN_PUT,
	STMT_DOMAIN_GET,
	STMT_DOMAIN_LIST,
	STMT_DOMAIN_DELETE,
	STMT_AUDIT_INSERT,
	STMT_AUDIT_LIST,
	STMT_CERT_GET_BRIEF,
	STMT_CERT_LIST_VALID_SERIALS,
	STMT_COUNT,
} VcStoreStmt;

#define CERT_COLUMNS                                                                               \
	"serial, ca_id, vm_uuid, vm_name, not_before, not_after, created_at, status, "             \
	"revoked_at, reason, der, revocation_detail, placement"
#define CERT_COLUMNS_NO_DER                                                                        \
	"serial, ca_id, vm_uuid, vm_name, not_before, not_after, created_at, status, "             \
	"revoked_at, reason, NULL, revocation_detail, placement"
#define DOMAIN_COLUMNS                                                                             \
	"uuid, generation, name, state, current_serial, names_key, next_action_at, "               \
	"failures, last_error, updated_at, renew_pending"

static const char *const vc_store_stmt_sql[STMT_COUNT] = {
    /* IMMEDIATE takes the write lock first, so that the checks a call makes
     * (name collisions, status) still hold when it writes, even with the
     * CLI and the daemon on the same file. */
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_SAVEPOINT] = "SAVEPOINT vc_call",
    [STMT_RELEASE] = "RELEASE vc_call",
    [STMT_ROLLBACK_TO] = "ROLLBACK TO vc_call",
    [STMT_CERT_INSERT] = "INSERT INTO certificates (serial, ca_id, vm_uuid, vm_name, not_before,"
			 " not_after, created_at, status, placement)"
			 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'PENDING', ?8)",
    [STMT_NAME_INSERT] = "INSERT INTO cert_names (serial, idx, dns_name) VALUES (?1, ?2, ?3)",
    [STMT_NAME_HOLDER] = "SELECT c.vm_uuid, c.vm_name, c.serial, c.status, c.not_after"
			 " FROM cert_names n JOIN certificates c ON c.serial = n.serial"
			 " WHERE n.dns_name = ?1 AND c.vm_uuid != ?2"
			 " AND c.status IN ('PENDING', 'VALID') AND c.not_after > ?3"
			 " ORDER BY c.not_after DESC LIMIT 1",
    [STMT_CERT_STATUS] = "SELECT status FROM certificates WHERE serial = ?1",
    [STMT_CERT_MARK_ISSUED] = "UPDATE certificates SET status = 'VALID', der = ?2"
			      " WHERE serial = ?1 AND status = 'PENDING' RETURNING vm_uuid",
    [STMT_CERT_ABANDON] =
	"UPDATE certificates SET status = 'ABANDONED', revoked_at = ?2, reason = 0,"
	" revocation_detail = ?3 WHERE serial = ?1 AND status = 'PENDING' RETURNING vm_uuid",
    [STMT_CERT_REVOKE] = "UPDATE certificates SET status = 'REVOKED', revoked_at = ?2,"
			 " reason = ?3 WHERE serial = ?1 AND status IN ('PENDING', 'VALID')"
			 " RETURNING vm_uuid",
    [STMT_CERT_GET] = "SELECT " CERT_COLUMNS " FROM certificates WHERE serial = ?1",
    [STMT_CERT_LIST_ALL] =
	"SELECT " CERT_COLUMNS " FROM certificates ORDER BY created_at DESC, rowid DESC",
    [STMT_CERT_LIST_VM] = "SELECT " CERT_COLUMNS " FROM certificates WHERE vm_uuid = ?1"
			  " ORDER BY created_at DESC, rowid DESC",
    [STMT_CERT_LIST_PENDING] = "SELECT " CERT_COLUMNS " FROM certificates"
			       " WHERE status = 'PENDING' ORDER BY created_at, rowid",
    [STMT_CERT_LIST_REVOKED] = "SELECT " CERT_COLUMNS_NO_DER " FROM certificates"
			       " WHERE status IN ('REVOKED', 'ABANDONED')"
			       " AND ca_id = ?1 AND not_after >= ?2"
			       " ORDER BY revoked_at, serial",
    [STMT_CERT_LIST_CRL] = "SELECT serial, revoked_at, reason FROM certificates"
			   " WHERE status IN ('REVOKED', 'ABANDONED')"
			   " AND ca_id = ?1 AND not_after >= ?2"
			   " ORDER BY revoked_at, serial",
    [STMT_CERT_SOONEST_EXPIRY] = "SELECT MIN(c.not_after) FROM domains d"
				 " JOIN certificates c ON c.serial = d.current_serial"
				 " WHERE c.status = 'VALID'",
    [STMT_CERT_NAMES] = "SELECT dns_name FROM cert_names WHERE serial = ?1 ORDER BY idx",
    /* RFC 5280 5.2.3: CRL numbers are monotonically increasing; the first
     * one handed out is 1. */
    [STMT_CRL_NEXT] = "INSERT INTO crl_numbers (ca_id, last_number) VALUES (?1, ?2 + 1)"
		      " ON CONFLICT (ca_id) DO UPDATE SET last_number = MAX(last_number, ?2) + 1"
		      " RETURNING last_number",
    [STMT_DOMAIN_STATE] = "SELECT state, generation FROM domains WHERE uuid = ?1",
    [STMT_DOMAIN_PUT] = "INSERT OR REPLACE INTO domains (" DOMAIN_COLUMNS ")"
			" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [STMT_DOMAIN_GET] = "SELECT " DOMAIN_COLUMNS " FROM domains WHERE uuid = ?1",
    [STMT_DOMAIN_LIST] = "SELECT " DOMAIN_COLUMNS " FROM domains ORDER BY uuid",
    [STMT_DOMAIN_DELETE] = "DELETE FROM domains WHERE uuid = ?1",
    [STMT_AUDIT_INSERT] = "INSERT INTO audit (time, event, vm_uuid, serial, detail)"
			  " VALUES (?1, ?2, ?3, ?4, ?5)",
    [STMT_AUDIT_LIST] = "SELECT time, event, vm_uuid, serial, detail FROM audit"
			" ORDER BY id DESC LIMIT ?1",
    [STMT_CERT_GET_BRIEF] = "SELECT " CERT_COLUMNS_NO_DER " FROM certificates WHERE serial = ?1",
    [STMT_CERT_LIST_VALID_SERIALS] = "SELECT serial FROM certificates"
				     " WHERE status = 'VALID' AND ca_id = ?1 AND not_after > ?2"
				     " ORDER BY serial",
};

struct _VcStore {
	sqlite3 *db;
	char *path;
	int schema_version;
	gboolean in_transaction; /* between vc_store_begin and commit/rollback */
	sqlite3_stmt *stmts[STMT_COUNT];
#ifdef VC_TEST_SEAMS
	/* injected faults (vc_store_test_fail()): per operation, calls left
	 * before the first failure (1: the next) and failures left */
	guint fail_in[2];
	guint fail_count[2];
#endif
};

/* A cached statement borrowed for one call: the cleanup resets it for the
 * next user instead of finalizing it. */
typedef sqlite3_stmt VcStoreCachedStmt;

static void
vc_store_cached_stmt_release(VcStoreCachedStmt *stmt)
{
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcStoreCachedStmt, vc_store_cached_stmt_release)

static gint64
vc_store_now(void)
{
	return g_get_real_time() / G_USEC_PER_SEC;
}

static gboolean G_GNUC_PRINTF(3, 4)
    vc_store_fail(VcStore *store, GError **error, const char *fmt, ...)
{
	va_list ap;
	g_autofree char *what = NULL;

	va_start(ap, fmt);
	what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(error, VC_ERROR, VC_ERROR_STORE, "%s: %s (SQLite error %d, database %s)", what,
		    sqlite3_errmsg(store->db), sqlite3_extended_errcode(store->db), store->path);
	return FALSE;
}

static VcStoreCachedStmt *
vc_store_stmt(VcStore *store, VcStoreStmt id, GError **error)
{
	if (store->stmts[id] == NULL) {
		int rc = sqlite3_prepare_v3(store->db, vc_store_stmt_sql[id], -1,
					    SQLITE_PREPARE_PERSISTENT, &store->stmts[id], NULL);
		if (rc != SQLITE_OK) {
			vc_store_fail(store, error, "preparing statement \"%s\"",
				      vc_store_stmt_sql[id]);
			return NULL;
		}
	}
	return store->stmts[id];
}

/* Steps a statement that returns no rows (or whose rows are not wanted). */
static gboolean
vc_store_step_done(VcStore *store, sqlite3_stmt *stmt, const char *what, GError **error)
{
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE)
		return vc_store_fail(store, error, "%s", what);
	return TRUE;
}

static gboolean
vc_store_run(VcStore *store, VcStoreStmt id, const char *what, GError **error)
{
	g_autoptr(VcStoreCachedStmt) stmt = vc_store_stmt(store, id, error);

	if (stmt == NULL)
		return FALSE;
	return vc_store_step_done(store, stmt, what, error);
}

static void
vc_store_bind_text(sqlite3_stmt *stmt, int i, const char *text)
{
	if (text == NULL)
		sqlite3_bind_null(stmt, i);
	else
		sqlite3_bind_text(stmt, i, text, -1, SQLITE_STATIC);
}

static char *
vc_store_column_strdup(sqlite3_stmt *stmt, int i)
{
	return g_strdup((const char *)sqlite3_column_text(stmt, i));
}

/* ---- per-call transactions ----------------------------------------------- */

/* Every public call that writes runs between call_begin and call_end: on its
 * own it is one durable transaction; inside vc_store_begin it is a savepoint,
 * so a failed call undoes only itself and the group commit goes on. */
static gboolean
vc_store_call_begin(VcStore *store, GError **error)
{
	if (!store->in_transaction)
		return vc_store_run(store, STMT_BEGIN, "starting a transaction", error);
	if (sqlite3_get_autocommit(store->db)) {
		/* SQLite rolled the transaction back itself (disk full, I/O
		 * error); carrying on would commit half a batch one call at a
		 * time. */
		g_set_error(error, VC_ERROR, VC_ERROR_STORE,
			    "the transaction on %s was rolled back after an earlier error; "
			    "roll back and retry the batch",
			    store->path);
		return FALSE;
	}
	return vc_store_run(store, STMT_SAVEPOINT, "starting a savepoint", error);
}

static gboolean
vc_store_call_end(VcStore *store, gboolean ok, GError **error)
{
	if (ok) {
		if (store->in_transaction)
			ok = vc_store_run(store, STMT_RELEASE, "releasing a savepoint", error);
		else
			ok = vc_store_run(store, STMT_COMMIT, "committing", error);
		if (ok)
			return TRUE;
	}
	/* Undo; errors here are secondary to the one already reported. */
	if (sqlite3_get_autocommit(store->db))
		return FALSE;
	if (store->in_transaction) {
		vc_store_run(store, STMT_ROLLBACK_TO, "rolling back a savepoint", NULL);
		vc_store_run(store, STMT_RELEASE, "releasing a savepoint", NULL);
	} else {
		vc_store_run(store, STMT_ROLLBACK, "rolling back", NULL);
	}
	return FALSE;
}

/* ---- injected faults (test seam) ----------------------------------------- */

typedef enum {
	VC_STORE_FAULT_BEGIN,
	VC_STORE_FAULT_COMMIT,
} VcStoreFault;

#ifdef VC_TEST_SEAMS
/* What the real fault says: BEGIN IMMEDIATE fails when another process holds
 * the write lock past the busy timeout, COMMIT when the disk is full. */
static gboolean
vc_store_test_fault(VcStore *store, VcStoreFault op, const char *what, GError **error)
{
	int code = op == VC_STORE_FAULT_BEGIN ? SQLITE_BUSY : SQLITE_FULL;

	if (store->fail_count[op] == 0 || --store->fail_in[op] > 0)
		return FALSE;
	store->fail_in[op] = 1;
	store->fail_count[op]--;
	g_set_error(error, VC_ERROR, VC_ERROR_STORE,
		    "%s: %s (SQLite error %d, database %s; injected by VC_TEST_STORE_FAIL)", what,
		    sqlite3_errstr(code), code, store->path);
	return TRUE;
}

gboolean
vc_store_test_fail(VcStore *store, const char *spec, GError **error)
{
	g_auto(GStrv) parts = g_strsplit(spec, ":", -1);
	guint n = parts[0] != NULL ? g_strv_length(parts) : 0;
	guint64 nth = 0, count = 1;
	VcStoreFault op;

	if (n < 2 || n > 3)
		goto bad;
	if (g_str_equal(parts[0], "begin"))
		op = VC_STORE_FAULT_BEGIN;
	else if (g_str_equal(parts[0], "commit"))
		op = VC_STORE_FAULT_COMMIT;
	else
		goto bad;
	if (!g_ascii_string_to_unsigned(parts[1], 10, 1, G_MAXUINT, &nth, NULL) ||
	    (n == 3 && !g_ascii_string_to_unsigned(parts[2], 10, 1, G_MAXUINT, &count, NULL)))
		goto bad;
	store->fail_in[op] = (guint)nth;
	store->fail_count[op] = (guint)count;
	return TRUE;
bad:
	g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
		    "VC_TEST_STORE_FAIL=\"%s\": expected begin:N[:COUNT] or commit:N[:COUNT] "
		    "with N and COUNT at least 1",
		    spec);
	return FALSE;
}
#else
#define vc_store_test_fault(store, op, what, error) FALSE
#endif

gboolean
vc_store_begin(VcStore *store, GError **error)
{
	g_return_val_if_fail(store != NULL, FALSE);

	if (store->in_transaction) {
		g_set_error(error, VC_ERROR, VC_ERROR_FAILED,
			    "a transaction is already open on %s: transactions do not nest",
			    store->path);
		return FALSE;
	}
	if (vc_store_test_fault(store, VC_STORE_FAULT_BEGIN, "starting a transaction", error))
		return FALSE;
	if (!vc_store_run(store, STMT_BEGIN, "starting a transaction", error))
		return FALSE;
	store->in_transaction = TRUE;
	return TRUE;
}

gboolean
vc_store_commit(VcStore *store, GError **error)
{
	g_return_val_if_fail(store != NULL, FALSE);

	if (!store->in_transaction) {
		g_set_error(error, VC_ERROR, VC_ERROR_FAILED,
			    "no transaction is open on %s to commit", store->path);
		return FALSE;
	}
	store->in_transaction = FALSE;
	if (sqlite3_get_autocommit(store->db)) {
		g_set_error(error, VC_ERROR, VC_ERROR_STORE,
			    "the transaction on %s was rolled back after an earlier error; "
			    "nothing of it was committed",
			    store->path);
		return FALSE;
	}
	if (vc_store_test_fault(store, VC_STORE_FAULT_COMMIT, "committing a transaction", error)) {
		vc_store_run(store, STMT_ROLLBACK, "rolling back", NULL);
		return FALSE;
	}
	if (!vc_store_run(store, STMT_COMMIT, "committing a transaction", error)) {
		if (!sqlite3_get_autocommit(store->db))
			vc_store_run(store, STMT_ROLLBACK, "rolling back", NULL);
		return FALSE;
	}
	return TRUE;
}

void
vc_store_rollback(VcStore *store)
{
	g_return_if_fail(store != NULL);

	if (!store->in_transaction)
		return;
	store->in_transaction = FALSE;
	if (!sqlite3_get_autocommit(store->db))
		vc_store_run(store, STMT_ROLLBACK, "rolling back", NULL);
}

/* ---- open, migrate, close ------------------------------------------------ */

static gboolean
vc_store_exec(VcStore *store, const char *sql, const char *what, GError **error)
{
	if (sqlite3_exec(store->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return vc_store_fail(store, error, "%s", what);
	return TRUE;
}

static gboolean
vc_store_read_user_version(VcStore *store, int *ret_version, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;

	if (sqlite3_prepare_v2(store->db, "PRAGMA user_version", -1, &stmt, NULL) != SQLITE_OK ||
	    sqlite3_step(stmt) != SQLITE_ROW)
		return vc_store_fail(store, error, "reading the schema version");
	*ret_version = sqlite3_column_int(stmt, 0);
	return TRUE;
}

static gboolean
vc_store_check_version(VcStore *store, int version, GError **error)
{
	if (version > VC_STORE_SCHEMA_VERSION) {
		g_set_error(error, VC_ERROR, VC_ERROR_STORE,
			    "database %s has schema version %d, but this virtcert knows only "
			    "versions up to %d: it was written by a newer virtcert; upgrade "
			    "virtcert",
			    store->path, version, VC_STORE_SCHEMA_VERSION);
		return FALSE;
	}
	if (version < 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_STORE,
			    "database %s has an invalid schema version %d", store->path, version);
		return FALSE;
	}
	return TRUE;
}

static gboolean
vc_store_migrate_one(VcStore *store, const VcStoreMigration *m, GError **error)
{
	int version = 0;
	g_autofree char *set_version = NULL;
	g_autofree char *what = NULL;

	if (!vc_store_exec(store, "BEGIN IMMEDIATE", "starting a migration", error))
		return FALSE;
	/* Read again under the write lock: another process may have migrated
	 * the database since we looked. */
	if (!vc_store_read_user_version(store, &version, error) ||
	    !vc_store_check_version(store, version, error))
		goto fail;
	if (version >= m->version)
		return vc_store_exec(store, "COMMIT", "ending a migration", error);
	if (version != m->version - 1) {
		g_set_error(error, VC_ERROR, VC_ERROR_STORE,
			    "database %s is at schema version %d and cannot be migrated to %d",
			    store->path, version, m->version);
		goto fail;
	}
	what = g_strdup_printf("migrating to schema version %d", m->version);
	set_version = g_strdup_printf("PRAGMA user_version = %d", m->version);
	if (!vc_store_exec(store, m->sql, what, error) ||
	    !vc_store_exec(store, set_version, what, error) ||
	    !vc_store_exec(store, "COMMIT", what, error))
		goto fail;
	return TRUE;
fail:
	if (!sqlite3_get_autocommit(store->db))
		sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
	return FALSE;
}

static gboolean
vc_store_migrate(VcStore *store, GError **error)
{
	int version = 0;

	if (!vc_store_read_user_version(store, &version, error) ||
	    !vc_store_check_version(store, version, error))
		return FALSE;
	for (gsize i = 0; i < G_N_ELEMENTS(vc_store_migrations); i++) {
		if (vc_store_migrations[i].version <= version)
			continue;
		if (!vc_store_migrate_one(store, &vc_store_migrations[i], error))
			return FALSE;
	}
	if (!vc_store_read_user_version(store, &store->schema_version, error))
		return FALSE;
	return TRUE;
}

/* Creates the file ourselves so that its mode is 0600 whatever the umask;
 * SQLite gives the -wal and -shm files the mode of the database file. Returns
 * TRUE in *ret_created if we made it. */
static gboolean
vc_store_create_file(const char *path, gboolean *ret_created, GError **error)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0) {
		int saved_errno = errno;
		if (saved_errno == EEXIST) {
			*ret_created = FALSE;
			return TRUE;
		}
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot create store %s: %s", path,
			    g_strerror(saved_errno));
		return FALSE;
	}
	if (fchmod(fd, 0600) < 0) {
		int saved_errno = errno;
		close(fd);
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot set the mode of store %s: %s",
			    path, g_strerror(saved_errno));
		return FALSE;
	}
	close(fd);
	*ret_created = TRUE;
	return TRUE;
}

#define VC_STORE_RESTORE_HINT                                                                      \
	"stop virtcertd and restore the store from a backup (see 'Backup and restore' in "         \
	"docs/backup-restore.md)"

/* PRAGMA quick_check (https://sqlite.org/pragma.html#pragma_quick_check) on
 * a store that existed, before anything writes to it: a corrupt store is
 * never written to, it is reported with the way back. */
static gboolean
vc_store_quick_check(VcStore *store, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	g_autoptr(GString) problems = g_string_new(NULL);
	guint n = 0;
	int rc;

	/* a failed prepare and a failed step get the same answer */
	rc = sqlite3_prepare_v2(store->db, "PRAGMA quick_check(5)", -1, &stmt, NULL);
	if (rc == SQLITE_OK) {
		while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
			const char *line = (const char *)sqlite3_column_text(stmt, 0);
			if (g_strcmp0(line, "ok") == 0)
				continue;
			if (n++ > 0)
				g_string_append(problems, "; ");
			g_string_append(problems, line != NULL ? line : "?");
		}
	}
	if (rc != SQLITE_DONE) {
		g_set_error(error, VC_ERROR, VC_ERROR_STORE,
			    "store %s fails PRAGMA quick_check: it is not a SQLite database or "
			    "is damaged (%s, SQLite error %d); nothing was written to "
			    "it: " VC_STORE_RESTORE_HINT,
			    store->path, sqlite3_errmsg(store->db),
			    sqlite3_extended_errcode(store->db));
		return FALSE;
	}
	if (n > 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_STORE,
			    "store %s is corrupt (PRAGMA quick_check: %s); nothing was written "
			    "to it: " VC_STORE_RESTORE_HINT,
			    store->path, problems->str);
		return FALSE;
	}
	return TRUE;
}

gboolean
vc_store_integrity_check(VcStore *store, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	g_autoptr(GString) problems = g_string_new(NULL);
	guint n = 0;
	int rc;

	g_return_val_if_fail(store != NULL, FALSE);
	if (sqlite3_prepare_v2(store->db, "PRAGMA integrity_check(10)", -1, &stmt, NULL) !=
	    SQLITE_OK) {
		g_set_error(error, VC_ERROR, VC_ERROR_STORE, "store %s: PRAGMA integrity_check: %s",
			    store->path, sqlite3_errmsg(store->db));
		return FALSE;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *line = (const char *)sqlite3_column_text(stmt, 0);
		if (g_strcmp0(line, "ok") == 0)
			continue;
		g_string_append_printf(problems, "%s%s", n++ > 0 ? "; " : "",
				       line != NULL ? line : "?");
	}
	if (rc != SQLITE_DONE || n > 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_STORE,
			    "store %s fails PRAGMA integrity_check (%s): " VC_STORE_RESTORE_HINT,
			    store->path, n > 0 ? problems->str : sqlite3_errmsg(store->db));
		return FALSE;
	}
	return TRUE;
}

static gboolean
vc_store_configure(VcStore *store, gboolean in_memory, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	const char *mode;

	sqlite3_extended_result_codes(store->db, 1);
	/* journal_mode is the first statement to read the file, so a file that
	 * is not a database fails here. */
	if (sqlite3_prepare_v2(store->db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL) !=
		SQLITE_OK ||
	    sqlite3_step(stmt) != SQLITE_ROW)
		return vc_store_fail(store, error, "opening the store");
	mode = (const char *)sqlite3_column_text(stmt, 0);
	if (!in_memory && g_strcmp0(mode, "wal") != 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_STORE,
			    "cannot put store %s in WAL mode (journal mode is %s)", store->path,
			    mode != NULL ? mode : "unknown");
		return FALSE;
	}
	/* In WAL mode, FULL syncs the WAL on every commit: a commit that
	 * returned survives a power loss. trusted_schema=OFF keeps a tampered
	 * database file from running functions through views or triggers. */
	/* temp_store=MEMORY keeps statement and savepoint journals in memory:
	 * they only serve ROLLBACK TO inside a live transaction and are never
	 * read after a crash (the WAL is), and on a file every page a call
	 * touches was copied there first, a third of the cost of recording an
	 * intent. wal_autocheckpoint=4000 pages (16 MiB): a group commit writes
	 * a few hundred pages, and at the default of 1000 every fifth commit
	 * also paid a checkpoint with its own sync of the database file; fewer,
	 * larger checkpoints write each hot index page back once instead of
	 * four times. Neither changes when a commit is durable. */
	return vc_store_exec(store,
			     "PRAGMA synchronous = FULL;"
			     "PRAGMA foreign_keys = ON;"
			     "PRAGMA trusted_schema = OFF;"
			     "PRAGMA temp_store = MEMORY;"
			     "PRAGMA wal_autocheckpoint = 4000;",
			     "configuring the store", error);
}

/* The store and its directory (where SQLite keeps the WAL and the shared
 * memory file) must be writable: every revocation is written before it is
 * reported. A read-only state directory (a read-only mount, a file system
 * remounted read-only after errors, wrong ownership) is said as such, not
 * taken for a damaged store: the store is intact and must not be restored. */
static gboolean
vc_store_check_writable(const char *path, GError **error)
{
	g_autofree char *dir = g_path_get_dirname(path);
	const char *what = dir;
	int saved_errno = 0;

	if (access(dir, W_OK | X_OK) < 0)
		saved_errno = errno;
	else if (access(path, W_OK) < 0 && errno != ENOENT) {
		saved_errno = errno;
		what = path;
	}
	if (saved_errno == 0)
		return TRUE;
	g_set_error(error, VC_ERROR, VC_ERROR_IO,
		    "store %s cannot be written: %s is %s (%s); virtcert writes every issuance "
		    "and revocation before it reports it. Make the state directory writable "
		    "(remount it read-write, or fix its owner) and start again; the store "
		    "itself is not damaged, do not restore it",
		    path, what,
		    saved_errno == EROFS ? "on a read-only file system" : "not writable",
		    g_strerror(saved_errno));
	return FALSE;
}

/* MUST_EXIST: the store was created before (its marker says so), so a
 * missing file, an empty one or one without virtcert's schema is a lost
 * store, never a fresh one. */
static VcStore *
vc_store_open_internal(const char *path, gboolean must_exist, GError **error)
{
	g_autoptr(VcStore) store = NULL;
	gboolean in_memory;
	gboolean created = FALSE;
	int rc;

	g_return_val_if_fail(path != NULL, NULL);

	in_memory = g_str_equal(path, ":memory:");
	if (must_exist && !in_memory) {
		GStatBuf st;
		if (g_stat(path, &st) < 0) {
			int saved_errno = errno;
			g_set_error(error, VC_ERROR, VC_ERROR_STORE,
				    "store %s is missing (%s), but this state directory had a "
				    "store: starting afresh would forget every "
				    "revocation; " VC_STORE_RESTORE_HINT,
				    path, g_strerror(saved_errno));
			return NULL;
		}
		if (st.st_size == 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_STORE,
				    "store %s is empty (0 bytes), but this state directory had a "
				    "store: starting afresh would forget every "
				    "revocation; " VC_STORE_RESTORE_HINT,
				    path);
			return NULL;
		}
	}
	if (!in_memory && !vc_store_check_writable(path, error))
		return NULL;
	if (!in_memory && !vc_store_create_file(path, &created, error))
		return NULL;

	store = g_new0(VcStore, 1);
	store->path = g_strdup(path);
	rc = sqlite3_open_v2(path, &store->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		if (store->db == NULL) {
			g_set_error(error, VC_ERROR, VC_ERROR_STORE, "opening store %s: %s", path,
				    sqlite3_errstr(rc));
			return NULL;
		}
		vc_store_fail(store, error, "opening the store");
		return NULL;
	}
	sqlite3_busy_timeout(store->db, 5000);
	if (!created && !in_memory && !vc_store_quick_check(store, error))
		return NULL;
	if (must_exist && !in_memory) {
		int version = 0;
		if (!vc_store_read_user_version(store, &version, error))
			return NULL;
		if (version == 0) {
			g_set_error(error, VC_ERROR, VC_ERROR_STORE,
				    "store %s holds no virtcert schema, but this state directory "
				    "had a store: starting afresh would forget every "
				    "revocation; " VC_STORE_RESTORE_HINT,
				    path);
			return NULL;
		}
	}
	if (!vc_store_configure(store, in_memory, error))
		return NULL;
	if (created) {
		/* Belt and braces: SQLite copies the database's mode, but make
		 * sure files holding the same data are no more readable. */
		for (guint i = 0; i < 2; i++) {
			g_autofree char *side = g_strconcat(path, i == 0 ? "-wal" : "-shm", NULL);
			if (g_chmod(side, 0600) < 0 && errno != ENOENT) {
				g_set_error(error, VC_ERROR, VC_ERROR_IO,
					    "cannot set the mode of %s: %s", side,
					    g_strerror(errno));
				return NULL;
			}
		}
	}
	if (!vc_store_migrate(store, error))
		return NULL;
#ifdef VC_TEST_SEAMS
	{
		/* counted from here: the migrations' transactions are not */
		const char *spec = g_getenv("VC_TEST_STORE_FAIL");
		if (spec != NULL && *spec != '\0' && !vc_store_test_fail(store, spec, error))
			return NULL;
	}
#endif
	return g_steal_pointer(&store);
}

VcStore *
vc_store_open(const char *path, GError **error)
{
	return vc_store_open_internal(path, FALSE, error);
}

/* The marker: written (and synced, with its directory) once the store has
 * been created and migrated, never removed by virtcert. */
static gboolean
vc_store_write_marker(const char *marker, const char *db, GError **error)
{
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	g_autofree char *when = g_date_time_format_iso8601(now);
	g_autofree char *text = g_strdup_printf(
	    "# virtcert: %s was created here on %s.\n"
	    "# While this file exists, virtcertd and virtcert refuse to start with the\n"
	    "# store missing, empty or corrupt (a fresh store would forget every\n"
	    "# revocation): see docs/backup-restore.md.\n",
	    db, when);
	g_autofree char *tmp = g_strconcat(marker, ".tmp", NULL);
	g_autofree char *dir = g_path_get_dirname(marker);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	gsize len = strlen(text);
	gboolean ok = fd >= 0;

	if (ok)
		ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	if (ok)
		ok = rename(tmp, marker) == 0;
	if (ok) {
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ok = dfd >= 0 && fsync(dfd) == 0;
		if (dfd >= 0)
			close(dfd);
	}
	if (!ok) {
		int saved_errno = errno;
		g_unlink(tmp);
		g_set_error(error, VC_ERROR, VC_ERROR_IO, "cannot write the store marker %s: %s",
			    marker, g_strerror(saved_errno));
		return FALSE;
	}
	return TRUE;
}

VcStore *
vc_store_open_state_dir(const char *state_dir, GError **error)
{
	g_autofree char *db = g_build_filename(state_dir, VC_STORE_FILE, NULL);
	g_autofree char *marker = g_build_filename(state_dir, VC_STORE_MARKER, NULL);
	gboolean must_exist = g_file_test(marker, G_FILE_TEST_EXISTS);
	g_autoptr(VcStore) store = vc_store_open_internal(db, must_exist, error);

	if (store == NULL)
		return NULL;
	/* first creation, or a store made before markers existed */
	if (!must_exist && !vc_store_write_marker(marker, db, error))
		return NULL;
	return g_steal_pointer(&store);
}

void
vc_store_free(VcStore *store)
{
	if (store == NULL)
		return;
	vc_store_rollback(store);
	for (guint i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(store->stmts[i]);
	sqlite3_close(store->db);
	g_free(store->path);
	g_free(store);
}

int
vc_store_get_schema_version(VcStore *store)
{
	g_return_val_if_fail(store != NULL, -1);
	return store->schema_version;
}

const char *
vc_store_get_path(VcStore *store)
{
	g_return_val_if_fail(store != NULL, NULL);
	return store->path;
}

/* ---- records ---------------------------------------------------------------- */

static const char *const vc_cert_status_names[] = {
    [VC_CERT_STATUS_PENDING] = "PENDING",
    [VC_CERT_STATUS_VALID] = "VALID",
    [VC_CERT_STATUS_REVOKED] = "REVOKED",
    [VC_CERT_STATUS_ABANDONED] = "ABANDONED",
};

const char *
vc_cert_status_to_string(VcCertStatus status)
{
	if ((guint)status >= G_N_ELEMENTS(vc_cert_status_names))
		return "UNKNOWN";
	return vc_cert_status_names[status];
}

gboolean
vc_cert_status_from_string(const char *str, VcCertStatus *ret_status)
{
	if (str == NULL)
		return FALSE;
	for (guint i = 0; i < G_N_ELEMENTS(vc_cert_status_names); i++) {
		if (g_ascii_strcasecmp(str, vc_cert_status_names[i]) == 0) {
			*ret_status = (VcCertStatus)i;
			return TRUE;
		}
	}
	return FALSE;
}

void
vc_cert_record_free(VcCertRecord *rec)
{
	if (rec == NULL)
		return;
	g_free(rec->serial);
	g_free(rec->ca_id);
	g_free(rec->vm_uuid);
	g_free(rec->vm_name);
	g_strfreev(rec->dns_names);
	g_clear_pointer(&rec->der, g_bytes_unref);
	g_free(rec->revocation_detail);
	g_free(rec->placement);
	g_free(rec);
}

void
vc_domain_record_free(VcDomainRecord *rec)
{
	if (rec == NULL)
		return;
	g_free(rec->uuid);
	g_free(rec->name);
	g_free(rec->state);
	g_free(rec->current_serial);
	g_free(rec->names_key);
	g_free(rec->last_error);
	g_free(rec);
}

/* Serials are hex (RFC 5280 4.1.2.2: a positive integer of at most 20
 * octets); the store keys them lower-case so that "0A" and "0a" are one. */
static char *
vc_store_normalize_serial(const char *serial, GError **error)
{
	gsize len = serial != NULL ? strlen(serial) : 0;

	if (len == 0 || len > 64) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "invalid certificate serial \"%s\": expected 1 to 64 hex digits",
			    serial != NULL ? serial : "");
		return NULL;
	}
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isxdigit(serial[i])) {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "invalid certificate serial \"%s\": not hexadecimal", serial);
			return NULL;
		}
	}
	return g_ascii_strdown(serial, (gssize)len);
}

static gboolean
vc_store_audit_append(VcStore *store, const char *event, const char *vm_uuid, const char *serial,
		      const char *detail, GError **error)
{
	g_autoptr(VcStoreCachedStmt) stmt = vc_store_stmt(store, STMT_AUDIT_INSERT, error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, vc_store_now());
	vc_store_bind_text(stmt, 2, event);
	vc_store_bind_text(stmt, 3, vm_uuid);
	vc_store_bind_text(stmt, 4, serial);
	vc_store_bind_text(stmt, 5, detail);
	return vc_store_step_done(store, stmt, "appending to the audit log", error);
}

static GStrv
vc_store_load_names(VcStore *store, const char *serial, GError **error)
{
	g_autoptr(VcStoreCachedStmt) stmt = vc_store_stmt(store, STMT_CERT_NAMES, error);
	g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
	int rc;

	if (stmt == NULL)
		return NULL;
	vc_store_bind_text(stmt, 1, serial);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		g_strv_builder_add(builder, (const char *)sqlite3_column_text(stmt, 0));
	if (rc != SQLITE_DONE) {
		vc_store_fail(store, error, "reading the names of certificate %s", serial);
		return NULL;
	}
	return g_strv_builder_end(builder);
}

/* One row of CERT_COLUMNS. */
static VcCertRecord *
vc_store_cert_from_row(VcStore *store, sqlite3_stmt *stmt, GError **error)
{
	g_autoptr(VcCertRecord) rec = g_new0(VcCertRecord, 1);
	const char *status = (const char *)sqlite3_column_text(stmt, 7);

	rec->serial = vc_store_column_strdup(stmt, 0);
	rec->ca_id = vc_store_column_strdup(stmt, 1);
	rec->vm_uuid = vc_store_column_strdup(stmt, 2);
	rec->vm_name = vc_store_column_strdup(stmt, 3);
	rec->not_before = sqlite3_column_int64(stmt, 4);
	rec->not_after = sqlite3_column_int64(stmt, 5);
	rec->created_at = sqlite3_column_int64(stmt, 6);
	if (!vc_cert_status_from_string(status, &rec->status)) {
		g_set_error(error, VC_ERROR, VC_ERROR_STORE,
			    "certificate %s in %s has an unknown status \"%s\"", rec->serial,
			    store->path, status != NULL ? status : "");
		return NULL;
	}
	rec->revoked_at = sqlite3_column_int64(stmt, 8);
	rec->reason =
	    sqlite3_column_type(stmt, 9) == SQLITE_NULL ? -1 : sqlite3_column_int(stmt, 9);
	if (sqlite3_column_type(stmt, 10) != SQLITE_NULL)
		rec->der = g_bytes_new(sqlite3_column_blob(stmt, 10),
				       (gsize)sqlite3_column_bytes(stmt, 10));
	rec->revocation_detail = vc_store_column_strdup(stmt, 11);
	rec->placement = vc_store_column_strdup(stmt, 12);
	return g_steal_pointer(&rec);
}

/* Runs a statement selecting CERT_COLUMNS and collects the records; with
 * WITH_NAMES each record's dns_names are loaded too. */
static GPtrArray *
vc_store_cert_collect(VcStore *store, sqlite3_stmt *stmt, gboolean with_names, const char *what,
		      GError **error)
{
	g_autoptr(GPtrArray) recs =
	    g_ptr_array_new_with_free_func((GDestroyNotify)vc_cert_record_free);
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		VcCertRecord *rec = vc_store_cert_from_row(store, stmt, error);
		if (rec == NULL)
			return NULL;
		g_ptr_array_add(recs, rec);
	}
	if (rc != SQLITE_DONE) {
		vc_store_fail(store, error, "%s", what);
		return NULL;
	}
	/* Names are read once the list statement is done: one active
	 * statement at a time keeps the cache simple. */
	if (with_names) {
		for (guint i = 0; i < recs->len; i++) {
			VcCertRecord *rec = g_ptr_array_index(recs, i);
			rec->dns_names = vc_store_load_names(store, rec->serial, error);
			if (rec->dns_names == NULL)
				return NULL;
		}
	}
	return g_steal_pointer(&recs);
}

/* ---- certificates ---------------------------------------------------------- */

/* Fails with VC_ERROR_NAME_COLLISION if NAME is held by a VM other than
 * VM_UUID through a PENDING or VALID certificate that has not expired. */
static gboolean
vc_store_check_name(VcStore *store, const char *name, const char *vm_uuid, gint64 now,
		    GError **error)
{
	g_autoptr(VcStoreCachedStmt) stmt = vc_store_stmt(store, STMT_NAME_HOLDER, error);
	int rc;

	if (stmt == NULL)
		return FALSE;
	vc_store_bind_text(stmt, 1, name);
	vc_store_bind_text(stmt, 2, vm_uuid);
	sqlite3_bind_int64(stmt, 3, now);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		const char *holder = (const char *)sqlite3_column_text(stmt, 0);
		const char *holder_name = (const char *)sqlite3_column_text(stmt, 1);
		const char *serial = (const char *)sqlite3_column_text(stmt, 2);
		const char *status = (const char *)sqlite3_column_text(stmt, 3);
		g_autoptr(GDateTime) until =
		    g_date_time_new_from_unix_utc(sqlite3_column_int64(stmt, 4));
		g_autofree char *until_str =
		    until != NULL ? g_date_time_format_iso8601(until) : g_strdup("?");

		g_set_error(error, VC_ERROR, VC_ERROR_NAME_COLLISION,
			    "DNS name %s is already held by VM %s%s%s%s (%s certificate %s, "
			    "valid until %s); revoke that certificate or change the name "
			    "policy",
			    name, holder_name != NULL ? holder_name : "",
			    holder_name != NULL ? " (" : "", holder, holder_name != NULL ? ")" : "",
			    status, serial, until_str);
		return FALSE;
	}
	if (rc != SQLITE_DONE)
		return vc_store_fail(store, error, "checking who holds DNS name %s", name);
	return TRUE;
}

static gboolean
vc_store_cert_insert(VcStore *store, const VcCertRecord *rec, const char *serial, GError **error)
{
	gint64 now = vc_store_now();
	g_autofree char *detail = NULL;
	g_autofree char *names = NULL;

	for (guint i = 0; rec->dns_names != NULL && rec->dns_names[i] != NULL; i++) {
		if (!vc_store_check_name(store, rec->dns_names[i], rec->vm_uuid, now, error))
			return FALSE;
	}

	{
		g_autoptr(VcStoreCachedStmt) stmt = vc_store_stmt(store, STMT_CERT_INSERT, error);
		if (stmt == NULL)
			return FALSE;
		vc_store_bind_text(stmt, 1, serial);
		vc_store_bind_text(stmt, 2, rec->ca_id);
		vc_store_bind_text(stmt, 3, rec->vm_uuid);
		vc_store_bind_text(stmt, 4, rec->vm_name);
		sqlite3_bind_int64(stmt, 5, rec->not_before);
		sqlite3_bind_int64(stmt, 6, rec->not_after);
		sqlite3_bind_int64(stmt, 7, rec->created_at != 0 ? rec->created_at : now);
		vc_store_bind_text(stmt, 8, rec->placement);
		if (sqlite3_step(stmt) != SQLITE_DONE) {
			if (sqlite3_extended_errcode(store->db) == SQLITE_CONSTRAINT_PRIMARYKEY) {
				g_set_error(error, VC_ERROR, VC_ERROR_EXISTS,
					    "certificate serial %s is already recorded", serial);
				return FALSE;
			}
			return vc_store_fail(store, error, "recording certificate %s", serial);
		}
	}

	for (guint i = 0; rec->dns_names != NULL && rec->dns_names[i] != NULL; i++) {
		g_autoptr(VcStoreCachedStmt) stmt = vc_store_stmt(store, STMT_NAME_INSERT, error);
		if (stmt == NULL)
			return FALSE;
		vc_store_bind_text(stmt, 1, serial);
		sqlite3_bind_int(stmt, 2, (int)i);
		vc_store_bind_text(stmt, 3, rec->dns_names[i]);
		if (!vc_store_step_done(store, stmt, "recording the names of a certificate", error))
			return FALSE;
	}

	names = rec->dns_names != NULL ? g_strjoinv(",", rec->dns_names) : g_strdup("");
	detail = g_strdup_printf("ca=%s names=%s not_after=%" G_GINT64_FORMAT, rec->ca_id, names,
				 rec->not_after);
	return vc_store_audit_append(store, "cert.intent", rec->vm_uuid, serial, detail, error);
}

gboolean
vc_store_cert_record_intent(VcStore *store, const VcCertRecord *rec, GError **error)
{
	g_autofree char *serial = NULL;
	gboolean ok;

	g_return_val_if_fail(store != NULL, FALSE);
	g_return_val_if_fail(rec != NULL, FALSE);

	serial = vc_store_normalize_serial(rec->serial, error);
	if (serial == NULL)
		return FALSE;
	if (rec->ca_id == NULL || *rec->ca_id == '\0' || rec->vm_uuid == NULL ||
	    *rec->vm_uuid == '\0') {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "certificate %s has no CA or no VM UUID", serial);
		return FALSE;
	}
	if (rec->not_after <= rec->not_before) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "certificate %s expires (%" G_GINT64_FORMAT
			    ") before it is valid (%" G_GINT64_FORMAT ")",
			    serial, rec->not_after, rec->not_before);
		return FALSE;
	}
	for (guint i = 0; rec->dns_names != NULL && rec->dns_names[i] != NULL; i++) {
		if (*rec->dns_names[i] == '\0') {
			g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
				    "certificate %s has an empty DNS name", serial);
			return FALSE;
		}
	}

	if (!vc_store_call_begin(store, error))
		return FALSE;
	ok = vc_store_cert_insert(store, rec, serial, error);
	return vc_store_call_end(store, ok, error);
}

/* The status of certificate SERIAL into *RET_STATUS (never NULL). */
static gboolean
vc_store_cert_read_status(VcStore *store, const char *serial, char **ret_status, GError **error)
{
	g_autoptr(VcStoreCachedStmt) stmt = vc_store_stmt(store, STMT_CERT_STATUS, error);
	int rc;

	if (stmt == NULL)
		return FALSE;
	vc_store_bind_text(stmt, 1, serial);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "no certificate with serial %s",
			    serial);
		return FALSE;
	}
	if (rc != SQLITE_ROW)
		return vc_store_fail(store, error, "reading the status of certificate %s", serial);
	*ret_status = g_strdup((const char *)sqlite3_column_text(stmt, 0));
	if (*ret_status == NULL)
		*ret_status = g_strdup("");
	return TRUE;
}

/* After an UPDATE ... WHERE status = X matched nothing: says why. */
static gboolean
vc_store_refuse_transition(VcStore *store, const char *serial, const char *action,
			   const char *allowed, GError **error)
{
	g_autofree char *status = NULL;

	if (!vc_store_cert_read_status(store, serial, &status, error))
		return FALSE;
	g_set_error(error, VC_ERROR, VC_ERROR_FAILED,
		    "cannot %s certificate %s: it is %s, only a %s certificate can be", action,
		    serial, status, allowed);
	return FALSE;
}

/* Steps an UPDATE ... RETURNING vm_uuid: *ret_vm_uuid is NULL when no row
 * matched. */
static gboolean
vc_store_step_update(VcStore *store, sqlite3_stmt *stmt, const char *what, char **ret_vm_uuid,
		     GError **error)
{
	g_autofree char *vm_uuid = NULL;
	int rc = sqlite3_step(stmt);

	if (rc == SQLITE_ROW) {
		vm_uuid = vc_store_column_strdup(stmt, 0);
		rc = sqlite3_step(stmt);
	}
	if (rc != SQLITE_DONE)
		return vc_store_fail(store, error, "%s", what);
	*ret_vm_uuid = g_steal_pointer(&vm_uuid);
	return TRUE;
}

static gboolean
vc_store_cert_issue_locked(VcStore *store, const char *serial, GBytes *der, GError **error)
{
	g_autofree char *vm_uuid = NULL;
	g_autofree char *detail = NULL;

	{
		g_autoptr(VcStoreCachedStmt) stmt =
		    vc_store_stmt(store, STMT_CERT_MARK_ISSUED, error);
		gsize len = 0;
		gconstpointer data;

		if (stmt == NULL)
			return FALSE;
		data = g_bytes_get_data(der, &len);
		vc_store_bind_text(stmt, 1, serial);
		sqlite3_bind_blob64(stmt, 2, data, len, SQLITE_STATIC);
		if (!vc_store_step_update(store, stmt, "storing the signed certificate", &vm_uuid,
					  error))
			return FALSE;
	}
	if (vm_uuid == NULL)
		return vc_store_refuse_transition(store, serial, "mark as issued", "PENDING",
						  error);
	detail = g_strdup_printf("der=%zu bytes", g_bytes_get_size(der));
	return vc_store_audit_append(store, "cert.issued", vm_uuid, serial, detail, error);
}

gboolean
vc_store_cert_mark_issued(VcStore *store, const char *serial, GBytes *der, GError **error)
{
	g_autofree char *key = NULL;
	gboolean ok;

	g_return_val_if_fail(store != NULL, FALSE);

	key = vc_store_normalize_serial(serial, error);
	if (key == NULL)
		return FALSE;
	if (der == NULL || g_bytes_get_size(der) == 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "no DER given for certificate %s", key);
		return FALSE;
	}
	if (!vc_store_call_begin(store, error))
		return FALSE;
	ok = vc_store_cert_issue_locked(store, key, der, error);
	return vc_store_call_end(store, ok, error);
}

static gboolean
vc_store_cert_abandon_locked(VcStore *store, const char *serial, const char *why, gint64 when,
			     GError **error)
{
	g_autofree char *vm_uuid = NULL;
	g_autoptr(VcStoreCachedStmt) stmt = vc_store_stmt(store, STMT_CERT_ABANDON, error);

	if (stmt == NULL)
		return FALSE;
	vc_store_bind_text(stmt, 1, serial);
	sqlite3_bind_int64(stmt, 2, when);
	vc_store_bind_text(stmt, 3, why);
	if (!vc_store_step_update(store, stmt, "abandoning a certificate", &vm_uuid, error))
		return FALSE;
	g_clear_pointer(&stmt, vc_store_cached_stmt_release);
	if (vm_uuid == NULL)
		return vc_store_refuse_transition(store, serial, "abandon", "PENDING", error);
	return vc_store_audit_append(store, "cert.abandoned", vm_uuid, serial, why, error);
}

gboolean
vc_store_cert_abandon(VcStore *store, const char *serial, const char *why, GError **error)
{
	g_autofree char *key = NULL;
	gboolean ok;

	g_return_val_if_fail(store != NULL, FALSE);

	key = vc_store_normalize_serial(serial, error);
	if (key == NULL)
		return FALSE;
	if (!vc_store_call_begin(store, error))
		return FALSE;
	ok = vc_store_cert_abandon_locked(store, key, why, vc_store_now(), error);
	return vc_store_call_end(store, ok, error);
}

/* RFC 5280 5.3.1 CRLReason names, for the audit log. */
static const char *
vc_store_reason_to_string(int reason)
{
	static const char *const names[] = {
	    "unspecified",   "keyCompromise",	     "cACompromise",	"affiliationChanged",
	    "superseded",    "cessationOfOperation", "certificateHold", NULL,
	    "removeFromCRL", "privilegeWithdrawn",   "aACompromise",
	};

	if (reason < 0 || (gsize)reason >= G_N_ELEMENTS(names) || names[reason] == NULL)
		return NULL;
	return names[reason];
}

static gboolean
vc_store_cert_revoke_locked(VcStore *store, const char *serial, int reason, gint64 when,
			    GError **error)
{
	g_autofree char *vm_uuid = NULL;
	g_autofree char *detail = NULL;

	{
		g_autoptr(VcStoreCachedStmt) stmt = vc_store_stmt(store, STMT_CERT_REVOKE, error);
		if (stmt == NULL)
			return FALSE;
		vc_store_bind_text(stmt, 1, serial);
		sqlite3_bind_int64(stmt, 2, when);
		sqlite3_bind_int(stmt, 3, reason);
		if (!vc_store_step_update(store, stmt, "revoking a certificate", &vm_uuid, error))
			return FALSE;
	}
	if (vm_uuid == NULL) {
		g_autofree char *status = NULL;

		if (!vc_store_cert_read_status(store, serial, &status, error))
			return FALSE;
		/* Already on the CRL: the first revocation stands. */
		if (g_strcmp0(status, "REVOKED") == 0 || g_strcmp0(status, "ABANDONED") == 0)
			return TRUE;
		g_set_error(error, VC_ERROR, VC_ERROR_FAILED,
			    "cannot revoke certificate %s: it is %s", serial, status);
		return FALSE;
	}
	detail = g_strdup_printf("reason=%d (%s)", reason, vc_store_reason_to_string(reason));
	return vc_store_audit_append(store, "cert.revoked", vm_uuid, serial, detail, error);
}

gboolean
vc_store_cert_revoke(VcStore *store, const char *serial, int reason, gint64 when, GError **error)
{
	g_autofree char *key = NULL;
	gboolean ok;

	g_return_val_if_fail(store != NULL, FALSE);

	key = vc_store_normalize_serial(serial, error);
	if (key == NULL)
		return FALSE;
	/* 7 is unused; removeFromCRL (8) only exists in delta CRLs. */
	if (vc_store_reason_to_string(reason) == NULL || reason == 8) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "invalid revocation reason %d for certificate %s (RFC 5280 5.3.1)",
			    reason, key);
		return FALSE;
	}
	if (when <= 0)
		when = vc_store_now();
	if (!vc_store_call_begin(store, error))
		return FALSE;
	ok = vc_store_cert_revoke_locked(store, key, reason, when, error);
	return vc_store_call_end(store, ok, error);
}

/* The row of SERIAL read by statement ID (with or without the DER);
 * RET_KEY gets the normalized serial. */
static VcCertRecord *
vc_store_cert_read(VcStore *store, int id, const char *serial, char **ret_key, GError **error)
{
	g_autofree char *key = NULL;
	g_autoptr(VcStoreCachedStmt) stmt = NULL;
	VcCertRecord *rec;
	int rc;

	g_return_val_if_fail(store != NULL, NULL);

	key = vc_store_normalize_serial(serial, error);
	if (key == NULL)
		return NULL;
	stmt = vc_store_stmt(store, id, error);
	if (stmt == NULL)
		return NULL;
	vc_store_bind_text(stmt, 1, key);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "no certificate with serial %s",
			    key);
		return NULL;
	}
	if (rc != SQLITE_ROW) {
		vc_store_fail(store, error, "reading certificate %s", key);
		return NULL;
	}
	rec = vc_store_cert_from_row(store, stmt, error);
	if (rec != NULL && ret_key != NULL)
		*ret_key = g_steal_pointer(&key);
	return rec;
}

VcCertRecord *
vc_store_cert_get(VcStore *store, const char *serial, GError **error)
{
	g_autofree char *key = NULL;
	g_autoptr(VcCertRecord) rec = vc_store_cert_read(store, STMT_CERT_GET, serial, &key, error);

	if (rec == NULL)
		return NULL;
	/* the names after the row's statement is reset: one active statement */
	rec->dns_names = vc_store_load_names(store, key, error);
	if (rec->dns_names == NULL)
		return NULL;
	return g_steal_pointer(&rec);
}

GPtrArray *
vc_store_cert_list(VcStore *store, const char *vm_uuid, GError **error)
{
	g_autoptr(VcStoreCachedStmt) stmt = NULL;

	g_return_val_if_fail(store != NULL, NULL);

	stmt =
	    vc_store_stmt(store, vm_uuid != NULL ? STMT_CERT_LIST_VM : STMT_CERT_LIST_ALL, error);
	if (stmt == NULL)
		return NULL;
	if (vm_uuid != NULL)
		vc_store_bind_text(stmt, 1, vm_uuid);
	return vc_store_cert_collect(store, stmt, TRUE, "listing certificates", error);
}

GPtrArray *
vc_store_cert_list_pending(VcStore *store, GError **error)
{
	g_autoptr(VcStoreCachedStmt) stmt = NULL;

	g_return_val_if_fail(store != NULL, NULL);

	stmt = vc_store_stmt(store, STMT_CERT_LIST_PENDING, error);
	if (stmt == NULL)
		return NULL;
	return vc_store_cert_collect(store, stmt, TRUE, "listing pending certificates", error);
}

GPtrArray *
vc_store_cert_list_revoked(VcStore *store, const char *ca_id, GError **error)
{
	g_autoptr(VcStoreCachedStmt) stmt = NULL;

	g_return_val_if_fail(store != NULL, NULL);
	g_return_val_if_fail(ca_id != NULL, NULL);

	stmt = vc_store_stmt(store, STMT_CERT_LIST_REVOKED, error);
	if (stmt == NULL)
		return NULL;
	vc_store_bind_text(stmt, 1, ca_id);
	sqlite3_bind_int64(stmt, 2, vc_store_now() - VC_STORE_CRL_KEEP_EXPIRED_S);
	return vc_store_cert_collect(store, stmt, FALSE, "listing revoked certificates", error);
}

GArray *
vc_store_crl_list(VcStore *store, const char *ca_id, GError **error)
{
	g_autoptr(VcStoreCachedStmt) stmt = NULL;
	g_autoptr(GArray) out = NULL;
	int rc;

	g_return_val_if_fail(store != NULL, NULL);
	g_return_val_if_fail(ca_id != NULL, NULL);

	stmt = vc_store_stmt(store, STMT_CERT_LIST_CRL, error);
	if (stmt == NULL)
		return NULL;
	vc_store_bind_text(stmt, 1, ca_id);
	sqlite3_bind_int64(stmt, 2, vc_store_now() - VC_STORE_CRL_KEEP_EXPIRED_S);
	out = g_array_new(FALSE, FALSE, sizeof(VcStoreCrlRow));
	g_array_set_clear_func(out, (GDestroyNotify)vc_store_crl_row_clear);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		VcStoreCrlRow row = {
		    .serial = vc_store_column_strdup(stmt, 0),
		    .revoked_at = sqlite3_column_int64(stmt, 1),
		    .reason = sqlite3_column_type(stmt, 2) == SQLITE_NULL
				  ? -1
				  : sqlite3_column_int(stmt, 2),
		};
		g_array_append_val(out, row);
	}
	if (rc != SQLITE_DONE) {
		vc_store_fail(store, error, "listing revoked certificates");
		return NULL;
	}
	return g_steal_pointer(&out);
}

void
vc_store_crl_row_clear(VcStoreCrlRow *row)
{
	g_clear_pointer(&row->serial, g_free);
}

gboolean
vc_store_cert_get_soonest_expiry(VcStore *store, gint64 *ret_not_after, GError **error)
{
	g_autoptr(VcStoreCachedStmt) stmt = NULL;
	gint64 not_after = 0;
	int rc;

	g_return_val_if_fail(store != NULL, FALSE);

	stmt = vc_store_stmt(store, STMT_CERT_SOONEST_EXPIRY, error);
	if (stmt == NULL)
		return FALSE;
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		vc_store_fail(store, error, "finding the soonest expiry");
		return FALSE;
	}
	if (sqlite3_column_type(stmt, 0) != SQLITE_NULL)
		not_after = sqlite3_column_int64(stmt, 0);
	if (ret_not_after != NULL)
		*ret_not_after = not_after;
	return TRUE;
}

static gboolean
vc_store_recover_locked(VcStore *store, guint *ret_count, GError **error)
{
	g_autoptr(GPtrArray) pending = NULL;
	gint64 now = vc_store_now();

	{
		g_autoptr(VcStoreCachedStmt) stmt =
		    vc_store_stmt(store, STMT_CERT_LIST_PENDING, error);
		if (stmt == NULL)
			return FALSE;
		pending = vc_store_cert_collect(store, stmt, FALSE, "listing pending certificates",
						error);
		if (pending == NULL)
			return FALSE;
	}
	for (guint i = 0; i < pending->len; i++) {
		VcCertRecord *rec = g_ptr_array_index(pending, i);
		if (!vc_store_cert_abandon_locked(store, rec->serial,
						  "recovered at startup: pending when virtcert "
						  "stopped, may have been signed",
						  now, error))
			return FALSE;
	}
	*ret_count = pending->len;
	return TRUE;
}

VcCertRecord *
vc_store_cert_get_brief(VcStore *store, const char *serial, GError **error)
{
	return vc_store_cert_read(store, STMT_CERT_GET_BRIEF, serial, NULL, error);
}

GPtrArray *
vc_store_cert_list_valid_serials(VcStore *store, const char *ca_id, GError **error)
{
	g_autoptr(VcStoreCachedStmt) stmt = NULL;
	g_autoptr(GPtrArray) serials = g_ptr_array_new_with_free_func(g_free);
	int rc;

	g_return_val_if_fail(store != NULL, NULL);
	g_return_val_if_fail(ca_id != NULL, NULL);

	stmt = vc_store_stmt(store, STMT_CERT_LIST_VALID_SERIALS, error);
	if (stmt == NULL)
		return NULL;
	vc_store_bind_text(stmt, 1, ca_id);
	sqlite3_bind_int64(stmt, 2, vc_store_now());
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		g_ptr_array_add(serials, g_strdup((const char *)sqlite3_column_text(stmt, 0)));
	if (rc != SQLITE_DONE) {
		vc_store_fail(store, error, "listing valid certificates");
		return NULL;
	}
	return g_steal_pointer(&serials);
}

gboolean
vc_store_recover(VcStore *store, guint *ret_count, GError **error)
{
	guint count = 0;
	gboolean ok;

	g_return_val_if_fail(store != NULL, FALSE);

	if (!vc_store_call_begin(store, error))
		return FALSE;
	ok = vc_store_recover_locked(store, &count, error);
	if (!vc_store_call_end(store, ok, error))
		return FALSE;
	if (ret_count != NULL)
		*ret_count = count;
	return TRUE;
}

/* ---- CRL numbers ------------------------------------------------------------- */

static gboolean
vc_store_crl_next_locked(VcStore *store, const char *ca_id, guint64 above, guint64 *ret_number,
			 GError **error)
{
	g_autoptr(VcStoreCachedStmt) stmt = vc_store_stmt(store, STMT_CRL_NEXT, error);
	gint64 number;

	if (stmt == NULL)
		return FALSE;
	vc_store_bind_text(stmt, 1, ca_id);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)above);
	if (sqlite3_step(stmt) != SQLITE_ROW)
		return vc_store_fail(store, error, "taking the next CRL number of CA %s", ca_id);
	number = sqlite3_column_int64(stmt, 0);
	if (!vc_store_step_done(store, stmt, "taking the next CRL number", error))
		return FALSE;
	if (number <= 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_STORE,
			    "CRL number of CA %s in %s is corrupt (%" G_GINT64_FORMAT ")", ca_id,
			    store->path, number);
		return FALSE;
	}
	*ret_number = (guint64)number;
	return TRUE;
}

gboolean
vc_store_crl_next_number(VcStore *store, const char *ca_id, guint64 *ret_number, GError **error)
{
	return vc_store_crl_next_number_above(store, ca_id, 0, ret_number, error);
}

gboolean
vc_store_crl_next_number_above(VcStore *store, const char *ca_id, guint64 above,
			       guint64 *ret_number, GError **error)
{
	guint64 number = 0;
	gboolean ok;

	g_return_val_if_fail(store != NULL, FALSE);
	g_return_val_if_fail(ca_id != NULL, FALSE);
	if (above >= (guint64)G_MAXINT64) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "CRL number %" G_GUINT64_FORMAT " of CA %s has no successor", above,
			    ca_id);
		return FALSE;
	}

	/* Inside a batch the number would not be durable on return, and a
	 * rollback would hand it out twice: two different CRLs with one number. */
	if (store->in_transaction) {
		g_set_error(error, VC_ERROR, VC_ERROR_FAILED,
			    "a CRL number cannot be taken inside a transaction on %s", store->path);
		return FALSE;
	}
	if (!vc_store_call_begin(store, error))
		return FALSE;
	ok = vc_store_crl_next_locked(store, ca_id, above, &number, error);
	if (!vc_store_call_end(store, ok, error))
		return FALSE;
	if (ret_number != NULL)
		*ret_number = number;
	return TRUE;
}

/* ---- domains ------------------------------------------------------------------ */

static VcDomainRecord *
vc_store_domain_from_row(sqlite3_stmt *stmt)
{
	VcDomainRecord *rec = g_new0(VcDomainRecord, 1);

	rec->uuid = vc_store_column_strdup(stmt, 0);
	rec->generation = sqlite3_column_int64(stmt, 1);
	rec->name = vc_store_column_strdup(stmt, 2);
	rec->state = vc_store_column_strdup(stmt, 3);
	rec->current_serial = vc_store_column_strdup(stmt, 4);
	rec->names_key = vc_store_column_strdup(stmt, 5);
	rec->next_action_at = sqlite3_column_int64(stmt, 6);
	rec->failures = sqlite3_column_int(stmt, 7);
	rec->last_error = vc_store_column_strdup(stmt, 8);
	rec->updated_at = sqlite3_column_int64(stmt, 9);
	rec->renew_pending = sqlite3_column_int(stmt, 10) != 0;
	return rec;
}

static gboolean
vc_store_domain_put_locked(VcStore *store, const VcDomainRecord *rec, GError **error)
{
	g_autofree char *old_state = NULL;
	gint64 old_generation = -1;
	int rc;

	{
		g_autoptr(VcStoreCachedStmt) stmt = vc_store_stmt(store, STMT_DOMAIN_STATE, error);
		if (stmt == NULL)
			return FALSE;
		vc_store_bind_text(stmt, 1, rec->uuid);
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_ROW) {
			old_state = vc_store_column_strdup(stmt, 0);
			old_generation = sqlite3_column_int64(stmt, 1);
		} else if (rc != SQLITE_DONE) {
			return vc_store_fail(store, error, "reading the state of VM %s", rec->uuid);
		}
	}
	{
		g_autoptr(VcStoreCachedStmt) stmt = vc_store_stmt(store, STMT_DOMAIN_PUT, error);
		if (stmt == NULL)
			return FALSE;
		vc_store_bind_text(stmt, 1, rec->uuid);
		sqlite3_bind_int64(stmt, 2, rec->generation);
		vc_store_bind_text(stmt, 3, rec->name);
		vc_store_bind_text(stmt, 4, rec->state);
		vc_store_bind_text(stmt, 5, rec->current_serial);
		vc_store_bind_text(stmt, 6, rec->names_key);
		sqlite3_bind_int64(stmt, 7, rec->next_action_at);
		sqlite3_bind_int(stmt, 8, rec->failures);
		vc_store_bind_text(stmt, 9, rec->last_error);
		sqlite3_bind_int64(stmt, 10,
				   rec->updated_at != 0 ? rec->updated_at : vc_store_now());
		sqlite3_bind_int(stmt, 11, rec->renew_pending ? 1 : 0);
		if (!vc_store_step_done(store, stmt, "storing the state of a VM", error))
			return FALSE;
	}
	if (g_strcmp0(old_state, rec->state) != 0 || old_generation != rec->generation) {
		g_autofree char *detail = g_strdup_printf("%s -> %s generation=%" G_GINT64_FORMAT,
							  old_state != NULL ? old_state : "(none)",
							  rec->state, rec->generation);
		return vc_store_audit_append(store, "domain.state", rec->uuid, rec->current_serial,
					     detail, error);
	}
	return TRUE;
}

gboolean
vc_store_domain_put(VcStore *store, const VcDomainRecord *rec, GError **error)
{
	gboolean ok;

	g_return_val_if_fail(store != NULL, FALSE);
	g_return_val_if_fail(rec != NULL, FALSE);

	if (rec->uuid == NULL || *rec->uuid == '\0' || rec->state == NULL || *rec->state == '\0') {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "a VM record needs a UUID and a state");
		return FALSE;
	}
	if (!vc_store_call_begin(store, error))
		return FALSE;
	ok = vc_store_domain_put_locked(store, rec, error);
	return vc_store_call_end(store, ok, error);
}

VcDomainRecord *
vc_store_domain_get(VcStore *store, const char *uuid, GError **error)
{
	g_autoptr(VcStoreCachedStmt) stmt = NULL;
	int rc;

	g_return_val_if_fail(store != NULL, NULL);
	g_return_val_if_fail(uuid != NULL, NULL);

	stmt = vc_store_stmt(store, STMT_DOMAIN_GET, error);
	if (stmt == NULL)
		return NULL;
	vc_store_bind_text(stmt, 1, uuid);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		return vc_store_domain_from_row(stmt);
	if (rc == SQLITE_DONE)
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "no VM %s in the store", uuid);
	else
		vc_store_fail(store, error, "reading VM %s", uuid);
	return NULL;
}

GPtrArray *
vc_store_domain_list(VcStore *store, GError **error)
{
	g_autoptr(VcStoreCachedStmt) stmt = NULL;
	g_autoptr(GPtrArray) recs = NULL;
	int rc;

	g_return_val_if_fail(store != NULL, NULL);

	stmt = vc_store_stmt(store, STMT_DOMAIN_LIST, error);
	if (stmt == NULL)
		return NULL;
	recs = g_ptr_array_new_with_free_func((GDestroyNotify)vc_domain_record_free);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		g_ptr_array_add(recs, vc_store_domain_from_row(stmt));
	if (rc != SQLITE_DONE) {
		vc_store_fail(store, error, "listing VMs");
		return NULL;
	}
	return g_steal_pointer(&recs);
}

static gboolean
vc_store_domain_delete_locked(VcStore *store, const char *uuid, GError **error)
{
	{
		g_autoptr(VcStoreCachedStmt) stmt = vc_store_stmt(store, STMT_DOMAIN_DELETE, error);
		if (stmt == NULL)
			return FALSE;
		vc_store_bind_text(stmt, 1, uuid);
		if (!vc_store_step_done(store, stmt, "deleting a VM", error))
			return FALSE;
	}
	if (sqlite3_changes(store->db) == 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_NOT_FOUND, "no VM %s in the store", uuid);
		return FALSE;
	}
	return vc_store_audit_append(store, "domain.deleted", uuid, NULL, NULL, error);
}

gboolean
vc_store_domain_delete(VcStore *store, const char *uuid, GError **error)
{
	gboolean ok;

	g_return_val_if_fail(store != NULL, FALSE);
	g_return_val_if_fail(uuid != NULL, FALSE);

	if (!vc_store_call_begin(store, error))
		return FALSE;
	ok = vc_store_domain_delete_locked(store, uuid, error);
	return vc_store_call_end(store, ok, error);
}

/* ---- audit --------------------------------------------------------------------- */

gboolean
vc_store_audit(VcStore *store, const char *event, const char *vm_uuid, const char *serial,
	       const char *detail, GError **error)
{
	gboolean ok;

	g_return_val_if_fail(store != NULL, FALSE);
	g_return_val_if_fail(event != NULL, FALSE);

	if (!vc_store_call_begin(store, error))
		return FALSE;
	ok = vc_store_audit_append(store, event, vm_uuid, serial, detail, error);
	return vc_store_call_end(store, ok, error);
}

GPtrArray *
vc_store_audit_list(VcStore *store, guint limit, GError **error)
{
	g_autoptr(VcStoreCachedStmt) stmt = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	int rc;

	g_return_val_if_fail(store != NULL, NULL);

	stmt = vc_store_stmt(store, STMT_AUDIT_LIST, error);
	if (stmt == NULL)
		return NULL;
	/* LIMIT -1 is SQLite for no limit. */
	sqlite3_bind_int64(stmt, 1, limit == 0 ? -1 : (gint64)limit);
	rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		g_autoptr(GDateTime) dt =
		    g_date_time_new_from_unix_utc(sqlite3_column_int64(stmt, 0));
		GStrv row = g_new0(char *, 6);

		row[0] = dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ")
				    : g_strdup_printf("%" G_GINT64_FORMAT,
						      (gint64)sqlite3_column_int64(stmt, 0));
		for (int i = 1; i < 5; i++) {
			const char *text = (const char *)sqlite3_column_text(stmt, i);
			row[i] = g_strdup(text != NULL ? text : "");
		}
		g_ptr_array_add(rows, row);
	}
	if (rc != SQLITE_DONE) {
		vc_store_fail(store, error, "reading the audit log");
		return NULL;
	}
	return g_steal_pointer(&rows);
}
