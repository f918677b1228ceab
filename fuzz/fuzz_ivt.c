/*
 * fuzz_ivt.c - the integrity validation table parser on arbitrary text;
 * whatever parses must dump and parse again to the same table.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ivt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smig_ivt ivt, back;
	char err[256];
	char *text, *text2;

	if (smig_ivt_parse("fuzz", (const char *)data, size, &ivt, err, sizeof(err)) < 0)
		return 0;
	if (smig_ivt_dump(&ivt, &text) == 0) {
		if (smig_ivt_parse("dump", text, strlen(text), &back, err, sizeof(err)) < 0 ||
		    smig_ivt_dump(&back, &text2) < 0 || strcmp(text, text2) != 0)
			abort();
		free(text2);
		free(text);
		smig_ivt_clear(&back);
	}
	smig_ivt_clear(&ivt);
	return 0;
}
