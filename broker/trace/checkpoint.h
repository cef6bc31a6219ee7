/* Trace checkpoints (operations-v1): the broker's signature over the
 * sequence number and chain hash of the last event recorded, so that
 * parties outside the broker can keep proof of what the trace held.
 *
 * Published and exported as JSON {"broker", "kid", "seq", "hash", "ts",
 * "sig"}; the signature covers
 *
 *     trustflow-checkpoint-1\n
 *     broker:<len>:<broker>\n kid:<len>:<kid>\n seq:<len>:<seq>\n
 *     hash:<len>:<hash>\n ts:<len>:<ts>\n
 *
 * in the encoding of stamps (broker/stamp/fields.c). */
#ifndef TF_CHECKPOINT_H
#define TF_CHECKPOINT_H

#include <stdint.h>

#include "broker/util/error.h"
#include "broker/stamp/provenance.h"

#define TF_BROKER_ID_MAX 128

struct tf_checkpoint {
	char broker[TF_BROKER_ID_MAX + 1];
	char kid[TF_KID_LEN + 1];
	uint64_t seq;                   /* of the last event covered */
	char hash[TF_SHA256_HEX + 1];   /* that event's chain hash */
	int64_t ts_ms;
	char sig[TF_SIG_B64_LEN + 1];
};

/* Fills cp (broker, kid from the signer, seq, hash, ts) and signs it.
 * Errors: TF_ERR_INVALID (broker id too long, OpenSSL refused). */
int tf_checkpoint_sign(struct tf_checkpoint *cp, struct tf_signer *signer, const char *broker,
		uint64_t seq, const unsigned char hash[32], int64_t ts_ms, struct tf_err *err);

/* Checks cp's signature against the keys of ring. */
enum tf_stamp_check tf_checkpoint_check(const struct tf_checkpoint *cp,
		const struct tf_keyring *ring);

/* The JSON form (caller owns; free()), or NULL when out of memory. */
char *tf_checkpoint_to_json(const struct tf_checkpoint *cp);

/* Parses the JSON form. Errors: TF_ERR_INVALID (err says which member is
 * missing or malformed). */
int tf_checkpoint_from_json(const char *text, size_t len, struct tf_checkpoint *cp,
		struct tf_err *err);

/* The same from a parsed object (o may be NULL: not an object). */
struct cJSON;
int tf_checkpoint_from_object(const struct cJSON *o, struct tf_checkpoint *cp,
		struct tf_err *err);

#endif
