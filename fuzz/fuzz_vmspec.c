/*
 * fuzz_vmspec.c - the VM spec parser, its serializer, the check against a
 * host's catalogue and the QEMU command line builder on arbitrary text:
 * whatever parses must round-trip (and differ from its round trip in no
 * key), and no argument may carry a volume name.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmcheck.h"
#include "vmspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct smig_vmspec *s)
{
	static struct smig_catalog cat;
	static struct smig_qemu_caps caps;
	struct smig_problems p = { .n = 0 };

	if (cat.npools == 0) {
		smig_catalog_defaults(&cat);
		cat.npools = 2;
		strcpy(cat.pools[0].name, "images");
		strcpy(cat.pools[0].path, "/nonexistent/images");
		strcpy(cat.pools[1].name, "shared");
		strcpy(cat.pools[1].path, "/nonexistent/shared");
		cat.pools[1].shared = true;
		cat.nnetworks = 1;
		strcpy(cat.networks[0].name, "lan");
		strcpy(cat.networks[0].bridge, "br0");
		cat.nfirmware = 1;
		strcpy(cat.firmware[0].name, "ovmf");
		(void)smig_qemu_caps_parse("pc-i440fx-7.2  PC (default)\nq35  Q35 (alias of "
					   "pc-q35-7.2)\npc-q35-7.2  Q35\n",
					   "x86 qemu64  QEMU\n", &caps);
	}
	(void)smig_vmspec_check(s, &cat, &caps, SMIG_CHECK_DEFINE, &p);
	(void)smig_vmspec_check(s, &cat, &caps, SMIG_CHECK_INCOMING, &p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smig_vm_fds f = { .kernel = 10, .initrd = 11, .fw_code = 12, .fw_vars = 13,
				 .disk_rw = { 14, 15, 16, 17 }, .disk_ro = { 18, 19, 20, 21 },
				 .tap = { 22, 23, 24, 25 }, .qmp = 26, .serial = 27, .agent = 28 };
	struct smig_vm_paths p = { .tpm = "/t", .pidfile = "/p", .fds = &f };
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
		/* what parsed back is the same spec: a redefinition with it changes nothing */
		if (smig_vmspec_diff(&s, &s2, 0, err, sizeof(err)) != 0 || err[0] != '\0')
			abort();
	}
	check(&s);
	if (s.machine[0] == '\0')
		strcpy(s.machine, "pc-i440fx-7.2");
	if (s.cpu[0] == '\0')
		strcpy(s.cpu, "qemu64");
	if (smig_qemu_argv(&s, &p, "qemu", "tcg", true, &a) == 0) {
		/* QEMU gets descriptors: a volume name never reaches its command line */
		for (size_t i = 0; i < a.n; i++)
			for (size_t k = 0; k < s.ndisks; k++)
				if (strlen(s.disks[k].vol.volume) > 3 &&
				    strstr(a.v[i], s.disks[k].vol.volume) && strcmp(a.v[i], "qemu") != 0 &&
				    strstr(a.v[i], "disk") == NULL && strstr(a.v[i], "fdset") == NULL)
					abort();
		smig_argv_clear(&a);
	}
	return 0;
}
