/* The console's sessions, in memory only: who signed in, the broker
 * connection that acts as them, and the token that every action must
 * carry. A session's id (the cookie) and its CSRF token are 32 random
 * bytes each from OpenSSL, in hex; a session idle longer than the table's
 * idle time ends, and the table holds at most its cap. Thread-safe: the
 * HTTP server's threads share one table.
 *
 * Sessions are counted references: a request holds the session it found
 * until it releases it, so that a sign-out or an expiry in another thread
 * never frees what a request still uses. The link (what the session acts
 * with) is destroyed, by the destroy function given to the table, when the
 * session has left the table and its last reference is released. */
#ifndef TF_CONSOLE_SESSIONS_H
#define TF_CONSOLE_SESSIONS_H

#include <stdbool.h>
#include <stdint.h>

#define TF_CONSOLE_TOKEN_HEX 64     /* a session id or CSRF token: 32 bytes in hex */

struct tf_console_sessions;
struct tf_console_session;

enum tf_console_sessions_rc {
	TF_CONSOLE_SESSIONS_OK = 0,
	TF_CONSOLE_SESSIONS_FULL,       /* the table holds its cap of live sessions */
	TF_CONSOLE_SESSIONS_NOMEM,      /* out of memory, or no random bytes */
};

/* A table of at most max sessions, each ending after idle_ms without use;
 * destroy(link) ends a session's link. NULL when out of memory. */
struct tf_console_sessions *tf_console_sessions_new(unsigned max, int64_t idle_ms,
		void (*destroy)(void *link));

/* Ends every session (their links destroyed) and frees the table. No
 * request may hold a session any more. */
void tf_console_sessions_free(struct tf_console_sessions *t);

/* Adds a session of username acting through link; key, when not NULL, is
 * what finds it again instead of an id (a scrape's credentials, hashed).
 * Sessions idle past their time are ended first, to make room. On
 * success *out is the new session, with a reference for the caller, and
 * the table owns link (ownership passes on success only). */
enum tf_console_sessions_rc tf_console_sessions_add(struct tf_console_sessions *t,
		const char *username, const char *key, void *link, int64_t now_ms,
		struct tf_console_session **out);

/* The live session whose id (or, with by_key, whose key) is token, now
 * used again (its idle time starts over), with a reference for the
 * caller; NULL when there is none or it was idle too long (it then ends).
 * Tokens are compared in constant time. */
struct tf_console_session *tf_console_sessions_find(struct tf_console_sessions *t,
		const char *token, bool by_key, int64_t now_ms);

/* Gives back a reference from add or find. */
void tf_console_sessions_release(struct tf_console_sessions *t, struct tf_console_session *s);

/* Ends session s (sign-out, or its link is lost): it leaves the table at
 * once; its link is destroyed when the last reference is released. The
 * caller's reference stays the caller's to release. */
void tf_console_sessions_end(struct tf_console_sessions *t, struct tf_console_session *s);

/* Ends the sessions idle past their time. */
void tf_console_sessions_expire(struct tf_console_sessions *t, int64_t now_ms);

/* How many sessions are live. */
unsigned tf_console_sessions_count(struct tf_console_sessions *t);

/* A session's id (its cookie's value), CSRF token, user and link.
 * Borrowed, valid while the caller holds its reference. */
const char *tf_console_session_id(const struct tf_console_session *s);
const char *tf_console_session_csrf(const struct tf_console_session *s);
const char *tf_console_session_user(const struct tf_console_session *s);
void *tf_console_session_link(const struct tf_console_session *s);

/* Whether token (NULL: none was sent) is s's CSRF token, compared in
 * constant time. */
bool tf_console_session_csrf_ok(const struct tf_console_session *s, const char *token);

/* Fills hex (TF_CONSOLE_TOKEN_HEX + 1 bytes) with 32 random bytes from
 * OpenSSL in hex. False when OpenSSL has none to give. */
bool tf_console_random_token(char *hex);

#endif
