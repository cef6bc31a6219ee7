/* A quarantined message as the trace store keeps it until it is released
 * or discarded: its topic, payload, QoS, retain flag and the stamp it got
 * when the broker received it (it is released with that stamp), and for a
 * message a peer relayed, the hop records of the stamps before it
 * (federation-v1). */
#ifndef TF_HELD_H
#define TF_HELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/stamp/forms.h"
#include "broker/stamp/provenance.h"

/* The largest payload quarantine holds; a bigger message under
 * quarantine is refused. */
#define TF_HELD_MAX_PAYLOAD (2u * 1024 * 1024)

struct tf_held {
	const char *topic;
	const void *payload;
	uint32_t payloadlen;
	int qos;
	bool retain;
	struct tf_stamp stamp;   /* v ... sig (and prev); topic is the message's */
	uint32_t n_hops;         /* 0 unless relayed */
	const char *hops[TF_CHAIN_MAX];
};

/* Scratch that tf_held_decode needs for a record of len bytes. */
#define TF_HELD_SCRATCH(len) ((len) + 32)

/* The record of m (caller owns; free()), and its length; NULL when out of
 * memory or the payload is too large. */
void *tf_held_encode(const struct tf_held *m, uint32_t *len);

/* Reads a record; m's strings point into scratch (at least
 * TF_HELD_SCRATCH(len) bytes), its payload into record. Returns false when
 * it is malformed. */
bool tf_held_decode(const void *record, size_t len, struct tf_held *m, char *scratch,
		size_t scratch_cap);

#endif
