/*
 * loop.c - epoll event loop with one-shot timers (loop.h).
 */
#include "common/loop.h"
#include "error.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define LOOP_BATCH 64

struct loop_watch {
	struct loop_watch *next; /* on the dead list once removed */
	int fd;
	bool dead;
	loop_io_fn fn;
	void *arg;
};

struct loop_timer {
	struct loop_timer *next;
	uint64_t due_ms;
	loop_timer_fn fn;
	void *arg;
};

struct loop {
	int epfd;
	bool stop;
	struct loop_watch *dead;
	struct loop_timer *timers; /* sorted by due_ms */
};

uint64_t loop_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t loop_now_ms(void)
{
	return loop_now_ns() / 1000000u;
}

int64_t loop_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int loop_new(struct loop **out)
{
	struct loop *l = calloc(1, sizeof(*l));

	SMIG_ENSURE(l != NULL, SMIG_ENOMEM);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return SMIG_EIO;
	}
	*out = l;
	return 0;
}

static void loop_reap(struct loop *l)
{
	while (l->dead) {
		struct loop_watch *w = l->dead;
		l->dead = w->next;
		free(w);
	}
}

void loop_free(struct loop *l)
{
	if (l == NULL)
		return;
	loop_reap(l);
	while (l->timers) {
		struct loop_timer *t = l->timers;
		l->timers = t->next;
		free(t);
	}
	close(l->epfd);
	free(l);
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}

int loop_watch_add(struct loop *l, int fd, uint32_t events, loop_io_fn fn, void *arg,
		   struct loop_watch **out)
{
	struct loop_watch *w = calloc(1, sizeof(*w));
	struct epoll_event ev = { .events = events };

	SMIG_ENSURE(w != NULL, SMIG_ENOMEM);
	w->fd = fd;
	w->fn = fn;
	w->arg = arg;
	ev.data.ptr = w;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(w);
		return SMIG_EIO;
	}
	if (out)
		*out = w;
	return 0;
}

int loop_watch_mod(struct loop *l, struct loop_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	SMIG_ENSURE(!w->dead, SMIG_EINVAL);
	SMIG_ENSURE(epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev) == 0, SMIG_EIO);
	return 0;
}

void loop_watch_del(struct loop *l, struct loop_watch *w)
{
	if (w == NULL || w->dead)
		return;
	(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	w->dead = true;
	w->next = l->dead;
	l->dead = w;
}

int loop_timer_add(struct loop *l, uint64_t ms, loop_timer_fn fn, void *arg,
		   struct loop_timer **out)
{
	struct loop_timer *t = calloc(1, sizeof(*t));
	struct loop_timer **pp = &l->timers;

	SMIG_ENSURE(t != NULL, SMIG_ENOMEM);
	t->due_ms = loop_now_ms() + ms;
	t->fn = fn;
	t->arg = arg;
	while (*pp && (*pp)->due_ms <= t->due_ms)
		pp = &(*pp)->next;
	t->next = *pp;
	*pp = t;
	if (out)
		*out = t;
	return 0;
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
	for (struct loop_timer **pp = &l->timers; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			free(t);
			return;
		}
	}
}

static void loop_fire_timers(struct loop *l)
{
	uint64_t now = loop_now_ms();

	while (l->timers && l->timers->due_ms <= now && !l->stop) {
		struct loop_timer *t = l->timers;
		l->timers = t->next;
		t->fn(t->arg);
		free(t);
	}
}

int loop_run_once(struct loop *l, int max_wait_ms)
{
	struct epoll_event evs[LOOP_BATCH];
	int timeout = max_wait_ms;
	int n;

	if (l->timers) {
		uint64_t now = loop_now_ms();
		uint64_t due = l->timers->due_ms;
		int until = due <= now ? 0 : (int)(due - now > 60000 ? 60000 : due - now);

		if (timeout < 0 || until < timeout)
			timeout = until;
	}
	n = epoll_wait(l->epfd, evs, LOOP_BATCH, timeout);
	if (n < 0 && errno != EINTR)
		return SMIG_EIO;
	for (int i = 0; i < n && !l->stop; i++) {
		struct loop_watch *w = evs[i].data.ptr;
		if (!w->dead)
			w->fn(w->arg, evs[i].events);
	}
	loop_reap(l);
	loop_fire_timers(l);
	return 0;
}

int loop_run(struct loop *l)
{
	while (!l->stop)
		SMIG_GUARD(loop_run_once(l, -1));
	return 0;
}
