/* Unit tests for policy/rfc3339.c: RFC 3339 date-times to and from
 * milliseconds since the epoch, and the dates alone of policy files.
 *
 * The expected epoch values were computed independently of the code under
 * test, with GNU date: date -u -d 2027-03-31T00:00:00Z +%s, and so on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/rfc3339.h"

#define S 1000LL  /* ms per second */

/* date -u -d ... +%s */
#define T_2027_03_31          (1806451200LL * S)
#define T_2024_06_15_123456   (1718454896LL * S)   /* 2024-06-15T12:34:56Z */
#define T_2024_06_15_P0200    (1718447696LL * S)   /* ...12:34:56+02:00 */
#define T_2024_06_15_M0530    (1718474696LL * S)   /* ...12:34:56-05:30 */
#define T_2024_02_29          (1709164800LL * S)
#define T_2000_02_29          (951782400LL * S)
#define T_2016_12_31_235959   (1483228799LL * S)
#define T_1900_01_01          (-2208988800LL * S)
#define T_0000_01_01          (-62167219200LL * S)
#define T_9999_12_31_235959   (253402300799LL * S)
#define T_2026_06_30          (1782777600LL * S)
#define T_2026_07_01          (1782864000LL * S)
#define T_2024_03_01          (1709251200LL * S)
#define T_2026_12_31          (1798675200LL * S)
#define T_2027_01_01          (1798761600LL * S)

static int64_t parsed(const char *s)
{
	int64_t ms = INT64_MIN;

	if (!tf_rfc3339_parse(s, &ms)) {
		print_error("\"%s\" was refused\n", s);
		fail();
	}
	return ms;
}

static void refused(const char *s)
{
	int64_t ms = 0;

	if (tf_rfc3339_parse(s, &ms)) {
		print_error("\"%s\" was accepted as %lld\n", s, (long long)ms);
		fail();
	}
}

static void parses_known_values(void **state)
{
	(void)state;
	assert_int_equal(parsed("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(parsed("2027-03-31T00:00:00Z"), 1806451200000LL);
	assert_int_equal(parsed("2027-03-31T00:00:00Z"), T_2027_03_31);
	assert_int_equal(parsed("2024-06-15T12:34:56Z"), T_2024_06_15_123456);
	assert_int_equal(parsed("1970-01-01T00:00:01Z"), 1000);
	assert_int_equal(parsed("1969-12-31T23:59:59Z"), -1000);
	assert_int_equal(parsed("1900-01-01T00:00:00Z"), T_1900_01_01);
	assert_int_equal(parsed("0000-01-01T00:00:00Z"), T_0000_01_01);
	assert_int_equal(parsed("9999-12-31T23:59:59Z"), T_9999_12_31_235959);
}

static void fractions_truncate_to_milliseconds(void **state)
{
	(void)state;
	assert_int_equal(parsed("1970-01-01T00:00:00.1Z"), 100);
	assert_int_equal(parsed("1970-01-01T00:00:00.12Z"), 120);
	assert_int_equal(parsed("1970-01-01T00:00:00.123Z"), 123);
	assert_int_equal(parsed("1970-01-01T00:00:00.1239Z"), 123);
	assert_int_equal(parsed("1970-01-01T00:00:00.999999999Z"), 999);
	assert_int_equal(parsed("1970-01-01T00:00:00.000Z"), 0);
	assert_int_equal(parsed("1970-01-01T00:00:00.0009Z"), 0);
	assert_int_equal(parsed("2024-06-15T12:34:56.789Z"), T_2024_06_15_123456 + 789);
	/* Before the epoch the fraction still counts forwards. */
	assert_int_equal(parsed("1969-12-31T23:59:59.5Z"), -500);
}

static void offsets_shift_to_utc(void **state)
{
	(void)state;
	assert_int_equal(parsed("2024-06-15T12:34:56+02:00"), T_2024_06_15_P0200);
	assert_int_equal(parsed("2024-06-15T12:34:56-05:30"), T_2024_06_15_M0530);
	assert_int_equal(parsed("2024-06-15T12:34:56+00:00"), T_2024_06_15_123456);
	assert_int_equal(parsed("2024-06-15T12:34:56-00:00"), T_2024_06_15_123456);
	assert_int_equal(parsed("2024-06-15T14:34:56+02:00"), T_2024_06_15_123456);
	assert_int_equal(parsed("2024-06-15T07:04:56-05:30"), T_2024_06_15_123456);
	assert_int_equal(parsed("1970-01-01T00:00:00+01:00"), -3600 * S);
	assert_int_equal(parsed("1970-01-01T00:00:00.250-00:01"), 60 * S + 250);
	assert_int_equal(parsed("1970-01-01T00:00:00+23:59"), -(23 * 3600 + 59 * 60) * S);
	/* The offset moves the date across a day boundary. */
	assert_int_equal(parsed("2027-03-30T22:00:00-02:00"), T_2027_03_31);
}

static void lowercase_t_and_z(void **state)
{
	(void)state;
	assert_int_equal(parsed("2024-06-15t12:34:56z"), T_2024_06_15_123456);
	assert_int_equal(parsed("2024-06-15t12:34:56Z"), T_2024_06_15_123456);
	assert_int_equal(parsed("2024-06-15T12:34:56z"), T_2024_06_15_123456);
	assert_int_equal(parsed("2024-06-15t12:34:56+02:00"), T_2024_06_15_P0200);
}

static void leap_years(void **state)
{
	(void)state;
	refused("2023-02-29T00:00:00Z");
	assert_int_equal(parsed("2024-02-29T00:00:00Z"), T_2024_02_29);
	refused("2100-02-29T00:00:00Z");
	assert_int_equal(parsed("2000-02-29T00:00:00Z"), T_2000_02_29);
	refused("1900-02-29T00:00:00Z");
	assert_int_equal(parsed("2023-02-28T00:00:00Z"), 1677542400LL * S);
	refused("2024-02-30T00:00:00Z");
}

static void field_ranges(void **state)
{
	(void)state;
	refused("2024-13-01T00:00:00Z");
	refused("2024-00-01T00:00:00Z");
	refused("2024-01-32T00:00:00Z");
	refused("2024-01-00T00:00:00Z");
	refused("2024-04-31T00:00:00Z");
	refused("2024-06-31T00:00:00Z");
	refused("2024-09-31T00:00:00Z");
	refused("2024-11-31T00:00:00Z");
	refused("2024-01-01T24:00:00Z");
	refused("2024-01-01T00:60:00Z");
	refused("2024-01-01T00:00:61Z");
	refused("2024-01-01T99:00:00Z");
	assert_int_equal(parsed("2024-12-31T23:59:59Z"), 1735689599LL * S);
	assert_int_equal(parsed("2024-01-31T00:00:00Z") + 86400 * S, parsed("2024-02-01T00:00:00Z"));
}

static void syntax_errors(void **state)
{
	(void)state;
	refused("");
	refused("2024-01-01T00:00:00");        /* no zone */
	refused("2024-01-01T00:00:00.5");      /* no zone after a fraction */
	refused("2024-01-01T00:00:00ZZ");      /* trailing garbage */
	refused("2024-01-01T00:00:00Z ");
	refused("2024-01-01T00:00:00+02:00x");
	refused("2024-01-01T00:00:00.Z");      /* empty fraction */
	refused("2024-01-01T00:00:00.+02:00");
	refused("2024-01-01T00:00:00,5Z");
	refused("2024-01-01 00:00:00Z");
	refused("2024-01-01X00:00:00Z");
	refused("2024-01-01");
	refused("2024-01-01T00:00Z");
	refused("24-01-01T00:00:00Z");
	refused("2024-1-01T00:00:00Z");
	refused("2024/01/01T00:00:00Z");
	refused(" 2024-01-01T00:00:00Z");
	refused("+2024-01-01T00:00:00Z");
	refused("20240101T000000Z");
	refused("2024-01-01T00:00:00UTC");
}

static void offset_errors(void **state)
{
	(void)state;
	refused("2024-01-01T00:00:00+00:60");  /* offset minutes 60 */
	refused("2024-01-01T00:00:00-05:60");
	refused("2024-01-01T00:00:00+24:00");
	refused("2024-01-01T00:00:00+0200");
	refused("2024-01-01T00:00:00+02");
	refused("2024-01-01T00:00:00+2:00");
	refused("2024-01-01T00:00:00+02:0");
	refused("2024-01-01T00:00:00+");
	refused("2024-01-01T00:00:00-");
}

static void leap_second_counts_as_the_last_millisecond(void **state)
{
	(void)state;
	/* 2016-12-31T23:59:60Z, a real leap second. */
	assert_int_equal(parsed("2016-12-31T23:59:60Z"), T_2016_12_31_235959 + 999);
	assert_int_equal(parsed("2016-12-31T23:59:60.5Z"), T_2016_12_31_235959 + 999);
	assert_int_equal(parsed("2016-12-31t23:59:60z"), T_2016_12_31_235959 + 999);
	assert_true(parsed("2016-12-31T23:59:60Z") < parsed("2017-01-01T00:00:00Z"));
	assert_int_equal(parsed("2017-01-01T00:00:00Z"), T_2016_12_31_235959 + 1000);
}

static void formats(int64_t ms, const char *expected)
{
	char buf[25];

	memset(buf, '?', sizeof(buf));
	tf_rfc3339_format(ms, buf);
	assert_string_equal(buf, expected);
}

static void format_known_values(void **state)
{
	(void)state;
	formats(0, "1970-01-01T00:00:00.000Z");
	formats(1, "1970-01-01T00:00:00.001Z");
	formats(T_2027_03_31, "2027-03-31T00:00:00.000Z");
	formats(T_2024_06_15_123456 + 789, "2024-06-15T12:34:56.789Z");
	formats(T_2024_02_29, "2024-02-29T00:00:00.000Z");
	formats(T_2000_02_29 + 86399 * S + 999, "2000-02-29T23:59:59.999Z");
	formats(T_9999_12_31_235959 + 999, "9999-12-31T23:59:59.999Z");
	formats(T_0000_01_01, "0000-01-01T00:00:00.000Z");
}

/* Whole seconds as policy files write them. */
static void format_short_drops_only_a_zero_fraction(void **state)
{
	char buf[25];

	(void)state;
	tf_rfc3339_format_short(T_2027_03_31, buf);
	assert_string_equal(buf, "2027-03-31T00:00:00Z");
	tf_rfc3339_format_short(T_2024_06_15_123456 + 789, buf);
	assert_string_equal(buf, "2024-06-15T12:34:56.789Z");
	tf_rfc3339_format_short(-1000, buf);
	assert_string_equal(buf, "1969-12-31T23:59:59Z");
	tf_rfc3339_format_short(T_2024_06_15_123456 + 10, buf);
	assert_string_equal(buf, "2024-06-15T12:34:56.010Z");
}

static void format_before_1970(void **state)
{
	(void)state;
	formats(-1, "1969-12-31T23:59:59.999Z");
	formats(-999, "1969-12-31T23:59:59.001Z");
	formats(-1000, "1969-12-31T23:59:59.000Z");
	formats(-1001, "1969-12-31T23:59:58.999Z");
	formats(-86400 * S, "1969-12-31T00:00:00.000Z");
	formats(-86400 * S - 1, "1969-12-30T23:59:59.999Z");
	formats(T_1900_01_01, "1900-01-01T00:00:00.000Z");
	formats(T_1900_01_01 - 1, "1899-12-31T23:59:59.999Z");
}

static void format_clamps_the_year(void **state)
{
	char buf[25];

	(void)state;
	tf_rfc3339_format(T_9999_12_31_235959 + 1000, buf);
	assert_int_equal(strlen(buf), 24);
	assert_memory_equal(buf, "9999-", 5);
	assert_int_equal(buf[23], 'Z');
	tf_rfc3339_format(INT64_MAX, buf);
	assert_int_equal(strlen(buf), 24);
	assert_memory_equal(buf, "9999-", 5);
	tf_rfc3339_format(T_0000_01_01 - 1, buf);
	assert_int_equal(strlen(buf), 24);
	assert_memory_equal(buf, "0000-", 5);
	assert_int_equal(buf[23], 'Z');
	/* INT64_MIN stands for "absent" or "unknown" times elsewhere. */
	tf_rfc3339_format(INT64_MIN, buf);
	assert_int_equal(strlen(buf), 24);
	assert_memory_equal(buf, "0000-", 5);
	assert_int_equal(buf[23], 'Z');
}

static void format_round_trips(void **state)
{
	static const int64_t values[] = {
		0, 1, -1, 999, -999, 1000, -1000, T_2027_03_31, T_2027_03_31 - 1,
		T_2024_06_15_123456 + 789, T_2024_02_29, T_2000_02_29 + 123, T_1900_01_01 - 1,
		T_0000_01_01, T_9999_12_31_235959 + 999, 1234567890123LL, -1234567890123LL,
	};
	char buf[25];

	(void)state;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		tf_rfc3339_format(values[i], buf);
		assert_int_equal(strlen(buf), 24);
		assert_int_equal(parsed(buf), values[i]);
	}
	/* And every millisecond around the epoch and a leap day. */
	for (int64_t ms = -2500; ms <= 2500; ms += 7) {
		tf_rfc3339_format(ms, buf);
		assert_int_equal(parsed(buf), ms);
		tf_rfc3339_format(T_2024_02_29 + ms, buf);
		assert_int_equal(parsed(buf), T_2024_02_29 + ms);
	}
}

static void time_arg_accepts_ms_and_rfc3339(void **state)
{
	int64_t ms = -1;

	(void)state;
	assert_true(tf_time_arg_parse("0", &ms));
	assert_int_equal(ms, 0);
	assert_true(tf_time_arg_parse("1806451200000", &ms));
	assert_int_equal(ms, T_2027_03_31);
	assert_true(tf_time_arg_parse("42", &ms));
	assert_int_equal(ms, 42);
	assert_true(tf_time_arg_parse("9223372036854775807", &ms));
	assert_int_equal(ms, INT64_MAX);
	assert_true(tf_time_arg_parse("2027-03-31T00:00:00Z", &ms));
	assert_int_equal(ms, T_2027_03_31);
	assert_true(tf_time_arg_parse("2024-06-15T12:34:56-05:30", &ms));
	assert_int_equal(ms, T_2024_06_15_M0530);
	assert_true(tf_time_arg_parse("1969-12-31T23:59:59.999Z", &ms));
	assert_int_equal(ms, -1);
}

static void time_arg_rejects_garbage(void **state)
{
	int64_t ms = 0;

	(void)state;
	assert_false(tf_time_arg_parse("", &ms));
	assert_false(tf_time_arg_parse("abc", &ms));
	assert_false(tf_time_arg_parse("12abc", &ms));
	assert_false(tf_time_arg_parse("12 ", &ms));
	assert_false(tf_time_arg_parse(" 12", &ms));
	assert_false(tf_time_arg_parse("1.5", &ms));
	assert_false(tf_time_arg_parse("0x10", &ms));
	assert_false(tf_time_arg_parse("9223372036854775808", &ms));
	assert_false(tf_time_arg_parse("99999999999999999999", &ms));
	assert_false(tf_time_arg_parse("2024-01-01", &ms));
	assert_false(tf_time_arg_parse("2023-02-29T00:00:00Z", &ms));
	assert_false(tf_time_arg_parse("2024-01-01T00:00:00", &ms));
	assert_false(tf_time_arg_parse("now", &ms));
}

/* tf_rfc3339_parse_day_or_time(): a policy file's not_before/not_after. */

static int64_t day_or_time(const char *s, enum tf_rfc3339_form form)
{
	char why[TF_RFC3339_WHY_MAX];
	int64_t ms = INT64_MIN;
	enum tf_rfc3339_form got = tf_rfc3339_parse_day_or_time(s, &ms, why);

	if (got != form) {
		print_error("\"%s\" was read as form %d, not %d (%s)\n", s, (int)got, (int)form, why);
		fail();
	}
	assert_string_equal(why, "");
	return ms;
}

/* s is refused; why must contain because ("" : why must be empty). */
static void day_or_time_refused(const char *s, const char *because)
{
	char why[TF_RFC3339_WHY_MAX];
	int64_t ms = 42;

	if (tf_rfc3339_parse_day_or_time(s, &ms, why) != TF_RFC3339_INVALID) {
		print_error("\"%s\" was accepted as %lld\n", s, (long long)ms);
		fail();
	}
	assert_int_equal(ms, 42);
	if (because[0] == '\0' ? why[0] != '\0' : strstr(why, because) == NULL) {
		print_error("\"%s\": why is \"%s\", not about \"%s\"\n", s, why, because);
		fail();
	}
}

static void a_date_alone_is_its_first_instant_in_utc(void **state)
{
	(void)state;
	assert_int_equal(day_or_time("2026-06-30", TF_RFC3339_DATE), T_2026_06_30);
	assert_int_equal(day_or_time("2026-12-31", TF_RFC3339_DATE), T_2026_12_31);
	assert_int_equal(day_or_time("1970-01-01", TF_RFC3339_DATE), 0);
	assert_int_equal(day_or_time("1969-12-31", TF_RFC3339_DATE), -86400 * S);
	assert_int_equal(day_or_time("2027-03-31", TF_RFC3339_DATE), T_2027_03_31);
	assert_int_equal(day_or_time("2026-06-30", TF_RFC3339_DATE) + TF_RFC3339_DAY_MS,
		T_2026_07_01);
	/* The last day of a year: the next day is in the next year. */
	assert_int_equal(day_or_time("2026-12-31", TF_RFC3339_DATE) + TF_RFC3339_DAY_MS,
		T_2027_01_01);
}

static void dates_alone_know_leap_days(void **state)
{
	(void)state;
	assert_int_equal(day_or_time("2024-02-29", TF_RFC3339_DATE), T_2024_02_29);
	assert_int_equal(day_or_time("2024-02-29", TF_RFC3339_DATE) + TF_RFC3339_DAY_MS,
		T_2024_03_01);
	assert_int_equal(day_or_time("2000-02-29", TF_RFC3339_DATE), T_2000_02_29);
	day_or_time_refused("2023-02-29", "2023-02 has no day 29");
	day_or_time_refused("2100-02-29", "2100-02 has no day 29");
	day_or_time_refused("1900-02-29", "1900-02 has no day 29");
	day_or_time_refused("2024-02-30", "2024-02 has no day 30");
}

static void impossible_dates_are_named(void **state)
{
	(void)state;
	day_or_time_refused("2026-02-30", "no such date: 2026-02 has no day 30");
	day_or_time_refused("2026-04-31", "2026-04 has no day 31");
	day_or_time_refused("2026-01-32", "2026-01 has no day 32");
	day_or_time_refused("2026-01-00", "2026-01 has no day 00");
	day_or_time_refused("2026-13-01", "no such date: there is no month 13");
	day_or_time_refused("2026-00-10", "there is no month 00");
	/* With a time too: the date is wrong whatever the time. */
	day_or_time_refused("2026-02-30T00:00:00Z", "2026-02 has no day 30");
}

static void date_times_keep_their_meaning(void **state)
{
	/* Every date-time tf_rfc3339_parse() takes means the same here. */
	static const char *const same[] = {
		"1970-01-01T00:00:00Z", "2024-06-15T12:34:56+02:00", "1969-12-31T23:59:59.5Z",
		"9999-12-31T23:59:59Z", "0000-01-01T00:00:00-23:59",
	};

	(void)state;
	assert_int_equal(day_or_time("2026-06-30T00:00:00Z", TF_RFC3339_DATE_TIME), T_2026_06_30);
	assert_int_equal(day_or_time("2027-03-30T22:00:00-02:00", TF_RFC3339_DATE_TIME),
		T_2027_03_31);
	assert_int_equal(day_or_time("2024-06-15t12:34:56.789z", TF_RFC3339_DATE_TIME),
		T_2024_06_15_123456 + 789);
	assert_int_equal(day_or_time("2016-12-31T23:59:60Z", TF_RFC3339_DATE_TIME),
		T_2016_12_31_235959 + 999);
	assert_int_equal(day_or_time("2024-02-29T23:59:59.999Z", TF_RFC3339_DATE_TIME),
		T_2024_03_01 - 1);
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
		assert_int_equal(day_or_time(same[i], TF_RFC3339_DATE_TIME), parsed(same[i]));
}

static void date_times_without_an_offset_are_ambiguous(void **state)
{
	(void)state;
	day_or_time_refused("2026-06-30T12:00", "without an offset is ambiguous");
	day_or_time_refused("2026-06-30T12:00:00", "without an offset is ambiguous");
	day_or_time_refused("2026-06-30T12:00:00.5", "without an offset is ambiguous");
	day_or_time_refused("2026-06-30t23:59:59", "without an offset is ambiguous");
	day_or_time_refused("2026-06-30T12", "without an offset is ambiguous");
	/* The advice uses the author's own date. */
	day_or_time_refused("2026-06-30T12:00",
		"(2026-06-30T12:00:00Z), or write the date alone (2026-06-30)");
	day_or_time_refused("2026-06-30 12:00:00Z", "put a T between the date and the time");
}

static void other_day_or_time_errors(void **state)
{
	/* Nothing like a time: no advice beyond the caller's. */
	static const char *const junk[] = {
		"", "tomorrow", "next spring", "2026", "2026-06", "2026-6-30", "26-06-30",
		"2026/06/30", "20260630", " 2026-06-30", "2026-06-30 ", "2026-06-30Z",
		"2026-06-30T", "2026-06-30T12:00Z", "2026-06-30T12:00:00+0200",
		"2026-06-30T12:00:00+24:00", "2026-06-30T12:00:00ZZ", "2026-06-30Tnoon",
		"+2026-06-30", "2026-06-30T12:00:00 UTC",
	};

	(void)state;
	day_or_time_refused("2026-06-30T24:00:00Z", "no such time of day");
	day_or_time_refused("2026-06-30T12:60:00Z", "no such time of day");
	day_or_time_refused("2026-06-30T12:00:61Z", "no such time of day");
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		day_or_time_refused(junk[i], "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_known_values),
		cmocka_unit_test(fractions_truncate_to_milliseconds),
		cmocka_unit_test(offsets_shift_to_utc),
		cmocka_unit_test(lowercase_t_and_z),
		cmocka_unit_test(leap_years),
		cmocka_unit_test(field_ranges),
		cmocka_unit_test(syntax_errors),
		cmocka_unit_test(offset_errors),
		cmocka_unit_test(leap_second_counts_as_the_last_millisecond),
		cmocka_unit_test(format_known_values),
		cmocka_unit_test(format_short_drops_only_a_zero_fraction),
		cmocka_unit_test(format_before_1970),
		cmocka_unit_test(format_clamps_the_year),
		cmocka_unit_test(format_round_trips),
		cmocka_unit_test(time_arg_accepts_ms_and_rfc3339),
		cmocka_unit_test(time_arg_rejects_garbage),
		cmocka_unit_test(a_date_alone_is_its_first_instant_in_utc),
		cmocka_unit_test(dates_alone_know_leap_days),
		cmocka_unit_test(impossible_dates_are_named),
		cmocka_unit_test(date_times_keep_their_meaning),
		cmocka_unit_test(date_times_without_an_offset_are_ambiguous),
		cmocka_unit_test(other_day_or_time_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
