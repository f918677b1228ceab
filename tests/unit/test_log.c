/*
 * test_log.c - stop points: a process that logs a listed event stops itself
 * there, once, whatever the log level; other events pass. And the hex ids
 * of the record files those tests exercise. And the escaping of text from
 * peers and users: no value forges a line or a field. And the priority
 * prefix for the journal, only when stderr is the stream JOURNAL_STREAM names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "sign.h"

#ifdef SMIG_STOP_POINTS
/* Runs the child's logging; the parent sees where it stopped. */
static void test_stop_point(void **state)
{
	int status = 0;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		(void)freopen("/dev/null", "w", stderr);
		smig_log_init("test", SMIG_LOG_WARN, false);
		assert_int_equal(smig_log_stop_at("not_this,commit_sent"), 0);
		smig_warn("event=commit_sent_later vm=a"); /* a longer name is not the point */
		smig_warn("event=other vm=a");
		smig_debug("event=commit_sent vm=a"); /* below the level: still a stop point */
		smig_debug("event=commit_sent vm=a"); /* once only */
		_exit(7);
	}
	assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
	assert_true(WIFSTOPPED(status));
	assert_int_equal(kill(pid, SIGCONT), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 7);
}

static void test_no_stop_points(void **state)
{
	(void)state;
	assert_int_equal(smig_log_stop_at(NULL), 0);
	smig_log_init("test", SMIG_LOG_ERROR, false);
	smig_debug("event=commit_sent vm=a");
	assert_int_equal(smig_log_stop_at(""), 0);
	smig_debug("event=commit_sent vm=a");
}
#else
/* A build without stop points refuses a list rather than ignore it. */
static void test_stop_point(void **state)
{
	(void)state;
	assert_int_equal(smig_log_stop_at("commit_sent"), SMIG_EINVAL);
	assert_int_equal(smig_log_stop_at(NULL), 0);
	assert_int_equal(smig_log_stop_at(""), 0);
	smig_debug("event=commit_sent vm=a");
}

static void test_no_stop_points(void **state)
{
	(void)state;
}
#endif

/* The migration ids in smigd's record files: 16 hex digits, then a separator. */
static void test_unhex_u64(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(smig_unhex_u64("00000000deadbeef h2", &v), 0);
	assert_true(v == 0xdeadbeefull);
	assert_int_equal(smig_unhex_u64("ffffffffffffffff", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(smig_unhex_u64("0123456789abcdef0", &v), SMIG_EINVAL); /* too long */
	assert_int_equal(smig_unhex_u64("0123456789abcde", &v), SMIG_EINVAL);   /* too short */
	assert_int_equal(smig_unhex_u64("0123456789abcdeg", &v), SMIG_EINVAL);
	assert_int_equal(smig_unhex_u64("0123456789ABCDEF", &v), SMIG_EINVAL); /* smig writes lowercase */
	assert_int_equal(smig_unhex_u64(NULL, &v), SMIG_EINVAL);
}

__attribute__((format(printf, 2, 3))) static const char *fmt(char *out, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	smig_log_format(out, 256, f, ap);
	va_end(ap);
	return out;
}

/* A value's place in the line decides how it is written. */
static void test_escape_by_place(void **state)
{
	char o[256];

	(void)state;
	/* a bare value of safe characters is left alone */
	assert_string_equal(fmt(o, "event=x vm=%s path=%s", "web-1", "/var/lib/a.raw"),
			    "event=x vm=web-1 path=/var/lib/a.raw");
	/* a bare value with anything else is quoted and escaped */
	assert_string_equal(fmt(o, "event=x vm=%s", "a\n2026 error smigd[1]: event=fake"),
			    "event=x vm=\"a\\n2026 error smigd[1]: event=fake\"");
	assert_string_equal(fmt(o, "event=x vm=%s to=%s", "a b=c", ""),
			    "event=x vm=\"a b=c\" to=\"\"");
	/* inside quotes: quote, backslash and controls get a backslash */
	assert_string_equal(fmt(o, "event=x reason=\"%s\" after=%d", "say \"hi\"\\\r\t\x1b[2J", 7),
			    "event=x reason=\"say \\\"hi\\\"\\\\\\r\\t\\x1b[2J\" after=7");
	assert_string_equal(fmt(o, "event=x reason=\"guest %s after: %s\"", "lost", "\"a\""),
			    "event=x reason=\"guest lost after: \\\"a\\\"\"");
	/* a fragment the code composed: only controls are escaped */
	assert_string_equal(fmt(o, "event=x host=h %s", "3 of 4 VMs moved\n"),
			    "event=x host=h 3 of 4 VMs moved\\x0a");
	/* bytes above 0x7e never reach the line raw */
	assert_string_equal(fmt(o, "event=x vm=%s", "\xc2\x9b"), "event=x vm=\"\\xc2\\x9b\"");
	assert_string_equal(fmt(o, "event=x vm=%s", (const char *)NULL), "event=x vm=\"(null)\"");
}

/* The other conversions print as printf does, with their arguments in order. */
static void test_conversions(void **state)
{
	char o[256], want[256];
	size_t z = 42;
	unsigned long long id = 0x1234abcdull;

	(void)state;
	fmt(o, "a=%d b=%u c=%zu d=%016llx e=%.1f f=%04o g=%c h=%.*s i= %5.2f%% j=%lld k=%ld", -3, 7u,
	    z, id, 2.25, 8u, 'q', 3, "abcdef", 3.14159, -9LL, 11L);
	snprintf(want, sizeof(want), "a=%d b=%u c=%zu d=%016llx e=%.1f f=%04o g=%c h=%.*s i= %5.2f%% j=%lld k=%ld",
		 -3, 7u, z, id, 2.25, 8u, 'q', 3, "abcdef", 3.14159, -9LL, 11L);
	assert_string_equal(o, want);
	assert_string_equal(fmt(o, "x %*d %-*d| %Lf", 4, 5, 3, 6, 1.5L), "x    5 6  | 1.500000");
	/* a value padded with spaces, or a character that is a quote, stays one field */
	assert_string_equal(fmt(o, "w=%*d v=%-*d|", 4, 5, 3, 6), "w=\"   5\" v=\"6  \"|");
	assert_string_equal(fmt(o, "c=%c d=\"%c\" e=%c", '"', '"', '\n'), "c=\"\\\"\" d=\"\\\"\" e=\"\\n\"");
}

/* A long value is cut at the buffer, which stays terminated. */
static void test_truncation(void **state)
{
	char big[600], o[256];

	(void)state;
	memset(big, '\n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	fmt(o, "event=x reason=\"%s\"", big);
	assert_int_equal(strlen(o), 255);
	assert_null(strchr(o, '\n'));
}

/* Logs one warning and one error with stderr on a file, JOURNAL_STREAM as given; what got written. */
static void log_to_file(const char *js, char *out, size_t outlen)
{
	char path[] = "/tmp/smig-test-log.XXXXXX", stream[64];
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	struct stat st = { 0 };
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0 && fstat(fd, &st) == 0);
	snprintf(stream, sizeof(stream), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + (js && strcmp(js, "other") == 0 ? 1 : 0));
	if (js)
		setenv("JOURNAL_STREAM", stream, 1);
	else
		unsetenv("JOURNAL_STREAM");
	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	smig_log_init("smigd", SMIG_LOG_INFO, false);
	smig_warn("event=w");
	smig_err("event=e");
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	unsetenv("JOURNAL_STREAM");
	smig_log_init("test", SMIG_LOG_INFO, false);
	n = pread(fd, out, outlen - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
}

static void test_journal_priority(void **state)
{
	char out[512];

	(void)state;
	log_to_file("this", out, sizeof(out));
	assert_non_null(strstr(out, "<4>"));
	assert_true(strncmp(out, "<4>", 3) == 0);
	assert_non_null(strstr(out, "\n<3>"));
	assert_non_null(strstr(out, "event=e"));
	/* another stream (a log file the warden opened, a terminal): no prefix */
	log_to_file("other", out, sizeof(out));
	assert_null(strchr(out, '<'));
	log_to_file(NULL, out, sizeof(out));
	assert_null(strchr(out, '<'));
	assert_non_null(strstr(out, "warn smigd["));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stop_point),
		cmocka_unit_test(test_no_stop_points),
		cmocka_unit_test(test_unhex_u64),
		cmocka_unit_test(test_escape_by_place),
		cmocka_unit_test(test_conversions),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_journal_priority),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
