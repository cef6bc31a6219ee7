/* tfctl, the operator tool: one file per command group, dispatched here. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "broker/engine/options.h"
#include "broker/tfctl/tfctl.h"
#include "broker/util/version.h"

static void print_usage(FILE *out)
{
	fputs("usage: tfctl [--help | --version]\n"
	      "       tfctl policy check [--identities FILE] [--trace DIR] PATH...\n"
	      "       tfctl policy explain --identities FILE --policies DIR --client USER\n"
	      "                            --topic TOPIC (--publish | --receive | --subscribe)\n"
	      "                            [--at TIME] [--default-access allow|deny]\n"
	      "       tfctl policy receivers --identities FILE --policies DIR --policy ID\n"
	      "                              [--at TIME]\n"
	      "       tfctl policy sign --key OWNER.pem FILE\n"
	      "       tfctl policy new --owner ORG --id ID [--topic FILTER]... [--out FILE]\n"
	      "       tfctl key generate --out FILE\n"
	      "       tfctl key public FILE\n"
	      "       tfctl verify (--key PEM... | --key-of BROKER PEM)... [--host H] [--port P]\n"
	      "                    [--topic FILTER] [--count N] [--username U --password P]\n"
	      "       tfctl trace --db DIR (message ID | recipients --policy ID [--since T]\n"
	      "                   [--until T] | find --topic TOPIC [--sha256 HEX] [--since T] |\n"
	      "                   verify [--key PEM]... | export [--since T] [--checkpoints] |\n"
	      "                   policy --policy ID)\n"
	      "       tfctl trace join [--key-of BROKER PEM]... [--checkpoints FILE]... ID\n"
	      "                        EXPORT...\n"
	      "       tfctl alerts --username U --password P [--host H] [--port P] [--since T]\n"
	      "                    [--follow]\n"
	      "       tfctl quarantine (list [--policy ID] | release FLOW | discard FLOW)\n"
	      "                        --username U --password P [--host H] [--port P]\n"
	      "       tfctl report impact ALERT-ID --db DIR [--window S] [--html FILE]\n"
	      "       tfctl console [--listen ADDR] [--http-port N] [--host H] [--port P]\n"
	      "                     [--cafile PEM] [--tls-cert PEM --tls-key PEM]\n"
	      "\n"
	      "Operator tool for the trustflow broker.\n"
	      "\n"
	      "  --help      print this text (tfctl <command> --help: more)\n"
	      "  --version   print the trustflow version\n"
	      "\n"
	      "Exit status: 0 success, 1 a check said no, 2 bad usage or unreadable input.\n"
	      "\n"
	      "Plugin options (plugin_opt_<name> <value> in mosquitto.conf):\n", out);
	for (int i = 0; i < tf_options_count(); i++) {
		if (tf_options_default(i) != NULL)
			fprintf(out, "  %-20s %s (default: %s)\n", tf_options_name(i), tf_options_doc(i),
				tf_options_default(i)[0] ? tf_options_default(i) : "none");
		else
			fprintf(out, "  %-20s %s (required)\n", tf_options_name(i), tf_options_doc(i));
	}
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("tfctl (trustflow) %s\n", tf_version());
		return TFCTL_OK;
	}
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		print_usage(stdout);
		return TFCTL_OK;
	}
	if (argc >= 2 && strcmp(argv[1], "policy") == 0)
		return tfctl_policy(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "key") == 0)
		return tfctl_key(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "verify") == 0)
		return tfctl_verify(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "trace") == 0)
		return tfctl_trace(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "alerts") == 0)
		return tfctl_alerts(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "quarantine") == 0)
		return tfctl_quarantine(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "report") == 0)
		return tfctl_report(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "console") == 0)
		return tfctl_console(argc - 2, argv + 2);
	if (argc < 2)
		fputs("tfctl: a command is required\n", stderr);
	else
		fprintf(stderr, "tfctl: unknown command '%s'\n", argv[1]);
	print_usage(stderr);
	return TFCTL_USAGE;
}
