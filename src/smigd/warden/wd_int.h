/*
 * wd_int.h - what the warden's files share: the warden itself and its VM
 * table. Only code in src/smigd/warden/ includes this; the warden runs as
 * root and never parses a peer's bytes (docs/architecture.md, "Process
 * model").
 *
 * The warden's VM record holds what root must know of a VM: its spec as
 * the warden itself parsed and saved it, its uid, its processes and
 * whether a migration brought it in and it is not committed yet. A VM's
 * runtime state (running, paused, migrating) is the worker's business.
 */
#ifndef SMIGD_WD_INT_H
#define SMIGD_WD_INT_H

#include "buf.h"
#include "config.h"
#include "warden/confine.h"
#include "common/loop.h"
#include "privmsg.h"
#include "qemucaps.h"
#include "tpmcred.h"
#include "vmcheck.h"
#include "vmspec.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define WD_START_MS 15000

struct wd_audit;
struct wd_measure;
struct wd_bans;
struct wd_hostcert;

struct wvm {
	struct wvm *next;
	struct warden *w;
	struct smig_vmspec spec;
	char dir[PATH_MAX];
	uid_t uid;      /* its processes' uid and gid; 0 until assigned */
	bool staged;    /* came in by migration, not committed (spec.staged) */
	bool retire;    /* forget it once its processes are gone (w->vm_ended) */
	bool filtered;  /* its NIC filters are applied */
	bool autostart_due; /* autostart: this is smigd's first start since the host booted */
	pid_t qemu_pid, swtpm_pid;
	uint64_t oom_seen; /* its cgroup's OOM kills already put down to a process of it */
	int qemu_pidfd, swtpm_pidfd; /* adopted (not our children): their exits come here */
	struct loop_watch *qemu_w, *swtpm_w;
	/* a start in progress: the request waiting, the descriptors QEMU inherits */
	uint32_t start_id;
	bool incoming;
	struct smig_vm_fds fds;
	struct loop_timer *timer;
	uint64_t deadline;
};

struct warden {
	struct smig_config cfg;
	struct loop *loop;
	int sig_fd;
	struct loop_watch *sig_w;
	EVP_PKEY *host_key; /* this host's certificate's key now (hostcert.c keeps it) */
	struct wd_hostcert *hostcert;
	struct smig_qemu_caps caps;
	struct confine_host confine;
	struct wd_audit *audit;
	struct wd_measure *measure;
	struct wd_bans *bans;
	struct wvm *vms;
	bool autostart_pending; /* first start since boot: the next VM_LIST says which VMs autostart */
	/*
	 * The processes of a retiring VM are all gone (launch.c says so): the
	 * table forgets it. vmtab.c sets it, so the processes' supervisor
	 * below the table never calls up into it.
	 */
	void (*vm_ended)(struct warden *w, struct wvm *v);
	/* the worker */
	uid_t worker_uid;
	gid_t worker_gid;
	int self_exe; /* this binary, for the worker's exec */
	pid_t worker_pid;
	int sock;
	struct loop_watch *sock_w;
	uint8_t *rx;
	struct smig_buf tx;
	unsigned restarts;
	uint64_t worker_started_ms;
	struct loop_timer *restart_t;
	struct loop_timer *log_t; /* log.file: the size check (logfile.c) */
	bool foreground;
	bool stopping;
	bool ready_told; /* systemd heard READY=1 (notify.c) */
	bool serve_only; /* warden_serve(): a worker that is not ours, on a socket we were given */
};

/* The VM's own directory, STATE_DIR/vms/NAME, and a file in it. */
static inline void wd_vm_path(const struct wvm *v, const char *leaf, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%s", v->dir, leaf);
}

static inline bool wd_vm_running(const struct wvm *v)
{
	return v->qemu_pid > 0;
}

/* notify.c: systemd's notification socket (Type=notify) */
enum wd_state { WD_READY, WD_RELOADING, WD_RELOADED, WD_STOPPING };
void wd_notify(struct warden *w, enum wd_state state);

/* logfile.c: log.file as the warden's and the worker's stderr, rotated by size */
int wd_log_open(struct warden *w);
void wd_log_close(struct warden *w);

/* link.c: the link to the worker */
/* Sends a message to the worker (logged and dropped when it is gone). */
void wd_send(struct warden *w, const struct smig_buf *b, const int *fds, size_t nfds);
/* A request the worker should never have sent: logged, audited, refused by the caller. */
void wd_violation(struct warden *w, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* warden.c */
/* The worker's directories below STATE_DIR (its own, and the consoles). */
int wd_worker_dirs(struct warden *w);

/* serve.c: one datagram from the worker */
void wd_serve(struct warden *w, const uint8_t *data, size_t len, const int *fds, size_t nfds);
/* Replies to the request id of type (its reply type) with a status and an error text. */
void wd_reply_status(struct warden *w, uint16_t type, uint32_t id, int status, const char *err);

/* vmtab.c: the VM table */
struct wvm *wd_vm_find(struct warden *w, const char *name);
int wd_vm_load_all(struct warden *w);
void wd_vm_free_all(struct warden *w);
int wd_vm_define(struct warden *w, const char *text, char **pinned, char *err, size_t errlen);
int wd_vm_undefine(struct warden *w, struct wvm *v, char *err, size_t errlen);
int wd_vm_stage(struct warden *w, const struct smig_pm *m, bool *hostile, char *err,
		size_t errlen);
int wd_vm_commit(struct warden *w, struct wvm *v, char *err, size_t errlen);
/* Kills its processes and removes every trace of it (now, or once they are gone). */
void wd_vm_discard(struct warden *w, struct wvm *v);
int wd_vm_retire(struct warden *w, struct wvm *v);
/* The VM table as the worker sees it (JSON text, malloc'd). */
/*
 * The VMs as the worker's VM_LIST wants them. A VM whose autostart is due
 * says so once: the flag is cleared as it is listed.
 */
char *wd_vm_list_json(struct warden *w);
/* Removes v from the table and its directory, key and cgroup from the host. */
void wd_vm_forget(struct warden *w, struct wvm *v);


/* launch.c: a VM's processes */
void wd_vm_start(struct warden *w, struct wvm *v, bool incoming, uint32_t id);
void wd_vm_kill(struct wvm *v, int sig);
/* A connected socket to one of its QEMU's sockets (SMIG_PM_SOCK_*), -1 if none. */
int wd_vm_connect(struct wvm *v, unsigned which);
/*
 * SIGCHLD: reaps children, the worker among them (true if it was). A
 * retiring VM whose processes are all gone goes to w->vm_ended.
 */
bool wd_reap(struct warden *w, pid_t worker, int *worker_status);
/* Watches an adopted QEMU or swtpm (not our child) through a pidfd. */
void wd_vm_watch(struct wvm *v, bool swtpm);
void wd_vm_unwatch(struct wvm *v);

/* resources.c: the catalogue's names, descriptors for QEMU */
void wd_fds_init(struct smig_vm_fds *f);
void wd_fds_close(struct smig_vm_fds *f);
int wd_res_pin(struct warden *w, struct smig_vmspec *s, char *err, size_t errlen);
int wd_res_check(struct warden *w, const struct smig_vmspec *s, enum smig_check_mode mode,
		 bool *hostile, char *err, size_t errlen);
int wd_res_open(struct warden *w, const struct smig_vmspec *s, struct smig_vm_fds *f,
		bool *hostile, char *err, size_t errlen);
/* Refuses s when a writable volume of it belongs to another VM known here. */
int wd_res_claim(struct warden *w, const struct smig_vmspec *s, char *err, size_t errlen);
void wd_res_tap_name(const char *host, const struct smig_vmspec *s, size_t i, char *out,
		     size_t outlen);
struct wd_fw_build {
	uint8_t sha256[32];
	uint64_t size;
};
int wd_fw_host(struct warden *w, const char *fw_name, struct wd_fw_build *b, char *err,
	       size_t errlen);
int wd_fw_accept(struct warden *w, const struct smig_vmspec *s, const struct wd_fw_build *b,
		 char *err, size_t errlen);
int wd_fw_build_get(struct wvm *v, struct wd_fw_build *b, char *err, size_t errlen);
void wd_fw_build_set(struct wvm *v, const struct wd_fw_build *b);

/* filter.c: nftables NIC filters */
bool wd_filter_wanted(const struct smig_vmspec *s);
int wd_filter_apply(struct warden *w, const struct smig_vmspec *s, char *err, size_t errlen);
void wd_filter_remove(struct warden *w, const struct smig_vmspec *s);

/* vmconfine.c: the VM's uid, directories and cgroup */
void wd_cgroup_name(const struct wvm *v, char *out, size_t outlen);
void wd_cgroup_drop(const struct wvm *v);
void wd_uid_load(struct wvm *v);
int wd_uid_assign(struct wvm *v);
int wd_dirs_prepare(struct wvm *v);
bool wd_pid_is_ours(const struct wvm *v, pid_t pid);

/* keys.c: vTPM state keys */
int wd_tpm_key_set(struct warden *w, const char *vm, const uint8_t *key, size_t len);
int wd_tpm_key_get(struct warden *w, const char *vm, uint8_t *key, size_t len);
int wd_tpm_key_open(struct wvm *v);
void wd_tpm_key_wipe(struct warden *w, const char *vm);

/* bans.c: banned addresses in nftables (firewall.nftables) */
int wd_bans_open(struct warden *w);
void wd_bans_close(struct warden *w);
int wd_ban(struct warden *w, const char *addr, int64_t ms);
int wd_unban(struct warden *w, const char *addr);

/* audit.c: the audit log */
int wd_audit_open(struct warden *w);
void wd_audit_close(struct warden *w);
/* Appends a record; *line (malloc'd, may be NULL) is what was written. */
bool wd_audit_write(struct warden *w, const char *actor, const char *action,
		    const char *target, const char *decision, const char *rule,
		    const char *outcome, const char *detail, char **line);
bool wd_audit_writable(struct warden *w);
/*
 * The host key changes from old_key to new_key (w->host_key is new_key
 * already, for the head): the key change's records; false, the chain as
 * it was, if they could not be written.
 */
bool wd_audit_rekey(struct warden *w, EVP_PKEY *old_key, EVP_PKEY *new_key);

/* hostcert.c: this host's certificate and key, renewed while smigd runs */
/* Loads the key (w->host_key) and starts looking at the files for a change. */
int wd_hostcert_open(struct warden *w);
void wd_hostcert_close(struct warden *w);
/* A host table's text (a reload's): this host's certificates in it, if it parses. */
void wd_hostcert_table(struct warden *w, const char *name, const char *text);
/*
 * Reads tls.ca, tls.cert and tls.key again (why: "sighup", "files_changed")
 * and takes a new pair that passes every check, sending it to the worker;
 * otherwise keeps the old one and logs why. 0 or the failure's code.
 */
int wd_hostcert_reload(struct warden *w, const char *why);
/* The key of the certificate with fingerprint fp: the current one or the one before; or NULL. */
EVP_PKEY *wd_hostcert_key_for(struct warden *w, const uint8_t *fp);

/* measure.c: this host's measurement, its TPM, its evidence */
int wd_measure_open(struct warden *w);
void wd_measure_close(struct warden *w);
/* Sends the last measurement to the worker (after its start). */
void wd_measure_send(struct warden *w);
/* The logs that go with one evidence: a memory file (-1: none), boot log then IMA list. */
struct wd_logs {
	int fd;
	size_t boot_len, ima_len;
};
/* The answer to request id: evidence text (rc 0) and its logs, or rc < 0 and err. */
typedef void (*wd_evidence_fn)(struct warden *w, uint32_t id, int rc, const char *err,
			       const char *text, struct wd_logs *logs);
/*
 * Evidence signed by the key of the certificate own_fp (the session's, on
 * our side), with a quote when the host has a TPM: done is called once,
 * from the loop when the TPM answers (at once without a TPM).
 */
void wd_evidence(struct warden *w, uint32_t id, const uint8_t *nonce, const uint8_t *binding,
		 uint64_t free_mib, const uint8_t *own_fp, bool maintenance, wd_evidence_fn done);
/* smigd --measure: prints this host's measurement for the IVT. */
int wd_measure_print(const struct smig_config *cfg);
/* Writes a new IVT (checked first) and tells the worker. */
int wd_ivt_write(struct warden *w, const char *text, char *err, size_t errlen);
/* Measures now and tells the worker (after a reload). */
void wd_measure_now(struct warden *w);
/*
 * TPM2_ActivateCredential with the host TPM's AK and EK; blob and secret
 * in hex (tpmcred.h). done is called once, from the loop (at once on an
 * error before the TPM), with the credential when rc is 0.
 */
typedef void (*wd_activate_fn)(struct warden *w, uint32_t id, int rc, const char *err,
			       const uint8_t *cred);
void wd_tpm_activate(struct warden *w, uint32_t id, const char *blob_hex,
		     const char *secret_hex, wd_activate_fn done);
/* The IVT's text as on disk ("" without one), for the worker. */
char *wd_ivt_text(struct warden *w);

#endif
