/*
 * smigd.h - the worker's core: the state every part of the worker shares
 * (its config, loop, TLS context and host key, its link to the warden),
 * a pointer to each part's own state (opaque here: each part keeps its
 * state to itself and is reached through its face header), and the core
 * services every part may use: the host table and what is known of each
 * host (hosts.c), answers to whoever asked (reply.c), the audit log
 * (auditlog.c), security events (monitor.c) and the certificates' ends
 * (certs.c).
 *
 * The worker's parts stand on one another in this order, each using only
 * those below it (docs/architecture.md, "Layers"; scripts/lint.sh checks
 * the includes): core, vm, trust, policy, peer, migration, control,
 * worker. A lower part that must tell a higher one something calls a
 * function the higher part registered (an event), never the part itself.
 */
#ifndef SMIGD_H
#define SMIGD_H

#include "common/loop.h"
#include "config.h"
#include "core/priv.h"
#include "ids.h"
#include "ivt.h"
#include "policy.h"
#include "privmsg.h"
#include "tls.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

struct attest;
struct auditlog;
struct authz;
struct ctl;
struct evac;
struct hosts;
struct migs;
struct monitor;
struct peers;
struct priv;
struct reply;
struct vms;

/* What smigd remembers about each host of the table between contacts. */
#define HOST_REPORTS_MAX 8
struct host_state {
	char name[SMIG_NAME_MAX + 1];
	time_t last_ok;      /* last successful exchange, 0 if none */
	time_t last_fail;    /* last failure, 0 if none */
	double last_rtt_ms;
	char last_error[160];
	enum smig_trust trust; /* from its verdict; none until attested */
	struct smig_verdict verdict; /* the last attestation of it */
	time_t attested_at;          /* 0: never */
	struct smig_evidence evidence; /* its last authentic evidence */
	uint8_t evidence_fp[SMIG_FP_LEN]; /* the certificate of the session it came in */
	time_t cert_warned;                 /* its certificate's end was last logged then */
	uint8_t cert_warned_fp[SMIG_FP_LEN]; /* ... for this certificate */
	/* what its neighbours told us of it (VERDICT), the latest per neighbour */
	struct host_report {
		char by[SMIG_NAME_MAX + 1];
		char verdict[16];
		char reason[400];
		int64_t time_ms;
	} reports[HOST_REPORTS_MAX];
	size_t nreports;
};

/* --- stats.c: what smigd counts for its metrics (control/metrics.c serves them) --- */
enum stats_outcome { STATS_COMPLETED, STATS_FAILED, STATS_CANCELLED, STATS_OUTCOMES };
#define STATS_BUCKETS_MAX 12
/* A Prometheus histogram: counts per upper bound (not cumulative here), count, sum. */
struct stats_hist {
	uint64_t bucket[STATS_BUCKETS_MAX];
	uint64_t count;
	double sum;
};
struct smigd_stats {
	uint64_t migrations[2][STATS_OUTCOMES]; /* [0] outgoing, [1] incoming, by how they ended */
	uint64_t bytes[2];                      /* stream bytes moved, either way */
	uint64_t passes;                        /* memory passes of outgoing migrations */
	struct stats_hist duration;             /* completed outgoing migrations, s */
	struct stats_hist downtime;             /* ... the pause the guest saw, s */
	uint64_t evacuations;                   /* evacuations begun */
	uint64_t escalations;                   /* downtime steps outgoing migrations took */
	uint64_t gen; /* bumped whenever a migration begins or ends: the metrics page is stale */
};
extern const double stats_duration_bounds[];
extern const size_t stats_duration_nbounds;
extern const double stats_downtime_bounds[];
extern const size_t stats_downtime_nbounds;

struct smigd {
	/* shared by every part */
	struct smig_config cfg;
	struct loop *loop;
	struct smig_tls_ctx *tls;
	EVP_PKEY *host_key; /* the key of this host's certificate: TLS, checks of the audit log */
	struct priv *priv;  /* the warden: what needs root */
	pid_t warden_pid;
	time_t started;
	int sig_fd;
	struct loop_watch *sig_w;
	struct loop_timer *certs_t; /* the daily look at the certificates' ends (certs.c) */
	unsigned migrations; /* running, either way (the migration part keeps the count) */
	struct smigd_stats stats; /* counted by the parts, served by control/metrics.c */
	/* the core services' state */
	struct hosts *hosts;
	struct reply *reply;
	struct auditlog *audit;
	struct monitor *monitor;
	struct store *store;   /* the fleet store (store.c); NULL with store.backend files */
	/* each part's own state, reached only through its face */
	struct vms *vms;       /* vm/vm.h */
	struct attest *attest; /* trust/trust.h */
	struct authz *authz;   /* policy/authz.h */
	struct peers *peers;   /* peer/peer.h */
	struct migs *migs;     /* migration/migrate.h */
	struct evac *evac;     /* migration/migrate.h */
	struct evac *evac_dry; /* a dry run being planned (migration/migrate.h) */
	struct evac *placing;  /* placements being made (smig migrate --to auto) */
	struct ctl *ctl;       /* control/control.h */
	struct metrics *metrics; /* control/control.h */
};

#define CTL_GROUPS_MAX 64

/*
 * What the audit log records about a request when its reply is sent: the
 * decision was "allow" by rule; the outcome is the reply (ok or its error).
 */
struct ctl_audit {
	bool on;
	char actor[96];
	char action[32];
	char target[160];
	char rule[SMIG_RULE_MAX];
};

/*
 * Whoever waits for the outcome of an operation: a control client (by its
 * id; the reply goes out on its socket) or an internal caller (done). Any
 * part may answer it; none needs to know who asked.
 */
struct ctl_ref {
	uint64_t client_id; /* 0: nobody waits */
	json_t *id;         /* the request's id (owned reference) */
	/* An internal request: called with the reply instead of a client (may be NULL). */
	void (*done)(struct smigd *d, void *arg, const json_t *reply);
	void *done_arg;
	bool has_cred;
	struct ucred cred;  /* who asked */
	int ngroups;        /* their supplementary groups (SO_PEERGROUPS); -1: unknown */
	gid_t groups[CTL_GROUPS_MAX];
	struct ctl_audit audit;
};

/* True if someone waits for ref's reply (a client or an internal caller). */
static inline bool ctl_ref_waits(const struct ctl_ref *r)
{
	return r->client_id != 0 || r->done != NULL;
}

/* --- reply.c: answers to whoever asked --- */
/* Where answers to control clients go: the control part registers itself. */
struct reply_sink {
	bool (*alive)(void *arg, uint64_t client);   /* is that client still connected? */
	void (*send)(void *arg, uint64_t client, json_t *msg); /* msg borrowed */
	void *arg;
};
int reply_init(struct smigd *d);
void reply_free(struct smigd *d);
void reply_set_sink(struct smigd *d, const struct reply_sink *sink);
/* Sends {"id","ok":true,"result"} and releases ref; steals result. */
void ctl_reply_ok(struct smigd *d, struct ctl_ref *ref, json_t *result);
/* Sends {"id","ok":false,"error":{code,message}} and releases ref. */
void ctl_reply_err(struct smigd *d, struct ctl_ref *ref, const char *code,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Sends a progress line without ending the request. */
void ctl_progress(struct smigd *d, const struct ctl_ref *ref, json_t *progress);
/* True while the control client that sent ref's request is connected. */
bool ctl_ref_alive(struct smigd *d, const struct ctl_ref *ref);

/* Requests that stay open and get every new item as progress (--follow). */
struct ctl_follower;
struct ctl_followers {
	struct ctl_follower *head;
};
/* Sends items (a JSON array; borrowed) to ref as progress and keeps ref on list. */
void ctl_follow(struct smigd *d, struct ctl_followers *list, struct ctl_ref *ref,
		const json_t *items);
/* Sends item to every follower still connected (borrowed). */
void ctl_followers_send(struct smigd *d, struct ctl_followers *list, const json_t *item);
/* Answers every follower with a last reply and forgets them. */
void ctl_followers_end(struct smigd *d, struct ctl_followers *list);
/*
 * Answers every follower still connected with result (borrowed), or with
 * the error code and message when code is set, and forgets them all.
 */
void ctl_followers_reply(struct smigd *d, struct ctl_followers *list, const json_t *result,
			 const char *code, const char *message);

/* --- hosts.c: the host table, and what is known of each host --- */
/* Checks the table names this host with its own certificate, then takes it (nh emptied). */
int hosts_install(struct smigd *d, struct smig_hosts *nh, char *err, size_t errlen);
void hosts_free(struct smigd *d);
const struct smig_hosts *smigd_hosts(const struct smigd *d);
struct host_state *smigd_host_state(struct smigd *d, const char *name);
/* The state of the table's host i (smigd_hosts(d)->v[i]). */
struct host_state *smigd_host_state_at(struct smigd *d, size_t i);

/* --- store.c: the fleet store (store.backend etcd: membership under a lease) --- */
/* Reads the keys and opens the client (before the sandbox); store_start starts the thread (after it). */
int store_init(struct smigd *d);
int store_start(struct smigd *d);
void store_free(struct smigd *d);
/* {"backend": "files"}, or etcd's: reachable, registered, lease, endpoint, members, ... */
json_t *store_status_json(struct smigd *d);
/* The fleet's members as last read ({"members": [...], "read_ms_ago", "reachable"}); NULL with files. */
json_t *store_members_json(struct smigd *d);
/* What a host's record says it offers VMs: in all, and left after what runs, starts or is reserved. */
struct store_capacity {
	uint64_t memory_mib, memory_free_mib, vcpus, vcpus_free, vms;
};
/* This host's figures for its record: written when they change (the loop's, cheap when not). */
void store_set_capacity(struct smigd *d, const struct store_capacity *c);
/* A member of the fleet as last read: its record verified against the host table. */
struct store_member {
	char name[SMIG_NAME_MAX + 1];
	struct store_capacity cap; /* 0 where the record says none (an older smig's) */
};
/* The members as last read (*out, the caller frees it; NULL and 0 with files). */
size_t store_members(struct smigd *d, struct store_member **out);
/*
 * VM ownership (PREFIX/vms/NAME/owner, bound to this host's lease). An
 * answer: ok (claimed, or released), else the owner another host is when
 * answered, or error when the store could not say.
 */
struct store_owner {
	bool ok;
	bool answered;
	bool unknown;  /* a handover's outcome could not be read back: neither commit nor resume */
	char mig[SMIG_MIG_ID_STR_LEN]; /* a handover's: the migration that asked it */
	int64_t lease; /* claimed: the lease the record is under now */
	char owner[SMIG_NAME_MAX + 1];
	char error[256];
};
typedef void (*store_owner_fn)(struct smigd *d, const char *vm, const struct store_owner *r);
/*
 * Every VM of the fleet by its owner record: fn gets [{"vm", "host",
 * "since", "migration"}] (borrowed; NULL with error when unread; error
 * also when the list is cut short).
 */
typedef void (*store_list_fn)(struct smigd *d, void *arg, const json_t *vms, const char *error);
int store_list_vms(struct smigd *d, store_list_fn fn, void *arg);
/* Whether a fleet store keeps VM ownership (store.backend etcd). */
bool store_active(const struct smigd *d);
/*
 * Claims vm for this host: done if nobody owns it, this host did (under an
 * earlier lease), or from (may be NULL) does and, with mig (may be NULL),
 * was handed it by that migration; fn (may be NULL) gets the answer on the
 * loop. SMIG_ENOENT without a fleet store.
 */
int store_claim(struct smigd *d, const char *vm, const char *from, const char *mig,
		store_owner_fn fn);
/*
 * A migration's switch-over: vm's record, this host's, goes to host to
 * under to's lease (its record must carry the certificate pinned for it),
 * marked with the migration mig; one swap, before COMMIT. r->unknown: its
 * outcome could not be read back.
 */
int store_handover(struct smigd *d, const char *vm, const char *to, const char *mig,
		   store_owner_fn fn);
/*
 * Gives vm up if this host owns it, or if from (may be NULL) does by the
 * handover of this host's migration mig that failed before COMMIT.
 */
int store_release(struct smigd *d, const char *vm, const char *from, const char *mig,
		  store_owner_fn fn);
/*
 * The fleet's migration queue (policy limits.max_cluster_migrations): a
 * ticket per outbound migration, under this host's lease; the answer says
 * its place (evacuations first, then the first come) and whether it is
 * among the first cap. Asked again, the same ticket is looked at again.
 */
struct store_ticket {
	bool answered;
	bool admitted;
	int position, total; /* 1 first */
	char error[256];
};
typedef void (*store_ticket_fn)(struct smigd *d, void *arg, const struct store_ticket *t);
int store_ticket(struct smigd *d, uint64_t serial, const char *vm, const char *to,
		 bool evacuation, int cap, store_ticket_fn fn, void *arg);
/* The migration's ticket goes (it committed, or ended). */
int store_ticket_drop(struct smigd *d, uint64_t serial);
/*
 * This host's lease: SOUND, held with more than a third of its TTL left by
 * this host's clock (counted from before the renewal was asked), *lease
 * its id; GRACE, not held yet in the first third of a TTL since smigd
 * started; UNSOUND otherwise. *left_ms what is left. SOUND with files.
 */
enum store_lease_state { STORE_LEASE_SOUND, STORE_LEASE_GRACE, STORE_LEASE_UNSOUND };
enum store_lease_state store_lease(struct smigd *d, uint64_t *left_ms, int64_t *lease);
/* At stop: keep the lease (VMs run on, their records wait for the next smigd) or revoke it. */
void store_keep_lease(struct smigd *d, bool keep);

/* --- certs.c: how near the certificates are to their end (tls.warn_days) --- */
/* Logs this host's and the CA's certificate if near their end or past it. */
void certs_check(struct smigd *d);
/* certs_check now and once a day until certs_stop. */
int certs_start(struct smigd *d);
void certs_stop(struct smigd *d);
/* A peer's certificate after its handshake: logged at most once a day per host. */
void certs_peer(struct smigd *d, const char *host, const struct smig_cert_info *ci);

/* --- auditlog.c: the host's audit log (audit.h has the format; the warden writes it) --- */
int audit_open(struct smigd *d);
void audit_close(struct smigd *d);
/* The log's and its head's paths. */
const char *audit_path(const struct smigd *d);
const char *audit_head_path(const struct smigd *d);
/* Has the warden append one record (and a checkpoint when one is due); never fails the caller. */
void audit_write(struct smigd *d, const char *actor, const char *action, const char *target,
		 const char *decision, const char *rule, const char *outcome,
		 const char *detail);
/* False after a record could not be written (until one can again). */
/*
 * As audit_write, for what anyone can repeat at will: the first record per
 * key in a 10 s window is written, the rest are counted into one "N more
 * like it" record when the window ends (auditlog.c).
 */
void audit_write_folded(struct smigd *d, const char *key, const char *actor,
			const char *action, const char *target, const char *decision,
			const char *rule, const char *outcome, const char *detail);
bool audit_writable(struct smigd *d);
/* `audit show --follow`: ref gets every record from now on. */
void audit_follow(struct smigd *d, struct ctl_ref *ref, const json_t *records);

/*
 * A migration ended: out (this host was its source) or in, how, the stream
 * bytes it moved, its passes, and for a completed outgoing one its total
 * time and the guest's pause in seconds (downtime_s < 0: not measured).
 */
void stats_migration_end(struct smigd *d, bool out, enum stats_outcome o, uint64_t bytes,
			 uint64_t passes, double total_s, double downtime_s);

/* --- monitor.c: security events, firewall, IDS --- */
int monitor_init(struct smigd *d);
void monitor_free(struct smigd *d);
/* A security event: logged, kept for `smig events`, audited, fed to the IDS. */
__attribute__((format(printf, 5, 6)))
void sec_event(struct smigd *d, enum smig_sec_kind kind, const char *addr, const char *host,
	       const char *fmt, ...);
/*
 * May ip open a peer connection (host table, bans, rate, pending: how many
 * of its connections have not yet finished TLS and HELLO, total: how many
 * it holds)? Refusals are events.
 */
bool monitor_admit(struct smigd *d, const char *ip, size_t pending, size_t total);
/* The last n events (0: all kept), oldest first. */
json_t *monitor_events_json(struct smigd *d, size_t n);
/* `events --follow`: ref gets every event from now on. */
void monitor_follow(struct smigd *d, struct ctl_ref *ref, const json_t *events);
/* Bans in force, counts per kind, the firewall's settings. */
json_t *monitor_status_json(struct smigd *d);
/* Lifts addr's ban (in the kernel too); SMIG_ENOENT when it is not banned. */
int monitor_unban(struct smigd *d, const char *addr);

#endif
