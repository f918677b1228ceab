/*
 * testutil.c - scratch directories for unit tests (testutil.h).
 */
#include "testutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int test_mkdtemp(char *out, size_t outlen, const char *prefix)
{
	int w = snprintf(out, outlen, "/tmp/smig-%s-XXXXXX", prefix);

	if (w < 0 || (size_t)w >= outlen)
		return -1;
	return mkdtemp(out) ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int test_rmtree(const char *dir)
{
	return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
