/*
 * peer.c - TLS connections between smigd hosts.
 *
 * Inbound: accept, TLS 1.3 handshake (mutual X.509 against the cluster CA)
 * within the handshake timeout, then the peer's certificate fingerprint
 * must be in the host table and its HELLO must carry that host's name.
 * Outbound (smig ping): connect, handshake, the server's fingerprint must
 * equal the one pinned for the host we meant to reach, HELLO, PING/PONG.
 * Anything else on the wire ends the connection with a logged reason; one
 * bad peer never affects the next. The sockets themselves (listen, accept,
 * connect) are in peer_net.c.
 *
 *   CONNECTING -> HANDSHAKE -> HELLO -> READY
 */
#include "peer/peer_int.h"
#include "trust/trust.h"
#include "buf.h"
#include "error.h"
#include "frame.h"
#include "log.h"
#include "msg.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

const char *const peer_state_names[] = { "connecting", "handshake", "hello", "ready" };

size_t peer_count(const struct smigd *d)
{
	return d->peers ? d->peers->n : 0;
}

void peer_conns_from(const struct smigd *d, const char *ip, size_t *pending, size_t *total)
{
	*pending = *total = 0;
	for (const struct peer *p = d->peers->head; p; p = p->next) {
		if (p->outbound || strcmp(p->ip, ip) != 0)
			continue;
		*pending += p->state != PS_READY;
		*total += 1;
	}
}

/* Inbound connections of host other than p. */
static size_t conns_of_host(const struct smigd *d, const struct peer *p, const char *host)
{
	size_t n = 0;

	for (const struct peer *q = d->peers->head; q; q = q->next)
		n += q != p && !q->outbound && strcmp(q->name, host) == 0;
	return n;
}

/* limits.peers_per_host, never more than half of limits.max_peers (at least one). */
static size_t host_cap(const struct smigd *d)
{
	size_t half = (size_t)d->cfg.max_peers / 2;
	size_t cap = (size_t)d->cfg.peers_per_host;

	if (half < 1)
		half = 1;
	return cap < half ? cap : half;
}

/* Releases a peer already taken off the list. */
static void peer_destroy(struct peer *p)
{
	struct smigd *d = p->d;

	loop_watch_del(d->loop, p->w);
	loop_timer_cancel(d->loop, p->timer);
	loop_timer_cancel(d->loop, p->resume_timer);
	if (p->tls) {
		smig_tls_close(p->tls);
		smig_tls_conn_free(p->tls);
	}
	if (p->fd >= 0)
		close(p->fd);
	smig_buf_clear(&p->rx);
	smig_buf_clear(&p->tx);
	peer_logs_drop(p);
	free(p->report);
	free(p->resv); /* at shutdown: nobody to tell */
	free(p->enrol_ev);
	json_decref(p->ref.id);
	free(p);
}

static void peer_free_why(struct peer *p, const char *why)
{
	struct mig *m = p->mig;

	p->mig = NULL;
	if (m)
		p->d->peers->mig.lost(m, why);
	peer_resv_end(p, why);
}

void peer_free(struct peer *p)
{
	struct smigd *d = p->d;

	peer_free_why(p, "connection closed");
	for (struct peer **pp = &d->peers->head; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			d->peers->n--;
			break;
		}
	}
	peer_destroy(p);
}

void peer_host_note(struct smigd *d, const char *name, bool ok, double rtt, const char *why)
{
	struct host_state *hs = smigd_host_state(d, name);

	if (hs == NULL)
		return;
	if (ok) {
		hs->last_ok = time(NULL);
		hs->last_rtt_ms = rtt;
		hs->last_error[0] = '\0';
	} else {
		hs->last_fail = time(NULL);
		snprintf(hs->last_error, sizeof(hs->last_error), "%s", why);
	}
}

/*
 * Ends a connection that failed. code is the control error code for a
 * waiting request ("unreachable", "untrusted", "protocol").
 */
static void peer_fail(struct peer *p, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void peer_fail(struct peer *p, const char *code, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (p->outbound) {
		smig_warn("event=peer_failed direction=out host=%s addr=%s state=%s code=%s "
			  "reason=\"%s\"",
			  p->name, p->addr, peer_state_names[p->state], code, why);
		peer_host_note(p->d, p->name, false, 0, why);
	} else {
		smig_warn("event=peer_refused direction=in addr=%s host=%s state=%s reason=\"%s\"",
			  p->addr, p->name[0] ? p->name : "-", peer_state_names[p->state], why);
		p->d->peers->stats.refused++;
	}
	if (ctl_ref_waits(&p->ref))
		ctl_reply_err(p->d, &p->ref, code, "%s: %s", p->name[0] ? p->name : p->addr, why);
	peer_free_why(p, why);
	peer_free(p);
}

/* Why authenticated p may no longer talk to us under this host table, or NULL. */
static const char *peer_unwelcome(const struct smigd *d, const struct peer *p, char *why,
				  size_t len)
{
	const struct smig_revoked *r = smig_hosts_revoked(smigd_hosts(d), p->fp);
	const struct smig_host *h = smig_hosts_by_fp(smigd_hosts(d), p->fp);
	char fps[SMIG_FP_STR_LEN];

	smig_fp_format(p->fp, fps);
	if (r)
		snprintf(why, len, "certificate %s is revoked (host table): %s", fps, r->reason);
	else if (h == NULL || strcmp(h->name, p->name) != 0)
		snprintf(why, len, "certificate %s is no longer %s's in the host table", fps,
			 p->name);
	else
		return NULL;
	return why;
}

void peer_recheck(struct smigd *d)
{
	char why[256];
	struct peer *p;

again:
	for (p = d->peers ? d->peers->head : NULL; p; p = p->next) {
		if (!p->authenticated || peer_unwelcome(d, p, why, sizeof(why)) == NULL)
			continue;
		smig_warn("event=peer_dropped host=%s addr=%s reason=\"%s\"", p->name, p->addr,
			  why);
		/* its migration, if any, fails as on a lost link: before COMMIT the source resumes */
		peer_fail(p, "untrusted", "%s", why);
		goto again; /* the list changed under us */
	}
}

static void peer_timeout(void *arg)
{
	struct peer *p = arg;

	p->timer = NULL; /* the loop frees a timer after it fires */
	if (p->state == PS_READY && !p->outbound) {
		smig_info("event=peer_idle_close host=%s addr=%s", p->name, p->addr);
		peer_free(p);
		return;
	}
	peer_fail(p, p->state == PS_CONNECTING ? "unreachable" : "timeout",
		  "timed out in state %s", peer_state_names[p->state]);
}

void peer_rearm(struct peer *p, uint64_t ms)
{
	loop_timer_cancel(p->d->loop, p->timer);
	p->timer = NULL;
	(void)loop_timer_add(p->d->loop, ms, peer_timeout, p, &p->timer);
}

/*
 * TCP_CORK on or off. A migration stream leaves as runs of 16 KiB TLS
 * records, one write each; corked, the kernel sends them as full segments
 * and pushes the tail when uncorked, which saves the sending side about a
 * quarter of its CPU per byte (bench/relay.c).
 */
static void peer_cork(const struct peer *p, int on)
{
	(void)setsockopt(p->fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

/*
 * Writes tx through TLS until it is empty or the socket takes no more:
 * 0, SMIG_EAGAIN or the failure. A migration may queue more meanwhile.
 */
static int peer_write(struct peer *p)
{
	while (smig_buf_remaining(&p->tx) > 0) {
		size_t n;
		int rc = smig_tls_write(p->tls, smig_buf_peek(&p->tx), smig_buf_remaining(&p->tx),
					&n);

		if (rc < 0)
			return rc;
		(void)smig_buf_consume(&p->tx, n);
		if (p->mig && smig_buf_remaining(&p->tx) < PEER_TX_LOW)
			p->d->peers->mig.tx_space(p->mig);
	}
	return 0;
}

/* Writes what tx holds; false if the peer was freed. */
static bool peer_flush(struct peer *p)
{
	bool cork = smig_buf_remaining(&p->tx) > PEER_CORK_MIN;
	int rc;

	if (cork)
		peer_cork(p, 1);
	rc = peer_write(p);
	if (cork)
		peer_cork(p, 0);
	if (rc == SMIG_EAGAIN)
		return true;
	if (rc < 0) {
		peer_fail(p, "protocol", "%s", smig_tls_reason(p->tls));
		return false;
	}
	if (p->closing) {
		smig_debug("event=peer_closed host=%s addr=%s", p->name, p->addr);
		peer_free(p);
		return false;
	}
	return true;
}

static void peer_interest(struct peer *p)
{
	uint32_t ev = p->rx_paused ? 0 : EPOLLIN;

	if (p->state == PS_CONNECTING || smig_buf_remaining(&p->tx) > 0 ||
	    (p->tls && smig_tls_want_write(p->tls)))
		ev |= EPOLLOUT;
	(void)loop_watch_mod(p->d->loop, p->w, ev);
}

/* Queues an ERROR frame saying what fmt says, and closes after it; m gets it. */
__attribute__((format(printf, 4, 0)))
static void error_close(struct peer *p, int code, struct smig_error_msg *m, const char *fmt,
			va_list ap)
{
	m->code = (uint16_t)-code;
	vsnprintf(m->reason, sizeof(m->reason), fmt, ap);
	(void)smig_msg_put_error(&p->tx, m);
	p->closing = true;
}

/* Sends an ERROR frame and closes after it; for protocol violations. */
void peer_abort(struct peer *p, int code, const char *fmt, ...)
{
	struct smig_error_msg m;
	va_list ap;

	va_start(ap, fmt);
	error_close(p, code, &m, fmt, ap);
	va_end(ap);
	smig_warn("event=protocol_violation host=%s addr=%s state=%s reason=\"%s\"",
		  p->name[0] ? p->name : "-", p->addr, peer_state_names[p->state], m.reason);
	sec_event(p->d, SMIG_SEC_PROTOCOL_VIOLATION, p->ip, p->name, "%s", m.reason);
	if (ctl_ref_waits(&p->ref))
		ctl_reply_err(p->d, &p->ref, "protocol", "%s: %s", p->name, m.reason);
}

void peer_decline(struct peer *p, int code, const char *fmt, ...)
{
	struct smig_error_msg m;
	va_list ap;

	va_start(ap, fmt);
	error_close(p, code, &m, fmt, ap);
	va_end(ap);
	smig_info("event=peer_declined host=%s addr=%s reason=\"%s\"", p->name[0] ? p->name : "-",
		  p->addr, m.reason);
}

static int peer_send_hello(struct peer *p)
{
	struct smig_hello h = { .features = 0 };

	snprintf(h.host, sizeof(h.host), "%s", p->d->cfg.host);
	snprintf(h.version, sizeof(h.version), "%s", SMIG_VERSION);
	return smig_msg_put_hello(&p->tx, &h);
}

/* An outbound peer's certificate: one the table lists for the host we called? */
static bool peer_expected(const struct peer *p, const uint8_t *fp)
{
	for (size_t i = 0; i < p->nexpect; i++)
		if (CRYPTO_memcmp(fp, p->expect_fp[i], SMIG_FP_LEN) == 0)
			return true;
	return false;
}

/* The TLS handshake finished: establish who the peer is. */
static bool peer_secure(struct peer *p)
{
	struct smigd *d = p->d;
	size_t held;
	uint8_t fp[SMIG_FP_LEN];
	char fps[SMIG_FP_STR_LEN];
	const struct smig_host *h;
	const struct smig_revoked *r;
	struct smig_cert_info ci;

	p->t_secure = loop_now_ns();
	d->peers->stats.handshakes_ok++;
	if (smig_tls_peer_fp(p->tls, fp) < 0) {
		peer_fail(p, "untrusted", "peer presented no certificate");
		return false;
	}
	smig_fp_format(fp, fps);
	/* a revoked certificate is refused whoever presents it, either way */
	if ((r = smig_hosts_revoked(smigd_hosts(d), fp)) != NULL) {
		sec_event(d, SMIG_SEC_UNKNOWN_PEER, p->ip, p->outbound ? p->name : r->host,
			  "certificate %s%s%s is revoked: %s", fps, r->host[0] ? " of " : "",
			  r->host, r->reason);
		peer_fail(p, "untrusted", "certificate %s is revoked (host table): %s", fps,
			  r->reason);
		return false;
	}
	if (p->outbound) {
		if (!peer_expected(p, fp)) {
			sec_event(d, SMIG_SEC_UNKNOWN_PEER, p->ip, p->name,
				  "certificate %s is not the one pinned for %s", fps, p->name);
			peer_fail(p, "untrusted",
				  "certificate fingerprint %s does not match the host table", fps);
			return false;
		}
	} else {
		h = smig_hosts_by_fp(smigd_hosts(d), fp);
		if (h == NULL) {
			sec_event(d, SMIG_SEC_UNKNOWN_PEER, p->ip, NULL,
				  "certificate %s is not in the host table", fps);
			peer_fail(p, "untrusted",
				  "certificate fingerprint %s is not in the host table", fps);
			return false;
		}
		snprintf(p->name, sizeof(p->name), "%s", h->name);
		held = conns_of_host(d, p, h->name);
		if (held >= host_cap(d) + SMIG_CHAN_MAX) {
			/* one host, however authentic, may not take every slot */
			sec_event(d, SMIG_SEC_CONN_REFUSED, p->ip, h->name,
				  "%s already holds %zu connections (limits.peers_per_host)",
				  h->name, held);
			peer_fail(p, "protocol", "%s already holds %zu connections here", h->name,
				  held);
			return false;
		}
		/*
		 * over the cap only a parallel channel of a migration here may
		 * come in (its first frame says): a source opens them all at once
		 */
		p->over_cap = held >= host_cap(d);
	}
	memcpy(p->fp, fp, SMIG_FP_LEN);
	p->authenticated = true;
	if (smig_tls_peer_cert(p->tls, &ci) == 0)
		certs_peer(d, p->name, &ci);
	smig_info("event=peer_authenticated direction=%s host=%s addr=%s tls=%s cipher=%s",
		  p->outbound ? "out" : "in", p->name, p->addr, smig_tls_version(p->tls),
		  smig_tls_cipher(p->tls));
	p->state = PS_HELLO;
	if (p->outbound) {
		struct smig_ping ping = { .nonce = p->nonce, .sent_ns = loop_now_ns() };

		if (peer_send_hello(p) < 0 ||
		    (!p->for_mig && !p->for_attest && !p->resv &&
		     smig_msg_put_ping(&p->tx, SMIG_MSG_PING, &ping) < 0)) {
			peer_fail(p, "protocol", "cannot encode HELLO");
			return false;
		}
	}
	return true;
}

/* A ping is answered once its PONG came and the peer is attested. */
void peer_ping_done(struct peer *p)
{
	uint64_t now = loop_now_ns();
	double rtt = (double)(now - p->pong.sent_ns) / 1e6;
	char fps[SMIG_FP_STR_LEN];
	json_t *res;

	if (!p->pong_seen || !p->attested || p->ref.client_id == 0)
		return;
	if (p->verdict.kind == SMIG_VERDICT_UNTRUSTED) {
		ctl_reply_err(p->d, &p->ref, "untrusted", "%s is authenticated but untrusted: %s",
			      p->name, p->verdict.reason);
		(void)smig_msg_put_bye(&p->tx);
		p->closing = true;
		return;
	}
	smig_fp_format(p->fp, fps); /* the certificate it showed: during a rotation, which one */
	peer_host_note(p->d, p->name, true, rtt, NULL);
	smig_info("event=ping_ok host=%s rtt_ms=%.3f", p->name, rtt);
	res = json_pack("{s:s,s:s,s:f,s:f,s:f,s:f,s:s,s:s,s:s}", "host", p->name, "address",
			p->addr, "rtt_ms", rtt, "connect_ms",
			(double)(p->t_connected - p->t_start) / 1e6, "handshake_ms",
			(double)(p->t_secure - p->t_connected) / 1e6, "total_ms",
			(double)(now - p->t_start) / 1e6, "tls_version", smig_tls_version(p->tls),
			"cipher", smig_tls_cipher(p->tls), "fingerprint", fps);
	json_object_set_new(res, "attestation", attest_verdict_json(&p->verdict, time(NULL)));
	ctl_reply_ok(p->d, &p->ref, res);
	(void)smig_msg_put_bye(&p->tx);
	p->closing = true;
}

static void peer_on_hello(struct peer *p, const struct smig_frame *f)
{
	struct smig_hello h;
	int rc = smig_msg_get_hello(f, &h);

	if (rc < 0) {
		peer_abort(p, rc, "bad HELLO: %s", smig_strerror(rc));
		return;
	}
	if (strcmp(h.host, p->name) != 0) {
		peer_abort(p, SMIG_EAUTH, "HELLO names %s but the certificate belongs to %s",
			   h.host, p->name);
		return;
	}
	p->state = PS_READY;
	if (!p->outbound) {
		if (peer_send_hello(p) < 0) {
			peer_abort(p, SMIG_EPROTO, "cannot encode HELLO");
			return;
		}
		peer_rearm(p, PEER_IDLE_MS);
	}
	smig_debug("event=peer_ready host=%s version=%s", h.host, h.version);
	peer_attest_ask(p);
}

static void peer_on_frame(struct peer *p, const struct smig_frame *f)
{
	struct smig_ping ping;
	struct smig_error_msg em;
	int rc;

	if (p->state == PS_HELLO) {
		if (f->type == SMIG_MSG_MIG_CHANNEL && !p->outbound) {
			p->d->peers->mig.channel(p->d, p, f);
		} else if (p->over_cap) {
			sec_event(p->d, SMIG_SEC_CONN_REFUSED, p->ip, p->name,
				  "%s already holds %zu connections (limits.peers_per_host)",
				  p->name, host_cap(p->d));
			peer_decline(p, SMIG_EBUSY, "%s already holds %zu connections here", p->name,
				     host_cap(p->d));
		} else if (f->type != SMIG_MSG_HELLO)
			peer_abort(p, SMIG_EPROTO, "expected HELLO, got %s",
				   smig_frame_type_name(f->type));
		else
			peer_on_hello(p, f);
		return;
	}
	if (f->type >= SMIG_MSG_MIG_PREPARE && f->type <= SMIG_MSG_MIG_OUTCOME) {
		p->d->peers->mig.frame(p->d, p, p->mig, f);
		return;
	}
	if (f->type >= SMIG_MSG_ATTEST_REQ && f->type <= SMIG_MSG_VERDICT) {
		peer_attest_frame(p, f);
		return;
	}
	if (f->type == SMIG_MSG_RESERVE || f->type == SMIG_MSG_RESERVED) {
		char why[128];

		if (peer_resv_frame(p, f, why, sizeof(why)) < 0)
			peer_abort(p, SMIG_EPROTO, "%s", why);
		return;
	}
	switch (f->type) {
	case SMIG_MSG_PING:
		rc = smig_msg_get_ping(f, SMIG_MSG_PING, &ping);
		if (rc == 0 && !p->outbound)
			rc = smig_msg_put_ping(&p->tx, SMIG_MSG_PONG, &ping);
		else if (rc == 0)
			rc = SMIG_EPROTO;
		if (rc < 0)
			peer_abort(p, rc, "bad PING: %s", smig_strerror(rc));
		return;
	case SMIG_MSG_PONG:
		rc = smig_msg_get_ping(f, SMIG_MSG_PONG, &ping);
		if (rc < 0 || !p->outbound || ping.nonce != p->nonce || p->pong_seen) {
			peer_abort(p, SMIG_EPROTO, "unexpected or bad PONG");
			return;
		}
		p->pong_seen = true;
		p->pong = ping;
		peer_ping_done(p);
		return;
	case SMIG_MSG_BYE:
		p->closing = true;
		return;
	case SMIG_MSG_ERROR:
		if (smig_msg_get_error(f, &em) < 0) {
			em.code = 0;
			snprintf(em.reason, sizeof(em.reason), "a malformed ERROR");
		}
		smig_warn("event=peer_error host=%s code=%u reason=\"%s\"", p->name, em.code,
			  em.reason);
		peer_resv_end(p, em.reason);
		if (ctl_ref_waits(&p->ref)) /* e.g. a host refusing its enrolment */
			ctl_reply_err(p->d, &p->ref, p->for_enrol ? "untrusted" : "error",
				      "%s ended the session: %s", p->name, em.reason);
		p->closing = true;
		return;
	default:
		peer_abort(p, SMIG_EPROTO, "unexpected %s in state %s",
			   smig_frame_type_name(f->type), peer_state_names[p->state]);
	}
}

/* Handles the complete frames already received. */
static void peer_frames(struct peer *p)
{
	struct smig_frame f;
	int rc = SMIG_EAGAIN;

	while (!p->closing && !p->rx_paused && (rc = smig_frame_next(&p->rx, &f)) == 0)
		peer_on_frame(p, &f);
	if (rc < 0 && rc != SMIG_EAGAIN && !p->closing)
		peer_abort(p, rc, "bad frame: %s", smig_strerror(rc));
}

/* Reads and handles frames; false if the peer was freed. */
static bool peer_read(struct peer *p)
{
	peer_frames(p);
	for (;;) {
		uint8_t *dst;
		size_t n;
		int rc;

		if (p->closing || p->rx_paused)
			return true; /* our last word is said, or the migration is full */
		if (smig_buf_reserve(&p->rx, PEER_CHUNK, &dst) < 0) {
			peer_fail(p, "protocol", "receive buffer overflow");
			return false;
		}
		rc = smig_tls_read(p->tls, dst, PEER_CHUNK, &n);
		if (rc == SMIG_EAGAIN)
			return true;
		if (rc == SMIG_ECLOSED) {
			if (p->ref.client_id || p->mig || p->state != PS_READY) {
				peer_fail(p, "protocol", "%s", smig_tls_reason(p->tls));
				return false;
			}
			smig_debug("event=peer_closed host=%s addr=%s", p->name, p->addr);
			peer_free(p);
			return false;
		}
		if (rc < 0) {
			sec_event(p->d, p->state == PS_HELLO ? SMIG_SEC_TLS_FAILURE
							      : SMIG_SEC_RECORD_AUTH_FAILURE,
				  p->ip, p->name, "%s", smig_tls_reason(p->tls));
			peer_fail(p, p->state == PS_HELLO ? "untrusted" : "protocol", "%s",
				  smig_tls_reason(p->tls));
			return false;
		}
		smig_buf_commit(&p->rx, n);
		peer_frames(p);
	}
}

static bool peer_connected(struct peer *p)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		/* the common answers in words an operator acts on */
		if (err == ECONNREFUSED)
			peer_fail(p, "unreachable", "connection refused at %s: is smigd running there "
				  "and listening on that port (its config's listen)?", p->addr);
		else if (err == EHOSTUNREACH || err == ENETUNREACH)
			peer_fail(p, "unreachable", "no route to %s: check the host table's address "
				  "and the network between the hosts", p->addr);
		else
			peer_fail(p, "unreachable", "connect to %s: %s", p->addr, strerror(err));
		return false;
	}
	p->t_connected = loop_now_ns();
	if (smig_tls_conn_new(p->d->tls, p->fd, false, &p->tls) < 0) {
		peer_fail(p, "protocol", "cannot create TLS connection");
		return false;
	}
	p->state = PS_HANDSHAKE;
	return true;
}

static void peer_io(void *arg, uint32_t events)
{
	struct peer *p = arg;
	int rc;

	if (p->state == PS_CONNECTING) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) || !peer_connected(p))
			return;
	}
	if (p->state == PS_HANDSHAKE) {
		rc = smig_tls_handshake(p->tls);
		if (rc == SMIG_EAGAIN) {
			peer_interest(p);
			return;
		}
		if (rc == SMIG_ECLOSED && p->outbound) {
			/*
			 * the host we called closed the connection before the
			 * handshake ended: it refused us (a ban, its rate limit, its
			 * peer slots); not a TLS failure of that host's making
			 */
			p->d->peers->stats.handshakes_failed++;
			peer_fail(p, "unreachable", "%s (refused by the host before the handshake ended)",
				  smig_tls_reason(p->tls));
			return;
		}
		if (rc < 0) {
			p->d->peers->stats.handshakes_failed++;
			sec_event(p->d, SMIG_SEC_TLS_FAILURE, p->ip, p->name, "%s",
				  smig_tls_reason(p->tls));
			peer_fail(p, "untrusted", "%s", smig_tls_reason(p->tls));
			return;
		}
		if (!peer_secure(p))
			return;
	}
	if (!peer_read(p))
		return;
	if (p->taken) {
		peer_free(p); /* the socket and the session live on in a channel */
		return;
	}
	if (!peer_flush(p))
		return;
	peer_interest(p);
}

struct peer *peer_new(struct smigd *d, int fd, bool outbound, const char *addr)
{
	struct peer *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->d = d;
	p->fd = fd;
	p->outbound = outbound;
	p->t_start = loop_now_ns();
	snprintf(p->addr, sizeof(p->addr), "%s", addr);
	smig_buf_init(&p->rx, PEER_RX_MAX);
	smig_buf_init(&p->tx, PEER_TX_MAX);
	if (loop_watch_add(d->loop, fd, EPOLLIN | (outbound ? EPOLLOUT : 0), peer_io, p, &p->w) <
	    0) {
		smig_buf_clear(&p->rx);
		smig_buf_clear(&p->tx);
		free(p);
		return NULL;
	}
	p->next = d->peers->head;
	d->peers->head = p;
	d->peers->n++;
	return p;
}

void peer_close_all(struct smigd *d)
{
	if (d->peers == NULL)
		return;
	loop_timer_cancel(d->loop, d->peers->round);
	d->peers->round = NULL;
	while (d->peers->head) {
		struct peer *p = d->peers->head;
		d->peers->head = p->next;
		d->peers->n--;
		peer_destroy(p);
	}
	if (d->peers->listen_fd >= 0) {
		loop_watch_del(d->loop, d->peers->listen_w);
		close(d->peers->listen_fd);
		d->peers->listen_fd = -1;
	}
}

/* Until the migration engine hands its callbacks over, a migration frame is an error. */
static void no_frame(struct smigd *d, struct peer *p, struct mig *m, const struct smig_frame *f)
{
	(void)d;
	(void)m;
	peer_abort(p, SMIG_EPROTO, "unexpected %s", smig_frame_type_name(f->type));
}

static void no_mig(struct mig *m)
{
	(void)m;
}

static void no_lost(struct mig *m, const char *why)
{
	(void)m;
	(void)why;
}

static void no_channel(struct smigd *d, struct peer *p, const struct smig_frame *f)
{
	no_frame(d, p, NULL, f);
}

int peer_init(struct smigd *d)
{
	d->peers = calloc(1, sizeof(*d->peers));
	SMIG_ENSURE(d->peers != NULL, SMIG_ENOMEM);
	d->peers->listen_fd = -1;
	d->peers->mig = (struct peer_mig_ops){ .ready = no_mig, .frame = no_frame, .lost = no_lost,
					       .tx_space = no_mig, .channel = no_channel };
	return 0;
}

void peer_set_mig_ops(struct smigd *d, const struct peer_mig_ops *ops)
{
	d->peers->mig = *ops;
}

void peer_free_all(struct smigd *d)
{
	free(d->peers);
	d->peers = NULL;
}

const struct peer_stats *peer_stats(const struct smigd *d)
{
	static const struct peer_stats none;

	return d->peers ? &d->peers->stats : &none;
}

struct smig_buf *peer_tx(struct peer *p)
{
	return &p->tx;
}

size_t peer_tx_pending(const struct peer *p)
{
	return smig_buf_remaining(&p->tx);
}

void peer_kick(struct peer *p)
{
	peer_interest(p);
}

void peer_send_now(struct peer *p)
{
	/* EAGAIN: the loop goes on when writable; a failure: peer_flush() fails p there */
	if (p->tls != NULL && p->state == PS_READY)
		(void)peer_write(p);
	peer_interest(p);
}

static void peer_resume_rx(void *arg)
{
	struct peer *p = arg;

	p->resume_timer = NULL;
	peer_io(p, EPOLLIN);
}

void peer_rx_pause(struct peer *p, bool pause)
{
	if (p->rx_paused == pause)
		return;
	p->rx_paused = pause;
	peer_interest(p);
	if (!pause && p->resume_timer == NULL)
		(void)loop_timer_add(p->d->loop, 0, peer_resume_rx, p, &p->resume_timer);
}

void peer_release(struct peer *p)
{
	p->mig = NULL;
	p->rx_paused = false;
	(void)smig_msg_put_bye(&p->tx);
	p->closing = true;
	peer_interest(p);
}

const char *peer_name(const struct peer *p)
{
	return p->name;
}

const char *peer_cipher(const struct peer *p)
{
	return p->tls ? smig_tls_cipher(p->tls) : "";
}

const uint8_t *peer_fp(const struct peer *p)
{
	return p->fp;
}

int peer_remote(const struct peer *p, struct sockaddr_storage *sa, socklen_t *len)
{
	*len = sizeof(*sa);
	return getpeername(p->fd, (struct sockaddr *)sa, len) == 0 ? 0 : SMIG_EIO;
}

int peer_export(const struct peer *p, const char *label, const uint8_t *ctx, size_t ctxlen,
		uint8_t *out, size_t outlen)
{
	SMIG_ENSURE(p->tls != NULL, SMIG_EINVAL);
	return smig_tls_export(p->tls, label, ctx, ctxlen, out, outlen);
}

const struct smig_tls_conn *peer_tls(const struct peer *p)
{
	return p->tls;
}

int peer_take(struct peer *p, int *fd, struct smig_tls_conn **tls)
{
	SMIG_ENSURE(!p->taken && p->tls != NULL && p->mig == NULL &&
			    smig_buf_remaining(&p->tx) == 0,
		    SMIG_EINVAL);
	loop_watch_del(p->d->loop, p->w);
	p->w = NULL;
	*fd = p->fd;
	*tls = p->tls;
	p->fd = -1;
	p->tls = NULL;
	p->taken = true;
	p->closing = true; /* no more frames: peer_io frees the record */
	return 0;
}

void peer_attach_mig(struct peer *p, struct mig *m)
{
	p->mig = m;
	loop_timer_cancel(p->d->loop, p->timer); /* the migration watches for stalls */
	p->timer = NULL;
}
