/* tfctl trace --db DIR message | recipients | find | verify | export
 * (operations-v1) | policy (a policy's history, federation-v1): the trace store, read while the broker writes it; and
 * migrate, which copies a store of trustflow 0.1 into the current format.
 * tfctl trace join, which reads exports and no store, is join_cmd.c's. */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/trace/trace_query.h"
#include "broker/tfctl/tfctl.h"
#include "policy/rfc3339.h"

static const char trace_usage[] =
	"usage: tfctl trace --db DIR message ID\n"
	"       tfctl trace --db DIR recipients --policy ID [--since T] [--until T]\n"
	"       tfctl trace --db DIR find --topic TOPIC [--sha256 HEX] [--since T]\n"
	"       tfctl trace --db DIR verify [--key PEM]...\n"
	"       tfctl trace --db DIR export [--since T] [--checkpoints]\n"
	"       tfctl trace --db DIR policy --policy ID\n"
	"       tfctl trace --db DIR migrate --out NEW_DIR\n"
	"       tfctl trace join [--key-of BROKER PEM]... [--checkpoints FILE]... ID EXPORT...\n"
	"\n"
	"message     what happened to one message: who received it, who did not and why\n"
	"recipients  one line per client that received data of a policy\n"
	"find        one line per message on a topic (and with a payload SHA-256);\n"
	"            TOPIC may be a filter (+, #), which reads every event from --since on\n"
	"verify      recomputes the hash chain and checks the signed checkpoints;\n"
	"            without --key, against the public keys the broker recorded\n"
	"export      every event, one line each, with its chain hash; --checkpoints: then\n"
	"            the stored checkpoints that bear on them, {\"checkpoint\": {...}} each\n"
	"policy      one line per version of a policy the broker accepted: when it came\n"
	"            into force, its file's SHA-256, and the key that signed it\n"
	"migrate     copies a store written by trustflow 0.1 (format 1, which this\n"
	"            version does not open) into NEW_DIR in the current format; every\n"
	"            event keeps its seq, time, fields and chain hash, so checkpoints\n"
	"            kept outside stay valid. DIR is left as it was\n"
	"join        joins several brokers' exports (--checkpoints) by message id: every\n"
	"            recipient on every broker, each broker's part checked against its\n"
	"            own signed checkpoints (tfctl trace join --help)\n"
	"\n"
	"T is RFC 3339 or ms since the epoch. Exit status: 0 success, 1 no such\n"
	"message or a failed verification, 2 bad usage or an unreadable store.\n";

static int usage_error(const char *what)
{
	fprintf(stderr, "tfctl trace: %s\n%s", what, trace_usage);
	return TFCTL_USAGE;
}

/* The options after the command word. */
struct trace_args {
	const char *policy, *topic, *sha256;
	const char *keys[16];
	int n_keys;
	int64_t since_ms, until_ms;
};

static int parse_args(int argc, char **argv, const char *allowed, struct trace_args *a)
{
	a->since_ms = 0;
	a->until_ms = INT64_MAX;
	for (int i = 0; i < argc; i += 2) {
		const char *opt = argv[i];
		char word[32];

		snprintf(word, sizeof(word), " %s ", opt);
		if (strncmp(opt, "--", 2) != 0 || strstr(allowed, word) == NULL)
			return usage_error("unknown option");
		if (i + 1 >= argc)
			return usage_error("an option is missing its value");
		if (strcmp(opt, "--policy") == 0) {
			a->policy = argv[i + 1];
		} else if (strcmp(opt, "--topic") == 0) {
			a->topic = argv[i + 1];
		} else if (strcmp(opt, "--sha256") == 0) {
			a->sha256 = argv[i + 1];
		} else if (strcmp(opt, "--key") == 0) {
			if (a->n_keys == (int)(sizeof(a->keys) / sizeof(a->keys[0])))
				return usage_error("too many --key");
			a->keys[a->n_keys++] = argv[i + 1];
		} else if (!tf_time_arg_parse(argv[i + 1],
				strcmp(opt, "--since") == 0 ? &a->since_ms : &a->until_ms)) {
			return usage_error("not an RFC 3339 time or ms since the epoch");
		}
	}
	return TFCTL_OK;
}

static int failed(const struct tf_err *err)
{
	fprintf(stderr, "tfctl: %s\n", err->msg);
	return TFCTL_USAGE;
}

static int cmd_message(struct tf_trace_store *s, int argc, char **argv)
{
	struct tf_err err = { "" };
	cJSON *o;
	char *text;

	if (argc != 1)
		return usage_error("message needs one message ID");
	o = tf_query_message(s, argv[0], &err);
	if (o == NULL) {
		fprintf(stderr, "tfctl: %s\n", err.msg);
		return TFCTL_NO;
	}
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (text == NULL)
		return usage_error("out of memory");
	printf("%s\n", text);
	free(text);
	return TFCTL_OK;
}

static int cmd_recipients(struct tf_trace_store *s, int argc, char **argv)
{
	struct trace_args a = { 0 };
	struct tf_err err = { "" };
	size_t n;
	int rc = parse_args(argc, argv, " --policy --since --until ", &a);

	if (rc != TFCTL_OK)
		return rc;
	if (a.policy == NULL)
		return usage_error("recipients needs --policy ID");
	if (tf_query_recipients(s, a.policy, a.since_ms, a.until_ms, stdout, &n, &err) != TF_OK)
		return failed(&err);
	return TFCTL_OK;
}

static int cmd_find(struct tf_trace_store *s, int argc, char **argv)
{
	struct trace_args a = { 0 };
	struct tf_err err = { "" };
	size_t n;
	int rc = parse_args(argc, argv, " --topic --sha256 --since ", &a);

	if (rc != TFCTL_OK)
		return rc;
	if (a.topic == NULL)
		return usage_error("find needs --topic TOPIC");
	if (tf_query_find(s, a.topic, a.sha256, a.since_ms, stdout, &n, &err) != TF_OK)
		return failed(&err);
	return TFCTL_OK;
}

static int cmd_verify(struct tf_trace_store *s, int argc, char **argv)
{
	struct trace_args a = { 0 };
	struct tf_verify_result r;
	struct tf_keyring *ring = NULL;
	struct tf_err err = { "" };
	int rc = parse_args(argc, argv, " --key ", &a);

	if (rc != TFCTL_OK)
		return rc;
	if (a.n_keys > 0 && (ring = tf_keyring_new()) == NULL)
		return usage_error("out of memory");
	for (int i = 0; i < a.n_keys; i++) {
		if (tf_keyring_add_file(ring, a.keys[i], NULL, &err) != TF_OK) {
			tf_keyring_free(ring);
			return failed(&err);
		}
	}
	rc = tf_query_verify(s, ring, &r, &err);
	tf_keyring_free(ring);
	if (rc != TF_OK)
		return failed(&err);
	tf_query_print_verify(&r, stdout);
	return r.ok ? TFCTL_OK : TFCTL_NO;
}

static int cmd_export(struct tf_trace_store *s, int argc, char **argv)
{
	struct trace_args a = { 0 };
	struct tf_err err = { "" };
	char *rest[4];
	int n_rest = 0, rc;
	bool checkpoints = false;
	size_t n;

	/* --checkpoints, a flag, anywhere among the options. */
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--checkpoints") == 0 && !checkpoints)
			checkpoints = true;
		else if (n_rest == (int)(sizeof(rest) / sizeof(rest[0])))
			return usage_error("too many arguments to export");
		else
			rest[n_rest++] = argv[i];
	}
	if ((rc = parse_args(n_rest, rest, " --since ", &a)) != TFCTL_OK)
		return rc;
	if (tf_query_export(s, a.since_ms, stdout, &n, &err) != TF_OK)
		return failed(&err);
	if (checkpoints && tf_query_export_checkpoints(s, a.since_ms, stdout, &n, &err) != TF_OK)
		return failed(&err);
	return TFCTL_OK;
}

static int cmd_policy(struct tf_trace_store *s, int argc, char **argv)
{
	struct trace_args a = { 0 };
	struct tf_err err = { "" };
	size_t n;
	int rc = parse_args(argc, argv, " --policy ", &a);

	if (rc != TFCTL_OK)
		return rc;
	if (a.policy == NULL)
		return usage_error("policy needs --policy ID");
	if (tf_query_policy_history(s, a.policy, stdout, &n, &err) != TF_OK)
		return failed(&err);
	if (n == 0) {
		fprintf(stderr, "tfctl: the trace holds no version of policy %s\n", a.policy);
		return TFCTL_NO;
	}
	return TFCTL_OK;
}

/* migrate works on a store that cannot be opened: it has no snapshot. */
static int cmd_migrate(const char *from, int argc, char **argv)
{
	struct tf_err err = { "" };
	uint64_t events;

	if (argc != 2 || strcmp(argv[0], "--out") != 0)
		return usage_error("migrate needs --out NEW_DIR");
	if (tf_trace_migrate(from, argv[1], &events, &err) != TF_OK)
		return failed(&err);
	printf("{\"events\":%llu}\n", (unsigned long long)events);
	return TFCTL_OK;
}

int tfctl_trace(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(struct tf_trace_store *s, int argc, char **argv);
	} commands[] = {
		{ "message", cmd_message }, { "recipients", cmd_recipients }, { "find", cmd_find },
		{ "verify", cmd_verify }, { "export", cmd_export }, { "policy", cmd_policy },
	};
	struct tf_trace_store *s;
	struct tf_err err = { "" };
	int rc;

	if (argc == 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
		fputs(trace_usage, stdout);
		return TFCTL_OK;
	}
	if (argc >= 1 && strcmp(argv[0], "join") == 0)
		return tfctl_trace_join(argc - 1, argv + 1);
	if (argc < 3 || strcmp(argv[0], "--db") != 0)
		return usage_error("--db DIR and a command are required");
	if (strcmp(argv[2], "migrate") == 0)
		return cmd_migrate(argv[1], argc - 3, argv + 3);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[2], commands[i].name) != 0)
			continue;
		if (tf_trace_open(argv[1], false, 0, &s, &err) != TF_OK)
			return failed(&err);
		if (tf_trace_read_begin(s, &err) != TF_OK) {
			tf_trace_close(s);
			return failed(&err);
		}
		rc = commands[i].run(s, argc - 3, argv + 3);
		tf_trace_read_end(s);
		tf_trace_close(s);
		if (fflush(stdout) != 0)
			return TFCTL_USAGE;
		return rc;
	}
	return usage_error("unknown trace command");
}
