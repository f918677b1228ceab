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

#include "core/smigd.h"
#include "frame.h"
#include "qmp.h"

#include <stdbool.h>

struct mig;
struct vm;

struct mig_opts {
	int downtime_ms;   /* QEMU downtime-limit; 0 keeps QEMU's default */
	int max_bandwidth; /* MiB/s; 0 means unlimited */
	int channels;      /* streams: 1, 2-16 (multifd); 0: migration.channels */
	bool evacuation;   /* part of an evacuation of this host */
	bool held;         /* the destination holds capacity for it (peer RESERVE): let go if it fails */
};

/* The engine's state; it hands the peer and VM parts its callbacks. */
int mig_init(struct smigd *d);
void mig_free_all(struct smigd *d);
/* smig migrate: the reply (and progress) go to ref. */
void mig_start(struct smigd *d, const char *vm, const char *to, const struct mig_opts *o,
	       struct ctl_ref *ref);
/* smig migrate cancel: job is the VM's name or the migration's id (mig_target). */
void mig_cancel(struct smigd *d, const char *job, struct ctl_ref *ref);
/* What vm show says of a VM's migration: direction, peer, id, state. */
json_t *mig_json(const struct mig *m);
/* A migration not yet done, as the metrics show it. */
struct mig_active {
	char vm[SMIG_NAME_MAX + 1];
	char peer[SMIG_NAME_MAX + 1];
	bool out;           /* this host is its source */
	bool queued;        /* waits for migration.parallel_outbound */
	const char *state;  /* smig_mst_names, or "queued" */
	uint64_t bytes;     /* stream bytes moved so far */
	uint64_t ram_total; /* source: the guest's RAM, as QEMU counts it (0: not known yet) */
	uint64_t ram_remaining; /* source: what QEMU has still to send of it */
	uint64_t dirty_rate; /* source: bytes the guest dirties per second, QEMU's last figure */
	uint64_t passes;
};
/*
 * The history of the migrations that ended here, either way, kept across
 * restarts (STATE_DIR/worker/migrations.jsonl, the last 500): the last
 * `last` (0: all) of VM vm (NULL: any), oldest first; and one by its id.
 */
json_t *mig_history_json(struct smigd *d, size_t last, const char *vm);
/* id: the whole id or a prefix of at least 8 digits that only one record has; NULL: none. */
json_t *mig_history_find(struct smigd *d, const char *id);

/* Up to max migrations not yet done into out; how many there are in all. */
size_t mig_active(const struct smigd *d, struct mig_active *out, size_t max);
/* Forgets a migration that is resolving, without acting on it (vm resume --force). */
void mig_abandon(struct mig *m);
/* Whether m lost its answer to COMMIT and asks the destination how it ended. */
bool mig_resolving(const struct mig *m);
/*
 * The host the outbound migration job names goes to (its VM's name, or
 * its id, whole or 8 digits or more), or NULL; *vm (if vm) its VM's name.
 */
const char *mig_target(const struct smigd *d, const char *job, const char **vm);
/*
 * smig policy explain-migration: which migration policy VM name's
 * migrations follow and why, the settings that gives them (to: the target,
 * or NULL), and the outbound queue; NULL with err on a bad name.
 */
json_t *mig_explain(struct smigd *d, const char *name, const char *to, char *err, size_t errlen);
/*
 * Queued migrations begin, from a turn of the loop of its own, as far as
 * migration.parallel_outbound allows (a place came free, or the cap rose).
 */
void mig_dequeue_soon(struct smigd *d);
/* smig migrate watch: ref hears job's progress and its end, as the one who started it does. */
void mig_watch(struct smigd *d, const char *job, struct ctl_ref *ref);

/* evac.c: moving every VM off this host */
void evac_start(struct smigd *d, const char *why, struct ctl_ref *ref, bool dry_run);
bool evac_running(const struct smigd *d);
/* smig migrate VM --to auto: the host an evacuation would choose, then the migration (to ref). */
void evac_place(struct smigd *d, const char *vm, const struct mig_opts *o, struct ctl_ref *ref);
/* smig migrate cancel VM while its host is being chosen: true if it was (the answer went to ref). */
bool evac_place_cancel(struct smigd *d, const char *vm, struct ctl_ref *ref);
/* Lets host's hold for vm go (fire and forget: a hold also ends by itself). */
void mig_hold_release(struct smigd *d, const char *host, const char *vm);
void evac_free(struct smigd *d);

#endif
