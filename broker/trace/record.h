/* The trace store's compact encoding (store format 2): trace events in
 * records.
 *
 * A record holds consecutive events: one event, or a message's event and
 * the delivery events of the same message that follow it (a fan-out is
 * one record), or a run of delivery events of one message. So a message
 * and its first deliveries are read together, and a delivery costs a few
 * bytes instead of a whole event.
 *
 * What repeats (topics, organizations, clients, client ids, policy
 * labels, outcomes and most reasons, flows, kids) is stored as a number
 * of the store's name table (struct tf_record_names); message ids,
 * payload hashes and signatures as their bytes; decimal numbers as
 * varints. Every value decodes back to exactly the text it was given
 * (a value that is not in its canonical form is kept as text), so the
 * chain hash of each event is computed over the same bytes as in format
 * 1 (broker/trace/trace_event.h): auditors see no difference.
 *
 * Layout (varint: unsigned LEB128):
 *
 *     record  = 0x02 count:varint first_ts:varint has_id:u8 [id:16] event{count}
 *     event   = head:u8 ts_delta:varint field*
 *     head    = kind (bits 0-3) | absent trailing fields (bits 4-7)
 *
 * ts_delta counts from the previous event's time (from first_ts for the
 * first); times never decrease along a record. Each field is encoded by
 * its kind's schema (record.c): a name as varint (0: "", n: name n); a
 * text as varint length, the bytes and a NUL; an id, hash, signature or
 * number as a tag byte (0: canonical binary follows; 1: text follows;
 * 2: the record's id, for ids) and the value.
 *
 * Each record has one encoding: the reader refuses any other (a value in
 * canonical form stored as text, an id equal to the record's stored
 * again, a varint with needless zero bytes, a NUL inside a text, events
 * the writer would not have grouped), so no changed byte reads as the
 * same events. */
#ifndef TF_RECORD_H
#define TF_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "broker/trace/trace_event.h"
#include "broker/util/error.h"

#define TF_RECORD_FORMAT 0x02
/* A record holds at most this many events (a read of one message's
 * record stays small); a larger fan-out goes on in further records. */
#define TF_RECORD_MAX_EVENTS 1024u

/* What the codec asks of its owner to turn repeating text into numbers
 * and back. */
struct tf_record_names {
	void *ctx;
	/* The number of text[0..len) (no NUL inside), giving it a new one
	 * when it has none; 0 when that fails. Writing only. */
	uint32_t (*intern)(void *ctx, const char *text, size_t len);
	/* The text of number n, NUL-terminated, valid until the owner's read
	 * ends; NULL when there is no such number. Reading only. */
	const char *(*text)(void *ctx, uint32_t n);
};

/* --- writing ------------------------------------------------------------------ */

/* A name's number remembered with its text, where the same few names
 * come again and again. */
struct tf_name_memo {
	uint32_t number;   /* 0: none */
	uint8_t len;
	char text[43];     /* longer texts are not remembered */
};

/* The number memo remembers for text[0..len), or 0. */
static inline uint32_t tf_name_memo_get(const struct tf_name_memo *memo, const char *text,
		size_t len)
{
	return memo->number != 0 && memo->len == len && memcmp(memo->text, text, len) == 0
		? memo->number : 0;
}

/* Remembers number for text[0..len) when it is short enough. */
static inline void tf_name_memo_set(struct tf_name_memo *memo, const char *text, size_t len,
		uint32_t number)
{
	if (len >= sizeof(memo->text))
		return;
	memo->number = number;
	memo->len = (uint8_t)len;
	memcpy(memo->text, text, len);
}

/* A record being built. Zero-initialize, then tf_record_add each event;
 * free with tf_record_builder_free. */
struct tf_record_builder {
	unsigned char *buf;   /* the encoding so far */
	size_t len, cap;
	uint32_t count;       /* events in it */
	int64_t first_ts, last_ts;
	unsigned char id[16]; /* the message the record is about */
	char id_text[33];     /* the same as the text events give */
	bool has_id;
	/* The last name each field position was given in this record: a
	 * fan-out's deliveries repeat their policy, organization, outcome and
	 * reason, and look each up once per record, not once per delivery. */
	struct tf_name_memo last_name[TF_EVENT_MAX_FIELDS];
};

/* Whether ev may join the record b is building: b is empty, or ev is a
 * delivery of the record's message and the record has room. ev's time
 * must not be earlier than the record's last (the store sees to it). */
bool tf_record_accepts(const struct tf_record_builder *b, const struct tf_event *ev);

/* Adds ev (which tf_record_accepts) to the record. A first event whose
 * first field is a message id (message, delivery, release, discard)
 * gives the record its id. Errors: TF_ERR_NOMEM (also when intern
 * fails, or the record would pass 2 MiB); TF_ERR_INVALID when
 * tf_record_accepts refuses ev (a mistake of the caller). The record is
 * then as before the call. */
int tf_record_add(struct tf_record_builder *b, const struct tf_event *ev,
		const struct tf_record_names *names);

/* The record's bytes (valid until the builder changes) and length; NULL
 * and 0 for an empty builder. */
const unsigned char *tf_record_bytes(struct tf_record_builder *b, size_t *len);

/* Empties the builder for the next record, keeping its buffer. */
void tf_record_reset(struct tf_record_builder *b);
void tf_record_builder_free(struct tf_record_builder *b);

/* --- reading ------------------------------------------------------------------ */

struct tf_record_reader {
	const unsigned char *p, *end;
	uint32_t count;          /* events in the record */
	uint32_t left;           /* events not yet read */
	uint64_t next_seq;
	int64_t ts;
	unsigned char id[16];
	bool has_id;
	/* The decoded forms of the last event's binary values (hex, base64,
	 * decimal): its values point here, into the record, or to names. */
	char scratch[TF_EVENT_MAX_FIELDS][96];
};

/* Starts reading the record bytes[0..len) whose first event has sequence
 * number first_seq. Errors: TF_ERR_INVALID (not a format-2 record; err
 * says why). */
int tf_record_open(struct tf_record_reader *r, const void *bytes, size_t len,
		uint64_t first_seq, struct tf_err *err);

/* How many events the record holds (after tf_record_open). */
uint32_t tf_record_count(const struct tf_record_reader *r);

/* The next event into *ev (kind, seq, ts and values set; values valid
 * until the next call, and as long as the record's bytes and names'
 * texts). Call it tf_record_count times. Returns TF_OK, or
 * TF_ERR_INVALID when the record is malformed, ends early, holds bytes
 * after its last event, is not in its one encoding or names an unknown
 * name (err says what, with the event's seq). */
int tf_record_next(struct tf_record_reader *r, const struct tf_record_names *names,
		struct tf_event *ev, struct tf_err *err);

#endif
