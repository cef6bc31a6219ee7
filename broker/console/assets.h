/* The console's assets (broker/console/assets/), compiled into tfctl by
 * embed-assets.sh: the page, its style and its scripts, and the impact
 * report's drawing, which `tfctl report impact --html` inlines too. */
#ifndef TF_CONSOLE_ASSETS_H
#define TF_CONSOLE_ASSETS_H

#include <stddef.h>

struct tf_console_asset {
	const char *name;           /* the file's name, e.g. "console.js" */
	const unsigned char *data;  /* its bytes, followed by a NUL */
	size_t len;                 /* without the NUL */
};

/* Every asset, ended by one whose name is NULL (the generated file). */
extern const struct tf_console_asset tf_console_assets[];

/* The asset of that file name, or NULL. Borrowed, valid for the program's
 * life. */
const struct tf_console_asset *tf_console_asset_find(const char *name);

/* The asset's bytes as a C string (its text; assets hold no NUL). */
const char *tf_console_asset_text(const struct tf_console_asset *a);

/* The Content-Type to serve name with, from its extension. */
const char *tf_console_asset_type(const char *name);

#endif
