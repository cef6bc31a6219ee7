/* The stamp as MQTT v5 user properties: removing any tf-* (and tf) a
 * client sent, and adding the broker's. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plugins/compat.h"
#include "plugins/shim.h"

/* Whether a user property could pass for (part of) a stamp: a name that
 * begins with "tf-", or is "tf" (the compact form), in any letter case,
 * since some readers compare names without regard to case. */
static bool is_stamp_property(const mosquitto_property *p)
{
	char *name = NULL, *value = NULL;
	bool stamp;

	if (mosquitto_property_identifier(p) != MQTT_PROP_USER_PROPERTY)
		return false;
	if (mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &value, false)
			== NULL)
		return false;
	stamp = strncasecmp(name, "tf-", 3) == 0 || strcasecmp(name, "tf") == 0;
	free(name);
	free(value);
	return stamp;
}

/* Copies one property of a PUBLISH onto *out. A PUBLISH from a client
 * holds only these kinds by the time MESSAGE runs (mosquitto takes the
 * topic alias and the message expiry out); any other kind fails, so that
 * nothing is dropped silently. */
static int copy_property(const mosquitto_property *p, mosquitto_property **out)
{
	int id = mosquitto_property_identifier(p);
	char *name = NULL, *value = NULL;
	void *data = NULL;
	uint16_t len = 0;
	uint8_t byte;
	int rc;

	switch (id) {
	case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
		mosquitto_property_read_byte(p, id, &byte, false);
		return mosquitto_property_add_byte(out, id, byte);
	case MQTT_PROP_CONTENT_TYPE:
	case MQTT_PROP_RESPONSE_TOPIC:
		if (mosquitto_property_read_string(p, id, &value, false) == NULL)
			return MOSQ_ERR_NOMEM;
		rc = mosquitto_property_add_string(out, id, value);
		free(value);
		return rc;
	case MQTT_PROP_CORRELATION_DATA:
		if (mosquitto_property_read_binary(p, id, &data, &len, false) == NULL)
			return MOSQ_ERR_NOMEM;
		rc = mosquitto_property_add_binary(out, id, data, len);
		free(data);
		return rc;
	case MQTT_PROP_USER_PROPERTY:
		if (mosquitto_property_read_string_pair(p, id, &name, &value, false) == NULL)
			return MOSQ_ERR_NOMEM;
		rc = mosquitto_property_add_string_pair(out, id, name, value);
		free(name);
		free(value);
		return rc;
	default:
		return MOSQ_ERR_NOT_SUPPORTED;
	}
}

int tf_props_copy(const mosquitto_property *props, mosquitto_property **out)
{
	*out = NULL;
	for (const mosquitto_property *p = props; p != NULL; p = mosquitto_property_next(p)) {
		int rc = copy_property(p, out);

		if (rc != MOSQ_ERR_SUCCESS) {
			mosquitto_property_free_all(out);
			return rc;
		}
	}
	return MOSQ_ERR_SUCCESS;
}

int tf_props_strip_stamp(mosquitto_property **props)
{
	const mosquitto_property *p;
	mosquitto_property *kept = NULL;
	bool found = false;

	for (p = *props; p != NULL && !found; p = mosquitto_property_next(p))
		found = is_stamp_property(p);
	if (!found)
		return MOSQ_ERR_SUCCESS;
	for (p = *props; p != NULL; p = mosquitto_property_next(p)) {
		int rc;

		if (is_stamp_property(p))
			continue;
		rc = copy_property(p, &kept);
		if (rc != MOSQ_ERR_SUCCESS) {
			mosquitto_property_free_all(&kept);
			return rc;
		}
	}
	if (TF_FREE_REPLACED_PROPERTIES)
		mosquitto_property_free_all(props);
	*props = kept;
	return MOSQ_ERR_SUCCESS;
}

/* The eleven tf-* properties of format 1, thirteen of format 2. */
static int add_full(mosquitto_property **props, const struct tf_stamp *st)
{
	/* In the order of tf_stamp_names. */
	const char *const values[TF_STAMP_NAMES_V2] = {
		st->v, st->id, st->broker, st->kid, st->ts, st->org, st->client, st->policy,
		st->sha256, st->seq, st->sig, st->topic, st->prev,
	};
	size_t n = st->prev != NULL ? TF_STAMP_NAMES_V2 : TF_STAMP_NAMES_V1;

	for (size_t i = 0; i < n; i++) {
		int rc = mosquitto_property_add_string_pair(props, MQTT_PROP_USER_PROPERTY,
			tf_stamp_names[i], values[i]);

		if (rc != MOSQ_ERR_SUCCESS)
			return rc;
	}
	return MOSQ_ERR_SUCCESS;
}

/* The one tf property. A typical stamp (about 220 bytes) fits the stack
 * buffer; a longer one, from long ids, is allocated for the call. */
static int add_compact(mosquitto_property **props, const struct tf_stamp *st)
{
	char local[512], *value = local;
	size_t len = tf_stamp_compact_encode(st, local, sizeof(local));
	int rc;

	if (len > TF_STAMP_COMPACT_MAX)
		return MOSQ_ERR_INVAL;
	if (len >= sizeof(local)) {
		value = malloc(len + 1);
		if (value == NULL)
			return MOSQ_ERR_NOMEM;
		tf_stamp_compact_encode(st, value, len + 1);
	}
	rc = mosquitto_property_add_string_pair(props, MQTT_PROP_USER_PROPERTY,
		TF_STAMP_COMPACT_NAME, value);
	if (value != local)
		free(value);
	return rc;
}

int tf_props_add_stamp(const struct tf_plugin *plugin, mosquitto_property **props,
		const char *const *hops, uint32_t n_hops, const struct tf_stamp *st)
{
	/* A relayed message's earlier stamps, oldest first, in either form. */
	for (uint32_t i = 0; i < n_hops; i++) {
		int rc = mosquitto_property_add_string_pair(props, MQTT_PROP_USER_PROPERTY,
			TF_STAMP_HOP_NAME, hops[i]);

		if (rc != MOSQ_ERR_SUCCESS)
			return rc;
	}
	/* One form per message, never both (provenance-v1, "Compact form"). */
	if (plugin->stamp_form == TF_STAMP_FORM_FULL)
		return add_full(props, st);
	return add_compact(props, st);
}
