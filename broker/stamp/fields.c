#include "broker/stamp/fields.h"

#include <stdint.h>
#include <string.h>

size_t tf_put_decimal(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (size_t i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

size_t tf_fields_encode(const char *header, const char *const *names,
		const char *const *values, size_t n, char *buf, size_t cap)
{
	size_t need = strlen(header), at;
	char digits[20];

	for (size_t i = 0; i < n; i++) {
		size_t vl = strlen(values[i]);

		need += strlen(names[i]) + tf_put_decimal(digits, vl) + vl + 3;
	}
	if (need > cap)
		return need;
	at = strlen(header);
	memcpy(buf, header, at);
	for (size_t i = 0; i < n; i++) {
		size_t nl = strlen(names[i]), vl = strlen(values[i]);

		memcpy(buf + at, names[i], nl);
		at += nl;
		buf[at++] = ':';
		at += tf_put_decimal(buf + at, vl);
		buf[at++] = ':';
		memcpy(buf + at, values[i], vl);
		at += vl;
		buf[at++] = '\n';
	}
	return at;
}
