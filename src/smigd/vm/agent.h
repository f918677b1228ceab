/*
 * agent.h - one ping of a VM's QEMU guest agent: on a connection to the
 * agent's chardev socket (the warden makes it), send a sync, wait for its
 * answer or a timeout. The agent
 * answers from inside the guest, so an answer says the guest's kernel
 * schedules and its userspace runs. Runs on the daemon's event loop.
 */
#ifndef SMIGD_AGENT_H
#define SMIGD_AGENT_H

#include <stdbool.h>

#include "common/loop.h"

struct agent_ping;

/*
 * Called once, from the loop (never from agent_ping_start), unless the ping
 * is cancelled first: answered, and if not, why. The ping is freed after.
 */
typedef void (*agent_ping_fn)(void *arg, bool answered, const char *why);

/* On fd (taken over; -1: the connection failed, reported as such). NULL only when out of memory. */
struct agent_ping *agent_ping_start(struct loop *loop, int fd, int timeout_ms, agent_ping_fn cb,
				    void *arg);
/* Forgets a pending ping without calling back; p may be NULL. */
void agent_ping_cancel(struct agent_ping *p);

#endif
