/* stampbench: what a stamp costs the broker's thread, and how much of it
 * is the Ed25519 signature itself.
 *
 * Times N stamps of a 256-byte payload through tf_signer_stamp (message
 * id, SHA-256, signing input, signature, base64) with deterministic
 * RFC 8032 signing, then N bare signatures of an input of the same length
 * with the same key, then N stamps with the pool of precomputed nonces
 * (the broker's default), and prints one JSON line with the mean of each
 * in microseconds. The pool case times only the broker thread's part: it
 * waits, untimed, for the workers to fill the pool before each round of
 * ROUND stamps, few enough that the workers stay asleep while it is timed
 * (on a broker they fill the pool on other cores), and reports how many
 * stamps still found it empty (pool_fallbacks). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "broker/stamp/provenance.h"

#define POOL_SIZE 32768
/* The workers wake once half of the pool is used (signer_pool.c's low
 * water): the last stamp of a round wakes them, to fill it again before
 * the next. */
#define ROUND (POOL_SIZE / 2 + 1)
/* A pool that is not full again by then never will be: the workers'
 * refill point moved, and ROUND with it. */
#define FILL_TIMEOUT_S 60

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits until the signer's pool is full again; exits when it stays
 * short (a bench that waits for ever says nothing). */
static void wait_for_a_full_pool(struct tf_signer *signer)
{
	struct timespec pause = { 0, 10000000 };
	struct tf_signer_stats st;
	double deadline = now_s() + FILL_TIMEOUT_S;

	for (tf_signer_stats(signer, &st); st.level < st.size; tf_signer_stats(signer, &st)) {
		if (now_s() > deadline) {
			fprintf(stderr, "stampbench: the signing pool stays at %" PRIu32 " of %" PRIu32
				" nonces: its workers are not woken by a round of %d stamps\n",
				st.level, st.size, ROUND);
			exit(1);
		}
		nanosleep(&pause, NULL);
	}
}

/* The mean broker-thread cost of n stamps with the pool, in us. */
static double pool_stamp_us(struct tf_signer *signer, struct tf_stamp_request *req, long n)
{
	struct tf_stamp_buf buf;
	struct tf_stamp stamp;
	struct tf_err err;
	double total = 0;

	for (long done = 0; done < n;) {
		long round = n - done < ROUND ? n - done : ROUND;
		double t0;

		wait_for_a_full_pool(signer);
		t0 = now_s();
		for (long i = 0; i < round; i++, done++) {
			req->ts_ms = 1764158400000LL + done;
			req->seq = (uint64_t)done + 1;
			if (tf_signer_stamp(signer, req, &buf, &stamp, &err) != TF_OK)
				return -1;
		}
		total += now_s() - t0;
	}
	return total * 1e6 / (double)n;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/tf-stampbench-XXXXXX", path[64], input[1024];
	unsigned char payload[256], sig[64];
	struct tf_signer *signer;
	struct tf_stamp_buf buf;
	struct tf_stamp stamp;
	struct tf_err err;
	struct tf_stamp_request req = {
		.broker = "city-broker-1", .org = "city-waterworks", .client = "ww-sensor-01",
		.policy = "water-telemetry@3", .topic = "city/water/d7/telemetry",
		.payload = payload, .payloadlen = sizeof(payload),
	};
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
	double t0, stamp_us, sign_us, pool_us;
	struct tf_signer_stats st;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	size_t input_len, sig_len;
	EVP_MD_CTX *ctx;
	EVP_PKEY *key;
	FILE *f;

	if (n <= 0 || mkdtemp(dir) == NULL)
		return 2;
	snprintf(path, sizeof(path), "%s/key.pem", dir);
	if (tf_signer_generate(path, &signer, &err) != TF_OK) {
		fprintf(stderr, "stampbench: %s\n", err.msg);
		return 1;
	}
	memset(payload, 'x', sizeof(payload));

	t0 = now_s();
	for (long i = 0; i < n; i++) {
		req.ts_ms = 1764158400000LL + i;
		req.seq = (uint64_t)i + 1;
		if (tf_signer_stamp(signer, &req, &buf, &stamp, &err) != TF_OK)
			return 1;
	}
	stamp_us = (now_s() - t0) * 1e6 / (double)n;

	/* The signature alone, over an input as long as the last stamp's. */
	input_len = tf_stamp_signing_input(&stamp, input, sizeof(input));
	f = fopen(path, "r");
	key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	if (f != NULL)
		fclose(f);
	ctx = EVP_MD_CTX_new();
	if (key == NULL || ctx == NULL || input_len > sizeof(input))
		return 1;
	t0 = now_s();
	for (long i = 0; i < n; i++) {
		sig_len = sizeof(sig);
		input[0] = (char)i;
		if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1
				|| EVP_DigestSign(ctx, sig, &sig_len, (unsigned char *)input, input_len) != 1)
			return 1;
	}
	sign_us = (now_s() - t0) * 1e6 / (double)n;

	/* The pool, with the workers the broker would start (auto). */
	if (tf_signer_use_pool(signer, cores > 2 ? (unsigned)(cores - 1) : 1, POOL_SIZE, &err)
			!= TF_OK) {
		fprintf(stderr, "stampbench: %s\n", err.msg);
		return 1;
	}
	pool_us = pool_stamp_us(signer, &req, n);
	if (pool_us < 0)
		return 1;
	tf_signer_stats(signer, &st);

	printf("{\"stamps\": %ld, \"stamp_us\": %.2f, \"signature_us\": %.2f, \"rest_us\": %.2f, "
	       "\"pool_stamp_us\": %.2f, \"pool_workers\": %u, \"pool_fallbacks\": %" PRIu64 "}\n",
	       n, stamp_us, sign_us, stamp_us - sign_us, pool_us, st.workers, st.fallbacks);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	tf_signer_free(signer);
	unlink(path);
	rmdir(dir);
	return 0;
}
