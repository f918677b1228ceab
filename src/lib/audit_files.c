/*
 * audit_files.c - a rotated set of audit logs read from disk (audit.h):
 * path.N .. path.1, then path, in the order the chain runs through them,
 * for smig_audit_verify_files().
 */
#include "audit.h"
#include "error.h"
#include "file.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void smig_audit_files_free(struct smig_audit_file *files, size_t n)
{
	for (size_t i = 0; files && i < n; i++) {
		free((char *)(uintptr_t)files[i].name); // NOLINT(performance-no-int-to-ptr)
		free((char *)(uintptr_t)files[i].text); // NOLINT(performance-no-int-to-ptr)
	}
	free(files);
}

int smig_audit_files_read(const char *path, size_t max, struct smig_audit_file **files,
			  size_t *n, char *err, size_t errlen)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char p[PATH_MAX + 16], name[PATH_MAX + 16];
	struct smig_audit_file *f;
	size_t top = 0;
	int rc = 0;

	*files = NULL;
	*n = 0;
	/* the highest number there is: a file missing below it reads as empty (a gap) */
	for (int k = 1; k <= SMIG_FILE_ROTATED_MAX; k++) {
		smig_file_rotated_name(path, k, p, sizeof(p));
		if (access(p, F_OK) == 0)
			top = (size_t)k;
	}
	f = calloc(top + 1, sizeof(*f));
	SMIG_ENSURE(f != NULL, SMIG_ENOMEM);
	for (size_t k = top + 1; k-- > 0 && rc == 0;) {
		struct smig_audit_file *x = &f[top - k];
		char *text = NULL;

		smig_file_rotated_name(path, (int)k, p, sizeof(p));
		smig_file_rotated_name(base, (int)k, name, sizeof(name));
		rc = smig_file_read(p, max, &text, &x->len, err, errlen);
		if (rc == SMIG_ENOENT) {
			text = strdup("");
			x->len = 0;
			rc = text ? 0 : SMIG_ENOMEM;
		}
		x->text = text;
		x->name = strdup(name);
		if (rc == 0 && x->name == NULL)
			rc = SMIG_ENOMEM;
		*n = top + 1 - k;
	}
	if (rc < 0) {
		smig_audit_files_free(f, *n);
		*n = 0;
		return rc;
	}
	*files = f;
	return 0;
}
