/*
 * testutil.c - scratch directories for unit tests (testutil.h).
 */
#include "testutil.h"
#include "file.h"

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

int test_rmtree(const char *dir)
{
	return smig_file_rmtree(dir);
}
