#include "broker/engine/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/util/strmap.h"

#define TEN_S 10000
#define MINUTE 60000
#define HOUR (60 * MINUTE)
#define NEVER INT64_MIN

static const char *const metric_names[TF_METRIC_COUNT] = {
	[TF_METRIC_STAMPED] = "stamped",
	[TF_METRIC_DELIVERED] = "delivered",
	[TF_METRIC_WITHHELD] = "withheld",
	[TF_METRIC_FORWARDED] = "forwarded",
	[TF_METRIC_QUARANTINED] = "quarantined",
	[TF_METRIC_REROUTED] = "rerouted",
	[TF_METRIC_RELEASED] = "released",
	[TF_METRIC_DISCARDED] = "discarded",
};

/* --- windows: counts in the last minute and hour ---------------------------- */

/* Counts per span (10 s for the minute, a minute for the hour), each a
 * ring by span number; last_*: the newest span counted into (the spans
 * between it and a newer one are zeroed as time passes them). */
struct window {
	uint32_t tens[6], minutes[60];
	int64_t last_ten, last_minute;
};

static void window_init(struct window *w)
{
	memset(w, 0, sizeof(*w));
	w->last_ten = NEVER;
	w->last_minute = NEVER;
}

static void spans_add(uint32_t *count, int n, int64_t *last, int64_t span, uint32_t k)
{
	if (*last == NEVER || span - *last >= n) {
		memset(count, 0, sizeof(*count) * (size_t)n);
		*last = span;
	}
	for (; *last < span; (*last)++)
		count[(*last + 1) % n] = 0;
	/* A clock set back counts into the newest span. */
	count[*last % n] += k;
}

/* The count of the n spans ending with span. */
static uint64_t spans_sum(const uint32_t *count, int n, int64_t last, int64_t span)
{
	uint64_t sum = 0;
	int64_t from = span - n + 1;

	if (last == NEVER || last < from)
		return 0;
	if (last - n + 1 > from)
		from = last - n + 1;
	for (int64_t i = from; i <= last; i++)
		sum += count[i % n];
	return sum;
}

static void window_add(struct window *w, int64_t now, uint32_t k)
{
	if (now < 0)
		now = 0;
	spans_add(w->tens, 6, &w->last_ten, now / TEN_S, k);
	spans_add(w->minutes, 60, &w->last_minute, now / MINUTE, k);
}

static uint64_t window_sum(const struct window *w, int64_t now, bool hour)
{
	if (now < 0)
		now = 0;
	return hour ? spans_sum(w->minutes, 60, w->last_minute, now / MINUTE)
		: spans_sum(w->tens, 6, w->last_ten, now / TEN_S);
}

/* --- tallies: counts by name (refusal reasons, alert kinds) -------------------- */

#define TALLY_MAX 24
#define TALLY_NAME 32

/* Most policies see no refusal or alert, or a kind or two: the table
 * grows as names come. */
struct tallies {
	uint32_t n;
	struct tally { char name[TALLY_NAME]; uint64_t count; } *t;
};

/* Names are the engine's own few words; should there ever be more than
 * fit, the rest are counted as "other", for which the last place is
 * kept. Out of memory, the count is lost. */
static void tally(struct tallies *t, const char *name)
{
	uint32_t i;

	if (strlen(name) >= TALLY_NAME)
		name = "other";
	for (;;) {
		for (i = 0; i < t->n && strcmp(t->t[i].name, name) != 0; i++)
			;
		if (i < t->n)
			break;
		if (t->n < TALLY_MAX - 1 || strcmp(name, "other") == 0) {
			struct tally *grown = realloc(t->t, sizeof(*grown) * (t->n + 1));

			if (grown == NULL)
				return;
			t->t = grown;
			strcpy(t->t[i].name, name);
			t->t[i].count = 0;
			t->n++;
			break;
		}
		name = "other";
	}
	t->t[i].count++;
}

static void tallies_free(struct tallies *t)
{
	free(t->t);
	*t = (struct tallies){ 0, NULL };
}

static bool tallies_json(const struct tallies *t, cJSON *parent, const char *member)
{
	cJSON *o = cJSON_AddObjectToObject(parent, member);

	if (o == NULL)
		return false;
	for (uint32_t i = 0; i < t->n; i++) {
		if (cJSON_AddNumberToObject(o, t->t[i].name, (double)t->t[i].count) == NULL)
			return false;
	}
	return true;
}

/* --- rows: who received a policy's data ----------------------------------------- */

struct row {
	char *name;
	char *org;          /* a client's organization; NULL for an organization's row */
	int64_t last_ms;    /* its latest delivery */
	struct window w;
};

struct rows {
	struct tf_strmap *index;   /* name -> position in rows */
	struct row *rows;
	uint32_t n, cap;
};

static void rows_free(struct rows *r)
{
	for (uint32_t i = 0; i < r->n; i++) {
		free(r->rows[i].name);
		free(r->rows[i].org);
	}
	free(r->rows);
	tf_strmap_free(r->index);
	*r = (struct rows){ NULL, NULL, 0, 0 };
}

/* The row of name, made when new; past TF_METRICS_MAX_ROWS, the row "".
 * NULL when out of memory. */
static struct row *rows_get(struct rows *r, const char *name, const char *org)
{
	uint32_t i;
	struct row *row;

	if (r->index == NULL && (r->index = tf_strmap_new()) == NULL)
		return NULL;
	if (tf_strmap_get(r->index, name, strlen(name), &i))
		return &r->rows[i];
	if (r->n >= TF_METRICS_MAX_ROWS && name[0] != '\0')
		return rows_get(r, "", org != NULL ? "" : NULL);
	if (r->n == r->cap) {
		uint32_t cap = r->cap ? r->cap * 2 : 8;
		struct row *grown = realloc(r->rows, sizeof(*grown) * cap);

		if (grown == NULL)
			return NULL;
		r->rows = grown;
		r->cap = cap;
	}
	row = &r->rows[r->n];
	row->name = strdup(name);
	row->org = org != NULL ? strdup(org) : NULL;
	if (row->name == NULL || (org != NULL && row->org == NULL)
			|| tf_strmap_put(r->index, name, strlen(name), r->n, NULL) != 1) {
		free(row->name);
		free(row->org);
		return NULL;
	}
	window_init(&row->w);
	row->last_ms = NEVER;
	r->n++;
	return row;
}

struct idle_ctx {
	const struct rows *r;
	int64_t since;
};

static const char *kept_if_recent(void *ctx, uint32_t i, size_t *len)
{
	const struct idle_ctx *c = ctx;
	const struct row *row = &c->r->rows[i];

	if (row->last_ms < c->since)
		return NULL;
	*len = strlen(row->name);
	return row->name;
}

/* Drops the rows with no delivery in the last hour: they are in no
 * window any more. */
static void rows_drop_idle(struct rows *r, int64_t now)
{
	struct idle_ctx c = { r, now - HOUR };
	struct tf_strmap *index;
	uint32_t kept = 0;

	for (uint32_t i = 0; i < r->n; i++)
		kept += r->rows[i].last_ms >= c.since;
	if (kept == r->n)
		return;
	index = tf_strmap_renumbered(r->n, kept_if_recent, &c);
	if (index == NULL)
		return;
	kept = 0;
	for (uint32_t i = 0; i < r->n; i++) {
		if (r->rows[i].last_ms >= c.since) {
			r->rows[kept++] = r->rows[i];
		} else {
			free(r->rows[i].name);
			free(r->rows[i].org);
		}
	}
	tf_strmap_free(r->index);
	r->index = index;
	r->n = kept;
}

struct ranked {
	const struct row *row;
	uint64_t count;
};

static int by_count(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return strcmp(x->row->name, y->row->name);
}

/* The rows with deliveries in the window, most first, as an array
 * member of o ("clients" or "orgs"), with "more_<member>" when more
 * than TF_METRICS_LISTED. */
static bool rows_json(const struct rows *r, int64_t now, bool hour, cJSON *o, const char *member,
		const char *name_member)
{
	struct ranked *ranked = malloc(sizeof(*ranked) * (r->n ? r->n : 1));
	cJSON *list = cJSON_AddArrayToObject(o, member);
	uint32_t n = 0;
	bool ok = ranked != NULL && list != NULL;

	for (uint32_t i = 0; ok && i < r->n; i++) {
		uint64_t count = window_sum(&r->rows[i].w, now, hour);

		if (count > 0)
			ranked[n++] = (struct ranked){ &r->rows[i], count };
	}
	if (ok)
		qsort(ranked, n, sizeof(*ranked), by_count);
	for (uint32_t i = 0; ok && i < n && i < TF_METRICS_LISTED; i++) {
		cJSON *item = cJSON_CreateObject();

		ok = item != NULL && cJSON_AddItemToArray(list, item)
			&& cJSON_AddStringToObject(item, name_member, ranked[i].row->name) != NULL
			&& (ranked[i].row->org == NULL
				|| cJSON_AddStringToObject(item, "org", ranked[i].row->org) != NULL)
			&& cJSON_AddNumberToObject(item, "deliveries", (double)ranked[i].count) != NULL;
	}
	if (ok && n > TF_METRICS_LISTED) {
		char more[32];

		snprintf(more, sizeof(more), "more_%s", member);
		ok = cJSON_AddNumberToObject(o, more, n - TF_METRICS_LISTED) != NULL;
	}
	free(ranked);
	return ok;
}

/* --- counters, broker-wide and per policy --------------------------------------- */

struct counters {
	uint64_t n[TF_METRIC_COUNT];
	struct tallies refused, alerts;
};

static void counters_reset(struct counters *c)
{
	tallies_free(&c->refused);
	tallies_free(&c->alerts);
	memset(c->n, 0, sizeof(c->n));
}

/* A policy is counted from its first message, delivery, refusal or alert
 * on: a broker with many policies holds and publishes only those that
 * see traffic. */
struct policy_metrics {
	bool active;             /* counted since `since`; false: forgotten */
	bool changed;            /* counted since its last copy */
	bool in_window;          /* its last copy had counts in a window */
	int64_t since;
	struct counters c;
	struct window messages, deliveries;
	struct rows clients, orgs;
	char id[];
};

struct tf_metrics {
	int64_t since;
	struct counters all;
	struct tf_strmap *ids;             /* policy id -> position in policies */
	struct policy_metrics **policies;
	uint32_t n, cap;
	uint32_t round;                    /* where the round of copies goes on */
};

struct tf_metrics *tf_metrics_new(int64_t now)
{
	struct tf_metrics *m = calloc(1, sizeof(*m));

	if (m == NULL || (m->ids = tf_strmap_new()) == NULL) {
		free(m);
		return NULL;
	}
	m->since = now;
	return m;
}

static void policy_reset(struct policy_metrics *p, int64_t now)
{
	rows_free(&p->clients);
	rows_free(&p->orgs);
	counters_reset(&p->c);
	window_init(&p->messages);
	window_init(&p->deliveries);
	p->since = now;
	p->changed = false;
	p->in_window = false;
}

void tf_metrics_free(struct tf_metrics *m)
{
	if (m == NULL)
		return;
	for (uint32_t i = 0; i < m->n; i++) {
		policy_reset(m->policies[i], 0);
		free(m->policies[i]);
	}
	counters_reset(&m->all);
	free(m->policies);
	tf_strmap_free(m->ids);
	free(m);
}

/* The counters of the policy with id, made (or started again) when new,
 * and marked changed. NULL when out of memory: it is then counted
 * broker-wide only. */
static struct policy_metrics *policy_of(struct tf_metrics *m, const char *id, int64_t now)
{
	size_t len = strlen(id);
	struct policy_metrics *p;
	uint32_t i;

	if (tf_strmap_get(m->ids, id, len, &i)) {
		p = m->policies[i];
		if (!p->active) {
			policy_reset(p, now);
			p->active = true;
		}
		p->changed = true;
		return p;
	}
	if (m->n == m->cap) {
		uint32_t cap = m->cap ? m->cap * 2 : 8;
		struct policy_metrics **grown = realloc(m->policies, sizeof(*grown) * cap);

		if (grown == NULL)
			return NULL;
		m->policies = grown;
		m->cap = cap;
	}
	p = calloc(1, sizeof(*p) + len + 1);
	if (p == NULL)
		return NULL;
	memcpy(p->id, id, len + 1);
	if (tf_strmap_put(m->ids, id, len, m->n, NULL) != 1) {
		free(p);
		return NULL;
	}
	policy_reset(p, now);
	p->active = true;
	p->changed = true;
	m->policies[m->n++] = p;
	return p;
}

/* The counters of the policy with id, when it is counted; NULL when not. */
static struct policy_metrics *counted(const struct tf_metrics *m, const char *id)
{
	uint32_t i;

	if (!tf_strmap_get(m->ids, id, strlen(id), &i) || !m->policies[i]->active)
		return NULL;
	return m->policies[i];
}

void tf_metrics_add(struct tf_metrics *m, const char *policy, enum tf_metric what, uint64_t n,
		int64_t now)
{
	struct policy_metrics *p;

	m->all.n[what] += n;
	if (policy == NULL || n == 0 || (p = policy_of(m, policy, now)) == NULL)
		return;
	p->c.n[what] += n;
	if (what == TF_METRIC_STAMPED)
		window_add(&p->messages, now, (uint32_t)n);
}

void tf_metrics_delivered(struct tf_metrics *m, const char *policy, const char *org,
		const char *client, int64_t now)
{
	struct policy_metrics *p;
	struct row *row;

	m->all.n[TF_METRIC_DELIVERED]++;
	if (policy == NULL || (p = policy_of(m, policy, now)) == NULL)
		return;
	p->c.n[TF_METRIC_DELIVERED]++;
	window_add(&p->deliveries, now, 1);
	if ((row = rows_get(&p->clients, client, org)) != NULL) {
		window_add(&row->w, now, 1);
		row->last_ms = now;
	}
	if ((row = rows_get(&p->orgs, org, NULL)) != NULL) {
		window_add(&row->w, now, 1);
		row->last_ms = now;
	}
}

void tf_metrics_refused(struct tf_metrics *m, const char *policy, const char *reason, int64_t now)
{
	struct policy_metrics *p;

	if (reason == NULL)
		reason = "other";
	tally(&m->all.refused, reason);
	if (policy != NULL && (p = policy_of(m, policy, now)) != NULL)
		tally(&p->c.refused, reason);
}

void tf_metrics_alert(struct tf_metrics *m, const char *policy, const char *kind, int64_t now)
{
	struct policy_metrics *p;

	tally(&m->all.alerts, kind);
	if (policy != NULL && (p = policy_of(m, policy, now)) != NULL)
		tally(&p->c.alerts, kind);
}

static bool counters_json(const struct counters *c, int64_t since, cJSON *o)
{
	cJSON *messages;

	if (cJSON_AddNumberToObject(o, "since", (double)since) == NULL
			|| (messages = cJSON_AddObjectToObject(o, "messages")) == NULL)
		return false;
	for (int i = 0; i < TF_METRIC_COUNT; i++) {
		if (cJSON_AddNumberToObject(messages, metric_names[i], (double)c->n[i]) == NULL)
			return false;
	}
	return tallies_json(&c->refused, messages, "refused") && tallies_json(&c->alerts, o, "alerts");
}

bool tf_metrics_broker_json(const struct tf_metrics *m, cJSON *o)
{
	return counters_json(&m->all, m->since, o);
}

/* One window into parent; *any: whether it holds any count. */
static bool window_json(const struct policy_metrics *p, int64_t now, bool hour, cJSON *parent,
		bool *any)
{
	cJSON *o = cJSON_AddObjectToObject(parent, hour ? "last_hour" : "last_minute");
	uint64_t messages = window_sum(&p->messages, now, hour);
	uint64_t deliveries = window_sum(&p->deliveries, now, hour);

	*any = *any || messages > 0 || deliveries > 0;
	return o != NULL
		&& cJSON_AddNumberToObject(o, "messages", (double)messages)
		&& cJSON_AddNumberToObject(o, "deliveries", (double)deliveries)
		&& rows_json(&p->orgs, now, hour, o, "orgs", "org")
		&& rows_json(&p->clients, now, hour, o, "clients", "client");
}

bool tf_metrics_policy_json(struct tf_metrics *m, const char *policy, int64_t now, cJSON *o)
{
	struct policy_metrics *p = counted(m, policy);
	bool any = false;

	if (p == NULL)
		return false;
	rows_drop_idle(&p->clients, now);
	rows_drop_idle(&p->orgs, now);
	if (!counters_json(&p->c, p->since, o) || !window_json(p, now, false, o, &any)
			|| !window_json(p, now, true, o, &any))
		return false;
	p->changed = false;
	p->in_window = any;
	return true;
}

bool tf_metrics_counted(const struct tf_metrics *m, const char *policy)
{
	return counted(m, policy) != NULL;
}

void tf_metrics_round_start(struct tf_metrics *m)
{
	m->round = 0;
}

bool tf_metrics_round(struct tf_metrics *m, uint32_t max, void (*due)(void *ctx, const char *id),
		void *ctx)
{
	uint32_t n = 0;

	for (; m->round < m->n && n < max; m->round++) {
		struct policy_metrics *p = m->policies[m->round];

		if (p->active && (p->changed || p->in_window)) {
			due(ctx, p->id);
			n++;
		}
	}
	return m->round == m->n;
}

void tf_metrics_forget(struct tf_metrics *m, const char *policy)
{
	struct policy_metrics *p = counted(m, policy);

	if (p == NULL)
		return;
	policy_reset(p, m->since);
	p->active = false;
}

void tf_metrics_forget_policies(struct tf_metrics *m, bool (*in_force)(void *ctx, const char *id),
		void (*gone)(void *ctx, const char *id), void *ctx)
{
	for (uint32_t i = 0; i < m->n; i++) {
		const char *id = m->policies[i]->id;

		if (m->policies[i]->active && !in_force(ctx, id)) {
			gone(ctx, id);
			tf_metrics_forget(m, id);
		}
	}
}
