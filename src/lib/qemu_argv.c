/*
 * qemu_argv.c - QEMU's command line from a validated VM spec (vmspec.h).
 *
 * Only this function decides QEMU arguments. Values come from the spec,
 * whose strings vmspec.c has already restricted, from descriptors smigd
 * opened, or from smigd's own paths, which are checked here too.
 */
#include "error.h"
#include "vmspec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void smig_argv_clear(struct smig_argv *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

__attribute__((format(printf, 2, 3)))
static int add(struct smig_argv *a, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	if (a->n + 2 > a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 32;
		char **nv = realloc(a->v, ncap * sizeof(*nv));
		SMIG_ENSURE(nv != NULL, SMIG_ENOMEM);
		a->v = nv;
		a->cap = ncap;
	}
	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	SMIG_ENSURE(n >= 0, SMIG_ENOMEM);
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
	return 0;
}

static bool host_path_ok(const char *p)
{
	if (p == NULL || p[0] != '/')
		return false;
	for (; *p; p++)
		if (*p == ',' || (unsigned char)*p < 0x20)
			return false;
	return true;
}

/*
 * TCG runs single-threaded, as it has since the first wave (multi-threaded
 * TCG was once seen to lose a write; that was most likely the defect below,
 * which strikes both).
 *
 * Its translation cache is held to 128 MiB. QEMU's own default is 1 GiB,
 * filled as the guest runs and never given back: a Debian guest has 360 MiB
 * of it once booted, and more while it migrates (dirty tracking makes QEMU
 * translate again), until the VM's cgroup (memory_mib plus
 * confinement.vm_memory_overhead_mib, 512 by default) is full and the
 * kernel kills QEMU, mid-migration as readily as at any other time. With
 * the cap, a full cache is flushed and refilled instead.
 */
#define TCG_SAFE "tcg,thread=single,tb-size=128"

/*
 * QEMU before 9.0 loses guest writes when it migrates a TCG guest: the
 * 64-pages-at-a-time fast path of its dirty-bitmap sync clears the
 * migration's dirty bits without re-arming the TCG TLB's not-dirty trap, so
 * a page the guest keeps in its TLB (a kernel's stacks, timers, per-CPU
 * data) is written again unseen and the destination gets a stale copy
 * (fixed upstream by commit 03bfc2188f, "physmem: Fix migration dirty
 * bitmap coherency with TCG memory access", QEMU 9.0). The fast path is
 * taken only for a RAM block whose size is a multiple of 64 pages
 * (256 KiB); QEMU rounds RAM up to 8 KiB. Under TCG smig therefore gives
 * the guest 8 KiB less than its spec says, and QEMU syncs page by page on
 * the path that re-arms the trap (docs/benchmarks.md, "Guest integrity
 * under TCG"; bench/tcg-repro.sh reproduces both).
 */
#define TCG_RAM_TRIM_KIB 8u

static bool runs_tcg(const char *accel)
{
	if (strcmp(accel, "tcg") == 0)
		return true;
	return strcmp(accel, "kvm:tcg") == 0 && access("/dev/kvm", R_OK | W_OK) != 0;
}

static int add_accel(struct smig_argv *a, const char *accel)
{
	if (strcmp(accel, "kvm:tcg") == 0) {
		SMIG_GUARD(add(a, "-accel"));
		SMIG_GUARD(add(a, "kvm"));
		SMIG_GUARD(add(a, "-accel"));
		return add(a, TCG_SAFE);
	}
	SMIG_ENSURE(strcmp(accel, "kvm") == 0 || strcmp(accel, "tcg") == 0, SMIG_EINVAL);
	SMIG_GUARD(add(a, "-accel"));
	return add(a, "%s", strcmp(accel, "tcg") == 0 ? TCG_SAFE : accel);
}

static int add_machine(struct smig_argv *a, const struct smig_vmspec *s,
		       const struct smig_vm_fds *f)
{
	SMIG_GUARD(add(a, "-machine"));
	if (s->firmware.kind == SMIG_FW_UEFI)
		SMIG_GUARD(add(a, "%s,pflash0=fw-code,pflash1=fw-vars%s", s->machine,
			       s->firmware.secure_boot ? ",smm=on" : ""));
	else
		SMIG_GUARD(add(a, "%s", s->machine));
	SMIG_GUARD(add(a, "-cpu"));
	SMIG_GUARD(add(a, "%s", s->cpu));
	if (s->firmware.kind != SMIG_FW_UEFI)
		return 0;
	SMIG_ENSURE(f->fw_code >= 0 && f->fw_vars >= 0, SMIG_EINVAL);
	/* fdsets 1 and 2; disks use 10 + index */
	SMIG_GUARD(add(a, "-add-fd"));
	SMIG_GUARD(add(a, "fd=%d,set=1,opaque=fw-code", f->fw_code));
	SMIG_GUARD(add(a, "-add-fd"));
	SMIG_GUARD(add(a, "fd=%d,set=2,opaque=fw-vars", f->fw_vars));
	SMIG_GUARD(add(a, "-blockdev"));
	SMIG_GUARD(add(a, "{\"driver\":\"file\",\"filename\":\"/dev/fdset/1\",\"node-name\":"
			  "\"fw-code-file\",\"read-only\":true}"));
	SMIG_GUARD(add(a, "-blockdev"));
	SMIG_GUARD(add(a, "{\"driver\":\"raw\",\"file\":\"fw-code-file\",\"node-name\":"
			  "\"fw-code\",\"read-only\":true}"));
	SMIG_GUARD(add(a, "-blockdev"));
	SMIG_GUARD(add(a, "{\"driver\":\"file\",\"filename\":\"/dev/fdset/2\",\"node-name\":"
			  "\"fw-vars-file\"}"));
	SMIG_GUARD(add(a, "-blockdev"));
	SMIG_GUARD(add(a, "{\"driver\":\"raw\",\"file\":\"fw-vars-file\",\"node-name\":"
			  "\"fw-vars\"}"));
	if (s->firmware.secure_boot) {
		SMIG_GUARD(add(a, "-global"));
		SMIG_GUARD(add(a, "driver=cfi.pflash01,property=secure,value=on"));
	}
	return 0;
}

/*
 * QEMU's x86 kernel loader opens a file name; /proc/self/fd/N is the
 * volume smigd opened and handed over, not a path anyone chose.
 */
static int add_boot(struct smig_argv *a, const struct smig_vmspec *s,
		    const struct smig_vm_fds *f)
{
	if (!s->boot.kernel_set)
		return 0;
	SMIG_ENSURE(f->kernel >= 0 && (!s->boot.initrd_set || f->initrd >= 0), SMIG_EINVAL);
	SMIG_GUARD(add(a, "-kernel"));
	SMIG_GUARD(add(a, "/proc/self/fd/%d", f->kernel));
	if (s->boot.initrd_set) {
		SMIG_GUARD(add(a, "-initrd"));
		SMIG_GUARD(add(a, "/proc/self/fd/%d", f->initrd));
	}
	if (s->boot.cmdline[0]) {
		SMIG_GUARD(add(a, "-append"));
		SMIG_GUARD(add(a, "%s", s->boot.cmdline));
	}
	return 0;
}

/* cache mode -> the file node's direct/no-flush and the device's write cache */
static void cache_flags(enum smig_disk_cache c, bool *direct, bool *no_flush, bool *wce)
{
	*direct = c == SMIG_CACHE_NONE || c == SMIG_CACHE_DIRECTSYNC;
	*no_flush = c == SMIG_CACHE_UNSAFE;
	*wce = !(c == SMIG_CACHE_WRITETHROUGH || c == SMIG_CACHE_DIRECTSYNC);
}

/*
 * Without a kernel in the spec the guest boots from its first disk: that
 * disk is the firmware's first boot device, ahead of a NIC's network boot.
 */
static int add_disk(struct smig_argv *a, const struct smig_vm_disk *d, size_t i,
		    const struct smig_vm_fds *f, bool boot, bool *scsi_added)
{
	bool direct, no_flush, wce;
	const char *ro = d->readonly ? "true" : "false";
	const char *bootindex = boot ? ",bootindex=0" : "";

	SMIG_ENSURE(f->disk_ro[i] >= 0 && (d->readonly || f->disk_rw[i] >= 0), SMIG_EINVAL);
	cache_flags(d->cache, &direct, &no_flush, &wce);
	if (!d->readonly) {
		SMIG_GUARD(add(a, "-add-fd"));
		SMIG_GUARD(add(a, "fd=%d,set=%zu,opaque=disk%zu-rw", f->disk_rw[i], 10 + i, i));
	}
	SMIG_GUARD(add(a, "-add-fd"));
	SMIG_GUARD(add(a, "fd=%d,set=%zu,opaque=disk%zu-ro", f->disk_ro[i], 10 + i, i));
	SMIG_GUARD(add(a, "-blockdev"));
	SMIG_GUARD(add(a, "{\"driver\":\"file\",\"filename\":\"/dev/fdset/%zu\",\"node-name\":"
			  "\"disk%zu-file\",\"read-only\":%s,\"cache\":{\"direct\":%s,"
			  "\"no-flush\":%s}}",
		       10 + i, i, ro, direct ? "true" : "false", no_flush ? "true" : "false"));
	SMIG_GUARD(add(a, "-blockdev"));
	SMIG_GUARD(add(a, "{\"driver\":\"%s\",\"file\":\"disk%zu-file\",\"node-name\":"
			  "\"disk%zu\",\"read-only\":%s,\"cache\":{\"direct\":%s,"
			  "\"no-flush\":%s}%s}",
		       d->qcow2 ? "qcow2" : "raw", i, i, ro, direct ? "true" : "false",
		       no_flush ? "true" : "false", d->qcow2 ? ",\"backing\":null" : ""));
	SMIG_GUARD(add(a, "-device"));
	if (d->bus == SMIG_BUS_VIRTIO_SCSI) {
		if (!*scsi_added) {
			SMIG_GUARD(add(a, "virtio-scsi-pci,id=scsi0"));
			SMIG_GUARD(add(a, "-device"));
			*scsi_added = true;
		}
		return add(a, "scsi-hd,drive=disk%zu,id=disk%zu-dev,bus=scsi0.0,write-cache=%s%s",
			   i, i, wce ? "on" : "off", bootindex);
	}
	return add(a, "virtio-blk-pci,drive=disk%zu,id=disk%zu-dev,write-cache=%s%s", i, i,
		   wce ? "on" : "off", bootindex);
}

static int add_devices(struct smig_argv *a, const struct smig_vmspec *s,
		       const struct smig_vm_paths *p)
{
	bool scsi = false;

	for (size_t i = 0; i < s->ndisks; i++)
		SMIG_GUARD(add_disk(a, &s->disks[i], i, p->fds, i == 0 && !s->boot.kernel_set,
				    &scsi));
	for (size_t i = 0; i < s->nnics; i++) {
		char mac[18];

		SMIG_ENSURE(p->fds->tap[i] >= 0 && s->nics[i].has_mac, SMIG_EINVAL);
		smig_mac_format(s->nics[i].mac, mac);
		SMIG_GUARD(add(a, "-netdev"));
		SMIG_GUARD(add(a, "tap,id=net%zu,fd=%d", i, p->fds->tap[i]));
		SMIG_GUARD(add(a, "-device"));
		SMIG_GUARD(add(a, "virtio-net-pci,netdev=net%zu,id=nic%zu,mac=%s", i, i, mac));
	}
	if (s->vtpm) {
		SMIG_ENSURE(host_path_ok(p->tpm), SMIG_EINVAL);
		SMIG_GUARD(add(a, "-chardev"));
		SMIG_GUARD(add(a, "socket,id=tpmchr,path=%s", p->tpm));
		SMIG_GUARD(add(a, "-tpmdev"));
		SMIG_GUARD(add(a, "emulator,id=tpm0,chardev=tpmchr"));
		SMIG_GUARD(add(a, "-device"));
		SMIG_GUARD(add(a, "tpm-tis,tpmdev=tpm0"));
	}
	if (s->guest_agent) {
		/* the port name qemu-ga looks for; smigd connects to the socket to ping it */
		SMIG_ENSURE(p->fds->agent >= 0, SMIG_EINVAL);
		SMIG_GUARD(add(a, "-chardev"));
		SMIG_GUARD(add(a, "socket,id=qga0,fd=%d,server=on,wait=off", p->fds->agent));
		SMIG_GUARD(add(a, "-device"));
		SMIG_GUARD(add(a, "virtio-serial-pci,id=vser0"));
		SMIG_GUARD(add(a, "-device"));
		SMIG_GUARD(add(a, "virtserialport,bus=vser0.0,nr=1,chardev=qga0,name=org.qemu.guest_agent.0"));
	}
	return 0;
}

int smig_qemu_argv(const struct smig_vmspec *s, const struct smig_vm_paths *p,
		   const char *qemu_binary, const char *accel, bool incoming,
		   struct smig_argv *a)
{
	/* fixed options: no device the spec did not ask for, no escape hatches */
	static const char *const fixed[] = {
		"-nodefaults", "-no-user-config", "-display", "none", "-S", "-sandbox",
		"on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
		"-serial", "chardev:ser0",
		/* a guest panic reaches smigd as GUEST_PANICKED; QEMU keeps the guest paused */
		"-device", "pvpanic", "-action", "panic=pause",
	};
	int rc = 0;

	memset(a, 0, sizeof(*a));
	if (!smig_name_valid(s->name) || !host_path_ok(p->pidfile) || p->fds == NULL ||
	    p->fds->qmp < 0 || p->fds->serial < 0 || s->machine[0] == '\0' || s->cpu[0] == '\0')
		return SMIG_EINVAL;
	SMIG_GUARD_GOTO(add(a, "%s", qemu_binary), rc, fail);
	SMIG_GUARD_GOTO(add_accel(a, accel), rc, fail);
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		SMIG_GUARD_GOTO(add(a, "%s", fixed[i]), rc, fail);
	SMIG_GUARD_GOTO(add(a, "-name"), rc, fail);
	SMIG_GUARD_GOTO(add(a, "guest=%s", s->name), rc, fail);
	SMIG_GUARD_GOTO(add_machine(a, s, p->fds), rc, fail);
	SMIG_GUARD_GOTO(add(a, "-m"), rc, fail);
	if (runs_tcg(accel))
		SMIG_GUARD_GOTO(add(a, "%luk", (unsigned long)s->memory_mib * 1024ul - TCG_RAM_TRIM_KIB),
				rc, fail);
	else
		SMIG_GUARD_GOTO(add(a, "%u", s->memory_mib), rc, fail);
	SMIG_GUARD_GOTO(add(a, "-smp"), rc, fail);
	SMIG_GUARD_GOTO(add(a, "%u", s->vcpus), rc, fail);
	/* smigd's listening sockets: QEMU never makes a file, and only root can connect */
	SMIG_GUARD_GOTO(add(a, "-chardev"), rc, fail);
	SMIG_GUARD_GOTO(add(a, "socket,id=qmp,fd=%d,server=on,wait=off", p->fds->qmp), rc, fail);
	SMIG_GUARD_GOTO(add(a, "-mon"), rc, fail);
	SMIG_GUARD_GOTO(add(a, "chardev=qmp,mode=control"), rc, fail);
	SMIG_GUARD_GOTO(add(a, "-chardev"), rc, fail);
	SMIG_GUARD_GOTO(add(a, "socket,id=ser0,fd=%d,server=on,wait=off", p->fds->serial), rc,
			fail);
	SMIG_GUARD_GOTO(add(a, "-pidfile"), rc, fail);
	SMIG_GUARD_GOTO(add(a, "%s", p->pidfile), rc, fail);
	SMIG_GUARD_GOTO(add_boot(a, s, p->fds), rc, fail);
	SMIG_GUARD_GOTO(add_devices(a, s, p), rc, fail);
	if (incoming) {
		SMIG_GUARD_GOTO(add(a, "-incoming"), rc, fail);
		SMIG_GUARD_GOTO(add(a, "defer"), rc, fail);
	}
	return 0;
fail:
	smig_argv_clear(a);
	return rc;
}
