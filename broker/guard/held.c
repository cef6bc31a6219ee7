#include "broker/guard/held.h"

#include <stdlib.h>
#include <string.h>

#define HELD_MAGIC "trustflow-held-1\n"
#define HELD_PARTS 14

/* The parts of a record, in order: topic, payload, qos, retain, then the
 * stamp's id, broker, kid, ts, org, client, policy, sha256, seq, sig (its
 * v is always 1 and its topic is the message's). */
static void parts_of(const struct tf_held *m, const void *parts[HELD_PARTS],
		uint32_t lens[HELD_PARTS], char qos[2], char retain[2])
{
	const char *stamp[10] = { m->stamp.id, m->stamp.broker, m->stamp.kid, m->stamp.ts,
		m->stamp.org, m->stamp.client, m->stamp.policy, m->stamp.sha256, m->stamp.seq,
		m->stamp.sig };

	qos[0] = (char)('0' + m->qos);
	qos[1] = '\0';
	retain[0] = m->retain ? '1' : '0';
	retain[1] = '\0';
	parts[0] = m->topic;
	lens[0] = (uint32_t)strlen(m->topic);
	parts[1] = m->payload;
	lens[1] = m->payloadlen;
	parts[2] = qos;
	lens[2] = 1;
	parts[3] = retain;
	lens[3] = 1;
	for (int i = 0; i < 10; i++) {
		parts[4 + i] = stamp[i];
		lens[4 + i] = (uint32_t)strlen(stamp[i]);
	}
}

void *tf_held_encode(const struct tf_held *m, uint32_t *len)
{
	const void *parts[HELD_PARTS];
	uint32_t lens[HELD_PARTS];
	char qos[2], retain[2];
	size_t size = sizeof(HELD_MAGIC) - 1;
	unsigned char *out, *p;

	if (m->payloadlen > TF_HELD_MAX_PAYLOAD)
		return NULL;
	parts_of(m, parts, lens, qos, retain);
	for (int i = 0; i < HELD_PARTS; i++)
		size += 4 + lens[i];
	out = malloc(size);
	if (out == NULL)
		return NULL;
	memcpy(out, HELD_MAGIC, sizeof(HELD_MAGIC) - 1);
	p = out + sizeof(HELD_MAGIC) - 1;
	for (int i = 0; i < HELD_PARTS; i++) {
		memcpy(p, &lens[i], 4);
		if (lens[i] > 0)
			memcpy(p + 4, parts[i], lens[i]);
		p += 4 + lens[i];
	}
	*len = (uint32_t)size;
	return out;
}

bool tf_held_decode(const void *record, size_t len, struct tf_held *m, char *scratch,
		size_t scratch_cap)
{
	const unsigned char *p = record, *end = p + len;
	const char *strings[HELD_PARTS];
	char *out = scratch, *out_end = scratch + scratch_cap;

	memset(m, 0, sizeof(*m));
	if (len < sizeof(HELD_MAGIC) - 1 || memcmp(p, HELD_MAGIC, sizeof(HELD_MAGIC) - 1) != 0)
		return false;
	p += sizeof(HELD_MAGIC) - 1;
	for (int i = 0; i < HELD_PARTS; i++) {
		uint32_t n;

		if (end - p < 4)
			return false;
		memcpy(&n, p, 4);
		p += 4;
		if ((size_t)(end - p) < n)
			return false;
		if (i == 1) {
			m->payload = p;
			m->payloadlen = n;
			strings[i] = NULL;
		} else {
			/* Strings hold no NUL: the stamp's fields never do. */
			if ((size_t)(out_end - out) < (size_t)n + 1 || memchr(p, '\0', n) != NULL)
				return false;
			memcpy(out, p, n);
			out[n] = '\0';
			strings[i] = out;
			out += n + 1;
		}
		p += n;
	}
	if (p != end || (strings[2][0] < '0' || strings[2][0] > '2') || strings[2][1] != '\0'
			|| (strings[3][0] != '0' && strings[3][0] != '1'))
		return false;
	m->topic = strings[0];
	m->qos = strings[2][0] - '0';
	m->retain = strings[3][0] == '1';
	m->stamp = (struct tf_stamp){ "1", strings[4], strings[5], strings[6], strings[7],
		strings[8], strings[9], strings[10], m->topic, strings[11], strings[12], strings[13], NULL };
	return true;
}
