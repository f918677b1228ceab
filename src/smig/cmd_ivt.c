/*
 * cmd_ivt.c - smig ivt show | enrol, smig evacuate [--dry-run], smig maintenance: the trust
 * layer's commands (docs/attestation.md).
 */
#include "client.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "-";
}

static int ivt_show(struct cli *cli)
{
	const char *name;
	json_t *r, *h;
	int rc;

	if ((rc = cli_request(cli, "ivt.show", NULL, &r)))
		return rc;
	if (cli->json) {
		cli_print_json(r);
		json_decref(r);
		return EXIT_OK;
	}
	printf("IVT %s\n", str(r, "file"));
	json_object_foreach(json_object_get(json_object_get(r, "ivt"), "hosts"), name, h) {
		const json_t *g;
		size_t i;

		printf("  %-12s %-9s %s\n", name, str(h, "trust"), str(h, "fingerprint"));
		json_array_foreach(json_object_get(h, "golden"), i, g)
			printf("    golden set %s: %zu components\n", str(g, "name"),
			       json_object_size(json_object_get(g, "components")));
	}
	printf("this host: %s (%s)\n", str(json_object_get(r, "self"), "verdict"),
	       str(json_object_get(r, "self"), "reason"));
	json_object_foreach(json_object_get(r, "measurement"), name, h)
		printf("  %-12s %s\n", name, json_string_value(h));
	json_decref(r);
	return EXIT_OK;
}

static int ivt_enrol(struct cli *cli, int argc, char **argv)
{
	json_t *args = json_object(), *r;
	int rc;

	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "--golden") == 0 || strcmp(argv[i], "--trust") == 0) &&
		    i + 1 < argc) {
			json_object_set_new(args, argv[i] + 2, json_string(argv[i + 1]));
			i++;
		} else if (strcmp(argv[i], "--new-tpm") == 0) {
			json_object_set_new(args, "new_tpm", json_true());
		} else if (strcmp(argv[i], "--with") == 0 && i + 1 < argc && strchr(argv[i + 1], '=')) {
			/* NAME=SHA256: checked by smigd */
			char name[80];
			const char *eq = strchr(argv[++i], '=');

			if (!json_object_get(args, "with"))
				json_object_set_new(args, "with", json_object());
			snprintf(name, sizeof(name), "%.*s", (int)(eq - argv[i]), argv[i]);
			json_object_set_new(json_object_get(args, "with"), name, json_string(eq + 1));
		} else if (argv[i][0] != '-' && !json_object_get(args, "host")) {
			json_object_set_new(args, "host", json_string(argv[i]));
		} else {
			json_decref(args);
			args = NULL;
			break;
		}
	}
	if (args == NULL || !json_object_get(args, "host")) {
		json_decref(args);
		fprintf(stderr, "usage: smig ivt enrol HOST [--golden NAME] [--trust trusted|attested] "
			"[--new-tpm] [--with NAME=SHA256]...\n");
		return EXIT_USAGE;
	}
	if ((rc = cli_request(cli, "ivt.enrol", args, &r)))
		return rc;
	if (cli->json)
		cli_print_json(r);
	else {
		const json_t *tpm = json_object_get(r, "tpm");

		printf("%s enrolled: golden set %s (%lld components) as %s in %s\n", str(r, "host"),
		       str(r, "golden"), json_integer_value(json_object_get(r, "components")),
		       str(r, "trust"), str(r, "ivt"));
		if (tpm)
			printf("  TPM: EK %s, AK %s (%s)\n  EK certificate: %s\n",
			       str(tpm, "ek_fingerprint"), str(tpm, "ak_fingerprint"),
			       str(tpm, "proof"), str(tpm, "ek_cert"));
		else
			printf("  no TPM: its evidence is its own word, at most unverified\n");
	}
	json_decref(r);
	return EXIT_OK;
}

int cmd_ivt(struct cli *cli, int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "show") == 0)
		return ivt_show(cli);
	if (argc >= 2 && strcmp(argv[1], "enrol") == 0)
		return ivt_enrol(cli, argc - 1, argv + 1);
	fprintf(stderr, "usage: smig ivt show | enrol HOST [--golden NAME] [--trust LEVEL] "
		"[--new-tpm]\n");
	return EXIT_USAGE;
}

int cmd_evacuate(struct cli *cli, int argc, char **argv)
{
	bool dry = argc == 2 && strcmp(argv[1], "--dry-run") == 0;
	const json_t *st;
	json_t *r;
	size_t i;
	int rc;

	if (argc > 2 || (argc == 2 && !dry)) {
		fprintf(stderr, "usage: smig evacuate [--dry-run]\n");
		return EXIT_USAGE;
	}
	cli->timeout_ms = 3600 * 1000;
	if ((rc = cli_request(cli, "evacuate", json_pack("{s:b}", "dry_run", dry), &r)))
		return rc;
	rc = EXIT_OK;
	json_array_foreach(json_object_get(r, "steps"), i, st)
		if (!dry && strcmp(str(st, "outcome"), "migrated") != 0)
			rc = EXIT_MIGRATION;
	if (cli->json) {
		cli_print_json(r);
		json_decref(r);
		return rc;
	}
	printf("%s %s:\n", dry ? "plan to evacuate" : "evacuated", str(r, "host"));
	json_array_foreach(json_object_get(r, "steps"), i, st)
		printf("  %-16s -> %-12s %-10s %-14s %s\n", str(st, "vm"), str(st, "to"),
		       str(st, "outcome"), str(st, "rule"), str(st, "reason"));
	if (!dry)
		printf("%s\n", str(r, "summary"));
	json_decref(r);
	return rc;
}

int cmd_maintenance(struct cli *cli, int argc, char **argv)
{
	json_t *args, *r;
	const json_t *m;
	int rc;

	if (argc < 2 || (strcmp(argv[1], "on") != 0 && strcmp(argv[1], "off") != 0))
		goto usage;
	args = json_pack("{s:b}", "on", strcmp(argv[1], "on") == 0);
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc) {
			json_object_set_new(args, "reason", json_string(argv[++i]));
		} else if (argv[i][0] != '-' && !json_object_get(args, "host")) {
			json_object_set_new(args, "host", json_string(argv[i]));
		} else {
			json_decref(args);
			goto usage;
		}
	}
	if ((rc = cli_request(cli, "maintenance", args, &r)))
		return rc;
	if (cli->json) {
		cli_print_json(r);
	} else {
		m = json_object_get(r, "maintenance");
		if (json_is_true(json_object_get(m, "on")))
			printf("%s is in maintenance since %s: no VMs arrive, a failed self-check does "
			       "not evacuate\n", str(r, "host"), str(m, "since"));
		else
			printf("%s is out of maintenance; its own check: %s (%s)\n", str(r, "host"),
			       str(json_object_get(r, "attestation"), "verdict"),
			       str(json_object_get(r, "attestation"), "reason"));
	}
	json_decref(r);
	return EXIT_OK;
usage:
	fprintf(stderr, "usage: smig maintenance on|off [HOST] [--reason TEXT]\n");
	return EXIT_USAGE;
}
