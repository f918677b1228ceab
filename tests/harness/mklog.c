/*
 * mklog.c - smig-mklog: the logs a host TPM comes with, in their real
 * formats, for attestation tests (a swtpm has no firmware and no kernel
 * to write them):
 *
 *   smig-mklog boot OUT PCR:SHA256 ...   a TCG crypto-agile event log, one
 *                                        event per argument
 *   smig-mklog ima OUT AGGREGATE PATH=SHA256 ...
 *                                        a binary ima-ng list, boot_aggregate
 *                                        first, one entry per file
 *
 * Each prints what the events extend, one "PCR:sha256=HEX" line each, for
 * tpm2_pcrextend to put into the TPM the same way.
 */
#include "eventlog.h"
#include "ima.h"
#include "sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARGS_MAX 256

static int write_out(const char *path, const uint8_t *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok = f && fwrite(data, 1, len, f) == len;

	if (f && fclose(f) != 0)
		ok = 0;
	if (!ok)
		fprintf(stderr, "smig-mklog: cannot write %s\n", path);
	return ok ? 0 : 1;
}

static int boot(int argc, char **argv)
{
	struct smig_evlog_event ev[ARGS_MAX];
	uint8_t *out = NULL;
	size_t n = 0, len;
	char hex[65];

	for (int i = 3; i < argc && n < ARGS_MAX; i++, n++) {
		char *end;
		unsigned long pcr = strtoul(argv[i], &end, 10);

		memset(&ev[n], 0, sizeof(ev[n]));
		ev[n].pcr = (uint32_t)pcr;
		ev[n].type = 0xd; /* EV_IPL */
		if (*end != ':' || pcr > 9 || smig_unhex(end + 1, ev[n].sha256, 32) < 0) {
			fprintf(stderr, "smig-mklog: %s: want PCR:SHA256 (PCR 0-9)\n", argv[i]);
			return 2;
		}
	}
	if (smig_evlog_build(ev, n, &out, &len) < 0 || write_out(argv[2], out, len)) {
		free(out);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		smig_hex(ev[i].sha256, 32, hex);
		printf("%u:sha256=%s\n", ev[i].pcr, hex);
	}
	free(out);
	return 0;
}

static int ima(int argc, char **argv)
{
	const char *paths[ARGS_MAX];
	uint8_t digests[ARGS_MAX][32], agg[32], *out = NULL;
	struct smig_ima l;
	size_t n = 0, len;
	char hex[65], err[256];

	if (argc < 4 || smig_unhex(argv[3], agg, 32) < 0) {
		fprintf(stderr, "smig-mklog: ima OUT AGGREGATE(64 hex) PATH=SHA256 ...\n");
		return 2;
	}
	for (int i = 4; i < argc && n < ARGS_MAX; i++, n++) {
		char *eq = strchr(argv[i], '=');

		if (eq == NULL || argv[i][0] != '/' || smig_unhex(eq + 1, digests[n], 32) < 0) {
			fprintf(stderr, "smig-mklog: %s: want /PATH=SHA256\n", argv[i]);
			return 2;
		}
		*eq = '\0';
		paths[n] = argv[i];
	}
	if (smig_ima_build(paths, (const uint8_t(*)[32])digests, n, agg, &out, &len) < 0 ||
	    write_out(argv[2], out, len)) {
		free(out);
		return 1;
	}
	if (smig_ima_parse(out, len, false, &l, err, sizeof(err)) < 0) {
		fprintf(stderr, "smig-mklog: %s\n", err);
		free(out);
		return 1;
	}
	for (size_t i = 0; i < l.n; i++) {
		smig_hex(l.e[i].extend, 32, hex);
		printf("%u:sha256=%s\n", l.e[i].pcr, hex);
	}
	smig_ima_free(&l);
	free(out);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "boot") == 0)
		return boot(argc, argv);
	if (argc >= 4 && strcmp(argv[1], "ima") == 0)
		return ima(argc, argv);
	fprintf(stderr, "usage: smig-mklog boot OUT PCR:SHA256 ... | ima OUT AGGREGATE "
			"PATH=SHA256 ...\n");
	return 2;
}
