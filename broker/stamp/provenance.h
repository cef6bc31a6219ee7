/* The provenance stamp of provenance-v1: the tf-* properties that say where
 * a message came from, under which policy, and that its payload is
 * unchanged, signed with the broker's Ed25519 key.
 *
 * Signing runs on the broker's thread for every stamped message, so a
 * signer keeps its key loaded and its buffers allocated: making a stamp
 * allocates nothing of its own (OpenSSL's one-shot Ed25519 context aside)
 * and formats no strings beyond the fields themselves. With a pool of
 * precomputed nonces (tf_signer_use_pool, broker/stamp/signer_pool.h) the
 * costly part of each signature is done ahead on worker threads; without
 * one, or when the pool is empty, a signature is RFC 8032's deterministic
 * one. Either is an ordinary Ed25519 signature. */
#ifndef TF_PROVENANCE_H
#define TF_PROVENANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/util/error.h"

#define TF_KID_LEN      16  /* hex digits of a key id */
#define TF_MSGID_LEN    32  /* hex digits of a message id */
#define TF_SHA256_HEX   64
#define TF_SIG_B64_LEN  88  /* a 64-byte signature in base64 with padding */
#define TF_PREV_B64_LEN 24  /* tf-prev: 16 bytes in base64 with padding */

/* The fields of a stamp, in signing order, as the strings that travel as
 * tf-* user properties. Format 1 (provenance-v1), the stamp of the broker
 * a message was published on, has eleven (`topic` travels as the
 * message's own topic); format 2 (federation-v1), the stamp of a broker
 * relaying a message from a peer, adds `prev`, the link to the stamp
 * before it, and carries its topic as tf-topic. A stamp made here points
 * into a struct tf_stamp_buf and into the caller's strings. */
struct tf_stamp {
	const char *v, *id, *broker, *kid, *ts, *org, *client, *policy, *topic, *sha256, *seq;
	const char *sig;
	const char *prev;       /* format 2 only; NULL in format 1 */
};

/* Storage for the fields a signer writes. */
struct tf_stamp_buf {
	char id[TF_MSGID_LEN + 1];
	char kid[TF_KID_LEN + 1];
	char ts[21];
	char sha256[TF_SHA256_HEX + 1];
	char seq[21];
	char sig[TF_SIG_B64_LEN + 1];
	char prev[TF_PREV_B64_LEN + 1];
};

/* The user property names of the full form: format 1's eleven, in
 * signing order without `topic`, then format 2's two more, tf-topic and
 * tf-prev. */
#define TF_STAMP_NAMES_V1 11
#define TF_STAMP_NAMES_V2 13
extern const char *const tf_stamp_names[TF_STAMP_NAMES_V2];

/* --- signing -------------------------------------------------------------- */

struct tf_signer;

/* Loads a PKCS#8 PEM Ed25519 private key. The file must not be readable
 * or writable by group or others. On success *out is the signer (caller
 * owns; free with tf_signer_free). Errors: TF_ERR_IO (unreadable),
 * TF_ERR_INVALID (loose permissions, not an Ed25519 private key),
 * TF_ERR_NOMEM. */
int tf_signer_load(const char *path, struct tf_signer **out, struct tf_err *err);

/* Creates a new key in path (which must not exist), mode 0600, and loads
 * it. Errors as tf_signer_load. */
int tf_signer_generate(const char *path, struct tf_signer **out, struct tf_err *err);

/* Stops the signer's pool, if any, and frees it. */
void tf_signer_free(struct tf_signer *s);

/* From now on signs with a pool of up to size precomputed nonces filled
 * by workers threads (see tf_signer_pool_start for the ranges); without
 * this call a signer signs as RFC 8032 (deterministic: the same input
 * gives the same signature). Errors: those of tf_signer_pool_start,
 * TF_ERR_INVALID (a pool already, or the key cannot be read). */
int tf_signer_use_pool(struct tf_signer *s, unsigned workers, uint32_t size, struct tf_err *err);

/* How a signer signs, for the log and metrics. */
struct tf_signer_stats {
	bool pool;               /* false: deterministic RFC 8032 only */
	uint32_t workers;        /* the pool's: threads filling it */
	uint32_t size;           /* nonces it holds when full */
	uint32_t level;          /* nonces in it now */
	uint64_t pool_signatures;/* made with a pooled nonce */
	uint64_t fallbacks;      /* made the ordinary way because it was empty */
	uint64_t restarts;       /* times it was discarded in a forked child */
	bool locked;             /* its memory is locked (not swapped) */
};

/* The counters now; safe from any thread. */
void tf_signer_stats(const struct tf_signer *s, struct tf_signer_stats *out);

/* The key id (borrowed, valid while the signer lives). */
const char *tf_signer_kid(const struct tf_signer *s);

/* The public key as a SubjectPublicKeyInfo PEM (borrowed, as above). */
const char *tf_signer_public_pem(const struct tf_signer *s);

/* What a stamp says about one message. */
struct tf_stamp_request {
	const char *broker;
	const char *org;         /* "" when unidentified */
	const char *client;
	const char *policy;      /* "id@version", or "" when ungoverned */
	const char *topic;       /* as delivered */
	const void *payload;
	size_t payloadlen;
	int64_t ts_ms;           /* receive time */
	uint64_t seq;
	const char *id;          /* NULL: make one from ts_ms and random bytes */
	const char *prev;        /* NULL: a format-1 stamp; else a relayed message's
	                          * format-2 stamp linked to the stamp before by prev */
};

/* Makes and signs a stamp; its fields point into buf and into req's
 * strings (both must outlive the stamp). One thread at a time (the
 * broker's): the signer keeps its buffers. Errors: TF_ERR_NOMEM, or
 * TF_ERR_INVALID when OpenSSL refuses (err says why). */
int tf_signer_stamp(struct tf_signer *s, const struct tf_stamp_request *req,
		struct tf_stamp_buf *buf, struct tf_stamp *out, struct tf_err *err);

/* Signs data with the signer's key: the 64-byte Ed25519 signature in
 * standard base64 with padding. Safe from any thread, beside
 * tf_signer_stamp on another. Errors: TF_ERR_INVALID (OpenSSL refused). */
int tf_signer_sign(struct tf_signer *s, const void *data, size_t len,
		char sig_b64[TF_SIG_B64_LEN + 1], struct tf_err *err);

/* A new message id (the format of tf-id) for time ts_ms. The broker's
 * thread only, like tf_signer_stamp. Errors:
 * TF_ERR_INVALID (no random bytes). */
int tf_signer_make_id(struct tf_signer *s, int64_t ts_ms, char out[TF_MSGID_LEN + 1],
		struct tf_err *err);

/* --- checking ------------------------------------------------------------- */

/* Public keys by key id, for checking stamps made before and after a
 * rotation, each trusted for any broker or bound to one (tf_keyring_bind).
 * A chain of stamps (federation-v1) names a broker in each stamp, and each
 * must be signed with that broker's key: with every key bound, a stamp
 * naming broker-b under broker-a's key fails, where an unbound key of
 * broker-a would vouch for any broker id its holder writes. */
struct tf_keyring;

struct tf_keyring *tf_keyring_new(void);
void tf_keyring_free(struct tf_keyring *r);

/* Adds a SubjectPublicKeyInfo (or private PKCS#8: its public half) PEM
 * from memory or a file. Returns TF_OK, TF_ERR_INVALID (not an Ed25519
 * key), TF_ERR_IO, TF_ERR_NOMEM. kid_out (TF_KID_LEN + 1 bytes) may be
 * NULL. */
int tf_keyring_add_pem(struct tf_keyring *r, const char *pem, size_t len, char *kid_out,
		struct tf_err *err);
int tf_keyring_add_file(struct tf_keyring *r, const char *path, char *kid_out,
		struct tf_err *err);

/* Binds the key kid, already in the ring, to broker: from now on
 * tf_stamp_check accepts it only on a stamp whose broker is that one
 * (TF_STAMP_WRONG_BROKER otherwise). A key never bound is trusted for any
 * broker, as before. A key is bound to one broker at most; binding it to
 * the same one again is TF_OK. Errors: TF_ERR_INVALID (no such key, an
 * empty broker id, a key bound to another broker already), TF_ERR_NOMEM. */
int tf_keyring_bind(struct tf_keyring *r, const char *kid, const char *broker,
		struct tf_err *err);

/* The number of keys, and the i-th key id (borrowed, valid while the
 * ring lives). */
int tf_keyring_count(const struct tf_keyring *r);
const char *tf_keyring_kid(const struct tf_keyring *r, int i);

/* The public key with kid as a SubjectPublicKeyInfo PEM (caller owns;
 * free()), or NULL when the ring has no such key or memory is short. */
char *tf_keyring_public_pem(const struct tf_keyring *r, const char *kid);

enum tf_stamp_check {
	TF_STAMP_VALID = 0,
	TF_STAMP_MISSING,        /* a field is absent */
	TF_STAMP_MALFORMED,      /* a field breaks its format */
	TF_STAMP_UNKNOWN_KEY,    /* no public key for tf-kid */
	TF_STAMP_HASH_MISMATCH,  /* the payload is not the one stamped */
	TF_STAMP_BAD_SIGNATURE,  /* the fields or topic are not the ones signed */
	/* Reading a stamp off a message (broker/stamp/forms.h). */
	TF_STAMP_BOTH_FORMS,     /* tf-* properties and a `tf` property together */
	TF_STAMP_FIELD_COUNT,    /* a compact `tf` value with neither ten fields (format 1) nor
	                          * twelve and a prev (format 2), a hop record without twelve */
	TF_STAMP_BAD_ESCAPE,     /* a `%` in a compact value not followed by 25 or 7C */
	TF_STAMP_TOO_LONG,       /* a compact value longer than an MQTT string can be */
	/* Chains of stamps (federation-v1, broker/stamp/chain.h). */
	TF_STAMP_TOPIC_MISMATCH, /* a format-2 stamp's topic is not the arrival topic */
	TF_STAMP_BROKEN_CHAIN,   /* a prev link, a message id or a policy does not chain */
	TF_STAMP_LOOP,           /* a broker appears twice */
	TF_STAMP_CHAIN_TOO_LONG, /* more than TF_CHAIN_MAX stamps */
	TF_STAMP_WRONG_BROKER,   /* tf-kid names a key bound to another broker than tf-broker */
};

/* Checks a received stamp (fields from the tf-* properties, NULL where a
 * property was absent; topic the one it arrived on, or a format-2 stamp's
 * tf-topic) against the payload, by its format: a format-1 stamp has no
 * prev, a format-2 one a well-formed prev (its links are checked by
 * broker/stamp/chain.h). Its key is the one tf-kid names, and must be
 * bound to the stamp's broker or to none. Never allocates more than the
 * signing input. */
enum tf_stamp_check tf_stamp_check(const struct tf_keyring *r, const struct tf_stamp *stamp,
		const void *payload, size_t payloadlen);

/* Checks a signature (base64, as tf_signer_sign makes it) over data made
 * with the key kid, bound or not: VALID, UNKNOWN_KEY, MALFORMED or
 * BAD_SIGNATURE. */
enum tf_stamp_check tf_keyring_verify(const struct tf_keyring *r, const char *kid,
		const void *data, size_t len, const char *sig_b64);

/* "missing stamp", "unknown key", ... for tfctl verify's FAIL lines. */
const char *tf_stamp_check_reason(enum tf_stamp_check c);

/* --- pieces, for tests and tools ------------------------------------------ */

/* The signing input of a stamp (whose sig is ignored) into buf of cap
 * bytes; returns the length it needs, which is more than cap when it did
 * not fit. */
size_t tf_stamp_signing_input(const struct tf_stamp *stamp, char *buf, size_t cap);

/* The n bytes of in as 2n lowercase hex digits and a NUL, into out. */
void tf_hex(const unsigned char *in, size_t n, char *out);

/* The n bytes that hex[0..len) spells as tf_hex writes them, into out:
 * false unless len is 2n and every character a lowercase hex digit. */
bool tf_unhex(const char *hex, size_t len, unsigned char *out, size_t n);

/* SHA-256 of data, as 32 raw bytes. */
void tf_sha256(const void *data, size_t len, unsigned char out[32]);

/* SHA-256 of data as 64 lowercase hex digits and a NUL. */
void tf_sha256_hex(const void *data, size_t len, char out[TF_SHA256_HEX + 1]);

#endif
