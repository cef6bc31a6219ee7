/* Unit tests for policy/set.c: loading a whole policy set (the identities
 * file and every *.json policy of a directory), and the checks that need
 * every file at once (policy-v1.md, "Policies", "Which policy governs a
 * topic", "Selectors and consumer rules", "Loading and reloading"):
 *
 * - `id` is unique across all loaded policies;
 * - two policies with an identical filter are a load error that names
 *   both files, and so are two policies of different owners whose filters
 *   overlap; one owner may nest its own;
 * - a view overlaps no policy's topics and no other view;
 * - any invalid file fails the whole load, naming the file, the JSON path
 *   and the problem.
 *
 * Every test writes its files into a fresh temporary directory under /tmp
 * (mkdtemp) and removes it afterwards. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/util/arena.h"
#include "broker/util/dirlist.h"
#include "broker/util/error.h"
#include "policy/govern.h"
#include "policy/identities.h"
#include "policy/jsonfile.h"
#include "policy/policy.h"
#include "policy/set.h"

static const char identities_text[] =
	"{\n"
	"  \"trustflow_identities\": 1,\n"
	"  \"organizations\": {\n"
	"    \"city-waterworks\": { \"name\": \"City Waterworks Bureau\" },\n"
	"    \"maint-co\":        { \"name\": \"Maintenance Co.\" },\n"
	"    \"research-lab\":    { \"name\": \"University Research Lab\" }\n"
	"  },\n"
	"  \"clients\": {\n"
	"    \"ww-sensor-01\": { \"org\": \"city-waterworks\", \"roles\": [\"sensor\"] },\n"
	"    \"maint-app\":    { \"org\": \"maint-co\", \"roles\": [\"operator\"], \"purposes\": [\"maintenance\"] },\n"
	"    \"ops-admin\":    { \"org\": \"city-waterworks\", \"roles\": [\"trustflow-admin\"] },\n"
	"    \"ww-steward\":   { \"org\": \"city-waterworks\", \"roles\": [\"data-steward\"] },\n"
	"    \"lab-bot\":      { \"org\": \"research-lab\", \"roles\": [\"analyst\"], \"purposes\": [\"research\"] }\n"
	"  }\n"
	"}\n";

/* No client has trustflow-admin or data-steward. */
static const char identities_no_operators[] =
	"{\"trustflow_identities\": 1,"
	" \"organizations\": {\"city-waterworks\": {}, \"maint-co\": {}, \"research-lab\": {}},"
	" \"clients\": {\"ww-sensor-01\": {\"org\": \"city-waterworks\", \"roles\": [\"sensor\"]}}}";

/* A temporary tree: root/identities.json and root/policies/. */
struct tree {
	char root[32];
	char ids[64];
	char dir[64];
};

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		fail_msg("cannot create %s", path);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void put(const struct tree *t, const char *name, const char *text)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", t->dir, name);
	write_text(path, text);
}

static void make_tree(struct tree *t, const char *identities)
{
	strcpy(t->root, "/tmp/tf-set-XXXXXX");
	if (mkdtemp(t->root) == NULL)
		fail_msg("mkdtemp failed");
	snprintf(t->ids, sizeof(t->ids), "%s/identities.json", t->root);
	snprintf(t->dir, sizeof(t->dir), "%s/policies", t->root);
	assert_int_equal(mkdir(t->dir, 0700), 0);
	if (identities != NULL)
		write_text(t->ids, identities);
}

static void remove_path(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *e;

		if (d != NULL) {
			while ((e = readdir(d)) != NULL) {
				char sub[1024];

				if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
					continue;
				snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
				remove_path(sub);
			}
			closedir(d);
		}
		rmdir(path);
	} else {
		unlink(path);
	}
}

static void remove_tree(struct tree *t)
{
	remove_path(t->root);
}

/* A minimal valid policy; extra is appended inside the object (starting
 * with a comma) or empty. Returned in a static buffer. */
static const char *policy_text(const char *id, const char *owner, const char *topics,
		const char *extra)
{
	static char buf[2048];

	snprintf(buf, sizeof(buf),
		"{\"trustflow_policy\": 1, \"id\": \"%s\", \"version\": 1, \"owner\": \"%s\","
		" \"topics\": %s%s}", id, owner, topics, extra);
	return buf;
}

static int load(const struct tree *t, bool default_allow, struct tf_policy_set **out,
		struct tf_err *err)
{
	struct tf_policy_set_options opts = {
		.identities = t->ids, .policy_dir = t->dir, .default_allow = default_allow,
	};

	memset(err, 0, sizeof(*err));
	return tf_policy_set_load(&opts, out, err);
}

static struct tf_policy_set *load_ok(const struct tree *t, bool default_allow)
{
	struct tf_policy_set *set = NULL;
	struct tf_err err;

	if (load(t, default_allow, &set, &err) != TF_OK)
		fail_msg("does not load: %s", err.msg);
	assert_non_null(set);
	return set;
}

/* Loading fails with status; the message must equal expected_prefix up
 * to its length. */
static void load_fails(const struct tree *t, int status, const char *expected_prefix)
{
	struct tf_policy_set *set = (struct tf_policy_set *)1;
	struct tf_err err;

	assert_int_equal(load(t, false, &set, &err), status);
	assert_null(set);
	if (strncmp(err.msg, expected_prefix, strlen(expected_prefix)) != 0)
		fail_msg("\"%s\" does not begin with \"%s\"", err.msg, expected_prefix);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ---- which files are read, and in which order ---- */

static void loads_policies_in_name_order_ignoring_other_files(void **state)
{
	struct tf_policy_set *set;
	struct tf_governance g;
	struct tree t;
	char sub[128];

	(void)state;
	make_tree(&t, identities_text);
	/* Created out of order; the set must hold them by name. */
	put(&t, "c.json", policy_text("pc", "research-lab", "[\"c/#\"]", ""));
	put(&t, "a.json", policy_text("pa", "city-waterworks", "[\"a/+\"]", ""));
	put(&t, "10.json", policy_text("p10", "maint-co", "[\"ten\"]", ""));
	put(&t, "b.json", policy_text("pb", "city-waterworks", "[\"b\", \"a/x\"]", ""));
	/* None of these is a policy file; each would fail the load if read. */
	put(&t, "README.md", "not json");
	put(&t, "b.json.bak", "not json");
	put(&t, "json", "not json");
	put(&t, ".hidden.json", "not json");
	put(&t, ".json", "not json");
	put(&t, "x.JSON", "not json");
	snprintf(sub, sizeof(sub), "%s/sub.json", t.dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(sub, sizeof(sub), "%s/sub.json/d.json", t.dir);
	write_text(sub, "not json");

	set = load_ok(&t, true);
	assert_int_equal(set->n_policies, 4);
	assert_string_equal(set->policies[0].id, "p10");
	assert_string_equal(set->policies[1].id, "pa");
	assert_string_equal(set->policies[2].id, "pb");
	assert_string_equal(set->policies[3].id, "pc");
	assert_true(ends_with(set->policies[0].file, "/policies/10.json"));
	assert_true(ends_with(set->policies[1].file, "/policies/a.json"));
	assert_true(ends_with(set->policies[2].file, "/policies/b.json"));
	assert_true(ends_with(set->policies[3].file, "/policies/c.json"));
	assert_true(set->default_allow);
	assert_non_null(set->ids);
	assert_int_equal(set->policies[1].owner, tf_identities_org(set->ids, "city-waterworks"));

	/* Every topic of every file is governed by its own policy; the most
	 * specific filter wins across files (of one owner: a.json and b.json). */
	g = tf_govern_lookup(set->govern, "a/y");
	assert_int_equal(g.kind, TF_GOVERN_POLICY);
	assert_int_equal(g.policy, 1);
	g = tf_govern_lookup(set->govern, "a/x");
	assert_int_equal(g.kind, TF_GOVERN_POLICY);
	assert_int_equal(g.policy, 2);
	g = tf_govern_lookup(set->govern, "c/d/e");
	assert_int_equal(g.kind, TF_GOVERN_POLICY);
	assert_int_equal(g.policy, 3);
	g = tf_govern_lookup(set->govern, "ten");
	assert_int_equal(g.kind, TF_GOVERN_POLICY);
	assert_int_equal(g.policy, 0);
	g = tf_govern_lookup(set->govern, "elsewhere");
	assert_int_equal(g.kind, TF_GOVERN_NONE);
	assert_true(tf_policy_set_bytes(set) > 0);
	tf_policy_set_free(set);

	/* default_allow comes from the options. */
	set = load_ok(&t, false);
	assert_false(set->default_allow);
	tf_policy_set_free(set);
	remove_tree(&t);
}

static void dir_list_sorts_and_filters(void **state)
{
	struct tree t;
	char **names = NULL;
	uint32_t n = 99;
	struct tf_err err;
	char sub[128];

	(void)state;
	make_tree(&t, NULL);
	/* An empty directory holds no policies. */
	assert_int_equal(tf_dir_list(t.dir, ".json", TF_POLICY_SET_MAX_FILES, &names, &n, &err), TF_OK);
	assert_int_equal(n, 0);
	tf_dir_list_free(names, n);

	put(&t, "zeta.json", "{}");
	put(&t, "Alpha.json", "{}");
	put(&t, "beta.json", "{}");
	put(&t, "beta.jsonx", "{}");
	put(&t, ".beta.json", "{}");
	put(&t, "notes.txt", "{}");
	snprintf(sub, sizeof(sub), "%s/dir.json", t.dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(tf_dir_list(t.dir, ".json", TF_POLICY_SET_MAX_FILES, &names, &n, &err), TF_OK);
	assert_int_equal(n, 3);
	assert_string_equal(names[0], "Alpha.json");
	assert_string_equal(names[1], "beta.json");
	assert_string_equal(names[2], "zeta.json");
	tf_dir_list_free(names, n);

	names = (char **)&sub;
	n = 7;
	assert_int_equal(tf_dir_list("/nonexistent/tf-policies", ".json", TF_POLICY_SET_MAX_FILES, &names, &n, &err),
		TF_ERR_IO);
	assert_null(names);
	assert_int_equal(n, 0);
	assert_non_null(strstr(err.msg, "/nonexistent/tf-policies: cannot open the directory"));
	remove_tree(&t);
}

static void empty_directory_loads_an_empty_set(void **state)
{
	struct tf_policy_set *set;
	struct tree t;

	(void)state;
	make_tree(&t, identities_text);
	set = load_ok(&t, false);
	assert_int_equal(set->n_policies, 0);
	assert_null(tf_policy_set_find(set, "anything"));
	assert_int_equal(tf_govern_lookup(set->govern, "a/b").kind, TF_GOVERN_NONE);
	tf_policy_set_free(set);
	remove_tree(&t);
}

/* ---- checks across files ---- */

static void duplicate_policy_id_names_both_files(void **state)
{
	char expected[512];
	struct tree t;

	(void)state;
	make_tree(&t, identities_text);
	put(&t, "a.json", policy_text("x", "city-waterworks", "[\"a\"]", ""));
	put(&t, "b.json", policy_text("x", "maint-co", "[\"b\"]", ""));
	snprintf(expected, sizeof(expected),
		"%s/b.json: $.id: policy id \"x\" is already used by %s/a.json", t.dir, t.dir);
	load_fails(&t, TF_ERR_INVALID, expected);
	{
		/* The whole message, nothing after the second file. */
		struct tf_policy_set *set;
		struct tf_err err;

		assert_int_equal(load(&t, false, &set, &err), TF_ERR_INVALID);
		assert_string_equal(err.msg, expected);
	}
	remove_tree(&t);
}

static void identical_topic_filter_names_both_files(void **state)
{
	struct tf_policy_set *set;
	struct tf_err err;
	char expected[512];
	struct tree t;

	(void)state;
	make_tree(&t, identities_text);
	put(&t, "a.json", policy_text("pa", "city-waterworks", "[\"s/1\", \"s/2/#\"]", ""));
	put(&t, "b.json", policy_text("pb", "maint-co", "[\"s/3\", \"s/2/#\"]", ""));
	snprintf(expected, sizeof(expected),
		"%s/b.json: $.topics[1]: topic filter \"s/2/#\" is also in %s/a.json", t.dir, t.dir);
	load_fails(&t, TF_ERR_INVALID, expected);
	assert_int_equal(load(&t, false, &set, &err), TF_ERR_INVALID);
	assert_non_null(strstr(err.msg, "two policies cannot govern the same filter"));

	/* Overlapping but different filters of one owner are fine: the most
	 * specific one governs. */
	put(&t, "b.json", policy_text("pb", "city-waterworks", "[\"s/3\", \"s/2/+\"]", ""));
	set = load_ok(&t, false);
	assert_int_equal(tf_govern_lookup(set->govern, "s/2/x").policy, 1);
	assert_int_equal(tf_govern_lookup(set->govern, "s/2/x/y").policy, 0);
	assert_int_equal(tf_govern_lookup(set->govern, "s/2").policy, 0);
	tf_policy_set_free(set);
	remove_tree(&t);
}

/* Two policies of different owners whose filters overlap (some topic
 * matches both) are refused, naming both files, whichever file comes
 * first; filters no topic matches together load. */
static void overlapping_filters_of_two_owners_are_refused(void **state)
{
	static const struct { const char *a, *b; bool overlap; } pairs[] = {
		{ "a/+/c", "a/b/#", true },     /* a/b/c */
		{ "a/#", "a", true },           /* `#` also matches the parent level */
		{ "+/x", "y/+", true },         /* y/x */
		{ "#", "q/r/s", true },
		{ "#", "+", true },
		{ "+/#", "a", true },
		{ "+/+", "a/#", true },         /* a/b */
		{ "a/b/c", "a/+/c/#", true },   /* a/b/c */
		{ "a/b", "a/c", false },
		{ "a/+", "a", false },
		{ "a/+/#", "a", false },
		{ "+", "a/b", false },
		{ "a/+/c", "a/b/d/#", false },
		{ "x/#", "y/#", false },
	};
	char expected[1024];
	struct tree t;

	(void)state;
	make_tree(&t, identities_text);
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		for (int swap = 0; swap < 2; swap++) {
			const char *first = swap ? pairs[i].b : pairs[i].a;
			const char *second = swap ? pairs[i].a : pairs[i].b;
			char topics[64];

			snprintf(topics, sizeof(topics), "[\"%s\"]", first);
			put(&t, "a.json", policy_text("pa", "city-waterworks", topics, ""));
			snprintf(topics, sizeof(topics), "[\"%s\"]", second);
			put(&t, "b.json", policy_text("pb", "maint-co", topics, ""));
			if (!pairs[i].overlap) {
				tf_policy_set_free(load_ok(&t, false));
				continue;
			}
			snprintf(expected, sizeof(expected),
				"%s/b.json: $.topics[0]: topic filter \"%s\" of owner maint-co"
				" overlaps \"%s\" of owner city-waterworks in %s/a.json (policies"
				" of different owners cannot govern the same topics)", t.dir, second,
				first, t.dir);
			load_fails(&t, TF_ERR_INVALID, expected);
		}
	}
	remove_tree(&t);
}

/* One owner may nest its own policies, also beside another owner's. */
static void one_owner_nests_its_own_policies(void **state)
{
	struct tf_policy_set *set;
	char expected[512];
	struct tree t;

	(void)state;
	make_tree(&t, identities_text);
	put(&t, "a.json", policy_text("pa", "city-waterworks", "[\"city/water/#\"]", ""));
	put(&t, "b.json", policy_text("pb", "city-waterworks", "[\"city/water/+/telemetry\"]", ""));
	put(&t, "c.json", policy_text("pc", "city-waterworks", "[\"city/water/d9/telemetry\"]", ""));
	put(&t, "d.json", policy_text("pd", "maint-co", "[\"maint/#\", \"+/maint\"]", ""));
	put(&t, "e.json", policy_text("pe", "maint-co", "[\"maint/a\"]", ""));
	set = load_ok(&t, false);
	assert_int_equal(tf_govern_lookup(set->govern, "city/water").policy, 0);
	assert_int_equal(tf_govern_lookup(set->govern, "city/water/d1/telemetry").policy, 1);
	assert_int_equal(tf_govern_lookup(set->govern, "city/water/d9/telemetry").policy, 2);
	assert_int_equal(tf_govern_lookup(set->govern, "city/maint").policy, 3);
	assert_int_equal(tf_govern_lookup(set->govern, "maint/a").policy, 4);
	tf_policy_set_free(set);

	/* The waterworks may not take maint/a over... */
	put(&t, "e.json", policy_text("pe", "city-waterworks", "[\"maint/a\"]", ""));
	snprintf(expected, sizeof(expected), "%s/e.json: $.topics[0]: topic filter \"maint/a\" of"
		" owner city-waterworks overlaps \"maint/#\" of owner maint-co in %s/d.json",
		t.dir, t.dir);
	load_fails(&t, TF_ERR_INVALID, expected);
	/* ...nor widen its filter over maint-co's +/maint (city/maint). */
	put(&t, "e.json", policy_text("pe", "maint-co", "[\"maint/a\"]", ""));
	put(&t, "a.json", policy_text("pa", "city-waterworks", "[\"city/#\"]", ""));
	snprintf(expected, sizeof(expected), "%s/d.json: $.topics[1]: topic filter \"+/maint\" of"
		" owner maint-co overlaps \"city/#\" of owner city-waterworks in %s/a.json",
		t.dir, t.dir);
	load_fails(&t, TF_ERR_INVALID, expected);
	remove_tree(&t);
}

/* consumers[0] receives whole messages; consumers[1] is a view. */
static const char *view_policy(const char *id, const char *owner, const char *topics,
		const char *view)
{
	static char extra[512];

	snprintf(extra, sizeof(extra),
		", \"consumers\": [{\"orgs\": [\"maint-co\"]},"
		" {\"orgs\": [\"research-lab\"], \"fields\": [\"flow\"], \"view\": \"%s\"}]", view);
	return policy_text(id, owner, topics, extra);
}

static void view_overlapping_another_policys_topics_is_refused(void **state)
{
	char expected[512];
	struct tree t;

	(void)state;
	make_tree(&t, identities_text);
	put(&t, "a.json", view_policy("pa", "city-waterworks", "[\"city/water/+/telemetry\"]",
		"shared/out"));
	put(&t, "b.json", policy_text("pb", "maint-co", "[\"shared/+/x\"]", ""));
	snprintf(expected, sizeof(expected),
		"%s/a.json: $.consumers[1].view: view \"shared/out\" overlaps the topics of %s/b.json",
		t.dir, t.dir);
	load_fails(&t, TF_ERR_INVALID, expected);

	/* The view's own prefix is a topic of the view, so a policy filter
	 * equal to the prefix overlaps too. */
	put(&t, "b.json", policy_text("pb", "maint-co", "[\"shared/out\"]", ""));
	load_fails(&t, TF_ERR_INVALID, expected);

	/* A policy with `#` overlaps every view (of the same owner: another
	 * owner's `#` would overlap a.json's topics). */
	put(&t, "b.json", policy_text("pb", "city-waterworks", "[\"#\"]", ""));
	load_fails(&t, TF_ERR_INVALID, expected);

	/* Nor may a view overlap its own policy's topics. */
	put(&t, "b.json", policy_text("pb", "maint-co", "[\"other\"]", ""));
	put(&t, "a.json", view_policy("pa", "city-waterworks", "[\"city/water/+/telemetry\"]",
		"city/water"));
	snprintf(expected, sizeof(expected),
		"%s/a.json: $.consumers[1].view: view \"city/water\" overlaps the topics of %s/a.json",
		t.dir, t.dir);
	load_fails(&t, TF_ERR_INVALID, expected);
	remove_tree(&t);
}

static void view_overlapping_another_view_is_refused(void **state)
{
	char expected[512];
	struct tree t;

	(void)state;
	make_tree(&t, identities_text);
	put(&t, "a.json", view_policy("pa", "city-waterworks", "[\"a/#\"]", "views/lab"));
	put(&t, "b.json", view_policy("pb", "maint-co", "[\"b/#\"]", "views/lab/sub"));
	snprintf(expected, sizeof(expected),
		"%s/b.json: $.consumers[1].view: view \"views/lab/sub\" overlaps a view of %s/a.json",
		t.dir, t.dir);
	load_fails(&t, TF_ERR_INVALID, expected);

	/* The same prefix twice. */
	put(&t, "b.json", view_policy("pb", "maint-co", "[\"b/#\"]", "views/lab"));
	snprintf(expected, sizeof(expected),
		"%s/b.json: $.consumers[1].view: view \"views/lab\" overlaps a view of %s/a.json",
		t.dir, t.dir);
	load_fails(&t, TF_ERR_INVALID, expected);

	/* A shorter prefix that contains the other. */
	put(&t, "b.json", view_policy("pb", "maint-co", "[\"b/#\"]", "views"));
	snprintf(expected, sizeof(expected),
		"%s/b.json: $.consumers[1].view: view \"views\" overlaps a view of %s/a.json",
		t.dir, t.dir);
	load_fails(&t, TF_ERR_INVALID, expected);
	remove_tree(&t);
}

static void views_that_overlap_nothing_govern_their_prefix(void **state)
{
	struct tf_policy_set *set;
	struct tf_governance g;
	struct tree t;

	(void)state;
	make_tree(&t, identities_text);
	put(&t, "a.json", view_policy("pa", "city-waterworks", "[\"city/water/+/telemetry\"]",
		"views/lab"));
	put(&t, "b.json", view_policy("pb", "maint-co", "[\"maint/#\"]", "views/lab2"));
	set = load_ok(&t, false);
	assert_int_equal(set->n_policies, 2);

	g = tf_govern_lookup(set->govern, "views/lab/city/water/d1/telemetry");
	assert_int_equal(g.kind, TF_GOVERN_VIEW);
	assert_int_equal(g.policy, 0);
	assert_int_equal(g.rule, 1);
	g = tf_govern_lookup(set->govern, "views/lab");
	assert_int_equal(g.kind, TF_GOVERN_VIEW);
	assert_int_equal(g.policy, 0);
	g = tf_govern_lookup(set->govern, "views/lab2/maint/x");
	assert_int_equal(g.kind, TF_GOVERN_VIEW);
	assert_int_equal(g.policy, 1);
	assert_int_equal(g.rule, 1);
	/* The originals stay governed by their policies. */
	g = tf_govern_lookup(set->govern, "city/water/d1/telemetry");
	assert_int_equal(g.kind, TF_GOVERN_POLICY);
	assert_int_equal(g.policy, 0);
	/* Near misses are not under a view. */
	assert_int_equal(tf_govern_lookup(set->govern, "views/labx/a").kind, TF_GOVERN_NONE);
	assert_int_equal(tf_govern_lookup(set->govern, "views").kind, TF_GOVERN_NONE);
	tf_policy_set_free(set);
	remove_tree(&t);
}

/* ---- one bad file fails the whole load ---- */

static void broken_file_anywhere_fails_the_whole_load(void **state)
{
	static const char *const names[] = { "a.json", "b.json", "c.json" };
	static const char bad_time[] =
		"{\"trustflow_policy\": 1, \"id\": \"bad\", \"version\": 1, \"owner\": \"maint-co\","
		" \"topics\": [\"bad\"], \"consumers\": [{\"orgs\": [\"research-lab\"],"
		" \"not_after\": \"tomorrow\"}]}";
	char expected[512];
	struct tree t;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		make_tree(&t, identities_text);
		put(&t, "a.json", policy_text("pa", "city-waterworks", "[\"a\"]", ""));
		put(&t, "b.json", policy_text("pb", "maint-co", "[\"b\"]", ""));
		put(&t, "c.json", policy_text("pc", "research-lab", "[\"c\"]", ""));
		put(&t, names[i], bad_time);
		snprintf(expected, sizeof(expected),
			"%s/%s: $.consumers[0].not_after: not an RFC 3339 time", t.dir, names[i]);
		load_fails(&t, TF_ERR_INVALID, expected);
		remove_tree(&t);
	}

	make_tree(&t, identities_text);
	put(&t, "a.json", policy_text("pa", "city-waterworks", "[\"a\"]", ""));
	put(&t, "b.json", "{\"trustflow_policy\": 1,");
	snprintf(expected, sizeof(expected), "%s/b.json: ", t.dir);
	load_fails(&t, TF_ERR_INVALID, expected);
	/* An owner the identities file does not know. */
	put(&t, "b.json", policy_text("pb", "nobody-inc", "[\"b\"]", ""));
	snprintf(expected, sizeof(expected), "%s/b.json: $.owner: unknown organization", t.dir);
	load_fails(&t, TF_ERR_INVALID, expected);
	/* The first broken file in name order is the one reported. */
	put(&t, "a.json", policy_text("pa", "city-waterworks", "[\"a/#/b\"]", ""));
	snprintf(expected, sizeof(expected), "%s/a.json: $.topics[0]: not a valid topic filter",
		t.dir);
	load_fails(&t, TF_ERR_INVALID, expected);
	remove_tree(&t);
}

static void missing_directory_or_identities_is_an_io_error(void **state)
{
	struct tf_policy_set *set = (struct tf_policy_set *)1;
	struct tf_policy_set_options opts = { .identities = NULL };
	struct tf_err err;
	char expected[256];
	struct tree t;

	(void)state;
	make_tree(&t, identities_text);
	put(&t, "a.json", policy_text("pa", "city-waterworks", "[\"a\"]", ""));
	opts.identities = t.ids;
	opts.policy_dir = "/nonexistent/tf-policies";
	opts.default_allow = false;
	assert_int_equal(tf_policy_set_load(&opts, &set, &err), TF_ERR_IO);
	assert_null(set);
	assert_non_null(strstr(err.msg, "/nonexistent/tf-policies"));

	set = (struct tf_policy_set *)1;
	opts.identities = "/nonexistent/identities.json";
	opts.policy_dir = t.dir;
	assert_int_equal(tf_policy_set_load(&opts, &set, &err), TF_ERR_IO);
	assert_null(set);
	assert_non_null(strstr(err.msg, "/nonexistent/identities.json: cannot open"));

	/* An identities file that is not valid fails the load too. */
	write_text(t.ids, "{\"trustflow_identities\": 2, \"organizations\": {}, \"clients\": {}}");
	snprintf(expected, sizeof(expected), "%s: $.trustflow_identities:", t.ids);
	load_fails(&t, TF_ERR_INVALID, expected);
	remove_tree(&t);
}

/* A peer entry under this broker's own id would let a bridge pass
 * messages off as the broker's own (federation-v1): refused. */
static void a_peer_with_this_brokers_own_id_is_refused(void **state)
{
	struct tf_policy_set *set = NULL;
	struct tf_policy_set_options opts = { .identities = NULL };
	struct tf_err err;
	char expected[256];
	struct tree t;

	(void)state;
	make_tree(&t, "{\"trustflow_identities\": 1, \"organizations\": {\"o\": {}},"
		" \"clients\": {}, \"brokers\": {\"broker-a\": {\"org\": \"o\", \"link\":"
		" \"from-a\", \"keys\": [\"MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"]}}}");
	opts.identities = t.ids;
	opts.policy_dir = t.dir;
	opts.broker_id = "broker-b";
	assert_int_equal(tf_policy_set_load(&opts, &set, &err), TF_OK);
	tf_policy_set_free(set);
	opts.broker_id = "broker-a";
	assert_int_equal(tf_policy_set_load(&opts, &set, &err), TF_ERR_INVALID);
	assert_null(set);
	snprintf(expected, sizeof(expected), "%s: $.brokers.broker-a: is this broker's own "
		"broker_id: a broker has no peer entry of its own", t.ids);
	assert_string_equal(err.msg, expected);
	remove_tree(&t);
}

/* ---- lookups ---- */

static void find_and_operator_roles(void **state)
{
	struct tf_policy_set *set;
	const struct tf_policy *p;
	struct tree t;

	(void)state;
	make_tree(&t, identities_text);
	put(&t, "a.json", policy_text("water", "city-waterworks", "[\"a\"]", ""));
	put(&t, "b.json", policy_text("maint", "maint-co", "[\"b\"]", ""));
	set = load_ok(&t, false);
	p = tf_policy_set_find(set, "water");
	assert_non_null(p);
	assert_ptr_equal(p, &set->policies[0]);
	assert_string_equal(p->label, "water@1");
	p = tf_policy_set_find(set, "maint");
	assert_ptr_equal(p, &set->policies[1]);
	assert_null(tf_policy_set_find(set, "wate"));
	assert_null(tf_policy_set_find(set, "waterx"));
	assert_null(tf_policy_set_find(set, ""));

	assert_true(set->role_admin != TF_NONE);
	assert_true(set->role_steward != TF_NONE);
	assert_int_equal(set->role_admin, tf_identities_symbol(set->ids, "trustflow-admin"));
	assert_int_equal(set->role_steward, tf_identities_symbol(set->ids, "data-steward"));
	assert_true(set->role_admin != set->role_steward);
	tf_policy_set_free(set);

	/* Nobody holds either role: neither symbol exists. */
	write_text(t.ids, identities_no_operators);
	set = load_ok(&t, false);
	assert_true(set->role_admin == TF_NONE);
	assert_true(set->role_steward == TF_NONE);
	tf_policy_set_free(set);
	remove_tree(&t);
}

/* ---- tf_policy_set_assemble without identities (tfctl policy check) ---- */

/* Parses each text with no identities into one arena and assembles. */
static int assemble_texts(const char *const *texts, const char *const *files, uint32_t n,
		struct tf_policy_set **out, struct tf_err *err)
{
	struct tf_policy *policies = calloc(n, sizeof(*policies));
	struct tf_arena arena = { 0 };

	assert_non_null(policies);
	for (uint32_t i = 0; i < n; i++) {
		struct tf_jctx c;
		cJSON *root = NULL;

		if (tf_json_parse(texts[i], strlen(texts[i]), files[i], &root, err) != TF_OK)
			fail_msg("%s", err->msg);
		tf_jctx_init(&c, files[i], err);
		if (tf_policy_from_json(&c, root, NULL, &arena, &policies[i]) != TF_OK)
			fail_msg("%s", err->msg);
		cJSON_Delete(root);
	}
	memset(err, 0, sizeof(*err));
	return tf_policy_set_assemble(NULL, policies, n, &arena, out, err);
}

static void assemble_without_identities_checks_across_files(void **state)
{
	static const char *const files[] = { "p/a.json", "p/b.json" };
	/* A schema, so that the set must release it on success and error. */
	static const char schema[] = ", \"schema\": {\"type\": \"object\"}";
	struct tf_policy_set *set = NULL;
	const char *texts[2];
	char a[2048], b[2048];
	struct tf_err err;

	(void)state;
	/* The owners need not exist: there are no identities to ask. */
	strcpy(a, policy_text("x", "unknown-org", "[\"a/#\"]", schema));
	strcpy(b, policy_text("x", "other-org", "[\"b/#\"]", schema));
	texts[0] = a;
	texts[1] = b;
	assert_int_equal(assemble_texts(texts, files, 2, &set, &err), TF_ERR_INVALID);
	assert_null(set);
	assert_string_equal(err.msg, "p/b.json: $.id: policy id \"x\" is already used by p/a.json");

	strcpy(b, policy_text("y", "other-org", "[\"b/#\", \"a/#\"]", schema));
	assert_int_equal(assemble_texts(texts, files, 2, &set, &err), TF_ERR_INVALID);
	assert_null(set);
	assert_string_equal(err.msg, "p/b.json: $.topics[1]: topic filter \"a/#\" is also in "
		"p/a.json (two policies cannot govern the same filter)");

	/* Owners are told apart by id, with no identities to resolve them. */
	strcpy(b, policy_text("y", "other-org", "[\"b/#\", \"a/+\"]", schema));
	assert_int_equal(assemble_texts(texts, files, 2, &set, &err), TF_ERR_INVALID);
	assert_null(set);
	assert_string_equal(err.msg, "p/b.json: $.topics[1]: topic filter \"a/+\" of owner "
		"other-org overlaps \"a/#\" of owner unknown-org in p/a.json (policies of different "
		"owners cannot govern the same topics)");
	strcpy(b, policy_text("y", "unknown-org", "[\"b/#\", \"a/+\"]", schema));
	assert_int_equal(assemble_texts(texts, files, 2, &set, &err), TF_OK);
	tf_policy_set_free(set);

	strcpy(b, view_policy("y", "other-org", "[\"b/#\"]", "a/view"));
	assert_int_equal(assemble_texts(texts, files, 2, &set, &err), TF_ERR_INVALID);
	assert_null(set);
	assert_string_equal(err.msg,
		"p/b.json: $.consumers[1].view: view \"a/view\" overlaps the topics of p/a.json");

	strcpy(b, view_policy("y", "other-org", "[\"b/#\"]", "views/y"));
	assert_int_equal(assemble_texts(texts, files, 2, &set, &err), TF_OK);
	assert_non_null(set);
	assert_null(set->ids);
	assert_int_equal(set->n_policies, 2);
	assert_ptr_equal(tf_policy_set_find(set, "y"), &set->policies[1]);
	assert_ptr_equal(tf_policy_set_find(set, "x"), &set->policies[0]);
	assert_true(set->policies[0].owner == TF_NONE);
	assert_int_equal(tf_govern_lookup(set->govern, "views/y/b/c").kind, TF_GOVERN_VIEW);
	assert_int_equal(tf_govern_lookup(set->govern, "a/q").policy, 0);
	assert_true(tf_policy_set_bytes(set) > 0);
	tf_policy_set_free(set);
}

static void assemble_with_identities_indexes_receivers(void **state)
{
	static const char *const files[] = { "p/a.json" };
	struct tf_policy *policies = calloc(1, sizeof(*policies));
	struct tf_identities *ids = NULL;
	struct tf_policy_set *set = NULL;
	struct tf_arena arena = { 0 };
	struct tf_err err;
	struct tf_jctx c;
	cJSON *root = NULL;
	const char *text = view_policy("w", "city-waterworks", "[\"w/#\"]", "views/w");

	(void)state;
	assert_non_null(policies);
	assert_int_equal(tf_json_parse(identities_text, strlen(identities_text), "ids.json", &root,
		&err), TF_OK);
	tf_jctx_init(&c, "ids.json", &err);
	assert_int_equal(tf_identities_from_json(&c, root, &ids), TF_OK);
	cJSON_Delete(root);
	assert_int_equal(tf_json_parse(text, strlen(text), files[0], &root, &err), TF_OK);
	tf_jctx_init(&c, files[0], &err);
	assert_int_equal(tf_policy_from_json(&c, root, ids, &arena, &policies[0]), TF_OK);
	cJSON_Delete(root);
	assert_int_equal(tf_policy_set_assemble(ids, policies, 1, &arena, &set, &err), TF_OK);
	/* The arena moved into the set. */
	assert_null(arena.chunks);
	assert_ptr_equal(set->ids, ids);
	assert_int_equal(set->role_admin, tf_identities_symbol(ids, "trustflow-admin"));
	/* The owner org, and each org of a consumer rule, have one ref. */
	{
		uint32_t ww = tf_identities_org(ids, "city-waterworks");
		uint32_t mc = tf_identities_org(ids, "maint-co");
		uint32_t rl = tf_identities_org(ids, "research-lab");

		assert_int_equal(set->org_off[ww + 1] - set->org_off[ww], 1);
		assert_int_equal(set->org_refs[set->org_off[ww]].rule, TF_RULE_OWNER);
		assert_int_equal(set->org_off[mc + 1] - set->org_off[mc], 1);
		assert_int_equal(set->org_refs[set->org_off[mc]].rule, 0);
		assert_int_equal(set->org_off[rl + 1] - set->org_off[rl], 1);
		assert_int_equal(set->org_refs[set->org_off[rl]].rule, 1);
		assert_int_equal(set->n_everyone, 0);
	}
	tf_policy_set_free(set);
}

/* owner_receives false: the owner org is under its rules like any other,
 * so the subscribe index has no owner ref for it, only the refs of the
 * rules that name it. */
static void owner_receives_false_leaves_the_owner_ref_out(void **state)
{
	struct tree t;
	struct tf_policy_set *set;
	struct tf_err err;
	uint32_t ww, mc;

	(void)state;
	make_tree(&t, identities_text);
	put(&t, "a.json", policy_text("alarms", "city-waterworks", "[\"alarm/+\"]",
		", \"owner_receives\": false, \"consumers\": [{\"orgs\": [\"maint-co\"]},"
		" {\"orgs\": [\"city-waterworks\"], \"roles\": [\"sensor\"]}]"));
	put(&t, "b.json", policy_text("water", "city-waterworks", "[\"water/+\"]", ""));
	if (load(&t, false, &set, &err) != TF_OK)
		fail_msg("%s", err.msg);
	assert_false(tf_policy_set_find(set, "alarms")->owner_receives);
	assert_true(tf_policy_set_find(set, "water")->owner_receives);
	ww = tf_identities_org(set->ids, "city-waterworks");
	mc = tf_identities_org(set->ids, "maint-co");
	/* The waterworks: rule 1 of alarms, and the owner of water. */
	assert_int_equal(set->org_off[ww + 1] - set->org_off[ww], 2);
	assert_int_equal(set->org_refs[set->org_off[ww]].policy, 0);
	assert_int_equal(set->org_refs[set->org_off[ww]].rule, 1);
	assert_int_equal(set->org_refs[set->org_off[ww] + 1].policy, 1);
	assert_int_equal(set->org_refs[set->org_off[ww] + 1].rule, TF_RULE_OWNER);
	assert_int_equal(set->org_off[mc + 1] - set->org_off[mc], 1);
	assert_int_equal(set->org_refs[set->org_off[mc]].rule, 0);
	tf_policy_set_free(set);
	remove_tree(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(loads_policies_in_name_order_ignoring_other_files),
		cmocka_unit_test(dir_list_sorts_and_filters),
		cmocka_unit_test(empty_directory_loads_an_empty_set),
		cmocka_unit_test(duplicate_policy_id_names_both_files),
		cmocka_unit_test(identical_topic_filter_names_both_files),
		cmocka_unit_test(overlapping_filters_of_two_owners_are_refused),
		cmocka_unit_test(one_owner_nests_its_own_policies),
		cmocka_unit_test(view_overlapping_another_policys_topics_is_refused),
		cmocka_unit_test(view_overlapping_another_view_is_refused),
		cmocka_unit_test(views_that_overlap_nothing_govern_their_prefix),
		cmocka_unit_test(broken_file_anywhere_fails_the_whole_load),
		cmocka_unit_test(missing_directory_or_identities_is_an_io_error),
		cmocka_unit_test(a_peer_with_this_brokers_own_id_is_refused),
		cmocka_unit_test(find_and_operator_roles),
		cmocka_unit_test(assemble_without_identities_checks_across_files),
		cmocka_unit_test(assemble_with_identities_indexes_receivers),
		cmocka_unit_test(owner_receives_false_leaves_the_owner_ref_out),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
