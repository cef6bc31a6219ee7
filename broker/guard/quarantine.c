#include "broker/guard/quarantine.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/util/fnv.h"
#include "broker/util/growable.h"
#include "policy/policy.h"

struct release {
	uint64_t key;
	int64_t at_ms;        /* when it went out: the entry is kept a while from then */
	int64_t received_ms;  /* when the broker received it: its retention counts from then */
};

/* Few flows are quarantined at a time, so they are an array. */
struct tf_quarantine {
	struct tf_held_flow *flows;
	uint32_t n, cap;
	uint64_t n_added;       /* flows ever quarantined: the next position */
	struct release released[TF_RELEASED_MAX];
	uint32_t next_release, n_released;
};

struct tf_quarantine *tf_quarantine_new(void)
{
	return calloc(1, sizeof(struct tf_quarantine));
}

static void flow_free(struct tf_held_flow *f)
{
	free(f->flow);
	free(f->policy);
	free(f->client);
}

void tf_quarantine_free(struct tf_quarantine *q)
{
	if (q == NULL)
		return;
	for (uint32_t i = 0; i < q->n; i++)
		flow_free(&q->flows[i]);
	free(q->flows);
	free(q);
}

void tf_quarantine_flow_name(const char *policy, const char *client, char *out, size_t cap)
{
	int n = (int)tf_policy_label_id_len(policy);

	snprintf(out, cap, "%.*s/%s", n, policy, client);
}

static struct tf_held_flow *find(const struct tf_quarantine *q, const char *flow)
{
	for (uint32_t i = 0; i < q->n; i++)
		if (strcmp(q->flows[i].flow, flow) == 0)
			return &q->flows[i];
	return NULL;
}

const struct tf_held_flow *tf_quarantine_find(const struct tf_quarantine *q, const char *flow)
{
	return find(q, flow);
}

bool tf_quarantine_add(struct tf_quarantine *q, const char *flow, const char *policy,
		const char *client, int64_t received_ms)
{
	struct tf_held_flow *f = find(q, flow);

	if (f == NULL) {
		if (!tf_grow(&q->flows, &q->cap, q->n, 8, UINT32_MAX))
			return false;
		f = &q->flows[q->n];
		*f = (struct tf_held_flow){ strdup(flow), strdup(policy), strdup(client), 0,
			received_ms, q->n_added };
		if (f->flow == NULL || f->policy == NULL || f->client == NULL) {
			flow_free(f);
			return false;
		}
		q->n++;
		q->n_added++;
	}
	f->held++;
	return true;
}

void tf_quarantine_keep(struct tf_quarantine *q, const char *flow, uint64_t held,
		int64_t since_ms)
{
	struct tf_held_flow *f = find(q, flow);

	if (f != NULL) {
		f->held = held;
		/* An unknown time keeps the one known before. */
		if (since_ms != INT64_MIN)
			f->since_ms = since_ms;
	}
}

void tf_quarantine_remove(struct tf_quarantine *q, const char *flow)
{
	for (uint32_t i = 0; i < q->n; i++) {
		if (strcmp(q->flows[i].flow, flow) == 0) {
			flow_free(&q->flows[i]);
			memmove(&q->flows[i], &q->flows[i + 1], (q->n - i - 1) * sizeof(q->flows[0]));
			q->n--;
			return;
		}
	}
}

uint32_t tf_quarantine_count(const struct tf_quarantine *q)
{
	return q->n;
}

const struct tf_held_flow *tf_quarantine_at(const struct tf_quarantine *q, uint32_t i)
{
	return &q->flows[i];
}

/* FNV-1a over topic, a separator and payload. */
static uint64_t release_key(const char *topic, const void *payload, uint32_t len)
{
	uint64_t h = tf_fnv1a_separator(tf_fnv1a(TF_FNV_OFFSET, topic, strlen(topic)));

	return tf_fnv1a(h, payload, len);
}

void tf_quarantine_note_release(struct tf_quarantine *q, const char *topic, const void *payload,
		uint32_t payloadlen, int64_t released_ms, int64_t received_ms)
{
	q->released[q->next_release] = (struct release){
		release_key(topic, payload, payloadlen), released_ms, received_ms };
	q->next_release = (q->next_release + 1) % TF_RELEASED_MAX;
	if (q->n_released < TF_RELEASED_MAX)
		q->n_released++;
}

int64_t tf_quarantine_release_time(const struct tf_quarantine *q, const char *topic,
		const void *payload, uint32_t payloadlen, int64_t now_ms)
{
	uint64_t key;

	if (q->n_released == 0)
		return INT64_MIN;
	key = release_key(topic, payload, payloadlen);
	for (uint32_t i = 0; i < q->n_released; i++) {
		const struct release *r = &q->released[i];

		if (r->key == key && now_ms - r->at_ms < TF_RELEASED_KEEP_MS)
			return r->received_ms;
	}
	return INT64_MIN;
}
