/* tfctl alerts [--follow]: the broker's recent alerts through the control
 * API (listAlerts), then, with --follow, each new one as it is raised
 * ($trustflow/alerts/#). One JSON object per line. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "broker/control.h"
#include "broker/number.h"
#include "broker/tfctl/tfctl.h"
#include "policy/rfc3339.h"

static const char alerts_usage[] =
	"usage: tfctl alerts --username U --password P [--host H] [--port P] [--since T]\n"
	"                    [--follow]\n"
	"\n"
	"Prints the broker's recent alerts (the last 1,000), one JSON object per line,\n"
	"through the control API; with --follow, then each new alert as it is raised,\n"
	"until interrupted. The user must have role trustflow-admin (every alert) or\n"
	"data-steward (alerts of its own organization's policies). T is RFC 3339 or\n"
	"ms since the epoch. Exit status 1 when the broker refuses, 2 on bad usage or\n"
	"when the broker cannot be reached.\n";

#define ALERTS_TOPIC "$trustflow/alerts/#"

struct alerts_state {
	int64_t since_ms;
	bool follow;
	char correlation[64];
	int subscriptions;       /* SUBACKs still to come */
	bool answered;           /* the listAlerts answer has been printed */
	bool refused;
	int connect_rc;          /* -1 until the broker answers */
	/* Ids listed in the answer, and alerts streamed before it came. */
	char (*listed)[TF_MSGID_LEN + 1];
	size_t n_listed;
	char **early;
	size_t n_early;
};

static int usage_error(const char *what)
{
	fprintf(stderr, "tfctl alerts: %s\n%s", what, alerts_usage);
	return TFCTL_USAGE;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
		const mosquitto_property *props)
{
	struct alerts_state *st = obj;

	(void)flags;
	(void)props;
	st->connect_rc = rc;
	if (rc != 0) {
		fprintf(stderr, "tfctl: the broker refused the connection: %s\n",
			mosquitto_reason_string(rc));
		mosquitto_disconnect(mosq);
		return;
	}
	/* Alerts first, so that none raised meanwhile is missed. */
	st->subscriptions = st->follow ? 2 : 1;
	if (st->follow)
		mosquitto_subscribe_v5(mosq, NULL, ALERTS_TOPIC, 1, 0, NULL);
	mosquitto_subscribe_v5(mosq, NULL, TF_CONTROL_RESPONSE_TOPIC, 1, 0, NULL);
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count,
		const int *granted_qos, const mosquitto_property *props)
{
	struct alerts_state *st = obj;
	char request[256];

	(void)mid;
	(void)props;
	if (qos_count < 1 || granted_qos[0] >= 0x80) {
		fputs("tfctl: the broker refused the subscription: this user may not read alerts\n",
			stderr);
		st->refused = true;
		mosquitto_disconnect(mosq);
		return;
	}
	if (--st->subscriptions > 0)
		return;
	snprintf(request, sizeof(request), "{\"commands\": [{\"command\": \"listAlerts\", "
		"\"since\": %lld}], \"correlationData\": \"%s\"}", (long long)st->since_ms,
		st->correlation);
	mosquitto_publish_v5(mosq, NULL, TF_CONTROL_TOPIC, (int)strlen(request), request, 1, false,
		NULL);
}

static bool was_listed(const struct alerts_state *st, const char *id)
{
	for (size_t i = 0; i < st->n_listed; i++)
		if (strcmp(st->listed[i], id) == 0)
			return true;
	return false;
}

/* The answer to listAlerts: prints it, then what streamed in meanwhile. */
static void print_answer(struct mosquitto *mosq, struct alerts_state *st, const cJSON *answer)
{
	const cJSON *r = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(answer, "responses"), 0);
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(r, "error");
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(r, "data"), "alerts"), *alert;

	st->answered = true;
	if (!cJSON_IsArray(list)) {
		fprintf(stderr, "tfctl: the broker refused: %s\n",
			cJSON_IsString(error) ? error->valuestring : "no answer");
		st->refused = true;
		mosquitto_disconnect(mosq);
		return;
	}
	st->listed = calloc((size_t)cJSON_GetArraySize(list) + 1, sizeof(*st->listed));
	cJSON_ArrayForEach(alert, list) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(alert, "id");
		char *text = cJSON_PrintUnformatted(alert);

		if (text != NULL)
			printf("%s\n", text);
		free(text);
		if (st->listed != NULL && cJSON_IsString(id))
			snprintf(st->listed[st->n_listed++], TF_MSGID_LEN + 1, "%s", id->valuestring);
	}
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

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
		const mosquitto_property *props)
{
	struct alerts_state *st = obj;
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
	char **grown = realloc(st->early, (st->n_early + 1) * sizeof(*grown));

	if (grown == NULL) {
		free(text);
		return;
	}
	st->early = grown;
	st->early[st->n_early++] = text;
}

int tfctl_alerts(int argc, char **argv)
{
	struct alerts_state st = { .connect_rc = -1 };
	const char *host = "127.0.0.1", *username = NULL, *password = NULL;
	struct mosquitto *mosq;
	long port = 1883;
	int rc = TFCTL_USAGE;

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
		if (strcmp(opt, "--host") == 0)
			host = val;
		else if (strcmp(opt, "--username") == 0)
			username = val;
		else if (strcmp(opt, "--password") == 0)
			password = val;
		else if (strcmp(opt, "--since") == 0 ? !tf_time_arg_parse(val, &st.since_ms)
				: strcmp(opt, "--port") == 0 ? !tf_parse_long(val, 1, 65535, &port) : true)
			return usage_error("unknown option or bad value");
		i++;
	}
	if (username == NULL)
		return usage_error("--username is required (a trustflow-admin or data-steward)");
	snprintf(st.correlation, sizeof(st.correlation), "tfctl-alerts-%ld", (long)getpid());

	mosquitto_lib_init();
	mosq = mosquitto_new(NULL, true, &st);
	if (mosq == NULL) {
		fputs("tfctl: out of memory\n", stderr);
		mosquitto_lib_cleanup();
		return TFCTL_USAGE;
	}
	mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	mosquitto_connect_v5_callback_set(mosq, on_connect);
	mosquitto_subscribe_v5_callback_set(mosq, on_subscribe);
	mosquitto_message_v5_callback_set(mosq, on_message);
	mosquitto_username_pw_set(mosq, username, password);
	if (mosquitto_connect(mosq, host, (int)port, 60) != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "tfctl: cannot connect to %s:%ld: %s\n", host, port, strerror(errno));
	} else {
		mosquitto_loop_forever(mosq, -1, 1);
		if (st.connect_rc == 0)
			rc = st.refused ? TFCTL_NO : TFCTL_OK;
	}
	for (size_t i = 0; i < st.n_early; i++)
		free(st.early[i]);
	free(st.early);
	free(st.listed);
	mosquitto_destroy(mosq);
	mosquitto_lib_cleanup();
	return rc;
}
