/* Shared by the plugin's files: the context every callback gets. */
#ifndef TF_PLUGIN_SHIM_H
#define TF_PLUGIN_SHIM_H

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mqtt_protocol.h>
#include <stdbool.h>

#include "broker/engine/engine.h"
#include "broker/engine/options.h"
#include "broker/stamp/forms.h"

/* Clients to disconnect at the next TICK: not while mosquitto is still
 * handling their PUBLISH. */
#define TF_KICK_MAX 64

struct tf_wills;

struct tf_plugin {
	mosquitto_plugin_id_t *id;
	struct tf_options opts;
	struct tf_engine *engine;
	struct tf_wills *wills;   /* wills.c */
	char *kick[TF_KICK_MAX];
	int n_kick;
	bool cert_org_match;      /* plugin_opt_require_cert_org_match true */
	enum tf_stamp_form stamp_form; /* plugin_opt_stamp_form */
};

/* Queues a client to be disconnected at the next TICK (callbacks.c). */
void tf_kick_later(struct tf_plugin *plugin, const char *client_id);

/* Publishes a message (its properties, the stamp among them) once for
 * each peer broker of egress, on that peer's egress topic: the bridge
 * opened to the peer carries it there without the prefix (callbacks.c). */
void tf_publish_egress(const char *topic, const void *payload, uint32_t payloadlen, int qos,
		const mosquitto_property *props, const struct tf_egress *egress);

/* Publishes the copies (views) of a message result, each with its stamp
 * (callbacks.c). */
void tf_publish_copies(const struct tf_plugin *plugin, const struct tf_message_result *res,
		int qos, bool retain);

/* Wills (wills.c): mosquitto 2.0.11 publishes them without MESSAGE. The
 * ACL callback notes every allowed WRITE (tf_wills_note_write), MESSAGE
 * says it came (tf_wills_message_seen), READ asks whether the delivery is
 * of a will (tf_wills_withhold: then it is withheld), and TICK passes the
 * wills found through the engine and publishes them (tf_wills_tick).
 * tf_wills_new() returns NULL when out of memory. */
struct tf_wills *tf_wills_new(void);
void tf_wills_free(struct tf_wills *wills);
void tf_wills_note_write(struct tf_wills *wills, const struct mosquitto *client,
		const char *topic, const void *payload, uint32_t payloadlen, int qos, bool retain);
void tf_wills_message_seen(struct tf_wills *wills);
bool tf_wills_withhold(struct tf_wills *wills, const char *topic, const void *payload,
		uint32_t payloadlen);
void tf_wills_tick(struct tf_plugin *plugin, struct tf_wills *wills);

/* Registers every event callback (callbacks.c). Returns a MOSQ_ERR_*. */
int tf_callbacks_register(struct tf_plugin *plugin);
void tf_callbacks_unregister(struct tf_plugin *plugin);

/* Removes the user properties a client sent that could pass for a stamp:
 * `tf` and `tf-*` in any letter case (stamp_props.c). Returns a MOSQ_ERR_*;
 * on error *props is unchanged. */
int tf_props_strip_stamp(mosquitto_property **props);

/* A copy of a PUBLISH's properties as MESSAGE has them, for a message the
 * plugin publishes beside it (stamp_props.c). Returns a MOSQ_ERR_*; on
 * error *out is NULL. */
int tf_props_copy(const mosquitto_property *props, mosquitto_property **out);

/* Appends a stamp as user properties, in the plugin's stamp_form, after
 * the n_hops hop records of the stamps before it (a relayed message's;
 * federation-v1): the one way every stamped message (messages, views,
 * wills, releases, relayed messages) gets its stamp. Returns a MOSQ_ERR_*: MOSQ_ERR_NOMEM, or MOSQ_ERR_INVAL when a
 * value is longer than an MQTT string (the message must not go out). */
int tf_props_add_stamp(const struct tf_plugin *plugin, mosquitto_property **props,
		const char *const *hops, uint32_t n_hops, const struct tf_stamp *stamp);

/* The engine's log hook: writes to mosquitto's log. */
void tf_shim_log(void *ctx, enum tf_log_level level, const char *text);

#endif
