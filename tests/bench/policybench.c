/* policybench: load time, memory and per-delivery decision time of a large
 * policy set (written by gen_policies.py, whose layout this relies on).
 *
 * Loads the set through the engine, as the plugin does, then times SAMPLES
 * delivery decisions (tf_engine_may_receive: identity lookup, receive-time
 * lookup, governance, rules) on random governed topics, half of them for
 * an entitled client and half for a random one, with a clock reading
 * before and after each; then what counting a delivery for the metrics
 * costs (tf_metrics_delivered, broker/engine/metrics.h: the broker counts
 * every delivery made) over as many policies and clients, and the memory
 * that takes; and prints one JSON line. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/engine/engine.h"
#include "broker/engine/metrics.h"
#include "broker/engine/options.h"
#include "policy/set.h"

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A field of /proc/self/status in kB, e.g. "VmRSS:". */
static long status_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, strlen(field)) == 0)
			kb = strtol(line + strlen(field), NULL, 10);
	fclose(f);
	return kb;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void clear_retained(void *ctx, const char *topic)
{
	(void)ctx;
	(void)topic;
}

/* xorshift64*: reproducible samples without libc's rand() quirks. */
static uint64_t next_random(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 2685821657736338717ull;
}

int main(int argc, char **argv)
{
	struct tf_engine_hooks hooks = { .clear_retained = clear_retained };
	struct tf_options opts;
	struct tf_engine *engine;
	struct tf_err err = { "" };
	long policies, clients, orgs, samples, rss_before, allowed = 0;
	int64_t t0, load_ns, timer_ns, *times, decision_median, decision_p99;
	int64_t now_ms = (int64_t)time(NULL) * 1000;
	struct tf_metrics *metrics;
	double metrics_mb;
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	char path[4096];
	static const char payload[] = "{\"flow\":1}";

	if (argc != 6) {
		fprintf(stderr, "usage: policybench DIR POLICIES CLIENTS ORGS SAMPLES\n");
		return 2;
	}
	policies = strtol(argv[2], NULL, 10);
	clients = strtol(argv[3], NULL, 10);
	orgs = strtol(argv[4], NULL, 10);
	samples = strtol(argv[5], NULL, 10);
	if (policies <= 0 || clients <= 0 || orgs <= 0 || orgs > clients || samples <= 0)
		return 2;

	tf_options_init(&opts, &err);
	snprintf(path, sizeof(path), "%s/identities.json", argv[1]);
	tf_options_set(&opts, "identities", path, &err);
	snprintf(path, sizeof(path), "%s/policies", argv[1]);
	tf_options_set(&opts, "policy_dir", path, &err);
	snprintf(path, sizeof(path), "%s/signing-key.pem", argv[1]);
	tf_options_set(&opts, "signing_key", path, &err);
	tf_options_set(&opts, "dev_key_autogen", "true", &err);

	rss_before = status_kb("VmRSS:");
	t0 = now_ns();
	if (tf_engine_new(&opts, &hooks, &engine, &err) != TF_OK) {
		fprintf(stderr, "policybench: %s\n", err.msg);
		return 1;
	}
	load_ns = now_ns() - t0;

	times = malloc((size_t)samples * sizeof(*times));
	if (times == NULL)
		return 1;
	/* What two clock readings cost, to subtract from each sample. */
	t0 = now_ns();
	for (int i = 0; i < 1000; i++)
		(void)now_ns();
	timer_ns = (now_ns() - t0) / 1000;
	for (long i = 0; i < samples; i++) {
		char user[32], topic[64];
		int64_t start;

		uint64_t p = next_random(&rng) % (uint64_t)policies;
		uint64_t c = next_random(&rng) % (uint64_t)clients;

		/* Every other sample is a client of policy p's first consumer org
		 * (org p+1, whose clients are c<org + k*orgs>): deliveries mostly
		 * go to subscribers that may have them. */
		if (i % 2 == 0)
			c = ((p + 1) % (uint64_t)orgs) + (uint64_t)orgs * (c % (uint64_t)(clients / orgs));
		snprintf(user, sizeof(user), "c%" PRIu64, c);
		snprintf(topic, sizeof(topic), "p%" PRIu64 "/s%" PRIu64 "/data", p,
			next_random(&rng) % 100);
		start = now_ns();
		allowed += tf_engine_may_receive(engine, user, user, topic, payload, sizeof(payload) - 1, false)
			== TF_ALLOW;
		times[i] = now_ns() - start - timer_ns;
	}
	qsort(times, (size_t)samples, sizeof(*times), cmp_i64);
	decision_median = times[samples / 2];
	decision_p99 = times[samples * 99 / 100];

	/* Deliveries counted as the engine counts them, each to a client of
	 * its policy's consumer org, within one minute. */
	rss_before = status_kb("VmRSS:");
	metrics = tf_metrics_new(now_ms);
	if (metrics == NULL)
		return 1;
	for (long i = 0; i < samples; i++) {
		char id[32], org[32], user[32];
		int64_t start;
		uint64_t p = next_random(&rng) % (uint64_t)policies;
		uint64_t o = (p + 1) % (uint64_t)orgs;
		uint64_t c = o + (uint64_t)orgs * (next_random(&rng) % (uint64_t)(clients / orgs));

		snprintf(id, sizeof(id), "p%" PRIu64, p);
		snprintf(org, sizeof(org), "o%" PRIu64, o);
		snprintf(user, sizeof(user), "c%" PRIu64, c);
		start = now_ns();
		tf_metrics_delivered(metrics, id, org, user, now_ms + i * 60000 / samples);
		times[i] = now_ns() - start - timer_ns;
	}
	qsort(times, (size_t)samples, sizeof(*times), cmp_i64);
	metrics_mb = (double)(status_kb("VmRSS:") - rss_before) / 1024.0;
	tf_metrics_free(metrics);
	printf("{\"policies\": %ld, \"clients\": %ld, \"load_s\": %.2f, \"rss_mb\": %.0f, "
	       "\"peak_rss_mb\": %.0f, \"samples\": %ld, \"allowed\": %ld, "
	       "\"decision_median_ns\": %" PRId64 ", \"decision_p99_ns\": %" PRId64 ", "
	       "\"set_mb\": %.0f, \"metrics_median_ns\": %" PRId64 ", "
	       "\"metrics_p99_ns\": %" PRId64 ", \"metrics_mb\": %.0f}\n",
	       policies, clients, (double)load_ns / 1e9,
	       (double)(status_kb("VmRSS:") - rss_before) / 1024.0,
	       (double)status_kb("VmHWM:") / 1024.0, samples, allowed,
	       decision_median, decision_p99,
	       (double)tf_policy_set_bytes(tf_engine_policies(engine)) / (1024.0 * 1024.0),
	       times[samples / 2], times[samples * 99 / 100], metrics_mb);
	free(times);
	tf_engine_free(engine);
	tf_options_free(&opts);
	return 0;
}
