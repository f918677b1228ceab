/*
 * evac.c - evacuation: every running VM of this host goes to the best
 * target, because this host failed its own integrity check (attest.c) or
 * because an operator asked (`smig evacuate`); the VMs with the highest
 * label evacuation.priority first, at most attestation.evacuate_parallel
 * at a time.
 *
 * The target for a VM is a host whose last verdict is fresh and passes
 * the attestation gate (not untrusted, not in maintenance, at the VM's
 * min_trust, with every capability it requires), to which the policy lets
 * the VM migrate - the same decision a manual migration gets, for the
 * operator who asked or, for an evacuation of smigd's own, as root would -
 * and which holds the VM's memory and vCPUs for it: the candidates are
 * asked in turn, the one this plan sends the least to so far first, and
 * the first whose admission control holds the capacity (peer RESERVE,
 * peer_resv.c) gets the VM; never by the free memory a peer claims. The
 * dry run is this same plan, made the same way, its holds let go at once.
 * Each migration is also gated live by mutual attestation (mig_src.c), so
 * a host that turned untrusted since its last verdict still gets nothing.
 * Every step is audited.
 */
#include "core/smigd.h"
#include "error.h"
#include "log.h"
#include "migration/migrate.h"
#include "msg.h"
#include "peer/peer.h"
#include "policy/authz.h"
#include "vm/vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EVAC_MAX 256
#define EVAC_HOLD_S 600     /* what a real evacuation asks its targets to hold */
#define EVAC_DRY_HOLD_S 30  /* and a dry run, whose holds are let go at once */

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
	bool asked;         /* ... someone did: the policy decides for them, else as root */
	bool dry_run;
	uint64_t t0;
	/* the plan being made: one VM at a time, one candidate at a time */
	size_t placing;     /* the step being placed */
	uint64_t *planned;  /* MiB this plan sends to each host of the table */
	bool *tried;        /* the hosts asked for the step being placed */
	size_t asking;      /* the host asked now (SIZE_MAX: none) */
	char asking_rule[SMIG_RULE_MAX];
	char refusals[400]; /* what the hosts asked so far said */
	bool fresh;         /* the step being placed has asked nobody yet */
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
 * The next candidate for one VM: among the hosts not asked yet that pass
 * the gate and that the policy lets the VM go to (for the operator who
 * asked, or as root), the one this plan sends the least memory to so far
 * (the table's order breaks ties). SIZE_MAX and why when none is left.
 */
static size_t candidate(struct smigd *d, struct evac *e, const struct smig_vmspec *spec,
			char *rule, char *why, size_t whylen)
{
	size_t best = SIZE_MAX;
	struct smig_policy_decision dec;

	snprintf(why, whylen, "no other host in the table");
	for (size_t i = 0; i < smigd_hosts(d)->n; i++) {
		const struct host_state *hs = smigd_host_state_at(d, i);

		if (strcmp(hs->name, d->cfg.host) == 0 || e->tried[i] ||
		    !host_fits(d, hs, spec, why, whylen))
			continue;
		authz_decide(d, e->asked ? &e->ref : NULL, SMIG_ACT_VM_MIGRATE, spec->name,
			     hs->name, &dec);
		if (!dec.allow) {
			snprintf(why, whylen, "the policy does not let %s go to %s: %s (rule %s)",
				 spec->name, hs->name, dec.reason, dec.rule);
			continue;
		}
		if (best == SIZE_MAX || e->planned[i] < e->planned[best]) {
			best = i;
			snprintf(rule, SMIG_RULE_MAX, "%s", dec.rule);
		}
	}
	return best;
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

/* The VMs to move, highest priority first. */
static void order(struct smigd *d, struct evac *e)
{
	for (struct vm *vm = vm_first(d); vm && e->n < EVAC_MAX; vm = vm_next(vm)) {
		struct evac_step *st = &e->step[e->n];

		if (vm_state(vm) != VM_RUNNING || vm_mig(vm) || vm_power_busy(vm))
			continue;
		snprintf(st->vm, sizeof(st->vm), "%s", vm_spec(vm)->name);
		st->priority = priority(vm_spec(vm));
		e->n++;
	}
	qsort(e->step, e->n, sizeof(e->step[0]), by_priority);
}

/* Lets the hold for step st go (fire and forget: it also ends by itself). */
static void let_go(struct smigd *d, const struct evac_step *st)
{
	struct smig_reserve r = { .release = true };
	char err[256];

	snprintf(r.vm, sizeof(r.vm), "%s", st->vm);
	r.vcpus = 1;
	if (st->to[0] && peer_reserve(d, st->to, &r, NULL, NULL, err, sizeof(err)) < 0)
		smig_debug("event=evacuate_release_failed vm=%s to=%s reason=\"%s\"", st->vm,
			   st->to, err);
}

static void place_next(struct smigd *d);
static void planned_all(struct smigd *d);

/* A candidate answered: it holds the VM's capacity (it gets the VM), or not (the next one). */
static void on_hold(struct smigd *d, void *arg, const char *host, bool held, const char *why)
{
	struct evac *e = d->evac;
	struct evac_step *st;
	const struct vm *vm;
	size_t i = e ? e->asking : SIZE_MAX;

	(void)arg;
	if (e == NULL || i == SIZE_MAX || strcmp(smigd_hosts(d)->v[i].name, host) != 0)
		return; /* an answer for a plan that is gone */
	st = &e->step[e->placing];
	e->asking = SIZE_MAX;
	vm = vm_find(d, st->vm);
	if (!held || vm == NULL) {
		size_t n = strlen(e->refusals);

		snprintf(e->refusals + n, sizeof(e->refusals) - n, "%s%s: %s", n ? "; " : "",
			 host, vm ? why : "the VM is gone");
		place_next(d);
		return;
	}
	snprintf(st->to, sizeof(st->to), "%s", host);
	snprintf(st->rule, sizeof(st->rule), "%s", e->asking_rule);
	snprintf(st->why, sizeof(st->why),
		 "%s; allowed by rule %s; %s holds %u MiB and %u vCPUs for it; %llu MiB of this "
		 "plan there before it%s%s",
		 smig_verdict_name(smigd_host_state_at(d, i)->verdict.kind), e->asking_rule, host,
		 vm_spec(vm)->memory_mib, vm_spec(vm)->vcpus, (unsigned long long)e->planned[i],
		 e->refusals[0] ? "; refused by " : "", e->refusals);
	e->planned[i] += vm_spec(vm)->memory_mib;
	st->outcome = "planned";
	e->placing++;
	e->fresh = true;
	place_next(d);
}

/*
 * Asks the next candidate for the step being placed to hold its VM, or
 * moves on to the next VM when no candidate is left; the plan is whole
 * when every VM is placed or has no target.
 */
static void place_next(struct smigd *d)
{
	struct evac *e = d->evac;

	while (e->placing < e->n) {
		struct evac_step *st = &e->step[e->placing];
		const struct vm *vm = vm_find(d, st->vm);
		struct smig_reserve r = { .ttl_s = e->dry_run ? EVAC_DRY_HOLD_S : EVAC_HOLD_S };
		char why[400], err[256];
		size_t i;

		if (e->fresh) {
			memset(e->tried, 0, smigd_hosts(d)->n * sizeof(*e->tried));
			e->refusals[0] = '\0';
			e->fresh = false;
		}
		i = vm ? candidate(d, e, vm_spec(vm), e->asking_rule, why, sizeof(why)) : SIZE_MAX;
		if (i == SIZE_MAX) {
			snprintf(st->why, sizeof(st->why), "no target: %s", !vm ? "the VM is gone"
				 : e->refusals[0] ? e->refusals : why);
			st->outcome = "no_target";
			e->placing++;
			e->fresh = true;
			continue;
		}
		e->tried[i] = true;
		snprintf(r.vm, sizeof(r.vm), "%s", st->vm);
		r.memory_mib = vm_spec(vm)->memory_mib;
		r.vcpus = vm_spec(vm)->vcpus;
		e->asking = i;
		if (peer_reserve(d, smigd_hosts(d)->v[i].name, &r, on_hold, NULL, err,
				 sizeof(err)) == 0)
			return; /* on_hold goes on */
		e->asking = SIZE_MAX;
		snprintf(why, sizeof(why), "%s%s: %s", e->refusals[0] ? "; " : "",
			 smigd_hosts(d)->v[i].name, err);
		snprintf(e->refusals + strlen(e->refusals),
			 sizeof(e->refusals) - strlen(e->refusals), "%s", why);
	}
	planned_all(d);
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
	if (err) {
		snprintf(st->why, sizeof(st->why), "%s",
			 json_string_value(json_object_get(err, "message")));
		let_go(d, st); /* a PREPARE that never came leaves the hold behind */
	}
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
	evac_free(d);
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

/* The plan is whole: a dry run shows it (and lets its holds go), a real one starts. */
static void planned_all(struct smigd *d)
{
	struct evac *e = d->evac;

	free(e->planned);
	free(e->tried);
	e->planned = NULL;
	e->tried = NULL;
	if (e->dry_run) {
		for (size_t i = 0; i < e->n; i++)
			let_go(d, &e->step[i]);
		ctl_reply_ok(d, &e->ref, json_pack("{s:s,s:b,s:o}", "host", d->cfg.host, "dry_run",
						   1, "steps", steps_json(e)));
		evac_free(d);
		return;
	}
	smig_warn("event=evacuate_start host=%s vms=%zu reason=\"%s\"", d->cfg.host, e->n,
		  e->reason);
	d->stats.evacuations++;
	d->stats.gen++;
	audit_write(d, e->asked ? e->ref.audit.actor : "smigd", "host.evacuate", d->cfg.host,
		    "none", "-", "started", e->reason);
	evac_next(d);
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
	if (e)
		e->planned = calloc(smigd_hosts(d)->n + 1, sizeof(*e->planned));
	if (e)
		e->tried = calloc(smigd_hosts(d)->n + 1, sizeof(*e->tried));
	if (e == NULL || e->planned == NULL || e->tried == NULL) {
		if (e) {
			free(e->planned);
			free(e->tried);
		}
		free(e);
		if (ref)
			ctl_reply_err(d, ref, "error", "out of memory");
		return;
	}
	snprintf(e->reason, sizeof(e->reason), "%s", why);
	e->t0 = loop_now_ns();
	e->dry_run = dry_run;
	e->asking = SIZE_MAX;
	e->fresh = true;
	if (ref) {
		e->ref = *ref;
		e->asked = true;
		ref->id = NULL;
		ref->client_id = 0;
	}
	d->evac = e;
	order(d, e);
	smig_info("event=evacuate_plan host=%s vms=%zu dry_run=%s", d->cfg.host, e->n,
		  dry_run ? "yes" : "no");
	place_next(d);
}

bool evac_running(const struct smigd *d)
{
	return d->evac != NULL;
}

void evac_free(struct smigd *d)
{
	if (d->evac) {
		json_decref(d->evac->ref.id);
		free(d->evac->planned);
		free(d->evac->tried);
	}
	free(d->evac);
	d->evac = NULL;
}
