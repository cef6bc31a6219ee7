/* A policy set: the identities file and every policy in the policy
 * directory, validated together and indexed for decisions. Loaded whole
 * or not at all; immutable afterwards, so a reload builds a new set and
 * swaps it in, and an invalid one leaves the old set in force. */
#ifndef TF_POLICY_SET_H
#define TF_POLICY_SET_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/util/arena.h"
#include "broker/util/error.h"
#include "policy/govern.h"
#include "policy/identities.h"
#include "policy/policy.h"

#define TF_POLICY_SET_MAX_FILES 200000

/* Marks a reference to a policy's owner org rather than to a rule. */
#define TF_RULE_OWNER UINT32_MAX

/* A (policy, consumer rule) pair under which some clients may receive. */
struct tf_rule_ref {
	uint32_t policy;
	uint32_t rule;   /* index in consumers, or TF_RULE_OWNER */
};

struct tf_policy_set {
	struct tf_identities *ids;     /* owned */
	struct tf_policy *policies;    /* owned; each releases its schema */
	uint32_t n_policies;
	struct tf_govern *govern;      /* topic -> policy or view */
	struct tf_strmap *by_id;       /* policy id -> index */
	bool default_allow;            /* default_access allow */
	uint32_t role_admin;           /* symbol of trustflow-admin, or TF_NONE */
	uint32_t role_steward;         /* symbol of data-steward, or TF_NONE */
	/* Who may receive under which rules, for subscribe decisions that must
	 * not scan every policy: the refs that can apply to a client are those
	 * under its org, its own index, each of its roles and purposes, and
	 * those for everyone. Offsets are CSR-style: refs of key k are
	 * [off[k], off[k + 1]). */
	uint32_t *org_off, *client_off, *symbol_off;
	struct tf_rule_ref *org_refs, *client_refs, *symbol_refs, *everyone_refs;
	uint32_t n_everyone;
	uint32_t refused;              /* while loading: the policy refused; UINT32_MAX: none */
	struct tf_arena arena;         /* the policies' strings and lists */
};

struct tf_policy_set_options {
	const char *identities;   /* path of the identities file */
	const char *policy_dir;   /* directory of *.json policies */
	/* Directory of the policies peer brokers handed over (federation-v1,
	 * section 2), each signed by its owner; NULL: none. A local file
	 * with the id of one of them is refused when another owner's, and
	 * gives way to it when older. */
	const char *peer_policy_dir;
	const char *broker_id;    /* this broker's: no peer may have it; NULL: not checked */
	bool default_allow;       /* default_access allow (else deny) */
	bool require_signed;      /* require_signed_policies (tf_policy_load) */
	/* The versions accepted before (policy/rollback.h); NULL: no check. */
	const struct tf_rollback *rollback;
	/* When the set is refused, the id of the policy whose file was
	 * refused is written here ("" when the refusal is not about one, or
	 * its file did not get as far as its id); NULL: not wanted. Its
	 * owner's data stewards are told (their alerts are per policy). */
	char *refused_id;   /* TF_ID_MAX_LEN + 1 bytes */
};

struct tf_rollback;

/* Loads and validates everything. On success *out is the set (caller
 * owns; free with tf_policy_set_free). Errors: TF_ERR_IO, TF_ERR_INVALID
 * (err names the file, the JSON path and the problem), TF_ERR_NOMEM. */
int tf_policy_set_load(const struct tf_policy_set_options *opts, struct tf_policy_set **out,
		struct tf_err *err);

void tf_policy_set_free(struct tf_policy_set *set);

/* Builds a set from policies already loaded one by one (tfctl policy
 * check): runs the checks that need every file. Ownership of ids (may be
 * NULL: the set is then good for checking only, not for decisions), of
 * policies (an array from malloc, each loaded into arena) and of the
 * arena's contents passes to the set, also on error. */
int tf_policy_set_assemble(struct tf_identities *ids, struct tf_policy *policies, uint32_t n,
		struct tf_arena *arena, struct tf_policy_set **out, struct tf_err *err);

/* The same, saying in *refused which of policies the error is about
 * (UINT32_MAX: none in particular), so that a check can leave it out and
 * look for more problems. */
int tf_policy_set_assemble_checked(struct tf_identities *ids, struct tf_policy *policies,
		uint32_t n, struct tf_arena *arena, struct tf_policy_set **out, uint32_t *refused,
		struct tf_err *err);


/* The policy with this id, or NULL. Borrowed from the set. */
const struct tf_policy *tf_policy_set_find(const struct tf_policy_set *set, const char *id);

/* The policy in force whose label ("id@version") is label: NULL when its
 * policy is gone or is at another version now. */
const struct tf_policy *tf_policy_set_find_label(const struct tf_policy_set *set,
		const char *label);

/* Bytes held, for the benchmarks' memory accounting. */
size_t tf_policy_set_bytes(const struct tf_policy_set *set);

#endif
