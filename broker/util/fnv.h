/* FNV-1a, 64-bit: the hash of trustflow's in-memory keys (map slots,
 * QoS 2 resends, replays, released messages). Short keys dominate and it
 * needs no tables; it is not for anything an attacker must not collide. */
#ifndef TF_FNV_H
#define TF_FNV_H

#include <stddef.h>
#include <stdint.h>

#define TF_FNV_OFFSET 0xcbf29ce484222325ull
#define TF_FNV_PRIME 0x100000001b3ull

/* h (TF_FNV_OFFSET to start) carried on over len bytes of data. */
static inline uint64_t tf_fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * TF_FNV_PRIME;
	return h;
}

/* h carried on over the separator byte 0xff, which no UTF-8 text holds:
 * it keeps ("ab", "c") and ("a", "bc") apart. */
static inline uint64_t tf_fnv1a_separator(uint64_t h)
{
	return (h ^ 0xff) * TF_FNV_PRIME;
}

#endif
