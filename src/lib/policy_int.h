/*
 * policy_int.h - the parsed policy as policy.c builds it and policy_eval.c
 * reads it. Not for use outside those two files.
 */
#ifndef SMIG_POLICY_INT_H
#define SMIG_POLICY_INT_H

#include "label.h"
#include "policy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROLES_MAX 64
#define BINDINGS_MAX 1024
#define PATTERNS_MAX 64
#define SEL_MAX 16
#define PAT_LEN (SMIG_NAME_MAX + 1)

struct patterns {
	char (*v)[PAT_LEN];
	size_t n;
};

struct role {
	char name[SMIG_NAME_MAX + 1];
	uint32_t actions; /* bit per enum smig_action */
};

struct binding {
	char name[SMIG_NAME_MAX + 1];
	char role[SMIG_NAME_MAX + 1]; /* empty when actions were listed */
	bool deny;
	uint32_t actions;
	struct patterns users, groups, peers, vms, targets;
	struct smig_label vm_sel[SEL_MAX];
	size_t vm_nsel;
	struct smig_label target_sel[SEL_MAX];
	size_t target_nsel;
	bool has_vm_scope, has_target_scope;
};

struct smig_policy {
	char name[256];
	struct role *roles;
	size_t nroles;
	struct binding *b;
	size_t nb;
	int max_migrations;
	int max_cluster_migrations; /* the fleet's, through its store */
};

#endif
