/* Selectors of policy-v1: which clients a rule (publishers, a consumer
 * rule) is about. A selector matches a client when every key present
 * matches: orgs holds its org, clients its username, roles and purposes
 * share an entry with its own. {} matches every identified client; an
 * unidentified client matches nothing. (A policy's publishers without orgs
 * are further limited to the owner org's clients: policy/decide.c.) */
#ifndef TF_POLICY_SELECTOR_H
#define TF_POLICY_SELECTOR_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "broker/util/arena.h"
#include "policy/identities.h"
#include "policy/jsonfile.h"

#define TF_SELECTOR_MAX_ITEMS 10000  /* per list */

/* One key of a selector: absent, or a sorted list of indexes (orgs,
 * clients) or symbols (roles, purposes). Names that no identity carries
 * are left out, so such a key can be present and empty: it then matches
 * nobody, as the owner wrote. */
struct tf_selector_key {
	bool present;
	uint32_t n;
	const uint32_t *items;
};

struct tf_selector {
	struct tf_selector_key orgs, clients, roles, purposes;
};

/* The member names a selector may have, NULL-terminated. */
extern const char *const tf_selector_members[];

/* Reads the selector keys of obj (other members are the caller's to
 * check). ids may be NULL (syntax check only: nothing is resolved). An org
 * that ids does not know is an error, as it is most likely a typo; unknown
 * clients, roles and purposes are not. Lists live in arena. */
int tf_selector_load(struct tf_jctx *c, const cJSON *obj, const struct tf_identities *ids,
		struct tf_arena *arena, struct tf_selector *out);

/* Whether the selector matches client (NULL: unidentified). */
bool tf_selector_matches(const struct tf_selector *s, const struct tf_client *client);

/* The keys of a selector, as bits. */
#define TF_SEL_ORGS     0x1u
#define TF_SEL_CLIENTS  0x2u
#define TF_SEL_ROLES    0x4u
#define TF_SEL_PURPOSES 0x8u

/* Which of the keys present in s the client (not NULL) does not match,
 * as TF_SEL_* bits: 0 exactly when tf_selector_matches. Checks every key,
 * where tf_selector_matches stops at the first that fails: for saying why
 * a client was refused. */
unsigned tf_selector_misses(const struct tf_selector *s, const struct tf_client *client);

#endif
