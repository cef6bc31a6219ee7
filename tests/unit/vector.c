#include "tests/unit/vector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char vector_key[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
	"-----END PRIVATE KEY-----\n";
const char vector_public_pem[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
	"-----END PUBLIC KEY-----\n";
const char vector_topic[] = "city/water/d7/telemetry";
const char vector_payload[] = "{\"flow\":12.5,\"pressure\":3.1}";

int vector_signer(const char *path, struct tf_signer **out)
{
	FILE *f = fopen(path, "w");
	struct tf_err err;

	if (f == NULL || fputs(vector_key, f) < 0 || fclose(f) != 0 || chmod(path, 0600) != 0)
		return -1;
	return tf_signer_load(path, out, &err) == TF_OK ? 0 : -1;
}

int vector_keys_open(struct vector_keys *k, const char *prefix)
{
	struct tf_err err;

	memset(k, 0, sizeof(*k));
	snprintf(k->dir, sizeof(k->dir), "/tmp/%s-XXXXXX", prefix);
	if (mkdtemp(k->dir) == NULL)
		return -1;
	snprintf(k->key_path, sizeof(k->key_path), "%s/key.pem", k->dir);
	if (vector_signer(k->key_path, &k->signer) != 0)
		return -1;
	k->ring = tf_keyring_new();
	if (k->ring == NULL || tf_keyring_add_pem(k->ring, vector_public_pem,
			strlen(vector_public_pem), NULL, &err) != TF_OK)
		return -1;
	return 0;
}

int vector_keys_close(struct vector_keys *k)
{
	char cmd[128];

	tf_signer_free(k->signer);
	tf_keyring_free(k->ring);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", k->dir);
	return system(cmd) == 0 ? 0 : -1;
}
