/*
 * vmspec.h - VM specifications: strict JSON in, validated struct out, and
 * the QEMU command line smigd builds from it.
 *
 * A spec is the only description of a VM that crosses between hosts; a
 * peer never sends QEMU arguments. Every string that reaches QEMU's
 * command line is checked here (absolute paths without commas or control
 * characters, printable kernel command lines, names from a fixed alphabet)
 * so that no value can smuggle in an option. docs/vmspec.md is the reference.
 */
#ifndef SMIG_VMSPEC_H
#define SMIG_VMSPEC_H

#include "label.h"
#include "msg.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMIG_VM_PATH_MAX 1024
#define SMIG_VM_CMDLINE_MAX 1024
#define SMIG_VM_LABELS_MAX 16
#define SMIG_VM_REQUIRES_MAX 8
#define SMIG_VM_DISKS_MAX 4
#define SMIG_VM_SPEC_MAX ((size_t)16 * 1024) /* serialized size limit */

enum smig_trust {
	SMIG_TRUST_NONE = 0,      /* no requirement */
	SMIG_TRUST_ATTESTED = 1,  /* evidence verified */
	SMIG_TRUST_TRUSTED = 2,   /* evidence matches a golden set */
};

struct smig_vm_disk {
	char path[SMIG_VM_PATH_MAX];
	bool qcow2;
	bool readonly;
};

struct smig_vmspec {
	char name[SMIG_NAME_MAX + 1];
	uint32_t memory_mib;
	uint32_t vcpus;
	char kernel[SMIG_VM_PATH_MAX]; /* empty when booting firmware */
	char initrd[SMIG_VM_PATH_MAX];
	char cmdline[SMIG_VM_CMDLINE_MAX + 1];
	char firmware[SMIG_VM_PATH_MAX];
	struct smig_vm_disk disks[SMIG_VM_DISKS_MAX];
	size_t ndisks;
	bool vtpm;
	enum smig_trust min_trust;
	char requires[SMIG_VM_REQUIRES_MAX][SMIG_NAME_MAX + 1];
	size_t nrequires;
	struct smig_label labels[SMIG_VM_LABELS_MAX];
	size_t nlabels;
};

/* Parses and validates a spec; name is used in messages (file:line:col). */
int smig_vmspec_parse(const char *name, const char *text, size_t len,
		      struct smig_vmspec *spec, char *err, size_t errlen);
int smig_vmspec_load(const char *path, struct smig_vmspec *spec, char *err, size_t errlen);
/* Serializes spec as compact JSON (malloc'd, NUL-terminated) in *out. */
int smig_vmspec_dump(const struct smig_vmspec *spec, char **out);

const char *smig_trust_name(enum smig_trust t);
int smig_trust_parse(const char *s, enum smig_trust *out);

/* Where a VM's host-side endpoints live. */
struct smig_vm_paths {
	const char *qmp;    /* QMP unix socket */
	const char *serial; /* serial console unix socket */
	const char *tpm;    /* swtpm control socket, when spec->vtpm */
	const char *pidfile;
};

struct smig_argv {
	char **v;
	size_t n;
	size_t cap;
};

/*
 * Builds QEMU's argv for spec. accel is "kvm:tcg", "kvm" or "tcg";
 * incoming adds -incoming defer. The VM always starts paused (-S).
 */
int smig_qemu_argv(const struct smig_vmspec *spec, const struct smig_vm_paths *paths,
		   const char *qemu_binary, const char *accel, bool incoming,
		   struct smig_argv *argv);
void smig_argv_clear(struct smig_argv *argv);

#endif
