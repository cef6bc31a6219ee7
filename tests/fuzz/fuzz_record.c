/* Fuzz target: the trace record reader (broker/trace/record.c), which reads
 * the store's compact records back for tfctl trace and verify. Promises
 * checked: a refused record says why, naming the event; an accepted one is
 * written back by the record writer to exactly the same bytes, so a record
 * has one encoding and no changed byte reads as the same events. */
#include "tests/fuzz/fuzz.h"

#include <string.h>

#include "broker/trace/record.h"

const char tf_fuzz_target[] = "record";

/* The name table the seeds were written with: name n is names[n - 1]. */
static const char *const names[] = {
	"city/water/d7/telemetry", "city-waterworks", "ww-sensor-01", "water-telemetry@3",
	"delivered", "21fe31dfa154a261", "city-analytics", "analytics-01", "analytics-02",
	"withheld", "past its retention (60 s)", "city-waterworks/ww-sensor-01", "operator",
	"rate", "quarantine",
};
#define NAMES (sizeof(names) / sizeof(names[0]))

static uint32_t intern(void *ctx, const char *text, size_t len)
{
	(void)ctx;
	for (uint32_t i = 0; i < NAMES; i++)
		if (strlen(names[i]) == len && memcmp(names[i], text, len) == 0)
			return i + 1;
	return 0;   /* only names read from the table are written back */
}

static const char *text(void *ctx, uint32_t n)
{
	(void)ctx;
	return n >= 1 && n <= NAMES ? names[n - 1] : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct tf_record_names table = { NULL, intern, text };
	struct tf_record_builder b = { 0 };
	struct tf_record_reader r;
	struct tf_event ev;
	struct tf_err err = { "" };
	const unsigned char *again;
	size_t len;
	int rc = tf_record_open(&r, data, size, 1, &err);

	for (uint32_t i = 0; rc == TF_OK && i < tf_record_count(&r); i++) {
		rc = tf_record_next(&r, &table, &ev, &err);
		if (rc != TF_OK)
			break;
		FUZZ_CHECK(ev.seq == 1 + i);
		FUZZ_CHECK(tf_event_encode(&ev, NULL, 0) > 0);
		FUZZ_CHECK(tf_record_accepts(&b, &ev));
		FUZZ_CHECK(tf_record_add(&b, &ev, &table) == TF_OK);
	}
	if (rc != TF_OK) {
		FUZZ_CHECK(rc == TF_ERR_INVALID);
		FUZZ_CHECK(strncmp(err.msg, "event ", 6) == 0
			|| strncmp(err.msg, "record of event ", 16) == 0);
	} else {
		again = tf_record_bytes(&b, &len);
		FUZZ_CHECK(len == size && memcmp(again, data, size) == 0);
	}
	tf_record_builder_free(&b);
	return 0;
}
