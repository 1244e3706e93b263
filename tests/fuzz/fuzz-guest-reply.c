/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Guest agent replies are written by the guest: hostile input for every
 * parser of vc-guest.c (guest-info, guest-exec, guest-exec-status with its
 * base64 output, guest-file-open/write/seek/read/close, the "installed" and
 * sha256sum lines, the guest's CSR). The target plays the agent: a channel
 * (the VcGuestChannelClass interface the libvirt and socket channels
 * implement) answers each command with the next line of the input, and a
 * whole delivery, guest keygen or file check runs against those answers.
 *
 * Input: one byte choosing the scenario, then the agent's replies, one per
 * line (qemu-ga writes one JSON text per line). Seeds are real qemu-ga
 * replies, recorded by this file built with -DVC_FUZZ_GUEST_RECORD
 * (fuzz-guest-reply-record SOCKET SCENARIO OUT, docs/testing.md). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "vc-error.h"
#include "vc-guest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* where the scenarios put files (in a recording: on the machine qemu-ga
 * runs on, as its user) */
#define FUZZ_DIR "/tmp/vc-fuzz-guest"
/* more replies than any scenario needs with a well-behaved agent; a guest
 * that keeps answering "not exited" is cut off here (a real RSA keygen
 * polls some 170 times) */
#define FUZZ_MAX_REPLIES 256

enum {
	SCENARIO_DELIVER,	 /* cert + chain + key, reload command: one guest-exec */
	SCENARIO_DELIVER_STAGED, /* guest keygen: cert, staged key, method auto */
	SCENARIO_DELIVER_FILES,	 /* file-only: guest-file-* only */
	SCENARIO_DELIVER_LARGE,	 /* > 64 KiB: guest-file-write between two guest-execs */
	SCENARIO_CSR_EC,
	SCENARIO_CSR_RSA,
	SCENARIO_CSR_ED25519,
	SCENARIO_CHECK_FILES,
	SCENARIO_PING,
	N_SCENARIOS,
};

static const char cert_pem[] = "-----BEGIN CERTIFICATE-----\nMIIBfuzz\n-----END CERTIFICATE-----\n";
static const char chain_pem[] = "-----BEGIN CERTIFICATE-----\nMIIBchain\n-----END "
				"CERTIFICATE-----\n";
static const char key_pem[] = "-----BEGIN PRIVATE KEY-----\nMIGHkey\n-----END PRIVATE KEY-----\n";

static void
report(guint scenario, const GError *error)
{
	if (g_getenv("VC_FUZZ_VERBOSE") != NULL)
		g_printerr("scenario %u: %s\n", scenario, error != NULL ? error->message : "ok");
}

static void
run_scenario(VcGuestChannel *channel, guint scenario)
{
	g_autoptr(GError) error = NULL;
	VcGuestDelivery d = {
	    .cert_pem = cert_pem,
	    .cert_path = FUZZ_DIR "/tls/cert.pem",
	    .command_timeout_s = 5,
	};
	VcGuestResult result;
	g_autofree char *large = NULL;
	g_autofree char *csr = NULL;
	EVP_PKEY *key = NULL;
	gboolean match = FALSE;

	switch (scenario) {
	case SCENARIO_DELIVER:
	case SCENARIO_DELIVER_FILES:
	case SCENARIO_DELIVER_LARGE:
		d.chain_pem = chain_pem;
		d.chain_path = FUZZ_DIR "/tls/chain.pem";
		d.key_pem = key_pem;
		d.key_path = FUZZ_DIR "/tls/key.pem";
		d.reload_command = "true";
		if (scenario == SCENARIO_DELIVER_FILES)
			d.method = VC_GUEST_METHOD_FILE_ONLY;
		if (scenario == SCENARIO_DELIVER_LARGE) {
			/* over VC_GUEST_INLINE_MAX and over one write chunk */
			GString *s = g_string_new(cert_pem);
			while (s->len <= VC_GUEST_INLINE_MAX)
				g_string_append(s, chain_pem);
			large = g_string_free(s, FALSE);
			d.chain_pem = large;
		}
		break;
	case SCENARIO_DELIVER_STAGED:
		d.key_path = FUZZ_DIR "/tls/key.pem";
		d.method = VC_GUEST_METHOD_AUTO;
		break;
	default:
		break;
	}

	switch (scenario) {
	case SCENARIO_DELIVER:
	case SCENARIO_DELIVER_STAGED:
	case SCENARIO_DELIVER_FILES:
	case SCENARIO_DELIVER_LARGE:
		if (vc_guest_deliver(channel, &d, &result, &error)) {
			/* a delivery that succeeded read back what was sent */
			g_assert(result.delivered[VC_GUEST_FILE_CERT]);
			g_assert(result.verified[VC_GUEST_FILE_CERT]);
		} else {
			g_assert(error != NULL && error->message != NULL);
		}
		vc_guest_result_clear(&result);
		break;
	case SCENARIO_CSR_EC:
	case SCENARIO_CSR_RSA:
	case SCENARIO_CSR_ED25519: {
		VcKeyType type = scenario == SCENARIO_CSR_EC	? VC_KEY_TYPE_EC_P256
				 : scenario == SCENARIO_CSR_RSA ? VC_KEY_TYPE_RSA_3072
								: VC_KEY_TYPE_ED25519;
		key = vc_guest_make_csr(channel, FUZZ_DIR "/tls/key.pem.virtcert-new", type, &csr,
					&error);
		if (key != NULL) {
			/* what the guest sent passes the check on its own too */
			EVP_PKEY *again = vc_guest_csr_public_key(csr, strlen(csr), NULL);
			g_assert(again != NULL);
			g_assert(EVP_PKEY_eq(key, again) == 1);
			EVP_PKEY_free(again);
			EVP_PKEY_free(key);
		} else {
			g_assert(error != NULL);
		}
		break;
	}
	case SCENARIO_CHECK_FILES:
		if (!vc_guest_check_files(channel, FUZZ_DIR "/tls/cert.pem", cert_pem,
					  FUZZ_DIR "/tls/key.pem", &match, &error))
			g_assert(error != NULL);
		break;
	case SCENARIO_PING:
	default:
		if (!vc_guest_ping(channel, 5, &error))
			g_assert(error != NULL);
		break;
	}
	report(scenario, error);
}

#ifndef VC_FUZZ_GUEST_RECORD

/* The agent's answers: one line of the input per command. */
typedef struct {
	VcGuestChannel parent;
	const char *data;
	gsize len;
	gsize off;
	guint n;
} FuzzChannel;

static char *
fuzz_channel_exec(VcGuestChannel *channel, const char *json_command, int timeout_s, gsize max_reply,
		  GError **error)
{
	FuzzChannel *self = (FuzzChannel *)channel;
	g_autoptr(JsonParser) parser = json_parser_new();
	const char *start, *nl;
	gsize len;

	/* what virtcert sends is always one well-formed command */
	g_assert(json_parser_load_from_data(parser, json_command, -1, NULL));
	g_assert(JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)));
	if (self->off >= self->len || ++self->n > FUZZ_MAX_REPLIES) {
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST, "agent gone (end of input)");
		return NULL;
	}
	start = self->data + self->off;
	nl = memchr(start, '\n', self->len - self->off);
	len = nl != NULL ? (gsize)(nl - start) : self->len - self->off;
	self->off += len + (nl != NULL ? 1 : 0);
	/* the real channels refuse a reply over the cap without keeping it */
	if (len > max_reply) {
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST, "reply larger than %" G_GSIZE_FORMAT,
			    max_reply);
		return NULL;
	}
	return g_strndup(start, len);
}

static const VcGuestChannelClass fuzz_channel_class = {fuzz_channel_exec, NULL};

/* vc-guest.c sleeps between guest-exec-status polls (a few ms): time is
 * not what this target explores, so the fuzzer does not wait (the symbol
 * in the executable takes precedence over GLib's). */
void
g_usleep(gulong microseconds)
{
	(void)microseconds;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(VcGuestChannel) channel = NULL;
	FuzzChannel *self;

	if (size < 1)
		return 0;
	channel = vc_guest_channel_alloc(&fuzz_channel_class, sizeof(FuzzChannel));
	self = (FuzzChannel *)channel;
	self->data = (const char *)data + 1;
	self->len = size - 1;
	run_scenario(channel, data[0] % N_SCENARIOS);
	return 0;
}

#else /* VC_FUZZ_GUEST_RECORD */

/* Records a seed: runs SCENARIO against a real qemu-ga on SOCKET and writes
 * the scenario byte and every reply, one per line, to OUT. */
typedef struct {
	VcGuestChannel parent;
	VcGuestChannel *real;
	GString *out;
} RecordChannel;

static char *
record_channel_exec(VcGuestChannel *channel, const char *json_command, int timeout_s,
		    gsize max_reply, GError **error)
{
	RecordChannel *self = (RecordChannel *)channel;
	char *reply = vc_guest_channel_exec(self->real, json_command, timeout_s, error);

	if (reply != NULL) {
		g_assert(strchr(reply, '\n') == NULL);
		g_string_append_printf(self->out, "%s\n", reply);
	}
	return reply;
}

static void
record_channel_finalize(VcGuestChannel *channel)
{
	vc_guest_channel_free(((RecordChannel *)channel)->real);
}

static const VcGuestChannelClass record_channel_class = {record_channel_exec,
							 record_channel_finalize};

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VcGuestChannel) channel = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	RecordChannel *self;
	guint scenario;

	if (argc != 4) {
		g_printerr("usage: %s SOCKET SCENARIO(0-%d) OUT\n", argv[0], N_SCENARIOS - 1);
		return 2;
	}
	scenario = (guint)g_ascii_strtoull(argv[2], NULL, 10);
	channel = vc_guest_channel_alloc(&record_channel_class, sizeof(RecordChannel));
	self = (RecordChannel *)channel;
	self->real = vc_guest_channel_new_socket(argv[1], &error);
	if (self->real == NULL) {
		g_printerr("%s\n", error->message);
		return 1;
	}
	self->out = out;
	g_string_append_c(out, (char)scenario);
	run_scenario(channel, scenario);
	if (!g_file_set_contents(argv[3], out->str, (gssize)out->len, &error)) {
		g_printerr("%s\n", error->message);
		return 1;
	}
	return 0;
}

#endif /* VC_FUZZ_GUEST_RECORD */
