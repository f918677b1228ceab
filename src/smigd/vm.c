/*
 * vm.c - the VM manager's registry (vm.h): which VMs this host knows, their
 * specs on disk, loading and adopting them at start-up, the vm.* control
 * commands, and what the migration engine reads and writes of a VM.
 * Processes, QMP and the console are in vm_run.c.
 */
#include "vm_int.h"
#include "error.h"
#include "file.h"
#include "log.h"
#include "migrate.h"
#include "sign.h"
#include "qmpconn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *const state_names[] = { "defined", "starting", "running", "paused",
					   "incoming", "stopping", "shutoff", "crashed" };

const char *vm_state_name(enum vm_state s)
{
	return state_names[s];
}

struct vm *vm_find(struct smigd *d, const char *name)
{
	for (struct vm *vm = d->vms; vm; vm = vm->next)
		if (strcmp(vm->spec.name, name) == 0)
			return vm;
	return NULL;
}

struct vm *vm_next(const struct vm *vm)
{
	return vm->next;
}

const struct smig_vmspec *vm_spec(const struct vm *vm)
{
	return &vm->spec;
}

enum vm_state vm_state(const struct vm *vm)
{
	return vm->state;
}

void vm_path(const struct vm *vm, const char *leaf, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%s", vm->dir, leaf);
}

/*
 * The console log lives outside the VM's directory so that it outlasts the
 * VM's stay on this host: after a migration, the logs of every host the VM
 * ran on together tell its whole story.
 */
void vm_console_path(const struct vm *vm, char *out, size_t outlen)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/consoles", vm->d->cfg.state_dir);
	(void)smig_file_mkdirs(dir, 0700);
	snprintf(out, outlen, "%s/%s.log", dir, vm->spec.name);
}

/* The one command that gets a VM out of a state it does not leave by itself. */
static void vm_resolution(const struct vm *vm, char *out, size_t outlen)
{
	char host[SMIG_NAME_MAX + 1];
	uint64_t id;
	const char *n = vm->spec.name;

	out[0] = '\0';
	if (vm_commit_pending(vm, &id, host, sizeof(host)))
		snprintf(out, outlen,
			 "COMMIT of migration %016llx went to %s unconfirmed: smigd asks %s until "
			 "it answers, then resumes or retires this copy by itself. Only if %s is "
			 "gone for good and does not run %s: smig vm resume %s --force",
			 (unsigned long long)id, host, host, host, n, n);
	else if (vm->state == VM_PAUSED && vm->mig == NULL)
		snprintf(out, outlen, "smig vm resume %s", n);
	else if (vm->state == VM_CRASHED)
		snprintf(out, outlen, "read smig vm console %s, then smig vm stop %s and smig vm "
			 "start %s", n, n, n);
}

json_t *vm_json(const struct vm *vm)
{
	char fix[512];
	json_t *o = json_pack("{s:s,s:s,s:i,s:i,s:b,s:s,s:i,s:s}", "name", vm->spec.name, "state",
			      vm_state_name(vm->state), "memory_mib", (int)vm->spec.memory_mib,
			      "vcpus", (int)vm->spec.vcpus, "vtpm", vm->spec.vtpm, "min_trust",
			      smig_trust_name(vm->spec.min_trust), "pid", (int)vm->qemu_pid,
			      "last_error", vm->last_error);

	if (o && vm->mig)
		(void)json_object_set_new(o, "migration", mig_json(vm->mig));
	vm_resolution(vm, fix, sizeof(fix));
	if (o && fix[0])
		(void)json_object_set_new(o, "resolve", json_string(fix));
	return o;
}

struct vm *vm_new(struct smigd *d, const struct smig_vmspec *spec)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	if (vm == NULL)
		return NULL;
	vm->d = d;
	vm->spec = *spec;
	vm->serial_fd = -1;
	vm->console_fd = -1;
	vm->swtpm_pidfd = -1;
	vm_res_fds_init(&vm->fds);
	snprintf(vm->dir, sizeof(vm->dir), "%s/vms/%s", d->cfg.state_dir, spec->name);
	smig_buf_init(&vm->serial_rx, (size_t)SERIAL_LINE_MAX * 2);
	vm->next = d->vms;
	d->vms = vm;
	return vm;
}

/* Closes QMP and the console, keeps the VM defined. */
void vm_detach(struct vm *vm)
{
	qmpconn_free(vm->qmp);
	vm->qmp = NULL;
	loop_watch_del(vm->d->loop, vm->serial_w);
	vm->serial_w = NULL;
	if (vm->serial_fd >= 0)
		close(vm->serial_fd);
	vm->serial_fd = -1;
	if (vm->console_fd >= 0)
		close(vm->console_fd);
	vm->console_fd = -1;
	smig_buf_reset(&vm->serial_rx);
	loop_timer_cancel(vm->d->loop, vm->timer);
	vm->timer = NULL;
}

void vm_destroy(struct vm *vm)
{
	vm_detach(vm);
	vm_swtpm_unwatch(vm);
	smig_buf_clear(&vm->serial_rx);
	json_decref(vm->ref.id);
	free(vm);
}

void vm_free_all(struct smigd *d)
{
	while (d->vms) {
		struct vm *vm = d->vms;
		d->vms = vm->next;
		vm_destroy(vm);
	}
}

int vm_define(struct smigd *d, const struct smig_vmspec *in, char *err, size_t errlen)
{
	struct smig_vmspec pinned = *in, *spec = &pinned;
	char path[PATH_MAX];
	bool hostile;
	char *text;
	struct vm *vm;
	int rc;

	if (vm_find(d, spec->name)) {
		snprintf(err, errlen, "a VM named %s is already defined here", spec->name);
		return SMIG_EEXIST;
	}
	SMIG_GUARD(vm_res_pin(d, spec, err, errlen));
	SMIG_GUARD(vm_res_check(d, spec, SMIG_CHECK_DEFINE, &hostile, err, errlen));
	SMIG_GUARD(smig_vmspec_dump(spec, &text));
	vm = vm_new(d, spec);
	if (vm == NULL) {
		free(text);
		return SMIG_ENOMEM;
	}
	vm_path(vm, "spec.json", path, sizeof(path));
	rc = smig_file_mkdirs(vm->dir, 0710);
	if (rc == 0)
		rc = smig_file_write_atomic(path, text, strlen(text), 0600);
	if (rc == 0)
		rc = vm_uid_assign(vm);
	free(text);
	if (rc < 0) {
		snprintf(err, errlen, "%s: cannot save the spec: %s", vm->dir, strerror(errno));
		d->vms = vm->next;
		vm_destroy(vm);
		return rc;
	}
	smig_info("event=vm_defined vm=%s memory_mib=%u vtpm=%d", spec->name, spec->memory_mib,
		  spec->vtpm);
	return 0;
}

static int vm_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes a VM's directory tree (no symlink is followed). */
int vm_rmtree(const char *dir)
{
	return nftw(dir, vm_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* The pid in pidfile if that process is alive, else 0. */
static pid_t live_pid(const char *pidfile)
{
	char buf[32] = "";
	long pid = 0;
	FILE *f = fopen(pidfile, "r");

	if (f && fgets(buf, sizeof(buf), f))
		pid = strtol(buf, NULL, 10);
	if (f)
		fclose(f);
	return pid > 0 && kill((pid_t)pid, 0) == 0 ? (pid_t)pid : 0;
}

/* True when process pid's name starts with prefix ("qemu", "swtpm"). */
static bool comm_is(pid_t pid, const char *prefix)
{
	char path[64], comm[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid);
	f = pid > 0 ? fopen(path, "r") : NULL;
	if (f && fgets(comm, sizeof(comm), f) == NULL)
		comm[0] = '\0';
	if (f)
		fclose(f);
	return strncmp(comm, prefix, strlen(prefix)) == 0;
}

/* The live process of vm that smigd recorded in leaf ("qemu.pid", "swtpm.pid"), else 0. */
static pid_t vm_live(const struct vm *vm, const char *leaf, const char *comm)
{
	char path[PATH_MAX];
	pid_t pid;

	vm_path(vm, leaf, path, sizeof(path));
	pid = live_pid(path);
	return pid > 0 && comm_is(pid, comm) && vm_pid_is_ours(vm, pid) ? pid : 0;
}

/*
 * A swtpm saves its state as it exits after QEMU; removing the directory
 * must wait for that, or the state would be written back into it.
 */
static void swtpm_wait_exit(struct vm *vm)
{
	struct timespec ten_ms = { .tv_nsec = 10000000 };

	for (int i = 0; i < 200; i++) {
		/* our child: reaped here, or its zombie would keep its cgroup busy */
		if (vm->swtpm_pid > 0 && waitpid(vm->swtpm_pid, NULL, WNOHANG) == vm->swtpm_pid)
			vm->swtpm_pid = 0;
		if (vm_live(vm, "swtpm.pid", "swtpm") == 0)
			break;
		nanosleep(&ten_ms, NULL);
	}
}

int vm_undefine(struct smigd *d, struct vm *vm, char *err, size_t errlen)
{
	if (vm->state != VM_DEFINED && vm->state != VM_SHUTOFF) {
		snprintf(err, errlen, "%s is %s; stop it first", vm->spec.name,
			 vm_state_name(vm->state));
		return SMIG_EBUSY;
	}
	/* a migration still holds it (its QEMU died at switch-over): wait for its end */
	if (vm_migration_unfinished(vm)) {
		snprintf(err, errlen, "%s is part of a migration whose end is not known yet; smig vm "
			 "show %s says what it waits for",
			 vm->spec.name, vm->spec.name);
		return SMIG_EBUSY;
	}
	swtpm_wait_exit(vm);
	for (struct vm **pp = &d->vms; *pp; pp = &(*pp)->next) {
		if (*pp == vm) {
			*pp = vm->next;
			break;
		}
	}
	(void)vm_rmtree(vm->dir);
	vm_tpm_key_wipe(d, vm->spec.name);
	vm_cgroup_drop(vm);
	smig_info("event=vm_undefined vm=%s", vm->spec.name);
	vm_destroy(vm);
	return 0;
}

static void vm_adopt(struct vm *vm);

/* Kills a QEMU left behind in dir by an uncommitted incoming migration. */
static void leftover_kill(const char *dir)
{
	char pidfile[PATH_MAX];
	pid_t pid;

	snprintf(pidfile, sizeof(pidfile), "%s/qemu.pid", dir);
	pid = live_pid(pidfile);
	if (pid > 0 && comm_is(pid, "qemu"))
		kill(pid, SIGKILL);
}

int vm_load_all(struct smigd *d)
{
	char dir[PATH_MAX];
	DIR *dp;
	struct dirent *e;

	snprintf(dir, sizeof(dir), "%s/vms", d->cfg.state_dir);
	/* searchable, not readable: each VM's uid passes through to its own directory */
	SMIG_GUARD(smig_file_mkdirs(dir, 0711));
	SMIG_ENSURE(chmod(dir, 0711) == 0, SMIG_EIO);
	dp = opendir(dir);
	SMIG_ENSURE(dp != NULL, SMIG_EIO);
	while ((e = readdir(dp)) != NULL) {
		struct smig_vmspec spec;
		char path[PATH_MAX];
		char err[512];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/spec.json", dir, e->d_name);
		if (access(path, F_OK) != 0) {
			/* an incoming VM that never committed: nothing of it is ours */
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			smig_warn("event=vm_leftover_removed path=%s", path);
			leftover_kill(path);
			(void)vm_rmtree(path);
			if (smig_name_valid(e->d_name))
				vm_tpm_key_wipe(d, e->d_name);
			continue;
		}
		if (smig_vmspec_load(path, &spec, err, sizeof(err)) < 0 ||
		    strcmp(spec.name, e->d_name) != 0) {
			smig_warn("event=vm_load_failed path=%s reason=\"%s\"", path, err);
			continue;
		}
		if (vm_new(d, &spec)) {
			vm_uid_load(d->vms);
			vm_adopt(d->vms);
		}
	}
	closedir(dp);
	return 0;
}

/* The VMs the caller may view. */
static void cmd_list(struct smigd *d, struct ctl_ref *ref)
{
	const char **names;
	bool *allowed;
	size_t n = 0, i = 0;
	json_t *arr = json_array();

	for (const struct vm *vm = d->vms; vm; vm = vm->next)
		n++;
	names = calloc(n ? n : 1, sizeof(*names));
	allowed = calloc(n ? n : 1, sizeof(*allowed));
	if (names == NULL || allowed == NULL || arr == NULL) {
		free(names);
		free(allowed);
		json_decref(arr);
		ctl_reply_err(d, ref, "error", "out of memory");
		return;
	}
	for (const struct vm *vm = d->vms; vm; vm = vm->next)
		names[i++] = vm->spec.name;
	authz_allows_each(d, ref, SMIG_ACT_VM_VIEW, names, n, allowed);
	i = 0;
	for (struct vm *vm = d->vms; vm; vm = vm->next, i++)
		if (allowed[i])
			json_array_append_new(arr, vm_json(vm));
	free(names);
	free(allowed);
	ctl_reply_ok(d, ref, json_pack("{s:o}", "vms", arr));
}

static void cmd_define(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	const json_t *spec = json_object_get(args, "spec");
	struct smig_vmspec s;
	char err[512];
	char *text;
	struct vm *vm;

	if (!json_is_object(spec)) {
		ctl_reply_err(d, ref, "bad_request", "vm.define needs args.spec, an object");
		return;
	}
	text = json_dumps(spec, JSON_COMPACT);
	if (text == NULL || smig_vmspec_parse("spec", text, strlen(text), &s, err, sizeof(err)) < 0 ||
	    vm_define(d, &s, err, sizeof(err)) < 0) {
		free(text);
		ctl_reply_err(d, ref, "error", "%s", text ? err : "out of memory");
		return;
	}
	free(text);
	vm = vm_find(d, s.name);
	ctl_reply_ok(d, ref, vm_json(vm));
}

static void cmd_console(struct smigd *d, struct vm *vm, struct ctl_ref *ref)
{
	char path[PATH_MAX];
	json_t *lines = json_array();
	char buf[SERIAL_LINE_MAX + 32];
	FILE *f;

	vm_console_path(vm, path, sizeof(path));
	f = fopen(path, "r");
	while (f && fgets(buf, sizeof(buf), f)) {
		buf[strcspn(buf, "\n")] = '\0';
		json_array_append_new(lines, json_string(buf));
		if (json_array_size(lines) > 200)
			json_array_remove(lines, 0);
	}
	if (f)
		fclose(f);
	ctl_reply_ok(d, ref, json_pack("{s:s,s:s,s:o}", "vm", vm->spec.name, "path", path,
				       "lines", lines));
}

struct agent_ping *vm_agent_ping(struct vm *vm, agent_ping_fn cb, void *arg)
{
	char path[PATH_MAX];

	if (!vm->spec.guest_agent)
		return NULL;
	vm_path(vm, "agent.sock", path, sizeof(path));
	return agent_ping_start(vm->d->loop, path, vm->d->cfg.agent_timeout_ms, cb, arg);
}

/* A vm command answered later (ping, resume): who waits, about which VM. */
struct vm_req {
	struct smigd *d;
	struct ctl_ref ref;
	char vm[SMIG_NAME_MAX + 1];
	uint64_t t0;
};

static void on_ping(void *arg, bool answered, const char *why)
{
	struct vm_req *r = arg;
	double ms = (double)(loop_now_ns() - r->t0) / 1e6;

	if (answered)
		ctl_reply_ok(r->d, &r->ref, json_pack("{s:s,s:s,s:f}", "vm", r->vm, "agent",
						      "answered", "ms", ms));
	else
		ctl_reply_err(r->d, &r->ref, "agent_silent",
			      "%s: the guest agent did not answer in %.0f ms (%s); is qemu-ga "
			      "running in the guest?",
			      r->vm, ms, why);
	free(r);
}

static struct vm_req *req_new(struct smigd *d, const struct vm *vm, struct ctl_ref *ref)
{
	struct vm_req *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		ctl_reply_err(d, ref, "error", "out of memory");
		return NULL;
	}
	r->d = d;
	r->ref = *ref;
	ref->id = NULL;
	ref->client_id = 0;
	snprintf(r->vm, sizeof(r->vm), "%s", vm->spec.name);
	r->t0 = loop_now_ns();
	return r;
}

static void on_resumed(void *arg, bool ok, const char *why)
{
	struct vm_req *r = arg;
	struct vm *vm = vm_find(r->d, r->vm);

	if (ok && vm) {
		smig_info("event=vm_resumed vm=%s reason=operator", r->vm);
		ctl_reply_ok(r->d, &r->ref, vm_json(vm));
	} else {
		ctl_reply_err(r->d, &r->ref, "error", "%s: QEMU did not resume it: %s", r->vm,
			      why ? why : "the VM is gone");
	}
	free(r);
}

/*
 * vm resume: a paused VM owned here runs again. Not while a commit of it is
 * unconfirmed (the destination may run it) unless forced: the operator
 * says the destination is gone for good and does not run it.
 */
static void cmd_resume(struct smigd *d, struct vm *vm, const json_t *args, struct ctl_ref *ref)
{
	bool force = json_is_true(json_object_get(args, "force"));
	char host[SMIG_NAME_MAX + 1];
	struct vm_req *r;
	uint64_t id;
	bool pending = vm_commit_pending(vm, &id, host, sizeof(host));

	if (vm->state != VM_PAUSED) {
		ctl_reply_err(d, ref, "error", "%s is %s; only a paused VM resumes", vm->spec.name,
			      vm_state_name(vm->state));
		return;
	}
	if (pending && !force) {
		ctl_reply_err(d, ref, "error",
			      "%s: COMMIT of migration %016llx went to %s and was not confirmed, "
			      "so %s may be running it; smigd asks %s and resolves this by "
			      "itself. Only if %s is gone for good and does not run %s: smig vm "
			      "resume %s --force",
			      vm->spec.name, (unsigned long long)id, host, host, host, host,
			      vm->spec.name, vm->spec.name);
		return;
	}
	if (pending && vm->mig && !mig_resolving(vm->mig)) {
		ctl_reply_err(d, ref, "error",
			      "%s: COMMIT of migration %016llx is out and %s is still connected "
			      "and answering; wait for its answer (smig vm show %s)",
			      vm->spec.name, (unsigned long long)id, host, vm->spec.name);
		return;
	}
	if (vm->mig && !pending) {
		ctl_reply_err(d, ref, "error", "%s is migrating; smig migrate --cancel %s first",
			      vm->spec.name, vm->spec.name);
		return;
	}
	r = req_new(d, vm, ref);
	if (r == NULL)
		return;
	if (pending) {
		smig_warn("event=vm_resume_forced vm=%s unconfirmed_to=%s id=%016llx", vm->spec.name,
			  host, (unsigned long long)id);
		audit_write(d, r->ref.audit.on ? r->ref.audit.actor : "smigd", "vm.resume",
			    vm->spec.name, "allow", r->ref.audit.rule, "forced",
			    "over an unconfirmed commit");
		if (vm->mig)
			mig_abandon(vm->mig);
		vm_commit_clear(vm);
	}
	vm_resume(vm, on_resumed, r);
}

static void cmd_ping(struct smigd *d, struct vm *vm, struct ctl_ref *ref)
{
	struct vm_req *r;

	if (!vm->spec.guest_agent) {
		ctl_reply_err(d, ref, "error",
			      "%s has no guest agent port: its spec needs \"guest_agent\": true "
			      "(the port is there from the VM's next cold start)",
			      vm->spec.name);
		return;
	}
	if (vm->state != VM_RUNNING) {
		ctl_reply_err(d, ref, "error", "%s is %s; only a running guest answers", vm->spec.name,
			      vm_state_name(vm->state));
		return;
	}
	/* the agent's socket takes one client: during a migration the migration pings it */
	if (vm->mig) {
		ctl_reply_err(d, ref, "error",
			      "%s is migrating; its migration pings the guest agent itself (see "
			      "the result's guest_detail)",
			      vm->spec.name);
		return;
	}
	r = req_new(d, vm, ref);
	if (r == NULL)
		return;
	if (vm_agent_ping(vm, on_ping, r) == NULL) {
		ctl_reply_err(d, &r->ref, "error", "out of memory");
		free(r);
	}
}

void vm_cmd(struct smigd *d, const char *sub, const json_t *args, struct ctl_ref *ref)
{
	const json_t *name = json_object_get(args, "vm");
	struct vm *vm;
	char err[256];

	if (strcmp(sub, "define") == 0) {
		cmd_define(d, args, ref);
		return;
	}
	if (strcmp(sub, "list") == 0) {
		cmd_list(d, ref);
		return;
	}
	if (!json_is_string(name)) {
		ctl_reply_err(d, ref, "bad_request", "vm.%s needs args.vm, a string", sub);
		return;
	}
	vm = vm_find(d, json_string_value(name));
	if (vm == NULL) {
		ctl_reply_err(d, ref, "not_found", "no VM named %s on this host",
			      json_string_value(name));
		return;
	}
	if (strcmp(sub, "start") == 0)
		vm_start(d, vm, ref);
	else if (strcmp(sub, "stop") == 0)
		vm_stop(d, vm, ref);
	else if (strcmp(sub, "show") == 0)
		ctl_reply_ok(d, ref, vm_json(vm));
	else if (strcmp(sub, "console") == 0)
		cmd_console(d, vm, ref);
	else if (strcmp(sub, "ping") == 0)
		cmd_ping(d, vm, ref);
	else if (strcmp(sub, "resume") == 0)
		cmd_resume(d, vm, args, ref);
	else if (strcmp(sub, "undefine") == 0) {
		if (vm_undefine(d, vm, err, sizeof(err)) < 0)
			ctl_reply_err(d, ref, "error", "%s", err);
		else
			ctl_reply_ok(d, ref, json_pack("{s:s}", "undefined", json_string_value(name)));
	} else {
		ctl_reply_err(d, ref, "bad_request", "unknown command vm.%s", sub);
	}
}

void vm_swtpm_unwatch(struct vm *vm)
{
	loop_watch_del(vm->d->loop, vm->swtpm_w);
	vm->swtpm_w = NULL;
	if (vm->swtpm_pidfd >= 0)
		close(vm->swtpm_pidfd);
	vm->swtpm_pidfd = -1;
}

static void on_swtpm_gone(void *arg, uint32_t events)
{
	(void)events;
	vm_swtpm_exited(arg);
}

/*
 * An adopted VM's swtpm is an earlier smigd's child, so no SIGCHLD tells us
 * it died: a pidfd does. Gone already while QEMU runs: the vTPM is lost.
 */
static void vm_adopt_swtpm(struct vm *vm)
{
	pid_t pid = vm_live(vm, "swtpm.pid", "swtpm");

	if (pid > 0) {
		vm->swtpm_pid = pid;
		vm->swtpm_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (vm->swtpm_pidfd >= 0 &&
		    loop_watch_add(vm->d->loop, vm->swtpm_pidfd, EPOLLIN, on_swtpm_gone, vm,
				   &vm->swtpm_w) == 0)
			return;
		smig_warn("event=swtpm_unwatched vm=%s pid=%d reason=\"%s\"", vm->spec.name,
			  (int)pid, strerror(errno));
		vm_swtpm_unwatch(vm);
		return;
	}
	vm_swtpm_exited(vm);
}

/*
 * A VM whose QEMU is still running from an earlier smigd (the pid smigd
 * recorded names a live QEMU of the VM's uid) is adopted: QMP and the
 * console are reconnected, and its exit is noticed when QMP closes.
 */
static void vm_adopt(struct vm *vm)
{
	char path[PATH_MAX];
	pid_t pid = vm_live(vm, "qemu.pid", "qemu");

	if (pid == 0) {
		smig_info("event=vm_loaded vm=%s state=defined", vm->spec.name);
		/* its QEMU died while a commit was unconfirmed: is the VM on the destination? */
		(void)vm_resolve_pending(vm, true);
		return;
	}
	vm->qemu_pid = pid;
	vm->adopted = true;
	vm->state = VM_RUNNING;
	if (vm->spec.vtpm)
		vm_adopt_swtpm(vm);
	vm_path(vm, "qmp.sock", path, sizeof(path));
	vm->qmp = qmpconn_new(vm->d->loop, path, vm_on_qmp_state, vm_on_qmp_event, vm);
}

/*
 * commit.pending: the source wrote COMMIT for migration ID to HOST and has
 * not heard how it ended. No fsync: it guards against smigd dying while
 * its QEMU lives on, and a host that loses power loses that QEMU too.
 */
int vm_commit_mark(struct vm *vm, uint64_t id, const char *host)
{
	char path[PATH_MAX], line[96];
	int fd, n, rc;

	vm_path(vm, "commit.pending", path, sizeof(path));
	n = snprintf(line, sizeof(line), "%016llx %s\n", (unsigned long long)id, host);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return SMIG_EIO;
	rc = smig_file_write_all(fd, line, (size_t)n);
	close(fd);
	return rc;
}

bool vm_commit_pending(const struct vm *vm, uint64_t *id, char *host, size_t hostlen)
{
	char path[PATH_MAX], line[128] = "", name[SMIG_NAME_MAX + 1] = "";
	uint64_t v = 0;
	FILE *f;

	vm_path(vm, "commit.pending", path, sizeof(path));
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	/* unreadable still counts: the commit may be out, so the copy stays paused */
	if (fgets(line, sizeof(line), f) == NULL || smig_unhex_u64(line, &v) < 0 ||
	    sscanf(line + 16, " %63s", name) != 1)
		snprintf(name, sizeof(name), "?");
	fclose(f);
	*id = v;
	snprintf(host, hostlen, "%s", name);
	return true;
}

/*
 * incoming.id on the destination: the migration that brought the VM here,
 * "ID SOURCE committed" from COMMIT on, "... resumed" once the guest has
 * run here. What a source's MIG_QUERY is answered from, by id, not name.
 */
int vm_incoming_mark(struct vm *vm, uint64_t id, const char *source, bool resumed)
{
	char path[PATH_MAX], line[128];
	int fd, n, rc;

	vm_path(vm, "incoming.id", path, sizeof(path));
	n = snprintf(line, sizeof(line), "%016llx %s %s\n", (unsigned long long)id, source,
		     resumed ? "resumed" : "committed");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return SMIG_EIO;
	rc = smig_file_write_all(fd, line, (size_t)n);
	if (close(fd) < 0)
		rc = SMIG_EIO;
	return rc;
}

int vm_incoming_get(const struct vm *vm, uint64_t *id, char src[SMIG_NAME_MAX + 1],
		    bool *resumed)
{
	char path[PATH_MAX], line[128] = "", what[16];
	FILE *f;
	int rc = SMIG_ENOENT;

	vm_path(vm, "incoming.id", path, sizeof(path));
	f = fopen(path, "r");
	if (f == NULL)
		return SMIG_ENOENT;
	if (fgets(line, sizeof(line), f) && smig_unhex_u64(line, id) == 0 &&
	    sscanf(line + 16, " %63s %15s", src, what) == 2) {
		*resumed = strcmp(what, "resumed") == 0;
		rc = 0;
	}
	fclose(f);
	return rc;
}

bool vm_migration_unfinished(const struct vm *vm)
{
	char host[SMIG_NAME_MAX + 1];
	uint64_t id;

	return vm->mig || vm_commit_pending(vm, &id, host, sizeof(host));
}

bool vm_resolve_pending(struct vm *vm, bool gone)
{
	char host[SMIG_NAME_MAX + 1];
	uint64_t id;

	if (!vm_commit_pending(vm, &id, host, sizeof(host)))
		return false;
	if (mig_resolve_adopted(vm->d, vm, id, host, gone) < 0)
		vm_note_error(vm, "COMMIT of a migration to %s was not confirmed; cannot ask %s "
			      "(out of memory)",
			      host, host);
	return true;
}

void vm_commit_clear(struct vm *vm)
{
	char path[PATH_MAX];

	vm_path(vm, "commit.pending", path, sizeof(path));
	(void)unlink(path);
}

bool vm_qemu_alive(const struct vm *vm)
{
	char path[64], stat[128] = "";
	const char *st;
	FILE *f;

	if (vm->qemu_pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)vm->qemu_pid);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	if (fgets(stat, sizeof(stat), f) == NULL)
		stat[0] = '\0';
	fclose(f);
	st = strrchr(stat, ')'); /* "PID (comm) STATE ..." */
	return st && st[1] == ' ' && st[2] != 'Z' && st[2] != 'X' && st[2] != '\0';
}

bool vm_state_known(const struct vm *vm)
{
	return !vm->adopted || vm->adopt_checked;
}

struct qmpconn *vm_qmp(struct vm *vm)
{
	return vm->qmp;
}

void vm_set_mig(struct vm *vm, struct mig *m)
{
	vm->mig = m;
}

struct mig *vm_mig(const struct vm *vm)
{
	return vm->mig;
}

/*
 * Writes the VM's spec (synced) as file NAME in its directory. An incoming
 * VM's goes to spec.staged, a name start-up does not adopt: a restart
 * before the commit still discards the VM.
 */
static int vm_write_spec(struct vm *vm, const char *name)
{
	char path[PATH_MAX];
	char *text;
	int rc;

	vm_path(vm, name, path, sizeof(path));
	SMIG_GUARD(smig_vmspec_dump(&vm->spec, &text));
	rc = smig_file_write_atomic(path, text, strlen(text), 0600);
	free(text);
	return rc;
}

struct vm *vm_new_incoming(struct smigd *d, const struct smig_vmspec *spec, char *err,
			   size_t errlen)
{
	struct vm *vm;

	if (vm_find(d, spec->name)) {
		snprintf(err, errlen, "a VM named %s already exists on %s", spec->name, d->cfg.host);
		return NULL;
	}
	vm = vm_new(d, spec);
	if (vm == NULL || smig_file_mkdirs(vm->dir, 0710) < 0 || vm_uid_assign(vm) < 0) {
		snprintf(err, errlen, "cannot create the VM directory or give the VM a uid");
		if (vm) {
			d->vms = vm->next;
			vm_destroy(vm);
		}
		return NULL;
	}
	vm->incoming = true;
	vm->state = VM_DEFINED;
	if (vm_write_spec(vm, "spec.staged") < 0) {
		snprintf(err, errlen, "%s: cannot save the spec: %s", vm->dir, strerror(errno));
		d->vms = vm->next;
		(void)vm_rmtree(vm->dir);
		vm_destroy(vm);
		return NULL;
	}
	return vm;
}

/*
 * The destination keeps the spec once the VM is its own: the staged copy,
 * written and synced when the migration came in, becomes spec.json by a
 * rename, so no fsync falls into the switch-over.
 */
void vm_adopt_incoming(struct vm *vm)
{
	char staged[PATH_MAX], path[PATH_MAX];

	vm->incoming = false;
	vm_path(vm, "spec.staged", staged, sizeof(staged));
	vm_path(vm, "spec.json", path, sizeof(path));
	if (rename(staged, path) < 0)
		(void)vm_write_spec(vm, "spec.json");
}
