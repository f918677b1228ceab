/*
 * qmpconn.c - QMP over a unix socket on the event loop (qmpconn.h).
 *
 * The socket comes connected (the warden connects to the listening socket
 * QEMU inherited, before QEMU may even be up: its greeting says when it
 * is). Commands are short and written with one sendmsg() each; the socket
 * buffer is far larger than any of them.
 *
 * Callbacks may free the connection (a failed start tears the VM down from
 * inside a reply callback). Entry points from the loop therefore count
 * themselves in q->depth; qmpconn_free() inside a callback only marks the
 * connection doomed, and the outermost entry point releases it.
 */
#include "vm/qmpconn.h"
#include "buf.h"
#include "error.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define QMP_GREETING_MS 10000
#define QMP_REPLY_MS 30000

struct pending {
	struct pending *next;
	uint64_t id;
	uint64_t deadline;
	qmp_reply_fn cb;
	void *arg;
};

struct qmpconn {
	struct loop *loop;
	int fd;
	bool ready;
	bool failed;
	bool doomed; /* freed while a callback ran; released on the way out */
	int depth;   /* loop entry points currently on the stack */
	uint64_t greeting_deadline;
	struct loop_watch *w;
	struct loop_timer *timer;
	struct smig_buf rx;
	struct pending *pending;
	uint64_t next_id;
	qmp_state_fn on_state;
	qmp_event_fn on_event;
	void *arg;
};

static void qmp_tick(void *arg);

static void qmp_disconnect(struct qmpconn *q)
{
	loop_watch_del(q->loop, q->w);
	q->w = NULL;
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
}

static void qmp_release(struct qmpconn *q)
{
	struct pending *p;

	loop_timer_cancel(q->loop, q->timer);
	qmp_disconnect(q);
	while ((p = q->pending) != NULL) {
		q->pending = p->next;
		free(p);
	}
	smig_buf_clear(&q->rx);
	free(q);
}

static void qmp_enter(struct qmpconn *q)
{
	q->depth++;
}

/* Leaves an entry point; false if the connection is gone or going. */
static bool qmp_leave(struct qmpconn *q)
{
	if (--q->depth == 0 && q->doomed) {
		qmp_release(q);
		return false;
	}
	return !q->doomed;
}

static void qmp_fail(struct qmpconn *q, const char *why)
{
	struct pending *p;

	if (q->failed)
		return;
	q->failed = true;
	qmp_disconnect(q);
	while (!q->doomed && (p = q->pending) != NULL) {
		q->pending = p->next;
		if (p->cb)
			p->cb(p->arg, NULL);
		free(p);
	}
	if (!q->doomed)
		q->on_state(q->arg, false, why);
}

static void qmp_dispatch(struct qmpconn *q, struct smig_qmp_msg *m)
{
	if (m->kind == SMIG_QMP_GREETING) {
		(void)qmpconn_send(q, "qmp_capabilities", NULL, -1, NULL, NULL);
		q->ready = true;
		q->on_state(q->arg, true, NULL);
		return;
	}
	if (m->kind == SMIG_QMP_EVENT) {
		q->on_event(q->arg, m);
		return;
	}
	for (struct pending **pp = &q->pending; *pp; pp = &(*pp)->next) {
		struct pending *p = *pp;
		if (m->has_id && p->id == m->id) {
			*pp = p->next;
			if (p->cb)
				p->cb(p->arg, m);
			free(p);
			return;
		}
	}
}

static void qmp_read(struct qmpconn *q)
{
	for (;;) {
		uint8_t *dst;
		ssize_t r;

		if (smig_buf_reserve(&q->rx, 65536, &dst) < 0) {
			qmp_fail(q, "QMP line too long");
			return;
		}
		r = recv(q->fd, dst, 65536, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0) {
			qmp_fail(q, "QMP connection closed");
			return;
		}
		smig_buf_commit(&q->rx, (size_t)r);
		for (;;) {
			const uint8_t *p = smig_buf_peek(&q->rx);
			const uint8_t *nl = memchr(p, '\n', smig_buf_remaining(&q->rx));
			struct smig_qmp_msg m;
			size_t len;

			if (nl == NULL)
				break;
			len = (size_t)(nl - p);
			if (smig_qmp_parse((const char *)p, len, &m) == 0) {
				qmp_dispatch(q, &m);
				smig_qmp_msg_clear(&m);
			} else {
				smig_warn("event=qmp_bad_line fd=%d", q->fd);
			}
			(void)smig_buf_consume(&q->rx, len + 1);
			if (q->failed || q->doomed)
				return;
		}
	}
}

static void qmp_io(void *arg, uint32_t events)
{
	struct qmpconn *q = arg;

	(void)events;
	qmp_enter(q);
	qmp_read(q);
	(void)qmp_leave(q);
}

/* The greeting in time, then reply timeouts, every second. */
static void qmp_check(struct qmpconn *q)
{
	uint64_t now = loop_now_ms();

	if (q->failed)
		return;
	if (!q->ready && now > q->greeting_deadline) {
		qmp_fail(q, "no QMP greeting from QEMU");
		return;
	}
	for (struct pending *p = q->pending; p; p = p->next) {
		if (p->deadline < now) {
			qmp_fail(q, "QMP command timed out");
			return;
		}
	}
	(void)loop_timer_add(q->loop, 1000, qmp_tick, q, &q->timer);
}

static void qmp_tick(void *arg)
{
	struct qmpconn *q = arg;

	q->timer = NULL;
	qmp_enter(q);
	qmp_check(q);
	(void)qmp_leave(q);
}

struct qmpconn *qmpconn_new(struct loop *loop, int fd, qmp_state_fn on_state,
			    qmp_event_fn on_event, void *arg)
{
	struct qmpconn *q = calloc(1, sizeof(*q));

	if (q == NULL || fd < 0 || loop_watch_add(loop, fd, EPOLLIN, qmp_io, q, &q->w) < 0) {
		if (fd >= 0)
			close(fd);
		free(q);
		return NULL;
	}
	q->loop = loop;
	q->fd = fd;
	q->greeting_deadline = loop_now_ms() + QMP_GREETING_MS;
	q->on_state = on_state;
	q->on_event = on_event;
	q->arg = arg;
	smig_buf_init(&q->rx, SMIG_QMP_LINE_MAX + 65536);
	(void)loop_timer_add(loop, 1000, qmp_tick, q, &q->timer);
	return q;
}

void qmpconn_free(struct qmpconn *q)
{
	if (q == NULL)
		return;
	if (q->depth > 0) {
		/* inside one of our callbacks: stop everything, release on the way out */
		q->doomed = true;
		loop_timer_cancel(q->loop, q->timer);
		q->timer = NULL;
		qmp_disconnect(q);
		return;
	}
	qmp_release(q);
}

int qmpconn_send(struct qmpconn *q, const char *cmd, json_t *args, int fd, qmp_reply_fn cb,
		 void *cb_arg)
{
	uint64_t id = ++q->next_id;
	char *line = smig_qmp_command(cmd, args, id);
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct pending *p;
	ssize_t w;

	SMIG_ENSURE(line != NULL, SMIG_ENOMEM);
	if (q->fd < 0 || q->failed) {
		free(line);
		return SMIG_ECLOSED;
	}
	iov.iov_base = line;
	iov.iov_len = strlen(line);
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	w = sendmsg(q->fd, &mh, MSG_NOSIGNAL);
	free(line);
	SMIG_ENSURE(w == (ssize_t)iov.iov_len, SMIG_EIO);
	p = calloc(1, sizeof(*p));
	SMIG_ENSURE(p != NULL, SMIG_ENOMEM);
	p->id = id;
	p->deadline = loop_now_ms() + QMP_REPLY_MS;
	p->cb = cb;
	p->arg = cb_arg;
	p->next = q->pending;
	q->pending = p;
	return 0;
}
