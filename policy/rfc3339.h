/* RFC 3339 date-times (policy files' not_before/not_after, tfctl's --at
 * and --since) to and from milliseconds since the Unix epoch; and the
 * dates alone that policy files may give instead. */
#ifndef TF_POLICY_RFC3339_H
#define TF_POLICY_RFC3339_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" (T and Z in
 * either case), checking every field's range, including the days of each
 * month in leap years. A fraction finer than milliseconds is truncated; a
 * leap second (:60) counts as :59.999. Returns false on anything else. */
bool tf_rfc3339_parse(const char *s, int64_t *ms);

/* What tf_rfc3339_parse_day_or_time() found. */
enum tf_rfc3339_form {
	TF_RFC3339_INVALID,
	TF_RFC3339_DATE_TIME,  /* a date-time, as tf_rfc3339_parse() takes it */
	TF_RFC3339_DATE,       /* a date alone, "YYYY-MM-DD": a whole day in UTC */
};

#define TF_RFC3339_DAY_MS   (86400LL * 1000)
#define TF_RFC3339_WHY_MAX  192

/* Parses a time of a policy file: a date-time as tf_rfc3339_parse()
 * takes it, or a date alone ("YYYY-MM-DD", RFC 3339's full-date), whose
 * *ms is the first instant of that day in UTC (where a day given as the
 * end of a window ends is the caller's choice). A date-time without an
 * offset is refused: it means another moment in every time zone. On
 * TF_RFC3339_INVALID, why holds what is wrong, in words for the author of
 * the file ("no such date: 2026-02 has no day 30"), or "" when s is
 * nothing like a time; *ms is then unchanged. */
enum tf_rfc3339_form tf_rfc3339_parse_day_or_time(const char *s, int64_t *ms,
		char why[TF_RFC3339_WHY_MAX]);

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 characters and a NUL) into buf,
 * which must hold 25 bytes. Years outside 0000..9999 are clamped. */
void tf_rfc3339_format(int64_t ms, char buf[25]);

/* The same, without the fraction when ms is a whole second:
 * "2027-06-30T00:00:00Z", as policy files write their times. */
void tf_rfc3339_format_short(int64_t ms, char buf[25]);

/* A time given on a command line: RFC 3339, or decimal milliseconds since
 * the epoch. */
bool tf_time_arg_parse(const char *s, int64_t *ms);

#endif
