/* The two forms a stamp travels in (provenance-v1): full, eleven tf-*
 * user properties, and compact, one `tf` user property whose value is the
 * fields v, id, broker, kid, ts, org, client, policy, seq, sig joined by
 * `|`, each with `%` written `%25` and `|` written `%7C`. The compact form
 * carries neither the topic nor the payload hash: its reader takes the
 * topic the message arrived on and hashes the payload it received. Both
 * forms are signed over the same input with the same signature.
 *
 * Writing a form is the shim's (plugins/stamp_props.c); this module makes
 * the compact value and reads a stamp in either form, without mosquitto
 * headers, so that tfctl, the tests and the fuzz target share it. */
#ifndef TF_STAMP_FORMS_H
#define TF_STAMP_FORMS_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/stamp/provenance.h"

/* The compact form's property name. */
#define TF_STAMP_COMPACT_NAME "tf"

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

/* Reads a compact value in place: value (NUL-terminated) is unescaped
 * field by field, and out's fields v ... sig, except topic and sha256,
 * point into it (borrowed, valid while value is). Returns TF_STAMP_VALID
 * when the value is well formed (tf_stamp_check judges the rest),
 * TF_STAMP_TOO_LONG (more than TF_STAMP_COMPACT_MAX bytes),
 * TF_STAMP_FIELD_COUNT (not ten fields) or TF_STAMP_BAD_ESCAPE (a `%` not
 * followed by `25` or `7C`); value is then changed in part. */
enum tf_stamp_check tf_stamp_compact_decode(char *value, struct tf_stamp *out);

/* A stamp read from a received message's user properties, in either
 * form. Zero it, offer it every user property (tf_stamp_reader_add), then
 * take the stamp (tf_stamp_reader_finish). It holds at most twelve
 * values, whatever the message carries. */
struct tf_stamp_reader {
	char *full[11];       /* tf-v ... tf-sig, as tf_stamp_names: the first of each */
	char *compact;        /* the first `tf` */
	bool compact_again;   /* a second `tf` came */
	char sha256[TF_SHA256_HEX + 1]; /* the compact form's payload hash */
};

/* Offers one user property. Returns true when the reader keeps value:
 * it must then stay valid until the stamp is no longer used, and the
 * reader may change it (the caller still frees it). False when the
 * property is not part of a stamp or repeats a name already kept. Names
 * are compared exactly: a broker sends them in lower case. */
bool tf_stamp_reader_add(struct tf_stamp_reader *r, const char *name, char *value);

/* The stamp of a message that arrived on topic with payload: out's
 * fields point into the values kept, into r and to topic (borrowed, valid
 * while they are). Returns TF_STAMP_VALID when exactly one form was
 * found and read (tf_stamp_check then judges out: a full stamp with a
 * property absent is TF_STAMP_MISSING there), TF_STAMP_MISSING when
 * neither, TF_STAMP_BOTH_FORMS, TF_STAMP_MALFORMED (`tf` twice), or the
 * errors of tf_stamp_compact_decode. */
enum tf_stamp_check tf_stamp_reader_finish(struct tf_stamp_reader *r, const char *topic,
		const void *payload, size_t payloadlen, struct tf_stamp *out);

#endif
