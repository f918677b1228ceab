/*
 * vmconfine.c - where each VM's processes may go (confine.h applies it):
 * the VM's uid on this host, picked from confinement.vm_uid_first/count
 * and kept in its directory, and the directories that uid owns.
 *
 * STATE_DIR/vms/NAME is root's, group the VM's (0710): its QEMU and swtpm
 * pass through it to run/ (sockets and pid file) and tpm/ (the vTPM
 * state), which the VM's uid owns (0700). Everything else in it (spec,
 * logs, smigd's sockets and records) stays root's.
 */
#include "warden/wd_int.h"
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

void wd_cgroup_name(const struct wvm *v, char *out, size_t outlen)
{
	snprintf(out, outlen, "vm-%s", v->spec.name);
}

void wd_cgroup_drop(const struct wvm *v)
{
	char cg[SMIG_NAME_MAX + 8];

	wd_cgroup_name(v, cg, sizeof(cg));
	confine_cgroup_drop(&v->w->confine, cg);
}

void wd_uid_load(struct wvm *v)
{
	char path[PATH_MAX], *text = NULL, *end = NULL, err[128];
	unsigned long n;
	size_t len;

	v->uid = 0;
	wd_vm_path(v, "uid", path, sizeof(path));
	if (smig_file_read(path, 32, &text, &len, err, sizeof(err)) < 0)
		return;
	errno = 0;
	n = strtoul(text, &end, 10);
	if (errno == 0 && end != text && (*end == '\n' || *end == '\0') && n > 0 &&
	    n >= v->w->cfg.vm_uid_first && n - v->w->cfg.vm_uid_first < v->w->cfg.vm_uid_count)
		v->uid = (uid_t)n;
	else
		smig_warn("event=vm_uid_invalid vm=%s path=%s action=reassigned", v->spec.name,
			  path);
	free(text);
}

/* The lowest uid of the range no VM here holds and no account names. */
int wd_uid_assign(struct wvm *v)
{
	const struct smig_config *cfg = &v->w->cfg;
	uint8_t *used;
	char path[PATH_MAX], line[32];
	int rc = SMIG_ECAPACITY;

	if (v->uid != 0)
		return 0;
	used = calloc((cfg->vm_uid_count + 7) / 8, 1);
	SMIG_ENSURE(used != NULL, SMIG_ENOMEM);
	for (const struct wvm *o = v->w->vms; o; o = o->next)
		if (o->uid >= cfg->vm_uid_first && o->uid - cfg->vm_uid_first < cfg->vm_uid_count)
			used[(o->uid - cfg->vm_uid_first) / 8] |= (uint8_t)(1u << ((o->uid - cfg->vm_uid_first) % 8));
	for (uint32_t i = 0; i < cfg->vm_uid_count; i++) {
		if (used[i / 8] & (1u << (i % 8)) || getpwuid(cfg->vm_uid_first + i) != NULL)
			continue;
		v->uid = cfg->vm_uid_first + i;
		rc = 0;
		break;
	}
	free(used);
	if (rc < 0) {
		smig_err("event=vm_uid_exhausted vm=%s first=%u count=%u", v->spec.name,
			 cfg->vm_uid_first, cfg->vm_uid_count);
		return rc;
	}
	wd_vm_path(v, "uid", path, sizeof(path));
	snprintf(line, sizeof(line), "%u\n", (unsigned)v->uid);
	SMIG_GUARD(smig_file_mkdirs(v->dir, 0710));
	return smig_file_write_atomic(path, line, strlen(line), 0600);
}

/* Makes dir (a leaf of the VM's) owned by uid and gid with mode, whatever it was. */
static int own_dir(const struct wvm *v, const char *leaf, uid_t uid, gid_t gid, mode_t mode)
{
	char path[PATH_MAX];
	struct stat st;

	wd_vm_path(v, leaf, path, sizeof(path));
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return SMIG_EIO;
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return SMIG_EIO;
	if (chown(path, uid, gid) < 0 || chmod(path, mode) < 0)
		return SMIG_EIO;
	return 0;
}

/* Hands every file of the VM's tpm/ to its uid (a state from before the VM had one). */
static void own_tpm_state(const struct wvm *v)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *dp;
	int dfd;

	wd_vm_path(v, "tpm", path, sizeof(path));
	dp = opendir(path);
	if (dp == NULL)
		return;
	dfd = dirfd(dp);
	while ((e = readdir(dp)) != NULL)
		if (e->d_name[0] != '.' &&
		    fchownat(dfd, e->d_name, v->uid, v->uid, AT_SYMLINK_NOFOLLOW) < 0)
			smig_warn("event=vm_tpm_chown_failed vm=%s file=%s", v->spec.name, e->d_name);
	closedir(dp);
}

int wd_dirs_prepare(struct wvm *v)
{
	char run[PATH_MAX];

	SMIG_GUARD(smig_file_mkdirs(v->dir, 0710));
	SMIG_GUARD(own_dir(v, ".", 0, v->uid, 0710));
	/* a fresh run/: nothing a process of an earlier start left there is kept */
	wd_vm_path(v, "run", run, sizeof(run));
	(void)smig_file_rmtree(run);
	SMIG_GUARD(own_dir(v, "run", v->uid, v->uid, 0700));
	if (!v->spec.vtpm)
		return 0;
	SMIG_GUARD(own_dir(v, "tpm", v->uid, v->uid, 0700));
	own_tpm_state(v);
	return 0;
}

/*
 * A process smigd recorded as one of vm's: alive, and running as the VM's
 * uid (a VM from before confinement, uid 0: as root), so a stale or
 * reused pid never makes smigd adopt or kill a stranger.
 */
bool wd_pid_is_ours(const struct wvm *v, pid_t pid)
{
	char path[64];
	struct stat st;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld", (long)pid);
	return stat(path, &st) == 0 && st.st_uid == v->uid;
}
