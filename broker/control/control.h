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

#include "broker/engine/engine.h"

#define TF_CONTROL_TOPIC "$CONTROL/trustflow/v1"
#define TF_CONTROL_RESPONSE_TOPIC "$CONTROL/trustflow/v1/response"
#define TF_CONTROL_MAX_REQUEST (64u * 1024)

/* Bounds of an answer (docs/control-api.md: an extension of the spec), so
 * that a small request cannot ask for a large one. A request of more
 * commands is refused as a whole; a command whose response would take
 * the answer past TF_CONTROL_MAX_RESPONSE bytes answers an error instead;
 * the long lists (listAlerts, listQuarantine) come in pages of "limit"
 * items (TF_CONTROL_PAGE_DEFAULT when not given), which also end where
 * the answer is full, with a "next" cursor to go on from. */
#define TF_CONTROL_MAX_COMMANDS 16
#define TF_CONTROL_MAX_RESPONSE_KIB 256
#define TF_CONTROL_MAX_RESPONSE (TF_CONTROL_MAX_RESPONSE_KIB * 1024u)
#define TF_CONTROL_PAGE_DEFAULT 100
#define TF_CONTROL_PAGE_MAX 500

/* The largest integer a JSON number holds exactly (2^53 - 1): the bound
 * of a time or a cursor in a request. */
#define TF_CONTROL_INTEGER_MAX 9007199254740991LL

/* Answers one request from the client with username (NULL: none). Returns
 * the response's JSON text (caller owns; free()), or NULL when out of
 * memory. Runs on the broker's thread. */
char *tf_control_handle(struct tf_engine *e, const char *username, const void *payload,
		size_t len);

#endif
