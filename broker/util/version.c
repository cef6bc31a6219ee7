#include "config.h"

#include "broker/util/version.h"

const char *tf_version(void)
{
	return PACKAGE_VERSION;
}
