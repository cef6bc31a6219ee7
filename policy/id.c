#include "policy/id.h"

#include <stddef.h>

static bool is_alnum_ascii(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool tf_id_is_valid(const char *s)
{
	size_t len;

	if (!is_alnum_ascii(s[0]))
		return false;
	for (len = 1; s[len] != '\0'; len++) {
		char c = s[len];

		if (len >= TF_ID_MAX_LEN)
			return false;
		if (!is_alnum_ascii(c) && c != '.' && c != '_' && c != ':' && c != '@' && c != '-')
			return false;
	}
	return true;
}
