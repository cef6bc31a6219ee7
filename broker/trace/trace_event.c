#include "broker/trace/trace_event.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "broker/stamp/fields.h"

#define EVENT_HEADER "trustflow-event-1\n"

static const char *const kind_names[TF_EVENT_KINDS] = {
	[TF_EVENT_MESSAGE] = "message",
	[TF_EVENT_DELIVERY] = "delivery",
	[TF_EVENT_RELEASE] = "release",
	[TF_EVENT_DISCARD] = "discard",
	[TF_EVENT_ALERT] = "alert",
	[TF_EVENT_POLICY_SET] = "policy-set",
	[TF_EVENT_POLICY] = "policy",
};

/* of: the id of the message a view copy was made of; empty for any
 * other message. peer: the peer broker a relayed message came from;
 * hops: its earlier stamps, a JSON array of hop records, oldest first
 * (federation-v1); both empty for any other message. client_id: the
 * session a delivery went to (client names the identity). Events
 * recorded before these fields existed end before them. */
static const char *const message_fields[] = {
	"id", "topic", "org", "client", "policy", "sha256", "size", "status", "reason",
	"stamp_seq", "kid", "sig", "of", "peer", "hops",
};
static const char *const delivery_fields[] = {
	"id", "policy", "client", "org", "outcome", "reason", "client_id",
};
/* reason: why a held message was discarded (its retention passed), or
 * that a release overrode the rules it breaks; empty for an ordinary
 * one. Events recorded before the field existed end after "by". */
static const char *const held_fields[] = { "id", "flow", "by", "reason" };
static const char *const alert_fields[] = {
	"alert", "alert_kind", "policy", "org", "client", "detail", "action",
};
static const char *const policy_set_fields[] = { "result", "policies", "files" };
/* A policy as accepted: its label (id@version), owner, the topic it is
 * published on, its file's name, the SHA-256 of the file, the key id and
 * signature of its owner's signature (empty: unsigned), and the file's
 * bytes in standard base64: what an auditor needs to show which rules the
 * owner authorized. */
static const char *const policy_fields[] = {
	"policy", "org", "topic", "name", "sha256", "kid", "sig", "file",
};

/* n fields, of which the first `since_1_0` every event of the kind has;
 * later ones were added since and may be absent from older events. */
static const struct {
	const char *const *names;
	size_t n, since_1_0;
} kind_fields[TF_EVENT_KINDS] = {
	[TF_EVENT_MESSAGE] = { message_fields, 15, 12 },
	[TF_EVENT_DELIVERY] = { delivery_fields, 7, 6 },
	[TF_EVENT_RELEASE] = { held_fields, 4, 3 },
	[TF_EVENT_DISCARD] = { held_fields, 4, 3 },
	[TF_EVENT_ALERT] = { alert_fields, 7, 7 },
	[TF_EVENT_POLICY_SET] = { policy_set_fields, 3, 3 },
	[TF_EVENT_POLICY] = { policy_fields, 8, 8 },
};

const char *tf_event_kind_name(enum tf_event_kind kind)
{
	return kind_names[kind];
}

const char *const *tf_event_fields(enum tf_event_kind kind, size_t *count)
{
	*count = kind_fields[kind].n;
	return kind_fields[kind].names;
}

size_t tf_event_fields_min(enum tf_event_kind kind)
{
	return kind_fields[kind].since_1_0;
}

size_t tf_event_encode(const struct tf_event *ev, char *buf, size_t cap)
{
	const char *names[3 + TF_EVENT_MAX_FIELDS] = { "kind", "seq", "ts" };
	const char *values[3 + TF_EVENT_MAX_FIELDS];
	char seq[21], ts[21];
	size_t n = kind_fields[ev->kind].n;

	seq[tf_put_decimal(seq, ev->seq)] = '\0';
	ts[tf_put_decimal(ts, (uint64_t)ev->ts_ms)] = '\0';
	values[0] = kind_names[ev->kind];
	values[1] = seq;
	values[2] = ts;
	/* An absent trailing field (NULL, see tf_event_decode) is not encoded. */
	while (n > 0 && ev->values[n - 1] == NULL)
		n--;
	for (size_t i = 0; i < n; i++) {
		names[3 + i] = kind_fields[ev->kind].names[i];
		values[3 + i] = ev->values[i];
	}
	return tf_fields_encode(EVENT_HEADER, names, values, 3 + n, buf, cap);
}

/* A cursor over encoded bytes. */
struct reader {
	const char *p, *end, *start;
	char *out, *out_end;   /* scratch, where values are copied */
	struct tf_err *err;
};

static int fail(struct reader *r, const char *what)
{
	return tf_err_set(r->err, TF_ERR_INVALID, "event byte %zu: %s",
		(size_t)(r->p - r->start), what);
}

/* Reads one "name:len:value\n" whose name must be `name`; *value is a
 * NUL-terminated copy in scratch. */
static int read_field(struct reader *r, const char *name, const char **value)
{
	size_t nl = strlen(name), len = 0, digits = 0;

	if ((size_t)(r->end - r->p) < nl + 1 || memcmp(r->p, name, nl) != 0 || r->p[nl] != ':')
		return fail(r, "a field is missing or out of order");
	r->p += nl + 1;
	while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
		if (++digits > 7 || (digits > 1 && len == 0))
			return fail(r, "a length is too long or has a leading zero");
		len = len * 10 + (size_t)(*r->p++ - '0');
	}
	if (digits == 0 || r->p >= r->end || *r->p++ != ':')
		return fail(r, "a length is malformed");
	if ((size_t)(r->end - r->p) < len + 1 || r->p[len] != '\n')
		return fail(r, "a value runs past its length");
	if ((size_t)(r->out_end - r->out) < len + 1 || memchr(r->p, '\0', len) != NULL)
		return fail(r, "a value holds a NUL byte");
	memcpy(r->out, r->p, len);
	r->out[len] = '\0';
	*value = r->out;
	r->out += len + 1;
	r->p += len + 1;
	return TF_OK;
}

static bool decimal(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 19 || (n > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

int tf_event_decode(const char *bytes, size_t len, struct tf_event *ev, char *scratch,
		size_t scratch_cap, struct tf_err *err)
{
	struct reader r = { bytes, bytes + len, bytes, scratch, scratch + scratch_cap, err };
	const char *kind, *seq, *ts;
	uint64_t n;
	int k, rc;

	memset(ev, 0, sizeof(*ev));
	if (len > TF_EVENT_MAX_BYTES)
		return tf_err_set(err, TF_ERR_INVALID, "event of %zu bytes, more than allowed", len);
	if (len < sizeof(EVENT_HEADER) - 1 || memcmp(bytes, EVENT_HEADER, sizeof(EVENT_HEADER) - 1))
		return fail(&r, "not a trustflow-event-1 record");
	r.p += sizeof(EVENT_HEADER) - 1;
	if ((rc = read_field(&r, "kind", &kind)) != TF_OK || (rc = read_field(&r, "seq", &seq)) != TF_OK
			|| (rc = read_field(&r, "ts", &ts)) != TF_OK)
		return rc;
	for (k = 0; k < TF_EVENT_KINDS && strcmp(kind, kind_names[k]) != 0; k++)
		;
	if (k == TF_EVENT_KINDS)
		return fail(&r, "unknown event kind");
	ev->kind = (enum tf_event_kind)k;
	if (!decimal(seq, &ev->seq))
		return fail(&r, "seq is not a decimal number");
	if (!decimal(ts, &n) || n > INT64_MAX)
		return fail(&r, "ts is not a decimal number");
	ev->ts_ms = (int64_t)n;
	for (size_t i = 0; i < kind_fields[k].n; i++) {
		/* An event recorded before a later field existed: the value
		 * stays NULL (absent, not hashed). */
		if (r.p == r.end && i >= kind_fields[k].since_1_0)
			break;
		if ((rc = read_field(&r, kind_fields[k].names[i], &ev->values[i])) != TF_OK)
			return rc;
	}
	if (r.p != r.end)
		return fail(&r, "bytes after the last field");
	return TF_OK;
}

struct tf_event_hasher {
	EVP_MD_CTX *ctx;
	EVP_MD *sha256;     /* fetched once: OpenSSL 3 looks it up per use otherwise */
};

struct tf_event_hasher *tf_event_hasher_new(void)
{
	struct tf_event_hasher *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->ctx = EVP_MD_CTX_new();
	c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (c->ctx == NULL || c->sha256 == NULL) {
		tf_event_hasher_free(c);
		return NULL;
	}
	return c;
}

void tf_event_hasher_free(struct tf_event_hasher *c)
{
	if (c == NULL)
		return;
	EVP_MD_CTX_free(c->ctx);
	EVP_MD_free(c->sha256);
	free(c);
}

void tf_event_chain(struct tf_event_hasher *c, const unsigned char prev[32], const char *bytes,
		size_t len, unsigned char out[32])
{
	EVP_MD_CTX *ctx = c ? c->ctx : EVP_MD_CTX_new();
	unsigned int out_len = 32;

	/* Without a context (out of memory) the hash is all zeros, which no
	 * verification accepts: the store then fails closed. */
	memset(out, 0, 32);
	if (ctx == NULL)
		return;
	if (EVP_DigestInit_ex(ctx, c ? c->sha256 : EVP_sha256(), NULL) != 1
			|| EVP_DigestUpdate(ctx, prev, 32) != 1
			|| EVP_DigestUpdate(ctx, bytes, len) != 1
			|| EVP_DigestFinal_ex(ctx, out, &out_len) != 1)
		memset(out, 0, 32);
	if (c == NULL)
		EVP_MD_CTX_free(ctx);
}
