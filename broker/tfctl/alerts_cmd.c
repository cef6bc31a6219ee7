/* tfctl alerts [--follow]: the broker's recent alerts through the control
 * API (listAlerts), then, with --follow, each new one as it is raised
 * ($trustflow/alerts/#). One JSON object per line. */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <mosquitto.h>

#include "broker/control/control.h"
#include "broker/tfctl/session.h"
#include "broker/tfctl/tfctl.h"
#include "broker/util/growable.h"
#include "policy/jsonfile.h"
#include "policy/rfc3339.h"

static const char alerts_usage[] =
	"usage: tfctl alerts --username U --password P [--host H] [--port P] [--since T]\n"
	"                    [--follow]\n"
	"\n"
	"Prints the broker's recent alerts (the last 1,000), one JSON object per line,\n"
	"through the control API, every page of them; with --follow, then each new\n"
	"alert as it is raised, until interrupted. The user must have role\n"
	"trustflow-admin (every alert) or data-steward (alerts of its own\n"
	"organization's policies). T is RFC 3339 or ms since the epoch. Exit status 1\n"
	"when the broker refuses, 2 on bad usage or when the broker cannot be reached.\n";

#define ALERTS_TOPIC "$trustflow/alerts/#"

struct alerts_state {
	int64_t since_ms;
	bool follow;
	int n_topics;
	char correlation[64];
	bool answered;           /* every page of listAlerts has been printed */
	bool refused;
	int64_t cursor;          /* where the next page starts (0: the first) */
	/* Ids listed in the pages, and alerts streamed before the last came. */
	char (*listed)[TF_MSGID_LEN + 1];
	uint32_t n_listed, cap_listed;
	char **early;
	uint32_t n_early, cap_early;
};

static int usage_error(const char *what)
{
	fprintf(stderr, "tfctl alerts: %s\n%s", what, alerts_usage);
	return TFCTL_USAGE;
}

/* Asks for the page of recent alerts that starts at st->cursor. */
static void ask_page(struct mosquitto *mosq, const struct alerts_state *st)
{
	char request[256];

	snprintf(request, sizeof(request), "{\"commands\": [{\"command\": \"listAlerts\", "
		"\"since\": %lld, \"cursor\": %lld}], \"correlationData\": \"%s\"}",
		(long long)st->since_ms, (long long)st->cursor, st->correlation);
	mosquitto_publish_v5(mosq, NULL, TF_CONTROL_TOPIC, (int)strlen(request), request, 1, false,
		NULL);
}

/* Once the last subscription stands, asks for the recent alerts. */
static void on_subscribed(struct mosquitto *mosq, void *ctx, int index, bool granted)
{
	struct alerts_state *st = ctx;

	if (!granted) {
		fputs("tfctl: the broker refused the subscription: this user may not read alerts\n",
			stderr);
		st->refused = true;
		mosquitto_disconnect(mosq);
		return;
	}
	if (index + 1 < st->n_topics)
		return;
	ask_page(mosq, st);
}

static bool was_listed(const struct alerts_state *st, const char *id)
{
	for (size_t i = 0; i < st->n_listed; i++)
		if (strcmp(st->listed[i], id) == 0)
			return true;
	return false;
}

/* Prints a page of alerts and notes their ids. */
static void print_page(struct alerts_state *st, const cJSON *list)
{
	const cJSON *alert;

	cJSON_ArrayForEach(alert, list) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(alert, "id");
		char *text = cJSON_PrintUnformatted(alert);

		if (text != NULL)
			printf("%s\n", text);
		free(text);
		if (cJSON_IsString(id) && tf_grow(&st->listed, &st->cap_listed, st->n_listed, 64,
				UINT32_MAX))
			snprintf(st->listed[st->n_listed++], TF_MSGID_LEN + 1, "%s", id->valuestring);
	}
}

/* An answer to listAlerts: prints its page and asks for the next one;
 * after the last, prints what streamed in meanwhile. */
static void print_answer(struct mosquitto *mosq, struct alerts_state *st, const cJSON *answer)
{
	const cJSON *r = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(answer, "responses"), 0);
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(r, "error");
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(r, "data");
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(data, "alerts");
	const cJSON *next = cJSON_GetObjectItemCaseSensitive(data, "next");

	if (!cJSON_IsArray(list)) {
		fprintf(stderr, "tfctl: the broker refused: %s\n",
			cJSON_IsString(error) ? error->valuestring : "no answer");
		st->answered = st->refused = true;
		mosquitto_disconnect(mosq);
		return;
	}
	print_page(st, list);
	if (next != NULL) {
		/* A cursor that does not go forward would ask for ever. */
		if (!tf_json_integer(next, st->cursor + 1, TF_CONTROL_INTEGER_MAX, &st->cursor)) {
			fputs("tfctl: the broker's answer has a bad \"next\"\n", stderr);
			st->answered = st->refused = true;
			mosquitto_disconnect(mosq);
			return;
		}
		fflush(stdout);
		ask_page(mosq, st);
		return;
	}
	st->answered = true;
	for (size_t i = 0; i < st->n_early; i++) {
		cJSON *early = cJSON_Parse(st->early[i]);
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(early, "id");

		if (!cJSON_IsString(id) || !was_listed(st, id->valuestring))
			printf("%s\n", st->early[i]);
		cJSON_Delete(early);
		free(st->early[i]);
	}
	st->n_early = 0;
	fflush(stdout);
	if (!st->follow)
		mosquitto_disconnect(mosq);
}

static void on_message(struct mosquitto *mosq, void *ctx, const struct mosquitto_message *msg,
		const mosquitto_property *props)
{
	struct alerts_state *st = ctx;
	char *text = strndup(msg->payload, (size_t)msg->payloadlen);

	(void)props;
	if (text == NULL)
		return;
	if (strcmp(msg->topic, TF_CONTROL_RESPONSE_TOPIC) == 0) {
		cJSON *answer = cJSON_Parse(text);
		const cJSON *corr = cJSON_GetObjectItemCaseSensitive(answer, "correlationData");

		if (!st->answered && cJSON_IsString(corr)
				&& strcmp(corr->valuestring, st->correlation) == 0)
			print_answer(mosq, st, answer);
		cJSON_Delete(answer);
		free(text);
		return;
	}
	if (st->answered) {
		printf("%s\n", text);
		fflush(stdout);
		free(text);
		return;
	}
	if (!tf_grow(&st->early, &st->cap_early, st->n_early, 16, UINT32_MAX)) {
		free(text);
		return;
	}
	st->early[st->n_early++] = text;
}

int tfctl_alerts(int argc, char **argv)
{
	struct alerts_state st = { 0 };
	/* Alerts first, so that none raised meanwhile is missed. */
	const char *topics[2] = { ALERTS_TOPIC, TF_CONTROL_RESPONSE_TOPIC };
	struct tfctl_session session = { .host = "127.0.0.1", .port = 1883,
		.on_subscribed = on_subscribed, .on_message = on_message, .ctx = &st };
	int rc;

	for (int i = 0; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(opt, "--follow") == 0) {
			st.follow = true;
			continue;
		}
		if (strcmp(opt, "--help") == 0) {
			fputs(alerts_usage, stdout);
			return TFCTL_OK;
		}
		if (val == NULL)
			return usage_error("an option is missing its value");
		if (strcmp(opt, "--since") == 0 ? !tf_time_arg_parse(val, &st.since_ms)
				: !tfctl_session_option(&session, opt, val))
			return usage_error("unknown option or bad value");
		i++;
	}
	if (session.username == NULL)
		return usage_error("--username is required (a trustflow-admin or data-steward)");
	snprintf(st.correlation, sizeof(st.correlation), "tfctl-alerts-%ld", (long)getpid());
	session.topics = st.follow ? topics : topics + 1;
	session.n_topics = st.n_topics = st.follow ? 2 : 1;
	rc = tfctl_session_run(&session);
	if (rc == TFCTL_OK && st.refused)
		rc = TFCTL_NO;
	for (size_t i = 0; i < st.n_early; i++)
		free(st.early[i]);
	free(st.early);
	free(st.listed);
	return rc;
}
