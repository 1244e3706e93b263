/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <json-glib/json-glib.h>
#include <string.h>

#include "vc-error.h"
#include "vc-json-text.h"

static void
expect(const char *text, gboolean ok, const char *why)
{
	g_autoptr(GError) error = NULL;
	gboolean got = vc_json_text_check(text, strlen(text), 4, &error);

	if (ok) {
		g_assert_no_error(error);
		g_assert_true(got);
	} else {
		g_assert_false(got);
		g_assert_error(error, VC_ERROR, VC_ERROR_INVALID_DATA);
		if (strstr(error->message, why) == NULL)
			g_error("%s: \"%s\" does not say \"%s\"", text, error->message, why);
	}
}

static void
test_accepts_json(void)
{
	expect("{}", TRUE, NULL);
	expect(" \t\r\n{\"return\": {\"pid\": -1.5e3, \"ok\": true, \"x\": null}}\n ", TRUE, NULL);
	/* quotes, slashes, brackets and escapes inside strings are text */
	expect("{\"a\": \"it's /* not */ a comment [[[[[[ {{{ \\\" ]\"}", TRUE, NULL);
	expect("{\"a\": [[[1]]]}", TRUE, NULL); /* depth 4, the limit */
	expect("[1, {}]", TRUE, NULL);		/* the caller says it is no object */
}

static void
test_refuses(void)
{
	expect("", FALSE, "not an object");
	expect("\"s\"", FALSE, "not an object");
	expect("not json", FALSE, "not an object");
	expect("{\"a\": [[[[1]]]]}", FALSE, "nested deeper than 4");
	/* json-glib's extensions, which hid brackets from the depth count */
	expect("{\"a\": '\"', \"b\": [[[[[1]]]]]}", FALSE, "''' outside a string");
	expect("{/* \" */ \"a\": 1}", FALSE, "'/' outside a string");
	expect("{\"a\": 1 // \"\n}", FALSE, "'/' outside a string");
	expect("{\"a\": \x01}", FALSE, "octet 0x01");
	/* a second value, which json-glib would parse and leak */
	expect("{\"return\": {\"pid\": 1}}{\"return\": {}}", FALSE, "text after the first value");
	expect("[1] [2]", FALSE, "text after the first value");
	expect("{} x", FALSE, "text after the first value");
	expect("{\"a\": {\"b\": 1}", FALSE, "ends inside");
	expect("{\"a\": \"\\", FALSE, "ends inside");
}

/* What passes the check, json-glib parses as the same single value. */
static void
test_json_glib_agrees(void)
{
	const char *texts[] = {"{\"a\": [1, {\"b\": \"]}\"}], \"c\": false}", "{ }"};

	for (gsize i = 0; i < G_N_ELEMENTS(texts); i++) {
		g_autoptr(JsonParser) parser = json_parser_new();
		g_autoptr(GError) error = NULL;
		g_assert_true(vc_json_text_check(texts[i], strlen(texts[i]), 4, &error));
		g_assert_true(json_parser_load_from_data(parser, texts[i], -1, &error));
		g_assert_no_error(error);
		g_assert_true(JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)));
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/json-text/accepts", test_accepts_json);
	g_test_add_func("/json-text/refuses", test_refuses);
	g_test_add_func("/json-text/json-glib-agrees", test_json_glib_agrees);
	return g_test_run();
}
