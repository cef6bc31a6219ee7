#include "broker/util/strmap.h"

#include <stdlib.h>
#include <string.h>

#include "broker/util/arena.h"
#include "broker/util/fnv.h"
#include "broker/util/growable.h"

struct entry {
	const char *key;   /* in the arena */
	uint32_t len;
	uint32_t value;
};

struct slot {
	uint32_t hash;
	uint32_t entry;    /* index + 1 into entries; 0 = empty */
};

struct tf_strmap {
	struct slot *slots;
	size_t mask;       /* slot count - 1; the count is a power of two */
	struct entry *entries;
	uint32_t count, cap;
	struct tf_arena keys;
};

/* FNV-1a, folded to the 32 bits a slot index needs. */
static uint32_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = tf_fnv1a(TF_FNV_OFFSET, s, len);

	return (uint32_t)(h ^ (h >> 32));
}

struct tf_strmap *tf_strmap_new(void)
{
	struct tf_strmap *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->mask = 15;
	m->slots = calloc(m->mask + 1, sizeof(*m->slots));
	if (m->slots == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

struct tf_strmap *tf_strmap_renumbered(uint32_t n, tf_strmap_kept_key kept_key, void *ctx)
{
	struct tf_strmap *m = tf_strmap_new();
	uint32_t kept = 0;

	for (uint32_t i = 0; i < n && m != NULL; i++) {
		size_t len;
		const char *key = kept_key(ctx, i, &len);

		if (key != NULL && tf_strmap_put(m, key, len, kept++, NULL) != 1) {
			tf_strmap_free(m);
			m = NULL;
		}
	}
	return m;
}

void tf_strmap_free(struct tf_strmap *m)
{
	if (m == NULL)
		return;
	free(m->slots);
	free(m->entries);
	tf_arena_free(&m->keys);
	free(m);
}

static struct slot *find_slot(const struct tf_strmap *m, const char *key, size_t len,
		uint32_t hash)
{
	size_t i = hash & m->mask;

	for (;;) {
		struct slot *s = &m->slots[i];

		if (s->entry == 0)
			return s;
		if (s->hash == hash) {
			const struct entry *e = &m->entries[s->entry - 1];

			if (e->len == len && memcmp(e->key, key, len) == 0)
				return s;
		}
		i = (i + 1) & m->mask;
	}
}

/* Doubles the slot table. Returns false when out of memory. */
static bool grow_slots(struct tf_strmap *m)
{
	size_t new_mask = m->mask * 2 + 1;
	struct slot *slots = calloc(new_mask + 1, sizeof(*slots));

	if (slots == NULL)
		return false;
	for (size_t i = 0; i <= m->mask; i++) {
		struct slot s = m->slots[i];
		size_t j;

		if (s.entry == 0)
			continue;
		for (j = s.hash & new_mask; slots[j].entry != 0; j = (j + 1) & new_mask)
			;
		slots[j] = s;
	}
	free(m->slots);
	m->slots = slots;
	m->mask = new_mask;
	return true;
}

int tf_strmap_put(struct tf_strmap *m, const char *key, size_t len, uint32_t value,
		uint32_t *existing)
{
	uint32_t hash = hash_bytes(key, len);
	struct slot *s = find_slot(m, key, len, hash);
	struct entry *e;

	if (s->entry != 0) {
		if (existing != NULL)
			*existing = m->entries[s->entry - 1].value;
		return 0;
	}
	/* Slots hold an entry's index + 1 in 32 bits. */
	if (len > UINT32_MAX || !tf_grow(&m->entries, &m->cap, m->count, 16, UINT32_MAX - 1))
		return -1;
	/* Keep the table at most 3/4 full so that probes stay short (the slot
	 * count is a power of two, at least 16). */
	if (m->count + 1 > (m->mask + 1) / 4 * 3) {
		if (!grow_slots(m))
			return -1;
		s = find_slot(m, key, len, hash);
	}
	e = &m->entries[m->count];
	e->key = tf_arena_strndup(&m->keys, key, len);
	if (e->key == NULL)
		return -1;
	e->len = (uint32_t)len;
	e->value = value;
	s->hash = hash;
	s->entry = (uint32_t)++m->count;
	return 1;
}

bool tf_strmap_get(const struct tf_strmap *m, const char *key, size_t len, uint32_t *value)
{
	const struct slot *s = find_slot(m, key, len, hash_bytes(key, len));

	if (s->entry == 0)
		return false;
	*value = m->entries[s->entry - 1].value;
	return true;
}

size_t tf_strmap_count(const struct tf_strmap *m)
{
	return m->count;
}

size_t tf_strmap_bytes(const struct tf_strmap *m)
{
	return (m->mask + 1) * sizeof(struct slot) + m->cap * sizeof(struct entry) + m->keys.total;
}
