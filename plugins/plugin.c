/* The mosquitto shim: the only code that includes mosquitto headers. It
 * turns mosquitto's plugin events into calls of the trustflow core and the
 * core's results into MOSQ_ERR_* codes; it holds no logic of its own. */
#include "config.h"

#include <stdlib.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "broker/options.h"
#include "broker/version.h"

/* Everything the plugin keeps, passed to every callback as userdata. */
struct tf_plugin {
	mosquitto_plugin_id_t *id;
	struct tf_options opts;
};

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for (int i = 0; i < supported_version_count; i++) {
		if (supported_versions[i] == 5)
			return 5;
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	struct tf_plugin *plugin;
	struct tf_err err = { "" };

	plugin = calloc(1, sizeof(*plugin));
	if (plugin == NULL) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: out of memory");
		return MOSQ_ERR_NOMEM;
	}
	plugin->id = identifier;
	if (tf_options_init(&plugin->opts, &err) != TF_OK)
		goto err;
	for (int i = 0; i < option_count; i++) {
		if (tf_options_set(&plugin->opts, options[i].key, options[i].value, &err) != TF_OK)
			goto err_opts;
	}

	mosquitto_log_printf(MOSQ_LOG_NOTICE, "trustflow %s loaded (broker_id %s)",
		tf_version(), plugin->opts.broker_id);
	*userdata = plugin;
	return MOSQ_ERR_SUCCESS;

err_opts:
	tf_options_free(&plugin->opts);
err:
	mosquitto_log_printf(MOSQ_LOG_ERR, "trustflow: %s; refusing to start", err.msg);
	free(plugin);
	return MOSQ_ERR_INVAL;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	struct tf_plugin *plugin = userdata;

	(void)options;
	(void)option_count;
	if (plugin == NULL)
		return MOSQ_ERR_SUCCESS;
	tf_options_free(&plugin->opts);
	free(plugin);
	return MOSQ_ERR_SUCCESS;
}
