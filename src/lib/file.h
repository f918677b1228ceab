/*
 * file.h - small file helpers with the permission rules smig lives by:
 * private keys are 0600 and refused when group or world can read them;
 * files are replaced atomically (write, fsync, rename).
 */
#ifndef SMIG_FILE_H
#define SMIG_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * 0, or SMIG_EPERM with a message if path is accessible by group or
 * others, is not a regular file, or belongs to someone other than root or
 * this process's effective user (who could replace it).
 */
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
/*
 * As smig_file_read, for a private key: the file opened must pass the
 * checks of smig_file_check_private. The caller cleanses *out before it
 * frees it.
 */
/*
 * Reads a file to its end, whatever size stat reports (the kernel's
 * pseudo files: securityfs, sysfs, proc), at most max bytes.
 */
int smig_file_read_stream(const char *path, size_t max, uint8_t **out, size_t *len, char *err,
			  size_t errlen);
int smig_file_read_private(const char *path, size_t max, char **out, size_t *len, char *err,
			   size_t errlen);
/* fsyncs the directory that holds path, so that a rename or a new name in it lasts. */
int smig_file_sync_dir(const char *path);
/* Creates dir (and parents) with mode if missing. */
int smig_file_mkdirs(const char *dir, mode_t mode);
/* Removes dir and everything beneath it, following no symlink; 0 or -1 with errno. */
int smig_file_rmtree(const char *dir);

/*
 * Rotated files: path.1 (newest) .. path.N, numbered at most
 * SMIG_FILE_ROTATED_MAX. smig_file_rotated_name: path.k, path itself for 0.
 * smig_file_drop_rotated: removes path.k for every k >= from.
 * smig_file_shift: makes room for a new path: drops path.keep and above,
 * then path.k becomes path.k+1 and path becomes path.1. Both go on past a
 * failure and return the first (not ENOENT), with err saying which file.
 */
#define SMIG_FILE_ROTATED_MAX 1000
void smig_file_rotated_name(const char *path, int k, char *out, size_t len);
int smig_file_drop_rotated(const char *path, int from, char *err, size_t errlen);
int smig_file_shift(const char *path, int keep, char *err, size_t errlen);

#endif
