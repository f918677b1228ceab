/*
 * peer.h - the peer part of the worker: TLS 1.3 connections to and from
 * the other hosts of the table (peer.c: framing, HELLO, PING; peer_net.c:
 * the listener, outbound connects, admission; peer_attest.c: the mutual
 * attestation on every connection and the rounds that attest each
 * neighbour). The migration engine above it rides on connections it asks
 * for; it hands the part its callbacks (peer_set_mig_ops) so the part
 * never calls the engine by name.
 */
#ifndef SMIGD_PEER_H
#define SMIGD_PEER_H

#include "buf.h"
#include "core/smigd.h"
#include "frame.h"
#include "ivt.h"
#include "tls.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct mig;
struct peer;

/* What carries a connection's migration: the migration engine's callbacks. */
struct peer_mig_ops {
	/* An outbound migration connection finished HELLO and attestation. */
	void (*ready)(struct mig *m);
	/* A MIG_* frame on connection p (m is p's migration, NULL if none yet). */
	void (*frame)(struct smigd *d, struct peer *p, struct mig *m, const struct smig_frame *f);
	/* The connection is gone (m must forget it). */
	void (*lost)(struct mig *m, const char *why);
	/* The connection's send buffer drained below the low-water mark. */
	void (*tx_space)(struct mig *m);
	/*
	 * An inbound session's first frame is CHANNEL (a parallel stream
	 * channel, not a session of its own): take it over (peer_take) or
	 * end it (peer_abort).
	 */
	void (*channel)(struct smigd *d, struct peer *p, const struct smig_frame *f);
};

struct peer_stats {
	uint64_t accepted, refused, handshakes_ok, handshakes_failed;
};

int peer_init(struct smigd *d);
void peer_set_mig_ops(struct smigd *d, const struct peer_mig_ops *ops);
int peer_listen(struct smigd *d);
void peer_close_all(struct smigd *d);
/*
 * After a new host table: closes every session whose certificate is now
 * revoked, or no longer the table's for that host.
 */
void peer_recheck(struct smigd *d);
void peer_free_all(struct smigd *d);
/*
 * Capacity on host for a VM this host means to send it (RESERVE): held
 * says whether host's admission control holds r's memory and vCPUs for it
 * (until that VM's PREPARE from here, a release, or r->ttl_s), why says
 * why not; answered is false when host said nothing (unreachable, timed
 * out, the session failed). With r->release, lets a hold go
 * and fn may be NULL. fn is called once, from the loop, unless the
 * session cannot even be opened: then < 0 and err.
 */
struct smig_reserve;
typedef void (*peer_resv_fn)(struct smigd *d, void *arg, const char *host, bool answered,
			     bool held, const char *why);
int peer_reserve(struct smigd *d, const char *host, const struct smig_reserve *r,
		 peer_resv_fn fn, void *arg, char *err, size_t errlen);
/* Starts a ping of host; the reply goes to ref (taken over). */
void peer_ping(struct smigd *d, const char *host, struct ctl_ref *ref);
size_t peer_count(const struct smigd *d);
const struct peer_stats *peer_stats(const struct smigd *d);

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
/*
 * Ends the session for a protocol violation: ERROR with code and why to
 * the peer, a security event, then close.
 */
__attribute__((format(printf, 3, 4)))
void peer_abort(struct peer *p, int code, const char *fmt, ...);
/* The same for what is no one's fault (busy, too late): no security event. */
__attribute__((format(printf, 3, 4)))
void peer_decline(struct peer *p, int code, const char *fmt, ...);
/* Detaches the migration and closes after what is queued has been sent. */
void peer_release(struct peer *p);
const char *peer_name(const struct peer *p);
const char *peer_cipher(const struct peer *p);
void peer_attach_mig(struct peer *p, struct mig *m);
/* The certificate the peer showed on this session, and where the session goes. */
const uint8_t *peer_fp(const struct peer *p);
int peer_remote(const struct peer *p, struct sockaddr_storage *sa, socklen_t *len);
/* An RFC 8446 exporter value of this session (smig_tls_export). */
int peer_export(const struct peer *p, const char *label, const uint8_t *ctx, size_t ctxlen,
		uint8_t *out, size_t outlen);
/* The session's TLS connection (for an exporter value), NULL before its handshake. */
const struct smig_tls_conn *peer_tls(const struct peer *p);
/*
 * Takes the connection over: its socket and TLS session are the caller's
 * (to free), the peer record goes once the loop is done with it.
 */
int peer_take(struct peer *p, int *fd, struct smig_tls_conn **tls);

/* peer_attest.c */
/* Opens a connection to attest host; the verdict goes to ref (may be NULL). */
void peer_attest(struct smigd *d, const char *host, struct ctl_ref *ref);
/*
 * Attests host and, when its evidence brings a valid TPM quote, proves
 * that the quoting AK lives in the TPM with the EK it presents
 * (ENROL_CHAL/ENROL_PROOF, tpmcred.h). ref gets the verdict and, once
 * proven, "tpm": {"ek", "ak"} (hex); a failed proof is an error.
 */
void peer_enrol(struct smigd *d, const char *host, struct ctl_ref *ref);
/*
 * While peer_enrol's reply is being delivered (in its done callback): the
 * evidence of that very session (authentic; NULL if not), which is what
 * may be enrolled - never what another session left in the host's state.
 */
const struct smig_evidence *peer_enrol_evidence(const struct smigd *d);
/*
 * Tells every other host of the table (and host itself) our verdict on
 * host, signed (VERDICT, report.h), each over a connection of its own.
 */
void peer_report(struct smigd *d, const char *host, const struct smig_verdict *v);
/* The peer's verdict on this connection, NULL until its evidence came. */
const struct smig_verdict *peer_verdict(const struct peer *p);
/* Attests every other host of the table every attestation.interval_s. */
int peer_attest_rounds(struct smigd *d);

#endif
