#define _GNU_SOURCE   /* SCHED_BATCH, pthread_setname_np */
#include "broker/util/background.h"

#include <pthread.h>
#include <sched.h>

void tf_background_thread(const char *name)
{
#ifdef SCHED_BATCH
	struct sched_param param = { .sched_priority = 0 };

	/* Needs no privilege; when it fails the thread merely stays as it
	 * was. */
	(void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
#endif
#ifdef __linux__
	(void)pthread_setname_np(pthread_self(), name);
#else
	(void)name;
#endif
}
