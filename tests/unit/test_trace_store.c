/* Unit tests for broker/trace/trace_store.c and broker/trace/trace_query.c: a real
 * LMDB store in a temporary directory, filled with events, asked every
 * question tfctl trace asks, tampered with, pruned and filled up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <lmdb.h>

#include "broker/trace/checkpoint.h"
#include "broker/stamp/provenance.h"
#include "broker/trace/trace_query.h"
#include "broker/trace/trace_store.h"

#define ID1 "019ac008e6005f1e2d3c4b5a69780123"
#define ID2 "019ac008e6015f1e2d3c4b5a69780456"
#define SHA1 "fa9a08d761793b6ff6fe10b881cc97ad17d51c2e6c77adb8e841d854491cccf6"
#define SHA2 "1111111111111111111111111111111111111111111111111111111111111111"
#define ID3 "019ac008e6025f1e2d3c4b5a69780789"
#define SHA3 "2222222222222222222222222222222222222222222222222222222222222222"
#define TOPIC "city/water/d7/telemetry"
#define T0 1764158400000LL

struct fixture {
	char dir[64];
	char key[96];
	struct tf_trace_store *s;
	struct tf_signer *signer;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct tf_err err;

	strcpy(f->dir, "/tmp/tf-trace-XXXXXX");
	if (f == NULL || mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->key, sizeof(f->key), "%s-key.pem", f->dir);
	if (tf_signer_generate(f->key, &f->signer, &err) != TF_OK
			|| tf_trace_open(f->dir, true, 0, &f->s, &err) != TF_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[200];

	tf_trace_close(f->s);
	tf_signer_free(f->signer);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", f->dir, f->key);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static struct tf_trace_input message(const char *id, const char *topic, const char *client,
		const char *sha, const char *status, int64_t ts, const char *stamp_seq)
{
	struct tf_trace_input in = { .kind = TF_EVENT_MESSAGE, .ts_ms = ts,
		.values = { id, topic, "city-waterworks", client,
		"water-telemetry@3", sha, "28", status, "", stamp_seq, "21fe31dfa154a261", "c2ln" } };

	return in;
}

static struct tf_trace_input delivery(const char *id, const char *client, const char *org,
		bool made, int64_t ts)
{
	struct tf_trace_input in = { .kind = TF_EVENT_DELIVERY, .ts_ms = ts,
		.values = { id, "water-telemetry@3", client, org,
		made ? "delivered" : "withheld", made ? "" : "no consumer rule matches" } };

	return in;
}

static void append(struct fixture *f, const struct tf_trace_input *in, size_t n)
{
	struct tf_err err;

	assert_int_equal(tf_trace_append(f->s, in, n, &err), TF_OK);
}

/* A message with one delivery and one withholding, a second message, a
 * release of the first. */
static void fill(struct fixture *f)
{
	struct tf_trace_input in[] = {
		message(ID1, TOPIC, "ww-sensor-01", SHA1, "delivered", T0, "42"),
		delivery(ID1, "maint-app", "maint-co", true, T0 + 3),
		delivery(ID1, "snoop", "", false, T0 + 3),
		message(ID2, TOPIC, "ww-sensor-01", SHA2, "delivered", T0 + 1000, "43"),
		delivery(ID2, "maint-app", "maint-co", true, T0 + 1001),
		delivery(ID2, "lab-bot", "uni-lab", true, T0 + 1002),
	};

	append(f, in, sizeof(in) / sizeof(in[0]));
}

static void checkpoint(struct fixture *f)
{
	struct tf_checkpoint cp;
	struct tf_err err;

	assert_int_equal(tf_checkpoint_sign(&cp, f->signer, "city-broker-1", tf_trace_last_seq(f->s),
		tf_trace_last_hash(f->s), T0 + 5000, &err), TF_OK);
	assert_int_equal(tf_trace_put_checkpoint(f->s, &cp, &err), TF_OK);
}

static void put_key(struct fixture *f)
{
	char name[40];
	struct tf_err err;

	snprintf(name, sizeof(name), "key:%s", tf_signer_kid(f->signer));
	assert_int_equal(tf_trace_put_meta(f->s, name, tf_signer_public_pem(f->signer), &err),
		TF_OK);
}

/* The lines a query wrote, parsed. */
struct lines {
	char *text;
	size_t len;
	FILE *out;
	cJSON *items[64];
	int n;
};

static FILE *capture(struct lines *l)
{
	memset(l, 0, sizeof(*l));
	l->out = open_memstream(&l->text, &l->len);
	assert_non_null(l->out);
	return l->out;
}

static void parse_lines(struct lines *l)
{
	assert_int_equal(fclose(l->out), 0);
	for (char *line = strtok(l->text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		assert_true(l->n < 64);
		l->items[l->n] = cJSON_Parse(line);
		assert_non_null(l->items[l->n]);
		l->n++;
	}
}

static void free_lines(struct lines *l)
{
	for (int i = 0; i < l->n; i++)
		cJSON_Delete(l->items[i]);
	free(l->text);
}

static const char *str(const cJSON *o, const char *name)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);

	assert_true(cJSON_IsString(m));
	return m->valuestring;
}

static double num(const cJSON *o, const char *name)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);

	assert_true(cJSON_IsNumber(m));
	return m->valuedouble;
}

static void begin(struct fixture *f)
{
	struct tf_err err;

	assert_int_equal(tf_trace_read_begin(f->s, &err), TF_OK);
}

/* The first step of a walk: an event's hashed bytes (a copy) and hashes. */
struct step_copy {
	uint64_t seq;
	char bytes[2048];
	size_t len;
	unsigned char prev[32], hash[32];
	bool stored;
};

static int copy_step(void *ctx, const struct tf_trace_step *step)
{
	struct step_copy *c = ctx;

	assert_non_null(step->ev);
	c->seq = step->seq;
	c->len = tf_event_encode(step->ev, c->bytes, sizeof(c->bytes) - 1);
	assert_true(c->len < sizeof(c->bytes));
	c->bytes[c->len] = '\0';
	memcpy(c->prev, step->prev, 32);
	memcpy(c->hash, step->hash, 32);
	c->stored = step->stored != NULL;
	return 1;
}

/* Event seq as the walk gives it (in a read snapshot). */
static struct step_copy event_at(struct fixture *f, uint64_t seq)
{
	struct step_copy c = { 0 };

	assert_int_equal(tf_trace_walk(f->s, seq, copy_step, &c), 1);
	assert_int_equal(c.seq, seq);
	return c;
}

/* --- the chain ---------------------------------------------------------------- */

static void appending_numbers_and_chains_events(void **state)
{
	struct fixture *f = *state;
	unsigned char zero[32] = { 0 }, h1[32];
	struct tf_trace_input one = message(ID1, TOPIC, "c", SHA1, "delivered", T0, "");
	struct step_copy e;

	assert_int_equal(tf_trace_last_seq(f->s), 0);
	assert_memory_equal(tf_trace_last_hash(f->s), zero, 32);
	append(f, &one, 1);
	assert_int_equal(tf_trace_last_seq(f->s), 1);
	begin(f);
	e = event_at(f, 1);
	/* The chain hash is SHA-256(32 zero bytes || the event's bytes). */
	tf_event_chain(NULL, zero, e.bytes, e.len, h1);
	assert_memory_equal(e.prev, zero, 32);
	assert_memory_equal(e.hash, h1, 32);
	assert_true(e.stored);
	assert_memory_equal(tf_trace_last_hash(f->s), h1, 32);
	assert_non_null(strstr(e.bytes, "seq:1:1\n"));
	tf_trace_read_end(f->s);
}

static void state_survives_reopening(void **state)
{
	struct fixture *f = *state;
	unsigned char hash[32];
	struct tf_err err;

	fill(f);
	memcpy(hash, tf_trace_last_hash(f->s), 32);
	tf_trace_close(f->s);
	assert_int_equal(tf_trace_open(f->dir, true, 0, &f->s, &err), TF_OK);
	assert_int_equal(tf_trace_last_seq(f->s), 6);
	assert_memory_equal(tf_trace_last_hash(f->s), hash, 32);
	/* The stamps' numbering goes on from the highest recorded. */
	assert_int_equal(tf_trace_last_stamp_seq(f->s), 43);
}

static void event_times_never_go_back(void **state)
{
	struct fixture *f = *state;
	struct tf_trace_input in[] = {
		message(ID1, TOPIC, "c", SHA1, "delivered", T0 + 500, ""),
		message(ID2, TOPIC, "c", SHA2, "delivered", T0, ""),   /* the clock stepped back */
	};
	append(f, in, 2);
	begin(f);
	assert_non_null(strstr(event_at(f, 2).bytes, "ts:13:1764158400500\n"));
	assert_int_equal(tf_trace_seq_at(f->s, T0 + 500), 1);
	assert_int_equal(tf_trace_seq_at(f->s, T0 + 501), 3);
	tf_trace_read_end(f->s);
}

/* How many deliveries made the message object of id lists. */
static int deliveries_of(struct fixture *f, const char *id)
{
	struct tf_err err;
	cJSON *o;
	int n;

	begin(f);
	o = tf_query_message(f->s, id, &err);
	assert_non_null(o);
	n = cJSON_GetArraySize(cJSON_GetObjectItem(o, "deliveries"));
	cJSON_Delete(o);
	tf_trace_read_end(f->s);
	return n;
}

/* A delivery naming its message by topic and payload hash. */
static struct tf_trace_input delivery_by_content(const char *topic, const char *sha, int64_t ts)
{
	struct tf_trace_input in = delivery("", "maint-app", "maint-co", true, ts);

	in.find_topic = topic;
	in.find_sha256 = sha;
	return in;
}

static void a_delivery_of_an_unknown_message_is_matched_by_topic_and_hash(void **state)
{
	struct fixture *f = *state;
	struct tf_trace_input in[] = {
		message(ID1, TOPIC, "c", SHA1, "delivered", T0, ""),
		message(ID2, "other/topic", "c", SHA1, "delivered", T0, ""),
		message(ID3, TOPIC, "c", SHA3, "delivered", T0, ""),
		delivery_by_content(TOPIC, SHA1, T0 + 10),
		delivery_by_content("never/seen", SHA1, T0 + 10),
		delivery_by_content(TOPIC, SHA3, T0 + 10),
	};

	/* The third is not filed by content: no delivery can name it so. */
	in[0].file_sha256 = SHA1;
	in[1].file_sha256 = SHA1;
	append(f, in, 6);
	assert_int_equal(deliveries_of(f, ID1), 1);
	assert_int_equal(deliveries_of(f, ID2), 0);
	assert_int_equal(deliveries_of(f, ID3), 0);
}

/* --- queries ------------------------------------------------------------------- */

static void message_object_lists_deliveries_and_withholdings(void **state)
{
	struct fixture *f = *state;
	struct tf_err err;
	const cJSON *d, *w;
	cJSON *o;

	fill(f);
	begin(f);
	o = tf_query_message(f->s, ID1, &err);
	assert_non_null(o);
	assert_string_equal(str(o, "id"), ID1);
	assert_true(num(o, "seq") == 42);
	assert_true(num(o, "ts") == (double)T0);
	assert_string_equal(str(o, "topic"), TOPIC);
	assert_string_equal(str(o, "org"), "city-waterworks");
	assert_string_equal(str(o, "client"), "ww-sensor-01");
	assert_string_equal(str(o, "policy"), "water-telemetry@3");
	assert_string_equal(str(o, "sha256"), SHA1);
	assert_true(num(o, "size") == 28);
	assert_string_equal(str(o, "status"), "delivered");
	d = cJSON_GetObjectItem(o, "deliveries");
	w = cJSON_GetObjectItem(o, "withheld");
	assert_int_equal(cJSON_GetArraySize(d), 1);
	assert_int_equal(cJSON_GetArraySize(w), 1);
	assert_string_equal(str(cJSON_GetArrayItem(d, 0), "client"), "maint-app");
	assert_string_equal(str(cJSON_GetArrayItem(d, 0), "org"), "maint-co");
	assert_true(num(cJSON_GetArrayItem(d, 0), "ts") == (double)(T0 + 3));
	assert_string_equal(str(cJSON_GetArrayItem(w, 0), "client"), "snoop");
	assert_string_equal(str(cJSON_GetArrayItem(w, 0), "reason"), "no consumer rule matches");
	cJSON_Delete(o);
	assert_null(tf_query_message(f->s, "019ac008e6005f1e2d3c4b5a69789999", &err));
	assert_null(tf_query_message(f->s, "not-an-id", &err));
	assert_non_null(strstr(err.msg, "not a message id"));
	tf_trace_read_end(f->s);
}

/* A message sent on to a peer broker: the forward is neither a delivery
 * here nor a withholding. */
static void a_forward_to_a_peer_is_listed_as_forwarded(void **state)
{
	struct fixture *f = *state;
	struct tf_trace_input in[] = {
		message(ID1, TOPIC, "ww-sensor-01", SHA1, "delivered", T0, "42"),
		{ .kind = TF_EVENT_DELIVERY, .ts_ms = T0 + 1, .values = { ID1, "water-telemetry@3",
			"broker-b", "retail-a", "forwarded", "", "bridge-from-b" } },
		delivery(ID1, "maint-app", "maint-co", true, T0 + 2),
	};
	const cJSON *fw;
	struct tf_err err;
	cJSON *o;

	append(f, in, 3);
	begin(f);
	o = tf_query_message(f->s, ID1, &err);
	assert_non_null(o);
	fw = cJSON_GetObjectItem(o, "forwarded");
	assert_int_equal(cJSON_GetArraySize(fw), 1);
	assert_string_equal(str(cJSON_GetArrayItem(fw, 0), "client"), "broker-b");
	assert_string_equal(str(cJSON_GetArrayItem(fw, 0), "org"), "retail-a");
	assert_string_equal(str(cJSON_GetArrayItem(fw, 0), "client_id"), "bridge-from-b");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "withheld")), 0);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "deliveries")), 1);
	cJSON_Delete(o);
	tf_trace_read_end(f->s);
}

static void a_release_changes_the_status(void **state)
{
	struct fixture *f = *state;
	struct tf_trace_input rel = { .kind = TF_EVENT_RELEASE, .ts_ms = T0 + 9000,
		.values = { ID1, "water-telemetry/ww-sensor-01", "admin" } };
	struct tf_err err;
	cJSON *o;

	fill(f);
	append(f, &rel, 1);
	begin(f);
	o = tf_query_message(f->s, ID1, &err);
	assert_string_equal(str(o, "status"), "released");
	cJSON_Delete(o);
	tf_trace_read_end(f->s);
}

static void recipients_counts_deliveries_made_per_client(void **state)
{
	struct fixture *f = *state;
	struct lines l;
	struct tf_err err;
	size_t n;

	fill(f);
	begin(f);
	assert_int_equal(tf_query_recipients(f->s, "water-telemetry", 0, INT64_MAX, capture(&l),
		&n, &err), TF_OK);
	parse_lines(&l);
	assert_int_equal(n, 2);
	assert_int_equal(l.n, 2);
	/* By client; snoop was withheld and is not a recipient. */
	assert_string_equal(str(l.items[0], "client"), "lab-bot");
	assert_string_equal(str(l.items[0], "org"), "uni-lab");
	assert_true(num(l.items[0], "messages") == 1);
	assert_string_equal(str(l.items[1], "client"), "maint-app");
	assert_true(num(l.items[1], "messages") == 2);
	assert_true(num(l.items[1], "first_ts") == (double)(T0 + 3));
	assert_true(num(l.items[1], "last_ts") == (double)(T0 + 1001));
	free_lines(&l);

	/* A time window, and another policy. */
	assert_int_equal(tf_query_recipients(f->s, "water-telemetry", T0 + 1001, T0 + 1001,
		capture(&l), &n, &err), TF_OK);
	parse_lines(&l);
	assert_int_equal(l.n, 1);
	assert_string_equal(str(l.items[0], "client"), "maint-app");
	free_lines(&l);
	assert_int_equal(tf_query_recipients(f->s, "water", 0, INT64_MAX, capture(&l), &n, &err),
		TF_OK);
	parse_lines(&l);
	assert_int_equal(l.n, 0);
	free_lines(&l);
	tf_trace_read_end(f->s);
}

static void find_by_topic_and_hash(void **state)
{
	struct fixture *f = *state;
	struct lines l;
	struct tf_err err;
	size_t n;

	fill(f);
	begin(f);
	assert_int_equal(tf_query_find(f->s, TOPIC, NULL, 0, capture(&l), &n, &err), TF_OK);
	parse_lines(&l);
	assert_int_equal(l.n, 2);
	assert_string_equal(str(l.items[0], "id"), ID1);
	assert_string_equal(str(l.items[1], "id"), ID2);
	assert_null(cJSON_GetObjectItem(l.items[0], "deliveries"));
	free_lines(&l);
	assert_int_equal(tf_query_find(f->s, TOPIC, SHA2, 0, capture(&l), &n, &err), TF_OK);
	parse_lines(&l);
	assert_int_equal(l.n, 1);
	assert_string_equal(str(l.items[0], "id"), ID2);
	free_lines(&l);
	assert_int_equal(tf_query_find(f->s, TOPIC, NULL, T0 + 1, capture(&l), &n, &err), TF_OK);
	parse_lines(&l);
	assert_int_equal(l.n, 1);
	free_lines(&l);
	assert_int_equal(tf_query_find(f->s, "city/water", NULL, 0, capture(&l), &n, &err), TF_OK);
	parse_lines(&l);
	assert_int_equal(l.n, 0);
	free_lines(&l);
	assert_int_equal(tf_query_find(f->s, TOPIC, "XYZ", 0, stdout, &n, &err), TF_ERR_INVALID);
	tf_trace_read_end(f->s);
}

static void export_gives_every_event_with_its_hash(void **state)
{
	struct fixture *f = *state;
	unsigned char computed[32], prev[32] = { 0 };
	char hex[65];
	struct lines l;
	struct tf_err err;
	size_t n;

	fill(f);
	begin(f);
	assert_int_equal(tf_query_export(f->s, 0, capture(&l), &n, &err), TF_OK);
	parse_lines(&l);
	assert_int_equal(l.n, 6);
	assert_string_equal(str(l.items[0], "prev"), "0000000000000000000000000000000000000000000000000000000000000000");
	assert_string_equal(str(l.items[0], "kind"), "message");
	assert_string_equal(str(l.items[0], "size"), "28");
	assert_string_equal(str(l.items[2], "outcome"), "withheld");
	/* An auditor rebuilds the bytes from the fields and the chain. */
	for (int i = 0; i < l.n; i++) {
		struct step_copy e = event_at(f, (uint64_t)num(l.items[i], "seq"));

		tf_event_chain(NULL, prev, e.bytes, e.len, computed);
		for (int b = 0; b < 32; b++)
			sprintf(hex + 2 * b, "%02x", computed[b]);
		assert_string_equal(str(l.items[i], "hash"), hex);
		memcpy(prev, computed, 32);
	}
	free_lines(&l);
	assert_int_equal(tf_query_export(f->s, T0 + 1000, capture(&l), &n, &err), TF_OK);
	parse_lines(&l);
	assert_int_equal(l.n, 3);
	assert_true(num(l.items[0], "seq") == 4);
	assert_non_null(cJSON_GetObjectItem(l.items[0], "prev"));
	assert_null(cJSON_GetObjectItem(l.items[1], "prev"));
	free_lines(&l);
	tf_trace_read_end(f->s);
}

/* --- verify ---------------------------------------------------------------------- */

static struct tf_verify_result verify(struct fixture *f, const struct tf_keyring *ring)
{
	struct tf_verify_result r;
	struct tf_err err;

	begin(f);
	assert_int_equal(tf_query_verify(f->s, ring, &r, &err), TF_OK);
	tf_trace_read_end(f->s);
	return r;
}

static void verify_passes_on_an_untouched_store(void **state)
{
	struct fixture *f = *state;
	struct tf_verify_result r;

	fill(f);
	checkpoint(f);
	put_key(f);
	r = verify(f, NULL);
	assert_true(r.ok);
	assert_int_equal(r.events, 6);
	assert_int_equal(r.checkpoints, 1);
}

/* Opens the store's LMDB directly, as someone editing it would, and
 * flips a bit of (or removes) the record whose first event is seq. */
static void tamper(struct fixture *f, uint64_t seq, bool remove, size_t offset)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	unsigned char key[8];
	MDB_val k = { 8, key }, v;
	char *copy;

	tf_trace_close(f->s);
	f->s = NULL;
	tf_trace_put_u64(key, seq);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_open(env, f->dir, 0, 0640), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "records", 0, &dbi), 0);
	if (remove) {
		assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
	} else {
		assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
		copy = malloc(v.mv_size);
		memcpy(copy, v.mv_data, v.mv_size);
		copy[offset] ^= 1;
		v.mv_data = copy;
		assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
		free(copy);
	}
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	{
		struct tf_err err;

		assert_int_equal(tf_trace_open(f->dir, false, 0, &f->s, &err), TF_OK);
	}
}

static void a_changed_byte_is_found_at_its_event(void **state)
{
	struct fixture *f = *state;
	struct tf_verify_result r;

	fill(f);
	checkpoint(f);
	put_key(f);
	/* fill's records: a message and its deliveries each, 1..3 and 4..6. */
	tamper(f, 4, false, 32 + 40);     /* a byte inside the second record's events */
	r = verify(f, NULL);
	assert_false(r.ok);
	/* Found at the record that holds it. */
	assert_int_equal(r.first_bad_seq, 4);
	assert_int_equal(r.events, 3);
}

static void a_changed_hash_is_found_at_its_event(void **state)
{
	struct fixture *f = *state;
	struct tf_verify_result r;

	fill(f);
	tamper(f, 4, false, 0);           /* the hash kept with the second record */
	r = verify(f, NULL);
	assert_false(r.ok);
	assert_int_equal(r.first_bad_seq, 4);
}

static void a_removed_event_is_named(void **state)
{
	struct fixture *f = *state;
	struct tf_verify_result r;

	fill(f);
	checkpoint(f);
	put_key(f);
	tamper(f, 1, true, 0);
	r = verify(f, NULL);
	assert_false(r.ok);
	assert_int_equal(r.first_bad_seq, 1);
	assert_string_equal(r.reason, "event missing");
}

static void removing_the_last_events_is_caught_by_the_checkpoint(void **state)
{
	struct fixture *f = *state;
	struct tf_verify_result r;

	fill(f);
	checkpoint(f);
	put_key(f);
	tamper(f, 4, true, 0);
	r = verify(f, NULL);
	assert_false(r.ok);
	assert_int_equal(r.first_bad_seq, 4);
}

static void a_checkpoint_by_another_key_fails(void **state)
{
	struct fixture *f = *state;
	struct tf_keyring *ring = tf_keyring_new();
	struct tf_signer *other;
	struct tf_verify_result r;
	struct tf_err err;
	char path[128];

	fill(f);
	checkpoint(f);
	snprintf(path, sizeof(path), "%s/other.pem", f->dir);
	assert_int_equal(tf_signer_generate(path, &other, &err), TF_OK);
	assert_int_equal(tf_keyring_add_pem(ring, tf_signer_public_pem(other),
		strlen(tf_signer_public_pem(other)), NULL, &err), TF_OK);
	r = verify(f, ring);
	assert_false(r.ok);
	assert_int_equal(r.first_bad_seq, 6);
	assert_non_null(strstr(r.reason, "unknown key"));
	tf_keyring_free(ring);
	tf_signer_free(other);
}

/* --- retention and capacity ---------------------------------------------------------- */

static void pruning_keeps_the_chain_verifiable(void **state)
{
	struct fixture *f = *state;
	struct tf_trace_input later = message(ID3, TOPIC, "c", SHA1,
		"delivered", T0 + 50000, "44");
	struct tf_verify_result r;
	struct tf_err err;
	size_t removed;
	uint64_t first, last;
	struct lines l;

	fill(f);
	checkpoint(f);      /* covers 1..6 */
	append(f, &later, 1);
	checkpoint(f);      /* covers 7 */
	put_key(f);
	/* Events before T0 + 1000: 1..3, one record, removed whole. */
	assert_int_equal(tf_trace_prune(f->s, T0 + 1000, 2, &removed, &err), TF_OK);
	assert_int_equal(removed, 3);
	assert_int_equal(tf_trace_prune(f->s, T0 + 1000, 2, &removed, &err), TF_OK);
	assert_int_equal(removed, 0);
	begin(f);
	tf_trace_bounds(f->s, &first, &last);
	assert_int_equal(first, 4);
	assert_int_equal(last, 7);
	/* Their index entries went with them. */
	assert_null(tf_query_message(f->s, ID1, &err));
	assert_int_equal(tf_query_recipients(f->s, "water-telemetry", 0, INT64_MAX, capture(&l),
		&removed, &err), TF_OK);
	parse_lines(&l);
	assert_int_equal(l.n, 2);
	assert_true(num(l.items[1], "messages") == 1);
	free_lines(&l);
	tf_trace_read_end(f->s);
	r = verify(f, NULL);
	assert_true(r.ok);
	assert_int_equal(r.events, 4);
	/* The writer goes on from where it was. */
	tf_trace_close(f->s);
	assert_int_equal(tf_trace_open(f->dir, true, 0, &f->s, &err), TF_OK);
	assert_int_equal(tf_trace_last_seq(f->s), 7);
}

static void a_store_pruned_to_nothing_still_verifies_and_goes_on(void **state)
{
	struct fixture *f = *state;
	struct tf_trace_input later = message(ID2, TOPIC, "c", SHA2, "delivered", T0 + 90000, "");
	struct tf_verify_result r;
	struct tf_err err;
	size_t removed;

	fill(f);
	checkpoint(f);
	put_key(f);
	assert_int_equal(tf_trace_prune(f->s, T0 + 60000, 100, &removed, &err), TF_OK);
	assert_int_equal(removed, 6);
	r = verify(f, NULL);
	assert_true(r.ok);
	assert_int_equal(r.events, 0);
	assert_int_equal(r.checkpoints, 1);
	/* The chain goes on from the anchor. */
	append(f, &later, 1);
	assert_int_equal(tf_trace_last_seq(f->s), 7);
	checkpoint(f);
	r = verify(f, NULL);
	assert_true(r.ok);
	assert_int_equal(r.events, 1);
}

static void nothing_newer_than_the_last_checkpoint_is_pruned(void **state)
{
	struct fixture *f = *state;
	struct tf_err err;
	size_t removed;

	fill(f);
	assert_int_equal(tf_trace_prune(f->s, T0 + 100000, 100, &removed, &err), TF_OK);
	assert_int_equal(removed, 0);
}

static void a_full_store_refuses_and_stays_readable(void **state)
{
	struct fixture *f = *state;
	static char big[60000];
	struct tf_trace_input in = message(ID1, TOPIC, "c", SHA1, "delivered", T0, "");
	struct tf_verify_result r;
	struct tf_err err;
	int rc = TF_OK, written = 0;

	tf_trace_close(f->s);
	assert_int_equal(tf_trace_open(f->dir, true, 1024 * 1024, &f->s, &err), TF_OK);
	memset(big, 'x', sizeof(big) - 1);
	in.values[8] = big;
	for (int i = 0; i < 100 && rc == TF_OK; i++) {
		/* Each reason of its own: the same one is stored once. */
		snprintf(big, 12, "%010d", i);
		big[10] = 'x';
		rc = tf_trace_append(f->s, &in, 1, &err);
		written += rc == TF_OK;
	}
	assert_int_equal(rc, TF_ERR_FULL);
	assert_non_null(strstr(err.msg, "size limit"));
	assert_true(written > 3);
	assert_int_equal(tf_trace_last_seq(f->s), (uint64_t)written);
	r = verify(f, NULL);
	assert_true(r.ok);
	assert_int_equal(r.events, (uint64_t)written);
}

static void the_map_grows_when_allowed(void **state)
{
	struct fixture *f = *state;
	static char big[200000];
	struct tf_trace_input in = message(ID1, TOPIC, "c", SHA1, "delivered", T0, "");
	struct tf_err err;

	memset(big, 'y', sizeof(big) - 1);
	in.values[8] = big;
	/* 80 MB: more than the first map of 64 MiB. */
	for (int i = 0; i < 400; i++) {
		snprintf(big, 12, "%010d", i);
		big[10] = 'y';
		assert_int_equal(tf_trace_append(f->s, &in, 1, &err), TF_OK);
	}
	assert_int_equal(tf_trace_last_seq(f->s), 400);
}

static void a_reader_needs_an_existing_store(void **state)
{
	struct fixture *f = *state;
	struct tf_trace_store *s;
	struct tf_err err;
	char path[128];

	snprintf(path, sizeof(path), "%s/none", f->dir);
	assert_int_not_equal(tf_trace_open(path, false, 0, &s, &err), TF_OK);
	assert_non_null(strstr(err.msg, path));
}

/* --- records -------------------------------------------------------------------- */

struct record_ends {
	uint64_t steps, ends;
};

static int count_ends(void *ctx, const struct tf_trace_step *step)
{
	struct record_ends *r = ctx;

	assert_non_null(step->ev);
	r->steps++;
	r->ends += step->stored != NULL;
	return 0;
}

static int count_events(void *ctx, const struct tf_event *ev)
{
	(void)ev;
	(*(int *)ctx)++;
	return 0;
}

static void a_fan_out_is_one_record_and_each_delivery_is_found(void **state)
{
	struct fixture *f = *state;
	struct tf_trace_input in[53];
	char clients[50][16];
	struct record_ends ends = { 0 };
	struct tf_err err;
	struct lines l;
	int found = 0;
	size_t n;
	cJSON *o;

	in[0] = message(ID1, TOPIC, "ww-sensor-01", SHA1, "delivered", T0, "42");
	for (int i = 0; i < 50; i++) {
		snprintf(clients[i], sizeof(clients[i]), "meter-app-%02d", i);
		in[1 + i] = delivery(ID1, clients[i], "maint-co", true, T0 + 2);
	}
	/* A delivery under another policy amid the fan-out, and a client's
	 * second session: each index files what it must, once. */
	in[20].values[1] = "water-research@1";
	in[51] = delivery(ID1, clients[7], "maint-co", true, T0 + 2);
	in[51].values[6] = "second-session";
	in[52] = delivery(ID1, clients[8], "maint-co", true, T0 + 2);
	append(f, in, 53);
	begin(f);
	assert_int_equal(tf_trace_walk(f->s, 1, count_ends, &ends), 0);
	assert_int_equal(ends.steps, 53);
	assert_int_equal(ends.ends, 1);
	o = tf_query_message(f->s, ID1, &err);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "deliveries")), 52);
	cJSON_Delete(o);
	assert_int_equal(tf_query_recipients(f->s, "water-telemetry", 0, INT64_MAX, capture(&l),
		&n, &err), TF_OK);
	parse_lines(&l);
	assert_int_equal(l.n, 49);
	free_lines(&l);
	assert_int_equal(tf_query_recipients(f->s, "water-research", 0, INT64_MAX, capture(&l),
		&n, &err), TF_OK);
	parse_lines(&l);
	assert_int_equal(l.n, 1);
	assert_string_equal(str(l.items[0], "client"), clients[19]);
	free_lines(&l);
	/* The client of two sessions: its record once, its two deliveries in
	 * it (visits see each event of a record under the key). */
	assert_int_equal(tf_trace_scan_index(f->s, TF_INDEX_BY_RECIPIENT, clients[7],
		strlen(clients[7]), 0, INT64_MAX, count_events, &found), 0);
	assert_int_equal(found, 2);
	found = 0;
	assert_int_equal(tf_trace_scan_index(f->s, TF_INDEX_BY_POLICY, "water-telemetry",
		strlen("water-telemetry"), 0, INT64_MAX, count_events, &found), 0);
	assert_int_equal(found, 52);
	tf_trace_read_end(f->s);
	assert_true(verify(f, NULL).ok);
}

/* The receive time of a message the broker forgot: the latest on its
 * topic with its payload that went on (a refused one did not), filed by
 * content, found newest first. */
static void received_at_is_the_latest_passed_on_message(void **state)
{
	struct fixture *f = *state;
	static const char payload[] = "{\"flow\":1}";
	char sha[TF_SHA256_HEX + 1], label[64] = "";
	struct tf_trace_input in[4];

	tf_sha256_hex(payload, sizeof(payload) - 1, sha);
	in[0] = message(ID1, TOPIC, "c", sha, "delivered", T0, "");
	in[1] = message(ID2, TOPIC, "c", sha, "delivered", T0 + 1000, "");
	in[2] = message(ID3, "other/topic", "c", sha, "delivered", T0 + 2000, "");
	in[3] = message("019ac008e6035f1e2d3c4b5a69780abc", TOPIC, "c", sha, "denied", T0 + 3000, "");
	for (int i = 0; i < 4; i++)
		in[i].file_sha256 = sha;
	append(f, in, 4);
	begin(f);
	assert_true(tf_query_received_at(f->s, TOPIC, payload, sizeof(payload) - 1, label,
		sizeof(label)) == T0 + 1000);
	assert_string_equal(label, "water-telemetry@3");
	assert_true(tf_query_received_at(f->s, "never/seen", payload, sizeof(payload) - 1, NULL, 0)
		== INT64_MIN);
	tf_trace_read_end(f->s);
}

/* A message queued for an offline session is filed by content when it
 * is queued, whether its record is still being built or stored: its
 * delivery when the session comes back finds it. */
static void a_queued_delivery_files_its_message_by_content(void **state)
{
	struct fixture *f = *state;
	struct tf_trace_input stored[] = {
		message(ID1, TOPIC, "c", SHA1, "delivered", T0, ""),
		delivery(ID1, "maint-app", "maint-co", true, T0 + 1),
	};
	struct tf_trace_input queued = delivery(ID1, "offline-app", "maint-co", true, T0 + 2);
	struct tf_trace_input joining[] = {
		message(ID2, TOPIC, "c", SHA2, "delivered", T0 + 3, ""),
		delivery(ID2, "offline-app", "maint-co", true, T0 + 3),
	};
	struct tf_trace_input back[] = {
		delivery_by_content(TOPIC, SHA1, T0 + 9),
		delivery_by_content(TOPIC, SHA2, T0 + 9),
	};
	unsigned char sha[32];
	int found = 0;

	queued.values[4] = joining[1].values[4] = "queued";
	queued.file_sha256 = SHA1;
	joining[1].file_sha256 = SHA2;
	append(f, stored, 2);
	append(f, &queued, 1);
	append(f, joining, 2);
	/* Queued for a second session: already filed. */
	queued.values[2] = "offline-app-2";
	append(f, &queued, 1);
	append(f, back, 2);
	assert_int_equal(deliveries_of(f, ID1), 2);
	assert_int_equal(deliveries_of(f, ID2), 1);
	/* Filed is the record of the message's event, once (a visit sees
	 * the events matching the key), not that of a queued delivery. */
	assert_true(tf_trace_sha_bytes(SHA1, sha));
	begin(f);
	assert_int_equal(tf_trace_scan_index(f->s, TF_INDEX_BY_SHA, sha, 32, 0, INT64_MAX,
		count_events, &found), 0);
	tf_trace_read_end(f->s);
	assert_int_equal(found, 1);
	assert_true(verify(f, NULL).ok);
}

/* Writes a store as trustflow 0.1 did (format 1: "events" seq -> chain
 * hash || the event's bytes), with a checkpoint over it. */
static void write_format_1(struct fixture *f, const char *dir, const struct tf_trace_input *in,
		size_t n, unsigned char last_hash[32])
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi events, meta, checkpoints, held;
	unsigned char prev[32] = { 0 }, key[8];
	struct tf_checkpoint cp;
	struct tf_err err;
	char *json;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mkdir(dir, 0750), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0640), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "events", MDB_CREATE, &events), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), 0);
	assert_int_equal(mdb_dbi_open(txn, "checkpoints", MDB_CREATE, &checkpoints), 0);
	assert_int_equal(mdb_dbi_open(txn, "held", MDB_CREATE, &held), 0);
	for (size_t i = 0; i < n; i++) {
		struct tf_event ev = { in[i].kind, i + 1, in[i].ts_ms, { NULL } };
		unsigned char value[32 + 2048];
		size_t len, fields;
		MDB_val k = { 8, key }, v;

		tf_event_fields(ev.kind, &fields);
		memcpy(ev.values, in[i].values, fields * sizeof(ev.values[0]));
		len = tf_event_encode(&ev, (char *)value + 32, 2048);
		assert_true(len < 2048);
		tf_event_chain(NULL, prev, (char *)value + 32, len, value);
		memcpy(prev, value, 32);
		tf_trace_put_u64(key, i + 1);
		v.mv_size = 32 + len;
		v.mv_data = value;
		assert_int_equal(mdb_put(txn, events, &k, &v, 0), 0);
	}
	memcpy(last_hash, prev, 32);
	{
		char name[] = "format", value[] = "1";
		MDB_val k = { 6, name }, v = { 1, value };

		assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
	}
	assert_int_equal(tf_checkpoint_sign(&cp, f->signer, "city-broker-1", n, prev, T0 + 5000,
		&err), TF_OK);
	json = tf_checkpoint_to_json(&cp);
	{
		MDB_val k = { 8, key }, v = { strlen(json), json };

		tf_trace_put_u64(key, n);
		assert_int_equal(mdb_put(txn, checkpoints, &k, &v, 0), 0);
	}
	free(json);
	{
		char name[40], *pem = strdup(tf_signer_public_pem(f->signer));
		MDB_val k, v = { strlen(pem), pem };

		snprintf(name, sizeof(name), "key:%s", tf_signer_kid(f->signer));
		k.mv_size = strlen(name);
		k.mv_data = name;
		assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
		free(pem);
	}
	{
		unsigned char hkey[64];
		char record[] = "held";
		MDB_val k, v = { 4, record };

		memcpy(hkey, "water-telemetry/ww-sensor-01", 29);
		tf_trace_put_u64(hkey + 29, 1);
		k.mv_size = 37;
		k.mv_data = hkey;
		assert_int_equal(mdb_put(txn, held, &k, &v, 0), 0);
	}
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static int count_held(void *ctx, const char *flow, uint64_t seq, const void *record, size_t len)
{
	(void)flow;
	(void)record;
	assert_int_equal(seq, 1);
	assert_int_equal(len, 4);
	(*(int *)ctx)++;
	return 0;
}

static void a_store_of_0_1_is_refused_and_migrated_exactly(void **state)
{
	struct fixture *f = *state;
	/* 0.1's events: no "of", no "client_id", a release without "reason". */
	struct tf_trace_input in[] = {
		message(ID1, TOPIC, "ww-sensor-01", SHA1, "quarantined", T0, "42"),
		delivery(ID1, "maint-app", "maint-co", true, T0 + 3),
		{ .kind = TF_EVENT_RELEASE, .ts_ms = T0 + 9, .values = { ID1, "flow", "admin" } },
		message(ID2, TOPIC, "ww-sensor-01", SHA2, "delivered", T0 + 10, "43"),
	};
	char old[96], fresh[96];
	unsigned char last[32];
	struct tf_trace_store *s;
	struct tf_verify_result r;
	struct tf_err err;
	uint64_t events;
	struct lines l;
	size_t n;
	int held = 0;

	snprintf(old, sizeof(old), "%s/old", f->dir);
	snprintf(fresh, sizeof(fresh), "%s/new", f->dir);
	write_format_1(f, old, in, 4, last);
	/* Refused, naming both formats and the command. */
	assert_int_equal(tf_trace_open(old, true, 0, &s, &err), TF_ERR_INVALID);
	assert_non_null(strstr(err.msg, "format 1"));
	assert_non_null(strstr(err.msg, "trustflow 0.1"));
	assert_non_null(strstr(err.msg, "format 2"));
	assert_non_null(strstr(err.msg, "migrate"));
	assert_int_equal(tf_trace_open(old, false, 0, &s, &err), TF_ERR_INVALID);
	/* Migrated: same events, same hashes, the old checkpoint still holds. */
	assert_int_equal(tf_trace_migrate(old, fresh, &events, &err), TF_OK);
	assert_int_equal(events, 4);
	assert_int_equal(tf_trace_open(fresh, false, 0, &s, &err), TF_OK);
	assert_int_equal(tf_trace_read_begin(s, &err), TF_OK);
	assert_int_equal(tf_query_verify(s, NULL, &r, &err), TF_OK);
	assert_true(r.ok);
	assert_int_equal(r.events, 4);
	assert_int_equal(r.checkpoints, 1);
	assert_int_equal(tf_query_export(s, 0, capture(&l), &n, &err), TF_OK);
	parse_lines(&l);
	assert_int_equal(l.n, 4);
	{
		char hex[65];

		for (int b = 0; b < 32; b++)
			sprintf(hex + 2 * b, "%02x", last[b]);
		assert_string_equal(str(l.items[3], "hash"), hex);
	}
	assert_null(cJSON_GetObjectItem(l.items[1], "client_id"));
	assert_null(cJSON_GetObjectItem(l.items[2], "reason"));
	free_lines(&l);
	assert_int_equal(tf_trace_scan_held(s, NULL, count_held, &held), 0);
	assert_int_equal(held, 1);
	tf_trace_read_end(s);
	tf_trace_close(s);
	/* Not twice into the same place, and only from format 1. */
	assert_int_equal(tf_trace_migrate(old, fresh, &events, &err), TF_ERR_INVALID);
	assert_int_equal(tf_trace_migrate(fresh, old, &events, &err), TF_ERR_INVALID);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(appending_numbers_and_chains_events),
		T(state_survives_reopening),
		T(event_times_never_go_back),
		T(a_delivery_of_an_unknown_message_is_matched_by_topic_and_hash),
		T(message_object_lists_deliveries_and_withholdings),
		T(a_forward_to_a_peer_is_listed_as_forwarded),
		T(a_release_changes_the_status),
		T(recipients_counts_deliveries_made_per_client),
		T(find_by_topic_and_hash),
		T(export_gives_every_event_with_its_hash),
		T(verify_passes_on_an_untouched_store),
		T(a_changed_byte_is_found_at_its_event),
		T(a_changed_hash_is_found_at_its_event),
		T(a_removed_event_is_named),
		T(removing_the_last_events_is_caught_by_the_checkpoint),
		T(a_checkpoint_by_another_key_fails),
		T(pruning_keeps_the_chain_verifiable),
		T(a_store_pruned_to_nothing_still_verifies_and_goes_on),
		T(nothing_newer_than_the_last_checkpoint_is_pruned),
		T(a_full_store_refuses_and_stays_readable),
		T(the_map_grows_when_allowed),
		T(a_reader_needs_an_existing_store),
		T(a_fan_out_is_one_record_and_each_delivery_is_found),
		T(a_queued_delivery_files_its_message_by_content),
		T(received_at_is_the_latest_passed_on_message),
		T(a_store_of_0_1_is_refused_and_migrated_exactly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
