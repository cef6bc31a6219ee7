/* Will messages, which mosquitto 2.0.11 publishes without the MESSAGE
 * event: they get the same check, stamp and record as any message.
 *
 * mosquitto checks a will with the WRITE ACL when it sends it, then
 * queues it to the subscribers (their READ checks run at once, within
 * the same call) and keeps it if retained; MESSAGE never runs. An
 * ordinary PUBLISH has its WRITE check followed by MESSAGE before
 * anything else happens. So a WRITE check not followed by MESSAGE was a
 * will's: the plugin remembers each allowed WRITE until MESSAGE comes,
 * withholds every delivery of a will so found (and its retained copy),
 * and at the next TICK (the end of mosquitto's loop pass, just before it
 * publishes what plugins queued) passes the will through the engine like
 * a message from its client, and publishes the result itself: stamped,
 * recorded, governed, its views made. A will's own properties are not
 * kept (plugins cannot read them); a will that nobody received and that
 * was not retained has nothing to deliver and is dropped. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "broker/util/fnv.h"
#include "plugins/shim.h"

/* Wills in one loop pass, at most; more are withheld, and logged. */
#define WILLS_MAX 1024

struct will {
	char *client_id, *username;  /* username NULL: none */
	char *topic;
	void *payload;               /* NULL until known */
	uint32_t payloadlen;
	uint64_t payload_hash;
	int qos;
	bool retain;
};

struct tf_wills {
	struct will pending;         /* the last allowed WRITE; topic NULL: none */
	struct will found[WILLS_MAX];
	uint32_t n_found;
	uint32_t n_lost;
	/* Topics whose retained will the last tick removed: the empty
	 * retained message that removes it is no one's to receive. */
	char *clearing[WILLS_MAX];
	uint32_t n_clearing;
};

struct tf_wills *tf_wills_new(void)
{
	return calloc(1, sizeof(struct tf_wills));
}

static void will_clear(struct will *w)
{
	free(w->client_id);
	free(w->username);
	free(w->topic);
	free(w->payload);
	memset(w, 0, sizeof(*w));
}

static void forget_clearing(struct tf_wills *wills)
{
	for (uint32_t i = 0; i < wills->n_clearing; i++)
		free(wills->clearing[i]);
	wills->n_clearing = 0;
}

void tf_wills_free(struct tf_wills *wills)
{
	if (wills == NULL)
		return;
	will_clear(&wills->pending);
	for (uint32_t i = 0; i < wills->n_found; i++)
		will_clear(&wills->found[i]);
	forget_clearing(wills);
	free(wills);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* The pending WRITE got no MESSAGE: it was a will. */
static void pending_was_a_will(struct tf_wills *wills)
{
	if (wills->pending.topic == NULL)
		return;
	if (wills->n_found == WILLS_MAX) {
		wills->n_lost++;
		will_clear(&wills->pending);
		return;
	}
	wills->found[wills->n_found++] = wills->pending;
	memset(&wills->pending, 0, sizeof(wills->pending));
}

void tf_wills_note_write(struct tf_wills *wills, const struct mosquitto *client,
		const char *topic, const void *payload, uint32_t payloadlen, int qos, bool retain)
{
	struct will *w = &wills->pending;

	pending_was_a_will(wills);
	if (topic[0] == '$')
		return;
	w->client_id = dup_or_null(mosquitto_client_id(client));
	w->username = dup_or_null(mosquitto_client_username(client));
	w->topic = strdup(topic);
	w->payloadlen = payloadlen;
	w->payload_hash = tf_fnv1a(TF_FNV_OFFSET, payload, payloadlen);
	w->qos = qos;
	w->retain = retain;
	/* A retained will may reach no one now and be handed out later: its
	 * payload is needed at the next TICK, when mosquitto has freed it. */
	if (retain && payloadlen > 0 && (w->payload = malloc(payloadlen)) != NULL)
		memcpy(w->payload, payload, payloadlen);
	if (w->topic == NULL || w->client_id == NULL) {
		/* Out of memory: should this be a will, it could not be told
		 * from other messages, so every delivery until the next tick is
		 * withheld (tf_wills_withhold). */
		will_clear(w);
		wills->n_lost++;
		mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: out of memory noting a publish on %s",
			topic);
	}
	/* A retained payload that could not be kept: the will is withheld
	 * (tf_wills_tick says so). */
}

void tf_wills_message_seen(struct tf_wills *wills)
{
	if (wills->pending.topic != NULL)
		will_clear(&wills->pending);
}

static bool same_message(const struct will *w, const char *topic, const void *payload,
		uint32_t payloadlen)
{
	return w->topic != NULL && w->payloadlen == payloadlen && strcmp(w->topic, topic) == 0
		&& w->payload_hash == tf_fnv1a(TF_FNV_OFFSET, payload, payloadlen);
}

bool tf_wills_withhold(struct tf_wills *wills, const char *topic, const void *payload,
		uint32_t payloadlen)
{
	struct will *w = NULL;

	if (payloadlen == 0)
		for (uint32_t i = 0; i < wills->n_clearing; i++)
			if (strcmp(wills->clearing[i], topic) == 0)
				return true;
	if (wills->pending.topic == NULL && wills->n_found == 0)
		return false;
	if (same_message(&wills->pending, topic, payload, payloadlen)) {
		/* A delivery before MESSAGE: the pending WRITE was a will. */
		pending_was_a_will(wills);
		if (wills->n_found > 0)
			w = &wills->found[wills->n_found - 1];
	}
	for (uint32_t i = 0; w == NULL && i < wills->n_found; i++)
		if (same_message(&wills->found[i], topic, payload, payloadlen))
			w = &wills->found[i];
	if (w == NULL)
		return wills->n_lost > 0 && topic[0] != '$';
	if (w->payload == NULL && payloadlen > 0 && (w->payload = malloc(payloadlen)) != NULL)
		memcpy(w->payload, payload, payloadlen);
	return true;
}

/* Publishes a will as the engine decided it: stamped, on its topic or
 * where it was rerouted, with its views. */
static void publish_will(struct tf_plugin *plugin, const struct will *w)
{
	struct tf_message_result res;
	struct tf_message m = {
		.client_id = w->client_id,
		.username = w->username,
		.connection = NULL,
		.topic = w->topic,
		.payload = w->payload ? w->payload : "",
		.payloadlen = w->payloadlen,
		/* Never sent again by its client: no QoS 2 resend to recognise. */
		.qos = w->qos > 1 ? 1 : w->qos,
		.retain = w->retain,
		.republished = true,
	};
	mosquitto_property *props = NULL;
	const char *topic;

	tf_engine_on_message(plugin->engine, &m, &res);
	if (!res.deliver || res.hold) {
		tf_message_result_free(&res);
		return;
	}
	topic = res.redirect ? res.redirect : w->topic;
	if (res.stamped && tf_props_add_stamp(plugin, &props, NULL, 0, &res.stamp) != MOSQ_ERR_SUCCESS) {
		mosquitto_property_free_all(&props);
		mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: out of memory stamping the will on %s; "
			"not delivered", topic);
	} else if (mosquitto_broker_publish_copy(NULL, topic, (int)w->payloadlen, m.payload,
			w->qos, w->retain && res.redirect == NULL, props) != MOSQ_ERR_SUCCESS) {
		mosquitto_property_free_all(&props);
		mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: cannot publish the will on %s", topic);
	} else {
		tf_publish_copies(plugin, &res, w->qos, w->retain);
	}
	tf_message_result_free(&res);
}

/* mosquitto kept the unstamped original of a retained will: it goes
 * first, quietly. */
static void remove_retained(struct tf_wills *wills, const struct will *w)
{
	char *topic = strdup(w->topic);

	if (topic == NULL
			|| mosquitto_broker_publish(NULL, w->topic, 0, NULL, 0, true, NULL)
				!= MOSQ_ERR_SUCCESS) {
		free(topic);
		mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: cannot remove the retained will on %s",
			w->topic);
		return;
	}
	wills->clearing[wills->n_clearing++] = topic;
}

void tf_wills_tick(struct tf_plugin *plugin, struct tf_wills *wills)
{
	/* The removals queued at the last tick have gone out since. */
	forget_clearing(wills);
	pending_was_a_will(wills);
	for (uint32_t i = 0; i < wills->n_found; i++) {
		struct will *w = &wills->found[i];

		if (w->retain)
			remove_retained(wills, w);
		if (w->client_id != NULL && (w->payload != NULL || w->payloadlen == 0))
			publish_will(plugin, w);
		else if (w->retain)
			mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: the will on %s is withheld (out "
				"of memory)", w->topic);
		will_clear(w);
	}
	if (wills->n_lost > 0)
		mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: %u wills in one pass were withheld "
			"(more than the %d the plugin follows, or out of memory)", wills->n_lost,
			WILLS_MAX);
	wills->n_found = 0;
	wills->n_lost = 0;
}
