/*
 * file.c - permission checks, whole-file reads and atomic writes (file.h).
 */
#include "file.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/crypto.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a private key file must be: regular, its owner's (root or ours) alone. */
static int private_ok(const char *path, const struct stat *st, char *err, size_t errlen)
{
	if (!S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "%s: a private key must be a regular file", path);
		return SMIG_EPERM;
	}
	if (st->st_uid != 0 && st->st_uid != geteuid()) {
		snprintf(err, errlen,
			 "%s: private key belongs to uid %u, neither root nor this process's "
			 "user (uid %u), who could replace it; run chown %u %s",
			 path, (unsigned)st->st_uid, (unsigned)geteuid(), (unsigned)geteuid(),
			 path);
		return SMIG_EPERM;
	}
	if (st->st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen,
			 "%s: private key is accessible by group or others (mode %04o); "
			 "run chmod 600 %s",
			 path, (unsigned)(st->st_mode & 07777), path);
		return SMIG_EPERM;
	}
	return 0;
}

int smig_file_check_private(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? SMIG_ENOENT : SMIG_EIO;
	}
	return private_ok(path, &st, err, errlen);
}

int smig_file_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return SMIG_EIO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int smig_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	int fd;

	SMIG_ENSURE(snprintf(tmp, sizeof(tmp), "%s.tmp", path) < (int)sizeof(tmp), SMIG_EINVAL);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	SMIG_ENSURE(fd >= 0, SMIG_EIO);
	if (fchmod(fd, mode) < 0)
		goto fail;
	if (smig_file_write_all(fd, data, len) < 0 || fsync(fd) < 0)
		goto fail;
	close(fd);
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return SMIG_EIO;
	}
	return 0;
fail:
	close(fd);
	unlink(tmp);
	return SMIG_EIO;
}

int smig_file_sync_dir(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int fd, rc;

	SMIG_ENSURE(snprintf(dir, sizeof(dir), "%s", path) < (int)sizeof(dir), SMIG_EINVAL);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	SMIG_ENSURE(fd >= 0, SMIG_EIO);
	rc = fsync(fd) < 0 ? SMIG_EIO : 0;
	close(fd);
	return rc;
}

int smig_file_mkdirs(const char *dir, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t n = strlen(dir);

	SMIG_ENSURE(n > 0 && n < sizeof(tmp), SMIG_EINVAL);
	memcpy(tmp, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return SMIG_EIO;
		tmp[i] = i < n ? '/' : '\0';
	}
	return 0;
}

/* Reads fd's whole regular file (at most max bytes) into *out; closes fd. */
static int read_fd(int fd, const char *path, size_t max, char **out, size_t *len, char *err,
		   size_t errlen)
{
	struct stat st;
	size_t got = 0;
	char *text;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		snprintf(err, errlen, "%s: not a regular file of at most %zu bytes", path, max);
		close(fd);
		return SMIG_ETOOBIG;
	}
	text = malloc((size_t)st.st_size + 1);
	if (text == NULL) {
		close(fd);
		return SMIG_ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, text + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (got != (size_t)st.st_size) {
		snprintf(err, errlen, "%s: short read", path);
		OPENSSL_cleanse(text, (size_t)st.st_size + 1);
		free(text);
		return SMIG_EIO;
	}
	text[got] = '\0';
	*out = text;
	*len = got;
	return 0;
}

static int open_read(const char *path, char *err, size_t errlen, int *fd)
{
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd >= 0)
		return 0;
	snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
	return errno == ENOENT ? SMIG_ENOENT : SMIG_EIO;
}

int smig_file_read(const char *path, size_t max, char **out, size_t *len, char *err,
		   size_t errlen)
{
	int fd;

	SMIG_GUARD(open_read(path, err, errlen, &fd));
	return read_fd(fd, path, max, out, len, err, errlen);
}

int smig_file_read_stream(const char *path, size_t max, uint8_t **out, size_t *len, char *err,
			  size_t errlen)
{
	size_t cap = (size_t)64 * 1024, got = 0;
	uint8_t *buf = malloc(cap);
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || buf == NULL) {
		snprintf(err, errlen, "%s: %s", path, fd < 0 ? strerror(errno) : "out of memory");
		if (fd >= 0)
			close(fd);
		free(buf);
		return fd < 0 ? SMIG_ENOENT : SMIG_ENOMEM;
	}
	for (;;) {
		ssize_t r;

		if (got == cap) {
			/* one byte past max tells a file that is too big */
			size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			uint8_t *nb = ncap > cap ? realloc(buf, ncap) : NULL;

			if (nb == NULL) {
				snprintf(err, errlen, "%s: more than %zu bytes", path, max);
				close(fd);
				free(buf);
				return SMIG_ETOOBIG;
			}
			buf = nb;
			cap = ncap;
		}
		r = read(fd, buf + got, cap - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			close(fd);
			free(buf);
			return SMIG_EIO;
		}
		if (r == 0)
			break;
		got += (size_t)r;
		if (got > max) {
			snprintf(err, errlen, "%s: more than %zu bytes", path, max);
			close(fd);
			free(buf);
			return SMIG_ETOOBIG;
		}
	}
	close(fd);
	*out = buf;
	*len = got;
	return 0;
}

int smig_file_read_private(const char *path, size_t max, char **out, size_t *len, char *err,
			   size_t errlen)
{
	struct stat st;
	int fd, rc;

	SMIG_GUARD(open_read(path, err, errlen, &fd));
	/* the file opened is the file checked: no swap between the two */
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return SMIG_EIO;
	}
	rc = private_ok(path, &st, err, errlen);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return read_fd(fd, path, max, out, len, err, errlen);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int smig_file_rmtree(const char *dir)
{
	return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void smig_file_rotated_name(const char *path, int k, char *out, size_t len)
{
	if (k)
		snprintf(out, len, "%s.%d", path, k);
	else
		snprintf(out, len, "%s", path);
}

/* Keeps the first failure (not ENOENT) of what was tried on name. */
static int first_failure(int rc, const char *what, const char *name, char *err, size_t errlen)
{
	if (rc < 0 || errno == ENOENT)
		return rc;
	snprintf(err, errlen, "%s %s: %s", what, name, strerror(errno));
	return SMIG_EIO;
}

int smig_file_drop_rotated(const char *path, int from, char *err, size_t errlen)
{
	char name[PATH_MAX + 16];
	int rc = 0;

	for (int k = from < 1 ? 1 : from; k <= SMIG_FILE_ROTATED_MAX; k++) {
		smig_file_rotated_name(path, k, name, sizeof(name));
		if (unlink(name) < 0)
			rc = first_failure(rc, "remove", name, err, errlen);
	}
	return rc;
}

int smig_file_shift(const char *path, int keep, char *err, size_t errlen)
{
	char from[PATH_MAX + 16], to[PATH_MAX + 16];
	int rc = smig_file_drop_rotated(path, keep, err, errlen);

	for (int k = keep - 1; k >= 0; k--) {
		smig_file_rotated_name(path, k, from, sizeof(from));
		smig_file_rotated_name(path, k + 1, to, sizeof(to));
		if (rename(from, to) < 0)
			rc = first_failure(rc, "rename", from, err, errlen);
	}
	return rc;
}
