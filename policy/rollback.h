/* Rollback protection (federation-v1, section 2): for each policy id, the
 * highest version a broker has accepted, with its owner and the SHA-256
 * of that version's file. A file with a lower version, or the same
 * version and other bytes, or another owner, is refused: an old signed
 * version must never come back, and an operator must not take over an
 * owner's policy id.
 *
 * The broker keeps the table in its trace store (broker/trace); this is
 * the table in memory and the check. Entries only ever rise. */
#ifndef TF_POLICY_ROLLBACK_H
#define TF_POLICY_ROLLBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/util/error.h"
#include "policy/id.h"
#include "policy/policy.h"

/* An entry as the trace store keeps it: under "policy:<id>" (a setting of
 * the store), "<version> <owner> <sha256 hex>". */
#define TF_ROLLBACK_META_PREFIX "policy:"
#define TF_ROLLBACK_TEXT_MAX (20 + 1 + TF_ID_MAX_LEN + 1 + 64)

struct tf_rollback_entry {
	char *id;       /* owned by the table */
	char *owner;
	int64_t version;
	unsigned char sha256[32];
};

struct tf_rollback;

/* NULL when out of memory. */
struct tf_rollback *tf_rollback_new(void);
void tf_rollback_free(struct tf_rollback *r);

/* A copy that changes apart from r (a reload on another thread checks
 * against it); NULL when out of memory. */
struct tf_rollback *tf_rollback_copy(const struct tf_rollback *r);

/* Records that version of id, owned by owner, with the file hash sha256,
 * was accepted. An entry never goes down: a lower version than the one
 * recorded changes nothing. Errors: TF_ERR_NOMEM. */
int tf_rollback_note(struct tf_rollback *r, const char *id, const char *owner, int64_t version,
		const unsigned char sha256[32]);

/* The entry of id, or NULL. Borrowed; valid until r changes. */
const struct tf_rollback_entry *tf_rollback_find(const struct tf_rollback *r, const char *id);

size_t tf_rollback_count(const struct tf_rollback *r);
/* Entry i, 0 <= i < count, in the order first noted. */
const struct tf_rollback_entry *tf_rollback_at(const struct tf_rollback *r, size_t i);

/* Whether p (loaded from a file, so with its file's hash) may be
 * accepted: TF_OK, or TF_ERR_INVALID with err saying why, naming p's file
 * ("rolled back" to a lower version, the same version with other bytes,
 * or another owner). r may be NULL: everything passes. */
int tf_rollback_check(const struct tf_rollback *r, const struct tf_policy *p, struct tf_err *err);

/* Whether p is exactly what r's entry holds (the same version and
 * bytes): false for a policy accepted for the first time or at a higher
 * version. */
bool tf_rollback_holds(const struct tf_rollback *r, const struct tf_policy *p);

/* The stored text of an entry, and back. Parsing is strict (what
 * tf_rollback_format writes): false for anything else. */
void tf_rollback_format(const struct tf_rollback_entry *e, char out[TF_ROLLBACK_TEXT_MAX + 1]);
bool tf_rollback_parse(const char *text, size_t len, int64_t *version,
		char owner[TF_ID_MAX_LEN + 1], unsigned char sha256[32]);

#endif
