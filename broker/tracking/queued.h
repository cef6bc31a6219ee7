/* Messages handed to mosquitto for sessions that were offline.
 *
 * mosquitto keeps such a message in the session's queue and, when the
 * session comes back, checks each queued message again (ACL READ) before
 * it sends it; a message it dropped meanwhile (QoS 0 to an offline
 * session, a full queue, a clean start) is never checked again, and
 * plugins are not told. So the trace records a delivery to an offline
 * session as "queued", the check at its return as the delivery, and the
 * messages noted here that the return did not check as dropped.
 *
 * Entries are kept per client id, the oldest first, as mosquitto keeps
 * its queue. Bounds: TF_QUEUED_PER_SESSION entries per client id (later
 * ones are not noted: mosquitto's own queue limit is lower by default)
 * and TF_QUEUED_MAX in all, beyond which sessions of the identity with
 * the most entries are forgotten, those whose last message is oldest
 * first: an identity that opens sessions under ever new client ids
 * pushes out its own, not others'. A message not noted, or forgotten,
 * keeps its "queued" record: the check at the session's return cannot
 * be told from the resending of a message delivered before, and is not
 * recorded (the trace under-counts rather than counting twice). */
#ifndef TF_QUEUED_H
#define TF_QUEUED_H

#include <stdbool.h>
#include <stdint.h>

#define TF_QUEUED_PER_SESSION 1024u
#define TF_QUEUED_MAX 262144u

struct tf_queued;

/* NULL when out of memory. */
struct tf_queued *tf_queued_new(void);
void tf_queued_free(struct tf_queued *q);

/* A fingerprint of a message, what the check at a session's return is
 * matched by: its topic and payload. */
uint64_t tf_queued_fingerprint(const char *topic, const void *payload, uint32_t payloadlen);

/* Notes that message id (16 bytes), decided under the policy labelled
 * label ("" when ungoverned), was queued for the session of client_id,
 * which identity (its username; "" for none) holds. now: a time, for
 * choosing what to forget. Returns false when it was not noted (bounds,
 * memory). */
bool tf_queued_put(struct tf_queued *q, const char *client_id, const char *identity,
		const unsigned char id[16], uint64_t fingerprint, const char *label, int64_t now);

/* The session of client_id came back (its connection was accepted). Its
 * queued messages are matched by tf_queued_take until tf_queued_settle. */
void tf_queued_resume(struct tf_queued *q, const char *client_id);

/* Whether a session came back since the last tf_queued_settle: the
 * broker's hot path asks this first. */
bool tf_queued_any_resumed(const struct tf_queued *q);

/* When client_id's session came back since the last tf_queued_settle and
 * has a message with this fingerprint: removes it (the oldest such) and
 * returns true. */
bool tf_queued_take(struct tf_queued *q, const char *client_id, uint64_t fingerprint);

/* Ends the return of each session resumed since the last call: when
 * still_connected says it is connected, visits each of its messages that
 * were not taken (mosquitto dropped them) and forgets them; otherwise (its
 * connection was refused after all) keeps them. dropped may be NULL. */
typedef bool (*tf_queued_connected)(void *ctx, const char *client_id);
typedef void (*tf_queued_visit)(void *ctx, const char *client_id, const unsigned char id[16],
		const char *label);
void tf_queued_settle(struct tf_queued *q, tf_queued_connected still_connected,
		tf_queued_visit dropped, void *ctx);

/* Entries kept, and sessions forgotten for room, in all. */
uint32_t tf_queued_count(const struct tf_queued *q);
uint64_t tf_queued_forgotten(const struct tf_queued *q);

#endif
