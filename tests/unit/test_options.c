/* Unit tests for broker/engine/options.c: the plugin's plugin_opt_* handling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/engine/options.h"

struct fixture {
	struct tf_options opts;
	struct tf_err err;
};

static int setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	if (tf_options_init(&f.opts, &f.err) != TF_OK)
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tf_options_free(&f->opts);
	return 0;
}

static void defaults_are_filled(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(f->opts.broker_id, "trustflow");
}

static void known_option_is_stored(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(tf_options_set(&f->opts, "broker_id", "city-broker-1", &f->err), TF_OK);
	assert_string_equal(f->opts.broker_id, "city-broker-1");
}

static void unknown_option_is_refused_by_name(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(tf_options_set(&f->opts, "broker_idd", "x", &f->err), TF_ERR_INVALID);
	assert_non_null(strstr(f->err.msg, "plugin_opt_broker_idd"));
	assert_non_null(strstr(f->err.msg, "unknown option"));
}

static void malformed_value_is_refused_and_changes_nothing(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(tf_options_set(&f->opts, "broker_id", "not an id", &f->err), TF_ERR_INVALID);
	assert_non_null(strstr(f->err.msg, "plugin_opt_broker_id"));
	assert_non_null(strstr(f->err.msg, "\"not an id\""));
	assert_string_equal(f->opts.broker_id, "trustflow");
}

static void empty_and_missing_values_are_malformed(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(tf_options_set(&f->opts, "broker_id", "", &f->err), TF_ERR_INVALID);
	assert_int_equal(tf_options_set(&f->opts, "broker_id", NULL, &f->err), TF_ERR_INVALID);
}

static void repeated_option_is_refused(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(tf_options_set(&f->opts, "broker_id", "one", &f->err), TF_OK);
	assert_int_equal(tf_options_set(&f->opts, "broker_id", "two", &f->err), TF_ERR_INVALID);
	assert_non_null(strstr(f->err.msg, "more than once"));
	assert_string_equal(f->opts.broker_id, "one");
}

/* Stamps travel compact unless the operator asks for the full form;
 * nothing else is a form. */
static void stamp_form_is_compact_full_or_refused(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(f->opts.stamp_form, "compact");
	assert_int_equal(tf_options_set(&f->opts, "stamp_form", "eleven", &f->err), TF_ERR_INVALID);
	assert_non_null(strstr(f->err.msg, "plugin_opt_stamp_form: \"eleven\" is not one of "
		"compact|full"));
	assert_int_equal(tf_options_set(&f->opts, "stamp_form", "full", &f->err), TF_OK);
	assert_string_equal(f->opts.stamp_form, "full");
}

/* The signing options: the pool by default; workers a number or auto. */
static void signing_defaults_to_the_pool(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(f->opts.signing, "pool");
	assert_string_equal(f->opts.signing_workers, "auto");
	assert_string_equal(f->opts.signing_pool_size, "32768");
}

static void signing_workers_take_a_number_or_auto(void **state)
{
	struct fixture *f = *state;
	struct tf_options other;

	assert_int_equal(tf_options_set(&f->opts, "signing_workers", "0", &f->err), TF_ERR_INVALID);
	assert_non_null(strstr(f->err.msg, "from 1 to 64 or auto"));
	assert_int_equal(tf_options_set(&f->opts, "signing_workers", "65", &f->err),
		TF_ERR_INVALID);
	assert_int_equal(tf_options_set(&f->opts, "signing_workers", "autox", &f->err),
		TF_ERR_INVALID);
	assert_int_equal(tf_options_set(&f->opts, "signing_workers", "3", &f->err), TF_OK);
	assert_string_equal(f->opts.signing_workers, "3");
	assert_int_equal(tf_options_set(&f->opts, "signing", "fast", &f->err), TF_ERR_INVALID);
	assert_non_null(strstr(f->err.msg, "pool|deterministic"));
	assert_int_equal(tf_options_set(&f->opts, "signing", "deterministic", &f->err), TF_OK);
	assert_int_equal(tf_options_set(&f->opts, "signing_pool_size", "63", &f->err),
		TF_ERR_INVALID);
	assert_int_equal(tf_options_init(&other, &f->err), TF_OK);
	assert_int_equal(tf_options_set(&other, "signing_workers", "auto", &f->err), TF_OK);
	tf_options_free(&other);
}

static void table_describes_every_option(void **state)
{
	(void)state;
	assert_true(tf_options_count() >= 1);
	for (int i = 0; i < tf_options_count(); i++) {
		assert_non_null(tf_options_name(i));
		assert_non_null(tf_options_doc(i));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(defaults_are_filled, setup, teardown),
		cmocka_unit_test_setup_teardown(known_option_is_stored, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_option_is_refused_by_name, setup, teardown),
		cmocka_unit_test_setup_teardown(malformed_value_is_refused_and_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(empty_and_missing_values_are_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(repeated_option_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(stamp_form_is_compact_full_or_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(signing_defaults_to_the_pool, setup, teardown),
		cmocka_unit_test_setup_teardown(signing_workers_take_a_number_or_auto, setup, teardown),
		cmocka_unit_test_setup_teardown(table_describes_every_option, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
