/*
 * main.c - the smig command: talks to smigd over the control socket, or
 * runs local helpers (pki). Global options: --socket PATH (or SMIG_SOCKET),
 * --json (machine-readable output), accepted anywhere before "--".
 */
#include "client.h"
#include "commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: smig [--socket PATH] [--json] COMMAND [ARGS]\n"
		"\n"
		"commands:\n"
		"  status                      this host's daemon: identity, listener, counters\n"
		"  hosts                       the host table and what is known of each host\n"
		"  ping HOST                   authenticate to HOST over the peer channel\n"
		"  migrate VM --to HOST [--downtime-ms N] [--max-bandwidth MiB/s]\n"
		"                              live-migrate VM to HOST through the encrypted channel\n"
		"  migrate --cancel VM         cancel a migration; the VM keeps running here\n"
		"  vm define FILE              define a VM from a JSON spec (docs/vmspec.md)\n"
		"  vm list                     the VMs on this host\n"
		"  vm start|stop|show|console|undefine NAME\n"
		"  policy check (--user U | --peer H) --action A [--vm VM] [--to HOST]\n"
		"                              how the policy answers, and the rule that decides\n"
		"  policy lint FILE            check a policy file; every problem with its line\n"
		"  audit show [--follow] [--last N]\n"
		"                              this host's audit records\n"
		"  audit verify [FILE --cert CERT [--head HEAD]]\n"
		"                              check the audit chain, checkpoints and head\n"
		"  ivt show                    the integrity validation table and this host's measurement\n"
		"  ivt enrol HOST [--golden NAME] [--trust trusted|attested]\n"
		"                              take HOST's current evidence as a golden set\n"
		"  evacuate [--dry-run]        move every VM to the best trusted host (or show the plan)\n"
		"  events [--follow] [--last N] security events: refused connections, TLS and\n"
		"                              attestation failures, denials, anomalies, bans\n"
		"  ids status                  bans in force, event counts, firewall settings\n"
		"  ids unban ADDR              lift a ban\n"
		"  pki init [DIR] [--days N]   create a cluster CA in DIR (default /etc/smig/pki)\n"
		"  pki csr [DIR] HOST [--ip ADDR]\n"
		"                              on HOST: its new key and a certificate request\n"
		"  pki sign [CADIR] CSR [--days N] [--out CERT]\n"
		"                              on the CA's host: check a request, make the certificate\n"
		"  pki issue [DIR] HOST [--ip ADDR] [--days N]\n"
		"                              key and certificate at once, where the CA is\n"
		"  pki fingerprint CERT        print a certificate's SHA-256 fingerprint\n"
		"  version, --version          print the version\n"
		"\n"
		"exit codes: 0 ok, 1 error, 2 usage, 3 denied by policy,\n"
		"            4 peer unreachable or untrusted, 5 migration failed\n");
}

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
		{ "events", cmd_events },
		{ "ids", cmd_ids },
		{ "version", cmd_version },
	};
	struct cli cli = { .socket = getenv("SMIG_SOCKET"), .timeout_ms = 60000 };

	if (parse_globals(&argc, argv, &cli) < 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cli.socket == NULL || cli.socket[0] == '\0')
		cli.socket = SMIG_DEFAULT_SOCKET;
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
		return cmd_version(&cli, argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmds[i].name, argv[1]) == 0)
			return cmds[i].fn(&cli, argc - 1, argv + 1);
	fprintf(stderr, "smig: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
