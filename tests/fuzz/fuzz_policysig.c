/* Fuzz target: the readers of owner-signed policies (policy/policysig.c):
 * a .sig file's content, and a policy key as the identities file gives
 * it. Promises checked: a signature read is its 88 base64 characters,
 * the input less at most one line end; a key added is one key more in
 * the ring; checking a signature read against a real key never crashes
 * nor accepts what that key did not sign. */
#include "tests/fuzz/fuzz.h"

#include <string.h>

#include "policy/policysig.h"

const char tf_fuzz_target[] = "policysig";

/* RFC 8032's first test key, as policy_keys hold it. */
static const char policy_key[] = "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

static void read_signature(const char *text, size_t size, const struct tf_keyring *keys)
{
	char sig[TF_SIG_B64_LEN + 1], kid[TF_KID_LEN + 1];
	struct tf_err err;

	if (tf_policy_sig_read(text, size, sig, &err) != TF_OK)
		return;
	FUZZ_CHECK(strlen(sig) == TF_SIG_B64_LEN);
	FUZZ_CHECK(memcmp(sig, text, TF_SIG_B64_LEN) == 0);
	FUZZ_CHECK(size == TF_SIG_B64_LEN
		|| (size == TF_SIG_B64_LEN + 1 && text[TF_SIG_B64_LEN] == '\n')
		|| (size == TF_SIG_B64_LEN + 2 && memcmp(text + TF_SIG_B64_LEN, "\r\n", 2) == 0));
	/* No input made by chance is the test key's signature of "{}". */
	FUZZ_CHECK(tf_policy_sig_check(keys, "{}", 2, sig, kid, &err) != TF_OK);
}

static void add_key(const char *text)
{
	struct tf_keyring *ring = tf_keyring_new();
	struct tf_err err;
	int rc;

	FUZZ_CHECK(ring != NULL);
	rc = tf_policy_key_add(ring, text, NULL, &err);
	FUZZ_CHECK(tf_keyring_count(ring) == (rc == TF_OK ? 1 : 0));
	tf_keyring_free(ring);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tf_keyring *keys;
	char *text = malloc(size + 1);
	struct tf_err err;

	FUZZ_CHECK(text != NULL);
	if (keys == NULL) {
		keys = tf_keyring_new();
		FUZZ_CHECK(keys != NULL && tf_policy_key_add(keys, policy_key, NULL, &err) == TF_OK);
	}
	memcpy(text, data, size);
	text[size] = '\0';
	read_signature(text, size, keys);
	add_key(text);
	free(text);
	return 0;
}
