/* Inside the engine: what its parts share, and how they are layered.
 * The engine is one object in nine files, listed here from the top
 * layer down; each file calls only files listed below it, never one
 * above it (tests/tools/engine_layers.py checks this in `make check`):
 *
 *   engine.c             the top, and the only file that sees the whole
 *                        engine (struct tf_engine): the policy set in
 *                        force, decisions, the path of a message (stamp,
 *                        views, retention), reloads, ticks; calls the parts
 *   engine_policies.c    a set coming into force, as owners see it: the
 *                        versions kept against a rollback, the policies'
 *                        trace records and published copies
 *   engine_federation.c  what peer brokers hand over (federation-v1):
 *                        relayed messages checked, owners' policies taken
 *   engine_guard.c       alerts, and the anomaly guard's part in decisions
 *                        (refusal bursts, leaks)
 *   engine_quarantine.c  holding, rerouting, releasing and discarding
 *   engine_egress.c      what goes to peer brokers (federation-v1)
 *   engine_trace.c       the trace events the engine records, and the
 *                        trace writer's start and reports
 *   engine_metrics.c     the metrics the broker publishes, and alerts
 *                        counted by policy
 *   engine_context.c     the base: the log, option numbers, content rules,
 *                        stamps, retained copies (and the inline helpers
 *                        below: the clock, identifying a client, refusing)
 *
 * The parts are given a struct engine_ctx, not the engine: the state they
 * share. Nothing here is for use outside broker/engine/engine*.c. */
#ifndef TF_ENGINE_INTERNAL_H
#define TF_ENGINE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "broker/engine/engine.h"
#include "broker/tracking/msgtrack.h"
#include "policy/id.h"
#include "policy/set.h"

/* Payloads larger than this are not parsed for a schema check, a view or
 * a leak: such a message under a policy with a schema is a violation. */
#define TF_JSON_PAYLOAD_MAX (1024u * 1024)

/* Why a blocked client's delivery is withheld. */
#define ENGINE_BLOCKED "blocked after a burst of refusals"

/* What the engine's parts share, and all they are given: the engine
 * (engine.c) owns it inside its own state, makes and frees what it points
 * to, and replaces set on a reload; the parts use what it points to and
 * change only seq (engine_stamp), and trace, trace_each and seq when the
 * trace starts (engine_start_trace). Borrowed by each part for the length
 * of a call. */
struct engine_ctx {
	struct tf_policy_set *set;          /* in force */
	struct tf_engine_hooks hooks;
	struct tf_signer *signer;
	char *broker_id;
	uint64_t seq;                       /* of the last stamp */
	struct tf_trace_writer *trace;      /* NULL: nothing is recorded */
	bool trace_each;                    /* trace_sync_ms 0: sync every message */
	struct tf_alerts *alerts;           /* the recent ones, and folding */
	struct tf_guard *guard;             /* anomaly detectors */
	struct tf_quarantine *quarantine;   /* the flows held */
	struct tf_retained *retained;       /* retained copies to remove later */
	struct tf_metrics *metrics;         /* what happened, counted (broker/engine/metrics.h) */
	/* Where the owners' policies peers hand over are kept (federation-v1,
	 * section 2): <trace_db>/peer-policies; NULL without a trace store. */
	const char *peer_policy_dir;
};

/* Where a broker publishes each accepted policy (federation-v1). */
#define ENGINE_POLICIES_PREFIX "$trustflow/policies/"

/* --- engine_policies.c: a set coming into force ------------------------------ */

struct tf_rollback;

/* The versions accepted before (policy/rollback.h), as the trace store
 * keeps them: an empty table without one. Errors: TF_ERR_NOMEM, the
 * store's. */
int engine_load_rollback(struct engine_ctx *c, struct tf_rollback **out, struct tf_err *err);

/* fresh has just come into force in place of old (NULL at start): each
 * policy accepted for the first time (not in r at its version and bytes)
 * raises r and is recorded in the trace with the entry that keeps it;
 * each policy new or changed since old is published retained on
 * $trustflow/policies/<owner>/<id>, and the copies of those gone are
 * removed (at start, of any in r that fresh lacks), with their metrics. */
void engine_accept_policies(struct engine_ctx *c, struct tf_rollback *r,
		const struct tf_policy_set *old, const struct tf_policy_set *fresh);

/* --- engine_federation.c: peer brokers ---------------------------------------- */

/* The peer broker whose link username is, or NULL. */
const struct tf_peer *engine_peer_of_link(const struct engine_ctx *c, const char *username);

/* The peer broker whose bridge a client id may belong to: the peer's
 * broker id (its bridge's remote_clientid here), its link, or
 * local.<broker id> (mosquitto's default id for the bridge opened here to
 * it); NULL for any other. A client taking such an id would take the
 * bridge's session over, and the messages queued in it. */
const struct tf_peer *engine_peer_of_client_id(const struct engine_ctx *c,
		const char *client_id);

/* Checks what peer relayed (m->chain): the newest stamp is the peer's,
 * under one of its keys, over the payload and the arrival topic; the
 * chain links, has no broker twice (this one included) and room for this
 * broker's stamp; the origin's policy is held here at its version or a
 * higher one, governs the topic here, lets data leave its broker and lets
 * the peer's organization have it. Returns NULL and *policy when it
 * checks out; else why not (static), after alerting and recording the
 * refusal. */
const char *engine_relay_check(struct engine_ctx *c, const struct tf_peer *peer,
		const struct tf_message *m, int64_t now, const struct tf_policy **policy);

/* A peer hands over an owner's signed policy, as published retained on
 * ENGINE_POLICIES_PREFIX<owner>/<id> ({"file", "sig"}): accepted when
 * its owner signed it with a key the identities list for the owner, it
 * is the policy the topic names, and it is newer than the one held of
 * that id and owner; then kept in c->peer_policy_dir and *changed set
 * (the set must be loaded again). One held already, or an older one, is
 * taken without change. Returns NULL when taken, else why it is refused
 * (static; alerted). An empty payload (a copy removed) is taken: a
 * peer does not withdraw an owner's policy. */
const char *engine_take_peer_policy(struct engine_ctx *c, const struct tf_peer *peer,
		const char *topic, const void *payload, uint32_t payloadlen, bool *changed);

/* Removes the file (and its signature) of the peer's policy id from
 * c->peer_policy_dir; returns whether there was one. */
bool engine_remove_peer_policy(const struct engine_ctx *c, const char *id);

/* --- engine_context.c (and inline): the base --------------------------------- */

void engine_log(struct engine_ctx *c, enum tf_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline int64_t engine_now_ms(const struct engine_ctx *c)
{
	return c->hooks.now_ms(c->hooks.ctx);
}

static inline const struct tf_client *engine_identify(const struct engine_ctx *c,
		const char *username)
{
	return username ? tf_identities_client(c->set->ids, username) : NULL;
}

/* The identity stamps and the trace name a client by: its username, else
 * its client id (as tf-client does). A client id that is a username of
 * the identities file is refused to every other client at CONNECT
 * (tf_engine_may_connect), so an unidentified client never bears an
 * identified one's name. */
static inline const char *engine_client_name(const char *client_id, const char *username)
{
	return username ? username : client_id ? client_id : "";
}

static inline const char *engine_org_name(const struct engine_ctx *c, const struct tf_client *who)
{
	return who ? tf_identities_org_id(c->set->ids, who->org) : "";
}

/* Refuses the message: why, for the metrics (one of TF_REFUSED_* of
 * broker/engine/metrics.h, or a violation kind), and reason, for the
 * publisher's log. */
static inline void engine_refuse(struct tf_message_result *res, const char *why,
		const char *reason)
{
	res->deliver = false;
	res->refusal = why;
	res->reason = reason;
}

/* Whether a payload of payloadlen bytes breaks p's max_payload_bytes. */
#define ENGINE_TOO_LARGE "payload larger than max_payload_bytes"
static inline bool engine_too_large(const struct tf_policy *p, uint32_t payloadlen)
{
	return p->max_payload_bytes > 0 && payloadlen > p->max_payload_bytes;
}

/* Whether a payload of payloadlen bytes breaks p's schema, and why (into
 * why). json: the payload parsed, NULL when it is not JSON or was too
 * large to parse (TF_JSON_PAYLOAD_MAX), which a schema counts as broken. */
bool engine_breaks_schema(const struct tf_policy *p, uint32_t payloadlen, const cJSON *json,
		char *why, size_t why_cap);

/* A retained copy on topic (payloadlen 0: cleared) made under p (NULL:
 * ungoverned) from a message received at received: removed when p's
 * retention passes or p changes (broker/tracking/retained.h). */
void engine_note_retained(struct engine_ctx *c, const char *topic, uint32_t payloadlen,
		const struct tf_policy *p, int64_t received);

/* A message's payload as the checks see it, each form made at most once
 * per message, on first need: parsed as JSON (for the schema, the views
 * and the leak check) and its canonical hash (broker/guard/guard.h; for
 * the leak check and the note of private data). Zeroed: nothing made yet.
 * The one who zeroes it frees it with engine_canon_free. */
struct engine_canon {
	bool parsed;            /* json was tried */
	cJSON *json;            /* NULL: not JSON, or larger than TF_JSON_PAYLOAD_MAX */
	bool made, ok;          /* sha was tried; it could be made */
	unsigned char sha[32];
};
/* The payload (the same one each call) parsed as JSON, parsed on the
 * first call; NULL when it is not JSON or larger than TF_JSON_PAYLOAD_MAX.
 * Borrowed, valid until engine_canon_free(canon). */
const cJSON *engine_canon_json(struct engine_canon *canon, const void *payload,
		uint32_t payloadlen);
void engine_canon_free(struct engine_canon *canon);

/* A numeric plugin option (checked against its range when read). */
long engine_option_number(const char *text);

/* The signed stamp of a message (or view copy) published by m's client
 * under policy p (NULL: ungoverned) on topic: format 1, under a new id.
 * Returns false when it cannot be made (logged). */
bool engine_stamp(struct engine_ctx *c, const struct tf_message *m, const struct tf_policy *p,
		const char *topic, const void *payload, size_t payloadlen, int64_t now,
		struct tf_stamp_buf *buf, struct tf_stamp *out);

/* The hop records of chain's stamps, oldest first, into *records (n of
 * them; the caller frees each and the array, also on failure). Returns
 * false when out of memory. */
bool engine_chain_records(const struct tf_chain *chain, char ***records, uint32_t *n);

/* The stamp of message m itself, passed on under policy p on topic (its
 * own, or where it is held or rerouted to), into res: as engine_stamp
 * does, but for a message a peer relayed (m->chain, checked), its
 * format-2 stamp under the origin's id and policy, after the hop records
 * of its chain (res->hops, owned by res). Returns false when it cannot be
 * made (logged). */
bool engine_stamp_message(struct engine_ctx *c, const struct tf_message *m,
		const struct tf_policy *p, const char *topic, int64_t now,
		struct tf_message_result *res);

/* --- engine_egress.c: what goes to peers --------------------------------------- */

/* Whether peer's organization may receive, under p, data on topic now. */
bool engine_peer_may_have(const struct engine_ctx *c, const struct tf_peer *peer,
		const struct tf_policy *p, const char *topic, int64_t now);

/* The peers a message stamped st (for its topic) under policy p goes to,
 * into out (its peers owned by out): each peer broker whose organization
 * p lets receive it now, unless p denies forwarding or the peer is among
 * the n_chain brokers that stamped it before (it came through them). Each
 * is recorded as a delivery, "forwarded"; one that cannot be recorded
 * does not get it. */
void engine_egress(struct engine_ctx *c, const struct tf_stamp *st, const struct tf_policy *p,
		const char *const *chain, uint32_t n_chain, int64_t now, struct tf_egress *out);

/* Publishes json, the published copy of policy p on topic, to each peer
 * whose organization p lets receive data: retained on
 * TF_EGRESS_PREFIX<peer>/<topic>, which the bridge to the peer replays
 * at every connection. */
void engine_policy_egress(struct engine_ctx *c, const struct tf_policy *p, const char *topic,
		const char *json);

/* Whether two sets have the same peers (broker ids and organizations). */
bool engine_same_peers(const struct tf_policy_set *a, const struct tf_policy_set *b);

/* --- engine_metrics.c ------------------------------------------------------------ */

#define ENGINE_METRICS_TOPIC "$trustflow/metrics"
/* ENGINE_METRICS_TOPIC/<policy id>, and its NUL. */
#define ENGINE_METRICS_TOPIC_MAX (sizeof(ENGINE_METRICS_TOPIC) + 1 + TF_ID_MAX_LEN)
/* Copies published (or removed) per tick at most: a broker with many
 * policies spreads them over ticks rather than hold its traffic up. */
#define ENGINE_METRICS_PER_TICK 256

/* An alert of kind raised under the policy of label ("id@version"; ""
 * or "-": none), counted. */
void engine_count_alert(struct engine_ctx *c, const char *label, const char *kind);

/* The metrics (docs/control-api.md), published retained through
 * hooks.publish_metrics: the broker's on ENGINE_METRICS_TOPIC, and each
 * policy's on ENGINE_METRICS_TOPIC/<id> while it sees traffic, in
 * rounds (broker/engine/metrics.h) of ENGINE_METRICS_PER_TICK copies a
 * call; engine_publish_policy_metrics returns true when its round is
 * over (tf_metrics_round_start starts one). */
void engine_publish_broker_metrics(struct engine_ctx *c, int64_t now, uint32_t interval_s);
bool engine_publish_policy_metrics(struct engine_ctx *c, int64_t now, uint32_t interval_s);

/* fresh comes into force: the policies it lacks are forgotten, their
 * copies removed. */
void engine_forget_gone_metrics(struct engine_ctx *c, const struct tf_policy_set *fresh);

/* After a start: removes the copies an earlier run of the broker left
 * (mosquitto keeps retained messages) of the policies in force not
 * counted yet, from policy *from on, ENGINE_METRICS_PER_TICK a call;
 * returns true when through the set. */
bool engine_clear_stale_metrics(struct engine_ctx *c, uint32_t *from);

/* --- engine_trace.c ------------------------------------------------------------ */

int engine_start_trace(struct engine_ctx *c, const struct tf_options *opts, struct tf_err *err);
/* What a relayed message's event adds (federation-v1): the peer it came
 * from and the hop records of its stamps before this broker's. */
struct engine_relayed {
	const char *peer;
	char *const *hops;
	uint32_t n_hops;
};
/* That of m, stamped into res, when a peer relayed it (out filled);
 * NULL for any other message. */
static inline const struct engine_relayed *engine_relayed_of(const struct engine_ctx *c,
		const struct tf_message *m, const struct tf_message_result *res,
		struct engine_relayed *out)
{
	const struct tf_peer *peer = m->chain != NULL && m->username != NULL
		? tf_identities_peer_by_link(c->set->ids, m->username) : NULL;

	if (peer == NULL)
		return NULL;
	*out = (struct engine_relayed){ peer->broker_id, res->hops, res->n_hops };
	return out;
}
/* by_content: file the message by content in the trace, for mosquitto
 * may deliver it when the engine no longer knows its id (engine.c,
 * filed_by_content). A view copy always is; a diverted message (held,
 * rerouted) too, for its deliveries come by content. */
int engine_record_stamped(struct engine_ctx *c, int64_t now, const struct tf_stamp *st,
		uint32_t size, const char *of, bool by_content, const struct engine_relayed *relayed);
int engine_record_diverted(struct engine_ctx *c, int64_t now, const struct tf_stamp *st,
		uint32_t size, const char *status, const char *reason, const char *hold_flow,
		const void *hold, uint32_t hold_len, const struct engine_relayed *relayed);
void engine_record_unstamped(struct engine_ctx *c, int64_t now, const char *client_id,
		const char *username, const char *topic, const struct tf_policy *p,
		const void *payload, uint32_t payloadlen, const char *status, const char *reason);
/* The message event of a message a peer relayed and this broker refused
 * (status "refused", why): under an id of its own, naming the peer, its
 * organization and link, and the stamps it came with as hop records
 * (none when they could not be read), for whoever looks into it. */
void engine_record_refused_relay(struct engine_ctx *c, int64_t now, const struct tf_message *m,
		const struct tf_peer *peer, const struct tf_policy *p, const char *why);
bool engine_record_delivery(struct engine_ctx *c, int64_t now, const struct tf_msgtrack_hit *hit,
		const char *client_id, const char *username, const struct tf_client *who,
		const char *topic, const void *payload, uint32_t payloadlen,
		const struct tf_decision *d, const char *outcome);
#define ENGINE_QUEUE_DROPPED "no longer in the session's queue when it came back (mosquitto " \
	"drops QoS 0 messages to offline sessions, a full queue's newest, and all at a clean start)"
/* The delivery event of a message sent on to peer (egress). */
bool engine_record_forwarded(struct engine_ctx *c, int64_t now, const struct tf_stamp *st,
		const struct tf_peer *peer);
void engine_record_dropped(struct engine_ctx *c, int64_t now, const char *client_id,
		const char *username, const unsigned char id[16], const char *label);
/* The hash of every file a policy set is read from, one per line as
 * sha256sum prints them, so an auditor can match them; NULL when out of
 * memory. Caller owns; free(). Touches nothing but the files: the reload
 * thread makes it beside the set it loads. */
char *engine_policy_files_digest(const char *identities, const char *policy_dir);
/* The policy-set event of a load: result "loaded" or "refused: why";
 * digest: engine_policy_files_digest() of the files read (NULL: none). */
void engine_record_policy_set(struct engine_ctx *c, const char *result, const char *digest);
void engine_trace_tick(struct engine_ctx *c);
/* The receive time the trace holds for a stored message mosquitto kept
 * longer than the engine's memory (TF_TIME_UNKNOWN: none), and, when
 * label is not NULL, the policy label it was recorded under (cap bytes). */
int64_t engine_trace_received_at(struct engine_ctx *c, const char *topic, const void *payload,
		uint32_t payloadlen, char *label, size_t cap);

/* --- engine_guard.c ------------------------------------------------------------ */

struct tf_guard *engine_new_guard(const struct tf_options *opts);
void engine_raise_alert(struct engine_ctx *c, const char *kind, const char *policy,
		const char *org, const char *client, const char *detail, const char *action);
/* Raises, from the tick, one alert for each flow whose folded alerts no
 * new one mentioned within the window (broker/guard/alerts.h); looks at
 * ENGINE_FOLDS_PER_TICK flows at most. */
#define ENGINE_FOLDS_PER_TICK 64
void engine_alerts_tick(struct engine_ctx *c);
void engine_count_refusal(struct engine_ctx *c, const char *client_id, const char *username,
		int64_t now);
bool engine_is_blocked(const struct engine_ctx *c, const char *client_id, const char *username,
		int64_t now);
void engine_note_private(struct engine_ctx *c, const struct tf_message *m,
		const struct tf_policy *p, struct engine_canon *canon, const struct tf_stamp *st,
		int64_t now);
void engine_note_recipient(struct engine_ctx *c, const struct tf_msgtrack_hit *hit,
		const char *client, const void *payload, uint32_t payloadlen, int64_t now);
bool engine_leaked(struct engine_ctx *c, const struct tf_message *m, struct engine_canon *canon,
		int64_t now, struct tf_message_result *res);

/* --- engine_quarantine.c -------------------------------------------------------- */

int engine_load_quarantine(struct engine_ctx *c, struct tf_err *err);
void engine_hold(struct engine_ctx *c, const struct tf_message *m, const struct tf_policy *p,
		const char *flow, const char *why, int64_t now, struct tf_message_result *res);
void engine_reroute(struct engine_ctx *c, const struct tf_message *m, const struct tf_policy *p,
		const char *to, const char *why, int64_t now, struct tf_message_result *res);
/* tf_engine_release_flow and tf_engine_discard_flow (broker/engine/engine.h). */
int engine_release_flow(struct engine_ctx *c, const char *flow, const char *by,
		bool override, struct tf_release_counts *counts, struct tf_err *err);
int engine_discard_flow(struct engine_ctx *c, const char *flow, const char *by,
		uint64_t *count, struct tf_err *err);

#endif
