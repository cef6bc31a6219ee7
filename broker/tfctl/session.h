/* One MQTT v5 session of a tfctl command: connects, subscribes to the
 * command's topics once the broker accepts it, hands each SUBACK and
 * message to the command, and runs until the command disconnects. */
#ifndef TFCTL_SESSION_H
#define TFCTL_SESSION_H

#include <stdbool.h>

#include <mosquitto.h>

struct tfctl_session {
	const char *host;
	long port;
	const char *username, *password;   /* username NULL: none */
	const char *const *topics;         /* subscribed to, QoS 1 */
	int n_topics;
	/* Each SUBACK, in the order of topics: granted or refused. NULL: none. */
	void (*on_subscribed)(struct mosquitto *mosq, void *ctx, int index, bool granted);
	void (*on_message)(struct mosquitto *mosq, void *ctx, const struct mosquitto_message *msg,
			const mosquitto_property *props);
	void *ctx;
};

/* Takes a connection option (--host, --port, --username, --password) and
 * its value val into s. False when opt is not one of them or val is not
 * valid for it (a port outside 1-65535). */
bool tfctl_session_option(struct tfctl_session *s, const char *opt, const char *val);

/* Runs the session. Returns TFCTL_OK when it connected and ended, or
 * TFCTL_USAGE when the broker could not be reached or refused the
 * connection (said on stderr). */
int tfctl_session_run(const struct tfctl_session *s);

#endif
