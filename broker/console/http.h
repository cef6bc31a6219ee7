/* The console's web server (libmicrohttpd): the page and its assets, the
 * JSON API the page uses, and /metrics in Prometheus' format. Every
 * request acts on the broker as the user signed in, over that user's own
 * MQTT connection (broker_link.h), so the broker's rules decide what each
 * person sees and may do. docs/console.md is the contract. */
#ifndef TF_CONSOLE_HTTP_H
#define TF_CONSOLE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "broker/console/broker_link.h"

struct tf_console_config {
	const char *listen;            /* an address to bind; default 127.0.0.1 */
	int http_port;                 /* 0: any free port (tf_console_port says which) */
	struct tf_console_broker broker;
	/* PEM text of the certificate (chain) and key: HTTPS. NULL: HTTP. */
	const char *tls_cert_pem, *tls_key_pem;
	unsigned max_sessions;         /* signed-in sessions at a time */
	unsigned max_scrapers;         /* /metrics scrapers by HTTP Basic at a time */
	int64_t idle_ms;               /* a session idle longer ends */
	unsigned max_failures;         /* failed sign-ins a minute, for the whole console */
	unsigned failure_delay_ms;     /* how long a failed sign-in waits before its answer */
};

struct tf_console;

/* Starts serving on cfg's address and port (the configuration is copied
 * where needed; the PEM text may be wiped once this returns). NULL, with
 * err filled (errlen bytes), when it cannot. Caller owns; stop with
 * tf_console_stop. */
struct tf_console *tf_console_start(const struct tf_console_config *cfg, char *err,
		size_t errlen);

/* The port it listens on. */
int tf_console_port(const struct tf_console *c);

/* Ends the sessions idle past their time (and their broker
 * connections); the server does it also on each sign-in. */
void tf_console_sweep(struct tf_console *c);

/* Stops serving, ends every session and frees c. */
void tf_console_stop(struct tf_console *c);

#endif
