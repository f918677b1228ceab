/*
 * qemucaps.h - what this host's QEMU can provide: its machine types (with
 * aliases resolved, so a spec pins "pc-q35-7.2", never "q35") and its CPU
 * models. A destination refuses a spec whose machine type or CPU model its
 * QEMU lacks; define pins the machine type to a versioned name.
 */
#ifndef SMIG_QEMUCAPS_H
#define SMIG_QEMUCAPS_H

#include "vmspec.h"

#include <stddef.h>

#define SMIG_CAPS_MACHINES_MAX 160
#define SMIG_CAPS_CPUS_MAX 320

struct smig_qemu_caps {
	struct {
		char name[SMIG_VM_MODEL_MAX];
		char alias_of[SMIG_VM_MODEL_MAX]; /* empty: not an alias */
	} machines[SMIG_CAPS_MACHINES_MAX];
	size_t nmachines;
	char default_machine[SMIG_VM_MODEL_MAX];
	char cpus[SMIG_CAPS_CPUS_MAX][SMIG_VM_MODEL_MAX];
	size_t ncpus;
};

/* Runs "QEMU -machine help" and "QEMU -cpu help" (no shell) and parses both. */
int smig_qemu_caps_probe(const char *qemu_binary, struct smig_qemu_caps *caps, char *err,
			 size_t errlen);
/* Parses the two outputs (for tests and the fuzzer). */
int smig_qemu_caps_parse(const char *machine_help, const char *cpu_help,
			 struct smig_qemu_caps *caps);
/* The versioned machine type name stands for (itself when versioned), or NULL. */
const char *smig_qemu_caps_machine(const struct smig_qemu_caps *caps, const char *name);
bool smig_qemu_caps_cpu(const struct smig_qemu_caps *caps, const char *name);

#endif
