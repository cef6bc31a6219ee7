/* Peer brokers (federation-v1): what a peer hands this broker, messages
 * checked link by link before anything is delivered (then stamped in
 * format 2, broker/engine/engine_context.c) and owners' policies taken
 * when their owners signed them. What goes to peers is engine_egress.c's. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "broker/engine/engine_internal.h"
#include "broker/util/arena.h"
#include "broker/util/number.h"
#include "policy/id.h"
#include "policy/identities.h"
#include "policy/policysig.h"

const struct tf_peer *engine_peer_of_link(const struct engine_ctx *c, const char *username)
{
	return username != NULL ? tf_identities_peer_by_link(c->set->ids, username) : NULL;
}

const struct tf_peer *engine_peer_of_client_id(const struct engine_ctx *c,
		const char *client_id)
{
	const struct tf_peer *peer = tf_identities_peer(c->set->ids, client_id);

	if (peer == NULL)
		peer = tf_identities_peer_by_link(c->set->ids, client_id);
	if (peer == NULL && strncmp(client_id, "local.", 6) == 0)
		peer = tf_identities_peer(c->set->ids, client_id + 6);
	return peer;
}

/* --- relaying -------------------------------------------------------------- */

#define RELAY_NOT_RELAYED  "a peer broker hands over relayed messages only"
#define RELAY_UNREADABLE   "its chain of stamps cannot be read"
#define RELAY_TOO_LONG     "its chain has no room for this broker's stamp"
#define RELAY_NOT_PEER     "its newest stamp is not the linked peer's"
#define RELAY_LOOP         "this broker's stamp is already in its chain"
#define RELAY_NOT_HELD     "its policy is not held here"
#define RELAY_OLDER        "its policy is held here only at a lower version"
#define RELAY_NOT_GOVERNED "its topic is not governed here by its policy"
#define RELAY_NO_FORWARD   "its policy denies forwarding"
#define RELAY_NOT_CONSUMER "its policy does not let the peer's organization have it"

/* The reason for a stamp check's failure as a static phrase of the trace. */
static const char *chain_reason(enum tf_stamp_check rc)
{
	switch (rc) {
	case TF_STAMP_MISSING:        return "its chain lacks a stamp or a field";
	case TF_STAMP_UNKNOWN_KEY:    return "its newest stamp is under a key the peer does not have";
	case TF_STAMP_HASH_MISMATCH:  return "its payload is not the one stamped";
	case TF_STAMP_BAD_SIGNATURE:  return "its newest stamp's signature does not hold";
	case TF_STAMP_TOPIC_MISMATCH: return "its newest stamp is for another topic";
	case TF_STAMP_BROKEN_CHAIN:   return "its chain is broken";
	case TF_STAMP_LOOP:           return "a broker stamped it twice";
	case TF_STAMP_CHAIN_TOO_LONG: return RELAY_TOO_LONG;
	default:                      return "its chain of stamps is malformed";
	}
}

/* The origin's policy as this broker holds it: NULL and why when not at
 * the origin's version or a higher one. */
static const struct tf_policy *origin_policy(const struct engine_ctx *c, const char *label,
		const char **why)
{
	size_t id_len = tf_policy_label_id_len(label);
	const char *digits = label + id_len + 1;
	char id[TF_ID_MAX_LEN + 1];
	const struct tf_policy *p;
	long version;

	*why = RELAY_NOT_HELD;
	if (id_len > TF_ID_MAX_LEN || label[id_len] != '@'
			|| !tf_parse_long(digits, 0, LONG_MAX, &version))
		return NULL;
	memcpy(id, label, id_len);
	id[id_len] = '\0';
	p = tf_policy_set_find(c->set, id);
	if (p == NULL)
		return NULL;
	if (p->version < version) {
		*why = RELAY_OLDER;
		return NULL;
	}
	return p;
}

/* Why the chain does not check out, or NULL. */
static const char *relay_refusal(struct engine_ctx *c, const struct tf_peer *peer,
		const struct tf_message *m, int64_t now, const struct tf_policy **policy,
		char *detail, size_t cap)
{
	const struct tf_chain *chain = m->chain;
	const struct tf_stamp *newest;
	struct tf_governance g;
	enum tf_stamp_check rc;
	const char *why;
	uint32_t at = 0;

	/* Not relayed at all: a will of the peer's bridge, say, which would
	 * pass for data that no stamp vouches for. */
	if (chain == NULL)
		return RELAY_NOT_RELAYED;
	if (m->chain_read != TF_STAMP_VALID) {
		snprintf(detail, cap, "%s", tf_stamp_check_reason(m->chain_read));
		return m->chain_read == TF_STAMP_CHAIN_TOO_LONG ? RELAY_TOO_LONG : RELAY_UNREADABLE;
	}
	newest = &chain->stamps[chain->n - 1];
	rc = tf_chain_check_links(chain, m->topic, &at);
	if (rc != TF_STAMP_VALID) {
		snprintf(detail, cap, "stamp %" PRIu32 ": %s", at + 1, tf_stamp_check_reason(rc));
		return chain_reason(rc);
	}
	if (chain->n >= TF_CHAIN_MAX)
		return RELAY_TOO_LONG;
	if (strcmp(newest->broker, peer->broker_id) != 0) {
		snprintf(detail, cap, "stamped by %.100s, linked as %.100s", newest->broker,
			peer->broker_id);
		return RELAY_NOT_PEER;
	}
	rc = tf_stamp_check(peer->keys, newest, m->payload, m->payloadlen);
	if (rc != TF_STAMP_VALID)
		return chain_reason(rc);
	for (uint32_t i = 0; i < chain->n; i++)
		if (strcmp(chain->stamps[i].broker, c->broker_id) == 0)
			return RELAY_LOOP;
	*policy = origin_policy(c, chain->stamps[0].policy, &why);
	if (*policy == NULL) {
		snprintf(detail, cap, "policy %.200s", chain->stamps[0].policy);
		return why;
	}
	g = tf_govern_lookup(c->set->govern, m->topic);
	if (g.kind != TF_GOVERN_POLICY || &c->set->policies[g.policy] != *policy)
		return RELAY_NOT_GOVERNED;
	if ((*policy)->forwarding_deny)
		return RELAY_NO_FORWARD;
	if (!engine_peer_may_have(c, peer, *policy, m->topic, now))
		return RELAY_NOT_CONSUMER;
	return NULL;
}

const char *engine_relay_check(struct engine_ctx *c, const struct tf_peer *peer,
		const struct tf_message *m, int64_t now, const struct tf_policy **policy)
{
	char detail[300] = "", text[700];
	const char *why;

	*policy = NULL;
	why = relay_refusal(c, peer, m, now, policy, detail, sizeof(detail));
	if (why == NULL)
		return NULL;
	snprintf(text, sizeof(text), "a message relayed by peer %s on %s refused: %s%s%s",
		peer->broker_id, m->topic, why, detail[0] ? "; " : "", detail);
	engine_raise_alert(c, "relay-refused", *policy ? (*policy)->label : "",
		tf_identities_org_id(c->set->ids, peer->org), peer->link, text, "drop");
	if (c->trace != NULL)
		engine_record_refused_relay(c, now, m, peer, *policy, why);
	return why;
}

/* --- owners' policies between peers ------------------------------------------ */

#define PEER_POLICY_MALFORMED  "not a published policy ({\"file\", \"sig\"})"
#define PEER_POLICY_NO_STORE   "this broker keeps no peers' policies (it has no trace_db)"
#define PEER_POLICY_REFUSED    "its file is refused here"
#define PEER_POLICY_WRONG_TOPIC "its file is not the policy its topic names"
#define PEER_POLICY_OTHER_OWNER "another owner's policy holds its id here"
#define PEER_POLICY_SAME_VERSION "it has other bytes than the version held here"
#define PEER_POLICY_NOT_KEPT   "it cannot be kept"

/* The file bytes of a published copy's base64, into a buffer the caller
 * frees; NULL when malformed or too large. */
static unsigned char *decode_file(const char *b64, size_t *len)
{
	size_t n = strlen(b64);
	unsigned char *out;
	int decoded;

	if (n == 0 || n % 4 != 0 || n / 4 * 3 > TF_POLICY_MAX_BYTES)
		return NULL;
	out = malloc(n / 4 * 3 + 1);
	if (out == NULL)
		return NULL;
	decoded = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
	if (decoded < 0) {
		free(out);
		return NULL;
	}
	/* EVP_DecodeBlock counts the padding as bytes. */
	*len = (size_t)decoded - (b64[n - 1] == '=') - (b64[n - 2] == '=');
	return out;
}

static bool write_file(const char *path, const void *bytes, size_t len)
{
	FILE *f = fopen(path, "wb");
	bool ok = f != NULL && fwrite(bytes, 1, len, f) == len;

	if (f != NULL && fclose(f) != 0)
		ok = false;
	return ok;
}

#define PATH_CAP 4096

/* dir/name and suffix into out (PATH_CAP bytes); false when too long. */
static bool path_in(char out[PATH_CAP], const char *dir, const char *name, const char *suffix)
{
	int n = snprintf(out, PATH_CAP, "%s/%s%s", dir, name, suffix);

	return n >= 0 && n < PATH_CAP;
}

/* Writes the file and its signature as <dir>/.incoming(.sig), to be
 * loaded as any policy file is (a name the set's *.json leaves out). */
static bool write_incoming(const char *dir, const unsigned char *file, size_t len,
		const char *sig, char path[PATH_CAP])
{
	char sig_path[PATH_CAP];

	return path_in(path, dir, ".incoming", "") && path_in(sig_path, dir, ".incoming", ".sig")
		&& write_file(path, file, len) && write_file(sig_path, sig, strlen(sig));
}

/* Puts the checked incoming file in place as <dir>/<id>.json. */
static bool keep_incoming(const char *dir, const char *id)
{
	char from[PATH_CAP], from_sig[PATH_CAP], to[PATH_CAP], to_sig[PATH_CAP];

	/* The signature first: a file never sits without its own. */
	return path_in(from, dir, ".incoming", "") && path_in(from_sig, dir, ".incoming", ".sig")
		&& path_in(to, dir, id, ".json") && path_in(to_sig, dir, id, ".json.sig")
		&& rename(from_sig, to_sig) == 0 && rename(from, to) == 0;
}

bool engine_remove_peer_policy(const struct engine_ctx *c, const char *id)
{
	char path[PATH_CAP], sig[PATH_CAP];

	if (c->peer_policy_dir == NULL || !path_in(path, c->peer_policy_dir, id, ".json")
			|| !path_in(sig, c->peer_policy_dir, id, ".json.sig") || unlink(path) != 0)
		return false;
	unlink(sig);
	return true;
}

/* Why the policy p, handed over on the topic of owner and id, is not
 * taken, or NULL; *newer: it is newer than the one held. */
static const char *judge_peer_policy(const struct engine_ctx *c, const struct tf_policy *p,
		const char *owner, const char *id, bool *newer)
{
	const struct tf_policy *held = tf_policy_set_find(c->set, p->id);

	*newer = false;
	if (strcmp(p->owner_id, owner) != 0 || strcmp(p->id, id) != 0)
		return PEER_POLICY_WRONG_TOPIC;
	if (held != NULL && strcmp(held->owner_id, p->owner_id) != 0)
		return PEER_POLICY_OTHER_OWNER;
	if (held != NULL && held->version == p->version
			&& memcmp(held->sha256, p->sha256, 32) != 0)
		return PEER_POLICY_SAME_VERSION;
	*newer = held == NULL || held->version < p->version;
	return NULL;
}

/* Splits ENGINE_POLICIES_PREFIX<owner>/<id> into owner and id. */
static bool policy_topic_parts(const char *topic, char owner[TF_ID_MAX_LEN + 1],
		char id[TF_ID_MAX_LEN + 1])
{
	const char *rest = topic + strlen(ENGINE_POLICIES_PREFIX);
	const char *slash = strchr(rest, '/');
	size_t owner_len = slash ? (size_t)(slash - rest) : 0;

	if (slash == NULL || owner_len > TF_ID_MAX_LEN || strlen(slash + 1) > TF_ID_MAX_LEN)
		return false;
	memcpy(owner, rest, owner_len);
	owner[owner_len] = '\0';
	strcpy(id, slash + 1);
	return tf_id_is_valid(owner) && tf_id_is_valid(id);
}

/* Loads and judges the published copy json; *changed when kept. */
static const char *take_policy_copy(struct engine_ctx *c, const cJSON *json, const char *owner,
		const char *id, bool *changed, char *detail, size_t cap)
{
	const cJSON *file = cJSON_GetObjectItemCaseSensitive(json, "file");
	const cJSON *sig = cJSON_GetObjectItemCaseSensitive(json, "sig");
	struct tf_arena arena = { 0 };
	struct tf_policy p;
	struct tf_err err = { "" };
	char incoming[PATH_CAP];
	unsigned char *bytes;
	const char *why = NULL;
	size_t len = 0;
	bool newer;

	if (!cJSON_IsString(file) || !cJSON_IsString(sig)
			|| (bytes = decode_file(file->valuestring, &len)) == NULL)
		return PEER_POLICY_MALFORMED;
	if (!write_incoming(c->peer_policy_dir, bytes, len, sig->valuestring, incoming)) {
		snprintf(detail, cap, "%.300s: %s", c->peer_policy_dir, strerror(errno));
		why = PEER_POLICY_NOT_KEPT;
	} else if (tf_policy_load(incoming, id, c->set->ids, true, &arena, &p, &err)
			!= TF_OK) {
		/* Signed by the owner's key, as any foreign policy must be. */
		snprintf(detail, cap, "%s", err.msg);
		why = PEER_POLICY_REFUSED;
	} else {
		why = judge_peer_policy(c, &p, owner, id, &newer);
		if (why == NULL && newer && !keep_incoming(c->peer_policy_dir, p.id)) {
			snprintf(detail, cap, "%.300s: %s", c->peer_policy_dir, strerror(errno));
			why = PEER_POLICY_NOT_KEPT;
		}
		*changed = why == NULL && newer;
		tf_policy_release(&p);
	}
	free(bytes);
	tf_arena_free(&arena);
	return why;
}

const char *engine_take_peer_policy(struct engine_ctx *c, const struct tf_peer *peer,
		const char *topic, const void *payload, uint32_t payloadlen, bool *changed)
{
	char owner[TF_ID_MAX_LEN + 1], id[TF_ID_MAX_LEN + 1], detail[600] = "", text[900];
	cJSON *json;
	const char *why;

	*changed = false;
	if (payloadlen == 0)
		return NULL;
	if (!policy_topic_parts(topic, owner, id))
		why = PEER_POLICY_WRONG_TOPIC;
	else if (c->peer_policy_dir == NULL)
		why = PEER_POLICY_NO_STORE;
	else if ((json = cJSON_ParseWithLength(payload, payloadlen)) == NULL)
		why = PEER_POLICY_MALFORMED;
	else {
		why = take_policy_copy(c, json, owner, id, changed, detail, sizeof(detail));
		cJSON_Delete(json);
	}
	if (why == NULL) {
		if (*changed)
			engine_log(c, TF_LOG_NOTICE, "trustflow: peer %s handed over policy %s of %s; "
				"loading it", peer->broker_id, id, owner);
		return NULL;
	}
	snprintf(text, sizeof(text), "a policy on %s handed over by peer %s refused: %s%s%s",
		topic, peer->broker_id, why, detail[0] ? ": " : "", detail);
	engine_log(c, TF_LOG_WARNING, "trustflow: %s", text);
	/* Under the policy's id: its owner's stewards hear of it. */
	engine_raise_alert(c, "peer-policy-refused", policy_topic_parts(topic, owner, id) ? id : "",
		tf_identities_org_id(c->set->ids, peer->org), peer->link, text, "drop");
	return why;
}
