/*
 * priv.c - the worker's link to the warden (priv.h). One SOCK_SEQPACKET
 * socket; requests carry ids; replies to waiting requests are matched as
 * they come, and whatever arrives while a synchronous call waits (other
 * replies, notifications) is queued and handled from the loop right after,
 * so a handler never runs inside another's call.
 */
#include "core/priv.h"
#include "error.h"
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PRIV_WAIT_MS 30000

struct pending {
	struct pending *next;
	uint32_t id;
	priv_reply_fn cb;
	void *arg;
};

struct queued {
	struct queued *next;
	uint8_t *data;
	size_t len;
	int fds[SMIG_PM_FDS_MAX];
	size_t nfds;
};

struct handler {
	priv_event_fn fn;
	void *arg;
};

struct priv {
	struct loop *loop;
	int fd;
	struct loop_watch *w;
	uint8_t *rx;
	struct smig_buf tx;
	uint32_t next_id;
	struct pending *pending;
	struct queued *qhead, *qtail;
	struct loop_timer *drain;
	struct handler on[SMIG_PM_TYPE_MAX];
};

int priv_status(const struct smig_pm *r)
{
	return r->nf > 0 && r->f[0].kind == 'u' ? -(int)smig_pm_int(r, 0) : 0;
}

/* The warden is gone: nothing this worker does can work any more. */
__attribute__((noreturn)) static void warden_gone(const char *why)
{
	smig_err("event=warden_gone reason=\"%s\" action=exit", why);
	_exit(1);
}

static void close_fds(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

static void dispatch(struct priv *p, const uint8_t *data, size_t len, const int *fds,
		     size_t nfds)
{
	struct smig_pm m;

	if (smig_pm_parse(data, len, fds, nfds, &m) < 0) {
		smig_err("event=warden_message_bad len=%zu", len);
		close_fds(fds, nfds);
		return;
	}
	if (m.type >= SMIG_PM_EV_VM_EXIT) {
		if (m.type < SMIG_PM_TYPE_MAX && p->on[m.type].fn)
			p->on[m.type].fn(p->on[m.type].arg, &m);
		close_fds(m.fds, m.nfds);
		return;
	}
	for (struct pending **pp = &p->pending; *pp; pp = &(*pp)->next) {
		struct pending *q = *pp;

		if (q->id != m.id)
			continue;
		*pp = q->next;
		q->cb(q->arg, &m); /* the callback owns m's descriptors */
		free(q);
		return;
	}
	smig_warn("event=warden_reply_unexpected type=%s id=%u", smig_pm_name(m.type), m.id);
	close_fds(fds, nfds);
}

static void on_drain(void *arg)
{
	struct priv *p = arg;

	p->drain = NULL;
	while (p->qhead) {
		struct queued *q = p->qhead;

		p->qhead = q->next;
		if (p->qhead == NULL)
			p->qtail = NULL;
		dispatch(p, q->data, q->len, q->fds, q->nfds);
		free(q->data);
		free(q);
	}
}

/* Keeps a datagram that came during a synchronous wait for the loop to handle. */
static void enqueue(struct priv *p, size_t len, const int *fds, size_t nfds)
{
	struct queued *q = calloc(1, sizeof(*q));

	if (q == NULL || (q->data = malloc(len ? len : 1)) == NULL) {
		free(q);
		close_fds(fds, nfds);
		smig_err("event=warden_message_dropped reason=\"out of memory\"");
		return;
	}
	memcpy(q->data, p->rx, len);
	q->len = len;
	memcpy(q->fds, fds, nfds * sizeof(int));
	q->nfds = nfds;
	if (p->qtail)
		p->qtail->next = q;
	else
		p->qhead = q;
	p->qtail = q;
	if (p->drain == NULL)
		(void)loop_timer_add(p->loop, 0, on_drain, p, &p->drain);
}

static void on_readable(void *arg, uint32_t events)
{
	struct priv *p = arg;
	int fds[SMIG_PM_FDS_MAX];
	size_t len, nfds;

	(void)events;
	for (;;) {
		int rc = smig_pm_recv(p->fd, p->rx, SMIG_PM_MAX, &len, fds, &nfds);

		if (rc == SMIG_EAGAIN)
			return;
		if (rc == SMIG_EPROTO)
			continue;
		if (rc < 0)
			warden_gone(rc == SMIG_ECLOSED ? "its socket closed" : strerror(errno));
		dispatch(p, p->rx, len, fds, nfds);
	}
}

int priv_open(struct loop *loop, int fd, struct priv **out)
{
	struct priv *p = calloc(1, sizeof(*p));

	SMIG_ENSURE(p != NULL, SMIG_ENOMEM);
	p->loop = loop;
	p->fd = fd;
	p->rx = malloc(SMIG_PM_MAX);
	smig_buf_init(&p->tx, SMIG_PM_MAX);
	if (p->rx == NULL || loop_watch_add(loop, fd, EPOLLIN, on_readable, p, &p->w) < 0) {
		priv_close(p);
		return SMIG_ENOMEM;
	}
	*out = p;
	return 0;
}

void priv_close(struct priv *p)
{
	if (p == NULL)
		return;
	loop_watch_del(p->loop, p->w);
	loop_timer_cancel(p->loop, p->drain);
	while (p->pending) {
		struct pending *q = p->pending;

		p->pending = q->next;
		free(q);
	}
	while (p->qhead) {
		struct queued *q = p->qhead;

		p->qhead = q->next;
		close_fds(q->fds, q->nfds);
		free(q->data);
		free(q);
	}
	if (p->fd >= 0)
		close(p->fd);
	smig_buf_clear(&p->tx);
	free(p->rx);
	free(p);
}

void priv_on(struct priv *p, uint16_t type, priv_event_fn fn, void *arg)
{
	if (type < SMIG_PM_TYPE_MAX) {
		p->on[type].fn = fn;
		p->on[type].arg = arg;
	}
}

static int send_request(struct priv *p, uint16_t type, uint32_t *id, va_list ap)
{
	*id = ++p->next_id ? p->next_id : ++p->next_id; /* 0 is a notification's */
	SMIG_GUARD(smig_pm_vbuild(&p->tx, type, *id, ap));
	if (smig_pm_send(p->fd, &p->tx, NULL, 0) < 0)
		warden_gone(strerror(errno));
	return 0;
}

int priv_call(struct priv *p, struct smig_pm *r, int type, ...)
{
	uint64_t deadline = loop_now_ms() + PRIV_WAIT_MS;
	int fds[SMIG_PM_FDS_MAX];
	size_t len, nfds;
	uint32_t id;
	va_list ap;
	int rc;

	va_start(ap, type);
	rc = send_request(p, (uint16_t)type, &id, ap);
	va_end(ap);
	SMIG_GUARD(rc);
	for (;;) {
		struct pollfd pf = { .fd = p->fd, .events = POLLIN };
		uint64_t now = loop_now_ms();

		if (now >= deadline) {
			smig_err("event=warden_silent request=%s", smig_pm_name((uint16_t)type));
			return SMIG_ETIMEDOUT;
		}
		if (poll(&pf, 1, (int)(deadline - now)) < 0 && errno != EINTR)
			return SMIG_EIO;
		rc = smig_pm_recv(p->fd, p->rx, SMIG_PM_MAX, &len, fds, &nfds);
		if (rc == SMIG_EAGAIN || rc == SMIG_EPROTO)
			continue;
		if (rc < 0)
			warden_gone(rc == SMIG_ECLOSED ? "its socket closed" : strerror(errno));
		if (smig_pm_parse(p->rx, len, fds, nfds, r) == 0 && r->type == type + 1 &&
		    r->id == id)
			return 0;
		enqueue(p, len, fds, nfds);
	}
}

int priv_call_async(struct priv *p, priv_reply_fn cb, void *arg, uint32_t *id, int type, ...)
{
	struct pending *q = calloc(1, sizeof(*q));
	va_list ap;
	int rc;

	SMIG_ENSURE(q != NULL, SMIG_ENOMEM);
	va_start(ap, type);
	rc = send_request(p, (uint16_t)type, &q->id, ap);
	va_end(ap);
	if (rc < 0) {
		free(q);
		return rc;
	}
	q->cb = cb;
	q->arg = arg;
	if (id)
		*id = q->id;
	q->next = p->pending;
	p->pending = q;
	return 0;
}
