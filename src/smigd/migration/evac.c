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
	/*
	 * The plan being made, one VM at a time, one candidate at a time. Hosts
	 * go by name: the table may be reloaded while the plan waits for them.
	 */
	size_t placing;     /* the step being placed */
	struct evac_host *hosts; /* the table's hosts as the plan began */
	size_t nhosts;
	char asking[SMIG_NAME_MAX + 1]; /* the host asked now ("" none) */
	char asking_rule[SMIG_RULE_MAX];
	char refusals[400]; /* what the hosts asked so far said */
	bool fresh;         /* the step being placed has asked nobody yet */
};

struct evac_host {
	char name[SMIG_NAME_MAX + 1];
	uint64_t planned; /* MiB this plan sends there */
	bool tried;       /* asked for the step being placed */
	bool silent;      /* did not answer (unreachable, timed out): not asked again */
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

static struct evac_host *plan_host(struct evac *e, const char *name)
{
	for (size_t i = 0; i < e->nhosts; i++)
		if (strcmp(e->hosts[i].name, name) == 0)
			return &e->hosts[i];
	return NULL;
}

/*
 * The next candidate for one VM: among the hosts not asked yet that pass
 * the gate and that the policy lets the VM go to (for the operator who
 * asked, or as root), the one this plan sends the least memory to so far
 * (the table's order breaks ties). NULL and why when none is left.
 */
static struct evac_host *candidate(struct smigd *d, struct evac *e,
				   const struct smig_vmspec *spec, char *rule, char *why,
				   size_t whylen)
{
	struct evac_host *best = NULL;
	struct smig_policy_decision dec;

	snprintf(why, whylen, "no other host in the table");
	for (size_t i = 0; i < smigd_hosts(d)->n; i++) {
		const struct host_state *hs = smigd_host_state_at(d, i);
		struct evac_host *h = plan_host(e, hs->name);

		if (h == NULL || strcmp(hs->name, d->cfg.host) == 0 || h->tried || h->silent ||
		    !host_fits(d, hs, spec, why, whylen))
			continue;
		authz_decide(d, e->asked ? &e->ref : NULL, SMIG_ACT_VM_MIGRATE, spec->name,
			     hs->name, &dec);
		if (!dec.allow) {
			snprintf(why, whylen, "the policy does not let %s go to %s: %s (rule %s)",
				 spec->name, hs->name, dec.reason, dec.rule);
			continue;
		}
		if (best == NULL || h->planned < best->planned) {
			best = h;
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

/* Lets the hold on host for vm go (fire and forget: it also ends by itself). */
static void let_go(struct smigd *d, const char *host, const char *vm)
{
	struct smig_reserve r = { .release = true, .vcpus = 1 };
	char err[256];

	snprintf(r.vm, sizeof(r.vm), "%s", vm);
	if (peer_reserve(d, host, &r, NULL, NULL, err, sizeof(err)) < 0)
		smig_debug("event=evacuate_release_failed vm=%s to=%s reason=\"%s\"", vm, host,
			   err);
}

static void place_next(struct smigd *d, struct evac *e);
static void planned_all(struct smigd *d, struct evac *e);

/* host did not take the step being placed: why goes into the plan's list of refusals. */
static void refused(struct evac *e, const char *host, const char *why)
{
	size_t n = strlen(e->refusals);

	snprintf(e->refusals + n, sizeof(e->refusals) - n, "%s%s: %s", n ? "; " : "", host, why);
}

/* The plan arg answers for, if it is still being made (a real one, or a dry run). */
static struct evac *live_plan(struct smigd *d, void *arg)
{
	return arg && (arg == d->evac || arg == d->evac_dry) ? arg : NULL;
}

/*
 * A candidate answered: it holds the VM's capacity (it gets the VM), or
 * not, or it never answered (it is not asked again in this plan); the
 * next candidate is asked then.
 */
static void on_hold(struct smigd *d, void *arg, const char *host, bool answered, bool held,
		    const char *why)
{
	struct evac *e = live_plan(d, arg);
	struct evac_host *h = e ? plan_host(e, host) : NULL;
	const struct host_state *hs = smigd_host_state(d, host);
	struct evac_step *st;
	const struct vm *vm;

	if (e == NULL || h == NULL || strcmp(e->asking, host) != 0)
		return; /* an answer for a plan that is gone */
	st = &e->step[e->placing];
	e->asking[0] = '\0';
	vm = vm_find(d, st->vm);
	if (!held || vm == NULL) {
		h->silent |= !answered;
		refused(e, host, vm ? why : "the VM is gone");
		if (held) /* the VM went while its host held it */
			let_go(d, host, st->vm);
		place_next(d, e);
		return;
	}
	snprintf(st->to, sizeof(st->to), "%s", host);
	snprintf(st->rule, sizeof(st->rule), "%s", e->asking_rule);
	snprintf(st->why, sizeof(st->why),
		 "%s; allowed by rule %s; %s holds %u MiB and %u vCPUs for it; %llu MiB of this "
		 "plan there before it%s%s",
		 smig_verdict_name(hs ? hs->verdict.kind : SMIG_VERDICT_UNKNOWN),
		 e->asking_rule, host, vm_spec(vm)->memory_mib, vm_spec(vm)->vcpus,
		 (unsigned long long)h->planned, e->refusals[0] ? "; refused by " : "",
		 e->refusals);
	h->planned += vm_spec(vm)->memory_mib;
	st->outcome = "planned";
	e->placing++;
	e->fresh = true;
	place_next(d, e);
}

/*
 * Asks the next candidate for the step being placed to hold its VM, or
 * moves on to the next VM when no candidate is left; the plan is whole
 * when every VM is placed or has no target.
 */
static void place_next(struct smigd *d, struct evac *e)
{
	while (e->placing < e->n) {
		struct evac_step *st = &e->step[e->placing];
		const struct vm *vm = vm_find(d, st->vm);
		struct smig_reserve r = { .ttl_s = e->dry_run ? EVAC_DRY_HOLD_S : EVAC_HOLD_S };
		struct evac_host *h;
		char why[400], err[256];

		if (e->fresh) {
			for (size_t i = 0; i < e->nhosts; i++)
				e->hosts[i].tried = false;
			e->refusals[0] = '\0';
			e->fresh = false;
		}
		h = vm ? candidate(d, e, vm_spec(vm), e->asking_rule, why, sizeof(why)) : NULL;
		if (h == NULL) {
			snprintf(st->why, sizeof(st->why), "no target: %s", !vm ? "the VM is gone"
				 : e->refusals[0] ? e->refusals : why);
			st->outcome = "no_target";
			e->placing++;
			e->fresh = true;
			continue;
		}
		h->tried = true;
		snprintf(r.vm, sizeof(r.vm), "%s", st->vm);
		r.memory_mib = vm_spec(vm)->memory_mib;
		r.vcpus = vm_spec(vm)->vcpus;
		snprintf(e->asking, sizeof(e->asking), "%s", h->name);
		if (peer_reserve(d, h->name, &r, on_hold, e, err, sizeof(err)) == 0)
			return; /* on_hold goes on */
		e->asking[0] = '\0';
		h->silent = true;
		refused(e, h->name, err);
	}
	planned_all(d, e);
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
static void plan_free(struct smigd *d, struct evac *e);

static void step_done(struct smigd *d, void *arg, const json_t *reply)
{
	struct evac_step *st = arg;
	const json_t *err = json_object_get(reply, "error");

	st->outcome = err ? "failed" : "migrated";
	if (err) {
		snprintf(st->why, sizeof(st->why), "%s",
			 json_string_value(json_object_get(err, "message")));
		let_go(d, st->to, st->vm); /* a PREPARE that never came leaves the hold behind */
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
	plan_free(d, e);
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

/* Forgets plan e (the evacuation's, or a dry run's). */
static void plan_free(struct smigd *d, struct evac *e)
{
	if (e == NULL)
		return;
	if (d->evac == e)
		d->evac = NULL;
	if (d->evac_dry == e)
		d->evac_dry = NULL;
	json_decref(e->ref.id);
	free(e->hosts);
	free(e);
}

/* The plan is whole: a dry run shows it (and lets its holds go), a real one starts. */
static void planned_all(struct smigd *d, struct evac *e)
{
	if (e->dry_run) {
		for (size_t i = 0; i < e->n; i++)
			if (e->step[i].to[0])
				let_go(d, e->step[i].to, e->step[i].vm);
		ctl_reply_ok(d, &e->ref, json_pack("{s:s,s:b,s:o}", "host", d->cfg.host, "dry_run",
						   1, "steps", steps_json(e)));
		plan_free(d, e);
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

	if (dry_run ? d->evac_dry != NULL : d->evac != NULL) {
		if (ref)
			ctl_reply_err(d, ref, "error", "%s",
				      dry_run ? "a dry run is already being planned"
					      : "an evacuation is already under way");
		return;
	}
	e = calloc(1, sizeof(*e));
	if (e)
		e->hosts = calloc(smigd_hosts(d)->n + 1, sizeof(*e->hosts));
	if (e == NULL || e->hosts == NULL) {
		free(e);
		if (ref)
			ctl_reply_err(d, ref, "error", "out of memory");
		return;
	}
	for (size_t i = 0; i < smigd_hosts(d)->n; i++)
		snprintf(e->hosts[e->nhosts++].name, sizeof(e->hosts[0].name), "%s",
			 smigd_hosts(d)->v[i].name);
	snprintf(e->reason, sizeof(e->reason), "%s", why);
	e->t0 = loop_now_ns();
	e->dry_run = dry_run;
	e->fresh = true;
	if (ref) {
		e->ref = *ref;
		e->asked = true;
		ref->id = NULL;
		ref->client_id = 0;
	}
	if (dry_run)
		d->evac_dry = e;
	else
		d->evac = e;
	order(d, e);
	smig_info("event=evacuate_plan host=%s vms=%zu dry_run=%s", d->cfg.host, e->n,
		  dry_run ? "yes" : "no");
	place_next(d, e);
}

bool evac_running(const struct smigd *d)
{
	return d->evac != NULL;
}

void evac_free(struct smigd *d)
{
	plan_free(d, d->evac);
	plan_free(d, d->evac_dry);
}
