/* Unit tests for broker/stamp/chain.c: chains of stamps (federation-v1,
 * sections 4 and 5) signed with real keys, read off a message as a
 * subscriber receives it (the tf-hop values and the newest stamp, in full
 * and in compact form) and checked; then every way a relaying broker or
 * anyone on the path could bend one, each refused with its reason and the
 * stamp at fault. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/stamp/chain.h"
#include "broker/stamp/forms.h"
#include "broker/stamp/provenance.h"

#define PAYLOAD "{\"flow\":12.5,\"pressure\":3.1}"
#define ORIGIN_TOPIC "city/water/d7/telemetry"
/* Where the relays deliver it: a stamp signs the topic it delivers on. */
#define RELAY_TOPIC "partners/city/water/d7/telemetry"
#define POLICY "water-telemetry@3"
#define RECORD_MAX 1024

enum { KEY_A, KEY_B, KEY_C, KEY_STRANGER, N_KEYS };

struct fixture {
	char dir[64];
	struct tf_signer *keys[N_KEYS];
	struct tf_keyring *ring;   /* A's, B's and C's public keys, not the stranger's */
	struct tf_keyring *bound;  /* the same, each bound to its broker, broker-a ... broker-c */
};

/* A chain as the brokers on its path made it, oldest first. What the next
 * stamp takes from the last one (topic, policy, id) can be changed before
 * it is added, to make the stamps disagree. */
struct built {
	unsigned n;
	struct tf_stamp_buf bufs[TF_CHAIN_MAX + 1];
	struct tf_stamp stamps[TF_CHAIN_MAX + 1];
	char records[TF_CHAIN_MAX + 1][RECORD_MAX];        /* each stamp's hop record */
	char links[TF_CHAIN_MAX + 1][TF_PREV_B64_LEN + 1]; /* the prev after each */
	const char *topic, *policy, *id;   /* for the next stamp; id NULL: the origin's */
	char brokers[TF_CHAIN_MAX + 1][32];
};

/* A message as a subscriber receives it: the values it offered the reader
 * (all freed together), the reader, and the chain read off it. */
struct message {
	char *values[32];
	unsigned n;
	struct tf_stamp_reader reader;
	struct tf_chain chain;
};

static int setup(void **state)
{
	static const char *const names[N_KEYS] = { "a", "b", "c", "stranger" };
	static const char *const brokers[N_KEYS] = { "broker-a", "broker-b", "broker-c", NULL };
	struct fixture *f = calloc(1, sizeof(*f));
	struct tf_err err;
	const char *pem;
	char path[128];

	if (f == NULL)
		return -1;
	strcpy(f->dir, "/tmp/tf-chain-XXXXXX");
	if (mkdtemp(f->dir) == NULL || (f->ring = tf_keyring_new()) == NULL
			|| (f->bound = tf_keyring_new()) == NULL)
		return -1;
	for (int i = 0; i < N_KEYS; i++) {
		snprintf(path, sizeof(path), "%s/%s.pem", f->dir, names[i]);
		if (tf_signer_generate(path, &f->keys[i], &err) != TF_OK)
			return -1;
		pem = tf_signer_public_pem(f->keys[i]);
		if (i != KEY_STRANGER
				&& (tf_keyring_add_pem(f->ring, pem, strlen(pem), NULL, &err) != TF_OK
				|| tf_keyring_add_pem(f->bound, pem, strlen(pem), NULL, &err) != TF_OK
				|| tf_keyring_bind(f->bound, tf_signer_kid(f->keys[i]), brokers[i],
					&err) != TF_OK))
			return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	for (int i = 0; i < N_KEYS; i++)
		tf_signer_free(f->keys[i]);
	tf_keyring_free(f->ring);
	tf_keyring_free(f->bound);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void start(struct built *b)
{
	memset(b, 0, sizeof(*b));
	b->topic = ORIGIN_TOPIC;
	b->policy = POLICY;
}

/* The hop record of stamp i and the link to it, again (after the test
 * changed the stamp). */
static void record_of(struct built *b, unsigned i)
{
	assert_true(tf_stamp_record_encode(&b->stamps[i], b->records[i], RECORD_MAX) < RECORD_MAX);
	tf_chain_link(b->records[i], strlen(b->records[i]), b->links[i]);
}

/* Broker broker signs the next stamp with key, linked by prev (NULL: a
 * format-1 stamp). The origin's names its publisher; a relay's, the peer
 * it came from (federation-v1, section 4). */
static void add(struct built *b, struct tf_signer *key, const char *broker, const char *prev)
{
	unsigned i = b->n;
	struct tf_stamp_request req = {
		.broker = b->brokers[i], .policy = b->policy, .topic = b->topic,
		.payload = PAYLOAD, .payloadlen = strlen(PAYLOAD),
		.ts_ms = 1764158400000LL + i, .seq = 42 + i, .prev = prev,
		.id = b->id != NULL ? b->id : i > 0 ? b->stamps[0].id : NULL,
		.org = i == 0 ? "city-waterworks" : "peer-org",
		.client = i == 0 ? "ww-sensor-01" : b->stamps[i - 1].broker,
	};
	struct tf_err err;

	assert_true(i <= TF_CHAIN_MAX);
	snprintf(b->brokers[i], sizeof(b->brokers[i]), "%s", broker);
	assert_int_equal(tf_signer_stamp(key, &req, &b->bufs[i], &b->stamps[i], &err), TF_OK);
	b->n++;
	record_of(b, i);
}

/* The next stamp, linked as a relay links it: to the last record. */
static void relay(struct built *b, struct tf_signer *key, const char *broker)
{
	b->topic = RELAY_TOPIC;
	add(b, key, broker, b->links[b->n - 1]);
}

/* A -> B -> C, the origin on A. */
static void three(struct fixture *f, struct built *b)
{
	start(b);
	add(b, f->keys[KEY_A], "broker-a", NULL);
	relay(b, f->keys[KEY_B], "broker-b");
	relay(b, f->keys[KEY_C], "broker-c");
}

/* Offers one user property, as the subscriber's client library hands it
 * over: a copy the message owns. */
static void offer(struct message *m, const char *name, const char *value)
{
	char *copy = strdup(value);

	assert_non_null(copy);
	assert_true(m->n < sizeof(m->values) / sizeof(m->values[0]));
	m->values[m->n++] = copy;
	(void)tf_stamp_reader_add(&m->reader, name, copy);
}

static void offer_newest(struct message *m, const struct tf_stamp *st, enum tf_stamp_form form)
{
	const char *const full[TF_STAMP_NAMES_V2] = {
		st->v, st->id, st->broker, st->kid, st->ts, st->org, st->client, st->policy,
		st->sha256, st->seq, st->sig, st->topic, st->prev,
	};
	char value[RECORD_MAX];

	if (form == TF_STAMP_FORM_COMPACT) {
		assert_true(tf_stamp_compact_encode(st, value, sizeof(value)) < sizeof(value));
		offer(m, TF_STAMP_COMPACT_NAME, value);
		return;
	}
	/* Format 1 travels without tf-topic and tf-prev. */
	for (int i = 0; i < (st->prev != NULL ? TF_STAMP_NAMES_V2 : TF_STAMP_NAMES_V1); i++)
		offer(m, tf_stamp_names[i], full[i]);
}

/* The message that carries b's stamps listed in which (indices into b,
 * oldest first, -1 ending the list; the last one is the newest), as the
 * last broker delivers it. */
static void deliver_some(struct message *m, const struct built *b, const int *which,
		enum tf_stamp_form form)
{
	unsigned count = 0;

	memset(m, 0, sizeof(*m));
	while (which[count] >= 0)
		count++;
	/* Other properties of the publisher's come through beside them. */
	offer(m, "note", "kept");
	for (unsigned i = 0; i + 1 < count; i++)
		offer(m, TF_STAMP_HOP_NAME, b->records[which[i]]);
	offer_newest(m, &b->stamps[which[count - 1]], form);
}

static void deliver(struct message *m, const struct built *b, enum tf_stamp_form form)
{
	int which[TF_CHAIN_MAX + 2];

	for (unsigned i = 0; i < b->n; i++)
		which[i] = (int)i;
	which[b->n] = -1;
	deliver_some(m, b, which, form);
}

static void drop(struct message *m)
{
	for (unsigned i = 0; i < m->n; i++)
		free(m->values[i]);
}

/* Reads the chain off m, which arrived on topic, and checks it under
 * ring: the first failure, its stamp in *at (UINT32_MAX when the chain
 * could not be read). */
static enum tf_stamp_check receive_with(const struct tf_keyring *ring, struct message *m,
		const char *topic, uint32_t *at)
{
	enum tf_stamp_check rc = tf_chain_read(&m->reader, topic, PAYLOAD, strlen(PAYLOAD),
		&m->chain);

	*at = UINT32_MAX;
	if (rc == TF_STAMP_VALID)
		rc = tf_chain_check(&m->chain, ring, topic, PAYLOAD, strlen(PAYLOAD), at);
	return rc;
}

/* The same under the fixture's keys, trusted for any broker. */
static enum tf_stamp_check receive(struct fixture *f, struct message *m, const char *topic,
		uint32_t *at)
{
	return receive_with(f->ring, m, topic, at);
}

/* Delivers b whole in either form on topic, checked under ring: both give
 * verdict at stamp at. */
static void expect_with(const struct tf_keyring *ring, const struct built *b,
		const char *topic, enum tf_stamp_check verdict, uint32_t at)
{
	static const enum tf_stamp_form forms[] = { TF_STAMP_FORM_FULL, TF_STAMP_FORM_COMPACT };
	struct message m;
	uint32_t got_at;

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		deliver(&m, b, forms[i]);
		assert_int_equal(receive_with(ring, &m, topic, &got_at), verdict);
		assert_int_equal(got_at, at);
		drop(&m);
	}
}

static void expect(struct fixture *f, const struct built *b, const char *topic,
		enum tf_stamp_check verdict, uint32_t at)
{
	expect_with(f->ring, b, topic, verdict, at);
}

static void a_chain_of_three_is_valid_in_both_forms(void **state)
{
	static const enum tf_stamp_form forms[] = { TF_STAMP_FORM_FULL, TF_STAMP_FORM_COMPACT };
	static const char *const brokers[] = { "broker-a", "broker-b", "broker-c" };
	struct fixture *f = *state;
	struct built b;
	struct message m;
	uint32_t at;

	three(f, &b);
	assert_null(b.stamps[0].prev);
	assert_string_equal(b.stamps[1].prev, b.links[0]);
	for (size_t k = 0; k < sizeof(forms) / sizeof(forms[0]); k++) {
		deliver(&m, &b, forms[k]);
		assert_int_equal(receive(f, &m, RELAY_TOPIC, &at), TF_STAMP_VALID);
		assert_int_equal(m.chain.n, 3);
		/* The path: who published it, then each broker in order. */
		assert_string_equal(m.chain.stamps[0].org, "city-waterworks");
		assert_string_equal(m.chain.stamps[0].client, "ww-sensor-01");
		for (unsigned i = 0; i < 3; i++) {
			assert_string_equal(m.chain.stamps[i].broker, brokers[i]);
			assert_string_equal(m.chain.stamps[i].id, b.stamps[0].id);
			assert_string_equal(m.chain.stamps[i].sig, b.stamps[i].sig);
		}
		/* Each record signed its own topic: the origin's where it was
		 * published. */
		assert_string_equal(m.chain.stamps[0].topic, ORIGIN_TOPIC);
		assert_string_equal(m.chain.stamps[2].topic, RELAY_TOPIC);
		assert_string_equal(m.chain.links[0], b.stamps[1].prev);
		assert_string_equal(m.chain.links[1], b.stamps[2].prev);
		drop(&m);
	}
	/* Delivered on another topic than C signed, in either form. */
	expect(f, &b, ORIGIN_TOPIC, TF_STAMP_TOPIC_MISMATCH, 2);
	assert_string_equal(tf_stamp_check_reason(TF_STAMP_TOPIC_MISMATCH),
		"stamped for another topic");
}

static void a_single_format_1_stamp_is_a_chain_of_one(void **state)
{
	struct fixture *f = *state;
	struct built b;

	start(&b);
	add(&b, f->keys[KEY_A], "broker-a", NULL);
	expect(f, &b, ORIGIN_TOPIC, TF_STAMP_VALID, 0);
	/* Its topic is the one it arrives on: any other breaks the signature. */
	expect(f, &b, RELAY_TOPIC, TF_STAMP_BAD_SIGNATURE, 0);
}

/* The longest chain there may be: the origin and seven relays. */
static void eight_stamps_are_the_most(void **state)
{
	struct fixture *f = *state;
	struct built b;
	struct message m;
	char broker[32];
	uint32_t at;

	start(&b);
	add(&b, f->keys[KEY_A], "broker-0", NULL);
	for (int i = 1; i < TF_CHAIN_MAX; i++) {
		snprintf(broker, sizeof(broker), "broker-%d", i);
		relay(&b, f->keys[i % 3], broker);
	}
	expect(f, &b, RELAY_TOPIC, TF_STAMP_VALID, 0);

	/* One more tf-hop value than a chain may hold, whatever follows. */
	snprintf(broker, sizeof(broker), "broker-%d", TF_CHAIN_MAX);
	relay(&b, f->keys[KEY_C], broker);
	deliver(&m, &b, TF_STAMP_FORM_COMPACT);
	assert_int_equal(m.reader.n_hops, TF_CHAIN_MAX - 1);
	assert_true(m.reader.too_many_hops);
	assert_int_equal(receive(f, &m, RELAY_TOPIC, &at), TF_STAMP_CHAIN_TOO_LONG);
	assert_int_equal(m.chain.n, 0);
	drop(&m);
	assert_string_equal(tf_stamp_check_reason(TF_STAMP_CHAIN_TOO_LONG), "chain too long");
}

/* Changing a hop record changes its link: the stamp after it no longer
 * points at it, whether a field or the signature changed. */
static void an_altered_hop_record_breaks_the_link_after_it(void **state)
{
	struct fixture *f = *state;
	struct built b;

	three(f, &b);
	b.stamps[0].org = "maint-co";
	assert_true(tf_stamp_record_encode(&b.stamps[0], b.records[0], RECORD_MAX) < RECORD_MAX);
	expect(f, &b, RELAY_TOPIC, TF_STAMP_BROKEN_CHAIN, 1);

	three(f, &b);
	b.stamps[1].sig = b.stamps[2].sig;
	assert_true(tf_stamp_record_encode(&b.stamps[1], b.records[1], RECORD_MAX) < RECORD_MAX);
	expect(f, &b, RELAY_TOPIC, TF_STAMP_BROKEN_CHAIN, 2);

	/* A byte of the record as carried: the first of the origin's
	 * signature. */
	three(f, &b);
	b.records[0][strlen(b.records[0]) - TF_SIG_B64_LEN] ^= 1;
	expect(f, &b, RELAY_TOPIC, TF_STAMP_BROKEN_CHAIN, 1);
}

/* A later broker that rewrites an earlier record and links its own stamp
 * to the rewritten one: the links hold, the rewritten record's signature
 * does not. */
static void a_hop_record_rewritten_by_a_later_broker_fails_its_signature(void **state)
{
	struct fixture *f = *state;
	struct built b;

	start(&b);
	add(&b, f->keys[KEY_A], "broker-a", NULL);
	relay(&b, f->keys[KEY_B], "broker-b");
	b.stamps[1].org = "city-waterworks";
	record_of(&b, 1);
	relay(&b, f->keys[KEY_C], "broker-c");
	expect(f, &b, RELAY_TOPIC, TF_STAMP_BAD_SIGNATURE, 1);

	/* The origin's, its client changed. */
	start(&b);
	add(&b, f->keys[KEY_A], "broker-a", NULL);
	b.stamps[0].client = "ww-operator";
	record_of(&b, 0);
	relay(&b, f->keys[KEY_B], "broker-b");
	relay(&b, f->keys[KEY_C], "broker-c");
	expect(f, &b, RELAY_TOPIC, TF_STAMP_BAD_SIGNATURE, 0);
}

static void a_prev_that_does_not_link_breaks_the_chain(void **state)
{
	struct fixture *f = *state;
	struct built b;

	/* C links to A's record, past B's. */
	start(&b);
	add(&b, f->keys[KEY_A], "broker-a", NULL);
	relay(&b, f->keys[KEY_B], "broker-b");
	add(&b, f->keys[KEY_C], "broker-c", b.links[0]);
	expect(f, &b, RELAY_TOPIC, TF_STAMP_BROKEN_CHAIN, 2);

	/* A well-formed link to nothing on the message. */
	start(&b);
	add(&b, f->keys[KEY_A], "broker-a", NULL);
	b.topic = RELAY_TOPIC;
	add(&b, f->keys[KEY_B], "broker-b", "AAAAAAAAAAAAAAAAAAAAAA==");
	relay(&b, f->keys[KEY_C], "broker-c");
	expect(f, &b, RELAY_TOPIC, TF_STAMP_BROKEN_CHAIN, 1);
	assert_string_equal(tf_stamp_check_reason(TF_STAMP_BROKEN_CHAIN), "broken chain");
}

static void a_record_dropped_from_the_middle_breaks_the_chain(void **state)
{
	static const int without_b[] = { 0, 2, -1 };
	static const int without_a[] = { 1, 2, -1 };
	struct fixture *f = *state;
	struct built b;
	struct message m;
	uint32_t at;

	three(f, &b);
	deliver_some(&m, &b, without_b, TF_STAMP_FORM_FULL);
	assert_int_equal(receive(f, &m, RELAY_TOPIC, &at), TF_STAMP_BROKEN_CHAIN);
	assert_int_equal(at, 1);
	drop(&m);
	/* Without the origin, B's stamp stands first: it is no origin's. */
	deliver_some(&m, &b, without_a, TF_STAMP_FORM_COMPACT);
	assert_int_equal(receive(f, &m, RELAY_TOPIC, &at), TF_STAMP_MALFORMED);
	assert_int_equal(at, 0);
	drop(&m);
}

static void a_broker_twice_is_a_loop(void **state)
{
	struct fixture *f = *state;
	struct built b;

	start(&b);
	add(&b, f->keys[KEY_A], "broker-a", NULL);
	relay(&b, f->keys[KEY_B], "broker-b");
	relay(&b, f->keys[KEY_A], "broker-a");
	expect(f, &b, RELAY_TOPIC, TF_STAMP_LOOP, 2);

	/* Back to the broker it just came from. */
	start(&b);
	add(&b, f->keys[KEY_A], "broker-a", NULL);
	relay(&b, f->keys[KEY_B], "broker-b");
	relay(&b, f->keys[KEY_B], "broker-b");
	expect(f, &b, RELAY_TOPIC, TF_STAMP_LOOP, 2);
	assert_string_equal(tf_stamp_check_reason(TF_STAMP_LOOP), "a broker twice in the chain");
}

static void a_key_not_in_the_ring_is_unknown(void **state)
{
	struct fixture *f = *state;
	struct built b;

	start(&b);
	add(&b, f->keys[KEY_A], "broker-a", NULL);
	relay(&b, f->keys[KEY_B], "broker-b");
	relay(&b, f->keys[KEY_STRANGER], "broker-c");
	expect(f, &b, RELAY_TOPIC, TF_STAMP_UNKNOWN_KEY, 2);

	/* The origin's. */
	start(&b);
	add(&b, f->keys[KEY_STRANGER], "broker-a", NULL);
	relay(&b, f->keys[KEY_B], "broker-b");
	relay(&b, f->keys[KEY_C], "broker-c");
	expect(f, &b, RELAY_TOPIC, TF_STAMP_UNKNOWN_KEY, 0);
}

/* With each key bound to its broker, a stamp verifies only with the key
 * of the broker it names (federation-v1, section 5): the path A -> B -> C
 * made up by A alone, signing all three stamps, fails at the newest. */
static void a_path_signed_with_one_brokers_key_fails_when_keys_are_bound(void **state)
{
	struct fixture *f = *state;
	struct built b;

	/* Each broker's own key: valid either way. */
	three(f, &b);
	expect_with(f->bound, &b, RELAY_TOPIC, TF_STAMP_VALID, 0);
	expect_with(f->ring, &b, RELAY_TOPIC, TF_STAMP_VALID, 0);

	start(&b);
	add(&b, f->keys[KEY_A], "broker-a", NULL);
	relay(&b, f->keys[KEY_A], "broker-b");
	relay(&b, f->keys[KEY_A], "broker-c");
	expect_with(f->bound, &b, RELAY_TOPIC, TF_STAMP_WRONG_BROKER, 2);
	/* The weakness of keys trusted for any broker: A's key vouches for
	 * whatever broker ids A writes, and the invented path holds. */
	expect(f, &b, RELAY_TOPIC, TF_STAMP_VALID, 0);

	/* Only B's stamp under A's key: found at B's. */
	start(&b);
	add(&b, f->keys[KEY_A], "broker-a", NULL);
	relay(&b, f->keys[KEY_A], "broker-b");
	relay(&b, f->keys[KEY_C], "broker-c");
	expect_with(f->bound, &b, RELAY_TOPIC, TF_STAMP_WRONG_BROKER, 1);

	/* The origin's under C's key, the relays' their own. */
	start(&b);
	add(&b, f->keys[KEY_C], "broker-a", NULL);
	relay(&b, f->keys[KEY_B], "broker-b");
	relay(&b, f->keys[KEY_C], "broker-c");
	expect_with(f->bound, &b, RELAY_TOPIC, TF_STAMP_WRONG_BROKER, 0);

	/* A key bound to no broker of the chain, and one not held at all. */
	start(&b);
	add(&b, f->keys[KEY_A], "broker-a", NULL);
	relay(&b, f->keys[KEY_B], "broker-b");
	relay(&b, f->keys[KEY_B], "broker-d");
	expect_with(f->bound, &b, RELAY_TOPIC, TF_STAMP_WRONG_BROKER, 2);
	start(&b);
	add(&b, f->keys[KEY_A], "broker-a", NULL);
	relay(&b, f->keys[KEY_B], "broker-b");
	relay(&b, f->keys[KEY_STRANGER], "broker-c");
	expect_with(f->bound, &b, RELAY_TOPIC, TF_STAMP_UNKNOWN_KEY, 2);
}

/* Bound and unbound keys in one ring: an unbound one is trusted for any
 * broker, a bound one for its own. */
static void bound_and_unbound_keys_together(void **state)
{
	struct fixture *f = *state;
	struct tf_keyring *mixed = tf_keyring_new();
	struct tf_err err;
	struct built b;
	const char *pem;

	assert_non_null(mixed);
	for (int i = KEY_A; i <= KEY_C; i++) {
		pem = tf_signer_public_pem(f->keys[i]);
		assert_int_equal(tf_keyring_add_pem(mixed, pem, strlen(pem), NULL, &err), TF_OK);
	}
	assert_int_equal(tf_keyring_bind(mixed, tf_signer_kid(f->keys[KEY_A]), "broker-a", &err),
		TF_OK);

	/* A's key for broker-b: refused. B's unbound key for broker-c: taken. */
	start(&b);
	add(&b, f->keys[KEY_A], "broker-a", NULL);
	relay(&b, f->keys[KEY_B], "broker-b");
	relay(&b, f->keys[KEY_B], "broker-c");
	expect_with(mixed, &b, RELAY_TOPIC, TF_STAMP_VALID, 0);
	start(&b);
	add(&b, f->keys[KEY_A], "broker-a", NULL);
	relay(&b, f->keys[KEY_A], "broker-b");
	relay(&b, f->keys[KEY_C], "broker-c");
	expect_with(mixed, &b, RELAY_TOPIC, TF_STAMP_WRONG_BROKER, 1);

	/* A key added again stays bound. */
	pem = tf_signer_public_pem(f->keys[KEY_A]);
	assert_int_equal(tf_keyring_add_pem(mixed, pem, strlen(pem), NULL, &err), TF_OK);
	expect_with(mixed, &b, RELAY_TOPIC, TF_STAMP_WRONG_BROKER, 1);
	tf_keyring_free(mixed);
}

static void each_format_in_its_place(void **state)
{
	struct fixture *f = *state;
	struct built b;

	/* A format-1 stamp after the origin: B's, signed without a prev. */
	start(&b);
	add(&b, f->keys[KEY_A], "broker-a", NULL);
	b.topic = RELAY_TOPIC;
	add(&b, f->keys[KEY_B], "broker-b", NULL);
	relay(&b, f->keys[KEY_C], "broker-c");
	expect(f, &b, RELAY_TOPIC, TF_STAMP_MALFORMED, 1);

	/* The same as the newest stamp. */
	start(&b);
	add(&b, f->keys[KEY_A], "broker-a", NULL);
	add(&b, f->keys[KEY_B], "broker-b", NULL);
	expect(f, &b, ORIGIN_TOPIC, TF_STAMP_MALFORMED, 1);

	/* A format-2 stamp as the origin's, alone or with relays after it. */
	start(&b);
	add(&b, f->keys[KEY_A], "broker-a", "AAAAAAAAAAAAAAAAAAAAAA==");
	expect(f, &b, ORIGIN_TOPIC, TF_STAMP_MALFORMED, 0);
	relay(&b, f->keys[KEY_B], "broker-b");
	expect(f, &b, RELAY_TOPIC, TF_STAMP_MALFORMED, 0);
}

static void one_message_id_and_one_policy(void **state)
{
	struct fixture *f = *state;
	struct built b;

	/* B stamps it as another message. */
	start(&b);
	add(&b, f->keys[KEY_A], "broker-a", NULL);
	b.id = "019ac008e6005f1e2d3c4b5a69780123";
	relay(&b, f->keys[KEY_B], "broker-b");
	b.id = NULL;
	relay(&b, f->keys[KEY_C], "broker-c");
	expect(f, &b, RELAY_TOPIC, TF_STAMP_BROKEN_CHAIN, 1);

	/* C under another policy than the origin's. */
	start(&b);
	add(&b, f->keys[KEY_A], "broker-a", NULL);
	relay(&b, f->keys[KEY_B], "broker-b");
	b.policy = "water-telemetry@2";
	relay(&b, f->keys[KEY_C], "broker-c");
	expect(f, &b, RELAY_TOPIC, TF_STAMP_BROKEN_CHAIN, 2);

	/* Ungoverned at the origin, governed after. */
	start(&b);
	b.policy = "";
	add(&b, f->keys[KEY_A], "broker-a", NULL);
	b.policy = POLICY;
	relay(&b, f->keys[KEY_B], "broker-b");
	expect(f, &b, RELAY_TOPIC, TF_STAMP_BROKEN_CHAIN, 1);
}

/* A message whose hop values are given (NULL ends the list), then C's
 * stamp of b in compact form: what reading and checking the chain say,
 * the stamp at fault in *at (UINT32_MAX: the chain could not be read). */
static enum tf_stamp_check read_hops(struct fixture *f, const struct built *b,
		const char *const *hops, uint32_t *at)
{
	struct message m;
	enum tf_stamp_check rc;

	memset(&m, 0, sizeof(m));
	for (size_t i = 0; hops[i] != NULL; i++)
		offer(&m, TF_STAMP_HOP_NAME, hops[i]);
	offer_newest(&m, &b->stamps[b->n - 1], TF_STAMP_FORM_COMPACT);
	rc = receive(f, &m, RELAY_TOPIC, at);
	drop(&m);
	return rc;
}

static void malformed_hop_records_are_refused(void **state)
{
	struct fixture *f = *state;
	struct built b;
	char fewer[RECORD_MAX], more[RECORD_MAX + 2], escape[RECORD_MAX];
	char *huge = malloc(TF_STAMP_COMPACT_MAX + 2);
	uint32_t at;

	assert_non_null(huge);
	three(f, &b);
	/* Eleven fields (the signature cut off) and thirteen. */
	snprintf(fewer, sizeof(fewer), "%s", b.records[0]);
	*strrchr(fewer, '|') = '\0';
	snprintf(more, sizeof(more), "%s|x", b.records[1]);
	/* A `%` that is neither escape, in the origin's org. */
	snprintf(escape, sizeof(escape), "%s", b.records[0]);
	memcpy(strstr(escape, "|city-waterworks|"), "|city%zzterworks|", 17);
	/* Longer than an MQTT string. */
	memset(huge, 'a', TF_STAMP_COMPACT_MAX + 1);
	huge[TF_STAMP_COMPACT_MAX + 1] = '\0';
	{
		const struct {
			int which;           /* the record replaced: 0 the origin's, 1 B's */
			const char *value;   /* NULL: the record as made */
			enum tf_stamp_check verdict;
			uint32_t at;
		} cases[] = {
			{ 0, NULL, TF_STAMP_VALID, 0 },
			{ 0, fewer, TF_STAMP_FIELD_COUNT, UINT32_MAX },
			{ 1, more, TF_STAMP_FIELD_COUNT, UINT32_MAX },
			{ 0, "", TF_STAMP_FIELD_COUNT, UINT32_MAX },
			/* A format-1 compact value (ten fields) is no hop record. */
			{ 0, "1|2|3|4|5|6|7|8|9|10", TF_STAMP_FIELD_COUNT, UINT32_MAX },
			{ 0, escape, TF_STAMP_BAD_ESCAPE, UINT32_MAX },
			{ 1, "1|2|3|4|5|6|7|8|9|10|11|%", TF_STAMP_BAD_ESCAPE, UINT32_MAX },
			{ 1, huge, TF_STAMP_TOO_LONG, UINT32_MAX },
			/* Twelve empty fields: read, then refused where the
			 * origin's format should be. */
			{ 0, "|||||||||||", TF_STAMP_MALFORMED, 0 },
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			const char *hops[] = { b.records[0], b.records[1], NULL };

			if (cases[i].value != NULL)
				hops[cases[i].which] = cases[i].value;
			assert_int_equal(read_hops(f, &b, hops, &at), cases[i].verdict);
			assert_int_equal(at, cases[i].at);
		}
	}
	free(huge);
}

/* org, client and policy may hold `|` and `%`: the record carries them
 * escaped, its link is over the escaped bytes as carried, and the chain
 * holds. */
static void escaped_values_link_as_carried(void **state)
{
	struct fixture *f = *state;
	struct built b;
	struct message m;
	uint32_t at;

	start(&b);
	b.policy = "p%|@1";
	add(&b, f->keys[KEY_A], "broker-a", NULL);
	relay(&b, f->keys[KEY_B], "broker-b");
	relay(&b, f->keys[KEY_C], "broker-c");
	assert_non_null(strstr(b.records[0], "|p%25%7C@1|"));
	expect(f, &b, RELAY_TOPIC, TF_STAMP_VALID, 0);
	deliver(&m, &b, TF_STAMP_FORM_FULL);
	assert_int_equal(receive(f, &m, RELAY_TOPIC, &at), TF_STAMP_VALID);
	assert_string_equal(m.chain.stamps[0].policy, "p%|@1");
	drop(&m);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(a_chain_of_three_is_valid_in_both_forms),
		T(a_single_format_1_stamp_is_a_chain_of_one),
		T(eight_stamps_are_the_most),
		T(an_altered_hop_record_breaks_the_link_after_it),
		T(a_hop_record_rewritten_by_a_later_broker_fails_its_signature),
		T(a_prev_that_does_not_link_breaks_the_chain),
		T(a_record_dropped_from_the_middle_breaks_the_chain),
		T(a_broker_twice_is_a_loop),
		T(a_key_not_in_the_ring_is_unknown),
		T(a_path_signed_with_one_brokers_key_fails_when_keys_are_bound),
		T(bound_and_unbound_keys_together),
		T(each_format_in_its_place),
		T(one_message_id_and_one_policy),
		T(malformed_hop_records_are_refused),
		T(escaped_values_link_as_carried),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
