/* Which policy governs a topic: a trie over the levels of every policy's
 * topic filters (and every view's prefix), so that a lookup costs the
 * topic's depth, not the number of policies.
 *
 * The most specific filter wins, compared level by level: a literal level
 * beats `+`, `+` beats `#`, and a filter that ends with the topic beats one
 * that goes on with `#`. Built once per policy set, then read-only.
 *
 * Each node also knows whose entries lie below it, so that a filter that
 * overlaps another owner's is found by one walk of the trie, not by
 * comparing every pair of filters. */
#ifndef TF_POLICY_GOVERN_H
#define TF_POLICY_GOVERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tf_govern_kind {
	TF_GOVERN_NONE,    /* no policy: default_access decides */
	TF_GOVERN_POLICY,  /* one of the policy's topics */
	TF_GOVERN_VIEW,    /* under a view prefix: the reduced copies of a rule */
};

struct tf_governance {
	enum tf_govern_kind kind;
	uint32_t policy;   /* index in the policy set */
	uint32_t rule;     /* TF_GOVERN_VIEW: the consumer rule with the view;
			    * TF_GOVERN_POLICY: the filter's index in the policy's topics */
	uint32_t owner;    /* whose entry: a number the caller gives each data owner,
			    * at most TF_GOVERN_MAX_OWNER; see tf_govern_overlap_other */
};

#define TF_GOVERN_MAX_OWNER (UINT32_MAX - 2)

struct tf_govern;

/* NULL when out of memory. */
struct tf_govern *tf_govern_new(void);
void tf_govern_free(struct tf_govern *g);

/* Adds a valid filter (policy/topic.h). Returns 1 when added, 0 when the
 * identical filter is already there (*existing then says whose), -1 when
 * out of memory. */
int tf_govern_add(struct tf_govern *g, const char *filter, struct tf_governance entry,
		struct tf_governance *existing);

/* The entry that governs topic (a topic name, not starting with `$`). */
struct tf_governance tf_govern_lookup(const struct tf_govern *g, const char *topic);

/* Some entry whose filter overlaps filter (shares at least one topic
 * with it); kind TF_GOVERN_NONE when none does. */
struct tf_governance tf_govern_overlap_any(const struct tf_govern *g, const char *filter);

/* As tf_govern_overlap_any, among the entries whose owner is not owner.
 * The walk follows filter's literal, `+` and `#` levels through the trie
 * and skips every branch that holds only owner's entries, so where owners
 * do not mix it costs about the filter's depth, not the number of
 * entries (a `+` level still looks at each literal child once). */
struct tf_governance tf_govern_overlap_other(const struct tf_govern *g, const char *filter,
		uint32_t owner);

size_t tf_govern_bytes(const struct tf_govern *g);

#endif
