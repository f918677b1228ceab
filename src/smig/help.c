/*
 * help.c - what smig says of itself: the command list (smig --help) and
 * each command's own page (smig CMD --help, smig help CMD), from one table.
 */
#include "client.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

struct help {
	const char *cmd;  /* "vm stop": the words that name it */
	const char *args; /* what follows them */
	const char *what; /* one line */
	const char *more; /* the rest of its page, or NULL */
};

static const struct help helps[] = {
	{ "status", "", "this host's daemon: identity, listener, certificate, counters", NULL },
	{ "hosts", "", "the host table and what is known of each host",
	  "Each host's attestation verdict, when and why, the last contact, its round\n"
	  "trip and the last error.\n" },
	{ "ping", "HOST", "authenticate to HOST over the peer channel",
	  "Mutual TLS, the pinned fingerprint, HELLO, mutual attestation and a\n"
	  "PING/PONG; prints the verdict, round trip, TLS version and cipher.\n"
	  "Exit 4 when HOST cannot be reached or is not trusted.\n" },
	{ "migrate", "VM --to HOST|auto [--downtime-ms N] [--max-bandwidth MiB/s]",
	  "live-migrate VM to HOST through the encrypted channel",
	  "Progress on a terminal, one JSON line per event with --json, the result last.\n"
	  "--to auto         smigd chooses the host, as an evacuation would, and says why\n"
	  "--downtime-ms N   the pause QEMU may take for its final pass (default 300)\n"
	  "--max-bandwidth   cap the stream, in MiB/s\n"
	  "The migration's id is printed once the destination has given it. Ctrl-C\n"
	  "detaches (exit 130): the migration goes on, smig migrate watch re-attaches.\n"
	  "smig migrate --cancel VM cancels before the commit; the VM keeps running here.\n"
	  "Exit 3 when a policy refuses, 4 when HOST cannot be reached or cannot host\n"
	  "the VM, 5 when the migration fails (the VM is still running here).\n" },
	{ "migrate watch", "VM|ID", "follow a migration leaving this host, from any terminal",
	  "VM is the migrating VM's name, ID the migration's id (or 8 digits or more of\n"
	  "it). Shows the progress smig migrate shows, then its end, with the same exit\n"
	  "codes. Ctrl-C detaches again (exit 130).\n" },
	{ "migrate cancel", "VM|ID", "cancel a migration leaving this host, from any terminal",
	  "Before the commit only; the VM keeps running here, and whoever started or\n"
	  "watches the migration hears that it was cancelled (exit 5 there).\n" },
	{ "migrate list", "[--last N] [--vm VM]", "the migrations that ended on this host",
	  "Either way, newest last: id, VM, direction, peer, outcome, start, total time,\n"
	  "the guest's pause and, for a failure, why. Kept across restarts of smigd (the\n"
	  "last 500). N defaults to 20; 0 lists all.\n" },
	{ "migrate show", "ID", "one migration of the history, with its phases",
	  "ID is the migration's id (smig migrate prints it) or a prefix of at least 8\n"
	  "digits that only one migration has. Prints each phase and how long it took,\n"
	  "bytes, passes, throughput, cipher, the peer's trust or the rule that let it\n"
	  "in, and why it failed.\n" },
	{ "vm define", "FILE", "define a VM from a JSON spec, or give a VM a new one",
	  "The file is checked here first (errors as file:line:column), then by smigd\n"
	  "against its catalogue; every problem is listed. A VM this host has takes the\n"
	  "new spec when it is shut off (what the file leaves unset, such as the machine\n"
	  "type and MACs, keeps its pinned value); while it runs only autostart and\n"
	  "shutdown_timeout_s may change. smig says which keys changed.\n" },
	{ "vm check", "FILE [--config CONF] [--incoming]",
	  "what this host would say of a VM spec, without smigd",
	  "CONF defaults to the installed smigd.json. --incoming checks it as a\n"
	  "migration's destination would. Exit 1 when there is any problem.\n" },
	{ "vm list", "[--all]", "the VMs on this host: state, memory, vCPUs, vTPM, trust",
	  "--all   every VM of the fleet by its owner record in the fleet store (etcd):\n"
	  "        its owner, since when, its state here, the migration that handed it\n" },
	{ "vm start", "NAME", "start the VM's QEMU (and swtpm); answers once it runs", NULL },
	{ "vm stop", "NAME [--force] [--timeout S]", "shut the guest down, then stop the VM",
	  "Presses the ACPI power button and waits for the guest to power off: S seconds,\n"
	  "else the spec's shutdown_timeout_s (default 60); then QEMU quits. --force\n"
	  "quits at once. A VM that is paused, crashed or starting is stopped at once.\n"
	  "Answers when QEMU has exited, saying how.\n" },
	{ "vm reboot", "NAME [--force] [--timeout S]", "reboot the guest in the same QEMU",
	  "Presses the ACPI power button; when the guest has shut down, QEMU resets it\n"
	  "and it starts again, with the same QEMU, vTPM and NICs. If it does not shut\n"
	  "down within S seconds (else the spec's shutdown_timeout_s) it runs on and\n"
	  "smig exits 1. --force resets it at once (also a paused or crashed guest).\n" },
	{ "vm show", "NAME", "one VM: its state, history, migration and what to do when stuck", NULL },
	{ "vm console", "NAME", "the last 200 lines of the VM's serial console", NULL },
	{ "vm resume", "NAME [--force]", "run a paused VM again",
	  "Refused while a migration's commit of it is unconfirmed, unless --force: the\n"
	  "destination is gone for good and does not run it (audited).\n" },
	{ "vm ping", "NAME", "ping the VM's guest agent", NULL },
	{ "vm undefine", "NAME", "forget a stopped VM and remove its state", NULL },
	{ "policy check", "(--user U | --peer HOST) --action A [--vm VM] [--to HOST]",
	  "how this host's policy answers a request, and the rule that decides",
	  "Exit 0 when allowed, 3 when denied.\n" },
	{ "policy lint", "FILE", "check a policy file; every problem with its line", NULL },
	{ "policy explain-migration", "VM [--to HOST]",
	  "the migration policy VM's migrations follow, and why",
	  "Of migration.policies (smigd.json) those whose vm_labels match VM's labels;\n"
	  "the most specific wins. Prints the settings it gives (bandwidth, downtime,\n"
	  "timeouts, what a timeout does, auto-converge) and the outbound queue.\n" },
	{ "audit show", "[--follow] [--last N]", "this host's audit records",
	  "The last 100 by default, --last 0 for all; --follow keeps printing new ones.\n" },
	{ "audit verify", "[FILE --cert CERT [--head HEAD]]",
	  "check the audit chain, checkpoints and signed head",
	  "Without FILE smigd checks its own log; with FILE a copy of a host's log is\n"
	  "checked here against that host's certificate. Exit 1 names the first bad\n"
	  "record of each kind of damage.\n" },
	{ "ivt show", "", "the integrity validation table and this host's measurement", NULL },
	{ "ivt enrol", "HOST [--golden NAME] [--trust trusted|attested] [--new-tpm] [--with NAME=SHA256]",
	  "take HOST's current evidence as a golden set, and enrol its TPM",
	  "With a host TPM, HOST's attestation key is proven to live in the TPM whose\n"
	  "endorsement key it presents (a credential only that TPM opens), and both keys\n"
	  "are enrolled; later quotes count only by that key. A host presenting another\n"
	  "TPM is refused unless --new-tpm says its TPM was replaced. --with NAME=SHA256\n"
	  "(repeatable) puts a value in the set that HOST does not measure yet: the\n"
	  "hash of an upgrade, enrolled before it is installed.\n" },
	{ "evacuate", "[--dry-run]", "move every VM to the best trusted host (or show the plan)",
	  "Exit 5 when a VM could not be moved.\n" },
	{ "maintenance on", "[HOST] [--reason TEXT]",
	  "maintenance mode: no VMs arrive, a failed self-check does not evacuate",
	  "For planned changes (an upgrade of QEMU, swtpm, smigd, its config): peers see\n"
	  "it and send no VM, and the host refuses any that comes. VMs may still leave\n"
	  "(smig evacuate, smig migrate). Kept across restarts. HOST, if given, must be\n"
	  "this host.\n" },
	{ "maintenance off", "[HOST]",
	  "end maintenance mode; a host that fails its own check now evacuates", NULL },
	{ "events", "[--follow] [--last N]",
	  "security events: refused connections, TLS and attestation failures, denials, bans",
	  NULL },
	{ "ids status", "", "bans in force, event counts, firewall settings", NULL },
	{ "ids unban", "ADDR", "lift a ban", NULL },
	{ "pki init", "[DIR] [--days N]", "create a cluster CA in DIR (ca.crt, ca.key 0600)",
	  "DIR defaults to /etc/smig/pki; an existing CA is never overwritten.\n" },
	{ "pki csr", "[DIR] HOST [--ip ADDR]",
	  "on HOST: its new key (it never leaves the host) and a certificate request",
	  "Writes DIR/HOST.key (0600) and DIR/HOST.csr, DIR defaulting to /etc/smig/pki,\n"
	  "and prints the request's digest for the CA's operator to compare. A renewal's\n"
	  "request goes in another directory (DIR/next).\n" },
	{ "pki sign", "[CADIR] CSR [--days N] [--out CERT]",
	  "on the CA's host: check a request and make its certificate",
	  "Only the request's DNS and IP names are copied; serverAuth and clientAuth.\n"
	  "CERT defaults to the request's name with .crt; prints the fingerprint the\n"
	  "host table wants (default 825 days).\n" },
	{ "pki issue", "[DIR] HOST [--ip ADDR] [--days N]",
	  "HOST's key and certificate at once, where the CA and the host share a machine", NULL },
	{ "pki fingerprint", "CERT", "print a certificate's SHA-256 fingerprint", NULL },
	{ "version", "", "print the version (also --version, -V)", NULL },
};

#define NHELPS (sizeof(helps) / sizeof(helps[0]))

static const char exit_codes[] =
	"exit codes: 0 ok, 1 error, 2 usage, 3 denied by policy,\n"
	"            4 peer unreachable or untrusted, 5 migration failed\n";

void cli_usage(FILE *f)
{
	fprintf(f, "usage: smig [--socket PATH] [--json] COMMAND [ARGS]\n"
		   "       smig COMMAND --help    what COMMAND takes and does\n\ncommands:\n");
	for (size_t i = 0; i < NHELPS; i++) {
		char line[128];

		snprintf(line, sizeof(line), "%s%s%s", helps[i].cmd, helps[i].args[0] ? " " : "",
			 helps[i].args);
		if (strlen(line) <= 27)
			fprintf(f, "  %-27s %s\n", line, helps[i].what);
		else
			fprintf(f, "  %s\n  %-27s %s\n", line, "", helps[i].what);
	}
	fprintf(f, "\n%s", exit_codes);
}

static void page(FILE *f, const struct help *h)
{
	fprintf(f, "usage: smig %s%s%s\n\n%s.\n", h->cmd, h->args[0] ? " " : "", h->args, h->what);
	if (h->more != NULL)
		fprintf(f, "\n%s", h->more);
	fprintf(f, "\nGlobal options: --socket PATH (or SMIG_SOCKET), --json.\n%s", exit_codes);
}

int cli_help(FILE *f, int argc, char **argv)
{
	char two[128] = "";
	size_t group = 0;

	if (argc == 0) {
		cli_usage(f);
		return EXIT_OK;
	}
	if (argc >= 2)
		snprintf(two, sizeof(two), "%s %s", argv[0], argv[1]);
	/* two words first: "migrate list" is not "migrate" */
	for (size_t i = 0; two[0] && i < NHELPS; i++)
		if (strcmp(helps[i].cmd, two) == 0) {
			page(f, &helps[i]);
			return EXIT_OK;
		}
	for (size_t i = 0; i < NHELPS; i++)
		if (strcmp(helps[i].cmd, argv[0]) == 0) {
			page(f, &helps[i]);
			return EXIT_OK;
		}
	/* "vm": its commands, a line each */
	for (size_t i = 0; i < NHELPS; i++) {
		size_t len = strlen(argv[0]);

		if (strncmp(helps[i].cmd, argv[0], len) != 0 || helps[i].cmd[len] != ' ')
			continue;
		if (group++ == 0 && argc >= 2 && argv[1][0] != '-')
			fprintf(stderr, "smig %s: no command \"%s\"; these are:\n", argv[0], argv[1]);
		fprintf(argc >= 2 && argv[1][0] != '-' ? stderr : f, "%s smig %s%s%s\n%-6s   %s\n",
			group == 1 ? "usage:" : "      ", helps[i].cmd, helps[i].args[0] ? " " : "",
			helps[i].args, "", helps[i].what);
	}
	if (group > 0)
		return argc >= 2 && argv[1][0] != '-' ? EXIT_USAGE : EXIT_OK;
	fprintf(stderr, "smig: unknown command \"%s\"\n", argv[0]);
	cli_usage(stderr);
	return EXIT_USAGE;
}
