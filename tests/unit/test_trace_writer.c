/* Unit tests for broker/trace/trace_writer.c: the thread that records events
 * off the broker's thread, with a real LMDB store and a real key. The
 * store is read after the writer stops (one process may not open an LMDB
 * environment twice). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/trace/checkpoint.h"
#include "broker/stamp/provenance.h"
#include "broker/trace/trace_query.h"
#include "broker/trace/trace_writer.h"

#define TOPIC "city/water/d7/telemetry"
#define SHA "fa9a08d761793b6ff6fe10b881cc97ad17d51c2e6c77adb8e841d854491cccf6"

struct fixture {
	char dir[64];
	char key[96];
	struct tf_trace_writer_config cfg;
	struct tf_keyring *ring;
	struct tf_signer *signer;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct tf_err err;

	strcpy(f->dir, "/tmp/tf-writer-XXXXXX");
	if (f == NULL || mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->key, sizeof(f->key), "%s-key.pem", f->dir);
	if (tf_signer_generate(f->key, &f->signer, &err) != TF_OK)
		return -1;
	f->ring = tf_keyring_new();
	tf_keyring_add_pem(f->ring, tf_signer_public_pem(f->signer),
		strlen(tf_signer_public_pem(f->signer)), NULL, &err);
	f->cfg = (struct tf_trace_writer_config){ f->dir, "city-broker-1", f->signer, 100, 0, 0,
		10000, 60000 };
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[200];

	tf_keyring_free(f->ring);
	tf_signer_free(f->signer);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", f->dir, f->key);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static struct tf_trace_input message(char *id, int i, const char *stamp_seq, const char *reason)
{
	struct tf_trace_input in = { .kind = TF_EVENT_MESSAGE, .ts_ms = 1764158400000LL + i,
		.values = { id, TOPIC,
		"city-waterworks", "ww-sensor-01", "water-telemetry@3", SHA, "28", "delivered", reason,
		stamp_seq, "21fe31dfa154a261", "c2ln" } };

	snprintf(id, 33, "019ac008e600%020d", i);
	return in;
}

static struct tf_trace_writer *start(struct fixture *f)
{
	struct tf_trace_writer *w;
	struct tf_err err;

	assert_int_equal(tf_trace_writer_start(&f->cfg, &w, &err), TF_OK);
	return w;
}

static struct tf_verify_result verify_store(struct fixture *f)
{
	struct tf_trace_store *s;
	struct tf_verify_result r;
	struct tf_err err;

	assert_int_equal(tf_trace_open(f->dir, false, 0, &s, &err), TF_OK);
	assert_int_equal(tf_trace_read_begin(s, &err), TF_OK);
	assert_int_equal(tf_query_verify(s, f->ring, &r, &err), TF_OK);
	tf_trace_read_end(s);
	tf_trace_close(s);
	return r;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void everything_recorded_is_in_the_store_after_stop(void **state)
{
	struct fixture *f = *state;
	struct tf_trace_writer *w = start(f);
	struct tf_verify_result r;
	char id[33];

	for (int i = 0; i < 5000; i++) {
		struct tf_trace_input in = message(id, i, "", "");

		assert_int_equal(tf_trace_writer_record(w, &in), TF_OK);
	}
	tf_trace_writer_stop(w);
	r = verify_store(f);
	assert_true(r.ok);
	assert_int_equal(r.events, 5000);
	/* Stopping signs a last checkpoint over everything. */
	assert_int_equal(r.checkpoints, 1);
}

static void flush_waits_until_synced(void **state)
{
	struct fixture *f = *state;
	struct tf_trace_writer *w;
	char id[33];
	struct tf_trace_input in = message(id, 1, "", "");

	f->cfg.sync_ms = 0;
	w = start(f);
	assert_int_equal(tf_trace_writer_record(w, &in), TF_OK);
	assert_int_equal(tf_trace_writer_flush(w), TF_OK);
	assert_int_equal(tf_trace_writer_flush(w), TF_OK);
	tf_trace_writer_stop(w);
	assert_int_equal(verify_store(f).events, 1);
}

static void checkpoints_are_signed_and_handed_over(void **state)
{
	struct fixture *f = *state;
	struct tf_trace_writer *w;
	struct tf_checkpoint cp;
	struct tf_err err;
	char *json = NULL, id[33];
	struct tf_trace_input in = message(id, 1, "", "");

	f->cfg.checkpoint_ms = 20;
	w = start(f);
	assert_int_equal(tf_trace_writer_record(w, &in), TF_OK);
	for (int i = 0; i < 500 && json == NULL; i++) {
		sleep_ms(10);
		json = tf_trace_writer_take_checkpoint(w);
	}
	assert_non_null(json);
	assert_int_equal(tf_checkpoint_from_json(json, strlen(json), &cp, &err), TF_OK);
	assert_string_equal(cp.broker, "city-broker-1");
	assert_int_equal(cp.seq, 1);
	assert_int_equal(tf_checkpoint_check(&cp, f->ring), TF_STAMP_VALID);
	/* Taken once. */
	free(json);
	assert_null(tf_trace_writer_take_checkpoint(w));
	tf_trace_writer_stop(w);
}

/* The writer signs checkpoints on its thread with the broker's signer,
 * pool included, while the broker's thread signs with it too. */
static void checkpoints_signed_with_the_pool_verify(void **state)
{
	struct fixture *f = *state;
	struct tf_trace_writer *w;
	struct tf_signer_stats st;
	struct tf_checkpoint cp;
	struct tf_err err;
	char *json = NULL, id[33], sig[TF_SIG_B64_LEN + 1];
	struct tf_trace_input in = message(id, 1, "", "");

	assert_int_equal(tf_signer_use_pool(f->signer, 1, 64, &err), TF_OK);
	for (tf_signer_stats(f->signer, &st); st.level == 0; tf_signer_stats(f->signer, &st))
		sleep_ms(1);
	f->cfg.checkpoint_ms = 20;
	w = start(f);
	assert_int_equal(tf_trace_writer_record(w, &in), TF_OK);
	for (int i = 0; i < 500 && json == NULL; i++) {
		assert_int_equal(tf_signer_sign(f->signer, "broker", 6, sig, &err), TF_OK);
		assert_int_equal(tf_keyring_verify(f->ring, tf_signer_kid(f->signer), "broker", 6,
			sig), TF_STAMP_VALID);
		sleep_ms(10);
		json = tf_trace_writer_take_checkpoint(w);
	}
	assert_non_null(json);
	assert_int_equal(tf_checkpoint_from_json(json, strlen(json), &cp, &err), TF_OK);
	assert_int_equal(tf_checkpoint_check(&cp, f->ring), TF_STAMP_VALID);
	free(json);
	tf_trace_writer_stop(w);
	tf_signer_stats(f->signer, &st);
	assert_true(st.pool_signatures >= 1);
}

static void the_stamp_sequence_survives_a_restart(void **state)
{
	struct fixture *f = *state;
	struct tf_trace_writer *w = start(f);
	char id[33];
	struct tf_trace_input in = message(id, 1, "77", "");

	assert_int_equal(tf_trace_writer_stamp_seq(w), 0);
	assert_int_equal(tf_trace_writer_record(w, &in), TF_OK);
	tf_trace_writer_stop(w);
	w = start(f);
	assert_int_equal(tf_trace_writer_stamp_seq(w), 77);
	tf_trace_writer_stop(w);
}

static void a_full_store_makes_recording_fail_and_says_why(void **state)
{
	struct fixture *f = *state;
	struct tf_trace_writer *w;
	static char big[100000];
	char text[1024] = "", id[33];
	bool failed = false, reported = false;
	int rc = TF_OK;

	memset(big, 'x', sizeof(big) - 1);
	f->cfg.max_bytes = 1024 * 1024;
	w = start(f);
	for (int i = 0; i < 100000 && rc == TF_OK; i++) {
		struct tf_trace_input in = message(id, i, "", big);

		rc = tf_trace_writer_record(w, &in);
		if (i % 8 == 7)
			tf_trace_writer_flush(w);
	}
	assert_int_equal(rc, TF_ERR_FULL);
	assert_int_equal(tf_trace_writer_flush(w), TF_ERR_FULL);
	reported = tf_trace_writer_take_report(w, text, sizeof(text), &failed);
	assert_true(reported);
	assert_true(failed);
	assert_non_null(strstr(text, "size limit"));
	assert_non_null(strstr(text, "governed messages are refused"));
	tf_trace_writer_stop(w);
	/* What was written is intact. */
	assert_true(verify_store(f).ok);
}

static void events_past_the_retention_are_pruned(void **state)
{
	struct fixture *f = *state;
	struct tf_trace_writer *w;
	struct tf_trace_store *s;
	struct tf_verify_result r;
	struct tf_err err;
	uint64_t first = 0, last = 0;
	char id[33];

	f->cfg.retention_days = 1;
	f->cfg.checkpoint_ms = 10;
	f->cfg.prune_ms = 10;
	w = start(f);
	/* Events from 2025, long past a day's retention. */
	for (int i = 0; i < 100; i++) {
		struct tf_trace_input in = message(id, i, "", "");

		assert_int_equal(tf_trace_writer_record(w, &in), TF_OK);
	}
	assert_int_equal(tf_trace_writer_flush(w), TF_OK);
	/* Pruning is due by now; stopping signs a last checkpoint over the
	 * old events, which lets the due pruning remove them. */
	sleep_ms(50);
	tf_trace_writer_stop(w);
	assert_int_equal(tf_trace_open(f->dir, false, 0, &s, &err), TF_OK);
	assert_int_equal(tf_trace_read_begin(s, &err), TF_OK);
	tf_trace_bounds(s, &first, &last);
	tf_trace_read_end(s);
	tf_trace_close(s);
	assert_int_equal(first, 0);   /* all gone */
	r = verify_store(f);
	assert_true(r.ok);
	assert_int_equal(r.events, 0);
}

static void a_store_that_cannot_open_is_an_error(void **state)
{
	struct fixture *f = *state;
	struct tf_trace_writer *w;
	struct tf_err err;

	f->cfg.dir = "/proc/no-such-place/trace";
	assert_int_not_equal(tf_trace_writer_start(&f->cfg, &w, &err), TF_OK);
	assert_non_null(strstr(err.msg, "/proc/no-such-place/trace"));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(everything_recorded_is_in_the_store_after_stop),
		T(flush_waits_until_synced),
		T(checkpoints_are_signed_and_handed_over),
		T(checkpoints_signed_with_the_pool_verify),
		T(the_stamp_sequence_survives_a_restart),
		T(a_full_store_makes_recording_fail_and_says_why),
		T(events_past_the_retention_are_pruned),
		T(a_store_that_cannot_open_is_an_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
