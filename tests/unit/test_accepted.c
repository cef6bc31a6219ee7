/* Unit tests for broker/engine/accepted.c: the last accepted policy set, kept
 * as copies of its files, replaced whole, found again, also after a crash
 * between its two renames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/engine/accepted.h"

struct fixture {
	char root[64], store[128], ids[128], policies[128];
};

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void read_text(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[256];

	snprintf(f->root, sizeof(f->root), "/tmp/tf-accepted-XXXXXX");
	if (f == NULL || mkdtemp(f->root) == NULL)
		return -1;
	snprintf(f->store, sizeof(f->store), "%s/store", f->root);
	snprintf(f->ids, sizeof(f->ids), "%s/identities.json", f->root);
	snprintf(f->policies, sizeof(f->policies), "%s/policies", f->root);
	if (mkdir(f->store, 0700) != 0 || mkdir(f->policies, 0700) != 0)
		return -1;
	write_text(f->ids, "ids v1");
	snprintf(path, sizeof(path), "%s/a.json", f->policies);
	write_text(path, "policy a v1");
	snprintf(path, sizeof(path), "%s/notes.txt", f->policies);
	write_text(path, "not a policy");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void nothing_kept_is_found_as_nothing(void **state)
{
	struct fixture *f = *state;
	char ids[512], dir[512];

	assert_false(tf_accepted_find(f->store, ids, dir, sizeof(ids)));
}

static void a_kept_set_is_a_copy_of_its_files(void **state)
{
	struct fixture *f = *state;
	char ids[512], dir[512], path[600], text[64];
	struct tf_err err = { "" };

	assert_int_equal(tf_accepted_keep(f->store, f->ids, f->policies, &err), TF_OK);
	/* The files change after; the copy does not. */
	write_text(f->ids, "ids v2");
	assert_true(tf_accepted_find(f->store, ids, dir, sizeof(ids)));
	read_text(ids, text, sizeof(text));
	assert_string_equal(text, "ids v1");
	snprintf(path, sizeof(path), "%s/a.json", dir);
	read_text(path, text, sizeof(text));
	assert_string_equal(text, "policy a v1");
	/* Only the policies. */
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	assert_int_not_equal(access(path, F_OK), 0);
	/* Kept again, the new copy replaces the old one whole. */
	snprintf(path, sizeof(path), "%s/a.json", f->policies);
	unlink(path);
	assert_int_equal(tf_accepted_keep(f->store, f->ids, f->policies, &err), TF_OK);
	assert_true(tf_accepted_find(f->store, ids, dir, sizeof(ids)));
	read_text(ids, text, sizeof(text));
	assert_string_equal(text, "ids v2");
	snprintf(path, sizeof(path), "%s/a.json", dir);
	assert_int_not_equal(access(path, F_OK), 0);
}

static void a_crash_between_the_renames_leaves_the_old_copy(void **state)
{
	struct fixture *f = *state;
	char ids[512], dir[512], from[256], to[256], text[64];
	struct tf_err err = { "" };

	assert_int_equal(tf_accepted_keep(f->store, f->ids, f->policies, &err), TF_OK);
	snprintf(from, sizeof(from), "%s/accepted", f->store);
	snprintf(to, sizeof(to), "%s/accepted.old", f->store);
	assert_int_equal(rename(from, to), 0);
	assert_true(tf_accepted_find(f->store, ids, dir, sizeof(ids)));
	read_text(ids, text, sizeof(text));
	assert_string_equal(text, "ids v1");
	/* The next keep puts a whole copy in place again. */
	write_text(f->ids, "ids v3");
	assert_int_equal(tf_accepted_keep(f->store, f->ids, f->policies, &err), TF_OK);
	assert_true(tf_accepted_find(f->store, ids, dir, sizeof(ids)));
	read_text(ids, text, sizeof(text));
	assert_string_equal(text, "ids v3");
	assert_int_not_equal(access(to, F_OK), 0);
}

static void a_missing_file_keeps_the_copy_before(void **state)
{
	struct fixture *f = *state;
	char ids[512], dir[512], text[64], gone[256];
	struct tf_err err = { "" };

	assert_int_equal(tf_accepted_keep(f->store, f->ids, f->policies, &err), TF_OK);
	snprintf(gone, sizeof(gone), "%s/absent.json", f->root);
	assert_int_equal(tf_accepted_keep(f->store, gone, f->policies, &err), TF_ERR_IO);
	assert_non_null(strstr(err.msg, "absent.json"));
	assert_true(tf_accepted_find(f->store, ids, dir, sizeof(ids)));
	read_text(ids, text, sizeof(text));
	assert_string_equal(text, "ids v1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(nothing_kept_is_found_as_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(a_kept_set_is_a_copy_of_its_files, setup, teardown),
		cmocka_unit_test_setup_teardown(a_crash_between_the_renames_leaves_the_old_copy, setup,
			teardown),
		cmocka_unit_test_setup_teardown(a_missing_file_keeps_the_copy_before, setup,
			teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
