/* Unit tests for broker/guard/alerts.c: folding repeats, keeping the recent
 * alerts, their JSON and their topic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "broker/guard/alerts.h"

static struct tf_alert alert_at(int64_t ts, const char *policy)
{
	struct tf_alert a = { "019ac008e6005f1e2d3c4b5a69780123", ts, "rate-anomaly", policy,
		"city-waterworks", "ww-sensor-01", "10x its usual rate", "quarantine" };

	return a;
}

static void repeats_are_folded_for_a_second(void **state)
{
	struct tf_alerts *a = tf_alerts_new();
	uint32_t folded;

	(void)state;
	assert_true(tf_alerts_admit(a, "limit-exceeded", "p@1", "c1", 1000, &folded));
	assert_int_equal(folded, 0);
	assert_false(tf_alerts_admit(a, "limit-exceeded", "p@1", "c1", 1500, &folded));
	assert_false(tf_alerts_admit(a, "limit-exceeded", "p@1", "c1", 1999, &folded));
	/* Another kind, policy or client is another flow. */
	assert_true(tf_alerts_admit(a, "schema-violation", "p@1", "c1", 1999, &folded));
	assert_true(tf_alerts_admit(a, "limit-exceeded", "q@1", "c1", 1999, &folded));
	assert_true(tf_alerts_admit(a, "limit-exceeded", "p@1", "c2", 1999, &folded));
	assert_true(tf_alerts_admit(a, "limit-exceeded", "p@1", "c1", 2000, &folded));
	assert_int_equal(folded, 2);
	tf_alerts_free(a);
}

/* Anonymous clients under ever new client ids raise alerts of ever new
 * flows: the folds kept stay bounded, and a busy flow keeps folding. */
static void folds_of_idle_flows_go(void **state)
{
	struct tf_alerts *a = tf_alerts_new();
	uint32_t folded;
	char client[32];

	(void)state;
	assert_true(tf_alerts_admit(a, "denied-publish", "", "busy", 0, &folded));
	for (int64_t i = 0; i < 500000; i++) {
		snprintf(client, sizeof(client), "anon-%lld", (long long)i);
		assert_true(tf_alerts_admit(a, "denied-publish", "", client, i, &folded));
		if (i % 500 == 0)
			(void)tf_alerts_admit(a, "denied-publish", "", "busy", i, &folded);
		assert_true(tf_alerts_folds(a) <= 2 * 65536);
	}
	/* The busy flow was never idle for a second: still folding. */
	assert_false(tf_alerts_admit(a, "denied-publish", "", "busy", 499999, &folded));
	tf_alerts_free(a);
}

struct seen {
	int n;
	int64_t first, last;
};

static void count(void *ctx, const struct tf_alert *alert, uint64_t position)
{
	struct seen *s = ctx;

	/* Alert i (from 1) was kept at position i - 1. */
	assert_true(position == (uint64_t)alert->ts_ms - 1);

	if (s->n++ == 0)
		s->first = alert->ts_ms;
	s->last = alert->ts_ms;
	assert_string_equal(alert->client, "ww-sensor-01");
}

static void the_latest_alerts_are_kept_in_order(void **state)
{
	struct tf_alerts *a = tf_alerts_new();
	struct seen s = { 0, 0, 0 };

	(void)state;
	for (int64_t i = 1; i <= TF_ALERTS_KEPT + 10; i++) {
		struct tf_alert al = alert_at(i, "water-telemetry@3");

		assert_true(tf_alerts_keep(a, &al));
	}
	tf_alerts_each(a, 0, 0, count, &s);
	assert_int_equal(s.n, TF_ALERTS_KEPT);
	assert_true(s.first == 11 && s.last == TF_ALERTS_KEPT + 10);
	s = (struct seen){ 0, 0, 0 };
	tf_alerts_each(a, TF_ALERTS_KEPT + 6, 0, count, &s);
	assert_int_equal(s.n, 5);
	/* From a position: the ones kept there and after, and the position of
	 * one gone (the first ten) starts at the oldest kept. */
	s = (struct seen){ 0, 0, 0 };
	tf_alerts_each(a, 0, TF_ALERTS_KEPT + 7, count, &s);
	assert_true(s.n == 3 && s.first == TF_ALERTS_KEPT + 8);
	s = (struct seen){ 0, 0, 0 };
	tf_alerts_each(a, 0, 3, count, &s);
	assert_true(s.n == TF_ALERTS_KEPT && s.first == 11);
	tf_alerts_free(a);
}

static void json_and_topic(void **state)
{
	struct tf_alert al = alert_at(1764158400000LL, "water-telemetry@3");
	struct tf_alert none = alert_at(1, "");
	char topic[100];
	cJSON *o = tf_alert_json(&al);

	(void)state;
	assert_non_null(o);
	assert_string_equal(cJSON_GetObjectItem(o, "kind")->valuestring, "rate-anomaly");
	assert_string_equal(cJSON_GetObjectItem(o, "policy")->valuestring, "water-telemetry@3");
	assert_string_equal(cJSON_GetObjectItem(o, "action")->valuestring, "quarantine");
	assert_true(cJSON_GetObjectItem(o, "ts")->valuedouble == 1764158400000.0);
	cJSON_Delete(o);
	o = tf_alert_json(&none);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "policy")));
	cJSON_Delete(o);
	tf_alert_topic(&al, topic, sizeof(topic));
	assert_string_equal(topic, "$trustflow/alerts/water-telemetry");
	tf_alert_topic(&none, topic, sizeof(topic));
	assert_string_equal(topic, "$trustflow/alerts/-");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(repeats_are_folded_for_a_second),
		cmocka_unit_test(folds_of_idle_flows_go),
		cmocka_unit_test(the_latest_alerts_are_kept_in_order),
		cmocka_unit_test(json_and_topic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
