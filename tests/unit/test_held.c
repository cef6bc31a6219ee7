/* Unit tests for broker/guard/held.c: a quarantined message's record, as
 * the trace store keeps it, read back as written; a relayed message's
 * with its format-2 stamp and hop records (federation-v1); the records
 * written before relaying existed read as before; damaged ones refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/guard/held.h"

static const char PREV[] = "AAECAwQFBgcICQoLDA0ODw==";

static struct tf_held message(bool relayed)
{
	struct tf_held m = {
		"city/meters/m1", "{\"kwh\": 1}", 11, 1, true,
		{ relayed ? "2" : "1", "019ac008e6005f1e2d3c4b5a69780123", "broker-b",
			"21fe31dfa154a261", "1764158400000", "city", "bridge-broker-a", "meter-data@1",
			"city/meters/m1", "fa9a08d761793b6ff6fe10b881cc97ad17d51c2e6c77adb8e841d854491cccf6",
			"42", "c2ln", relayed ? PREV : NULL },
		0, { NULL },
	};

	if (relayed) {
		m.hops[m.n_hops++] = "1|019ac008e6005f1e2d3c4b5a69780123|broker-a|k|1|city|meter-1|"
			"meter-data@1|city/meters/m1|7||c2ln";
		m.hops[m.n_hops++] = "2|019ac008e6005f1e2d3c4b5a69780123|broker-x|k|2|far|bridge|"
			"meter-data@1|city/meters/m1|8|AAECAwQFBgcICQoLDA0ODw==|c2ln";
	}
	return m;
}

/* Encodes m, decodes it again into back (whose strings live in
 * *scratch and *record, for the caller to free). */
static void round_trip(const struct tf_held *m, struct tf_held *back, void **record,
		char **scratch)
{
	uint32_t len;

	*record = tf_held_encode(m, &len);
	assert_non_null(*record);
	*scratch = malloc(TF_HELD_SCRATCH(len));
	assert_non_null(*scratch);
	assert_true(tf_held_decode(*record, len, back, *scratch, TF_HELD_SCRATCH(len)));
}

static void assert_same(const struct tf_held *a, const struct tf_held *b)
{
	const char *const *fa = &a->stamp.v, *const *fb = &b->stamp.v;

	assert_string_equal(a->topic, b->topic);
	assert_int_equal(a->payloadlen, b->payloadlen);
	assert_memory_equal(a->payload, b->payload, a->payloadlen);
	assert_int_equal(a->qos, b->qos);
	assert_int_equal(a->retain, b->retain);
	/* v ... sig, as struct tf_stamp lays them out */
	for (int i = 0; i < 12; i++)
		assert_string_equal(fa[i], fb[i]);
	if (a->stamp.prev == NULL)
		assert_null(b->stamp.prev);
	else
		assert_string_equal(a->stamp.prev, b->stamp.prev);
	assert_int_equal(a->n_hops, b->n_hops);
	for (uint32_t i = 0; i < a->n_hops; i++)
		assert_string_equal(a->hops[i], b->hops[i]);
}

static void a_message_reads_back_as_written(void **state)
{
	struct tf_held m = message(false), back;
	void *record;
	char *scratch;

	(void)state;
	round_trip(&m, &back, &record, &scratch);
	assert_same(&m, &back);
	/* The format records have had since 0.1. */
	assert_memory_equal(record, "trustflow-held-1\n", 17);
	free(record);
	free(scratch);
}

static void a_relayed_message_keeps_its_chain(void **state)
{
	struct tf_held m = message(true), back;
	void *record;
	char *scratch;

	(void)state;
	round_trip(&m, &back, &record, &scratch);
	assert_same(&m, &back);
	assert_memory_equal(record, "trustflow-held-2\n", 17);
	free(record);
	free(scratch);
}

/* The hop count's digit in a relayed record of message(true): the part
 * of length 1 (as the host writes lengths) that holds "2". */
static unsigned char *hop_count(unsigned char *record, uint32_t len)
{
	static const unsigned char one[4] = { 1, 0, 0, 0 };

	for (uint32_t i = 0; i + 5 <= len; i++)
		if (memcmp(record + i, one, 4) == 0 && record[i + 4] == '2')
			return record + i + 4;
	fail_msg("no hop count in the record");
	return NULL;
}

static void damaged_records_are_refused(void **state)
{
	struct tf_held m = message(true), back;
	uint32_t len;
	unsigned char *record = tf_held_encode(&m, &len), *count;
	char *scratch = malloc(TF_HELD_SCRATCH(len));

	(void)state;
	assert_non_null(record);
	count = hop_count(record, len);
	/* Cut short anywhere. */
	for (uint32_t cut = 0; cut < len; cut += 7)
		assert_false(tf_held_decode(record, cut, &back, scratch, TF_HELD_SCRATCH(len)));
	/* A count of no records, or of more than were written. */
	*count = '0';
	assert_false(tf_held_decode(record, len, &back, scratch, TF_HELD_SCRATCH(len)));
	*count = '3';
	assert_false(tf_held_decode(record, len, &back, scratch, TF_HELD_SCRATCH(len)));
	*count = '2';
	assert_true(tf_held_decode(record, len, &back, scratch, TF_HELD_SCRATCH(len)));
	/* Too little scratch. */
	assert_false(tf_held_decode(record, len, &back, scratch, 64));
	/* An unknown format. */
	record[15] = '9';
	assert_false(tf_held_decode(record, len, &back, scratch, TF_HELD_SCRATCH(len)));
	free(record);
	free(scratch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_message_reads_back_as_written),
		cmocka_unit_test(a_relayed_message_keeps_its_chain),
		cmocka_unit_test(damaged_records_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
