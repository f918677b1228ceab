/*
 * sandbox.h - the worker's privilege drop (sandbox.c): once it has opened,
 * as root, what it keeps (the TLS key, its listeners, its directories),
 * it becomes the worker user in a sandbox for the rest of its life.
 */
#ifndef SMIGD_SANDBOX_H
#define SMIGD_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SANDBOX_DIRS_MAX 6

struct sandbox_spec {
	uid_t uid;
	gid_t gid;
	pid_t parent; /* the warden: the worker dies with it (0: none) */
	uint16_t port;                       /* the one TCP port it may bind */
	int own_dirs[SANDBOX_DIRS_MAX];      /* directories it may change (descriptors) */
	size_t nown_dirs;
	int sock_dir; /* ... and one where it may also bind sockets (-1: none) */
	const char *read_dirs[SANDBOX_DIRS_MAX]; /* directories it may read (paths) */
	size_t nread_dirs;
};

/* Enters the sandbox for good; err says which step failed. */
int sandbox_enter(const struct sandbox_spec *s, char *err, size_t errlen);

#endif
