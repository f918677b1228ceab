/*
 * fuzz_config.c - the strict JSON loader, the config schema and the host
 * table on arbitrary text.
 */
#include <stddef.h>
#include <stdint.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smig_config cfg;
	struct smig_hosts hosts;
	char err[512];

	if (size > 65536)
		return 0;
	(void)smig_config_parse("fuzz.json", (const char *)data, size, &cfg, err, sizeof(err));
	if (smig_hosts_parse("fuzz.json", (const char *)data, size, &hosts, err, sizeof(err)) == 0)
		smig_hosts_clear(&hosts);
	return 0;
}
