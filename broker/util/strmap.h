/* A hash map from strings to 32-bit values (indexes into the owner's
 * arrays): usernames to clients, org ids to organizations, topic levels to
 * trie nodes. Open addressing; keys are copied into the map's own arena. */
#ifndef TF_STRMAP_H
#define TF_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tf_strmap;

/* NULL when out of memory. Free with tf_strmap_free(). */
struct tf_strmap *tf_strmap_new(void);
void tf_strmap_free(struct tf_strmap *m);

/* Adds key[0..len) -> value unless the key is present. Returns 1 when
 * added, 0 when the key was already there (*existing then holds its value;
 * existing may be NULL), -1 when out of memory (the map is unchanged). */
int tf_strmap_put(struct tf_strmap *m, const char *key, size_t len, uint32_t value,
		uint32_t *existing);

/* Looks key[0..len) up. */
bool tf_strmap_get(const struct tf_strmap *m, const char *key, size_t len, uint32_t *value);

size_t tf_strmap_count(const struct tf_strmap *m);

/* Bytes the map holds, for the benchmarks' memory accounting. */
size_t tf_strmap_bytes(const struct tf_strmap *m);

#endif
