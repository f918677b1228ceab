/*
 * vm_int.h - what the two halves of the VM manager share: the VM record,
 * kept and looked up by vm.c, and run (processes, QMP, console) by vm_run.c.
 * Not for use outside the VM manager.
 */
#ifndef SMIGD_VM_INT_H
#define SMIGD_VM_INT_H

#include "buf.h"
#include "qmp.h"
#include "vm.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define VM_START_MS 15000
#define VM_STOP_GRACE_MS 5000
#define SERIAL_LINE_MAX 4096

struct vm {
	struct vm *next;
	struct smigd *d;
	struct smig_vmspec spec;
	enum vm_state state;
	char dir[PATH_MAX];
	uid_t uid; /* its QEMU's and swtpm's, and its gid; 0 until assigned (vm_confine.c) */
	pid_t qemu_pid;
	pid_t swtpm_pid;
	int swtpm_pidfd; /* adopted: the swtpm is not our child; its exit comes here */
	struct loop_watch *swtpm_w;
	struct qmpconn *qmp;
	int serial_fd;
	struct loop_watch *serial_w;
	struct smig_buf serial_rx;
	int console_fd;
	struct loop_timer *timer;
	uint64_t deadline;
	struct ctl_ref ref; /* the start or stop request waiting */
	bool adopted;       /* QEMU outlived an earlier smigd: not our child */
	bool adopt_checked; /* ... and QMP has said what it is doing */
	bool incoming;      /* started with -incoming defer */
	bool retire;        /* forget the VM once QEMU has exited */
	struct mig *mig;    /* the migration this VM is part of */
	vm_done_fn done;    /* start/resume completion for the migration engine */
	void *done_arg;
	char last_error[256];
	struct smig_vm_fds fds; /* opened for QEMU by vm_res_open(), closed once it runs */
	bool filtered;          /* its NIC filters are in place (vm_filter.c) */
};

/* vm_confine.c: the VM's uid and the directories it owns */
void vm_uid_load(struct vm *vm);
int vm_uid_assign(struct vm *vm);
int vm_dirs_prepare(struct vm *vm);
void vm_cgroup_name(const struct vm *vm, char *out, size_t outlen);
/* Removes the VM's cgroup once its processes are gone. */
void vm_cgroup_drop(const struct vm *vm);
bool vm_pid_is_ours(const struct vm *vm, pid_t pid);

/* vm_keys.c: the vTPM state key, opened for swtpm (created at the first start) */
int vm_tpm_key_open(struct vm *vm);

/* vm.c */
void vm_path(const struct vm *vm, const char *leaf, char *out, size_t outlen);
/* STATE_DIR/consoles/NAME.log: outlives the VM's stay on this host. */
void vm_console_path(const struct vm *vm, char *out, size_t outlen);
struct vm *vm_new(struct smigd *d, const struct smig_vmspec *spec);
/* Closes QMP, the console and the timer; the VM stays known. */
void vm_detach(struct vm *vm);
void vm_destroy(struct vm *vm);
int vm_rmtree(const char *dir);

/* vm_run.c: its swtpm exited (reaped, or an adopted one's pidfd said so). */
void vm_swtpm_exited(struct vm *vm);
/* vm.c: watch an adopted VM's swtpm (pidfd), so its death is noticed. */
void vm_swtpm_unwatch(struct vm *vm);

/* A migration holds the VM, or a commit of it is unconfirmed (commit.pending). */
bool vm_migration_unfinished(const struct vm *vm);
/* With commit.pending: asks its destination where the VM runs (gone: no copy here). */
bool vm_resolve_pending(struct vm *vm, bool gone);

/* vm_run.c */
void vm_on_qmp_state(void *arg, bool ok, const char *why);
void vm_on_qmp_event(void *arg, const struct smig_qmp_msg *ev);

#endif
