/* What changed between the mosquitto versions the plugin builds against,
 * keyed on the version its headers declare. */
#ifndef TF_PLUGIN_COMPAT_H
#define TF_PLUGIN_COMPAT_H

#include <mosquitto.h>

/* In MOSQ_EVT_MESSAGE, a plugin that replaces the property list must free
 * the old one on mosquitto before 2.0.15; 2.0.15 and later free it
 * themselves. */
#if LIBMOSQUITTO_VERSION_NUMBER < 2000015
#define TF_FREE_REPLACED_PROPERTIES 1
#else
#define TF_FREE_REPLACED_PROPERTIES 0
#endif

/* Likewise for a replaced topic: before 2.0.15 the plugin frees the old
 * one (with mosquitto_free). */
#if LIBMOSQUITTO_VERSION_NUMBER < 2000015
#define TF_FREE_REPLACED_TOPIC 1
#else
#define TF_FREE_REPLACED_TOPIC 0
#endif

#endif
