/* The mosquitto plugin: loads the options and the engine, and registers
 * the callbacks (callbacks.c). The plugins/ files are the only code that
 * includes mosquitto headers; they hold no logic of their own. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/util/version.h"
#include "plugins/shim.h"

void tf_shim_log(void *ctx, enum tf_log_level level, const char *text)
{
	static const int levels[] = {
		[TF_LOG_INFO] = MOSQ_LOG_INFO,
		[TF_LOG_NOTICE] = MOSQ_LOG_NOTICE,
		[TF_LOG_WARNING] = MOSQ_LOG_WARNING,
		[TF_LOG_ERR] = MOSQ_LOG_ERR,
	};

	(void)ctx;
	mosquitto_log_printf(levels[level], "%s", text);
}

/* Removes a topic's retained message: an empty retained publish. */
static void clear_retained(void *ctx, const char *topic)
{
	(void)ctx;
	if (mosquitto_broker_publish(NULL, topic, 0, NULL, 0, true, NULL) != MOSQ_ERR_SUCCESS)
		mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: cannot remove the retained message "
			"on %s (it stays withheld from subscribers)", topic);
}

/* Publishes a public key, retained, where every client may read it. */
static void publish_key(void *ctx, const char *kid, const char *pem)
{
	char topic[64];

	(void)ctx;
	snprintf(topic, sizeof(topic), "$trustflow/keys/%s", kid);
	if (mosquitto_broker_publish_copy(NULL, topic, (int)strlen(pem), pem, 1, true, NULL)
			!= MOSQ_ERR_SUCCESS)
		mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: cannot publish key %s", kid);
}

/* Publishes an accepted policy, retained: administrators, and data
 * stewards of its owner, may read it (policy/decide.c). */
static void publish_policy(void *ctx, const char *topic, const char *json)
{
	(void)ctx;
	if (mosquitto_broker_publish_copy(NULL, topic, (int)strlen(json), json, 1, true, NULL)
			!= MOSQ_ERR_SUCCESS)
		mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: cannot publish the policy on %s", topic);
}

/* Publishes an alert, not retained. mosquitto delivers it to the
 * subscribers the ACL allows: administrators, and data stewards of the
 * policy's owner. */
static void publish_alert(void *ctx, const char *topic, const char *json)
{
	(void)ctx;
	if (mosquitto_broker_publish_copy(NULL, topic, (int)strlen(json), json, 1, false, NULL)
			!= MOSQ_ERR_SUCCESS)
		mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: cannot publish an alert on %s", topic);
}

/* Publishes a released message with its stamp, as if just published
 * (subscribers' READ checks apply). */
static void publish_held(void *ctx, const struct tf_held *m, const struct tf_egress *egress)
{
	const struct tf_plugin *plugin = ctx;
	mosquitto_property *props = NULL;

	if (tf_props_add_stamp(plugin, &props, m->hops, m->n_hops, &m->stamp) != MOSQ_ERR_SUCCESS) {
		mosquitto_property_free_all(&props);
		mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: out of memory releasing %s", m->topic);
		return;
	}
	/* The peers' copies first: publishing hands props over. */
	tf_publish_egress(m->topic, m->payload, m->payloadlen, m->qos, props, egress);
	if (mosquitto_broker_publish_copy(NULL, m->topic, (int)m->payloadlen, m->payload, m->qos,
			m->retain, props) != MOSQ_ERR_SUCCESS) {
		mosquitto_property_free_all(&props);
		mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: cannot release a message on %s",
			m->topic);
	}
}

/* Disconnects a client at the next TICK. */
static void disconnect_client(void *ctx, const char *client_id)
{
	tf_kick_later(ctx, client_id);
}

/* Publishes a trace checkpoint, retained, where every client may read it
 * and keep a copy outside the broker. */
static void publish_checkpoint(void *ctx, const char *json)
{
	(void)ctx;
	if (mosquitto_broker_publish_copy(NULL, "$trustflow/checkpoints", (int)strlen(json), json, 1,
			true, NULL) != MOSQ_ERR_SUCCESS)
		mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: cannot publish a trace checkpoint");
}

/* Publishes metrics, retained, for administrators (and each policy's for
 * its owner's data stewards, policy/decide.c). QoS 0: the next ones come
 * within the interval. */
static void publish_metrics(void *ctx, const char *topic, const char *json)
{
	(void)ctx;
	if (mosquitto_broker_publish_copy(NULL, topic, (int)strlen(json), json, 0, true, NULL)
			!= MOSQ_ERR_SUCCESS)
		mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: cannot publish the metrics on %s",
			topic);
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for (int i = 0; i < supported_version_count; i++) {
		if (supported_versions[i] == 5)
			return 5;
	}
	return -1;
}

static void plugin_free(struct tf_plugin *plugin)
{
	for (int i = 0; i < plugin->n_kick; i++)
		free(plugin->kick[i]);
	tf_wills_free(plugin->wills);
	tf_engine_free(plugin->engine);
	tf_options_free(&plugin->opts);
	free(plugin);
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	struct tf_engine_hooks hooks = {
		.log = tf_shim_log,
		.clear_retained = clear_retained,
		.publish_key = publish_key,
		.publish_checkpoint = publish_checkpoint,
		.publish_policy = publish_policy,
		.publish_alert = publish_alert,
		.publish_held = publish_held,
		.publish_metrics = publish_metrics,
		.disconnect = disconnect_client,
	};
	struct tf_plugin *plugin;
	struct tf_err err = { "" };
	int rc;

	plugin = calloc(1, sizeof(*plugin));
	if (plugin == NULL || (plugin->wills = tf_wills_new()) == NULL) {
		free(plugin);
		mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: out of memory");
		return MOSQ_ERR_NOMEM;
	}
	plugin->id = identifier;
	hooks.ctx = plugin;
	if (tf_options_init(&plugin->opts, &err) != TF_OK) {
		tf_wills_free(plugin->wills);
		free(plugin);
		goto err;
	}
	for (int i = 0; i < option_count; i++) {
		if (tf_options_set(&plugin->opts, options[i].key, options[i].value, &err) != TF_OK)
			goto err_free;
	}
	if (tf_options_finish(&plugin->opts, &err) != TF_OK)
		goto err_free;
	if (!tf_stamp_form_parse(plugin->opts.stamp_form, &plugin->stamp_form)) {
		tf_err_set(&err, TF_ERR_INVALID, "plugin_opt_stamp_form: \"%s\" is not a stamp form",
			plugin->opts.stamp_form);
		goto err_free;
	}

	mosquitto_log_printf(MOSQ_LOG_NOTICE, "trustflow %s loaded (broker_id %s)",
		tf_version(), plugin->opts.broker_id);
	if (tf_engine_new(&plugin->opts, &hooks, &plugin->engine, &err) != TF_OK)
		goto err_free;
	plugin->cert_org_match = strcmp(plugin->opts.require_cert_org_match, "true") == 0;
	tf_engine_publish_keys(plugin->engine);
	rc = tf_callbacks_register(plugin);
	if (rc != MOSQ_ERR_SUCCESS) {
		plugin_free(plugin);
		mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: cannot register callbacks (%d)", rc);
		return rc;
	}
	*userdata = plugin;
	return MOSQ_ERR_SUCCESS;

err_free:
	plugin_free(plugin);
err:
	mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: %s; refusing to start", err.msg);
	return MOSQ_ERR_INVAL;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	struct tf_plugin *plugin = userdata;

	(void)options;
	(void)option_count;
	if (plugin == NULL)
		return MOSQ_ERR_SUCCESS;
	tf_callbacks_unregister(plugin);
	plugin_free(plugin);
	return MOSQ_ERR_SUCCESS;
}
