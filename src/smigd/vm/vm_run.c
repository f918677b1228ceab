/*
 * vm_run.c - running VMs (vm.h): starts asked of the warden (which starts
 * and confines QEMU and swtpm and hands back QMP and the console), QMP and
 * the serial console, the processes' exits the warden reports, and the
 * steps a migration asks of a VM (incoming start, resume, discard,
 * retire), and the end of a stop (quit, SIGKILL after a grace period, the
 * reply saying how the guest stopped). The guest's power operations (stop,
 * reboot) are vm_power.c, above this file.
 */
#include "vm/vm_int.h"
#include "error.h"
#include "evidence.h"
#include "file.h"
#include "log.h"
#include "vm/qmpconn.h"

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

static void vm_reply_err(struct vm *vm, const char *code, const char *why)
{
	if (ctl_ref_waits(&vm->ref))
		ctl_reply_err(vm->d, &vm->ref, code, "%s: %s", vm->spec.name, why);
}

/* Only the warden signals a VM's processes. */
void vm_kill(struct vm *vm)
{
	struct smig_pm r;

	if (vm->qemu_pid > 0 || vm->swtpm_pid > 0)
		(void)priv_call(vm->d->priv, &r, SMIG_PM_VM_KILL, vm->spec.name);
}

/* Calls and clears the migration engine's completion callback. */
static void vm_notify(struct vm *vm, bool ok, const char *why)
{
	vm_done_fn done = vm->done;

	vm->done = NULL;
	if (done)
		done(vm->done_arg, ok, why);
}

/* why: the warden's reason (usually the last line QEMU or swtpm wrote) or our own. */
static void start_fail(struct vm *vm, const char *why)
{
	vm_note_error(vm, "start failed: %s", why);
	vm_detach(vm);
	vm_kill(vm);
	/* its owner record goes, even when its state was set to shutoff before */
	if (store_active(vm->d) && vm->state == VM_SHUTOFF)
		(void)store_release(vm->d, vm->spec.name, NULL, NULL, NULL);
	vm_set_state(vm, VM_SHUTOFF, "start failed: %s", why);
	vm_reply_err(vm, "error", vm->last_error);
	vm_notify(vm, false, vm->last_error);
}

/* QMP failed during a start and QEMU said nothing of why in time: the QMP reason then. */
static void start_gone(void *arg)
{
	struct vm *vm = arg;

	vm->timer = NULL;
	if (vm->state == VM_STARTING)
		start_fail(vm, vm->last_error);
}

/*
 * QMP failed while QEMU starts: QEMU is most likely exiting, and its exit
 * (EV_VM_EXIT) brings the last line it wrote, the real reason. Waits a
 * second for it before failing with why.
 */
static void start_broken(struct vm *vm, const char *why)
{
	if (vm->timer != NULL && vm->state == VM_STARTING)
		return; /* already waiting */
	snprintf(vm->last_error, sizeof(vm->last_error), "%s", why);
	loop_timer_cancel(vm->d->loop, vm->timer);
	vm->timer = NULL;
	(void)loop_timer_add(vm->d->loop, 1000, start_gone, vm, &vm->timer);
}

static void vm_running(struct vm *vm)
{
	vm_set_state(vm, VM_RUNNING, "started (QEMU pid %d)", (int)vm->qemu_pid);
	vm->last_error[0] = '\0';
	smig_info("event=vm_started vm=%s pid=%d", vm->spec.name, (int)vm->qemu_pid);
	if (ctl_ref_waits(&vm->ref))
		ctl_reply_ok(vm->d, &vm->ref, vm_json(vm));
}

static void on_cont(void *arg, const struct smig_qmp_msg *r)
{
	struct vm *vm = arg;

	if (r == NULL || r->kind != SMIG_QMP_RETURN)
		start_broken(vm, r ? r->error_desc : "no answer to cont");
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

int vm_serial_attach(struct vm *vm, int fd)
{
	char path[PATH_MAX];

	SMIG_ENSURE(fd >= 0, SMIG_EIO);
	vm_console_path(vm, path, sizeof(path));
	vm->console_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	vm->serial_fd = fd;
	return loop_watch_add(vm->d->loop, fd, EPOLLIN, serial_io, vm, &vm->serial_w);
}

double vm_op_seconds(const struct vm *vm)
{
	return (double)(loop_now_ns() - vm->op_t0) / 1e9;
}

static void stop_grace(void *arg)
{
	struct vm *vm = arg;

	vm->timer = NULL;
	if (vm->state == VM_STOPPING) {
		smig_warn("event=vm_kill vm=%s reason=\"no exit within %d ms of quit\"",
			  vm->spec.name, VM_STOP_GRACE_MS);
		snprintf(vm->exit_why, sizeof(vm->exit_why),
			 "killed: QEMU did not exit within %d ms of quit", VM_STOP_GRACE_MS);
		vm_kill(vm);
	}
}

void vm_quit(struct vm *vm)
{
	if (vm->qmp == NULL || qmpconn_send(vm->qmp, "quit", NULL, -1, NULL, NULL) < 0)
		vm_kill(vm);
	loop_timer_cancel(vm->d->loop, vm->timer);
	vm->timer = NULL;
	(void)loop_timer_add(vm->d->loop, VM_STOP_GRACE_MS, stop_grace, vm, &vm->timer);
}

static const char *shutdown_reason(const struct smig_qmp_msg *ev)
{
	const char *r = json_string_value(json_object_get(ev->data, "reason"));

	if (r == NULL)
		return "QEMU is shutting down";
	if (strcmp(r, "guest-shutdown") == 0)
		return "the guest powered off";
	if (strcmp(r, "host-qmp-quit") == 0)
		return "QEMU quit (QMP)";
	if (strcmp(r, "host-signal") == 0)
		return "QEMU got a signal";
	if (strcmp(r, "guest-panic") == 0)
		return "the guest panicked";
	return "QEMU is shutting down";
}

/* Adds to a stop's reply how the guest stopped (res: vm_json). */
static void stop_result(const struct vm *vm, json_t *res)
{
	if (res == NULL || vm->op != VM_OP_SHUTDOWN)
		return;
	(void)json_object_set_new(res, "stop",
				  json_pack("{s:s,s:f,s:i}", "how",
					    vm->op_forced ? "forced" : "guest", "seconds",
					    vm_op_seconds(vm), "timeout_s", (int)vm->op_timeout_s));
}

/*
 * An adopted guest held at its power-off (QEMU status "shutdown"): a
 * reboot that the last smigd began. It is reset and continued, and QEMU
 * told to power off at the guest's next shutdown again.
 */
static void finish_reboot(struct vm *vm)
{
	smig_warn("event=vm_reboot_finished vm=%s reason=\"its guest was held at its power-off "
		  "(a reboot that the last smigd began)\"",
		  vm->spec.name);
	if (qmpconn_send(vm->qmp, "system_reset", NULL, -1, NULL, NULL) < 0 ||
	    qmpconn_send(vm->qmp, "cont", NULL, -1, NULL, NULL) < 0 ||
	    qmpconn_send(vm->qmp, "set-action", json_pack("{s:s}", "shutdown", "poweroff"), -1,
			 NULL, NULL) < 0)
		vm_note_error(vm, "a reboot the last smigd began did not finish: smig vm reboot %s "
			      "--force", vm->spec.name);
	else
		vm_set_state(vm, VM_RUNNING, "rebooted: a reboot the last smigd began, finished");
}

static void vm_exited(struct vm *vm, int status, const char *tail, uint64_t oom_limit);

void vm_on_qmp_event(void *arg, const struct smig_qmp_msg *ev)
{
	struct vm *vm = arg;

	smig_debug("event=qmp_event vm=%s name=%s", vm->spec.name, ev->event);
	if (vm->mig)
		vm->d->vms->ops.event(vm->mig, ev);
	if (vm->power_ev && vm->power_ev(vm, ev))
		return; /* part of a reboot */
	if (vm->op == VM_OP_SHUTDOWN && strcmp(ev->event, "SHUTDOWN") == 0) {
		if (!vm->op_forced)
			snprintf(vm->exit_why, sizeof(vm->exit_why),
				 "the guest powered off in %.1f s (ACPI power button)", vm_op_seconds(vm));
		return;
	}
	if (strcmp(ev->event, "GUEST_PANICKED") == 0) {
		smig_err("event=vm_crashed vm=%s reason=\"the guest kernel panicked (pvpanic)\" "
			 "action=kept_paused",
			 vm->spec.name);
		vm_set_state(vm, VM_CRASHED, "the guest panicked (pvpanic); QEMU holds it paused");
		snprintf(vm->last_error, sizeof(vm->last_error),
			 "the guest panicked; QEMU keeps it paused: read its console log, then stop "
			 "and start it");
	} else if (strcmp(ev->event, "STOP") == 0 && vm->state == VM_RUNNING)
		vm_set_state(vm, VM_PAUSED, "%s",
			     vm->mig	  ? "paused by its migration"
			     : vm->fenced ? "fenced: its owner record in the fleet store is not this "
					    "host's under a sound lease"
					  : "paused");
	else if (strcmp(ev->event, "RESUME") == 0 && vm->state == VM_PAUSED)
		vm_set_state(vm, VM_RUNNING, "resumed");
	else if (strcmp(ev->event, "SHUTDOWN") == 0 && vm->state != VM_STARTING &&
		 vm->state != VM_STOPPING) {
		snprintf(vm->exit_why, sizeof(vm->exit_why), "%s", shutdown_reason(ev));
		vm_set_state(vm, VM_STOPPING, "%s", shutdown_reason(ev));
		/* QEMU exits by itself; one still held at a power-off (a stale action) is made to */
		vm_quit(vm);
	}
}

static void on_adopt_resumed(void *arg, bool ok, const char *why)
{
	struct vm *vm = arg;
	char src[SMIG_NAME_MAX + 1];
	bool resumed;
	struct smig_mig_id id;

	if (ok && vm_incoming_get(vm, &id, src, &resumed) == 0 && !resumed)
		(void)vm_incoming_mark(vm, &id, src, true); /* it came in and now has run here */
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
	if (st && strcmp(st, "shutdown") == 0) {
		/* a reboot's guest that powered off while no smigd ran: it runs again */
		finish_reboot(vm);
		return;
	}
	/* a reboot the last smigd began may have left QEMU holding guests at their power-off */
	(void)qmpconn_send(vm->qmp, "set-action", json_pack("{s:s}", "shutdown", "poweroff"), -1,
			   NULL, NULL);
	if (st && strcmp(st, "running") != 0) {
		vm_set_state(vm, strcmp(st, "guest-panicked") == 0 ? VM_CRASHED : VM_PAUSED,
			     "its QEMU says %s", st);
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
			start_broken(vm, why);
		else if (vm->adopted)
			vm_exited(vm, 0, NULL, 0); /* the closed QMP socket is the exit */
		else
			smig_debug("event=qmp_closed vm=%s reason=\"%s\"", vm->spec.name, why);
		return;
	}
	if (vm->adopted && vm->state == VM_RUNNING) {
		if (vm_serial_attach(vm, vm_connect(vm, SMIG_PM_SOCK_SERIAL)) < 0)
			smig_warn("event=vm_console_lost vm=%s", vm->spec.name);
		smig_info("event=vm_adopted vm=%s pid=%d", vm->spec.name, (int)vm->qemu_pid);
		(void)qmpconn_send(vm->qmp, "query-status", NULL, -1, on_adopt_status, vm);
		return;
	}
	if (vm->state != VM_STARTING)
		return;
	if (vm->incoming) {
		vm_set_state(vm, VM_INCOMING, "ready for its migration's memory");
		smig_info("event=vm_incoming_ready vm=%s pid=%d", vm->spec.name, (int)vm->qemu_pid);
		vm_notify(vm, true, NULL);
		return;
	}
	if (qmpconn_send(vm->qmp, "cont", NULL, -1, on_cont, vm) < 0)
		start_fail(vm, "cannot send cont");
}

/* The warden's answer to VM_START: QEMU runs paused, QMP and the console come with it. */
static void on_started(void *arg, const struct smig_pm *r)
{
	struct smigd *d = arg;
	struct vm *vm;

	if (r == NULL)
		return; /* the warden is gone, and so is this worker */
	/* the reply names no VM: the one whose start is with the warden, by its request */
	vm = NULL;
	for (struct vm *v = vm_first(d); v; v = v->next)
		if (v->starting && v->start_id == r->id)
			vm = v;
	if (vm == NULL) {
		for (size_t i = 0; i < r->nfds; i++)
			close(r->fds[i]);
		return;
	}
	vm->starting = false;
	if (priv_status(r) < 0) {
		start_fail(vm, smig_pm_str(r, 1));
		return;
	}
	vm->qemu_pid = (pid_t)smig_pm_int(r, 2);
	vm->swtpm_pid = (pid_t)smig_pm_int(r, 3);
	vm->filtered = smig_pm_int(r, 4) != 0;
	if (vm_serial_attach(vm, r->fds[1]) < 0) {
		close(r->fds[0]);
		start_fail(vm, "cannot read the serial console");
		return;
	}
	vm->qmp = qmpconn_new(d->loop, r->fds[0], vm_on_qmp_state, vm_on_qmp_event, vm);
	if (vm->qmp == NULL)
		start_fail(vm, "cannot create the QMP connection");
}

static void vm_launch(struct vm *vm, const char *why);

/*
 * The fleet store's answer to a start's claim: ours, so it starts; another
 * host's, or no answer, so it does not (a VM runs where its owner record
 * says, and nowhere else).
 */
static void start_claimed(struct smigd *d, const char *name, const struct store_owner *r)
{
	struct vm *vm = vm_find(d, name);
	bool autostart;

	if (vm == NULL || !vm->claiming ||
	    (vm->state != VM_DEFINED && vm->state != VM_SHUTOFF)) {
		if (vm)
			vm->claiming = false;
		if (r->ok && (vm == NULL || vm->state == VM_DEFINED || vm->state == VM_SHUTOFF))
			(void)store_release(d, name, NULL, NULL, NULL); /* nobody wants it any more */
		return;
	}
	vm->claiming = false;
	autostart = vm->claim_autostart;
	if (r->ok) {
		vm->claim_lease = r->lease;
		vm->claim_retry_ms = 0;
		smig_info("event=vm_claimed vm=%s", name);
		vm_launch(vm, autostart ? "autostart: smigd's first start since the host booted"
					: "start");
		return;
	}
	if (r->answered)
		vm_note_error(vm, "%s is %s's in the fleet store (its owner record %s/vms/%s/owner): "
			      "it runs there, or its smigd has not let it go; stop it on %s first",
			      name, r->owner, d->cfg.store_prefix, name, r->owner);
	else
		vm_note_error(vm, "cannot claim %s in the fleet store: %s; not started (smig status "
			      "says how the store answers)",
			      name, r->error);
	smig_warn("event=vm_claim_refused vm=%s owner=%s reason=\"%s\"", name,
		  r->answered ? r->owner : "unknown", r->answered ? "owned" : r->error);
	if (autostart)
		audit_write(d, "smigd", "vm.start", name, "allow", "autostart", "failed",
			    vm->last_error);
	vm_reply_err(vm, r->answered ? "owned" : "unreachable", vm->last_error);
}

/* Starts vm, after the fleet store's claim when there is one. */
static void start_owned(struct vm *vm, bool autostart, const char *why)
{
	if (!store_active(vm->d)) {
		vm_launch(vm, why);
		return;
	}
	vm->claiming = true;
	vm->claim_autostart = autostart;
	if (store_claim(vm->d, vm->spec.name, NULL, NULL, start_claimed) < 0) {
		vm->claiming = false;
		vm_note_error(vm, "cannot ask the fleet store for %s: out of memory", vm->spec.name);
		vm_reply_err(vm, "error", vm->last_error);
	}
}

void vm_start(struct smigd *d, struct vm *vm, struct ctl_ref *ref)
{
	char err[512];

	if (vm->state != VM_DEFINED && vm->state != VM_SHUTOFF) {
		ctl_reply_err(d, ref, "error", "%s is already %s", vm->spec.name,
			      vm_state_name(vm->state));
		return;
	}
	if (vm->claiming) {
		ctl_reply_err(d, ref, "error", "%s is being started already", vm->spec.name);
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
	vm_outgoing_clear(vm); /* its operator starts it here: no other host runs it */
	start_owned(vm, false, "start");
}

void vm_autostart(struct vm *vm)
{
	char err[512], host[SMIG_NAME_MAX + 2];

	vm->autostart_due = false;
	if (vm->state != VM_DEFINED && vm->state != VM_SHUTOFF)
		return; /* its QEMU outlived the last smigd */
	/* a commit of it went out unconfirmed: the destination may run it */
	if (vm_migration_unfinished(vm)) {
		smig_warn("event=vm_autostart_skipped vm=%s reason=\"a migration of it has not "
			  "ended\"", vm->spec.name);
		return;
	}
	/* the host went down while it moved: the destination may run it now */
	if (vm_outgoing(vm, host, sizeof(host))) {
		vm_note_error(vm, "not autostarted: a migration of it to %s had begun when this host "
			      "went down, and %s may run it now (smig migrate list there says); "
			      "smig vm start %s only if it does not",
			      host, host, vm->spec.name);
		audit_write(vm->d, "smigd", "vm.start", vm->spec.name, "allow", "autostart",
			    "skipped", vm->last_error);
		return;
	}
	if (vm_res_admit(vm->d, &vm->spec, err, sizeof(err)) < 0) {
		vm_note_error(vm, "autostart: %s", err);
		audit_write(vm->d, "smigd", "vm.start", vm->spec.name, "allow", "autostart",
			    "failed", err);
		return;
	}
	audit_write(vm->d, "smigd", "vm.start", vm->spec.name, "allow", "autostart", "started",
		    "the host's first smigd since boot");
	vm->incoming = false;
	start_owned(vm, true, "autostart: smigd's first start since the host booted");
}

void vm_start_incoming(struct vm *vm, vm_done_fn done, void *arg)
{
	vm->done = done;
	vm->done_arg = arg;
	vm->incoming = true;
	vm_launch(vm, "arriving by migration");
}

static void vm_launch(struct vm *vm, const char *why)
{
	vm_set_state(vm, VM_STARTING, "%s", why);
	vm->exit_why[0] = '\0';
	vm->qemu_pid = vm->swtpm_pid = 0;
	vm->filtered = false;
	vm->starting = true;
	if (priv_call_async(vm->d->priv, on_started, vm->d, &vm->start_id, SMIG_PM_VM_START,
			    vm->spec.name, vm->incoming) < 0) {
		vm->starting = false;
		start_fail(vm, "cannot ask the warden to start it");
	}
}

/*
 * QEMU has gone. oom_limit: the kernel killed it, out of memory under the
 * VM's cgroup limit of that many bytes (0: not that).
 */
static void vm_exited(struct vm *vm, int status, const char *tail, uint64_t oom_limit)
{
	enum vm_state was = vm->state;
	char why[512], gone[VM_WHY_MAX];

	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	json_t *res;

	vm->filtered = false; /* the warden removed them */
	vm->qemu_pid = 0;
	vm->adopted = false;
	vm_detach(vm);
	if (oom_limit) {
		snprintf(vm->exit_why, sizeof(vm->exit_why),
			 "QEMU was killed by the kernel, out of memory in the VM's cgroup (limit %llu "
			 "MiB: memory_mib plus confinement.vm_memory_overhead_mib)",
			 (unsigned long long)(oom_limit >> 20));
		vm_note_error(vm, "%s: raise confinement.vm_memory_overhead_mib, then smig vm start %s",
			      vm->exit_why, vm->spec.name);
	} else if (vm->exit_why[0] == '\0') {
		snprintf(vm->exit_why, sizeof(vm->exit_why), "QEMU exited (status %d)", code);
	}
	snprintf(gone, sizeof(gone), "%s", vm->exit_why);
	if (was == VM_STARTING)
		vm->state = VM_SHUTOFF; /* start_fail below says why */
	else
		vm_set_state(vm, VM_SHUTOFF, "%s", vm->exit_why);
	vm->exit_why[0] = '\0';
	smig_info("event=vm_exited vm=%s was=%s status=%d", vm->spec.name, vm_state_name(was), code);
	if (vm->retire) {
		vm_forget(vm);
		return;
	}
	if (vm->mig)
		vm->d->vms->ops.exited(vm->mig, gone);
	else /* an adopted copy gone while its commit is unconfirmed: ask where the VM is */
		(void)vm_resolve_pending(vm, true);
	if (was == VM_STARTING) {
		if (oom_limit)
			snprintf(why, sizeof(why), "%s (during start-up)", gone);
		else if (tail && tail[0])
			snprintf(why, sizeof(why), "%s (QEMU exited during start-up)", tail);
		else
			snprintf(why, sizeof(why), "QEMU exited during start-up");
		start_fail(vm, why);
	} else if (ctl_ref_waits(&vm->ref)) {
		res = vm_json(vm);
		stop_result(vm, res);
		ctl_reply_ok(vm->d, &vm->ref, res);
	}
	vm->op = VM_OP_NONE;
	vm->power_ev = NULL;
}

void vm_swtpm_exited(struct vm *vm)
{
	vm->swtpm_pid = 0;
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

void vm_on_exit(void *arg, const struct smig_pm *ev)
{
	struct smigd *d = arg;
	struct vm *vm = vm_find(d, smig_pm_str(ev, 0));
	int status = (int)smig_pm_int(ev, 2);

	if (vm == NULL)
		return; /* one this worker let go of already (discarded, retired) */
	if (smig_pm_int(ev, 1) == SMIG_PM_PROC_SWTPM) {
		vm_swtpm_exited(vm);
		if (smig_pm_int(ev, 4))
			vm_note_error(vm, "its vTPM (swtpm) was killed by the kernel, out of memory in "
				      "the VM's cgroup (limit %llu MiB: memory_mib plus "
				      "confinement.vm_memory_overhead_mib)",
				      (unsigned long long)(smig_pm_int(ev, 5) >> 20));
	}
	else if (vm->qemu_pid > 0 && !vm->starting)
		vm_exited(vm, status, smig_pm_str(ev, 3),
			  smig_pm_int(ev, 4) ? smig_pm_int(ev, 5) | 1 : 0);
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
	vm_set_state(vm, VM_RUNNING, "%s", vm->incoming ? "runs here after its migration" : "resumed");
	vm->incoming = false;
	vm->fenced = false; /* it runs: should the fencing rule want it paused, it says so again */
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
	struct smig_pm r;

	vm->done = NULL;
	vm->mig = NULL;
	/* the warden kills its processes and removes every trace once they are gone */
	(void)priv_call(vm->d->priv, &r, SMIG_PM_VM_DISCARD, vm->spec.name);
	vm_forget(vm);
}

void vm_retire(struct vm *vm)
{
	struct smig_pm r;

	vm->mig = NULL;
	vm->retire = true;
	/* the vTPM state now lives on the destination: the warden wipes its key and state */
	if (priv_call(vm->d->priv, &r, SMIG_PM_VM_RETIRE, vm->spec.name) < 0 ||
	    priv_status(&r) < 0)
		smig_err("event=vm_retire_failed vm=%s reason=\"%s\"", vm->spec.name,
			 smig_pm_str(&r, 1));
	if (vm->qemu_pid <= 0 || vm->state == VM_SHUTOFF) {
		vm_forget(vm);
		return;
	}
	snprintf(vm->exit_why, sizeof(vm->exit_why), "left for its migration's destination");
	vm_set_state(vm, VM_STOPPING, "the VM runs on its destination now");
	vm_quit(vm);
}
