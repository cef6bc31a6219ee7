#include "broker/guard/held.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Format 1 holds a message with a format-1 stamp; format 2 a relayed one:
 * the same parts, then the stamp's prev, the number of hop records (in
 * decimal) and the records. */
#define HELD_MAGIC "trustflow-held-1\n"
#define HELD_MAGIC_RELAYED "trustflow-held-2\n"
#define MAGIC_LEN (sizeof(HELD_MAGIC) - 1)
#define HELD_PARTS 14
#define HELD_PARTS_MAX (HELD_PARTS + 2 + TF_CHAIN_MAX)

/* The parts of a record, in order: topic, payload, qos, retain, then the
 * stamp's id, broker, kid, ts, org, client, policy, sha256, seq, sig (its
 * v is 1, or 2 in format 2, and its topic is the message's); in format 2
 * then prev, the count of hop records, and the records. Returns how many. */
static int parts_of(const struct tf_held *m, const void *parts[HELD_PARTS_MAX],
		uint32_t lens[HELD_PARTS_MAX], char qos[2], char retain[2], char count[12])
{
	int n = HELD_PARTS;

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
	if (m->stamp.prev == NULL)
		return n;
	snprintf(count, 12, "%u", (unsigned)m->n_hops);
	parts[n] = m->stamp.prev;
	lens[n++] = (uint32_t)strlen(m->stamp.prev);
	parts[n] = count;
	lens[n++] = (uint32_t)strlen(count);
	for (uint32_t i = 0; i < m->n_hops && i < TF_CHAIN_MAX; i++) {
		parts[n] = m->hops[i];
		lens[n++] = (uint32_t)strlen(m->hops[i]);
	}
	return n;
}

void *tf_held_encode(const struct tf_held *m, uint32_t *len)
{
	const void *parts[HELD_PARTS_MAX];
	uint32_t lens[HELD_PARTS_MAX];
	char qos[2], retain[2], count[12];
	size_t size = MAGIC_LEN;
	unsigned char *out, *p;
	int n;

	if (m->payloadlen > TF_HELD_MAX_PAYLOAD || m->n_hops > TF_CHAIN_MAX)
		return NULL;
	n = parts_of(m, parts, lens, qos, retain, count);
	for (int i = 0; i < n; i++)
		size += 4 + lens[i];
	out = malloc(size);
	if (out == NULL)
		return NULL;
	memcpy(out, m->stamp.prev == NULL ? HELD_MAGIC : HELD_MAGIC_RELAYED, MAGIC_LEN);
	p = out + MAGIC_LEN;
	for (int i = 0; i < n; i++) {
		memcpy(p, &lens[i], 4);
		if (lens[i] > 0)
			memcpy(p + 4, parts[i], lens[i]);
		p += 4 + lens[i];
	}
	*len = (uint32_t)size;
	return out;
}

/* Reads the next part at *p (before end): the payload's bytes stay in the
 * record, every other part is copied into *out as a string. */
static bool next_part(const unsigned char **p, const unsigned char *end, bool bytes,
		const void **data, uint32_t *len, char **out, const char *out_end)
{
	uint32_t n;

	if (end - *p < 4)
		return false;
	memcpy(&n, *p, 4);
	*p += 4;
	if ((size_t)(end - *p) < n)
		return false;
	*len = n;
	if (bytes) {
		*data = *p;
	} else {
		/* Strings hold no NUL: the stamp's fields never do. */
		if ((size_t)(out_end - *out) < (size_t)n + 1 || memchr(*p, '\0', n) != NULL)
			return false;
		memcpy(*out, *p, n);
		(*out)[n] = '\0';
		*data = *out;
		*out += n + 1;
	}
	*p += n;
	return true;
}

bool tf_held_decode(const void *record, size_t len, struct tf_held *m, char *scratch,
		size_t scratch_cap)
{
	const unsigned char *p = record, *end = p + len;
	const char *strings[HELD_PARTS_MAX];
	char *out = scratch, *out_end = scratch + scratch_cap;
	bool relayed;
	int n = HELD_PARTS;

	memset(m, 0, sizeof(*m));
	if (len < MAGIC_LEN)
		return false;
	relayed = memcmp(p, HELD_MAGIC_RELAYED, MAGIC_LEN) == 0;
	if (!relayed && memcmp(p, HELD_MAGIC, MAGIC_LEN) != 0)
		return false;
	p += MAGIC_LEN;
	for (int i = 0; i < n; i++) {
		const void *data;
		uint32_t part_len;

		if (!next_part(&p, end, i == 1, &data, &part_len, &out, out_end))
			return false;
		if (i == 1) {
			m->payload = data;
			m->payloadlen = part_len;
		}
		strings[i] = i == 1 ? NULL : data;
		/* Format 2: after prev, the count says how many records follow. */
		if (relayed && n == HELD_PARTS && i == HELD_PARTS - 1)
			n = HELD_PARTS + 2;
		else if (relayed && i == HELD_PARTS + 1) {
			char *stop;
			unsigned long hops = strtoul(strings[i], &stop, 10);

			if (*strings[i] == '\0' || *stop != '\0' || hops == 0 || hops > TF_CHAIN_MAX)
				return false;
			m->n_hops = (uint32_t)hops;
			n = HELD_PARTS + 2 + (int)hops;
		}
	}
	if (p != end || (strings[2][0] < '0' || strings[2][0] > '2') || strings[2][1] != '\0'
			|| (strings[3][0] != '0' && strings[3][0] != '1'))
		return false;
	m->topic = strings[0];
	m->qos = strings[2][0] - '0';
	m->retain = strings[3][0] == '1';
	m->stamp = (struct tf_stamp){ relayed ? "2" : "1", strings[4], strings[5], strings[6],
		strings[7], strings[8], strings[9], strings[10], m->topic, strings[11], strings[12],
		strings[13], relayed ? strings[HELD_PARTS] : NULL };
	for (uint32_t i = 0; i < m->n_hops; i++)
		m->hops[i] = strings[HELD_PARTS + 2 + i];
	return true;
}
