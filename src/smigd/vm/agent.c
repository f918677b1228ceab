/*
 * agent.c - a guest agent ping. The sync id is random so an answer left in
 * the port by an earlier ping that timed out never counts for this one.
 * What the guest sends back is bounded: at most AGENT_BUF_MAX bytes are
 * held, and the parser drops what cannot be the answer.
 */
#include "vm/agent.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "qga.h"

#define AGENT_BUF_MAX (2 * SMIG_QGA_LINE_MAX)

struct agent_ping {
	struct loop *loop;
	int fd;
	uint32_t id;
	struct loop_watch *w;
	struct loop_timer *timer;
	agent_ping_fn cb;
	void *arg;
	char why[160];
	uint8_t buf[AGENT_BUF_MAX];
	size_t len;
};

void agent_ping_cancel(struct agent_ping *p)
{
	if (p == NULL)
		return;
	loop_watch_del(p->loop, p->w);
	loop_timer_cancel(p->loop, p->timer);
	if (p->fd >= 0)
		close(p->fd);
	free(p);
}

static void finish(struct agent_ping *p, bool answered)
{
	agent_ping_fn cb = p->cb;
	void *arg = p->arg;
	char why[sizeof(p->why)];

	snprintf(why, sizeof(why), "%s", p->why);
	agent_ping_cancel(p);
	cb(arg, answered, why);
}

static void on_timeout(void *arg)
{
	struct agent_ping *p = arg;

	p->timer = NULL;
	finish(p, false);
}

static void on_io(void *arg, uint32_t events)
{
	struct agent_ping *p = arg;
	size_t drop = 0;
	ssize_t n;

	(void)events;
	n = read(p->fd, p->buf + p->len, sizeof(p->buf) - p->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		snprintf(p->why, sizeof(p->why), "the agent socket closed (%s)",
			 n < 0 ? strerror(errno) : "EOF");
		loop_watch_del(p->loop, p->w);
		p->w = NULL; /* the timeout ends it: QEMU may take the connection back */
		return;
	}
	p->len += (size_t)n;
	if (smig_qga_sync_answer(p->buf, p->len, p->id, &drop) == 1) {
		snprintf(p->why, sizeof(p->why), "answered");
		finish(p, true);
		return;
	}
	if (drop == 0 && p->len == sizeof(p->buf))
		drop = p->len; /* cannot happen with the parser's bound; never stall */
	memmove(p->buf, p->buf + drop, p->len - drop);
	p->len -= drop;
}

static int ping_send(struct agent_ping *p, int fd)
{
	char req[SMIG_QGA_REQUEST_MAX];
	int n;

	p->fd = fd;
	if (fd < 0) {
		snprintf(p->why, sizeof(p->why), "cannot connect to the agent socket");
		return -1;
	}
	n = smig_qga_sync_request(p->id, req, sizeof(req));
	if (n < 0 || send(p->fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		snprintf(p->why, sizeof(p->why), "cannot write to the agent socket: %s",
			 strerror(errno));
		return -1;
	}
	snprintf(p->why, sizeof(p->why), "no answer from the guest agent");
	return loop_watch_add(p->loop, p->fd, EPOLLIN, on_io, p, &p->w) < 0 ? -1 : 0;
}

struct agent_ping *agent_ping_start(struct loop *loop, int fd, int timeout_ms, agent_ping_fn cb,
				    void *arg)
{
	struct agent_ping *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	p->loop = loop;
	p->fd = -1;
	p->cb = cb;
	p->arg = arg;
	if (RAND_bytes((unsigned char *)&p->id, sizeof(p->id)) != 1)
		p->id = (uint32_t)loop_now_ns();
	p->id = (p->id & 0x7fffffffu) | 1u;
	/* a failed connect ends the ping at once, but still from the loop */
	if (ping_send(p, fd) < 0)
		timeout_ms = 0;
	if (loop_timer_add(loop, (uint64_t)timeout_ms, on_timeout, p, &p->timer) < 0) {
		agent_ping_cancel(p);
		return NULL;
	}
	return p;
}
