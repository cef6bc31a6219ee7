#include "policy/rfc3339.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

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

bool tf_rfc3339_parse(const char *s, int64_t *ms)
{
	unsigned year, month, day, hour, minute, second, oh, om, frac_ms = 0;
	int64_t offset_s = 0;

	if (!digits(&s, 4, &year) || !expect(&s, '-', '-') || !digits(&s, 2, &month)
			|| !expect(&s, '-', '-') || !digits(&s, 2, &day) || !expect(&s, 'T', 't')
			|| !digits(&s, 2, &hour) || !expect(&s, ':', ':') || !digits(&s, 2, &minute)
			|| !expect(&s, ':', ':') || !digits(&s, 2, &second))
		return false;
	if (*s == '.') {
		int n = 0;

		s++;
		while (*s >= '0' && *s <= '9') {
			if (n < 3)
				frac_ms = frac_ms * 10 + (unsigned)(*s - '0');
			n++;
			s++;
		}
		if (n == 0)
			return false;
		for (; n < 3; n++)
			frac_ms *= 10;
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		int sign = *s == '-' ? -1 : 1;

		s++;
		if (!digits(&s, 2, &oh) || !expect(&s, ':', ':') || !digits(&s, 2, &om)
				|| oh > 23 || om > 59)
			return false;
		offset_s = sign * (int64_t)(oh * 3600 + om * 60);
	} else {
		return false;
	}
	if (*s != '\0' || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month)
			|| hour > 23 || minute > 59 || second > 60)
		return false;
	if (second == 60) {
		second = 59;
		frac_ms = 999;
	}
	*ms = ((days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second)
		- offset_s) * 1000 + frac_ms;
	return true;
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
