/* tfctl policy explain (operations-v1) | sign (federation-v1), and the
 * group's usage; check is in policy_check.c, new in policy_new.c. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "broker/stamp/provenance.h"
#include "broker/util/dirlist.h"
#include "broker/util/growable.h"
#include "broker/tfctl/tfctl.h"
#include "policy/decide.h"
#include "policy/jsonfile.h"
#include "policy/policysig.h"
#include "policy/rfc3339.h"
#include "policy/set.h"

static const char policy_usage[] =
	"usage: tfctl policy check [--identities FILE] [--trace DIR] PATH...\n"
	"       tfctl policy explain --identities FILE --policies DIR --client USER\n"
	"                            --topic TOPIC (--publish | --receive | --subscribe)\n"
	"                            [--at TIME] [--default-access allow|deny]\n"
	"       tfctl policy receivers --identities FILE --policies DIR --policy ID\n"
	"                              [--at TIME]\n"
	"       tfctl policy sign --key OWNER.pem FILE\n"
	"       tfctl policy new --owner ORG --id ID [--topic FILTER]... [--out FILE]\n"
	"\n"
	"check    validates policy files (PATH: files, or directories of *.json) and\n"
	"         everything the files must agree on; with --identities, that file\n"
	"         too and the owners' signatures (saying which key signed); with\n"
	"         --trace, a broker's trace store, that no file rolls back a version\n"
	"         that broker accepted. Prints one line per problem,\n"
	"         `file: $.json.path: message`, and `file: signed by KID, ...`. With\n"
	"         --identities it also warns, `file: $.json.path: warning: message`, of\n"
	"         clients, roles and purposes in selectors that no identity has;\n"
	"         warnings alone leave the exit status 0.\n"
	"explain  says whether USER may publish on, receive from or subscribe to TOPIC,\n"
	"         and why, as JSON. TIME is RFC 3339 or ms since the epoch (default\n"
	"         now). Exit status 0 for allow, 1 for deny.\n"
	"receivers\n"
	"         lists every client of the identities that may receive the data of\n"
	"         policy ID, one JSON object a line for each rule that gives it some:\n"
	"         {\"client\", \"org\", \"rule\": N or \"owner\", \"form\": \"original\" or\n"
	"         \"view\", \"view\": the view's prefix or null, \"not_before\", \"not_after\":\n"
	"         RFC 3339 or null}. With --at, only the rules in force at TIME. Exit\n"
	"         status 1 when there is no policy ID.\n"
	"sign     signs the policy file FILE with the owner's key (tfctl key generate)\n"
	"         into FILE.sig beside it, and prints the key id; the key's public\n"
	"         half goes in the owner's policy_keys (docs/policy-guide.md).\n"
	"new      prints a starting policy of ORG with id ID for the topic filters\n"
	"         given (default ORG/ID/#), to edit: its description says how. It\n"
	"         passes check, and shares the data with no one outside ORG until\n"
	"         its consumer rule names an organization. --out FILE writes it to\n"
	"         FILE instead, which must not exist yet.\n";

int tfctl_policy_usage(const char *what)
{
	fprintf(stderr, "tfctl policy: %s\n%s", what, policy_usage);
	return TFCTL_USAGE;
}

static int usage_error(const char *what)
{
	return tfctl_policy_usage(what);
}

/* --- options --------------------------------------------------------------- */

/* An option that takes a value, and where the value goes. */
struct value_option {
	const char *name;
	const char **slot;
};

/* Reads the options of argv: those of values, --at TIME into *at_ms, and,
 * when action is not NULL, one of --publish, --receive, --subscribe
 * (its name without the dashes) into *action. */
static int parse_options(int argc, char **argv, const struct value_option *values, size_t n,
		int64_t *at_ms, const char **action)
{
	for (int i = 0; i < argc; i++) {
		const char *opt = argv[i];
		const char **slot = NULL;

		if (action != NULL && (strcmp(opt, "--publish") == 0 || strcmp(opt, "--receive") == 0
				|| strcmp(opt, "--subscribe") == 0)) {
			if (*action != NULL)
				return usage_error("give one of --publish, --receive, --subscribe");
			*action = opt + 2;
			continue;
		}
		for (size_t k = 0; k < n && slot == NULL; k++)
			if (strcmp(opt, values[k].name) == 0)
				slot = values[k].slot;
		if (slot == NULL && strcmp(opt, "--at") != 0)
			return usage_error("unknown option");
		if (i + 1 >= argc)
			return usage_error("an option is missing its value");
		if (slot != NULL)
			*slot = argv[++i];
		else if (!tf_time_arg_parse(argv[++i], at_ms))
			return usage_error("--at: not an RFC 3339 time or ms since the epoch");
	}
	return TFCTL_OK;
}

/* --- explain ------------------------------------------------------------- */

struct explain_args {
	const char *identities, *policies, *client, *topic, *action, *default_access;
	int64_t at_ms;
};

static int parse_explain(int argc, char **argv, struct explain_args *a)
{
	const struct value_option values[] = {
		{ "--identities", &a->identities }, { "--policies", &a->policies },
		{ "--client", &a->client }, { "--topic", &a->topic },
		{ "--default-access", &a->default_access },
	};
	struct timespec ts;
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	a->at_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	rc = parse_options(argc, argv, values, sizeof(values) / sizeof(values[0]), &a->at_ms,
		&a->action);
	if (rc != TFCTL_OK)
		return rc;
	if (!a->identities || !a->policies || !a->client || !a->topic || !a->action)
		return usage_error("explain needs --identities, --policies, --client, --topic "
			"and one of --publish, --receive, --subscribe");
	if (a->default_access && strcmp(a->default_access, "allow") != 0
			&& strcmp(a->default_access, "deny") != 0)
		return usage_error("--default-access is allow or deny");
	return TFCTL_OK;
}

static void print_decision(const struct tf_policy_set *set, const struct tf_client *who,
		const struct tf_decision *d)
{
	cJSON *out = tf_decision_json(set, who, d);
	char *text = out ? cJSON_PrintUnformatted(out) : NULL;

	if (text != NULL)
		printf("%s\n", text);
	else
		fputs("tfctl: out of memory\n", stderr);
	free(text);
	cJSON_Delete(out);
}

static int cmd_explain(int argc, char **argv)
{
	struct explain_args a = { 0 };
	struct tf_policy_set_options load = { .identities = NULL };
	struct tf_policy_set *set;
	struct tf_err err = { "" };
	struct tf_decision d;
	const struct tf_client *who;
	int rc = parse_explain(argc, argv, &a);

	if (rc != TFCTL_OK)
		return rc;
	load.identities = a.identities;
	load.policy_dir = a.policies;
	load.default_allow = a.default_access != NULL && strcmp(a.default_access, "allow") == 0;
	if (tf_policy_set_load(&load, &set, &err) != TF_OK) {
		fprintf(stderr, "tfctl: %s\n", err.msg);
		return TFCTL_USAGE;
	}
	who = tf_identities_client(set->ids, a.client);
	if (strcmp(a.action, "publish") == 0)
		tf_decide_publish(set, who, a.topic, &d);
	else if (strcmp(a.action, "receive") == 0)
		tf_decide_receive(set, who, a.topic, a.at_ms, a.at_ms, &d);
	else
		tf_decide_subscribe(set, who, a.topic, a.at_ms, &d);
	print_decision(set, who, &d);
	rc = d.verdict == TF_ALLOW ? TFCTL_OK : TFCTL_NO;
	tf_policy_set_free(set);
	return rc;
}

/* --- receivers ------------------------------------------------------------ */

struct receivers_args {
	const char *identities, *policies, *policy;
	int64_t at_ms;  /* TF_TIME_UNKNOWN: any time */
};

static int parse_receivers(int argc, char **argv, struct receivers_args *a)
{
	const struct value_option values[] = {
		{ "--identities", &a->identities }, { "--policies", &a->policies },
		{ "--policy", &a->policy },
	};
	int rc;

	a->at_ms = TF_TIME_UNKNOWN;
	rc = parse_options(argc, argv, values, sizeof(values) / sizeof(values[0]), &a->at_ms,
		NULL);
	if (rc != TFCTL_OK)
		return rc;
	if (!a->identities || !a->policies || !a->policy)
		return usage_error("receivers needs --identities, --policies and --policy");
	return TFCTL_OK;
}

static bool add_time(cJSON *obj, const char *name, int64_t ms, int64_t absent)
{
	char when[25];

	if (ms == absent)
		return cJSON_AddNullToObject(obj, name) != NULL;
	tf_rfc3339_format_short(ms, when);
	return cJSON_AddStringToObject(obj, name, when) != NULL;
}

/* One line: who receives p's data under rule (an index, or
 * TF_RULE_OWNER_ORG). False when out of memory. */
static bool print_receiver(const struct tf_policy_set *set, const struct tf_policy *p,
		const struct tf_client *who, int rule)
{
	const struct tf_consumer_rule *r = rule >= 0 ? &p->consumers[rule] : NULL;
	cJSON *line = cJSON_CreateObject();
	bool ok = line != NULL
		&& cJSON_AddStringToObject(line, "client", who->username) != NULL
		&& cJSON_AddStringToObject(line, "org", tf_identities_org_id(set->ids, who->org)) != NULL
		&& (r != NULL ? cJSON_AddNumberToObject(line, "rule", rule) != NULL
			      : cJSON_AddStringToObject(line, "rule", "owner") != NULL)
		&& cJSON_AddStringToObject(line, "form", r != NULL && r->view != NULL
			? "view" : "original") != NULL
		&& (r != NULL && r->view != NULL ? cJSON_AddStringToObject(line, "view", r->view) != NULL
						 : cJSON_AddNullToObject(line, "view") != NULL)
		&& add_time(line, "not_before", r != NULL ? r->not_before : INT64_MIN, INT64_MIN)
		&& add_time(line, "not_after", r != NULL ? r->not_after : INT64_MAX, INT64_MAX);
	char *text = ok ? cJSON_PrintUnformatted(line) : NULL;

	if (text != NULL)
		printf("%s\n", text);
	free(text);
	cJSON_Delete(line);
	return text != NULL;
}

/* Every client of the identities that may receive the policy's data, in
 * the identities' order, one line per rule that gives it some: the owner
 * first, then the consumer rules in the policy's order. It asks every
 * client of every rule: an offline question, answered once. */
static int cmd_receivers(int argc, char **argv)
{
	struct receivers_args a = { 0 };
	struct tf_policy_set_options load = { .identities = NULL };
	const struct tf_policy *p;
	const struct tf_client *who;
	struct tf_policy_set *set;
	struct tf_err err = { "" };
	int rc = parse_receivers(argc, argv, &a);

	if (rc != TFCTL_OK)
		return rc;
	load.identities = a.identities;
	load.policy_dir = a.policies;
	if (tf_policy_set_load(&load, &set, &err) != TF_OK) {
		fprintf(stderr, "tfctl: %s\n", err.msg);
		return TFCTL_USAGE;
	}
	p = tf_policy_set_find(set, a.policy);
	if (p == NULL) {
		fprintf(stderr, "tfctl: no policy \"%s\" in %s\n", a.policy, a.policies);
		tf_policy_set_free(set);
		return TFCTL_NO;
	}
	for (uint32_t i = 0; rc == TFCTL_OK && (who = tf_identities_client_at(set->ids, i)) != NULL;
			i++) {
		bool ok = !tf_decide_receives_under(p, who, TF_RULE_OWNER_ORG, a.at_ms)
			|| print_receiver(set, p, who, TF_RULE_OWNER_ORG);

		for (uint32_t r = 0; ok && r < p->n_consumers; r++)
			ok = !tf_decide_receives_under(p, who, (int)r, a.at_ms)
				|| print_receiver(set, p, who, (int)r);
		if (!ok) {
			fputs("tfctl: out of memory\n", stderr);
			rc = TFCTL_USAGE;
		}
	}
	tf_policy_set_free(set);
	return rc;
}

/* --- sign ---------------------------------------------------------------- */

/* Writes text to path through a temporary file beside it, so that no
 * reader sees half a signature. */
static int write_whole(const char *path, const char *text, struct tf_err *err)
{
	char tmp[4096];
	FILE *out;
	bool ok;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return tf_err_set(err, TF_ERR_INVALID, "%s: path too long", path);
	out = fopen(tmp, "w");
	if (out == NULL)
		return tf_err_set(err, TF_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
	ok = fputs(text, out) >= 0;
	ok = fclose(out) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		tf_err_set(err, TF_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
		remove(tmp);
		return TF_ERR_IO;
	}
	return TF_OK;
}

static int cmd_sign(int argc, char **argv)
{
	char sig[TF_SIG_B64_LEN + 2], sig_path[4096];
	struct tf_signer *owner = NULL;
	struct tf_err err = { "" };
	char *bytes = NULL;
	size_t len;
	int rc;

	if (argc != 3 || strcmp(argv[0], "--key") != 0)
		return usage_error("sign needs --key OWNER.pem and one policy FILE");
	if ((size_t)snprintf(sig_path, sizeof(sig_path), "%s.sig", argv[2]) >= sizeof(sig_path))
		return usage_error("FILE: path too long");
	rc = tf_signer_load(argv[1], &owner, &err);
	if (rc == TF_OK)
		rc = tf_file_read(argv[2], NULL, TF_POLICY_MAX_BYTES, &bytes, &len, &err);
	if (rc == TF_OK)
		rc = tf_policy_sig_make(owner, bytes, len, sig, &err);
	if (rc == TF_OK) {
		strcat(sig, "\n");
		rc = write_whole(sig_path, sig, &err);
	}
	if (rc == TF_OK)
		printf("%s\n", tf_signer_kid(owner));
	else
		fprintf(stderr, "tfctl: %s\n", err.msg);
	free(bytes);
	tf_signer_free(owner);
	return rc == TF_OK ? TFCTL_OK : TFCTL_USAGE;
}

int tfctl_policy(int argc, char **argv)
{
	if (argc < 1)
		return usage_error("a subcommand is required");
	if (strcmp(argv[0], "check") == 0)
		return tfctl_policy_check(argc - 1, argv + 1);
	if (strcmp(argv[0], "explain") == 0)
		return cmd_explain(argc - 1, argv + 1);
	if (strcmp(argv[0], "receivers") == 0)
		return cmd_receivers(argc - 1, argv + 1);
	if (strcmp(argv[0], "sign") == 0)
		return cmd_sign(argc - 1, argv + 1);
	if (strcmp(argv[0], "new") == 0)
		return tfctl_policy_new(argc - 1, argv + 1);
	if (strcmp(argv[0], "--help") == 0) {
		fputs(policy_usage, stdout);
		return TFCTL_OK;
	}
	return usage_error("unknown subcommand");
}
