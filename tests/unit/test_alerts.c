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

/* Admits an alert of kind about policy by client at now, its detail
 * "detail <now>" (a static buffer: one at a time). */
static bool admit(struct tf_alerts *a, const char *kind, const char *policy,
		const char *client, int64_t now, uint32_t *folded)
{
	static char detail[40];
	struct tf_alert al = { "", now, kind, policy, "city-waterworks", client, detail, "drop" };

	snprintf(detail, sizeof(detail), "detail %lld", (long long)now);
	return tf_alerts_admit(a, &al, folded);
}

/* What tf_alerts_flush reported: how many times, the last one. */
struct flushed {
	int n, quiet;   /* reports, those about client "quiet" */
	uint32_t folded;
	char kind[40], policy[40], org[40], client[40], detail[40], action[40];
	int64_t ts;
};

static void note_flushed(void *ctx, const struct tf_alert *last, uint32_t folded)
{
	struct flushed *f = ctx;

	f->n++;
	f->quiet += strcmp(last->client, "quiet") == 0;
	f->folded = folded;
	f->ts = last->ts_ms;
	snprintf(f->kind, sizeof(f->kind), "%s", last->kind);
	snprintf(f->policy, sizeof(f->policy), "%s", last->policy);
	snprintf(f->org, sizeof(f->org), "%s", last->org);
	snprintf(f->client, sizeof(f->client), "%s", last->client);
	snprintf(f->detail, sizeof(f->detail), "%s", last->detail);
	snprintf(f->action, sizeof(f->action), "%s", last->action);
}

/* Alerts folded in a window no new alert came after are reported once
 * the window ends, once, like the last one folded. */
static void folded_alerts_are_reported_after_the_window(void **state)
{
	struct tf_alerts *a = tf_alerts_new();
	struct flushed f = { 0 };
	uint32_t folded;

	(void)state;
	assert_true(admit(a, "limit-exceeded", "p@1", "c1", 1000, &folded));
	for (int64_t t = 1100; t <= 1400; t += 100)
		assert_false(admit(a, "limit-exceeded", "p@1", "c1", t, &folded));
	/* Not before the window ends. */
	tf_alerts_flush(a, 1999, 64, note_flushed, &f);
	assert_int_equal(f.n, 0);
	tf_alerts_flush(a, 2000, 64, note_flushed, &f);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.folded, 4);
	assert_true(f.ts == 2000);
	assert_string_equal(f.kind, "limit-exceeded");
	assert_string_equal(f.policy, "p@1");
	assert_string_equal(f.org, "city-waterworks");
	assert_string_equal(f.client, "c1");
	assert_string_equal(f.detail, "detail 1400");
	assert_string_equal(f.action, "drop");
	/* Not twice. */
	tf_alerts_flush(a, 5000, 64, note_flushed, &f);
	assert_int_equal(f.n, 1);
	tf_alerts_free(a);
}

/* The report starts a window: what follows within it folds into it. */
static void a_report_starts_a_window(void **state)
{
	struct tf_alerts *a = tf_alerts_new();
	struct flushed f = { 0 };
	uint32_t folded;

	(void)state;
	assert_true(admit(a, "leak", "p@1", "c1", 1000, &folded));
	assert_false(admit(a, "leak", "p@1", "c1", 1500, &folded));
	tf_alerts_flush(a, 2100, 64, note_flushed, &f);
	assert_int_equal(f.n, 1);
	assert_false(admit(a, "leak", "p@1", "c1", 2500, &folded));
	tf_alerts_flush(a, 3099, 64, note_flushed, &f);
	assert_int_equal(f.n, 1);
	tf_alerts_flush(a, 3100, 64, note_flushed, &f);
	assert_true(f.n == 2 && f.folded == 1);
	assert_string_equal(f.detail, "detail 2500");
	tf_alerts_free(a);
}

/* A new alert after the window mentions the folded ones: no report. */
static void a_new_alert_reports_them_instead(void **state)
{
	struct tf_alerts *a = tf_alerts_new();
	struct flushed f = { 0 };
	uint32_t folded;

	(void)state;
	assert_true(admit(a, "limit-exceeded", "p@1", "c1", 1000, &folded));
	assert_false(admit(a, "limit-exceeded", "p@1", "c1", 1500, &folded));
	assert_false(admit(a, "limit-exceeded", "p@1", "c1", 1600, &folded));
	assert_true(admit(a, "limit-exceeded", "p@1", "c1", 2000, &folded));
	assert_int_equal(folded, 2);
	tf_alerts_flush(a, 3000, 64, note_flushed, &f);
	assert_int_equal(f.n, 0);
	tf_alerts_free(a);
}

/* Each call looks at budget flows at most; the rest come later, each once. */
static void flushing_is_bounded_per_call(void **state)
{
	struct tf_alerts *a = tf_alerts_new();
	struct flushed f = { 0 };
	uint32_t folded;
	char client[32];

	(void)state;
	for (int i = 0; i < 100; i++) {
		snprintf(client, sizeof(client), "c%d", i);
		assert_true(admit(a, "replay", "p@1", client, 1000, &folded));
		assert_false(admit(a, "replay", "p@1", client, 1001, &folded));
	}
	tf_alerts_flush(a, 2000, 30, note_flushed, &f);
	assert_int_equal(f.n, 30);
	tf_alerts_flush(a, 2000, 30, note_flushed, &f);
	tf_alerts_flush(a, 2000, 30, note_flushed, &f);
	tf_alerts_flush(a, 2000, 30, note_flushed, &f);
	tf_alerts_flush(a, 2000, 30, note_flushed, &f);
	assert_int_equal(f.n, 100);
	tf_alerts_free(a);
}

static void repeats_are_folded_for_a_second(void **state)
{
	struct tf_alerts *a = tf_alerts_new();
	uint32_t folded;

	(void)state;
	assert_true(admit(a, "limit-exceeded", "p@1", "c1", 1000, &folded));
	assert_int_equal(folded, 0);
	assert_false(admit(a, "limit-exceeded", "p@1", "c1", 1500, &folded));
	assert_false(admit(a, "limit-exceeded", "p@1", "c1", 1999, &folded));
	/* Another kind, policy or client is another flow. */
	assert_true(admit(a, "schema-violation", "p@1", "c1", 1999, &folded));
	assert_true(admit(a, "limit-exceeded", "q@1", "c1", 1999, &folded));
	assert_true(admit(a, "limit-exceeded", "p@1", "c2", 1999, &folded));
	assert_true(admit(a, "limit-exceeded", "p@1", "c1", 2000, &folded));
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
	assert_true(admit(a, "denied-publish", "", "busy", 0, &folded));
	for (int64_t i = 0; i < 500000; i++) {
		snprintf(client, sizeof(client), "anon-%lld", (long long)i);
		assert_true(admit(a, "denied-publish", "", client, i, &folded));
		if (i % 500 == 0)
			(void)admit(a, "denied-publish", "", "busy", i, &folded);
		assert_true(tf_alerts_folds(a) <= 2 * 65536);
	}
	/* The busy flow was never idle for a second: still folding. */
	assert_false(admit(a, "denied-publish", "", "busy", 499999, &folded));
	tf_alerts_free(a);
}

/* A quiet flow with folded alerts keeps its fold while idle ones go (to
 * be reported), and flows with folded alerts stay bounded too. */
static void folds_of_pending_flows_stay(void **state)
{
	struct tf_alerts *a = tf_alerts_new();
	struct flushed f = { 0 };
	uint32_t folded;
	char client[32];

	(void)state;
	assert_true(admit(a, "denied-publish", "", "quiet", 0, &folded));
	assert_false(admit(a, "denied-publish", "", "quiet", 1, &folded));
	for (int64_t i = 0; i < 300000; i++) {
		snprintf(client, sizeof(client), "anon-%lld", (long long)i);
		assert_true(admit(a, "denied-publish", "", client, i, &folded));
		/* Every one folds one: all wait for a flush that never comes. */
		assert_false(admit(a, "denied-publish", "", client, i, &folded));
		assert_true(tf_alerts_folds(a) <= 2 * 65536 + TF_ALERTS_PENDING_MAX);
	}
	for (int i = 0; i < 2000 && f.n < TF_ALERTS_PENDING_MAX; i++)
		tf_alerts_flush(a, 400000, 64, note_flushed, &f);
	assert_int_equal(f.n, TF_ALERTS_PENDING_MAX);
	/* The quiet one and the first of the others: the list is full. */
	assert_int_equal(f.quiet, 1);
	tf_alerts_flush(a, 400000, 64, note_flushed, &f);
	assert_int_equal(f.n, TF_ALERTS_PENDING_MAX);
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
		cmocka_unit_test(folded_alerts_are_reported_after_the_window),
		cmocka_unit_test(a_report_starts_a_window),
		cmocka_unit_test(a_new_alert_reports_them_instead),
		cmocka_unit_test(flushing_is_bounded_per_call),
		cmocka_unit_test(folds_of_pending_flows_stay),
		cmocka_unit_test(the_latest_alerts_are_kept_in_order),
		cmocka_unit_test(json_and_topic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
