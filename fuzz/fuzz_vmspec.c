/*
 * fuzz_vmspec.c - the VM spec parser, its serializer and the QEMU command
 * line builder on arbitrary text: whatever parses must round-trip.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smig_vm_paths p = { .qmp = "/q", .serial = "/s", .tpm = "/t", .pidfile = "/p" };
	struct smig_vmspec s;
	struct smig_vmspec s2;
	struct smig_argv a;
	char err[512];
	char *dump;
	char *dump2;

	if (smig_vmspec_parse("fuzz", (const char *)data, size, &s, err, sizeof(err)) != 0)
		return 0;
	if (smig_vmspec_dump(&s, &dump) == 0) {
		if (smig_vmspec_parse("dump", dump, strlen(dump), &s2, err, sizeof(err)) != 0 ||
		    smig_vmspec_dump(&s2, &dump2) != 0)
			abort();
		if (strcmp(dump, dump2) != 0)
			abort();
		free(dump);
		free(dump2);
	}
	if (smig_qemu_argv(&s, &p, "qemu", "tcg", true, &a) == 0)
		smig_argv_clear(&a);
	return 0;
}
