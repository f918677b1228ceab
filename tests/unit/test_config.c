/*
 * test_config.c - strict config and host-table loading: every error names
 * file:line:column, and good files load with their defaults.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "config.h"
#include "error.h"
#include "json.h"

static const char good_config[] =
	"{\n"
	"  \"host\": \"h1\",\n"
	"  \"listen\": \"127.0.0.1:7451\",\n"
	"  \"control\": {\"socket\": \"/run/smig/h1.sock\", \"group\": \"smig\"},\n"
	"  \"state_dir\": \"state\",\n"
	"  \"tls\": {\"ca\": \"pki/ca.crt\", \"cert\": \"pki/h1.crt\", \"key\": \"/k/h1.key\"},\n"
	"  \"hosts_file\": \"hosts.json\",\n"
	"  \"log\": {\"level\": \"debug\", \"syslog\": true},\n"
	"  \"limits\": {\"handshake_timeout_ms\": 2000, \"max_peers\": 8, \"agent_timeout_ms\": 700},\n"
	"  \"policy\": \"policy.json\",\n"
	"  \"audit\": {\"file\": \"/var/log/smig/audit.log\", \"checkpoint_records\": 10,\n"
	"            \"max_kib\": 1024}\n"
	"}\n";

#define FP1 "sha256:" \
	"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define FP2 "sha256:" \
	"ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define FP3 "sha256:" \
	"3333333333333333333333333333333333333333333333333333333333333333"

/* The required members other than host, listen and control, on line 1. */
#define REST "{\"state_dir\":\"d\",\"tls\":{\"ca\":\"a\",\"cert\":\"b\",\"key\":\"c\"},\"hosts_file\":\"h\",\n"

/* Parses text as a config and checks the error message starts with want. */
static void expect_config_error(const char *text, const char *want)
{
	struct smig_config cfg;
	char err[512] = "";
	int rc = smig_config_parse("/etc/smig/c.json", text, strlen(text), &cfg, err, sizeof(err));

	assert_int_equal(rc, SMIG_ECONFIG);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("got \"%s\", want prefix \"%s\"", err, want);
}

static void expect_hosts_error(const char *text, const char *want)
{
	struct smig_hosts h;
	char err[512] = "";
	int rc = smig_hosts_parse("hosts.json", text, strlen(text), &h, err, sizeof(err));

	assert_int_equal(rc, SMIG_ECONFIG);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("got \"%s\", want prefix \"%s\"", err, want);
}

static void test_good_config(void **state)
{
	struct smig_config cfg;
	char err[256];

	(void)state;
	assert_int_equal(smig_config_parse("/etc/smig/c.json", good_config, strlen(good_config),
					   &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.host, "h1");
	assert_string_equal(cfg.listen_addr, "127.0.0.1");
	assert_int_equal(cfg.listen_port, 7451);
	assert_string_equal(cfg.control_group, "smig");
	/* relative paths resolve against the config's directory */
	assert_string_equal(cfg.state_dir, "/etc/smig/state");
	assert_string_equal(cfg.tls_ca, "/etc/smig/pki/ca.crt");
	assert_string_equal(cfg.tls_key, "/k/h1.key");
	assert_string_equal(cfg.hosts_file, "/etc/smig/hosts.json");
	assert_int_equal(cfg.log_level, SMIG_LOG_DEBUG);
	assert_true(cfg.log_syslog);
	assert_int_equal(cfg.handshake_timeout_ms, 2000);
	assert_int_equal(cfg.request_timeout_ms, 10000); /* default kept */
	assert_int_equal(cfg.max_peers, 8);
	assert_int_equal(cfg.agent_timeout_ms, 700);
	assert_int_equal(cfg.guest_watch_ms, 5000); /* default kept */
	assert_string_equal(cfg.policy_file, "/etc/smig/policy.json");
	assert_string_equal(cfg.audit_file, "/var/log/smig/audit.log");
	assert_int_equal(cfg.audit_checkpoint_records, 10);
	assert_int_equal(cfg.audit_checkpoint_interval_s, 60); /* default kept */
	assert_int_equal(cfg.audit_max_kib, 1024);
	assert_int_equal(cfg.audit_keep, 8);     /* default kept */
	assert_int_equal(cfg.control_per_uid, 8); /* default kept */
	assert_int_equal(cfg.tls_warn_days, 30);  /* default kept */
}

/* Rotation and the per-user connection cap have bounds that are said. */
static void test_audit_and_control_bounds(void **state)
{
	(void)state;
	expect_config_error(REST "\"host\":\"h1\",\"listen\":\"127.0.0.1\",\"control\":{\"socket\":\"s\"},"
			    "\"audit\":{\"max_kib\":8}}",
			    "/etc/smig/c.json:2:78: audit.max_kib must be between 16 and 262144");
	expect_config_error(REST "\"host\":\"h1\",\"listen\":\"127.0.0.1\",\"control\":{\"socket\":\"s\"},"
			    "\"audit\":{\"keep\":0}}",
			    "/etc/smig/c.json:2:75: audit.keep must be between 1 and 1000");
	expect_config_error(REST "\"host\":\"h1\",\"listen\":\"127.0.0.1\",\"control\":{\"socket\":\"s\","
			    "\"per_uid\":0}}",
			    "/etc/smig/c.json:2:");
}

static void test_tls_warn_days(void **state)
{
	const char *text = "{\"state_dir\":\"d\",\"tls\":{\"ca\":\"a\",\"cert\":\"b\",\"key\":\"c\",\n"
			   "\"warn_days\": 7},\"hosts_file\":\"h\",\"host\":\"h1\",\"listen\":\"127.0.0.1\","
			   "\"control\":{\"socket\":\"s\"}}";
	struct smig_config cfg;
	char err[256];

	(void)state;
	assert_int_equal(smig_config_parse("/etc/smig/c.json", text, strlen(text), &cfg, err,
					   sizeof(err)), 0);
	assert_int_equal(cfg.tls_warn_days, 7);
	expect_config_error("{\"state_dir\":\"d\",\"tls\":{\"ca\":\"a\",\"cert\":\"b\",\"key\":\"c\",\n"
			    "\"warn_days\": 0},\"hosts_file\":\"h\",\"host\":\"h1\",\"listen\":\"127.0.0.1\",\"control\":{\"socket\":\"s\"}}",
			    "/etc/smig/c.json:2:14: tls.warn_days must be between 1 and 3650");
	expect_config_error("{\"state_dir\":\"d\",\"tls\":{\"ca\":\"a\",\"cert\":\"b\",\"key\":\"c\",\n"
			    "\"warn_days\": 3651},\"hosts_file\":\"h\",\"host\":\"h1\",\"listen\":\"127.0.0.1\",\"control\":{\"socket\":\"s\"}}",
			    "/etc/smig/c.json:2:14: tls.warn_days must be between 1 and 3650");
	expect_config_error("{\"state_dir\":\"d\",\"tls\":{\"ca\":\"a\",\"cert\":\"b\",\"key\":\"c\",\n"
			    "\"warn_days\": \"30\"},\"hosts_file\":\"h\",\"host\":\"h1\",\"listen\":\"127.0.0.1\",\"control\":{\"socket\":\"s\"}}",
			    "/etc/smig/c.json:2:14: tls.warn_days must be an integer");
}

/* metrics.listen: off without it; an address and a port, both numeric. */
static void test_metrics(void **state)
{
	const char *base = "{\"state_dir\":\"d\",\"tls\":{\"ca\":\"a\",\"cert\":\"b\",\"key\":\"c\"},"
			   "\"hosts_file\":\"h\",\"host\":\"h1\",\"listen\":\"127.0.0.1\","
			   "\"control\":{\"socket\":\"s\"}";
	const char *const bad[] = { "\"127.0.0.1\"", "\"localhost:9450\"", "\"[::1]\"",
				    "\"127.0.0.1:0x10\"" };
	struct smig_config cfg;
	char text[512], err[256];

	(void)state;
	snprintf(text, sizeof(text), "%s}", base);
	assert_int_equal(smig_config_parse("/etc/smig/c.json", text, strlen(text), &cfg, err,
					   sizeof(err)), 0);
	assert_string_equal(cfg.metrics_addr, "");
	snprintf(text, sizeof(text), "%s,\"metrics\":{\"listen\":\"[::1]:9450\"}}", base);
	assert_int_equal(smig_config_parse("/etc/smig/c.json", text, strlen(text), &cfg, err,
					   sizeof(err)), 0);
	assert_string_equal(cfg.metrics_addr, "::1");
	assert_int_equal(cfg.metrics_port, 9450);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "%s,\"metrics\":{\"listen\":%s}}", base, bad[i]);
		assert_int_not_equal(smig_config_parse("/etc/smig/c.json", text, strlen(text), &cfg,
						       err, sizeof(err)), 0);
		assert_non_null(strstr(err, "metrics.listen must be a numeric address and a port"));
	}
}

static void test_store(void **state)
{
	const char *base = "{\"state_dir\":\"d\",\"tls\":{\"ca\":\"a\",\"cert\":\"b\",\"key\":\"c\"},"
			   "\"hosts_file\":\"h\",\"host\":\"h1\",\"listen\":\"127.0.0.1\","
			   "\"control\":{\"socket\":\"s\"}";
	static const struct {
		const char *store, *want;
	} bad[] = {
		{ "{\"backend\":\"consul\"}", "store.backend is \"files\"" },
		{ "{\"backend\":\"files\",\"prefix\":\"/x\"}", "store.backend \"files\" takes no" },
		{ "{\"backend\":\"etcd\"}", "store.endpoints must list 1 to 9" },
		{ "{\"backend\":\"etcd\",\"endpoints\":[]}", "store.endpoints must list 1 to 9" },
		{ "{\"backend\":\"etcd\",\"endpoints\":[\"http://10.0.0.1:2379\"]}",
		  "an etcd endpoint is an https:// URL" },
		{ "{\"backend\":\"etcd\",\"endpoints\":[\"https://a\",7]}",
		  "an etcd endpoint is an https:// URL" },
		{ "{\"backend\":\"etcd\",\"endpoints\":[\"https://a\"],\"prefix\":\"smig\"}",
		  "store.prefix is a key path" },
		{ "{\"backend\":\"etcd\",\"endpoints\":[\"https://a\"],\"prefix\":\"/smig/\"}",
		  "store.prefix is a key path" },
		{ "{\"backend\":\"etcd\",\"endpoints\":[\"https://a\"],\"lease_ttl_s\":2}",
		  "" /* out of range: the schema's message */ },
		{ "{\"backend\":\"etcd\",\"endpoints\":[\"https://a\",\"https://b\",\"https://c\"],"
		  "\"lease_ttl_s\":3,\"timeout_ms\":600}",
		  "store.timeout_ms (600) times the 3 endpoints" },
	};
	struct smig_config cfg;
	char text[768], err[512];

	(void)state;
	snprintf(text, sizeof(text), "%s}", base);
	assert_int_equal(smig_config_parse("/etc/smig/c.json", text, strlen(text), &cfg, err,
					   sizeof(err)), 0);
	assert_false(cfg.store_etcd);
	assert_string_equal(cfg.store_prefix, "/smig");
	assert_int_equal(cfg.store_lease_ttl_s, 10);
	snprintf(text, sizeof(text),
		 "%s,\"store\":{\"backend\":\"etcd\",\"endpoints\":[\"https://10.0.0.1:2379\","
		 "\"https://[fd00::2]:2379\"],\"ca\":\"pki/etcd-ca.crt\",\"prefix\":\"/fleet/a\","
		 "\"lease_ttl_s\":6,\"timeout_ms\":1500}}",
		 base);
	assert_int_equal(smig_config_parse("/etc/smig/c.json", text, strlen(text), &cfg, err,
					   sizeof(err)), 0);
	assert_true(cfg.store_etcd);
	assert_int_equal(cfg.nstore_endpoints, 2);
	assert_string_equal(cfg.store_endpoints[1], "https://[fd00::2]:2379");
	assert_string_equal(cfg.store_ca, "/etc/smig/pki/etcd-ca.crt");
	assert_string_equal(cfg.store_prefix, "/fleet/a");
	assert_int_equal(cfg.store_lease_ttl_s, 6);
	assert_int_equal(cfg.store_timeout_ms, 1500);
	snprintf(text, sizeof(text), "%s,\"store\":{\"backend\":\"files\"}}", base);
	assert_int_equal(smig_config_parse("/etc/smig/c.json", text, strlen(text), &cfg, err,
					   sizeof(err)), 0);
	assert_false(cfg.store_etcd);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "%s,\"store\":%s}", base, bad[i].store);
		assert_int_equal(smig_config_parse("/etc/smig/c.json", text, strlen(text), &cfg,
						   err, sizeof(err)),
				 SMIG_ECONFIG);
		if (strncmp(err, "/etc/smig/c.json:1:", 19) != 0 || strstr(err, bad[i].want) == NULL)
			fail_msg("store %s: got \"%s\", want \"%s\"", bad[i].store, err, bad[i].want);
	}
}

static void test_unknown_key_names_position(void **state)
{
	(void)state;
	expect_config_error("{\n  \"host\": \"h1\",\n  \"lisen\": \"x\"\n}",
			    "/etc/smig/c.json:3:3: unknown key \"lisen\" in config");
	expect_config_error(REST "\"host\":\"h1\",\"listen\":\"127.0.0.1\",\"control\":{\"socket\":\"s\","
			    "\"mode\":1}}",
			    "/etc/smig/c.json:2:58: unknown key \"mode\" in control");
}

static void test_wrong_type_names_position(void **state)
{
	(void)state;
	expect_config_error("{\n\t\"host\": 7\n}", "/etc/smig/c.json:2:10: config.host must be a string");
	expect_config_error("{\"host\": \"h1\", \"listen\": \"127.0.0.1\",\n"
			    " \"control\": [1]}",
			    "/etc/smig/c.json:2:13: config.control must be an object");
}

static void test_missing_field_names_object(void **state)
{
	(void)state;
	expect_config_error("{\"host\": \"h1\"}",
			    "/etc/smig/c.json:1:1: config: missing required key \"listen\"");
	expect_config_error("{\"host\":\"h1\",\"listen\":\"127.0.0.1\",\"control\":{\"socket\":\"s\"},"
			    "\"state_dir\":\"d\",\n\"tls\":  {\"ca\":\"a\",\"cert\":\"b\"},\"hosts_file\":\"h\"}",
			    "/etc/smig/c.json:2:9: tls: missing required key \"key\"");
}

static void test_syntax_error_position(void **state)
{
	(void)state;
	expect_config_error("{\n  \"host\": \"h1\",\n  \"listen\" \"x\"\n}", "/etc/smig/c.json:3:");
	expect_config_error("[1, 2]", "/etc/smig/c.json:1:1: the top level must be an object");
	expect_config_error("", "/etc/smig/c.json:");
}

static void test_duplicate_key_refused(void **state)
{
	(void)state;
	expect_config_error("{\"host\": \"h1\", \"host\": \"h2\"}", "/etc/smig/c.json:1:");
}

static void test_bad_values(void **state)
{
	(void)state;
	expect_config_error(REST "\"control\":{\"socket\":\"s\"},\"host\": \"h 1\", \"listen\": \"127.0.0.1\"}",
			    "/etc/smig/c.json:2:34: host must be");
	expect_config_error(REST "\"control\":{\"socket\":\"s\"},\"host\": \"h1\", \"listen\": \"example.org:80\"}",
			    "/etc/smig/c.json:2:50: listen must be a numeric address");
	expect_config_error("{\"host\":\"h1\",\"listen\":\"127.0.0.1\",\"control\":{\"socket\":\"s\"},"
			    "\"state_dir\":\"d\",\"tls\":{\"ca\":\"a\",\"cert\":\"b\",\"key\":\"c\"},"
			    "\"hosts_file\":\"h\",\"limits\":{\"max_peers\": 0}}",
			    "/etc/smig/c.json:1:154: limits.max_peers must be between 1 and 4096");
	expect_config_error("{\"host\":\"h1\",\"listen\":\"127.0.0.1\",\"control\":{\"socket\":\"s\"},"
			    "\"state_dir\":\"d\",\"tls\":{\"ca\":\"a\",\"cert\":\"b\",\"key\":\"c\"},"
			    "\"hosts_file\":\"h\",\"limits\":{\"stall_timeout_ms\": 3000, \"agent_timeout_ms\": 3000}}",
			    "/etc/smig/c.json:1:187: limits.agent_timeout_ms (3000) must be below limits.stall_timeout_ms (3000)");
	expect_config_error("{\"host\":\"h1\",\"listen\":\"127.0.0.1\",\"control\":{\"socket\":\"s\"},"
			    "\"state_dir\":\"d\",\"tls\":{\"ca\":\"a\",\"cert\":\"b\",\"key\":\"c\"},"
			    "\"hosts_file\":\"h\",\"log\":{\"level\": \"loud\"}}",
			    "/etc/smig/c.json:1:147: log.level must be one of");
	expect_config_error("{\"host\":\"h1\",\"listen\":\"127.0.0.1\",\"control\":{\"socket\":\"s\"},"
			    "\"state_dir\":\"d\",\"tls\":{\"ca\":\"a\",\"cert\":\"b\",\"key\":\"c\"},"
			    "\"hosts_file\":\"h\",\"audit\":{\"checkpoint_interval_s\": 0}}",
			    "/etc/smig/c.json:1:");
	/* a bit flipped on the path is not the peer's doing: no rule bans for it */
	expect_config_error(REST "\"control\":{\"socket\":\"s\"},\"host\": \"h1\", \"listen\": \"127.0.0.1\",\n"
			    "\"firewall\": {\"rules\": [{\"kind\": \"record_auth_failure\", \"count\": 3,"
			    " \"window_s\": 300, \"ban_s\": 300}]}}",
			    "/etc/smig/c.json:3:33: rules[0].kind record_auth_failure cannot ban: anyone on "
			    "the path can make a record fail");
	expect_config_error(REST "\"control\":{\"socket\":\"s\"},\"host\": \"h1\", \"listen\": \"127.0.0.1\",\n"
			    "\"firewall\": {\"rules\": [{\"kind\": \"ban\", \"count\": 3,"
			    " \"window_s\": 300, \"ban_s\": 300}]}}",
			    "/etc/smig/c.json:3:33: rules[0].kind ban cannot ban: it is the monitor's own");
}

/* migration.policies: parsed, checked, and the most specific match wins */
static void test_mig_policies(void **state)
{
	static const char text[] =
		REST "\"control\":{\"socket\":\"s\"},\"host\": \"h1\", \"listen\": \"127.0.0.1\",\n"
		"\"migration\": {\"parallel_outbound\": 1, \"parallel_inbound\": 3, \"policies\": [\n"
		"{\"name\": \"all\", \"downtime_ms\": 200},\n"
		"{\"name\": \"web\", \"vm_labels\": {\"tier\": \"web\"}, \"max_bandwidth_mib\": 100,"
		" \"on_timeout\": \"escalate\", \"auto_converge\": false},\n"
		"{\"name\": \"web-prod\", \"vm_labels\": {\"tier\": \"web\", \"env\": \"prod\"},"
		" \"progress_timeout_s\": 150, \"completion_timeout_per_gib_s\": 800},\n"
		"{\"name\": \"web-too\", \"vm_labels\": {\"tier\": \"web\"}}]}}";
	struct smig_label web[] = { { "tier", "web" } }, prod[] = { { "env", "prod" }, { "tier", "web" } },
			  db[] = { { "tier", "db" } };
	struct smig_config cfg;
	char err[512] = "";

	(void)state;
	assert_int_equal(smig_config_parse("/etc/smig/c.json", text, strlen(text), &cfg, err,
					   sizeof(err)), 0);
	assert_int_equal(cfg.parallel_outbound, 1);
	assert_int_equal(cfg.parallel_inbound, 3);
	assert_int_equal(cfg.nmig_policies, 4);
	assert_string_equal(smig_mig_policy_for(&cfg, db, 1)->name, "all");
	assert_string_equal(smig_mig_policy_for(&cfg, web, 1)->name, "web"); /* the first of equals */
	assert_true(smig_mig_policy_for(&cfg, web, 1)->escalate_on_timeout);
	assert_int_equal(smig_mig_policy_for(&cfg, web, 1)->auto_converge, 0);
	assert_string_equal(smig_mig_policy_for(&cfg, prod, 2)->name, "web-prod");
	assert_int_equal(smig_mig_policy_for(&cfg, prod, 2)->auto_converge, -1);
	assert_int_equal(smig_mig_policy_for(&cfg, prod, 2)->completion_timeout_per_gib_s, 800);
	cfg.nmig_policies = 0;
	assert_null(smig_mig_policy_for(&cfg, prod, 2));
	expect_config_error(REST "\"control\":{\"socket\":\"s\"},\"host\": \"h1\", \"listen\": \"127.0.0.1\",\n"
			    "\"migration\": {\"policies\": [{\"name\": \"a\"}, {\"name\": \"a\"}]}}",
			    "/etc/smig/c.json:3:52: migration.policies[1]: a second policy named a");
	expect_config_error(REST "\"control\":{\"socket\":\"s\"},\"host\": \"h1\", \"listen\": \"127.0.0.1\",\n"
			    "\"migration\": {\"policies\": [{\"name\": \"a\", \"on_timeout\": \"panic\"}]}}",
			    "/etc/smig/c.json:3:");
	expect_config_error(REST "\"control\":{\"socket\":\"s\"},\"host\": \"h1\", \"listen\": \"127.0.0.1\",\n"
			    "\"migration\": {\"policies\": [{\"name\": \"a\", \"post_copy\": true}]}}",
			    "/etc/smig/c.json:3:");
}

static void test_addresses(void **state)
{
	char a[SMIG_ADDR_MAX];
	uint16_t port;

	(void)state;
	assert_int_equal(smig_addr_parse("10.0.0.1:80", a, sizeof(a), &port), 0);
	assert_string_equal(a, "10.0.0.1");
	assert_int_equal(port, 80);
	assert_int_equal(smig_addr_parse("10.0.0.1", a, sizeof(a), &port), 0);
	assert_int_equal(port, SMIG_DEFAULT_PORT);
	assert_int_equal(smig_addr_parse("[fd00::1]:9", a, sizeof(a), &port), 0);
	assert_string_equal(a, "fd00::1");
	assert_int_equal(port, 9);
	assert_int_equal(smig_addr_parse("fd00::1", a, sizeof(a), &port), SMIG_EINVAL);
	assert_int_equal(smig_addr_parse("10.0.0.1:0", a, sizeof(a), &port), SMIG_EINVAL);
	assert_int_equal(smig_addr_parse("10.0.0.1:65536", a, sizeof(a), &port), SMIG_EINVAL);
	assert_int_equal(smig_addr_parse("10.0.0.1:+5", a, sizeof(a), &port), SMIG_EINVAL);
	assert_int_equal(smig_addr_parse("[fd00::1", a, sizeof(a), &port), SMIG_EINVAL);
	assert_int_equal(smig_addr_parse(":80", a, sizeof(a), &port), SMIG_EINVAL);
}

static void test_fingerprints(void **state)
{
	uint8_t fp[SMIG_FP_LEN];
	char s[SMIG_FP_STR_LEN];

	(void)state;
	assert_int_equal(smig_fp_parse(FP1, fp), 0);
	smig_fp_format(fp, s);
	assert_string_equal(s, FP1);
	assert_int_equal(smig_fp_parse("sha256:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
				       "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff", fp), 0);
	smig_fp_format(fp, s);
	assert_string_equal(s, FP1);
	assert_int_equal(smig_fp_parse("sha1:0011", fp), SMIG_EINVAL);
	assert_int_equal(smig_fp_parse("sha256:0011", fp), SMIG_EINVAL);
	assert_int_equal(smig_fp_parse(FP1 "00", fp), SMIG_EINVAL);
	assert_int_equal(smig_fp_parse("sha256:zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", fp),
			 SMIG_EINVAL);
}

static void test_good_hosts(void **state)
{
	const char *text = "{\"hosts\": [\n"
			   " {\"name\": \"h1\", \"address\": \"10.1.0.1:7450\", \"fingerprint\": \"" FP1 "\"},\n"
			   " {\"name\": \"h2\", \"address\": \"[fd00::2]\", \"fingerprint\": \"" FP2 "\",\n"
			   "  \"labels\": {\"zone\": \"a1\", \"rack\": \"r7\"}}\n"
			   "]}";
	struct smig_hosts h;
	uint8_t fp[SMIG_FP_LEN];
	char err[256];

	(void)state;
	assert_int_equal(smig_hosts_parse("hosts.json", text, strlen(text), &h, err, sizeof(err)), 0);
	assert_int_equal(h.n, 2);
	assert_non_null(smig_hosts_by_name(&h, "h2"));
	assert_null(smig_hosts_by_name(&h, "h3"));
	assert_int_equal(smig_hosts_by_name(&h, "h2")->port, SMIG_DEFAULT_PORT);
	assert_int_equal(smig_fp_parse(FP1, fp), 0);
	assert_string_equal(smig_hosts_by_fp(&h, fp)->name, "h1");
	assert_string_equal(smig_hosts_by_addr(&h, "fd00::2")->name, "h2");
	assert_int_equal(smig_hosts_by_name(&h, "h1")->nlabels, 0);
	assert_int_equal(smig_hosts_by_name(&h, "h2")->nlabels, 2);
	assert_string_equal(smig_labels_get(h.v[1].labels, h.v[1].nlabels, "rack"), "r7");
	smig_hosts_clear(&h);
}

static void test_hosts_errors(void **state)
{
	(void)state;
	expect_hosts_error("{\"hosts\": [\n {\"name\": \"h1\", \"adress\": \"x\"}]}",
			   "hosts.json:2:17: unknown key \"adress\" in hosts[0]");
	expect_hosts_error("{\"hosts\": [\n 5]}", "hosts.json:2:2: hosts[0] must be an object");
	expect_hosts_error("{\"hosts\": [{\"name\": \"h1\", \"address\": \"10.0.0.1\", "
			   "\"fingerprint\": \"sha256:00\"}]}",
			   "hosts.json:1:65: hosts[0].fingerprint must be sha256:");
	expect_hosts_error("{\"hosts\": [{\"name\": \"h1\", \"address\": \"10.0.0.1\", \"fingerprint\": \"" FP1 "\"},\n"
			   "{\"name\": \"h1\", \"address\": \"10.0.0.2\", \"fingerprint\": \"" FP2 "\"}]}",
			   "hosts.json:2:10: duplicate host name \"h1\"");
	expect_hosts_error("{\"hosts\": [{\"name\": \"auto\", \"address\": \"10.0.0.1\", \"fingerprint\": \"" FP1 "\"}]}",
			   "hosts.json:1:21: hosts[0].name \"auto\" is reserved (smig migrate --to auto");
	expect_hosts_error("{\"hosts\": [{\"name\": \"h1\", \"address\": \"10.0.0.1\", \"fingerprint\": \"" FP1 "\"},\n"
			   "{\"name\": \"h2\", \"address\": \"10.0.0.2\", \"fingerprint\": \"" FP1 "\"}]}",
			   "hosts.json:2:54: hosts[1].fingerprint already belongs to host h1");
	expect_hosts_error("{\"hosts\": {}}", "hosts.json:1:11: host table.hosts must be an array");
	expect_hosts_error("{}", "hosts.json:1:1: host table: missing required key \"hosts\"");
	expect_hosts_error("{\"hosts\": [{\"name\": \"h1\", \"address\": \"10.0.0.1\", \"fingerprint\": \"" FP1 "\",\n"
			   "\"labels\": {\"zone\": \"a b\"}}]}",
			   "hosts.json:2:20: label zone: keys and values are names");
}

/* A rotation: a host lists the certificate it moves to beside the one it uses. */
static void test_hosts_rotation(void **state)
{
	const char *text = "{\"hosts\": [\n"
			   " {\"name\": \"h1\", \"address\": \"10.1.0.1\", \"fingerprint\": \"" FP1 "\"},\n"
			   " {\"name\": \"h2\", \"address\": \"10.1.0.2\", \"fingerprint\": \"" FP2 "\",\n"
			   "  \"next_fingerprint\": \"" FP3 "\"}]}";
	struct smig_hosts h;
	uint8_t f1[SMIG_FP_LEN], f2[SMIG_FP_LEN], f3[SMIG_FP_LEN];
	char err[256];

	(void)state;
	assert_int_equal(smig_fp_parse(FP1, f1), 0);
	assert_int_equal(smig_fp_parse(FP2, f2), 0);
	assert_int_equal(smig_fp_parse(FP3, f3), 0);
	assert_int_equal(smig_hosts_parse("hosts.json", text, strlen(text), &h, err, sizeof(err)), 0);
	/* both of h2's certificates are h2's; h1 has one */
	assert_string_equal(smig_hosts_by_fp(&h, f2)->name, "h2");
	assert_string_equal(smig_hosts_by_fp(&h, f3)->name, "h2");
	assert_true(smig_host_has_fp(&h.v[1], f3));
	assert_false(smig_host_has_fp(&h.v[0], f3));
	assert_memory_equal(smig_host_other_fp(&h.v[1], f2), f3, SMIG_FP_LEN);
	assert_memory_equal(smig_host_other_fp(&h.v[1], f3), f2, SMIG_FP_LEN);
	assert_null(smig_host_other_fp(&h.v[1], f1));
	assert_null(smig_host_other_fp(&h.v[0], f1));
	smig_hosts_clear(&h);

	/* one certificate, one host: across hosts and both keys */
	expect_hosts_error("{\"hosts\": [{\"name\": \"h1\", \"address\": \"10.0.0.1\", \"fingerprint\": \"" FP1 "\",\n"
			   "\"next_fingerprint\": \"" FP2 "\"},\n"
			   "{\"name\": \"h2\", \"address\": \"10.0.0.2\", \"fingerprint\": \"" FP2 "\"}]}",
			   "hosts.json:3:54: hosts[1].fingerprint already belongs to host h1");
	expect_hosts_error("{\"hosts\": [{\"name\": \"h1\", \"address\": \"10.0.0.1\", \"fingerprint\": \"" FP1 "\"},\n"
			   "{\"name\": \"h2\", \"address\": \"10.0.0.2\", \"fingerprint\": \"" FP2 "\",\n"
			   "\"next_fingerprint\": \"" FP1 "\"}]}",
			   "hosts.json:3:21: hosts[1].next_fingerprint already belongs to host h1");
	expect_hosts_error("{\"hosts\": [{\"name\": \"h1\", \"address\": \"10.0.0.1\", \"fingerprint\": \"" FP1 "\",\n"
			   "\"next_fingerprint\": \"" FP1 "\"}]}",
			   "hosts.json:2:21: hosts[0].next_fingerprint is its fingerprint again");
	expect_hosts_error("{\"hosts\": [{\"name\": \"h1\", \"address\": \"10.0.0.1\", \"fingerprint\": \"" FP1 "\",\n"
			   "\"next_fingerprint\": \"sha256:12\"}]}",
			   "hosts.json:2:21: hosts[0].next_fingerprint must be sha256: and 64 hex digits");
	expect_hosts_error("{\"hosts\": [{\"name\": \"h1\", \"address\": \"10.0.0.1\", \"fingerprint\": \"" FP1 "\",\n"
			   "\"next_fingerprint\": [\"" FP2 "\"]}]}",
			   "hosts.json:2:21: hosts[0].next_fingerprint must be a string");

	/* the revocation of one of a rotating host's two wins; of both, or of a last one, is refused */
	text = "{\"hosts\": [{\"name\": \"h2\", \"address\": \"10.0.0.2\", \"fingerprint\": \"" FP2 "\",\n"
	       "\"next_fingerprint\": \"" FP3 "\"}],\n"
	       "\"revoked\": [{\"fingerprint\": \"" FP2 "\", \"reason\": \"key leaked\"}]}";
	assert_int_equal(smig_hosts_parse("hosts.json", text, strlen(text), &h, err, sizeof(err)), 0);
	assert_non_null(smig_hosts_revoked(&h, f2));
	assert_string_equal(smig_hosts_by_fp(&h, f3)->name, "h2");
	smig_hosts_clear(&h);
	expect_hosts_error("{\"hosts\": [{\"name\": \"h2\", \"address\": \"10.0.0.2\", \"fingerprint\": \"" FP2 "\",\n"
			   "\"next_fingerprint\": \"" FP3 "\"}],\n"
			   "\"revoked\": [{\"fingerprint\": \"" FP3 "\", \"reason\": \"a\"},\n"
			   "{\"fingerprint\": \"" FP2 "\", \"reason\": \"b\"}]}",
			   "hosts.json:4:17: revoked[1].fingerprint is the certificate of host h2, which "
			   "would have none left");
}

/* The revocation list: certificates refused whoever presents them. */
static void test_hosts_revoked(void **state)
{
	const char *text = "{\"hosts\": [\n"
			   " {\"name\": \"h1\", \"address\": \"10.1.0.1\", \"fingerprint\": \"" FP1 "\"}],\n"
			   " \"revoked\": [{\"fingerprint\": \"" FP2 "\", \"host\": \"h2\",\n"
			   "  \"reason\": \"key leaked 2026-12-01\"}]}";
	struct smig_hosts h;
	uint8_t fp[SMIG_FP_LEN];
	char err[256];

	(void)state;
	assert_int_equal(smig_hosts_parse("hosts.json", text, strlen(text), &h, err, sizeof(err)), 0);
	assert_int_equal(h.nrevoked, 1);
	assert_int_equal(smig_fp_parse(FP2, fp), 0);
	assert_non_null(smig_hosts_revoked(&h, fp));
	assert_string_equal(smig_hosts_revoked(&h, fp)->reason, "key leaked 2026-12-01");
	assert_string_equal(smig_hosts_revoked(&h, fp)->host, "h2");
	assert_int_equal(smig_fp_parse(FP1, fp), 0);
	assert_null(smig_hosts_revoked(&h, fp));
	smig_hosts_clear(&h);
	/* a host's own certificate cannot be revoked and kept */
	expect_hosts_error("{\"hosts\": [{\"name\": \"h1\", \"address\": \"10.0.0.1\", \"fingerprint\": \"" FP1 "\"}],\n"
			   "\"revoked\": [{\"fingerprint\": \"" FP1 "\", \"reason\": \"x\"}]}",
			   "hosts.json:2:29: revoked[0].fingerprint is the certificate of host h1");
	expect_hosts_error("{\"hosts\": [],\n\"revoked\": [{\"fingerprint\": \"" FP2 "\"}]}",
			   "hosts.json:2:13: revoked[0]: missing required key \"reason\"");
	expect_hosts_error("{\"hosts\": [],\n\"revoked\": [{\"fingerprint\": \"" FP2 "\", \"reason\": \"a\"},\n"
			   "{\"fingerprint\": \"" FP2 "\", \"reason\": \"b\"}]}",
			   "hosts.json:3:17: revoked[1].fingerprint is revoked twice");
	expect_hosts_error("{\"hosts\": [],\n\"revoked\": [{\"fingerprint\": \"sha1:00\", \"reason\": \"a\"}]}",
			   "hosts.json:2:29: revoked[0].fingerprint must be sha256:");
	expect_hosts_error("{\"hosts\": [],\n\"revoked\": [{\"fingerprint\": \"" FP2 "\", \"reason\": \"\"}]}",
			   "hosts.json:2:");
}

static void test_json_positions_with_unicode_and_escapes(void **state)
{
	/* escaped quotes and multi-byte characters before the bad key */
	const char *text = "{\"a\\\"b\": \"\xc3\xa9t\xc3\xa9\", \"z\": 1}";
	static const struct smig_jfield fields[] = { { "a\"b", SMIG_J_STRING, true, 0, 0 } };
	struct smig_json_doc doc;
	char err[256];

	(void)state;
	assert_int_equal(smig_json_load_text(&doc, "u.json", text, strlen(text), err, sizeof(err)), 0);
	assert_int_equal(smig_json_check(&doc, doc.root, "x", fields, 1, err, sizeof(err)),
			 SMIG_ECONFIG);
	assert_string_equal(err, "u.json:1:17: unknown key \"z\" in x (known: a\"b)");
	smig_json_doc_clear(&doc);
}

static void test_missing_file(void **state)
{
	struct smig_config cfg;
	char err[256];

	(void)state;
	assert_int_equal(smig_config_load("/nonexistent/smig.json", &cfg, err, sizeof(err)),
			 SMIG_ENOENT);
	assert_non_null(strstr(err, "/nonexistent/smig.json"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_config),
		cmocka_unit_test(test_hosts_revoked),
		cmocka_unit_test(test_hosts_rotation),
		cmocka_unit_test(test_audit_and_control_bounds),
		cmocka_unit_test(test_tls_warn_days),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_store),
		cmocka_unit_test(test_unknown_key_names_position),
		cmocka_unit_test(test_wrong_type_names_position),
		cmocka_unit_test(test_missing_field_names_object),
		cmocka_unit_test(test_syntax_error_position),
		cmocka_unit_test(test_duplicate_key_refused),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_mig_policies),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_fingerprints),
		cmocka_unit_test(test_good_hosts),
		cmocka_unit_test(test_hosts_errors),
		cmocka_unit_test(test_json_positions_with_unicode_and_escapes),
		cmocka_unit_test(test_missing_file),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
