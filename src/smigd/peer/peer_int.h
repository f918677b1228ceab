/*
 * peer_int.h - what the parts of the peer channel share: the connection
 * record (peer.c: connections, framing, HELLO, PING) and the attestation
 * exchange (peer_attest.c). Not for use outside them.
 */
#ifndef SMIGD_PEER_INT_H
#define SMIGD_PEER_INT_H

#include "buf.h"
#include "evidence.h"
#include "frame.h"
#include "ivt.h"
#include "peer/peer.h"
#include "tls.h"

#include <stdbool.h>
#include <stdint.h>

#define PEER_CHUNK ((size_t)16 * 1024)
#define PEER_RX_MAX (SMIG_FRAME_HDR_LEN + SMIG_FRAME_MAX_PAYLOAD + PEER_CHUNK)
#define PEER_TX_MAX ((size_t)8 * 1024 * 1024)
#define PEER_IDLE_MS 120000
#define PEER_TX_LOW ((size_t)256 * 1024) /* below this a migration may queue more */
/*
 * The kernel's send buffer of connections this host opens, and receive
 * buffer of those it accepts (the kernel doubles both). Without a cap
 * loopback and LAN autotuning grow them to several MiB; the stream's tail
 * then waits in them when the source pauses the VM, and every such MiB is
 * downtime. 512 KiB each way still covers a 10 Gbit/s link with a 0.4 ms
 * round trip.
 */
#define PEER_SNDBUF (256 * 1024)
#define PEER_RCVBUF (256 * 1024)
#define PEER_CORK_MIN ((size_t)64 * 1024) /* more to send than this: cork (peer.c) */

enum peer_state { PS_CONNECTING, PS_HANDSHAKE, PS_HELLO, PS_READY };

/* The peer part's state. */
struct peers {
	struct peer *head;
	size_t n;
	int listen_fd;
	struct loop_watch *listen_w;
	struct peer_stats stats;
	struct peer_mig_ops mig;     /* the migration engine's callbacks */
	struct loop_timer *round;    /* the next round of attesting the neighbours */
	const struct smig_evidence *enrol_handoff; /* during an enrolment's reply only */
};

struct peer {
	struct peer *next;
	struct smigd *d;
	int fd;
	struct loop_watch *w;
	struct loop_timer *timer;
	struct smig_tls_conn *tls;
	bool outbound;
	bool closing; /* close once tx has drained */
	bool taken;   /* a channel's: its socket and session went to the migration */
	bool over_cap; /* in over limits.peers_per_host: only a migration's channel may stay */
	enum peer_state state;
	char addr[SMIG_ADDR_MAX + 8]; /* remote "address:port" for logs */
	char ip[SMIG_ADDR_MAX];       /* remote address alone, for the IDS */
	char name[SMIG_NAME_MAX + 1]; /* the peer host, once known */
	/* outbound: the certificates the table lists for it (two while it rotates) */
	uint8_t expect_fp[2][SMIG_FP_LEN];
	size_t nexpect;
	bool authenticated;           /* its certificate (fp) passed the host table */
	uint8_t fp[SMIG_FP_LEN];
	struct smig_buf rx;
	struct smig_buf tx;
	struct ctl_ref ref; /* the control request waiting on this peer */
	struct mig *mig;    /* the migration carried by this connection */
	bool for_mig;       /* outbound connection opened for a migration */
	bool rx_paused;     /* the migration cannot take more input right now */
	struct loop_timer *resume_timer;
	uint64_t nonce;
	uint64_t t_start;
	uint64_t t_connected;
	uint64_t t_secure;
	/* attestation: each side asks the other once the HELLOs are exchanged */
	bool for_attest;      /* outbound connection opened to attest the peer */
	bool att_asked;       /* our ATTEST_REQ is out */
	bool attested;        /* the peer's ATTEST was checked: verdict is set */
	bool att_answered;    /* the peer's ATTEST_REQ came: one per session */
	uint32_t evidence_id; /* the warden is quoting for it (0: not now) */
	bool job_waits;       /* attested, but our own ATTEST must go out first */
	bool for_enrol;       /* ... and to enrol its TPM: a credential follows its evidence */
	bool enrol_sent;      /* our ENROL_CHAL is out: its ENROL_PROOF ends the job */
	bool enrol_answered;  /* its ENROL_CHAL came: one per session */
	uint32_t activate_id; /* the warden is activating it (0: not now) */
	uint8_t enrol_cred[SMIG_ENROL_CRED_LEN];
	uint8_t enrol_ek[SMIG_EK_LEN], enrol_ak[SMIG_AK_LEN]; /* the keys it was made for */
	struct smig_evidence *enrol_ev; /* enrolment: this session's authentic evidence */
	struct smig_buf logs[2]; /* its boot log and IMA list, ahead of its ATTEST */
	char *report;            /* a connection to tell our verdict (VERDICT), then close */
	struct peer_resv *resv;  /* a connection to hold capacity there (RESERVE), then close */
	bool resv_seen;          /* its RESERVE came: one per session */
	bool report_seen;        /* its VERDICT came: one per session */
	bool pong_seen;       /* ping: the PONG came (the reply waits for both) */
	struct smig_ping pong;
	uint8_t att_nonce[SMIG_NONCE_LEN];
	struct smig_verdict verdict;
};


extern const char *const peer_state_names[];

/* peer.c */
/* Inbound connections from ip: those that have not finished TLS and HELLO, and all. */
void peer_conns_from(const struct smigd *d, const char *ip, size_t *pending, size_t *total);
void peer_free(struct peer *p);
void peer_ping_done(struct peer *p);
/* A connection on fd (taken over) in the daemon's list, watched by the loop. */
struct peer *peer_new(struct smigd *d, int fd, bool outbound, const char *addr);
/* (Re)starts p's timeout: ms from now, p fails in the state it is in. */
void peer_rearm(struct peer *p, uint64_t ms);
/* Records how the last contact with host name went (smig hosts). */
void peer_host_note(struct smigd *d, const char *name, bool ok, double rtt, const char *why);

/*
 * peer_resv.c: RESERVE and RESERVED. It calls nothing of the connection's:
 * what goes wrong comes back as an error and why, for the caller to abort.
 */
struct peer_resv;
struct peer_resv *peer_resv_new(const struct smig_reserve *r, peer_resv_fn fn, void *arg);
int peer_resv_frame(struct peer *p, const struct smig_frame *f, char *why, size_t whylen);
/* Attested: the session's RESERVE goes out. */
int peer_resv_send(struct peer *p);
/* The session ends (why) before its RESERVED came: the caller hears so. */
void peer_resv_end(struct peer *p, const char *why);

/* peer_net.c */
struct peer *peer_open(struct smigd *d, const char *host, const char **code, char *err,
		       size_t errlen);

/* peer_attest.c */
/* The HELLOs are exchanged: ask the peer for evidence. */
void peer_attest_ask(struct peer *p);
/* ATTEST_REQ, ATTEST, ENROL_CHAL, ENROL_PROOF and ATTEST_LOG frames. */
void peer_attest_frame(struct peer *p, const struct smig_frame *f);
/* Frees the logs a peer sent with its evidence. */
void peer_logs_drop(struct peer *p);

#endif
