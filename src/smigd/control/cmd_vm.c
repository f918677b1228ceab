/*
 * cmd_vm.c - the vm.* control commands (smig vm ...): list what the caller
 * may view, define, start, stop, show, console, ping the guest agent,
 * resume a paused VM, undefine. What they do to a VM is the VM part's
 * (vm/vm.h); here are the checks and the answers.
 */
#include "control/control.h"
#include "error.h"
#include "log.h"
#include "migration/migrate.h"
#include "policy/authz.h"
#include "vm/vm.h"

#include <limits.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A console log line: the VM part's longest serial line and its timestamp. */
#define CONSOLE_LINE_MAX (4096 + 32)

/* The VMs the caller may view. */
static void cmd_list(struct smigd *d, struct ctl_ref *ref)
{
	const char **names;
	bool *allowed;
	size_t n = 0, i = 0;
	json_t *arr = json_array();

	for (const struct vm *vm = vm_first(d); vm; vm = vm_next(vm))
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
	for (const struct vm *vm = vm_first(d); vm; vm = vm_next(vm))
		names[i++] = vm_spec(vm)->name;
	authz_allows_each(d, ref, SMIG_ACT_VM_VIEW, names, n, allowed);
	i = 0;
	for (struct vm *vm = vm_first(d); vm; vm = vm_next(vm), i++)
		if (allowed[i])
			json_array_append_new(arr, vm_json(vm));
	free(names);
	free(allowed);
	ctl_reply_ok(d, ref, json_pack("{s:o}", "vms", arr));
}

/* vm list --all: a request waiting for the fleet store's answer */
struct list_all {
	struct ctl_ref ref;
};

/* The fleet's VMs the caller may view, each with its owner and, if defined here, its state. */
static void listed_all(struct smigd *d, void *arg, const json_t *vms, const char *error)
{
	struct list_all *la = arg;
	const char **names = NULL;
	bool *allowed = NULL;
	size_t n = json_array_size(vms), i;
	json_t *arr = json_array(), *v;

	if (vms == NULL) {
		ctl_reply_err(d, &la->ref, "unreachable", "the fleet store did not answer: %s",
			      error && error[0] ? error : "no reason given");
		json_decref(arr);
		free(la);
		return;
	}
	names = calloc(n ? n : 1, sizeof(*names));
	allowed = calloc(n ? n : 1, sizeof(*allowed));
	if (names == NULL || allowed == NULL || arr == NULL) {
		ctl_reply_err(d, &la->ref, "error", "out of memory");
		goto out;
	}
	json_array_foreach(vms, i, v)
		names[i] = json_string_value(json_object_get(v, "vm"));
	authz_allows_each(d, &la->ref, SMIG_ACT_VM_VIEW, names, n, allowed);
	json_array_foreach(vms, i, v) {
		const struct vm *here = vm_find(d, names[i]);
		json_t *o;

		if (!allowed[i])
			continue;
		o = json_copy(v);
		if (o && here)
			(void)json_object_set_new(o, "state_here",
						  json_string(vm_state_name(vm_state(here))));
		(void)json_array_append_new(arr, o);
	}
	ctl_reply_ok(d, &la->ref, json_pack("{s:o,s:s?}", "vms", arr, "warning",
					    error && error[0] ? error : NULL));
	arr = NULL;
out:
	json_decref(arr);
	free(names);
	free(allowed);
	free(la);
}

static void cmd_list_all(struct smigd *d, struct ctl_ref *ref)
{
	struct list_all *la;

	if (!store_active(d)) {
		ctl_reply_err(d, ref, "bad_request",
			      "vm list --all reads the fleet store, and this host has none "
			      "(store.backend is files): smig vm list shows this host's VMs");
		return;
	}
	la = calloc(1, sizeof(*la));
	if (la == NULL) {
		ctl_reply_err(d, ref, "error", "out of memory");
		return;
	}
	la->ref = *ref; /* the answer comes from the store's thread, later */
	ref->id = NULL;
	ref->client_id = 0;
	if (store_list_vms(d, listed_all, la) < 0) {
		ctl_reply_err(d, &la->ref, "error", "out of memory");
		free(la);
	}
}

static void cmd_define(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	const json_t *spec = json_object_get(args, "spec");
	struct smig_vmspec s;
	char err[512], changed[256];
	bool existed;
	json_t *res;
	char *text;
	struct vm *vm;

	if (!json_is_object(spec)) {
		ctl_reply_err(d, ref, "bad_request", "vm.define needs args.spec, an object");
		return;
	}
	text = json_dumps(spec, JSON_COMPACT);
	if (text == NULL || smig_vmspec_parse("spec", text, strlen(text), &s, err, sizeof(err)) < 0) {
		free(text);
		ctl_reply_err(d, ref, "error", "%s", text ? err : "out of memory");
		return;
	}
	free(text);
	existed = vm_find(d, s.name) != NULL;
	if (vm_define(d, &s, changed, sizeof(changed), err, sizeof(err)) < 0) {
		ctl_reply_err(d, ref, "error", "%s", err);
		return;
	}
	vm = vm_find(d, s.name);
	res = vm_json(vm);
	/* a redefinition says what changed: the keys, "" for nothing */
	if (res && existed)
		(void)json_object_set_new(res, "changed", json_string(changed));
	ctl_reply_ok(d, ref, res);
}

static void cmd_console(struct smigd *d, struct vm *vm, struct ctl_ref *ref)
{
	char path[PATH_MAX];
	json_t *lines = json_array();
	char buf[CONSOLE_LINE_MAX];
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
	ctl_reply_ok(d, ref, json_pack("{s:s,s:s,s:o}", "vm", vm_spec(vm)->name, "path", path,
				       "lines", lines));
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
	snprintf(r->vm, sizeof(r->vm), "%s", vm_spec(vm)->name);
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
	char host[SMIG_NAME_MAX + 1], ids[SMIG_MIG_ID_STR_LEN];
	struct vm_req *r;
	struct smig_mig_id id = { { 0 } };
	bool pending = vm_commit_pending(vm, &id, host, sizeof(host));

	if (vm_state(vm) != VM_PAUSED) {
		ctl_reply_err(d, ref, "error", "%s is %s; only a paused VM resumes", vm_spec(vm)->name,
			      vm_state_name(vm_state(vm)));
		return;
	}
	smig_mig_id_format(&id, ids);
	if (pending && !force) {
		ctl_reply_err(d, ref, "error",
			      "%s: COMMIT of migration %s went to %s and was not confirmed, "
			      "so %s may be running it; smigd asks %s and resolves this by "
			      "itself. Only if %s is gone for good and does not run %s: smig vm "
			      "resume %s --force",
			      vm_spec(vm)->name, ids, host, host, host, host,
			      vm_spec(vm)->name, vm_spec(vm)->name);
		return;
	}
	if (pending && vm_mig(vm) && !mig_resolving(vm_mig(vm))) {
		ctl_reply_err(d, ref, "error",
			      "%s: COMMIT of migration %s is out and %s is still connected "
			      "and answering; wait for its answer (smig vm show %s)",
			      vm_spec(vm)->name, ids, host, vm_spec(vm)->name);
		return;
	}
	if (vm_mig(vm) && !pending) {
		ctl_reply_err(d, ref, "error", "%s is migrating; smig migrate --cancel %s first",
			      vm_spec(vm)->name, vm_spec(vm)->name);
		return;
	}
	/* (forced over an unconfirmed commit with a fleet store: the record is taken back below) */
	if (vm_fence_holds(vm) && !(pending && store_active(d))) {
		ctl_reply_err(d, ref, "owned",
			      "%s may not run here now: its owner record in the fleet store is not "
			      "this host's under a sound lease (smig vm show %s says why; smig status "
			      "shows the store)",
			      vm_spec(vm)->name, vm_spec(vm)->name);
		return;
	}
	r = req_new(d, vm, ref);
	if (r == NULL)
		return;
	if (pending) {
		smig_warn("event=vm_resume_forced vm=%s unconfirmed_to=%s id=%s", vm_spec(vm)->name,
			  host, ids);
		audit_write(d, r->ref.audit.on ? r->ref.audit.actor : "smigd", "vm.resume",
			    vm_spec(vm)->name, "allow", r->ref.audit.rule, "forced",
			    "over an unconfirmed commit");
		if (vm_mig(vm))
			mig_abandon(vm_mig(vm));
		vm_commit_clear(vm);
		if (store_active(d)) {
			/*
			 * Its owner record went to host at the switch-over, or may
			 * have: the fencing rule takes it back (only while it still
			 * carries this migration's mark) and then resumes the VM.
			 */
			vm_claim_handed(vm, host, ids);
			ctl_reply_ok(d, &r->ref,
				     json_pack("{s:s,s:s,s:s}", "vm", r->vm, "status", "resuming",
					       "detail",
					       "it resumes once its owner record is taken back from "
					       "the destination (smig vm show says so)"));
			free(r);
			return;
		}
	}
	vm_resume(vm, on_resumed, r);
}

static void cmd_ping(struct smigd *d, struct vm *vm, struct ctl_ref *ref)
{
	struct vm_req *r;

	if (!vm_spec(vm)->guest_agent) {
		ctl_reply_err(d, ref, "error",
			      "%s has no guest agent port: its spec needs \"guest_agent\": true "
			      "(the port is there from the VM's next cold start)",
			      vm_spec(vm)->name);
		return;
	}
	if (vm_state(vm) != VM_RUNNING) {
		ctl_reply_err(d, ref, "error", "%s is %s; only a running guest answers", vm_spec(vm)->name,
			      vm_state_name(vm_state(vm)));
		return;
	}
	/* the agent's socket takes one client: during a migration the migration pings it */
	if (vm_mig(vm)) {
		ctl_reply_err(d, ref, "error",
			      "%s is migrating; its migration pings the guest agent itself (see "
			      "the result's guest_detail)",
			      vm_spec(vm)->name);
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

/* vm.stop, vm.reboot: args.force (bool), args.timeout_s (1-3600, else the spec's) */
static void cmd_power(struct smigd *d, struct vm *vm, const char *sub, const json_t *args,
		      struct ctl_ref *ref)
{
	const json_t *force = json_object_get(args, "force");
	const json_t *t = json_object_get(args, "timeout_s");

	if ((force && !json_is_boolean(force)) ||
	    (t && (!json_is_integer(t) || json_integer_value(t) < 1 ||
		   json_integer_value(t) > SMIG_VM_SHUTDOWN_TIMEOUT_MAX))) {
		ctl_reply_err(d, ref, "bad_request",
			      "vm.%s takes args.force (a boolean) and args.timeout_s (1-%d)", sub,
			      SMIG_VM_SHUTDOWN_TIMEOUT_MAX);
		return;
	}
	if (strcmp(sub, "stop") == 0)
		vm_stop(d, vm, json_is_true(force), t ? (uint32_t)json_integer_value(t) : 0, ref);
	else
		vm_reboot(d, vm, json_is_true(force), t ? (uint32_t)json_integer_value(t) : 0, ref);
}

void cmd_vm(struct smigd *d, const char *sub, const json_t *args, struct ctl_ref *ref)
{
	const json_t *name = json_object_get(args, "vm");
	struct vm *vm;
	char err[256];

	if (strcmp(sub, "define") == 0) {
		cmd_define(d, args, ref);
		return;
	}
	if (strcmp(sub, "list") == 0) {
		const json_t *all = json_object_get(args, "all");

		if (all && !json_is_boolean(all))
			ctl_reply_err(d, ref, "bad_request", "vm.list takes args.all, a boolean");
		else if (json_is_true(all))
			cmd_list_all(d, ref);
		else
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
	else if (strcmp(sub, "stop") == 0 || strcmp(sub, "reboot") == 0)
		cmd_power(d, vm, sub, args, ref);
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
