/*
 * client.h - the CLI's side of the control socket: one request, one reply.
 */
#ifndef SMIG_CLIENT_H
#define SMIG_CLIENT_H

#include <jansson.h>

/* Exit codes of the smig command (documented in docs/cli.md). */
enum smig_exit {
	EXIT_OK = 0,
	EXIT_ERROR = 1,
	EXIT_USAGE = 2,
	EXIT_DENIED = 3,
	EXIT_PEER = 4,
	EXIT_MIGRATION = 5,
	EXIT_DETACHED = 130, /* Ctrl-C on smig migrate (watch): the migration goes on */
};

/* Default control socket when neither --socket nor SMIG_SOCKET is given. */
#define SMIG_DEFAULT_SOCKET "/run/smig/smigd.sock"

/*
 * Sends {"id":1,"cmd":cmd,"args":args} (args may be NULL; stolen) and waits
 * up to timeout_ms (< 0: for ever) for the reply, stored in *reply. Returns 0 or an exit
 * code with a message printed to stderr.
 */
int client_call(const char *socket_path, const char *cmd, json_t *args, int timeout_ms,
		json_t **reply);
/*
 * Same, for requests that report progress first: each {"progress": P}
 * line before the reply is handed to progress(arg, P).
 */
typedef void (*client_progress_fn)(void *arg, const json_t *progress);
int client_call_progress(const char *socket_path, const char *cmd, json_t *args,
			 int timeout_ms, client_progress_fn progress, void *arg, json_t **reply);
/* Maps a daemon error code ("denied", "unreachable", ...) to an exit code. */
int client_exit_code(const char *code);

#endif
