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

int cmd_policy(struct cli *cli, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "check") == 0)
		return policy_check(cli, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "lint") == 0)
		return policy_lint(cli, argc - 1, argv + 1);
	fprintf(stderr, "usage: smig policy check|lint ...\n");
	return EXIT_USAGE;
}
