/* Quarantine (policy-v1 on_violation "quarantine"): which flows are held.
 *
 * A flow is `<policy id>/<publisher>`. Once a message of a flow is
 * quarantined, every later message of the flow is held too, until an
 * authorized operator releases or discards the flow. The messages
 * themselves are in the trace store (broker/guard/held.h), on disk before the
 * publisher is acknowledged; this index is rebuilt from it at start.
 *
 * Released messages are published again by the broker: their deliveries
 * are decided with the time the broker first received them (their
 * stamp's ts) as their receive time, so that a retention counts from
 * then, not from the release. This module remembers that time for a
 * while (TF_RELEASED_KEEP_MS after the release) by topic and payload,
 * since mosquitto's stored copy of a message the plugin publishes is not
 * known to it. */
#ifndef TF_QUARANTINE_H
#define TF_QUARANTINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TF_RELEASED_KEEP_MS 60000
#define TF_RELEASED_MAX 4096

struct tf_quarantine;

struct tf_held_flow {
	char *flow;          /* policy id "/" publisher */
	char *policy;        /* the label of its first held message */
	char *client;
	uint64_t held;
	int64_t since_ms;    /* receive time of its first held message */
	uint64_t position;   /* flows quarantined before it since start: stays as
	                      * others end, so a list can go on from it */
};

/* NULL when out of memory. */
struct tf_quarantine *tf_quarantine_new(void);
void tf_quarantine_free(struct tf_quarantine *q);

/* The name of the flow of policy (a label or id) and publisher into out. */
void tf_quarantine_flow_name(const char *policy, const char *client, char *out, size_t cap);

/* The flow, or NULL when it is not quarantined. */
const struct tf_held_flow *tf_quarantine_find(const struct tf_quarantine *q, const char *flow);

/* Counts one more held message of flow (quarantining it if it was not).
 * Returns false when out of memory. */
bool tf_quarantine_add(struct tf_quarantine *q, const char *flow, const char *policy,
		const char *client, int64_t received_ms);

/* A release kept some of flow's messages back (broker/engine/engine.h): the flow
 * stays quarantined with held of them, the first received at since_ms. */
void tf_quarantine_keep(struct tf_quarantine *q, const char *flow, uint64_t held,
		int64_t since_ms);

/* The flow is released or discarded: no longer quarantined. */
void tf_quarantine_remove(struct tf_quarantine *q, const char *flow);

/* The quarantined flows, in the order they were quarantined (of
 * increasing position). */
uint32_t tf_quarantine_count(const struct tf_quarantine *q);
const struct tf_held_flow *tf_quarantine_at(const struct tf_quarantine *q, uint32_t i);

/* Remembers that a message the broker publishes itself (topic, payload:
 * released or rerouted) goes out at released_ms and was received at
 * received_ms; the lookup answers received_ms (INT64_MIN: not known). */
void tf_quarantine_note_release(struct tf_quarantine *q, const char *topic, const void *payload,
		uint32_t payloadlen, int64_t released_ms, int64_t received_ms);
int64_t tf_quarantine_release_time(const struct tf_quarantine *q, const char *topic,
		const void *payload, uint32_t payloadlen, int64_t now_ms);

#endif
