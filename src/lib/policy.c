/*
 * policy.c - policy parsing (see policy.h); evaluation is in policy_eval.c.
 *
 * The parser keeps going after a bad role or binding so that
 * `smig policy lint` can name every problem at once; a policy with any
 * problem is never returned, so the daemon only ever runs a whole file.
 */
#include "policy_int.h"
#include "error.h"
#include "json.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const action_names[SMIG_ACT_COUNT] = {
	[SMIG_ACT_VM_MIGRATE] = "vm.migrate",     [SMIG_ACT_VM_START] = "vm.start",
	[SMIG_ACT_VM_STOP] = "vm.stop",           [SMIG_ACT_VM_DEFINE] = "vm.define",
	[SMIG_ACT_VM_VIEW] = "vm.view",           [SMIG_ACT_HOST_EVACUATE] = "host.evacuate",
	[SMIG_ACT_HOST_VIEW] = "host.view",       [SMIG_ACT_POLICY_VIEW] = "policy.view",
	[SMIG_ACT_AUDIT_VIEW] = "audit.view",     [SMIG_ACT_IVT_ENROL] = "ivt.enrol",
	[SMIG_ACT_IDS_MANAGE] = "ids.manage",     [SMIG_ACT_HOST_MAINTENANCE] = "host.maintenance",
};

const char *smig_action_name(enum smig_action a)
{
	return (unsigned)a < SMIG_ACT_COUNT ? action_names[a] : "unknown";
}

void smig_action_list(char *out, size_t len)
{
	size_t n = 0;

	if (len == 0)
		return;
	out[0] = '\0';
	for (size_t i = 0; i < SMIG_ACT_COUNT && n < len; i++)
		n += (size_t)snprintf(out + n, len - n, "%s%s", i ? " " : "", action_names[i]);
}

int smig_action_parse(const char *s, enum smig_action *out)
{
	for (size_t i = 0; i < SMIG_ACT_COUNT; i++) {
		if (strcmp(s, action_names[i]) == 0) {
			*out = (enum smig_action)i;
			return 0;
		}
	}
	return SMIG_EINVAL;
}

/* Parsing state: the document, the policy being built and the problems. */
struct pctx {
	const struct smig_json_doc *doc;
	struct smig_policy *p;
	struct smig_diags *diags;
	size_t problems;
	char err[320];
};

static void diag_add(struct pctx *c, const char *msg)
{
	c->problems++;
	if (c->diags == NULL)
		return;
	if (c->diags->n < SMIG_DIAG_MAX)
		snprintf(c->diags->msg[c->diags->n++], sizeof(c->diags->msg[0]), "%s", msg);
	else
		c->diags->dropped++;
}

/* Records the problem smig_json_* left in c->err; returns rc. */
static int note(struct pctx *c, int rc)
{
	if (rc < 0)
		diag_add(c, c->err);
	return rc;
}

/* A glob over names: 1-63 printable characters, no blank, no '/'. */
static bool pattern_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SMIG_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '/')
			return false;
	return true;
}

static int parse_patterns(struct pctx *c, const json_t *obj, const char *key, const char *what,
			  struct patterns *out)
{
	const json_t *arr = json_object_get(obj, key);
	const json_t *v;
	size_t i;

	if (arr == NULL)
		return 0;
	if (json_array_size(arr) > PATTERNS_MAX)
		return note(c, smig_json_fail(c->doc, obj, key, c->err, sizeof(c->err),
					      "%s.%s: at most %d entries", what, key,
					      PATTERNS_MAX));
	out->v = calloc(json_array_size(arr) + 1, sizeof(*out->v));
	if (out->v == NULL) {
		diag_add(c, "out of memory");
		return SMIG_ENOMEM;
	}
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v) || !pattern_ok(json_string_value(v)))
			return note(c, smig_json_fail_at(c->doc, arr, i, c->err, sizeof(c->err),
							 "%s.%s[%zu] must be a name or glob "
							 "(1-63 printable characters, no blank "
							 "or /)", what, key, i));
		snprintf(out->v[out->n++], PAT_LEN, "%s", json_string_value(v));
	}
	return 0;
}

/* A selector: an object of label key -> value glob. */
static int parse_selector(struct pctx *c, const json_t *obj, const char *key, const char *what,
			  struct smig_label *sel, size_t *n)
{
	const json_t *o = json_object_get(obj, key);
	const char *k;
	json_t *v;

	*n = 0;
	if (o == NULL)
		return 0;
	if (json_object_size(o) > SEL_MAX)
		return note(c, smig_json_fail(c->doc, obj, key, c->err, sizeof(c->err),
					      "%s.%s: at most %d labels", what, key, SEL_MAX));
	json_object_foreach((json_t *)o, k, v) {
		if (!smig_name_valid(k) || !json_is_string(v) ||
		    !pattern_ok(json_string_value(v)))
			return note(c, smig_json_fail(c->doc, o, k, c->err, sizeof(c->err),
						      "%s.%s.%.64s: keys are names, values "
						      "globs", what, key, k));
		snprintf(sel[*n].key, sizeof(sel[0].key), "%s", k);
		snprintf(sel[*n].value, sizeof(sel[0].value), "%s", json_string_value(v));
		(*n)++;
	}
	return 0;
}

/* Permission names or globs over them ("vm.*", "*"); each must name one. */
static int parse_actions(struct pctx *c, const json_t *arr, const char *what, uint32_t *out)
{
	const json_t *v;
	size_t i;

	*out = 0;
	json_array_foreach(arr, i, v) {
		uint32_t bits = 0;
		char known[256];

		for (size_t a = 0; json_is_string(v) && a < SMIG_ACT_COUNT; a++)
			if (fnmatch(json_string_value(v), action_names[a], 0) == 0)
				bits |= 1u << a;
		if (bits == 0) {
			smig_action_list(known, sizeof(known));
			return note(c, smig_json_fail_at(c->doc, arr, i, c->err, sizeof(c->err),
							 "%s[%zu] names no permission (known: %s)",
							 what, i, known));
		}
		*out |= bits;
	}
	return 0;
}

static const struct role *role_find(const struct smig_policy *p, const char *name)
{
	for (size_t i = 0; i < p->nroles; i++)
		if (strcmp(p->roles[i].name, name) == 0)
			return &p->roles[i];
	return NULL;
}

static void parse_roles(struct pctx *c, const json_t *roles)
{
	const char *key;
	json_t *v;

	if (json_object_size(roles) > ROLES_MAX) {
		note(c, smig_json_fail(c->doc, c->doc->root, "roles", c->err, sizeof(c->err),
				       "at most %d roles", ROLES_MAX));
		return;
	}
	c->p->roles = calloc(json_object_size(roles) + 1, sizeof(*c->p->roles));
	if (c->p->roles == NULL) {
		diag_add(c, "out of memory");
		return;
	}
	json_object_foreach((json_t *)roles, key, v) {
		struct role *r = &c->p->roles[c->p->nroles];
		char what[96];

		snprintf(what, sizeof(what), "roles.%.64s", key);
		if (!smig_name_valid(key) || !json_is_array(v) || json_array_size(v) == 0) {
			note(c, smig_json_fail(c->doc, roles, key, c->err, sizeof(c->err),
					       "%s: a role is a name and a non-empty list of "
					       "permissions", what));
			continue;
		}
		if (parse_actions(c, v, what, &r->actions) < 0)
			continue;
		snprintf(r->name, sizeof(r->name), "%s", key);
		c->p->nroles++;
	}
}

static int binding_who(struct pctx *c, const json_t *e, const char *what, struct binding *b)
{
	SMIG_GUARD(parse_patterns(c, e, "users", what, &b->users));
	SMIG_GUARD(parse_patterns(c, e, "groups", what, &b->groups));
	SMIG_GUARD(parse_patterns(c, e, "peers", what, &b->peers));
	if (b->users.n + b->groups.n + b->peers.n == 0)
		return note(c, smig_json_fail(c->doc, e, NULL, c->err, sizeof(c->err),
					      "%s names no subject: give users, groups or "
					      "peers", what));
	SMIG_GUARD(parse_patterns(c, e, "vms", what, &b->vms));
	SMIG_GUARD(parse_patterns(c, e, "targets", what, &b->targets));
	SMIG_GUARD(parse_selector(c, e, "vm_labels", what, b->vm_sel, &b->vm_nsel));
	SMIG_GUARD(parse_selector(c, e, "target_labels", what, b->target_sel,
				  &b->target_nsel));
	b->has_vm_scope = json_object_get(e, "vms") || json_object_get(e, "vm_labels");
	b->has_target_scope = json_object_get(e, "targets") ||
			      json_object_get(e, "target_labels");
	return 0;
}

/* effect, and what the binding grants or denies: a role or a list of actions. */
static int binding_what(struct pctx *c, const json_t *e, const char *what, struct binding *b)
{
	const json_t *effect = json_object_get(e, "effect");
	const json_t *role = json_object_get(e, "role");
	const json_t *actions = json_object_get(e, "actions");
	char key[96];

	if (effect && strcmp(json_string_value(effect), "allow") != 0 &&
	    strcmp(json_string_value(effect), "deny") != 0)
		return note(c, smig_json_fail(c->doc, e, "effect", c->err, sizeof(c->err),
					      "%s.effect must be allow or deny", what));
	b->deny = effect && strcmp(json_string_value(effect), "deny") == 0;
	if ((role == NULL) == (actions == NULL))
		return note(c, smig_json_fail(c->doc, e, NULL, c->err, sizeof(c->err),
					      "%s needs exactly one of role and actions", what));
	if (actions) {
		snprintf(key, sizeof(key), "%s.actions", what);
		if (json_array_size(actions) == 0)
			return note(c, smig_json_fail(c->doc, e, "actions", c->err,
						      sizeof(c->err), "%s is empty", key));
		return parse_actions(c, actions, key, &b->actions);
	}
	if (role_find(c->p, json_string_value(role)) == NULL)
		return note(c, smig_json_fail(c->doc, e, "role", c->err, sizeof(c->err),
					      "%s.role: no role named \"%.64s\"", what,
					      json_string_value(role)));
	snprintf(b->role, sizeof(b->role), "%s", json_string_value(role));
	b->actions = role_find(c->p, b->role)->actions;
	return 0;
}

static int binding_parse(struct pctx *c, const json_t *arr, size_t i, struct binding *b)
{
	static const struct smig_jfield fields[] = {
		{ "name", SMIG_J_STRING, true, 0, 0 },
		{ "effect", SMIG_J_STRING, false, 0, 0 },
		{ "role", SMIG_J_STRING, false, 0, 0 },
		{ "actions", SMIG_J_ARRAY, false, 0, 0 },
		{ "users", SMIG_J_ARRAY, false, 0, 0 },
		{ "groups", SMIG_J_ARRAY, false, 0, 0 },
		{ "peers", SMIG_J_ARRAY, false, 0, 0 },
		{ "vms", SMIG_J_ARRAY, false, 0, 0 },
		{ "vm_labels", SMIG_J_OBJECT, false, 0, 0 },
		{ "targets", SMIG_J_ARRAY, false, 0, 0 },
		{ "target_labels", SMIG_J_OBJECT, false, 0, 0 },
	};
	const json_t *e = json_array_get(arr, i);
	const char *name;
	char what[96];

	snprintf(what, sizeof(what), "bindings[%zu]", i);
	if (!json_is_object(e))
		return note(c, smig_json_fail_at(c->doc, arr, i, c->err, sizeof(c->err),
						 "%s must be an object", what));
	SMIG_GUARD(note(c, smig_json_check(c->doc, e, what, fields, ARRAY_LEN(fields), c->err,
					   sizeof(c->err))));
	name = json_string_value(json_object_get(e, "name"));
	if (!smig_name_valid(name))
		return note(c, smig_json_fail(c->doc, e, "name", c->err, sizeof(c->err),
					      "%s.name must be 1-63 characters of A-Z a-z 0-9 . "
					      "_ -", what));
	for (size_t k = 0; k < c->p->nb; k++)
		if (strcmp(c->p->b[k].name, name) == 0)
			return note(c, smig_json_fail(c->doc, e, "name", c->err,
						      sizeof(c->err),
						      "duplicate binding name \"%s\"", name));
	snprintf(what, sizeof(what), "binding %s", name);
	snprintf(b->name, sizeof(b->name), "%s", name);
	SMIG_GUARD(binding_what(c, e, what, b));
	return binding_who(c, e, what, b);
}

static void patterns_clear(struct patterns *p)
{
	free(p->v);
	memset(p, 0, sizeof(*p));
}

static void binding_clear(struct binding *b)
{
	patterns_clear(&b->users);
	patterns_clear(&b->groups);
	patterns_clear(&b->peers);
	patterns_clear(&b->vms);
	patterns_clear(&b->targets);
}

static void parse_bindings(struct pctx *c, const json_t *arr)
{
	size_t n = json_array_size(arr);

	if (n > BINDINGS_MAX) {
		note(c, smig_json_fail(c->doc, c->doc->root, "bindings", c->err, sizeof(c->err),
				       "at most %d bindings", BINDINGS_MAX));
		return;
	}
	c->p->b = calloc(n + 1, sizeof(*c->p->b));
	if (c->p->b == NULL) {
		diag_add(c, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct binding *b = &c->p->b[c->p->nb];

		if (binding_parse(c, arr, i, b) < 0) {
			binding_clear(b);
			memset(b, 0, sizeof(*b));
			continue;
		}
		c->p->nb++;
	}
}

static void parse_limits(struct pctx *c, const json_t *limits)
{
	static const struct smig_jfield fields[] = {
		{ "max_concurrent_migrations", SMIG_J_INT, false, 0, 1024 },
		{ "max_cluster_migrations", SMIG_J_INT, false, 0, 1024 },
	};
	const json_t *v;

	if (note(c, smig_json_check(c->doc, limits, "limits", fields, ARRAY_LEN(fields), c->err,
				    sizeof(c->err))) < 0)
		return;
	if ((v = json_object_get(limits, "max_concurrent_migrations")))
		c->p->max_migrations = (int)json_integer_value(v);
	if ((v = json_object_get(limits, "max_cluster_migrations")))
		c->p->max_cluster_migrations = (int)json_integer_value(v);
}

static void policy_top(struct pctx *c)
{
	static const struct smig_jfield fields[] = {
		{ "roles", SMIG_J_OBJECT, true, 0, 0 },
		{ "bindings", SMIG_J_ARRAY, true, 0, 0 },
		{ "limits", SMIG_J_OBJECT, false, 0, 0 },
	};
	const json_t *root = c->doc->root;

	if (note(c, smig_json_check(c->doc, root, "policy", fields, ARRAY_LEN(fields), c->err,
				    sizeof(c->err))) < 0)
		return;
	parse_roles(c, json_object_get(root, "roles"));
	parse_bindings(c, json_object_get(root, "bindings"));
	if (json_object_get(root, "limits"))
		parse_limits(c, json_object_get(root, "limits"));
}

void smig_policy_free(struct smig_policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nb; i++)
		binding_clear(&p->b[i]);
	free(p->b);
	free(p->roles);
	free(p);
}

/* Builds the policy from a loaded document; takes care of doc. */
static int policy_finish(struct smig_json_doc *doc, struct smig_policy **out,
			 struct smig_diags *diags)
{
	struct pctx c = { .doc = doc, .diags = diags };

	c.p = calloc(1, sizeof(*c.p));
	if (c.p == NULL) {
		smig_json_doc_clear(doc);
		return SMIG_ENOMEM;
	}
	snprintf(c.p->name, sizeof(c.p->name), "%s", doc->name);
	policy_top(&c);
	smig_json_doc_clear(doc);
	if (c.problems > 0) {
		smig_policy_free(c.p);
		return SMIG_ECONFIG;
	}
	*out = c.p;
	return 0;
}

static int load_failed(struct smig_diags *diags, const char *err, int rc)
{
	if (diags && diags->n < SMIG_DIAG_MAX)
		snprintf(diags->msg[diags->n++], sizeof(diags->msg[0]), "%s", err);
	return rc;
}

/* Reads a policy in text, or in the file name when text is NULL. */
static int policy_read(const char *name, const char *text, size_t len, struct smig_policy **out,
		       struct smig_diags *diags)
{
	struct smig_json_doc doc;
	char err[320];
	int rc;

	*out = NULL;
	rc = smig_json_load(&doc, name, text, len, err, sizeof(err));
	if (rc < 0)
		return load_failed(diags, err, rc);
	return policy_finish(&doc, out, diags);
}

int smig_policy_parse(const char *name, const char *text, size_t len, struct smig_policy **out,
		      struct smig_diags *diags)
{
	return policy_read(name, text, len, out, diags);
}

int smig_policy_load(const char *path, struct smig_policy **out, struct smig_diags *diags)
{
	return policy_read(path, NULL, 0, out, diags);
}

int smig_policy_builtin(struct smig_policy **out)
{
	static const char text[] =
		"{\"roles\": {\"admin\": [\"*\"], \"peer\": [\"vm.migrate\"]},\n"
		" \"bindings\": [\n"
		"  {\"name\": \"builtin-root-admin\", \"users\": [\"uid:0\"], \"role\": "
		"\"admin\"},\n"
		"  {\"name\": \"builtin-cluster-peers\", \"peers\": [\"*\"], \"role\": "
		"\"peer\"}]}\n";

	return smig_policy_parse("(built-in policy)", text, sizeof(text) - 1, out, NULL);
}

size_t smig_policy_roles(const struct smig_policy *p)
{
	return p->nroles;
}

size_t smig_policy_bindings(const struct smig_policy *p)
{
	return p->nb;
}

int smig_policy_max_migrations(const struct smig_policy *p)
{
	return p->max_migrations;
}

int smig_policy_max_cluster_migrations(const struct smig_policy *p)
{
	return p->max_cluster_migrations;
}

const char *smig_policy_name(const struct smig_policy *p)
{
	return p->name;
}

/* Evaluation. */
