/* Questions to the trace store (operations-v1, `tfctl trace`): what
 * happened to a message, who received a policy's data, which messages
 * went over a topic, whether the record is intact, and everything as
 * lines. Each answer is JSON written to out; each runs in one read
 * snapshot, so it sees the store as it was at one moment while the broker
 * goes on writing. */
#ifndef TF_TRACE_QUERY_H
#define TF_TRACE_QUERY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "broker/util/error.h"
#include "broker/stamp/provenance.h"
#include "broker/trace/trace_store.h"

/* The message object of message id (32 hex digits), with its deliveries
 * and withholdings, and in "forwarded" the peer brokers it was sent on to
 * (federation-v1): caller owns; cJSON_Delete. NULL with TF_ERR_INVALID
 * when there is no such message (or the id is malformed). */
cJSON *tf_query_message(struct tf_trace_store *s, const char *id, struct tf_err *err);

/* One line per client that received data of policy (an id, without
 * version) in [since_ms, until_ms]: {"org", "client", "messages",
 * "first_ts", "last_ts"}, ordered by client. *count: how many. */
int tf_query_recipients(struct tf_trace_store *s, const char *policy, int64_t since_ms,
		int64_t until_ms, FILE *out, size_t *count, struct tf_err *err);

/* One line per message on topic (and with payload sha256, when not
 * NULL) received at or after since_ms: message objects without
 * deliveries, oldest first. topic may be an MQTT filter (+, #), matched
 * as a subscription would; an invalid filter is TF_ERR_INVALID. A filter
 * reads every event from since_ms on (the topic index holds whole
 * topics); a topic reads its index entries from since_ms on, with or
 * without a sha256. */
int tf_query_find(struct tf_trace_store *s, const char *topic, const char *sha256,
		int64_t since_ms, FILE *out, size_t *count, struct tf_err *err);

/* The versions accepted per policy id (policy/rollback.h) the store
 * keeps, added to r. Errors: TF_ERR_NOMEM. */
struct tf_rollback;
int tf_query_rollback(struct tf_trace_store *s, struct tf_rollback *r);

/* One line per version of the policy policy_id (an id, without version)
 * the broker accepted, oldest first, as long as the trace keeps it
 * (trace_retention_days): {"policy", "version", "org", "ts" (when it came
 * into force), "seq", "file", "sha256", "kid", "sig"} (kid and sig empty:
 * unsigned). *count 0: none kept. Errors: TF_ERR_INVALID (not an id),
 * TF_ERR_NOMEM, TF_ERR_IO (out). */
int tf_query_policy_history(struct tf_trace_store *s, const char *policy_id, FILE *out,
		size_t *count, struct tf_err *err);

struct tf_verify_result {
	uint64_t events;        /* events checked */
	uint64_t checkpoints;   /* checkpoints checked */
	bool ok;
	uint64_t first_bad_seq; /* when not ok */
	char reason[160];       /* when not ok */
};

/* Recomputes the chain from the anchor and checks every checkpoint's
 * hash and signature against ring (NULL: the public keys the broker
 * recorded in the store). Returns TF_OK (the answer is in r) or an error
 * reading the store. */
int tf_query_verify(struct tf_trace_store *s, const struct tf_keyring *ring,
		struct tf_verify_result *r, struct tf_err *err);

/* Writes r as the object tfctl trace verify prints. */
void tf_query_print_verify(const struct tf_verify_result *r, FILE *out);

/* Every event from the first at or after since_ms, one line each:
 * {"seq", "ts", "kind", its fields as strings, "hash"}, the first line
 * also with "prev" (the chain hash before it). */
int tf_query_export(struct tf_trace_store *s, int64_t since_ms, FILE *out, size_t *count,
		struct tf_err *err);

/* The stored checkpoints that bear on what tf_query_export(since_ms)
 * prints, one line each, oldest first: {"checkpoint": {"broker", "kid",
 * "seq", "hash", "ts", "sig"}}, the checkpoint in its published form
 * (checkpoint.h), for every checkpoint whose seq is the one before the
 * first event exported or later. With the events, all an auditor needs
 * to check them without the store (tfctl trace join). */
int tf_query_export_checkpoints(struct tf_trace_store *s, int64_t since_ms, FILE *out,
		size_t *count, struct tf_err *err);

/* When the broker received the latest message on topic with this payload
 * filed by content (its message event's time; the engine files each
 * message it may ask about: trace_store.h), or INT64_MIN when the store
 * has none: how a message that outlived the broker's memory (a retained
 * copy after a restart) gets its age back. label (NULL: not wanted) receives the
 * policy label it was recorded under ("" when ungoverned; cut to cap). */
int64_t tf_query_received_at(struct tf_trace_store *s, const char *topic, const void *payload,
		uint32_t payloadlen, char *label, size_t cap);

/* The impact of an alert (tfctl report impact): the alert, and what its
 * flow (the policy and publisher it names; every policy when it names
 * none) sent in the window_ms before it: how many messages, on which
 * topics, and which recipients received them (deliveries made within the
 * window, per client); and how many of the flow's messages were held from
 * the window's start on, those after the alert included. Caller owns;
 * NULL with TF_ERR_INVALID when there is no such alert. The window
 * (tfctl's --window, the control API's "window") is in seconds: */
#define TF_IMPACT_WINDOW_DEFAULT_S 3600
#define TF_IMPACT_WINDOW_MAX_S (366L * 86400)
cJSON *tf_query_impact(struct tf_trace_store *s, const char *alert_id, int64_t window_ms,
		struct tf_err *err);

#endif
