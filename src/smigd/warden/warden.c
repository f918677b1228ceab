/*
 * warden.c - smigd's privileged parent: its life from start to stop, and
 * the worker it runs.
 *
 * smigd starts as root and stays small: it opens what needs root (the
 * audit log, the host key, the host TPM, nftables, the VMs' volumes and
 * taps), starts and confines the VMs' processes, and answers the worker's
 * requests (serve.c). The worker is this same binary executed afresh
 * (fexecve of the file the warden runs from, so both always speak the
 * same protocol) with `--worker FD`: it does the TLS, the peers, the
 * control socket and the migrations as the unprivileged worker user in a
 * sandbox, and dies with the warden (PR_SET_PDEATHSIG). When the worker
 * dies the warden starts another, at once the first time, then backing
 * off while it keeps dying young; the VMs keep running meanwhile and the
 * new worker takes them over as a restarted smigd would.
 *
 * SIGTERM/SIGINT: the worker is told to stop, then the warden writes its
 * last audit records and exits; the VMs' processes live on. SIGHUP: the
 * config is read again and, if it parses, this host's certificate and key
 * (hostcert.c: a renewed pair goes to the worker, EV_TLS), then the
 * config, the host table, the policy and the IVT go to the worker
 * (EV_RELOAD).
 */
#include "warden/wd_int.h"
#include "common/startcheck.h"
#include "warden/warden.h"
#include "error.h"
#include "file.h"
#include "log.h"
#include "sign.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKER_YOUNG_MS 10000
#define WORKER_STOP_MS 10000

extern char **environ;

static void worker_spawn(void *arg);

/* Makes dir (below STATE_DIR) the worker's own, with mode, whatever it was. */
static int worker_dir(struct warden *w, const char *leaf, mode_t mode)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", w->cfg.state_dir, leaf);
	if (smig_file_mkdirs(path, 0700) < 0 || chown(path, w->worker_uid, w->worker_gid) < 0 ||
	    chmod(path, mode) < 0) {
		smig_err("event=worker_dir_failed path=%s reason=\"%s\"", path, strerror(errno));
		return SMIG_EIO;
	}
	return 0;
}

/* The sockets an earlier worker left in STATE_DIR/mig (it died mid-migration). */
static void mig_dir_purge(const struct warden *w)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *dp;
	int dfd;

	snprintf(path, sizeof(path), "%s/mig", w->cfg.state_dir);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	dp = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (dp == NULL) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	while ((e = readdir(dp)) != NULL)
		if (e->d_name[0] != '.')
			(void)unlinkat(dfd, e->d_name, 0);
	closedir(dp);
}

int wd_worker_dirs(struct warden *w)
{
	SMIG_GUARD(worker_dir(w, "worker", 0700));
	SMIG_GUARD(worker_dir(w, "consoles", 0700));
	/*
	 * the sockets QEMUs connect their migration channels to: a VM's uid
	 * passes through, by a name it is told (mig_chan.c), and lists nothing
	 */
	return worker_dir(w, "mig", 0711);
}

/* --- the worker process --- */

static void on_sock(void *arg, uint32_t events);

static void sock_close(struct warden *w)
{
	if (w->sock < 0)
		return;
	loop_watch_del(w->loop, w->sock_w);
	w->sock_w = NULL;
	close(w->sock);
	w->sock = -1;
}

static void worker_spawn(void *arg)
{
	struct warden *w = arg;
	int sv[2], big = 8 << 20;
	char fd_arg[16];
	pid_t warden = getpid(), pid;

	w->restart_t = NULL;
	if (w->stopping)
		return;
	mig_dir_purge(w); /* what a worker that died mid-migration left */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		smig_err("event=worker_start_failed reason=\"socketpair: %s\"", strerror(errno));
		(void)loop_timer_add(w->loop, 1000, worker_spawn, w, &w->restart_t);
		return;
	}
	/* whole documents (config, IVT) go in one datagram each way */
	for (int i = 0; i < 2; i++) {
		(void)setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
		(void)setsockopt(sv[i], SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	}
	pid = fork();
	if (pid == 0) {
		char *argv[8];
		sigset_t none;
		int n = 0;

		/* the worker never outlives the warden, not even stopped */
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != warden)
			_exit(1);
		(void)fcntl(sv[1], F_SETFD, 0);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		snprintf(fd_arg, sizeof(fd_arg), "%d", sv[1]);
		argv[n++] = "smigd";
		argv[n++] = "--worker";
		argv[n++] = fd_arg;
		argv[n++] = "--config";
		argv[n++] = w->cfg.path;
		if (w->foreground)
			argv[n++] = "--foreground";
		argv[n] = NULL;
		fexecve(w->self_exe, argv, environ);
		dprintf(2, "smigd: cannot run the worker: %s\n", strerror(errno));
		_exit(127);
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		smig_err("event=worker_start_failed reason=\"fork: %s\"", strerror(errno));
		(void)loop_timer_add(w->loop, 1000, worker_spawn, w, &w->restart_t);
		return;
	}
	w->sock = sv[0];
	w->worker_pid = pid;
	w->worker_started_ms = loop_now_ms();
	if (loop_watch_add(w->loop, w->sock, EPOLLIN, on_sock, w, &w->sock_w) < 0)
		sock_close(w);
	smig_info("event=worker_started pid=%d user=%s restarts=%u", (int)pid, w->cfg.worker_user,
		  w->restarts);
	wd_measure_send(w); /* waits in the socket until the worker reads */
}

/* The worker is gone (reaped): start another, sooner or later. */
static void worker_died(struct warden *w, int status)
{
	uint64_t ran = loop_now_ms() - w->worker_started_ms;
	uint64_t delay;

	sock_close(w);
	w->worker_pid = 0;
	if (w->stopping) {
		loop_stop(w->loop);
		return;
	}
	smig_err("event=worker_died status=%d ran_ms=%llu action=restart",
		 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
		 (unsigned long long)ran);
	(void)wd_audit_write(w, "smigd", "worker.restart", w->cfg.host, "none", "-", "died",
			     WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "exited", NULL);
	if (ran > WORKER_YOUNG_MS)
		w->restarts = 0;
	delay = w->restarts == 0 ? 0 : (uint64_t)1000 << (w->restarts > 5 ? 5 : w->restarts - 1);
	w->restarts++;
	(void)loop_timer_add(w->loop, delay, worker_spawn, w, &w->restart_t);
}

static void on_sock(void *arg, uint32_t events)
{
	struct warden *w = arg;
	int fds[SMIG_PM_FDS_MAX];
	size_t len, nfds;

	(void)events;
	while (w->sock >= 0) {
		int rc = smig_pm_recv(w->sock, w->rx, SMIG_PM_MAX, &len, fds, &nfds);

		if (rc == SMIG_EAGAIN)
			return;
		if (rc == SMIG_EPROTO) {
			wd_violation(w, "datagram", "too large, or with more descriptors than any "
				     "request has");
			continue;
		}
		if (rc < 0) { /* the worker's end closed: its exit is reaped through SIGCHLD */
			sock_close(w);
			if (w->worker_pid > 0)
				kill(w->worker_pid, SIGKILL);
			if (w->serve_only)
				loop_stop(w->loop);
			return;
		}
		wd_serve(w, w->rx, len, fds, nfds);
	}
}

/* --- signals --- */

static void reload(struct warden *w)
{
	struct smig_config cfg;
	char err[512], *texts[5] = { NULL, NULL, NULL, NULL, NULL };
	const char *paths[4];
	size_t len;

	smig_info("event=reload_start config=%s", w->cfg.path);
	wd_notify(w, WD_RELOADING);
	/* read once: what is parsed, measured and sent to the worker is the same text */
	if (smig_file_read(w->cfg.path, SMIG_PM_DOC_MAX, &texts[0], &len, err, sizeof(err)) < 0 ||
	    smig_config_parse(w->cfg.path, texts[0], len, &cfg, err, sizeof(err)) < 0) {
		free(texts[0]);
		smig_err("event=reload_failed reason=\"%s\" action=kept_previous", err);
		(void)wd_audit_write(w, "smigd", "config.reload", w->cfg.path, "none", "-", "failed",
				     err, NULL);
		wd_notify(w, WD_RELOADED); /* the old config serves on */
		return;
	}
	memcpy(w->cfg.sha256, cfg.sha256, sizeof(cfg.sha256));
	w->cfg.log_level = cfg.log_level;
	w->cfg.audit_checkpoint_records = cfg.audit_checkpoint_records;
	memcpy(w->cfg.ivt_file, cfg.ivt_file, sizeof(cfg.ivt_file));
	memcpy(w->cfg.components, cfg.components, sizeof(cfg.components));
	w->cfg.ncomponents = cfg.ncomponents;
	memcpy(w->cfg.tls_ca, cfg.tls_ca, sizeof(cfg.tls_ca));
	memcpy(w->cfg.tls_cert, cfg.tls_cert, sizeof(cfg.tls_cert));
	memcpy(w->cfg.tls_key, cfg.tls_key, sizeof(cfg.tls_key));
	smig_log_set_level(cfg.log_level);
	/* the worker parses them itself; it cannot read them where they are */
	paths[0] = w->cfg.path;
	paths[1] = cfg.hosts_file;
	paths[2] = cfg.policy_file;
	paths[3] = cfg.ek_roots;
	for (int i = 1; i < 4; i++)
		if (paths[i][0] == '\0' ||
		    smig_file_read(paths[i], SMIG_PM_DOC_MAX, &texts[i], &len, err, sizeof(err)) < 0)
			texts[i] = strdup("");
	texts[4] = wd_ivt_text(w);
	/*
	 * this host's certificate first: the worker takes the new pair, then the
	 * table, which may list only the new one by now
	 */
	if (texts[1])
		wd_hostcert_table(w, cfg.hosts_file, texts[1]);
	(void)wd_hostcert_reload(w, "sighup");
	if (texts[0] && texts[1] && texts[2] && texts[3] && texts[4] &&
	    smig_pm_build(&w->tx, SMIG_PM_EV_RELOAD, 0, texts[0], texts[1], texts[2], texts[4],
			  texts[3]) == 0)
		wd_send(w, &w->tx, NULL, 0);
	for (int i = 0; i < 5; i++)
		free(texts[i]);
	wd_measure_now(w); /* the config in force changed: its measurement too */
	wd_notify(w, WD_RELOADED);
}

static void on_timeout_stop(void *arg)
{
	struct warden *w = arg;

	w->restart_t = NULL;
	if (w->worker_pid > 0) {
		smig_warn("event=worker_kill reason=\"no exit within %d ms of SIGTERM\"",
			  WORKER_STOP_MS);
		kill(w->worker_pid, SIGKILL);
	}
}

static void on_signal(void *arg, uint32_t events)
{
	struct warden *w = arg;
	struct signalfd_siginfo si;
	int status;

	(void)events;
	while (read(w->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			if (w->stopping)
				break;
			smig_info("event=shutdown signal=%s",
				  si.ssi_signo == SIGTERM ? "TERM" : "INT");
			w->stopping = true;
			wd_notify(w, WD_STOPPING);
			loop_timer_cancel(w->loop, w->restart_t);
			w->restart_t = NULL;
			if (w->worker_pid <= 0) {
				loop_stop(w->loop);
				break;
			}
			kill(w->worker_pid, SIGTERM);
			(void)loop_timer_add(w->loop, WORKER_STOP_MS, on_timeout_stop, w,
					     &w->restart_t);
			break;
		case SIGHUP:
			reload(w);
			break;
		case SIGCHLD:
			if (wd_reap(w, w->worker_pid, &status))
				worker_died(w, status);
			break;
		default:
			break;
		}
	}
}

static int signals(struct warden *w)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	SMIG_ENSURE(sigprocmask(SIG_BLOCK, &set, NULL) == 0, SMIG_EIO);
	w->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	SMIG_ENSURE(w->sig_fd >= 0, SMIG_EIO);
	return loop_watch_add(w->loop, w->sig_fd, EPOLLIN, on_signal, w, &w->sig_w);
}

/* --- start and stop --- */

/*
 * A pool others may enter holds disks that another VM's uid could read by
 * their mode: Landlock keeps every VM's QEMU out of pools all the same,
 * but without Landlock the mode is the only barrier, and smigd refuses.
 */
static int pools_closed(const struct warden *w)
{
	const struct smig_catalog *cat = &w->cfg.catalog;
	struct stat st;

	for (size_t i = 0; i < cat->npools; i++) {
		if (stat(cat->pools[i].path, &st) < 0 || (st.st_mode & 0007) == 0)
			continue;
		if (w->confine.landlock_abi == 0) {
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

static int confinement(struct warden *w)
{
	char err[512];

	if (smig_file_mkdirs(w->cfg.state_dir, 0711) < 0 || chmod(w->cfg.state_dir, 0711) < 0) {
		smig_err("event=state_dir_failed path=%s reason=\"%s\"", w->cfg.state_dir,
			 strerror(errno));
		return SMIG_EIO;
	}
	if (confine_host_init(&w->confine, &w->cfg, err, sizeof(err)) < 0) {
		smig_err("event=confinement_failed reason=\"%s\"", err);
		return SMIG_ECONFIG;
	}
	smig_info("event=confinement cgroups=\"%s\" landlock_abi=%d vm_uids=%u-%u worker=%s(%u)",
		  confine_cg_name(w->confine.cg), w->confine.landlock_abi, w->cfg.vm_uid_first,
		  w->cfg.vm_uid_first + w->cfg.vm_uid_count - 1, w->cfg.worker_user,
		  (unsigned)w->worker_uid);
	if (w->confine.cg == CONFINE_CG_NONE)
		smig_warn("event=vm_memory_unlimited reason=\"confinement.cgroups is false\"");
	if (w->confine.landlock_abi == 0)
		smig_warn("event=landlock_missing reason=\"the kernel offers no Landlock: VMs' "
			  "processes and the worker keep the file access their uid has\"");
	SMIG_GUARD(pools_closed(w));
	return wd_worker_dirs(w);
}

static int warden_start(struct warden *w, const char *config_path)
{
	char err[512];

	if (smig_config_load(config_path, &w->cfg, err, sizeof(err)) < 0 ||
	    startcheck_state_dir(w->cfg.state_dir, err, sizeof(err)) < 0 ||
	    startcheck_worker_user(&w->cfg, &w->worker_uid, &w->worker_gid, err, sizeof(err)) < 0 ||
	    startcheck_control_dir(&w->cfg, true, err, sizeof(err)) < 0) {
		smig_err("event=config_invalid reason=\"%s\"", err);
		return SMIG_ECONFIG;
	}
	smig_log_init("smigd", w->cfg.log_level, w->cfg.log_syslog);
	smig_log_stop_at(NULL); /* stop points are the worker's (its migrations) */
	SMIG_GUARD(confinement(w));
	SMIG_GUARD(loop_new(&w->loop));
	SMIG_GUARD(wd_log_open(w));
	SMIG_GUARD(wd_hostcert_open(w));
	w->self_exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	w->rx = malloc(SMIG_PM_MAX);
	SMIG_ENSURE(w->self_exe >= 0 && w->rx != NULL, SMIG_EIO);
	smig_buf_init(&w->tx, SMIG_PM_MAX);
	SMIG_GUARD(wd_audit_open(w));
	if (smig_qemu_caps_probe(w->cfg.qemu_binary, &w->caps, err, sizeof(err)) < 0) {
		smig_err("event=qemu_probe_failed reason=\"%s\"", err);
		return SMIG_ECONFIG;
	}
	SMIG_GUARD(wd_measure_open(w));
	SMIG_GUARD(wd_bans_open(w));
	SMIG_GUARD(wd_vm_load_all(w));
	return signals(w);
}

static void warden_stop(struct warden *w)
{
	if (w->worker_pid > 0) {
		kill(w->worker_pid, SIGKILL);
		(void)waitpid(w->worker_pid, NULL, 0);
	}
	if (w->loop) {
		sock_close(w);
		loop_timer_cancel(w->loop, w->restart_t);
		loop_watch_del(w->loop, w->sig_w);
	}
	/* the worker made it as root, and may not remove it from where it is */
	if (!w->serve_only && w->cfg.control_socket[0])
		(void)unlink(w->cfg.control_socket);
	wd_measure_close(w);
	wd_bans_close(w);
	wd_audit_close(w);
	wd_hostcert_close(w);
	wd_log_close(w);
	wd_vm_free_all(w);
	if (w->sig_fd >= 0)
		close(w->sig_fd);
	if (w->self_exe >= 0)
		close(w->self_exe);
	EVP_PKEY_free(w->host_key);
	smig_buf_clear(&w->tx);
	free(w->rx);
	loop_free(w->loop);
}

static int daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return SMIG_EIO;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return SMIG_EIO;
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return 0;
}

int warden_main(const char *config_path, bool foreground)
{
	struct warden w = { .sig_fd = -1, .sock = -1, .self_exe = -1, .foreground = foreground };
	int rc = warden_start(&w, config_path);

	if (rc == 0 && !foreground) {
		rc = daemonize();
		smig_log_init("smigd", w.cfg.log_level, true);
	}
	if (rc == 0) {
		smig_info("event=started host=%s version=%s pid=%d role=warden", w.cfg.host,
			  SMIG_VERSION, (int)getpid());
		worker_spawn(&w);
		rc = loop_run(w.loop);
	}
	warden_stop(&w);
	if (rc == 0)
		smig_info("event=stopped");
	return rc == 0 ? 0 : 1;
}

int warden_serve(const char *config_path, int fd)
{
	struct warden w = { .sig_fd = -1, .sock = -1, .self_exe = -1, .foreground = true,
			    .serve_only = true };
	int rc = warden_start(&w, config_path);

	if (rc == 0) {
		w.sock = fd;
		rc = loop_watch_add(w.loop, fd, EPOLLIN, on_sock, &w, &w.sock_w);
	} else {
		close(fd);
	}
	if (rc == 0) {
		wd_measure_send(&w);
		rc = loop_run(w.loop);
	}
	warden_stop(&w);
	return rc == 0 ? 0 : 1;
}

int warden_measure(const char *config_path)
{
	struct smig_config cfg;
	char err[512];

	if (smig_config_load(config_path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "smigd: %s\n", err);
		return 1;
	}
	return wd_measure_print(&cfg) == 0 ? 0 : 1;
}
