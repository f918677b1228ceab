/*
 * evac.c - evacuation: every running VM of this host goes, one at a time,
 * to the best trusted target, because this host failed its own integrity
 * check (attest.c) or because an operator asked (`smig evacuate`).
 *
 * The best target for a VM is a host whose last verdict is fresh and
 * attested or trusted, meets the VM's min_trust and has every capability
 * it requires, with the most free memory (from its evidence, less what
 * this plan already sends it). Each migration is also gated live by
 * mutual attestation (mig_src.c), so a host that turned untrusted since
 * its last verdict still gets nothing. Every step is audited.
 */
#include "core/smigd.h"
#include "error.h"
#include "log.h"
#include "migration/migrate.h"
#include "vm/vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EVAC_MAX 256

struct evac_step {
	char vm[SMIG_NAME_MAX + 1];
	char to[SMIG_NAME_MAX + 1]; /* empty: no target */
	char why[256];
	const char *outcome; /* "planned", "migrated", "failed", "no_target" */
};

struct evac {
	struct evac_step step[EVAC_MAX];
	size_t n, next;
	char reason[256];
	struct ctl_ref ref; /* who asked, if anyone */
	uint64_t t0;
};

/* How long a verdict counts as fresh. */
static time_t fresh_s(const struct smigd *d)
{
	return (time_t)d->cfg.attest_interval_s * 3 + 5;
}

static bool host_fits(const struct smigd *d, const struct host_state *hs,
		      const struct smig_vmspec *spec, char *why, size_t len)
{
	if (smig_attest_fits(hs->name, &hs->verdict, &hs->evidence, spec, why, len))
		return false;
	if (time(NULL) - hs->attested_at > fresh_s(d)) {
		snprintf(why, len, "%s was last attested %lds ago", hs->name,
			 (long)(time(NULL) - hs->attested_at));
		return false;
	}
	return true;
}

/* The target with the most free memory left, given what the plan sends. */
static void choose(struct smigd *d, const struct smig_vmspec *spec, uint64_t *planned,
		   struct evac_step *st)
{
	uint64_t best_free = 0;
	size_t best = SIZE_MAX;
	char why[256] = "no other host in the table";

	for (size_t i = 0; i < smigd_hosts(d)->n; i++) {
		const struct host_state *hs = smigd_host_state_at(d, i);
		uint64_t avail;

		if (strcmp(hs->name, d->cfg.host) == 0 || !host_fits(d, hs, spec, why, sizeof(why)))
			continue;
		avail = hs->evidence.free_mib > planned[i] ? hs->evidence.free_mib - planned[i] : 0;
		if (avail < spec->memory_mib) {
			snprintf(why, sizeof(why), "%s has %llu MiB free", hs->name,
				 (unsigned long long)avail);
			continue;
		}
		if (best == SIZE_MAX || avail > best_free) {
			best = i;
			best_free = avail;
		}
	}
	if (best == SIZE_MAX) {
		snprintf(st->why, sizeof(st->why), "no trusted target: %s", why);
		st->outcome = "no_target";
		return;
	}
	planned[best] += spec->memory_mib;
	snprintf(st->to, sizeof(st->to), "%s", smigd_hosts(d)->v[best].name);
	snprintf(st->why, sizeof(st->why), "%s, %llu MiB free", smig_verdict_name(
			 smigd_host_state_at(d, best)->verdict.kind), (unsigned long long)best_free);
	st->outcome = "planned";
}

static void plan(struct smigd *d, struct evac *e)
{
	uint64_t *planned = calloc(smigd_hosts(d)->n + 1, sizeof(*planned));

	for (struct vm *vm = vm_first(d); vm && e->n < EVAC_MAX; vm = vm_next(vm)) {
		struct evac_step *st = &e->step[e->n];

		if (vm_state(vm) != VM_RUNNING || vm_mig(vm) || vm_power_busy(vm))
			continue;
		snprintf(st->vm, sizeof(st->vm), "%s", vm_spec(vm)->name);
		if (planned)
			choose(d, vm_spec(vm), planned, st);
		e->n++;
	}
	free(planned);
}

static json_t *steps_json(const struct evac *e)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < e->n; i++)
		json_array_append_new(arr, json_pack("{s:s,s:s?,s:s,s:s}", "vm", e->step[i].vm,
						     "to", e->step[i].to[0] ? e->step[i].to : NULL,
						     "outcome", e->step[i].outcome, "reason",
						     e->step[i].why));
	return arr;
}

static void evac_next(struct smigd *d);

static void step_done(struct smigd *d, void *arg, const json_t *reply)
{
	struct evac_step *st = arg;
	const json_t *err = json_object_get(reply, "error");

	st->outcome = err ? "failed" : "migrated";
	if (err)
		snprintf(st->why, sizeof(st->why), "%s",
			 json_string_value(json_object_get(err, "message")));
	smig_info("event=evacuate_step vm=%s to=%s outcome=%s", st->vm, st->to, st->outcome);
	evac_next(d);
}

static void evac_finish(struct smigd *d)
{
	struct evac *e = d->evac;
	size_t moved = 0;
	char detail[128];

	for (size_t i = 0; i < e->n; i++)
		moved += strcmp(e->step[i].outcome, "migrated") == 0;
	snprintf(detail, sizeof(detail), "%zu of %zu VMs moved in %.0f ms", moved, e->n,
		 (double)(loop_now_ns() - e->t0) / 1e6);
	smig_info("event=evacuate_done host=%s %s", d->cfg.host, detail);
	audit_write(d, "smigd", "host.evacuate", d->cfg.host, "none", "-",
		    moved == e->n ? "ok" : "incomplete", detail);
	if (ctl_ref_waits(&e->ref))
		ctl_reply_ok(d, &e->ref, json_pack("{s:s,s:o,s:s}", "host", d->cfg.host, "steps",
						   steps_json(e), "summary", detail));
	else
		json_decref(e->ref.id);
	free(e);
	d->evac = NULL;
}

/* Starts the next planned migration, or ends the evacuation. */
static void evac_next(struct smigd *d)
{
	struct evac *e = d->evac;

	while (e->next < e->n) {
		struct evac_step *st = &e->step[e->next++];
		struct ctl_ref ref = { .done = step_done, .done_arg = st };
		struct mig_opts o = { 0 };
		char target[160];

		if (st->to[0] == '\0')
			continue;
		snprintf(target, sizeof(target), "vm:%s to:%s", st->vm, st->to);
		audit_write(d, "smigd", "host.evacuate", target, "none", "-", "started", st->why);
		ref.audit.on = true;
		snprintf(ref.audit.actor, sizeof(ref.audit.actor), "smigd");
		snprintf(ref.audit.action, sizeof(ref.audit.action), "host.evacuate");
		snprintf(ref.audit.target, sizeof(ref.audit.target), "%s", target);
		snprintf(ref.audit.rule, sizeof(ref.audit.rule), "-");
		mig_start(d, st->vm, st->to, &o, &ref);
		return; /* step_done goes on */
	}
	evac_finish(d);
}

void evac_start(struct smigd *d, const char *why, struct ctl_ref *ref, bool dry_run)
{
	struct evac *e;

	if (d->evac) {
		if (ref)
			ctl_reply_err(d, ref, "error", "an evacuation is already under way");
		return;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		if (ref)
			ctl_reply_err(d, ref, "error", "out of memory");
		return;
	}
	plan(d, e);
	if (dry_run) {
		ctl_reply_ok(d, ref, json_pack("{s:s,s:b,s:o}", "host", d->cfg.host, "dry_run", 1,
					       "steps", steps_json(e)));
		free(e);
		return;
	}
	snprintf(e->reason, sizeof(e->reason), "%s", why);
	e->t0 = loop_now_ns();
	if (ref) {
		e->ref = *ref;
		ref->id = NULL;
		ref->client_id = 0;
	}
	d->evac = e;
	smig_warn("event=evacuate_start host=%s vms=%zu reason=\"%s\"", d->cfg.host, e->n, why);
	d->stats.evacuations++;
	d->stats.gen++;
	audit_write(d, ref ? e->ref.audit.actor : "smigd", "host.evacuate", d->cfg.host, "none",
		    "-", "started", why);
	evac_next(d);
}

bool evac_running(const struct smigd *d)
{
	return d->evac != NULL;
}

void evac_free(struct smigd *d)
{
	if (d->evac)
		json_decref(d->evac->ref.id);
	free(d->evac);
	d->evac = NULL;
}
