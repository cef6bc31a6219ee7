/* The test vector of provenance-v1 (its key, public key, message), shared
 * by the unit tests that sign or check stamps, and the one way they load
 * its key as a signer. */
#ifndef TF_TEST_VECTOR_H
#define TF_TEST_VECTOR_H

#include <stddef.h>

#include "broker/stamp/provenance.h"

extern const char vector_key[];         /* private, PKCS#8 PEM */
extern const char vector_public_pem[];  /* SubjectPublicKeyInfo PEM */
extern const char vector_topic[];
extern const char vector_payload[];     /* 28 bytes */

/* Writes the vector's key to path (mode 0600, as the signer demands) and
 * loads it. Returns 0, or -1 on any failure. */
int vector_signer(const char *path, struct tf_signer **out);

#endif
