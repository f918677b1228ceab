/*
 * confine.c - a VM's processes in their place (confine.h): cgroups found
 * through /proc/self/mountinfo and /proc/self/cgroup, limits written into
 * them, and in the child before exec the uid, no_new_privs and Landlock.
 *
 * Landlock is used through its system calls (libc has no wrappers); the
 * rights come from the ABI the kernel reports, so a newer kernel never
 * hands out a right this code did not mean to leave.
 */
#include "warden/confine.h"
#include "common/landlock.h"
#include "error.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LL_EXEC (LL_READ | LANDLOCK_ACCESS_FS_EXECUTE)
/* what a process may do in its own directory: everything but run programs and devices */
#define LL_OWN_DIR                                                                        \
	(LL_READ | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |        \
	 LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR |                   \
	 LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK | LL_FS_TRUNCATE)

/* What every confined process may still reach, beyond what it was given. */
static const struct {
	const char *path;
	uint64_t access;
} system_paths[] = {
	{ "/usr", LL_EXEC },
	{ "/lib", LL_EXEC },
	{ "/lib64", LL_EXEC },
	{ "/lib32", LL_EXEC },
	{ "/bin", LL_EXEC },
	{ "/sbin", LL_EXEC },
	{ "/etc/ld.so.cache", LANDLOCK_ACCESS_FS_READ_FILE },
	{ "/etc/localtime", LANDLOCK_ACCESS_FS_READ_FILE },
	{ "/proc/self", LL_READ },
	{ "/sys/devices/system", LL_READ },
	{ "/sys/bus", LL_READ },
	{ "/dev/null", LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE },
	{ "/dev/zero", LANDLOCK_ACCESS_FS_READ_FILE },
	{ "/dev/urandom", LANDLOCK_ACCESS_FS_READ_FILE },
	{ "/dev/random", LANDLOCK_ACCESS_FS_READ_FILE },
	{ "/dev/kvm", LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | LL_FS_IOCTL_DEV },
};

const char *confine_cg_name(enum confine_cg cg)
{
	switch (cg) {
	case CONFINE_CG_V1: return "cgroup v1 (memory, cpu)";
	case CONFINE_CG_V2: return "cgroup v2";
	default: return "none";
	}
}

/* True when the comma-separated list has item. */
static bool list_has(const char *list, const char *item)
{
	size_t n = strlen(item);

	for (const char *p = list; p && *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == n && strncmp(p, item, n) == 0)
			return true;
		p = e ? e + 1 : NULL;
	}
	return false;
}

/*
 * The mount of a cgroup file system: fstype "cgroup" with controller among
 * its super options, or "cgroup2" when controller is NULL. point is where
 * it is mounted, root which cgroup its top is.
 */
static bool cg_mount(const char *controller, char point[PATH_MAX], char root[PATH_MAX])
{
	char line[4096];
	bool found = false;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	while (f && !found && fgets(line, sizeof(line), f)) {
		char r[PATH_MAX], mp[PATH_MAX], fstype[32], super[1024];
		const char *dash = strstr(line, " - ");

		if (dash == NULL || sscanf(line, "%*s %*s %*s %4095s %4095s", r, mp) != 2 ||
		    sscanf(dash + 3, "%31s %*s %1023s", fstype, super) != 2)
			continue;
		if (controller ? strcmp(fstype, "cgroup") == 0 && list_has(super, controller)
			       : strcmp(fstype, "cgroup2") == 0) {
			snprintf(point, PATH_MAX, "%s", mp);
			snprintf(root, PATH_MAX, "%s", r);
			found = true;
		}
	}
	if (f)
		fclose(f);
	return found;
}

/* smigd's own cgroup in the hierarchy of controller (NULL: the unified one). */
static bool cg_own(const char *controller, char out[PATH_MAX])
{
	char line[4096];
	bool found = false;
	FILE *f = fopen("/proc/self/cgroup", "re");

	while (f && !found && fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		if (c2 == NULL)
			continue;
		*c2 = '\0';
		c2[1 + strcspn(c2 + 1, "\n")] = '\0';
		if (controller ? list_has(c1 + 1, controller) : (c1[1] == '\0' && line[0] == '0')) {
			snprintf(out, PATH_MAX, "%s", c2 + 1);
			found = true;
		}
	}
	if (f)
		fclose(f);
	return found;
}

/* The directory of smigd's own cgroup for controller (NULL: unified). */
static bool cg_own_dir(const char *controller, char out[PATH_MAX])
{
	char point[PATH_MAX], root[PATH_MAX], own[PATH_MAX];
	const char *rel;

	if (!cg_mount(controller, point, root) || !cg_own(controller, own))
		return false;
	rel = own;
	/* a mount of a sub-cgroup (a container's view): paths are below its root */
	if (strcmp(root, "/") != 0 && strncmp(own, root, strlen(root)) == 0)
		rel = own + strlen(root);
	return snprintf(out, PATH_MAX, "%s%s", point, strcmp(rel, "/") == 0 ? "" : rel) <
	       PATH_MAX;
}

static int write_text(const char *dir, const char *file, const char *text)
{
	char path[PATH_MAX];
	int fd, rc = 0;

	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
		return SMIG_EINVAL;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return SMIG_EIO;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		rc = SMIG_EIO;
	if (close(fd) < 0)
		rc = SMIG_EIO;
	return rc;
}

static bool file_has_word(const char *dir, const char *file, const char *word)
{
	char path[PATH_MAX], text[1024] = "", *save = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "re");
	if (f == NULL)
		return false;
	if (fgets(text, sizeof(text), f) == NULL)
		text[0] = '\0';
	fclose(f);
	for (char *w = strtok_r(text, " \n", &save); w; w = strtok_r(NULL, " \n", &save))
		if (strcmp(w, word) == 0)
			return true;
	return false;
}

static int mkdir_ok(const char *dir)
{
	return mkdir(dir, 0755) == 0 || errno == EEXIST ? 0 : SMIG_EIO;
}

/*
 * The unified hierarchy: controllers reach a child only through its
 * parent's cgroup.subtree_control, which a cgroup with processes of its
 * own may not set. smigd then moves itself into a leaf, "daemon", first
 * (under systemd this is what Delegate=yes allows).
 */
static int cg_v2_init(struct confine_host *c, const char *own, const char *base, char *err,
		      size_t errlen)
{
	char leaf[PATH_MAX], pid[32];

	if (write_text(own, "cgroup.subtree_control", "+memory") < 0 && errno == EBUSY) {
		snprintf(leaf, sizeof(leaf), "%s/daemon", own);
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		if (mkdir_ok(leaf) < 0 || write_text(leaf, "cgroup.procs", pid) < 0 ||
		    write_text(own, "cgroup.subtree_control", "+memory") < 0) {
			snprintf(err, errlen, "cgroup v2: cannot enable the memory controller below "
				 "%s: %s (with systemd: Delegate=yes)", own, strerror(errno));
			return SMIG_EIO;
		}
	}
	(void)write_text(own, "cgroup.subtree_control", "+cpu");
	snprintf(c->cg_mem, sizeof(c->cg_mem), "%s/%s", own, base);
	if (mkdir_ok(c->cg_mem) < 0 || write_text(c->cg_mem, "cgroup.subtree_control", "+memory") < 0) {
		snprintf(err, errlen, "cgroup v2: cannot set up %s: %s", c->cg_mem, strerror(errno));
		return SMIG_EIO;
	}
	(void)write_text(c->cg_mem, "cgroup.subtree_control", "+cpu");
	c->cg_cpu[0] = '\0';
	c->cg = CONFINE_CG_V2;
	return 0;
}

static int cg_v1_init(struct confine_host *c, const char *base, char *err, size_t errlen)
{
	char mem[PATH_MAX], cpu[PATH_MAX];

	if (!cg_own_dir("memory", mem) || !cg_own_dir("cpu", cpu)) {
		snprintf(err, errlen, "no cgroup hierarchy has the memory and cpu controllers (set "
			 "confinement.cgroups to false to run VMs without limits)");
		return SMIG_ENOENT;
	}
	if (snprintf(c->cg_mem, sizeof(c->cg_mem), "%s/%s", mem, base) >= PATH_MAX ||
	    snprintf(c->cg_cpu, sizeof(c->cg_cpu), "%s/%s", cpu, base) >= PATH_MAX)
		return SMIG_EINVAL;
	if (mkdir_ok(c->cg_mem) < 0 || mkdir_ok(c->cg_cpu) < 0) {
		snprintf(err, errlen, "cgroup v1: cannot create %s or %s: %s", c->cg_mem, c->cg_cpu,
			 strerror(errno));
		return SMIG_EIO;
	}
	c->cg = CONFINE_CG_V1;
	return 0;
}

/*
 * The name of this daemon's cgroup: smig.HOST.XXXXXXXX, the hash of its
 * state directory, so two daemons on one machine (test clusters) never
 * share their VMs' cgroups.
 */
static void base_name(const struct smig_config *cfg, char *out, size_t outlen)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (const char *p = cfg->state_dir; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	snprintf(out, outlen, "smig.%s.%08x", cfg->host, h);
}

int confine_host_init(struct confine_host *c, const struct smig_config *cfg, char *err,
		      size_t errlen)
{
	char own[PATH_MAX], base[SMIG_NAME_MAX + 16];
	struct stat st;

	memset(c, 0, sizeof(*c));
	c->overhead_mib = cfg->vm_memory_overhead_mib;
	/* a QEMU or swtpm built elsewhere (/opt/qemu/bin/...): that file may run too */
	if (strchr(cfg->qemu_binary, '/'))
		snprintf(c->exec_files[0], PATH_MAX, "%s", cfg->qemu_binary);
	if (strchr(cfg->swtpm_binary, '/'))
		snprintf(c->exec_files[1], PATH_MAX, "%s", cfg->swtpm_binary);
	c->kvm_gid = stat("/dev/kvm", &st) == 0 ? st.st_gid : (gid_t)-1;
	c->landlock_abi = ll_abi();
	if (!cfg->cgroups)
		return 0;
	base_name(cfg, base, sizeof(base));
	if (cg_own_dir(NULL, own) && file_has_word(own, "cgroup.controllers", "memory"))
		return cg_v2_init(c, own, base, err, errlen);
	return cg_v1_init(c, base, err, errlen);
}

static int leaf(const char *base, const char *name, char out[PATH_MAX])
{
	SMIG_ENSURE(name && name[0] && strchr(name, '/') == NULL && name[0] != '.', SMIG_EINVAL);
	SMIG_ENSURE(snprintf(out, PATH_MAX, "%s/%s", base, name) < PATH_MAX, SMIG_EINVAL);
	return 0;
}

int confine_cgroup_make(const struct confine_host *c, const char *name, uint64_t mem_mib,
			unsigned vcpus, char *err, size_t errlen)
{
	char dir[PATH_MAX], v[32];
	uint64_t bytes = (mem_mib + c->overhead_mib) << 20;

	if (c->cg == CONFINE_CG_NONE)
		return 0;
	SMIG_GUARD(leaf(c->cg_mem, name, dir));
	snprintf(v, sizeof(v), "%llu", (unsigned long long)bytes);
	/*
	 * v1: smigd's own cgroups again first, as whoever tidies empty cgroups
	 * may have taken them (v2's holds smigd itself, so it is never empty)
	 */
	if ((c->cg == CONFINE_CG_V1 && (mkdir_ok(c->cg_mem) < 0 || mkdir_ok(c->cg_cpu) < 0)) ||
	    mkdir_ok(dir) < 0 ||
	    write_text(dir, c->cg == CONFINE_CG_V2 ? "memory.max" : "memory.limit_in_bytes", v) < 0) {
		snprintf(err, errlen, "cannot limit the memory of cgroup %s: %s", dir, strerror(errno));
		return SMIG_EIO;
	}
	if (c->cg == CONFINE_CG_V2) {
		snprintf(v, sizeof(v), "%u", vcpus * 100 > 10000 ? 10000 : vcpus * 100);
		(void)write_text(dir, "cpu.weight", v); /* only where the cpu controller is on */
		return 0;
	}
	SMIG_GUARD(leaf(c->cg_cpu, name, dir));
	snprintf(v, sizeof(v), "%u", vcpus * 1024 > 262144 ? 262144 : vcpus * 1024);
	if (mkdir_ok(dir) < 0 || write_text(dir, "cpu.shares", v) < 0) {
		snprintf(err, errlen, "cannot weigh the CPU of cgroup %s: %s", dir, strerror(errno));
		return SMIG_EIO;
	}
	return 0;
}

void confine_cgroup_drop(const struct confine_host *c, const char *name)
{
	char dir[PATH_MAX];

	if (c->cg == CONFINE_CG_NONE)
		return;
	if (leaf(c->cg_mem, name, dir) == 0)
		(void)rmdir(dir);
	if (c->cg == CONFINE_CG_V1 && leaf(c->cg_cpu, name, dir) == 0)
		(void)rmdir(dir);
}

uint64_t confine_cgroup_limit(const struct confine_host *c, const char *name)
{
	char dir[PATH_MAX], path[PATH_MAX], text[64] = "";
	FILE *f;

	if (c->cg == CONFINE_CG_NONE || leaf(c->cg_mem, name, dir) < 0)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", dir,
		 c->cg == CONFINE_CG_V2 ? "memory.max" : "memory.limit_in_bytes");
	f = fopen(path, "re");
	if (f == NULL)
		return 0;
	if (fgets(text, sizeof(text), f) == NULL)
		text[0] = '\0';
	fclose(f);
	return strtoull(text, NULL, 10);
}

uint64_t confine_cgroup_oom_kills(const struct confine_host *c, const char *name)
{
	char dir[PATH_MAX], path[PATH_MAX], line[128];
	unsigned long long n = 0;
	FILE *f;

	if (c->cg == CONFINE_CG_NONE || leaf(c->cg_mem, name, dir) < 0)
		return 0;
	/* v2: memory.events; v1 (kernel 4.13 on): memory.oom_control; both say "oom_kill N" */
	snprintf(path, sizeof(path), "%s/%s", dir,
		 c->cg == CONFINE_CG_V2 ? "memory.events" : "memory.oom_control");
	f = fopen(path, "re");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "oom_kill ", 9) == 0) {
			n = strtoull(line + 9, NULL, 10);
			break;
		}
	fclose(f);
	return n;
}

/* --- in the child, between fork and exec --- */

static int cg_join(const struct confine_host *c, const char *name)
{
	char dir[PATH_MAX], pid[32];

	if (c->cg == CONFINE_CG_NONE || name == NULL)
		return 0;
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	SMIG_GUARD(leaf(c->cg_mem, name, dir));
	SMIG_GUARD(write_text(dir, "cgroup.procs", pid));
	if (c->cg == CONFINE_CG_V1) {
		SMIG_GUARD(leaf(c->cg_cpu, name, dir));
		SMIG_GUARD(write_text(dir, "cgroup.procs", pid));
	}
	return 0;
}

/* The ruleset for p; -1 (and why on stderr) when it cannot be built. */
static int ll_ruleset(const struct confine_host *c, const struct confine_proc *p)
{
	struct ll_set ll;
	int rc = 0;

	/*
	 * No TCP at all (QEMU's and swtpm's sockets are handed to them), no
	 * signals or abstract sockets beyond their own processes.
	 */
	if (ll_open(&ll, c->landlock_abi, LL_NET_BIND_TCP | LL_NET_CONNECT_TCP,
		    LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL) < 0) {
		dprintf(2, "smigd: landlock_create_ruleset: %s\n", strerror(errno));
		return -1;
	}
	for (size_t i = 0; rc == 0 && i < ARRAY_LEN(system_paths); i++)
		rc = ll_allow_path(&ll, system_paths[i].path, system_paths[i].access);
	for (size_t i = 0; rc == 0 && i < ARRAY_LEN(c->exec_files); i++)
		if (c->exec_files[i][0])
			rc = ll_allow_path(&ll, c->exec_files[i],
					   LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_EXECUTE);
	for (size_t i = 0; rc == 0 && i < p->nrw; i++)
		rc = ll_allow_fd(&ll, p->rw_dirs[i], LL_OWN_DIR);
	for (size_t i = 0; rc == 0 && i < p->nro; i++)
		rc = ll_allow_fd(&ll, p->ro_files[i], LANDLOCK_ACCESS_FS_READ_FILE);
	if (rc < 0) {
		dprintf(2, "smigd: landlock_add_rule: %s\n", strerror(errno));
		close(ll.fd);
		return -1;
	}
	return ll.fd;
}

int confine_enter(const struct confine_host *c, const struct confine_proc *p)
{
	gid_t groups[1];
	size_t ngroups = 0;
	int rs = -1;

	if (p->uid == 0) {
		dprintf(2, "smigd: refusing to run a VM's process as root\n");
		return SMIG_EPERM;
	}
	if (cg_join(c, p->cgroup) < 0) {
		dprintf(2, "smigd: cannot join cgroup %s: %s\n", p->cgroup, strerror(errno));
		return SMIG_EIO;
	}
	if (c->landlock_abi > 0 && (rs = ll_ruleset(c, p)) < 0)
		return SMIG_EIO;
	if (c->kvm_gid != (gid_t)-1)
		groups[ngroups++] = c->kvm_gid;
	if (setgroups(ngroups, groups) < 0 || setresgid(p->uid, p->uid, p->uid) < 0 ||
	    setresuid(p->uid, p->uid, p->uid) < 0) {
		dprintf(2, "smigd: cannot become uid %u: %s\n", (unsigned)p->uid, strerror(errno));
		goto fail;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		dprintf(2, "smigd: no_new_privs: %s\n", strerror(errno));
		goto fail;
	}
	if (rs >= 0 && syscall(SYS_landlock_restrict_self, rs, 0) < 0) {
		dprintf(2, "smigd: landlock_restrict_self: %s\n", strerror(errno));
		goto fail;
	}
	if (rs >= 0)
		close(rs);
	return 0;
fail:
	if (rs >= 0)
		close(rs);
	return SMIG_EPERM;
}
