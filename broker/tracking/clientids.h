/* Which identity each MQTT client id belongs to.
 *
 * mosquitto gives a client id's session (its subscriptions and queued
 * messages) to whoever connects with that client id next, and
 * disconnects the connection that had it. So that no client takes over
 * another identity's session, a client id is bound to the identity that
 * connected with it, and refused to every other, while it is connected
 * and afterwards while mosquitto may keep its session.
 *
 * An identity is a username, or "no username", which every client
 * without one shares. Bindings live in memory; the engine stores the
 * durable ones (persistent sessions) in the trace store.
 *
 * Bounds: TF_CLIENTIDS_MAX bindings in all (beyond it, new client ids are
 * refused: fail closed); each identity keeps at most
 * TF_CLIENTIDS_KEPT_PER_IDENTITY bindings of disconnected clients, its
 * own oldest going first, so that no identity can push out another's. */
#ifndef TF_CLIENTIDS_H
#define TF_CLIENTIDS_H

#include <stdbool.h>
#include <stdint.h>

#define TF_CLIENTIDS_MAX 1000000u
#define TF_CLIENTIDS_KEPT_PER_IDENTITY 1000u

enum tf_clientid_answer {
	TF_CLIENTID_OK,       /* bound to this identity (now, or already) */
	TF_CLIENTID_TAKEN,    /* bound to another identity */
	TF_CLIENTID_FULL,     /* no room for another binding */
};

struct tf_clientids;

/* NULL when out of memory. */
struct tf_clientids *tf_clientids_new(void);
void tf_clientids_free(struct tf_clientids *t);

/* Called whenever a durable binding appears, changes identity or goes
 * (bound false), so that its owner can store it: username NULL means "no
 * username". Borrowed values, valid for the call. */
typedef void (*tf_clientids_notify)(void *ctx, const char *client_id, const char *username,
		bool bound);
void tf_clientids_set_notify(struct tf_clientids *t, tf_clientids_notify notify, void *ctx);

/* A connection conn (opaque: compared, never followed) connects with
 * client_id as username (NULL: none). Binds the client id to that
 * identity unless another holds it: then TF_CLIENTID_TAKEN, unless
 * reserved (the identities file reserves the client id to this
 * identity), which takes it over. durable: its session may outlive the
 * connection (the binding is kept after it disconnects). The binding
 * can be undone with tf_clientids_undo() until the next bind. */
enum tf_clientid_answer tf_clientids_bind(struct tf_clientids *t, const char *client_id,
		const char *username, const void *conn, bool durable, bool reserved);

/* Undoes the last bind, if it was made for conn: mosquitto refused that
 * connection. */
void tf_clientids_undo(struct tf_clientids *t, const void *conn);

/* The connection conn, which used client_id, has gone. Its binding
 * stays only when durable. */
void tf_clientids_disconnected(struct tf_clientids *t, const char *client_id, const void *conn);

/* Whether client_id is bound, and to which identity: *username is the
 * bound username (borrowed until the binding changes), NULL for "no
 * username"; *connected whether a connection holds it now. Either
 * pointer may be NULL. */
bool tf_clientids_find(const struct tf_clientids *t, const char *client_id,
		const char **username, bool *connected);

/* Removes a binding. */
void tf_clientids_forget(struct tf_clientids *t, const char *client_id);

/* Visits every binding; visit must not change the table. */
typedef void (*tf_clientids_visit)(void *ctx, const char *client_id, const char *username,
		bool connected, bool durable);
void tf_clientids_each(const struct tf_clientids *t, tf_clientids_visit visit, void *ctx);

uint32_t tf_clientids_count(const struct tf_clientids *t);

#endif
