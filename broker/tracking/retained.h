/* The retained copies the broker let through or made (governed originals
 * and view copies): under which policy version each was made, and when a
 * retention removes it. policy-v1: "retained copies are removed once [the
 * retention] has passed". mosquitto 2.0.11's plugin API cannot set an
 * expiry on a message the broker received, so the broker clears the topic
 * itself, with an empty retained message, once the time has come; and after a
 * reload it clears the copies made under a policy version no longer in
 * force, which the current rules would not produce. */
#ifndef TF_RETAINED_H
#define TF_RETAINED_H

#include <stdbool.h>
#include <stdint.h>

struct tf_retained;

/* NULL when out of memory. */
struct tf_retained *tf_retained_new(void);
void tf_retained_free(struct tf_retained *r);

/* Topics remembered at most. */
#define TF_RETAINED_MAX (4u * 1024 * 1024)

/* No removal due: a copy under a policy without a retention. */
#define TF_RETAINED_KEEP INT64_MAX

/* A retained message on topic, made under the policy label ("id@version";
 * copied), must be removed at expires_ms (TF_RETAINED_KEEP: never by
 * time); it replaces whatever the topic held. Returns 0, or -1 when full
 * or out of memory: the caller then cannot promise removal and says so. */
int tf_retained_note(struct tf_retained *r, const char *topic, const char *label,
		int64_t expires_ms);

/* The topic's retained copy was replaced by one without a retention, or
 * cleared: nothing to remove any more. */
void tf_retained_forget(struct tf_retained *r, const char *topic);

/* Calls clear(ctx, topic) for every topic whose time has come, and
 * forgets it. */
void tf_retained_expire(struct tf_retained *r, int64_t now_ms,
		void (*clear)(void *ctx, const char *topic), void *ctx);

/* Calls clear(ctx, topic) for every copy that stale(ctx, topic, label)
 * says the rules in force would not produce, and forgets it. Returns how
 * many. Visits every copy: for a reload, not per message. */
uint32_t tf_retained_clear_stale(struct tf_retained *r,
		bool (*stale)(void *ctx, const char *topic, const char *label),
		void (*clear)(void *ctx, const char *topic), void *ctx);

/* The policy label the topic's retained copy was made under, when the
 * broker made or let it through since it started (borrowed until the
 * next change of the table); NULL otherwise. */
const char *tf_retained_label(const struct tf_retained *r, const char *topic);

/* Copies remembered. */
uint32_t tf_retained_count(const struct tf_retained *r);

#endif
