/* Reading the JSON files of policy-v1 (identities and policies).
 *
 * tf_json_load_file() reads a whole file under a size cap, insists on
 * UTF-8, parses it, and rejects any object that names a member twice (cJSON
 * itself would keep both). struct tf_jctx then walks the tree with the JSON
 * path of the current member, so that every error names the file, the path
 * and the problem: "policies/water.json: $.consumers[1].not_after: not an
 * RFC 3339 time". */
#ifndef TF_POLICY_JSONFILE_H
#define TF_POLICY_JSONFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "broker/util/error.h"

/* Reads the regular file path whole into *out (NUL-terminated, *len
 * bytes without the NUL; caller frees). Errors: TF_ERR_IO (unreadable,
 * not a regular file), TF_ERR_INVALID (larger than max_bytes),
 * TF_ERR_NOMEM; err names the file by display_name (NULL: path). */
int tf_file_read(const char *path, const char *display_name, size_t max_bytes, char **out,
		size_t *len, struct tf_err *err);

/* Reads and parses path. On success *out is the tree (caller owns; free
 * with cJSON_Delete). Errors: TF_ERR_IO (unreadable), TF_ERR_INVALID
 * (larger than max_bytes, not UTF-8, not JSON, a member given twice: err
 * says where), TF_ERR_NOMEM. display_name (borrowed) names the file in
 * messages; NULL uses path. */
int tf_json_load_file(const char *path, const char *display_name, size_t max_bytes,
		cJSON **out, struct tf_err *err);

/* The same checks on a buffer already in memory (len bytes, need not be
 * NUL-terminated). */
int tf_json_parse(const char *text, size_t len, const char *display_name, cJSON **out,
		struct tf_err *err);

/* Writes name into dst (room bytes, at least 8) for a message: quotes and
 * backslashes escaped, control bytes and bytes that are not UTF-8 as \xNN,
 * so that a name cannot forge a path or a log line; cut with "..." when
 * long, never inside a character. */
void tf_json_escape_name(char *dst, size_t room, const char *name);

/* A position in a tree being validated: the file and the JSON path. */
struct tf_jctx {
	const char *file;    /* borrowed, for messages */
	struct tf_err *err;  /* where failures are described */
	size_t len;          /* of path */
	unsigned dropped;    /* steps left out of a full path */
	char path[480];      /* "$" then ".member" or "[index]" per level */
	/* Collecting (tf_jctx_collect): each problem is also reported here,
	 * and loaders go on past a problem where what follows does not
	 * depend on it. NULL: a loader stops at the first. */
	void (*report)(void *ctx, const char *msg);
	void *report_ctx;
	unsigned failures;   /* problems so far */
};

void tf_jctx_init(struct tf_jctx *c, const char *file, struct tf_err *err);

/* Makes c report every problem to report (tfctl policy check: one line
 * per problem); err keeps the first, as without. */
void tf_jctx_collect(struct tf_jctx *c, void (*report)(void *ctx, const char *msg), void *ctx);

/* Whether a loader goes on after rc: after success, or after a problem
 * in the input when c collects them. */
bool tf_jctx_goes_on(const struct tf_jctx *c, int rc);

/* Keeps the first failure of a sequence of steps in *rc (out of memory
 * overrides: nothing more can be said then). */
void tf_jctx_keep(int *rc, int step);

/* Path steps. Each returns the length to hand back to tf_jctx_pop(). */
size_t tf_jctx_member(struct tf_jctx *c, const char *name);
size_t tf_jctx_index(struct tf_jctx *c, int index);
void tf_jctx_pop(struct tf_jctx *c, size_t len);

/* Sets err to "file: path: message" (the first problem, when c collects
 * them; reported too) and returns TF_ERR_INVALID. */
int tf_jfail(struct tf_jctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* As tf_jfail, at member name of the current object. */
int tf_jfail_at(struct tf_jctx *c, const char *member, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* node must be an object whose members all appear in names (a
 * NULL-terminated list). Errors name the first unknown member (every one,
 * when c collects). */
int tf_jcheck_object(struct tf_jctx *c, const cJSON *node, const char *const *names);

/* Member getters. Each reports errors at the member's path. When the
 * member is absent, a required one is an error and an optional one leaves
 * *present false (or *out NULL) and returns TF_OK. Returned strings are
 * borrowed from the tree. */
int tf_jstring(struct tf_jctx *c, const cJSON *obj, const char *name, bool required,
		size_t max_len, const char **out);
int tf_jid(struct tf_jctx *c, const cJSON *obj, const char *name, bool required,
		const char **out);
int tf_jint(struct tf_jctx *c, const cJSON *obj, const char *name, bool required,
		int64_t min, int64_t max, int64_t *out, bool *present);
int tf_jbool(struct tf_jctx *c, const cJSON *obj, const char *name, bool required,
		bool *out, bool *present);
/* An array member of at most max_items elements (empty allowed when
 * min_items is 0); *out NULL when absent and optional. */
int tf_jarray(struct tf_jctx *c, const cJSON *obj, const char *name, bool required,
		int min_items, int max_items, const cJSON **out);

/* A JSON number that is an integer in [min, max]: the check behind
 * tf_jint, for values that are not object members. */
bool tf_json_integer(const cJSON *node, int64_t min, int64_t max, int64_t *out);

#endif
