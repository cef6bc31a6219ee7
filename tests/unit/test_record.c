/* Unit tests for broker/trace/record.c: trace events in compact records.
 * What matters is that every event comes back as exactly the text it was
 * given (tf_event_encode, which the chain hashes, gives the same bytes),
 * that a delivery costs a few bytes, and that a damaged record is refused
 * or reads as a different event, never as the same one, and never read out
 * of bounds (the sanitizer build checks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "broker/trace/record.h"

/* --- a names table: an array, number n is names[n - 1] -------------------- */

#define NAMES_MAX 64

struct names {
	char *text[NAMES_MAX];
	uint32_t n;
	int fail_after;   /* interns that succeed before one fails; -1: never */
};

static uint32_t names_intern(void *ctx, const char *text, size_t len)
{
	struct names *t = ctx;

	for (uint32_t i = 0; i < t->n; i++)
		if (strlen(t->text[i]) == len && memcmp(t->text[i], text, len) == 0)
			return i + 1;
	if (t->fail_after == 0 || t->n == NAMES_MAX)
		return 0;
	if (t->fail_after > 0)
		t->fail_after--;
	t->text[t->n] = strndup(text, len);
	return t->text[t->n] != NULL ? ++t->n : 0;
}

static const char *names_text(void *ctx, uint32_t n)
{
	struct names *t = ctx;

	return n >= 1 && n <= t->n ? t->text[n - 1] : NULL;
}

struct fixture {
	struct names table;
	struct tf_record_names names;
	struct tf_record_builder b;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->table.fail_after = -1;
	f->names = (struct tf_record_names){ &f->table, names_intern, names_text };
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	for (uint32_t i = 0; i < f->table.n; i++)
		free(f->table.text[i]);
	tf_record_builder_free(&f->b);
	free(f);
	return 0;
}

/* --- realistic events ------------------------------------------------------- */

#define MSG_ID "019ac008e6005f1e2d3c4b5a69780123"
#define OTHER_ID "019ac008e6005f1e2d3c4b5a69780124"
#define SHA "fa9a08d761793b6ff6fe10b881cc97ad17d51c2e6c77adb8e841d854491cccf6"
#define T0 1764158400000LL

/* An 88-character signature: 64 bytes (SHA-512 of a text) in base64 by
 * OpenSSL. */
static const char *signature(void)
{
	static char b64[89];
	unsigned char raw[64];
	unsigned int len = sizeof(raw);

	assert_int_equal(EVP_Digest("trustflow", 9, raw, &len, EVP_sha512(), NULL), 1);
	assert_int_equal(EVP_EncodeBlock((unsigned char *)b64, raw, 64), 88);
	return b64;
}

static struct tf_event message(uint64_t seq, int64_t ts, const char *id)
{
	return (struct tf_event){ TF_EVENT_MESSAGE, seq, ts, { id, "city/water/d7/telemetry",
		"city-waterworks", "ww-sensor-01", "water-telemetry@3", SHA, "28", "delivered", "",
		"42", "21fe31dfa154a261", signature(), "" } };
}

static struct tf_event delivery(uint64_t seq, int64_t ts, const char *id, const char *client)
{
	return (struct tf_event){ TF_EVENT_DELIVERY, seq, ts, { id, "water-telemetry@3", client,
		"city-analytics", "delivered", "", client } };
}

/* The bytes the chain hashes for ev, into buf (2048 bytes). */
static size_t text_of(const struct tf_event *ev, char *buf)
{
	size_t len = tf_event_encode(ev, buf, 2048);

	assert_true(len <= 2048);
	return len;
}

static void assert_same_text(const struct tf_event *a, const struct tf_event *b)
{
	char ta[2048], tb[2048];
	size_t la = text_of(a, ta), lb = text_of(b, tb);

	assert_int_equal(la, lb);
	assert_memory_equal(ta, tb, la);
}

static void add_all(struct fixture *f, const struct tf_event *evs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		assert_true(tf_record_accepts(&f->b, &evs[i]));
		assert_int_equal(tf_record_add(&f->b, &evs[i], &f->names), TF_OK);
	}
}

/* Reads the record back (from a copy of exactly its length, so that a read
 * past it is caught) and checks each event against evs. */
static void assert_reads_back(struct fixture *f, const struct tf_event *evs, size_t n)
{
	struct tf_record_reader r;
	struct tf_event ev;
	struct tf_err err;
	size_t len;
	const unsigned char *bytes = tf_record_bytes(&f->b, &len);
	unsigned char *copy = malloc(len);

	assert_non_null(copy);
	memcpy(copy, bytes, len);
	assert_int_equal(tf_record_open(&r, copy, len, evs[0].seq, &err), TF_OK);
	assert_int_equal(tf_record_count(&r), n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(tf_record_next(&r, &f->names, &ev, &err), TF_OK);
		assert_int_equal(ev.kind, evs[i].kind);
		assert_int_equal(ev.seq, evs[i].seq);
		assert_int_equal(ev.ts_ms, evs[i].ts_ms);
		assert_same_text(&ev, &evs[i]);
	}
	assert_int_equal(tf_record_count(&r), n);
	free(copy);
}

static void round_trip(struct fixture *f, const struct tf_event *evs, size_t n)
{
	tf_record_reset(&f->b);
	add_all(f, evs, n);
	assert_reads_back(f, evs, n);
}

/* --- round trips ------------------------------------------------------------ */

static void every_kind_round_trips(void **state)
{
	struct fixture *f = *state;
	struct tf_event fan[] = {
		message(100, T0, MSG_ID),
		delivery(101, T0, MSG_ID, "analytics-01"),
		delivery(102, T0 + 3, MSG_ID, "analytics-02"),
	};
	struct tf_event alone[] = {
		delivery(7, T0, OTHER_ID, "analytics-01"),
		{ TF_EVENT_RELEASE, 8, T0 + 1, { MSG_ID, "city-waterworks/ww-sensor-01", "operator",
			"overridden: retention" } },
		{ TF_EVENT_DISCARD, 9, T0 + 2, { MSG_ID, "city-waterworks/ww-sensor-01", "operator",
			"expired" } },
		{ TF_EVENT_ALERT, 10, T0 + 3, { "7d1f0c9a2b3e4f5061728394a5b6c7d8", "rate",
			"water-telemetry@3", "city-waterworks", "ww-sensor-01",
			"{\"rate\":1200,\"limit\":100}", "quarantine" } },
		{ TF_EVENT_POLICY_SET, 11, T0 + 4, { "accepted", "3",
			"water-telemetry.json,air.json\nwith a newline" } },
		{ TF_EVENT_POLICY_SET, 12, 0, { "refused: air.json: $.rules[0]: unknown key", "0",
			"" } },
		/* Signed, and unsigned (no key id, no signature). */
		{ TF_EVENT_POLICY, 13, T0 + 5, { "water-telemetry@3", "city-waterworks",
			"$trustflow/policies/city-waterworks/water-telemetry", "water.json", SHA,
			"k1", signature(), "eyJ0cnVzdGZsb3dfcG9saWN5IjogMX0K" } },
		{ TF_EVENT_POLICY, 14, T0 + 6, { "air@1", "city", "$trustflow/policies/city/air",
			"air.json", SHA, "", "", "e30=" } },
	};

	round_trip(f, fan, 3);
	for (size_t i = 0; i < sizeof(alone) / sizeof(alone[0]); i++)
		round_trip(f, &alone[i], 1);
}

/* A value that is not in its canonical form is kept as its text, so that
 * it too comes back exactly. */
static void non_canonical_values_round_trip_as_text(void **state)
{
	struct fixture *f = *state;
	char sig87[88], sig_bits[89];
	struct tf_event evs[] = {
		message(1, T0, "019AC008E6005F1E2D3C4B5A69780123"),
		message(2, T0, ""),
		message(3, T0, MSG_ID),
		message(4, T0, "019ac008e6005f1e2d3c4b5a6978012"),
		delivery(5, T0, "019ac008e6005f1e2d3c4b5a69780123 ", "c"),
		{ TF_EVENT_POLICY_SET, 6, T0, { "accepted", "007", "" } },
		{ TF_EVENT_POLICY_SET, 7, T0, { "accepted", "18446744073709551616", "" } },
		{ TF_EVENT_POLICY_SET, 8, T0, { "accepted", "18446744073709551615", "" } },
		{ TF_EVENT_POLICY_SET, 9, T0, { "accepted", "-1", "" } },
		{ TF_EVENT_POLICY_SET, 10, T0, { "accepted", "", "" } },
		{ TF_EVENT_POLICY_SET, 11, T0, { "accepted", "0", "" } },
	};

	/* A signature one character short; one whose padding bits are not
	 * zero (base64 decodes it, but encodes the bytes differently). */
	memcpy(sig87, signature(), 87);
	sig87[87] = '\0';
	memcpy(sig_bits, signature(), 89);
	assert_string_equal(sig_bits + 86, "==");
	sig_bits[85] = sig_bits[85] == 'A' ? 'B' : 'A';
	evs[2].values[11] = sig87;
	evs[2].values[5] = "FA9A08D761793B6FF6FE10B881CC97AD17D51C2E6C77ADB8E841D854491CCCF6";
	evs[2].values[6] = "007";
	evs[2].values[9] = "";
	evs[2].values[12] = "not-an-id";
	evs[3].values[11] = sig_bits;
	evs[3].values[5] = "";
	evs[3].values[6] = "18446744073709551616";
	evs[3].values[12] = MSG_ID;   /* a view of itself: the record's id again */
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		round_trip(f, &evs[i], 1);
}

static void a_fan_out_costs_few_bytes_per_delivery(void **state)
{
	struct fixture *f = *state;
	struct tf_event evs[51];
	char clients[50][32];
	size_t before, after;

	evs[0] = message(1000, T0, MSG_ID);
	for (int i = 0; i < 50; i++) {
		snprintf(clients[i], sizeof(clients[i]), "analytics-%02d", i);
		/* Deliveries come within a few milliseconds of the message. */
		evs[1 + i] = delivery(1001 + (uint64_t)i, T0 + i / 10, MSG_ID, clients[i]);
	}
	add_all(f, evs, 1);
	for (int i = 1; i <= 50; i++) {
		tf_record_bytes(&f->b, &before);
		add_all(f, &evs[i], 1);
		tf_record_bytes(&f->b, &after);
		/* head, time, the id by reference, six names of one byte each. */
		assert_true(after - before <= 16);
	}
	assert_reads_back(f, evs, 51);
}

/* Events recorded before their kind's last fields existed end early, and
 * are read back with those fields absent. */
static void absent_trailing_fields_stay_absent(void **state)
{
	struct fixture *f = *state;
	struct tf_event msg = message(1, T0, MSG_ID), del = delivery(2, T0, MSG_ID, "c");
	struct tf_event rel = { TF_EVENT_RELEASE, 3, T0, { MSG_ID, "flow", "operator", NULL } };
	struct tf_event reader_ev, all[2];
	struct tf_record_reader r;
	struct tf_err err;
	const unsigned char *bytes;
	size_t len;

	msg.values[12] = NULL;
	del.values[6] = NULL;
	all[0] = msg;
	all[1] = del;
	round_trip(f, all, 2);
	round_trip(f, &rel, 1);
	bytes = tf_record_bytes(&f->b, &len);
	assert_int_equal(tf_record_open(&r, bytes, len, 3, &err), TF_OK);
	assert_int_equal(tf_record_next(&r, &f->names, &reader_ev, &err), TF_OK);
	assert_string_equal(reader_ev.values[2], "operator");
	assert_null(reader_ev.values[3]);

	tf_record_reset(&f->b);
	add_all(f, all, 2);
	bytes = tf_record_bytes(&f->b, &len);
	assert_int_equal(tf_record_open(&r, bytes, len, 1, &err), TF_OK);
	assert_int_equal(tf_record_next(&r, &f->names, &reader_ev, &err), TF_OK);
	assert_string_equal(reader_ev.values[11], signature());
	assert_null(reader_ev.values[12]);
	assert_int_equal(tf_record_next(&r, &f->names, &reader_ev, &err), TF_OK);
	assert_string_equal(reader_ev.values[5], "");
	assert_null(reader_ev.values[6]);
}

/* A NULL before a present field is a mistake of the caller; it is
 * recorded as "", not as an early end that would drop the fields after. */
static void a_null_in_the_middle_is_recorded_as_empty(void **state)
{
	struct fixture *f = *state;
	struct tf_event ev = delivery(1, T0, MSG_ID, "c"), expect;
	struct tf_record_reader r;
	struct tf_event back;
	struct tf_err err;
	const unsigned char *bytes;
	size_t len;

	ev.values[3] = NULL;
	expect = ev;
	expect.values[3] = "";
	tf_record_reset(&f->b);
	add_all(f, &ev, 1);
	bytes = tf_record_bytes(&f->b, &len);
	assert_int_equal(tf_record_open(&r, bytes, len, 1, &err), TF_OK);
	assert_int_equal(tf_record_next(&r, &f->names, &back, &err), TF_OK);
	assert_same_text(&back, &expect);
}

/* --- what a record holds ---------------------------------------------------- */

static void a_record_holds_one_message_and_its_deliveries(void **state)
{
	struct fixture *f = *state;
	struct tf_event msg = message(1, T0 + 10, MSG_ID), del = delivery(2, T0 + 10, MSG_ID, "c");
	struct tf_event other = delivery(2, T0 + 10, OTHER_ID, "c"), early = del;
	struct tf_event second = message(2, T0 + 10, MSG_ID);
	struct tf_event alert = { TF_EVENT_ALERT, 1, T0, { MSG_ID, "rate", "", "", "", "", "" } };
	struct tf_event bad_id = delivery(2, T0 + 10, "", "c");
	size_t len;

	early.ts_ms = T0 + 9;
	assert_true(tf_record_accepts(&f->b, &other));   /* empty: anything */
	assert_null(tf_record_bytes(&f->b, &len));
	assert_int_equal(len, 0);
	add_all(f, &msg, 1);
	assert_true(tf_record_accepts(&f->b, &del));
	assert_false(tf_record_accepts(&f->b, &other));
	assert_false(tf_record_accepts(&f->b, &second));
	assert_false(tf_record_accepts(&f->b, &early));
	assert_false(tf_record_accepts(&f->b, &bad_id));
	assert_int_equal(tf_record_add(&f->b, &other, &f->names), TF_ERR_INVALID);
	assert_int_equal(f->b.count, 1);
	for (uint32_t i = 1; i < TF_RECORD_MAX_EVENTS; i++) {
		del.seq = 1 + i;
		assert_true(tf_record_accepts(&f->b, &del));
		assert_int_equal(tf_record_add(&f->b, &del, &f->names), TF_OK);
	}
	del.seq++;
	assert_int_equal(f->b.count, TF_RECORD_MAX_EVENTS);
	assert_false(tf_record_accepts(&f->b, &del));

	/* A run of deliveries alone is a record of that message too, of
	 * 1024 deliveries at most. */
	tf_record_reset(&f->b);
	add_all(f, &other, 1);
	assert_true(f->b.has_id);
	for (uint32_t i = 1; i < TF_RECORD_MAX_EVENTS; i++) {
		other.seq++;
		add_all(f, &other, 1);
	}
	other.seq++;
	assert_false(tf_record_accepts(&f->b, &other));
	assert_int_equal(tf_record_add(&f->b, &other, &f->names), TF_ERR_INVALID);

	/* An alert names no message: nothing joins it. */
	tf_record_reset(&f->b);
	add_all(f, &alert, 1);
	assert_false(f->b.has_id);
	assert_false(tf_record_accepts(&f->b, &del));
}

/* When a name cannot be interned, the record is as before. */
static void a_failed_add_leaves_the_record_as_it_was(void **state)
{
	struct fixture *f = *state;
	struct tf_event msg = message(1, T0, MSG_ID), del = delivery(2, T0 + 5, MSG_ID, "new");
	unsigned char before[512];
	size_t len, len_after;
	const unsigned char *bytes;

	add_all(f, &msg, 1);
	bytes = tf_record_bytes(&f->b, &len);
	assert_true(len <= sizeof(before));
	memcpy(before, bytes, len);
	f->table.fail_after = 0;
	assert_int_equal(tf_record_add(&f->b, &del, &f->names), TF_ERR_NOMEM);
	assert_int_equal(f->b.count, 1);
	assert_int_equal(f->b.last_ts, T0);
	bytes = tf_record_bytes(&f->b, &len_after);
	assert_int_equal(len_after, len);
	assert_memory_equal(bytes, before, len);

	/* The first event failing leaves an empty builder. */
	tf_record_reset(&f->b);
	assert_int_equal(tf_record_add(&f->b, &del, &f->names), TF_ERR_NOMEM);
	assert_int_equal(f->b.count, 0);
	assert_false(f->b.has_id);
	assert_null(tf_record_bytes(&f->b, &len));

	f->table.fail_after = -1;
	assert_int_equal(tf_record_add(&f->b, &msg, &f->names), TF_OK);
	assert_int_equal(tf_record_add(&f->b, &del, &f->names), TF_OK);
	assert_reads_back(f, (struct tf_event[]){ msg, del }, 2);
}

/* --- refusing what the writer did not write --------------------------------- */

static void an_unknown_name_is_refused(void **state)
{
	struct fixture *f = *state;
	struct tf_event del = delivery(5, T0, MSG_ID, "analytics-01"), back;
	struct tf_record_reader r;
	struct tf_err err;
	const unsigned char *bytes;
	size_t len;

	add_all(f, &del, 1);
	bytes = tf_record_bytes(&f->b, &len);
	/* A table that lost its last name (outcome "delivered" is 4). */
	assert_int_equal(f->table.n, 4);
	f->table.n = 3;
	assert_int_equal(tf_record_open(&r, bytes, len, 5, &err), TF_OK);
	assert_int_equal(tf_record_next(&r, &f->names, &back, &err), TF_ERR_INVALID);
	assert_string_equal(err.msg, "event 5: unknown name 4");
	f->table.n = 4;
}

static void open_refuses(const unsigned char *bytes, size_t len, const char *why)
{
	struct tf_record_reader r;
	struct tf_err err;
	unsigned char *copy = malloc(len + 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, bytes, len);
	rc = tf_record_open(&r, copy, len, 9, &err);
	free(copy);
	assert_int_equal(rc, TF_ERR_INVALID);
	if (strstr(err.msg, why) == NULL)
		fail_msg("\"%s\" does not say \"%s\"", err.msg, why);
}

/* Opens bytes (copied to exactly their length) and reads every event;
 * the first error's status, with err saying why. */
static int read_all(const unsigned char *bytes, size_t len, const struct tf_record_names *names,
		struct tf_err *err)
{
	struct tf_record_reader r;
	struct tf_event ev;
	unsigned char *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, bytes, len);
	rc = tf_record_open(&r, copy, len, 9, err);
	for (uint32_t i = 0; rc == TF_OK && i < tf_record_count(&r); i++)
		rc = tf_record_next(&r, names, &ev, err);
	free(copy);
	return rc;
}

static void next_refuses(const struct fixture *f, const unsigned char *bytes, size_t len,
		const char *why)
{
	struct tf_err err;

	assert_int_equal(read_all(bytes, len, &f->names, &err), TF_ERR_INVALID);
	if (strstr(err.msg, why) == NULL)
		fail_msg("\"%s\" does not say \"%s\"", err.msg, why);
}

/* The 16 bytes of a record's id. */
#define ID16 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16
#define B(...) \
	(const unsigned char[]){ __VA_ARGS__ }, sizeof((const unsigned char[]){ __VA_ARGS__ })

/* Records written by hand, each wrong in one way. A policy-set event is
 * head 0x05, time 0, then result (text), policies (tag, number), files. */
static void malformed_records_are_refused(void **state)
{
	struct fixture *f = *state;
	struct tf_err err;

	/* The well-formed one they are made from. */
	assert_int_equal(read_all(B(2, 1, 5, 0, 5, 0, 1, 'a', 0, 0, 3, 0, 0), &f->names, &err),
		TF_OK);
	open_refuses((const unsigned char *)"", 0, "record of event 9: it ends inside a value");
	open_refuses(B(1, 1, 5, 0), "not a format-2 record");
	open_refuses(B(2, 1, 5, 2), "not a format-2 record");
	open_refuses(B(2, 0, 5, 0), "0 events");
	open_refuses(B(2, 0x81, 0x08, 5, 1), "1025 events");
	open_refuses(B(2, 2, 5, 0), "2 events (1 to 1024, only 1 without an id)");
	open_refuses(B(2, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0),
		"longer than 10 bytes");
	open_refuses(B(2, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02, 0),
		"does not fit in 64 bits");
	open_refuses(B(2, 0x81, 0x00, 5, 0), "needless zero byte");
	open_refuses(B(2, 1, 5, 1, 1, 2, 3), "ends inside a value");
	next_refuses(f, B(2, 1, 5, 0), "event 9: it ends inside");
	next_refuses(f, B(2, 1, 5, 0, TF_EVENT_KINDS, 0), "unknown event kind");
	next_refuses(f, B(2, 1, 5, 0, 0x45, 0), "more absent fields than the kind has");
	next_refuses(f, B(2, 1, 5, 0, 5, 1, 1, 'a', 0, 0, 3, 0, 0), "first event's time");
	next_refuses(f, B(2, 1, 5, 0, 5, 0, 1, 'a', 0, 3, 3, 0, 0), "unknown tag");
	next_refuses(f, B(2, 1, 5, 0, 5, 0, 1, 'a', 0, 2, 0, 0), "a number has an id's tag");
	next_refuses(f, B(2, 1, 5, 0, 5, 0, 1, 'a', 1, 0, 3, 0, 0), "lacks its NUL");
	next_refuses(f, B(2, 1, 5, 0, 5, 0, 9, 'a', 0, 0, 3, 0, 0), "runs past the record");
	next_refuses(f, B(2, 1, 5, 0, 5, 0, 3, 'a', 0, 'b', 0, 0, 3, 0, 0), "holds a NUL byte");
	next_refuses(f, B(2, 1, 5, 0, 5, 0, 1, 'a', 0, 1, 1, '3', 0, 0, 0),
		"a canonical number kept as text");
	next_refuses(f, B(2, 1, 5, 0, 5, 0, 1, 'a', 0, 0, 3, 0, 0, 0), "bytes after the record's");
	next_refuses(f, B(2, 1, 5, 0, 5, 0, 1, 'a', 0, 0, 3, 0), "runs past the record");
	next_refuses(f, B(2, 1, 5, 0, 5, 0, 1, 'a', 0, 0, 0x80, 0x00, 0, 0), "needless zero byte");
	/* A release (head 0x12: reason absent) whose id is the record's,
	 * which has none; one whose canonical id the record lacks; one whose
	 * record id is another. */
	next_refuses(f, B(2, 1, 5, 0, 0x12, 0, 2, 0, 0), "refers to the record's, which has none");
	next_refuses(f, B(2, 1, 5, 0, 0x12, 0, 0, ID16, 0, 0), "lacks its first event's id");
	next_refuses(f, B(2, 1, 5, 1, ID16, 0x12, 0, 0, ID16, 0, 0), "record's id is stored again");
	next_refuses(f, B(2, 1, 5, 1, ID16, 0x12, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
		14, 15, 17, 0, 0), "not its first event's");
	/* A second event that is not a delivery of the record's message. */
	next_refuses(f, B(2, 2, 5, 1, ID16, 0x12, 0, 2, 0, 0, 0x12, 0, 2, 0, 0),
		"event 10: not a delivery of the record's message");
}

/* A copy of a realistic record: a message, three deliveries. */
static size_t sample(struct fixture *f, unsigned char *out, size_t cap,
		struct tf_event evs[4])
{
	const unsigned char *bytes;
	size_t len;

	evs[0] = message(9, T0, MSG_ID);
	evs[1] = delivery(10, T0 + 1, MSG_ID, "analytics-01");
	evs[2] = delivery(11, T0 + 1, MSG_ID, "analytics-02");
	evs[3] = delivery(12, T0 + 300, MSG_ID, "analytics-01");
	evs[3].values[4] = "withheld";
	evs[3].values[5] = "past its retention (60 s)";
	add_all(f, evs, 4);
	bytes = tf_record_bytes(&f->b, &len);
	assert_true(len <= cap);
	memcpy(out, bytes, len);
	return len;
}

static void a_truncated_record_is_refused(void **state)
{
	struct fixture *f = *state;
	struct tf_event evs[4];
	unsigned char rec[1024];
	struct tf_err err;
	size_t len = sample(f, rec, sizeof(rec), evs);

	assert_int_equal(read_all(rec, len, &f->names, &err), TF_OK);
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(read_all(rec, cut, &f->names, &err), TF_ERR_INVALID);
}

/* Whether bytes read as exactly the events evs (count, kinds, times and
 * the bytes the chain hashes). */
static bool reads_as(const unsigned char *bytes, size_t len, const struct tf_record_names *names,
		const struct tf_event *evs, uint32_t n)
{
	struct tf_record_reader r;
	struct tf_event ev;
	struct tf_err err;
	char ta[2048], tb[2048];
	bool same;

	if (tf_record_open(&r, bytes, len, evs[0].seq, &err) != TF_OK)
		return false;
	same = tf_record_count(&r) == n;
	for (uint32_t i = 0; i < tf_record_count(&r); i++) {
		size_t la, lb;

		if (tf_record_next(&r, names, &ev, &err) != TF_OK)
			return false;
		if (i >= n)
			continue;
		la = text_of(&ev, ta);
		lb = text_of(&evs[i], tb);
		same = same && la == lb && memcmp(ta, tb, la) == 0;
	}
	return same;
}

/* A changed byte is refused, or reads as events whose bytes differ: the
 * chain over them then no longer matches. A changed name number that is
 * another name's counts as the latter. */
static void a_changed_byte_never_reads_as_the_same_events(void **state)
{
	struct fixture *f = *state;
	struct tf_event evs[4];
	unsigned char rec[1024], *copy;
	size_t len = sample(f, rec, sizeof(rec), evs);

	assert_true(reads_as(rec, len, &f->names, evs, 4));
	copy = malloc(len);
	assert_non_null(copy);
	for (size_t at = 0; at < len; at++)
		for (unsigned mask = 1; mask < 256; mask++) {
			memcpy(copy, rec, len);
			copy[at] ^= (unsigned char)mask;
			if (reads_as(copy, len, &f->names, evs, 4))
				fail_msg("byte %zu ^ 0x%02x reads as the same events", at, mask);
		}
	free(copy);
}

/* A record that reads well is written back to the same bytes: a record has
 * one encoding, so no change to it can read as the same events. */
static void assert_written_back_the_same(const unsigned char *bytes, size_t len,
		const struct tf_record_names *names)
{
	struct tf_record_builder b = { 0 };
	struct tf_record_reader r;
	struct tf_event ev;
	struct tf_err err;
	const unsigned char *again;
	size_t again_len;

	assert_int_equal(tf_record_open(&r, bytes, len, 9, &err), TF_OK);
	for (uint32_t i = 0; i < tf_record_count(&r); i++) {
		assert_int_equal(tf_record_next(&r, names, &ev, &err), TF_OK);
		assert_true(tf_record_accepts(&b, &ev));
		assert_int_equal(tf_record_add(&b, &ev, names), TF_OK);
	}
	again = tf_record_bytes(&b, &again_len);
	assert_int_equal(again_len, len);
	assert_memory_equal(again, bytes, len);
	tf_record_builder_free(&b);
}

/* Random bytes, and valid records with random bytes changed, are read
 * without a crash: each is refused, or read whole and written back to the
 * same bytes. */
static void random_bytes_are_read_safely(void **state)
{
	struct fixture *f = *state;
	struct tf_event evs[4];
	unsigned char rec[1024], buf[1024];
	size_t len = sample(f, rec, sizeof(rec), evs);
	unsigned seed = 15;
	struct tf_err err;

	for (int round = 0; round < 100000; round++) {
		size_t n;
		int rc;

		if (round % 2 == 0) {
			n = (size_t)rand_r(&seed) % 200;
			for (size_t i = 0; i < n; i++)
				buf[i] = (unsigned char)rand_r(&seed);
			if (n > 0 && round % 4 == 0)
				buf[0] = TF_RECORD_FORMAT;
		} else {
			n = len;
			memcpy(buf, rec, len);
			for (int k = 1 + rand_r(&seed) % 4; k > 0; k--)
				buf[(size_t)rand_r(&seed) % len] = (unsigned char)rand_r(&seed);
		}
		err.msg[0] = '\0';
		rc = read_all(buf, n, &f->names, &err);
		assert_true(rc == TF_OK || (rc == TF_ERR_INVALID && err.msg[0] != '\0'));
		if (rc == TF_OK)
			assert_written_back_the_same(buf, n, &f->names);
	}
}

/* Times: deltas from the record's first, any int64 the text can show. */
static void times_round_trip(void **state)
{
	struct fixture *f = *state;
	struct tf_event evs[3] = {
		message(1, 0, MSG_ID),
		delivery(2, 0, MSG_ID, "c"),
		delivery(3, INT64_MAX, MSG_ID, "c"),
	};
	struct tf_event late = delivery(1, INT64_MAX, OTHER_ID, "c");

	round_trip(f, evs, 3);
	round_trip(f, &late, 1);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(every_kind_round_trips),
		T(non_canonical_values_round_trip_as_text),
		T(a_fan_out_costs_few_bytes_per_delivery),
		T(absent_trailing_fields_stay_absent),
		T(a_null_in_the_middle_is_recorded_as_empty),
		T(a_record_holds_one_message_and_its_deliveries),
		T(a_failed_add_leaves_the_record_as_it_was),
		T(an_unknown_name_is_refused),
		T(malformed_records_are_refused),
		T(a_truncated_record_is_refused),
		T(a_changed_byte_never_reads_as_the_same_events),
		T(random_bytes_are_read_safely),
		T(times_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
