/*
 * cmd_policy.c - smig policy check | lint.
 *
 * check asks smigd how its policy answers a request (the rule that
 * decides, like "kubectl auth can-i"); lint reads a policy file locally
 * and names every problem with its line.
 */
#include "client.h"
#include "commands.h"
#include "error.h"
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_usage(void)
{
	fprintf(stderr, "usage: smig policy check (--user USER | --peer HOST) --action ACTION "
			"[--vm VM] [--to HOST]\n"
			"actions: vm.migrate vm.start vm.stop vm.define vm.view host.evacuate "
			"host.maintenance host.view policy.view audit.view ivt.enrol ids.manage\n");
	return EXIT_USAGE;
}

static int policy_check(struct cli *cli, int argc, char **argv)
{
	static const char *const opts[] = { "--user", "--peer", "--action", "--vm", "--to" };
	json_t *args = json_object();
	json_t *r;
	int rc;

	for (int i = 1; i < argc; i++) {
		size_t k;

		for (k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
			if (strcmp(argv[i], opts[k]) == 0 && i + 1 < argc)
				break;
		if (k == sizeof(opts) / sizeof(opts[0])) {
			json_decref(args);
			return check_usage();
		}
		json_object_set_new(args, strcmp(opts[k], "--to") == 0 ? "to" : opts[k] + 2,
				    json_string(argv[++i]));
	}
	if (!json_object_get(args, "action") ||
	    !json_object_get(args, "user") == !json_object_get(args, "peer")) {
		json_decref(args);
		return check_usage();
	}
	if ((rc = cli_request(cli, "policy.check", args, &r)))
		return rc;
	if (cli->json)
		cli_print_json(r);
	else
		printf("%s (rule %s)\n  %s\n", json_string_value(json_object_get(r, "decision")),
		       json_string_value(json_object_get(r, "rule")),
		       json_string_value(json_object_get(r, "reason")));
	rc = strcmp(json_string_value(json_object_get(r, "decision")), "allow") == 0
		     ? EXIT_OK
		     : EXIT_DENIED;
	json_decref(r);
	return rc;
}

static int policy_lint(struct cli *cli, int argc, char **argv)
{
	struct smig_diags *diags;
	struct smig_policy *p = NULL;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: smig policy lint FILE\n");
		return EXIT_USAGE;
	}
	diags = calloc(1, sizeof(*diags));
	if (diags == NULL)
		return EXIT_ERROR;
	rc = smig_policy_load(argv[1], &p, diags);
	if (cli->json) {
		json_t *arr = json_array();
		json_t *o;

		for (size_t i = 0; i < diags->n; i++)
			json_array_append_new(arr, json_string(diags->msg[i]));
		o = json_pack("{s:s,s:b,s:o}", "file", argv[1], "ok", rc == 0, "problems", arr);
		if (p)
			json_object_set_new(o, "bindings", json_integer((json_int_t)smig_policy_bindings(p)));
		cli_print_json(o);
		json_decref(o);
	} else if (rc == 0) {
		printf("%s: ok (%zu roles, %zu bindings)\n", argv[1], smig_policy_roles(p),
		       smig_policy_bindings(p));
	} else {
		for (size_t i = 0; i < diags->n; i++)
			fprintf(stderr, "%s\n", diags->msg[i]);
		if (diags->dropped)
			fprintf(stderr, "... and %zu more problems\n", diags->dropped);
	}
	smig_policy_free(p);
	free(diags);
	return rc == 0 ? EXIT_OK : EXIT_ERROR;
}

/* smig policy explain-migration VM [--to HOST] */
static int policy_explain_mig(struct cli *cli, int argc, char **argv)
{
	json_t *args, *r, *s, *m;
	size_t i;
	int rc;

	if (argc != 2 && !(argc == 4 && strcmp(argv[2], "--to") == 0)) {
		fprintf(stderr, "usage: smig policy explain-migration VM [--to HOST]\n");
		return EXIT_USAGE;
	}
	args = json_pack("{s:s}", "vm", argv[1]);
	if (argc == 4)
		json_object_set_new(args, "to", json_string(argv[3]));
	rc = cli_request(cli, "policy.explain_migration", args, &r);
	if (rc)
		return rc;
	if (cli->json) {
		cli_print_json(r);
		json_decref(r);
		return EXIT_OK;
	}
	s = json_object_get(r, "settings");
	if (json_is_string(json_object_get(r, "policy")))
		printf("%s%s%s: migration policy %s\n", argv[1], argc == 4 ? " to " : "",
		       argc == 4 ? argv[3] : "", json_string_value(json_object_get(r, "policy")));
	else
		printf("%s: no migration policy\n", argv[1]);
	printf("  why: %s\n", json_string_value(json_object_get(r, "why")));
	json_array_foreach(json_object_get(r, "matched"), i, m)
		printf("  matches: %s (%lld labels)\n", json_string_value(json_object_get(m, "name")),
		       json_integer_value(json_object_get(m, "labels")));
	printf("  bandwidth %s, downtime %lld ms, completion timeout %lld s, progress timeout "
	       "%lld s, on timeout %s, auto-converge %s\n",
	       json_integer_value(json_object_get(s, "max_bandwidth_mib"))
		       ? "capped"
		       : "unlimited",
	       json_integer_value(json_object_get(s, "downtime_ms")),
	       json_integer_value(json_object_get(s, "completion_timeout_s")),
	       json_integer_value(json_object_get(s, "progress_timeout_s")),
	       json_string_value(json_object_get(s, "on_timeout")),
	       json_string_value(json_object_get(s, "auto_converge")));
	if (json_integer_value(json_object_get(s, "max_bandwidth_mib")))
		printf("  bandwidth cap: %lld MiB/s\n",
		       json_integer_value(json_object_get(s, "max_bandwidth_mib")));
	s = json_object_get(r, "outbound");
	printf("  leaving now: %lld running, %lld queued (migration.parallel_outbound %lld)\n",
	       json_integer_value(json_object_get(s, "running")),
	       json_integer_value(json_object_get(s, "queued")),
	       json_integer_value(json_object_get(s, "parallel_outbound")));
	json_decref(r);
	return EXIT_OK;
}

int cmd_policy(struct cli *cli, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "check") == 0)
		return policy_check(cli, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "lint") == 0)
		return policy_lint(cli, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "explain-migration") == 0)
		return policy_explain_mig(cli, argc - 1, argv + 1);
	fprintf(stderr, "usage: smig policy check|lint|explain-migration ...\n");
	return EXIT_USAGE;
}
