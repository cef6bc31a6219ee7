/* Unit tests for policy/schema.c: the JSON Schema subset of payload
 * schemas, compiled as the policy loader does and checked against
 * payloads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/jsonfile.h"
#include "policy/schema.h"

#define FILE_NAME "policies/water.json"
#define WHY_LEN 256

static cJSON *parse(const char *text)
{
	struct tf_err err;
	cJSON *tree = NULL;

	if (tf_json_parse(text, strlen(text), "test", &tree, &err) != TF_OK)
		fail_msg("cannot parse %s: %s", text, err.msg);
	return tree;
}

/* Compiles text as the member "schema" of a policy file, the way the
 * loader does, and deletes the tree at once: the compiled schema must
 * borrow nothing from it (ASan would see). */
static int compile(const char *text, struct tf_schema **out, struct tf_err *err)
{
	struct tf_jctx c;
	cJSON *node = parse(text);
	int rc;

	memset(err, 0, sizeof(*err));
	tf_jctx_init(&c, FILE_NAME, err);
	tf_jctx_member(&c, "schema");
	rc = tf_schema_compile(&c, node, out);
	cJSON_Delete(node);
	return rc;
}

static struct tf_schema *compile_ok(const char *text)
{
	struct tf_schema *s = NULL;
	struct tf_err err;

	if (compile(text, &s, &err) != TF_OK)
		fail_msg("%s does not compile: %s", text, err.msg);
	assert_non_null(s);
	return s;
}

/* expected is "path: message", so the path is checked whole, not as a
 * prefix of a longer one. */
static void compile_fails(const char *text, const char *expected)
{
	struct tf_schema *s = NULL;
	struct tf_err err;

	assert_int_equal(compile(text, &s, &err), TF_ERR_INVALID);
	assert_null(s);
	assert_true(strncmp(err.msg, FILE_NAME ": ", strlen(FILE_NAME ": ")) == 0);
	if (strstr(err.msg, expected) == NULL)
		fail_msg("\"%s\" does not contain \"%s\"", err.msg, expected);
}

static bool check(const struct tf_schema *s, const char *payload, char *why)
{
	cJSON *value = parse(payload);
	bool ok = tf_schema_validate(s, value, why, WHY_LEN);

	cJSON_Delete(value);
	return ok;
}

static void accepts(const struct tf_schema *s, const char *payload)
{
	char why[WHY_LEN];

	if (!check(s, payload, why))
		fail_msg("%s rejected: %s", payload, why);
	assert_string_equal(why, "");
}

static void rejects(const struct tf_schema *s, const char *payload, const char *reason)
{
	char why[WHY_LEN];

	if (check(s, payload, why))
		fail_msg("%s accepted", payload);
	assert_string_equal(why, reason);
}

/* Generated schema text. Caller frees. */
enum seq_kind { SEQ_NUMBERS, SEQ_STRINGS, SEQ_EMPTY_SCHEMAS };

static char *seq_text(enum seq_kind kind, int n)
{
	size_t cap = 32 + (size_t)n * 16, o = 0;
	char *t = malloc(cap);

	assert_non_null(t);
	t[o++] = kind == SEQ_EMPTY_SCHEMAS ? '{' : '[';
	for (int i = 0; i < n; i++) {
		if (i > 0)
			t[o++] = ',';
		switch (kind) {
		case SEQ_NUMBERS:
			o += (size_t)snprintf(t + o, cap - o, "%d", i);
			break;
		case SEQ_STRINGS:
			o += (size_t)snprintf(t + o, cap - o, "\"r%d\"", i);
			break;
		case SEQ_EMPTY_SCHEMAS:
			o += (size_t)snprintf(t + o, cap - o, "\"p%d\":{}", i);
			break;
		}
	}
	t[o++] = kind == SEQ_EMPTY_SCHEMAS ? '}' : ']';
	t[o] = '\0';
	return t;
}

/* {"keyword": value}. Caller frees. */
static char *wrap(const char *keyword, const char *value)
{
	size_t cap = strlen(keyword) + strlen(value) + 8;
	char *t = malloc(cap);

	assert_non_null(t);
	snprintf(t, cap, "{\"%s\":%s}", keyword, value);
	return t;
}

/* levels schemas, each the items of the one above. Caller frees. */
static char *deep_schema(int levels)
{
	size_t cap = (size_t)levels * 10 + 8, o = 0;
	char *t = malloc(cap);

	assert_non_null(t);
	for (int i = 1; i < levels; i++)
		o += (size_t)snprintf(t + o, cap - o, "{\"items\":");
	o += (size_t)snprintf(t + o, cap - o, "{}");
	for (int i = 1; i < levels; i++)
		t[o++] = '}';
	t[o] = '\0';
	return t;
}

/* A root whose properties p0..p(n-1) have members[i] empty subschemas
 * each: 1 + n + the sum of members schema objects. Caller frees. */
static char *wide_schema(const int *members, int n)
{
	size_t cap = 64, o = 0;
	char *t;

	for (int i = 0; i < n; i++)
		cap += 32 + (size_t)members[i] * 16;
	t = malloc(cap);
	assert_non_null(t);
	o += (size_t)snprintf(t + o, cap - o, "{\"properties\":{");
	for (int i = 0; i < n; i++) {
		char *inner = seq_text(SEQ_EMPTY_SCHEMAS, members[i]);

		o += (size_t)snprintf(t + o, cap - o, "%s\"p%d\":{\"properties\":%s}",
			i > 0 ? "," : "", i, inner);
		free(inner);
	}
	snprintf(t + o, cap - o, "}}");
	return t;
}

/* ---- Validation ---- */

static void type_accepts_only_the_named_type(void **state)
{
	struct tf_schema *s;

	(void)state;
	s = compile_ok("{\"type\": \"object\"}");
	accepts(s, "{}");
	rejects(s, "[]", "$: must be an object");
	tf_schema_free(s);

	s = compile_ok("{\"type\": \"array\"}");
	accepts(s, "[1]");
	rejects(s, "{}", "$: must be an array");
	tf_schema_free(s);

	s = compile_ok("{\"type\": \"string\"}");
	accepts(s, "\"x\"");
	rejects(s, "1", "$: must be a string");
	tf_schema_free(s);

	s = compile_ok("{\"type\": \"boolean\"}");
	accepts(s, "false");
	rejects(s, "0", "$: must be a boolean");
	tf_schema_free(s);

	s = compile_ok("{\"type\": \"null\"}");
	accepts(s, "null");
	rejects(s, "false", "$: must be null");
	tf_schema_free(s);
}

static void type_list_accepts_any_listed_type(void **state)
{
	struct tf_schema *s;

	(void)state;
	s = compile_ok("{\"type\": [\"string\", \"null\"]}");
	accepts(s, "\"x\"");
	accepts(s, "null");
	rejects(s, "1", "$: must be a string or null");
	rejects(s, "{}", "$: must be a string or null");
	tf_schema_free(s);

	s = compile_ok("{\"type\": [\"object\", \"array\", \"boolean\"]}");
	rejects(s, "\"x\"", "$: must be an object, an array or a boolean");
	tf_schema_free(s);
}

static void integer_is_a_number_without_fraction(void **state)
{
	struct tf_schema *s;

	(void)state;
	s = compile_ok("{\"type\": \"integer\"}");
	accepts(s, "3");
	accepts(s, "-7");
	accepts(s, "3.0");
	accepts(s, "1e3");
	rejects(s, "3.5", "$: must be an integer");
	rejects(s, "\"3\"", "$: must be an integer");
	tf_schema_free(s);

	s = compile_ok("{\"type\": \"number\"}");
	accepts(s, "3");
	accepts(s, "3.5");
	rejects(s, "\"3.5\"", "$: must be a number");
	tf_schema_free(s);
}

static void empty_schema_accepts_everything(void **state)
{
	struct tf_schema *s;

	(void)state;
	s = compile_ok("{}");
	accepts(s, "{\"a\": [1, \"x\", null]}");
	accepts(s, "null");
	accepts(s, "\"x\"");
	tf_schema_free(s);
}

static void required_members_must_be_present(void **state)
{
	struct tf_schema *s;

	(void)state;
	s = compile_ok("{\"required\": [\"flow\", \"at\"]}");
	accepts(s, "{\"flow\": 1, \"at\": \"t\"}");
	accepts(s, "{\"flow\": null, \"at\": 0, \"extra\": true}");
	rejects(s, "{\"at\": \"t\"}", "$: member \"flow\" is required");
	rejects(s, "{\"flow\": 1}", "$: member \"at\" is required");
	tf_schema_free(s);

	s = compile_ok("{\"required\": []}");
	accepts(s, "{}");
	tf_schema_free(s);
}

static void properties_check_the_members_they_name(void **state)
{
	struct tf_schema *s;

	(void)state;
	s = compile_ok("{\"properties\": {\"flow\": {\"type\": \"number\"}, "
		"\"unit\": {\"enum\": [\"l/s\", \"m3/h\"]}}}");
	accepts(s, "{\"flow\": 2.5, \"unit\": \"l/s\"}");
	accepts(s, "{}");
	accepts(s, "{\"other\": \"anything\"}");
	rejects(s, "{\"flow\": \"2.5\"}", "$.flow: must be a number");
	rejects(s, "{\"flow\": 1, \"unit\": \"gal\"}",
		"$.unit: is not one of the values the schema allows");
	tf_schema_free(s);
}

static void additional_properties_false_refuses_unlisted_members(void **state)
{
	struct tf_schema *s;

	(void)state;
	s = compile_ok("{\"properties\": {\"flow\": {}, \"unit\": {}}, "
		"\"additionalProperties\": false}");
	accepts(s, "{\"flow\": 1}");
	accepts(s, "{\"flow\": 1, \"unit\": \"l/s\"}");
	rejects(s, "{\"flow\": 1, \"pressure\": 3}", "$: member \"pressure\" is not allowed");
	tf_schema_free(s);

	s = compile_ok("{\"additionalProperties\": false}");
	accepts(s, "{}");
	rejects(s, "{\"a\": 1}", "$: member \"a\" is not allowed");
	tf_schema_free(s);

	s = compile_ok("{\"additionalProperties\": true}");
	accepts(s, "{\"a\": 1}");
	tf_schema_free(s);
}

static void items_apply_to_every_element(void **state)
{
	struct tf_schema *s;

	(void)state;
	s = compile_ok("{\"properties\": {\"tags\": {\"items\": {\"type\": \"string\"}}}}");
	accepts(s, "{\"tags\": []}");
	accepts(s, "{\"tags\": [\"a\", \"b\"]}");
	rejects(s, "{\"tags\": [\"a\", \"b\", 3]}", "$.tags[2]: must be a string");
	tf_schema_free(s);
}

static void nested_items_and_properties_name_the_full_path(void **state)
{
	struct tf_schema *s;

	(void)state;
	s = compile_ok("{\"type\": \"object\", \"properties\": {\"readings\": {\"type\": \"array\", "
		"\"items\": {\"type\": \"object\", \"required\": [\"sensor\"], \"properties\": {"
		"\"sensor\": {\"properties\": {\"id\": {\"type\": \"string\", \"maxLength\": 4}}}, "
		"\"values\": {\"items\": {\"items\": {\"type\": \"integer\"}}}}}}}}");
	accepts(s, "{\"readings\": [{\"sensor\": {\"id\": \"s1\"}, \"values\": [[1, 2], []]}]}");
	rejects(s, "{\"readings\": [{\"sensor\": {}}, {\"sensor\": {\"id\": \"s12345\"}}]}",
		"$.readings[1].sensor.id: has 6 characters, more than the maximum length 4");
	rejects(s, "{\"readings\": [{\"sensor\": {}, \"values\": [[1], [2, 2.5]]}]}",
		"$.readings[0].values[1][1]: must be an integer");
	rejects(s, "{\"readings\": [{\"values\": []}]}",
		"$.readings[0]: member \"sensor\" is required");
	tf_schema_free(s);
}

static void enum_compares_whole_values(void **state)
{
	struct tf_schema *s;

	(void)state;
	s = compile_ok("{\"enum\": [{\"mode\": \"auto\", \"limits\": [1, 2]}, \"off\", 7, null]}");
	accepts(s, "{\"limits\": [1, 2], \"mode\": \"auto\"}");
	accepts(s, "\"off\"");
	accepts(s, "7.0");
	accepts(s, "null");
	rejects(s, "{\"mode\": \"auto\", \"limits\": [2, 1]}",
		"$: is not one of the values the schema allows");
	rejects(s, "{\"mode\": \"auto\", \"limits\": [1, 2], \"x\": 0}",
		"$: is not one of the values the schema allows");
	rejects(s, "{\"mode\": \"Auto\", \"limits\": [1, 2]}",
		"$: is not one of the values the schema allows");
	rejects(s, "{\"Mode\": \"auto\", \"limits\": [1, 2]}",
		"$: is not one of the values the schema allows");
	rejects(s, "\"OFF\"", "$: is not one of the values the schema allows");
	rejects(s, "8", "$: is not one of the values the schema allows");
	tf_schema_free(s);
}

static void minimum_and_maximum_are_inclusive(void **state)
{
	struct tf_schema *s;

	(void)state;
	s = compile_ok("{\"properties\": {\"flow\": {\"minimum\": 0, \"maximum\": 1000}, "
		"\"level\": {\"minimum\": -0.5}}}");
	accepts(s, "{\"flow\": 0}");
	accepts(s, "{\"flow\": 1000}");
	accepts(s, "{\"flow\": 999.99, \"level\": -0.5}");
	rejects(s, "{\"flow\": 1200}", "$.flow: 1200 is above the maximum 1000");
	rejects(s, "{\"flow\": -1}", "$.flow: -1 is below the minimum 0");
	rejects(s, "{\"flow\": 1000.5}", "$.flow: 1000.5 is above the maximum 1000");
	rejects(s, "{\"level\": -0.75}", "$.level: -0.75 is below the minimum -0.5");
	tf_schema_free(s);
}

static void lengths_count_code_points_not_bytes(void **state)
{
	struct tf_schema *s;

	(void)state;
	s = compile_ok("{\"minLength\": 2, \"maxLength\": 3}");
	accepts(s, "\"ab\"");
	accepts(s, "\"abc\"");
	/* é (2 bytes), 日本語 (3 bytes each), 😀 (4 bytes): 6 to 12 bytes. */
	accepts(s, "\"\xc3\xa9t\xc3\xa9\"");
	accepts(s, "\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"");
	accepts(s, "\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\"");
	/* An escape is one character once decoded. */
	accepts(s, "\"\\u00e9\\u00e9\"");
	rejects(s, "\"a\"", "$: has 1 character, fewer than the minimum length 2");
	rejects(s, "\"\xf0\x9f\x98\x80\"", "$: has 1 character, fewer than the minimum length 2");
	rejects(s, "\"abcd\"", "$: has 4 characters, more than the maximum length 3");
	rejects(s, "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"",
		"$: has 4 characters, more than the maximum length 3");
	tf_schema_free(s);

	s = compile_ok("{\"maxLength\": 0}");
	accepts(s, "\"\"");
	rejects(s, "\" \"", "$: has 1 character, more than the maximum length 0");
	tf_schema_free(s);
}

static void keywords_ignore_instances_of_other_types(void **state)
{
	struct tf_schema *s;

	(void)state;
	s = compile_ok("{\"minimum\": 10, \"maximum\": 20}");
	accepts(s, "\"x\"");
	accepts(s, "[1, 100]");
	accepts(s, "{\"a\": 100}");
	accepts(s, "true");
	accepts(s, "null");
	rejects(s, "3", "$: 3 is below the minimum 10");
	tf_schema_free(s);

	s = compile_ok("{\"minLength\": 5, \"maxLength\": 6}");
	accepts(s, "3");
	accepts(s, "[\"x\"]");
	accepts(s, "{\"x\": \"x\"}");
	rejects(s, "\"x\"", "$: has 1 character, fewer than the minimum length 5");
	tf_schema_free(s);

	s = compile_ok("{\"required\": [\"a\"], \"properties\": {\"b\": {\"type\": \"null\"}}, "
		"\"additionalProperties\": false}");
	accepts(s, "\"x\"");
	accepts(s, "[{\"c\": 1}]");
	accepts(s, "7");
	rejects(s, "{}", "$: member \"a\" is required");
	tf_schema_free(s);

	s = compile_ok("{\"items\": {\"type\": \"null\"}}");
	accepts(s, "{\"a\": 1}");
	accepts(s, "\"x\"");
	rejects(s, "[null, 1]", "$[1]: must be null");
	tf_schema_free(s);
}

static void reason_paths_quote_unusual_member_names(void **state)
{
	struct tf_schema *s;
	char payload[512], expected[256];

	(void)state;
	s = compile_ok("{\"properties\": {\"x y\": {\"type\": \"string\"}, "
		"\"a\\\"b\": {\"type\": \"string\"}, \"line\\nbreak\": {\"type\": \"string\"}, "
		"\"r\xc3\xa9seau\": {\"type\": \"string\"}, "
		"\"under_score-dash9\": {\"type\": \"string\"}}, \"additionalProperties\": false}");
	rejects(s, "{\"x y\": 1}", "$[\"x y\"]: must be a string");
	rejects(s, "{\"a\\\"b\": 1}", "$[\"a\\\"b\"]: must be a string");
	rejects(s, "{\"line\\nbreak\": 1}", "$[\"line\\x0abreak\"]: must be a string");
	rejects(s, "{\"r\xc3\xa9seau\": 1}", "$[\"r\xc3\xa9seau\"]: must be a string");
	rejects(s, "{\"under_score-dash9\": 1}", "$.under_score-dash9: must be a string");
	rejects(s, "{\"evil\\u0007\\r\\n\": 1}", "$: member \"evil\\x07\\x0d\\x0a\" is not allowed");
	/* A long name is cut, with "..." to say so. */
	snprintf(payload, sizeof(payload), "{\"%0200d\": 1}", 0);
	snprintf(expected, sizeof(expected), "$: member \"%060d...\" is not allowed", 0);
	rejects(s, payload, expected);
	tf_schema_free(s);
}

static void reason_is_cut_to_the_buffer(void **state)
{
	struct tf_schema *s;
	cJSON *value = parse("{\"flow\": 1200}");
	char why[16];

	(void)state;
	s = compile_ok("{\"properties\": {\"flow\": {\"maximum\": 1000}}}");
	memset(why, 'x', sizeof(why));
	assert_false(tf_schema_validate(s, value, why, 8));
	assert_string_equal(why, "$.flow:");
	assert_int_equal(why[8], 'x');
	assert_false(tf_schema_validate(s, value, NULL, 0));
	assert_false(tf_schema_validate(s, NULL, why, sizeof(why)));
	assert_string_equal(why, "$: not JSON");
	cJSON_Delete(value);
	tf_schema_free(s);
}

/* ---- Compilation ---- */

static void schema_must_be_an_object(void **state)
{
	(void)state;
	compile_fails("true", "$.schema: must be an object");
	compile_fails("[{}]", "$.schema: must be an object");
	compile_fails("{\"properties\": {\"flow\": false}}",
		"$.schema.properties.flow: must be an object");
	compile_fails("{\"items\": \"string\"}", "$.schema.items: must be an object");
}

static void unknown_keyword_is_refused_at_its_path(void **state)
{
	(void)state;
	compile_fails("{\"format\": \"date-time\"}", "$.schema.format: unknown schema keyword");
	compile_fails("{\"properties\": {\"flow\": {\"type\": \"number\", \"multipleOf\": 5}}}",
		"$.schema.properties.flow.multipleOf: unknown schema keyword");
	compile_fails("{\"items\": {\"Type\": \"string\"}}",
		"$.schema.items.Type: unknown schema keyword");
	compile_fails("{\"description\": \"flow\"}", "$.schema.description: unknown schema keyword");
}

static void repeated_keyword_is_refused(void **state)
{
	struct tf_schema *s = NULL;
	struct tf_err err;
	struct tf_jctx c;
	cJSON *node = cJSON_CreateObject();

	(void)state;
	/* tf_json_parse() refuses this; a tree built in code can have it. */
	assert_non_null(cJSON_AddNumberToObject(node, "minimum", 1));
	assert_non_null(cJSON_AddNumberToObject(node, "minimum", 2));
	tf_jctx_init(&c, FILE_NAME, &err);
	tf_jctx_member(&c, "schema");
	assert_int_equal(tf_schema_compile(&c, node, &s), TF_ERR_INVALID);
	assert_null(s);
	assert_non_null(strstr(err.msg, "$.schema.minimum: is given more than once"));
	cJSON_Delete(node);
}

static void type_must_name_known_types_once(void **state)
{
	(void)state;
	compile_fails("{\"type\": \"float\"}", "$.schema.type: unknown type \"float\"");
	compile_fails("{\"type\": [\"string\", \"int\"]}", "$.schema.type[1]: unknown type \"int\"");
	compile_fails("{\"type\": [\"string\", \"null\", \"string\"]}",
		"$.schema.type[2]: type \"string\" is given more than once");
	compile_fails("{\"type\": []}", "$.schema.type: must not be empty");
	compile_fails("{\"type\": 1}", "$.schema.type: must be a type name or a list of them");
	compile_fails("{\"type\": [null]}", "$.schema.type[0]: must be a type name");
	compile_fails("{\"properties\": {\"flow\": {\"type\": \"Number\"}}}",
		"$.schema.properties.flow.type: unknown type \"Number\"");
}

static void required_must_list_distinct_names(void **state)
{
	char *list, *text;

	(void)state;
	compile_fails("{\"required\": \"flow\"}", "$.schema.required: must be a list");
	compile_fails("{\"required\": [\"flow\", 1]}", "$.schema.required[1]: must be a string");
	compile_fails("{\"required\": [\"flow\", \"at\", \"flow\"]}",
		"$.schema.required[2]: \"flow\" is given more than once");

	list = seq_text(SEQ_STRINGS, TF_SCHEMA_MAX_ITEMS);
	text = wrap("required", list);
	tf_schema_free(compile_ok(text));
	free(text);
	free(list);

	list = seq_text(SEQ_STRINGS, TF_SCHEMA_MAX_ITEMS + 1);
	text = wrap("required", list);
	compile_fails(text, "$.schema.required: has 257 items, more than the 256 allowed");
	free(text);
	free(list);
}

static void properties_must_be_an_object_of_schemas(void **state)
{
	char *members, *text;

	(void)state;
	compile_fails("{\"properties\": [\"flow\"]}", "$.schema.properties: must be an object");
	compile_fails("{\"properties\": {\"a\": {\"properties\": {\"b c\": {\"minimum\": \"0\"}}}}}",
		"$.schema.properties.a.properties[\"b c\"].minimum: must be a number");

	members = seq_text(SEQ_EMPTY_SCHEMAS, TF_SCHEMA_MAX_ITEMS);
	text = wrap("properties", members);
	tf_schema_free(compile_ok(text));
	free(text);
	free(members);

	members = seq_text(SEQ_EMPTY_SCHEMAS, TF_SCHEMA_MAX_ITEMS + 1);
	text = wrap("properties", members);
	compile_fails(text, "$.schema.properties: has 257 members, more than the 256 allowed");
	free(text);
	free(members);
}

static void additional_properties_must_be_a_boolean(void **state)
{
	(void)state;
	compile_fails("{\"additionalProperties\": {\"type\": \"string\"}}",
		"$.schema.additionalProperties: a schema here is not supported; use true or false");
	compile_fails("{\"additionalProperties\": 0}",
		"$.schema.additionalProperties: must be true or false");
	compile_fails("{\"additionalProperties\": \"false\"}",
		"$.schema.additionalProperties: must be true or false");
}

static void items_must_be_one_schema(void **state)
{
	(void)state;
	compile_fails("{\"items\": [{\"type\": \"string\"}, {\"type\": \"number\"}]}",
		"$.schema.items: a list of schemas (one per position) is not supported");
	compile_fails("{\"items\": true}", "$.schema.items: must be an object");
	compile_fails("{\"items\": {\"items\": {\"maxLength\": -1}}}",
		"$.schema.items.items.maxLength: must be an integer from 0 to 2147483647");
}

static void enum_must_be_a_bounded_non_empty_list(void **state)
{
	char *list, *text;

	(void)state;
	compile_fails("{\"enum\": []}", "$.schema.enum: must not be empty");
	compile_fails("{\"enum\": \"on\"}", "$.schema.enum: must be a list");

	list = seq_text(SEQ_NUMBERS, TF_SCHEMA_MAX_ITEMS);
	text = wrap("enum", list);
	tf_schema_free(compile_ok(text));
	free(text);
	free(list);

	list = seq_text(SEQ_NUMBERS, TF_SCHEMA_MAX_ITEMS + 1);
	text = wrap("enum", list);
	compile_fails(text, "$.schema.enum: has 257 items, more than the 256 allowed");
	free(text);
	free(list);
}

static void bounds_must_be_finite_numbers(void **state)
{
	(void)state;
	compile_fails("{\"properties\": {\"flow\": {\"minimum\": \"0\"}}}",
		"$.schema.properties.flow.minimum: must be a number");
	compile_fails("{\"maximum\": null}", "$.schema.maximum: must be a number");
	/* cJSON reads 1e999 as infinity. */
	compile_fails("{\"maximum\": 1e999}", "$.schema.maximum: must be a number");
	tf_schema_free(compile_ok("{\"minimum\": -1.5e3, \"maximum\": 0.25}"));
}

static void minimum_above_maximum_is_refused(void **state)
{
	struct tf_schema *s;

	(void)state;
	compile_fails("{\"minimum\": 10, \"maximum\": 5}",
		"$.schema.minimum: 10 is more than maximum 5");
	compile_fails("{\"items\": {\"maximum\": 0.5, \"minimum\": 0.75}}",
		"$.schema.items.minimum: 0.75 is more than maximum 0.5");
	s = compile_ok("{\"minimum\": 5, \"maximum\": 5}");
	accepts(s, "5");
	rejects(s, "5.5", "$: 5.5 is above the maximum 5");
	tf_schema_free(s);
}

static void lengths_must_be_non_negative_32_bit_integers(void **state)
{
	(void)state;
	compile_fails("{\"minLength\": -1}",
		"$.schema.minLength: must be an integer from 0 to 2147483647");
	compile_fails("{\"maxLength\": 1.5}",
		"$.schema.maxLength: must be an integer from 0 to 2147483647");
	compile_fails("{\"maxLength\": 2147483648}",
		"$.schema.maxLength: must be an integer from 0 to 2147483647");
	compile_fails("{\"maxLength\": \"3\"}",
		"$.schema.maxLength: must be an integer from 0 to 2147483647");
	compile_fails("{\"minLength\": 4, \"maxLength\": 3}",
		"$.schema.minLength: 4 is more than maxLength 3");
	tf_schema_free(compile_ok("{\"minLength\": 0, \"maxLength\": 2147483647}"));
	tf_schema_free(compile_ok("{\"minLength\": 3, \"maxLength\": 3.0}"));
}

static void nesting_deeper_than_the_cap_is_refused(void **state)
{
	char expected[256] = "$.schema";
	char *text;

	(void)state;
	text = deep_schema(TF_SCHEMA_MAX_DEPTH);
	tf_schema_free(compile_ok(text));
	free(text);

	for (int i = 0; i < TF_SCHEMA_MAX_DEPTH; i++)
		strcat(expected, ".items");
	strcat(expected, ": schema nested deeper than 16 levels");
	text = deep_schema(TF_SCHEMA_MAX_DEPTH + 1);
	compile_fails(text, expected);
	free(text);
}

static void more_subschemas_than_the_cap_are_refused(void **state)
{
	/* 1 root + 4 properties + their members: 1024, then 1025. */
	const int fits[] = { 255, 255, 255, 254 };
	const int over[] = { 255, 255, 255, 255 };
	char *text;

	(void)state;
	text = wide_schema(fits, 4);
	tf_schema_free(compile_ok(text));
	free(text);

	text = wide_schema(over, 4);
	compile_fails(text,
		"$.schema.properties.p3.properties.p254: schema has more than 1024 subschemas");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(type_accepts_only_the_named_type),
		cmocka_unit_test(type_list_accepts_any_listed_type),
		cmocka_unit_test(integer_is_a_number_without_fraction),
		cmocka_unit_test(empty_schema_accepts_everything),
		cmocka_unit_test(required_members_must_be_present),
		cmocka_unit_test(properties_check_the_members_they_name),
		cmocka_unit_test(additional_properties_false_refuses_unlisted_members),
		cmocka_unit_test(items_apply_to_every_element),
		cmocka_unit_test(nested_items_and_properties_name_the_full_path),
		cmocka_unit_test(enum_compares_whole_values),
		cmocka_unit_test(minimum_and_maximum_are_inclusive),
		cmocka_unit_test(lengths_count_code_points_not_bytes),
		cmocka_unit_test(keywords_ignore_instances_of_other_types),
		cmocka_unit_test(reason_paths_quote_unusual_member_names),
		cmocka_unit_test(reason_is_cut_to_the_buffer),
		cmocka_unit_test(schema_must_be_an_object),
		cmocka_unit_test(unknown_keyword_is_refused_at_its_path),
		cmocka_unit_test(repeated_keyword_is_refused),
		cmocka_unit_test(type_must_name_known_types_once),
		cmocka_unit_test(required_must_list_distinct_names),
		cmocka_unit_test(properties_must_be_an_object_of_schemas),
		cmocka_unit_test(additional_properties_must_be_a_boolean),
		cmocka_unit_test(items_must_be_one_schema),
		cmocka_unit_test(enum_must_be_a_bounded_non_empty_list),
		cmocka_unit_test(bounds_must_be_finite_numbers),
		cmocka_unit_test(minimum_above_maximum_is_refused),
		cmocka_unit_test(lengths_must_be_non_negative_32_bit_integers),
		cmocka_unit_test(nesting_deeper_than_the_cap_is_refused),
		cmocka_unit_test(more_subschemas_than_the_cap_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
