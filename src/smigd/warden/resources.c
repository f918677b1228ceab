/*
 * resources.c - a VM's host-local resources, opened by the warden: the
 * spec's names resolved through this host's catalogue, machine type, CPU
 * model and MACs pinned, volumes opened beneath their pool, taps made on
 * the network's bridge, firmware builds. QEMU gets descriptors, never
 * paths. A writable volume belongs to one VM of this host at a time
 * (wd_res_claim), so no spec, a peer's or a compromised worker's, can
 * point a VM at another VM's disk.
 */
#include "warden/wd_int.h"
#include "error.h"
#include "evidence.h"
#include "file.h"
#include "log.h"
#include "sign.h"
#include "volume.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_CPU "qemu64"

void wd_fds_init(struct smig_vm_fds *f)
{
	f->kernel = f->initrd = f->fw_code = f->fw_vars = -1;
	for (size_t i = 0; i < SMIG_VM_DISKS_MAX; i++)
		f->disk_rw[i] = f->disk_ro[i] = -1;
	for (size_t i = 0; i < SMIG_VM_NICS_MAX; i++)
		f->tap[i] = -1;
	f->qmp = f->serial = f->agent = -1;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void wd_fds_close(struct smig_vm_fds *f)
{
	close_fd(&f->kernel);
	close_fd(&f->initrd);
	close_fd(&f->fw_code);
	close_fd(&f->fw_vars);
	for (size_t i = 0; i < SMIG_VM_DISKS_MAX; i++) {
		close_fd(&f->disk_rw[i]);
		close_fd(&f->disk_ro[i]);
	}
	for (size_t i = 0; i < SMIG_VM_NICS_MAX; i++)
		close_fd(&f->tap[i]);
	close_fd(&f->qmp);
	close_fd(&f->serial);
	close_fd(&f->agent);
}

int wd_res_pin(struct warden *w, struct smig_vmspec *s, char *err, size_t errlen)
{
	const char *m;

	if (s->machine[0] == '\0')
		snprintf(s->machine, sizeof(s->machine), "%s", w->caps.default_machine);
	m = smig_qemu_caps_machine(&w->caps, s->machine);
	if (m == NULL) {
		snprintf(err, errlen, "machine: this host's QEMU has no machine type %s (its default "
				      "is %s)", s->machine, w->caps.default_machine);
		return SMIG_ENOENT;
	}
	snprintf(s->machine, sizeof(s->machine), "%s", m);
	if (s->cpu[0] == '\0')
		snprintf(s->cpu, sizeof(s->cpu), DEFAULT_CPU);
	for (size_t i = 0; i < s->nnics; i++) {
		if (s->nics[i].has_mac)
			continue;
		/* QEMU's locally administered prefix; the rest random, kept for life */
		s->nics[i].mac[0] = 0x52;
		s->nics[i].mac[1] = 0x54;
		s->nics[i].mac[2] = 0x00;
		SMIG_ENSURE(RAND_bytes(s->nics[i].mac + 3, 3) == 1, SMIG_ECRYPTO);
		s->nics[i].has_mac = true;
	}
	return 0;
}

static int open_vol(struct warden *w, const struct smig_volref *v, int flags, bool qcow2,
		    const char *what, int *fd, bool *hostile, char *err, size_t errlen)
{
	return smig_volume_open_ref(&w->cfg.catalog, v, flags, qcow2, what, fd, hostile, err,
				    errlen);
}

/* The firmware's code image, read-only; -1 with err set when it cannot be opened. */
static int open_fw_code(const struct smig_firmware *fw, char *err, size_t errlen)
{
	int fd = open(fw->code, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		snprintf(err, errlen, "firmware %s: cannot open %s: %s", fw->name, fw->code,
			 strerror(errno));
	return fd;
}

/* The UEFI variable store: made from the firmware's template when it is not there yet. */
static int open_nvram(struct warden *w, const struct smig_vmspec *s, struct smig_vm_fds *f,
		      bool *hostile, char *err, size_t errlen)
{
	const struct smig_firmware *fw = smig_catalog_firmware(&w->cfg.catalog, s->firmware.name);
	const struct smig_pool *pool = smig_catalog_pool(&w->cfg.catalog, s->firmware.nvram.pool);
	char e[256];

	SMIG_ENSURE(fw != NULL && pool != NULL, SMIG_ENOENT);
	f->fw_code = open_fw_code(fw, err, errlen);
	if (f->fw_code < 0)
		return SMIG_EIO;
	if (smig_volume_create_from(pool, s->firmware.nvram.volume, fw->vars, e, sizeof(e)) < 0) {
		snprintf(err, errlen, "firmware.nvram: %s", e);
		return SMIG_EIO;
	}
	return open_vol(w, &s->firmware.nvram, O_RDWR, false, "firmware.nvram", &f->fw_vars,
			hostile, err, errlen);
}

static int open_storage(struct warden *w, const struct smig_vmspec *s, struct smig_vm_fds *f,
			bool *hostile, char *err, size_t errlen)
{
	char what[32];

	if (s->boot.kernel_set)
		SMIG_GUARD(open_vol(w, &s->boot.kernel, O_RDONLY, false, "boot.kernel", &f->kernel,
				    hostile, err, errlen));
	if (s->boot.initrd_set)
		SMIG_GUARD(open_vol(w, &s->boot.initrd, O_RDONLY, false, "boot.initrd", &f->initrd,
				    hostile, err, errlen));
	if (s->firmware.kind == SMIG_FW_UEFI)
		SMIG_GUARD(open_nvram(w, s, f, hostile, err, errlen));
	for (size_t i = 0; i < s->ndisks; i++) {
		const struct smig_vm_disk *dk = &s->disks[i];

		snprintf(what, sizeof(what), "disks[%zu]", i);
		SMIG_GUARD(open_vol(w, &dk->vol, O_RDONLY, dk->qcow2, what, &f->disk_ro[i], hostile,
				    err, errlen));
		if (!dk->readonly)
			SMIG_GUARD(open_vol(w, &dk->vol, O_RDWR, dk->qcow2, what, &f->disk_rw[i],
					    hostile, err, errlen));
	}
	return 0;
}

/* A tap name unique on this host for (host, VM, NIC): "smig" + 8 hex + "n" + index. */
void wd_res_tap_name(const char *host, const struct smig_vmspec *s, size_t i, char *out,
		     size_t outlen)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (const char *p = host; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ '/') * 16777619u;
	for (const char *p = s->name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	snprintf(out, outlen, "smig%08xn%zu", h, i);
}

/* A tap on the network's bridge, up, without persistence: it goes when QEMU does. */
static int make_tap(struct warden *w, const struct smig_vmspec *s, size_t i, int *fd, char *err,
		    size_t errlen)
{
	const struct smig_network *net = smig_catalog_network(&w->cfg.catalog, s->nics[i].network);
	struct ifreq ifr, br;
	int sk, rc = 0;

	SMIG_ENSURE(net != NULL, SMIG_ENOENT);
	memset(&ifr, 0, sizeof(ifr));
	wd_res_tap_name(w->cfg.host, s, i, ifr.ifr_name, IFNAMSIZ);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	*fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (*fd < 0 || ioctl(*fd, TUNSETIFF, &ifr) < 0) {
		snprintf(err, errlen, "nics[%zu]: cannot create tap %s: %s", i, ifr.ifr_name,
			 strerror(errno));
		close_fd(fd);
		return SMIG_EIO;
	}
	sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(&br, 0, sizeof(br));
	snprintf(br.ifr_name, IFNAMSIZ, "%s", ifr.ifr_name);
	if (sk >= 0 && ioctl(sk, SIOCGIFINDEX, &br) == 0) {
		snprintf(br.ifr_name, IFNAMSIZ, "%s", net->bridge);
		if (ioctl(sk, SIOCBRADDIF, &br) < 0)
			br.ifr_ifindex = 0;
	} else {
		br.ifr_ifindex = 0;
	}
	if (br.ifr_ifindex == 0) {
		snprintf(err, errlen, "nics[%zu]: cannot attach tap %s to bridge %s of network %s: %s",
			 i, ifr.ifr_name, net->bridge, net->name, strerror(errno));
		rc = SMIG_EIO;
	} else if (ioctl(sk, SIOCGIFFLAGS, &ifr) < 0 ||
		   (ifr.ifr_flags |= IFF_UP, ioctl(sk, SIOCSIFFLAGS, &ifr) < 0)) {
		snprintf(err, errlen, "nics[%zu]: cannot bring tap %s up: %s", i, ifr.ifr_name,
			 strerror(errno));
		rc = SMIG_EIO;
	}
	if (sk >= 0)
		close(sk);
	if (rc < 0)
		close_fd(fd);
	return rc;
}

int wd_res_open(struct warden *w, const struct smig_vmspec *s, struct smig_vm_fds *f,
		bool *hostile, char *err, size_t errlen)
{
	struct smig_problems p = { .n = 0 };
	int rc;

	*hostile = false;
	wd_fds_init(f);
	if (smig_vmspec_check(s, &w->cfg.catalog, &w->caps, SMIG_CHECK_DEFINE, &p) < 0) {
		smig_problems_join(&p, err, errlen);
		return SMIG_ENOENT;
	}
	rc = open_storage(w, s, f, hostile, err, errlen);
	for (size_t i = 0; rc == 0 && i < s->nnics; i++)
		rc = make_tap(w, s, i, &f->tap[i], err, errlen);
	if (rc < 0)
		wd_fds_close(f);
	return rc;
}

int wd_res_check(struct warden *w, const struct smig_vmspec *s, enum smig_check_mode mode,
		 bool *hostile, char *err, size_t errlen)
{
	struct smig_problems p = { .n = 0 };
	int rc;

	*hostile = false;
	rc = smig_vmspec_check(s, &w->cfg.catalog, &w->caps, mode, &p);
	/* open and close every volume: the start repeats this on the descriptors it keeps */
	if (rc == 0)
		rc = smig_vmspec_probe(s, &w->cfg.catalog, &p, hostile);
	if (rc < 0)
		smig_problems_join(&p, err, errlen);
	return rc;
}

/*
 * The firmware build a UEFI VM runs. QEMU migrates a VM's flash with its
 * RAM, so the code the guest runs is the build it booted, wherever it has
 * moved since: that build is kept in the VM's directory ("firmware.build",
 * "sha256:HEX SIZE"), set when the VM starts cold or comes in, and sent in
 * PREPARE. A destination takes the VM only if its own firmware of that
 * name is the same build, or lists it in "accepts" (a rolling upgrade),
 * and never with flash of another size.
 */
#define FW_BUILD_FILE "firmware.build"

int wd_fw_host(struct warden *w, const char *fw_name, struct wd_fw_build *b, char *err,
	       size_t errlen)
{
	const struct smig_firmware *fw = smig_catalog_firmware(&w->cfg.catalog, fw_name);
	int fd, rc;

	if (fw == NULL) {
		snprintf(err, errlen, "no firmware %s in %s's catalogue", fw_name, w->cfg.host);
		return SMIG_ENOENT;
	}
	fd = open_fw_code(fw, err, errlen);
	if (fd < 0)
		return SMIG_EIO;
	rc = smig_measure_fd(fd, fw->code, b->sha256, &b->size, err, errlen);
	close(fd);
	return rc;
}

void wd_fw_build_set(struct wvm *v, const struct wd_fw_build *b)
{
	char path[PATH_MAX], hex[65], line[96];

	wd_vm_path(v, FW_BUILD_FILE, path, sizeof(path));
	smig_hex(b->sha256, sizeof(b->sha256), hex);
	snprintf(line, sizeof(line), "sha256:%s %llu\n", hex, (unsigned long long)b->size);
	if (smig_file_write_atomic(path, line, strlen(line), 0600) < 0)
		smig_warn("event=vm_fw_build_unsaved vm=%s path=%s", v->spec.name, path);
}

int wd_fw_build_get(struct wvm *v, struct wd_fw_build *b, char *err, size_t errlen)
{
	char path[PATH_MAX], hex[65];
	char *text = NULL, *end = NULL;
	size_t len;

	wd_vm_path(v, FW_BUILD_FILE, path, sizeof(path));
	if (smig_file_read(path, 128, &text, &len, err, errlen) == 0 && len > 7 + 64 + 1 &&
	    strncmp(text, "sha256:", 7) == 0 && text[7 + 64] == ' ') {
		memcpy(hex, text + 7, 64);
		hex[64] = '\0';
		errno = 0;
		b->size = strtoull(text + 7 + 64 + 1, &end, 10);
		if (smig_unhex(hex, b->sha256, sizeof(b->sha256)) == 0 && errno == 0 &&
		    end != text + 7 + 64 + 1 && (*end == '\n' || *end == '\0')) {
			free(text);
			return 0;
		}
	}
	free(text);
	/* started before builds were kept: it booted this host's build, unless it was upgraded since */
	smig_warn("event=vm_fw_build_unknown vm=%s assumed=host_firmware", v->spec.name);
	return wd_fw_host(v->w, v->spec.firmware.name, b, err, errlen);
}

int wd_fw_accept(struct warden *w, const struct smig_vmspec *s, const struct wd_fw_build *b,
		 char *err, size_t errlen)
{
	const struct smig_firmware *fw = smig_catalog_firmware(&w->cfg.catalog, s->firmware.name);
	struct wd_fw_build own;
	char vh[65], oh[65];

	SMIG_GUARD(wd_fw_host(w, s->firmware.name, &own, err, errlen));
	smig_hex(b->sha256, sizeof(b->sha256), vh);
	smig_hex(own.sha256, sizeof(own.sha256), oh);
	if (own.size != b->size) {
		snprintf(err, errlen, "firmware %s: this host's code image is %llu bytes, %s's flash "
				      "is %llu: a VM's flash cannot change size when it moves (same "
				      "OVMF variant on both hosts, e.g. both _4M)", fw->name,
			 (unsigned long long)own.size, s->name, (unsigned long long)b->size);
		return SMIG_ENOENT;
	}
	if (memcmp(own.sha256, b->sha256, sizeof(own.sha256)) == 0)
		return 0;
	for (size_t i = 0; i < fw->naccepts; i++)
		if (memcmp(fw->accepts[i], b->sha256, sizeof(b->sha256)) == 0)
			return 0;
	/* within an ABORT's reason: the VM's build in full, for the operator's accepts list */
	snprintf(err, errlen, "firmware %s: %s runs build sha256:%s, not this host's sha256:%.12s...; "
			      "install that build here or add it to firmware.%s.accepts",
		 fw->name, s->name, vh, oh, fw->name);
	return SMIG_ENOENT;
}

/* The writable volumes of s: its writable disks and its NVRAM. */
static size_t writable_volumes(const struct smig_vmspec *s, const struct smig_volref **out,
			       size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < s->ndisks && n < max; i++)
		if (!s->disks[i].readonly)
			out[n++] = &s->disks[i].vol;
	if (s->firmware.kind == SMIG_FW_UEFI && n < max)
		out[n++] = &s->firmware.nvram;
	return n;
}

static bool same_volume(const struct smig_volref *a, const struct smig_volref *b)
{
	return strcmp(a->pool, b->pool) == 0 && strcmp(a->volume, b->volume) == 0;
}

int wd_res_claim(struct warden *w, const struct smig_vmspec *s, char *err, size_t errlen)
{
	const struct smig_volref *mine[SMIG_VM_DISKS_MAX + 1], *theirs[SMIG_VM_DISKS_MAX + 1];
	size_t n = writable_volumes(s, mine, ARRAY_LEN(mine));

	for (const struct wvm *v = w->vms; v; v = v->next) {
		size_t k;

		if (strcmp(v->spec.name, s->name) == 0)
			continue;
		k = writable_volumes(&v->spec, theirs, ARRAY_LEN(theirs));
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < k; j++)
				if (same_volume(mine[i], theirs[j])) {
					snprintf(err, errlen, "volume %s of pool %s is %s's on %s: a "
						 "writable volume belongs to one VM",
						 mine[i]->volume, mine[i]->pool, v->spec.name,
						 w->cfg.host);
					return SMIG_EBUSY;
				}
	}
	return 0;
}
