/* The joined trace (federation-v1, section 6): what became of one message
 * on every broker it went through, from the exports of their traces,
 * each broker's part checked against that broker's own signed
 * checkpoints. tfctl trace join; docs/auditors.md says what it proves.
 *
 * An export is what `tfctl trace export --checkpoints` prints: one line
 * per event ({"seq", "ts", "kind", its fields, "hash"}, the first with
 * "prev"), and one line per checkpoint ({"checkpoint": {"broker", "kid",
 * "seq", "hash", "ts", "sig"}}). Reading an export recomputes its hash
 * chain from the fields alone and keeps the events about the message;
 * nothing in an export is trusted that the chain and a checkpoint do not
 * vouch for:
 *
 * - the broker an export is of is the one its checkpoints name, and a
 *   checkpoint counts only when it verifies under a key bound to that
 *   broker (tf_join_bind_key);
 * - every checkpoint in the export, and every one kept outside the
 *   broker (tf_join_keep_checkpoint) for that broker, must verify and
 *   match the chain at its seq; one past the export's last event means
 *   events are missing at its end;
 * - a broker's part (its message event, deliveries and forwards, releases
 *   and view copies) counts as checked only when the whole chain is
 *   intact and a checkpoint covers (seq >=) the part's last event.
 *
 * The brokers are then put in the message's path: the origin (its
 * message event names no peer) first, then each broker it was forwarded
 * to, in the order of the forwards. What the parts say of each other is
 * compared: a forward to a broker whose export holds no arrival from the
 * forwarding broker, a peer whose export is missing or records no forward,
 * hop records that do not end with the peer's stamp are gaps. */
#ifndef TF_TRACE_JOIN_H
#define TF_TRACE_JOIN_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "broker/util/error.h"

struct tf_join;

/* A join for message id (32 hex digits). Errors: TF_ERR_INVALID (not a
 * message id), TF_ERR_NOMEM. */
int tf_join_new(const char *id, struct tf_join **out, struct tf_err *err);
void tf_join_free(struct tf_join *j);

/* Binds a public key (SubjectPublicKeyInfo PEM, or a private key's
 * public half) to broker id: that broker's checkpoints are checked under
 * it (a broker may have several). Errors: TF_ERR_INVALID (not an Ed25519
 * key, a bad broker id, or a key bound to another broker already: with
 * one key, one broker could pass for the other), TF_ERR_IO (the file),
 * TF_ERR_NOMEM. */
int tf_join_bind_key(struct tf_join *j, const char *broker, const char *pem, size_t len,
		struct tf_err *err);
int tf_join_bind_key_file(struct tf_join *j, const char *broker, const char *path,
		struct tf_err *err);

/* A checkpoint kept outside the brokers: one line as a subscriber to
 * $trustflow/checkpoints keeps it (its payload, after anything before its
 * first '{', such as a time that mosquitto_sub -F '%I %p' prints), or a
 * checkpoint line of an export. Blank lines are ignored. Errors:
 * TF_ERR_INVALID (not a checkpoint), TF_ERR_NOMEM. */
int tf_join_keep_checkpoint(struct tf_join *j, const char *line, size_t len,
		struct tf_err *err);

/* Reads one export, named name (a file's name, for the answer), line by
 * line: begin, each line (without its newline; blank lines are skipped),
 * end. A line that is not a well-formed event or checkpoint fails that
 * export, as a broken chain does; the errors are TF_ERR_NOMEM only. */
int tf_join_begin_export(struct tf_join *j, const char *name, struct tf_err *err);
int tf_join_export_line(struct tf_join *j, const char *line, size_t len, struct tf_err *err);
void tf_join_end_export(struct tf_join *j);

/* The joined trace (caller owns; cJSON_Delete):
 *
 *   {"id", "ok", "path": [broker ids], "brokers": [part...], "gaps":
 *    [{"broker", "reason"}], "without": [{"broker", "export", "ok",
 *    "reason"}], "reason" (when no export holds the message)}
 *
 * a part: {"broker" (null when its export has no checkpoint), "export",
 * "ok", "reason" (when not ok), "checkpoint": {"seq", "ts", "kept"} (the
 * first that covers it), "message" (its message event's fields as
 * exported, hops as an array, with the prev of its stamp; null when the
 * export has none), "repeated" (later message events with the same id,
 * when any), "recipients": [{"client", "org", "outcome", "client_id",
 * "reason", "policy", "seq", "ts"}], "forwards": [{"broker", "org",
 * "link", "seq", "ts"}], "views" (when any: view copies {"id", "seq",
 * "ts", "topic", "status", "recipients"})}. "without": the exports that
 * hold no event of the message, checked all the same. *ok: every part
 * and every export checked out, no gap, and some export holds the
 * message. NULL on TF_ERR_INVALID (two exports of one broker) or
 * TF_ERR_NOMEM. */
cJSON *tf_join_result(struct tf_join *j, bool *ok, struct tf_err *err);

#endif
