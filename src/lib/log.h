/*
 * log.h - the one logging function of smig.
 *
 * Lines are "TIME LEVEL prog[pid]: event=NAME key=value ...": callers pass
 * an event name and key=value fields so that logs grep well. Output goes to
 * stderr and, when enabled, to syslog. Never log secrets or guest memory.
 */
#ifndef SMIG_LOG_H
#define SMIG_LOG_H

#include <stdbool.h>

enum smig_log_level {
	SMIG_LOG_ERROR = 0,
	SMIG_LOG_WARN = 1,
	SMIG_LOG_INFO = 2,
	SMIG_LOG_DEBUG = 3,
};

/* prog is kept by reference; pass a string literal or argv[0]. */
void smig_log_init(const char *prog, enum smig_log_level level, bool use_syslog);
void smig_log_set_level(enum smig_log_level level);
/* Parses "error", "warn", "info" or "debug"; 0 or SMIG_EINVAL. */
int smig_log_level_parse(const char *name, enum smig_log_level *out);

__attribute__((format(printf, 2, 3)))
void smig_log(enum smig_log_level level, const char *fmt, ...);
/*
 * Stop points, for fault tests: a comma-separated list of event names
 * (smigd takes it from SMIG_STOP_AT). The first time the process logs one
 * of them, at any level, it logs "event=stopped_at" and stops itself
 * (SIGSTOP), so a test can inject a fault at exactly that step and then
 * continue it (SIGCONT) or kill it. Empty or NULL: none. Only in builds
 * configured with -Dstop_points=true; elsewhere a list is SMIG_EINVAL.
 */
int smig_log_stop_at(const char *list);

#define smig_err(...) smig_log(SMIG_LOG_ERROR, __VA_ARGS__)
#define smig_warn(...) smig_log(SMIG_LOG_WARN, __VA_ARGS__)
#define smig_info(...) smig_log(SMIG_LOG_INFO, __VA_ARGS__)
#define smig_debug(...) smig_log(SMIG_LOG_DEBUG, __VA_ARGS__)

#endif
