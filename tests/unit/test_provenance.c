/* Unit tests for broker/stamp/provenance.c: the test vector of provenance-v1,
 * byte for byte, and the rejection of every kind of tampering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/stamp/provenance.h"
#include "tests/unit/vector.h"

/* The spec's test vector. */
static const char vector_input[] =
	"trustflow-stamp-1\nv:1:1\nid:32:019ac008e6005f1e2d3c4b5a69780123\n"
	"broker:13:city-broker-1\nkid:16:21fe31dfa154a261\nts:13:1764158400000\n"
	"org:15:city-waterworks\nclient:12:ww-sensor-01\npolicy:17:water-telemetry@3\n"
	"topic:23:city/water/d7/telemetry\n"
	"sha256:64:fa9a08d761793b6ff6fe10b881cc97ad17d51c2e6c77adb8e841d854491cccf6\nseq:2:42\n";
static const char vector_sig[] =
	"CJfrfKKvCkudXGIoZC4RPCxnDG0TyWot9cI5PwOqOxK8v/QXnc6h0XNHbmgyfGlzX51niaIue9cmM6BIgsLnBQ==";

struct fixture {
	struct vector_keys keys;
	struct tf_stamp_buf buf;
	struct tf_stamp stamp;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct tf_err err;
	struct tf_stamp_request req = {
		.broker = "city-broker-1", .org = "city-waterworks", .client = "ww-sensor-01",
		.policy = "water-telemetry@3", .topic = vector_topic, .payload = vector_payload,
		.payloadlen = strlen(vector_payload), .ts_ms = 1764158400000LL, .seq = 42,
		.id = "019ac008e6005f1e2d3c4b5a69780123",
	};

	if (f == NULL || vector_keys_open(&f->keys, "tf-prov") != 0
			|| tf_signer_stamp(f->keys.signer, &req, &f->buf, &f->stamp, &err) != TF_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int rc = vector_keys_close(&f->keys);

	free(f);
	return rc;
}

static void key_id_and_public_key_match_the_vector(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(tf_signer_kid(f->keys.signer), "21fe31dfa154a261");
	assert_string_equal(tf_signer_public_pem(f->keys.signer), vector_public_pem);
}

static void signing_input_is_the_vector_byte_for_byte(void **state)
{
	struct fixture *f = *state;
	char input[1024];
	size_t len = tf_stamp_signing_input(&f->stamp, input, sizeof(input));

	assert_int_equal(len, sizeof(vector_input) - 1);
	assert_memory_equal(input, vector_input, len);
	/* Asked with no room, it says how much it needs. */
	assert_int_equal(tf_stamp_signing_input(&f->stamp, NULL, 0), len);
}

static void signature_is_the_vector(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(f->stamp.sig, vector_sig);
	assert_string_equal(f->stamp.sha256,
		"fa9a08d761793b6ff6fe10b881cc97ad17d51c2e6c77adb8e841d854491cccf6");
	assert_string_equal(f->stamp.ts, "1764158400000");
	assert_string_equal(f->stamp.seq, "42");
	assert_string_equal(f->stamp.kid, "21fe31dfa154a261");
}

static enum tf_stamp_check check(struct fixture *f, const struct tf_stamp *st, const char *payload)
{
	return tf_stamp_check(f->keys.ring, st, payload, strlen(payload));
}

static void the_vector_verifies(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(check(f, &f->stamp, vector_payload), TF_STAMP_VALID);
}

static void a_changed_payload_is_a_hash_mismatch(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(check(f, &f->stamp, "{\"flow\":12.6,\"pressure\":3.1}"),
		TF_STAMP_HASH_MISMATCH);
	assert_int_equal(check(f, &f->stamp, ""), TF_STAMP_HASH_MISMATCH);
}

static void a_changed_topic_or_property_breaks_the_signature(void **state)
{
	struct fixture *f = *state;
	const char **fields[] = {
		&f->stamp.id, &f->stamp.broker, &f->stamp.ts, &f->stamp.org, &f->stamp.client,
		&f->stamp.policy, &f->stamp.topic, &f->stamp.seq,
	};
	/* A value of the same form as the original, so that only the
	 * signature can tell. */
	const char *others[] = {
		"019ac008e6005f1e2d3c4b5a69780124", "city-broker-2", "1764158400001", "maint-co",
		"ww-sensor-02", "water-telemetry@4", "city/water/d8/telemetry", "43",
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		struct tf_stamp forged = f->stamp;

		*(const char **)((char *)&forged + ((char *)fields[i] - (char *)&f->stamp)) = others[i];
		assert_int_equal(check(f, &forged, vector_payload), TF_STAMP_BAD_SIGNATURE);
	}
}

static void a_changed_signature_or_hash_is_refused(void **state)
{
	struct fixture *f = *state;
	struct tf_stamp forged = f->stamp;
	char sig[TF_SIG_B64_LEN + 1], sha[TF_SHA256_HEX + 1];
	char payload[] = "{\"flow\":99}";

	strcpy(sig, vector_sig);
	sig[10] = sig[10] == 'A' ? 'B' : 'A';
	forged.sig = sig;
	assert_int_equal(check(f, &forged, vector_payload), TF_STAMP_BAD_SIGNATURE);
	/* A hash that matches a different payload: the signature still
	 * covers the original hash. */
	forged = f->stamp;
	tf_sha256_hex(payload, strlen(payload), sha);
	forged.sha256 = sha;
	assert_int_equal(check(f, &forged, payload), TF_STAMP_BAD_SIGNATURE);
}

static void a_wrong_key_is_refused(void **state)
{
	struct fixture *f = *state;
	struct tf_keyring *other = tf_keyring_new();
	struct tf_signer *stranger;
	struct tf_err err;
	char path[160];

	assert_non_null(other);
	snprintf(path, sizeof(path), "%s/stranger.pem", f->keys.dir);
	assert_int_equal(tf_signer_generate(path, &stranger, &err), TF_OK);
	assert_int_equal(tf_keyring_add_file(other, path, NULL, &err), TF_OK);
	/* The stranger's key is not the one named by tf-kid. */
	assert_int_equal(tf_stamp_check(other, &f->stamp, vector_payload,
		strlen(vector_payload)), TF_STAMP_UNKNOWN_KEY);
	tf_keyring_free(other);
	tf_signer_free(stranger);
}

/* A key bound to a broker verifies that broker's stamps only; bound or
 * not, it is the key tf-kid names that must sign. */
static void a_bound_key_speaks_for_its_broker_alone(void **state)
{
	struct fixture *f = *state;
	struct tf_stamp other_broker = f->stamp;
	struct tf_err err;
	const char *kid = tf_signer_kid(f->keys.signer);

	/* Unbound: trusted for any broker, so the broker a stamp names is
	 * taken on the key holder's word (the signature decides). */
	other_broker.broker = "city-broker-2";
	assert_int_equal(check(f, &other_broker, vector_payload), TF_STAMP_BAD_SIGNATURE);

	assert_int_equal(tf_keyring_bind(f->keys.ring, kid, "city-broker-1", &err), TF_OK);
	assert_int_equal(check(f, &f->stamp, vector_payload), TF_STAMP_VALID);
	/* Refused before its signature is looked at, and before its payload. */
	assert_int_equal(check(f, &other_broker, vector_payload), TF_STAMP_WRONG_BROKER);
	assert_int_equal(check(f, &other_broker, "{}"), TF_STAMP_WRONG_BROKER);
	assert_string_equal(tf_stamp_check_reason(TF_STAMP_WRONG_BROKER), "key of another broker");
	/* The binding is by exact id. */
	other_broker.broker = "City-broker-1";
	assert_int_equal(check(f, &other_broker, vector_payload), TF_STAMP_WRONG_BROKER);
	other_broker.broker = "city-broker-";
	assert_int_equal(check(f, &other_broker, vector_payload), TF_STAMP_WRONG_BROKER);

	/* Bound to the same broker again: as it was. To another, or to none,
	 * or a key the ring does not hold: refused, the binding unchanged. */
	assert_int_equal(tf_keyring_bind(f->keys.ring, kid, "city-broker-1", &err), TF_OK);
	assert_int_equal(tf_keyring_bind(f->keys.ring, kid, "city-broker-2", &err),
		TF_ERR_INVALID);
	assert_non_null(strstr(err.msg, "city-broker-1"));
	assert_int_equal(tf_keyring_bind(f->keys.ring, kid, "", &err), TF_ERR_INVALID);
	assert_int_equal(tf_keyring_bind(f->keys.ring, "0000000000000000", "city-broker-1", &err),
		TF_ERR_INVALID);
	assert_int_equal(check(f, &f->stamp, vector_payload), TF_STAMP_VALID);
	/* Signatures other than stamps' name no broker: the key still checks
	 * them. */
	assert_int_equal(tf_keyring_verify(f->keys.ring, kid, vector_input,
		sizeof(vector_input) - 1, vector_sig), TF_STAMP_VALID);
}

static void missing_and_malformed_fields(void **state)
{
	struct fixture *f = *state;
	struct tf_stamp st = f->stamp;

	st.sig = NULL;
	assert_int_equal(check(f, &st, vector_payload), TF_STAMP_MISSING);
	st = f->stamp;
	st.org = NULL;
	assert_int_equal(check(f, &st, vector_payload), TF_STAMP_MISSING);
	st = f->stamp;
	st.v = "2";
	assert_int_equal(check(f, &st, vector_payload), TF_STAMP_MALFORMED);
	st = f->stamp;
	st.id = "019AC008E6005F1E2D3C4B5A69780123";
	assert_int_equal(check(f, &st, vector_payload), TF_STAMP_MALFORMED);
	st = f->stamp;
	st.sig = "not base64";
	assert_int_equal(check(f, &st, vector_payload), TF_STAMP_MALFORMED);
	st = f->stamp;
	st.seq = "4x";
	assert_int_equal(check(f, &st, vector_payload), TF_STAMP_MALFORMED);
	assert_string_equal(tf_stamp_check_reason(TF_STAMP_MISSING), "missing stamp");
	assert_string_equal(tf_stamp_check_reason(TF_STAMP_UNKNOWN_KEY), "unknown key");
	assert_string_equal(tf_stamp_check_reason(TF_STAMP_HASH_MISMATCH), "payload hash mismatch");
	assert_string_equal(tf_stamp_check_reason(TF_STAMP_BAD_SIGNATURE), "bad signature");
}

static void generated_ids_hold_the_time_and_differ(void **state)
{
	struct fixture *f = *state;
	struct tf_stamp_request req = {
		.broker = "b", .org = "", .client = "c", .policy = "", .topic = "t",
		.payload = "", .payloadlen = 0, .ts_ms = 1764158400000LL, .seq = 1,
	};
	struct tf_stamp_buf b1, b2;
	struct tf_stamp s1, s2;
	struct tf_err err;

	assert_int_equal(tf_signer_stamp(f->keys.signer, &req, &b1, &s1, &err), TF_OK);
	assert_int_equal(tf_signer_stamp(f->keys.signer, &req, &b2, &s2, &err), TF_OK);
	/* 1764158400000 = 0x019ac008e600 */
	assert_memory_equal(s1.id, "019ac008e600", 12);
	assert_int_equal(strlen(s1.id), 32);
	assert_string_not_equal(s1.id, s2.id);
	assert_int_equal(check(f, &s1, ""), TF_STAMP_VALID);
}

static void keys_with_loose_permissions_are_refused(void **state)
{
	struct fixture *f = *state;
	struct tf_signer *s = NULL;
	struct tf_err err;

	assert_int_equal(chmod(f->keys.key_path, 0640), 0);
	assert_int_equal(tf_signer_load(f->keys.key_path, &s, &err), TF_ERR_INVALID);
	assert_null(s);
	assert_non_null(strstr(err.msg, "chmod 600"));
	assert_int_equal(chmod(f->keys.key_path, 0600), 0);
}

static void generated_keys_are_private_files_and_never_overwrite(void **state)
{
	struct fixture *f = *state;
	struct tf_signer *s = NULL, *again = NULL;
	struct tf_err err;
	struct stat st;
	char path[160];

	snprintf(path, sizeof(path), "%s/new.pem", f->keys.dir);
	assert_int_equal(tf_signer_generate(path, &s, &err), TF_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(tf_signer_load(path, &again, &err), TF_OK);
	assert_string_equal(tf_signer_kid(s), tf_signer_kid(again));
	tf_signer_free(again);
	assert_int_equal(tf_signer_generate(path, &again, &err), TF_ERR_IO);
	tf_signer_free(s);
}

static void non_ed25519_keys_are_refused(void **state)
{
	struct fixture *f = *state;
	struct tf_err err;
	static const char not_a_key[] = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";

	assert_int_equal(tf_keyring_add_pem(f->keys.ring, not_a_key, sizeof(not_a_key) - 1, NULL, &err),
		TF_ERR_INVALID);
}

/* FIPS 180-2's first SHA-256 example, raw and in hex. */
static void sha256_raw_and_hex_agree_with_the_standard(void **state)
{
	static const char abc_hex[] =
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	unsigned char raw[32];
	char hex[TF_SHA256_HEX + 1];

	(void)state;
	tf_sha256("abc", 3, raw);
	assert_int_equal(raw[0], 0xba);
	assert_int_equal(raw[31], 0xad);
	tf_hex(raw, sizeof(raw), hex);
	assert_string_equal(hex, abc_hex);
	memset(hex, 'x', sizeof(hex));
	tf_sha256_hex("abc", 3, hex);
	assert_string_equal(hex, abc_hex);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(key_id_and_public_key_match_the_vector),
		T(signing_input_is_the_vector_byte_for_byte),
		T(signature_is_the_vector),
		T(the_vector_verifies),
		T(a_changed_payload_is_a_hash_mismatch),
		T(a_changed_topic_or_property_breaks_the_signature),
		T(a_changed_signature_or_hash_is_refused),
		T(a_wrong_key_is_refused),
		T(a_bound_key_speaks_for_its_broker_alone),
		T(missing_and_malformed_fields),
		T(generated_ids_hold_the_time_and_differ),
		T(keys_with_loose_permissions_are_refused),
		T(generated_keys_are_private_files_and_never_overwrite),
		T(non_ed25519_keys_are_refused),
		cmocka_unit_test(sha256_raw_and_hex_agree_with_the_standard),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
