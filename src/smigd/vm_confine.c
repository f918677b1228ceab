/*
 * vm_confine.c - where each VM's processes may go (confine.h applies it):
 * the VM's uid on this host, picked from confinement.vm_uid_first/count
 * and kept in its directory, and the directories that uid owns.
 *
 * STATE_DIR/vms/NAME is root's, group the VM's (0710): its QEMU and swtpm
 * pass through it to run/ (sockets and pid file) and tpm/ (the vTPM
 * state), which the VM's uid owns (0700). Everything else in it (spec,
 * logs, smigd's sockets and records) stays root's.
 */
#include "vm_int.h"
#include "error.h"
#include "file.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void vm_cgroup_name(const struct vm *vm, char *out, size_t outlen)
{
	snprintf(out, outlen, "vm-%s", vm->spec.name);
}

void vm_cgroup_drop(const struct vm *vm)
{
	char cg[SMIG_NAME_MAX + 8];

	vm_cgroup_name(vm, cg, sizeof(cg));
	confine_cgroup_drop(&vm->d->confine, cg);
}

void vm_uid_load(struct vm *vm)
{
	char path[PATH_MAX], *text = NULL, *end = NULL, err[128];
	unsigned long v;
	size_t len;

	vm->uid = 0;
	vm_path(vm, "uid", path, sizeof(path));
	if (smig_file_read(path, 32, &text, &len, err, sizeof(err)) < 0)
		return;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno == 0 && end != text && (*end == '\n' || *end == '\0') && v > 0 &&
	    v >= vm->d->cfg.vm_uid_first && v - vm->d->cfg.vm_uid_first < vm->d->cfg.vm_uid_count)
		vm->uid = (uid_t)v;
	else
		smig_warn("event=vm_uid_invalid vm=%s path=%s action=reassigned", vm->spec.name,
			  path);
	free(text);
}

/* The lowest uid of the range no VM here holds and no account names. */
int vm_uid_assign(struct vm *vm)
{
	const struct smig_config *cfg = &vm->d->cfg;
	uint8_t *used;
	char path[PATH_MAX], line[32];
	int rc = SMIG_ECAPACITY;

	if (vm->uid != 0)
		return 0;
	used = calloc((cfg->vm_uid_count + 7) / 8, 1);
	SMIG_ENSURE(used != NULL, SMIG_ENOMEM);
	for (const struct vm *o = vm->d->vms; o; o = o->next)
		if (o->uid >= cfg->vm_uid_first && o->uid - cfg->vm_uid_first < cfg->vm_uid_count)
			used[(o->uid - cfg->vm_uid_first) / 8] |= (uint8_t)(1u << ((o->uid - cfg->vm_uid_first) % 8));
	for (uint32_t i = 0; i < cfg->vm_uid_count; i++) {
		if (used[i / 8] & (1u << (i % 8)) || getpwuid(cfg->vm_uid_first + i) != NULL)
			continue;
		vm->uid = cfg->vm_uid_first + i;
		rc = 0;
		break;
	}
	free(used);
	if (rc < 0) {
		smig_err("event=vm_uid_exhausted vm=%s first=%u count=%u", vm->spec.name,
			 cfg->vm_uid_first, cfg->vm_uid_count);
		return rc;
	}
	vm_path(vm, "uid", path, sizeof(path));
	snprintf(line, sizeof(line), "%u\n", (unsigned)vm->uid);
	SMIG_GUARD(smig_file_mkdirs(vm->dir, 0710));
	return smig_file_write_atomic(path, line, strlen(line), 0600);
}

/* Makes dir (a leaf of the VM's) owned by uid and gid with mode, whatever it was. */
static int own_dir(const struct vm *vm, const char *leaf, uid_t uid, gid_t gid, mode_t mode)
{
	char path[PATH_MAX];
	struct stat st;

	vm_path(vm, leaf, path, sizeof(path));
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return SMIG_EIO;
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return SMIG_EIO;
	if (chown(path, uid, gid) < 0 || chmod(path, mode) < 0)
		return SMIG_EIO;
	return 0;
}

/* Hands every file of the VM's tpm/ to its uid (a state from before the VM had one). */
static void own_tpm_state(const struct vm *vm)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *dp;
	int dfd;

	vm_path(vm, "tpm", path, sizeof(path));
	dp = opendir(path);
	if (dp == NULL)
		return;
	dfd = dirfd(dp);
	while ((e = readdir(dp)) != NULL)
		if (e->d_name[0] != '.' &&
		    fchownat(dfd, e->d_name, vm->uid, vm->uid, AT_SYMLINK_NOFOLLOW) < 0)
			smig_warn("event=vm_tpm_chown_failed vm=%s file=%s", vm->spec.name, e->d_name);
	closedir(dp);
}

int vm_dirs_prepare(struct vm *vm)
{
	char run[PATH_MAX];

	SMIG_GUARD(smig_file_mkdirs(vm->dir, 0710));
	SMIG_GUARD(own_dir(vm, ".", 0, vm->uid, 0710));
	/* a fresh run/: nothing a process of an earlier start left there is kept */
	vm_path(vm, "run", run, sizeof(run));
	(void)vm_rmtree(run);
	SMIG_GUARD(own_dir(vm, "run", vm->uid, vm->uid, 0700));
	if (!vm->spec.vtpm)
		return 0;
	SMIG_GUARD(own_dir(vm, "tpm", vm->uid, vm->uid, 0700));
	own_tpm_state(vm);
	return 0;
}

/*
 * A process smigd recorded as one of vm's: alive, and running as the VM's
 * uid (a VM from before confinement, uid 0: as root), so a stale or
 * reused pid never makes smigd adopt or kill a stranger.
 */
bool vm_pid_is_ours(const struct vm *vm, pid_t pid)
{
	char path[64];
	struct stat st;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld", (long)pid);
	return stat(path, &st) == 0 && st.st_uid == vm->uid;
}
