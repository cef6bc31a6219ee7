/* Unit tests for broker/console/prometheus.c: the broker's metrics JSON
 * (docs/control-api.md, "Metrics", whose examples these are) in
 * Prometheus' text format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "broker/console/prometheus.h"

/* The examples of docs/control-api.md, "Metrics". */
static const char broker_json[] =
	"{\"broker\": \"trustflow\", \"ts\": 1764158400000, \"since\": 1764150000000,"
	" \"interval_s\": 5,"
	" \"messages\": {\"stamped\": 5120, \"delivered\": 10230, \"withheld\": 12,"
	"  \"forwarded\": 0, \"quarantined\": 3, \"rerouted\": 0, \"released\": 2,"
	"  \"discarded\": 1, \"refused\": {\"denied\": 4, \"limit-exceeded\": 1}},"
	" \"alerts\": {\"denied-publish\": 4, \"limit-exceeded\": 1, \"rate-anomaly\": 1},"
	" \"trace\": {\"queue\": 0, \"events\": 15402, \"commits\": 1733,"
	"  \"commit_ms\": {\"last\": 0.41, \"max\": 3.2}, \"failing\": false},"
	" \"signer\": {\"pool_size\": 32768, \"pool_level\": 32768, \"pooled\": 5120,"
	"  \"fallbacks\": 0}}";

static const char policy_json[] =
	"{\"broker\": \"trustflow\", \"ts\": 1764158400000, \"since\": 1764150000000,"
	" \"interval_s\": 5, \"policy\": \"water-telemetry\", \"version\": 2,"
	" \"owner\": \"city-waterworks\","
	" \"messages\": {\"stamped\": 5120, \"delivered\": 10230, \"withheld\": 12,"
	"  \"refused\": {\"schema-violation\": 2}},"
	" \"alerts\": {\"rate-anomaly\": 1},"
	" \"last_minute\": {\"messages\": 60, \"deliveries\": 120,"
	"  \"orgs\": [{\"org\": \"maint-co\", \"deliveries\": 60},"
	"   {\"org\": \"city-waterworks\", \"deliveries\": 60}],"
	"  \"clients\": [{\"client\": \"maint-app\", \"org\": \"maint-co\", \"deliveries\": 60},"
	"   {\"client\": \"ww-operator\", \"org\": \"city-waterworks\", \"deliveries\": 60}]},"
	" \"last_hour\": {\"messages\": 3600, \"deliveries\": 7200,"
	"  \"orgs\": [{\"org\": \"maint-co\", \"deliveries\": 3600}],"
	"  \"clients\": [{\"client\": \"maint-app\", \"org\": \"maint-co\","
	"   \"deliveries\": 3600}]}}";

/* The exposition of the JSON array text. */
static char *render(const char *array_text)
{
	cJSON *list = cJSON_Parse(array_text);
	char *text;

	assert_non_null(list);
	text = tf_prometheus_render(list);
	cJSON_Delete(list);
	assert_non_null(text);
	return text;
}

static char *render2(const char *a, const char *b)
{
	size_t n = strlen(a) + (b ? strlen(b) : 0) + 4;
	char *array = malloc(n), *text;

	assert_non_null(array);
	snprintf(array, n, "[%s%s%s]", a, b ? "," : "", b ? b : "");
	text = render(array);
	free(array);
	return text;
}

/* How many times needle occurs in text. */
static int count(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
	fail_msg("no line \"%s\" in:\n%s", line, text);
}

static void the_brokers_counters(void **state)
{
	char *text = render2(broker_json, NULL);

	(void)state;
	has_line(text, "# TYPE trustflow_messages_stamped_total counter");
	has_line(text, "trustflow_messages_stamped_total 5120");
	has_line(text, "trustflow_deliveries_total 10230");
	has_line(text, "trustflow_deliveries_withheld_total 12");
	has_line(text, "trustflow_messages_forwarded_total 0");
	has_line(text, "trustflow_messages_quarantined_total 3");
	has_line(text, "trustflow_messages_released_total 2");
	has_line(text, "trustflow_messages_discarded_total 1");
	has_line(text, "trustflow_messages_refused_total{reason=\"denied\"} 4");
	has_line(text, "trustflow_messages_refused_total{reason=\"limit-exceeded\"} 1");
	has_line(text, "trustflow_alerts_total{kind=\"denied-publish\"} 4");
	has_line(text, "trustflow_alerts_total{kind=\"rate-anomaly\"} 1");
	has_line(text, "# TYPE trustflow_trace_queue gauge");
	has_line(text, "trustflow_trace_queue 0");
	has_line(text, "trustflow_trace_events_total 15402");
	has_line(text, "trustflow_trace_commits_total 1733");
	has_line(text, "trustflow_trace_commit_last_seconds 0.00041");
	has_line(text, "trustflow_trace_commit_max_seconds 0.0032");
	has_line(text, "trustflow_trace_failing 0");
	has_line(text, "trustflow_signer_pool_level 32768");
	has_line(text, "trustflow_signer_pool_size 32768");
	has_line(text, "trustflow_signer_pooled_total 5120");
	has_line(text, "trustflow_signer_fallbacks_total 0");
	has_line(text, "trustflow_start_time_seconds 1764150000");
	has_line(text, "trustflow_metrics_timestamp_seconds 1764158400");
	/* Each family once, and no policy's. */
	assert_int_equal(count(text, "# HELP trustflow_alerts_total "), 1);
	assert_int_equal(count(text, "# TYPE trustflow_alerts_total counter\n"), 1);
	assert_int_equal(count(text, "trustflow_policy_"), 0);
	assert_int_equal(text[strlen(text) - 1], '\n');
	free(text);
}

static void a_policys_counters_and_windows(void **state)
{
	char *text = render2(policy_json, NULL);
	const char *lb = "policy=\"water-telemetry\",owner=\"city-waterworks\"";
	char line[512];

	(void)state;
	snprintf(line, sizeof(line), "trustflow_policy_messages_stamped_total{%s} 5120", lb);
	has_line(text, line);
	snprintf(line, sizeof(line), "trustflow_policy_deliveries_total{%s} 10230", lb);
	has_line(text, line);
	snprintf(line, sizeof(line), "trustflow_policy_version{%s} 2", lb);
	has_line(text, line);
	snprintf(line, sizeof(line),
		"trustflow_policy_messages_refused_total{%s,reason=\"schema-violation\"} 2", lb);
	has_line(text, line);
	snprintf(line, sizeof(line), "trustflow_policy_alerts_total{%s,kind=\"rate-anomaly\"} 1",
		lb);
	has_line(text, line);
	snprintf(line, sizeof(line), "trustflow_policy_window_messages{%s,window=\"1m\"} 60", lb);
	has_line(text, line);
	snprintf(line, sizeof(line), "trustflow_policy_window_messages{%s,window=\"1h\"} 3600", lb);
	has_line(text, line);
	snprintf(line, sizeof(line), "trustflow_policy_window_deliveries{%s,window=\"1h\"} 7200",
		lb);
	has_line(text, line);
	snprintf(line, sizeof(line),
		"trustflow_policy_window_org_deliveries{%s,window=\"1m\",org=\"city-waterworks\"} 60",
		lb);
	has_line(text, line);
	snprintf(line, sizeof(line), "trustflow_policy_window_client_deliveries{%s,window=\"1h\","
		"client=\"maint-app\",org=\"maint-co\"} 3600", lb);
	has_line(text, line);
	/* Members the policy's copy leaves out give no sample; no broker's. */
	assert_int_equal(count(text, "trustflow_policy_messages_forwarded_total"), 0);
	assert_int_equal(count(text, "trustflow_messages_stamped_total"), 0);
	assert_int_equal(count(text, "trustflow_signer"), 0);
	free(text);
}

static void families_come_once_with_every_policys_samples(void **state)
{
	char other[sizeof(policy_json) + 32];
	char *text, *both;
	const char *at = strstr(policy_json, "water-telemetry");

	(void)state;
	snprintf(other, sizeof(other), "%.*sair-quality%s", (int)(at - policy_json), policy_json,
		at + strlen("water-telemetry"));
	text = render2(other, policy_json);
	assert_int_equal(count(text, "# TYPE trustflow_policy_messages_stamped_total counter\n"), 1);
	assert_int_equal(count(text, "trustflow_policy_messages_stamped_total{"), 2);
	/* Samples of one family are together: between its TYPE and the next
	 * family's HELP. */
	{
		const char *type = strstr(text, "# TYPE trustflow_policy_messages_stamped_total");
		const char *next = strstr(type + 1, "# HELP");
		const char *air = strstr(type, "trustflow_policy_messages_stamped_total{policy=\"air");

		assert_non_null(air);
		assert_true(air < next);
	}
	both = render2(broker_json, policy_json);
	assert_int_equal(count(both, "trustflow_messages_stamped_total 5120\n"), 1);
	assert_int_equal(count(both, "trustflow_policy_messages_stamped_total{"), 1);
	free(both);
	free(text);
}

static void label_values_are_escaped(void **state)
{
	/* A client id may hold anything a client chose. */
	char *text = render("[{\"policy\": \"p\", \"owner\": \"o\", \"last_minute\": "
		"{\"clients\": [{\"client\": \"a\\\"b\\\\c\\nd}e\", \"org\": \"x\", "
		"\"deliveries\": 3}]}}]");

	(void)state;
	has_line(text, "trustflow_policy_window_client_deliveries{policy=\"p\",owner=\"o\","
		"window=\"1m\",client=\"a\\\"b\\\\c\\nd}e\",org=\"x\"} 3");
	free(text);
}

static void bad_and_missing_members_are_left_out(void **state)
{
	char *text = render("[{\"messages\": {\"stamped\": \"many\", \"delivered\": 7,"
		" \"refused\": [1, 2], \"future\": 9}, \"alerts\": {\"leak\": null, \"replay\": 2},"
		" \"trace\": {\"failing\": true}, \"new-section\": {\"x\": 1}},"
		" 17, \"text\", {\"policy\": \"p\", \"last_hour\": {\"orgs\": [{\"deliveries\": 1},"
		"  {\"org\": \"a\", \"deliveries\": \"x\"}, {\"org\": \"b\", \"deliveries\": 4}]}}]");

	(void)state;
	assert_int_equal(count(text, "trustflow_messages_stamped_total"), 0);
	has_line(text, "trustflow_deliveries_total 7");
	assert_int_equal(count(text, "trustflow_messages_refused_total"), 0);
	has_line(text, "trustflow_alerts_total{kind=\"replay\"} 2");
	assert_int_equal(count(text, "kind=\"leak\""), 0);
	has_line(text, "trustflow_trace_failing 1");
	/* A policy without an owner gets an empty one. */
	has_line(text, "trustflow_policy_window_org_deliveries{policy=\"p\",owner=\"\","
		"window=\"1h\",org=\"b\"} 4");
	assert_int_equal(count(text, "org=\"a\""), 0);
	assert_int_equal(count(text, "future"), 0);
	free(text);
}

static void nothing_gives_an_empty_exposition(void **state)
{
	char *text = tf_prometheus_render(NULL);

	(void)state;
	assert_non_null(text);
	assert_string_equal(text, "");
	free(text);
	text = render("[]");
	assert_string_equal(text, "");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_brokers_counters),
		cmocka_unit_test(a_policys_counters_and_windows),
		cmocka_unit_test(families_come_once_with_every_policys_samples),
		cmocka_unit_test(label_values_are_escaped),
		cmocka_unit_test(bad_and_missing_members_are_left_out),
		cmocka_unit_test(nothing_gives_an_empty_exposition),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
