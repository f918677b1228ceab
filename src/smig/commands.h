/*
 * commands.h - the smig subcommands; each gets argv starting at its own
 * name and returns an exit code (client.h).
 */
#ifndef SMIG_COMMANDS_H
#define SMIG_COMMANDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

struct cli {
	const char *socket;
	bool json;
	bool help; /* --help/-h: the command's page instead of the command */
	int timeout_ms;
};

int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_hosts(struct cli *cli, int argc, char **argv);
int cmd_ping(struct cli *cli, int argc, char **argv);
int cmd_pki(struct cli *cli, int argc, char **argv);
int cmd_vm(struct cli *cli, int argc, char **argv);
int cmd_migrate(struct cli *cli, int argc, char **argv);
int cmd_policy(struct cli *cli, int argc, char **argv);
int cmd_audit(struct cli *cli, int argc, char **argv);
int cmd_ivt(struct cli *cli, int argc, char **argv);
int cmd_evacuate(struct cli *cli, int argc, char **argv);
int cmd_maintenance(struct cli *cli, int argc, char **argv);
int cmd_events(struct cli *cli, int argc, char **argv);
int cmd_ids(struct cli *cli, int argc, char **argv);
int cmd_version(struct cli *cli, int argc, char **argv);

/*
 * Calls the daemon; on an error reply prints it (as JSON with --json) and
 * returns its exit code, else stores the result in *result and returns 0.
 */
int cli_request(struct cli *cli, const char *cmd, json_t *args, json_t **result);
/*
 * A listing that can be followed: parses [--follow] [--last N] (usage on
 * anything else), calls cmd, and hands every item to print (arg: the cli)
 * whether it comes as progress or in the reply's result[key].
 */
int cli_stream(struct cli *cli, const char *cmd, const char *key, int argc, char **argv,
	       const char *usage, void (*print)(void *arg, const json_t *item));
/* smig's command list, and the exit codes (help.c). */
void cli_usage(FILE *f);
/*
 * The page of the command that argv (argc words, from the command's name)
 * names, or the list of a group's commands ("vm"); EXIT_USAGE and the list
 * on stderr for a name that is no command.
 */
int cli_help(FILE *f, int argc, char **argv);
/* Prints v as one line of JSON on stdout. */
void cli_print_json(const json_t *v);

#endif
