/*
 * vmspec_check.c - a spec against this host's catalogue and QEMU
 * (vmcheck.h).
 */
#include "vmcheck.h"
#include "error.h"
#include "volume.h"

#include <fcntl.h>
#include <unistd.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 2, 3)))
static void problem(struct smig_problems *p, const char *fmt, ...)
{
	va_list ap;

	if (p->n >= SMIG_PROBLEMS_MAX) {
		p->dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(p->v[p->n++], SMIG_PROBLEM_LEN, fmt, ap);
	va_end(ap);
}

void smig_problems_join(const struct smig_problems *p, char *out, size_t outlen)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < p->n && used < outlen; i++) {
		int w = snprintf(out + used, outlen - used, "%s%s", i ? "; " : "", p->v[i]);

		if (w < 0)
			break;
		used += (size_t)w;
	}
	if (p->dropped && used < outlen)
		snprintf(out + used, outlen - used, "; and %zu more", p->dropped);
}

static void pool_names(const struct smig_catalog *cat, char *out, size_t outlen)
{
	out[0] = '\0';
	for (size_t i = 0; i < cat->npools; i++)
		snprintf(out + strlen(out), outlen - strlen(out), "%s%s", i ? ", " : "",
			 cat->pools[i].name);
	if (cat->npools == 0)
		snprintf(out, outlen, "none");
}

/* The pool of a volume reference, or a problem naming what this host has. */
static const struct smig_pool *need_pool(const struct smig_catalog *cat,
					 const struct smig_volref *v, const char *what,
					 struct smig_problems *p)
{
	const struct smig_pool *pool = smig_catalog_pool(cat, v->pool);
	char names[256];

	if (pool == NULL) {
		pool_names(cat, names, sizeof(names));
		problem(p, "%s: no pool %s on this host (pools here: %s)", what, v->pool, names);
	}
	return pool;
}

static void check_models(const struct smig_vmspec *s, const struct smig_qemu_caps *caps,
			 enum smig_check_mode mode, struct smig_problems *p)
{
	const char *m;

	if (s->machine[0] == '\0') {
		if (mode == SMIG_CHECK_INCOMING)
			problem(p, "machine: not pinned (a peer must send the machine type)");
	} else if (caps && (m = smig_qemu_caps_machine(caps, s->machine)) == NULL) {
		problem(p, "machine: this host's QEMU has no machine type %s (its default is %s)",
			s->machine, caps->default_machine);
	} else if (caps && mode == SMIG_CHECK_INCOMING && strcmp(m, s->machine) != 0) {
		problem(p, "machine: %s is an alias (of %s here); a peer must send a versioned "
			   "machine type", s->machine, m);
	}
	if (s->cpu[0] == '\0' && mode == SMIG_CHECK_INCOMING)
		problem(p, "cpu: not pinned (a peer must send the CPU model)");
	else if (s->cpu[0] && caps && !smig_qemu_caps_cpu(caps, s->cpu))
		problem(p, "cpu: this host's QEMU has no CPU model %s", s->cpu);
}

static void check_firmware(const struct smig_vmspec *s, const struct smig_catalog *cat,
			   struct smig_problems *p)
{
	const struct smig_firmware *fw;

	if (s->firmware.kind != SMIG_FW_UEFI)
		return;
	fw = smig_catalog_firmware(cat, s->firmware.name);
	if (fw == NULL)
		problem(p, "firmware: no firmware %s on this host", s->firmware.name);
	else if (fw->secure_boot != s->firmware.secure_boot)
		problem(p, "firmware: %s on this host %s Secure Boot, the spec %s it",
			fw->name, fw->secure_boot ? "enforces" : "does not enforce",
			s->firmware.secure_boot ? "asks for" : "does not ask for");
	if (s->firmware.secure_boot && strncmp(s->machine, "pc-q35-", 7) != 0 &&
	    strcmp(s->machine, "q35") != 0)
		problem(p, "firmware: Secure Boot needs a q35 machine type (SMM), not %s",
			s->machine[0] ? s->machine : "the default");
	(void)need_pool(cat, &s->firmware.nvram, "firmware.nvram", p);
}

static void check_storage(const struct smig_vmspec *s, const struct smig_catalog *cat,
			  enum smig_check_mode mode, struct smig_problems *p)
{
	char what[32];

	if (s->boot.kernel_set)
		(void)need_pool(cat, &s->boot.kernel, "boot.kernel", p);
	if (s->boot.initrd_set)
		(void)need_pool(cat, &s->boot.initrd, "boot.initrd", p);
	for (size_t i = 0; i < s->ndisks; i++) {
		const struct smig_pool *pool;

		snprintf(what, sizeof(what), "disks[%zu]", i);
		pool = need_pool(cat, &s->disks[i].vol, what, p);
		/* a writable disk must be the same storage on both hosts */
		if (pool && mode == SMIG_CHECK_INCOMING && !pool->shared && !s->disks[i].readonly)
			problem(p, "%s: pool %s is not shared on this host and the disk is not "
				   "copied: a writable disk can only move on shared storage",
				what, pool->name);
	}
}

int smig_vmspec_check(const struct smig_vmspec *s, const struct smig_catalog *cat,
		      const struct smig_qemu_caps *caps, enum smig_check_mode mode,
		      struct smig_problems *p)
{
	size_t before = p->n + p->dropped;

	check_models(s, caps, mode, p);
	check_firmware(s, cat, p);
	check_storage(s, cat, mode, p);
	for (size_t i = 0; i < s->nnics; i++) {
		if (smig_catalog_network(cat, s->nics[i].network) == NULL)
			problem(p, "nics[%zu]: no network %s on this host", i, s->nics[i].network);
		if (!s->nics[i].has_mac && mode == SMIG_CHECK_INCOMING)
			problem(p, "nics[%zu]: no MAC address (a peer must send the VM's MAC)", i);
	}
	return p->n + p->dropped > before ? SMIG_ENOENT : 0;
}

/* Opens ref read-only (or also read-write) and closes it; a problem when it does not open. */
static void probe_one(const struct smig_catalog *cat, const struct smig_volref *ref, bool write,
		      bool qcow2, const char *what, struct smig_problems *p, bool *hostile)
{
	char err[SMIG_PROBLEM_LEN];
	bool h = false;
	int fd;

	if (smig_catalog_pool(cat, ref->pool) == NULL)
		return; /* smig_vmspec_check() says so */
	if (smig_volume_open_ref(cat, ref, O_RDONLY, qcow2, what, &fd, &h, err, sizeof(err)) == 0 &&
	    write) {
		close(fd);
		(void)smig_volume_open_ref(cat, ref, O_RDWR, false, what, &fd, &h, err, sizeof(err));
	}
	if (fd >= 0) {
		close(fd);
		return;
	}
	*hostile = *hostile || h;
	problem(p, "%s", err);
}

static void probe_nvram(const struct smig_vmspec *s, const struct smig_catalog *cat,
			struct smig_problems *p, bool *hostile)
{
	const struct smig_firmware *fw = smig_catalog_firmware(cat, s->firmware.name);
	char err[SMIG_PROBLEM_LEN];
	bool h = false;
	int fd;

	if (fw == NULL || smig_catalog_pool(cat, s->firmware.nvram.pool) == NULL)
		return; /* smig_vmspec_check() says so */
	if (smig_volume_open_ref(cat, &s->firmware.nvram, O_RDWR, false, "firmware.nvram", &fd, &h,
				 err, sizeof(err)) == 0) {
		close(fd);
		return;
	}
	if (!h && fw && access(fw->vars, R_OK) == 0 &&
	    strstr(err, "no such volume") != NULL)
		return; /* made from the template at start */
	*hostile = *hostile || h;
	problem(p, "%s", err);
}

int smig_vmspec_probe(const struct smig_vmspec *s, const struct smig_catalog *cat,
		      struct smig_problems *p, bool *hostile)
{
	size_t before = p->n + p->dropped;
	char what[32];

	if (s->boot.kernel_set)
		probe_one(cat, &s->boot.kernel, false, false, "boot.kernel", p, hostile);
	if (s->boot.initrd_set)
		probe_one(cat, &s->boot.initrd, false, false, "boot.initrd", p, hostile);
	if (s->firmware.kind == SMIG_FW_UEFI)
		probe_nvram(s, cat, p, hostile);
	for (size_t i = 0; i < s->ndisks; i++) {
		snprintf(what, sizeof(what), "disks[%zu]", i);
		probe_one(cat, &s->disks[i].vol, !s->disks[i].readonly, s->disks[i].qcow2, what, p,
			  hostile);
	}
	return p->n + p->dropped > before ? SMIG_ENOENT : 0;
}
