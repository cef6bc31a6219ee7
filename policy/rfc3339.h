/* RFC 3339 date-times (policy files' not_before/not_after, tfctl's --at
 * and --since) to and from milliseconds since the Unix epoch. */
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

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 characters and a NUL) into buf,
 * which must hold 25 bytes. Years outside 0000..9999 are clamped. */
void tf_rfc3339_format(int64_t ms, char buf[25]);

/* A time given on a command line: RFC 3339, or decimal milliseconds since
 * the epoch. */
bool tf_time_arg_parse(const char *s, int64_t *ms);

#endif
