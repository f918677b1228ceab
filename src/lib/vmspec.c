/*
 * vmspec.c - strict VM specs (vmspec.h): parsing and validation. The
 * serialized form is in vmspec_dump.c, the QEMU command line in
 * qemu_argv.c.
 *
 * No field of a spec is a host path: volumes are plain names in a pool,
 * networks and firmware are names, and the host that runs the VM maps
 * them through its own catalogue (catalog.h). The fields of the first
 * spec format that were host paths are refused with a message that says
 * what replaced them.
 */
#include "vmspec.h"
#include "error.h"
#include "json.h"
#include "sign.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const trust_names[] = { "none", "unverified", "attested", "trusted" };
static const char *const bus_names[] = { "virtio-blk", "virtio-scsi" };
static const char *const cache_names[] = { "none", "writethrough", "writeback", "directsync",
					   "unsafe" };

const char *smig_trust_name(enum smig_trust t)
{
	return (unsigned)t < ARRAY_LEN(trust_names) ? trust_names[t] : "unknown";
}

const char *smig_disk_bus_name(enum smig_disk_bus b)
{
	return (unsigned)b < ARRAY_LEN(bus_names) ? bus_names[b] : "unknown";
}

const char *smig_disk_cache_name(enum smig_disk_cache c)
{
	return (unsigned)c < ARRAY_LEN(cache_names) ? cache_names[c] : "unknown";
}

static int name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

int smig_trust_parse(const char *s, enum smig_trust *out)
{
	int i = name_index(trust_names, ARRAY_LEN(trust_names), s);

	SMIG_ENSURE(i >= 0, SMIG_EINVAL);
	*out = (enum smig_trust)i;
	return 0;
}

void smig_mac_format(const uint8_t mac[6], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
		 mac[4], mac[5]);
}

/* Six hex pairs separated by colons, unicast, not all zero. */
int smig_mac_parse(const char *s, uint8_t mac[6])
{
	char hex[13];
	uint8_t any = 0;

	SMIG_ENSURE(s != NULL && strlen(s) == 17, SMIG_EINVAL);
	for (size_t i = 0; i < 6; i++) {
		SMIG_ENSURE(i == 5 || s[3 * i + 2] == ':', SMIG_EINVAL);
		hex[2 * i] = s[3 * i];
		hex[2 * i + 1] = s[3 * i + 1];
	}
	hex[12] = '\0';
	SMIG_GUARD(smig_unhex(hex, mac, 6));
	for (size_t i = 0; i < 6; i++)
		any |= mac[i];
	SMIG_ENSURE((mac[0] & 1) == 0 && any != 0, SMIG_EINVAL);
	return 0;
}

/* Machine types and CPU models: QEMU's names, never an option string. */
static bool model_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= SMIG_VM_MODEL_MAX || s[0] == '-')
		return false;
	for (const char *c = s; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-'))
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

/* The first spec format's host-path fields, and what took their place. */
static int refuse_old(struct ctx *c, const json_t *obj, const char *const (*old)[2], size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (json_object_get(obj, old[i][0]))
			return smig_json_fail(c->doc, obj, old[i][0], c->err, c->errlen,
					      "%s (a host path) is no longer accepted: %s "
					      "(docs/vmspec.md)",
					      old[i][0], old[i][1]);
	return 0;
}

/* The pool and volume members of v (strings, already type-checked) into out. */
static int volref_names(struct ctx *c, const json_t *v, const char *what,
			struct smig_volref *out)
{
	const char *pool = json_string_value(json_object_get(v, "pool"));
	const char *vol = json_string_value(json_object_get(v, "volume"));

	if (!smig_name_valid(pool))
		return smig_json_fail(c->doc, v, "pool", c->err, c->errlen,
				      "%s.pool must be the name of a pool (1-63 of A-Z a-z 0-9 . _ -)",
				      what);
	if (!smig_name_valid(vol))
		return smig_json_fail(c->doc, v, "volume", c->err, c->errlen,
				      "%s.volume must be a plain file name in the pool (1-63 of "
				      "A-Z a-z 0-9 . _ -, no \"/\", not starting with \".\" or \"-\")",
				      what);
	snprintf(out->pool, sizeof(out->pool), "%s", pool);
	snprintf(out->volume, sizeof(out->volume), "%s", vol);
	return 0;
}

/* Member key of obj: {"pool": NAME, "volume": NAME} */
static int get_volref(struct ctx *c, const json_t *obj, const char *key, const char *what,
		      struct smig_volref *out)
{
	static const struct smig_jfield fields[] = {
		{ "pool", SMIG_J_STRING, true, 0, 0 },
		{ "volume", SMIG_J_STRING, true, 0, 0 },
	};
	const json_t *v = json_object_get(obj, key);

	if (!json_is_object(v))
		return smig_json_fail(c->doc, obj, key, c->err, c->errlen,
				      "%s must be {\"pool\": NAME, \"volume\": NAME}", what);
	SMIG_GUARD(smig_json_check(c->doc, v, what, fields, ARRAY_LEN(fields), c->err, c->errlen));
	return volref_names(c, v, what, out);
}

static int get_choice(struct ctx *c, const json_t *obj, const char *key, const char *what,
		      const char *const *names, size_t n, int *out)
{
	const json_t *v = json_object_get(obj, key);
	int i;

	if (v == NULL)
		return 0;
	i = name_index(names, n, json_string_value(v));
	if (i < 0) {
		char list[128] = "";

		for (size_t k = 0; k < n; k++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 k ? ", " : "", names[k]);
		return smig_json_fail(c->doc, obj, key, c->err, c->errlen, "%s must be one of %s",
				      what, list);
	}
	*out = i;
	return 0;
}

static int parse_disk(struct ctx *c, const json_t *d, const char *what, struct smig_vm_disk *disk)
{
	static const struct smig_jfield fields[] = {
		{ "pool", SMIG_J_STRING, true, 0, 0 },
		{ "volume", SMIG_J_STRING, true, 0, 0 },
		{ "format", SMIG_J_STRING, false, 0, 0 },
		{ "bus", SMIG_J_STRING, false, 0, 0 },
		{ "cache", SMIG_J_STRING, false, 0, 0 },
		{ "readonly", SMIG_J_BOOL, false, 0, 0 },
	};
	static const char *const old[][2] = {
		{ "path", "a disk is {\"pool\": NAME, \"volume\": NAME}, a file in a pool of the "
			  "host's config" },
	};
	static const char *const formats[] = { "raw", "qcow2" };
	int fmt = 0, bus = 0, cache = 0;

	SMIG_GUARD(refuse_old(c, d, old, ARRAY_LEN(old)));
	SMIG_GUARD(smig_json_check(c->doc, d, what, fields, ARRAY_LEN(fields), c->err, c->errlen));
	SMIG_GUARD(volref_names(c, d, what, &disk->vol));
	SMIG_GUARD(get_choice(c, d, "format", "format", formats, ARRAY_LEN(formats), &fmt));
	SMIG_GUARD(get_choice(c, d, "bus", "bus", bus_names, ARRAY_LEN(bus_names), &bus));
	SMIG_GUARD(get_choice(c, d, "cache", "cache", cache_names, ARRAY_LEN(cache_names), &cache));
	disk->qcow2 = fmt == 1;
	disk->bus = (enum smig_disk_bus)bus;
	disk->cache = (enum smig_disk_cache)cache;
	disk->readonly = json_is_true(json_object_get(d, "readonly"));
	return 0;
}

static int parse_disks(struct ctx *c, const json_t *arr, struct smig_vmspec *s)
{
	size_t i;
	json_t *d;

	if (json_array_size(arr) > SMIG_VM_DISKS_MAX)
		return smig_json_fail_at(c->doc, arr, SMIG_VM_DISKS_MAX, c->err, c->errlen,
					 "at most %d disks", SMIG_VM_DISKS_MAX);
	json_array_foreach(arr, i, d) {
		char what[16];

		snprintf(what, sizeof(what), "disks[%zu]", i);
		if (!json_is_object(d))
			return smig_json_fail_at(c->doc, arr, i, c->err, c->errlen,
						 "%s must be an object", what);
		SMIG_GUARD(parse_disk(c, d, what, &s->disks[i]));
		for (size_t k = 0; k < i; k++)
			if (strcmp(s->disks[k].vol.pool, s->disks[i].vol.pool) == 0 &&
			    strcmp(s->disks[k].vol.volume, s->disks[i].vol.volume) == 0)
				return smig_json_fail_at(c->doc, arr, i, c->err, c->errlen,
							 "%s is the same volume as disks[%zu]", what, k);
		s->ndisks++;
	}
	return 0;
}

static int parse_filter(struct ctx *c, const json_t *f, const char *what, struct smig_vm_nic *nic)
{
	static const struct smig_jfield fields[] = {
		{ "ips", SMIG_J_ARRAY, false, 0, 0 },
		{ "tcp_ports", SMIG_J_ARRAY, false, 0, 0 },
	};
	const json_t *ips = json_object_get(f, "ips"), *ports = json_object_get(f, "tcp_ports");
	size_t i;
	json_t *v;

	SMIG_GUARD(smig_json_check(c->doc, f, what, fields, ARRAY_LEN(fields), c->err, c->errlen));
	if (json_array_size(ips) > SMIG_VM_NIC_IPS_MAX)
		return smig_json_fail(c->doc, f, "ips", c->err, c->errlen, "at most %d addresses",
				      SMIG_VM_NIC_IPS_MAX);
	json_array_foreach(ips, i, v) {
		struct in_addr a;

		if (!json_is_string(v) || inet_pton(AF_INET, json_string_value(v), &a) != 1)
			return smig_json_fail_at(c->doc, ips, i, c->err, c->errlen,
						 "%s.ips[%zu] must be an IPv4 address", what, i);
		nic->ips[nic->nips++] = a.s_addr;
	}
	if (json_array_size(ports) > SMIG_VM_NIC_PORTS_MAX)
		return smig_json_fail(c->doc, f, "tcp_ports", c->err, c->errlen, "at most %d ports",
				      SMIG_VM_NIC_PORTS_MAX);
	json_array_foreach(ports, i, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
			return smig_json_fail_at(c->doc, ports, i, c->err, c->errlen,
						 "%s.tcp_ports[%zu] must be a port from 1 to 65535", what,
						 i);
		nic->tcp_ports[nic->nports++] = (uint16_t)json_integer_value(v);
	}
	nic->filter = true;
	return 0;
}

static int parse_nics(struct ctx *c, const json_t *arr, struct smig_vmspec *s)
{
	static const struct smig_jfield fields[] = {
		{ "network", SMIG_J_STRING, true, 0, 0 },
		{ "mac", SMIG_J_STRING, false, 0, 0 },
		{ "model", SMIG_J_STRING, false, 0, 0 },
		{ "filter", SMIG_J_OBJECT, false, 0, 0 },
	};
	size_t i;
	json_t *n;

	if (json_array_size(arr) > SMIG_VM_NICS_MAX)
		return smig_json_fail_at(c->doc, arr, SMIG_VM_NICS_MAX, c->err, c->errlen,
					 "at most %d NICs", SMIG_VM_NICS_MAX);
	json_array_foreach(arr, i, n) {
		struct smig_vm_nic *nic = &s->nics[i];
		const json_t *v;
		char what[16];

		snprintf(what, sizeof(what), "nics[%zu]", i);
		if (!json_is_object(n))
			return smig_json_fail_at(c->doc, arr, i, c->err, c->errlen,
						 "%s must be an object", what);
		SMIG_GUARD(smig_json_check(c->doc, n, what, fields, ARRAY_LEN(fields), c->err,
					   c->errlen));
		v = json_object_get(n, "network");
		if (!smig_name_valid(json_string_value(v)))
			return smig_json_fail(c->doc, n, "network", c->err, c->errlen,
					      "%s.network must be the name of a network", what);
		snprintf(nic->network, sizeof(nic->network), "%s", json_string_value(v));
		v = json_object_get(n, "model");
		if (v && strcmp(json_string_value(v), "virtio-net") != 0)
			return smig_json_fail(c->doc, n, "model", c->err, c->errlen,
					      "%s.model must be virtio-net", what);
		v = json_object_get(n, "mac");
		if (v && smig_mac_parse(json_string_value(v), nic->mac) < 0)
			return smig_json_fail(c->doc, n, "mac", c->err, c->errlen,
					      "%s.mac must be a unicast MAC address like "
					      "52:54:00:12:34:56",
					      what);
		nic->has_mac = v != NULL;
		if ((v = json_object_get(n, "filter"))) {
			char fwhat[24];

			snprintf(fwhat, sizeof(fwhat), "%s.filter", what);
			SMIG_GUARD(parse_filter(c, v, fwhat, nic));
		}
		for (size_t k = 0; nic->has_mac && k < i; k++)
			if (s->nics[k].has_mac && memcmp(s->nics[k].mac, nic->mac, 6) == 0)
				return smig_json_fail(c->doc, n, "mac", c->err, c->errlen,
						      "%s has the MAC of nics[%zu]", what, k);
		s->nnics++;
	}
	return 0;
}

static int parse_firmware(struct ctx *c, const json_t *fw, struct smig_vmspec *s)
{
	static const struct smig_jfield fields[] = {
		{ "kind", SMIG_J_STRING, true, 0, 0 },
		{ "name", SMIG_J_STRING, false, 0, 0 },
		{ "secure_boot", SMIG_J_BOOL, false, 0, 0 },
		{ "nvram", SMIG_J_OBJECT, false, 0, 0 },
	};
	static const char *const kinds[] = { "bios", "uefi" };
	struct smig_vm_firmware *f = &s->firmware;
	const json_t *v;
	int kind = 0;

	if (json_is_string(fw))
		return smig_json_fail(c->doc, c->doc->root, "firmware", c->err, c->errlen,
				      "firmware (a host path) is no longer accepted: firmware is "
				      "{\"kind\": \"bios\"|\"uefi\", \"name\": NAME, \"nvram\": "
				      "{\"pool\", \"volume\"}} (docs/vmspec.md)");
	if (!json_is_object(fw))
		return smig_json_fail(c->doc, c->doc->root, "firmware", c->err, c->errlen,
				      "firmware must be an object");
	SMIG_GUARD(smig_json_check(c->doc, fw, "firmware", fields, ARRAY_LEN(fields), c->err,
				   c->errlen));
	SMIG_GUARD(get_choice(c, fw, "kind", "firmware.kind", kinds, ARRAY_LEN(kinds), &kind));
	f->kind = (enum smig_fw_kind)kind;
	f->secure_boot = json_is_true(json_object_get(fw, "secure_boot"));
	if (f->kind == SMIG_FW_BIOS) {
		if (json_object_get(fw, "name") || json_object_get(fw, "nvram") || f->secure_boot)
			return smig_json_fail(c->doc, fw, NULL, c->err, c->errlen,
					      "firmware kind bios (QEMU's SeaBIOS) takes no name, "
					      "nvram or secure_boot");
		return 0;
	}
	v = json_object_get(fw, "name");
	if (v == NULL || !smig_name_valid(json_string_value(v)))
		return smig_json_fail(c->doc, fw, v ? "name" : NULL, c->err, c->errlen,
				      "firmware kind uefi needs name: a firmware of the host's "
				      "config");
	snprintf(f->name, sizeof(f->name), "%s", json_string_value(v));
	if (json_object_get(fw, "nvram") == NULL)
		return smig_json_fail(c->doc, fw, NULL, c->err, c->errlen,
				      "firmware kind uefi needs nvram: the volume that keeps the "
				      "VM's UEFI variables");
	return get_volref(c, fw, "nvram", "firmware.nvram", &f->nvram);
}

static int parse_boot(struct ctx *c, const json_t *b, struct smig_vmspec *s)
{
	static const struct smig_jfield fields[] = {
		{ "kernel", SMIG_J_OBJECT, true, 0, 0 },
		{ "initrd", SMIG_J_OBJECT, false, 0, 0 },
		{ "cmdline", SMIG_J_STRING, false, 0, 0 },
	};
	const json_t *v;

	SMIG_GUARD(smig_json_check(c->doc, b, "boot", fields, ARRAY_LEN(fields), c->err,
				   c->errlen));
	SMIG_GUARD(get_volref(c, b, "kernel", "boot.kernel", &s->boot.kernel));
	s->boot.kernel_set = true;
	if (json_object_get(b, "initrd")) {
		SMIG_GUARD(get_volref(c, b, "initrd", "boot.initrd", &s->boot.initrd));
		s->boot.initrd_set = true;
	}
	v = json_object_get(b, "cmdline");
	if (v && !cmdline_ok(json_string_value(v)))
		return smig_json_fail(c->doc, b, "cmdline", c->err, c->errlen,
				      "cmdline must be printable ASCII, at most %d characters",
				      SMIG_VM_CMDLINE_MAX);
	if (v)
		snprintf(s->boot.cmdline, sizeof(s->boot.cmdline), "%s", json_string_value(v));
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
				      "min_trust must be none, unverified, attested or trusted");
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

static int get_model(struct ctx *c, const json_t *root, const char *key, char *out)
{
	const json_t *v = json_object_get(root, key);

	if (v == NULL)
		return 0;
	if (!model_ok(json_string_value(v)))
		return smig_json_fail(c->doc, root, key, c->err, c->errlen,
				      "%s must be a QEMU %s name (A-Z a-z 0-9 . _ -, at most %d)",
				      key, strcmp(key, "cpu") == 0 ? "CPU model" : "machine type",
				      SMIG_VM_MODEL_MAX - 1);
	snprintf(out, SMIG_VM_MODEL_MAX, "%s", json_string_value(v));
	return 0;
}

static int parse_parts(struct ctx *c, const json_t *root, struct smig_vmspec *s)
{
	const json_t *v;

	SMIG_GUARD(get_model(c, root, "machine", s->machine));
	SMIG_GUARD(get_model(c, root, "cpu", s->cpu));
	if ((v = json_object_get(root, "firmware")))
		SMIG_GUARD(parse_firmware(c, v, s));
	if ((v = json_object_get(root, "boot")))
		SMIG_GUARD(parse_boot(c, v, s));
	if ((v = json_object_get(root, "disks")))
		SMIG_GUARD(parse_disks(c, v, s));
	if ((v = json_object_get(root, "nics")))
		SMIG_GUARD(parse_nics(c, v, s));
	if ((v = json_object_get(root, "security")))
		SMIG_GUARD(parse_security(c, v, s));
	if ((v = json_object_get(root, "labels")))
		SMIG_GUARD(smig_labels_parse(c->doc, v, s->labels, SMIG_VM_LABELS_MAX, &s->nlabels,
					     c->err, c->errlen));
	return 0;
}

static int parse_root(struct ctx *c, struct smig_vmspec *s)
{
	static const struct smig_jfield fields[] = {
		{ "name", SMIG_J_STRING, true, 0, 0 },
		{ "machine", SMIG_J_STRING, false, 0, 0 },
		{ "cpu", SMIG_J_STRING, false, 0, 0 },
		{ "memory_mib", SMIG_J_INT, true, 16, 1048576 },
		{ "vcpus", SMIG_J_INT, false, 1, 64 },
		{ "firmware", SMIG_J_OBJECT, false, 0, 0 },
		{ "boot", SMIG_J_OBJECT, false, 0, 0 },
		{ "disks", SMIG_J_ARRAY, false, 0, 0 },
		{ "nics", SMIG_J_ARRAY, false, 0, 0 },
		{ "vtpm", SMIG_J_BOOL, false, 0, 0 },
		{ "guest_agent", SMIG_J_BOOL, false, 0, 0 },
		{ "autostart", SMIG_J_BOOL, false, 0, 0 },
		{ "shutdown_timeout_s", SMIG_J_INT, false, 1, SMIG_VM_SHUTDOWN_TIMEOUT_MAX },
		{ "security", SMIG_J_OBJECT, false, 0, 0 },
		{ "labels", SMIG_J_OBJECT, false, 0, 0 },
	};
	static const char *const old[][2] = {
		{ "kernel", "a kernel is a volume: \"boot\": {\"kernel\": {\"pool\": NAME, "
			    "\"volume\": NAME}}" },
		{ "initrd", "an initrd is a volume: \"boot\": {\"initrd\": {\"pool\": NAME, "
			    "\"volume\": NAME}}" },
		{ "cmdline", "the kernel command line is \"boot\": {\"cmdline\": ...}" },
	};
	const json_t *root = c->doc->root;
	const json_t *v;

	SMIG_GUARD(refuse_old(c, root, old, ARRAY_LEN(old)));
	if (json_is_string(json_object_get(root, "firmware")))
		return parse_firmware(c, json_object_get(root, "firmware"), s);
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
	s->guest_agent = json_is_true(json_object_get(root, "guest_agent"));
	s->autostart = json_is_true(json_object_get(root, "autostart"));
	v = json_object_get(root, "shutdown_timeout_s");
	s->shutdown_timeout_s = v ? (uint32_t)json_integer_value(v) : 0;
	SMIG_GUARD(parse_parts(c, root, s));
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
