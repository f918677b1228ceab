/*
 * vmtab.c - the warden's VM table: which VMs this host has, with the spec
 * the warden itself parsed, checked against its catalogue and saved; the
 * uid each one runs as; and which of them a migration brought in and is
 * not committed yet. Every request of the worker that names a VM is
 * checked against this table: a VM the warden does not know, or one in
 * the wrong state for the request, is refused.
 *
 * On disk STATE_DIR/vms/NAME/spec.json (a VM of this host), spec.staged
 * (incoming, not committed) or spec.retired (gone to its destination,
 * its processes not yet all gone). A staged VM found at start is kept with its
 * QEMU for the worker to decide: committed where its own records say the
 * COMMIT was recorded, else discarded. A directory with neither is a
 * leftover: its processes are killed and it is removed.
 *
 * Autostart: the first smigd after the host booted starts the VMs whose
 * spec says autostart and that do not run. It knows it is the first by a
 * file in the runtime directory (the control socket's, a tmpfs that a
 * boot empties), autostart-HOST.done, made as the VMs are listed to the
 * worker: a restart
 * of smigd never starts a VM that its operator stopped.
 */
#include "warden/wd_int.h"
#include "error.h"
#include "file.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct wvm *wd_vm_find(struct warden *w, const char *name)
{
	for (struct wvm *v = w->vms; v; v = v->next)
		if (strcmp(v->spec.name, name) == 0)
			return v;
	return NULL;
}

static struct wvm *wvm_new(struct warden *w, const struct smig_vmspec *spec)
{
	struct wvm *v = calloc(1, sizeof(*v));

	if (v == NULL)
		return NULL;
	v->w = w;
	v->spec = *spec;
	v->qemu_pidfd = v->swtpm_pidfd = -1;
	wd_fds_init(&v->fds);
	snprintf(v->dir, sizeof(v->dir), "%s/vms/%s", w->cfg.state_dir, spec->name);
	v->next = w->vms;
	w->vms = v;
	return v;
}

static void vm_unlink(struct warden *w, struct wvm *v)
{
	for (struct wvm **pp = &w->vms; *pp; pp = &(*pp)->next)
		if (*pp == v) {
			*pp = v->next;
			return;
		}
}

static void vm_free(struct wvm *v)
{
	wd_vm_unwatch(v);
	wd_fds_close(&v->fds);
	loop_timer_cancel(v->w->loop, v->timer);
	free(v);
}

void wd_vm_free_all(struct warden *w)
{
	while (w->vms) {
		struct wvm *v = w->vms;

		w->vms = v->next;
		vm_free(v);
	}
}

/* The pid recorded in pidfile if that process is alive and named like comm, else 0. */
static pid_t live_pid(const char *pidfile, const char *comm)
{
	char buf[32] = "", path[64], name[64] = "";
	long pid = 0;
	FILE *f = fopen(pidfile, "re");

	if (f && fgets(buf, sizeof(buf), f))
		pid = strtol(buf, NULL, 10);
	if (f)
		fclose(f);
	if (pid <= 0 || kill((pid_t)pid, 0) != 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	f = fopen(path, "re");
	if (f && fgets(name, sizeof(name), f) == NULL)
		name[0] = '\0';
	if (f)
		fclose(f);
	return strncmp(name, comm, strlen(comm)) == 0 ? (pid_t)pid : 0;
}

/* A QEMU and swtpm still running from an earlier smigd: watched, not our children. */
static void adopt(struct wvm *v)
{
	char path[PATH_MAX];
	pid_t pid;

	wd_vm_path(v, "qemu.pid", path, sizeof(path));
	pid = live_pid(path, "qemu");
	if (pid > 0 && wd_pid_is_ours(v, pid)) {
		v->qemu_pid = pid;
		wd_vm_watch(v, false);
	}
	wd_vm_path(v, "swtpm.pid", path, sizeof(path));
	pid = live_pid(path, "swtpm");
	if (pid > 0 && wd_pid_is_ours(v, pid)) {
		v->swtpm_pid = pid;
		wd_vm_watch(v, true);
	}
	smig_info("event=vm_loaded vm=%s uid=%u qemu=%d swtpm=%d", v->spec.name,
		  (unsigned)v->uid, (int)v->qemu_pid, (int)v->swtpm_pid);
}

/* An incoming VM that never committed: nothing of it is ours. */
static void leftover(struct warden *w, const char *dir, const char *name)
{
	char path[PATH_MAX];
	pid_t pid;

	smig_warn("event=vm_leftover_removed path=%s", dir);
	snprintf(path, sizeof(path), "%s/qemu.pid", dir);
	if ((pid = live_pid(path, "qemu")) > 0)
		kill(pid, SIGKILL);
	snprintf(path, sizeof(path), "%s/swtpm.pid", dir);
	if ((pid = live_pid(path, "swtpm")) > 0)
		kill(pid, SIGKILL);
	(void)smig_file_rmtree(dir);
	if (smig_name_valid(name))
		wd_tpm_key_wipe(w, name);
}

/* The marker: DIR-of-the-control-socket/autostart-HOST.done; false without a place for it. */
static bool marker_path(struct warden *w, char *dir, size_t dirlen, char *path, size_t pathlen)
{
	char *slash;

	snprintf(dir, dirlen, "%s", w->cfg.control_socket);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return false;
	*slash = '\0';
	snprintf(path, pathlen, "%s/autostart-%s.done", dir, w->cfg.host);
	return true;
}

/* True when no smigd has started the autostart VMs since the host booted. */
static bool first_since_boot(struct warden *w)
{
	char dir[PATH_MAX], path[PATH_MAX + SMIG_NAME_MAX + 32];

	return marker_path(w, dir, sizeof(dir), path, sizeof(path)) && access(path, F_OK) != 0;
}

/* The autostart VMs are listed for the worker: the marker says so until the next boot. */
static void autostart_done(struct warden *w)
{
	char dir[PATH_MAX], path[PATH_MAX + SMIG_NAME_MAX + 32];
	int fd;

	if (!marker_path(w, dir, sizeof(dir), path, sizeof(path)))
		return;
	if (smig_file_mkdirs(dir, 0755) < 0 ||
	    ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0)) {
		smig_warn("event=autostart_marker_failed path=%s reason=\"%s\"", path,
			  strerror(errno));
		return;
	}
	close(fd);
}

int wd_vm_load_all(struct warden *w)
{
	char dir[PATH_MAX];
	struct dirent *e;
	DIR *dp;

	w->vm_ended = wd_vm_forget;
	snprintf(dir, sizeof(dir), "%s/vms", w->cfg.state_dir);
	/* searchable, not readable: each VM's uid passes through to its own directory */
	SMIG_GUARD(smig_file_mkdirs(dir, 0711));
	SMIG_ENSURE(chmod(dir, 0711) == 0, SMIG_EIO);
	dp = opendir(dir);
	SMIG_ENSURE(dp != NULL, SMIG_EIO);
	while ((e = readdir(dp)) != NULL) {
		char path[PATH_MAX * 2], vdir[PATH_MAX * 2], err[512];
		struct smig_vmspec spec;
		struct wvm *v;

		if (e->d_name[0] == '.')
			continue;
		bool staged = false;

		snprintf(vdir, sizeof(vdir), "%s/%s", dir, e->d_name);
		snprintf(path, sizeof(path), "%s/spec.json", vdir);
		if (access(path, F_OK) != 0) {
			/* incoming, not committed: the worker decides (its records say how far it got) */
			snprintf(path, sizeof(path), "%s/spec.staged", vdir);
			staged = true;
		}
		if (access(path, F_OK) != 0) {
			leftover(w, vdir, e->d_name);
			continue;
		}
		if (smig_vmspec_load(path, &spec, err, sizeof(err)) < 0 ||
		    strcmp(spec.name, e->d_name) != 0) {
			smig_warn("event=vm_load_failed path=%s reason=\"%s\"", path, err);
			if (staged)
				leftover(w, vdir, e->d_name);
			continue;
		}
		v = wvm_new(w, &spec);
		if (v == NULL)
			break;
		v->staged = staged;
		wd_uid_load(v);
		adopt(v);
	}
	closedir(dp);
	w->autostart_pending = first_since_boot(w);
	return 0;
}

/* Writes v's spec (synced) as file name in its directory. */
static int write_spec(struct wvm *v, const char *name)
{
	char path[PATH_MAX];
	char *text;
	int rc;

	wd_vm_path(v, name, path, sizeof(path));
	SMIG_GUARD(smig_vmspec_dump(&v->spec, &text));
	rc = smig_file_write_atomic(path, text, strlen(text), 0600);
	free(text);
	return rc;
}

/* A new record for spec with its directory, uid and spec file; NULL + err on failure. */
static struct wvm *vm_create(struct warden *w, const struct smig_vmspec *spec, bool staged,
			     char *err, size_t errlen)
{
	struct wvm *v = wvm_new(w, spec);

	if (v == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	v->staged = staged;
	if (smig_file_mkdirs(v->dir, 0710) < 0 || wd_uid_assign(v) < 0 ||
	    write_spec(v, staged ? "spec.staged" : "spec.json") < 0) {
		snprintf(err, errlen, "%s: cannot save the VM (%s)", v->dir, strerror(errno));
		vm_unlink(w, v);
		(void)smig_file_rmtree(v->dir);
		vm_free(v);
		return NULL;
	}
	return v;
}

/*
 * A new spec for a VM this host has: what it leaves unset keeps the value
 * pinned at its first definition (machine type, CPU model, each NIC's
 * MAC), so that its guest sees the same hardware. A VM that runs may
 * change only what smigd reads of it (autostart, shutdown_timeout_s);
 * one a migration brings in or takes away, nothing. A vTPM is never
 * dropped by a redefinition: its state would be left behind.
 */
static int redefine_ok(struct wvm *v, struct smig_vmspec *s, char *err, size_t errlen)
{
	char changed[256];

	if (v->staged || v->retire) {
		snprintf(err, errlen, "%s is %s a migration; define it again once that has ended",
			 s->name, v->staged ? "arriving by" : "leaving by");
		return SMIG_EBUSY;
	}
	if (s->machine[0] == '\0')
		snprintf(s->machine, sizeof(s->machine), "%s", v->spec.machine);
	if (s->cpu[0] == '\0')
		snprintf(s->cpu, sizeof(s->cpu), "%s", v->spec.cpu);
	for (size_t i = 0; i < s->nnics && i < v->spec.nnics; i++)
		if (!s->nics[i].has_mac) {
			memcpy(s->nics[i].mac, v->spec.nics[i].mac, sizeof(s->nics[i].mac));
			s->nics[i].has_mac = true;
		}
	if (v->spec.vtpm && !s->vtpm) {
		snprintf(err, errlen, "%s has a vTPM and its state, which a spec without vtpm would "
			 "leave behind: keep \"vtpm\": true, or undefine %s and define it again "
			 "to drop its vTPM",
			 s->name, s->name);
		return SMIG_EINVAL;
	}
	if (!wd_vm_running(v) && v->start_id == 0)
		return 0;
	SMIG_GUARD(smig_vmspec_diff(&v->spec, s, SMIG_VMSPEC_DIFF_HOST_ONLY, changed,
				    sizeof(changed)));
	if (changed[0]) {
		snprintf(err, errlen, "%s is running: only autostart and shutdown_timeout_s change "
			 "while it runs, not %s; stop it (smig vm stop %s), then define it again",
			 s->name, changed, s->name);
		return SMIG_EBUSY;
	}
	return 0;
}

int wd_vm_define(struct warden *w, const char *text, char **pinned, char *err, size_t errlen)
{
	struct smig_vmspec s, old;
	struct wvm *v;
	bool hostile;

	*pinned = NULL;
	SMIG_GUARD(smig_vmspec_parse("spec", text, strlen(text), &s, err, errlen));
	v = wd_vm_find(w, s.name);
	if (v)
		SMIG_GUARD(redefine_ok(v, &s, err, errlen));
	SMIG_GUARD(wd_res_pin(w, &s, err, errlen));
	if (v == NULL || !wd_vm_running(v)) /* a running VM's resources do not change */
		SMIG_GUARD(wd_res_check(w, &s, SMIG_CHECK_DEFINE, &hostile, err, errlen));
	SMIG_GUARD(wd_res_claim(w, &s, err, errlen));
	if (v) {
		old = v->spec;
		v->spec = s;
		if (write_spec(v, "spec.json") < 0) {
			v->spec = old;
			snprintf(err, errlen, "%s: cannot save the VM (%s)", v->dir, strerror(errno));
			return SMIG_EIO;
		}
		smig_info("event=vm_redefined vm=%s memory_mib=%u vtpm=%d autostart=%d", s.name,
			  s.memory_mib, s.vtpm, s.autostart);
	} else {
		if (vm_create(w, &s, false, err, errlen) == NULL)
			return SMIG_EIO;
		smig_info("event=vm_defined vm=%s memory_mib=%u vtpm=%d", s.name, s.memory_mib,
			  s.vtpm);
	}
	return smig_vmspec_dump(&s, pinned);
}

/* A swtpm saves its state as it exits after QEMU: removal waits for that (2 s at most). */
static void swtpm_gone(struct wvm *v)
{
	struct timespec ten_ms = { .tv_nsec = 10000000 };

	for (int i = 0; i < 200 && v->swtpm_pid > 0; i++) {
		pid_t r = waitpid(v->swtpm_pid, NULL, WNOHANG); /* our child: reaped here */

		if (r == v->swtpm_pid || (r < 0 && errno == ECHILD && kill(v->swtpm_pid, 0) < 0)) {
			v->swtpm_pid = 0;
		} else {
			nanosleep(&ten_ms, NULL);
		}
	}
}

void wd_vm_forget(struct warden *w, struct wvm *v)
{
	vm_unlink(w, v);
	if (v->swtpm_pid > 0) {
		kill(v->swtpm_pid, SIGKILL);
		swtpm_gone(v);
	}
	(void)smig_file_rmtree(v->dir);
	wd_tpm_key_wipe(w, v->spec.name);
	wd_cgroup_drop(v);
	smig_info("event=vm_forgotten vm=%s", v->spec.name);
	vm_free(v);
}

int wd_vm_undefine(struct warden *w, struct wvm *v, char *err, size_t errlen)
{
	if (wd_vm_running(v) || v->start_id) {
		snprintf(err, errlen, "%s is running; stop it first", v->spec.name);
		return SMIG_EBUSY;
	}
	swtpm_gone(v);
	smig_info("event=vm_undefined vm=%s", v->spec.name);
	wd_vm_forget(w, v);
	return 0;
}

int wd_vm_stage(struct warden *w, const struct smig_pm *m, bool *hostile, char *err,
		size_t errlen)
{
	const char *text = smig_pm_str(m, 0);
	struct wd_fw_build fw;
	struct smig_vmspec s;
	struct wvm *v;

	*hostile = false;
	SMIG_GUARD(smig_vmspec_parse("spec", text, strlen(text), &s, err, errlen));
	if (wd_vm_find(w, s.name)) {
		snprintf(err, errlen, "a VM named %s already exists on %s", s.name, w->cfg.host);
		return SMIG_EEXIST;
	}
	SMIG_GUARD(wd_res_check(w, &s, SMIG_CHECK_INCOMING, hostile, err, errlen));
	memcpy(fw.sha256, smig_pm_key(m, 4), sizeof(fw.sha256));
	fw.size = smig_pm_int(m, 5);
	if (s.firmware.kind == SMIG_FW_UEFI)
		SMIG_GUARD(wd_fw_accept(w, &s, &fw, err, errlen));
	SMIG_GUARD(wd_res_claim(w, &s, err, errlen));
	if (s.vtpm != (smig_pm_int(m, 3) != 0)) {
		snprintf(err, errlen, "%s: a vTPM key comes with a vTPM VM, and only then", s.name);
		return SMIG_EINVAL;
	}
	v = vm_create(w, &s, true, err, errlen);
	if (v == NULL)
		return SMIG_EIO;
	if (s.vtpm && wd_tpm_key_set(w, s.name, smig_pm_key(m, 2), 32) < 0) {
		snprintf(err, errlen, "cannot store %s's vTPM key", s.name);
		wd_vm_forget(w, v);
		return SMIG_EIO;
	}
	if (s.firmware.kind == SMIG_FW_UEFI)
		wd_fw_build_set(v, &fw); /* its flash comes in the stream: it runs that build */
	smig_info("event=vm_staged vm=%s from=%s uid=%u", s.name, smig_pm_str(m, 1),
		  (unsigned)v->uid);
	return 0;
}

/*
 * The destination keeps the spec once the VM is its own: the staged copy,
 * written and synced when the migration came in, becomes spec.json by a
 * rename, so no fsync falls into the switch-over.
 */
int wd_vm_commit(struct warden *w, struct wvm *v, char *err, size_t errlen)
{
	char staged[PATH_MAX], path[PATH_MAX];

	(void)w;
	if (!v->staged) {
		snprintf(err, errlen, "%s did not come in by a migration", v->spec.name);
		return SMIG_EINVAL;
	}
	wd_vm_path(v, "spec.staged", staged, sizeof(staged));
	wd_vm_path(v, "spec.json", path, sizeof(path));
	if (rename(staged, path) < 0 && write_spec(v, "spec.json") < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return SMIG_EIO;
	}
	v->staged = false;
	return 0;
}

void wd_vm_discard(struct warden *w, struct wvm *v)
{
	if (wd_vm_running(v)) {
		v->retire = true; /* forgotten once QEMU is gone */
		wd_vm_kill(v, SIGKILL);
		return;
	}
	wd_vm_forget(w, v);
}

int wd_vm_retire(struct warden *w, struct wvm *v)
{
	char path[PATH_MAX], gone[PATH_MAX];

	/*
	 * Not this host's any more, on disk first (renamed and synced): a crash
	 * before its processes are gone leaves a leftover, never a VM that a
	 * restart, or autostart after a power cut, would run a second time.
	 */
	wd_vm_path(v, "spec.json", path, sizeof(path));
	wd_vm_path(v, "spec.retired", gone, sizeof(gone));
	if (rename(path, gone) < 0 || smig_file_sync_dir(gone) < 0)
		smig_err("event=vm_retire_unsynced vm=%s reason=\"%s\"", v->spec.name,
			 strerror(errno));
	/* the vTPM state now lives on the destination: its key goes first */
	wd_tpm_key_wipe(w, v->spec.name);
	wd_vm_path(v, "tpm", path, sizeof(path));
	(void)smig_file_rmtree(path);
	v->retire = true;
	if (!wd_vm_running(v) && v->start_id == 0)
		wd_vm_forget(w, v);
	return 0;
}

char *wd_vm_list_json(struct warden *w)
{
	json_t *arr = json_array();
	char *out;

	/* decided at the worker's first listing: QEMUs found dead at load have been reaped by now */
	for (struct wvm *v = w->vms; v && w->autostart_pending; v = v->next)
		v->autostart_due = v->spec.autostart && !v->staged && !v->retire && !wd_vm_running(v) &&
				   v->start_id == 0;
	if (w->autostart_pending)
		autostart_done(w);
	w->autostart_pending = false;

	for (struct wvm *v = w->vms; v && arr; v = v->next) {
		char *text = NULL;
		json_t *spec;

		if (v->retire || smig_vmspec_dump(&v->spec, &text) < 0)
			continue;
		spec = json_loads(text, 0, NULL);
		free(text);
		json_array_append_new(arr, json_pack("{s:s,s:o?,s:I,s:i,s:i,s:b,s:b,s:b}", "name",
						     v->spec.name, "spec", spec, "uid",
						     (json_int_t)v->uid, "qemu_pid",
						     (int)v->qemu_pid, "swtpm_pid", (int)v->swtpm_pid,
						     "staged", v->staged, "filtered", v->filtered,
						     "autostart_due", v->autostart_due));
		v->autostart_due = false;
	}
	out = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
	json_decref(arr);
	return out;
}
