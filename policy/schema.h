/* The payload schemas of policy-v1: a subset of JSON Schema (draft 7).
 *
 * Keywords: type (object, array, string, number, integer, boolean, null,
 * or a list of them), required, properties, additionalProperties (true or
 * false only), items (one schema for every element), enum, minimum,
 * maximum, minLength and maxLength. Anything else is a load error, so that
 * a policy never silently means less than its author wrote.
 *
 * A schema is compiled once when the policy loads and checked against the
 * payload of every governed message, so compilation caps what input can
 * cost and validation allocates nothing. */
#ifndef TF_POLICY_SCHEMA_H
#define TF_POLICY_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "policy/jsonfile.h"

/* Schema levels from the root schema down through properties and items. */
#define TF_SCHEMA_MAX_DEPTH 16
/* Schema objects in one compiled schema, the root included. */
#define TF_SCHEMA_MAX_NODES 1024
/* Entries of one required, properties or enum. */
#define TF_SCHEMA_MAX_ITEMS 256

/* A compiled schema; immutable, so any number of threads may validate
 * against it at once. */
struct tf_schema;

/* Compiles the schema at node; c->path already points at node (for
 * example "$.schema"). Returns TF_OK and *out (caller owns; free with
 * tf_schema_free), TF_ERR_INVALID with the message set through tf_jfail()
 * at the path of the offending keyword, or TF_ERR_NOMEM. *out is NULL on
 * failure. node is only read; the schema keeps nothing borrowed from it. */
int tf_schema_compile(struct tf_jctx *c, const cJSON *node, struct tf_schema **out);

/* NULL allowed. */
void tf_schema_free(struct tf_schema *s);

/* True when value satisfies s (a NULL value, such as a payload that did
 * not parse, never does). On false, writes a short reason for operators
 * into why, naming the path inside the payload first:
 * "$.flow: 1200 is above the maximum 1000". On true, why holds "". why is
 * always NUL-terminated and cut to why_len bytes; it may be NULL when
 * why_len is 0. Stops at the first failure; allocates nothing. */
bool tf_schema_validate(const struct tf_schema *s, const cJSON *value, char *why, size_t why_len);

#endif
