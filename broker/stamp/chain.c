#include "broker/stamp/chain.h"

#include <string.h>

#include <openssl/evp.h>

void tf_chain_link(const char *record, size_t len, char out[TF_PREV_B64_LEN + 1])
{
	unsigned char digest[32];

	tf_sha256(record, len, digest);
	EVP_EncodeBlock((unsigned char *)out, digest, 16);
}

enum tf_stamp_check tf_chain_read(struct tf_stamp_reader *r, const char *topic,
		const void *payload, size_t payloadlen, struct tf_chain *out)
{
	enum tf_stamp_check rc;
	uint32_t n_hops = r->n_hops;

	out->n = 0;
	if (r->too_many_hops)
		return TF_STAMP_CHAIN_TOO_LONG;
	rc = tf_stamp_reader_finish(r, topic, payload, payloadlen, &out->stamps[n_hops]);
	if (rc != TF_STAMP_VALID)
		return rc;
	tf_sha256_hex(payload, payloadlen, out->sha256);
	for (uint32_t i = 0; i < n_hops; i++) {
		struct tf_stamp *st = &out->stamps[i];

		/* Linked as it arrived, before it is unescaped in place. */
		tf_chain_link(r->hops[i], strlen(r->hops[i]), out->links[i]);
		rc = tf_stamp_record_decode(r->hops[i], st);
		if (rc != TF_STAMP_VALID)
			return rc;
		st->sha256 = out->sha256;
	}
	out->n = n_hops + 1;
	return TF_STAMP_VALID;
}

/* Whether every field a link check reads is there. */
static bool has_fields(const struct tf_stamp *st)
{
	return st->v != NULL && st->id != NULL && st->broker != NULL && st->policy != NULL
		&& st->topic != NULL;
}

enum tf_stamp_check tf_chain_check_links(const struct tf_chain *c, const char *topic,
		uint32_t *at)
{
	const struct tf_stamp *origin = &c->stamps[0];

	*at = 0;
	if (c->n == 0)
		return TF_STAMP_MISSING;
	for (uint32_t i = 0; i < c->n; i++) {
		const struct tf_stamp *st = &c->stamps[i];

		*at = i;
		if (!has_fields(st))
			return TF_STAMP_MISSING;
		/* The origin's stamp is the one format-1 stamp. */
		if (i == 0 ? strcmp(st->v, "1") != 0 || st->prev != NULL
				: strcmp(st->v, "2") != 0 || st->prev == NULL)
			return TF_STAMP_MALFORMED;
		if (i > 0 && strcmp(st->prev, c->links[i - 1]) != 0)
			return TF_STAMP_BROKEN_CHAIN;
		if (strcmp(st->id, origin->id) != 0 || strcmp(st->policy, origin->policy) != 0)
			return TF_STAMP_BROKEN_CHAIN;
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(st->broker, c->stamps[j].broker) == 0)
				return TF_STAMP_LOOP;
	}
	*at = c->n - 1;
	if (strcmp(c->stamps[c->n - 1].topic, topic) != 0)
		return TF_STAMP_TOPIC_MISMATCH;
	return TF_STAMP_VALID;
}

enum tf_stamp_check tf_chain_check(const struct tf_chain *c, const struct tf_keyring *keys,
		const char *topic, const void *payload, size_t payloadlen, uint32_t *at)
{
	enum tf_stamp_check rc = tf_chain_check_links(c, topic, at);

	for (uint32_t i = c->n; rc == TF_STAMP_VALID && i-- > 0;) {
		*at = i;
		rc = tf_stamp_check(keys, &c->stamps[i], payload, payloadlen);
	}
	return rc;
}
