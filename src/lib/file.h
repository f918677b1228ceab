/*
 * file.h - small file helpers with the permission rules smig lives by:
 * private keys are 0600 and refused when group or world can read them;
 * files are replaced atomically (write, fsync, rename).
 */
#ifndef SMIG_FILE_H
#define SMIG_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* 0, or SMIG_EPERM with a message if path is readable by group or others. */
int smig_file_check_private(const char *path, char *err, size_t errlen);
/* Writes all of data to fd (retrying short writes and EINTR); 0 or SMIG_EIO. */
int smig_file_write_all(int fd, const void *data, size_t len);
/* Writes data to path.tmp with mode, fsyncs it and renames it over path. */
int smig_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/*
 * Reads a whole regular file of at most max bytes into *out (malloc'd,
 * NUL-terminated; *len without the NUL). SMIG_ENOENT, SMIG_ETOOBIG or
 * SMIG_EIO with err saying which file and why.
 */
int smig_file_read(const char *path, size_t max, char **out, size_t *len, char *err,
		   size_t errlen);
/* Creates dir (and parents) with mode if missing. */
int smig_file_mkdirs(const char *dir, mode_t mode);
/* Removes dir and everything beneath it, following no symlink; 0 or -1 with errno. */
int smig_file_rmtree(const char *dir);

#endif
