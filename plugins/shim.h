/* Shared by the plugin's files: the context every callback gets. */
#ifndef TF_PLUGIN_SHIM_H
#define TF_PLUGIN_SHIM_H

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mqtt_protocol.h>
#include <stdbool.h>

#include "broker/engine.h"
#include "broker/options.h"

/* Clients to disconnect at the next TICK: not while mosquitto is still
 * handling their PUBLISH. */
#define TF_KICK_MAX 64

struct tf_plugin {
	mosquitto_plugin_id_t *id;
	struct tf_options opts;
	struct tf_engine *engine;
	char *kick[TF_KICK_MAX];
	int n_kick;
	bool cert_org_match;      /* plugin_opt_require_cert_org_match true */
};

/* Registers every event callback (callbacks.c). Returns a MOSQ_ERR_*. */
int tf_callbacks_register(struct tf_plugin *plugin);
void tf_callbacks_unregister(struct tf_plugin *plugin);

/* Removes the tf-* user properties a client sent (stamp_props.c).
 * Returns a MOSQ_ERR_*; on error *props is unchanged. */
int tf_props_strip_stamp(mosquitto_property **props);

/* Appends a stamp as tf-* user properties. */
int tf_props_add_stamp(mosquitto_property **props, const struct tf_stamp *stamp);

/* The engine's log hook: writes to mosquitto's log. */
void tf_shim_log(void *ctx, enum tf_log_level level, const char *text);

#endif
