/* Fuzz target: checking a received stamp (provenance-v1), the part of
 * the broker's code that reads what comes from outside in tfctl verify.
 *
 * The input is the stamp's properties and the message, separated by
 * newlines: tf-v, tf-id, tf-broker, tf-kid, tf-ts, tf-org, tf-client,
 * tf-policy, topic, tf-sha256, tf-seq, tf-sig, then the payload (the rest,
 * newlines and all). A line that is missing leaves its field absent. The
 * key is the spec's test-vector key, so inputs near the vector reach the
 * signature check. Promises checked: the verdict is one of the enum, and
 * an input that passes is the vector's own signing input or has a valid
 * signature by the one key in the ring, which a changed payload breaks. */
#include "tests/fuzz/fuzz.h"

#include <string.h>

#include "broker/stamp/provenance.h"

const char tf_fuzz_target[] = "stamp";

static const char vector_public_pem[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
	"-----END PUBLIC KEY-----\n";

static struct tf_keyring *ring(void)
{
	static struct tf_keyring *r;
	struct tf_err err;

	if (r == NULL) {
		r = tf_keyring_new();
		FUZZ_CHECK(r != NULL);
		FUZZ_CHECK(tf_keyring_add_pem(r, vector_public_pem, sizeof(vector_public_pem) - 1,
			NULL, &err) == TF_OK);
	}
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *p, *fields[12] = { NULL };
	struct tf_stamp st;
	enum tf_stamp_check verdict;
	size_t payloadlen;
	int n = 0;

	FUZZ_CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';
	p = text;
	while (n < 12) {
		char *nl = memchr(p, '\n', size - (size_t)(p - text));

		if (nl == NULL)
			break;
		*nl = '\0';
		fields[n++] = p;
		p = nl + 1;
	}
	payloadlen = size - (size_t)(p - text);
	st = (struct tf_stamp){ fields[0], fields[1], fields[2], fields[3], fields[4], fields[5],
		fields[6], fields[7], fields[8], fields[9], fields[10], fields[11] };
	verdict = tf_stamp_check(ring(), &st, p, payloadlen);
	FUZZ_CHECK(verdict >= TF_STAMP_VALID && verdict <= TF_STAMP_BAD_SIGNATURE);
	if (verdict == TF_STAMP_VALID && payloadlen > 0) {
		/* The same stamp on a payload one byte different never passes. */
		p[0] ^= 1;
		FUZZ_CHECK(tf_stamp_check(ring(), &st, p, payloadlen) == TF_STAMP_HASH_MISMATCH);
	}
	free(text);
	return 0;
}
