/*
 * daemon.c - the worker's life (worker.h): start-up as root (configuration,
 * host table, policy, the TLS key, every part, the listeners, the link to
 * the warden), then the sandbox (sandbox.h) for good, then the VMs the
 * warden has; reload and the orderly stop. It is the top of the worker: it
 * starts each part in the order they stand on one another and wires the
 * events a lower part raises to the part above that acts on them (this
 * host's own verdict turning untrusted starts an evacuation).
 *
 * SIGTERM/SIGINT (from the warden): close the listeners and connections,
 * exit 0. Reload: the warden reads the config, host table, policy and IVT
 * (the worker cannot) and sends their text (EV_RELOAD); a bad one keeps
 * the old state and logs why. This host's certificate and key, renewed,
 * come the same way (EV_TLS), already checked by the warden, on a reload
 * and when the warden sees the files change.
 */
#include "worker/worker.h"
#include "common/startcheck.h"
#include "control/control.h"
#include "error.h"
#include "log.h"
#include "migration/migrate.h"
#include "peer/peer.h"
#include "policy/authz.h"
#include "worker/sandbox.h"
#include "sign.h"
#include "trust/trust.h"
#include "vm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

static void reload_failed(struct smigd *d, const char *err)
{
	smig_err("event=reload_failed reason=\"%s\" action=kept_previous", err);
	audit_write(d, "smigd", "config.reload", d->cfg.path, "none", "-", "failed", err);
}

/* EV_RELOAD: the config, host table, policy, IVT and EK roots as the warden read them. */
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
	if (hosts_install(d, &nh, err, sizeof(err)) < 0) {
		reload_failed(d, err);
		smig_hosts_clear(&nh);
		return;
	}
	d->cfg.log_level = cfg.log_level;
	d->cfg.handshake_timeout_ms = cfg.handshake_timeout_ms;
	d->cfg.request_timeout_ms = cfg.request_timeout_ms;
	d->cfg.max_peers = cfg.max_peers;
	d->cfg.stall_timeout_ms = cfg.stall_timeout_ms;
	d->cfg.escalate_after_s = cfg.escalate_after_s;
	memcpy(d->cfg.downtime_steps_ms, cfg.downtime_steps_ms, sizeof(cfg.downtime_steps_ms));
	d->cfg.ndowntime_steps = cfg.ndowntime_steps;
	d->cfg.completion_timeout_s = cfg.completion_timeout_s;
	d->cfg.parallel_outbound = cfg.parallel_outbound;
	d->cfg.parallel_inbound = cfg.parallel_inbound;
	memcpy(d->cfg.mig_policies, cfg.mig_policies, sizeof(cfg.mig_policies));
	d->cfg.nmig_policies = cfg.nmig_policies;
	d->cfg.stream_passes = cfg.stream_passes;
	d->cfg.audit_checkpoint_records = cfg.audit_checkpoint_records;
	memcpy(d->cfg.ivt_file, cfg.ivt_file, sizeof(cfg.ivt_file));
	memcpy(d->cfg.ek_roots, cfg.ek_roots, sizeof(cfg.ek_roots));
	memcpy(d->cfg.components, cfg.components, sizeof(cfg.components));
	d->cfg.ncomponents = cfg.ncomponents;
	d->cfg.evacuate = cfg.evacuate;
	d->cfg.tls_warn_days = cfg.tls_warn_days;
	smig_log_set_level(cfg.log_level);
	smig_info("event=reload_done hosts=%zu revoked=%zu", smigd_hosts(d)->n,
		  smigd_hosts(d)->nrevoked);
	certs_check(d);
	peer_recheck(d);
	authz_reload(d, &cfg, smig_pm_str(ev, 2));
	mig_dequeue_soon(d); /* a higher migration.parallel_outbound lets queued ones go */
	(void)attest_set_ivt(d, smig_pm_str(ev, 3));
	(void)attest_set_ek_roots(d, smig_pm_str(ev, 4));
}

/*
 * EV_TLS: this host's certificate and key as the warden read and checked
 * them (a renewal, or the same pair on a reload): the next connections
 * use them; those open keep the pair they began with.
 */
static void smigd_tls(void *arg, const struct smig_pm *ev)
{
	struct smigd *d = arg;
	/* the key's text is in the datagram we hold: wiped once read */
	char *key_pem = (char *)(uintptr_t)smig_pm_str(ev, 2); // NOLINT(performance-no-int-to-ptr)
	struct smig_tls_ctx *nt = NULL;
	const struct smig_host *self;
	EVP_PKEY *nk = NULL;
	char err[512], fp[SMIG_FP_STR_LEN], was[SMIG_FP_STR_LEN];
	int rc = smig_tls_ctx_new_pem(&nt, smig_pm_str(ev, 0), smig_pm_str(ev, 1), key_pem, err,
				      sizeof(err));

	if (rc == 0)
		rc = smig_sign_key_pem(key_pem, "tls.key", &nk, err, sizeof(err));
	OPENSSL_cleanse(key_pem, strlen(key_pem));
	if (rc < 0) {
		smig_err("event=tls_reload_failed side=worker reason=\"%s\" action=kept_previous", err);
		smig_tls_ctx_free(nt);
		return;
	}
	smig_fp_format(smig_tls_ctx_fp(nt), fp);
	smig_fp_format(smig_tls_ctx_fp(d->tls), was);
	smig_tls_ctx_free(d->tls);
	EVP_PKEY_free(d->host_key);
	d->tls = nt;
	d->host_key = nk;
	if (strcmp(fp, was) == 0) {
		smig_debug("event=tls_installed fingerprint=%s unchanged=yes", fp);
		return;
	}
	smig_info("event=tls_installed fingerprint=%s previous=%s", fp, was);
	self = smig_hosts_by_name(smigd_hosts(d), d->cfg.host);
	if (self && !smig_host_has_fp(self, smig_tls_ctx_fp(nt)))
		smig_warn("event=tls_not_in_table fingerprint=%s fix=\"list it as %s's "
			  "next_fingerprint in the host table\"", fp, d->cfg.host);
	if (!smig_pm_int(ev, 3)) /* a reload looks at the certificates when it is done */
		certs_check(d);
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

/* The trust part's event: this host failed its own check, and may move its VMs away. */
static void on_self_verdict(struct smigd *d, const char *why)
{
	if (why && d->cfg.evacuate)
		evac_start(d, why, NULL, false);
}

/* The trust part's event: our verdict on a neighbour turned; the others hear it from us. */
static void on_peer_verdict(struct smigd *d, const char *host, const struct smig_verdict *v)
{
	peer_report(d, host, v);
}

/* EV_LOG: the warden rotated log.file; write the new one from now on. */
static void smigd_log_rotated(void *arg, const struct smig_pm *ev)
{
	(void)arg;
	if (ev->nfds == 1 && dup2(ev->fds[0], STDERR_FILENO) < 0)
		smig_err("event=log_switch_failed reason=\"%s\"", strerror(errno));
}

/* The link to the warden, and where its notifications go. */
static int warden_link(struct smigd *d, int fd)
{
	SMIG_GUARD(priv_open(d->loop, fd, &d->priv));
	priv_on(d->priv, SMIG_PM_EV_VM_EXIT, vm_on_exit, d);
	priv_on(d->priv, SMIG_PM_EV_MEASURED, attest_on_measured, d);
	priv_on(d->priv, SMIG_PM_EV_IVT, attest_on_ivt, d);
	priv_on(d->priv, SMIG_PM_EV_RELOAD, smigd_reload, d);
	priv_on(d->priv, SMIG_PM_EV_LOG, smigd_log_rotated, d);
	priv_on(d->priv, SMIG_PM_EV_TLS, smigd_tls, d);
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
	/* the sockets QEMUs meet a migration's parallel channels on (mig_chan.c) */
	snprintf(path, sizeof(path), "%s/mig", d->cfg.state_dir);
	s.sock_dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
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
	if (s.sock_dir >= 0)
		close(s.sock_dir);
	if (rc < 0)
		smig_err("event=sandbox_failed reason=\"%s\"", err);
	else
		smig_info("event=sandboxed user=%s uid=%u", d->cfg.worker_user, (unsigned)uid);
	return rc;
}

/* The configuration and what a start needs beyond it (--check-config stops here). */
static int configure(struct smigd *d, const char *config_path, uid_t *uid, gid_t *gid)
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
		rc = hosts_install(d, &nh, err, sizeof(err));
		smig_hosts_clear(&nh);
	}
	if (rc == 0)
		rc = startcheck_state_dir(d->cfg.state_dir, err, sizeof(err));
	if (rc == 0)
		rc = startcheck_worker_user(&d->cfg, uid, gid, err, sizeof(err));
	if (rc == 0)
		rc = startcheck_control_dir(&d->cfg, false, err, sizeof(err));
	if (rc < 0)
		smig_err("event=config_invalid reason=\"%s\"", err);
	return rc < 0 ? rc : authz_init(d);
}

int smigd_start(struct smigd *d, const char *config_path, bool check_only, int warden_fd,
		bool sandbox)
{
	char err[512];
	uid_t uid = 0;
	gid_t gid = 0;
	int rc = configure(d, config_path, &uid, &gid);

	if (rc < 0 || check_only) {
		if (warden_fd >= 0)
			close(warden_fd);
		return rc;
	}
	smig_log_init("smigd", d->cfg.log_level, d->cfg.log_syslog);
	SMIG_GUARD(loop_new(&d->loop));
	SMIG_GUARD(warden_link(d, warden_fd));
	if (smig_sign_load_key(d->cfg.tls_key, &d->host_key, err, sizeof(err)) < 0) {
		smig_err("event=key_failed reason=\"%s\"", err);
		return SMIG_ECRYPTO;
	}
	/* each part in the order they stand on one another */
	SMIG_GUARD(reply_init(d));
	SMIG_GUARD(audit_open(d));
	SMIG_GUARD(monitor_init(d));
	SMIG_GUARD(store_init(d));
	SMIG_GUARD(vm_init(d));
	SMIG_GUARD(vm_fence_start(d));
	SMIG_GUARD(attest_init(d, on_self_verdict, on_peer_verdict));
	SMIG_GUARD(peer_init(d));
	SMIG_GUARD(mig_init(d));
	SMIG_GUARD(smigd_signals(d));
	SMIG_GUARD(peer_listen(d));
	SMIG_GUARD(ctl_open(d));
	SMIG_GUARD(metrics_open(d));
	SMIG_GUARD(peer_attest_rounds(d));
	SMIG_GUARD(certs_start(d));
	if (sandbox)
		SMIG_GUARD(enter_sandbox(d, uid, gid));
	SMIG_GUARD(store_start(d)); /* its thread inside the sandbox */
	return vm_load_all(d);
}

void smigd_stop(struct smigd *d)
{
	bool running = false;

	/* QEMUs outlive smigd: their owner records must wait for the next one */
	for (struct vm *vm = d->vms ? vm_first(d) : NULL; vm; vm = vm_next(vm))
		running = running || vm_qemu_alive(vm);
	store_keep_lease(d, running);
	/* from the top down */
	if (d->loop) {
		metrics_close(d);
		ctl_close_all(d);
		evac_free(d);
		mig_free_all(d);
		peer_close_all(d);
		loop_watch_del(d->loop, d->sig_w);
		certs_stop(d);
	}
	peer_free_all(d);
	vm_fence_stop(d);
	vm_free_all(d);
	attest_free(d);
	authz_free(d);
	store_free(d);
	monitor_free(d);
	audit_close(d);
	reply_free(d);
	hosts_free(d);
	EVP_PKEY_free(d->host_key);
	if (d->sig_fd >= 0)
		close(d->sig_fd);
	priv_close(d->priv);
	loop_free(d->loop);
	smig_tls_ctx_free(d->tls);
}

void smigd_ready(struct smigd *d)
{
	struct smig_pm r;

	if (d->priv && priv_call(d->priv, &r, SMIG_PM_READY) < 0)
		smig_warn("event=ready_not_told reason=\"the warden did not answer\"");
}
