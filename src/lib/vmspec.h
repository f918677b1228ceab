/*
 * vmspec.h - VM specifications: strict JSON in, validated struct out, and
 * the QEMU command line smigd builds from it.
 *
 * A spec is the only description of a VM that crosses between hosts; a
 * peer never sends QEMU arguments. Every string that reaches QEMU's
 * command line is checked here (absolute paths without commas or control
 * characters, printable kernel command lines, names from a fixed alphabet)
 * so that no value can smuggle in an option. docs/vmspec.md is the reference.
 */
#ifndef SMIG_VMSPEC_H
#define SMIG_VMSPEC_H

#include "label.h"
#include "msg.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMIG_VM_CMDLINE_MAX 1024
#define SMIG_VM_LABELS_MAX 16
#define SMIG_VM_REQUIRES_MAX 8
#define SMIG_VM_DISKS_MAX 4
#define SMIG_VM_NICS_MAX 4
#define SMIG_VM_NIC_IPS_MAX 4
#define SMIG_VM_NIC_PORTS_MAX 16
#define SMIG_VM_MODEL_MAX 48  /* machine type or CPU model name, with NUL */
#define SMIG_VM_SHUTDOWN_TIMEOUT_MAX 3600     /* seconds vm stop may wait for a guest */
#define SMIG_VM_SHUTDOWN_TIMEOUT_DEFAULT 60  /* ... when the spec does not say */
#define SMIG_VM_SPEC_MAX ((size_t)16 * 1024) /* serialized size limit */

enum smig_trust {
	SMIG_TRUST_NONE = 0,       /* no requirement */
	SMIG_TRUST_UNVERIFIED = 1, /* authentic and fresh, but only the host's own word */
	SMIG_TRUST_ATTESTED = 2,   /* a quote by the TPM key enrolled for the host */
	SMIG_TRUST_TRUSTED = 3,    /* ... and its measurements match a golden set */
};

/* A volume: a plain file name inside a pool of the host's catalogue. */
struct smig_volref {
	char pool[SMIG_NAME_MAX + 1];
	char volume[SMIG_NAME_MAX + 1];
};

enum smig_disk_bus { SMIG_BUS_VIRTIO_BLK = 0, SMIG_BUS_VIRTIO_SCSI };
enum smig_disk_cache {
	SMIG_CACHE_NONE = 0, /* O_DIRECT, the host page cache bypassed: safe to migrate */
	SMIG_CACHE_WRITETHROUGH,
	SMIG_CACHE_WRITEBACK,
	SMIG_CACHE_DIRECTSYNC,
	SMIG_CACHE_UNSAFE,
};

struct smig_vm_disk {
	struct smig_volref vol;
	bool qcow2;
	bool readonly;
	enum smig_disk_bus bus;
	enum smig_disk_cache cache;
};

struct smig_vm_nic {
	char network[SMIG_NAME_MAX + 1];
	uint8_t mac[6];
	bool has_mac; /* false only in a file before define, which generates it */
	/*
	 * The NIC's filter, enforced on its tap by the host that runs it: frames
	 * only from its MAC; IPv4 and ARP only from its addresses (none listed:
	 * no IP at all); inbound TCP connections only to tcp_ports (none: any).
	 */
	bool filter;
	uint32_t ips[SMIG_VM_NIC_IPS_MAX]; /* network byte order */
	size_t nips;
	uint16_t tcp_ports[SMIG_VM_NIC_PORTS_MAX];
	size_t nports;
};

enum smig_fw_kind { SMIG_FW_BIOS = 0, SMIG_FW_UEFI };

struct smig_vm_firmware {
	enum smig_fw_kind kind;
	char name[SMIG_NAME_MAX + 1]; /* uefi: a firmware of the host's catalogue */
	bool secure_boot;
	struct smig_volref nvram; /* uefi: the VM's own variable store */
};

struct smig_vm_boot {
	bool kernel_set; /* direct kernel boot (-kernel) from a volume */
	struct smig_volref kernel;
	bool initrd_set;
	struct smig_volref initrd;
	char cmdline[SMIG_VM_CMDLINE_MAX + 1];
};

struct smig_vmspec {
	char name[SMIG_NAME_MAX + 1];
	char machine[SMIG_VM_MODEL_MAX]; /* pinned machine type; empty before define */
	char cpu[SMIG_VM_MODEL_MAX];     /* CPU model */
	uint32_t memory_mib;
	uint32_t vcpus;
	struct smig_vm_firmware firmware;
	struct smig_vm_boot boot;
	struct smig_vm_disk disks[SMIG_VM_DISKS_MAX];
	size_t ndisks;
	struct smig_vm_nic nics[SMIG_VM_NICS_MAX];
	size_t nnics;
	bool vtpm;
	bool guest_agent; /* a virtio-serial port for the QEMU guest agent (qemu-ga) */
	bool autostart;   /* started when smigd starts after the host booted */
	uint32_t shutdown_timeout_s; /* how long vm stop waits for the guest; 0: the default */
	enum smig_trust min_trust;
	char requires[SMIG_VM_REQUIRES_MAX][SMIG_NAME_MAX + 1];
	size_t nrequires;
	struct smig_label labels[SMIG_VM_LABELS_MAX];
	size_t nlabels;
};

/* Parses and validates a spec; name is used in messages (file:line:col). */
int smig_vmspec_parse(const char *name, const char *text, size_t len,
		      struct smig_vmspec *spec, char *err, size_t errlen);
int smig_vmspec_load(const char *path, struct smig_vmspec *spec, char *err, size_t errlen);
/* Serializes spec as compact JSON (malloc'd, NUL-terminated) in *out. */
int smig_vmspec_dump(const struct smig_vmspec *spec, char **out);
/*
 * The top-level keys in which a and b differ, as "memory_mib, vcpus" in
 * out ("" when none). SMIG_VMSPEC_DIFF_HOST_ONLY leaves out the keys only
 * smigd reads (autostart, shutdown_timeout_s): what is left would change
 * the running QEMU.
 */
#define SMIG_VMSPEC_DIFF_HOST_ONLY 1u
int smig_vmspec_diff(const struct smig_vmspec *a, const struct smig_vmspec *b, unsigned flags,
		     char *out, size_t outlen);

const char *smig_trust_name(enum smig_trust t);
const char *smig_disk_bus_name(enum smig_disk_bus b);
const char *smig_disk_cache_name(enum smig_disk_cache c);
/* "52:54:00:12:34:56" */
void smig_mac_format(const uint8_t mac[6], char out[18]);
int smig_mac_parse(const char *s, uint8_t mac[6]);
int smig_trust_parse(const char *s, enum smig_trust *out);

/*
 * What smigd opened for a VM (vm_res.c): QEMU gets these descriptors and
 * never a path. A disk's set holds a read-write and a read-only
 * descriptor (QEMU picks by access mode when it reopens the image); -1
 * where there is none.
 */
struct smig_vm_fds {
	int kernel, initrd;
	int fw_code, fw_vars;
	int disk_rw[SMIG_VM_DISKS_MAX], disk_ro[SMIG_VM_DISKS_MAX];
	int tap[SMIG_VM_NICS_MAX];
	/* listening unix sockets smigd made: QMP, the serial console, the guest agent */
	int qmp, serial, agent;
};

/* What QEMU reaches by path (in the VM's own run directory), and what it was given. */
struct smig_vm_paths {
	const char *tpm; /* swtpm control socket, when spec->vtpm */
	const char *pidfile;
	const struct smig_vm_fds *fds;
};

struct smig_argv {
	char **v;
	size_t n;
	size_t cap;
};

/*
 * Builds QEMU's argv for spec. accel is "kvm:tcg", "kvm" or "tcg";
 * incoming adds -incoming defer. The VM always starts paused (-S).
 */
int smig_qemu_argv(const struct smig_vmspec *spec, const struct smig_vm_paths *paths,
		   const char *qemu_binary, const char *accel, bool incoming,
		   struct smig_argv *argv);
void smig_argv_clear(struct smig_argv *argv);

#endif
