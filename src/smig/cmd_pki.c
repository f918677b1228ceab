/*
 * cmd_pki.c - smig pki init | csr | sign | issue | fingerprint: a cluster
 * CA and host certificates made locally with OpenSSL's API (see pki.h).
 *
 * The directory arguments may be left out: then the CA's and the host's
 * files are in SMIG_PKI_DIR (/etc/smig/pki). Which argument is which is
 * told by their number alone (csr HOST or csr DIR HOST, sign CSR or sign
 * CADIR CSR), never by guessing from their text.
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

/*
 * The arguments of one pki command: up to max positional ones into pos
 * (*npos of them), and the options it takes (--ip, --days, --out: a NULL
 * pointer for one it does not take). -1 on anything else.
 */
struct pki_args {
	const char *pos[2];
	int npos;
	const char **ip;
	int *days;
	const char **out;
};

static int pki_parse(int argc, char **argv, int max, struct pki_args *a)
{
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		bool has_value = i + 1 < argc;

		if (strcmp(o, "--ip") == 0 && a->ip && has_value) {
			*a->ip = argv[++i];
		} else if (strcmp(o, "--out") == 0 && a->out && has_value) {
			*a->out = argv[++i];
		} else if (strcmp(o, "--days") == 0 && a->days && has_value) {
			if (parse_days(argv[++i], a->days))
				return -1;
		} else if (o[0] != '-' && a->npos < max) {
			a->pos[a->npos++] = o;
		} else {
			return -1;
		}
	}
	return 0;
}

static int pki_init(struct cli *cli, int argc, char **argv)
{
	struct pki_args a = { .npos = 0 };
	char err[512];
	int days = 3650;
	const char *dir;

	a.days = &days;
	if (pki_parse(argc, argv, 1, &a) < 0) {
		fprintf(stderr, "usage: smig pki init [DIR] [--days N]   (DIR: %s)\n", SMIG_PKI_DIR);
		return EXIT_USAGE;
	}
	dir = a.npos ? a.pos[0] : SMIG_PKI_DIR;
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
	struct pki_args a = { .ip = &o.ip, .days = &o.days };
	uint8_t fp[SMIG_FP_LEN];
	char fps[SMIG_FP_STR_LEN];
	char err[512];
	const char *dir, *host;

	if (pki_parse(argc, argv, 2, &a) < 0 || a.npos == 0) {
		fprintf(stderr, "usage: smig pki issue [DIR] HOST [--ip ADDR] [--days N]   (DIR: %s)\n",
			SMIG_PKI_DIR);
		return EXIT_USAGE;
	}
	dir = a.npos == 2 ? a.pos[0] : SMIG_PKI_DIR;
	host = a.pos[a.npos - 1];
	if (smig_pki_issue(dir, host, &o, fp, err, sizeof(err)) < 0) {
		fprintf(stderr, "smig pki issue: %s\n", err);
		return EXIT_ERROR;
	}
	smig_fp_format(fp, fps);
	if (cli->json)
		printf("{\"host\":\"%s\",\"cert\":\"%s/%s.crt\",\"key\":\"%s/%s.key\","
		       "\"fingerprint\":\"%s\"}\n",
		       host, dir, host, dir, host, fps);
	else
		printf("%s: certificate %s/%s.crt, key %s/%s.key (0600)\nfingerprint %s\n", host,
		       dir, host, dir, host, fps);
	return EXIT_OK;
}

static int pki_csr(struct cli *cli, int argc, char **argv)
{
	const char *ip = NULL, *dir, *host;
	struct pki_args a = { .ip = &ip };
	uint8_t fp[SMIG_FP_LEN];
	char fps[SMIG_FP_STR_LEN];
	char err[512];

	if (pki_parse(argc, argv, 2, &a) < 0 || a.npos == 0) {
		fprintf(stderr, "usage: smig pki csr [DIR] HOST [--ip ADDR]   (DIR: %s)\n",
			SMIG_PKI_DIR);
		return EXIT_USAGE;
	}
	dir = a.npos == 2 ? a.pos[0] : SMIG_PKI_DIR;
	host = a.pos[a.npos - 1];
	if (smig_pki_csr(dir, host, ip, fp, err, sizeof(err)) < 0) {
		fprintf(stderr, "smig pki csr: %s\n", err);
		return EXIT_ERROR;
	}
	smig_fp_format(fp, fps);
	if (cli->json)
		printf("{\"host\":\"%s\",\"csr\":\"%s/%s.csr\",\"key\":\"%s/%s.key\","
		       "\"request\":\"%s\"}\n",
		       host, dir, host, dir, host, fps);
	else
		printf("%s: request %s/%s.csr, key %s/%s.key (0600, stays on this host)\n"
		       "request %s\n"
		       "next: copy %s.csr to the CA's host, run smig pki sign %s.csr there (it prints "
		       "the same request digest), and bring the certificate back\n",
		       host, dir, host, dir, host, fps, host, host);
	return EXIT_OK;
}

static int pki_sign(struct cli *cli, int argc, char **argv)
{
	struct smig_pki_opts o = { .days = 825, .not_before_shift = -300 };
	struct smig_pki_signed s;
	const char *out = NULL, *cadir, *csr;
	struct pki_args a = { .days = &o.days, .out = &out };
	char fps[SMIG_FP_STR_LEN], rfps[SMIG_FP_STR_LEN];
	char err[512];

	if (pki_parse(argc, argv, 2, &a) < 0 || a.npos == 0) {
		fprintf(stderr, "usage: smig pki sign [CADIR] CSR [--days N] [--out CERT]   "
				"(CADIR: %s)\n", SMIG_PKI_DIR);
		return EXIT_USAGE;
	}
	cadir = a.npos == 2 ? a.pos[0] : SMIG_PKI_DIR;
	csr = a.pos[a.npos - 1];
	if (smig_pki_sign(cadir, csr, &o, out, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "smig pki sign: %s\n", err);
		return EXIT_ERROR;
	}
	smig_fp_format(s.fp, fps);
	smig_fp_format(s.req_fp, rfps);
	if (cli->json) {
		printf("{\"host\":\"%s\",\"cert\":\"%s\",\"fingerprint\":\"%s\",\"request\":\"%s\","
		       "\"days\":%d,\"dropped_names\":%zu,\"outlives_ca\":%s}\n",
		       s.host, s.cert, fps, rfps, o.days, s.dropped, s.outlives_ca ? "true" : "false");
		return EXIT_OK;
	}
	printf("%s: certificate %s, valid %d days\nrequest     %s\nfingerprint %s\n", s.host,
	       s.cert, o.days, rfps, fps);
	if (s.dropped)
		printf("note: %zu subjectAltName(s) of the request are neither DNS nor IP and were "
		       "not copied\n", s.dropped);
	if (s.outlives_ca)
		printf("note: the certificate outlives the CA's own (%s/ca.crt); it fails with the "
		       "CA before its own end\n", cadir);
	printf("next: put the fingerprint in the host table (hosts[].next_fingerprint while the "
	       "old certificate serves on), then the certificate on %s\n", s.host);
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
	static const struct {
		const char *name;
		int (*fn)(struct cli *cli, int argc, char **argv);
	} subs[] = {
		{ "init", pki_init }, { "csr", pki_csr }, { "sign", pki_sign },
		{ "issue", pki_issue }, { "fingerprint", pki_fingerprint },
	};

	for (size_t i = 0; argc >= 2 && i < ARRAY_LEN(subs); i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].fn(cli, argc - 1, argv + 1);
	fprintf(stderr, "usage: smig pki init [DIR] | csr [DIR] HOST [--ip ADDR] | "
			"sign [CADIR] CSR [--days N] [--out CERT] | issue [DIR] HOST [--ip ADDR] | "
			"fingerprint CERT   (DIR, CADIR: %s)\n", SMIG_PKI_DIR);
	return EXIT_USAGE;
}
