#include "broker/tracking/msgtrack.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	const void *key;      /* NULL: empty */
	int64_t received_ms;
	int64_t forget_ms;
	uint32_t payloadlen;
	uint32_t fingerprint;
	unsigned char id[16];
	bool has_id;
};

#define MIN_MASK 1023u   /* the table's smallest size, less one */

struct tf_msgtrack {
	struct slot *slots;
	uint32_t mask;
	uint32_t count;
	uint32_t sweep_at;    /* next slot the sweep visits */
};

static uint32_t hash_ptr(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return (uint32_t)x;
}

/* The first and last bytes of the payload, so that a reused address with
 * another message is not taken for the old one. */
static uint32_t fingerprint(const void *payload, uint32_t len)
{
	uint32_t fp = len * 2654435761u;
	unsigned char head[4] = { 0 }, tail[4] = { 0 };
	uint32_t n = len < 4 ? len : 4;

	if (payload != NULL) {
		memcpy(head, payload, n);
		memcpy(tail, (const unsigned char *)payload + len - n, n);
	}
	fp ^= (uint32_t)head[0] | (uint32_t)head[1] << 8 | (uint32_t)head[2] << 16
		| (uint32_t)head[3] << 24;
	fp *= 0x85ebca6bu;
	return fp ^ ((uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16
		| (uint32_t)tail[3] << 24);
}

struct tf_msgtrack *tf_msgtrack_new(void)
{
	struct tf_msgtrack *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->mask = MIN_MASK;
	t->slots = calloc((size_t)t->mask + 1, sizeof(*t->slots));
	if (t->slots == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

void tf_msgtrack_free(struct tf_msgtrack *t)
{
	if (t == NULL)
		return;
	free(t->slots);
	free(t);
}

static struct slot *probe(const struct tf_msgtrack *t, const void *key)
{
	uint32_t i = hash_ptr(key) & t->mask;

	while (t->slots[i].key != NULL && t->slots[i].key != key)
		i = (i + 1) & t->mask;
	return &t->slots[i];
}

/* Rehashes into 2^k slots (mask = 2^k - 1). */
static bool resize(struct tf_msgtrack *t, uint32_t mask)
{
	struct tf_msgtrack resized = { NULL, mask, 0, 0 };

	resized.slots = calloc((size_t)mask + 1, sizeof(*resized.slots));
	if (resized.slots == NULL)
		return false;
	for (uint32_t i = 0; i <= t->mask; i++)
		if (t->slots[i].key != NULL)
			*probe(&resized, t->slots[i].key) = t->slots[i];
	free(t->slots);
	t->slots = resized.slots;
	t->mask = mask;
	t->sweep_at = 0;
	return true;
}

static bool grow(struct tf_msgtrack *t)
{
	if ((size_t)t->mask + 1 >= TF_MSGTRACK_MAX_ENTRIES * 2u)
		return false;
	return resize(t, t->mask * 2 + 1);
}

/* After a burst the table would keep its largest size: once a sweep has
 * gone round and it is less than an eighth full, it halves (still at most
 * a quarter full after). Out of memory keeps it as it is. */
static void shrink_if_sparse(struct tf_msgtrack *t)
{
	if (t->mask > MIN_MASK && (size_t)t->count * 8 < (size_t)t->mask + 1)
		(void)resize(t, t->mask / 2);
}

int tf_msgtrack_put(struct tf_msgtrack *t, const void *key, const void *payload,
		uint32_t payloadlen, int64_t received_ms, int64_t forget_ms,
		const unsigned char *id)
{
	struct slot *s = probe(t, key);

	if (s->key == NULL) {
		/* At most half full, so that probes stay short. */
		if ((t->count + 1) * 2 > t->mask + 1) {
			if (!grow(t))
				return -1;
			s = probe(t, key);
		}
		t->count++;
	}
	s->key = key;
	s->received_ms = received_ms;
	s->forget_ms = forget_ms;
	s->payloadlen = payloadlen;
	s->fingerprint = fingerprint(payload, payloadlen);
	s->has_id = id != NULL;
	if (id != NULL)
		memcpy(s->id, id, sizeof(s->id));
	return 0;
}

bool tf_msgtrack_full(const struct tf_msgtrack *t)
{
	return t->count >= TF_MSGTRACK_MAX_ENTRIES;
}

bool tf_msgtrack_find(const struct tf_msgtrack *t, const void *key, const void *payload,
		uint32_t payloadlen, struct tf_msgtrack_hit *hit)
{
	const struct slot *s = probe(t, key);

	if (s->key == NULL || s->payloadlen != payloadlen
			|| s->fingerprint != fingerprint(payload, payloadlen))
		return false;
	hit->received_ms = s->received_ms;
	hit->has_id = s->has_id;
	memcpy(hit->id, s->id, sizeof(hit->id));
	return true;
}

/* Removes slot i and moves later members of its probe run back, so that
 * lookups need no tombstones. */
static void remove_at(struct tf_msgtrack *t, uint32_t i)
{
	uint32_t j = i;

	t->slots[i].key = NULL;
	t->count--;
	for (;;) {
		uint32_t home;

		j = (j + 1) & t->mask;
		if (t->slots[j].key == NULL)
			return;
		home = hash_ptr(t->slots[j].key) & t->mask;
		/* Move j back into the hole unless its home lies after the hole,
		 * cyclically, up to j. */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			t->slots[i] = t->slots[j];
			t->slots[j].key = NULL;
			i = j;
		}
	}
}

void tf_msgtrack_sweep(struct tf_msgtrack *t, int64_t now_ms, uint32_t budget)
{
	bool went_round = false;

	for (uint32_t n = 0; n < budget && n <= t->mask; n++) {
		uint32_t i = t->sweep_at;

		if (t->slots[i].key != NULL && t->slots[i].forget_ms <= now_ms) {
			/* remove_at may pull a later entry into slot i: visit it
			 * again. */
			remove_at(t, i);
			continue;
		}
		t->sweep_at = (i + 1) & t->mask;
		went_round |= t->sweep_at == 0;
	}
	/* What a sweep that went round left decides the size. */
	if (went_round)
		shrink_if_sparse(t);
}

uint32_t tf_msgtrack_count(const struct tf_msgtrack *t)
{
	return t->count;
}

size_t tf_msgtrack_bytes(const struct tf_msgtrack *t)
{
	return sizeof(*t) + ((size_t)t->mask + 1) * sizeof(*t->slots);
}
