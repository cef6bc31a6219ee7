#include "broker/guard/alerts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/util/growable.h"
#include "broker/util/strmap.h"
#include "policy/policy.h"

/* A kept alert owns its strings: one allocation, NUL-separated. */
struct kept {
	struct tf_alert alert;
	char *text;
	uint64_t position;
};

/* When a kind of alert about a flow was last raised, and how many were
 * folded into it since; key is its fold_index key (owned, NUL-terminated
 * after len: kind NUL policy NUL client), kept for rebuilding the index
 * and for the alert that reports the folded ones. */
struct fold {
	int64_t last_ms;
	uint32_t folded;
	uint32_t len;
	bool pending;         /* on the pending list (tf_alerts_flush) */
	const char *kind;     /* static */
	char *key;
	char *last;           /* the last folded: org NUL detail NUL action NUL
	                       * (owned, last_cap bytes), or NULL */
	size_t last_cap;
};

/* Alerts come from outside input (an anonymous client can raise
 * denied-publish alerts under any number of client ids), so the folds
 * are bounded: once this many are kept, the index is rebuilt without
 * the ones idle for TF_ALERT_FOLD_MS, which fold nothing any more. */
#define FOLDS_REBUILD_AT 65536

struct tf_alerts {
	struct kept ring[TF_ALERTS_KEPT];
	uint32_t next, count;
	uint64_t n_kept;                /* ever: the position of the next one */
	struct tf_strmap *fold_index;   /* kind NUL policy NUL client -> folds[] */
	struct fold *folds;
	uint32_t n_folds, cap_folds;
	uint32_t rebuild_at;
	uint32_t *pending;              /* folds[] with folded ones to report */
	uint32_t n_pending, cap_pending;
	uint32_t cursor;                /* where tf_alerts_flush goes on */
};

struct tf_alerts *tf_alerts_new(void)
{
	struct tf_alerts *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	a->fold_index = tf_strmap_new();
	if (a->fold_index == NULL) {
		free(a);
		return NULL;
	}
	a->rebuild_at = FOLDS_REBUILD_AT;
	return a;
}

static void fold_free(struct fold *f)
{
	free(f->key);
	free(f->last);
}

void tf_alerts_free(struct tf_alerts *a)
{
	if (a == NULL)
		return;
	for (uint32_t i = 0; i < TF_ALERTS_KEPT; i++)
		free(a->ring[i].text);
	tf_strmap_free(a->fold_index);
	for (uint32_t i = 0; i < a->n_folds; i++)
		fold_free(&a->folds[i]);
	free(a->folds);
	free(a->pending);
	free(a);
}

/* Whether a fold is still needed at now_ms: its window is open, or it
 * has folded alerts waiting for tf_alerts_flush. */
static bool fold_live(const struct fold *f, int64_t now_ms)
{
	return now_ms - f->last_ms < TF_ALERT_FOLD_MS || f->pending;
}

struct idle_folds {
	const struct tf_alerts *a;
	int64_t now_ms;
};

static const char *live_fold_key(void *ctx, uint32_t i, size_t *len)
{
	const struct idle_folds *idle = ctx;
	const struct fold *f = &idle->a->folds[i];

	*len = f->len;
	return fold_live(f, idle->now_ms) ? f->key : NULL;
}

/* Rebuilds the fold index without the folds no longer needed: their
 * next alert is raised anyway. The pending list is rebuilt too, as the
 * folds move. */
static void drop_idle_folds(struct tf_alerts *a, int64_t now_ms)
{
	struct idle_folds idle = { a, now_ms };
	/* The new index first: out of memory leaves everything as it was. */
	struct tf_strmap *fresh = tf_strmap_renumbered(a->n_folds, live_fold_key, &idle);
	uint32_t kept = 0;

	if (fresh == NULL)
		return;
	a->n_pending = 0;
	a->cursor = 0;
	for (uint32_t i = 0; i < a->n_folds; i++) {
		if (!fold_live(&a->folds[i], now_ms)) {
			fold_free(&a->folds[i]);
			continue;
		}
		/* Fits: no more than were on the list before. */
		if (a->folds[i].pending)
			a->pending[a->n_pending++] = kept;
		a->folds[kept++] = a->folds[i];
	}
	tf_strmap_free(a->fold_index);
	a->fold_index = fresh;
	a->n_folds = kept;
	/* Mostly busy flows: let the table grow before trying again. */
	a->rebuild_at = kept * 2 > FOLDS_REBUILD_AT ? kept * 2 : FOLDS_REBUILD_AT;
}

uint32_t tf_alerts_folds(const struct tf_alerts *a)
{
	return a->n_folds;
}

/* Keeps what the alert folded into f says, for the alert that reports
 * the folded ones. Out of memory keeps what an earlier one said (or
 * nothing: that alert then has an empty org and detail). */
static void fold_note(struct fold *f, const struct tf_alert *alert)
{
	size_t org = strlen(alert->org) + 1, detail = strlen(alert->detail) + 1;
	size_t need = org + detail + strlen(alert->action) + 1;

	if (need > f->last_cap) {
		char *grown = realloc(f->last, need);

		if (grown == NULL)
			return;
		f->last = grown;
		f->last_cap = need;
	}
	memcpy(f->last, alert->org, org);
	memcpy(f->last + org, alert->detail, detail);
	memcpy(f->last + org + detail, alert->action, need - org - detail);
}

/* The first alert folded into f since its last one was raised puts it on
 * the pending list (unless it is there, or the list is full: then only
 * the next alert mentions them). */
static void fold_pend(struct tf_alerts *a, struct fold *f, uint32_t at)
{
	if (f->pending || a->n_pending >= TF_ALERTS_PENDING_MAX
			|| !tf_grow(&a->pending, &a->cap_pending, a->n_pending, 64,
				TF_ALERTS_PENDING_MAX))
		return;
	a->pending[a->n_pending++] = at;
	f->pending = true;
}

/* A new fold for key (len bytes, NUL-terminated after), its alert raised
 * at now_ms. False when out of memory (the alert is raised, unfolded). */
static bool fold_add(struct tf_alerts *a, const char *kind, const char *key, int len,
		int64_t now_ms)
{
	char *copy;

	if (a->n_folds >= a->rebuild_at)
		drop_idle_folds(a, now_ms);
	if (!tf_grow(&a->folds, &a->cap_folds, a->n_folds, 64, UINT32_MAX))
		return false;
	copy = malloc((size_t)len + 1);
	if (copy == NULL)
		return false;
	memcpy(copy, key, (size_t)len + 1);
	if (tf_strmap_put(a->fold_index, key, (size_t)len, a->n_folds, NULL) != 1) {
		free(copy);
		return false;
	}
	a->folds[a->n_folds++] = (struct fold){ .last_ms = now_ms, .len = (uint32_t)len,
		.kind = kind, .key = copy };
	return true;
}

bool tf_alerts_admit(struct tf_alerts *a, const struct tf_alert *alert, uint32_t *folded)
{
	char key[512];
	int len = snprintf(key, sizeof(key), "%s%c%s%c%s", alert->kind, 0, alert->policy, 0,
		alert->client);
	int64_t now_ms = alert->ts_ms;
	uint32_t at;
	struct fold *f;

	*folded = 0;
	if (len < 0 || (size_t)len >= sizeof(key))
		return true;   /* too long to fold: raised every time */
	if (!tf_strmap_get(a->fold_index, key, (size_t)len, &at)) {
		(void)fold_add(a, alert->kind, key, len, now_ms);
		return true;
	}
	f = &a->folds[at];
	if (now_ms - f->last_ms < TF_ALERT_FOLD_MS) {
		f->folded++;
		fold_note(f, alert);
		fold_pend(a, f, at);
		return false;
	}
	/* This one mentions them: tf_alerts_flush drops the fold from its
	 * list when it comes to it. */
	*folded = f->folded;
	f->last_ms = now_ms;
	f->folded = 0;
	return true;
}

/* Reports f's folded alerts to visit (tf_alerts_flush). */
static void fold_report(struct fold *f, int64_t now_ms, tf_alert_folded_visit visit, void *ctx)
{
	const char *policy = f->key + strlen(f->key) + 1;
	struct tf_alert last = { "", now_ms, f->kind, policy, "", policy + strlen(policy) + 1,
		"", "" };
	uint32_t folded = f->folded;

	if (f->last != NULL) {
		last.org = f->last;
		last.detail = last.org + strlen(last.org) + 1;
		last.action = last.detail + strlen(last.detail) + 1;
	}
	/* The report is an alert raised now: what follows folds into it. */
	f->last_ms = now_ms;
	f->folded = 0;
	visit(ctx, &last, folded);
}

void tf_alerts_flush(struct tf_alerts *a, int64_t now_ms, uint32_t budget,
		tf_alert_folded_visit visit, void *ctx)
{
	uint32_t looks = budget < a->n_pending ? budget : a->n_pending;

	/* Round the list from where the last call stopped, so that a long
	 * one is gone through in turn. */
	for (uint32_t i = 0; i < looks && a->n_pending > 0; i++) {
		struct fold *f;

		if (a->cursor >= a->n_pending)
			a->cursor = 0;
		f = &a->folds[a->pending[a->cursor]];
		if (f->folded > 0 && now_ms - f->last_ms < TF_ALERT_FOLD_MS) {
			a->cursor++;
			continue;
		}
		a->pending[a->cursor] = a->pending[--a->n_pending];
		f->pending = false;
		/* None folded: its next alert mentioned them already. */
		if (f->folded > 0)
			fold_report(f, now_ms, visit, ctx);
	}
}

bool tf_alerts_keep(struct tf_alerts *a, const struct tf_alert *alert)
{
	const char *parts[5] = { alert->policy, alert->org, alert->client, alert->detail,
		alert->action };
	const char **slots[5];
	struct kept *k = &a->ring[a->next];
	size_t len = 0;
	char *text, *at;

	for (int i = 0; i < 5; i++)
		len += strlen(parts[i]) + 1;
	text = malloc(len);
	if (text == NULL)
		return false;
	free(k->text);
	k->text = text;
	k->alert = *alert;
	k->position = a->n_kept++;
	slots[0] = &k->alert.policy;
	slots[1] = &k->alert.org;
	slots[2] = &k->alert.client;
	slots[3] = &k->alert.detail;
	slots[4] = &k->alert.action;
	at = text;
	for (int i = 0; i < 5; i++) {
		size_t n = strlen(parts[i]) + 1;

		memcpy(at, parts[i], n);
		*slots[i] = at;
		at += n;
	}
	a->next = (a->next + 1) % TF_ALERTS_KEPT;
	if (a->count < TF_ALERTS_KEPT)
		a->count++;
	return true;
}

cJSON *tf_alert_json(const struct tf_alert *al)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL || !cJSON_AddStringToObject(o, "id", al->id)
			|| !cJSON_AddNumberToObject(o, "ts", (double)al->ts_ms)
			|| !cJSON_AddStringToObject(o, "kind", al->kind)
			|| !(al->policy[0] ? cJSON_AddStringToObject(o, "policy", al->policy)
				: cJSON_AddNullToObject(o, "policy"))
			|| !cJSON_AddStringToObject(o, "org", al->org)
			|| !cJSON_AddStringToObject(o, "client", al->client)
			|| !cJSON_AddStringToObject(o, "detail", al->detail)
			|| !cJSON_AddStringToObject(o, "action", al->action)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

void tf_alerts_each(const struct tf_alerts *a, int64_t since_ms, uint64_t from,
		tf_alert_visit visit, void *ctx)
{
	uint32_t first = (a->next + TF_ALERTS_KEPT - a->count) % TF_ALERTS_KEPT;

	for (uint32_t i = 0; i < a->count; i++) {
		const struct kept *k = &a->ring[(first + i) % TF_ALERTS_KEPT];

		if (k->alert.ts_ms >= since_ms && k->position >= from)
			visit(ctx, &k->alert, k->position);
	}
}

void tf_alert_topic(const struct tf_alert *alert, char *out, size_t cap)
{
	int n = (int)tf_policy_label_id_len(alert->policy);

	if (n == 0)
		snprintf(out, cap, "$trustflow/alerts/-");
	else
		snprintf(out, cap, "$trustflow/alerts/%.*s", n, alert->policy);
}
