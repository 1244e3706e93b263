/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* CA fixtures for the unit tests that issue or verify: the VM CA and the
 * host CA, made by the code under test in a temporary directory. Kept
 * apart from vc-test-util so that a test of policy/ links no CA code. */

#include "vc-ca.h"
#include "vc-host.h"
#include "vc-test-util.h"

G_BEGIN_DECLS

/* The dNSName subtree a test CA permits when the test names none. */
#define VC_TEST_CA_PERMIT "vms.example.com"

/* Makes a self-signed TYPE CA in CA_DIR permitting PERMIT (NULL:
 * VC_TEST_CA_PERMIT). */
void vc_test_ca_init(const char *ca_dir, VcKeyType type, const char *const *permit);

/* A temporary directory DIR holding a self-signed VM CA in DIR/ca. */
typedef struct {
	char *dir;
	char *ca_dir;
	VcCa *ca;
} VcTestCa;

/* Makes DIR (named after PREFIX, "vc-thing") and a TYPE CA in DIR/ca
 * permitting VC_TEST_CA_PERMIT, and loads it. */
VcTestCa *vc_test_ca_new(const char *prefix, VcKeyType type);
/* Frees the CA and removes DIR with all in it. */
void vc_test_ca_free(VcTestCa *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VcTestCa, vc_test_ca_free)

/* Makes a host CA named COMMON_NAME in DIR, with the default key type. */
void vc_test_host_ca_init(const char *dir, const char *common_name);
/* The PEM certificate request at PATH, or NULL if it does not parse. */
X509_REQ *vc_test_csr_load(const char *path);
/* Has the host CA in CA_DIR sign the request at CSR_PATH for [NOT_BEFORE,
 * NOT_AFTER] (unix seconds), as `virtcert host-ca sign`, and writes the
 * certificate (PEM, 0644) to OUT. */
void vc_test_host_ca_sign(const char *ca_dir, const char *csr_path, gint64 not_before,
			  gint64 not_after, const char *out);

/* Has the host CA in CA_DIR sign the public key and subject of the request
 * at CSR_PATH with exactly the extensions EXTS (NULL-terminated pairs of an
 * extension's short name and its openssl.cnf value, e.g.
 * "basicConstraints", "critical,CA:TRUE"), valid from a minute ago for a
 * day, and writes it (PEM) to OUT: host certificates `virtcert host-ca
 * sign` would never make. */
void vc_test_host_ca_sign_custom(const char *ca_dir, const char *csr_path, const char *const *exts,
				 const char *out);

G_END_DECLS
