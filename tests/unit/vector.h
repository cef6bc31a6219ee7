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

/* What each stamp test starts from: a temporary directory holding the
 * vector's key, the signer loaded from it, and a keyring of its public
 * key. */
struct vector_keys {
	char dir[64];
	char key_path[128];
	struct tf_signer *signer;
	struct tf_keyring *ring;
};

/* Makes one in a new directory /tmp/<prefix>-XXXXXX. Returns 0, or -1. */
int vector_keys_open(struct vector_keys *k, const char *prefix);

/* Frees it and removes its directory. Returns 0, or -1 when the
 * directory stays. */
int vector_keys_close(struct vector_keys *k);

#endif
