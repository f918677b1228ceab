/*
 * vmcheck.h - what a host says about a spec, from its own catalogue and
 * its QEMU (catalog.h, qemucaps.h), without opening anything: every
 * unknown name and every mismatch, listed. `smig vm check`, `vm define`
 * and a destination's PREPARE all ask this; volume.h then opens.
 */
#ifndef SMIG_VMCHECK_H
#define SMIG_VMCHECK_H

#include "catalog.h"
#include "qemucaps.h"
#include "vmspec.h"

#define SMIG_PROBLEMS_MAX 16
#define SMIG_PROBLEM_LEN 256

struct smig_problems {
	char v[SMIG_PROBLEMS_MAX][SMIG_PROBLEM_LEN];
	size_t n;
	size_t dropped; /* problems past SMIG_PROBLEMS_MAX */
};

enum smig_check_mode {
	SMIG_CHECK_DEFINE,   /* a VM defined on this host */
	SMIG_CHECK_INCOMING, /* a VM a peer wants to move here: disks must be shared */
};

/* Appends each problem of s on this host to p; 0 when there is none. */
int smig_vmspec_check(const struct smig_vmspec *s, const struct smig_catalog *cat,
		      const struct smig_qemu_caps *caps, enum smig_check_mode mode,
		      struct smig_problems *p);
/*
 * Opens and closes every volume of s as a start would (vm_res.c keeps the
 * descriptors; this only proves they open): a missing volume, a symlink,
 * a qcow2 backing file are problems; *hostile when one looked like an
 * escape from its pool. A missing NVRAM volume is fine when its
 * firmware's template can be read: it is made from it at start.
 */
int smig_vmspec_probe(const struct smig_vmspec *s, const struct smig_catalog *cat,
		      struct smig_problems *p, bool *hostile);
/* The problems joined with "; " into out. */
void smig_problems_join(const struct smig_problems *p, char *out, size_t outlen);

#endif
