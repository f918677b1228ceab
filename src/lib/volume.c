/*
 * volume.c - volumes opened beneath their pool (volume.h).
 */
#include "volume.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RESOLVE_POOL (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)

static int pool_dir(const struct smig_pool *pool, char *err, size_t errlen)
{
	int dfd = open(pool->path, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0)
		snprintf(err, errlen, "pool %s: cannot open its directory %s: %s", pool->name,
			 pool->path, strerror(errno));
	return dfd;
}

static int open_beneath(int dfd, const char *name, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC | O_NOCTTY),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_POOL,
	};

	return (int)syscall(SYS_openat2, dfd, name, &how, sizeof(how));
}

int smig_volume_open(const struct smig_pool *pool, const char *volume, int flags, int *fd,
		     bool *hostile, char *err, size_t errlen)
{
	struct stat st;
	int dfd, vfd, e;

	*hostile = false;
	*fd = -1;
	if (!smig_name_valid(volume)) {
		*hostile = true;
		snprintf(err, errlen, "pool %s: \"%.64s\" is not a plain volume name", pool->name,
			 volume);
		return SMIG_EINVAL;
	}
	SMIG_ENSURE((dfd = pool_dir(pool, err, errlen)) >= 0, SMIG_ENOENT);
	vfd = open_beneath(dfd, volume, (flags & O_ACCMODE) | O_NONBLOCK, 0);
	e = errno;
	close(dfd);
	if (vfd < 0) {
		*hostile = e == ELOOP || e == EXDEV;
		snprintf(err, errlen, "pool %s: volume %s: %s", pool->name, volume,
			 e == ENOENT  ? "no such volume in the pool"
			 : e == ELOOP ? "is a symbolic link; a volume must be a plain file in "
					"the pool"
			 : e == EXDEV ? "resolves outside the pool's file system"
				      : strerror(e));
		return e == ENOENT ? SMIG_ENOENT : SMIG_EPERM;
	}
	if (fstat(vfd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*hostile = true;
		snprintf(err, errlen, "pool %s: volume %s is not a regular file", pool->name,
			 volume);
		close(vfd);
		return SMIG_EPERM;
	}
	/* O_NONBLOCK was only for the open (a FIFO must not block us) */
	(void)fcntl(vfd, F_SETFL, fcntl(vfd, F_GETFL) & ~O_NONBLOCK);
	*fd = vfd;
	return 0;
}

int smig_volume_open_ref(const struct smig_catalog *cat, const struct smig_volref *ref,
			 int flags, bool qcow2, const char *what, int *fd, bool *hostile, char *err,
			 size_t errlen)
{
	const struct smig_pool *pool = smig_catalog_pool(cat, ref->pool);
	char e[256];
	int rc;

	*hostile = false;
	*fd = -1;
	if (pool == NULL) {
		snprintf(err, errlen, "%s: no pool %s on this host", what, ref->pool);
		return SMIG_ENOENT;
	}
	rc = smig_volume_open(pool, ref->volume, flags, fd, hostile, e, sizeof(e));
	if (rc == 0 && qcow2 && (rc = smig_volume_check_qcow2(*fd, ref->volume, e, sizeof(e))) < 0) {
		*hostile = true;
		close(*fd);
		*fd = -1;
	}
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", what, e);
	return rc;
}

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

int smig_volume_check_qcow2(int fd, const char *what, char *err, size_t errlen)
{
	uint8_t h[104];
	ssize_t r = pread(fd, h, sizeof(h), 0);
	uint32_t version;

	if (r < 72 || memcmp(h, "QFI\xfb", 4) != 0) {
		snprintf(err, errlen, "%s is not a qcow2 image (say \"format\": \"raw\" if it is raw)",
			 what);
		return SMIG_EINVAL;
	}
	version = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
	if (be64(h + 8) != 0) {
		snprintf(err, errlen,
			 "%s has a backing file, which QEMU would open by the path in the image; "
			 "flatten it (qemu-img convert -O qcow2) or make it raw",
			 what);
		return SMIG_EPERM;
	}
	/* incompatible feature bit 2: the guest's data lives in an external file */
	if (version >= 3 && r >= 80 && (be64(h + 72) & 4u) != 0) {
		snprintf(err, errlen,
			 "%s keeps its data in an external data file, which QEMU would open by "
			 "the path in the image; convert it (qemu-img convert -O qcow2)",
			 what);
		return SMIG_EPERM;
	}
	return 0;
}

static int copy_fd(int in, int out)
{
	char buf[65536];

	for (;;) {
		ssize_t r = read(in, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		SMIG_ENSURE(r >= 0, SMIG_EIO);
		if (r == 0)
			return fsync(out) == 0 ? 0 : SMIG_EIO;
		for (ssize_t off = 0; off < r;) {
			ssize_t w = write(out, buf + off, (size_t)(r - off));

			if (w < 0 && errno == EINTR)
				continue;
			SMIG_ENSURE(w > 0, SMIG_EIO);
			off += w;
		}
	}
}

int smig_volume_create_from(const struct smig_pool *pool, const char *volume,
			    const char *template_path, char *err, size_t errlen)
{
	int dfd, in, out, rc;

	SMIG_ENSURE(smig_name_valid(volume), SMIG_EINVAL);
	SMIG_ENSURE((dfd = pool_dir(pool, err, errlen)) >= 0, SMIG_ENOENT);
	out = open_beneath(dfd, volume, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (out < 0 && errno == EEXIST) {
		close(dfd);
		return 0;
	}
	if (out < 0) {
		snprintf(err, errlen, "pool %s: cannot create volume %s: %s", pool->name, volume,
			 strerror(errno));
		close(dfd);
		return SMIG_EIO;
	}
	in = open(template_path, O_RDONLY | O_CLOEXEC);
	rc = in < 0 ? SMIG_EIO : copy_fd(in, out);
	if (rc < 0) {
		snprintf(err, errlen, "pool %s: cannot fill volume %s from %s: %s", pool->name,
			 volume, template_path, strerror(errno));
		(void)unlinkat(dfd, volume, 0);
	}
	if (in >= 0)
		close(in);
	close(out);
	close(dfd);
	return rc;
}
