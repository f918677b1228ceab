/*
 * catalog.h - the host-local resources a VM spec may name: storage pools,
 * networks (bridges), firmware images, and the capacity this host offers.
 *
 * A spec from a peer never carries a host path; it names a pool and a
 * volume, a network, a firmware. Each host maps the names through its own
 * catalogue, which is part of smigd's config (docs/configuration.md,
 * "Resources"). smig_catalog_check() is what a destination says about a
 * spec: every name it does not know, every mismatch, as one list of
 * problems, without opening anything (volume.h opens).
 */
#ifndef SMIG_CATALOG_H
#define SMIG_CATALOG_H

#include "json.h"
#include "msg.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMIG_POOLS_MAX 16
#define SMIG_NETWORKS_MAX 16
#define SMIG_FIRMWARE_MAX 8
#define SMIG_BRIDGE_MAX 16 /* IFNAMSIZ */

struct smig_pool {
	char name[SMIG_NAME_MAX + 1];
	char path[PATH_MAX];
	bool shared; /* the same storage is mounted on the peers (NFS, ...) */
};

struct smig_network {
	char name[SMIG_NAME_MAX + 1];
	char bridge[SMIG_BRIDGE_MAX];
};

#define SMIG_FW_ACCEPTS_MAX 8

struct smig_firmware {
	char name[SMIG_NAME_MAX + 1];
	char code[PATH_MAX]; /* OVMF code, opened read-only */
	char vars[PATH_MAX]; /* the template a VM's NVRAM volume starts from */
	bool secure_boot;    /* the code image enforces Secure Boot (needs SMM) */
	/*
	 * Other builds of this firmware (SHA-256 of their code image) whose VMs
	 * this host takes in, e.g. the previous package during a rolling upgrade;
	 * its own build is always accepted.
	 */
	uint8_t accepts[SMIG_FW_ACCEPTS_MAX][32];
	size_t naccepts;
};

struct smig_capacity {
	uint32_t memory_mib; /* 0: the host's memory less 1 GiB for itself */
	uint32_t vcpus;      /* 0: the host's online CPUs */
	double memory_overcommit;
	double cpu_overcommit;
};

struct smig_catalog {
	struct smig_pool pools[SMIG_POOLS_MAX];
	size_t npools;
	struct smig_network networks[SMIG_NETWORKS_MAX];
	size_t nnetworks;
	struct smig_firmware firmware[SMIG_FIRMWARE_MAX];
	size_t nfirmware;
	struct smig_capacity capacity;
};

void smig_catalog_defaults(struct smig_catalog *cat);
/*
 * Parses the resource keys of a config object (pools, networks, firmware,
 * capacity) into cat; relative paths are taken relative to base's
 * directory. Unknown members of a resource, bad names: file:line:column.
 */
int smig_catalog_parse(const struct smig_json_doc *doc, const json_t *root, const char *base,
		       struct smig_catalog *cat, char *err, size_t errlen);

const struct smig_pool *smig_catalog_pool(const struct smig_catalog *cat, const char *name);
const struct smig_network *smig_catalog_network(const struct smig_catalog *cat,
						const char *name);
const struct smig_firmware *smig_catalog_firmware(const struct smig_catalog *cat,
						  const char *name);

/* What the host offers after overcommit: memory in MiB, vCPUs. */
uint64_t smig_capacity_memory(const struct smig_capacity *c);
uint64_t smig_capacity_vcpus(const struct smig_capacity *c);

#endif
