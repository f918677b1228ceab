/*
 * vmspec.c - strict VM specs and the QEMU command line built from them
 * (vmspec.h).
 */
#include "vmspec.h"
#include "error.h"
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static const char *const trust_names[] = { "none", "attested", "trusted" };

const char *smig_trust_name(enum smig_trust t)
{
	return (unsigned)t < ARRAY_LEN(trust_names) ? trust_names[t] : "unknown";
}

int smig_trust_parse(const char *s, enum smig_trust *out)
{
	for (size_t i = 0; i < ARRAY_LEN(trust_names); i++) {
		if (strcmp(s, trust_names[i]) == 0) {
			*out = (enum smig_trust)i;
			return 0;
		}
	}
	return SMIG_EINVAL;
}

/*
 * A path QEMU may see: absolute, no comma (QEMU's option separator), no
 * control characters, no ".." component.
 */
static bool path_ok(const char *p)
{
	if (p[0] != '/' || strlen(p) >= SMIG_VM_PATH_MAX || strstr(p, "/../") ||
	    (strlen(p) >= 3 && strcmp(p + strlen(p) - 3, "/..") == 0))
		return false;
	for (const char *c = p; *c; c++)
		if (*c == ',' || (unsigned char)*c < 0x20 || *c == 0x7f)
			return false;
	return true;
}

static bool cmdline_ok(const char *s)
{
	if (strlen(s) > SMIG_VM_CMDLINE_MAX)
		return false;
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			return false;
	return true;
}

struct ctx {
	const struct smig_json_doc *doc;
	char *err;
	size_t errlen;
};

static int get_path(struct ctx *c, const json_t *obj, const char *key, char *out)
{
	const json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return 0;
	if (!path_ok(json_string_value(v)))
		return smig_json_fail(c->doc, obj, key, c->err, c->errlen,
				      "%s must be an absolute path without commas, control "
				      "characters or \"..\"", key);
	snprintf(out, SMIG_VM_PATH_MAX, "%s", json_string_value(v));
	return 0;
}

static int parse_disks(struct ctx *c, const json_t *arr, struct smig_vmspec *s)
{
	static const struct smig_jfield fields[] = {
		{ "path", SMIG_J_STRING, true, 0, 0 },
		{ "format", SMIG_J_STRING, false, 0, 0 },
		{ "readonly", SMIG_J_BOOL, false, 0, 0 },
	};
	size_t i;
	json_t *d;

	if (json_array_size(arr) > SMIG_VM_DISKS_MAX)
		return smig_json_fail_at(c->doc, arr, SMIG_VM_DISKS_MAX, c->err, c->errlen,
					 "at most %d disks", SMIG_VM_DISKS_MAX);
	json_array_foreach(arr, i, d) {
		const json_t *fmt;
		char what[16];

		snprintf(what, sizeof(what), "disks[%zu]", i);
		if (!json_is_object(d))
			return smig_json_fail_at(c->doc, arr, i, c->err, c->errlen,
						 "%s must be an object", what);
		SMIG_GUARD(smig_json_check(c->doc, d, what, fields, ARRAY_LEN(fields), c->err,
					   c->errlen));
		SMIG_GUARD(get_path(c, d, "path", s->disks[i].path));
		fmt = json_object_get(d, "format");
		if (fmt && strcmp(json_string_value(fmt), "raw") != 0 &&
		    strcmp(json_string_value(fmt), "qcow2") != 0)
			return smig_json_fail(c->doc, d, "format", c->err, c->errlen,
					      "format must be raw or qcow2");
		s->disks[i].qcow2 = fmt && strcmp(json_string_value(fmt), "qcow2") == 0;
		s->disks[i].readonly = json_is_true(json_object_get(d, "readonly"));
		s->ndisks++;
	}
	return 0;
}

static int parse_security(struct ctx *c, const json_t *sec, struct smig_vmspec *s)
{
	static const struct smig_jfield fields[] = {
		{ "min_trust", SMIG_J_STRING, false, 0, 0 },
		{ "requires", SMIG_J_ARRAY, false, 0, 0 },
	};
	const json_t *v;
	size_t i;
	json_t *r;

	SMIG_GUARD(smig_json_check(c->doc, sec, "security", fields, ARRAY_LEN(fields), c->err,
				   c->errlen));
	v = json_object_get(sec, "min_trust");
	if (v && smig_trust_parse(json_string_value(v), &s->min_trust) < 0)
		return smig_json_fail(c->doc, sec, "min_trust", c->err, c->errlen,
				      "min_trust must be none, attested or trusted");
	v = json_object_get(sec, "requires");
	if (json_array_size(v) > SMIG_VM_REQUIRES_MAX)
		return smig_json_fail(c->doc, sec, "requires", c->err, c->errlen,
				      "at most %d requirements", SMIG_VM_REQUIRES_MAX);
	json_array_foreach(v, i, r) {
		if (!json_is_string(r) || !smig_name_valid(json_string_value(r)))
			return smig_json_fail_at(c->doc, v, i, c->err, c->errlen,
						 "requires[%zu] must be a capability name", i);
		snprintf(s->requires[i], sizeof(s->requires[i]), "%s", json_string_value(r));
		s->nrequires++;
	}
	return 0;
}

static int parse_boot(struct ctx *c, const json_t *root, struct smig_vmspec *s)
{
	const json_t *v;

	SMIG_GUARD(get_path(c, root, "kernel", s->kernel));
	SMIG_GUARD(get_path(c, root, "initrd", s->initrd));
	SMIG_GUARD(get_path(c, root, "firmware", s->firmware));
	if ((s->kernel[0] != '\0') == (s->firmware[0] != '\0'))
		return smig_json_fail(c->doc, root, NULL, c->err, c->errlen,
				      "spec needs exactly one of kernel or firmware");
	if (s->firmware[0] && (s->initrd[0] || json_object_get(root, "cmdline")))
		return smig_json_fail(c->doc, root, s->initrd[0] ? "initrd" : "cmdline", c->err,
				      c->errlen, "initrd and cmdline go with kernel, not firmware");
	v = json_object_get(root, "cmdline");
	if (v && !cmdline_ok(json_string_value(v)))
		return smig_json_fail(c->doc, root, "cmdline", c->err, c->errlen,
				      "cmdline must be printable ASCII, at most %d characters",
				      SMIG_VM_CMDLINE_MAX);
	if (v)
		snprintf(s->cmdline, sizeof(s->cmdline), "%s", json_string_value(v));
	return 0;
}

static int parse_root(struct ctx *c, struct smig_vmspec *s)
{
	static const struct smig_jfield fields[] = {
		{ "name", SMIG_J_STRING, true, 0, 0 },
		{ "memory_mib", SMIG_J_INT, true, 16, 1048576 },
		{ "vcpus", SMIG_J_INT, false, 1, 64 },
		{ "kernel", SMIG_J_STRING, false, 0, 0 },
		{ "initrd", SMIG_J_STRING, false, 0, 0 },
		{ "cmdline", SMIG_J_STRING, false, 0, 0 },
		{ "firmware", SMIG_J_STRING, false, 0, 0 },
		{ "disks", SMIG_J_ARRAY, false, 0, 0 },
		{ "vtpm", SMIG_J_BOOL, false, 0, 0 },
		{ "security", SMIG_J_OBJECT, false, 0, 0 },
		{ "labels", SMIG_J_OBJECT, false, 0, 0 },
	};
	const json_t *root = c->doc->root;
	const json_t *v;

	SMIG_GUARD(smig_json_check(c->doc, root, "spec", fields, ARRAY_LEN(fields), c->err,
				   c->errlen));
	v = json_object_get(root, "name");
	if (!smig_name_valid(json_string_value(v)))
		return smig_json_fail(c->doc, root, "name", c->err, c->errlen,
				      "name must be 1-63 characters of A-Z a-z 0-9 . _ -");
	snprintf(s->name, sizeof(s->name), "%s", json_string_value(v));
	s->memory_mib = (uint32_t)json_integer_value(json_object_get(root, "memory_mib"));
	v = json_object_get(root, "vcpus");
	s->vcpus = v ? (uint32_t)json_integer_value(v) : 1;
	s->vtpm = json_is_true(json_object_get(root, "vtpm"));
	SMIG_GUARD(parse_boot(c, root, s));
	if ((v = json_object_get(root, "disks")))
		SMIG_GUARD(parse_disks(c, v, s));
	if ((v = json_object_get(root, "security")))
		SMIG_GUARD(parse_security(c, v, s));
	if ((v = json_object_get(root, "labels")))
		SMIG_GUARD(smig_labels_parse(c->doc, v, s->labels, SMIG_VM_LABELS_MAX, &s->nlabels,
					     c->err, c->errlen));
	for (size_t i = 0; i < s->nrequires; i++)
		if (strcmp(s->requires[i], "vtpm") == 0 && !s->vtpm)
			return smig_json_fail(c->doc, json_object_get(root, "security"),
					      "requires", c->err, c->errlen,
					      "security requires vtpm but the spec has no vtpm");
	return 0;
}

int smig_vmspec_parse(const char *name, const char *text, size_t len,
		      struct smig_vmspec *spec, char *err, size_t errlen)
{
	struct smig_json_doc doc;
	struct ctx c = { .doc = &doc, .err = err, .errlen = errlen };
	int rc;

	memset(spec, 0, sizeof(*spec));
	if (len > SMIG_VM_SPEC_MAX) {
		snprintf(err, errlen, "%s: spec larger than %zu bytes", name, SMIG_VM_SPEC_MAX);
		return SMIG_ETOOBIG;
	}
	SMIG_GUARD(smig_json_load_text(&doc, name, text, len, err, errlen));
	rc = parse_root(&c, spec);
	smig_json_doc_clear(&doc);
	return rc;
}

int smig_vmspec_load(const char *path, struct smig_vmspec *spec, char *err, size_t errlen)
{
	struct smig_json_doc doc;
	struct ctx c = { .doc = &doc, .err = err, .errlen = errlen };
	int rc;

	memset(spec, 0, sizeof(*spec));
	SMIG_GUARD(smig_json_load_file(&doc, path, err, errlen));
	rc = parse_root(&c, spec);
	smig_json_doc_clear(&doc);
	return rc;
}

int smig_vmspec_dump(const struct smig_vmspec *s, char **out)
{
	json_t *o = json_pack("{s:s,s:i,s:i,s:b}", "name", s->name, "memory_mib",
			      (int)s->memory_mib, "vcpus", (int)s->vcpus, "vtpm", s->vtpm);
	json_t *req = json_array();
	json_t *labels = json_object();
	json_t *disks = json_array();

	if (o == NULL || req == NULL || labels == NULL || disks == NULL)
		goto fail;
	if (s->kernel[0])
		json_object_set_new(o, "kernel", json_string(s->kernel));
	if (s->initrd[0])
		json_object_set_new(o, "initrd", json_string(s->initrd));
	if (s->kernel[0] && s->cmdline[0])
		json_object_set_new(o, "cmdline", json_string(s->cmdline));
	if (s->firmware[0])
		json_object_set_new(o, "firmware", json_string(s->firmware));
	for (size_t i = 0; i < s->ndisks; i++)
		json_array_append_new(disks, json_pack("{s:s,s:s,s:b}", "path", s->disks[i].path,
						       "format", s->disks[i].qcow2 ? "qcow2" : "raw",
						       "readonly", s->disks[i].readonly));
	for (size_t i = 0; i < s->nrequires; i++)
		json_array_append_new(req, json_string(s->requires[i]));
	for (size_t i = 0; i < s->nlabels; i++)
		json_object_set_new(labels, s->labels[i].key, json_string(s->labels[i].value));
	if (s->ndisks)
		json_object_set(o, "disks", disks);
	json_object_set_new(o, "security", json_pack("{s:s,s:O}", "min_trust",
						      smig_trust_name(s->min_trust), "requires",
						      req));
	json_object_set(o, "labels", labels);
	*out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	json_decref(req);
	json_decref(labels);
	json_decref(disks);
	return *out ? 0 : SMIG_ENOMEM;
fail:
	json_decref(o);
	json_decref(req);
	json_decref(labels);
	json_decref(disks);
	return SMIG_ENOMEM;
}
