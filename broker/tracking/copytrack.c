#include "broker/tracking/copytrack.h"

#include <stdlib.h>
#include <string.h>

#include "broker/util/fnv.h"

struct slot {
	uint64_t key;     /* 0: empty */
	uint64_t label;
};

struct tf_copytrack {
	struct slot slots[TF_COPYTRACK_SLOTS];
};

struct tf_copytrack *tf_copytrack_new(void)
{
	return calloc(1, sizeof(struct tf_copytrack));
}

void tf_copytrack_free(struct tf_copytrack *t)
{
	free(t);
}

static uint64_t key_of(const char *topic, const void *payload, uint32_t payloadlen)
{
	uint64_t h = tf_fnv1a_separator(tf_fnv1a(TF_FNV_OFFSET, topic, strlen(topic)));

	h = tf_fnv1a(h, payload, payloadlen);
	return h ? h : 1;   /* 0 marks an empty slot */
}

static uint64_t label_of(const char *label)
{
	return tf_fnv1a(TF_FNV_OFFSET, label, strlen(label));
}

void tf_copytrack_put(struct tf_copytrack *t, const char *topic, const void *payload,
		uint32_t payloadlen, const char *label)
{
	uint64_t key = key_of(topic, payload, payloadlen);

	t->slots[key & (TF_COPYTRACK_SLOTS - 1)] = (struct slot){ key, label_of(label) };
}

bool tf_copytrack_find(const struct tf_copytrack *t, const char *topic, const void *payload,
		uint32_t payloadlen, const char *label, bool *same)
{
	uint64_t key = key_of(topic, payload, payloadlen);
	const struct slot *s = &t->slots[key & (TF_COPYTRACK_SLOTS - 1)];

	if (s->key != key)
		return false;
	*same = s->label == label_of(label);
	return true;
}
