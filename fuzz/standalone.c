/*
 * standalone.c - runs a fuzz target over every file of a corpus directory
 * without libFuzzer, printing TAP; make check uses it for regression runs.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* A target that needs setup defines it, as libFuzzer lets it. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	struct dirent **ents;
	int n;
	int count = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize)
		(void)LLVMFuzzerInitialize(&argc, &argv);
	n = scandir(argv[1], &ents, NULL, by_name);
	if (n < 0) {
		perror(argv[1]);
		return 1;
	}
	for (int i = 0; i < n; i++)
		count += ents[i]->d_name[0] != '.';
	printf("1..%d\n", count);
	count = 0;
	for (int i = 0; i < n; i++) {
		char path[4096];
		FILE *f;
		uint8_t *buf;
		long len;

		if (ents[i]->d_name[0] == '.') {
			free(ents[i]);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", argv[1], ents[i]->d_name);
		f = fopen(path, "rb");
		if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0) {
			printf("not ok %d - %s: unreadable\n", ++count, ents[i]->d_name);
			if (f)
				fclose(f);
			free(ents[i]);
			continue;
		}
		rewind(f);
		buf = malloc((size_t)len + 1);
		if (buf && fread(buf, 1, (size_t)len, f) == (size_t)len) {
			LLVMFuzzerTestOneInput(buf, (size_t)len);
			printf("ok %d - %s\n", ++count, ents[i]->d_name);
		} else {
			printf("not ok %d - %s: short read\n", ++count, ents[i]->d_name);
		}
		free(buf);
		fclose(f);
		free(ents[i]);
	}
	free(ents);
	return 0;
}
