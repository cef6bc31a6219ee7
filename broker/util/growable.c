#include "broker/util/growable.h"

#include <stdlib.h>

bool tf_grow_array(void **array, uint32_t *cap, uint32_t count, size_t size, uint32_t first,
		uint32_t max)
{
	uint32_t bigger;
	void *grown;

	if (count >= max || count > *cap || size == 0 || first == 0)
		return false;
	if (count < *cap)
		return true;
	/* Doubled without overflowing: past max / 2, twice is past max. */
	if (*cap == 0)
		bigger = first < max ? first : max;
	else
		bigger = *cap > max / 2 ? max : *cap * 2;
	if (bigger > SIZE_MAX / size)
		return false;
	grown = realloc(*array, (size_t)bigger * size);
	if (grown == NULL)
		return false;
	*array = grown;
	*cap = bigger;
	return true;
}
