/*
 * policy_eval.c - deciding a request against a parsed policy (policy.h):
 * explicit denies first, then the first allowing binding; the decision
 * names its rule and why.
 */
#include "policy_int.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

static bool any_glob(const struct patterns *p, const char *s)
{
	for (size_t i = 0; i < p->n; i++)
		if (fnmatch(p->v[i], s, 0) == 0)
			return true;
	return false;
}

static bool user_matches(const struct patterns *p, const struct smig_subject *who)
{
	char uid[24];

	snprintf(uid, sizeof(uid), "uid:%u", (unsigned)who->uid);
	for (size_t i = 0; i < p->n; i++) {
		if (strcmp(p->v[i], uid) == 0)
			return true;
		if (strncmp(p->v[i], "uid:", 4) != 0 && fnmatch(p->v[i], who->name, 0) == 0)
			return true;
	}
	return false;
}

static bool subject_matches(const struct binding *b, const struct smig_subject *who)
{
	if (who->kind == SMIG_SUBJ_PEER)
		return any_glob(&b->peers, who->name);
	if (user_matches(&b->users, who))
		return true;
	for (size_t i = 0; i < who->ngroups; i++)
		if (any_glob(&b->groups, who->groups[i]))
			return true;
	return false;
}

/*
 * A scope narrows a binding: a binding scoped to VMs (or targets) matches
 * only requests about a matching VM (or target); one without that scope
 * matches whatever the request names.
 */
static bool scope_matches(const struct binding *b, const struct smig_policy_req *r)
{
	if (b->has_vm_scope) {
		if (r->vm == NULL || (b->vms.n && !any_glob(&b->vms, r->vm)))
			return false;
		if (r->vm_labels_unknown && b->vm_nsel) {
			if (!b->deny) /* fail closed: a deny matches, as the VM may carry them */
				return false;
		} else if (!smig_labels_match(b->vm_sel, b->vm_nsel, r->vm_labels, r->vm_nlabels)) {
			return false;
		}
	}
	if (b->has_target_scope) {
		if (r->target == NULL || (b->targets.n && !any_glob(&b->targets, r->target)) ||
		    !smig_labels_match(b->target_sel, b->target_nsel, r->target_labels,
				       r->target_nlabels))
			return false;
	}
	return true;
}

static bool binding_matches(const struct binding *b, const struct smig_policy_req *r)
{
	return (b->actions & (1u << r->action)) && subject_matches(b, &r->who) &&
	       scope_matches(b, r);
}

/* "user alice (uid 1000)" / "peer h2", for reasons. */
static void subject_str(const struct smig_subject *who, char *out, size_t len)
{
	if (who->kind == SMIG_SUBJ_PEER)
		snprintf(out, len, "peer %s", who->name);
	else if (who->name[0])
		snprintf(out, len, "user %s (uid %u)", who->name, (unsigned)who->uid);
	else
		snprintf(out, len, "uid %u", (unsigned)who->uid);
}

static void request_str(const struct smig_policy_req *r, char *out, size_t len)
{
	char who[96];

	subject_str(&r->who, who, sizeof(who));
	snprintf(out, len, "%s %s%s%s%s%s", who, smig_action_name(r->action),
		 r->vm ? " vm " : "", r->vm ? r->vm : "", r->target ? " to " : "",
		 r->target ? r->target : "");
}

static void decide(struct smig_policy_decision *out, bool allow, const char *rule,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void decide(struct smig_policy_decision *out, bool allow, const char *rule,
		   const char *fmt, ...)
{
	va_list ap;

	out->allow = allow;
	snprintf(out->rule, sizeof(out->rule), "%s", rule);
	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
}

/* Constraints on an allowed migration; true if one refused it. */
static bool constraints_refuse(const struct smig_policy *p, const struct smig_policy_req *r,
			       const char *req, struct smig_policy_decision *out)
{
	if (r->action != SMIG_ACT_VM_MIGRATE)
		return false;
	if (r->check_trust && r->target_trust < r->vm_min_trust) {
		decide(out, false, "constraint:min_trust",
		       "%s: target %s has trust verdict %s; the vm needs at least %s%s%s%s", req,
		       r->target ? r->target : "(this host)", smig_trust_name(r->target_trust),
		       smig_trust_name(r->vm_min_trust), r->target_why && r->target_why[0] ? " (" : "",
		       r->target_why ? r->target_why : "", r->target_why && r->target_why[0] ? ")" : "");
		return true;
	}
	if (p->max_migrations > 0 && r->migrations_active >= p->max_migrations) {
		decide(out, false, "constraint:max_concurrent_migrations",
		       "%s: %d migrations already run on this host (limit %d)", req,
		       r->migrations_active, p->max_migrations);
		return true;
	}
	return false;
}

void smig_policy_eval(const struct smig_policy *p, const struct smig_policy_req *r,
		      struct smig_policy_decision *out)
{
	const struct binding *allow = NULL;
	char req[256];

	request_str(r, req, sizeof(req));
	if ((unsigned)r->action >= SMIG_ACT_COUNT || r->who.name == NULL) {
		decide(out, false, "default-deny", "malformed request: %s", req);
		return;
	}
	for (size_t i = 0; i < p->nb; i++) {
		const struct binding *b = &p->b[i];

		if (!binding_matches(b, r))
			continue;
		if (b->deny) {
			decide(out, false, b->name, "%s: denied by binding %s", req, b->name);
			return;
		}
		if (allow == NULL)
			allow = b;
	}
	if (allow == NULL) {
		decide(out, false, "default-deny", "%s: no binding allows it", req);
		return;
	}
	if (constraints_refuse(p, r, req, out))
		return;
	decide(out, true, allow->name, "%s: allowed by binding %s%s%s", req, allow->name,
	       allow->role[0] ? " role " : "", allow->role);
}
