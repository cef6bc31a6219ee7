#include "broker/trace/trace_store.h"
#include "broker/trace/store_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "broker/stamp/fields.h"
#include "broker/stamp/provenance.h"
#include "broker/trace/record.h"
#include "broker/util/growable.h"
#include "broker/util/strmap.h"
#include "policy/policy.h"

#define INITIAL_MAP (64ull * 1024 * 1024)

/* The writer's cache of name numbers is dropped when it holds this many
 * (the name_ids table answers the rest). */
#define NAME_CACHE_MAX (1u << 20)

static const char *const db_names[DB_COUNT] = {
	"records", "names", "name_ids", "by_id", "by_policy", "by_publisher", "by_recipient",
	"by_topic", "by_sha", "recipients", "checkpoints", "meta", "held",
};

/* The indexes keep record seqs (8 bytes) as sorted fixed-size duplicates
 * of the key looked up, appended in seq order: LMDB packs them densely. */
#define INDEX_FLAGS (MDB_DUPSORT | MDB_DUPFIXED)
static const unsigned db_flags[DB_COUNT] = {
	[DB_BY_ID] = INDEX_FLAGS, [DB_BY_POLICY] = INDEX_FLAGS, [DB_BY_PUBLISHER] = INDEX_FLAGS,
	[DB_BY_RECIPIENT] = INDEX_FLAGS, [DB_BY_TOPIC] = INDEX_FLAGS, [DB_BY_SHA] = INDEX_FLAGS,
	[DB_RECIPIENTS] = INDEX_FLAGS,
};

static const enum db index_db[] = {
	[TF_INDEX_BY_ID] = DB_BY_ID, [TF_INDEX_BY_POLICY] = DB_BY_POLICY,
	[TF_INDEX_BY_PUBLISHER] = DB_BY_PUBLISHER, [TF_INDEX_BY_RECIPIENT] = DB_BY_RECIPIENT,
	[TF_INDEX_BY_TOPIC] = DB_BY_TOPIC, [TF_INDEX_BY_SHA] = DB_BY_SHA,
};
#define INDEXES 6

/* --- small helpers --------------------------------------------------------- */

void tf_trace_put_u64(unsigned char out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		out[i] = (unsigned char)v;
}

uint64_t tf_trace_get_u64(const unsigned char in[8])
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | in[i];
	return v;
}

bool tf_trace_id_bytes(const char *hex, unsigned char out[16])
{
	return tf_unhex(hex, strlen(hex), out, 16);
}

bool tf_trace_sha_bytes(const char *hex, unsigned char out[32])
{
	return tf_unhex(hex, strlen(hex), out, 32);
}

void tf_trace_policy_id(const char *label, char *out, size_t cap)
{
	size_t n = tf_policy_label_id_len(label);

	if (n >= cap)
		n = cap - 1;
	memcpy(out, label, n);
	out[n] = '\0';
}

int tf_trace_lmdb_error(struct tf_err *err, const char *dir, const char *what, int rc)
{
	if (rc == MDB_MAP_FULL || rc == ENOSPC)
		return tf_err_set(err, TF_ERR_FULL, "trace store %s: %s: %s", dir, what,
			rc == ENOSPC ? "the disk is full" : "the store is at its size limit");
	return tf_err_set(err, rc == ENOMEM ? TF_ERR_NOMEM : TF_ERR_IO, "trace store %s: %s: %s",
		dir, what, mdb_strerror(rc));
}


/* --- names ------------------------------------------------------------------ */

/* A reader's recently read names, by number: a read meets the same few
 * (organizations, policies, outcomes) over and over. Texts point into
 * the snapshot's pages. */
#define NAME_SLOTS 1024u
struct name_slot {
	uint32_t number;   /* 0: empty */
	const char *text;
};

/* The names of one transaction: the writer's (which may add names) or a
 * reader's. */
struct names_txn {
	struct tf_trace_store *s;
	MDB_txn *txn;
	int rc;     /* why a name could not be given (an LMDB error, ENOMEM) */
	struct name_slot *slots;   /* NULL: no cache */
};

static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* The number of text in the store, or 0 when it has none. */
static uint32_t stored_name(struct names_txn *n, const char *text, size_t len)
{
	unsigned char sha[32];
	MDB_val k = mval(sha, 32), v;

	tf_sha256(text, len, sha);
	if (mdb_get(n->txn, n->s->dbi[DB_NAME_IDS], &k, &v) != 0 || v.mv_size != 4)
		return 0;
	return get_be32(v.mv_data);
}

/* Adds a number to the writer's cache, starting it again when full. */
static void cache_name(struct tf_trace_store *s, const char *text, size_t len, uint32_t number)
{
	if (s->name_cache != NULL && tf_strmap_count(s->name_cache) >= NAME_CACHE_MAX) {
		tf_strmap_free(s->name_cache);
		s->name_cache = NULL;
	}
	if (s->name_cache == NULL)
		s->name_cache = tf_strmap_new();
	if (s->name_cache != NULL)
		tf_strmap_put(s->name_cache, text, len, number, NULL);
}

/* Gives text[0..len) the next number, in the names table and name_ids;
 * 0 when that fails (n->rc says why). */
static uint32_t add_name(struct names_txn *n, const char *text, size_t len)
{
	struct tf_trace_store *s = n->s;
	unsigned char sha[32], num[4];
	uint32_t at = s->last_name + 1;
	char *stored;
	MDB_val k, v;
	int rc;

	if (s->last_name == UINT32_MAX || (stored = malloc(len + 1)) == NULL) {
		n->rc = ENOMEM;
		return 0;
	}
	memcpy(stored, text, len);
	stored[len] = '\0';
	put_be32(num, at);
	k = mval(num, 4);
	v = mval(stored, len + 1);
	rc = mdb_put(n->txn, s->dbi[DB_NAMES], &k, &v, MDB_APPEND);
	free(stored);
	tf_sha256(text, len, sha);
	k = mval(sha, 32);
	v = mval(num, 4);
	if (rc == 0)
		rc = mdb_put(n->txn, s->dbi[DB_NAME_IDS], &k, &v, 0);
	if (rc != 0) {
		n->rc = rc;
		return 0;
	}
	s->last_name = at;
	return at;
}

static uint32_t intern_name(void *ctx, const char *text, size_t len)
{
	struct names_txn *n = ctx;
	struct tf_trace_store *s = n->s;
	uint32_t at = 0;

	for (uint32_t i = 0; i < RECENT_NAMES && at == 0; i++)
		at = tf_name_memo_get(&s->recent[i], text, len);
	if (at != 0)
		return at;
	if (s->name_cache == NULL || !tf_strmap_get(s->name_cache, text, len, &at)) {
		at = stored_name(n, text, len);
		if (at == 0 && (at = add_name(n, text, len)) == 0)
			return 0;
		cache_name(s, text, len, at);
	}
	tf_name_memo_set(&s->recent[s->recent_next++ % RECENT_NAMES], text, len, at);
	return at;
}

static const char *name_text(void *ctx, uint32_t number)
{
	struct names_txn *n = ctx;
	struct name_slot *slot = n->slots ? &n->slots[number % NAME_SLOTS] : NULL;
	unsigned char num[4];
	MDB_val k = mval(num, 4), v;

	if (slot != NULL && slot->number == number)
		return slot->text;
	put_be32(num, number);
	if (mdb_get(n->txn, n->s->dbi[DB_NAMES], &k, &v) != 0 || v.mv_size == 0
			|| ((const char *)v.mv_data)[v.mv_size - 1] != '\0')
		return NULL;
	if (slot != NULL)
		*slot = (struct name_slot){ number, v.mv_data };
	return v.mv_data;
}

static struct tf_record_names names_of(struct names_txn *n)
{
	struct tf_record_names names = { n, intern_name, name_text };

	return names;
}

/* Names seen only for their times: every name reads as "?" (not "",
 * which is no name). */
static const char *no_text(void *ctx, uint32_t number)
{
	(void)ctx;
	(void)number;
	return "?";
}

static const struct tf_record_names times_only = { NULL, NULL, no_text };

/* The writer's transaction was aborted: the numbers it gave are not
 * stored, so the cache is started again. */
static void forget_new_names(struct tf_trace_store *s, uint32_t last_before)
{
	s->last_name = last_before;
	tf_strmap_free(s->name_cache);
	s->name_cache = tf_strmap_new();
	memset(s->recent, 0, sizeof(s->recent));
}

/* --- what each index keys an event by ----------------------------------------- */

/* The values of ev an index files it under (at most two), as text: an id
 * or payload hash in hex, a policy label (filed under its policy id),
 * a client or a topic. */
static size_t index_values(enum tf_trace_index ix, const struct tf_event *ev, const char *out[2])
{
	const char *const *f = ev->values;
	size_t n = 0;

	switch (ix) {
	case TF_INDEX_BY_ID:
		if (ev->kind == TF_EVENT_POLICY_SET || ev->kind == TF_EVENT_POLICY)
			break;
		out[n++] = f[0];
		/* A view copy is found from its original too. */
		if (ev->kind == TF_EVENT_MESSAGE && f[12] != NULL && f[12][0] != '\0')
			out[n++] = f[12];
		break;
	case TF_INDEX_BY_POLICY:
		if (ev->kind == TF_EVENT_MESSAGE)
			out[n++] = f[4];
		else if (ev->kind == TF_EVENT_DELIVERY)
			out[n++] = f[1];
		else if (ev->kind == TF_EVENT_ALERT)
			out[n++] = f[2];
		else if (ev->kind == TF_EVENT_POLICY)
			out[n++] = f[0];
		break;
	case TF_INDEX_BY_PUBLISHER:
		if (ev->kind == TF_EVENT_MESSAGE)
			out[n++] = f[3];
		break;
	case TF_INDEX_BY_RECIPIENT:
		if (ev->kind == TF_EVENT_DELIVERY)
			out[n++] = f[2];
		break;
	case TF_INDEX_BY_TOPIC:
		/* A policy event is filed under the topic the policy is
		 * published on: a policy's history is one list. */
		if (ev->kind == TF_EVENT_MESSAGE)
			out[n++] = f[1];
		else if (ev->kind == TF_EVENT_POLICY)
			out[n++] = f[2];
		break;
	case TF_INDEX_BY_SHA:
		if (ev->kind == TF_EVENT_MESSAGE)
			out[n++] = f[5];
		break;
	}
	return n;
}

/* The key a value is filed under: 16 or 32 bytes for ids and hashes, the
 * number of the name for text. Returns its length; 0 when it is filed
 * nowhere (empty, malformed, or a name that cannot be had). name: gives
 * the number of a text (the writer's interns, a reader's looks up). */
static size_t index_key(enum tf_trace_index ix, const char *value,
		uint32_t (*name)(void *ctx, const char *text, size_t len), void *ctx,
		unsigned char key[32])
{
	char policy[TF_TRACE_KEY_TEXT_MAX + 1];
	uint32_t number;

	if (value == NULL || value[0] == '\0')
		return 0;
	if (ix == TF_INDEX_BY_ID)
		return tf_trace_id_bytes(value, key) ? 16 : 0;
	if (ix == TF_INDEX_BY_SHA)
		return tf_trace_sha_bytes(value, key) ? 32 : 0;
	if (ix == TF_INDEX_BY_POLICY) {
		tf_trace_policy_id(value, policy, sizeof(policy));
		value = policy;
	}
	number = name(ctx, value, strlen(value));
	if (number == 0)
		return 0;
	put_be32(key, number);
	return 4;
}

static uint32_t lookup_name(void *ctx, const char *text, size_t len)
{
	return stored_name(ctx, text, len);
}

/* --- records ------------------------------------------------------------------ */

/* Opens a stored record (key, value) for reading: its first seq and the
 * chain hash it keeps. */
static int open_record(struct tf_record_reader *r, const MDB_val *k, const MDB_val *v,
		uint64_t *first, const unsigned char **stored, struct tf_err *err)
{
	if (k->mv_size != 8 || v->mv_size < 32)
		return tf_err_set(err, TF_ERR_INVALID, "a record's key or value is malformed");
	*first = tf_trace_get_u64(k->mv_data);
	*stored = v->mv_data;
	return tf_record_open(r, (const unsigned char *)v->mv_data + 32, v->mv_size - 32,
		*first, err);
}

/* --- opening --------------------------------------------------------------- */

int tf_trace_read_format(MDB_txn *txn, char format[8])
{
	MDB_dbi meta;
	MDB_val k = mval("format", 6), v;
	int rc = mdb_dbi_open(txn, "meta", 0, &meta);

	format[0] = '\0';
	if (rc == 0 && (rc = mdb_get(txn, meta, &k, &v)) == 0 && v.mv_size < 8) {
		memcpy(format, v.mv_data, v.mv_size);
		format[v.mv_size] = '\0';
	}
	return rc;
}

static int open_dbs(struct tf_trace_store *s, struct tf_err *err)
{
	MDB_txn *txn;
	char format[8] = "";
	MDB_val k = mval("format", 6), v;
	int rc = mdb_txn_begin(s->env, NULL, s->writable ? 0 : MDB_RDONLY, &txn);

	if (rc != 0)
		return tf_trace_lmdb_error(err, s->dir, "cannot begin", rc);
	/* A 0.1 store is told apart before anything is created in it. */
	if (tf_trace_read_format(txn, format) == 0 && strcmp(format, FORMAT_0_1) == 0) {
		mdb_txn_abort(txn);
		return tf_err_set(err, TF_ERR_INVALID, "%s: trace store format 1 (written by "
			"trustflow 0.1); this version reads format 2. Copy it into a new store with "
			"`tfctl trace --db %s migrate --out NEW_DIR`, then use NEW_DIR", s->dir, s->dir);
	}
	for (int i = 0; i < DB_COUNT && rc == 0; i++)
		rc = mdb_dbi_open(txn, db_names[i], db_flags[i] | (s->writable ? MDB_CREATE : 0),
			&s->dbi[i]);
	if (rc == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return tf_err_set(err, TF_ERR_INVALID, "%s is not a trustflow trace store", s->dir);
	}
	if (rc == 0 && (rc = mdb_get(txn, s->dbi[DB_META], &k, &v)) == 0 && v.mv_size < sizeof(format)) {
		memcpy(format, v.mv_data, v.mv_size);
		format[v.mv_size] = '\0';
	}
	if (rc == MDB_NOTFOUND && s->writable) {
		v = mval(FORMAT, 1);
		rc = mdb_put(txn, s->dbi[DB_META], &k, &v, 0);
		strcpy(format, FORMAT);
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return tf_trace_lmdb_error(err, s->dir, "cannot open its tables", rc);
	}
	if (strcmp(format, FORMAT) != 0) {
		mdb_txn_abort(txn);
		return tf_err_set(err, TF_ERR_INVALID, "%s: trace store format \"%s\", expected %s",
			s->dir, format, FORMAT);
	}
	rc = mdb_txn_commit(txn);
	return rc == 0 ? TF_OK : tf_trace_lmdb_error(err, s->dir, "cannot open its tables", rc);
}

/* The highest name number given. */
static int load_last_name(struct tf_trace_store *s, MDB_txn *txn)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, s->dbi[DB_NAMES], &c);

	s->last_name = 0;
	if (rc != 0)
		return rc;
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size == 4)
		s->last_name = get_be32(k.mv_data);
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The writer's chain state from the last stored record. */
static int load_state(struct tf_trace_store *s, struct tf_err *err)
{
	struct tf_record_reader reader;
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v, mk = mval("stamp_seq", 9), ak = mval("anchor", 6);
	int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);

	memset(&s->state, 0, sizeof(s->state));
	if (rc != 0)
		return tf_trace_lmdb_error(err, s->dir, "cannot read", rc);
	rc = load_last_name(s, txn);
	if (rc == 0 && (rc = mdb_cursor_open(txn, s->dbi[DB_RECORDS], &c)) == 0) {
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
		mdb_cursor_close(c);
	}
	if (rc == 0) {
		const unsigned char *stored;
		struct tf_event ev;
		uint64_t first;
		struct tf_err why = { "" };
		bool ok = open_record(&reader, &k, &v, &first, &stored, &why) == TF_OK;

		for (uint32_t i = tf_record_count(&reader); ok && i > 0; i--)
			ok = tf_record_next(&reader, &times_only, &ev, &why) == TF_OK;
		if (!ok) {
			mdb_txn_abort(txn);
			return tf_err_set(err, TF_ERR_INVALID, "%s: the last trace record is unreadable "
				"(%s); run tfctl trace verify", s->dir, why.msg);
		}
		s->state.seq = ev.seq;
		memcpy(s->state.hash, stored, 32);
		s->state.ts_ms = ev.ts_ms;
	} else if (rc == MDB_NOTFOUND) {
		/* Everything was pruned: the chain goes on from the anchor. */
		if (mdb_get(txn, s->dbi[DB_META], &ak, &v) == 0 && v.mv_size == 40) {
			s->state.seq = tf_trace_get_u64(v.mv_data);
			memcpy(s->state.hash, (const unsigned char *)v.mv_data + 8, 32);
		}
		rc = 0;
	}
	if (rc == 0 && mdb_get(txn, s->dbi[DB_META], &mk, &v) == 0 && v.mv_size < 21) {
		char text[21];

		memcpy(text, v.mv_data, v.mv_size);
		text[v.mv_size] = '\0';
		s->state.stamp_seq = strtoull(text, NULL, 10);
	}
	mdb_txn_abort(txn);
	return rc == 0 ? TF_OK : tf_trace_lmdb_error(err, s->dir, "cannot read", rc);
}

int tf_trace_open(const char *dir, bool writable, uint64_t max_bytes,
		struct tf_trace_store **out, struct tf_err *err)
{
	struct tf_trace_store *s;
	MDB_envinfo info;
	int rc;

	*out = NULL;
	if (writable && mkdir(dir, 0750) != 0 && errno != EEXIST)
		return tf_err_set(err, TF_ERR_IO, "trace store %s: cannot create it: %s", dir,
			strerror(errno));
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->dir = strdup(dir)) == NULL) {
		free(s);
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	}
	s->writable = writable;
	s->max_bytes = max_bytes;
	pthread_rwlock_init(&s->map_lock, NULL);
	if (writable) {
		/* Without it each event is hashed with a context of its own. */
		s->chain = tf_event_hasher_new();
		s->name_cache = tf_strmap_new();
		if (s->name_cache == NULL) {
			tf_trace_close(s);
			return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
		}
	}
	rc = mdb_env_create(&s->env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(s->env, DB_COUNT + 1);
	if (rc == 0 && writable)
		rc = mdb_env_set_mapsize(s->env, max_bytes && max_bytes < INITIAL_MAP
			? max_bytes : INITIAL_MAP);
	/* NOSYNC: commits make events visible at once; tf_trace_sync puts
	 * them on disk as often as trace_sync_ms asks. LMDB keeps the file
	 * consistent either way. */
	if (rc == 0)
		rc = mdb_env_open(s->env, dir, writable ? MDB_NOSYNC : MDB_RDONLY, 0640);
	if (rc != 0) {
		int status = tf_trace_lmdb_error(err, dir, "cannot open", rc);

		if (rc == ENOENT)
			status = tf_err_set(err, TF_ERR_IO, "trace store %s: no such store", dir);
		tf_trace_close(s);
		return status;
	}
	mdb_env_info(s->env, &info);
	s->map_bytes = info.me_mapsize;
	if ((rc = open_dbs(s, err)) != TF_OK || (writable && (rc = load_state(s, err)) != TF_OK)) {
		tf_trace_close(s);
		return rc;
	}
	*out = s;
	return TF_OK;
}

void tf_trace_close(struct tf_trace_store *s)
{
	if (s == NULL)
		return;
	if (s->rtxn != NULL)
		mdb_txn_abort(s->rtxn);
	if (s->env != NULL)
		mdb_env_close(s->env);
	free(s->buf);
	free(s->keys);
	tf_record_builder_free(&s->record);
	tf_strmap_free(s->name_cache);
	tf_event_hasher_free(s->chain);
	free(s->dir);
	pthread_rwlock_destroy(&s->map_lock);
	free(s);
}

/* --- writing --------------------------------------------------------------- */

static bool reserve(char **buf, size_t *cap, size_t need)
{
	char *grown;

	if (need <= *cap)
		return true;
	grown = realloc(*buf, need);
	if (grown == NULL)
		return false;
	*buf = grown;
	*cap = need;
	return true;
}

static int put(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, const void *val,
		size_t vlen, unsigned flags)
{
	MDB_val k = mval(key, klen), v = mval(val, vlen);

	return mdb_put(txn, dbi, &k, &v, flags);
}

/* The id of the latest message event filed by content on topic with
 * payload hash sha into id (33 bytes), or "" when there is none. */
static int find_message(struct tf_trace_store *s, MDB_txn *txn, const char *topic,
		const char *sha_hex, char id[TF_MSGID_LEN + 1])
{
	struct tf_record_reader reader;
	struct names_txn n = { s, txn, 0, NULL };
	struct tf_record_names names = names_of(&n);
	unsigned char sha[32];
	MDB_cursor *c, *records;
	MDB_val k = mval(sha, 32), v;
	int rc;

	id[0] = '\0';
	if (!tf_trace_sha_bytes(sha_hex, sha))
		return 0;
	if ((rc = mdb_cursor_open(txn, s->dbi[DB_BY_SHA], &c)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, s->dbi[DB_RECORDS], &records)) != 0) {
		mdb_cursor_close(c);
		return rc;
	}
	/* The latest message with this payload comes first. */
	rc = mdb_cursor_get(c, &k, &v, MDB_SET);
	if (rc == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST_DUP);
	for (; rc == 0 && id[0] == '\0'; rc = mdb_cursor_get(c, &k, &v, MDB_PREV_DUP)) {
		MDB_val rk = v, rv;
		const unsigned char *stored;
		uint64_t first;
		struct tf_event ev;

		if (v.mv_size != 8 || mdb_cursor_get(records, &rk, &rv, MDB_SET) != 0
				|| open_record(&reader, &rk, &rv, &first, &stored, NULL) != TF_OK)
			continue;
		for (uint32_t i = tf_record_count(&reader); i > 0; i--) {
			if (tf_record_next(&reader, &names, &ev, NULL) != TF_OK)
				break;
			if (ev.kind == TF_EVENT_MESSAGE && strcmp(ev.values[5], sha_hex) == 0
					&& strcmp(ev.values[1], topic) == 0)
				snprintf(id, TF_MSGID_LEN + 1, "%s", ev.values[0]);
		}
	}
	mdb_cursor_close(records);
	mdb_cursor_close(c);
	return 0;
}

/* Keeps (record != NULL) or removes a held message: key flow 0x00 seq. */
static int put_held(struct tf_trace_store *s, MDB_txn *txn, const char *flow, uint64_t seq,
		const void *record, size_t len)
{
	unsigned char key[TF_TRACE_KEY_TEXT_MAX + 9];
	size_t n = strlen(flow);
	MDB_val k, v;
	int rc;

	if (n == 0 || n > TF_TRACE_KEY_TEXT_MAX - 1)
		return EINVAL;
	memcpy(key, flow, n);
	key[n] = 0;
	tf_trace_put_u64(key + n + 1, seq);
	k = mval(key, n + 9);
	if (record == NULL) {
		rc = mdb_del(txn, s->dbi[DB_HELD], &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	v = mval(record, len);
	return mdb_put(txn, s->dbi[DB_HELD], &k, &v, 0);
}

/* A delivery made, for `recipients`: filed under its policy id's and its
 * client's name numbers (8 bytes), so that each pair's records are
 * appended at the end of their own list. 0 when ev is none or names no
 * policy. */
static size_t recipient_key(const struct tf_event *ev,
		uint32_t (*name)(void *ctx, const char *text, size_t len), void *ctx,
		unsigned char key[32])
{
	uint32_t number;

	if (ev->kind != TF_EVENT_DELIVERY || strcmp(ev->values[4], "delivered") != 0
			|| ev->values[2][0] == '\0'
			|| index_key(TF_INDEX_BY_POLICY, ev->values[1], name, ctx, key) != 4)
		return 0;
	number = name(ctx, ev->values[2], strlen(ev->values[2]));
	if (number == 0)
		return 0;
	put_be32(key + 4, number);
	return 8;
}

/* Notes key (klen bytes; none when 0) under index db for the record
 * being built, unless the same index noted it last: a fan-out's
 * deliveries share their message's policy. */
static int note_key(struct tf_trace_store *s, enum db db, const unsigned char *key, size_t klen)
{
	const struct index_key *last = s->last_key[db] ? &s->keys[s->last_key[db] - 1] : NULL;
	struct index_key *k;

	if (klen == 0 || (last != NULL && last->klen == klen && memcmp(last->key, key, klen) == 0))
		return 0;
	if (!tf_grow(&s->keys, &s->cap_keys, s->n_keys, 16, UINT32_MAX))
		return ENOMEM;
	k = &s->keys[s->n_keys++];
	k->db = (uint8_t)db;
	k->klen = (uint8_t)klen;
	memcpy(k->key, key, klen);
	s->last_key[db] = s->n_keys;
	return 0;
}

/* Files ev's index keys under the record being built. A delivery that
 * joins the record names the record's message, filed with it already. */
static int note_keys(struct tf_trace_store *s, struct names_txn *n, const struct tf_event *ev,
		bool joins)
{
	unsigned char key[32];
	int rc = note_key(s, DB_RECIPIENTS, key, recipient_key(ev, intern_name, n, key));

	for (int ix = 0; ix < INDEXES && rc == 0; ix++) {
		const char *values[2];
		/* by_sha only as asked (file_by_content). */
		size_t count = (ix == TF_INDEX_BY_ID && joins) || ix == TF_INDEX_BY_SHA ? 0
			: index_values((enum tf_trace_index)ix, ev, values);

		for (size_t i = 0; i < count && rc == 0; i++)
			rc = note_key(s, index_db[ix], key,
				index_key((enum tf_trace_index)ix, values[i], intern_name, n, key));
	}
	return rc;
}

/* The record of the message event of message id (32 hex digits) into
 * seq: the first record by_id names, for the message's event comes
 * before any other about it. Returns MDB_NOTFOUND when there is none. */
static int message_record(struct tf_trace_store *s, MDB_txn *txn, const char *id,
		unsigned char seq[8])
{
	unsigned char key[16];
	MDB_val k = mval(key, 16), v;
	MDB_cursor *c;
	int rc;

	if (!tf_trace_id_bytes(id, key))
		return MDB_NOTFOUND;
	if ((rc = mdb_cursor_open(txn, s->dbi[DB_BY_ID], &c)) != 0)
		return rc;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET);
	if (rc == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_FIRST_DUP);
	if (rc == 0 && v.mv_size == 8)
		memcpy(seq, v.mv_data, 8);
	else if (rc == 0)
		rc = MDB_NOTFOUND;
	mdb_cursor_close(c);
	return rc;
}

/* Files the message ev is about under by_sha by its payload hash
 * sha_hex: ev's record when that holds the message's event (a message
 * event, or a delivery joining its message's record), else the record
 * of the message's event, which is stored already. */
static int file_by_content(struct tf_trace_store *s, MDB_txn *txn, const struct tf_event *ev,
		bool joins, const char *sha_hex)
{
	unsigned char sha[32], seq[8];
	int rc;

	if (!tf_trace_sha_bytes(sha_hex, sha))
		return 0;
	if (ev->kind == TF_EVENT_MESSAGE || (joins && s->record_has_message))
		return note_key(s, DB_BY_SHA, sha, 32);
	if (ev->kind != TF_EVENT_DELIVERY)
		return 0;
	rc = message_record(s, txn, ev->values[0], seq);
	if (rc == MDB_NOTFOUND)
		return 0;   /* pruned, or never recorded: nothing to find */
	if (rc == 0)
		rc = put(txn, s->dbi[DB_BY_SHA], sha, 32, seq, 8, MDB_NODUPDATA);
	return rc == MDB_KEYEXIST ? 0 : rc;
}

/* Empties the record being built and its index entries. */
static void forget_record(struct tf_trace_store *s)
{
	tf_record_reset(&s->record);
	s->n_keys = 0;
	memset(s->last_key, 0, sizeof(s->last_key));
}

/* Stores the record being built, with its chain hash (its last event's)
 * and its index entries, each key once. */
static int flush_record(struct tf_trace_store *s, MDB_txn *txn, const unsigned char hash[32])
{
	const unsigned char *bytes;
	unsigned char key[8];
	size_t len;
	int rc;

	if (s->record.count == 0)
		return 0;
	bytes = tf_record_bytes(&s->record, &len);
	if (!reserve(&s->buf, &s->cap, 32 + len))
		return ENOMEM;
	memcpy(s->buf, hash, 32);
	memcpy(s->buf + 32, bytes, len);
	tf_trace_put_u64(key, s->record_seq);
	if ((rc = put(txn, s->dbi[DB_RECORDS], key, 8, s->buf, 32 + len, MDB_APPEND)) != 0)
		return rc;
	for (uint32_t i = 0; i < s->n_keys && rc == 0; i++) {
		MDB_dbi dbi = s->dbi[s->keys[i].db];
		MDB_val k = mval(s->keys[i].key, s->keys[i].klen), d = mval(key, 8);

		/* Entries come in seq order: each goes at the end of its key's.
		 * A key noted twice (one client's two sessions) is put once. */
		rc = mdb_put(txn, dbi, &k, &d, MDB_APPENDDUP);
		if (rc == MDB_KEYEXIST)
			rc = mdb_put(txn, dbi, &k, &d, MDB_NODUPDATA);
		if (rc == MDB_KEYEXIST)
			rc = 0;
	}
	forget_record(s);
	return rc;
}

static int append_one(struct tf_trace_store *s, MDB_txn *txn, struct chain_state *st,
		const struct tf_trace_input *in)
{
	struct tf_event ev = { in->kind, st->seq + 1, in->ts_ms, { NULL } };
	struct names_txn n = { s, txn, 0, NULL };
	struct tf_record_names names = names_of(&n);
	char id[TF_MSGID_LEN + 1];
	unsigned char hash[32];
	size_t fields, len;
	bool joins;
	int rc;

	tf_event_fields(in->kind, &fields);
	memcpy(ev.values, in->values, fields * sizeof(ev.values[0]));
	if (in->kind == TF_EVENT_DELIVERY && in->values[0][0] == '\0' && in->find_topic != NULL
			&& in->find_sha256 != NULL) {
		/* The message may be in the record being built. */
		if ((rc = flush_record(s, txn, st->hash)) != 0
				|| (rc = find_message(s, txn, in->find_topic, in->find_sha256, id)) != 0)
			return rc;
		ev.values[0] = id;
	}
	if (ev.ts_ms < st->ts_ms)
		ev.ts_ms = st->ts_ms;
	len = tf_event_encode(&ev, s->buf, s->cap);
	if (len > s->cap) {
		if (!reserve(&s->buf, &s->cap, len))
			return ENOMEM;
		tf_event_encode(&ev, s->buf, len);
	}
	tf_event_chain(s->chain, st->hash, s->buf, len, hash);
	if (!tf_record_accepts(&s->record, &ev) && (rc = flush_record(s, txn, st->hash)) != 0)
		return rc;
	joins = s->record.count > 0;
	if (!joins) {
		s->record_seq = ev.seq;
		s->record_has_message = ev.kind == TF_EVENT_MESSAGE;
	}
	/* A name that could not be given says why (the map is full, say). */
	if (tf_record_add(&s->record, &ev, &names) != TF_OK)
		return n.rc != 0 ? n.rc : ENOMEM;
	if ((rc = note_keys(s, &n, &ev, joins)) != 0 || (rc = n.rc) != 0)
		return rc;
	if (in->file_sha256 != NULL
			&& (rc = file_by_content(s, txn, &ev, joins, in->file_sha256)) != 0)
		return rc;
	if (in->hold_flow != NULL && (rc = put_held(s, txn, in->hold_flow, ev.seq, in->hold,
			in->hold_len)) != 0)
		return rc;
	if (in->unhold_flow != NULL && (rc = put_held(s, txn, in->unhold_flow, in->unhold_seq,
			NULL, 0)) != 0)
		return rc;
	if (in->meta_name != NULL && (rc = put(txn, s->dbi[DB_META], in->meta_name,
			strlen(in->meta_name), in->meta_value, strlen(in->meta_value), 0)) != 0)
		return rc;
	if (in->kind == TF_EVENT_MESSAGE && ev.values[9][0] != '\0') {
		uint64_t stamp_seq = strtoull(ev.values[9], NULL, 10);

		if (stamp_seq > st->stamp_seq)
			st->stamp_seq = stamp_seq;
	}
	st->seq = ev.seq;
	memcpy(st->hash, hash, 32);
	st->ts_ms = ev.ts_ms;
	return 0;
}

/* Doubles the map, up to max_bytes. Needs no transaction open in this
 * process: only the writer's thread uses a writable store. */
static bool grow(struct tf_trace_store *s)
{
	uint64_t bigger = s->map_bytes * 2;

	bool ok;

	if (s->max_bytes != 0 && bigger > s->max_bytes)
		bigger = s->max_bytes;
	if (bigger <= s->map_bytes)
		return false;
	pthread_rwlock_wrlock(&s->map_lock);
	ok = mdb_env_set_mapsize(s->env, bigger) == 0;
	pthread_rwlock_unlock(&s->map_lock);
	if (ok)
		s->map_bytes = bigger;
	return ok;
}

int tf_trace_write_txn(struct tf_trace_store *s, tf_trace_txn_body body, void *ctx,
		const char *what, struct tf_err *err)
{
	for (;;) {
		uint32_t last_name = s->last_name;
		MDB_txn *txn;
		int rc = mdb_txn_begin(s->env, NULL, 0, &txn);

		if (rc == 0) {
			rc = body(s, txn, ctx);
			if (rc == 0)
				rc = mdb_txn_commit(txn);
			else
				mdb_txn_abort(txn);
		}
		if (rc != 0) {
			forget_record(s);
			if (s->last_name != last_name)
				forget_new_names(s, last_name);
		}
		if (rc == 0)
			return TF_OK;
		if (rc == MDB_MAP_FULL && grow(s))
			continue;
		return tf_trace_lmdb_error(err, s->dir, what, rc);
	}
}

struct append_ctx {
	const struct tf_trace_input *in;
	size_t n;
	struct chain_state st;
};

static int append_body(struct tf_trace_store *s, MDB_txn *txn, void *ctx)
{
	struct append_ctx *a = ctx;
	int rc = 0;

	a->st = s->state;
	for (size_t i = 0; i < a->n && rc == 0; i++)
		rc = append_one(s, txn, &a->st, &a->in[i]);
	if (rc == 0)
		rc = flush_record(s, txn, a->st.hash);
	if (rc == 0 && a->st.stamp_seq != s->state.stamp_seq) {
		char text[21];
		size_t len = tf_put_decimal(text, a->st.stamp_seq);

		rc = put(txn, s->dbi[DB_META], "stamp_seq", 9, text, len, 0);
	}
	return rc;
}

int tf_trace_append(struct tf_trace_store *s, const struct tf_trace_input *in, size_t n,
		struct tf_err *err)
{
	struct append_ctx a = { in, n, { 0 } };
	int rc = tf_trace_write_txn(s, append_body, &a, "cannot record events", err);

	if (rc == TF_OK)
		s->state = a.st;
	return rc;
}

static int checkpoint_body(struct tf_trace_store *s, MDB_txn *txn, void *ctx)
{
	const struct tf_checkpoint *cp = ctx;
	char *json = tf_checkpoint_to_json(cp);
	unsigned char key[8];
	int rc;

	(void)s;
	if (json == NULL)
		return ENOMEM;
	tf_trace_put_u64(key, cp->seq);
	rc = put(txn, s->dbi[DB_CHECKPOINTS], key, 8, json, strlen(json), 0);
	free(json);
	return rc;
}

int tf_trace_put_checkpoint(struct tf_trace_store *s, const struct tf_checkpoint *cp,
		struct tf_err *err)
{
	struct tf_checkpoint copy = *cp;

	return tf_trace_write_txn(s, checkpoint_body, &copy, "cannot store a checkpoint", err);
}

struct meta_ctx {
	const char *name, *value;
};

static int meta_body(struct tf_trace_store *s, MDB_txn *txn, void *ctx)
{
	const struct meta_ctx *m = ctx;

	return put(txn, s->dbi[DB_META], m->name, strlen(m->name), m->value, strlen(m->value), 0);
}

int tf_trace_put_meta(struct tf_trace_store *s, const char *name, const char *value,
		struct tf_err *err)
{
	struct meta_ctx m = { name, value };

	return tf_trace_write_txn(s, meta_body, &m, "cannot store a setting", err);
}

#define CLIENT_ID_PREFIX "clientid:"
#define CLIENT_ID_PREFIX_LEN 9

int tf_trace_put_client_id(struct tf_trace_store *s, const char *client_id, bool bound,
		const char *username, struct tf_err *err)
{
	char key[CLIENT_ID_PREFIX_LEN + TF_TRACE_CLIENT_ID_MAX];
	size_t len = strlen(client_id), ulen = username ? strlen(username) : 0;
	char *value = NULL;
	MDB_txn *txn;
	MDB_val k;
	int rc;

	if (len > TF_TRACE_CLIENT_ID_MAX)
		return tf_err_set(err, TF_ERR_INVALID, "client id longer than %d bytes",
			TF_TRACE_CLIENT_ID_MAX);
	memcpy(key, CLIENT_ID_PREFIX, CLIENT_ID_PREFIX_LEN);
	memcpy(key + CLIENT_ID_PREFIX_LEN, client_id, len);
	k = mval(key, CLIENT_ID_PREFIX_LEN + len);
	if (bound && (value = malloc(ulen + 3)) == NULL)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	if (bound)
		snprintf(value, ulen + 3, "%c:%s", username ? 'u' : 'c', username ? username : "");
	/* The lock keeps the writer from growing the map under this
	 * transaction. */
	pthread_rwlock_rdlock(&s->map_lock);
	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc == 0) {
		if (bound) {
			MDB_val v = mval(value, ulen + 2);

			rc = mdb_put(txn, s->dbi[DB_META], &k, &v, 0);
		} else {
			rc = mdb_del(txn, s->dbi[DB_META], &k, NULL);
			rc = rc == MDB_NOTFOUND ? 0 : rc;
		}
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	pthread_rwlock_unlock(&s->map_lock);
	free(value);
	if (rc == MDB_MAP_FULL)
		return tf_err_set(err, TF_ERR_FULL, "%s: the store is full", s->dir);
	return rc == 0 ? TF_OK : tf_trace_lmdb_error(err, s->dir, "cannot store a client id", rc);
}

int tf_trace_sync(struct tf_trace_store *s, struct tf_err *err)
{
	int rc = mdb_env_sync(s->env, 1);

	return rc == 0 ? TF_OK : tf_trace_lmdb_error(err, s->dir, "cannot sync", rc);
}

struct prune_ctx {
	int64_t before_ms;
	size_t max;
	size_t removed;
};

/* The seq of the newest checkpoint (0: none). */
static uint64_t newest_checkpoint(struct tf_trace_store *s, MDB_txn *txn)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t seq = 0;

	if (mdb_cursor_open(txn, s->dbi[DB_CHECKPOINTS], &c) != 0)
		return 0;
	if (mdb_cursor_get(c, &k, &v, MDB_LAST) == 0 && k.mv_size == 8)
		seq = tf_trace_get_u64(k.mv_data);
	mdb_cursor_close(c);
	return seq;
}

/* Removes the index entries of the record at seq (opened in reader,
 * none of its events read yet). Returns its event count in *events and
 * its last event's seq and time. */
static int unindex_record(struct tf_trace_store *s, MDB_txn *txn,
		struct tf_record_reader *reader, const unsigned char seq_key[8], uint64_t *last,
		int64_t *last_ts)
{
	struct names_txn n = { s, txn, 0, NULL };
	struct tf_record_names names = names_of(&n);
	struct tf_event ev;
	int rc = 0;

	for (uint32_t i = tf_record_count(reader); i > 0 && rc == 0; i--) {
		if (tf_record_next(reader, &names, &ev, NULL) != TF_OK)
			return EINVAL;
		*last = ev.seq;
		*last_ts = ev.ts_ms;
		{
			unsigned char key[32];
			size_t klen = recipient_key(&ev, lookup_name, &n, key);
			MDB_val k = mval(key, klen), d = mval(seq_key, 8);

			if (klen > 0 && (rc = mdb_del(txn, s->dbi[DB_RECIPIENTS], &k, &d)) == MDB_NOTFOUND)
				rc = 0;
		}
		for (int ix = 0; ix < INDEXES && rc == 0; ix++) {
			const char *values[2];
			size_t count = index_values((enum tf_trace_index)ix, &ev, values);

			for (size_t j = 0; j < count && rc == 0; j++) {
				unsigned char key[32];
				size_t klen = index_key((enum tf_trace_index)ix, values[j], lookup_name, &n, key);
				MDB_val k = mval(key, klen), d = mval(seq_key, 8);

				if (klen == 0)
					continue;
				rc = mdb_del(txn, s->dbi[index_db[ix]], &k, &d);
				rc = rc == MDB_NOTFOUND ? 0 : rc;
			}
		}
	}
	return rc;
}

static int prune_body(struct tf_trace_store *s, MDB_txn *txn, void *ctx)
{
	struct tf_record_reader reader;
	struct prune_ctx *p = ctx;
	uint64_t limit = newest_checkpoint(s, txn), last = 0;
	unsigned char anchor[40];
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	p->removed = 0;
	if ((rc = mdb_cursor_open(txn, s->dbi[DB_RECORDS], &c)) != 0)
		return rc;
	while (p->removed < p->max && (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0) {
		const unsigned char *stored;
		unsigned char seq_key[8];
		uint64_t first, record_last = 0;
		int64_t last_ts = 0;
		struct tf_event ev;
		bool old_enough = true;

		if (open_record(&reader, &k, &v, &first, &stored, NULL) != TF_OK)
			break;
		/* Whole records only, and only those wholly before before_ms and
		 * covered by a checkpoint. */
		for (uint32_t i = tf_record_count(&reader); i > 0; i--) {
			if (tf_record_next(&reader, &times_only, &ev, NULL) != TF_OK) {
				old_enough = false;
				break;
			}
			old_enough &= ev.ts_ms < p->before_ms && ev.seq <= limit;
		}
		if (!old_enough)
			break;
		memcpy(anchor + 8, stored, 32);
		memcpy(seq_key, k.mv_data, 8);
		/* Decoded again from a copy: the index updates may move pages. */
		if (!reserve(&s->buf, &s->cap, v.mv_size)) {
			rc = ENOMEM;
			break;
		}
		memcpy(s->buf, v.mv_data, v.mv_size);
		v.mv_data = s->buf;
		if (open_record(&reader, &k, &v, &first, &stored, NULL) != TF_OK
				|| (rc = unindex_record(s, txn, &reader, seq_key, &record_last, &last_ts)) != 0
				|| (rc = mdb_cursor_del(c, 0)) != 0)
			break;
		last = record_last;
		p->removed += record_last - first + 1;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(c);
	if (rc != 0 || last == 0)
		return rc;
	tf_trace_put_u64(anchor, last);
	rc = put(txn, s->dbi[DB_META], "anchor", 6, anchor, 40, 0);
	/* Checkpoints before the anchor prove nothing that is still kept. */
	if (rc == 0 && (rc = mdb_cursor_open(txn, s->dbi[DB_CHECKPOINTS], &c)) == 0) {
		while ((rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0
				&& tf_trace_get_u64(k.mv_data) < last)
			if ((rc = mdb_cursor_del(c, 0)) != 0)
				break;
		mdb_cursor_close(c);
		if (rc == MDB_NOTFOUND || rc == 0)
			rc = 0;
	}
	return rc;
}

int tf_trace_prune(struct tf_trace_store *s, int64_t before_ms, size_t max_events,
		size_t *removed, struct tf_err *err)
{
	struct prune_ctx p = { before_ms, max_events, 0 };
	int rc = tf_trace_write_txn(s, prune_body, &p, "cannot prune", err);

	*removed = rc == TF_OK ? p.removed : 0;
	return rc;
}

uint64_t tf_trace_last_seq(const struct tf_trace_store *s)
{
	return s->state.seq;
}

const unsigned char *tf_trace_last_hash(const struct tf_trace_store *s)
{
	return s->state.hash;
}

uint64_t tf_trace_last_stamp_seq(const struct tf_trace_store *s)
{
	return s->state.stamp_seq;
}


/* --- reading --------------------------------------------------------------- */

int tf_trace_read_begin(struct tf_trace_store *s, struct tf_err *err)
{
	int rc;

	pthread_rwlock_rdlock(&s->map_lock);
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn);

	/* The writer grew the map since this reader opened it. */
	if (rc == MDB_MAP_RESIZED && mdb_env_set_mapsize(s->env, 0) == 0)
		rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn);
	if (rc != 0) {
		s->rtxn = NULL;
		pthread_rwlock_unlock(&s->map_lock);
		return tf_trace_lmdb_error(err, s->dir, "cannot read", rc);
	}
	return TF_OK;
}

void tf_trace_read_end(struct tf_trace_store *s)
{
	if (s->rtxn == NULL)
		return;
	mdb_txn_abort(s->rtxn);
	s->rtxn = NULL;
	pthread_rwlock_unlock(&s->map_lock);
}

/* Finds the record holding seq: the last whose first seq is at most seq.
 * Leaves c on it; false when there is none. */
static bool record_holding(MDB_cursor *c, uint64_t seq, MDB_val *k, MDB_val *v)
{
	unsigned char key[8];
	int rc;

	tf_trace_put_u64(key, seq);
	*k = mval(key, 8);
	rc = mdb_cursor_get(c, k, v, MDB_SET_RANGE);
	if (rc == 0 && k->mv_size == 8 && tf_trace_get_u64(k->mv_data) == seq)
		return true;
	rc = rc == 0 ? mdb_cursor_get(c, k, v, MDB_PREV) : mdb_cursor_get(c, k, v, MDB_LAST);
	return rc == 0;
}

/* The chain hash kept with the record before the one c is on, or the
 * anchor's when there is none. Leaves c where it was. */
static void hash_before(struct tf_trace_store *s, MDB_cursor *c, unsigned char out[32])
{
	MDB_val k, v;
	uint64_t anchor;

	if (mdb_cursor_get(c, &k, &v, MDB_PREV) == 0 && v.mv_size >= 32) {
		memcpy(out, v.mv_data, 32);
		mdb_cursor_get(c, &k, &v, MDB_NEXT);
		return;
	}
	mdb_cursor_get(c, &k, &v, MDB_FIRST);
	tf_trace_anchor(s, &anchor, out);
}

/* The walk of tf_trace_walk; chain NULL: the events only, without their
 * hashes (prev and hash zero, stored NULL). */
static int walk(struct tf_trace_store *s, struct name_slot *slots, struct tf_event_hasher *chain,
		uint64_t from, tf_trace_step_visit visit, void *ctx)
{
	struct tf_record_reader reader;
	struct names_txn n = { s, s->rtxn, 0, slots };
	struct tf_record_names names = names_of(&n);
	struct tf_trace_step step;
	unsigned char prev[32];
	char *text = NULL;
	size_t cap = 0;
	MDB_cursor *c;
	MDB_val k, v;
	int rc, stop = 0;

	if (mdb_cursor_open(s->rtxn, s->dbi[DB_RECORDS], &c) != 0)
		return -1;
	if (!record_holding(c, from, &k, &v)) {
		rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
		if (rc != 0) {
			mdb_cursor_close(c);
			return 0;
		}
	}
	hash_before(s, c, prev);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT); rc == 0 && stop == 0;
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const unsigned char *stored = NULL;
		struct tf_err err;
		struct tf_event ev;
		uint64_t first = 0;
		uint32_t count;

		if (open_record(&reader, &k, &v, &first, &stored, &err) != TF_OK) {
			step = (struct tf_trace_step){ .seq = k.mv_size == 8
				? tf_trace_get_u64(k.mv_data) : 0, .ev = NULL, .error = err.msg };
			stop = visit(ctx, &step);
			if (stored != NULL || v.mv_size >= 32)
				memcpy(prev, v.mv_data, 32);
			continue;
		}
		count = tf_record_count(&reader);
		for (uint32_t i = 0; i < count && stop == 0; i++) {
			size_t len;

			memset(&step, 0, sizeof(step));
			if (tf_record_next(&reader, &names, &ev, &err) != TF_OK) {
				step.seq = first + i;
				step.error = err.msg;
				stop = visit(ctx, &step);
				break;
			}
			step.seq = ev.seq;
			step.ev = &ev;
			if (chain == NULL) {
				if (ev.seq >= from)
					stop = visit(ctx, &step);
				continue;
			}
			/* Encoded once, unless the buffer must grow first. */
			len = tf_event_encode(&ev, text, cap);
			if (len > cap) {
				char *grown = realloc(text, len);

				if (grown == NULL) {
					stop = -1;
					break;
				}
				text = grown;
				cap = len;
				tf_event_encode(&ev, text, len);
			}
			memcpy(step.prev, prev, 32);
			tf_event_chain(chain, prev, text, len, step.hash);
			memcpy(prev, step.hash, 32);
			step.stored = i + 1 == count ? stored : NULL;
			if (ev.seq >= from)
				stop = visit(ctx, &step);
		}
		/* The next record goes on from what this one kept. */
		memcpy(prev, stored, 32);
	}
	mdb_cursor_close(c);
	free(text);
	return stop;
}

int tf_trace_walk(struct tf_trace_store *s, uint64_t from, tf_trace_step_visit visit, void *ctx)
{
	struct name_slot *slots = calloc(NAME_SLOTS, sizeof(*slots));
	struct tf_event_hasher *chain = tf_event_hasher_new();
	int rc = chain != NULL ? walk(s, slots, chain, from, visit, ctx) : -1;

	tf_event_hasher_free(chain);
	free(slots);
	return rc;
}

struct event_walk {
	tf_trace_event_visit visit;
	void *ctx;
};

static int visit_event_only(void *ctx, const struct tf_trace_step *step)
{
	const struct event_walk *w = ctx;

	/* An undecodable record has no events (verify says so). */
	return step->ev != NULL ? w->visit(w->ctx, step->ev) : 0;
}

int tf_trace_scan_events(struct tf_trace_store *s, uint64_t from, tf_trace_event_visit visit,
		void *ctx)
{
	struct name_slot *slots = calloc(NAME_SLOTS, sizeof(*slots));
	struct event_walk w = { visit, ctx };
	int rc = walk(s, slots, NULL, from, visit_event_only, &w);

	free(slots);
	return rc;
}

uint64_t tf_trace_bytes_used(struct tf_trace_store *s)
{
	MDB_envinfo info;
	MDB_stat st;

	if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0)
		return 0;
	return (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
}

void tf_trace_bounds(struct tf_trace_store *s, uint64_t *first, uint64_t *last)
{
	struct tf_record_reader reader;
	MDB_cursor *c;
	MDB_val k, v;

	*first = *last = 0;
	if (mdb_cursor_open(s->rtxn, s->dbi[DB_RECORDS], &c) != 0)
		return;
	if (mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0 && k.mv_size == 8)
		*first = tf_trace_get_u64(k.mv_data);
	if (mdb_cursor_get(c, &k, &v, MDB_LAST) == 0 && k.mv_size == 8) {
		const unsigned char *stored;
		uint64_t start;

		*last = tf_trace_get_u64(k.mv_data);
		if (open_record(&reader, &k, &v, &start, &stored, NULL) == TF_OK)
			*last = start + tf_record_count(&reader) - 1;
	}
	mdb_cursor_close(c);
}

/* The time of event seq (INT64_MAX when it cannot be read): its record
 * decoded for times only. */
static int64_t event_time(MDB_cursor *c, uint64_t seq)
{
	struct tf_record_reader reader;
	const unsigned char *stored;
	struct tf_event ev;
	uint64_t first;
	MDB_val k, v;

	if (!record_holding(c, seq, &k, &v) || open_record(&reader, &k, &v, &first, &stored, NULL) != TF_OK)
		return INT64_MAX;
	for (uint32_t i = tf_record_count(&reader); i > 0; i--) {
		if (tf_record_next(&reader, &times_only, &ev, NULL) != TF_OK)
			return INT64_MAX;
		if (ev.seq == seq)
			return ev.ts_ms;
	}
	return INT64_MAX;
}

uint64_t tf_trace_seq_at(struct tf_trace_store *s, int64_t ts_ms)
{
	uint64_t lo, hi;
	MDB_cursor *c;

	tf_trace_bounds(s, &lo, &hi);
	if (hi == 0)
		return 1;
	if (mdb_cursor_open(s->rtxn, s->dbi[DB_RECORDS], &c) != 0)
		return lo;
	hi++;
	/* Times never decrease along seq: the first seq at or after ts_ms. */
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (event_time(c, mid) < ts_ms)
			lo = mid + 1;
		else
			hi = mid;
	}
	mdb_cursor_close(c);
	return lo;
}

/* Whether ev is filed under the index key asked for (as text). */
static bool filed_under(enum tf_trace_index ix, const struct tf_event *ev, const char *want)
{
	const char *values[2];
	size_t n = index_values(ix, ev, values);

	for (size_t i = 0; i < n; i++) {
		char policy[TF_TRACE_KEY_TEXT_MAX + 1];
		const char *v = values[i];

		if (v == NULL)
			continue;
		if (ix == TF_INDEX_BY_POLICY) {
			tf_trace_policy_id(v, policy, sizeof(policy));
			v = policy;
		}
		if (strcmp(v, want) == 0)
			return true;
	}
	return false;
}

/* newest_first: the key's records from the newest back (from_ms 0 and
 * to_ms INT64_MAX only), else in order from from_ms. */
static int scan_index(struct tf_trace_store *s, struct name_slot *slots,
		enum tf_trace_index ix, const void *key, size_t klen, int64_t from_ms, int64_t to_ms,
		bool newest_first, tf_trace_event_visit visit, void *ctx)
{
	struct tf_record_reader reader;
	struct names_txn n = { s, s->rtxn, 0, slots };
	struct tf_record_names names = names_of(&n);
	unsigned char stored_key[32], from[8];
	char want[TF_TRACE_KEY_TEXT_MAX + 65];
	MDB_cursor *c, *records;
	MDB_val k, d;
	size_t len;
	uint64_t start = 0;
	int rc, stop = 0;

	/* The key as the store files it, and as the events spell it. */
	if (ix == TF_INDEX_BY_ID || ix == TF_INDEX_BY_SHA) {
		if (klen != (ix == TF_INDEX_BY_ID ? 16u : 32u))
			return 0;
		tf_hex(key, klen, want);
		memcpy(stored_key, key, klen);
		len = klen;
	} else {
		if (klen == 0 || klen > TF_TRACE_KEY_TEXT_MAX)
			return 0;
		memcpy(want, key, klen);
		want[klen] = '\0';
		len = index_key(ix, want, lookup_name, &n, stored_key);
		if (len == 0)
			return 0;
	}
	if (mdb_cursor_open(s->rtxn, s->dbi[DB_RECORDS], &records) != 0)
		return -1;
	if (from_ms > 0) {
		MDB_val rk, rv;

		/* From the record holding the first event of the range. */
		if (record_holding(records, tf_trace_seq_at(s, from_ms), &rk, &rv))
			start = tf_trace_get_u64(rk.mv_data);
	}
	if (mdb_cursor_open(s->rtxn, s->dbi[index_db[ix]], &c) != 0) {
		mdb_cursor_close(records);
		return -1;
	}
	tf_trace_put_u64(from, start);
	k = mval(stored_key, len);
	d = mval(from, 8);
	rc = mdb_cursor_get(c, &k, &d, newest_first ? MDB_SET : MDB_GET_BOTH_RANGE);
	if (rc == 0 && newest_first)
		rc = mdb_cursor_get(c, &k, &d, MDB_LAST_DUP);
	for (; rc == 0 && stop == 0;
			rc = mdb_cursor_get(c, &k, &d, newest_first ? MDB_PREV_DUP : MDB_NEXT_DUP)) {
		MDB_val rk = d, rv;
		const unsigned char *kept;
		struct tf_event ev;
		uint64_t first;

		if (d.mv_size != 8 || mdb_cursor_get(records, &rk, &rv, MDB_SET) != 0
				|| open_record(&reader, &rk, &rv, &first, &kept, NULL) != TF_OK)
			continue;
		for (uint32_t i = tf_record_count(&reader); i > 0 && stop == 0; i--) {
			if (tf_record_next(&reader, &names, &ev, NULL) != TF_OK)
				break;
			if (ev.ts_ms > to_ms) {
				stop = INT32_MIN;   /* past the range: done */
				break;
			}
			if (ev.ts_ms >= from_ms && filed_under(ix, &ev, want))
				stop = visit(ctx, &ev);
		}
	}
	mdb_cursor_close(c);
	mdb_cursor_close(records);
	return stop == INT32_MIN ? 0 : stop;
}

int tf_trace_scan_index(struct tf_trace_store *s, enum tf_trace_index ix, const void *key,
		size_t klen, int64_t from_ms, int64_t to_ms, tf_trace_event_visit visit, void *ctx)
{
	struct name_slot *slots = calloc(NAME_SLOTS, sizeof(*slots));
	int rc = scan_index(s, slots, ix, key, klen, from_ms, to_ms, false, visit, ctx);

	free(slots);
	return rc;
}

int tf_trace_scan_index_newest(struct tf_trace_store *s, enum tf_trace_index ix,
		const void *key, size_t klen, tf_trace_event_visit visit, void *ctx)
{
	struct name_slot *slots = calloc(NAME_SLOTS, sizeof(*slots));
	int rc = scan_index(s, slots, ix, key, klen, 0, INT64_MAX, true, visit, ctx);

	free(slots);
	return rc;
}

/* The time of the first (or last) delivery made to client in the record
 * at seq that lies in [from_ms, to_ms], and its org (borrowed, in the
 * snapshot or r's scratch); false when there is none. */
static bool delivery_in(struct names_txn *n, MDB_cursor *records, uint64_t seq,
		const char *client, bool last, int64_t from_ms, int64_t to_ms, int64_t *ts,
		const char **org)
{
	struct tf_record_names names = names_of(n);
	struct tf_record_reader reader;
	const unsigned char *kept;
	unsigned char key[8];
	struct tf_event ev;
	uint64_t first;
	MDB_val k = mval(key, 8), v;
	bool found = false;

	tf_trace_put_u64(key, seq);
	if (mdb_cursor_get(records, &k, &v, MDB_SET) != 0
			|| open_record(&reader, &k, &v, &first, &kept, NULL) != TF_OK)
		return false;
	for (uint32_t i = tf_record_count(&reader); i > 0; i--) {
		if (tf_record_next(&reader, &names, &ev, NULL) != TF_OK)
			break;
		if (ev.kind != TF_EVENT_DELIVERY || strcmp(ev.values[4], "delivered") != 0
				|| strcmp(ev.values[2], client) != 0 || ev.ts_ms < from_ms
				|| ev.ts_ms > to_ms)
			continue;
		if (!found || last) {
			*ts = ev.ts_ms;
			*org = ev.values[3];
		}
		found = true;
		if (!last)
			break;
	}
	return found;
}

int tf_trace_scan_recipients(struct tf_trace_store *s, const char *policy, int64_t from_ms,
		int64_t to_ms, tf_trace_recipient_visit visit, void *ctx)
{
	struct names_txn n = { s, s->rtxn, 0, NULL };
	unsigned char key[32], from[8];
	uint64_t start = 0, end = UINT64_MAX;
	MDB_cursor *c, *records;
	MDB_val k, d;
	int rc, stop = 0;

	if (index_key(TF_INDEX_BY_POLICY, policy, lookup_name, &n, key) != 4
			|| mdb_cursor_open(s->rtxn, s->dbi[DB_RECORDS], &records) != 0)
		return 0;
	if (from_ms > 0) {
		MDB_val rk, rv;

		if (record_holding(records, tf_trace_seq_at(s, from_ms), &rk, &rv))
			start = tf_trace_get_u64(rk.mv_data);
	}
	if (to_ms < INT64_MAX)
		end = tf_trace_seq_at(s, to_ms + 1);
	if (mdb_cursor_open(s->rtxn, s->dbi[DB_RECIPIENTS], &c) != 0) {
		mdb_cursor_close(records);
		return -1;
	}
	memset(key + 4, 0, 4);
	k = mval(key, 8);
	/* One key per client of the policy, in the order of their numbers. */
	for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); rc == 0 && stop == 0;
			rc = mdb_cursor_get(c, &k, &d, MDB_NEXT_NODUP)) {
		/* The client's first two and last two records in the range. */
		uint64_t count = 0, seqs[4] = { 0 };
		int64_t first_ts = 0, last_ts = 0;
		const char *client, *org = "", *last_org;
		uint32_t client_no;
		MDB_val dk = k;

		if (k.mv_size != 8 || memcmp(k.mv_data, key, 4) != 0)
			break;
		client_no = get_be32((const unsigned char *)k.mv_data + 4);
		client = name_text(&n, client_no);
		tf_trace_put_u64(from, start);
		d = mval(from, 8);
		for (rc = mdb_cursor_get(c, &dk, &d, MDB_GET_BOTH_RANGE); rc == 0 && d.mv_size == 8;
				rc = mdb_cursor_get(c, &dk, &d, MDB_NEXT_DUP)) {
			uint64_t seq = tf_trace_get_u64(d.mv_data);

			if (seq >= end)
				break;
			if (count < 2)
				seqs[count] = seq;
			seqs[2] = seqs[3];
			seqs[3] = seq;
			count++;
		}
		if (client == NULL)
			count = 0;
		/* Only the records at the range's ends may hold deliveries
		 * outside it: one at each end at most. */
		if (count > 0 && !delivery_in(&n, records, seqs[0], client, false, from_ms, to_ms,
				&first_ts, &org)) {
			count--;
			if (count > 0 && !delivery_in(&n, records, seqs[1], client, false, from_ms, to_ms,
					&first_ts, &org))
				count = 0;
		}
		if (count > 0 && !delivery_in(&n, records, seqs[3], client, true, from_ms, to_ms,
				&last_ts, &last_org)) {
			count--;
			if (count > 0 && !delivery_in(&n, records, seqs[2], client, true, from_ms, to_ms,
					&last_ts, &last_org))
				count = 0;
		}
		if (count > 0)
			stop = visit(ctx, client, org, count, first_ts, last_ts);
		/* Back on the client's key (the scan of its entries may have left
		 * it anywhere), for the next. */
		put_be32(key + 4, client_no);
		k = mval(key, 8);
		if (mdb_cursor_get(c, &k, &d, MDB_SET) != 0)
			break;
	}
	mdb_cursor_close(c);
	mdb_cursor_close(records);
	return stop;
}

int tf_trace_scan_checkpoints(struct tf_trace_store *s, tf_trace_checkpoint_visit visit,
		void *ctx, struct tf_err *err)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc, stop = 0;

	if (mdb_cursor_open(s->rtxn, s->dbi[DB_CHECKPOINTS], &c) != 0)
		return tf_err_set(err, TF_ERR_IO, "trace store %s: cannot read checkpoints", s->dir);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && stop == 0;
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct tf_checkpoint cp;

		if (tf_checkpoint_from_json(v.mv_data, v.mv_size, &cp, err) != TF_OK) {
			stop = TF_ERR_INVALID;
			break;
		}
		stop = visit(ctx, &cp);
	}
	mdb_cursor_close(c);
	return stop;
}

int tf_trace_scan_held(struct tf_trace_store *s, const char *flow, tf_trace_held_visit visit,
		void *ctx)
{
	size_t n = flow ? strlen(flow) + 1 : 0;   /* with its 0x00 */
	MDB_cursor *c;
	MDB_val k = mval(flow ? flow : "", n), v;
	int rc, stop = 0;

	if (mdb_cursor_open(s->rtxn, s->dbi[DB_HELD], &c) != 0)
		return -1;
	for (rc = mdb_cursor_get(c, &k, &v, n ? MDB_SET_RANGE : MDB_FIRST); rc == 0 && stop == 0;
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const char *key = k.mv_data;
		size_t flen = strnlen(key, k.mv_size);

		if (flen + 9 != k.mv_size || (n && (flen + 1 != n || memcmp(key, flow, flen) != 0)))
			break;
		{
			char name[TF_TRACE_KEY_TEXT_MAX + 1];

			memcpy(name, key, flen);
			name[flen] = '\0';
			stop = visit(ctx, name, tf_trace_get_u64((const unsigned char *)key + flen + 1), v.mv_data,
				v.mv_size);
		}
	}
	mdb_cursor_close(c);
	return stop;
}

void tf_trace_anchor(struct tf_trace_store *s, uint64_t *seq, unsigned char hash[32])
{
	MDB_val k = mval("anchor", 6), v;

	*seq = 0;
	memset(hash, 0, 32);
	if (mdb_get(s->rtxn, s->dbi[DB_META], &k, &v) == 0 && v.mv_size == 40) {
		*seq = tf_trace_get_u64(v.mv_data);
		memcpy(hash, (unsigned char *)v.mv_data + 8, 32);
	}
}

bool tf_trace_meta(struct tf_trace_store *s, const char *name, char *buf, size_t cap)
{
	MDB_val k = mval(name, strlen(name)), v;

	if (mdb_get(s->rtxn, s->dbi[DB_META], &k, &v) != 0 || v.mv_size >= cap)
		return false;
	memcpy(buf, v.mv_data, v.mv_size);
	buf[v.mv_size] = '\0';
	return true;
}

void tf_trace_scan_client_ids(struct tf_trace_store *s, tf_trace_client_id_visit visit,
		void *ctx)
{
	MDB_cursor *c;
	MDB_val k = mval(CLIENT_ID_PREFIX, CLIENT_ID_PREFIX_LEN), v;
	int rc;

	if (mdb_cursor_open(s->rtxn, s->dbi[DB_META], &c) != 0)
		return;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		char id[TF_TRACE_CLIENT_ID_MAX + 1], *user;
		size_t len = k.mv_size - CLIENT_ID_PREFIX_LEN;

		if (k.mv_size < CLIENT_ID_PREFIX_LEN
				|| memcmp(k.mv_data, CLIENT_ID_PREFIX, CLIENT_ID_PREFIX_LEN) != 0)
			break;
		/* Written by tf_trace_put_client_id; anything else is skipped. */
		if (len == 0 || len > TF_TRACE_CLIENT_ID_MAX || v.mv_size < 2
				|| ((const char *)v.mv_data)[1] != ':'
				|| (user = strndup((const char *)v.mv_data + 2, v.mv_size - 2)) == NULL)
			continue;
		memcpy(id, (const char *)k.mv_data + CLIENT_ID_PREFIX_LEN, len);
		id[len] = '\0';
		if (memchr(id, '\0', len) == NULL)
			visit(ctx, id, ((const char *)v.mv_data)[0] == 'u' ? user : NULL);
		free(user);
	}
	mdb_cursor_close(c);
}

void tf_trace_scan_meta(struct tf_trace_store *s, const char *prefix, tf_trace_meta_visit visit,
		void *ctx)
{
	size_t plen = strlen(prefix);
	MDB_cursor *c;
	MDB_val k = mval(prefix, plen), v;
	int rc;

	if (mdb_cursor_open(s->rtxn, s->dbi[DB_META], &c) != 0)
		return;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
			break;
		visit(ctx, (const char *)k.mv_data + plen, k.mv_size - plen, v.mv_data, v.mv_size);
	}
	mdb_cursor_close(c);
}

struct key_scan {
	tf_trace_key_visit visit;
	void *ctx;
};

static void visit_key(void *ctx, const char *rest, size_t rest_len, const void *value,
		size_t len)
{
	const struct key_scan *scan = ctx;
	char kid[TF_KID_LEN + 1];

	if (rest_len != TF_KID_LEN)
		return;
	memcpy(kid, rest, TF_KID_LEN);
	kid[TF_KID_LEN] = '\0';
	scan->visit(scan->ctx, kid, value, len);
}

void tf_trace_scan_keys(struct tf_trace_store *s, tf_trace_key_visit visit, void *ctx)
{
	struct key_scan scan = { visit, ctx };

	tf_trace_scan_meta(s, "key:", visit_key, &scan);
}
