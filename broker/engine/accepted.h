/* The last policy set the broker accepted, kept as copies of its files in
 * the trace store's directory (<trace_db>/accepted/: identities.json and
 * policies/, with the owners' signatures), so that a start whose files are refused (a bad file left in
 * policy_dir by a refused reload, then a crash) goes on with the rules
 * last in force instead of stopping every flow.
 *
 * A new copy is written beside the old one and put in its place by
 * renames, so that a crash leaves one whole copy: `accepted`, or, between
 * the two renames, `accepted.old`. */
#ifndef TF_ACCEPTED_H
#define TF_ACCEPTED_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/util/error.h"

/* Keeps copies of the identities file and of the *.json files of
 * policy_dir, with their .json.sig signatures, under store_dir, replacing the copy kept before. The caller
 * has just loaded them successfully. Errors: TF_ERR_IO (err names the
 * file), TF_ERR_NOMEM; the copy kept before then stays. */
int tf_accepted_keep(const char *store_dir, const char *identities, const char *policy_dir,
		struct tf_err *err);

/* The kept copy: its identities file and policy directory (into buffers
 * of cap bytes each). false when there is none. */
bool tf_accepted_find(const char *store_dir, char *identities, char *policy_dir, size_t cap);

#endif
