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
 * asked in turn, by score (below), and the first whose admission control
 * holds the capacity (peer RESERVE, peer_resv.c) gets the VM: the free
 * memory a peer publishes orders the candidates, never decides. The
 * dry run is this same plan, made the same way, its holds let go at once.
 * Each migration is also gated live by mutual attestation (mig_src.c), so
 * a host that turned untrusted since its last verdict still gets nothing.
 * Every step is audited.
 *
 * `smig migrate VM --to auto` is this same plan for one VM: its target is
 * chosen as an evacuation's would be, then it migrates as if the operator
 * had named the host.
 *
 * With a fleet store the candidates are the members whose record the host
 * table verifies (a host whose smigd is down has none), and the order is
 * by score: the free memory the host's record last published, less what
 * this plan sends it already; without one every host scores 0 less what
 * the plan sends it (docs/architecture.md, "Placement").
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
	/* a placement (smig migrate --to auto): one VM, then its migration */
	bool place;
	struct mig_opts opts;
	struct evac *nextp; /* the other placements under way */
	bool fleet;        /* the candidates are the fleet store's members */
	bool cancelled;    /* a placement cancelled while a host was asked: ends with its answer */
};

struct evac_host {
	char name[SMIG_NAME_MAX + 1];
	size_t index;     /* in the host table as the plan began */
	bool member;      /* with a fleet store: its record is there, verified */
	uint64_t free_mib; /* what its record says is free (0: none said) */
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

static int host_cmp(const void *a, const void *b)
{
	return strcmp(((const struct evac_host *)a)->name, ((const struct evac_host *)b)->name);
}

/* e->hosts is sorted by name (plan_fleet): a table of a thousand hosts is looked up often */
static struct evac_host *plan_host(struct evac *e, const char *name)
{
	struct evac_host key = { .index = 0 };

	if (snprintf(key.name, sizeof(key.name), "%s", name) >= (int)sizeof(key.name))
		return NULL;
	return bsearch(&key, e->hosts, e->nhosts, sizeof(key), host_cmp);
}

/* What the fleet store says of each host, as the plan begins. */
static void plan_fleet(struct smigd *d, struct evac *e)
{
	struct store_member *m;
	size_t n;

	qsort(e->hosts, e->nhosts, sizeof(e->hosts[0]), host_cmp);
	e->fleet = store_active(d);
	if (!e->fleet)
		return;
	n = store_members(d, &m);
	for (size_t i = 0; i < n; i++) {
		struct evac_host *h = plan_host(e, m[i].name);

		if (h) {
			h->member = true;
			h->free_mib = m[i].cap.memory_free_mib;
		}
	}
	free(m);
}

/* The higher the better: what the host has free, less what this plan sends it already. */
static int64_t score(const struct evac_host *h)
{
	return (int64_t)h->free_mib - (int64_t)h->planned;
}

/*
 * The next candidate for one VM: among the hosts not asked yet that pass
 * the gate and that the policy lets the VM go to (for the operator who
 * asked, or as root), the one with the highest score (the table's order
 * breaks ties). NULL and why when none is left.
 */
static struct evac_host *candidate(struct smigd *d, struct evac *e,
				   const struct smig_vmspec *spec, char *rule, char *why,
				   size_t whylen)
{
	struct evac_host *best = NULL;
	struct smig_policy_decision dec;
	char one[400];
	size_t passed = 0;

	snprintf(why, whylen, "no other host in the table");
	for (size_t i = 0; i < smigd_hosts(d)->n; i++) {
		const struct host_state *hs = smigd_host_state_at(d, i);
		struct evac_host *h = plan_host(e, hs->name);

		if (h == NULL || strcmp(hs->name, d->cfg.host) == 0)
			continue;
		if (h->tried || h->silent) { /* asked already: its answer is in the refusals */
			if (passed++ == 0)
				why[0] = '\0';
			continue;
		}
		one[0] = '\0';
		if (e->fleet && !h->member)
			snprintf(one, sizeof(one),
				 "%s is not a member of the fleet store (its smigd is not running, or "
				 "its record there does not match the host table)",
				 hs->name);
		else if (host_fits(d, hs, spec, one, sizeof(one))) {
			authz_decide(d, e->asked ? &e->ref : NULL, SMIG_ACT_VM_MIGRATE, spec->name,
				     hs->name, &dec);
			if (!dec.allow)
				snprintf(one, sizeof(one),
					 "the policy does not let %s go to %s: %s (rule %s)", spec->name,
					 hs->name, dec.reason, dec.rule);
		}
		if (one[0]) { /* passed over: why goes into the list of reasons */
			size_t n = passed++ ? strlen(why) : 0;

			if (n + 2 < whylen)
				snprintf(why + n, whylen - n, "%s%s", n ? "; " : "", one);
			continue;
		}
		if (best == NULL || score(h) > score(best) ||
		    (score(h) == score(best) && h->index < best->index)) {
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

static struct evac *placing(struct smigd *d, const char *vm)
{
	for (struct evac *e = d->placing; e; e = e->nextp)
		if (strcmp(e->step[0].vm, vm) == 0)
			return e;
	return NULL;
}

/* The VMs to move, highest priority first (one whose host is being chosen already is not). */
static void order(struct smigd *d, struct evac *e)
{
	for (struct vm *vm = vm_first(d); vm && e->n < EVAC_MAX; vm = vm_next(vm)) {
		struct evac_step *st = &e->step[e->n];

		if (vm_state(vm) != VM_RUNNING || vm_mig(vm) || vm_power_busy(vm) ||
		    placing(d, vm_spec(vm)->name))
			continue;
		snprintf(st->vm, sizeof(st->vm), "%s", vm_spec(vm)->name);
		st->priority = priority(vm_spec(vm));
		e->n++;
	}
	qsort(e->step, e->n, sizeof(e->step[0]), by_priority);
}

static void place_next(struct smigd *d, struct evac *e);
static void planned_all(struct smigd *d, struct evac *e);
static void plan_free(struct smigd *d, struct evac *e);

/* host did not take the step being placed: why goes into the plan's list of refusals. */
static void refused(struct evac *e, const char *host, const char *why)
{
	size_t n = strlen(e->refusals);

	snprintf(e->refusals + n, sizeof(e->refusals) - n, "%s%s: %s", n ? "; " : "", host, why);
}

/* The plan arg answers for, if it is still being made (a real one, or a dry run). */
static struct evac *live_plan(struct smigd *d, void *arg)
{
	if (arg && (arg == d->evac || arg == d->evac_dry))
		return arg;
	for (struct evac *e = d->placing; arg && e; e = e->nextp)
		if (e == arg)
			return e;
	return NULL;
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
	char free_s[64];

	if (e == NULL || h == NULL || strcmp(e->asking, host) != 0)
		return; /* an answer for a plan that is gone */
	if (e->cancelled) { /* the operator heard already; a hold granted meanwhile goes */
		if (held)
			mig_hold_release(d, host, e->step[e->placing].vm);
		plan_free(d, e);
		return;
	}
	st = &e->step[e->placing];
	e->asking[0] = '\0';
	vm = vm_find(d, st->vm);
	if (!held || vm == NULL) {
		h->silent |= !answered;
		refused(e, host, vm ? why : "the VM is gone");
		if (held) /* the VM went while its host held it */
			mig_hold_release(d, host, st->vm);
		place_next(d, e);
		return;
	}
	snprintf(st->to, sizeof(st->to), "%s", host);
	snprintf(st->rule, sizeof(st->rule), "%s", e->asking_rule);
	if (e->fleet)
		snprintf(free_s, sizeof(free_s), "%llu MiB free by its record",
			 (unsigned long long)h->free_mib);
	else
		snprintf(free_s, sizeof(free_s), "free memory not known: no fleet store");
	snprintf(st->why, sizeof(st->why),
		 "%s; allowed by rule %s; %s holds %u MiB and %u vCPUs for it; score %lld (%s, "
		 "%llu MiB of this plan there before it)%s%s",
		 smig_verdict_name(hs ? hs->verdict.kind : SMIG_VERDICT_UNKNOWN),
		 e->asking_rule, host, vm_spec(vm)->memory_mib, vm_spec(vm)->vcpus,
		 (long long)score(h), free_s, (unsigned long long)h->planned,
		 e->refusals[0] ? "; refused by " : "", e->refusals);
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
			snprintf(st->why, sizeof(st->why), "no target: %s%s%s",
				 !vm ? "the VM is gone" : e->refusals,
				 vm && e->refusals[0] && why[0] ? "; " : "", vm ? why : "");
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

static void step_done(struct smigd *d, void *arg, const json_t *reply)
{
	struct evac_step *st = arg;
	const json_t *err = json_object_get(reply, "error");

	st->outcome = err ? "failed" : "migrated";
	if (err) {
		snprintf(st->why, sizeof(st->why), "%s",
			 json_string_value(json_object_get(err, "message")));
	} /* a hold whose PREPARE never came went with the migration (mig_opts.held, mig_free) */
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
		struct mig_opts o = { .evacuation = true, .held = true };
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

/* Forgets plan e (the evacuation's, a dry run's or a placement's). */
static void plan_free(struct smigd *d, struct evac *e)
{
	if (e == NULL)
		return;
	if (d->evac == e)
		d->evac = NULL;
	if (d->evac_dry == e)
		d->evac_dry = NULL;
	for (struct evac **p = &d->placing; *p; p = &(*p)->nextp)
		if (*p == e) {
			*p = e->nextp;
			break;
		}
	json_decref(e->ref.id);
	free(e->hosts);
	free(e);
}

/* A placement is made: its VM migrates there, or the operator hears why it cannot. */
static void placed(struct smigd *d, struct evac *e)
{
	struct evac_step *st = &e->step[0];

	if (e->n == 0 || st->to[0] == '\0') {
		smig_warn("event=placement_failed vm=%s reason=\"%s\"", st->vm, st->why);
		ctl_reply_err(d, &e->ref, "no_target", "no host can take %s now: %s", st->vm,
			      st->why);
		plan_free(d, e);
		return;
	}
	smig_info("event=placement vm=%s to=%s ms=%.1f reason=\"%s\"", st->vm, st->to,
		  (double)(loop_now_ns() - e->t0) / 1e6, st->why);
	ctl_progress(d, &e->ref, json_pack("{s:s,s:s,s:s}", "phase", "placed", "to", st->to,
					   "reason", st->why));
	/* the migration is audited with the host chosen and the rule that let it go there */
	snprintf(e->ref.audit.target, sizeof(e->ref.audit.target), "vm:%s to:%s", st->vm, st->to);
	snprintf(e->ref.audit.rule, sizeof(e->ref.audit.rule), "%s", st->rule);
	audit_write(d, e->ref.audit.actor, e->ref.audit.action, e->ref.audit.target, "allow",
		    e->ref.audit.rule, "started", st->why);
	e->opts.held = true; /* let go should the migration end before its PREPARE */
	mig_start(d, st->vm, st->to, &e->opts, &e->ref);
	plan_free(d, e);
}

/* The plan is whole: a dry run shows it (and lets its holds go), a real one starts. */
static void planned_all(struct smigd *d, struct evac *e)
{
	if (e->place) {
		placed(d, e);
		return;
	}
	if (e->dry_run) {
		for (size_t i = 0; i < e->n; i++)
			if (e->step[i].to[0])
				mig_hold_release(d, e->step[i].to, e->step[i].vm);
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

/* A new plan over the host table as it is now; the ref's reply is the plan's (ref may be NULL). */
static struct evac *plan_new(struct smigd *d, struct ctl_ref *ref)
{
	struct evac *e = calloc(1, sizeof(*e));

	if (e)
		e->hosts = calloc(smigd_hosts(d)->n + 1, sizeof(*e->hosts));
	if (e == NULL || e->hosts == NULL) {
		free(e);
		if (ref)
			ctl_reply_err(d, ref, "error", "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < smigd_hosts(d)->n; i++) {
		snprintf(e->hosts[e->nhosts].name, sizeof(e->hosts[0].name), "%s",
			 smigd_hosts(d)->v[i].name);
		e->hosts[e->nhosts].index = i;
		e->nhosts++;
	}
	plan_fleet(d, e);
	e->t0 = loop_now_ns();
	e->fresh = true;
	if (ref) {
		e->ref = *ref;
		e->asked = true;
		ref->id = NULL;
		ref->client_id = 0;
	}
	return e;
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
	e = plan_new(d, ref);
	if (e == NULL)
		return;
	snprintf(e->reason, sizeof(e->reason), "%s", why);
	e->dry_run = dry_run;
	if (dry_run)
		d->evac_dry = e;
	else
		d->evac = e;
	order(d, e);
	smig_info("event=evacuate_plan host=%s vms=%zu dry_run=%s", d->cfg.host, e->n,
		  dry_run ? "yes" : "no");
	place_next(d, e);
}

void evac_place(struct smigd *d, const char *vm, const struct mig_opts *o, struct ctl_ref *ref)
{
	const struct vm *v = vm_find(d, vm);
	struct evac *e;

	if (v == NULL) {
		ctl_reply_err(d, ref, "not_found", "no VM named %s on %s", vm, d->cfg.host);
		return;
	}
	if (vm_state(v) != VM_RUNNING || vm_mig(v) || vm_power_busy(v)) {
		ctl_reply_err(d, ref, "error", "%s is %s%s; only a running VM migrates", vm,
			      vm_power_busy(v) ? "shutting down or rebooting"
					       : vm_state_name(vm_state(v)),
			      vm_mig(v) ? " and migrating" : "");
		return;
	}
	if (placing(d, vm)) {
		ctl_reply_err(d, ref, "busy", "a host for %s is being chosen already", vm);
		return;
	}
	e = plan_new(d, ref);
	if (e == NULL)
		return;
	e->place = true;
	e->opts = *o;
	snprintf(e->step[0].vm, sizeof(e->step[0].vm), "%s", vm);
	e->step[0].priority = priority(vm_spec(v));
	e->n = 1;
	e->nextp = d->placing;
	d->placing = e;
	smig_info("event=placement_start vm=%s hosts=%zu fleet=%s", vm, e->nhosts,
		  e->fleet ? "yes" : "no");
	place_next(d, e);
}

bool evac_place_cancel(struct smigd *d, const char *vm, struct ctl_ref *ref)
{
	struct evac *e = placing(d, vm);

	if (e == NULL || e->cancelled)
		return false;
	smig_info("event=placement_cancelled vm=%s asking=%s", vm, e->asking[0] ? e->asking : "-");
	ctl_reply_err(d, &e->ref, "migration_failed",
		      "%s: cancelled by the operator while its destination was being chosen; it "
		      "runs on %s",
		      vm, d->cfg.host);
	ctl_reply_ok(d, ref, json_pack("{s:s,s:s,s:s}", "vm", vm, "id", "", "status", "cancelled"));
	if (e->asking[0]) /* its answer ends the plan (and lets a hold go) */
		e->cancelled = true;
	else
		plan_free(d, e);
	return true;
}

bool evac_running(const struct smigd *d)
{
	return d->evac != NULL;
}

void evac_free(struct smigd *d)
{
	plan_free(d, d->evac);
	plan_free(d, d->evac_dry);
	while (d->placing)
		plan_free(d, d->placing);
}
