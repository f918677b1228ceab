/*
 * test_ids.c - threshold rules, timed bans doubling on repeat, unban,
 * restored bans, per-source connection rates and bounded state, on a fake
 * clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ids.h"

static const struct smig_ids_rule rules[] = {
	{ SMIG_SEC_TLS_FAILURE, 3, 10, 60 },
	{ SMIG_SEC_PROTOCOL_VIOLATION, 1, 10, 5 },
};

static void test_threshold_and_doubling(void **state)
{
	struct smig_ids *ids;
	int64_t ban = 0, t = 1000000;
	size_t rule = 99;

	(void)state;
	assert_int_equal(smig_ids_new(rules, 2, NULL, &ids), 0);
	assert_false(smig_ids_event(ids, "10.0.0.9", SMIG_SEC_TLS_FAILURE, t, &ban, &rule));
	assert_false(smig_ids_event(ids, "10.0.0.9", SMIG_SEC_TLS_FAILURE, t + 1000, &ban, &rule));
	assert_int_equal(smig_ids_admit(ids, "10.0.0.9", t + 1500), SMIG_ADMIT_OK);
	/* a failure of another kind or from another address does not count */
	assert_false(smig_ids_event(ids, "10.0.0.8", SMIG_SEC_TLS_FAILURE, t + 1600, &ban, &rule));
	assert_false(smig_ids_event(ids, "10.0.0.9", SMIG_SEC_UNKNOWN_PEER, t + 1700, &ban, &rule));
	assert_true(smig_ids_event(ids, "10.0.0.9", SMIG_SEC_TLS_FAILURE, t + 2000, &ban, &rule));
	assert_int_equal(ban, 60000);
	assert_int_equal(rule, 0);
	assert_int_equal(smig_ids_admit(ids, "10.0.0.9", t + 2001), SMIG_ADMIT_BANNED);
	assert_int_equal(smig_ids_admit(ids, "10.0.0.8", t + 2001), SMIG_ADMIT_OK);
	assert_int_equal(smig_ids_admit(ids, "10.0.0.9", t + 61999), SMIG_ADMIT_BANNED);
	assert_int_equal(smig_ids_admit(ids, "10.0.0.9", t + 62000), SMIG_ADMIT_OK); /* expired */
	/* the second ban lasts twice as long */
	t += 100000;
	for (int i = 0; i < 2; i++)
		assert_false(smig_ids_event(ids, "10.0.0.9", SMIG_SEC_TLS_FAILURE, t + i, &ban, NULL));
	assert_true(smig_ids_event(ids, "10.0.0.9", SMIG_SEC_TLS_FAILURE, t + 2, &ban, NULL));
	assert_int_equal(ban, 120000);
	smig_ids_free(ids);
}

static void test_window(void **state)
{
	struct smig_ids *ids;
	int64_t t = 5000000;

	(void)state;
	assert_int_equal(smig_ids_new(rules, 1, NULL, &ids), 0);
	/* three failures spread over more than the 10 s window: no ban */
	assert_false(smig_ids_event(ids, "a", SMIG_SEC_TLS_FAILURE, t, NULL, NULL));
	assert_false(smig_ids_event(ids, "a", SMIG_SEC_TLS_FAILURE, t + 6000, NULL, NULL));
	assert_false(smig_ids_event(ids, "a", SMIG_SEC_TLS_FAILURE, t + 12000, NULL, NULL));
	assert_true(smig_ids_event(ids, "a", SMIG_SEC_TLS_FAILURE, t + 13000, NULL, NULL));
	smig_ids_free(ids);
}

static void test_unban_and_restore(void **state)
{
	struct smig_ids_ban_info b[4];
	struct smig_ids *ids;
	int64_t t = 7000000;

	(void)state;
	assert_int_equal(smig_ids_new(rules, 2, NULL, &ids), 0);
	assert_true(smig_ids_event(ids, "fd00::7", SMIG_SEC_PROTOCOL_VIOLATION, t, NULL, NULL));
	assert_int_equal(smig_ids_bans(ids, t + 1, b, 4), 1);
	assert_string_equal(b[0].addr, "fd00::7");
	assert_int_equal(b[0].until_ms, t + 5000);
	assert_int_equal(b[0].strikes, 1);
	assert_int_equal(smig_ids_unban(ids, "fd00::7", t + 2), 0);
	assert_int_equal(smig_ids_admit(ids, "fd00::7", t + 3), SMIG_ADMIT_OK);
	assert_int_equal(smig_ids_unban(ids, "fd00::7", t + 4), SMIG_ENOENT);
	assert_int_equal(smig_ids_unban(ids, "10.9.9.9", t + 4), SMIG_ENOENT);
	assert_int_equal(smig_ids_ban(ids, "10.1.1.1", t + 4, t + 9000, 3), 0);
	assert_int_equal(smig_ids_admit(ids, "10.1.1.1", t + 8999), SMIG_ADMIT_BANNED);
	assert_int_equal(smig_ids_bans(ids, t + 8999, b, 4), 1);
	assert_int_equal(b[0].strikes, 3);
	assert_int_equal(smig_ids_bans(ids, t + 9000, b, 4), 0);
	smig_ids_free(ids);
}

static void test_bans_persist(void **state)
{
	static const char junk[] = "[{\"addr\": \"x\", \"until_ms\": \"soon\", \"strikes\": 1},"
				   " {\"addr\": \"old\", \"until_ms\": 5, \"strikes\": 1}, 7]";
	struct smig_ids *a, *b;
	int64_t t = 1795000000000LL;
	char *text;

	(void)state;
	assert_int_equal(smig_ids_new(rules, 2, NULL, &a), 0);
	assert_true(smig_ids_event(a, "10.0.0.1", SMIG_SEC_PROTOCOL_VIOLATION, t, NULL, NULL));
	assert_int_equal(smig_ids_bans_dump(a, t + 1, &text), 0);
	assert_int_equal(smig_ids_new(rules, 2, NULL, &b), 0);
	assert_int_equal(smig_ids_bans_load(b, text, strlen(text), t + 2), 1);
	assert_int_equal(smig_ids_admit(b, "10.0.0.1", t + 3), SMIG_ADMIT_BANNED);
	assert_int_equal(smig_ids_admit(b, "10.0.0.1", t + 5000), SMIG_ADMIT_OK); /* expired */
	/* restored with its strikes: the next ban lasts twice as long */
	assert_int_equal(smig_ids_bans_load(b, text, strlen(text), t + 6000), 0); /* expired now */
	assert_int_equal(smig_ids_bans_load(b, junk, strlen(junk), t), 0);
	assert_int_equal(smig_ids_bans_load(b, "{}", 2, t), SMIG_EPROTO);
	free(text);
	smig_ids_free(a);
	smig_ids_free(b);
}

static void test_rate_limit(void **state)
{
	const struct smig_ids_limits lim = { .rate_per_s = 2, .burst = 4 };
	struct smig_ids *ids;
	int64_t t = 9000000;

	(void)state;
	assert_int_equal(smig_ids_new(rules, 2, &lim, &ids), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(smig_ids_admit(ids, "s", t), SMIG_ADMIT_OK);
	assert_int_equal(smig_ids_admit(ids, "s", t), SMIG_ADMIT_RATE);
	assert_int_equal(smig_ids_admit(ids, "other", t), SMIG_ADMIT_OK);
	assert_int_equal(smig_ids_admit(ids, "s", t + 499), SMIG_ADMIT_RATE);
	assert_int_equal(smig_ids_admit(ids, "s", t + 500), SMIG_ADMIT_OK); /* one token back */
	assert_int_equal(smig_ids_admit(ids, "s", t + 10000), SMIG_ADMIT_OK);
	/* a ban restored for a new source leaves it its full credit once lifted */
	assert_int_equal(smig_ids_ban(ids, "r", t, t + 60000, 1), 0);
	assert_int_equal(smig_ids_admit(ids, "r", t + 1), SMIG_ADMIT_BANNED);
	assert_int_equal(smig_ids_unban(ids, "r", t + 2), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(smig_ids_admit(ids, "r", t + 3), SMIG_ADMIT_OK);
	smig_ids_free(ids);
}

static void test_bounded_state(void **state)
{
	struct smig_ids *ids;
	char addr[32];
	int64_t t = 1;

	(void)state;
	assert_int_equal(smig_ids_new(rules, 2, NULL, &ids), 0);
	assert_int_equal(smig_ids_ban(ids, "keep-banned", t, t + 100000, 1), 0);
	for (int i = 0; i < 3 * SMIG_IDS_SOURCES; i++) {
		snprintf(addr, sizeof(addr), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		(void)smig_ids_event(ids, addr, SMIG_SEC_TLS_FAILURE, t + i, NULL, NULL);
	}
	assert_true(smig_ids_sources(ids) <= SMIG_IDS_SOURCES);
	/* the ban in force survived the churn */
	assert_int_equal(smig_ids_admit(ids, "keep-banned", t + 3000), SMIG_ADMIT_BANNED);
	smig_ids_free(ids);
}

static void test_names_and_bad_rules(void **state)
{
	const struct smig_ids_rule bad = { SMIG_SEC_TLS_FAILURE, 0, 10, 10 };
	const struct smig_ids_rule rec = { SMIG_SEC_RECORD_AUTH_FAILURE, 3, 300, 300 };
	const struct smig_ids_rule *defaults;
	struct smig_ids *ids;
	enum smig_sec_kind k;
	size_t n;

	(void)state;
	for (int i = 0; i < SMIG_SEC_KINDS; i++) {
		assert_int_equal(smig_sec_kind_parse(smig_sec_kind_name((enum smig_sec_kind)i), &k), 0);
		assert_int_equal((int)k, i);
	}
	assert_int_equal(smig_sec_kind_parse("nope", &k), SMIG_EINVAL);
	assert_int_equal(smig_ids_new(&bad, 1, NULL, &ids), SMIG_EINVAL);
	/* a record that fails after the handshake is anyone's on the path: it never bans */
	assert_false(smig_sec_kind_bannable(SMIG_SEC_RECORD_AUTH_FAILURE));
	assert_false(smig_sec_kind_bannable(SMIG_SEC_PATH_ALARM));
	assert_false(smig_sec_kind_bannable(SMIG_SEC_BAN));
	assert_true(smig_sec_kind_bannable(SMIG_SEC_TLS_FAILURE));
	assert_int_equal(smig_ids_new(&rec, 1, NULL, &ids), SMIG_EINVAL);
	defaults = smig_ids_default_rules(&n);
	assert_true(n >= 4);
	for (size_t i = 0; i < n; i++)
		assert_true(smig_sec_kind_bannable(defaults[i].kind));
	assert_int_equal(smig_ids_new(defaults, n, NULL, &ids), 0);
	for (int i = 0; i < 16; i++)
		assert_false(smig_ids_event(ids, "x", SMIG_SEC_RECORD_AUTH_FAILURE, 1000 + i, NULL, NULL));
	/* the default rules ban: five TLS failures within a minute */
	for (int i = 0; i < 4; i++)
		assert_false(smig_ids_event(ids, "x", SMIG_SEC_TLS_FAILURE, 1000 + i, NULL, NULL));
	assert_true(smig_ids_event(ids, "x", SMIG_SEC_TLS_FAILURE, 1004, NULL, NULL));
	smig_ids_free(ids);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threshold_and_doubling),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_unban_and_restore),
		cmocka_unit_test(test_bans_persist),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_bounded_state),
		cmocka_unit_test(test_names_and_bad_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
