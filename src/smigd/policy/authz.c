/*
 * authz.c - smigd's access control: who is asking (a local user from the
 * control socket's SO_PEERCRED, with the groups NSS knows for them, or a
 * peer host by its certificate), what they ask for, and the policy's
 * answer (libsmig policy.c decides; this file gathers the facts and acts).
 *
 * Every refusal is audited here with the deciding rule. Allowed control
 * requests are audited with their outcome when they are answered
 * (control.c); allowed incoming migrations when they end (mig_dst.c).
 */
#include "policy/authz.h"
#include "ctl.h"
#include "error.h"
#include "log.h"
#include "trust/trust.h"
#include "vm/vm.h"

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHO_GROUPS_MAX 64

/* The policy part's state. */
struct authz {
	struct smig_policy *policy;
};

/* A local user as the policy sees them. */
struct who {
	char name[64];
	char gnames[WHO_GROUPS_MAX][64];
	const char *groups[WHO_GROUPS_MAX];
	struct smig_subject subj;
};

/*
 * The names of gid and of the supplementary groups: those the caller's
 * process has (given) or, when unknown (n < 0), those NSS lists for w.
 */
static void who_groups(struct who *w, gid_t gid, const gid_t *given, int n)
{
	gid_t gids[WHO_GROUPS_MAX + 1];
	char buf[4096];

	if (n >= 0) {
		gids[0] = gid;
		for (int i = 0; i < n && i < WHO_GROUPS_MAX; i++)
			gids[i + 1] = given[i];
		n = n < WHO_GROUPS_MAX ? n + 1 : WHO_GROUPS_MAX + 1;
	} else {
		n = WHO_GROUPS_MAX;
		if (w->name[0] == '\0' || getgrouplist(w->name, gid, gids, &n) < 0) {
			gids[0] = gid;
			n = 1;
		}
	}
	for (int i = 0; i < n && w->subj.ngroups < WHO_GROUPS_MAX; i++) {
		struct group g, *gp = NULL;

		if (getgrgid_r(gids[i], &g, buf, sizeof(buf), &gp) != 0 || gp == NULL)
			continue;
		snprintf(w->gnames[w->subj.ngroups], sizeof(w->gnames[0]), "%s", gp->gr_name);
		w->groups[w->subj.ngroups] = w->gnames[w->subj.ngroups];
		w->subj.ngroups++;
	}
	w->subj.groups = w->groups;
}

static void who_from_uid(uid_t uid, gid_t gid, const gid_t *groups, int ngroups,
			 struct who *w)
{
	struct passwd pw, *pp = NULL;
	char buf[4096];

	memset(w, 0, sizeof(*w));
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &pp) == 0 && pp)
		snprintf(w->name, sizeof(w->name), "%s", pp->pw_name);
	w->subj.kind = SMIG_SUBJ_USER;
	w->subj.name = w->name;
	w->subj.uid = (uint32_t)uid;
	who_groups(w, gid, groups, ngroups);
}

/* A named user, known to NSS or not (then with no uid and no groups). */
static void who_from_name(const char *name, struct who *w)
{
	struct passwd pw, *pp = NULL;
	char buf[4096];

	if (getpwnam_r(name, &pw, buf, sizeof(buf), &pp) == 0 && pp) {
		who_from_uid(pp->pw_uid, pp->pw_gid, NULL, -1, w);
		return;
	}
	memset(w, 0, sizeof(*w));
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->subj.kind = SMIG_SUBJ_USER;
	w->subj.name = w->name;
	w->subj.uid = UINT32_MAX;
}

void authz_actor(const struct ctl_ref *ref, char *out, size_t len)
{
	struct passwd pw, *pp = NULL;
	char buf[4096];

	if (!ref->has_cred) {
		snprintf(out, len, "smigd");
		return;
	}
	if (getpwuid_r(ref->cred.uid, &pw, buf, sizeof(buf), &pp) == 0 && pp)
		snprintf(out, len, "user:%s(%u)", pp->pw_name, (unsigned)ref->cred.uid);
	else
		snprintf(out, len, "uid:%u", (unsigned)ref->cred.uid);
}

/* The facts about vm and target that bindings and constraints look at. */
static void fill_req(struct smigd *d, struct smig_policy_req *r, enum smig_action a,
		     const char *vm, const char *target)
{
	const struct vm *v = vm ? vm_find(d, vm) : NULL;
	const struct smig_host *h = target ? smig_hosts_by_name(smigd_hosts(d), target) : NULL;
	const struct host_state *hs = target ? smigd_host_state(d, target) : NULL;

	r->action = a;
	r->vm = vm;
	if (v) {
		r->vm_labels = vm_spec(v)->labels;
		r->vm_nlabels = vm_spec(v)->nlabels;
		r->vm_min_trust = vm_spec(v)->min_trust;
	}
	r->target = target;
	if (h) {
		r->target_labels = h->labels;
		r->target_nlabels = h->nlabels;
	}
	/* Known verdicts only: the migration's own session attests the target again. */
	r->check_trust = a == SMIG_ACT_VM_MIGRATE && hs != NULL && hs->attested_at != 0;
	r->target_trust = hs ? hs->trust : SMIG_TRUST_NONE;
	r->target_why = hs && hs->attested_at ? hs->verdict.reason : NULL;
	r->migrations_active = (int)d->migrations;
}

static void target_str(const char *vm, const char *target, char *out, size_t len)
{
	snprintf(out, len, "%s%s%s%s", vm ? "vm:" : "", vm ? vm : "",
		 target ? (vm ? " to:" : "host:") : "", target ? target : "");
	if (out[0] == '\0')
		snprintf(out, len, "-");
}

/* What cannot be audited is not done (looking excepted). */
static void unaudited_refuse(struct smigd *d, enum smig_action a,
			     struct smig_policy_decision *dec)
{
	if (!dec->allow || audit_writable(d) || strstr(smig_action_name(a), ".view"))
		return;
	dec->allow = false;
	snprintf(dec->rule, sizeof(dec->rule), "audit-unavailable");
	snprintf(dec->reason, sizeof(dec->reason),
		 "the audit log cannot be written, so nothing that changes state is done");
}

void authz_decide(struct smigd *d, const struct ctl_ref *ref, enum smig_action a,
		  const char *vm, const char *target, struct smig_policy_decision *dec)
{
	struct smig_policy_req r = { 0 };
	struct who w;

	if (ref && ref->has_cred)
		who_from_uid(ref->cred.uid, ref->cred.gid, ref->groups, ref->ngroups, &w);
	else
		who_from_uid(0, 0, NULL, -1, &w); /* smigd on its own acts as root would */
	r.who = w.subj;
	fill_req(d, &r, a, vm, target);
	smig_policy_eval(d->authz->policy, &r, dec);
}

bool authz_request(struct smigd *d, enum smig_action a, const char *vm, const char *target,
		   const char *job, struct ctl_ref *ref)
{
	struct smig_policy_req r = { 0 };
	struct smig_policy_decision dec;
	struct ctl_audit *au = &ref->audit;
	char key[512];
	struct who w;

	who_from_uid(ref->cred.uid, ref->cred.gid, ref->groups, ref->ngroups, &w);
	r.who = w.subj;
	fill_req(d, &r, a, vm, target);
	smig_policy_eval(d->authz->policy, &r, &dec);
	unaudited_refuse(d, a, &dec);
	memset(au, 0, sizeof(*au));
	authz_actor(ref, au->actor, sizeof(au->actor));
	snprintf(au->action, sizeof(au->action), "%s", smig_action_name(a));
	target_str(vm, target, au->target, sizeof(au->target));
	snprintf(au->rule, sizeof(au->rule), "%s", dec.rule);
	if (!dec.allow) {
		smig_warn("event=denied actor=%s action=%s target=\"%s\" rule=%s", au->actor,
			  au->action, au->target, dec.rule);
		/* anyone may ask again and again: a count, not an fsync each (auditlog.c) */
		snprintf(key, sizeof(key), "deny|%s|%s|%s|%s", au->actor, au->action, dec.rule,
			 au->target);
		audit_write_folded(d, key, au->actor, au->action, au->target, "deny", dec.rule,
				   "refused", dec.reason);
		sec_event(d, SMIG_SEC_POLICY_DENIAL, "local", NULL, "%s: %s", au->actor, dec.reason);
		if (job) /* the reason names the VM, which a caller who knows only the id may not learn */
			ctl_reply_err(d, ref, "denied", "%s of the migration %s is not allowed (rule %s)",
				      au->action, job, dec.rule);
		else
			ctl_reply_err(d, ref, "denied", "%s (rule %s)", dec.reason, dec.rule);
		return false;
	}
	/* Looking is not audited when allowed; everything else is, with its outcome. */
	au->on = strstr(au->action, ".view") == NULL;
	return true;
}

void authz_allows_each(struct smigd *d, const struct ctl_ref *ref, enum smig_action a,
		       const char *const *vms, size_t n, bool *allowed)
{
	struct who w;

	if (!ref->has_cred) {
		for (size_t i = 0; i < n; i++)
			allowed[i] = true;
		return;
	}
	/* one look-up of the caller (NSS may be a directory server) for all of them */
	who_from_uid(ref->cred.uid, ref->cred.gid, ref->groups, ref->ngroups, &w);
	for (size_t i = 0; i < n; i++) {
		struct smig_policy_req r = { 0 };
		struct smig_policy_decision dec;

		r.who = w.subj;
		fill_req(d, &r, a, vms[i], NULL);
		r.vm_labels_unknown = vm_find(d, vms[i]) == NULL; /* a VM of the fleet's, not here */
		smig_policy_eval(d->authz->policy, &r, &dec);
		allowed[i] = dec.allow;
	}
}

bool authz_peer_migrate(struct smigd *d, const char *peer, const struct smig_vmspec *spec,
			struct smig_policy_decision *out)
{
	const struct smig_host *self = smig_hosts_by_name(smigd_hosts(d), d->cfg.host);
	struct smig_policy_req r = {
		.who = { .kind = SMIG_SUBJ_PEER, .name = peer },
		.action = SMIG_ACT_VM_MIGRATE,
		.vm = spec->name,
		.vm_labels = spec->labels,
		.vm_nlabels = spec->nlabels,
		.vm_min_trust = spec->min_trust,
		.target = d->cfg.host,
		.target_labels = self ? self->labels : NULL,
		.target_nlabels = self ? self->nlabels : 0,
		/* this migration is already counted */
		.migrations_active = (int)d->migrations - 1,
	};
	char actor[96], target[160];

	smig_policy_eval(d->authz->policy, &r, out);
	unaudited_refuse(d, SMIG_ACT_VM_MIGRATE, out);
	if (out->allow)
		return true;
	snprintf(actor, sizeof(actor), "peer:%s", peer);
	snprintf(target, sizeof(target), "vm:%s from:%s", spec->name, peer);
	smig_warn("event=denied actor=%s action=vm.migrate target=\"%s\" rule=%s", actor,
		  target, out->rule);
	audit_write(d, actor, "vm.migrate", target, "deny", out->rule, "refused", out->reason);
	{
		const struct smig_host *h = smig_hosts_by_name(smigd_hosts(d), peer);

		sec_event(d, SMIG_SEC_POLICY_DENIAL, h ? h->addr : "", peer, "%s", out->reason);
	}
	return false;
}

/*
 * Loads cfg's policy (or the built-in one) from its file, or from text
 * when that is not NULL (the warden read the file); the first problem in
 * err.
 */
static int policy_load(const struct smig_config *cfg, const char *text,
		       struct smig_policy **out, char *err, size_t errlen)
{
	struct smig_diags *diags;
	int rc;

	if (cfg->policy_file[0] == '\0')
		return smig_policy_builtin(out);
	diags = calloc(1, sizeof(*diags));
	SMIG_ENSURE(diags != NULL, SMIG_ENOMEM);
	if (text)
		rc = smig_policy_parse(cfg->policy_file, text, strlen(text), out, diags);
	else
		rc = smig_policy_load(cfg->policy_file, out, diags);
	if (rc < 0)
		snprintf(err, errlen, "%s%s", diags->n ? diags->msg[0] : smig_strerror(rc),
			 diags->n > 1 ? " (and more: smig policy lint)" : "");
	free(diags);
	return rc;
}

/* A fleet-wide cap needs the fleet store to be enforced: say so when it has none. */
static void cluster_cap_check(const struct smig_config *cfg, const struct smig_policy *p)
{
	if (smig_policy_max_cluster_migrations(p) > 0 && !cfg->store_etcd)
		smig_warn("event=policy_cluster_cap_ignored file=%s max_cluster_migrations=%d "
			  "reason=\"store.backend is files: there is no fleet store to count the "
			  "fleet's migrations in\" hint=\"set store.backend etcd, or drop the limit\"",
			  smig_policy_name(p), smig_policy_max_cluster_migrations(p));
}

int authz_init(struct smigd *d)
{
	char err[400];
	int rc;

	d->authz = calloc(1, sizeof(*d->authz));
	SMIG_ENSURE(d->authz != NULL, SMIG_ENOMEM);
	rc = policy_load(&d->cfg, NULL, &d->authz->policy, err, sizeof(err));

	if (rc < 0) {
		smig_err("event=policy_invalid reason=\"%s\"", err);
		return rc;
	}
	smig_info("event=policy_loaded file=%s bindings=%zu",
		  smig_policy_name(d->authz->policy), smig_policy_bindings(d->authz->policy));
	cluster_cap_check(&d->cfg, d->authz->policy);
	return 0;
}

void authz_reload(struct smigd *d, const struct smig_config *cfg, const char *text)
{
	struct smig_policy *np = NULL;
	char err[400], detail[PATH_MAX + 64];

	if (policy_load(cfg, text, &np, err, sizeof(err)) < 0) {
		smig_err("event=policy_reload_failed reason=\"%s\" action=kept_previous", err);
		audit_write(d, "smigd", "policy.reload", smig_policy_name(d->authz->policy), "none", "-",
			    "failed", err);
		return;
	}
	smig_policy_free(d->authz->policy);
	d->authz->policy = np;
	snprintf(d->cfg.policy_file, sizeof(d->cfg.policy_file), "%s", cfg->policy_file);
	snprintf(detail, sizeof(detail), "bindings=%zu", smig_policy_bindings(np));
	smig_info("event=policy_reloaded file=%s %s", smig_policy_name(np), detail);
	cluster_cap_check(cfg, np);
	audit_write(d, "smigd", "policy.reload", smig_policy_name(np), "none", "-", "ok", detail);
}

void authz_free(struct smigd *d)
{
	if (d->authz == NULL)
		return;
	smig_policy_free(d->authz->policy);
	free(d->authz);
	d->authz = NULL;
}

const struct smig_policy *authz_policy(const struct smigd *d)
{
	return d->authz->policy;
}

static const char *opt_str(const json_t *args, const char *key)
{
	return json_string_value(json_object_get(args, key));
}

/* policy.check: how the policy answers another user's (or a peer's) request. */
int authz_check(struct smigd *d, const json_t *args, json_t **result, char *err, size_t errlen)
{
	static const char *const allowed[] = { "user", "peer", "action", "vm", "to", NULL };
	const char *user = opt_str(args, "user"), *peer = opt_str(args, "peer");
	const char *action = opt_str(args, "action");
	struct smig_policy_req r = { 0 };
	struct smig_policy_decision dec;
	enum smig_action a;
	char why[128] = "";
	char self[SMIG_NAME_MAX + 1]; /* the target of a peer's push: this host */
	struct who w;

	if (smig_ctl_args_only(args, allowed, why, sizeof(why)) < 0 || action == NULL ||
	    (user == NULL) == (peer == NULL)) {
		snprintf(err, errlen,
			 "policy.check needs args.action (a permission) and one of args.user and "
			 "args.peer%s%s", why[0] ? ": " : "", why);
		return SMIG_EINVAL;
	}
	if (smig_action_parse(action, &a) < 0) {
		char known[256];

		smig_action_list(known, sizeof(known));
		snprintf(err, errlen, "args.action \"%.64s\" is not a permission (known: %s)",
			 action, known);
		return SMIG_EINVAL;
	}
	if (user) {
		who_from_name(user, &w);
		r.who = w.subj;
	} else {
		r.who.kind = SMIG_SUBJ_PEER;
		r.who.name = peer;
	}
	if (peer) {
		/* a peer pushes to this host; the source judged this host's trust */
		snprintf(self, sizeof(self), "%s", d->cfg.host);
		fill_req(d, &r, a, opt_str(args, "vm"), self);
		r.check_trust = false;
		r.migrations_active = 0;
	} else {
		fill_req(d, &r, a, opt_str(args, "vm"), opt_str(args, "to"));
	}
	smig_policy_eval(d->authz->policy, &r, &dec);
	*result = json_pack("{s:s,s:s,s:s,s:s}", "decision", dec.allow ? "allow" : "deny", "rule",
			    dec.rule, "reason", dec.reason, "policy",
			    smig_policy_name(d->authz->policy));
	return *result ? 0 : SMIG_ENOMEM;
}
