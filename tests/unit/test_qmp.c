/*
 * test_qmp.c - QMP lines from QEMU: each kind parsed, malformed ones refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "qmp.h"

static int parse(const char *line, struct smig_qmp_msg *m)
{
	return smig_qmp_parse(line, strlen(line), m);
}

static void test_kinds(void **state)
{
	struct smig_qmp_msg m;

	(void)state;
	assert_int_equal(parse("{\"QMP\": {\"version\": {}, \"capabilities\": [\"oob\"]}}", &m), 0);
	assert_int_equal(m.kind, SMIG_QMP_GREETING);
	smig_qmp_msg_clear(&m);
	assert_int_equal(parse("{\"return\": {}, \"id\": 42}", &m), 0);
	assert_int_equal(m.kind, SMIG_QMP_RETURN);
	assert_true(m.has_id && m.id == 42);
	smig_qmp_msg_clear(&m);
	assert_int_equal(parse("{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, \"id\": 3}", &m), 0);
	assert_int_equal(m.kind, SMIG_QMP_ERROR);
	assert_string_equal(m.error_class, "GenericError");
	assert_string_equal(m.error_desc, "no");
	smig_qmp_msg_clear(&m);
	assert_int_equal(parse("{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
			       "\"event\": \"MIGRATION\", \"data\": {\"status\": \"completed\"}}", &m), 0);
	assert_int_equal(m.kind, SMIG_QMP_EVENT);
	assert_string_equal(m.event, "MIGRATION");
	assert_string_equal(json_string_value(json_object_get(m.data, "status")), "completed");
	smig_qmp_msg_clear(&m);
	assert_int_equal(parse("{\"event\": \"STOP\"}", &m), 0);
	assert_null(m.data);
	smig_qmp_msg_clear(&m);
}

static void test_malformed(void **state)
{
	struct smig_qmp_msg m;

	(void)state;
	assert_int_equal(parse("[]", &m), SMIG_EPROTO);
	assert_int_equal(parse("{\"what\": 1}", &m), SMIG_EPROTO);
	assert_int_equal(parse("{\"event\": 5}", &m), SMIG_EPROTO);
	assert_int_equal(parse("{\"event\": \"X\", \"data\": []}", &m), SMIG_EPROTO);
	assert_int_equal(parse("{\"error\": {\"class\": \"X\"}}", &m), SMIG_EPROTO);
	assert_int_equal(parse("{\"return\": {}, \"id\": \"a\"}", &m), SMIG_EPROTO);
	assert_int_equal(parse("{\"return\": {}, \"id\": -1}", &m), SMIG_EPROTO);
	assert_int_equal(parse("{\"return\"", &m), SMIG_EPROTO);
	assert_null(m.root);
}

static void test_command(void **state)
{
	char *c = smig_qmp_command("getfd", json_pack("{s:s}", "fdname", "mig"), 7);
	char *d = smig_qmp_command("cont", NULL, 8);

	(void)state;
	assert_string_equal(c, "{\"execute\":\"getfd\",\"id\":7,\"arguments\":{\"fdname\":\"mig\"}}\n");
	assert_string_equal(d, "{\"execute\":\"cont\",\"id\":8}\n");
	free(c);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_command),
	};
	return cmocka_run_group_tests_name("qmp", tests, NULL, NULL);
}
