#include "policy/schema.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Room for a member name quoted in a reason or a payload path: long or
 * hostile names are cut, so a payload cannot crowd out the rest. */
#define NAME_ROOM 64

/* Instance types, as bits of struct tf_schema.types. */
enum {
	T_OBJECT = 1u << 0,
	T_ARRAY = 1u << 1,
	T_STRING = 1u << 2,
	T_NUMBER = 1u << 3,
	T_INTEGER = 1u << 4,
	T_BOOLEAN = 1u << 5,
	T_NULL = 1u << 6,
};

static const struct type_name {
	const char *name;    /* as a schema writes it */
	const char *phrase;  /* as a reason reads it */
	unsigned bit;
} type_names[] = {
	{ "object", "an object", T_OBJECT },
	{ "array", "an array", T_ARRAY },
	{ "string", "a string", T_STRING },
	{ "number", "a number", T_NUMBER },
	{ "integer", "an integer", T_INTEGER },
	{ "boolean", "a boolean", T_BOOLEAN },
	{ "null", "null", T_NULL },
};

struct prop {
	char *name;                /* owned */
	struct tf_schema *schema;  /* owned */
};

struct tf_schema {
	unsigned types;            /* T_* bits; 0 when type is absent (any) */
	bool additional;           /* additionalProperties; true when absent */
	bool has_minimum, has_maximum;
	bool has_min_length, has_max_length;
	double minimum, maximum;
	int64_t min_length, max_length;
	char **required;           /* owned; sorted, for bsearch */
	size_t n_required;
	struct prop *props;        /* owned; sorted by name, for bsearch */
	size_t n_props;
	struct tf_schema *items;   /* owned; NULL when absent */
	cJSON *enum_values;        /* owned copy of the enum list; NULL when absent */
};

void tf_schema_free(struct tf_schema *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_required; i++)
		free(s->required[i]);
	free(s->required);
	for (size_t i = 0; i < s->n_props; i++) {
		free(s->props[i].name);
		tf_schema_free(s->props[i].schema);
	}
	free(s->props);
	tf_schema_free(s->items);
	cJSON_Delete(s->enum_values);
	free(s);
}

/* Shortest text that reads back as v: "1000", not "1000.0000000000000". */
static void number_format(char *dst, size_t len, double v)
{
	snprintf(dst, len, "%.15g", v);
	if (strtod(dst, NULL) != v)
		snprintf(dst, len, "%.17g", v);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int prop_cmp(const void *a, const void *b)
{
	return strcmp(((const struct prop *)a)->name, ((const struct prop *)b)->name);
}

/* ---- Compilation ---- */

struct compiler {
	struct tf_jctx *c;
	int depth;  /* schema levels open */
	int count;  /* schema objects compiled so far */
};

static int compile_node(struct compiler *k, const cJSON *node, struct tf_schema **out);

static int nomem(struct compiler *k)
{
	return tf_err_set(k->c->err, TF_ERR_NOMEM, "%s: %s: out of memory", k->c->file,
		k->c->path);
}

static const struct type_name *type_lookup(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(type_names); i++)
		if (strcmp(type_names[i].name, name) == 0)
			return &type_names[i];
	return NULL;
}

static int type_add(struct compiler *k, const cJSON *node, unsigned *types)
{
	const struct type_name *t;

	if (!cJSON_IsString(node))
		return tf_jfail(k->c, "must be a type name");
	t = type_lookup(node->valuestring);
	if (t == NULL)
		return tf_jfail(k->c, "unknown type \"%.64s\" (use object, array, string, number, "
			"integer, boolean or null)", node->valuestring);
	if (*types & t->bit)
		return tf_jfail(k->c, "type \"%s\" is given more than once", t->name);
	*types |= t->bit;
	return TF_OK;
}

static int kw_type(struct compiler *k, struct tf_schema *s, const cJSON *node)
{
	const cJSON *item;
	int index = 0, rc = TF_OK;

	if (cJSON_IsString(node))
		return type_add(k, node, &s->types);
	if (!cJSON_IsArray(node))
		return tf_jfail(k->c, "must be a type name or a list of them");
	if (node->child == NULL)
		return tf_jfail(k->c, "must not be empty");
	cJSON_ArrayForEach(item, node) {
		size_t mark = tf_jctx_index(k->c, index++);

		rc = type_add(k, item, &s->types);
		tf_jctx_pop(k->c, mark);
		if (rc != TF_OK)
			break;
	}
	return rc;
}

/* node must be a list of at most TF_SCHEMA_MAX_ITEMS entries; *n gets its
 * length. */
static int list_check(struct compiler *k, const cJSON *node, bool allow_empty, int *n)
{
	*n = 0;
	if (!cJSON_IsArray(node))
		return tf_jfail(k->c, "must be a list");
	*n = cJSON_GetArraySize(node);
	if (*n == 0 && !allow_empty)
		return tf_jfail(k->c, "must not be empty");
	if (*n > TF_SCHEMA_MAX_ITEMS)
		return tf_jfail(k->c, "has %d items, more than the %d allowed", *n,
			TF_SCHEMA_MAX_ITEMS);
	return TF_OK;
}

static int required_add(struct compiler *k, struct tf_schema *s, const cJSON *item)
{
	if (!cJSON_IsString(item))
		return tf_jfail(k->c, "must be a string");
	/* At most 256 names, so comparing every pair costs little, once. */
	for (size_t i = 0; i < s->n_required; i++)
		if (strcmp(s->required[i], item->valuestring) == 0)
			return tf_jfail(k->c, "\"%.64s\" is given more than once", item->valuestring);
	s->required[s->n_required] = strdup(item->valuestring);
	if (s->required[s->n_required] == NULL)
		return nomem(k);
	s->n_required++;
	return TF_OK;
}

static int kw_required(struct compiler *k, struct tf_schema *s, const cJSON *node)
{
	const cJSON *item;
	int n, rc = list_check(k, node, true, &n);

	if (rc != TF_OK || n == 0)
		return rc;
	s->required = calloc((size_t)n, sizeof(*s->required));
	if (s->required == NULL)
		return nomem(k);
	cJSON_ArrayForEach(item, node) {
		size_t mark = tf_jctx_index(k->c, (int)s->n_required);

		rc = required_add(k, s, item);
		tf_jctx_pop(k->c, mark);
		if (rc != TF_OK)
			return rc;
	}
	qsort(s->required, s->n_required, sizeof(*s->required), str_cmp);
	return TF_OK;
}

static int property_add(struct compiler *k, struct tf_schema *s, const cJSON *member)
{
	struct prop *p = &s->props[s->n_props];

	/* tf_json_parse() refuses repeated names already; a tree built some
	 * other way may not have been through it. */
	for (size_t i = 0; i < s->n_props; i++)
		if (strcmp(s->props[i].name, member->string) == 0)
			return tf_jfail(k->c, "member is given more than once");
	p->name = strdup(member->string);
	if (p->name == NULL)
		return nomem(k);
	s->n_props++;  /* tf_schema_free() now frees the name and the schema */
	return compile_node(k, member, &p->schema);
}

static int kw_properties(struct compiler *k, struct tf_schema *s, const cJSON *node)
{
	const cJSON *member;
	int n;

	if (!cJSON_IsObject(node))
		return tf_jfail(k->c, "must be an object");
	n = cJSON_GetArraySize(node);
	if (n > TF_SCHEMA_MAX_ITEMS)
		return tf_jfail(k->c, "has %d members, more than the %d allowed", n,
			TF_SCHEMA_MAX_ITEMS);
	if (n == 0)
		return TF_OK;
	s->props = calloc((size_t)n, sizeof(*s->props));
	if (s->props == NULL)
		return nomem(k);
	cJSON_ArrayForEach(member, node) {
		size_t mark = tf_jctx_member(k->c, member->string);
		int rc = property_add(k, s, member);

		tf_jctx_pop(k->c, mark);
		if (rc != TF_OK)
			return rc;
	}
	qsort(s->props, s->n_props, sizeof(*s->props), prop_cmp);
	return TF_OK;
}

static int kw_additional(struct compiler *k, struct tf_schema *s, const cJSON *node)
{
	if (cJSON_IsObject(node))
		return tf_jfail(k->c, "a schema here is not supported; use true or false");
	if (!cJSON_IsBool(node))
		return tf_jfail(k->c, "must be true or false");
	s->additional = cJSON_IsTrue(node);
	return TF_OK;
}

static int kw_items(struct compiler *k, struct tf_schema *s, const cJSON *node)
{
	if (cJSON_IsArray(node))
		return tf_jfail(k->c, "a list of schemas (one per position) is not supported; "
			"give one schema for every item");
	return compile_node(k, node, &s->items);
}

static int kw_enum(struct compiler *k, struct tf_schema *s, const cJSON *node)
{
	int n, rc = list_check(k, node, false, &n);

	if (rc != TF_OK)
		return rc;
	/* A copy, so that the schema outlives the policy file's tree. */
	s->enum_values = cJSON_Duplicate(node, true);
	if (s->enum_values == NULL)
		return nomem(k);
	return TF_OK;
}

static int number_read(struct compiler *k, const cJSON *node, bool *has, double *out)
{
	/* cJSON turns 1e999 into infinity, which no bound should be. */
	if (!cJSON_IsNumber(node) || !isfinite(node->valuedouble))
		return tf_jfail(k->c, "must be a number");
	*has = true;
	*out = node->valuedouble;
	return TF_OK;
}

static int kw_minimum(struct compiler *k, struct tf_schema *s, const cJSON *node)
{
	return number_read(k, node, &s->has_minimum, &s->minimum);
}

static int kw_maximum(struct compiler *k, struct tf_schema *s, const cJSON *node)
{
	return number_read(k, node, &s->has_maximum, &s->maximum);
}

static int length_read(struct compiler *k, const cJSON *node, bool *has, int64_t *out)
{
	if (!tf_json_integer(node, 0, INT32_MAX, out))
		return tf_jfail(k->c, "must be an integer from 0 to %d", INT32_MAX);
	*has = true;
	return TF_OK;
}

static int kw_min_length(struct compiler *k, struct tf_schema *s, const cJSON *node)
{
	return length_read(k, node, &s->has_min_length, &s->min_length);
}

static int kw_max_length(struct compiler *k, struct tf_schema *s, const cJSON *node)
{
	return length_read(k, node, &s->has_max_length, &s->max_length);
}

typedef int keyword_fn(struct compiler *k, struct tf_schema *s, const cJSON *node);

static const struct keyword {
	const char *name;
	keyword_fn *compile;
} keywords[] = {
	{ "type", kw_type },
	{ "required", kw_required },
	{ "properties", kw_properties },
	{ "additionalProperties", kw_additional },
	{ "items", kw_items },
	{ "enum", kw_enum },
	{ "minimum", kw_minimum },
	{ "maximum", kw_maximum },
	{ "minLength", kw_min_length },
	{ "maxLength", kw_max_length },
};

/* c->path is at member. *seen holds a bit per keyword of keywords[]. */
static int keyword_compile(struct compiler *k, struct tf_schema *s, const cJSON *member,
		unsigned *seen)
{
	for (size_t i = 0; i < ARRAY_SIZE(keywords); i++) {
		if (strcmp(keywords[i].name, member->string) != 0)
			continue;
		/* A repeat would leak or silently replace the first. */
		if (*seen & (1u << i))
			return tf_jfail(k->c, "is given more than once");
		*seen |= 1u << i;
		return keywords[i].compile(k, s, member);
	}
	return tf_jfail(k->c, "unknown schema keyword");
}

static int range_fail(struct compiler *k, const char *low_keyword, const char *low,
		const char *high_keyword, const char *high)
{
	size_t mark = tf_jctx_member(k->c, low_keyword);
	int rc = tf_jfail(k->c, "%s is more than %s %s", low, high_keyword, high);

	tf_jctx_pop(k->c, mark);
	return rc;
}

/* Bounds that no instance could satisfy are an author's mistake. */
static int ranges_check(struct compiler *k, const struct tf_schema *s)
{
	char low[32], high[32];

	if (s->has_minimum && s->has_maximum && s->minimum > s->maximum) {
		number_format(low, sizeof(low), s->minimum);
		number_format(high, sizeof(high), s->maximum);
		return range_fail(k, "minimum", low, "maximum", high);
	}
	if (s->has_min_length && s->has_max_length && s->min_length > s->max_length) {
		snprintf(low, sizeof(low), "%lld", (long long)s->min_length);
		snprintf(high, sizeof(high), "%lld", (long long)s->max_length);
		return range_fail(k, "minLength", low, "maxLength", high);
	}
	return TF_OK;
}

static int compile_node(struct compiler *k, const cJSON *node, struct tf_schema **out)
{
	struct tf_schema *s;
	const cJSON *member;
	unsigned seen = 0;
	int rc = TF_OK;

	*out = NULL;
	if (!cJSON_IsObject(node))
		return tf_jfail(k->c, "must be an object");
	if (k->depth >= TF_SCHEMA_MAX_DEPTH)
		return tf_jfail(k->c, "schema nested deeper than %d levels", TF_SCHEMA_MAX_DEPTH);
	if (k->count >= TF_SCHEMA_MAX_NODES)
		return tf_jfail(k->c, "schema has more than %d subschemas", TF_SCHEMA_MAX_NODES);
	k->count++;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return nomem(k);
	s->additional = true;
	k->depth++;
	cJSON_ArrayForEach(member, node) {
		size_t mark = tf_jctx_member(k->c, member->string);

		rc = keyword_compile(k, s, member, &seen);
		tf_jctx_pop(k->c, mark);
		if (rc != TF_OK)
			break;
	}
	k->depth--;
	if (rc == TF_OK)
		rc = ranges_check(k, s);
	if (rc != TF_OK) {
		tf_schema_free(s);
		return rc;
	}
	*out = s;
	return TF_OK;
}

int tf_schema_compile(struct tf_jctx *c, const cJSON *node, struct tf_schema **out)
{
	struct compiler k = { .c = c, .depth = 0, .count = 0 };

	return compile_node(&k, node, out);
}

/* ---- Validation ---- */

struct validator {
	struct tf_jctx at;  /* path inside the payload; only its path is used */
	char *why;
	size_t why_len;
};

static bool vfail(struct validator *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static bool vfail(struct validator *v, const char *fmt, ...)
{
	char msg[192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (v->why_len > 0)
		snprintf(v->why, v->why_len, "%s: %s", v->at.path, msg);
	return false;
}

static size_t path_member(struct validator *v, const char *name)
{
	return tf_jctx_member(&v->at, name);
}

static unsigned instance_types(const cJSON *value)
{
	double x;

	if (cJSON_IsObject(value))
		return T_OBJECT;
	if (cJSON_IsArray(value))
		return T_ARRAY;
	if (cJSON_IsString(value))
		return T_STRING;
	if (cJSON_IsBool(value))
		return T_BOOLEAN;
	if (cJSON_IsNull(value))
		return T_NULL;
	if (!cJSON_IsNumber(value))
		return 0;  /* cJSON_Raw and invalid nodes are of no type */
	x = value->valuedouble;
	/* Draft 7: any number with a zero fractional part is an integer, 1.0 too. */
	if (isfinite(x) && x == floor(x))
		return T_NUMBER | T_INTEGER;
	return T_NUMBER;
}

static bool type_fail(struct validator *v, unsigned types)
{
	char list[128];
	size_t o = 0;
	unsigned left = types;

	list[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(type_names); i++) {
		const char *sep;

		if (!(types & type_names[i].bit))
			continue;
		left &= ~type_names[i].bit;
		sep = o == 0 ? "" : left == 0 ? " or " : ", ";
		/* All seven phrases fit in list, so o stays in bounds. */
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", sep, type_names[i].phrase);
	}
	return vfail(v, "must be %s", list);
}

static bool enum_matches(const struct tf_schema *s, const cJSON *value)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, s->enum_values)
		if (cJSON_Compare(e, value, true))
			return true;
	return false;
}

static bool check_number(const struct tf_schema *s, const cJSON *value, struct validator *v)
{
	double x = value->valuedouble;
	char got[32], bound[32];

	if (s->has_minimum && x < s->minimum) {
		number_format(got, sizeof(got), x);
		number_format(bound, sizeof(bound), s->minimum);
		return vfail(v, "%s is below the minimum %s", got, bound);
	}
	if (s->has_maximum && x > s->maximum) {
		number_format(got, sizeof(got), x);
		number_format(bound, sizeof(bound), s->maximum);
		return vfail(v, "%s is above the maximum %s", got, bound);
	}
	return true;
}

/* Code points, as JSON Schema counts string length: every byte that does
 * not continue a UTF-8 sequence starts a character. */
static size_t utf8_count(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static bool check_string(const struct tf_schema *s, const cJSON *value, struct validator *v)
{
	size_t n;

	if (!s->has_min_length && !s->has_max_length)
		return true;
	n = utf8_count(value->valuestring);
	if (s->has_min_length && n < (uint64_t)s->min_length)
		return vfail(v, "has %zu character%s, fewer than the minimum length %lld", n,
			n == 1 ? "" : "s", (long long)s->min_length);
	if (s->has_max_length && n > (uint64_t)s->max_length)
		return vfail(v, "has %zu character%s, more than the maximum length %lld", n,
			n == 1 ? "" : "s", (long long)s->max_length);
	return true;
}

static int name_key_cmp(const void *key, const void *elem)
{
	return strcmp((const char *)key, *(char *const *)elem);
}

static int prop_key_cmp(const void *key, const void *elem)
{
	return strcmp((const char *)key, ((const struct prop *)elem)->name);
}

static const struct prop *prop_find(const struct tf_schema *s, const char *name)
{
	if (s->n_props == 0)
		return NULL;
	return bsearch(name, s->props, s->n_props, sizeof(*s->props), prop_key_cmp);
}

/* Marks name in seen (a bit per entry of s->required) when it is required. */
static void required_mark(const struct tf_schema *s, const char *name, unsigned char *seen)
{
	char *const *hit;
	size_t i;

	if (s->n_required == 0)
		return;
	hit = bsearch(name, s->required, s->n_required, sizeof(*s->required), name_key_cmp);
	if (hit == NULL)
		return;
	i = (size_t)(hit - s->required);
	seen[i / 8] |= (unsigned char)(1u << (i % 8));
}

static bool check_node(const struct tf_schema *s, const cJSON *value, struct validator *v);

/* Which members there are: unlisted ones when additionalProperties is
 * false, then missing required ones (in sorted order). One pass over the
 * members, so a payload with many of them costs n log n, not n * 256. */
static bool check_members(const struct tf_schema *s, const cJSON *value, struct validator *v)
{
	unsigned char seen[TF_SCHEMA_MAX_ITEMS / 8] = { 0 };
	char name[NAME_ROOM];
	const cJSON *m;

	if (s->additional && s->n_required == 0)
		return true;
	cJSON_ArrayForEach(m, value) {
		required_mark(s, m->string, seen);
		if (!s->additional && prop_find(s, m->string) == NULL) {
			tf_json_escape_name(name, sizeof(name), m->string);
			return vfail(v, "member \"%s\" is not allowed", name);
		}
	}
	for (size_t i = 0; i < s->n_required; i++) {
		if (!(seen[i / 8] & (1u << (i % 8)))) {
			tf_json_escape_name(name, sizeof(name), s->required[i]);
			return vfail(v, "member \"%s\" is required", name);
		}
	}
	return true;
}

static bool check_object(const struct tf_schema *s, const cJSON *value, struct validator *v)
{
	const cJSON *m;

	if (!check_members(s, value, v))
		return false;
	if (s->n_props == 0)
		return true;
	/* Every member, not only the first of a name: cJSON keeps repeats. */
	cJSON_ArrayForEach(m, value) {
		const struct prop *p = prop_find(s, m->string);
		size_t mark;
		bool ok;

		if (p == NULL)
			continue;
		mark = path_member(v, m->string);
		ok = check_node(p->schema, m, v);
		tf_jctx_pop(&v->at, mark);
		if (!ok)
			return false;
	}
	return true;
}

static bool check_array(const struct tf_schema *s, const cJSON *value, struct validator *v)
{
	const cJSON *e;
	int index = 0;

	if (s->items == NULL)
		return true;
	cJSON_ArrayForEach(e, value) {
		size_t mark = tf_jctx_index(&v->at, index++);
		bool ok = check_node(s->items, e, v);

		tf_jctx_pop(&v->at, mark);
		if (!ok)
			return false;
	}
	return true;
}

/* Recursion follows the schema, so it is at most TF_SCHEMA_MAX_DEPTH deep
 * whatever the payload. */
static bool check_node(const struct tf_schema *s, const cJSON *value, struct validator *v)
{
	if (s->types != 0 && !(s->types & instance_types(value)))
		return type_fail(v, s->types);
	if (s->enum_values != NULL && !enum_matches(s, value))
		return vfail(v, "is not one of the values the schema allows");
	if (cJSON_IsNumber(value))
		return check_number(s, value, v);
	if (cJSON_IsString(value))
		return check_string(s, value, v);
	if (cJSON_IsObject(value))
		return check_object(s, value, v);
	if (cJSON_IsArray(value))
		return check_array(s, value, v);
	return true;
}

bool tf_schema_validate(const struct tf_schema *s, const cJSON *value, char *why, size_t why_len)
{
	struct validator v;

	/* The context's file and err are never used: validation only borrows
	 * its path keeping, and reports through why. */
	tf_jctx_init(&v.at, "payload", NULL);
	v.why = why;
	v.why_len = why_len;
	if (why_len > 0)
		why[0] = '\0';
	if (value == NULL)
		return vfail(&v, "not JSON");
	return check_node(s, value, &v);
}
