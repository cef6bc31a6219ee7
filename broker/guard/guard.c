#include "broker/guard/guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/util/fnv.h"
#include "broker/util/growable.h"
#include "broker/util/strmap.h"

/* Weight of the newest second in a flow's learned rate, and of the
 * newest message in its learned size. */
#define RATE_ALPHA 0.1
#define SIZE_ALPHA 0.05
#define MAX_BURST 64
/* The longest silence that earns a flow catching up a backlog: a day. */
#define MAX_AWAY_S 86400
/* Slots of the private-data table and of its index by message id (powers
 * of two). */
#define PRIVATE_SLOTS 65536u
#define ID_SLOTS 65536u
/* Bytes of a recipient's key: its name's SHA-256, cut (collisions need
 * 2^64 work, and would only make a client suspect its own data). */
#define RECIPIENT_KEY 16

struct flow_state {
	int64_t second;           /* the current one; 0 before the first message */
	uint32_t count;           /* messages in it */
	bool anomalous;           /* it had a rate finding: it teaches nothing */
	bool caught_up;           /* it drew on backlog: it teaches nothing */
	double backlog;           /* messages over the threshold still allowed */
	bool backlog_new;         /* earned as the current second began */
	uint32_t seconds_seen;
	double rate;              /* learned messages per second */
	double size;              /* learned payload size */
	uint32_t sizes_seen;
	uint64_t replay_sha[TF_GUARD_REPLAY_KEPT];
	int64_t replay_ms[TF_GUARD_REPLAY_KEPT];
	uint32_t replay_next;
};

struct client_state {
	int64_t blocked_until;
	int64_t times[MAX_BURST]; /* of the latest refusals, a ring */
	uint32_t next, n;
	char *name;               /* owned: its client_index key, for rebuilding */
};

/* One piece of private data, and the clients outside its owner org it was
 * delivered to. */
struct private_slot {
	bool used;
	bool overflow;            /* a recipient could not be kept: all are suspect */
	unsigned char canon[32];
	uint32_t gen;             /* bumped when the slot takes other data */
	struct tf_guard_private data;
	unsigned char (*recipients)[RECIPIENT_KEY];   /* owned; n of cap used */
	uint32_t n_recipients, cap_recipients;
};

/* A message id of private data, to find its slot from a delivery (the
 * delivery knows the message's id, not its canonical hash). */
struct id_slot {
	char id[TF_MSGID_LEN];
	uint32_t slot, gen;       /* valid while the slot's gen is gen */
	bool used;
};

struct tf_guard {
	struct tf_guard_config cfg;
	struct tf_strmap *flow_index, *client_index;
	struct flow_state *flows;
	uint32_t n_flows, cap_flows;
	struct client_state *clients;
	uint32_t n_clients, cap_clients;
	int64_t clients_rebuilt_ms;     /* when idle clients last went */
	struct private_slot *private;   /* allocated with the first note */
	struct id_slot *ids;            /* allocated with private */
	uint32_t n_private;
	uint32_t n_recipients;          /* over all slots */
};

struct tf_guard *tf_guard_new(const struct tf_guard_config *cfg)
{
	struct tf_guard *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	g->cfg = *cfg;
	if (g->cfg.denied_burst > MAX_BURST)
		g->cfg.denied_burst = MAX_BURST;
	if (g->cfg.recipients_max == 0 || g->cfg.recipients_max > TF_GUARD_MAX_ALL_RECIPIENTS)
		g->cfg.recipients_max = TF_GUARD_MAX_ALL_RECIPIENTS;
	g->clients_rebuilt_ms = INT64_MIN / 2;
	g->flow_index = tf_strmap_new();
	g->client_index = tf_strmap_new();
	if (g->flow_index == NULL || g->client_index == NULL) {
		tf_guard_free(g);
		return NULL;
	}
	return g;
}

void tf_guard_free(struct tf_guard *g)
{
	if (g == NULL)
		return;
	tf_strmap_free(g->flow_index);
	tf_strmap_free(g->client_index);
	free(g->flows);
	for (uint32_t i = 0; i < g->n_clients; i++)
		free(g->clients[i].name);
	free(g->clients);
	for (uint32_t i = 0; g->private != NULL && i < PRIVATE_SLOTS; i++)
		free(g->private[i].recipients);
	free(g->private);
	free(g->ids);
	free(g);
}

/* The state under name in index, made when new (NULL when the table is
 * full or memory is short: that one is then not watched). */
static void *state_of(struct tf_strmap *index, void **array, uint32_t *n, uint32_t *cap,
		uint32_t max, size_t size, const char *name)
{
	uint32_t at;

	if (tf_strmap_get(index, name, strlen(name), &at))
		return (char *)*array + (size_t)at * size;
	if (!tf_grow_array(array, cap, *n, size, 64, max))
		return NULL;
	if (tf_strmap_put(index, name, strlen(name), *n, NULL) != 1)
		return NULL;
	memset((char *)*array + (size_t)*n * size, 0, size);
	return (char *)*array + (size_t)(*n)++ * size;
}

/* --- a flow's messages ----------------------------------------------------- */

/* Moves the flow to the second of now_ms, teaching it the second gone.
 * Only seconds in which the flow sent count: its usual rate is its rate
 * when it sends, so a flow that pauses and picks up again at its pace is
 * not a flood.
 *
 * A flow that comes back after away_s silent seconds may be catching up
 * (a meter sending the readings it stored while offline): it is judged by
 * its rate over the time it was away, so it may send up to factor x its
 * rate x away_s messages over its usual threshold (its backlog) before
 * the second's count is judged again. What is left of the backlog goes
 * once a second passes without drawing on it: the catching up is over,
 * and a later flood is judged as usual. (The second it came back in does
 * not count: a backlog sent near its end spills into the next one before
 * the count reaches the threshold.) Seconds that drew on it teach
 * nothing (a backlog is not the flow's pace). */
static void roll(struct flow_state *f, int64_t now_ms, uint32_t factor)
{
	int64_t second = now_ms / 1000 + 1;   /* + 1: never 0 */
	int64_t away_s;

	if (f->second == second)
		return;
	/* The second it came back in is catching up too, however few it sent. */
	if (f->second != 0 && !f->anomalous && !f->caught_up && !f->backlog_new) {
		f->rate = f->seconds_seen == 0 ? f->count
			: RATE_ALPHA * f->count + (1 - RATE_ALPHA) * f->rate;
		f->seconds_seen++;
	}
	if (!f->caught_up && !f->backlog_new)
		f->backlog = 0;
	f->backlog_new = false;
	away_s = f->second == 0 ? 0 : second - f->second - 1;
	if (away_s > MAX_AWAY_S)
		away_s = MAX_AWAY_S;
	if (away_s > 0 && f->seconds_seen > 0) {
		f->backlog += (double)factor * f->rate * (double)away_s;
		f->backlog_new = true;
	}
	/* Silences in a row earn no more than one day's worth. */
	if (f->backlog > (double)factor * f->rate * MAX_AWAY_S)
		f->backlog = (double)factor * f->rate * MAX_AWAY_S;
	f->second = second;
	f->count = 0;
	f->anomalous = false;
	f->caught_up = false;
}

/* Whether a message over the flow's threshold is part of its backlog
 * (roll): then it takes one from it. */
static bool catching_up(struct flow_state *f)
{
	if (f->backlog < 1)
		return false;
	f->backlog -= 1;
	f->caught_up = true;
	return true;
}

uint64_t tf_guard_hash(const struct tf_guard *g, const void *payload, uint32_t len)
{
	if (g->cfg.replay_window_ms == 0)
		return 0;
	return tf_fnv1a(TF_FNV_OFFSET, payload, len);
}

const char *tf_guard_message(struct tf_guard *g, const char *flow, uint32_t size,
		uint64_t key, int64_t now_ms, char *detail, size_t cap)
{
	struct flow_state *f = state_of(g->flow_index, (void **)&g->flows, &g->n_flows,
		&g->cap_flows, TF_GUARD_MAX_FLOWS, sizeof(*f), flow);
	const char *finding = NULL;

	if (f == NULL)
		return NULL;
	roll(f, now_ms, g->cfg.rate_factor);
	f->count++;
	if (g->cfg.rate_factor > 0 && f->seconds_seen >= g->cfg.rate_warmup_s
			&& f->count >= g->cfg.rate_min && f->count > g->cfg.rate_factor * f->rate
			&& !catching_up(f)) {
		f->anomalous = true;
		snprintf(detail, cap, "%u messages in this second; usually %.1f a second",
			f->count, f->rate);
		finding = "rate-anomaly";
	}
	if (finding == NULL && g->cfg.size_factor > 0 && f->sizes_seen >= TF_GUARD_SIZE_WARMUP
			&& ((double)size > g->cfg.size_factor * f->size + 64
				|| (double)size * g->cfg.size_factor + 64 < f->size)) {
		snprintf(detail, cap, "a payload of %u bytes; usually %.0f", size, f->size);
		finding = "size-anomaly";
	}
	if (finding == NULL && g->cfg.replay_window_ms > 0) {
		for (uint32_t i = 0; i < TF_GUARD_REPLAY_KEPT; i++) {
			if (f->replay_ms[i] != 0 && f->replay_sha[i] == key
					&& now_ms - f->replay_ms[i] < (int64_t)g->cfg.replay_window_ms) {
				snprintf(detail, cap, "the same payload as %lld ms before",
					(long long)(now_ms - f->replay_ms[i]));
				finding = "replay";
				break;
			}
		}
	}
	if (finding != NULL)
		return finding;
	f->size = f->sizes_seen == 0 ? size : SIZE_ALPHA * size + (1 - SIZE_ALPHA) * f->size;
	f->sizes_seen++;
	f->replay_sha[f->replay_next] = key;
	f->replay_ms[f->replay_next] = now_ms;
	f->replay_next = (f->replay_next + 1) % TF_GUARD_REPLAY_KEPT;
	return NULL;
}

/* --- refusals ----------------------------------------------------------------- */

/* Whether a client's refusals still matter at now_ms: it is blocked, or
 * its latest refusal is within the window. */
static bool client_active(const struct tf_guard *g, const struct client_state *c,
		int64_t now_ms)
{
	uint32_t burst = g->cfg.denied_burst;
	int64_t latest = c->times[(c->next + burst - 1) % burst];

	if (c->name == NULL)      /* never counted: its name could not be kept */
		return false;
	return c->blocked_until > now_ms || now_ms - latest <= (int64_t)g->cfg.denied_window_ms;
}

struct idle_clients {
	const struct tf_guard *g;
	int64_t now_ms;
};

static const char *active_client_name(void *ctx, uint32_t i, size_t *len)
{
	const struct idle_clients *idle = ctx;
	const struct client_state *c = &idle->g->clients[i];

	if (!client_active(idle->g, c, idle->now_ms))
		return NULL;
	*len = strlen(c->name);
	return c->name;
}

/* Clients refused under ever new client ids would fill the table, and
 * then no new one would be watched: when it is full, the clients whose
 * refusals no longer matter go (at most once a second, so that a table
 * full of active ones does not cost a rebuild per refusal). Out of memory
 * leaves it as it is. */
static void drop_idle_clients(struct tf_guard *g, int64_t now_ms)
{
	struct idle_clients idle = { g, now_ms };
	struct tf_strmap *fresh;
	uint32_t kept = 0;

	if (now_ms - g->clients_rebuilt_ms < 1000)
		return;
	g->clients_rebuilt_ms = now_ms;
	if ((fresh = tf_strmap_renumbered(g->n_clients, active_client_name, &idle)) == NULL)
		return;
	for (uint32_t i = 0; i < g->n_clients; i++) {
		if (client_active(g, &g->clients[i], now_ms))
			g->clients[kept++] = g->clients[i];
		else
			free(g->clients[i].name);
	}
	tf_strmap_free(g->client_index);
	g->client_index = fresh;
	g->n_clients = kept;
}

bool tf_guard_denied(struct tf_guard *g, const char *client, int64_t now_ms)
{
	uint32_t burst = g->cfg.denied_burst;
	struct client_state *c;
	uint32_t at;

	if (burst == 0)
		return false;
	if (g->n_clients == TF_GUARD_MAX_CLIENTS
			&& !tf_strmap_get(g->client_index, client, strlen(client), &at))
		drop_idle_clients(g, now_ms);
	c = state_of(g->client_index, (void **)&g->clients, &g->n_clients, &g->cap_clients,
		TF_GUARD_MAX_CLIENTS, sizeof(*c), client);
	if (c == NULL)
		return false;
	if (c->name == NULL && (c->name = strdup(client)) == NULL)
		return false;
	c->times[c->next] = now_ms;
	c->next = (c->next + 1) % burst;
	if (c->n < burst)
		c->n++;
	/* The oldest of the last `burst` refusals is the next to go. */
	if (c->n == burst && now_ms - c->times[c->next] <= (int64_t)g->cfg.denied_window_ms
			&& c->blocked_until <= now_ms) {
		c->blocked_until = now_ms + g->cfg.block_ms;
		return true;
	}
	return false;
}

bool tf_guard_counts_refusals(const struct tf_guard *g)
{
	return g->n_clients > 0;
}

bool tf_guard_blocked(const struct tf_guard *g, const char *client, int64_t now_ms)
{
	uint32_t at;

	if (g->n_clients == 0 || !tf_strmap_get(g->client_index, client, strlen(client), &at))
		return false;
	return g->clients[at].blocked_until > now_ms;
}

/* --- leaks -------------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;

	return strcmp(x->string, y->string);
}

/* Sorts the members of every object in item, recursively. */
static bool sort_members(cJSON *item)
{
	cJSON **children;
	size_t n = 0, i = 0;

	for (cJSON *c = item->child; c != NULL; c = c->next) {
		if (!sort_members(c))
			return false;
		n++;
	}
	if (!cJSON_IsObject(item) || n < 2)
		return true;
	children = malloc(n * sizeof(*children));
	if (children == NULL)
		return false;
	for (cJSON *c = item->child; c != NULL; c = c->next)
		children[i++] = c;
	qsort(children, n, sizeof(*children), by_name);
	for (i = 0; i < n; i++) {
		children[i]->prev = i > 0 ? children[i - 1] : children[n - 1];
		children[i]->next = i + 1 < n ? children[i + 1] : NULL;
	}
	item->child = children[0];
	free(children);
	return true;
}

bool tf_guard_canonical_sha(const cJSON *json, const void *payload, uint32_t len,
		unsigned char out[32])
{
	cJSON *copy;
	char *text;

	if (json == NULL) {
		tf_sha256(payload, len, out);
		return true;
	}
	copy = cJSON_Duplicate(json, true);
	text = copy != NULL && sort_members(copy) ? cJSON_PrintUnformatted(copy) : NULL;
	cJSON_Delete(copy);
	if (text == NULL)
		return false;
	tf_sha256(text, strlen(text), out);
	free(text);
	return true;
}

static uint32_t slot_of(const unsigned char canon[32])
{
	uint32_t k;

	memcpy(&k, canon, sizeof(k));
	return k & (PRIVATE_SLOTS - 1);
}

static uint32_t id_slot_of(const char *id)
{
	return (uint32_t)tf_fnv1a(TF_FNV_OFFSET, id, TF_MSGID_LEN) & (ID_SLOTS - 1);
}

/* Empties slot s for other data: its recipients go, and ids that named
 * it no longer find it. */
static void reuse_slot(struct tf_guard *g, struct private_slot *s)
{
	g->n_recipients -= s->n_recipients;
	free(s->recipients);
	s->recipients = NULL;
	s->n_recipients = s->cap_recipients = 0;
	s->overflow = false;
	s->gen++;
}

void tf_guard_note_private(struct tf_guard *g, const unsigned char canon[32], const char *id,
		const char *policy, const char *owner, const char *publisher, int64_t now_ms)
{
	struct private_slot *s;
	struct id_slot *ix;

	if (g->cfg.leak_window_ms == 0 || strlen(id) != TF_MSGID_LEN)
		return;
	if (g->private == NULL) {
		g->private = calloc(PRIVATE_SLOTS, sizeof(*g->private));
		g->ids = calloc(ID_SLOTS, sizeof(*g->ids));
		if (g->private == NULL || g->ids == NULL) {
			free(g->private);
			free(g->ids);
			g->private = NULL;
			g->ids = NULL;
			return;
		}
	}
	/* One slot per hash: newer data may push older data out. The same data
	 * again keeps its recipients (and is remembered from now on). */
	s = &g->private[slot_of(canon)];
	if (!s->used)
		g->n_private++;
	else if (memcmp(s->canon, canon, 32) != 0
			|| now_ms - s->data.seen_ms >= (int64_t)g->cfg.leak_window_ms)
		reuse_slot(g, s);
	s->used = true;
	memcpy(s->canon, canon, 32);
	snprintf(s->data.id, sizeof(s->data.id), "%s", id);
	snprintf(s->data.policy, sizeof(s->data.policy), "%s", policy);
	snprintf(s->data.owner, sizeof(s->data.owner), "%s", owner);
	snprintf(s->data.publisher, sizeof(s->data.publisher), "%s", publisher);
	s->data.seen_ms = now_ms;
	ix = &g->ids[id_slot_of(id)];
	memcpy(ix->id, id, TF_MSGID_LEN);
	ix->slot = (uint32_t)(s - g->private);
	ix->gen = s->gen;
	ix->used = true;
}

static void recipient_key(const char *client, unsigned char key[RECIPIENT_KEY])
{
	unsigned char sha[32];

	tf_sha256(client, strlen(client), sha);
	memcpy(key, sha, RECIPIENT_KEY);
}

static bool has_recipient(const struct private_slot *s, const unsigned char key[RECIPIENT_KEY])
{
	for (uint32_t i = 0; i < s->n_recipients; i++)
		if (memcmp(s->recipients[i], key, RECIPIENT_KEY) == 0)
			return true;
	return false;
}

/* Gives back the recipients of data past the leak window, so that the
 * bound on all recipients counts data still watched. Visits every slot:
 * it runs only when that bound is reached. */
static void reclaim_expired(struct tf_guard *g, int64_t now_ms)
{
	for (uint32_t i = 0; i < PRIVATE_SLOTS; i++) {
		struct private_slot *s = &g->private[i];

		if (s->used && s->n_recipients > 0
				&& now_ms - s->data.seen_ms >= (int64_t)g->cfg.leak_window_ms)
			reuse_slot(g, s);
	}
}

/* Adds client to s's recipients, once. One that cannot be kept (the
 * bounds, memory) makes every client outside the owner org a suspect of
 * this data: the detector fails closed. */
static void add_recipient(struct tf_guard *g, struct private_slot *s, const char *client,
		int64_t now_ms)
{
	unsigned char key[RECIPIENT_KEY];

	if (s->overflow)
		return;
	recipient_key(client, key);
	if (has_recipient(s, key))
		return;
	if (g->n_recipients >= g->cfg.recipients_max)
		reclaim_expired(g, now_ms);
	if (g->n_recipients >= g->cfg.recipients_max
			|| !tf_grow(&s->recipients, &s->cap_recipients, s->n_recipients, 4,
				TF_GUARD_MAX_RECIPIENTS)) {
		s->overflow = true;
		return;
	}
	memcpy(s->recipients[s->n_recipients++], key, RECIPIENT_KEY);
	g->n_recipients++;
}

/* The slot of live private data with this canonical hash, or NULL. */
static struct private_slot *live_slot(const struct tf_guard *g, const unsigned char canon[32],
		int64_t now_ms)
{
	struct private_slot *s;

	if (g->private == NULL)
		return NULL;
	s = &g->private[slot_of(canon)];
	if (!s->used || memcmp(s->canon, canon, 32) != 0
			|| now_ms - s->data.seen_ms >= (int64_t)g->cfg.leak_window_ms)
		return NULL;
	return s;
}

bool tf_guard_note_recipient(struct tf_guard *g, const char *id, const char *client,
		int64_t now_ms)
{
	const struct id_slot *ix;
	struct private_slot *s;

	if (g->ids == NULL || strlen(id) != TF_MSGID_LEN)
		return false;
	ix = &g->ids[id_slot_of(id)];
	if (!ix->used || memcmp(ix->id, id, TF_MSGID_LEN) != 0)
		return false;
	s = &g->private[ix->slot];
	if (s->gen != ix->gen || !s->used)
		return false;
	if (now_ms - s->data.seen_ms < (int64_t)g->cfg.leak_window_ms)
		add_recipient(g, s, client, now_ms);
	return true;
}

void tf_guard_note_recipient_of(struct tf_guard *g, const unsigned char canon[32],
		const char *client, int64_t now_ms)
{
	struct private_slot *s = live_slot(g, canon, now_ms);

	if (s != NULL)
		add_recipient(g, s, client, now_ms);
}

const struct tf_guard_private *tf_guard_find_private(const struct tf_guard *g,
		const unsigned char canon[32], int64_t now_ms)
{
	const struct private_slot *s = live_slot(g, canon, now_ms);

	return s ? &s->data : NULL;
}

const struct tf_guard_private *tf_guard_find_leak(const struct tf_guard *g,
		const unsigned char canon[32], const char *client, int64_t now_ms)
{
	const struct private_slot *s = live_slot(g, canon, now_ms);
	unsigned char key[RECIPIENT_KEY];

	if (s == NULL)
		return NULL;
	if (s->overflow)
		return &s->data;
	recipient_key(client, key);
	return has_recipient(s, key) ? &s->data : NULL;
}

bool tf_guard_watching_leaks(const struct tf_guard *g)
{
	return g->n_private > 0;
}
