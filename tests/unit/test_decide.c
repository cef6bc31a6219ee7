/* Unit tests for policy/decide.c: the decisions of policy-v1.md
 * ("Decisions", "Selectors and consumer rules", "Which policy governs a
 * topic") and of operations-v1.md ("Control API", "Alerts", "Who may use
 * the $trustflow/ topics").
 *
 * Each test builds a policy set in memory from JSON literals (identities
 * and policies parsed with tf_json_parse, loaded into one arena, then
 * tf_policy_set_assemble) and checks, for every decision, the verdict, the
 * governing policy's label, the rule that decided and that a reason is
 * given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/util/arena.h"
#include "broker/util/error.h"
#include "policy/decide.h"
#include "policy/identities.h"
#include "policy/jsonfile.h"
#include "policy/policy.h"
#include "policy/set.h"

/* 2026-06-01T00:00:00Z: the time of every decision unless said. */
#define NOW           1780272000000LL
/* 2027-03-31T00:00:00Z: not_after of the example's first consumer rule. */
#define WATER_EXPIRY  1806451200000LL
/* 2026-07-01T00:00:00Z and 2026-08-01T00:00:00Z: the timed rule below. */
#define TIMED_FROM    1782864000000LL
#define TIMED_UNTIL   1785542400000LL
#define DAY_MS        86400000LL

static const char identities_text[] =
	"{\n"
	"  \"trustflow_identities\": 1,\n"
	"  \"organizations\": {\n"
	"    \"city-waterworks\": { \"name\": \"City Waterworks Bureau\" },\n"
	"    \"maint-co\":        { \"name\": \"Maintenance Co.\" },\n"
	"    \"research-lab\":    { \"name\": \"University Research Lab\" },\n"
	"    \"other-co\":        {}\n"
	"  },\n"
	"  \"clients\": {\n"
	"    \"ww-sensor-01\":    { \"org\": \"city-waterworks\", \"roles\": [\"sensor\"] },\n"
	"    \"other-sensor\":    { \"org\": \"other-co\", \"roles\": [\"sensor\"] },\n"
	"    \"ww-viewer\":       { \"org\": \"city-waterworks\", \"roles\": [\"viewer\"] },\n"
	"    \"ops-admin\":       { \"org\": \"city-waterworks\", \"roles\": [\"trustflow-admin\"] },\n"
	"    \"ww-steward\":      { \"org\": \"city-waterworks\", \"roles\": [\"data-steward\"] },\n"
	"    \"other-steward\":   { \"org\": \"other-co\", \"roles\": [\"data-steward\"] },\n"
	"    \"maint-app\":       { \"org\": \"maint-co\", \"roles\": [\"operator\"], \"purposes\": [\"maintenance\"] },\n"
	"    \"maint-nopurpose\": { \"org\": \"maint-co\", \"roles\": [\"operator\"] },\n"
	"    \"maint-billing\":   { \"org\": \"maint-co\", \"roles\": [\"operator\"], \"purposes\": [\"billing\"] },\n"
	"    \"lab-bot\":         { \"org\": \"research-lab\", \"roles\": [\"analyst\"], \"purposes\": [\"research\"] },\n"
	"    \"other-app\":       { \"org\": \"other-co\", \"roles\": [\"operator\"], \"purposes\": [\"maintenance\"] },\n"
	"    \"vip\":             { \"org\": \"other-co\" }\n"
	"  }\n"
	"}\n";

static const char *const all_clients[] = {
	"ww-sensor-01", "other-sensor", "ww-viewer", "ops-admin", "ww-steward", "other-steward",
	"maint-app",
	"maint-nopurpose", "maint-billing", "lab-bot", "other-app", "vip",
};
#define N_CLIENTS (sizeof(all_clients) / sizeof(all_clients[0]))

/* The example of policy-v1.md. */
static const char water[] =
	"{\n"
	"  \"trustflow_policy\": 1,\n"
	"  \"id\": \"water-telemetry\",\n"
	"  \"version\": 3,\n"
	"  \"owner\": \"city-waterworks\",\n"
	"  \"topics\": [\"city/water/+/telemetry\"],\n"
	"  \"publishers\": { \"roles\": [\"sensor\"] },\n"
	"  \"consumers\": [\n"
	"    { \"orgs\": [\"maint-co\"], \"purposes\": [\"maintenance\"],\n"
	"      \"not_after\": \"2027-03-31T00:00:00Z\" },\n"
	"    { \"orgs\": [\"research-lab\"], \"fields\": [\"flow\"],\n"
	"      \"view\": \"views/research-lab\" }\n"
	"  ],\n"
	"  \"retention_seconds\": 86400,\n"
	"  \"forwarding\": \"deny\",\n"
	"  \"on_violation\": { \"action\": \"quarantine\" }\n"
	"}\n";
#define WATER "water-telemetry@3"
#define WATER_TOPIC "city/water/d1/telemetry"
#define WATER_VIEW "views/research-lab/city/water/d1/telemetry"

/* No publishers, no consumers, no retention. */
static const char maint[] =
	"{\"trustflow_policy\": 1, \"id\": \"maint-data\", \"version\": 1, \"owner\": \"maint-co\","
	" \"topics\": [\"maint/#\"]}";
#define MAINT "maint-data@1"

/* Broader than water, of the same owner: governs the rest of city/. */
static const char city_all[] =
	"{\"trustflow_policy\": 1, \"id\": \"city-all\", \"version\": 2,"
	" \"owner\": \"city-waterworks\", \"topics\": [\"city/#\"],"
	" \"consumers\": [{\"orgs\": [\"research-lab\"]}]}";
#define CITY_ALL "city-all@2"

/* More specific than water for one district, of the same owner. */
static const char district9[] =
	"{\"trustflow_policy\": 1, \"id\": \"d9\", \"version\": 1, \"owner\": \"city-waterworks\","
	" \"topics\": [\"city/water/d9/telemetry\"], \"consumers\": [{\"orgs\": [\"other-co\"]}]}";
#define D9 "d9@1"

/* Another owner's data, beside the waterworks'. */
static const char other_data[] =
	"{\"trustflow_policy\": 1, \"id\": \"other-data\", \"version\": 1, \"owner\": \"other-co\","
	" \"topics\": [\"other/#\"]}";

static const char timed[] =
	"{\"trustflow_policy\": 1, \"id\": \"timed\", \"version\": 1, \"owner\": \"city-waterworks\","
	" \"topics\": [\"timed/+\"], \"consumers\": [{\"orgs\": [\"maint-co\"],"
	" \"not_before\": \"2026-07-01T00:00:00Z\", \"not_after\": \"2026-08-01T00:00:00Z\"}]}";
#define TIMED "timed@1"

/* The same window as timed, written as dates: July 2026, in UTC. */
static const char dated[] =
	"{\"trustflow_policy\": 1, \"id\": \"dated\", \"version\": 1, \"owner\": \"city-waterworks\","
	" \"topics\": [\"dated/+\"], \"consumers\": [{\"orgs\": [\"maint-co\"],"
	" \"not_before\": \"2026-07-01\", \"not_after\": \"2026-07-31\"}]}";
#define DATED "dated@1"

/* One leap day only. */
static const char leap_day[] =
	"{\"trustflow_policy\": 1, \"id\": \"leap-day\", \"version\": 1,"
	" \"owner\": \"city-waterworks\", \"topics\": [\"leap/+\"], \"consumers\":"
	" [{\"orgs\": [\"maint-co\"], \"not_before\": \"2024-02-29\", \"not_after\": \"2024-02-29\"}]}";
#define LEAP_DAY "leap-day@1"
#define T_2024_02_29  1709164800000LL

/* One policy per selector key, all owned by city-waterworks. */
static const char sel_clients[] =
	"{\"trustflow_policy\": 1, \"id\": \"sel-clients\", \"version\": 1,"
	" \"owner\": \"city-waterworks\", \"topics\": [\"sel/clients\"],"
	" \"consumers\": [{\"clients\": [\"vip\", \"ghost\"]}]}";
static const char sel_orgs[] =
	"{\"trustflow_policy\": 1, \"id\": \"sel-orgs\", \"version\": 1,"
	" \"owner\": \"city-waterworks\", \"topics\": [\"sel/orgs\"],"
	" \"consumers\": [{\"orgs\": [\"research-lab\", \"other-co\"]}]}";
static const char sel_roles[] =
	"{\"trustflow_policy\": 1, \"id\": \"sel-roles\", \"version\": 1,"
	" \"owner\": \"city-waterworks\", \"topics\": [\"sel/roles\"],"
	" \"consumers\": [{\"roles\": [\"auditor\", \"analyst\"]}]}";
static const char sel_purposes[] =
	"{\"trustflow_policy\": 1, \"id\": \"sel-purposes\", \"version\": 1,"
	" \"owner\": \"city-waterworks\", \"topics\": [\"sel/purposes\"],"
	" \"consumers\": [{\"purposes\": [\"maintenance\"]}]}";
static const char sel_all[] =
	"{\"trustflow_policy\": 1, \"id\": \"sel-all\", \"version\": 1,"
	" \"owner\": \"city-waterworks\", \"topics\": [\"sel/all\"],"
	" \"consumers\": [{\"orgs\": [\"maint-co\"], \"roles\": [\"operator\"],"
	" \"purposes\": [\"maintenance\", \"research\"]}]}";
static const char sel_empty[] =
	"{\"trustflow_policy\": 1, \"id\": \"sel-empty\", \"version\": 1,"
	" \"owner\": \"city-waterworks\", \"topics\": [\"sel/empty\"], \"consumers\": [{}]}";
static const char sel_second[] =
	"{\"trustflow_policy\": 1, \"id\": \"sel-second\", \"version\": 1,"
	" \"owner\": \"city-waterworks\", \"topics\": [\"sel/second\"],"
	" \"consumers\": [{\"clients\": [\"vip\"]}, {\"orgs\": [\"maint-co\"]}]}";
/* publishers {}: every identified client. */
static const char open_pub[] =
	"{\"trustflow_policy\": 1, \"id\": \"open-pub\", \"version\": 1,"
	" \"owner\": \"city-waterworks\", \"topics\": [\"open/+\"], \"publishers\": {}}";
/* Governs everything. */
static const char everything[] =
	"{\"trustflow_policy\": 1, \"id\": \"everything\", \"version\": 1,"
	" \"owner\": \"city-waterworks\", \"topics\": [\"#\"]}";

/* ---- building sets ---- */

static struct tf_identities *parse_identities(const char *text)
{
	struct tf_identities *ids = NULL;
	struct tf_err err;
	struct tf_jctx c;
	cJSON *root = NULL;

	if (tf_json_parse(text, strlen(text), "identities.json", &root, &err) != TF_OK)
		fail_msg("identities: %s", err.msg);
	tf_jctx_init(&c, "identities.json", &err);
	if (tf_identities_from_json(&c, root, &ids) != TF_OK)
		fail_msg("identities: %s", err.msg);
	cJSON_Delete(root);
	return ids;
}

/* Assembles a set from ids and n policy texts. */
static struct tf_policy_set *build_with(struct tf_identities *ids, const char *const *texts,
		size_t n, bool default_allow)
{
	struct tf_policy *policies = calloc(n ? n : 1, sizeof(*policies));
	struct tf_arena arena = { 0 };
	struct tf_policy_set *set = NULL;
	struct tf_err err;

	assert_non_null(policies);
	for (size_t i = 0; i < n; i++) {
		char file[32];
		struct tf_jctx c;
		cJSON *root = NULL;

		snprintf(file, sizeof(file), "mem/%zu.json", i);
		if (tf_json_parse(texts[i], strlen(texts[i]), file, &root, &err) != TF_OK)
			fail_msg("%s", err.msg);
		tf_jctx_init(&c, file, &err);
		if (tf_policy_from_json(&c, root, ids, &arena, &policies[i]) != TF_OK)
			fail_msg("%s", err.msg);
		cJSON_Delete(root);
	}
	if (tf_policy_set_assemble(ids, policies, (uint32_t)n, &arena, &set, &err) != TF_OK)
		fail_msg("assemble: %s", err.msg);
	set->default_allow = default_allow;
	return set;
}

#define BUILD(allow, ...) \
	build_with(parse_identities(identities_text), (const char *const[]){ __VA_ARGS__ }, \
		sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *), allow)

/* ---- deciding ---- */

/* NULL username: unidentified. */
static const struct tf_client *who(const struct tf_policy_set *set, const char *user)
{
	const struct tf_client *c;

	if (user == NULL)
		return NULL;
	c = tf_identities_client(set->ids, user);
	if (c == NULL)
		fail_msg("no client %s in the identities", user);
	return c;
}

static struct tf_decision pub(const struct tf_policy_set *set, const char *user,
		const char *topic)
{
	struct tf_decision d;

	memset(&d, 0xA5, sizeof(d));
	tf_decide_publish(set, who(set, user), topic, &d);
	return d;
}

static struct tf_decision recv_at(const struct tf_policy_set *set, const char *user,
		const char *topic, int64_t now, int64_t received)
{
	struct tf_decision d;

	memset(&d, 0xA5, sizeof(d));
	tf_decide_receive(set, who(set, user), topic, now, received, &d);
	return d;
}

static struct tf_decision recv(const struct tf_policy_set *set, const char *user,
		const char *topic)
{
	return recv_at(set, user, topic, NOW, NOW - 1000);
}

static struct tf_decision sub_at(const struct tf_policy_set *set, const char *user,
		const char *filter, int64_t now)
{
	struct tf_decision d;

	memset(&d, 0xA5, sizeof(d));
	tf_decide_subscribe(set, who(set, user), filter, now, &d);
	return d;
}

static struct tf_decision sub(const struct tf_policy_set *set, const char *user,
		const char *filter)
{
	return sub_at(set, user, filter, NOW);
}

static const char *rule_name(int rule, char *buf, size_t len)
{
	switch (rule) {
	case TF_RULE_NONE:       return "NONE";
	case TF_RULE_OWNER_ORG:  return "OWNER_ORG";
	case TF_RULE_PUBLISHERS: return "PUBLISHERS";
	default:
		snprintf(buf, len, "%d", rule);
		return buf;
	}
}

/* label NULL: no governing policy. */
static void expect_decision(const struct tf_decision *d, enum tf_verdict verdict,
		const char *label, int rule, const char *call, int line)
{
	char b1[16], b2[16];
	const char *got_label = d->policy != NULL ? d->policy->label : "(none)";

	if (d->verdict != verdict)
		fail_msg("line %d: %s: verdict %s, expected %s (reason: %s)", line, call,
			tf_verdict_name(d->verdict), tf_verdict_name(verdict), d->reason);
	if (label == NULL ? d->policy != NULL
			  : d->policy == NULL || strcmp(d->policy->label, label) != 0)
		fail_msg("line %d: %s: policy %s, expected %s", line, call, got_label,
			label != NULL ? label : "(none)");
	if (d->rule != rule)
		fail_msg("line %d: %s: rule %s, expected %s (reason: %s)", line, call,
			rule_name(d->rule, b1, sizeof(b1)), rule_name(rule, b2, sizeof(b2)), d->reason);
	if (d->reason == NULL || d->reason[0] == '\0')
		fail_msg("line %d: %s: no reason", line, call);
}

#define EXPECT(call, verdict, label, rule) do { \
		struct tf_decision d_ = (call); \
		expect_decision(&d_, verdict, label, rule, #call, __LINE__); \
	} while (0)

/* Also checks whether the decision is about a view. */
#define EXPECT_VIEW(call, verdict, label, rule, is_view) do { \
		struct tf_decision d_ = (call); \
		expect_decision(&d_, verdict, label, rule, #call, __LINE__); \
		if (d_.view != (is_view)) \
			fail_msg("line %d: %s: view %d, expected %d", __LINE__, #call, d_.view, \
				is_view); \
	} while (0)

#define ALLOW TF_ALLOW
#define DENY  TF_DENY
#define DEFER TF_DEFER
#define NONE  TF_RULE_NONE
#define OWNER TF_RULE_OWNER_ORG
#define PUBS  TF_RULE_PUBLISHERS

/* ---- explanations ---- */

/* Decides d's explanation and checks its closest rule, what it missed,
 * the static reason the trace records and the words explain gives. */
static void expect_why(const struct tf_policy_set *set, const char *user,
		const struct tf_decision *d, int closest, unsigned missed, const char *reason,
		const char *explained, int line)
{
	char text[2048];
	cJSON *json;
	const cJSON *r;

	if (d->closest != closest || d->missed != missed)
		fail_msg("line %d: closest %d missed %#x, expected %d %#x (reason: %s)", line,
			d->closest, d->missed, closest, missed, d->reason);
	if (strcmp(d->reason, reason) != 0)
		fail_msg("line %d: reason \"%s\", expected \"%s\"", line, d->reason, reason);
	tf_decision_explain(set, who(set, user), d, text, sizeof(text));
	if (strcmp(text, explained) != 0)
		fail_msg("line %d: explained \"%s\", expected \"%s\"", line, text, explained);
	/* explain's JSON gives the same words. */
	json = tf_decision_json(set, who(set, user), d);
	assert_non_null(json);
	r = cJSON_GetObjectItemCaseSensitive(json, "reason");
	assert_true(cJSON_IsString(r));
	assert_string_equal(r->valuestring, explained);
	cJSON_Delete(json);
}

#define EXPECT_WHY(set, call, user, closest, missed, reason, explained) do { \
		struct tf_decision d_ = (call); \
		assert_int_equal(d_.verdict, TF_DENY); \
		expect_why(set, user, &d_, closest, missed, reason, explained, __LINE__); \
	} while (0)

#define PURPOSES TF_SEL_PURPOSES
#define ROLES    TF_SEL_ROLES
#define ORGS     TF_SEL_ORGS
#define CLIENTS  TF_SEL_CLIENTS

/* ==== publish ==== */

static void publish_needs_a_publishers_match(void **state)
{
	struct tf_policy_set *set = BUILD(false, water);

	(void)state;
	EXPECT_VIEW(pub(set, "ww-sensor-01", WATER_TOPIC), ALLOW, WATER, PUBS, false);
	/* The owner org is not enough when publishers are named. */
	EXPECT(pub(set, "ww-viewer", WATER_TOPIC), DENY, WATER, NONE);
	EXPECT(pub(set, "ops-admin", WATER_TOPIC), DENY, WATER, NONE);
	EXPECT(pub(set, "maint-app", WATER_TOPIC), DENY, WATER, NONE);
	EXPECT(pub(set, "lab-bot", WATER_TOPIC), DENY, WATER, NONE);
	tf_policy_set_free(set);

	/* publishers {}: any identified client of the owner org (no `orgs`). */
	set = BUILD(false, open_pub);
	EXPECT(pub(set, "ww-viewer", "open/x"), ALLOW, "open-pub@1", PUBS);
	EXPECT(pub(set, "ops-admin", "open/x"), ALLOW, "open-pub@1", PUBS);
	EXPECT(pub(set, "other-app", "open/x"), DENY, "open-pub@1", NONE);
	EXPECT(pub(set, NULL, "open/x"), DENY, "open-pub@1", NONE);
	tf_policy_set_free(set);
}

/* In publishers, a selector without `orgs` is about the owner org's
 * clients only: another org's client with the role is no publisher. */
static void publishers_of_another_org_need_orgs(void **state)
{
	static const char named[] =
		"{\"trustflow_policy\": 1, \"id\": \"named\", \"version\": 1,"
		" \"owner\": \"city-waterworks\", \"topics\": [\"named/+\"],"
		" \"publishers\": {\"orgs\": [\"city-waterworks\", \"other-co\"],"
		" \"roles\": [\"sensor\"]}}";
	static const char by_name[] =
		"{\"trustflow_policy\": 1, \"id\": \"by-name\", \"version\": 1,"
		" \"owner\": \"city-waterworks\", \"topics\": [\"by-name/+\"],"
		" \"publishers\": {\"clients\": [\"other-sensor\", \"ww-sensor-01\"]}}";
	struct tf_policy_set *set = BUILD(false, water, named, by_name);

	(void)state;
	/* water: publishers {"roles": ["sensor"]}. */
	EXPECT(pub(set, "ww-sensor-01", WATER_TOPIC), ALLOW, WATER, PUBS);
	EXPECT(pub(set, "other-sensor", WATER_TOPIC), DENY, WATER, NONE);
	/* Naming the other org in `orgs` lets its sensors in, and only them. */
	EXPECT(pub(set, "other-sensor", "named/x"), ALLOW, "named@1", PUBS);
	EXPECT(pub(set, "ww-sensor-01", "named/x"), ALLOW, "named@1", PUBS);
	EXPECT(pub(set, "other-app", "named/x"), DENY, "named@1", NONE);
	EXPECT(pub(set, "maint-app", "named/x"), DENY, "named@1", NONE);
	/* Naming the client is not naming its org. */
	EXPECT(pub(set, "ww-sensor-01", "by-name/x"), ALLOW, "by-name@1", PUBS);
	EXPECT(pub(set, "other-sensor", "by-name/x"), DENY, "by-name@1", NONE);
	tf_policy_set_free(set);
}

static void publish_without_publishers_is_for_the_owner_org(void **state)
{
	struct tf_policy_set *set = BUILD(false, maint);

	(void)state;
	EXPECT(pub(set, "maint-app", "maint/a/b"), ALLOW, MAINT, OWNER);
	EXPECT(pub(set, "maint-nopurpose", "maint"), ALLOW, MAINT, OWNER);
	EXPECT(pub(set, "ww-sensor-01", "maint/a"), DENY, MAINT, NONE);
	/* Administrators have no say over data. */
	EXPECT(pub(set, "ops-admin", "maint/a"), DENY, MAINT, NONE);
	EXPECT(pub(set, "other-app", "maint/a"), DENY, MAINT, NONE);
	tf_policy_set_free(set);
}

static void publish_by_unidentified_is_denied(void **state)
{
	struct tf_policy_set *set = BUILD(true, water, maint);

	(void)state;
	EXPECT(pub(set, NULL, WATER_TOPIC), DENY, WATER, NONE);
	EXPECT(pub(set, NULL, "maint/x"), DENY, MAINT, NONE);
	/* A name absent from the identities is unidentified. */
	assert_null(tf_identities_client(set->ids, "ghost"));
	tf_policy_set_free(set);
}

static void publish_on_a_view_is_denied_to_everyone(void **state)
{
	struct tf_policy_set *set = BUILD(true, water);

	(void)state;
	for (size_t i = 0; i < N_CLIENTS; i++)
		EXPECT_VIEW(pub(set, all_clients[i], WATER_VIEW), DENY, WATER, NONE, true);
	EXPECT_VIEW(pub(set, NULL, WATER_VIEW), DENY, WATER, NONE, true);
	EXPECT_VIEW(pub(set, "lab-bot", "views/research-lab"), DENY, WATER, NONE, true);
	tf_policy_set_free(set);
}

static void publish_on_ungoverned_topics_follows_default_access(void **state)
{
	struct tf_policy_set *set = BUILD(false, water);

	(void)state;
	EXPECT(pub(set, "ww-sensor-01", "city/parks/x"), DENY, NULL, NONE);
	EXPECT(pub(set, NULL, "city/parks/x"), DENY, NULL, NONE);
	/* One level short of the policy's filter. */
	EXPECT(pub(set, "ww-sensor-01", "city/water/d1"), DENY, NULL, NONE);
	set->default_allow = true;
	EXPECT(pub(set, "ww-sensor-01", "city/parks/x"), ALLOW, NULL, NONE);
	EXPECT(pub(set, NULL, "city/parks/x"), ALLOW, NULL, NONE);
	EXPECT(pub(set, "other-app", "city/water/d1"), ALLOW, NULL, NONE);
	/* Governed topics are not affected. */
	EXPECT(pub(set, "other-app", WATER_TOPIC), DENY, WATER, NONE);
	tf_policy_set_free(set);
}

static void publish_under_trustflow_is_denied_to_everyone(void **state)
{
	static const char *const topics[] = {
		"$trustflow/alerts/water-telemetry", "$trustflow/alerts/-", "$trustflow/keys/k1",
		"$trustflow/checkpoints", "$trustflow/metrics", "$trustflow/metrics/water-telemetry",
		"$trustflow/x", "$trustflow",
	};
	struct tf_policy_set *set = BUILD(true, water);

	(void)state;
	for (size_t t = 0; t < sizeof(topics) / sizeof(topics[0]); t++) {
		for (size_t i = 0; i < N_CLIENTS; i++)
			EXPECT(pub(set, all_clients[i], topics[t]), DENY, NULL, NONE);
		EXPECT(pub(set, NULL, topics[t]), DENY, NULL, NONE);
	}
	tf_policy_set_free(set);
}

static void publish_on_the_control_topic_is_for_operators(void **state)
{
	struct tf_policy_set *set = BUILD(true, water);

	(void)state;
	EXPECT(pub(set, "ops-admin", "$CONTROL/trustflow/v1"), ALLOW, NULL, NONE);
	EXPECT(pub(set, "ww-steward", "$CONTROL/trustflow/v1"), ALLOW, NULL, NONE);
	EXPECT(pub(set, "other-steward", "$CONTROL/trustflow/v1"), ALLOW, NULL, NONE);
	EXPECT(pub(set, "ww-sensor-01", "$CONTROL/trustflow/v1"), DENY, NULL, NONE);
	EXPECT(pub(set, "maint-app", "$CONTROL/trustflow/v1"), DENY, NULL, NONE);
	EXPECT(pub(set, NULL, "$CONTROL/trustflow/v1"), DENY, NULL, NONE);
	/* Requests go to v1 only: nobody may pose as the broker's answers. */
	EXPECT(pub(set, "ops-admin", "$CONTROL/trustflow/v1/response"), DENY, NULL, NONE);
	EXPECT(pub(set, "ops-admin", "$CONTROL/trustflow/v2"), DENY, NULL, NONE);
	tf_policy_set_free(set);

	/* Without any operator in the identities, nobody may. */
	set = build_with(parse_identities(
		"{\"trustflow_identities\": 1, \"organizations\": {\"o\": {}},"
		" \"clients\": {\"c\": {\"org\": \"o\", \"roles\": [\"sensor\"]}}}"),
		NULL, 0, true);
	assert_true(set->role_admin == TF_NONE);
	EXPECT(pub(set, "c", "$CONTROL/trustflow/v1"), DENY, NULL, NONE);
	tf_policy_set_free(set);
}

static void publish_on_other_dollar_topics_is_deferred(void **state)
{
	struct tf_policy_set *set = BUILD(false, everything);

	(void)state;
	EXPECT(pub(set, "ops-admin", "$SYS/broker/uptime"), DEFER, NULL, NONE);
	EXPECT(pub(set, "ww-sensor-01", "$SYS/broker/uptime"), DEFER, NULL, NONE);
	EXPECT(pub(set, NULL, "$SYS/x"), DEFER, NULL, NONE);
	/* `#` never governs `$` topics. */
	EXPECT(pub(set, "ww-viewer", "$other"), DEFER, NULL, NONE);
	tf_policy_set_free(set);
}

/* ==== receive ==== */

static void owner_org_always_receives(void **state)
{
	struct tf_policy_set *set = BUILD(false, water, maint);

	(void)state;
	/* water has consumer rules, none of them for its owner. */
	EXPECT_VIEW(recv(set, "ww-sensor-01", WATER_TOPIC), ALLOW, WATER, OWNER, false);
	EXPECT(recv(set, "ww-viewer", WATER_TOPIC), ALLOW, WATER, OWNER);
	EXPECT(recv(set, "ops-admin", WATER_TOPIC), ALLOW, WATER, OWNER);
	/* maint has no consumers: only the owner org. */
	EXPECT(recv(set, "maint-nopurpose", "maint/x"), ALLOW, MAINT, OWNER);
	EXPECT(recv(set, "ww-viewer", "maint/x"), DENY, MAINT, NONE);
	EXPECT(recv(set, "ops-admin", "maint/x"), DENY, MAINT, NONE);
	/* Even after every consumer rule has expired. */
	EXPECT(recv_at(set, "ww-viewer", WATER_TOPIC, WATER_EXPIRY + DAY_MS / 2,
		WATER_EXPIRY + DAY_MS / 2), ALLOW, WATER, OWNER);
	tf_policy_set_free(set);
}

/* owner_receives false: "leak alarms only to the contractor". The
 * owner's clients receive only what a consumer rule gives them; its
 * stewards keep the policy's alerts; publishing is unchanged. */
static void owner_receives_false_narrows_the_owner_org(void **state)
{
	static const char alarms[] =
		"{\"trustflow_policy\": 1, \"id\": \"alarms\", \"version\": 1,"
		" \"owner\": \"city-waterworks\", \"topics\": [\"alarm/+\"], \"owner_receives\": false,"
		" \"consumers\": [{\"orgs\": [\"maint-co\"]},"
		" {\"orgs\": [\"city-waterworks\"], \"roles\": [\"viewer\"]},"
		" {\"orgs\": [\"city-waterworks\"], \"roles\": [\"sensor\"], \"fields\": [\"at\"],"
		" \"view\": \"views/alarm\"}]}";
	static const char sealed[] =
		"{\"trustflow_policy\": 1, \"id\": \"sealed\", \"version\": 1,"
		" \"owner\": \"city-waterworks\", \"topics\": [\"sealed/#\"],"
		" \"owner_receives\": false}";
	struct tf_policy_set *set = BUILD(false, alarms, sealed, water);

	(void)state;
	EXPECT(recv(set, "maint-app", "alarm/x"), ALLOW, "alarms@1", 0);
	EXPECT(recv(set, "maint-nopurpose", "alarm/x"), ALLOW, "alarms@1", 0);
	/* The owner's viewer under its own rule, not as the owner. */
	EXPECT(recv(set, "ww-viewer", "alarm/x"), ALLOW, "alarms@1", 1);
	/* Its sensor gets only the view; its admin and steward nothing. */
	EXPECT(recv(set, "ww-sensor-01", "alarm/x"), DENY, "alarms@1", NONE);
	EXPECT_VIEW(recv(set, "ww-sensor-01", "views/alarm/alarm/x"), ALLOW, "alarms@1", 2, true);
	EXPECT(recv(set, "ops-admin", "alarm/x"), DENY, "alarms@1", NONE);
	EXPECT_WHY(set, recv(set, "ww-steward", "alarm/x"), "ww-steward", 1, ROLES,
		"none of its roles is among the consumer rule's roles",
		"consumer rule 1: role data-steward not among the rule's roles (viewer)");
	EXPECT(recv(set, "lab-bot", "alarm/x"), DENY, "alarms@1", NONE);
	/* Subscriptions: the same, from the index. */
	EXPECT(sub(set, "maint-app", "alarm/#"), ALLOW, "alarms@1", 0);
	EXPECT(sub(set, "ww-viewer", "alarm/+"), ALLOW, "alarms@1", 1);
	EXPECT_VIEW(sub(set, "ww-sensor-01", "views/alarm/#"), ALLOW, "alarms@1", 2, true);
	EXPECT(sub(set, "ww-sensor-01", "alarm/+"), DENY, NULL, NONE);
	EXPECT(sub(set, "ops-admin", "alarm/+"), DENY, NULL, NONE);
	EXPECT(sub(set, "ww-steward", "alarm/x"), DENY, NULL, NONE);
	/* No rule at all: not even the owner receives. */
	EXPECT_WHY(set, recv(set, "ww-viewer", "sealed/a"), "ww-viewer", NONE, 0,
		"the policy names no consumers", "the policy names no consumers");
	EXPECT(sub(set, "ww-viewer", "sealed/#"), DENY, NULL, NONE);
	/* A wildcard reaches the owner's other data still. */
	EXPECT(sub(set, "ww-steward", "#"), ALLOW, WATER, OWNER);
	/* The owner still publishes; its stewards keep the alerts. */
	EXPECT(pub(set, "ww-viewer", "alarm/x"), ALLOW, "alarms@1", OWNER);
	EXPECT(recv(set, "ww-steward", "$trustflow/alerts/alarms"), ALLOW, NULL, NONE);
	EXPECT(sub(set, "ww-steward", "$trustflow/alerts/alarms"), ALLOW, NULL, NONE);
	EXPECT(recv(set, "other-steward", "$trustflow/alerts/alarms"), DENY, NULL, NONE);
	tf_policy_set_free(set);
}

/* tf_decide_receives_under, which tfctl policy receivers asks of every
 * client, says what tf_decide_receive decides: for every client and
 * time, a client receives an original exactly when the owner or an
 * original-form rule gives it, the first of them being the rule named;
 * and a view exactly when its rule gives it. */
static void receives_under_agrees_with_receive(void **state)
{
	static const char alarms[] =
		"{\"trustflow_policy\": 1, \"id\": \"alarms\", \"version\": 1,"
		" \"owner\": \"city-waterworks\", \"topics\": [\"alarm/+\"], \"owner_receives\": false,"
		" \"consumers\": [{\"orgs\": [\"city-waterworks\"], \"roles\": [\"viewer\"],"
		" \"not_before\": \"2026-07-01T00:00:00Z\"},"
		" {\"orgs\": [\"city-waterworks\", \"research-lab\"], \"fields\": [\"at\"],"
		" \"view\": \"views/alarm\", \"not_after\": \"2026-08-01T00:00:00Z\"}]}";
	static const struct { const char *id, *topic; } cases[] = {
		{ "water-telemetry", WATER_TOPIC }, { "timed", "timed/x" }, { "alarms", "alarm/x" },
		{ "sel-all", "sel/all" }, { "sel-second", "sel/second" }, { "maint-data", "maint/x" },
		{ "sel-empty", "sel/empty" },
	};
	static const int64_t times[] = {
		NOW, TIMED_FROM - 1, TIMED_FROM, TIMED_UNTIL - 1, TIMED_UNTIL, WATER_EXPIRY,
	};
	struct tf_policy_set *set = BUILD(false, water, timed, alarms, sel_all, sel_second, maint,
		sel_empty);
	unsigned allowed = 0, views = 0;

	(void)state;
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const struct tf_policy *p = tf_policy_set_find(set, cases[k].id);

		assert_non_null(p);
		for (size_t c = 0; c < N_CLIENTS; c++) {
			const struct tf_client *cl = who(set, all_clients[c]);

			for (size_t t = 0; t < sizeof(times) / sizeof(times[0]); t++) {
				int64_t at = times[t];
				struct tf_decision d = recv_at(set, all_clients[c], cases[k].topic, at, at);
				int first = tf_decide_receives_under(p, cl, OWNER, at) ? OWNER : NONE;

				for (uint32_t r = 0; r < p->n_consumers; r++) {
					bool under = tf_decide_receives_under(p, cl, (int)r, at);
					char view[128];

					/* At some time of its window, if now. */
					assert_true(!under || tf_decide_receives_under(p, cl, (int)r,
						TF_TIME_UNKNOWN));
					if (p->consumers[r].view == NULL) {
						/* The owner's clients receive as the owner. */
						assert_false(under && first == OWNER);
						if (under && first == NONE)
							first = (int)r;
						continue;
					}
					snprintf(view, sizeof(view), "%s/%s", p->consumers[r].view,
						cases[k].topic);
					d = recv_at(set, all_clients[c], view, at, at);
					if ((d.verdict == TF_ALLOW) != under)
						fail_msg("%s, %s, rule %u at %lld: view %s, under %d",
							cases[k].id, all_clients[c], r, (long long)at,
							tf_verdict_name(d.verdict), under);
					views += under;
				}
				d = recv_at(set, all_clients[c], cases[k].topic, at, at);
				expect_decision(&d, first != NONE ? TF_ALLOW : TF_DENY, p->label,
					first != NONE ? first : NONE, all_clients[c], (int)t);
				allowed += first != NONE;
			}
		}
	}
	/* Each kind of answer came up. */
	assert_true(allowed > 50);
	assert_true(views > 5);
	/* Out of range. */
	assert_false(tf_decide_receives_under(&set->policies[0], who(set, "lab-bot"), 7, NOW));
	assert_false(tf_decide_receives_under(&set->policies[0], who(set, "lab-bot"), NONE, NOW));
	tf_policy_set_free(set);
}

static void consumer_rule_keys_must_all_match(void **state)
{
	struct tf_policy_set *set = BUILD(false, water, sel_clients, sel_orgs, sel_roles,
		sel_purposes, sel_all, sel_second);

	(void)state;
	/* water's first rule: orgs maint-co and purposes maintenance. */
	EXPECT(recv(set, "maint-app", WATER_TOPIC), ALLOW, WATER, 0);
	EXPECT(recv(set, "maint-nopurpose", WATER_TOPIC), DENY, WATER, NONE);
	EXPECT(recv(set, "maint-billing", WATER_TOPIC), DENY, WATER, NONE);
	EXPECT(recv(set, "other-app", WATER_TOPIC), DENY, WATER, NONE);

	EXPECT(recv(set, "vip", "sel/clients"), ALLOW, "sel-clients@1", 0);
	EXPECT(recv(set, "other-app", "sel/clients"), DENY, "sel-clients@1", NONE);
	EXPECT(recv(set, "maint-app", "sel/clients"), DENY, "sel-clients@1", NONE);

	EXPECT(recv(set, "lab-bot", "sel/orgs"), ALLOW, "sel-orgs@1", 0);
	EXPECT(recv(set, "other-app", "sel/orgs"), ALLOW, "sel-orgs@1", 0);
	EXPECT(recv(set, "vip", "sel/orgs"), ALLOW, "sel-orgs@1", 0);
	EXPECT(recv(set, "maint-app", "sel/orgs"), DENY, "sel-orgs@1", NONE);

	/* roles: one shared entry is enough. */
	EXPECT(recv(set, "lab-bot", "sel/roles"), ALLOW, "sel-roles@1", 0);
	EXPECT(recv(set, "maint-app", "sel/roles"), DENY, "sel-roles@1", NONE);
	EXPECT(recv(set, "vip", "sel/roles"), DENY, "sel-roles@1", NONE);

	EXPECT(recv(set, "maint-app", "sel/purposes"), ALLOW, "sel-purposes@1", 0);
	EXPECT(recv(set, "other-app", "sel/purposes"), ALLOW, "sel-purposes@1", 0);
	EXPECT(recv(set, "maint-billing", "sel/purposes"), DENY, "sel-purposes@1", NONE);
	EXPECT(recv(set, "maint-nopurpose", "sel/purposes"), DENY, "sel-purposes@1", NONE);
	EXPECT(recv(set, "lab-bot", "sel/purposes"), DENY, "sel-purposes@1", NONE);

	/* orgs, roles and purposes together. */
	EXPECT(recv(set, "maint-app", "sel/all"), ALLOW, "sel-all@1", 0);
	EXPECT(recv(set, "maint-nopurpose", "sel/all"), DENY, "sel-all@1", NONE);
	EXPECT(recv(set, "maint-billing", "sel/all"), DENY, "sel-all@1", NONE);
	EXPECT(recv(set, "other-app", "sel/all"), DENY, "sel-all@1", NONE);
	EXPECT(recv(set, "lab-bot", "sel/all"), DENY, "sel-all@1", NONE);

	/* The rule that matched is reported by its index. */
	EXPECT(recv(set, "maint-billing", "sel/second"), ALLOW, "sel-second@1", 1);
	EXPECT(recv(set, "vip", "sel/second"), ALLOW, "sel-second@1", 0);
	EXPECT(recv(set, "lab-bot", "sel/second"), DENY, "sel-second@1", NONE);

	/* Never the unidentified. */
	EXPECT(recv(set, NULL, "sel/orgs"), DENY, "sel-orgs@1", NONE);
	tf_policy_set_free(set);
}

static void empty_selector_matches_every_identified_client(void **state)
{
	struct tf_policy_set *set = BUILD(false, sel_empty);

	(void)state;
	for (size_t i = 0; i < N_CLIENTS; i++) {
		const struct tf_client *c = who(set, all_clients[i]);
		bool owner;

		if (c == NULL) {
			fail_msg("%s is not in the identities", all_clients[i]);
			continue;
		}
		owner = c->org == tf_identities_org(set->ids, "city-waterworks");

		EXPECT(recv(set, all_clients[i], "sel/empty"), ALLOW, "sel-empty@1", owner ? OWNER : 0);
	}
	EXPECT(recv(set, NULL, "sel/empty"), DENY, "sel-empty@1", NONE);
	tf_policy_set_free(set);
}

static void consumer_rules_hold_between_not_before_and_not_after(void **state)
{
	struct tf_policy_set *set = BUILD(false, water, timed);

	(void)state;
	EXPECT(recv_at(set, "maint-app", "timed/x", TIMED_FROM - DAY_MS, TIMED_FROM - DAY_MS),
		DENY, TIMED, NONE);
	EXPECT(recv_at(set, "maint-app", "timed/x", TIMED_FROM - 1, TIMED_FROM - 1),
		DENY, TIMED, NONE);
	/* not_before is inclusive. */
	EXPECT(recv_at(set, "maint-app", "timed/x", TIMED_FROM, TIMED_FROM), ALLOW, TIMED, 0);
	EXPECT(recv_at(set, "maint-app", "timed/x", TIMED_UNTIL - 1, TIMED_UNTIL - 1),
		ALLOW, TIMED, 0);
	/* not_after is exclusive: expiry stops delivery at that moment. */
	EXPECT(recv_at(set, "maint-app", "timed/x", TIMED_UNTIL, TIMED_UNTIL), DENY, TIMED, NONE);
	EXPECT(recv_at(set, "maint-app", "timed/x", TIMED_UNTIL + DAY_MS, TIMED_UNTIL + DAY_MS),
		DENY, TIMED, NONE);
	/* A message received while the rule held is still withheld after it. */
	EXPECT(recv_at(set, "maint-app", "timed/x", TIMED_UNTIL, TIMED_UNTIL - 10),
		DENY, TIMED, NONE);

	/* The example's rule: until 2027-03-31T00:00:00Z. */
	EXPECT(recv_at(set, "maint-app", WATER_TOPIC, WATER_EXPIRY - 1, WATER_EXPIRY - 1),
		ALLOW, WATER, 0);
	EXPECT(recv_at(set, "maint-app", WATER_TOPIC, WATER_EXPIRY, WATER_EXPIRY),
		DENY, WATER, NONE);
	EXPECT(recv_at(set, "maint-app", WATER_TOPIC, WATER_EXPIRY + 1, WATER_EXPIRY),
		DENY, WATER, NONE);
	tf_policy_set_free(set);
}

/* A date alone as not_after holds through that day (UTC); as not_before
 * it starts at the day's first instant. */
static void date_windows_hold_through_their_last_day(void **state)
{
	struct tf_policy_set *set = BUILD(false, water, dated, leap_day);

	(void)state;
	EXPECT(recv_at(set, "maint-app", "dated/x", TIMED_FROM - 1, TIMED_FROM - 1),
		DENY, DATED, NONE);
	EXPECT(recv_at(set, "maint-app", "dated/x", TIMED_FROM, TIMED_FROM), ALLOW, DATED, 0);
	/* 2026-07-31T23:59:59.999Z: still July 31. */
	EXPECT(recv_at(set, "maint-app", "dated/x", TIMED_UNTIL - 1, TIMED_UNTIL - 1),
		ALLOW, DATED, 0);
	/* 2026-08-01T00:00:00Z: the rule has ended. */
	EXPECT(recv_at(set, "maint-app", "dated/x", TIMED_UNTIL, TIMED_UNTIL), DENY, DATED, NONE);
	EXPECT(recv_at(set, "maint-app", "leap/x", T_2024_02_29 - 1, T_2024_02_29 - 1),
		DENY, LEAP_DAY, NONE);
	EXPECT(recv_at(set, "maint-app", "leap/x", T_2024_02_29, T_2024_02_29),
		ALLOW, LEAP_DAY, 0);
	EXPECT(recv_at(set, "maint-app", "leap/x", T_2024_02_29 + DAY_MS - 1,
		T_2024_02_29 + DAY_MS - 1), ALLOW, LEAP_DAY, 0);
	EXPECT(recv_at(set, "maint-app", "leap/x", T_2024_02_29 + DAY_MS, T_2024_02_29 + DAY_MS),
		DENY, LEAP_DAY, NONE);
	tf_policy_set_free(set);
}

static void fields_rule_receives_only_its_view(void **state)
{
	struct tf_policy_set *set = BUILD(false, water);

	(void)state;
	/* lab-bot's only rule has fields: the original is withheld... */
	EXPECT_VIEW(recv(set, "lab-bot", WATER_TOPIC), DENY, WATER, NONE, false);
	/* ...and the view copy is delivered, under rule 1. */
	EXPECT_VIEW(recv(set, "lab-bot", WATER_VIEW), ALLOW, WATER, 1, true);
	EXPECT_VIEW(recv(set, "lab-bot", "views/research-lab/city/water/d2/telemetry"),
		ALLOW, WATER, 1, true);
	/* Only that rule's clients read the view: not the owner org, not the
	 * other consumers, not administrators. */
	EXPECT_VIEW(recv(set, "ww-sensor-01", WATER_VIEW), DENY, WATER, NONE, true);
	EXPECT_VIEW(recv(set, "ops-admin", WATER_VIEW), DENY, WATER, NONE, true);
	EXPECT_VIEW(recv(set, "maint-app", WATER_VIEW), DENY, WATER, NONE, true);
	EXPECT_VIEW(recv(set, "other-app", WATER_VIEW), DENY, WATER, NONE, true);
	EXPECT_VIEW(recv(set, NULL, WATER_VIEW), DENY, WATER, NONE, true);
	tf_policy_set_free(set);
}

/* ==== why: the closest rule and what failed under it ==== */

static void a_refusal_names_what_failed_under_the_closest_rule(void **state)
{
	struct tf_policy_set *set = BUILD(false, water, timed, sel_clients, sel_orgs, sel_roles,
		sel_all);

	(void)state;
	/* The issue's cases: a purpose that is not the rule's, no purpose at
	 * all, an expired rule, a rule not in force yet. */
	EXPECT_WHY(set, recv(set, "maint-billing", WATER_TOPIC), "maint-billing", 0, PURPOSES,
		"none of its purposes is among the consumer rule's purposes",
		"consumer rule 0: purpose billing not among the rule's purposes (maintenance)");
	EXPECT_WHY(set, recv(set, "maint-nopurpose", WATER_TOPIC), "maint-nopurpose", 0, PURPOSES,
		"it has no purpose; the consumer rule requires one",
		"consumer rule 0: the client has no purpose; the rule requires one of (maintenance)");
	EXPECT_WHY(set, recv_at(set, "maint-app", WATER_TOPIC, WATER_EXPIRY, WATER_EXPIRY),
		"maint-app", 0, TF_MISS_EXPIRED, "its consumer rule has expired",
		"consumer rule 0: expired at 2027-03-31T00:00:00Z");
	EXPECT_WHY(set, recv_at(set, "maint-app", "timed/x", TIMED_FROM - 1, TIMED_FROM - 1),
		"maint-app", 0, TF_MISS_NOT_YET, "its consumer rule is not in force yet",
		"consumer rule 0: not in force until 2026-07-01T00:00:00Z");
	/* Roles: one role, none; names no client carries ("auditor") are not
	 * listed. */
	EXPECT_WHY(set, recv(set, "maint-app", "sel/roles"), "maint-app", 0, ROLES,
		"none of its roles is among the consumer rule's roles",
		"consumer rule 0: role operator not among the rule's roles (analyst)");
	EXPECT_WHY(set, recv(set, "vip", "sel/roles"), "vip", 0, ROLES,
		"it has no role; the consumer rule requires one",
		"consumer rule 0: the client has no role; the rule requires one of (analyst)");
	/* Orgs and clients. */
	EXPECT_WHY(set, recv(set, "maint-app", "sel/orgs"), "maint-app", 0, ORGS,
		"its organization is not among the consumer rule's orgs",
		"consumer rule 0: org maint-co not among the rule's orgs (research-lab, other-co)");
	EXPECT_WHY(set, recv(set, "other-app", "sel/clients"), "other-app", 0, CLIENTS,
		"not among the consumer rule's clients",
		"consumer rule 0: client other-app not among the rule's clients (vip)");
	/* Every condition that failed, in order; the static reason names the
	 * first. */
	EXPECT_WHY(set, recv(set, "lab-bot", "sel/all"), "lab-bot", 0, ORGS | ROLES,
		"its organization is not among the consumer rule's orgs",
		"consumer rule 0: org research-lab not among the rule's orgs (maint-co); "
		"role analyst not among the rule's roles (operator)");
	EXPECT_WHY(set, recv_at(set, "other-app", "timed/x", TIMED_UNTIL, TIMED_UNTIL),
		"other-app", 0, ORGS | TF_MISS_EXPIRED,
		"its organization is not among the consumer rule's orgs",
		"consumer rule 0: org other-co not among the rule's orgs (maint-co); "
		"expired at 2026-08-01T00:00:00Z");
	/* Publishers. */
	EXPECT_WHY(set, pub(set, "ww-viewer", WATER_TOPIC), "ww-viewer", PUBS, ROLES,
		"not among the policy's publishers",
		"publishers: role viewer not among the publishers' roles (sensor)");
	tf_policy_set_free(set);
}

static void the_closest_rule_is_the_one_the_client_nearly_meets(void **state)
{
	static const char two[] =
		"{\"trustflow_policy\": 1, \"id\": \"two\", \"version\": 1,"
		" \"owner\": \"city-waterworks\", \"topics\": [\"two/+\"],"
		" \"consumers\": [{\"orgs\": [\"research-lab\"]},"
		" {\"orgs\": [\"maint-co\"], \"purposes\": [\"maintenance\"],"
		" \"not_after\": \"2026-05-01T00:00:00Z\"},"
		" {\"orgs\": [\"maint-co\"], \"purposes\": [\"maintenance\"]}]}";
	struct tf_policy_set *set = BUILD(false, water, two);

	(void)state;
	/* maint-billing is of rules 1 and 2's org: their purposes are what
	 * fail, not rule 0's org. An expired rule is nearer than one whose
	 * purposes fail; ties go to the first. */
	EXPECT_WHY(set, recv(set, "maint-billing", "two/x"), "maint-billing", 2, PURPOSES,
		"none of its purposes is among the consumer rule's purposes",
		"consumer rule 2: purpose billing not among the rule's purposes (maintenance)");
	EXPECT_WHY(set, recv(set, "other-app", "two/x"), "other-app", 0, ORGS,
		"its organization is not among the consumer rule's orgs",
		"consumer rule 0: org other-co not among the rule's orgs (research-lab)");
	/* lab-bot gets the view: that is what explains the original's
	 * refusal. */
	EXPECT_WHY(set, recv(set, "lab-bot", WATER_TOPIC), "lab-bot", 1, TF_MISS_VIEW_ONLY,
		"its rule gives it only the view with selected fields",
		"consumer rule 1: gives only the view under views/research-lab, with the fields "
		"(flow)");
	/* No consumers at all. */
	tf_policy_set_free(set);
	set = BUILD(false, maint);
	EXPECT_WHY(set, recv(set, "ww-viewer", "maint/x"), "ww-viewer",
		NONE, 0, "the policy names no consumers", "the policy names no consumers");
	tf_policy_set_free(set);
}

/* The case of the issue: a view's own consumer after its rule expired
 * was told only "a view: only its rule's consumers read it". */
static void a_view_refusal_names_its_rule_s_condition(void **state)
{
	static const char expiring_view[] =
		"{\"trustflow_policy\": 1, \"id\": \"ev\", \"version\": 1,"
		" \"owner\": \"city-waterworks\", \"topics\": [\"ev/+\"],"
		" \"consumers\": [{\"orgs\": [\"maint-co\"]},"
		" {\"orgs\": [\"research-lab\"], \"fields\": [\"flow\", \"level\"],"
		" \"view\": \"views/ev\", \"not_after\": \"2026-06-30T23:59:59Z\"}]}";
	struct tf_policy_set *set = BUILD(false, expiring_view);

	(void)state;
	EXPECT_VIEW(recv(set, "lab-bot", "views/ev/ev/a"), ALLOW, "ev@1", 1, true);
	EXPECT_WHY(set, recv_at(set, "lab-bot", "views/ev/ev/a", NOW + 30 * DAY_MS,
		NOW + 30 * DAY_MS), "lab-bot", 1, TF_MISS_EXPIRED, "its consumer rule has expired",
		"consumer rule 1: expired at 2026-06-30T23:59:59Z");
	EXPECT_WHY(set, recv(set, "maint-app", "views/ev/ev/a"), "maint-app", 1, ORGS,
		"its organization is not among the consumer rule's orgs",
		"consumer rule 1: org maint-co not among the rule's orgs (research-lab)");
	/* Before it expired, the original's refusal names the view. */
	EXPECT_WHY(set, recv(set, "lab-bot", "ev/a"), "lab-bot", 1, TF_MISS_VIEW_ONLY,
		"its rule gives it only the view with selected fields",
		"consumer rule 1: gives only the view under views/ev, with the fields (flow, level)");
	tf_policy_set_free(set);
}

static void explanations_are_bounded(void **state)
{
	static const char many[] =
		"{\"trustflow_policy\": 1, \"id\": \"many\", \"version\": 1,"
		" \"owner\": \"city-waterworks\", \"topics\": [\"many\"],"
		" \"consumers\": [{\"clients\": [\"ww-sensor-01\", \"other-sensor\", \"ww-viewer\","
		" \"ops-admin\", \"ww-steward\", \"other-steward\", \"maint-app\", \"maint-nopurpose\","
		" \"maint-billing\", \"lab-bot\"]}]}";
	struct tf_policy_set *set = BUILD(false, many);
	struct tf_decision d = recv(set, "vip", "many");
	char small[16];

	(void)state;
	EXPECT_WHY(set, d, "vip", 0, CLIENTS, "not among the consumer rule's clients",
		"consumer rule 0: client vip not among the rule's clients (ww-sensor-01, "
		"other-sensor, ww-viewer, ops-admin, ww-steward, other-steward, maint-app, "
		"maint-nopurpose, ... 10 in all)");
	/* Cut at the buffer, always terminated. */
	memset(small, 'x', sizeof(small));
	tf_decision_explain(set, who(set, "vip"), &d, small, sizeof(small));
	assert_string_equal(small, "consumer rule 0");
	/* Every cut is a prefix of the whole, between UTF-8 characters: a view
	 * and field names may hold any. */
	{
		static const char utf8[] =
			"{\"trustflow_policy\": 1, \"id\": \"utf8\", \"version\": 1,"
			" \"owner\": \"city-waterworks\", \"topics\": [\"u\"],"
			" \"consumers\": [{\"orgs\": [\"research-lab\"], \"fields\": [\"d\xc3\xa9" "bit\","
			" \"\xe6\xb0\xb4\xe4\xbd\x8d\", \"\xf0\x9f\x92\xa7\"],"
			" \"view\": \"views/\xc3\xa9\"}]}";
		struct tf_policy_set *u = BUILD(false, utf8);
		struct tf_decision v = recv(u, "lab-bot", "u");
		char whole[256], cut[256];
		size_t n;

		tf_decision_explain(u, who(u, "lab-bot"), &v, whole, sizeof(whole));
		assert_string_equal(whole, "consumer rule 0: gives only the view under views/\xc3\xa9,"
			" with the fields (d\xc3\xa9" "bit, \xe6\xb0\xb4\xe4\xbd\x8d, \xf0\x9f\x92\xa7)");
		for (size_t size = 1; size <= strlen(whole) + 1; size++) {
			tf_decision_explain(u, who(u, "lab-bot"), &v, cut, size);
			n = strlen(cut);
			assert_true(n < size);
			assert_memory_equal(cut, whole, n);
			/* Not inside a character: the next byte starts one. */
			assert_true(((unsigned char)whole[n] & 0xc0) != 0x80);
			/* And nothing that fit was left out. */
			assert_true(n + 4 >= size - 1 || n == strlen(whole));
		}
		tf_policy_set_free(u);
	}
	/* An allow, and a refusal under no selector, explain as their reason. */
	d = recv(set, "vip", "nowhere");
	tf_decision_explain(set, who(set, "vip"), &d, small, sizeof(small));
	assert_int_equal(d.closest, NONE);
	assert_int_equal(d.missed, 0);
	assert_int_equal(strncmp(small, d.reason, sizeof(small) - 1), 0);
	tf_policy_set_free(set);
}

static void retention_withholds_old_and_undated_messages(void **state)
{
	struct tf_policy_set *set = BUILD(false, water, maint);

	(void)state;
	/* 86400 s: no subscriber receives it more than a day after. */
	EXPECT(recv_at(set, "maint-app", WATER_TOPIC, NOW, NOW - DAY_MS - 1), DENY, WATER, NONE);
	EXPECT(recv_at(set, "ww-viewer", WATER_TOPIC, NOW, NOW - DAY_MS - 1), DENY, WATER, NONE);
	EXPECT(recv_at(set, "ww-viewer", WATER_TOPIC, NOW, NOW - 30 * DAY_MS), DENY, WATER, NONE);
	EXPECT(recv_at(set, "maint-app", WATER_TOPIC, NOW, NOW - DAY_MS), ALLOW, WATER, 0);
	EXPECT(recv_at(set, "ww-viewer", WATER_TOPIC, NOW, NOW), ALLOW, WATER, OWNER);
	/* Of unknown age under a retention: withheld, even from the owner. */
	EXPECT(recv_at(set, "ww-viewer", WATER_TOPIC, NOW, TF_TIME_UNKNOWN), DENY, WATER, NONE);
	EXPECT(recv_at(set, "maint-app", WATER_TOPIC, NOW, TF_TIME_UNKNOWN), DENY, WATER, NONE);
	/* Without a retention the age does not matter. */
	EXPECT(recv_at(set, "maint-app", "maint/x", NOW, TF_TIME_UNKNOWN), ALLOW, MAINT, OWNER);
	EXPECT(recv_at(set, "maint-app", "maint/x", NOW, NOW - 3650 * DAY_MS), ALLOW, MAINT, OWNER);
	EXPECT(recv_at(set, "other-app", "maint/x", NOW, TF_TIME_UNKNOWN), DENY, MAINT, NONE);
	tf_policy_set_free(set);
}

static void views_are_not_subject_to_the_receive_time_check(void **state)
{
	struct tf_policy_set *set = BUILD(false, water);

	(void)state;
	EXPECT_VIEW(recv_at(set, "lab-bot", WATER_VIEW, NOW, TF_TIME_UNKNOWN), ALLOW, WATER, 1, true);
	EXPECT_VIEW(recv_at(set, "lab-bot", WATER_VIEW, NOW, NOW - 10 * DAY_MS), ALLOW, WATER, 1,
		true);
	EXPECT_VIEW(recv_at(set, "ww-viewer", WATER_VIEW, NOW, TF_TIME_UNKNOWN), DENY, WATER, NONE,
		true);
	tf_policy_set_free(set);
}

static void unidentified_clients_never_receive_governed_data(void **state)
{
	struct tf_policy_set *set = BUILD(true, water, maint, sel_empty);

	(void)state;
	EXPECT(recv(set, NULL, WATER_TOPIC), DENY, WATER, NONE);
	EXPECT(recv(set, NULL, WATER_VIEW), DENY, WATER, NONE);
	EXPECT(recv(set, NULL, "maint/x"), DENY, MAINT, NONE);
	EXPECT(recv(set, NULL, "sel/empty"), DENY, "sel-empty@1", NONE);
	/* Ungoverned data follows default_access, for them too. */
	EXPECT(recv(set, NULL, "free/x"), ALLOW, NULL, NONE);
	set->default_allow = false;
	EXPECT(recv(set, NULL, "free/x"), DENY, NULL, NONE);
	EXPECT(recv(set, "ww-viewer", "free/x"), DENY, NULL, NONE);
	tf_policy_set_free(set);
}

/* One owner may nest its policies; the most specific filter decides. */
static void the_most_specific_policy_decides(void **state)
{
	struct tf_policy_set *set = BUILD(false, city_all, water, district9);

	(void)state;
	/* city/water/+/telemetry beats city/#: water's rules, not
	 * city-all's, decide. */
	EXPECT(recv(set, "maint-app", WATER_TOPIC), ALLOW, WATER, 0);
	EXPECT(recv(set, "ww-viewer", WATER_TOPIC), ALLOW, WATER, OWNER);
	EXPECT(recv(set, "other-app", WATER_TOPIC), DENY, WATER, NONE);
	EXPECT(recv(set, "lab-bot", WATER_TOPIC), DENY, WATER, NONE);
	EXPECT(pub(set, "ww-sensor-01", WATER_TOPIC), ALLOW, WATER, PUBS);
	EXPECT(pub(set, "ww-viewer", WATER_TOPIC), DENY, WATER, NONE);
	/* The rest of city/ is city-all's. */
	EXPECT(recv(set, "lab-bot", "city/parks/x"), ALLOW, CITY_ALL, 0);
	EXPECT(recv(set, "ww-viewer", "city/parks/x"), ALLOW, CITY_ALL, OWNER);
	EXPECT(recv(set, "other-app", "city/parks/x"), DENY, CITY_ALL, NONE);
	EXPECT(recv(set, "maint-app", "city/parks/x"), DENY, CITY_ALL, NONE);
	EXPECT(recv(set, "maint-app", "city/water/d1/telemetry/raw"), DENY, CITY_ALL, NONE);
	EXPECT(recv(set, "ww-viewer", "city"), ALLOW, CITY_ALL, OWNER);
	EXPECT(pub(set, "ww-viewer", "city/parks/x"), ALLOW, CITY_ALL, OWNER);
	EXPECT(pub(set, "maint-app", "city/parks/x"), DENY, CITY_ALL, NONE);
	/* A literal level beats `+`: district 9 is d9's. */
	EXPECT(recv(set, "other-app", "city/water/d9/telemetry"), ALLOW, D9, 0);
	EXPECT(recv(set, "ww-viewer", "city/water/d9/telemetry"), ALLOW, D9, OWNER);
	EXPECT(recv(set, "maint-app", "city/water/d9/telemetry"), DENY, D9, NONE);
	EXPECT(recv(set, "lab-bot", "city/water/d9/telemetry"), DENY, D9, NONE);

	/* Subscribing to one topic is decided as receiving on it: city-all's
	 * rules do not reach the topics a more specific policy governs. */
	EXPECT(sub(set, "lab-bot", WATER_TOPIC), DENY, NULL, NONE);
	EXPECT(sub(set, "other-app", WATER_TOPIC), DENY, NULL, NONE);
	EXPECT(sub(set, "maint-app", WATER_TOPIC), ALLOW, WATER, 0);
	EXPECT(sub(set, "maint-app", "city/water/d9/telemetry"), DENY, NULL, NONE);
	EXPECT(sub(set, "ww-viewer", "city/water/d9/telemetry"), ALLOW, D9, OWNER);
	EXPECT(sub(set, "other-app", "city/water/d9/telemetry"), ALLOW, D9, 0);
	EXPECT(sub(set, "lab-bot", "city/parks/x"), ALLOW, CITY_ALL, 0);
	EXPECT(sub(set, "maint-app", "city/parks/x"), DENY, NULL, NONE);
	EXPECT_VIEW(sub(set, "lab-bot", WATER_VIEW), ALLOW, WATER, 1, true);
	/* A wildcard filter that reaches topics of several policies. */
	EXPECT(sub(set, "lab-bot", "city/#"), ALLOW, CITY_ALL, 0);
	EXPECT(sub(set, "maint-app", "city/+/+/telemetry"), ALLOW, WATER, 0);
	EXPECT(sub(set, "other-app", "city/+/+/telemetry"), ALLOW, D9, 0);
	tf_policy_set_free(set);
}

static void trustflow_public_topics_are_readable_by_everyone(void **state)
{
	static const char *const topics[] = {
		"$trustflow/keys/x", "$trustflow/keys/abc/def", "$trustflow/checkpoints",
	};
	struct tf_policy_set *set = BUILD(false, water);

	(void)state;
	for (size_t t = 0; t < sizeof(topics) / sizeof(topics[0]); t++) {
		for (size_t i = 0; i < N_CLIENTS; i++)
			EXPECT(recv_at(set, all_clients[i], topics[t], NOW, TF_TIME_UNKNOWN), ALLOW,
				NULL, NONE);
		EXPECT(recv(set, NULL, topics[t]), ALLOW, NULL, NONE);
	}
	tf_policy_set_free(set);
}

static void alerts_are_for_admins_and_the_owners_stewards(void **state)
{
	struct tf_policy_set *set = BUILD(false, water, other_data);

	(void)state;
	/* water-telemetry is city-waterworks'. */
	EXPECT(recv(set, "ops-admin", "$trustflow/alerts/water-telemetry"), ALLOW, NULL, NONE);
	EXPECT(recv(set, "ww-steward", "$trustflow/alerts/water-telemetry"), ALLOW, NULL, NONE);
	EXPECT(recv(set, "other-steward", "$trustflow/alerts/water-telemetry"), DENY, NULL, NONE);
	EXPECT(recv(set, "ww-viewer", "$trustflow/alerts/water-telemetry"), DENY, NULL, NONE);
	EXPECT(recv(set, "maint-app", "$trustflow/alerts/water-telemetry"), DENY, NULL, NONE);
	EXPECT(recv(set, NULL, "$trustflow/alerts/water-telemetry"), DENY, NULL, NONE);
	/* other-data is other-co's. */
	EXPECT(recv(set, "other-steward", "$trustflow/alerts/other-data"), ALLOW, NULL, NONE);
	EXPECT(recv(set, "ww-steward", "$trustflow/alerts/other-data"), DENY, NULL, NONE);
	EXPECT(recv(set, "ops-admin", "$trustflow/alerts/other-data"), ALLOW, NULL, NONE);
	EXPECT(recv(set, "other-app", "$trustflow/alerts/other-data"), DENY, NULL, NONE);
	/* Alerts about no policy: administrators only. */
	EXPECT(recv(set, "ops-admin", "$trustflow/alerts/-"), ALLOW, NULL, NONE);
	EXPECT(recv(set, "ww-steward", "$trustflow/alerts/-"), DENY, NULL, NONE);
	EXPECT(recv(set, "other-steward", "$trustflow/alerts/-"), DENY, NULL, NONE);
	EXPECT(recv(set, "ww-viewer", "$trustflow/alerts/-"), DENY, NULL, NONE);
	EXPECT(recv(set, NULL, "$trustflow/alerts/-"), DENY, NULL, NONE);
	/* A policy that is not loaded has no steward. */
	EXPECT(recv(set, "ww-steward", "$trustflow/alerts/gone"), DENY, NULL, NONE);
	EXPECT(recv(set, "ops-admin", "$trustflow/alerts/gone"), ALLOW, NULL, NONE);
	/* Nor does a deeper topic. */
	EXPECT(recv(set, "ww-steward", "$trustflow/alerts/water-telemetry/x"), DENY, NULL, NONE);
	tf_policy_set_free(set);
}

/* The broker's metrics are the administrators'; a policy's are also its
 * owner's stewards', as its alerts are. */
static void metrics_are_for_admins_and_the_owners_stewards(void **state)
{
	struct tf_policy_set *set = BUILD(false, water, other_data);
	const char *water_metrics = "$trustflow/metrics/water-telemetry";

	(void)state;
	EXPECT(recv(set, "ops-admin", "$trustflow/metrics"), ALLOW, NULL, NONE);
	EXPECT(recv(set, "ww-steward", "$trustflow/metrics"), DENY, NULL, NONE);
	EXPECT(recv(set, NULL, "$trustflow/metrics"), DENY, NULL, NONE);
	EXPECT(recv(set, "ops-admin", water_metrics), ALLOW, NULL, NONE);
	EXPECT(recv(set, "ww-steward", water_metrics), ALLOW, NULL, NONE);
	EXPECT(recv(set, "other-steward", water_metrics), DENY, NULL, NONE);
	EXPECT(recv(set, "ww-viewer", water_metrics), DENY, NULL, NONE);
	EXPECT(recv(set, "maint-app", water_metrics), DENY, NULL, NONE);
	EXPECT(recv(set, NULL, water_metrics), DENY, NULL, NONE);
	EXPECT(recv(set, "other-steward", "$trustflow/metrics/other-data"), ALLOW, NULL, NONE);
	EXPECT(recv(set, "ww-steward", "$trustflow/metrics/water-telemetry/x"), DENY, NULL, NONE);
	EXPECT(recv(set, "ww-steward", "$trustflow/metricsx"), DENY, NULL, NONE);
	/* Subscriptions: a steward's filter must reach a policy's metrics,
	 * an administrator's either. */
	EXPECT(sub(set, "ww-steward", "$trustflow/metrics/#"), ALLOW, NULL, NONE);
	EXPECT(sub(set, "ww-steward", "$trustflow/metrics"), DENY, NULL, NONE);
	EXPECT(sub(set, "ops-admin", "$trustflow/metrics"), ALLOW, NULL, NONE);
	EXPECT(sub(set, "ops-admin", "$trustflow/metrics/+"), ALLOW, NULL, NONE);
	EXPECT(sub(set, "maint-app", "$trustflow/metrics/#"), DENY, NULL, NONE);
	EXPECT(sub(set, NULL, "$trustflow/metrics/+"), DENY, NULL, NONE);
	tf_policy_set_free(set);
}

/* An accepted policy, published by the broker (federation-v1), is for
 * admins and its owner's data stewards: not for another organization's
 * steward, nor for the owner's other clients. */
static void published_policies_are_for_admins_and_the_owners_stewards(void **state)
{
	struct tf_policy_set *set = BUILD(false, water, other_data);
	const char *topic = "$trustflow/policies/city-waterworks/water-telemetry";

	(void)state;
	EXPECT(recv(set, "ops-admin", topic), ALLOW, NULL, NONE);
	EXPECT(recv(set, "ww-steward", topic), ALLOW, NULL, NONE);
	EXPECT(recv(set, "other-steward", topic), DENY, NULL, NONE);
	EXPECT(recv(set, "ww-viewer", topic), DENY, NULL, NONE);
	EXPECT(recv(set, "ww-sensor-01", topic), DENY, NULL, NONE);
	EXPECT(recv(set, NULL, topic), DENY, NULL, NONE);
	EXPECT(recv(set, "other-steward", "$trustflow/policies/other-co/other-data"), ALLOW, NULL,
		NONE);
	/* The owner is read from the topic exactly: no prefix, no deeper level. */
	EXPECT(recv(set, "ww-steward", "$trustflow/policies/city-water/x"), DENY, NULL, NONE);
	EXPECT(recv(set, "ww-steward", "$trustflow/policies/city-waterworks/x/y"), DENY, NULL,
		NONE);
	EXPECT(recv(set, "ww-steward", "$trustflow/policies/city-waterworks"), DENY, NULL, NONE);
	/* Subscribing: stewards and admins; each policy is decided on delivery. */
	EXPECT(sub(set, "ww-steward", "$trustflow/policies/city-waterworks/#"), ALLOW, NULL, NONE);
	EXPECT(sub(set, "ops-admin", "$trustflow/policies/#"), ALLOW, NULL, NONE);
	EXPECT(sub(set, "ww-viewer", "$trustflow/policies/#"), DENY, NULL, NONE);
	EXPECT(sub(set, NULL, "$trustflow/policies/+/+"), DENY, NULL, NONE);
	/* Only the broker publishes them. */
	EXPECT(pub(set, "ops-admin", topic), DENY, NULL, NONE);
	tf_policy_set_free(set);
}

static void other_trustflow_topics_are_not_readable(void **state)
{
	static const char *const topics[] = {
		"$trustflow/secret", "$trustflow/checkpoints/x", "$trustflow", "$trustflow/keysx",
		"$trustflow/alerts",
	};
	struct tf_policy_set *set = BUILD(true, water);

	(void)state;
	for (size_t t = 0; t < sizeof(topics) / sizeof(topics[0]); t++) {
		for (size_t i = 0; i < N_CLIENTS; i++) {
			/* "$trustflow/alerts" holds no alert; admins may not read
			 * it either. */
			EXPECT(recv(set, all_clients[i], topics[t]), DENY, NULL, NONE);
		}
		EXPECT(recv(set, NULL, topics[t]), DENY, NULL, NONE);
	}
	tf_policy_set_free(set);
}

static void control_responses_are_for_operators(void **state)
{
	struct tf_policy_set *set = BUILD(true, water);

	(void)state;
	EXPECT(recv(set, "ops-admin", "$CONTROL/trustflow/v1/response"), ALLOW, NULL, NONE);
	EXPECT(recv(set, "other-steward", "$CONTROL/trustflow/v1/response"), ALLOW, NULL, NONE);
	EXPECT(recv(set, "ww-viewer", "$CONTROL/trustflow/v1/response"), DENY, NULL, NONE);
	EXPECT(recv(set, NULL, "$CONTROL/trustflow/v1/response"), DENY, NULL, NONE);
	EXPECT(sub(set, "ops-admin", "$CONTROL/trustflow/#"), ALLOW, NULL, NONE);
	EXPECT(sub(set, "ww-steward", "$CONTROL/trustflow/v1/response"), ALLOW, NULL, NONE);
	EXPECT(sub(set, "maint-app", "$CONTROL/trustflow/#"), DENY, NULL, NONE);
	EXPECT(sub(set, "maint-app", "$CONTROL/trustflow/v1/response"), DENY, NULL, NONE);
	EXPECT(sub(set, NULL, "$CONTROL/trustflow/v1/response"), DENY, NULL, NONE);
	tf_policy_set_free(set);
}

static void other_dollar_topics_are_deferred(void **state)
{
	struct tf_policy_set *set = BUILD(true, everything);

	(void)state;
	EXPECT(recv(set, "ops-admin", "$SYS/broker/uptime"), DEFER, NULL, NONE);
	EXPECT(recv(set, "ww-viewer", "$SYS/broker/uptime"), DEFER, NULL, NONE);
	EXPECT(recv(set, NULL, "$SYS/broker/uptime"), DEFER, NULL, NONE);
	EXPECT(sub(set, "ww-viewer", "$SYS/#"), DEFER, NULL, NONE);
	EXPECT(sub(set, NULL, "$SYS/broker/+"), DEFER, NULL, NONE);
	tf_policy_set_free(set);
}

/* ==== subscribe ==== */

static void exact_topic_subscription_is_decided_as_receive(void **state)
{
	static const char *const topics[] = {
		WATER_TOPIC, "sel/clients", "sel/orgs", "sel/roles", "sel/purposes", "sel/all",
		"sel/empty", "sel/second", "maint/x", "city/water/d9/telemetry", "city/parks/x",
		"city", WATER_VIEW,
	};
	struct tf_policy_set *set = BUILD(false, water, maint, sel_clients, sel_orgs, sel_roles,
		sel_purposes, sel_all, sel_empty, sel_second, city_all, district9);
	unsigned allowed = 0, denied = 0;

	(void)state;
	for (size_t t = 0; t < sizeof(topics) / sizeof(topics[0]); t++) {
		for (size_t i = 0; i <= N_CLIENTS; i++) {
			const char *user = i < N_CLIENTS ? all_clients[i] : NULL;
			struct tf_decision r = recv(set, user, topics[t]);
			struct tf_decision s = sub(set, user, topics[t]);

			if (r.verdict != s.verdict || r.rule != s.rule)
				fail_msg("%s on %s: receive %s rule %d, subscribe %s rule %d",
					user ? user : "(unidentified)", topics[t],
					tf_verdict_name(r.verdict), r.rule, tf_verdict_name(s.verdict),
					s.rule);
			if (s.verdict == TF_ALLOW) {
				allowed++;
				assert_ptr_equal(s.policy, r.policy);
			} else {
				denied++;
				assert_null(s.policy);
			}
			assert_non_null(s.reason);
			assert_true(s.reason[0] != '\0');
		}
	}
	/* Both answers occur, so the comparison above means something. */
	assert_true(allowed > 20);
	assert_true(denied > 20);
	EXPECT(sub(set, "maint-app", WATER_TOPIC), ALLOW, WATER, 0);
	EXPECT(sub(set, "ww-viewer", WATER_TOPIC), ALLOW, WATER, OWNER);
	EXPECT(sub(set, "other-app", WATER_TOPIC), DENY, NULL, NONE);
	tf_policy_set_free(set);
}

static void hash_subscription(void **state)
{
	struct tf_policy_set *set = BUILD(false, water);

	(void)state;
	/* Unidentified, default deny: nothing it could receive. */
	EXPECT(sub(set, NULL, "#"), DENY, NULL, NONE);
	EXPECT(sub(set, NULL, "+/+"), DENY, NULL, NONE);
	/* A consumer and the owner org can receive something under `#`. */
	EXPECT(sub(set, "maint-app", "#"), ALLOW, WATER, 0);
	EXPECT(sub(set, "ww-viewer", "#"), ALLOW, WATER, OWNER);
	/* No rights on anything. */
	EXPECT(sub(set, "other-app", "#"), DENY, NULL, NONE);
	EXPECT(sub(set, "other-app", "city/#"), DENY, NULL, NONE);
	EXPECT(sub(set, "maint-nopurpose", "city/#"), DENY, NULL, NONE);
	/* default allow: `#` reaches ungoverned topics. */
	set->default_allow = true;
	EXPECT(sub(set, NULL, "#"), ALLOW, NULL, NONE);
	EXPECT(sub(set, "other-app", "#"), ALLOW, NULL, NONE);
	EXPECT(sub(set, "other-app", "city/#"), ALLOW, NULL, NONE);
	tf_policy_set_free(set);

	/* A policy on `#` leaves nothing ungoverned. */
	set = BUILD(true, everything);
	EXPECT(sub(set, NULL, "#"), DENY, NULL, NONE);
	EXPECT(sub(set, "other-app", "#"), DENY, NULL, NONE);
	EXPECT(sub(set, "other-app", "a/b"), DENY, NULL, NONE);
	EXPECT(sub(set, "ww-viewer", "#"), ALLOW, "everything@1", OWNER);
	tf_policy_set_free(set);
}

static void covered_filters_are_denied_even_under_default_allow(void **state)
{
	struct tf_policy_set *set = BUILD(true, water);

	(void)state;
	/* Every topic these can match is water's, which other-app may not
	 * read. */
	EXPECT(sub(set, "other-app", "city/water/d1/telemetry"), DENY, NULL, NONE);
	EXPECT(sub(set, "other-app", "city/water/+/telemetry"), DENY, NULL, NONE);
	EXPECT(sub(set, NULL, "city/water/d1/telemetry"), DENY, NULL, NONE);
	EXPECT(sub(set, "maint-nopurpose", "city/water/+/telemetry"), DENY, NULL, NONE);
	/* The view is governed too. */
	EXPECT(sub(set, "other-app", "views/research-lab/#"), DENY, NULL, NONE);
	EXPECT(sub(set, "other-app", WATER_VIEW), DENY, NULL, NONE);
	/* These can also match ungoverned topics. */
	EXPECT(sub(set, "other-app", "city/#"), ALLOW, NULL, NONE);
	EXPECT(sub(set, "other-app", "city/water/#"), ALLOW, NULL, NONE);
	EXPECT(sub(set, "other-app", "city/+/d1/+"), ALLOW, NULL, NONE);
	EXPECT(sub(set, NULL, "views/#"), ALLOW, NULL, NONE);
	tf_policy_set_free(set);
}

/* A wildcard subscription is accepted only when one of the topics it can
 * match is governed by a policy that lets the client receive: a broad
 * policy that a narrower one shadows everywhere under the filter does
 * not count. */
static void shadowed_policies_do_not_admit_a_subscription(void **state)
{
	static const char broad[] =
		"{\"trustflow_policy\": 1, \"id\": \"broad\", \"version\": 1,"
		" \"owner\": \"city-waterworks\", \"topics\": [\"a/#\"],"
		" \"consumers\": [{\"orgs\": [\"other-co\"]}]}";
	static const char narrow[] =
		"{\"trustflow_policy\": 1, \"id\": \"narrow\", \"version\": 1,"
		" \"owner\": \"city-waterworks\", \"topics\": [\"a/+\", \"a\"]}";
	struct tf_policy_set *set = BUILD(false, broad, narrow);

	(void)state;
	/* Every topic of a/+ (and a itself) is narrow's, which other-co may
	 * not read: */
	EXPECT(sub(set, "vip", "a/+"), DENY, NULL, NONE);
	EXPECT(sub(set, "vip", "a"), DENY, NULL, NONE);
	EXPECT(sub(set, "ww-viewer", "a/+"), ALLOW, "narrow@1", OWNER);
	/* ...but deeper topics are broad's, which it may. */
	EXPECT(sub(set, "vip", "a/+/+"), ALLOW, "broad@1", 0);
	EXPECT(sub(set, "vip", "a/#"), ALLOW, "broad@1", 0);
	EXPECT(sub(set, "vip", "+/x/#"), ALLOW, "broad@1", 0);
	EXPECT(sub(set, "vip", "#"), ALLOW, "broad@1", 0);
	EXPECT(sub(set, "maint-app", "a/+/+"), DENY, NULL, NONE);
	tf_policy_set_free(set);
}

/* Under default_access allow, a filter whose every topic is governed
 * (by several policies together) reaches no ungoverned topic. */
static void filters_covered_by_several_policies_reach_nothing_ungoverned(void **state)
{
	static const char top[] =
		"{\"trustflow_policy\": 1, \"id\": \"top\", \"version\": 1,"
		" \"owner\": \"city-waterworks\", \"topics\": [\"a\"]}";
	static const char below[] =
		"{\"trustflow_policy\": 1, \"id\": \"below\", \"version\": 1,"
		" \"owner\": \"city-waterworks\", \"topics\": [\"a/+/#\"]}";
	struct tf_policy_set *set = BUILD(true, top, below);

	(void)state;
	EXPECT(sub(set, NULL, "a/#"), DENY, NULL, NONE);
	EXPECT(sub(set, "vip", "a/#"), DENY, NULL, NONE);
	EXPECT(sub(set, NULL, "a/b/c"), DENY, NULL, NONE);
	/* b/... is no one's: allowed. */
	EXPECT(sub(set, NULL, "+/#"), ALLOW, NULL, NONE);
	EXPECT(sub(set, NULL, "#"), ALLOW, NULL, NONE);
	tf_policy_set_free(set);
}

static void expired_rules_cannot_subscribe_future_ones_can(void **state)
{
	struct tf_policy_set *set = BUILD(false, water, timed);

	(void)state;
	/* maint-app's only right on water expires at WATER_EXPIRY. */
	EXPECT(sub_at(set, "maint-app", "city/water/+/telemetry", WATER_EXPIRY - 1), ALLOW, WATER, 0);
	EXPECT(sub_at(set, "maint-app", "city/water/+/telemetry", WATER_EXPIRY), DENY, NULL, NONE);
	EXPECT(sub_at(set, "maint-app", WATER_TOPIC, WATER_EXPIRY + DAY_MS), DENY, NULL, NONE);
	EXPECT(sub_at(set, "maint-app", "city/#", WATER_EXPIRY + DAY_MS), DENY, NULL, NONE);
	/* The timed rule is not in force yet, but will be. */
	EXPECT(sub_at(set, "maint-nopurpose", "timed/#", TIMED_FROM - DAY_MS), ALLOW, TIMED, 0);
	EXPECT(sub_at(set, "maint-nopurpose", "timed/x", TIMED_FROM - 1), ALLOW, TIMED, 0);
	EXPECT(sub_at(set, "maint-nopurpose", "timed/x", TIMED_FROM), ALLOW, TIMED, 0);
	EXPECT(sub_at(set, "maint-nopurpose", "timed/x", TIMED_UNTIL), DENY, NULL, NONE);
	/* Receiving before not_before is still withheld. */
	EXPECT(recv_at(set, "maint-nopurpose", "timed/x", TIMED_FROM - 1, TIMED_FROM - 1),
		DENY, TIMED, NONE);
	tf_policy_set_free(set);
}

static void shared_subscriptions_are_decided_on_their_filter(void **state)
{
	struct tf_policy_set *set = BUILD(false, water);

	(void)state;
	EXPECT(sub(set, "maint-app", "$share/group/city/water/+/telemetry"), ALLOW, WATER, 0);
	EXPECT(sub(set, "ww-viewer", "$share/g/#"), ALLOW, WATER, OWNER);
	EXPECT(sub(set, "other-app", "$share/group/city/water/+/telemetry"), DENY, NULL, NONE);
	EXPECT(sub(set, NULL, "$share/g/#"), DENY, NULL, NONE);
	EXPECT_VIEW(sub(set, "lab-bot", "$share/g/views/research-lab/#"), ALLOW, WATER, 1, true);
	EXPECT(sub(set, NULL, "$share/g/$trustflow/keys/#"), ALLOW, NULL, NONE);
	EXPECT(sub(set, "ww-viewer", "$share/g/$trustflow/alerts/#"), DENY, NULL, NONE);
	EXPECT(sub(set, "ww-viewer", "$share/g/$SYS/#"), DEFER, NULL, NONE);
	/* No filter after the group. */
	EXPECT(sub(set, "maint-app", "$share/x"), DENY, NULL, NONE);
	EXPECT(sub(set, "ops-admin", "$share/group"), DENY, NULL, NONE);
	set->default_allow = true;
	EXPECT(sub(set, "maint-app", "$share/x"), DENY, NULL, NONE);
	EXPECT(sub(set, "other-app", "$share/g/free/#"), ALLOW, NULL, NONE);
	tf_policy_set_free(set);
}

static void view_subscriptions_are_for_the_view_rule(void **state)
{
	struct tf_policy_set *set = BUILD(false, water);

	(void)state;
	EXPECT_VIEW(sub(set, "lab-bot", "views/research-lab/#"), ALLOW, WATER, 1, true);
	EXPECT_VIEW(sub(set, "lab-bot", WATER_VIEW), ALLOW, WATER, 1, true);
	EXPECT_VIEW(sub(set, "lab-bot", "views/research-lab/city/water/+/telemetry"), ALLOW, WATER,
		1, true);
	/* Not the originals. */
	EXPECT(sub(set, "lab-bot", "city/water/+/telemetry"), DENY, NULL, NONE);
	EXPECT(sub(set, "lab-bot", WATER_TOPIC), DENY, NULL, NONE);
	EXPECT(sub(set, "lab-bot", "city/#"), DENY, NULL, NONE);
	/* Nor the view to the owner org or other consumers. */
	EXPECT(sub(set, "ww-viewer", "views/research-lab/#"), DENY, NULL, NONE);
	EXPECT(sub(set, "maint-app", "views/research-lab/#"), DENY, NULL, NONE);
	EXPECT(sub(set, NULL, "views/research-lab/#"), DENY, NULL, NONE);
	tf_policy_set_free(set);
}

static void trustflow_subscriptions(void **state)
{
	struct tf_policy_set *set = BUILD(false, water);

	(void)state;
	/* `$trustflow/#` reaches the keys, which everyone may read. */
	for (size_t i = 0; i < N_CLIENTS; i++) {
		EXPECT(sub(set, all_clients[i], "$trustflow/#"), ALLOW, NULL, NONE);
		EXPECT(sub(set, all_clients[i], "$trustflow/keys/#"), ALLOW, NULL, NONE);
		EXPECT(sub(set, all_clients[i], "$trustflow/checkpoints"), ALLOW, NULL, NONE);
		EXPECT(sub(set, all_clients[i], "$trustflow/secret"), DENY, NULL, NONE);
	}
	EXPECT(sub(set, NULL, "$trustflow/#"), ALLOW, NULL, NONE);
	EXPECT(sub(set, NULL, "$trustflow/keys/+"), ALLOW, NULL, NONE);
	EXPECT(sub(set, NULL, "$trustflow/checkpoints"), ALLOW, NULL, NONE);
	/* Alerts: administrators and data stewards (each alert is decided
	 * again on delivery). */
	EXPECT(sub(set, "ops-admin", "$trustflow/alerts/#"), ALLOW, NULL, NONE);
	EXPECT(sub(set, "ww-steward", "$trustflow/alerts/#"), ALLOW, NULL, NONE);
	EXPECT(sub(set, "ww-steward", "$trustflow/alerts/water-telemetry"), ALLOW, NULL, NONE);
	EXPECT(sub(set, "ww-viewer", "$trustflow/alerts/#"), DENY, NULL, NONE);
	EXPECT(sub(set, "maint-app", "$trustflow/alerts/water-telemetry"), DENY, NULL, NONE);
	EXPECT(sub(set, NULL, "$trustflow/alerts/#"), DENY, NULL, NONE);
	EXPECT(sub(set, "ops-admin", "$trustflow/secret/#"), DENY, NULL, NONE);
	tf_policy_set_free(set);
}

static void verdict_names(void **state)
{
	(void)state;
	assert_string_equal(tf_verdict_name(TF_ALLOW), "allow");
	assert_string_equal(tf_verdict_name(TF_DENY), "deny");
	assert_string_equal(tf_verdict_name(TF_DEFER), "defer");
}

/* ==== scale ==== */

#define SCALE_ORGS     1000
#define SCALE_POLICIES 10000
#define SCALE_CLIENTS  20000
#define SCALE_ROLES    20

/* Client j: org o<j % 1000>, role r<j / 1000>.
 * Policy p<i>: owner o<i % 1000>, topics t/<i>/+, consumers
 *   0: clients [c<2i mod 20000>]
 *   1: orgs [o<(i + 1) % 1000>], roles [r<i % 20>] */
static int scale_expected_rule(uint32_t i, uint32_t j, bool *allowed)
{
	*allowed = true;
	if (j % SCALE_ORGS == i % SCALE_ORGS)
		return TF_RULE_OWNER_ORG;
	if (j == (2 * i) % SCALE_CLIENTS)
		return 0;
	if (j % SCALE_ORGS == (i + 1) % SCALE_ORGS && j / 1000 == i % SCALE_ROLES)
		return 1;
	*allowed = false;
	return TF_RULE_NONE;
}

static struct tf_identities *scale_identities(void)
{
	cJSON *root = cJSON_CreateObject(), *orgs, *clients;
	struct tf_identities *ids = NULL;
	struct tf_err err;
	struct tf_jctx c;
	char name[32];

	assert_non_null(root);
	cJSON_AddNumberToObject(root, "trustflow_identities", 1);
	orgs = cJSON_AddObjectToObject(root, "organizations");
	clients = cJSON_AddObjectToObject(root, "clients");
	assert_non_null(orgs);
	assert_non_null(clients);
	for (uint32_t o = 0; o < SCALE_ORGS; o++) {
		snprintf(name, sizeof(name), "o%u", o);
		cJSON_AddItemToObject(orgs, name, cJSON_CreateObject());
	}
	for (uint32_t j = 0; j < SCALE_CLIENTS; j++) {
		cJSON *client = cJSON_CreateObject(), *roles = cJSON_CreateArray();

		assert_non_null(client);
		assert_non_null(roles);
		snprintf(name, sizeof(name), "o%u", j % SCALE_ORGS);
		cJSON_AddStringToObject(client, "org", name);
		snprintf(name, sizeof(name), "r%u", j / 1000);
		cJSON_AddItemToArray(roles, cJSON_CreateString(name));
		cJSON_AddItemToObject(client, "roles", roles);
		snprintf(name, sizeof(name), "c%u", j);
		cJSON_AddItemToObject(clients, name, client);
	}
	tf_jctx_init(&c, "scale-identities.json", &err);
	if (tf_identities_from_json(&c, root, &ids) != TF_OK)
		fail_msg("%s", err.msg);
	cJSON_Delete(root);
	assert_int_equal(tf_identities_client_count(ids), SCALE_CLIENTS);
	return ids;
}

static void scale_decisions_are_right(void **state)
{
	char **texts = calloc(SCALE_POLICIES, sizeof(*texts));
	struct tf_identities *ids = scale_identities();
	struct tf_policy_set *set;
	uint64_t rnd = 88172645463325252ULL;
	unsigned allowed = 0, denied = 0;

	(void)state;
	assert_non_null(texts);
	for (uint32_t i = 0; i < SCALE_POLICIES; i++) {
		texts[i] = malloc(512);
		assert_non_null(texts[i]);
		snprintf(texts[i], 512,
			"{\"trustflow_policy\": 1, \"id\": \"p%u\", \"version\": 1, \"owner\": \"o%u\","
			" \"topics\": [\"t/%u/+\"], \"consumers\": [{\"clients\": [\"c%u\"]},"
			" {\"orgs\": [\"o%u\"], \"roles\": [\"r%u\"]}]}",
			i, i % SCALE_ORGS, i, (2 * i) % SCALE_CLIENTS, (i + 1) % SCALE_ORGS,
			i % SCALE_ROLES);
	}
	set = build_with(ids, (const char *const *)texts, SCALE_POLICIES, false);
	for (uint32_t i = 0; i < SCALE_POLICIES; i++)
		free(texts[i]);
	free(texts);
	assert_int_equal(set->n_policies, SCALE_POLICIES);

	for (uint32_t s = 0; s < 4000; s++) {
		uint32_t i, j, pick;
		char topic[64], filter[64], label[32], user[32];
		struct tf_decision d;
		bool allow;
		int rule;

		/* xorshift64 */
		rnd ^= rnd << 13;
		rnd ^= rnd >> 7;
		rnd ^= rnd << 17;
		i = (uint32_t)(rnd % SCALE_POLICIES);
		pick = (uint32_t)((rnd >> 32) % 4);
		switch (pick) {
		case 0:  j = i % SCALE_ORGS + 1000 * (uint32_t)((rnd >> 40) % SCALE_ROLES); break;
		case 1:  j = (2 * i) % SCALE_CLIENTS; break;
		case 2:  j = (i + 1) % SCALE_ORGS + 1000 * (i % SCALE_ROLES); break;
		default: j = (uint32_t)((rnd >> 20) % SCALE_CLIENTS); break;
		}
		rule = scale_expected_rule(i, j, &allow);
		snprintf(topic, sizeof(topic), "t/%u/x", i);
		snprintf(filter, sizeof(filter), "t/%u/#", i);
		snprintf(label, sizeof(label), "p%u@1", i);
		snprintf(user, sizeof(user), "c%u", j);

		d = recv(set, user, topic);
		if (allow)
			allowed++;
		else
			denied++;
		expect_decision(&d, allow ? TF_ALLOW : TF_DENY, label, rule, topic, (int)s);
		d = sub(set, user, filter);
		expect_decision(&d, allow ? TF_ALLOW : TF_DENY, allow ? label : NULL, rule, filter,
			(int)s);
		d = pub(set, user, topic);
		if (rule == TF_RULE_OWNER_ORG)
			expect_decision(&d, TF_ALLOW, label, TF_RULE_OWNER_ORG, topic, (int)s);
		else
			expect_decision(&d, TF_DENY, label, TF_RULE_NONE, topic, (int)s);
	}
	/* The sample exercised every kind of answer. */
	assert_true(allowed > 1000);
	assert_true(denied > 100);

	/* Every client can read something of its own org's. */
	{
		struct tf_decision d = sub(set, "c12345", "t/+/x");

		assert_int_equal(d.verdict, TF_ALLOW);
		assert_non_null(d.policy);
	}
	EXPECT(sub(set, NULL, "t/+/x"), DENY, NULL, NONE);
	EXPECT(recv(set, "c1", "t/10000/x"), DENY, NULL, NONE);
	EXPECT(recv(set, "c1", "t/1"), DENY, NULL, NONE);
	EXPECT(recv(set, "c1", "t/1/x"), ALLOW, "p1@1", OWNER);
	EXPECT(recv(set, "c2", "t/1/x"), ALLOW, "p1@1", 0);
	tf_policy_set_free(set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(publish_needs_a_publishers_match),
		cmocka_unit_test(publishers_of_another_org_need_orgs),
		cmocka_unit_test(publish_without_publishers_is_for_the_owner_org),
		cmocka_unit_test(publish_by_unidentified_is_denied),
		cmocka_unit_test(publish_on_a_view_is_denied_to_everyone),
		cmocka_unit_test(publish_on_ungoverned_topics_follows_default_access),
		cmocka_unit_test(publish_under_trustflow_is_denied_to_everyone),
		cmocka_unit_test(publish_on_the_control_topic_is_for_operators),
		cmocka_unit_test(publish_on_other_dollar_topics_is_deferred),
		cmocka_unit_test(owner_org_always_receives),
		cmocka_unit_test(owner_receives_false_narrows_the_owner_org),
		cmocka_unit_test(receives_under_agrees_with_receive),
		cmocka_unit_test(consumer_rule_keys_must_all_match),
		cmocka_unit_test(empty_selector_matches_every_identified_client),
		cmocka_unit_test(consumer_rules_hold_between_not_before_and_not_after),
		cmocka_unit_test(date_windows_hold_through_their_last_day),
		cmocka_unit_test(fields_rule_receives_only_its_view),
		cmocka_unit_test(a_refusal_names_what_failed_under_the_closest_rule),
		cmocka_unit_test(the_closest_rule_is_the_one_the_client_nearly_meets),
		cmocka_unit_test(a_view_refusal_names_its_rule_s_condition),
		cmocka_unit_test(explanations_are_bounded),
		cmocka_unit_test(retention_withholds_old_and_undated_messages),
		cmocka_unit_test(views_are_not_subject_to_the_receive_time_check),
		cmocka_unit_test(unidentified_clients_never_receive_governed_data),
		cmocka_unit_test(the_most_specific_policy_decides),
		cmocka_unit_test(trustflow_public_topics_are_readable_by_everyone),
		cmocka_unit_test(alerts_are_for_admins_and_the_owners_stewards),
		cmocka_unit_test(metrics_are_for_admins_and_the_owners_stewards),
		cmocka_unit_test(published_policies_are_for_admins_and_the_owners_stewards),
		cmocka_unit_test(other_trustflow_topics_are_not_readable),
		cmocka_unit_test(control_responses_are_for_operators),
		cmocka_unit_test(other_dollar_topics_are_deferred),
		cmocka_unit_test(exact_topic_subscription_is_decided_as_receive),
		cmocka_unit_test(hash_subscription),
		cmocka_unit_test(shadowed_policies_do_not_admit_a_subscription),
		cmocka_unit_test(filters_covered_by_several_policies_reach_nothing_ungoverned),
		cmocka_unit_test(covered_filters_are_denied_even_under_default_allow),
		cmocka_unit_test(expired_rules_cannot_subscribe_future_ones_can),
		cmocka_unit_test(shared_subscriptions_are_decided_on_their_filter),
		cmocka_unit_test(view_subscriptions_are_for_the_view_rule),
		cmocka_unit_test(trustflow_subscriptions),
		cmocka_unit_test(verdict_names),
		cmocka_unit_test(scale_decisions_are_right),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
