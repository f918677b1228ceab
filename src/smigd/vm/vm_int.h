/*
 * vm_int.h - what the parts of the worker's VM manager share: the VM
 * record, kept and looked up by vm.c, and run (QMP, console, the warden's
 * starts and exits) by vm_run.c. Not for use outside the VM manager.
 */
#ifndef SMIGD_VM_INT_H
#define SMIGD_VM_INT_H

#include "buf.h"
#include "qmp.h"
#include "vm/vm.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define VM_START_MS 15000
#define VM_STOP_GRACE_MS 5000
#define SERIAL_LINE_MAX 4096
#define VM_HISTORY_MAX 24 /* state changes vm show lists, oldest first */
#define VM_WHY_MAX 160

/* What vm show's history holds: a state the VM entered, when and why. */
struct vm_event {
	int64_t at_ms; /* the host's clock (CLOCK_REALTIME) */
	enum vm_state state;
	char why[VM_WHY_MAX];
};

/* A guest's power operation in progress (vm stop, vm reboot). */
enum vm_op {
	VM_OP_NONE,
	VM_OP_SHUTDOWN, /* ACPI power button pressed; quit when the time is up */
	VM_OP_REBOOT,   /* QEMU pauses at the guest's power-off; reset and cont then */
};

/* The VM part's state: the registry, and the migration engine's callbacks. */
struct vms {
	struct vm *head;
	struct vm_mig_ops ops;
	struct vm_hold *holds; /* capacity held for sources ahead of their PREPARE */
	struct loop_timer *fence_t; /* vm_fence.c's look at the fleet store's lease */
};

/* Capacity a source holds here for a VM it means to send (vm_res_hold). */
struct vm_hold {
	struct vm_hold *next;
	char from[SMIG_NAME_MAX + 1];
	char vm[SMIG_NAME_MAX + 1];
	uint32_t memory_mib, vcpus;
	uint64_t until_ms;
};

struct vm {
	struct vm *next;
	struct smigd *d;
	struct smig_vmspec spec; /* as the warden pinned and saved it */
	enum vm_state state;
	char dir[PATH_MAX]; /* the worker's records: STATE_DIR/worker/vms/NAME */
	uid_t uid;          /* its processes' uid (the warden's choice; shown) */
	pid_t qemu_pid;
	pid_t swtpm_pid;
	struct qmpconn *qmp;
	int serial_fd;
	struct loop_watch *serial_w;
	struct smig_buf serial_rx;
	int console_fd;
	struct loop_timer *timer;
	uint64_t deadline;
	struct ctl_ref ref; /* the start or stop request waiting */
	bool adopted;       /* QEMU outlived an earlier worker: its state comes from QMP */
	bool adopt_checked; /* ... and QMP has said what it is doing */
	bool incoming;      /* staged by the warden, started with -incoming defer */
	bool retire;        /* forget the VM once QEMU has exited */
	bool claiming;      /* a start waits for the fleet store's word that it is ours */
	/* the fleet store's owner record (vm_fence.c) */
	int64_t claim_lease;     /* the lease it was claimed under (0: not claimed) */
	bool claim_pending;      /* a claim is with the store */
	uint64_t claim_retry_ms; /* no answer: not asked again before this */
	uint64_t claim_grace_ms; /* never claimed by this smigd: runs on until then */
	char claim_from[SMIG_NAME_MAX + 1]; /* a host its record may be taken back from */
	char claim_mig[SMIG_MIG_ID_STR_LEN]; /* ... only if that migration handed it there */
	bool fenced;             /* paused here: it may not run without its record */
	bool fence_stopping, fence_resuming; /* a stop or cont is with QEMU */
	bool fence_lost;         /* another host owns it: stays paused */
	bool claim_autostart; /* ... an autostart's */
	bool starting;      /* a VM_START is with the warden ... */
	uint32_t start_id;  /* ... as this request */
	struct mig *mig;    /* the migration this VM is part of */
	vm_done_fn done;    /* start/resume completion for the migration engine */
	void *done_arg;
	char last_error[256];
	bool filtered;      /* its NIC filters are in place (the warden applied them) */
	bool autostart_due; /* the warden says: first start since boot, and autostart */
	enum vm_op op;      /* a power operation in progress ... */
	uint64_t op_t0;     /* ... since (loop_now_ns) */
	uint32_t op_timeout_s;
	bool op_forced;     /* the guest did not power off in time: smigd quit it */
	char exit_why[VM_WHY_MAX]; /* what the next shutoff is put down to */
	/* a reboot in progress (vm_power.c) takes the QMP events it consumes (true) */
	bool (*power_ev)(struct vm *vm, const struct smig_qmp_msg *ev);
	struct vm_event hist[VM_HISTORY_MAX]; /* a ring: hist_n entries end at hist_next */
	size_t hist_n, hist_next;
};

/* vm.c */
void vm_path(const struct vm *vm, const char *leaf, char *out, size_t outlen);
struct vm *vm_new(struct smigd *d, const struct smig_vmspec *spec);
/* Closes QMP, the console and the timer; the VM stays known. */
void vm_detach(struct vm *vm);
void vm_destroy(struct vm *vm);
/* Takes vm out of the registry and frees it, with the worker's records of it. */
void vm_forget(struct vm *vm);

/*
 * The VM enters state; why (printf) goes into its history (kept in its
 * records, STATE_DIR/worker/vms/NAME/history) and the log (event=vm_state).
 * The same state again with another why is recorded too (a redefinition).
 */
void vm_set_state(struct vm *vm, enum vm_state state, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Reads the history back from the VM's records (at load). */
void vm_history_load(struct vm *vm);
/* How long a stop or reboot waits for the guest: its spec's shutdown_timeout_s, or the default. */
uint32_t vm_shutdown_timeout(const struct vm *vm);

/* A migration holds the VM, or a commit of it is unconfirmed (commit.pending). */
bool vm_migration_unfinished(const struct vm *vm);
/* With commit.pending: asks its destination where the VM runs (gone: no copy here). */
bool vm_resolve_pending(struct vm *vm, bool gone);
/* A socket to one of the VM's QEMU sockets (SMIG_PM_SOCK_*), from the warden; -1 if none. */
int vm_connect(struct vm *vm, unsigned which);

/* vm_run.c */
/* Only the warden signals a VM's processes: SIGKILL to QEMU and swtpm. */
void vm_kill(struct vm *vm);
void vm_on_qmp_state(void *arg, bool ok, const char *why);
void vm_on_qmp_event(void *arg, const struct smig_qmp_msg *ev);
/* Reads its console from fd (taken over). */
int vm_serial_attach(struct vm *vm, int fd);
/* Its swtpm ended (the warden said so, or it was gone at load). */
void vm_swtpm_exited(struct vm *vm);

/* QMP quit (SIGKILL if QMP is gone), and SIGKILL if QEMU has not exited in VM_STOP_GRACE_MS. */
void vm_quit(struct vm *vm);
/* Seconds since the power operation in progress began. */
double vm_op_seconds(const struct vm *vm);

/* vm_fence.c: self-fencing with a fleet store */
/* Pauses vm for good: owner, another host, owns it now. */
void vm_fence_lost(struct vm *vm, const char *owner);

#endif
