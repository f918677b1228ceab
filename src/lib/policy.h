/*
 * policy.h - role-based access control: who may do what to which VM, and
 * which peer host may push VMs here.
 *
 * A policy file (strict JSON, docs/policy.md) holds roles (sets of
 * permissions) and bindings. A binding ties subjects (Unix users and
 * groups from the control socket's SO_PEERCRED, or peer hosts by the
 * identity their certificate proves) to a role or a list of actions,
 * optionally scoped by VM name/label globs and target host name/label
 * globs, with effect allow or deny.
 *
 * Evaluation is a pure function of the policy and one request: an
 * explicit deny beats any allow; without a matching allow the answer is
 * deny ("default-deny"); an allowed migration must also meet the
 * constraints (the target's trust verdict meets the VM's min_trust; the
 * host's cap on concurrent migrations). Every decision names the rule
 * that made it, so that it can be explained and audited.
 */
#ifndef SMIG_POLICY_H
#define SMIG_POLICY_H

#include "label.h"
#include "vmspec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum smig_action {
	SMIG_ACT_VM_MIGRATE,
	SMIG_ACT_VM_START,
	SMIG_ACT_VM_STOP,
	SMIG_ACT_VM_DEFINE,
	SMIG_ACT_VM_VIEW,
	SMIG_ACT_HOST_EVACUATE,
	SMIG_ACT_HOST_VIEW,
	SMIG_ACT_POLICY_VIEW,
	SMIG_ACT_AUDIT_VIEW,
	SMIG_ACT_IVT_ENROL,
	SMIG_ACT_IDS_MANAGE,
	SMIG_ACT_HOST_MAINTENANCE,
	SMIG_ACT_COUNT
};

const char *smig_action_name(enum smig_action a);
int smig_action_parse(const char *s, enum smig_action *out);
/* Every permission's name, space-separated, into out (for error messages). */
void smig_action_list(char *out, size_t len);

enum smig_subject_kind {
	SMIG_SUBJ_USER, /* a local Unix user on the control socket */
	SMIG_SUBJ_PEER, /* a peer host, by its certificate's identity */
};

struct smig_subject {
	enum smig_subject_kind kind;
	const char *name;           /* user name ("" if the uid has none) or host name */
	uint32_t uid;               /* users only */
	const char *const *groups;  /* users only: every group the user is in */
	size_t ngroups;
};

struct smig_policy_req {
	struct smig_subject who;
	enum smig_action action;
	const char *vm; /* NULL when the request is about no single VM */
	const struct smig_label *vm_labels;
	size_t vm_nlabels;
	bool vm_labels_unknown; /* a VM not defined here: label-scoped denies match, allows do not */
	enum smig_trust vm_min_trust;
	const char *target; /* NULL when the request has no target host */
	const struct smig_label *target_labels;
	size_t target_nlabels;
	bool check_trust;            /* apply the min_trust constraint */
	enum smig_trust target_trust; /* the target's current verdict */
	const char *target_why;       /* its reason (a refusal quotes it), or NULL */
	int migrations_active;        /* migrations this host runs now */
};

#define SMIG_RULE_MAX 80

struct smig_policy_decision {
	bool allow;
	char rule[SMIG_RULE_MAX]; /* binding name, "default-deny" or "constraint:..." */
	char reason[320];
};

/* Problems found in a policy file, each "file:line:col: message". */
#define SMIG_DIAG_MAX 64
struct smig_diags {
	size_t n;
	size_t dropped; /* problems beyond SMIG_DIAG_MAX */
	char msg[SMIG_DIAG_MAX][320];
};

struct smig_policy;

/*
 * Parses a policy. Every problem found is added to diags (if not NULL);
 * the policy is returned in *out only when there is none. name is used in
 * messages.
 */
int smig_policy_parse(const char *name, const char *text, size_t len, struct smig_policy **out,
		      struct smig_diags *diags);
int smig_policy_load(const char *path, struct smig_policy **out, struct smig_diags *diags);
/* The policy used when none is configured: uid 0 is admin; every peer of the
 * host table may push VMs here. */
int smig_policy_builtin(struct smig_policy **out);
void smig_policy_free(struct smig_policy *p);

size_t smig_policy_roles(const struct smig_policy *p);
size_t smig_policy_bindings(const struct smig_policy *p);
int smig_policy_max_migrations(const struct smig_policy *p); /* 0: no cap */
/* Migrations the whole fleet runs at once (through the fleet store); 0: no cap. */
int smig_policy_max_cluster_migrations(const struct smig_policy *p);
const char *smig_policy_name(const struct smig_policy *p);

void smig_policy_eval(const struct smig_policy *p, const struct smig_policy_req *req,
		      struct smig_policy_decision *out);

#endif
