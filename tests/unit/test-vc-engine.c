/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <openssl/pem.h>

#include "vc-ca.h"
#include "vc-engine.h"
#include "vc-error.h"
#include "vc-host.h"
#include "vc-placement.h"
#include "vc-store.h"
#include "vc-test-ca.h"
#include "vc-virt.h"

/* The engine without the daemon, against libvirt's test driver in this
 * process: test:///default is shared by every connection of one process,
 * so the test's own connection defines, starts, destroys and undefines
 * domains and the engine's VcVirt receives the events. Test-driver domains
 * have no guest agent channel: certificates are issued, never delivered. */

#define NS "urn:virtcert:domain:1"
#define WAIT_MS 5000

static const char policy_data[] = "[t]\nmatch-name=t-*\nnames={name}.vms.example.com\n";

typedef struct {
	VcTestCa *tca; /* the temporary directory and the CA in it */
	char *db_path;
	VcConfig *config;
	VcStore *store;
	VcEngine *engine;
	VcVirt *virt;
	guint n_connected;
	virConnectPtr conn; /* the test's own connection to the same driver */
	GPtrArray *notes;   /* "event|vm_uuid|detail" of every engine notification */
} Fixture;

/* ---- expected warnings -------------------------------------------------- */

/* The engine warns operators through structured logging, which
 * g_test_expect_message() does not see; under GTest an unexpected warning
 * stays fatal, an expected one (glob on the message) is recorded instead. */
G_LOCK_DEFINE_STATIC(warnings);
static GPtrArray *expected_warnings; /* glob patterns */
static GPtrArray *seen_warnings;     /* messages that matched one */

static void
expect_warning(const char *pattern)
{
	G_LOCK(warnings);
	g_ptr_array_add(expected_warnings, g_strdup(pattern));
	G_UNLOCK(warnings);
}

static gboolean
warning_seen(const char *pattern)
{
	gboolean found = FALSE;
	G_LOCK(warnings);
	for (guint i = 0; i < seen_warnings->len && !found; i++)
		found = g_pattern_match_simple(pattern, g_ptr_array_index(seen_warnings, i));
	G_UNLOCK(warnings);
	return found;
}

static GLogWriterOutput
log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	g_autofree char *domain = NULL;
	g_autofree char *message = NULL;

	if ((level & G_LOG_LEVEL_WARNING) == 0)
		return g_log_writer_default(level, fields, n_fields, user_data);
	for (gsize i = 0; i < n_fields; i++) {
		char *v = fields[i].length < 0 ? g_strdup(fields[i].value)
					       : g_strndup(fields[i].value, fields[i].length);
		if (g_strcmp0(fields[i].key, "GLIB_DOMAIN") == 0 && domain == NULL)
			domain = v;
		else if (g_strcmp0(fields[i].key, "MESSAGE") == 0 && message == NULL)
			message = v;
		else
			g_free(v);
	}
	if (g_strcmp0(domain, "virtcert-engine") == 0 && message != NULL) {
		gboolean expected = FALSE;
		G_LOCK(warnings);
		for (guint i = 0; i < expected_warnings->len && !expected; i++)
			expected = g_pattern_match_simple(g_ptr_array_index(expected_warnings, i),
							  message);
		if (expected)
			g_ptr_array_add(seen_warnings, g_steal_pointer(&message));
		G_UNLOCK(warnings);
		if (expected)
			return G_LOG_WRITER_HANDLED;
	}
	return g_log_writer_default(level, fields, n_fields, user_data);
}

/* ---- engine callbacks --------------------------------------------------- */

static void
on_notify(JsonNode *data, gpointer user_data)
{
	Fixture *fx = user_data;
	JsonObject *o = json_node_get_object(data);

	if (g_strcmp0(json_object_get_string_member_with_default(o, "event", ""),
		      "libvirt-connected") == 0)
		fx->n_connected++;
	g_ptr_array_add(
	    fx->notes,
	    g_strdup_printf("%s|%s|%s", json_object_get_string_member_with_default(o, "event", ""),
			    json_object_get_string_member_with_default(o, "vm_uuid", ""),
			    json_object_get_string_member_with_default(o, "detail", "")));
}

static gboolean
cond_connected(gpointer user_data, gconstpointer data)
{
	Fixture *fx = user_data;
	return fx->n_connected >= GPOINTER_TO_UINT(data);
}

/* A new engine (and VcVirt) on the fixture's store, as a starting daemon:
 * recovery, then the libvirt connection, whose connected() reconciles. */
static void
fx_start_engine(Fixture *fx)
{
	g_autoptr(GError) error = NULL;
	VcPolicySet *set = vc_policy_set_new();
	guint connected = fx->n_connected;

	g_assert_true(
	    vc_policy_set_load_data(set, "10-test.conf", policy_data, strlen(policy_data), &error));
	g_assert_no_error(error);
	g_assert_cmpuint(vc_policy_set_get_size(set), ==, 1);
	fx->engine = vc_engine_new(fx->config, fx->store, fx->tca->ca, set);
	vc_engine_set_notify(fx->engine, on_notify, fx);
	g_assert_true(vc_engine_recover(fx->engine, &error));
	g_assert_no_error(error);
	/* the same wiring as the daemon's */
	vc_engine_connect_libvirt(fx->engine, "test:///default");
	fx->virt = vc_engine_get_virt(fx->engine);
	g_assert_true(
	    vc_test_wait_until(cond_connected, fx, GUINT_TO_POINTER(connected + 1), WAIT_MS));
}

/* As a daemon that stops: nothing watches libvirt until the next start. */
static void
fx_stop_engine(Fixture *fx)
{
	fx->virt = NULL; /* the engine's */
	g_clear_pointer(&fx->engine, vc_engine_free);
}

/* This host's certificate with site=eu-west under STATE_DIR/host/, where
 * vc_host_load() finds it: host CA, enrollment, signing, import. */
static void
fx_install_host_cert(Fixture *fx)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *hostca_dir = g_build_filename(fx->tca->dir, "hostca", NULL);
	g_autofree char *hostca_pem = g_build_filename(hostca_dir, "ca.pem", NULL);
	g_autofree char *key = vc_config_get_host_path(fx->config, "key");
	g_autofree char *cert = vc_config_get_host_path(fx->config, "cert");
	g_autofree char *bundle = vc_config_get_host_path(fx->config, "ca");
	g_autofree char *csr_path = g_build_filename(fx->tca->dir, "host.csr", NULL);
	g_autofree char *signed_path = g_build_filename(fx->tca->dir, "host-signed.pem", NULL);
	g_autoptr(VcHost) host = NULL;
	const char *attrs[] = {"site=eu-west", NULL};

	vc_test_host_ca_init(hostca_dir, "test host CA");
	g_assert_true(vc_host_enroll(key, csr_path, "h1.example.com", attrs, hostca_pem, bundle,
				     FALSE, &error));
	g_assert_no_error(error);
	vc_test_host_ca_sign(hostca_dir, csr_path, vc_test_now_s() - 60, vc_test_now_s() + 3600,
			     signed_path);
	g_assert_true(vc_host_import(signed_path, key, bundle, cert, &error));
	g_assert_no_error(error);

	host = vc_host_load(fx->config, &error);
	g_assert_no_error(error);
	g_assert_true(vc_host_check(host, &error));
	g_assert_no_error(error);
}

static void
fx_setup(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	fx->notes = g_ptr_array_new_with_free_func(g_free);
	fx->tca = vc_test_ca_new("vc-engine", VC_KEY_TYPE_EC_P256);
	fx->db_path = g_build_filename(fx->tca->dir, "virtcert.db", NULL);
	fx->store = vc_store_open(fx->db_path, &error);
	g_assert_no_error(error);
	fx->config = vc_config_new_default();
	vc_config_set_state_dir(fx->config, fx->tca->dir);

	/* keeps test:///default alive and lets the test act on it */
	fx->conn = virConnectOpen("test:///default");
	g_assert_nonnull(fx->conn);
	if (g_strcmp0(data, "host") == 0)
		fx_install_host_cert(fx);
	if (g_strcmp0(data, "stopped") != 0)
		fx_start_engine(fx);
}

static void
fx_teardown(Fixture *fx, gconstpointer data)
{
	virDomainPtr *doms = NULL;
	int n;

	fx_stop_engine(fx);
#ifdef VC_TEST_SEAMS
	vc_engine_test_set_clock(0);
#endif
	/* the default domain "test" is the only one left between tests */
	n = virConnectListAllDomains(fx->conn, &doms, 0);
	for (int i = 0; i < n; i++) {
		if (g_strcmp0(virDomainGetName(doms[i]), "test") != 0) {
			if (virDomainIsActive(doms[i]) == 1)
				virDomainDestroy(doms[i]);
			if (virDomainIsPersistent(doms[i]) == 1)
				virDomainUndefine(doms[i]);
		}
		virDomainFree(doms[i]);
	}
	free(doms);
	virConnectClose(fx->conn);
	g_clear_pointer(&fx->store, vc_store_free);
	g_clear_pointer(&fx->config, vc_config_free);
	g_clear_pointer(&fx->notes, g_ptr_array_unref);
	G_LOCK(warnings);
	g_ptr_array_set_size(expected_warnings, 0);
	g_ptr_array_set_size(seen_warnings, 0);
	G_UNLOCK(warnings);
	g_clear_pointer(&fx->tca, vc_test_ca_free);
	g_free(fx->db_path);
}

/* ---- libvirt actions ---------------------------------------------------- */

static void
define_domain(Fixture *fx, const char *name, const char *uuid, const char *vm_metadata)
{
	g_autofree char *xml = g_strdup_printf(
	    "<domain type='test'><name>%s</name><uuid>%s</uuid>"
	    "<memory>8192</memory><os><type>hvm</type></os>%s%s%s</domain>",
	    name, uuid, vm_metadata != NULL ? "<metadata>" : "",
	    vm_metadata != NULL ? vm_metadata : "", vm_metadata != NULL ? "</metadata>" : "");
	virDomainPtr dom = virDomainDefineXML(fx->conn, xml);
	g_assert_nonnull(dom);
	virDomainFree(dom);
}

static void
domain_do(Fixture *fx, const char *uuid, int (*action)(virDomainPtr))
{
	virDomainPtr dom = virDomainLookupByUUIDString(fx->conn, uuid);
	g_assert_nonnull(dom);
	g_assert_cmpint(action(dom), ==, 0);
	virDomainFree(dom);
}

static void
define_and_start(Fixture *fx, const char *name, const char *uuid, const char *vm_metadata)
{
	define_domain(fx, name, uuid, vm_metadata);
	domain_do(fx, uuid, virDomainCreate);
}

/* ---- what the engine says ----------------------------------------------- */

/* The engine's row of VM as `virtcert show` prints it; NULL when it has none. */
static JsonNode *
show(Fixture *fx, const char *vm)
{
	g_autoptr(GError) error = NULL;
	JsonNode *node = vc_engine_show(fx->engine, vm, &error);

	if (node == NULL) {
		g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
		return NULL;
	}
	g_assert_true(JSON_NODE_HOLDS_OBJECT(node));
	return node;
}

static JsonObject *
show_domain(JsonNode *node)
{
	return json_object_get_object_member(json_node_get_object(node), "domain");
}

/* A copy of member KEY of VM's domain row, NULL when absent or null. */
static char *
row_string(Fixture *fx, const char *vm, const char *key)
{
	g_autoptr(JsonNode) node = show(fx, vm);
	if (node == NULL || !json_object_has_member(json_node_get_object(node), "domain"))
		return NULL;
	return g_strdup(json_object_get_string_member_with_default(show_domain(node), key, NULL));
}

static gint64
row_generation(Fixture *fx, const char *vm)
{
	g_autoptr(JsonNode) node = show(fx, vm);
	g_assert_nonnull(node);
	return json_object_get_int_member(show_domain(node), "generation");
}

typedef struct {
	const char *vm;
	const char *state;
	const char *not_serial; /* and a current serial other than this one */
	gint64 generation;	/* and this generation, if not 0 */
} WantState;

static gboolean
cond_state(gpointer user_data, gconstpointer data)
{
	Fixture *fx = user_data;
	const WantState *w = data;
	g_autofree char *state = row_string(fx, w->vm, "state");
	g_autofree char *serial = NULL;

	if (g_strcmp0(state, w->state) != 0)
		return FALSE;
	if (w->not_serial != NULL) {
		serial = row_string(fx, w->vm, "current_serial");
		if (serial == NULL || g_strcmp0(serial, w->not_serial) == 0)
			return FALSE;
	}
	return w->generation == 0 || row_generation(fx, w->vm) == w->generation;
}

static void
wait_state(Fixture *fx, const char *vm, const char *state)
{
	WantState w = {.vm = vm, .state = state};
	if (!vc_test_wait_until(cond_state, fx, &w, WAIT_MS)) {
		g_autofree char *now = row_string(fx, vm, "state");
		g_autofree char *err = row_string(fx, vm, "last_error");
		g_error("VM %s: state %s (%s), expected %s", vm, now, err, state);
	}
}

/* The current serial of VM once it reached ISSUED. */
static char *
wait_issued(Fixture *fx, const char *vm)
{
	char *serial;
	wait_state(fx, vm, "ISSUED");
	serial = row_string(fx, vm, "current_serial");
	g_assert_nonnull(serial);
	return serial;
}

static VcCertRecord *
cert_get(Fixture *fx, const char *serial)
{
	g_autoptr(GError) error = NULL;
	VcCertRecord *rec = vc_store_cert_get(fx->store, serial, &error);
	g_assert_no_error(error);
	return rec;
}

static void
assert_cert(Fixture *fx, const char *serial, VcCertStatus status, int reason)
{
	g_autoptr(VcCertRecord) rec = cert_get(fx, serial);
	g_assert_cmpstr(vc_cert_status_to_string(rec->status), ==,
			vc_cert_status_to_string(status));
	g_assert_cmpint(rec->reason, ==, reason);
}

typedef struct {
	const char *serial;
	VcCertStatus status;
} WantCert;

static gboolean
cond_cert(gpointer user_data, gconstpointer data)
{
	Fixture *fx = user_data;
	const WantCert *w = data;
	g_autoptr(VcCertRecord) rec = cert_get(fx, w->serial);
	return rec->status == w->status;
}

/* The store's row (what a restart finds), not the engine's cache. */
static VcDomainRecord *
store_row(Fixture *fx, const char *uuid)
{
	g_autoptr(GError) error = NULL;
	VcDomainRecord *rec = vc_store_domain_get(fx->store, uuid, &error);
	g_assert_no_error(error);
	return rec;
}

static gboolean
has_note(Fixture *fx, const char *event, const char *uuid, const char *detail_part)
{
	g_autofree char *prefix = g_strdup_printf("%s|%s|", event, uuid);
	for (guint i = 0; i < fx->notes->len; i++) {
		const char *n = g_ptr_array_index(fx->notes, i);
		if (g_str_has_prefix(n, prefix) && strstr(n + strlen(prefix), detail_part) != NULL)
			return TRUE;
	}
	return FALSE;
}

/* The certificate SERIAL as the /cert/<uuid> URL serves it: the first of
 * the chain, verified against the CA. */
static void
assert_chain_serves(Fixture *fx, const char *uuid, const char *serial, const char *dns)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *chain = vc_engine_get_cert_chain(fx->engine, uuid, &error);
	g_autoptr(X509) leaf = NULL;
	g_autofree char *leaf_serial = NULL;

	g_assert_no_error(error);
	g_assert_nonnull(chain);
	leaf = vc_cert_from_pem(chain, strlen(chain), &error);
	g_assert_no_error(error);
	leaf_serial = vc_cert_get_serial_hex(leaf);
	g_assert_cmpstr(leaf_serial, ==, serial);
	g_assert_true(vc_ca_verify_leaf(fx->tca->ca, leaf, 0, &error));
	g_assert_no_error(error);
	g_assert_cmpint(X509_check_host(leaf, dns, 0, 0, NULL), ==, 1);
}

/* ---- tests -------------------------------------------------------------- */

static void
test_lifecycle(Fixture *fx, gconstpointer data)
{
	const char *uuid = "7a1c0f5e-1d2b-4c3a-8e4f-000000000001";
	g_autofree char *s1 = NULL;
	g_autofree char *s2 = NULL;
	g_autoptr(JsonNode) node = NULL;
	JsonArray *certs;
	JsonObject *cert;

	/* define + start: issued (no agent channel: nothing to deliver) */
	define_and_start(fx, "t-life", uuid, NULL);
	s1 = wait_issued(fx, uuid);
	node = show(fx, "t-life");
	g_assert_nonnull(node);
	g_assert_cmpstr(json_object_get_string_member(show_domain(node), "uuid"), ==, uuid);
	g_assert_cmpint(json_object_get_int_member(show_domain(node), "generation"), ==, 1);
	g_assert_cmpstr(json_object_get_string_member(show_domain(node), "names"), ==,
			"t-life.vms.example.com");
	certs = json_object_get_array_member(json_node_get_object(node), "certificates");
	g_assert_cmpuint(json_array_get_length(certs), ==, 1);
	cert = json_array_get_object_element(certs, 0);
	g_assert_cmpstr(json_object_get_string_member(cert, "serial"), ==, s1);
	g_assert_cmpstr(json_object_get_string_member(cert, "status"), ==, "valid");
	assert_chain_serves(fx, uuid, s1, "t-life.vms.example.com");
	g_assert_true(has_note(fx, "issued", uuid, "t-life.vms.example.com"));
	vc_test_spin(50);
	wait_state(fx, uuid, "ISSUED"); /* no delivery was attempted */

	/* stop: the certificate is kept */
	domain_do(fx, uuid, virDomainDestroy);
	wait_state(fx, uuid, "STOPPED");
	{
		g_autofree char *cur = row_string(fx, uuid, "current_serial");
		g_assert_cmpstr(cur, ==, s1);
	}
	assert_cert(fx, s1, VC_CERT_STATUS_VALID, -1);

	/* started again: the kept certificate serves, nothing new is issued */
	domain_do(fx, uuid, virDomainCreate);
	wait_state(fx, uuid, "ISSUED");
	{
		g_autofree char *cur = row_string(fx, uuid, "current_serial");
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) all = vc_store_cert_list(fx->store, uuid, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(cur, ==, s1);
		g_assert_cmpuint(all->len, ==, 1);
	}
	domain_do(fx, uuid, virDomainDestroy);
	wait_state(fx, uuid, "STOPPED");

	/* undefine: the end of this life */
	domain_do(fx, uuid, virDomainUndefine);
	wait_state(fx, uuid, "REVOKED");
	assert_cert(fx, s1, VC_CERT_STATUS_REVOKED, VC_REASON_CESSATION_OF_OPERATION);
	{
		g_autoptr(VcDomainRecord) row = store_row(fx, uuid);
		g_assert_cmpstr(row->state, ==, "REVOKED");
		g_assert_null(row->current_serial);
	}
	g_assert_true(has_note(fx, "revoked", uuid, "undefined"));
	{
		g_autoptr(GError) error = NULL;
		g_autofree char *chain = vc_engine_get_cert_chain(fx->engine, uuid, &error);
		g_assert_null(chain);
		g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	}

	/* the same UUID defined again: a new generation, a new certificate */
	define_and_start(fx, "t-life", uuid, NULL);
	{
		WantState w = {.vm = uuid, .state = "ISSUED", .generation = 2, .not_serial = s1};
		g_assert_true(vc_test_wait_until(cond_state, fx, &w, WAIT_MS));
	}
	s2 = row_string(fx, uuid, "current_serial");
	g_assert_cmpstr(s2, !=, s1);
	assert_cert(fx, s2, VC_CERT_STATUS_VALID, -1);
	assert_cert(fx, s1, VC_CERT_STATUS_REVOKED, VC_REASON_CESSATION_OF_OPERATION);
	{
		g_autoptr(VcDomainRecord) row = store_row(fx, uuid);
		g_assert_cmpint(row->generation, ==, 2);
		g_assert_cmpstr(row->current_serial, ==, s2);
	}

	/* what /metrics says about this life: two issuances (neither replaced a
	 * current certificate), each timed, one revocation by its reason, the
	 * state table complete */
	{
		VcMetrics *m = vc_engine_get_metrics_registry(fx->engine);
		g_autofree char *text = vc_engine_get_metrics(fx->engine);
		g_assert_nonnull(strstr(text, "\nvirtcert_certificates_issued_total 2\n"));
		g_assert_nonnull(strstr(text, "\nvirtcert_certificates_renewed_total 0\n"));
		g_assert_nonnull(strstr(text, "\nvirtcert_issue_latency_seconds_count 2\n"));
		g_assert_nonnull(strstr(
		    text,
		    "\nvirtcert_certificates_revoked_total{reason=\"cessationOfOperation\"} 1\n"));
		g_assert_nonnull(strstr(
		    text, "\nvirtcert_certificates_revoked_total{reason=\"keyCompromise\"} 0\n"));
		g_assert_nonnull(strstr(text, "virtcert_domains{state=\"ISSUED\"} 1\n"));
		g_assert_nonnull(strstr(text, "virtcert_domains{state=\"MIGRATING_OUT\"} 0\n"));
		g_assert_nonnull(strstr(text, "\nvirtcert_vm_certificate_expiry_seconds "));
		g_assert_cmpfloat(
		    vc_metric_get(
			vc_metrics_add_counter(m, "virtcert_certificates_issued_total", NULL, NULL),
			NULL),
		    ==, 2);
	}
}

static void
test_transient(Fixture *fx, gconstpointer data)
{
	const char *uuid = "7a1c0f5e-1d2b-4c3a-8e4f-000000000002";
	g_autofree char *xml =
	    g_strdup_printf("<domain type='test'><name>t-trans</name><uuid>%s</uuid>"
			    "<memory>8192</memory><os><type>hvm</type></os></domain>",
			    uuid);
	g_autofree char *serial = NULL;
	virDomainPtr dom;

	/* virsh create: no DEFINED, and its stop is the end of its life */
	dom = virDomainCreateXML(fx->conn, xml, 0);
	g_assert_nonnull(dom);
	serial = wait_issued(fx, uuid);
	g_assert_cmpint(virDomainDestroy(dom), ==, 0);
	virDomainFree(dom);
	wait_state(fx, uuid, "REVOKED");
	assert_cert(fx, serial, VC_CERT_STATUS_REVOKED, VC_REASON_CESSATION_OF_OPERATION);
}

static void
test_rename_stopped(Fixture *fx, gconstpointer data)
{
	const char *uuid = "7a1c0f5e-1d2b-4c3a-8e4f-000000000003";
	g_autofree char *serial = NULL;
	g_autofree char *s2 = NULL;
	g_autoptr(VcCertRecord) rec = NULL;
	virDomainPtr dom;

	define_and_start(fx, "t-old", uuid, NULL);
	serial = wait_issued(fx, uuid);
	domain_do(fx, uuid, virDomainDestroy);
	wait_state(fx, uuid, "STOPPED");

	/* names derived from the old name go at once; the new name's
	 * certificate comes with the next start */
	dom = virDomainLookupByUUIDString(fx->conn, uuid);
	g_assert_nonnull(dom);
	g_assert_cmpint(virDomainRename(dom, "t-new", 0), ==, 0);
	virDomainFree(dom);
	{
		WantCert w = {serial, VC_CERT_STATUS_REVOKED};
		g_assert_true(vc_test_wait_until(cond_cert, fx, &w, WAIT_MS));
	}
	assert_cert(fx, serial, VC_CERT_STATUS_REVOKED, VC_REASON_SUPERSEDED);
	wait_state(fx, uuid, "STOPPED");

	domain_do(fx, uuid, virDomainCreate);
	s2 = wait_issued(fx, "t-new");
	rec = cert_get(fx, s2);
	g_assert_cmpstr(rec->dns_names[0], ==, "t-new.vms.example.com");
	g_assert_cmpint(row_generation(fx, uuid), ==, 1);
}

static void
test_no_policy(Fixture *fx, gconstpointer data)
{
	const char *other = "7a1c0f5e-1d2b-4c3a-8e4f-000000000011";
	const char *marker = "7a1c0f5e-1d2b-4c3a-8e4f-000000000012";
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) certs = NULL;
	g_autofree char *serial = NULL;

	define_and_start(fx, "other-1", other, NULL);
	/* events arrive in order: once the marker is issued, other-1's were handled */
	define_and_start(fx, "t-marker", marker, NULL);
	serial = wait_issued(fx, marker);

	/* show says why it has none: libvirt knows it, no policy selects it */
	{
		g_autoptr(JsonNode) shown = vc_engine_show(fx->engine, "other-1", &error);
		JsonObject *o;
		g_assert_no_error(error);
		o = json_node_get_object(shown);
		g_assert_cmpstr(json_object_get_string_member(
				    json_object_get_object_member(o, "domain"), "state"),
				==, "unmanaged");
		g_assert_cmpuint(
		    json_array_get_length(json_object_get_array_member(o, "certificates")), ==, 0);
		g_assert_true(g_str_has_prefix(json_object_get_string_member(o, "why"),
					       "no policy selects it"));
	}
	g_assert_null(vc_engine_show(fx->engine, "no-such-vm", &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_null(vc_store_domain_get(fx->store, other, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	g_clear_error(&error);
	certs = vc_store_cert_list(fx->store, other, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(certs->len, ==, 0);
}

static void
test_metadata_policy(Fixture *fx, gconstpointer data)
{
	const char *uuid = "7a1c0f5e-1d2b-4c3a-8e4f-000000000021";
	g_autofree char *serial = NULL;
	g_autoptr(VcCertRecord) rec = NULL;

	/* no policy.d group matches "meta-1": its own metadata selects it */
	define_and_start(fx, "meta-1", uuid,
			 "<vc:vm xmlns:vc='" NS "'>"
			 "<vc:name>{name}.vms.example.com</vc:name>"
			 "<vc:name>meta.vms.example.com</vc:name>"
			 "<vc:lifetime>2h</vc:lifetime>"
			 "</vc:vm>");
	serial = wait_issued(fx, uuid);
	rec = cert_get(fx, serial);
	g_assert_cmpstr(rec->vm_uuid, ==, uuid);
	g_assert_cmpuint(g_strv_length(rec->dns_names), ==, 2);
	g_assert_cmpstr(rec->dns_names[0], ==, "meta-1.vms.example.com");
	g_assert_cmpstr(rec->dns_names[1], ==, "meta.vms.example.com");
	g_assert_cmpint(rec->not_after - rec->not_before, ==, 2 * 3600 + fx->config->backdate_s);
	assert_chain_serves(fx, uuid, serial, "meta.vms.example.com");

	/* the owner changes the names of the running VM: a certificate with the
	 * new names, the old one superseded (no guest to deliver to first) */
	{
		virDomainPtr dom = virDomainLookupByUUIDString(fx->conn, uuid);
		g_autofree char *s2 = NULL;
		g_autoptr(VcCertRecord) rec2 = NULL;
		WantState w = {.vm = uuid, .state = "ISSUED", .not_serial = serial};
		g_assert_nonnull(dom);
		g_assert_cmpint(
		    virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
					 "<vm><name>moved.vms.example.com</name></vm>", "vc", NS,
					 VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG),
		    ==, 0);
		virDomainFree(dom);
		g_assert_true(vc_test_wait_until(cond_state, fx, &w, WAIT_MS));
		s2 = row_string(fx, uuid, "current_serial");
		rec2 = cert_get(fx, s2);
		g_assert_cmpuint(g_strv_length(rec2->dns_names), ==, 1);
		g_assert_cmpstr(rec2->dns_names[0], ==, "moved.vms.example.com");
		{
			WantCert wc = {serial, VC_CERT_STATUS_REVOKED};
			g_assert_true(vc_test_wait_until(cond_cert, fx, &wc, WAIT_MS));
		}
		assert_cert(fx, serial, VC_CERT_STATUS_REVOKED, VC_REASON_SUPERSEDED);
	}
}

/* A policy change that changes what the certificate should be, not only its
 * names (here the lifetime), re-issues at once rather than at the next
 * renewal. */
static void
test_profile_change(Fixture *fx, gconstpointer data)
{
	const char *uuid = "7a1c0f5e-1d2b-4c3a-8e4f-000000000022";
	g_autofree char *serial = NULL;
	g_autofree char *s2 = NULL;
	g_autoptr(VcCertRecord) rec2 = NULL;
	WantState w = {.vm = uuid, .state = "ISSUED"};
	virDomainPtr dom;

	define_and_start(fx, "meta-2", uuid,
			 "<vc:vm xmlns:vc='" NS "'><vc:name>{name}.vms.example.com</vc:name>"
			 "<vc:lifetime>2h</vc:lifetime></vc:vm>");
	serial = wait_issued(fx, uuid);
	w.not_serial = serial;
	dom = virDomainLookupByUUIDString(fx->conn, uuid);
	g_assert_nonnull(dom);
	g_assert_cmpint(virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
					     "<vm><name>{name}.vms.example.com</name>"
					     "<lifetime>3h</lifetime></vm>",
					     "vc", NS,
					     VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG),
			==, 0);
	virDomainFree(dom);
	g_assert_true(vc_test_wait_until(cond_state, fx, &w, WAIT_MS));
	s2 = row_string(fx, uuid, "current_serial");
	rec2 = cert_get(fx, s2);
	g_assert_cmpint(rec2->not_after - rec2->not_before, ==, 3 * 3600 + fx->config->backdate_s);
	{
		WantCert wc = {serial, VC_CERT_STATUS_REVOKED};
		g_assert_true(vc_test_wait_until(cond_cert, fx, &wc, WAIT_MS));
	}
	assert_cert(fx, serial, VC_CERT_STATUS_REVOKED, VC_REASON_SUPERSEDED);
}

static void
test_reconcile(Fixture *fx, gconstpointer data)
{
	const char *gone = "7a1c0f5e-1d2b-4c3a-8e4f-000000000031";
	const char *keep = "7a1c0f5e-1d2b-4c3a-8e4f-000000000032";
	const char *new1 = "7a1c0f5e-1d2b-4c3a-8e4f-000000000033";
	const char *new2 = "7a1c0f5e-1d2b-4c3a-8e4f-000000000034";
	const char *idle = "7a1c0f5e-1d2b-4c3a-8e4f-000000000035";
	g_autofree char *s_gone = NULL;
	g_autofree char *s_keep = NULL;
	g_autofree char *s_new1 = NULL;
	g_autofree char *s_new2 = NULL;

	/* domains defined and started while no engine watches */
	define_and_start(fx, "t-gone", gone, NULL);
	define_and_start(fx, "t-keep", keep, NULL);
	fx_start_engine(fx);
	s_gone = wait_issued(fx, gone);
	s_keep = wait_issued(fx, keep);

	/* the daemon stops; meanwhile one VM goes, others come */
	fx_stop_engine(fx);
	domain_do(fx, gone, virDomainDestroy);
	domain_do(fx, gone, virDomainUndefine);
	define_and_start(fx, "t-new1", new1, NULL);
	define_and_start(fx, "t-new2", new2, NULL);
	define_domain(fx, "t-idle", idle, NULL);

	g_ptr_array_set_size(fx->notes, 0);
	fx_start_engine(fx);
	s_new1 = wait_issued(fx, new1);
	s_new2 = wait_issued(fx, new2);
	wait_state(fx, gone, "REVOKED");
	assert_cert(fx, s_gone, VC_CERT_STATUS_REVOKED, VC_REASON_CESSATION_OF_OPERATION);
	g_assert_true(has_note(fx, "revoked", gone, "vanished"));
	{
		g_autoptr(VcDomainRecord) row = store_row(fx, gone);
		g_assert_cmpstr(row->state, ==, "REVOKED");
	}
	/* a defined, never started VM waits for its start */
	wait_state(fx, idle, "STOPPED");
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) certs = vc_store_cert_list(fx->store, idle, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(certs->len, ==, 0);
	}
	/* what still runs keeps its certificate across the restart */
	wait_state(fx, keep, "ISSUED");
	{
		g_autofree char *cur = row_string(fx, keep, "current_serial");
		g_assert_cmpstr(cur, ==, s_keep);
	}
	assert_cert(fx, s_keep, VC_CERT_STATUS_VALID, -1);
	g_assert_false(has_note(fx, "issued", keep, ""));

	/* and the start of the idle one, now watched, issues */
	domain_do(fx, idle, virDomainCreate);
	g_free(wait_issued(fx, idle));
}

/* The store (not only the engine's cache) holds VM in state STOPPED. */
static gboolean
cond_store_state(gpointer user_data, gconstpointer data)
{
	Fixture *fx = user_data;
	g_autoptr(VcDomainRecord) row = vc_store_domain_get(fx->store, data, NULL);
	return row != NULL && g_strcmp0(row->state, "STOPPED") == 0;
}

/* Found by scripts/crash-storm: a VM that vanished holding no certificate
 * (nothing to revoke) and another VM's issuance decided in the same round
 * share one commit, the issuance batch's; the first stayed REVOKING (in
 * the store too) until the next restart. */
static void
test_vanished_with_issuance(Fixture *fx, gconstpointer data)
{
	const char *idle = "7a1c0f5e-1d2b-4c3a-8e4f-000000000036";
	const char *fresh = "7a1c0f5e-1d2b-4c3a-8e4f-000000000037";

	define_domain(fx, "t-idle", idle, NULL);
	fx_start_engine(fx);
	wait_state(fx, idle, "STOPPED");
	g_assert_true(vc_test_wait_until(cond_store_state, fx, idle, WAIT_MS));

	/* while no engine watches: the certificate-less VM goes, another starts */
	fx_stop_engine(fx);
	domain_do(fx, idle, virDomainUndefine);
	define_and_start(fx, "t-fresh", fresh, NULL);
	fx_start_engine(fx);
	g_free(wait_issued(fx, fresh));
	wait_state(fx, idle, "REVOKED");
	{
		g_autoptr(VcDomainRecord) row = store_row(fx, idle);
		g_assert_cmpstr(row->state, ==, "REVOKED");
	}
	g_assert_cmpuint(vc_engine_get_queue_length(fx->engine), ==, 0);
}

static void
test_manual_revoke(Fixture *fx, gconstpointer data)
{
	const char *uuid = "7a1c0f5e-1d2b-4c3a-8e4f-000000000041";
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) reply = NULL;
	g_autofree char *s1 = NULL;
	g_autofree char *s2 = NULL;
	g_autofree char *s3 = NULL;
	g_autofree char *upper = NULL;
	JsonArray *revoked;

	define_and_start(fx, "t-man", uuid, NULL);
	s1 = wait_issued(fx, uuid);

	/* by name: durable when the reply comes, then a new certificate */
	reply = vc_engine_revoke(fx->engine, "t-man", VC_REASON_KEY_COMPROMISE, &error);
	g_assert_no_error(error);
	g_assert_nonnull(reply);
	revoked = json_object_get_array_member(json_node_get_object(reply), "revoked");
	g_assert_cmpuint(json_array_get_length(revoked), ==, 1);
	g_assert_cmpstr(json_array_get_string_element(revoked, 0), ==, s1);
	assert_cert(fx, s1, VC_CERT_STATUS_REVOKED, VC_REASON_KEY_COMPROMISE);
	{
		WantState w = {.vm = uuid, .state = "ISSUED", .not_serial = s1, .generation = 1};
		g_assert_true(vc_test_wait_until(cond_state, fx, &w, WAIT_MS));
	}
	s2 = row_string(fx, uuid, "current_serial");
	assert_cert(fx, s2, VC_CERT_STATUS_VALID, -1);
	assert_chain_serves(fx, uuid, s2, "t-man.vms.example.com");

	/* by serial (any case): the same */
	g_clear_pointer(&reply, json_node_unref);
	upper = g_ascii_strup(s2, -1);
	reply = vc_engine_revoke(fx->engine, upper, VC_REASON_SUPERSEDED, &error);
	g_assert_no_error(error);
	assert_cert(fx, s2, VC_CERT_STATUS_REVOKED, VC_REASON_SUPERSEDED);
	{
		WantState w = {.vm = uuid, .state = "ISSUED", .not_serial = s2};
		g_assert_true(vc_test_wait_until(cond_state, fx, &w, WAIT_MS));
	}
	s3 = row_string(fx, uuid, "current_serial");
	g_assert_cmpstr(s3, !=, s1);
	assert_cert(fx, s3, VC_CERT_STATUS_VALID, -1);

	/* neither a VM nor a serial it knows */
	g_clear_pointer(&reply, json_node_unref);
	reply = vc_engine_revoke(fx->engine, "deadbeef", VC_REASON_SUPERSEDED, &error);
	g_assert_null(reply);
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	assert_cert(fx, s3, VC_CERT_STATUS_VALID, -1);
}

static VcHostIdentity *
claimant(const char *site)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcHostIdentity) id = vc_host_identity_new();
	g_assert_true(vc_host_identity_add_attribute(id, "site", site, &error));
	g_assert_no_error(error);
	return g_steal_pointer(&id);
}

/* host certificates the peers present (only their fingerprints count here) */
#define FP_H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define FP_H3 "3333333333333333333333333333333333333333333333333333333333333333"

/* What libvirt says on the source once a live migration completed: the VM
 * stopped here because it now runs elsewhere (the test driver cannot
 * migrate; the VM is destroyed first, then the event is the migration's). */
static void
migrate_away(Fixture *fx, const char *uuid, const char *name)
{
	VcVirtEvent ev = {
	    .uuid = uuid,
	    .name = name,
	    .kind = VC_VIRT_EVENT_STOPPED,
	    .detail = VIR_DOMAIN_EVENT_STOPPED_MIGRATED,
	    .detail_str = "migrated",
	    .is_migration = TRUE,
	};

	domain_do(fx, uuid, virDomainDestroy);
	wait_state(fx, uuid, "STOPPED");
	vc_engine_handle_event(fx->engine, &ev);
	wait_state(fx, uuid, "MIGRATING_OUT");
}

/* A refused claim (or announcement): RET_REASON holds WANT, and nothing
 * changed: SERIAL still valid, the VM still in STATE. */
static void
assert_refused(Fixture *fx, gboolean ok, char *reason, const char *want, const char *uuid,
	       const char *serial, const char *state)
{
	g_assert_false(ok);
	g_assert_nonnull(reason);
	if (strstr(reason, want) == NULL)
		g_error("reason \"%s\" lacks \"%s\"", reason, want);
	g_free(reason);
	vc_test_spin(30);
	assert_cert(fx, serial, VC_CERT_STATUS_VALID, -1);
	wait_state(fx, uuid, state);
}

static void
test_claim_still_runs(Fixture *fx, gconstpointer data)
{
	const char *uuid = "7a1c0f5e-1d2b-4c3a-8e4f-000000000051";
	g_autoptr(VcHostIdentity) id = claimant("eu-west");
	VcEnginePeer peer = {"h2.example.com", FP_H2, id};
	g_autofree char *serial = NULL;
	char *reason = NULL;
	gboolean ok;

	define_and_start(fx, "t-run", uuid, NULL);
	serial = wait_issued(fx, uuid);
	ok = vc_engine_handle_announce(fx->engine, uuid, serial, &peer, &reason);
	g_assert_true(ok);
	g_clear_pointer(&reason, g_free);
	/* announced, but the VM still runs here: refused, nothing revoked; the
	 * caller may ask again (libvirt may not have told us yet) */
	{
		gboolean not_yet = FALSE;
		ok = vc_engine_handle_claim(fx->engine, uuid, serial, &peer, &not_yet, &reason);
		g_assert_true(not_yet);
		assert_refused(fx, ok, reason, "still runs", uuid, serial, "ISSUED");
	}

	/* a VM this host never issued for */
	reason = NULL;
	g_assert_false(vc_engine_handle_claim(fx->engine, "7a1c0f5e-1d2b-4c3a-8e4f-0000000000ff",
					      serial, &peer, NULL, &reason));
	g_assert_nonnull(strstr(reason, "no certificate"));
	g_clear_pointer(&reason, g_free);
	g_assert_false(vc_engine_handle_announce(fx->engine, "7a1c0f5e-1d2b-4c3a-8e4f-0000000000ff",
						 serial, &peer, &reason));
	g_assert_nonnull(strstr(reason, "no certificate"));
	g_clear_pointer(&reason, g_free);

	/* stopped, not migrated: no announcement now, and no claim */
	domain_do(fx, uuid, virDomainDestroy);
	wait_state(fx, uuid, "STOPPED");
	ok = vc_engine_handle_announce(fx->engine, uuid, serial, &peer, &reason);
	assert_refused(fx, ok, reason, "does not run on this host", uuid, serial, "STOPPED");
	reason = NULL;
	ok = vc_engine_handle_claim(fx->engine, uuid, serial, &peer, NULL, &reason);
	assert_refused(fx, ok, reason, "has not migrated away", uuid, serial, "STOPPED");
}

static void
test_claim_unannounced(Fixture *fx, gconstpointer data)
{
	const char *uuid = "7a1c0f5e-1d2b-4c3a-8e4f-000000000052";
	g_autoptr(VcHostIdentity) id = claimant("eu-west");
	VcEnginePeer peer = {"h2.example.com", FP_H2, id};
	g_autofree char *serial = NULL;
	char *reason = NULL;
	gboolean ok;

	/* the report: a host certificate and curl, for a VM that did migrate */
	define_and_start(fx, "t-unann", uuid, NULL);
	serial = wait_issued(fx, uuid);
	migrate_away(fx, uuid, "t-unann");
	ok = vc_engine_handle_claim(fx->engine, uuid, "00", &peer, NULL, &reason);
	assert_refused(fx, ok, reason, "names certificate 00", uuid, serial, "MIGRATING_OUT");
	reason = NULL;
	{
		gboolean not_yet = TRUE;
		ok = vc_engine_handle_claim(fx->engine, uuid, serial, &peer, &not_yet, &reason);
		g_assert_false(not_yet); /* nothing to wait for */
		assert_refused(fx, ok, reason, "was announced", uuid, serial, "MIGRATING_OUT");
	}
	/* and announcing once the VM left is too late */
	reason = NULL;
	ok = vc_engine_handle_announce(fx->engine, uuid, serial, &peer, &reason);
	assert_refused(fx, ok, reason, "already migrated away", uuid, serial, "MIGRATING_OUT");
	reason = NULL;
	ok = vc_engine_handle_claim(fx->engine, uuid, serial, &peer, NULL, &reason);
	assert_refused(fx, ok, reason, "was announced", uuid, serial, "MIGRATING_OUT");
}

#define EU_WEST_ONLY                                                                               \
	"<vc:vm xmlns:vc='" NS "'><vc:placement>"                                                  \
	"<vc:require attr='site'>eu-west</vc:require>"                                             \
	"</vc:placement></vc:vm>"

static void
test_placement_no_host_cert(Fixture *fx, gconstpointer data)
{
	const char *uuid = "7a1c0f5e-1d2b-4c3a-8e4f-000000000061";
	g_autofree char *err = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) certs = NULL;

	/* the owner restricts placement and this host cannot prove where it is */
	expect_warning("VM t-eu: refused on this host: placement: *");
	define_and_start(fx, "t-eu", uuid, EU_WEST_ONLY);
	wait_state(fx, uuid, "FAILED");
	g_assert_true(warning_seen("*no host certificate*"));
	err = row_string(fx, uuid, "last_error");
	g_assert_nonnull(strstr(err, "placement"));
	g_assert_nonnull(strstr(err, "no host certificate"));
	certs = vc_store_cert_list(fx->store, uuid, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(certs->len, ==, 0);
}

static void
test_placement_refused(Fixture *fx, gconstpointer data)
{
	const char *uuid = "7a1c0f5e-1d2b-4c3a-8e4f-000000000071";
	const char *marker = "7a1c0f5e-1d2b-4c3a-8e4f-000000000072";
	g_autofree char *err = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) certs = NULL;

	/* this host is site=eu-west; the VM requires us-east */
	expect_warning("VM t-us: refused on this host: placement: *");
	define_and_start(fx, "t-us", uuid,
			 "<vc:vm xmlns:vc='" NS "'><vc:placement>"
			 "<vc:require attr='site'>us-east</vc:require>"
			 "</vc:placement></vc:vm>");
	wait_state(fx, uuid, "FAILED");
	err = row_string(fx, uuid, "last_error");
	g_assert_nonnull(strstr(err, "placement"));
	g_assert_nonnull(strstr(err, "us-east"));
	/* an unrestricted VM on the same host is fine */
	define_and_start(fx, "t-free", marker, NULL);
	g_free(wait_issued(fx, marker));
	certs = vc_store_cert_list(fx->store, uuid, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(certs->len, ==, 0);
	{
		g_autoptr(VcDomainRecord) row = store_row(fx, uuid);
		g_assert_cmpstr(row->state, ==, "FAILED");
		g_assert_null(row->current_serial);
	}
}

static void
test_claim_outside_placement(Fixture *fx, gconstpointer data)
{
	const char *uuid = "7a1c0f5e-1d2b-4c3a-8e4f-000000000081";
	g_autoptr(VcHostIdentity) id = claimant("us-east");
	VcEnginePeer peer = {"h9.example.com", FP_H3, id};
	g_autofree char *serial = NULL;
	char *reason = NULL;
	gboolean ok;

	define_and_start(fx, "t-eu1", uuid, EU_WEST_ONLY);
	serial = wait_issued(fx, uuid);
	/* a host outside the placement cannot announce ... */
	ok = vc_engine_handle_announce(fx->engine, uuid, serial, &peer, &reason);
	assert_refused(fx, ok, reason, "site=us-east not in {eu-west}", uuid, serial, "ISSUED");
	migrate_away(fx, uuid, "t-eu1");
	/* ... nor claim: refused, and the claim itself changes nothing; the
	 * grace period ends the certificate (privilegeWithdrawn) */
	reason = NULL;
	ok = vc_engine_handle_claim(fx->engine, uuid, serial, &peer, NULL, &reason);
	assert_refused(fx, ok, reason, "outside the placement", uuid, serial, "MIGRATING_OUT");
}

static void
test_claim_accepted(Fixture *fx, gconstpointer data)
{
	const char *uuid = "7a1c0f5e-1d2b-4c3a-8e4f-000000000091";
	g_autoptr(VcHostIdentity) id = claimant("eu-west");
	VcEnginePeer peer = {"h2.example.com", FP_H2, id};
	VcEnginePeer other = {"h3.example.com", FP_H3, id};
	g_autofree char *serial = NULL;
	char *reason = NULL;
	gboolean ok;

	define_and_start(fx, "t-eu2", uuid, EU_WEST_ONLY);
	serial = wait_issued(fx, uuid);
	/* the destination's hook announces the migration before memory moves */
	g_assert_true(vc_engine_handle_announce(fx->engine, uuid, serial, &peer, &reason));
	g_assert_nonnull(strstr(reason, "h2.example.com"));
	g_clear_pointer(&reason, g_free);
	g_assert_true(has_note(fx, "migration-announced", uuid, "h2.example.com"));
	migrate_away(fx, uuid, "t-eu2");

	/* another host certificate, even inside the placement: refused */
	ok = vc_engine_handle_claim(fx->engine, uuid, serial, &other, NULL, &reason);
	assert_refused(fx, ok, reason, "announced by another host certificate", uuid, serial,
		       "MIGRATING_OUT");
	/* the announced host, naming another serial: refused */
	reason = NULL;
	ok = vc_engine_handle_claim(fx->engine, uuid, "0a", &peer, NULL, &reason);
	assert_refused(fx, ok, reason, "names certificate 0a", uuid, serial, "MIGRATING_OUT");

	/* the announced host, our serial (any case): handed over */
	{
		g_autofree char *upper = g_ascii_strup(serial, -1);
		reason = NULL;
		g_assert_true(
		    vc_engine_handle_claim(fx->engine, uuid, upper, &peer, NULL, &reason));
		g_assert_nonnull(reason);
		g_clear_pointer(&reason, g_free);
	}
	{
		WantCert w = {serial, VC_CERT_STATUS_REVOKED};
		g_assert_true(vc_test_wait_until(cond_cert, fx, &w, WAIT_MS));
	}
	/* superseded by the destination's certificate, not withdrawn */
	assert_cert(fx, serial, VC_CERT_STATUS_REVOKED, VC_REASON_SUPERSEDED);
	wait_state(fx, uuid, "HANDED_OVER");
	g_assert_true(has_note(fx, "handed-over", uuid, "h2.example.com"));
	vc_test_spin(50);
	{
		g_autoptr(VcDomainRecord) row = store_row(fx, uuid);
		g_assert_cmpstr(row->state, ==, "HANDED_OVER");
		g_assert_null(row->current_serial);
	}
	/* a second claim finds nothing left to hand over */
	g_assert_false(vc_engine_handle_claim(fx->engine, uuid, serial, &peer, NULL, &reason));
	g_clear_pointer(&reason, g_free);
}

static void
test_claim_recorded_placement(Fixture *fx, gconstpointer data)
{
	const char *uuid = "7a1c0f5e-1d2b-4c3a-8e4f-000000000093";
	g_autoptr(VcHostIdentity) id = claimant("us-east");
	VcEnginePeer peer = {"h9.example.com", FP_H3, id};
	g_autofree char *serial = NULL;
	g_autofree char *serial2 = NULL;
	g_autoptr(VcCertRecord) rec = NULL;
	char *reason = NULL;
	gboolean ok;

	define_and_start(fx, "t-eu3", uuid, EU_WEST_ONLY);
	serial = wait_issued(fx, uuid);
	rec = cert_get(fx, serial);
	g_assert_cmpstr(rec->placement, ==, "require=site=eu-west\n");
	/* whoever can edit the metadata drops the placement while it runs */
	{
		virDomainPtr dom = virDomainLookupByUUIDString(fx->conn, uuid);
		g_assert_nonnull(dom);
		g_assert_cmpint(
		    virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
					 "<vm><lifetime>24h</lifetime></vm>", "vc", NS,
					 VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG),
		    ==, 0);
		virDomainFree(dom);
	}
	vc_test_spin(100);
	serial2 = row_string(fx, uuid, "current_serial");
	g_assert_cmpstr(serial2, ==, serial);
	/* the certificate was issued under eu-west: that is what counts */
	ok = vc_engine_handle_announce(fx->engine, uuid, serial, &peer, &reason);
	assert_refused(fx, ok, reason, "issued under: host attribute site=us-east", uuid, serial,
		       "ISSUED");
}

/* ---- the destination's claim against a faulty issuer -------------------- */

/* A fake issuer on 127.0.0.1 with a host certificate for "localhost" from
 * the trusted host CA: each connection is answered as the next of MODES
 * says, the last one for every later connection. */
typedef enum {
	PEER_CLOSE,   /* accept, then close before TLS */
	PEER_GARBAGE, /* TLS, read the request, answer 200 with JSON of the wrong shape */
	PEER_HANG,    /* TLS, read the request, never answer */
	PEER_ACCEPT,  /* TLS, read the request, {"accepted": true} */
} PeerMode;

typedef struct {
	GSocketListener *listener;
	GCancellable *cancel;
	GTlsCertificate *cert;
	guint16 port;
	const PeerMode *modes;
	guint n_modes;
	GMutex lock;
	GArray *at_us; /* monotonic time of each connection */
	GThread *thread;
} FakePeer;

static void
fake_peer_read_request(GIOStream *io, GCancellable *cancel)
{
	GInputStream *in = g_io_stream_get_input_stream(io);
	g_autoptr(GString) req = g_string_new(NULL);
	char buf[1024];
	gssize n;
	const char *body;

	/* headers, then the Content-Length octets of the body */
	while ((n = g_input_stream_read(in, buf, sizeof(buf), cancel, NULL)) > 0) {
		g_string_append_len(req, buf, n);
		body = strstr(req->str, "\r\n\r\n");
		if (body != NULL) {
			const char *cl = strstr(req->str, "Content-Length: ");
			gsize want = cl != NULL ? (gsize)g_ascii_strtoull(cl + 16, NULL, 10) : 0;
			if (req->len - (gsize)(body + 4 - req->str) >= want)
				return;
		}
	}
}

static gpointer
fake_peer_thread(gpointer data)
{
	FakePeer *fp = data;

	for (guint i = 0;; i++) {
		g_autoptr(GSocketConnection) conn =
		    g_socket_listener_accept(fp->listener, NULL, fp->cancel, NULL);
		g_autoptr(GIOStream) tls = NULL;
		PeerMode mode = fp->modes[MIN(i, fp->n_modes - 1)];
		gint64 now = g_get_monotonic_time();

		if (conn == NULL)
			return NULL;
		g_mutex_lock(&fp->lock);
		g_array_append_val(fp->at_us, now);
		g_mutex_unlock(&fp->lock);
		if (mode == PEER_CLOSE)
			continue;
		tls = g_tls_server_connection_new(G_IO_STREAM(conn), fp->cert, NULL);
		g_assert_nonnull(tls);
		if (!g_tls_connection_handshake(G_TLS_CONNECTION(tls), fp->cancel, NULL))
			continue;
		fake_peer_read_request(tls, fp->cancel);
		if (mode == PEER_HANG) {
			/* until the client gives up and closes */
			char c;
			g_input_stream_read(g_io_stream_get_input_stream(tls), &c, 1, fp->cancel,
					    NULL);
			continue;
		}
		{
			const char *json =
			    mode == PEER_GARBAGE
				? "{\"accepted\": \"yes\", \"reason\": 7}"
				: "{\"accepted\": true, \"reason\": \"handed over\"}";
			g_autofree char *reply =
			    g_strdup_printf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
					    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
					    strlen(json), json);
			g_output_stream_write_all(g_io_stream_get_output_stream(tls), reply,
						  strlen(reply), NULL, fp->cancel, NULL);
			g_io_stream_close(tls, NULL, NULL);
		}
	}
}

static guint
fake_peer_connections(FakePeer *fp)
{
	guint n;
	g_mutex_lock(&fp->lock);
	n = fp->at_us->len;
	g_mutex_unlock(&fp->lock);
	return n;
}

/* A host certificate for "localhost" under the fixture's host CA. */
static GTlsCertificate *
fx_peer_certificate(Fixture *fx)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *hostca_dir = g_build_filename(fx->tca->dir, "hostca", NULL);
	g_autofree char *hostca_pem = g_build_filename(hostca_dir, "ca.pem", NULL);
	g_autofree char *dir = g_build_filename(fx->tca->dir, "peer", "host", NULL);
	g_autofree char *key = g_build_filename(dir, "host.key", NULL);
	g_autofree char *csr = g_build_filename(dir, "host.csr", NULL);
	g_autofree char *bundle = g_build_filename(dir, "ca.pem", NULL);
	g_autofree char *cert = g_build_filename(dir, "host.pem", NULL);
	const char *attrs[] = {"site=eu-central", NULL};
	GTlsCertificate *tls;

	g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
	g_assert_true(
	    vc_host_enroll(key, csr, "localhost", attrs, hostca_pem, bundle, FALSE, &error));
	g_assert_no_error(error);
	vc_test_host_ca_sign(hostca_dir, csr, vc_test_now_s() - 60, vc_test_now_s() + 3600, cert);
	tls = g_tls_certificate_new_from_files(cert, key, &error);
	g_assert_no_error(error);
	return tls;
}

static void
fake_peer_start(Fixture *fx, FakePeer *fp, const PeerMode *modes, guint n_modes)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) addr = g_inet_socket_address_new(lo, 0);
	g_autoptr(GSocketAddress) bound = NULL;

	fp->cert = fx_peer_certificate(fx);
	fp->modes = modes;
	fp->n_modes = n_modes;
	fp->cancel = g_cancellable_new();
	fp->at_us = g_array_new(FALSE, FALSE, sizeof(gint64));
	g_mutex_init(&fp->lock);
	fp->listener = g_socket_listener_new();
	g_assert_true(g_socket_listener_add_address(fp->listener, addr, G_SOCKET_TYPE_STREAM,
						    G_SOCKET_PROTOCOL_TCP, NULL, &bound, &error));
	g_assert_no_error(error);
	fp->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
	fp->thread = g_thread_new("fake-peer", fake_peer_thread, fp);
}

static void
fake_peer_stop(FakePeer *fp)
{
	g_cancellable_cancel(fp->cancel);
	g_thread_join(fp->thread);
	g_socket_listener_close(fp->listener);
	g_object_unref(fp->listener);
	g_object_unref(fp->cancel);
	g_object_unref(fp->cert);
	g_array_unref(fp->at_us);
	g_mutex_clear(&fp->lock);
}

typedef struct {
	const char *uuid;
	const char *part; /* in last_error; NULL: no last_error */
} WantError;

static gboolean
cond_last_error(gpointer user_data, gconstpointer data)
{
	Fixture *fx = user_data;
	const WantError *w = data;
	g_autofree char *err = row_string(fx, w->uuid, "last_error");
	return w->part == NULL ? err == NULL : err != NULL && strstr(err, w->part) != NULL;
}

static void
wait_last_error(Fixture *fx, const char *uuid, const char *part)
{
	WantError w = {uuid, part};
	if (!vc_test_wait_until(cond_last_error, fx, &w, 20000)) {
		g_autofree char *err = row_string(fx, uuid, "last_error");
		g_error("VM %s: last_error \"%s\", wanted \"%s\"", uuid, err, part);
	}
}

/* A VM migrated here: the issuer (named in its metadata) closes the
 * connection, answers garbage, then hangs; each claim fails, the VM's row
 * says why, the claim is tried again after 1, 2 and 4 s, nothing of ours
 * is revoked; the fourth try is accepted and the error goes. */
static void
test_claim_faults(Fixture *fx, gconstpointer data)
{
	static const PeerMode modes[] = {PEER_CLOSE, PEER_GARBAGE, PEER_HANG, PEER_ACCEPT};
	const char *uuid = "7a1c0f5e-1d2b-4c3a-8e4f-0000000000c1";
	const char *issuer_serial = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
	FakePeer fp = {0};
	g_autofree char *meta = NULL;
	g_autofree char *serial = NULL;
	VcVirtEvent ev = {
	    .uuid = uuid,
	    .name = "t-in",
	    .kind = VC_VIRT_EVENT_STARTED,
	    .detail = VIR_DOMAIN_EVENT_STARTED_MIGRATED,
	    .detail_str = "migrated",
	    .is_migration = TRUE,
	};

	fake_peer_start(fx, &fp, modes, G_N_ELEMENTS(modes));
	meta = g_strdup_printf("<vc:vm xmlns:vc='" NS "'><vc:issued serial='%s' "
			       "peer='https://localhost:%u'/></vc:vm>",
			       issuer_serial, fp.port);
	expect_warning("VM t-in: the claim to https://localhost:* failed: *");
	define_domain(fx, "t-in", uuid, meta);
	/* libvirt starts a domain migrating here with STARTED MIGRATED (the
	 * test driver cannot migrate: the event is the migration's) */
	vc_engine_handle_event(fx->engine, &ev);
	vc_test_spin(50);
	domain_do(fx, uuid, virDomainCreate);
	serial = wait_issued(fx, uuid);

	/* 1: closed before TLS */
	wait_last_error(fx, uuid, "(try 1)");
	wait_last_error(fx, uuid, "retrying in 1 s");
	/* 2: a reply of the wrong shape */
	wait_last_error(fx, uuid, "(try 2)");
	{
		g_autofree char *err = row_string(fx, uuid, "last_error");
		g_assert_nonnull(strstr(err, "\"accepted\" (a boolean)"));
		g_assert_nonnull(strstr(err, "retrying in 2 s"));
	}
	/* 3: no answer within the client's 10 s */
	wait_last_error(fx, uuid, "(try 3)");
	{
		g_autofree char *err = row_string(fx, uuid, "last_error");
		/* libsoup's own timeout or the client's, whichever comes first */
		if (strstr(err, "no answer within") == NULL && strstr(err, "timed out") == NULL)
			g_error("VM t-in: last_error \"%s\" says nothing of a timeout", err);
		g_assert_nonnull(strstr(err, "retrying in 4 s"));
	}
	/* what the row says is what the store holds (a restart finds it) */
	vc_test_spin(100);
	{
		g_autoptr(VcDomainRecord) row = store_row(fx, uuid);
		g_assert_nonnull(strstr(row->last_error, "(try 3)"));
	}
	/* nothing of ours revoked meanwhile, and the VM keeps its certificate */
	assert_cert(fx, serial, VC_CERT_STATUS_VALID, -1);
	wait_state(fx, uuid, "ISSUED");
	/* 4: accepted; the error goes */
	wait_last_error(fx, uuid, NULL);
	g_assert_true(has_note(fx, "handover-accepted", uuid, "handed over"));
	g_assert_cmpuint(fake_peer_connections(&fp), ==, 4);
	/* backoff: 1, 2 and 4 s between the tries (each counted from the end
	 * of the previous one, so the gaps between accepts are no shorter; 50 ms
	 * for clocks and scheduling) */
	{
		gint64 *at = (gint64 *)(void *)fp.at_us->data;
		g_assert_cmpint(at[1] - at[0], >=, 1 * G_USEC_PER_SEC - 50000);
		g_assert_cmpint(at[2] - at[1], >=, 2 * G_USEC_PER_SEC - 50000);
		g_assert_cmpint(at[3] - at[2], >=, 4 * G_USEC_PER_SEC - 50000);
	}
	assert_cert(fx, serial, VC_CERT_STATUS_VALID, -1);
	fake_peer_stop(&fp);
}

/* ---- store faults and the host certificate at the flush ----------------- */

#ifdef VC_TEST_SEAMS
static gboolean
cond_warning(gpointer user_data, gconstpointer data)
{
	return warning_seen(data);
}

static gboolean
cond_note(gpointer user_data, gconstpointer data)
{
	Fixture *fx = user_data;
	const char *const *w = data; /* event, uuid, part of the detail */
	return has_note(fx, w[0], w[1], w[2]);
}

typedef struct {
	const char *uuid;
	const char *serial;
} WantStoreRow;

/* the store's row (not the cache) names SERIAL */
static gboolean
cond_store_row(gpointer user_data, gconstpointer data)
{
	Fixture *fx = user_data;
	const WantStoreRow *w = data;
	g_autoptr(VcDomainRecord) row = store_row(fx, w->uuid);
	return g_strcmp0(row->current_serial, w->serial) == 0;
}

static gboolean
crl_lists(X509_CRL *crl, const char *serial_hex)
{
	STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED(crl);
	g_autoptr(BIGNUM) want = NULL;

	g_assert_cmpint(BN_hex2bn(&want, serial_hex), >, 0);
	for (int i = 0; i < sk_X509_REVOKED_num(revs); i++) {
		const ASN1_INTEGER *sn =
		    X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revs, i));
		g_autoptr(BIGNUM) bn = ASN1_INTEGER_to_BN(sn, NULL);
		if (BN_cmp(bn, want) == 0)
			return TRUE;
	}
	return FALSE;
}

/* Every certificate the store holds for UUID: none PENDING; VALID only
 * CURRENT, which the store's row names; every other one REVOKED or
 * ABANDONED and on the CRL. So no certificate the issuer signed is valid
 * without the store knowing it and a row holding it. Returns how many. */
static guint
assert_certs_settled(Fixture *fx, const char *uuid, const char *current)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) certs = vc_store_cert_list(fx->store, uuid, &error);
	g_autoptr(X509_CRL) crl = vc_issuer_make_crl(vc_engine_get_issuer(fx->engine), &error);
	g_autoptr(VcDomainRecord) row = store_row(fx, uuid);

	g_assert_no_error(error);
	g_assert_nonnull(crl);
	g_assert_cmpstr(row->current_serial, ==, current);
	for (guint i = 0; i < certs->len; i++) {
		VcCertRecord *rec = g_ptr_array_index(certs, i);
		if (g_strcmp0(rec->serial, current) == 0) {
			g_assert_cmpstr(vc_cert_status_to_string(rec->status), ==, "VALID");
			g_assert_nonnull(rec->der);
			g_assert_false(crl_lists(crl, rec->serial));
			continue;
		}
		g_assert_true(rec->status == VC_CERT_STATUS_REVOKED ||
			      rec->status == VC_CERT_STATUS_ABANDONED);
		g_assert_true(crl_lists(crl, rec->serial));
	}
	return certs->len;
}

/* The commit of an applied issuance batch fails (disk full): the VM holds
 * the new certificate in memory, the store has it PENDING and its row the
 * old one. The next flush commits the certificate first, with the row that
 * names it and the revocation of the one it supersedes, and reports it as
 * issued then. */
static void
test_store_commit_failed(Fixture *fx, gconstpointer data)
{
	const char *uuid = "7a1c0f5e-1d2b-4c3a-8e4f-0000000000d1";
	const char *issued_note[] = {"issued", uuid, "t-full.vms.example.com"};
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) renewed = NULL;
	g_autofree char *s1 = NULL;
	g_autofree char *s2 = NULL;
	g_autofree char *metrics = NULL;

	define_and_start(fx, "t-full", uuid, NULL);
	s1 = wait_issued(fx, uuid);
	g_ptr_array_set_size(fx->notes, 0);

	/* the renewal's flush: the issuer's commit of the intents (1), then the
	 * engine's of the DER, the row and the revocation (2), which fails */
	expect_warning("issuance batch failed: committing a transaction: database or disk is "
		       "full*");
	renewed = vc_engine_renew(fx->engine, "t-full", &error);
	g_assert_no_error(error);
	g_assert_true(vc_store_test_fail(fx->store, "commit:2", &error));
	g_assert_no_error(error);
	g_assert_true(vc_test_wait_until(cond_warning, fx, "issuance batch failed: *", WAIT_MS));

	/* applied in memory, not durable: the store knows the new serial only
	 * as PENDING, its row names the old one, nothing is reported */
	s2 = row_string(fx, uuid, "current_serial");
	g_assert_nonnull(s2);
	g_assert_cmpstr(s2, !=, s1);
	assert_cert(fx, s2, VC_CERT_STATUS_PENDING, -1);
	assert_cert(fx, s1, VC_CERT_STATUS_VALID, -1);
	{
		g_autoptr(VcDomainRecord) row = store_row(fx, uuid);
		g_assert_cmpstr(row->current_serial, ==, s1);
	}
	g_assert_false(has_note(fx, "issued", uuid, ""));

	/* the retry commits it with its row, after the backoff (the flush
	 * the batch's own moves had scheduled, 5 ms later, would have made
	 * the row name s2 before the checks above; no wall-clock bound here:
	 * a one-second GLib timeout may fire early, a loaded machine late) */
	{
		WantStoreRow w = {uuid, s2};
		g_assert_true(vc_test_wait_until(cond_store_row, fx, &w, WAIT_MS));
	}
	assert_cert(fx, s2, VC_CERT_STATUS_VALID, -1);
	assert_cert(fx, s1, VC_CERT_STATUS_REVOKED, VC_REASON_SUPERSEDED);
	g_assert_cmpuint(assert_certs_settled(fx, uuid, s2), ==, 2);
	wait_state(fx, uuid, "ISSUED");
	assert_chain_serves(fx, uuid, s2, "t-full.vms.example.com");
	{
		g_autoptr(VcDomainRecord) row = store_row(fx, uuid);
		g_assert_cmpstr(row->state, ==, "ISSUED");
	}
	/* reported once it is durable: the "issued" line, the counters */
	g_assert_true(vc_test_wait_until(cond_note, fx, issued_note, WAIT_MS));
	g_assert_true(has_note(fx, "issued", uuid, ""));
	{
		g_autofree char *prefix = g_strdup_printf("issued|%s|", uuid);
		guint n = 0;
		for (guint i = 0; i < fx->notes->len; i++)
			n += g_str_has_prefix(g_ptr_array_index(fx->notes, i), prefix);
		g_assert_cmpuint(n, ==, 1);
	}
	metrics = vc_engine_get_metrics(fx->engine);
	g_assert_nonnull(strstr(metrics, "\nvirtcert_certificates_issued_total 2\n"));
	g_assert_nonnull(strstr(metrics, "\nvirtcert_certificates_renewed_total 1\n"));
	g_assert_nonnull(strstr(metrics, "\nvirtcert_issue_latency_seconds_count 2\n"));
	{
		g_autoptr(JsonNode) status = vc_engine_get_status(fx->engine);
		g_assert_null(json_object_get_string_member_with_default(
		    json_node_get_object(status), "store_error", NULL));
	}
}

/* The store refuses the transaction that would store a batch's signed
 * certificates (its begin: another process holds the write lock): the
 * issuer keeps their serials as orphans, the engine queues the batch again,
 * and the next batch abandons the orphans (on the CRL) before it issues
 * under new serials. */
static void
test_store_begin_failed(Fixture *fx, gconstpointer data)
{
	const char *uuid = "7a1c0f5e-1d2b-4c3a-8e4f-0000000000d2";
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) renewed = NULL;
	g_autoptr(GPtrArray) certs = NULL;
	g_autoptr(VcCertRecord) orphan = NULL;
	g_autofree char *s1 = NULL;
	g_autofree char *s3 = NULL;
	char *orphan_serial = NULL;

	define_and_start(fx, "t-lock", uuid, NULL);
	s1 = wait_issued(fx, uuid);

	/* the intents' transaction (1) commits; the DER's (2) cannot begin */
	expect_warning("issuance batch failed: starting a transaction: database is locked*");
	renewed = vc_engine_renew(fx->engine, "t-lock", &error);
	g_assert_no_error(error);
	g_assert_true(vc_store_test_fail(fx->store, "begin:2", &error));
	g_assert_no_error(error);
	g_assert_true(vc_test_wait_until(cond_warning, fx, "issuance batch failed: *", WAIT_MS));

	/* signed, never handed out: PENDING in the store, the VM still holds s1 */
	certs = vc_store_cert_list(fx->store, uuid, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(certs->len, ==, 2);
	for (guint i = 0; i < certs->len; i++) {
		VcCertRecord *rec = g_ptr_array_index(certs, i);
		if (g_strcmp0(rec->serial, s1) != 0)
			orphan_serial = rec->serial;
	}
	g_assert_nonnull(orphan_serial);
	assert_cert(fx, orphan_serial, VC_CERT_STATUS_PENDING, -1);
	{
		g_autofree char *cur = row_string(fx, uuid, "current_serial");
		g_assert_cmpstr(cur, ==, s1);
	}

	/* the retry: the orphan abandoned, the renewal issued anew */
	{
		WantState w = {.vm = uuid, .state = "ISSUED", .not_serial = s1};
		g_assert_true(vc_test_wait_until(cond_state, fx, &w, WAIT_MS));
	}
	s3 = row_string(fx, uuid, "current_serial");
	g_assert_cmpstr(s3, !=, orphan_serial);
	{
		WantStoreRow w = {uuid, s3};
		g_assert_true(vc_test_wait_until(cond_store_row, fx, &w, WAIT_MS));
	}
	orphan = cert_get(fx, orphan_serial);
	g_assert_cmpstr(vc_cert_status_to_string(orphan->status), ==, "ABANDONED");
	g_assert_nonnull(strstr(orphan->revocation_detail, "could not be completed"));
	assert_cert(fx, s1, VC_CERT_STATUS_REVOKED, VC_REASON_SUPERSEDED);
	g_assert_cmpuint(assert_certs_settled(fx, uuid, s3), ==, 3);
	assert_chain_serves(fx, uuid, s3, "t-lock.vms.example.com");
}

/* A renewal decided while this host's certificate was usable, which expires
 * before the flush: the flush refuses the batch (the VM FAILED, with why),
 * nothing is recorded or signed, and the certificate the VM holds stays. */
static void
test_host_unusable_at_flush(Fixture *fx, gconstpointer data)
{
	const char *uuid = "7a1c0f5e-1d2b-4c3a-8e4f-0000000000d3";
	const char *refused_note[] = {"failed", uuid, "issuance refused: nothing is issued"};
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) renewed = NULL;
	g_autoptr(GPtrArray) certs = NULL;
	g_autofree char *s1 = NULL;

	define_and_start(fx, "t-host", uuid, NULL);
	s1 = wait_issued(fx, uuid);
	g_ptr_array_set_size(fx->notes, 0);

	expect_warning("this host's certificate is not usable*");
	expect_warning("VM t-host: *");
	renewed = vc_engine_renew(fx->engine, "t-host", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(json_object_get_string_member(json_node_get_object(renewed), "state"), ==,
			"RENEWING");
	/* two hours on: the host certificate (valid for one) has expired, and
	 * the flush is the first to look at it again */
	vc_engine_test_set_clock(2 * 3600);
	g_assert_true(vc_test_wait_until(cond_note, fx, refused_note, WAIT_MS));
	wait_state(fx, uuid, "FAILED");
	g_assert_true(warning_seen("VM t-host: issuance refused: nothing is issued on this host "
				   "while its host certificate is not usable (*expired*"));
	certs = vc_store_cert_list(fx->store, uuid, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(certs->len, ==, 1);
	assert_cert(fx, s1, VC_CERT_STATUS_VALID, -1);
	{
		g_autoptr(VcDomainRecord) row = store_row(fx, uuid);
		g_autoptr(JsonNode) status = vc_engine_get_status(fx->engine);
		g_autofree char *err = row_string(fx, uuid, "last_error");
		g_assert_cmpstr(row->current_serial, ==, s1);
		g_assert_nonnull(strstr(err, "host certificate is not usable"));
		g_assert_false(json_object_get_boolean_member(
		    json_object_get_object_member(json_node_get_object(status), "host_certificate"),
		    "issuing"));
	}
	g_assert_false(has_note(fx, "issued", uuid, ""));
}
#else
static void
test_needs_seams(Fixture *fx, gconstpointer data)
{
	g_test_skip("needs the test seams (meson setup -Dtest_seams=true)");
}
#define test_store_commit_failed test_needs_seams
#define test_store_begin_failed test_needs_seams
#define test_host_unusable_at_flush test_needs_seams
#endif

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	expected_warnings = g_ptr_array_new_with_free_func(g_free);
	seen_warnings = g_ptr_array_new_with_free_func(g_free);
	g_log_set_writer_func(log_writer, NULL, NULL);

#define ADD(path, fn, data) g_test_add(path, Fixture, data, fx_setup, fn, fx_teardown)
	ADD("/engine/lifecycle", test_lifecycle, NULL);
	ADD("/engine/transient", test_transient, NULL);
	ADD("/engine/rename-stopped", test_rename_stopped, NULL);
	ADD("/engine/no-policy", test_no_policy, NULL);
	ADD("/engine/metadata-policy", test_metadata_policy, NULL);
	ADD("/engine/profile-change", test_profile_change, NULL);
	ADD("/engine/reconcile", test_reconcile, "stopped");
	ADD("/engine/reconcile/vanished-with-issuance", test_vanished_with_issuance, "stopped");
	ADD("/engine/manual-revoke", test_manual_revoke, NULL);
	ADD("/engine/claim/still-runs", test_claim_still_runs, NULL);
	ADD("/engine/claim/unannounced", test_claim_unannounced, NULL);
	ADD("/engine/placement/no-host-certificate", test_placement_no_host_cert, NULL);
	ADD("/engine/placement/refused", test_placement_refused, "host");
	ADD("/engine/claim/outside-placement", test_claim_outside_placement, "host");
	ADD("/engine/claim/accepted", test_claim_accepted, "host");
	ADD("/engine/claim/recorded-placement", test_claim_recorded_placement, "host");
	ADD("/engine/claim/faults", test_claim_faults, "host");
	ADD("/engine/store/commit-failed", test_store_commit_failed, NULL);
	ADD("/engine/store/begin-failed", test_store_begin_failed, NULL);
	ADD("/engine/host/unusable-at-flush", test_host_unusable_at_flush, "host");
#undef ADD
	return g_test_run();
}
