/*
 * smigd.h - the worker's shared state and the entry points of its parts:
 * control.c (the unix control socket), peer.c (TLS peer connections),
 * daemon.c (start-up, the sandbox, signals, reload, stop). The worker runs
 * unprivileged and asks the warden (src/smigd/warden/) for what needs root
 * through priv.h.
 */
#ifndef SMIGD_H
#define SMIGD_H

#include "config.h"
#include "ids.h"
#include "ivt.h"
#include "policy.h"
#include "privmsg.h"
#include "loop.h"
#include "tls.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

struct attest;
struct auditlog;
struct ctl_client;
struct evac;
struct monitor;
struct mig;
struct peer;
struct priv;
struct vm;

/* What smigd remembers about each host of the table between contacts. */
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
};

struct smigd_stats {
	uint64_t peers_accepted;
	uint64_t peers_refused;
	uint64_t handshakes_ok;
	uint64_t handshakes_failed;
	uint64_t requests;
};

struct smigd {
	struct smig_config cfg;
	struct smig_hosts hosts;
	struct host_state *hstate; /* parallel to hosts.v */
	struct smig_tls_ctx *tls;
	struct loop *loop;
	int listen_fd;
	int ctl_fd;
	int sig_fd;
	struct loop_watch *listen_w;
	struct loop_watch *ctl_w;
	struct loop_watch *sig_w;
	struct peer *peers;
	size_t npeers;
	struct ctl_client *clients;
	struct vm *vms;
	struct mig *migs;
	uint64_t next_mig_id;
	uint64_t next_client_id;
	time_t started;
	struct smigd_stats stats;
	struct smig_policy *policy;
	struct auditlog *audit;
	EVP_PKEY *host_key; /* the key of this host's certificate: signs audit and evidence */
	struct attest *attest;
	struct evac *evac;
	struct monitor *monitor;
	struct priv *priv; /* the warden: what needs root */
	pid_t warden_pid;
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

/* The reply to a control request, sent when an operation finishes. */
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

/* control.c */
int ctl_open(struct smigd *d);
/*
 * A control client on fd (non-blocking) with the caller's credentials and
 * groups (ngroups -1: unknown, asked of NSS). The fd is the client's from
 * now on, on success.
 */
int ctl_client_add(struct smigd *d, int fd, const struct ucred *cred, const gid_t *groups,
		   int ngroups);
void ctl_close_all(struct smigd *d);
/* Sends {"id","ok":true,"result"} and releases ref; steals result. */
void ctl_reply_ok(struct smigd *d, struct ctl_ref *ref, json_t *result);
/* Sends {"id","ok":false,"error":{code,message}} and releases ref. */
void ctl_reply_err(struct smigd *d, struct ctl_ref *ref, const char *code,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* control_cmd.c */
struct smig_ctl_req;
/*
 * Runs req's command for ref's caller if the policy allows it (else the
 * refusal is the reply); false if there is no such command.
 */
bool ctl_dispatch(struct smigd *d, const struct smig_ctl_req *req, struct ctl_ref *ref);

/* peer.c, peer_net.c */
int peer_listen(struct smigd *d);
void peer_close_all(struct smigd *d);
/* Starts a ping of host; the reply goes to ref (taken over). */
void peer_ping(struct smigd *d, const char *host, struct ctl_ref *ref);
size_t peer_count(const struct smigd *d);
/* Inbound connections from ip that have not finished TLS and HELLO. */
size_t peer_pending_from(const struct smigd *d, const char *ip);

/* for migrate.c */
struct mig;
/* Opens an authenticated connection to host for migration m; NULL + err on failure. */
struct peer *peer_connect_mig(struct smigd *d, const char *host, struct mig *m, char *err,
			      size_t errlen);
struct smig_buf *peer_tx(struct peer *p);
size_t peer_tx_pending(const struct peer *p);
/* Wants the loop to flush the send buffer (never frees p synchronously). */
void peer_kick(struct peer *p);
/*
 * Writes what the send buffer holds right away, as far as the socket takes
 * it, then leaves the rest and any failure to the loop (never frees p).
 * For the switch-over's messages: the VM is paused while they travel.
 */
void peer_send_now(struct peer *p);
/* Stops or restarts reading frames from the peer (destination backpressure). */
void peer_rx_pause(struct peer *p, bool pause);
/* Detaches the migration and closes after what is queued has been sent. */
void peer_release(struct peer *p);
const char *peer_name(const struct peer *p);
const char *peer_cipher(const struct peer *p);
void peer_attach_mig(struct peer *p, struct mig *m);
/* Sends a control progress line without ending the request. */
void ctl_progress(struct smigd *d, const struct ctl_ref *ref, json_t *progress);

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

/* True while the control client that sent ref's request is connected. */
bool ctl_ref_alive(struct smigd *d, const struct ctl_ref *ref);

/* auditlog.c: the host's audit log (audit.h has the format; the warden writes it) */
int audit_open(struct smigd *d);
void audit_close(struct smigd *d);
/* The log's path (for messages). */
const char *audit_path(const struct smigd *d);
/* Has the warden append one record (and a checkpoint when one is due); never fails the caller. */
void audit_write(struct smigd *d, const char *actor, const char *action, const char *target,
		 const char *decision, const char *rule, const char *outcome,
		 const char *detail);
/* False after a record could not be written (until one can again). */
bool audit_writable(struct smigd *d);
void audit_cmd_show(struct smigd *d, const json_t *args, struct ctl_ref *ref);
void audit_cmd_verify(struct smigd *d, struct ctl_ref *ref);

/* authz.c: policy decisions for control and peer requests */
int authz_init(struct smigd *d);
/* The policy of cfg again, from text (the warden read the file). */
void authz_reload(struct smigd *d, const struct smig_config *cfg, const char *text);
void authz_free(struct smigd *d);
/*
 * Decides a control request. Allowed: fills ref->audit (so the outcome is
 * audited with the reply) and returns true. Denied: audits, answers
 * "denied" naming the rule, and returns false.
 */
bool authz_request(struct smigd *d, enum smig_action a, const char *vm, const char *target,
		   struct ctl_ref *ref);
/*
 * allowed[i]: may ref's caller do a to vms[i] (no audit; for filtering
 * lists). The caller is looked up once for all n.
 */
void authz_allows_each(struct smigd *d, const struct ctl_ref *ref, enum smig_action a,
		       const char *const *vms, size_t n, bool *allowed);
/* May peer push the VM of spec here? Audits a refusal. */
bool authz_peer_migrate(struct smigd *d, const char *peer, const struct smig_vmspec *spec,
			struct smig_policy_decision *out);
/* "user:alice(1000)" for ref's caller. */
void authz_actor(const struct ctl_ref *ref, char *out, size_t len);
/* Policy check for another user (smig policy check). */
void authz_cmd_check(struct smigd *d, const json_t *args, struct ctl_ref *ref);

/* attest.c: this host's self-check and its verdicts on others */
int attest_init(struct smigd *d);
void attest_free(struct smigd *d);
/* The warden's measurement (EV_MEASURED) and IVT (EV_IVT); priv.h handlers, arg is d. */
void attest_on_measured(void *arg, const struct smig_pm *ev);
void attest_on_ivt(void *arg, const struct smig_pm *ev);
/* Takes the IVT in text ("" for none); a bad one keeps the old table. */
int attest_set_ivt(struct smigd *d, const char *text);
const struct smig_verdict *attest_self(const struct smigd *d);
/* Signed evidence for a verifier's nonce, bound to binding (malloc'd text). */
int attest_evidence(struct smigd *d, const uint8_t *nonce, const uint8_t *binding,
		    char **text);
/* Checks a peer's evidence into v and records it in the host's state. */
void attest_check(struct smigd *d, const struct smig_attest_ctx *x, const char *text,
		  size_t len, struct smig_verdict *v);
json_t *attest_verdict_json(const struct smig_verdict *v, time_t at);
json_t *attest_self_json(const struct smigd *d);
const struct smig_ivt *attest_ivt(const struct smigd *d);
const struct smig_evidence *attest_measurement(const struct smigd *d);
/* False when the last measurement missed a component (unreadable file, TPM). */
bool attest_complete(const struct smigd *d);

/* peer_attest.c */
/* Opens a connection to attest host; the verdict goes to ref (may be NULL). */
void peer_attest(struct smigd *d, const char *host, struct ctl_ref *ref);
/* The peer's verdict on this connection, NULL until its evidence came. */
const struct smig_verdict *peer_verdict(const struct peer *p);

/* attest_cmd.c: control commands ivt.enrol, ivt.show, evacuate */
void attest_cmd_enrol(struct smigd *d, const json_t *args, struct ctl_ref *ref);
void attest_cmd_show(struct smigd *d, const json_t *args, struct ctl_ref *ref);
void attest_cmd_evacuate(struct smigd *d, const json_t *args, struct ctl_ref *ref);

/* evac.c: moving every VM off this host */
void evac_start(struct smigd *d, const char *why, struct ctl_ref *ref, bool dry_run);
void evac_free(struct smigd *d);

/* monitor.c: security events, firewall, IDS */
int monitor_init(struct smigd *d);
void monitor_free(struct smigd *d);
/* A security event: logged, kept for `smig events`, audited, fed to the IDS. */
__attribute__((format(printf, 5, 6)))
void sec_event(struct smigd *d, enum smig_sec_kind kind, const char *addr, const char *host,
	       const char *fmt, ...);
/* May ip open a peer connection (host table, bans, rate)? Refusals are events. */
bool monitor_admit(struct smigd *d, const char *ip);
void monitor_cmd_events(struct smigd *d, const json_t *args, struct ctl_ref *ref);
void monitor_cmd_status(struct smigd *d, const json_t *args, struct ctl_ref *ref);
void monitor_cmd_unban(struct smigd *d, const json_t *args, struct ctl_ref *ref);

/* daemon.c */
struct host_state *smigd_host_state(struct smigd *d, const char *name);
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

#endif
