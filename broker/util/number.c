#include "broker/util/number.h"

#include <errno.h>
#include <stdlib.h>

bool tf_parse_long(const char *text, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}
