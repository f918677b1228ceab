/*
 * test_qga.c - the guest agent's sync: the request, and its answer found
 * among noise, stale answers and partial lines from the guest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "error.h"
#include "qga.h"

static int answer(const char *s, uint32_t id, size_t *drop)
{
	return smig_qga_sync_answer((const uint8_t *)s, strlen(s), id, drop);
}

static void test_request(void **state)
{
	char out[SMIG_QGA_REQUEST_MAX];
	int n;

	(void)state;
	n = smig_qga_sync_request(2147483647u, out, sizeof(out));
	assert_true(n > 0);
	assert_int_equal((unsigned char)out[0], 0xff);
	assert_string_equal(out + 1, "{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":"
				     "2147483647}}\n");
	assert_int_equal(smig_qga_sync_request(0, out, sizeof(out)), SMIG_EINVAL);
	assert_int_equal(smig_qga_sync_request(2147483648u, out, sizeof(out)), SMIG_EINVAL);
	assert_int_equal(smig_qga_sync_request(7, out, 10), SMIG_ETOOBIG);
}

static void test_answer(void **state)
{
	size_t drop;

	(void)state;
	assert_int_equal(answer("\xff{\"return\": 77}\n", 77, &drop), 1);
	assert_int_equal(drop, strlen("\xff{\"return\": 77}\n"));
	/* stale answers and noise before it */
	assert_int_equal(answer("junk\xff{\"return\": 5}\n{\"return\": {}}\n\xff{\"return\": 77}\nx",
				77, &drop), 1);
	/* another id, an error, extra members, a string id: not the answer */
	assert_int_equal(answer("\xff{\"return\": 78}\n", 77, &drop), 0);
	assert_int_equal(answer("\xff{\"error\": {\"class\": \"X\"}}\n", 77, &drop), 0);
	assert_int_equal(answer("\xff{\"return\": 77, \"id\": 1}\n", 77, &drop), 0);
	assert_int_equal(answer("\xff{\"return\": \"77\"}\n", 77, &drop), 0);
	/* without the 0xff it does not count (an answer to guest-sync, not -delimited) */
	assert_int_equal(answer("{\"return\": 77}\n", 77, &drop), 0);
	assert_int_equal(drop, strlen("{\"return\": 77}\n"));
}

static void test_partial(void **state)
{
	char big[SMIG_QGA_LINE_MAX + 8];
	size_t drop;

	(void)state;
	/* an unfinished line is kept from its 0xff on */
	assert_int_equal(answer("abc\xff{\"return\": 7", 7, &drop), 0);
	assert_int_equal(drop, 3);
	/* a 0xff inside a line starts a new candidate */
	assert_int_equal(answer("\xff{\"ret\xff{\"return\": 7}\n", 7, &drop), 1);
	/* a line longer than any answer is skipped whole */
	memset(big, 'a', sizeof(big) - 1);
	big[0] = (char)0xff;
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(answer(big, 7, &drop), 0);
	assert_int_equal(drop, strlen(big));
	assert_int_equal(smig_qga_sync_answer((const uint8_t *)"", 0, 7, &drop), 0);
	assert_int_equal(drop, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_answer),
		cmocka_unit_test(test_partial),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
