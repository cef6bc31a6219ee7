/* tfctl policy new: a starting policy for a data owner to edit.
 *
 * Policy files are JSON, which has no comments, so the guidance goes in
 * the policy's description, and the structure stays small: publishers,
 * one consumer rule with purposes and a time window, a retention. The
 * consumer rule names no organization, so the file shares nothing with
 * anyone until its owner says with whom: a template put in force
 * unedited fails closed. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "broker/tfctl/tfctl.h"
#include "broker/util/arena.h"
#include "policy/id.h"
#include "policy/jsonfile.h"
#include "policy/policy.h"
#include "policy/rfc3339.h"
#include "policy/topic.h"

static const char guidance[] =
	"A starting policy: replace this description with what the data is, then edit the "
	"rest. topics: the MQTT topic filters this policy governs (+ stands for one level, # "
	"for any number, last only). publishers: who may publish there; without orgs, only "
	"clients of your own organization, here those with the role sensor. Your organization "
	"always receives its own data. consumers: who else may receive it; a client must match "
	"every list of a rule (orgs, clients, roles, purposes). This rule names no organization "
	"yet, so it shares nothing: put your partner's organization id (from the identities "
	"file) in orgs, and the purpose agreed with it in purposes. not_before and not_after "
	"bound the rule: a date alone is a whole day in UTC, so the rule holds from the start of "
	"not_before through the end of not_after; a time needs its offset "
	"(2026-06-30T12:00:00Z). retention_seconds: no one receives a message more than this "
	"many seconds after the broker got it (here one day). Also possible: forwarding, "
	"limits, schema, on_violation, on_anomaly (docs/policy-guide.md). Raise version on "
	"every edit, and run tfctl policy check --identities IDENTITIES FILE before handing "
	"the file over.";

struct new_args {
	const char *owner, *id, *out;
	const char *topics[TF_POLICY_MAX_TOPICS];
	int n_topics;
};

static int new_usage_error(const char *what)
{
	fprintf(stderr, "tfctl policy new: %s\n"
		"usage: tfctl policy new --owner ORG --id ID [--topic FILTER]... [--out FILE]\n",
		what);
	return TFCTL_USAGE;
}

/* Each --topic must be a filter a policy may govern, given once. */
static int check_topics(const struct new_args *a)
{
	char shown[TF_TOPIC_MAX_LEN + 8];
	const char *why;

	for (int i = 0; i < a->n_topics; i++) {
		tf_json_escape_name(shown, sizeof(shown), a->topics[i]);
		if (!tf_topic_filter_valid(a->topics[i], &why)) {
			fprintf(stderr, "tfctl policy new: --topic \"%s\": not a valid topic filter: %s\n",
				shown, why);
			return TFCTL_USAGE;
		}
		for (int j = 0; j < i; j++) {
			if (strcmp(a->topics[i], a->topics[j]) == 0) {
				fprintf(stderr, "tfctl policy new: --topic \"%s\" is given twice\n", shown);
				return TFCTL_USAGE;
			}
		}
	}
	return TFCTL_OK;
}

static int parse_new(int argc, char **argv, struct new_args *a)
{
	for (int i = 0; i < argc; i += 2) {
		const char *opt = argv[i];

		if (i + 1 >= argc)
			return new_usage_error("an option is missing its value");
		if (strcmp(opt, "--owner") == 0 && a->owner == NULL)
			a->owner = argv[i + 1];
		else if (strcmp(opt, "--id") == 0 && a->id == NULL)
			a->id = argv[i + 1];
		else if (strcmp(opt, "--out") == 0 && a->out == NULL)
			a->out = argv[i + 1];
		else if (strcmp(opt, "--topic") == 0 && a->n_topics < TF_POLICY_MAX_TOPICS)
			a->topics[a->n_topics++] = argv[i + 1];
		else if (strcmp(opt, "--topic") == 0)
			return new_usage_error("at most 256 topics");
		else
			return new_usage_error("unknown or repeated option");
	}
	if (a->owner == NULL || a->id == NULL)
		return new_usage_error("new needs --owner ORG and --id ID");
	if (!tf_id_is_valid(a->owner) || !tf_id_is_valid(a->id))
		return new_usage_error("ORG and ID are 1 to 128 characters A-Z a-z 0-9 . _ : @ -, "
			"starting with a letter or digit");
	return check_topics(a);
}

/* The first day of the rule's window, today (UTC), and its last, the day
 * before the same date a year later, each as "YYYY-MM-DD". */
static void one_year_from_today(char from[11], char until[11])
{
	char day[25], next[16], why[TF_RFC3339_WHY_MAX];
	struct timespec now;
	int64_t next_ms;
	unsigned year;

	clock_gettime(CLOCK_REALTIME, &now);
	tf_rfc3339_format((int64_t)now.tv_sec * 1000, day);
	snprintf(from, 11, "%.10s", day);
	year = (unsigned)((day[0] - '0') * 1000 + (day[1] - '0') * 100 + (day[2] - '0') * 10
		+ (day[3] - '0'));
	snprintf(next, sizeof(next), "%04u%.6s", (year + 1) % 10000u, day + 4);
	/* From 29 February, a year later is 1 March. */
	if (tf_rfc3339_parse_day_or_time(next, &next_ms, why) != TF_RFC3339_DATE)
		next_ms = (int64_t)now.tv_sec * 1000 + 366 * TF_RFC3339_DAY_MS;
	tf_rfc3339_format(next_ms - TF_RFC3339_DAY_MS, day);
	snprintf(until, 11, "%.10s", day);
}

/* Writes s as a JSON string. Returns false when out of memory. */
static bool put_string(FILE *f, const char *s)
{
	cJSON *item = cJSON_CreateString(s);
	char *text = item ? cJSON_PrintUnformatted(item) : NULL;

	if (text != NULL)
		fputs(text, f);
	free(text);
	cJSON_Delete(item);
	return text != NULL;
}

/* Writes the template into f, laid out as the examples of
 * docs/policy-guide.md are. */
static bool put_template(FILE *f, const struct new_args *a)
{
	char from[11], until[11];
	bool ok = true;

	one_year_from_today(from, until);
	fputs("{\n  \"trustflow_policy\": 1,\n  \"id\": ", f);
	ok = ok && put_string(f, a->id);
	fputs(",\n  \"version\": 1,\n  \"owner\": ", f);
	ok = ok && put_string(f, a->owner);
	fputs(",\n  \"description\": ", f);
	ok = ok && put_string(f, guidance);
	fputs(",\n  \"topics\": [", f);
	for (int i = 0; i < a->n_topics; i++) {
		fputs(i ? ", " : "", f);
		ok = ok && put_string(f, a->topics[i]);
	}
	fprintf(f, "],\n"
		"  \"publishers\": { \"roles\": [\"sensor\"] },\n"
		"  \"consumers\": [\n"
		"    { \"orgs\": [], \"purposes\": [\"agreed-purpose\"],\n"
		"      \"not_before\": \"%s\", \"not_after\": \"%s\" }\n"
		"  ],\n"
		"  \"retention_seconds\": 86400\n"
		"}\n", from, until);
	return ok;
}

/* Checks text as `tfctl policy check` would without an identities file:
 * what the arguments' checks above let through (a topic that is not
 * UTF-8, say) is reported as the policy error it would be. */
static bool template_valid(const char *text, size_t len)
{
	struct tf_arena arena = { 0 };
	struct tf_err err = { "" };
	struct tf_policy p;
	struct tf_jctx c;
	cJSON *root;
	int rc;

	rc = tf_json_parse(text, len, "the new policy", &root, &err);
	if (rc == TF_OK) {
		tf_jctx_init(&c, "the new policy", &err);
		rc = tf_policy_from_json(&c, root, NULL, &arena, &p);
		cJSON_Delete(root);
	}
	if (rc == TF_OK)
		tf_policy_release(&p);
	else
		fprintf(stderr, "tfctl: %s\n", err.msg);
	tf_arena_free(&arena);
	return rc == TF_OK;
}

/* Writes len bytes of text to path, which must not exist yet: an owner's
 * edited policy is never overwritten by a fresh template. */
static int write_new_file(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	bool ok;
	FILE *f;

	if (fd < 0 && errno == EEXIST) {
		fprintf(stderr, "tfctl: %s exists; not overwriting it (choose another --out, or "
			"remove it first)\n", path);
		return TFCTL_USAGE;
	}
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		fprintf(stderr, "tfctl: %s: cannot write: %s\n", path, strerror(errno));
		if (fd >= 0) {
			close(fd);
			remove(path);
		}
		return TFCTL_USAGE;
	}
	ok = fwrite(text, 1, len, f) == len;
	ok = fclose(f) == 0 && ok;
	if (!ok) {
		fprintf(stderr, "tfctl: %s: cannot write: %s\n", path, strerror(errno));
		remove(path);
		return TFCTL_USAGE;
	}
	return TFCTL_OK;
}

int tfctl_policy_new(int argc, char **argv)
{
	char fallback[2 * TF_ID_MAX_LEN + 8];
	struct new_args a = { 0 };
	char *text = NULL;
	size_t len = 0;
	bool ok;
	FILE *f;
	int rc = parse_new(argc, argv, &a);

	if (rc != TFCTL_OK)
		return rc;
	/* Without --topic, one filter of its own under the owner and the id. */
	if (a.n_topics == 0) {
		snprintf(fallback, sizeof(fallback), "%s/%s/#", a.owner, a.id);
		a.topics[a.n_topics++] = fallback;
	}
	if ((f = open_memstream(&text, &len)) == NULL) {
		fputs("tfctl: out of memory\n", stderr);
		return TFCTL_USAGE;
	}
	ok = put_template(f, &a);
	ok = fclose(f) == 0 && ok;
	if (!ok)
		fputs("tfctl: out of memory\n", stderr);
	else if (!template_valid(text, len))
		ok = false;
	if (ok && a.out != NULL)
		rc = write_new_file(a.out, text, len);
	else if (ok)
		rc = fwrite(text, 1, len, stdout) == len ? TFCTL_OK : TFCTL_USAGE;
	else
		rc = TFCTL_USAGE;
	free(text);
	return rc;
}
