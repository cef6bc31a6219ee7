/* The identities file of policy-v1: organizations, and the clients (MQTT
 * usernames) that belong to them with their roles and purposes; and of
 * federation-v1, the organizations' policy keys and the peer brokers.
 *
 * Loaded once per policy set and immutable afterwards. Roles and purposes
 * are interned as symbols (small integers), so that matching a selector
 * compares integers, not strings. */
#ifndef TF_POLICY_IDENTITIES_H
#define TF_POLICY_IDENTITIES_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "broker/util/error.h"
#include "policy/jsonfile.h"

#define TF_IDENTITIES_MAX_BYTES   (256u * 1024 * 1024)
#define TF_IDENTITIES_MAX_ORGS    1000000
#define TF_IDENTITIES_MAX_CLIENTS 10000000
#define TF_IDENTITIES_MAX_LABELS  64   /* roles, purposes and client ids, per client */
#define TF_ORG_NAME_MAX           256
#define TF_POLICY_KEYS_MAX        16   /* per organization */
#define TF_PEER_KEYS_MAX          16   /* per peer broker */
#define TF_PEERS_MAX              1024

/* No such organization, client or symbol. */
#define TF_NONE UINT32_MAX

struct tf_client {
	const char *username;      /* borrowed from the identities */
	uint32_t index;            /* among the clients */
	uint32_t org;              /* index into the organizations */
	uint32_t n_roles;
	uint32_t n_purposes;
	const uint32_t *roles;     /* symbols, ascending */
	const uint32_t *purposes;  /* symbols, ascending */
	uint32_t n_client_ids;     /* declared client ids; 0: any not reserved */
};

/* A peer broker (federation-v1, section 1): a broker that may hand this
 * one messages over a bridge, authenticated here as its link. */
struct tf_peer {
	const char *broker_id;     /* borrowed from the identities */
	uint32_t org;              /* index into the organizations */
	const char *link;          /* the username its bridge logs in with */
	const struct tf_keyring *keys;   /* its stamp-signing keys */
};

struct tf_identities;

/* Loads and validates the identities file. display_name names the file in
 * messages (NULL: path). On success *out is the result (caller owns; free
 * with tf_identities_free). Errors: TF_ERR_IO, TF_ERR_INVALID ("file:
 * $.json.path: problem"), TF_ERR_NOMEM. */
int tf_identities_load(const char *path, const char *display_name,
		struct tf_identities **out, struct tf_err *err);

/* The same from a parsed tree (borrowed for the call only). */
int tf_identities_from_json(struct tf_jctx *c, const cJSON *root, struct tf_identities **out);

void tf_identities_free(struct tf_identities *ids);

/* The client with this username, or NULL (unidentified). Borrowed, valid
 * until the identities are freed. */
const struct tf_client *tf_identities_client(const struct tf_identities *ids,
		const char *username);

/* The client to which an MQTT client id is reserved: the one that
 * declares it in its `client_ids`, else the one whose username it is;
 * NULL when it is reserved to no one. Borrowed, valid until the
 * identities are freed. */
const struct tf_client *tf_identities_client_id_owner(const struct tf_identities *ids,
		const char *client_id);

/* The keys with which organization org signs its policies (its
 * policy_keys; federation-v1), or NULL when it has none. Borrowed, valid
 * until the identities are freed. */
struct tf_keyring;
const struct tf_keyring *tf_identities_policy_keys(const struct tf_identities *ids,
		uint32_t org);

/* The peer broker with this broker id, or whose bridge logs in as link;
 * NULL when there is none. Borrowed, valid until the identities are
 * freed. */
const struct tf_peer *tf_identities_peer(const struct tf_identities *ids, const char *broker_id);
const struct tf_peer *tf_identities_peer_by_link(const struct tf_identities *ids,
		const char *link);
uint32_t tf_identities_peer_count(const struct tf_identities *ids);
/* The i-th peer, in the file's order (NULL past the last). */
const struct tf_peer *tf_identities_peer_at(const struct tf_identities *ids, uint32_t i);

/* Index of the organization with this id, or TF_NONE. */
uint32_t tf_identities_org(const struct tf_identities *ids, const char *org_id);
const char *tf_identities_org_id(const struct tf_identities *ids, uint32_t org);
uint32_t tf_identities_org_count(const struct tf_identities *ids);
uint32_t tf_identities_client_count(const struct tf_identities *ids);
uint32_t tf_identities_symbol_count(const struct tf_identities *ids);

/* Index of client username, or TF_NONE. */
uint32_t tf_identities_client_index(const struct tf_identities *ids, const char *username);

/* The symbol for a role or purpose name, or TF_NONE when no client has
 * it (then no client can match it either). */
uint32_t tf_identities_symbol(const struct tf_identities *ids, const char *name);

/* The role or purpose name of symbol sym ("" when there is no such
 * symbol). Borrowed, valid until the identities are freed. */
const char *tf_identities_symbol_name(const struct tf_identities *ids, uint32_t sym);

/* Client i (0 to tf_identities_client_count - 1, in the file's order), or
 * NULL past the last. Borrowed, valid until the identities are freed. */
const struct tf_client *tf_identities_client_at(const struct tf_identities *ids, uint32_t i);

/* Whether a sorted symbol list holds sym. */
bool tf_symbols_contain(const uint32_t *list, uint32_t n, uint32_t sym);

/* Sorts a list of symbols or indexes and drops repeats; *n shrinks to
 * the number kept. */
void tf_symbols_sort_unique(uint32_t *list, uint32_t *n);

/* Bytes held, for the benchmarks' memory accounting. */
size_t tf_identities_bytes(const struct tf_identities *ids);

#endif
