#include "policy/rollback.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/stamp/provenance.h"
#include "broker/util/growable.h"
#include "broker/util/strmap.h"
#include "policy/id.h"

struct tf_rollback {
	struct tf_rollback_entry *entries;   /* id and owner: malloc'd */
	uint32_t n, cap;
	struct tf_strmap *by_id;             /* id -> entry */
};

struct tf_rollback *tf_rollback_new(void)
{
	struct tf_rollback *r = calloc(1, sizeof(*r));

	if (r != NULL && (r->by_id = tf_strmap_new()) == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

void tf_rollback_free(struct tf_rollback *r)
{
	if (r == NULL)
		return;
	for (uint32_t i = 0; i < r->n; i++) {
		free(r->entries[i].id);
		free(r->entries[i].owner);
	}
	free(r->entries);
	tf_strmap_free(r->by_id);
	free(r);
}

struct tf_rollback *tf_rollback_copy(const struct tf_rollback *r)
{
	struct tf_rollback *copy = tf_rollback_new();

	for (uint32_t i = 0; copy != NULL && i < r->n; i++) {
		const struct tf_rollback_entry *e = &r->entries[i];

		if (tf_rollback_note(copy, e->id, e->owner, e->version, e->sha256) != TF_OK) {
			tf_rollback_free(copy);
			copy = NULL;
		}
	}
	return copy;
}

static struct tf_rollback_entry *find(const struct tf_rollback *r, const char *id)
{
	uint32_t i;

	return tf_strmap_get(r->by_id, id, strlen(id), &i) ? &r->entries[i] : NULL;
}

int tf_rollback_note(struct tf_rollback *r, const char *id, const char *owner, int64_t version,
		const unsigned char sha256[32])
{
	struct tf_rollback_entry *e = find(r, id);
	char *owner_copy = strdup(owner), *id_copy = NULL;

	if (owner_copy == NULL)
		return TF_ERR_NOMEM;
	if (e != NULL) {
		if (version < e->version) {
			free(owner_copy);
			return TF_OK;
		}
		free(e->owner);
		e->owner = owner_copy;
		e->version = version;
		memcpy(e->sha256, sha256, 32);
		return TF_OK;
	}
	if (!tf_grow(&r->entries, &r->cap, r->n, 16, UINT32_MAX - 1)
			|| (id_copy = strdup(id)) == NULL
			|| tf_strmap_put(r->by_id, id, strlen(id), r->n, NULL) != 1) {
		free(owner_copy);
		free(id_copy);
		return TF_ERR_NOMEM;
	}
	e = &r->entries[r->n++];
	e->id = id_copy;
	e->owner = owner_copy;
	e->version = version;
	memcpy(e->sha256, sha256, 32);
	return TF_OK;
}

const struct tf_rollback_entry *tf_rollback_find(const struct tf_rollback *r, const char *id)
{
	return find(r, id);
}

size_t tf_rollback_count(const struct tf_rollback *r)
{
	return r->n;
}

const struct tf_rollback_entry *tf_rollback_at(const struct tf_rollback *r, size_t i)
{
	return &r->entries[i];
}

int tf_rollback_check(const struct tf_rollback *r, const struct tf_policy *p, struct tf_err *err)
{
	const struct tf_rollback_entry *e = r ? find(r, p->id) : NULL;
	char sha[TF_SHA256_HEX + 1];

	if (e == NULL)
		return TF_OK;
	if (strcmp(e->owner, p->owner_id) != 0)
		return tf_err_set(err, TF_ERR_INVALID, "%s: policy %s belongs to %s, whose policy this "
			"broker has accepted; another owner's file cannot take its id", p->file, p->id,
			e->owner);
	if (p->version < e->version)
		return tf_err_set(err, TF_ERR_INVALID, "%s: rolled back: version %" PRId64 " of %s is "
			"older than version %" PRId64 ", which this broker has accepted", p->file,
			p->version, p->id, e->version);
	if (p->version == e->version && memcmp(p->sha256, e->sha256, 32) != 0) {
		tf_hex(e->sha256, 32, sha);
		return tf_err_set(err, TF_ERR_INVALID, "%s: version %" PRId64 " of %s has other bytes "
			"than the version %" PRId64 " this broker accepted (SHA-256 %s): a changed policy "
			"needs a higher version", p->file, p->version, p->id, e->version, sha);
	}
	return TF_OK;
}

bool tf_rollback_holds(const struct tf_rollback *r, const struct tf_policy *p)
{
	const struct tf_rollback_entry *e = find(r, p->id);

	return e != NULL && e->version == p->version && memcmp(e->sha256, p->sha256, 32) == 0
		&& strcmp(e->owner, p->owner_id) == 0;
}

void tf_rollback_format(const struct tf_rollback_entry *e, char out[TF_ROLLBACK_TEXT_MAX + 1])
{
	char sha[TF_SHA256_HEX + 1];

	tf_hex(e->sha256, 32, sha);
	snprintf(out, TF_ROLLBACK_TEXT_MAX + 1, "%" PRId64 " %s %s", e->version, e->owner, sha);
}

bool tf_rollback_parse(const char *text, size_t len, int64_t *version,
		char owner[TF_ID_MAX_LEN + 1], unsigned char sha256[32])
{
	const char *end = text + len, *space;
	int64_t v = 0;
	size_t n;

	/* <version>: a positive decimal without leading zeros. */
	for (n = 0; text + n < end && text[n] >= '0' && text[n] <= '9'; n++) {
		if (v > (TF_POLICY_MAX_VERSION - (text[n] - '0')) / 10)
			return false;
		v = v * 10 + (text[n] - '0');
	}
	if (n == 0 || v == 0 || text[0] == '0' || text + n == end || text[n] != ' ')
		return false;
	text += n + 1;
	/* <owner>: an identifier. */
	space = memchr(text, ' ', (size_t)(end - text));
	if (space == NULL || space == text || (size_t)(space - text) > TF_ID_MAX_LEN)
		return false;
	memcpy(owner, text, (size_t)(space - text));
	owner[space - text] = '\0';
	if (!tf_id_is_valid(owner))
		return false;
	text = space + 1;
	/* <sha256>: 64 lowercase hex digits, and nothing after. */
	if (!tf_unhex(text, (size_t)(end - text), sha256, 32))
		return false;
	*version = v;
	return true;
}
