#include "broker/trace/record.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "broker/stamp/fields.h"
#include "broker/stamp/provenance.h"
#include "broker/trace/trace_store.h"
#include "broker/util/growable.h"

/* How each field is stored. */
enum field_class {
	F_NAME,    /* a number of the name table */
	F_TEXT,    /* the text itself */
	F_ID,      /* 16 bytes shown as 32 lowercase hex digits */
	F_SHA,     /* 32 bytes shown as 64 lowercase hex digits */
	F_SIG,     /* 64 bytes shown as 88 characters of base64 */
	F_NUMBER,  /* a decimal number */
};

/* The fields of each kind, in tf_event_fields' order. A value repeats
 * from event to event (a name) when it comes from a small set that the
 * policy files, identities or the code fix: topics (a device publishes on
 * the same few), organizations, clients and client ids, policy labels,
 * statuses, outcomes, reasons (a fixed set of phrases), key ids, flows,
 * operators, alert kinds and actions. Text that an operator writes or
 * that differs every time (a release's reason, an alert's detail, a
 * policy set's result and files) stays text: interning it would grow the
 * name table with every event. Ids, hashes and signatures are random
 * bytes: stored as bytes, they take half (hex) or three quarters (base64)
 * of their text. Sizes and sequence numbers take a few bytes as varints. */
static const unsigned char schema[TF_EVENT_KINDS][TF_EVENT_MAX_FIELDS] = {
	/* id, topic, org, client, policy, sha256, size, status, reason,
	 * stamp_seq, kid, sig, of, peer, hops (signed records: different
	 * every time) */
	[TF_EVENT_MESSAGE] = { F_ID, F_NAME, F_NAME, F_NAME, F_NAME, F_SHA, F_NUMBER, F_NAME,
		F_NAME, F_NUMBER, F_NAME, F_SIG, F_ID, F_NAME, F_TEXT },
	/* id, policy, client, org, outcome, reason, client_id */
	[TF_EVENT_DELIVERY] = { F_ID, F_NAME, F_NAME, F_NAME, F_NAME, F_NAME, F_NAME },
	/* id, flow, by, reason (free text given with an override) */
	[TF_EVENT_RELEASE] = { F_ID, F_NAME, F_NAME, F_TEXT },
	[TF_EVENT_DISCARD] = { F_ID, F_NAME, F_NAME, F_TEXT },
	/* alert, alert_kind, policy, org, client, detail (counts and
	 * values: different every time), action */
	[TF_EVENT_ALERT] = { F_ID, F_NAME, F_NAME, F_NAME, F_NAME, F_TEXT, F_NAME },
	/* result (an error message when refused), policies, files */
	[TF_EVENT_POLICY_SET] = { F_TEXT, F_NUMBER, F_TEXT },
	/* policy, org, topic, name, sha256, kid, sig, file (base64) */
	[TF_EVENT_POLICY] = { F_NAME, F_NAME, F_NAME, F_NAME, F_SHA, F_NAME, F_SIG, F_TEXT },
};

/* A tag before an id, hash, signature or number. */
enum {
	TAG_BINARY = 0,     /* its canonical binary form follows */
	TAG_TEXT = 1,       /* not canonical: its text follows */
	TAG_RECORD_ID = 2,  /* an id equal to the record's: nothing follows */
};

#define ID_BYTES 16
#define SHA_BYTES 32
#define SIG_BYTES 64
#define VARINT_MAX 10
/* The header at its longest: format, count (at most 1024: 2 bytes),
 * first_ts, has_id, id. The builder keeps this much room before the
 * events and writes the header into its end when asked for the bytes,
 * as its length changes while events are added. */
#define HEADER_MAX (1 + 2 + VARINT_MAX + 1 + ID_BYTES)
/* A record grows to at most this: one event as large as any (its compact
 * form is no longer than its text), and the deliveries that may follow
 * it (each a few names, well under 100 bytes). */
#define RECORD_MAX_BYTES (2 * TF_EVENT_MAX_BYTES)
#define RECORD_FIRST_BYTES 256

/* Whether the first field of a kind is the id of a message, which gives
 * the record its id. */
static bool names_a_message(enum tf_event_kind kind)
{
	return kind == TF_EVENT_MESSAGE || kind == TF_EVENT_DELIVERY || kind == TF_EVENT_RELEASE
		|| kind == TF_EVENT_DISCARD;
}

/* --- canonical forms: the same tests decide how the writer stores a value
 * and which forms the reader accepts, so that every event has one
 * encoding ------------------------------------------------------------------ */

/* A decimal number without sign, leading zeros or anything else, that
 * fits in 64 bits (tf_parse_long allows signs and leading zeros). */
static bool canonical_number(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* A signature in standard base64 with padding that encodes back to the
 * same text; out has room for 66 bytes (base64 decodes whole groups). */
static bool canonical_sig(const char *s, unsigned char out[SIG_BYTES + 2])
{
	char again[TF_SIG_B64_LEN + 1];

	if (strlen(s) != TF_SIG_B64_LEN)
		return false;
	if (EVP_DecodeBlock(out, (const unsigned char *)s, TF_SIG_B64_LEN) != SIG_BYTES + 2)
		return false;
	EVP_EncodeBlock((unsigned char *)again, out, SIG_BYTES);
	return memcmp(again, s, TF_SIG_B64_LEN) == 0;
}

/* --- writing ------------------------------------------------------------------ */

/* Makes room for n more bytes in b's buffer, growing it the one way
 * arrays grow, up to RECORD_MAX_BYTES. */
static bool reserve(struct tf_record_builder *b, size_t n)
{
	while (b->cap - b->len < n) {
		uint32_t cap = (uint32_t)b->cap;

		if (!tf_grow_array((void **)&b->buf, &cap, cap, 1, RECORD_FIRST_BYTES,
					RECORD_MAX_BYTES))
			return false;
		b->cap = cap;
	}
	return true;
}

static bool put_bytes(struct tf_record_builder *b, const void *p, size_t n)
{
	if (!reserve(b, n))
		return false;
	memcpy(b->buf + b->len, p, n);
	b->len += n;
	return true;
}

static bool put_byte(struct tf_record_builder *b, unsigned char c)
{
	return put_bytes(b, &c, 1);
}

/* v as unsigned LEB128 into out; returns its length (at most 10). */
static size_t varint(uint64_t v, unsigned char out[VARINT_MAX])
{
	size_t n = 0;

	do {
		out[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v != 0)
			out[n] |= 0x80;
		n++;
	} while (v != 0);
	return n;
}

static bool put_varint(struct tf_record_builder *b, uint64_t v)
{
	unsigned char tmp[VARINT_MAX];

	return put_bytes(b, tmp, varint(v, tmp));
}

static bool put_text(struct tf_record_builder *b, const char *s)
{
	size_t n = strlen(s);

	return put_varint(b, n) && put_bytes(b, s, n) && put_byte(b, '\0');
}

static bool put_tagged_text(struct tf_record_builder *b, const char *s)
{
	return put_byte(b, TAG_TEXT) && put_text(b, s);
}

/* The name of field position `at`: the number it had last in this record
 * when the text is the same, else the owner's. */
static bool put_name(struct tf_record_builder *b, size_t at, const char *s,
		const struct tf_record_names *names)
{
	size_t len = strlen(s);
	uint32_t n;

	if (len == 0)
		return put_varint(b, 0);
	n = tf_name_memo_get(&b->last_name[at], s, len);
	if (n == 0) {
		n = names->intern(names->ctx, s, len);
		if (n == 0)
			return false;
		tf_name_memo_set(&b->last_name[at], s, len, n);
	}
	return put_varint(b, n);
}

/* Whether s is the record's id: then in its one canonical text, as ids
 * are only ever taken from that text (tf_trace_id_bytes). */
static bool is_record_id(const struct tf_record_builder *b, const char *s)
{
	return b->has_id && strcmp(s, b->id_text) == 0;
}

static bool put_id(struct tf_record_builder *b, const char *s)
{
	unsigned char raw[ID_BYTES];

	if (is_record_id(b, s))
		return put_byte(b, TAG_RECORD_ID);
	if (!tf_trace_id_bytes(s, raw))
		return put_tagged_text(b, s);
	return put_byte(b, TAG_BINARY) && put_bytes(b, raw, ID_BYTES);
}

static bool put_field(struct tf_record_builder *b, enum field_class c, size_t at, const char *s,
		const struct tf_record_names *names)
{
	unsigned char raw[SIG_BYTES + 2];
	uint64_t v;

	switch (c) {
	case F_NAME:
		return put_name(b, at, s, names);
	case F_TEXT:
		return put_text(b, s);
	case F_ID:
		return put_id(b, s);
	case F_SHA:
		if (!tf_trace_sha_bytes(s, raw))
			return put_tagged_text(b, s);
		return put_byte(b, TAG_BINARY) && put_bytes(b, raw, SHA_BYTES);
	case F_SIG:
		if (!canonical_sig(s, raw))
			return put_tagged_text(b, s);
		return put_byte(b, TAG_BINARY) && put_bytes(b, raw, SIG_BYTES);
	case F_NUMBER:
		if (!canonical_number(s, &v))
			return put_tagged_text(b, s);
		return put_byte(b, TAG_BINARY) && put_varint(b, v);
	}
	return false;
}

bool tf_record_accepts(const struct tf_record_builder *b, const struct tf_event *ev)
{
	if (b->count == 0)
		return true;
	return b->count < TF_RECORD_MAX_EVENTS && ev->ts_ms >= b->last_ts
		&& ev->kind == TF_EVENT_DELIVERY && ev->values[0] != NULL
		&& is_record_id(b, ev->values[0]);
}

/* The first event of a record: the record's time and, when the event
 * names a message by a canonical id, its id. */
static void start_record(struct tf_record_builder *b, const struct tf_event *ev)
{
	b->len = HEADER_MAX;
	b->first_ts = ev->ts_ms;
	b->last_ts = ev->ts_ms;
	b->has_id = names_a_message(ev->kind) && ev->values[0] != NULL
		&& tf_trace_id_bytes(ev->values[0], b->id);
	if (b->has_id)
		memcpy(b->id_text, ev->values[0], sizeof(b->id_text));
}

/* Appends ev's head, time and fields. */
static bool put_event(struct tf_record_builder *b, const struct tf_event *ev,
		const struct tf_record_names *names)
{
	size_t n, present;

	tf_event_fields(ev->kind, &n);
	/* Absent trailing fields (an event from before they existed) are
	 * counted in the head, as tf_event_encode leaves them out. */
	for (present = n; present > 0 && ev->values[present - 1] == NULL; present--)
		;
	if (!put_byte(b, (unsigned char)((unsigned)ev->kind | (unsigned)(n - present) << 4))
			|| !put_varint(b, (uint64_t)ev->ts_ms - (uint64_t)b->last_ts))
		return false;
	for (size_t i = 0; i < present; i++) {
		/* NULL before a present field is a mistake of the caller: it is
		 * recorded as "" rather than losing the fields after it. */
		const char *s = ev->values[i] != NULL ? ev->values[i] : "";

		if (!put_field(b, (enum field_class)schema[ev->kind][i], i, s, names))
			return false;
	}
	return true;
}

int tf_record_add(struct tf_record_builder *b, const struct tf_event *ev,
		const struct tf_record_names *names)
{
	struct tf_record_builder before = *b;

	if ((unsigned)ev->kind >= TF_EVENT_KINDS || !tf_record_accepts(b, ev))
		return TF_ERR_INVALID;
	if (b->count == 0) {
		if (!reserve(b, HEADER_MAX))
			return TF_ERR_NOMEM;
		start_record(b, ev);
	}
	if (!put_event(b, ev, names)) {
		/* The buffer may have grown: keep it, forget what was written. */
		before.buf = b->buf;
		before.cap = b->cap;
		*b = before;
		return TF_ERR_NOMEM;
	}
	b->count++;
	b->last_ts = ev->ts_ms;
	return TF_OK;
}

const unsigned char *tf_record_bytes(struct tf_record_builder *b, size_t *len)
{
	unsigned char head[HEADER_MAX];
	size_t n = 0;

	if (b->count == 0) {
		*len = 0;
		return NULL;
	}
	head[n++] = TF_RECORD_FORMAT;
	n += varint(b->count, head + n);
	n += varint((uint64_t)b->first_ts, head + n);
	head[n++] = b->has_id;
	if (b->has_id) {
		memcpy(head + n, b->id, ID_BYTES);
		n += ID_BYTES;
	}
	/* Right before the events, in the room kept for it. */
	memcpy(b->buf + HEADER_MAX - n, head, n);
	*len = b->len - (HEADER_MAX - n);
	return b->buf + HEADER_MAX - n;
}

void tf_record_reset(struct tf_record_builder *b)
{
	unsigned char *buf = b->buf;
	size_t cap = b->cap;

	memset(b, 0, sizeof(*b));
	b->buf = buf;
	b->cap = cap;
}

void tf_record_builder_free(struct tf_record_builder *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}

/* --- reading ------------------------------------------------------------------ */

/* Every read checks the bytes left first: a record's lengths and counts
 * are untrusted until they are checked against its end. The helpers return
 * NULL, or what is wrong for the error message. */

static const char *get_varint(struct tf_record_reader *r, uint64_t *out)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < VARINT_MAX; i++) {
		unsigned char c;

		if (r->p >= r->end)
			return "it ends inside a number";
		c = *r->p++;
		/* The tenth byte holds bit 63 only, and ends the number. */
		if (i == VARINT_MAX - 1 && (c & 0x80) != 0)
			return "a number is longer than 10 bytes";
		if (i == VARINT_MAX - 1 && c > 1)
			return "a number does not fit in 64 bits";
		v |= (uint64_t)(c & 0x7f) << (7 * i);
		if ((c & 0x80) == 0) {
			/* One encoding per number: no trailing zero groups. */
			if (i > 0 && c == 0)
				return "a number has a needless zero byte";
			*out = v;
			return NULL;
		}
	}
	return "a number is longer than 10 bytes";   /* not reached: the tenth byte ends it */
}

static const char *get_bytes(struct tf_record_reader *r, size_t n, const unsigned char **out)
{
	if ((size_t)(r->end - r->p) < n)
		return "it ends inside a value";
	*out = r->p;
	r->p += n;
	return NULL;
}

static const char *get_byte(struct tf_record_reader *r, unsigned char *out)
{
	const unsigned char *p;
	const char *why = get_bytes(r, 1, &p);

	if (why == NULL)
		*out = *p;
	return why;
}

/* A text: its length, its bytes and a NUL; *out points into the record. */
static const char *get_text(struct tf_record_reader *r, const char **out)
{
	uint64_t n;
	const char *why = get_varint(r, &n);

	if (why != NULL)
		return why;
	if (n >= (uint64_t)(r->end - r->p) || r->p[n] != '\0')
		return "a text runs past the record or lacks its NUL";
	if (memchr(r->p, '\0', n) != NULL)
		return "a text holds a NUL byte";
	*out = (const char *)r->p;
	r->p += n + 1;
	return NULL;
}

static const char *get_name(struct tf_record_reader *r, const struct tf_record_names *names,
		const char **out, uint64_t *number)
{
	const char *why = get_varint(r, number);

	if (why != NULL)
		return why;
	if (*number == 0) {
		*out = "";
		return NULL;
	}
	/* The caller says which name when there is none. */
	*out = *number <= UINT32_MAX ? names->text(names->ctx, (uint32_t)*number) : NULL;
	if (*out != NULL && **out == '\0')
		return "a name is empty (\"\" is name 0)";
	return NULL;
}

/* The tag of a tagged value; *text set when it is TAG_TEXT, which is
 * only for a value not in its canonical form. */
static const char *get_tag(struct tf_record_reader *r, unsigned char *tag, const char **text)
{
	const char *why = get_byte(r, tag);

	if (why != NULL)
		return why;
	if (*tag > TAG_RECORD_ID)
		return "a value has an unknown tag";
	return *tag == TAG_TEXT ? get_text(r, text) : NULL;
}

static const char *get_id(struct tf_record_reader *r, char *scratch, const char **out,
		unsigned char *tag)
{
	const unsigned char *raw = r->id;
	unsigned char canon[ID_BYTES];
	const char *why = get_tag(r, tag, out);

	if (why != NULL)
		return why;
	if (*tag == TAG_TEXT)
		return tf_trace_id_bytes(*out, canon) ? "a canonical id kept as text" : NULL;
	if (*tag == TAG_RECORD_ID && !r->has_id)
		return "an id refers to the record's, which has none";
	if (*tag == TAG_BINARY) {
		if ((why = get_bytes(r, ID_BYTES, &raw)) != NULL)
			return why;
		if (r->has_id && memcmp(raw, r->id, ID_BYTES) == 0)
			return "the record's id is stored again";
	}
	tf_hex(raw, ID_BYTES, scratch);
	*out = scratch;
	return NULL;
}

static const char *get_sha(struct tf_record_reader *r, char *scratch, const char **out)
{
	const unsigned char *raw;
	unsigned char tag, canon[SHA_BYTES];
	const char *why = get_tag(r, &tag, out);

	if (why != NULL)
		return why;
	if (tag == TAG_TEXT)
		return tf_trace_sha_bytes(*out, canon) ? "a canonical hash kept as text" : NULL;
	if (tag != TAG_BINARY)
		return "a hash has an id's tag";
	if ((why = get_bytes(r, SHA_BYTES, &raw)) != NULL)
		return why;
	tf_hex(raw, SHA_BYTES, scratch);
	*out = scratch;
	return NULL;
}

static const char *get_sig(struct tf_record_reader *r, char *scratch, const char **out)
{
	const unsigned char *raw;
	unsigned char tag, canon[SIG_BYTES + 2];
	const char *why = get_tag(r, &tag, out);

	if (why != NULL)
		return why;
	if (tag == TAG_TEXT)
		return canonical_sig(*out, canon) ? "a canonical signature kept as text" : NULL;
	if (tag != TAG_BINARY)
		return "a signature has an id's tag";
	if ((why = get_bytes(r, SIG_BYTES, &raw)) != NULL)
		return why;
	EVP_EncodeBlock((unsigned char *)scratch, raw, SIG_BYTES);
	*out = scratch;
	return NULL;
}

static const char *get_number(struct tf_record_reader *r, char *scratch, const char **out)
{
	unsigned char tag;
	uint64_t v;
	const char *why = get_tag(r, &tag, out);

	if (why != NULL)
		return why;
	if (tag == TAG_TEXT)
		return canonical_number(*out, &v) ? "a canonical number kept as text" : NULL;
	if (tag != TAG_BINARY)
		return "a number has an id's tag";
	if ((why = get_varint(r, &v)) != NULL)
		return why;
	scratch[tf_put_decimal(scratch, v)] = '\0';
	*out = scratch;
	return NULL;
}

static int fail(const struct tf_record_reader *r, struct tf_err *err, const char *what)
{
	return tf_err_set(err, TF_ERR_INVALID, "event %llu: %s",
		(unsigned long long)r->next_seq, what);
}

/* Field i of ev into ev->values[i]; *tag: how it was stored, when an id. */
static int get_field(struct tf_record_reader *r, const struct tf_record_names *names,
		struct tf_event *ev, size_t i, unsigned char *tag, struct tf_err *err)
{
	const char *why = NULL;
	uint64_t number;

	switch ((enum field_class)schema[ev->kind][i]) {
	case F_NAME:
		why = get_name(r, names, &ev->values[i], &number);
		if (why == NULL && ev->values[i] == NULL)
			return tf_err_set(err, TF_ERR_INVALID, "event %llu: unknown name %llu",
				(unsigned long long)r->next_seq, (unsigned long long)number);
		break;
	case F_TEXT:
		why = get_text(r, &ev->values[i]);
		break;
	case F_ID:
		why = get_id(r, r->scratch[i], &ev->values[i], tag);
		break;
	case F_SHA:
		why = get_sha(r, r->scratch[i], &ev->values[i]);
		break;
	case F_SIG:
		why = get_sig(r, r->scratch[i], &ev->values[i]);
		break;
	case F_NUMBER:
		why = get_number(r, r->scratch[i], &ev->values[i]);
		break;
	}
	return why == NULL ? TF_OK : fail(r, err, why);
}

/* The head and time of the next event. */
static int get_head(struct tf_record_reader *r, bool first, struct tf_event *ev, size_t *present,
		struct tf_err *err)
{
	unsigned char head;
	uint64_t delta;
	size_t n;
	const char *why;

	if ((why = get_byte(r, &head)) != NULL || (why = get_varint(r, &delta)) != NULL)
		return fail(r, err, why);
	if ((head & 0x0f) >= TF_EVENT_KINDS)
		return fail(r, err, "unknown event kind");
	ev->kind = (enum tf_event_kind)(head & 0x0f);
	tf_event_fields(ev->kind, &n);
	if ((size_t)(head >> 4) > n)
		return fail(r, err, "more absent fields than the kind has");
	*present = n - (head >> 4);
	if (first && delta != 0)
		return fail(r, err, "the first event's time differs from the record's");
	/* Times are int64 stored as their two's complement (as the text
	 * encoding prints them): the sum must not pass INT64_MAX. */
	if (delta > (uint64_t)INT64_MAX - (uint64_t)r->ts)
		return fail(r, err, "a time is out of range");
	r->ts = (int64_t)((uint64_t)r->ts + delta);
	ev->ts_ms = r->ts;
	return TF_OK;
}

/* A record holds one event, or events of the message it names: checks
 * that ev (whose id field was stored as tag says) is one the writer puts
 * there (tf_record_accepts), so that each record has one encoding. */
static int check_grouping(const struct tf_record_reader *r, bool first, const struct tf_event *ev,
		size_t present, unsigned char tag, struct tf_err *err)
{
	bool by_id = names_a_message(ev->kind) && present > 0;

	if (!first) {
		if (ev->kind != TF_EVENT_DELIVERY || !by_id || tag != TAG_RECORD_ID)
			return fail(r, err, "not a delivery of the record's message");
		return TF_OK;
	}
	if (r->has_id && !(by_id && tag == TAG_RECORD_ID))
		return fail(r, err, "the record's id is not its first event's");
	if (!r->has_id && by_id && tag == TAG_BINARY)
		return fail(r, err, "the record lacks its first event's id");
	return TF_OK;
}

static int refuse_record(uint64_t first_seq, struct tf_err *err, const char *why)
{
	return tf_err_set(err, TF_ERR_INVALID, "record of event %llu: %s",
		(unsigned long long)first_seq, why);
}

int tf_record_open(struct tf_record_reader *r, const void *bytes, size_t len,
		uint64_t first_seq, struct tf_err *err)
{
	const unsigned char *id;
	unsigned char format = 0, has_id = 0;
	uint64_t count = 0, first_ts = 0;
	const char *why;

	memset(r, 0, sizeof(*r));
	r->p = bytes;
	r->end = r->p + len;
	if ((why = get_byte(r, &format)) != NULL || (why = get_varint(r, &count)) != NULL
			|| (why = get_varint(r, &first_ts)) != NULL
			|| (why = get_byte(r, &has_id)) != NULL)
		return refuse_record(first_seq, err, why);
	if (format != TF_RECORD_FORMAT || has_id > 1)
		return refuse_record(first_seq, err, "not a format-2 record");
	if (count == 0 || count > TF_RECORD_MAX_EVENTS || (has_id == 0 && count > 1)) {
		unsigned long long n = count;

		return tf_err_set(err, TF_ERR_INVALID, "record of event %llu: %llu events "
			"(1 to %u, only 1 without an id)", (unsigned long long)first_seq, n,
			TF_RECORD_MAX_EVENTS);
	}
	if (has_id) {
		if ((why = get_bytes(r, ID_BYTES, &id)) != NULL)
			return refuse_record(first_seq, err, why);
		memcpy(r->id, id, ID_BYTES);
	}
	r->has_id = has_id;
	r->count = r->left = (uint32_t)count;
	r->next_seq = first_seq;
	r->ts = (int64_t)first_ts;
	return TF_OK;
}

uint32_t tf_record_count(const struct tf_record_reader *r)
{
	return r->count;
}

int tf_record_next(struct tf_record_reader *r, const struct tf_record_names *names,
		struct tf_event *ev, struct tf_err *err)
{
	bool first = r->left == r->count;
	unsigned char tag = TAG_TEXT, other_tag;
	size_t present = 0;
	int rc;

	memset(ev, 0, sizeof(*ev));
	if (r->left == 0)
		return fail(r, err, "no event left in the record");
	if ((rc = get_head(r, first, ev, &present, err)) != TF_OK)
		return rc;
	ev->seq = r->next_seq;
	for (size_t i = 0; i < present; i++)
		if ((rc = get_field(r, names, ev, i, i == 0 ? &tag : &other_tag, err)) != TF_OK)
			return rc;
	if ((rc = check_grouping(r, first, ev, present, tag, err)) != TF_OK)
		return rc;
	if (--r->left == 0 && r->p != r->end)
		return fail(r, err, "bytes after the record's last event");
	r->next_seq++;
	return TF_OK;
}
