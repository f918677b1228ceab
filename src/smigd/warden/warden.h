/*
 * warden.h - smigd's privileged parent (warden.c), seen from main.c: the
 * only entry points into code that runs as root for the daemon's whole
 * life.
 */
#ifndef SMIGD_WARDEN_H
#define SMIGD_WARDEN_H

#include "config.h"

#include <stdbool.h>

/* Runs smigd: the warden, and the worker it starts (and restarts). */
int warden_main(const char *config_path, bool foreground);
/*
 * The warden for a worker it did not start (fuzz_control's in-process
 * worker): serves fd until the other end closes; 0 or 1.
 */
int warden_serve(const char *config_path, int fd);
/* smigd --measure: prints this host's measurement for the IVT; 0 or 1. */
int warden_measure(const char *config_path);

#endif
