/*
 * vm_capacity.c - what this host's VMs hold of it (vm.h, "capacity"): the
 * memory and vCPUs configured (after overcommit), used by the VMs that run
 * or start, and reserved: by incoming migrations from PREPARE until commit
 * or abort, and by holds a source asked for ahead of its PREPARE (an
 * evacuation's plan: peer RESERVE) until that PREPARE, a release or their
 * time; admission control refuses what does not fit, naming the figures.
 */
#include "vm/vm_int.h"
#include "error.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIN(a, b) ((a) < (b) ? (a) : (b))

static bool consumes(const struct vm *vm)
{
	return vm->state != VM_DEFINED && vm->state != VM_SHUTOFF;
}

/* Forgets the holds whose time is up, and those of hosts no longer in the table. */
static void holds_prune(struct smigd *d)
{
	uint64_t now = loop_now_ms();

	for (struct vm_hold **hp = &d->vms->holds; *hp;) {
		struct vm_hold *h = *hp;
		bool known = smig_hosts_by_name(smigd_hosts(d), h->from) != NULL;

		if (h->until_ms > now && known) {
			hp = &h->next;
			continue;
		}
		smig_info("event=capacity_hold_expired from=%s vm=%s reason=%s", h->from, h->vm,
			  known ? "time" : "not_in_host_table");
		*hp = h->next;
		free(h);
	}
}

void vm_res_usage(struct smigd *d, struct vm_usage *u)
{
	const struct smig_capacity *c = &d->cfg.catalog.capacity;

	memset(u, 0, sizeof(*u));
	holds_prune(d);
	for (const struct vm_hold *h = d->vms->holds; h; h = h->next) {
		u->reserved_memory_mib += h->memory_mib;
		u->reserved_vcpus += h->vcpus;
	}
	u->memory_mib = smig_capacity_memory(c);
	u->vcpus = smig_capacity_vcpus(c);
	for (const struct vm *vm = vm_first(d); vm; vm = vm->next) {
		/* an incoming VM holds its reservation from PREPARE until commit or abort */
		if (vm->incoming) {
			u->reserved_memory_mib += vm->spec.memory_mib;
			u->reserved_vcpus += vm->spec.vcpus;
		} else if (consumes(vm)) {
			u->used_memory_mib += vm->spec.memory_mib;
			u->used_vcpus += vm->spec.vcpus;
		}
	}
	u->free_memory_mib =
		u->memory_mib - MIN(u->memory_mib, u->used_memory_mib + u->reserved_memory_mib);
	u->free_vcpus = u->vcpus - MIN(u->vcpus, u->used_vcpus + u->reserved_vcpus);
}

static int admit(struct smigd *d, const char *name, uint32_t memory_mib, uint32_t vcpus,
		 char *err, size_t errlen)
{
	struct vm_usage u;

	vm_res_usage(d, &u);
	if (memory_mib <= u.free_memory_mib && vcpus <= u.free_vcpus)
		return 0;
	snprintf(err, errlen,
		 "capacity: %s needs %u MiB and %u vCPUs; %s has %llu MiB and %llu vCPUs free "
		 "(of %llu MiB and %llu vCPUs; %llu MiB and %llu vCPUs reserved for incoming "
		 "migrations)",
		 name, memory_mib, vcpus, d->cfg.host, (unsigned long long)u.free_memory_mib,
		 (unsigned long long)u.free_vcpus, (unsigned long long)u.memory_mib,
		 (unsigned long long)u.vcpus, (unsigned long long)u.reserved_memory_mib,
		 (unsigned long long)u.reserved_vcpus);
	return SMIG_ECAPACITY;
}

int vm_res_admit(struct smigd *d, const struct smig_vmspec *s, char *err, size_t errlen)
{
	return admit(d, s->name, s->memory_mib, s->vcpus, err, errlen);
}

bool vm_res_release(struct smigd *d, const char *from, const char *vm)
{
	for (struct vm_hold **hp = &d->vms->holds; *hp; hp = &(*hp)->next) {
		struct vm_hold *h = *hp;

		if (strcmp(h->from, from) == 0 && strcmp(h->vm, vm) == 0) {
			*hp = h->next;
			free(h);
			return true;
		}
	}
	return false;
}

int vm_res_hold(struct smigd *d, const char *from, const char *vm, uint32_t memory_mib,
		uint32_t vcpus, unsigned ttl_s, char *err, size_t errlen)
{
	struct vm_hold *h;
	size_t n = 0;

	(void)vm_res_release(d, from, vm);
	holds_prune(d);
	for (h = d->vms->holds; h; h = h->next)
		n += strcmp(h->from, from) == 0;
	if (n >= VM_HOLDS_PER_HOST) {
		snprintf(err, errlen, "%s holds %d reservations here already", from,
			 VM_HOLDS_PER_HOST);
		return SMIG_EBUSY;
	}
	SMIG_GUARD(admit(d, vm, memory_mib, vcpus, err, errlen));
	h = calloc(1, sizeof(*h));
	SMIG_ENSURE(h != NULL, SMIG_ENOMEM);
	snprintf(h->from, sizeof(h->from), "%s", from);
	snprintf(h->vm, sizeof(h->vm), "%s", vm);
	h->memory_mib = memory_mib;
	h->vcpus = vcpus;
	h->until_ms = loop_now_ms() + (uint64_t)ttl_s * 1000;
	h->next = d->vms->holds;
	d->vms->holds = h;
	smig_info("event=capacity_held from=%s vm=%s memory_mib=%u vcpus=%u ttl_s=%u", from, vm,
		  memory_mib, vcpus, ttl_s);
	return 0;
}

json_t *vm_res_capacity_json(struct smigd *d)
{
	struct vm_usage u;

	vm_res_usage(d, &u);
	return json_pack("{s:I,s:I,s:f,s:f,s:{s:I,s:I},s:{s:I,s:I},s:{s:I,s:I}}", "memory_mib",
			 (json_int_t)u.memory_mib, "vcpus", (json_int_t)u.vcpus,
			 "memory_overcommit", d->cfg.catalog.capacity.memory_overcommit,
			 "cpu_overcommit", d->cfg.catalog.capacity.cpu_overcommit, "used",
			 "memory_mib", (json_int_t)u.used_memory_mib, "vcpus",
			 (json_int_t)u.used_vcpus, "reserved", "memory_mib",
			 (json_int_t)u.reserved_memory_mib, "vcpus", (json_int_t)u.reserved_vcpus,
			 "free", "memory_mib", (json_int_t)u.free_memory_mib, "vcpus",
			 (json_int_t)u.free_vcpus);
}

/*
 * What this host offers to VMs: the configured capacity, or by default its
 * memory less 1 GiB for itself and its online CPUs.
 */
void vm_capacity_init(struct smigd *d)
{
	struct smig_capacity *c = &d->cfg.catalog.capacity;

	if (c->memory_mib == 0) {
		unsigned long long kib = 0;
		char line[128];
		FILE *f = fopen("/proc/meminfo", "r");

		while (f && fgets(line, sizeof(line), f))
			if (strncmp(line, "MemTotal:", 9) == 0) {
				kib = strtoull(line + 9, NULL, 10);
				break;
			}
		if (f)
			fclose(f);
		c->memory_mib = kib / 1024 > 2048 ? (uint32_t)(kib / 1024 - 1024) : (uint32_t)(kib / 2048);
	}
	if (c->vcpus == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		c->vcpus = n > 0 ? (uint32_t)n : 1;
	}
	smig_info("event=host_resources memory_mib=%u vcpus=%u memory_overcommit=%.2f "
		  "cpu_overcommit=%.2f pools=%zu networks=%zu firmware=%zu",
		  c->memory_mib, c->vcpus, c->memory_overcommit, c->cpu_overcommit,
		  d->cfg.catalog.npools, d->cfg.catalog.nnetworks, d->cfg.catalog.nfirmware);
}

uint64_t vm_free_mib(struct smigd *d)
{
	struct vm_usage u;

	vm_res_usage(d, &u);
	return u.free_memory_mib;
}
