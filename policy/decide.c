#include "policy/decide.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "policy/rfc3339.h"
#include "policy/topic.h"

#define TF_PREFIX "$trustflow/"
#define CONTROL_PREFIX "$CONTROL/trustflow/"

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void set_decision(struct tf_decision *d, enum tf_verdict v, const struct tf_policy *p,
		int rule, const char *reason)
{
	d->verdict = v;
	d->policy = p;
	d->view = false;
	d->rule = rule;
	d->reason = reason;
	d->closest = TF_RULE_NONE;
	d->missed = 0;
}

static bool has_role(const struct tf_client *who, uint32_t role)
{
	return who != NULL && role != TF_NONE && tf_symbols_contain(who->roles, who->n_roles, role);
}

static bool is_operator(const struct tf_policy_set *set, const struct tf_client *who)
{
	return has_role(who, set->role_admin) || has_role(who, set->role_steward);
}

static void decide_ungoverned(const struct tf_policy_set *set, struct tf_decision *d)
{
	if (set->default_allow)
		set_decision(d, TF_ALLOW, NULL, TF_RULE_NONE, "not governed by any policy; default_access allow");
	else
		set_decision(d, TF_DENY, NULL, TF_RULE_NONE, "not governed by any policy; default_access deny");
}

/* --- `$` topics (operations-v1) ------------------------------------------ */

static void publish_dollar(const struct tf_policy_set *set, const struct tf_client *who,
		const char *topic, struct tf_decision *d)
{
	if (starts_with(topic, TF_PREFIX) || strcmp(topic, "$trustflow") == 0)
		set_decision(d, TF_DENY, NULL, TF_RULE_NONE, "only the broker publishes under $trustflow/");
	else if (strcmp(topic, CONTROL_PREFIX "v1") == 0 && is_operator(set, who))
		set_decision(d, TF_ALLOW, NULL, TF_RULE_NONE, "control API caller");
	else if (starts_with(topic, CONTROL_PREFIX) || strcmp(topic, "$CONTROL/trustflow") == 0)
		set_decision(d, TF_DENY, NULL, TF_RULE_NONE,
			"only trustflow-admin and data-steward clients send control requests, "
			"on $CONTROL/trustflow/v1");
	else
		set_decision(d, TF_DEFER, NULL, TF_RULE_NONE, "$ topic: left to mosquitto");
}

/* Alerts of a policy are for admins, and for data stewards of the org that
 * owns it; alerts about no policy ("-") for admins only. */
static bool may_read_alert(const struct tf_policy_set *set, const struct tf_client *who,
		const char *policy_id)
{
	const struct tf_policy *p;

	if (has_role(who, set->role_admin))
		return true;
	if (!has_role(who, set->role_steward) || strchr(policy_id, '/') != NULL)
		return false;
	p = tf_policy_set_find(set, policy_id);
	return p != NULL && p->owner == who->org;
}

/* A published policy, $trustflow/policies/<owner>/<id> (federation-v1),
 * is for admins, and for data stewards of its owner: rest is
 * "<owner>/<id>". */
static bool may_read_policy(const struct tf_policy_set *set, const struct tf_client *who,
		const char *rest)
{
	const char *slash = strchr(rest, '/');
	const char *org;

	if (has_role(who, set->role_admin))
		return true;
	if (!has_role(who, set->role_steward) || slash == NULL || strchr(slash + 1, '/') != NULL)
		return false;
	org = tf_identities_org_id(set->ids, who->org);
	return strlen(org) == (size_t)(slash - rest) && strncmp(org, rest, (size_t)(slash - rest)) == 0;
}

/* The metrics (docs/control-api.md): the broker's, $trustflow/metrics,
 * are for admins; a policy's, $trustflow/metrics/<id>, like its alerts. */
static bool may_read_metrics(const struct tf_policy_set *set, const struct tf_client *who,
		const char *topic)
{
	if (strcmp(topic, TF_PREFIX "metrics") == 0)
		return has_role(who, set->role_admin);
	return starts_with(topic, TF_PREFIX "metrics/")
		&& may_read_alert(set, who, topic + strlen(TF_PREFIX "metrics/"));
}

static void receive_dollar(const struct tf_policy_set *set, const struct tf_client *who,
		const char *topic, struct tf_decision *d)
{
	if (starts_with(topic, TF_PREFIX "keys/") || strcmp(topic, TF_PREFIX "checkpoints") == 0)
		set_decision(d, TF_ALLOW, NULL, TF_RULE_NONE, "public verification material");
	else if (may_read_metrics(set, who, topic))
		set_decision(d, TF_ALLOW, NULL, TF_RULE_NONE,
			"metrics for an administrator or data steward");
	else if (starts_with(topic, TF_PREFIX "alerts/")
			&& may_read_alert(set, who, topic + strlen(TF_PREFIX "alerts/")))
		set_decision(d, TF_ALLOW, NULL, TF_RULE_NONE, "alerts for an administrator or data steward");
	else if (starts_with(topic, TF_PREFIX "policies/")
			&& may_read_policy(set, who, topic + strlen(TF_PREFIX "policies/")))
		set_decision(d, TF_ALLOW, NULL, TF_RULE_NONE,
			"its owner's policy, for an administrator or the owner's data steward");
	else if (starts_with(topic, TF_PREFIX) || strcmp(topic, "$trustflow") == 0)
		set_decision(d, TF_DENY, NULL, TF_RULE_NONE, "not readable by this client");
	else if (starts_with(topic, CONTROL_PREFIX) && is_operator(set, who))
		set_decision(d, TF_ALLOW, NULL, TF_RULE_NONE, "control API caller");
	else if (starts_with(topic, CONTROL_PREFIX))
		set_decision(d, TF_DENY, NULL, TF_RULE_NONE,
			"only trustflow-admin and data-steward clients use the control API");
	else
		set_decision(d, TF_DEFER, NULL, TF_RULE_NONE, "$ topic: left to mosquitto");
}

static void subscribe_dollar(const struct tf_policy_set *set, const struct tf_client *who,
		const char *filter, struct tf_decision *d)
{
	static const char *const public_filters[] = { TF_PREFIX "keys/#", TF_PREFIX "checkpoints" };

	if (starts_with(filter, CONTROL_PREFIX) || strcmp(filter, "$CONTROL/trustflow") == 0) {
		receive_dollar(set, who, CONTROL_PREFIX, d);
		return;
	}
	if (!starts_with(filter, "$trustflow/") && strcmp(filter, "$trustflow") != 0) {
		set_decision(d, TF_DEFER, NULL, TF_RULE_NONE, "$ topic: left to mosquitto");
		return;
	}
	for (size_t i = 0; i < sizeof(public_filters) / sizeof(public_filters[0]); i++) {
		if (tf_filters_overlap(filter, public_filters[i])) {
			set_decision(d, TF_ALLOW, NULL, TF_RULE_NONE, "public verification material");
			return;
		}
	}
	/* Each alert is decided again on delivery; here it is enough that the
	 * filter can reach alerts this client may read. */
	if (is_operator(set, who) && tf_filters_overlap(filter, TF_PREFIX "alerts/+")) {
		set_decision(d, TF_ALLOW, NULL, TF_RULE_NONE, "alerts for an administrator or data steward");
		return;
	}
	/* Likewise for metrics and published policies: each is decided on
	 * delivery. */
	if ((is_operator(set, who) && tf_filters_overlap(filter, TF_PREFIX "metrics/+"))
			|| (has_role(who, set->role_admin)
				&& tf_filters_overlap(filter, TF_PREFIX "metrics"))) {
		set_decision(d, TF_ALLOW, NULL, TF_RULE_NONE,
			"metrics for an administrator or data steward");
		return;
	}
	if (is_operator(set, who) && tf_filters_overlap(filter, TF_PREFIX "policies/+/+")) {
		set_decision(d, TF_ALLOW, NULL, TF_RULE_NONE,
			"policies for an administrator or data steward");
		return;
	}
	set_decision(d, TF_DENY, NULL, TF_RULE_NONE, "not readable by this client");
}

/* --- governed topics (policy-v1) ----------------------------------------- */

/* The policy that governs topic (not a `$` topic), with the governance in
 * *g; or NULL after deciding an ungoverned topic by default_access. */
static const struct tf_policy *governing(const struct tf_policy_set *set, const char *topic,
		struct tf_governance *g, struct tf_decision *d)
{
	*g = tf_govern_lookup(set->govern, topic);
	if (g->kind == TF_GOVERN_NONE) {
		decide_ungoverned(set, d);
		return NULL;
	}
	return &set->policies[g->policy];
}

void tf_decide_publish(const struct tf_policy_set *set, const struct tf_client *who,
		const char *topic, struct tf_decision *d)
{
	struct tf_governance g;
	const struct tf_policy *p;

	if (topic[0] == '$') {
		publish_dollar(set, who, topic, d);
		return;
	}
	if ((p = governing(set, topic, &g, d)) == NULL)
		return;
	if (g.kind == TF_GOVERN_VIEW) {
		set_decision(d, TF_DENY, p, TF_RULE_NONE, "a view: only the broker publishes here");
		d->view = true;
	} else if (who == NULL) {
		set_decision(d, TF_DENY, p, TF_RULE_NONE, "unidentified client");
	} else if (p->has_publishers && !p->publishers.orgs.present && who->org != p->owner) {
		/* Publishers without `orgs` are the owner org's own clients:
		 * otherwise {"roles": ["sensor"]} would let any organization's
		 * sensor publish the owner's data, stamped under its policy.
		 * Other orgs publish only where `orgs` names them (policy-v1). */
		set_decision(d, TF_DENY, p, TF_RULE_NONE,
			"not among the policy's publishers (they name no orgs: "
			"the owner organization's clients only)");
	} else if (p->has_publishers && tf_selector_matches(&p->publishers, who)) {
		set_decision(d, TF_ALLOW, p, TF_RULE_PUBLISHERS, "matches the policy's publishers");
	} else if (p->has_publishers) {
		set_decision(d, TF_DENY, p, TF_RULE_NONE, "not among the policy's publishers");
		d->closest = TF_RULE_PUBLISHERS;
		d->missed = tf_selector_misses(&p->publishers, who);
	} else if (who->org == p->owner) {
		set_decision(d, TF_ALLOW, p, TF_RULE_OWNER_ORG, "a client of the owner organization");
	} else {
		set_decision(d, TF_DENY, p, TF_RULE_NONE,
			"only the owner organization publishes (the policy names no publishers)");
	}
}

/* What consumer rule r lacks to let who receive now: TF_SEL_* and
 * TF_MISS_* bits, 0 when it does. */
static unsigned rule_misses(const struct tf_consumer_rule *r, const struct tf_client *who,
		int64_t now_ms)
{
	unsigned m = tf_selector_misses(&r->who, who);

	if (now_ms < r->not_before)
		m |= TF_MISS_NOT_YET;
	else if (now_ms >= r->not_after)
		m |= TF_MISS_EXPIRED;
	if (r->fields != NULL)
		m |= TF_MISS_VIEW_ONLY;
	return m;
}

/* How far a rule that misses m is from letting its client receive the
 * original: another org's or client's rule is far, one whose roles or
 * purposes the client lacks nearer, one out of its time window nearer
 * still, and one that gives it a view is nearly there. The closest rule
 * is the one to explain a refusal by. */
static unsigned distance(unsigned m)
{
	return ((m & TF_SEL_ORGS) ? 8u : 0u) + ((m & TF_SEL_CLIENTS) ? 8u : 0u)
		+ ((m & TF_SEL_ROLES) ? 4u : 0u) + ((m & TF_SEL_PURPOSES) ? 4u : 0u)
		+ ((m & (TF_MISS_NOT_YET | TF_MISS_EXPIRED)) ? 2u : 0u)
		+ ((m & TF_MISS_VIEW_ONLY) ? 1u : 0u);
}

/* The static reason for a refusal under a rule that missed m: the first
 * condition it failed, in the order of distance(). */
static const char *miss_reason(unsigned m, const struct tf_client *who)
{
	if (m & TF_SEL_ORGS)
		return "its organization is not among the consumer rule's orgs";
	if (m & TF_SEL_CLIENTS)
		return "not among the consumer rule's clients";
	if (m & TF_SEL_ROLES)
		return who->n_roles == 0 ? "it has no role; the consumer rule requires one"
					 : "none of its roles is among the consumer rule's roles";
	if (m & TF_SEL_PURPOSES)
		return who->n_purposes == 0 ? "it has no purpose; the consumer rule requires one"
					    : "none of its purposes is among the consumer rule's purposes";
	if (m & TF_MISS_NOT_YET)
		return "its consumer rule is not in force yet";
	if (m & TF_MISS_EXPIRED)
		return "its consumer rule has expired";
	if (m & TF_MISS_VIEW_ONLY)
		return "its rule gives it only the view with selected fields";
	return "no consumer rule matches";
}

/* Delivery of an original message of p (not a view copy). A refusal
 * names the rule that came closest and what failed under it; finding it
 * takes no more than the scan that found no rule. */
static void receive_original(const struct tf_policy *p, const struct tf_client *who,
		int64_t now_ms, struct tf_decision *d)
{
	unsigned best = 0, best_distance = ~0u;
	int closest = TF_RULE_NONE;

	if (p->owner_receives && who->org == p->owner) {
		set_decision(d, TF_ALLOW, p, TF_RULE_OWNER_ORG, "a client of the owner organization");
		return;
	}
	/* With owner_receives false, the owner's clients too receive only
	 * under a consumer rule. */
	for (uint32_t i = 0; i < p->n_consumers; i++) {
		unsigned m = rule_misses(&p->consumers[i], who, now_ms);

		if (m == 0) {
			set_decision(d, TF_ALLOW, p, (int)i, "matches a consumer rule");
			return;
		}
		if (distance(m) < best_distance) {
			best_distance = distance(m);
			best = m;
			closest = (int)i;
		}
	}
	set_decision(d, TF_DENY, p, TF_RULE_NONE, p->n_consumers == 0
		? "the policy names no consumers" : miss_reason(best, who));
	d->closest = closest;
	d->missed = best;
}

bool tf_decide_receives_under(const struct tf_policy *p, const struct tf_client *who, int rule,
		int64_t at_ms)
{
	const struct tf_consumer_rule *r;
	bool as_owner = p->owner_receives && who->org == p->owner;

	if (rule == TF_RULE_OWNER_ORG)
		return as_owner;
	if (rule < 0 || (uint32_t)rule >= p->n_consumers)
		return false;
	r = &p->consumers[rule];
	if (r->fields == NULL && as_owner)
		return false;
	if (at_ms != TF_TIME_UNKNOWN && (at_ms < r->not_before || at_ms >= r->not_after))
		return false;
	return tf_selector_matches(&r->who, who);
}

/* Delivery of a view copy: only to the clients of the view's rule. */
static void receive_view(const struct tf_policy *p, const struct tf_consumer_rule *r,
		uint32_t rule, const struct tf_client *who, int64_t now_ms, struct tf_decision *d)
{
	/* The view itself is what this rule gives. */
	unsigned m = rule_misses(r, who, now_ms) & ~TF_MISS_VIEW_ONLY;

	if (m == 0) {
		set_decision(d, TF_ALLOW, p, (int)rule, "matches the consumer rule of this view");
	} else {
		set_decision(d, TF_DENY, p, TF_RULE_NONE, miss_reason(m, who));
		d->closest = (int)rule;
		d->missed = m;
	}
	d->view = true;
}

void tf_decide_receive(const struct tf_policy_set *set, const struct tf_client *who,
		const char *topic, int64_t now_ms, int64_t received_ms, struct tf_decision *d)
{
	struct tf_governance g;
	const struct tf_policy *p;

	if (topic[0] == '$') {
		receive_dollar(set, who, topic, d);
		return;
	}
	if ((p = governing(set, topic, &g, d)) == NULL)
		return;
	/* View copies carry a message expiry of the policy's retention, which
	 * mosquitto enforces itself; only originals need the check here. */
	if (who == NULL) {
		set_decision(d, TF_DENY, p, TF_RULE_NONE, "unidentified client");
		d->view = g.kind == TF_GOVERN_VIEW;
	} else if (g.kind == TF_GOVERN_VIEW) {
		receive_view(p, &p->consumers[g.rule], g.rule, who, now_ms, d);
	} else if (p->retention_ms > 0 && received_ms == TF_TIME_UNKNOWN) {
		set_decision(d, TF_DENY, p, TF_RULE_NONE,
			"the policy has a retention and the message's receive time is unknown");
	} else if (p->retention_ms > 0 && now_ms - received_ms > p->retention_ms) {
		set_decision(d, TF_DENY, p, TF_RULE_NONE, "older than the policy's retention");
	} else {
		receive_original(p, who, now_ms, d);
	}
}

/* --- subscriptions ------------------------------------------------------- */

/* Witnesses. A subscription filter can match infinitely many topics; to
 * decide whether one of them is governed by a given entry (or by none),
 * it is enough to try its witnesses: the topics it matches in which every
 * wildcard level is a level that no policy names, and a trailing `#` is 0
 * to TF_TOPIC_MAX_LEVELS + 1 such levels. A filter that matches a witness
 * has wildcards where the witness has those levels, so it matches every
 * topic of the same shape too; the most specific filter of a witness is
 * therefore at least as specific as that of any topic of its shape. So an
 * entry governs some topic of the filter exactly when it governs one of
 * its witnesses, and some topic of the filter is ungoverned exactly when
 * a witness is. */
#define FRESH_LEVEL "\x01"
#define WITNESS_MAX 4096

struct witness {
	char topic[WITNESS_MAX];
	size_t len;
	bool open;    /* ends in `#`: extra levels may follow */
};

static bool is_wild(const char *level, size_t len, char c)
{
	return len == 1 && level[0] == c;
}

static bool append_level(struct witness *w, const char *level, size_t len)
{
	if (is_wild(level, len, '+')) {
		level = FRESH_LEVEL;
		len = 1;
	}
	if (w->len + len + 2 > sizeof(w->topic))
		return false;
	if (w->len > 0)
		w->topic[w->len++] = '/';
	memcpy(w->topic + w->len, level, len);
	w->len += len;
	w->topic[w->len] = '\0';
	return true;
}

/* Appends the levels of rest, a filter's tail, to w. */
static bool append_rest(struct witness *w, const char *rest)
{
	while (rest != NULL) {
		const char *slash = strchr(rest, '/');
		size_t len = slash ? (size_t)(slash - rest) : strlen(rest);

		if (is_wild(rest, len, '#')) {
			w->open = true;
			return true;
		}
		if (!append_level(w, rest, len))
			return false;
		rest = slash ? slash + 1 : NULL;
	}
	return true;
}

/* The topics that filters a and b both match, as a witness (b NULL: every
 * topic of a). False when they share none, or the witness is too long. */
static bool meet(const char *a, const char *b, struct witness *w)
{
	w->len = 0;
	w->open = false;
	w->topic[0] = '\0';
	if (b == NULL)
		return append_rest(w, a);
	while (a != NULL && b != NULL) {
		const char *sa = strchr(a, '/'), *sb = strchr(b, '/');
		size_t la = sa ? (size_t)(sa - a) : strlen(a), lb = sb ? (size_t)(sb - b) : strlen(b);

		if (is_wild(a, la, '#'))
			return append_rest(w, b);
		if (is_wild(b, lb, '#'))
			return append_rest(w, a);
		if (is_wild(a, la, '+') ? !append_level(w, b, lb)
				: (!is_wild(b, lb, '+') && (la != lb || memcmp(a, b, la) != 0))
					|| !append_level(w, a, la))
			return false;
		a = sa ? sa + 1 : NULL;
		b = sb ? sb + 1 : NULL;
	}
	/* When one ended, the other may only go on with `#`, matching no
	 * level: the one that ended matches nothing longer. */
	return (a == NULL && b == NULL) || strcmp(a != NULL ? a : b, "#") == 0;
}

/* Calls found(ctx, governance) for each witness of w until it returns
 * true; returns whether one did. */
static bool each_witness(const struct tf_policy_set *set, struct witness *w,
		bool (*found)(const void *ctx, struct tf_governance g), const void *ctx)
{
	size_t base = w->len;
	bool hit = false;

	for (int extra = 0; !hit && extra <= (w->open ? TF_TOPIC_MAX_LEVELS + 1 : 0); extra++) {
		if (extra > 0 && !append_level(w, FRESH_LEVEL, 1))
			break;
		/* Topics are never empty (`#` alone starts with one level). */
		if (w->len > 0)
			hit = found(ctx, tf_govern_lookup(set->govern, w->topic));
	}
	w->len = base;
	w->topic[base] = '\0';
	return hit;
}

/* Whether the data ref gives access to can be on a topic of filter. */
struct ref_target {
	struct tf_rule_ref ref;
	bool view;
};

static bool is_target(const void *ctx, struct tf_governance g)
{
	const struct ref_target *t = ctx;

	if (g.kind == TF_GOVERN_NONE || g.policy != t->ref.policy)
		return false;
	return t->view ? g.kind == TF_GOVERN_VIEW && g.rule == t->ref.rule
		       : g.kind == TF_GOVERN_POLICY;
}

static bool ref_reaches(const struct tf_policy_set *set, const struct tf_policy *p,
		const struct tf_rule_ref ref, const char *filter)
{
	struct ref_target target = { ref, ref.rule != TF_RULE_OWNER
		&& p->consumers[ref.rule].view != NULL };
	struct witness w;

	if (target.view) {
		char view_filter[TF_TOPIC_MAX_LEN + 3];

		snprintf(view_filter, sizeof(view_filter), "%s/#", p->consumers[ref.rule].view);
		return meet(filter, view_filter, &w) && each_witness(set, &w, is_target, &target);
	}
	for (uint32_t t = 0; t < p->n_topics; t++)
		if (meet(filter, p->topics[t], &w) && each_witness(set, &w, is_target, &target))
			return true;
	return false;
}

static bool is_ungoverned(const void *ctx, struct tf_governance g)
{
	(void)ctx;
	return g.kind == TF_GOVERN_NONE;
}

/* Whether some topic filter matches is governed by no policy. A filter
 * too long to build witnesses for is taken to reach one: the answer only
 * lets a subscription in, and every delivery is decided on its own. */
static bool reaches_ungoverned(const struct tf_policy_set *set, const char *filter)
{
	struct witness w;

	return !meet(filter, NULL, &w) || each_witness(set, &w, is_ungoverned, NULL);
}

/* Looks through the refs under which who may receive for one that can
 * deliver on filter. */
static bool refs_allow(const struct tf_policy_set *set, const struct tf_client *who,
		const struct tf_rule_ref *refs, uint32_t n, const char *filter, int64_t now_ms,
		struct tf_decision *d)
{
	for (uint32_t i = 0; i < n; i++) {
		const struct tf_policy *p = &set->policies[refs[i].policy];
		const struct tf_consumer_rule *r;

		if (refs[i].rule == TF_RULE_OWNER) {
			if (!p->owner_receives || !ref_reaches(set, p, refs[i], filter))
				continue;
			set_decision(d, TF_ALLOW, p, TF_RULE_OWNER_ORG, "can receive as the owner organization");
			return true;
		}
		r = &p->consumers[refs[i].rule];
		/* A rule that is not in force yet may be by the time data flows;
		 * only an expired one can never deliver again. */
		if (!tf_selector_matches(&r->who, who) || now_ms >= r->not_after
				|| !ref_reaches(set, p, refs[i], filter))
			continue;
		set_decision(d, TF_ALLOW, p, (int)refs[i].rule, "can receive under a consumer rule");
		d->view = r->view != NULL;
		return true;
	}
	return false;
}

static bool receivable(const struct tf_policy_set *set, const struct tf_client *who,
		const char *filter, int64_t now_ms, struct tf_decision *d)
{
	uint32_t org = who->org, idx = who->index;
	if (refs_allow(set, who, set->org_refs + set->org_off[org],
			set->org_off[org + 1] - set->org_off[org], filter, now_ms, d))
		return true;
	if (refs_allow(set, who, set->client_refs + set->client_off[idx],
			set->client_off[idx + 1] - set->client_off[idx], filter, now_ms, d))
		return true;
	for (int list = 0; list < 2; list++) {
		const uint32_t *syms = list == 0 ? who->roles : who->purposes;
		uint32_t n = list == 0 ? who->n_roles : who->n_purposes;

		for (uint32_t i = 0; i < n; i++)
			if (refs_allow(set, who, set->symbol_refs + set->symbol_off[syms[i]],
					set->symbol_off[syms[i] + 1] - set->symbol_off[syms[i]], filter,
					now_ms, d))
				return true;
	}
	return refs_allow(set, who, set->everyone_refs, set->n_everyone, filter, now_ms, d);
}

void tf_decide_subscribe(const struct tf_policy_set *set, const struct tf_client *who,
		const char *filter, int64_t now_ms, struct tf_decision *d)
{
	if (strncmp(filter, "$share/", 7) == 0) {
		const char *slash = strchr(filter + 7, '/');

		if (slash == NULL) {
			set_decision(d, TF_DENY, NULL, TF_RULE_NONE, "malformed shared subscription");
			return;
		}
		filter = slash + 1;
	}
	if (filter[0] == '$') {
		subscribe_dollar(set, who, filter, d);
		return;
	}
	if (who != NULL && receivable(set, who, filter, now_ms, d))
		return;
	if (set->default_allow && reaches_ungoverned(set, filter)) {
		set_decision(d, TF_ALLOW, NULL, TF_RULE_NONE,
			"can match topics no policy governs; default_access allow");
		return;
	}
	set_decision(d, TF_DENY, NULL, TF_RULE_NONE,
		who == NULL ? "unidentified client: no governed data is readable"
			    : "every topic the filter can match is denied to this client");
}

const char *tf_verdict_name(enum tf_verdict v)
{
	switch (v) {
	case TF_ALLOW: return "allow";
	case TF_DEFER: return "defer";
	case TF_DENY:  return "deny";
	}
	return "deny";
}

/* --- explaining ----------------------------------------------------------- */

/* A bounded text being written: once something does not fit, it and
 * everything after are left out, so the text is a prefix of the whole,
 * cut between UTF-8 characters (a view or a field name may hold any). */
struct text {
	char *buf;
	size_t size, len;
	bool full;
};

/* Drops a character that a cut left incomplete at the end of t. */
static void cut_at_character(struct text *t)
{
	size_t lead = t->len, need;
	unsigned char c;

	while (lead > 0 && ((unsigned char)t->buf[lead - 1] & 0xc0) == 0x80)
		lead--;
	if (lead == 0)
		return;
	c = (unsigned char)t->buf[--lead];
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
	if (t->len - lead < need) {
		t->len = lead;
		t->buf[t->len] = '\0';
	}
}

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, t->size - t->len, fmt, ap);
	va_end(ap);
	if (n >= 0 && t->len + (size_t)n < t->size) {
		t->len += (size_t)n;
	} else {
		t->full = true;
		t->len = n < 0 ? t->len : t->size - 1;
		t->buf[t->len] = '\0';
		cut_at_character(t);
	}
}

#define SELECTOR_MISSES (TF_SEL_ORGS | TF_SEL_CLIENTS | TF_SEL_ROLES | TF_SEL_PURPOSES)

/* Names listed before a list is cut short. */
#define LIST_MAX 8

enum name_kind { NAMES_ORGS, NAMES_CLIENTS, NAMES_SYMBOLS };

static const char *name_of(const struct tf_identities *ids, enum name_kind kind, uint32_t item)
{
	const struct tf_client *c;

	switch (kind) {
	case NAMES_ORGS:
		return tf_identities_org_id(ids, item);
	case NAMES_CLIENTS:
		c = tf_identities_client_at(ids, item);
		return c != NULL ? c->username : "";
	case NAMES_SYMBOLS:
		return tf_identities_symbol_name(ids, item);
	}
	return "";
}

/* "(a, b, c)"; more than LIST_MAX names end in "... N in all". Names that
 * no identity carries were left out when the policy loaded (tfctl policy
 * check --identities warns of them). */
static void put_names(struct text *t, const struct tf_identities *ids, enum name_kind kind,
		const uint32_t *items, uint32_t n)
{
	put(t, "(");
	for (uint32_t i = 0; i < n && i < LIST_MAX; i++)
		put(t, "%s%s", i > 0 ? ", " : "", name_of(ids, kind, items[i]));
	if (n > LIST_MAX)
		put(t, ", ... %u in all", n);
	put(t, n == 0 ? "none)" : ")");
}

static void put_time(struct text *t, int64_t ms)
{
	char when[25];

	tf_rfc3339_format_short(ms, when);
	put(t, "%s", when);
}

/* One label key (roles or purposes) that the client failed: which of its
 * own it has, and which the rule (or the publishers) wanted. */
static void put_labels(struct text *t, const struct tf_identities *ids, const char *kind,
		const char *kinds, const uint32_t *own, uint32_t n_own,
		const struct tf_selector_key *key, bool publishers)
{
	const char *whose = publishers ? "the publishers'" : "the rule's";

	if (n_own == 0) {
		put(t, "the client has no %s; %s requires one of ", kind,
			publishers ? "the publishers' selector" : "the rule");
	} else if (n_own == 1) {
		put(t, "%s %s not among %s %s ", kind, tf_identities_symbol_name(ids, own[0]), whose,
			kinds);
	} else {
		put(t, "%s ", kinds);
		put_names(t, ids, NAMES_SYMBOLS, own, n_own);
		put(t, " not among %s %s ", whose, kinds);
	}
	put_names(t, ids, NAMES_SYMBOLS, key->items, key->n);
}

void tf_decision_explain(const struct tf_policy_set *set, const struct tf_client *who,
		const struct tf_decision *d, char *buf, size_t size)
{
	const struct tf_identities *ids = set->ids;
	const struct tf_consumer_rule *r = NULL;
	const struct tf_selector *sel;
	struct text t = { buf, size, 0, false };
	const char *whose;
	const char *sep = "";

	buf[0] = '\0';
	if (d->missed == 0 || d->policy == NULL || who == NULL || ids == NULL
			|| (d->closest < 0 && d->closest != TF_RULE_PUBLISHERS)
			|| (d->closest >= 0 && (uint32_t)d->closest >= d->policy->n_consumers)) {
		put(&t, "%s", d->reason);
		return;
	}
	if (d->closest == TF_RULE_PUBLISHERS) {
		sel = &d->policy->publishers;
		whose = "the publishers'";
		put(&t, "publishers: ");
	} else {
		r = &d->policy->consumers[d->closest];
		sel = &r->who;
		whose = "the rule's";
		put(&t, "consumer rule %d: ", d->closest);
	}
	if (d->missed & TF_SEL_ORGS) {
		put(&t, "org %s not among %s orgs ", tf_identities_org_id(ids, who->org), whose);
		put_names(&t, ids, NAMES_ORGS, sel->orgs.items, sel->orgs.n);
		sep = "; ";
	}
	if (d->missed & TF_SEL_CLIENTS) {
		put(&t, "%sclient %s not among %s clients ", sep, who->username, whose);
		put_names(&t, ids, NAMES_CLIENTS, sel->clients.items, sel->clients.n);
		sep = "; ";
	}
	if (d->missed & TF_SEL_ROLES) {
		put(&t, "%s", sep);
		put_labels(&t, ids, "role", "roles", who->roles, who->n_roles, &sel->roles,
			r == NULL);
		sep = "; ";
	}
	if (d->missed & TF_SEL_PURPOSES) {
		put(&t, "%s", sep);
		put_labels(&t, ids, "purpose", "purposes", who->purposes, who->n_purposes,
			&sel->purposes, r == NULL);
		sep = "; ";
	}
	if (r != NULL && (d->missed & TF_MISS_NOT_YET)) {
		put(&t, "%snot in force until ", sep);
		put_time(&t, r->not_before);
		sep = "; ";
	}
	if (r != NULL && (d->missed & TF_MISS_EXPIRED)) {
		put(&t, "%sexpired at ", sep);
		put_time(&t, r->not_after);
		sep = "; ";
	}
	/* That a rule for others gives a view is beside the point. */
	if (r != NULL && (d->missed & TF_MISS_VIEW_ONLY) && r->view != NULL
			&& (d->missed & SELECTOR_MISSES) == 0) {
		put(&t, "%sgives only the view under %s, with the fields (", sep, r->view);
		for (uint32_t i = 0; i < r->n_fields && i < LIST_MAX; i++)
			put(&t, "%s%s", i > 0 ? ", " : "", r->fields[i]);
		if (r->n_fields > LIST_MAX)
			put(&t, ", ... %u in all", r->n_fields);
		put(&t, ")");
	}
}

cJSON *tf_decision_json(const struct tf_policy_set *set, const struct tf_client *who,
		const struct tf_decision *d)
{
	char reason[2048];
	cJSON *out = cJSON_CreateObject();
	bool ok = out != NULL
		&& cJSON_AddStringToObject(out, "decision", d->verdict == TF_ALLOW ? "allow" : "deny");

	if (ok && d->policy != NULL)
		ok = cJSON_AddStringToObject(out, "policy", d->policy->label) != NULL;
	else if (ok)
		ok = cJSON_AddNullToObject(out, "policy") != NULL;
	if (ok && d->rule >= 0)
		ok = cJSON_AddNumberToObject(out, "rule", d->rule) != NULL;
	else if (ok && d->rule == TF_RULE_OWNER_ORG)
		ok = cJSON_AddStringToObject(out, "rule", "owner") != NULL;
	else if (ok && d->rule == TF_RULE_PUBLISHERS)
		ok = cJSON_AddStringToObject(out, "rule", "publishers") != NULL;
	else if (ok)
		ok = cJSON_AddNullToObject(out, "rule") != NULL;
	if (ok && d->view)
		ok = cJSON_AddTrueToObject(out, "view") != NULL;
	if (ok) {
		tf_decision_explain(set, who, d, reason, sizeof(reason));
		ok = cJSON_AddStringToObject(out, "reason", reason) != NULL;
	}
	if (!ok) {
		cJSON_Delete(out);
		return NULL;
	}
	return out;
}
