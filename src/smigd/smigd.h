/*
 * smigd.h - the daemon's shared state and the entry points of its parts:
 * control.c (the unix control socket), peer.c (TLS peer connections),
 * main.c (start-up, signals, reload).
 */
#ifndef SMIGD_H
#define SMIGD_H

#include "config.h"
#include "loop.h"
#include "tls.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct ctl_client;
struct mig;
struct peer;
struct vm;

/* What smigd remembers about each host of the table between contacts. */
struct host_state {
	char name[SMIG_NAME_MAX + 1];
	time_t last_ok;      /* last successful exchange, 0 if none */
	time_t last_fail;    /* last failure, 0 if none */
	double last_rtt_ms;
	char last_error[160];
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
};

/* The reply to a control request, sent when an operation finishes. */
struct ctl_ref {
	uint64_t client_id; /* 0: nobody waits */
	json_t *id;         /* the request's id (owned reference) */
};

/* control.c */
int ctl_open(struct smigd *d);
void ctl_close_all(struct smigd *d);
/* Sends {"id","ok":true,"result"} and releases ref; steals result. */
void ctl_reply_ok(struct smigd *d, struct ctl_ref *ref, json_t *result);
/* Sends {"id","ok":false,"error":{code,message}} and releases ref. */
void ctl_reply_err(struct smigd *d, struct ctl_ref *ref, const char *code,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* peer.c */
int peer_listen(struct smigd *d);
void peer_close_all(struct smigd *d);
/* Starts a ping of host; the reply goes to ref (taken over). */
void peer_ping(struct smigd *d, const char *host, struct ctl_ref *ref);
size_t peer_count(const struct smigd *d);

/* for migrate.c */
struct mig;
/* Opens an authenticated connection to host for migration m; NULL + err on failure. */
struct peer *peer_connect_mig(struct smigd *d, const char *host, struct mig *m, char *err,
			      size_t errlen);
struct smig_buf *peer_tx(struct peer *p);
size_t peer_tx_pending(const struct peer *p);
/* Wants the loop to flush the send buffer (never frees p synchronously). */
void peer_kick(struct peer *p);
/* Stops or restarts reading frames from the peer (destination backpressure). */
void peer_rx_pause(struct peer *p, bool pause);
/* Detaches the migration and closes after what is queued has been sent. */
void peer_release(struct peer *p);
const char *peer_name(const struct peer *p);
const char *peer_cipher(const struct peer *p);
void peer_attach_mig(struct peer *p, struct mig *m);
/* Sends a control progress line without ending the request. */
void ctl_progress(struct smigd *d, const struct ctl_ref *ref, json_t *progress);

/* main.c */
struct host_state *smigd_host_state(struct smigd *d, const char *name);

#endif
