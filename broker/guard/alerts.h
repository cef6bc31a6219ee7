/* Alerts (operations-v1): what the broker tells operators and data owners
 * when something goes wrong in a flow. The engine raises them; this
 * module keeps the recent ones (for the control API's listAlerts), folds
 * repeats together, and writes their JSON.
 *
 * Every violation raises an alert (policy-v1), but a publisher that
 * breaks a limit ten thousand times a second must not bury everything
 * else: alerts of one kind about one flow (policy and publisher) are
 * raised at most once per TF_ALERT_FOLD_MS; the next one says how many
 * were folded into it, or, when none comes, one alert for the folded ones
 * is raised once the window ends (tf_alerts_flush, from the engine's
 * tick). The trace still records every message. */
#ifndef TF_ALERTS_H
#define TF_ALERTS_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "broker/stamp/provenance.h"

#define TF_ALERT_FOLD_MS 1000
#define TF_ALERTS_KEPT 1000
/* Flows whose folded alerts wait for tf_alerts_flush, at most; beyond,
 * a flow's folded alerts are only mentioned by its next alert. */
#define TF_ALERTS_PENDING_MAX 65536

struct tf_alert {
	char id[TF_MSGID_LEN + 1];
	int64_t ts_ms;
	const char *kind;     /* "schema-violation", ... (static) */
	const char *policy;   /* "id@version", or "" when no policy is involved */
	const char *org;
	const char *client;
	const char *detail;
	const char *action;   /* "drop", "quarantine", "reroute", "alert", "none" */
};

struct tf_alerts;

/* NULL when out of memory. */
struct tf_alerts *tf_alerts_new(void);
void tf_alerts_free(struct tf_alerts *a);

/* Whether alert (its kind about its policy and client, at its ts_ms)
 * should be raised; false when it is folded into the last one, and then
 * its org, detail and action are kept for the alert that reports the
 * folded ones. *folded: how many were folded since the last one raised
 * (to mention in the detail). alert->kind must be static (kept). */
bool tf_alerts_admit(struct tf_alerts *a, const struct tf_alert *alert, uint32_t *folded);

/* The alerts folded in a window that ended without a new alert of their
 * flow to mention them: visit gets, for each, the last one folded (its
 * strings borrowed, valid until visit returns; ts_ms is now_ms, id empty)
 * and how many were folded, and is to raise one alert for them. The
 * window starts again at now_ms. At most budget flows with folded alerts
 * are looked at per call (call it from a tick; the others wait for a
 * later one). */
typedef void (*tf_alert_folded_visit)(void *ctx, const struct tf_alert *last, uint32_t folded);
void tf_alerts_flush(struct tf_alerts *a, int64_t now_ms, uint32_t budget,
		tf_alert_folded_visit visit, void *ctx);

/* How many flows' folds are kept (bounded: idle ones go when there are
 * many, unless they wait for tf_alerts_flush, of which there are at most
 * TF_ALERTS_PENDING_MAX). */
uint32_t tf_alerts_folds(const struct tf_alerts *a);

/* Keeps a copy of a raised alert; the oldest goes beyond TF_ALERTS_KEPT.
 * Returns false when out of memory (the alert is then not listed). */
bool tf_alerts_keep(struct tf_alerts *a, const struct tf_alert *alert);

/* The JSON object of an alert (caller owns), or NULL when out of memory. */
cJSON *tf_alert_json(const struct tf_alert *alert);

/* Visits the kept alerts raised at or after since_ms and kept at position
 * from or later, oldest first. An alert's position is the number of alerts
 * kept before it: it does not change as older ones go, so a long list can
 * be read in pages, each going on from a position (the control API's
 * cursor). */
typedef void (*tf_alert_visit)(void *ctx, const struct tf_alert *alert, uint64_t position);
void tf_alerts_each(const struct tf_alerts *a, int64_t since_ms, uint64_t from,
		tf_alert_visit visit, void *ctx);

/* The topic an alert is published on: $trustflow/alerts/<policy id>, or
 * $trustflow/alerts/- when no policy is involved. */
void tf_alert_topic(const struct tf_alert *alert, char *out, size_t cap);

#endif
