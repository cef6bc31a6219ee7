#include "broker/trace/checkpoint.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "broker/stamp/fields.h"

#define CHECKPOINT_HEADER "trustflow-checkpoint-1\n"

/* The signed bytes into buf of cap; returns the length needed. */
static size_t signing_input(const struct tf_checkpoint *cp, char *buf, size_t cap)
{
	static const char *const names[] = { "broker", "kid", "seq", "hash", "ts" };
	char seq[21], ts[21];
	const char *values[5] = { cp->broker, cp->kid, seq, cp->hash, ts };

	seq[tf_put_decimal(seq, cp->seq)] = '\0';
	ts[tf_put_decimal(ts, (uint64_t)cp->ts_ms)] = '\0';
	return tf_fields_encode(CHECKPOINT_HEADER, names, values, 5, buf, cap);
}

int tf_checkpoint_sign(struct tf_checkpoint *cp, struct tf_signer *signer, const char *broker,
		uint64_t seq, const unsigned char hash[32], int64_t ts_ms, struct tf_err *err)
{
	char input[512];
	size_t len;

	memset(cp, 0, sizeof(*cp));
	if (strlen(broker) > TF_BROKER_ID_MAX)
		return tf_err_set(err, TF_ERR_INVALID, "broker id longer than %d bytes",
			TF_BROKER_ID_MAX);
	strcpy(cp->broker, broker);
	strcpy(cp->kid, tf_signer_kid(signer));
	cp->seq = seq;
	tf_hex(hash, 32, cp->hash);
	cp->ts_ms = ts_ms;
	len = signing_input(cp, input, sizeof(input));
	if (len > sizeof(input))
		return tf_err_set(err, TF_ERR_INVALID, "checkpoint too long to sign");
	return tf_signer_sign(signer, input, len, cp->sig, err);
}

enum tf_stamp_check tf_checkpoint_check(const struct tf_checkpoint *cp,
		const struct tf_keyring *ring)
{
	char input[512];
	size_t len = signing_input(cp, input, sizeof(input));

	if (len > sizeof(input))
		return TF_STAMP_MALFORMED;
	return tf_keyring_verify(ring, cp->kid, input, len, cp->sig);
}

char *tf_checkpoint_to_json(const struct tf_checkpoint *cp)
{
	cJSON *o = cJSON_CreateObject();
	char *text = NULL;

	if (o != NULL && cJSON_AddStringToObject(o, "broker", cp->broker)
			&& cJSON_AddStringToObject(o, "kid", cp->kid)
			&& cJSON_AddNumberToObject(o, "seq", (double)cp->seq)
			&& cJSON_AddStringToObject(o, "hash", cp->hash)
			&& cJSON_AddNumberToObject(o, "ts", (double)cp->ts_ms)
			&& cJSON_AddStringToObject(o, "sig", cp->sig))
		text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return text;
}

/* Copies the string member name of o into out (cap bytes, NUL included). */
static int take_string(const cJSON *o, const char *name, char *out, size_t cap,
		struct tf_err *err)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);

	if (!cJSON_IsString(m) || strlen(m->valuestring) >= cap)
		return tf_err_set(err, TF_ERR_INVALID, "checkpoint: \"%s\" is missing or malformed",
			name);
	strcpy(out, m->valuestring);
	return TF_OK;
}

/* A whole number below 2^53 (JSON numbers beyond it lose digits). */
static int take_number(const cJSON *o, const char *name, uint64_t *out, struct tf_err *err)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);

	if (!cJSON_IsNumber(m) || m->valuedouble < 0 || m->valuedouble > 9007199254740991.0
			|| m->valuedouble != (double)(uint64_t)m->valuedouble)
		return tf_err_set(err, TF_ERR_INVALID, "checkpoint: \"%s\" is missing or malformed",
			name);
	*out = (uint64_t)m->valuedouble;
	return TF_OK;
}

int tf_checkpoint_from_object(const cJSON *o, struct tf_checkpoint *cp, struct tf_err *err)
{
	uint64_t ts = 0;
	int rc;

	memset(cp, 0, sizeof(*cp));
	if (!cJSON_IsObject(o))
		return tf_err_set(err, TF_ERR_INVALID, "checkpoint: not a JSON object");
	if ((rc = take_string(o, "broker", cp->broker, sizeof(cp->broker), err)) == TF_OK
			&& (rc = take_string(o, "kid", cp->kid, sizeof(cp->kid), err)) == TF_OK
			&& (rc = take_number(o, "seq", &cp->seq, err)) == TF_OK
			&& (rc = take_string(o, "hash", cp->hash, sizeof(cp->hash), err)) == TF_OK
			&& (rc = take_number(o, "ts", &ts, err)) == TF_OK)
		rc = take_string(o, "sig", cp->sig, sizeof(cp->sig), err);
	cp->ts_ms = (int64_t)ts;
	if (rc == TF_OK && strlen(cp->hash) != TF_SHA256_HEX)
		rc = tf_err_set(err, TF_ERR_INVALID, "checkpoint: \"hash\" is not 64 hex digits");
	return rc;
}

int tf_checkpoint_from_json(const char *text, size_t len, struct tf_checkpoint *cp,
		struct tf_err *err)
{
	cJSON *o = cJSON_ParseWithLength(text, len);
	int rc = tf_checkpoint_from_object(o, cp, err);

	cJSON_Delete(o);
	return rc;
}
