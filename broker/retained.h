/* Retained copies under a retention: which topic holds one, and when it
 * must go. policy-v1: "retained copies are removed once [the retention]
 * has passed". mosquitto 2.0.11 cannot be told an expiry for a message it
 * received (DESIGN.md), so the broker clears the topic itself, with an
 * empty retained message, once the time has come. */
#ifndef TF_RETAINED_H
#define TF_RETAINED_H

#include <stdint.h>

struct tf_retained;

/* NULL when out of memory. */
struct tf_retained *tf_retained_new(void);
void tf_retained_free(struct tf_retained *r);

/* A retained message on topic must be removed at expires_ms (it replaces
 * whatever the topic held). Returns 0, or -1 when out of memory: the
 * caller then cannot promise removal and says so. */
int tf_retained_note(struct tf_retained *r, const char *topic, int64_t expires_ms);

/* The topic's retained copy was replaced by one without a retention, or
 * cleared: nothing to remove any more. */
void tf_retained_forget(struct tf_retained *r, const char *topic);

/* Calls clear(ctx, topic) for every topic whose time has come, and
 * forgets it. */
void tf_retained_expire(struct tf_retained *r, int64_t now_ms,
		void (*clear)(void *ctx, const char *topic), void *ctx);

/* Topics waiting for removal. */
uint32_t tf_retained_count(const struct tf_retained *r);

#endif
