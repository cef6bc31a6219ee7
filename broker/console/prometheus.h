/* The metrics the broker publishes ($trustflow/metrics and
 * $trustflow/metrics/<policy>, docs/control-api.md "Metrics") in
 * Prometheus' text exposition format (version 0.0.4), for GET /metrics.
 * A pure function of the JSON: no I/O, no state. */
#ifndef TF_CONSOLE_PROMETHEUS_H
#define TF_CONSOLE_PROMETHEUS_H

#include <cjson/cJSON.h>

/* The exposition of the metric objects in list (a cJSON array, in any
 * order: objects without "policy" are the broker's, the others a
 * policy's; NULL or empty: no samples). Each family comes once, with its
 * HELP and TYPE lines, and only when it has a sample. Members that are
 * missing or not numbers are left out; unknown members are ignored, so a
 * newer broker's additions do not break a scrape. Label values are
 * escaped as the format asks (backslash, double quote, newline). Returns
 * the text (caller owns; free with free()), or NULL when out of memory. */
char *tf_prometheus_render(const cJSON *list);

#endif
