/* The trace store (operations-v1): trace events in an LMDB environment,
 * chained, indexed and checkpointed.
 *
 * One writer (the broker's trace writer thread) appends events in
 * batches; any number of readers, in this or other processes (tfctl),
 * query it meanwhile. Format 2, all integers big-endian so that they sort
 * by number:
 *
 *   records       seq(8)        -> chain hash(32) || record (broker/trace/record.h)
 *   names         number(4)     -> text NUL: what events name, interned
 *   name_ids      sha256(text)  -> number(4)
 *   by_id         message id(16)   => seq(8)
 *   by_policy     policy id's name => seq(8)
 *   by_publisher  client's name    => seq(8)
 *   by_recipient  client's name    => seq(8)
 *   by_topic      topic's name     => seq(8)
 *   by_sha        sha256(32)       => seq(8): messages filed by content
 *   recipients    policy id's name(4) client's name(4) => seq(8): deliveries made
 *   held          flow 0x00 seq(8) -> a quarantined message (broker/guard/held.h)
 *   checkpoints   seq(8)        -> checkpoint JSON
 *   meta          name          -> value; also "clientid:<client id>" -> the
 *                 identity that holds it ("u:<username>", or "c:" for a
 *                 client without one: broker/tracking/clientids.h)
 *
 * A record holds consecutive events (a message and its deliveries, say)
 * under the seq of its first; its chain hash is its last event's. An
 * index entry (=> : sorted fixed-size duplicates, in seq order) names a
 * record with an event under that key: by_id the events about a message
 * (the message, its deliveries, its release or discard, the view copies
 * made of it) and alerts by their id; by_policy the messages, deliveries
 * and alerts under a policy; by_publisher and by_topic the message
 * events; by_recipient the deliveries. A record is indexed once under
 * each key, however many of its events share it.
 *
 * by_sha holds only the message records the writer is asked to file by
 * content (tf_trace_input.file_sha256): those mosquitto may hand out
 * after the broker forgot their id, which a delivery then names by topic
 * and payload hash. Its keys are random, so each entry dirties a page of
 * its own; filing every message cost a single subscriber's stream about
 * a fifth of its rate (docs/benchmarks.md).
 *
 * Event times never decrease along the sequence (the store records the
 * later of an event's time and its predecessor's), so the events in a
 * time range are a range of sequence numbers.
 *
 * A store of format 1 (trustflow 0.1: one text event per entry of
 * "events") is not opened; tf_trace_migrate copies it into format 2. */
#ifndef TF_TRACE_STORE_H
#define TF_TRACE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/trace/checkpoint.h"
#include "broker/util/error.h"
#include "broker/trace/trace_event.h"

/* The longest flow name a held message is kept under, and a bound for
 * the ids callers pass in. */
#define TF_TRACE_KEY_TEXT_MAX 400

enum tf_trace_index {
	TF_INDEX_BY_ID,
	TF_INDEX_BY_POLICY,
	TF_INDEX_BY_PUBLISHER,
	TF_INDEX_BY_RECIPIENT,
	TF_INDEX_BY_TOPIC,
	TF_INDEX_BY_SHA,
};

struct tf_trace_store;

/* Opens (creating when writable) the store in directory dir. writable:
 * the one writer; otherwise a reader, which needs the directory to exist.
 * max_bytes: how far the writer may grow the map (0: no limit but the
 * disk's). Errors: TF_ERR_IO (err names dir and what LMDB said),
 * TF_ERR_INVALID (not a trustflow trace store, or another format),
 * TF_ERR_NOMEM. */
int tf_trace_open(const char *dir, bool writable, uint64_t max_bytes,
		struct tf_trace_store **out, struct tf_err *err);
void tf_trace_close(struct tf_trace_store *s);

/* --- writing (the writer's thread only) ----------------------------------- */

/* One event to append: the store gives it its sequence number and chain
 * hash. A delivery whose message id is unknown (values[0] "") names the
 * message's topic and payload sha256 instead; the store takes the id of
 * the latest such message filed by content, or leaves it empty. */
struct tf_trace_input {
	enum tf_event_kind kind;
	int64_t ts_ms;
	const char *values[TF_EVENT_MAX_FIELDS];
	const char *find_topic, *find_sha256;   /* NULL unless resolving */
	/* Files the message this event is about under by_sha by its payload
	 * hash (64 hex digits: a message event's own sha256, or the payload
	 * of a delivery's message), so that a later delivery naming it by
	 * content finds it. NULL: not filed. */
	const char *file_sha256;
	/* A message event that quarantines its message also keeps the
	 * message (hold_len bytes; broker/guard/held.h) under its flow, in the same
	 * transaction. NULL: nothing held. */
	const char *hold_flow;
	const void *hold;
	uint32_t hold_len;
	/* A release or discard event removes the held message: its flow and
	 * the seq of its message event. NULL: nothing removed. */
	const char *unhold_flow;
	uint64_t unhold_seq;
	/* Sets the setting meta_name to meta_value (tf_trace_meta) in the
	 * same transaction: a policy event and the version it makes the
	 * highest accepted are stored together or not at all. NULL: none. */
	const char *meta_name, *meta_value;
};

/* Appends n events in one transaction: all or nothing. They are visible
 * to readers at once and on disk after the next tf_trace_sync (a crash of
 * the process loses nothing appended; one of the machine, what was not
 * synced). Grows the map when full. Errors: TF_ERR_FULL (the map is at
 * max_bytes or the disk is full; nothing was written), TF_ERR_IO,
 * TF_ERR_NOMEM. */
int tf_trace_append(struct tf_trace_store *s, const struct tf_trace_input *in, size_t n,
		struct tf_err *err);

/* Stores a checkpoint made over the state after the last append. Errors
 * as tf_trace_append. */
int tf_trace_put_checkpoint(struct tf_trace_store *s, const struct tf_checkpoint *cp,
		struct tf_err *err);

/* Forces what was appended to disk. Errors: TF_ERR_IO. */
int tf_trace_sync(struct tf_trace_store *s, struct tf_err *err);

/* Removes the oldest records whose events are all before before_ms and
 * covered by the newest checkpoint, whole records only, stopping once
 * max_events events went (so the writer is not held up for long), with
 * their index entries and the checkpoints before the last removed event.
 * Names stay (a name table grows with what is new, not with traffic).
 * The last removed event's seq and chain hash become the anchor from
 * which the chain is verified; the next checkpoint proves it. *removed
 * says how many went. Errors as tf_trace_append. */
int tf_trace_prune(struct tf_trace_store *s, int64_t before_ms, size_t max_events,
		size_t *removed, struct tf_err *err);

/* The writer's state: last sequence number, its chain hash (32 zero
 * bytes when the store is empty) and the highest stamp sequence number
 * recorded. */
uint64_t tf_trace_last_seq(const struct tf_trace_store *s);
const unsigned char *tf_trace_last_hash(const struct tf_trace_store *s);
uint64_t tf_trace_last_stamp_seq(const struct tf_trace_store *s);

/* Sets a meta value. The writer records "broker" (its id) and
 * "key:<kid>" (its public key PEM, so that verify can check checkpoints
 * without being handed the key). */
int tf_trace_put_meta(struct tf_trace_store *s, const char *name, const char *value,
		struct tf_err *err);

/* Stores (username non-NULL, or anonymous true) or removes the durable
 * binding of a client id to an identity (broker/tracking/clientids.h). Unlike
 * everything else in this section it runs on the broker's thread, while
 * the writer runs: LMDB takes the two writers in turn, and a map that is
 * full is not grown here (TF_ERR_FULL). On disk with the writer's next
 * sync. Client ids longer than TF_TRACE_CLIENT_ID_MAX bytes are not
 * stored (TF_ERR_INVALID). */
#define TF_TRACE_CLIENT_ID_MAX 400
int tf_trace_put_client_id(struct tf_trace_store *s, const char *client_id, bool bound,
		const char *username, struct tf_err *err);

/* --- reading --------------------------------------------------------------- */

/* A read snapshot. Everything a reader returns is borrowed from it and
 * valid until tf_trace_read_end. One at a time per store, on one thread;
 * in the writer's process a snapshot holds off the map's growth, so keep
 * it short. */
int tf_trace_read_begin(struct tf_trace_store *s, struct tf_err *err);
void tf_trace_read_end(struct tf_trace_store *s);

/* One step of a walk along the chain. */
struct tf_trace_step {
	uint64_t seq;
	/* The event, borrowed for the visit; NULL when the record holding
	 * seq cannot be decoded (error says why). */
	const struct tf_event *ev;
	const char *error;
	unsigned char prev[32];         /* the chain hash before the event */
	unsigned char hash[32];         /* recomputed through the event */
	/* On a record's last event, the chain hash the store kept for it
	 * (it should equal hash); NULL otherwise. */
	const unsigned char *stored;
};

/* Visits each stored event from seq `from` on (the first at or after
 * it), in order, with its chain hash recomputed from the hash kept with
 * the record before (or the anchor), until visit returns non-zero (which
 * is then returned). After an undecodable record the walk goes on with
 * the next record, from that record's kept hash. */
typedef int (*tf_trace_step_visit)(void *ctx, const struct tf_trace_step *step);
int tf_trace_walk(struct tf_trace_store *s, uint64_t from, tf_trace_step_visit visit, void *ctx);

/* The bytes of every page the store uses (data, indexes, names, free
 * pages kept for reuse): its size on disk. */
uint64_t tf_trace_bytes_used(struct tf_trace_store *s);

/* Visits each stored event from seq `from` on, in order, as
 * tf_trace_walk does but without recomputing the chain (for questions
 * about what happened, not whether the record is intact); undecodable
 * records are skipped. The event is borrowed for the visit. */
typedef int (*tf_trace_event_visit)(void *ctx, const struct tf_event *ev);
int tf_trace_scan_events(struct tf_trace_store *s, uint64_t from, tf_trace_event_visit visit,
		void *ctx);

/* The first and last stored sequence numbers (0, 0 when empty). */
void tf_trace_bounds(struct tf_trace_store *s, uint64_t *first, uint64_t *last);

/* The first seq whose event time is at or after ts_ms (last + 1 when
 * none). */
uint64_t tf_trace_seq_at(struct tf_trace_store *s, int64_t ts_ms);

/* Visits, in order, the events under key in an index whose time lies in
 * [from_ms, to_ms], until visit returns non-zero (which is then
 * returned; -1 when the index cannot be read). key: a message id (16
 * bytes) for by_id, a payload sha256 (32 bytes) for by_sha, else the
 * text (a policy id, client or topic). The event is borrowed for the
 * visit. */
int tf_trace_scan_index(struct tf_trace_store *s, enum tf_trace_index ix, const void *key,
		size_t klen, int64_t from_ms, int64_t to_ms, tf_trace_event_visit visit, void *ctx);

/* The same over all time, the newest record first (the events of one
 * record in order): for the latest such event, stopping at it. */
int tf_trace_scan_index_newest(struct tf_trace_store *s, enum tf_trace_index ix,
		const void *key, size_t klen, tf_trace_event_visit visit, void *ctx);

/* Visits the stored checkpoints in order. */
typedef int (*tf_trace_checkpoint_visit)(void *ctx, const struct tf_checkpoint *cp);
int tf_trace_scan_checkpoints(struct tf_trace_store *s, tf_trace_checkpoint_visit visit,
		void *ctx, struct tf_err *err);

/* Visits the held messages of flow (NULL: of every flow), in the order
 * they were received, until visit returns non-zero. seq is the seq of the
 * message's event. */
typedef int (*tf_trace_held_visit)(void *ctx, const char *flow, uint64_t seq,
		const void *record, size_t len);
int tf_trace_scan_held(struct tf_trace_store *s, const char *flow, tf_trace_held_visit visit,
		void *ctx);

/* The anchor after pruning: the seq and chain hash of the last removed
 * event. Without pruning it is seq 0 and 32 zero bytes. */
void tf_trace_anchor(struct tf_trace_store *s, uint64_t *seq, unsigned char hash[32]);

/* A meta value (NUL-terminated copy into buf of cap bytes); false when
 * absent or too long. */
bool tf_trace_meta(struct tf_trace_store *s, const char *name, char *buf, size_t cap);

/* Visits the meta values whose names begin with prefix, in the order of
 * their names: rest is the name after the prefix (rest_len bytes, not
 * NUL-terminated), value its value. */
typedef void (*tf_trace_meta_visit)(void *ctx, const char *rest, size_t rest_len,
		const void *value, size_t len);
void tf_trace_scan_meta(struct tf_trace_store *s, const char *prefix, tf_trace_meta_visit visit,
		void *ctx);

/* Visits the public keys recorded as "key:<kid>". */
typedef void (*tf_trace_key_visit)(void *ctx, const char *kid, const char *pem, size_t len);
void tf_trace_scan_keys(struct tf_trace_store *s, tf_trace_key_visit visit, void *ctx);

/* Visits the stored client id bindings: username NULL for a client
 * without one. */
typedef void (*tf_trace_client_id_visit)(void *ctx, const char *client_id,
		const char *username);
void tf_trace_scan_client_ids(struct tf_trace_store *s, tf_trace_client_id_visit visit,
		void *ctx);

/* Visits, in no set order, each client that deliveries made under policy
 * (an id, without version) reached in [from_ms, to_ms]: its name and
 * org, how many records of the trace hold its deliveries (one per
 * message, unless a fan-out filled several records), and the times of
 * its first and last. Until visit returns non-zero. Reads two records a
 * client, whatever the number of its deliveries. */
typedef int (*tf_trace_recipient_visit)(void *ctx, const char *client, const char *org,
		uint64_t messages, int64_t first_ts, int64_t last_ts);
int tf_trace_scan_recipients(struct tf_trace_store *s, const char *policy, int64_t from_ms,
		int64_t to_ms, tf_trace_recipient_visit visit, void *ctx);

/* --- format 1 ---------------------------------------------------------------- */

/* Copies the format-1 store in directory from (trustflow 0.1, opened
 * read-only and left as it is) into a new format-2 store in directory to
 * (which must not hold a store): every event with its seq, time and
 * fields, checking that each one's chain hash comes out as stored (the
 * hashed bytes are the same in both formats, so the checkpoints stay
 * valid), then the checkpoints, the anchor, the held messages and the
 * meta values. *events says how many were copied. Errors: TF_ERR_INVALID
 * (from is not a format-1 store, to is not empty, or an event does not
 * match its hash: run verify on from), TF_ERR_IO, TF_ERR_NOMEM,
 * TF_ERR_FULL. */
int tf_trace_migrate(const char *from, const char *to, uint64_t *events, struct tf_err *err);

/* --- keys, for queries ----------------------------------------------------- */

void tf_trace_put_u64(unsigned char out[8], uint64_t v);
uint64_t tf_trace_get_u64(const unsigned char in[8]);

/* A message id (32 hex digits) as its 16 bytes; false when malformed. */
bool tf_trace_id_bytes(const char *hex, unsigned char out[16]);

/* 64 hex digits as 32 bytes; false when malformed. */
bool tf_trace_sha_bytes(const char *hex, unsigned char out[32]);

/* The policy id of a label "id@version" into out (cap bytes): the text
 * before the last '@', or the whole label. */
void tf_trace_policy_id(const char *label, char *out, size_t cap);

#endif
