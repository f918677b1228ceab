/*
 * relay.c - smig-bench-relay: how fast smig's encrypted channel alone
 * moves a migration stream, without QEMU. Two processes (the two hosts)
 * on a loopback TCP connection with the peer channel's own TLS set-up:
 * the source copies stream bytes into MIG_DATA frames of smigd's relay
 * size and writes them through TLS; the destination reads in smigd's
 * read size and takes the frames apart. make bench sets the result
 * against `openssl speed -evp aes-256-gcm` on one core. With --plain the
 * same frames cross the same connection without TLS: the ceiling that the
 * kernel's TCP and the copies alone leave.
 *
 * usage: smig-bench-relay PKI_DIR [MiB] [--plain]   (certificates h1, h2)
 * Prints one JSON object: bytes, seconds, MB/s, cipher, CPU of each side.
 */
#include "buf.h"
#include "error.h"
#include "frame.h"
#include "tls.h"

#include <arpa/inet.h>
#include <openssl/rand.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK ((size_t)256 * 1024) /* smigd's MIG_DATA payload (mig_int.h) */
#define READ ((size_t)16 * 1024)   /* smigd's read size (peer_int.h) */

struct side_result {
	double seconds;
	double cpu_s;
	unsigned long long bytes;
	char cipher[64];
};

/* one end of the connection: through TLS, or (plain) straight to the socket */
struct chan {
	struct smig_tls_ctx *ctx;
	struct smig_tls_conn *tls;
	int fd;
};

static void die(const char *what, const char *why)
{
	fprintf(stderr, "smig-bench-relay: %s: %s\n", what, why);
	exit(1);
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void tls_open(struct chan *ch, const char *pki, const char *host, bool server)
{
	char ca[4096], crt[4096], key[4096], err[256];
	struct smig_tls_conn *c;
	int rc;

	snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
	snprintf(crt, sizeof(crt), "%s/%s.crt", pki, host);
	snprintf(key, sizeof(key), "%s/%s.key", pki, host);
	if (smig_tls_ctx_new(&ch->ctx, ca, crt, key, err, sizeof(err)) < 0)
		die(host, err);
	if (smig_tls_conn_new(ch->ctx, ch->fd, server, &c) < 0)
		die(host, "cannot create the TLS connection");
	while ((rc = smig_tls_handshake(c)) == SMIG_EAGAIN)
		;
	if (rc < 0)
		die("handshake", smig_tls_reason(c));
	ch->tls = c;
}

static struct chan chan_open(const char *pki, const char *host, int fd, bool server, bool plain)
{
	struct chan c = { .fd = fd };

	if (!plain)
		tls_open(&c, pki, host, server);
	return c;
}

/* 0 with *n > 0, SMIG_ECLOSED at the end, or another negative code */
static int chan_read(struct chan *c, uint8_t *dst, size_t len, size_t *n)
{
	ssize_t r;

	if (c->tls != NULL)
		return smig_tls_read(c->tls, dst, len, n);
	do
		r = read(c->fd, dst, len);
	while (r < 0 && errno == EINTR);
	*n = r > 0 ? (size_t)r : 0;
	return r > 0 ? 0 : r == 0 ? SMIG_ECLOSED : SMIG_EIO;
}

static int chan_write(struct chan *c, const uint8_t *src, size_t len, size_t *n)
{
	ssize_t w;

	if (c->tls != NULL)
		return smig_tls_write(c->tls, src, len, n);
	do
		w = write(c->fd, src, len);
	while (w < 0 && errno == EINTR);
	*n = w > 0 ? (size_t)w : 0;
	return w > 0 ? 0 : SMIG_EIO;
}

static void chan_cork(const struct chan *c, int on)
{
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

static const char *chan_why(const struct chan *c)
{
	return c->tls != NULL ? smig_tls_reason(c->tls) : strerror(errno);
}

/*
 * Frees the TLS state; the sending side first ends the stream (close_notify,
 * then the TCP FIN). The receiving side says nothing: its peer is gone.
 */
static void chan_close(struct chan *c, bool sender)
{
	if (c->tls != NULL) {
		if (sender)
			smig_tls_close(c->tls);
		smig_tls_conn_free(c->tls);
		c->tls = NULL;
	}
	smig_tls_ctx_free(c->ctx);
	c->ctx = NULL;
	if (sender)
		shutdown(c->fd, SHUT_WR);
}

/* The destination: read, take frames apart, count their payload. */
static void receive(struct chan *c, struct side_result *res)
{
	struct smig_buf rx;
	double t0 = 0, c0 = cpu_s();

	smig_buf_init(&rx, SMIG_FRAME_HDR_LEN + SMIG_FRAME_MAX_PAYLOAD + READ);
	for (;;) {
		struct smig_frame f;
		uint8_t *dst;
		size_t n;
		int rc;

		if (smig_buf_reserve(&rx, READ, &dst) < 0)
			die("receive", "buffer overflow");
		rc = chan_read(c, dst, READ, &n);
		if (rc == SMIG_ECLOSED)
			break;
		if (rc < 0)
			die("receive", chan_why(c));
		if (t0 == 0)
			t0 = mono_s();
		smig_buf_commit(&rx, n);
		while ((rc = smig_frame_next(&rx, &f)) == 0) {
			if (f.type != SMIG_MSG_MIG_DATA)
				die("receive", "unexpected frame");
			res->bytes += f.len;
		}
		if (rc != SMIG_EAGAIN)
			die("receive", smig_strerror(rc));
	}
	res->seconds = mono_s() - t0;
	res->cpu_s = cpu_s() - c0;
	snprintf(res->cipher, sizeof(res->cipher), "%s", c->tls ? smig_tls_cipher(c->tls) : "none");
	smig_buf_clear(&rx);
	chan_close(c, false);
}

/* The source: frame the stream and write it through TLS. */
static void send_all(struct chan *c, unsigned long long total, struct side_result *res)
{
	uint8_t *stream = malloc(CHUNK);
	struct smig_buf tx;
	double t0 = mono_s(), c0 = cpu_s();

	if (stream == NULL)
		die("send", "out of memory");
	if (RAND_bytes(stream, (int)CHUNK) != 1) /* guest pages do not compress: nor does this */
		die("send", "no random bytes");
	smig_buf_init(&tx, 2 * CHUNK);
	while (res->bytes < total) {
		size_t mark, n;
		uint8_t *dst = NULL;

		if (smig_frame_begin(&tx, SMIG_MSG_MIG_DATA, &mark) < 0 ||
		    smig_buf_reserve(&tx, CHUNK, &dst) < 0)
			die("send", "buffer");
		memcpy(dst, stream, CHUNK); /* stands in for smigd's recv() from QEMU */
		smig_buf_commit(&tx, CHUNK);
		(void)smig_frame_end(&tx, mark);
		chan_cork(c, 1); /* as smigd's peer_flush() does */
		while (smig_buf_remaining(&tx) > 0) {
			if (chan_write(c, smig_buf_peek(&tx), smig_buf_remaining(&tx), &n) < 0)
				die("send", chan_why(c));
			(void)smig_buf_consume(&tx, n);
		}
		chan_cork(c, 0);
		res->bytes += CHUNK;
	}
	chan_close(c, true);
	res->seconds = mono_s() - t0;
	res->cpu_s = cpu_s() - c0;
	smig_buf_clear(&tx);
	free(stream);
}

static int listen_any(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		die("listen", strerror(errno));
	*port = ntohs(sa.sin_port);
	return fd;
}

int main(int argc, char **argv)
{
	struct side_result rx = { 0 }, tx = { 0 };
	unsigned long long mib = argc > 2 ? strtoull(argv[2], NULL, 10) : 4096;
	bool plain = argc > 3 && strcmp(argv[3], "--plain") == 0;
	int pipefd[2], one = 1, lfd, fd;
	struct chan c;
	uint16_t port;
	pid_t pid;

	if (argc < 2 || mib == 0 || (argc > 3 && !plain))
		die("usage", "smig-bench-relay PKI_DIR [MiB] [--plain]");
	lfd = listen_any(&port);
	if (pipe(pipefd) < 0)
		die("pipe", strerror(errno));
	pid = fork();
	if (pid < 0)
		die("fork", strerror(errno));
	if (pid == 0) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			die("accept", strerror(errno));
		c = chan_open(argv[1], "h2", fd, true, plain);
		receive(&c, &rx);
		if (write(pipefd[1], &rx, sizeof(rx)) != (ssize_t)sizeof(rx))
			die("pipe", "short write");
		_exit(0);
	}
	{
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die("connect", strerror(errno));
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	c = chan_open(argv[1], "h1", fd, false, plain);
	send_all(&c, mib << 20, &tx);
	close(fd);
	if (read(pipefd[0], &rx, sizeof(rx)) != (ssize_t)sizeof(rx))
		die("receiver", "no result");
	(void)waitpid(pid, NULL, 0);
	if (rx.bytes != tx.bytes)
		die("relay", "bytes lost");
	printf("{\"bytes\": %llu, \"seconds\": %.3f, \"mbytes_per_s\": %.1f, \"cipher\": \"%s\", "
	       "\"sender_cpu_s\": %.3f, \"receiver_cpu_s\": %.3f}\n",
	       rx.bytes, rx.seconds, (double)rx.bytes / 1e6 / rx.seconds, rx.cipher, tx.cpu_s,
	       rx.cpu_s);
	return 0;
}
