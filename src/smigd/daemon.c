/*
 * daemon.c - the worker's life: start-up as root (configuration, host
 * table, policy, the TLS key, every subsystem, the listeners, the link to
 * the warden), then the sandbox (sandbox.h) for good, then the VMs the
 * warden has; reload and the orderly stop. main.c only parses the command
 * line and runs the loop.
 *
 * SIGTERM/SIGINT (from the warden): close the listeners and connections,
 * remove the control socket, exit 0. Reload: the warden reads the config,
 * host table, policy and IVT (the worker cannot) and sends their text
 * (EV_RELOAD); a bad one keeps the old state and logs why.
 */
#include "smigd.h"
#include "error.h"
#include "file.h"
#include "log.h"
#include "sign.h"
#include "migrate.h"
#include "priv.h"
#include "sandbox.h"
#include "vm.h"
#include "warden/warden.h"

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

/* EV_RELOAD: the config, host table, policy and IVT as the warden read them. */
static void smigd_reload(void *arg, const struct smig_pm *ev)
{
	struct smigd *d = arg;
	const char *text = smig_pm_str(ev, 0), *hosts = smig_pm_str(ev, 1);
	struct smig_config cfg;
	struct smig_hosts nh;
	char err[512];

	smig_info("event=reload_start config=%s", d->cfg.path);
	if (smig_config_parse(d->cfg.path, text, strlen(text), &cfg, err, sizeof(err)) < 0 ||
	    smig_hosts_parse(cfg.hosts_file, hosts, strlen(hosts), &nh, err, sizeof(err)) < 0) {
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
	authz_reload(d, &cfg, smig_pm_str(ev, 2));
	(void)attest_set_ivt(d, smig_pm_str(ev, 3));
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
		default: /* SIGHUP goes to the warden, which reads the files and sends them */
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
	SMIG_ENSURE(sigprocmask(SIG_BLOCK, &set, NULL) == 0, SMIG_EIO);
	signal(SIGHUP, SIG_IGN); /* the warden's, not ours: a stray one must not end us */
	d->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	SMIG_ENSURE(d->sig_fd >= 0, SMIG_EIO);
	return loop_watch_add(d->loop, d->sig_fd, EPOLLIN, smigd_signal, d, &d->sig_w);
}

/*
 * What this host offers to VMs: the configured capacity, or by default its
 * memory less 1 GiB for itself and its online CPUs.
 */
static void host_capacity(struct smigd *d)
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

/* What a start needs beyond a valid config (smigd --check-config says it too). */
static int start_needs(const struct smigd *d, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	SMIG_GUARD(wd_state_dir_passable(d->cfg.state_dir, err, errlen));
	return wd_worker_user(&d->cfg, uid, gid, err, errlen);
}

/* The link to the warden, and where its notifications go. */
static int warden_link(struct smigd *d, int fd)
{
	SMIG_GUARD(priv_open(d->loop, fd, &d->priv));
	priv_on(d->priv, SMIG_PM_EV_VM_EXIT, vm_on_exit, d);
	priv_on(d->priv, SMIG_PM_EV_MEASURED, attest_on_measured, d);
	priv_on(d->priv, SMIG_PM_EV_IVT, attest_on_ivt, d);
	priv_on(d->priv, SMIG_PM_EV_RELOAD, smigd_reload, d);
	return 0;
}

/*
 * The worker's sandbox: its own directories (the warden made them its
 * user's), the audit log's directory to read, a test build's trace
 * directory, its peer port.
 */
static int enter_sandbox(struct smigd *d, uid_t uid, gid_t gid)
{
	struct sandbox_spec s = { .uid = uid, .gid = gid, .port = d->cfg.listen_port,
				  .parent = d->warden_pid };
	char path[PATH_MAX], audit_dir[PATH_MAX], err[512];
	const char *trace = getenv("SMIG_TRACE_DIR");
	const char *own[] = { "worker", "consoles" };
	char *slash;
	int rc;

	for (size_t i = 0; i < ARRAY_LEN(own); i++) {
		snprintf(path, sizeof(path), "%s/%s", d->cfg.state_dir, own[i]);
		s.own_dirs[s.nown_dirs++] = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	if (trace && trace[0])
		s.own_dirs[s.nown_dirs++] = open(trace, O_PATH | O_DIRECTORY | O_CLOEXEC);
	snprintf(audit_dir, sizeof(audit_dir), "%s", audit_path(d));
	slash = strrchr(audit_dir, '/');
	if (slash && slash != audit_dir) {
		*slash = '\0';
		s.read_dirs[s.nread_dirs++] = audit_dir;
	}
	rc = sandbox_enter(&s, err, sizeof(err));
	for (size_t i = 0; i < s.nown_dirs; i++)
		if (s.own_dirs[i] >= 0)
			close(s.own_dirs[i]);
	if (rc < 0)
		smig_err("event=sandbox_failed reason=\"%s\"", err);
	else
		smig_info("event=sandboxed user=%s uid=%u", d->cfg.worker_user, (unsigned)uid);
	return rc;
}

int smigd_start(struct smigd *d, const char *config_path, bool check_only, int warden_fd,
		bool sandbox)
{
	struct smig_hosts nh;
	char err[512];
	uid_t uid = 0;
	gid_t gid = 0;
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
	if (rc == 0)
		rc = start_needs(d, &uid, &gid, err, sizeof(err));
	if (rc < 0) {
		smig_err("event=config_invalid reason=\"%s\"", err);
		if (warden_fd >= 0)
			close(warden_fd);
		return rc;
	}
	SMIG_GUARD(authz_init(d));
	if (check_only)
		return 0;
	smig_log_init("smigd", d->cfg.log_level, d->cfg.log_syslog);
	SMIG_GUARD(loop_new(&d->loop));
	SMIG_GUARD(warden_link(d, warden_fd));
	if (smig_sign_load_key(d->cfg.tls_key, &d->host_key, err, sizeof(err)) < 0) {
		smig_err("event=key_failed reason=\"%s\"", err);
		return SMIG_ECRYPTO;
	}
	SMIG_GUARD(audit_open(d));
	SMIG_GUARD(monitor_init(d));
	SMIG_GUARD(attest_init(d));
	host_capacity(d);
	SMIG_GUARD(smigd_signals(d));
	SMIG_GUARD(peer_listen(d));
	SMIG_GUARD(ctl_open(d));
	if (sandbox)
		SMIG_GUARD(enter_sandbox(d, uid, gid));
	return vm_load_all(d);
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
	priv_close(d->priv);
	loop_free(d->loop);
	smig_tls_ctx_free(d->tls);
	smig_hosts_clear(&d->hosts);
	free(d->hstate);
}
