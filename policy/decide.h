/* The decisions of policy-v1 and operations-v1: may this client publish on
 * this topic, receive this message, subscribe to this filter. Pure
 * functions of a policy set, a client and a time; every unknown or error
 * denies. */
#ifndef TF_POLICY_DECIDE_H
#define TF_POLICY_DECIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/set.h"

enum tf_verdict {
	TF_DENY = 0,
	TF_ALLOW,
	TF_DEFER,  /* a `$` topic that trustflow leaves to mosquitto's other controls */
};

/* Which rule decided. */
#define TF_RULE_NONE       (-1)  /* no rule: ungoverned, unidentified, no match */
#define TF_RULE_OWNER_ORG  (-2)  /* the policy owner's own org */
#define TF_RULE_PUBLISHERS (-3)  /* the policy's publishers selector */

/* What a refused client lacked under the rule that came closest to
 * letting it (tf_decision.closest), as bits: the selector's keys
 * (TF_SEL_ORGS, TF_SEL_CLIENTS, TF_SEL_ROLES, TF_SEL_PURPOSES) and: */
#define TF_MISS_NOT_YET   0x10u  /* the consumer rule is not in force yet */
#define TF_MISS_EXPIRED   0x20u  /* the consumer rule has expired */
#define TF_MISS_VIEW_ONLY 0x40u  /* the rule gives a view copy, not the original */

struct tf_decision {
	enum tf_verdict verdict;
	const struct tf_policy *policy;  /* governing policy; NULL when ungoverned */
	bool view;                       /* the topic is under a view of policy */
	int rule;                        /* consumer rule index, or TF_RULE_* */
	/* Static text for operators and traces, one of a fixed set of
	 * phrases: traces store each phrase once, as a name (record.c). */
	const char *reason;
	/* A deny under a selector: the rule that came closest to allowing (a
	 * consumer rule index, or TF_RULE_PUBLISHERS), and what the client
	 * lacked under it (TF_SEL_* and TF_MISS_* bits); TF_RULE_NONE and 0
	 * otherwise. tf_decision_explain() puts them in words. */
	int closest;
	unsigned missed;
};

/* A client's identity as decisions need it: its entry in the identities
 * (NULL: unidentified). */
void tf_decide_publish(const struct tf_policy_set *set, const struct tf_client *who,
		const char *topic, struct tf_decision *d);

/* received_ms: when the broker received the message, or TF_TIME_UNKNOWN;
 * an original message older than its policy's retention is withheld, and
 * so is one of unknown age under a policy with a retention. (View copies
 * carry their retention as a message expiry that mosquitto enforces.) */
#define TF_TIME_UNKNOWN INT64_MIN
void tf_decide_receive(const struct tf_policy_set *set, const struct tf_client *who,
		const char *topic, int64_t now_ms, int64_t received_ms, struct tf_decision *d);

/* Whether who (identified) receives data of p under rule, a consumer rule
 * index or TF_RULE_OWNER_ORG, as tf_decide_receive would name that rule:
 * the owner org's clients receive originals as the owner (unless
 * owner_receives is false), so a consumer rule without fields gives them
 * nothing more; a view rule gives whoever it matches its view. at_ms:
 * the rule must be in force then; TF_TIME_UNKNOWN: at any time of its
 * window. (A message's retention is not considered.) For tfctl policy
 * receivers, which asks it of every client. */
bool tf_decide_receives_under(const struct tf_policy *p, const struct tf_client *who, int rule,
		int64_t at_ms);

/* filter may be a shared subscription ($share/<group>/<filter>). */
void tf_decide_subscribe(const struct tf_policy_set *set, const struct tf_client *who,
		const char *filter, int64_t now_ms, struct tf_decision *d);

const char *tf_verdict_name(enum tf_verdict v);

/* The reason for d in full, for people asking why: d->reason, and for a
 * deny under a selector, what failed for the closest rule, with names and
 * times ("consumer rule 0: purpose research not among the rule's purposes
 * (maintenance)", "consumer rule 1: expired at 2027-06-30T00:00:00Z").
 * who and set must be those d was decided with. Writes at most size bytes
 * (size > 0) into buf, cut short when longer; lists of names are cut
 * after a few. Deterministic, and allocates nothing.
 *
 * The delivery path records only d->reason: a withheld delivery is
 * decided on the broker's thread for every subscriber of every message,
 * and its trace event stores the reason as a name of the store's name
 * table, which grows by every distinct text. The details name the client
 * and the policy's values, which the event records anyway (client, and
 * policy label), so they are built here, only when someone asks. */
void tf_decision_explain(const struct tf_policy_set *set, const struct tf_client *who,
		const struct tf_decision *d, char *buf, size_t size);

/* A decision as tfctl policy explain and the control API's explain give
 * it (operations-v1): {"decision", "policy", "rule", "reason"}, and
 * "view": true for a view; "reason" is tf_decision_explain's. A `$` topic
 * left to mosquitto is a deny: with no other access control, mosquitto
 * denies it. who and set as for tf_decision_explain. Caller owns the
 * object (cJSON_Delete); NULL when out of memory. */
struct cJSON;
struct cJSON *tf_decision_json(const struct tf_policy_set *set, const struct tf_client *who,
		const struct tf_decision *d);

#endif
