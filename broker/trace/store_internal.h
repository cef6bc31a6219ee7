/* The trace store's insides, shared by trace_store.c and migrate.c (a
 * store of format 1 copied into format 2); nothing else includes it. */
#ifndef TF_TRACE_STORE_INTERNAL_H
#define TF_TRACE_STORE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "broker/trace/record.h"
#include "broker/trace/trace_store.h"
#include "broker/util/error.h"

struct tf_event_hasher;
struct tf_strmap;

/* The store's formats: this version's, and trustflow 0.1's. */
#define FORMAT "2"
#define FORMAT_0_1 "1"
/* How many names the writer remembers ahead of its cache. */
#define RECENT_NAMES 4u

enum db {
	DB_RECORDS,
	DB_NAMES,
	DB_NAME_IDS,
	DB_BY_ID,
	DB_BY_POLICY,
	DB_BY_PUBLISHER,
	DB_BY_RECIPIENT,
	DB_BY_TOPIC,
	DB_BY_SHA,
	DB_RECIPIENTS,
	DB_CHECKPOINTS,
	DB_META,
	DB_HELD,
	DB_COUNT
};

/* The writer's position in the chain. */
struct chain_state {
	uint64_t seq;
	unsigned char hash[32];
	int64_t ts_ms;
	uint64_t stamp_seq;
};

/* One index entry: a record under key. */
struct index_key {
	uint8_t db;
	uint8_t klen;
	unsigned char key[32];
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
	/* The writer's. */
	char *buf;                  /* an event's text encoding, for its hash */
	size_t cap;
	struct tf_event_hasher *chain;
	struct tf_record_builder record;
	uint64_t record_seq;        /* the seq of the record's first event */
	bool record_has_message;    /* the record's first event is a message's */
	struct index_key *keys;     /* the record's index entries */
	uint32_t n_keys, cap_keys;
	uint32_t last_key[DB_COUNT];    /* per index, its last entry in keys + 1; 0: none */
	struct tf_strmap *name_cache;   /* text -> number (NULL: none) */
	/* The names looked up last, before name_cache: a delivery names its
	 * client and policy in its fields and again in its index keys. */
	struct tf_name_memo recent[RECENT_NAMES];
	uint32_t recent_next;
	uint32_t last_name;             /* the highest number given */
};

/* LMDB takes keys and values through non-const pointers that it only
 * reads. */
static inline MDB_val mval(const void *data, size_t size)
{
	MDB_val v = { size, (void *)(uintptr_t)data };

	return v;
}

/* err from LMDB's rc about the store in dir: TF_ERR_FULL, TF_ERR_NOMEM
 * or TF_ERR_IO. */
int tf_trace_lmdb_error(struct tf_err *err, const char *dir, const char *what, int rc);

/* The "format" of the store txn reads (8 bytes with its NUL; "" when it
 * has none). Returns LMDB's rc. */
int tf_trace_read_format(MDB_txn *txn, char format[8]);

/* Runs body in a write transaction, growing the map and running it
 * again when it is full. Names given in a transaction that did not
 * commit are forgotten. err says what failed, naming what. */
typedef int (*tf_trace_txn_body)(struct tf_trace_store *s, MDB_txn *txn, void *ctx);
int tf_trace_write_txn(struct tf_trace_store *s, tf_trace_txn_body body, void *ctx,
		const char *what, struct tf_err *err);

#endif
