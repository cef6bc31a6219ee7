#include "broker/util/dirlist.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker/util/growable.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_listed(const char *dir, const char *name, const char *suffix)
{
	size_t len = strlen(name), slen = strlen(suffix);
	char path[4096];
	struct stat st;

	if (name[0] == '.' || len <= slen || strcmp(name + len - slen, suffix) != 0)
		return false;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return false;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int tf_dir_list(const char *dir, const char *suffix, uint32_t max, char ***names, uint32_t *count,
		struct tf_err *err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **list = NULL;
	uint32_t n = 0, cap = 0;
	int rc = TF_OK;

	*names = NULL;
	*count = 0;
	if (d == NULL)
		return tf_err_set(err, TF_ERR_IO, "%s: cannot open the directory: %s", dir,
			strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (!is_listed(dir, e->d_name, suffix))
			continue;
		if (n == max) {
			rc = tf_err_set(err, TF_ERR_INVALID, "%s: more than %u *%s files", dir, max,
				suffix);
			break;
		}
		if (!tf_grow(&list, &cap, n, 64, max) || (list[n] = strdup(e->d_name)) == NULL) {
			rc = tf_err_set(err, TF_ERR_NOMEM, "%s: out of memory", dir);
			break;
		}
		n++;
	}
	closedir(d);
	if (rc != TF_OK) {
		for (uint32_t i = 0; i < n; i++)
			free(list[i]);
		free(list);
		return rc;
	}
	if (n > 0)
		qsort(list, n, sizeof(*list), cmp_str);
	*names = list;
	*count = n;
	return TF_OK;
}

void tf_dir_list_free(char **names, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

