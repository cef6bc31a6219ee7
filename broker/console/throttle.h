/* A brake on guessing passwords through the console: at most a number
 * of failed sign-ins (to the page or to /metrics) in a window of time,
 * counted for the whole console; past that, sign-ins are refused without
 * asking the broker until the window ends. Thread-safe. */
#ifndef TF_CONSOLE_THROTTLE_H
#define TF_CONSOLE_THROTTLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct tf_console_throttle {
	pthread_mutex_t lock;
	unsigned max_failures;
	int64_t window_ms;
	int64_t window_start_ms;
	unsigned failures;      /* in the window that started then */
};

/* Sets t up: max_failures per window_ms. False when the mutex cannot be. */
bool tf_console_throttle_init(struct tf_console_throttle *t, unsigned max_failures,
		int64_t window_ms);
void tf_console_throttle_destroy(struct tf_console_throttle *t);

/* Whether a sign-in may be tried now. */
bool tf_console_throttle_allows(struct tf_console_throttle *t, int64_t now_ms);

/* Counts a failed sign-in. */
void tf_console_throttle_failed(struct tf_console_throttle *t, int64_t now_ms);

#endif
