/* The files of a directory with a given suffix (policies, earlier public
 * keys), sorted by name, so that loads and the errors they report do not
 * depend on the directory's order. */
#ifndef TF_DIRLIST_H
#define TF_DIRLIST_H

#include <stdint.h>

#include "broker/util/error.h"

/* The regular files (symbolic links followed) of dir whose names end in
 * suffix, not hidden ones. On success the caller owns *names; free with
 * tf_dir_list_free. Errors: TF_ERR_IO (cannot read dir), TF_ERR_INVALID
 * (more than max files), TF_ERR_NOMEM. */
int tf_dir_list(const char *dir, const char *suffix, uint32_t max, char ***names,
		uint32_t *count, struct tf_err *err);
void tf_dir_list_free(char **names, uint32_t n);

#endif
