/* tfctl quarantine list | release | discard: the control API's quarantine
 * commands over MQTT (operations-v1). */
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

static const char quarantine_usage[] =
	"usage: tfctl quarantine list [--policy ID] CONNECTION\n"
	"       tfctl quarantine release FLOW CONNECTION\n"
	"       tfctl quarantine discard FLOW CONNECTION\n"
	"CONNECTION: --username U --password P [--host H] [--port P]\n"
	"\n"
	"list     one line per quarantined flow: {\"flow\", \"policy\", \"client\", \"held\",\n"
	"         \"since\"}\n"
	"release  delivers the flow's held messages, in the order received, and ends\n"
	"         its quarantine; prints {\"released\": N}\n"
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
	int connect_rc;        /* -1 until the broker answers */
};

static int usage_error(const char *what)
{
	fprintf(stderr, "tfctl quarantine: %s\n%s", what, quarantine_usage);
	return TFCTL_USAGE;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
		const mosquitto_property *props)
{
	struct request_state *st = obj;

	(void)flags;
	(void)props;
	st->connect_rc = rc;
	if (rc != 0) {
		fprintf(stderr, "tfctl: the broker refused the connection: %s\n",
			mosquitto_reason_string(rc));
		mosquitto_disconnect(mosq);
		return;
	}
	mosquitto_subscribe_v5(mosq, NULL, TF_CONTROL_RESPONSE_TOPIC, 1, 0, NULL);
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count,
		const int *granted_qos, const mosquitto_property *props)
{
	struct request_state *st = obj;

	(void)mid;
	(void)props;
	if (qos_count < 1 || granted_qos[0] >= 0x80) {
		fputs("tfctl: the broker refused: this user may not use the control API\n", stderr);
		mosquitto_disconnect(mosq);
		return;
	}
	mosquitto_publish_v5(mosq, NULL, TF_CONTROL_TOPIC, (int)strlen(st->request), st->request, 1,
		false, NULL);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
		const mosquitto_property *props)
{
	struct request_state *st = obj;
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
static const cJSON *ask(const char *host, long port, const char *username, const char *password,
		cJSON *command, cJSON **answer)
{
	struct request_state st = { .connect_rc = -1 };
	cJSON *request = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(request, "commands");
	struct mosquitto *mosq;
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
	mosquitto_lib_init();
	mosq = mosquitto_new(NULL, true, &st);
	if (mosq != NULL) {
		mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
		mosquitto_connect_v5_callback_set(mosq, on_connect);
		mosquitto_subscribe_v5_callback_set(mosq, on_subscribe);
		mosquitto_message_v5_callback_set(mosq, on_message);
		mosquitto_username_pw_set(mosq, username, password);
		if (mosquitto_connect(mosq, host, (int)port, 60) != MOSQ_ERR_SUCCESS)
			fprintf(stderr, "tfctl: cannot connect to %s:%ld: %s\n", host, port,
				strerror(errno));
		else
			mosquitto_loop_forever(mosq, -1, 1);
		mosquitto_destroy(mosq);
	}
	mosquitto_lib_cleanup();
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
	const char *host = "127.0.0.1", *username = NULL, *password = NULL, *policy = NULL;
	const char *sub, *flow = NULL;
	const cJSON *response, *data, *error, *item;
	cJSON *command, *answer;
	long port = 1883;
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

		if (val == NULL)
			return usage_error("an option is missing its value");
		if (strcmp(opt, "--host") == 0)
			host = val;
		else if (strcmp(opt, "--username") == 0)
			username = val;
		else if (strcmp(opt, "--password") == 0)
			password = val;
		else if (strcmp(opt, "--policy") == 0 && flow == NULL)
			policy = val;
		else if (strcmp(opt, "--port") != 0 || !tf_parse_long(val, 1, 65535, &port))
			return usage_error("unknown option or bad value");
	}
	if (username == NULL)
		return usage_error("--username is required (a trustflow-admin or data-steward)");

	command = cJSON_CreateObject();
	if (command == NULL || !cJSON_AddStringToObject(command, "command",
			flow == NULL ? "listQuarantine" : strcmp(sub, "release") == 0 ? "releaseFlow"
			: "discardFlow")
			|| (flow != NULL && !cJSON_AddStringToObject(command, "flow", flow))
			|| (policy != NULL && !cJSON_AddStringToObject(command, "policy", policy))) {
		cJSON_Delete(command);
		return usage_error("out of memory");
	}
	response = ask(host, port, username, password, command, &answer);
	if (answer == NULL) {
		cJSON_Delete(answer);
		return TFCTL_USAGE;
	}
	data = cJSON_GetObjectItemCaseSensitive(response, "data");
	error = cJSON_GetObjectItemCaseSensitive(response, "error");
	if (data == NULL) {
		fprintf(stderr, "tfctl: the broker refused: %s\n",
			cJSON_IsString(error) ? error->valuestring : "no answer");
		cJSON_Delete(answer);
		return TFCTL_NO;
	}
	if (flow == NULL) {
		cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(data, "flows"))
			print(item);
	} else {
		print(data);
	}
	cJSON_Delete(answer);
	return TFCTL_OK;
}
