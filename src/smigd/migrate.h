/*
 * migrate.h - the migration engine: both ends of a live migration through
 * the peer channel (DESIGN.md "Migration, end to end").
 *
 * Source: connect and authenticate the target, PREPARE with the VM spec
 * (and the vTPM key), hand QEMU one end of a socketpair (getfd + migrate
 * fd:), relay the stream as DATA frames, then the two-phase switch-over:
 * COMMIT_REQ -> READY -> COMMIT -> COMMITTED. Destination: start QEMU
 * with -incoming defer from the validated spec, feed it the DATA, check it
 * holds the whole state, resume it on COMMIT.
 *
 * Invariant: the VM runs in exactly one place. Before COMMIT every failure
 * resumes the source and discards the destination's copy; after COMMIT
 * without COMMITTED the source stays paused until resolved.
 */
#ifndef SMIGD_MIGRATE_H
#define SMIGD_MIGRATE_H

#include "frame.h"
#include "qmp.h"
#include "smigd.h"

#include <stdbool.h>

struct mig;
struct vm;

struct mig_opts {
	int downtime_ms;   /* QEMU downtime-limit; 0 keeps QEMU's default */
	int max_bandwidth; /* MiB/s; 0 means unlimited */
};

/* smig migrate: the reply (and progress) go to ref. */
void mig_start(struct smigd *d, const char *vm, const char *to, const struct mig_opts *o,
	       struct ctl_ref *ref);
void mig_cancel(struct smigd *d, const char *vm, struct ctl_ref *ref);
void mig_free_all(struct smigd *d);
/* Migrations running on this host, either way. */
int mig_count(const struct smigd *d);
/* What vm show says of a VM's migration: direction, peer, id, state. */
json_t *mig_json(const struct mig *m);
/* Forgets a migration that is resolving, without acting on it (vm resume --force). */
void mig_abandon(struct mig *m);
/* Whether m lost its answer to COMMIT and asks the destination how it ended. */
bool mig_resolving(const struct mig *m);
/* The host an outbound migration of vm goes to, or NULL. */
const char *mig_target(const struct smigd *d, const char *vm);

/* --- called by peer.c --- */
/* An outbound migration connection finished its HELLO exchange. */
void mig_peer_ready(struct mig *m);
/* A MIG_* frame on connection p (m is p's migration, NULL if none yet). */
void mig_peer_frame(struct smigd *d, struct peer *p, struct mig *m, const struct smig_frame *f);
/* The connection is gone (m must forget it). */
void mig_peer_lost(struct mig *m, const char *why);
/* The connection's send buffer drained below the low-water mark. */
void mig_peer_tx_space(struct mig *m);

/* --- called by vm.c --- */
void mig_vm_event(struct mig *m, const struct smig_qmp_msg *ev);
void mig_vm_exited(struct mig *m);
/*
 * After a restart: vm's directory says COMMIT of migration id went to host
 * unconfirmed. Keeps it paused and asks host how it ended (mig_resolve.c);
 * gone: its QEMU here is dead or not paused, so it cannot be resumed.
 */
int mig_resolve_adopted(struct smigd *d, struct vm *vm, uint64_t id, const char *host,
			bool gone);

#endif
