/*
 * fuzz_qmp.c - the QMP line parser on arbitrary bytes.
 */
#include <stddef.h>
#include <stdint.h>

#include "qmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smig_qmp_msg m;

	if (smig_qmp_parse((const char *)data, size, &m) == 0)
		smig_qmp_msg_clear(&m);
	return 0;
}
