/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The delivery protocol over a VcGuestChannel. The agent's commands are
 * those of QEMU's qga/qapi-schema.json; the guest is hostile: every reply is
 * parsed with strict types, every size and every wait is capped.
 *
 * Shell use: the scripts run with guest-exec are constants; paths, owner and
 * modes reach them as positional parameters ("$1"...), never inside the
 * script text, so nothing from policy is ever parsed by the guest's shell;
 * contents reach script_deliver as environment variables, only expanded
 * inside double quotes or assignments. script_deliver keeps lists of those
 * paths in variables and expands them unquoted, split on newlines only
 * (IFS), with globbing off (set -f): a path has no control character
 * (vc_guest_path_is_valid()), so each is one word whatever else it holds. */
#include "vc-guest.h"

#include <json-glib/json-glib.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

#include "vc-autoptr.h"
#include "vc-error.h"
#include "vc-json-text.h"

/* guest-file-write takes base64; 36 KiB of data is 48 KiB of base64 */
#define VC_GUEST_WRITE_CHUNK (36 * 1024)
/* output read back from a guest-exec: digests and diagnostics */
#define VC_GUEST_SMALL_OUTPUT 4096
/* longest sleep between guest-exec-status polls in a process's first second */
#define VC_GUEST_POLL_FAST_MAX_US 10000
/* longest wait before the first guest-exec-status poll */
#define VC_GUEST_POLL_FIRST_MAX_US 50000
/* bytes of a guest's own words (error desc, stderr) put into our messages */
#define VC_GUEST_QUOTE_MAX 200

#define VC_GUEST_BLOCKED_HINT                                                                      \
	"allow guest-file-open, guest-file-write, guest-file-close, guest-exec, "                  \
	"guest-exec-status; see docs/guest-agent.md"

/* clang-format off */
#define SCRIPT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"

/* args: DIR... -- TMP... (paths are absolute: "--" is no path). The
 * temporary files are created empty with mode 0600 before any content is
 * written (guest-file-open would create them with the agent's umask, maybe
 * world readable). Few processes: a fork costs a lot in a TCG guest. */
static const char script_prepare[] =
	SCRIPT_PATH
	"while [ \"$1\" != -- ]; do mkdir -p -- \"$1\" || exit 1; shift; done\n"
	"shift\n"
	"rm -f -- \"$@\" || exit 1\n"
	"umask 077; set -C\n"
	"for t; do : > \"$t\" || exit 1; done\n";

/* args: OWNER then FLAG TMP MODE TARGET quadruples, "--", then the targets
 * to read back; FLAG "opt" skips a missing TMP (a staged guest key). Owner
 * and mode are set before the rename, so the target name never shows a file
 * others may read. After the "installed FLAG" lines come the SHA-256 lines of
 * the read-back targets (one process less than a separate read-back: a fork
 * costs a lot in a TCG guest). */
static const char script_install[] =
	SCRIPT_PATH
	"o=$1; shift\n"
	"while [ $# -gt 3 ] && [ \"$1\" != -- ]; do\n"
	"  if [ \"$1\" = opt ] && [ ! -e \"$2\" ]; then shift 4; continue; fi\n"
	"  if [ -n \"$o\" ]; then chown -- \"$o\" \"$2\" || exit 1; fi\n"
	"  chmod -- \"$3\" \"$2\" || exit 1\n"
	"  mv -f -- \"$2\" \"$4\" || exit 1\n"
	"  echo \"installed $1\"\n"
	"  shift 4\n"
	"done\n"
	"[ \"$1\" = -- ] || exit 1\n"
	"shift\n"
	"sha256sum -- \"$@\" || exit 2\n";

/* The whole delivery in one process: a guest-exec costs two or more agent
 * round trips, and a process in a TCG guest costs more than a round trip
 * (measured: one guest-exec about 20 ms more than a guest-ping, a process
 * the shell starts 10-30 ms), so everything the shell can do itself is done
 * by builtins, and the one process a plain delivery needs is its last: the
 * shell becomes the mv (exec).
 *
 * args: OWNER, RELOAD ("1" or "0"), COMMAND, then FLAG STAGED MODE TARGET
 * LENGTH quintuples in plan order (key first). FLAG 0, 1 or 2: the content
 * is in the environment variable VC_<FLAG> (the environment reaches no log
 * and no other user, unlike arguments), LENGTH bytes long; STAGED is
 * DIR/VC_GUEST_STAGING_DIR/BASENAME for TARGET DIR/BASENAME. FLAG "opt":
 * STAGED is a key staged by guest keygen, installed when present.
 *
 * 1. Each content must have arrived whole (its length, counted by the shell
 *    in the C locale: bytes), else exit 4 and nothing is installed. It goes,
 *    by the shell's own printf, whose status says whether every byte was
 *    written (a full disk fails it), to a new file (noclobber: O_EXCL, no
 *    planted link followed) in the staging directory beside its target: a
 *    directory of the agent's user, mode 0700 (made once, then reused only
 *    if it is a real directory of ours; anything else in its place is
 *    removed first). The umask gives the mode from the first byte (key
 *    0600; certificate and chain 0644, public), so no chmod runs. Each
 *    staging directory is checked once (the files of a delivery usually
 *    share one: every shell command costs in a TCG guest too).
 * 2. One chown of the staged files (when an owner is set).
 * 3. Renames: the staged guest key (mv), then ONE mv per target directory
 *    moving every staged file into it (rename(2) each: a reader sees the
 *    old or the new file, never a partial one), each batch but the last
 *    followed by its "installed opt|req" lines. Without a reload command
 *    the last batch is the shell's exec of mv: its exit status 0 says that
 *    batch is installed. With one, the last batch is run like the others,
 *    then the command with /bin/sh -c (output discarded, umask 022, the
 *    PATH above): "reload STATUS".
 * Exit 1: cannot stage or install (staged files removed, except after a
 * failed exec of mv: the host cleans up then); 4: a content arrived cut. */
static const char script_deliver[] =
	SCRIPT_PATH
	"export PATH\n"
	"o=$1 r=$2 c=$3; shift 3\n"
	"[ $(($# % 5)) -eq 0 ] || exit 1\n"
	"nl='\n'\n"
	"set -fC; IFS=$nl; umask 077\n"
	"L= K= KT= P= B= D=\n"
	"fail() { [ -z \"$L\" ] || rm -f -- $L; exit \"$1\"; }\n"
	"st() {\n"
	"  case $1 in 0) v=$VC_0;; 1) v=$VC_1;; *) v=$VC_2;; esac\n"
	"  [ \"${#v}\" = \"$4\" ] || { echo \"the content of ${2##*/} arrived with ${#v} of $4 bytes\" >&2; return 4; }\n"
	"  d=${2%/*}\n"
	"  if [ \"$d\" != \"$D\" ]; then\n"
	"    p=${d%/*}\n"
	"    [ -d \"${p:-/}\" ] || mkdir -p -- \"$p\" || return 1\n"
	"    if [ -L \"$d\" ] || { [ -e \"$d\" ] && { [ ! -d \"$d\" ] || [ ! -O \"$d\" ]; }; }; then\n"
	"      rm -rf -- \"$d\" || return 1\n"
	"    fi\n"
	"    [ -d \"$d\" ] || mkdir -- \"$d\" || return 1\n"
	"    D=$d\n"
	"  fi\n"
	"  if [ -e \"$2\" ] || [ -L \"$2\" ]; then rm -f -- \"$2\" || return 1; fi\n"
	"  [ \"$3\" != 0644 ] || umask 022\n"
	"  printf %s \"$v\" > \"$2\"; e=$?\n"
	"  umask 077\n"
	"  return $e\n"
	"}\n"
	"while [ $# -gt 0 ]; do\n"
	"  case $1 in\n"
	"  opt) if [ -e \"$2\" ]; then K=$2 KT=$4; fi;;\n"
	"  *) L=$L$nl$2; st \"$1\" \"$2\" \"$3\" \"$5\" || fail $?;;\n"
	"  esac\n"
	"  shift 5\n"
	"done\n"
	"unset VC_0 VC_1 VC_2 v\n"
	"[ -z \"$o\" ] || chown -- \"$o\" $L $K || fail 1\n"
	"if [ -n \"$K\" ]; then mv -f -- \"$K\" \"$KT\" || fail 1; echo 'installed opt'; fi\n"
	"mvb() { mv -f -- $B \"${P:-/}/\" || fail 1; for y in $B; do echo 'installed req'; done; }\n"
	"for x in $L; do\n"
	"  q=${x%/*/*}\n"
	"  if [ -n \"$B\" ] && [ \"$q\" != \"$P\" ]; then mvb; B=; fi\n"
	"  B=$B$nl$x P=$q\n"
	"done\n"
	"if [ \"$r\" != 1 ]; then [ -z \"$B\" ] || exec mv -f -- $B \"${P:-/}/\"; exit 0; fi\n"
	"[ -z \"$B\" ] || mvb\n"
	"L=\n"
	"umask 022\n"
	"/bin/sh -c \"$c\" </dev/null >/dev/null 2>&1\n"
	"echo \"reload $?\"\n";

static const char script_check[] =
	SCRIPT_PATH
	"[ -s \"$2\" ] || exit 3\n"
	"exec sha256sum -- \"$1\"\n";

static const char script_cleanup[] =
	SCRIPT_PATH
	"rm -f -- \"$@\"\n";

/* args: KEY then openssl's -newkey arguments */
static const char script_keygen[] =
	SCRIPT_PATH
	"k=$1; shift\n"
	"d=${k%/*}; [ -n \"$d\" ] || d=/\n"
	"mkdir -p -- \"$d\" || exit 1\n"
	"umask 077\n"
	"rm -f -- \"$k\" || exit 1\n"
	"exec openssl req -new \"$@\" -nodes -keyout \"$k\" -subj /CN=virtcert\n";

/* clang-format on */

static const char *const required_commands[] = {
    "guest-file-open", "guest-file-write", "guest-file-close", "guest-exec", "guest-exec-status",
};

/* what the file-only way needs (VC_GUEST_METHOD_FILE_ONLY) */
static const char *const file_only_commands[] = {
    "guest-file-open", "guest-file-write", "guest-file-seek", "guest-file-read", "guest-file-close",
};

typedef struct {
	VcGuestChannel *channel;
	gint64 deadline; /* monotonic, µs */
	int total_timeout_s;
	int command_timeout_s;
	gboolean no_answer; /* a command got no reply: the agent is gone or hung */
} VcGuestCtx;

static void
vc_guest_ctx_init(VcGuestCtx *ctx, VcGuestChannel *channel, int total_s, int command_s)
{
	ctx->channel = channel;
	ctx->total_timeout_s = total_s;
	ctx->command_timeout_s = command_s;
	ctx->deadline = g_get_monotonic_time() + (gint64)total_s * G_USEC_PER_SEC;
}

/* A guest's words, made safe for a log line: printable ASCII, bounded. */
static char *
vc_guest_quote(const char *s, gsize len)
{
	GString *out = g_string_new(NULL);

	for (gsize i = 0; i < len && out->len < VC_GUEST_QUOTE_MAX; i++) {
		unsigned char c = (unsigned char)s[i];
		g_string_append_c(out, c >= 0x20 && c < 0x7f ? (char)c : (c == '\n' ? ' ' : '?'));
	}
	if (len > VC_GUEST_QUOTE_MAX)
		g_string_append(out, "...");
	return g_strstrip(g_string_free(out, FALSE));
}

static void
vc_guest_set_blocked_error(GError **error, const char *command)
{
	g_set_error(
	    error, VC_ERROR, VC_ERROR_GUEST,
	    "guest agent blocks %s (qemu-ga --block-rpcs / allow-rpcs); " VC_GUEST_BLOCKED_HINT,
	    command);
}

gboolean
vc_guest_error_is_blocked(const GError *error)
{
	return error != NULL && g_error_matches(error, VC_ERROR, VC_ERROR_GUEST) &&
	       strstr(error->message, "(qemu-ga --block-rpcs / allow-rpcs)") != NULL;
}

/* A disabled command gives class "CommandNotFound" and a desc "Command X has
 * been disabled" (qemu-ga 7.2; newer ones add ": the command is not
 * allowed"); libvirt keeps only the desc. */
static gboolean
vc_guest_agent_error_means_blocked(const char *klass, const char *desc)
{
	return g_strcmp0(klass, "CommandNotFound") == 0 ||
	       g_strcmp0(klass, "CommandDisabled") == 0 ||
	       (desc != NULL && (strstr(desc, "has been disabled") != NULL ||
				 strstr(desc, "has not been found") != NULL));
}

static int
vc_guest_ctx_command_timeout(VcGuestCtx *ctx, const char *name, GError **error)
{
	gint64 left = ctx->deadline - g_get_monotonic_time();

	if (left <= 0) {
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
			    "guest agent work took longer than %d s, abandoned before %s",
			    ctx->total_timeout_s, name);
		return -1;
	}
	return (int)MIN((gint64)ctx->command_timeout_s,
			(left + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC);
}

/* Runs one agent command; args (may be NULL) is consumed. Returns the reply's
 * "return" member, which must be of node type expect and, for a value, of
 * GType expect_value (G_TYPE_INVALID: any value). secret: wipe the command
 * text afterwards. */
static JsonNode *
vc_guest_command_full(VcGuestCtx *ctx, const char *name, JsonObject *args, JsonNodeType expect,
		      GType expect_value, gboolean secret, GError **error)
{
	g_autoptr(JsonObject) cmd = json_object_new();
	g_autoptr(JsonNode) cmd_node = json_node_new(JSON_NODE_OBJECT);
	g_autoptr(JsonParser) parser = json_parser_new_immutable();
	g_autofree char *text = NULL;
	g_autofree char *reply = NULL;
	g_autoptr(GError) local = NULL;
	JsonNode *root, *ret, *err;
	JsonObject *obj;
	int timeout_s;

	json_object_set_string_member(cmd, "execute", name);
	if (args != NULL)
		json_object_set_object_member(cmd, "arguments", args);
	json_node_set_object(cmd_node, cmd);
	text = json_to_string(cmd_node, FALSE);
	if (secret) {
		/* the key's base64 lives in the JSON tree too: drop it now */
		g_clear_pointer(&cmd_node, json_node_unref);
		g_clear_pointer(&cmd, json_object_unref);
	}

	timeout_s = vc_guest_ctx_command_timeout(ctx, name, error);
	if (timeout_s < 0)
		return NULL;
	reply = vc_guest_channel_exec(ctx->channel, text, timeout_s, &local);
	if (secret)
		explicit_bzero(text, strlen(text));
	if (reply == NULL) {
		ctx->no_answer = TRUE;
		g_propagate_prefixed_error(error, g_steal_pointer(&local), "%s: ", name);
		return NULL;
	}

	/* before json-glib, which leaks every value after the first and
	 * recurses on nesting: vc-json-text.h */
	if (!vc_json_text_check(reply, strlen(reply), VC_JSON_MAX_DEPTH, &local) ||
	    !json_parser_load_from_data(parser, reply, -1, &local)) {
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
			    "%s: guest agent reply is not JSON: %s", name, local->message);
		return NULL;
	}
	root = json_parser_get_root(parser);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
			    "%s: guest agent reply is not a JSON object", name);
		return NULL;
	}
	obj = json_node_get_object(root);
	err = json_object_get_member(obj, "error");
	if (err != NULL) {
		JsonObject *eobj;
		JsonNode *k, *dn;
		const char *klass = NULL, *desc = NULL;
		g_autofree char *qdesc = NULL;

		if (!JSON_NODE_HOLDS_OBJECT(err)) {
			g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
				    "%s: guest agent error is not an object", name);
			return NULL;
		}
		eobj = json_node_get_object(err);
		k = json_object_get_member(eobj, "class");
		dn = json_object_get_member(eobj, "desc");
		if (k != NULL && JSON_NODE_HOLDS_VALUE(k) &&
		    json_node_get_value_type(k) == G_TYPE_STRING)
			klass = json_node_get_string(k);
		if (dn != NULL && JSON_NODE_HOLDS_VALUE(dn) &&
		    json_node_get_value_type(dn) == G_TYPE_STRING)
			desc = json_node_get_string(dn);
		if (vc_guest_agent_error_means_blocked(klass, desc)) {
			vc_guest_set_blocked_error(error, name);
			return NULL;
		}
		qdesc = vc_guest_quote(desc != NULL ? desc : "(no description)",
				       desc != NULL ? strlen(desc) : 16);
		if (klass != NULL) {
			g_autofree char *qclass = vc_guest_quote(klass, strlen(klass));
			g_set_error(error, VC_ERROR, VC_ERROR_GUEST, "%s: guest agent error %s: %s",
				    name, qclass, qdesc);
		} else {
			g_set_error(error, VC_ERROR, VC_ERROR_GUEST, "%s: guest agent error: %s",
				    name, qdesc);
		}
		return NULL;
	}
	ret = json_object_get_member(obj, "return");
	if (ret == NULL || JSON_NODE_TYPE(ret) != expect ||
	    (expect == JSON_NODE_VALUE && expect_value != G_TYPE_INVALID &&
	     json_node_get_value_type(ret) != expect_value)) {
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
			    "%s: guest agent reply has no \"return\" of the expected type", name);
		return NULL;
	}
	return json_node_copy(ret);
}

static JsonNode *
vc_guest_command(VcGuestCtx *ctx, const char *name, JsonObject *args, JsonNodeType expect,
		 GType expect_value, GError **error)
{
	return vc_guest_command_full(ctx, name, args, expect, expect_value, FALSE, error);
}

/* Strict members of a hostile object: the member NAME of OBJ, of TYPE
 * (G_TYPE_INT64 or G_TYPE_BOOLEAN); NULL without an error when it is absent
 * and not REQUIRED. */
static JsonNode *
vc_guest_member_value(JsonObject *obj, const char *name, gboolean required, GType type,
		      GError **error)
{
	JsonNode *n = json_object_get_member(obj, name);

	if (n == NULL) {
		if (required)
			g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
				    "guest agent reply lacks \"%s\"", name);
		return NULL;
	}
	if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != type) {
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST, "guest agent reply: \"%s\" is not %s",
			    name, type == G_TYPE_BOOLEAN ? "a boolean" : "an integer");
		return NULL;
	}
	return n;
}

static gboolean
vc_guest_member_int(JsonObject *obj, const char *name, gboolean required, gint64 *ret_value,
		    gboolean *ret_present, GError **error)
{
	GError *local = NULL;
	JsonNode *n = vc_guest_member_value(obj, name, required, G_TYPE_INT64, &local);

	if (ret_present != NULL)
		*ret_present = n != NULL;
	if (local != NULL) {
		g_propagate_error(error, local);
		return FALSE;
	}
	*ret_value = n != NULL ? json_node_get_int(n) : 0;
	return TRUE;
}

static gboolean
vc_guest_member_bool(JsonObject *obj, const char *name, gboolean required, gboolean *ret_value,
		     GError **error)
{
	GError *local = NULL;
	JsonNode *n = vc_guest_member_value(obj, name, required, G_TYPE_BOOLEAN, &local);

	if (local != NULL) {
		g_propagate_error(error, local);
		return FALSE;
	}
	*ret_value = n != NULL && json_node_get_boolean(n);
	return TRUE;
}

/* Decodes a base64 member of at most max decoded bytes; strict alphabet. */
static gboolean
vc_guest_member_base64(JsonObject *obj, const char *name, gsize max, GBytes **ret_bytes,
		       GError **error)
{
	JsonNode *n = json_object_get_member(obj, name);
	const char *s;
	gsize len;
	guchar *data;
	gsize out_len = 0;

	if (n == NULL) {
		*ret_bytes = g_bytes_new(NULL, 0);
		return TRUE;
	}
	if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
			    "guest agent reply: \"%s\" is not a string", name);
		return FALSE;
	}
	s = json_node_get_string(n);
	len = strlen(s);
	if (len > (max + 2) / 3 * 4) {
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
			    "guest agent reply: \"%s\" is larger than %" G_GSIZE_FORMAT
			    " bytes, refused",
			    name, max);
		return FALSE;
	}
	if (len % 4 != 0 || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				      "0123456789+/=") != len) {
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
			    "guest agent reply: \"%s\" is not base64", name);
		return FALSE;
	}
	data = len > 0 ? g_base64_decode(s, &out_len) : NULL;
	if (out_len > max) {
		g_free(data);
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
			    "guest agent reply: \"%s\" is larger than %" G_GSIZE_FORMAT
			    " bytes, refused",
			    name, max);
		return FALSE;
	}
	*ret_bytes = g_bytes_new_take(data, out_len);
	return TRUE;
}

typedef struct {
	int exit_code; /* 128+N for signal N */
	GBytes *out;
	GBytes *err;
} VcGuestRun;

static void
vc_guest_run_clear(VcGuestRun *run)
{
	g_clear_pointer(&run->out, g_bytes_unref);
	g_clear_pointer(&run->err, g_bytes_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(VcGuestRun, vc_guest_run_clear)

/* guest-exec of path with argv (and, when env is not NULL, only that
 * environment: "NAME=VALUE" strings; secret: it holds a key, the command text
 * is wiped), then guest-exec-status until it exited (guest-exec is
 * asynchronous), within the ctx deadline. With capture, the output (at most
 * max_out bytes each) is read back. */
static gboolean
vc_guest_run_env(VcGuestCtx *ctx, const char *path, const char *const *argv, const char *const *env,
		 gboolean secret, gboolean capture, gsize max_out, VcGuestRun *ret_run,
		 GError **error)
{
	JsonObject *args = json_object_new();
	JsonArray *arr = json_array_new();
	g_autoptr(JsonNode) started = NULL;
	gint64 pid;
	gint64 poll_start;
	gulong sleep_us = 1000;

	json_object_set_string_member(args, "path", path);
	for (gsize i = 0; argv != NULL && argv[i] != NULL; i++)
		json_array_add_string_element(arr, argv[i]);
	json_object_set_array_member(args, "arg", arr);
	if (env != NULL) {
		JsonArray *earr = json_array_new();
		for (gsize i = 0; env[i] != NULL; i++)
			json_array_add_string_element(earr, env[i]);
		json_object_set_array_member(args, "env", earr);
	}
	json_object_set_boolean_member(args, "capture-output", capture);
	poll_start = g_get_monotonic_time();
	started = vc_guest_command_full(ctx, "guest-exec", args, JSON_NODE_OBJECT, G_TYPE_INVALID,
					secret, error);
	if (started == NULL)
		return FALSE;
	if (!vc_guest_member_int(json_node_get_object(started), "pid", TRUE, &pid, NULL, error)) {
		g_prefix_error(error, "guest-exec: ");
		return FALSE;
	}
	/* guest-exec's round trip is mostly the guest starting a process,
	 * which is also what the script costs (its shell, its mv): the first
	 * poll comes after 3/5 of that round trip, the next ones 3/20 of it
	 * apart. A poll is itself a round trip that takes the guest's CPU
	 * from the script: polling at once and every 1, 2, 4 ms made a TCG
	 * delivery 10-15 ms slower, waiting the whole round trip too (1/2 and
	 * 1/5, 3/4 and 1/10 measured within the noise of 3/5 and 3/20). */
	{
		gint64 exec_us = g_get_monotonic_time() - poll_start;

		g_usleep(MIN(exec_us * 3 / 5, VC_GUEST_POLL_FIRST_MAX_US));
		sleep_us = CLAMP(exec_us * 3 / 20, 1000, VC_GUEST_POLL_FAST_MAX_US);
	}
	poll_start = g_get_monotonic_time();

	for (;;) {
		JsonObject *sargs = json_object_new();
		g_autoptr(JsonNode) status = NULL;
		JsonObject *sobj;
		gboolean exited, truncated, present;
		gint64 code = -1, sig = -1;

		json_object_set_int_member(sargs, "pid", pid);
		status = vc_guest_command(ctx, "guest-exec-status", sargs, JSON_NODE_OBJECT,
					  G_TYPE_INVALID, error);
		if (status == NULL)
			return FALSE;
		sobj = json_node_get_object(status);
		if (!vc_guest_member_bool(sobj, "exited", TRUE, &exited, error)) {
			g_prefix_error(error, "guest-exec-status: ");
			return FALSE;
		}
		if (!exited) {
			gint64 left = ctx->deadline - g_get_monotonic_time();
			if (left <= 0) {
				g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
					    "%s did not finish in the guest: guest agent work took "
					    "longer than %d s",
					    path, ctx->total_timeout_s);
				return FALSE;
			}
			g_usleep(MIN((gint64)sleep_us, left));
			/* each poll is a round trip (a few ms): short sleeps
			 * while a delivery's process usually ends, then long
			 * ones for a slow one (keygen, a reload) */
			sleep_us = g_get_monotonic_time() - poll_start < G_USEC_PER_SEC ? sleep_us
											: 100000;
			continue;
		}
		if (!vc_guest_member_int(sobj, "exitcode", FALSE, &code, &present, error) ||
		    (!present && !vc_guest_member_int(sobj, "signal", TRUE, &sig, NULL, error)) ||
		    !vc_guest_member_bool(sobj, "out-truncated", FALSE, &truncated, error)) {
			g_prefix_error(error, "guest-exec-status: ");
			return FALSE;
		}
		if (!present)
			code = (sig >= 0 && sig < 128) ? 128 + sig : 255;
		else if (code < 0 || code > 255)
			code = 255;
		if (truncated) {
			g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
				    "guest-exec-status: output of %s was truncated", path);
			return FALSE;
		}
		if (!capture) {
			/* not asked for: not decoded (the reply cap bounds it) */
			ret_run->exit_code = (int)code;
			return TRUE;
		}
		if (!vc_guest_member_base64(sobj, "out-data", max_out, &ret_run->out, error) ||
		    !vc_guest_member_base64(sobj, "err-data", max_out, &ret_run->err, error)) {
			vc_guest_run_clear(ret_run);
			g_prefix_error(error, "guest-exec-status: ");
			return FALSE;
		}
		ret_run->exit_code = (int)code;
		return TRUE;
	}
}

static gboolean
vc_guest_run(VcGuestCtx *ctx, const char *path, const char *const *argv, gboolean capture,
	     gsize max_out, VcGuestRun *ret_run, GError **error)
{
	return vc_guest_run_env(ctx, path, argv, NULL, FALSE, capture, max_out, ret_run, error);
}

/* A script run with /bin/sh -c SCRIPT sh ARGS..., environment env (NULL:
 * the agent's) */
static gboolean
vc_guest_run_script_env(VcGuestCtx *ctx, const char *script, GPtrArray *args, GPtrArray *env,
			gboolean capture, gsize max_out, VcGuestRun *ret_run, GError **error)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();

	g_ptr_array_add(argv, (gpointer) "-c");
	g_ptr_array_add(argv, (gpointer)script);
	g_ptr_array_add(argv, (gpointer) "sh");
	for (guint i = 0; args != NULL && i < args->len; i++)
		g_ptr_array_add(argv, args->pdata[i]);
	g_ptr_array_add(argv, NULL);
	if (env != NULL)
		g_ptr_array_add(env, NULL);
	return vc_guest_run_env(ctx, "/bin/sh", (const char *const *)argv->pdata,
				env != NULL ? (const char *const *)env->pdata : NULL, env != NULL,
				capture, max_out, ret_run, error);
}

/* A script run with /bin/sh -c SCRIPT sh ARGS... */
static gboolean
vc_guest_run_script(VcGuestCtx *ctx, const char *script, GPtrArray *args, gboolean capture,
		    gsize max_out, VcGuestRun *ret_run, GError **error)
{
	return vc_guest_run_script_env(ctx, script, args, NULL, capture, max_out, ret_run, error);
}

static char *
vc_guest_run_stderr(const VcGuestRun *run)
{
	gsize len = 0;
	const char *data = run->err != NULL ? g_bytes_get_data(run->err, &len) : NULL;

	return vc_guest_quote(data != NULL ? data : "", len);
}

gboolean
vc_guest_ping(VcGuestChannel *channel, int timeout_s, GError **error)
{
	VcGuestCtx ctx;
	g_autoptr(JsonNode) ret = NULL;

	g_return_val_if_fail(channel != NULL, FALSE);
	if (timeout_s <= 0)
		timeout_s = VC_GUEST_COMMAND_TIMEOUT_DEFAULT;
	vc_guest_ctx_init(&ctx, channel, timeout_s, timeout_s);
	ret = vc_guest_command(&ctx, "guest-ping", NULL, JSON_NODE_OBJECT, G_TYPE_INVALID, error);
	return ret != NULL;
}

/* guest-info: which of the commands we need are missing or disabled. The
 * ones of the guest-exec way that are missing go to problems ("guest-exec is
 * disabled"); ret_blocked gets their names (comma separated) or NULL;
 * ret_files_ok says whether the file-only way has all it needs. */
static gboolean
vc_guest_check_capabilities(VcGuestCtx *ctx, GPtrArray *problems, char **ret_blocked,
			    gboolean *ret_files_ok, GError **error)
{
	g_autoptr(JsonNode) info = NULL;
	JsonNode *cmds;
	JsonArray *arr;
	gboolean found[G_N_ELEMENTS(required_commands)] = {FALSE};
	gboolean enabled[G_N_ELEMENTS(required_commands)] = {FALSE};
	guint files_ok = 0;
	g_autoptr(GString) blocked = g_string_new(NULL);

	info = vc_guest_command(ctx, "guest-info", NULL, JSON_NODE_OBJECT, G_TYPE_INVALID, error);
	if (info == NULL)
		return FALSE;
	cmds = json_object_get_member(json_node_get_object(info), "supported_commands");
	if (cmds == NULL || !JSON_NODE_HOLDS_ARRAY(cmds)) {
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
			    "guest-info: \"supported_commands\" is not an array");
		return FALSE;
	}
	arr = json_node_get_array(cmds);
	for (guint i = 0; i < json_array_get_length(arr); i++) {
		JsonNode *e = json_array_get_element(arr, i);
		JsonObject *eobj;
		JsonNode *nn;
		const char *name;
		gboolean en;

		if (!JSON_NODE_HOLDS_OBJECT(e)) {
			g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
				    "guest-info: a supported command is not an object");
			return FALSE;
		}
		eobj = json_node_get_object(e);
		nn = json_object_get_member(eobj, "name");
		if (nn == NULL || !JSON_NODE_HOLDS_VALUE(nn) ||
		    json_node_get_value_type(nn) != G_TYPE_STRING ||
		    !vc_guest_member_bool(eobj, "enabled", TRUE, &en, error)) {
			g_clear_error(error);
			g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
				    "guest-info: a supported command lacks a name or enabled flag");
			return FALSE;
		}
		name = json_node_get_string(nn);
		for (gsize j = 0; j < G_N_ELEMENTS(required_commands); j++) {
			if (strcmp(name, required_commands[j]) == 0) {
				found[j] = TRUE;
				enabled[j] = en;
			}
		}
		for (gsize j = 0; j < G_N_ELEMENTS(file_only_commands); j++) {
			if (en && strcmp(name, file_only_commands[j]) == 0)
				files_ok |= 1u << j;
		}
	}
	for (gsize j = 0; j < G_N_ELEMENTS(required_commands); j++) {
		if (found[j] && enabled[j])
			continue;
		g_ptr_array_add(problems, g_strdup_printf("%s is %s", required_commands[j],
							  found[j] ? "disabled" : "not supported"));
		g_string_append_printf(blocked, "%s%s", blocked->len > 0 ? ", " : "",
				       required_commands[j]);
	}
	*ret_blocked = blocked->len > 0 ? g_strdup(blocked->str) : NULL;
	*ret_files_ok = files_ok == (1u << G_N_ELEMENTS(file_only_commands)) - 1;
	return TRUE;
}

static gboolean
vc_guest_file_open(VcGuestCtx *ctx, const char *path, const char *mode, gint64 *ret_handle,
		   GError **error)
{
	JsonObject *args = json_object_new();
	g_autoptr(JsonNode) opened = NULL;

	json_object_set_string_member(args, "path", path);
	json_object_set_string_member(args, "mode", mode);
	opened =
	    vc_guest_command(ctx, "guest-file-open", args, JSON_NODE_VALUE, G_TYPE_INT64, error);
	if (opened == NULL)
		return FALSE;
	*ret_handle = json_node_get_int(opened);
	return TRUE;
}

static gboolean
vc_guest_file_close(VcGuestCtx *ctx, gint64 handle, GError **error)
{
	JsonObject *args = json_object_new();
	g_autoptr(JsonNode) closed = NULL;

	json_object_set_int_member(args, "handle", handle);
	closed = vc_guest_command(ctx, "guest-file-close", args, JSON_NODE_OBJECT, G_TYPE_INVALID,
				  error);
	return closed != NULL;
}

/* guest-file-write of content to an open handle, in base64 chunks. */
static gboolean
vc_guest_file_write_all(VcGuestCtx *ctx, gint64 handle, const char *content, gboolean secret,
			GError **error)
{
	gsize len = strlen(content);
	gsize off = 0;

	do {
		gsize n = MIN(len - off, (gsize)VC_GUEST_WRITE_CHUNK);
		g_autofree char *b64 = g_base64_encode((const guchar *)content + off, n);
		g_autoptr(JsonNode) wrote = NULL;
		JsonObject *wargs = json_object_new();
		gint64 count;

		json_object_set_int_member(wargs, "handle", handle);
		json_object_set_string_member(wargs, "buf-b64", b64);
		if (secret)
			explicit_bzero(b64, strlen(b64));
		wrote = vc_guest_command_full(ctx, "guest-file-write", wargs, JSON_NODE_OBJECT,
					      G_TYPE_INVALID, secret, error);
		if (wrote == NULL)
			return FALSE;
		if (!vc_guest_member_int(json_node_get_object(wrote), "count", TRUE, &count, NULL,
					 error))
			return FALSE;
		if (count != (gint64)n) {
			g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
				    "guest-file-write wrote %" G_GINT64_FORMAT
				    " of %" G_GSIZE_FORMAT " bytes",
				    count, n);
			return FALSE;
		}
		off += n;
	} while (off < len);
	return TRUE;
}

/* Writes content to the already created tmp file with guest-file-*. */
static gboolean
vc_guest_write_file(VcGuestCtx *ctx, const char *tmp, const char *content, gboolean secret,
		    GError **error)
{
	g_autoptr(GError) write_error = NULL;
	g_autoptr(GError) close_error = NULL;
	gint64 handle;

	if (!vc_guest_file_open(ctx, tmp, "w", &handle, error))
		return FALSE;
	vc_guest_file_write_all(ctx, handle, content, secret, &write_error);
	if (!vc_guest_file_close(ctx, handle, &close_error) && write_error == NULL) {
		g_propagate_prefixed_error(error, g_steal_pointer(&close_error), "%s: ", tmp);
		return FALSE;
	}
	if (write_error != NULL) {
		g_propagate_prefixed_error(error, g_steal_pointer(&write_error), "%s: ", tmp);
		return FALSE;
	}
	return TRUE;
}

/* Reads an open handle from offset 0 to its end (at most max + 1 bytes, so
 * that a longer file shows) into sum; ret_len gets the bytes read. */
static gboolean
vc_guest_file_read_sum(VcGuestCtx *ctx, gint64 handle, gsize max, GChecksum *sum, gsize *ret_len,
		       GError **error)
{
	JsonObject *sargs = json_object_new();
	g_autoptr(JsonNode) sought = NULL;
	gsize total = 0;
	gboolean eof = FALSE;

	json_object_set_int_member(sargs, "handle", handle);
	json_object_set_int_member(sargs, "offset", 0);
	json_object_set_string_member(sargs, "whence", "set");
	sought = vc_guest_command(ctx, "guest-file-seek", sargs, JSON_NODE_OBJECT, G_TYPE_INVALID,
				  error);
	if (sought == NULL)
		return FALSE;
	while (!eof && total <= max) {
		JsonObject *rargs = json_object_new();
		g_autoptr(JsonNode) got = NULL;
		g_autoptr(GBytes) bytes = NULL;
		JsonObject *robj;
		gsize want = MIN(max + 1 - total, (gsize)VC_GUEST_WRITE_CHUNK);
		gint64 count;
		gsize n;
		const guchar *data;

		json_object_set_int_member(rargs, "handle", handle);
		json_object_set_int_member(rargs, "count", (gint64)want);
		got = vc_guest_command(ctx, "guest-file-read", rargs, JSON_NODE_OBJECT,
				       G_TYPE_INVALID, error);
		if (got == NULL)
			return FALSE;
		robj = json_node_get_object(got);
		if (!vc_guest_member_int(robj, "count", TRUE, &count, NULL, error) ||
		    !vc_guest_member_bool(robj, "eof", TRUE, &eof, error) ||
		    !vc_guest_member_base64(robj, "buf-b64", want, &bytes, error)) {
			g_prefix_error(error, "guest-file-read: ");
			return FALSE;
		}
		data = g_bytes_get_data(bytes, &n);
		if (count != (gint64)n) {
			g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
				    "guest-file-read: \"count\" is %" G_GINT64_FORMAT
				    " for %" G_GSIZE_FORMAT " bytes",
				    count, n);
			return FALSE;
		}
		if (n == 0 && !eof) {
			g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
				    "guest-file-read: no bytes and no end of file");
			return FALSE;
		}
		if (n > 0)
			g_checksum_update(sum, data, (gssize)n);
		/* the bytes may be a key's */
		if (n > 0)
			explicit_bzero((void *)data, n);
		total += n;
	}
	*ret_len = total;
	return TRUE;
}

static gboolean
vc_guest_path_is_valid(const char *path)
{
	if (path == NULL || path[0] != '/' || g_str_has_suffix(path, "/") || strlen(path) > 4000)
		return FALSE;
	for (const char *p = path; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return FALSE;
	}
	return TRUE;
}

/* chown syntax restricted to portable user and group names (POSIX 3.437 plus
 * what useradd accepts), no leading '-'. */
static gboolean
vc_guest_owner_is_valid(const char *owner)
{
	g_auto(GStrv) parts = g_strsplit(owner, ":", -1);
	guint n = g_strv_length(parts);

	if (n < 1 || n > 2)
		return FALSE;
	for (guint i = 0; i < n; i++) {
		const char *s = parts[i];
		gsize len = strlen(s);
		if (len == 0 || len > 32 || s[0] == '-' ||
		    strspn(s,
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
			len)
			return FALSE;
	}
	return TRUE;
}

typedef struct {
	VcGuestFile which;
	const char *content; /* NULL: a staged guest key */
	const char *path;
	char *tmp;
	const char *mode;
} VcGuestPlanned;

static gboolean
vc_guest_delivery_plan(const VcGuestDelivery *d, VcGuestPlanned *plan, guint *ret_n, GError **error)
{
	guint n = 0;

	if (d->cert_pem == NULL || d->cert_path == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
			    "a delivery needs a certificate and its path");
		return FALSE;
	}
	if ((d->chain_pem == NULL) != (d->chain_path == NULL)) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
			    "a chain needs a path and a chain path needs a chain");
		return FALSE;
	}
	if (d->key_pem != NULL && d->key_path == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "a key needs a path");
		return FALSE;
	}
	if (d->owner != NULL && !vc_guest_owner_is_valid(d->owner)) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
			    "invalid owner \"%s\" (expected user or user:group)", d->owner);
		return FALSE;
	}

	/* key first: when the certificate appears, its key is there */
	if (d->key_path != NULL) {
		plan[n++] = (VcGuestPlanned){
		    VC_GUEST_FILE_KEY, d->key_pem, d->key_path,
		    d->key_pem != NULL ? g_strconcat(d->key_path, VC_GUEST_TMP_SUFFIX, NULL)
				       : vc_guest_staged_key_path(d->key_path),
		    "0600"};
	}
	if (d->chain_path != NULL)
		plan[n++] =
		    (VcGuestPlanned){VC_GUEST_FILE_CHAIN, d->chain_pem, d->chain_path,
				     g_strconcat(d->chain_path, VC_GUEST_TMP_SUFFIX, NULL), "0644"};
	plan[n++] = (VcGuestPlanned){VC_GUEST_FILE_CERT, d->cert_pem, d->cert_path,
				     g_strconcat(d->cert_path, VC_GUEST_TMP_SUFFIX, NULL), "0644"};
	*ret_n = n;

	for (guint i = 0; i < n; i++) {
		if (!vc_guest_path_is_valid(plan[i].path)) {
			g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
				    "guest path must be absolute, without control characters: %s",
				    plan[i].path);
			return FALSE;
		}
		if (strstr(plan[i].path, "/" VC_GUEST_STAGING_DIR "/") != NULL) {
			g_set_error(
			    error, VC_ERROR, VC_ERROR_USAGE,
			    "guest path %s is inside a staging directory (" VC_GUEST_STAGING_DIR
			    ")",
			    plan[i].path);
			return FALSE;
		}
		for (guint j = 0; j < i; j++) {
			if (strcmp(plan[i].path, plan[j].path) == 0) {
				g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
					    "two files delivered to the same path %s",
					    plan[i].path);
				return FALSE;
			}
		}
	}
	return TRUE;
}

/* Removes what a failed delivery left, if time is left; never fails. */
/* not inlined (nor the two below): with sanitizers, one merged frame would
 * exceed -Wframe-larger-than */
G_GNUC_NO_INLINE static void
delivery_cleanup(VcGuestCtx *ctx, VcGuestPlanned *plan, guint n)
{
	g_autoptr(GPtrArray) args = g_ptr_array_new();
	g_auto(VcGuestRun) run = {0};
	g_autoptr(GError) local = NULL;

	for (guint i = 0; i < n; i++) {
		if (plan[i].content != NULL)
			g_ptr_array_add(args, plan[i].tmp);
	}
	if (args->len > 0 &&
	    !vc_guest_run_script(ctx, script_cleanup, args, FALSE, 0, &run, &local))
		g_debug("cleanup of temporary files in the guest failed: %s", local->message);
}

/* LINES: the "HEX  NAME" lines sha256sum printed for the files with content,
 * in plan order (GNU coreutils prefixes a '\\' when it escapes a name; names
 * have no newline). */
static gboolean
vc_guest_delivery_verify(char **lines, VcGuestPlanned *plan, guint n, VcGuestResult *result,
			 GError **error)
{
	guint li = 0;

	for (guint i = 0; i < n; i++) {
		g_autofree char *want = NULL;
		const char *line;

		if (plan[i].content == NULL)
			continue;
		line = lines != NULL && lines[li] != NULL ? lines[li++] : "";
		if (line[0] == '\\')
			line++;
		want = g_compute_checksum_for_string(G_CHECKSUM_SHA256, plan[i].content, -1);
		/* "HEX  NAME"; the hex must be followed by a separator */
		result->verified[plan[i].which] = strlen(line) >= 65 &&
						  g_ascii_strncasecmp(line, want, 64) == 0 &&
						  (line[64] == ' ' || line[64] == '\t');
		if (!result->verified[plan[i].which]) {
			g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
				    "the SHA-256 read back from %s does not match what was written",
				    plan[i].path);
			return FALSE;
		}
	}
	return TRUE;
}

/* The "installed FLAG" lines script_install and script_deliver print first,
 * one per file moved, in plan order ("opt": a staged guest key, moved only
 * when there is one): marks those delivered. Returns the output's lines;
 * *ret_done is the number of "installed" lines among them. */
static GStrv
vc_guest_delivery_installed(const VcGuestRun *inst, VcGuestPlanned *plan, guint n,
			    VcGuestResult *result, guint *ret_done)
{
	gsize len;
	const char *data = g_bytes_get_data(inst->out, &len);
	g_autofree char *out = g_strndup(data != NULL ? data : "", len);
	GStrv lines = g_strsplit(out, "\n", -1);
	guint done = 0;

	for (guint i = 0; i < n; i++) {
		const char *want = plan[i].content != NULL ? "installed req" : "installed opt";
		if (lines[done] != NULL && strcmp(lines[done], want) == 0) {
			result->delivered[plan[i].which] = TRUE;
			done++;
		} else if (plan[i].content != NULL) {
			break;
		}
	}
	*ret_done = done;
	return lines;
}

/* The output of script_install: the "installed" lines, then the SHA-256
 * lines of the installed files. */
static gboolean
vc_guest_delivery_check_install(const VcGuestRun *inst, VcGuestPlanned *plan, guint n,
				VcGuestResult *result, GError **error)
{
	guint done;
	g_auto(GStrv) lines = vc_guest_delivery_installed(inst, plan, n, result, &done);

	if (inst->exit_code != 0) {
		g_autofree char *why = vc_guest_run_stderr(inst);
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
			    inst->exit_code == 2
				? "cannot read back the delivered files (exit %d): %s"
				: "cannot install the files in the guest (exit %d): %s",
			    inst->exit_code, why);
		return FALSE;
	}
	/* the digest lines follow the "installed" lines */
	return vc_guest_delivery_verify(lines + done, plan, n, result, error);
}

/* The output of script_deliver: the "installed" lines, except for the last
 * batch of a delivery without reload command, which the shell's exec of mv
 * installed when the exit status is 0. A content that was installed arrived
 * whole and was written in full (the script checked both): it is verified. */
static gboolean
vc_guest_delivery_check_inline(const VcGuestRun *inst, VcGuestPlanned *plan, guint n,
			       gboolean reload, VcGuestResult *result, GError **error)
{
	guint done;
	g_auto(GStrv) lines = vc_guest_delivery_installed(inst, plan, n, result, &done);

	if (inst->exit_code != 0) {
		g_autofree char *why = vc_guest_run_stderr(inst);
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
			    "cannot install the files in the guest (exit %d): %s", inst->exit_code,
			    why);
		return FALSE;
	}
	for (guint i = 0; i < n; i++) {
		if (plan[i].content == NULL)
			continue;
		if (!result->delivered[plan[i].which] && reload) {
			/* with a reload command every batch says so */
			g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
				    "the delivery script did not report %s installed",
				    plan[i].path);
			return FALSE;
		}
		result->delivered[plan[i].which] = TRUE;
		result->verified[plan[i].which] = TRUE;
	}
	return TRUE;
}

/* The "reload STATUS" line script_deliver prints last. */
static gboolean
vc_guest_delivery_reload_status(const VcGuestRun *inst, VcGuestResult *result, GError **error)
{
	gsize len;
	const char *data = g_bytes_get_data(inst->out, &len);
	g_autofree char *out = g_strndup(data != NULL ? data : "", len);
	const char *line;
	char *end = NULL;
	gint64 code;

	g_strchomp(out);
	line = strrchr(out, '\n');
	line = line != NULL ? line + 1 : out;
	if (!g_str_has_prefix(line, "reload ") || line[7] < '0' || line[7] > '9') {
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
			    "the delivery script did not report the reload command's exit status");
		return FALSE;
	}
	code = g_ascii_strtoll(line + 7, &end, 10);
	if (end == NULL || *end != '\0' || code < 0 || code > 255) {
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
			    "the delivery script reported an invalid reload status");
		return FALSE;
	}
	result->reload_ran = TRUE;
	result->reload_exit_code = (int)code;
	return TRUE;
}

/* Contents up to VC_GUEST_INLINE_MAX: everything, the reload command
 * included, in one guest-exec (script_deliver). */
G_GNUC_NO_INLINE static gboolean
delivery_run_inline(VcGuestCtx *ctx, const VcGuestDelivery *d, VcGuestPlanned *plan, guint n,
		    VcGuestResult *result, gboolean *ret_written, GError **error)
{
	g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) env = g_ptr_array_new();
	g_auto(VcGuestRun) inst = {0};
	gboolean ok;

	g_ptr_array_add(args, g_strdup(d->owner != NULL ? d->owner : ""));
	g_ptr_array_add(args, g_strdup(d->reload_command != NULL ? "1" : "0"));
	g_ptr_array_add(args, g_strdup(d->reload_command != NULL ? d->reload_command : ""));
	for (guint i = 0; i < n; i++) {
		if (plan[i].content != NULL) {
			g_autofree char *dir = g_path_get_dirname(plan[i].path);
			g_autofree char *base = g_path_get_basename(plan[i].path);

			/* staged in the directory script_deliver moves from: the
			 * cleanup after a failure removes these */
			g_free(plan[i].tmp);
			plan[i].tmp = g_build_filename(dir, VC_GUEST_STAGING_DIR, base, NULL);
			g_ptr_array_add(args, g_strdup_printf("%u", i));
			g_ptr_array_add(env, g_strdup_printf("VC_%u=%s", i, plan[i].content));
		} else {
			g_ptr_array_add(args, g_strdup("opt"));
		}
		g_ptr_array_add(args, g_strdup(plan[i].tmp));
		g_ptr_array_add(args, g_strdup(plan[i].mode));
		g_ptr_array_add(args, g_strdup(plan[i].path));
		g_ptr_array_add(args, plan[i].content != NULL
					  ? g_strdup_printf("%zu", strlen(plan[i].content))
					  : g_strdup("-"));
	}
	*ret_written = TRUE;
	ok = vc_guest_run_script_env(ctx, script_deliver, args, env, TRUE, VC_GUEST_SMALL_OUTPUT,
				     &inst, error);
	for (guint i = 0; i < env->len; i++) {
		char *e = env->pdata[i];
		if (e != NULL) {
			explicit_bzero(e, strlen(e));
			g_free(e);
		}
	}
	if (!ok) {
		/* a reload that hangs keeps the script from exiting */
		if (d->reload_command != NULL)
			g_prefix_error(error, "delivery script (with the reload command): ");
		return FALSE;
	}
	if (inst.exit_code == 4) {
		g_autofree char *why = vc_guest_run_stderr(&inst);
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
			    "a content did not reach the guest whole (%s); nothing was installed",
			    why);
		return FALSE;
	}
	if (!vc_guest_delivery_check_inline(&inst, plan, n, d->reload_command != NULL, result,
					    error))
		return FALSE;
	return d->reload_command == NULL || vc_guest_delivery_reload_status(&inst, result, error);
}

/* Appends the temporary (tmp) or target paths of the files with content. */
static void
vc_guest_plan_add_paths(GPtrArray *args, const VcGuestPlanned *plan, guint n, gboolean tmp)
{
	for (guint i = 0; i < n; i++) {
		if (plan[i].content != NULL)
			g_ptr_array_add(args, g_strdup(tmp ? plan[i].tmp : plan[i].path));
	}
}

/* Larger contents: guest-file-write into files a first guest-exec made,
 * a second one installs them. */
G_GNUC_NO_INLINE static gboolean
delivery_run_large(VcGuestCtx *ctx, const VcGuestDelivery *d, VcGuestPlanned *plan, guint n,
		   VcGuestResult *result, gboolean *ret_written, GError **error)
{
	g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func(g_free);
	g_auto(VcGuestRun) prep = {0};
	g_auto(VcGuestRun) inst = {0};

	for (guint i = 0; i < n; i++) {
		g_autofree char *dir = g_path_get_dirname(plan[i].path);
		if (plan[i].content != NULL &&
		    !g_ptr_array_find_with_equal_func(args, dir, g_str_equal, NULL))
			g_ptr_array_add(args, g_steal_pointer(&dir));
	}
	g_ptr_array_add(args, g_strdup("--"));
	vc_guest_plan_add_paths(args, plan, n, TRUE);
	*ret_written = TRUE;
	if (!vc_guest_run_script(ctx, script_prepare, args, TRUE, VC_GUEST_SMALL_OUTPUT, &prep,
				 error))
		return FALSE;
	if (prep.exit_code != 0) {
		g_autofree char *why = vc_guest_run_stderr(&prep);
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
			    "cannot create the temporary files in the guest (exit %d): %s",
			    prep.exit_code, why);
		return FALSE;
	}

	for (guint i = 0; i < n; i++) {
		if (plan[i].content != NULL &&
		    !vc_guest_write_file(ctx, plan[i].tmp, plan[i].content,
					 plan[i].which == VC_GUEST_FILE_KEY, error))
			return FALSE;
	}

	g_ptr_array_set_size(args, 0);
	g_ptr_array_add(args, g_strdup(d->owner != NULL ? d->owner : ""));
	for (guint i = 0; i < n; i++) {
		g_ptr_array_add(args, g_strdup(plan[i].content != NULL ? "req" : "opt"));
		g_ptr_array_add(args, g_strdup(plan[i].tmp));
		g_ptr_array_add(args, g_strdup(plan[i].mode));
		g_ptr_array_add(args, g_strdup(plan[i].path));
	}
	g_ptr_array_add(args, g_strdup("--"));
	vc_guest_plan_add_paths(args, plan, n, FALSE);
	if (!vc_guest_run_script(ctx, script_install, args, TRUE, VC_GUEST_SMALL_OUTPUT, &inst,
				 error))
		return FALSE;
	return vc_guest_delivery_check_install(&inst, plan, n, result, error);
}

/* Without guest-exec no file can be made safely: guest-file-open makes a new
 * file with qemu-ga's own mode (0666 in qemu-ga 7.2: anyone in the guest could
 * replace the certificate, or read the key), not the caller's. So the
 * file-only way writes only over files that exist, whose owner and mode the
 * guest's administrator chose. Checked for every file before any is
 * written. */
static gboolean
vc_guest_delivery_check_exists(VcGuestCtx *ctx, VcGuestPlanned *p, GError **error)
{
	g_autoptr(GError) local = NULL;
	gint64 handle;

	if (!vc_guest_file_open(ctx, p->path, "r", &handle, &local)) {
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
			    "the guest agent blocks guest-exec and %s cannot be opened (%s): "
			    "without guest-exec a file is written only over an existing file; "
			    "create it (key 0600, certificate and chain 0644, the service's "
			    "owner) or allow guest-exec, see docs/guest-agent.md",
			    p->path, local->message);
		return FALSE;
	}
	return vc_guest_file_close(ctx, handle, error);
}

/* One existing file without guest-exec: written in place (mode "w+"
 * truncates it and keeps its owner and mode), read back through the same
 * handle, SHA-256 compared. */
static gboolean
vc_guest_delivery_put_file_only(VcGuestCtx *ctx, VcGuestPlanned *p, VcGuestResult *result,
				GError **error)
{
	gboolean secret = p->which == VC_GUEST_FILE_KEY;
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
	g_autofree char *want = NULL;
	g_autoptr(GError) local = NULL;
	g_autoptr(GError) close_error = NULL;
	gsize len = strlen(p->content);
	gsize got = 0;
	gint64 handle;

	if (!vc_guest_file_open(ctx, p->path, "w+", &handle, error))
		return FALSE;
	if (vc_guest_file_write_all(ctx, handle, p->content, secret, &local))
		vc_guest_file_read_sum(ctx, handle, len, sum, &got, &local);
	if (!vc_guest_file_close(ctx, handle, &close_error) && local == NULL)
		local = g_steal_pointer(&close_error);
	if (local != NULL) {
		g_propagate_prefixed_error(error, g_steal_pointer(&local), "%s: ", p->path);
		return FALSE;
	}
	result->delivered[p->which] = TRUE;
	want = g_compute_checksum_for_string(G_CHECKSUM_SHA256, p->content, -1);
	result->verified[p->which] = got == len && strcmp(g_checksum_get_string(sum), want) == 0;
	if (!result->verified[p->which]) {
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
			    "the SHA-256 read back from %s does not match what was written",
			    p->path);
		return FALSE;
	}
	return TRUE;
}

G_GNUC_NO_INLINE static gboolean
delivery_run_file_only(VcGuestCtx *ctx, VcGuestPlanned *plan, guint n, VcGuestResult *result,
		       GError **error)
{
	result->file_only = TRUE;
	/* a staged guest key needs a rename: it stays staged */
	for (guint i = 0; i < n; i++) {
		if (plan[i].content != NULL &&
		    !vc_guest_delivery_check_exists(ctx, &plan[i], error))
			return FALSE;
	}
	for (guint i = 0; i < n; i++) {
		if (plan[i].content != NULL &&
		    !vc_guest_delivery_put_file_only(ctx, &plan[i], result, error))
			return FALSE;
	}
	return TRUE;
}

/* The guest-exec way: one guest-exec for contents up to
 * VC_GUEST_INLINE_MAX, the reload command included; larger ones through
 * guest-file-write and two more. */
G_GNUC_NO_INLINE static gboolean
delivery_run_exec(VcGuestCtx *ctx, const VcGuestDelivery *d, VcGuestPlanned *plan, guint n,
		  VcGuestResult *result, gboolean *ret_written, GError **error)
{
	gsize inline_len = 0;

	for (guint i = 0; i < n; i++)
		inline_len += plan[i].content != NULL ? strlen(plan[i].content) : 0;
	if (inline_len <= VC_GUEST_INLINE_MAX)
		return delivery_run_inline(ctx, d, plan, n, result, ret_written, error);
	if (!delivery_run_large(ctx, d, plan, n, result, ret_written, error))
		return FALSE;

	if (d->reload_command != NULL) {
		const char *argv[] = {"-c", d->reload_command, NULL};
		g_auto(VcGuestRun) reload = {0};
		g_autoptr(GError) local = NULL;

		/* its output is not captured: a chatty reload must not exceed the
		 * reply cap and lose its exit status */
		result->reload_ran = TRUE;
		if (vc_guest_run(ctx, "/bin/sh", argv, FALSE, 0, &reload, &local))
			result->reload_exit_code = reload.exit_code;
		else
			result->reload_error = g_strdup(local->message);
	}
	return TRUE;
}

G_GNUC_NO_INLINE static gboolean
delivery_run(VcGuestCtx *ctx, const VcGuestDelivery *d, VcGuestPlanned *plan, guint n,
	     VcGuestResult *result, gboolean *ret_written, GError **error)
{
	g_autofree char *blocked = NULL;
	g_autoptr(GError) exec_error = NULL;
	gboolean files_ok = FALSE;

	/* The guest-exec way is tried first, without asking guest-info what is
	 * allowed: that is one round trip more on every delivery, and a
	 * command the agent blocks answers so itself, before the guest runs
	 * anything (guest-exec) or after it ran the script (guest-exec-status:
	 * the file-only way then writes the same contents again, in place). */
	if (d->method != VC_GUEST_METHOD_FILE_ONLY) {
		if (delivery_run_exec(ctx, d, plan, n, result, ret_written, &exec_error))
			return TRUE;
		if (!vc_guest_error_is_blocked(exec_error)) {
			g_propagate_error(error, g_steal_pointer(&exec_error));
			return FALSE;
		}
		memset(result->delivered, 0, sizeof(result->delivered));
		memset(result->verified, 0, sizeof(result->verified));
		/* nothing to clean up: the cleanup is a guest-exec, and the
		 * script either did not start or ran to its end */
		*ret_written = FALSE;
	}

	/* guest-info says what is blocked, before anything (more) is written */
	if (!vc_guest_check_capabilities(ctx, result->capability_problems, &blocked, &files_ok,
					 error))
		return FALSE;
	if (d->method == VC_GUEST_METHOD_FILE_ONLY ||
	    (d->method == VC_GUEST_METHOD_AUTO && blocked != NULL && files_ok)) {
		if (!files_ok) {
			vc_guest_set_blocked_error(error, "guest-file-open, guest-file-write, "
							  "guest-file-seek, guest-file-read or "
							  "guest-file-close");
			return FALSE;
		}
		if (!delivery_run_file_only(ctx, plan, n, result, error))
			return FALSE;
		if (d->reload_command != NULL)
			result->reload_error =
			    g_strdup("not run: delivered without guest-exec (file-only)");
		return TRUE;
	}
	if (blocked != NULL)
		vc_guest_set_blocked_error(error, blocked);
	else /* blocked, says the command, but not in guest-info */
		g_propagate_error(error, g_steal_pointer(&exec_error));
	return FALSE;
}

gboolean
vc_guest_deliver(VcGuestChannel *channel, const VcGuestDelivery *d, VcGuestResult *result,
		 GError **error)
{
	VcGuestCtx ctx;
	VcGuestPlanned plan[VC_GUEST_N_FILES] = {0};
	guint n = 0;
	gboolean written = FALSE;
	gboolean ok;
	gint64 start = g_get_monotonic_time();

	g_return_val_if_fail(channel != NULL, FALSE);
	g_return_val_if_fail(d != NULL, FALSE);
	g_return_val_if_fail(result != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

	memset(result, 0, sizeof(*result));
	result->reload_exit_code = -1;
	result->capability_problems = g_ptr_array_new_with_free_func(g_free);

	vc_guest_ctx_init(
	    &ctx, channel, d->timeout_s > 0 ? d->timeout_s : VC_GUEST_DELIVERY_TIMEOUT_DEFAULT,
	    d->command_timeout_s > 0 ? d->command_timeout_s : VC_GUEST_COMMAND_TIMEOUT_DEFAULT);
	ok = vc_guest_delivery_plan(d, plan, &n, error) &&
	     delivery_run(&ctx, d, plan, n, result, &written, error);
	/* an agent that did not answer would not answer the cleanup either;
	 * the next delivery replaces what is staged */
	if (!ok && written && !ctx.no_answer)
		delivery_cleanup(&ctx, plan, n);
	for (guint i = 0; i < G_N_ELEMENTS(plan); i++)
		g_free(plan[i].tmp);
	result->duration_us = g_get_monotonic_time() - start;
	return ok;
}

void
vc_guest_result_clear(VcGuestResult *result)
{
	if (result == NULL)
		return;
	g_clear_pointer(&result->reload_error, g_free);
	g_clear_pointer(&result->capability_problems, g_ptr_array_unref);
}

char *
vc_guest_staged_key_path(const char *key_path)
{
	g_return_val_if_fail(key_path != NULL, NULL);
	return g_strconcat(key_path, VC_GUEST_STAGED_KEY_SUFFIX, NULL);
}

/* The VcKeyType of a CSR's key: EC P-256, Ed25519, RSA of exactly 3072
 * bits (the only RSA size a policy can ask for: a 2048-bit key is not an
 * rsa-3072 key). */
static gboolean
vc_guest_csr_key_type(EVP_PKEY *key, VcKeyType *ret_type)
{
	if (EVP_PKEY_is_a(key, "ED25519")) {
		*ret_type = VC_KEY_TYPE_ED25519;
		return TRUE;
	}
	if (EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) == 3072) {
		*ret_type = VC_KEY_TYPE_RSA_3072;
		return TRUE;
	}
	if (EVP_PKEY_is_a(key, "EC")) {
		char group[64] = "";
		if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
						   sizeof(group), NULL) == 1 &&
		    (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)) {
			*ret_type = VC_KEY_TYPE_EC_P256;
			return TRUE;
		}
	}
	return FALSE;
}

static EVP_PKEY *
vc_guest_csr_parse_public_key(const char *pem, gsize len, VcKeyType *ret_type, GError **error)
{
	g_autoptr(BIO) bio = NULL;
	g_autoptr(X509_REQ) req = NULL;
	EVP_PKEY *key;
	VcKeyType type;

	g_return_val_if_fail(pem != NULL || len == 0, NULL);
	if (len > VC_GUEST_CSR_MAX) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "CSR of %" G_GSIZE_FORMAT " bytes is larger than %d bytes, refused",
			    len, VC_GUEST_CSR_MAX);
		return NULL;
	}
	bio = BIO_new_mem_buf(len > 0 ? pem : "", (int)len);
	if (bio != NULL)
		req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	ERR_clear_error();
	if (req == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "not a PEM certificate request");
		return NULL;
	}
	key = X509_REQ_get0_pubkey(req);
	ERR_clear_error();
	if (key == NULL) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "the certificate request has no usable public key");
		return NULL;
	}
	if (!vc_guest_csr_key_type(key, &type)) {
		g_set_error(error, VC_ERROR, VC_ERROR_INVALID_DATA,
			    "the certificate request's key (%s, %d bits) is not EC P-256, "
			    "Ed25519 or RSA-3072",
			    EVP_PKEY_get0_type_name(key), EVP_PKEY_get_bits(key));
		return NULL;
	}
	/* proof of possession: the CSR is signed by its own key (RFC 2986 4.2) */
	if (X509_REQ_verify(req, key) != 1) {
		ERR_clear_error();
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO,
			    "the certificate request's signature does not verify");
		return NULL;
	}
	if (EVP_PKEY_up_ref(key) != 1) {
		g_set_error(error, VC_ERROR, VC_ERROR_CRYPTO, "EVP_PKEY_up_ref failed");
		return NULL;
	}
	if (ret_type != NULL)
		*ret_type = type;
	return key;
}

EVP_PKEY *
vc_guest_csr_public_key(const char *pem, gsize len, GError **error)
{
	return vc_guest_csr_parse_public_key(pem, len, NULL, error);
}

EVP_PKEY *
vc_guest_make_csr(VcGuestChannel *channel, const char *key_path, VcKeyType type, char **ret_csr_pem,
		  GError **error)
{
	VcGuestCtx ctx;
	g_autoptr(GPtrArray) args = g_ptr_array_new();
	g_auto(VcGuestRun) run = {0};
	g_autoptr(EVP_PKEY) key = NULL;
	VcKeyType got;
	const char *data;
	gsize len;

	g_return_val_if_fail(channel != NULL, NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	if (!vc_guest_path_is_valid(key_path)) {
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE,
			    "guest key path must be absolute, without control characters");
		return NULL;
	}
	g_ptr_array_add(args, (gpointer)key_path);
	switch (type) {
	case VC_KEY_TYPE_EC_P256:
		g_ptr_array_add(args, (gpointer) "-newkey");
		g_ptr_array_add(args, (gpointer) "ec");
		g_ptr_array_add(args, (gpointer) "-pkeyopt");
		g_ptr_array_add(args, (gpointer) "ec_paramgen_curve:P-256");
		break;
	case VC_KEY_TYPE_ED25519:
		g_ptr_array_add(args, (gpointer) "-newkey");
		g_ptr_array_add(args, (gpointer) "ed25519");
		break;
	case VC_KEY_TYPE_RSA_3072:
		g_ptr_array_add(args, (gpointer) "-newkey");
		g_ptr_array_add(args, (gpointer) "rsa:3072");
		break;
	default:
		g_set_error(error, VC_ERROR, VC_ERROR_USAGE, "unknown key type %d", (int)type);
		return NULL;
	}

	vc_guest_ctx_init(&ctx, channel, VC_GUEST_KEYGEN_TIMEOUT, VC_GUEST_COMMAND_TIMEOUT_DEFAULT);
	if (!vc_guest_run_script(&ctx, script_keygen, args, TRUE, VC_GUEST_CSR_MAX, &run, error)) {
		g_prefix_error(error, "guest keygen: ");
		return NULL;
	}
	if (run.exit_code != 0) {
		g_autofree char *why = vc_guest_run_stderr(&run);
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
			    "guest keygen: openssl req failed in the guest (exit %d): %s",
			    run.exit_code, why);
		return NULL;
	}
	data = g_bytes_get_data(run.out, &len);
	key = vc_guest_csr_parse_public_key(data, len, &got, error);
	if (key == NULL) {
		g_prefix_error(error, "guest keygen: ");
		return NULL;
	}
	if (got != type) {
		g_set_error(error, VC_ERROR, VC_ERROR_GUEST,
			    "guest keygen: the guest made a %s key, %s was asked for",
			    vc_key_type_to_string(got), vc_key_type_to_string(type));
		return NULL;
	}
	if (ret_csr_pem != NULL)
		*ret_csr_pem = g_strndup(data, len);
	return g_steal_pointer(&key);
}

#ifdef VC_TEST_SEAMS
GArray *
vc_guest_bench_deliver(VcGuestChannel *channel, const VcGuestDelivery *d, guint n, GError **error)
{
	g_autoptr(GArray) durations = g_array_sized_new(FALSE, FALSE, sizeof(gint64), n);

	for (guint i = 0; i < n; i++) {
		VcGuestResult result;
		gboolean ok = vc_guest_deliver(channel, d, &result, error);
		gint64 us = result.duration_us;

		vc_guest_result_clear(&result);
		if (!ok) {
			g_prefix_error(error, "delivery %u of %u: ", i + 1, n);
			return NULL;
		}
		g_array_append_val(durations, us);
	}
	return g_steal_pointer(&durations);
}
#endif /* VC_TEST_SEAMS */

/* Reads path (at most max + 1 bytes) into sum; a file that cannot be opened
 * is *ret_exists FALSE, not an error. */
static gboolean
vc_guest_sum_file(VcGuestCtx *ctx, const char *path, gsize max, GChecksum *sum, gsize *ret_len,
		  gboolean *ret_exists, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_autoptr(GError) close_error = NULL;
	gint64 handle;

	*ret_exists = FALSE;
	*ret_len = 0;
	if (!vc_guest_file_open(ctx, path, "r", &handle, &local)) {
		if (vc_guest_error_is_blocked(local) ||
		    !g_error_matches(local, VC_ERROR, VC_ERROR_GUEST) ||
		    strstr(local->message, "guest agent error") == NULL) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
		/* the agent's own "No such file", "Permission denied" */
		return TRUE;
	}
	*ret_exists = TRUE;
	vc_guest_file_read_sum(ctx, handle, max, sum, ret_len, &local);
	if (!vc_guest_file_close(ctx, handle, &close_error) && local == NULL)
		local = g_steal_pointer(&close_error);
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	return TRUE;
}

/* vc_guest_check_files() without guest-exec: the certificate read back
 * whole and its SHA-256 compared, the key opened and one byte read. */
static gboolean
vc_guest_check_files_by_reading(VcGuestCtx *ctx, const char *cert_path, const char *cert_pem,
				const char *key_path, gboolean *ret_match, GError **error)
{
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
	g_autoptr(GChecksum) key_sum = g_checksum_new(G_CHECKSUM_SHA256);
	g_autofree char *want = g_compute_checksum_for_string(G_CHECKSUM_SHA256, cert_pem, -1);
	gsize len = strlen(cert_pem);
	gsize got = 0, key_got = 0;
	gboolean exists = FALSE, key_exists = FALSE;

	*ret_match = FALSE;
	if (!vc_guest_sum_file(ctx, cert_path, len, sum, &got, &exists, error))
		return FALSE;
	if (!exists || got != len || strcmp(g_checksum_get_string(sum), want) != 0)
		return TRUE;
	if (!vc_guest_sum_file(ctx, key_path, 0, key_sum, &key_got, &key_exists, error))
		return FALSE;
	*ret_match = key_exists && key_got > 0;
	return TRUE;
}

gboolean
vc_guest_check_files(VcGuestChannel *channel, const char *cert_path, const char *cert_pem,
		     const char *key_path, gboolean *ret_match, GError **error)
{
	VcGuestCtx ctx;
	g_autoptr(GPtrArray) args = g_ptr_array_new();
	g_auto(VcGuestRun) run = {0};
	g_autofree char *want = NULL;
	g_autofree char *out = NULL;
	g_autoptr(GError) local = NULL;
	const char *data, *line;
	gsize out_len = 0;

	g_return_val_if_fail(channel != NULL && cert_pem != NULL && ret_match != NULL, FALSE);
	if (!vc_guest_path_is_valid(cert_path) || !vc_guest_path_is_valid(key_path)) {
		g_set_error_literal(error, VC_ERROR, VC_ERROR_USAGE,
				    "certificate and key paths must be absolute, without control "
				    "characters");
		return FALSE;
	}
	vc_guest_ctx_init(&ctx, channel, VC_GUEST_COMMAND_TIMEOUT_DEFAULT,
			  VC_GUEST_COMMAND_TIMEOUT_DEFAULT);
	g_ptr_array_add(args, (gpointer)cert_path);
	g_ptr_array_add(args, (gpointer)key_path);
	if (!vc_guest_run_script(&ctx, script_check, args, TRUE, VC_GUEST_SMALL_OUTPUT, &run,
				 &local)) {
		/* an agent that blocks guest-exec (the file-only way): the same
		 * check through guest-file-open/read/close */
		if (!vc_guest_error_is_blocked(local)) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
		g_clear_error(&local);
		return vc_guest_check_files_by_reading(&ctx, cert_path, cert_pem, key_path,
						       ret_match, error);
	}
	if (run.exit_code != 0) {
		/* no key, no certificate, or unreadable: not what was delivered */
		*ret_match = FALSE;
		return TRUE;
	}
	data = g_bytes_get_data(run.out, &out_len);
	out = g_strndup(data != NULL ? data : "", out_len);
	line = out[0] == '\\' ? out + 1 : out;
	want = g_compute_checksum_for_string(G_CHECKSUM_SHA256, cert_pem, -1);
	*ret_match = strlen(line) >= 65 && g_ascii_strncasecmp(line, want, 64) == 0 &&
		     (line[64] == ' ' || line[64] == '\t');
	return TRUE;
}

gboolean
vc_guest_check_agent(VcGuestChannel *channel, int timeout_s, GPtrArray *problems,
		     gboolean *ret_files_ok, GError **error)
{
	VcGuestCtx ctx;
	g_autofree char *blocked = NULL;
	gboolean files_ok = FALSE;

	g_return_val_if_fail(channel != NULL, FALSE);
	g_return_val_if_fail(problems != NULL, FALSE);
	if (timeout_s <= 0)
		timeout_s = VC_GUEST_COMMAND_TIMEOUT_DEFAULT;
	vc_guest_ctx_init(&ctx, channel, timeout_s, timeout_s);
	if (!vc_guest_check_capabilities(&ctx, problems, &blocked, &files_ok, error))
		return FALSE;
	if (ret_files_ok != NULL)
		*ret_files_ok = files_ok;
	return TRUE;
}
