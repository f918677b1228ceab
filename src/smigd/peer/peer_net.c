/*
 * peer_net.c - the sockets under the peer connections: the listener and
 * what it accepts (the firewall's admission and connection cap come first;
 * the kernel's receive buffer is capped), and outbound connections to
 * hosts of the table (send buffer capped, pinned fingerprint set) for a
 * ping, an attestation or a migration. What runs over them is in peer.c.
 */
#include "peer/peer_int.h"
#include "error.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void sockaddr_str(const struct sockaddr_storage *ss, char *out, size_t outlen,
			 char *ip, size_t iplen)
{
	char tmp[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, tmp, sizeof(tmp));
		port = ntohs(s4->sin_port);
		snprintf(out, outlen, "%s:%u", tmp, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, tmp, sizeof(tmp));
		port = ntohs(s6->sin6_port);
		snprintf(out, outlen, "[%s]:%u", tmp, port);
	} else {
		snprintf(out, outlen, "?");
	}
	snprintf(ip, iplen, "%s", tmp);
}

static void peer_accept(void *arg, uint32_t events)
{
	struct smigd *d = arg;

	(void)events;
	for (;;) {
		struct sockaddr_storage ss = { 0 };
		socklen_t len = sizeof(ss);
		char addr[SMIG_ADDR_MAX + 8];
		char ip[INET6_ADDRSTRLEN];
		struct peer *p;
		size_t pending, total;
		int one = 1;
		int fd = accept4(d->peers->listen_fd, (struct sockaddr *)&ss, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		sockaddr_str(&ss, addr, sizeof(addr), ip, sizeof(ip));
		peer_conns_from(d, ip, &pending, &total);
		if (!monitor_admit(d, ip, pending, total)) {
			d->peers->stats.refused++;
			close(fd);
			continue;
		}
		if (d->peers->n >= (size_t)d->cfg.max_peers) {
			sec_event(d, SMIG_SEC_CONN_REFUSED, ip, NULL,
				  "too many connections (max_peers %d)", d->cfg.max_peers);
			d->peers->stats.refused++;
			close(fd);
			continue;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		p = peer_new(d, fd, false, addr);
		if (p == NULL || smig_tls_conn_new(d->tls, fd, true, &p->tls) < 0) {
			if (p)
				peer_free(p);
			else
				close(fd);
			continue;
		}
		d->peers->stats.accepted++;
		snprintf(p->ip, sizeof(p->ip), "%s", ip);
		sec_event(d, SMIG_SEC_CONN_ACCEPTED, ip, NULL, "%s", addr);
		p->state = PS_HANDSHAKE;
		peer_rearm(p, (uint64_t)d->cfg.handshake_timeout_ms);
		smig_debug("event=peer_accept addr=%s", addr);
	}
}

static int addr_fill(const char *addr, uint16_t port, struct sockaddr_storage *ss,
		     socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		return 0;
	}
	return SMIG_EINVAL;
}

int peer_listen(struct smigd *d)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, rcvbuf = PEER_RCVBUF;
	int fd;

	SMIG_GUARD(addr_fill(d->cfg.listen_addr, d->cfg.listen_port, &ss, &len));
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	SMIG_ENSURE(fd >= 0, SMIG_EIO);
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)); /* accepted ones inherit it */
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 128) < 0 ||
	    loop_watch_add(d->loop, fd, EPOLLIN, peer_accept, d, &d->peers->listen_w) < 0) {
		smig_err("event=listen_failed addr=%s port=%u reason=\"%s\"", d->cfg.listen_addr,
			 d->cfg.listen_port, strerror(errno));
		close(fd);
		return SMIG_EIO;
	}
	d->peers->listen_fd = fd;
	smig_info("event=listening addr=%s port=%u", d->cfg.listen_addr, d->cfg.listen_port);
	return 0;
}

/*
 * Starts an outbound connection to host from the table: the peer is left
 * connecting, with the host's pinned fingerprint and the request timeout.
 * On failure returns NULL with a control error code in *code and why in err.
 */
struct peer *peer_open(struct smigd *d, const char *host, const char **code, char *err,
		       size_t errlen)
{
	const struct smig_host *h = smig_hosts_by_name(smigd_hosts(d), host);
	struct sockaddr_storage ss;
	char addr[SMIG_ADDR_MAX + 8];
	socklen_t len;
	struct peer *p;
	int one = 1, sndbuf = PEER_SNDBUF;
	int fd;

	*code = "error";
	if (h == NULL) {
		*code = "not_found";
		snprintf(err, errlen, "%s is not in the host table %s", host, d->cfg.hosts_file);
		return NULL;
	}
	if (addr_fill(h->addr, h->port, &ss, &len) < 0 ||
	    (fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(err, errlen, "cannot create a socket for %s", host);
		return NULL;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	snprintf(addr, sizeof(addr), ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", h->addr,
		 h->port);
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
		*code = "unreachable";
		snprintf(err, errlen, "%s (%s): connect: %s", host, addr, strerror(errno));
		peer_host_note(d, host, false, 0, strerror(errno));
		close(fd);
		return NULL;
	}
	p = peer_new(d, fd, true, addr);
	if (p == NULL) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(p->name, sizeof(p->name), "%s", h->name);
	snprintf(p->ip, sizeof(p->ip), "%s", h->addr);
	memcpy(p->expect_fp[0], h->fp, SMIG_FP_LEN);
	p->nexpect = 1;
	if (h->has_next)
		memcpy(p->expect_fp[p->nexpect++], h->next_fp, SMIG_FP_LEN);
	peer_rearm(p, (uint64_t)d->cfg.request_timeout_ms);
	return p;
}

void peer_ping(struct smigd *d, const char *host, struct ctl_ref *ref)
{
	const char *code;
	char err[256];
	struct peer *p = peer_open(d, host, &code, err, sizeof(err));

	if (p == NULL) {
		ctl_reply_err(d, ref, code, "%s", err);
		return;
	}
	(void)RAND_bytes((unsigned char *)&p->nonce, sizeof(p->nonce));
	p->ref = *ref;
	ref->id = NULL;
	ref->client_id = 0;
}

int peer_reserve(struct smigd *d, const char *host, const struct smig_reserve *r,
		 peer_resv_fn fn, void *arg, char *err, size_t errlen)
{
	struct peer_resv *v = peer_resv_new(r, fn, arg);
	const char *code;
	struct peer *p;

	SMIG_ENSURE(v != NULL, SMIG_ENOMEM);
	p = peer_open(d, host, &code, err, errlen);
	if (p == NULL) {
		free(v);
		return SMIG_EUNREACH;
	}
	p->resv = v;
	return 0;
}

struct peer *peer_connect_mig(struct smigd *d, const char *host, struct mig *m, char *err,
			      size_t errlen)
{
	const char *code;
	struct peer *p = peer_open(d, host, &code, err, errlen);

	if (p == NULL)
		return NULL;
	p->for_mig = true;
	p->mig = m;
	return p;
}
