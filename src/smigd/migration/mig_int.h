/*
 * mig_int.h - what the files of the migration engine share: the migration
 * record and its helpers (migrate.c), the source side (mig_src.c,
 * mig_resolve.c) and the destination side (mig_dst.c), which the dispatch
 * (engine.c) stands on. Not for use outside the engine.
 */
#ifndef SMIGD_MIG_INT_H
#define SMIGD_MIG_INT_H

#include "buf.h"
#include "core/smigd.h"
#include "frame.h"
#include "migproto.h"
#include "migration/migrate.h"
#include "peer/peer.h"
#include "policy/authz.h"
#include "qmp.h"
#include "trust/trust.h"
#include "vm/vm.h"

#include <stdbool.h>
#include <stdint.h>

#define MIG_CHUNK ((size_t)256 * 1024)
/*
 * Flow control. What waits in smigd's buffers when the source pauses the VM
 * has to cross before the destination can run it, so the buffers stay
 * small: the source stops reading QEMU above MIG_TX_HIGH unsent, the
 * destination stops reading the channel above MIG_PEND_HIGH not yet taken
 * by its QEMU and resumes below MIG_PEND_LOW.
 */
#define MIG_TX_HIGH ((size_t)512 * 1024)
#define MIG_PEND_HIGH ((size_t)512 * 1024)
#define MIG_PEND_LOW ((size_t)128 * 1024)
#define MIG_PROGRESS_MS 100
#define MIG_DOWNTIME_MS 300 /* the guest-visible budget without --downtime-ms */
#define MIG_CHAN_GRACE_MS 500 /* source: a channel closed, the destination's ABORT may follow */
#define AGENT_RETRY_MS 500 /* destination: a silent guest agent is pinged again after this */
#define MIG_FULL_RETRY_MS 2000 /* source: a full destination is asked again after this, ... */
#define MIG_FULL_WAIT_S 600    /* ... for at most this long */
#define MIG_COMPLETION_MAX_S 604800 /* a policy's completion timeout, at most (7 days) */
/* Device and vTPM state on top of limits.stream_passes passes over the memory. */
#define MIG_STATE_SLACK ((uint64_t)64 << 20)

/* The engine's state (d->migs): the migrations, both ways, and the serial of the next. */
struct migs {
	struct mig *head;
	struct loop_timer *dequeue_t; /* a migration left: the next queued one may begin */
	uint64_t next_id;
	json_t *history;  /* the migrations that ended, oldest first (mig_hist.c) */
	size_t hist_disk; /* records in the file, which is rewritten past twice the bound */
};

/* The guest agent's word, for a VM whose spec has one. */
enum mig_agent {
	MA_NONE,     /* no agent port, or the source did not hear it */
	MA_PENDING,  /* source: pinged, no word yet */
	MA_ANSWERED, /* source: before PREPARE; destination: after resume */
	MA_SILENT,   /* source: no answer before PREPARE */
	MA_EXPECTED, /* destination: answered on the source, not yet here */
};

struct mig {
	struct mig *next;
	struct smigd *d;
	struct smig_migproto p; /* role, id, state, stream bytes */
	uint64_t serial;        /* this process's own handle (mig_cb_new), never reused */
	char ids[SMIG_MIG_ID_STR_LEN]; /* p.id in hex once known (mig_id_set), else "-" */
	char vm_name[SMIG_NAME_MAX + 1];
	char peer_host[SMIG_NAME_MAX + 1];
	struct vm *vm;
	struct peer *peer;
	int fd; /* our end of the socketpair with QEMU */
	int trace_fd; /* test builds: the frame trace (SMIG_TRACE_DIR) */
	struct loop_watch *w;
	bool reading_paused;
	struct smig_buf pend; /* destination: stream bytes QEMU has not taken yet */
	bool qemu_done;
	bool qemu_began; /* source: QEMU reported this migration's "setup" */
	const char *accel; /* source: "kvm" or "tcg" once QEMU said (query-kvm), else NULL */
	bool eof;
	struct mig_opts opts;
	struct ctl_ref ref;             /* who started it (smig migrate, an evacuation) */
	struct ctl_followers watchers;  /* source: smig migrate watch, from any terminal */
	json_t *last_progress;          /* ... the last report, the first a watcher gets */
	struct loop_timer *timer;
	/* t_prepare: PREPARE sent, i.e. connected and both sides attested */
	uint64_t t_start, t_prepare, t_prepared, t_stop, t_commit, t_end;
	uint64_t last_activity_ms; /* last frame or stream byte moved */
	uint64_t passes, qemu_downtime_ms, ram_total, dirty_rate; /* dirty_rate: pages/s */
	size_t esc_step;          /* source: the downtime steps taken (migration.downtime_steps_ms) */
	int64_t esc_downtime_ms;  /* ... and the limit the last one set (0: none yet) */
	bool esc_throttle;        /* ... and whether the guest is throttled as one of them */
	int throttle_pct;         /* QEMU's CPU throttle, its last query-migrate */
	uint64_t ram_remaining, page_size; /* QEMU's last query-migrate */
	double mbps;
	char cipher[64];
	char why[256]; /* a failure to report from a later turn of the loop */
	char rule[SMIG_RULE_MAX]; /* destination: the binding that let the peer in */
	char trust[16];           /* source: the target's verdict in this session */
	uint64_t settle_by_ms;    /* MS_SETTLING: the watch (dst) or the wait (src) ends */
	uint64_t t_resumed;       /* destination: cont answered */
	uint32_t mem_mib;
	struct agent_ping *agent_ping; /* a guest agent ping in flight */
	enum mig_agent agent;
	bool peer_waits_agent;         /* source: connected before the agent's word */
	uint64_t agent_next_ms;        /* destination: when to ping again */
	char agent_why[160];           /* the last ping's failure */
	double agent_ms;               /* destination: answered this long after resume */
	uint64_t resolve_next_ms;      /* MS_RESOLVING: when to ask again */
	bool src_gone;                 /* source: QEMU died after completing its stream */
	bool handover_asked;           /* source: its owner record may have gone to the destination */
	uint64_t t_handover;           /* ... asked then (loop_now_ns) */
	struct loop_timer *handover_t; /* source, its QEMU gone: the handover asked again */
	/* source: the fleet's migration queue (policy limits.max_cluster_migrations) */
	bool fleet_ticket;             /* a ticket was asked for: it goes when this ends */
	bool fleet_wait;               /* waits for its place in the fleet's queue */
	bool fleet_admitted;           /* ... and has it */
	struct loop_timer *fleet_t;    /* its place asked again */
	enum stats_outcome outcome;    /* how it ended, for the metrics (failed until it commits) */
	char reason[256];              /* why it failed or was cancelled (the first word of it) */
	int64_t wall_start_ms;         /* when it began, by the host's clock */
	size_t nchan;                  /* parallel stream channels (0: the main stream alone) */
	struct mig_chans *chans;       /* ... their threads and sessions (mig_chan.c) */
	uint64_t chan_bytes;           /* ... the bytes they had moved at the last tick */
	struct loop_timer *chan_timer; /* source: a channel failed, the destination's word may follow */
	/* source: the migration policy that chose its settings (migration.policies) */
	char policy[SMIG_NAME_MAX + 1]; /* "" none matched */
	int completion_s;               /* streaming longer fails or escalates (0: never) */
	int progress_timeout_s;         /* no new low of what is left to send for this long (0: none) */
	bool escalate_on_timeout;       /* a timeout takes the next step; after the last it fails */
	int auto_converge;              /* throttling allowed: 1, 0, -1 as the host has it */
	bool progress_seen;             /* a pass began since the progress timeout (re)started ... */
	uint64_t progress_low;          /* ... the least memory a pass began with ... */
	uint64_t progress_at_ms;        /* ... and when (loop_now_ms) */
	uint64_t timeout_from_ms;       /* the completion timeout counts from here (a step restarts it) */
	bool queued;                    /* waits for migration.parallel_outbound; not begun */
	uint64_t queued_at_ms;          /* ... since (loop_now_ms) */
	uint64_t queued_ms;             /* how long it waited, in all */
	uint64_t full_since_ms;         /* the destination first said it was full (0: never) */
	bool ended_by_peer;             /* the other side's ABORT ended it (the history's failed_by) */
	bool no_record;                 /* neither history nor metrics: a PREPARE refused as full */
};


/* mig_chan.c: parallel stream channels (QEMU multifd), a thread and a TLS session each */
struct mig_chans;
struct smig_mig_channel;
struct mig_chan_ops {
	/* source: QEMU's main stream connected (fd is the migration's now); false: m is gone */
	bool (*main)(struct mig *m, int fd);
	/* a channel failed; attacked: its records failed their check (damaged, cut, forged) */
	void (*failed)(struct mig *m, const char *why, bool attacked);
};
/*
 * Source, after PREPARED: n channels; QEMU's "migrate" URI in uri. QEMU's
 * main stream comes to ops->main, each channel gets a thread that opens
 * its own session to where the migration's goes.
 */
int mig_chans_src(struct mig *m, size_t n, const struct mig_chan_ops *ops, pid_t qemu_pid,
		  char *uri, size_t urilen, char *err, size_t errlen);
/*
 * Destination, at PREPARE: n channels; the listening socket to hand the
 * incoming QEMU (getfd, "tcp:fd:NAME") in *listen_fd (still ours).
 */
int mig_chans_dst(struct mig *m, size_t n, const struct mig_chan_ops *ops, int *listen_fd,
		  char *err, size_t errlen);
/* Destination, after migrate-incoming: the main stream's connection to QEMU (-1: errno). */
int mig_chans_dst_main(struct mig *m);
/* Destination: CHANNEL ch came as session p's first frame: check it, take p over, relay. */
int mig_chans_dst_take(struct mig *m, struct peer *p, const struct smig_mig_channel *ch,
		       char *why, size_t whylen);
uint64_t mig_chans_bytes(const struct mig *m);
/* Every byte of the migration's stream so far: the main stream's and the channels'. */
uint64_t mig_bytes(const struct mig *m);
/* Whether the channels moved bytes since last asked (m->chan_bytes, m->last_activity_ms). */
bool mig_chans_moved(struct mig *m);
json_t *mig_chans_json(const struct mig *m);
/* Stops and joins the threads, closes every socket (the migration's end). */
void mig_chans_free(struct mig *m);

/* mig_hist.c: the record of a migration that ends goes into the history */
void mig_history_add(struct mig *m);
void mig_history_free(struct smigd *d);

/* migrate.c */
/* The engine's list (d->migs), empty. */
int mig_list_init(struct smigd *d);
struct mig *mig_new(struct smigd *d, bool source);
/* A number never handed out before in this process (a migration's handle). */
uint64_t mig_next_serial(struct smigd *d);
/* The migration's id is known (the destination chose it, PREPARED brought it). */
void mig_id_set(struct mig *m, const struct smig_mig_id *id);
/*
 * Reports to whoever started m and whoever watches it: progress p (taken;
 * the id is added once known), the result (taken), or an error (the end).
 */
void mig_progress(struct mig *m, json_t *p);
void mig_reply_ok(struct mig *m, json_t *result);
void mig_reply_err(struct mig *m, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A migration left: queued ones begin while migration.parallel_outbound allows. */
void mig_src_dequeue(struct smigd *d);

/* The outbound migration job names: its VM, or its id (whole, or 8 digits or more of it). */
struct mig *mig_job(const struct smigd *d, const char *job);

/*
 * The one place a migration's state changes. A step the protocol does not
 * have (smig_migproto_to) is a bug that could leave the VM running twice or
 * nowhere: smigd logs it and aborts, and its restart resolves the VM.
 */
void mig_set_state(struct mig *m, enum smig_mst to);
/* Test builds: one record of the migration's trace (no-op otherwise). */
void mig_trace(struct mig *m, uint8_t op, const void *rec, size_t len);
void mig_trace_frame(struct mig *m, const struct smig_frame *f);
/* Ends the record: closes its socket and timer, releases its peer connection. */
void mig_free(struct mig *m);
void mig_close_fd(struct mig *m);
double mig_ms_between(uint64_t a_ns, uint64_t b_ns);
/* MIG_ABORT with code and why to the peer, if still connected. */
void mig_send_abort(struct mig *m, int code, const char *why);
/* A message carrying only the migration id (PREPARED, READY, COMMIT, COMMITTED). */
void mig_send_id(struct mig *m, uint8_t type);
/*
 * QMP replies may outlive a migration, so their callbacks carry the
 * migration's serial (mig_cb_new) and look it up again (mig_cb_take: NULL
 * once the migration is gone). The serial is this process's own: a peer
 * names nothing here.
 */
void *mig_cb_new(struct mig *m);
struct mig *mig_cb_take(void *arg);

/* mig_src.c */
/* The connection to the target finished HELLO and attestation. */
void mig_peer_ready(struct mig *m);
/* The connection's send buffer drained: read QEMU again. */
void mig_peer_tx_space(struct mig *m);
__attribute__((format(printf, 3, 4)))
void mig_src_fail(struct mig *m, int code, const char *fmt, ...);
void mig_src_frame(struct mig *m, const struct smig_frame *f);
void mig_src_commit_req(struct mig *m);
/* Its ticket in the fleet's queue goes (committed, or ended). */
void mig_src_fleet_done(struct mig *m);
void mig_src_progress_reply(void *arg, const struct smig_qmp_msg *r);
/* SETTLING, the connection gone: the VM left here; its fate is not known. */
void mig_src_settle_lost(struct mig *m, const char *why);
/* The end of a committed migration (guest: alive, crashed, unresponsive, unknown). */
void mig_src_finish(struct mig *m, const char *guest, const char *detail);
/* Resumes the source's copy (migrate_cancel, cont). */
void mig_src_resume(struct mig *m);

/* mig_resolve.c */
/* After a restart: COMMIT of vm (migration id) to host was unconfirmed (struct vm_mig_ops). */
int mig_resolve_adopted(struct smigd *d, struct vm *vm, const struct smig_mig_id *id,
			const char *host, bool gone);
/* COMMIT is out and the connection went: keep the copy paused, ask the destination. */
void mig_resolve_begin(struct mig *m, const char *why);
/* The query connection is ready: send QUERY. */
void mig_resolve_ask(struct mig *m);
/* A frame on the query connection. */
void mig_resolve_frame(struct mig *m, const struct smig_frame *f);

/* mig_dst.c */
__attribute__((format(printf, 4, 5)))
void mig_dst_abort(struct mig *m, bool send, int code, const char *fmt, ...);
void mig_dst_prepare(struct smigd *d, struct peer *p, const struct smig_frame *f);
/* CHANNEL as an inbound session's first frame: a parallel channel of a migration here. */
void mig_dst_channel(struct smigd *d, struct peer *p, const struct smig_frame *f);
/* QUERY from a source that lost its connection after COMMIT: answer OUTCOME. */
void mig_dst_query(struct smigd *d, struct peer *p, const struct smig_frame *f);
void mig_dst_frame(struct mig *m, const struct smig_frame *f);
void mig_dst_maybe_ready(struct mig *m);
/* Aborts from a later turn of the loop (when called back by the VM manager). */
void mig_dst_abort_later(void *arg);
/* SETTLING: the guest panicked or its QEMU died in the watch window. */
void mig_dst_guest_crashed(struct mig *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
