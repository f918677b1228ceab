/*
 * fuzz_qga.c - finding the guest agent's sync answer in arbitrary guest bytes.
 */
#include <stddef.h>
#include <stdint.h>

#include "qga.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t drop = 0;
	uint32_t id = 1;

	if (size >= 4) {
		id = ((uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 |
		      data[3]) & 0x7fffffffu;
		id = id ? id : 1;
	}
	while (size > 0) {
		int found = smig_qga_sync_answer(data, size, id, &drop);

		if (drop > size)
			__builtin_trap();
		if (found == 0 && drop == 0)
			break;
		data += drop;
		size -= drop;
	}
	return 0;
}
