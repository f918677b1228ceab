/*
 * cmd_ivt.c - smig ivt show | enrol, smig evacuate [--dry-run]: the trust
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
			"[--new-tpm]\n");
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
			printf("  TPM: EK %s, AK %s (%s)\n", str(tpm, "ek_fingerprint"),
			       str(tpm, "ak_fingerprint"), str(tpm, "proof"));
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
	if (cli->json) {
		cli_print_json(r);
		json_decref(r);
		return EXIT_OK;
	}
	printf("%s %s:\n", dry ? "plan to evacuate" : "evacuated", str(r, "host"));
	json_array_foreach(json_object_get(r, "steps"), i, st)
		printf("  %-16s -> %-12s %-10s %s\n", str(st, "vm"), str(st, "to"),
		       str(st, "outcome"), str(st, "reason"));
	if (!dry)
		printf("%s\n", str(r, "summary"));
	rc = EXIT_OK;
	json_array_foreach(json_object_get(r, "steps"), i, st)
		if (!dry && strcmp(str(st, "outcome"), "migrated") != 0)
			rc = EXIT_MIGRATION;
	json_decref(r);
	return rc;
}
