/* tfctl key generate | public (operations-v1). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/stamp/provenance.h"
#include "broker/tfctl/tfctl.h"

static const char key_usage[] =
	"usage: tfctl key generate --out FILE\n"
	"       tfctl key public FILE\n"
	"\n"
	"generate  writes a new Ed25519 signing key (PKCS#8 PEM, mode 0600) to FILE,\n"
	"          which must not exist, and prints its key id.\n"
	"public    prints the public key (SubjectPublicKeyInfo PEM) of the key in\n"
	"          FILE (a private or a public key), then its key id on a line of\n"
	"          its own.\n";

static int usage_error(const char *what)
{
	fprintf(stderr, "tfctl key: %s\n%s", what, key_usage);
	return TFCTL_USAGE;
}

static int cmd_generate(int argc, char **argv)
{
	struct tf_signer *signer;
	struct tf_err err = { "" };

	if (argc != 2 || strcmp(argv[0], "--out") != 0)
		return usage_error("generate needs --out FILE");
	if (tf_signer_generate(argv[1], &signer, &err) != TF_OK) {
		fprintf(stderr, "tfctl: %s\n", err.msg);
		return TFCTL_USAGE;
	}
	printf("%s\n", tf_signer_kid(signer));
	tf_signer_free(signer);
	return TFCTL_OK;
}

static int cmd_public(int argc, char **argv)
{
	struct tf_keyring *ring;
	struct tf_err err = { "" };
	char kid[TF_KID_LEN + 1];
	char *pem;
	int rc = TFCTL_USAGE;

	if (argc != 1)
		return usage_error("public needs one key FILE");
	ring = tf_keyring_new();
	if (ring == NULL) {
		fputs("tfctl: out of memory\n", stderr);
		return TFCTL_USAGE;
	}
	if (tf_keyring_add_file(ring, argv[0], kid, &err) != TF_OK) {
		fprintf(stderr, "tfctl: %s\n", err.msg);
	} else if ((pem = tf_keyring_public_pem(ring, kid)) == NULL) {
		fputs("tfctl: out of memory\n", stderr);
	} else {
		printf("%s%s\n", pem, kid);
		free(pem);
		rc = TFCTL_OK;
	}
	tf_keyring_free(ring);
	return rc;
}

int tfctl_key(int argc, char **argv)
{
	if (argc < 1)
		return usage_error("a subcommand is required");
	if (strcmp(argv[0], "generate") == 0)
		return cmd_generate(argc - 1, argv + 1);
	if (strcmp(argv[0], "public") == 0)
		return cmd_public(argc - 1, argv + 1);
	if (strcmp(argv[0], "--help") == 0) {
		fputs(key_usage, stdout);
		return TFCTL_OK;
	}
	return usage_error("unknown subcommand");
}
