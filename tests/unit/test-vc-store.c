/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>

#include "vc-autoptr.h"
#include "vc-error.h"
#include "vc-store.h"
#include "vc-test-util.h"

#define VM_A "6f1c1e0e-0000-4000-8000-00000000000a"
#define VM_B "6f1c1e0e-0000-4000-8000-00000000000b"
#define CA_ID "test-ca"
#define DAY (24 * 3600)

/* The schema of version 1 exactly as virtcert 0.1 created it. Kept here,
 * frozen, rather than taken from the code: migration 2 must apply to what
 * was really shipped, and an edit to migration 1 in the code shows up as a
 * difference between fresh and migrated databases. */
static const char v1_schema[] =
    "CREATE TABLE certificates ("
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
    " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;";

typedef struct {
	char *dir;
	char *path;
} Fixture;

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
	fx->dir = vc_test_dir_make("test-vc-store-XXXXXX");
	fx->path = g_build_filename(fx->dir, "virtcert.db", NULL);
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
	vc_test_dir_remove(fx->dir);
	g_free(fx->dir);
	g_free(fx->path);
}

static VcStore *
open_store(Fixture *fx)
{
	g_autoptr(GError) error = NULL;
	VcStore *store = vc_store_open(fx->path, &error);

	g_assert_no_error(error);
	g_assert_nonnull(store);
	return store;
}

/* A record for VM with NAMES (comma separated), valid from an hour ago for
 * LIFETIME seconds (negative: already expired). */
static VcCertRecord *
make_rec(const char *serial, const char *vm_uuid, const char *names, gint64 lifetime)
{
	VcCertRecord *rec = g_new0(VcCertRecord, 1);
	gint64 now = vc_test_now_s();

	rec->serial = g_strdup(serial);
	rec->ca_id = g_strdup(CA_ID);
	rec->vm_uuid = g_strdup(vm_uuid);
	rec->vm_name = g_strdup(g_str_equal(vm_uuid, VM_A) ? "vm-a" : "vm-b");
	rec->dns_names = g_strsplit(names, ",", -1);
	if (lifetime < 0) {
		rec->not_before = now + lifetime - 3600;
		rec->not_after = now + lifetime;
	} else {
		rec->not_before = now - 3600;
		rec->not_after = now + lifetime;
	}
	rec->reason = -1;
	return rec;
}

static void
add_intent(VcStore *store, const char *serial, const char *vm_uuid, const char *names,
	   gint64 lifetime)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcCertRecord) rec = make_rec(serial, vm_uuid, names, lifetime);

	g_assert_true(vc_store_cert_record_intent(store, rec, &error));
	g_assert_no_error(error);
}

static void
issue(VcStore *store, const char *serial)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) der = g_bytes_new_static("\x30\x03\x02\x01\x01", 5);

	g_assert_true(vc_store_cert_mark_issued(store, serial, der, &error));
	g_assert_no_error(error);
}

static VcCertStatus
status_of(VcStore *store, const char *serial)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcCertRecord) rec = vc_store_cert_get(store, serial, &error);

	g_assert_no_error(error);
	g_assert_nonnull(rec);
	return rec->status;
}

static guint
count_events(VcStore *store, const char *event, const char *serial)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rows = vc_store_audit_list(store, 0, &error);
	guint n = 0;

	g_assert_no_error(error);
	for (guint i = 0; i < rows->len; i++) {
		GStrv row = g_ptr_array_index(rows, i);
		if (g_str_equal(row[1], event) && (serial == NULL || g_str_equal(row[3], serial)))
			n++;
	}
	return n;
}

/* Runs SQL on the file directly, as an administrator with sqlite3 would. */
static int
raw_exec(const char *path, const char *sql, char **ret_errmsg)
{
	sqlite3 *db = NULL;
	char *errmsg = NULL;
	int rc;

	g_assert_cmpint(
	    sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL), ==,
	    SQLITE_OK);
	rc = sqlite3_exec(db, sql, NULL, NULL, &errmsg);
	if (ret_errmsg != NULL)
		*ret_errmsg = g_strdup(errmsg);
	sqlite3_free(errmsg);
	g_assert_cmpint(sqlite3_close(db), ==, SQLITE_OK);
	return rc;
}

static void
test_open_create(Fixture *fx, gconstpointer data)
{
	g_autoptr(VcStore) store = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) certs = NULL;

	g_assert_false(g_file_test(fx->path, G_FILE_TEST_EXISTS));
	store = open_store(fx);
	g_assert_true(g_file_test(fx->path, G_FILE_TEST_IS_REGULAR));
	g_assert_cmpint(vc_store_get_schema_version(store), ==, VC_STORE_SCHEMA_VERSION);
	g_assert_cmpstr(vc_store_get_path(store), ==, fx->path);
	certs = vc_store_cert_list(store, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(certs->len, ==, 0);
}

static void
test_open_errors(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *missing = g_build_filename(fx->dir, "no", "such", "dir.db", NULL);
	VcStore *store;

	store = vc_store_open(missing, &error);
	g_assert_null(store);
	g_assert_error(error, VC_ERROR, VC_ERROR_IO);
	g_clear_error(&error);

	g_assert_true(g_file_set_contents(fx->path,
					  "this is not an SQLite database, at all.\n"
					  "it is long enough to have a header, though..........\n",
					  -1, NULL));
	store = vc_store_open(fx->path, &error);
	g_assert_null(store);
	g_assert_error(error, VC_ERROR, VC_ERROR_STORE);
	g_assert_nonnull(strstr(error->message, fx->path));
}

static void
test_file_mode(Fixture *fx, gconstpointer data)
{
	g_autoptr(VcStore) store = NULL;
	const char *suffixes[] = {"", "-wal", "-shm"};
	mode_t old_umask = umask(0);
	GStatBuf st;

	/* With umask 0, only the store's own care keeps the files private. */
	store = open_store(fx);
	umask(old_umask);
	add_intent(store, "01", VM_A, "a.example.com", DAY);
	for (guint i = 0; i < G_N_ELEMENTS(suffixes); i++) {
		g_autofree char *file = g_strconcat(fx->path, suffixes[i], NULL);
		g_assert_cmpint(g_stat(file, &st), ==, 0);
		g_assert_cmpint(st.st_mode & 07777, ==, 0600);
	}
}

static void
test_reopen_keeps_data(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcCertRecord) rec = NULL;
	g_autoptr(VcDomainRecord) dom = NULL;
	VcDomainRecord in = {
	    .uuid = (char *)VM_A,
	    .generation = 3,
	    .name = (char *)"vm-a",
	    .state = (char *)"ISSUED",
	    .current_serial = (char *)"0abc",
	    .names_key = (char *)"a.example.com",
	    .next_action_at = 12345,
	};
	VcStore *store = open_store(fx);

	add_intent(store, "0ABC", VM_A, "a.example.com,b.example.com", DAY);
	issue(store, "0abc");
	g_assert_true(vc_store_domain_put(store, &in, &error));
	g_assert_no_error(error);
	vc_store_free(store);

	store = open_store(fx);
	rec = vc_store_cert_get(store, "0abc", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(rec->serial, ==, "0abc");
	g_assert_cmpint(rec->status, ==, VC_CERT_STATUS_VALID);
	g_assert_cmpuint(g_strv_length(rec->dns_names), ==, 2);
	g_assert_cmpstr(rec->dns_names[0], ==, "a.example.com");
	dom = vc_store_domain_get(store, VM_A, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(dom->state, ==, "ISSUED");
	g_assert_cmpint(dom->generation, ==, 3);
	vc_store_free(store);
}

static void
test_lifecycle(Fixture *fx, gconstpointer data)
{
	g_autoptr(VcStore) store = open_store(fx);
	g_autoptr(GError) error = NULL;
	g_autoptr(VcCertRecord) in =
	    make_rec("00F1e2", VM_A, "www.example.com,api.example.com", DAY);
	g_autoptr(GBytes) der = g_bytes_new_static("\x30\x82\x01\x00\xff", 5);
	g_autoptr(GPtrArray) revoked = NULL;
	g_autoptr(GPtrArray) audit = NULL;
	gint64 now = vc_test_now_s();

	g_assert_true(vc_store_cert_record_intent(store, in, &error));
	g_assert_no_error(error);
	{
		g_autoptr(VcCertRecord) rec = vc_store_cert_get(store, "00f1e2", &error);
		g_assert_no_error(error);
		g_assert_cmpstr(rec->serial, ==, "00f1e2");
		g_assert_cmpstr(rec->ca_id, ==, CA_ID);
		g_assert_cmpstr(rec->vm_uuid, ==, VM_A);
		g_assert_cmpstr(rec->vm_name, ==, "vm-a");
		g_assert_cmpstr(rec->dns_names[0], ==, "www.example.com");
		g_assert_cmpstr(rec->dns_names[1], ==, "api.example.com");
		g_assert_null(rec->dns_names[2]);
		g_assert_cmpint(rec->not_before, ==, in->not_before);
		g_assert_cmpint(rec->not_after, ==, in->not_after);
		g_assert_cmpint(rec->created_at, >=, now - 5);
		g_assert_cmpint(rec->status, ==, VC_CERT_STATUS_PENDING);
		g_assert_cmpint(rec->revoked_at, ==, 0);
		g_assert_cmpint(rec->reason, ==, -1);
		g_assert_null(rec->der);
	}
	{
		g_autoptr(GPtrArray) pending = vc_store_cert_list_pending(store, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(pending->len, ==, 1);
	}

	g_assert_true(vc_store_cert_mark_issued(store, "00F1E2", der, &error));
	g_assert_no_error(error);
	{
		g_autoptr(VcCertRecord) rec = vc_store_cert_get(store, "00f1e2", &error);
		g_autoptr(GPtrArray) pending = vc_store_cert_list_pending(store, &error);
		g_assert_no_error(error);
		g_assert_cmpint(rec->status, ==, VC_CERT_STATUS_VALID);
		g_assert_true(g_bytes_equal(rec->der, der));
		g_assert_cmpuint(pending->len, ==, 0);
	}

	g_assert_true(vc_store_cert_revoke(store, "00f1e2", 4, now - 10, &error));
	g_assert_no_error(error);
	{
		g_autoptr(VcCertRecord) rec = vc_store_cert_get(store, "00f1e2", &error);
		g_assert_no_error(error);
		g_assert_cmpint(rec->status, ==, VC_CERT_STATUS_REVOKED);
		g_assert_cmpint(rec->revoked_at, ==, now - 10);
		g_assert_cmpint(rec->reason, ==, 4);
		g_assert_true(g_bytes_equal(rec->der, der));
	}
	revoked = vc_store_cert_list_revoked(store, CA_ID, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(revoked->len, ==, 1);
	g_assert_cmpstr(((VcCertRecord *)revoked->pdata[0])->serial, ==, "00f1e2");

	/* newest first: revoked, issued, intent */
	audit = vc_store_audit_list(store, 3, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(audit->len, ==, 3);
	g_assert_cmpstr(((GStrv)audit->pdata[0])[1], ==, "cert.revoked");
	g_assert_cmpstr(((GStrv)audit->pdata[1])[1], ==, "cert.issued");
	g_assert_cmpstr(((GStrv)audit->pdata[2])[1], ==, "cert.intent");
	for (guint i = 0; i < 3; i++) {
		GStrv row = audit->pdata[i];
		g_autoptr(GDateTime) t = g_date_time_new_from_iso8601(row[0], NULL);
		g_assert_nonnull(t);
		g_assert_cmpint(g_date_time_to_unix(t), >=, now - 5);
		g_assert_cmpstr(row[2], ==, VM_A);
		g_assert_cmpstr(row[3], ==, "00f1e2");
	}
}

static void
test_transitions_refused(Fixture *fx, gconstpointer data)
{
	g_autoptr(VcStore) store = open_store(fx);
	g_autoptr(GBytes) der = g_bytes_new_static("\x30\x00", 2);
	GError *error = NULL;

	add_intent(store, "a1", VM_A, "a1.example.com", DAY);
	issue(store, "a1");
	g_assert_false(vc_store_cert_mark_issued(store, "a1", der, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_FAILED);
	g_assert_nonnull(strstr(error->message, "VALID"));
	g_clear_error(&error);
	g_assert_false(vc_store_cert_abandon(store, "a1", "test", &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_FAILED);
	g_clear_error(&error);
	g_assert_cmpint(status_of(store, "a1"), ==, VC_CERT_STATUS_VALID);

	g_assert_true(vc_store_cert_revoke(store, "a1", 1, 0, &error));
	g_assert_no_error(error);
	g_assert_false(vc_store_cert_mark_issued(store, "a1", der, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_FAILED);
	g_clear_error(&error);
	g_assert_false(vc_store_cert_abandon(store, "a1", "test", &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_FAILED);
	g_clear_error(&error);
	g_assert_cmpint(status_of(store, "a1"), ==, VC_CERT_STATUS_REVOKED);

	add_intent(store, "a2", VM_A, "a2.example.com", DAY);
	g_assert_true(vc_store_cert_abandon(store, "a2", "signing failed", &error));
	g_assert_no_error(error);
	g_assert_false(vc_store_cert_mark_issued(store, "a2", der, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_FAILED);
	g_assert_nonnull(strstr(error->message, "ABANDONED"));
	g_clear_error(&error);
	{
		g_autoptr(VcCertRecord) rec = vc_store_cert_get(store, "a2", &error);
		g_assert_no_error(error);
		g_assert_cmpint(rec->status, ==, VC_CERT_STATUS_ABANDONED);
		g_assert_null(rec->der);
		g_assert_cmpint(rec->reason, ==, 0);
		g_assert_cmpint(rec->revoked_at, >=, vc_test_now_s() - 5);
		g_assert_cmpstr(rec->revocation_detail, ==, "signing failed");
	}
	/* an abandoned serial is already on the CRL: revoking it changes nothing */
	g_assert_true(vc_store_cert_revoke(store, "a2", 1, 0, &error));
	g_assert_no_error(error);
	g_assert_cmpint(status_of(store, "a2"), ==, VC_CERT_STATUS_ABANDONED);

	/* unknown serials */
	g_assert_false(vc_store_cert_mark_issued(store, "ff", der, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_false(vc_store_cert_revoke(store, "ff", 0, 0, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_false(vc_store_cert_abandon(store, "ff", NULL, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_null(vc_store_cert_get(store, "ff", &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	g_clear_error(&error);

	/* bad input */
	g_assert_false(vc_store_cert_revoke(store, "a1", 7, 0, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_clear_error(&error);
	g_assert_false(vc_store_cert_revoke(store, "a1", 11, 0, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_clear_error(&error);
	{
		g_autoptr(VcCertRecord) rec = make_rec("xyz", VM_A, "x.example.com", DAY);
		g_assert_false(vc_store_cert_record_intent(store, rec, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
		g_clear_error(&error);
	}
	{
		g_autoptr(VcCertRecord) rec = make_rec("b1", VM_A, "x.example.com", DAY);
		rec->not_after = rec->not_before;
		g_assert_false(vc_store_cert_record_intent(store, rec, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
		g_clear_error(&error);
	}
	g_assert_false(vc_store_cert_mark_issued(store, "a1", NULL, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_clear_error(&error);
	/* each refusal left the audit log as it was: intent+issued+revoked for a1 */
	g_assert_cmpuint(count_events(store, "cert.revoked", "a1"), ==, 1);
	g_assert_cmpuint(count_events(store, "cert.issued", "a1"), ==, 1);
	g_assert_cmpuint(count_events(store, "cert.abandoned", "a2"), ==, 1);
}

static void
test_name_collision(Fixture *fx, gconstpointer data)
{
	g_autoptr(VcStore) store = open_store(fx);
	GError *error = NULL;

	add_intent(store, "aa01", VM_A, "www.example.com,a.example.com", DAY);

	/* another VM: refused, naming the name and the holder; nothing stored */
	{
		g_autoptr(VcCertRecord) rec =
		    make_rec("bb01", VM_B, "b.example.com,WWW.Example.com", DAY);
		g_autoptr(GPtrArray) certs = NULL;
		g_assert_false(vc_store_cert_record_intent(store, rec, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_NAME_COLLISION);
		g_assert_nonnull(strstr(error->message, "WWW.Example.com"));
		g_assert_nonnull(strstr(error->message, VM_A));
		g_assert_nonnull(strstr(error->message, "vm-a"));
		g_clear_error(&error);
		certs = vc_store_cert_list(store, VM_B, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(certs->len, ==, 0);
	}
	/* once issued it still holds the name */
	issue(store, "aa01");
	{
		g_autoptr(VcCertRecord) rec = make_rec("bb02", VM_B, "www.example.com", DAY);
		g_assert_false(vc_store_cert_record_intent(store, rec, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_NAME_COLLISION);
		g_clear_error(&error);
	}
	/* the same VM renews under the same name */
	add_intent(store, "aa02", VM_A, "www.example.com", DAY);

	/* after both of VM A's certificates are revoked, VM B may have it */
	g_assert_true(vc_store_cert_revoke(store, "aa01", 5, 0, &error));
	g_assert_no_error(error);
	{
		g_autoptr(VcCertRecord) rec = make_rec("bb03", VM_B, "www.example.com", DAY);
		g_assert_false(vc_store_cert_record_intent(store, rec, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_NAME_COLLISION);
		g_assert_nonnull(strstr(error->message, "aa02"));
		g_clear_error(&error);
	}
	g_assert_true(vc_store_cert_abandon(store, "aa02", "test", &error));
	g_assert_no_error(error);
	add_intent(store, "bb04", VM_B, "www.example.com", DAY);

	/* an expired certificate holds no name */
	add_intent(store, "aa05", VM_A, "old.example.com", -60);
	issue(store, "aa05");
	add_intent(store, "bb05", VM_B, "old.example.com", DAY);
}

static void
test_duplicate_serial(Fixture *fx, gconstpointer data)
{
	g_autoptr(VcStore) store = open_store(fx);
	g_autoptr(VcCertRecord) dup = make_rec("0DEADBEEF", VM_A, "other.example.com", DAY);
	g_autoptr(GPtrArray) certs = NULL;
	GError *error = NULL;

	add_intent(store, "0deadbeef", VM_A, "d.example.com", DAY);
	g_assert_false(vc_store_cert_record_intent(store, dup, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_EXISTS);
	g_assert_nonnull(strstr(error->message, "0deadbeef"));
	g_clear_error(&error);

	/* the failed call left nothing behind: not its names, not an audit row */
	certs = vc_store_cert_list(store, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(certs->len, ==, 1);
	g_assert_cmpstr(((VcCertRecord *)certs->pdata[0])->dns_names[0], ==, "d.example.com");
	g_assert_null(((VcCertRecord *)certs->pdata[0])->dns_names[1]);
	g_assert_cmpuint(count_events(store, "cert.intent", NULL), ==, 1);
	/* and other.example.com is free for VM B */
	add_intent(store, "0b", VM_B, "other.example.com", DAY);
}

static void
test_revoke_idempotent(Fixture *fx, gconstpointer data)
{
	g_autoptr(VcStore) store = open_store(fx);
	g_autoptr(GError) error = NULL;
	g_autoptr(VcCertRecord) rec = NULL;

	add_intent(store, "c1", VM_A, "c.example.com", DAY);
	issue(store, "c1");
	g_assert_true(vc_store_cert_revoke(store, "c1", 1, 1000, &error));
	g_assert_no_error(error);
	g_assert_true(vc_store_cert_revoke(store, "C1", 5, 2000, &error));
	g_assert_no_error(error);
	rec = vc_store_cert_get(store, "c1", &error);
	g_assert_no_error(error);
	g_assert_cmpint(rec->status, ==, VC_CERT_STATUS_REVOKED);
	g_assert_cmpint(rec->reason, ==, 1);
	g_assert_cmpint(rec->revoked_at, ==, 1000);
	g_assert_cmpuint(count_events(store, "cert.revoked", "c1"), ==, 1);

	/* a PENDING certificate can be revoked too (VM gone before signing) */
	add_intent(store, "c2", VM_A, "c2.example.com", DAY);
	g_assert_true(vc_store_cert_revoke(store, "c2", 5, 0, &error));
	g_assert_no_error(error);
	g_assert_cmpint(status_of(store, "c2"), ==, VC_CERT_STATUS_REVOKED);

	/* inside a batch a revocation counts only once committed */
	add_intent(store, "c3", VM_A, "c3.example.com", DAY);
	issue(store, "c3");
	g_assert_true(vc_store_begin(store, &error));
	g_assert_no_error(error);
	g_assert_true(vc_store_cert_revoke(store, "c3", 1, 0, &error));
	g_assert_no_error(error);
	vc_store_rollback(store);
	g_assert_cmpint(status_of(store, "c3"), ==, VC_CERT_STATUS_VALID);
	g_assert_cmpuint(count_events(store, "cert.revoked", "c3"), ==, 0);
	g_assert_true(vc_store_begin(store, &error));
	g_assert_no_error(error);
	g_assert_true(vc_store_cert_revoke(store, "c3", 1, 0, &error));
	g_assert_no_error(error);
	g_assert_true(vc_store_commit(store, &error));
	g_assert_no_error(error);
	g_assert_cmpint(status_of(store, "c3"), ==, VC_CERT_STATUS_REVOKED);
}

static void
test_recover(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) revoked = NULL;
	g_autoptr(GPtrArray) pending = NULL;
	VcStore *store = open_store(fx);
	guint count = 99;

	add_intent(store, "d1", VM_A, "d1.example.com", DAY);
	add_intent(store, "d2", VM_A, "d2.example.com", DAY);
	add_intent(store, "d3", VM_B, "d3.example.com", DAY);
	add_intent(store, "d4", VM_B, "d4.example.com", DAY);
	issue(store, "d4");
	/* a crash here: three serials recorded, maybe signed, never stored */
	vc_store_free(store);

	store = open_store(fx);
	pending = vc_store_cert_list_pending(store, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(pending->len, ==, 3);
	g_assert_cmpstr(((VcCertRecord *)pending->pdata[0])->serial, ==, "d1");
	g_assert_true(vc_store_recover(store, &count, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(count, ==, 3);

	for (guint i = 0; i < 3; i++) {
		const char *serial = (const char *[]){"d1", "d2", "d3"}[i];
		g_autoptr(VcCertRecord) rec = vc_store_cert_get(store, serial, &error);
		g_assert_no_error(error);
		g_assert_cmpint(rec->status, ==, VC_CERT_STATUS_ABANDONED);
		g_assert_cmpint(rec->reason, ==, 0);
		g_assert_cmpint(rec->revoked_at, >=, vc_test_now_s() - 5);
		g_assert_nonnull(rec->revocation_detail);
		g_assert_cmpuint(count_events(store, "cert.abandoned", serial), ==, 1);
	}
	g_assert_cmpint(status_of(store, "d4"), ==, VC_CERT_STATUS_VALID);
	g_clear_pointer(&pending, g_ptr_array_unref);
	pending = vc_store_cert_list_pending(store, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(pending->len, ==, 0);

	revoked = vc_store_cert_list_revoked(store, CA_ID, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(revoked->len, ==, 3);

	g_assert_true(vc_store_recover(store, &count, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(count, ==, 0);
	vc_store_free(store);
}

static void
test_list_revoked_window(Fixture *fx, gconstpointer data)
{
	g_autoptr(VcStore) store = open_store(fx);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) revoked = NULL;
	g_autoptr(VcCertRecord) other_ca = make_rec("e5", VM_A, "e5.example.com", DAY);
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

	add_intent(store, "e1", VM_A, "e1.example.com", DAY);	   /* valid */
	add_intent(store, "e2", VM_A, "e2.example.com", -6 * DAY); /* expired 6 d ago */
	add_intent(store, "e3", VM_A, "e3.example.com", -8 * DAY); /* expired 8 d ago */
	add_intent(store, "e4", VM_A, "e4.example.com", DAY);	   /* not revoked */
	g_free(other_ca->ca_id);
	other_ca->ca_id = g_strdup("other-ca");
	g_assert_true(vc_store_cert_record_intent(store, other_ca, &error));
	g_assert_no_error(error);
	for (guint i = 0; i < 4; i++) {
		const char *serial = (const char *[]){"e1", "e2", "e3", "e5"}[i];
		g_assert_true(vc_store_cert_revoke(store, serial, 0, 1000 + i, &error));
		g_assert_no_error(error);
	}
	issue(store, "e4");

	revoked = vc_store_cert_list_revoked(store, CA_ID, &error);
	g_assert_no_error(error);
	for (guint i = 0; i < revoked->len; i++) {
		VcCertRecord *rec = revoked->pdata[i];
		g_assert_cmpstr(rec->ca_id, ==, CA_ID);
		g_hash_table_add(seen, rec->serial);
	}
	g_assert_cmpuint(revoked->len, ==, 2);
	g_assert_true(g_hash_table_contains(seen, "e1"));
	g_assert_true(g_hash_table_contains(seen, "e2"));

	/* the CRL's lean list: the same rows in the same order, with what a
	 * CRL entry needs */
	{
		g_autoptr(GArray) rows = vc_store_crl_list(store, CA_ID, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(rows->len, ==, revoked->len);
		for (guint i = 0; i < rows->len; i++) {
			VcStoreCrlRow *row = &g_array_index(rows, VcStoreCrlRow, i);
			VcCertRecord *rec = revoked->pdata[i];
			g_assert_cmpstr(row->serial, ==, rec->serial);
			g_assert_cmpint(row->revoked_at, ==, rec->revoked_at);
			g_assert_cmpint(row->reason, ==, rec->reason);
		}
	}
}

/* The soonest expiry among the VMs' current, valid certificates: what the
 * expiry gauge shows */
static void
test_soonest_expiry(Fixture *fx, gconstpointer data)
{
	g_autoptr(VcStore) store = open_store(fx);
	g_autoptr(GError) error = NULL;
	gint64 not_after = -1;
	VcDomainRecord dom = {
	    .uuid = (char *)VM_A, .name = (char *)"vm-a", .state = (char *)"ISSUED"};

	g_assert_true(vc_store_cert_get_soonest_expiry(store, &not_after, &error));
	g_assert_no_error(error);
	g_assert_cmpint(not_after, ==, 0);

	add_intent(store, "f1", VM_A, "f1.example.com", DAY);
	issue(store, "f1");
	add_intent(store, "f2", VM_B, "f2.example.com", 2 * DAY);
	issue(store, "f2");
	add_intent(store, "f3", VM_A, "f3.example.com", DAY / 2); /* nobody's current */
	issue(store, "f3");
	/* no domain names a certificate yet */
	g_assert_true(vc_store_cert_get_soonest_expiry(store, &not_after, &error));
	g_assert_cmpint(not_after, ==, 0);

	dom.current_serial = (char *)"f2";
	g_assert_true(vc_store_domain_put(store, &dom, &error));
	g_assert_no_error(error);
	g_assert_true(vc_store_cert_get_soonest_expiry(store, &not_after, &error));
	g_assert_cmpint(not_after, >=, vc_test_now_s() + 2 * DAY - 5);
	dom.uuid = (char *)VM_B;
	dom.current_serial = (char *)"f1";
	g_assert_true(vc_store_domain_put(store, &dom, &error));
	g_assert_true(vc_store_cert_get_soonest_expiry(store, &not_after, &error));
	g_assert_cmpint(not_after, <=, vc_test_now_s() + DAY);
	g_assert_cmpint(not_after, >=, vc_test_now_s() + DAY - 5);
	/* a revoked current certificate does not count */
	g_assert_true(vc_store_cert_revoke(store, "f1", 4, 0, &error));
	g_assert_true(vc_store_cert_get_soonest_expiry(store, &not_after, &error));
	g_assert_cmpint(not_after, >=, vc_test_now_s() + 2 * DAY - 5);
	g_assert_no_error(error);
}

static void
test_crl_number(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	VcStore *store = open_store(fx);
	guint64 n = 0;

	for (guint64 want = 1; want <= 3; want++) {
		g_assert_true(vc_store_crl_next_number(store, CA_ID, &n, &error));
		g_assert_no_error(error);
		g_assert_cmpuint(n, ==, want);
	}
	g_assert_true(vc_store_crl_next_number(store, "other-ca", &n, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(n, ==, 1);
	vc_store_free(store);

	store = open_store(fx);
	g_assert_true(vc_store_crl_next_number(store, CA_ID, &n, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(n, ==, 4);

	/* not inside a batch, where a rollback would hand the number out twice */
	g_assert_true(vc_store_begin(store, &error));
	g_assert_false(vc_store_crl_next_number(store, CA_ID, &n, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_FAILED);
	g_clear_error(&error);
	vc_store_rollback(store);
	g_assert_true(vc_store_crl_next_number(store, CA_ID, &n, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(n, ==, 5);
	vc_store_free(store);
}

static void
test_audit_append_only(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	g_autofree char *msg = NULL;
	VcStore *store = open_store(fx);

	g_assert_true(vc_store_audit(store, "test.event", VM_A, NULL, "detail text", &error));
	g_assert_no_error(error);
	vc_store_free(store);

	g_assert_cmpint(raw_exec(fx->path, "UPDATE audit SET detail = 'forged'", &msg), ==,
			SQLITE_CONSTRAINT);
	g_assert_nonnull(strstr(msg, "append-only"));
	g_clear_pointer(&msg, g_free);
	g_assert_cmpint(raw_exec(fx->path, "DELETE FROM audit", &msg), ==, SQLITE_CONSTRAINT);
	g_assert_nonnull(strstr(msg, "append-only"));

	store = open_store(fx);
	rows = vc_store_audit_list(store, 10, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 1);
	g_assert_cmpstr(((GStrv)rows->pdata[0])[1], ==, "test.event");
	g_assert_cmpstr(((GStrv)rows->pdata[0])[2], ==, VM_A);
	g_assert_cmpstr(((GStrv)rows->pdata[0])[3], ==, "");
	g_assert_cmpstr(((GStrv)rows->pdata[0])[4], ==, "detail text");
	g_assert_null(((GStrv)rows->pdata[0])[5]);
	vc_store_free(store);
}

static void
test_group_commit(Fixture *fx, gconstpointer data)
{
	GError *error = NULL;
	g_autoptr(GPtrArray) certs = NULL;
	VcStore *store = open_store(fx);

	g_assert_true(vc_store_begin(store, &error));
	g_assert_no_error(error);
	g_assert_false(vc_store_begin(store, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_FAILED);
	g_clear_error(&error);
	for (guint i = 0; i < 1000; i++) {
		g_autofree char *serial = g_strdup_printf("%08x", i);
		g_autofree char *name = g_strdup_printf("vm%u.example.com", i);
		add_intent(store, serial, i % 2 ? VM_A : VM_B, name, DAY);
	}
	/* a refused call inside the batch undoes only itself */
	{
		g_autoptr(VcCertRecord) rec =
		    make_rec("ffff", VM_A, "fresh.example.com,vm0.example.com", DAY);
		g_assert_false(vc_store_cert_record_intent(store, rec, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_NAME_COLLISION);
		g_clear_error(&error);
	}
	g_assert_true(vc_store_commit(store, &error));
	g_assert_no_error(error);
	g_assert_false(vc_store_commit(store, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_FAILED);
	g_clear_error(&error);

	/* a rolled back batch leaves nothing */
	g_assert_true(vc_store_begin(store, &error));
	g_assert_no_error(error);
	add_intent(store, "aaaa0001", VM_A, "rolled.example.com", DAY);
	vc_store_rollback(store);
	g_assert_null(vc_store_cert_get(store, "aaaa0001", &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	g_clear_error(&error);
	/* and a batch left open at close is not committed */
	g_assert_true(vc_store_begin(store, &error));
	g_assert_no_error(error);
	add_intent(store, "aaaa0002", VM_A, "open.example.com", DAY);
	vc_store_free(store);

	store = open_store(fx);
	certs = vc_store_cert_list(store, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(certs->len, ==, 1000);
	g_assert_cmpuint(count_events(store, "cert.intent", NULL), ==, 1000);
	/* newest first */
	g_assert_cmpstr(((VcCertRecord *)certs->pdata[0])->serial, ==, "000003e7");
	g_clear_pointer(&certs, g_ptr_array_unref);
	certs = vc_store_cert_list(store, VM_A, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(certs->len, ==, 500);
	for (guint i = 0; i < certs->len; i++)
		g_assert_cmpstr(((VcCertRecord *)certs->pdata[i])->vm_uuid, ==, VM_A);
	vc_store_free(store);
}

static void
test_domains(Fixture *fx, gconstpointer data)
{
	g_autoptr(VcStore) store = open_store(fx);
	GError *error = NULL;
	VcDomainRecord in = {
	    .uuid = (char *)VM_B,
	    .generation = 1,
	    .name = (char *)"vm-b",
	    .state = (char *)"WANTED",
	};
	g_autoptr(GPtrArray) list = NULL;

	g_assert_null(vc_store_domain_get(store, VM_A, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	g_clear_error(&error);

	g_assert_true(vc_store_domain_put(store, &in, &error));
	g_assert_no_error(error);
	in.uuid = (char *)VM_A;
	in.name = (char *)"vm-a";
	g_assert_true(vc_store_domain_put(store, &in, &error));
	g_assert_no_error(error);
	/* an update with the same state is not a state change */
	in.failures = 2;
	in.last_error = (char *)"guest agent not connected";
	in.next_action_at = 777;
	in.updated_at = 555;
	g_assert_true(vc_store_domain_put(store, &in, &error));
	g_assert_no_error(error);
	in.state = (char *)"ISSUING";
	g_assert_true(vc_store_domain_put(store, &in, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(count_events(store, "domain.state", NULL), ==, 3);
	{
		g_autoptr(VcDomainRecord) rec = vc_store_domain_get(store, VM_A, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(rec->uuid, ==, VM_A);
		g_assert_cmpstr(rec->name, ==, "vm-a");
		g_assert_cmpstr(rec->state, ==, "ISSUING");
		g_assert_cmpint(rec->generation, ==, 1);
		g_assert_null(rec->current_serial);
		g_assert_null(rec->names_key);
		g_assert_cmpint(rec->failures, ==, 2);
		g_assert_cmpstr(rec->last_error, ==, "guest agent not connected");
		g_assert_cmpint(rec->next_action_at, ==, 777);
		g_assert_cmpint(rec->updated_at, ==, 555);
		g_assert_false(rec->renew_pending);
	}
	list = vc_store_domain_list(store, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(list->len, ==, 2);
	g_assert_cmpstr(((VcDomainRecord *)list->pdata[0])->uuid, ==, VM_A);
	g_assert_cmpstr(((VcDomainRecord *)list->pdata[1])->uuid, ==, VM_B);

	g_assert_true(vc_store_domain_delete(store, VM_A, &error));
	g_assert_no_error(error);
	g_assert_false(vc_store_domain_delete(store, VM_A, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_null(vc_store_domain_get(store, VM_A, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_cmpuint(count_events(store, "domain.deleted", NULL), ==, 1);
}

static void
test_upgrade_from_v1(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcStore) store = NULL;
	g_autoptr(VcCertRecord) rec = NULL;
	g_autoptr(GPtrArray) audit = NULL;
	g_autofree char *sql = NULL;
	VcDomainRecord dom = {.uuid = (char *)VM_A, .state = (char *)"ISSUED"};
	gint64 now = vc_test_now_s();
	guint64 n = 0;

	g_assert_cmpint(raw_exec(fx->path, v1_schema, NULL), ==, SQLITE_OK);
	sql = g_strdup_printf(
	    "PRAGMA user_version = 1;"
	    "INSERT INTO certificates VALUES ('0a1b', '" CA_ID "', '" VM_A "', 'vm-a',"
	    " %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
	    ", 'VALID', NULL, NULL, x'3003020101');"
	    "INSERT INTO cert_names VALUES ('0a1b', 0, 'v1.example.com');"
	    "INSERT INTO cert_names VALUES ('0a1b', 1, 'alt.example.com');"
	    "INSERT INTO crl_numbers VALUES ('" CA_ID "', 41);"
	    "INSERT INTO audit (time, event, vm_uuid, serial, detail)"
	    " VALUES (%" G_GINT64_FORMAT ", 'cert.issued', '" VM_A "', '0a1b', 'from v1');",
	    now - 60, now + DAY, now - 60, now - 60);
	g_assert_cmpint(raw_exec(fx->path, sql, NULL), ==, SQLITE_OK);

	store = open_store(fx);
	g_assert_cmpint(vc_store_get_schema_version(store), ==, VC_STORE_SCHEMA_VERSION);
	rec = vc_store_cert_get(store, "0a1b", &error);
	g_assert_no_error(error);
	g_assert_cmpint(rec->status, ==, VC_CERT_STATUS_VALID);
	g_assert_cmpstr(rec->dns_names[0], ==, "v1.example.com");
	g_assert_cmpstr(rec->dns_names[1], ==, "alt.example.com");
	g_assert_cmpuint(g_bytes_get_size(rec->der), ==, 5);
	g_assert_null(rec->revocation_detail);
	g_assert_true(vc_store_crl_next_number(store, CA_ID, &n, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(n, ==, 42);
	audit = vc_store_audit_list(store, 0, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(audit->len, ==, 1);
	g_assert_cmpstr(((GStrv)audit->pdata[0])[4], ==, "from v1");

	/* the migrated database does what a new one does */
	dom.renew_pending = TRUE;
	g_assert_true(vc_store_domain_put(store, &dom, &error));
	g_assert_no_error(error);
	{
		g_autoptr(VcDomainRecord) back = vc_store_domain_get(store, VM_A, &error);
		g_assert_no_error(error);
		g_assert_true(back->renew_pending);
	}
	{
		g_autoptr(VcCertRecord) clash = make_rec("0b", VM_B, "V1.example.com", DAY);
		g_assert_false(vc_store_cert_record_intent(store, clash, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_NAME_COLLISION);
		g_clear_error(&error);
	}
	g_assert_true(vc_store_cert_revoke(store, "0a1b", 4, 0, &error));
	g_assert_no_error(error);
	g_clear_pointer(&store, vc_store_free);

	/* reopening a migrated database does not migrate again */
	store = open_store(fx);
	g_assert_cmpint(vc_store_get_schema_version(store), ==, VC_STORE_SCHEMA_VERSION);
	g_assert_cmpint(status_of(store, "0a1b"), ==, VC_CERT_STATUS_REVOKED);
}

/* Migration 2 exactly as virtcert shipped it, frozen like v1_schema. */
static const char v2_migration[] =
    "CREATE TABLE domains ("
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
    " WHERE status IN ('REVOKED', 'ABANDONED');"
    "PRAGMA user_version = 2;";

static void
test_upgrade_from_v2(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcStore) store = NULL;
	g_autoptr(VcCertRecord) old = NULL;
	g_autoptr(VcCertRecord) got = NULL;
	g_autoptr(VcCertRecord) rec = make_rec("0c", VM_B, "p.example.com", DAY);
	g_autoptr(VcCertRecord) open_rec = make_rec("0d", VM_B, "q.example.com", DAY);
	g_autofree char *sql = NULL;
	gint64 now = vc_test_now_s();

	g_assert_cmpint(raw_exec(fx->path, v1_schema, NULL), ==, SQLITE_OK);
	g_assert_cmpint(raw_exec(fx->path, v2_migration, NULL), ==, SQLITE_OK);
	sql = g_strdup_printf("INSERT INTO certificates VALUES ('0a2b', '" CA_ID "', '" VM_A
			      "', 'vm-a',"
			      " %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
			      ", 'VALID', NULL, NULL, x'3003020101', NULL);",
			      now - 60, now + DAY, now - 60);
	g_assert_cmpint(raw_exec(fx->path, sql, NULL), ==, SQLITE_OK);

	store = open_store(fx);
	g_assert_cmpint(vc_store_get_schema_version(store), ==, VC_STORE_SCHEMA_VERSION);
	/* a certificate from before: no placement was recorded */
	old = vc_store_cert_get(store, "0a2b", &error);
	g_assert_no_error(error);
	g_assert_cmpint(old->status, ==, VC_CERT_STATUS_VALID);
	g_assert_null(old->placement);

	/* a new one keeps what it was issued under, "" (unrestricted) too */
	rec->placement = g_strdup("require=site=eu-west\n");
	g_assert_true(vc_store_cert_record_intent(store, rec, &error));
	g_assert_no_error(error);
	open_rec->placement = g_strdup("");
	g_assert_true(vc_store_cert_record_intent(store, open_rec, &error));
	g_assert_no_error(error);
	g_clear_pointer(&store, vc_store_free);
	store = open_store(fx);
	got = vc_store_cert_get(store, "0c", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(got->placement, ==, "require=site=eu-west\n");
	g_clear_pointer(&got, vc_cert_record_free);
	got = vc_store_cert_get(store, "0d", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(got->placement, ==, "");
}

static void
test_newer_schema_refused(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	VcStore *store;

	g_assert_cmpint(
	    raw_exec(fx->path, "CREATE TABLE future (x); PRAGMA user_version = 99;", NULL), ==,
	    SQLITE_OK);
	store = vc_store_open(fx->path, &error);
	g_assert_null(store);
	g_assert_error(error, VC_ERROR, VC_ERROR_STORE);
	g_assert_nonnull(strstr(error->message, "upgrade virtcert"));
	g_assert_nonnull(strstr(error->message, "99"));
}

static void
test_status_strings(void)
{
	VcCertStatus status;

	for (VcCertStatus s = VC_CERT_STATUS_PENDING; s <= VC_CERT_STATUS_ABANDONED; s++) {
		g_assert_true(vc_cert_status_from_string(vc_cert_status_to_string(s), &status));
		g_assert_cmpint(status, ==, s);
	}
	g_assert_cmpstr(vc_cert_status_to_string(VC_CERT_STATUS_ABANDONED), ==, "ABANDONED");
	g_assert_false(vc_cert_status_from_string("GONE", &status));
	g_assert_false(vc_cert_status_from_string(NULL, &status));
}

/* Not a pass/fail threshold (machines differ), but every row is checked. */
static void
test_throughput(Fixture *fx, gconstpointer data)
{
	g_autoptr(VcStore) store = open_store(fx);
	g_autoptr(GBytes) der = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) certs = NULL;
	const guint batch = 256;
	const guint batches = g_test_slow() ? 200 : 40;
	guint8 fake_der[700];
	gint64 start;
	double secs;

	memset(fake_der, 0x5a, sizeof(fake_der));
	der = g_bytes_new(fake_der, sizeof(fake_der));
	start = g_get_monotonic_time();
	for (guint b = 0; b < batches; b++) {
		g_assert_true(vc_store_begin(store, &error));
		for (guint i = 0; i < batch; i++) {
			g_autofree char *serial = g_strdup_printf("%032x", b * batch + i);
			g_autofree char *name = g_strdup_printf("vm%u.example.com", b * batch + i);
			add_intent(store, serial, (i & 1) ? VM_A : VM_B, name, DAY);
		}
		g_assert_true(vc_store_commit(store, &error));
		g_assert_true(vc_store_begin(store, &error));
		for (guint i = 0; i < batch; i++) {
			g_autofree char *serial = g_strdup_printf("%032x", b * batch + i);
			g_assert_true(vc_store_cert_mark_issued(store, serial, der, &error));
		}
		g_assert_true(vc_store_commit(store, &error));
	}
	secs = (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
	g_test_message("store: %u certificates (intent + mark_issued, batches of %u) in %.2f s: "
		       "%.0f certificates/s",
		       batches * batch, batch, secs, batches * batch / secs);

	certs = vc_store_cert_list(store, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(certs->len, ==, batches * batch);
	for (guint i = 0; i < certs->len; i++) {
		VcCertRecord *rec = certs->pdata[i];
		g_assert_cmpint(rec->status, ==, VC_CERT_STATUS_VALID);
		g_assert_cmpuint(g_bytes_get_size(rec->der), ==, sizeof(fake_der));
	}
}

static void
assert_state_dir_refused(Fixture *fx, const char *needle)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcStore) store = vc_store_open_state_dir(fx->dir, &error);

	g_assert_null(store);
	g_assert_error(error, VC_ERROR, VC_ERROR_STORE);
	if (strstr(error->message, needle) == NULL || strstr(error->message, "backup") == NULL)
		g_error("\"%s\" (and the way to restore) not in \"%s\"", needle, error->message);
}

static char *
file_digest(const char *path)
{
	g_autofree char *data = NULL;
	gsize len = 0;

	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	return g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, len);
}

/* Red-team finding 1: once a state directory had a store, a missing, empty
 * or schema-less store is a lost one, refused with the way to restore it;
 * it never becomes a fresh store that forgot every revocation. */
static void
test_state_dir_guard(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcStore) store = NULL;
	g_autoptr(VcCertRecord) rec = make_rec("0a", VM_A, "a.vms.example.com", DAY);
	g_autofree char *marker = g_build_filename(fx->dir, VC_STORE_MARKER, NULL);
	sqlite3 *db = NULL;

	/* a fresh directory: created, and the marker says so */
	store = vc_store_open_state_dir(fx->dir, &error);
	g_assert_no_error(error);
	g_assert_true(g_file_test(marker, G_FILE_TEST_EXISTS));
	g_assert_true(vc_store_cert_record_intent(store, rec, &error));
	g_assert_true(vc_store_cert_revoke(store, "0a", 1, 0, &error));
	g_assert_no_error(error);
	g_clear_pointer(&store, vc_store_free);
	store = vc_store_open_state_dir(fx->dir, &error);
	g_assert_no_error(error);
	g_clear_pointer(&store, vc_store_free);

	/* truncated to 0 bytes */
	g_assert_true(g_file_set_contents(fx->path, "", 0, NULL));
	assert_state_dir_refused(fx, "is empty (0 bytes)");
	g_assert_true(g_file_test(fx->path, G_FILE_TEST_EXISTS));
	/* gone */
	g_assert_cmpint(g_unlink(fx->path), ==, 0);
	assert_state_dir_refused(fx, "is missing");
	g_assert_false(g_file_test(fx->path, G_FILE_TEST_EXISTS));
	/* a valid SQLite file without virtcert's schema */
	g_assert_cmpint(sqlite3_open(fx->path, &db), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_exec(db, "CREATE TABLE x (y); DROP TABLE x;", NULL, NULL, NULL), ==,
			SQLITE_OK);
	sqlite3_close(db);
	assert_state_dir_refused(fx, "no virtcert schema");

	/* a plain vc_store_open() (tests, tools) still creates as before */
	g_assert_cmpint(g_unlink(fx->path), ==, 0);
	store = open_store(fx);
	g_clear_pointer(&store, vc_store_free);
}

/* A store made before the marker existed is adopted, not refused. */
static void
test_state_dir_adopt(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcStore) store = open_store(fx);
	g_autofree char *marker = g_build_filename(fx->dir, VC_STORE_MARKER, NULL);

	g_clear_pointer(&store, vc_store_free);
	g_assert_false(g_file_test(marker, G_FILE_TEST_EXISTS));
	store = vc_store_open_state_dir(fx->dir, &error);
	g_assert_no_error(error);
	g_assert_true(g_file_test(marker, G_FILE_TEST_EXISTS));
}

/* A store that fails PRAGMA quick_check is refused at open and not one
 * octet of it is written, by either open. */
static void
test_quick_check(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcStore) store = NULL;
	g_autofree char *before = NULL;
	g_autofree char *after = NULL;
	g_autofree char *contents = NULL;
	gsize len = 0;

	store = vc_store_open_state_dir(fx->dir, &error);
	g_assert_no_error(error);
	g_assert_true(vc_store_begin(store, &error));
	for (int i = 0; i < 400; i++) {
		g_autofree char *serial = g_strdup_printf("%04x", i + 1);
		g_autofree char *name = g_strdup_printf("vm-%d.vms.example.com", i);
		g_autoptr(VcCertRecord) rec = make_rec(serial, VM_A, name, DAY);
		g_assert_true(vc_store_cert_record_intent(store, rec, &error));
	}
	g_assert_true(vc_store_commit(store, &error));
	g_assert_no_error(error);
	/* the last close checkpoints the WAL into the file */
	g_clear_pointer(&store, vc_store_free);
	{
		g_autofree char *wal = g_strconcat(fx->path, "-wal", NULL);
		g_assert_false(g_file_test(wal, G_FILE_TEST_EXISTS));
	}

	/* garbage over one page in the middle of the tables */
	g_assert_true(g_file_get_contents(fx->path, &contents, &len, NULL));
	g_assert_cmpuint(len, >, 6 * 4096);
	for (gsize page = 2; page < 6; page++)
		memset(contents + page * 4096, 0x5a, 64);
	g_assert_true(g_file_set_contents(fx->path, contents, (gssize)len, NULL));
	g_assert_cmpint(g_chmod(fx->path, 0600), ==, 0);
	before = file_digest(fx->path);

	store = vc_store_open(fx->path, &error);
	g_assert_null(store);
	g_assert_error(error, VC_ERROR, VC_ERROR_STORE);
	g_assert_nonnull(strstr(error->message, "quick_check"));
	g_clear_error(&error);
	assert_state_dir_refused(fx, "is corrupt");
	after = file_digest(fx->path);
	g_assert_cmpstr(before, ==, after);

	/* not a database at all */
	g_assert_true(g_file_set_contents(fx->path,
					  "this is not a database, it is a text file "
					  "long enough to be more than a header........"
					  "...................................",
					  -1, NULL));
	assert_state_dir_refused(fx, "not a SQLite database");
	assert_state_dir_refused(fx, "quick_check");
}

/* Red-team finding 1: the CRL number goes above a number recorded outside
 * the store (a store restored from an older backup). */
static void
test_crl_number_above(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcStore) store = open_store(fx);
	guint64 n = 0;

	g_assert_true(vc_store_crl_next_number_above(store, CA_ID, 0, &n, &error));
	g_assert_cmpuint(n, ==, 1);
	g_assert_true(vc_store_crl_next_number_above(store, CA_ID, 41, &n, &error));
	g_assert_cmpuint(n, ==, 42);
	/* below the store's own count: the store's count wins */
	g_assert_true(vc_store_crl_next_number_above(store, CA_ID, 5, &n, &error));
	g_assert_cmpuint(n, ==, 43);
	g_assert_true(vc_store_crl_next_number_above(store, "fresh-ca", 7, &n, &error));
	g_assert_cmpuint(n, ==, 8);
	g_assert_no_error(error);
}

/* The fault seam (-Dtest_seams=true): the Nth commit fails as on a full
 * disk and leaves nothing; the ones before and after it commit; a begin
 * fails as when another process holds the write lock; a bad spec is
 * refused naming it. */
static void
test_injected_faults(Fixture *fx, gconstpointer data)
{
#ifdef VC_TEST_SEAMS
	GError *error = NULL;
	VcStore *store;

	g_setenv("VC_TEST_STORE_FAIL", "commit:2", TRUE);
	store = open_store(fx);
	for (guint i = 0; i < 3; i++) {
		g_autofree char *serial = g_strdup_printf("bbbb000%u", i);
		g_autofree char *name = g_strdup_printf("fault%u.example.com", i);
		g_assert_true(vc_store_begin(store, &error));
		g_assert_no_error(error);
		add_intent(store, serial, VM_A, name, DAY);
		if (i == 1) {
			g_assert_false(vc_store_commit(store, &error));
			g_assert_error(error, VC_ERROR, VC_ERROR_STORE);
			g_assert_nonnull(strstr(error->message, "database or disk is full"));
			g_assert_nonnull(strstr(error->message, "injected by VC_TEST_STORE_FAIL"));
			g_clear_error(&error);
			vc_store_rollback(store);
			g_assert_null(vc_store_cert_get(store, serial, &error));
			g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
			g_clear_error(&error);
		} else {
			g_assert_true(vc_store_commit(store, &error));
			g_assert_no_error(error);
		}
	}
	g_assert_true(vc_store_test_fail(store, "begin:1:2", &error));
	g_assert_no_error(error);
	for (guint i = 0; i < 2; i++) {
		g_assert_false(vc_store_begin(store, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_STORE);
		g_assert_nonnull(strstr(error->message, "database is locked"));
		g_clear_error(&error);
	}
	g_assert_true(vc_store_begin(store, &error));
	g_assert_no_error(error);
	g_assert_true(vc_store_commit(store, &error));
	g_assert_no_error(error);
	vc_store_free(store);
	{
		g_autoptr(VcStore) again = vc_store_open(fx->path, &error);
		g_autoptr(GPtrArray) certs = NULL;
		g_assert_no_error(error);
		certs = vc_store_cert_list(again, NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(certs->len, ==, 2);
	}
	g_setenv("VC_TEST_STORE_FAIL", "commit:0", TRUE);
	g_assert_null(vc_store_open(fx->path, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_USAGE);
	g_assert_nonnull(strstr(error->message, "VC_TEST_STORE_FAIL=\"commit:0\""));
	g_clear_error(&error);
	g_unsetenv("VC_TEST_STORE_FAIL");
#else
	g_test_skip("needs the test seams (meson setup -Dtest_seams=true)");
#endif
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

#define ADD(name, fn) g_test_add("/store/" name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
	ADD("open-create", test_open_create);
	ADD("open-errors", test_open_errors);
	ADD("file-mode", test_file_mode);
	ADD("reopen-keeps-data", test_reopen_keeps_data);
	ADD("lifecycle", test_lifecycle);
	ADD("transitions-refused", test_transitions_refused);
	ADD("name-collision", test_name_collision);
	ADD("duplicate-serial", test_duplicate_serial);
	ADD("revoke-idempotent", test_revoke_idempotent);
	ADD("recover", test_recover);
	ADD("list-revoked-window", test_list_revoked_window);
	ADD("soonest-expiry", test_soonest_expiry);
	ADD("crl-number", test_crl_number);
	ADD("crl-number-above", test_crl_number_above);
	ADD("state-dir-guard", test_state_dir_guard);
	ADD("state-dir-adopt", test_state_dir_adopt);
	ADD("quick-check", test_quick_check);
	ADD("audit-append-only", test_audit_append_only);
	ADD("group-commit", test_group_commit);
	ADD("injected-faults", test_injected_faults);
	ADD("domains", test_domains);
	ADD("upgrade-from-v1", test_upgrade_from_v1);
	ADD("upgrade-from-v2", test_upgrade_from_v2);
	ADD("newer-schema-refused", test_newer_schema_refused);
	ADD("throughput", test_throughput);
#undef ADD
	g_test_add_func("/store/status-strings", test_status_strings);

	return g_test_run();
}
