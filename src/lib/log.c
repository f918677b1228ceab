/*
 * log.c - stderr and syslog output for smig_log().
 */
#include "log.h"
#include "error.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "smig";
static enum smig_log_level log_level = SMIG_LOG_INFO;
static bool log_syslog;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* Stop points: event names at which the process stops itself (once each). */
#define STOP_POINTS_MAX 8
static char stop_at[STOP_POINTS_MAX][48];
static size_t nstop_at;

int smig_log_stop_at(const char *list)
{
	nstop_at = 0;
#ifndef SMIG_STOP_POINTS
	if (list && *list)
		return SMIG_EINVAL; /* a production build: never stops itself */
#endif
	while (list && *list && nstop_at < STOP_POINTS_MAX) {
		size_t n = strcspn(list, ",");

		if (n > 0 && n < sizeof(stop_at[0])) {
			memcpy(stop_at[nstop_at], list, n);
			stop_at[nstop_at++][n] = '\0';
		}
		list += n + (list[n] == ',');
	}
	return 0;
}

/* Is msg "event=NAME ..." with NAME a stop point? Each stops once. */
static bool stop_point(const char *msg)
{
	size_t n;

	if (nstop_at == 0 || strncmp(msg, "event=", 6) != 0)
		return false;
	n = strcspn(msg + 6, " ");
	for (size_t i = 0; i < nstop_at; i++) {
		if (stop_at[i][0] && strlen(stop_at[i]) == n && strncmp(stop_at[i], msg + 6, n) == 0) {
			stop_at[i][0] = '\0';
			return true;
		}
	}
	return false;
}

void smig_log_init(const char *prog, enum smig_log_level level, bool use_syslog)
{
	const char *slash = strrchr(prog, '/');

	log_prog = slash ? slash + 1 : prog;
	log_level = level;
	if (log_syslog && !use_syslog)
		closelog();
	log_syslog = use_syslog;
	if (use_syslog)
		openlog(log_prog, LOG_PID, LOG_DAEMON);
}

void smig_log_set_level(enum smig_log_level level)
{
	log_level = level;
}

int smig_log_level_parse(const char *name, enum smig_log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum smig_log_level)i;
			return 0;
		}
	}
	return SMIG_EINVAL;
}

void smig_log(enum smig_log_level level, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char msg[1024];
	char stamp[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	bool stop;

	if (level > log_level && nstop_at == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	stop = stop_point(msg);
	if (level > log_level && !stop)
		return;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %s %s[%d]: %s\n", stamp, ts.tv_nsec / 1000000,
		level_names[level], log_prog, (int)getpid(), msg);
	if (log_syslog)
		syslog(prio[level], "%s", msg);
	if (stop) {
		fprintf(stderr, "%s.%03ldZ %s %s[%d]: event=stopped_at point=%.*s\n", stamp,
			ts.tv_nsec / 1000000, level_names[level], log_prog, (int)getpid(),
			(int)strcspn(msg + 6, " "), msg + 6);
		fflush(stderr);
		(void)raise(SIGSTOP);
	}
}
