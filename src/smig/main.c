/*
 * main.c - the smig command: talks to smigd over the control socket, or
 * runs local helpers (pki). Global options: --socket PATH (or SMIG_SOCKET),
 * --json (machine-readable output), --help/-h (the command's own page, not
 * the command), accepted anywhere before "--".
 */
#include "client.h"
#include "commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Pulls the global options out of argv, leaving the command and its args. */
static int parse_globals(int *argc, char **argv, struct cli *cli)
{
	int out = 1;
	bool rest = false;

	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];

		if (!rest && strcmp(a, "--") == 0) {
			rest = true;
		} else if (!rest && strcmp(a, "--json") == 0) {
			cli->json = true;
		} else if (!rest && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
			cli->help = true;
		} else if (!rest && strcmp(a, "--socket") == 0) {
			if (i + 1 >= *argc)
				return -1;
			cli->socket = argv[++i];
		} else if (!rest && strncmp(a, "--socket=", 9) == 0) {
			cli->socket = a + 9;
		} else {
			argv[out++] = argv[i];
		}
	}
	*argc = out;
	argv[out] = NULL;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct cli *cli, int argc, char **argv);
	} cmds[] = {
		{ "status", cmd_status },
		{ "hosts", cmd_hosts },
		{ "ping", cmd_ping },
		{ "pki", cmd_pki },
		{ "vm", cmd_vm },
		{ "migrate", cmd_migrate },
		{ "policy", cmd_policy },
		{ "audit", cmd_audit },
		{ "ivt", cmd_ivt },
		{ "evacuate", cmd_evacuate },
		{ "maintenance", cmd_maintenance },
		{ "events", cmd_events },
		{ "ids", cmd_ids },
		{ "version", cmd_version },
	};
	struct cli cli = { .socket = getenv("SMIG_SOCKET"), .timeout_ms = 60000 };

	if (parse_globals(&argc, argv, &cli) < 0) {
		cli_usage(stderr);
		return EXIT_USAGE;
	}
	if (cli.socket == NULL || cli.socket[0] == '\0')
		cli.socket = SMIG_DEFAULT_SOCKET;
	if (cli.help)
		return cli_help(stdout, argc - 1, argv + 1);
	if (argc < 2) {
		cli_usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "help") == 0)
		return cli_help(stdout, argc - 2, argv + 2);
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
		return cmd_version(&cli, argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmds[i].name, argv[1]) == 0)
			return cmds[i].fn(&cli, argc - 1, argv + 1);
	return cli_help(stderr, argc - 1, argv + 1);
}
