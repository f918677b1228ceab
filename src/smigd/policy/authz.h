/*
 * authz.h - the policy part of the worker (authz.c): who is asking (a
 * local user's uid, name and groups, or a peer host's certificate
 * identity), the facts the policy looks at (a VM's labels and trust
 * requirement, the target's labels and verdict, the migrations running),
 * and the decision, audited. A denial answers the request.
 */
#ifndef SMIGD_AUTHZ_H
#define SMIGD_AUTHZ_H

#include "core/smigd.h"
#include "policy.h"
#include "vmspec.h"

int authz_init(struct smigd *d);
/* The policy of cfg again, from text (the warden read the file). */
void authz_reload(struct smigd *d, const struct smig_config *cfg, const char *text);
void authz_free(struct smigd *d);
/*
 * Decides a control request. Allowed: fills ref->audit (so the outcome is
 * audited with the reply) and returns true. Denied: audits, answers
 * "denied" naming the rule, and returns false. job: the migration id the
 * caller named, when vm is what that id stands for; a denial then names
 * the id only (the audit record names the VM).
 */
bool authz_request(struct smigd *d, enum smig_action a, const char *vm, const char *target,
		   const char *job, struct ctl_ref *ref);
/*
 * The decision a control request by ref's caller would get (NULL or no
 * caller: smigd acting on its own, as root would), without audit or
 * answer: an evacuation plans with it (the same decision as a manual
 * migration).
 */
void authz_decide(struct smigd *d, const struct ctl_ref *ref, enum smig_action a,
		  const char *vm, const char *target, struct smig_policy_decision *dec);
/*
 * allowed[i]: may ref's caller do a to vms[i] (no audit; for filtering
 * lists). The caller is looked up once for all n.
 */
void authz_allows_each(struct smigd *d, const struct ctl_ref *ref, enum smig_action a,
		       const char *const *vms, size_t n, bool *allowed);
/* May peer push the VM of spec here? Audits a refusal. */
bool authz_peer_migrate(struct smigd *d, const char *peer, const struct smig_vmspec *spec,
			struct smig_policy_decision *out);
/* "user:alice(1000)" for ref's caller. */
void authz_actor(const struct ctl_ref *ref, char *out, size_t len);
/* How the policy answers another user's or a peer's request (smig policy check). */
int authz_check(struct smigd *d, const json_t *args, json_t **result, char *err, size_t errlen);
const struct smig_policy *authz_policy(const struct smigd *d);

#endif
