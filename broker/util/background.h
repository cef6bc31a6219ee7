/* Threads that work in the background of the broker's own thread. */
#ifndef TF_BACKGROUND_H
#define TF_BACKGROUND_H

/* Marks the calling thread as background work (the trace writer, the
 * signing pool's workers) and names it (at most 15 characters: `top -H`
 * and /proc show it). On Linux the thread runs under SCHED_BATCH: it
 * still gets its fair share of the CPU, but its waking up does not
 * preempt the thread that is running. Without it, each time the trace
 * writer woke for a batch it took the core from mosquitto's thread, which
 * then refilled its caches: under a fan-out to 50 subscribers on two
 * cores mosquitto's thread was preempted seven times as often as without
 * a trace, and a third less often with it. Where the system has no such
 * policy this only names the thread, or does nothing. */
void tf_background_thread(const char *name);

#endif
