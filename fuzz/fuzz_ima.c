/*
 * fuzz_ima.c - the IMA list parsers (binary and ASCII) and the allowlist
 * parser on arbitrary bytes, each input through all three. A list that
 * parses must replay the same in two steps as in one; an allowlist that
 * parses is held against a list of its own making.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ima.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void list(const uint8_t *data, size_t size, bool ascii)
{
	static const uint8_t zero[32];
	struct smig_ima l;
	uint8_t whole[32], mid[32], two[32];
	char err[256];

	if (smig_ima_parse(data, size, ascii, &l, err, sizeof(err)) < 0)
		return;
	smig_ima_replay(&l, 0, l.n, zero, whole);
	smig_ima_replay(&l, 0, l.n / 2, zero, mid);
	smig_ima_replay(&l, l.n / 2, l.n, mid, two);
	if (memcmp(whole, two, sizeof(whole)) != 0)
		abort();
	for (size_t i = 0; i < l.n; i++)
		if (strlen(l.e[i].path) == 0 || l.e[i].digest_len > SMIG_IMA_DIGEST_MAX)
			abort();
	smig_ima_free(&l);
}

static void allowlist(const uint8_t *data, size_t size)
{
	static const char *const paths[] = { "/usr/bin/true", "/tmp/x", "/usr/sbin/smigd" };
	static const uint8_t digests[3][32] = { { 0xe3, 0xb0 }, { 1 }, { 2 } };
	struct smig_allowlist al;
	struct smig_ima l;
	uint8_t *buf;
	size_t len;
	char err[256];
	int rc;

	if (smig_allowlist_parse("fuzz", (const char *)data, size, &al, err, sizeof(err)) < 0)
		return;
	if (smig_ima_build(paths, digests, 3, digests[0], &buf, &len) != 0 ||
	    smig_ima_parse(buf, len, false, &l, err, sizeof(err)) != 0)
		abort();
	rc = smig_allowlist_check(&al, &l, 0, err, sizeof(err));
	if (rc != 0 && rc != SMIG_EAUTH)
		abort();
	smig_ima_free(&l);
	free(buf);
	smig_allowlist_free(&al);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	list(data, size, false);
	list(data, size, true);
	allowlist(data, size);
	return 0;
}
