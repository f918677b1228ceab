/*
 * priv.h - the worker's side of its link to the warden (privmsg.h): it
 * asks for what needs root and takes the warden's notifications. A
 * request either waits for its reply (priv_call: short operations, the
 * worker's loop stands still meanwhile) or gets it later from the loop
 * (priv_call_async: starting a VM, a TPM quote). Notifications go to the
 * handler the daemon set for their type, so this transport calls no
 * subsystem above it by name.
 *
 * When the warden is gone the worker cannot do its job: it exits, and the
 * kernel would end it anyway (PR_SET_PDEATHSIG).
 */
#ifndef SMIGD_PRIV_H
#define SMIGD_PRIV_H

#include "common/loop.h"
#include "privmsg.h"

#include <stdint.h>

struct priv;

/* reply is NULL when the warden went away before answering. */
typedef void (*priv_reply_fn)(void *arg, const struct smig_pm *reply);
typedef void (*priv_event_fn)(void *arg, const struct smig_pm *event);

/* The link on socket fd (taken over), read from loop. */
int priv_open(struct loop *loop, int fd, struct priv **out);
void priv_close(struct priv *p);
/* Where notifications of type (SMIG_PM_EV_*) go. */
void priv_on(struct priv *p, uint16_t type, priv_event_fn fn, void *arg);
/*
 * Sends a request of type (the arguments are smig_pm_build's) and waits
 * for its reply in *r, whose strings live until the next call into priv.
 * SMIG_ETIMEDOUT after 30 s, SMIG_ECLOSED when the warden is gone.
 */
int priv_call(struct priv *p, struct smig_pm *r, int type, ...);
/* Sends a request (its id in *id, if not NULL); cb gets its reply from the loop (or NULL). */
int priv_call_async(struct priv *p, priv_reply_fn cb, void *arg, uint32_t *id, int type, ...);
/* A reply's status field as a SMIG_E code: 0, or negative. */
int priv_status(const struct smig_pm *r);

#endif
