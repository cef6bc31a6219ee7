#include "policy/identities.h"

#include <stdlib.h>
#include <string.h>

#include "broker/util/arena.h"
#include "broker/util/growable.h"
#include "broker/util/strmap.h"
#include "policy/id.h"
#include "policy/policysig.h"

struct tf_identities {
	struct tf_arena arena;          /* every string and list below */
	struct tf_strmap *org_index;    /* org id -> index */
	struct tf_strmap *client_index; /* username -> index */
	struct tf_strmap *symbols;      /* role or purpose -> symbol */
	struct tf_strmap *client_ids;   /* declared client id -> client index */
	const char **symbol_names;      /* symbol -> role or purpose name (malloc) */
	uint32_t symbol_cap;            /* of symbol_names */
	const char **org_ids;           /* index -> org id */
	struct tf_keyring **policy_keys;   /* index -> its keys; NULL: none (or no org has) */
	uint32_t n_key_slots;              /* of policy_keys */
	uint32_t n_orgs;
	struct tf_client *clients;
	uint32_t n_clients;
	struct tf_peer *peers;          /* (malloc) */
	struct tf_keyring **peer_keys;  /* peer index -> its keys (malloc) */
	uint32_t n_peers;
	struct tf_strmap *peer_index;   /* broker id -> peer */
	struct tf_strmap *link_index;   /* link -> peer */
};

static const char *const top_members[] = {
	"trustflow_identities", "organizations", "clients", "brokers", NULL,
};
static const char *const org_members[] = { "name", "policy_keys", NULL };
static const char *const client_members[] = { "org", "roles", "purposes", "client_ids", NULL };
static const char *const peer_members[] = { "org", "link", "keys", NULL };

void tf_identities_free(struct tf_identities *ids)
{
	if (ids == NULL)
		return;
	tf_strmap_free(ids->org_index);
	tf_strmap_free(ids->client_index);
	tf_strmap_free(ids->symbols);
	tf_strmap_free(ids->client_ids);
	free(ids->symbol_names);
	for (uint32_t i = 0; i < ids->n_key_slots; i++)
		tf_keyring_free(ids->policy_keys[i]);
	free(ids->policy_keys);
	for (uint32_t i = 0; i < ids->n_peers; i++)
		tf_keyring_free(ids->peer_keys[i]);
	free(ids->peer_keys);
	free(ids->peers);
	tf_strmap_free(ids->peer_index);
	tf_strmap_free(ids->link_index);
	tf_arena_free(&ids->arena);
	free(ids);
}

static int nomem(struct tf_jctx *c)
{
	return tf_err_set(c->err, TF_ERR_NOMEM, "%s: out of memory", c->file);
}

/* The symbol of a role or purpose name, new when no client had it yet;
 * a new symbol's name is kept for tf_identities_symbol_name. */
static int intern(struct tf_jctx *c, struct tf_identities *ids, const char *name, uint32_t *sym)
{
	uint32_t next = (uint32_t)tf_strmap_count(ids->symbols);
	const char *copy;

	if (tf_strmap_get(ids->symbols, name, strlen(name), sym))
		return TF_OK;
	if (!tf_grow(&ids->symbol_names, &ids->symbol_cap, next, 16, UINT32_MAX)
			|| (copy = tf_arena_strdup(&ids->arena, name)) == NULL
			|| tf_strmap_put(ids->symbols, name, strlen(name), next, NULL) < 0)
		return nomem(c);
	ids->symbol_names[next] = copy;
	*sym = next;
	return TF_OK;
}

/* Reads an optional list of ids (roles or purposes) into sorted symbols,
 * interning new names. */
static int load_labels(struct tf_jctx *c, struct tf_identities *ids, const cJSON *client,
		const char *name, const uint32_t **out, uint32_t *count)
{
	const cJSON *list, *item;
	uint32_t *syms, n = 0;
	size_t mark;
	int rc, index = 0;

	*out = NULL;
	*count = 0;
	rc = tf_jarray(c, client, name, false, 0, TF_IDENTITIES_MAX_LABELS, &list);
	if (rc != TF_OK || list == NULL)
		return rc;
	syms = tf_arena_alloc(&ids->arena, sizeof(*syms) * (size_t)(cJSON_GetArraySize(list) + 1));
	if (syms == NULL)
		return nomem(c);
	mark = tf_jctx_member(c, name);
	cJSON_ArrayForEach(item, list) {
		size_t imark = tf_jctx_index(c, index++);
		uint32_t sym = TF_NONE;

		if (!cJSON_IsString(item) || !tf_id_is_valid(item->valuestring))
			rc = tf_jfail(c, "not a valid id");
		else
			rc = intern(c, ids, item->valuestring, &sym);
		if (rc == TF_OK)
			syms[n++] = sym;
		tf_jctx_pop(c, imark);
		if (rc != TF_OK)
			break;
	}
	tf_jctx_pop(c, mark);
	tf_symbols_sort_unique(syms, &n);
	*out = syms;
	*count = n;
	return rc;
}

/* Reads a client's optional `client_ids`: the only MQTT client ids it may
 * connect with, which no other client may use. A client id declared twice
 * is an error; one that is another client's username is checked once all
 * clients are read (check_client_ids). */
static int load_client_ids(struct tf_jctx *c, struct tf_identities *ids, const cJSON *entry,
		struct tf_client *client)
{
	const cJSON *list, *item;
	size_t mark;
	int rc, index = 0;

	client->n_client_ids = 0;
	rc = tf_jarray(c, entry, "client_ids", false, 1, TF_IDENTITIES_MAX_LABELS, &list);
	if (rc != TF_OK || list == NULL)
		return rc;
	mark = tf_jctx_member(c, "client_ids");
	cJSON_ArrayForEach(item, list) {
		size_t imark = tf_jctx_index(c, index++);
		uint32_t owner = ids->n_clients;

		if (!cJSON_IsString(item) || !tf_id_is_valid(item->valuestring)) {
			rc = tf_jfail(c, "not a valid client id (1 to 128 of A-Z a-z 0-9 . _ : @ -)");
		} else {
			int put = tf_strmap_put(ids->client_ids, item->valuestring,
				strlen(item->valuestring), ids->n_clients, &owner);

			if (put < 0)
				rc = nomem(c);
			else if (owner != ids->n_clients)
				rc = tf_jfail(c, "client id \"%s\" is declared by \"%s\" already",
					item->valuestring, ids->clients[owner].username);
			else if (put == 0)
				rc = tf_jfail(c, "client id \"%s\" is listed twice", item->valuestring);
		}
		tf_jctx_pop(c, imark);
		if (rc != TF_OK)
			break;
		client->n_client_ids++;
	}
	tf_jctx_pop(c, mark);
	return rc;
}

/* A declared client id that is another client's username would make two
 * clients its owner. */
static int check_client_ids(struct tf_jctx *c, struct tf_identities *ids)
{
	for (uint32_t i = 0; i < ids->n_clients; i++) {
		uint32_t declarer;
		const char *name = ids->clients[i].username;

		if (tf_strmap_get(ids->client_ids, name, strlen(name), &declarer) && declarer != i) {
			size_t mark = tf_jctx_member(c, ids->clients[declarer].username);
			int rc = tf_jfail_at(c, "client_ids", "client id \"%s\" is the username of "
				"another client", name);

			tf_jctx_pop(c, mark);
			return rc;
		}
	}
	return TF_OK;
}

/* The Ed25519 public keys of list, member name of the entry being read,
 * into ring. */
static int load_keys(struct tf_jctx *c, const cJSON *list, const char *name,
		struct tf_keyring *ring)
{
	const cJSON *key;
	int rc = TF_OK, index = 0;

	cJSON_ArrayForEach(key, list) {
		size_t mark = tf_jctx_member(c, name);
		struct tf_err why = { "" };

		tf_jctx_index(c, index++);
		if (!cJSON_IsString(key))
			rc = tf_jfail(c, "must be a string");
		else if ((rc = tf_policy_key_add(ring, key->valuestring, NULL, &why)) == TF_ERR_NOMEM)
			rc = nomem(c);
		else if (rc != TF_OK)
			rc = tf_jfail(c, "%s", why.msg);
		tf_jctx_pop(c, mark);
		if (rc != TF_OK)
			return rc;
	}
	return TF_OK;
}

/* The organization's optional policy_keys, as the keyring of org (the
 * organization being loaded; n: how many there are). */
static int load_policy_keys(struct tf_jctx *c, struct tf_identities *ids, const cJSON *entry,
		uint32_t org, int n)
{
	const cJSON *list;
	int rc = tf_jarray(c, entry, "policy_keys", false, 1, TF_POLICY_KEYS_MAX, &list);

	if (rc != TF_OK || list == NULL)
		return rc;
	if (ids->policy_keys == NULL) {
		if ((ids->policy_keys = calloc((size_t)n, sizeof(*ids->policy_keys))) == NULL)
			return nomem(c);
		ids->n_key_slots = (uint32_t)n;
	}
	if ((ids->policy_keys[org] = tf_keyring_new()) == NULL)
		return nomem(c);
	return load_keys(c, list, "policy_keys", ids->policy_keys[org]);
}

static int load_orgs(struct tf_jctx *c, struct tf_identities *ids, const cJSON *orgs)
{
	const cJSON *org;
	int n = cJSON_GetArraySize(orgs);
	int rc = TF_OK;

	if (n > TF_IDENTITIES_MAX_ORGS)
		return tf_jfail(c, "has %d organizations, more than the %d allowed", n,
			TF_IDENTITIES_MAX_ORGS);
	ids->org_ids = tf_arena_alloc(&ids->arena, sizeof(*ids->org_ids) * (size_t)(n + 1));
	if (ids->org_ids == NULL)
		return nomem(c);
	cJSON_ArrayForEach(org, orgs) {
		size_t mark = tf_jctx_member(c, org->string);
		const char *display;

		if (!tf_id_is_valid(org->string))
			rc = tf_jfail(c, "not a valid organization id");
		else
			rc = tf_jcheck_object(c, org, org_members);
		if (rc == TF_OK)
			rc = tf_jstring(c, org, "name", false, TF_ORG_NAME_MAX, &display);
		if (rc == TF_OK)
			rc = load_policy_keys(c, ids, org, ids->n_orgs, n);
		if (rc == TF_OK) {
			ids->org_ids[ids->n_orgs] = tf_arena_strdup(&ids->arena, org->string);
			if (ids->org_ids[ids->n_orgs] == NULL
					|| tf_strmap_put(ids->org_index, org->string, strlen(org->string),
						ids->n_orgs, NULL) < 0)
				rc = nomem(c);
			else
				ids->n_orgs++;
		}
		tf_jctx_pop(c, mark);
		if (rc != TF_OK)
			return rc;
	}
	return TF_OK;
}

static int load_client(struct tf_jctx *c, struct tf_identities *ids, const cJSON *entry)
{
	struct tf_client *client = &ids->clients[ids->n_clients];
	const char *org;
	int rc;

	if (!tf_id_is_valid(entry->string))
		return tf_jfail(c, "not a valid username (ids are 1 to 128 of A-Z a-z 0-9 . _ : @ -)");
	rc = tf_jcheck_object(c, entry, client_members);
	if (rc == TF_OK)
		rc = tf_jid(c, entry, "org", true, &org);
	if (rc != TF_OK)
		return rc;
	client->org = tf_identities_org(ids, org);
	if (client->org == TF_NONE)
		return tf_jfail_at(c, "org", "unknown organization \"%s\" (not in $.organizations)", org);
	rc = load_labels(c, ids, entry, "roles", &client->roles, &client->n_roles);
	if (rc == TF_OK)
		rc = load_labels(c, ids, entry, "purposes", &client->purposes, &client->n_purposes);
	if (rc == TF_OK)
		rc = load_client_ids(c, ids, entry, client);
	if (rc != TF_OK)
		return rc;
	client->index = ids->n_clients;
	client->username = tf_arena_strdup(&ids->arena, entry->string);
	if (client->username == NULL
			|| tf_strmap_put(ids->client_index, entry->string, strlen(entry->string),
				ids->n_clients, NULL) < 0)
		return nomem(c);
	ids->n_clients++;
	return TF_OK;
}

static int load_clients(struct tf_jctx *c, struct tf_identities *ids, const cJSON *clients)
{
	const cJSON *entry;
	int n = cJSON_GetArraySize(clients);

	if (n > TF_IDENTITIES_MAX_CLIENTS)
		return tf_jfail(c, "has %d clients, more than the %d allowed", n,
			TF_IDENTITIES_MAX_CLIENTS);
	ids->clients = tf_arena_alloc(&ids->arena, sizeof(*ids->clients) * (size_t)(n + 1));
	if (ids->clients == NULL)
		return nomem(c);
	cJSON_ArrayForEach(entry, clients) {
		size_t mark = tf_jctx_member(c, entry->string);
		int rc = load_client(c, ids, entry);

		tf_jctx_pop(c, mark);
		if (rc != TF_OK)
			return rc;
	}
	return TF_OK;
}

/* One entry of "brokers": a peer broker (federation-v1, section 1). Its
 * link is a username of its own, not a client's: a client must not pass
 * for a peer, nor a peer's bridge for a client. */
static int load_peer(struct tf_jctx *c, struct tf_identities *ids, const cJSON *entry)
{
	struct tf_peer *peer = &ids->peers[ids->n_peers];
	const char *org, *link;
	const cJSON *keys;
	uint32_t other;
	int rc;

	if (!tf_id_is_valid(entry->string))
		return tf_jfail(c, "not a valid broker id");
	rc = tf_jcheck_object(c, entry, peer_members);
	if (rc == TF_OK)
		rc = tf_jid(c, entry, "org", true, &org);
	if (rc == TF_OK && (peer->org = tf_identities_org(ids, org)) == TF_NONE)
		rc = tf_jfail_at(c, "org", "unknown organization \"%s\"", org);
	if (rc == TF_OK)
		rc = tf_jid(c, entry, "link", true, &link);
	if (rc == TF_OK && tf_identities_client_index(ids, link) != TF_NONE)
		rc = tf_jfail_at(c, "link", "\"%s\" is a client's username: a peer's link must be a "
			"username of its own", link);
	if (rc == TF_OK && tf_strmap_get(ids->link_index, link, strlen(link), &other))
		rc = tf_jfail_at(c, "link", "\"%s\" is also the link of peer %s", link,
			ids->peers[other].broker_id);
	if (rc == TF_OK)
		rc = tf_jarray(c, entry, "keys", true, 1, TF_PEER_KEYS_MAX, &keys);
	if (rc != TF_OK)
		return rc;
	if ((ids->peer_keys[ids->n_peers] = tf_keyring_new()) == NULL)
		return nomem(c);
	peer->keys = ids->peer_keys[ids->n_peers];
	rc = load_keys(c, keys, "keys", ids->peer_keys[ids->n_peers]);
	if (rc != TF_OK) {
		tf_keyring_free(ids->peer_keys[ids->n_peers]);
		ids->peer_keys[ids->n_peers] = NULL;
		return rc;
	}
	peer->broker_id = tf_arena_strdup(&ids->arena, entry->string);
	peer->link = tf_arena_strdup(&ids->arena, link);
	if (peer->broker_id == NULL || peer->link == NULL
			|| tf_strmap_put(ids->peer_index, entry->string, strlen(entry->string),
				ids->n_peers, NULL) < 0
			|| tf_strmap_put(ids->link_index, link, strlen(link), ids->n_peers, NULL) < 0) {
		tf_keyring_free(ids->peer_keys[ids->n_peers]);
		ids->peer_keys[ids->n_peers] = NULL;
		return nomem(c);
	}
	ids->n_peers++;
	return TF_OK;
}

static int load_peers(struct tf_jctx *c, struct tf_identities *ids, const cJSON *root)
{
	const cJSON *brokers = cJSON_GetObjectItemCaseSensitive(root, "brokers"), *entry;
	size_t mark;
	int n, rc = TF_OK;

	if (brokers == NULL)
		return TF_OK;
	mark = tf_jctx_member(c, "brokers");
	n = cJSON_GetArraySize(brokers);
	if (!cJSON_IsObject(brokers))
		rc = tf_jfail(c, "must be an object");
	else if (n > TF_PEERS_MAX)
		rc = tf_jfail(c, "has %d brokers, more than the %d allowed", n, TF_PEERS_MAX);
	else if ((ids->peer_index = tf_strmap_new()) == NULL
			|| (ids->link_index = tf_strmap_new()) == NULL
			|| (ids->peers = calloc((size_t)n + 1, sizeof(*ids->peers))) == NULL
			|| (ids->peer_keys = calloc((size_t)n + 1, sizeof(*ids->peer_keys))) == NULL)
		rc = nomem(c);
	if (rc == TF_OK) {
		cJSON_ArrayForEach(entry, brokers) {
			size_t at = tf_jctx_member(c, entry->string);

			rc = load_peer(c, ids, entry);
			tf_jctx_pop(c, at);
			if (rc != TF_OK)
				break;
		}
	}
	tf_jctx_pop(c, mark);
	return rc;
}

/* Fetches a required member that must be an object (a map). */
static int map_member(struct tf_jctx *c, const cJSON *root, const char *name, const cJSON **out)
{
	size_t mark = tf_jctx_member(c, name);
	int rc = TF_OK;

	*out = cJSON_GetObjectItemCaseSensitive(root, name);
	if (*out == NULL)
		rc = tf_jfail(c, "is required");
	else if (!cJSON_IsObject(*out))
		rc = tf_jfail(c, "must be an object");
	tf_jctx_pop(c, mark);
	return rc;
}

int tf_identities_from_json(struct tf_jctx *c, const cJSON *root, struct tf_identities **out)
{
	struct tf_identities *ids;
	const cJSON *orgs, *clients;
	int64_t format;
	size_t mark;
	int rc;

	*out = NULL;
	rc = tf_jcheck_object(c, root, top_members);
	if (rc == TF_OK)
		rc = tf_jint(c, root, "trustflow_identities", true, 1, 1, &format, NULL);
	if (rc == TF_OK)
		rc = map_member(c, root, "organizations", &orgs);
	if (rc == TF_OK)
		rc = map_member(c, root, "clients", &clients);
	if (rc != TF_OK)
		return rc;

	ids = calloc(1, sizeof(*ids));
	if (ids == NULL)
		return nomem(c);
	ids->org_index = tf_strmap_new();
	ids->client_index = tf_strmap_new();
	ids->symbols = tf_strmap_new();
	ids->client_ids = tf_strmap_new();
	if (ids->org_index == NULL || ids->client_index == NULL || ids->symbols == NULL
			|| ids->client_ids == NULL) {
		rc = nomem(c);
		goto err;
	}
	mark = tf_jctx_member(c, "organizations");
	rc = load_orgs(c, ids, orgs);
	tf_jctx_pop(c, mark);
	if (rc != TF_OK)
		goto err;
	mark = tf_jctx_member(c, "clients");
	rc = load_clients(c, ids, clients);
	if (rc == TF_OK)
		rc = check_client_ids(c, ids);
	tf_jctx_pop(c, mark);
	if (rc == TF_OK)
		rc = load_peers(c, ids, root);
	if (rc != TF_OK)
		goto err;
	*out = ids;
	return TF_OK;
err:
	tf_identities_free(ids);
	return rc;
}

int tf_identities_load(const char *path, const char *display_name,
		struct tf_identities **out, struct tf_err *err)
{
	struct tf_jctx c;
	cJSON *root;
	int rc;

	*out = NULL;
	if (display_name == NULL)
		display_name = path;
	rc = tf_json_load_file(path, display_name, TF_IDENTITIES_MAX_BYTES, &root, err);
	if (rc != TF_OK)
		return rc;
	tf_jctx_init(&c, display_name, err);
	rc = tf_identities_from_json(&c, root, out);
	cJSON_Delete(root);
	return rc;
}

const struct tf_peer *tf_identities_peer(const struct tf_identities *ids, const char *broker_id)
{
	uint32_t i;

	if (ids->peer_index == NULL
			|| !tf_strmap_get(ids->peer_index, broker_id, strlen(broker_id), &i))
		return NULL;
	return &ids->peers[i];
}

const struct tf_peer *tf_identities_peer_by_link(const struct tf_identities *ids,
		const char *link)
{
	uint32_t i;

	if (ids->link_index == NULL || !tf_strmap_get(ids->link_index, link, strlen(link), &i))
		return NULL;
	return &ids->peers[i];
}

uint32_t tf_identities_peer_count(const struct tf_identities *ids)
{
	return ids->n_peers;
}

const struct tf_peer *tf_identities_peer_at(const struct tf_identities *ids, uint32_t i)
{
	return i < ids->n_peers ? &ids->peers[i] : NULL;
}

const struct tf_keyring *tf_identities_policy_keys(const struct tf_identities *ids,
		uint32_t org)
{
	return ids->policy_keys != NULL && org < ids->n_orgs ? ids->policy_keys[org] : NULL;
}

const struct tf_client *tf_identities_client(const struct tf_identities *ids,
		const char *username)
{
	uint32_t i = tf_identities_client_index(ids, username);

	return i == TF_NONE ? NULL : &ids->clients[i];
}

uint32_t tf_identities_client_index(const struct tf_identities *ids, const char *username)
{
	uint32_t i;

	if (username == NULL || !tf_strmap_get(ids->client_index, username, strlen(username), &i))
		return TF_NONE;
	return i;
}

const struct tf_client *tf_identities_client_id_owner(const struct tf_identities *ids,
		const char *client_id)
{
	uint32_t i;

	if (client_id == NULL)
		return NULL;
	if (tf_strmap_get(ids->client_ids, client_id, strlen(client_id), &i))
		return &ids->clients[i];
	return tf_identities_client(ids, client_id);
}

uint32_t tf_identities_org(const struct tf_identities *ids, const char *org_id)
{
	uint32_t i;

	if (!tf_strmap_get(ids->org_index, org_id, strlen(org_id), &i))
		return TF_NONE;
	return i;
}

const char *tf_identities_org_id(const struct tf_identities *ids, uint32_t org)
{
	return org < ids->n_orgs ? ids->org_ids[org] : "";
}

uint32_t tf_identities_org_count(const struct tf_identities *ids)
{
	return ids->n_orgs;
}

uint32_t tf_identities_client_count(const struct tf_identities *ids)
{
	return ids->n_clients;
}

uint32_t tf_identities_symbol_count(const struct tf_identities *ids)
{
	return (uint32_t)tf_strmap_count(ids->symbols);
}

const char *tf_identities_symbol_name(const struct tf_identities *ids, uint32_t sym)
{
	return sym < tf_identities_symbol_count(ids) ? ids->symbol_names[sym] : "";
}

const struct tf_client *tf_identities_client_at(const struct tf_identities *ids, uint32_t i)
{
	return i < ids->n_clients ? &ids->clients[i] : NULL;
}

uint32_t tf_identities_symbol(const struct tf_identities *ids, const char *name)
{
	uint32_t sym;

	if (!tf_strmap_get(ids->symbols, name, strlen(name), &sym))
		return TF_NONE;
	return sym;
}

bool tf_symbols_contain(const uint32_t *list, uint32_t n, uint32_t sym)
{
	uint32_t lo = 0, hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (list[mid] == sym)
			return true;
		if (list[mid] < sym)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

void tf_symbols_sort_unique(uint32_t *list, uint32_t *n)
{
	uint32_t kept = 0;

	qsort(list, *n, sizeof(*list), cmp_u32);
	for (uint32_t i = 0; i < *n; i++)
		if (kept == 0 || list[kept - 1] != list[i])
			list[kept++] = list[i];
	*n = kept;
}

size_t tf_identities_bytes(const struct tf_identities *ids)
{
	return sizeof(*ids) + ids->arena.total + tf_strmap_bytes(ids->org_index)
		+ tf_strmap_bytes(ids->client_index) + tf_strmap_bytes(ids->symbols)
		+ tf_strmap_bytes(ids->client_ids) + (size_t)ids->symbol_cap * sizeof(char *);
}
