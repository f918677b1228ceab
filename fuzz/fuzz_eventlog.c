/*
 * fuzz_eventlog.c - the measured-boot event log parser on arbitrary
 * bytes; a log that parses must agree with its own replay, and rebuilt
 * from its events it must parse to the same events (and, without a
 * startup locality the builder cannot write, replay the same).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_events(const struct smig_evlog *a, const struct smig_evlog *b)
{
	if (a->n != b->n)
		abort();
	for (size_t i = 0; i < a->n; i++)
		if (a->ev[i].pcr != b->ev[i].pcr || a->ev[i].type != b->ev[i].type ||
		    memcmp(a->ev[i].sha256, b->ev[i].sha256, 32) != 0)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smig_evlog l, back;
	uint8_t pcr[SMIG_EVLOG_PCRS][32], again[SMIG_EVLOG_PCRS][32];
	unsigned idx[SMIG_EVLOG_PCRS];
	uint32_t touched;
	uint8_t *buf;
	size_t len;
	char err[256];

	if (smig_evlog_parse(data, size, &l, err, sizeof(err)) < 0)
		return 0;
	smig_evlog_replay(&l, pcr, &touched);
	for (unsigned i = 0; i < SMIG_EVLOG_PCRS; i++)
		idx[i] = i;
	if (smig_evlog_check(&l, idx, (const uint8_t(*)[32])pcr, SMIG_EVLOG_PCRS, err,
			     sizeof(err)) != 0)
		abort();
	if (smig_evlog_build(l.ev, l.n, &buf, &len) != 0)
		abort();
	if (smig_evlog_parse(buf, len, &back, err, sizeof(err)) != 0)
		abort();
	same_events(&l, &back);
	smig_evlog_replay(&back, again, NULL);
	if (l.locality == 0 && memcmp(pcr, again, sizeof(pcr)) != 0)
		abort();
	smig_evlog_free(&back);
	free(buf);
	smig_evlog_free(&l);
	return 0;
}
