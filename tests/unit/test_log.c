/*
 * test_log.c - stop points: a process that logs a listed event stops itself
 * there, once, whatever the log level; other events pass. And the hex ids
 * of the record files those tests exercise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stop_point),
		cmocka_unit_test(test_no_stop_points),
		cmocka_unit_test(test_unhex_u64),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
