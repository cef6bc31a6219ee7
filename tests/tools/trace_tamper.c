/* Edits a stopped broker's trace store behind its back, as an attacker
 * with file access would, for the tests of `tfctl trace verify`:
 *
 *     trace_tamper DIR flip SEQ OFFSET   flips one bit of the record holding event SEQ
 *     trace_tamper DIR delete SEQ        removes the record holding event SEQ
 *     trace_tamper DIR format VALUE      labels the store with another format
 *
 * and prints the seq of that record's first event. OFFSET counts from
 * the start of the stored value (its 32-byte chain hash, then the
 * record: broker/trace/record.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "broker/trace/trace_store.h"

/* The record holding the event whose seq k names: the last record whose
 * first seq is at most it. */
static int holding_record(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v)
{
	uint64_t seq = tf_trace_get_u64(k->mv_data);
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, dbi, &c);

	if (rc == 0)
		rc = mdb_cursor_get(c, k, v, MDB_SET_RANGE);
	if (rc == 0 && tf_trace_get_u64(k->mv_data) != seq)
		rc = mdb_cursor_get(c, k, v, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(c, k, v, MDB_LAST);
	mdb_cursor_close(c);
	return rc;
}

int main(int argc, char **argv)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	unsigned char key[8];
	MDB_val k = { 8, key }, v;
	char *copy = NULL;
	int rc;

	if (argc < 4 || (strcmp(argv[2], "flip") == 0 && argc != 5)
			|| (strcmp(argv[2], "delete") == 0 && argc != 4)
			|| (strcmp(argv[2], "format") == 0 && argc != 4)) {
		fputs("usage: trace_tamper DIR flip SEQ OFFSET | trace_tamper DIR delete SEQ\n"
			"       trace_tamper DIR format VALUE\n", stderr);
		return 2;
	}
	tf_trace_put_u64(key, strtoull(argv[3], NULL, 10));
	rc = mdb_env_create(&env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(env, 16);
	if (rc == 0)
		rc = mdb_env_open(env, argv[1], 0, 0640);
	if (rc == 0)
		rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (rc == 0 && strcmp(argv[2], "format") == 0) {
		MDB_val name = { 6, key }, value = { strlen(argv[3]), argv[3] };

		memcpy(key, "format", 6);
		rc = mdb_dbi_open(txn, "meta", 0, &dbi);
		if (rc == 0)
			rc = mdb_put(txn, dbi, &name, &value, 0);
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		mdb_env_close(env);
		return rc == 0 ? 0 : 1;
	}
	if (rc == 0)
		rc = mdb_dbi_open(txn, "records", 0, &dbi);
	if (rc == 0)
		rc = holding_record(txn, dbi, &k, &v);
	if (rc == 0)
		printf("%llu\n", (unsigned long long)tf_trace_get_u64(k.mv_data));
	if (rc == 0 && strcmp(argv[2], "delete") == 0) {
		rc = mdb_del(txn, dbi, &k, NULL);
	} else if (rc == 0) {
		size_t offset = strtoull(argv[4], NULL, 10);

		copy = malloc(v.mv_size);
		if (copy == NULL || offset >= v.mv_size) {
			fputs("trace_tamper: offset past the record\n", stderr);
			return 1;
		}
		memcpy(copy, v.mv_data, v.mv_size);
		copy[offset] ^= 1;
		v.mv_data = copy;
		rc = mdb_put(txn, dbi, &k, &v, 0);
	}
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	free(copy);
	if (rc != 0) {
		fprintf(stderr, "trace_tamper: %s\n", mdb_strerror(rc));
		return 1;
	}
	mdb_env_close(env);
	return 0;
}
