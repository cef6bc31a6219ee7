/* The control API (operations-v1): a client publishes
 *
 *     {"commands": [{"command": "listAlerts"}, ...], "correlationData": "..."}
 *
 * on $CONTROL/trustflow/v1 and gets {"responses": [...]} back on
 * $CONTROL/trustflow/v1/response, alone. Clients with role trustflow-admin
 * may use every command; clients with role data-steward only for policies
 * their own org owns; everyone else is refused ("not authorized"). A
 * failed command answers {"command", "error"} and changes nothing.
 *
 * Every command of the spec: listAlerts, listQuarantine, releaseFlow,
 * discardFlow, getMessage, explain, reloadPolicies. */
#ifndef TF_CONTROL_H
#define TF_CONTROL_H

#include <stddef.h>

#include "broker/engine.h"

#define TF_CONTROL_TOPIC "$CONTROL/trustflow/v1"
#define TF_CONTROL_RESPONSE_TOPIC "$CONTROL/trustflow/v1/response"
#define TF_CONTROL_MAX_REQUEST (64u * 1024)
#define TF_CONTROL_MAX_COMMANDS 100

/* Answers one request from the client with username (NULL: none). Returns
 * the response's JSON text (caller owns; free()), or NULL when out of
 * memory. Runs on the broker's thread. */
char *tf_control_handle(struct tf_engine *e, const char *username, const void *payload,
		size_t len);

#endif
