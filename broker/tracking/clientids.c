#include "broker/tracking/clientids.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "broker/util/fnv.h"

struct identity;

struct binding {
	struct binding *next;           /* in its bucket */
	struct binding *older, *newer;  /* among its identity's disconnected ones */
	struct identity *who;
	const void *conn;
	bool connected, durable;
	char client_id[];
};

struct identity {
	struct identity *next;          /* in its bucket */
	uint32_t bindings;              /* that name it */
	uint32_t kept;                  /* of them, disconnected */
	struct binding *oldest, *newest;
	bool has_username;
	char username[];
};

/* What the last bind changed, so that a refused connection undoes it. */
struct last_bind {
	const void *conn;               /* NULL: nothing to undo */
	struct binding *b;
	bool created;
	struct identity *prev_who;
	const void *prev_conn;
	bool prev_connected, prev_durable;
};

struct tf_clientids {
	struct binding **buckets;
	uint32_t n_buckets;             /* a power of two */
	uint32_t count;
	struct identity **ibuckets;
	uint32_t n_ibuckets;
	uint32_t n_identities;
	/* Client ids come from clients: a seed of our own keeps them from
	 * choosing which bucket they land in. */
	uint64_t seed;
	struct last_bind last;
	tf_clientids_notify notify;
	void *notify_ctx;
};

static void tell(struct tf_clientids *t, const struct binding *b, bool bound)
{
	if (t->notify != NULL)
		t->notify(t->notify_ctx, b->client_id, b->who->has_username ? b->who->username : NULL,
			bound);
}

static uint64_t hash_text(const struct tf_clientids *t, const char *text, bool present)
{
	uint64_t h = tf_fnv1a(TF_FNV_OFFSET ^ t->seed, &present, 1);

	return text ? tf_fnv1a(h, text, strlen(text)) : h;
}

struct tf_clientids *tf_clientids_new(void)
{
	struct tf_clientids *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->n_buckets = t->n_ibuckets = 1024;
	t->buckets = calloc(t->n_buckets, sizeof(*t->buckets));
	t->ibuckets = calloc(t->n_ibuckets, sizeof(*t->ibuckets));
	if (t->buckets == NULL || t->ibuckets == NULL
			|| RAND_bytes((unsigned char *)&t->seed, sizeof(t->seed)) != 1) {
		tf_clientids_free(t);
		return NULL;
	}
	return t;
}

void tf_clientids_set_notify(struct tf_clientids *t, tf_clientids_notify notify, void *ctx)
{
	t->notify = notify;
	t->notify_ctx = ctx;
}

void tf_clientids_free(struct tf_clientids *t)
{
	if (t == NULL)
		return;
	for (uint32_t i = 0; t->buckets && i < t->n_buckets; i++)
		for (struct binding *b = t->buckets[i], *next; b != NULL; b = next) {
			next = b->next;
			free(b);
		}
	for (uint32_t i = 0; t->ibuckets && i < t->n_ibuckets; i++)
		for (struct identity *w = t->ibuckets[i], *next; w != NULL; w = next) {
			next = w->next;
			free(w);
		}
	free(t->buckets);
	free(t->ibuckets);
	free(t);
}

static struct binding **slot_of(const struct tf_clientids *t, const char *client_id)
{
	struct binding **p = &t->buckets[hash_text(t, client_id, true) & (t->n_buckets - 1)];

	while (*p != NULL && strcmp((*p)->client_id, client_id) != 0)
		p = &(*p)->next;
	return p;
}

static bool same_identity(const struct identity *w, const char *username)
{
	if (username == NULL)
		return !w->has_username;
	return w->has_username && strcmp(w->username, username) == 0;
}

/* The identity record for username (NULL: none), made when create. */
static struct identity *identity_of(struct tf_clientids *t, const char *username, bool create)
{
	struct identity **p = &t->ibuckets[hash_text(t, username, username != NULL)
		& (t->n_ibuckets - 1)];
	size_t len = username ? strlen(username) : 0;

	while (*p != NULL && !same_identity(*p, username))
		p = &(*p)->next;
	if (*p != NULL || !create)
		return *p;
	*p = calloc(1, sizeof(**p) + len + 1);
	if (*p == NULL)
		return NULL;
	(*p)->has_username = username != NULL;
	memcpy((*p)->username, username ? username : "", len + 1);
	t->n_identities++;
	return *p;
}

static void identity_release(struct tf_clientids *t, struct identity *w)
{
	struct identity **p;

	if (--w->bindings > 0)
		return;
	p = &t->ibuckets[hash_text(t, w->has_username ? w->username : NULL, w->has_username)
		& (t->n_ibuckets - 1)];
	while (*p != w)
		p = &(*p)->next;
	*p = w->next;
	free(w);
	t->n_identities--;
}

/* Doubles a table when it holds more entries than buckets; a failed
 * growth leaves it as it is (only slower). */
static void grow_bindings(struct tf_clientids *t)
{
	uint32_t n = t->n_buckets * 2;
	struct binding **fresh;

	if (t->count < t->n_buckets || n == 0 || (fresh = calloc(n, sizeof(*fresh))) == NULL)
		return;
	for (uint32_t i = 0; i < t->n_buckets; i++)
		for (struct binding *b = t->buckets[i], *next; b != NULL; b = next) {
			uint32_t j = (uint32_t)(hash_text(t, b->client_id, true) & (n - 1));

			next = b->next;
			b->next = fresh[j];
			fresh[j] = b;
		}
	free(t->buckets);
	t->buckets = fresh;
	t->n_buckets = n;
}

static void grow_identities(struct tf_clientids *t)
{
	uint32_t n = t->n_ibuckets * 2;
	struct identity **fresh;

	if (t->n_identities < t->n_ibuckets || n == 0
			|| (fresh = calloc(n, sizeof(*fresh))) == NULL)
		return;
	for (uint32_t i = 0; i < t->n_ibuckets; i++)
		for (struct identity *w = t->ibuckets[i], *next; w != NULL; w = next) {
			uint32_t j = (uint32_t)(hash_text(t, w->has_username ? w->username : NULL,
				w->has_username) & (n - 1));

			next = w->next;
			w->next = fresh[j];
			fresh[j] = w;
		}
	free(t->ibuckets);
	t->ibuckets = fresh;
	t->n_ibuckets = n;
}

/* Takes b off its identity's list of disconnected bindings. */
static void unkeep(struct binding *b)
{
	struct identity *w = b->who;

	if (b->connected || !b->durable)
		return;
	if (b->older)
		b->older->newer = b->newer;
	else
		w->oldest = b->newer;
	if (b->newer)
		b->newer->older = b->older;
	else
		w->newest = b->older;
	b->older = b->newer = NULL;
	w->kept--;
}

/* Forgets what the last bind changed: it can no longer be undone. */
static void last_clear(struct tf_clientids *t)
{
	if (t->last.conn != NULL && t->last.prev_who != NULL)
		identity_release(t, t->last.prev_who);
	t->last.conn = NULL;
}

static void remove_binding(struct tf_clientids *t, struct binding *b)
{
	struct binding **p = slot_of(t, b->client_id);

	if (t->last.conn != NULL && t->last.b == b)
		last_clear(t);
	if (b->durable)
		tell(t, b, false);
	unkeep(b);
	*p = b->next;
	identity_release(t, b->who);
	free(b);
	t->count--;
}

/* Puts a disconnected durable binding on its identity's list, pushing
 * out the identity's oldest beyond the bound. */
static void keep(struct tf_clientids *t, struct binding *b)
{
	struct identity *w = b->who;

	b->older = w->newest;
	b->newer = NULL;
	if (w->newest)
		w->newest->newer = b;
	else
		w->oldest = b;
	w->newest = b;
	if (++w->kept > TF_CLIENTIDS_KEPT_PER_IDENTITY)
		remove_binding(t, w->oldest);
}

enum tf_clientid_answer tf_clientids_bind(struct tf_clientids *t, const char *client_id,
		const char *username, const void *conn, bool durable, bool reserved)
{
	struct binding **p = slot_of(t, client_id), *b = *p;
	struct identity *who;
	size_t len = strlen(client_id);
	bool was_durable, changed;

	last_clear(t);
	if (b != NULL && !same_identity(b->who, username) && !reserved)
		return TF_CLIENTID_TAKEN;
	who = b != NULL && same_identity(b->who, username) ? b->who
		: identity_of(t, username, true);
	if (who == NULL)
		return TF_CLIENTID_FULL;
	if (b == NULL) {
		if (t->count >= TF_CLIENTIDS_MAX || (b = calloc(1, sizeof(*b) + len + 1)) == NULL) {
			if (who->bindings == 0) {
				who->bindings = 1;
				identity_release(t, who);
			}
			return TF_CLIENTID_FULL;
		}
		memcpy(b->client_id, client_id, len + 1);
		*p = b;
		t->count++;
		who->bindings++;
		t->last = (struct last_bind){ .conn = conn, .b = b, .created = true };
	} else {
		t->last = (struct last_bind){ .conn = conn, .b = b, .prev_who = b->who,
			.prev_conn = b->conn, .prev_connected = b->connected,
			.prev_durable = b->durable };
		unkeep(b);
		if (b->who != who)
			who->bindings++;   /* the previous one stays referenced by last */
		else
			t->last.prev_who = NULL;
	}
	was_durable = !t->last.created && b->durable;
	changed = t->last.created || b->who != who;
	b->who = who;
	b->conn = conn;
	b->connected = true;
	b->durable = durable;
	/* The store holds durable bindings only. */
	if (durable && (changed || !was_durable))
		tell(t, b, true);
	else if (!durable && was_durable)
		tell(t, b, false);
	grow_bindings(t);
	grow_identities(t);
	return TF_CLIENTID_OK;
}

void tf_clientids_undo(struct tf_clientids *t, const void *conn)
{
	struct last_bind last = t->last;
	struct binding *b = last.b;

	if (last.conn == NULL || last.conn != conn)
		return;
	t->last.conn = NULL;   /* its reference to prev_who passes to b below */
	if (last.created) {
		remove_binding(t, b);
		return;
	}
	if (last.prev_who != NULL) {
		struct identity *now = b->who;

		b->who = last.prev_who;
		identity_release(t, now);
	}
	if (last.prev_durable || b->durable)
		tell(t, b, last.prev_durable);
	b->conn = last.prev_conn;
	b->connected = last.prev_connected;
	b->durable = last.prev_durable;
	if (!b->connected && b->durable)
		keep(t, b);
	else if (!b->connected)
		remove_binding(t, b);
}

void tf_clientids_disconnected(struct tf_clientids *t, const char *client_id, const void *conn)
{
	struct binding *b = *slot_of(t, client_id);

	/* A connection that lost its client id to a newer one of the same
	 * identity leaves the binding to that one. */
	if (b == NULL || b->conn != conn || !b->connected)
		return;
	if (t->last.b == b)
		last_clear(t);
	b->connected = false;
	b->conn = NULL;
	if (b->durable)
		keep(t, b);
	else
		remove_binding(t, b);
}

bool tf_clientids_find(const struct tf_clientids *t, const char *client_id,
		const char **username, bool *connected)
{
	const struct binding *b = *slot_of(t, client_id);

	if (b == NULL)
		return false;
	if (username != NULL)
		*username = b->who->has_username ? b->who->username : NULL;
	if (connected != NULL)
		*connected = b->connected;
	return true;
}

void tf_clientids_forget(struct tf_clientids *t, const char *client_id)
{
	struct binding *b = *slot_of(t, client_id);

	if (b != NULL)
		remove_binding(t, b);
}

void tf_clientids_each(const struct tf_clientids *t, tf_clientids_visit visit, void *ctx)
{
	for (uint32_t i = 0; i < t->n_buckets; i++)
		for (const struct binding *b = t->buckets[i]; b != NULL; b = b->next)
			visit(ctx, b->client_id, b->who->has_username ? b->who->username : NULL,
				b->connected, b->durable);
}

uint32_t tf_clientids_count(const struct tf_clientids *t)
{
	return t->count;
}
