#include "broker/util/error.h"

#include <stdarg.h>
#include <stdio.h>

const char *tf_strerror(int status)
{
	switch (status) {
	case TF_OK:          return "success";
	case TF_ERR_NOMEM:   return "out of memory";
	case TF_ERR_INVALID: return "invalid input";
	case TF_ERR_IO:      return "input/output error";
	case TF_ERR_FULL:    return "no room left";
	default:             return "unknown error";
	}
}

int tf_err_set(struct tf_err *err, int status, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return status;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return status;
}
