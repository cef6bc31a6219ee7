/* The view copies the broker made lately, by content: under which policy
 * version each was made.
 *
 * A view copy is a message of the broker's own (mosquitto_broker_publish),
 * so the engine never sees the stored message it becomes; a delivery of
 * it, maybe long after (an offline queue), shows only its topic and
 * payload. After a reload that narrows a view, a copy made under the old
 * version must not be handed out: the engine looks its version up here,
 * and in the trace store when it is not here any more.
 *
 * A direct-mapped cache of TF_COPYTRACK_SLOTS entries (16 bytes each): a
 * newer copy may push an older one out, which is then "not known". Keys
 * and labels are 64-bit FNV-1a hashes: a collision needs a client to
 * choose the payload of a copy the broker makes, and would at worst hand
 * out a copy of an older version of the same view. */
#ifndef TF_COPYTRACK_H
#define TF_COPYTRACK_H

#include <stdbool.h>
#include <stdint.h>

#define TF_COPYTRACK_SLOTS (256u * 1024)

struct tf_copytrack;

/* NULL when out of memory. */
struct tf_copytrack *tf_copytrack_new(void);
void tf_copytrack_free(struct tf_copytrack *t);

/* Remembers that the copy (topic, payload) was made under label. */
void tf_copytrack_put(struct tf_copytrack *t, const char *topic, const void *payload,
		uint32_t payloadlen, const char *label);

/* Whether the copy (topic, payload) is known, and then in *same whether
 * it was made under label. */
bool tf_copytrack_find(const struct tf_copytrack *t, const char *topic, const void *payload,
		uint32_t payloadlen, const char *label, bool *same);

#endif
