/* A pool of precomputed Ed25519 nonces, so that the broker's thread signs
 * in a few microseconds instead of twenty-odd.
 *
 * An Ed25519 signature is R || S with R = r·B and S = r + k·a mod L,
 * k = SHA-512(R || A || M) mod L. A verifier checks only [S]B = R + [k]A
 * and never learns how r was chosen, so r can be drawn before the message
 * exists and R (nearly all of a signature's cost) computed on other cores.
 * Worker threads fill the pool; tf_signer_pool_sign takes one (r, R) and
 * does only the hash and two scalar operations. The signatures are
 * ordinary Ed25519 signatures that every verifier accepts.
 *
 * What keeps the key safe (the whole key leaks from two signatures whose
 * nonces are equal or related, and slowly from biased nonces):
 * - r = SHA-512(secret prefix || 32 fresh random bytes || a counter that
 *   never repeats in the process || pid) reduced mod L over all 64 bytes:
 *   uniform mod L, and unique and secret even if the random generator
 *   fails (it is hedged by the prefix and the counter). No r is derived
 *   from another.
 * - each (r, R) is taken once and wiped in the pool as it is taken; the
 *   caller's copy of r is wiped after use;
 * - the pool, the secret scalar and the prefix live in one region, locked
 *   in memory where the system allows (never swapped, left out of core
 *   dumps) and wiped when the pool stops; nothing is ever written to disk;
 * - a pool filled in one process is never used in another: the first
 *   signature in a forked child discards the whole pool and starts the
 *   workers again there.
 *
 * The key itself stays in OpenSSL (provenance.c); this module uses
 * libsodium for the group and scalar arithmetic and its SHA-512. No
 * mosquitto function is called from here: the workers call only libsodium
 * and OpenSSL's random generator. */
#ifndef TF_SIGNER_POOL_H
#define TF_SIGNER_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/util/error.h"

#define TF_POOL_MAX_WORKERS 64
#define TF_POOL_MIN_SIZE 64
#define TF_POOL_MAX_SIZE (1u << 20)

struct tf_signer_pool;

struct tf_signer_pool_stats {
	uint32_t workers;        /* threads filling the pool */
	uint32_t size;           /* nonces it holds when full */
	uint32_t level;          /* nonces in it now */
	uint64_t signatures;     /* signatures made with a pooled nonce */
	uint64_t empty;          /* signatures asked for while it was empty */
	uint64_t restarts;       /* times it was discarded in a forked child */
	bool locked;             /* its memory is locked (not swapped) */
};

/* Starts a pool for the Ed25519 key with the 32-byte seed (the raw
 * private key of RFC 8032) and raw public key pub, filled by workers
 * threads (0 to TF_POOL_MAX_WORKERS; 0 leaves it empty, so that every
 * signature takes the caller's ordinary path: for tests) up to size nonces
 * (TF_POOL_MIN_SIZE to TF_POOL_MAX_SIZE). seed and pub are borrowed for the call only; the
 * caller wipes its seed. Checks that the seed gives pub. On success *out
 * is the pool (caller owns; stop with tf_signer_pool_stop). Errors:
 * TF_ERR_INVALID (out of range, or seed and pub do not match),
 * TF_ERR_NOMEM, TF_ERR_IO (no thread could be started). A failure to lock
 * the memory is not an error: stats.locked says so, for the log. */
int tf_signer_pool_start(const unsigned char seed[32], const unsigned char pub[32],
		unsigned workers, uint32_t size, struct tf_signer_pool **out, struct tf_err *err);

/* Signs data with a pooled nonce: sig is R || S. Returns false, without
 * waiting, when the pool is empty (the caller then signs the ordinary
 * way). Safe from any thread; cheap: a mutex, a copy, one SHA-512 over
 * 64 + len bytes and two scalar operations, no allocation. */
bool tf_signer_pool_sign(struct tf_signer_pool *p, const void *data, size_t len,
		unsigned char sig[64]);

/* The pool's counters now. Safe from any thread. */
void tf_signer_pool_stats(struct tf_signer_pool *p, struct tf_signer_pool_stats *out);

/* Stops and joins the workers, wipes and frees the pool. NULL is fine. */
void tf_signer_pool_stop(struct tf_signer_pool *p);

#endif
