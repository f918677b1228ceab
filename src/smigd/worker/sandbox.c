/*
 * sandbox.c - the worker gives up root (sandbox.h). In this order, because
 * each step needs what the next takes away:
 *
 *  1. a mount namespace of its own, every mount private to it;
 *  2. a Landlock ruleset built while still root: read the system's
 *     libraries and the few files glibc's name service reads, /proc (its
 *     own status, QEMUs' liveness, the host's memory), the audit log's
 *     directory; change only its own directories (STATE_DIR/worker, the
 *     consoles, a test build's trace directory) and make sockets only in
 *     STATE_DIR/mig (a migration's parallel channels); execute nothing; bind
 *     only its peer port; no signals or abstract sockets outside itself;
 *  3. the capability bounding set emptied, then the worker user's uid and
 *     gid, no supplementary groups: no capabilities are left (and the
 *     parent-death signal the new uid cleared is set again);
 *  4. no_new_privs, not dumpable (no core with the TLS key in it, no
 *     ptrace by another process of the worker user), Landlock on;
 *  5. a seccomp filter (libseccomp): the system calls that run programs,
 *     make processes, trace or read other processes, mount, change
 *     namespaces, load code into the kernel or reach io_uring fail with
 *     EPERM; clone3 with ENOSYS (glibc then makes threads with clone,
 *     whose flags the filter can see: only ones sharing memory pass).
 *
 * Builds with AddressSanitizer keep ptrace and a memory-sharing clone that
 * LeakSanitizer's tracer needs, and stay dumpable; everything else holds.
 */
#include "worker/sandbox.h"
#include "common/landlock.h"
#include "error.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN 1
#endif
#endif

/* What the worker may change in its own directories. */
#define LL_OWN_DIR                                                                        \
	(LL_READ | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |        \
	 LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR |                   \
	 LANDLOCK_ACCESS_FS_MAKE_REG | LL_FS_TRUNCATE)

/* What the worker may read beyond what it was handed. */
static const char *const read_paths[] = {
	"/usr", "/lib", "/lib64", "/etc/ld.so.cache", "/etc/localtime", "/etc/passwd",
	"/etc/group", "/etc/nsswitch.conf", "/proc", "/sys/devices/system", "/dev/urandom",
	"/dev/null",
};

/* The worker's ruleset (its fd), or -1 with why in err. */
static int ll_ruleset(const struct sandbox_spec *s, int abi, char *err, size_t errlen)
{
	struct ll_set ll;
	int rc = 0;

	if (ll_open(&ll, abi, LL_NET_BIND_TCP, LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL) < 0) {
		snprintf(err, errlen, "landlock_create_ruleset: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; rc == 0 && i < ARRAY_LEN(read_paths); i++)
		rc = ll_allow_path(&ll, read_paths[i], LL_READ);
	for (size_t i = 0; rc == 0 && i < s->nread_dirs; i++)
		rc = ll_allow_path(&ll, s->read_dirs[i], LL_READ);
	for (size_t i = 0; rc == 0 && i < s->nown_dirs; i++)
		rc = ll_allow_fd(&ll, s->own_dirs[i], LL_OWN_DIR);
	if (rc == 0 && s->sock_dir >= 0)
		rc = ll_allow_fd(&ll, s->sock_dir, LL_OWN_DIR | LANDLOCK_ACCESS_FS_MAKE_SOCK);
	if (rc == 0)
		rc = ll_allow_port(&ll, LL_NET_BIND_TCP, s->port);
	if (rc < 0) {
		snprintf(err, errlen, "landlock_add_rule: %s", strerror(errno));
		close(ll.fd);
		return -1;
	}
	return ll.fd;
}

/* The system calls a compromised worker would want, and nothing the worker needs. */
static const int denied[] = {
	SCMP_SYS(execve), SCMP_SYS(execveat), SCMP_SYS(fork), SCMP_SYS(vfork),
	SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev), SCMP_SYS(pidfd_getfd),
	SCMP_SYS(mount), SCMP_SYS(umount2), SCMP_SYS(pivot_root), SCMP_SYS(chroot),
	SCMP_SYS(unshare), SCMP_SYS(setns), SCMP_SYS(move_mount), SCMP_SYS(open_tree),
	SCMP_SYS(fsopen), SCMP_SYS(fsconfig), SCMP_SYS(fsmount), SCMP_SYS(fspick),
	SCMP_SYS(kexec_load), SCMP_SYS(kexec_file_load), SCMP_SYS(init_module),
	SCMP_SYS(finit_module), SCMP_SYS(delete_module), SCMP_SYS(bpf),
	SCMP_SYS(perf_event_open), SCMP_SYS(keyctl), SCMP_SYS(add_key), SCMP_SYS(request_key),
	SCMP_SYS(userfaultfd), SCMP_SYS(open_by_handle_at), SCMP_SYS(name_to_handle_at),
	SCMP_SYS(swapon), SCMP_SYS(swapoff), SCMP_SYS(reboot), SCMP_SYS(acct),
	SCMP_SYS(settimeofday), SCMP_SYS(clock_settime), SCMP_SYS(clock_adjtime),
	SCMP_SYS(adjtimex), SCMP_SYS(syslog), SCMP_SYS(quotactl), SCMP_SYS(iopl),
	SCMP_SYS(ioperm), SCMP_SYS(personality), SCMP_SYS(io_uring_setup),
	SCMP_SYS(io_uring_enter), SCMP_SYS(io_uring_register), SCMP_SYS(fanotify_init),
	SCMP_SYS(mknod), SCMP_SYS(mknodat), SCMP_SYS(kcmp), SCMP_SYS(vhangup),
	SCMP_SYS(lookup_dcookie), SCMP_SYS(process_madvise),
#ifndef SANDBOX_ASAN
	SCMP_SYS(ptrace),
#endif
};

static int seccomp(char *err, size_t errlen)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int rc = ctx ? 0 : -ENOMEM;

	for (size_t i = 0; rc == 0 && i < ARRAY_LEN(denied); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), denied[i], 0);
	/* a new process needs clone without CLONE_VM: threads (and LSan's tracer) share memory */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
				      SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_VM, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc < 0)
		snprintf(err, errlen, "seccomp: %s", strerror(-rc));
	return rc < 0 ? SMIG_EIO : 0;
}

int sandbox_enter(const struct sandbox_spec *s, char *err, size_t errlen)
{
	int abi = ll_abi(), rs = -1;

	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		snprintf(err, errlen, "a mount namespace of its own: %s", strerror(errno));
		return SMIG_EIO;
	}
	if (abi > 0 && (rs = ll_ruleset(s, abi, err, errlen)) < 0)
		return SMIG_EIO;
	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			break;
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (setgroups(0, NULL) < 0 || setresgid(s->gid, s->gid, s->gid) < 0 ||
	    setresuid(s->uid, s->uid, s->uid) < 0) {
		snprintf(err, errlen, "cannot become uid %u: %s", (unsigned)s->uid, strerror(errno));
		goto fail;
	}
	/* the new uid cleared the parent-death signal: the worker still dies with the warden */
	if (s->parent > 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != s->parent)) {
		snprintf(err, errlen, "the warden is gone");
		goto fail;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, errlen, "no_new_privs: %s", strerror(errno));
		goto fail;
	}
#ifndef SANDBOX_ASAN
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
	if (rs >= 0 && syscall(SYS_landlock_restrict_self, rs, 0) < 0) {
		snprintf(err, errlen, "landlock_restrict_self: %s", strerror(errno));
		goto fail;
	}
	if (rs >= 0)
		close(rs);
	return seccomp(err, errlen);
fail:
	if (rs >= 0)
		close(rs);
	return SMIG_EPERM;
}
