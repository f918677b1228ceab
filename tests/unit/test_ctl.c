/*
 * test_ctl.c - control request lines: good requests, and every way a
 * request can be malformed, each with an id kept for the answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <string.h>

#include "ctl.h"
#include "error.h"

static void parse_ok(const char *line, struct smig_ctl_req *req)
{
	char err[256] = "";

	if (smig_ctl_parse(line, strlen(line), req, err, sizeof(err)) != 0)
		fail_msg("%s: %s", line, err);
}

static void parse_bad(const char *line, const char *want, bool has_id)
{
	struct smig_ctl_req req;
	char err[256] = "";

	assert_int_equal(smig_ctl_parse(line, strlen(line), &req, err, sizeof(err)), SMIG_EINVAL);
	if (strstr(err, want) == NULL)
		fail_msg("%s: got \"%s\", want \"%s\"", line, err, want);
	assert_int_equal(req.id != NULL, has_id);
	smig_ctl_req_clear(&req);
}

static void test_good_requests(void **state)
{
	struct smig_ctl_req req;

	(void)state;
	parse_ok("{\"id\": 7, \"cmd\": \"status\"}", &req);
	assert_string_equal(req.cmd, "status");
	assert_int_equal(json_integer_value(req.id), 7);
	assert_true(json_is_object(req.args) && json_object_size(req.args) == 0);
	smig_ctl_req_clear(&req);
	parse_ok("{\"args\": {\"host\": \"h2\"}, \"cmd\": \"ping\", \"id\": \"x-1\"}", &req);
	assert_string_equal(json_string_value(req.id), "x-1");
	assert_string_equal(json_string_value(json_object_get(req.args, "host")), "h2");
	smig_ctl_req_clear(&req);
}

static void test_bad_requests(void **state)
{
	(void)state;
	parse_bad("not json", "not valid JSON (column 3", false);
	parse_bad("[1]", "must be a JSON object", false);
	parse_bad("{\"id\": 1, \"cmd\": \"status\", \"x\": 0}", "unknown request key \"x\"", true);
	parse_bad("{\"cmd\": \"status\"}", "needs an id", false);
	parse_bad("{\"id\": [1], \"cmd\": \"status\"}", "needs an id", true);
	parse_bad("{\"id\": 1}", "needs cmd", true);
	parse_bad("{\"id\": 1, \"cmd\": \"\"}", "needs cmd", true);
	parse_bad("{\"id\": 1, \"cmd\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", "needs cmd", true);
	parse_bad("{\"id\": 1, \"cmd\": \"ping\", \"args\": [\"h2\"]}", "args must be an object", true);
	parse_bad("{\"id\": 1, \"id\": 2, \"cmd\": \"x\"}", "duplicate", false);
}

static void test_args_only(void **state)
{
	static const char *const allowed[] = { "host", NULL };
	static const char *const none[] = { NULL };
	json_t *args = json_pack("{s:s}", "host", "h2");
	char err[128];

	(void)state;
	assert_int_equal(smig_ctl_args_only(args, allowed, err, sizeof(err)), 0);
	assert_int_equal(smig_ctl_args_only(args, none, err, sizeof(err)), SMIG_EINVAL);
	assert_string_equal(err, "unknown argument \"host\"");
	json_decref(args);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_requests),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_args_only),
	};
	return cmocka_run_group_tests_name("ctl", tests, NULL, NULL);
}
