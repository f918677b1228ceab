/*
 * test_policy.c - policy evaluation over a table of requests (users,
 * groups, globs, labels, default deny, deny wins, peer hosts, constraints)
 * and policy parsing: every problem of a bad file named with its line.
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
#include "policy.h"

static const char policy_text[] =
	"{\n"
	" \"roles\": {\n"
	"  \"admin\": [\"*\"],\n"
	"  \"operator\": [\"vm.migrate\", \"vm.start\", \"vm.stop\", \"vm.view\", \"host.view\"],\n"
	"  \"viewer\": [\"*.view\"],\n"
	"  \"auditor\": [\"audit.view\", \"policy.view\"],\n"
	"  \"migrate-in\": [\"vm.migrate\"]\n"
	" },\n"
	" \"bindings\": [\n"
	"  {\"name\": \"root-admin\", \"users\": [\"root\"], \"role\": \"admin\"},\n"
	"  {\"name\": \"uid-admin\", \"users\": [\"uid:4242\"], \"role\": \"admin\"},\n"
	"  {\"name\": \"ops-web\", \"groups\": [\"ops\"], \"role\": \"operator\",\n"
	"   \"vms\": [\"web-*\"], \"targets\": [\"h2\", \"h3\"]},\n"
	"  {\"name\": \"ops-web-local\", \"groups\": [\"ops\"],\n"
	"   \"actions\": [\"vm.start\", \"vm.stop\", \"vm.view\"], \"vms\": [\"web-*\"]},\n"
	"  {\"name\": \"dba-db\", \"users\": [\"dba*\"], \"role\": \"operator\",\n"
	"   \"vm_labels\": {\"tier\": \"db\"}, \"target_labels\": {\"zone\": \"a*\"}},\n"
	"  {\"name\": \"viewers\", \"groups\": [\"staff\"], \"role\": \"viewer\"},\n"
	"  {\"name\": \"audit\", \"users\": [\"auditor\"], \"role\": \"auditor\"},\n"
	"  {\"name\": \"no-h4\", \"effect\": \"deny\", \"users\": [\"*\"], \"groups\": [\"*\"],\n"
	"   \"actions\": [\"vm.migrate\"], \"targets\": [\"h4\"]},\n"
	"  {\"name\": \"no-secret-export\", \"effect\": \"deny\", \"users\": [\"*\"],\n"
	"   \"actions\": [\"vm.migrate\"], \"vm_labels\": {\"class\": \"secret\"},\n"
	"   \"target_labels\": {\"zone\": \"dmz\"}},\n"
	"  {\"name\": \"mallory-out\", \"effect\": \"deny\", \"users\": [\"mallory\"], "
	"\"role\": \"admin\"},\n"
	"  {\"name\": \"mallory-admin\", \"users\": [\"mallory\"], \"role\": \"admin\"},\n"
	"  {\"name\": \"peers-in\", \"peers\": [\"h1\", \"h2\"], \"role\": \"migrate-in\"},\n"
	"  {\"name\": \"peer-h3-web\", \"peers\": [\"h3\"], \"actions\": [\"vm.migrate\"],\n"
	"   \"vms\": [\"web-*\"]},\n"
	"  {\"name\": \"peer-no-secret\", \"effect\": \"deny\", \"peers\": [\"*\"],\n"
	"   \"actions\": [\"vm.migrate\"], \"vm_labels\": {\"class\": \"secret\"}}\n"
	" ],\n"
	" \"limits\": {\"max_concurrent_migrations\": 2}\n"
	"}\n";

struct pcase {
	const char *who;     /* "user:NAME:UID", "peer:NAME" */
	const char *groups;  /* comma-separated, or NULL */
	const char *action;
	const char *vm;      /* NULL: none */
	const char *vm_lab;  /* "k=v,k=v" */
	const char *min_trust;
	const char *target;
	const char *t_lab;
	const char *t_trust; /* NULL: the trust constraint is not checked */
	int active;
	int allow;
	const char *rule;
};

#define U(n, id) "user:" n ":" #id
static const struct pcase cases[] = {
	{ U("root", 0), NULL, "vm.migrate", "web-1", NULL, NULL, "h2", NULL, NULL, 0, 1, "root-admin" },
	{ U("root", 0), NULL, "host.view", NULL, NULL, NULL, NULL, NULL, NULL, 0, 1, "root-admin" },
	{ U("root", 0), NULL, "host.evacuate", NULL, NULL, NULL, "h2", NULL, NULL, 0, 1, "root-admin" },
	{ U("root", 0), NULL, "vm.migrate", "web-1", NULL, NULL, "h4", NULL, NULL, 0, 0, "no-h4" },
	{ U("", 4242), NULL, "vm.define", "x", NULL, NULL, NULL, NULL, NULL, 0, 1, "uid-admin" },
	{ U("", 4242), NULL, "vm.migrate", "x", NULL, NULL, "h4", NULL, NULL, 0, 0, "no-h4" },
	{ U("", 4243), NULL, "vm.view", "x", NULL, NULL, NULL, NULL, NULL, 0, 0, "default-deny" },
	{ U("root", 4243), NULL, "vm.view", "x", NULL, NULL, NULL, NULL, NULL, 0, 1, "root-admin" },
	{ U("alice", 1000), "ops", "vm.migrate", "web-1", NULL, NULL, "h2", NULL, NULL, 0, 1, "ops-web" },
	{ U("alice", 1000), "users,ops", "vm.migrate", "web-1", NULL, NULL, "h3", NULL, NULL, 0, 1, "ops-web" },
	{ U("alice", 1000), "ops", "vm.migrate", "web-1", NULL, NULL, "h5", NULL, NULL, 0, 0, "default-deny" },
	{ U("alice", 1000), "ops", "vm.migrate", "db-1", NULL, NULL, "h2", NULL, NULL, 0, 0, "default-deny" },
	{ U("alice", 1000), "ops", "vm.start", "web-1", NULL, NULL, NULL, NULL, NULL, 0, 1, "ops-web-local" },
	{ U("alice", 1000), "ops", "vm.define", "web-1", NULL, NULL, NULL, NULL, NULL, 0, 0, "default-deny" },
	{ U("alice", 1000), "ops", "host.view", NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, "default-deny" },
	{ U("alice", 1000), "ops", "vm.migrate", "web-1", NULL, NULL, "h4", NULL, NULL, 0, 0, "no-h4" },
	{ U("alice", 1000), "opsx", "vm.start", "web-1", NULL, NULL, NULL, NULL, NULL, 0, 0, "default-deny" },
	{ U("bob", 1001), NULL, "vm.view", "web-1", NULL, NULL, NULL, NULL, NULL, 0, 0, "default-deny" },
	{ U("carol", 1002), "staff", "vm.view", "web-1", NULL, NULL, NULL, NULL, NULL, 0, 1, "viewers" },
	{ U("carol", 1002), "staff", "host.view", NULL, NULL, NULL, NULL, NULL, NULL, 0, 1, "viewers" },
	{ U("carol", 1002), "staff", "policy.view", NULL, NULL, NULL, NULL, NULL, NULL, 0, 1, "viewers" },
	{ U("carol", 1002), "staff", "vm.stop", "web-1", NULL, NULL, NULL, NULL, NULL, 0, 0, "default-deny" },
	{ U("dba1", 1003), NULL, "vm.migrate", "pg1", "tier=db", NULL, "h2", "zone=a1", NULL, 0, 1, "dba-db" },
	{ U("dbadmin", 1004), NULL, "vm.migrate", "pg1", "tier=db,os=deb", NULL, "h2", "zone=a,rack=3", NULL, 0, 1, "dba-db" },
	{ U("dba1", 1003), NULL, "vm.migrate", "pg1", "tier=db", NULL, "h2", "zone=b1", NULL, 0, 0, "default-deny" },
	{ U("dba1", 1003), NULL, "vm.migrate", "pg1", "tier=web", NULL, "h2", "zone=a1", NULL, 0, 0, "default-deny" },
	{ U("dba1", 1003), NULL, "vm.migrate", "pg1", NULL, NULL, "h2", "zone=a1", NULL, 0, 0, "default-deny" },
	{ U("dba1", 1003), NULL, "vm.migrate", "pg1", "tier=db", NULL, "h2", NULL, NULL, 0, 0, "default-deny" },
	{ U("dba1", 1003), NULL, "vm.stop", "pg1", "tier=db", NULL, NULL, NULL, NULL, 0, 0, "default-deny" },
	{ U("root", 0), NULL, "vm.migrate", "s1", "class=secret", NULL, "h2", "zone=dmz", NULL, 0, 0, "no-secret-export" },
	{ U("root", 0), NULL, "vm.migrate", "s1", "class=secret", NULL, "h2", "zone=a", NULL, 0, 1, "root-admin" },
	{ U("auditor", 1005), NULL, "audit.view", NULL, NULL, NULL, NULL, NULL, NULL, 0, 1, "audit" },
	{ U("auditor", 1005), NULL, "policy.view", NULL, NULL, NULL, NULL, NULL, NULL, 0, 1, "audit" },
	{ U("auditor", 1005), NULL, "vm.view", "web-1", NULL, NULL, NULL, NULL, NULL, 0, 0, "default-deny" },
	{ U("mallory", 1006), NULL, "vm.view", "web-1", NULL, NULL, NULL, NULL, NULL, 0, 0, "mallory-out" },
	{ U("mallory", 1006), NULL, "host.view", NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, "mallory-out" },
	{ "peer:h1", NULL, "vm.migrate", "web-1", NULL, NULL, NULL, NULL, NULL, 0, 1, "peers-in" },
	{ "peer:h2", NULL, "vm.migrate", "db-1", NULL, NULL, NULL, NULL, NULL, 0, 1, "peers-in" },
	{ "peer:h3", NULL, "vm.migrate", "web-1", NULL, NULL, NULL, NULL, NULL, 0, 1, "peer-h3-web" },
	{ "peer:h3", NULL, "vm.migrate", "db-1", NULL, NULL, NULL, NULL, NULL, 0, 0, "default-deny" },
	{ "peer:h9", NULL, "vm.migrate", "web-1", NULL, NULL, NULL, NULL, NULL, 0, 0, "default-deny" },
	{ "peer:h1", NULL, "vm.start", "web-1", NULL, NULL, NULL, NULL, NULL, 0, 0, "default-deny" },
	{ "peer:h1", NULL, "vm.migrate", "s1", "class=secret", NULL, NULL, NULL, NULL, 0, 0, "peer-no-secret" },
	{ "peer:root", NULL, "vm.migrate", "web-1", NULL, NULL, NULL, NULL, NULL, 0, 0, "default-deny" },
	{ U("h1", 1007), NULL, "vm.migrate", "web-1", NULL, NULL, "h2", NULL, NULL, 0, 0, "default-deny" },
	{ U("root", 0), NULL, "vm.migrate", "web-1", NULL, "attested", "h2", NULL, "none", 0, 0, "constraint:min_trust" },
	{ U("root", 0), NULL, "vm.migrate", "web-1", NULL, "attested", "h2", NULL, "attested", 0, 1, "root-admin" },
	{ U("root", 0), NULL, "vm.migrate", "web-1", NULL, "trusted", "h2", NULL, "attested", 0, 0, "constraint:min_trust" },
	{ U("root", 0), NULL, "vm.migrate", "web-1", NULL, "none", "h2", NULL, "none", 0, 1, "root-admin" },
	{ U("alice", 1000), "ops", "vm.migrate", "web-1", NULL, "trusted", "h2", NULL, "trusted", 0, 1, "ops-web" },
	{ U("alice", 1000), "ops", "vm.migrate", "web-1", NULL, "trusted", "h4", NULL, "trusted", 0, 0, "no-h4" },
	{ U("root", 0), NULL, "vm.migrate", "web-1", NULL, NULL, "h2", NULL, NULL, 2, 0, "constraint:max_concurrent_migrations" },
	{ U("root", 0), NULL, "vm.migrate", "web-1", NULL, NULL, "h2", NULL, NULL, 1, 1, "root-admin" },
	{ U("root", 0), NULL, "vm.start", "web-1", NULL, NULL, NULL, NULL, NULL, 5, 1, "root-admin" },
	{ "peer:h1", NULL, "vm.migrate", "web-1", NULL, "trusted", NULL, NULL, NULL, 0, 1, "peers-in" },
	{ "peer:h1", NULL, "vm.migrate", "web-1", NULL, NULL, NULL, NULL, NULL, 3, 0, "constraint:max_concurrent_migrations" },
};

/* "k=v,k=v" -> labels; returns the count. */
static size_t labels_from(const char *s, struct smig_label *out, size_t max)
{
	char tmp[256];
	size_t n = 0;

	if (s == NULL)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s", s);
	for (char *save = NULL, *tok = strtok_r(tmp, ",", &save); tok && n < max;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		assert_non_null(eq);
		*eq = '\0';
		snprintf(out[n].key, sizeof(out[n].key), "%s", tok);
		snprintf(out[n].value, sizeof(out[n].value), "%s", eq + 1);
		n++;
	}
	return n;
}

static void run_case(const struct smig_policy *p, const struct pcase *c, size_t idx)
{
	struct smig_label vml[8], tl[8];
	char who[64], grp[128];
	const char *groups[8];
	struct smig_policy_req r = { 0 };
	struct smig_policy_decision d;

	snprintf(who, sizeof(who), "%s", c->who);
	if (strncmp(who, "peer:", 5) == 0) {
		r.who.kind = SMIG_SUBJ_PEER;
		r.who.name = who + 5;
	} else {
		char *colon = strrchr(who, ':');

		*colon = '\0';
		r.who.kind = SMIG_SUBJ_USER;
		r.who.name = who + 5;
		r.who.uid = (uint32_t)strtoul(colon + 1, NULL, 10);
	}
	if (c->groups) {
		snprintf(grp, sizeof(grp), "%s", c->groups);
		for (char *save = NULL, *g = strtok_r(grp, ",", &save); g && r.who.ngroups < 8;
		     g = strtok_r(NULL, ",", &save))
			groups[r.who.ngroups++] = g;
		r.who.groups = groups;
	}
	assert_int_equal(smig_action_parse(c->action, &r.action), 0);
	r.vm = c->vm;
	r.vm_labels = vml;
	r.vm_nlabels = labels_from(c->vm_lab, vml, 8);
	if (c->min_trust)
		assert_int_equal(smig_trust_parse(c->min_trust, &r.vm_min_trust), 0);
	r.target = c->target;
	r.target_labels = tl;
	r.target_nlabels = labels_from(c->t_lab, tl, 8);
	if (c->t_trust) {
		r.check_trust = true;
		assert_int_equal(smig_trust_parse(c->t_trust, &r.target_trust), 0);
	}
	r.migrations_active = c->active;
	smig_policy_eval(p, &r, &d);
	if (d.allow != (c->allow != 0) || strcmp(d.rule, c->rule) != 0)
		fail_msg("case %zu (%s %s %s): got %s by %s, want %s by %s (%s)", idx, c->who,
			 c->action, c->vm ? c->vm : "-", d.allow ? "allow" : "deny", d.rule,
			 c->allow ? "allow" : "deny", c->rule, d.reason);
	assert_non_null(strstr(d.reason, c->action));
}

static void test_table(void **state)
{
	struct smig_policy *p = NULL;
	struct smig_diags diags = { 0 };
	int rc;

	(void)state;
	rc = smig_policy_parse("policy.json", policy_text, strlen(policy_text), &p, &diags);
	if (rc < 0)
		fail_msg("policy: %s", diags.msg[0]);
	assert_int_equal(smig_policy_roles(p), 5);
	assert_int_equal(smig_policy_bindings(p), 14);
	assert_int_equal(smig_policy_max_migrations(p), 2);
	assert_true(ARRAY_LEN(cases) >= 40);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		run_case(p, &cases[i], i);
	smig_policy_free(p);
}

static void test_builtin(void **state)
{
	static const struct pcase builtin[] = {
		{ U("root", 0), NULL, "vm.migrate", "a", NULL, NULL, "h2", NULL, NULL, 0, 1, "builtin-root-admin" },
		{ U("", 0), NULL, "audit.view", NULL, NULL, NULL, NULL, NULL, NULL, 0, 1, "builtin-root-admin" },
		{ U("root", 1000), NULL, "vm.view", "a", NULL, NULL, NULL, NULL, NULL, 0, 0, "default-deny" },
		{ "peer:hx", NULL, "vm.migrate", "a", NULL, NULL, NULL, NULL, NULL, 0, 1, "builtin-cluster-peers" },
		{ "peer:hx", NULL, "vm.stop", "a", NULL, NULL, NULL, NULL, NULL, 0, 0, "default-deny" },
	};
	struct smig_policy *p = NULL;

	(void)state;
	assert_int_equal(smig_policy_builtin(&p), 0);
	for (size_t i = 0; i < ARRAY_LEN(builtin); i++)
		run_case(p, &builtin[i], i);
	smig_policy_free(p);
}

/* A file with one problem per binding: each named with its own line. */
static void test_lint_every_problem(void **state)
{
	static const char text[] =
		"{\"roles\": {\"ops\": [\"vm.start\"], \"bad\": [\"vm.fly\"]},\n"        /* 1 */
		" \"bindings\": [\n"                                                    /* 2 */
		"  {\"name\": \"a\", \"users\": [\"x\"], \"role\": \"nope\"},\n"        /* 3 */
		"  {\"name\": \"b\", \"role\": \"ops\"},\n"                             /* 4 */
		"  {\"name\": \"c\", \"users\": [\"x\"], \"role\": \"ops\", \"actions\": [\"vm.stop\"]},\n"
		"  {\"name\": \"d\", \"users\": [\"x\"], \"role\": \"ops\", \"effect\": \"maybe\"},\n"
		"  {\"name\": \"e\", \"users\": [\"a b\"], \"role\": \"ops\"},\n"       /* 7 */
		"  {\"name\": \"f\", \"users\": [\"x\"], \"role\": \"ops\", \"colour\": 1},\n"
		"  {\"name\": \"g\", \"users\": [\"x\"], \"role\": \"ops\"},\n"         /* 9: fine */
		"  {\"name\": \"g\", \"users\": [\"x\"], \"role\": \"ops\"},\n"         /* 10 */
		"  {\"name\": \"h\", \"users\": [\"x\"], \"actions\": [\"root\"]},\n"   /* 11 */
		"  {\"name\": \"i\", \"users\": [\"x\"], \"role\": \"ops\", \"vm_labels\": {\"t\": 3}}\n"
		" ],\n"
		" \"limits\": {\"max_concurrent_migrations\": 5000}\n"                  /* 14 */
		"}\n";
	static const char *const want[] = {
		"p.json:1:", "p.json:3:", "p.json:4:", "p.json:5:", "p.json:6:",
		"p.json:7:", "p.json:8:", "p.json:10:", "p.json:11:", "p.json:12:", "p.json:14:",
	};
	struct smig_diags *d = calloc(1, sizeof(*d));
	struct smig_policy *p = NULL;

	(void)state;
	assert_non_null(d);
	assert_int_equal(smig_policy_parse("p.json", text, strlen(text), &p, d), SMIG_ECONFIG);
	assert_null(p);
	if (d->n != ARRAY_LEN(want)) {
		for (size_t i = 0; i < d->n; i++)
			print_message("# %s\n", d->msg[i]);
		fail_msg("%zu problems, want %zu", d->n, ARRAY_LEN(want));
	}
	for (size_t i = 0; i < d->n; i++)
		if (strncmp(d->msg[i], want[i], strlen(want[i])) != 0)
			fail_msg("problem %zu: \"%s\", want \"%s...\"", i, d->msg[i], want[i]);
	assert_non_null(strstr(d->msg[0], "vm.fly") ? d->msg[0] : strstr(d->msg[0], "names no"));
	assert_non_null(strstr(d->msg[1], "no role named \"nope\""));
	assert_non_null(strstr(d->msg[2], "names no subject"));
	assert_non_null(strstr(d->msg[3], "exactly one of role and actions"));
	assert_non_null(strstr(d->msg[7], "duplicate binding name"));
	free(d);
}

static void test_syntax_error(void **state)
{
	static const char text[] = "{\"roles\": {},\n \"bindings\": [,]}";
	struct smig_diags d = { 0 };
	struct smig_policy *p = NULL;

	(void)state;
	assert_int_equal(smig_policy_parse("s.json", text, strlen(text), &p, &d), SMIG_ECONFIG);
	assert_int_equal(d.n, 1);
	assert_int_equal(strncmp(d.msg[0], "s.json:2:", 9), 0);
	assert_int_equal(smig_policy_parse("m.json", "{\"roles\": {}}", 13, &p, &d), SMIG_ECONFIG);
	assert_non_null(strstr(d.msg[1], "bindings"));
}

static void test_empty_policy_denies(void **state)
{
	static const char text[] = "{\"roles\": {}, \"bindings\": []}";
	struct smig_policy *p = NULL;
	struct smig_policy_req r = { .who = { .kind = SMIG_SUBJ_USER, .name = "root" },
				     .action = SMIG_ACT_HOST_VIEW };
	struct smig_policy_decision d;

	(void)state;
	assert_int_equal(smig_policy_parse("e.json", text, strlen(text), &p, NULL), 0);
	smig_policy_eval(p, &r, &d);
	assert_false(d.allow);
	assert_string_equal(d.rule, "default-deny");
	r.action = SMIG_ACT_COUNT;
	smig_policy_eval(p, &r, &d);
	assert_false(d.allow);
	smig_policy_free(p);
}

static void test_cluster_cap(void **state)
{
	static const char good[] = "{\"roles\": {}, \"bindings\": [],\n"
				   " \"limits\": {\"max_cluster_migrations\": 3}}";
	static const char bad[] = "{\"roles\": {}, \"bindings\": [],\n"
				  " \"limits\": {\"max_cluster_migrations\": 2000}}";
	struct smig_diags d = { 0 };
	struct smig_policy *p = NULL;

	(void)state;
	assert_int_equal(smig_policy_parse("c.json", good, strlen(good), &p, NULL), 0);
	assert_int_equal(smig_policy_max_cluster_migrations(p), 3);
	assert_int_equal(smig_policy_max_migrations(p), 0);
	smig_policy_free(p);
	p = NULL;
	assert_int_equal(smig_policy_parse("c.json", bad, strlen(bad), &p, &d), SMIG_ECONFIG);
	assert_int_equal(d.n, 1);
	assert_non_null(strstr(d.msg[0], "max_cluster_migrations"));
	assert_int_equal(strncmp(d.msg[0], "c.json:2:", 9), 0);
}

/* A VM whose labels are not known here (another host's): label-scoped denies hold, allows do not. */
static void test_labels_unknown(void **state)
{
	static const char text[] =
		"{\"roles\": {\"viewer\": [\"vm.view\"]}, \"bindings\": [\n"
		" {\"name\": \"see-all\", \"users\": [\"bob\"], \"role\": \"viewer\"},\n"
		" {\"name\": \"see-web\", \"users\": [\"eve\"], \"role\": \"viewer\",\n"
		"  \"vm_labels\": {\"tier\": \"web\"}},\n"
		" {\"name\": \"no-secret\", \"effect\": \"deny\", \"users\": [\"bob\"],\n"
		"  \"actions\": [\"vm.view\"], \"vm_labels\": {\"class\": \"secret\"}}]}";
	struct smig_policy *p = NULL;
	struct smig_policy_decision dec;
	struct smig_policy_req r = { .action = SMIG_ACT_VM_VIEW, .vm = "db1" };

	(void)state;
	assert_int_equal(smig_policy_parse("u.json", text, strlen(text), &p, NULL), 0);
	r.who = (struct smig_subject){ .kind = SMIG_SUBJ_USER, .name = "bob", .uid = 1001 };
	smig_policy_eval(p, &r, &dec);
	assert_true(dec.allow); /* labels known (none): the deny does not match */
	r.vm_labels_unknown = true;
	smig_policy_eval(p, &r, &dec);
	assert_false(dec.allow); /* it may be secret: the deny holds */
	assert_string_equal(dec.rule, "no-secret");
	r.who = (struct smig_subject){ .kind = SMIG_SUBJ_USER, .name = "eve", .uid = 1002 };
	smig_policy_eval(p, &r, &dec);
	assert_false(dec.allow); /* it may not be web: the allow does not match */
	smig_policy_free(p);
}

static void test_action_names(void **state)
{
	enum smig_action a;

	(void)state;
	for (int i = 0; i < SMIG_ACT_COUNT; i++) {
		assert_int_equal(smig_action_parse(smig_action_name((enum smig_action)i), &a), 0);
		assert_int_equal((int)a, i);
	}
	assert_int_equal(smig_action_parse("vm.*", &a), SMIG_EINVAL);
	assert_string_equal(smig_action_name(SMIG_ACT_COUNT), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_builtin),
		cmocka_unit_test(test_lint_every_problem),
		cmocka_unit_test(test_syntax_error),
		cmocka_unit_test(test_empty_policy_denies),
		cmocka_unit_test(test_cluster_cap),
		cmocka_unit_test(test_labels_unknown),
		cmocka_unit_test(test_action_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
