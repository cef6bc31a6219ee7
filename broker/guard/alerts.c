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
 * folded into it since; key is its fold_index key (owned), kept for
 * rebuilding the index. */
struct fold {
	int64_t last_ms;
	uint32_t folded;
	uint32_t len;
	char *key;
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

void tf_alerts_free(struct tf_alerts *a)
{
	if (a == NULL)
		return;
	for (uint32_t i = 0; i < TF_ALERTS_KEPT; i++)
		free(a->ring[i].text);
	tf_strmap_free(a->fold_index);
	for (uint32_t i = 0; i < a->n_folds; i++)
		free(a->folds[i].key);
	free(a->folds);
	free(a);
}

/* Rebuilds the fold index without the folds idle for TF_ALERT_FOLD_MS:
 * their next alert is raised anyway. What they had folded is then not
 * mentioned by it (the trace has every message). */
static void drop_idle_folds(struct tf_alerts *a, int64_t now_ms)
{
	struct tf_strmap *fresh = tf_strmap_new();
	uint32_t kept = 0;

	if (fresh == NULL)
		return;
	/* The new index first: out of memory leaves everything as it was. */
	for (uint32_t i = 0; i < a->n_folds; i++) {
		const struct fold *f = &a->folds[i];

		if (now_ms - f->last_ms < TF_ALERT_FOLD_MS
				&& tf_strmap_put(fresh, f->key, f->len, kept++, NULL) < 0) {
			tf_strmap_free(fresh);
			return;
		}
	}
	kept = 0;
	for (uint32_t i = 0; i < a->n_folds; i++) {
		if (now_ms - a->folds[i].last_ms < TF_ALERT_FOLD_MS)
			a->folds[kept++] = a->folds[i];
		else
			free(a->folds[i].key);
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

bool tf_alerts_admit(struct tf_alerts *a, const char *kind, const char *policy,
		const char *client, int64_t now_ms, uint32_t *folded)
{
	char key[512];
	int len = snprintf(key, sizeof(key), "%s%c%s%c%s", kind, 0, policy, 0, client);
	uint32_t at;
	struct fold *f;

	*folded = 0;
	if (len < 0 || (size_t)len >= sizeof(key))
		return true;   /* too long to fold: raised every time */
	if (!tf_strmap_get(a->fold_index, key, (size_t)len, &at)) {
		char *copy;

		if (a->n_folds >= a->rebuild_at)
			drop_idle_folds(a, now_ms);
		if (!tf_grow(&a->folds, &a->cap_folds, a->n_folds, 64, UINT32_MAX))
			return true;
		at = a->n_folds;
		copy = malloc((size_t)len);
		if (copy == NULL)
			return true;
		memcpy(copy, key, (size_t)len);
		if (tf_strmap_put(a->fold_index, key, (size_t)len, at, NULL) != 1) {
			free(copy);
			return true;
		}
		a->folds[a->n_folds++] = (struct fold){ now_ms, 0, (uint32_t)len, copy };
		return true;
	}
	f = &a->folds[at];
	if (now_ms - f->last_ms < TF_ALERT_FOLD_MS) {
		f->folded++;
		return false;
	}
	*folded = f->folded;
	f->last_ms = now_ms;
	f->folded = 0;
	return true;
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
