/*
 * launch.c - a VM's processes, which only the warden starts, signals and
 * reaps: its swtpm and its QEMU, each confined (confine.h) as the VM's
 * uid, from the spec the warden holds; the descriptors QEMU inherits
 * (volumes, taps, firmware, and the QMP, console and agent sockets the
 * warden makes); connections to those sockets for the worker; and their
 * exits, reported to the worker (EV_VM_EXIT).
 *
 * A start answers its VM_START request when QEMU runs paused (-S) with
 * QMP and the console connected, or with the reason it failed (usually
 * the last line QEMU or swtpm wrote).
 */
#include "warden/wd_int.h"
#include "error.h"
#include "evidence.h"
#include "file.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const sock_leaf[] = { "qmp.sock", "serial.sock", "agent.sock" };

/* The child keeps fd across exec (the parent opened it O_CLOEXEC). */
static void keep_fd(int fd)
{
	if (fd >= 0)
		(void)fcntl(fd, F_SETFD, 0);
}

static void keep_fds(const struct smig_vm_fds *f)
{
	keep_fd(f->kernel);
	keep_fd(f->initrd);
	keep_fd(f->fw_code);
	keep_fd(f->fw_vars);
	for (size_t i = 0; i < SMIG_VM_DISKS_MAX; i++) {
		keep_fd(f->disk_rw[i]);
		keep_fd(f->disk_ro[i]);
	}
	for (size_t i = 0; i < SMIG_VM_NICS_MAX; i++)
		keep_fd(f->tap[i]);
	keep_fd(f->qmp);
	keep_fd(f->serial);
	keep_fd(f->agent);
}

/* What one of a VM's processes inherits: its descriptors and its confinement. */
struct vm_child {
	const struct smig_vm_fds *fds; /* may be NULL */
	int extra_fd;                  /* one more descriptor it keeps, or -1 */
	struct confine_proc confine;
	const char *pidfile; /* where the warden records its pid (a leaf of the VM's directory) */
};

/*
 * fork + exec as the VM's uid, confined, with a clean signal state and
 * output to logpath; the child inherits c's descriptors and no others.
 * The warden records the pid itself: what the child could write, it could
 * also forge.
 */
static pid_t spawn(struct wvm *v, char *const *argv, const char *logpath,
		   const struct vm_child *c)
{
	char path[PATH_MAX], line[32];
	pid_t pid = fork();
	sigset_t none;
	int fd;

	if (pid > 0) {
		wd_vm_path(v, c->pidfile, path, sizeof(path));
		snprintf(line, sizeof(line), "%d\n", (int)pid);
		if (smig_file_write_atomic(path, line, strlen(line), 0600) < 0)
			smig_warn("event=pidfile_failed vm=%s path=%s", v->spec.name, path);
	}
	if (pid != 0)
		return pid;
	if (c->fds)
		keep_fds(c->fds);
	keep_fd(c->extra_fd);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	setsid();
	fd = open("/dev/null", O_RDONLY);
	if (fd >= 0)
		dup2(fd, 0);
	fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	if (confine_enter(&v->w->confine, &c->confine) < 0)
		_exit(126);
	execvp(argv[0], argv);
	dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* The last line QEMU or swtpm wrote to its log: usually the real reason. */
static void log_tail(const struct wvm *v, const char *leaf, char *out, size_t outlen)
{
	char path[PATH_MAX];
	char line[512];
	FILE *f;

	out[0] = '\0';
	wd_vm_path(v, leaf, path, sizeof(path));
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0])
			snprintf(out, outlen, "%s", line);
	}
	if (f)
		fclose(f);
}

void wd_vm_kill(struct wvm *v, int sig)
{
	if (v->qemu_pid > 0)
		kill(v->qemu_pid, sig);
	if (v->swtpm_pid > 0)
		kill(v->swtpm_pid, sig);
}

/* Ends a start: the reply (with QMP and the console on success) goes to the worker. */
static void start_done(struct wvm *v, int status, const char *why)
{
	struct warden *w = v->w;
	int fds[2] = { -1, -1 };
	char err[768] = "", tail[256];

	loop_timer_cancel(w->loop, v->timer);
	v->timer = NULL;
	wd_fds_close(&v->fds);
	if (status == 0) {
		fds[0] = wd_vm_connect(v, SMIG_PM_SOCK_QMP);
		fds[1] = wd_vm_connect(v, SMIG_PM_SOCK_SERIAL);
		if (fds[0] < 0 || fds[1] < 0) {
			status = SMIG_EIO;
			why = "cannot connect to QEMU's QMP or console socket";
		}
	}
	if (status < 0) {
		log_tail(v, "qemu.log", tail, sizeof(tail));
		if (tail[0] == '\0' && v->spec.vtpm)
			log_tail(v, "swtpm.log", tail, sizeof(tail));
		if (tail[0])
			snprintf(err, sizeof(err), "%s (%s)", tail, why);
		else
			snprintf(err, sizeof(err), "%s", why);
		smig_warn("event=vm_start_failed vm=%s reason=\"%s\"", v->spec.name, err);
		wd_vm_kill(v, SIGKILL);
		if (v->qemu_pid <= 0 && v->filtered) { /* else its exit removes them */
			wd_filter_remove(w, &v->spec);
			v->filtered = false;
		}
		if (v->qemu_pid <= 0 && v->swtpm_pid <= 0)
			wd_cgroup_drop(v);
	}
	if (smig_pm_build(&w->tx, SMIG_PM_VM_START + 1, v->start_id, (unsigned)-status, err,
			  (unsigned)(status == 0 ? v->qemu_pid : 0),
			  (unsigned)(status == 0 ? v->swtpm_pid : 0), v->filtered) == 0)
		wd_send(w, &w->tx, status == 0 ? fds : NULL, status == 0 ? 2 : 0);
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	v->start_id = 0;
	if (status == 0)
		smig_info("event=vm_started vm=%s pid=%d uid=%u", v->spec.name, (int)v->qemu_pid,
			  (unsigned)v->uid);
}

/*
 * A listening unix socket at leaf in the VM's directory for QEMU to
 * inherit: made with mode 0600 (never chmod-ed after the fact), so only
 * root connects.
 */
static int vm_listen(struct wvm *v, const char *leaf, int *fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char path[PATH_MAX];
	mode_t old;
	int rc;

	wd_vm_path(v, leaf, path, sizeof(path));
	SMIG_ENSURE(strlen(path) < sizeof(sa.sun_path), SMIG_EINVAL);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	(void)unlink(path);
	*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	SMIG_ENSURE(*fd >= 0, SMIG_EIO);
	old = umask(0177);
	rc = bind(*fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(*fd, 4) == 0 ? 0
										    : SMIG_EIO;
	umask(old);
	if (rc < 0) {
		close(*fd);
		*fd = -1;
	}
	return rc;
}

int wd_vm_connect(struct wvm *v, unsigned which)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char path[PATH_MAX];
	int fd;

	if (which >= ARRAY_LEN(sock_leaf) || v->qemu_pid <= 0)
		return -1;
	wd_vm_path(v, sock_leaf[which], path, sizeof(path));
	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* A descriptor of a directory of the VM's (for its Landlock rules), -1 if none. */
static int vm_dir_fd(const struct wvm *v, const char *leaf)
{
	char path[PATH_MAX];

	wd_vm_path(v, leaf, path, sizeof(path));
	return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

static void start_qemu(struct wvm *v)
{
	char tpm[PATH_MAX], pid[PATH_MAX], log[PATH_MAX], cg[SMIG_NAME_MAX + 8];
	struct smig_vm_paths paths = { .tpm = tpm, .pidfile = pid, .fds = &v->fds };
	struct vm_child child = { .fds = &v->fds, .extra_fd = -1, .pidfile = "qemu.pid" };
	struct warden *w = v->w;
	struct smig_argv argv;

	wd_vm_path(v, "run/swtpm.sock", tpm, sizeof(tpm));
	wd_vm_path(v, "run/qemu.pid", pid, sizeof(pid)); /* QEMU's own: it locks it too */
	wd_vm_path(v, "qemu.log", log, sizeof(log));
	if (vm_listen(v, sock_leaf[0], &v->fds.qmp) < 0 ||
	    vm_listen(v, sock_leaf[1], &v->fds.serial) < 0 ||
	    (v->spec.guest_agent && vm_listen(v, sock_leaf[2], &v->fds.agent) < 0)) {
		start_done(v, SMIG_EIO, "cannot make the QMP, console or agent socket");
		return;
	}
	if (smig_qemu_argv(&v->spec, &paths, w->cfg.qemu_binary, w->cfg.qemu_accel, v->incoming,
			   &argv) < 0) {
		start_done(v, SMIG_EINVAL, "cannot build the QEMU command line");
		return;
	}
	wd_cgroup_name(v, cg, sizeof(cg));
	child.confine = (struct confine_proc){ .uid = v->uid, .cgroup = cg };
	child.confine.rw_dirs[child.confine.nrw++] = vm_dir_fd(v, "run");
	if (v->fds.kernel >= 0) /* -kernel /proc/self/fd/N opens the file again */
		child.confine.ro_files[child.confine.nro++] = v->fds.kernel;
	if (v->fds.initrd >= 0)
		child.confine.ro_files[child.confine.nro++] = v->fds.initrd;
	v->qemu_pid = child.confine.rw_dirs[0] >= 0 ? spawn(v, argv.v, log, &child) : -1;
	if (child.confine.rw_dirs[0] >= 0)
		close(child.confine.rw_dirs[0]);
	smig_argv_clear(&argv);
	if (v->qemu_pid < 0) {
		v->qemu_pid = 0;
		start_done(v, SMIG_EIO, "fork failed");
		return;
	}
	start_done(v, 0, NULL);
}

static void swtpm_wait(void *arg)
{
	struct wvm *v = arg;
	char sock[PATH_MAX];

	v->timer = NULL;
	wd_vm_path(v, "run/swtpm.sock", sock, sizeof(sock));
	if (access(sock, F_OK) == 0) {
		start_qemu(v);
		return;
	}
	if (loop_now_ms() > v->deadline || v->swtpm_pid <= 0) {
		start_done(v, SMIG_ETIMEDOUT, "swtpm did not come up (see swtpm.log)");
		return;
	}
	(void)loop_timer_add(v->w->loop, 20, swtpm_wait, v, &v->timer);
}

/*
 * swtpm as the VM's uid: its state in tpm/, its socket in run/, both the
 * VM's own; the key that encrypts the state comes through a descriptor
 * from where the state is not (keys.c).
 */
static int start_swtpm(struct wvm *v)
{
	char dir[PATH_MAX], sock[PATH_MAX], log[PATH_MAX], cg[SMIG_NAME_MAX + 8];
	char a_state[PATH_MAX + 32], a_ctrl[PATH_MAX + 32], a_key[64];
	struct vm_child child = { .fds = NULL, .pidfile = "swtpm.pid" };
	char *argv[16];
	int n = 0;

	wd_vm_path(v, "tpm", dir, sizeof(dir));
	wd_vm_path(v, "run/swtpm.sock", sock, sizeof(sock));
	wd_vm_path(v, "swtpm.log", log, sizeof(log));
	child.extra_fd = wd_tpm_key_open(v);
	if (child.extra_fd < 0)
		return SMIG_EIO;
	snprintf(a_state, sizeof(a_state), "dir=%s,mode=0600", dir);
	snprintf(a_ctrl, sizeof(a_ctrl), "type=unixio,path=%s,mode=0600", sock);
	snprintf(a_key, sizeof(a_key), "fd=%d,format=binary,mode=aes-256-cbc", child.extra_fd);
	argv[n++] = v->w->cfg.swtpm_binary;
	argv[n++] = "socket";
	argv[n++] = "--tpm2";
	argv[n++] = "--tpmstate";
	argv[n++] = a_state;
	argv[n++] = "--ctrl";
	argv[n++] = a_ctrl;
	argv[n++] = "--key";
	argv[n++] = a_key;
	argv[n++] = "--log";
	argv[n++] = "fd=1";
	argv[n++] = "--terminate";
	argv[n] = NULL;
	wd_cgroup_name(v, cg, sizeof(cg));
	child.confine = (struct confine_proc){ .uid = v->uid, .cgroup = cg };
	child.confine.rw_dirs[child.confine.nrw++] = vm_dir_fd(v, "run");
	child.confine.rw_dirs[child.confine.nrw++] = vm_dir_fd(v, "tpm");
	if (child.confine.rw_dirs[0] >= 0 && child.confine.rw_dirs[1] >= 0)
		v->swtpm_pid = spawn(v, argv, log, &child);
	else
		v->swtpm_pid = -1;
	for (size_t i = 0; i < child.confine.nrw; i++)
		if (child.confine.rw_dirs[i] >= 0)
			close(child.confine.rw_dirs[i]);
	close(child.extra_fd);
	if (v->swtpm_pid > 0)
		return 0;
	v->swtpm_pid = 0;
	return SMIG_EIO;
}

/* Everything of a start that comes before its processes: uid, directories, descriptors, filters. */
static int prepare(struct wvm *v, char *err, size_t errlen)
{
	struct warden *w = v->w;
	char cg[SMIG_NAME_MAX + 8];
	bool hostile;

	if (wd_uid_assign(v) < 0 || wd_dirs_prepare(v) < 0) {
		snprintf(err, errlen, "cannot give the VM its uid and directories");
		return SMIG_EIO;
	}
	SMIG_GUARD(wd_res_open(w, &v->spec, &v->fds, &hostile, err, errlen));
	if (!v->incoming && v->spec.firmware.kind == SMIG_FW_UEFI) {
		struct wd_fw_build b;

		/* a cold start boots this host's build: the one the VM runs from now on */
		if (smig_measure_fd(v->fds.fw_code, "firmware code", b.sha256, &b.size, err,
				    errlen) == 0)
			wd_fw_build_set(v, &b);
	}
	v->filtered = false;
	if (wd_filter_apply(w, &v->spec, err, errlen) == 0) {
		v->filtered = wd_filter_wanted(&v->spec);
	} else if (!v->incoming) {
		return SMIG_EIO; /* never run a VM here with less protection than its spec asks */
	} else {
		/* the guest stays paused here; READY says so and the source will not commit */
		smig_warn("event=nic_filter_missing vm=%s reason=\"%s\"", v->spec.name, err);
	}
	wd_cgroup_name(v, cg, sizeof(cg));
	SMIG_GUARD(confine_cgroup_make(&w->confine, cg, v->spec.memory_mib, v->spec.vcpus, err,
				       errlen));
	v->oom_seen = confine_cgroup_oom_kills(&w->confine, cg); /* a cgroup left from before */
	return 0;
}

void wd_vm_start(struct warden *w, struct wvm *v, bool incoming, uint32_t id)
{
	char err[512];

	v->start_id = id;
	v->incoming = incoming;
	v->deadline = loop_now_ms() + WD_START_MS;
	if (prepare(v, err, sizeof(err)) < 0) {
		start_done(v, SMIG_EIO, err);
		return;
	}
	if (!v->spec.vtpm) {
		start_qemu(v);
		return;
	}
	if (start_swtpm(v) < 0) {
		start_done(v, SMIG_EIO, "cannot start swtpm");
		return;
	}
	(void)w;
	swtpm_wait(v);
}

/*
 * A process of v killed outright while its cgroup counts an OOM kill not
 * yet put down to another: the kernel took it for want of memory under the
 * VM's limit (0: not that). Asked before the cgroup goes. Returns the
 * limit in bytes.
 */
static uint64_t oom_killed(struct wvm *v, const char *proc, int status)
{
	char cg[SMIG_NAME_MAX + 8];
	uint64_t limit, n;

	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		return 0;
	wd_cgroup_name(v, cg, sizeof(cg));
	n = confine_cgroup_oom_kills(&v->w->confine, cg);
	if (n <= v->oom_seen)
		return 0;
	v->oom_seen = n;
	limit = confine_cgroup_limit(&v->w->confine, cg);
	smig_err("event=vm_oom_killed vm=%s process=%s limit_mib=%llu memory_mib=%llu "
		 "action=raise_confinement.vm_memory_overhead_mib",
		 v->spec.name, proc, (unsigned long long)(limit >> 20),
		 (unsigned long long)v->spec.memory_mib);
	return limit ? limit : 1;
}

static void notify_exit(struct wvm *v, unsigned which, int status, uint64_t oom_limit)
{
	struct warden *w = v->w;
	char tail[256];

	log_tail(v, which == SMIG_PM_PROC_SWTPM ? "swtpm.log" : "qemu.log", tail, sizeof(tail));
	if (smig_pm_build(&w->tx, SMIG_PM_EV_VM_EXIT, 0, v->spec.name, which, (unsigned)status,
			  tail, (unsigned)(oom_limit != 0), oom_limit) == 0)
		wd_send(w, &w->tx, NULL, 0);
}

static void unwatch_one(struct wvm *v, bool swtpm)
{
	int *fd = swtpm ? &v->swtpm_pidfd : &v->qemu_pidfd;
	struct loop_watch **lw = swtpm ? &v->swtpm_w : &v->qemu_w;

	loop_watch_del(v->w->loop, *lw);
	*lw = NULL;
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void wd_vm_unwatch(struct wvm *v)
{
	unwatch_one(v, false);
	unwatch_one(v, true);
}

/* Every process of v is gone: a retiring VM goes from the table (v is then freed). */
static void vm_ended(struct wvm *v)
{
	struct warden *w = v->w;

	if (v->retire && w->vm_ended)
		w->vm_ended(w, v);
}

static void swtpm_exited(struct wvm *v, int status)
{
	uint64_t oom = oom_killed(v, "swtpm", status);

	v->swtpm_pid = 0;
	unwatch_one(v, true);
	notify_exit(v, SMIG_PM_PROC_SWTPM, status, oom);
	if (v->qemu_pid <= 0) {
		wd_cgroup_drop(v);
		vm_ended(v); /* may free v */
	}
}

static void qemu_exited(struct wvm *v, int status)
{
	struct warden *w = v->w;
	uint64_t oom = oom_killed(v, "qemu", status);

	if (v->filtered)
		wd_filter_remove(w, &v->spec);
	v->filtered = false;
	v->qemu_pid = 0;
	unwatch_one(v, false);
	if (v->swtpm_pid > 0)
		kill(v->swtpm_pid, SIGTERM);
	else
		wd_cgroup_drop(v); /* empty now; else once swtpm has gone too */
	smig_info("event=vm_exited vm=%s status=%d", v->spec.name,
		  WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	notify_exit(v, SMIG_PM_PROC_QEMU, status, oom);
	if (v->swtpm_pid <= 0)
		vm_ended(v); /* may free v */
}

bool wd_reap(struct warden *w, pid_t worker, int *worker_status)
{
	bool worker_gone = false;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == worker) {
			*worker_status = status;
			worker_gone = true;
			continue;
		}
		for (struct wvm *v = w->vms; v; v = v->next) {
			if (v->qemu_pid == pid) {
				qemu_exited(v, status);
				break;
			}
			if (v->swtpm_pid == pid) {
				swtpm_exited(v, status);
				break;
			}
		}
	}
	return worker_gone;
}

static void on_pidfd(void *arg, uint32_t events, bool swtpm)
{
	struct wvm *v = arg;

	(void)events;
	if (swtpm)
		swtpm_exited(v, 0);
	else
		qemu_exited(v, 0);
}

static void on_qemu_pidfd(void *arg, uint32_t events)
{
	on_pidfd(arg, events, false);
}

static void on_swtpm_pidfd(void *arg, uint32_t events)
{
	on_pidfd(arg, events, true);
}

void wd_vm_watch(struct wvm *v, bool swtpm)
{
	pid_t pid = swtpm ? v->swtpm_pid : v->qemu_pid;
	int *fd = swtpm ? &v->swtpm_pidfd : &v->qemu_pidfd;
	struct loop_watch **lw = swtpm ? &v->swtpm_w : &v->qemu_w;

	*fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (*fd >= 0 && loop_watch_add(v->w->loop, *fd, EPOLLIN,
				       swtpm ? on_swtpm_pidfd : on_qemu_pidfd, v, lw) == 0)
		return;
	smig_warn("event=vm_unwatched vm=%s pid=%d reason=\"%s\"", v->spec.name, (int)pid,
		  strerror(errno));
	unwatch_one(v, swtpm);
}
