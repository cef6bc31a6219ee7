/* tfctl policy check (operations-v1, federation-v1): every problem of
 * the policy files, one line each, as the broker would refuse them: each
 * file's members, its owner's signature (which key made it), a version
 * a broker's trace store holds a higher one of, and what the files must
 * agree on; and warnings of names in selectors that no identity has. */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker/trace/trace_query.h"
#include "broker/util/dirlist.h"
#include "broker/util/growable.h"
#include "broker/tfctl/tfctl.h"
#include "policy/identities.h"
#include "policy/jsonfile.h"
#include "policy/rollback.h"
#include "policy/selector.h"
#include "policy/set.h"

struct check_state {
	const struct tf_identities *ids;
	const struct tf_rollback *rollback;   /* NULL: no --trace */
	char **files;          /* every file named, in order */
	uint32_t n_files, cap_files;
	bool *good;            /* files[i] passed the checks of one file */
	unsigned char *uses;   /* per symbol of ids: USE_ROLE, USE_PURPOSE bits */
	int problems;
	bool unreadable;
};

#define USE_ROLE    1u
#define USE_PURPOSE 2u

static void print_problem(void *ctx, const char *msg)
{
	struct check_state *st = ctx;

	printf("%s\n", msg);
	st->problems++;
}

static void add_file(struct check_state *st, const char *path)
{
	char *copy = strdup(path);

	if (copy == NULL || !tf_grow(&st->files, &st->cap_files, st->n_files, 16, UINT32_MAX)) {
		free(copy);
		fprintf(stderr, "tfctl: out of memory\n");
		st->unreadable = true;
		return;
	}
	st->files[st->n_files++] = copy;
}

/* path: a file, or a directory of *.json files. */
static void add_path(struct check_state *st, const char *path)
{
	struct tf_err err = { "" };
	struct stat sb;
	char **names;
	uint32_t n;

	if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		add_file(st, path);
		return;
	}
	if (tf_dir_list(path, ".json", TF_POLICY_SET_MAX_FILES, &names, &n, &err) != TF_OK) {
		print_problem(st, err.msg);
		st->unreadable = true;
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		size_t len = strlen(path) + strlen(names[i]) + 2;
		char *file = malloc(len);

		if (file == NULL)
			break;
		snprintf(file, len, "%s/%s", path, names[i]);
		add_file(st, file);
		free(file);
	}
	tf_dir_list_free(names, n);
}

/* How the identities use each role or purpose name: a name that is only
 * some client's role matches no one in `purposes`. NULL when out of
 * memory (then no warnings). Caller frees. */
static unsigned char *label_uses(const struct tf_identities *ids)
{
	unsigned char *uses = calloc((size_t)tf_identities_symbol_count(ids) + 1, 1);
	const struct tf_client *c;

	for (uint32_t i = 0; uses != NULL && (c = tf_identities_client_at(ids, i)) != NULL; i++) {
		for (uint32_t k = 0; k < c->n_roles; k++)
			uses[c->roles[k]] |= USE_ROLE;
		for (uint32_t k = 0; k < c->n_purposes; k++)
			uses[c->purposes[k]] |= USE_PURPOSE;
	}
	return uses;
}

/* Warns of the names in selector sel (at JSON path `path` of file) that
 * no identity has. An unknown organization is a problem of the file; an
 * unknown client, role or purpose is not (the operator may add it
 * later), but the key then matches no one through it, which is most
 * likely a typo that shuts a partner out. A selector with an empty list
 * matches no one as written (the template of tfctl policy new: "orgs":
 * []), so nothing is shut out unawares: no warnings there. */
static void warn_unknown_names(const struct check_state *st, const char *file, const char *path,
		const cJSON *sel)
{
	static const struct {
		const char *key, *what, *why, *other;
		unsigned use;  /* 0: a client */
	} keys[] = {
		{ "clients", "client", "not in the identities file", NULL, 0 },
		{ "roles", "role", "no client in the identities file has it",
		  "no client in the identities file has it as a role, only as a purpose", USE_ROLE },
		{ "purposes", "purpose", "no client in the identities file declares it",
		  "no client in the identities file declares it as a purpose, only as a role",
		  USE_PURPOSE },
	};

	for (const char *const *key = tf_selector_members; *key != NULL; key++) {
		const cJSON *list = cJSON_GetObjectItemCaseSensitive(sel, *key);

		if (cJSON_IsArray(list) && cJSON_GetArraySize(list) == 0)
			return;
	}
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		const cJSON *list = cJSON_GetObjectItemCaseSensitive(sel, keys[k].key), *item;
		int index = -1;

		cJSON_ArrayForEach(item, list) {
			const char *name = cJSON_GetStringValue(item), *why = keys[k].why;
			uint32_t sym;
			bool known;

			index++;
			if (name == NULL)
				continue;
			if (keys[k].use == 0) {
				known = tf_identities_client_index(st->ids, name) != TF_NONE;
			} else {
				sym = tf_identities_symbol(st->ids, name);
				known = sym != TF_NONE && (st->uses[sym] & keys[k].use) != 0;
				if (sym != TF_NONE && st->uses[sym] != 0)
					why = keys[k].other;
			}
			if (!known)
				printf("%s: %s.%s[%d]: warning: unknown %s \"%s\" (%s)\n", file, path,
					keys[k].key, index, keys[k].what, name, why);
		}
	}
}

/* The warnings of a policy that passed its checks: names in its
 * publishers and consumer rules that the identities do not know, read
 * from the very bytes checked (the loaded policy keeps only the names that
 * resolve). Warnings are not problems: the exit status stays. */
static void warn_policy(const struct check_state *st, const struct tf_policy *p)
{
	struct tf_err err = { "" };
	const cJSON *rule;
	cJSON *root;
	char at[32];
	int index = 0;

	if (st->ids == NULL || st->uses == NULL || p->bytes == NULL
			|| tf_json_parse((const char *)p->bytes, p->n_bytes, p->file, &root, &err) != TF_OK)
		return;
	warn_unknown_names(st, p->file, "$.publishers",
		cJSON_GetObjectItemCaseSensitive(root, "publishers"));
	cJSON_ArrayForEach(rule, cJSON_GetObjectItemCaseSensitive(root, "consumers")) {
		snprintf(at, sizeof(at), "$.consumers[%d]", index++);
		warn_unknown_names(st, p->file, at, rule);
	}
	cJSON_Delete(root);
}

/* The checks of one file: its members, its owner's signature, and the
 * version the trace store holds. Says which key signed it. */
static void check_file(struct check_state *st, uint32_t i)
{
	struct tf_arena arena = { 0 };
	struct tf_err err = { "" };
	struct tf_policy p;
	int before = st->problems;
	int rc = tf_policy_check_file(st->files[i], st->ids, print_problem, st, &arena, &p, &err);

	if (rc == TF_OK)
		rc = tf_rollback_check(st->rollback, &p, &err);
	/* A problem outside the members (unreadable, syntax, signature,
	 * rollback) was not reported on the way. */
	if (rc != TF_OK && st->problems == before)
		print_problem(st, err.msg);
	st->unreadable |= rc == TF_ERR_IO;
	st->good[i] = rc == TF_OK;
	if (rc == TF_OK && p.signed_by != NULL)
		printf("%s: signed by %s, a policy key of %s\n", p.file, p.signed_by, p.owner_id);
	if (rc == TF_OK)
		warn_policy(st, &p);
	tf_policy_release(&p);
	tf_arena_free(&arena);
}

/* Loads the good files again into a set of their own, leaving out those
 * refused (left out): the set takes what it is given. What the files must
 * agree on (ids, topics, views) needs no identities: owners are told
 * apart by their ids. */
static int assemble(struct check_state *st, const bool *left_out, uint32_t *refused,
		struct tf_err *err)
{
	struct tf_policy *policies = calloc(st->n_files + 1, sizeof(*policies));
	uint32_t *file_of = calloc(st->n_files + 1, sizeof(*file_of)), n = 0;
	struct tf_arena arena = { 0 };
	struct tf_policy_set *set = NULL;
	int rc = policies && file_of ? TF_OK : tf_err_set(err, TF_ERR_NOMEM, "out of memory");

	for (uint32_t i = 0; rc == TF_OK && i < st->n_files; i++) {
		if (!st->good[i] || left_out[i])
			continue;
		rc = tf_policy_load(st->files[i], NULL, st->ids, false, &arena, &policies[n], err);
		if (rc == TF_OK)
			file_of[n++] = i;
	}
	if (rc != TF_OK) {
		for (uint32_t k = 0; k < n; k++)
			tf_policy_release(&policies[k]);
		free(policies);
		free(file_of);
		tf_arena_free(&arena);
		return rc;
	}
	rc = tf_policy_set_assemble_checked(NULL, policies, n, &arena, &set, refused, err);
	if (rc != TF_OK && *refused != UINT32_MAX)
		*refused = file_of[*refused];
	tf_policy_set_free(set);
	free(file_of);
	return rc;
}

/* The checks across files, each problem once: a file a problem is about
 * is left out, and the rest checked again, until they agree. */
static void check_together(struct check_state *st)
{
	bool *left_out = calloc(st->n_files + 1, sizeof(*left_out));
	struct tf_err err = { "" };
	uint32_t refused = UINT32_MAX;

	if (left_out == NULL) {
		print_problem(st, "out of memory");
		return;
	}
	for (uint32_t round = 0; round <= st->n_files; round++) {
		int rc = assemble(st, left_out, &refused, &err);

		if (rc == TF_OK)
			break;
		print_problem(st, err.msg);
		if (refused == UINT32_MAX)
			break;
		left_out[refused] = true;
	}
	free(left_out);
}

/* The versions the trace store in dir holds, into r. */
static int read_rollback(const char *dir, struct tf_rollback *r)
{
	struct tf_trace_store *s;
	struct tf_err err = { "" };
	int rc = tf_trace_open(dir, false, 0, &s, &err);

	if (rc != TF_OK) {
		fprintf(stderr, "tfctl: %s\n", err.msg);
		return rc;
	}
	rc = tf_trace_read_begin(s, &err);
	if (rc == TF_OK) {
		if ((rc = tf_query_rollback(s, r)) != TF_OK)
			tf_err_set(&err, rc, "out of memory");
		tf_trace_read_end(s);
	}
	tf_trace_close(s);
	if (rc != TF_OK)
		fprintf(stderr, "tfctl: %s\n", err.msg);
	return rc;
}

int tfctl_policy_check(int argc, char **argv)
{
	struct check_state st = { 0 };
	struct tf_identities *ids = NULL;
	struct tf_rollback *rollback = NULL;
	struct tf_err err = { "" };
	const char *identities = NULL, *trace = NULL;
	int first = 0, rc = TFCTL_OK;

	for (; first + 1 < argc && strncmp(argv[first], "--", 2) == 0; first += 2) {
		if (strcmp(argv[first], "--identities") == 0)
			identities = argv[first + 1];
		else if (strcmp(argv[first], "--trace") == 0)
			trace = argv[first + 1];
		else
			return tfctl_policy_usage("unknown option");
	}
	if (first >= argc)
		return tfctl_policy_usage("check needs at least one policy file or directory");
	if (trace != NULL && ((rollback = tf_rollback_new()) == NULL
			|| read_rollback(trace, rollback) != TF_OK)) {
		tf_rollback_free(rollback);
		return TFCTL_USAGE;
	}
	if (identities != NULL) {
		int loaded = tf_identities_load(identities, NULL, &ids, &err);

		if (loaded != TF_OK) {
			print_problem(&st, err.msg);
			st.unreadable |= loaded == TF_ERR_IO;
		}
	}
	st.ids = ids;
	if (ids != NULL && (st.uses = label_uses(ids)) == NULL)
		fputs("tfctl: out of memory: names the identities do not know are not reported\n",
			stderr);
	st.rollback = rollback;
	for (int i = first; i < argc; i++)
		add_path(&st, argv[i]);
	st.good = calloc(st.n_files + 1, sizeof(*st.good));
	if (st.good == NULL)
		st.unreadable = true;
	for (uint32_t i = 0; st.good != NULL && i < st.n_files; i++)
		check_file(&st, i);
	/* What the files must agree on, among those good on their own. */
	if (st.good != NULL)
		check_together(&st);
	if (st.unreadable)
		rc = TFCTL_USAGE;
	else if (st.problems > 0)
		rc = TFCTL_NO;
	for (uint32_t i = 0; i < st.n_files; i++)
		free(st.files[i]);
	free(st.files);
	free(st.good);
	free(st.uses);
	tf_identities_free(ids);
	tf_rollback_free(rollback);
	return rc;
}
