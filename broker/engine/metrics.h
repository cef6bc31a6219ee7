/* The broker's counters, as it publishes them on $trustflow/metrics and
 * $trustflow/metrics/<policy id> (docs/control-api.md, "Metrics"): what
 * happened to messages and deliveries, broker-wide and per policy, the
 * alerts by kind, and, per policy, who received its data in the last
 * minute and hour.
 *
 * Counting is a few array increments and, for a delivery under a policy,
 * two hash lookups: it runs on the broker's thread for every message and
 * delivery. The memory is bounded: a policy is counted from its first
 * traffic on, with TF_METRICS_MAX_ROWS recipients and as many
 * organizations at most, idle ones dropped after an hour. */
#ifndef TF_METRICS_H
#define TF_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Recipients (and organizations) followed per policy; deliveries to
 * others are counted under the client (or org) "". */
#define TF_METRICS_MAX_ROWS 1024
/* Clients and organizations listed per window, most deliveries first. */
#define TF_METRICS_LISTED 100

/* What happens to messages and deliveries (the members of "messages"). */
enum tf_metric {
	TF_METRIC_STAMPED,
	TF_METRIC_DELIVERED,
	TF_METRIC_WITHHELD,
	TF_METRIC_FORWARDED,
	TF_METRIC_QUARANTINED,
	TF_METRIC_REROUTED,
	TF_METRIC_RELEASED,
	TF_METRIC_DISCARDED,
	TF_METRIC_COUNT
};

/* Reasons a message is refused (the members of "refused"), besides the
 * violation kinds of alerts (limit-exceeded, schema-violation, and the
 * guard's findings when the policy drops on them). */
#define TF_REFUSED_DENIED "denied"
#define TF_REFUSED_BLOCKED "blocked"
#define TF_REFUSED_LEAK "leak"
#define TF_REFUSED_RELAY "relay-refused"
#define TF_REFUSED_UNRECORDED "unrecorded"
#define TF_REFUSED_UNSTAMPED "unstamped"
#define TF_REFUSED_UNHELD "unheld"

struct tf_metrics;

/* now: when counting starts (ms since the epoch). NULL when out of memory. */
struct tf_metrics *tf_metrics_new(int64_t now);
void tf_metrics_free(struct tf_metrics *m);

/* n messages or deliveries of what, under the policy with id policy
 * (NULL: none); counted broker-wide and for the policy. A stamped message
 * under a policy also counts in its windows. */
void tf_metrics_add(struct tf_metrics *m, const char *policy, enum tf_metric what, uint64_t n,
		int64_t now);

/* A delivery made under policy (its id) to client of org ("" when it has
 * none): counted as delivered and in the policy's windows. */
void tf_metrics_delivered(struct tf_metrics *m, const char *policy, const char *org,
		const char *client, int64_t now);

/* A message refused (reason: one of TF_REFUSED_* or a violation kind),
 * and an alert raised (its kind), under policy (its id; NULL: none). */
void tf_metrics_refused(struct tf_metrics *m, const char *policy, const char *reason,
		int64_t now);
void tf_metrics_alert(struct tf_metrics *m, const char *policy, const char *kind, int64_t now);

/* The broker-wide counters into o: "since", "messages", "alerts". */
bool tf_metrics_broker_json(const struct tf_metrics *m, cJSON *o);

/* The counters of the policy with id policy into o ("since", "messages",
 * "alerts", "last_minute", "last_hour"); false when it is not counted
 * (or out of memory). Drops recipients idle for an hour. */
bool tf_metrics_policy_json(struct tf_metrics *m, const char *policy, int64_t now, cJSON *o);

/* Whether the policy with id policy is counted (has seen traffic since
 * the start, or since it was last forgotten). */
bool tf_metrics_counted(const struct tf_metrics *m, const char *policy);

/* Rounds of copies: a round goes through the policies counted and calls
 * due(ctx, id) for each whose copy is due (counted since its last copy,
 * tf_metrics_policy_json, or whose last copy had counts in a window:
 * time changes them), at most max per call; tf_metrics_round returns
 * true when the round is over. due may forget the policy. */
void tf_metrics_round_start(struct tf_metrics *m);
bool tf_metrics_round(struct tf_metrics *m, uint32_t max, void (*due)(void *ctx, const char *id),
		void *ctx);

/* Forgets the policy with id policy (it left the set): counting starts
 * again, from zero, should it come back. */
void tf_metrics_forget(struct tf_metrics *m, const char *policy);

/* Forgets each policy counted that in_force says is no longer in force,
 * after gone(ctx, id). */
void tf_metrics_forget_policies(struct tf_metrics *m, bool (*in_force)(void *ctx, const char *id),
		void (*gone)(void *ctx, const char *id), void *ctx);

#endif
