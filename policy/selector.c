#include "policy/selector.h"

#include <string.h>

#include "policy/id.h"

const char *const tf_selector_members[] = { "orgs", "clients", "roles", "purposes", NULL };

enum key_kind { KEY_ORGS, KEY_CLIENTS, KEY_LABELS };

/* Resolves one name to its index or symbol; TF_NONE when unknown. */
static uint32_t resolve(const struct tf_identities *ids, enum key_kind kind, const char *name)
{
	switch (kind) {
	case KEY_ORGS:    return tf_identities_org(ids, name);
	case KEY_CLIENTS: return tf_identities_client_index(ids, name);
	case KEY_LABELS:  return tf_identities_symbol(ids, name);
	}
	return TF_NONE;
}

static int load_key(struct tf_jctx *c, const cJSON *obj, const char *name, enum key_kind kind,
		const struct tf_identities *ids, struct tf_arena *arena, struct tf_selector_key *key)
{
	const cJSON *list, *item;
	uint32_t *items;
	size_t mark;
	int rc, index = 0;

	memset(key, 0, sizeof(*key));
	rc = tf_jarray(c, obj, name, false, 0, TF_SELECTOR_MAX_ITEMS, &list);
	if (rc != TF_OK || list == NULL)
		return rc;
	key->present = true;
	items = tf_arena_alloc(arena, sizeof(*items) * (size_t)(cJSON_GetArraySize(list) + 1));
	if (items == NULL)
		return tf_err_set(c->err, TF_ERR_NOMEM, "%s: out of memory", c->file);
	mark = tf_jctx_member(c, name);
	cJSON_ArrayForEach(item, list) {
		size_t imark = tf_jctx_index(c, index++);
		uint32_t v;

		if (!cJSON_IsString(item) || !tf_id_is_valid(item->valuestring)) {
			rc = tf_jfail(c, "not a valid id");
		} else if (ids != NULL) {
			v = resolve(ids, kind, item->valuestring);
			if (v == TF_NONE && kind == KEY_ORGS)
				rc = tf_jfail(c, "unknown organization \"%s\" (not in the identities file)",
					item->valuestring);
			else if (v != TF_NONE)
				items[key->n++] = v;
		}
		tf_jctx_pop(c, imark);
		if (rc != TF_OK)
			break;
	}
	tf_jctx_pop(c, mark);
	tf_symbols_sort_unique(items, &key->n);
	key->items = items;
	return rc;
}

int tf_selector_load(struct tf_jctx *c, const cJSON *obj, const struct tf_identities *ids,
		struct tf_arena *arena, struct tf_selector *out)
{
	int rc;

	rc = load_key(c, obj, "orgs", KEY_ORGS, ids, arena, &out->orgs);
	if (rc == TF_OK)
		rc = load_key(c, obj, "clients", KEY_CLIENTS, ids, arena, &out->clients);
	if (rc == TF_OK)
		rc = load_key(c, obj, "roles", KEY_LABELS, ids, arena, &out->roles);
	if (rc == TF_OK)
		rc = load_key(c, obj, "purposes", KEY_LABELS, ids, arena, &out->purposes);
	return rc;
}

/* Whether two sorted lists share an entry. */
static bool intersect(const uint32_t *a, uint32_t na, const uint32_t *b, uint32_t nb)
{
	uint32_t i = 0, j = 0;

	while (i < na && j < nb) {
		if (a[i] == b[j])
			return true;
		if (a[i] < b[j])
			i++;
		else
			j++;
	}
	return false;
}

bool tf_selector_matches(const struct tf_selector *s, const struct tf_client *client)
{
	if (client == NULL)
		return false;
	if (s->orgs.present && !tf_symbols_contain(s->orgs.items, s->orgs.n, client->org))
		return false;
	if (s->clients.present && !tf_symbols_contain(s->clients.items, s->clients.n, client->index))
		return false;
	if (s->roles.present && !intersect(s->roles.items, s->roles.n, client->roles, client->n_roles))
		return false;
	if (s->purposes.present
			&& !intersect(s->purposes.items, s->purposes.n, client->purposes, client->n_purposes))
		return false;
	return true;
}

unsigned tf_selector_misses(const struct tf_selector *s, const struct tf_client *client)
{
	unsigned m = 0;

	if (s->orgs.present && !tf_symbols_contain(s->orgs.items, s->orgs.n, client->org))
		m |= TF_SEL_ORGS;
	if (s->clients.present && !tf_symbols_contain(s->clients.items, s->clients.n, client->index))
		m |= TF_SEL_CLIENTS;
	if (s->roles.present && !intersect(s->roles.items, s->roles.n, client->roles, client->n_roles))
		m |= TF_SEL_ROLES;
	if (s->purposes.present
			&& !intersect(s->purposes.items, s->purposes.n, client->purposes, client->n_purposes))
		m |= TF_SEL_PURPOSES;
	return m;
}
