#include "broker/stamp/provenance.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "broker/stamp/fields.h"
#include "broker/stamp/signer_pool.h"

#define STAMP_HEADER "trustflow-stamp-1\n"
#define RELAY_STAMP_HEADER "trustflow-stamp-2\n"
#define MAX_KEYS 64
/* Random bytes fetched at a time: a message id takes 10. */
#define RANDOM_POOL 4096

const char *const tf_stamp_names[TF_STAMP_NAMES_V2] = {
	"tf-v", "tf-id", "tf-broker", "tf-kid", "tf-ts", "tf-org", "tf-client", "tf-policy",
	"tf-sha256", "tf-seq", "tf-sig", "tf-topic", "tf-prev",
};

static const char hexdigits[] = "0123456789abcdef";

struct tf_signer {
	EVP_PKEY *key;
	EVP_MD_CTX *ctx;
	char kid[TF_KID_LEN + 1];
	char *public_pem;
	char *input;              /* the signing input, kept between messages */
	size_t input_cap;
	unsigned char random[RANDOM_POOL];
	size_t random_used;
	struct tf_signer_pool *pool;   /* NULL: deterministic RFC 8032 only */
};

struct tf_keyring {
	EVP_PKEY *keys[MAX_KEYS];
	char kids[MAX_KEYS][TF_KID_LEN + 1];
	char *brokers[MAX_KEYS];  /* the broker each key is bound to (malloc); NULL: any */
	int n;
};

/* The first OpenSSL error, for messages. */
static const char *ssl_error(void)
{
	static char text[160];
	unsigned long e = ERR_get_error();

	ERR_clear_error();
	if (e == 0)
		return "unknown OpenSSL error";
	ERR_error_string_n(e, text, sizeof(text));
	return text;
}

void tf_hex(const unsigned char *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdigits[in[i] >> 4];
		out[2 * i + 1] = hexdigits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

bool tf_unhex(const char *hex, size_t len, unsigned char *out, size_t n)
{
	if (len != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}

void tf_sha256(const void *data, size_t len, unsigned char out[32])
{
	unsigned int out_len = 32;

	EVP_Digest(data, len, out, &out_len, EVP_sha256(), NULL);
}

void tf_sha256_hex(const void *data, size_t len, char out[TF_SHA256_HEX + 1])
{
	unsigned char md[32];

	tf_sha256(data, len, md);
	tf_hex(md, sizeof(md), out);
}

/* The key id of a raw 32-byte Ed25519 public key. */
static void kid_of(const unsigned char raw[32], char out[TF_KID_LEN + 1])
{
	char full[TF_SHA256_HEX + 1];

	tf_sha256_hex(raw, 32, full);
	memcpy(out, full, TF_KID_LEN);
	out[TF_KID_LEN] = '\0';
}

static bool kid_of_key(EVP_PKEY *key, char out[TF_KID_LEN + 1])
{
	unsigned char raw[32];
	size_t len = sizeof(raw);

	if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519
			|| EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 || len != 32)
		return false;
	kid_of(raw, out);
	return true;
}

size_t tf_stamp_signing_input(const struct tf_stamp *st, char *buf, size_t cap)
{
	/* Field names as they appear in the input, in signing order. */
	static const char *const names[] = {
		"v", "id", "broker", "kid", "ts", "org", "client", "policy", "topic", "sha256", "seq",
		"prev",
	};
	const char *const values[] = {
		st->v, st->id, st->broker, st->kid, st->ts, st->org, st->client, st->policy,
		st->topic, st->sha256, st->seq, st->prev,
	};

	/* Format 2 signs its prev too, under a header of its own. */
	if (st->prev != NULL)
		return tf_fields_encode(RELAY_STAMP_HEADER, names, values, 12, buf, cap);
	return tf_fields_encode(STAMP_HEADER, names, values, 11, buf, cap);
}

/* --- signer --------------------------------------------------------------- */

void tf_signer_free(struct tf_signer *s)
{
	if (s == NULL)
		return;
	tf_signer_pool_stop(s->pool);
	EVP_PKEY_free(s->key);
	EVP_MD_CTX_free(s->ctx);
	free(s->public_pem);
	free(s->input);
	free(s);
}

static char *public_pem_of(EVP_PKEY *key)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *data, *copy = NULL;
	long len;

	if (mem == NULL)
		return NULL;
	if (PEM_write_bio_PUBKEY(mem, key) == 1 && (len = BIO_get_mem_data(mem, &data)) > 0
			&& (copy = malloc((size_t)len + 1)) != NULL) {
		memcpy(copy, data, (size_t)len);
		copy[len] = '\0';
	}
	BIO_free(mem);
	return copy;
}

/* Takes ownership of key. */
static int signer_from_key(EVP_PKEY *key, const char *path, struct tf_signer **out,
		struct tf_err *err)
{
	struct tf_signer *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		EVP_PKEY_free(key);
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	}
	s->key = key;
	if (!kid_of_key(key, s->kid)) {
		tf_signer_free(s);
		return tf_err_set(err, TF_ERR_INVALID, "%s: not an Ed25519 private key", path);
	}
	s->ctx = EVP_MD_CTX_new();
	s->public_pem = public_pem_of(key);
	s->input_cap = 1024;
	s->input = malloc(s->input_cap);
	s->random_used = RANDOM_POOL;
	if (s->ctx == NULL || s->public_pem == NULL || s->input == NULL) {
		tf_signer_free(s);
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	}
	*out = s;
	return TF_OK;
}

int tf_signer_load(const char *path, struct tf_signer **out, struct tf_err *err)
{
	struct stat st;
	EVP_PKEY *key;
	FILE *f;

	*out = NULL;
	f = fopen(path, "r");
	if (f == NULL)
		return tf_err_set(err, TF_ERR_IO, "%s: cannot open the signing key: %s", path,
			strerror(errno));
	if (fstat(fileno(f), &st) != 0 || (st.st_mode & 077) != 0) {
		fclose(f);
		return tf_err_set(err, TF_ERR_INVALID, "%s: the signing key is readable or writable "
			"by others (mode %04o); allow its owner only: chmod 600 %s",
			path, (unsigned)(st.st_mode & 07777), path);
	}
	key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (key == NULL)
		return tf_err_set(err, TF_ERR_INVALID, "%s: not a PEM private key (%s)", path,
			ssl_error());
	return signer_from_key(key, path, out, err);
}

int tf_signer_generate(const char *path, struct tf_signer **out, struct tf_err *err)
{
	EVP_PKEY *key;
	FILE *f;
	int fd, ok;

	*out = NULL;
	key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (key == NULL)
		return tf_err_set(err, TF_ERR_INVALID, "cannot generate a key: %s", ssl_error());
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		EVP_PKEY_free(key);
		return tf_err_set(err, TF_ERR_IO, "%s: cannot create the key file: %s", path,
			strerror(errno));
	}
	f = fdopen(fd, "w");
	ok = f != NULL && fchmod(fd, 0600) == 0 && PEM_write_PrivateKey(f, key, NULL, NULL, 0,
		NULL, NULL) == 1;
	if (f != NULL)
		ok = fclose(f) == 0 && ok;
	else
		close(fd);
	if (!ok) {
		EVP_PKEY_free(key);
		unlink(path);
		return tf_err_set(err, TF_ERR_IO, "%s: cannot write the key", path);
	}
	return signer_from_key(key, path, out, err);
}

int tf_signer_use_pool(struct tf_signer *s, unsigned workers, uint32_t size, struct tf_err *err)
{
	unsigned char seed[32], pub[32];
	size_t seed_len = sizeof(seed), pub_len = sizeof(pub);
	int rc;

	if (s->pool != NULL)
		return tf_err_set(err, TF_ERR_INVALID, "the signer has a pool already");
	if (EVP_PKEY_get_raw_private_key(s->key, seed, &seed_len) != 1 || seed_len != 32
			|| EVP_PKEY_get_raw_public_key(s->key, pub, &pub_len) != 1 || pub_len != 32) {
		OPENSSL_cleanse(seed, sizeof(seed));
		return tf_err_set(err, TF_ERR_INVALID, "cannot read the signing key: %s",
			ssl_error());
	}
	rc = tf_signer_pool_start(seed, pub, workers, size, &s->pool, err);
	OPENSSL_cleanse(seed, sizeof(seed));
	return rc;
}

void tf_signer_stats(const struct tf_signer *s, struct tf_signer_stats *out)
{
	struct tf_signer_pool_stats ps = { 0 };

	if (s->pool != NULL)
		tf_signer_pool_stats(s->pool, &ps);
	*out = (struct tf_signer_stats){ s->pool != NULL, ps.workers, ps.size, ps.level,
		ps.signatures, ps.empty, ps.restarts, ps.locked };
}

const char *tf_signer_kid(const struct tf_signer *s)
{
	return s->kid;
}

const char *tf_signer_public_pem(const struct tf_signer *s)
{
	return s->public_pem;
}

/* A message id: the receive time in ms (12 hex digits), then 10 random
 * bytes (20 hex digits). */
int tf_signer_make_id(struct tf_signer *s, int64_t ts_ms, char out[TF_MSGID_LEN + 1],
		struct tf_err *err)
{
	uint64_t t = (uint64_t)ts_ms;

	if (s->random_used + 10 > RANDOM_POOL) {
		if (RAND_bytes(s->random, RANDOM_POOL) != 1)
			return tf_err_set(err, TF_ERR_INVALID, "no random bytes: %s", ssl_error());
		s->random_used = 0;
	}
	for (int i = 11; i >= 0; i--, t >>= 4)
		out[i] = hexdigits[t & 15];
	tf_hex(s->random + s->random_used, 10, out + 12);
	s->random_used += 10;
	out[TF_MSGID_LEN] = '\0';
	return TF_OK;
}

/* RFC 8032 signing through OpenSSL, deterministic, with ctx or, when it
 * is NULL, a context of its own. */
static bool sign_rfc8032(struct tf_signer *s, EVP_MD_CTX *ctx, const void *data, size_t len,
		unsigned char sig[64])
{
	EVP_MD_CTX *own = ctx == NULL ? EVP_MD_CTX_new() : NULL;
	size_t sig_len = 64;
	bool ok;

	if (ctx == NULL)
		ctx = own;
	/* Ed25519 signs in one shot, and its context must be set up anew for
	 * each signature. */
	ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->key) == 1
		&& EVP_DigestSign(ctx, sig, &sig_len, data, len) == 1 && sig_len == 64;
	EVP_MD_CTX_free(own);
	return ok;
}

/* With a pooled nonce when the pool has one; otherwise (no pool, or the
 * pool is empty: the pool counts it) the ordinary way, on this thread,
 * never waiting and never leaving a message unsigned. */
static int sign_with(struct tf_signer *s, EVP_MD_CTX *ctx, const void *data, size_t len,
		char sig_b64[TF_SIG_B64_LEN + 1], struct tf_err *err)
{
	unsigned char sig[64];

	if ((s->pool == NULL || !tf_signer_pool_sign(s->pool, data, len, sig))
			&& !sign_rfc8032(s, ctx, data, len, sig))
		return tf_err_set(err, TF_ERR_INVALID, "signing failed: %s", ssl_error());
	EVP_EncodeBlock((unsigned char *)sig_b64, sig, (int)sizeof(sig));
	return TF_OK;
}

int tf_signer_stamp(struct tf_signer *s, const struct tf_stamp_request *req,
		struct tf_stamp_buf *buf, struct tf_stamp *out, struct tf_err *err)
{
	size_t need;
	int rc;

	if (req->id != NULL)
		snprintf(buf->id, sizeof(buf->id), "%s", req->id);
	else if ((rc = tf_signer_make_id(s, req->ts_ms, buf->id, err)) != TF_OK)
		return rc;
	memcpy(buf->kid, s->kid, sizeof(buf->kid));
	buf->ts[tf_put_decimal(buf->ts, (uint64_t)req->ts_ms)] = '\0';
	buf->seq[tf_put_decimal(buf->seq, req->seq)] = '\0';
	tf_sha256_hex(req->payload, req->payloadlen, buf->sha256);
	if (req->prev != NULL)
		snprintf(buf->prev, sizeof(buf->prev), "%s", req->prev);
	*out = (struct tf_stamp){ req->prev ? "2" : "1", buf->id, req->broker, buf->kid, buf->ts,
		req->org, req->client, req->policy, req->topic, buf->sha256, buf->seq, buf->sig,
		req->prev ? buf->prev : NULL };

	need = tf_stamp_signing_input(out, s->input, s->input_cap);
	if (need > s->input_cap) {
		char *grown = realloc(s->input, need);

		if (grown == NULL)
			return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
		s->input = grown;
		s->input_cap = need;
		need = tf_stamp_signing_input(out, s->input, s->input_cap);
	}
	return sign_with(s, s->ctx, s->input, need, buf->sig, err);
}

int tf_signer_sign(struct tf_signer *s, const void *data, size_t len,
		char sig_b64[TF_SIG_B64_LEN + 1], struct tf_err *err)
{
	/* Any thread may call this (the trace writer signs checkpoints), so
	 * the broker thread's context is not shared; NULL makes one when the
	 * ordinary path needs it. */
	return sign_with(s, NULL, data, len, sig_b64, err);
}

/* --- keyring and checking --------------------------------------------------- */

struct tf_keyring *tf_keyring_new(void)
{
	return calloc(1, sizeof(struct tf_keyring));
}

void tf_keyring_free(struct tf_keyring *r)
{
	if (r == NULL)
		return;
	for (int i = 0; i < r->n; i++) {
		EVP_PKEY_free(r->keys[i]);
		free(r->brokers[i]);
	}
	free(r);
}

int tf_keyring_add_pem(struct tf_keyring *r, const char *pem, size_t len, char *kid_out,
		struct tf_err *err)
{
	BIO *mem = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *key;
	char kid[TF_KID_LEN + 1];

	if (mem == NULL)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	key = PEM_read_bio_PUBKEY(mem, NULL, NULL, NULL);
	if (key == NULL) {
		/* A private key file holds its public key too. */
		ERR_clear_error();
		(void)BIO_reset(mem);
		key = PEM_read_bio_PrivateKey(mem, NULL, NULL, NULL);
	}
	BIO_free(mem);
	ERR_clear_error();
	if (key == NULL || !kid_of_key(key, kid)) {
		EVP_PKEY_free(key);
		return tf_err_set(err, TF_ERR_INVALID, "not an Ed25519 key in PEM");
	}
	for (int i = 0; i < r->n; i++) {
		if (strcmp(r->kids[i], kid) == 0) {
			EVP_PKEY_free(key);
			goto out;
		}
	}
	if (r->n == MAX_KEYS) {
		EVP_PKEY_free(key);
		return tf_err_set(err, TF_ERR_INVALID, "more than %d keys", MAX_KEYS);
	}
	r->keys[r->n] = key;
	memcpy(r->kids[r->n++], kid, sizeof(kid));
out:
	if (kid_out != NULL)
		memcpy(kid_out, kid, sizeof(kid));
	return TF_OK;
}

int tf_keyring_add_file(struct tf_keyring *r, const char *path, char *kid_out,
		struct tf_err *err)
{
	char text[16384];
	size_t len;
	FILE *f = fopen(path, "r");
	int rc;

	if (f == NULL)
		return tf_err_set(err, TF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	len = fread(text, 1, sizeof(text), f);
	fclose(f);
	rc = tf_keyring_add_pem(r, text, len, kid_out, err);
	if (rc != TF_OK)
		return tf_err_set(err, rc, "%s: not an Ed25519 key in PEM", path);
	return TF_OK;
}

int tf_keyring_bind(struct tf_keyring *r, const char *kid, const char *broker,
		struct tf_err *err)
{
	if (broker[0] == '\0')
		return tf_err_set(err, TF_ERR_INVALID, "an empty broker id");
	for (int i = 0; i < r->n; i++) {
		if (strcmp(r->kids[i], kid) != 0)
			continue;
		if (r->brokers[i] != NULL) {
			if (strcmp(r->brokers[i], broker) == 0)
				return TF_OK;
			return tf_err_set(err, TF_ERR_INVALID, "key %s is bound to broker %s already",
				kid, r->brokers[i]);
		}
		if ((r->brokers[i] = strdup(broker)) == NULL)
			return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
		return TF_OK;
	}
	return tf_err_set(err, TF_ERR_INVALID, "no key %s in the ring", kid);
}

int tf_keyring_count(const struct tf_keyring *r)
{
	return r->n;
}

const char *tf_keyring_kid(const struct tf_keyring *r, int i)
{
	return r->kids[i];
}

char *tf_keyring_public_pem(const struct tf_keyring *r, const char *kid)
{
	for (int i = 0; i < r->n; i++)
		if (strcmp(r->kids[i], kid) == 0)
			return public_pem_of(r->keys[i]);
	return NULL;
}

static bool is_hex(const char *s, size_t len)
{
	if (strlen(s) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool is_decimal(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 20)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* A prev link: 16 bytes in standard base64 with padding. */
static bool is_prev(const char *s)
{
	unsigned char raw[18];

	return strlen(s) == TF_PREV_B64_LEN && strcmp(s + TF_PREV_B64_LEN - 2, "==") == 0
		&& EVP_DecodeBlock(raw, (const unsigned char *)s, TF_PREV_B64_LEN) == 18;
}

/* Whether the stamp's v and prev agree: format 1 without a prev, format 2
 * with a well-formed one. */
static bool format_known(const struct tf_stamp *st)
{
	if (strcmp(st->v, "1") == 0)
		return st->prev == NULL;
	return strcmp(st->v, "2") == 0 && st->prev != NULL && is_prev(st->prev);
}

/* The index of the key kid in the ring, or -1. */
static int keyring_index(const struct tf_keyring *r, const char *kid)
{
	for (int i = 0; i < r->n; i++)
		if (strcmp(r->kids[i], kid) == 0)
			return i;
	return -1;
}

static EVP_PKEY *keyring_find(const struct tf_keyring *r, const char *kid)
{
	int i = keyring_index(r, kid);

	return i >= 0 ? r->keys[i] : NULL;
}

/* A signature in standard base64 with padding into its 64 bytes (sig
 * has room for 66: base64 decodes in whole groups). */
static bool decode_sig(const char *b64, unsigned char sig[66])
{
	return strlen(b64) == TF_SIG_B64_LEN && strcmp(b64 + TF_SIG_B64_LEN - 2, "==") == 0
		&& EVP_DecodeBlock(sig, (const unsigned char *)b64, TF_SIG_B64_LEN) == 66;
}

static bool verify_raw(EVP_PKEY *key, const void *data, size_t len, const unsigned char sig[64])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1
		&& EVP_DigestVerify(ctx, sig, 64, data, len) == 1;

	ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	return ok;
}

enum tf_stamp_check tf_stamp_check(const struct tf_keyring *r, const struct tf_stamp *st,
		const void *payload, size_t payloadlen)
{
	const char *const fields[] = {
		st->v, st->id, st->broker, st->kid, st->ts, st->org, st->client, st->policy,
		st->topic, st->sha256, st->seq, st->sig,
	};
	unsigned char sig[66];
	char sha[TF_SHA256_HEX + 1];
	char *input;
	size_t need;
	int ok, k;

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (fields[i] == NULL)
			return TF_STAMP_MISSING;
	if (!format_known(st) || !is_hex(st->id, TF_MSGID_LEN) || !is_hex(st->kid, TF_KID_LEN)
			|| !is_decimal(st->ts) || !is_hex(st->sha256, TF_SHA256_HEX)
			|| !is_decimal(st->seq) || !decode_sig(st->sig, sig))
		return TF_STAMP_MALFORMED;
	k = keyring_index(r, st->kid);
	if (k < 0)
		return TF_STAMP_UNKNOWN_KEY;
	/* A key bound to a broker speaks for that broker alone: whoever holds
	 * one trusted key must not be able to sign in the name of others. */
	if (r->brokers[k] != NULL && strcmp(r->brokers[k], st->broker) != 0)
		return TF_STAMP_WRONG_BROKER;
	tf_sha256_hex(payload, payloadlen, sha);
	if (strcmp(sha, st->sha256) != 0)
		return TF_STAMP_HASH_MISMATCH;

	need = tf_stamp_signing_input(st, NULL, 0);
	input = malloc(need);
	ok = input != NULL && tf_stamp_signing_input(st, input, need) == need
		&& verify_raw(r->keys[k], input, need, sig);
	free(input);
	return ok ? TF_STAMP_VALID : TF_STAMP_BAD_SIGNATURE;
}


enum tf_stamp_check tf_keyring_verify(const struct tf_keyring *r, const char *kid,
		const void *data, size_t len, const char *sig_b64)
{
	unsigned char sig[66];
	EVP_PKEY *key = keyring_find(r, kid);

	if (key == NULL)
		return TF_STAMP_UNKNOWN_KEY;
	if (!decode_sig(sig_b64, sig))
		return TF_STAMP_MALFORMED;
	return verify_raw(key, data, len, sig) ? TF_STAMP_VALID : TF_STAMP_BAD_SIGNATURE;
}

const char *tf_stamp_check_reason(enum tf_stamp_check c)
{
	switch (c) {
	case TF_STAMP_VALID:         return "ok";
	case TF_STAMP_MISSING:       return "missing stamp";
	case TF_STAMP_MALFORMED:     return "malformed stamp";
	case TF_STAMP_UNKNOWN_KEY:   return "unknown key";
	case TF_STAMP_HASH_MISMATCH: return "payload hash mismatch";
	case TF_STAMP_BAD_SIGNATURE: return "bad signature";
	case TF_STAMP_BOTH_FORMS:    return "stamp in both forms";
	case TF_STAMP_FIELD_COUNT:   return "wrong number of fields in a compact stamp or hop record";
	case TF_STAMP_BAD_ESCAPE:    return "bad escape in a compact stamp or hop record";
	case TF_STAMP_TOO_LONG:      return "compact stamp or hop record too long";
	case TF_STAMP_TOPIC_MISMATCH: return "stamped for another topic";
	case TF_STAMP_BROKEN_CHAIN:  return "broken chain";
	case TF_STAMP_LOOP:          return "a broker twice in the chain";
	case TF_STAMP_CHAIN_TOO_LONG: return "chain too long";
	case TF_STAMP_WRONG_BROKER:  return "key of another broker";
	}
	return "bad signature";
}
