/*
 * vm_capacity.c - what this host's VMs hold of it (vm.h, "capacity"): the
 * memory and vCPUs configured (after overcommit), used by the VMs that run
 * or start, and reserved by incoming migrations from PREPARE until commit
 * or abort; admission control refuses what does not fit, naming the
 * figures.
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

void vm_res_usage(struct smigd *d, struct vm_usage *u)
{
	const struct smig_capacity *c = &d->cfg.catalog.capacity;

	memset(u, 0, sizeof(*u));
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
}

int vm_res_admit(struct smigd *d, const struct smig_vmspec *s, char *err, size_t errlen)
{
	struct vm_usage u;
	uint64_t mem_free, cpu_free;

	vm_res_usage(d, &u);
	mem_free = u.memory_mib - MIN(u.memory_mib, u.used_memory_mib + u.reserved_memory_mib);
	cpu_free = u.vcpus - MIN(u.vcpus, u.used_vcpus + u.reserved_vcpus);
	if (s->memory_mib <= mem_free && s->vcpus <= cpu_free)
		return 0;
	snprintf(err, errlen,
		 "capacity: %s needs %u MiB and %u vCPUs; %s has %llu MiB and %llu vCPUs free "
		 "(of %llu MiB and %llu vCPUs; %llu MiB and %llu vCPUs reserved by incoming "
		 "migrations)",
		 s->name, s->memory_mib, s->vcpus, d->cfg.host, (unsigned long long)mem_free,
		 (unsigned long long)cpu_free, (unsigned long long)u.memory_mib,
		 (unsigned long long)u.vcpus, (unsigned long long)u.reserved_memory_mib,
		 (unsigned long long)u.reserved_vcpus);
	return SMIG_ECAPACITY;
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
			 "free", "memory_mib",
			 (json_int_t)(u.memory_mib -
				      MIN(u.memory_mib, u.used_memory_mib + u.reserved_memory_mib)),
			 "vcpus",
			 (json_int_t)(u.vcpus - MIN(u.vcpus, u.used_vcpus + u.reserved_vcpus)));
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
	uint64_t taken;

	vm_res_usage(d, &u);
	taken = u.used_memory_mib + u.reserved_memory_mib;
	return u.memory_mib > taken ? u.memory_mib - taken : 0;
}
