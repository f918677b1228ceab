/*
 * keys.c - each vTPM's state key, kept by the warden: 32 random bytes that swtpm
 * encrypts the VM's TPM state with. It lives in STATE_DIR/vtpm-keys/
 * (root only), never beside the state it protects (the VM's tpm/,
 * which the VM's own uid owns), reaches swtpm through a descriptor, moves
 * to a destination inside the migration's encrypted channel, and is
 * overwritten on disk before it is unlinked when the VM leaves or goes.
 */
#include "warden/wd_int.h"
#include "error.h"
#include "file.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TPM_KEY_LEN 32

static int key_path(const struct warden *w, const char *vm, char *out, size_t outlen)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/vtpm-keys", w->cfg.state_dir);
	SMIG_GUARD(smig_file_mkdirs(dir, 0700));
	SMIG_ENSURE(snprintf(out, outlen, "%s/%s.key", dir, vm) < (int)outlen, SMIG_EINVAL);
	return 0;
}

int wd_tpm_key_set(struct warden *w, const char *vm, const uint8_t *key, size_t len)
{
	char path[PATH_MAX];

	SMIG_ENSURE(len == TPM_KEY_LEN, SMIG_EINVAL);
	SMIG_GUARD(key_path(w, vm, path, sizeof(path)));
	return smig_file_write_atomic(path, key, len, 0600);
}

int wd_tpm_key_get(struct warden *w, const char *vm, uint8_t *key, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	SMIG_GUARD(key_path(w, vm, path, sizeof(path)));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	SMIG_ENSURE(fd >= 0, SMIG_ENOENT);
	n = read(fd, key, len);
	close(fd);
	return n == (ssize_t)len ? 0 : SMIG_EIO;
}

int wd_tpm_key_open(struct wvm *v)
{
	uint8_t key[TPM_KEY_LEN];
	char path[PATH_MAX];
	int rc = 0;

	if (key_path(v->w, v->spec.name, path, sizeof(path)) < 0)
		return -1;
	if (access(path, F_OK) != 0) { /* the VM's first start: a key of its own for life */
		if (RAND_bytes(key, sizeof(key)) != 1)
			return -1;
		rc = smig_file_write_atomic(path, key, sizeof(key), 0600);
		OPENSSL_cleanse(key, sizeof(key));
	}
	return rc < 0 ? -1 : open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

void wd_tpm_key_wipe(struct warden *w, const char *vm)
{
	uint8_t noise[TPM_KEY_LEN];
	char path[PATH_MAX];
	struct stat st;
	int fd;

	if (key_path(w, vm, path, sizeof(path)) < 0)
		return;
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	/* the state it encrypted may linger in freed blocks: without the key it is noise */
	if (fstat(fd, &st) == 0 && RAND_bytes(noise, sizeof(noise)) == 1) {
		for (off_t off = 0; off < st.st_size; off += (off_t)sizeof(noise))
			if (pwrite(fd, noise, sizeof(noise), off) < 0)
				break;
		if (fdatasync(fd) < 0)
			smig_warn("event=vtpm_key_wipe_unsynced vm=%s reason=\"%s\"", vm,
				  strerror(errno));
	}
	close(fd);
	if (unlink(path) < 0)
		smig_warn("event=vtpm_key_unlink_failed vm=%s reason=\"%s\"", vm, strerror(errno));
	else
		smig_debug("event=vtpm_key_wiped vm=%s", vm);
}
