/*
 * confine.h - what keeps a VM's processes (its QEMU and its swtpm) in their
 * place: a uid and gid of their own, no new privileges, a cgroup with a
 * memory limit and a CPU weight, and a Landlock ruleset that leaves them
 * the system's programs and libraries to read, a few devices, the files
 * they were given, and their own directory. QEMU adds its seccomp sandbox
 * (-sandbox), swtpm its own (on by default).
 *
 * Cgroups: the unified hierarchy (v2) when it has the memory controller,
 * else the legacy memory and cpu hierarchies (v1), each under smigd's own
 * cgroup: smig.HOST.XXXXXXXX/vm-NAME (XXXXXXXX from the state directory).
 * docs/configuration.md, "Confinement".
 */
#ifndef SMIGD_CONFINE_H
#define SMIGD_CONFINE_H

#include "config.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum confine_cg {
	CONFINE_CG_NONE, /* no cgroup controller for memory (or turned off) */
	CONFINE_CG_V1,   /* the legacy memory and cpu hierarchies */
	CONFINE_CG_V2,   /* the unified hierarchy with memory and cpu */
};

/* What this host offers for confinement, learned once at start. */
struct confine_host {
	enum confine_cg cg;
	char cg_mem[PATH_MAX]; /* v1: memory's smig.HOST.X; v2: smig.HOST.X */
	char cg_cpu[PATH_MAX]; /* v1: cpu's smig.HOST.X; v2: empty */
	int landlock_abi;      /* 0: no Landlock */
	gid_t kvm_gid;         /* the group of /dev/kvm, (gid_t)-1 without one */
	uint32_t overhead_mib;
	/* QEMU and swtpm when the config names them by a path outside the system's directories */
	char exec_files[2][PATH_MAX];
};

#define CONFINE_FILES_MAX 4
#define CONFINE_DIRS_MAX 2

/* One process to confine (between fork and exec). */
struct confine_proc {
	uid_t uid; /* also its gid */
	const char *cgroup; /* the leaf, e.g. "vm-web1"; NULL: none */
	int rw_dirs[CONFINE_DIRS_MAX]; /* directories it may change (descriptors) */
	size_t nrw;
	int ro_files[CONFINE_FILES_MAX]; /* files it may open for reading (descriptors) */
	size_t nro;
};

/* Learns what this host has; err says what is missing when it fails. */
int confine_host_init(struct confine_host *c, const struct smig_config *cfg, char *err,
		      size_t errlen);
/* "cgroup v1 (memory, cpu)", "cgroup v2", "none" for the log and status. */
const char *confine_cg_name(enum confine_cg cg);

/*
 * Makes (or refreshes) cgroup name with a memory limit of mem_mib plus the
 * host's overhead and a CPU weight for vcpus. Nothing to do without cgroups.
 */
int confine_cgroup_make(const struct confine_host *c, const char *name, uint64_t mem_mib,
			unsigned vcpus, char *err, size_t errlen);
/* Removes cgroup name once nothing runs in it (quietly when it cannot yet). */
void confine_cgroup_drop(const struct confine_host *c, const char *name);
/* The memory limit of cgroup name in bytes (0: none or unreadable). */
uint64_t confine_cgroup_limit(const struct confine_host *c, const char *name);
/* How often the kernel's OOM killer has killed a process of cgroup name (0: never, unknown). */
uint64_t confine_cgroup_oom_kills(const struct confine_host *c, const char *name);

/*
 * In the child between fork and exec: joins p's cgroup, takes p's uid and
 * gid (with the kvm group, nothing else), sets no_new_privs and restricts
 * itself with Landlock. Writes why to stderr and returns < 0 on failure;
 * the child must then not exec.
 */
int confine_enter(const struct confine_host *c, const struct confine_proc *p);

#endif
