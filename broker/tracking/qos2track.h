/* QoS 2 messages received and stamped but not yet released, so that a
 * retransmission gets the stamp of the first transmission.
 *
 * mosquitto 2.0.11 runs MESSAGE for every PUBLISH, also for a QoS 2
 * PUBLISH that a client sends again before the exchange completed; it
 * drops the copy only afterwards. MESSAGE is not told the packet id or the
 * DUP flag. MQTT 5 lets a client send a PUBLISH again only after it
 * reconnected, so a QoS 2 message from the same client id, with the same
 * topic and payload, over another connection than the first, while the
 * first is not yet released, is taken for a retransmission. The first is
 * released when mosquitto decides its first delivery (ACL READ at PUBREL);
 * one without any subscriber, or held, is never delivered, so two more
 * rules keep a reading that merely repeats from passing for a resend:
 * - a client sends its retransmissions first after it reconnects (MQTT 5
 *   4.4, in their first order), so once it sends anything that is not
 *   one, its earlier connections' messages are forgotten (moved_on);
 * - a client whose connection lived TF_QOS2_SETTLED_MS past a message had
 *   its PUBREC, and sends PUBREL, not the PUBLISH, again: when the
 *   connection goes, such messages are forgotten (disconnected).
 * What is left is forgotten after TF_QOS2_KEEP_MS.
 *
 * Messages that nobody receives (no subscriber, or held) are never
 * released, so a connection that sends many of them would fill the table
 * for TF_QOS2_KEEP_MS. Only a connection's newest messages can still be
 * awaiting their PUBREC (mosquitto answers at once those it takes in
 * flight, 20 by default), so a connection keeps its newest
 * TF_QOS2_PER_CONNECTION, and a full table forgets its oldest message.
 * A message forgotten early that does come again is stamped anew, which
 * is counted (tf_qos2track_forgotten) for the engine to warn about.
 *
 * The table is small, so it is a plain array searched from end to end. */
#ifndef TF_QOS2TRACK_H
#define TF_QOS2TRACK_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/stamp/provenance.h"

#define TF_QOS2_KEEP_MS (10 * 60 * 1000)
#define TF_QOS2_SETTLED_MS 5000
#define TF_QOS2_MAX_PENDING 1024
#define TF_QOS2_PER_CONNECTION 64
/* The engine says at most this often that messages were forgotten early. */
#define TF_QOS2_TELL_MS 60000

struct tf_qos2track;

/* NULL when out of memory. */
struct tf_qos2track *tf_qos2track_new(void);
void tf_qos2track_free(struct tf_qos2track *t);

/* The key of a message: its client id, topic and payload, hashed. */
uint64_t tf_qos2_key(const char *client_id, const char *topic, const void *payload,
		uint32_t payloadlen);

/* The key of a client: its client id, hashed. */
uint64_t tf_qos2_client_key(const char *client_id);

/* What became of the first transmission: its stamp, and whether it was
 * held in quarantine or rerouted (redirect: the topic, else NULL). */
struct tf_qos2_pending {
	struct tf_stamp stamp;
	bool hold;
	const char *redirect;
};

/* The first transmission of a pending message with this key received
 * over another connection (so this is a retransmission), or NULL. Valid
 * until the next call that changes the table. */
const struct tf_qos2_pending *tf_qos2track_retransmitted(const struct tf_qos2track *t,
		uint64_t key, const void *connection);

/* Remembers a stamped (or held) QoS 2 message until it is released:
 * stored is the stored message's topic pointer, as ACL READ will show it.
 * The stamp and redirect are copied. To make room it forgets the
 * connection's oldest message (beyond TF_QOS2_PER_CONNECTION) or the
 * table's oldest (beyond TF_QOS2_MAX_PENDING). Returns false when memory
 * is short (the message then simply is not recognised when sent again). */
bool tf_qos2track_put(struct tf_qos2track *t, uint64_t key, uint64_t client_key,
		const void *connection, const void *stored, const struct tf_stamp *stamp, bool hold,
		const char *redirect, int64_t now_ms);

/* The client (client_key) sent, over connection, a message that is no
 * retransmission: what it sent over earlier connections will not come
 * again. */
void tf_qos2track_moved_on(struct tf_qos2track *t, uint64_t client_key, const void *connection);

/* The connection has gone: what it sent TF_QOS2_SETTLED_MS or more before
 * now_ms will not come again. */
void tf_qos2track_disconnected(struct tf_qos2track *t, const void *connection, int64_t now_ms);

/* The message whose topic pointer is stored is being delivered: it is
 * released, and no later message is its retransmission. */
void tf_qos2track_release(struct tf_qos2track *t, const void *stored);

/* Forgets messages older than TF_QOS2_KEEP_MS. */
void tf_qos2track_expire(struct tf_qos2track *t, int64_t now_ms);

uint32_t tf_qos2track_count(const struct tf_qos2track *t);

/* How many messages were forgotten to make room, since the table was made. */
uint64_t tf_qos2track_forgotten(const struct tf_qos2track *t);

/* How many messages received over connection at or after since_ms are
 * not yet released: a connection's QoS 2 messages unanswered at once. */
uint32_t tf_qos2track_unreleased_since(const struct tf_qos2track *t, const void *connection,
		int64_t since_ms);

#endif
