#include "broker/tracking/qos2track.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/util/fnv.h"

struct pending {
	uint64_t key;
	uint64_t client_key;
	const void *connection;
	const void *stored;
	int64_t received_ms;
	struct tf_qos2_pending first; /* its stamp points into buf and text */
	struct tf_stamp_buf buf;
	char *text;                 /* broker, org, client, policy, topic, redirect */
};

struct tf_qos2track {
	struct pending items[TF_QOS2_MAX_PENDING];
	uint32_t n;
	uint64_t forgotten;
};

struct tf_qos2track *tf_qos2track_new(void)
{
	return calloc(1, sizeof(struct tf_qos2track));
}

void tf_qos2track_free(struct tf_qos2track *t)
{
	if (t == NULL)
		return;
	for (uint32_t i = 0; i < t->n; i++)
		free(t->items[i].text);
	free(t);
}

/* FNV-1a over the three parts, each followed by a separator byte. */
uint64_t tf_qos2_key(const char *client_id, const char *topic, const void *payload,
		uint32_t payloadlen)
{
	uint64_t h = TF_FNV_OFFSET;

	h = tf_fnv1a_separator(tf_fnv1a(h, client_id, strlen(client_id)));
	h = tf_fnv1a_separator(tf_fnv1a(h, topic, strlen(topic)));
	return tf_fnv1a_separator(tf_fnv1a(h, payload, payloadlen));
}

uint64_t tf_qos2_client_key(const char *client_id)
{
	return tf_fnv1a_separator(tf_fnv1a(TF_FNV_OFFSET, client_id, strlen(client_id)));
}

const struct tf_qos2_pending *tf_qos2track_retransmitted(const struct tf_qos2track *t,
		uint64_t key, const void *connection)
{
	for (uint32_t i = 0; i < t->n; i++)
		if (t->items[i].key == key && t->items[i].connection != connection)
			return &t->items[i].first;
	return NULL;
}

/* Copies the stamp (the strings that do not live in its tf_stamp_buf
 * into text) and the redirect. */
static bool copy_first(struct pending *p, const struct tf_stamp *st, const char *redirect)
{
	const char *parts[6] = { st->broker, st->org, st->client, st->policy, st->topic,
		redirect ? redirect : "" };
	const char **slots[6] = { &p->first.stamp.broker, &p->first.stamp.org,
		&p->first.stamp.client, &p->first.stamp.policy, &p->first.stamp.topic,
		&p->first.redirect };
	size_t len = 0;
	char *at;

	for (int i = 0; i < 6; i++)
		len += strlen(parts[i]) + 1;
	p->text = malloc(len);
	if (p->text == NULL)
		return false;
	snprintf(p->buf.id, sizeof(p->buf.id), "%s", st->id);
	snprintf(p->buf.kid, sizeof(p->buf.kid), "%s", st->kid);
	snprintf(p->buf.ts, sizeof(p->buf.ts), "%s", st->ts);
	snprintf(p->buf.sha256, sizeof(p->buf.sha256), "%s", st->sha256);
	snprintf(p->buf.seq, sizeof(p->buf.seq), "%s", st->seq);
	snprintf(p->buf.sig, sizeof(p->buf.sig), "%s", st->sig);
	p->first.stamp = (struct tf_stamp){ "1", p->buf.id, NULL, p->buf.kid, p->buf.ts, NULL,
		NULL, NULL, NULL, p->buf.sha256, p->buf.seq, p->buf.sig, NULL };
	at = p->text;
	for (int i = 0; i < 6; i++) {
		size_t n = strlen(parts[i]) + 1;

		memcpy(at, parts[i], n);
		*slots[i] = at;
		at += n;
	}
	if (redirect == NULL)
		p->first.redirect = NULL;
	return true;
}

static void remove_at(struct tf_qos2track *t, uint32_t i)
{
	free(t->items[i].text);
	t->n--;
	if (i == t->n)
		return;
	t->items[i] = t->items[t->n];
	/* The moved stamp points into its own entry's buffer: repoint it. */
	t->items[i].first.stamp.id = t->items[i].buf.id;
	t->items[i].first.stamp.kid = t->items[i].buf.kid;
	t->items[i].first.stamp.ts = t->items[i].buf.ts;
	t->items[i].first.stamp.sha256 = t->items[i].buf.sha256;
	t->items[i].first.stamp.seq = t->items[i].buf.seq;
	t->items[i].first.stamp.sig = t->items[i].buf.sig;
}

/* The index of the oldest message: of connection when it has
 * TF_QOS2_PER_CONNECTION, else of the table when it is full; or -1 when
 * there is room. */
static int64_t room_to_make(const struct tf_qos2track *t, const void *connection)
{
	int64_t oldest = -1, oldest_of_connection = -1;
	uint32_t of_connection = 0;

	for (uint32_t i = 0; i < t->n; i++) {
		const struct pending *p = &t->items[i];

		if (oldest < 0 || p->received_ms < t->items[oldest].received_ms)
			oldest = i;
		if (p->connection != connection)
			continue;
		of_connection++;
		if (oldest_of_connection < 0
				|| p->received_ms < t->items[oldest_of_connection].received_ms)
			oldest_of_connection = i;
	}
	if (of_connection >= TF_QOS2_PER_CONNECTION)
		return oldest_of_connection;
	return t->n == TF_QOS2_MAX_PENDING ? oldest : -1;
}

bool tf_qos2track_put(struct tf_qos2track *t, uint64_t key, uint64_t client_key,
		const void *connection, const void *stored, const struct tf_stamp *stamp, bool hold,
		const char *redirect, int64_t now_ms)
{
	int64_t forget = room_to_make(t, connection);
	struct pending *p;

	if (forget >= 0) {
		remove_at(t, (uint32_t)forget);
		t->forgotten++;
	}
	p = &t->items[t->n];
	p->key = key;
	p->client_key = client_key;
	p->connection = connection;
	p->stored = stored;
	p->received_ms = now_ms;
	p->first.hold = hold;
	if (!copy_first(p, stamp, redirect))
		return false;
	t->n++;
	return true;
}

void tf_qos2track_release(struct tf_qos2track *t, const void *stored)
{
	for (uint32_t i = 0; i < t->n; i++) {
		if (t->items[i].stored == stored) {
			remove_at(t, i);
			return;
		}
	}
}

void tf_qos2track_moved_on(struct tf_qos2track *t, uint64_t client_key, const void *connection)
{
	for (uint32_t i = 0; i < t->n;) {
		if (t->items[i].client_key == client_key && t->items[i].connection != connection)
			remove_at(t, i);
		else
			i++;
	}
}

void tf_qos2track_disconnected(struct tf_qos2track *t, const void *connection, int64_t now_ms)
{
	for (uint32_t i = 0; i < t->n;) {
		if (t->items[i].connection == connection
				&& now_ms - t->items[i].received_ms >= TF_QOS2_SETTLED_MS)
			remove_at(t, i);
		else
			i++;
	}
}

void tf_qos2track_expire(struct tf_qos2track *t, int64_t now_ms)
{
	for (uint32_t i = 0; i < t->n;) {
		if (now_ms - t->items[i].received_ms >= TF_QOS2_KEEP_MS)
			remove_at(t, i);
		else
			i++;
	}
}

uint32_t tf_qos2track_count(const struct tf_qos2track *t)
{
	return t->n;
}

uint64_t tf_qos2track_forgotten(const struct tf_qos2track *t)
{
	return t->forgotten;
}

uint32_t tf_qos2track_unreleased_since(const struct tf_qos2track *t, const void *connection,
		int64_t since_ms)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < t->n; i++)
		if (t->items[i].connection == connection && t->items[i].received_ms >= since_ms)
			n++;
	return n;
}
