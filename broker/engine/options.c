#include "broker/engine/options.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "broker/util/number.h"
#include "policy/id.h"

enum option_kind {
	OPT_ID,      /* an identifier of policy-v1 (policy/id.h) */
	OPT_PATH,    /* a file or directory name */
	OPT_CHOICE,  /* one of the words in choices */
	OPT_NUMBER,  /* a decimal integer in [min, max], or one of the words in choices */
};

struct option_def {
	const char *name;
	enum option_kind kind;
	size_t offset;             /* of the char * in struct tf_options */
	const char *default_value; /* NULL: required */
	const char *choices;       /* OPT_CHOICE: the words, separated by '|' */
	const char *doc;
	long min, max;             /* OPT_NUMBER: the range */
};

#define SLOT(member) offsetof(struct tf_options, member)

static const struct option_def option_table[] = {
	{ "broker_id", OPT_ID, SLOT(broker_id), "trustflow", NULL,
	  "this broker's id, recorded in every stamp and trace record", 0, 0 },
	{ "identities", OPT_PATH, SLOT(identities), NULL, NULL,
	  "the identities file (organizations and clients)", 0, 0 },
	{ "policy_dir", OPT_PATH, SLOT(policy_dir), NULL, NULL,
	  "the directory of policy files (*.json)", 0, 0 },
	{ "default_access", OPT_CHOICE, SLOT(default_access), "deny", "allow|deny",
	  "what happens on topics no policy governs: deny, or allow as a plain broker", 0, 0 },
	{ "signing_key", OPT_PATH, SLOT(signing_key), NULL, NULL,
	  "the broker's Ed25519 private key (PKCS#8 PEM, mode 0600) that signs stamps", 0, 0 },
	{ "dev_key_autogen", OPT_CHOICE, SLOT(dev_key_autogen), "false", "true|false",
	  "true: create signing_key if it does not exist (for demos, not for production)", 0, 0 },
	{ "signing", OPT_CHOICE, SLOT(signing), "pool", "pool|deterministic",
	  "pool: signatures with nonces precomputed on worker threads (fast on the broker's "
	  "thread); deterministic: RFC 8032 signing on the broker's thread", 0, 0 },
	{ "signing_workers", OPT_NUMBER, SLOT(signing_workers), "auto", "auto",
	  "threads filling the signing pool; auto: the cores minus one, at least one", 1, 64 },
	{ "signing_pool_size", OPT_NUMBER, SLOT(signing_pool_size), "32768", NULL,
	  "precomputed nonces the signing pool holds (64 bytes each, locked in memory): "
	  "a burst of this many stamps costs the broker no full signature", 64, 1048576 },
	{ "key_dir", OPT_PATH, SLOT(key_dir), "", NULL,
	  "a directory of earlier public keys (*.pem), published so old stamps still verify", 0, 0 },
	{ "stamp_all", OPT_CHOICE, SLOT(stamp_all), "true", "true|false",
	  "true: stamp every message on a non-$ topic; false: only governed ones", 0, 0 },
	{ "stamp_form", OPT_CHOICE, SLOT(stamp_form), "compact", "compact|full",
	  "compact: a stamp travels as one user property tf; full: as the eleven tf-* "
	  "properties", 0, 0 },
	{ "trace_db", OPT_PATH, SLOT(trace_db), "", NULL,
	  "the trace store's directory (LMDB); none: nothing is recorded", 0, 0 },
	{ "trace_sync_ms", OPT_NUMBER, SLOT(trace_sync_ms), "100", NULL,
	  "ms of recorded events a crash of the machine may lose; 0: none", 0, 60000 },
	{ "trace_retention_days", OPT_NUMBER, SLOT(trace_retention_days), "0", NULL,
	  "days events are kept in the trace store; 0: forever", 0, 36500 },
	{ "trace_max_mb", OPT_NUMBER, SLOT(trace_max_mb), "0", NULL,
	  "the most the trace store may grow to, in MiB; 0: as far as the disk allows",
	  0, 16L * 1024 * 1024 },
	{ "require_signed_policies", OPT_CHOICE, SLOT(require_signed_policies), "false",
	  "true|false", "true: every policy must come with its owner's signature (FILE.sig, by "
	  "one of the owner's policy_keys); false: those of owners with policy_keys", 0, 0 },
	{ "require_cert_org_match", OPT_CHOICE, SLOT(require_cert_org_match), "false", "true|false",
	  "true: a client's TLS certificate must name its organization (subject O); clients whose "
	  "certificate does not are refused and disconnected", 0, 0 },
	{ "guard_rate_factor", OPT_NUMBER, SLOT(guard_rate_factor), "10", NULL,
	  "a flow sending this many times its usual rate is an anomaly; 0: off", 0, 1000000 },
	{ "guard_rate_min", OPT_NUMBER, SLOT(guard_rate_min), "20", NULL,
	  "messages in one second a flow must reach for a rate anomaly", 1, 1000000 },
	{ "guard_rate_warmup_s", OPT_NUMBER, SLOT(guard_rate_warmup_s), "30", NULL,
	  "seconds of a flow's history before its rate is judged", 1, 86400 },
	{ "guard_size_factor", OPT_NUMBER, SLOT(guard_size_factor), "10", NULL,
	  "a payload this many times larger or smaller than usual is an anomaly; 0: off",
	  0, 1000000 },
	{ "guard_replay_window_s", OPT_NUMBER, SLOT(guard_replay_window_s), "0", NULL,
	  "a payload its publisher sent within this many s is a replay; 0: off", 0, 86400 },
	{ "guard_denied_burst", OPT_NUMBER, SLOT(guard_denied_burst), "20", NULL,
	  "refusals within guard_denied_window_s that block a client; 0: never", 0, 64 },
	{ "guard_denied_window_s", OPT_NUMBER, SLOT(guard_denied_window_s), "10", NULL,
	  "the window of guard_denied_burst, in s", 1, 86400 },
	{ "guard_block_s", OPT_NUMBER, SLOT(guard_block_s), "60", NULL,
	  "how long a client stays blocked after a burst of refusals, in s", 1, 86400 },
	{ "guard_leak_window_s", OPT_NUMBER, SLOT(guard_leak_window_s), "86400", NULL,
	  "how long data under forwarding deny is watched for leaks, in s; 0: off", 0, 31536000 },
	{ "max_inflight_messages", OPT_NUMBER, SLOT(max_inflight_messages), "20", NULL,
	  "mosquitto's max_inflight_messages (give both the same value): a connection with more "
	  "QoS 2 messages than this unanswered within a second raises a qos2-overrun alert; "
	  "0: never", 0, 65535 },
	{ "metrics_interval_s", OPT_NUMBER, SLOT(metrics_interval_s), "5", NULL,
	  "how often the broker publishes its metrics on $trustflow/metrics (retained), in s; "
	  "0: never", 0, 3600 },
};

#define OPTION_COUNT ((int)(sizeof(option_table) / sizeof(option_table[0])))

_Static_assert(sizeof(option_table) / sizeof(option_table[0]) <= 8 * sizeof(unsigned),
	"struct tf_options.seen has one bit per option");

static char **option_slot(struct tf_options *opts, const struct option_def *def)
{
	return (char **)(void *)((char *)opts + def->offset);
}

static const struct option_def *option_find(const char *name, int *index)
{
	for (int i = 0; i < OPTION_COUNT; i++) {
		if (strcmp(option_table[i].name, name) == 0) {
			*index = i;
			return &option_table[i];
		}
	}
	return NULL;
}

/* Whether value is one of the '|'-separated words of choices. */
static bool is_choice(const char *choices, const char *value)
{
	size_t len = strlen(value);

	for (const char *c = choices; *c != '\0';) {
		size_t n = strcspn(c, "|");

		if (n == len && strncmp(c, value, n) == 0)
			return true;
		c += n + (c[n] == '|');
	}
	return false;
}

/* Checks value against the option's kind. Returns TF_OK or TF_ERR_INVALID. */
static int option_check(const struct option_def *def, const char *value, struct tf_err *err)
{
	switch (def->kind) {
	case OPT_ID:
		if (!tf_id_is_valid(value))
			return tf_err_set(err, TF_ERR_INVALID,
				"plugin_opt_%s: \"%s\" is not a valid id (1 to 128 characters "
				"A-Z a-z 0-9 . _ : @ -, starting with a letter or digit)",
				def->name, value);
		return TF_OK;
	case OPT_PATH:
		if (value[0] == '\0')
			return tf_err_set(err, TF_ERR_INVALID, "plugin_opt_%s: a path is required",
				def->name);
		return TF_OK;
	case OPT_CHOICE:
		if (!is_choice(def->choices, value))
			return tf_err_set(err, TF_ERR_INVALID, "plugin_opt_%s: \"%s\" is not one of %s",
				def->name, value, def->choices);
		return TF_OK;
	case OPT_NUMBER: {
		long n;

		if (def->choices != NULL && is_choice(def->choices, value))
			return TF_OK;
		if (!tf_parse_long(value, def->min, def->max, &n))
			return tf_err_set(err, TF_ERR_INVALID,
				"plugin_opt_%s: \"%s\" is not a whole number from %ld to %ld%s%s",
				def->name, value, def->min, def->max, def->choices ? " or " : "",
				def->choices ? def->choices : "");
		return TF_OK;
	}
	}
	return tf_err_set(err, TF_ERR_INVALID, "plugin_opt_%s: unsupported kind", def->name);
}

int tf_options_init(struct tf_options *opts, struct tf_err *err)
{
	memset(opts, 0, sizeof(*opts));
	for (int i = 0; i < OPTION_COUNT; i++) {
		const struct option_def *def = &option_table[i];

		if (def->default_value == NULL)
			continue;
		*option_slot(opts, def) = strdup(def->default_value);
		if (*option_slot(opts, def) == NULL) {
			tf_options_free(opts);
			return tf_err_set(err, TF_ERR_NOMEM, "out of memory reading options");
		}
	}
	return TF_OK;
}

int tf_options_set(struct tf_options *opts, const char *key, const char *value,
		struct tf_err *err)
{
	const struct option_def *def;
	char *copy;
	int index;
	int rc;

	def = option_find(key, &index);
	if (def == NULL)
		return tf_err_set(err, TF_ERR_INVALID,
			"plugin_opt_%s: unknown option (see `tfctl --help` for the list)", key);
	if (opts->seen & (1u << index))
		return tf_err_set(err, TF_ERR_INVALID, "plugin_opt_%s: given more than once", key);
	if (value == NULL)
		value = "";
	rc = option_check(def, value, err);
	if (rc != TF_OK)
		return rc;
	copy = strdup(value);
	if (copy == NULL)
		return tf_err_set(err, TF_ERR_NOMEM, "plugin_opt_%s: out of memory", key);
	free(*option_slot(opts, def));
	*option_slot(opts, def) = copy;
	opts->seen |= 1u << index;
	return TF_OK;
}

int tf_options_finish(const struct tf_options *opts, struct tf_err *err)
{
	for (int i = 0; i < OPTION_COUNT; i++) {
		const struct option_def *def = &option_table[i];

		if (def->default_value == NULL && !(opts->seen & (1u << i)))
			return tf_err_set(err, TF_ERR_INVALID, "plugin_opt_%s is required (%s)",
				def->name, def->doc);
	}
	return TF_OK;
}

void tf_options_free(struct tf_options *opts)
{
	for (int i = 0; i < OPTION_COUNT; i++) {
		free(*option_slot(opts, &option_table[i]));
		*option_slot(opts, &option_table[i]) = NULL;
	}
	opts->seen = 0;
}

int tf_options_count(void)
{
	return OPTION_COUNT;
}

const char *tf_options_name(int i)
{
	return option_table[i].name;
}

const char *tf_options_default(int i)
{
	return option_table[i].default_value;
}

const char *tf_options_doc(int i)
{
	return option_table[i].doc;
}
