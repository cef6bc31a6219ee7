/* The one way an array grows: doubling when full, from a first capacity,
 * up to a bound on its count. Capacities and counts are uint32_t, the
 * width of the indexes that strmap values and trace records hold. */
#ifndef TF_GROWABLE_H
#define TF_GROWABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Makes room for element count in *array, which has room for *cap
 * elements of size bytes (count of them in use): when count == *cap, the
 * array grows to twice *cap (to first when empty), but to no more than max
 * elements. True when array[count] may be written. False, with *array and
 * *cap as they were, when count has reached max, when the new size in
 * bytes would not fit a size_t, or when memory is short; also when size or
 * first is 0 or count > *cap (mistakes of the caller). Pass UINT32_MAX as
 * max for an array bounded by nothing else. *array is NULL or from
 * malloc(); the caller owns it (free with free()). */
bool tf_grow_array(void **array, uint32_t *cap, uint32_t count, size_t size, uint32_t first,
		uint32_t max);

/* tf_grow_array for a typed array (array is the address of the pointer):
 * the element size comes from its type. */
#define tf_grow(array, cap, count, first, max) \
	tf_grow_array((void **)(array), (cap), (count), sizeof(**(array)), (first), (max))

#endif
