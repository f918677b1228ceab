/*
 * vm.h - the VM manager: each VM is a QEMU process (and a swtpm when it has
 * a vTPM) that smigd starts from a validated spec, talks to over QMP,
 * watches through its serial console, and reaps.
 *
 * On disk, STATE_DIR/vms/NAME/ holds spec.json, smigd's sockets to QEMU
 * (qmp, serial, agent), the pids smigd recorded, the VM's uid, qemu.log
 * and swtpm.log, and the two directories the VM's uid owns: run/ (QEMU's
 * pid file, swtpm's socket) and tpm/ (the vTPM state, encrypted at rest
 * with a key kept in STATE_DIR/vtpm-keys). The console log, every serial
 * line prefixed with the host's clock in ms, is STATE_DIR/consoles/NAME.log.
 */
#ifndef SMIGD_VM_H
#define SMIGD_VM_H

#include "agent.h"
#include "smigd.h"
#include "vmcheck.h"
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
	VM_CRASHED,  /* the guest panicked (pvpanic); QEMU holds it paused for inspection */
};

struct vm;

const char *vm_state_name(enum vm_state s);
struct vm *vm_find(struct smigd *d, const char *name);
/* The VM after vm in the registry (d->vms is the first), or NULL. */
struct vm *vm_next(const struct vm *vm);
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

/* --- for the migration engine (migrate.c) --- */
struct mig;
struct qmpconn;
typedef void (*vm_done_fn)(void *arg, bool ok, const char *why);

struct qmpconn *vm_qmp(struct vm *vm);
/* The VM's QEMU process exists and is not a zombie (smigd may not have reaped it yet). */
bool vm_qemu_alive(const struct vm *vm);
/* False while an adopted QEMU has not yet said what it is doing (after a restart). */
bool vm_state_known(const struct vm *vm);
/* Migration events (MIGRATION, STOP, RESUME) of vm go to m while set. */
void vm_set_mig(struct vm *vm, struct mig *m);
struct mig *vm_mig(const struct vm *vm);
/* Defines an incoming VM (not yet listed as running here) from a peer's spec. */
struct vm *vm_new_incoming(struct smigd *d, const struct smig_vmspec *spec, char *err,
			   size_t errlen);
/* Starts it with -incoming defer; done(ok) once QMP and the console are up. */
void vm_start_incoming(struct vm *vm, vm_done_fn done, void *arg);
/* The committed incoming VM: cont, then done(ok) once it runs. */
void vm_resume(struct vm *vm, vm_done_fn done, void *arg);
/* Kills an incoming VM and removes every trace of it (abort). */
void vm_discard(struct vm *vm);
/* The source after commit: quit QEMU, wipe the vTPM state, forget the VM. */
void vm_retire(struct vm *vm);
/* After commit on the destination: the VM is ours; save its spec. */
void vm_adopt_incoming(struct vm *vm);
/* Writes the vTPM state key (from the peer) for an incoming VM. */
int vm_set_tpm_key(struct vm *vm, const uint8_t *key, size_t len);
/*
 * The unconfirmed commit of an outgoing migration (commit.pending in the
 * VM's directory): marked before COMMIT goes out, cleared once the
 * destination's answer is known. While it is there the copy here must not
 * run: the destination may be running the VM.
 */
int vm_commit_mark(struct vm *vm, uint64_t id, const char *host);
bool vm_commit_pending(const struct vm *vm, uint64_t *id, char *host, size_t hostlen);
void vm_commit_clear(struct vm *vm);
/* Destination: the migration that brought vm here (incoming.id), and whether its guest ran here. */
int vm_incoming_mark(struct vm *vm, uint64_t id, const char *source, bool resumed);
int vm_incoming_get(const struct vm *vm, uint64_t *id, char src[SMIG_NAME_MAX + 1],
		    bool *resumed);
/* Reads the vTPM state key of a VM for the peer; 0 or a negative code. */
int vm_get_tpm_key(struct vm *vm, uint8_t *key, size_t len);
/* Overwrites, syncs and unlinks the vTPM state key of VM name (it left or is gone). */
void vm_tpm_key_wipe(struct smigd *d, const char *name);
/*
 * Pings vm's guest agent (limits.agent_timeout_ms); NULL when its spec has
 * no guest_agent or out of memory.
 */
struct agent_ping *vm_agent_ping(struct vm *vm, agent_ping_fn cb, void *arg);
/* What vm show reports as the VM's last error (and a warning in the log). */
void vm_note_error(struct vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --- resources (vm_res.c): the catalogue's names, descriptors for QEMU, capacity --- */
struct vm_usage {
	uint64_t memory_mib, vcpus; /* offered, after overcommit */
	uint64_t used_memory_mib, used_vcpus;         /* VMs that run here */
	uint64_t reserved_memory_mib, reserved_vcpus; /* incoming, not yet committed */
};

/* Pins what define fixes for life: machine type (versioned), CPU model, NIC MACs. */
int vm_res_pin(struct smigd *d, struct smig_vmspec *s, char *err, size_t errlen);
/*
 * Checks s against this host's catalogue and QEMU, and opens (then closes)
 * every volume as a start would; *hostile when a name or file looked like
 * an escape from a pool.
 */
int vm_res_check(struct smigd *d, const struct smig_vmspec *s, enum smig_check_mode mode,
		 bool *hostile, char *err, size_t errlen);
/* Opens what QEMU gets for s (volumes, firmware, taps); vm_res_close() after the exec. */
int vm_res_open(struct smigd *d, const struct smig_vmspec *s, struct smig_vm_fds *f,
		bool *hostile, char *err, size_t errlen);
void vm_res_fds_init(struct smig_vm_fds *f);
void vm_res_close(struct smig_vm_fds *f);
void vm_res_usage(struct smigd *d, struct vm_usage *u);
/* 0 when s fits in what is free now, else SMIG_ECAPACITY with the figures in err. */
int vm_res_admit(struct smigd *d, const struct smig_vmspec *s, char *err, size_t errlen);
json_t *vm_res_capacity_json(struct smigd *d);
/* A UEFI VM's firmware build: SHA-256 and size of the code image it booted. */
struct vm_fw_build {
	uint8_t sha256[32];
	uint64_t size;
};
/* This host's build of firmware fw_name (its catalogue's code image). */
int vm_res_fw_host(struct smigd *d, const char *fw_name, struct vm_fw_build *b, char *err,
		   size_t errlen);
/* 0 when this host takes a VM of spec s running build b; else why not in err. */
int vm_res_fw_accept(struct smigd *d, const struct smig_vmspec *s, const struct vm_fw_build *b,
		     char *err, size_t errlen);
/* The build the VM runs, kept in its directory (this host's, if none was kept). */
int vm_fw_build_get(struct vm *vm, struct vm_fw_build *b, char *err, size_t errlen);
void vm_fw_build_set(struct vm *vm, const struct vm_fw_build *b);
/* The tap of NIC i of s on this host: "smig" + 8 hex + "n" + i (unique per host and VM). */
void vm_res_tap_name(const struct smigd *d, const struct smig_vmspec *s, size_t i, char *out,
		     size_t outlen);

/* --- NIC filters (vm_filter.c): nftables on the VM's taps --- */
bool vm_filter_wanted(const struct smig_vmspec *s);
/* Applies s's NIC filters (one nftables table for the VM); err says why not. */
int vm_filter_apply(struct smigd *d, const struct smig_vmspec *s, char *err, size_t errlen);
void vm_filter_remove(struct smigd *d, const struct smig_vmspec *s);
/* What the VM manager enforces for vm now (SMIG_PROT_*, msg.h; not the trust bit). */
uint32_t vm_protections(const struct vm *vm);
/* What vm's spec asks of any host that runs it. */
uint32_t vm_spec_protections(const struct smig_vmspec *s);

/* Control commands of the vm family (control.c dispatches to these). */
void vm_cmd(struct smigd *d, const char *sub, const json_t *args, struct ctl_ref *ref);

#endif
