/*
 * vm.c - the worker's VM registry (vm.h): which VMs this host has, as the
 * warden lists them; defining, undefining and staging them through the
 * warden; taking over those whose QEMU runs from before (a restart of the
 * worker or of smigd); the worker's own records of a VM's migrations
 * (commit.pending, incoming.id); and what the migration engine reads and
 * writes of a VM. Running them (QMP, console, starts, exits) is vm_run.c.
 */
#include "vm/vm_int.h"
#include "error.h"
#include "file.h"
#include "log.h"
#include "vm/qmpconn.h"
#include "sign.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const state_names[] = { "defined", "starting", "running", "paused",
					   "incoming", "stopping", "shutoff", "crashed" };

const char *vm_state_name(enum vm_state s)
{
	return state_names[s];
}

struct vm *vm_find(struct smigd *d, const char *name)
{
	for (struct vm *vm = vm_first(d); vm; vm = vm->next)
		if (strcmp(vm->spec.name, name) == 0)
			return vm;
	return NULL;
}

int vm_init(struct smigd *d)
{
	d->vms = calloc(1, sizeof(*d->vms));
	SMIG_ENSURE(d->vms != NULL, SMIG_ENOMEM);
	vm_capacity_init(d);
	return 0;
}

void vm_set_mig_ops(struct smigd *d, const struct vm_mig_ops *ops)
{
	d->vms->ops = *ops;
}

struct vm *vm_first(struct smigd *d)
{
	return d->vms ? d->vms->head : NULL;
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

bool vm_power_busy(const struct vm *vm)
{
	return vm->op != VM_OP_NONE;
}

void vm_path(const struct vm *vm, const char *leaf, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%s", vm->dir, leaf);
}

/*
 * The console log lives apart from the VM's records so that it outlasts
 * the VM's stay on this host: after a migration, the logs of every host
 * the VM ran on together tell its whole story.
 */
void vm_console_path(const struct vm *vm, char *out, size_t outlen)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/consoles", vm->d->cfg.state_dir);
	(void)smig_file_mkdirs(dir, 0700);
	snprintf(out, outlen, "%s/%s.log", dir, vm->spec.name);
}

/* The history as vm show lists it, oldest first (with at_ms, as saved too). */
static json_t *history_json(const struct vm *vm)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < vm->hist_n; i++) {
		const struct vm_event *e =
			&vm->hist[(vm->hist_next + VM_HISTORY_MAX - vm->hist_n + i) % VM_HISTORY_MAX];
		char at[SMIG_TIME_ISO_LEN];

		smig_time_iso_ms(e->at_ms, at);
		json_array_append_new(arr, json_pack("{s:s,s:I,s:s,s:s}", "at", at, "at_ms",
						     (json_int_t)e->at_ms, "state",
						     vm_state_name(e->state), "why", e->why));
	}
	return arr;
}

static void history_add(struct vm *vm, int64_t at_ms, enum vm_state state, const char *why)
{
	struct vm_event *e = &vm->hist[vm->hist_next];

	e->at_ms = at_ms;
	e->state = state;
	snprintf(e->why, sizeof(e->why), "%s", why);
	vm->hist_next = (vm->hist_next + 1) % VM_HISTORY_MAX;
	if (vm->hist_n < VM_HISTORY_MAX)
		vm->hist_n++;
}

/*
 * Saved with each change, without an fsync: a state change can fall into
 * a switch-over, and a history that loses its last line to a power cut
 * loses nothing the VM needs.
 */
static void history_save(const struct vm *vm)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	json_t *arr = history_json(vm);
	char *text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
	int fd;

	json_decref(arr);
	vm_path(vm, "history", path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (text == NULL || smig_file_mkdirs(vm->dir, 0700) < 0 ||
	    (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		free(text);
		return;
	}
	if (smig_file_write_all(fd, text, strlen(text)) < 0 || close(fd) < 0 ||
	    rename(tmp, path) < 0) {
		smig_debug("event=vm_history_not_saved vm=%s", vm->spec.name);
		(void)unlink(tmp);
	}
	free(text);
}

void vm_history_load(struct vm *vm)
{
	char path[PATH_MAX];
	size_t i;
	json_t *arr, *e;

	vm_path(vm, "history", path, sizeof(path));
	arr = json_load_file(path, 0, NULL);
	json_array_foreach(arr, i, e) {
		const char *st = json_string_value(json_object_get(e, "state"));

		for (unsigned k = 0; st && k < ARRAY_LEN(state_names); k++)
			if (strcmp(st, state_names[k]) == 0)
				history_add(vm, json_integer_value(json_object_get(e, "at_ms")),
					    (enum vm_state)k,
					    json_string_value(json_object_get(e, "why")) ?: "");
	}
	json_decref(arr);
}

void vm_set_state(struct vm *vm, enum vm_state state, const char *fmt, ...)
{
	enum vm_state was = vm->state;
	char why[VM_WHY_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	vm->state = state;
	/* it runs here no more: its owner record in the fleet store goes (if it is ours) */
	if (state == VM_SHUTOFF && was != VM_SHUTOFF && store_active(vm->d))
		(void)store_release(vm->d, vm->spec.name, vm->claim_from[0] ? vm->claim_from : NULL,
				    vm->claim_mig[0] ? vm->claim_mig : NULL, NULL);
	if (state == VM_SHUTOFF) {
		vm->fenced = vm->fence_lost = vm->fence_stopping = vm->fence_resuming = false;
		vm->claim_lease = 0;
		vm->claim_grace_ms = 0;
		vm->claim_from[0] = '\0';
		vm->claim_mig[0] = '\0';
	}
	history_add(vm, loop_wall_ms(), state, why);
	history_save(vm);
	smig_info("event=vm_state vm=%s from=%s to=%s why=\"%s\"", vm->spec.name,
		  vm_state_name(was), vm_state_name(state), why);
}

uint32_t vm_shutdown_timeout(const struct vm *vm)
{
	return vm->spec.shutdown_timeout_s ? vm->spec.shutdown_timeout_s
					   : SMIG_VM_SHUTDOWN_TIMEOUT_DEFAULT;
}

static const char *op_name(enum vm_op op)
{
	return op == VM_OP_SHUTDOWN ? "shutting down" : op == VM_OP_REBOOT ? "rebooting" : NULL;
}

/* The one command that gets a VM out of a state it does not leave by itself. */
static void vm_resolution(const struct vm *vm, char *out, size_t outlen)
{
	char host[SMIG_NAME_MAX + 1], ids[SMIG_MIG_ID_STR_LEN];
	struct smig_mig_id id;
	const char *n = vm->spec.name;

	out[0] = '\0';
	if (vm_commit_pending(vm, &id, host, sizeof(host))) {
		smig_mig_id_format(&id, ids);
		snprintf(out, outlen,
			 "COMMIT of migration %s went to %s unconfirmed: smigd asks %s until "
			 "it answers, then resumes or retires this copy by itself. Only if %s is "
			 "gone for good and does not run %s: smig vm resume %s --force",
			 ids, host, host, host, n, n);
	}
	else if (vm->state == VM_PAUSED && vm->mig == NULL)
		snprintf(out, outlen, "smig vm resume %s", n);
	else if (vm->state == VM_CRASHED)
		snprintf(out, outlen, "read smig vm console %s, then smig vm stop %s and smig vm "
			 "start %s", n, n, n);
}

/*
 * Its owner record as this host knows it (store.backend etcd): claimed
 * under the lease held now, fenced (paused until it is), owned elsewhere,
 * or handed to a migration's destination (taken back only with that mark).
 */
static json_t *fleet_json(const struct vm *vm)
{
	uint64_t left;
	int64_t lease;
	enum store_lease_state st = store_lease(vm->d, &left, &lease);
	json_t *f = json_pack("{s:b,s:b,s:b,s:I}", "claimed",
			      vm->claim_lease != 0 && vm->claim_lease == lease &&
				      st == STORE_LEASE_SOUND,
			      "fenced", vm->fenced, "owned_elsewhere", vm->fence_lost, "lease",
			      (json_int_t)vm->claim_lease);

	if (f && vm->claim_from[0] && vm->claim_mig[0]) {
		(void)json_object_set_new(f, "handed_to", json_string(vm->claim_from));
		(void)json_object_set_new(f, "handed_by_migration", json_string(vm->claim_mig));
	}
	return f;
}

json_t *vm_json(const struct vm *vm)
{
	char fix[512];
	json_t *o = json_pack("{s:s,s:s,s:i,s:i,s:b,s:s,s:i,s:s}", "name", vm->spec.name, "state",
			      vm_state_name(vm->state), "memory_mib", (int)vm->spec.memory_mib,
			      "vcpus", (int)vm->spec.vcpus, "vtpm", vm->spec.vtpm, "min_trust",
			      smig_trust_name(vm->spec.min_trust), "pid", (int)vm->qemu_pid,
			      "last_error", vm->last_error);

	if (o == NULL)
		return NULL;
	(void)json_object_set_new(o, "autostart", json_boolean(vm->spec.autostart));
	(void)json_object_set_new(o, "shutdown_timeout_s", json_integer(vm_shutdown_timeout(vm)));
	if (op_name(vm->op))
		(void)json_object_set_new(o, "operation", json_string(op_name(vm->op)));
	(void)json_object_set_new(o, "history", history_json(vm));
	if (vm->mig)
		(void)json_object_set_new(o, "migration", vm->d->vms->ops.json(vm->mig));
	if (store_active(vm->d))
		(void)json_object_set_new(o, "fleet", fleet_json(vm));
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
	snprintf(vm->dir, sizeof(vm->dir), "%s/worker/vms/%s", d->cfg.state_dir, spec->name);
	smig_buf_init(&vm->serial_rx, (size_t)SERIAL_LINE_MAX * 2);
	vm->next = d->vms->head;
	d->vms->head = vm;
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
	smig_buf_clear(&vm->serial_rx);
	json_decref(vm->ref.id);
	free(vm);
}

void vm_free_all(struct smigd *d)
{
	if (d->vms == NULL)
		return;
	while (d->vms->head) {
		struct vm *vm = d->vms->head;
		d->vms->head = vm->next;
		vm_destroy(vm);
	}
	while (d->vms->holds) {
		struct vm_hold *h = d->vms->holds;

		d->vms->holds = h->next;
		free(h);
	}
	free(d->vms);
	d->vms = NULL;
}

void vm_forget(struct vm *vm)
{
	struct smigd *d = vm->d;

	for (struct vm **pp = &d->vms->head; *pp; pp = &(*pp)->next) {
		if (*pp == vm) {
			*pp = vm->next;
			break;
		}
	}
	(void)smig_file_rmtree(vm->dir);
	smig_info("event=vm_forgotten vm=%s", vm->spec.name);
	vm_destroy(vm);
}

/* The spec the warden pinned and saved, parsed as strictly as any other. */
static int spec_from(const char *text, struct smig_vmspec *s, char *err, size_t errlen)
{
	return smig_vmspec_parse("the warden's spec", text, strlen(text), s, err, errlen);
}

int vm_define(struct smigd *d, const struct smig_vmspec *in, char *changed, size_t changedlen,
	      char *err, size_t errlen)
{
	struct smig_vmspec pinned;
	struct vm *vm = vm_find(d, in->name);
	struct smig_pm r;
	char *text;
	int rc;

	changed[0] = '\0';
	/* a VM this host has: its spec changes, as far as its state lets it */
	if (vm && (vm->mig || vm_migration_unfinished(vm))) {
		snprintf(err, errlen, "%s is migrating; define it again once the migration has ended",
			 in->name);
		return SMIG_EBUSY;
	}
	if (vm && vm->state != VM_DEFINED && vm->state != VM_SHUTOFF && vm->state != VM_RUNNING &&
	    vm->state != VM_PAUSED) {
		snprintf(err, errlen, "%s is %s; define it again once it runs or is shut off",
			 in->name, vm_state_name(vm->state));
		return SMIG_EBUSY;
	}
	SMIG_GUARD(smig_vmspec_dump(in, &text));
	rc = priv_call(d->priv, &r, SMIG_PM_VM_DEFINE, text);
	free(text);
	SMIG_GUARD(rc);
	if ((rc = priv_status(&r)) < 0) {
		snprintf(err, errlen, "%s", smig_pm_str(&r, 1));
		return rc;
	}
	SMIG_GUARD(spec_from(smig_pm_str(&r, 2), &pinned, err, errlen));
	if (vm) {
		SMIG_GUARD(smig_vmspec_diff(&vm->spec, &pinned, 0, changed, changedlen));
		vm->spec = pinned;
		vm_set_state(vm, vm->state, "redefined (%s)", changed[0] ? changed : "no change");
		return 0;
	}
	vm = vm_new(d, &pinned);
	SMIG_ENSURE(vm != NULL, SMIG_ENOMEM);
	vm_set_state(vm, VM_DEFINED, "defined");
	return 0;
}

int vm_undefine(struct smigd *d, struct vm *vm, char *err, size_t errlen)
{
	struct smig_pm r;
	int rc;

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
	SMIG_GUARD(priv_call(d->priv, &r, SMIG_PM_VM_UNDEFINE, vm->spec.name));
	if ((rc = priv_status(&r)) < 0) {
		snprintf(err, errlen, "%s", smig_pm_str(&r, 1));
		return rc;
	}
	smig_info("event=vm_undefined vm=%s", vm->spec.name);
	vm_forget(vm);
	return 0;
}

int vm_connect(struct vm *vm, unsigned which)
{
	struct smig_pm r;

	if (priv_call(vm->d->priv, &r, SMIG_PM_VM_CONNECT, vm->spec.name, which) < 0 ||
	    priv_status(&r) < 0 || r.nfds != 1)
		return -1;
	return r.fds[0];
}

static void vm_adopt(struct vm *vm);
static void vm_settle_staged(struct vm *vm);

/* One VM of the warden's list: its spec, uid, processes; false if it is not one. */
static bool vm_from_list(struct smigd *d, const json_t *o)
{
	char *text = json_dumps(json_object_get(o, "spec"), JSON_COMPACT);
	struct smig_vmspec spec;
	char err[512];
	struct vm *vm;

	if (text == NULL || spec_from(text, &spec, err, sizeof(err)) < 0 ||
	    strcmp(spec.name, json_string_value(json_object_get(o, "name")) ?: "") != 0) {
		smig_warn("event=vm_load_failed reason=\"%s\"", text ? err : "no spec");
		free(text);
		return false;
	}
	free(text);
	vm = vm_new(d, &spec);
	if (vm == NULL)
		return false;
	vm->uid = (uid_t)json_integer_value(json_object_get(o, "uid"));
	vm->qemu_pid = (pid_t)json_integer_value(json_object_get(o, "qemu_pid"));
	vm->swtpm_pid = (pid_t)json_integer_value(json_object_get(o, "swtpm_pid"));
	vm->filtered = json_is_true(json_object_get(o, "filtered"));
	vm->incoming = json_is_true(json_object_get(o, "staged"));
	vm->autostart_due = json_is_true(json_object_get(o, "autostart_due"));
	vm_history_load(vm);
	return true;
}

/* The worker's records of VMs the warden does not have any more go. */
static void records_prune(struct smigd *d)
{
	char dir[PATH_MAX], path[PATH_MAX * 2];
	struct dirent *e;
	DIR *dp;

	snprintf(dir, sizeof(dir), "%s/worker/vms", d->cfg.state_dir);
	dp = opendir(dir);
	while (dp && (e = readdir(dp)) != NULL) {
		if (e->d_name[0] == '.' || vm_find(d, e->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		(void)smig_file_rmtree(path);
	}
	if (dp)
		closedir(dp);
}

int vm_load_all(struct smigd *d)
{
	struct smig_pm r;
	json_t *arr;
	size_t i;
	json_t *o;

	SMIG_GUARD(priv_call(d->priv, &r, SMIG_PM_VM_LIST));
	SMIG_GUARD(priv_status(&r));
	arr = json_loads(smig_pm_str(&r, 2), 0, NULL);
	SMIG_ENSURE(json_is_array(arr), SMIG_EPROTO);
	json_array_foreach(arr, i, o)
		(void)vm_from_list(d, o);
	json_decref(arr);
	records_prune(d);
	for (struct vm *vm = vm_first(d), *next; vm; vm = next) {
		next = vm->next;
		if (vm->incoming) {
			vm_settle_staged(vm);
		} else {
			vm_adopt(vm);
			if (vm->autostart_due)
				vm_autostart(vm);
		}
	}
	return 0;
}

struct agent_ping *vm_agent_ping(struct vm *vm, agent_ping_fn cb, void *arg)
{
	if (!vm->spec.guest_agent)
		return NULL;
	/* a connection the warden made: a failed one ends the ping at once, from the loop */
	return agent_ping_start(vm->d->loop, vm_connect(vm, SMIG_PM_SOCK_AGENT),
				vm->d->cfg.agent_timeout_ms, cb, arg);
}

/*
 * A VM whose QEMU runs from before this worker (the warden watched it
 * meanwhile) is taken over: QMP and the console are connected again, and
 * QMP says what it is doing. Its swtpm gone meanwhile: its vTPM is lost.
 */
static void vm_adopt(struct vm *vm)
{
	int fd;

	if (vm->qemu_pid <= 0) {
		enum vm_state last = vm->hist_n ? vm->hist[(vm->hist_next + VM_HISTORY_MAX - 1) %
							  VM_HISTORY_MAX].state
						: VM_DEFINED;

		/* "defined" is a VM that never ran; one that did is shut off */
		if (last == VM_SHUTOFF)
			vm->state = VM_SHUTOFF;
		else if (last != VM_DEFINED)
			vm_set_state(vm, VM_SHUTOFF, "its QEMU was gone when smigd started (the host "
				     "rebooted, or QEMU died while no smigd ran)");
		smig_info("event=vm_loaded vm=%s state=%s", vm->spec.name, vm_state_name(vm->state));
		/* its QEMU died while a commit was unconfirmed: is the VM on the destination? */
		(void)vm_resolve_pending(vm, true);
		return;
	}
	vm->adopted = true;
	vm_set_state(vm, VM_RUNNING, "its QEMU (pid %d) taken over by a new smigd",
		     (int)vm->qemu_pid);
	/* with a fleet store, vm_fence.c's rule claims its owner record under this smigd's lease */
	if (vm->spec.vtpm && vm->swtpm_pid <= 0)
		vm_swtpm_exited(vm);
	fd = vm_connect(vm, SMIG_PM_SOCK_QMP);
	vm->qmp = fd >= 0 ? qmpconn_new(vm->d->loop, fd, vm_on_qmp_state, vm_on_qmp_event, vm)
			  : NULL;
	if (vm->qmp == NULL)
		vm_note_error(vm, "cannot reach its QEMU's QMP socket");
}

/*
 * A VM a migration brought in and the warden holds staged: if this
 * worker's records say its COMMIT was recorded (incoming.id for it), it is
 * this host's now and is committed and taken over (the source retires its
 * copy once it hears so); otherwise the migration is gone with the last
 * worker and the VM is discarded, as a restarted smigd always did.
 */
static void vm_settle_staged(struct vm *vm)
{
	char src[SMIG_NAME_MAX + 1];
	struct smig_pm r;
	char ids[SMIG_MIG_ID_STR_LEN];
	bool resumed;
	struct smig_mig_id id;

	if (vm->qemu_pid > 0 && vm_incoming_get(vm, &id, src, &resumed) == 0) {
		smig_mig_id_format(&id, ids);
		smig_warn("event=vm_staged_committed vm=%s from=%s id=%s action=adopt",
			  vm->spec.name, src, ids);
		vm->incoming = false;
		if (priv_call(vm->d->priv, &r, SMIG_PM_VM_COMMIT, vm->spec.name) < 0 ||
		    priv_status(&r) < 0)
			smig_err("event=vm_commit_failed vm=%s reason=\"%s\"", vm->spec.name,
				 smig_pm_str(&r, 1));
		vm_adopt(vm);
		return;
	}
	smig_warn("event=vm_leftover_removed vm=%s reason=\"an incoming migration that did not "
		  "commit\"", vm->spec.name);
	(void)priv_call(vm->d->priv, &r, SMIG_PM_VM_DISCARD, vm->spec.name);
	vm_forget(vm);
}

/*
 * commit.pending: the source wrote COMMIT for migration ID to HOST and has
 * not heard how it ended. No fsync: it guards against smigd dying while
 * its QEMU lives on, and a host that loses power loses that QEMU too.
 */
int vm_commit_mark(struct vm *vm, const struct smig_mig_id *id, const char *host)
{
	char path[PATH_MAX], line[128], ids[SMIG_MIG_ID_STR_LEN];
	int fd, n, rc;

	if (smig_file_mkdirs(vm->dir, 0700) < 0)
		return SMIG_EIO;
	vm_path(vm, "commit.pending", path, sizeof(path));
	smig_mig_id_format(id, ids);
	n = snprintf(line, sizeof(line), "%s %s\n", ids, host);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return SMIG_EIO;
	rc = smig_file_write_all(fd, line, (size_t)n);
	close(fd);
	return rc;
}

/*
 * The first line of one of the VM's records (leaf in its directory) into
 * line ("" when it has none); false when there is no such record.
 */
static bool record_line(const struct vm *vm, const char *leaf, char *line, size_t len)
{
	char path[PATH_MAX];
	FILE *f;

	vm_path(vm, leaf, path, sizeof(path));
	f = fopen(path, "re");
	if (f == NULL)
		return false;
	if (fgets(line, (int)len, f) == NULL)
		line[0] = '\0';
	fclose(f);
	return true;
}

static void record_drop(struct vm *vm, const char *leaf)
{
	char path[PATH_MAX];

	vm_path(vm, leaf, path, sizeof(path));
	(void)unlink(path);
}

int vm_outgoing_mark(struct vm *vm, const char *host)
{
	char path[PATH_MAX], line[SMIG_NAME_MAX + 2];
	int n = snprintf(line, sizeof(line), "%s\n", host);

	if (smig_file_mkdirs(vm->dir, 0700) < 0)
		return SMIG_EIO;
	vm_path(vm, "outgoing", path, sizeof(path));
	SMIG_GUARD(smig_file_write_atomic(path, line, (size_t)n, 0600));
	return smig_file_sync_dir(path);
}

bool vm_outgoing(const struct vm *vm, char *host, size_t hostlen)
{
	char line[SMIG_NAME_MAX + 2];

	if (!record_line(vm, "outgoing", line, sizeof(line)))
		return false;
	line[strcspn(line, "\n")] = '\0';
	snprintf(host, hostlen, "%s", line[0] ? line : "?");
	return true;
}

void vm_outgoing_clear(struct vm *vm)
{
	record_drop(vm, "outgoing");
}

bool vm_commit_pending(const struct vm *vm, struct smig_mig_id *id, char *host,
		       size_t hostlen)
{
	char line[128], name[SMIG_NAME_MAX + 1] = "";
	char ids[SMIG_MIG_ID_STR_LEN] = "";
	struct smig_mig_id v = { { 0 } };

	if (!record_line(vm, "commit.pending", line, sizeof(line)))
		return false;
	/* unreadable still counts: the commit may be out, so the copy stays paused */
	if (sscanf(line, "%32s %63s", ids, name) != 2 || smig_mig_id_parse(ids, &v) < 0)
		snprintf(name, sizeof(name), "?");
	*id = v;
	snprintf(host, hostlen, "%s", name);
	return true;
}

/*
 * incoming.id on the destination: the migration that brought the VM here,
 * "ID SOURCE committed" from COMMIT on, "... resumed" once the guest has
 * run here. What a source's MIG_QUERY is answered from, by id, not name.
 */
int vm_incoming_mark(struct vm *vm, const struct smig_mig_id *id, const char *source,
		     bool resumed)
{
	char path[PATH_MAX], line[160], ids[SMIG_MIG_ID_STR_LEN];
	int fd, n, rc;

	if (smig_file_mkdirs(vm->dir, 0700) < 0)
		return SMIG_EIO;
	vm_path(vm, "incoming.id", path, sizeof(path));
	smig_mig_id_format(id, ids);
	n = snprintf(line, sizeof(line), "%s %s %s\n", ids, source,
		     resumed ? "resumed" : "committed");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return SMIG_EIO;
	rc = smig_file_write_all(fd, line, (size_t)n);
	if (close(fd) < 0)
		rc = SMIG_EIO;
	return rc;
}

int vm_incoming_get(const struct vm *vm, struct smig_mig_id *id, char src[SMIG_NAME_MAX + 1],
		    bool *resumed)
{
	char line[160], what[16], ids[SMIG_MIG_ID_STR_LEN];

	if (!record_line(vm, "incoming.id", line, sizeof(line)) ||
	    sscanf(line, "%32s %63s %15s", ids, src, what) != 3 || smig_mig_id_parse(ids, id) < 0)
		return SMIG_ENOENT;
	*resumed = strcmp(what, "resumed") == 0;
	return 0;
}

bool vm_migration_unfinished(const struct vm *vm)
{
	char host[SMIG_NAME_MAX + 1];
	struct smig_mig_id id;

	return vm->mig || vm_commit_pending(vm, &id, host, sizeof(host));
}

bool vm_resolve_pending(struct vm *vm, bool gone)
{
	char host[SMIG_NAME_MAX + 1];
	struct smig_mig_id id;

	if (!vm_commit_pending(vm, &id, host, sizeof(host)))
		return false;
	if (vm->d->vms->ops.resolve(vm->d, vm, &id, host, gone) < 0)
		vm_note_error(vm, "COMMIT of a migration to %s was not confirmed; cannot ask %s "
			      "(out of memory)",
			      host, host);
	return true;
}

void vm_commit_clear(struct vm *vm)
{
	record_drop(vm, "commit.pending");
}

pid_t vm_qemu_pid(const struct vm *vm)
{
	return vm->qemu_pid > 0 ? vm->qemu_pid : 0;
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

struct vm *vm_new_incoming(struct smigd *d, const struct smig_vmspec *spec, const char *source,
			   const uint8_t *tpm_key, const struct vm_fw_build *fw, bool *hostile,
			   int *code, char *err, size_t errlen)
{
	static const uint8_t zero[32];
	struct smig_vmspec staged;
	struct smig_pm r;
	struct vm *vm;
	char *text;
	int rc;

	*hostile = false;
	*code = SMIG_EEXIST;
	if (vm_find(d, spec->name)) {
		snprintf(err, errlen, "a VM named %s already exists on %s", spec->name, d->cfg.host);
		return NULL;
	}
	*code = SMIG_ENOMEM;
	if (smig_vmspec_dump(spec, &text) < 0) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rc = priv_call(d->priv, &r, SMIG_PM_VM_STAGE, text, source, tpm_key ? tpm_key : zero,
		       tpm_key != NULL, fw ? fw->sha256 : zero, fw ? fw->size : (uint64_t)0);
	free(text);
	if (rc == 0 && (rc = priv_status(&r)) < 0) {
		*hostile = smig_pm_int(&r, 2) != 0;
		*code = rc;
		snprintf(err, errlen, "%s", smig_pm_str(&r, 1));
		return NULL;
	}
	*code = rc;
	if (rc < 0 || (staged = *spec, (vm = vm_new(d, &staged)) == NULL)) {
		snprintf(err, errlen, "the warden did not stage %s (%s)", spec->name,
			 smig_strerror(rc));
		if (rc == 0)
			(void)priv_call(d->priv, &r, SMIG_PM_VM_DISCARD, spec->name);
		return NULL;
	}
	vm->incoming = true;
	vm->state = VM_DEFINED;
	(void)smig_file_rmtree(vm->dir); /* an old incoming.id of that name says nothing of this VM */
	return vm;
}

/*
 * The destination keeps the spec once the VM is its own: the warden turns
 * its staged copy, written and synced when the migration came in, into the
 * VM's spec by a rename, so no fsync falls into the switch-over. Should it
 * fail, the worker's incoming.id still says the VM came in: a restart
 * commits it then.
 */
void vm_adopt_incoming(struct vm *vm)
{
	struct smig_pm r;

	vm->incoming = false;
	if (priv_call(vm->d->priv, &r, SMIG_PM_VM_COMMIT, vm->spec.name) < 0 ||
	    priv_status(&r) < 0)
		smig_err("event=vm_commit_failed vm=%s reason=\"%s\"", vm->spec.name,
			 smig_pm_str(&r, 1));
}

int vm_get_tpm_key(struct vm *vm, uint8_t *key, size_t len)
{
	struct smig_pm r;

	SMIG_ENSURE(len == 32, SMIG_EINVAL);
	SMIG_GUARD(priv_call(vm->d->priv, &r, SMIG_PM_TPM_KEY, vm->spec.name));
	SMIG_GUARD(priv_status(&r));
	memcpy(key, smig_pm_key(&r, 2), 32);
	return 0;
}

int vm_fw_build_get(struct vm *vm, struct vm_fw_build *b, char *err, size_t errlen)
{
	struct smig_pm r;
	int rc;

	SMIG_GUARD(priv_call(vm->d->priv, &r, SMIG_PM_FW_BUILD, vm->spec.name));
	if ((rc = priv_status(&r)) < 0) {
		snprintf(err, errlen, "%s", smig_pm_str(&r, 1));
		return rc;
	}
	memcpy(b->sha256, smig_pm_key(&r, 2), sizeof(b->sha256));
	b->size = smig_pm_int(&r, 3);
	return 0;
}

bool vm_filter_wanted(const struct smig_vmspec *s)
{
	for (size_t i = 0; i < s->nnics; i++)
		if (s->nics[i].filter)
			return true;
	return false;
}

uint32_t vm_spec_protections(const struct smig_vmspec *s)
{
	return SMIG_PROT_SANDBOX | SMIG_PROT_MIN_TRUST | (s->vtpm ? SMIG_PROT_VTPM : 0) |
	       (vm_filter_wanted(s) ? SMIG_PROT_NIC_FILTER : 0);
}

uint32_t vm_protections(const struct vm *vm)
{
	/* every QEMU the warden starts is confined (-sandbox, its uid, Landlock, a cgroup) */
	uint32_t p = SMIG_PROT_SANDBOX;

	if (vm->spec.vtpm && vm->swtpm_pid > 0)
		p |= SMIG_PROT_VTPM;
	if (vm->filtered)
		p |= SMIG_PROT_NIC_FILTER;
	return p;
}
