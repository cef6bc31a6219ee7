/* The decisions of policy-v1 and operations-v1: may this client publish on
 * this topic, receive this message, subscribe to this filter. Pure
 * functions of a policy set, a client and a time; every unknown or error
 * denies. */
#ifndef TF_POLICY_DECIDE_H
#define TF_POLICY_DECIDE_H

#include <stdbool.h>
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

struct tf_decision {
	enum tf_verdict verdict;
	const struct tf_policy *policy;  /* governing policy; NULL when ungoverned */
	bool view;                       /* the topic is under a view of policy */
	int rule;                        /* consumer rule index, or TF_RULE_* */
	const char *reason;              /* static text for operators and traces */
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

/* filter may be a shared subscription ($share/<group>/<filter>). */
void tf_decide_subscribe(const struct tf_policy_set *set, const struct tf_client *who,
		const char *filter, int64_t now_ms, struct tf_decision *d);

const char *tf_verdict_name(enum tf_verdict v);

/* A decision as tfctl policy explain and the control API's explain give
 * it (operations-v1): {"decision", "policy", "rule", "reason"}, and
 * "view": true for a view. A `$` topic left to mosquitto is a deny: with
 * no other access control, mosquitto denies it. Caller owns the object
 * (cJSON_Delete); NULL when out of memory. */
struct cJSON;
struct cJSON *tf_decision_json(const struct tf_decision *d);

#endif
