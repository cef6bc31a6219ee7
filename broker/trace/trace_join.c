#include "broker/trace/trace_join.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/stamp/chain.h"
#include "broker/stamp/forms.h"
#include "broker/stamp/provenance.h"
#include "broker/trace/checkpoint.h"
#include "broker/trace/trace_event.h"
#include "broker/util/growable.h"

#define WHY_MAX 300
/* JSON numbers are exact up to 2^53 - 1. */
#define EXACT_MAX 9007199254740991.0

/* The keys bound to one broker, and which broker each key id is bound to. */
struct bound {
	char broker[TF_BROKER_ID_MAX + 1];
	struct tf_keyring *ring;
};
struct kid_binding {
	char kid[TF_KID_LEN + 1];
	uint32_t bound;   /* index in bounds */
};

struct view {
	char id[TF_MSGID_LEN + 1];
	cJSON *recipients;   /* borrowed from its object in the export's views */
};

/* One export as read, and what its checks found. */
struct export {
	char *name;
	uint64_t lines;
	/* The chain: events first..next-1, the hash before the first, and
	 * each event's recomputed chain hash (while nothing is broken). */
	bool started;
	uint64_t first, next;
	unsigned char prev0[32], hash[32];
	unsigned char (*hashes)[32];
	uint32_t n_hashes, cap_hashes;
	bool broken;                   /* the export failed while being read */
	struct tf_checkpoint *cps;     /* its checkpoint lines */
	uint32_t n_cps, cap_cps;
	/* The part: the events about the message. */
	cJSON *message, *repeated, *recipients, *forwards, *views;
	struct view *view_ids;
	uint32_t n_views, cap_views;
	uint64_t part_last;            /* the seq of its last event; 0: none */
	/* Settled by the result. */
	bool failed;
	char why[WHY_MAX];             /* the first thing wrong */
	bool has_broker;
	char broker[TF_BROKER_ID_MAX + 1];
	const struct tf_checkpoint *cover;
	bool cover_kept;
};

struct tf_join {
	char id[TF_MSGID_LEN + 1];
	struct bound *bounds;
	uint32_t n_bounds, cap_bounds;
	struct kid_binding *kids;
	uint32_t n_kids, cap_kids;
	struct tf_checkpoint *kept;
	uint32_t n_kept, cap_kept;
	struct export *exports;
	uint32_t n_exports, cap_exports;
	struct export *current;        /* being read */
	struct tf_event_hasher *hasher;
	char *buf;                     /* an event's bytes */
	size_t cap_buf;
	bool nomem;
};

static int nomem(struct tf_err *err)
{
	return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
}

int tf_join_new(const char *id, struct tf_join **out, struct tf_err *err)
{
	unsigned char raw[16];
	struct tf_join *j;

	*out = NULL;
	if (strlen(id) != TF_MSGID_LEN || !tf_unhex(id, TF_MSGID_LEN, raw, sizeof(raw)))
		return tf_err_set(err, TF_ERR_INVALID, "\"%.64s\" is not a message id (32 lowercase "
			"hex digits)", id);
	if ((j = calloc(1, sizeof(*j))) == NULL || (j->hasher = tf_event_hasher_new()) == NULL) {
		free(j);
		return nomem(err);
	}
	memcpy(j->id, id, TF_MSGID_LEN + 1);
	*out = j;
	return TF_OK;
}

static void export_free(struct export *x)
{
	free(x->name);
	free(x->hashes);
	free(x->cps);
	cJSON_Delete(x->message);
	cJSON_Delete(x->repeated);
	cJSON_Delete(x->recipients);
	cJSON_Delete(x->forwards);
	cJSON_Delete(x->views);
	free(x->view_ids);
}

void tf_join_free(struct tf_join *j)
{
	if (j == NULL)
		return;
	for (uint32_t i = 0; i < j->n_bounds; i++)
		tf_keyring_free(j->bounds[i].ring);
	for (uint32_t i = 0; i < j->n_exports; i++)
		export_free(&j->exports[i]);
	free(j->bounds);
	free(j->kids);
	free(j->kept);
	free(j->exports);
	tf_event_hasher_free(j->hasher);
	free(j->buf);
	free(j);
}

/* --- keys and kept checkpoints --------------------------------------------- */

static struct bound *bound_of(struct tf_join *j, const char *broker)
{
	for (uint32_t i = 0; i < j->n_bounds; i++)
		if (strcmp(j->bounds[i].broker, broker) == 0)
			return &j->bounds[i];
	return NULL;
}

int tf_join_bind_key(struct tf_join *j, const char *broker, const char *pem, size_t len,
		struct tf_err *err)
{
	struct tf_keyring *probe;
	char kid[TF_KID_LEN + 1];
	struct bound *b;
	int rc;

	if (broker[0] == '\0' || strlen(broker) > TF_BROKER_ID_MAX)
		return tf_err_set(err, TF_ERR_INVALID, "\"%.40s\": not a broker id", broker);
	/* The key's id first, to refuse a key bound to another broker. */
	if ((probe = tf_keyring_new()) == NULL)
		return nomem(err);
	rc = tf_keyring_add_pem(probe, pem, len, kid, err);
	tf_keyring_free(probe);
	if (rc != TF_OK)
		return rc;
	for (uint32_t i = 0; i < j->n_kids; i++) {
		const char *other = j->bounds[j->kids[i].bound].broker;

		if (strcmp(j->kids[i].kid, kid) == 0 && strcmp(other, broker) != 0)
			return tf_err_set(err, TF_ERR_INVALID, "the key %s is bound to %s and to %s: "
				"each broker needs a key of its own", kid, other, broker);
	}
	if ((b = bound_of(j, broker)) == NULL) {
		if (!tf_grow(&j->bounds, &j->cap_bounds, j->n_bounds, 4, UINT32_MAX))
			return nomem(err);
		b = &j->bounds[j->n_bounds];
		memset(b, 0, sizeof(*b));
		strcpy(b->broker, broker);
		if ((b->ring = tf_keyring_new()) == NULL)
			return nomem(err);
		j->n_bounds++;
	}
	if ((rc = tf_keyring_add_pem(b->ring, pem, len, NULL, err)) != TF_OK)
		return rc;
	if (!tf_grow(&j->kids, &j->cap_kids, j->n_kids, 4, UINT32_MAX))
		return nomem(err);
	memcpy(j->kids[j->n_kids].kid, kid, sizeof(kid));
	j->kids[j->n_kids++].bound = (uint32_t)(b - j->bounds);
	return TF_OK;
}

int tf_join_bind_key_file(struct tf_join *j, const char *broker, const char *path,
		struct tf_err *err)
{
	FILE *f = fopen(path, "rb");
	char pem[8192];
	size_t len;
	bool whole;

	if (f == NULL)
		return tf_err_set(err, TF_ERR_IO, "%s: cannot be read", path);
	len = fread(pem, 1, sizeof(pem), f);
	whole = !ferror(f) && feof(f);
	fclose(f);
	if (!whole)
		return tf_err_set(err, TF_ERR_IO, "%s: cannot be read, or too long for a key", path);
	if (tf_join_bind_key(j, broker, pem, len, err) != TF_OK) {
		struct tf_err inner = *err;

		return tf_err_set(err, TF_ERR_INVALID, "%s: %s", path, inner.msg);
	}
	return TF_OK;
}

static bool blank(const char *line, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '\n')
			return false;
	return true;
}

/* A checkpoint line's checkpoint: {"checkpoint": {...}} and nothing else
 * (bare: the published form itself also does). */
static int checkpoint_of(const cJSON *o, bool bare_too, struct tf_checkpoint *cp,
		struct tf_err *err)
{
	const cJSON *inner = cJSON_GetObjectItemCaseSensitive(o, "checkpoint");

	if (inner == NULL && bare_too)
		return tf_checkpoint_from_object(o, cp, err);
	if (inner == NULL || o->child != inner || inner->next != NULL)
		return tf_err_set(err, TF_ERR_INVALID, "a checkpoint line has members besides "
			"\"checkpoint\"");
	return tf_checkpoint_from_object(inner, cp, err);
}

int tf_join_keep_checkpoint(struct tf_join *j, const char *line, size_t len,
		struct tf_err *err)
{
	const char *brace = memchr(line, '{', len);
	struct tf_checkpoint cp;
	cJSON *o;
	int rc;

	if (blank(line, len))
		return TF_OK;
	if (brace == NULL)
		return tf_err_set(err, TF_ERR_INVALID, "not a checkpoint");
	o = cJSON_ParseWithLength(brace, len - (size_t)(brace - line));
	rc = checkpoint_of(o, true, &cp, err);
	cJSON_Delete(o);
	if (rc != TF_OK)
		return rc;
	if (!tf_grow(&j->kept, &j->cap_kept, j->n_kept, 16, UINT32_MAX))
		return nomem(err);
	j->kept[j->n_kept++] = cp;
	return TF_OK;
}

/* --- reading an export -------------------------------------------------------- */

int tf_join_begin_export(struct tf_join *j, const char *name, struct tf_err *err)
{
	struct export *x;

	if (!tf_grow(&j->exports, &j->cap_exports, j->n_exports, 4, UINT32_MAX))
		return nomem(err);
	x = &j->exports[j->n_exports];
	memset(x, 0, sizeof(*x));
	x->name = strdup(name);
	x->recipients = cJSON_CreateArray();
	x->forwards = cJSON_CreateArray();
	if (x->name == NULL || x->recipients == NULL || x->forwards == NULL) {
		export_free(x);
		return nomem(err);
	}
	j->n_exports++;
	j->current = x;
	return TF_OK;
}

void tf_join_end_export(struct tf_join *j)
{
	j->current = NULL;
}

/* The first thing wrong with an export; later ones are not recorded. */
__attribute__((format(printf, 2, 3)))
static void fail(struct export *x, const char *fmt, ...)
{
	va_list ap;

	if (x->failed)
		return;
	x->failed = true;
	va_start(ap, fmt);
	vsnprintf(x->why, sizeof(x->why), fmt, ap);
	va_end(ap);
}

/* A line that breaks the export: its chain is not checked further. */
#define broken(x, ...) do { fail((x), __VA_ARGS__); (x)->broken = true; } while (0)

static bool whole(const cJSON *m, double min, uint64_t *out)
{
	if (!cJSON_IsNumber(m) || m->valuedouble < min || m->valuedouble > EXACT_MAX
			|| m->valuedouble != (double)(uint64_t)m->valuedouble)
		return false;
	*out = (uint64_t)m->valuedouble;
	return true;
}

static bool hex32(const cJSON *m, unsigned char out[32])
{
	return cJSON_IsString(m) && strlen(m->valuestring) == 64
		&& tf_unhex(m->valuestring, 64, out, 32);
}

static bool kind_named(const char *name, enum tf_event_kind *out)
{
	for (int k = 0; k < TF_EVENT_KINDS; k++) {
		if (strcmp(tf_event_kind_name((enum tf_event_kind)k), name) == 0) {
			*out = (enum tf_event_kind)k;
			return true;
		}
	}
	return false;
}

static const char *const extra_members[] = { "kind", "seq", "ts", "hash", "prev" };
#define N_EXTRA 5

/* The event of an event line, its values borrowed from o; false (the
 * export failed, saying why) when the line is not one. */
static bool read_event(struct export *x, const cJSON *o, struct tf_event *ev,
		unsigned char line_hash[32], bool *has_prev, unsigned char prev[32])
{
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o, "kind"), *m;
	unsigned long long line = (unsigned long long)x->lines;
	uint32_t seen = 0;
	const char *const *names;
	uint64_t ts;
	size_t n;

	memset(ev, 0, sizeof(*ev));
	*has_prev = false;
	if (!cJSON_IsString(kind) || !kind_named(kind->valuestring, &ev->kind)) {
		broken(x, "line %llu: neither an event of a known kind nor a checkpoint", line);
		return false;
	}
	names = tf_event_fields(ev->kind, &n);
	/* Every member once, and each one this kind of event has: a member
	 * that is not hashed would be believed without proof. */
	cJSON_ArrayForEach(m, o) {
		size_t at = 0;

		while (at < n && strcmp(m->string, names[at]) != 0)
			at++;
		if (at == n) {
			while (at < n + N_EXTRA && strcmp(m->string, extra_members[at - n]) != 0)
				at++;
		}
		if (at == n + N_EXTRA) {
			broken(x, "line %llu: a %s event has no member \"%.40s\"", line,
				kind->valuestring, m->string);
			return false;
		}
		if (seen & (1u << at)) {
			broken(x, "line %llu: \"%.40s\" appears twice", line, m->string);
			return false;
		}
		seen |= 1u << at;
		if (at < n) {
			if (!cJSON_IsString(m)) {
				broken(x, "line %llu: \"%s\" is not a string", line, names[at]);
				return false;
			}
			ev->values[at] = m->valuestring;
		}
	}
	/* Fields are left out from the end only: those added since the
	 * event was recorded. */
	for (size_t i = 0; i < n; i++) {
		if (ev->values[i] == NULL && (i < tf_event_fields_min(ev->kind)
				|| (i + 1 < n && ev->values[i + 1] != NULL))) {
			broken(x, "line %llu: \"%s\" is missing", line, names[i]);
			return false;
		}
	}
	if (!whole(cJSON_GetObjectItemCaseSensitive(o, "seq"), 1, &ev->seq)
			|| !whole(cJSON_GetObjectItemCaseSensitive(o, "ts"), 0, &ts)) {
		broken(x, "line %llu: \"seq\" or \"ts\" is missing or not a whole number", line);
		return false;
	}
	ev->ts_ms = (int64_t)ts;
	if (!hex32(cJSON_GetObjectItemCaseSensitive(o, "hash"), line_hash)) {
		broken(x, "line %llu: \"hash\" is missing or not 64 hex digits", line);
		return false;
	}
	m = cJSON_GetObjectItemCaseSensitive(o, "prev");
	if (m != NULL && !hex32(m, prev)) {
		broken(x, "line %llu: \"prev\" is not 64 hex digits", line);
		return false;
	}
	*has_prev = m != NULL;
	return true;
}

/* The event's place in the chain: the next seq, hashed onto the one
 * before; its hash kept for the checkpoints. */
static int chain_event(struct tf_join *j, struct export *x, const struct tf_event *ev,
		const unsigned char line_hash[32], bool has_prev, const unsigned char prev[32])
{
	unsigned long long seq = (unsigned long long)ev->seq;
	unsigned char out[32];
	size_t len;

	if (!x->started) {
		if (!has_prev) {
			broken(x, "line %llu: the first event has no \"prev\"",
				(unsigned long long)x->lines);
			return TF_OK;
		}
		x->started = true;
		x->first = x->next = ev->seq;
		memcpy(x->prev0, prev, 32);
		memcpy(x->hash, prev, 32);
	} else if (has_prev) {
		broken(x, "line %llu: \"prev\" after the first event", (unsigned long long)x->lines);
		return TF_OK;
	}
	if (ev->seq != x->next) {
		if (ev->seq > x->next)
			broken(x, "event %llu is missing", (unsigned long long)x->next);
		else
			broken(x, "event %llu: out of order after event %llu", seq,
				(unsigned long long)x->next - 1);
		return TF_OK;
	}
	len = tf_event_encode(ev, j->buf, j->cap_buf);
	if (len > j->cap_buf) {
		char *bigger = realloc(j->buf, len);

		if (bigger == NULL)
			return TF_ERR_NOMEM;
		j->buf = bigger;
		j->cap_buf = len;
		tf_event_encode(ev, j->buf, j->cap_buf);
	}
	tf_event_chain(j->hasher, x->hash, j->buf, len, out);
	memcpy(x->hash, out, 32);
	if (memcmp(out, line_hash, 32) != 0) {
		broken(x, "event %llu: its fields do not give its hash (chain hash mismatch)", seq);
		return TF_OK;
	}
	if (!tf_grow(&x->hashes, &x->cap_hashes, x->n_hashes, 1024, UINT32_MAX))
		return TF_ERR_NOMEM;
	memcpy(x->hashes[x->n_hashes++], out, 32);
	x->next++;
	return TF_OK;
}

/* --- the part: the events about the message ----------------------------------- */

static bool put_string(cJSON *o, const char *name, const char *value)
{
	return cJSON_AddStringToObject(o, name, value) != NULL;
}

static bool put_number(cJSON *o, const char *name, double value)
{
	return cJSON_AddNumberToObject(o, name, value) != NULL;
}

/* A relayed message's hop records as an array, and the prev of its
 * stamp (the link to the last record); the value as it is when it is not
 * an array of records. */
static bool put_hops(cJSON *o, const char *hops)
{
	cJSON *records = cJSON_Parse(hops), *r;
	char prev[TF_PREV_B64_LEN + 1];
	bool ok = cJSON_IsArray(records) && cJSON_GetArraySize(records) > 0;

	cJSON_ArrayForEach(r, records)
		ok = ok && cJSON_IsString(r);
	if (!ok) {
		cJSON_Delete(records);
		return put_string(o, "hops", hops);
	}
	r = cJSON_GetArrayItem(records, cJSON_GetArraySize(records) - 1);
	tf_chain_link(r->valuestring, strlen(r->valuestring), prev);
	if (!put_string(o, "prev", prev)) {
		cJSON_Delete(records);
		return false;
	}
	return cJSON_AddItemToObject(o, "hops", records);
}

/* A message event as exported, less what the join says once (its id)
 * and with its hops as an array. */
static cJSON *message_object(const struct tf_event *ev)
{
	const char *const *names;
	cJSON *o = cJSON_CreateObject();
	bool ok = o != NULL && put_number(o, "seq", (double)ev->seq)
		&& put_number(o, "ts", (double)ev->ts_ms);
	size_t n;

	names = tf_event_fields(ev->kind, &n);
	for (size_t i = 1; i < n && ok && ev->values[i] != NULL; i++) {
		const char *name = names[i], *v = ev->values[i];

		/* Left out when empty: what most messages do not have. */
		if (v[0] == '\0' && (strcmp(name, "reason") == 0 || strcmp(name, "of") == 0
				|| strcmp(name, "peer") == 0 || strcmp(name, "hops") == 0))
			continue;
		ok = strcmp(name, "hops") == 0 ? put_hops(o, v) : put_string(o, name, v);
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* A delivery as an item of "recipients", or of "forwards" for a peer
 * broker (client: its broker id; client_id: its link). */
static cJSON *delivery_object(const struct tf_event *ev, bool forward)
{
	const char *const *f = ev->values;
	cJSON *o = cJSON_CreateObject();
	bool ok = o != NULL;

	if (forward) {
		ok = ok && put_string(o, "broker", f[2]) && put_string(o, "org", f[3])
			&& (f[6] == NULL || put_string(o, "link", f[6]));
	} else {
		ok = ok && put_string(o, "client", f[2]) && put_string(o, "org", f[3])
			&& put_string(o, "outcome", f[4])
			&& (f[6] == NULL || put_string(o, "client_id", f[6]));
	}
	ok = ok && (f[5] == NULL || f[5][0] == '\0' || put_string(o, "reason", f[5]))
		&& put_string(o, "policy", f[1]) && put_number(o, "seq", (double)ev->seq)
		&& put_number(o, "ts", (double)ev->ts_ms);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static struct view *view_of(struct export *x, const char *id)
{
	for (uint32_t i = 0; i < x->n_views; i++)
		if (strcmp(x->view_ids[i].id, id) == 0)
			return &x->view_ids[i];
	return NULL;
}

static bool add_view(struct export *x, const struct tf_event *ev)
{
	const char *const *f = ev->values;
	cJSON *o, *recipients;

	if (strlen(f[0]) != TF_MSGID_LEN || view_of(x, f[0]) != NULL)
		return true;
	if ((x->views == NULL && (x->views = cJSON_CreateArray()) == NULL)
			|| !tf_grow(&x->view_ids, &x->cap_views, x->n_views, 4, UINT32_MAX)
			|| (o = cJSON_CreateObject()) == NULL)
		return false;
	if (!cJSON_AddItemToArray(x->views, o) || !put_string(o, "id", f[0])
			|| !put_number(o, "seq", (double)ev->seq) || !put_number(o, "ts", (double)ev->ts_ms)
			|| !put_string(o, "topic", f[1]) || !put_string(o, "status", f[7])
			|| (recipients = cJSON_AddArrayToObject(o, "recipients")) == NULL)
		return false;
	memcpy(x->view_ids[x->n_views].id, f[0], TF_MSGID_LEN + 1);
	x->view_ids[x->n_views++].recipients = recipients;
	return true;
}

/* A release or discard: the message's status, who, and why when the
 * rules decided it. */
static bool ended(cJSON *message, const struct tf_event *ev)
{
	const char *reason = ev->values[3];

	if (message == NULL)
		return true;
	cJSON_DeleteItemFromObjectCaseSensitive(message, "status");
	cJSON_DeleteItemFromObjectCaseSensitive(message, "by");
	if (!put_string(message, "status", ev->kind == TF_EVENT_RELEASE ? "released" : "discarded")
			|| (ev->values[2] != NULL && !put_string(message, "by", ev->values[2])))
		return false;
	if (reason == NULL || reason[0] == '\0')
		return true;
	cJSON_DeleteItemFromObjectCaseSensitive(message, "reason");
	return put_string(message, "reason", reason);
}

/* Keeps the event when it is about the message (or a view copy of it).
 * False when out of memory. */
static bool collect(struct tf_join *j, struct export *x, const struct tf_event *ev)
{
	const char *const *f = ev->values;
	struct view *v;
	cJSON *o;

	switch (ev->kind) {
	case TF_EVENT_MESSAGE:
		if (strcmp(f[0], j->id) == 0) {
			if ((o = message_object(ev)) == NULL)
				return false;
			if (x->message == NULL) {
				x->message = o;
			} else if ((x->repeated == NULL && (x->repeated = cJSON_CreateArray()) == NULL)
					|| !cJSON_AddItemToArray(x->repeated, o)) {
				cJSON_Delete(o);
				return false;
			}
		} else if (f[12] != NULL && strcmp(f[12], j->id) == 0) {
			if (!add_view(x, ev))
				return false;
		} else {
			return true;
		}
		break;
	case TF_EVENT_DELIVERY:
		if (strcmp(f[0], j->id) == 0 && f[4] != NULL) {
			bool forward = strcmp(f[4], "forwarded") == 0;

			if ((o = delivery_object(ev, forward)) == NULL)
				return false;
			if (!cJSON_AddItemToArray(forward ? x->forwards : x->recipients, o)) {
				cJSON_Delete(o);
				return false;
			}
		} else if (f[4] != NULL && (v = view_of(x, f[0])) != NULL) {
			if ((o = delivery_object(ev, false)) == NULL)
				return false;
			if (!cJSON_AddItemToArray(v->recipients, o)) {
				cJSON_Delete(o);
				return false;
			}
		} else {
			return true;
		}
		break;
	case TF_EVENT_RELEASE:
	case TF_EVENT_DISCARD:
		if (strcmp(f[0], j->id) != 0)
			return true;
		if (!ended(x->message, ev))
			return false;
		break;
	default:
		return true;
	}
	x->part_last = ev->seq;
	return true;
}

int tf_join_export_line(struct tf_join *j, const char *line, size_t len, struct tf_err *err)
{
	struct export *x = j->current;
	unsigned char line_hash[32], prev[32];
	struct tf_checkpoint cp;
	struct tf_err why = { "" };
	struct tf_event ev;
	bool has_prev;
	cJSON *o;
	int rc = TF_OK;

	x->lines++;
	if (blank(line, len))
		return TF_OK;
	o = cJSON_ParseWithLength(line, len);
	if (!cJSON_IsObject(o)) {
		broken(x, "line %llu: not a JSON object", (unsigned long long)x->lines);
	} else if (cJSON_GetObjectItemCaseSensitive(o, "checkpoint") != NULL) {
		if (checkpoint_of(o, false, &cp, &why) != TF_OK)
			broken(x, "line %llu: %s", (unsigned long long)x->lines, why.msg);
		else if (!tf_grow(&x->cps, &x->cap_cps, x->n_cps, 16, UINT32_MAX))
			rc = TF_ERR_NOMEM;
		else
			x->cps[x->n_cps++] = cp;
	} else if (read_event(x, o, &ev, line_hash, &has_prev, prev)) {
		if (!x->broken)
			rc = chain_event(j, x, &ev, line_hash, has_prev, prev);
		/* What the export says of the message is kept even when its chain
		 * broke: the answer shows what was not proven, and why. */
		if (rc == TF_OK && !collect(j, x, &ev))
			rc = TF_ERR_NOMEM;
	}
	cJSON_Delete(o);
	return rc == TF_OK ? TF_OK : nomem(err);
}

/* --- checking each export against the checkpoints ------------------------------- */

enum cover { IN_CHAIN, BEFORE_EXPORT, MISMATCH, PAST_END };

/* Where a checkpoint falls on the export's chain, and whether its hash is
 * the chain's there. */
static enum cover place(const struct export *x, const struct tf_checkpoint *cp)
{
	const unsigned char *hash;
	char hex[65];

	if (!x->started)
		return PAST_END;
	if (cp->seq + 1 < x->first)
		return BEFORE_EXPORT;
	if (cp->seq >= x->next)
		return PAST_END;
	hash = cp->seq + 1 == x->first ? x->prev0 : x->hashes[cp->seq - x->first];
	tf_hex(hash, 32, hex);
	return strcmp(hex, cp->hash) == 0 ? IN_CHAIN : MISMATCH;
}

static const char *last_event(const struct export *x, char *buf, size_t cap)
{
	if (!x->started)
		snprintf(buf, cap, "it holds no event");
	else
		snprintf(buf, cap, "it ends at event %llu", (unsigned long long)x->next - 1);
	return buf;
}

/* The smallest checkpoint that covers the part, kept or not. */
static void consider(struct export *x, const struct tf_checkpoint *cp, bool kept)
{
	if (x->part_last == 0 || cp->seq < x->part_last)
		return;
	if (x->cover == NULL || cp->seq < x->cover->seq) {
		x->cover = cp;
		x->cover_kept = kept;
	}
}

static void check_checkpoint(struct export *x, const struct bound *b,
		const struct tf_checkpoint *cp, bool kept)
{
	const char *whose = kept ? "the checkpoint you kept" : "its checkpoint";
	unsigned long long seq = (unsigned long long)cp->seq;
	enum tf_stamp_check c = tf_checkpoint_check(cp, b->ring);
	char end[64];

	if (c == TF_STAMP_UNKNOWN_KEY) {
		fail(x, "%s at seq %llu is signed with key %s, which is not bound to %s", whose, seq,
			cp->kid, b->broker);
		return;
	}
	if (c != TF_STAMP_VALID) {
		fail(x, "%s at seq %llu: its signature does not verify", whose, seq);
		return;
	}
	if (x->broken)
		return;
	switch (place(x, cp)) {
	case IN_CHAIN:
		consider(x, cp, kept);
		break;
	case BEFORE_EXPORT:
		break;
	case MISMATCH:
		fail(x, "the chain at event %llu is not the one %s at seq %llu signed: events were "
			"changed, removed or inserted", seq, whose, seq);
		break;
	case PAST_END:
		fail(x, "%s, but %s at seq %llu covers more: events are missing at its end%s",
			last_event(x, end, sizeof(end)), whose, seq,
			kept ? " (or the checkpoint is newer than the export: export again)" : "");
		break;
	}
}

static void settle(struct tf_join *j, struct export *x)
{
	const struct bound *b;

	/* The broker: the one its checkpoints name. */
	if (x->n_cps == 0) {
		fail(x, "the export holds no checkpoint (tfctl trace export --checkpoints)");
		return;
	}
	x->has_broker = true;
	strcpy(x->broker, x->cps[0].broker);
	for (uint32_t i = 1; i < x->n_cps; i++) {
		if (strcmp(x->cps[i].broker, x->broker) != 0) {
			fail(x, "its checkpoints name two brokers, %s and %s", x->broker,
				x->cps[i].broker);
			return;
		}
	}
	if ((b = bound_of(j, x->broker)) == NULL) {
		fail(x, "no key is bound to %s (--key-of %s PEM)", x->broker, x->broker);
		return;
	}
	for (uint32_t i = 0; i < x->n_cps; i++)
		check_checkpoint(x, b, &x->cps[i], false);
	for (uint32_t i = 0; i < j->n_kept; i++)
		if (strcmp(j->kept[i].broker, x->broker) == 0)
			check_checkpoint(x, b, &j->kept[i], true);
	if (x->part_last == 0)
		return;
	if (x->message == NULL)
		fail(x, "its export holds events of the message but not its message event (the "
			"export starts after it)");
	if (x->cover == NULL)
		fail(x, "no checkpoint covers its last event, %llu: export again after the broker's "
			"next checkpoint", (unsigned long long)x->part_last);
}

/* --- the path and the gaps ---------------------------------------------------- */

static const char *string_of(const cJSON *o, const char *name)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(m) ? m->valuestring : NULL;
}

/* The part of broker, among parts[0..n). */
static struct export *part_of(struct export **parts, uint32_t n, const char *broker)
{
	for (uint32_t i = 0; i < n; i++)
		if (parts[i]->has_broker && strcmp(parts[i]->broker, broker) == 0)
			return parts[i];
	return NULL;
}

/* Each message event of a part: the first, then the repeated ones. */
static const cJSON *arrival(const struct export *x, int i)
{
	return i == 0 ? x->message : cJSON_GetArrayItem(x->repeated, i - 1);
}

static int n_arrivals(const struct export *x)
{
	return x->message == NULL ? 0 : 1 + cJSON_GetArraySize(x->repeated);
}

static bool came_from(const struct export *x, const char *peer)
{
	for (int i = 0; i < n_arrivals(x); i++) {
		const char *p = string_of(arrival(x, i), "peer");

		if (p != NULL && strcmp(p, peer) == 0)
			return true;
	}
	return false;
}

static bool forwarded_to(const struct export *x, const char *broker)
{
	const cJSON *f;

	cJSON_ArrayForEach(f, x->forwards) {
		const char *to = string_of(f, "broker");

		if (to != NULL && strcmp(to, broker) == 0)
			return true;
	}
	return false;
}

/* Puts parts in path order: from each origin (no peer), the brokers it
 * was forwarded to, in the order of the forwards, and those that name it
 * as their peer; then what no path reached, in the order given. */
static void order_parts(struct export **parts, uint32_t n, struct export **out)
{
	uint32_t done = 0, head = 0;
	bool *taken = calloc(n ? n : 1, sizeof(*taken));

	if (taken == NULL) {
		memcpy(out, parts, n * sizeof(*parts));
		return;
	}
	for (int pass = 0; pass < 3; pass++) {
		for (uint32_t i = 0; i < n; i++) {
			const char *peer = parts[i]->message ? string_of(parts[i]->message, "peer") : NULL;
			bool root = pass == 0 ? parts[i]->message != NULL && peer == NULL
				: pass == 1 ? peer == NULL || part_of(parts, n, peer) == NULL : true;

			if (taken[i] || !root)
				continue;
			taken[i] = true;
			out[done++] = parts[i];
			/* Breadth first from this root. */
			for (; head < done; head++) {
				const struct export *at = out[head];
				const cJSON *f;

				if (!at->has_broker)
					continue;
				cJSON_ArrayForEach(f, at->forwards) {
					const char *to = string_of(f, "broker");

					for (uint32_t k = 0; to != NULL && k < n; k++) {
						if (!taken[k] && parts[k]->has_broker
								&& strcmp(parts[k]->broker, to) == 0) {
							taken[k] = true;
							out[done++] = parts[k];
						}
					}
				}
				for (uint32_t k = 0; k < n; k++) {
					if (!taken[k] && came_from(parts[k], at->broker)) {
						taken[k] = true;
						out[done++] = parts[k];
					}
				}
			}
		}
	}
	free(taken);
}

static bool add_gap(cJSON *gaps, const char *broker, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static bool add_gap(cJSON *gaps, const char *broker, const char *fmt, ...)
{
	char why[WHY_MAX];
	const cJSON *g;
	cJSON *o;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	cJSON_ArrayForEach(g, gaps) {
		if (strcmp(string_of(g, "broker"), broker) == 0
				&& strcmp(string_of(g, "reason"), why) == 0)
			return true;
	}
	if ((o = cJSON_CreateObject()) == NULL || !put_string(o, "broker", broker)
			|| !put_string(o, "reason", why) || !cJSON_AddItemToArray(gaps, o)) {
		cJSON_Delete(o);
		return false;
	}
	return true;
}

static bool export_of(const struct tf_join *j, const char *broker)
{
	for (uint32_t i = 0; i < j->n_exports; i++)
		if (j->exports[i].has_broker && strcmp(j->exports[i].broker, broker) == 0)
			return true;
	return false;
}

/* Whether the last hop record of a message event is the peer's stamp as
 * the peer's own part records it (its broker and signature). */
static bool hops_end_with(const cJSON *message, const struct export *peer)
{
	const cJSON *hops = cJSON_GetObjectItemCaseSensitive(message, "hops");
	const cJSON *last = cJSON_GetArrayItem(hops, cJSON_GetArraySize(hops) - 1);
	struct tf_stamp stamp = { 0 };
	char *copy;
	bool same = false;

	if (!cJSON_IsArray(hops) || !cJSON_IsString(last)
			|| (copy = strdup(last->valuestring)) == NULL)
		return false;
	if (tf_stamp_record_decode(copy, &stamp) == TF_STAMP_VALID
			&& strcmp(stamp.broker, peer->broker) == 0) {
		for (int i = 0; i < n_arrivals(peer) && !same; i++) {
			const char *sig = string_of(arrival(peer, i), "sig");

			same = sig != NULL && sig[0] != '\0' && strcmp(sig, stamp.sig) == 0;
		}
	}
	free(copy);
	return same;
}

/* What the parts say of each other that does not add up. */
static bool find_gaps(const struct tf_join *j, struct export **parts, uint32_t n, cJSON *gaps)
{
	bool ok = true;

	for (uint32_t i = 0; i < n && ok; i++) {
		const struct export *x = parts[i];
		const cJSON *f;

		if (!x->has_broker)
			continue;
		cJSON_ArrayForEach(f, x->forwards) {
			const char *to = string_of(f, "broker");
			const struct export *y;

			if (to == NULL)
				continue;
			if ((y = part_of(parts, n, to)) == NULL)
				ok = ok && add_gap(gaps, to, export_of(j, to)
					? "%s forwarded it to %s, whose export holds no event of it"
					: "%s forwarded it to %s; no export of %s was given", x->broker, to, to);
			else if (!came_from(y, x->broker))
				ok = ok && add_gap(gaps, to, "%s forwarded it to %s, whose export records "
					"no arrival from %s", x->broker, to, x->broker);
		}
		for (int a = 0; a < n_arrivals(x); a++) {
			const cJSON *m = arrival(x, a);
			const char *peer = string_of(m, "peer");
			const struct export *p;

			if (peer == NULL)
				continue;
			if ((p = part_of(parts, n, peer)) == NULL) {
				ok = ok && add_gap(gaps, peer, export_of(j, peer)
					? "%s received it from %s, whose export holds no event of it"
					: "%s received it from %s; no export of %s was given", x->broker, peer,
					peer);
				continue;
			}
			if (!forwarded_to(p, x->broker))
				ok = ok && add_gap(gaps, x->broker, "%s received it from %s, whose export "
					"records no forward to %s", x->broker, peer, x->broker);
			if (!hops_end_with(m, p))
				ok = ok && add_gap(gaps, x->broker, "the hop records of %s's message event do "
					"not end with %s's stamp as %s's export records it", x->broker, peer,
					peer);
		}
	}
	return ok;
}

/* --- the answer ----------------------------------------------------------------- */

static cJSON *part_object(struct export *x)
{
	cJSON *o = cJSON_CreateObject(), *cp;
	bool ok = o != NULL
		&& (x->has_broker ? put_string(o, "broker", x->broker)
			: cJSON_AddNullToObject(o, "broker") != NULL)
		&& put_string(o, "export", x->name) && cJSON_AddBoolToObject(o, "ok", !x->failed)
		&& (!x->failed || put_string(o, "reason", x->why));

	if (ok && x->cover != NULL) {
		ok = (cp = cJSON_AddObjectToObject(o, "checkpoint")) != NULL
			&& put_number(cp, "seq", (double)x->cover->seq)
			&& put_number(cp, "ts", (double)x->cover->ts_ms)
			&& cJSON_AddBoolToObject(cp, "kept", x->cover_kept) != NULL;
	}
	/* The lists move into the answer. */
	if (ok) {
		ok = x->message ? cJSON_AddItemToObject(o, "message", x->message)
			: cJSON_AddNullToObject(o, "message") != NULL;
		if (ok)
			x->message = NULL;
	}
	if (ok && x->repeated != NULL && (ok = cJSON_AddItemToObject(o, "repeated", x->repeated)))
		x->repeated = NULL;
	if (ok && (ok = cJSON_AddItemToObject(o, "recipients", x->recipients)))
		x->recipients = NULL;
	if (ok && (ok = cJSON_AddItemToObject(o, "forwards", x->forwards)))
		x->forwards = NULL;
	if (ok && x->views != NULL && (ok = cJSON_AddItemToObject(o, "views", x->views))) {
		x->views = NULL;
		x->n_views = 0;
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

cJSON *tf_join_result(struct tf_join *j, bool *ok, struct tf_err *err)
{
	struct export **parts = calloc(j->n_exports + 1, sizeof(*parts));
	struct export **path = calloc(j->n_exports + 1, sizeof(*path));
	cJSON *out = cJSON_CreateObject(), *brokers, *names, *gaps, *without;
	uint32_t n = 0;
	bool fine = true, built;

	*ok = false;
	if (parts == NULL || path == NULL || out == NULL)
		goto nomem;
	for (uint32_t i = 0; i < j->n_exports; i++)
		settle(j, &j->exports[i]);
	for (uint32_t i = 0; i < j->n_exports; i++) {
		for (uint32_t k = 0; k < i; k++) {
			if (j->exports[i].has_broker && j->exports[k].has_broker
					&& strcmp(j->exports[i].broker, j->exports[k].broker) == 0) {
				tf_err_set(err, TF_ERR_INVALID, "%s and %s are both exports of %s: give one "
					"export per broker", j->exports[k].name, j->exports[i].name,
					j->exports[i].broker);
				goto out;
			}
		}
		if (j->exports[i].part_last != 0)
			parts[n++] = &j->exports[i];
	}
	order_parts(parts, n, path);
	built = put_string(out, "id", j->id) && cJSON_AddBoolToObject(out, "ok", false) != NULL
		&& (names = cJSON_AddArrayToObject(out, "path")) != NULL
		&& (brokers = cJSON_AddArrayToObject(out, "brokers")) != NULL
		&& (gaps = cJSON_AddArrayToObject(out, "gaps")) != NULL
		&& (without = cJSON_AddArrayToObject(out, "without")) != NULL
		&& find_gaps(j, path, n, gaps);
	for (uint32_t i = 0; built && i < n; i++) {
		cJSON *part;

		fine = fine && !path[i]->failed;
		built = cJSON_AddItemToArray(names, path[i]->has_broker
				? cJSON_CreateString(path[i]->broker) : cJSON_CreateNull())
			&& (part = part_object(path[i])) != NULL && cJSON_AddItemToArray(brokers, part);
	}
	for (uint32_t i = 0; built && i < j->n_exports; i++) {
		struct export *x = &j->exports[i];
		cJSON *o;

		if (x->part_last != 0)
			continue;
		fine = fine && !x->failed;
		built = (o = cJSON_CreateObject()) != NULL && cJSON_AddItemToArray(without, o)
			&& (x->has_broker ? put_string(o, "broker", x->broker)
				: cJSON_AddNullToObject(o, "broker") != NULL)
			&& put_string(o, "export", x->name) && cJSON_AddBoolToObject(o, "ok", !x->failed)
			&& (!x->failed || put_string(o, "reason", x->why));
	}
	if (!built)
		goto nomem;
	fine = fine && n > 0 && cJSON_GetArraySize(gaps) == 0;
	if (n == 0 && !put_string(out, "reason", "no export holds an event of the message"))
		goto nomem;
	if (!cJSON_ReplaceItemInObjectCaseSensitive(out, "ok", cJSON_CreateBool(fine)))
		goto nomem;
	*ok = fine;
	free(parts);
	free(path);
	return out;
nomem:
	nomem(err);
out:
	cJSON_Delete(out);
	free(parts);
	free(path);
	return NULL;
}
