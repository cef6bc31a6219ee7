#include "policy/set.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker/util/dirlist.h"
#include "broker/util/strmap.h"
#include "policy/rollback.h"
#include "policy/topic.h"

void tf_policy_set_free(struct tf_policy_set *set)
{
	if (set == NULL)
		return;
	for (uint32_t i = 0; i < set->n_policies; i++)
		tf_policy_release(&set->policies[i]);
	free(set->policies);
	tf_govern_free(set->govern);
	tf_strmap_free(set->by_id);
	free(set->org_off);
	free(set->client_off);
	free(set->symbol_off);
	free(set->org_refs);
	free(set->client_refs);
	free(set->symbol_refs);
	free(set->everyone_refs);
	tf_identities_free(set->ids);
	tf_arena_free(&set->arena);
	free(set);
}

/* Loads the *.json files of dir into set->policies from index
 * set->n_policies on; signed: each must be signed by its owner
 * (require_signed_policies, or a peer's policy). */
static int load_dir(struct tf_policy_set *set, const char *dir, char **names, uint32_t n,
		bool require_signed, struct tf_err *err)
{
	int rc = TF_OK;

	for (uint32_t i = 0; i < n && rc == TF_OK; i++) {
		char path[4096];
		uint32_t at = set->n_policies;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		rc = tf_policy_load(path, NULL, set->ids, require_signed, &set->arena,
			&set->policies[at], err);
		if (rc == TF_OK)
			set->n_policies++;
		else
			set->refused = at;
	}
	return rc;
}

/* A policy id both in a local file and among the peers' policies: of the
 * same owner, the higher version stays (the peer's at the same version:
 * it is the one being kept up to date); of another owner, the local file
 * is refused, for it would take over the owner's data (federation-v1,
 * section 2). Returns the index of the one to drop, or an error. */
static int settle_twin(struct tf_policy_set *set, uint32_t local, uint32_t peer,
		uint32_t *drop, struct tf_err *err)
{
	const struct tf_policy *l = &set->policies[local], *p = &set->policies[peer];

	if (strcmp(l->owner_id, p->owner_id) != 0) {
		set->refused = local;
		return tf_err_set(err, TF_ERR_INVALID, "%s: $.id: policy id \"%s\" is %s's, whose "
			"signed policy a peer broker handed over; a local file cannot give it to %s",
			l->file, l->id, p->owner_id, l->owner_id);
	}
	*drop = l->version > p->version ? peer : local;
	return TF_OK;
}

/* Settles each id that a peer's policy (from index first_peer on) and a
 * local one share (settle_twin), dropping one of the two. */
static int settle_peer_policies(struct tf_policy_set *set, uint32_t first_peer,
		struct tf_err *err)
{
	bool *dropped = calloc(set->n_policies ? set->n_policies : 1, sizeof(*dropped));
	uint32_t kept = 0;
	int rc = TF_OK;

	if (dropped == NULL)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory loading policies");
	for (uint32_t i = first_peer; i < set->n_policies && rc == TF_OK; i++) {
		for (uint32_t j = 0; j < first_peer; j++) {
			uint32_t drop = 0;

			if (dropped[j] || strcmp(set->policies[i].id, set->policies[j].id) != 0)
				continue;
			if ((rc = settle_twin(set, j, i, &drop, err)) == TF_OK)
				dropped[drop] = true;
			break;
		}
	}
	for (uint32_t i = 0; i < set->n_policies && rc == TF_OK; i++) {
		if (dropped[i])
			tf_policy_release(&set->policies[i]);
		else
			set->policies[kept++] = set->policies[i];
	}
	if (rc == TF_OK)
		set->n_policies = kept;
	free(dropped);
	return rc;
}

static int load_policies(struct tf_policy_set *set, const struct tf_policy_set_options *opts,
		struct tf_err *err)
{
	char **names = NULL, **peer_names = NULL;
	uint32_t n = 0, n_peer = 0, n_local;
	int rc;

	rc = tf_dir_list(opts->policy_dir, ".json", TF_POLICY_SET_MAX_FILES, &names, &n, err);
	if (rc == TF_OK && opts->peer_policy_dir != NULL)
		rc = tf_dir_list(opts->peer_policy_dir, ".json", TF_POLICY_SET_MAX_FILES, &peer_names,
			&n_peer, err);
	if (rc == TF_OK && (set->policies = calloc(n + n_peer ? n + n_peer : 1,
			sizeof(*set->policies))) == NULL)
		rc = tf_err_set(err, TF_ERR_NOMEM, "%s: out of memory", opts->policy_dir);
	if (rc == TF_OK)
		rc = load_dir(set, opts->policy_dir, names, n, opts->require_signed, err);
	n_local = set->n_policies;
	if (rc == TF_OK && n_peer > 0)
		rc = load_dir(set, opts->peer_policy_dir, peer_names, n_peer, true, err);
	if (rc == TF_OK)
		rc = settle_peer_policies(set, n_local, err);
	for (uint32_t i = 0; i < set->n_policies && rc == TF_OK; i++)
		if ((rc = tf_rollback_check(opts->rollback, &set->policies[i], err)) != TF_OK)
			set->refused = i;
	tf_dir_list_free(names, n);
	tf_dir_list_free(peer_names, n_peer);
	return rc;
}

/* Policy ids are unique across the set. */
static int index_ids(struct tf_policy_set *set, struct tf_err *err)
{
	set->by_id = tf_strmap_new();
	if (set->by_id == NULL)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory indexing policies");
	for (uint32_t i = 0; i < set->n_policies; i++) {
		const struct tf_policy *p = &set->policies[i];
		uint32_t other;
		int added = tf_strmap_put(set->by_id, p->id, strlen(p->id), i, &other);

		if (added < 0)
			return tf_err_set(err, TF_ERR_NOMEM, "out of memory indexing policies");
		if (added == 0) {
			set->refused = i;
			return tf_err_set(err, TF_ERR_INVALID,
				"%s: $.id: policy id \"%s\" is already used by %s", p->file, p->id,
				set->policies[other].file);
		}
	}
	return TF_OK;
}

/* Adds filter t of policy i, owned by owner. Two owners' filters must
 * not overlap: otherwise a second owner could write a more specific filter
 * inside the first one's and take its topics over (policy-v1, "Which policy
 * governs a topic"). The check sees the filters added before; the later
 * of two overlapping ones reports the pair. */
static int govern_topic(struct tf_policy_set *set, uint32_t i, uint32_t t, uint32_t owner,
		struct tf_err *err)
{
	const struct tf_policy *p = &set->policies[i], *q;
	struct tf_governance e = { TF_GOVERN_POLICY, i, t, owner }, other;
	int added = tf_govern_add(set->govern, p->topics[t], e, &other);

	if (added < 0)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory indexing topics");
	if (added == 0) {
		set->refused = i;
		return tf_err_set(err, TF_ERR_INVALID,
			"%s: $.topics[%u]: topic filter \"%s\" is also in %s "
			"(two policies cannot govern the same filter)", p->file, t,
			p->topics[t], set->policies[other.policy].file);
	}
	other = tf_govern_overlap_other(set->govern, p->topics[t], owner);
	if (other.kind == TF_GOVERN_NONE)
		return TF_OK;
	set->refused = i;
	q = &set->policies[other.policy];
	return tf_err_set(err, TF_ERR_INVALID,
		"%s: $.topics[%u]: topic filter \"%s\" of owner %s overlaps \"%s\" of owner %s "
		"in %s (policies of different owners cannot govern the same topics)", p->file, t,
		p->topics[t], p->owner_id, q->topics[other.rule], q->owner_id, q->file);
}

static int govern_topics(struct tf_policy_set *set, struct tf_err *err)
{
	/* Each owner's number is the index of its first policy. Owners are
	 * told apart by id: a check without identities has no org indexes. */
	struct tf_strmap *owners = tf_strmap_new();
	int rc = owners != NULL ? TF_OK
		: tf_err_set(err, TF_ERR_NOMEM, "out of memory indexing topics");

	for (uint32_t i = 0; i < set->n_policies && rc == TF_OK; i++) {
		const struct tf_policy *p = &set->policies[i];
		uint32_t owner = i;

		if (tf_strmap_put(owners, p->owner_id, strlen(p->owner_id), i, &owner) < 0)
			rc = tf_err_set(err, TF_ERR_NOMEM, "out of memory indexing topics");
		for (uint32_t t = 0; t < p->n_topics && rc == TF_OK; t++)
			rc = govern_topic(set, i, t, owner, err);
	}
	tf_strmap_free(owners);
	return rc;
}

/* Views go in after every policy's topics, so that the overlap check sees
 * all of them and every view added before. */
static int govern_views(struct tf_policy_set *set, struct tf_err *err)
{
	for (uint32_t i = 0; i < set->n_policies; i++) {
		const struct tf_policy *p = &set->policies[i];

		for (uint32_t r = 0; r < p->n_consumers; r++) {
			const char *view = p->consumers[r].view;
			/* A view overlaps nothing at all: its owner plays no part. */
			struct tf_governance e = { TF_GOVERN_VIEW, i, r, 0 }, other;
			char filter[TF_TOPIC_MAX_LEN + 3];

			if (view == NULL)
				continue;
			snprintf(filter, sizeof(filter), "%s/#", view);
			other = tf_govern_overlap_any(set->govern, filter);
			if (other.kind != TF_GOVERN_NONE) {
				set->refused = i;
				return tf_err_set(err, TF_ERR_INVALID,
					"%s: $.consumers[%u].view: view \"%s\" overlaps %s of %s",
					p->file, r, view,
					other.kind == TF_GOVERN_VIEW ? "a view" : "the topics",
					set->policies[other.policy].file);
			}
			if (tf_govern_add(set->govern, filter, e, &other) < 0)
				return tf_err_set(err, TF_ERR_NOMEM, "out of memory indexing views");
		}
	}
	return TF_OK;
}

/* The key a consumer rule is indexed under: the most selective one it has.
 * Returns the key's list, and which table it belongs to (0 orgs, 1
 * clients, 2 symbols, 3 everyone). */
static const struct tf_selector_key *rule_key(const struct tf_selector *who, int *table)
{
	if (who->clients.present) {
		*table = 1;
		return &who->clients;
	}
	if (who->orgs.present) {
		*table = 0;
		return &who->orgs;
	}
	if (who->roles.present) {
		*table = 2;
		return &who->roles;
	}
	if (who->purposes.present) {
		*table = 2;
		return &who->purposes;
	}
	*table = 3;
	return NULL;
}

struct csr {
	uint32_t *off;            /* n_keys + 1 */
	struct tf_rule_ref *refs;
	uint32_t n_keys;
};

/* Two passes over every rule: count per key, then fill. */
static void index_pass(struct tf_policy_set *set, struct csr tables[4], bool fill)
{
	for (uint32_t i = 0; i < set->n_policies; i++) {
		const struct tf_policy *p = &set->policies[i];

		for (uint32_t r = 0; r <= p->n_consumers; r++) {
			/* r == n_consumers stands for the owner org. */
			struct tf_rule_ref ref = { i, r < p->n_consumers ? r : TF_RULE_OWNER };
			struct tf_selector_key owner = { true, 1, &p->owner };
			const struct tf_selector_key *key;
			int t;

			if (r < p->n_consumers) {
				key = rule_key(&p->consumers[r].who, &t);
			} else if (!p->owner_receives) {
				/* Its clients receive under its rules, if at all. */
				continue;
			} else {
				key = &owner;
				t = 0;
			}
			if (t == 3) {
				if (fill)
					tables[3].refs[tables[3].off[0]] = ref;
				tables[3].off[0]++;
				continue;
			}
			for (uint32_t k = 0; k < key->n; k++) {
				uint32_t slot = key->items[k];

				if (fill)
					tables[t].refs[tables[t].off[slot]++] = ref;
				else
					tables[t].off[slot + 1]++;
			}
		}
	}
}

static int index_receivers(struct tf_policy_set *set, struct tf_err *err)
{
	struct csr tables[4] = {
		{ NULL, NULL, tf_identities_org_count(set->ids) },
		{ NULL, NULL, tf_identities_client_count(set->ids) },
		{ NULL, NULL, tf_identities_symbol_count(set->ids) },
		{ NULL, NULL, 0 },
	};
	int rc = TF_OK;

	for (int t = 0; t < 4; t++) {
		tables[t].off = calloc((size_t)tables[t].n_keys + 2, sizeof(uint32_t));
		if (tables[t].off == NULL)
			rc = TF_ERR_NOMEM;
	}
	if (rc == TF_OK) {
		index_pass(set, tables, false);
		for (int t = 0; t < 3; t++)
			for (uint32_t k = 0; k < tables[t].n_keys; k++)
				tables[t].off[k + 1] += tables[t].off[k];
		for (int t = 0; t < 4 && rc == TF_OK; t++) {
			uint32_t total = t == 3 ? tables[3].off[0] : tables[t].off[tables[t].n_keys];

			tables[t].refs = malloc(((size_t)total + 1) * sizeof(struct tf_rule_ref));
			if (tables[t].refs == NULL)
				rc = TF_ERR_NOMEM;
		}
	}
	if (rc == TF_OK) {
		/* The fill pass advances each key's offset to the next key's
		 * start; shift them back afterwards. */
		set->n_everyone = tables[3].off[0];
		tables[3].off[0] = 0;
		index_pass(set, tables, true);
		for (int t = 0; t < 3; t++) {
			memmove(tables[t].off + 1, tables[t].off, tables[t].n_keys * sizeof(uint32_t));
			tables[t].off[0] = 0;
		}
	}
	set->org_off = tables[0].off;
	set->client_off = tables[1].off;
	set->symbol_off = tables[2].off;
	set->org_refs = tables[0].refs;
	set->client_refs = tables[1].refs;
	set->symbol_refs = tables[2].refs;
	set->everyone_refs = tables[3].refs;
	free(tables[3].off);
	if (rc != TF_OK)
		return tf_err_set(err, rc, "out of memory indexing consumers");
	return TF_OK;
}

/* Everything that needs the whole set: unique ids, no filter in two
 * policies, no overlap between owners' filters, views that overlap
 * nothing, and (with identities) the index of who may receive what. */
static int assemble(struct tf_policy_set *set, struct tf_err *err)
{
	int rc = index_ids(set, err);

	if (rc == TF_OK && (set->govern = tf_govern_new()) == NULL)
		rc = tf_err_set(err, TF_ERR_NOMEM, "out of memory indexing topics");
	if (rc == TF_OK)
		rc = govern_topics(set, err);
	if (rc == TF_OK)
		rc = govern_views(set, err);
	if (rc == TF_OK && set->ids != NULL)
		rc = index_receivers(set, err);
	if (rc == TF_OK && set->ids != NULL) {
		set->role_admin = tf_identities_symbol(set->ids, "trustflow-admin");
		set->role_steward = tf_identities_symbol(set->ids, "data-steward");
	}
	return rc;
}

int tf_policy_set_load(const struct tf_policy_set_options *opts, struct tf_policy_set **out,
		struct tf_err *err)
{
	struct tf_policy_set *set;
	int rc;

	*out = NULL;
	if (opts->refused_id != NULL)
		opts->refused_id[0] = '\0';
	set = calloc(1, sizeof(*set));
	if (set == NULL)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory loading policies");
	set->default_allow = opts->default_allow;
	set->refused = UINT32_MAX;
	rc = tf_identities_load(opts->identities, NULL, &set->ids, err);
	/* A peer entry under this broker's own id would let a bridge pass
	 * messages off as this broker's (federation-v1). */
	if (rc == TF_OK && opts->broker_id != NULL && tf_identities_peer(set->ids, opts->broker_id))
		rc = tf_err_set(err, TF_ERR_INVALID, "%s: $.brokers.%s: is this broker's own "
			"broker_id: a broker has no peer entry of its own", opts->identities,
			opts->broker_id);
	if (rc == TF_OK)
		rc = load_policies(set, opts, err);
	if (rc == TF_OK)
		rc = assemble(set, err);
	if (rc != TF_OK) {
		const char *id = set->refused != UINT32_MAX ? set->policies[set->refused].id : NULL;

		if (opts->refused_id != NULL && id != NULL)
			snprintf(opts->refused_id, TF_ID_MAX_LEN + 1, "%s", id);
		tf_policy_set_free(set);
		return rc;
	}
	*out = set;
	return TF_OK;
}

int tf_policy_set_assemble(struct tf_identities *ids, struct tf_policy *policies, uint32_t n,
		struct tf_arena *arena, struct tf_policy_set **out, struct tf_err *err)
{
	uint32_t refused;

	return tf_policy_set_assemble_checked(ids, policies, n, arena, out, &refused, err);
}

int tf_policy_set_assemble_checked(struct tf_identities *ids, struct tf_policy *policies,
		uint32_t n, struct tf_arena *arena, struct tf_policy_set **out, uint32_t *refused,
		struct tf_err *err)
{
	struct tf_policy_set *set = calloc(1, sizeof(*set));
	int rc;

	*out = NULL;
	*refused = UINT32_MAX;
	if (set == NULL) {
		for (uint32_t i = 0; i < n; i++)
			tf_policy_release(&policies[i]);
		free(policies);
		tf_identities_free(ids);
		tf_arena_free(arena);
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	}
	set->ids = ids;
	set->policies = policies;
	set->n_policies = n;
	set->refused = UINT32_MAX;
	set->arena = *arena;
	memset(arena, 0, sizeof(*arena));
	rc = assemble(set, err);
	if (rc != TF_OK) {
		*refused = set->refused;
		tf_policy_set_free(set);
		return rc;
	}
	*out = set;
	return TF_OK;
}

const struct tf_policy *tf_policy_set_find(const struct tf_policy_set *set, const char *id)
{
	uint32_t i;

	if (!tf_strmap_get(set->by_id, id, strlen(id), &i))
		return NULL;
	return &set->policies[i];
}

const struct tf_policy *tf_policy_set_find_label(const struct tf_policy_set *set,
		const char *label)
{
	size_t n = tf_policy_label_id_len(label);
	const struct tf_policy *p;
	uint32_t i;

	if (!tf_strmap_get(set->by_id, label, n, &i))
		return NULL;
	p = &set->policies[i];
	return strcmp(p->label, label) == 0 ? p : NULL;
}

size_t tf_policy_set_bytes(const struct tf_policy_set *set)
{
	if (set->ids == NULL)
		return sizeof(*set) + set->arena.total;

	uint32_t refs = set->org_off[tf_identities_org_count(set->ids)]
		+ set->client_off[tf_identities_client_count(set->ids)]
		+ set->symbol_off[tf_identities_symbol_count(set->ids)] + set->n_everyone;

	return sizeof(*set) + tf_identities_bytes(set->ids) + set->arena.total
		+ set->n_policies * sizeof(struct tf_policy) + tf_govern_bytes(set->govern)
		+ tf_strmap_bytes(set->by_id) + (size_t)refs * sizeof(struct tf_rule_ref)
		+ ((size_t)tf_identities_org_count(set->ids) + tf_identities_client_count(set->ids)
			+ tf_identities_symbol_count(set->ids) + 3) * sizeof(uint32_t);
}
