/* One error space for the trustflow core, in the manner of lmdb.h: every
 * fallible function returns TF_OK or a tf_status, and fills a struct tf_err
 * with the text an operator or data owner reads. */
#ifndef TF_ERROR_H
#define TF_ERROR_H

enum tf_status {
	TF_OK = 0,
	TF_ERR_NOMEM,    /* an allocation failed */
	TF_ERR_INVALID,  /* input (option, file, request) is malformed */
	TF_ERR_IO,       /* the file system refused */
	TF_ERR_FULL,     /* a store has no room left */
};

/* A human-readable description of the failure. Never NULL after a failed
 * call; an empty string after success. */
struct tf_err {
	char msg[512];
};

/* Formats the message into err (truncating if it must) and returns status,
 * so that error paths read `return tf_err_set(err, TF_ERR_INVALID, ...)`.
 * err may be NULL when the caller does not want the text. */
int tf_err_set(struct tf_err *err, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
