/* One MQTT v5 connection to the broker for one console session, made
 * with that user's name and password, so that the broker's own rules
 * decide what the session sees and may do. It subscribes to the metrics
 * ($trustflow/metrics, $trustflow/metrics/+), the alerts
 * ($trustflow/alerts/#) and the control API's answers, keeps the latest
 * metrics of each topic and a ring of the recent alerts, and sends
 * control-API requests, each waiting for its own answer.
 *
 * The connection is not made again when it drops: the password is not
 * kept once the broker has accepted it, so a lost link is dead and its
 * session must sign in again. Thread-safe: libmosquitto's thread fills
 * the link, the HTTP server's threads read it and ask through it. */
#ifndef TF_CONSOLE_BROKER_LINK_H
#define TF_CONSOLE_BROKER_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct tf_console_link;

struct tf_console_broker {
	const char *host;
	int port;
	const char *cafile;       /* NULL: plain MQTT; else TLS, the broker checked with it */
	int timeout_ms;           /* for the connection and for each answer */
};

enum tf_console_link_rc {
	TF_LINK_OK = 0,
	TF_LINK_DENIED,           /* the broker refused the user name or password */
	TF_LINK_NOT_OPERATOR,     /* accepted, but may not use the control API */
	TF_LINK_UNREACHABLE,      /* no connection, or no answer in time */
	TF_LINK_LOST,             /* the connection dropped */
	TF_LINK_NOMEM,
};

/* Connects as username with password, waits for the broker's answer and
 * the subscriptions, and loads the recent alerts (listAlerts). password
 * is wiped (OPENSSL_cleanse) before this returns, whatever happens; the
 * copy libmosquitto made is dropped once the broker has accepted it. On
 * TF_LINK_OK, *out is the link (caller owns; close with
 * tf_console_link_close). */
enum tf_console_link_rc tf_console_link_open(const struct tf_console_broker *b,
		const char *username, char *password, struct tf_console_link **out);

/* Disconnects, stops the link's thread and frees it. NULL is allowed. */
void tf_console_link_close(struct tf_console_link *l);

/* Whether the connection still stands. */
bool tf_console_link_alive(struct tf_console_link *l);

/* Sends one control-API command (ownership of command passes) and waits
 * for its answer: the response object ({"command", "data"} or
 * {"command", "error"}; caller owns, free with cJSON_Delete), or NULL
 * with *rc saying why (no answer in time: TF_LINK_UNREACHABLE). */
cJSON *tf_console_link_ask(struct tf_console_link *l, cJSON *command,
		enum tf_console_link_rc *rc);

/* The latest metric objects the broker gave this user: the broker's
 * ($trustflow/metrics) first when it may read it, then each policy's, by
 * policy id. A new array (caller owns), NULL when out of memory. */
cJSON *tf_console_link_metrics(struct tf_console_link *l);

/* Whether the broker's own metrics are among them. */
bool tf_console_link_has_broker_metrics(struct tf_console_link *l);

/* The alerts that came after position after (0: every one kept), oldest
 * first, as a new array (caller owns; NULL when out of memory); *next is
 * the position to ask from next time. The link keeps the latest
 * TF_LINK_ALERTS. */
#define TF_LINK_ALERTS 500
cJSON *tf_console_link_alerts(struct tf_console_link *l, uint64_t after, uint64_t *next);

#endif
