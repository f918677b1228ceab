/*
 * cmd_vm.c - smig vm define FILE | undefine | start | stop | list | show |
 * console NAME.
 */
#include "client.h"
#include "commands.h"
#include "vmspec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_vm_row(const json_t *v)
{
	printf("%-20s %-9s %6lld %5lld %-5s %-9s %s\n", json_string_value(json_object_get(v, "name")),
	       json_string_value(json_object_get(v, "state")),
	       json_integer_value(json_object_get(v, "memory_mib")),
	       json_integer_value(json_object_get(v, "vcpus")),
	       json_is_true(json_object_get(v, "vtpm")) ? "yes" : "no",
	       json_string_value(json_object_get(v, "min_trust")),
	       json_string_value(json_object_get(v, "last_error")));
}

static void print_vm_header(void)
{
	printf("%-20s %-9s %6s %5s %-5s %-9s %s\n", "NAME", "STATE", "MEM", "CPUS", "VTPM", "TRUST",
	       "LAST-ERROR");
}

static int vm_define_file(struct cli *cli, const char *path)
{
	struct smig_vmspec spec;
	char err[512];
	char *text;
	json_t *r;
	int rc;

	/* validate locally first: the error names this file, line and column */
	if (smig_vmspec_load(path, &spec, err, sizeof(err)) < 0) {
		fprintf(stderr, "smig vm define: %s\n", err);
		return EXIT_ERROR;
	}
	if (smig_vmspec_dump(&spec, &text) < 0)
		return EXIT_ERROR;
	rc = cli_request(cli, "vm.define",
			 json_pack("{s:o}", "spec", json_loads(text, 0, NULL)), &r);
	free(text);
	if (rc)
		return rc;
	if (cli->json)
		cli_print_json(r);
	else
		printf("%s defined\n", json_string_value(json_object_get(r, "name")));
	json_decref(r);
	return EXIT_OK;
}

static int vm_named(struct cli *cli, const char *sub, const char *name)
{
	char cmd[32];
	json_t *r;
	size_t i;
	json_t *l;
	int rc;

	snprintf(cmd, sizeof(cmd), "vm.%s", sub);
	rc = cli_request(cli, cmd, json_pack("{s:s}", "vm", name), &r);
	if (rc)
		return rc;
	if (cli->json) {
		cli_print_json(r);
	} else if (strcmp(sub, "console") == 0) {
		json_array_foreach(json_object_get(r, "lines"), i, l)
			puts(json_string_value(l));
	} else if (strcmp(sub, "undefine") == 0) {
		printf("%s undefined\n", name);
	} else {
		print_vm_header();
		print_vm_row(r);
	}
	json_decref(r);
	return EXIT_OK;
}

static int vm_list(struct cli *cli)
{
	json_t *r;
	json_t *v;
	size_t i;
	int rc = cli_request(cli, "vm.list", NULL, &r);

	if (rc)
		return rc;
	if (cli->json) {
		cli_print_json(r);
	} else {
		print_vm_header();
		json_array_foreach(json_object_get(r, "vms"), i, v)
			print_vm_row(v);
	}
	json_decref(r);
	return EXIT_OK;
}

int cmd_vm(struct cli *cli, int argc, char **argv)
{
	static const char *const named[] = { "start", "stop", "show", "console", "undefine" };

	if (argc == 2 && strcmp(argv[1], "list") == 0)
		return vm_list(cli);
	if (argc == 3 && strcmp(argv[1], "define") == 0)
		return vm_define_file(cli, argv[2]);
	for (size_t i = 0; argc == 3 && i < sizeof(named) / sizeof(named[0]); i++)
		if (strcmp(argv[1], named[i]) == 0)
			return vm_named(cli, named[i], argv[2]);
	fprintf(stderr, "usage: smig vm define FILE | list | start|stop|show|console|undefine NAME\n");
	return EXIT_USAGE;
}
