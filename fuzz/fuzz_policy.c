/*
 * fuzz_policy.c - the policy parser on arbitrary text; whatever parses is
 * evaluated against a few fixed requests, which must never allow a
 * request no binding could have allowed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const groups[] = { "ops", "staff" };
	static const struct smig_label labels[] = { { "tier", "db" }, { "zone", "a1" } };
	struct smig_diags *diags = malloc(sizeof(*diags));
	struct smig_policy *p = NULL;
	struct smig_policy_req r = {
		.who = { .kind = SMIG_SUBJ_USER, .name = "alice", .uid = 1000, .groups = groups,
			 .ngroups = 2 },
		.vm = "web-1", .vm_labels = labels, .vm_nlabels = 2, .target = "h2",
		.target_labels = labels, .target_nlabels = 2, .check_trust = true,
		.vm_min_trust = SMIG_TRUST_ATTESTED,
	};
	struct smig_policy_decision d;

	if (diags == NULL)
		return 0;
	diags->n = 0;
	diags->dropped = 0;
	if (smig_policy_parse("fuzz", (const char *)data, size, &p, diags) == 0) {
		for (int a = 0; a < SMIG_ACT_COUNT; a++) {
			r.action = (enum smig_action)a;
			r.who.kind = SMIG_SUBJ_USER;
			smig_policy_eval(p, &r, &d);
			if (d.allow && smig_policy_bindings(p) == 0)
				abort();
			/* The target's trust (none) is below the VM's: never a migration. */
			if (d.allow && a == SMIG_ACT_VM_MIGRATE)
				abort();
			r.who.kind = SMIG_SUBJ_PEER;
			smig_policy_eval(p, &r, &d);
		}
		smig_policy_free(p);
	} else if (diags->n == 0) {
		abort(); /* a refusal always says why */
	}
	free(diags);
	return 0;
}
