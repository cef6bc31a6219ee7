/* Owner-signed policies (federation-v1, section 2): a policy file P.json
 * is signed by the detached file P.json.sig beside it, the standard
 * base64 of an Ed25519 signature over "trustflow-policy-1", a newline and
 * the file's exact bytes.
 *
 * Keys are the organizations' `policy_keys` of the identities file, kept
 * as a keyring per organization (broker/stamp/provenance.h). */
#ifndef TF_POLICY_POLICYSIG_H
#define TF_POLICY_POLICYSIG_H

#include <stddef.h>

#include "broker/stamp/provenance.h"
#include "broker/util/error.h"

/* What a signature covers before the file's bytes. */
#define TF_POLICY_SIG_CONTEXT "trustflow-policy-1\n"
/* A .sig file longer than this is not one. */
#define TF_POLICY_SIG_FILE_MAX 256

/* The signature in a .sig file's text[0..len): its 88 base64 characters,
 * optionally followed by one line end ("\n" or "\r\n"), as a signing tool
 * or an editor leaves it. Anything else is TF_ERR_INVALID, err saying
 * what is wrong. */
int tf_policy_sig_read(const char *text, size_t len, char sig_b64[TF_SIG_B64_LEN + 1],
		struct tf_err *err);

/* Which key of keys signed the policy file file[0..len) with sig_b64:
 * TF_OK with its key id in kid, else TF_ERR_INVALID, err saying why (no
 * key of the organization made it, or the signature is malformed).
 * Errors: TF_ERR_NOMEM. */
int tf_policy_sig_check(const struct tf_keyring *keys, const void *file, size_t len,
		const char *sig_b64, char kid[TF_KID_LEN + 1], struct tf_err *err);

/* Signs the policy file file[0..len) with the owner's key: sig_b64 is the
 * .sig file's content without its line end. Errors: TF_ERR_NOMEM,
 * TF_ERR_INVALID (OpenSSL refused). */
int tf_policy_sig_make(struct tf_signer *owner, const void *file, size_t len,
		char sig_b64[TF_SIG_B64_LEN + 1], struct tf_err *err);

/* Adds a policy key as the identities file gives it (standard base64 of
 * an Ed25519 SubjectPublicKeyInfo DER, as in a PEM body) to keys; kid
 * (may be NULL) receives its key id. TF_ERR_INVALID when it is not such
 * a key. */
int tf_policy_key_add(struct tf_keyring *keys, const char *b64, char kid[TF_KID_LEN + 1],
		struct tf_err *err);

#endif
