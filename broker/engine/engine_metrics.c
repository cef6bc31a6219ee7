/* The metrics the broker publishes (docs/control-api.md, "Metrics"): the
 * counters (broker/engine/metrics.h) with the trace writer's and the
 * signer's, retained on $trustflow/metrics and, per policy in force, on
 * $trustflow/metrics/<policy id> (broker/engine/engine_internal.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/engine/engine_internal.h"
#include "broker/engine/metrics.h"
#include "broker/trace/trace_store.h"
#include "broker/trace/trace_writer.h"
#include "policy/id.h"

void engine_count_alert(struct engine_ctx *c, const char *label, const char *kind)
{
	char id[TF_ID_MAX_LEN + 1];

	if (label == NULL || label[0] == '\0' || strcmp(label, "-") == 0) {
		tf_metrics_alert(c->metrics, NULL, kind, engine_now_ms(c));
		return;
	}
	tf_trace_policy_id(label, id, sizeof(id));
	tf_metrics_alert(c->metrics, id, kind, engine_now_ms(c));
}

/* The members every copy starts with. */
static cJSON *metrics_head(const struct engine_ctx *c, int64_t now, uint32_t interval_s)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL || cJSON_AddStringToObject(o, "broker", c->broker_id) == NULL
			|| cJSON_AddNumberToObject(o, "ts", (double)now) == NULL
			|| cJSON_AddNumberToObject(o, "interval_s", interval_s) == NULL) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static bool add_trace(struct engine_ctx *c, cJSON *o)
{
	struct tf_trace_writer_stats st;
	cJSON *trace, *commit;

	if (c->trace == NULL)
		return true;
	tf_trace_writer_stats(c->trace, &st);
	return (trace = cJSON_AddObjectToObject(o, "trace")) != NULL
		&& cJSON_AddNumberToObject(trace, "queue", (double)st.waiting) != NULL
		&& cJSON_AddNumberToObject(trace, "events", (double)st.events) != NULL
		&& cJSON_AddNumberToObject(trace, "commits", (double)st.commits) != NULL
		&& (commit = cJSON_AddObjectToObject(trace, "commit_ms")) != NULL
		&& cJSON_AddNumberToObject(commit, "last", st.last_commit_ms) != NULL
		&& cJSON_AddNumberToObject(commit, "max", st.max_commit_ms) != NULL
		&& cJSON_AddBoolToObject(trace, "failing", st.failing) != NULL;
}

static bool add_signer(const struct engine_ctx *c, cJSON *o)
{
	struct tf_signer_stats st;
	cJSON *signer;

	tf_signer_stats(c->signer, &st);
	if (!st.pool)
		return true;
	return (signer = cJSON_AddObjectToObject(o, "signer")) != NULL
		&& cJSON_AddNumberToObject(signer, "pool_size", st.size) != NULL
		&& cJSON_AddNumberToObject(signer, "pool_level", st.level) != NULL
		&& cJSON_AddNumberToObject(signer, "pooled", (double)st.pool_signatures) != NULL
		&& cJSON_AddNumberToObject(signer, "fallbacks", (double)st.fallbacks) != NULL;
}

/* Publishes o on topic (retained), and frees it. */
static void publish(struct engine_ctx *c, const char *topic, cJSON *o, bool ok)
{
	char *json = ok ? cJSON_PrintUnformatted(o) : NULL;

	cJSON_Delete(o);
	if (json == NULL) {
		engine_log(c, TF_LOG_ERR, "trustflow: out of memory publishing %s", topic);
		return;
	}
	c->hooks.publish_metrics(c->hooks.ctx, topic, json);
	free(json);
}

void engine_publish_broker_metrics(struct engine_ctx *c, int64_t now, uint32_t interval_s)
{
	cJSON *o;

	if (c->hooks.publish_metrics == NULL || (o = metrics_head(c, now, interval_s)) == NULL)
		return;
	publish(c, ENGINE_METRICS_TOPIC, o, tf_metrics_broker_json(c->metrics, o)
		&& add_trace(c, o) && add_signer(c, o));
}

static void policy_metrics_topic(const char *id, char topic[ENGINE_METRICS_TOPIC_MAX])
{
	snprintf(topic, ENGINE_METRICS_TOPIC_MAX, "%s/%s", ENGINE_METRICS_TOPIC, id);
}

struct round {
	struct engine_ctx *c;
	int64_t now;
	uint32_t interval_s;
};

/* The copy of a policy due in this round; a policy gone from the set
 * takes its copy along and is forgotten. */
static void publish_due_copy(void *ctx, const char *id)
{
	const struct round *r = ctx;
	const struct tf_policy *p = tf_policy_set_find(r->c->set, id);
	char topic[ENGINE_METRICS_TOPIC_MAX];
	cJSON *o;

	policy_metrics_topic(id, topic);
	if (p == NULL) {
		r->c->hooks.clear_retained(r->c->hooks.ctx, topic);
		tf_metrics_forget(r->c->metrics, id);
		return;
	}
	if ((o = metrics_head(r->c, r->now, r->interval_s)) == NULL)
		return;
	publish(r->c, topic, o, cJSON_AddStringToObject(o, "policy", p->id) != NULL
		&& cJSON_AddNumberToObject(o, "version", (double)p->version) != NULL
		&& cJSON_AddStringToObject(o, "owner", p->owner_id) != NULL
		&& tf_metrics_policy_json(r->c->metrics, p->id, r->now, o));
}

struct gone_ctx {
	struct engine_ctx *c;
	const struct tf_policy_set *fresh;
};

static bool in_fresh(void *ctx, const char *id)
{
	const struct gone_ctx *g = ctx;

	return tf_policy_set_find(g->fresh, id) != NULL;
}

static void clear_copy(void *ctx, const char *id)
{
	const struct gone_ctx *g = ctx;
	char topic[ENGINE_METRICS_TOPIC_MAX];

	policy_metrics_topic(id, topic);
	g->c->hooks.clear_retained(g->c->hooks.ctx, topic);
}

void engine_forget_gone_metrics(struct engine_ctx *c, const struct tf_policy_set *fresh)
{
	struct gone_ctx g = { c, fresh };

	tf_metrics_forget_policies(c->metrics, in_fresh, clear_copy, &g);
}

bool engine_publish_policy_metrics(struct engine_ctx *c, int64_t now, uint32_t interval_s)
{
	struct round r = { c, now, interval_s };

	if (c->hooks.publish_metrics == NULL)
		return true;
	return tf_metrics_round(c->metrics, ENGINE_METRICS_PER_TICK, publish_due_copy, &r);
}

bool engine_clear_stale_metrics(struct engine_ctx *c, uint32_t *from)
{
	char topic[ENGINE_METRICS_TOPIC_MAX];
	uint32_t n = 0;

	if (c->hooks.publish_metrics == NULL)
		return true;
	for (; *from < c->set->n_policies && n < ENGINE_METRICS_PER_TICK; (*from)++, n++) {
		const struct tf_policy *p = &c->set->policies[*from];

		if (tf_metrics_counted(c->metrics, p->id))
			continue;
		policy_metrics_topic(p->id, topic);
		c->hooks.clear_retained(c->hooks.ctx, topic);
	}
	return *from >= c->set->n_policies;
}
