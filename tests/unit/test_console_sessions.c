/* Unit tests for broker/console/sessions.c (the console's sessions: ids,
 * CSRF tokens, idle expiry, the cap, references) and throttle.c (the
 * brake on failed sign-ins). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/console/sessions.h"
#include "broker/console/throttle.h"

#define IDLE_MS 1000

/* Links are ints here; destroying one counts it. */
static int destroyed;

static void destroy(void *link)
{
	(void)link;
	destroyed++;
}

static int setup(void **state)
{
	destroyed = 0;
	*state = tf_console_sessions_new(3, IDLE_MS, destroy);
	return *state == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	tf_console_sessions_free(*state);
	return 0;
}

static struct tf_console_session *add(struct tf_console_sessions *t, const char *user,
		const char *key, int64_t now)
{
	static int links[16];
	struct tf_console_session *s;

	assert_int_equal(tf_console_sessions_add(t, user, key, &links[0], now, &s),
		TF_CONSOLE_SESSIONS_OK);
	assert_non_null(s);
	return s;
}

static bool is_hex64(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static void ids_and_tokens_are_random_hex_and_differ(void **state)
{
	struct tf_console_sessions *t = *state;
	struct tf_console_session *a = add(t, "ww-steward", NULL, 0);
	struct tf_console_session *b = add(t, "ww-steward", NULL, 0);

	assert_true(is_hex64(tf_console_session_id(a)));
	assert_true(is_hex64(tf_console_session_csrf(a)));
	assert_string_not_equal(tf_console_session_id(a), tf_console_session_csrf(a));
	assert_string_not_equal(tf_console_session_id(a), tf_console_session_id(b));
	assert_string_not_equal(tf_console_session_csrf(a), tf_console_session_csrf(b));
	assert_string_equal(tf_console_session_user(a), "ww-steward");
	tf_console_sessions_release(t, a);
	tf_console_sessions_release(t, b);
}

static void a_session_is_found_by_its_id_only(void **state)
{
	struct tf_console_sessions *t = *state;
	struct tf_console_session *a = add(t, "u", NULL, 0), *found;
	char id[TF_CONSOLE_TOKEN_HEX + 1];

	snprintf(id, sizeof(id), "%s", tf_console_session_id(a));
	found = tf_console_sessions_find(t, id, false, 10);
	assert_ptr_equal(found, a);
	tf_console_sessions_release(t, found);
	/* Not by its CSRF token, a prefix, a changed id or by key. */
	assert_null(tf_console_sessions_find(t, tf_console_session_csrf(a), false, 10));
	id[63] = id[63] == '0' ? '1' : '0';
	assert_null(tf_console_sessions_find(t, id, false, 10));
	id[63] = '\0';
	assert_null(tf_console_sessions_find(t, id, false, 10));
	assert_null(tf_console_sessions_find(t, "", false, 10));
	assert_null(tf_console_sessions_find(t, NULL, false, 10));
	assert_null(tf_console_sessions_find(t, tf_console_session_id(a), true, 10));
	tf_console_sessions_release(t, a);
}

static void the_csrf_token_must_match_exactly(void **state)
{
	struct tf_console_sessions *t = *state;
	struct tf_console_session *a = add(t, "u", NULL, 0);
	char token[TF_CONSOLE_TOKEN_HEX + 2];

	assert_true(tf_console_session_csrf_ok(a, tf_console_session_csrf(a)));
	assert_false(tf_console_session_csrf_ok(a, NULL));
	assert_false(tf_console_session_csrf_ok(a, ""));
	assert_false(tf_console_session_csrf_ok(a, tf_console_session_id(a)));
	snprintf(token, sizeof(token), "%sx", tf_console_session_csrf(a));
	assert_false(tf_console_session_csrf_ok(a, token));
	token[0] = token[0] == 'a' ? 'b' : 'a';
	token[64] = '\0';
	assert_false(tf_console_session_csrf_ok(a, token));
	tf_console_sessions_release(t, a);
}

static void scrape_sessions_are_found_by_key(void **state)
{
	struct tf_console_sessions *t = *state;
	char key[TF_CONSOLE_TOKEN_HEX + 1], other[TF_CONSOLE_TOKEN_HEX + 1];
	struct tf_console_session *a, *found;
	enum tf_console_sessions_rc rc;
	int link = 0;

	memset(key, 'a', 64);
	key[64] = '\0';
	memcpy(other, key, sizeof(key));
	other[5] = 'b';
	a = add(t, "scraper", key, 0);
	found = tf_console_sessions_find(t, key, true, 1);
	assert_ptr_equal(found, a);
	tf_console_sessions_release(t, found);
	assert_null(tf_console_sessions_find(t, other, true, 1));
	tf_console_sessions_release(t, a);
	/* A key must be a whole token. */
	rc = tf_console_sessions_add(t, "x", "short", &link, 0, &a);
	assert_int_equal(rc, TF_CONSOLE_SESSIONS_NOMEM);
	assert_null(a);
}

static void idle_sessions_end_and_their_links_go(void **state)
{
	struct tf_console_sessions *t = *state;
	struct tf_console_session *a = add(t, "u", NULL, 0);
	char id[TF_CONSOLE_TOKEN_HEX + 1];

	snprintf(id, sizeof(id), "%s", tf_console_session_id(a));
	tf_console_sessions_release(t, a);
	/* Use restarts the idle time. */
	a = tf_console_sessions_find(t, id, false, IDLE_MS - 1);
	assert_non_null(a);
	tf_console_sessions_release(t, a);
	a = tf_console_sessions_find(t, id, false, 2 * IDLE_MS - 2);
	assert_non_null(a);
	tf_console_sessions_release(t, a);
	assert_int_equal(destroyed, 0);
	assert_null(tf_console_sessions_find(t, id, false, 3 * IDLE_MS));
	assert_int_equal(destroyed, 1);
	assert_int_equal(tf_console_sessions_count(t), 0);
}

static void the_table_has_a_cap_and_expiry_makes_room(void **state)
{
	struct tf_console_sessions *t = *state;
	struct tf_console_session *s[3], *more;
	int link = 0;

	for (int i = 0; i < 3; i++) {
		s[i] = add(t, "u", NULL, i);
		tf_console_sessions_release(t, s[i]);
	}
	assert_int_equal(tf_console_sessions_add(t, "u", NULL, &link, 10, &more),
		TF_CONSOLE_SESSIONS_FULL);
	assert_null(more);
	assert_int_equal(destroyed, 0);     /* a refused link stays the caller's */
	/* Once the first is idle past its time, there is room. */
	more = add(t, "u", NULL, IDLE_MS + 1);
	assert_int_equal(destroyed, 1);
	assert_int_equal(tf_console_sessions_count(t), 3);
	tf_console_sessions_release(t, more);
}

static void an_ended_session_lives_until_its_last_reference_goes(void **state)
{
	struct tf_console_sessions *t = *state;
	struct tf_console_session *a = add(t, "u", NULL, 0);
	char id[TF_CONSOLE_TOKEN_HEX + 1];
	struct tf_console_session *held;

	snprintf(id, sizeof(id), "%s", tf_console_session_id(a));
	held = tf_console_sessions_find(t, id, false, 1);     /* another request */
	tf_console_sessions_end(t, a);
	assert_null(tf_console_sessions_find(t, id, false, 2));
	assert_int_equal(tf_console_sessions_count(t), 0);
	tf_console_sessions_release(t, a);
	assert_int_equal(destroyed, 0);
	assert_string_equal(tf_console_session_user(held), "u");
	tf_console_sessions_release(t, held);
	assert_int_equal(destroyed, 1);
}

static void failed_sign_ins_are_braked(void **state)
{
	struct tf_console_throttle th;

	(void)state;
	assert_true(tf_console_throttle_init(&th, 3, 60000));
	for (int i = 0; i < 3; i++) {
		assert_true(tf_console_throttle_allows(&th, 1000 + i));
		tf_console_throttle_failed(&th, 1000 + i);
	}
	assert_false(tf_console_throttle_allows(&th, 2000));
	assert_false(tf_console_throttle_allows(&th, 60999));
	/* The next window starts afresh. */
	assert_true(tf_console_throttle_allows(&th, 61000));
	tf_console_throttle_destroy(&th);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(ids_and_tokens_are_random_hex_and_differ, setup,
			teardown),
		cmocka_unit_test_setup_teardown(a_session_is_found_by_its_id_only, setup, teardown),
		cmocka_unit_test_setup_teardown(the_csrf_token_must_match_exactly, setup, teardown),
		cmocka_unit_test_setup_teardown(scrape_sessions_are_found_by_key, setup, teardown),
		cmocka_unit_test_setup_teardown(idle_sessions_end_and_their_links_go, setup,
			teardown),
		cmocka_unit_test_setup_teardown(the_table_has_a_cap_and_expiry_makes_room, setup,
			teardown),
		cmocka_unit_test_setup_teardown(an_ended_session_lives_until_its_last_reference_goes,
			setup, teardown),
		cmocka_unit_test(failed_sign_ins_are_braked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
