#include "config.h"

#include "broker/console/assets.h"

#include <string.h>

const struct tf_console_asset *tf_console_asset_find(const char *name)
{
	for (const struct tf_console_asset *a = tf_console_assets; a->name != NULL; a++)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

const char *tf_console_asset_text(const struct tf_console_asset *a)
{
	return (const char *)a->data;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

const char *tf_console_asset_type(const char *name)
{
	if (ends_with(name, ".html"))
		return "text/html; charset=utf-8";
	if (ends_with(name, ".css"))
		return "text/css; charset=utf-8";
	if (ends_with(name, ".js"))
		return "text/javascript; charset=utf-8";
	if (ends_with(name, ".svg"))
		return "image/svg+xml";
	return "application/octet-stream";
}
