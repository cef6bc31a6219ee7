#include "broker/stamp/forms.h"

#include <stdlib.h>
#include <string.h>

#define COMPACT_FIELDS 10   /* format 1 */
#define RECORD_FIELDS 12    /* a hop record, and format 2 compact */

bool tf_stamp_form_parse(const char *name, enum tf_stamp_form *out)
{
	if (strcmp(name, "compact") == 0)
		*out = TF_STAMP_FORM_COMPACT;
	else if (strcmp(name, "full") == 0)
		*out = TF_STAMP_FORM_FULL;
	else
		return false;
	return true;
}

/* Joins n values with `|`, each escaped, into buf of cap bytes. */
static size_t encode_fields(const char *const *values, int n, char *buf, size_t cap)
{
	size_t len = 0;

	for (int i = 0; i < n; i++) {
		if (i > 0) {
			if (len + 1 < cap)
				buf[len] = '|';
			len++;
		}
		/* Each `%` becomes `%25` before any `|` becomes `%7C`, so that the
		 * `%` of an escape is never escaped again: one pass does both. */
		for (const char *c = values[i]; *c != '\0'; c++) {
			const char *esc = *c == '%' ? "%25" : *c == '|' ? "%7C" : NULL;
			size_t n_out = esc != NULL ? 3 : 1;

			if (len + n_out < cap)
				memcpy(buf + len, esc != NULL ? esc : c, n_out);
			len += n_out;
		}
	}
	if (len < cap)
		buf[len] = '\0';
	return len;
}

size_t tf_stamp_record_encode(const struct tf_stamp *st, char *buf, size_t cap)
{
	const char *const values[RECORD_FIELDS] = {
		st->v, st->id, st->broker, st->kid, st->ts, st->org, st->client, st->policy,
		st->topic, st->seq, st->prev ? st->prev : "", st->sig,
	};

	return encode_fields(values, RECORD_FIELDS, buf, cap);
}

size_t tf_stamp_compact_encode(const struct tf_stamp *st, char *buf, size_t cap)
{
	/* Format 1: the signing order without topic and sha256. */
	const char *const values[COMPACT_FIELDS] = {
		st->v, st->id, st->broker, st->kid, st->ts, st->org, st->client, st->policy,
		st->seq, st->sig,
	};

	if (st->prev != NULL)
		return tf_stamp_record_encode(st, buf, cap);
	return encode_fields(values, COMPACT_FIELDS, buf, cap);
}

/* Unescapes the NUL-terminated field s in place. Returns false on a `%`
 * that is not `%25` or `%7C`. */
static bool unescape(char *s)
{
	char *w = s;

	for (const char *r = s; *r != '\0'; r++) {
		if (*r != '%') {
			*w++ = *r;
		} else if (strncmp(r, "%25", 3) == 0) {
			*w++ = '%';
			r += 2;
		} else if (strncmp(r, "%7C", 3) == 0) {
			*w++ = '|';
			r += 2;
		} else {
			return false;
		}
	}
	*w = '\0';
	return true;
}

/* Splits value (NUL-terminated, at most TF_STAMP_COMPACT_MAX bytes) at
 * its n - 1 bars and unescapes each field in place into *slots[i]. */
static enum tf_stamp_check decode_fields(char *value, const char **const *slots, int n)
{
	char *p = value;

	/* Split first, then unescape: an escaped `|` is never a separator. */
	for (int i = 0; i < n; i++) {
		char *end = p + strcspn(p, "|");
		bool last = *end == '\0';

		*end = '\0';
		if (!unescape(p))
			return TF_STAMP_BAD_ESCAPE;
		*slots[i] = p;
		if (!last)
			p = end + 1;
	}
	return TF_STAMP_VALID;
}

/* The number of fields of value, 0 when it is longer than a compact value
 * may be. */
static size_t count_fields(const char *value)
{
	size_t len = strnlen(value, TF_STAMP_COMPACT_MAX + 1), bars = 0;

	if (len > TF_STAMP_COMPACT_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		bars += value[i] == '|';
	return bars + 1;
}

enum tf_stamp_check tf_stamp_record_decode(char *value, struct tf_stamp *st)
{
	const char **const slots[RECORD_FIELDS] = {
		&st->v, &st->id, &st->broker, &st->kid, &st->ts, &st->org, &st->client, &st->policy,
		&st->topic, &st->seq, &st->prev, &st->sig,
	};
	size_t n = count_fields(value);
	enum tf_stamp_check rc;

	if (n == 0)
		return TF_STAMP_TOO_LONG;
	if (n != RECORD_FIELDS)
		return TF_STAMP_FIELD_COUNT;
	rc = decode_fields(value, slots, RECORD_FIELDS);
	/* A format-1 record's prev is empty: it has none. */
	if (rc == TF_STAMP_VALID && st->prev[0] == '\0')
		st->prev = NULL;
	return rc;
}

enum tf_stamp_check tf_stamp_compact_decode(char *value, struct tf_stamp *st)
{
	const char **const slots[COMPACT_FIELDS] = {
		&st->v, &st->id, &st->broker, &st->kid, &st->ts, &st->org, &st->client, &st->policy,
		&st->seq, &st->sig,
	};
	size_t n = count_fields(value);

	if (n == 0)
		return TF_STAMP_TOO_LONG;
	if (n == RECORD_FIELDS) {
		enum tf_stamp_check rc = tf_stamp_record_decode(value, st);

		/* Twelve fields are format 2's, which has a prev; format 1's
		 * compact value has ten. */
		return rc == TF_STAMP_VALID && st->prev == NULL ? TF_STAMP_FIELD_COUNT : rc;
	}
	if (n != COMPACT_FIELDS)
		return TF_STAMP_FIELD_COUNT;
	return decode_fields(value, slots, COMPACT_FIELDS);
}

bool tf_stamp_reader_add(struct tf_stamp_reader *r, const char *name, char *value)
{
	if (strcmp(name, TF_STAMP_COMPACT_NAME) == 0) {
		if (r->compact != NULL) {
			r->compact_again = true;
			return false;
		}
		r->compact = value;
		return true;
	}
	if (strcmp(name, TF_STAMP_HOP_NAME) == 0) {
		if (r->n_hops == TF_CHAIN_MAX - 1) {
			r->too_many_hops = true;
			return false;
		}
		r->hops[r->n_hops++] = value;
		return true;
	}
	for (size_t i = 0; i < TF_STAMP_NAMES_V2; i++) {
		if (strcmp(name, tf_stamp_names[i]) == 0) {
			/* The first of a name counts; the broker sends each once. */
			if (r->full[i] != NULL)
				return false;
			r->full[i] = value;
			return true;
		}
	}
	return false;
}

void tf_stamp_reader_free_values(struct tf_stamp_reader *r)
{
	for (size_t i = 0; i < TF_STAMP_NAMES_V2; i++)
		free(r->full[i]);
	for (unsigned i = 0; i < r->n_hops; i++)
		free(r->hops[i]);
	free(r->compact);
	memset(r, 0, sizeof(*r));
}

enum tf_stamp_check tf_stamp_reader_finish(struct tf_stamp_reader *r, const char *topic,
		const void *payload, size_t payloadlen, struct tf_stamp *out)
{
	bool full = false;
	enum tf_stamp_check rc;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < TF_STAMP_NAMES_V2; i++)
		full = full || r->full[i] != NULL;
	if (full && r->compact != NULL)
		return TF_STAMP_BOTH_FORMS;
	if (r->compact_again)
		return TF_STAMP_MALFORMED;
	out->topic = topic;
	if (full) {
		/* In the order of tf_stamp_names. A format-2 stamp names its
		 * topic (without tf-topic it lacks a field); a format-1 one
		 * was made for the arrival topic. */
		bool relayed = r->full[12] != NULL || (r->full[0] != NULL
			&& strcmp(r->full[0], "1") != 0);

		*out = (struct tf_stamp){ r->full[0], r->full[1], r->full[2], r->full[3],
			r->full[4], r->full[5], r->full[6], r->full[7],
			relayed ? r->full[11] : topic, r->full[8], r->full[9], r->full[10],
			r->full[12] };
		return TF_STAMP_VALID;
	}
	if (r->compact == NULL)
		return TF_STAMP_MISSING;
	/* A format-2 compact value carries its topic, overwriting this. */
	rc = tf_stamp_compact_decode(r->compact, out);
	if (rc != TF_STAMP_VALID) {
		/* Nothing half read is shown as the message's. */
		memset(out, 0, sizeof(*out));
		return rc;
	}
	/* The compact form carries no hash: the payload received is the one
	 * the signature must cover. */
	tf_sha256_hex(payload, payloadlen, r->sha256);
	out->sha256 = r->sha256;
	return TF_STAMP_VALID;
}
