/* When the broker received each message that mosquitto may still deliver,
 * for policies with a retention, and its message id, for the trace.
 *
 * mosquitto decides deliveries (ACL READ) long after it received a
 * message: retained copies, offline queues. The check gets the stored
 * message's topic and payload pointers but no time, so the MESSAGE step
 * records the time here under the stored topic's address, which is the
 * same for every delivery of that message. Addresses are reused once
 * mosquitto frees a message, so an entry also holds the payload length and
 * its first bytes, and is forgotten once its retention has passed (after
 * which the message can no longer be delivered anyway). A lookup that
 * finds nothing answers "unknown", which a policy with a retention
 * treats as too old: the broker fails closed. */
#ifndef TF_MSGTRACK_H
#define TF_MSGTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TF_MSGTRACK_MAX_ENTRIES (4u * 1024 * 1024)

struct tf_msgtrack;

/* NULL when out of memory. */
struct tf_msgtrack *tf_msgtrack_new(void);
void tf_msgtrack_free(struct tf_msgtrack *t);

/* Records a message. key is the stored message's topic pointer; payload
 * and payloadlen are the stored payload. forget_ms: when the entry may go.
 * id: the message id's 16 bytes, or NULL. Returns 0, or -1 when the table
 * is full or out of memory (the message's age is then unknown, and it is
 * withheld). */
int tf_msgtrack_put(struct tf_msgtrack *t, const void *key, const void *payload,
		uint32_t payloadlen, int64_t received_ms, int64_t forget_ms,
		const unsigned char *id);

struct tf_msgtrack_hit {
	int64_t received_ms;
	bool has_id;
	unsigned char id[16];
};

/* Whether the table holds TF_MSGTRACK_MAX_ENTRIES entries, so that a new
 * one cannot be kept. */
bool tf_msgtrack_full(const struct tf_msgtrack *t);

/* What was recorded for this message: true and *hit, or false. */
bool tf_msgtrack_find(const struct tf_msgtrack *t, const void *key, const void *payload,
		uint32_t payloadlen, struct tf_msgtrack_hit *hit);

/* Forgets entries whose time has passed, visiting at most budget slots
 * from where the previous sweep stopped, so that it can run on every tick
 * without a pause. */
void tf_msgtrack_sweep(struct tf_msgtrack *t, int64_t now_ms, uint32_t budget);

uint32_t tf_msgtrack_count(const struct tf_msgtrack *t);

/* The memory the table holds. It grows as entries come (to twice
 * TF_MSGTRACK_MAX_ENTRIES slots of 56 bytes at most) and halves, once a
 * sweep has gone round, while it is less than an eighth full. */
size_t tf_msgtrack_bytes(const struct tf_msgtrack *t);

#endif
