/*
 * startcheck.c - what a start of smigd needs beyond a valid config, asked
 * by the warden before it starts anything and by `smigd --check-config`
 * (startcheck.h).
 */
#include "common/startcheck.h"
#include "error.h"
#include "file.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

/*
 * The VMs' processes run as uids of their own and reach their directories
 * below STATE_DIR (docs/configuration.md, "Confinement"): every directory
 * above it must let others pass (o+x); STATE_DIR itself is made so.
 */
int startcheck_state_dir(const char *state_dir, char *err, size_t errlen)
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

int startcheck_worker_user(const struct smig_config *cfg, uid_t *uid, gid_t *gid, char *err,
			   size_t errlen)
{
	struct passwd *pw = getpwnam(cfg->worker_user);

	if (pw == NULL || pw->pw_uid == 0) {
		snprintf(err, errlen, "confinement.worker_user %s: %s; make it a system user of its "
			 "own (useradd --system --user-group --no-create-home --home-dir "
			 "/nonexistent --shell /usr/sbin/nologin %s), or name another",
			 cfg->worker_user, pw ? "is root" : "no such user", cfg->worker_user);
		return SMIG_ECONFIG;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

/* The nearest existing directory at or above path (path itself cut in place). */
static bool nearest_dir(char *path, struct stat *st)
{
	char *slash;

	for (;;) {
		if (stat(path, st) == 0)
			return S_ISDIR(st->st_mode);
		if ((slash = strrchr(path, '/')) == NULL || slash == path)
			return stat("/", st) == 0;
		*slash = '\0';
	}
}

int startcheck_control_dir(const struct smig_config *cfg, bool create, char *err,
			   size_t errlen)
{
	const char *sock = cfg->control_socket;
	struct sockaddr_un sa;
	char dir[PATH_MAX], up[PATH_MAX];
	struct stat st;
	char *slash;

	if (strlen(sock) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "control.socket %s: longer than the %zu bytes a socket path "
			 "may have: choose a shorter path (e.g. /run/smig/smigd.sock)",
			 sock, sizeof(sa.sun_path) - 1);
		return SMIG_ECONFIG;
	}
	snprintf(dir, sizeof(dir), "%s", sock);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0; /* the current directory, or / */
	*slash = '\0';
	if (stat(dir, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		snprintf(err, errlen, "control.socket %s: %s is not a directory", sock, dir);
		return SMIG_ECONFIG;
	}
	snprintf(up, sizeof(up), "%s", dir);
	if (!nearest_dir(up, &st)) {
		snprintf(err, errlen, "control.socket %s: %s is not a directory", sock, up);
		return SMIG_ECONFIG;
	}
	if (!create)
		return 0; /* a start makes it (root's, 0755), as /run/smig under systemd */
	if (smig_file_mkdirs(dir, 0755) < 0) {
		snprintf(err, errlen, "control.socket %s: cannot make %s: %s", sock, dir,
			 strerror(errno));
		return SMIG_EIO;
	}
	return 0;
}
