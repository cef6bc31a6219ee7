/* Unit tests for policy/policysig.c: owner-signed policies
 * (federation-v1, section 2), with real Ed25519 keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/util/arena.h"
#include "policy/identities.h"
#include "policy/policy.h"
#include "policy/policysig.h"

static const char policy_file[] =
	"{\"trustflow_policy\": 1, \"id\": \"water-telemetry\", \"version\": 3,\n"
	" \"owner\": \"city-waterworks\", \"topics\": [\"city/water/+/telemetry\"],\n"
	" \"consumers\": [{\"orgs\": [\"maint-co\"]}]}\n";
#define POLICY_LEN (sizeof(policy_file) - 1)

struct fixture {
	char dir[64];
	struct tf_signer *owner, *other;
	char owner_key[128];              /* the owner's policy key, as identities give it */
	struct tf_keyring *keys;          /* the owner's policy_keys */
};

/* The base64 body of a public key PEM, as policy_keys hold it. */
static void body_of(const char *pem, char *out, size_t cap)
{
	const char *start = strchr(pem, '\n') + 1, *end = strstr(start, "\n-----END");

	assert_true(end != NULL && (size_t)(end - start) < cap);
	memcpy(out, start, (size_t)(end - start));
	out[end - start] = '\0';
}

static struct tf_signer *new_key(struct fixture *f, const char *name)
{
	char path[128];
	struct tf_signer *s;
	struct tf_err err;

	snprintf(path, sizeof(path), "%s/%s.pem", f->dir, name);
	assert_int_equal(tf_signer_generate(path, &s, &err), TF_OK);
	return s;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct tf_err err;

	if (f == NULL)
		return -1;
	strcpy(f->dir, "/tmp/tf-policysig-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->owner = new_key(f, "owner");
	f->other = new_key(f, "other");
	body_of(tf_signer_public_pem(f->owner), f->owner_key, sizeof(f->owner_key));
	f->keys = tf_keyring_new();
	if (f->keys == NULL || tf_policy_key_add(f->keys, f->owner_key, NULL, &err) != TF_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	tf_signer_free(f->owner);
	tf_signer_free(f->other);
	tf_keyring_free(f->keys);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void sign(struct tf_signer *s, const void *file, size_t len, char sig[TF_SIG_B64_LEN + 1])
{
	struct tf_err err;

	assert_int_equal(tf_policy_sig_make(s, file, len, sig, &err), TF_OK);
}

static void the_owners_signature_is_accepted_with_its_key_id(void **state)
{
	struct fixture *f = *state;
	char sig[TF_SIG_B64_LEN + 1], kid[TF_KID_LEN + 1] = "";
	struct tf_err err;

	sign(f->owner, policy_file, POLICY_LEN, sig);
	assert_int_equal(tf_policy_sig_check(f->keys, policy_file, POLICY_LEN, sig, kid, &err),
		TF_OK);
	assert_string_equal(kid, tf_signer_kid(f->owner));
}

static void a_changed_byte_is_refused(void **state)
{
	struct fixture *f = *state;
	char sig[TF_SIG_B64_LEN + 1], kid[TF_KID_LEN + 1], changed[sizeof(policy_file)];
	struct tf_err err;

	sign(f->owner, policy_file, POLICY_LEN, sig);
	memcpy(changed, policy_file, sizeof(changed));
	changed[strstr(changed, "\"version\": 3") - changed + 11] = '4';
	assert_int_equal(tf_policy_sig_check(f->keys, changed, POLICY_LEN, sig, kid, &err),
		TF_ERR_INVALID);
	assert_non_null(strstr(err.msg, "none of its owner's policy_keys"));
	/* A line end added at the end is a changed byte too. */
	memcpy(changed, policy_file, sizeof(changed));
	assert_int_equal(tf_policy_sig_check(f->keys, changed, POLICY_LEN - 1, sig, kid, &err),
		TF_ERR_INVALID);
}

static void another_organizations_key_is_refused(void **state)
{
	struct fixture *f = *state;
	char sig[TF_SIG_B64_LEN + 1], kid[TF_KID_LEN + 1];
	struct tf_err err;

	sign(f->other, policy_file, POLICY_LEN, sig);
	assert_int_equal(tf_policy_sig_check(f->keys, policy_file, POLICY_LEN, sig, kid, &err),
		TF_ERR_INVALID);
	/* An owner without policy_keys accepts no signature. */
	assert_int_equal(tf_policy_sig_check(NULL, policy_file, POLICY_LEN, sig, kid, &err),
		TF_ERR_INVALID);
	assert_non_null(strstr(err.msg, "no policy_keys"));
}

/* The signature covers the context line: one over the bytes alone (a
 * signature made for something else) does not pass. */
static void a_signature_without_the_context_is_refused(void **state)
{
	struct fixture *f = *state;
	char sig[TF_SIG_B64_LEN + 1], kid[TF_KID_LEN + 1];
	struct tf_err err;

	assert_int_equal(tf_signer_sign(f->owner, policy_file, POLICY_LEN, sig, &err), TF_OK);
	assert_int_equal(tf_policy_sig_check(f->keys, policy_file, POLICY_LEN, sig, kid, &err),
		TF_ERR_INVALID);
}

static void a_sig_file_is_its_base64_and_one_line_end(void **state)
{
	struct fixture *f = *state;
	char sig[TF_SIG_B64_LEN + 1], read[TF_SIG_B64_LEN + 1], text[TF_SIG_B64_LEN + 4];
	struct tf_err err;

	sign(f->owner, policy_file, POLICY_LEN, sig);
	assert_int_equal(tf_policy_sig_read(sig, TF_SIG_B64_LEN, read, &err), TF_OK);
	assert_string_equal(read, sig);
	snprintf(text, sizeof(text), "%s\n", sig);
	assert_int_equal(tf_policy_sig_read(text, strlen(text), read, &err), TF_OK);
	snprintf(text, sizeof(text), "%s\r\n", sig);
	assert_int_equal(tf_policy_sig_read(text, strlen(text), read, &err), TF_OK);
	assert_string_equal(read, sig);
	/* Anything else is refused. */
	snprintf(text, sizeof(text), "%s\n\n", sig);
	assert_int_equal(tf_policy_sig_read(text, strlen(text), read, &err), TF_ERR_INVALID);
	assert_int_equal(tf_policy_sig_read(sig, TF_SIG_B64_LEN - 4, read, &err), TF_ERR_INVALID);
	assert_int_equal(tf_policy_sig_read("", 0, read, &err), TF_ERR_INVALID);
	memcpy(text, sig, TF_SIG_B64_LEN);
	text[10] = '\n';
	assert_int_equal(tf_policy_sig_read(text, TF_SIG_B64_LEN, read, &err), TF_ERR_INVALID);
	text[10] = '\0';
	assert_int_equal(tf_policy_sig_read(text, TF_SIG_B64_LEN, read, &err), TF_ERR_INVALID);
	text[10] = '-';
	assert_int_equal(tf_policy_sig_read(text, TF_SIG_B64_LEN, read, &err), TF_ERR_INVALID);
	assert_non_null(strstr(err.msg, "not a policy signature"));
}

static void policy_keys_are_ed25519_public_keys_in_base64(void **state)
{
	struct fixture *f = *state;
	struct tf_keyring *keys = tf_keyring_new();
	char kid[TF_KID_LEN + 1] = "", injected[400];
	struct tf_err err;

	assert_non_null(keys);
	assert_int_equal(tf_policy_key_add(keys, f->owner_key, kid, &err), TF_OK);
	assert_string_equal(kid, tf_signer_kid(f->owner));
	assert_int_equal(tf_policy_key_add(keys, "not base64!", kid, &err), TF_ERR_INVALID);
	assert_non_null(strstr(err.msg, "not an Ed25519 public key"));
	/* Base64 that is no key. */
	assert_int_equal(tf_policy_key_add(keys, "AAAAAAAA", kid, &err), TF_ERR_INVALID);
	/* No PEM block can be smuggled in. */
	snprintf(injected, sizeof(injected), "%s\n-----END PUBLIC KEY-----\n-----BEGIN PUBLIC KEY-----\n%s",
		f->owner_key, f->owner_key);
	assert_int_equal(tf_policy_key_add(keys, injected, kid, &err), TF_ERR_INVALID);
	assert_int_equal(tf_keyring_count(keys), 1);
	tf_keyring_free(keys);
}

/* --- the policy loader ------------------------------------------------------- */

static void write_text(const char *path, const char *text, size_t len)
{
	FILE *out = fopen(path, "w");

	assert_non_null(out);
	assert_int_equal(fwrite(text, 1, len, out), len);
	assert_int_equal(fclose(out), 0);
}

/* Identities in which city-waterworks signs with the owner's key and
 * maint-co signs nothing. */
static struct tf_identities *identities(struct fixture *f)
{
	char path[128], text[1024];
	struct tf_identities *ids;
	struct tf_err err;

	snprintf(path, sizeof(path), "%s/identities.json", f->dir);
	snprintf(text, sizeof(text), "{\"trustflow_identities\": 1, \"organizations\": {"
		"\"city-waterworks\": {\"policy_keys\": [\"%s\"]}, \"maint-co\": {}},"
		" \"clients\": {}}", f->owner_key);
	write_text(path, text, strlen(text));
	assert_int_equal(tf_identities_load(path, "identities.json", &ids, &err), TF_OK);
	return ids;
}

/* Writes the policy file (and its .sig by signer, unless NULL) and loads
 * it: the load's result, the policy in *p (released here). */
static int load_policy(struct fixture *f, const struct tf_identities *ids, const char *text,
		struct tf_signer *signer, bool require_signed, const char **signed_by,
		struct tf_err *err)
{
	char path[128], sig_path[140], sig[TF_SIG_B64_LEN + 2];
	struct tf_arena arena = { 0 };
	struct tf_policy p;
	int rc;

	snprintf(path, sizeof(path), "%s/water.json", f->dir);
	snprintf(sig_path, sizeof(sig_path), "%s.sig", path);
	write_text(path, text, strlen(text));
	remove(sig_path);
	if (signer != NULL) {
		sign(signer, text, strlen(text), sig);
		strcat(sig, "\n");
		write_text(sig_path, sig, strlen(sig));
	}
	rc = tf_policy_load(path, "policies/water.json", ids, require_signed, &arena, &p, err);
	*signed_by = NULL;
	if (rc == TF_OK) {
		static char kid[TF_KID_LEN + 1];

		if (p.signed_by != NULL) {
			snprintf(kid, sizeof(kid), "%s", p.signed_by);
			*signed_by = kid;
		}
		tf_policy_release(&p);
	}
	tf_arena_free(&arena);
	return rc;
}

static void the_loader_takes_a_keyed_owners_policy_only_signed(void **state)
{
	struct fixture *f = *state;
	struct tf_identities *ids = identities(f);
	const char *kid;
	struct tf_err err;

	assert_int_equal(load_policy(f, ids, policy_file, f->owner, false, &kid, &err), TF_OK);
	assert_string_equal(kid, tf_signer_kid(f->owner));
	assert_int_equal(load_policy(f, ids, policy_file, NULL, false, &kid, &err), TF_ERR_INVALID);
	assert_string_equal(err.msg, "policies/water.json: not signed: its owner city-waterworks "
		"signs its policies (policy_keys), and policies/water.json.sig cannot be read");
	assert_int_equal(load_policy(f, ids, policy_file, f->other, false, &kid, &err),
		TF_ERR_INVALID);
	assert_string_equal(err.msg, "policies/water.json.sig: its signature was made by none of "
		"its owner's policy_keys, or over other bytes");
	tf_identities_free(ids);
}

/* The signature checked is of the bytes loaded: a file changed after it
 * was signed is refused. */
static void the_loader_refuses_a_file_changed_after_signing(void **state)
{
	struct fixture *f = *state;
	struct tf_identities *ids = identities(f);
	char path[128], changed[sizeof(policy_file)];
	struct tf_arena arena = { 0 };
	struct tf_policy p;
	const char *kid;
	struct tf_err err;

	assert_int_equal(load_policy(f, ids, policy_file, f->owner, false, &kid, &err), TF_OK);
	memcpy(changed, policy_file, sizeof(changed));
	changed[strstr(changed, "\"version\": 3") - changed + 11] = '4';
	snprintf(path, sizeof(path), "%s/water.json", f->dir);
	write_text(path, changed, strlen(changed));
	assert_int_equal(tf_policy_load(path, "policies/water.json", ids, false, &arena, &p, &err),
		TF_ERR_INVALID);
	assert_non_null(strstr(err.msg, "none of its owner's policy_keys"));
	tf_arena_free(&arena);
	tf_identities_free(ids);
}

static void require_signed_extends_it_to_every_owner(void **state)
{
	struct fixture *f = *state;
	struct tf_identities *ids = identities(f);
	static const char maint[] =
		"{\"trustflow_policy\": 1, \"id\": \"maint-status\", \"version\": 1,\n"
		" \"owner\": \"maint-co\", \"topics\": [\"maint/+/status\"]}\n";
	const char *kid;
	struct tf_err err;

	/* maint-co has no policy_keys: unsigned is fine, unless required. */
	assert_int_equal(load_policy(f, ids, maint, NULL, false, &kid, &err), TF_OK);
	assert_null(kid);
	assert_int_equal(load_policy(f, ids, maint, NULL, true, &kid, &err), TF_ERR_INVALID);
	assert_string_equal(err.msg, "policies/water.json: its owner maint-co has no policy_keys, "
		"and every policy must be signed (require_signed_policies)");
	assert_int_equal(load_policy(f, ids, policy_file, f->owner, true, &kid, &err), TF_OK);
	/* Without identities (a syntax check) nothing is checked. */
	assert_int_equal(load_policy(f, NULL, policy_file, NULL, true, &kid, &err), TF_OK);
	tf_identities_free(ids);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(the_owners_signature_is_accepted_with_its_key_id),
		T(a_changed_byte_is_refused),
		T(another_organizations_key_is_refused),
		T(a_signature_without_the_context_is_refused),
		T(a_sig_file_is_its_base64_and_one_line_end),
		T(policy_keys_are_ed25519_public_keys_in_base64),
		T(the_loader_takes_a_keyed_owners_policy_only_signed),
		T(the_loader_refuses_a_file_changed_after_signing),
		T(require_signed_extends_it_to_every_owner),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
