#include "broker/tracking/retained.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "broker/util/growable.h"
#include "broker/util/strmap.h"

#define NOT_DUE INT64_MAX

struct entry {
	char *topic;          /* owned */
	char *label;          /* owned: the policy it was made under; NULL: forgotten */
	int64_t expires_ms;   /* NOT_DUE: no removal due */
};

struct tf_retained {
	struct tf_strmap *index;   /* topic -> entry */
	struct entry *entries;
	uint32_t n, cap;
	uint32_t live;
	int64_t next_due;          /* earliest expiry, so that most calls scan nothing */
};

struct tf_retained *tf_retained_new(void)
{
	struct tf_retained *r = calloc(1, sizeof(*r));

	if (r == NULL || (r->index = tf_strmap_new()) == NULL) {
		free(r);
		return NULL;
	}
	r->next_due = NOT_DUE;
	return r;
}

void tf_retained_free(struct tf_retained *r)
{
	if (r == NULL)
		return;
	for (uint32_t i = 0; i < r->n; i++) {
		free(r->entries[i].topic);
		free(r->entries[i].label);
	}
	free(r->entries);
	tf_strmap_free(r->index);
	free(r);
}

/* Drops forgotten entries; the map cannot delete, so it is rebuilt. The
 * new index is built completely before anything moves, so that running
 * out of memory halfway leaves the table as it was. */
static void compact(struct tf_retained *r)
{
	struct tf_strmap *fresh = tf_strmap_new();
	uint32_t kept = 0;

	if (fresh == NULL)
		return;
	for (uint32_t i = 0; i < r->n; i++) {
		const struct entry *e = &r->entries[i];

		if (e->label == NULL)
			continue;
		if (tf_strmap_put(fresh, e->topic, strlen(e->topic), kept++, NULL) < 0) {
			tf_strmap_free(fresh);
			return;
		}
	}
	kept = 0;
	for (uint32_t i = 0; i < r->n; i++) {
		if (r->entries[i].label == NULL)
			free(r->entries[i].topic);
		else
			r->entries[kept++] = r->entries[i];
	}
	tf_strmap_free(r->index);
	r->index = fresh;
	r->n = kept;
}

int tf_retained_note(struct tf_retained *r, const char *topic, const char *label,
		int64_t expires_ms)
{
	char *made_under = strdup(label);
	uint32_t i;

	if (made_under == NULL)
		return -1;
	if (!tf_strmap_get(r->index, topic, strlen(topic), &i)) {
		/* Forgotten topics go before the table grows (expiry compacts
		 * too, but only under policies with a retention). */
		if (r->n == r->cap && r->n > 64 && r->live * 2 < r->n)
			compact(r);
		if (!tf_grow(&r->entries, &r->cap, r->n, 64, TF_RETAINED_MAX))
			goto err;
		i = r->n;
		r->entries[i] = (struct entry){ strdup(topic), NULL, NOT_DUE };
		if (r->entries[i].topic == NULL
				|| tf_strmap_put(r->index, topic, strlen(topic), i, NULL) < 0) {
			free(r->entries[i].topic);
			goto err;
		}
		r->n++;
	}
	if (r->entries[i].label == NULL)
		r->live++;
	free(r->entries[i].label);
	r->entries[i].label = made_under;
	r->entries[i].expires_ms = expires_ms;
	if (expires_ms < r->next_due)
		r->next_due = expires_ms;
	return 0;
err:
	free(made_under);
	return -1;
}

/* Forgets entry e: its copy was removed or replaced. */
static void forget(struct tf_retained *r, struct entry *e)
{
	free(e->label);
	e->label = NULL;
	e->expires_ms = NOT_DUE;
	r->live--;
}

void tf_retained_forget(struct tf_retained *r, const char *topic)
{
	uint32_t i;

	if (tf_strmap_get(r->index, topic, strlen(topic), &i) && r->entries[i].label != NULL)
		forget(r, &r->entries[i]);
}

uint32_t tf_retained_clear_stale(struct tf_retained *r,
		bool (*stale)(void *ctx, const char *topic, const char *label),
		void (*clear)(void *ctx, const char *topic), void *ctx)
{
	uint32_t cleared = 0;

	for (uint32_t i = 0; i < r->n; i++) {
		struct entry *e = &r->entries[i];

		if (e->label != NULL && stale(ctx, e->topic, e->label)) {
			clear(ctx, e->topic);
			forget(r, e);
			cleared++;
		}
	}
	return cleared;
}

void tf_retained_expire(struct tf_retained *r, int64_t now_ms,
		void (*clear)(void *ctx, const char *topic), void *ctx)
{
	int64_t next = NOT_DUE;

	if (now_ms < r->next_due)
		return;
	for (uint32_t i = 0; i < r->n; i++) {
		struct entry *e = &r->entries[i];

		if (e->expires_ms == NOT_DUE)
			continue;
		if (e->expires_ms <= now_ms) {
			clear(ctx, e->topic);
			forget(r, e);
		} else if (e->expires_ms < next) {
			next = e->expires_ms;
		}
	}
	r->next_due = next;
	if (r->n > 64 && r->live * 2 < r->n)
		compact(r);
}

const char *tf_retained_label(const struct tf_retained *r, const char *topic)
{
	uint32_t i;

	if (r->live == 0 || !tf_strmap_get(r->index, topic, strlen(topic), &i))
		return NULL;
	return r->entries[i].label;
}

uint32_t tf_retained_count(const struct tf_retained *r)
{
	return r->live;
}
