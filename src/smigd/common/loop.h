/*
 * loop.h - smigd's single event loop: epoll for descriptors, a short list
 * of one-shot timers on the monotonic clock.
 *
 * A watch removed inside a callback is only marked dead and freed after
 * the current batch of events, so a later event of the same batch never
 * reaches a freed object.
 */
#ifndef SMIGD_LOOP_H
#define SMIGD_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

struct loop;
struct loop_watch;
struct loop_timer;

typedef void (*loop_io_fn)(void *arg, uint32_t events);
typedef void (*loop_timer_fn)(void *arg);

int loop_new(struct loop **out);
void loop_free(struct loop *l);
/* Runs until loop_stop(); returns 0 or a negative code on epoll failure. */
int loop_run(struct loop *l);
/* One turn: waits up to max_wait_ms (-1: until the next timer) for events. */
int loop_run_once(struct loop *l, int max_wait_ms);
void loop_stop(struct loop *l);

int loop_watch_add(struct loop *l, int fd, uint32_t events, loop_io_fn fn, void *arg,
		   struct loop_watch **out);
int loop_watch_mod(struct loop *l, struct loop_watch *w, uint32_t events);
/* Stops watching (the fd is not closed); w may be NULL. */
void loop_watch_del(struct loop *l, struct loop_watch *w);

/* Calls fn(arg) once after ms milliseconds. */
int loop_timer_add(struct loop *l, uint64_t ms, loop_timer_fn fn, void *arg,
		   struct loop_timer **out);
/* Cancels a pending timer; t may be NULL. */
void loop_timer_cancel(struct loop *l, struct loop_timer *t);

/* Monotonic clock in milliseconds and nanoseconds. */
uint64_t loop_now_ms(void);
uint64_t loop_now_ns(void);
/* The wall clock (CLOCK_REALTIME) in ms since the epoch: for records and what people read. */
int64_t loop_wall_ms(void);

#endif
