/*
 * vm_fence.c - self-fencing (store.backend etcd). A VM runs here only
 * while this host holds its owner record, and the record lives only as
 * long as this host's lease. A host that cannot renew its lease cannot
 * know when etcd lets the lease go, and with it the records: another host
 * may then start the VM. So before the lease can run out (by this host's
 * clock, counted from before the renewal was asked: never later than
 * etcd's), the VMs that run here are paused: at a third of the TTL left,
 * two renewals missed. When the lease is sound again each fenced VM is
 * claimed anew and resumed only if the claim holds; one that another host
 * owns now stays paused, and says so.
 *
 * A VM in a migration is left to the migration (its commit moves the
 * record); one paused by its operator or crashed is not touched.
 */
#include "vm/vm_int.h"
#include "error.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FENCE_TICK_MS 200

static void fence_tick(void *arg);

static void on_fence_stop(void *arg, const struct smig_qmp_msg *r)
{
	struct vm *vm = arg;

	if (r == NULL || r->kind != SMIG_QMP_RETURN)
		smig_err("event=vm_fence_failed vm=%s reason=\"%s\"", vm->spec.name,
			 r ? r->error_desc : "QMP went away");
}

static void fence(struct vm *vm, uint64_t left_ms)
{
	vm->fenced = true;
	smig_warn("event=vm_fenced vm=%s lease_left_ms=%llu reason=\"the fleet store's lease was "
		  "not renewed: the VM's owner record may go with it\"",
		  vm->spec.name, (unsigned long long)left_ms);
	vm_note_error(vm, "fenced: this host could not renew its lease in the fleet store, so "
		      "another host may own %s soon; paused until the lease and the record are "
		      "this host's again",
		      vm->spec.name);
	if (vm->qmp == NULL ||
	    qmpconn_send(vm->qmp, "stop", NULL, -1, on_fence_stop, vm) < 0)
		smig_err("event=vm_fence_failed vm=%s reason=\"cannot send stop\"", vm->spec.name);
}

void vm_fence_lost(struct vm *vm, const char *owner)
{
	if (!vm->fenced && vm->state == VM_RUNNING)
		fence(vm, 0);
	vm->fenced = true;
	vm->fence_lost = true;
	vm_note_error(vm, "%s owns %s in the fleet store (it may run there): this copy is paused; "
		      "stop it here (smig vm stop %s --force)",
		      owner, vm->spec.name, vm->spec.name);
}

static void on_unfence_cont(void *arg, const struct smig_qmp_msg *r)
{
	struct vm *vm = arg;

	if (r == NULL || r->kind != SMIG_QMP_RETURN) {
		smig_err("event=vm_unfence_failed vm=%s reason=\"%s\"", vm->spec.name,
			 r ? r->error_desc : "QMP went away");
		return;
	}
	vm->last_error[0] = '\0';
	smig_info("event=vm_unfenced vm=%s", vm->spec.name);
}

/* The store's answer to a fenced VM's claim. */
static void unfence_claimed(struct smigd *d, const char *name, const struct store_owner *r)
{
	struct vm *vm = vm_find(d, name);

	if (vm == NULL || !vm->fenced)
		return;
	vm->fence_claiming = false;
	if (r->ok) {
		vm->fenced = false;
		if (vm->qmp == NULL ||
		    qmpconn_send(vm->qmp, "cont", NULL, -1, on_unfence_cont, vm) < 0)
			smig_err("event=vm_unfence_failed vm=%s reason=\"cannot send cont\"", name);
		return;
	}
	if (!r->answered)
		return; /* asked again on a later tick */
	if (!vm->fence_lost)
		smig_err("event=vm_owner_conflict vm=%s owner=%s reason=\"fenced here while %s took "
			 "it: this copy must not run\"",
			 name, r->owner, r->owner);
	vm->fence_lost = true;
	vm_note_error(vm, "fenced, and %s owns %s now (it may run there): this copy stays paused; "
		      "stop it here (smig vm stop %s --force)",
		      r->owner, name, name);
}

static void fence_tick(void *arg)
{
	struct smigd *d = arg;
	uint64_t left;
	bool sound = store_lease_sound(d, &left);

	d->vms->fence_t = NULL;
	for (struct vm *vm = d->vms->head; vm; vm = vm->next) {
		if (!sound && vm->state == VM_RUNNING && vm->mig == NULL && !vm->fenced &&
		    vm->qemu_pid > 0)
			fence(vm, left);
		else if (sound && vm->fenced && !vm->fence_claiming && !vm->fence_lost &&
			 (vm->state == VM_PAUSED || vm->state == VM_RUNNING)) {
			vm->fence_claiming = true;
			if (store_claim(d, vm->spec.name, NULL, unfence_claimed) < 0)
				vm->fence_claiming = false;
		}
	}
	(void)loop_timer_add(d->loop, FENCE_TICK_MS, fence_tick, d, &d->vms->fence_t);
}

int vm_fence_start(struct smigd *d)
{
	if (!store_active(d))
		return 0;
	return loop_timer_add(d->loop, FENCE_TICK_MS, fence_tick, d, &d->vms->fence_t);
}

void vm_fence_stop(struct smigd *d)
{
	if (d->vms && d->vms->fence_t) {
		loop_timer_cancel(d->loop, d->vms->fence_t);
		d->vms->fence_t = NULL;
	}
}
