#include "broker/stamp/fields.h"

#include <stdint.h>
#include <string.h>

size_t tf_put_decimal(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	/* Most numbers here are field lengths: one or two digits. */
	if (v < 10) {
		p[0] = (char)('0' + v);
		return 1;
	}
	if (v < 100) {
		p[0] = (char)('0' + v / 10);
		p[1] = (char)('0' + v % 10);
		return 2;
	}
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (size_t i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

/* Appends len bytes at *at while they fit in cap; counts them anyway. */
static void append(char *buf, size_t cap, size_t *at, const void *bytes, size_t len)
{
	if (len > 0 && *at + len <= cap)
		memcpy(buf + *at, bytes, len);
	*at += len;
}

size_t tf_fields_encode(const char *header, const char *const *names,
		const char *const *values, size_t n, char *buf, size_t cap)
{
	size_t at = 0;
	char digits[20];

	/* One pass: what does not fit is only counted. */
	append(buf, cap, &at, header, strlen(header));
	for (size_t i = 0; i < n; i++) {
		size_t vl = strlen(values[i]);

		append(buf, cap, &at, names[i], strlen(names[i]));
		append(buf, cap, &at, ":", 1);
		append(buf, cap, &at, digits, tf_put_decimal(digits, vl));
		append(buf, cap, &at, ":", 1);
		append(buf, cap, &at, values[i], vl);
		append(buf, cap, &at, "\n", 1);
	}
	return at;
}
