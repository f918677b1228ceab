/*
 * cmd_pki.c - smig pki init | issue | fingerprint: a cluster CA and host
 * certificates made locally with OpenSSL's API (see pki.h).
 */
#include "client.h"
#include "commands.h"
#include "config.h"
#include "error.h"
#include "pki.h"
#include "tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_days(const char *s, int *days)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < 1 || v > 36500) {
		fprintf(stderr, "smig pki: --days must be 1..36500, not \"%s\"\n", s);
		return EXIT_USAGE;
	}
	*days = (int)v;
	return 0;
}

static int pki_init(struct cli *cli, int argc, char **argv)
{
	char err[512];
	int days = 3650;
	const char *dir = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--days") == 0 && i + 1 < argc) {
			if (parse_days(argv[++i], &days))
				return EXIT_USAGE;
		} else if (argv[i][0] != '-' && dir == NULL) {
			dir = argv[i];
		} else {
			dir = NULL;
			break;
		}
	}
	if (dir == NULL) {
		fprintf(stderr, "usage: smig pki init DIR [--days N]\n");
		return EXIT_USAGE;
	}
	if (smig_pki_init(dir, days, err, sizeof(err)) < 0) {
		fprintf(stderr, "smig pki init: %s\n", err);
		return EXIT_ERROR;
	}
	if (cli->json)
		printf("{\"ca_cert\":\"%s/ca.crt\",\"ca_key\":\"%s/ca.key\"}\n", dir, dir);
	else
		printf("cluster CA created: %s/ca.crt (key %s/ca.key, mode 0600)\n", dir, dir);
	return EXIT_OK;
}

static int pki_issue(struct cli *cli, int argc, char **argv)
{
	struct smig_pki_opts o = { .days = 825, .not_before_shift = -300 };
	const char *pos[2] = { NULL, NULL };
	uint8_t fp[SMIG_FP_LEN];
	char fps[SMIG_FP_STR_LEN];
	char err[512];
	int npos = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--ip") == 0 && i + 1 < argc) {
			o.ip = argv[++i];
		} else if (strcmp(argv[i], "--days") == 0 && i + 1 < argc) {
			if (parse_days(argv[++i], &o.days))
				return EXIT_USAGE;
		} else if (argv[i][0] != '-' && npos < 2) {
			pos[npos++] = argv[i];
		} else {
			npos = -1;
			break;
		}
	}
	if (npos != 2) {
		fprintf(stderr, "usage: smig pki issue DIR HOST [--ip ADDR] [--days N]\n");
		return EXIT_USAGE;
	}
	if (smig_pki_issue(pos[0], pos[1], &o, fp, err, sizeof(err)) < 0) {
		fprintf(stderr, "smig pki issue: %s\n", err);
		return EXIT_ERROR;
	}
	smig_fp_format(fp, fps);
	if (cli->json)
		printf("{\"host\":\"%s\",\"cert\":\"%s/%s.crt\",\"key\":\"%s/%s.key\","
		       "\"fingerprint\":\"%s\"}\n",
		       pos[1], pos[0], pos[1], pos[0], pos[1], fps);
	else
		printf("%s: certificate %s/%s.crt, key %s/%s.key (0600)\nfingerprint %s\n", pos[1],
		       pos[0], pos[1], pos[0], pos[1], fps);
	return EXIT_OK;
}

static int pki_fingerprint(struct cli *cli, int argc, char **argv)
{
	uint8_t fp[SMIG_FP_LEN];
	char fps[SMIG_FP_STR_LEN];
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: smig pki fingerprint CERT\n");
		return EXIT_USAGE;
	}
	rc = smig_tls_cert_fp(argv[1], fp);
	if (rc < 0) {
		fprintf(stderr, "smig pki fingerprint: %s: %s\n", argv[1], smig_strerror(rc));
		return EXIT_ERROR;
	}
	smig_fp_format(fp, fps);
	if (cli->json)
		printf("{\"fingerprint\":\"%s\"}\n", fps);
	else
		printf("%s\n", fps);
	return EXIT_OK;
}

int cmd_pki(struct cli *cli, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "init") == 0)
		return pki_init(cli, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "issue") == 0)
		return pki_issue(cli, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "fingerprint") == 0)
		return pki_fingerprint(cli, argc - 1, argv + 1);
	fprintf(stderr, "usage: smig pki init DIR | issue DIR HOST [--ip ADDR] | "
			"fingerprint CERT\n");
	return EXIT_USAGE;
}
