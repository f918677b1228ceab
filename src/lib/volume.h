/*
 * volume.h - opening a volume of a pool the way a destination must: by a
 * plain name, beneath the pool's directory, through no symbolic link,
 * never leaving the pool's file system, and only a regular file. The
 * descriptor goes to QEMU; QEMU never sees the path.
 *
 * A qcow2 image that names a backing file or an external data file is
 * refused: QEMU would open that path itself, and the path is whatever the
 * image's header says.
 */
#ifndef SMIG_VOLUME_H
#define SMIG_VOLUME_H

#include "catalog.h"
#include "vmspec.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * Opens volume in pool (O_RDONLY or O_RDWR in flags, O_CLOEXEC added);
 * *hostile is set when the name or the file looked like an escape (a
 * symlink, another file system, not a regular file) rather than a mistake.
 */
int smig_volume_open(const struct smig_pool *pool, const char *volume, int flags, int *fd,
		     bool *hostile, char *err, size_t errlen);
/*
 * The volume ref names, through the catalogue: opened as above, and a
 * qcow2 image checked (below). err starts with what ("disks[0]: ...").
 */
int smig_volume_open_ref(const struct smig_catalog *cat, const struct smig_volref *ref,
			 int flags, bool qcow2, const char *what, int *fd, bool *hostile, char *err,
			 size_t errlen);
/* Refuses a qcow2 image (open fd) with a backing file or an external data file. */
int smig_volume_check_qcow2(int fd, const char *what, char *err, size_t errlen);
/*
 * Creates volume in pool as a copy of template (a file of the host's
 * config), unless it exists; 0 when it exists or was made.
 */
int smig_volume_create_from(const struct smig_pool *pool, const char *volume,
			    const char *template_path, char *err, size_t errlen);

#endif
