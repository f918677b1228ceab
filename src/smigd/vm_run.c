/*
 * vm_run.c - running VMs (vm.h): QEMU and swtpm processes started from a
 * spec, QMP and the serial console, start/stop/reap, and the steps a
 * migration asks of a VM (incoming start, resume, discard, retire).
 */
#include "vm_int.h"
#include "error.h"
#include "evidence.h"
#include "file.h"
#include "log.h"
#include "migrate.h"
#include "confine.h"
#include "qmpconn.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void vm_note_error(struct vm *vm, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vm->last_error, sizeof(vm->last_error), fmt, ap);
	va_end(ap);
	smig_warn("event=vm_error vm=%s reason=\"%s\"", vm->spec.name, vm->last_error);
}

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
	const char *pidfile; /* where smigd records its pid (a leaf of the VM's directory) */
};

/*
 * fork + exec as the VM's uid, confined (confine.h), with a clean signal
 * state and output to logpath; the child inherits c's descriptors and no
 * others of ours. smigd records the pid itself: what the child could
 * write, it could also forge.
 */
static pid_t spawn(struct vm *vm, char *const *argv, const char *logpath,
		   const struct vm_child *c)
{
	char path[PATH_MAX], line[32];
	pid_t pid = fork();
	sigset_t none;
	int fd;

	if (pid > 0) {
		vm_path(vm, c->pidfile, path, sizeof(path));
		snprintf(line, sizeof(line), "%d\n", (int)pid);
		if (smig_file_write_atomic(path, line, strlen(line), 0600) < 0)
			smig_warn("event=pidfile_failed vm=%s path=%s", vm->spec.name, path);
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
	if (confine_enter(&vm->d->confine, &c->confine) < 0)
		_exit(126);
	execvp(argv[0], argv);
	dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static void vm_reply_err(struct vm *vm, const char *code, const char *why)
{
	if (ctl_ref_waits(&vm->ref))
		ctl_reply_err(vm->d, &vm->ref, code, "%s: %s", vm->spec.name, why);
}

static void vm_kill(struct vm *vm)
{
	if (vm->qemu_pid > 0)
		kill(vm->qemu_pid, SIGKILL);
	if (vm->swtpm_pid > 0)
		kill(vm->swtpm_pid, SIGKILL);
}

/* The last line QEMU or swtpm wrote to its log: usually the real reason. */
static void log_tail(const struct vm *vm, const char *leaf, char *out, size_t outlen)
{
	char path[PATH_MAX];
	char line[512];
	FILE *f;

	out[0] = '\0';
	vm_path(vm, leaf, path, sizeof(path));
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0])
			snprintf(out, outlen, "%s", line);
	}
	if (f)
		fclose(f);
}

/* Calls and clears the migration engine's completion callback. */
static void vm_notify(struct vm *vm, bool ok, const char *why)
{
	vm_done_fn done = vm->done;

	vm->done = NULL;
	if (done)
		done(vm->done_arg, ok, why);
}

static void start_fail(struct vm *vm, const char *why)
{
	char tail[256];

	log_tail(vm, "qemu.log", tail, sizeof(tail));
	if (tail[0] == '\0' && vm->spec.vtpm)
		log_tail(vm, "swtpm.log", tail, sizeof(tail));
	if (tail[0])
		vm_note_error(vm, "start failed: %s (%s)", tail, why);
	else
		vm_note_error(vm, "start failed: %s", why);
	vm_detach(vm);
	vm_kill(vm);
	vm_res_close(&vm->fds);
	vm->state = VM_SHUTOFF;
	vm_reply_err(vm, "error", vm->last_error);
	vm_notify(vm, false, vm->last_error);
}

static void vm_running(struct vm *vm)
{
	vm->state = VM_RUNNING;
	vm->last_error[0] = '\0';
	smig_info("event=vm_started vm=%s pid=%d", vm->spec.name, (int)vm->qemu_pid);
	if (ctl_ref_waits(&vm->ref))
		ctl_reply_ok(vm->d, &vm->ref, vm_json(vm));
}

static void on_cont(void *arg, const struct smig_qmp_msg *r)
{
	struct vm *vm = arg;

	if (r == NULL || r->kind != SMIG_QMP_RETURN)
		start_fail(vm, r ? r->error_desc : "no answer to cont");
	else
		vm_running(vm);
}

static void console_line(struct vm *vm, const char *line, size_t len)
{
	struct timespec ts;
	char stamp[32];
	int n;

	if (vm->console_fd < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(stamp, sizeof(stamp), "%lld ",
		     (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	if (write(vm->console_fd, stamp, (size_t)n) < 0 || write(vm->console_fd, line, len) < 0 ||
	    write(vm->console_fd, "\n", 1) < 0)
		smig_debug("event=console_write_failed vm=%s", vm->spec.name);
}

static void serial_io(void *arg, uint32_t events)
{
	struct vm *vm = arg;

	(void)events;
	for (;;) {
		uint8_t *dst;
		ssize_t r;

		if (smig_buf_reserve(&vm->serial_rx, 1024, &dst) < 0) {
			/* an overlong line: flush what we have as one line */
			console_line(vm, (const char *)smig_buf_peek(&vm->serial_rx),
				     smig_buf_remaining(&vm->serial_rx));
			smig_buf_reset(&vm->serial_rx);
			continue;
		}
		r = recv(vm->serial_fd, dst, 1024, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
				loop_watch_del(vm->d->loop, vm->serial_w);
				vm->serial_w = NULL;
			}
			return;
		}
		smig_buf_commit(&vm->serial_rx, (size_t)r);
		for (;;) {
			const uint8_t *p = smig_buf_peek(&vm->serial_rx);
			const uint8_t *nl = memchr(p, '\n', smig_buf_remaining(&vm->serial_rx));
			size_t len;

			if (nl == NULL)
				break;
			len = (size_t)(nl - p);
			console_line(vm, (const char *)p, len > 0 && p[len - 1] == '\r' ? len - 1 : len);
			(void)smig_buf_consume(&vm->serial_rx, len + 1);
		}
	}
}

static int serial_connect(struct vm *vm)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char path[PATH_MAX];
	int fd;

	vm_path(vm, "serial.sock", path, sizeof(path));
	SMIG_ENSURE(strlen(path) < sizeof(sa.sun_path), SMIG_EINVAL);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	SMIG_ENSURE(fd >= 0, SMIG_EIO);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return SMIG_EAGAIN;
	}
	vm_console_path(vm, path, sizeof(path));
	vm->console_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	vm->serial_fd = fd;
	return loop_watch_add(vm->d->loop, fd, EPOLLIN, serial_io, vm, &vm->serial_w);
}

static void vm_exited(struct vm *vm, int status);

void vm_on_qmp_event(void *arg, const struct smig_qmp_msg *ev)
{
	struct vm *vm = arg;

	smig_debug("event=qmp_event vm=%s name=%s", vm->spec.name, ev->event);
	if (vm->mig)
		mig_vm_event(vm->mig, ev);
	if (strcmp(ev->event, "GUEST_PANICKED") == 0) {
		smig_err("event=vm_crashed vm=%s reason=\"the guest kernel panicked (pvpanic)\" "
			 "action=kept_paused",
			 vm->spec.name);
		vm->state = VM_CRASHED;
		snprintf(vm->last_error, sizeof(vm->last_error),
			 "the guest panicked; QEMU keeps it paused: read its console log, then stop "
			 "and start it");
	} else if (strcmp(ev->event, "STOP") == 0 && vm->state == VM_RUNNING)
		vm->state = VM_PAUSED;
	else if (strcmp(ev->event, "RESUME") == 0 && vm->state == VM_PAUSED)
		vm->state = VM_RUNNING;
	else if (strcmp(ev->event, "SHUTDOWN") == 0 && vm->state != VM_STARTING)
		vm->state = VM_STOPPING;
}

static void on_adopt_resumed(void *arg, bool ok, const char *why)
{
	struct vm *vm = arg;
	char src[SMIG_NAME_MAX + 1];
	bool resumed;
	uint64_t id;

	if (ok && vm_incoming_get(vm, &id, src, &resumed) == 0 && !resumed)
		(void)vm_incoming_mark(vm, id, src, true); /* it came in and now has run here */
	if (ok)
		smig_info("event=vm_resumed vm=%s reason=adopted_paused_by_a_migration", vm->spec.name);
	else
		vm_note_error(vm, "paused by a migration that did not finish, and cont failed (%s): "
			      "try smig vm resume %s",
			      why, vm->spec.name);
}

/*
 * An adopted QEMU: what it is doing now, not what the last smigd left it
 * doing. A guest that a migration left paused (smig pauses guests for
 * nothing else) runs again, unless the commit of that migration went out
 * unconfirmed: then the destination may run it, and it is asked first.
 */
static void on_adopt_status(void *arg, const struct smig_qmp_msg *r)
{
	struct vm *vm = arg;
	const char *st;

	if (r == NULL || r->kind != SMIG_QMP_RETURN)
		return;
	vm->adopt_checked = true;
	if (vm->state != VM_RUNNING)
		return;
	st = json_string_value(json_object_get(r->ret, "status"));
	if (st && strcmp(st, "running") != 0) {
		vm->state = strcmp(st, "guest-panicked") == 0 ? VM_CRASHED : VM_PAUSED;
		smig_warn("event=vm_adopted_not_running vm=%s qemu_status=%s state=%s",
			  vm->spec.name, st, vm_state_name(vm->state));
	}
	/* only a copy paused by the migration can still be the VM */
	if (vm_resolve_pending(vm, vm->state != VM_PAUSED))
		return;
	if (st == NULL || vm->state != VM_PAUSED)
		return;
	if (strcmp(st, "postmigrate") == 0 || strcmp(st, "finish-migrate") == 0 ||
	    strcmp(st, "paused") == 0 || strcmp(st, "prelaunch") == 0) {
		(void)qmpconn_send(vm->qmp, "migrate_cancel", NULL, -1, NULL, NULL);
		vm_resume(vm, on_adopt_resumed, vm);
	}
}

void vm_on_qmp_state(void *arg, bool ok, const char *why)
{
	struct vm *vm = arg;

	if (!ok) {
		if (vm->state == VM_STARTING)
			start_fail(vm, why);
		else if (vm->adopted)
			vm_exited(vm, 0); /* not our child: the closed QMP socket is the exit */
		else
			smig_debug("event=qmp_closed vm=%s reason=\"%s\"", vm->spec.name, why);
		return;
	}
	if (vm->adopted && vm->state == VM_RUNNING) {
		if (serial_connect(vm) < 0)
			smig_warn("event=vm_console_lost vm=%s", vm->spec.name);
		smig_info("event=vm_adopted vm=%s pid=%d", vm->spec.name, (int)vm->qemu_pid);
		(void)qmpconn_send(vm->qmp, "query-status", NULL, -1, on_adopt_status, vm);
		return;
	}
	if (vm->state != VM_STARTING)
		return;
	if (serial_connect(vm) < 0) {
		start_fail(vm, "cannot connect to the serial console");
		return;
	}
	if (vm->incoming) {
		vm->state = VM_INCOMING;
		smig_info("event=vm_incoming_ready vm=%s pid=%d", vm->spec.name, (int)vm->qemu_pid);
		vm_notify(vm, true, NULL);
		return;
	}
	if (qmpconn_send(vm->qmp, "cont", NULL, -1, on_cont, vm) < 0)
		start_fail(vm, "cannot send cont");
}

/*
 * A listening unix socket at leaf in the VM's directory for QEMU to
 * inherit: made with mode 0600 (never chmod-ed after the fact), so only
 * smigd connects.
 */
static int vm_listen(struct vm *vm, const char *leaf, int *fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char path[PATH_MAX];
	mode_t old;
	int rc;

	vm_path(vm, leaf, path, sizeof(path));
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

/* A descriptor of a directory of the VM's (for its Landlock rules), -1 if none. */
static int vm_dir_fd(const struct vm *vm, const char *leaf)
{
	char path[PATH_MAX];

	vm_path(vm, leaf, path, sizeof(path));
	return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

static void start_qemu(struct vm *vm)
{
	char tpm[PATH_MAX], pid[PATH_MAX], log[PATH_MAX];
	struct smig_vm_paths paths = { .tpm = tpm, .pidfile = pid, .fds = &vm->fds };
	struct vm_child child = { .fds = &vm->fds, .extra_fd = -1, .pidfile = "qemu.pid" };
	char cg[SMIG_NAME_MAX + 8];
	struct smig_argv argv;
	char qmp[PATH_MAX];

	vm_path(vm, "run/swtpm.sock", tpm, sizeof(tpm));
	vm_path(vm, "run/qemu.pid", pid, sizeof(pid)); /* QEMU's own: it locks it too */
	vm_path(vm, "qemu.log", log, sizeof(log));
	vm_path(vm, "qmp.sock", qmp, sizeof(qmp));
	if (vm_listen(vm, "qmp.sock", &vm->fds.qmp) < 0 ||
	    vm_listen(vm, "serial.sock", &vm->fds.serial) < 0 ||
	    (vm->spec.guest_agent && vm_listen(vm, "agent.sock", &vm->fds.agent) < 0)) {
		start_fail(vm, "cannot make the QMP, console or agent socket");
		return;
	}
	if (smig_qemu_argv(&vm->spec, &paths, vm->d->cfg.qemu_binary, vm->d->cfg.qemu_accel,
			   vm->incoming, &argv) < 0) {
		start_fail(vm, "cannot build the QEMU command line");
		return;
	}
	vm_cgroup_name(vm, cg, sizeof(cg));
	child.confine = (struct confine_proc){ .uid = vm->uid, .cgroup = cg };
	child.confine.rw_dirs[child.confine.nrw++] = vm_dir_fd(vm, "run");
	if (vm->fds.kernel >= 0) /* -kernel /proc/self/fd/N opens the file again */
		child.confine.ro_files[child.confine.nro++] = vm->fds.kernel;
	if (vm->fds.initrd >= 0)
		child.confine.ro_files[child.confine.nro++] = vm->fds.initrd;
	vm->qemu_pid = child.confine.rw_dirs[0] >= 0 ? spawn(vm, argv.v, log, &child) : -1;
	if (child.confine.rw_dirs[0] >= 0)
		close(child.confine.rw_dirs[0]);
	smig_argv_clear(&argv);
	vm_res_close(&vm->fds); /* QEMU has its copies */
	if (vm->qemu_pid < 0) {
		start_fail(vm, "fork failed");
		return;
	}
	vm->qmp = qmpconn_new(vm->d->loop, qmp, vm_on_qmp_state, vm_on_qmp_event, vm);
	if (vm->qmp == NULL)
		start_fail(vm, "cannot create the QMP connection");
}

static void swtpm_wait(void *arg)
{
	struct vm *vm = arg;
	char sock[PATH_MAX];

	vm->timer = NULL;
	vm_path(vm, "run/swtpm.sock", sock, sizeof(sock));
	if (access(sock, F_OK) == 0) {
		start_qemu(vm);
		return;
	}
	if (loop_now_ms() > vm->deadline || vm->swtpm_pid <= 0) {
		start_fail(vm, "swtpm did not come up (see swtpm.log)");
		return;
	}
	(void)loop_timer_add(vm->d->loop, 20, swtpm_wait, vm, &vm->timer);
}

/*
 * swtpm as the VM's uid: its state in tpm/, its socket in run/, both the
 * VM's own; the key that encrypts the state comes through a descriptor
 * from where the state is not (vm_tpm_key_path()).
 */
static int start_swtpm(struct vm *vm)
{
	char dir[PATH_MAX], sock[PATH_MAX], log[PATH_MAX], cg[SMIG_NAME_MAX + 8];
	char a_state[PATH_MAX + 32], a_ctrl[PATH_MAX + 32], a_key[64];
	struct vm_child child = { .fds = NULL, .pidfile = "swtpm.pid" };
	char *argv[16];
	int n = 0;

	vm_path(vm, "tpm", dir, sizeof(dir));
	vm_path(vm, "run/swtpm.sock", sock, sizeof(sock));
	vm_path(vm, "swtpm.log", log, sizeof(log));
	child.extra_fd = vm_tpm_key_open(vm);
	if (child.extra_fd < 0)
		return SMIG_EIO;
	snprintf(a_state, sizeof(a_state), "dir=%s,mode=0600", dir);
	snprintf(a_ctrl, sizeof(a_ctrl), "type=unixio,path=%s,mode=0600", sock);
	snprintf(a_key, sizeof(a_key), "fd=%d,format=binary,mode=aes-256-cbc", child.extra_fd);
	argv[n++] = vm->d->cfg.swtpm_binary;
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
	vm_cgroup_name(vm, cg, sizeof(cg));
	child.confine = (struct confine_proc){ .uid = vm->uid, .cgroup = cg };
	child.confine.rw_dirs[child.confine.nrw++] = vm_dir_fd(vm, "run");
	child.confine.rw_dirs[child.confine.nrw++] = vm_dir_fd(vm, "tpm");
	if (child.confine.rw_dirs[0] >= 0 && child.confine.rw_dirs[1] >= 0)
		vm->swtpm_pid = spawn(vm, argv, log, &child);
	else
		vm->swtpm_pid = -1;
	for (size_t i = 0; i < child.confine.nrw; i++)
		if (child.confine.rw_dirs[i] >= 0)
			close(child.confine.rw_dirs[i]);
	close(child.extra_fd);
	return vm->swtpm_pid > 0 ? 0 : SMIG_EIO;
}

static void vm_launch(struct vm *vm);

void vm_start(struct smigd *d, struct vm *vm, struct ctl_ref *ref)
{
	char err[512];

	if (vm->state != VM_DEFINED && vm->state != VM_SHUTOFF) {
		ctl_reply_err(d, ref, "error", "%s is already %s", vm->spec.name,
			      vm_state_name(vm->state));
		return;
	}
	/* its QEMU died at switch-over: the destination may hold the only copy */
	if (vm_migration_unfinished(vm)) {
		ctl_reply_err(d, ref, "error",
			      "%s is in a migration whose end is not known yet; smig vm show %s "
			      "says what it waits for",
			      vm->spec.name, vm->spec.name);
		return;
	}
	if (vm_res_admit(d, &vm->spec, err, sizeof(err)) < 0) {
		ctl_reply_err(d, ref, "capacity", "%s: %s", vm->spec.name, err);
		return;
	}
	vm->ref = *ref;
	ref->id = NULL;
	ref->client_id = 0;
	vm->incoming = false;
	vm_launch(vm);
}

void vm_start_incoming(struct vm *vm, vm_done_fn done, void *arg)
{
	vm->done = done;
	vm->done_arg = arg;
	vm->incoming = true;
	vm_launch(vm);
}

static void vm_launch(struct vm *vm)
{
	char err[512], cg[SMIG_NAME_MAX + 8];
	bool hostile;

	vm->state = VM_STARTING;
	vm->qemu_pid = vm->swtpm_pid = 0;
	vm->deadline = loop_now_ms() + VM_START_MS;
	if (vm_uid_assign(vm) < 0 || vm_dirs_prepare(vm) < 0) {
		start_fail(vm, "cannot give the VM its uid and directories");
		return;
	}
	if (vm_res_open(vm->d, &vm->spec, &vm->fds, &hostile, err, sizeof(err)) < 0) {
		/* nothing ran: an older qemu.log has nothing to say about this */
		vm_note_error(vm, "cannot start: %s", err);
		vm->state = VM_SHUTOFF;
		vm_reply_err(vm, "error", vm->last_error);
		vm_notify(vm, false, vm->last_error);
		return;
	}
	if (!vm->incoming && vm->spec.firmware.kind == SMIG_FW_UEFI) {
		struct vm_fw_build b;

		/* a cold start boots this host's build: the one the VM runs from now on */
		if (smig_measure_fd(vm->fds.fw_code, "firmware code", b.sha256, &b.size, err,
				    sizeof(err)) == 0)
			vm_fw_build_set(vm, &b);
	}
	vm->filtered = false;
	if (vm_filter_apply(vm->d, &vm->spec, err, sizeof(err)) == 0) {
		vm->filtered = vm_filter_wanted(&vm->spec);
	} else if (!vm->incoming) {
		/* never run a VM here with less protection than its spec asks */
		vm_res_close(&vm->fds);
		vm_note_error(vm, "cannot start: %s", err);
		vm->state = VM_SHUTOFF;
		vm_reply_err(vm, "error", vm->last_error);
		return;
	} else {
		/* the guest stays paused here; READY says so and the source will not commit */
		smig_warn("event=nic_filter_missing vm=%s reason=\"%s\"", vm->spec.name, err);
	}
	vm_cgroup_name(vm, cg, sizeof(cg));
	if (confine_cgroup_make(&vm->d->confine, cg, vm->spec.memory_mib, vm->spec.vcpus, err,
				sizeof(err)) < 0) {
		start_fail(vm, err);
		return;
	}
	if (!vm->spec.vtpm) {
		start_qemu(vm);
		return;
	}
	if (start_swtpm(vm) < 0) {
		start_fail(vm, "cannot start swtpm");
		return;
	}
	swtpm_wait(vm);
}

static void stop_grace(void *arg)
{
	struct vm *vm = arg;

	vm->timer = NULL;
	if (vm->state == VM_STOPPING) {
		smig_warn("event=vm_kill vm=%s reason=\"no exit within %d ms of quit\"",
			  vm->spec.name, VM_STOP_GRACE_MS);
		vm_kill(vm);
	}
}

void vm_stop(struct smigd *d, struct vm *vm, struct ctl_ref *ref)
{
	if (vm->state == VM_DEFINED || vm->state == VM_SHUTOFF || vm->state == VM_STOPPING) {
		ctl_reply_err(d, ref, "error", "%s is %s", vm->spec.name, vm_state_name(vm->state));
		return;
	}
	if (ctl_ref_waits(&vm->ref))
		ctl_reply_err(d, &vm->ref, "error", "%s: stopped before it finished starting",
			      vm->spec.name);
	vm->ref = *ref;
	ref->id = NULL;
	ref->client_id = 0;
	vm->state = VM_STOPPING;
	if (vm->qmp == NULL || qmpconn_send(vm->qmp, "quit", NULL, -1, NULL, NULL) < 0)
		vm_kill(vm);
	loop_timer_cancel(d->loop, vm->timer);
	(void)loop_timer_add(d->loop, VM_STOP_GRACE_MS, stop_grace, vm, &vm->timer);
}

/* Removes a VM and its directory (after it migrated away or was discarded). */
static void vm_forget(struct vm *vm)
{
	struct smigd *d = vm->d;

	for (struct vm **pp = &d->vms; *pp; pp = &(*pp)->next) {
		if (*pp == vm) {
			*pp = vm->next;
			break;
		}
	}
	if (vm->swtpm_pid > 0)
		kill(vm->swtpm_pid, SIGKILL);
	(void)vm_rmtree(vm->dir);
	vm_tpm_key_wipe(d, vm->spec.name);
	vm_cgroup_drop(vm);
	smig_info("event=vm_forgotten vm=%s", vm->spec.name);
	vm_destroy(vm);
}

static void vm_exited(struct vm *vm, int status)
{
	enum vm_state was = vm->state;

	if (vm->filtered)
		vm_filter_remove(vm->d, &vm->spec);
	vm->filtered = false;

	vm->qemu_pid = 0;
	vm->adopted = false;
	vm_detach(vm);
	if (vm->swtpm_pid > 0)
		kill(vm->swtpm_pid, SIGTERM);
	else
		vm_cgroup_drop(vm); /* empty now; else once swtpm has gone too */
	vm->state = VM_SHUTOFF;
	smig_info("event=vm_exited vm=%s was=%s status=%d", vm->spec.name, vm_state_name(was),
		  WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	if (vm->retire) {
		vm_forget(vm);
		return;
	}
	if (vm->mig)
		mig_vm_exited(vm->mig);
	else /* an adopted copy gone while its commit is unconfirmed: ask where the VM is */
		(void)vm_resolve_pending(vm, true);
	if (was == VM_STARTING) {
		start_fail(vm, "QEMU exited during start-up");
	} else if (ctl_ref_waits(&vm->ref)) {
		ctl_reply_ok(vm->d, &vm->ref, vm_json(vm));
	}
}

void vm_swtpm_exited(struct vm *vm)
{
	vm->swtpm_pid = 0;
	vm_swtpm_unwatch(vm);
	if (vm->qemu_pid <= 0)
		vm_cgroup_drop(vm);
	smig_debug("event=swtpm_exited vm=%s", vm->spec.name);
	/* QEMU cannot reconnect its TPM: the running guest has lost it */
	if (vm->qemu_pid > 0 && (vm->state == VM_RUNNING || vm->state == VM_PAUSED)) {
		smig_err("event=vtpm_lost vm=%s reason=\"swtpm exited while the VM ran\"",
			 vm->spec.name);
		vm_note_error(vm, "its vTPM (swtpm) exited while the VM ran: the guest's TPM no "
			      "longer answers until a cold restart (smig vm stop %s, smig vm "
			      "start %s)",
			      vm->spec.name, vm->spec.name);
	}
}

void vm_reap(struct smigd *d)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (struct vm *vm = d->vms; vm; vm = vm->next) {
			if (vm->qemu_pid == pid) {
				vm_exited(vm, status);
				break;
			}
			if (vm->swtpm_pid == pid) {
				vm_swtpm_exited(vm);
				break;
			}
		}
	}
}

static void on_announce(void *arg, const struct smig_qmp_msg *r)
{
	struct vm *vm = arg;

	if (r == NULL || r->kind != SMIG_QMP_RETURN)
		smig_warn("event=announce_failed vm=%s reason=\"%s\"", vm->spec.name,
			  r ? r->error_desc : "no answer");
}

/*
 * The guest's NICs now sit behind this host's taps: QEMU sends gratuitous
 * RARPs for each MAC so that every bridge and switch on the way learns the
 * new port before the guest's peers notice (QEMU announces after an
 * incoming migration by itself too; this does not depend on its defaults).
 */
static void announce(struct vm *vm)
{
	if (vm->spec.nnics == 0)
		return;
	if (qmpconn_send(vm->qmp, "announce-self",
			 json_pack("{s:i,s:i,s:i,s:i}", "initial", 50, "max", 550, "rounds", 5,
				   "step", 100),
			 -1, on_announce, vm) < 0)
		smig_warn("event=announce_failed vm=%s reason=\"cannot send\"", vm->spec.name);
}

static void on_resume(void *arg, const struct smig_qmp_msg *r)
{
	struct vm *vm = arg;

	if (r == NULL || r->kind != SMIG_QMP_RETURN) {
		vm_notify(vm, false, r ? r->error_desc : "no answer to cont");
		return;
	}
	vm->state = VM_RUNNING;
	vm->incoming = false;
	announce(vm);
	vm_notify(vm, true, NULL);
}

void vm_resume(struct vm *vm, vm_done_fn done, void *arg)
{
	vm->done = done;
	vm->done_arg = arg;
	if (vm->qmp == NULL || qmpconn_send(vm->qmp, "cont", NULL, -1, on_resume, vm) < 0)
		vm_notify(vm, false, "no QMP connection");
}

void vm_discard(struct vm *vm)
{
	vm->done = NULL;
	vm->mig = NULL;
	if (vm->qemu_pid > 0 && vm->state != VM_SHUTOFF) {
		vm->retire = true;
		vm_detach(vm);
		vm_kill(vm);
		return; /* vm_exited() forgets it */
	}
	vm_forget(vm);
}

void vm_retire(struct vm *vm)
{
	char path[PATH_MAX];

	vm->mig = NULL;
	vm->retire = true;
	/* the vTPM state now lives on the destination: its key goes first */
	vm_tpm_key_wipe(vm->d, vm->spec.name);
	vm_path(vm, "tpm", path, sizeof(path));
	(void)vm_rmtree(path);
	if (vm->qemu_pid <= 0 || vm->state == VM_SHUTOFF) {
		vm_forget(vm);
		return;
	}
	vm->state = VM_STOPPING;
	if (vm->qmp == NULL || qmpconn_send(vm->qmp, "quit", NULL, -1, NULL, NULL) < 0)
		vm_kill(vm);
	loop_timer_cancel(vm->d->loop, vm->timer);
	(void)loop_timer_add(vm->d->loop, VM_STOP_GRACE_MS, stop_grace, vm, &vm->timer);
}
