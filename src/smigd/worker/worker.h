/*
 * worker.h - the worker process (daemon.c): its start as root, its
 * sandbox, its loop's signals and reload, its stop. main.c runs it.
 */
#ifndef SMIGD_WORKER_H
#define SMIGD_WORKER_H

#include "core/smigd.h"

/*
 * Loads the configuration and starts every part of the worker, talking to
 * the warden on warden_fd (taken over); sandbox: then gives up root for
 * good (sandbox.h). check_only (warden_fd -1): only checks the
 * configuration and what a start would need. Undo with smigd_stop(), also
 * after a failure.
 */
int smigd_start(struct smigd *d, const char *config_path, bool check_only, int warden_fd,
		bool sandbox);
void smigd_stop(struct smigd *d);
/* The worker serves: tells the warden, which tells systemd (READY=1). */
void smigd_ready(struct smigd *d);

#endif
