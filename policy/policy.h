/* One policy file of policy-v1: what may happen to one data owner's data
 * on a set of topics. Parsed and validated here; which policy governs a
 * topic, and the decisions, are policy/govern.h and policy/decide.h. */
#ifndef TF_POLICY_POLICY_H
#define TF_POLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "broker/util/arena.h"
#include "policy/identities.h"
#include "policy/jsonfile.h"
#include "policy/schema.h"
#include "policy/selector.h"

#define TF_POLICY_MAX_BYTES        (1024u * 1024)  /* spec: a file may be up to 1 MiB */
#define TF_POLICY_MAX_TOPICS       256
#define TF_POLICY_MAX_CONSUMERS    256
#define TF_POLICY_MAX_FIELDS       256
#define TF_POLICY_FIELD_MAX_LEN    256
#define TF_POLICY_DESCRIPTION_MAX  4096
#define TF_POLICY_MAX_VERSION      2147483647
#define TF_POLICY_MAX_RETENTION_S  (100LL * 365 * 86400)
#define TF_POLICY_MAX_RATE         1000000
#define TF_POLICY_MAX_PAYLOAD      268435455       /* MQTT's largest packet */

enum tf_violation_action {
	TF_VIOLATION_DROP,
	TF_VIOLATION_QUARANTINE,
	TF_VIOLATION_REROUTE,
	TF_VIOLATION_ALERT,
};

/* What happens to a message that breaks a rule (on_violation) or that the
 * anomaly guard flags (on_anomaly). */
struct tf_action {
	enum tf_violation_action action;
	const char *reroute_to;  /* with TF_VIOLATION_REROUTE, else NULL */
	bool disconnect;         /* also disconnect the publisher */
};

struct tf_consumer_rule {
	struct tf_selector who;
	int64_t not_before;      /* ms since the epoch; INT64_MIN when absent */
	int64_t not_after;       /* ms since the epoch; INT64_MAX when absent */
	const char *const *fields; /* NULL: the rule receives whole messages */
	uint32_t n_fields;
	const char *view;        /* the view prefix, with fields */
};

struct tf_policy {
	const char *file;        /* the name errors give for this policy */
	const char *id;
	int64_t version;
	const char *label;       /* "id@version", as stamps and traces record it */
	const char *owner_id;
	uint32_t owner;          /* org index; TF_NONE when loaded without identities */
	const char *description; /* NULL when absent */
	const char *const *topics;
	uint32_t n_topics;
	bool has_publishers;     /* false: any client of the owner org publishes */
	struct tf_selector publishers;   /* without orgs: owner org clients only (decide.c) */
	const struct tf_consumer_rule *consumers;
	uint32_t n_consumers;
	uint32_t n_views;        /* consumer rules with fields and a view */
	bool owner_receives;     /* the owner org receives originals (default);
	                          * false: only as its consumer rules say */
	int64_t retention_ms;    /* 0: no retention limit */
	bool forwarding_deny;
	uint32_t max_messages_per_second; /* 0: no limit */
	uint32_t max_payload_bytes;       /* 0: no limit */
	struct tf_schema *schema;         /* NULL: none; owned, see tf_policy_release */
	struct tf_action on_violation;    /* limits, schema, forwarding; default drop */
	struct tf_action on_anomaly;      /* the guard's findings; default alert */
	const char *signed_by;   /* the key id of its owner's signature; NULL: none checked */
	/* Loaded from a file (tf_policy_load): the file's exact bytes, their
	 * SHA-256, and its .sig's signature (base64) when one was checked
	 * (else NULL), as the trace records and the broker publishes them. */
	const unsigned char *bytes;
	size_t n_bytes;
	unsigned char sha256[32];
	const char *sig;
};

/* Parses and validates one policy. c names the file; ids (may be NULL for
 * a syntax-only check) resolves the owner and the selectors. Every string
 * and list is allocated in arena; the schema is allocated separately and
 * released with tf_policy_release(). On error nothing needs releasing.
 * Errors: TF_ERR_INVALID ("file: $.path: problem"), TF_ERR_NOMEM. */
int tf_policy_from_json(struct tf_jctx *c, const cJSON *root, const struct tf_identities *ids,
		struct tf_arena *arena, struct tf_policy *out);

/* Loads path (at most TF_POLICY_MAX_BYTES) into out, as above. With
 * ids, a policy whose owner has policy_keys, or any when require_signed
 * (require_signed_policies), must come with its owner's signature of the
 * very bytes read, in path.sig (federation-v1; policy/policysig.h):
 * out->signed_by names the key. The bytes, their hash and the signature
 * are kept in out. Errors as above; TF_ERR_IO when path cannot be read. */
int tf_policy_load(const char *path, const char *display_name, const struct tf_identities *ids,
		bool require_signed, struct tf_arena *arena, struct tf_policy *out, struct tf_err *err);

/* As tf_policy_load (signatures checked where the owner has policy_keys),
 * telling report of every problem in the file's members, not just the
 * first (tfctl policy check); err holds the first. A problem found
 * outside the members (the file unreadable, its syntax, its signature)
 * is only in err. */
int tf_policy_check_file(const char *path, const struct tf_identities *ids,
		void (*report)(void *ctx, const char *msg), void *report_ctx, struct tf_arena *arena,
		struct tf_policy *out, struct tf_err *err);

/* Frees what the policy owns outside the arena. */
void tf_policy_release(struct tf_policy *p);

/* The length of the policy id in a label ("id@version"), or in a bare id.
 * Ids may hold '@' themselves, so the version starts after the last one. */
size_t tf_policy_label_id_len(const char *label);

/* The name of an action ("drop", ...). */
const char *tf_violation_action_name(enum tf_violation_action a);

#endif
