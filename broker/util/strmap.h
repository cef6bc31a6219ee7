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

/* The key of the owner's entry i, or NULL when the entry is to go. */
typedef const char *(*tf_strmap_kept_key)(void *ctx, uint32_t i, size_t *len);

/* A new map of the owner's entries 0..n-1 that kept_key keeps, each
 * mapped to its position among them (0, 1, ...): how an owner drops
 * entries from its arrays, which it then compacts in the same order (a
 * map never forgets a key). NULL when out of memory or two kept keys are
 * equal: the owner then changes nothing. */
struct tf_strmap *tf_strmap_renumbered(uint32_t n, tf_strmap_kept_key kept_key, void *ctx);

/* Bytes the map holds, for the benchmarks' memory accounting. */
size_t tf_strmap_bytes(const struct tf_strmap *m);

#endif
