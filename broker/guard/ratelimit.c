#include "broker/guard/ratelimit.h"

#include <stdlib.h>
#include <string.h>

#include "broker/util/growable.h"
#include "broker/util/strmap.h"

/* Buckets idle this long are full again and need not be kept: the table is
 * rebuilt without them once it holds this many. */
#define REBUILD_AT 65536
#define KEY_MAX 136  /* a policy index and a username (an id, at most 128 bytes) */

struct bucket {
	double tokens;
	int64_t last_ms;
};

struct key {
	uint32_t len;
	char bytes[KEY_MAX];
};

struct tf_ratelimit {
	struct tf_strmap *index;   /* (policy, client) -> bucket */
	struct bucket *buckets;
	struct key *keys;          /* of each bucket, for rebuilding the index */
	uint32_t n, cap;           /* cap: room in both arrays */
	uint32_t rebuild_at;
};

struct tf_ratelimit *tf_ratelimit_new(void)
{
	struct tf_ratelimit *r = calloc(1, sizeof(*r));

	if (r == NULL || (r->index = tf_strmap_new()) == NULL) {
		free(r);
		return NULL;
	}
	r->rebuild_at = REBUILD_AT;
	return r;
}

void tf_ratelimit_free(struct tf_ratelimit *r)
{
	if (r == NULL)
		return;
	tf_strmap_free(r->index);
	free(r->buckets);
	free(r->keys);
	free(r);
}

void tf_ratelimit_clear(struct tf_ratelimit *r)
{
	struct tf_strmap *fresh = tf_strmap_new();

	/* Without memory for a fresh index the old one stays: buckets then
	 * carry over, which only ever limits more. */
	if (fresh == NULL)
		return;
	tf_strmap_free(r->index);
	r->index = fresh;
	r->n = 0;
}

/* Makes room for one more bucket and its key. A failure leaves r->cap as it
 * was: buckets may then be bigger than r->cap says, which is harmless. */
static bool make_room(struct tf_ratelimit *r)
{
	uint32_t buckets_cap = r->cap, keys_cap = r->cap;

	if (!tf_grow(&r->buckets, &buckets_cap, r->n, 64, UINT32_MAX)
			|| !tf_grow(&r->keys, &keys_cap, r->n, 64, UINT32_MAX))
		return false;
	r->cap = keys_cap;
	return true;
}

struct idle_buckets {
	const struct tf_ratelimit *r;
	int64_t now_ms;
};

/* A bucket untouched for a second is full again: dropping it changes
 * nothing. */
static bool bucket_idle(const struct bucket *b, int64_t now_ms)
{
	return now_ms - b->last_ms >= 1000;
}

static const char *busy_bucket_key(void *ctx, uint32_t i, size_t *len)
{
	const struct idle_buckets *idle = ctx;

	*len = idle->r->keys[i].len;
	return bucket_idle(&idle->r->buckets[i], idle->now_ms) ? NULL : idle->r->keys[i].bytes;
}

/* Rebuilds the table without idle buckets. */
static void drop_idle(struct tf_ratelimit *r, int64_t now_ms)
{
	struct idle_buckets idle = { r, now_ms };
	struct tf_strmap *fresh = tf_strmap_renumbered(r->n, busy_bucket_key, &idle);
	uint32_t kept = 0;

	if (fresh == NULL)
		return;
	for (uint32_t i = 0; i < r->n; i++) {
		if (bucket_idle(&r->buckets[i], now_ms))
			continue;
		r->buckets[kept] = r->buckets[i];
		r->keys[kept] = r->keys[i];
		kept++;
	}
	tf_strmap_free(r->index);
	r->index = fresh;
	r->n = kept;
	/* Mostly busy publishers: let the table grow before trying again. */
	r->rebuild_at = kept * 2 > REBUILD_AT ? kept * 2 : REBUILD_AT;
}

bool tf_ratelimit_take(struct tf_ratelimit *r, uint32_t policy, const char *client,
		uint32_t per_second, int64_t now_ms)
{
	char key[KEY_MAX];
	size_t len = strlen(client);
	struct bucket *b;
	uint32_t i;
	int added;

	if (len > KEY_MAX - sizeof(policy))
		len = KEY_MAX - sizeof(policy);
	memcpy(key, &policy, sizeof(policy));
	memcpy(key + sizeof(policy), client, len);
	len += sizeof(policy);
	if (!tf_strmap_get(r->index, key, len, &i)) {
		if (r->n >= r->rebuild_at)
			drop_idle(r, now_ms);
		if (!make_room(r))
			return false;
		i = r->n;
		added = tf_strmap_put(r->index, key, len, i, NULL);
		if (added < 0)
			return false;
		r->buckets[i].tokens = per_second;
		r->buckets[i].last_ms = now_ms;
		r->keys[i].len = (uint32_t)len;
		memcpy(r->keys[i].bytes, key, len);
		r->n++;
	}
	b = &r->buckets[i];
	if (now_ms > b->last_ms) {
		b->tokens += (double)(now_ms - b->last_ms) * per_second / 1000.0;
		if (b->tokens > per_second)
			b->tokens = per_second;
		b->last_ms = now_ms;
	}
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}
