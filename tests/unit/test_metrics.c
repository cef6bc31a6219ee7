/* Unit tests for broker/engine/metrics.c: counters broker-wide and per
 * policy, the last minute's and hour's windows as time passes, who
 * received a policy's data, the bound on recipients, and forgetting a
 * policy that left the set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/engine/metrics.h"

/* A time in the middle of a minute and of a 10-second span. */
#define T0 (1764158400000 + 5000)

static cJSON *broker_json(const struct tf_metrics *m)
{
	cJSON *o = cJSON_CreateObject();

	assert_true(tf_metrics_broker_json(m, o));
	return o;
}

static cJSON *policy_json(struct tf_metrics *m, const char *id, int64_t now)
{
	cJSON *o = cJSON_CreateObject();

	assert_true(tf_metrics_policy_json(m, id, now, o));
	return o;
}

/* The number at a path of members ("messages", "stamped", NULL); -1 when
 * absent. */
static double number_at(const cJSON *o, ...)
{
	va_list ap;
	const char *name;

	va_start(ap, o);
	while (o != NULL && (name = va_arg(ap, const char *)) != NULL)
		o = cJSON_GetObjectItemCaseSensitive(o, name);
	va_end(ap);
	return cJSON_IsNumber(o) ? o->valuedouble : -1;
}

/* The deliveries of the listed item whose member key is value, in the
 * list window.member; -1 when not listed. */
static double listed(const cJSON *o, const char *window, const char *member, const char *key,
		const char *value)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(o, window), member);
	const cJSON *item;

	cJSON_ArrayForEach(item, list) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, key);

		if (cJSON_IsString(v) && strcmp(v->valuestring, value) == 0)
			return number_at(item, "deliveries", NULL);
	}
	return -1;
}

static void test_counts_broker_wide_and_per_policy(void **state)
{
	struct tf_metrics *m = tf_metrics_new(T0);
	cJSON *all, *p;

	(void)state;
	assert_non_null(m);
	tf_metrics_add(m, "water", TF_METRIC_STAMPED, 3, T0);
	tf_metrics_add(m, NULL, TF_METRIC_STAMPED, 2, T0);
	tf_metrics_add(m, "water", TF_METRIC_WITHHELD, 1, T0);
	tf_metrics_add(m, "water", TF_METRIC_QUARANTINED, 1, T0);
	tf_metrics_refused(m, "water", TF_REFUSED_DENIED, T0);
	tf_metrics_refused(m, "water", TF_REFUSED_DENIED, T0);
	tf_metrics_refused(m, NULL, TF_REFUSED_BLOCKED, T0);
	tf_metrics_alert(m, "water", "rate-anomaly", T0);
	tf_metrics_alert(m, NULL, "reload-failed", T0);

	all = broker_json(m);
	assert_true(number_at(all, "since", NULL) == T0);
	assert_true(number_at(all, "messages", "stamped", NULL) == 5);
	assert_true(number_at(all, "messages", "withheld", NULL) == 1);
	assert_true(number_at(all, "messages", "quarantined", NULL) == 1);
	assert_true(number_at(all, "messages", "delivered", NULL) == 0);
	assert_true(number_at(all, "messages", "refused", "denied", NULL) == 2);
	assert_true(number_at(all, "messages", "refused", "blocked", NULL) == 1);
	assert_true(number_at(all, "alerts", "rate-anomaly", NULL) == 1);
	assert_true(number_at(all, "alerts", "reload-failed", NULL) == 1);

	p = policy_json(m, "water", T0);
	assert_true(number_at(p, "messages", "stamped", NULL) == 3);
	assert_true(number_at(p, "messages", "refused", "denied", NULL) == 2);
	/* Reasons and kinds that never happened under it are left out. */
	assert_true(number_at(p, "messages", "refused", "blocked", NULL) == -1);
	assert_true(number_at(p, "alerts", "reload-failed", NULL) == -1);
	assert_true(number_at(p, "last_minute", "messages", NULL) == 3);
	assert_true(number_at(p, "last_hour", "messages", NULL) == 3);
	cJSON_Delete(all);
	cJSON_Delete(p);
	tf_metrics_free(m);
}

static void test_recipients_in_the_last_minute_and_hour(void **state)
{
	struct tf_metrics *m = tf_metrics_new(T0);
	cJSON *p;

	(void)state;
	for (int i = 0; i < 3; i++)
		tf_metrics_delivered(m, "water", "maint-co", "maint-app", T0);
	tf_metrics_delivered(m, "water", "city-waterworks", "ww-dashboard", T0);
	tf_metrics_delivered(m, "water", "maint-co", "maint-van", T0 + 30000);

	p = policy_json(m, "water", T0 + 30000);
	assert_true(number_at(p, "messages", "delivered", NULL) == 5);
	assert_true(number_at(p, "last_minute", "deliveries", NULL) == 5);
	assert_true(listed(p, "last_minute", "clients", "client", "maint-app") == 3);
	assert_true(listed(p, "last_minute", "clients", "client", "maint-van") == 1);
	assert_true(listed(p, "last_minute", "orgs", "org", "maint-co") == 4);
	assert_true(listed(p, "last_minute", "orgs", "org", "city-waterworks") == 1);
	/* Most first. */
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(p, "last_minute"), "clients"), 0)->child->valuestring,
		"maint-app");
	cJSON_Delete(p);

	/* 70 s on, the first deliveries have left the minute, not the hour. */
	p = policy_json(m, "water", T0 + 70000);
	assert_true(number_at(p, "last_minute", "deliveries", NULL) == 1);
	assert_true(listed(p, "last_minute", "clients", "client", "maint-app") == -1);
	assert_true(listed(p, "last_minute", "clients", "client", "maint-van") == 1);
	assert_true(listed(p, "last_hour", "clients", "client", "maint-app") == 3);
	assert_true(number_at(p, "last_hour", "deliveries", NULL) == 5);
	cJSON_Delete(p);

	/* An hour and a bit later, nothing is in either window, and the
	 * idle recipients are dropped. */
	p = policy_json(m, "water", T0 + 3700000);
	assert_true(number_at(p, "last_hour", "deliveries", NULL) == 0);
	assert_true(listed(p, "last_hour", "clients", "client", "maint-van") == -1);
	assert_true(number_at(p, "messages", "delivered", NULL) == 5);
	cJSON_Delete(p);

	/* Counted again after the drop. */
	tf_metrics_delivered(m, "water", "maint-co", "maint-app", T0 + 3700000);
	p = policy_json(m, "water", T0 + 3700000);
	assert_true(listed(p, "last_minute", "clients", "client", "maint-app") == 1);
	cJSON_Delete(p);
	tf_metrics_free(m);
}

static void test_window_spans_roll_over(void **state)
{
	struct tf_metrics *m = tf_metrics_new(T0);
	cJSON *p;

	(void)state;
	/* One message every 10 s for two minutes: the minute holds the last
	 * six spans. */
	for (int i = 0; i < 12; i++)
		tf_metrics_add(m, "water", TF_METRIC_STAMPED, 1, T0 + i * 10000);
	p = policy_json(m, "water", T0 + 11 * 10000);
	assert_true(number_at(p, "last_minute", "messages", NULL) == 6);
	assert_true(number_at(p, "last_hour", "messages", NULL) == 12);
	cJSON_Delete(p);
	/* A clock set back counts into the newest span, and loses nothing. */
	tf_metrics_add(m, "water", TF_METRIC_STAMPED, 1, T0);
	p = policy_json(m, "water", T0 + 11 * 10000);
	assert_true(number_at(p, "last_minute", "messages", NULL) == 7);
	cJSON_Delete(p);
	tf_metrics_free(m);
}

static void test_recipients_are_bounded(void **state)
{
	struct tf_metrics *m = tf_metrics_new(T0);
	char name[32];
	const cJSON *minute;
	cJSON *p;

	(void)state;
	for (int i = 0; i < TF_METRICS_MAX_ROWS + 50; i++) {
		snprintf(name, sizeof(name), "meter-%04d", i);
		tf_metrics_delivered(m, "water", "maint-co", name, T0);
	}
	p = policy_json(m, "water", T0);
	minute = cJSON_GetObjectItemCaseSensitive(p, "last_minute");
	assert_true(number_at(minute, "deliveries", NULL) == TF_METRICS_MAX_ROWS + 50);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(minute, "clients")),
		TF_METRICS_LISTED);
	/* Those past the bound are one row, "": the first listed, most first. */
	assert_true(listed(p, "last_minute", "clients", "client", "") == 50);
	assert_true(number_at(minute, "more_clients", NULL) == TF_METRICS_MAX_ROWS + 1
		- TF_METRICS_LISTED);
	assert_true(listed(p, "last_minute", "orgs", "org", "maint-co") == TF_METRICS_MAX_ROWS + 50);
	cJSON_Delete(p);
	tf_metrics_free(m);
}

/* The ids a round calls due, one after the other. */
static void note_due(void *ctx, const char *id)
{
	char *due = ctx;

	strcat(due, id);
	strcat(due, " ");
}

static void round_of(struct tf_metrics *m, char *due)
{
	due[0] = '\0';
	tf_metrics_round_start(m);
	assert_true(tf_metrics_round(m, 100, note_due, due));
}

static void test_rounds_take_the_policies_with_news(void **state)
{
	struct tf_metrics *m = tf_metrics_new(T0);
	char due[128];
	cJSON *p;

	(void)state;
	assert_false(tf_metrics_counted(m, "water"));
	tf_metrics_add(m, "water", TF_METRIC_STAMPED, 1, T0);
	tf_metrics_refused(m, "air", TF_REFUSED_DENIED, T0);
	assert_true(tf_metrics_counted(m, "water"));
	round_of(m, due);
	assert_string_equal(due, "water air ");
	/* Its copy made, air (no count in a window) is not due again; water
	 * is while its message is in a window, and once more after. */
	cJSON_Delete(policy_json(m, "water", T0));
	cJSON_Delete(policy_json(m, "air", T0));
	round_of(m, due);
	assert_string_equal(due, "water ");
	cJSON_Delete(policy_json(m, "water", T0 + 3700000));
	round_of(m, due);
	assert_string_equal(due, "");
	/* A count makes it due again. */
	tf_metrics_alert(m, "air", "rate-anomaly", T0);
	round_of(m, due);
	assert_string_equal(due, "air ");

	/* A round goes on where the last call stopped. */
	tf_metrics_add(m, "water", TF_METRIC_STAMPED, 1, T0);
	due[0] = '\0';
	tf_metrics_round_start(m);
	assert_false(tf_metrics_round(m, 1, note_due, due));
	assert_true(tf_metrics_round(m, 1, note_due, due));
	assert_string_equal(due, "water air ");

	/* Forgotten, it counts again from zero. */
	tf_metrics_forget(m, "water");
	assert_false(tf_metrics_counted(m, "water"));
	round_of(m, due);
	assert_string_equal(due, "air ");
	p = cJSON_CreateObject();
	assert_false(tf_metrics_policy_json(m, "water", T0 + 1000, p));
	cJSON_Delete(p);
	tf_metrics_add(m, "water", TF_METRIC_STAMPED, 1, T0 + 2000);
	p = policy_json(m, "water", T0 + 2000);
	assert_true(number_at(p, "messages", "stamped", NULL) == 1);
	assert_true(number_at(p, "since", NULL) == T0 + 2000);
	cJSON_Delete(p);
	/* The broker's own counters keep everything. */
	p = broker_json(m);
	assert_true(number_at(p, "messages", "stamped", NULL) == 3);
	cJSON_Delete(p);
	tf_metrics_free(m);
}

static void test_many_reasons_fold_into_other(void **state)
{
	struct tf_metrics *m = tf_metrics_new(T0);
	char kind[40];
	cJSON *all;

	(void)state;
	for (int i = 0; i < 40; i++) {
		snprintf(kind, sizeof(kind), "kind-%d", i);
		tf_metrics_alert(m, NULL, kind, T0);
	}
	tf_metrics_refused(m, NULL, NULL, T0);
	all = broker_json(m);
	assert_true(number_at(all, "alerts", "kind-0", NULL) == 1);
	assert_true(number_at(all, "alerts", "kind-22", NULL) == 1);
	assert_true(number_at(all, "alerts", "other", NULL) == 40 - 23);
	assert_true(number_at(all, "messages", "refused", "other", NULL) == 1);
	cJSON_Delete(all);
	tf_metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_broker_wide_and_per_policy),
		cmocka_unit_test(test_recipients_in_the_last_minute_and_hour),
		cmocka_unit_test(test_window_spans_roll_over),
		cmocka_unit_test(test_recipients_are_bounded),
		cmocka_unit_test(test_rounds_take_the_policies_with_news),
		cmocka_unit_test(test_many_reasons_fold_into_other),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
