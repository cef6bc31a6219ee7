/* loadgen: the benchmark's load generator, on libmosquitto.
 *
 * One publisher sends --messages payloads of --size bytes at --qos to one
 * topic that --subscribers clients subscribe to, and the run is timed from
 * the first publish to the last delivery. The publisher stays at most
 * --window messages ahead of the subscribers, so the run measures what the
 * broker sustains rather than how deep its queues are. Prints one JSON
 * line: sent, expected and received deliveries, lost, seconds, msg/s.
 *
 * --sub-port: the subscribers connect to another broker than the
 * publisher (a bridge between the two carries the messages); default the
 * publisher's port.
 *
 * --rate N: instead of as fast as the window allows, publish N messages a
 * second, evenly spaced, each carrying the time it was sent (CLOCK_MONOTONIC,
 * after its sequence number in the payload's first 16 bytes), and report
 * besides the delivery latency of every delivery: p50, p99, p99.9, mean
 * and max in microseconds, measured in this one process.
 *
 * Exit status: 0 when the run completed (losses are reported, not fatal),
 * 2 on bad usage or when a client cannot connect. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "broker/util/number.h"

struct settings {
	const char *host;
	int port;
	int sub_port;              /* of the subscribers' broker; 0: port */
	long rate;                 /* messages a second; 0: as fast as the window allows */
	int qos;
	long messages;
	long size;
	long subscribers;
	long window;
	long drain_timeout_s;
	const char *topic;
	const char *pub_user;      /* NULL: connect without a username */
	const char *sub_user;
	const char *password;      /* of both; NULL: none */
};

/* Shared between the publisher (main thread) and the clients' network
 * threads. */
struct run_state {
	const struct settings *settings;
	atomic_bool stop;          /* tells the subscribers' thread to end */
	atomic_long received;      /* deliveries counted by all subscribers */
	atomic_long subscribed;    /* SUBACKs received */
	atomic_long connected;     /* CONNACKs with success */
	atomic_long failed;        /* CONNACKs with an error */
	pthread_mutex_t lock;
	pthread_cond_t progress;   /* signalled as deliveries arrive */
	/* --rate: each delivery's latency in ns, in arrival order. */
	int64_t *latency_ns;
	atomic_long latencies;
	long latency_cap;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Waits for the progress signal or 1 ms, whichever comes first. */
static void wait_progress(struct run_state *st)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&st->lock);
	pthread_cond_timedwait(&st->progress, &st->lock, &until);
	pthread_mutex_unlock(&st->lock);
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
	struct run_state *st = obj;

	(void)mosq;
	if (rc != 0) {
		atomic_fetch_add(&st->failed, 1);
		return;
	}
	atomic_fetch_add(&st->connected, 1);
}

/* Subscribers subscribe from their own thread, as soon as they are in. */
static void on_subscriber_connect(struct mosquitto *mosq, void *obj, int rc)
{
	struct run_state *st = obj;

	on_connect(mosq, obj, rc);
	if (rc == 0)
		mosquitto_subscribe(mosq, NULL, st->settings->topic, st->settings->qos);
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int count, const int *granted)
{
	struct run_state *st = obj;

	(void)mosq;
	(void)mid;
	if (count == 1 && granted[0] <= 2)
		atomic_fetch_add(&st->subscribed, 1);
	else
		atomic_fetch_add(&st->failed, 1);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
	struct run_state *st = obj;
	long n;

	(void)mosq;
	if (st->latency_ns != NULL && msg->payloadlen >= 16) {
		int64_t sent_ns;
		long i;

		memcpy(&sent_ns, (const unsigned char *)msg->payload + 8, sizeof(sent_ns));
		i = atomic_fetch_add(&st->latencies, 1);
		if (i < st->latency_cap)
			st->latency_ns[i] = now_ns() - sent_ns;
	}
	n = atomic_fetch_add(&st->received, 1) + 1;
	/* Waking the publisher on every delivery would cost more than the
	 * delivery; it also wakes itself every millisecond. */
	if ((n & 63) == 0)
		pthread_cond_signal(&st->progress);
}

/* Waits until count reaches target or the state records a failure, for at
 * most timeout_s. Returns true on success. */
static bool wait_count(struct run_state *st, atomic_long *count, long target, double timeout_s)
{
	double deadline = now_s() + timeout_s;

	while (atomic_load(count) < target) {
		if (atomic_load(&st->failed) > 0 || now_s() > deadline)
			return false;
		wait_progress(st);
	}
	return true;
}

/* Creates a client and sends its CONNECT. Subscribers are driven by
 * subscribers_loop(); the publisher gets libmosquitto's own network thread. */
static struct mosquitto *client_start(const struct settings *s, struct run_state *st,
		const char *id, bool subscriber)
{
	struct mosquitto *mosq;

	mosq = mosquitto_new(id, true, st);
	if (mosq == NULL)
		return NULL;
	mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	if ((subscriber ? s->sub_user : s->pub_user) != NULL)
		mosquitto_username_pw_set(mosq, subscriber ? s->sub_user : s->pub_user, s->password);
	/* The window, not the client's in-flight limit, paces the publisher. */
	mosquitto_max_inflight_messages_set(mosq, 0);
	if (subscriber) {
		mosquitto_connect_callback_set(mosq, on_subscriber_connect);
		mosquitto_subscribe_callback_set(mosq, on_subscribe);
		mosquitto_message_callback_set(mosq, on_message);
	} else {
		mosquitto_connect_callback_set(mosq, on_connect);
	}
	if (mosquitto_connect(mosq, s->host, subscriber ? s->sub_port : s->port, 60)
			!= MOSQ_ERR_SUCCESS
			|| (!subscriber && mosquitto_loop_start(mosq) != MOSQ_ERR_SUCCESS)) {
		mosquitto_destroy(mosq);
		return NULL;
	}
	return mosq;
}

static void client_stop(struct mosquitto *mosq, bool subscriber)
{
	if (mosq == NULL)
		return;
	mosquitto_disconnect(mosq);
	if (!subscriber)
		mosquitto_loop_stop(mosq, false);
	mosquitto_destroy(mosq);
}

struct subscribers {
	struct run_state *st;
	struct mosquitto **clients;
	struct pollfd *fds;
	long count;
};

/* One thread serves every subscriber with poll(): fifty network threads
 * fighting the broker for two cores would measure the scheduler. */
static void *subscribers_loop(void *arg)
{
	struct subscribers *subs = arg;

	while (!atomic_load(&subs->st->stop)) {
		for (long i = 0; i < subs->count; i++) {
			subs->fds[i].fd = mosquitto_socket(subs->clients[i]);
			subs->fds[i].events = POLLIN
				| (mosquitto_want_write(subs->clients[i]) ? POLLOUT : 0);
			subs->fds[i].revents = 0;
		}
		if (poll(subs->fds, (nfds_t)subs->count, 100) < 0 && errno != EINTR)
			break;
		for (long i = 0; i < subs->count; i++) {
			struct mosquitto *mosq = subs->clients[i];

			if (subs->fds[i].revents & (POLLIN | POLLERR | POLLHUP))
				mosquitto_loop_read(mosq, 1);
			if (subs->fds[i].revents & POLLOUT)
				mosquitto_loop_write(mosq, 1);
			mosquitto_loop_misc(mosq);
		}
	}
	return NULL;
}

static int cmp_int64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* The latency of the n-th fraction of the sorted samples, in us. */
static double percentile_us(const int64_t *sorted, long n, double q)
{
	long i = (long)(q * (double)(n - 1) + 0.5);

	return (double)sorted[i] / 1e3;
}

/* --rate: the JSON fields of the deliveries' latencies (sorted in place). */
static void print_latencies(struct run_state *st, long rate)
{
	long n = atomic_load(&st->latencies);
	double sum = 0;

	if (n > st->latency_cap)
		n = st->latency_cap;
	printf(", \"rate\": %ld, \"latency_samples\": %ld", rate, n);
	if (n == 0)
		return;
	qsort(st->latency_ns, (size_t)n, sizeof(*st->latency_ns), cmp_int64);
	for (long i = 0; i < n; i++)
		sum += (double)st->latency_ns[i];
	printf(", \"latency_p50_us\": %.1f, \"latency_p99_us\": %.1f, \"latency_p999_us\": %.1f, "
	       "\"latency_mean_us\": %.1f, \"latency_max_us\": %.1f",
	       percentile_us(st->latency_ns, n, 0.50), percentile_us(st->latency_ns, n, 0.99),
	       percentile_us(st->latency_ns, n, 0.999), sum / (double)n / 1e3,
	       (double)st->latency_ns[n - 1] / 1e3);
}

static void usage(void)
{
	fputs("usage: loadgen --port P [--host H] [--qos 0|1|2] [--messages N] [--size BYTES]\n"
	      "               [--subscribers K] [--window N] [--drain-timeout S] [--topic T]\n"
	      "               [--pub-user NAME] [--sub-user NAME] [--password P]\n"
	      "               [--sub-port P] [--rate MSG_PER_S]\n",
	      stderr);
}

static bool parse_args(int argc, char **argv, struct settings *s)
{
	*s = (struct settings){ .host = "127.0.0.1", .port = 0, .qos = 0, .messages = 200000,
		.size = 256, .subscribers = 1, .window = 500, .drain_timeout_s = 10,
		.topic = "bench/load" };

	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		long v = 0;
		bool ok = val != NULL;

		if (!ok)
			break;
		if (strcmp(opt, "--host") == 0)
			s->host = val;
		else if (strcmp(opt, "--topic") == 0)
			s->topic = val;
		else if (strcmp(opt, "--pub-user") == 0)
			s->pub_user = val;
		else if (strcmp(opt, "--sub-user") == 0)
			s->sub_user = val;
		else if (strcmp(opt, "--password") == 0)
			s->password = val;
		else if (strcmp(opt, "--port") == 0 && (ok = tf_parse_long(val, 1, 65535, &v)))
			s->port = (int)v;
		else if (strcmp(opt, "--sub-port") == 0 && (ok = tf_parse_long(val, 1, 65535, &v)))
			s->sub_port = (int)v;
		else if (strcmp(opt, "--rate") == 0)
			ok = tf_parse_long(val, 1, 10000000, &s->rate);
		else if (strcmp(opt, "--qos") == 0 && (ok = tf_parse_long(val, 0, 2, &v)))
			s->qos = (int)v;
		else if (strcmp(opt, "--messages") == 0)
			ok = tf_parse_long(val, 1, 100000000, &s->messages);
		else if (strcmp(opt, "--size") == 0)
			ok = tf_parse_long(val, 8, 256 * 1024 * 1024, &s->size);
		else if (strcmp(opt, "--subscribers") == 0)
			ok = tf_parse_long(val, 1, 10000, &s->subscribers);
		else if (strcmp(opt, "--window") == 0)
			ok = tf_parse_long(val, 1, 100000000, &s->window);
		else if (strcmp(opt, "--drain-timeout") == 0)
			ok = tf_parse_long(val, 1, 3600, &s->drain_timeout_s);
		else
			ok = false;
		if (!ok) {
			fprintf(stderr, "loadgen: bad option or value: %s %s\n", opt, val ? val : "");
			return false;
		}
		i++;
	}
	if (s->port == 0) {
		fputs("loadgen: --port is required\n", stderr);
		return false;
	}
	if (s->sub_port == 0)
		s->sub_port = s->port;
	if (s->rate > 0 && s->size < 16) {
		fputs("loadgen: --rate needs --size 16 or more (sequence number and send time)\n",
			stderr);
		return false;
	}
	return true;
}

/* Publishes every message, never more than the window ahead of the
 * subscribers; stops when deliveries stall for the drain timeout (the
 * broker dropped messages). Returns the number sent. */
static long publish_all(const struct settings *s, struct run_state *st, struct mosquitto *pub,
		unsigned char *payload)
{
	int64_t start_ns = now_ns();
	long sent;

	for (sent = 0; sent < s->messages; sent++) {
		long may_lag = (sent - s->window) * s->subscribers;
		long last = atomic_load(&st->received);
		double last_change = now_s();

		while (atomic_load(&st->received) < may_lag) {
			long r;

			if (atomic_load(&st->failed) > 0)
				return sent;
			wait_progress(st);
			r = atomic_load(&st->received);
			if (r != last) {
				last = r;
				last_change = now_s();
			} else if (now_s() - last_change > (double)s->drain_timeout_s) {
				return sent;
			}
		}
		/* The sequence number makes each payload distinct. */
		memcpy(payload, &sent, sizeof(sent));
		if (s->rate > 0) {
			struct timespec due = { 0 };
			int64_t due_ns = start_ns + (int64_t)((double)sent * 1e9 / (double)s->rate);
			int64_t sent_ns;

			due.tv_sec = (time_t)(due_ns / 1000000000);
			due.tv_nsec = (long)(due_ns % 1000000000);
			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) == EINTR)
				;
			sent_ns = now_ns();
			memcpy(payload + 8, &sent_ns, sizeof(sent_ns));
		}
		if (mosquitto_publish(pub, NULL, s->topic, (int)s->size, payload, s->qos, false)
				!= MOSQ_ERR_SUCCESS)
			return sent;
	}
	return sent;
}

/* Waits for the deliveries still under way; gives up when none has
 * arrived for the drain timeout. Returns when the last delivery was seen. */
static double drain(const struct settings *s, struct run_state *st, long expected)
{
	long last = atomic_load(&st->received);
	double last_change = now_s();

	while (last < expected) {
		long r;

		wait_progress(st);
		r = atomic_load(&st->received);
		if (r != last) {
			last = r;
			last_change = now_s();
		} else if (now_s() - last_change > (double)s->drain_timeout_s) {
			break;
		}
	}
	return last_change;
}

int main(int argc, char **argv)
{
	struct settings s;
	struct run_state st;
	struct subscribers subs = { 0 };
	pthread_t subs_thread;
	bool subs_running = false;
	struct mosquitto *pub = NULL;
	unsigned char *payload = NULL;
	double started, elapsed;
	long sent, received, expected;
	int status = 2;

	if (!parse_args(argc, argv, &s)) {
		usage();
		return 2;
	}
	memset(&st, 0, sizeof(st));
	st.settings = &s;
	pthread_mutex_init(&st.lock, NULL);
	pthread_cond_init(&st.progress, NULL);
	mosquitto_lib_init();

	payload = calloc(1, (size_t)s.size);
	subs.st = &st;
	subs.count = s.subscribers;
	subs.clients = calloc((size_t)s.subscribers, sizeof(*subs.clients));
	subs.fds = calloc((size_t)s.subscribers, sizeof(*subs.fds));
	if (payload == NULL || subs.clients == NULL || subs.fds == NULL) {
		fputs("loadgen: out of memory\n", stderr);
		goto out;
	}
	memset(payload, 'x', (size_t)s.size);
	if (s.rate > 0) {
		st.latency_cap = s.messages * s.subscribers;
		st.latency_ns = calloc((size_t)st.latency_cap, sizeof(*st.latency_ns));
		if (st.latency_ns == NULL) {
			fputs("loadgen: out of memory\n", stderr);
			goto out;
		}
	}
	for (long i = 0; i < s.subscribers; i++) {
		char id[32];

		snprintf(id, sizeof(id), "loadgen-sub-%ld", i);
		subs.clients[i] = client_start(&s, &st, id, true);
		if (subs.clients[i] == NULL) {
			fprintf(stderr, "loadgen: cannot connect %s to %s:%d\n", id, s.host,
				s.sub_port);
			goto out;
		}
	}
	if (pthread_create(&subs_thread, NULL, subscribers_loop, &subs) != 0) {
		fputs("loadgen: cannot start the subscribers' thread\n", stderr);
		goto out;
	}
	subs_running = true;
	pub = client_start(&s, &st, "loadgen-pub", false);
	if (pub == NULL || !wait_count(&st, &st.connected, s.subscribers + 1, 10.0)) {
		fprintf(stderr, "loadgen: clients could not connect to %s:%d\n", s.host, s.port);
		goto out;
	}
	if (!wait_count(&st, &st.subscribed, s.subscribers, 10.0)) {
		fputs("loadgen: subscriptions were refused or not acknowledged\n", stderr);
		goto out;
	}

	started = now_s();
	sent = publish_all(&s, &st, pub, payload);
	expected = sent * s.subscribers;
	/* The clock stops at the last delivery, not at the end of the drain. */
	elapsed = drain(&s, &st, expected) - started;
	received = atomic_load(&st.received);
	if (elapsed <= 0)
		elapsed = 1e-9;

	printf("{\"qos\": %d, \"size\": %ld, \"subscribers\": %ld, \"messages\": %ld, "
	       "\"sent\": %ld, \"expected\": %ld, \"received\": %ld, \"lost\": %ld, "
	       "\"seconds\": %.3f, \"msg_per_s\": %.0f",
	       s.qos, s.size, s.subscribers, s.messages, sent, expected, received,
	       expected > received ? expected - received : 0, elapsed, (double)received / elapsed);
	if (s.rate > 0) {
		/* Every latency is written once the subscribers' thread has ended. */
		atomic_store(&st.stop, true);
		pthread_join(subs_thread, NULL);
		subs_running = false;
		print_latencies(&st, s.rate);
	}
	puts("}");
	status = 0;
out:
	client_stop(pub, false);
	if (subs_running) {
		atomic_store(&st.stop, true);
		pthread_join(subs_thread, NULL);
	}
	for (long i = 0; subs.clients != NULL && i < s.subscribers; i++)
		client_stop(subs.clients[i], true);
	free(subs.clients);
	free(subs.fds);
	free(st.latency_ns);
	free(payload);
	mosquitto_lib_cleanup();
	return status;
}
