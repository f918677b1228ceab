/*
 * testutil.h - helpers shared by the unit tests: scratch directories.
 */
#ifndef SMIG_TESTUTIL_H
#define SMIG_TESTUTIL_H

#include <stddef.h>

/* Creates /tmp/smig-PREFIX-XXXXXX into out; 0 or -1. */
int test_mkdtemp(char *out, size_t outlen, const char *prefix);
/* Removes a directory tree; 0 or -1. */
int test_rmtree(const char *dir);

#endif
