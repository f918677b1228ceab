/*
 * catalog.c - the host-local resource catalogue in smigd's config
 * (catalog.h): pools, networks, firmware, capacity.
 */
#include "catalog.h"
#include "error.h"
#include "sign.h"

#include <stdio.h>
#include <string.h>

void smig_catalog_defaults(struct smig_catalog *cat)
{
	memset(cat, 0, sizeof(*cat));
	cat->capacity.memory_overcommit = 1.0;
	cat->capacity.cpu_overcommit = 4.0;
}

/* Every member of a name-keyed object must be a valid name and an object. */
static int check_member(const struct smig_json_doc *doc, const json_t *map, const char *what,
			const char *key, const json_t *val, char *err, size_t errlen)
{
	if (!smig_name_valid(key))
		return smig_json_fail(doc, map, key, err, errlen,
				      "%s name \"%.64s\" must be 1-63 characters of A-Z a-z 0-9 . _ -",
				      what, key);
	if (!json_is_object(val))
		return smig_json_fail(doc, map, key, err, errlen, "%s %s must be an object", what,
				      key);
	return 0;
}

static int parse_pools(const struct smig_json_doc *doc, const json_t *map, const char *base,
		       struct smig_catalog *cat, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "path", SMIG_J_STRING, true, 0, 0 },
		{ "shared", SMIG_J_BOOL, false, 0, 0 },
	};
	const char *key;
	json_t *val;

	if (json_object_size(map) > SMIG_POOLS_MAX)
		return smig_json_fail(doc, map, NULL, err, errlen, "at most %d pools",
				      SMIG_POOLS_MAX);
	json_object_foreach((json_t *)map, key, val) {
		struct smig_pool *p = &cat->pools[cat->npools];

		SMIG_GUARD(check_member(doc, map, "pool", key, val, err, errlen));
		SMIG_GUARD(smig_json_check(doc, val, key, fields, ARRAY_LEN(fields), err, errlen));
		snprintf(p->name, sizeof(p->name), "%s", key);
		SMIG_GUARD(smig_json_path(doc, val, "path", base, p->path, sizeof(p->path), err,
					  errlen));
		p->shared = json_is_true(json_object_get(val, "shared"));
		cat->npools++;
	}
	return 0;
}

static bool bridge_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= SMIG_BRIDGE_MAX)
		return false;
	for (const char *c = s; *c; c++)
		if (*c == '/' || *c == ':' || *c <= ' ' || *c == 0x7f)
			return false;
	return strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static int parse_networks(const struct smig_json_doc *doc, const json_t *map,
			  struct smig_catalog *cat, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "bridge", SMIG_J_STRING, true, 0, 0 },
	};
	const char *key;
	json_t *val;

	if (json_object_size(map) > SMIG_NETWORKS_MAX)
		return smig_json_fail(doc, map, NULL, err, errlen, "at most %d networks",
				      SMIG_NETWORKS_MAX);
	json_object_foreach((json_t *)map, key, val) {
		struct smig_network *n = &cat->networks[cat->nnetworks];
		const char *br;

		SMIG_GUARD(check_member(doc, map, "network", key, val, err, errlen));
		SMIG_GUARD(smig_json_check(doc, val, key, fields, ARRAY_LEN(fields), err, errlen));
		br = json_string_value(json_object_get(val, "bridge"));
		if (!bridge_ok(br))
			return smig_json_fail(doc, val, "bridge", err, errlen,
					      "bridge must be an interface name of 1-15 characters");
		snprintf(n->name, sizeof(n->name), "%s", key);
		snprintf(n->bridge, sizeof(n->bridge), "%s", br);
		cat->nnetworks++;
	}
	return 0;
}

/* "accepts": ["sha256:HEX", ...], other builds of the code image. */
static int parse_accepts(const struct smig_json_doc *doc, const json_t *arr,
			 struct smig_firmware *f, char *err, size_t errlen)
{
	size_t i;
	json_t *v;

	if (arr == NULL)
		return 0;
	if (json_array_size(arr) > SMIG_FW_ACCEPTS_MAX)
		return smig_json_fail(doc, arr, NULL, err, errlen,
				      "accepts: at most %d other firmware builds",
				      SMIG_FW_ACCEPTS_MAX);
	json_array_foreach(arr, i, v) {
		const char *s = json_string_value(v);

		if (s == NULL || strncmp(s, "sha256:", 7) != 0 ||
		    smig_unhex(s + 7, f->accepts[f->naccepts], 32) < 0)
			return smig_json_fail_at(doc, arr, i, err, errlen,
						 "accepts[%zu]: a firmware build is \"sha256:\" and "
						 "the 64 hex digits of its code image's SHA-256 (sha256sum "
						 "FILE)", i);
		f->naccepts++;
	}
	return 0;
}

static int parse_firmware(const struct smig_json_doc *doc, const json_t *map, const char *base,
			  struct smig_catalog *cat, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "code", SMIG_J_STRING, true, 0, 0 },
		{ "vars", SMIG_J_STRING, true, 0, 0 },
		{ "secure_boot", SMIG_J_BOOL, false, 0, 0 },
		{ "accepts", SMIG_J_ARRAY, false, 0, 0 },
	};
	const char *key;
	json_t *val;

	if (json_object_size(map) > SMIG_FIRMWARE_MAX)
		return smig_json_fail(doc, map, NULL, err, errlen, "at most %d firmware images",
				      SMIG_FIRMWARE_MAX);
	json_object_foreach((json_t *)map, key, val) {
		struct smig_firmware *f = &cat->firmware[cat->nfirmware];

		SMIG_GUARD(check_member(doc, map, "firmware", key, val, err, errlen));
		SMIG_GUARD(smig_json_check(doc, val, key, fields, ARRAY_LEN(fields), err, errlen));
		snprintf(f->name, sizeof(f->name), "%s", key);
		SMIG_GUARD(smig_json_path(doc, val, "code", base, f->code, sizeof(f->code), err,
					  errlen));
		SMIG_GUARD(smig_json_path(doc, val, "vars", base, f->vars, sizeof(f->vars), err,
					  errlen));
		f->secure_boot = json_is_true(json_object_get(val, "secure_boot"));
		SMIG_GUARD(parse_accepts(doc, json_object_get(val, "accepts"), f, err, errlen));
		cat->nfirmware++;
	}
	return 0;
}

static int parse_ratio(const struct smig_json_doc *doc, const json_t *cap, const char *key,
		       double *out, char *err, size_t errlen)
{
	const json_t *v = json_object_get(cap, key);

	if (v == NULL)
		return 0;
	if (json_number_value(v) < 1.0 || json_number_value(v) > 64.0)
		return smig_json_fail(doc, cap, key, err, errlen,
				      "%s must be a number from 1 to 64", key);
	*out = json_number_value(v);
	return 0;
}

static int parse_capacity(const struct smig_json_doc *doc, const json_t *cap,
			  struct smig_catalog *cat, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "memory_mib", SMIG_J_INT, false, 1, 1LL << 32 },
		{ "vcpus", SMIG_J_INT, false, 1, 65536 },
		{ "memory_overcommit", SMIG_J_NUMBER, false, 0, 0 },
		{ "cpu_overcommit", SMIG_J_NUMBER, false, 0, 0 },
	};
	const json_t *v;

	SMIG_GUARD(smig_json_check(doc, cap, "capacity", fields, ARRAY_LEN(fields), err, errlen));
	if ((v = json_object_get(cap, "memory_mib")))
		cat->capacity.memory_mib = (uint32_t)json_integer_value(v);
	if ((v = json_object_get(cap, "vcpus")))
		cat->capacity.vcpus = (uint32_t)json_integer_value(v);
	SMIG_GUARD(parse_ratio(doc, cap, "memory_overcommit", &cat->capacity.memory_overcommit,
			       err, errlen));
	return parse_ratio(doc, cap, "cpu_overcommit", &cat->capacity.cpu_overcommit, err,
			   errlen);
}

int smig_catalog_parse(const struct smig_json_doc *doc, const json_t *root, const char *base,
		       struct smig_catalog *cat, char *err, size_t errlen)
{
	const json_t *v;

	if ((v = json_object_get(root, "pools")))
		SMIG_GUARD(parse_pools(doc, v, base, cat, err, errlen));
	if ((v = json_object_get(root, "networks")))
		SMIG_GUARD(parse_networks(doc, v, cat, err, errlen));
	if ((v = json_object_get(root, "firmware")))
		SMIG_GUARD(parse_firmware(doc, v, base, cat, err, errlen));
	if ((v = json_object_get(root, "capacity")))
		SMIG_GUARD(parse_capacity(doc, v, cat, err, errlen));
	return 0;
}

const struct smig_pool *smig_catalog_pool(const struct smig_catalog *cat, const char *name)
{
	for (size_t i = 0; i < cat->npools; i++)
		if (strcmp(cat->pools[i].name, name) == 0)
			return &cat->pools[i];
	return NULL;
}

const struct smig_network *smig_catalog_network(const struct smig_catalog *cat,
						const char *name)
{
	for (size_t i = 0; i < cat->nnetworks; i++)
		if (strcmp(cat->networks[i].name, name) == 0)
			return &cat->networks[i];
	return NULL;
}

const struct smig_firmware *smig_catalog_firmware(const struct smig_catalog *cat,
						  const char *name)
{
	for (size_t i = 0; i < cat->nfirmware; i++)
		if (strcmp(cat->firmware[i].name, name) == 0)
			return &cat->firmware[i];
	return NULL;
}

uint64_t smig_capacity_memory(const struct smig_capacity *c)
{
	return (uint64_t)((double)c->memory_mib * c->memory_overcommit);
}

uint64_t smig_capacity_vcpus(const struct smig_capacity *c)
{
	return (uint64_t)((double)c->vcpus * c->cpu_overcommit);
}
