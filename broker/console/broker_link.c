#include "config.h"

#include "broker/console/broker_link.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "broker/control/control.h"

#define METRICS_TOPIC "$trustflow/metrics"
#define METRICS_PREFIX "$trustflow/metrics/"
#define ALERTS_PREFIX "$trustflow/alerts/"
/* A metrics or alert message larger than this is ignored: the broker's
 * are far smaller, and a session must not grow without bound. */
#define MAX_PAYLOAD (1024 * 1024)
#define MAX_POLICIES 1024
/* listAlerts pages while loading the recent alerts (the broker keeps
 * 1,000: two pages of 500). */
#define ALERT_PAGES 4

/* The subscriptions, in the order sent. The answers' topic first: a user
 * the broker refuses it to may not use the console. */
static const char *const topics[] = {
	TF_CONTROL_RESPONSE_TOPIC, ALERTS_PREFIX "#", METRICS_TOPIC, METRICS_PREFIX "+",
};
#define N_TOPICS 4

/* A request waiting for its answer: on the asking thread's stack, listed
 * in the link while it waits. */
struct waiter {
	struct waiter *next;
	char correlation[48];
	cJSON *answer;        /* the whole answer, once it came */
};

struct policy_metrics {
	char *policy;
	cJSON *metrics;
};

struct tf_console_link {
	struct mosquitto *mosq;
	pthread_mutex_t lock;
	pthread_cond_t changed;       /* connection, SUBACK or answer */
	int timeout_ms;
	int connack;                  /* -1 until the broker answers CONNECT */
	int mids[N_TOPICS];
	bool granted[N_TOPICS];
	int subacks;
	bool alive;                   /* connected and not lost */
	bool ended;                   /* the connection dropped or was refused */
	bool thread_started;
	char *username;
	cJSON *broker_metrics;        /* NULL: none (yet, or not readable) */
	struct policy_metrics *policies;   /* sorted by policy id */
	uint32_t n_policies, cap_policies;
	cJSON *alerts[TF_LINK_ALERTS];     /* the alert of position p at p % TF_LINK_ALERTS */
	uint64_t next_alert;               /* the position of the next alert, from 1 */
	struct waiter *waiters;
	uint64_t asked;
	char prefix[17];                   /* of this link's correlation data */
};

static void deadline_after(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* --- What the broker sends (libmosquitto's thread). ----------------------- */

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
		const mosquitto_property *props)
{
	struct tf_console_link *l = obj;

	(void)flags;
	(void)props;
	pthread_mutex_lock(&l->lock);
	l->connack = rc;
	if (rc == 0) {
		l->alive = true;
		/* The broker has the password: libmosquitto's copy goes (it would
		 * only serve to connect again, which the link never does). */
		mosquitto_username_pw_set(mosq, l->username, NULL);
		for (int i = 0; i < N_TOPICS; i++)
			mosquitto_subscribe_v5(mosq, &l->mids[i], topics[i], 1, 0, NULL);
	} else {
		mosquitto_disconnect(mosq);
	}
	pthread_cond_broadcast(&l->changed);
	pthread_mutex_unlock(&l->lock);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc,
		const mosquitto_property *props)
{
	struct tf_console_link *l = obj;

	(void)rc;
	(void)props;
	pthread_mutex_lock(&l->lock);
	l->alive = false;
	l->ended = true;
	pthread_cond_broadcast(&l->changed);
	pthread_mutex_unlock(&l->lock);
	/* No reconnection: this makes libmosquitto's thread end. */
	mosquitto_disconnect(mosq);
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count,
		const int *granted_qos, const mosquitto_property *props)
{
	struct tf_console_link *l = obj;

	(void)mosq;
	(void)props;
	pthread_mutex_lock(&l->lock);
	for (int i = 0; i < N_TOPICS; i++) {
		if (l->mids[i] == mid) {
			l->granted[i] = qos_count >= 1 && granted_qos[0] < 0x80;
			l->subacks++;
		}
	}
	pthread_cond_broadcast(&l->changed);
	pthread_mutex_unlock(&l->lock);
}

static int policy_cmp(const void *a, const void *b)
{
	return strcmp(((const struct policy_metrics *)a)->policy,
		((const struct policy_metrics *)b)->policy);
}

/* Keeps m as the latest metrics of policy (lock held; ownership of m
 * passes); m NULL: the policy's copy was removed. */
static void put_policy_metrics(struct tf_console_link *l, const char *policy, cJSON *m)
{
	struct policy_metrics key = { (char *)(uintptr_t)policy, NULL }, *at;

	at = l->n_policies == 0 ? NULL
		: bsearch(&key, l->policies, l->n_policies, sizeof(*l->policies), policy_cmp);
	if (at != NULL) {
		cJSON_Delete(at->metrics);
		if (m != NULL) {
			at->metrics = m;
			return;
		}
		free(at->policy);
		memmove(at, at + 1, (size_t)(l->policies + l->n_policies - at - 1) * sizeof(*at));
		l->n_policies--;
		return;
	}
	if (m == NULL)
		return;
	if (l->n_policies >= MAX_POLICIES || l->n_policies == l->cap_policies) {
		uint32_t cap = l->cap_policies ? l->cap_policies * 2 : 16;
		struct policy_metrics *grown;

		if (l->n_policies >= MAX_POLICIES
				|| (grown = realloc(l->policies, cap * sizeof(*grown))) == NULL) {
			cJSON_Delete(m);
			return;
		}
		l->policies = grown;
		l->cap_policies = cap;
	}
	if ((key.policy = strdup(policy)) == NULL) {
		cJSON_Delete(m);
		return;
	}
	key.metrics = m;
	l->policies[l->n_policies++] = key;
	qsort(l->policies, l->n_policies, sizeof(*l->policies), policy_cmp);
}

static bool alert_known(const struct tf_console_link *l, const char *id)
{
	uint64_t first = l->next_alert > TF_LINK_ALERTS ? l->next_alert - TF_LINK_ALERTS : 1;

	for (uint64_t p = first; p < l->next_alert; p++) {
		const cJSON *other = cJSON_GetObjectItemCaseSensitive(l->alerts[p % TF_LINK_ALERTS],
			"id");

		if (cJSON_IsString(other) && strcmp(other->valuestring, id) == 0)
			return true;
	}
	return false;
}

/* Keeps alert (ownership passes) unless it is kept already (lock held):
 * it arrived while the recent ones were listed. */
static void put_alert(struct tf_console_link *l, cJSON *alert)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(alert, "id");
	cJSON **slot;

	if (!cJSON_IsObject(alert) || !cJSON_IsString(id) || alert_known(l, id->valuestring)) {
		cJSON_Delete(alert);
		return;
	}
	slot = &l->alerts[l->next_alert % TF_LINK_ALERTS];
	cJSON_Delete(*slot);
	*slot = alert;
	l->next_alert++;
}

static void on_answer(struct tf_console_link *l, cJSON *answer)
{
	const cJSON *corr = cJSON_GetObjectItemCaseSensitive(answer, "correlationData");

	if (cJSON_IsString(corr)) {
		for (struct waiter *w = l->waiters; w != NULL; w = w->next) {
			if (w->answer == NULL && strcmp(w->correlation, corr->valuestring) == 0) {
				w->answer = answer;
				pthread_cond_broadcast(&l->changed);
				return;
			}
		}
	}
	cJSON_Delete(answer);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
		const mosquitto_property *props)
{
	struct tf_console_link *l = obj;
	const char *topic = msg->topic;
	cJSON *json = NULL;

	(void)mosq;
	(void)props;
	if (msg->payloadlen > MAX_PAYLOAD)
		return;
	if (msg->payloadlen > 0) {
		json = cJSON_ParseWithLength(msg->payload, (size_t)msg->payloadlen);
		if (!cJSON_IsObject(json)) {
			cJSON_Delete(json);
			return;
		}
	}
	pthread_mutex_lock(&l->lock);
	if (strcmp(topic, TF_CONTROL_RESPONSE_TOPIC) == 0) {
		if (json != NULL)
			on_answer(l, json);
	} else if (strncmp(topic, ALERTS_PREFIX, strlen(ALERTS_PREFIX)) == 0) {
		if (json != NULL)
			put_alert(l, json);
	} else if (strcmp(topic, METRICS_TOPIC) == 0) {
		cJSON_Delete(l->broker_metrics);
		l->broker_metrics = json;
	} else if (strncmp(topic, METRICS_PREFIX, strlen(METRICS_PREFIX)) == 0
			&& topic[strlen(METRICS_PREFIX)] != '\0') {
		put_policy_metrics(l, topic + strlen(METRICS_PREFIX), json);
	} else {
		cJSON_Delete(json);
	}
	pthread_mutex_unlock(&l->lock);
}

/* --- Asking (the HTTP server's threads). ---------------------------------- */

cJSON *tf_console_link_ask(struct tf_console_link *l, cJSON *command,
		enum tf_console_link_rc *rc)
{
	struct waiter w = { 0 };
	cJSON *request = cJSON_CreateObject(), *list, *response = NULL;
	struct timespec deadline;
	char *text = NULL;
	int sent;

	*rc = TF_LINK_NOMEM;
	list = cJSON_AddArrayToObject(request, "commands");
	if (list == NULL || !cJSON_AddItemToArray(list, command)) {
		cJSON_Delete(request);
		cJSON_Delete(command);
		return NULL;
	}
	pthread_mutex_lock(&l->lock);
	snprintf(w.correlation, sizeof(w.correlation), "%s-%llu", l->prefix,
		(unsigned long long)++l->asked);
	pthread_mutex_unlock(&l->lock);
	if (cJSON_AddStringToObject(request, "correlationData", w.correlation) == NULL
			|| (text = cJSON_PrintUnformatted(request)) == NULL) {
		cJSON_Delete(request);
		return NULL;
	}
	cJSON_Delete(request);

	pthread_mutex_lock(&l->lock);
	w.next = l->waiters;
	l->waiters = &w;
	pthread_mutex_unlock(&l->lock);
	sent = mosquitto_publish_v5(l->mosq, NULL, TF_CONTROL_TOPIC, (int)strlen(text), text, 1,
		false, NULL);
	free(text);
	deadline_after(&deadline, l->timeout_ms);
	pthread_mutex_lock(&l->lock);
	while (sent == MOSQ_ERR_SUCCESS && w.answer == NULL && l->alive)
		if (pthread_cond_timedwait(&l->changed, &l->lock, &deadline) == ETIMEDOUT)
			break;
	for (struct waiter **p = &l->waiters; *p != NULL; p = &(*p)->next)
		if (*p == &w) {
			*p = w.next;
			break;
		}
	*rc = w.answer != NULL ? TF_LINK_OK : l->alive ? TF_LINK_UNREACHABLE : TF_LINK_LOST;
	pthread_mutex_unlock(&l->lock);
	if (w.answer != NULL) {
		response = cJSON_DetachItemFromArray(
			cJSON_GetObjectItemCaseSensitive(w.answer, "responses"), 0);
		cJSON_Delete(w.answer);
		if (!cJSON_IsObject(response)) {
			cJSON_Delete(response);
			response = NULL;
			*rc = TF_LINK_UNREACHABLE;
		}
	}
	return response;
}

/* Lists the recent alerts the user may read (every page): the history
 * the page starts with. Alerts that stream in meanwhile are kept once. */
static void load_alerts(struct tf_console_link *l)
{
	double cursor = 0;

	for (int page = 0; page < ALERT_PAGES; page++) {
		enum tf_console_link_rc rc;
		cJSON *command = cJSON_CreateObject(), *response, *list, *alert;
		const cJSON *next;

		if (command == NULL || !cJSON_AddStringToObject(command, "command", "listAlerts")
				|| !cJSON_AddNumberToObject(command, "limit", 500)
				|| (cursor > 0 && !cJSON_AddNumberToObject(command, "cursor", cursor))) {
			cJSON_Delete(command);
			return;
		}
		response = tf_console_link_ask(l, command, &rc);
		list = cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(response, "data"), "alerts");
		next = cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(response, "data"), "next");
		pthread_mutex_lock(&l->lock);
		while (cJSON_IsArray(list) && (alert = cJSON_DetachItemFromArray(list, 0)) != NULL)
			put_alert(l, alert);
		pthread_mutex_unlock(&l->lock);
		/* A cursor that does not go forward would ask for ever. */
		if (!cJSON_IsNumber(next) || next->valuedouble <= cursor) {
			cJSON_Delete(response);
			return;
		}
		cursor = next->valuedouble;
		cJSON_Delete(response);
	}
}

/* --- Opening and closing. ------------------------------------------------- */

static struct tf_console_link *link_new(const char *username, int timeout_ms)
{
	struct tf_console_link *l = calloc(1, sizeof(*l));
	pthread_condattr_t attr;
	unsigned char random[8];

	if (l == NULL)
		return NULL;
	if ((l->username = strdup(username)) == NULL || RAND_bytes(random, 8) != 1) {
		free(l->username);
		free(l);
		return NULL;
	}
	for (int i = 0; i < 8; i++)
		snprintf(l->prefix + 2 * i, 3, "%02x", random[i]);
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&l->changed, &attr);
	pthread_condattr_destroy(&attr);
	l->timeout_ms = timeout_ms;
	l->connack = -1;
	l->next_alert = 1;
	return l;
}

/* The link's connection is up and every SUBACK is in, or it never will be
 * (lock held). */
static bool settled(const struct tf_console_link *l)
{
	return (l->connack == 0 && l->subacks == N_TOPICS) || l->connack > 0 || l->ended;
}

enum tf_console_link_rc tf_console_link_open(const struct tf_console_broker *b,
		const char *username, char *password, struct tf_console_link **out)
{
	struct tf_console_link *l = link_new(username, b->timeout_ms);
	enum tf_console_link_rc rc = TF_LINK_NOMEM;
	struct timespec deadline;
	char client_id[32];
	int connack;

	*out = NULL;
	if (l == NULL)
		goto out;
	/* A client id of its own, so that it takes no other session's. */
	snprintf(client_id, sizeof(client_id), "tf-console-%s", l->prefix);
	l->mosq = mosquitto_new(client_id, true, l);
	if (l->mosq == NULL)
		goto out;
	mosquitto_int_option(l->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	mosquitto_connect_v5_callback_set(l->mosq, on_connect);
	mosquitto_disconnect_v5_callback_set(l->mosq, on_disconnect);
	mosquitto_subscribe_v5_callback_set(l->mosq, on_subscribe);
	mosquitto_message_v5_callback_set(l->mosq, on_message);
	rc = TF_LINK_UNREACHABLE;
	if (mosquitto_username_pw_set(l->mosq, username, password) != MOSQ_ERR_SUCCESS
			|| (b->cafile != NULL && mosquitto_tls_set(l->mosq, b->cafile, NULL, NULL,
				NULL, NULL) != MOSQ_ERR_SUCCESS)
			|| mosquitto_connect(l->mosq, b->host, b->port, 30) != MOSQ_ERR_SUCCESS
			|| mosquitto_loop_start(l->mosq) != MOSQ_ERR_SUCCESS)
		goto out;
	l->thread_started = true;

	deadline_after(&deadline, b->timeout_ms);
	pthread_mutex_lock(&l->lock);
	while (!settled(l))
		if (pthread_cond_timedwait(&l->changed, &l->lock, &deadline) == ETIMEDOUT)
			break;
	connack = l->connack;
	if (connack == MQTT_RC_BAD_USERNAME_OR_PASSWORD || connack == MQTT_RC_NOT_AUTHORIZED
			|| connack == MQTT_RC_BANNED || connack == CONNACK_REFUSED_BAD_USERNAME_PASSWORD
			|| connack == CONNACK_REFUSED_NOT_AUTHORIZED)
		rc = TF_LINK_DENIED;
	else if (connack != 0 || l->subacks < N_TOPICS)
		rc = TF_LINK_UNREACHABLE;
	else if (!l->granted[0])
		rc = TF_LINK_NOT_OPERATOR;
	else
		rc = TF_LINK_OK;
	pthread_mutex_unlock(&l->lock);
	if (rc == TF_LINK_OK)
		load_alerts(l);
out:
	OPENSSL_cleanse(password, strlen(password));
	if (rc != TF_LINK_OK) {
		tf_console_link_close(l);
		return rc;
	}
	*out = l;
	return TF_LINK_OK;
}

void tf_console_link_close(struct tf_console_link *l)
{
	if (l == NULL)
		return;
	if (l->mosq != NULL) {
		mosquitto_disconnect(l->mosq);
		if (l->thread_started)
			mosquitto_loop_stop(l->mosq, false);
		mosquitto_destroy(l->mosq);
	}
	cJSON_Delete(l->broker_metrics);
	for (uint32_t i = 0; i < l->n_policies; i++) {
		free(l->policies[i].policy);
		cJSON_Delete(l->policies[i].metrics);
	}
	free(l->policies);
	for (int i = 0; i < TF_LINK_ALERTS; i++)
		cJSON_Delete(l->alerts[i]);
	pthread_cond_destroy(&l->changed);
	pthread_mutex_destroy(&l->lock);
	free(l->username);
	free(l);
}

/* --- Reading what it holds. ----------------------------------------------- */

bool tf_console_link_alive(struct tf_console_link *l)
{
	bool alive;

	pthread_mutex_lock(&l->lock);
	alive = l->alive;
	pthread_mutex_unlock(&l->lock);
	return alive;
}

bool tf_console_link_has_broker_metrics(struct tf_console_link *l)
{
	bool has;

	pthread_mutex_lock(&l->lock);
	has = l->broker_metrics != NULL;
	pthread_mutex_unlock(&l->lock);
	return has;
}

/* Adds a copy of item to array; false when out of memory. */
static bool add_copy(cJSON *array, const cJSON *item)
{
	cJSON *copy = cJSON_Duplicate(item, true);

	if (copy == NULL || !cJSON_AddItemToArray(array, copy)) {
		cJSON_Delete(copy);
		return false;
	}
	return true;
}

cJSON *tf_console_link_metrics(struct tf_console_link *l)
{
	cJSON *list = cJSON_CreateArray();
	bool ok = list != NULL;

	pthread_mutex_lock(&l->lock);
	if (ok && l->broker_metrics != NULL)
		ok = add_copy(list, l->broker_metrics);
	for (uint32_t i = 0; ok && i < l->n_policies; i++)
		ok = add_copy(list, l->policies[i].metrics);
	pthread_mutex_unlock(&l->lock);
	if (!ok) {
		cJSON_Delete(list);
		return NULL;
	}
	return list;
}

cJSON *tf_console_link_alerts(struct tf_console_link *l, uint64_t after, uint64_t *next)
{
	cJSON *list = cJSON_CreateArray();
	bool ok = list != NULL;
	uint64_t first;

	pthread_mutex_lock(&l->lock);
	first = l->next_alert > TF_LINK_ALERTS ? l->next_alert - TF_LINK_ALERTS : 1;
	if (first <= after)
		first = after + 1;
	for (uint64_t p = first; ok && p < l->next_alert; p++)
		ok = add_copy(list, l->alerts[p % TF_LINK_ALERTS]);
	*next = l->next_alert - 1;
	pthread_mutex_unlock(&l->lock);
	if (!ok) {
		cJSON_Delete(list);
		return NULL;
	}
	return list;
}
