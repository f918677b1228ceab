/*
 * vmspec_dump.c - a validated spec as the JSON that smig_vmspec_parse()
 * reads back (vmspec.h): what smigd saves and what PREPARE carries; and
 * which keys two specs differ in.
 */
#include "error.h"
#include "vmspec.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *volref_json(const struct smig_volref *v)
{
	return json_pack("{s:s,s:s}", "pool", v->pool, "volume", v->volume);
}

static json_t *firmware_json(const struct smig_vm_firmware *f)
{
	if (f->kind == SMIG_FW_BIOS)
		return json_pack("{s:s}", "kind", "bios");
	return json_pack("{s:s,s:s,s:b,s:o}", "kind", "uefi", "name", f->name, "secure_boot",
			 f->secure_boot, "nvram", volref_json(&f->nvram));
}

static json_t *boot_json(const struct smig_vm_boot *b)
{
	json_t *o = json_pack("{s:o}", "kernel", volref_json(&b->kernel));

	if (o && b->initrd_set)
		json_object_set_new(o, "initrd", volref_json(&b->initrd));
	if (o && b->cmdline[0])
		json_object_set_new(o, "cmdline", json_string(b->cmdline));
	return o;
}

static json_t *disks_json(const struct smig_vmspec *s)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < s->ndisks; i++) {
		const struct smig_vm_disk *d = &s->disks[i];

		json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:s,s:s,s:b}", "pool", d->vol.pool,
						   "volume", d->vol.volume, "format",
						   d->qcow2 ? "qcow2" : "raw", "bus",
						   smig_disk_bus_name(d->bus), "cache",
						   smig_disk_cache_name(d->cache), "readonly",
						   d->readonly));
	}
	return a;
}

static json_t *filter_json(const struct smig_vm_nic *n)
{
	json_t *ips = json_array(), *ports = json_array();

	for (size_t i = 0; ips && i < n->nips; i++) {
		char a[INET_ADDRSTRLEN];
		struct in_addr in = { .s_addr = n->ips[i] };

		json_array_append_new(ips, json_string(inet_ntop(AF_INET, &in, a, sizeof(a))));
	}
	for (size_t i = 0; ports && i < n->nports; i++)
		json_array_append_new(ports, json_integer(n->tcp_ports[i]));
	return json_pack("{s:o,s:o}", "ips", ips, "tcp_ports", ports);
}

static json_t *nics_json(const struct smig_vmspec *s)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < s->nnics; i++) {
		json_t *n = json_pack("{s:s,s:s}", "network", s->nics[i].network, "model",
				      "virtio-net");
		char mac[18];

		if (n && s->nics[i].has_mac) {
			smig_mac_format(s->nics[i].mac, mac);
			json_object_set_new(n, "mac", json_string(mac));
		}
		if (n && s->nics[i].filter)
			json_object_set_new(n, "filter", filter_json(&s->nics[i]));
		json_array_append_new(a, n);
	}
	return a;
}

static json_t *security_json(const struct smig_vmspec *s)
{
	json_t *req = json_array();

	for (size_t i = 0; req && i < s->nrequires; i++)
		json_array_append_new(req, json_string(s->requires[i]));
	return json_pack("{s:s,s:o}", "min_trust", smig_trust_name(s->min_trust), "requires",
			 req);
}

int smig_vmspec_dump(const struct smig_vmspec *s, char **out)
{
	json_t *o = json_pack("{s:s,s:i,s:i,s:b}", "name", s->name, "memory_mib",
			      (int)s->memory_mib, "vcpus", (int)s->vcpus, "vtpm", s->vtpm);
	json_t *labels = json_object();

	*out = NULL;
	if (o == NULL || labels == NULL) {
		json_decref(o);
		json_decref(labels);
		return SMIG_ENOMEM;
	}
	if (s->guest_agent)
		json_object_set_new(o, "guest_agent", json_true());
	if (s->autostart)
		json_object_set_new(o, "autostart", json_true());
	if (s->shutdown_timeout_s)
		json_object_set_new(o, "shutdown_timeout_s", json_integer(s->shutdown_timeout_s));
	if (s->machine[0])
		json_object_set_new(o, "machine", json_string(s->machine));
	if (s->cpu[0])
		json_object_set_new(o, "cpu", json_string(s->cpu));
	json_object_set_new(o, "firmware", firmware_json(&s->firmware));
	if (s->boot.kernel_set)
		json_object_set_new(o, "boot", boot_json(&s->boot));
	if (s->ndisks)
		json_object_set_new(o, "disks", disks_json(s));
	if (s->nnics)
		json_object_set_new(o, "nics", nics_json(s));
	json_object_set_new(o, "security", security_json(s));
	for (size_t i = 0; i < s->nlabels; i++)
		json_object_set_new(labels, s->labels[i].key, json_string(s->labels[i].value));
	json_object_set_new(o, "labels", labels);
	*out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return *out ? 0 : SMIG_ENOMEM;
}

static json_t *spec_object(const struct smig_vmspec *s)
{
	char *text = NULL;
	json_t *o;

	if (smig_vmspec_dump(s, &text) < 0)
		return NULL;
	o = json_loads(text, 0, NULL);
	free(text);
	return o;
}

/* Appends key to the comma-separated list in out (", " between). */
static void list_add(char *out, size_t outlen, const char *key)
{
	size_t n = strlen(out);

	if (n + strlen(key) + 3 >= outlen)
		return;
	snprintf(out + n, outlen - n, "%s%s", n ? ", " : "", key);
}

int smig_vmspec_diff(const struct smig_vmspec *a, const struct smig_vmspec *b, unsigned flags,
		     char *out, size_t outlen)
{
	static const char *const host_keys[] = { "autostart", "shutdown_timeout_s" };
	json_t *oa = spec_object(a), *ob = spec_object(b);
	const char *key;
	json_t *va;

	if (outlen)
		out[0] = '\0';
	if (oa == NULL || ob == NULL) {
		json_decref(oa);
		json_decref(ob);
		return SMIG_ENOMEM;
	}
	if (flags & SMIG_VMSPEC_DIFF_HOST_ONLY)
		for (size_t i = 0; i < ARRAY_LEN(host_keys); i++) {
			(void)json_object_del(oa, host_keys[i]);
			(void)json_object_del(ob, host_keys[i]);
		}
	json_object_foreach(oa, key, va)
		if (!json_equal(va, json_object_get(ob, key)))
			list_add(out, outlen, key);
	json_object_foreach(ob, key, va)
		if (json_object_get(oa, key) == NULL)
			list_add(out, outlen, key);
	json_decref(oa);
	json_decref(ob);
	return 0;
}
