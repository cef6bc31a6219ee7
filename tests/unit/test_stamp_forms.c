/* Unit tests for broker/stamp/forms.c: the compact form of provenance-v1
 * (the spec's test vector in compact form, escaping, every kind of
 * malformed value), its size on the wire, and reading a stamp in either
 * form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/stamp/forms.h"
#include "broker/stamp/provenance.h"
#include "tests/unit/vector.h"

/* The spec's test vector. */
#define VECTOR_SIG \
	"CJfrfKKvCkudXGIoZC4RPCxnDG0TyWot9cI5PwOqOxK8v/QXnc6h0XNHbmgyfGlzX51niaIue9cmM6BIgsLnBQ=="
static const struct tf_stamp vector_stamp = {
	"1", "019ac008e6005f1e2d3c4b5a69780123", "city-broker-1", "21fe31dfa154a261",
	"1764158400000", "city-waterworks", "ww-sensor-01", "water-telemetry@3",
	vector_topic, "fa9a08d761793b6ff6fe10b881cc97ad17d51c2e6c77adb8e841d854491cccf6", "42",
	VECTOR_SIG, NULL,
};
/* The vector's stamp in compact form, written out by hand from the spec. */
static const char vector_compact[] =
	"1|019ac008e6005f1e2d3c4b5a69780123|city-broker-1|21fe31dfa154a261|1764158400000|"
	"city-waterworks|ww-sensor-01|water-telemetry@3|42|" VECTOR_SIG;

struct fixture {
	struct vector_keys keys;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL || vector_keys_open(&f->keys, "tf-forms") != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int rc = vector_keys_close(&f->keys);

	free(f);
	return rc;
}

/* Reads value (copied: the reader changes it) as a message's one `tf`
 * property and checks the stamp; the verdict of the first step that
 * fails. */
static enum tf_stamp_check check_compact(const struct tf_keyring *ring, const char *value,
		const char *topic, const char *payload)
{
	struct tf_stamp_reader reader = { 0 };
	char *copy = strdup(value);
	struct tf_stamp st;
	enum tf_stamp_check c;

	assert_non_null(copy);
	assert_true(tf_stamp_reader_add(&reader, TF_STAMP_COMPACT_NAME, copy));
	c = tf_stamp_reader_finish(&reader, topic, payload, strlen(payload), &st);
	if (c == TF_STAMP_VALID)
		c = tf_stamp_check(ring, &st, payload, strlen(payload));
	free(copy);
	return c;
}

static void the_vector_in_compact_form(void **state)
{
	struct fixture *f = *state;
	char value[512];

	assert_int_equal(tf_stamp_compact_encode(&vector_stamp, value, sizeof(value)),
		sizeof(vector_compact) - 1);
	assert_string_equal(value, vector_compact);
	/* It verifies with the vector's key, topic and payload... */
	assert_int_equal(check_compact(f->keys.ring, vector_compact, vector_topic, vector_payload),
		TF_STAMP_VALID);
	/* ...and with no other topic or payload: neither travels in it. */
	assert_int_equal(check_compact(f->keys.ring, vector_compact, "city/water/d8/telemetry",
		vector_payload), TF_STAMP_BAD_SIGNATURE);
	assert_int_equal(check_compact(f->keys.ring, vector_compact, vector_topic,
		"{\"flow\":99.5,\"pressure\":3.1}"), TF_STAMP_BAD_SIGNATURE);
}

/* The bytes a user property takes in a PUBLISH: its identifier, then the
 * name and the value, each with a two-byte length. */
static size_t property_bytes(const char *name, const char *value)
{
	return 1 + 2 + strlen(name) + 2 + strlen(value);
}

/* docs/provenance.md gives these numbers for a subscriber's Maximum
 * Packet Size: a typical stamp (the vector's fields) takes at most 240
 * bytes compact (225 exactly) and 402 in full. */
static void the_vector_stamp_on_the_wire(void **state)
{
	const char *const full[] = {
		vector_stamp.v, vector_stamp.id, vector_stamp.broker, vector_stamp.kid,
		vector_stamp.ts, vector_stamp.org, vector_stamp.client, vector_stamp.policy,
		vector_stamp.sha256, vector_stamp.seq, vector_stamp.sig,
	};
	char value[512];
	size_t compact_bytes, full_bytes = 0;

	(void)state;
	tf_stamp_compact_encode(&vector_stamp, value, sizeof(value));
	compact_bytes = property_bytes(TF_STAMP_COMPACT_NAME, value);
	for (int i = 0; i < 11; i++)
		full_bytes += property_bytes(tf_stamp_names[i], full[i]);
	assert_true(compact_bytes <= 240);
	assert_int_equal(compact_bytes, 225);
	assert_int_equal(full_bytes, 402);
}

static void percent_is_escaped_before_bar(void **state)
{
	struct tf_stamp st = vector_stamp;
	char value[512];

	(void)state;
	/* A value that already looks escaped is escaped again, so that it
	 * reads back as itself. */
	st.org = "a|b%c";
	st.client = "%7C";
	st.policy = "|%|";
	tf_stamp_compact_encode(&st, value, sizeof(value));
	assert_non_null(strstr(value, "|a%7Cb%25c|%257C|%7C%25%7C|42|"));
}

/* org, client and policy may hold `|` and `%` (broker ids, ids and key
 * ids cannot): such a stamp goes through the compact form unchanged and
 * still verifies. */
static void values_with_bars_and_percents_round_trip(void **state)
{
	struct fixture *f = *state;
	struct tf_stamp_request req = {
		.broker = "city-broker-1", .org = "org|with%bars", .client = "user|%25|%7C",
		.policy = "p%|@1", .topic = vector_topic, .payload = vector_payload,
		.payloadlen = strlen(vector_payload), .ts_ms = 1764158400000LL, .seq = 7,
	};
	struct tf_stamp_buf buf;
	struct tf_stamp signed_stamp, read;
	struct tf_err err;
	char value[512];

	assert_int_equal(tf_signer_stamp(f->keys.signer, &req, &buf, &signed_stamp, &err), TF_OK);
	assert_true(tf_stamp_compact_encode(&signed_stamp, value, sizeof(value)) < sizeof(value));
	assert_int_equal(check_compact(f->keys.ring, value, vector_topic, vector_payload),
		TF_STAMP_VALID);
	assert_int_equal(tf_stamp_compact_decode(value, &read), TF_STAMP_VALID);
	assert_string_equal(read.org, "org|with%bars");
	assert_string_equal(read.client, "user|%25|%7C");
	assert_string_equal(read.policy, "p%|@1");
	assert_string_equal(read.id, signed_stamp.id);
	assert_string_equal(read.sig, signed_stamp.sig);
}

static void encoding_reports_the_room_it_needs(void **state)
{
	size_t need = tf_stamp_compact_encode(&vector_stamp, NULL, 0);
	char *exact;

	(void)state;
	assert_int_equal(need, sizeof(vector_compact) - 1);
	/* One byte short (no room for the NUL): the same answer, and nothing
	 * written past the end (the sanitizers would see it). */
	exact = malloc(need);
	assert_non_null(exact);
	assert_int_equal(tf_stamp_compact_encode(&vector_stamp, exact, need), need);
	free(exact);
}

/* value with field i (0-based, in compact order) replaced by field. */
static void with_field(char *out, size_t cap, int i, const char *field)
{
	const char *p = vector_compact;
	size_t n = 0;

	for (int k = 0; k < i; k++)
		p = strchr(p, '|') + 1;
	n = (size_t)(p - vector_compact);
	snprintf(out, cap, "%.*s%s%s", (int)n, vector_compact, field, p + strcspn(p, "|"));
}

static void malformed_values_fail_with_their_reason(void **state)
{
	static const struct {
		const char *org;
		enum tf_stamp_check verdict;
	} cases[] = {
		{ "city%2", TF_STAMP_BAD_ESCAPE },     /* cut short at the field's end */
		{ "city%zz", TF_STAMP_BAD_ESCAPE },    /* not hex */
		{ "100%", TF_STAMP_BAD_ESCAPE },       /* an unescaped % */
		{ "a%7cb", TF_STAMP_BAD_ESCAPE },      /* only the writer's own escapes */
		{ "a%41b", TF_STAMP_BAD_ESCAPE },
		{ "a|b", TF_STAMP_FIELD_COUNT },       /* an unescaped | */
	};
	struct fixture *f = *state;
	char value[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		with_field(value, sizeof(value), 5, cases[i].org);
		assert_int_equal(check_compact(f->keys.ring, value, vector_topic, vector_payload),
			cases[i].verdict);
	}
	/* A bad escape in the last field, at the very end. */
	snprintf(value, sizeof(value), "%s%%", vector_compact);
	assert_int_equal(check_compact(f->keys.ring, value, vector_topic, vector_payload),
		TF_STAMP_BAD_ESCAPE);
	/* Nine fields, and none at all. */
	snprintf(value, sizeof(value), "%.*s", (int)(strrchr(vector_compact, '|') - vector_compact),
		vector_compact);
	assert_int_equal(check_compact(f->keys.ring, value, vector_topic, vector_payload),
		TF_STAMP_FIELD_COUNT);
	assert_int_equal(check_compact(f->keys.ring, "", vector_topic, vector_payload),
		TF_STAMP_FIELD_COUNT);
	/* Ten fields, each wrong in its format. */
	assert_int_equal(check_compact(f->keys.ring, "|||||||||", vector_topic, vector_payload),
		TF_STAMP_MALFORMED);
	with_field(value, sizeof(value), 8, "forty-two");
	assert_int_equal(check_compact(f->keys.ring, value, vector_topic, vector_payload),
		TF_STAMP_MALFORMED);
	/* A changed field still parses, and breaks the signature. */
	with_field(value, sizeof(value), 5, "maint-co");
	assert_int_equal(check_compact(f->keys.ring, value, vector_topic, vector_payload),
		TF_STAMP_BAD_SIGNATURE);
}

static void a_value_longer_than_an_mqtt_string_is_refused(void **state)
{
	struct fixture *f = *state;
	size_t len = TF_STAMP_COMPACT_MAX + 1;
	char *value = malloc(len + 1);

	assert_non_null(value);
	memset(value, 'a', len);
	memcpy(value, vector_compact, sizeof(vector_compact) - 1);
	value[len] = '\0';
	assert_int_equal(check_compact(f->keys.ring, value, vector_topic, vector_payload),
		TF_STAMP_TOO_LONG);
	assert_string_equal(tf_stamp_check_reason(TF_STAMP_TOO_LONG),
		"compact stamp or hop record too long");
	free(value);
}

/* The full form's properties of the vector, as a subscriber reads them. */
static void add_full(struct tf_stamp_reader *r, char copies[11][128])
{
	const char *const values[] = {
		vector_stamp.v, vector_stamp.id, vector_stamp.broker, vector_stamp.kid,
		vector_stamp.ts, vector_stamp.org, vector_stamp.client, vector_stamp.policy,
		vector_stamp.sha256, vector_stamp.seq, vector_stamp.sig,
	};

	for (int i = 0; i < 11; i++) {
		snprintf(copies[i], 128, "%s", values[i]);
		assert_true(tf_stamp_reader_add(r, tf_stamp_names[i], copies[i]));
	}
}

static void the_reader_takes_either_form_and_never_both(void **state)
{
	struct fixture *f = *state;
	struct tf_stamp_reader r = { 0 };
	char copies[11][128], compact[512], other[] = "x";
	struct tf_stamp st;

	/* The full form. Other properties, and a name repeated, are not kept. */
	assert_false(tf_stamp_reader_add(&r, "note", other));
	add_full(&r, copies);
	assert_false(tf_stamp_reader_add(&r, "tf-org", other));
	assert_false(tf_stamp_reader_add(&r, "TF", other));
	assert_int_equal(tf_stamp_reader_finish(&r, vector_topic, vector_payload,
		strlen(vector_payload), &st), TF_STAMP_VALID);
	assert_string_equal(st.org, "city-waterworks");
	assert_int_equal(tf_stamp_check(f->keys.ring, &st, vector_payload, strlen(vector_payload)),
		TF_STAMP_VALID);

	/* Both forms on one message. */
	snprintf(compact, sizeof(compact), "%s", vector_compact);
	assert_true(tf_stamp_reader_add(&r, TF_STAMP_COMPACT_NAME, compact));
	assert_int_equal(tf_stamp_reader_finish(&r, vector_topic, vector_payload,
		strlen(vector_payload), &st), TF_STAMP_BOTH_FORMS);
	assert_null(st.id);
	assert_string_equal(tf_stamp_check_reason(TF_STAMP_BOTH_FORMS), "stamp in both forms");

	/* Neither form; the compact form twice. */
	memset(&r, 0, sizeof(r));
	assert_int_equal(tf_stamp_reader_finish(&r, vector_topic, vector_payload,
		strlen(vector_payload), &st), TF_STAMP_MISSING);
	assert_true(tf_stamp_reader_add(&r, TF_STAMP_COMPACT_NAME, compact));
	assert_false(tf_stamp_reader_add(&r, TF_STAMP_COMPACT_NAME, other));
	assert_int_equal(tf_stamp_reader_finish(&r, vector_topic, vector_payload,
		strlen(vector_payload), &st), TF_STAMP_MALFORMED);
}

/* A relaying broker's stamp (format 2), by the vector's key, delivered on
 * RELAY_TOPIC and linked to a made-up record. */
#define RELAY_TOPIC "partners/city/water/d7/telemetry"
#define RELAY_PREV "AAAAAAAAAAAAAAAAAAAAAA=="

static void relay_stamp(struct fixture *f, struct tf_stamp_buf *buf, struct tf_stamp *out)
{
	struct tf_stamp_request req = {
		.broker = "city-broker-2", .org = "city-waterworks", .client = "bridge-city-broker-1",
		.policy = "water-telemetry@3", .topic = RELAY_TOPIC, .payload = vector_payload,
		.payloadlen = strlen(vector_payload), .ts_ms = 1764158400001LL, .seq = 43,
		.id = "019ac008e6005f1e2d3c4b5a69780123", .prev = RELAY_PREV,
	};
	struct tf_err err;

	assert_int_equal(tf_signer_stamp(f->keys.signer, &req, buf, out, &err), TF_OK);
}

/* A format-2 stamp in full form names its topic with tf-topic: without
 * it a field is missing, even on a message that arrived on the very topic
 * it signed (the arrival topic does not stand in for it, as it does for
 * format 1). */
static void a_full_format_2_stamp_without_its_topic_is_missing_a_field(void **state)
{
	struct fixture *f = *state;
	struct tf_stamp_buf buf;
	struct tf_stamp signed_stamp, st;

	relay_stamp(f, &buf, &signed_stamp);
	for (int with_topic = 1; with_topic >= 0; with_topic--) {
		const char *const values[TF_STAMP_NAMES_V2] = {
			signed_stamp.v, signed_stamp.id, signed_stamp.broker, signed_stamp.kid,
			signed_stamp.ts, signed_stamp.org, signed_stamp.client, signed_stamp.policy,
			signed_stamp.sha256, signed_stamp.seq, signed_stamp.sig, signed_stamp.topic,
			signed_stamp.prev,
		};
		struct tf_stamp_reader r = { 0 };
		char copies[TF_STAMP_NAMES_V2][128];

		for (int i = 0; i < TF_STAMP_NAMES_V2; i++) {
			if (i == 11 && !with_topic)
				continue;
			snprintf(copies[i], sizeof(copies[i]), "%s", values[i]);
			assert_true(tf_stamp_reader_add(&r, tf_stamp_names[i], copies[i]));
		}
		assert_int_equal(tf_stamp_reader_finish(&r, RELAY_TOPIC, vector_payload,
			strlen(vector_payload), &st), TF_STAMP_VALID);
		if (with_topic) {
			assert_string_equal(st.topic, RELAY_TOPIC);
			assert_int_equal(tf_stamp_check(f->keys.ring, &st, vector_payload,
				strlen(vector_payload)), TF_STAMP_VALID);
		} else {
			assert_null(st.topic);
			assert_int_equal(tf_stamp_check(f->keys.ring, &st, vector_payload,
				strlen(vector_payload)), TF_STAMP_MISSING);
		}
	}
}

/* Twelve fields in a compact value are a hop record, format 2's: with an
 * empty prev (a format-1 stamp's record) it is no compact stamp, though
 * every field of it checks out. */
static void a_twelve_field_compact_value_needs_a_prev(void **state)
{
	struct fixture *f = *state;
	struct tf_stamp_buf buf;
	struct tf_stamp relayed, format1 = vector_stamp;
	char value[512];

	/* The relay's, with its prev: a compact stamp. */
	relay_stamp(f, &buf, &relayed);
	assert_true(tf_stamp_record_encode(&relayed, value, sizeof(value)) < sizeof(value));
	assert_int_equal(check_compact(f->keys.ring, value, RELAY_TOPIC, vector_payload),
		TF_STAMP_VALID);

	/* The vector's record: twelve fields, the prev empty. */
	assert_true(tf_stamp_record_encode(&format1, value, sizeof(value)) < sizeof(value));
	assert_non_null(strstr(value, "|42||"));
	assert_int_equal(check_compact(f->keys.ring, value, vector_topic, vector_payload),
		TF_STAMP_FIELD_COUNT);
	/* A prev that is there but does not belong to format 1: read, then
	 * judged malformed. */
	format1.prev = RELAY_PREV;
	assert_true(tf_stamp_record_encode(&format1, value, sizeof(value)) < sizeof(value));
	assert_int_equal(check_compact(f->keys.ring, value, vector_topic, vector_payload),
		TF_STAMP_MALFORMED);
	assert_string_equal(tf_stamp_check_reason(TF_STAMP_FIELD_COUNT),
		"wrong number of fields in a compact stamp or hop record");
}

static void form_names(void **state)
{
	enum tf_stamp_form form;

	(void)state;
	assert_true(tf_stamp_form_parse("compact", &form));
	assert_int_equal(form, TF_STAMP_FORM_COMPACT);
	assert_true(tf_stamp_form_parse("full", &form));
	assert_int_equal(form, TF_STAMP_FORM_FULL);
	assert_false(tf_stamp_form_parse("Full", &form));
	assert_false(tf_stamp_form_parse("", &form));
}

/* A reader frees what it kept from values made with malloc, and only
 * that: what it refused is the caller's (the sanitizer build catches a
 * leak or a double free). */
static void a_reader_frees_the_values_it_kept(void **state)
{
	struct tf_stamp_reader r = { 0 };
	char *hop = strdup("a|b"), *again = strdup("x");

	(void)state;
	assert_true(tf_stamp_reader_add(&r, TF_STAMP_COMPACT_NAME, strdup("v")));
	assert_true(tf_stamp_reader_add(&r, "tf-org", strdup("city-waterworks")));
	assert_true(tf_stamp_reader_add(&r, TF_STAMP_HOP_NAME, hop));
	assert_false(tf_stamp_reader_add(&r, "tf-org", again));
	free(again);
	tf_stamp_reader_free_values(&r);
	assert_null(r.compact);
	assert_int_equal(r.n_hops, 0);
	/* Zeroed: freeing again frees nothing. */
	tf_stamp_reader_free_values(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(the_vector_in_compact_form, setup, teardown),
		cmocka_unit_test(the_vector_stamp_on_the_wire),
		cmocka_unit_test(percent_is_escaped_before_bar),
		cmocka_unit_test_setup_teardown(values_with_bars_and_percents_round_trip, setup,
			teardown),
		cmocka_unit_test(encoding_reports_the_room_it_needs),
		cmocka_unit_test_setup_teardown(malformed_values_fail_with_their_reason, setup,
			teardown),
		cmocka_unit_test_setup_teardown(a_value_longer_than_an_mqtt_string_is_refused, setup,
			teardown),
		cmocka_unit_test_setup_teardown(the_reader_takes_either_form_and_never_both, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			a_full_format_2_stamp_without_its_topic_is_missing_a_field, setup, teardown),
		cmocka_unit_test_setup_teardown(a_twelve_field_compact_value_needs_a_prev, setup,
			teardown),
		cmocka_unit_test(form_names),
		cmocka_unit_test(a_reader_frees_the_values_it_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
