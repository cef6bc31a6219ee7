/* Unit tests for broker/stamp/signer_pool.c and the signer's use of it:
 * every pooled signature is an ordinary Ed25519 signature (checked with
 * OpenSSL and libsodium), no nonce is used twice, an empty pool falls back
 * to RFC 8032 and counts it, and a forked child never uses its parent's
 * nonces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "broker/stamp/provenance.h"
#include "tests/unit/vector.h"
#include "broker/stamp/signer_pool.h"

/* RFC 8032's test 1 key, which is also provenance-v1's test vector key. */
static const unsigned char seed1[32] = {
	0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c,
	0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae,
	0x7f, 0x60,
};
static const unsigned char pub1[32] = {
	0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07,
	0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07,
	0x51, 0x1a,
};
/* RFC 8032 test 1: the signature of the empty message. */
static const char rfc_sig_empty[] =
	"5VZDAMNgrHKQhuLMgG6CioSHfx645dl02HPgZSJJAVVfuIIVkKM7rMYeOXAc+bRr0lv18FlbviRlUUFDjnoQCw==";

#define MANY 100000

/* Waits (without measuring anything) until the pool signs. */
static void pool_sign_waiting(struct tf_signer_pool *p, const void *data, size_t len,
		unsigned char sig[64])
{
	struct timespec pause = { 0, 1000000 };

	while (!tf_signer_pool_sign(p, data, len, sig))
		nanosleep(&pause, NULL);
}

static void wait_until_full(struct tf_signer_pool *p)
{
	struct timespec pause = { 0, 1000000 };
	struct tf_signer_pool_stats st;

	for (tf_signer_pool_stats(p, &st); st.level < st.size; tf_signer_pool_stats(p, &st))
		nanosleep(&pause, NULL);
}

static int compare_r(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

static bool openssl_verifies(EVP_PKEY *key, const void *data, size_t len,
		const unsigned char sig[64])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1
		&& EVP_DigestVerify(ctx, sig, 64, data, len) == 1;

	EVP_MD_CTX_free(ctx);
	return ok;
}

/* MANY pooled signatures over distinct messages: each verifies with
 * OpenSSL and with libsodium, and no R (the nonce's point) repeats. */
static void many_pool_signatures_verify_and_never_repeat_r(void **state)
{
	EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub1, 32);
	unsigned char (*rs)[32] = malloc((size_t)MANY * 32);
	struct tf_signer_pool *p;
	struct tf_signer_pool_stats st;
	struct tf_err err;

	(void)state;
	assert_non_null(key);
	assert_non_null(rs);
	assert_int_equal(tf_signer_pool_start(seed1, pub1, 1, 32768, &p, &err), TF_OK);
	for (int i = 0; i < MANY; i++) {
		char msg[64];
		int len = snprintf(msg, sizeof(msg), "message %d", i);
		unsigned char sig[64];

		pool_sign_waiting(p, msg, (size_t)len, sig);
		if (!openssl_verifies(key, msg, (size_t)len, sig))
			fail_msg("OpenSSL refuses pooled signature %d", i);
		if (crypto_sign_verify_detached(sig, (const unsigned char *)msg,
				(unsigned long long)len, pub1) != 0)
			fail_msg("libsodium refuses pooled signature %d", i);
		memcpy(rs[i], sig, 32);
	}
	tf_signer_pool_stats(p, &st);
	assert_int_equal(st.signatures, MANY);
	assert_int_equal(st.workers, 1);
	assert_int_equal(st.size, 32768);
	tf_signer_pool_stop(p);
	qsort(rs, MANY, 32, compare_r);
	for (int i = 1; i < MANY; i++)
		if (memcmp(rs[i - 1], rs[i], 32) == 0)
			fail_msg("an R repeats among %d pooled signatures", MANY);
	free(rs);
	EVP_PKEY_free(key);
}

/* The same message signed twice gets two different R: nonces are fresh,
 * not derived from the message as in RFC 8032. */
static void the_same_message_gets_fresh_nonces(void **state)
{
	unsigned char a[64], b[64];
	struct tf_signer_pool *p;
	struct tf_err err;

	(void)state;
	assert_int_equal(tf_signer_pool_start(seed1, pub1, 1, 64, &p, &err), TF_OK);
	pool_sign_waiting(p, "", 0, a);
	pool_sign_waiting(p, "", 0, b);
	assert_int_equal(crypto_sign_verify_detached(a, (const unsigned char *)"", 0, pub1), 0);
	assert_int_equal(crypto_sign_verify_detached(b, (const unsigned char *)"", 0, pub1), 0);
	assert_memory_not_equal(a, b, 32);
	tf_signer_pool_stop(p);
}

static void bad_arguments_are_refused(void **state)
{
	unsigned char other[32];
	struct tf_signer_pool *p;
	struct tf_err err;

	(void)state;
	assert_int_equal(tf_signer_pool_start(seed1, pub1, TF_POOL_MAX_WORKERS + 1, 64, &p, &err),
		TF_ERR_INVALID);
	assert_null(p);
	assert_int_equal(tf_signer_pool_start(seed1, pub1, 1, TF_POOL_MIN_SIZE - 1, &p, &err),
		TF_ERR_INVALID);
	assert_int_equal(tf_signer_pool_start(seed1, pub1, 1, TF_POOL_MAX_SIZE + 1, &p, &err),
		TF_ERR_INVALID);
	memcpy(other, pub1, 32);
	other[0] ^= 1;
	assert_int_equal(tf_signer_pool_start(seed1, other, 1, 64, &p, &err), TF_ERR_INVALID);
	assert_non_null(strstr(err.msg, "does not give its public key"));
}

/* A child of fork discards the nonces it inherited and fills its own:
 * none of the R it signs with is one its parent signs with. */
static void a_forked_child_never_uses_the_parents_nonces(void **state)
{
	unsigned char parent_r[64][32], child_r[32];
	struct tf_signer_pool *p;
	struct tf_signer_pool_stats st;
	struct tf_err err;
	int fds[2], status;
	pid_t child;

	(void)state;
	assert_int_equal(tf_signer_pool_start(seed1, pub1, 1, 64, &p, &err), TF_OK);
	wait_until_full(p);
	assert_int_equal(pipe(fds), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		unsigned char sig[64];

		pool_sign_waiting(p, "child", 5, sig);
		tf_signer_pool_stats(p, &st);
		if (st.restarts != 1 || st.workers != 1
				|| crypto_sign_verify_detached(sig, (const unsigned char *)"child", 5,
					pub1) != 0
				|| write(fds[1], sig, 32) != 32)
			_exit(1);
		tf_signer_pool_stop(p);
		_exit(0);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], child_r, 32), 32);
	close(fds[0]);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* The parent's pool was full at the fork: these are the nonces the
	 * child inherited. */
	for (int i = 0; i < 64; i++) {
		unsigned char sig[64];

		assert_true(tf_signer_pool_sign(p, "parent", 6, sig));
		memcpy(parent_r[i], sig, 32);
		assert_memory_not_equal(parent_r[i], child_r, 32);
	}
	tf_signer_pool_stats(p, &st);
	assert_int_equal(st.restarts, 0);
	tf_signer_pool_stop(p);
}

/* --- the signer with a pool ------------------------------------------------- */

struct fixture {
	struct vector_keys keys;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL || vector_keys_open(&f->keys, "tf-pool") != 0)
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

/* With no worker the pool stays empty: each signature is RFC 8032's
 * (the same bytes as without a pool) and is counted as a fallback. */
static void an_empty_pool_falls_back_to_rfc8032_and_counts_it(void **state)
{
	struct fixture *f = *state;
	struct tf_signer_stats st;
	char sig[TF_SIG_B64_LEN + 1];
	struct tf_err err;

	assert_int_equal(tf_signer_use_pool(f->keys.signer, 0, 64, &err), TF_OK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tf_signer_sign(f->keys.signer, "", 0, sig, &err), TF_OK);
		assert_string_equal(sig, rfc_sig_empty);
	}
	tf_signer_stats(f->keys.signer, &st);
	assert_true(st.pool);
	assert_int_equal(st.fallbacks, 3);
	assert_int_equal(st.pool_signatures, 0);
	assert_int_equal(st.level, 0);
}

/* Without a pool the signer is deterministic and says so. */
static void without_a_pool_signing_is_deterministic(void **state)
{
	struct fixture *f = *state;
	struct tf_signer_stats st;
	char sig[TF_SIG_B64_LEN + 1];
	struct tf_err err;

	assert_int_equal(tf_signer_sign(f->keys.signer, "", 0, sig, &err), TF_OK);
	assert_string_equal(sig, rfc_sig_empty);
	tf_signer_stats(f->keys.signer, &st);
	assert_false(st.pool);
	assert_int_equal(st.fallbacks, 0);
}

/* Stamps signed with pooled nonces pass tf_stamp_check, and their
 * signatures differ from the deterministic one. */
static void pooled_stamps_check(void **state)
{
	struct fixture *f = *state;
	struct tf_signer_stats st;
	struct tf_stamp_request req = {
		.broker = "city-broker-1", .org = "city-waterworks", .client = "ww-sensor-01",
		.policy = "water-telemetry@3", .topic = "city/water/d7/telemetry",
		.payload = "{\"flow\":12.5,\"pressure\":3.1}", .payloadlen = 28,
		.ts_ms = 1764158400000LL, .seq = 42, .id = "019ac008e6005f1e2d3c4b5a69780123",
	};
	struct tf_stamp_buf buf;
	struct tf_stamp stamp;
	struct tf_err err;
	int pooled = 0;

	assert_int_equal(tf_signer_use_pool(f->keys.signer, 1, 64, &err), TF_OK);
	assert_int_equal(tf_signer_use_pool(f->keys.signer, 1, 64, &err), TF_ERR_INVALID);
	for (int i = 0; i < 200; i++) {
		req.seq = 42 + (uint64_t)i;
		assert_int_equal(tf_signer_stamp(f->keys.signer, &req, &buf, &stamp, &err), TF_OK);
		assert_int_equal(tf_stamp_check(f->keys.ring, &stamp, req.payload, req.payloadlen),
			TF_STAMP_VALID);
	}
	/* And once the pool holds a nonce, a stamp takes it. */
	for (tf_signer_stats(f->keys.signer, &st); st.level == 0; tf_signer_stats(f->keys.signer, &st))
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	pooled = (int)st.pool_signatures;
	req.seq = 42;
	assert_int_equal(tf_signer_stamp(f->keys.signer, &req, &buf, &stamp, &err), TF_OK);
	assert_int_equal(tf_stamp_check(f->keys.ring, &stamp, req.payload, req.payloadlen),
		TF_STAMP_VALID);
	assert_string_not_equal(stamp.sig, "CJfrfKKvCkudXGIoZC4RPCxnDG0TyWot9cI5PwOqOxK8v/"
		"QXnc6h0XNHbmgyfGlzX51niaIue9cmM6BIgsLnBQ==");
	tf_signer_stats(f->keys.signer, &st);
	assert_int_equal(st.pool_signatures, (uint64_t)pooled + 1);
	assert_int_equal(st.pool_signatures + st.fallbacks, 201);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(many_pool_signatures_verify_and_never_repeat_r),
		cmocka_unit_test(the_same_message_gets_fresh_nonces),
		cmocka_unit_test(bad_arguments_are_refused),
		cmocka_unit_test(a_forked_child_never_uses_the_parents_nonces),
		T(an_empty_pool_falls_back_to_rfc8032_and_counts_it),
		T(without_a_pool_signing_is_deterministic),
		T(pooled_stamps_check),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
