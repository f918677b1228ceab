/*
 * config.h - smigd's configuration file and the cluster host table.
 *
 * Both are strict JSON (see json.h): an unknown key, a wrong type, a missing
 * field or a bad value is an error naming file:line:column. Relative paths
 * in the config are taken relative to the config file's directory. The
 * host table is one file shared by every host of a cluster: each host's
 * name, peer address and the SHA-256 fingerprint of its certificate.
 * docs/configuration.md is the reference.
 */
#ifndef SMIG_CONFIG_H
#define SMIG_CONFIG_H

#include "catalog.h"
#include "ids.h"
#include "label.h"
#include "log.h"
#include "msg.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMIG_MIG_POLICIES_MAX 32
#define SMIG_MIG_POLICY_LABELS 8

/*
 * A migration policy (migration.policies[]): the settings of the
 * migrations of the VMs whose labels its selector matches. 0 (or -1 for
 * auto_converge) leaves a setting to smig migrate's options and the host's
 * migration.* defaults.
 */
struct smig_mig_policy {
	char name[SMIG_NAME_MAX + 1];
	struct smig_label sel[SMIG_MIG_POLICY_LABELS]; /* all must match (globs) */
	size_t nsel;
	int max_bandwidth;          /* MiB/s */
	int downtime_ms;            /* QEMU's downtime limit to begin with */
	int completion_timeout_per_gib_s; /* streaming longer than this per GiB of memory */
	int progress_timeout_s;     /* no new low of the memory still to send for this long */
	bool escalate_on_timeout;   /* a timeout takes the next escalation step; after the last it fails */
	int auto_converge;          /* throttling as the last step: 1 allowed, 0 not, -1 the host's */
};

#define SMIG_FP_LEN 32
#define SMIG_FP_STR_LEN (7 + 2 * SMIG_FP_LEN + 1) /* "sha256:" hex NUL */
#define SMIG_ADDR_MAX 64
#define SMIG_DEFAULT_PORT 7450
#define SMIG_HOSTS_MAX 1024
#define SMIG_HOST_LABELS_MAX 16
/* VMs' uids: above people, services and the first user-namespace ranges (/etc/subuid) */
#define SMIG_VM_UID_FIRST 16777216u
#define SMIG_VM_UID_COUNT 65536u

/*
 * A host of the table. During a certificate rotation it has two: the one
 * it uses and the one it moves to (next_fp); both are its own, accepted
 * from it and matched to it, until the table lists one again.
 */
struct smig_host {
	char name[SMIG_NAME_MAX + 1];
	char addr[SMIG_ADDR_MAX]; /* numeric IPv4 or IPv6 */
	uint16_t port;
	uint8_t fp[SMIG_FP_LEN];
	bool has_next;
	uint8_t next_fp[SMIG_FP_LEN]; /* with has_next */
	struct smig_label labels[SMIG_HOST_LABELS_MAX];
	size_t nlabels;
};

/*
 * A certificate the cluster no longer accepts, whoever presents it: refused
 * on every handshake, both ways, and its live sessions are closed when the
 * table is reloaded. The fingerprint may belong to a host's former
 * certificate (re-keyed after a compromise) or to a host taken out. It
 * may also be one of the two a rotating host lists, as long as the other
 * is not revoked: the revocation wins, the host keeps the other.
 */
#define SMIG_REVOKED_MAX 1024 /* with 1024 hosts, the table fits the warden's message */
#define SMIG_REVOKED_REASON_MAX 127
struct smig_revoked {
	uint8_t fp[SMIG_FP_LEN];
	char host[SMIG_NAME_MAX + 1]; /* whose it was, or "" */
	char reason[SMIG_REVOKED_REASON_MAX + 1];
};

struct smig_hosts {
	struct smig_host *v;
	size_t n;
	struct smig_revoked *revoked;
	size_t nrevoked;
};

#define SMIG_STORE_ENDPOINTS_MAX 9
#define SMIG_STORE_URL_MAX 200
#define SMIG_STORE_PREFIX_MAX 63

struct smig_config {
	char path[PATH_MAX];
	uint8_t sha256[32]; /* of the text it was read from: the config in force, as measured */
	char host[SMIG_NAME_MAX + 1];
	char listen_addr[SMIG_ADDR_MAX];
	uint16_t listen_port;
	char control_socket[PATH_MAX];
	char control_group[64]; /* empty: keep the daemon's group */
	int control_per_uid;    /* connections one uid other than root may hold */
	char log_file[PATH_MAX]; /* empty: stderr (the journal, under systemd) */
	char metrics_addr[SMIG_ADDR_MAX]; /* empty: no metrics endpoint */
	uint16_t metrics_port;
	/* store: the fleet's shared view (files: none beyond this host's; etcd) */
	bool store_etcd;
	char store_endpoints[SMIG_STORE_ENDPOINTS_MAX][SMIG_STORE_URL_MAX + 1];
	size_t nstore_endpoints;
	char store_ca[PATH_MAX]; /* the etcd members' CA: tls_ca unless set */
	char store_prefix[SMIG_STORE_PREFIX_MAX + 1]; /* every key below it */
	int store_lease_ttl_s; /* this host's lease: its records outlive it this long */
	int store_timeout_ms;  /* one call to one member */
	int log_max_kib;         /* rotate log_file past this size */
	int log_keep;            /* rotated files kept: FILE.1 .. FILE.KEEP */
	char state_dir[PATH_MAX];
	char tls_ca[PATH_MAX];
	char tls_cert[PATH_MAX];
	char tls_key[PATH_MAX];
	int tls_warn_days; /* certificates this near their end are logged (cert_expiring) */
	char hosts_file[PATH_MAX];
	enum smig_log_level log_level;
	bool log_syslog;
	char qemu_binary[PATH_MAX];
	char qemu_accel[16]; /* "kvm:tcg", "kvm" or "tcg" */
	char swtpm_binary[PATH_MAX];
	bool auto_converge; /* QEMU throttles a guest that outruns the link */
	int handshake_timeout_ms;
	int request_timeout_ms;
	int stall_timeout_ms; /* a migration that moves nothing this long fails */
	/* migration: escalation of one that does not converge */
	int escalate_after_s;      /* streaming this long: the next downtime step */
	int downtime_steps_ms[8];  /* the downtime limits it rises to, in order */
	size_t ndowntime_steps;
	int completion_timeout_s;  /* streaming this long: it fails (0: never) */
	int mig_channels;          /* streams per migration: 1, 2-16 (multifd), 0: by the cores */
	bool auto_converge_step;   /* without auto_converge: throttling after the last downtime step */
	int parallel_outbound;     /* migrations this host sends at once; more wait (0: no cap) */
	int parallel_inbound;      /* migrations this host takes at once; more are told to wait (0: no cap) */
	struct smig_mig_policy mig_policies[SMIG_MIG_POLICIES_MAX];
	size_t nmig_policies;
	int stream_passes;    /* a stream longer than this many times the memory fails */
	int guest_watch_ms;   /* destination: how long a resumed guest is watched for a crash */
	int agent_timeout_ms; /* how long one guest agent ping waits for its answer */
	int max_peers;
	/*
	 * inbound connections one authenticated host may hold (at most half of
	 * max_peers, so that no host locks the others out)
	 */
	int peers_per_host;
	char policy_file[PATH_MAX]; /* empty: the built-in policy */
	char audit_file[PATH_MAX];  /* empty: STATE_DIR/audit.log */
	int audit_checkpoint_records;
	int audit_checkpoint_interval_s;
	int audit_max_kib; /* rotate the audit log past this size */
	int audit_keep;    /* rotated files kept: audit.log.1 .. audit.log.KEEP */
	/* attestation */
	char ivt_file[PATH_MAX]; /* empty: no golden values, verdicts are "attested" */
	char ek_roots[PATH_MAX]; /* the TPM vendors' EK CAs (PEM); empty: EK certificates unchecked */
	struct smig_config_component {
		char name[SMIG_NAME_MAX + 1];
		char path[PATH_MAX];
	} components[16]; /* measured in addition to the built-in list */
	size_t ncomponents;
	int attest_interval_s;
	bool evacuate; /* move the VMs away when this host fails its own check */
	int evacuate_parallel; /* migrations an evacuation runs at once */
	/* firewall and IDS */
	bool hosts_only; /* only host-table addresses may connect (before TLS) */
	double conn_rate; /* new connections per second a source may open */
	double conn_burst;
	char never_ban[8][SMIG_ADDR_MAX]; /* addresses the IDS never bans */
	size_t nnever_ban;
	int pending_per_source; /* connections not yet authenticated, per address */
	int conns_per_source;   /* inbound connections, authenticated or not, per address */
	bool nftables; /* also drop banned addresses in the kernel */
	struct smig_ids_rule ids_rules[8]; /* empty: the default rules */
	size_t nids_rules;
	struct smig_catalog catalog; /* pools, networks, firmware, capacity */
	/* confinement of the VMs' processes (docs/configuration.md, "Confinement") */
	uint32_t vm_uid_first; /* each VM's QEMU and swtpm run as one uid of this range */
	uint32_t vm_uid_count;
	uint32_t vm_memory_overhead_mib; /* a VM's cgroup holds its memory plus this */
	bool cgroups;                    /* false: VMs run without a cgroup of their own */
	char worker_user[64];            /* the unprivileged worker's user (and its group) */
	char tpm_tcti[256]; /* empty: no host TPM */
	unsigned tpm_pcrs[24];
	size_t ntpm_pcrs;
	unsigned tpm_timeout_s; /* a TPM that answers nothing this long is hung (restarted) */
	/* the measured-boot event log and the IMA list (binary) that go with each quote */
	char tpm_event_log[PATH_MAX];
	char tpm_ima_log[PATH_MAX];
};

int smig_config_load(const char *path, struct smig_config *cfg, char *err, size_t errlen);
/* Parses config text held in memory (name is used in messages). */
int smig_config_parse(const char *name, const char *text, size_t len,
		      struct smig_config *cfg, char *err, size_t errlen);

int smig_hosts_load(const char *path, struct smig_hosts *h, char *err, size_t errlen);
int smig_hosts_parse(const char *name, const char *text, size_t len, struct smig_hosts *h,
		     char *err, size_t errlen);
void smig_hosts_clear(struct smig_hosts *h);
const struct smig_host *smig_hosts_by_name(const struct smig_hosts *h, const char *name);
/* The host that lists fp, as its fingerprint or its next_fingerprint. */
const struct smig_host *smig_hosts_by_fp(const struct smig_hosts *h, const uint8_t *fp);
/* True if fp is one of host's certificates (fingerprint or next_fingerprint). */
bool smig_host_has_fp(const struct smig_host *host, const uint8_t *fp);
/* The host's other certificate than fp during a rotation, or NULL. */
const uint8_t *smig_host_other_fp(const struct smig_host *host, const uint8_t *fp);
const struct smig_host *smig_hosts_by_addr(const struct smig_hosts *h, const char *addr);
/* The revocation of the certificate with fingerprint fp, or NULL. */
const struct smig_revoked *smig_hosts_revoked(const struct smig_hosts *h, const uint8_t *fp);

/* "192.0.2.1:7450", "[2001:db8::1]:7450" or a bare address (default port). */
int smig_addr_parse(const char *s, char *addr, size_t addrlen, uint16_t *port);
/* "sha256:" followed by 64 hex digits, optionally in colon-separated pairs. */
int smig_fp_parse(const char *s, uint8_t fp[SMIG_FP_LEN]);
void smig_fp_format(const uint8_t fp[SMIG_FP_LEN], char out[SMIG_FP_STR_LEN]);

/*
 * The migration policy of a VM with labels v[0..n): of the policies whose
 * selector matches, the one with the most entries (the first of equals);
 * NULL when none matches.
 */
const struct smig_mig_policy *smig_mig_policy_for(const struct smig_config *cfg,
						  const struct smig_label *v, size_t n);

#endif
