#include "config.h"

#include "broker/console/throttle.h"

bool tf_console_throttle_init(struct tf_console_throttle *t, unsigned max_failures,
		int64_t window_ms)
{
	t->max_failures = max_failures;
	t->window_ms = window_ms;
	t->window_start_ms = 0;
	t->failures = 0;
	return pthread_mutex_init(&t->lock, NULL) == 0;
}

void tf_console_throttle_destroy(struct tf_console_throttle *t)
{
	pthread_mutex_destroy(&t->lock);
}

/* Forgets the failures of a window that has passed (lock held). A
 * window starts with its first failure. */
static void roll(struct tf_console_throttle *t, int64_t now_ms)
{
	if (t->failures > 0 && now_ms - t->window_start_ms >= t->window_ms)
		t->failures = 0;
}

bool tf_console_throttle_allows(struct tf_console_throttle *t, int64_t now_ms)
{
	bool ok;

	pthread_mutex_lock(&t->lock);
	roll(t, now_ms);
	ok = t->failures < t->max_failures;
	pthread_mutex_unlock(&t->lock);
	return ok;
}

void tf_console_throttle_failed(struct tf_console_throttle *t, int64_t now_ms)
{
	pthread_mutex_lock(&t->lock);
	roll(t, now_ms);
	if (t->failures == 0)
		t->window_start_ms = now_ms;
	if (t->failures < t->max_failures)
		t->failures++;
	pthread_mutex_unlock(&t->lock);
}
