/* tfctl quarantine list | release | discard: the control API's quarantine
 * commands over MQTT (operations-v1). */
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
#include "policy/jsonfile.h"

static const char quarantine_usage[] =
	"usage: tfctl quarantine list [--policy ID] CONNECTION\n"
	"       tfctl quarantine release FLOW [--override] CONNECTION\n"
	"       tfctl quarantine discard FLOW CONNECTION\n"
	"CONNECTION: --username U --password P [--host H] [--port P]\n"
	"\n"
	"list     one line per quarantined flow: {\"flow\", \"policy\", \"client\", \"held\",\n"
	"         \"since\"}, every page of the list\n"
	"release  decides the flow's held messages again under the policies in force,\n"
	"         in the order received: delivers them, discards those past their\n"
	"         retention, and keeps held those that break the rules (with\n"
	"         --override: delivers those too, recorded as an override); prints\n"
	"         {\"released\": N, \"expired\": N, \"kept\": N, \"overridden\": N}.\n"
	"         The quarantine ends unless messages were kept.\n"
	"discard  drops the flow's held messages and ends its quarantine; prints\n"
	"         {\"discarded\": N}\n"
	"\n"
	"A FLOW is <policy id>/<publisher>. The user must have role trustflow-admin,\n"
	"or data-steward for its own organization's policies. Exit status 1 when the\n"
	"broker refuses, 2 on bad usage or when the broker cannot be reached.\n";

struct request_state {
	const char *request;
	char correlation[64];
	cJSON *answer;         /* the response, once it came */
};

static int usage_error(const char *what)
{
	fprintf(stderr, "tfctl quarantine: %s\n%s", what, quarantine_usage);
	return TFCTL_USAGE;
}

static void on_subscribed(struct mosquitto *mosq, void *ctx, int index, bool granted)
{
	struct request_state *st = ctx;

	(void)index;
	if (!granted) {
		fputs("tfctl: the broker refused: this user may not use the control API\n", stderr);
		mosquitto_disconnect(mosq);
		return;
	}
	mosquitto_publish_v5(mosq, NULL, TF_CONTROL_TOPIC, (int)strlen(st->request), st->request, 1,
		false, NULL);
}

static void on_message(struct mosquitto *mosq, void *ctx, const struct mosquitto_message *msg,
		const mosquitto_property *props)
{
	struct request_state *st = ctx;
	cJSON *answer = cJSON_ParseWithLength(msg->payload, (size_t)msg->payloadlen);
	const cJSON *corr = cJSON_GetObjectItemCaseSensitive(answer, "correlationData");

	(void)props;
	if (st->answer == NULL && cJSON_IsString(corr)
			&& strcmp(corr->valuestring, st->correlation) == 0) {
		st->answer = answer;
		mosquitto_disconnect(mosq);
		return;
	}
	cJSON_Delete(answer);
}

/* Sends one command; returns its response object (caller owns the
 * answer, *answer), or NULL after saying why. */
static const cJSON *ask(struct tfctl_session *session, cJSON *command, cJSON **answer)
{
	struct request_state st = { 0 };
	cJSON *request = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(request, "commands");
	const char *topic = TF_CONTROL_RESPONSE_TOPIC;
	char *text;

	*answer = NULL;
	snprintf(st.correlation, sizeof(st.correlation), "tfctl-quarantine-%ld", (long)getpid());
	if (list == NULL || !cJSON_AddItemToArray(list, command)
			|| !cJSON_AddStringToObject(request, "correlationData", st.correlation)
			|| (text = cJSON_PrintUnformatted(request)) == NULL) {
		cJSON_Delete(request);
		fputs("tfctl: out of memory\n", stderr);
		return NULL;
	}
	cJSON_Delete(request);
	st.request = text;
	session->topics = &topic;
	session->n_topics = 1;
	session->on_subscribed = on_subscribed;
	session->on_message = on_message;
	session->ctx = &st;
	tfctl_session_run(session);
	free(text);
	*answer = st.answer;
	return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(st.answer, "responses"), 0);
}

static void print(const cJSON *o)
{
	char *text = cJSON_PrintUnformatted(o);

	if (text != NULL)
		printf("%s\n", text);
	free(text);
}

int tfctl_quarantine(int argc, char **argv)
{
	struct tfctl_session session = { .host = "127.0.0.1", .port = 1883 };
	const char *policy = NULL, *sub, *flow = NULL;
	bool override = false, more;
	const cJSON *response, *data, *error, *item, *next;
	cJSON *command, *answer;
	int64_t cursor = 0;
	int first = 1;

	if (argc < 1)
		return usage_error("list, release or discard is required");
	sub = argv[0];
	if (strcmp(sub, "--help") == 0) {
		fputs(quarantine_usage, stdout);
		return TFCTL_OK;
	}
	if (strcmp(sub, "release") == 0 || strcmp(sub, "discard") == 0) {
		if (argc < 2 || strncmp(argv[1], "--", 2) == 0)
			return usage_error("a FLOW (<policy id>/<publisher>) is required");
		flow = argv[1];
		first = 2;
	} else if (strcmp(sub, "list") != 0) {
		return usage_error("unknown subcommand");
	}
	for (int i = first; i < argc; i += 2) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		/* The one option without a value. */
		if (strcmp(opt, "--override") == 0 && strcmp(sub, "release") == 0) {
			override = true;
			i--;
			continue;
		}
		if (val == NULL)
			return usage_error("an option is missing its value");
		if (strcmp(opt, "--policy") == 0 && flow == NULL)
			policy = val;
		else if (!tfctl_session_option(&session, opt, val))
			return usage_error("unknown option or bad value");
	}
	if (session.username == NULL)
		return usage_error("--username is required (a trustflow-admin or data-steward)");

	/* A list comes in pages: each request goes on from the last one's
	 * "next" (docs/control-api.md). */
	for (;;) {
		command = cJSON_CreateObject();
		if (command == NULL || !cJSON_AddStringToObject(command, "command",
				flow == NULL ? "listQuarantine" : strcmp(sub, "release") == 0
				? "releaseFlow" : "discardFlow")
				|| (flow != NULL && !cJSON_AddStringToObject(command, "flow", flow))
				|| (policy != NULL
					&& !cJSON_AddStringToObject(command, "policy", policy))
				|| (override && !cJSON_AddTrueToObject(command, "override"))
				|| (cursor > 0 && !cJSON_AddNumberToObject(command, "cursor",
					(double)cursor))) {
			cJSON_Delete(command);
			return usage_error("out of memory");
		}
		response = ask(&session, command, &answer);
		if (answer == NULL)
			return TFCTL_USAGE;
		data = cJSON_GetObjectItemCaseSensitive(response, "data");
		error = cJSON_GetObjectItemCaseSensitive(response, "error");
		if (data == NULL) {
			fprintf(stderr, "tfctl: the broker refused: %s\n",
				cJSON_IsString(error) ? error->valuestring : "no answer");
			cJSON_Delete(answer);
			return TFCTL_NO;
		}
		if (flow != NULL) {
			print(data);
			cJSON_Delete(answer);
			return TFCTL_OK;
		}
		cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(data, "flows"))
			print(item);
		next = cJSON_GetObjectItemCaseSensitive(data, "next");
		/* A cursor that does not go forward would ask for ever. */
		if (next != NULL && !tf_json_integer(next, cursor + 1, TF_CONTROL_INTEGER_MAX,
				&cursor)) {
			fputs("tfctl: the broker's answer has a bad \"next\"\n", stderr);
			cJSON_Delete(answer);
			return TFCTL_NO;
		}
		more = next != NULL;
		cJSON_Delete(answer);
		if (!more)
			return TFCTL_OK;
	}
}
