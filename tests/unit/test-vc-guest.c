/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libvirt/virterror.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vc-autoptr.h"
#include "vc-error.h"
#include "vc-guest.h"
#include "vc-test-util.h"

/* Three groups of tests:
 *  /guest/qga/...      the real qemu-ga of the host, started per test with
 *                      `-m unix-listen` as the unprivileged user vcguest
 *                      (qemu-ga runs whatever it is asked: never as root);
 *                      the "guest" file system is a directory owned by vcguest;
 *  /guest/hostile/...  a fake agent in a thread answering garbage, huge,
 *                      mistyped or no replies;
 *  /guest/csr/...      the CSR parser alone. */

#define QGA_USER "vcguest"

/* ---- a real qemu-ga ------------------------------------------------------ */

typedef struct {
	GPid pid;
	char *dir; /* 0711, ours */
	char *sock;
	char *target; /* the guest's files go below, owned by the agent's user */
	uid_t uid;
	gid_t gid;
} Qga;

static gboolean
qga_available(void)
{
	g_autofree char *qga = g_find_program_in_path("qemu-ga");
	g_autofree char *setpriv = g_find_program_in_path("setpriv");

	if (qga == NULL) {
		g_test_skip("qemu-ga is not installed (package qemu-guest-agent)");
		return FALSE;
	}
	if (getuid() == 0 && setpriv == NULL) {
		g_test_skip("setpriv is not installed");
		return FALSE;
	}
	return TRUE;
}

static void
run_quiet(const char *const *argv)
{
	g_autoptr(GError) error = NULL;
	int status = 0;

	g_spawn_sync(NULL, (char **)argv, NULL,
		     G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
		     NULL, NULL, NULL, NULL, &status, &error);
	g_assert_no_error(error);
}

static Qga *
qga_start(const char *block)
{
	Qga *q = g_new0(Qga, 1);
	g_autoptr(GError) error = NULL;
	g_autofree char *run = NULL;
	g_autofree char *pidfile = NULL;
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	const char *envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			      NULL};

	q->dir = vc_test_dir_make("vc-guest-XXXXXX");
	g_assert_cmpint(chmod(q->dir, 0711), ==, 0);
	run = g_build_filename(q->dir, "run", NULL);
	q->target = g_build_filename(q->dir, "guest", NULL);
	q->sock = g_build_filename(run, "qga.sock", NULL);
	pidfile = g_build_filename(run, "qemu-ga.pid", NULL);
	g_assert_cmpint(g_mkdir(run, 0755), ==, 0);
	g_assert_cmpint(g_mkdir(q->target, 0755), ==, 0);

	q->uid = getuid();
	q->gid = getgid();
	if (getuid() == 0) {
		const char *const useradd[] = {"sh", "-c",
					       "id -u " QGA_USER " || useradd -m " QGA_USER, NULL};
		struct passwd *pw;

		run_quiet(useradd);
		pw = getpwnam(QGA_USER);
		g_assert_nonnull(pw);
		q->uid = pw->pw_uid;
		q->gid = pw->pw_gid;
		g_assert_cmpint(chown(run, q->uid, q->gid), ==, 0);
		g_assert_cmpint(chown(q->target, q->uid, q->gid), ==, 0);
		g_ptr_array_add(argv, (gpointer) "setpriv");
		g_ptr_array_add(argv, (gpointer) "--reuid=" QGA_USER);
		g_ptr_array_add(argv, (gpointer) "--regid=" QGA_USER);
		g_ptr_array_add(argv, (gpointer) "--init-groups");
		/* an aborted test must not leave an agent behind */
		g_ptr_array_add(argv, (gpointer) "--pdeathsig=KILL");
	}
	g_ptr_array_add(argv, (gpointer) "qemu-ga");
	g_ptr_array_add(argv, (gpointer) "-m");
	g_ptr_array_add(argv, (gpointer) "unix-listen");
	g_ptr_array_add(argv, (gpointer) "-p");
	g_ptr_array_add(argv, q->sock);
	g_ptr_array_add(argv, (gpointer) "-t");
	g_ptr_array_add(argv, run);
	g_ptr_array_add(argv, (gpointer) "-f");
	g_ptr_array_add(argv, pidfile);
	if (block != NULL) {
		g_ptr_array_add(argv, (gpointer) "-b");
		g_ptr_array_add(argv, (gpointer)block);
	}
	g_ptr_array_add(argv, NULL);
	g_spawn_async(NULL, (char **)argv->pdata, (char **)envp,
		      G_SPAWN_SEARCH_PATH_FROM_ENVP | G_SPAWN_DO_NOT_REAP_CHILD |
			  G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
		      NULL, NULL, &q->pid, &error);
	g_assert_no_error(error);
	/* the socket file appears at bind(), before listen(): wait for an answer */
	for (int i = 0; i < 200; i++) {
		g_autoptr(VcGuestChannel) probe = vc_guest_channel_new_socket(q->sock, NULL);
		if (probe != NULL && vc_guest_ping(probe, 5, NULL))
			return q;
		g_usleep(25000);
	}
	g_error("qemu-ga did not answer on %s", q->sock);
	return q;
}

static void
qga_stop(Qga *q)
{
	/* qemu-ga normally quits at SIGTERM; one that does not (seen once under
	 * load) must not hang the test: SIGKILL after 5 s */
	kill(q->pid, SIGTERM);
	for (int i = 0; i < 500 && waitpid(q->pid, NULL, WNOHANG) == 0; i++) {
		g_usleep(10000);
		if (i == 499) {
			kill(q->pid, SIGKILL);
			waitpid(q->pid, NULL, 0);
		}
	}
	g_spawn_close_pid(q->pid);
	vc_test_dir_remove(q->dir);
	g_free(q->dir);
	g_free(q->sock);
	g_free(q->target);
	g_free(q);
}

static VcGuestChannel *
qga_channel(Qga *q)
{
	g_autoptr(GError) error = NULL;
	VcGuestChannel *channel = vc_guest_channel_new_socket(q->sock, &error);

	g_assert_no_error(error);
	g_assert_nonnull(channel);
	return channel;
}

static char *
target_path(Qga *q, const char *rel)
{
	return g_build_filename(q->target, rel, NULL);
}

/* ---- keys and certificates ---------------------------------------------- */

static EVP_PKEY *
make_key(void)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	g_assert_nonnull(key);
	return key;
}

static char *
key_pem(EVP_PKEY *key)
{
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
	char *data;
	long len;

	g_assert_cmpint(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), ==, 1);
	len = BIO_get_mem_data(bio, &data);
	return g_strndup(data, (gsize)len);
}

/* A self-signed certificate; padding adds a comment of that many bytes
 * before it (PEM readers skip text outside the armour) to make it large. */
static char *
make_cert(EVP_PKEY *key, const char *cn, gsize padding)
{
	g_autoptr(X509) x = X509_new();
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
	X509_NAME *name = X509_get_subject_name(x);
	GString *out = g_string_new(NULL);
	char *data;
	long len;

	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), g_random_int_range(1, G_MAXINT32));
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, name);
	g_assert_cmpint(X509_sign(x, key, EVP_PKEY_is_a(key, "ED25519") ? NULL : EVP_sha256()), >,
			0);
	g_assert_cmpint(PEM_write_bio_X509(bio, x), ==, 1);
	for (gsize i = 0; i < padding; i += 64)
		g_string_append(out,
				"padding padding padding padding padding padding padding paddin\n");
	len = BIO_get_mem_data(bio, &data);
	g_string_append_len(out, data, len);
	return g_string_free(out, FALSE);
}

static char *
read_file(const char *path)
{
	g_autoptr(GError) error = NULL;
	char *contents = NULL;

	g_file_get_contents(path, &contents, NULL, &error);
	g_assert_no_error(error);
	return contents;
}

static void
assert_mode_owner(Qga *q, const char *path, mode_t mode)
{
	struct stat st;

	g_assert_cmpint(stat(path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 07777, ==, mode);
	g_assert_cmpint(st.st_uid, ==, q->uid);
	g_assert_cmpint(st.st_gid, ==, q->gid);
}

static void
assert_no_leftovers(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	g_assert_nonnull(d);
	while ((name = g_dir_read_name(d)) != NULL) {
		g_assert_false(g_str_has_suffix(name, VC_GUEST_TMP_SUFFIX));
		g_assert_false(g_str_has_suffix(name, VC_GUEST_STAGED_KEY_SUFFIX));
	}
}

/* ---- /guest/qga ---------------------------------------------------------- */

static void
test_qga_deliver(void)
{
	Qga *q;
	g_autoptr(VcGuestChannel) channel = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) key = make_key();
	g_autoptr(EVP_PKEY) ca_key = make_key();
	g_autofree char *kpem = key_pem(key);
	g_autofree char *cert = make_cert(key, "vm1.example.test", 0);
	g_autofree char *chain = make_cert(ca_key, "Example CA", 0);
	g_autofree char *cert_path = NULL, *chain_path = NULL, *key_path = NULL;
	g_autofree char *got = NULL;
	g_autofree char *owner = NULL;
	g_autofree char *certs_dir = NULL;
	g_autoptr(BIO) bio = NULL;
	g_autoptr(X509) x = NULL;
	g_autoptr(EVP_PKEY) got_key = NULL;
	VcGuestDelivery d = {0};
	VcGuestResult result;

	if (!qga_available())
		return;
	q = qga_start(NULL);
	channel = qga_channel(q);
	g_assert_true(vc_guest_ping(channel, 5, &error));
	g_assert_no_error(error);

	/* directories that do not exist yet: made like mkdir -p */
	cert_path = target_path(q, "tls/certs/vm.crt");
	chain_path = target_path(q, "tls/certs/chain.pem");
	key_path = target_path(q, "tls/private/vm.key");
	d.cert_pem = cert;
	d.chain_pem = chain;
	d.key_pem = kpem;
	d.cert_path = cert_path;
	d.chain_path = chain_path;
	d.key_path = key_path;
	if (getuid() == 0)
		d.owner = owner = g_strdup(QGA_USER ":" QGA_USER);
	d.reload_command = "echo reloading; exit 3";

	g_assert_true(vc_guest_deliver(channel, &d, &result, &error));
	g_assert_no_error(error);
	for (int i = 0; i < VC_GUEST_N_FILES; i++) {
		g_assert_true(result.delivered[i]);
		g_assert_true(result.verified[i]);
	}
	g_assert_cmpuint(result.capability_problems->len, ==, 0);
	g_assert_true(result.reload_ran);
	g_assert_cmpint(result.reload_exit_code, ==, 3);
	g_assert_null(result.reload_error);
	g_assert_cmpint(result.duration_us, >, 0);
	vc_guest_result_clear(&result);

	got = read_file(cert_path);
	g_assert_cmpstr(got, ==, cert);
	g_clear_pointer(&got, g_free);
	got = read_file(chain_path);
	g_assert_cmpstr(got, ==, chain);
	g_clear_pointer(&got, g_free);
	got = read_file(key_path);
	g_assert_cmpstr(got, ==, kpem);
	assert_mode_owner(q, cert_path, 0644);
	assert_mode_owner(q, chain_path, 0644);
	assert_mode_owner(q, key_path, 0600);

	/* the delivered key is the certificate's */
	bio = BIO_new_mem_buf(got, -1);
	got_key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	g_assert_nonnull(got_key);
	g_clear_pointer(&bio, BIO_free_all);
	g_clear_pointer(&got, g_free);
	got = read_file(cert_path);
	bio = BIO_new_mem_buf(got, -1);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	g_assert_nonnull(x);
	g_assert_cmpint(X509_check_private_key(x, got_key), ==, 1);

	certs_dir = g_path_get_dirname(cert_path);
	assert_no_leftovers(certs_dir);
	g_clear_pointer(&certs_dir, g_free);
	certs_dir = g_path_get_dirname(key_path);
	assert_no_leftovers(certs_dir);

	/* the check the engine runs when the agent reconnects */
	{
		gboolean match = FALSE;
		g_autofree char *other = make_cert(key, "vm2.example.test", 0);
		g_assert_true(
		    vc_guest_check_files(channel, cert_path, cert, key_path, &match, &error));
		g_assert_no_error(error);
		g_assert_true(match);
		g_assert_true(
		    vc_guest_check_files(channel, cert_path, other, key_path, &match, &error));
		g_assert_false(match);
		g_assert_cmpint(g_unlink(key_path), ==, 0);
		g_assert_true(
		    vc_guest_check_files(channel, cert_path, cert, key_path, &match, &error));
		g_assert_no_error(error);
		g_assert_false(match); /* the key is gone */
	}

	g_clear_pointer(&channel, vc_guest_channel_free);
	qga_stop(q);
}

typedef struct {
	const char *path;
	const char *old_content;
	const char *new_content;
	gint stop;
	guint reads, bad;
} Reader;

static gpointer
reader_thread(gpointer data)
{
	Reader *r = data;

	while (!g_atomic_int_get(&r->stop)) {
		char *c = NULL;
		if (!g_file_get_contents(r->path, &c, NULL, NULL) ||
		    (strcmp(c, r->old_content) != 0 && strcmp(c, r->new_content) != 0))
			g_atomic_int_inc(&r->bad);
		g_free(c);
		r->reads++;
	}
	return NULL;
}

/* A re-delivery replaces the files by rename: a reader sees the old or the new
 * certificate, never a missing or partial one. The new one is larger than
 * several guest-file-write chunks. */
static void
test_qga_redeliver(void)
{
	Qga *q;
	g_autoptr(VcGuestChannel) channel = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) key = make_key();
	g_autoptr(EVP_PKEY) key2 = make_key();
	g_autofree char *kpem = key_pem(key);
	g_autofree char *kpem2 = key_pem(key2);
	g_autofree char *cert = make_cert(key, "vm1.example.test", 0);
	g_autofree char *cert2 = make_cert(key2, "vm1.example.test", 150 * 1024);
	g_autofree char *cert_path = NULL, *key_path = NULL, *got = NULL;
	VcGuestDelivery d = {0};
	VcGuestResult result;
	struct stat st1, st2;
	Reader r = {0};
	GThread *thread;

	if (!qga_available())
		return;
	q = qga_start(NULL);
	channel = qga_channel(q);
	cert_path = target_path(q, "vm.crt");
	key_path = target_path(q, "vm.key");
	d.cert_pem = cert;
	d.key_pem = kpem;
	d.cert_path = cert_path;
	d.key_path = key_path;
	g_assert_true(vc_guest_deliver(channel, &d, &result, &error));
	g_assert_no_error(error);
	g_assert_false(result.reload_ran);
	g_assert_cmpint(result.reload_exit_code, ==, -1);
	g_assert_false(result.delivered[VC_GUEST_FILE_CHAIN]);
	vc_guest_result_clear(&result);
	g_assert_cmpint(stat(cert_path, &st1), ==, 0);

	r.path = cert_path;
	r.old_content = cert;
	r.new_content = cert2;
	thread = g_thread_new("reader", reader_thread, &r);
	d.cert_pem = cert2;
	d.key_pem = kpem2;
	d.reload_command = "exit 0";
	g_assert_true(vc_guest_deliver(channel, &d, &result, &error));
	g_assert_no_error(error);
	g_atomic_int_set(&r.stop, 1);
	g_thread_join(thread);
	g_assert_cmpint(result.reload_exit_code, ==, 0);
	g_assert_true(result.verified[VC_GUEST_FILE_CERT]);
	g_assert_true(result.verified[VC_GUEST_FILE_KEY]);
	vc_guest_result_clear(&result);
	g_assert_cmpuint(r.reads, >, 0);
	g_assert_cmpuint(r.bad, ==, 0);

	got = read_file(cert_path);
	g_assert_cmpstr(got, ==, cert2);
	g_clear_pointer(&got, g_free);
	got = read_file(key_path);
	g_assert_cmpstr(got, ==, kpem2);
	g_assert_cmpint(stat(cert_path, &st2), ==, 0);
	g_assert_cmpuint(st1.st_ino, !=, st2.st_ino);
	assert_mode_owner(q, key_path, 0600);
	assert_no_leftovers(q->target);

	/* a reload killed by a signal is reported as 128+N, not fatal */
	d.reload_command = "kill -9 $$";
	g_assert_true(vc_guest_deliver(channel, &d, &result, &error));
	g_assert_no_error(error);
	g_assert_cmpint(result.reload_exit_code, ==, 128 + 9);
	vc_guest_result_clear(&result);

	g_clear_pointer(&channel, vc_guest_channel_free);
	qga_stop(q);
}

/* Paths and owner from policy reach the guest's shell as arguments, never as
 * script text: a path full of shell syntax is just a name. */
static void
test_qga_hostile_names(void)
{
	Qga *q;
	g_autoptr(VcGuestChannel) channel = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) key = make_key();
	g_autofree char *cert = make_cert(key, "vm1.example.test", 0);
	g_autofree char *cert_path = NULL, *canary = NULL, *got = NULL;
	VcGuestDelivery d = {0};
	VcGuestResult result;

	if (!qga_available())
		return;
	q = qga_start(NULL);
	channel = qga_channel(q);
	canary = target_path(q, "pwned");
	cert_path = target_path(q, "a b/$(touch pwned)'\";touch pwned;`touch pwned`/-x.crt");
	d.cert_pem = cert;
	d.cert_path = cert_path;
	g_assert_true(vc_guest_deliver(channel, &d, &result, &error));
	g_assert_no_error(error);
	vc_guest_result_clear(&result);
	got = read_file(cert_path);
	g_assert_cmpstr(got, ==, cert);
	g_assert_false(g_file_test(canary, G_FILE_TEST_EXISTS));

	/* an owner the guest does not know: the install fails before the rename,
	 * nothing is left behind, the old file stays */
	{
		g_autofree char *key_path = target_path(q, "private/vm.key");
		g_autofree char *kpem = key_pem(key);
		g_autofree char *dir = g_path_get_dirname(key_path);

		d.key_pem = kpem;
		d.key_path = key_path;
		d.owner = "nosuchuser-vc";
		g_assert_false(vc_guest_deliver(channel, &d, &result, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_GUEST);
		g_assert_nonnull(strstr(error->message, "cannot install"));
		g_assert_false(result.delivered[VC_GUEST_FILE_KEY]);
		vc_guest_result_clear(&result);
		g_clear_error(&error);
		g_assert_false(g_file_test(key_path, G_FILE_TEST_EXISTS));
		assert_no_leftovers(dir);
		g_clear_pointer(&got, g_free);
		got = read_file(cert_path);
		g_assert_cmpstr(got, ==, cert);
		d.key_pem = NULL;
		d.key_path = NULL;
	}

	/* refused before anything reaches the guest */
	d.owner = "-R root";
	g_assert_false(vc_guest_deliver(channel, &d, &result, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_USAGE);
	vc_guest_result_clear(&result);
	g_clear_error(&error);
	d.owner = NULL;
	d.cert_path = "relative/vm.crt";
	g_assert_false(vc_guest_deliver(channel, &d, &result, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_USAGE);
	vc_guest_result_clear(&result);
	g_clear_error(&error);
	d.cert_path = "/tmp/a\nb";
	g_assert_false(vc_guest_deliver(channel, &d, &result, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_USAGE);
	vc_guest_result_clear(&result);

	g_clear_pointer(&channel, vc_guest_channel_free);
	qga_stop(q);
}

static void
test_qga_keygen(gconstpointer data)
{
	VcKeyType type = GPOINTER_TO_INT(data);
	Qga *q;
	g_autoptr(VcGuestChannel) channel = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) pub = NULL;
	g_autoptr(EVP_PKEY) priv = NULL;
	g_autoptr(EVP_PKEY) parsed = NULL;
	g_autoptr(BIO) bio = NULL;
	g_autoptr(X509) x = NULL;
	g_autofree char *key_path = NULL, *staged = NULL, *csr = NULL, *kpem = NULL;
	g_autofree char *cert = NULL, *cert_path = NULL, *old_key = NULL;
	VcGuestDelivery d = {0};
	VcGuestResult result;
	struct stat st;

	if (!qga_available())
		return;
	q = qga_start(NULL);
	channel = qga_channel(q);
	key_path = target_path(q, "private/vm.key");
	staged = vc_guest_staged_key_path(key_path);

	pub = vc_guest_make_csr(channel, staged, type, &csr, &error);
	g_assert_no_error(error);
	g_assert_nonnull(pub);
	g_assert_true(g_str_has_prefix(csr, "-----BEGIN CERTIFICATE REQUEST-----"));
	parsed = vc_guest_csr_public_key(csr, strlen(csr), &error);
	g_assert_no_error(error);
	g_assert_cmpint(EVP_PKEY_eq(parsed, pub), ==, 1);

	/* the key the guest wrote, 0600 from the start, is the CSR's */
	g_assert_cmpint(stat(staged, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	kpem = read_file(staged);
	bio = BIO_new_mem_buf(kpem, -1);
	priv = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	g_assert_nonnull(priv);
	g_assert_cmpint(EVP_PKEY_eq(priv, pub), ==, 1);
	g_assert_false(EVP_PKEY_is_a(pub, "EC") && type != VC_KEY_TYPE_EC_P256);

	/* then the certificate for it: the staged key moves into place with it */
	cert = make_cert(priv, "vm1.example.test", 0);
	cert_path = target_path(q, "vm.crt");
	d.cert_pem = cert;
	d.cert_path = cert_path;
	d.key_path = key_path;
	g_assert_true(vc_guest_deliver(channel, &d, &result, &error));
	g_assert_no_error(error);
	g_assert_true(result.delivered[VC_GUEST_FILE_KEY]);
	g_assert_false(result.verified[VC_GUEST_FILE_KEY]);
	g_assert_true(result.verified[VC_GUEST_FILE_CERT]);
	vc_guest_result_clear(&result);
	g_assert_false(g_file_test(staged, G_FILE_TEST_EXISTS));
	old_key = read_file(key_path);
	g_assert_cmpstr(old_key, ==, kpem);
	assert_mode_owner(q, key_path, 0600);
	g_clear_pointer(&bio, BIO_free_all);
	bio = BIO_new_mem_buf(cert, -1);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	g_assert_cmpint(X509_check_private_key(x, priv), ==, 1);

	/* a re-delivery without a staged key keeps the installed one */
	g_assert_true(vc_guest_deliver(channel, &d, &result, &error));
	g_assert_no_error(error);
	g_assert_false(result.delivered[VC_GUEST_FILE_KEY]);
	vc_guest_result_clear(&result);
	g_clear_pointer(&old_key, g_free);
	old_key = read_file(key_path);
	g_assert_cmpstr(old_key, ==, kpem);

	OPENSSL_cleanse(kpem, strlen(kpem));
	g_clear_pointer(&channel, vc_guest_channel_free);
	qga_stop(q);
}

/* The staging directory beside the targets: a link or a file planted at its
 * name is replaced, not followed; it is the agent's own directory, 0700, and
 * left empty; nothing is ever written outside it but by rename. A target
 * inside a staging directory is refused. */
static void
test_qga_staging(void)
{
	Qga *q;
	g_autoptr(VcGuestChannel) channel = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) key = make_key();
	g_autofree char *kpem = key_pem(key);
	g_autofree char *cert = make_cert(key, "vm1.example.test", 0);
	g_autofree char *cert_path = NULL, *key_path = NULL, *stage = NULL, *elsewhere = NULL;
	g_autofree char *got = NULL, *inside = NULL;
	g_autoptr(GDir) dir = NULL;
	VcGuestDelivery d = {0};
	VcGuestResult result;
	struct stat st;

	if (!qga_available())
		return;
	q = qga_start(NULL);
	channel = qga_channel(q);
	cert_path = target_path(q, "tls/vm.crt");
	key_path = target_path(q, "tls/vm.key");
	stage = target_path(q, "tls/" VC_GUEST_STAGING_DIR);
	elsewhere = target_path(q, "elsewhere");
	g_assert_cmpint(g_mkdir_with_parents(elsewhere, 0755), ==, 0);
	g_assert_cmpint(g_mkdir_with_parents(stage, 0755), ==, 0);
	g_assert_cmpint(rmdir(stage), ==, 0);
	/* a link to another directory where the staging directory goes */
	g_assert_cmpint(symlink(elsewhere, stage), ==, 0);
	if (getuid() == 0) {
		g_autofree char *parent = g_path_get_dirname(stage);
		g_assert_cmpint(lchown(stage, q->uid, q->gid), ==, 0);
		g_assert_cmpint(chown(parent, q->uid, q->gid), ==, 0);
		g_assert_cmpint(chown(elsewhere, q->uid, q->gid), ==, 0);
	}
	d.cert_pem = cert;
	d.key_pem = kpem;
	d.cert_path = cert_path;
	d.key_path = key_path;
	d.reload_command = "exit 7";
	g_assert_true(vc_guest_deliver(channel, &d, &result, &error));
	g_assert_no_error(error);
	g_assert_true(result.delivered[VC_GUEST_FILE_KEY]);
	g_assert_true(result.delivered[VC_GUEST_FILE_CERT]);
	g_assert_true(result.reload_ran);
	g_assert_cmpint(result.reload_exit_code, ==, 7);
	vc_guest_result_clear(&result);
	got = read_file(cert_path);
	g_assert_cmpstr(got, ==, cert);
	assert_mode_owner(q, key_path, 0600);
	assert_mode_owner(q, cert_path, 0644);
	/* the link was replaced by the agent's own empty directory */
	g_assert_cmpint(lstat(stage, &st), ==, 0);
	g_assert_true(S_ISDIR(st.st_mode));
	g_assert_cmpint(st.st_mode & 07777, ==, 0700);
	g_assert_cmpint(st.st_uid, ==, q->uid);
	dir = g_dir_open(stage, 0, NULL);
	g_assert_nonnull(dir);
	g_assert_null(g_dir_read_name(dir));
	g_clear_pointer(&dir, g_dir_close);
	dir = g_dir_open(elsewhere, 0, NULL);
	g_assert_null(g_dir_read_name(dir));
	g_clear_pointer(&dir, g_dir_close);

	/* a file planted at its name is removed; the next delivery reuses it */
	g_assert_cmpint(rmdir(stage), ==, 0);
	g_assert_true(g_file_set_contents(stage, "planted", -1, NULL));
	if (getuid() == 0)
		g_assert_cmpint(chown(stage, q->uid, q->gid), ==, 0);
	d.reload_command = NULL;
	g_assert_true(vc_guest_deliver(channel, &d, &result, &error));
	g_assert_no_error(error);
	g_assert_false(result.reload_ran);
	vc_guest_result_clear(&result);
	g_assert_cmpint(lstat(stage, &st), ==, 0);
	g_assert_true(S_ISDIR(st.st_mode));
	g_assert_true(vc_guest_deliver(channel, &d, &result, &error));
	g_assert_no_error(error);
	vc_guest_result_clear(&result);
	{
		g_autofree char *tls = g_path_get_dirname(cert_path);
		assert_no_leftovers(tls);
	}

	/* a target inside a staging directory: refused before the guest */
	inside = g_build_filename(stage, "vm.crt", NULL);
	d.cert_path = inside;
	g_assert_false(vc_guest_deliver(channel, &d, &result, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_USAGE);
	vc_guest_result_clear(&result);

	g_clear_pointer(&channel, vc_guest_channel_free);
	qga_stop(q);
}

static void
test_qga_blocked(void)
{
	Qga *q;
	g_autoptr(VcGuestChannel) channel = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) key = make_key();
	g_autoptr(EVP_PKEY) pub = NULL;
	g_autofree char *cert = make_cert(key, "vm1.example.test", 0);
	g_autofree char *cert_path = NULL, *key_path = NULL;
	VcGuestDelivery d = {0};
	VcGuestResult result;
	gboolean found = FALSE;

	if (!qga_available())
		return;
	q = qga_start("guest-exec");
	channel = qga_channel(q);
	cert_path = target_path(q, "vm.crt");
	d.cert_pem = cert;
	d.cert_path = cert_path;
	g_assert_false(vc_guest_deliver(channel, &d, &result, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_GUEST);
	g_assert_true(vc_guest_error_is_blocked(error));
	g_assert_nonnull(strstr(error->message, "guest agent blocks guest-exec"));
	g_assert_nonnull(strstr(error->message, "docs/guest-agent.md"));
	for (guint i = 0; i < result.capability_problems->len; i++)
		found |=
		    g_strcmp0(result.capability_problems->pdata[i], "guest-exec is disabled") == 0;
	g_assert_true(found);
	vc_guest_result_clear(&result);
	g_clear_error(&error);
	/* refused before anything was written */
	assert_no_leftovers(q->target);
	g_assert_false(g_file_test(cert_path, G_FILE_TEST_EXISTS));

	/* keygen asks guest-exec directly: the agent's own refusal, same message */
	key_path = target_path(q, "vm.key");
	pub = vc_guest_make_csr(channel, key_path, VC_KEY_TYPE_EC_P256, NULL, &error);
	g_assert_null(pub);
	g_assert_true(vc_guest_error_is_blocked(error));
	g_assert_nonnull(strstr(error->message, "docs/guest-agent.md"));

	g_clear_pointer(&channel, vc_guest_channel_free);
	qga_stop(q);
}

/* `virtcert doctor`'s question: what does the agent allow? A real qemu-ga,
 * open, then blocking guest-exec. */
static void
test_qga_check_agent(void)
{
	for (int blocked = 0; blocked < 2; blocked++) {
		Qga *q;
		g_autoptr(VcGuestChannel) channel = NULL;
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
		gboolean files_ok = FALSE;

		if (!qga_available())
			return;
		q = qga_start(blocked ? "guest-exec,guest-exec-status" : NULL);
		channel = qga_channel(q);
		g_assert_true(vc_guest_check_agent(channel, 5, problems, &files_ok, &error));
		g_assert_no_error(error);
		g_assert_true(files_ok);
		if (!blocked) {
			g_assert_cmpuint(problems->len, ==, 0);
		} else {
			g_assert_cmpuint(problems->len, ==, 2);
			g_assert_cmpstr(g_ptr_array_index(problems, 0), ==,
					"guest-exec is disabled");
			g_assert_cmpstr(g_ptr_array_index(problems, 1), ==,
					"guest-exec-status is disabled");
		}
		g_clear_pointer(&channel, vc_guest_channel_free);
		qga_stop(q);
	}
}

/* An agent that blocks guest-exec (RECIPES: block-rpcs=guest-exec,
 * guest-exec-status) with VC_GUEST_METHOD_AUTO: the file-only way. */
static void
test_qga_file_only(void)
{
	Qga *q;
	g_autoptr(VcGuestChannel) channel = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) key = make_key();
	g_autoptr(EVP_PKEY) key2 = make_key();
	g_autoptr(EVP_PKEY) ca_key = make_key();
	g_autofree char *kpem = key_pem(key);
	g_autofree char *kpem2 = key_pem(key2);
	g_autofree char *cert = make_cert(key, "vm1.example.test", 256);
	g_autofree char *cert2 = make_cert(key2, "vm1.example.test", 0);
	g_autofree char *chain = make_cert(ca_key, "Example CA", 0);
	g_autofree char *cert_path = NULL, *chain_path = NULL, *key_path = NULL;
	g_autofree char *got = NULL;
	VcGuestDelivery d = {0};
	VcGuestResult result;
	gboolean found = FALSE;
	int fd;

	if (!qga_available())
		return;
	q = qga_start("guest-exec,guest-exec-status");
	channel = qga_channel(q);
	cert_path = target_path(q, "vm.crt");
	chain_path = target_path(q, "chain.pem");
	key_path = target_path(q, "vm.key");
	d.cert_pem = cert;
	d.chain_pem = chain;
	d.key_pem = kpem;
	d.cert_path = cert_path;
	d.chain_path = chain_path;
	d.key_path = key_path;
	d.reload_command = "echo reloaded";
	d.method = VC_GUEST_METHOD_AUTO;

	/* no files yet: qemu-ga would make them 0666, so it is refused and
	 * nothing is written; then with only the key file there: the same */
	for (int round = 0; round < 2; round++) {
		g_assert_false(vc_guest_deliver(channel, &d, &result, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_GUEST);
		g_assert_nonnull(strstr(error->message, "over an existing file"));
		g_assert_nonnull(strstr(error->message, "docs/guest-agent.md"));
		for (int i = 0; i < VC_GUEST_N_FILES; i++)
			g_assert_false(result.delivered[i]);
		vc_guest_result_clear(&result);
		g_clear_error(&error);
		g_assert_false(g_file_test(cert_path, G_FILE_TEST_EXISTS));
		if (round == 0) {
			g_assert_false(g_file_test(key_path, G_FILE_TEST_EXISTS));
			/* the administrator makes the key file, 0600 for its service */
			fd = open(key_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
			g_assert_cmpint(fd, >=, 0);
			g_assert_cmpint(fchown(fd, q->uid, q->gid), ==, 0);
			g_assert_cmpint(fchmod(fd, 0600), ==, 0);
			close(fd);
		} else {
			got = read_file(key_path);
			g_assert_cmpstr(got, ==, "");
			g_clear_pointer(&got, g_free);
		}
	}
	/* ... and the certificate and chain files, 0644 */
	for (int i = 0; i < 2; i++) {
		fd = open(i == 0 ? cert_path : chain_path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		g_assert_cmpint(fd, >=, 0);
		g_assert_cmpint(fchown(fd, q->uid, q->gid), ==, 0);
		g_assert_cmpint(fchmod(fd, 0644), ==, 0);
		close(fd);
	}

	g_assert_true(vc_guest_deliver(channel, &d, &result, &error));
	g_assert_no_error(error);
	g_assert_true(result.file_only);
	for (int i = 0; i < VC_GUEST_N_FILES; i++) {
		g_assert_true(result.delivered[i]);
		g_assert_true(result.verified[i]);
	}
	g_assert_false(result.reload_ran);
	g_assert_cmpint(result.reload_exit_code, ==, -1);
	g_assert_nonnull(result.reload_error);
	for (guint i = 0; i < result.capability_problems->len; i++)
		found |=
		    g_strcmp0(result.capability_problems->pdata[i], "guest-exec is disabled") == 0;
	g_assert_true(found);
	vc_guest_result_clear(&result);
	got = read_file(key_path);
	g_assert_cmpstr(got, ==, kpem);
	g_clear_pointer(&got, g_free);
	got = read_file(cert_path);
	g_assert_cmpstr(got, ==, cert);
	g_clear_pointer(&got, g_free);
	got = read_file(chain_path);
	g_assert_cmpstr(got, ==, chain);
	g_clear_pointer(&got, g_free);
	assert_mode_owner(q, key_path, 0600);  /* kept */
	assert_mode_owner(q, cert_path, 0644); /* qemu-ga's mode for a new file */
	assert_mode_owner(q, chain_path, 0644);
	assert_no_leftovers(q->target);

	/* a shorter certificate replaces a longer one whole (truncated) */
	d.cert_pem = cert2;
	d.key_pem = kpem2;
	d.method = VC_GUEST_METHOD_FILE_ONLY;
	d.reload_command = NULL;
	g_assert_true(vc_guest_deliver(channel, &d, &result, &error));
	g_assert_no_error(error);
	g_assert_true(result.verified[VC_GUEST_FILE_CERT]);
	g_assert_null(result.reload_error);
	vc_guest_result_clear(&result);
	got = read_file(cert_path);
	g_assert_cmpstr(got, ==, cert2);
	g_clear_pointer(&got, g_free);
	got = read_file(key_path);
	g_assert_cmpstr(got, ==, kpem2);
	assert_mode_owner(q, key_path, 0600);

	/* the check after an agent reconnect, without guest-exec: read back */
	{
		gboolean match = FALSE;
		g_autofree char *missing = target_path(q, "nothing.crt");
		g_assert_true(
		    vc_guest_check_files(channel, cert_path, cert2, key_path, &match, &error));
		g_assert_no_error(error);
		g_assert_true(match);
		g_assert_true(
		    vc_guest_check_files(channel, cert_path, cert, key_path, &match, &error));
		g_assert_no_error(error);
		g_assert_false(match);
		g_assert_true(
		    vc_guest_check_files(channel, missing, cert2, key_path, &match, &error));
		g_assert_no_error(error);
		g_assert_false(match);
		g_assert_true(
		    vc_guest_check_files(channel, cert_path, cert2, missing, &match, &error));
		g_assert_no_error(error);
		g_assert_false(match);
	}

	OPENSSL_cleanse(kpem, strlen(kpem));
	OPENSSL_cleanse(kpem2, strlen(kpem2));
	g_clear_pointer(&channel, vc_guest_channel_free);
	qga_stop(q);
}

/* Two deliveries at once on two threads, to two agents: no shared state. */
typedef struct {
	Qga *q;
	gboolean ok;
	char *cert;
} Worker;

static gpointer
worker_thread(gpointer data)
{
	Worker *w = data;
	g_autoptr(VcGuestChannel) channel = qga_channel(w->q);
	g_autofree char *cert_path = target_path(w->q, "vm.crt");
	g_autoptr(GError) error = NULL;
	VcGuestDelivery d = {.cert_pem = w->cert, .cert_path = cert_path};

	w->ok = TRUE;
	for (guint i = 0; w->ok && i < 5; i++) {
		VcGuestResult result;
		w->ok = vc_guest_deliver(channel, &d, &result, &error) && error == NULL &&
			result.duration_us > 0;
		vc_guest_result_clear(&result);
	}
	return NULL;
}

static void
test_qga_threads(void)
{
	g_autoptr(EVP_PKEY) key = make_key();
	Worker w[2] = {0};
	GThread *t[2];

	if (!qga_available())
		return;
	for (int i = 0; i < 2; i++) {
		w[i].q = qga_start(NULL);
		w[i].cert = make_cert(key, i == 0 ? "a.example.test" : "b.example.test", 0);
		t[i] = g_thread_new("worker", worker_thread, &w[i]);
	}
	for (int i = 0; i < 2; i++) {
		g_autofree char *path = target_path(w[i].q, "vm.crt");
		g_autofree char *got = NULL;

		g_thread_join(t[i]);
		g_assert_true(w[i].ok);
		got = read_file(path);
		g_assert_cmpstr(got, ==, w[i].cert);
		qga_stop(w[i].q);
		g_free(w[i].cert);
	}
}

/* With -m perf: N deliveries of a certificate, chain and key to the real
 * qemu-ga; prints p50/p95 (the numbers `virtcert-bench deliver` reports). */
#ifdef VC_TEST_SEAMS
static int
cmp_gint64(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
	return x < y ? -1 : x > y;
}
#endif

static void
test_qga_bench(void)
{
#ifdef VC_TEST_SEAMS
	Qga *q;
	g_autoptr(VcGuestChannel) channel = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) key = make_key();
	g_autofree char *kpem = key_pem(key);
	g_autofree char *cert = make_cert(key, "vm1.example.test", 0);
	g_autofree char *cert_path = NULL, *chain_path = NULL, *key_path = NULL;
	g_autoptr(GArray) durations = NULL;
	VcGuestDelivery d = {0};

	if (!g_test_perf()) {
		g_test_skip("a benchmark: run with -m perf");
		return;
	}
	if (!qga_available())
		return;
	q = qga_start(NULL);
	channel = qga_channel(q);
	cert_path = target_path(q, "vm.crt");
	chain_path = target_path(q, "chain.pem");
	key_path = target_path(q, "vm.key");
	d = (VcGuestDelivery){.cert_pem = cert,
			      .chain_pem = cert,
			      .key_pem = kpem,
			      .cert_path = cert_path,
			      .chain_path = chain_path,
			      .key_path = key_path};
	durations = vc_guest_bench_deliver(channel, &d, 50, &error);
	g_assert_no_error(error);
	g_array_sort(durations, cmp_gint64);
	g_test_minimized_result((double)g_array_index(durations, gint64, 25) / 1000.0,
				"delivery p50 %.1f ms, p95 %.1f ms (3 files, unix socket)",
				g_array_index(durations, gint64, 25) / 1000.0,
				g_array_index(durations, gint64, 47) / 1000.0);
	g_clear_pointer(&channel, vc_guest_channel_free);
	qga_stop(q);
#else
	g_test_skip("a bench helper: built with -Dtest_seams=false");
#endif
}

/* ---- /guest/hostile: a fake agent ---------------------------------------- */

#define SILENT "@silent"
#define HUGE_REPLY "@huge"

typedef struct {
	char *dir;
	char *sock;
	int listen_fd;
	GThread *thread;
	gint stop;
	gboolean sync_silent; /* never answer guest-sync-delimited */
	gboolean sync_flood;  /* answer it with endless junk, no 0xFF */
	GHashTable *replies;  /* command -> reply line (or SILENT, HUGE_REPLY) */
	gint served;	      /* commands other than sync received */
} Fake;

static void
fake_send(int fd, const char *data, gsize len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		data += n;
		len -= (gsize)n;
	}
}

static void
fake_answer(Fake *f, int fd, const char *line)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	JsonObject *obj;
	const char *cmd;
	const char *reply;

	while (*line == '\xff')
		line++;
	if (!json_parser_load_from_data(parser, line, -1, NULL) ||
	    !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)))
		return;
	obj = json_node_get_object(json_parser_get_root(parser));
	cmd = json_object_get_string_member_with_default(obj, "execute", "");
	if (strcmp(cmd, "guest-sync-delimited") == 0) {
		g_autofree char *r = NULL;
		if (f->sync_silent)
			return;
		if (f->sync_flood) {
			g_autofree char *junk = g_strnfill(65536, 'x');
			for (int i = 0; i < 64 && !g_atomic_int_get(&f->stop); i++)
				fake_send(fd, junk, strlen(junk));
			return;
		}
		r = g_strdup_printf("\xff{\"return\": %" G_GINT64_FORMAT "}\n",
				    json_object_get_int_member(
					json_object_get_object_member(obj, "arguments"), "id"));
		fake_send(fd, r, strlen(r));
		return;
	}
	g_atomic_int_inc(&f->served);
	reply = g_hash_table_lookup(f->replies, cmd);
	if (reply == NULL)
		reply =
		    "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"no such command\"}}";
	if (strcmp(reply, SILENT) == 0)
		return;
	if (strcmp(reply, HUGE_REPLY) == 0) {
		g_autofree char *chunk = g_strnfill(1024 * 1024, 'A');
		fake_send(fd, "{\"return\": \"", 12);
		for (int i = 0; i < 10; i++)
			fake_send(fd, chunk, strlen(chunk));
		fake_send(fd, "\"}\n", 3);
		return;
	}
	fake_send(fd, reply, strlen(reply));
	fake_send(fd, "\n", 1);
}

static gpointer
fake_thread(gpointer data)
{
	Fake *f = data;

	while (!g_atomic_int_get(&f->stop)) {
		struct pollfd pfd = {.fd = f->listen_fd, .events = POLLIN};
		g_autoptr(GString) line = g_string_new(NULL);
		int fd;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		fd = accept(f->listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		while (!g_atomic_int_get(&f->stop)) {
			char buf[512];
			ssize_t n;
			struct pollfd cfd = {.fd = fd, .events = POLLIN};

			if (poll(&cfd, 1, 50) <= 0)
				continue;
			n = recv(fd, buf, sizeof(buf), 0);
			if (n <= 0)
				break;
			for (ssize_t i = 0; i < n; i++) {
				if (buf[i] != '\n') {
					g_string_append_c(line, buf[i]);
					continue;
				}
				fake_answer(f, fd, line->str);
				g_string_truncate(line, 0);
			}
		}
		close(fd);
	}
	return NULL;
}

static Fake *
fake_start(void)
{
	Fake *f = g_new0(Fake, 1);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};

	f->dir = vc_test_dir_make("vc-guest-fake-XXXXXX");
	f->sock = g_build_filename(f->dir, "qga.sock", NULL);
	g_assert_cmpuint(strlen(f->sock), <, sizeof(addr.sun_path));
	strcpy(addr.sun_path, f->sock);
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	g_assert_cmpint(f->listen_fd, >=, 0);
	g_assert_cmpint(bind(f->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
	g_assert_cmpint(listen(f->listen_fd, 4), ==, 0);
	f->replies = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_hash_table_insert(f->replies, g_strdup("guest-ping"), g_strdup("{\"return\": {}}"));
	g_hash_table_insert(f->replies, g_strdup("guest-info"),
			    g_strdup("{\"return\": {\"version\": \"7.2\", \"supported_commands\": ["
				     "{\"name\": \"guest-file-open\", \"enabled\": true},"
				     "{\"name\": \"guest-file-write\", \"enabled\": true},"
				     "{\"name\": \"guest-file-close\", \"enabled\": true},"
				     "{\"name\": \"guest-file-seek\", \"enabled\": true},"
				     "{\"name\": \"guest-file-read\", \"enabled\": true},"
				     "{\"name\": \"guest-exec\", \"enabled\": true},"
				     "{\"name\": \"guest-exec-status\", \"enabled\": true}]}}"));
	f->thread = g_thread_new("fake-agent", fake_thread, f);
	return f;
}

static void
fake_set(Fake *f, const char *cmd, const char *reply)
{
	g_hash_table_insert(f->replies, g_strdup(cmd), g_strdup(reply));
}

static void
fake_stop(Fake *f)
{
	g_atomic_int_set(&f->stop, 1);
	g_thread_join(f->thread);
	close(f->listen_fd);
	vc_test_dir_remove(f->dir);
	g_hash_table_unref(f->replies);
	g_free(f->sock);
	g_free(f->dir);
	g_free(f);
}

static VcGuestChannel *
fake_channel(Fake *f)
{
	g_autoptr(GError) error = NULL;
	VcGuestChannel *channel = vc_guest_channel_new_socket(f->sock, &error);

	g_assert_no_error(error);
	return channel;
}

static const VcGuestDelivery *
fake_delivery(void)
{
	static const VcGuestDelivery d = {
	    .cert_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
	    .cert_path = "/etc/pki/vm.crt",
	    .timeout_s = 3,
	    .command_timeout_s = 1,
	};
	return &d;
}

/* Each refused with VC_ERROR_GUEST within the time cap. */
static void
assert_refused_delivery(Fake *f, const VcGuestDelivery *delivery, gint64 max_ms,
			const char *expect_in_message)
{
	g_autoptr(VcGuestChannel) channel = fake_channel(f);
	g_autoptr(GError) error = NULL;
	VcGuestDelivery d = *delivery;
	VcGuestMethod method = d.method;
	VcGuestResult result;
	gint64 start = g_get_monotonic_time();
	gint64 ms;

	g_assert_false(vc_guest_deliver(channel, &d, &result, &error));
	ms = (g_get_monotonic_time() - start) / 1000;
	g_assert_error(error, VC_ERROR, VC_ERROR_GUEST);
	/* the file-only way writes in place: a file read back wrong was
	 * written, but never verified */
	if (method == VC_GUEST_METHOD_EXEC)
		g_assert_false(result.delivered[VC_GUEST_FILE_CERT]);
	g_assert_false(result.verified[VC_GUEST_FILE_CERT]);
	vc_guest_result_clear(&result);
	if (expect_in_message != NULL && strstr(error->message, expect_in_message) == NULL)
		g_error("\"%s\" not in \"%s\"", expect_in_message, error->message);
	g_assert_cmpint(ms, <=, max_ms);
}

static void
assert_refused_method(Fake *f, VcGuestMethod method, gint64 max_ms, const char *expect_in_message)
{
	VcGuestDelivery d = *fake_delivery();

	d.method = method;
	assert_refused_delivery(f, &d, max_ms, expect_in_message);
}

static void
assert_refused(Fake *f, gint64 max_ms, const char *expect_in_message)
{
	assert_refused_method(f, VC_GUEST_METHOD_EXEC, max_ms, expect_in_message);
}

static void
test_hostile_garbage(void)
{
	Fake *f = fake_start();

	/* guest-exec, the first command of a delivery */
	fake_set(f, "guest-exec", "{{{ this is not json");
	assert_refused(f, 2000, "guest-exec: guest agent reply is not JSON");
	fake_set(f, "guest-exec", "[1, 2, 3]");
	assert_refused(f, 2000, "guest-exec: guest agent reply is not a JSON object");
	fake_set(f, "guest-exec",
		 "{\"error\": {\"class\": \"GenericError\", \"desc\": \"\\u001b[2Jboom\"}}");
	assert_refused(f, 2000, "?[2Jboom");
	fake_stop(f);

	/* guest-info, asked once guest-exec says it is blocked (the fake
	 * answers CommandNotFound to what it has no reply for) */
	f = fake_start();
	fake_set(f, "guest-info", "{{{ this is not json");
	assert_refused(f, 2000, "not JSON");
	fake_set(f, "guest-info", "[1, 2, 3]");
	assert_refused(f, 2000, "not a JSON object");
	fake_set(f, "guest-info", "{\"error\": \"\\u001b[31mred\"}");
	assert_refused(f, 2000, "error is not an object");
	/* the guest's words are quoted safely: no terminal escapes in our logs */
	fake_set(f, "guest-info",
		 "{\"error\": {\"class\": \"GenericError\", \"desc\": \"\\u001b[2Jboom\"}}");
	assert_refused(f, 2000, "?[2Jboom");
	fake_stop(f);
}

static void
test_hostile_huge(void)
{
	Fake *f = fake_start();

	fake_set(f, "guest-info", HUGE_REPLY);
	assert_refused(f, 3000, "larger than 65536 bytes");
	fake_set(f, "guest-exec", HUGE_REPLY);
	assert_refused(f, 3000, "larger than 65536 bytes");
	fake_stop(f);
}

static void
test_hostile_types(void)
{
	Fake *f = fake_start();

	fake_set(f, "guest-info", "{\"return\": \"string\"}");
	assert_refused(f, 2000, "expected type");
	fake_set(f, "guest-info", "{\"result\": {}}");
	assert_refused(f, 2000, "expected type");
	fake_set(f, "guest-info", "{\"return\": {\"supported_commands\": \"all\"}}");
	assert_refused(f, 2000, "supported_commands");
	fake_set(f, "guest-info",
		 "{\"return\": {\"supported_commands\": [{\"name\": 7, \"enabled\": true}]}}");
	assert_refused(f, 2000, "supported command lacks");
	fake_set(f, "guest-info", "{\"return\": {\"supported_commands\": []}}");
	assert_refused(f, 2000, "guest-exec");
	fake_stop(f);

	/* mistyped exec and file replies */
	f = fake_start();
	fake_set(f, "guest-exec", "{\"return\": {\"pid\": \"12\"}}");
	assert_refused(f, 2000, "\"pid\" is not an integer");
	fake_set(f, "guest-exec", "{\"return\": {\"pid\": 12}}");
	fake_set(f, "guest-exec-status", "{\"return\": {\"exited\": 1}}");
	assert_refused(f, 2000, "\"exited\" is not a boolean");
	fake_set(f, "guest-exec-status", "{\"return\": {\"exited\": true}}");
	assert_refused(f, 2000, "signal");
	fake_set(f, "guest-exec-status",
		 "{\"return\": {\"exited\": true, \"exitcode\": 0, \"out-data\": \"%%%%\"}}");
	assert_refused(f, 2000, "not base64");
	/* the one-exec delivery with a reload command: exit 0 but none of
	 * the lines it prints */
	fake_set(f, "guest-exec-status", "{\"return\": {\"exited\": true, \"exitcode\": 0}}");
	{
		VcGuestDelivery d = *fake_delivery();
		d.reload_command = "true";
		assert_refused_delivery(f, &d, 2000, "did not report /etc/pki/vm.crt installed");
	}
	fake_set(f, "guest-exec-status",
		 "{\"return\": {\"exited\": true, \"exitcode\": 1, \"err-data\": \"\"}}");
	assert_refused(f, 2000, "cannot install");
	/* the file-only way: mistyped file replies */
	fake_set(f, "guest-file-open", "{\"return\": {\"handle\": 5}}");
	assert_refused_method(f, VC_GUEST_METHOD_FILE_ONLY, 2000, "guest-file-open");
	fake_set(f, "guest-file-open", "{\"return\": 5}");
	fake_set(f, "guest-file-write", "{\"return\": {\"count\": 1, \"eof\": false}}");
	fake_set(f, "guest-file-close", "{\"return\": {}}");
	assert_refused_method(f, VC_GUEST_METHOD_FILE_ONLY, 2000, "wrote 1 of");
	fake_stop(f);
}

/* The file-only way's read-back: every reply of guest-file-seek and
 * guest-file-read is typed and capped, and what comes back must be what was
 * written. */
static void
test_hostile_file_only(void)
{
	Fake *f = fake_start();
	const char *pem = fake_delivery()->cert_pem;
	gsize len = strlen(pem);
	g_autofree char *count =
	    g_strdup_printf("{\"return\": {\"count\": %zu, \"eof\": false}}", len);
	g_autofree char *b64 = g_base64_encode((const guchar *)pem, len);
	g_autofree char *good = g_strdup_printf(
	    "{\"return\": {\"count\": %zu, \"buf-b64\": \"%s\", \"eof\": true}}", len, b64);
	g_autofree char *miscount = g_strdup_printf(
	    "{\"return\": {\"count\": 3, \"buf-b64\": \"%s\", \"eof\": true}}", b64);
	g_autofree char *twice = g_strconcat(pem, pem, NULL);
	g_autofree char *b64_twice = g_base64_encode((const guchar *)twice, 2 * len);
	g_autofree char *longer =
	    g_strdup_printf("{\"return\": {\"count\": %zu, \"buf-b64\": \"%s\", \"eof\": true}}",
			    2 * len, b64_twice);
	g_autofree char *other = g_strdup(pem);
	g_autofree char *b64_other = NULL;
	g_autofree char *wrong = NULL;

	other[len - 2] = 'x';
	b64_other = g_base64_encode((const guchar *)other, len);
	wrong = g_strdup_printf(
	    "{\"return\": {\"count\": %zu, \"buf-b64\": \"%s\", \"eof\": true}}", len, b64_other);
	fake_set(f, "guest-file-open", "{\"return\": 5}");
	fake_set(f, "guest-file-write", count);
	fake_set(f, "guest-file-close", "{\"return\": {}}");
	fake_set(f, "guest-file-seek", "{\"return\": {\"position\": 0, \"eof\": false}}");

	/* sanity: the well-formed replies deliver */
	fake_set(f, "guest-file-read", good);
	{
		g_autoptr(VcGuestChannel) channel = fake_channel(f);
		g_autoptr(GError) error = NULL;
		VcGuestDelivery d = *fake_delivery();
		VcGuestResult result;

		d.method = VC_GUEST_METHOD_FILE_ONLY;
		d.reload_command = "true";
		g_assert_true(vc_guest_deliver(channel, &d, &result, &error));
		g_assert_no_error(error);
		g_assert_true(result.file_only);
		g_assert_true(result.verified[VC_GUEST_FILE_CERT]);
		g_assert_false(result.reload_ran);
		g_assert_nonnull(result.reload_error);
		vc_guest_result_clear(&result);
	}

	fake_set(f, "guest-file-seek", "{\"return\": 0}");
	assert_refused_method(f, VC_GUEST_METHOD_FILE_ONLY, 2000, "expected type");
	fake_set(f, "guest-file-seek", "{\"return\": {\"position\": 0, \"eof\": false}}");
	fake_set(f, "guest-file-read",
		 "{\"return\": {\"count\": 0, \"buf-b64\": 7, \"eof\": true}}");
	assert_refused_method(f, VC_GUEST_METHOD_FILE_ONLY, 2000, "\"buf-b64\" is not a string");
	fake_set(f, "guest-file-read", "{\"return\": {\"count\": 0, \"buf-b64\": \"\"}}");
	assert_refused_method(f, VC_GUEST_METHOD_FILE_ONLY, 2000, "lacks \"eof\"");
	fake_set(f, "guest-file-read",
		 "{\"return\": {\"count\": 0, \"buf-b64\": \"\", \"eof\": false}}");
	assert_refused_method(f, VC_GUEST_METHOD_FILE_ONLY, 2000, "no end of file");
	fake_set(f, "guest-file-read", miscount);
	assert_refused_method(f, VC_GUEST_METHOD_FILE_ONLY, 2000, "\"count\" is 3");
	/* more than was asked for (the written length + 1): refused unread */
	fake_set(f, "guest-file-read", longer);
	assert_refused_method(f, VC_GUEST_METHOD_FILE_ONLY, 2000, "larger than");
	fake_set(f, "guest-file-read", wrong);
	assert_refused_method(f, VC_GUEST_METHOD_FILE_ONLY, 2000, "SHA-256");
	fake_set(f, "guest-file-read", HUGE_REPLY);
	assert_refused_method(f, VC_GUEST_METHOD_FILE_ONLY, 3000, "larger than 65536 bytes");

	/* an agent without guest-file-read: refused, nothing opened */
	fake_set(f, "guest-info",
		 "{\"return\": {\"supported_commands\": ["
		 "{\"name\": \"guest-file-open\", \"enabled\": true},"
		 "{\"name\": \"guest-file-write\", \"enabled\": true},"
		 "{\"name\": \"guest-file-close\", \"enabled\": true},"
		 "{\"name\": \"guest-file-seek\", \"enabled\": true},"
		 "{\"name\": \"guest-file-read\", \"enabled\": false}]}}");
	g_atomic_int_set(&f->served, 0);
	assert_refused_method(f, VC_GUEST_METHOD_FILE_ONLY, 2000, "guest-file-read");
	g_assert_cmpint(g_atomic_int_get(&f->served), ==, 1);
	/* neither way: the fix named is allowing guest-exec (guest-exec
	 * answers that it is blocked, guest-info says what else is) */
	assert_refused_method(f, VC_GUEST_METHOD_AUTO, 2000, "blocks guest-exec");
	g_assert_cmpint(g_atomic_int_get(&f->served), ==, 3);
	fake_stop(f);
}

/* Contents over VC_GUEST_INLINE_MAX are written with guest-file-write and
 * read back with sha256sum: every step "succeeds" but the digest read back
 * is not the content's. Two contents of one write chunk each (36 KiB), so
 * that one guest-file-write reply fits both. */
static void
test_hostile_digest(void)
{
	Fake *f = fake_start();
	g_autofree char *zeros = g_strnfill(64, '0');
	g_autofree char *line = g_strconcat(zeros, "  a\n", zeros, "  b\n", NULL);
	g_autofree char *b64 = g_base64_encode((const guchar *)line, strlen(line));
	g_autofree char *wrong = g_strdup_printf(
	    "{\"return\": {\"exited\": true, \"exitcode\": 0, \"out-data\": \"%s\"}}", b64);
	g_autofree char *big = g_strnfill(36 * 1024, 'A');
	g_autofree char *count =
	    g_strdup_printf("{\"return\": {\"count\": %zu, \"eof\": false}}", strlen(big));
	VcGuestDelivery d = *fake_delivery();

	d.cert_pem = big;
	d.chain_pem = big;
	d.chain_path = "/etc/pki/chain.pem";
	g_assert_cmpuint(2 * strlen(big), >, VC_GUEST_INLINE_MAX);
	fake_set(f, "guest-exec", "{\"return\": {\"pid\": 12}}");
	fake_set(f, "guest-exec-status", wrong);
	fake_set(f, "guest-file-open", "{\"return\": 5}");
	fake_set(f, "guest-file-write", count);
	fake_set(f, "guest-file-close", "{\"return\": {}}");
	assert_refused_delivery(f, &d, 2000, "SHA-256");
	fake_stop(f);
}

/* The whole delivery, reload included, is one guest-exec: guest-exec,
 * then guest-exec-status until it exited (no guest-info while guest-exec is
 * allowed). What the script says is checked: its "installed" lines, the
 * reload's status line, a content it found cut (exit 4: nothing installed). */
static void
test_hostile_one_exec(void)
{
	Fake *f = fake_start();
	const VcGuestDelivery *base = fake_delivery();
	const char *out = "installed req\nreload 5\n";
	g_autofree char *b64 = g_base64_encode((const guchar *)out, strlen(out));
	g_autofree char *status = g_strdup_printf(
	    "{\"return\": {\"exited\": true, \"exitcode\": 0, \"out-data\": \"%s\"}}", b64);
	g_autofree char *no_reload = g_strdup("installed req\n");
	g_autofree char *b64_no_reload =
	    g_base64_encode((const guchar *)no_reload, strlen(no_reload));
	g_autofree char *status_no_reload = g_strdup_printf(
	    "{\"return\": {\"exited\": true, \"exitcode\": 0, \"out-data\": \"%s\"}}",
	    b64_no_reload);
	const char *cut = "the content of vm.crt arrived with 10 of 52 bytes";
	g_autofree char *err = g_base64_encode((const guchar *)cut, strlen(cut));
	g_autofree char *mismatch = g_strdup_printf(
	    "{\"return\": {\"exited\": true, \"exitcode\": 4, \"err-data\": \"%s\"}}", err);

	fake_set(f, "guest-exec", "{\"return\": {\"pid\": 12}}");
	fake_set(f, "guest-exec-status", status);
	{
		g_autoptr(VcGuestChannel) channel = fake_channel(f);
		g_autoptr(GError) error = NULL;
		VcGuestDelivery d = *base;
		VcGuestResult result;

		d.reload_command = "systemctl reload-or-restart nginx";
		g_atomic_int_set(&f->served, 0);
		g_assert_true(vc_guest_deliver(channel, &d, &result, &error));
		g_assert_no_error(error);
		g_assert_true(result.delivered[VC_GUEST_FILE_CERT]);
		g_assert_true(result.verified[VC_GUEST_FILE_CERT]);
		g_assert_true(result.reload_ran);
		g_assert_cmpint(result.reload_exit_code, ==, 5);
		vc_guest_result_clear(&result);
		/* guest-exec, one guest-exec-status */
		g_assert_cmpint(g_atomic_int_get(&f->served), ==, 2);
	}
	/* a reload asked for, no status line: refused */
	fake_set(f, "guest-exec-status", status_no_reload);
	{
		g_autoptr(VcGuestChannel) channel = fake_channel(f);
		g_autoptr(GError) error = NULL;
		VcGuestDelivery d = *base;
		VcGuestResult result;

		d.reload_command = "true";
		g_assert_false(vc_guest_deliver(channel, &d, &result, &error));
		g_assert_error(error, VC_ERROR, VC_ERROR_GUEST);
		g_assert_nonnull(strstr(error->message, "reload"));
		vc_guest_result_clear(&result);
	}
	fake_set(f, "guest-exec-status", mismatch);
	assert_refused(f, 2000, "arrived with 10 of 52 bytes); nothing was installed");
	fake_stop(f);
}

static void
test_hostile_timeouts(void)
{
	Fake *f = fake_start();
	g_autoptr(VcGuestChannel) channel = fake_channel(f);
	g_autoptr(GError) error = NULL;
	gint64 start;

	/* a command never answered: the per-command cap */
	fake_set(f, "guest-ping", SILENT);
	start = g_get_monotonic_time();
	g_assert_false(vc_guest_ping(channel, 1, &error));
	g_assert_error(error, VC_ERROR, VC_ERROR_GUEST);
	g_assert_cmpint(g_get_monotonic_time() - start, <, 2 * G_USEC_PER_SEC);
	g_clear_error(&error);
	/* the fake serves one connection at a time */
	g_clear_pointer(&channel, vc_guest_channel_free);
	fake_set(f, "guest-exec", SILENT);
	assert_refused(f, 2000, "guest-exec: guest agent did not answer in time");
	/* and guest-info, asked when guest-exec is blocked */
	fake_set(f, "guest-exec", "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"x\"}}");
	fake_set(f, "guest-info", SILENT);
	assert_refused(f, 2000, "guest-info: guest agent did not answer in time");

	/* a process that never exits: the per-delivery cap (3 s) */
	fake_stop(f);
	f = fake_start();
	fake_set(f, "guest-exec", "{\"return\": {\"pid\": 12}}");
	fake_set(f, "guest-exec-status", "{\"return\": {\"exited\": false}}");
	assert_refused(f, 4000, "took longer than 3 s");
	fake_stop(f);

	/* no answer to the resynchronization either */
	f = fake_start();
	f->sync_silent = TRUE;
	assert_refused(f, 2000, "in time");
	g_assert_cmpint(g_atomic_int_get(&f->served), ==, 0);
	fake_stop(f);

	/* junk instead of the sync's 0xFF: capped in bytes */
	f = fake_start();
	f->sync_flood = TRUE;
	assert_refused(f, 2000, "guest-sync-delimited");
	fake_stop(f);
}

static void
test_hostile_csr(void)
{
	Fake *f = fake_start();
	g_autoptr(VcGuestChannel) channel = fake_channel(f);
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) key = NULL;
	g_autofree char *big = g_strnfill(12000, 'A');
	g_autofree char *reply = g_strdup_printf(
	    "{\"return\": {\"exited\": true, \"exitcode\": 0, \"out-data\": \"%s\"}}", big);
	g_autofree char *junk = g_base64_encode((const guchar *)"not a CSR\n", 10);
	g_autofree char *reply2 = g_strdup_printf(
	    "{\"return\": {\"exited\": true, \"exitcode\": 0, \"out-data\": \"%s\"}}", junk);

	fake_set(f, "guest-exec", "{\"return\": {\"pid\": 12}}");
	fake_set(f, "guest-exec-status", reply);
	key = vc_guest_make_csr(channel, "/etc/pki/vm.key", VC_KEY_TYPE_EC_P256, NULL, &error);
	g_assert_null(key);
	g_assert_error(error, VC_ERROR, VC_ERROR_GUEST);
	g_assert_nonnull(strstr(error->message, "larger than 8192"));
	g_clear_error(&error);

	fake_set(f, "guest-exec-status", reply2);
	key = vc_guest_make_csr(channel, "/etc/pki/vm.key", VC_KEY_TYPE_EC_P256, NULL, &error);
	g_assert_null(key);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_clear_error(&error);

	fake_set(f, "guest-exec-status",
		 "{\"return\": {\"exited\": true, \"exitcode\": 1, \"err-data\": \"Ym9vbQ==\"}}");
	key = vc_guest_make_csr(channel, "/etc/pki/vm.key", VC_KEY_TYPE_EC_P256, NULL, &error);
	g_assert_null(key);
	g_assert_error(error, VC_ERROR, VC_ERROR_GUEST);
	g_assert_nonnull(strstr(error->message, "exit 1): boom"));
	fake_stop(f);
}

/* ---- /guest/csr ---------------------------------------------------------- */

static char *
make_csr_pem(EVP_PKEY *sign_key, EVP_PKEY *pub_key)
{
	g_autoptr(X509_REQ) req = X509_REQ_new();
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
	char *data;
	long len;

	X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
				   (const unsigned char *)"virtcert", -1, -1, 0);
	X509_REQ_set_pubkey(req, sign_key);
	g_assert_cmpint(X509_REQ_sign(req, sign_key, EVP_sha256()), >, 0);
	if (pub_key != sign_key)
		X509_REQ_set_pubkey(req, pub_key); /* signature no longer matches */
	g_assert_cmpint(PEM_write_bio_X509_REQ(bio, req), ==, 1);
	len = BIO_get_mem_data(bio, &data);
	return g_strndup(data, (gsize)len);
}

static void
test_csr_parse(void)
{
	g_autoptr(EVP_PKEY) key = make_key();
	g_autoptr(EVP_PKEY) other = make_key();
	g_autoptr(EVP_PKEY) p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	g_autoptr(EVP_PKEY) got = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *good = make_csr_pem(key, key);
	g_autofree char *forged = make_csr_pem(key, other);
	g_autofree char *weak = make_csr_pem(p384, p384);
	g_autofree char *big = g_strnfill(VC_GUEST_CSR_MAX + 1, 'A');
	g_autofree char *truncated = g_strndup(good, strlen(good) / 2);

	got = vc_guest_csr_public_key(good, strlen(good), &error);
	g_assert_no_error(error);
	g_assert_cmpint(EVP_PKEY_eq(got, key), ==, 1);
	g_clear_pointer(&got, EVP_PKEY_free);

	got = vc_guest_csr_public_key(forged, strlen(forged), &error);
	g_assert_error(error, VC_ERROR, VC_ERROR_CRYPTO);
	g_assert_null(got);
	g_clear_error(&error);
	got = vc_guest_csr_public_key(weak, strlen(weak), &error);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_clear_error(&error);
	got = vc_guest_csr_public_key(big, strlen(big), &error);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_clear_error(&error);
	got = vc_guest_csr_public_key(truncated, strlen(truncated), &error);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_clear_error(&error);
	got = vc_guest_csr_public_key("", 0, &error);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_clear_error(&error);
	/* the length is honoured: no NUL needed, nothing read past it */
	got = vc_guest_csr_public_key(good, strlen(good) - 30, &error);
	g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
	g_clear_error(&error);

	/* red-team finding 6: RSA means RSA-3072, the one size a policy asks
	 * for; a guest's RSA-2048 CSR is not an rsa-3072 key */
	{
		g_autoptr(EVP_PKEY) rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		g_autoptr(EVP_PKEY) rsa3072 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
		g_autofree char *small = make_csr_pem(rsa2048, rsa2048);
		g_autofree char *right = make_csr_pem(rsa3072, rsa3072);

		got = vc_guest_csr_public_key(small, strlen(small), &error);
		g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
		g_assert_nonnull(strstr(error->message, "2048 bits"));
		g_assert_nonnull(strstr(error->message, "RSA-3072"));
		g_assert_null(got);
		g_clear_error(&error);
		got = vc_guest_csr_public_key(right, strlen(right), &error);
		g_assert_no_error(error);
		g_assert_cmpint(EVP_PKEY_eq(got, rsa3072), ==, 1);
	}
}

/* ---- the libvirt channel ------------------------------------------------- */

static void
test_libvirt_channel(void)
{
	virConnectPtr conn = virConnectOpen("test:///default");
	g_autoptr(VcGuestChannel) channel = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *reply = NULL;

	g_assert_nonnull(conn);
	channel =
	    vc_guest_channel_new_libvirt(conn, "00000000-0000-0000-0000-000000000001", &error);
	g_assert_error(error, VC_ERROR, VC_ERROR_NOT_FOUND);
	g_assert_null(channel);
	g_clear_error(&error);

	/* the test driver's "test" domain: it has no agent */
	channel =
	    vc_guest_channel_new_libvirt(conn, "6695eb01-f6a4-8304-79aa-97f2502e193f", &error);
	g_assert_no_error(error);
	virConnectClose(conn); /* the channel holds its own reference */
	g_assert_cmpuint(vc_guest_channel_get_max_reply(channel), ==,
			 VC_GUEST_CHANNEL_MAX_REPLY_DEFAULT);
	reply = vc_guest_channel_exec(channel, "{\"execute\": \"guest-ping\"}", 1, &error);
	g_assert_null(reply);
	g_assert_nonnull(error);
	g_assert_true(error->domain == VC_ERROR);
	g_assert_false(vc_guest_ping(channel, 1, NULL));
}

static void
silence_libvirt(void *data, virErrorPtr err)
{
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	virSetErrorFunc(NULL, silence_libvirt);
	signal(SIGPIPE, SIG_IGN);

	g_test_add_func("/guest/qga/deliver", test_qga_deliver);
	g_test_add_func("/guest/qga/redeliver", test_qga_redeliver);
	g_test_add_func("/guest/qga/hostile-names", test_qga_hostile_names);
	g_test_add_data_func("/guest/qga/keygen/ec", GINT_TO_POINTER(VC_KEY_TYPE_EC_P256),
			     test_qga_keygen);
	g_test_add_data_func("/guest/qga/keygen/ed25519", GINT_TO_POINTER(VC_KEY_TYPE_ED25519),
			     test_qga_keygen);
	g_test_add_data_func("/guest/qga/keygen/rsa", GINT_TO_POINTER(VC_KEY_TYPE_RSA_3072),
			     test_qga_keygen);
	g_test_add_func("/guest/qga/staging", test_qga_staging);
	g_test_add_func("/guest/qga/blocked", test_qga_blocked);
	g_test_add_func("/guest/qga/file-only", test_qga_file_only);
	g_test_add_func("/guest/qga/check-agent", test_qga_check_agent);
	g_test_add_func("/guest/qga/threads", test_qga_threads);
	g_test_add_func("/guest/qga/bench", test_qga_bench);
	g_test_add_func("/guest/hostile/garbage", test_hostile_garbage);
	g_test_add_func("/guest/hostile/huge", test_hostile_huge);
	g_test_add_func("/guest/hostile/types", test_hostile_types);
	g_test_add_func("/guest/hostile/digest", test_hostile_digest);
	g_test_add_func("/guest/hostile/file-only", test_hostile_file_only);
	g_test_add_func("/guest/hostile/one-exec", test_hostile_one_exec);
	g_test_add_func("/guest/hostile/timeouts", test_hostile_timeouts);
	g_test_add_func("/guest/hostile/csr", test_hostile_csr);
	g_test_add_func("/guest/csr/parse", test_csr_parse);
	g_test_add_func("/guest/libvirt/channel", test_libvirt_channel);
	return g_test_run();
}
