/*
 * evac.c - evacuation: every running VM of this host goes to the best
 * target, because this host failed its own integrity check (attest.c) or
 * because an operator asked (`smig evacuate`); the VMs with the highest
 * label evacuation.priority first, at most attestation.evacuate_parallel
 * at a time.
 *
 * The best target for a VM is a host whose last verdict is fresh and
 * passes the attestation gate (not untrusted, not in maintenance, at the
 * VM's min_trust, with every capability it requires), to which the policy
 * lets the VM migrate - the same decision a manual migration gets, for the
 * operator who asked or, for an evacuation of smigd's own, as root would -
 * that this plan sends the least to so far; never by the free memory a
 * peer claims (the destination's own admission control decides that at
 * PREPARE). The dry run is this same plan. Each migration is
 * also gated live by mutual attestation (mig_src.c), so a host that turned
 * untrusted since its last verdict still gets nothing. Every step is
 * audited.
 */
#include "core/smigd.h"
#include "error.h"
#include "log.h"
#include "migration/migrate.h"
#include "policy/authz.h"
#include "vm/vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EVAC_MAX 256

struct evac_step {
	char vm[SMIG_NAME_MAX + 1];
	char to[SMIG_NAME_MAX + 1]; /* empty: no target */
	char rule[SMIG_RULE_MAX];   /* the policy rule that lets it go there */
	char why[400];
	long priority;       /* its label evacuation.priority (0 without) */
	const char *outcome; /* "planned", "migrated", "failed", "no_target" */
};

struct evac {
	struct evac_step step[EVAC_MAX];
	size_t n, next, running;
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

/*
 * The target for one VM: among the hosts that pass the gate and that the
 * policy lets the VM go to (for ref's caller, or as root), the one this
 * plan sends the least memory to so far (the table's order breaks ties).
 * What a peer says of its free memory counts for nothing here: a host
 * that cannot take the VM refuses its PREPARE by its own admission
 * control, and the step fails, as planned.
 */
static void choose(struct smigd *d, const struct ctl_ref *ref, const struct smig_vmspec *spec,
		   uint64_t *planned, struct evac_step *st)
{
	size_t best = SIZE_MAX;
	char why[400] = "no other host in the table";
	struct smig_policy_decision dec, best_dec = { 0 };

	for (size_t i = 0; i < smigd_hosts(d)->n; i++) {
		const struct host_state *hs = smigd_host_state_at(d, i);

		if (strcmp(hs->name, d->cfg.host) == 0 || !host_fits(d, hs, spec, why, sizeof(why)))
			continue;
		authz_decide(d, ref, SMIG_ACT_VM_MIGRATE, spec->name, hs->name, &dec);
		if (!dec.allow) {
			snprintf(why, sizeof(why), "the policy does not let %s go to %s: %s (rule %s)",
				 spec->name, hs->name, dec.reason, dec.rule);
			continue;
		}
		if (best == SIZE_MAX || planned[i] < planned[best]) {
			best = i;
			best_dec = dec;
		}
	}
	if (best == SIZE_MAX) {
		snprintf(st->why, sizeof(st->why), "no target: %s", why);
		st->outcome = "no_target";
		return;
	}
	snprintf(st->to, sizeof(st->to), "%s", smigd_hosts(d)->v[best].name);
	snprintf(st->rule, sizeof(st->rule), "%s", best_dec.rule);
	snprintf(st->why, sizeof(st->why), "%s; allowed by rule %s; %llu MiB of this plan there before it",
		 smig_verdict_name(smigd_host_state_at(d, best)->verdict.kind), best_dec.rule,
		 (unsigned long long)planned[best]);
	planned[best] += spec->memory_mib;
	st->outcome = "planned";
}

/* A VM's label evacuation.priority (an integer; 0 without or unreadable). */
static long priority(const struct smig_vmspec *spec)
{
	for (size_t i = 0; i < spec->nlabels; i++) {
		char *end;
		long v;

		if (strcmp(spec->labels[i].key, "evacuation.priority") != 0)
			continue;
		v = strtol(spec->labels[i].value, &end, 10);
		return *end == '\0' ? v : 0;
	}
	return 0;
}

static int by_priority(const void *a, const void *b)
{
	const struct evac_step *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	return strcmp(x->vm, y->vm);
}

/* Orders the VMs (highest priority first), then places them in that order. */
static void plan(struct smigd *d, struct evac *e, const struct ctl_ref *ref)
{
	uint64_t *planned = calloc(smigd_hosts(d)->n + 1, sizeof(*planned));

	for (struct vm *vm = vm_first(d); vm && e->n < EVAC_MAX; vm = vm_next(vm)) {
		struct evac_step *st = &e->step[e->n];

		if (vm_state(vm) != VM_RUNNING || vm_mig(vm) || vm_power_busy(vm))
			continue;
		snprintf(st->vm, sizeof(st->vm), "%s", vm_spec(vm)->name);
		st->priority = priority(vm_spec(vm));
		e->n++;
	}
	qsort(e->step, e->n, sizeof(e->step[0]), by_priority);
	for (size_t i = 0; planned && i < e->n; i++) {
		struct vm *vm = vm_find(d, e->step[i].vm);

		if (vm)
			choose(d, ref, vm_spec(vm), planned, &e->step[i]);
	}
	free(planned);
}

static json_t *steps_json(const struct evac *e)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < e->n; i++)
		json_array_append_new(arr, json_pack("{s:s,s:s?,s:s?,s:I,s:s,s:s}", "vm",
						     e->step[i].vm, "to",
						     e->step[i].to[0] ? e->step[i].to : NULL, "rule",
						     e->step[i].rule[0] ? e->step[i].rule : NULL,
						     "priority", (json_int_t)e->step[i].priority,
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
	d->evac->running--;
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

/* Starts planned migrations up to the cap; ends the evacuation when all are done. */
static void evac_next(struct smigd *d)
{
	struct evac *e = d->evac;

	while (e->next < e->n && e->running < (size_t)d->cfg.evacuate_parallel) {
		struct evac_step *st = &e->step[e->next++];
		struct ctl_ref ref = { .done = step_done, .done_arg = st };
		struct mig_opts o = { .evacuation = true };
		char target[160];

		if (st->to[0] == '\0')
			continue;
		snprintf(target, sizeof(target), "vm:%s to:%s", st->vm, st->to);
		audit_write(d, "smigd", "host.evacuate", target, "none", "-", "started", st->why);
		ref.audit.on = true;
		snprintf(ref.audit.actor, sizeof(ref.audit.actor), "smigd");
		snprintf(ref.audit.action, sizeof(ref.audit.action), "host.evacuate");
		snprintf(ref.audit.target, sizeof(ref.audit.target), "%s", target);
		snprintf(ref.audit.rule, sizeof(ref.audit.rule), "%s", st->rule);
		e->running++;
		mig_start(d, st->vm, st->to, &o, &ref);
		if (d->evac != e)
			return; /* its step ended at once, and with it the evacuation */
	}
	if (e->running == 0 && e->next >= e->n)
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
	plan(d, e, ref);
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
