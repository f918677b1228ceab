/*
 * daemon.c - smigd's life: start-up (configuration, host table, policy,
 * every subsystem, the listeners), signals and reload, and the orderly
 * stop. main.c only parses the command line and runs the loop.
 *
 * SIGTERM/SIGINT: close the listeners and connections, remove the control
 * socket, exit 0. SIGHUP: re-read the config, host table, policy and IVT;
 * a bad file keeps the old state and logs why.
 */
#include "smigd.h"
#include "error.h"
#include "file.h"
#include "log.h"
#include "sign.h"
#include "migrate.h"
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

struct host_state *smigd_host_state(struct smigd *d, const char *name)
{
	for (size_t i = 0; i < d->hosts.n; i++)
		if (strcmp(d->hstate[i].name, name) == 0)
			return &d->hstate[i];
	return NULL;
}

/* Installs a new host table, carrying over what is known of each host. */
static int hosts_install(struct smigd *d, struct smig_hosts *nh)
{
	struct host_state *ns = calloc(nh->n ? nh->n : 1, sizeof(*ns));

	SMIG_ENSURE(ns != NULL, SMIG_ENOMEM);
	for (size_t i = 0; i < nh->n; i++) {
		struct host_state *old = smigd_host_state(d, nh->v[i].name);
		if (old)
			ns[i] = *old;
		snprintf(ns[i].name, sizeof(ns[i].name), "%s", nh->v[i].name);
	}
	smig_hosts_clear(&d->hosts);
	free(d->hstate);
	d->hosts = *nh;
	d->hstate = ns;
	memset(nh, 0, sizeof(*nh));
	return 0;
}

static int hosts_check_self(struct smigd *d, const struct smig_hosts *h, char *err,
			    size_t errlen)
{
	const struct smig_host *self = smig_hosts_by_name(h, d->cfg.host);

	if (self == NULL) {
		snprintf(err, errlen, "%s: this host (%s) is not in the host table",
			 d->cfg.hosts_file, d->cfg.host);
		return SMIG_ECONFIG;
	}
	if (memcmp(self->fp, smig_tls_ctx_fp(d->tls), SMIG_FP_LEN) != 0) {
		snprintf(err, errlen, "%s: the fingerprint of %s does not match %s",
			 d->cfg.hosts_file, d->cfg.host, d->cfg.tls_cert);
		return SMIG_ECONFIG;
	}
	return 0;
}

static void reload_failed(struct smigd *d, const char *err)
{
	smig_err("event=reload_failed reason=\"%s\" action=kept_previous", err);
	audit_write(d, "smigd", "config.reload", d->cfg.path, "none", "-", "failed", err);
}

static void smigd_reload(struct smigd *d)
{
	struct smig_config cfg;
	struct smig_hosts nh;
	char err[512];

	smig_info("event=reload_start config=%s", d->cfg.path);
	if (smig_config_load(d->cfg.path, &cfg, err, sizeof(err)) < 0 ||
	    smig_hosts_load(cfg.hosts_file, &nh, err, sizeof(err)) < 0) {
		reload_failed(d, err);
		return;
	}
	if (hosts_check_self(d, &nh, err, sizeof(err)) < 0 || hosts_install(d, &nh) < 0) {
		reload_failed(d, err);
		smig_hosts_clear(&nh);
		return;
	}
	d->cfg.log_level = cfg.log_level;
	d->cfg.handshake_timeout_ms = cfg.handshake_timeout_ms;
	d->cfg.request_timeout_ms = cfg.request_timeout_ms;
	d->cfg.max_peers = cfg.max_peers;
	d->cfg.stall_timeout_ms = cfg.stall_timeout_ms;
	d->cfg.stream_passes = cfg.stream_passes;
	d->cfg.audit_checkpoint_records = cfg.audit_checkpoint_records;
	memcpy(d->cfg.ivt_file, cfg.ivt_file, sizeof(cfg.ivt_file));
	memcpy(d->cfg.components, cfg.components, sizeof(cfg.components));
	d->cfg.ncomponents = cfg.ncomponents;
	d->cfg.evacuate = cfg.evacuate;
	smig_log_set_level(cfg.log_level);
	smig_info("event=reload_done hosts=%zu", d->hosts.n);
	authz_reload(d, &cfg);
	attest_reload(d);
}

static void smigd_signal(void *arg, uint32_t events)
{
	struct smigd *d = arg;
	struct signalfd_siginfo si;

	(void)events;
	while (read(d->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			smig_info("event=shutdown signal=%s",
				  si.ssi_signo == SIGTERM ? "TERM" : "INT");
			loop_stop(d->loop);
			break;
		case SIGHUP:
			smigd_reload(d);
			break;
		case SIGCHLD:
			vm_reap(d);
			break;
		default:
			break;
		}
	}
}

static int smigd_signals(struct smigd *d)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	SMIG_ENSURE(sigprocmask(SIG_BLOCK, &set, NULL) == 0, SMIG_EIO);
	d->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	SMIG_ENSURE(d->sig_fd >= 0, SMIG_EIO);
	return loop_watch_add(d->loop, d->sig_fd, EPOLLIN, smigd_signal, d, &d->sig_w);
}

/*
 * What this host offers to VMs: the configured capacity, or by default its
 * memory less 1 GiB for itself and its online CPUs; and what its QEMU can
 * emulate, learned once from QEMU itself.
 */
static int host_resources(struct smigd *d)
{
	struct smig_capacity *c = &d->cfg.catalog.capacity;
	char err[512];

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
	d->qemu_caps = calloc(1, sizeof(*d->qemu_caps));
	SMIG_ENSURE(d->qemu_caps != NULL, SMIG_ENOMEM);
	if (smig_qemu_caps_probe(d->cfg.qemu_binary, d->qemu_caps, err, sizeof(err)) < 0) {
		smig_err("event=qemu_probe_failed reason=\"%s\"", err);
		return SMIG_ECONFIG;
	}
	smig_info("event=host_resources memory_mib=%u vcpus=%u memory_overcommit=%.2f "
		  "cpu_overcommit=%.2f machine=%s pools=%zu networks=%zu firmware=%zu",
		  c->memory_mib, c->vcpus, c->memory_overcommit, c->cpu_overcommit,
		  d->qemu_caps->default_machine, d->cfg.catalog.npools, d->cfg.catalog.nnetworks,
		  d->cfg.catalog.nfirmware);
	return 0;
}

/*
 * The VMs' processes run as uids of their own and reach their directories
 * below STATE_DIR (docs/configuration.md, "Confinement"): every directory
 * above it must let others pass (o+x); STATE_DIR itself is made so.
 */
static int state_dir_passable(const char *state_dir, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct stat st;
	char *slash;

	snprintf(path, sizeof(path), "%s", state_dir);
	while ((slash = strrchr(path, '/')) != NULL && slash != path) {
		*slash = '\0';
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) && !(st.st_mode & S_IXOTH)) {
			snprintf(err, errlen, "state_dir %s: %s (mode %04o) does not let others pass, "
				 "and each VM's QEMU and swtpm run as a uid of their own below it: "
				 "chmod o+x %s, or choose a state_dir whose parents do",
				 state_dir, path, (unsigned)(st.st_mode & 07777), path);
			return SMIG_ECONFIG;
		}
	}
	return 0;
}

/*
 * A pool others may enter holds disks that another VM's uid could read by
 * their mode: Landlock keeps every VM's QEMU out of pools all the same,
 * but without Landlock the mode is the only barrier, and smigd refuses.
 */
static int pools_closed(const struct smigd *d)
{
	const struct smig_catalog *cat = &d->cfg.catalog;
	struct stat st;

	for (size_t i = 0; i < cat->npools; i++) {
		if (stat(cat->pools[i].path, &st) < 0 || (st.st_mode & 0007) == 0)
			continue;
		if (d->confine.landlock_abi == 0) {
			smig_err("event=pool_open_to_others pool=%s path=%s mode=%04o reason=\"without "
				 "Landlock, any VM's uid could read its disks\" fix=\"chmod o-rwx %s\"",
				 cat->pools[i].name, cat->pools[i].path,
				 (unsigned)(st.st_mode & 07777), cat->pools[i].path);
			return SMIG_ECONFIG;
		}
		smig_warn("event=pool_open_to_others pool=%s path=%s mode=%04o fix=\"chmod o-rwx %s\"",
			  cat->pools[i].name, cat->pools[i].path, (unsigned)(st.st_mode & 07777),
			  cat->pools[i].path);
	}
	return 0;
}

/* Makes STATE_DIR (0711: passable, not listable) and learns how VMs are confined here. */
static int state_and_confinement(struct smigd *d)
{
	char err[512];

	if (smig_file_mkdirs(d->cfg.state_dir, 0711) < 0 || chmod(d->cfg.state_dir, 0711) < 0) {
		smig_err("event=state_dir_failed path=%s reason=\"%s\"", d->cfg.state_dir,
			 strerror(errno));
		return SMIG_EIO;
	}
	if (confine_host_init(&d->confine, &d->cfg, err, sizeof(err)) < 0) {
		smig_err("event=confinement_failed reason=\"%s\"", err);
		return SMIG_ECONFIG;
	}
	smig_info("event=confinement cgroups=\"%s\" landlock_abi=%d vm_uids=%u-%u",
		  confine_cg_name(d->confine.cg), d->confine.landlock_abi, d->cfg.vm_uid_first,
		  d->cfg.vm_uid_first + d->cfg.vm_uid_count - 1);
	if (d->confine.cg == CONFINE_CG_NONE)
		smig_warn("event=vm_memory_unlimited reason=\"%s\"",
			  d->cfg.cgroups ? "no cgroup controller for memory" : "confinement.cgroups is false");
	if (d->confine.landlock_abi == 0)
		smig_warn("event=landlock_missing reason=\"the kernel offers no Landlock: VMs' processes "
			  "keep the file access their uid has\"");
	return pools_closed(d);
}

int smigd_start(struct smigd *d, const char *config_path, bool check_only, bool measure)
{
	struct smig_hosts nh;
	char err[512];
	int rc;

	rc = smig_config_load(config_path, &d->cfg, err, sizeof(err));
	if (rc == 0)
		rc = smig_tls_ctx_new(&d->tls, d->cfg.tls_ca, d->cfg.tls_cert, d->cfg.tls_key, err,
				      sizeof(err));
	if (rc == 0)
		rc = smig_hosts_load(d->cfg.hosts_file, &nh, err, sizeof(err));
	if (rc == 0) {
		rc = hosts_check_self(d, &nh, err, sizeof(err));
		if (rc == 0)
			rc = hosts_install(d, &nh);
		else
			smig_hosts_clear(&nh);
	}
	if (rc == 0 && !measure)
		rc = state_dir_passable(d->cfg.state_dir, err, sizeof(err));
	if (rc < 0) {
		smig_err("event=config_invalid reason=\"%s\"", err);
		return rc;
	}
	SMIG_GUARD(authz_init(d));
	if (measure)
		return attest_print_measurement(d);
	if (check_only)
		return 0;
	smig_log_init("smigd", d->cfg.log_level, d->cfg.log_syslog);
	SMIG_GUARD(state_and_confinement(d));
	SMIG_GUARD(loop_new(&d->loop));
	if (smig_sign_load_key(d->cfg.tls_key, &d->host_key, err, sizeof(err)) < 0) {
		smig_err("event=key_failed reason=\"%s\"", err);
		return SMIG_ECRYPTO;
	}
	SMIG_GUARD(audit_open(d));
	SMIG_GUARD(monitor_init(d));
	SMIG_GUARD(attest_init(d));
	SMIG_GUARD(host_resources(d));
	SMIG_GUARD(vm_load_all(d));
	SMIG_GUARD(smigd_signals(d));
	SMIG_GUARD(peer_listen(d));
	return ctl_open(d);
}

void smigd_stop(struct smigd *d)
{
	if (d->loop) {
		mig_free_all(d);
		peer_close_all(d);
		ctl_close_all(d);
		loop_watch_del(d->loop, d->sig_w);
	}
	evac_free(d);
	attest_free(d);
	monitor_free(d);
	audit_close(d);
	authz_free(d);
	EVP_PKEY_free(d->host_key);
	if (d->sig_fd >= 0)
		close(d->sig_fd);
	vm_free_all(d);
	free(d->qemu_caps);
	loop_free(d->loop);
	smig_tls_ctx_free(d->tls);
	smig_hosts_clear(&d->hosts);
	free(d->hstate);
}
