#include "broker/trace/trace_store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "broker/stamp/fields.h"
#include "policy/policy.h"

#define FORMAT "1"
#define INITIAL_MAP (64ull * 1024 * 1024)
/* An index entry's data: ts(8) seq(8), then what the index adds. Names
 * in by_policy's data are cut to NAME_MAX bytes, which keeps the data
 * under LMDB's limit for sorted duplicates. */
#define ENTRY_HEAD 16
#define NAME_MAX_IN_ENTRY 240

enum db {
	DB_EVENTS,
	DB_BY_ID,
	DB_BY_POLICY,
	DB_BY_PUBLISHER,
	DB_BY_RECIPIENT,
	DB_BY_TOPIC,
	DB_BY_SHA,
	DB_CHECKPOINTS,
	DB_META,
	DB_HELD,
	DB_COUNT
};

static const char *const db_names[DB_COUNT] = {
	"events", "by_id", "by_policy", "by_publisher", "by_recipient", "by_topic", "by_sha",
	"checkpoints", "meta", "held",
};

/* The indexes keep their entries as sorted duplicates of the key looked
 * up, appended in time order: LMDB then fills its pages instead of
 * splitting them in half. */
static const unsigned db_flags[DB_COUNT] = {
	[DB_BY_ID] = MDB_DUPSORT | MDB_DUPFIXED,
	[DB_BY_POLICY] = MDB_DUPSORT,
	[DB_BY_PUBLISHER] = MDB_DUPSORT | MDB_DUPFIXED,
	[DB_BY_RECIPIENT] = MDB_DUPSORT | MDB_DUPFIXED,
	[DB_BY_TOPIC] = MDB_DUPSORT | MDB_DUPFIXED,
	[DB_BY_SHA] = MDB_DUPSORT | MDB_DUPFIXED,
};

/* The writer's position in the chain. */
struct chain_state {
	uint64_t seq;
	unsigned char hash[32];
	int64_t ts_ms;
	uint64_t stamp_seq;
};

struct tf_trace_store {
	MDB_env *env;
	MDB_dbi dbi[DB_COUNT];
	char *dir;
	bool writable;
	uint64_t max_bytes;
	uint64_t map_bytes;
	struct chain_state state;   /* writer: after the last commit */
	MDB_txn *rtxn;              /* reader: the open snapshot */
	/* LMDB may change the map size only while this process has no
	 * transaction open: readers in the writer's process (the control
	 * API on the broker's thread) hold it shared, growth exclusively. */
	pthread_rwlock_t map_lock;
	char *buf;                  /* writer: hash || event bytes */
	size_t cap;
	char *scratch;              /* writer: decoding stored events */
	size_t scratch_cap;
	struct tf_chain *chain;     /* writer: hashing events */
};

/* --- small helpers --------------------------------------------------------- */

/* LMDB takes keys and values through non-const pointers that it only
 * reads. */
static MDB_val mval(const void *data, size_t size)
{
	MDB_val v = { size, (void *)(uintptr_t)data };

	return v;
}

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

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static bool hex_bytes(const char *hex, size_t n, unsigned char *out)
{
	if (strlen(hex) != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}

bool tf_trace_id_bytes(const char *hex, unsigned char out[16])
{
	return hex_bytes(hex, 16, out);
}

bool tf_trace_sha_bytes(const char *hex, unsigned char out[32])
{
	return hex_bytes(hex, 32, out);
}

void tf_trace_policy_id(const char *label, char *out, size_t cap)
{
	size_t n = tf_policy_label_id_len(label);

	if (n >= cap)
		n = cap - 1;
	memcpy(out, label, n);
	out[n] = '\0';
}

static int lmdb_error(struct tf_err *err, const char *dir, const char *what, int rc)
{
	if (rc == MDB_MAP_FULL || rc == ENOSPC)
		return tf_err_set(err, TF_ERR_FULL, "trace store %s: %s: %s", dir, what,
			rc == ENOSPC ? "the disk is full" : "the store is at its size limit");
	return tf_err_set(err, rc == ENOMEM ? TF_ERR_NOMEM : TF_ERR_IO, "trace store %s: %s: %s",
		dir, what, mdb_strerror(rc));
}

/* --- opening --------------------------------------------------------------- */

static int open_dbs(struct tf_trace_store *s, struct tf_err *err)
{
	MDB_txn *txn;
	char format[8] = "";
	MDB_val k = mval("format", 6), v;
	int rc = mdb_txn_begin(s->env, NULL, s->writable ? 0 : MDB_RDONLY, &txn);

	if (rc != 0)
		return lmdb_error(err, s->dir, "cannot begin", rc);
	for (int i = 0; i < DB_COUNT && rc == 0; i++)
		rc = mdb_dbi_open(txn, db_names[i], db_flags[i] | (s->writable ? MDB_CREATE : 0),
			&s->dbi[i]);
	if (rc == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return tf_err_set(err, TF_ERR_INVALID, "%s is not a trustflow trace store", s->dir);
	}
	if (rc == 0 && (rc = mdb_get(txn, s->dbi[DB_META], &k, &v)) == 0 && v.mv_size < sizeof(format))
		memcpy(format, v.mv_data, v.mv_size);
	if (rc == MDB_NOTFOUND && s->writable) {
		v = mval(FORMAT, 1);
		rc = mdb_put(txn, s->dbi[DB_META], &k, &v, 0);
		strcpy(format, FORMAT);
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return lmdb_error(err, s->dir, "cannot open its tables", rc);
	}
	if (strcmp(format, FORMAT) != 0) {
		mdb_txn_abort(txn);
		return tf_err_set(err, TF_ERR_INVALID, "%s: trace store format \"%s\", expected %s",
			s->dir, format, FORMAT);
	}
	rc = mdb_txn_commit(txn);
	return rc == 0 ? TF_OK : lmdb_error(err, s->dir, "cannot open its tables", rc);
}

/* The writer's chain state from the last stored event. */
static int load_state(struct tf_trace_store *s, struct tf_err *err)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v, mk = mval("stamp_seq", 9), ak = mval("anchor", 6);
	int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);

	memset(&s->state, 0, sizeof(s->state));
	if (rc != 0)
		return lmdb_error(err, s->dir, "cannot read", rc);
	rc = mdb_cursor_open(txn, s->dbi[DB_EVENTS], &c);
	if (rc == 0) {
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
		mdb_cursor_close(c);
	}
	if (rc == 0) {
		struct tf_event ev;
		char *scratch = malloc(v.mv_size);

		if (k.mv_size != 8 || v.mv_size < 32 || scratch == NULL
				|| tf_event_decode((const char *)v.mv_data + 32, v.mv_size - 32, &ev,
					scratch, v.mv_size, err) != TF_OK) {
			free(scratch);
			mdb_txn_abort(txn);
			return tf_err_set(err, TF_ERR_INVALID, "%s: the last trace event is unreadable; "
				"run tfctl trace verify", s->dir);
		}
		free(scratch);
		s->state.seq = tf_trace_get_u64(k.mv_data);
		memcpy(s->state.hash, v.mv_data, 32);
		s->state.ts_ms = ev.ts_ms;
	} else if (rc == MDB_NOTFOUND) {
		unsigned char anchor[40];

		/* Everything was pruned: the chain goes on from the anchor. */
		if (mdb_get(txn, s->dbi[DB_META], &ak, &v) == 0
				&& v.mv_size == 40) {
			memcpy(anchor, v.mv_data, 40);
			s->state.seq = tf_trace_get_u64(anchor);
			memcpy(s->state.hash, anchor + 8, 32);
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
	return rc == 0 ? TF_OK : lmdb_error(err, s->dir, "cannot read", rc);
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
	/* Without it each event is hashed with a context of its own. */
	s->chain = writable ? tf_chain_new() : NULL;
	pthread_rwlock_init(&s->map_lock, NULL);
	rc = mdb_env_create(&s->env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(s->env, DB_COUNT);
	if (rc == 0 && writable)
		rc = mdb_env_set_mapsize(s->env, max_bytes && max_bytes < INITIAL_MAP
			? max_bytes : INITIAL_MAP);
	/* NOSYNC: commits make events visible at once; tf_trace_sync puts
	 * them on disk as often as trace_sync_ms asks. LMDB keeps the file
	 * consistent either way. */
	if (rc == 0)
		rc = mdb_env_open(s->env, dir, writable ? MDB_NOSYNC : MDB_RDONLY, 0640);
	if (rc != 0) {
		int status = lmdb_error(err, dir, "cannot open", rc);

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
	free(s->scratch);
	tf_chain_free(s->chain);
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

/* The id of the latest message event on topic with payload hash sha
 * into id (33 bytes), or "" when there is none. */
static int find_message(struct tf_trace_store *s, MDB_txn *txn, const char *topic,
		const char *sha_hex, char id[TF_MSGID_LEN + 1])
{
	unsigned char sha[32];
	MDB_cursor *c;
	MDB_val k = mval(sha, 32), v;
	int rc;

	id[0] = '\0';
	if (!tf_trace_sha_bytes(sha_hex, sha))
		return 0;
	if ((rc = mdb_cursor_open(txn, s->dbi[DB_BY_SHA], &c)) != 0)
		return rc;
	/* The latest message with this payload comes first. */
	rc = mdb_cursor_get(c, &k, &v, MDB_SET);
	if (rc == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST_DUP);
	for (; rc == 0 && v.mv_size == ENTRY_HEAD; rc = mdb_cursor_get(c, &k, &v, MDB_PREV_DUP)) {
		MDB_val ek = { 8, (unsigned char *)v.mv_data + 8 }, ev;
		struct tf_event event;

		if (mdb_get(txn, s->dbi[DB_EVENTS], &ek, &ev) != 0 || ev.mv_size < 32
				|| !reserve(&s->scratch, &s->scratch_cap, ev.mv_size)
				|| tf_event_decode((const char *)ev.mv_data + 32, ev.mv_size - 32, &event,
					s->scratch, s->scratch_cap, NULL) != TF_OK)
			continue;
		if (strcmp(event.values[1], topic) == 0) {
			snprintf(id, TF_MSGID_LEN + 1, "%s", event.values[0]);
			break;
		}
	}
	mdb_cursor_close(c);
	return 0;
}

/* One index entry of an event: for appending and for pruning. */
struct index_entry {
	enum db db;
	unsigned char key[TF_TRACE_KEY_TEXT_MAX];
	size_t klen;
	unsigned char data[ENTRY_HEAD + 2 + 2 * NAME_MAX_IN_ENTRY];
	size_t dlen;
};

/* Starts an entry of db for ev under key[0..klen) (text is cut); false
 * when the key is empty (LMDB has no empty keys). */
static bool entry(struct index_entry *e, enum db db, const void *key, size_t klen,
		const struct tf_event *ev)
{
	if (klen == 0)
		return false;
	e->db = db;
	e->klen = klen < TF_TRACE_KEY_TEXT_MAX ? klen : TF_TRACE_KEY_TEXT_MAX;
	memcpy(e->key, key, e->klen);
	tf_trace_put_u64(e->data, (uint64_t)ev->ts_ms);
	tf_trace_put_u64(e->data + 8, ev->seq);
	e->dlen = ENTRY_HEAD;
	return true;
}

static bool id_entry(struct index_entry *e, const char *id_hex, const struct tf_event *ev)
{
	unsigned char id[16];

	return tf_trace_id_bytes(id_hex, id) && entry(e, DB_BY_ID, id, 16, ev);
}

static bool text_entry(struct index_entry *e, enum db db, const char *text,
		const struct tf_event *ev)
{
	return entry(e, db, text, strlen(text), ev);
}

/* by_policy, under the label's policy id; extra: the kind, and for a
 * delivery made the recipient's client NUL org ('D' instead of 'd' when
 * a name was cut: the query reads the event then). */
static bool policy_entry(struct index_entry *e, const char *label, const struct tf_event *ev,
		char kind, const char *client, const char *org)
{
	char policy[TF_TRACE_KEY_TEXT_MAX + 1];
	size_t cl, ol;

	tf_trace_policy_id(label, policy, sizeof(policy));
	if (!text_entry(e, DB_BY_POLICY, policy, ev))
		return false;
	e->data[e->dlen++] = (unsigned char)kind;
	if (client == NULL)
		return true;
	cl = strlen(client);
	ol = strlen(org);
	if (cl > NAME_MAX_IN_ENTRY || ol > NAME_MAX_IN_ENTRY) {
		e->data[e->dlen - 1] = 'D';
		cl = cl < NAME_MAX_IN_ENTRY ? cl : NAME_MAX_IN_ENTRY;
		ol = ol < NAME_MAX_IN_ENTRY ? ol : NAME_MAX_IN_ENTRY;
	}
	memcpy(e->data + e->dlen, client, cl);
	e->data[e->dlen + cl] = 0;
	memcpy(e->data + e->dlen + cl + 1, org, ol);
	e->dlen += cl + 1 + ol;
	return true;
}

/* Fills out with the index entries of ev; returns how many. */
static int index_entries(const struct tf_event *ev, struct index_entry out[6])
{
	const char *const *f = ev->values;
	unsigned char sha[32];
	int n = 0;

	switch (ev->kind) {
	case TF_EVENT_MESSAGE:   /* id topic org client policy sha256 ... of */
		n += id_entry(&out[n], f[0], ev);
		/* A view copy is found from its original too. */
		if (f[12] != NULL && f[12][0] != '\0')
			n += id_entry(&out[n], f[12], ev);
		if (f[4][0] != '\0')
			n += policy_entry(&out[n], f[4], ev, 'm', NULL, NULL);
		n += text_entry(&out[n], DB_BY_PUBLISHER, f[3], ev);
		if (tf_trace_sha_bytes(f[5], sha)) {
			if (text_entry(&out[n], DB_BY_TOPIC, f[1], ev)) {
				memcpy(out[n].data + ENTRY_HEAD, sha, 32);
				out[n++].dlen += 32;
			}
			n += entry(&out[n], DB_BY_SHA, sha, 32, ev);
		}
		break;
	case TF_EVENT_DELIVERY:  /* id policy client org outcome reason */
		n += id_entry(&out[n], f[0], ev);
		if (f[1][0] != '\0') {
			bool made = strcmp(f[4], "delivered") == 0;

			n += policy_entry(&out[n], f[1], ev, 'd', made ? f[2] : NULL, f[3]);
		}
		n += text_entry(&out[n], DB_BY_RECIPIENT, f[2], ev);
		break;
	case TF_EVENT_RELEASE:   /* id flow by */
	case TF_EVENT_DISCARD:
		n += id_entry(&out[n], f[0], ev);
		break;
	case TF_EVENT_ALERT:     /* alert kind policy ... */
		n += id_entry(&out[n], f[0], ev);
		if (f[2][0] != '\0')
			n += policy_entry(&out[n], f[2], ev, 'a', NULL, NULL);
		break;
	case TF_EVENT_POLICY_SET:
		break;
	}
	return n;
}

/* Adds an index entry; entries arrive in time order, so each goes at the
 * end of its key's duplicates (APPENDDUP), except after pruning races or
 * a repeated seq, which take the ordinary path. */
static int put_entry(struct tf_trace_store *s, MDB_txn *txn, const struct index_entry *e)
{
	MDB_val k = mval(e->key, e->klen), d = mval(e->data, e->dlen);
	int rc = mdb_put(txn, s->dbi[e->db], &k, &d, MDB_APPENDDUP);

	if (rc == MDB_KEYEXIST) {
		d = mval(e->data, e->dlen);
		rc = mdb_put(txn, s->dbi[e->db], &k, &d, 0);
	}
	return rc;
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

static int append_one(struct tf_trace_store *s, MDB_txn *txn, struct chain_state *st,
		const struct tf_trace_input *in)
{
	struct tf_event ev = { in->kind, st->seq + 1, in->ts_ms, { NULL } };
	struct index_entry entries[6];
	char id[TF_MSGID_LEN + 1];
	unsigned char key[8];
	size_t fields, len;
	int rc, n;

	tf_event_fields(in->kind, &fields);
	memcpy(ev.values, in->values, fields * sizeof(ev.values[0]));
	if (in->kind == TF_EVENT_DELIVERY && in->values[0][0] == '\0' && in->find_topic != NULL
			&& in->find_sha256 != NULL) {
		if ((rc = find_message(s, txn, in->find_topic, in->find_sha256, id)) != 0)
			return rc;
		ev.values[0] = id;
	}
	if (ev.ts_ms < st->ts_ms)
		ev.ts_ms = st->ts_ms;
	len = tf_event_encode(&ev, NULL, 0);
	if (!reserve(&s->buf, &s->cap, 32 + len))
		return ENOMEM;
	tf_event_encode(&ev, s->buf + 32, len);
	tf_event_chain(s->chain, st->hash, s->buf + 32, len, (unsigned char *)s->buf);
	tf_trace_put_u64(key, ev.seq);
	if ((rc = put(txn, s->dbi[DB_EVENTS], key, 8, s->buf, 32 + len, MDB_APPEND)) != 0)
		return rc;
	if (in->hold_flow != NULL && (rc = put_held(s, txn, in->hold_flow, ev.seq, in->hold,
			in->hold_len)) != 0)
		return rc;
	if (in->unhold_flow != NULL && (rc = put_held(s, txn, in->unhold_flow, in->unhold_seq,
			NULL, 0)) != 0)
		return rc;
	n = index_entries(&ev, entries);
	for (int i = 0; i < n; i++)
		if ((rc = put_entry(s, txn, &entries[i])) != 0)
			return rc;
	if (in->kind == TF_EVENT_MESSAGE && ev.values[9][0] != '\0') {
		uint64_t stamp_seq = strtoull(ev.values[9], NULL, 10);

		if (stamp_seq > st->stamp_seq)
			st->stamp_seq = stamp_seq;
	}
	st->seq = ev.seq;
	memcpy(st->hash, s->buf, 32);
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

/* Runs body in a write transaction, growing the map and running it
 * again when it is full. */
typedef int (*txn_body)(struct tf_trace_store *s, MDB_txn *txn, void *ctx);

static int write_txn(struct tf_trace_store *s, txn_body body, void *ctx, const char *what,
		struct tf_err *err)
{
	for (;;) {
		MDB_txn *txn;
		int rc = mdb_txn_begin(s->env, NULL, 0, &txn);

		if (rc == 0) {
			rc = body(s, txn, ctx);
			if (rc == 0)
				rc = mdb_txn_commit(txn);
			else
				mdb_txn_abort(txn);
		}
		if (rc == 0)
			return TF_OK;
		if (rc == MDB_MAP_FULL && grow(s))
			continue;
		return lmdb_error(err, s->dir, what, rc);
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
	int rc = write_txn(s, append_body, &a, "cannot record events", err);

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

	return write_txn(s, checkpoint_body, &copy, "cannot store a checkpoint", err);
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

	return write_txn(s, meta_body, &m, "cannot store a setting", err);
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
	return rc == 0 ? TF_OK : lmdb_error(err, s->dir, "cannot store a client id", rc);
}

int tf_trace_sync(struct tf_trace_store *s, struct tf_err *err)
{
	int rc = mdb_env_sync(s->env, 1);

	return rc == 0 ? TF_OK : lmdb_error(err, s->dir, "cannot sync", rc);
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

static int prune_body(struct tf_trace_store *s, MDB_txn *txn, void *ctx)
{
	struct prune_ctx *p = ctx;
	uint64_t limit = newest_checkpoint(s, txn), last = 0;
	unsigned char anchor[40];
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	p->removed = 0;
	if ((rc = mdb_cursor_open(txn, s->dbi[DB_EVENTS], &c)) != 0)
		return rc;
	while (p->removed < p->max && (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0) {
		struct index_entry entries[6];
		struct tf_event ev;
		uint64_t seq = tf_trace_get_u64(k.mv_data);
		int n;

		if (seq > limit || v.mv_size < 32 || !reserve(&s->scratch, &s->scratch_cap, v.mv_size)
				|| tf_event_decode((const char *)v.mv_data + 32, v.mv_size - 32, &ev,
					s->scratch, s->scratch_cap, NULL) != TF_OK
				|| ev.ts_ms >= p->before_ms)
			break;
		memcpy(anchor + 8, v.mv_data, 32);
		n = index_entries(&ev, entries);
		for (int i = 0; i < n; i++) {
			MDB_val ik = mval(entries[i].key, entries[i].klen);
			MDB_val id = mval(entries[i].data, entries[i].dlen);

			rc = mdb_del(txn, s->dbi[entries[i].db], &ik, &id);
			if (rc != 0 && rc != MDB_NOTFOUND)
				break;
			rc = 0;
		}
		if (rc == 0)
			rc = mdb_cursor_del(c, 0);
		if (rc != 0)
			break;
		last = seq;
		p->removed++;
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
	int rc = write_txn(s, prune_body, &p, "cannot prune", err);

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
		return lmdb_error(err, s->dir, "cannot read", rc);
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

int tf_trace_get_event(struct tf_trace_store *s, uint64_t seq, const unsigned char **hash,
		const char **bytes, size_t *len)
{
	unsigned char key[8];
	MDB_val k = { 8, key }, v;

	tf_trace_put_u64(key, seq);
	if (mdb_get(s->rtxn, s->dbi[DB_EVENTS], &k, &v) != 0 || v.mv_size < 32)
		return TF_ERR_INVALID;
	*hash = v.mv_data;
	*bytes = (const char *)v.mv_data + 32;
	*len = v.mv_size - 32;
	return TF_OK;
}

int tf_trace_scan_events(struct tf_trace_store *s, uint64_t from, tf_trace_event_visit visit,
		void *ctx)
{
	unsigned char key[8];
	MDB_cursor *c;
	MDB_val k = { 8, key }, v;
	int rc, stop = 0;

	tf_trace_put_u64(key, from);
	if (mdb_cursor_open(s->rtxn, s->dbi[DB_EVENTS], &c) != 0)
		return -1;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && stop == 0;
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		/* A malformed entry is passed on as it is (hash NULL when too
		 * short): verify must see it to report it. */
		bool whole = k.mv_size == 8 && v.mv_size >= 32;

		stop = visit(ctx, k.mv_size == 8 ? tf_trace_get_u64(k.mv_data) : 0,
			whole ? v.mv_data : NULL, whole ? (const char *)v.mv_data + 32 : NULL,
			whole ? v.mv_size - 32 : 0);
	}
	mdb_cursor_close(c);
	return stop;
}

void tf_trace_bounds(struct tf_trace_store *s, uint64_t *first, uint64_t *last)
{
	MDB_cursor *c;
	MDB_val k, v;

	*first = *last = 0;
	if (mdb_cursor_open(s->rtxn, s->dbi[DB_EVENTS], &c) != 0)
		return;
	if (mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0 && k.mv_size == 8)
		*first = tf_trace_get_u64(k.mv_data);
	if (mdb_cursor_get(c, &k, &v, MDB_LAST) == 0 && k.mv_size == 8)
		*last = tf_trace_get_u64(k.mv_data);
	mdb_cursor_close(c);
}

/* The time of stored event seq, or INT64_MAX when it cannot be read. */
static int64_t event_time(struct tf_trace_store *s, uint64_t seq)
{
	const unsigned char *hash;
	const char *bytes, *p, *end;
	size_t len;
	int64_t ts = 0;
	int lines = 0;

	if (tf_trace_get_event(s, seq, &hash, &bytes, &len) != TF_OK)
		return INT64_MAX;
	/* ts is the third field: after the header, kind and seq lines,
	 * whose values hold no newline. */
	end = bytes + len;
	for (p = bytes; p < end && lines < 3; p++)
		lines += *p == '\n';
	if (end - p < 3 || memcmp(p, "ts:", 3) != 0
			|| (p = memchr(p + 3, ':', (size_t)(end - p - 3))) == NULL)
		return INT64_MAX;
	for (p++; p < end && *p >= '0' && *p <= '9'; p++)
		ts = ts * 10 + (*p - '0');
	return ts;
}

uint64_t tf_trace_seq_at(struct tf_trace_store *s, int64_t ts_ms)
{
	uint64_t lo, hi;

	tf_trace_bounds(s, &lo, &hi);
	if (hi == 0)
		return 1;
	hi++;
	/* Times never decrease along seq: the first seq at or after ts_ms. */
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (event_time(s, mid) < ts_ms)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int tf_trace_scan_index(struct tf_trace_store *s, enum tf_trace_index ix, const void *key,
		size_t klen, int64_t from_ms, int64_t to_ms, tf_trace_index_visit visit, void *ctx)
{
	static const enum db dbs[] = {
		[TF_INDEX_BY_ID] = DB_BY_ID, [TF_INDEX_BY_POLICY] = DB_BY_POLICY,
		[TF_INDEX_BY_PUBLISHER] = DB_BY_PUBLISHER, [TF_INDEX_BY_RECIPIENT] = DB_BY_RECIPIENT,
		[TF_INDEX_BY_TOPIC] = DB_BY_TOPIC, [TF_INDEX_BY_SHA] = DB_BY_SHA,
	};
	unsigned char from[8];
	MDB_cursor *c;
	MDB_val k = mval(key, klen < TF_TRACE_KEY_TEXT_MAX ? klen : TF_TRACE_KEY_TEXT_MAX), d;
	int rc, stop = 0;

	if (klen == 0)
		return 0;
	tf_trace_put_u64(from, (uint64_t)(from_ms < 0 ? 0 : from_ms));
	d = mval(from, 8);
	if (mdb_cursor_open(s->rtxn, s->dbi[dbs[ix]], &c) != 0)
		return -1;
	for (rc = mdb_cursor_get(c, &k, &d, MDB_GET_BOTH_RANGE); rc == 0 && stop == 0;
			rc = mdb_cursor_get(c, &k, &d, MDB_NEXT_DUP)) {
		const unsigned char *data = d.mv_data;
		int64_t ts;

		if (d.mv_size < ENTRY_HEAD)
			continue;
		ts = (int64_t)tf_trace_get_u64(data);
		if (ts > to_ms)
			break;
		stop = visit(ctx, ts, tf_trace_get_u64(data + 8), data + ENTRY_HEAD,
			d.mv_size - ENTRY_HEAD);
	}
	mdb_cursor_close(c);
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

void tf_trace_scan_keys(struct tf_trace_store *s, tf_trace_key_visit visit, void *ctx)
{
	MDB_cursor *c;
	MDB_val k = mval("key:", 4), v;
	int rc;

	if (mdb_cursor_open(s->rtxn, s->dbi[DB_META], &c) != 0)
		return;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		char kid[TF_KID_LEN + 1];

		if (k.mv_size != 4 + TF_KID_LEN || memcmp(k.mv_data, "key:", 4) != 0)
			break;
		memcpy(kid, (char *)k.mv_data + 4, TF_KID_LEN);
		kid[TF_KID_LEN] = '\0';
		visit(ctx, kid, v.mv_data, v.mv_size);
	}
	mdb_cursor_close(c);
}
