/*
 * test_buf.c - the bounds-checked buffer: round trips, limits, short reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "buf.h"
#include "error.h"

static void test_roundtrip_integers(void **state)
{
	struct smig_buf b;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;

	(void)state;
	smig_buf_init(&b, 64);
	assert_int_equal(smig_buf_put_u8(&b, 0xab), 0);
	assert_int_equal(smig_buf_put_u16(&b, 0x1234), 0);
	assert_int_equal(smig_buf_put_u32(&b, 0xdeadbeef), 0);
	assert_int_equal(smig_buf_put_u64(&b, 0x0102030405060708ull), 0);
	assert_int_equal(b.len, 15);
	assert_int_equal(b.data[1], 0x12); /* big-endian */
	assert_int_equal(smig_buf_get_u8(&b, &u8), 0);
	assert_int_equal(smig_buf_get_u16(&b, &u16), 0);
	assert_int_equal(smig_buf_get_u32(&b, &u32), 0);
	assert_int_equal(smig_buf_get_u64(&b, &u64), 0);
	assert_int_equal(u8, 0xab);
	assert_int_equal(u16, 0x1234);
	assert_int_equal(u32, 0xdeadbeef);
	assert_true(u64 == 0x0102030405060708ull);
	assert_int_equal(smig_buf_expect_end(&b), 0);
	smig_buf_clear(&b);
}

static void test_short_reads_fail_without_moving(void **state)
{
	const uint8_t data[3] = { 1, 2, 3 };
	struct smig_buf b;
	uint32_t u32;
	uint64_t u64;
	uint8_t out[4];

	(void)state;
	smig_buf_view(&b, data, sizeof(data));
	assert_int_equal(smig_buf_get_u32(&b, &u32), SMIG_ESHORT);
	assert_int_equal(smig_buf_get_u64(&b, &u64), SMIG_ESHORT);
	assert_int_equal(smig_buf_get_bytes(&b, out, 4), SMIG_ESHORT);
	assert_int_equal(smig_buf_remaining(&b), 3);
	assert_int_equal(smig_buf_get_bytes(&b, out, 3), 0);
	assert_int_equal(smig_buf_expect_end(&b), 0);
}

static void test_max_is_enforced(void **state)
{
	struct smig_buf b;
	uint8_t big[17] = { 0 };

	(void)state;
	smig_buf_init(&b, 16);
	assert_int_equal(smig_buf_put_bytes(&b, big, 17), SMIG_ETOOBIG);
	assert_int_equal(smig_buf_put_bytes(&b, big, 16), 0);
	assert_int_equal(smig_buf_put_u8(&b, 1), SMIG_ETOOBIG);
	assert_int_equal(b.len, 16);
	smig_buf_clear(&b);
}

static void test_view_is_read_only(void **state)
{
	const uint8_t data[2] = { 0, 1 };
	struct smig_buf b;

	(void)state;
	smig_buf_view(&b, data, sizeof(data));
	assert_int_equal(smig_buf_put_u8(&b, 1), SMIG_EINVAL);
}

static void test_string_roundtrip_and_limits(void **state)
{
	struct smig_buf b;
	char out[8];

	(void)state;
	smig_buf_init(&b, 64);
	assert_int_equal(smig_buf_put_string(&b, "hello", 5), 0);
	assert_int_equal(smig_buf_put_string(&b, "toolong", 5), SMIG_ETOOBIG);
	assert_int_equal(smig_buf_get_string(&b, out, sizeof(out), 5), 0);
	assert_string_equal(out, "hello");
	smig_buf_clear(&b);

	/* a declared length past maxlen or the output size is refused */
	smig_buf_init(&b, 64);
	assert_int_equal(smig_buf_put_string(&b, "abcdefgh", 8), 0);
	assert_int_equal(smig_buf_get_string(&b, out, sizeof(out), 8), SMIG_ETOOBIG);
	assert_int_equal(b.off, 0);
	smig_buf_clear(&b);
}

static void test_string_short_and_nul(void **state)
{
	const uint8_t shortstr[] = { 0, 5, 'a', 'b' };
	const uint8_t nul[] = { 0, 3, 'a', 0, 'b' };
	struct smig_buf b;
	char out[16];

	(void)state;
	smig_buf_view(&b, shortstr, sizeof(shortstr));
	assert_int_equal(smig_buf_get_string(&b, out, sizeof(out), 15), SMIG_ESHORT);
	assert_int_equal(b.off, 0);
	smig_buf_view(&b, nul, sizeof(nul));
	assert_int_equal(smig_buf_get_string(&b, out, sizeof(out), 15), SMIG_EPROTO);
}

static void test_trailing_detected(void **state)
{
	const uint8_t data[3] = { 0, 1, 2 };
	struct smig_buf b;
	uint16_t v;

	(void)state;
	smig_buf_view(&b, data, sizeof(data));
	assert_int_equal(smig_buf_get_u16(&b, &v), 0);
	assert_int_equal(smig_buf_expect_end(&b), SMIG_ETRAILING);
}

static void test_consume_compact_and_grow(void **state)
{
	struct smig_buf b;
	uint8_t *dst;
	uint8_t chunk[300];

	(void)state;
	memset(chunk, 7, sizeof(chunk));
	smig_buf_init(&b, 1000);
	for (int i = 0; i < 3; i++)
		assert_int_equal(smig_buf_put_bytes(&b, chunk, sizeof(chunk)), 0);
	assert_int_equal(smig_buf_consume(&b, 600), 0);
	assert_int_equal(smig_buf_consume(&b, 301), SMIG_ESHORT);
	/* 300 unread: reserving 700 needs compaction, not growth past max */
	assert_int_equal(smig_buf_reserve(&b, 700, &dst), 0);
	assert_int_equal(b.off, 0);
	assert_int_equal(smig_buf_reserve(&b, 701, &dst), SMIG_ETOOBIG);
	assert_int_equal(smig_buf_consume(&b, 300), 0);
	assert_int_equal(b.len, 0); /* fully consumed owned buffers rewind */
	smig_buf_clear(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_integers),
		cmocka_unit_test(test_short_reads_fail_without_moving),
		cmocka_unit_test(test_max_is_enforced),
		cmocka_unit_test(test_view_is_read_only),
		cmocka_unit_test(test_string_roundtrip_and_limits),
		cmocka_unit_test(test_string_short_and_nul),
		cmocka_unit_test(test_trailing_detected),
		cmocka_unit_test(test_consume_compact_and_grow),
	};
	return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
