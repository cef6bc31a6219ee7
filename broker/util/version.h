#ifndef TF_VERSION_H
#define TF_VERSION_H

/* The release version ("0.1.0"), the same for the plugin and tfctl. */
const char *tf_version(void);

#endif
