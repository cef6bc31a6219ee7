/* tfctl verify (operations-v1): an MQTT v5 subscriber that checks the
 * stamp of every message it receives, and of a message relayed from
 * broker to broker its whole chain of stamps (federation-v1, section 5). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "broker/util/number.h"
#include "broker/stamp/chain.h"
#include "broker/stamp/forms.h"
#include "broker/stamp/provenance.h"
#include "broker/tfctl/session.h"
#include "broker/tfctl/tfctl.h"

static const char verify_usage[] =
	"usage: tfctl verify (--key PEM... | --key-of BROKER PEM)... [--host H] [--port P]\n"
	"                    [--topic FILTER] [--count N] [--username U --password P]\n"
	"\n"
	"Subscribes to FILTER (default #) with MQTT v5 and checks the stamp of every\n"
	"message against the public keys given (PEM files; a private key file gives\n"
	"its public half), in either form (the tf-* properties or the compact tf).\n"
	"--key-of BROKER PEM (repeatable) trusts the key for stamps of broker id\n"
	"BROKER only: a stamp that names another broker under it fails with `key of\n"
	"another broker`. --key PEM... trusts each key for any broker: a stamp under\n"
	"it may name whatever broker its signer wrote. A key given both ways is\n"
	"bound. A message relayed between brokers carries a chain of stamps (its\n"
	"tf-hop properties and the newest stamp): every stamp of it is checked, each\n"
	"with the key its kid names, so give the key of every broker on the path,\n"
	"each with --key-of: with --key, anyone holding one of the keys could make\n"
	"up stamps of the other brokers, a whole path through them included.\n"
	"Prints for each message `ok <tf-id> <topic>`, for a chain\n"
	"`ok <tf-id> <topic> path: <org>/<client> -> <broker> -> ... -> <broker>`\n"
	"(the origin's organization, - if none, and client, then each broker from\n"
	"the origin's to the last), or `FAIL <tf-id|-> <topic> <reason>`, for a\n"
	"chain with ` at stamp <n> (<broker>)` after it (1 is the origin's). Stops\n"
	"after N messages (default: never). Exit status 1 if any FAIL, 2 on bad\n"
	"usage or when the broker cannot be reached.\n";

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

/* Adds the key in the PEM file path to keys, bound to broker (NULL: for
 * any broker). Returns TF_OK, or the error of tf_keyring_add_file or
 * tf_keyring_bind, which err describes. */
static int add_key(struct tf_keyring *keys, const char *path, const char *broker,
		struct tf_err *err)
{
	char kid[TF_KID_LEN + 1];
	struct tf_err why;
	int rc = tf_keyring_add_file(keys, path, kid, err);

	if (rc != TF_OK || broker == NULL)
		return rc;
	rc = tf_keyring_bind(keys, kid, broker, &why);
	if (rc != TF_OK)
		return tf_err_set(err, rc, "%s: %s", path, why.msg);
	return TF_OK;
}

/* Offers every user property of a message to the stamp reader, which
 * keeps the values it takes (the rest are freed at once). */
static void read_properties(const mosquitto_property *props, struct tf_stamp_reader *r)
{
	for (const mosquitto_property *p = props; p != NULL; p = mosquitto_property_next(p)) {
		char *name = NULL, *value = NULL;

		if (mosquitto_property_identifier(p) != MQTT_PROP_USER_PROPERTY
				|| mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name,
					&value, false) == NULL)
			continue;
		if (!tf_stamp_reader_add(r, name, value))
			free(value);
		free(name);
	}
}

/* The path of a chain that checked out: who published the message, then
 * each broker it went through, oldest first. */
static void print_path(const struct tf_chain *c)
{
	const struct tf_stamp *origin = &c->stamps[0];

	printf(" path: %s/%s", origin->org[0] != '\0' ? origin->org : "-", origin->client);
	for (uint32_t i = 0; i < c->n; i++)
		printf(" -> %s", c->stamps[i].broker);
}

/* One line per message. A message with one stamp prints as it always has;
 * a chain adds its path, or which stamp failed. */
static void report(const struct tf_chain *c, const char *topic, enum tf_stamp_check verdict,
		uint32_t at)
{
	/* The message id is the newest stamp's: read, if not believed. */
	const char *id = c->n > 0 ? c->stamps[c->n - 1].id : NULL;

	if (verdict == TF_STAMP_VALID) {
		printf("ok %s %s", id, topic);
		if (c->n > 1)
			print_path(c);
	} else {
		printf("FAIL %s %s %s", id != NULL ? id : "-", topic,
			tf_stamp_check_reason(verdict));
		if (c->n > 1)
			printf(" at stamp %u (%s)", (unsigned)at + 1,
				c->stamps[at].broker != NULL ? c->stamps[at].broker : "-");
	}
	putchar('\n');
	fflush(stdout);
}

static void on_message(struct mosquitto *mosq, void *ctx, const struct mosquitto_message *msg,
		const mosquitto_property *props)
{
	struct verify_state *st = ctx;
	struct tf_stamp_reader reader = { 0 };
	struct tf_chain chain;
	enum tf_stamp_check verdict;
	uint32_t at = 0;

	/* Either form: the tf-* properties or the compact tf, and the tf-hop
	 * records of a relayed message. A chain that cannot be read is
	 * reported without an id: n is 0. */
	read_properties(props, &reader);
	verdict = tf_chain_read(&reader, msg->topic, msg->payload, (size_t)msg->payloadlen, &chain);
	if (verdict == TF_STAMP_VALID)
		verdict = tf_chain_check(&chain, st->keys, msg->topic, msg->payload,
			(size_t)msg->payloadlen, &at);
	report(&chain, msg->topic, verdict, at);
	if (verdict != TF_STAMP_VALID)
		st->failed = true;
	tf_stamp_reader_free_values(&reader);
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

	if (argc == 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
		fputs(verify_usage, stdout);
		return TFCTL_OK;
	}
	st.keys = tf_keyring_new();
	if (st.keys == NULL)
		return usage_error("out of memory");
	for (int i = 0; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(opt, "--key") == 0) {
			/* One or more key files, up to the next option. */
			while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
				if (add_key(st.keys, argv[++i], NULL, &err) != TF_OK) {
					fprintf(stderr, "tfctl: %s\n", err.msg);
					goto out;
				}
				n_keys++;
			}
			continue;
		}
		if (strcmp(opt, "--key-of") == 0) {
			/* A broker id and one key file, bound to it. */
			if (i + 2 >= argc || strncmp(argv[i + 1], "--", 2) == 0
					|| strncmp(argv[i + 2], "--", 2) == 0) {
				rc = usage_error("--key-of takes a broker id and a PEM file");
				goto out;
			}
			if (add_key(st.keys, argv[i + 2], argv[i + 1], &err) != TF_OK) {
				fprintf(stderr, "tfctl: %s\n", err.msg);
				goto out;
			}
			n_keys++;
			i += 2;
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
		rc = usage_error("at least one --key or --key-of is required");
		goto out;
	}
	rc = tfctl_session_run(&session);
	if (rc == TFCTL_OK && st.failed)
		rc = TFCTL_NO;
out:
	tf_keyring_free(st.keys);
	return rc;
}
