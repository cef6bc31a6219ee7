#include "policy/rfc3339.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Reads exactly n digits at *s and advances it. */
static bool digits(const char **s, int n, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*s)[i];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (unsigned)(c - '0');
	}
	*s += n;
	*out = v;
	return true;
}

static bool expect(const char **s, char a, char b)
{
	if (**s != a && **s != b)
		return false;
	(*s)++;
	return true;
}

/* The date at *s, "YYYY-MM-DD", without its range checks. */
static bool date_part(const char **s, unsigned *year, unsigned *month, unsigned *day)
{
	return digits(s, 4, year) && expect(s, '-', '-') && digits(s, 2, month)
		&& expect(s, '-', '-') && digits(s, 2, day);
}

static bool date_exists(unsigned year, unsigned month, unsigned day)
{
	return month >= 1 && month <= 12 && day >= 1 && day <= days_in_month(year, month);
}

/* The time of day, fraction and offset at s (after the date and its 'T')
 * into hms (hours, minutes, seconds), the fraction's ms and the offset's
 * seconds; false unless that is all of s. Range checks on hms are the
 * caller's. */
static bool time_part(const char *s, unsigned hms[3], unsigned *frac_ms, int64_t *offset_s)
{
	unsigned oh, om;

	*frac_ms = 0;
	*offset_s = 0;
	if (!digits(&s, 2, &hms[0]) || !expect(&s, ':', ':') || !digits(&s, 2, &hms[1])
			|| !expect(&s, ':', ':') || !digits(&s, 2, &hms[2]))
		return false;
	if (*s == '.') {
		int n = 0;

		s++;
		while (*s >= '0' && *s <= '9') {
			if (n < 3)
				*frac_ms = *frac_ms * 10 + (unsigned)(*s - '0');
			n++;
			s++;
		}
		if (n == 0)
			return false;
		for (; n < 3; n++)
			*frac_ms *= 10;
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		int sign = *s == '-' ? -1 : 1;

		s++;
		if (!digits(&s, 2, &oh) || !expect(&s, ':', ':') || !digits(&s, 2, &om)
				|| oh > 23 || om > 59)
			return false;
		*offset_s = sign * (int64_t)(oh * 3600 + om * 60);
	} else {
		return false;
	}
	return *s == '\0';
}

static bool time_exists(const unsigned hms[3])
{
	return hms[0] <= 23 && hms[1] <= 59 && hms[2] <= 60;
}

/* ms since the epoch of a checked date and time; a leap second (:60)
 * counts as :59.999. */
static int64_t to_ms(unsigned year, unsigned month, unsigned day, const unsigned hms[3],
		unsigned frac_ms, int64_t offset_s)
{
	unsigned second = hms[2];

	if (second == 60) {
		second = 59;
		frac_ms = 999;
	}
	return ((days_from_civil(year, month, day) * 86400 + hms[0] * 3600 + hms[1] * 60 + second)
		- offset_s) * 1000 + frac_ms;
}

bool tf_rfc3339_parse(const char *s, int64_t *ms)
{
	unsigned year, month, day, hms[3], frac_ms;
	int64_t offset_s;

	if (!date_part(&s, &year, &month, &day) || !expect(&s, 'T', 't')
			|| !time_part(s, hms, &frac_ms, &offset_s)
			|| !date_exists(year, month, day) || !time_exists(hms))
		return false;
	*ms = to_ms(year, month, day, hms, frac_ms, offset_s);
	return true;
}

/* Whether s is nothing but digits, ':' and '.': a time of day that lacks
 * its offset (and maybe its seconds). */
static bool clock_only(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if ((*s < '0' || *s > '9') && *s != ':' && *s != '.')
			return false;
	return true;
}

static void say_no_such_date(unsigned year, unsigned month, unsigned day,
		char why[TF_RFC3339_WHY_MAX])
{
	/* The modulos tell the compiler each field's width. */
	if (month < 1 || month > 12)
		snprintf(why, TF_RFC3339_WHY_MAX, "no such date: there is no month %02u", month % 100u);
	else
		snprintf(why, TF_RFC3339_WHY_MAX, "no such date: %04u-%02u has no day %02u",
			year % 10000u, month % 100u, day % 100u);
}

enum tf_rfc3339_form tf_rfc3339_parse_day_or_time(const char *s, int64_t *ms,
		char why[TF_RFC3339_WHY_MAX])
{
	static const unsigned midnight[3] = { 0, 0, 0 };
	unsigned year, month, day, hms[3], frac_ms;
	const char *rest = s;
	int64_t offset_s;

	why[0] = '\0';
	if (!date_part(&rest, &year, &month, &day))
		return TF_RFC3339_INVALID;
	if (*rest != '\0' && *rest != 'T' && *rest != 't') {
		if (rest[0] == ' ' && rest[1] >= '0' && rest[1] <= '9')
			snprintf(why, TF_RFC3339_WHY_MAX, "put a T between the date and the time "
				"(%.10sT12:00:00Z)", s);
		return TF_RFC3339_INVALID;
	}
	if (!date_exists(year, month, day)) {
		say_no_such_date(year, month, day, why);
		return TF_RFC3339_INVALID;
	}
	if (*rest == '\0') {
		*ms = to_ms(year, month, day, midnight, 0, 0);
		return TF_RFC3339_DATE;
	}
	rest++;
	/* "2026-06-30T12:00" names a different moment in every time zone. */
	if (clock_only(rest)) {
		snprintf(why, TF_RFC3339_WHY_MAX, "a date-time without an offset is ambiguous: end it "
			"with Z for UTC or an offset such as +02:00 (%.10sT12:00:00Z), or write the "
			"date alone (%.10s)", s, s);
		return TF_RFC3339_INVALID;
	}
	if (!time_part(rest, hms, &frac_ms, &offset_s))
		return TF_RFC3339_INVALID;
	if (!time_exists(hms)) {
		snprintf(why, TF_RFC3339_WHY_MAX, "no such time of day (hours 00 to 23, minutes and "
			"seconds 00 to 59)");
		return TF_RFC3339_INVALID;
	}
	*ms = to_ms(year, month, day, hms, frac_ms, offset_s);
	return TF_RFC3339_DATE_TIME;
}

/* Division rounding towards minus infinity (b > 0), so that times before
 * 1970 format correctly; without overflow for INT64_MIN. */
static int64_t floor_div(int64_t a, int64_t b)
{
	return a >= 0 ? a / b : (a + 1) / b - 1;
}

/* The matching remainder, in [0, b). */
static int64_t floor_mod(int64_t a, int64_t b)
{
	int64_t r = a % b;

	return r < 0 ? r + b : r;
}

void tf_rfc3339_format(int64_t ms, char buf[25])
{
	int64_t secs = floor_div(ms, 1000);
	int64_t days = floor_div(secs, 86400);
	int64_t sod = floor_mod(secs, 86400);
	int64_t y;
	unsigned m, d;

	civil_from_days(days, &y, &m, &d);
	if (y < 0)
		y = 0;
	if (y > 9999)
		y = 9999;
	/* The modulos are no-ops that tell the compiler each field's width. */
	snprintf(buf, 25, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", (unsigned)y % 10000u, m % 13u,
		d % 32u, (unsigned)(sod / 3600) % 24u, (unsigned)(sod / 60 % 60) % 60u,
		(unsigned)(sod % 60) % 60u, (unsigned)floor_mod(ms, 1000) % 1000u);
}

void tf_rfc3339_format_short(int64_t ms, char buf[25])
{
	tf_rfc3339_format(ms, buf);
	if (strcmp(buf + 19, ".000Z") == 0)
		strcpy(buf + 19, "Z");
}

bool tf_time_arg_parse(const char *s, int64_t *ms)
{
	char *end;
	long long v;

	if (*s >= '0' && *s <= '9') {
		errno = 0;
		v = strtoll(s, &end, 10);
		if (errno == 0 && *end == '\0') {
			*ms = v;
			return true;
		}
	}
	return tf_rfc3339_parse(s, ms);
}
