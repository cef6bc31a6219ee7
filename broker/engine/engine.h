/* The broker side of trustflow without mosquitto: the policy set in force
 * and what the broker's events mean under it. The plugin shim turns each
 * mosquitto event into one call here and the answer into a MOSQ_ERR_*.
 *
 * Everything runs on the broker's thread. Every error denies. */
#ifndef TF_ENGINE_H
#define TF_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/util/error.h"
#include "broker/guard/held.h"
#include "broker/engine/options.h"
#include "broker/stamp/chain.h"
#include "broker/stamp/provenance.h"
#include "policy/decide.h"

/* Log levels of messages for the operator. */
enum tf_log_level { TF_LOG_INFO, TF_LOG_NOTICE, TF_LOG_WARNING, TF_LOG_ERR };

struct tf_egress;

struct tf_engine_hooks {
	/* Writes a line to the broker's log. Not called per delivery. */
	void (*log)(void *ctx, enum tf_log_level level, const char *text);
	/* The wall clock, ms since the epoch; NULL for the real one (tests
	 * give their own). */
	int64_t (*now_ms)(void *ctx);
	/* Removes the retained message of topic (whose retention has passed). */
	void (*clear_retained)(void *ctx, const char *topic);
	/* Publishes, retained, a public key of the broker (current or
	 * earlier) on $trustflow/keys/<kid>. */
	void (*publish_key)(void *ctx, const char *kid, const char *pem);
	/* Publishes, retained, a trace checkpoint (JSON) on
	 * $trustflow/checkpoints. NULL: none are published. */
	void (*publish_checkpoint)(void *ctx, const char *json);
	/* Publishes, retained, an accepted policy (JSON, federation-v1) on
	 * topic, $trustflow/policies/<owner>/<id>. NULL: none are published. */
	void (*publish_policy)(void *ctx, const char *topic, const char *json);
	/* Publishes an alert (JSON, not retained) on topic. NULL: alerts are
	 * only kept and recorded. */
	void (*publish_alert)(void *ctx, const char *topic, const char *json);
	/* Publishes a released message with its stamp (as user properties,
	 * after its hop records when relayed), as if just published, and a
	 * copy for each peer of egress. NULL: releasing is not possible. */
	void (*publish_held)(void *ctx, const struct tf_held *m, const struct tf_egress *egress);
	/* Publishes, retained, metrics (JSON) on topic, $trustflow/metrics or
	 * $trustflow/metrics/<policy id>. NULL: none are published. */
	void (*publish_metrics)(void *ctx, const char *topic, const char *json);
	/* Disconnects the client with this client id (soon, not from within
	 * this call). NULL: none can be. */
	void (*disconnect)(void *ctx, const char *client_id);
	void *ctx;
};

struct tf_engine;

/* Loads the policy set the options name. Returns TF_OK and *out (caller
 * owns; free with tf_engine_free), or the load's error in err. opts and
 * hooks are copied. */
int tf_engine_new(const struct tf_options *opts, const struct tf_engine_hooks *hooks,
		struct tf_engine **out, struct tf_err *err);
void tf_engine_free(struct tf_engine *e);

/* Loads the policy set again. On success it replaces the old one; on error
 * the old set stays in force and err says why. */
int tf_engine_reload(struct tf_engine *e, struct tf_err *err);

/* Loads the policy set again on a thread of its own, so that a large set
 * (a million clients take seconds) does not hold up the broker's traffic;
 * tf_engine_tick puts it in force once loaded, or logs and alerts why it
 * was refused (the old set stays). A reload asked for while one loads
 * runs again after it. Without a thread it reloads here. */
void tf_engine_reload_in_background(struct tf_engine *e);

/* The set in force (borrowed, valid until the next reload). */
const struct tf_policy_set *tf_engine_policies(const struct tf_engine *e);

/* The recent alerts (borrowed). */
struct tf_alerts;
const struct tf_alerts *tf_engine_alerts(const struct tf_engine *e);

/* The trace store, for reading on the broker's thread; NULL when there is
 * none (borrowed). */
struct tf_trace_store;
struct tf_trace_store *tf_engine_trace_store(struct tf_engine *e);

/* The engine's clock, ms since the epoch. */
int64_t tf_engine_now(const struct tf_engine *e);

/* Quarantine (broker/guard/quarantine.h): the flows held, and ending a flow's
 * quarantine by releasing or discarding its messages. by: who did it, for
 * the record. Errors: TF_ERR_INVALID (no such flow, an unreadable record),
 * TF_ERR_FULL (the trace store cannot record; the flow stays held, less
 * what was done).
 *
 * A release decides each held message again, in the order received,
 * under the policy now governing its topic: past that policy's retention
 * (counted from when the broker received it, its stamp's ts) it is
 * discarded, recorded with the reason; breaking the rules a message
 * itself can break (who may publish, max_payload_bytes, schema; no policy
 * governing its topic any more) it stays held, unless override, when it
 * is released and recorded as an override; any other is published with
 * its stamp and recorded as released. The flow stays quarantined while
 * messages are kept back. */
struct tf_release_counts {
	uint64_t released;     /* published, overridden ones included */
	uint64_t expired;      /* past their retention: discarded */
	uint64_t kept;         /* breaking the rules in force: still held */
	uint64_t overridden;   /* breaking the rules in force: released by override */
};
struct tf_quarantine;
const struct tf_quarantine *tf_engine_quarantine(const struct tf_engine *e);
int tf_engine_release_flow(struct tf_engine *e, const char *flow, const char *by,
		bool override, struct tf_release_counts *counts, struct tf_err *err);
/* Discards every held message of flow, each recorded as discarded;
 * *count: how many. */
int tf_engine_discard_flow(struct tf_engine *e, const char *flow, const char *by,
		uint64_t *count, struct tf_err *err);

/* Whether the client with username belongs to the organization org_id
 * (for require_cert_org_match: the O of its TLS certificate); a peer
 * broker's link belongs to the peer's organization. An unknown client
 * belongs to none. */
bool tf_engine_client_in_org(const struct tf_engine *e, const char *username, const char *org_id);

/* Whether username is the link of a peer broker (federation-v1): the
 * identity its bridge is authenticated with here. Its messages carry the
 * chain of stamps the engine checks (tf_message.chain). */
bool tf_engine_is_peer_link(const struct tf_engine *e, const char *username);

/* The topic prefix of the copies of messages for a peer broker,
 * `$trustflow/egress/<broker id>/`: the bridge opened here to that peer
 * carries this prefix, mapped away, and nothing else. */
#define TF_EGRESS_PREFIX "$trustflow/egress/"

/* A client connecting with client_id as username (NULL: none), before
 * mosquitto checks its password. conn identifies its connection (never
 * followed). durable: its session may outlive the connection. TF_DENY
 * refuses the connection (logged, alerted): its client id is reserved to
 * another client by the identities file, or bound to another identity
 * (connected, or holding a session), or not among the client ids its
 * user declared. Otherwise the client id is bound to its identity and
 * TF_DEFER leaves the password to mosquitto's other checks. */
enum tf_verdict tf_engine_may_connect(struct tf_engine *e, const void *conn,
		const char *client_id, const char *username, bool durable);

/* The connection conn has gone. client_id NULL: mosquitto refused it (its
 * binding, made by tf_engine_may_connect, is undone). Its QoS 2 messages
 * of long enough ago are no longer awaited again (broker/tracking/qos2track.h). */
void tf_engine_disconnected(struct tf_engine *e, const void *conn, const char *client_id);

/* ACL decisions. username NULL: the client has none (unidentified); the
 * trace then names it by client_id. A refused publish is recorded with
 * its payload's hash. Refused publishes and subscriptions count towards a
 * burst that blocks the client for a while (broker/guard/guard.h): then it may
 * neither publish, subscribe nor receive. */
enum tf_verdict tf_engine_may_publish(struct tf_engine *e, const char *client_id,
		const char *username, const char *topic, const void *payload, uint32_t payloadlen);
enum tf_verdict tf_engine_may_subscribe(struct tf_engine *e, const char *client_id,
		const char *username, const char *filter);
/* One delivery of a stored message: topic and payload are the stored
 * message's own pointers (they identify it for retention and the trace);
 * retain: its retain flag (a retained copy made under a policy version
 * no longer in force is withheld).
 * The delivery, made or withheld, is recorded; a governed one that
 * cannot be recorded is not made. */
enum tf_verdict tf_engine_may_receive(struct tf_engine *e, const char *client_id,
		const char *username, const char *topic, const void *payload, uint32_t payloadlen,
		bool retain);

/* A copy the broker publishes itself: a view with selected fields. */
struct tf_copy {
	char *topic;            /* owned by the result */
	char *payload;          /* owned by the result */
	uint32_t payloadlen;
	uint32_t expiry_s;      /* message expiry to set; 0: none */
	struct tf_stamp stamp;  /* its own stamp, for its own topic */
	struct tf_stamp_buf stamp_buf;
};

/* A copy of a message for each peer broker whose organization may have
 * it (federation-v1, section 3): the caller publishes the message, with
 * its stamp, on TF_EGRESS_PREFIX<peer><topic>. */
struct tf_egress {
	uint32_t n;
	const char **peers;     /* broker ids, borrowed until the next reload */
};

struct tf_message {
	const char *client_id;
	const char *username;   /* NULL: none */
	const void *connection; /* the client's connection (mosquitto's struct) */
	const char *topic;      /* the stored message's topic (its identity) */
	const void *payload;
	uint32_t payloadlen;
	int qos;
	bool retain;
	/* Published by the plugin itself, not as the stored message mosquitto
	 * got (a will): topic and payload are the plugin's copies, and its
	 * deliveries are known by topic and payload. */
	bool republished;
	/* From a peer broker's link (tf_engine_is_peer_link): the chain of
	 * stamps it carried as read (chain_read: TF_STAMP_VALID when read;
	 * chain then points into the caller's strings). NULL for any other
	 * client, whose tf-* properties the caller removes unread. */
	const struct tf_chain *chain;
	enum tf_stamp_check chain_read;
};

struct tf_message_result {
	bool deliver;           /* false: refuse the message */
	const char *reason;     /* why not delivered (static) */
	const char *refusal;    /* the same in a word, as the metrics count it (static) */
	bool hold;              /* quarantined: pass it to no one (the broker keeps it) */
	bool taken;             /* taken by the broker (a peer's policy): pass it to no one */
	const char *redirect;   /* rerouted: deliver on this topic (borrowed until the
	                         * next reload); NULL: on its own */
	bool disconnect;        /* disconnect the publisher (on_violation.disconnect) */
	bool stamped;           /* stamp holds the message's stamp */
	struct tf_stamp stamp;  /* points into stamp_buf, the set in force and the message */
	struct tf_stamp_buf stamp_buf;
	/* A relayed message's earlier stamps as hop records, oldest first,
	 * to go before its stamp (format 2); owned by the result. */
	uint32_t n_hops;
	char **hops;
	struct tf_egress egress; /* the peers it goes to; owned by the result */
	uint32_t n_copies;
	struct tf_copy *copies; /* owned by the result; NULL when none */
};

/* A message a client published, after its publish was allowed: checks
 * limits and schema, records what retention needs, stamps it, records it
 * in the trace, makes the view copies (stamped and recorded too), and
 * names the peer brokers it goes to. A message a peer relayed is
 * delivered only when its chain checks out (federation-v1, section 4),
 * with a format-2 stamp after its earlier ones; else it is refused,
 * alerted and recorded, as is anything else from a peer's link (its
 * bridge's will). A
 * QoS 2 message that its client sends again after reconnecting, before
 * the first was released, gets the first one's stamp and nothing else
 * (broker/tracking/qos2track.h): mosquitto drops it as a duplicate. The
 * caller attaches the stamp, publishes the copies and frees the result
 * with tf_message_result_free(), delivered or not. A governed message
 * that cannot be stamped or recorded is not delivered: the broker fails
 * closed. With trace_sync_ms 0 its events are on disk before this
 * returns. */
void tf_engine_on_message(struct tf_engine *e, const struct tf_message *m,
		struct tf_message_result *res);
void tf_message_result_free(struct tf_message_result *res);

/* Publishes every public key the broker knows through hooks.publish_key. */
void tf_engine_publish_keys(struct tf_engine *e);

/* Periodic work: removes retained copies whose retention has passed
 * (through hooks.clear_retained), forgets old receive times, publishes
 * the trace's new checkpoint and logs changes of its health. Call
 * often. */
void tf_engine_tick(struct tf_engine *e);

#endif
