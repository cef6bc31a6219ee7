/* tracebench: the trace store under load, for `make bench`.
 *
 *     tracebench DIR MESSAGES RECIPIENTS POLICIES
 *
 * Records MESSAGES message events, each followed by RECIPIENTS delivery
 * events, through the trace writer exactly as the broker does (the
 * records made on this thread, the writer's thread committing; record_us
 * is what one record costs this thread while the queue has room), with the
 * messages spread evenly over one day and over POLICIES policies. Then it
 * asks the store what tfctl trace asks: `message` for random ids,
 * `recipients` for one policy over the day, and `verify` over everything.
 * Prints one JSON object. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "broker/stamp/provenance.h"
#include "broker/trace/trace_query.h"
#include "broker/trace/trace_writer.h"

#define DAY_MS 86400000LL
#define T0 1764115200000LL     /* 2025-11-26T00:00:00Z */
#define QUERIES 2000
/* Events timed for the cost of recording on the broker's thread: fewer
 * than the writer's queue holds, so that none waits for the writer. */
#define RECORD_TIMED 20000

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void message_id(uint64_t i, int64_t ts, char out[TF_MSGID_LEN + 1])
{
	snprintf(out, TF_MSGID_LEN + 1, "%012llx%020llx", (unsigned long long)ts,
		(unsigned long long)(i * 0x9e3779b97f4a7c15ull));
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int fail(const char *what, const struct tf_err *err)
{
	fprintf(stderr, "tracebench: %s: %s\n", what, err ? err->msg : "failed");
	return 1;
}

int main(int argc, char **argv)
{
	struct tf_trace_writer_config cfg = { 0 };
	struct tf_trace_writer *w;
	struct tf_trace_store *s;
	struct tf_signer *signer;
	struct tf_verify_result vr;
	struct tf_err err;
	char key[4096], path[4200], file[4300], id[TF_MSGID_LEN + 1], sha[TF_SHA256_HEX + 1];
	char policy[32], client[32], client_id[48], payload[64];
	double t_start, t_timed = 0, t_done, t, samples[QUERIES], recipients_ms, verify_s;
	uint64_t recorded = 0;
	uint64_t messages, recipients, policies, events;
	size_t n_recipients = 0;
	struct stat st;
	uint64_t used;
	FILE *devnull;

	if (argc != 5) {
		fputs("usage: tracebench DIR MESSAGES RECIPIENTS POLICIES\n", stderr);
		return 2;
	}
	messages = strtoull(argv[2], NULL, 10);
	recipients = strtoull(argv[3], NULL, 10);
	policies = strtoull(argv[4], NULL, 10);
	snprintf(key, sizeof(key), "%s/key.pem", argv[1]);
	snprintf(path, sizeof(path), "%s/trace", argv[1]);
	if (tf_signer_generate(key, &signer, &err) != TF_OK)
		return fail("key", &err);
	cfg = (struct tf_trace_writer_config){ path, "bench-broker", signer, 100, 0, 0, 10000,
		60000 };
	if (tf_trace_writer_start(&cfg, &w, &err) != TF_OK)
		return fail("start", &err);

	t_start = now_s();
	for (uint64_t i = 0; i < messages; i++) {
		int64_t ts = T0 + (int64_t)(i * (uint64_t)DAY_MS / messages);
		char seq[21];
		struct tf_trace_input in = { .kind = TF_EVENT_MESSAGE, .ts_ms = ts,
		.values = { id, "bench/topic", "bench-owner",
			"bench-pub", policy, sha, "256", "delivered", "", seq, "21fe31dfa154a261",
			"CJfrfKKvCkudXGIoZC4RPCxnDG0TyWot9cI5PwOqOxK8v/QXnc6h0XNHbmgyfGlzX51niaIue9cmM6BIgsLnBQ==" },
			/* Filed by content, as a QoS 1 or retained message is: the
			 * store's size for the costlier case. */
			.file_sha256 = sha };

		message_id(i, ts, id);
		snprintf(policy, sizeof(policy), "policy-%llu@1", (unsigned long long)(i % policies));
		snprintf(seq, sizeof(seq), "%llu", (unsigned long long)i + 1);
		snprintf(payload, sizeof(payload), "{\"n\":%llu}", (unsigned long long)i);
		tf_sha256_hex(payload, strlen(payload), sha);
		if (tf_trace_writer_record(w, &in) != TF_OK)
			return fail("record", NULL);
		if (++recorded == RECORD_TIMED)
			t_timed = now_s();
		for (uint64_t r = 0; r < recipients; r++) {
			struct tf_trace_input d = { .kind = TF_EVENT_DELIVERY, .ts_ms = ts + 1,
		.values = { id, policy, client,
				"bench-consumer", "delivered", "", client_id } };

			snprintf(client, sizeof(client), "bench-sub-%llu", (unsigned long long)r);
			snprintf(client_id, sizeof(client_id), "bench-sub-%llu-gateway",
				(unsigned long long)r);
			if (tf_trace_writer_record(w, &d) != TF_OK)
				return fail("record", NULL);
			if (++recorded == RECORD_TIMED)
				t_timed = now_s();
		}
	}
	tf_trace_writer_stop(w);
	tf_signer_free(signer);
	t_done = now_s();
	events = messages * (1 + recipients);

	snprintf(file, sizeof(file), "%s/data.mdb", path);
	if (stat(file, &st) != 0)
		return fail("stat", NULL);
	if (tf_trace_open(path, false, 0, &s, &err) != TF_OK || tf_trace_read_begin(s, &err) != TF_OK)
		return fail("open", &err);
	/* Every page the store uses, indexes and free pages included. */
	used = tf_trace_bytes_used(s);
	devnull = fopen("/dev/null", "w");

	srand(7);
	for (int q = 0; q < QUERIES; q++) {
		uint64_t i = (uint64_t)rand() % messages;
		cJSON *o;

		message_id(i, T0 + (int64_t)(i * (uint64_t)DAY_MS / messages), id);
		t = now_s();
		o = tf_query_message(s, id, &err);
		samples[q] = (now_s() - t) * 1e6;
		if (o == NULL)
			return fail("message query", &err);
		cJSON_Delete(o);
	}
	qsort(samples, QUERIES, sizeof(samples[0]), cmp_double);

	t = now_s();
	if (tf_query_recipients(s, "policy-0", T0, T0 + DAY_MS, devnull, &n_recipients, &err) != TF_OK)
		return fail("recipients", &err);
	recipients_ms = (now_s() - t) * 1e3;

	t = now_s();
	if (tf_query_verify(s, NULL, &vr, &err) != TF_OK || !vr.ok)
		return fail("verify", vr.ok ? &err : NULL);
	verify_s = now_s() - t;
	tf_trace_read_end(s);
	tf_trace_close(s);
	fclose(devnull);

	printf("{\"messages\": %llu, \"recipients\": %llu, \"policies\": %llu, \"events\": %llu, "
		"\"record_us\": %.3f, \"events_per_s\": %.0f, \"store_bytes\": %llu, "
		"\"file_bytes\": %lld, "
		"\"bytes_per_million_messages\": %.0f, \"message_query_median_us\": %.1f, "
		"\"message_query_p99_us\": %.1f, \"recipients_ms\": %.1f, "
		"\"recipients_deliveries\": %llu, \"recipients_clients\": %zu, "
		"\"verify_s\": %.2f, \"verify_events_per_s\": %.0f}\n",
		(unsigned long long)messages, (unsigned long long)recipients,
		(unsigned long long)policies, (unsigned long long)events,
		(t_timed - t_start) * 1e6 / RECORD_TIMED, (double)events / (t_done - t_start),
		(unsigned long long)used, (long long)st.st_size, (double)used * 1e6 / (double)messages,
		samples[QUERIES / 2], samples[QUERIES * 99 / 100], recipients_ms,
		(unsigned long long)(messages / policies * recipients), n_recipients, verify_s,
		(double)vr.events / verify_s);
	return 0;
}
