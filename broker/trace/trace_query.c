#include "broker/trace/trace_query.h"

#include <stdlib.h>
#include <string.h>

#include "broker/util/growable.h"
#include "broker/util/strmap.h"
#include "broker/stamp/chain.h"
#include "broker/stamp/provenance.h"
#include "policy/id.h"
#include "policy/rollback.h"
#include "policy/topic.h"

/* --- message objects -------------------------------------------------------- */

/* A delivery to an offline session ("queued") waits in the message's
 * "queued" list until a later event for the same session says what
 * became of it. Each session's waiting items are a chain, oldest first. */
struct waiting {
	cJSON *item;
	uint32_t next;      /* the session's next waiting item; NONE: the last */
	bool resolved;
};
#define NONE UINT32_MAX
struct session_chain {
	uint32_t head, tail;   /* NONE when nothing waits */
};

struct message_build {
	struct tf_trace_store *s;
	const char *id;           /* the message asked for (32 hex digits) */
	cJSON *obj, *deliveries, *withheld, *dropped, *forwarded;
	bool with_deliveries;
	bool failed;
	struct waiting *waiting;
	uint32_t n_waiting, cap_waiting;
	struct tf_strmap *sessions;          /* client id -> index in chains */
	struct session_chain *chains;
	uint32_t n_chains, cap_chains;
	char (*views)[TF_MSGID_LEN + 1];     /* ids of view copies made of it */
	uint32_t n_views, cap_views;
};

static bool add_number(cJSON *o, const char *name, double v)
{
	return cJSON_AddNumberToObject(o, name, v) != NULL;
}

static bool add_string(cJSON *o, const char *name, const char *v)
{
	return cJSON_AddStringToObject(o, name, v) != NULL;
}

/* A relayed message's hop records (a JSON array, as recorded) as an
 * array, and, when it was stamped here, the prev of its format-2 stamp,
 * the link to the last of them, so that its stamp can be checked from
 * the trace alone; false when out of memory or not an array of records. */
static bool add_hops(cJSON *o, const char *hops, bool stamped)
{
	cJSON *records = cJSON_Parse(hops);
	const cJSON *last = cJSON_GetArrayItem(records, cJSON_GetArraySize(records) - 1);
	char prev[TF_PREV_B64_LEN + 1];

	if (!cJSON_IsArray(records) || (stamped && !cJSON_IsString(last))) {
		cJSON_Delete(records);
		return false;
	}
	if (stamped) {
		tf_chain_link(last->valuestring, strlen(last->valuestring), prev);
		if (!add_string(o, "prev", prev)) {
			cJSON_Delete(records);
			return false;
		}
	}
	return cJSON_AddItemToObject(o, "hops", records);
}

/* The top of a message object from its message event:
 * id topic org client policy sha256 size status reason stamp_seq kid sig of
 * peer hops. */
static bool fill_message(cJSON *o, const struct tf_event *ev, const char *broker)
{
	const char *const *f = ev->values;
	bool ok = add_string(o, "id", f[0]);

	if (f[9][0] != '\0')
		ok = ok && add_number(o, "seq", strtod(f[9], NULL));
	else
		ok = ok && cJSON_AddNullToObject(o, "seq") != NULL;
	ok = ok && add_number(o, "ts", (double)ev->ts_ms) && add_string(o, "topic", f[1])
		&& add_string(o, "org", f[2]) && add_string(o, "client", f[3]);
	if (f[4][0] != '\0')
		ok = ok && add_string(o, "policy", f[4]);
	else
		ok = ok && cJSON_AddNullToObject(o, "policy") != NULL;
	ok = ok && add_string(o, "sha256", f[5]) && add_number(o, "size", strtod(f[6], NULL))
		&& add_string(o, "status", f[7]);
	if (f[8][0] != '\0')
		ok = ok && add_string(o, "reason", f[8]);
	if (f[12] != NULL && f[12][0] != '\0')
		ok = ok && add_string(o, "of", f[12]);
	/* A relayed message: the peer it came from and its earlier stamps. */
	if (f[13] != NULL && f[13][0] != '\0')
		ok = ok && add_string(o, "peer", f[13])
			&& add_hops(o, f[14] ? f[14] : "", f[10][0] != '\0');
	/* What a subscriber without MQTT v5 needs to check the stamp. */
	if (f[10][0] != '\0')
		ok = ok && add_string(o, "broker", broker) && add_string(o, "kid", f[10])
			&& add_string(o, "sig", f[11]);
	return ok;
}

static bool set_status(cJSON *o, const char *status)
{
	return cJSON_ReplaceItemInObjectCaseSensitive(o, "status", cJSON_CreateString(status));
}

/* Who released or discarded a held message, and why when the rules
 * decided it or were overridden: "by", and "reason" replacing the
 * quarantine's. */
static bool set_ended(cJSON *o, const struct tf_event *ev)
{
	const char *reason = ev->values[3];

	if (!add_string(o, "by", ev->values[2]))
		return false;
	if (reason == NULL || reason[0] == '\0')
		return true;
	cJSON_DeleteItemFromObjectCaseSensitive(o, "reason");
	return add_string(o, "reason", reason);
}

static struct session_chain *chain_of(struct message_build *b, const char *client_id,
		bool add)
{
	uint32_t at;

	if (b->sessions == NULL && (b->sessions = tf_strmap_new()) == NULL)
		return NULL;
	if (tf_strmap_get(b->sessions, client_id, strlen(client_id), &at))
		return &b->chains[at];
	if (!add || !tf_grow(&b->chains, &b->cap_chains, b->n_chains, 8, UINT32_MAX)
			|| tf_strmap_put(b->sessions, client_id, strlen(client_id), b->n_chains, NULL) != 1)
		return NULL;
	b->chains[b->n_chains] = (struct session_chain){ NONE, NONE };
	return &b->chains[b->n_chains++];
}

/* A delivery to an offline session: it waits. One recorded without its
 * session's client id (a store of 0.1) waits for nothing that can
 * resolve it. */
static bool wait_for_session(struct message_build *b, const char *client_id, cJSON *item)
{
	struct session_chain *c = client_id[0] != '\0' ? chain_of(b, client_id, true) : NULL;

	if ((c == NULL && client_id[0] != '\0')
			|| !tf_grow(&b->waiting, &b->cap_waiting, b->n_waiting, 8, UINT32_MAX))
		return false;
	b->waiting[b->n_waiting] = (struct waiting){ item, NONE, false };
	if (c != NULL) {
		if (c->tail == NONE)
			c->head = b->n_waiting;
		else
			b->waiting[c->tail].next = b->n_waiting;
		c->tail = b->n_waiting;
	}
	b->n_waiting++;
	return true;
}

/* A later event for a session: its oldest waiting delivery is resolved. */
static void session_resolved(struct message_build *b, const char *client_id)
{
	struct session_chain *c = chain_of(b, client_id, false);

	if (c == NULL || c->head == NONE)
		return;
	b->waiting[c->head].resolved = true;
	c->head = b->waiting[c->head].next;
	if (c->head == NONE)
		c->tail = NONE;
}

/* The "queued" list: deliveries to offline sessions that nothing since
 * resolved. */
static bool add_waiting(struct message_build *b)
{
	cJSON *queued = cJSON_AddArrayToObject(b->obj, "queued");

	if (queued == NULL)
		return false;
	for (uint32_t i = 0; i < b->n_waiting; i++) {
		if (b->waiting[i].resolved)
			cJSON_Delete(b->waiting[i].item);
		else
			cJSON_AddItemToArray(queued, b->waiting[i].item);
		b->waiting[i].item = NULL;
	}
	return true;
}

/* One delivery event (id policy client org outcome reason client_id) as
 * an item of the message's lists. */
static bool add_delivery(struct message_build *b, const struct tf_event *ev)
{
	const char *client_id = ev->values[6] ? ev->values[6] : "";
	const char *outcome = ev->values[4];
	cJSON *item = cJSON_CreateObject();
	bool ok = item != NULL && add_string(item, "client", ev->values[2])
		&& (client_id[0] == '\0' || add_string(item, "client_id", client_id))
		&& add_string(item, "org", ev->values[3])
		&& add_number(item, "ts", (double)ev->ts_ms);

	if (!ok) {
		cJSON_Delete(item);
		return false;
	}
	if (strcmp(outcome, "queued") == 0) {
		if (wait_for_session(b, client_id, item))
			return true;
		cJSON_Delete(item);
		return false;
	}
	if (client_id[0] != '\0')
		session_resolved(b, client_id);
	if (strcmp(outcome, "delivered") == 0) {
		cJSON_AddItemToArray(b->deliveries, item);
		return true;
	}
	/* Sent on to a peer broker (client: its broker id, client_id: its
	 * link): neither a delivery here nor a withholding. */
	if (strcmp(outcome, "forwarded") == 0) {
		cJSON_AddItemToArray(b->forwarded, item);
		return true;
	}
	if (!add_string(item, "reason", ev->values[5])) {
		cJSON_Delete(item);
		return false;
	}
	cJSON_AddItemToArray(strcmp(outcome, "dropped") == 0 ? b->dropped : b->withheld, item);
	return true;
}

/* Each event about one message, in order. */
static int visit_message_event(void *ctx, const struct tf_event *ev)
{
	struct message_build *b = ctx;
	char broker[TF_BROKER_ID_MAX + 1] = "";

	switch (ev->kind) {
	case TF_EVENT_MESSAGE:
		/* Under a message's id are also the view copies made of it. */
		if (strcmp(ev->values[0], b->id) != 0) {
			if (b->with_deliveries && ev->values[12] != NULL
					&& strcmp(ev->values[12], b->id) == 0
					&& strlen(ev->values[0]) == TF_MSGID_LEN
					&& tf_grow(&b->views, &b->cap_views, b->n_views, 4, UINT32_MAX))
				memcpy(b->views[b->n_views++], ev->values[0], TF_MSGID_LEN + 1);
			return 0;
		}
		if (b->obj != NULL)
			return 0;
		b->obj = cJSON_CreateObject();
		tf_trace_meta(b->s, "broker", broker, sizeof(broker));
		if (b->obj == NULL || !fill_message(b->obj, ev, broker))
			b->failed = true;
		if (b->with_deliveries) {
			b->deliveries = cJSON_AddArrayToObject(b->obj, "deliveries");
			b->withheld = cJSON_AddArrayToObject(b->obj, "withheld");
			b->dropped = cJSON_AddArrayToObject(b->obj, "dropped");
			b->forwarded = cJSON_AddArrayToObject(b->obj, "forwarded");
			b->failed |= b->deliveries == NULL || b->withheld == NULL || b->dropped == NULL
				|| b->forwarded == NULL;
		}
		return b->failed;
	case TF_EVENT_DELIVERY:   /* id policy client org outcome reason client_id */
		if (b->obj == NULL || !b->with_deliveries || strcmp(ev->values[0], b->id) != 0)
			return 0;
		b->failed |= !add_delivery(b, ev);
		return b->failed;
	case TF_EVENT_RELEASE:   /* id flow by reason */
	case TF_EVENT_DISCARD:
		if (b->obj != NULL)
			b->failed |= !set_status(b->obj,
				ev->kind == TF_EVENT_RELEASE ? "released" : "discarded")
				|| !set_ended(b->obj, ev);
		return b->failed;
	default:
		return 0;
	}
}

static cJSON *build_message(struct tf_trace_store *s, const char *id, bool with_deliveries,
		bool with_views, struct tf_err *err);

/* "views": the object of each view copy made of the message, with its
 * deliveries. */
static bool add_views(struct message_build *b, struct tf_err *err)
{
	cJSON *views = cJSON_AddArrayToObject(b->obj, "views");

	for (uint32_t i = 0; views != NULL && i < b->n_views; i++) {
		cJSON *view = build_message(b->s, b->views[i], true, false, err);

		if (view == NULL)
			continue;   /* pruned meanwhile */
		cJSON_AddItemToArray(views, view);
	}
	return views != NULL;
}

static cJSON *build_message(struct tf_trace_store *s, const char *id, bool with_deliveries,
		bool with_views, struct tf_err *err)
{
	struct message_build b = { .s = s, .id = id, .with_deliveries = with_deliveries };
	unsigned char raw[16];

	if (!tf_trace_id_bytes(id, raw)) {
		tf_err_set(err, TF_ERR_INVALID, "\"%s\" is not a message id (32 hex digits)", id);
		return NULL;
	}
	tf_trace_scan_index(s, TF_INDEX_BY_ID, raw, 16, 0, INT64_MAX, visit_message_event, &b);
	if (b.obj != NULL && with_deliveries && !b.failed)
		b.failed = !add_waiting(&b) || (with_views && !add_views(&b, err));
	for (uint32_t i = 0; i < b.n_waiting; i++)
		cJSON_Delete(b.waiting[i].item);
	free(b.waiting);
	free(b.chains);
	free(b.views);
	tf_strmap_free(b.sessions);
	if (b.failed) {
		cJSON_Delete(b.obj);
		tf_err_set(err, TF_ERR_NOMEM, "out of memory");
		return NULL;
	}
	if (b.obj == NULL)
		tf_err_set(err, TF_ERR_INVALID, "no such message");
	return b.obj;
}

cJSON *tf_query_message(struct tf_trace_store *s, const char *id, struct tf_err *err)
{
	return build_message(s, id, true, true, err);
}

static int print_line(cJSON *o, FILE *out, struct tf_err *err)
{
	char *text = cJSON_PrintUnformatted(o);

	if (text == NULL)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	fprintf(out, "%s\n", text);
	free(text);
	return TF_OK;
}

/* --- recipients -------------------------------------------------------------- */

struct recipient {
	char *client, *org;
	uint64_t messages;
	int64_t first_ts, last_ts;
};

struct recipients_build {
	struct tf_trace_store *s;
	struct tf_strmap *index;   /* client -> position in list */
	struct recipient *list;
	uint32_t n, cap;
	bool failed;
};

/* A recipient's entry, made the first time it appears. */
static struct recipient *recipient(struct recipients_build *b, const char *client, size_t clen,
		const char *org, size_t olen, int64_t ts)
{
	uint32_t at;

	if (tf_strmap_get(b->index, client, clen, &at))
		return &b->list[at];
	if (!tf_grow(&b->list, &b->cap, b->n, 16, UINT32_MAX))
		return NULL;
	at = b->n;
	b->list[at] = (struct recipient){ strndup(client, clen), strndup(org, olen), 0, ts, ts };
	if (b->list[at].client == NULL || b->list[at].org == NULL
			|| tf_strmap_put(b->index, client, clen, at, NULL) != 1) {
		free(b->list[at].client);
		free(b->list[at].org);
		return NULL;
	}
	b->n++;
	return &b->list[at];
}

/* A client the store found deliveries made to under the policy. */
static int visit_recipient(void *ctx, const char *client, const char *org, uint64_t messages,
		int64_t first_ts, int64_t last_ts)
{
	struct recipients_build *b = ctx;
	struct recipient *r = recipient(b, client, strlen(client), org, strlen(org), first_ts);

	if (r == NULL)
		return b->failed = true;
	r->messages += messages;
	if (first_ts < r->first_ts)
		r->first_ts = first_ts;
	if (last_ts > r->last_ts)
		r->last_ts = last_ts;
	return 0;
}

static int by_client(const void *a, const void *b)
{
	return strcmp(((const struct recipient *)a)->client, ((const struct recipient *)b)->client);
}

int tf_query_recipients(struct tf_trace_store *s, const char *policy, int64_t since_ms,
		int64_t until_ms, FILE *out, size_t *count, struct tf_err *err)
{
	struct recipients_build b = { s, tf_strmap_new(), NULL, 0, 0, false };
	int rc = TF_OK;

	*count = 0;
	if (b.index == NULL)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	tf_trace_scan_recipients(s, policy, since_ms, until_ms, visit_recipient, &b);
	if (b.failed)
		rc = tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	if (b.n > 0)
		qsort(b.list, b.n, sizeof(*b.list), by_client);
	for (size_t i = 0; i < b.n && rc == TF_OK; i++) {
		cJSON *o = cJSON_CreateObject();

		if (o == NULL || !add_string(o, "org", b.list[i].org)
				|| !add_string(o, "client", b.list[i].client)
				|| !add_number(o, "messages", (double)b.list[i].messages)
				|| !add_number(o, "first_ts", (double)b.list[i].first_ts)
				|| !add_number(o, "last_ts", (double)b.list[i].last_ts))
			rc = tf_err_set(err, TF_ERR_NOMEM, "out of memory");
		else
			rc = print_line(o, out, err);
		cJSON_Delete(o);
	}
	*count = rc == TF_OK ? b.n : 0;
	for (size_t i = 0; i < b.n; i++) {
		free(b.list[i].client);
		free(b.list[i].org);
	}
	free(b.list);
	tf_strmap_free(b.index);
	return rc;
}

/* --- find ---------------------------------------------------------------------- */

struct find_build {
	struct tf_trace_store *s;
	const char *topic;
	bool filter;   /* topic has + or #: matched with MQTT's rules */
	const char *sha256;   /* NULL: any payload */
	int64_t since_ms;
	FILE *out;
	size_t count;
	int rc;
	struct tf_err *err;
};

static bool topic_fits(const struct find_build *b, const char *topic)
{
	return b->filter ? tf_topic_matches(b->topic, topic) : strcmp(topic, b->topic) == 0;
}

/* One event, from by_topic or the walk: printed when it is a message
 * event that matches. */
static int find_one(void *ctx, const struct tf_event *ev)
{
	struct find_build *b = ctx;
	unsigned char id[16];
	cJSON *o;

	if (ev->kind != TF_EVENT_MESSAGE || ev->ts_ms < b->since_ms || !topic_fits(b, ev->values[1])
			|| (b->sha256 != NULL && strcmp(ev->values[5], b->sha256) != 0)
			|| !tf_trace_id_bytes(ev->values[0], id))
		return 0;
	o = build_message(b->s, ev->values[0], false, false, b->err);
	if (o == NULL) {
		b->rc = TF_ERR_NOMEM;
		return 1;
	}
	b->rc = print_line(o, b->out, b->err);
	cJSON_Delete(o);
	b->count++;
	return b->rc != TF_OK;
}

int tf_query_find(struct tf_trace_store *s, const char *topic, const char *sha256,
		int64_t since_ms, FILE *out, size_t *count, struct tf_err *err)
{
	struct find_build b = { s, topic, strpbrk(topic, "+#") != NULL, sha256, since_ms, out, 0,
		TF_OK, err };
	unsigned char sha[32];
	const char *why;

	*count = 0;
	/* A topic name has no + or #, so a topic with one is a filter. */
	if (b.filter && !tf_topic_filter_valid(topic, &why))
		return tf_err_set(err, TF_ERR_INVALID, "--topic: \"%s\" is not a topic filter: %s",
			topic, why);
	if (sha256 != NULL && !tf_trace_sha_bytes(sha256, sha))
		return tf_err_set(err, TF_ERR_INVALID, "--sha256: not 64 lowercase hex digits");
	/* by_sha holds only the messages filed by content (trace_store.h):
	 * the topic's messages are read, and find_one checks the hash. */
	if (b.filter) {
		/* The topic index is keyed by whole topics, so a filter reads
		 * the message events from --since on, in order: the scan costs
		 * what --since leaves, and holds nothing beyond one record. */
		tf_trace_scan_events(s, tf_trace_seq_at(s, since_ms), find_one, &b);
	} else {
		tf_trace_scan_index(s, TF_INDEX_BY_TOPIC, topic, strlen(topic), since_ms, INT64_MAX,
			find_one, &b);
	}
	*count = b.count;
	return b.rc;
}

/* --- the versions accepted, and a policy's history ------------------------------ */

struct rollback_scan {
	struct tf_rollback *r;
	int rc;
};

static void restore_entry(void *ctx, const char *rest, size_t rest_len, const void *value,
		size_t len)
{
	struct rollback_scan *scan = ctx;
	char id[TF_ID_MAX_LEN + 1], owner[TF_ID_MAX_LEN + 1];
	unsigned char sha[32];
	int64_t version;

	/* Anything but what the broker writes is not an entry. */
	if (scan->rc != TF_OK || rest_len == 0 || rest_len > TF_ID_MAX_LEN
			|| !tf_rollback_parse(value, len, &version, owner, sha))
		return;
	memcpy(id, rest, rest_len);
	id[rest_len] = '\0';
	scan->rc = tf_rollback_note(scan->r, id, owner, version, sha);
}

int tf_query_rollback(struct tf_trace_store *s, struct tf_rollback *r)
{
	struct rollback_scan scan = { r, TF_OK };

	tf_trace_scan_meta(s, TF_ROLLBACK_META_PREFIX, restore_entry, &scan);
	return scan.rc;
}

struct history_build {
	FILE *out;
	size_t count;
	int rc;
	struct tf_err *err;
};

/* One policy event: a version, when it came into force, who signed it. */
static int history_one(void *ctx, const struct tf_event *ev)
{
	struct history_build *b = ctx;
	const char *at = strrchr(ev->values[0], '@');
	cJSON *o;

	if (ev->kind != TF_EVENT_POLICY)
		return 0;
	o = cJSON_CreateObject();
	if (o == NULL || !add_string(o, "policy", ev->values[0])
			|| !add_number(o, "version", at ? strtod(at + 1, NULL) : 0)
			|| !add_string(o, "org", ev->values[1]) || !add_number(o, "ts", (double)ev->ts_ms)
			|| !add_number(o, "seq", (double)ev->seq) || !add_string(o, "file", ev->values[3])
			|| !add_string(o, "sha256", ev->values[4]) || !add_string(o, "kid", ev->values[5])
			|| !add_string(o, "sig", ev->values[6])) {
		cJSON_Delete(o);
		b->rc = tf_err_set(b->err, TF_ERR_NOMEM, "out of memory");
		return 1;
	}
	b->rc = print_line(o, b->out, b->err);
	cJSON_Delete(o);
	b->count++;
	return b->rc != TF_OK;
}

int tf_query_policy_history(struct tf_trace_store *s, const char *policy_id, FILE *out,
		size_t *count, struct tf_err *err)
{
	struct history_build b = { out, 0, TF_OK, err };
	char name[8 + TF_ID_MAX_LEN], kept[TF_ROLLBACK_TEXT_MAX + 1], owner[TF_ID_MAX_LEN + 1];
	char topic[32 + 2 * TF_ID_MAX_LEN];
	unsigned char sha[32];
	int64_t version;

	*count = 0;
	/* The owner, from the version kept against a rollback, gives the
	 * topic that the policy's events are filed under. */
	if (!tf_id_is_valid(policy_id))
		return tf_err_set(err, TF_ERR_INVALID, "--policy: not a policy id");
	snprintf(name, sizeof(name), TF_ROLLBACK_META_PREFIX "%s", policy_id);
	if (!tf_trace_meta(s, name, kept, sizeof(kept))
			|| !tf_rollback_parse(kept, strlen(kept), &version, owner, sha))
		return TF_OK;
	snprintf(topic, sizeof(topic), "$trustflow/policies/%s/%s", owner, policy_id);
	tf_trace_scan_index(s, TF_INDEX_BY_TOPIC, topic, strlen(topic), 0, INT64_MAX, history_one,
		&b);
	*count = b.count;
	return b.rc;
}

/* --- verify --------------------------------------------------------------------- */

struct checkpoint_list {
	struct tf_checkpoint *items;
	uint32_t n, cap;
};

static int collect_checkpoint(void *ctx, const struct tf_checkpoint *cp)
{
	struct checkpoint_list *l = ctx;

	if (!tf_grow(&l->items, &l->cap, l->n, 64, UINT32_MAX))
		return TF_ERR_NOMEM;
	l->items[l->n++] = *cp;
	return 0;
}

static void add_key(void *ctx, const char *kid, const char *pem, size_t len)
{
	(void)kid;
	tf_keyring_add_pem(ctx, pem, len, NULL, NULL);
}

struct verify_walk {
	struct tf_verify_result *r;
	struct checkpoint_list *cps;
	size_t next_cp;            /* the next checkpoint to meet */
	uint64_t expect;           /* the next seq */
	uint64_t record_first;     /* the first seq of the record being checked */
	uint64_t pending;          /* its events checked so far */
	bool in_record;
	unsigned char prev[32];    /* the anchor's hash */
};

static int bad(struct tf_verify_result *r, uint64_t seq, const char *why)
{
	r->ok = false;
	r->first_bad_seq = seq;
	snprintf(r->reason, sizeof(r->reason), "%s", why);
	return 1;
}

/* Each event in order: no gap, decodable, its record's kept hash what
 * the chain gives, each checkpoint's hash the chain hash at its seq. A
 * changed byte is found at the record that holds it: the hashes of a
 * record's events are recomputed, only its last is kept. */
static int visit_verify_step(void *ctx, const struct tf_trace_step *step)
{
	struct verify_walk *v = ctx;
	char hex[65];

	if (step->seq != v->expect)
		return bad(v->r, v->expect, step->seq > v->expect ? "event missing"
			: "events out of order");
	if (step->ev == NULL)
		return bad(v->r, step->seq, "event bytes malformed");
	if (!v->in_record) {
		v->record_first = step->seq;
		v->in_record = true;
	}
	v->pending++;
	while (v->next_cp < v->cps->n && v->cps->items[v->next_cp].seq <= step->seq) {
		const struct tf_checkpoint *cp = &v->cps->items[v->next_cp++];

		if (cp->seq < step->seq)
			continue;   /* between two kept events: cannot be */
		tf_hex(step->hash, 32, hex);
		if (strcmp(hex, cp->hash) != 0)
			return bad(v->r, v->record_first, "checkpoint hash mismatch");
	}
	if (step->stored != NULL) {
		if (memcmp(step->hash, step->stored, 32) != 0)
			return bad(v->r, v->record_first, "chain hash mismatch");
		v->r->events += v->pending;
		v->pending = 0;
		v->in_record = false;
	}
	v->expect = step->seq + 1;
	return 0;
}

int tf_query_verify(struct tf_trace_store *s, const struct tf_keyring *ring,
		struct tf_verify_result *r, struct tf_err *err)
{
	struct checkpoint_list cps = { NULL, 0, 0 };
	struct tf_keyring *own = NULL;
	struct verify_walk v = { .r = r, .cps = &cps };
	uint64_t anchor, unsigned_seq = 0;
	const char *unsigned_why = NULL;
	int rc;

	memset(r, 0, sizeof(*r));
	r->ok = true;
	rc = tf_trace_scan_checkpoints(s, collect_checkpoint, &cps, err);
	if (rc == TF_ERR_INVALID) {
		free(cps.items);
		bad(r, 0, "a checkpoint is malformed");
		return TF_OK;
	}
	if (rc != TF_OK) {
		free(cps.items);
		return rc;
	}
	if (ring == NULL) {
		own = tf_keyring_new();
		if (own == NULL) {
			free(cps.items);
			return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
		}
		tf_trace_scan_keys(s, add_key, own);
		ring = own;
	}
	tf_trace_anchor(s, &anchor, v.prev);
	v.expect = anchor + 1;
	/* A checkpoint with a bad signature proves nothing: it counts as bad
	 * at the seq it claims to cover. */
	for (size_t i = 0; i < cps.n; i++) {
		enum tf_stamp_check c = tf_checkpoint_check(&cps.items[i], ring);

		if (c == TF_STAMP_VALID) {
			r->checkpoints++;
		} else if (unsigned_seq == 0) {
			unsigned_seq = cps.items[i].seq;
			unsigned_why = c == TF_STAMP_UNKNOWN_KEY ? "checkpoint signed with an unknown key"
				: "checkpoint signature invalid";
		}
	}
	/* Checkpoints up to the anchor cover pruned events; one at the anchor
	 * must name the anchor's hash. */
	for (; v.next_cp < cps.n && cps.items[v.next_cp].seq <= anchor; v.next_cp++) {
		char hex[65];

		tf_hex(v.prev, 32, hex);
		if (cps.items[v.next_cp].seq == anchor && strcmp(hex, cps.items[v.next_cp].hash) != 0)
			bad(r, anchor + 1, "the anchor does not match its checkpoint");
	}
	if (r->ok)
		tf_trace_walk(s, anchor + 1, visit_verify_step, &v);
	/* A record cut short. */
	if (r->ok && v.in_record)
		bad(r, v.record_first, "record incomplete");
	/* A checkpoint beyond the last event: events were removed from the
	 * end. */
	if (r->ok && v.next_cp < cps.n)
		bad(r, v.expect, "event missing");
	/* The first bad seq, of events and checkpoints. */
	if (unsigned_seq != 0 && (r->ok || unsigned_seq < r->first_bad_seq))
		bad(r, unsigned_seq, unsigned_why);
	free(cps.items);
	tf_keyring_free(own);
	return TF_OK;
}

void tf_query_print_verify(const struct tf_verify_result *r, FILE *out)
{
	fprintf(out, "{\"events\":%llu,\"checkpoints\":%llu,\"ok\":%s",
		(unsigned long long)r->events, (unsigned long long)r->checkpoints,
		r->ok ? "true" : "false");
	if (!r->ok)
		fprintf(out, ",\"first_bad_seq\":%llu,\"reason\":\"%s\"",
			(unsigned long long)r->first_bad_seq, r->reason);
	fputs("}\n", out);
}

/* --- export ----------------------------------------------------------------------- */

struct export_walk {
	FILE *out;
	size_t count;
	int rc;
	struct tf_err *err;
};

static int visit_export_step(void *ctx, const struct tf_trace_step *step)
{
	struct export_walk *x = ctx;
	const struct tf_event *ev = step->ev;
	const char *const *names;
	char hex[65];
	size_t n;
	cJSON *o;
	bool ok;

	if (ev == NULL) {
		x->rc = tf_err_set(x->err, TF_ERR_INVALID, "event %llu is unreadable; run "
			"tfctl trace verify", (unsigned long long)step->seq);
		return 1;
	}
	o = cJSON_CreateObject();
	ok = o != NULL && add_number(o, "seq", (double)ev->seq)
		&& add_number(o, "ts", (double)ev->ts_ms)
		&& add_string(o, "kind", tf_event_kind_name(ev->kind));
	names = tf_event_fields(ev->kind, &n);
	/* A field the event was recorded without is left out, as it was
	 * left out of the hashed bytes. */
	for (size_t i = 0; i < n && ok && ev->values[i] != NULL; i++)
		ok = add_string(o, names[i], ev->values[i]);
	if (ok && x->count == 0) {
		tf_hex(step->prev, 32, hex);
		ok = add_string(o, "prev", hex);
	}
	tf_hex(step->hash, 32, hex);
	ok = ok && add_string(o, "hash", hex);
	x->rc = ok ? print_line(o, x->out, x->err) : tf_err_set(x->err, TF_ERR_NOMEM,
		"out of memory");
	cJSON_Delete(o);
	x->count++;
	return x->rc != TF_OK;
}

int tf_query_export(struct tf_trace_store *s, int64_t since_ms, FILE *out, size_t *count,
		struct tf_err *err)
{
	struct export_walk x = { out, 0, TF_OK, err };

	tf_trace_walk(s, tf_trace_seq_at(s, since_ms), visit_export_step, &x);
	*count = x.count;
	return x.rc;
}

struct export_checkpoints {
	uint64_t from;   /* the first checkpoint printed covers this seq or a later one */
	FILE *out;
	size_t count;
	int rc;
	struct tf_err *err;
};

static int visit_export_checkpoint(void *ctx, const struct tf_checkpoint *cp)
{
	struct export_checkpoints *x = ctx;
	char *text;

	if (cp->seq < x->from)
		return 0;
	text = tf_checkpoint_to_json(cp);
	if (text == NULL) {
		x->rc = tf_err_set(x->err, TF_ERR_NOMEM, "out of memory");
		return 1;
	}
	fprintf(x->out, "{\"checkpoint\":%s}\n", text);
	free(text);
	x->count++;
	return 0;
}

int tf_query_export_checkpoints(struct tf_trace_store *s, int64_t since_ms, FILE *out,
		size_t *count, struct tf_err *err)
{
	uint64_t first = tf_trace_seq_at(s, since_ms);
	struct export_checkpoints x = { first > 0 ? first - 1 : 0, out, 0, TF_OK, err };
	int rc = tf_trace_scan_checkpoints(s, visit_export_checkpoint, &x, err);

	*count = x.count;
	if (rc == TF_ERR_INVALID)
		return tf_err_set(err, TF_ERR_INVALID, "a stored checkpoint is malformed; run "
			"tfctl trace verify");
	return rc != TF_OK && x.rc == TF_OK ? rc : x.rc;
}

/* --- impact --------------------------------------------------------------------------- */

struct impact_build {
	struct tf_trace_store *s;
	char policy_id[TF_TRACE_KEY_TEXT_MAX + 1];   /* "" : any */
	struct recipients_build recipients;
	cJSON *topics;
	uint64_t messages, held;
	bool failed;
	/* the alert */
	bool found;
	int64_t ts;        /* the alert's: the window's end */
	int64_t from;      /* the window's start */
	cJSON *alert;
};

static int find_alert(void *ctx, const struct tf_event *ev)
{
	struct impact_build *b = ctx;
	const char *const *f = ev->values;
	static const char *const names[] = { "id", "kind", "policy", "org", "client", "detail",
		"action" };

	if (ev->kind != TF_EVENT_ALERT)
		return 0;
	b->alert = cJSON_CreateObject();
	for (int i = 0; i < 7 && b->alert != NULL; i++) {
		if (!add_string(b->alert, names[i], f[i])) {
			cJSON_Delete(b->alert);
			b->alert = NULL;
		}
		if (i == 0 && b->alert && !add_number(b->alert, "ts", (double)ev->ts_ms)) {
			cJSON_Delete(b->alert);
			b->alert = NULL;
		}
	}
	b->failed = b->alert == NULL;
	b->found = true;
	b->ts = ev->ts_ms;
	tf_trace_policy_id(f[2], b->policy_id, sizeof(b->policy_id));
	return 1;
}

/* Each delivery of one message of the flow. */
static int impact_delivery(void *ctx, const struct tf_event *ev)
{
	struct impact_build *b = ctx;
	struct recipient *r;

	if (ev->kind != TF_EVENT_DELIVERY || strcmp(ev->values[4], "delivered") != 0)
		return 0;
	r = recipient(&b->recipients, ev->values[2], strlen(ev->values[2]), ev->values[3],
		strlen(ev->values[3]), ev->ts_ms);
	if (r == NULL)
		return b->failed = true;
	r->messages++;
	r->last_ts = ev->ts_ms;
	return 0;
}

static bool has_topic(const cJSON *topics, const char *topic)
{
	const cJSON *t;

	cJSON_ArrayForEach(t, topics)
		if (strcmp(t->valuestring, topic) == 0)
			return true;
	return false;
}

/* Each message the flow's publisher sent from the window's start on:
 * those after the alert count only as held (a quarantine holds the rest
 * of the flow, which comes after the alert that started it). */
static int impact_message(void *ctx, const struct tf_event *ev)
{
	struct impact_build *b = ctx;
	char policy[TF_TRACE_KEY_TEXT_MAX + 1], topic[TF_TRACE_KEY_TEXT_MAX + 1];
	unsigned char id[16];

	if (ev->kind != TF_EVENT_MESSAGE)
		return 0;
	tf_trace_policy_id(ev->values[4], policy, sizeof(policy));
	if (b->policy_id[0] != '\0' && strcmp(policy, b->policy_id) != 0)
		return 0;
	b->held += strcmp(ev->values[7], "quarantined") == 0;
	if (ev->ts_ms > b->ts)
		return 0;
	b->messages++;
	snprintf(topic, sizeof(topic), "%s", ev->values[1]);
	if (!has_topic(b->topics, topic) && cJSON_GetArraySize(b->topics) < 100
			&& !cJSON_AddItemToArray(b->topics, cJSON_CreateString(topic)))
		return b->failed = true;
	if (!tf_trace_id_bytes(ev->values[0], id))
		return 0;
	/* Deliveries within the window only: a queued or released copy
	 * delivered after the alert is not part of what happened before it. */
	tf_trace_scan_index(b->s, TF_INDEX_BY_ID, id, 16, b->from, b->ts, impact_delivery, b);
	return b->failed;
}

cJSON *tf_query_impact(struct tf_trace_store *s, const char *alert_id, int64_t window_ms,
		struct tf_err *err)
{
	struct impact_build b = { .s = s };
	const char *client;
	unsigned char id[16];
	cJSON *out = NULL, *list;
	char flow[600];

	if (!tf_trace_id_bytes(alert_id, id)) {
		tf_err_set(err, TF_ERR_INVALID, "\"%s\" is not an alert id (32 hex digits)", alert_id);
		return NULL;
	}
	tf_trace_scan_index(s, TF_INDEX_BY_ID, id, 16, 0, INT64_MAX, find_alert, &b);
	if (!b.found || b.failed) {
		cJSON_Delete(b.alert);
		tf_err_set(err, b.failed ? TF_ERR_NOMEM : TF_ERR_INVALID,
			b.failed ? "out of memory" : "no such alert");
		return NULL;
	}
	client = cJSON_GetObjectItemCaseSensitive(b.alert, "client")->valuestring;
	b.recipients.index = tf_strmap_new();
	b.topics = cJSON_CreateArray();
	b.from = b.ts - window_ms;
	if (b.recipients.index != NULL && b.topics != NULL)
		tf_trace_scan_index(s, TF_INDEX_BY_PUBLISHER, client, strlen(client), b.from,
			INT64_MAX, impact_message, &b);
	snprintf(flow, sizeof(flow), "%s/%s", b.policy_id[0] ? b.policy_id : "*", client);
	out = cJSON_CreateObject();
	if (out != NULL && !b.failed && b.recipients.index != NULL && b.topics != NULL
			&& cJSON_AddItemToObject(out, "alert", b.alert)) {
		b.alert = NULL;
		if (b.recipients.n > 0)
			qsort(b.recipients.list, b.recipients.n, sizeof(*b.recipients.list), by_client);
		list = cJSON_CreateArray();
		for (size_t i = 0; list != NULL && i < b.recipients.n; i++) {
			cJSON *o = cJSON_CreateObject();
			const struct recipient *r = &b.recipients.list[i];

			if (o == NULL || !add_string(o, "org", r->org) || !add_string(o, "client", r->client)
					|| !add_number(o, "messages", (double)r->messages)
					|| !add_number(o, "first_ts", (double)r->first_ts)
					|| !add_number(o, "last_ts", (double)r->last_ts)
					|| !cJSON_AddItemToArray(list, o)) {
				cJSON_Delete(o);
				cJSON_Delete(list);
				list = NULL;
			}
		}
		if (list == NULL || !add_string(out, "flow", flow)
				|| !add_number(out, "from", (double)(b.ts - window_ms))
				|| !add_number(out, "until", (double)b.ts)
				|| !add_number(out, "messages", (double)b.messages)
				|| !add_number(out, "held", (double)b.held)
				|| !cJSON_AddItemToObject(out, "topics", b.topics)
				|| (b.topics = NULL, !cJSON_AddItemToObject(out, "recipients", list))) {
			cJSON_Delete(out);
			out = NULL;
		}
	} else {
		cJSON_Delete(out);
		out = NULL;
	}
	if (out == NULL)
		tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	cJSON_Delete(b.alert);
	cJSON_Delete(b.topics);
	for (size_t i = 0; i < b.recipients.n; i++) {
		free(b.recipients.list[i].client);
		free(b.recipients.list[i].org);
	}
	free(b.recipients.list);
	tf_strmap_free(b.recipients.index);
	return out;
}

/* --- receive times ---------------------------------------------------------------------- */

struct received_find {
	const char *topic;
	int64_t ts;
	char *label;
	size_t cap;
};

/* Whether a message of this status went, or may go (released), to
 * subscribers under its own receive time. */
static bool passed_on(const char *status)
{
	return strcmp(status, "delivered") == 0 || strcmp(status, "rerouted") == 0
		|| strcmp(status, "quarantined") == 0;
}

/* Newest first: the first match is the latest message, and the scan
 * stops there, however many messages before it had the same payload. */
static int visit_received(void *ctx, const struct tf_event *ev)
{
	struct received_find *f = ctx;

	if (ev->kind != TF_EVENT_MESSAGE || strcmp(ev->values[1], f->topic) != 0
			|| !passed_on(ev->values[7]))
		return 0;
	f->ts = ev->ts_ms;
	if (f->label != NULL)
		snprintf(f->label, f->cap, "%s", ev->values[4]);
	return 1;
}

int64_t tf_query_received_at(struct tf_trace_store *s, const char *topic, const void *payload,
		uint32_t payloadlen, char *label, size_t cap)
{
	struct received_find f = { topic, INT64_MIN, label, cap };
	unsigned char sha[32];

	tf_sha256(payload, payloadlen, sha);
	tf_trace_scan_index_newest(s, TF_INDEX_BY_SHA, sha, 32, visit_received, &f);
	return f.ts;
}
