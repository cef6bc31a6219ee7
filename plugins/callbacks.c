/* mosquitto events to engine calls, and engine answers to MOSQ_ERR_*. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/x509.h>

#include "broker/control/control.h"
#include "plugins/compat.h"
#include "plugins/shim.h"

/* ACL callbacks may answer only SUCCESS, ACL_DENIED or PLUGIN_DEFER: any
 * other code disconnects the publisher, not the client being checked. */
static int verdict_rc(enum tf_verdict v)
{
	switch (v) {
	case TF_ALLOW: return MOSQ_ERR_SUCCESS;
	case TF_DEFER: return MOSQ_ERR_PLUGIN_DEFER;
	case TF_DENY:  return MOSQ_ERR_ACL_DENIED;
	}
	return MOSQ_ERR_ACL_DENIED;
}

/* Queues a client to be disconnected at the next TICK (not while
 * mosquitto is still handling its packet). */
void tf_kick_later(struct tf_plugin *plugin, const char *client_id)
{
	for (int i = 0; i < plugin->n_kick; i++)
		if (strcmp(plugin->kick[i], client_id) == 0)
			return;
	if (plugin->n_kick < TF_KICK_MAX && (plugin->kick[plugin->n_kick] = strdup(client_id)) != NULL)
		plugin->n_kick++;
}

/* require_cert_org_match: whether the client's TLS certificate names, as
 * its subject O, the organization its username belongs to. A client
 * without a certificate came through another listener (with a password)
 * and is not this check's to judge. */
static bool cert_org_matches(struct tf_plugin *plugin, const struct mosquitto *client,
		const char *username)
{
	X509 *cert = mosquitto_client_certificate(client);
	char org[256];
	bool ok = false;

	if (cert == NULL)
		return true;
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_organizationName, org,
			sizeof(org)) > 0)
		ok = tf_engine_client_in_org(plugin->engine, username, org);
	X509_free(cert);
	return ok;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	struct tf_plugin *plugin = userdata;
	const char *client_id = mosquitto_client_id(ed->client);
	const char *username = mosquitto_client_username(ed->client);

	(void)event;
	if (plugin->cert_org_match && !cert_org_matches(plugin, ed->client, username)) {
		mosquitto_log_printf(MOSQ_LOG_WARNING, "trustflow: %s (%s): its certificate does not "
			"name its organization; refused and disconnected", client_id,
			username ? username : "no username");
		tf_kick_later(plugin, client_id);
		return MOSQ_ERR_ACL_DENIED;
	}
	switch (ed->access) {
	case MOSQ_ACL_WRITE: {
		enum tf_verdict v = tf_engine_may_publish(plugin->engine, client_id, username,
			ed->topic, ed->payload, ed->payloadlen);

		if (v == TF_ALLOW)
			tf_wills_note_write(plugin->wills, ed->client, ed->topic, ed->payload,
				ed->payloadlen, ed->qos, ed->retain);
		return verdict_rc(v);
	}
	case MOSQ_ACL_READ:
		/* A will goes out as the plugin publishes it, stamped. */
		if (tf_wills_withhold(plugin->wills, ed->topic, ed->payload, ed->payloadlen))
			return MOSQ_ERR_ACL_DENIED;
		return verdict_rc(tf_engine_may_receive(plugin->engine, client_id, username,
			ed->topic, ed->payload, ed->payloadlen, ed->retain));
	case MOSQ_ACL_SUBSCRIBE:
		return verdict_rc(tf_engine_may_subscribe(plugin->engine, client_id, username,
			ed->topic));
	case MOSQ_ACL_UNSUBSCRIBE:
		return MOSQ_ERR_SUCCESS;
	default:
		return MOSQ_ERR_ACL_DENIED;
	}
}

/* A client connecting, before its password is checked (mosquitto runs
 * the plugins' checks first, then its password_file): its client id must
 * be its own. Clients with TLS certificates as usernames skip this event
 * in mosquitto 2.0.11; their listeners set use_username_as_clientid
 * (docs/tls.md). */
static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	struct tf_plugin *plugin = userdata;
	const char *client_id = mosquitto_client_id(ed->client);
	/* An MQTT v5 session may outlive a clean start (its expiry interval
	 * is not shown to plugins). */
	bool durable = !mosquitto_client_clean_session(ed->client)
		|| mosquitto_client_protocol_version(ed->client) == 5;

	(void)event;
	if (client_id == NULL)
		return MOSQ_ERR_AUTH;
	if (tf_engine_may_connect(plugin->engine, ed->client, client_id, ed->username, durable)
			== TF_DENY) {
		mosquitto_log_printf(MOSQ_LOG_WARNING, "trustflow: connection of %s (%s) refused: "
			"its client id belongs to another client", client_id,
			ed->username ? ed->username : "no username");
		return MOSQ_ERR_AUTH;
	}
	return MOSQ_ERR_PLUGIN_DEFER;
}

/* A connection has gone (or was refused: then it has no client id). */
static int on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;
	struct tf_plugin *plugin = userdata;

	(void)event;
	tf_engine_disconnected(plugin->engine, ed->client, mosquitto_client_id(ed->client));
	return MOSQ_ERR_SUCCESS;
}

/* Publishes the copies the engine made (views), each with its stamp. */
void tf_publish_copies(const struct tf_plugin *plugin, const struct tf_message_result *res,
		int qos, bool retain)
{
	for (uint32_t i = 0; i < res->n_copies; i++) {
		const struct tf_copy *c = &res->copies[i];
		mosquitto_property *props = NULL;

		if (tf_props_add_stamp(plugin, &props, NULL, 0, &c->stamp) != MOSQ_ERR_SUCCESS
				|| (c->expiry_s > 0 && mosquitto_property_add_int32(&props,
					MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, c->expiry_s) != MOSQ_ERR_SUCCESS)) {
			mosquitto_property_free_all(&props);
			mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: out of memory; view %s not published",
				c->topic);
			continue;
		}
		if (mosquitto_broker_publish_copy(NULL, c->topic, (int)c->payloadlen, c->payload, qos,
				retain, props) != MOSQ_ERR_SUCCESS) {
			mosquitto_property_free_all(&props);
			mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: view %s could not be published",
				c->topic);
		}
	}
}

/* Moves the message to another topic: a quarantined one to a topic no
 * client may read (so that mosquitto acknowledges it but passes it to no
 * one), a rerouted one to its new topic. Returns false when out of
 * memory. */
static bool move_message(struct mosquitto_evt_message *ed, const char *topic)
{
	char *moved = mosquitto_strdup(topic);

	if (moved == NULL)
		return false;
#if TF_FREE_REPLACED_TOPIC
	mosquitto_free(ed->topic);
#endif
	ed->topic = moved;
	return true;
}

#define HELD_TOPIC "$trustflow/held"

/* Reads the chain of stamps a peer's message carries (before they are
 * removed from it); the chain points into reader, which keeps the values
 * it took (free them with tf_stamp_reader_free_values). Returns false
 * when out of memory. */
static bool read_chain(const mosquitto_property *props, const char *topic, const void *payload,
		uint32_t payloadlen, struct tf_stamp_reader *reader, struct tf_chain *chain,
		enum tf_stamp_check *read)
{
	for (const mosquitto_property *p = props; p != NULL; p = mosquitto_property_next(p)) {
		char *name = NULL, *value = NULL;

		if (mosquitto_property_identifier(p) != MQTT_PROP_USER_PROPERTY)
			continue;
		if (mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &value,
				false) == NULL)
			return false;
		if (!tf_stamp_reader_add(reader, name, value))
			free(value);
		free(name);
	}
	*read = tf_chain_read(reader, topic, payload, payloadlen, chain);
	return true;
}

void tf_publish_egress(const char *topic, const void *payload, uint32_t payloadlen, int qos,
		const mosquitto_property *props, const struct tf_egress *egress)
{
	for (uint32_t i = 0; i < egress->n; i++) {
		size_t len = strlen(TF_EGRESS_PREFIX) + strlen(egress->peers[i]) + 1 + strlen(topic) + 1;
		char *egress_topic = malloc(len);
		mosquitto_property *copy = NULL;

		if (egress_topic == NULL || tf_props_copy(props, &copy) != MOSQ_ERR_SUCCESS) {
			free(egress_topic);
			mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: out of memory; %s not sent to "
				"peer %s", topic, egress->peers[i]);
			continue;
		}
		snprintf(egress_topic, len, "%s%s/%s", TF_EGRESS_PREFIX, egress->peers[i], topic);
		/* Not retained: the peer keeps what it retains itself. */
		if (mosquitto_broker_publish_copy(NULL, egress_topic, (int)payloadlen, payload, qos,
				false, copy) != MOSQ_ERR_SUCCESS) {
			mosquitto_property_free_all(&copy);
			mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: %s could not be sent to peer %s",
				topic, egress->peers[i]);
		}
		free(egress_topic);
	}
}

/* What the engine says of a message, done to it: held, rerouted or
 * passed on with its stamp, its views and its copies for peers. Returns
 * whether mosquitto delivers it. */
static bool pass_on(struct tf_plugin *plugin, struct mosquitto_evt_message *ed,
		const struct tf_message *m)
{
	struct tf_message_result res;
	bool deliver;

	tf_engine_on_message(plugin->engine, m, &res);
	deliver = res.deliver;
	if (deliver && (res.hold || res.taken)) {
		/* Held or taken by the broker: acknowledged, passed to no one,
		 * never retained. */
		ed->retain = false;
		deliver = move_message(ed, HELD_TOPIC);
	} else if (deliver && res.redirect != NULL) {
		deliver = move_message(ed, res.redirect);
	}
	if (deliver && res.stamped && tf_props_add_stamp(plugin, &ed->properties,
			(const char *const *)res.hops, res.n_hops, &res.stamp) != MOSQ_ERR_SUCCESS) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: out of memory stamping %s; "
			"not delivered", ed->topic);
		deliver = false;
	}
	if (deliver) {
		tf_publish_copies(plugin, &res, ed->qos, ed->retain);
		tf_publish_egress(ed->topic, ed->payload, ed->payloadlen, ed->qos, ed->properties,
			&res.egress);
	}
	if (res.disconnect)
		tf_kick_later(plugin, m->client_id);
	tf_message_result_free(&res);
	return deliver;
}

static int on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ed = event_data;
	struct tf_plugin *plugin = userdata;
	struct tf_message m = {
		.client_id = mosquitto_client_id(ed->client),
		.username = mosquitto_client_username(ed->client),
		.connection = ed->client,
		.topic = ed->topic,
		.payload = ed->payload,
		.payloadlen = ed->payloadlen,
		.qos = ed->qos,
		.retain = ed->retain,
	};
	struct tf_stamp_reader reader = { .n_hops = 0 };
	struct tf_chain chain;
	bool deliver;

	(void)event;
	tf_wills_message_seen(plugin->wills);
	/* Only a bridge opened here has no address (real clients always
	 * do): a bridge brings nothing in where it was opened, for there its
	 * peer is authenticated by nothing (federation-v1 bridges push). */
	if (mosquitto_client_address(ed->client) == NULL) {
		mosquitto_log_printf(MOSQ_LOG_WARNING, "trustflow: a message on %s came in over a "
			"bridge opened here (%s); refused: peers hand messages over bridges they open",
			ed->topic, m.client_id ? m.client_id : "");
		return MOSQ_ERR_ACL_DENIED;
	}
	if (m.username != NULL && tf_engine_is_peer_link(plugin->engine, m.username)) {
		m.chain = &chain;
		if (!read_chain(ed->properties, ed->topic, ed->payload, ed->payloadlen, &reader,
				&chain, &m.chain_read))
			m.chain_read = TF_STAMP_MALFORMED;
	}
	/* No client can forge or pre-fill a stamp, on any topic; a peer's
	 * chain was read above and is stamped anew. */
	deliver = tf_props_strip_stamp(&ed->properties) == MOSQ_ERR_SUCCESS
		&& pass_on(plugin, ed, &m);
	tf_stamp_reader_free_values(&reader);
	/* ACL_DENIED refuses the message (PUBACK "not authorized" to an MQTT
	 * v5 publisher); any other error would disconnect the publisher. */
	return deliver ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
}

/* A control API request (broker/control/control.h): answered to its sender
 * alone. mosquitto hands $CONTROL/ topics to the plugin that registered
 * them instead of publishing them. */
static int on_control(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_control *ed = event_data;
	struct tf_plugin *plugin = userdata;
	const char *client_id = mosquitto_client_id(ed->client);
	char *response;

	(void)event;
	response = tf_control_handle(plugin->engine, mosquitto_client_username(ed->client),
		ed->payload, ed->payloadlen);
	if (response == NULL) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: out of memory answering a control "
			"request from %s", client_id);
		return MOSQ_ERR_NOMEM;
	}
	if (mosquitto_broker_publish_copy(client_id, TF_CONTROL_RESPONSE_TOPIC,
			(int)strlen(response), response, 1, false, NULL) != MOSQ_ERR_SUCCESS)
		mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: cannot answer a control request from "
			"%s", client_id);
	free(response);
	return MOSQ_ERR_SUCCESS;
}

static int on_reload(int event, void *event_data, void *userdata)
{
	struct tf_plugin *plugin = userdata;

	(void)event;
	(void)event_data;
	/* Put in force by a later tick; messages flow meanwhile. */
	tf_engine_reload_in_background(plugin->engine);
	/* mosquitto stops at the first reload callback that does not defer;
	 * other plugins must reload too. */
	return MOSQ_ERR_PLUGIN_DEFER;
}

static int on_tick(int event, void *event_data, void *userdata)
{
	struct tf_plugin *plugin = userdata;

	(void)event;
	(void)event_data;
	tf_wills_tick(plugin, plugin->wills);
	tf_engine_tick(plugin->engine);
	for (int i = 0; i < plugin->n_kick; i++) {
		mosquitto_kick_client_by_clientid(plugin->kick[i], false);
		free(plugin->kick[i]);
	}
	plugin->n_kick = 0;
	return MOSQ_ERR_SUCCESS;
}

static const struct {
	int event;
	MOSQ_FUNC_generic_callback cb;
	const char *event_data;   /* the topic, for MOSQ_EVT_CONTROL */
} callbacks[] = {
	{ MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL },
	{ MOSQ_EVT_DISCONNECT, on_disconnect, NULL },
	{ MOSQ_EVT_ACL_CHECK, on_acl_check, NULL },
	{ MOSQ_EVT_MESSAGE, on_message, NULL },
	{ MOSQ_EVT_CONTROL, on_control, TF_CONTROL_TOPIC },
	{ MOSQ_EVT_RELOAD, on_reload, NULL },
	{ MOSQ_EVT_TICK, on_tick, NULL },
};

#define N_CALLBACKS (sizeof(callbacks) / sizeof(callbacks[0]))

int tf_callbacks_register(struct tf_plugin *plugin)
{
	for (size_t i = 0; i < N_CALLBACKS; i++) {
		int rc = mosquitto_callback_register(plugin->id, callbacks[i].event, callbacks[i].cb,
			callbacks[i].event_data, plugin);

		if (rc != MOSQ_ERR_SUCCESS) {
			while (i-- > 0)
				mosquitto_callback_unregister(plugin->id, callbacks[i].event,
					callbacks[i].cb, callbacks[i].event_data);
			return rc;
		}
	}
	return MOSQ_ERR_SUCCESS;
}

void tf_callbacks_unregister(struct tf_plugin *plugin)
{
	for (size_t i = 0; i < N_CALLBACKS; i++)
		mosquitto_callback_unregister(plugin->id, callbacks[i].event, callbacks[i].cb,
			callbacks[i].event_data);
}
