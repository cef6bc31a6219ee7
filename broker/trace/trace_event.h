/* Trace events (operations-v1): what the trace store records, and the
 * exact bytes its hash chain covers.
 *
 * An event is a kind, a sequence number, a time and the kind's fields,
 * all strings, encoded as the stamps' signing input is (broker/stamp/fields.c):
 *
 *     trustflow-event-1\n
 *     kind:<len>:<kind>\n seq:<len>:<seq>\n ts:<len>:<ms>\n
 *     <field>:<len>:<value>\n ... (the kind's fields, in their order)
 *
 * and each event's chain hash is SHA-256(previous event's hash || these
 * bytes), with 32 zero bytes before the first event. So an auditor who
 * has the exported fields can rebuild every hash without trustflow's
 * code. */
#ifndef TF_TRACE_EVENT_H
#define TF_TRACE_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "broker/util/error.h"

enum tf_event_kind {
	TF_EVENT_MESSAGE,     /* a message received: published, denied, dropped, ... */
	TF_EVENT_DELIVERY,    /* a delivery made or withheld */
	TF_EVENT_RELEASE,     /* a held message released from quarantine */
	TF_EVENT_DISCARD,     /* a held message discarded */
	TF_EVENT_ALERT,       /* an alert raised */
	TF_EVENT_POLICY_SET,  /* a policy set loaded, or refused */
	TF_EVENT_POLICY,      /* a policy accepted for the first time (federation-v1) */
};
#define TF_EVENT_KINDS 7

#define TF_EVENT_MAX_FIELDS 15
#define TF_EVENT_MAX_BYTES  (1024u * 1024)

struct tf_event {
	enum tf_event_kind kind;
	uint64_t seq;
	int64_t ts_ms;
	/* The kind's fields, in the order tf_event_fields() gives; borrowed.
	 * A trailing field added to a kind later is NULL in events recorded
	 * before it (release and discard: "reason"; message: "of", "peer",
	 * "hops"; delivery:
	 * "client_id"). */
	const char *values[TF_EVENT_MAX_FIELDS];
};

/* The name of a kind ("message", "delivery", ...). */
const char *tf_event_kind_name(enum tf_event_kind kind);

/* The field names of a kind, in order (static), and how many. */
const char *const *tf_event_fields(enum tf_event_kind kind, size_t *count);

/* How many of a kind's fields every event of it has (the rest were
 * added later, and events recorded before may end without them). */
size_t tf_event_fields_min(enum tf_event_kind kind);

/* Encodes ev into buf of cap bytes; returns the length it needs (more
 * than cap: nothing useful was written). */
size_t tf_event_encode(const struct tf_event *ev, char *buf, size_t cap);

/* Decodes an encoded event of len bytes. The values are NUL-terminated
 * copies in scratch (at least len bytes), valid as long as scratch.
 * Errors: TF_ERR_INVALID, err saying what is wrong and at which byte. */
int tf_event_decode(const char *bytes, size_t len, struct tf_event *ev, char *scratch,
		size_t scratch_cap, struct tf_err *err);

/* A SHA-256 context for hashing many events in a row (the store's
 * writer, verify); NULL when out of memory. */
struct tf_event_hasher;
struct tf_event_hasher *tf_event_hasher_new(void);
void tf_event_hasher_free(struct tf_event_hasher *c);

/* The chain hash of an event: SHA-256(prev || bytes). c: a context from
 * tf_event_hasher_new, or NULL for a one-off (slower). */
void tf_event_chain(struct tf_event_hasher *c, const unsigned char prev[32], const char *bytes,
		size_t len, unsigned char out[32]);

#endif
