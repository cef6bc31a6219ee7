/* The two forms a stamp travels in (provenance-v1): full, eleven tf-*
 * user properties, and compact, one `tf` user property whose value is the
 * fields v, id, broker, kid, ts, org, client, policy, seq, sig joined by
 * `|`, each with `%` written `%25` and `|` written `%7C`. The compact form
 * carries neither the topic nor the payload hash: its reader takes the
 * topic the message arrived on and hashes the payload it received. Both
 * forms are signed over the same input with the same signature.
 *
 * A relayed message (federation-v1) carries a format-2 stamp: in the full
 * form two more properties, tf-topic and tf-prev; in the compact form the
 * twelve fields of a hop record (below). Its earlier stamps travel as
 * `tf-hop` properties, oldest first, one hop record each in both forms:
 * v, id, broker, kid, ts, org, client, policy, topic, seq, prev, sig,
 * escaped and joined as above, prev empty for a format-1 stamp.
 *
 * Writing a form is the shim's (plugins/stamp_props.c); this module makes
 * the compact value and reads a stamp in either form, without mosquitto
 * headers, so that tfctl, the tests and the fuzz target share it. */
#ifndef TF_STAMP_FORMS_H
#define TF_STAMP_FORMS_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/stamp/provenance.h"

/* The compact form's property name, and that of the earlier stamps of a
 * relayed message. */
#define TF_STAMP_COMPACT_NAME "tf"
#define TF_STAMP_HOP_NAME "tf-hop"

/* The most stamps a chain may have, the newest included (federation-v1). */
#define TF_CHAIN_MAX 8

/* The longest compact value read or written: the most an MQTT string
 * holds. A longer one cannot have come from a broker. */
#define TF_STAMP_COMPACT_MAX 65535

/* Which form a broker sends (plugin option stamp_form). */
enum tf_stamp_form {
	TF_STAMP_FORM_COMPACT = 0,
	TF_STAMP_FORM_FULL,
};

/* The form named by the option's value ("compact" or "full"); false when
 * it names neither. */
bool tf_stamp_form_parse(const char *name, enum tf_stamp_form *out);

/* The compact value of stamp (its topic and sha256 are not part of it)
 * into buf of cap bytes, with a NUL. Returns the length of the value
 * without the NUL: when that is cap or more it did not fit and buf holds
 * nothing useful (buf may be NULL then). */
size_t tf_stamp_compact_encode(const struct tf_stamp *stamp, char *buf, size_t cap);

/* The hop record of stamp (twelve fields; prev empty when it has none)
 * into buf of cap bytes, as tf_stamp_compact_encode writes. A format-2
 * stamp's compact value is its hop record. */
size_t tf_stamp_record_encode(const struct tf_stamp *stamp, char *buf, size_t cap);

/* Reads a hop record in place, as tf_stamp_compact_decode reads a compact
 * value (sha256 is not part of it: it stays as it was); an empty prev
 * becomes NULL. Errors: TF_STAMP_TOO_LONG, TF_STAMP_FIELD_COUNT (not
 * twelve fields), TF_STAMP_BAD_ESCAPE. */
enum tf_stamp_check tf_stamp_record_decode(char *value, struct tf_stamp *out);

/* Reads a compact value in place: value (NUL-terminated) is unescaped
 * field by field, and out's fields v ... sig, except topic and sha256,
 * point into it (borrowed, valid while value is); a format-2 value (twelve
 * fields) sets topic and prev too. Returns TF_STAMP_VALID
 * when the value is well formed (tf_stamp_check judges the rest),
 * TF_STAMP_TOO_LONG (more than TF_STAMP_COMPACT_MAX bytes),
 * TF_STAMP_FIELD_COUNT (neither ten nor twelve fields) or TF_STAMP_BAD_ESCAPE (a `%` not
 * followed by `25` or `7C`); value is then changed in part. */
enum tf_stamp_check tf_stamp_compact_decode(char *value, struct tf_stamp *out);

/* A stamp read from a received message's user properties, in either
 * form. Zero it, offer it every user property (tf_stamp_reader_add), then
 * take the stamp (tf_stamp_reader_finish), or the whole chain
 * (broker/stamp/chain.h). It holds at most twenty-one values, whatever
 * the message carries. */
struct tf_stamp_reader {
	char *full[TF_STAMP_NAMES_V2]; /* tf-v ... tf-prev, as tf_stamp_names: the first of each */
	char *compact;        /* the first `tf` */
	bool compact_again;   /* a second `tf` came */
	char *hops[TF_CHAIN_MAX - 1];  /* the tf-hop values, oldest first */
	unsigned n_hops;
	bool too_many_hops;   /* more tf-hop values came than a chain may have */
	char sha256[TF_SHA256_HEX + 1]; /* the compact form's payload hash */
};

/* Offers one user property. Returns true when the reader keeps value:
 * it must then stay valid until the stamp is no longer used, and the
 * reader may change it (the caller still frees it). False when the
 * property is not part of a stamp or repeats a name already kept. Names
 * are compared exactly: a broker sends them in lower case. */
bool tf_stamp_reader_add(struct tf_stamp_reader *r, const char *name, char *value);

/* Frees every value r kept, for a caller whose values were each
 * allocated with malloc (as mosquitto's property reader makes them), and
 * zeroes r. */
void tf_stamp_reader_free_values(struct tf_stamp_reader *r);

/* The stamp of a message that arrived on topic with payload (its newest,
 * for a relayed message; its tf-hop values are left to broker/stamp/chain.h):
 * out's fields point into the values kept, into r and to topic (borrowed,
 * valid while they are); a format-2 stamp's topic is its own. Returns TF_STAMP_VALID when exactly one form was
 * found and read (tf_stamp_check then judges out: a full stamp with a
 * property absent is TF_STAMP_MISSING there), TF_STAMP_MISSING when
 * neither, TF_STAMP_BOTH_FORMS, TF_STAMP_MALFORMED (`tf` twice), or the
 * errors of tf_stamp_compact_decode. */
enum tf_stamp_check tf_stamp_reader_finish(struct tf_stamp_reader *r, const char *topic,
		const void *payload, size_t payloadlen, struct tf_stamp *out);

#endif
