/* Per-publisher message rates (policy limits.max_messages_per_second): a
 * token bucket per (policy, client) that holds up to one second's worth
 * of messages and refills continuously. */
#ifndef TF_RATELIMIT_H
#define TF_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct tf_ratelimit;

/* NULL when out of memory. */
struct tf_ratelimit *tf_ratelimit_new(void);
void tf_ratelimit_free(struct tf_ratelimit *r);

/* Takes one message from the bucket of (policy, client username) with the
 * given rate. Returns true when the message is within the limit. Out of memory
 * counts as over the limit: the broker fails closed. */
bool tf_ratelimit_take(struct tf_ratelimit *r, uint32_t policy, const char *client,
		uint32_t per_second, int64_t now_ms);

/* Forgets every bucket (after a reload, policy indexes change). */
void tf_ratelimit_clear(struct tf_ratelimit *r);

#endif
