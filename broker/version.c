#include "config.h"

#include "broker/version.h"

const char *tf_version(void)
{
	return PACKAGE_VERSION;
}
