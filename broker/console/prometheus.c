#include "config.h"

#include "broker/console/prometheus.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The text grows here; out of memory sticks, and the caller sees NULL. */
struct out {
	char *buf;
	size_t len, cap;
	bool failed;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->failed)
		return;
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;
		char *grown;

		while (cap < o->len + n + 1)
			cap *= 2;
		grown = realloc(o->buf, cap);
		if (grown == NULL) {
			o->failed = true;
			return;
		}
		o->buf = grown;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* A label value: \ " and newline escaped, as the format asks. */
static void put_label_value(struct out *o, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\')
			puts_(o, "\\\\");
		else if (*v == '"')
			puts_(o, "\\\"");
		else if (*v == '\n')
			puts_(o, "\\n");
		else
			put(o, v, 1);
	}
}

/* A sample's value: integers (every counter) as integers, the rest in
 * the shortest form that reads back the same. */
static void put_value(struct out *o, double v)
{
	char text[64];

	if (v == floor(v) && fabs(v) < 9007199254740992.0) {
		snprintf(text, sizeof(text), "%.0f", v);
	} else {
		snprintf(text, sizeof(text), "%.15g", v);
		if (strtod(text, NULL) != v)
			snprintf(text, sizeof(text), "%.17g", v);
	}
	puts_(o, text);
}

/* Up to five labels of a sample; names NULL where unused. */
struct labels {
	const char *name[5];
	const char *value[5];
};

/* One family: its name, type and help, and the samples it takes from
 * each metric object. */
struct family {
	const char *name, *type, *help;
	bool per_policy;     /* from the policies' objects; else the broker's */
	/* Adds the family's samples of object m (labels lb hold the policy's,
	 * when per_policy) through sample(). */
	void (*samples)(const struct family *f, const cJSON *m, struct labels *lb,
			void (*sample)(void *ctx, const struct labels *lb, double v), void *ctx);
	const char *path[3];   /* the members leading to the number, for simple ones */
	double divisor;        /* the number is divided by it (ms -> s: 1000); 0: 1 */
};

static const cJSON *member(const cJSON *o, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(o, name);
}

/* The number at f->path in m, scaled. */
static void simple(const struct family *f, const cJSON *m, struct labels *lb,
		void (*sample)(void *, const struct labels *, double), void *ctx)
{
	const cJSON *v = m;

	for (int i = 0; i < 3 && f->path[i] != NULL; i++)
		v = member(v, f->path[i]);
	if (cJSON_IsBool(v))
		sample(ctx, lb, cJSON_IsTrue(v) ? 1 : 0);
	else if (cJSON_IsNumber(v))
		sample(ctx, lb, v->valuedouble / (f->divisor != 0 ? f->divisor : 1));
}

/* Appends label name=value to lb (in the first free place). */
static void add_label(struct labels *lb, const char *name, const char *value)
{
	for (int i = 0; i < 5; i++) {
		if (lb->name[i] == NULL) {
			lb->name[i] = name;
			lb->value[i] = value;
			return;
		}
	}
}

static void drop_label(struct labels *lb, const char *name)
{
	for (int i = 0; i < 5; i++)
		if (lb->name[i] != NULL && strcmp(lb->name[i], name) == 0)
			lb->name[i] = lb->value[i] = NULL;
}

/* One sample per member of the object at f->path[0].f->path[1], labelled
 * f->path[2] = the member's name (reasons, kinds). */
static void keyed(const struct family *f, const cJSON *m, struct labels *lb,
		void (*sample)(void *, const struct labels *, double), void *ctx)
{
	const cJSON *o = member(m, f->path[0]), *v;

	if (f->path[1] != NULL)
		o = member(o, f->path[1]);
	if (!cJSON_IsObject(o))
		return;
	cJSON_ArrayForEach(v, o) {
		if (!cJSON_IsNumber(v) || v->string == NULL)
			continue;
		add_label(lb, f->path[2], v->string);
		sample(ctx, lb, v->valuedouble);
		drop_label(lb, f->path[2]);
	}
}

static const char *const windows[2][2] = { { "last_minute", "1m" }, { "last_hour", "1h" } };

/* A window's number (path[0]: "messages" or "deliveries"), per window. */
static void window_total(const struct family *f, const cJSON *m, struct labels *lb,
		void (*sample)(void *, const struct labels *, double), void *ctx)
{
	for (int w = 0; w < 2; w++) {
		const cJSON *v = member(member(m, windows[w][0]), f->path[0]);

		if (!cJSON_IsNumber(v))
			continue;
		add_label(lb, "window", windows[w][1]);
		sample(ctx, lb, v->valuedouble);
		drop_label(lb, "window");
	}
}

/* The deliveries of each org (path[0] "orgs") or client ("clients") in
 * each window. */
static void window_recipients(const struct family *f, const cJSON *m, struct labels *lb,
		void (*sample)(void *, const struct labels *, double), void *ctx)
{
	bool clients = strcmp(f->path[0], "clients") == 0;

	for (int w = 0; w < 2; w++) {
		const cJSON *r;

		cJSON_ArrayForEach(r, member(member(m, windows[w][0]), f->path[0])) {
			const cJSON *org = member(r, "org"), *client = member(r, "client");
			const cJSON *n = member(r, "deliveries");

			if (!cJSON_IsString(org) || !cJSON_IsNumber(n)
					|| (clients && !cJSON_IsString(client)))
				continue;
			add_label(lb, "window", windows[w][1]);
			if (clients)
				add_label(lb, "client", client->valuestring);
			add_label(lb, "org", org->valuestring);
			sample(ctx, lb, n->valuedouble);
			drop_label(lb, "org");
			drop_label(lb, "client");
			drop_label(lb, "window");
		}
	}
}

#define COUNTER(n, h, a, b) { n, "counter", h, false, simple, { a, b, NULL }, 0 }
#define GAUGE(n, h, a, b, s) { n, "gauge", h, false, simple, { a, b, NULL }, s }
#define P_COUNTER(n, h, a, b) { n, "counter", h, true, simple, { a, b, NULL }, 0 }
#define P_GAUGE(n, h, a, b, s) { n, "gauge", h, true, simple, { a, b, NULL }, s }

/* Every family, in the order printed. docs/console.md lists them. */
static const struct family families[] = {
	GAUGE("trustflow_start_time_seconds",
		"When the broker's counters started (its start), seconds since the epoch.",
		"since", NULL, 1000),
	GAUGE("trustflow_metrics_timestamp_seconds",
		"When the broker published these numbers, seconds since the epoch.",
		"ts", NULL, 1000),
	COUNTER("trustflow_messages_stamped_total",
		"Messages the broker stamped, view copies included.", "messages", "stamped"),
	COUNTER("trustflow_deliveries_total",
		"Deliveries made, one per subscriber and message.", "messages", "delivered"),
	COUNTER("trustflow_deliveries_withheld_total",
		"Deliveries withheld by the policies, one per subscriber and message.",
		"messages", "withheld"),
	COUNTER("trustflow_messages_forwarded_total", "Copies sent to peer brokers.",
		"messages", "forwarded"),
	COUNTER("trustflow_messages_quarantined_total", "Messages held in quarantine.",
		"messages", "quarantined"),
	COUNTER("trustflow_messages_rerouted_total", "Messages rerouted to another topic.",
		"messages", "rerouted"),
	COUNTER("trustflow_messages_released_total",
		"Held messages an operator released.", "messages", "released"),
	COUNTER("trustflow_messages_discarded_total",
		"Held messages an operator discarded or that expired.", "messages", "discarded"),
	{ "trustflow_messages_refused_total", "counter", "Messages the broker refused, by reason.",
		false, keyed, { "messages", "refused", "reason" }, 0 },
	{ "trustflow_alerts_total", "counter", "Alerts raised, by kind.",
		false, keyed, { "alerts", NULL, "kind" }, 0 },
	GAUGE("trustflow_trace_queue", "Trace events waiting for the disk.",
		"trace", "queue", 0),
	COUNTER("trustflow_trace_events_total", "Trace events written.", "trace", "events"),
	COUNTER("trustflow_trace_commits_total", "Trace store transactions committed.",
		"trace", "commits"),
	{ "trustflow_trace_commit_last_seconds", "gauge",
		"How long the trace store's last commit took.", false, simple,
		{ "trace", "commit_ms", "last" }, 1000 },
	{ "trustflow_trace_commit_max_seconds", "gauge",
		"The longest trace store commit since the previous metrics.", false, simple,
		{ "trace", "commit_ms", "max" }, 1000 },
	GAUGE("trustflow_trace_failing", "1 while the trace store is failing, else 0.",
		"trace", "failing", 0),
	GAUGE("trustflow_signer_pool_size", "Nonces the signing pool holds when full.",
		"signer", "pool_size", 0),
	GAUGE("trustflow_signer_pool_level", "Nonces the signing pool holds now.",
		"signer", "pool_level", 0),
	COUNTER("trustflow_signer_pooled_total", "Signatures made from the signing pool.",
		"signer", "pooled"),
	COUNTER("trustflow_signer_fallbacks_total",
		"Signatures made the ordinary way because the pool was empty.",
		"signer", "fallbacks"),

	P_GAUGE("trustflow_policy_version", "The version of the policy in force.",
		"version", NULL, 0),
	P_GAUGE("trustflow_policy_start_time_seconds",
		"When the policy's counters started, seconds since the epoch.", "since", NULL, 1000),
	P_COUNTER("trustflow_policy_messages_stamped_total",
		"Messages stamped under the policy.", "messages", "stamped"),
	P_COUNTER("trustflow_policy_deliveries_total",
		"Deliveries made of the policy's messages.", "messages", "delivered"),
	P_COUNTER("trustflow_policy_deliveries_withheld_total",
		"Deliveries of the policy's messages withheld.", "messages", "withheld"),
	P_COUNTER("trustflow_policy_messages_forwarded_total",
		"Copies of the policy's messages sent to peer brokers.", "messages", "forwarded"),
	P_COUNTER("trustflow_policy_messages_quarantined_total",
		"The policy's messages held in quarantine.", "messages", "quarantined"),
	P_COUNTER("trustflow_policy_messages_rerouted_total",
		"The policy's messages rerouted.", "messages", "rerouted"),
	P_COUNTER("trustflow_policy_messages_released_total",
		"The policy's held messages released.", "messages", "released"),
	P_COUNTER("trustflow_policy_messages_discarded_total",
		"The policy's held messages discarded.", "messages", "discarded"),
	{ "trustflow_policy_messages_refused_total", "counter",
		"The policy's messages refused, by reason.", true, keyed,
		{ "messages", "refused", "reason" }, 0 },
	{ "trustflow_policy_alerts_total", "counter", "Alerts about the policy, by kind.",
		true, keyed, { "alerts", NULL, "kind" }, 0 },
	{ "trustflow_policy_window_messages", "gauge",
		"Messages stamped under the policy in the last minute (window=\"1m\") or hour "
		"(\"1h\").", true, window_total, { "messages", NULL, NULL }, 0 },
	{ "trustflow_policy_window_deliveries", "gauge",
		"Deliveries of the policy's messages in the last minute or hour.", true,
		window_total, { "deliveries", NULL, NULL }, 0 },
	{ "trustflow_policy_window_org_deliveries", "gauge",
		"Deliveries of the policy's messages to each organization in the last minute or "
		"hour.", true, window_recipients, { "orgs", NULL, NULL }, 0 },
	{ "trustflow_policy_window_client_deliveries", "gauge",
		"Deliveries of the policy's messages to each client in the last minute or hour "
		"(the 100 that received most).", true, window_recipients,
		{ "clients", NULL, NULL }, 0 },
};

struct family_ctx {
	struct out *o;
	const struct family *f;
	bool headed;     /* HELP and TYPE written */
};

static void sample(void *ctx, const struct labels *lb, double v)
{
	struct family_ctx *fc = ctx;
	struct out *o = fc->o;
	bool first = true;

	if (!isfinite(v))
		return;
	if (!fc->headed) {
		/* HELP text escapes backslash and newline; ours have neither. */
		puts_(o, "# HELP ");
		puts_(o, fc->f->name);
		puts_(o, " ");
		puts_(o, fc->f->help);
		puts_(o, "\n# TYPE ");
		puts_(o, fc->f->name);
		puts_(o, " ");
		puts_(o, fc->f->type);
		puts_(o, "\n");
		fc->headed = true;
	}
	puts_(o, fc->f->name);
	for (int i = 0; i < 5; i++) {
		if (lb->name[i] == NULL)
			continue;
		puts_(o, first ? "{" : ",");
		first = false;
		puts_(o, lb->name[i]);
		puts_(o, "=\"");
		put_label_value(o, lb->value[i]);
		puts_(o, "\"");
	}
	puts_(o, first ? " " : "} ");
	put_value(o, v);
	puts_(o, "\n");
}

char *tf_prometheus_render(const cJSON *list)
{
	struct out o = { 0 };
	const cJSON *m;

	puts_(&o, "");      /* an empty exposition is "", not NULL */
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		struct family_ctx fc = { &o, &families[i], false };

		cJSON_ArrayForEach(m, list) {
			const cJSON *policy = member(m, "policy"), *owner = member(m, "owner");
			struct labels lb = { { NULL }, { NULL } };

			if (!cJSON_IsObject(m) || cJSON_IsString(policy) != families[i].per_policy)
				continue;
			if (families[i].per_policy) {
				add_label(&lb, "policy", policy->valuestring);
				add_label(&lb, "owner", cJSON_IsString(owner) ? owner->valuestring : "");
			}
			families[i].samples(&families[i], m, &lb, sample, &fc);
		}
	}
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	return o.buf;
}
