#include "broker/util/error.h"

#include <stdarg.h>
#include <stdio.h>

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
