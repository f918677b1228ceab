/*
 * vm_fence.c - a VM runs here only while this host holds its owner record
 * under a sound lease (store.backend etcd). One rule, looked at every
 * 200 ms for every VM whose QEMU runs here and that is in no migration:
 *
 *  - it may run only if its record was claimed under the lease this host
 *    holds now, and that lease is sound (more than a third of its TTL left,
 *    by this host's clock counted from before the renewal was asked: never
 *    later than etcd's). Otherwise it is paused (QMP stop), again if
 *    anything resumed it meanwhile (smig vm resume, an adoption, QEMU);
 *  - with a sound lease, a VM not claimed under it is claimed (from the
 *    host it came from, if it arrived by migration), at most every third of
 *    a TTL while the store does not answer;
 *  - one that was paused here for this and is claimed is resumed; one
 *    another host owns stays paused, and says so (fence_lost), until its
 *    operator stops it.
 *
 * In the grace after smigd starts (no lease yet, a third of a TTL) nothing
 * is paused: a restarted smigd's VMs run on while it takes over their
 * records. A VM in a migration is left to the migration, but for one
 * thing: a guest that runs (a source's before the switch-over, a
 * destination's in its watch) is paused when the lease is not sound (a
 * source's migration cannot commit then: its handover needs the store).
 * At the switch-over the record goes to the destination (store_handover);
 * should the VM run here again after that, it is taken back first, and
 * only if it still carries that migration's mark.
 */
#include "vm/vm_int.h"
#include "error.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FENCE_TICK_MS 200

static void on_fence_stop(void *arg, const struct smig_qmp_msg *r)
{
	struct vm *vm = arg;

	vm->fence_stopping = false;
	if (r == NULL || r->kind != SMIG_QMP_RETURN)
		smig_err("event=vm_fence_failed vm=%s reason=\"%s\" action=retry", vm->spec.name,
			 r ? r->error_desc : "QMP went away");
}

/* Pauses vm: it may not run here now. */
static void fence(struct vm *vm, const char *why, uint64_t left_ms)
{
	if (vm->fence_stopping)
		return;
	if (!vm->fenced)
		smig_warn("event=vm_fenced vm=%s lease_left_ms=%llu reason=\"%s\"", vm->spec.name,
			  (unsigned long long)left_ms, why);
	vm->fenced = true;
	if (vm->qmp == NULL)
		return; /* QMP is not up yet: the next tick */
	vm->fence_stopping = true;
	if (qmpconn_send(vm->qmp, "stop", NULL, -1, on_fence_stop, vm) < 0) {
		vm->fence_stopping = false;
		smig_err("event=vm_fence_failed vm=%s reason=\"cannot send stop\" action=retry",
			 vm->spec.name);
	}
}

void vm_fence_lost(struct vm *vm, const char *owner)
{
	if (!vm->fence_lost)
		smig_err("event=vm_owner_conflict vm=%s owner=%s reason=\"the fleet store says %s "
			 "owns it\" action=paused",
			 vm->spec.name, owner, owner);
	vm->fence_lost = true;
	vm_note_error(vm, "%s owns %s in the fleet store (it may run there): this copy is paused "
		      "and stays so; stop it here (smig vm stop %s --force)",
		      owner, vm->spec.name, vm->spec.name);
	if (vm->state == VM_RUNNING)
		fence(vm, "another host owns it", 0);
}

void vm_claim_set(struct vm *vm, const struct store_owner *r)
{
	vm->claim_pending = false;
	if (r->ok) {
		vm->claim_lease = r->lease;
		vm->claim_retry_ms = 0;
		vm->claim_from[0] = '\0'; /* taken back, if it had been handed: ours now */
		vm->claim_mig[0] = '\0';
		return;
	}
	if (r->answered && r->owner[0]) {
		vm_fence_lost(vm, r->owner);
		return;
	}
	/* no answer: asked again a third of a TTL later */
	vm->claim_retry_ms = loop_now_ms() + (uint64_t)vm->d->cfg.store_lease_ttl_s * 1000 / 3;
}

void vm_claim_handed(struct vm *vm, const char *host, const char *mig)
{
	snprintf(vm->claim_from, sizeof(vm->claim_from), "%s", host);
	snprintf(vm->claim_mig, sizeof(vm->claim_mig), "%s", mig);
	vm->claim_lease = 0;
	vm->claim_retry_ms = 0;
	vm->fenced = true; /* should it run here again: only once its record is back */
}

void vm_claim_arrived(struct vm *vm)
{
	vm->claim_pending = true;
	vm->claim_grace_ms = loop_now_ms() + (uint64_t)vm->d->cfg.store_lease_ttl_s * 1000 / 3;
}

static void on_unfence_cont(void *arg, const struct smig_qmp_msg *r)
{
	struct vm *vm = arg;

	vm->fence_resuming = false;
	if (r == NULL || r->kind != SMIG_QMP_RETURN) {
		smig_err("event=vm_unfence_failed vm=%s reason=\"%s\" action=retry", vm->spec.name,
			 r ? r->error_desc : "QMP went away");
		return;
	}
	vm->fenced = false;
	if (strncmp(vm->last_error, "fenced", 6) == 0)
		vm->last_error[0] = '\0';
	smig_info("event=vm_unfenced vm=%s", vm->spec.name);
}

/* The store's answer to a claim the rule made. */
static void rule_claimed(struct smigd *d, const char *name, const struct store_owner *r)
{
	struct vm *vm = vm_find(d, name);

	if (vm == NULL) {
		if (r->ok) /* undefined meanwhile */
			(void)store_release(d, name, NULL, NULL, NULL);
		return;
	}
	vm_claim_set(vm, r);
}

/* Whether the rule looks after vm now. */
static bool in_scope(const struct vm *vm)
{
	return vm->qemu_pid > 0 && vm->mig == NULL && !vm->incoming && !vm->retire &&
	       (vm->state == VM_RUNNING || vm->state == VM_PAUSED);
}

/*
 * A guest that runs here while a migration holds it: a source's before the
 * switch-over, or a destination's in its watch after COMMIT.
 */
static bool migrating_out(const struct vm *vm)
{
	return vm->qemu_pid > 0 && vm->mig != NULL && !vm->incoming && !vm->retire &&
	       vm->state == VM_RUNNING;
}

/* What this host offers VMs goes into its record in the store (placement reads it there). */
static void publish_capacity(struct smigd *d)
{
	struct store_capacity c = { 0 };
	struct vm_usage u;

	vm_res_usage(d, &u);
	c.memory_mib = u.memory_mib;
	c.memory_free_mib = u.free_memory_mib;
	c.vcpus = u.vcpus;
	c.vcpus_free = u.free_vcpus;
	for (const struct vm *vm = d->vms->head; vm; vm = vm->next)
		c.vms += vm->state == VM_RUNNING || vm->state == VM_PAUSED;
	store_set_capacity(d, &c);
}

static void fence_tick(void *arg)
{
	struct smigd *d = arg;
	uint64_t left, now = loop_now_ms();
	int64_t lease;
	enum store_lease_state st = store_lease(d, &left, &lease);

	d->vms->fence_t = NULL;
	publish_capacity(d);
	for (struct vm *vm = d->vms->head; vm; vm = vm->next) {
		bool owned;

		if (st == STORE_LEASE_UNSOUND && migrating_out(vm)) {
			/* its record may go with the lease: paused; the migration cannot commit */
			vm_note_error(vm, "fenced: this host's lease in the fleet store was not "
				      "renewed in time; paused while it migrates");
			fence(vm, "the fleet store's lease was not renewed during a migration: the VM's "
				  "owner record may go with it",
			      left);
			continue;
		}
		if (!in_scope(vm) || st == STORE_LEASE_GRACE)
			continue;
		if (st == STORE_LEASE_SOUND && vm->claim_lease != lease && !vm->claim_pending &&
		    !vm->fence_lost && now >= vm->claim_retry_ms) {
			if (vm->claim_lease == 0 && vm->claim_grace_ms == 0)
				vm->claim_grace_ms = now + (uint64_t)d->cfg.store_lease_ttl_s * 1000 / 3;
			vm->claim_pending = true;
			if (store_claim(d, vm->spec.name, vm->claim_from[0] ? vm->claim_from : NULL,
					vm->claim_mig[0] ? vm->claim_mig : NULL, rule_claimed) < 0)
				vm->claim_pending = false;
		}
		owned = st == STORE_LEASE_SOUND && vm->claim_lease == lease && !vm->fence_lost;
		/*
		 * A VM this smigd never claimed yet (adopted after a restart,
		 * arrived by migration) runs on while its first claim is out,
		 * a third of a TTL at most: its record is still under the
		 * lease it was claimed with, unless that ran out, and then the
		 * claim's answer pauses it.
		 */
		if (!owned && st == STORE_LEASE_SOUND && !vm->fence_lost && vm->claim_lease == 0 &&
		    !vm->fenced && now < vm->claim_grace_ms)
			owned = true;
		if (!owned && vm->state == VM_RUNNING) {
			vm_note_error(vm, "fenced: %s; paused until this host holds its owner record "
				      "under a sound lease again",
				      vm->fence_lost		     ? "another host owns it"
				      : st != STORE_LEASE_SOUND ? "this host's lease in the fleet store "
								   "was not renewed in time"
								 : "its owner record is being claimed");
			fence(vm,
			      st != STORE_LEASE_SOUND ? "the fleet store's lease was not renewed: the "
							"VM's owner record may go with it"
						      : "its owner record is not claimed under this lease",
			      left);
		}
		if (owned && vm->fenced && vm->state == VM_PAUSED && !vm->fence_resuming &&
		    vm->qmp) {
			vm->fence_resuming = true;
			if (qmpconn_send(vm->qmp, "cont", NULL, -1, on_unfence_cont, vm) < 0)
				vm->fence_resuming = false;
		}
	}
	(void)loop_timer_add(d->loop, FENCE_TICK_MS, fence_tick, d, &d->vms->fence_t);
}

bool vm_fence_holds(const struct vm *vm)
{
	uint64_t left;
	int64_t lease;
	enum store_lease_state st;

	if (!store_active(vm->d))
		return false;
	st = store_lease(vm->d, &left, &lease);
	return vm->fence_lost || (st == STORE_LEASE_UNSOUND) ||
	       (st == STORE_LEASE_SOUND && vm->claim_lease != lease);
}

bool vm_fence_resume_later(struct vm *vm)
{
	if (!vm_fence_holds(vm))
		return false;
	vm->fenced = true;
	smig_warn("event=vm_fenced vm=%s reason=\"it may not run here until this host holds its "
		  "owner record under a sound lease\" action=resume_when_claimed",
		  vm->spec.name);
	return true;
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
