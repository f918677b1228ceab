/*
 * vm.h - the worker's VM manager: each VM is a QEMU process (and a swtpm
 * when it has a vTPM) that the warden starts from the spec it holds; the
 * worker keeps the VM's state (defined, starting, running, ...), talks to
 * its QEMU over QMP and reads its serial console, through sockets the
 * warden connects for it, and hears of its processes' exits from the
 * warden (EV_VM_EXIT).
 *
 * The warden's files of a VM are STATE_DIR/vms/NAME/ (spec, sockets,
 * logs, the directories the VM's uid owns) and its vTPM key. The worker's
 * own are STATE_DIR/worker/vms/NAME/ (commit.pending, incoming.id) and the
 * console log, every serial line prefixed with the host's clock in ms,
 * STATE_DIR/consoles/NAME.log.
 */
#ifndef SMIGD_VM_H
#define SMIGD_VM_H

#include "vm/agent.h"
#include "vm/qmpconn.h"
#include "core/smigd.h"
#include "privmsg.h"
#include "vmcheck.h"
#include "vmspec.h"

#include <sys/types.h>

struct mig;
struct vm;

/*
 * What a VM's migration hears from the VM part: the migration engine
 * above hands its callbacks over (vm_set_mig_ops), so this part never
 * calls it by name.
 */
struct vm_mig_ops {
	/* QMP events of a VM a migration holds (MIGRATION, STOP, RESUME, ...) */
	void (*event)(struct mig *m, const struct smig_qmp_msg *ev);
	/* that VM's QEMU is gone */
	void (*exited)(struct mig *m, const char *why); /* why: "QEMU exited (status 1)" */
	/* what vm show says of the migration */
	json_t *(*json)(const struct mig *m);
	/*
	 * After a restart: vm's records say COMMIT of migration id went to host
	 * unconfirmed; gone: its QEMU here is dead or not paused. The engine
	 * keeps it paused and asks host how it ended.
	 */
	int (*resolve)(struct smigd *d, struct vm *vm, const struct smig_mig_id *id,
		       const char *host, bool gone);
};

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

int vm_init(struct smigd *d);
void vm_set_mig_ops(struct smigd *d, const struct vm_mig_ops *ops);
const char *vm_state_name(enum vm_state s);
struct vm *vm_find(struct smigd *d, const char *name);
/* The first VM of the registry, and the one after vm, or NULL. */
struct vm *vm_first(struct smigd *d);
struct vm *vm_next(const struct vm *vm);
const struct smig_vmspec *vm_spec(const struct vm *vm);
enum vm_state vm_state(const struct vm *vm);
json_t *vm_json(const struct vm *vm);

/* Loads the VMs defined in the state directory at start-up. */
int vm_load_all(struct smigd *d);
void vm_free_all(struct smigd *d);
/*
 * Defines a VM from a spec (saved to disk), or gives one this host has a
 * new spec (changed: the keys that changed, "" for none); err says why
 * not. What the new spec leaves unset keeps its pinned value; a VM that
 * runs may change only autostart and shutdown_timeout_s.
 */
int vm_define(struct smigd *d, const struct smig_vmspec *spec, char *changed, size_t changedlen,
	      char *err, size_t errlen);
int vm_undefine(struct smigd *d, struct vm *vm, char *err, size_t errlen);

/* Starts a VM; the reply goes to ref when it runs or has failed. */
void vm_start(struct smigd *d, struct vm *vm, struct ctl_ref *ref);
/*
 * Stops a VM: its guest is asked to power off (ACPI power button) and has
 * timeout_s (0: its spec's shutdown_timeout_s) to do so; then, or at once
 * when force is set or there is no running guest to ask, QMP quit and
 * SIGKILL after a grace period. The reply waits for QEMU's exit.
 */
void vm_stop(struct smigd *d, struct vm *vm, bool force, uint32_t timeout_s, struct ctl_ref *ref);
/*
 * Reboots a running VM: its guest shuts down (ACPI power button; QEMU
 * holds it at the power-off) and is reset and continued in the same QEMU;
 * force resets it at once (QMP system_reset). The reply waits for the
 * guest to run again, or says it did not shut down in time (it runs on).
 */
void vm_reboot(struct smigd *d, struct vm *vm, bool force, uint32_t timeout_s,
	       struct ctl_ref *ref);
/* Starts an autostart VM at smigd's first start since the host booted (vm_load_all). */
void vm_autostart(struct vm *vm);
/* The warden's EV_VM_EXIT: one of a VM's processes ended (priv.h handler; arg is d). */
void vm_on_exit(void *arg, const struct smig_pm *ev);

/* --- for the migration engine --- */
struct qmpconn;
typedef void (*vm_done_fn)(void *arg, bool ok, const char *why);

struct qmpconn *vm_qmp(struct vm *vm);
/* The VM's QEMU process exists and is not a zombie (smigd may not have reaped it yet). */
bool vm_qemu_alive(const struct vm *vm);
/* Its QEMU's process id (the warden's word), 0 when it has none. */
pid_t vm_qemu_pid(const struct vm *vm);
/* False while an adopted QEMU has not yet said what it is doing (after a restart). */
bool vm_state_known(const struct vm *vm);
/* Migration events (MIGRATION, STOP, RESUME) of vm go to m while set. */
void vm_set_mig(struct vm *vm, struct mig *m);
struct mig *vm_mig(const struct vm *vm);
struct vm_fw_build;
/*
 * An incoming VM from a peer's spec, staged by the warden (which checks
 * it against its catalogue: *hostile when a name looked like an escape or
 * a writable volume is another VM's) with its vTPM key (NULL: none) and
 * the firmware build it runs (NULL: none); NULL + err and *code
 * (SMIG_EEXIST for a name taken here) when refused.
 */
struct vm *vm_new_incoming(struct smigd *d, const struct smig_vmspec *spec, const char *source,
			   const uint8_t *tpm_key, const struct vm_fw_build *fw, bool *hostile,
			   int *code, char *err, size_t errlen);
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
/*
 * The unconfirmed commit of an outgoing migration (commit.pending in the
 * VM's directory): marked before COMMIT goes out, cleared once the
 * destination's answer is known. While it is there the copy here must not
 * run: the destination may be running the VM.
 */
int vm_commit_mark(struct vm *vm, const struct smig_mig_id *id, const char *host);
bool vm_commit_pending(const struct vm *vm, struct smig_mig_id *id, char *host,
		       size_t hostlen);
/*
 * The outgoing mark (outgoing in the VM's directory, written and synced
 * before PREPARE goes out, so before any switch-over): a migration of the
 * VM to host had begun. Cleared when the VM stays here; gone with the
 * VM's records when it left. After a power cut it keeps autostart from
 * starting a VM the destination may run.
 */
int vm_outgoing_mark(struct vm *vm, const char *host);
bool vm_outgoing(const struct vm *vm, char *host, size_t hostlen);
void vm_outgoing_clear(struct vm *vm);
/* A stop or reboot of the guest is in progress (no migration may begin). */
bool vm_power_busy(const struct vm *vm);
void vm_commit_clear(struct vm *vm);
/* Destination: the migration that brought vm here (incoming.id), and whether its guest ran here. */
int vm_incoming_mark(struct vm *vm, const struct smig_mig_id *id, const char *source,
		     bool resumed);
int vm_incoming_get(const struct vm *vm, struct smig_mig_id *id, char src[SMIG_NAME_MAX + 1],
		    bool *resumed);
/* Reads the vTPM state key of a VM for the peer (from the warden); 0 or a negative code. */
int vm_get_tpm_key(struct vm *vm, uint8_t *key, size_t len);
/*
 * Pings vm's guest agent (limits.agent_timeout_ms); NULL when its spec has
 * no guest_agent or out of memory.
 */
struct agent_ping *vm_agent_ping(struct vm *vm, agent_ping_fn cb, void *arg);
/* STATE_DIR/consoles/NAME.log: outlives the VM's stay on this host. */
void vm_console_path(const struct vm *vm, char *out, size_t outlen);
/* What vm show reports as the VM's last error (and a warning in the log). */
void vm_note_error(struct vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --- capacity (vm_capacity.c): what VMs hold of this host, admission control --- */
struct vm_usage {
	uint64_t memory_mib, vcpus; /* offered, after overcommit */
	uint64_t used_memory_mib, used_vcpus;         /* VMs that run here */
	uint64_t reserved_memory_mib, reserved_vcpus; /* incoming, not yet committed */
	uint64_t free_memory_mib, free_vcpus;         /* offered less used and reserved (0 at least) */
};

/* What the host offers VMs (the configured capacity, or what it has); at start. */
void vm_capacity_init(struct smigd *d);
void vm_res_usage(struct smigd *d, struct vm_usage *u);
/* What admission control would let a new VM have here, not what the kernel has free. */
uint64_t vm_free_mib(struct smigd *d);
/* 0 when s fits in what is free now, else SMIG_ECAPACITY with the figures in err. */
int vm_res_admit(struct smigd *d, const struct smig_vmspec *s, char *err, size_t errlen);
/*
 * Holds memory_mib and vcpus for VM vm that host from means to send here
 * (peer RESERVE), for ttl_s: it counts as reserved until from's PREPARE of
 * that VM takes it (vm_res_release), from lets it go, or the time is up. A
 * new hold of the same VM replaces the old. SMIG_ECAPACITY with the
 * figures when it does not fit; SMIG_EBUSY beyond VM_HOLDS_PER_HOST.
 */
#define VM_HOLDS_PER_HOST 64
int vm_res_hold(struct smigd *d, const char *from, const char *vm, uint32_t memory_mib,
		uint32_t vcpus, unsigned ttl_s, char *err, size_t errlen);
/* Lets from's hold for vm go; true if there was one. */
bool vm_res_release(struct smigd *d, const char *from, const char *vm);
json_t *vm_res_capacity_json(struct smigd *d);
/* A UEFI VM's firmware build: SHA-256 and size of the code image it booted. */
struct vm_fw_build {
	uint8_t sha256[32];
	uint64_t size;
};
/* The build the VM runs, as the warden keeps it (this host's, if none was kept). */
int vm_fw_build_get(struct vm *vm, struct vm_fw_build *b, char *err, size_t errlen);

/* --- protections (what a host enforces for a VM; MIG_READY) --- */
bool vm_filter_wanted(const struct smig_vmspec *s);
/* What the VM manager enforces for vm now (SMIG_PROT_*, msg.h; not the trust bit). */
uint32_t vm_protections(const struct vm *vm);
/* What vm's spec asks of any host that runs it. */
uint32_t vm_spec_protections(const struct smig_vmspec *s);

/* --- vm_fence.c: the fleet store's owner record --- */
/* Starts (after vm_init) and stops (before vm_free_all) the rule; nothing without a fleet store. */
int vm_fence_start(struct smigd *d);
void vm_fence_stop(struct smigd *d);
/*
 * The record of vm went to host with migration mig (a handover at the
 * switch-over): the copy here owns it no more. Should it run here again
 * (the migration failed before the destination ran it), it stays paused
 * until the record is taken back from host, which only a record still
 * marked with mig allows.
 */
void vm_claim_handed(struct vm *vm, const char *host, const char *mig);
/* vm arrived by migration, its record handed here: it runs on while its claim is out. */
void vm_claim_arrived(struct vm *vm);
/* Takes the store's answer to a claim of vm (its lease, or who owns it). */
void vm_claim_set(struct vm *vm, const struct store_owner *r);
/* Whether vm may not run here now: its owner record is not this host's under a sound lease. */
bool vm_fence_holds(const struct vm *vm);
/*
 * Whether vm may not run here now; if so it is marked fenced, and the rule
 * resumes it once it holds its record again (a failed migration's source
 * asks this instead of resuming it itself).
 */
bool vm_fence_resume_later(struct vm *vm);

#endif
