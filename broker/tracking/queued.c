#include "broker/tracking/queued.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "broker/util/growable.h"
#include "broker/util/strmap.h"

/* Client ids the table names at once before it forgets those with
 * nothing queued, and policy labels it keeps (a few per policy version). */
#define SESSIONS_MAX 65536u
#define LABELS_MAX 65536u

struct entry {
	unsigned char id[16];
	uint64_t fingerprint;
	uint32_t label;
};

struct session {
	char *client_id;
	uint32_t identity;        /* index in identities */
	struct entry *entries;    /* oldest first */
	uint32_t n, cap;
	int64_t last_ms;          /* when the newest entry came */
	bool resumed;
};

struct identity {
	char *name;
	uint32_t count;           /* entries of its sessions */
};

struct tf_queued {
	struct tf_strmap *by_client;   /* client id -> index in sessions */
	struct session *sessions;
	uint32_t n_sessions, cap_sessions;
	struct tf_strmap *identity_ids;   /* identity -> index in identities */
	struct identity *identities;
	uint32_t n_identities, cap_identities;
	struct tf_strmap *label_ids;   /* label -> index in labels */
	char **labels;
	uint32_t n_labels, cap_labels;
	uint32_t *resumed;             /* indexes of sessions resumed since the last settle */
	uint32_t n_resumed, cap_resumed;
	uint32_t count;
	uint64_t forgotten;
};

struct tf_queued *tf_queued_new(void)
{
	struct tf_queued *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->by_client = tf_strmap_new();
	q->identity_ids = tf_strmap_new();
	q->label_ids = tf_strmap_new();
	if (q->by_client == NULL || q->identity_ids == NULL || q->label_ids == NULL) {
		tf_queued_free(q);
		return NULL;
	}
	return q;
}

void tf_queued_free(struct tf_queued *q)
{
	if (q == NULL)
		return;
	for (uint32_t i = 0; i < q->n_sessions; i++) {
		free(q->sessions[i].client_id);
		free(q->sessions[i].entries);
	}
	for (uint32_t i = 0; i < q->n_identities; i++)
		free(q->identities[i].name);
	for (uint32_t i = 0; i < q->n_labels; i++)
		free(q->labels[i]);
	free(q->identities);
	free(q->sessions);
	free(q->labels);
	free(q->resumed);
	tf_strmap_free(q->by_client);
	tf_strmap_free(q->identity_ids);
	tf_strmap_free(q->label_ids);
	free(q);
}

uint64_t tf_queued_fingerprint(const char *topic, const void *payload, uint32_t payloadlen)
{
	/* SHA-256, not a fast hash: another client must not be able to make
	 * its message pass for one queued for someone else. */
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char digest[32] = { 0 }, separator = 0xff;
	uint64_t fp = 0;

	if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1
			&& EVP_DigestUpdate(ctx, topic, strlen(topic)) == 1
			&& EVP_DigestUpdate(ctx, &separator, 1) == 1
			&& EVP_DigestUpdate(ctx, payload, payloadlen) == 1)
		EVP_DigestFinal_ex(ctx, digest, NULL);
	EVP_MD_CTX_free(ctx);
	for (int i = 0; i < 8; i++)
		fp = fp << 8 | digest[i];
	return fp;
}

static struct session *find(const struct tf_queued *q, const char *client_id)
{
	uint32_t at;

	return tf_strmap_get(q->by_client, client_id, strlen(client_id), &at)
		? &q->sessions[at] : NULL;
}

static void empty(struct tf_queued *q, struct session *s)
{
	q->count -= s->n;
	q->identities[s->identity].count -= s->n;
	s->n = 0;
	free(s->entries);
	s->entries = NULL;
	s->cap = 0;
}

static int by_time(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Forgets sessions of the identity with the most entries, those whose
 * newest message is oldest: a quarter of its sessions (at least one), so
 * that a full table is not scanned for every message. So an identity
 * that fills the table, through as many client ids as it likes, pushes
 * out its own entries, not those of others. Resumed sessions are kept. */
static void forget_heaviest(struct tf_queued *q)
{
	int64_t *times = malloc(q->n_sessions * sizeof(*times) + 1), cutoff;
	uint32_t heaviest = 0, n = 0;

	for (uint32_t i = 1; i < q->n_identities; i++)
		if (q->identities[i].count > q->identities[heaviest].count)
			heaviest = i;
	for (uint32_t i = 0; i < q->n_sessions && times != NULL; i++)
		if (q->sessions[i].identity == heaviest && q->sessions[i].n > 0
				&& !q->sessions[i].resumed)
			times[n++] = q->sessions[i].last_ms;
	if (n == 0) {
		free(times);
		return;
	}
	qsort(times, n, sizeof(*times), by_time);
	cutoff = times[n / 4];
	free(times);
	for (uint32_t i = 0; i < q->n_sessions; i++) {
		struct session *s = &q->sessions[i];

		if (s->identity == heaviest && s->n > 0 && !s->resumed && s->last_ms <= cutoff) {
			empty(q, s);
			q->forgotten++;
		}
	}
}

static const char *identity_with_entries(void *ctx, uint32_t i, size_t *len)
{
	const struct identity *id = &((const struct tf_queued *)ctx)->identities[i];

	*len = strlen(id->name);
	return id->count > 0 ? id->name : NULL;
}

/* Drops the identities no entry belongs to any more (the map keeps every
 * key it was given), renumbering the sessions'. Out of memory, it leaves
 * them all. */
static void drop_idle_identities(struct tf_queued *q)
{
	uint32_t *renumber = malloc(q->n_identities * sizeof(*renumber) + 1), kept = 0;
	struct tf_strmap *fresh = renumber != NULL
		? tf_strmap_renumbered(q->n_identities, identity_with_entries, q) : NULL;

	if (fresh == NULL) {
		free(renumber);
		return;
	}
	for (uint32_t i = 0; i < q->n_identities; i++) {
		if (q->identities[i].count == 0) {
			free(q->identities[i].name);
			continue;
		}
		renumber[i] = kept;
		q->identities[kept++] = q->identities[i];
	}
	for (uint32_t i = 0; i < q->n_sessions; i++)
		q->sessions[i].identity = renumber[q->sessions[i].identity];
	free(renumber);
	tf_strmap_free(q->identity_ids);
	q->identity_ids = fresh;
	q->n_identities = kept;
}

static const char *session_with_entries(void *ctx, uint32_t i, size_t *len)
{
	const struct session *s = &((const struct tf_queued *)ctx)->sessions[i];

	*len = strlen(s->client_id);
	return s->n > 0 ? s->client_id : NULL;
}

/* Makes room for an entry, or for a session: forgets sessions of the
 * heaviest identity when a bound is reached, then drops the names of
 * sessions with nothing queued and of identities with no session left
 * (the maps keep every key they were given). While sessions are resumed
 * the names stay: q->resumed holds indexes. Out of memory, the names
 * stay too. */
static bool make_room(struct tf_queued *q)
{
	struct tf_strmap *fresh;
	uint32_t kept = 0;

	if (q->count >= TF_QUEUED_MAX || q->n_sessions >= SESSIONS_MAX)
		forget_heaviest(q);
	if (q->n_sessions < SESSIONS_MAX)
		return q->count < TF_QUEUED_MAX;
	if (q->n_resumed > 0)
		return false;
	fresh = tf_strmap_renumbered(q->n_sessions, session_with_entries, q);
	if (fresh == NULL)
		return false;
	for (uint32_t i = 0; i < q->n_sessions; i++) {
		struct session *s = &q->sessions[i];

		if (s->n == 0) {
			free(s->client_id);
			free(s->entries);
			continue;
		}
		q->sessions[kept++] = *s;
	}
	tf_strmap_free(q->by_client);
	q->by_client = fresh;
	q->n_sessions = kept;
	drop_idle_identities(q);
	return kept < SESSIONS_MAX && q->count < TF_QUEUED_MAX;
}

/* The index of identity, added when new; false when out of memory. */
static bool identity_index(struct tf_queued *q, const char *identity, uint32_t *out)
{
	size_t len = strlen(identity);

	if (tf_strmap_get(q->identity_ids, identity, len, out))
		return true;
	if (!tf_grow(&q->identities, &q->cap_identities, q->n_identities, 16, SESSIONS_MAX + 1))
		return false;
	q->identities[q->n_identities] = (struct identity){ .name = strdup(identity) };
	if (q->identities[q->n_identities].name == NULL)
		return false;
	if (tf_strmap_put(q->identity_ids, identity, len, q->n_identities, NULL) != 1) {
		free(q->identities[q->n_identities].name);
		return false;
	}
	*out = q->n_identities++;
	return true;
}

/* The session of client_id, added for identity when new. A client id
 * taken over by another identity (mosquitto lets a login take over a
 * session of the same client id) counts under the new one from now on. */
static struct session *find_or_add(struct tf_queued *q, const char *client_id,
		const char *identity)
{
	struct session *s = find(q, client_id);
	size_t len = strlen(client_id);
	uint32_t who;

	if (s != NULL && s->n > 0 && strcmp(q->identities[s->identity].name, identity) == 0)
		return s;
	if (s == NULL && q->n_sessions >= SESSIONS_MAX && !make_room(q))
		return NULL;
	if (!identity_index(q, identity, &who))
		return NULL;
	if (s != NULL) {
		if (s->n > 0) {
			empty(q, s);
			q->forgotten++;
		}
		s->identity = who;
		return s;
	}
	if (!tf_grow(&q->sessions, &q->cap_sessions, q->n_sessions, 64, SESSIONS_MAX))
		return NULL;
	s = &q->sessions[q->n_sessions];
	*s = (struct session){ .client_id = strdup(client_id), .identity = who };
	if (s->client_id == NULL)
		return NULL;
	if (tf_strmap_put(q->by_client, client_id, len, q->n_sessions, NULL) != 1) {
		free(s->client_id);
		return NULL;
	}
	q->n_sessions++;
	return s;
}

static bool label_index(struct tf_queued *q, const char *label, uint32_t *out)
{
	size_t len = strlen(label);

	if (tf_strmap_get(q->label_ids, label, len, out))
		return true;
	if (!tf_grow(&q->labels, &q->cap_labels, q->n_labels, 16, LABELS_MAX))
		return false;
	q->labels[q->n_labels] = strdup(label);
	if (q->labels[q->n_labels] == NULL)
		return false;
	if (tf_strmap_put(q->label_ids, label, len, q->n_labels, NULL) != 1) {
		free(q->labels[q->n_labels]);
		return false;
	}
	*out = q->n_labels++;
	return true;
}

bool tf_queued_put(struct tf_queued *q, const char *client_id, const char *identity,
		const unsigned char id[16], uint64_t fingerprint, const char *label, int64_t now)
{
	struct session *s;
	uint32_t at;

	if (!label_index(q, label, &at))
		return false;
	if (q->count >= TF_QUEUED_MAX && !make_room(q))
		return false;
	s = find_or_add(q, client_id, identity);
	if (s == NULL || s->n >= TF_QUEUED_PER_SESSION
			|| !tf_grow(&s->entries, &s->cap, s->n, 8, TF_QUEUED_PER_SESSION))
		return false;
	memcpy(s->entries[s->n].id, id, 16);
	s->entries[s->n].fingerprint = fingerprint;
	s->entries[s->n].label = at;
	s->n++;
	s->last_ms = now;
	q->count++;
	q->identities[s->identity].count++;
	return true;
}

void tf_queued_resume(struct tf_queued *q, const char *client_id)
{
	struct session *s = find(q, client_id);

	if (s == NULL || s->n == 0 || s->resumed
			|| !tf_grow(&q->resumed, &q->cap_resumed, q->n_resumed, 8, SESSIONS_MAX))
		return;
	s->resumed = true;
	q->resumed[q->n_resumed++] = (uint32_t)(s - q->sessions);
}

bool tf_queued_any_resumed(const struct tf_queued *q)
{
	return q->n_resumed > 0;
}

bool tf_queued_take(struct tf_queued *q, const char *client_id, uint64_t fingerprint)
{
	struct session *s = find(q, client_id);

	if (s == NULL || !s->resumed)
		return false;
	for (uint32_t i = 0; i < s->n; i++) {
		if (s->entries[i].fingerprint != fingerprint)
			continue;
		memmove(&s->entries[i], &s->entries[i + 1], (s->n - i - 1) * sizeof(s->entries[0]));
		s->n--;
		q->count--;
		q->identities[s->identity].count--;
		return true;
	}
	return false;
}

void tf_queued_settle(struct tf_queued *q, tf_queued_connected still_connected,
		tf_queued_visit dropped, void *ctx)
{
	for (uint32_t r = 0; r < q->n_resumed; r++) {
		struct session *s = &q->sessions[q->resumed[r]];

		s->resumed = false;
		if (!still_connected(ctx, s->client_id))
			continue;
		for (uint32_t i = 0; i < s->n && dropped != NULL; i++)
			dropped(ctx, s->client_id, s->entries[i].id, q->labels[s->entries[i].label]);
		empty(q, s);
	}
	q->n_resumed = 0;
}

uint32_t tf_queued_count(const struct tf_queued *q)
{
	return q->count;
}

uint64_t tf_queued_forgotten(const struct tf_queued *q)
{
	return q->forgotten;
}
