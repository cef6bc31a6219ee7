#include "broker/engine/accepted.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/util/dirlist.h"
#include "policy/set.h"

#define PATH_CAP 4096

/* dir/name into out; false when it does not fit. */
static bool path_of(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, PATH_CAP, "%s/%s", dir, name);

	return n >= 0 && n < PATH_CAP;
}

/* Copies the file src to dst (created, mode 0640) and forces it to disk. */
static int copy_file(const char *src, const char *dst, struct tf_err *err)
{
	char buf[65536];
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = TF_OK;
	ssize_t n;

	if (in < 0)
		return tf_err_set(err, TF_ERR_IO, "%s: cannot open: %s", src, strerror(errno));
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (out < 0) {
		rc = tf_err_set(err, TF_ERR_IO, "%s: cannot create: %s", dst, strerror(errno));
		goto out;
	}
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || write(out, buf, (size_t)n) != n) {
			rc = tf_err_set(err, TF_ERR_IO, "%s: cannot copy: %s", dst, strerror(errno));
			goto out;
		}
	}
	if (fsync(out) != 0)
		rc = tf_err_set(err, TF_ERR_IO, "%s: cannot sync: %s", dst, strerror(errno));
out:
	if (out >= 0 && close(out) != 0 && rc == TF_OK)
		rc = tf_err_set(err, TF_ERR_IO, "%s: cannot close: %s", dst, strerror(errno));
	close(in);
	return rc;
}

/* Removes the files of dir that end in suffix. */
static void remove_files(const char *dir, const char *suffix)
{
	char path[PATH_CAP], **names = NULL;
	uint32_t n = 0;

	if (tf_dir_list(dir, suffix, TF_POLICY_SET_MAX_FILES, &names, &n, NULL) != TF_OK)
		return;
	for (uint32_t i = 0; i < n; i++)
		if (path_of(path, dir, names[i]))
			unlink(path);
	tf_dir_list_free(names, n);
}

/* Removes a kept copy's directory: its policies and their signatures, its
 * identities, itself. Only what this module writes is there. */
static void remove_copy(const char *dir)
{
	char policies[PATH_CAP], path[PATH_CAP];

	if (!path_of(policies, dir, "policies"))
		return;
	remove_files(policies, ".json");
	remove_files(policies, ".json.sig");
	rmdir(policies);
	if (path_of(path, dir, "identities.json"))
		unlink(path);
	rmdir(dir);
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Copies the policy file name of policy_dir into policies, and its
 * owner's signature name.sig when there is one: the copy needs it as
 * much. */
static int copy_policy(const char *policy_dir, const char *policies, const char *name,
		struct tf_err *err)
{
	char src[PATH_CAP], dst[PATH_CAP], sig[PATH_CAP];
	int rc;

	if (!path_of(src, policy_dir, name) || !path_of(dst, policies, name)
			|| snprintf(sig, sizeof(sig), "%s.sig", name) >= (int)sizeof(sig))
		return tf_err_set(err, TF_ERR_IO, "%s: path too long", name);
	rc = copy_file(src, dst, err);
	if (rc != TF_OK)
		return rc;
	if (!path_of(src, policy_dir, sig) || !path_of(dst, policies, sig))
		return tf_err_set(err, TF_ERR_IO, "%s: path too long", sig);
	return access(src, F_OK) == 0 ? copy_file(src, dst, err) : TF_OK;
}

/* Writes the copy into dir (made anew). */
static int write_copy(const char *dir, const char *identities, const char *policy_dir,
		struct tf_err *err)
{
	char policies[PATH_CAP], dst[PATH_CAP], **names = NULL;
	uint32_t n = 0;
	int rc;

	if (!path_of(policies, dir, "policies") || !path_of(dst, dir, "identities.json"))
		return tf_err_set(err, TF_ERR_IO, "%s: path too long", dir);
	if (mkdir(dir, 0750) != 0 || mkdir(policies, 0750) != 0)
		return tf_err_set(err, TF_ERR_IO, "%s: cannot create: %s", policies, strerror(errno));
	rc = copy_file(identities, dst, err);
	if (rc == TF_OK)
		rc = tf_dir_list(policy_dir, ".json", TF_POLICY_SET_MAX_FILES, &names, &n, err);
	for (uint32_t i = 0; rc == TF_OK && i < n; i++)
		rc = copy_policy(policy_dir, policies, names[i], err);
	tf_dir_list_free(names, n);
	if (rc == TF_OK && (sync_dir(policies) != 0 || sync_dir(dir) != 0))
		rc = tf_err_set(err, TF_ERR_IO, "%s: cannot sync: %s", dir, strerror(errno));
	return rc;
}

int tf_accepted_keep(const char *store_dir, const char *identities, const char *policy_dir,
		struct tf_err *err)
{
	char dir[PATH_CAP], fresh[PATH_CAP], old[PATH_CAP];
	struct stat st;
	int rc;

	if (!path_of(dir, store_dir, "accepted") || !path_of(fresh, store_dir, "accepted.new")
			|| !path_of(old, store_dir, "accepted.old"))
		return tf_err_set(err, TF_ERR_IO, "%s: path too long", store_dir);
	remove_copy(fresh);
	rc = write_copy(fresh, identities, policy_dir, err);
	if (rc != TF_OK) {
		remove_copy(fresh);
		return rc;
	}
	/* accepted -> accepted.old, accepted.new -> accepted: at every moment
	 * one of the two names holds a whole copy. (Without `accepted`, a
	 * crash came between the renames, and `accepted.old` is that copy.) */
	if (stat(dir, &st) == 0)
		remove_copy(old);
	if (stat(dir, &st) == 0 && rename(dir, old) != 0) {
		rc = tf_err_set(err, TF_ERR_IO, "%s: cannot rename: %s", dir, strerror(errno));
	} else if (rename(fresh, dir) != 0) {
		rc = tf_err_set(err, TF_ERR_IO, "%s: cannot rename: %s", fresh, strerror(errno));
	} else {
		sync_dir(store_dir);
		remove_copy(old);
		return TF_OK;
	}
	remove_copy(fresh);
	return rc;
}

bool tf_accepted_find(const char *store_dir, char *identities, char *policy_dir, size_t cap)
{
	static const char *const names[] = { "accepted", "accepted.old" };
	struct stat st;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int a = snprintf(identities, cap, "%s/%s/identities.json", store_dir, names[i]);
		int b = snprintf(policy_dir, cap, "%s/%s/policies", store_dir, names[i]);

		if (a > 0 && (size_t)a < cap && b > 0 && (size_t)b < cap
				&& stat(identities, &st) == 0 && S_ISREG(st.st_mode)
				&& stat(policy_dir, &st) == 0 && S_ISDIR(st.st_mode))
			return true;
	}
	return false;
}
