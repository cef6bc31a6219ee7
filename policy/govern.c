#include "policy/govern.h"

#include <stdlib.h>
#include <string.h>

#include "broker/util/growable.h"
#include "broker/util/strmap.h"
#include "policy/topic.h"

#define NO_NODE  UINT32_MAX
#define NO_ENTRY UINT32_MAX
/* Owners in a node's summary; no entry has either. NO_OWNER also stands
 * for "any owner" in the overlap walks. */
#define NO_OWNER     UINT32_MAX
#define MIXED_OWNERS (UINT32_MAX - 1)

struct node {
	uint32_t plus;        /* child for a `+` level */
	uint32_t hash_entry;  /* entry of the filter that goes on with `#` here */
	uint32_t end_entry;   /* entry of the filter that ends here */
	uint32_t first_child; /* literal children, for walks that need them all */
	uint32_t next_sibling;
	/* The owner of every entry at or below this node, NO_OWNER when there
	 * is none, MIXED_OWNERS when they have several: the overlap walks
	 * skip branches with nothing they look for. */
	uint32_t owners;
};

struct tf_govern {
	struct node *nodes;
	uint32_t n_nodes, cap_nodes;
	struct tf_governance *entries;
	uint32_t n_entries, cap_entries;
	/* (parent node, level) -> child node. The key is the parent's index
	 * (4 bytes) followed by the level's bytes. */
	struct tf_strmap *edges;
};

/* A level of a topic or filter: text and length, and where the next one
 * starts (NULL after the last). */
struct level {
	const char *text;
	size_t len;
	const char *next;
};

static struct level level_at(const char *s)
{
	const char *slash = strchr(s, '/');
	struct level l = { s, slash ? (size_t)(slash - s) : strlen(s), slash ? slash + 1 : NULL };

	return l;
}

static bool is_level(struct level l, char c)
{
	return l.len == 1 && l.text[0] == c;
}

static void empty_node(struct node *n)
{
	n->plus = NO_NODE;
	n->hash_entry = NO_ENTRY;
	n->end_entry = NO_ENTRY;
	n->first_child = NO_NODE;
	n->next_sibling = NO_NODE;
	n->owners = NO_OWNER;
}

/* A new empty node's index; NO_NODE when out of memory (the bound keeps
 * every index below NO_NODE). */
static uint32_t new_node(struct tf_govern *g)
{
	if (!tf_grow(&g->nodes, &g->cap_nodes, g->n_nodes, 64, NO_NODE))
		return NO_NODE;
	empty_node(&g->nodes[g->n_nodes]);
	return g->n_nodes++;
}

struct tf_govern *tf_govern_new(void)
{
	struct tf_govern *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	g->edges = tf_strmap_new();
	/* The root is node 0. */
	if (g->edges == NULL || new_node(g) == NO_NODE) {
		tf_govern_free(g);
		return NULL;
	}
	return g;
}

void tf_govern_free(struct tf_govern *g)
{
	if (g == NULL)
		return;
	free(g->nodes);
	free(g->entries);
	tf_strmap_free(g->edges);
	free(g);
}

/* Builds the edge key for (parent, level) in buf (TF_TOPIC_MAX_LEN + 4
 * bytes); returns its length. Levels of topics can be longer than any
 * filter's, and then match no edge: *fits says so. */
static size_t edge_key(char *buf, uint32_t parent, struct level l, bool *fits)
{
	*fits = l.len <= TF_TOPIC_MAX_LEN;
	if (!*fits)
		return 0;
	memcpy(buf, &parent, sizeof(parent));
	memcpy(buf + sizeof(parent), l.text, l.len);
	return sizeof(parent) + l.len;
}

static uint32_t literal_child(const struct tf_govern *g, uint32_t parent, struct level l)
{
	char key[TF_TOPIC_MAX_LEN + sizeof(uint32_t)];
	bool fits;
	size_t len = edge_key(key, parent, l, &fits);
	uint32_t child;

	if (!fits || !tf_strmap_get(g->edges, key, len, &child))
		return NO_NODE;
	return child;
}

/* The child of parent for level l, created if missing. */
static uint32_t child_for(struct tf_govern *g, uint32_t parent, struct level l)
{
	char key[TF_TOPIC_MAX_LEN + sizeof(uint32_t)];
	uint32_t child;
	size_t len;
	bool fits;

	if (is_level(l, '+')) {
		if (g->nodes[parent].plus == NO_NODE) {
			child = new_node(g);
			if (child == NO_NODE)
				return NO_NODE;
			g->nodes[parent].plus = child;
		}
		return g->nodes[parent].plus;
	}
	len = edge_key(key, parent, l, &fits);
	if (!fits)
		return NO_NODE;
	if (tf_strmap_get(g->edges, key, len, &child))
		return child;
	child = new_node(g);
	if (child == NO_NODE || tf_strmap_put(g->edges, key, len, child, NULL) < 0)
		return NO_NODE;
	g->nodes[child].next_sibling = g->nodes[parent].first_child;
	g->nodes[parent].first_child = child;
	return child;
}

/* Notes owner in the summary of each node on filter's path (which exists:
 * the filter was just added). */
static void note_owner(struct tf_govern *g, const char *filter, uint32_t owner)
{
	const char *rest = filter;
	uint32_t node = 0;

	for (;;) {
		uint32_t *owners = &g->nodes[node].owners;
		struct level l;

		*owners = *owners == NO_OWNER || *owners == owner ? owner : MIXED_OWNERS;
		if (rest == NULL)
			return;
		l = level_at(rest);
		if (is_level(l, '#'))
			return;
		node = is_level(l, '+') ? g->nodes[node].plus : literal_child(g, node, l);
		rest = l.next;
	}
}

int tf_govern_add(struct tf_govern *g, const char *filter, struct tf_governance entry,
		struct tf_governance *existing)
{
	uint32_t node = 0, *slot;
	struct level l = level_at(filter);

	for (;;) {
		if (is_level(l, '#')) {
			slot = &g->nodes[node].hash_entry;
			break;
		}
		node = child_for(g, node, l);
		if (node == NO_NODE)
			return -1;
		if (l.next == NULL) {
			slot = &g->nodes[node].end_entry;
			break;
		}
		l = level_at(l.next);
	}
	if (*slot != NO_ENTRY) {
		*existing = g->entries[*slot];
		return 0;
	}
	if (!tf_grow(&g->entries, &g->cap_entries, g->n_entries, 64, NO_ENTRY))
		return -1;
	g->entries[g->n_entries] = entry;
	*slot = g->n_entries++;
	note_owner(g, filter, entry.owner);
	return 1;
}

/* Depth-first in order of specificity: the first complete match is the
 * most specific. rest is the remaining topic, NULL after its last level.
 * The recursion is bounded by the trie's depth (TF_TOPIC_MAX_LEVELS). */
static uint32_t most_specific(const struct tf_govern *g, uint32_t node, const char *rest)
{
	const struct node *n = &g->nodes[node];
	struct level l;
	uint32_t child, found;

	if (rest == NULL)
		return n->end_entry != NO_ENTRY ? n->end_entry : n->hash_entry;
	l = level_at(rest);
	child = literal_child(g, node, l);
	if (child != NO_NODE && (found = most_specific(g, child, l.next)) != NO_ENTRY)
		return found;
	if (n->plus != NO_NODE && (found = most_specific(g, n->plus, l.next)) != NO_ENTRY)
		return found;
	return n->hash_entry;
}

struct tf_governance tf_govern_lookup(const struct tf_govern *g, const char *topic)
{
	struct tf_governance none = { TF_GOVERN_NONE, 0, 0, 0 };
	uint32_t e = most_specific(g, 0, topic);

	return e == NO_ENTRY ? none : g->entries[e];
}

/* Whether entry e exists and is not owner's (NO_OWNER: any entry is). */
static bool is_other(const struct tf_govern *g, uint32_t e, uint32_t owner)
{
	return e != NO_ENTRY && g->entries[e].owner != owner;
}

/* Whether the branch at n can hold an entry that is not owner's. */
static bool may_hold_other(const struct node *n, uint32_t owner)
{
	return n->owners != NO_OWNER && n->owners != owner;
}

/* An entry at node or below it that is not owner's. A branch that
 * may_hold_other has one, so the walk only descends where it finds it. */
static uint32_t other_below(const struct tf_govern *g, uint32_t node, uint32_t owner)
{
	const struct node *n = &g->nodes[node];
	uint32_t found;

	if (!may_hold_other(n, owner))
		return NO_ENTRY;
	if (is_other(g, n->end_entry, owner))
		return n->end_entry;
	if (is_other(g, n->hash_entry, owner))
		return n->hash_entry;
	if (n->plus != NO_NODE && (found = other_below(g, n->plus, owner)) != NO_ENTRY)
		return found;
	for (uint32_t c = n->first_child; c != NO_NODE; c = g->nodes[c].next_sibling)
		if ((found = other_below(g, c, owner)) != NO_ENTRY)
			return found;
	return NO_ENTRY;
}

/* An entry at or below node, not owner's, whose filter overlaps the rest
 * of a filter. Topics that begin with `$` need no care here: no filter in
 * the trie begins with `$`, so none matches such a topic and the levels
 * alone decide. The recursion is bounded by the filter's depth. */
static uint32_t overlap(const struct tf_govern *g, uint32_t node, const char *rest,
		uint32_t owner)
{
	const struct node *n = &g->nodes[node];
	struct level l;
	uint32_t child, found;

	if (!may_hold_other(n, owner))
		return NO_ENTRY;
	/* A filter that goes on with `#` here overlaps everything below. */
	if (is_other(g, n->hash_entry, owner))
		return n->hash_entry;
	if (rest == NULL)
		return is_other(g, n->end_entry, owner) ? n->end_entry : NO_ENTRY;
	l = level_at(rest);
	/* `#` matches this level's topic too (`a/#` matches `a`). */
	if (is_level(l, '#'))
		return other_below(g, node, owner);
	if (is_level(l, '+')) {
		for (child = n->first_child; child != NO_NODE; child = g->nodes[child].next_sibling)
			if ((found = overlap(g, child, l.next, owner)) != NO_ENTRY)
				return found;
	} else if ((child = literal_child(g, node, l)) != NO_NODE
			&& (found = overlap(g, child, l.next, owner)) != NO_ENTRY) {
		return found;
	}
	if (n->plus != NO_NODE)
		return overlap(g, n->plus, l.next, owner);
	return NO_ENTRY;
}

struct tf_governance tf_govern_overlap_other(const struct tf_govern *g, const char *filter,
		uint32_t owner)
{
	struct tf_governance none = { TF_GOVERN_NONE, 0, 0, 0 };
	uint32_t e = overlap(g, 0, filter, owner);

	return e == NO_ENTRY ? none : g->entries[e];
}

struct tf_governance tf_govern_overlap_any(const struct tf_govern *g, const char *filter)
{
	return tf_govern_overlap_other(g, filter, NO_OWNER);
}

size_t tf_govern_bytes(const struct tf_govern *g)
{
	return sizeof(*g) + g->cap_nodes * sizeof(struct node)
		+ g->cap_entries * sizeof(struct tf_governance) + tf_strmap_bytes(g->edges);
}
