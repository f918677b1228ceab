/*
 * startcheck.h - what a start needs beyond a valid config (startcheck.c):
 * shared by both of smigd's processes.
 */
#ifndef SMIGD_STARTCHECK_H
#define SMIGD_STARTCHECK_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * 0 when every directory above state_dir lets others pass (the VMs' uids
 * go through to their directories); else which one does not, in err.
 */
int startcheck_state_dir(const char *state_dir, char *err, size_t errlen);
/* The configured worker user's uid and gid; else why in err (no such user, or root). */
int startcheck_worker_user(const struct smig_config *cfg, uid_t *uid, gid_t *gid, char *err,
			   size_t errlen);

/*
 * The control socket's path fits a socket address and its directory is
 * one or can be made (create: make it now, root's, 0755: /run/smig is gone
 * after every boot); else why in err.
 */
int startcheck_control_dir(const struct smig_config *cfg, bool create, char *err,
			   size_t errlen);

#endif
