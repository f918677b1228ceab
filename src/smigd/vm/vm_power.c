/*
 * vm_power.c - a guest's power operations (vm.h): stop, by the ACPI power
 * button with a time limit and QMP quit after it (or at once, --force),
 * and reboot, by the power button with QEMU told to hold the guest at its
 * power-off (set-action shutdown=pause) and reset and continue it there,
 * so that the VM keeps its QEMU, its vTPM and its place (or at once by
 * system_reset, --force).
 *
 * A stop's reply waits for QEMU's exit (vm_run.c answers it, with how the
 * guest stopped); a reboot's for the guest to run again. vm_run.c hands a
 * reboot the VM's QMP events through vm->power_ev, so that it never calls
 * up into this file.
 */
#include "vm/vm_int.h"
#include "log.h"
#include "vm/qmpconn.h"

#include <stdio.h>
#include <string.h>

static uint32_t timeout_of(const struct vm *vm, uint32_t timeout_s)
{
	return timeout_s ? timeout_s : vm_shutdown_timeout(vm);
}

/* The request now waits on vm (its reply comes when the operation ends). */
static void take_ref(struct vm *vm, struct ctl_ref *ref)
{
	vm->ref = *ref;
	ref->id = NULL;
	ref->client_id = 0;
}

/* --- stop --- */

/* The guest had its time: QEMU quits. */
static void shutdown_timeout(void *arg)
{
	struct vm *vm = arg;

	vm->timer = NULL;
	if (vm->state != VM_STOPPING || vm->op != VM_OP_SHUTDOWN)
		return;
	vm->op_forced = true;
	smig_warn("event=vm_shutdown_timeout vm=%s timeout_s=%u action=quit", vm->spec.name,
		  vm->op_timeout_s);
	snprintf(vm->exit_why, sizeof(vm->exit_why),
		 "stopped: the guest did not power off within %u s", vm->op_timeout_s);
	vm_set_state(vm, VM_STOPPING, "the guest did not power off within %u s: QEMU quits",
		     vm->op_timeout_s);
	vm_quit(vm);
}

static void on_powerdown(void *arg, const struct smig_qmp_msg *r)
{
	struct vm *vm = arg;

	if (r != NULL && r->kind == SMIG_QMP_RETURN)
		return;
	if (vm->op == VM_OP_SHUTDOWN && vm->state == VM_STOPPING) {
		vm->op_forced = true;
		snprintf(vm->exit_why, sizeof(vm->exit_why),
			 "stopped: QEMU refused the power button (%s)",
			 r ? r->error_desc : "no answer");
		vm_quit(vm);
	}
}

void vm_stop(struct smigd *d, struct vm *vm, bool force, uint32_t timeout_s, struct ctl_ref *ref)
{
	const char *n = vm->spec.name;
	uint32_t t = timeout_of(vm, timeout_s);

	if (vm->state == VM_DEFINED || vm->state == VM_SHUTOFF) {
		ctl_reply_err(d, ref, "error", "%s is %s already", n, vm_state_name(vm->state));
		return;
	}
	if (vm->state == VM_STOPPING && (!force || vm->op != VM_OP_SHUTDOWN)) {
		if (vm->op == VM_OP_SHUTDOWN)
			ctl_reply_err(d, ref, "error",
				      "%s is shutting down already (its guest has %u s from the "
				      "first stop); smig vm stop %s --force stops it now",
				      n, vm->op_timeout_s, n);
		else
			ctl_reply_err(d, ref, "error", "%s is stopping already", n);
		return;
	}
	if ((vm->mig || vm_migration_unfinished(vm)) && !force) {
		ctl_reply_err(d, ref, "error",
			      "%s is migrating: cancel the migration first (smig migrate %s "
			      "--cancel), or smig vm stop %s --force",
			      n, n, n);
		return;
	}
	if (vm->op == VM_OP_REBOOT && !force) {
		ctl_reply_err(d, ref, "error",
			      "%s is rebooting; stop it once it runs again, or smig vm stop %s "
			      "--force now",
			      n, n);
		return;
	}
	if (ctl_ref_waits(&vm->ref))
		ctl_reply_err(d, &vm->ref, "error", "%s: stopped (smig vm stop%s) before this ended",
			      n, force ? " --force" : "");
	take_ref(vm, ref);
	vm->power_ev = NULL; /* a reboot, overridden by --force */
	vm->op_t0 = loop_now_ns();
	vm->op_timeout_s = t;
	vm->op_forced = false;
	if (force || vm->state != VM_RUNNING || vm->qmp == NULL) {
		/* no running guest to ask (paused, crashed, starting, arriving), or told not to */
		vm->op = force ? VM_OP_SHUTDOWN : VM_OP_NONE;
		vm->op_forced = true;
		snprintf(vm->exit_why, sizeof(vm->exit_why), "stopped%s",
			 force ? " (--force)" : ": no running guest to ask");
		vm_set_state(vm, VM_STOPPING, "stop%s: QEMU quits",
			     force ? " --force" : ", with no running guest to ask");
		vm_quit(vm);
		return;
	}
	vm->op = VM_OP_SHUTDOWN;
	snprintf(vm->exit_why, sizeof(vm->exit_why), "QEMU exited while its guest shut down");
	vm_set_state(vm, VM_STOPPING, "stop: ACPI power button pressed; the guest has %u s", t);
	if (qmpconn_send(vm->qmp, "system_powerdown", NULL, -1, on_powerdown, vm) < 0) {
		on_powerdown(vm, NULL);
		return;
	}
	loop_timer_cancel(d->loop, vm->timer);
	vm->timer = NULL;
	(void)loop_timer_add(d->loop, (uint64_t)t * 1000, shutdown_timeout, vm, &vm->timer);
}

/* --- reboot --- */

static void reboot_reply_ok(struct vm *vm, const char *how)
{
	json_t *res;

	if (!ctl_ref_waits(&vm->ref))
		return;
	res = vm_json(vm);
	if (res)
		(void)json_object_set_new(res, "reboot",
					  json_pack("{s:s,s:f}", "how", how, "seconds",
						    vm_op_seconds(vm)));
	ctl_reply_ok(vm->d, &vm->ref, res);
}

/* QEMU stops the guest at its next power-off again (the spec's default). */
static void restore_action(struct vm *vm)
{
	if (vm->qmp)
		(void)qmpconn_send(vm->qmp, "set-action", json_pack("{s:s}", "shutdown", "poweroff"),
				   -1, NULL, NULL);
}

static void reboot_fail(struct vm *vm, const char *code, const char *why)
{
	vm->op = VM_OP_NONE;
	vm->power_ev = NULL;
	loop_timer_cancel(vm->d->loop, vm->timer);
	vm->timer = NULL;
	restore_action(vm);
	vm_note_error(vm, "reboot: %s", why);
	if (ctl_ref_waits(&vm->ref))
		ctl_reply_err(vm->d, &vm->ref, code, "%s: %s", vm->spec.name, why);
}

static void on_reboot_cont(void *arg, const struct smig_qmp_msg *r)
{
	struct vm *vm = arg;
	bool forced;

	if (vm->op != VM_OP_REBOOT)
		return;
	if (r == NULL || r->kind != SMIG_QMP_RETURN) {
		reboot_fail(vm, "error", r ? r->error_desc : "no answer to cont");
		return;
	}
	forced = vm->op_forced;
	restore_action(vm);
	vm->last_error[0] = '\0';
	if (forced)
		vm_set_state(vm, VM_RUNNING, "reset (reboot --force)");
	else
		vm_set_state(vm, VM_RUNNING, "rebooted: the guest shut down in %.1f s and starts again",
			     vm_op_seconds(vm));
	reboot_reply_ok(vm, forced ? "reset" : "guest");
	vm->op = VM_OP_NONE;
	vm->power_ev = NULL;
}

static void on_reboot_reset(void *arg, const struct smig_qmp_msg *r)
{
	struct vm *vm = arg;

	if (vm->op != VM_OP_REBOOT)
		return;
	if (vm->mig) {
		reboot_fail(vm, "error", "a migration took hold of the VM during its reboot");
		return;
	}
	if (r == NULL || r->kind != SMIG_QMP_RETURN) {
		reboot_fail(vm, "error", r ? r->error_desc : "no answer to system_reset");
		return;
	}
	/* a running guest (reset --force of a running VM) takes no cont, but cont is harmless */
	if (qmpconn_send(vm->qmp, "cont", NULL, -1, on_reboot_cont, vm) < 0)
		reboot_fail(vm, "error", "cannot send cont");
}

static void reboot_reset(struct vm *vm)
{
	loop_timer_cancel(vm->d->loop, vm->timer);
	vm->timer = NULL;
	if (vm->qmp == NULL ||
	    qmpconn_send(vm->qmp, "system_reset", NULL, -1, on_reboot_reset, vm) < 0)
		reboot_fail(vm, "error", "cannot send system_reset");
}

static void reboot_timeout(void *arg)
{
	struct vm *vm = arg;
	char why[256];

	vm->timer = NULL;
	if (vm->op != VM_OP_REBOOT)
		return;
	smig_warn("event=vm_reboot_timeout vm=%s timeout_s=%u action=none", vm->spec.name,
		  vm->op_timeout_s);
	snprintf(why, sizeof(why),
		 "the guest did not shut down within %u s (does it listen to the ACPI power "
		 "button?); it runs on: smig vm reboot %s --force resets it",
		 vm->op_timeout_s, vm->spec.name);
	reboot_fail(vm, "guest_silent", why);
}

static void on_reboot_powerdown(void *arg, const struct smig_qmp_msg *r)
{
	struct vm *vm = arg;

	if (vm->op == VM_OP_REBOOT && (r == NULL || r->kind != SMIG_QMP_RETURN))
		reboot_fail(vm, "error", r ? r->error_desc : "no answer to system_powerdown");
}

static void on_reboot_action(void *arg, const struct smig_qmp_msg *r)
{
	struct vm *vm = arg;

	if (vm->op != VM_OP_REBOOT)
		return;
	if (r == NULL || r->kind != SMIG_QMP_RETURN) {
		reboot_fail(vm, "error", r ? r->error_desc : "no answer to set-action");
		return;
	}
	if (qmpconn_send(vm->qmp, "system_powerdown", NULL, -1, on_reboot_powerdown, vm) < 0) {
		reboot_fail(vm, "error", "cannot send system_powerdown");
		return;
	}
	(void)loop_timer_add(vm->d->loop, (uint64_t)vm->op_timeout_s * 1000, reboot_timeout, vm,
			     &vm->timer);
}

/* A QMP event while a reboot runs (vm->power_ev): true when the reboot consumes it. */
static bool reboot_event(struct vm *vm, const struct smig_qmp_msg *ev)
{
	if (vm->op != VM_OP_REBOOT)
		return false;
	if (vm->mig) { /* never: migrations wait for reboots; but never reset a VM that moves */
		reboot_fail(vm, "error", "a migration took hold of the VM during its reboot");
		return false;
	}
	if (strcmp(ev->event, "GUEST_PANICKED") == 0) {
		reboot_fail(vm, "error", "the guest panicked while it rebooted");
		return false;
	}
	if (strcmp(ev->event, "SHUTDOWN") == 0) {
		/* held at its power-off (set-action): reset and go on */
		if (!vm->op_forced)
			reboot_reset(vm);
		return true;
	}
	return strcmp(ev->event, "STOP") == 0 || strcmp(ev->event, "RESUME") == 0 ||
	       strcmp(ev->event, "RESET") == 0;
}

void vm_reboot(struct smigd *d, struct vm *vm, bool force, uint32_t timeout_s,
	       struct ctl_ref *ref)
{
	const char *n = vm->spec.name;
	int rc;

	if (vm->mig || vm_migration_unfinished(vm) || !vm_state_known(vm)) {
		ctl_reply_err(d, ref, "error",
			      "%s is migrating, or a migration of it has not ended, or smigd has "
			      "not yet heard from its QEMU; reboot it once smig vm show %s says it "
			      "runs here with nothing pending",
			      n, n);
		return;
	}
	if (vm->op != VM_OP_NONE) {
		ctl_reply_err(d, ref, "error", "%s is %s already", n,
			      vm->op == VM_OP_REBOOT ? "rebooting" : "shutting down");
		return;
	}
	if (vm->state != VM_RUNNING &&
	    !(force && (vm->state == VM_PAUSED || vm->state == VM_CRASHED))) {
		if (vm->state == VM_PAUSED || vm->state == VM_CRASHED)
			ctl_reply_err(d, ref, "error",
				      "%s is %s: only a running guest shuts down by itself; smig vm "
				      "reboot %s --force resets it",
				      n, vm_state_name(vm->state), n);
		else
			ctl_reply_err(d, ref, "error", "%s is %s; only a running VM reboots", n,
				      vm_state_name(vm->state));
		return;
	}
	if (vm->qmp == NULL) {
		ctl_reply_err(d, ref, "error", "%s: no QMP connection to its QEMU", n);
		return;
	}
	take_ref(vm, ref);
	vm->op = VM_OP_REBOOT;
	vm->power_ev = reboot_event;
	vm->op_t0 = loop_now_ns();
	vm->op_timeout_s = timeout_of(vm, timeout_s);
	vm->op_forced = force;
	if (force) {
		smig_info("event=vm_reset vm=%s", n);
		reboot_reset(vm);
		return;
	}
	vm_set_state(vm, VM_RUNNING, "reboot: ACPI power button pressed; the guest has %u s",
		     vm->op_timeout_s);
	/* QEMU holds the guest at its power-off instead of exiting, for the reset */
	rc = qmpconn_send(vm->qmp, "set-action", json_pack("{s:s}", "shutdown", "pause"), -1,
			  on_reboot_action, vm);
	if (rc < 0)
		reboot_fail(vm, "error", "cannot send set-action");
}

