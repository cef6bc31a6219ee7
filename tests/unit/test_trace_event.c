/* Unit tests for broker/trace/trace_event.c: the bytes a trace event is hashed
 * as, decoding them back, and the hash chain. The expected bytes and
 * hashes are written out by hand (the hashes computed with Python's
 * hashlib), not produced by the code under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/trace/trace_event.h"

static const char message_bytes[] =
	"trustflow-event-1\nkind:7:message\nseq:2:42\nts:13:1764158400000\n"
	"id:32:019ac008e6005f1e2d3c4b5a69780123\ntopic:23:city/water/d7/telemetry\n"
	"org:15:city-waterworks\nclient:12:ww-sensor-01\npolicy:17:water-telemetry@3\n"
	"sha256:64:fa9a08d761793b6ff6fe10b881cc97ad17d51c2e6c77adb8e841d854491cccf6\n"
	"size:2:28\nstatus:9:delivered\nreason:0:\nstamp_seq:2:42\nkid:16:21fe31dfa154a261\n"
	"sig:88:CJfrfKKvCkudXGIoZC4RPCxnDG0TyWot9cI5PwOqOxK8v/QXnc6h0XNHbmgyfGlzX51niaIue9cmM6BIgsLnBQ==\n";

static struct tf_event message_event(void)
{
	struct tf_event ev = { TF_EVENT_MESSAGE, 42, 1764158400000LL, {
		"019ac008e6005f1e2d3c4b5a69780123", "city/water/d7/telemetry", "city-waterworks",
		"ww-sensor-01", "water-telemetry@3",
		"fa9a08d761793b6ff6fe10b881cc97ad17d51c2e6c77adb8e841d854491cccf6", "28",
		"delivered", "", "42", "21fe31dfa154a261",
		"CJfrfKKvCkudXGIoZC4RPCxnDG0TyWot9cI5PwOqOxK8v/QXnc6h0XNHbmgyfGlzX51niaIue9cmM6BIgsLnBQ==" } };

	return ev;
}

static void hex(const unsigned char *in, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[64] = '\0';
}

static void message_encodes_to_the_documented_bytes(void **state)
{
	struct tf_event ev = message_event();
	char buf[1024];
	size_t len = tf_event_encode(&ev, buf, sizeof(buf));

	(void)state;
	assert_int_equal(len, sizeof(message_bytes) - 1);
	assert_memory_equal(buf, message_bytes, len);
	assert_int_equal(tf_event_encode(&ev, NULL, 0), len);
}

static void chain_hashes_are_sha256_of_previous_and_bytes(void **state)
{
	unsigned char zero[32] = { 0 }, h1[32], h2[32];
	char text[65];

	(void)state;
	tf_event_chain(NULL, zero, message_bytes, sizeof(message_bytes) - 1, h1);
	hex(h1, text);
	assert_string_equal(text, "38be73f7d2fe164dc3b6bfb35eae83153eb8fe0b61dcbeff34fa6d6acc04bf68");
	tf_event_chain(NULL, h1, message_bytes, sizeof(message_bytes) - 1, h2);
	hex(h2, text);
	assert_string_equal(text, "ba5d8603b2567064f508f0b4e46711b1b170c59ccbe809c259a4cb419fad8a45");
}

static void every_kind_round_trips(void **state)
{
	(void)state;
	for (int k = 0; k < TF_EVENT_KINDS; k++) {
		struct tf_event ev = { (enum tf_event_kind)k, 7, 1000, { NULL } }, back;
		const char *values[TF_EVENT_MAX_FIELDS] = { "a", "line\nbreak", "colon:s", "", "x", "y",
			"z", "w", "v", "u", "t", "s", "r", "q", "p" };
		size_t n;
		char buf[2048], scratch[2048];
		struct tf_err err;

		tf_event_fields(ev.kind, &n);
		assert_true(n > 0 && n <= TF_EVENT_MAX_FIELDS);
		for (size_t i = 0; i < n; i++)
			ev.values[i] = values[i];
		size_t len = tf_event_encode(&ev, buf, sizeof(buf));
		assert_true(len < sizeof(buf));
		assert_int_equal(tf_event_decode(buf, len, &back, scratch, sizeof(scratch), &err), TF_OK);
		assert_int_equal(back.kind, ev.kind);
		assert_int_equal(back.seq, 7);
		assert_int_equal(back.ts_ms, 1000);
		for (size_t i = 0; i < n; i++)
			assert_string_equal(back.values[i], values[i]);
	}
}

static void decode_refuses(const char *text, const char *why)
{
	struct tf_event ev;
	struct tf_err err;
	char scratch[2048];

	assert_int_equal(tf_event_decode(text, strlen(text), &ev, scratch, sizeof(scratch), &err),
		TF_ERR_INVALID);
	assert_non_null(strstr(err.msg, why));
}

static void malformed_events_are_refused_with_the_place(void **state)
{
	char buf[2048];

	(void)state;
	decode_refuses("", "not a trustflow-event-1 record");
	decode_refuses("trustflow-event-2\nkind:7:message\n", "not a trustflow-event-1 record");
	decode_refuses("trustflow-event-1\nkind:6:gossip\nseq:1:1\nts:1:1\n", "unknown event kind");
	decode_refuses("trustflow-event-1\nseq:1:1\n", "event byte 18: a field is missing");
	decode_refuses("trustflow-event-1\nkind:99:message\n", "runs past its length");
	decode_refuses("trustflow-event-1\nkind:07:message\n", "leading zero");
	decode_refuses("trustflow-event-1\nkind:x:message\n", "length is malformed");
	decode_refuses("trustflow-event-1\nkind:7:message\nseq:2:4x\nts:1:1\n",
		"seq is not a decimal number");
	/* The right fields in the wrong order. */
	decode_refuses("trustflow-event-1\nkind:7:release\nseq:1:1\nts:1:1\n"
		"flow:1:f\nid:1:i\nby:1:b\n", "out of order");
	/* Trailing bytes, and one field short. */
	strcpy(buf, message_bytes);
	strcat(buf, "of:0:\npeer:0:\nhops:0:\nx");
	decode_refuses(buf, "bytes after the last field");
	strcpy(buf, message_bytes);
	*strstr(buf, "sig:88:") = '\0';
	decode_refuses(buf, "a field is missing");
}

/* A release recorded before "reason" existed still decodes (reason
 * absent) and encodes back to the very bytes it was hashed as; one
 * recorded now carries it. */
static void a_release_without_a_reason_is_read_as_recorded(void **state)
{
	static const char old[] = "trustflow-event-1\nkind:7:release\nseq:1:9\nts:1:5\n"
		"id:1:i\nflow:1:f\nby:1:b\n";
	static const char now[] = "trustflow-event-1\nkind:7:discard\nseq:1:9\nts:1:5\n"
		"id:1:i\nflow:1:f\nby:1:b\nreason:7:expired\n";
	struct tf_event ev;
	struct tf_err err;
	char scratch[256], buf[256];

	(void)state;
	assert_int_equal(tf_event_decode(old, sizeof(old) - 1, &ev, scratch, sizeof(scratch), &err),
		TF_OK);
	assert_string_equal(ev.values[2], "b");
	assert_null(ev.values[3]);
	assert_int_equal(tf_event_encode(&ev, buf, sizeof(buf)), sizeof(old) - 1);
	assert_memory_equal(buf, old, sizeof(old) - 1);
	assert_int_equal(tf_event_decode(now, sizeof(now) - 1, &ev, scratch, sizeof(scratch), &err),
		TF_OK);
	assert_string_equal(ev.values[3], "expired");
	/* Only a release or discard may end early. */
	decode_refuses("trustflow-event-1\nkind:5:alert\nseq:1:1\nts:1:1\nalert:1:a\n"
		"alert_kind:1:k\npolicy:1:p\n", "a field is missing");
}

static void a_value_with_a_nul_byte_is_refused(void **state)
{
	static const char text[] = "trustflow-event-1\nkind:7:release\nseq:1:1\nts:1:1\n"
		"id:3:a\0b\nflow:1:f\nby:1:b\n";
	struct tf_event ev;
	struct tf_err err;
	char scratch[256];

	(void)state;
	assert_int_equal(tf_event_decode(text, sizeof(text) - 1, &ev, scratch, sizeof(scratch), &err),
		TF_ERR_INVALID);
	assert_non_null(strstr(err.msg, "NUL"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(message_encodes_to_the_documented_bytes),
		cmocka_unit_test(chain_hashes_are_sha256_of_previous_and_bytes),
		cmocka_unit_test(every_kind_round_trips),
		cmocka_unit_test(malformed_events_are_refused_with_the_place),
		cmocka_unit_test(a_value_with_a_nul_byte_is_refused),
		cmocka_unit_test(a_release_without_a_reason_is_read_as_recorded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
