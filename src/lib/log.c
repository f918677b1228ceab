/*
 * log.c - stderr and syslog output for smig_log(). When stderr is systemd's
 * journal (JOURNAL_STREAM names its device and inode), each line starts
 * with its priority as "<N>" (sd-daemon's convention), so that the journal
 * files errors as errors and journalctl -p works.
 */
#include "log.h"
#include "error.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "smig";
static enum smig_log_level log_level = SMIG_LOG_INFO;
static bool log_syslog;
static bool log_journal; /* stderr is the journal's stream */

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
	log_journal = smig_log_stderr_is_journal();
}

void smig_time_iso_ms(int64_t ms, char out[SMIG_TIME_ISO_LEN])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(out, SMIG_TIME_ISO_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, SMIG_TIME_ISO_LEN - n, ".%03dZ", (int)(ms % 1000));
}

void smig_log_reopened(void)
{
	log_journal = smig_log_stderr_is_journal();
}

bool smig_log_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char *end;

	if (js == NULL || fstat(STDERR_FILENO, &st) < 0)
		return false;
	dev = strtoull(js, &end, 10);
	if (end == js || *end != ':')
		return false;
	js = end + 1;
	ino = strtoull(js, &end, 10);
	if (end == js || *end != '\0')
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static bool printable_byte(char c)
{
	return (unsigned char)c >= 0x20 && (unsigned char)c < 0x7f;
}

void smig_printable_copy(const char *s, char *out, size_t outlen)
{
	size_t i = 0;

	if (outlen == 0)
		return;
	for (; s[i] && i + 1 < outlen; i++)
		out[i] = printable_byte(s[i]) ? s[i] : '?';
	out[i] = '\0';
}

bool smig_is_printable(const char *s)
{
	for (; *s; s++)
		if (!printable_byte(*s))
			return false;
	return true;
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

/* Output with a bound: what does not fit is dropped, out stays terminated. */
struct lbuf {
	char *p;
	size_t len, used;
};

static void put(struct lbuf *b, const char *s, size_t n)
{
	size_t room = b->len - 1 - b->used;

	if (n > room)
		n = room;
	memcpy(b->p + b->used, s, n);
	b->used += n;
	b->p[b->used] = '\0';
}

static bool plain_byte(unsigned char c)
{
	return c >= 0x20 && c < 0x7f;
}

/* A byte that may not stand as it is: \xHH. */
static void put_hex(struct lbuf *b, unsigned char c)
{
	char e[5];

	snprintf(e, sizeof(e), "\\x%02x", c);
	put(b, e, 4);
}

/* One byte as the quoted form writes it. */
static void put_quoted_byte(struct lbuf *b, unsigned char c)
{
	switch (c) {
	case '\\':
		put(b, "\\\\", 2);
		return;
	case '"':
		put(b, "\\\"", 2);
		return;
	case '\n':
		put(b, "\\n", 2);
		return;
	case '\r':
		put(b, "\\r", 2);
		return;
	case '\t':
		put(b, "\\t", 2);
		return;
	default:
		if (plain_byte(c))
			put(b, (const char *)&c, 1);
		else
			put_hex(b, c);
	}
}

static bool bare_value(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("._:/@+,-~", c)))
			return false;
	}
	return true;
}

enum where { FREE, VALUE, QUOTED };

static void put_text(struct lbuf *b, const char *s, size_t n, enum where w)
{
	if (w == VALUE && bare_value(s, n)) {
		put(b, s, n);
		return;
	}
	if (w == VALUE)
		put(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (w != FREE)
			put_quoted_byte(b, c);
		else if (plain_byte(c))
			put(b, s + i, 1);
		else
			put_hex(b, c);
	}
	if (w == VALUE)
		put(b, "\"", 1);
}

/* One conversion other than %s, from its spec (as in fmt) and its argument. */
static void put_conv(struct lbuf *b, enum where w, const char *spec, size_t speclen, const char *len,
		     char conv, const int *stars, int nstars, va_list *ap)
{
	char f[32], out[128];

	if (speclen >= sizeof(f))
		return;
	memcpy(f, spec, speclen);
	f[speclen] = '\0';
#define CONV(T)                                                                           \
	do {                                                                              \
		T v_ = va_arg(*ap, T);                                                    \
		if (nstars == 2)                                                          \
			snprintf(out, sizeof(out), f, stars[0], stars[1], v_);            \
		else if (nstars == 1)                                                     \
			snprintf(out, sizeof(out), f, stars[0], v_);                      \
		else                                                                      \
			snprintf(out, sizeof(out), f, v_);                                \
	} while (0)
	_Pragma("GCC diagnostic push");
	_Pragma("GCC diagnostic ignored \"-Wformat-nonliteral\"");
	switch (conv) {
	case 'd':
	case 'i':
		if (strcmp(len, "ll") == 0)
			CONV(long long);
		else if (strcmp(len, "l") == 0)
			CONV(long);
		else if (strcmp(len, "z") == 0 || strcmp(len, "t") == 0 || strcmp(len, "j") == 0)
			CONV(long long); /* ssize_t, ptrdiff_t and intmax_t are 64 bits here */
		else
			CONV(int);
		break;
	case 'u':
	case 'x':
	case 'X':
	case 'o':
		if (strcmp(len, "ll") == 0)
			CONV(unsigned long long);
		else if (strcmp(len, "l") == 0)
			CONV(unsigned long);
		else if (strcmp(len, "z") == 0 || strcmp(len, "t") == 0 || strcmp(len, "j") == 0)
			CONV(unsigned long long);
		else
			CONV(unsigned int);
		break;
	case 'c':
		CONV(int);
		break;
	case 'f':
	case 'F':
	case 'g':
	case 'G':
	case 'e':
	case 'E':
		if (strcmp(len, "L") == 0)
			CONV(long double);
		else
			CONV(double);
		break;
	case 'p':
		CONV(void *);
		break;
	default:
		snprintf(out, sizeof(out), "%%%c?", conv);
	}
	_Pragma("GCC diagnostic pop");
#undef CONV
	put_text(b, out, strlen(out), w); /* a %c may be a quote or a newline too */
}

void smig_log_format(char *out, size_t outlen, const char *fmt, va_list ap_in)
{
	struct lbuf b = { .p = out, .len = outlen };
	bool quoted = false;
	char prev = 0;
	va_list ap;

	if (outlen == 0)
		return;
	out[0] = '\0';
	va_copy(ap, ap_in);
	for (const char *p = fmt; *p;) {
		const char *spec = p, *s;
		char len[3] = "";
		int stars[2] = { 0, 0 }, nstars = 0, prec = -1;
		enum where w;
		size_t n;

		if (*p != '%' || p[1] == '%') {
			if (*p == '"')
				quoted = quoted ? false : prev == '=';
			prev = *p;
			put(&b, p, 1);
			p += *p == '%' ? 2 : 1;
			continue;
		}
		p++;
		p += strspn(p, "-+ #0");
		if (*p == '*') {
			stars[nstars++] = va_arg(ap, int);
			p++;
		} else
			p += strspn(p, "0123456789");
		if (*p == '.') {
			p++;
			if (*p == '*') {
				prec = va_arg(ap, int);
				stars[nstars++] = prec;
				p++;
			} else {
				prec = (int)strtol(p, NULL, 10);
				p += strspn(p, "0123456789");
			}
		}
		n = strspn(p, "hlzjtL");
		if (n > 2)
			n = 2;
		memcpy(len, p, n);
		p += n;
		if (*p == '\0')
			break;
		w = quoted ? QUOTED : prev == '=' ? VALUE : FREE;
		if (*p == 's') {
			s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			n = prec >= 0 ? strnlen(s, (size_t)prec) : strlen(s);
			put_text(&b, s, n, w);
		} else {
			put_conv(&b, w, spec, (size_t)(p + 1 - spec), len, *p, stars, nstars, &ap);
		}
		prev = 'x';
		p++;
	}
	va_end(ap);
}

void smig_log(enum smig_log_level level, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char msg[1024];
	char stamp[SMIG_TIME_ISO_LEN];
	struct timespec ts;
	va_list ap;
	bool stop;

	if (level > log_level && nstop_at == 0)
		return;
	va_start(ap, fmt);
	smig_log_format(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	stop = stop_point(msg);
	if (level > log_level && !stop)
		return;

	clock_gettime(CLOCK_REALTIME, &ts);
	smig_time_iso_ms((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, stamp);
	if (log_journal)
		fprintf(stderr, "<%d>", prio[level]);
	fprintf(stderr, "%s %s %s[%d]: %s\n", stamp, level_names[level], log_prog, (int)getpid(),
		msg);
	if (log_syslog)
		syslog(prio[level], "%s", msg);
	if (stop) {
		fprintf(stderr, "%s %s %s[%d]: event=stopped_at point=%.*s\n", stamp,
			level_names[level], log_prog, (int)getpid(), (int)strcspn(msg + 6, " "),
			msg + 6);
		fflush(stderr);
		(void)raise(SIGSTOP);
	}
}
