#include "policy/policysig.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASE64_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
/* An Ed25519 SubjectPublicKeyInfo is 44 bytes, 60 in base64; longer is
 * some other key, which OpenSSL then names. */
#define POLICY_KEY_B64_MAX 200

/* Whether text[0..len) is standard base64 with its padding: nothing that
 * could end a PEM block or a line. */
static bool is_base64(const char *text, size_t len)
{
	size_t body = len;

	while (body > 0 && len - body < 2 && text[body - 1] == '=')
		body--;
	if (len == 0 || len % 4 != 0)
		return false;
	for (size_t i = 0; i < body; i++)
		if (text[i] == '\0' || strchr(BASE64_ALPHABET, text[i]) == NULL)
			return false;
	return true;
}

int tf_policy_sig_read(const char *text, size_t len, char sig_b64[TF_SIG_B64_LEN + 1],
		struct tf_err *err)
{
	if (len > 0 && text[len - 1] == '\n')
		len -= len > 1 && text[len - 2] == '\r' ? 2 : 1;
	if (len != TF_SIG_B64_LEN || !is_base64(text, len) || text[len - 1] != '='
			|| text[len - 2] != '=')
		return tf_err_set(err, TF_ERR_INVALID, "not a policy signature (%d characters of "
			"base64 and a line end)", TF_SIG_B64_LEN);
	memcpy(sig_b64, text, len);
	sig_b64[len] = '\0';
	return TF_OK;
}

/* The signing input of a policy file (caller frees), or NULL. */
static char *signing_input(const void *file, size_t len, size_t *n)
{
	size_t context = strlen(TF_POLICY_SIG_CONTEXT);
	char *input = malloc(context + len + 1);

	if (input == NULL)
		return NULL;
	memcpy(input, TF_POLICY_SIG_CONTEXT, context);
	if (len > 0)
		memcpy(input + context, file, len);
	*n = context + len;
	return input;
}

int tf_policy_sig_check(const struct tf_keyring *keys, const void *file, size_t len,
		const char *sig_b64, char kid[TF_KID_LEN + 1], struct tf_err *err)
{
	int count = keys != NULL ? tf_keyring_count(keys) : 0;
	enum tf_stamp_check check = TF_STAMP_UNKNOWN_KEY;
	size_t n;
	char *input;

	if (count == 0)
		return tf_err_set(err, TF_ERR_INVALID, "its owner has no policy_keys");
	if ((input = signing_input(file, len, &n)) == NULL)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	for (int i = 0; i < count && check != TF_STAMP_VALID && check != TF_STAMP_MALFORMED; i++) {
		check = tf_keyring_verify(keys, tf_keyring_kid(keys, i), input, n, sig_b64);
		if (check == TF_STAMP_VALID)
			snprintf(kid, TF_KID_LEN + 1, "%s", tf_keyring_kid(keys, i));
	}
	free(input);
	if (check == TF_STAMP_VALID)
		return TF_OK;
	if (check == TF_STAMP_MALFORMED)
		return tf_err_set(err, TF_ERR_INVALID, "its signature is malformed");
	return tf_err_set(err, TF_ERR_INVALID, "its signature was made by none of its owner's "
		"policy_keys, or over other bytes");
}

int tf_policy_sig_make(struct tf_signer *owner, const void *file, size_t len,
		char sig_b64[TF_SIG_B64_LEN + 1], struct tf_err *err)
{
	size_t n;
	char *input = signing_input(file, len, &n);
	int rc;

	if (input == NULL)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	rc = tf_signer_sign(owner, input, n, sig_b64, err);
	free(input);
	return rc;
}

int tf_policy_key_add(struct tf_keyring *keys, const char *b64, char kid[TF_KID_LEN + 1],
		struct tf_err *err)
{
	size_t len = strlen(b64);
	char pem[POLICY_KEY_B64_MAX + 64];
	struct tf_err why = { "" };
	int n, rc;

	if (len > POLICY_KEY_B64_MAX || !is_base64(b64, len))
		return tf_err_set(err, TF_ERR_INVALID, "not an Ed25519 public key (the base64 of "
			"its SubjectPublicKeyInfo, as in a PEM body)");
	n = snprintf(pem, sizeof(pem), "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n",
		b64);
	rc = tf_keyring_add_pem(keys, pem, (size_t)n, kid, &why);
	if (rc == TF_OK || rc == TF_ERR_NOMEM)
		return rc == TF_OK ? TF_OK : tf_err_set(err, rc, "out of memory");
	return tf_err_set(err, TF_ERR_INVALID, "not an Ed25519 public key (%s)", why.msg);
}
