#include "tests/unit/vector.h"

#include <stdio.h>
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
