#include "broker/stamp/forms.h"

#include <string.h>

#define COMPACT_FIELDS 10

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

size_t tf_stamp_compact_encode(const struct tf_stamp *st, char *buf, size_t cap)
{
	/* The signing order without topic and sha256. */
	const char *const values[COMPACT_FIELDS] = {
		st->v, st->id, st->broker, st->kid, st->ts, st->org, st->client, st->policy,
		st->seq, st->sig,
	};
	size_t len = 0;

	for (int i = 0; i < COMPACT_FIELDS; i++) {
		if (i > 0) {
			if (len + 1 < cap)
				buf[len] = '|';
			len++;
		}
		/* Each `%` becomes `%25` before any `|` becomes `%7C`, so that the
		 * `%` of an escape is never escaped again: one pass does both. */
		for (const char *c = values[i]; *c != '\0'; c++) {
			const char *esc = *c == '%' ? "%25" : *c == '|' ? "%7C" : NULL;
			size_t n = esc != NULL ? 3 : 1;

			if (len + n < cap)
				memcpy(buf + len, esc != NULL ? esc : c, n);
			len += n;
		}
	}
	if (len < cap)
		buf[len] = '\0';
	return len;
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

enum tf_stamp_check tf_stamp_compact_decode(char *value, struct tf_stamp *st)
{
	const char **slots[COMPACT_FIELDS] = {
		&st->v, &st->id, &st->broker, &st->kid, &st->ts, &st->org, &st->client, &st->policy,
		&st->seq, &st->sig,
	};
	size_t len = strnlen(value, TF_STAMP_COMPACT_MAX + 1), bars = 0;
	char *p = value;

	if (len > TF_STAMP_COMPACT_MAX)
		return TF_STAMP_TOO_LONG;
	for (size_t i = 0; i < len; i++)
		bars += value[i] == '|';
	if (bars != COMPACT_FIELDS - 1)
		return TF_STAMP_FIELD_COUNT;
	/* Split first, then unescape: an escaped `|` is never a separator. */
	for (int i = 0; i < COMPACT_FIELDS; i++) {
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
	for (size_t i = 0; i < sizeof(r->full) / sizeof(r->full[0]); i++) {
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

enum tf_stamp_check tf_stamp_reader_finish(struct tf_stamp_reader *r, const char *topic,
		const void *payload, size_t payloadlen, struct tf_stamp *out)
{
	bool full = false;
	enum tf_stamp_check rc;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < sizeof(r->full) / sizeof(r->full[0]); i++)
		full = full || r->full[i] != NULL;
	if (full && r->compact != NULL)
		return TF_STAMP_BOTH_FORMS;
	if (r->compact_again)
		return TF_STAMP_MALFORMED;
	out->topic = topic;
	if (full) {
		/* In the order of tf_stamp_names. */
		*out = (struct tf_stamp){ r->full[0], r->full[1], r->full[2], r->full[3],
			r->full[4], r->full[5], r->full[6], r->full[7], topic, r->full[8], r->full[9],
			r->full[10] };
		return TF_STAMP_VALID;
	}
	if (r->compact == NULL)
		return TF_STAMP_MISSING;
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
