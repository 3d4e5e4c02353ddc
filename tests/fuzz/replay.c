/*
 * Replay driver used when libFuzzer is not linked: runs every file named on
 * the command line (directories are walked one level) through the fuzz
 * target once, printing TAP. A crash or sanitizer report fails make check,
 * which is the point: every checked-in input stays fixed.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int n;

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, got;

	if (f == NULL) {
		printf("not ok %d - %s: %s\n", ++n, path, strerror(errno));
		return 1;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			buf = realloc(buf, cap);
			if (buf == NULL)
				abort();
		}
		got = fread(buf + len, 1, cap - len, f);
		if (got == 0)
			break;
		len += got;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	printf("ok %d - %s\n", ++n, path);
	fflush(stdout);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	int failed = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			DIR *d = opendir(argv[i]);
			struct dirent *de;
			char **names = NULL;
			size_t nn = 0;

			if (d == NULL) {
				printf("not ok %d - %s: %s\n", ++n, argv[i], strerror(errno));
				failed++;
				continue;
			}
			while ((de = readdir(d)) != NULL) {
				char *p;

				if (de->d_name[0] == '.')
					continue;
				if (asprintf(&p, "%s/%s", argv[i], de->d_name) < 0)
					abort();
				names = realloc(names, (nn + 1) * sizeof(*names));
				if (names == NULL)
					abort();
				names[nn++] = p;
			}
			closedir(d);
			qsort(names, nn, sizeof(*names), cmp);
			for (size_t j = 0; j < nn; j++) {
				failed += run_file(names[j]);
				free(names[j]);
			}
			free(names);
		} else {
			failed += run_file(argv[i]);
		}
	}
	printf("1..%d\n", n);
	if (n == 0)
		printf("# no corpus files\n");
	return (failed || n == 0) ? 1 : 0;
}
