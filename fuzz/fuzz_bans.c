/*
 * fuzz_bans.c - the IDS ban list loader (STATE_DIR/bans.json) on arbitrary
 * text; what it restores must dump and load again to the same bans.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const int64_t now = 1795000000000LL;
	struct smig_ids *a, *b;
	const struct smig_ids_rule *rules;
	char *t1, *t2;
	size_t n;
	int got;

	rules = smig_ids_default_rules(&n);
	if (smig_ids_new(rules, n, NULL, &a) < 0)
		return 0;
	got = smig_ids_bans_load(a, (const char *)data, size, now);
	if (got >= 0 && smig_ids_bans_dump(a, now, &t1) == 0) {
		if (smig_ids_new(rules, n, NULL, &b) < 0)
			abort();
		if (smig_ids_bans_load(b, t1, strlen(t1), now) < 0 ||
		    smig_ids_bans_dump(b, now, &t2) < 0 || strcmp(t1, t2) != 0)
			abort();
		free(t2);
		smig_ids_free(b);
		free(t1);
	}
	smig_ids_free(a);
	return 0;
}
