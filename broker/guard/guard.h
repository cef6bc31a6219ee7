/* The anomaly guard: detectors of trouble in data circulation beyond the
 * policies' own limits and schemas. Pure bookkeeping over what the engine
 * tells it; the engine turns findings into alerts and the policy's
 * on_violation action.
 *
 * - rate anomaly: a flow (policy × publisher) sending in the current
 *   second more than rate_factor times its learned rate (an exponentially
 *   weighted moving average over the past seconds in which it sent), and
 *   at least rate_min messages, once it has rate_warmup_s such seconds; a
 *   flow back after a silence is judged by its rate over the time it was
 *   away while it catches up (its backlog, see roll() in guard.c);
 * - size anomaly: a payload more than size_factor times larger (or
 *   smaller) than the flow's moving average size, once the flow has sent
 *   TF_GUARD_SIZE_WARMUP messages;
 * - replay: a payload the same publisher sent on the same flow within
 *   replay_window_ms (among its last TF_GUARD_REPLAY_KEPT messages);
 * - denied burst: a client refused denied_burst times within
 *   denied_window_ms is blocked for block_ms;
 * - leak: data under `forwarding: deny` published again by a client it
 *   was delivered to outside the owner's org (whoever merely publishes
 *   equal data of its own is no suspect), recognised by the SHA-256 of
 *   its canonical form (JSON with sorted keys and no spaces, so that
 *   neither whitespace nor key order hides it; other payloads as they
 *   are), within leak_window_ms.
 *
 * A finding does not teach the baseline: an attack does not become
 * normal by going on. */
#ifndef TF_GUARD_H
#define TF_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "broker/stamp/provenance.h"

#define TF_GUARD_SIZE_WARMUP 50
#define TF_GUARD_REPLAY_KEPT 32
#define TF_GUARD_MAX_FLOWS 100000
#define TF_GUARD_MAX_CLIENTS 100000
#define TF_GUARD_MAX_PRIVATE 100000
/* Recipients kept per piece of private data, and over all of it; beyond
 * them every client outside the owner org is a suspect of that data. */
#define TF_GUARD_MAX_RECIPIENTS 1024
#define TF_GUARD_MAX_ALL_RECIPIENTS (1024u * 1024)

struct tf_guard_config {
	uint32_t rate_factor;       /* 0: no rate detector */
	uint32_t rate_min;          /* messages in a second, at least */
	uint32_t rate_warmup_s;     /* seconds of history before it judges */
	uint32_t size_factor;       /* 0: no size detector */
	uint32_t replay_window_ms;  /* 0: no replay detector */
	uint32_t denied_burst;      /* 0: no blocking */
	uint32_t denied_window_ms;
	uint32_t block_ms;
	uint32_t leak_window_ms;    /* 0: no leak detector */
	/* Recipients kept over all watched data; 0: TF_GUARD_MAX_ALL_RECIPIENTS
	 * (the tests set fewer). */
	uint32_t recipients_max;
};

struct tf_guard;

/* NULL when out of memory. */
struct tf_guard *tf_guard_new(const struct tf_guard_config *cfg);
void tf_guard_free(struct tf_guard *g);

/* A message of flow, of size bytes and payload hash (tf_guard_hash), at
 * now_ms. Returns the finding's kind ("rate-anomaly", "size-anomaly",
 * "replay") with a detail in detail, or NULL. */
const char *tf_guard_message(struct tf_guard *g, const char *flow, uint32_t size,
		uint64_t payload_hash, int64_t now_ms, char *detail, size_t cap);

/* A 64-bit hash of a payload, for replays; 0 when the replay detector is
 * off (so that it costs nothing then). */
uint64_t tf_guard_hash(const struct tf_guard *g, const void *payload, uint32_t len);

/* A refusal of client at now_ms. Returns true when it completes a burst:
 * the client is blocked from now on, for block_ms. */
bool tf_guard_denied(struct tf_guard *g, const char *client, int64_t now_ms);

/* Whether any client has been refused since the guard began (only then
 * can one be blocked): lets the hot path skip making a key. */
bool tf_guard_counts_refusals(const struct tf_guard *g);

/* Whether client is blocked at now_ms. */
bool tf_guard_blocked(const struct tf_guard *g, const char *client, int64_t now_ms);

/* The canonical SHA-256 of a payload (json: the payload parsed, or NULL
 * when it is not JSON). Returns false when out of memory. */
bool tf_guard_canonical_sha(const cJSON *json, const void *payload, uint32_t len,
		unsigned char out[32]);

/* Data that its recipients outside the owner org must not publish again:
 * a message id, the policy's label, the owner org and who published it. */
struct tf_guard_private {
	char id[TF_MSGID_LEN + 1];
	char policy[160];
	char owner[130];
	char publisher[130];
	int64_t seen_ms;
};

/* Remembers delivered private data by canonical hash. */
void tf_guard_note_private(struct tf_guard *g, const unsigned char canon[32], const char *id,
		const char *policy, const char *owner, const char *publisher, int64_t now_ms);

/* The private data with this canonical hash seen within leak_window_ms,
 * or NULL. Cheap when nothing private was ever noted. */
const struct tf_guard_private *tf_guard_find_private(const struct tf_guard *g,
		const unsigned char canon[32], int64_t now_ms);

/* A delivery of the private data of message id (noted with
 * tf_guard_note_private) to client, outside the owner org. Returns false
 * when the guard does not know that id (then the caller names the data by
 * its canonical hash: tf_guard_note_recipient_of). */
bool tf_guard_note_recipient(struct tf_guard *g, const char *id, const char *client,
		int64_t now_ms);
void tf_guard_note_recipient_of(struct tf_guard *g, const unsigned char canon[32],
		const char *client, int64_t now_ms);

/* The private data with this canonical hash seen within leak_window_ms
 * that was delivered to client (or whose recipients outgrew the bounds),
 * or NULL: client publishing it is a leak. */
const struct tf_guard_private *tf_guard_find_leak(const struct tf_guard *g,
		const unsigned char canon[32], const char *client, int64_t now_ms);

/* Whether any private data is remembered (so that publishers' payloads
 * need hashing at all). */
bool tf_guard_watching_leaks(const struct tf_guard *g);

#endif
