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
 * stamps still found it empty (pool_fallbacks).
 *
 * `stampbench N relay` times instead what a broker relaying a peer's
 * message adds on its thread (federation-v1, section 4), and prints one
 * JSON line: checking the peer's stamp as the broker does (reading the
 * chain off the `tf` property, its links, tf_stamp_check: one Ed25519
 * verification and the payload's SHA-256), tf_stamp_check alone, and the
 * bare verification with OpenSSL and with libsodium; then the broker's own
 * format-2 stamp (the peer's hop record, its link, a signature), with
 * deterministic signing and with the pool, in rounds as above. The relay
 * figures are the calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so
 * that other load on a shared machine does not count in them; the pool's
 * workers run on threads of their own and do not count either. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "broker/stamp/chain.h"
#include "broker/stamp/forms.h"
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

/* The CPU time this thread has used. */
static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits until the signer's pool is full again; exits when it stays
 * short (a bench that waits for ever says nothing). */
/* A PEM private key file's key, or NULL. */
static EVP_PKEY *read_key(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;

	if (f != NULL)
		fclose(f);
	return key;
}

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

/* --- relay ------------------------------------------------------------------- */

/* The relaying broker's side of one message: what it needs of the peer's
 * stamp. */
struct relay_case {
	struct tf_signer *self;        /* this broker's signer */
	const struct tf_keyring *peer_keys;
	const struct tf_stamp *origin; /* the peer's stamp, as it signed it */
	const char *compact;           /* its `tf` property's value */
	const char *topic;
	const unsigned char *payload;
	size_t payloadlen;
};

/* What the broker does with a peer's message before delivering it: reads
 * the chain off its properties, checks the links and the newest stamp. */
static bool relay_check(const struct relay_case *rc)
{
	static char value[1024];
	struct tf_stamp_reader reader;
	struct tf_chain chain;
	uint32_t at;

	strcpy(value, rc->compact);
	memset(&reader, 0, sizeof(reader));
	return tf_stamp_reader_add(&reader, TF_STAMP_COMPACT_NAME, value)
		&& tf_chain_read(&reader, rc->topic, rc->payload, rc->payloadlen, &chain)
			== TF_STAMP_VALID
		&& tf_chain_check_links(&chain, rc->topic, &at) == TF_STAMP_VALID
		&& tf_stamp_check(rc->peer_keys, &chain.stamps[chain.n - 1], rc->payload,
			rc->payloadlen) == TF_STAMP_VALID;
}

/* The broker's own format-2 stamp on the relayed message: the peer's
 * stamp as a hop record, the link to it, then its own signature. */
static bool relay_stamp(const struct relay_case *rc, uint64_t seq)
{
	char record[1024], prev[TF_PREV_B64_LEN + 1];
	size_t len = tf_stamp_record_encode(rc->origin, record, sizeof(record));
	struct tf_stamp_request req = {
		.broker = "utility-broker-1", .org = "city-waterworks", .client = "bridge-city",
		.policy = rc->origin->policy, .topic = rc->topic, .payload = rc->payload,
		.payloadlen = rc->payloadlen, .ts_ms = 1764158400000LL + (int64_t)seq, .seq = seq,
		.id = rc->origin->id, .prev = prev,
	};
	struct tf_stamp_buf buf;
	struct tf_stamp stamp;
	struct tf_err err;

	if (len >= sizeof(record))
		return false;
	tf_chain_link(record, len, prev);
	return tf_signer_stamp(rc->self, &req, &buf, &stamp, &err) == TF_OK;
}

/* The mean broker-thread cost of n relay stamps with the pool, in us,
 * timed in rounds the workers refill between (as pool_stamp_us). */
static double pool_relay_stamp_us(const struct relay_case *rc, long n)
{
	double total = 0;

	for (long done = 0; done < n;) {
		long round = n - done < ROUND ? n - done : ROUND;
		double t0;

		wait_for_a_full_pool(rc->self);
		t0 = cpu_s();
		for (long i = 0; i < round; i++, done++)
			if (!relay_stamp(rc, (uint64_t)done + 1))
				return -1;
		total += cpu_s() - t0;
	}
	return total * 1e6 / (double)n;
}

static int relay_main(long n, const char *dir)
{
	char peer_path[64], self_path[64], compact[1024], input[1024];
	unsigned char payload[256], sig[66], pub[32];
	struct tf_signer *peer, *self;
	struct tf_keyring *ring = tf_keyring_new();
	struct tf_stamp_buf buf;
	struct tf_stamp origin;
	struct tf_err err;
	struct tf_stamp_request req = {
		.broker = "city-broker-1", .org = "city-waterworks", .client = "ww-sensor-01",
		.policy = "water-telemetry@3", .topic = "city/water/d7/telemetry",
		.payload = payload, .payloadlen = sizeof(payload), .ts_ms = 1764158400000LL,
		.seq = 1,
	};
	struct relay_case rc = {
		.peer_keys = ring, .origin = &origin, .compact = compact, .topic = req.topic,
		.payload = payload, .payloadlen = sizeof(payload),
	};
	double t0, check_us, verify_us, openssl_us, sodium_us, stamp_us, pool_us;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	struct tf_signer_stats st;
	size_t input_len, pub_len = sizeof(pub);
	EVP_MD_CTX *ctx;
	EVP_PKEY *key;

	snprintf(peer_path, sizeof(peer_path), "%s/peer.pem", dir);
	snprintf(self_path, sizeof(self_path), "%s/self.pem", dir);
	memset(payload, 'x', sizeof(payload));
	if (ring == NULL || sodium_init() < 0
			|| tf_signer_generate(peer_path, &peer, &err) != TF_OK
			|| tf_signer_generate(self_path, &self, &err) != TF_OK
			|| tf_keyring_add_file(ring, peer_path, NULL, &err) != TF_OK
			|| tf_signer_stamp(peer, &req, &buf, &origin, &err) != TF_OK
			|| tf_stamp_compact_encode(&origin, compact, sizeof(compact)) >= sizeof(compact)) {
		fprintf(stderr, "stampbench: cannot make the peer's stamp\n");
		return 1;
	}
	rc.self = self;
	if (!relay_check(&rc)) {
		fprintf(stderr, "stampbench: the peer's stamp does not check out\n");
		return 1;
	}

	t0 = cpu_s();
	for (long i = 0; i < n; i++)
		if (!relay_check(&rc))
			return 1;
	check_us = (cpu_s() - t0) * 1e6 / (double)n;

	t0 = cpu_s();
	for (long i = 0; i < n; i++)
		if (tf_stamp_check(ring, &origin, payload, sizeof(payload)) != TF_STAMP_VALID)
			return 1;
	verify_us = (cpu_s() - t0) * 1e6 / (double)n;

	/* The bare verification of the same signature over the same input. */
	input_len = tf_stamp_signing_input(&origin, input, sizeof(input));
	key = read_key(peer_path);
	ctx = EVP_MD_CTX_new();
	if (key == NULL || ctx == NULL || input_len > sizeof(input)
			|| EVP_PKEY_get_raw_public_key(key, pub, &pub_len) != 1
			|| EVP_DecodeBlock(sig, (const unsigned char *)origin.sig, TF_SIG_B64_LEN) != 66)
		return 1;
	t0 = cpu_s();
	for (long i = 0; i < n; i++)
		if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) != 1
				|| EVP_DigestVerify(ctx, sig, 64, (unsigned char *)input, input_len) != 1)
			return 1;
	openssl_us = (cpu_s() - t0) * 1e6 / (double)n;
	t0 = cpu_s();
	for (long i = 0; i < n; i++)
		if (crypto_sign_verify_detached(sig, (unsigned char *)input, input_len, pub) != 0)
			return 1;
	sodium_us = (cpu_s() - t0) * 1e6 / (double)n;

	t0 = cpu_s();
	for (long i = 0; i < n; i++)
		if (!relay_stamp(&rc, (uint64_t)i + 1))
			return 1;
	stamp_us = (cpu_s() - t0) * 1e6 / (double)n;

	if (tf_signer_use_pool(self, cores > 2 ? (unsigned)(cores - 1) : 1, POOL_SIZE, &err)
			!= TF_OK) {
		fprintf(stderr, "stampbench: %s\n", err.msg);
		return 1;
	}
	pool_us = pool_relay_stamp_us(&rc, n);
	if (pool_us < 0)
		return 1;
	tf_signer_stats(self, &st);

	printf("{\"relayed\": %ld, \"relay_check_us\": %.2f, \"stamp_check_us\": %.2f, "
	       "\"verify_openssl_us\": %.2f, \"verify_sodium_us\": %.2f, "
	       "\"relay_stamp_us\": %.2f, \"relay_stamp_pool_us\": %.2f, "
	       "\"relay_us\": %.2f, \"relay_pool_us\": %.2f, "
	       "\"pool_workers\": %u, \"pool_fallbacks\": %" PRIu64 "}\n",
	       n, check_us, verify_us, openssl_us, sodium_us, stamp_us, pool_us,
	       check_us + stamp_us, check_us + pool_us, st.workers, st.fallbacks);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	tf_keyring_free(ring);
	tf_signer_free(peer);
	tf_signer_free(self);
	unlink(peer_path);
	unlink(self_path);
	return 0;
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

	if (n <= 0 || mkdtemp(dir) == NULL)
		return 2;
	if (argc > 2 && strcmp(argv[2], "relay") == 0) {
		int status = relay_main(n, dir);

		rmdir(dir);
		return status;
	}
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
	key = read_key(path);
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
