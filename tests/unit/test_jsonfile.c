/* Unit tests for policy/jsonfile.c: reading policy-v1 JSON (UTF-8, NUL
 * bytes, syntax, repeated member names, the size cap) and the path-keeping
 * member getters that every error message of the loaders goes through.
 *
 * Texts are handed to tf_json_parse() in buffers of exactly their length,
 * without a terminating NUL, so that AddressSanitizer sees any read past
 * the end. Files are written to temporary files; no fixture is needed. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy/jsonfile.h"

#define NAME "t.json"
#define FILE_NAME "policies/water.json"

/* Parses text[0..len) from a heap copy of exactly len bytes. */
static int parse_len(const char *text, size_t len, cJSON **out, struct tf_err *err)
{
	static cJSON sentinel;
	char *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, text, len);
	memset(err, 0, sizeof(*err));
	*out = &sentinel; /* must be reset by the call */
	rc = tf_json_parse(copy, len, NAME, out, err);
	free(copy);
	return rc;
}

/* String literals may hold NUL bytes: their length is sizeof - 1. */
#define PARSE(lit, out, err) parse_len((lit), sizeof(lit) - 1, (out), (err))

static cJSON *parse_ok_len(const char *text, size_t len)
{
	struct tf_err err;
	cJSON *root = NULL;

	if (parse_len(text, len, &root, &err) != TF_OK)
		fail_msg("does not parse: %s", err.msg);
	assert_non_null(root);
	return root;
}

#define PARSE_OK(lit) parse_ok_len((lit), sizeof(lit) - 1)

static void expect_invalid_len(const char *text, size_t len, const char *expected)
{
	struct tf_err err;
	cJSON *root;

	assert_int_equal(parse_len(text, len, &root, &err), TF_ERR_INVALID);
	assert_null(root);
	assert_string_equal(err.msg, expected);
}

#define EXPECT_INVALID(lit, expected) expect_invalid_len((lit), sizeof(lit) - 1, (expected))

/* Writes len bytes to a new temporary file; path must hold 32 bytes. */
static void temp_file(char *path, const char *data, size_t len)
{
	int fd;

	strcpy(path, "/tmp/tf-jsonfile-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* ---- tf_json_parse: what is accepted ---- */

static void valid_json_parses(void **state)
{
	cJSON *root;

	(void)state;
	root = PARSE_OK("{\"a\": [1, {\"b\": true}], \"c\": \"x\"}");
	assert_true(cJSON_IsObject(root));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "a")), 2);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "c")->valuestring, "x");
	cJSON_Delete(root);

	/* Whitespace around the value, and a value that is not an object. */
	root = PARSE_OK(" \r\n\t[1, 2]\n\n");
	assert_int_equal(cJSON_GetArraySize(root), 2);
	cJSON_Delete(root);
	root = PARSE_OK("123");
	assert_true(cJSON_IsNumber(root));
	cJSON_Delete(root);
}

static void only_the_given_length_is_read(void **state)
{
	const char text[] = "{\"a\": 1}{\"garbage\"";
	cJSON *root;

	(void)state;
	/* The bytes after len are not part of the document. */
	root = parse_ok_len(text, 8);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(root, "a")->valueint, 1);
	cJSON_Delete(root);
}

static void well_formed_multibyte_utf8_is_accepted(void **state)
{
	cJSON *root;

	(void)state;
	/* U+00E9, U+20AC, U+1F600, U+10FFFF, and U+FFFD. */
	root = PARSE_OK("{\"n\": \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xef\xbf\xbd\"}");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "n")->valuestring,
		"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xef\xbf\xbd");
	cJSON_Delete(root);
}

/* ---- tf_json_parse: UTF-8 ---- */

static void overlong_utf8_is_reported_with_line_and_column(void **state)
{
	(void)state;
	/* "/" as two, three and four bytes. */
	EXPECT_INVALID("{\n\"a\": \"\xc0\xaf\"}", NAME ": line 2, column 7: not valid UTF-8");
	EXPECT_INVALID("{\n\n  \"a\": \"x\xe0\x80\xaf\"}", NAME ": line 3, column 10: not valid UTF-8");
	EXPECT_INVALID("\"\xf0\x80\x80\xaf\"", NAME ": line 1, column 2: not valid UTF-8");
	/* The smallest three-byte overlong (U+07FF as E0 9F BF). */
	EXPECT_INVALID("\"\xe0\x9f\xbf\"", NAME ": line 1, column 2: not valid UTF-8");
}

static void surrogate_utf8_is_reported_with_line_and_column(void **state)
{
	(void)state;
	/* U+D800 and U+DFFF encoded directly. */
	EXPECT_INVALID("[\n\"ok\",\n \"\xed\xa0\x80\"]", NAME ": line 3, column 3: not valid UTF-8");
	EXPECT_INVALID("\"ab\xed\xbf\xbf\"", NAME ": line 1, column 4: not valid UTF-8");
}

static void truncated_utf8_is_reported_with_line_and_column(void **state)
{
	(void)state;
	/* A three-byte sequence cut short by a quote, and at the very end. */
	EXPECT_INVALID("{\"a\":\n\"\xe2\x82\"}", NAME ": line 2, column 2: not valid UTF-8");
	EXPECT_INVALID("\"ab\xe2\x82", NAME ": line 1, column 4: not valid UTF-8");
	EXPECT_INVALID("\"\xf0\x9f\x98", NAME ": line 1, column 2: not valid UTF-8");
}

static void other_malformed_utf8_is_reported(void **state)
{
	(void)state;
	/* A lone continuation byte, bytes never used, above U+10FFFF. */
	EXPECT_INVALID("\"\x80\"", NAME ": line 1, column 2: not valid UTF-8");
	EXPECT_INVALID("\"\xff\"", NAME ": line 1, column 2: not valid UTF-8");
	EXPECT_INVALID("\"\xf4\x90\x80\x80\"", NAME ": line 1, column 2: not valid UTF-8");
	EXPECT_INVALID("\"\xf5\x80\x80\x80\"", NAME ": line 1, column 2: not valid UTF-8");
}

static void nul_byte_is_reported_with_line_and_column(void **state)
{
	(void)state;
	EXPECT_INVALID("{\n\"a\": \"\0\"}", NAME ": line 2, column 7: NUL byte in file");
	/* Also after the value. */
	EXPECT_INVALID("{}\n\0", NAME ": line 2, column 1: NUL byte in file");
}

/* ---- tf_json_parse: syntax ---- */

static void invalid_json_is_reported_with_line_and_column(void **state)
{
	(void)state;
	EXPECT_INVALID("{\n  \"a\": 1,\n  \"b\": }", NAME ": line 3, column 8: not valid JSON");
	EXPECT_INVALID("{\n \"a\": tru }", NAME ": line 2, column 7: not valid JSON");
	/* Comments are not JSON (cJSON stops one byte into the comment). */
	EXPECT_INVALID("{\n// no\n}", NAME ": line 2, column 2: not valid JSON");
}

static void trailing_text_is_invalid(void **state)
{
	(void)state;
	EXPECT_INVALID("{} x", NAME ": line 1, column 4: not valid JSON");
	EXPECT_INVALID("{\"a\": 1}\n{\"b\": 2}", NAME ": line 2, column 1: not valid JSON");
}

static void empty_text_is_invalid(void **state)
{
	struct tf_err err;
	cJSON *root;

	(void)state;
	assert_int_equal(parse_len("", 0, &root, &err), TF_ERR_INVALID);
	assert_null(root);
	assert_non_null(strstr(err.msg, "not valid JSON"));
	EXPECT_INVALID(" \n ", NAME ": line 2, column 1: not valid JSON");
}

/* ---- tf_json_parse: member names given twice ---- */

static void repeated_member_at_top_level_is_refused(void **state)
{
	(void)state;
	EXPECT_INVALID("{\"id\": \"a\", \"version\": 1, \"id\": \"b\"}",
		NAME ": $: member \"id\" is given more than once");
}

static void repeated_member_in_nested_object_names_its_path(void **state)
{
	(void)state;
	EXPECT_INVALID("{\"consumers\": [{\"orgs\": [\"a\"]},"
		" {\"orgs\": [\"b\"], \"purposes\": [], \"orgs\": [\"c\"]}]}",
		NAME ": $.consumers[1]: member \"orgs\" is given more than once");
	EXPECT_INVALID("{\"a\": {\"b c\": [0, [1, {\"x\": 1, \"x\": 1}]]}}",
		NAME ": $.a[\"b c\"][1][1]: member \"x\" is given more than once");
}

static void same_name_in_different_objects_is_fine(void **state)
{
	cJSON *root;

	(void)state;
	root = PARSE_OK("{\"a\": {\"n\": 1}, \"b\": {\"n\": 1}, \"c\": [{\"n\": 1}, {\"n\": 2}]}");
	cJSON_Delete(root);
}

/* An object of n members m00, m01, ... and then extra (already
 * formatted, with its leading comma, or ""), nested at $.limits.big. */
static char *big_object(int n, const char *extra)
{
	size_t cap = (size_t)n * 16 + strlen(extra) + 64;
	char *s = malloc(cap);
	size_t len;

	assert_non_null(s);
	len = (size_t)snprintf(s, cap, "{\"limits\": {\"big\": {");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s\"m%02d\": %d", i ? ", " : "", i, i);
	snprintf(s + len, cap - len, "%s}}}", extra);
	return s;
}

static void repeated_member_in_large_object_names_its_path(void **state)
{
	char *text;

	(void)state;
	/* Above the 16 members compared pairwise: the sorted check. */
	text = big_object(20, ", \"m07\": 7");
	expect_invalid_len(text, strlen(text),
		NAME ": $.limits.big: member \"m07\" is given more than once");
	free(text);
	/* The first and last names, 17 members in all. */
	text = big_object(16, ", \"m00\": 0");
	expect_invalid_len(text, strlen(text),
		NAME ": $.limits.big: member \"m00\" is given more than once");
	free(text);
	/* At the threshold: 15 members and a repeat, compared pairwise. */
	text = big_object(15, ", \"m14\": 0");
	expect_invalid_len(text, strlen(text),
		NAME ": $.limits.big: member \"m14\" is given more than once");
	free(text);
}

static void large_object_without_repeats_parses(void **state)
{
	cJSON *root;
	char *text;

	(void)state;
	text = big_object(200, "");
	root = parse_ok_len(text, strlen(text));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(root, "limits"), "big")), 200);
	cJSON_Delete(root);
	free(text);
}

/* ---- tf_json_load_file ---- */

static void file_loads_and_errors_name_the_display_name(void **state)
{
	static const char good[] = "{\"trustflow_policy\": 1}\n";
	static const char bad[] = "{\n\"a\": \xc0\xaf}";
	struct tf_err err;
	char path[32];
	cJSON *root;

	(void)state;
	temp_file(path, good, sizeof(good) - 1);
	assert_int_equal(tf_json_load_file(path, "policies/p.json", 1024, &root, &err), TF_OK);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(root, "trustflow_policy")->valueint, 1);
	cJSON_Delete(root);
	unlink(path);

	temp_file(path, bad, sizeof(bad) - 1);
	assert_int_equal(tf_json_load_file(path, "policies/p.json", 1024, &root, &err),
		TF_ERR_INVALID);
	assert_null(root);
	assert_string_equal(err.msg, "policies/p.json: line 2, column 6: not valid UTF-8");
	/* Without a display name, the path names the file. */
	assert_int_equal(tf_json_load_file(path, NULL, 1024, &root, &err), TF_ERR_INVALID);
	assert_true(strncmp(err.msg, path, strlen(path)) == 0);
	assert_string_equal(err.msg + strlen(path), ": line 2, column 6: not valid UTF-8");
	unlink(path);
}

static void file_over_the_size_cap_is_refused(void **state)
{
	static const char text[] = "{\"a\": \"0123456789\"}";  /* 19 bytes */
	size_t len = sizeof(text) - 1;
	struct tf_err err;
	char path[32];
	cJSON *root;

	(void)state;
	temp_file(path, text, len);
	assert_int_equal(tf_json_load_file(path, "big.json", len - 1, &root, &err),
		TF_ERR_INVALID);
	assert_null(root);
	assert_string_equal(err.msg, "big.json: file is 19 bytes, more than the 18 allowed");
	/* Exactly at the cap is allowed. */
	assert_int_equal(tf_json_load_file(path, "big.json", len, &root, &err), TF_OK);
	assert_non_null(root);
	cJSON_Delete(root);
	unlink(path);
}

static void missing_file_is_an_io_error(void **state)
{
	struct tf_err err;
	cJSON *root = NULL;

	(void)state;
	assert_int_equal(tf_json_load_file("/nonexistent/trustflow/x.json", "x.json", 1024, &root,
		&err), TF_ERR_IO);
	assert_null(root);
	assert_non_null(strstr(err.msg, "x.json: cannot open"));
	/* A directory is not a file either. */
	assert_int_equal(tf_json_load_file("/tmp", "tmp", 1024, &root, &err), TF_ERR_IO);
	assert_null(root);
	assert_string_equal(err.msg, "tmp: not a regular file");
}

static void duplicate_in_loaded_file_names_the_path(void **state)
{
	static const char text[] = "{\"consumers\": [{}, {\"view\": \"v\", \"view\": \"w\"}]}";
	struct tf_err err;
	char path[32];
	cJSON *root;

	(void)state;
	temp_file(path, text, sizeof(text) - 1);
	assert_int_equal(tf_json_load_file(path, "policies/water.json", 1024, &root, &err),
		TF_ERR_INVALID);
	assert_null(root);
	assert_string_equal(err.msg,
		"policies/water.json: $.consumers[1]: member \"view\" is given more than once");
	unlink(path);
}

/* ---- struct tf_jctx: paths ---- */

static void paths_are_built_and_popped(void **state)
{
	struct tf_err err;
	struct tf_jctx c;
	size_t m1, m2, m3;

	(void)state;
	tf_jctx_init(&c, FILE_NAME, &err);
	assert_string_equal(c.path, "$");
	assert_int_equal(c.len, 1);
	m1 = tf_jctx_member(&c, "consumers");
	assert_int_equal(m1, 1);
	assert_string_equal(c.path, "$.consumers");
	m2 = tf_jctx_index(&c, 12);
	assert_string_equal(c.path, "$.consumers[12]");
	m3 = tf_jctx_member(&c, "not_after");
	assert_string_equal(c.path, "$.consumers[12].not_after");
	assert_int_equal(c.len, strlen(c.path));
	tf_jctx_pop(&c, m3);
	assert_string_equal(c.path, "$.consumers[12]");
	tf_jctx_pop(&c, m2);
	assert_string_equal(c.path, "$.consumers");
	tf_jctx_pop(&c, m1);
	assert_string_equal(c.path, "$");
}

static void odd_member_names_are_bracketed(void **state)
{
	static const struct {
		const char *name, *path;
	} cases[] = {
		{ "a b", "$[\"a b\"]" },
		{ "a.b", "$[\"a.b\"]" },
		{ "", "$[\"\"]" },
		{ "ww-sensor-01", "$.ww-sensor-01" },
		{ "max_payload_bytes", "$.max_payload_bytes" },
		{ "org@x", "$[\"org@x\"]" },
		{ "a[0]", "$[\"a[0]\"]" },
		{ "caf\xc3\xa9", "$[\"caf\xc3\xa9\"]" },
	};
	struct tf_err err;
	struct tf_jctx c;

	(void)state;
	tf_jctx_init(&c, FILE_NAME, &err);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t mark = tf_jctx_member(&c, cases[i].name);

		assert_string_equal(c.path, cases[i].path);
		tf_jctx_pop(&c, mark);
		assert_string_equal(c.path, "$");
	}
}

static void long_paths_are_cut_not_overrun(void **state)
{
	char name[300];
	struct tf_err err;
	struct tf_jctx c;
	size_t marks[8];
	size_t full_len = 0;

	(void)state;
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	tf_jctx_init(&c, FILE_NAME, &err);
	for (int i = 0; i < 8; i++) {
		marks[i] = tf_jctx_member(&c, name);
		assert_true(c.len < sizeof(c.path));
		assert_int_equal(strlen(c.path), c.len);
		if (i == 0)
			full_len = c.len;
	}
	/* Steps that do not fit are left out whole; the message says so. */
	assert_int_equal(c.len, full_len);
	tf_jfail(&c, "boom");
	assert_non_null(strstr(err.msg, "nnn...: boom"));
	for (int i = 7; i >= 1; i--) {
		tf_jctx_pop(&c, marks[i]);
		assert_int_equal(c.len, full_len);
	}
	tf_jfail(&c, "boom");
	assert_null(strstr(err.msg, "..."));
	tf_jctx_pop(&c, marks[0]);
	assert_string_equal(c.path, "$");
	assert_int_equal(c.len, 1);
}

static void nul_escape_is_refused(void **state)
{
	static const char text[] = "{\"owner\": \"city\\u0000junk\"}";
	static const char escaped_backslash[] = "{\"a\": \"x\\\\u0000\"}";
	struct tf_err err;
	cJSON *root;

	(void)state;
	assert_int_equal(tf_json_parse(text, strlen(text), FILE_NAME, &root, &err), TF_ERR_INVALID);
	assert_null(root);
	assert_non_null(strstr(err.msg, "line 1, column 16: the escape \\u0000"));
	/* "\\u0000" is a backslash followed by the text u0000: fine. */
	assert_int_equal(tf_json_parse(escaped_backslash, strlen(escaped_backslash), FILE_NAME, &root,
		&err), TF_OK);
	assert_string_equal(cJSON_GetObjectItem(root, "a")->valuestring, "x\\u0000");
	cJSON_Delete(root);
}

static void odd_member_names_are_escaped_in_paths(void **state)
{
	struct tf_err err;
	struct tf_jctx c;

	(void)state;
	tf_jctx_init(&c, FILE_NAME, &err);
	tf_jctx_member(&c, "a\"b\nc");
	assert_string_equal(c.path, "$[\"a\\\"b\\x0ac\"]");
}

static void failures_name_file_path_and_problem(void **state)
{
	struct tf_err err;
	struct tf_jctx c;

	(void)state;
	tf_jctx_init(&c, FILE_NAME, &err);
	tf_jctx_member(&c, "consumers");
	tf_jctx_index(&c, 1);
	assert_int_equal(tf_jfail(&c, "problem %d", 7), TF_ERR_INVALID);
	assert_string_equal(err.msg, FILE_NAME ": $.consumers[1]: problem 7");
	assert_int_equal(tf_jfail_at(&c, "not_after", "not an RFC 3339 time"), TF_ERR_INVALID);
	assert_string_equal(err.msg, FILE_NAME ": $.consumers[1].not_after: not an RFC 3339 time");
	/* tf_jfail_at leaves the path as it was. */
	assert_string_equal(c.path, "$.consumers[1]");
}

/* ---- member getters ---- */

/* A context at $.limits of FILE_NAME, over a parsed object. */
struct getter {
	struct tf_err err;
	struct tf_jctx c;
	cJSON *obj;
};

static void getter_init(struct getter *g, const char *text)
{
	g->obj = parse_ok_len(text, strlen(text));
	memset(&g->err, 0, sizeof(g->err));
	tf_jctx_init(&g->c, FILE_NAME, &g->err);
	tf_jctx_member(&g->c, "limits");
}

static void getter_done(struct getter *g)
{
	/* Every getter leaves the path where it found it. */
	assert_string_equal(g->c.path, "$.limits");
	cJSON_Delete(g->obj);
}

static void check_object_names_the_unknown_member(void **state)
{
	static const char *const names[] = { "max_messages_per_second", "max_payload_bytes", NULL };
	struct getter g;

	(void)state;
	getter_init(&g, "{\"max_payload_bytes\": 1, \"max_messages_per_second\": 2}");
	assert_int_equal(tf_jcheck_object(&g.c, g.obj, names), TF_OK);
	getter_done(&g);

	getter_init(&g, "{\"max_payload_bytes\": 1, \"max_rate\": 2, \"other\": 3}");
	assert_int_equal(tf_jcheck_object(&g.c, g.obj, names), TF_ERR_INVALID);
	assert_string_equal(g.err.msg, FILE_NAME ": $.limits.max_rate: unknown member");
	getter_done(&g);

	getter_init(&g, "{\"max rate\": 2}");
	assert_int_equal(tf_jcheck_object(&g.c, g.obj, names), TF_ERR_INVALID);
	assert_string_equal(g.err.msg, FILE_NAME ": $.limits[\"max rate\"]: unknown member");
	getter_done(&g);

	/* Names are case-sensitive. */
	getter_init(&g, "{\"Max_payload_bytes\": 1}");
	assert_int_equal(tf_jcheck_object(&g.c, g.obj, names), TF_ERR_INVALID);
	assert_string_equal(g.err.msg, FILE_NAME ": $.limits.Max_payload_bytes: unknown member");
	getter_done(&g);

	getter_init(&g, "[1]");
	assert_int_equal(tf_jcheck_object(&g.c, g.obj, names), TF_ERR_INVALID);
	assert_string_equal(g.err.msg, FILE_NAME ": $.limits: must be an object");
	getter_done(&g);

	getter_init(&g, "{}");
	assert_int_equal(tf_jcheck_object(&g.c, g.obj, names), TF_OK);
	getter_done(&g);
}

struct reported {
	char lines[4][256];
	int n;
};

static void note_report(void *ctx, const char *msg)
{
	struct reported *r = ctx;

	assert_true(r->n < 4);
	snprintf(r->lines[r->n++], sizeof(r->lines[0]), "%s", msg);
}

/* Collecting, every problem is reported, and err keeps the first. */
static void a_collecting_context_reports_every_problem(void **state)
{
	static const char *const names[] = { "max_messages_per_second", NULL };
	struct reported r = { .n = 0 };
	struct getter g;

	(void)state;
	getter_init(&g, "{\"max_rate\": 2, \"max_messages_per_second\": 1, \"other\": 3}");
	tf_jctx_collect(&g.c, note_report, &r);
	assert_int_equal(tf_jcheck_object(&g.c, g.obj, names), TF_ERR_INVALID);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.lines[0], FILE_NAME ": $.limits.max_rate: unknown member");
	assert_string_equal(r.lines[1], FILE_NAME ": $.limits.other: unknown member");
	assert_string_equal(g.err.msg, r.lines[0]);
	assert_true(tf_jctx_goes_on(&g.c, TF_ERR_INVALID));
	assert_false(tf_jctx_goes_on(&g.c, TF_ERR_NOMEM));
	getter_done(&g);
	/* Not collecting, a loader stops at the first. */
	getter_init(&g, "{\"max_rate\": 2, \"other\": 3}");
	assert_int_equal(tf_jcheck_object(&g.c, g.obj, names), TF_ERR_INVALID);
	assert_string_equal(g.err.msg, FILE_NAME ": $.limits.max_rate: unknown member");
	assert_false(tf_jctx_goes_on(&g.c, TF_ERR_INVALID));
	getter_done(&g);
}

static void jint_accepts_integers_within_bounds(void **state)
{
	struct getter g;
	int64_t v = 0;
	bool present = false;

	(void)state;
	getter_init(&g, "{\"lo\": 1, \"hi\": 10, \"neg\": -5, \"f\": 4.0, \"big\": 2147483647}");
	assert_int_equal(tf_jint(&g.c, g.obj, "lo", true, 1, 10, &v, &present), TF_OK);
	assert_true(present);
	assert_int_equal(v, 1);
	assert_int_equal(tf_jint(&g.c, g.obj, "hi", true, 1, 10, &v, &present), TF_OK);
	assert_int_equal(v, 10);
	assert_int_equal(tf_jint(&g.c, g.obj, "neg", true, -10, 0, &v, NULL), TF_OK);
	assert_int_equal(v, -5);
	assert_int_equal(tf_jint(&g.c, g.obj, "f", true, 0, 10, &v, NULL), TF_OK);
	assert_int_equal(v, 4);
	assert_int_equal(tf_jint(&g.c, g.obj, "big", true, 1, 2147483647, &v, NULL), TF_OK);
	assert_int_equal(v, 2147483647);
	/* Absent and optional. */
	present = true;
	v = 99;
	assert_int_equal(tf_jint(&g.c, g.obj, "none", false, 1, 10, &v, &present), TF_OK);
	assert_false(present);
	assert_int_equal(v, 99);
	getter_done(&g);
}

static void jint_refuses_out_of_bounds_and_non_integers(void **state)
{
	static const char *const bad[] = {
		"0", "11", "-1", "1.5", "1e300", "-1e300", "\"1\"", "true", "null", "[1]", "{}",
		"10.000001",
	};
	struct getter g;
	char text[64];
	int64_t v = 42;
	bool present = true;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "{\"n\": %s}", bad[i]);
		getter_init(&g, text);
		assert_int_equal(tf_jint(&g.c, g.obj, "n", false, 1, 10, &v, &present),
			TF_ERR_INVALID);
		assert_false(present);
		assert_int_equal(v, 42);
		assert_string_equal(g.err.msg,
			FILE_NAME ": $.limits.n: must be an integer from 1 to 10");
		getter_done(&g);
	}
	getter_init(&g, "{}");
	assert_int_equal(tf_jint(&g.c, g.obj, "n", true, 1, 10, &v, NULL), TF_ERR_INVALID);
	assert_string_equal(g.err.msg, FILE_NAME ": $.limits.n: is required");
	getter_done(&g);
}

static void json_integer_checks_values(void **state)
{
	cJSON *n;
	int64_t v = 0;

	(void)state;
	n = cJSON_CreateNumber(86400);
	assert_true(tf_json_integer(n, 1, 100000, &v));
	assert_int_equal(v, 86400);
	assert_false(tf_json_integer(n, 1, 86399, &v));
	cJSON_Delete(n);
	n = cJSON_CreateNumber(INFINITY);
	assert_false(tf_json_integer(n, INT32_MIN, INT32_MAX, &v));
	cJSON_Delete(n);
	n = cJSON_CreateNumber(NAN);
	assert_false(tf_json_integer(n, INT32_MIN, INT32_MAX, &v));
	cJSON_Delete(n);
	n = cJSON_CreateString("5");
	assert_false(tf_json_integer(n, 0, 10, &v));
	cJSON_Delete(n);
	assert_int_equal(v, 86400);
}

static void jbool_reads_true_and_false_only(void **state)
{
	static const char *const bad[] = { "1", "0", "\"true\"", "null", "[]" };
	struct getter g;
	char text[64];
	bool v = false, present = false;

	(void)state;
	getter_init(&g, "{\"t\": true, \"f\": false}");
	assert_int_equal(tf_jbool(&g.c, g.obj, "t", true, &v, &present), TF_OK);
	assert_true(v);
	assert_true(present);
	assert_int_equal(tf_jbool(&g.c, g.obj, "f", true, &v, &present), TF_OK);
	assert_false(v);
	assert_true(present);
	v = true;
	assert_int_equal(tf_jbool(&g.c, g.obj, "x", false, &v, &present), TF_OK);
	assert_false(present);
	assert_true(v);
	assert_int_equal(tf_jbool(&g.c, g.obj, "x", true, &v, NULL), TF_ERR_INVALID);
	assert_string_equal(g.err.msg, FILE_NAME ": $.limits.x: is required");
	getter_done(&g);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "{\"disconnect\": %s}", bad[i]);
		getter_init(&g, text);
		assert_int_equal(tf_jbool(&g.c, g.obj, "disconnect", false, &v, &present),
			TF_ERR_INVALID);
		assert_false(present);
		assert_string_equal(g.err.msg,
			FILE_NAME ": $.limits.disconnect: must be true or false");
		getter_done(&g);
	}
}

static void jarray_checks_kind_and_size(void **state)
{
	struct getter g;
	const cJSON *out;

	(void)state;
	getter_init(&g, "{\"e\": [], \"one\": [1], \"three\": [1, 2, 3], \"four\": [1, 2, 3, 4],"
		" \"s\": \"x\", \"o\": {}}");
	assert_int_equal(tf_jarray(&g.c, g.obj, "e", true, 0, 3, &out), TF_OK);
	assert_non_null(out);
	assert_int_equal(cJSON_GetArraySize(out), 0);
	assert_int_equal(tf_jarray(&g.c, g.obj, "three", true, 1, 3, &out), TF_OK);
	assert_int_equal(cJSON_GetArraySize(out), 3);
	assert_int_equal(tf_jarray(&g.c, g.obj, "absent", false, 1, 3, &out), TF_OK);
	assert_null(out);

	assert_int_equal(tf_jarray(&g.c, g.obj, "e", true, 1, 3, &out), TF_ERR_INVALID);
	assert_null(out);
	assert_string_equal(g.err.msg, FILE_NAME ": $.limits.e: must not be empty");
	assert_int_equal(tf_jarray(&g.c, g.obj, "one", true, 2, 3, &out), TF_ERR_INVALID);
	assert_string_equal(g.err.msg, FILE_NAME ": $.limits.one: must have at least 2 items");
	assert_int_equal(tf_jarray(&g.c, g.obj, "four", true, 1, 3, &out), TF_ERR_INVALID);
	assert_null(out);
	assert_string_equal(g.err.msg,
		FILE_NAME ": $.limits.four: has 4 items, more than the 3 allowed");
	assert_int_equal(tf_jarray(&g.c, g.obj, "s", false, 0, 3, &out), TF_ERR_INVALID);
	assert_string_equal(g.err.msg, FILE_NAME ": $.limits.s: must be a list");
	assert_int_equal(tf_jarray(&g.c, g.obj, "o", false, 0, 3, &out), TF_ERR_INVALID);
	assert_string_equal(g.err.msg, FILE_NAME ": $.limits.o: must be a list");
	assert_int_equal(tf_jarray(&g.c, g.obj, "absent", true, 0, 3, &out), TF_ERR_INVALID);
	assert_string_equal(g.err.msg, FILE_NAME ": $.limits.absent: is required");
	getter_done(&g);
}

static void jstring_and_jid_check_values(void **state)
{
	struct getter g;
	const char *s;

	(void)state;
	getter_init(&g, "{\"s\": \"abcd\", \"n\": 4, \"id\": \"maint-co\", \"bad\": \"a b\","
		" \"dash\": \"-x\"}");
	assert_int_equal(tf_jstring(&g.c, g.obj, "s", true, 4, &s), TF_OK);
	assert_string_equal(s, "abcd");
	assert_int_equal(tf_jstring(&g.c, g.obj, "s", true, 3, &s), TF_ERR_INVALID);
	assert_null(s);
	assert_string_equal(g.err.msg, FILE_NAME ": $.limits.s: longer than 3 bytes");
	assert_int_equal(tf_jstring(&g.c, g.obj, "n", true, 3, &s), TF_ERR_INVALID);
	assert_string_equal(g.err.msg, FILE_NAME ": $.limits.n: must be a string");
	assert_int_equal(tf_jstring(&g.c, g.obj, "none", false, 3, &s), TF_OK);
	assert_null(s);

	assert_int_equal(tf_jid(&g.c, g.obj, "id", true, &s), TF_OK);
	assert_string_equal(s, "maint-co");
	assert_int_equal(tf_jid(&g.c, g.obj, "bad", true, &s), TF_ERR_INVALID);
	assert_null(s);
	assert_true(strncmp(g.err.msg, FILE_NAME ": $.limits.bad: not a valid id",
		strlen(FILE_NAME ": $.limits.bad: not a valid id")) == 0);
	assert_int_equal(tf_jid(&g.c, g.obj, "dash", true, &s), TF_ERR_INVALID);
	assert_int_equal(tf_jid(&g.c, g.obj, "n", true, &s), TF_ERR_INVALID);
	assert_int_equal(tf_jid(&g.c, g.obj, "none", true, &s), TF_ERR_INVALID);
	assert_string_equal(g.err.msg, FILE_NAME ": $.limits.none: is required");
	getter_done(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(valid_json_parses),
		cmocka_unit_test(a_collecting_context_reports_every_problem),
		cmocka_unit_test(only_the_given_length_is_read),
		cmocka_unit_test(well_formed_multibyte_utf8_is_accepted),
		cmocka_unit_test(overlong_utf8_is_reported_with_line_and_column),
		cmocka_unit_test(surrogate_utf8_is_reported_with_line_and_column),
		cmocka_unit_test(truncated_utf8_is_reported_with_line_and_column),
		cmocka_unit_test(other_malformed_utf8_is_reported),
		cmocka_unit_test(nul_byte_is_reported_with_line_and_column),
		cmocka_unit_test(invalid_json_is_reported_with_line_and_column),
		cmocka_unit_test(trailing_text_is_invalid),
		cmocka_unit_test(empty_text_is_invalid),
		cmocka_unit_test(repeated_member_at_top_level_is_refused),
		cmocka_unit_test(repeated_member_in_nested_object_names_its_path),
		cmocka_unit_test(same_name_in_different_objects_is_fine),
		cmocka_unit_test(repeated_member_in_large_object_names_its_path),
		cmocka_unit_test(large_object_without_repeats_parses),
		cmocka_unit_test(file_loads_and_errors_name_the_display_name),
		cmocka_unit_test(file_over_the_size_cap_is_refused),
		cmocka_unit_test(missing_file_is_an_io_error),
		cmocka_unit_test(duplicate_in_loaded_file_names_the_path),
		cmocka_unit_test(paths_are_built_and_popped),
		cmocka_unit_test(odd_member_names_are_bracketed),
		cmocka_unit_test(long_paths_are_cut_not_overrun),
		cmocka_unit_test(nul_escape_is_refused),
		cmocka_unit_test(odd_member_names_are_escaped_in_paths),
		cmocka_unit_test(failures_name_file_path_and_problem),
		cmocka_unit_test(check_object_names_the_unknown_member),
		cmocka_unit_test(jint_accepts_integers_within_bounds),
		cmocka_unit_test(jint_refuses_out_of_bounds_and_non_integers),
		cmocka_unit_test(json_integer_checks_values),
		cmocka_unit_test(jbool_reads_true_and_false_only),
		cmocka_unit_test(jarray_checks_kind_and_size),
		cmocka_unit_test(jstring_and_jid_check_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
