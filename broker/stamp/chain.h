/* Chains of stamps (federation-v1, sections 4 and 5): a message relayed
 * from broker to broker carries the stamp of each, oldest first, the
 * origin's (format 1) and then one format-2 stamp per relaying broker,
 * each linked to the one before by prev, the first 16 bytes of SHA-256
 * over that one's hop record. A message published here is a chain of one.
 *
 * Reading and checking only; the broker's thread checks what a peer hands
 * it (broker/engine/engine_relay.c), tfctl verify and the tests what a
 * subscriber gets. */
#ifndef TF_STAMP_CHAIN_H
#define TF_STAMP_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "broker/stamp/forms.h"
#include "broker/stamp/provenance.h"

struct tf_chain {
	uint32_t n;                            /* stamps, the newest included */
	struct tf_stamp stamps[TF_CHAIN_MAX];  /* oldest first: the origin's, ..., the newest */
	/* links[i]: the prev that the stamp after stamps[i] must carry, made
	 * from stamps[i]'s hop record as it arrived. */
	char links[TF_CHAIN_MAX - 1][TF_PREV_B64_LEN + 1];
	char sha256[TF_SHA256_HEX + 1];        /* of the payload received */
};

/* The link to a hop record of len bytes: standard base64 of the first 16
 * bytes of SHA-256 over them. */
void tf_chain_link(const char *record, size_t len, char out[TF_PREV_B64_LEN + 1]);

/* Reads the whole chain off a reader that has been offered every user
 * property (broker/stamp/forms.h): its hop records and its newest stamp,
 * in place; out's stamps point into r's values, r and topic (borrowed,
 * as for tf_stamp_reader_finish). The hop records have no sha256 of their
 * own: theirs is the payload's. Returns TF_STAMP_VALID when read; else
 * the error of the newest stamp (tf_stamp_reader_finish) or of a hop
 * record (tf_stamp_record_decode), or TF_STAMP_CHAIN_TOO_LONG. */
enum tf_stamp_check tf_chain_read(struct tf_stamp_reader *r, const char *topic,
		const void *payload, size_t payloadlen, struct tf_chain *out);

/* Checks how the stamps hang together, without their signatures: the
 * newest was made for topic (the one the message arrived on); the
 * origin's alone is format 1, every later one format 2 and linked by its
 * prev to the record before; all name one message id and one policy; no
 * broker stamps twice. Returns TF_STAMP_VALID, TF_STAMP_MISSING,
 * TF_STAMP_MALFORMED (a format where the other belongs),
 * TF_STAMP_TOPIC_MISMATCH, TF_STAMP_BROKEN_CHAIN or TF_STAMP_LOOP, and in
 * *at the index of the stamp at fault. */
enum tf_stamp_check tf_chain_check_links(const struct tf_chain *c, const char *topic,
		uint32_t *at);

/* What a receiver checks (federation-v1, section 5): the links, then each
 * stamp, newest first, over payload under keys (tf_stamp_check). Each
 * stamp must verify "with its broker's key": bind every key of keys to its
 * broker (tf_keyring_bind), or a key trusted for any broker lets its
 * holder make up stamps of other brokers, a whole path through them
 * included. Returns the first failure, its stamp's index in *at. */
enum tf_stamp_check tf_chain_check(const struct tf_chain *c, const struct tf_keyring *keys,
		const char *topic, const void *payload, size_t payloadlen, uint32_t *at);

#endif
