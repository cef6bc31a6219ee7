#include "broker/util/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_SIZE (64 * 1024)

struct tf_arena_chunk {
	struct tf_arena_chunk *next;
	size_t size;
	alignas(max_align_t) unsigned char data[];
};

void *tf_arena_alloc(struct tf_arena *a, size_t size)
{
	const size_t align = alignof(max_align_t);
	size_t need = (size + align - 1) & ~(align - 1);
	struct tf_arena_chunk *c = a->chunks;

	if (need < size)
		return NULL;
	if (c == NULL || c->size - a->used < need) {
		/* Large requests get a chunk of their own, so they do not waste
		 * the rest of the current one. */
		size_t chunk = need > CHUNK_SIZE / 4 ? need : CHUNK_SIZE;

		if (chunk > SIZE_MAX - sizeof(*c))
			return NULL;
		c = malloc(sizeof(*c) + chunk);
		if (c == NULL)
			return NULL;
		c->size = chunk;
		if (need > CHUNK_SIZE / 4 && a->chunks != NULL) {
			/* Keep filling the current chunk afterwards. */
			c->next = a->chunks->next;
			a->chunks->next = c;
			a->total += need;
			return c->data;
		}
		c->next = a->chunks;
		a->chunks = c;
		a->used = 0;
	}
	a->used += need;
	a->total += need;
	return c->data + a->used - need;
}

char *tf_arena_strndup(struct tf_arena *a, const char *s, size_t len)
{
	char *copy = tf_arena_alloc(a, len + 1);

	if (copy == NULL)
		return NULL;
	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

char *tf_arena_strdup(struct tf_arena *a, const char *s)
{
	return tf_arena_strndup(a, s, strlen(s));
}

void tf_arena_free(struct tf_arena *a)
{
	struct tf_arena_chunk *c = a->chunks;

	while (c != NULL) {
		struct tf_arena_chunk *next = c->next;

		free(c);
		c = next;
	}
	memset(a, 0, sizeof(*a));
}
