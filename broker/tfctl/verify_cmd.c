/* tfctl verify (operations-v1): an MQTT v5 subscriber that checks the
 * stamp of every message it receives. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "broker/util/number.h"
#include "broker/stamp/forms.h"
#include "broker/stamp/provenance.h"
#include "broker/tfctl/session.h"
#include "broker/tfctl/tfctl.h"

static const char verify_usage[] =
	"usage: tfctl verify --key PEM... [--host H] [--port P] [--topic FILTER] [--count N]\n"
	"                    [--username U --password P]\n"
	"\n"
	"Subscribes to FILTER (default #) with MQTT v5 and checks the stamp of every\n"
	"message against the public keys given (PEM files; a private key file gives\n"
	"its public half), in either form (the tf-* properties or the compact tf).\n"
	"Prints `ok <tf-id> <topic>` or\n"
	"`FAIL <tf-id|-> <topic> <reason>` for each; stops after N messages (default:\n"
	"never). Exit status 1 if any FAIL, 2 on bad usage or when the broker cannot\n"
	"be reached.\n";

struct verify_state {
	struct tf_keyring *keys;
	long count;       /* 0: no end */
	long seen;
	bool failed;
};

static int usage_error(const char *what)
{
	fprintf(stderr, "tfctl verify: %s\n%s", what, verify_usage);
	return TFCTL_USAGE;
}

/* The values a reader kept, freed together. */
struct kept_values {
	char *values[12];   /* a reader keeps at most twelve */
	size_t n;
};

/* Offers every user property of a message to the stamp reader; the
 * values it keeps go to kept (the caller frees them), the rest are freed
 * at once. */
static void read_properties(const mosquitto_property *props, struct tf_stamp_reader *r,
		struct kept_values *kept)
{
	for (const mosquitto_property *p = props; p != NULL; p = mosquitto_property_next(p)) {
		char *name = NULL, *value = NULL;

		if (mosquitto_property_identifier(p) != MQTT_PROP_USER_PROPERTY
				|| mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name,
					&value, false) == NULL)
			continue;
		if (kept->n < sizeof(kept->values) / sizeof(kept->values[0])
				&& tf_stamp_reader_add(r, name, value)) {
			kept->values[kept->n++] = value;
			value = NULL;
		}
		free(name);
		free(value);
	}
}

static void on_message(struct mosquitto *mosq, void *ctx, const struct mosquitto_message *msg,
		const mosquitto_property *props)
{
	struct verify_state *st = ctx;
	struct tf_stamp_reader reader = { 0 };
	struct kept_values kept = { 0 };
	struct tf_stamp stamp;
	enum tf_stamp_check verdict;

	/* Either form: the tf-* properties or the compact tf. */
	read_properties(props, &reader, &kept);
	verdict = tf_stamp_reader_finish(&reader, msg->topic, msg->payload,
		(size_t)msg->payloadlen, &stamp);
	if (verdict == TF_STAMP_VALID)
		verdict = tf_stamp_check(st->keys, &stamp, msg->payload, (size_t)msg->payloadlen);
	if (verdict == TF_STAMP_VALID) {
		printf("ok %s %s\n", stamp.id, msg->topic);
	} else {
		printf("FAIL %s %s %s\n", stamp.id ? stamp.id : "-", msg->topic,
			tf_stamp_check_reason(verdict));
		st->failed = true;
	}
	fflush(stdout);
	for (size_t i = 0; i < kept.n; i++)
		free(kept.values[i]);
	if (st->count > 0 && ++st->seen >= st->count)
		mosquitto_disconnect(mosq);
}

int tfctl_verify(int argc, char **argv)
{
	struct verify_state st = { 0 };
	const char *topic = "#";
	struct tfctl_session session = { .host = "127.0.0.1", .port = 1883, .topics = &topic,
		.n_topics = 1, .on_message = on_message, .ctx = &st };
	struct tf_err err = { "" };
	int n_keys = 0, rc = TFCTL_USAGE;

	st.keys = tf_keyring_new();
	if (st.keys == NULL)
		return usage_error("out of memory");
	for (int i = 0; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(opt, "--key") == 0) {
			/* One or more key files, up to the next option. */
			while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
				if (tf_keyring_add_file(st.keys, argv[++i], NULL, &err) != TF_OK) {
					fprintf(stderr, "tfctl: %s\n", err.msg);
					goto out;
				}
				n_keys++;
			}
			continue;
		}
		if (val == NULL) {
			rc = usage_error("an option is missing its value");
			goto out;
		}
		if (strcmp(opt, "--topic") == 0)
			topic = val;
		else if (strcmp(opt, "--count") == 0 ? !tf_parse_long(val, 1, 1000000000, &st.count)
				: !tfctl_session_option(&session, opt, val)) {
			rc = usage_error("unknown option or bad value");
			goto out;
		}
		i++;
	}
	if (n_keys == 0) {
		rc = usage_error("at least one --key is required");
		goto out;
	}
	rc = tfctl_session_run(&session);
	if (rc == TFCTL_OK && st.failed)
		rc = TFCTL_NO;
out:
	tf_keyring_free(st.keys);
	return rc;
}
