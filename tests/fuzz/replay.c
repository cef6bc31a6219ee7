/* Replays fuzz inputs through one target without libFuzzer, so that the
 * seed corpora run under gcc (and its sanitizers) in `make check`.
 *
 *   replay_<target> [PATH]...
 *
 * Each PATH is a file, or a directory whose files are each one input
 * (entries starting with "." and subdirectories are skipped). Without
 * PATH, replays $TF_SRCDIR/tests/fuzz/corpus/<target> (TF_SRCDIR defaults
 * to "."). Inputs run in name order, each from a buffer of exactly its
 * size so that ASan sees any read past the end. Prints how many ran;
 * exits 0, or 1 when a path cannot be read or there was nothing to run.
 * A crash, a sanitizer report or a broken promise aborts at once, after
 * "replay: <file>" has named the input on stderr. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Reads path whole into a buffer of exactly its size (one byte when
 * empty, so that data is never NULL). */
static int read_whole(const char *path, uint8_t **data, size_t *size)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	uint8_t *buf;
	size_t got;

	if (f == NULL || fstat(fileno(f), &st) != 0 || st.st_size < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		if (f != NULL)
			fclose(f);
		return -1;
	}
	buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	if (buf == NULL) {
		fprintf(stderr, "replay: %s: out of memory\n", path);
		fclose(f);
		return -1;
	}
	got = fread(buf, 1, (size_t)st.st_size, f);
	if (got != (size_t)st.st_size || ferror(f)) {
		fprintf(stderr, "replay: %s: short read\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	*data = buf;
	*size = got;
	return 0;
}

static int run_file(const char *path, unsigned long *ran)
{
	uint8_t *data;
	size_t size;

	if (read_whole(path, &data, &size) != 0)
		return -1;
	/* Named before the run, so that a crash report can be traced back. */
	fprintf(stderr, "replay: %s\n", path);
	LLVMFuzzerTestOneInput(data, size);
	free(data);
	(*ran)++;
	return 0;
}

static int skip_entry(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

static int run_dir(const char *dir, unsigned long *ran)
{
	struct dirent **entries;
	int n = scandir(dir, &entries, skip_entry, alphasort);
	int rc = 0;

	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		size_t len = strlen(dir) + strlen(entries[i]->d_name) + 2;
		char *path = malloc(len);
		struct stat st;

		if (path == NULL) {
			fprintf(stderr, "replay: out of memory\n");
			rc = -1;
		} else {
			snprintf(path, len, "%s/%s", dir, entries[i]->d_name);
			if (stat(path, &st) != 0) {
				fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
				rc = -1;
			} else if (S_ISREG(st.st_mode) && run_file(path, ran) != 0) {
				rc = -1;
			}
			free(path);
		}
		free(entries[i]);
	}
	free(entries);
	return rc;
}

static int run_path(const char *path, unsigned long *ran)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode))
		return run_dir(path, ran);
	return run_file(path, ran);
}

int main(int argc, char **argv)
{
	unsigned long ran = 0;
	int failed = 0;

	if (argc < 2) {
		const char *srcdir = getenv("TF_SRCDIR");
		char dir[4096];

		if (srcdir == NULL || *srcdir == '\0')
			srcdir = ".";
		if ((size_t)snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", srcdir,
				tf_fuzz_target) >= sizeof(dir)) {
			fprintf(stderr, "replay: TF_SRCDIR is too long\n");
			return 1;
		}
		failed = run_path(dir, &ran) != 0;
	}
	for (int i = 1; i < argc; i++)
		if (run_path(argv[i], &ran) != 0)
			failed = 1;
	printf("replay (%s): %lu input%s ran\n", tf_fuzz_target, ran, ran == 1 ? "" : "s");
	if (ran == 0) {
		fprintf(stderr, "replay: no inputs\n");
		return 1;
	}
	return failed;
}
