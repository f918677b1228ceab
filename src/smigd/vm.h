/*
 * vm.h - the VM manager: each VM is a QEMU process (and a swtpm when it has
 * a vTPM) that smigd starts from a validated spec, talks to over QMP,
 * watches through its serial console, and reaps.
 *
 * On disk, STATE_DIR/vms/NAME/ holds spec.json, the sockets (qmp, serial,
 * swtpm), tpm/ (the vTPM state, encrypted at rest with tpm.key), qemu.log,
 * and console.log: every serial line prefixed with the host's clock in ms.
 */
#ifndef SMIGD_VM_H
#define SMIGD_VM_H

#include "smigd.h"
#include "vmspec.h"

#include <sys/types.h>

enum vm_state {
	VM_DEFINED,  /* known, no process */
	VM_STARTING, /* processes starting */
	VM_RUNNING,
	VM_PAUSED,
	VM_INCOMING, /* destination of a migration, not yet committed */
	VM_STOPPING,
	VM_SHUTOFF,  /* process gone */
};

struct vm;

const char *vm_state_name(enum vm_state s);
struct vm *vm_find(struct smigd *d, const char *name);
const struct smig_vmspec *vm_spec(const struct vm *vm);
enum vm_state vm_state(const struct vm *vm);
json_t *vm_json(const struct vm *vm);

/* Loads the VMs defined in the state directory at start-up. */
int vm_load_all(struct smigd *d);
void vm_free_all(struct smigd *d);
/* Defines a VM from a spec (saved to disk); err says why not. */
int vm_define(struct smigd *d, const struct smig_vmspec *spec, char *err, size_t errlen);
int vm_undefine(struct smigd *d, struct vm *vm, char *err, size_t errlen);

/* Starts a VM; the reply goes to ref when it runs or has failed. */
void vm_start(struct smigd *d, struct vm *vm, struct ctl_ref *ref);
/* Stops a VM (QMP quit, then SIGKILL after a grace period). */
void vm_stop(struct smigd *d, struct vm *vm, struct ctl_ref *ref);
/* Reaps exited children (SIGCHLD). */
void vm_reap(struct smigd *d);

/* Control commands of the vm family (control.c dispatches to these). */
void vm_cmd(struct smigd *d, const char *sub, const json_t *args, struct ctl_ref *ref);

#endif
