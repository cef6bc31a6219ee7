/* Unit tests for broker/util/strmap.c (the string -> index hash map) and
 * broker/util/arena.c (the bump allocator behind it). */
#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "broker/util/arena.h"
#include "broker/util/strmap.h"

static int setup(void **state)
{
	struct tf_strmap *m = tf_strmap_new();

	if (m == NULL)
		return -1;
	*state = m;
	return 0;
}

static int teardown(void **state)
{
	tf_strmap_free(*state);
	return 0;
}

static int put(struct tf_strmap *m, const char *key, uint32_t value)
{
	return tf_strmap_put(m, key, strlen(key), value, NULL);
}

static void new_map_is_empty(void **state)
{
	struct tf_strmap *m = *state;
	uint32_t v = 77;

	assert_int_equal(tf_strmap_count(m), 0);
	assert_false(tf_strmap_get(m, "a", 1, &v));
	assert_false(tf_strmap_get(m, "", 0, &v));
	assert_int_equal(v, 77);
	assert_true(tf_strmap_bytes(m) > 0);
}

static void put_then_get(void **state)
{
	struct tf_strmap *m = *state;
	uint32_t v = 0;

	assert_int_equal(put(m, "alice", 1), 1);
	assert_int_equal(put(m, "bob", 2), 1);
	assert_int_equal(put(m, "carol", 0), 1);
	assert_int_equal(tf_strmap_count(m), 3);
	assert_true(tf_strmap_get(m, "alice", 5, &v));
	assert_int_equal(v, 1);
	assert_true(tf_strmap_get(m, "bob", 3, &v));
	assert_int_equal(v, 2);
	assert_true(tf_strmap_get(m, "carol", 5, &v));
	assert_int_equal(v, 0);
	assert_true(put(m, "max", UINT32_MAX) == 1);
	assert_true(tf_strmap_get(m, "max", 3, &v));
	assert_int_equal(v, UINT32_MAX);
}

static void lookup_uses_the_given_length(void **state)
{
	struct tf_strmap *m = *state;
	uint32_t v = 0;

	assert_int_equal(put(m, "abc", 3), 1);
	/* A prefix of the buffer is a different key. */
	assert_false(tf_strmap_get(m, "abcdef", 6, &v));
	assert_true(tf_strmap_get(m, "abcdef", 3, &v));
	assert_int_equal(v, 3);
	assert_false(tf_strmap_get(m, "abc", 2, &v));
	assert_int_equal(tf_strmap_put(m, "abcdef", 2, 2, NULL), 1);
	assert_true(tf_strmap_get(m, "ab", 2, &v));
	assert_int_equal(v, 2);
	assert_true(tf_strmap_get(m, "abc", 3, &v));
	assert_int_equal(v, 3);
}

static void duplicate_put_keeps_the_first_value(void **state)
{
	struct tf_strmap *m = *state;
	uint32_t existing = 0, v = 0;

	assert_int_equal(put(m, "key", 10), 1);
	assert_int_equal(tf_strmap_put(m, "key", 3, 20, &existing), 0);
	assert_int_equal(existing, 10);
	/* existing may be NULL. */
	assert_int_equal(tf_strmap_put(m, "key", 3, 30, NULL), 0);
	assert_int_equal(tf_strmap_count(m), 1);
	assert_true(tf_strmap_get(m, "key", 3, &v));
	assert_int_equal(v, 10);
}

static void missing_keys_are_not_found(void **state)
{
	struct tf_strmap *m = *state;
	uint32_t v = 1234;

	assert_int_equal(put(m, "present", 1), 1);
	assert_false(tf_strmap_get(m, "absent", 6, &v));
	assert_false(tf_strmap_get(m, "Present", 7, &v));
	assert_false(tf_strmap_get(m, "presentx", 8, &v));
	assert_false(tf_strmap_get(m, "", 0, &v));
	assert_int_equal(v, 1234);
}

static void empty_key_is_a_key(void **state)
{
	struct tf_strmap *m = *state;
	uint32_t v = 0, existing = 0;

	assert_int_equal(tf_strmap_put(m, "", 0, 9, NULL), 1);
	assert_true(tf_strmap_get(m, "", 0, &v));
	assert_int_equal(v, 9);
	assert_int_equal(tf_strmap_put(m, "x", 0, 8, &existing), 0);
	assert_int_equal(existing, 9);
	assert_int_equal(tf_strmap_count(m), 1);
}

static void binary_keys_with_nul_bytes(void **state)
{
	struct tf_strmap *m = *state;
	static const char k1[] = { 'a', '\0', 'b' };
	static const char k2[] = { 'a', '\0', 'c' };
	static const char k3[] = { '\0', '\0', '\0', '\0' };
	static const char k4[] = { '\0', '\0', '\0', '\0', 'x' };
	static const char k5[] = { (char)0xff, (char)0x80, '\0', (char)0x01 };
	uint32_t v = 0, existing = 0;

	assert_int_equal(tf_strmap_put(m, k1, sizeof(k1), 1, NULL), 1);
	assert_int_equal(tf_strmap_put(m, k2, sizeof(k2), 2, NULL), 1);
	assert_int_equal(tf_strmap_put(m, k3, sizeof(k3), 3, NULL), 1);
	assert_int_equal(tf_strmap_put(m, k4, sizeof(k4), 4, NULL), 1);
	assert_int_equal(tf_strmap_put(m, k5, sizeof(k5), 5, NULL), 1);
	/* "a" is the C-string prefix of k1 and k2 but a key of its own. */
	assert_int_equal(tf_strmap_put(m, "a", 1, 6, NULL), 1);
	assert_int_equal(tf_strmap_count(m), 6);
	assert_true(tf_strmap_get(m, k1, sizeof(k1), &v));
	assert_int_equal(v, 1);
	assert_true(tf_strmap_get(m, k2, sizeof(k2), &v));
	assert_int_equal(v, 2);
	assert_true(tf_strmap_get(m, k3, sizeof(k3), &v));
	assert_int_equal(v, 3);
	assert_true(tf_strmap_get(m, k4, sizeof(k4), &v));
	assert_int_equal(v, 4);
	assert_true(tf_strmap_get(m, k5, sizeof(k5), &v));
	assert_int_equal(v, 5);
	assert_true(tf_strmap_get(m, "a", 1, &v));
	assert_int_equal(v, 6);
	assert_false(tf_strmap_get(m, k1, 2, &v));
	assert_false(tf_strmap_get(m, k3, 3, &v));
	assert_int_equal(tf_strmap_put(m, k2, sizeof(k2), 20, &existing), 0);
	assert_int_equal(existing, 2);
}

static void keys_are_copied(void **state)
{
	struct tf_strmap *m = *state;
	char buf[16];
	uint32_t v = 0;

	strcpy(buf, "temporary");
	assert_int_equal(tf_strmap_put(m, buf, strlen(buf), 42, NULL), 1);
	memset(buf, 'z', sizeof(buf));
	assert_false(tf_strmap_get(m, buf, 9, &v));
	assert_true(tf_strmap_get(m, "temporary", 9, &v));
	assert_int_equal(v, 42);
}

/* Keys whose 32-bit hashes collide (under the map's FNV-1a, folded, as
 * written today; found by brute force) are still told apart by their bytes
 * and lengths. The test stays valid if the hash changes. */
static void colliding_hashes_are_told_apart(void **state)
{
	struct tf_strmap *m = *state;
	uint32_t v = 0, existing = 0;

	/* "user-1966" is a prefix of "user-1966duag", with the same hash. */
	assert_int_equal(put(m, "user-1966duag", 1), 1);
	assert_false(tf_strmap_get(m, "user-1966", 9, &v));
	assert_int_equal(put(m, "user-1966", 2), 1);
	/* Same hash, different lengths, not prefixes. */
	assert_int_equal(put(m, "key-1239", 3), 1);
	assert_int_equal(tf_strmap_put(m, "key-109066", 10, 4, &existing), 1);
	assert_int_equal(tf_strmap_count(m), 4);
	assert_true(tf_strmap_get(m, "user-1966duag", 13, &v));
	assert_int_equal(v, 1);
	assert_true(tf_strmap_get(m, "user-1966", 9, &v));
	assert_int_equal(v, 2);
	assert_true(tf_strmap_get(m, "key-1239", 8, &v));
	assert_int_equal(v, 3);
	assert_true(tf_strmap_get(m, "key-109066", 10, &v));
	assert_int_equal(v, 4);
}

#define MANY 200000u

static void grows_to_many_keys(void **state)
{
	struct tf_strmap *m = *state;
	char key[32];
	uint32_t v, existing;
	size_t bytes = tf_strmap_bytes(m);

	for (uint32_t i = 0; i < MANY; i++) {
		int n = snprintf(key, sizeof(key), "user-%u", (unsigned)i);

		assert_int_equal(tf_strmap_put(m, key, (size_t)n, i * 3, NULL), 1);
		assert_int_equal(tf_strmap_count(m), i + 1);
	}
	assert_true(tf_strmap_bytes(m) > bytes);
	for (uint32_t i = 0; i < MANY; i++) {
		int n = snprintf(key, sizeof(key), "user-%u", (unsigned)i);

		v = UINT32_MAX;
		assert_true(tf_strmap_get(m, key, (size_t)n, &v));
		assert_int_equal(v, i * 3);
	}
	for (uint32_t i = 0; i < MANY; i += 997) {
		int n = snprintf(key, sizeof(key), "user-%u", (unsigned)i);

		existing = UINT32_MAX;
		assert_int_equal(tf_strmap_put(m, key, (size_t)n, 1, &existing), 0);
		assert_int_equal(existing, i * 3);
	}
	assert_int_equal(tf_strmap_count(m), MANY);
	for (uint32_t i = MANY; i < MANY + 1000; i++) {
		int n = snprintf(key, sizeof(key), "user-%u", (unsigned)i);

		assert_false(tf_strmap_get(m, key, (size_t)n, &v));
	}
	assert_false(tf_strmap_get(m, "user-", 5, &v));
	assert_false(tf_strmap_get(m, "user-01", 7, &v));
}

static void grows_with_binary_keys(void **state)
{
	struct tf_strmap *m = *state;
	uint32_t v;

	/* 4-byte big-endian integers: many keys full of NUL bytes. */
	for (uint32_t i = 0; i < 70000; i++) {
		char key[4] = { (char)(i >> 24), (char)(i >> 16), (char)(i >> 8), (char)i };

		assert_int_equal(tf_strmap_put(m, key, sizeof(key), ~i, NULL), 1);
	}
	assert_int_equal(tf_strmap_count(m), 70000);
	for (uint32_t i = 0; i < 70000; i++) {
		char key[4] = { (char)(i >> 24), (char)(i >> 16), (char)(i >> 8), (char)i };

		assert_true(tf_strmap_get(m, key, sizeof(key), &v));
		assert_int_equal(v, ~i);
	}
}

/* An owner's entries for tf_strmap_renumbered: the keys, NULL for those
 * to go. */
static const char *owner_keys[] = { "meter-1", NULL, "meter-3", "", NULL, "meter-6" };

static const char *owner_key(void *ctx, uint32_t i, size_t *len)
{
	const char *const *keys = ctx;

	*len = keys[i] ? strlen(keys[i]) : 0;
	return keys[i];
}

static void renumbered_keeps_the_kept_in_order(void **state)
{
	struct tf_strmap *m = tf_strmap_renumbered(6, owner_key, owner_keys);
	uint32_t v;

	(void)state;
	assert_non_null(m);
	assert_int_equal(tf_strmap_count(m), 4);
	assert_true(tf_strmap_get(m, "meter-1", 7, &v));
	assert_int_equal(v, 0);
	assert_true(tf_strmap_get(m, "meter-3", 7, &v));
	assert_int_equal(v, 1);
	assert_true(tf_strmap_get(m, "", 0, &v));
	assert_int_equal(v, 2);
	assert_true(tf_strmap_get(m, "meter-6", 7, &v));
	assert_int_equal(v, 3);
	tf_strmap_free(m);
	/* Nothing kept: an empty map. */
	m = tf_strmap_renumbered(0, owner_key, owner_keys);
	assert_non_null(m);
	assert_int_equal(tf_strmap_count(m), 0);
	tf_strmap_free(m);
}

static void renumbered_refuses_a_key_kept_twice(void **state)
{
	static const char *twice[] = { "a", "b", "a" };

	(void)state;
	assert_null(tf_strmap_renumbered(3, owner_key, twice));
}

/* ---- arena ---- */

static bool aligned(const void *p)
{
	return (uintptr_t)p % alignof(max_align_t) == 0;
}

static void arena_pointers_are_aligned(void **state)
{
	struct tf_arena a = { 0 };
	static const size_t sizes[] = { 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100, 0, 5, 1000, 1 };

	(void)state;
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			unsigned char *p = tf_arena_alloc(&a, sizes[i]);

			assert_non_null(p);
			assert_true(aligned(p));
			memset(p, 0xab, sizes[i]);
		}
	}
	assert_true(aligned(tf_arena_strdup(&a, "odd")));
	assert_true(aligned(tf_arena_alloc(&a, 1)));
	tf_arena_free(&a);
}

static void arena_allocations_do_not_overlap(void **state)
{
	struct tf_arena a = { 0 };
	unsigned char *p[3000];

	(void)state;
	for (size_t i = 0; i < 3000; i++) {
		size_t size = 1 + i % 61;

		p[i] = tf_arena_alloc(&a, size);
		assert_non_null(p[i]);
		memset(p[i], (int)(i & 0xff), size);
	}
	for (size_t i = 0; i < 3000; i++) {
		size_t size = 1 + i % 61;

		for (size_t j = 0; j < size; j++)
			assert_int_equal(p[i][j], i & 0xff);
	}
	assert_true(a.total >= 3000);
	tf_arena_free(&a);
}

static void arena_large_allocations(void **state)
{
	struct tf_arena a = { 0 };
	unsigned char *small1, *big1, *small2, *big2, *first_big;
	const size_t big = 1024 * 1024;

	(void)state;
	/* A large allocation into an empty arena. */
	first_big = tf_arena_alloc(&a, 100000);
	assert_non_null(first_big);
	assert_true(aligned(first_big));
	memset(first_big, 1, 100000);
	small1 = tf_arena_alloc(&a, 10);
	assert_non_null(small1);
	memset(small1, 2, 10);
	big1 = tf_arena_alloc(&a, big);
	assert_non_null(big1);
	assert_true(aligned(big1));
	memset(big1, 3, big);
	small2 = tf_arena_alloc(&a, 24);
	assert_non_null(small2);
	assert_true(aligned(small2));
	memset(small2, 4, 24);
	/* Just over a quarter of a 64 KiB chunk, and just under. */
	big2 = tf_arena_alloc(&a, 16 * 1024 + 1);
	assert_non_null(big2);
	memset(big2, 5, 16 * 1024 + 1);
	assert_non_null(tf_arena_alloc(&a, 16 * 1024 - 1));
	for (size_t i = 0; i < 100000; i++)
		assert_int_equal(first_big[i], 1);
	for (size_t i = 0; i < 10; i++)
		assert_int_equal(small1[i], 2);
	for (size_t i = 0; i < big; i++)
		assert_int_equal(big1[i], 3);
	for (size_t i = 0; i < 24; i++)
		assert_int_equal(small2[i], 4);
	for (size_t i = 0; i < 16 * 1024 + 1; i++)
		assert_int_equal(big2[i], 5);
	assert_true(a.total >= 100000 + 10 + big + 24 + 2 * 16 * 1024);
	tf_arena_free(&a);
	assert_null(a.chunks);
	assert_int_equal(a.total, 0);
}

static void arena_refuses_impossible_sizes(void **state)
{
	struct tf_arena a = { 0 };

	(void)state;
	assert_null(tf_arena_alloc(&a, SIZE_MAX));
	assert_null(tf_arena_alloc(&a, SIZE_MAX - alignof(max_align_t) / 2));
	assert_non_null(tf_arena_alloc(&a, 8));
	tf_arena_free(&a);
}

static void arena_strndup_copies(void **state)
{
	struct tf_arena a = { 0 };
	char src[] = "hello, world";
	static const char bin[] = { 'x', '\0', 'y' };
	char *c, *d, *e, *f;

	(void)state;
	c = tf_arena_strndup(&a, src, 5);
	assert_non_null(c);
	assert_string_equal(c, "hello");
	assert_ptr_not_equal(c, src);
	d = tf_arena_strdup(&a, src);
	assert_string_equal(d, "hello, world");
	src[0] = 'J';
	assert_string_equal(c, "hello");
	assert_string_equal(d, "hello, world");
	e = tf_arena_strndup(&a, "", 0);
	assert_non_null(e);
	assert_string_equal(e, "");
	f = tf_arena_strndup(&a, bin, sizeof(bin));
	assert_non_null(f);
	assert_memory_equal(f, bin, sizeof(bin));
	assert_int_equal(f[3], '\0');
	tf_arena_free(&a);
}

static void arena_is_reusable_after_free(void **state)
{
	struct tf_arena a = { 0 };
	char *s;

	(void)state;
	assert_non_null(tf_arena_strdup(&a, "one"));
	tf_arena_free(&a);
	tf_arena_free(&a);
	s = tf_arena_strdup(&a, "two");
	assert_non_null(s);
	assert_string_equal(s, "two");
	assert_true(a.total > 0);
	tf_arena_free(&a);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(new_map_is_empty),
		T(put_then_get),
		T(lookup_uses_the_given_length),
		T(duplicate_put_keeps_the_first_value),
		T(missing_keys_are_not_found),
		T(empty_key_is_a_key),
		T(binary_keys_with_nul_bytes),
		T(keys_are_copied),
		T(colliding_hashes_are_told_apart),
		T(grows_to_many_keys),
		T(grows_with_binary_keys),
		cmocka_unit_test(renumbered_keeps_the_kept_in_order),
		cmocka_unit_test(renumbered_refuses_a_key_kept_twice),
		cmocka_unit_test(arena_pointers_are_aligned),
		cmocka_unit_test(arena_allocations_do_not_overlap),
		cmocka_unit_test(arena_large_allocations),
		cmocka_unit_test(arena_refuses_impossible_sizes),
		cmocka_unit_test(arena_strndup_copies),
		cmocka_unit_test(arena_is_reusable_after_free),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
