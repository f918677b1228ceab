/*
 * testhooks.c - control commands that exist only in test builds (meson
 * -Dtest_hooks=true, as make check's sanitizer build is): they let a test
 * act from inside a confined process to prove what it cannot do. Release
 * builds have none of them, and only root may call them.
 *
 * debug.qmp {vm, command, arguments}: one QMP command to the VM's QEMU, as
 * QEMU (its uid, its sandbox, its Landlock) runs it; the reply is QMP's.
 * debug.worker {action, ...}: an attempt made by the worker itself.
 */
#include "core/smigd.h"
#include "control/testhooks.h"
#include "vm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

struct hook_req {
	struct smigd *d;
	struct ctl_ref ref;
};

static void on_qmp(void *arg, const struct smig_qmp_msg *r)
{
	struct hook_req *h = arg;

	if (r == NULL)
		ctl_reply_err(h->d, &h->ref, "error", "QEMU gave no answer");
	else if (r->kind == SMIG_QMP_RETURN)
		ctl_reply_ok(h->d, &h->ref, json_pack("{s:O}", "return", r->ret));
	else
		ctl_reply_err(h->d, &h->ref, "qmp_error", "%s: %s",
			      r->error_class ? r->error_class : "error",
			      r->error_desc ? r->error_desc : "");
	free(h);
}

void testhook_qmp(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	const char *name = json_string_value(json_object_get(args, "vm"));
	const char *cmd = json_string_value(json_object_get(args, "command"));
	json_t *cargs = json_object_get(args, "arguments");
	struct vm *vm = name ? vm_find(d, name) : NULL;
	struct hook_req *h;

	if (!ref->has_cred || ref->cred.uid != 0) {
		ctl_reply_err(d, ref, "denied", "debug.qmp: root only");
		return;
	}
	if (vm == NULL || cmd == NULL || vm_qmp(vm) == NULL) {
		ctl_reply_err(d, ref, "bad_request", "debug.qmp needs vm (a running VM) and command");
		return;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		ctl_reply_err(d, ref, "error", "out of memory");
		return;
	}
	h->d = d;
	h->ref = *ref;
	ref->id = NULL;
	ref->client_id = 0;
	if (qmpconn_send(vm_qmp(vm), cmd, cargs ? json_incref(cargs) : NULL, -1, on_qmp, h) < 0) {
		ctl_reply_err(d, &h->ref, "error", "cannot send to QEMU");
		free(h);
	}
}

/* The errno of a failed attempt, or "none" when it succeeded (it should not have). */
static json_t *attempt(const char *action, int rc, int err, const char *detail)
{
	return json_pack("{s:s,s:b,s:s,s:s}", "action", action, "denied", rc < 0, "errno",
			 rc < 0 ? strerrorname_np(err) ? strerrorname_np(err) : "?" : "none",
			 "detail", detail ? detail : "");
}

/* A VM_STAGE whose spec names another VM's volume: what a compromised worker would send. */
static json_t *forge(struct smigd *d, const char *pool, const char *volume)
{
	struct smig_pm r;
	static const uint8_t zero[32];
	char spec[512], detail[600];
	int rc;

	snprintf(spec, sizeof(spec),
		 "{\"name\": \"forged\", \"memory_mib\": 32, \"machine\": \"pc-i440fx-7.2\", "
		 "\"cpu\": \"qemu64\", "
		 "\"disks\": [{\"pool\": \"%s\", \"volume\": \"%s\"}]}", pool, volume);
	rc = priv_call(d->priv, &r, SMIG_PM_VM_STAGE, spec, d->cfg.host, zero, 0, zero,
		       (uint64_t)0);
	if (rc == 0)
		rc = priv_status(&r);
	snprintf(detail, sizeof(detail), "%s", rc < 0 ? smig_pm_str(&r, 1) : "staged");
	if (rc == 0)
		(void)priv_call(d->priv, &r, SMIG_PM_VM_DISCARD, "forged");
	return attempt("forge", rc, EPERM, detail);
}

/* An AUDIT request for a record only the warden writes (a rotation, a checkpoint). */
static json_t *forge_audit(struct smigd *d, const char *action)
{
	struct smig_pm r;
	int rc = priv_call(d->priv, &r, SMIG_PM_AUDIT, "smigd", action, "log keep:1 from:999999",
			   "none", "-", "ok", "forged");

	if (rc == 0 && smig_pm_int(&r, 0) == 0)
		rc = -1;
	return attempt("forge-audit", rc == 0 ? 0 : -1, EPERM,
		       rc == 0 ? "written" : "refused by the warden");
}

/*
 * debug.worker {action, path?, pid?, pool?, volume?}: the worker itself
 * tries what a compromised worker would: open a file, run a program,
 * trace or read a process, make a user namespace, or ask the warden for
 * another VM's volume. The answer says whether it was denied, and how.
 */
void testhook_worker(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	const char *action = json_string_value(json_object_get(args, "action"));
	const char *path = json_string_value(json_object_get(args, "path"));
	pid_t pid = (pid_t)json_integer_value(json_object_get(args, "pid"));
	json_t *res = NULL;
	int rc, fd;

	if (!ref->has_cred || ref->cred.uid != 0 || action == NULL) {
		ctl_reply_err(d, ref, "denied", "debug.worker: root only, with an action");
		return;
	}
	errno = 0;
	if (strcmp(action, "open") == 0 && path) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		res = attempt(action, fd, errno, path);
		if (fd >= 0)
			close(fd);
	} else if (strcmp(action, "exec") == 0) {
		char *const argv[] = { "/bin/true", NULL };

		rc = execve(argv[0], argv, NULL);
		res = attempt(action, rc, errno, argv[0]);
	} else if (strcmp(action, "fork") == 0) {
		pid_t child = fork();

		if (child == 0)
			_exit(0);
		if (child > 0)
			(void)waitpid(child, NULL, 0);
		res = attempt(action, child, errno, "");
	} else if (strcmp(action, "ptrace") == 0) {
		rc = (int)ptrace(PTRACE_ATTACH, pid, NULL, NULL);
		if (rc == 0)
			(void)ptrace(PTRACE_DETACH, pid, NULL, NULL);
		res = attempt(action, rc, errno, "");
	} else if (strcmp(action, "peek") == 0) {
		char buf[16];
		struct iovec local = { buf, sizeof(buf) }, remote = { (void *)0x400000, sizeof(buf) };

		rc = (int)process_vm_readv(pid, &local, 1, &remote, 1, 0);
		res = attempt(action, rc, errno, "");
	} else if (strcmp(action, "unshare") == 0) {
		rc = unshare(CLONE_NEWUSER);
		res = attempt(action, rc, errno, "");
	} else if (strcmp(action, "forge") == 0) {
		res = forge(d, json_string_value(json_object_get(args, "pool")) ?: "",
			    json_string_value(json_object_get(args, "volume")) ?: "");
	} else if (strcmp(action, "forge-audit") == 0 && path) {
		res = forge_audit(d, path);
	}
	if (res == NULL)
		ctl_reply_err(d, ref, "bad_request", "debug.worker: unknown action %s", action);
	else
		ctl_reply_ok(d, ref, res);
}
