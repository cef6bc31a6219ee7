/* tf_trace_migrate: a trace store of format 1 (trustflow 0.1: one text
 * event per entry of "events") copied into format 2, each event checked
 * against its chain hash and appended again, so that the copy's chain is
 * the old one's; checkpoints, held messages and meta follow as they are. */
#include "broker/trace/store_internal.h"

#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "broker/trace/trace_event.h"

#define MIGRATE_BATCH 256

/* The old store, opened read-only. */
struct old_store {
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi events, meta, checkpoints, held;
};

static int open_old(const char *dir, struct old_store *o, struct tf_err *err)
{
	char format[8] = "";
	int rc = mdb_env_create(&o->env);

	if (rc == 0)
		rc = mdb_env_set_maxdbs(o->env, 16);
	if (rc == 0)
		rc = mdb_env_open(o->env, dir, MDB_RDONLY, 0640);
	if (rc == 0)
		rc = mdb_txn_begin(o->env, NULL, MDB_RDONLY, &o->txn);
	if (rc != 0)
		return tf_trace_lmdb_error(err, dir, "cannot open", rc);
	if (tf_trace_read_format(o->txn, format) != 0 || strcmp(format, FORMAT_0_1) != 0)
		return tf_err_set(err, TF_ERR_INVALID, "%s is not a trace store of format 1 "
			"(trustflow 0.1)", dir);
	rc = mdb_dbi_open(o->txn, "events", 0, &o->events);
	if (rc == 0)
		rc = mdb_dbi_open(o->txn, "meta", 0, &o->meta);
	if (rc == 0)
		rc = mdb_dbi_open(o->txn, "checkpoints", 0, &o->checkpoints);
	if (rc == 0)
		rc = mdb_dbi_open(o->txn, "held", 0, &o->held);
	return rc == 0 ? TF_OK : tf_trace_lmdb_error(err, dir, "cannot open its tables", rc);
}

static void close_old(struct old_store *o)
{
	if (o->txn != NULL)
		mdb_txn_abort(o->txn);
	if (o->env != NULL)
		mdb_env_close(o->env);
}

/* Copies every entry of an old table into the new store's db, but the
 * keys skip says (NULL: none). */
static int copy_table(struct tf_trace_store *s, MDB_txn *txn, struct old_store *o, MDB_dbi from,
		enum db to, bool (*skip)(const MDB_val *k))
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_cursor_open(o->txn, from, &c);

	for (rc = rc ? rc : mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (skip != NULL && skip(&k))
			continue;
		if ((rc = mdb_put(txn, s->dbi[to], &k, &v, 0)) != 0)
			break;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static bool format_or_anchor(const MDB_val *k)
{
	return (k->mv_size == 6 && memcmp(k->mv_data, "format", 6) == 0)
		|| (k->mv_size == 6 && memcmp(k->mv_data, "anchor", 6) == 0);
}

struct migration {
	struct old_store *old;
};

static int copy_rest(struct tf_trace_store *s, MDB_txn *txn, void *ctx)
{
	struct old_store *o = ((struct migration *)ctx)->old;
	int rc = copy_table(s, txn, o, o->checkpoints, DB_CHECKPOINTS, NULL);

	if (rc == 0)
		rc = copy_table(s, txn, o, o->held, DB_HELD, NULL);
	if (rc == 0)
		rc = copy_table(s, txn, o, o->meta, DB_META, format_or_anchor);
	return rc;
}

static int set_anchor(struct tf_trace_store *s, MDB_txn *txn, void *ctx)
{
	(void)ctx;
	if (s->state.seq == 0)
		return 0;
	{
		unsigned char anchor[40];

		tf_trace_put_u64(anchor, s->state.seq);
		memcpy(anchor + 8, s->state.hash, 32);
		MDB_val k = mval("anchor", 6), v = mval(anchor, 40);

		return mdb_put(txn, s->dbi[DB_META], &k, &v, 0);
	}
}

/* Checks one old event (its key and stored hash || bytes) against the
 * chain so far, and decodes it into in with values in scratch. */
static int take_old_event(const MDB_val *k, const MDB_val *v, struct chain_state *st,
		struct tf_trace_input *in, char **scratch, struct tf_err *err)
{
	struct tf_event ev;
	unsigned char hash[32];
	const char *bytes = (const char *)v->mv_data + 32;
	size_t len = v->mv_size - 32;
	uint64_t seq = k->mv_size == 8 ? tf_trace_get_u64(k->mv_data) : 0;
	char *again;
	size_t fields;

	if (seq != st->seq + 1 || v->mv_size < 32)
		return tf_err_set(err, TF_ERR_INVALID, "event %llu is missing or malformed; run "
			"tfctl trace verify on the old store", (unsigned long long)st->seq + 1);
	free(*scratch);
	if ((*scratch = malloc(len + 1)) == NULL)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	tf_event_chain(NULL, st->hash, bytes, len, hash);
	if (memcmp(hash, v->mv_data, 32) != 0
			|| tf_event_decode(bytes, len, &ev, *scratch, len + 1, err) != TF_OK)
		return tf_err_set(err, TF_ERR_INVALID, "event %llu does not match its chain hash; "
			"run tfctl trace verify on the old store", (unsigned long long)seq);
	/* Format 2 hashes the same bytes: the event must encode back to them. */
	again = malloc(len);
	if (again == NULL)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	if (tf_event_encode(&ev, again, len) != len || memcmp(again, bytes, len) != 0) {
		free(again);
		return tf_err_set(err, TF_ERR_INVALID, "event %llu cannot be copied exactly",
			(unsigned long long)seq);
	}
	free(again);
	memset(in, 0, sizeof(*in));
	in->kind = ev.kind;
	in->ts_ms = ev.ts_ms;
	tf_event_fields(ev.kind, &fields);
	memcpy(in->values, ev.values, fields * sizeof(ev.values[0]));
	/* 0.1 did not record what may be delivered later: all of it may. */
	if (ev.kind == TF_EVENT_MESSAGE)
		in->file_sha256 = ev.values[5];
	st->seq = seq;
	memcpy(st->hash, hash, 32);
	return TF_OK;
}

int tf_trace_migrate(const char *from, const char *to, uint64_t *events, struct tf_err *err)
{
	struct old_store old = { NULL };
	struct tf_trace_store *s = NULL;
	struct tf_trace_input in[MIGRATE_BATCH];
	char *scratch[MIGRATE_BATCH] = { NULL };
	struct chain_state expect = { 0 };
	struct migration m = { &old };
	MDB_cursor *c = NULL;
	MDB_val k, v;
	size_t n = 0;
	int rc;

	*events = 0;
	if ((rc = open_old(from, &old, err)) != TF_OK)
		goto done;
	if ((rc = tf_trace_open(to, true, 0, &s, err)) != TF_OK)
		goto done;
	if (s->state.seq != 0) {
		rc = tf_err_set(err, TF_ERR_INVALID, "%s already holds a trace store", to);
		goto done;
	}
	k = mval("anchor", 6);
	if (mdb_get(old.txn, old.meta, &k, &v) == 0 && v.mv_size == 40) {
		expect.seq = s->state.seq = tf_trace_get_u64(v.mv_data);
		memcpy(expect.hash, (const unsigned char *)v.mv_data + 8, 32);
		memcpy(s->state.hash, expect.hash, 32);
		if ((rc = tf_trace_write_txn(s, set_anchor, NULL, "cannot copy", err)) != TF_OK)
			goto done;
	}
	if ((rc = mdb_cursor_open(old.txn, old.events, &c)) != 0) {
		rc = tf_trace_lmdb_error(err, from, "cannot read", rc);
		goto done;
	}
	for (int got = mdb_cursor_get(c, &k, &v, MDB_FIRST); ; got = mdb_cursor_get(c, &k, &v,
			MDB_NEXT)) {
		if (got == 0 && (rc = take_old_event(&k, &v, &expect, &in[n], &scratch[n], err))
				!= TF_OK)
			goto done;
		n += got == 0;
		if (n == MIGRATE_BATCH || (got != 0 && n > 0)) {
			if ((rc = tf_trace_append(s, in, n, err)) != TF_OK)
				goto done;
			*events += n;
			n = 0;
		}
		if (got != 0)
			break;
	}
	rc = TF_OK;
	if (memcmp(s->state.hash, expect.hash, 32) != 0)
		rc = tf_err_set(err, TF_ERR_INVALID, "the copy's chain differs from the old store's");
	if (rc == TF_OK)
		rc = tf_trace_write_txn(s, copy_rest, &m, "cannot copy", err);
	if (rc == TF_OK)
		rc = tf_trace_sync(s, err);
done:
	if (c != NULL)
		mdb_cursor_close(c);
	for (size_t i = 0; i < MIGRATE_BATCH; i++)
		free(scratch[i]);
	tf_trace_close(s);
	close_old(&old);
	return rc;
}
