/* The plugin's options: mosquitto hands us each `plugin_opt_<name> <value>`
 * line as a key/value pair; this module checks every one against the table
 * of known options and keeps the parsed values. Unknown, repeated or
 * malformed options are errors: a typo must never silently leave a default
 * (and with it a weaker setting) in force. */
#ifndef TF_OPTIONS_H
#define TF_OPTIONS_H

#include "broker/util/error.h"

struct tf_options {
	char *broker_id;      /* owned; the `tf-broker` of stamps */
	char *identities;     /* owned; required */
	char *policy_dir;     /* owned; required */
	char *default_access; /* owned; "allow" or "deny" */
	char *signing_key;    /* owned; required */
	char *dev_key_autogen;/* owned; "true" or "false" */
	char *signing;        /* owned; "pool" or "deterministic" */
	char *signing_workers;/* owned; "auto" or 1..64 */
	char *signing_pool_size; /* owned; 64..1048576 */
	char *key_dir;        /* owned; "" when none */
	char *stamp_all;      /* owned; "true" or "false" */
	char *stamp_form;     /* owned; "compact" or "full" (broker/stamp/forms.h) */
	char *trace_db;       /* owned; "" when no trace store */
	char *trace_sync_ms;  /* owned; numbers, checked against their range */
	char *trace_retention_days;
	char *trace_max_mb;
	char *require_signed_policies; /* owned; "true" or "false" */
	char *require_cert_org_match; /* owned; "true" or "false" */
	char *guard_rate_factor;  /* the anomaly guard's thresholds (broker/guard/guard.h) */
	char *guard_rate_min;
	char *guard_rate_warmup_s;
	char *guard_size_factor;
	char *guard_replay_window_s;
	char *guard_denied_burst;
	char *guard_denied_window_s;
	char *guard_block_s;
	char *guard_leak_window_s;
	char *max_inflight_messages; /* mosquitto's, for the qos2-overrun alert */
	char *metrics_interval_s; /* how often the metrics are published; 0: never */

	unsigned seen;      /* bit i set once table option i was given */
};

/* Fills opts with the defaults. Returns TF_OK or TF_ERR_NOMEM (opts then
 * holds nothing to free). */
int tf_options_init(struct tf_options *opts, struct tf_err *err);

/* Parses one option. key is the name without `plugin_opt_`. Errors:
 * TF_ERR_INVALID (unknown name, given twice, malformed value; err names
 * the option and says what is wrong), TF_ERR_NOMEM. On error opts is
 * unchanged. key and value are borrowed for the call only. */
int tf_options_set(struct tf_options *opts, const char *key, const char *value,
		struct tf_err *err);

/* After the last tf_options_set: fails (TF_ERR_INVALID) when a required
 * option was not given. */
int tf_options_finish(const struct tf_options *opts, struct tf_err *err);

/* Releases what opts owns; opts may then be initialised again. */
void tf_options_free(struct tf_options *opts);

/* Number of known options, and the name, default (NULL: required) and
 * description of the i-th (borrowed, static), for help output and
 * documentation. */
int tf_options_count(void);
const char *tf_options_name(int i);
const char *tf_options_default(int i);
const char *tf_options_doc(int i);

#endif
