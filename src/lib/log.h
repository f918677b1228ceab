/*
 * log.h - the one logging function of smig.
 *
 * Lines are "TIME LEVEL prog[pid]: event=NAME key=value ...": callers pass
 * an event name and key=value fields so that logs grep well. Output goes to
 * stderr and, when enabled, to syslog. Never log secrets or guest memory.
 */
#ifndef SMIG_LOG_H
#define SMIG_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum smig_log_level {
	SMIG_LOG_ERROR = 0,
	SMIG_LOG_WARN = 1,
	SMIG_LOG_INFO = 2,
	SMIG_LOG_DEBUG = 3,
};

/* prog is kept by reference; pass a string literal or argv[0]. */
void smig_log_init(const char *prog, enum smig_log_level level, bool use_syslog);
void smig_log_set_level(enum smig_log_level level);
/*
 * True when stderr is systemd's journal stream (JOURNAL_STREAM): lines
 * then carry their priority ("<3>" error .. "<7>" debug). smig_log_init
 * looks; call it again after stderr has changed.
 */
bool smig_log_stderr_is_journal(void);
/* stderr is another file now (log.file): looks again. */
void smig_log_reopened(void);
/* ms since the epoch as the log writes time: "2026-12-06T19:48:12.409Z" (UTC). */
#define SMIG_TIME_ISO_LEN 32
void smig_time_iso_ms(int64_t ms, char out[SMIG_TIME_ISO_LEN]);
/*
 * Text from elsewhere (a peer, a file name, a certificate) on its way to
 * logs, terminals, JSON and signed reports: smig_printable_copy copies s
 * with every byte outside printable ASCII as '?'; smig_is_printable says
 * whether s has none.
 */
void smig_printable_copy(const char *s, char *out, size_t outlen);
bool smig_is_printable(const char *s);
/* Parses "error", "warn", "info" or "debug"; 0 or SMIG_EINVAL. */
int smig_log_level_parse(const char *name, enum smig_log_level *out);

/*
 * Text that reaches a log from a peer, a client or a file never forges a
 * line or a field: every %s is escaped here, by where it stands in fmt.
 *  - in a quoted value (key="...%s..."): backslash and double quote get a
 *    backslash, and so does every control character or byte above 0x7e
 *    (\n, \r, \t, else \xHH);
 *  - as a whole unquoted value (key=%s): left as it is when it is made only
 *    of letters, digits and ._:/@+,-~ (names, paths, numbers), else quoted
 *    and escaped as above (an empty value becomes "");
 *  - anywhere else (a fragment the code put together): control characters
 *    and bytes above 0x7e as \xHH.
 * The other conversions (d i u x X o c f g e p, with flags, width,
 * precision and length) print as printf prints them.
 */
__attribute__((format(printf, 2, 3)))
void smig_log(enum smig_log_level level, const char *fmt, ...);
/* The line smig_log would write for fmt and ap (without time and level). */
void smig_log_format(char *out, size_t outlen, const char *fmt, va_list ap);
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
