/* A bump allocator for data that lives exactly as long as its owner (a
 * loaded policy set): many small strings and arrays, freed all at once. */
#ifndef TF_ARENA_H
#define TF_ARENA_H

#include <stddef.h>

struct tf_arena {
	struct tf_arena_chunk *chunks;  /* newest first */
	size_t used;                    /* bytes used in the newest chunk */
	size_t total;                   /* bytes handed out, for accounting */
};

/* An empty arena needs no set-up: struct tf_arena a = { 0 }. */

/* size bytes aligned for any type; NULL when out of memory. The memory is
 * owned by the arena and valid until tf_arena_free(). */
void *tf_arena_alloc(struct tf_arena *a, size_t size);

/* A NUL-terminated copy of s[0..len). NULL when out of memory. */
char *tf_arena_strndup(struct tf_arena *a, const char *s, size_t len);
char *tf_arena_strdup(struct tf_arena *a, const char *s);

/* Frees everything the arena handed out; it may then be used again. */
void tf_arena_free(struct tf_arena *a);

#endif
