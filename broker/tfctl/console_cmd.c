/* tfctl console: the web console (broker/console/): a page for data
 * stewards and administrators, and /metrics for Prometheus, each acting on
 * the broker as the user who signed in. Runs until SIGINT or SIGTERM. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <openssl/crypto.h>

#include "broker/console/http.h"
#include "broker/tfctl/tfctl.h"
#include "broker/util/number.h"

static const char console_usage[] =
	"usage: tfctl console [--listen ADDR] [--http-port N] [--host H] [--port P]\n"
	"                     [--cafile PEM] [--tls-cert PEM --tls-key PEM]\n"
	"\n"
	"Serves the web console: a page where data stewards and administrators sign in\n"
	"with their broker user name and password and see, live, their policies'\n"
	"traffic and recipients, alerts, quarantined flows (to release or discard),\n"
	"messages by tf-id and alerts' impact reports; and /metrics in Prometheus'\n"
	"text format (HTTP Basic with broker credentials, or a signed-in session).\n"
	"Each person's requests go to the broker over an MQTT connection of their own,\n"
	"so the broker's rules decide what each sees. Nothing is written to disk.\n"
	"\n"
	"  --listen ADDR    address to serve on (default 127.0.0.1: this machine only)\n"
	"  --http-port N    port to serve on (default 8080; 0: any free one)\n"
	"  --host H         the broker (default 127.0.0.1)\n"
	"  --port P         its MQTT port (default 1883)\n"
	"  --cafile PEM     connect to the broker over TLS, checking it with this CA\n"
	"  --tls-cert PEM   serve HTTPS with this certificate (chain) ...\n"
	"  --tls-key PEM    ... and its key (the session cookie is then Secure)\n"
	"\n"
	"Prints the address it serves on, then runs until interrupted. Exit status 2\n"
	"on bad usage or when it cannot serve. docs/console.md explains it.\n";

/* A PEM file is small; a larger one is a mistake. */
#define MAX_PEM (1024 * 1024)

static int usage_error(const char *what)
{
	fprintf(stderr, "tfctl console: %s\n%s", what, console_usage);
	return TFCTL_USAGE;
}

/* The whole of file path as a string (caller owns; wipe and free), or
 * NULL after saying why. */
static char *read_pem(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *text = malloc(MAX_PEM + 1);
	size_t n = 0;

	if (f == NULL || text == NULL) {
		fprintf(stderr, "tfctl console: %s: %s\n", path, f == NULL ? strerror(errno)
			: "out of memory");
		if (f != NULL)
			fclose(f);
		free(text);
		return NULL;
	}
	n = fread(text, 1, MAX_PEM + 1, f);
	fclose(f);
	if (n == 0 || n > MAX_PEM || memchr(text, '\0', n) != NULL) {
		fprintf(stderr, "tfctl console: %s: not a PEM file\n", path);
		OPENSSL_cleanse(text, MAX_PEM + 1);
		free(text);
		return NULL;
	}
	text[n] = '\0';
	return text;
}

static void free_pem(char *text)
{
	if (text != NULL)
		OPENSSL_cleanse(text, strlen(text));
	free(text);
}

int tfctl_console(int argc, char **argv)
{
	struct tf_console_config cfg = {
		.listen = "127.0.0.1", .http_port = 8080,
		.broker = { .host = "127.0.0.1", .port = 1883, .cafile = NULL, .timeout_ms = 10000 },
		.max_sessions = 64, .max_scrapers = 16, .idle_ms = 30 * 60 * 1000,
		.max_failures = 20, .failure_delay_ms = 1000,
	};
	const char *cert = NULL, *key = NULL;
	char *cert_pem = NULL, *key_pem = NULL, err[256];
	struct tf_console *console;
	struct timespec tick = { 10, 0 };
	sigset_t stop;
	long n;
	int sig;

	for (int i = 0; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(opt, "--help") == 0) {
			fputs(console_usage, stdout);
			return TFCTL_OK;
		}
		if (val == NULL)
			return usage_error("an option is missing its value");
		if (strcmp(opt, "--listen") == 0)
			cfg.listen = val;
		else if (strcmp(opt, "--http-port") == 0 && tf_parse_long(val, 0, 65535, &n))
			cfg.http_port = (int)n;
		else if (strcmp(opt, "--host") == 0)
			cfg.broker.host = val;
		else if (strcmp(opt, "--port") == 0 && tf_parse_long(val, 1, 65535, &n))
			cfg.broker.port = (int)n;
		else if (strcmp(opt, "--cafile") == 0)
			cfg.broker.cafile = val;
		else if (strcmp(opt, "--tls-cert") == 0)
			cert = val;
		else if (strcmp(opt, "--tls-key") == 0)
			key = val;
		else
			return usage_error("unknown option or bad value");
		i++;
	}
	if ((cert == NULL) != (key == NULL))
		return usage_error("--tls-cert and --tls-key go together");
	if (cert != NULL) {
		cert_pem = read_pem(cert);
		key_pem = cert_pem != NULL ? read_pem(key) : NULL;
		if (key_pem == NULL) {
			free_pem(cert_pem);
			return TFCTL_USAGE;
		}
		cfg.tls_cert_pem = cert_pem;
		cfg.tls_key_pem = key_pem;
	}

	/* The server's and libmosquitto's threads inherit this mask: only this
	 * thread takes the signals that stop the console. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	mosquitto_lib_init();
	console = tf_console_start(&cfg, err, sizeof(err));
	free_pem(cert_pem);
	free_pem(key_pem);
	if (console == NULL) {
		fprintf(stderr, "tfctl console: %s\n", err);
		mosquitto_lib_cleanup();
		return TFCTL_USAGE;
	}
	printf("tfctl console: serving %s://%s%s%s:%d/ for the broker at %s:%d\n",
		cert != NULL ? "https" : "http", strchr(cfg.listen, ':') ? "[" : "", cfg.listen,
		strchr(cfg.listen, ':') ? "]" : "", tf_console_port(console), cfg.broker.host,
		cfg.broker.port);
	fflush(stdout);
	/* Idle sessions end (and their broker connections close) even when no
	 * request comes. */
	while ((sig = sigtimedwait(&stop, NULL, &tick)) < 0 && (errno == EAGAIN || errno == EINTR))
		tf_console_sweep(console);
	tf_console_stop(console);
	mosquitto_lib_cleanup();
	return TFCTL_OK;
}
