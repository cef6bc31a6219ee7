/* Fuzz target: reading and checking a received stamp (provenance-v1), the
 * part of the broker's code that reads what comes from outside in tfctl
 * verify. Every input is read twice, once as each form.
 *
 * Full form: the stamp's properties and the message, separated by
 * newlines: tf-v, tf-id, tf-broker, tf-kid, tf-ts, tf-org, tf-client,
 * tf-policy, topic, tf-sha256, tf-seq, tf-sig, then the payload (the rest,
 * newlines and all). A line that is missing leaves its field absent.
 *
 * Compact form: the first line is the value of a `tf` property, the second
 * the topic, the rest the payload; it goes through the stamp reader
 * (broker/stamp/forms.h) as tfctl verify's messages do.
 *
 * The key is the spec's test-vector key, so inputs near the vector reach
 * the signature check. Promises checked: the verdict is one of the enum;
 * a stamp that passes no longer passes on a payload one byte different
 * (full: hash mismatch; compact, which carries no hash: bad signature);
 * a compact value the reader accepts encodes back to the same bytes. */
#include "tests/fuzz/fuzz.h"

#include <string.h>

#include "broker/stamp/forms.h"
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

static bool verdict_in_range(enum tf_stamp_check v)
{
	return v >= TF_STAMP_VALID && v <= TF_STAMP_WRONG_BROKER;
}

/* The full form: twelve lines, then the payload. text is the input with
 * a NUL after it; it is changed. */
static void full_form(char *text, size_t size)
{
	char *p = text, *fields[12] = { NULL };
	struct tf_stamp st;
	enum tf_stamp_check verdict;
	size_t payloadlen;
	int n = 0;

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
		fields[6], fields[7], fields[8], fields[9], fields[10], fields[11], NULL };
	verdict = tf_stamp_check(ring(), &st, p, payloadlen);
	FUZZ_CHECK(verdict_in_range(verdict));
	if (verdict == TF_STAMP_VALID && payloadlen > 0) {
		/* The same stamp on a payload one byte different never passes. */
		p[0] ^= 1;
		FUZZ_CHECK(tf_stamp_check(ring(), &st, p, payloadlen) == TF_STAMP_HASH_MISMATCH);
	}
}

/* The compact form: the tf value, the topic, then the payload. text is
 * the input with a NUL after it; it is changed. */
static void compact_form(char *text, size_t size)
{
	char *topic_nl, *value_nl = memchr(text, '\n', size), *original, *again;
	struct tf_stamp_reader reader = { 0 };
	struct tf_stamp st;
	enum tf_stamp_check verdict;
	char *payload;
	size_t payloadlen, len;

	if (value_nl == NULL)
		return;
	*value_nl = '\0';
	topic_nl = memchr(value_nl + 1, '\n', size - (size_t)(value_nl + 1 - text));
	if (topic_nl == NULL)
		return;
	*topic_nl = '\0';
	payload = topic_nl + 1;
	payloadlen = size - (size_t)(payload - text);
	original = strdup(text);
	FUZZ_CHECK(original != NULL);

	FUZZ_CHECK(tf_stamp_reader_add(&reader, TF_STAMP_COMPACT_NAME, text));
	verdict = tf_stamp_reader_finish(&reader, value_nl + 1, payload, payloadlen, &st);
	FUZZ_CHECK(verdict_in_range(verdict));
	if (verdict == TF_STAMP_VALID) {
		/* What the reader accepts has one encoding: its own. */
		len = tf_stamp_compact_encode(&st, NULL, 0);
		again = malloc(len + 1);
		FUZZ_CHECK(again != NULL);
		FUZZ_CHECK(tf_stamp_compact_encode(&st, again, len + 1) == len);
		FUZZ_CHECK(strcmp(again, original) == 0);
		free(again);
		verdict = tf_stamp_check(ring(), &st, payload, payloadlen);
		FUZZ_CHECK(verdict_in_range(verdict));
		if (verdict == TF_STAMP_VALID && payloadlen > 0) {
			/* The hash is the reader's own, of the payload it was given:
			 * a changed payload breaks the signature. */
			struct tf_stamp_reader again_reader = { 0 };

			payload[0] ^= 1;
			strcpy(text, original);
			FUZZ_CHECK(tf_stamp_reader_add(&again_reader, TF_STAMP_COMPACT_NAME, text));
			FUZZ_CHECK(tf_stamp_reader_finish(&again_reader, value_nl + 1, payload,
				payloadlen, &st) == TF_STAMP_VALID);
			FUZZ_CHECK(tf_stamp_check(ring(), &st, payload, payloadlen)
				== TF_STAMP_BAD_SIGNATURE);
		}
	}
	free(original);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);

	FUZZ_CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';
	full_form(text, size);
	memcpy(text, data, size);
	text[size] = '\0';
	compact_form(text, size);
	free(text);
	return 0;
}
