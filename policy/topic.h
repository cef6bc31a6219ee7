/* MQTT topic names and filters as policy-v1 uses them. */
#ifndef TF_POLICY_TOPIC_H
#define TF_POLICY_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

#define TF_TOPIC_MAX_LEN    1024  /* bytes, for filters and names in policies */
#define TF_TOPIC_MAX_LEVELS 64

/* Checks a topic filter a policy may govern: 1 to TF_TOPIC_MAX_LEN bytes,
 * at most TF_TOPIC_MAX_LEVELS levels, `+` and `#` only as whole levels and
 * `#` only last, not starting with `$`, no control characters. On failure
 * *why is a static
 * explanation. */
bool tf_topic_filter_valid(const char *filter, const char **why);

/* Checks a topic without wildcards (a reroute target, a view prefix):
 * as above, with no `+` or `#`, and no trailing `/`. */
bool tf_topic_name_valid(const char *topic, const char **why);

/* Whether topic (no wildcards) matches filter, with MQTT's rules: `+` is
 * one level, `#` the rest including the parent level, and a filter that
 * starts with a wildcard does not match a topic that starts with `$`. */
bool tf_topic_matches(const char *filter, const char *topic);

/* Whether some topic matches both filters. */
bool tf_filters_overlap(const char *a, const char *b);

#endif
