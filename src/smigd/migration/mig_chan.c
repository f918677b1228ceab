/*
 * mig_chan.c - parallel stream channels (QEMU multifd). Each channel of
 * QEMU's stream crosses in a TLS session of its own, relayed by a thread
 * of its own on either side:
 *
 *   QEMU --unix--> thread: read, TLS write ==TCP==> thread: TLS read, write --unix--> QEMU
 *
 * The main stream (device state and QEMU's own framing of the passes)
 * stays on the migration's session, relayed by the loop (mig_src.c,
 * mig_dst.c). A channel's session is bound to that attested session: its
 * first frame, CHANNEL, carries HMAC-SHA256, keyed by an exporter value of
 * the main session, over an exporter value of the channel's own session
 * for its index (docs/protocol.md, "Parallel channels"). A bit changed or
 * a record replayed in a channel fails that session's TLS record check,
 * and the whole migration with it.
 *
 * Where QEMU meets the channels (QEMU 7.2 takes multifd only on sockets
 * it connects to or listens on, not on fds it is handed for "fd:"):
 *  - source: QEMU connects to a socket smigd listens on in STATE_DIR/mig
 *    (0711, a random name, 0666); a connection from any process other than
 *    the VM's QEMU is refused. The first is QEMU's main stream.
 *  - destination: smigd hands QEMU a listening socket (QMP getfd,
 *    "tcp:fd:NAME") bound in STATE_DIR/mig (0600: smigd's alone) and
 *    connects the main stream first, then each channel as it arrives.
 *
 * The threads touch only their channel (two sockets, a TLS connection,
 * atomic counters) and say that they ended through an eventfd; the loop
 * decides what that means for the migration and joins them.
 */
#include "migration/mig_int.h"
#include "error.h"
#include "log.h"
#include "msg.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CHAN_BUF ((size_t)256 * 1024)
#define CHAN_SETUP_MS 10000 /* connect, handshake and CHANNEL_OK, each */
#define CHAN_SOCKBUF (256 * 1024) /* as the main stream's: little waits in the kernel */
#define MULTIFD_MAGIC 0x11223344u /* the first word of each of QEMU's multifd channels */
#define CHAN_KEY_LABEL "EXPORTER-smig-channel-key"
#define CHAN_BIND_LABEL "EXPORTER-smig-channel"

enum chan_state { CH_RUNNING, CH_DONE, CH_FAILED };

struct mig_chan {
	struct mig_chans *cs;
	pthread_t th;
	bool started;
	uint8_t index;
	int qfd; /* QEMU's side */
	int nfd; /* the network's side */
	struct smig_tls_conn *tls;
	atomic_uint_least64_t bytes;
	atomic_int state;
	atomic_bool stop;
	atomic_bool reported; /* the loop has heard of its end */
	bool attacked;        /* a record failed its check: damaged or forged on the way */
	atomic_bool ktls;     /* the kernel carries its records (source: sending, destination: receiving) */
	char why[256];
};

struct mig_chans {
	struct mig *m;
	const struct mig_chan_ops *ops;
	bool source;
	size_t want; /* channels of this migration */
	size_t n;    /* channels started */
	struct mig_chan ch[SMIG_CHAN_MAX];
	int efd; /* threads ring it when they end */
	struct loop_watch *ew;
	int lfd; /* source: QEMU connects here; destination: QEMU listens here */
	struct loop_watch *lw;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	bool have_main;
	pid_t qemu_pid; /* source: the only process that may connect */
	unsigned strangers; /* source: connections refused (the first few are logged) */
	uint8_t key[32];
	struct smig_mig_id id;
	uint8_t fp[SMIG_FP_LEN]; /* source: the certificate the main session saw */
	struct sockaddr_storage to; /* source: where the main session goes */
	socklen_t tolen;
};

/* --- what both threads do --- */

static void chan_end(struct mig_chan *c, int state, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void chan_end(struct mig_chan *c, int state, const char *fmt, ...)
{
	uint64_t one = 1;
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(c->why, sizeof(c->why), fmt, ap);
		va_end(ap);
	}
	atomic_store(&c->state, state);
	if (write(c->cs->efd, &one, sizeof(one)) < 0) {
		/* the counter cannot overflow with 16 threads: nothing to do */
	}
}

/* The proof that a channel's session tls belongs to the migration whose channel key is key. */
static int chan_mac(const struct smig_tls_conn *tls, const uint8_t key[32],
		    const struct smig_mig_id *id, uint8_t index, uint8_t mac[SMIG_CHAN_MAC_LEN])
{
	uint8_t ctx[SMIG_MIG_ID_LEN + 1], ev[32];
	unsigned int len = SMIG_CHAN_MAC_LEN;

	memcpy(ctx, id->b, SMIG_MIG_ID_LEN);
	ctx[SMIG_MIG_ID_LEN] = index;
	SMIG_GUARD(smig_tls_export(tls, CHAN_BIND_LABEL, ctx, sizeof(ctx), ev, sizeof(ev)));
	SMIG_ENSURE(HMAC(EVP_sha256(), key, 32, ev, sizeof(ev), mac, &len) != NULL &&
			    len == SMIG_CHAN_MAC_LEN,
		    SMIG_ECRYPTO);
	OPENSSL_cleanse(ev, sizeof(ev));
	return 0;
}

static void sock_timeouts(int fd, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000 };

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int set_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 ? -1 : 0;
}

/* Sends all of buf over the channel's session; false with why set. */
static bool tls_send_all(struct mig_chan *c, const uint8_t *buf, size_t len)
{
	size_t off = 0, n;

	while (off < len) {
		int rc = smig_tls_write(c->tls, buf + off, len - off, &n);

		if (rc < 0) {
			chan_end(c, CH_FAILED, "channel %u: TLS %s", c->index,
				 rc == SMIG_EAGAIN ? "write timed out" : smig_tls_reason(c->tls));
			return false;
		}
		off += n;
		atomic_fetch_add(&c->bytes, n);
	}
	return true;
}

static bool write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* --- source: QEMU's channel out through a session of its own --- */

static bool src_connect(struct mig_chan *c)
{
	struct mig_chans *cs = c->cs;
	int waited = 0, err = 0;
	socklen_t len = sizeof(err);

	if (connect(c->nfd, (const struct sockaddr *)&cs->to, cs->tolen) < 0 &&
	    errno != EINPROGRESS) {
		chan_end(c, CH_FAILED, "channel %u: connect: %s", c->index, strerror(errno));
		return false;
	}
	for (;;) {
		struct pollfd p = { .fd = c->nfd, .events = POLLOUT };
		int r = poll(&p, 1, 100);

		if (atomic_load(&c->stop)) {
			chan_end(c, CH_FAILED, "channel %u: stopped", c->index);
			return false;
		}
		if (r > 0)
			break;
		if ((waited += 100) >= CHAN_SETUP_MS) {
			chan_end(c, CH_FAILED, "channel %u: connect timed out", c->index);
			return false;
		}
	}
	if (getsockopt(c->nfd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
		chan_end(c, CH_FAILED, "channel %u: connect: %s", c->index,
			 strerror(err ? err : errno));
		return false;
	}
	if (set_blocking(c->nfd) < 0) {
		chan_end(c, CH_FAILED, "channel %u: %s", c->index, strerror(errno));
		return false;
	}
	sock_timeouts(c->nfd, CHAN_SETUP_MS);
	return true;
}

/* TLS, the destination's certificate, CHANNEL out and CHANNEL_OK back. */
static bool src_bind(struct mig_chan *c)
{
	struct mig_chans *cs = c->cs;
	struct smig_mig_channel ch = { .id = cs->id, .index = c->index };
	struct smig_buf b;
	struct smig_frame f;
	uint8_t fp[SMIG_FP_LEN];
	bool ok = false;
	int rc;

	smig_tls_want_ktls(c->tls);
	rc = smig_tls_handshake(c->tls);
	if (rc < 0) {
		chan_end(c, CH_FAILED, "channel %u: %s", c->index,
			 rc == SMIG_EAGAIN ? "TLS handshake timed out" : smig_tls_reason(c->tls));
		return false;
	}
	if (smig_tls_peer_fp(c->tls, fp) < 0 || CRYPTO_memcmp(fp, cs->fp, SMIG_FP_LEN) != 0) {
		chan_end(c, CH_FAILED, "channel %u: the destination showed another certificate "
			 "than on the migration's session", c->index);
		return false;
	}
	atomic_store(&c->ktls, smig_tls_ktls_send(c->tls));
	if (chan_mac(c->tls, cs->key, &cs->id, c->index, ch.mac) < 0) {
		chan_end(c, CH_FAILED, "channel %u: cannot derive its binding", c->index);
		return false;
	}
	smig_buf_init(&b, 4096);
	if (smig_msg_put_mig_channel(&b, SMIG_MSG_MIG_CHANNEL, &ch) < 0 ||
	    !tls_send_all(c, smig_buf_peek(&b), smig_buf_remaining(&b))) {
		if (atomic_load(&c->state) == CH_RUNNING)
			chan_end(c, CH_FAILED, "channel %u: cannot send CHANNEL", c->index);
		smig_buf_clear(&b);
		return false;
	}
	atomic_store(&c->bytes, 0); /* the stream's bytes, not the binding's */
	smig_buf_clear(&b);
	smig_buf_init(&b, SMIG_FRAME_HDR_LEN + 512);
	for (;;) {
		uint8_t *dst;
		size_t n;

		rc = smig_frame_next(&b, &f);
		if (rc == 0)
			break;
		if (rc != SMIG_EAGAIN || smig_buf_reserve(&b, 256, &dst) < 0) {
			chan_end(c, CH_FAILED, "channel %u: a bad answer to CHANNEL", c->index);
			goto out;
		}
		rc = smig_tls_read(c->tls, dst, 256, &n);
		if (rc < 0) {
			chan_end(c, CH_FAILED, "channel %u: no answer to CHANNEL: %s", c->index,
				 rc == SMIG_EAGAIN ? "timed out" : smig_tls_reason(c->tls));
			goto out;
		}
		smig_buf_commit(&b, n);
	}
	if (f.type == SMIG_MSG_ERROR) {
		struct smig_error_msg em;

		if (smig_msg_get_error(&f, &em) < 0)
			snprintf(em.reason, sizeof(em.reason), "a malformed ERROR");
		chan_end(c, CH_FAILED, "channel %u refused by the destination: %s", c->index,
			 em.reason);
		goto out;
	}
	{
		struct smig_mig_channel okm;

		if (smig_msg_get_mig_channel(&f, SMIG_MSG_MIG_CHANNEL_OK, &okm) < 0 ||
		    !smig_mig_id_eq(&okm.id, &cs->id) || okm.index != c->index) {
			chan_end(c, CH_FAILED, "channel %u: expected CHANNEL_OK, got %s", c->index,
				 smig_frame_type_name(f.type));
			goto out;
		}
	}
	ok = smig_buf_remaining(&b) == 0; /* nothing may come before the stream ends */
	if (!ok)
		chan_end(c, CH_FAILED, "channel %u: data after CHANNEL_OK", c->index);
out:
	smig_buf_clear(&b);
	return ok;
}

static void src_relay(struct mig_chan *c, uint8_t *buf)
{
	size_t have = 0;

	/* QEMU's side: its first word says it is a multifd channel */
	while (have < 4) {
		ssize_t r = read(c->qfd, buf + have, CHAN_BUF - have);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			chan_end(c, CH_FAILED, "channel %u: QEMU closed it before its header",
				 c->index);
			return;
		}
		have += (size_t)r;
	}
	if (((uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3]) !=
	    MULTIFD_MAGIC) {
		chan_end(c, CH_FAILED, "channel %u: not a QEMU multifd channel", c->index);
		return;
	}
	sock_timeouts(c->nfd, 0); /* from here a stall is the engine's to judge */
	if (!tls_send_all(c, buf, have))
		return;
	for (;;) {
		ssize_t r = read(c->qfd, buf, CHAN_BUF);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			chan_end(c, CH_FAILED, "channel %u: reading QEMU: %s", c->index,
				 strerror(errno));
			return;
		}
		if (r == 0)
			break;
		if (!tls_send_all(c, buf, (size_t)r))
			return;
	}
	smig_tls_close(c->tls); /* close_notify: the channel ended, it was not cut */
	(void)shutdown(c->nfd, SHUT_WR);
	chan_end(c, CH_DONE, NULL);
}

static void *src_thread(void *arg)
{
	struct mig_chan *c = arg;
	uint8_t *buf = malloc(CHAN_BUF);

	if (buf == NULL)
		chan_end(c, CH_FAILED, "channel %u: out of memory", c->index);
	else if (src_connect(c) && src_bind(c))
		src_relay(c, buf);
	free(buf);
	return NULL;
}

/* --- destination: a channel's session into QEMU --- */

static void *dst_thread(void *arg)
{
	struct mig_chan *c = arg;
	struct smig_mig_channel okm = { .id = c->cs->id, .index = c->index };
	uint8_t *buf = malloc(CHAN_BUF);
	struct smig_buf b;
	size_t n;

	smig_buf_init(&b, 256);
	if (buf == NULL || set_blocking(c->nfd) < 0 || set_blocking(c->qfd) < 0) {
		chan_end(c, CH_FAILED, "channel %u: out of memory", c->index);
		goto out;
	}
	sock_timeouts(c->nfd, CHAN_SETUP_MS);
	if (smig_msg_put_mig_channel(&b, SMIG_MSG_MIG_CHANNEL_OK, &okm) < 0 ||
	    !tls_send_all(c, smig_buf_peek(&b), smig_buf_remaining(&b)))
		goto out;
	atomic_store(&c->bytes, 0);
	sock_timeouts(c->nfd, 0);
	for (;;) {
		int rc = smig_tls_read(c->tls, buf, CHAN_BUF, &n);

		if (rc == SMIG_ECLOSED && smig_tls_closed_cleanly(c->tls))
			break;
		if (rc < 0) {
			/* a cut (no close_notify) may be the source's teardown: its ABORT says */
			c->attacked = rc == SMIG_ETLS;
			chan_end(c, CH_FAILED, "channel %u: %s", c->index,
				 rc == SMIG_ECLOSED ? "cut short (no close_notify)"
						    : smig_tls_reason(c->tls));
			goto out;
		}
		atomic_fetch_add(&c->bytes, n);
		if (!write_all(c->qfd, buf, n)) {
			chan_end(c, CH_FAILED, "channel %u: writing to QEMU: %s", c->index,
				 strerror(errno));
			goto out;
		}
	}
	(void)shutdown(c->qfd, SHUT_WR);
	chan_end(c, CH_DONE, NULL);
out:
	smig_buf_clear(&b);
	free(buf);
	return NULL;
}

/* --- the loop's side --- */

static void chans_ended(void *arg, uint32_t events)
{
	struct mig_chans *cs = arg;
	uint64_t v;

	(void)events;
	if (read(cs->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	for (size_t i = 0; i < cs->n; i++) {
		struct mig_chan *c = &cs->ch[i];
		int st = atomic_load(&c->state);

		if (st == CH_RUNNING || atomic_exchange(&c->reported, true))
			continue;
		smig_debug("event=channel_ended vm=%s channel=%zu state=%s bytes=%llu why=\"%s\"",
			   cs->m->vm_name, i, st == CH_DONE ? "done" : "failed",
			   (unsigned long long)atomic_load(&c->bytes), c->why);
		if (st == CH_FAILED) {
			/* may free the migration and cs: stop here */
			cs->ops->failed(cs->m, c->why, c->attacked);
			return;
		}
	}
}

static int chans_new(struct mig *m, bool source, size_t n, const struct mig_chan_ops *ops)
{
	struct mig_chans *cs = calloc(1, sizeof(*cs));

	SMIG_ENSURE(cs != NULL, SMIG_ENOMEM);
	cs->m = m;
	cs->ops = ops;
	cs->source = source;
	cs->want = n;
	cs->lfd = -1;
	cs->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	for (size_t i = 0; i < SMIG_CHAN_MAX; i++) {
		cs->ch[i].cs = cs;
		cs->ch[i].qfd = cs->ch[i].nfd = -1;
	}
	m->chans = cs;
	SMIG_ENSURE(cs->efd >= 0, SMIG_EIO);
	return loop_watch_add(m->d->loop, cs->efd, EPOLLIN, chans_ended, cs, &cs->ew);
}

/* A listening socket at a fresh name in STATE_DIR/mig, mode mode. */
static int chans_listen(struct mig_chans *cs, mode_t mode, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint8_t rnd[12];
	char hex[25];
	int n;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		snprintf(err, errlen, "no randomness for the channel socket's name");
		return SMIG_EIO;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/mig/%s.sock", cs->m->d->cfg.state_dir,
		     hex);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "the channel socket's path under %s/mig is longer than %zu "
			 "bytes: choose a shorter state_dir", cs->m->d->cfg.state_dir,
			 sizeof(sa.sun_path) - 1);
		return SMIG_EINVAL;
	}
	cs->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (cs->lfd < 0 || bind(cs->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, errlen, "cannot make the channel socket %s: %s", sa.sun_path,
			 strerror(errno));
		return SMIG_EIO;
	}
	memcpy(cs->path, sa.sun_path, sizeof(cs->path));
	if (chmod(cs->path, mode) < 0 || listen(cs->lfd, SMIG_CHAN_MAX + 1) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", cs->path, strerror(errno));
		return SMIG_EIO;
	}
	return 0;
}

static void chans_unlisten(struct mig_chans *cs)
{
	loop_watch_del(cs->m->d->loop, cs->lw);
	cs->lw = NULL;
	if (cs->lfd >= 0)
		close(cs->lfd);
	cs->lfd = -1;
	if (cs->path[0])
		(void)unlink(cs->path);
	cs->path[0] = '\0';
}

static void chan_start(struct mig_chans *cs, struct mig_chan *c, void *(*fn)(void *))
{
	int rc = pthread_create(&c->th, NULL, fn, c);

	if (rc != 0) {
		chan_end(c, CH_FAILED, "channel %u: cannot start its thread: %s", c->index,
			 strerror(rc));
		return;
	}
	c->started = true;
	(void)cs;
}

/* Source: QEMU connected (its main stream first, then each channel). */
static void src_accept(void *arg, uint32_t events)
{
	struct mig_chans *cs = arg;
	struct mig *m = cs->m;

	(void)events;
	for (;;) {
		struct ucred cr;
		socklen_t len = sizeof(cr);
		struct mig_chan *c;
		int fd = accept4(cs->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || cs->qemu_pid <= 0 ||
		    cr.pid != cs->qemu_pid) {
			if (cs->strangers++ < 3)
				smig_warn("event=channel_socket_stranger vm=%s pid=%ld uid=%ld "
					  "action=refused", m->vm_name, (long)cr.pid, (long)cr.uid);
			close(fd);
			continue;
		}
		if (!cs->have_main) {
			cs->have_main = true;
			if (!cs->ops->main(m, fd))
				return; /* the migration failed, and m and cs with it */
			continue;
		}
		if (cs->n >= cs->want) {
			close(fd);
			cs->ops->failed(m, "QEMU opened more channels than asked for", false);
			return;
		}
		c = &cs->ch[cs->n];
		c->index = (uint8_t)cs->n++;
		c->qfd = fd;
		c->nfd = socket(cs->to.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->nfd >= 0) {
			int one = 1, sz = CHAN_SOCKBUF;

			(void)setsockopt(c->nfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			(void)setsockopt(c->nfd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		}
		if (c->nfd < 0 || smig_tls_conn_new(m->d->tls, c->nfd, false, &c->tls) < 0)
			chan_end(c, CH_FAILED, "channel %u: cannot open a connection", c->index);
		else
			chan_start(cs, c, src_thread);
		if (cs->n == cs->want)
			chans_unlisten(cs); /* every channel is here: nobody else may come */
	}
}

int mig_chans_src(struct mig *m, size_t n, const struct mig_chan_ops *ops, pid_t qemu_pid,
		  char *uri, size_t urilen, char *err, size_t errlen)
{
	struct sockaddr_storage to;
	socklen_t tolen = sizeof(to);
	struct mig_chans *cs;
	int rc;

	if (peer_remote(m->peer, &to, &tolen) < 0) {
		snprintf(err, errlen, "the migration's session has no address");
		return SMIG_EIO;
	}
	SMIG_GUARD(chans_new(m, true, n, ops));
	cs = m->chans;
	cs->to = to;
	cs->tolen = tolen;
	cs->qemu_pid = qemu_pid;
	cs->id = m->p.id;
	memcpy(cs->fp, peer_fp(m->peer), SMIG_FP_LEN);
	if (peer_export(m->peer, CHAN_KEY_LABEL, m->p.id.b, SMIG_MIG_ID_LEN, cs->key,
			sizeof(cs->key)) < 0) {
		snprintf(err, errlen, "cannot derive the channels' key from the session");
		return SMIG_ECRYPTO;
	}
	rc = chans_listen(cs, 0666, err, errlen);
	if (rc == 0)
		rc = loop_watch_add(m->d->loop, cs->lfd, EPOLLIN, src_accept, cs, &cs->lw);
	if (rc == 0)
		snprintf(uri, urilen, "unix:%s", cs->path);
	return rc;
}

int mig_chans_dst(struct mig *m, size_t n, const struct mig_chan_ops *ops, int *listen_fd,
		  char *err, size_t errlen)
{
	struct mig_chans *cs;

	SMIG_GUARD(chans_new(m, false, n, ops));
	cs = m->chans;
	cs->id = m->p.id;
	if (peer_export(m->peer, CHAN_KEY_LABEL, m->p.id.b, SMIG_MIG_ID_LEN, cs->key,
			sizeof(cs->key)) < 0) {
		snprintf(err, errlen, "cannot derive the channels' key from the session");
		return SMIG_ECRYPTO;
	}
	SMIG_GUARD(chans_listen(cs, 0600, err, errlen));
	*listen_fd = cs->lfd;
	return 0;
}

static bool all_started(const struct mig_chans *cs)
{
	for (size_t i = 0; i < cs->want; i++)
		if (!cs->ch[i].started)
			return false;
	return true;
}

/*
 * Destination: a connection to the socket QEMU listens on; -1 with errno.
 * Never waits: a QEMU that stops taking connections fails the channel,
 * not the loop.
 */
static int dst_qemu_connect(const struct mig_chans *cs)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	memcpy(sa.sun_path, cs->path, sizeof(sa.sun_path));
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int mig_chans_dst_main(struct mig *m)
{
	int fd;

	if (m->chans == NULL || m->chans->have_main)
		return -1;
	fd = dst_qemu_connect(m->chans);
	if (fd >= 0)
		m->chans->have_main = true;
	return fd;
}

int mig_chans_dst_take(struct mig *m, struct peer *p, const struct smig_mig_channel *ch,
		       char *why, size_t whylen)
{
	struct mig_chans *cs = m->chans;
	uint8_t mac[SMIG_CHAN_MAC_LEN];
	struct smig_tls_conn *tls;
	struct mig_chan *c;
	int nfd;

	if (cs == NULL || !cs->have_main || ch->index >= cs->want) {
		snprintf(why, whylen, "no channel %u in this migration", ch->index);
		return SMIG_EPROTO;
	}
	c = &cs->ch[ch->index];
	if (c->started || c->nfd >= 0) {
		snprintf(why, whylen, "channel %u is already connected", ch->index);
		return SMIG_EPROTO;
	}
	if (peer_tls(p) == NULL || chan_mac(peer_tls(p), cs->key, &cs->id, ch->index, mac) < 0 ||
	    CRYPTO_memcmp(mac, ch->mac, sizeof(mac)) != 0) {
		snprintf(why, whylen, "channel %u is not bound to the migration's session "
			 "(its MAC does not match)", ch->index);
		return SMIG_EAUTH;
	}
	c->index = ch->index;
	c->qfd = dst_qemu_connect(cs);
	if (c->qfd < 0) {
		snprintf(why, whylen, "cannot reach the incoming QEMU: %s", strerror(errno));
		return SMIG_EIO;
	}
	if (peer_take(p, &nfd, &tls) < 0) {
		snprintf(why, whylen, "the session cannot be taken over");
		return SMIG_EIO;
	}
	c->nfd = nfd;
	c->tls = tls;
	atomic_store(&c->ktls, smig_tls_ktls_recv(tls));
	if ((size_t)ch->index + 1 > cs->n)
		cs->n = (size_t)ch->index + 1;
	chan_start(cs, c, dst_thread);
	if (all_started(cs))
		chans_unlisten(cs); /* QEMU keeps its copy of the listener */
	return 0;
}

uint64_t mig_chans_bytes(const struct mig *m)
{
	uint64_t sum = 0;

	if (m->chans == NULL)
		return 0;
	for (size_t i = 0; i < m->chans->n; i++)
		sum += atomic_load(&m->chans->ch[i].bytes);
	return sum;
}

uint64_t mig_bytes(const struct mig *m)
{
	return m->p.bytes + mig_chans_bytes(m);
}

bool mig_chans_moved(struct mig *m)
{
	uint64_t b = mig_chans_bytes(m);

	if (b == m->chan_bytes)
		return false;
	m->chan_bytes = b;
	m->last_activity_ms = loop_now_ms();
	return true;
}

json_t *mig_chans_json(const struct mig *m)
{
	json_t *a = json_array();

	if (m->chans == NULL || a == NULL)
		return a;
	for (size_t i = 0; i < m->chans->n; i++) {
		const struct mig_chan *c = &m->chans->ch[i];

		json_array_append_new(a, json_pack("{s:i,s:I,s:b}", "index", (int)c->index, "bytes",
						   (json_int_t)atomic_load(&c->bytes), "ktls",
						   (int)atomic_load(&c->ktls)));
	}
	return a;
}

void mig_chans_free(struct mig *m)
{
	struct mig_chans *cs = m->chans;

	if (cs == NULL)
		return;
	m->chans = NULL;
	for (size_t i = 0; i < SMIG_CHAN_MAX; i++) {
		struct mig_chan *c = &cs->ch[i];

		atomic_store(&c->stop, true);
		if (c->nfd >= 0)
			(void)shutdown(c->nfd, SHUT_RDWR);
		if (c->qfd >= 0)
			(void)shutdown(c->qfd, SHUT_RDWR);
	}
	for (size_t i = 0; i < SMIG_CHAN_MAX; i++) {
		struct mig_chan *c = &cs->ch[i];

		if (c->started)
			(void)pthread_join(c->th, NULL);
		smig_tls_conn_free(c->tls);
		if (c->nfd >= 0)
			close(c->nfd);
		if (c->qfd >= 0)
			close(c->qfd);
	}
	chans_unlisten(cs);
	loop_watch_del(m->d->loop, cs->ew);
	if (cs->efd >= 0)
		close(cs->efd);
	OPENSSL_cleanse(cs->key, sizeof(cs->key));
	free(cs);
}
