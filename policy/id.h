/* Identifiers of policy-v1: org ids, usernames, roles, purposes, policy ids
 * and the broker id all match ^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$. */
#ifndef TF_POLICY_ID_H
#define TF_POLICY_ID_H

#include <stdbool.h>

#define TF_ID_MAX_LEN 128

/* True when s (NUL-terminated, not NULL) is a valid identifier. */
bool tf_id_is_valid(const char *s);

#endif
